package wiegand

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rs/zerolog"

	"termagent/hal"
	"termagent/hal/card"
)

// replayLines plays a recorded edge timeline on D0/D1 as the kernel would
// deliver it: each edge becomes readable at its timestamp (measured from
// when the lines were made), stamped with it. fail makes the next wait
// fail, as a line request gone bad would. It stands in for the GPIO
// character device, which this machine does not have; run it inside a
// synctest bubble so that the timeline's time is fake.
type replayLines struct {
	start time.Time
	halt  chan struct{}

	mu     sync.Mutex
	queue  []Edge
	fails  int
	closed bool
	waits  int
}

var _ Lines = (*replayLines)(nil)

func newReplayLines() *replayLines {
	return &replayLines{start: time.Now(), halt: make(chan struct{}, 1)}
}

// play appends edges; their At is relative to the lines' start and must
// not be in the past when it is due.
func (l *replayLines) play(edges []Edge) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.queue = append(l.queue, edges...)
}

func (l *replayLines) failNext(n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.fails = n
}

func (l *replayLines) WaitEdge(timeout time.Duration) (Edge, bool, error) {
	l.mu.Lock()
	l.waits++
	if l.fails > 0 {
		l.fails--
		l.mu.Unlock()
		return Edge{}, false, errors.New("line request revoked")
	}
	var next *Edge
	if len(l.queue) > 0 {
		e := l.queue[0]
		next = &e
	}
	l.mu.Unlock()
	deadline := time.Now().Add(timeout)
	if next != nil {
		due := l.start.Add(next.At)
		if !due.After(deadline) {
			time.Sleep(time.Until(due))
			l.mu.Lock()
			l.queue = l.queue[1:]
			l.mu.Unlock()
			return *next, true, nil
		}
	}
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-t.C:
	case <-l.halt:
	}
	return Edge{}, false, nil
}

func (l *replayLines) Halt() error {
	select {
	case l.halt <- struct{}{}:
	default:
	}
	return nil
}

func (l *replayLines) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	return nil
}

func newReader(t *testing.T, cfg Config) (*Reader, *replayLines) {
	t.Helper()
	lines := newReplayLines()
	cfg.D0, cfg.D1 = "17", "27"
	cfg.Log = zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.DebugLevel)
	r, err := New(cfg, lines)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r, lines
}

// at shifts a timeline to start at offset.
func at(offset time.Duration, edges []Edge) []Edge {
	out := make([]Edge, len(edges))
	for i, e := range edges {
		out[i] = Edge{Line: e.Line, At: e.At - time.Second + offset}
	}
	return out
}

func TestReaderCardsKeysAndErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, lines := newReader(t, Config{})
		w26 := "1 01100011 1110100110101110 0"
		bad := "1 01100011 1110100110101111 0"
		lines.play(at(10*time.Millisecond, timeline(t, 2*time.Millisecond, 100*time.Millisecond,
			w26, bad, "0001", "1001 0110", "1011", "1111 0000 1")))
		ctx := context.Background()
		c, err := r.ReadCard(ctx)
		if err != nil || c.Number != "0006547886" {
			t.Fatalf("ReadCard: %+v %v", c, err)
		}
		var keys string
		for range 3 {
			k, err := r.ReadKey(ctx)
			if err != nil {
				t.Fatal(err)
			}
			keys += string(k.Char)
		}
		if keys != "16#" {
			t.Fatalf("keys %q, want 16#", keys)
		}
		synctest.Wait()
		time.Sleep(time.Second) // the timeline is over
		synctest.Wait()
		s := r.Stats()
		if s.Cards != 1 || s.Keys != 3 || s.BadParity != 1 || s.BadLength != 1 || s.Dropped != 0 {
			t.Fatalf("stats %+v", s)
		}
		// The bad frame never became a card.
		short, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		if c, err := r.ReadCard(short); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("a second card %+v %v", c, err)
		}
	})
}

func TestReaderFormatAndQueueBound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, lines := newReader(t, Config{Format: card.Format{Style: card.Wiegand26}})
		var bursts []string
		for range queueLen + 3 {
			bursts = append(bursts, "0 00111101 0001001011010110 1")
		}
		lines.play(at(10*time.Millisecond, timeline(t, 2*time.Millisecond, 100*time.Millisecond, bursts...)))
		time.Sleep(time.Duration(queueLen+4) * 200 * time.Millisecond)
		synctest.Wait()
		if s := r.Stats(); s.Cards != queueLen+3 || s.Dropped != 3 {
			t.Fatalf("stats %+v, want %d cards, 3 dropped", s, queueLen+3)
		}
		c, err := r.ReadCard(context.Background())
		if err != nil || c.Number != "06104822" { // FC 61, CN 4822
			t.Fatalf("card %+v %v", c, err)
		}
	})
}

func TestReaderCloseUnblocks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, lines := newReader(t, Config{})
		errs := make(chan error, 2)
		go func() { _, err := r.ReadCard(context.Background()); errs <- err }()
		go func() { _, err := r.ReadKey(context.Background()); errs <- err }()
		synctest.Wait()
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if err := <-errs; !errors.Is(err, hal.ErrClosed) {
				t.Fatalf("blocked read returned %v, want ErrClosed", err)
			}
		}
		if err := r.Close(); err != nil {
			t.Fatal("second Close:", err)
		}
		lines.mu.Lock()
		closed := lines.closed
		lines.mu.Unlock()
		if !closed {
			t.Fatal("lines not released")
		}
		if h, _ := r.Health(); h.OK || !errors.Is(h.Err, hal.ErrClosed) {
			t.Fatalf("health after Close %+v", h)
		}
	})
}

func TestFaultLinesFailAndRecover(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, lines := newReader(t, Config{})
		h, wake := r.Health()
		if !h.OK {
			t.Fatalf("health at start %+v", h)
		}
		lines.failNext(3)
		<-wake
		h, wake = r.Health()
		if h.OK || !errors.Is(h.Err, hal.ErrFault) {
			t.Fatalf("health after failure %+v", h)
		}
		lost := time.Now()
		<-wake
		if h, _ = r.Health(); !h.OK {
			t.Fatalf("health after recovery %+v", h)
		}
		took := time.Since(lost)
		// A card after the recovery reads.
		lines.play(at(time.Since(lines.start)+10*time.Millisecond, timeline(t, 2*time.Millisecond, 0, "1 01100011 1110100110101110 0")))
		c, err := r.ReadCard(context.Background())
		if err != nil || c.Number != "0006547886" {
			t.Fatalf("card after recovery %+v %v", c, err)
		}
		t.Logf("FAULTROW\t%s\t%s\t%s", "wiegand line request fails 3 times", "health lost (fault), retried each 1s, back; next card reads", "recovered after "+took.String()+" (fake clock)")
	})
}

package agent_test

import (
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"termagent/agent"
	"termagent/hal/haltest"
	"termagent/hal/sim"
	"termagent/hal/wiegand"
	"termagent/store"
)

// queueLines is a Wiegand reader's D0/D1 pair (wiegand.Lines) fed from a
// queue: there is no GPIO chip here. Edges carry their own timestamps, laid
// out by sim.WiegandTimeline, so the driver splits bursts by them however
// fast the edges are read; play queues whole bursts at once, so the driver
// never waits out a gap inside one.
type queueLines struct {
	t0   time.Time
	more chan struct{} // cap 1: edges were queued
	halt chan struct{}

	mu    sync.Mutex
	queue []wiegand.Edge
	last  time.Duration // the last edge queued, from t0
}

var _ wiegand.Lines = (*queueLines)(nil)

func newQueueLines() *queueLines {
	return &queueLines{t0: time.Now(), more: make(chan struct{}, 1), halt: make(chan struct{}, 1)}
}

// play queues bursts, the first a long pause after whatever came before.
func (l *queueLines) play(t *testing.T, bursts ...[]bool) {
	t.Helper()
	l.mu.Lock()
	start := max(l.last, time.Since(l.t0)) + 200*time.Millisecond
	for _, p := range sim.WiegandTimeline(start, 2*time.Millisecond, 100*time.Millisecond, bursts...) {
		e := wiegand.Edge{Line: wiegand.D0, At: p.At}
		if p.One {
			e.Line = wiegand.D1
		}
		l.queue = append(l.queue, e)
		l.last = p.At
	}
	l.mu.Unlock()
	select {
	case l.more <- struct{}{}:
	default:
	}
}

func (l *queueLines) WaitEdge(timeout time.Duration) (wiegand.Edge, bool, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		l.mu.Lock()
		if len(l.queue) > 0 {
			e := l.queue[0]
			l.queue = l.queue[1:]
			l.mu.Unlock()
			return e, true, nil
		}
		l.mu.Unlock()
		select {
		case <-l.more:
		case <-t.C:
			return wiegand.Edge{}, false, nil
		case <-l.halt:
			return wiegand.Edge{}, false, nil
		}
	}
}

func (l *queueLines) Halt() error {
	select {
	case l.halt <- struct{}{}:
	default:
	}
	return nil
}

func (l *queueLines) Close() error { return nil }

// keyBursts returns the bursts of keys on a width-bit Wiegand keypad.
func keyBursts(t *testing.T, width int, keys string) [][]bool {
	t.Helper()
	var out [][]bool
	for i := range len(keys) {
		b, err := sim.WiegandKey(width, keys[i])
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// One Wiegand reader with a keypad (card and keys on the same D0/D1) in
// card+PIN mode, with 4-bit and 8-bit key bursts.
func TestWiegandCardPlusPIN(t *testing.T) {
	for _, width := range []int{4, 8} {
		t.Run(map[int]string{4: "4-bit keys", 8: "8-bit keys"}[width], func(t *testing.T) {
			srv := newTestServer(t)
			db := openStore(t, store.Config{})
			addPersonKey(t, db, "p1", 31337, "2468")
			lines := newQueueLines()
			r, err := wiegand.New(wiegand.Config{D0: "17", D1: "27", Logger: testLogger(t, "wiegand")}, lines)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { r.Close() })
			hook, out := writeHook(t, 0)
			startAgent(t, agent.Config{Link: agent.LinkConfig{ServerAddress: srv.addr},
				Verify: agent.VerifyConfig{Mode: agent.VerifyCardPIN, PINTimeout: time.Hour}, Feedback: agent.FeedbackConfig{Hook: hook}},
				agent.Parts{Store: db, Card: r, Keypad: r})
			srv.peer()
			w26, err := sim.WiegandCard(26, 31337)
			if err != nil {
				t.Fatal(err)
			}
			lines.play(t, w26)
			haltest.Eventually(t, "the card waiting for its PIN", func() bool {
				b, _ := os.ReadFile(out)
				return strings.Contains(string(b), "pin\ncard\np1\n")
			})
			lines.play(t, keyBursts(t, width, "2468#")...)
			if ai := expectUpload(t, srv, "p1", 5); ai.CardNumber != "0000031337" {
				t.Errorf("card_number %q", ai.CardNumber)
			}
		})
	}
}

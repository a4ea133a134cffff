package fingerprint_test

import (
	"context"
	"io"
	"sync"
	"testing"
	"time"

	"termagent/hal"
	"termagent/hal/fingerprint"
)

// scriptedPort is a module reduced to a script: it answers each host
// write with bytes chosen by a function, and its reads time out after 2 ms
// like a serialport.Port's. Tests use it where they need replies no real
// module (nor the simulator) would send: the fuzzer's arbitrary bytes, or
// a precise interleaving of stale and fresh ACKs.
type scriptedPort struct {
	respond func(req []byte) []byte
	mu      sync.Mutex
	queue   []byte
	wake    chan struct{}
	done    chan struct{}
	once    sync.Once
}

var _ io.ReadWriteCloser = (*scriptedPort)(nil)

func newReplyPort(reply []byte) *scriptedPort {
	return newScriptPort(func([]byte) []byte { return reply })
}

// newScriptPort answers each host write with respond(write).
func newScriptPort(respond func(req []byte) []byte) *scriptedPort {
	return &scriptedPort{respond: respond, wake: make(chan struct{}, 1), done: make(chan struct{})}
}

func (p *scriptedPort) Write(b []byte) (int, error) {
	p.mu.Lock()
	if len(p.queue) < 1<<16 {
		p.queue = append(p.queue, p.respond(b)...)
	}
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
	return len(b), nil
}

func (p *scriptedPort) Read(b []byte) (int, error) {
	for {
		p.mu.Lock()
		if len(p.queue) > 0 {
			n := copy(b, p.queue)
			p.queue = p.queue[n:]
			p.mu.Unlock()
			return n, nil
		}
		p.mu.Unlock()
		select {
		case <-p.wake:
		case <-time.After(2 * time.Millisecond):
			return 0, hal.ErrTimeout
		case <-p.done:
			return 0, hal.ErrClosed
		}
	}
}

func (p *scriptedPort) Close() error {
	p.once.Do(func() { close(p.done) })
	return nil
}

// FuzzDriverReplies: whatever the module answers, every operation of the
// driver returns (no panic, no hang) and Close ends it.
func FuzzDriverReplies(f *testing.F) {
	for _, s := range []string{
		"EF 01 FF FF FF FF 07 00 03 00 00 0A",
		"EF 01 FF FF FF FF 07 00 03 02 00 0C",
		"EF 01 FF FF FF FF 07 00 07 00 00 05 00 64 00 77",
		"EF 01 FF FF FF FF 07 00 13 00 00 00 00 00 00 50 00 03 FF FF FF FF 00 02 00 0C 04 77",
		"55 EF 01 FF FF FF FF 07 01 02",
	} {
		f.Add(unhexT(f, s))
	}
	f.Fuzz(func(t *testing.T, reply []byte) {
		port := newReplyPort(reply)
		m, err := fingerprint.New(port, fingerprint.Config{
			CommandTimeout: 20 * time.Millisecond, SlowTimeout: 20 * time.Millisecond,
			ByteGap: 5 * time.Millisecond, PollInterval: time.Millisecond,
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_ = m.Probe(ctx)
		_, _ = m.Slots(ctx)
		_ = m.Store(ctx, 1, make([]byte, 512))
		_ = m.Delete(ctx, 1)
		_ = m.Clear(ctx)
		_, _ = m.Identify(ctx)
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

package face_test

import (
	"context"
	"io"
	"sync"
	"testing"
	"time"

	"termagent/hal"
	"termagent/hal/face"
)

// scriptedPort is a module reduced to a script: it answers each host
// write with bytes chosen by a function, and its reads time out after 2 ms
// like a serialport.Port's. Tests use it where they need replies no real
// module (nor the simulator) would send: the fuzzer's arbitrary bytes, or
// a precise interleaving of stale and fresh ACKs.
type scriptedPort struct {
	reply []byte
	mu    sync.Mutex
	queue []byte
	wake  chan struct{}
	done  chan struct{}
	once  sync.Once
}

var _ io.ReadWriteCloser = (*scriptedPort)(nil)

func newReplyPort(reply []byte) *scriptedPort {
	return &scriptedPort{reply: reply, wake: make(chan struct{}, 1), done: make(chan struct{})}
}

func (p *scriptedPort) Write(b []byte) (int, error) {
	p.mu.Lock()
	if len(p.queue) < 1<<16 {
		p.queue = append(p.queue, p.reply...)
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
		"EF AA 00 00 03 11 00 00 12",
		"EF AA 01 00 01 00 00",
		"EF AA 00 00 05 24 00 01 00 01 21",
		"EF AA 00 00 06 F7 00 00 01 00 01 F1",
		"55 EF AA 00 FF FF",
	} {
		f.Add(unhex(f, s))
	}
	f.Fuzz(func(t *testing.T, reply []byte) {
		port := newReplyPort(reply)
		m, err := face.New(port, face.Config{
			CommandTimeout: 20 * time.Millisecond, DeleteTimeout: 20 * time.Millisecond,
			EnrollTimeout: 20 * time.Millisecond, ByteGap: 5 * time.Millisecond,
			VerifySeconds: 1, PhotoEnrollMsgID: face.MsgEnrollWithPhoto, PhotoChunk: 100,
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_ = m.Probe(ctx)
		_, _ = m.Users(ctx)
		_, _ = m.Enroll(ctx, "x", make([]byte, 250))
		_ = m.Delete(ctx, 1)
		_ = m.Clear(ctx)
		_, _ = m.Recognize(ctx)
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

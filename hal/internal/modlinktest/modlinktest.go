// Package modlinktest holds test helpers shared by the serial module
// drivers' tests (hal/face, hal/fingerprint, hal/internal/modlink): a
// scripted module port for replies no real module nor the simulator
// would send. It is imported by tests only.
//
// Import rule: it imports only hal.
package modlinktest

import (
	"io"
	"sync"
	"time"

	"termagent/hal"
)

// maxQueue bounds the bytes a ScriptedPort holds for reading; replies to
// further writes are dropped until the driver reads.
const maxQueue = 1 << 16

// ReadTimeout is how long a ScriptedPort's Read waits for bytes before it
// returns an error wrapping hal.ErrTimeout, like a serialport.Port's.
const ReadTimeout = 2 * time.Millisecond

// ScriptedPort is a module reduced to a script: it answers each host
// write with bytes chosen by a function, and its reads time out after
// ReadTimeout like a serialport.Port's. Tests use it where they need
// replies no real module (nor the simulator) would send: the fuzzer's
// arbitrary bytes, or a precise interleaving of stale and fresh ACKs. Safe
// for concurrent use; Close is idempotent and wakes a blocked Read, which
// then returns an error wrapping hal.ErrClosed.
type ScriptedPort struct {
	respond func(req []byte) []byte
	mu      sync.Mutex
	queue   []byte
	wake    chan struct{}
	done    chan struct{}
	once    sync.Once
}

var _ io.ReadWriteCloser = (*ScriptedPort)(nil)

// NewReplyPort answers every host write with reply.
func NewReplyPort(reply []byte) *ScriptedPort {
	return NewScriptPort(func([]byte) []byte { return reply })
}

// NewScriptPort answers each host write with respond(write); respond is
// called with the port's lock held, so it must not call the port.
func NewScriptPort(respond func(req []byte) []byte) *ScriptedPort {
	return &ScriptedPort{respond: respond, wake: make(chan struct{}, 1), done: make(chan struct{})}
}

// Write takes b as one host command and queues the scripted answer.
func (p *ScriptedPort) Write(b []byte) (int, error) {
	p.mu.Lock()
	if len(p.queue) < maxQueue {
		p.queue = append(p.queue, p.respond(b)...)
	}
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
	return len(b), nil
}

// Read returns queued answer bytes, waiting at most ReadTimeout for some.
func (p *ScriptedPort) Read(b []byte) (int, error) {
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
		case <-time.After(ReadTimeout):
			return 0, hal.ErrTimeout
		case <-p.done:
			return 0, hal.ErrClosed
		}
	}
}

// Close ends the port; idempotent.
func (p *ScriptedPort) Close() error {
	p.once.Do(func() { close(p.done) })
	return nil
}

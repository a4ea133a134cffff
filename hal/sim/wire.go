package sim

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// plugGrace is how long a write waits for Serve to take up a fresh port:
// Plug.Replug returns before the device's Serve goroutine has begun.
const plugGrace = 500 * time.Millisecond

// wire holds the port of a device's current Serve, so that control methods
// can write unprompted (a card reader pushing a frame) and Serve's own
// replies and theirs never interleave. The zero wire is unplugged.
type wire struct {
	mu   sync.Mutex
	port io.Writer
	up   chan struct{} // closed when a port is attached
}

func (w *wire) upChan() chan struct{} {
	if w.up == nil {
		w.up = make(chan struct{})
	}
	return w.up
}

// attach makes port the wire until the returned detach is called.
func (w *wire) attach(port io.Writer) (detach func()) {
	w.mu.Lock()
	w.port = port
	close(w.upChan())
	w.mu.Unlock()
	return func() {
		w.mu.Lock()
		w.port = nil
		w.up = nil
		w.mu.Unlock()
	}
}

// write writes b whole to the attached port, waiting up to plugGrace for
// one; it returns ErrUnplugged when there is none.
func (w *wire) write(b []byte) error {
	w.mu.Lock()
	if w.port == nil {
		up := w.upChan()
		w.mu.Unlock()
		t := time.NewTimer(plugGrace)
		select {
		case <-up:
			t.Stop()
		case <-t.C:
			return ErrUnplugged
		}
		w.mu.Lock()
	}
	defer w.mu.Unlock()
	if w.port == nil {
		return ErrUnplugged
	}
	if _, err := w.port.Write(b); err != nil {
		return fmt.Errorf("sim: write: %w", err)
	}
	return nil
}

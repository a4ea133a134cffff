package main

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"termagent/hal"
	"termagent/hal/door"
	"termagent/hal/haltest"
)

// A door that cannot be opened at first fails with hal.ErrFault (the agent
// then reports the module faulty), is retried at most once per interval,
// and is used as soon as an attempt succeeds; Close closes it and later
// calls see hal.ErrClosed.
func TestRetryOpen(t *testing.T) {
	var attempts atomic.Int32
	var fail atomic.Bool
	fail.Store(true)
	unplugged := errors.New("no such file or directory")
	none := door.NewNone(time.Second)
	d := newLazyDoor(func(context.Context) (hal.Door, error) {
		attempts.Add(1)
		if fail.Load() {
			return nil, unplugged
		}
		return none, nil
	}, time.Hour)
	ctx := context.Background()

	if err := d.open(ctx); !errors.Is(err, hal.ErrFault) || !errors.Is(err, unplugged) {
		t.Fatalf("first open: %v, want a fault wrapping the cause", err)
	}
	if err := d.Unlock(ctx, time.Second); !errors.Is(err, hal.ErrFault) {
		t.Fatalf("Unlock before the door opened: %v, want hal.ErrFault", err)
	}
	if n := attempts.Load(); n != 1 {
		t.Fatalf("%d open attempts within the interval, want 1", n)
	}
	if d.State().Unlocked {
		t.Error("a door that is not open reads unlocked")
	}

	// The interval has passed (interval 0 from now on) and the device is back.
	d.interval = 0
	fail.Store(false)
	if err := d.Unlock(ctx, time.Second); err != nil {
		t.Fatalf("Unlock after the door appeared: %v", err)
	}
	if !d.State().Unlocked || attempts.Load() != 2 {
		t.Errorf("state %+v after %d attempts", d.State(), attempts.Load())
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if none.State().Unlocked {
		t.Error("Close did not relock the door it opened")
	}
	if err := d.Unlock(ctx, time.Second); !errors.Is(err, hal.ErrClosed) {
		t.Errorf("Unlock after Close: %v, want hal.ErrClosed", err)
	}
	if err := d.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// Close during a slow open does not wait for it, and the device that
// opened afterwards is closed at once.
func TestRetryOpenCloseDuringOpen(t *testing.T) {
	release := make(chan struct{})
	opened := make(chan *door.None, 1)
	d := newLazyDoor(func(context.Context) (hal.Door, error) {
		<-release
		n := door.NewNone(time.Second)
		opened <- n
		return n, nil
	}, 0)
	ctx := context.Background()
	done := make(chan error, 1)
	go func() { done <- d.open(ctx) }()
	haltest.Eventually(t, "the open attempt to start", func() bool {
		d.mu.Lock()
		defer d.mu.Unlock()
		return d.opening
	})
	if err := d.Unlock(ctx, time.Second); !errors.Is(err, hal.ErrFault) {
		t.Errorf("Unlock during the open: %v, want hal.ErrFault", err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	close(release)
	if err := <-done; !errors.Is(err, hal.ErrClosed) {
		t.Errorf("open finishing after Close: %v, want hal.ErrClosed", err)
	}
	n := <-opened
	if err := n.Unlock(ctx, time.Second); err == nil {
		t.Error("the device opened after Close was not closed")
	}
}

package agent

import (
	"context"
	"fmt"
	"sync"
	"time"

	"termagent/hal"
)

// doorWatch is the door supervision's state (DoorWatchConfig): whether an
// opening is allowed now, the sensor's last state, and the two alarms.
// Guarded by mu; the held-open timer runs on its own goroutine.
type doorWatch struct {
	mu           sync.Mutex
	allowedUntil time.Time // an opening before it is allowed
	known        bool      // the sensor's state is known (an edge, or read at start)
	open         bool      // the sensor says open
	openedAt     time.Time
	heldOpen     bool
	forced       bool
	alarmSince   time.Time
	timer        *time.Timer
	gen          uint64 // bumped at every sensor edge; a stale timer sees a newer one
	stopped      bool
}

// sensorState is implemented by door inputs that know the sensor's state
// (hal/evdev's DoorInputs).
type sensorState interface {
	Open() (open, hasSensor bool)
}

// inputsModule names the door inputs in Status and events: "door" when
// the relay's own driver reads them.
func (a *Agent) inputsModule() string {
	if a.parts.DoorInputs != nil {
		return moduleDoorInputs
	}
	return moduleDoor
}

// initDoorWatch reads the sensor's state at start, where the inputs can
// tell. A door found open at start is neither held open nor forced: the
// watch begins at its next edge.
func (a *Agent) initDoorWatch() {
	w := &a.watch
	w.mu.Lock()
	defer w.mu.Unlock()
	if s, ok := a.inputs.(sensorState); ok {
		if open, has := s.Open(); has {
			w.known, w.open = true, open
		}
	} else if d := a.parts.Door; d != nil && a.parts.DoorInputs == nil {
		if st := d.State(); st.HasSensor {
			w.known, w.open = true, st.Open
		}
	}
}

// stopDoorWatch stops the held-open timer (Run's end).
func (a *Agent) stopDoorWatch() {
	w := &a.watch
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped = true
	if w.timer != nil {
		w.timer.Stop()
	}
}

// allowOpen lets the door open without alarm until the lock relocks
// (Access.DoorPulse from now) plus DoorWatch.Grace. Every granted access,
// remote open and exit button press calls it before the lock is released.
func (a *Agent) allowOpen() {
	until := a.cfg.Now().Add(a.cfg.Access.DoorPulse + a.cfg.DoorWatch.Grace)
	w := &a.watch
	w.mu.Lock()
	if until.After(w.allowedUntil) {
		w.allowedUntil = until
	}
	w.mu.Unlock()
}

// runDoorInputs follows the door's inputs: the exit button opens the door
// (and is recorded when DoorWatch.RecordExit says so); the sensor's edges
// are supervised (doorEdge). A failing input device is a module fault,
// retried with backoff.
func (a *Agent) runDoorInputs(ctx context.Context) {
	module := a.inputsModule()
	a.readerLoop(ctx, module, func(ctx context.Context) error {
		ev, err := a.inputs.NextInput(ctx)
		if err != nil {
			return err
		}
		if ev.At.IsZero() {
			ev.At = a.cfg.Now()
		}
		a.log.Info().Stringer("input", ev.Kind).Bool("active", ev.Active).Msg("door input")
		switch ev.Kind {
		case hal.ExitButton:
			if ev.Active {
				a.exitOpen(ctx, ev.At)
			}
		case hal.DoorSensor:
			a.doorEdge(ev.Active)
		}
		return nil
	})
}

// exitOpen opens the door for the exit button, recorded (record first,
// like any grant) when DoorWatch.RecordExit is set.
func (a *Agent) exitOpen(ctx context.Context, at time.Time) {
	acc := access{kind: a.cfg.Access.OpenDoorTypes.ExitButton, granted: true, at: at, inOut: 2}
	var err error
	if a.cfg.DoorWatch.RecordExit {
		err = a.openWithRecord(ctx, acc)
	} else {
		err = a.openDoor(ctx)
	}
	a.signal(acc, err == nil)
}

// doorEdge supervises one sensor edge: an opening outside the allowed
// window is forced; an allowed one arms the held-open timer; a closing
// clears both alarms, telling the server the door is closed again.
func (a *Agent) doorEdge(open bool) {
	now := a.cfg.Now()
	w := &a.watch
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.known && w.open == open {
		return // a repeat (a reopened device delivers its state again)
	}
	w.known, w.open = true, open
	w.gen++
	if w.timer != nil {
		w.timer.Stop()
		w.timer = nil
	}
	if !open {
		switch {
		case w.forced:
			a.sendEvent(a.cfg.Events.DoorForced, fmt.Sprintf("closed: the forced door closed after %v", now.Sub(w.openedAt).Round(time.Second)))
		case w.heldOpen:
			a.sendEvent(a.cfg.Events.DoorHeldOpen, fmt.Sprintf("closed: the door closed after %v open", now.Sub(w.openedAt).Round(time.Second)))
		}
		w.forced, w.heldOpen, w.alarmSince = false, false, time.Time{}
		return
	}
	w.openedAt = now
	allowed := !now.After(w.allowedUntil)
	if d := a.parts.Door; d != nil && d.State().Unlocked {
		allowed = true // the lock is released: someone was let in
	}
	if !allowed {
		w.forced, w.alarmSince = true, now
		a.log.Error().Msg("door forced: it opened with no grant, exit button or remote open")
		a.sendEvent(a.cfg.Events.DoorForced, "door forced: opened with no grant, exit button or remote open")
		return
	}
	held := a.cfg.DoorWatch.HeldOpen
	if held < 0 || w.stopped {
		return
	}
	gen := w.gen
	w.timer = time.AfterFunc(held, func() { a.heldOpenFired(gen, held) })
}

// heldOpenFired raises the held-open alarm if the door is still open since
// the edge that armed it.
func (a *Agent) heldOpenFired(gen uint64, held time.Duration) {
	w := &a.watch
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.gen != gen || !w.open || w.stopped {
		return
	}
	w.heldOpen, w.alarmSince = true, a.cfg.Now()
	a.log.Warn().Dur("held_open", held).Msg("door held open")
	a.sendEvent(a.cfg.Events.DoorHeldOpen, fmt.Sprintf("door held open longer than %v", held))
}

// doorWatchStatus returns the supervision's part of Status.
func (a *Agent) doorWatchStatus() (known, open, heldOpen, forced bool, since time.Time) {
	w := &a.watch
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.known, w.open, w.heldOpen, w.forced, w.alarmSince
}

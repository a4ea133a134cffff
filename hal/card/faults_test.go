package card_test

import (
	"errors"
	"testing"
	"time"

	"termagent/hal"
	"termagent/hal/backoff"
	"termagent/hal/card"
	"termagent/hal/sim"
)

// A reader repeats a card's frame while it stays in the field. Repeats that
// arrive while nobody calls ReadCard (the agent is busy opening the door)
// are still repeats: the filter goes by when the bytes arrived, not by when
// they were decoded.
func TestRepeatsWhileNobodyReadsAreStillRepeats(t *testing.T) {
	g := newRig(t, sim.CardReaderConfig{Repeats: 5, RepeatEvery: 50 * time.Millisecond}, card.Config{RepeatWindow: time.Second})
	g.swipe(t, "0006547886")
	if c := g.read(t); c.Number != "0006547886" {
		t.Fatalf("card %q", c.Number)
	}
	// The consumer is busy for longer than the repeat window; this sleep
	// makes that delay, it waits for nothing.
	time.Sleep(1500 * time.Millisecond)
	g.expectNothing(t)
}

// waitHealth waits for the reader's health to be ok (or not).
func waitHealth(t *testing.T, r hal.HealthReporter, ok bool) hal.Health {
	t.Helper()
	deadline := time.After(hangDeadline)
	for {
		h, changed := r.Health()
		if h.OK == ok {
			return h
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("health stayed %+v, want ok=%v", h, ok)
		}
	}
}

// An idle reader notices its port vanish and come back, and a card swiped
// right after the replug, before the driver reopened the port, is
// delivered.
func TestUnplugSeenWhileIdleAndSwipeRightAfterReplugKept(t *testing.T) {
	g := newRig(t, sim.CardReaderConfig{Repeats: 1},
		card.Config{Backoff: backoff.Policy{Min: 400 * time.Millisecond, Max: 400 * time.Millisecond}})
	if err := g.plug.Unplug(); err != nil {
		t.Fatal(err)
	}
	h := waitHealth(t, g.reader, false)
	if !errors.Is(h.Err, hal.ErrFault) {
		t.Errorf("health after unplug %+v, want a fault", h)
	}
	if err := g.plug.Replug(); err != nil {
		t.Fatal(err)
	}
	g.swipe(t, "0000000042") // at once: the driver's next reopen is up to 400 ms away
	if c := g.read(t); c.Number != "0000000042" {
		t.Fatalf("card after replug %q", c.Number)
	}
	waitHealth(t, g.reader, true)
}

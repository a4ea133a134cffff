package door_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"termagent/hal"
	"termagent/hal/backoff"
	"termagent/hal/door"
	"termagent/hal/haltest"
	"termagent/hal/internal/porttest"
	"termagent/hal/sim"
)

const hangDeadline = 20 * time.Second

func TestLCUSGolden(t *testing.T) {
	for _, tc := range []struct {
		ch   byte
		on   bool
		want []byte
	}{
		{1, true, []byte{0xA0, 0x01, 0x01, 0xA2}},
		{1, false, []byte{0xA0, 0x01, 0x00, 0xA1}},
		{2, true, []byte{0xA0, 0x02, 0x01, 0xA3}},
		{8, false, []byte{0xA0, 0x08, 0x00, 0xA8}},
	} {
		if got := door.AppendLCUS(nil, tc.ch, tc.on); !bytes.Equal(got, tc.want) {
			t.Errorf("channel %d on=%v: % X, want % X", tc.ch, tc.on, got, tc.want)
		}
	}
}

type lcusRig struct {
	relay *sim.Relay
	plug  *sim.Plug
	door  *door.LCUS
}

func newLCUSRig(t *testing.T, cfg door.LCUSConfig, extraLog io.Writer) *lcusRig {
	t.Helper()
	relay, err := sim.NewRelay(sim.RelayConfig{Channels: 2})
	if err != nil {
		t.Fatal(err)
	}
	plug, err := sim.Attach(relay, filepath.Join(t.TempDir(), "relay"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { plug.Close() })
	cfg.Port = plug.Path()
	cfg.Backoff = backoff.Policy{Min: 10 * time.Millisecond, Max: 100 * time.Millisecond}
	var out io.Writer = zerolog.NewTestWriter(t)
	if extraLog != nil {
		out = io.MultiWriter(out, extraLog)
	}
	cfg.Logger = zerolog.New(out)
	d, err := door.OpenLCUS(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return &lcusRig{relay: relay, plug: plug, door: d}
}

func (g *lcusRig) wait(t *testing.T, what string, cond func(sim.RelayState) bool) sim.RelayState {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hangDeadline)
	defer cancel()
	s, err := g.relay.Wait(ctx, cond)
	if err != nil {
		t.Fatalf("waiting for %s: %v (state %+v)", what, err, s)
	}
	return s
}

func isOn(s sim.RelayState) bool  { return s.On }
func isOff(s sim.RelayState) bool { return !s.On }

func TestLCUSStartsReleasedUnlocksAndRelocks(t *testing.T) {
	g := newLCUSRig(t, door.LCUSConfig{}, nil)
	g.wait(t, "the release frame sent at start", func(s sim.RelayState) bool { return s.Switches == 1 && !s.On })
	if err := g.door.Unlock(context.Background(), 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if !g.door.State().Unlocked {
		t.Fatal("State not unlocked after Unlock returned")
	}
	g.wait(t, "relay on", isOn)
	s := g.wait(t, "relay off after the pulse", isOff)
	if s.Switches != 3 || s.BadFrames != 0 || s.Channels[1] {
		t.Fatalf("board state %+v: want 3 valid frames on channel 1 only", s)
	}
	haltest.Eventually(t, "State to show locked", func() bool { return !g.door.State().Unlocked })
}

func TestLCUSChannel(t *testing.T) {
	g := newLCUSRig(t, door.LCUSConfig{Channel: 2}, nil)
	if err := g.door.Unlock(context.Background(), time.Hour); err != nil {
		t.Fatal(err)
	}
	s := g.wait(t, "channel 2 on", func(s sim.RelayState) bool { return s.Channels[1] })
	if s.On {
		t.Fatal("channel 1 switched too")
	}
	if _, err := door.OpenLCUS(door.LCUSConfig{Port: g.plug.Path(), Channel: 9}); err == nil {
		t.Fatal("channel 9 accepted")
	}
}

func TestLCUSUnlockNeverBlocksForD(t *testing.T) {
	g := newLCUSRig(t, door.LCUSConfig{}, nil)
	done := make(chan error, 1)
	go func() { done <- g.door.Unlock(context.Background(), time.Hour) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(hangDeadline):
		t.Fatal("Unlock(1h) blocked")
	}
	g.wait(t, "relay on", isOn)
}

func TestLCUSCloseReleasesRelay(t *testing.T) {
	g := newLCUSRig(t, door.LCUSConfig{}, nil)
	if err := g.door.Unlock(context.Background(), time.Hour); err != nil {
		t.Fatal(err)
	}
	on := g.wait(t, "relay on", isOn)
	if err := g.door.Close(); err != nil {
		t.Fatal(err)
	}
	// The board is still plugged in and powered: only a frame can have
	// released the relay.
	s := g.wait(t, "relay released by Close", isOff)
	if s.Switches != on.Switches+1 {
		t.Fatalf("switches %d → %d: Close did not send the release frame", on.Switches, s.Switches)
	}
	if g.door.State().Unlocked {
		t.Fatal("State unlocked after Close")
	}
	if err := g.door.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := g.door.Unlock(context.Background(), time.Second); !errors.Is(err, hal.ErrClosed) {
		t.Fatalf("Unlock after Close: %v", err)
	}
}

func TestLCUSUnplugReplug(t *testing.T) {
	g := newLCUSRig(t, door.LCUSConfig{}, nil)
	if err := g.door.Unlock(context.Background(), time.Hour); err != nil {
		t.Fatal(err)
	}
	g.wait(t, "relay on", isOn)
	if err := g.plug.Unplug(); err != nil {
		t.Fatal(err)
	}
	g.wait(t, "relay to drop out with the power", isOff)

	// Unplugged: Unlock fails within its context, with a fault naming the port.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	err := g.door.Unlock(ctx, time.Hour)
	cancel()
	if !errors.Is(err, hal.ErrFault) || !strings.Contains(err.Error(), g.plug.Path()) {
		t.Fatalf("Unlock while unplugged: %v, want ErrFault naming the port", err)
	}

	if err := g.plug.Replug(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), hangDeadline)
	defer cancel()
	if err := g.door.Unlock(ctx, 50*time.Millisecond); err != nil {
		t.Fatalf("Unlock after replug: %v", err)
	}
	g.wait(t, "relay on after replug", isOn)
	g.wait(t, "relay off after the pulse", isOff)
}

func TestLCUSRelockRetriedAcrossUnplug(t *testing.T) {
	var logs haltest.Buffer
	g := newLCUSRig(t, door.LCUSConfig{}, &logs)
	if err := g.door.Unlock(context.Background(), time.Second); err != nil {
		t.Fatal(err)
	}
	if s := g.wait(t, "relay on", isOn); s.Switches != 2 {
		t.Fatalf("state %+v", s)
	}
	if err := g.plug.Unplug(); err != nil {
		t.Fatal(err)
	}
	before := g.relay.State().Switches
	if before != 2 {
		t.Skip("the machine was too slow: the hold ended before the unplug")
	}
	// Let the hold end while the board is away, and the relock's own
	// reopen attempt (2 s) run out, so the relock fails and is retried.
	haltest.Eventually(t, "the relock to fail", func() bool { return strings.Contains(logs.String(), "relock failed") })
	if err := g.plug.Replug(); err != nil {
		t.Fatal(err)
	}
	// The relock that failed while unplugged is retried and reaches the
	// replugged board as a release frame.
	g.wait(t, "the retried release frame", func(s sim.RelayState) bool { return s.Switches > before && !s.On })
	haltest.Eventually(t, "State to show locked", func() bool { return !g.door.State().Unlocked })
}

// A board missing at open is in the state of one unplugged later (the one
// open path): OpenLCUS succeeds, Health names the port, and once the board
// appears the relay is released (the start's release) and switched on by
// an Unlock.
func TestOpenLCUSMissingPort(t *testing.T) {
	relay, err := sim.NewRelay(sim.RelayConfig{Channels: 1})
	if err != nil {
		t.Fatal(err)
	}
	porttest.MissingAtOpen(t, func(path string) (*door.LCUS, error) {
		return door.OpenLCUS(door.LCUSConfig{Port: path, Backoff: backoff.Policy{Min: 10 * time.Millisecond, Max: 100 * time.Millisecond}})
	}, relay, func(ctx context.Context, d *door.LCUS) error {
		if _, err := relay.Wait(ctx, func(s sim.RelayState) bool { return s.Switches >= 1 && !s.On }); err != nil {
			return fmt.Errorf("the start's release: %w", err)
		}
		if err := d.Unlock(ctx, time.Hour); err != nil {
			return err
		}
		_, err := relay.Wait(ctx, isOn)
		return err
	})
}

func TestLCUSUnpluggedNeverHangs(t *testing.T) {
	g := newLCUSRig(t, door.LCUSConfig{}, nil)
	if err := g.plug.Unplug(); err != nil {
		t.Fatal(err)
	}
	unlocked := make(chan error, 1)
	go func() { unlocked <- g.door.Unlock(context.Background(), time.Hour) }()
	select {
	case err := <-unlocked:
		if !errors.Is(err, hal.ErrFault) {
			t.Fatalf("Unlock without a deadline on an unplugged board: %v, want ErrFault", err)
		}
	case <-time.After(hangDeadline):
		t.Fatal("Unlock without a deadline hung on an unplugged board")
	}
	go func() { unlocked <- g.door.Unlock(context.Background(), time.Hour) }()
	closed := make(chan error, 1)
	go func() { closed <- g.door.Close() }()
	for _, c := range []chan error{closed, unlocked} {
		select {
		case <-c:
		case <-time.After(hangDeadline):
			t.Fatal("Close or Unlock hung on an unplugged board")
		}
	}
	if g.door.State().Unlocked {
		t.Fatal("unlocked after a failed Unlock and Close")
	}
}

// An idle board's disappearance is noticed without any Unlock, and its
// return too.
func TestLCUSHealthSeesUnplugWhileIdle(t *testing.T) {
	g := newLCUSRig(t, door.LCUSConfig{}, nil)
	waitHealth := func(ok bool) hal.Health {
		t.Helper()
		deadline := time.After(hangDeadline)
		for {
			h, changed := g.door.Health()
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
	waitHealth(true)
	if err := g.plug.Unplug(); err != nil {
		t.Fatal(err)
	}
	if h := waitHealth(false); !errors.Is(h.Err, hal.ErrFault) || !strings.Contains(h.Err.Error(), g.plug.Path()) {
		t.Errorf("health after unplug %+v, want a fault naming the port", h)
	}
	if err := g.plug.Replug(); err != nil {
		t.Fatal(err)
	}
	waitHealth(true)
	if err := g.door.Unlock(context.Background(), 50*time.Millisecond); err != nil {
		t.Fatalf("Unlock after replug: %v", err)
	}
	g.wait(t, "relay on after replug", isOn)
}

package evdev_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"termagent/hal"
	"termagent/hal/backoff"
	"termagent/hal/card"
	"termagent/hal/evdev"
	"termagent/hal/sim"
)

// hangDeadline catches hangs; it asserts nothing about speed.
const hangDeadline = 20 * time.Second

func newInput(t *testing.T, size int) *sim.InputDevice {
	t.Helper()
	dev, err := sim.NewInputDevice(filepath.Join(t.TempDir(), "event-kbd"), sim.InputConfig{EventSize: size})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dev.Close() })
	return dev
}

func config(t *testing.T, dev *sim.InputDevice, size int) evdev.Config {
	return evdev.Config{
		Device:    dev.Path(),
		EventSize: size,
		Backoff:   backoff.Policy{Min: 10 * time.Millisecond, Max: 100 * time.Millisecond},
		Logger:    zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.DebugLevel),
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), hangDeadline)
	t.Cleanup(cancel)
	return ctx
}

// The real driver reads the simulator's input_event stream from a FIFO, in
// both record layouts.
func TestCardReaderOnStream(t *testing.T) {
	for _, size := range []int{16, 24} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			dev := newInput(t, size)
			r, err := evdev.OpenCardReader(config(t, dev, size))
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			ctx := ctxT(t)
			if err := dev.Type(ctx, "0006547886\n", 0); err != nil {
				t.Fatal(err)
			}
			c, err := r.ReadCard(ctx)
			if err != nil || c.Number != "0006547886" {
				t.Fatalf("ReadCard %+v %v", c, err)
			}
			if time.Since(c.At) > hangDeadline || c.At.After(time.Now()) {
				t.Fatalf("At %v is not the key's time", c.At)
			}
		})
	}
}

// A partial number followed by silence is dropped, counted, and never glued
// onto the next; a number the line rules refuse is dropped and counted.
func TestCardReaderPartialAndRefused(t *testing.T) {
	dev := newInput(t, 0)
	cfg := config(t, dev, 0)
	cfg.Line = card.Line{Hex: true, MinDigits: 6}
	cfg.Format = card.Format{Style: card.Text}
	r, err := evdev.OpenCardReader(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx := ctxT(t)
	if err := dev.Type(ctx, "3D12", 0); err != nil {
		t.Fatal(err)
	}
	for r.Stats().Dropped == 0 { // the silence is seen by the driver, however long it takes
		if ctx.Err() != nil {
			t.Fatal("partial number never dropped")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := dev.Type(ctx, "123\n3D12D6\n", 0); err != nil {
		t.Fatal(err)
	}
	c, err := r.ReadCard(ctx)
	if err != nil || c.Number != "3D12D6" {
		t.Fatalf("ReadCard %+v %v", c, err)
	}
	if s := r.Stats(); s.Dropped != 2 || s.Cards != 1 {
		t.Fatalf("stats %+v, want 2 dropped (partial, too short), 1 card", s)
	}
}

func TestKeypadOnStream(t *testing.T) {
	dev := newInput(t, 0)
	k, err := evdev.OpenKeypad(config(t, dev, 0))
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	ctx := ctxT(t)
	if err := dev.Type(ctx, "1234#*\n\x1b\b", 0); err != nil {
		t.Fatal(err)
	}
	var got []byte
	for range 9 {
		key, err := k.ReadKey(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, key.Char)
	}
	if want := "1234#*\n\x1b\b"; string(got) != want {
		t.Fatalf("keys %q, want %q", got, want)
	}
}

func TestCloseUnblocksAndIsIdempotent(t *testing.T) {
	dev := newInput(t, 0)
	r, err := evdev.OpenCardReader(config(t, dev, 0))
	if err != nil {
		t.Fatal(err)
	}
	k, err := evdev.OpenKeypad(config(t, dev, 0))
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 2)
	go func() { _, err := r.ReadCard(context.Background()); errs <- err }()
	go func() { _, err := k.ReadKey(context.Background()); errs <- err }()
	time.Sleep(50 * time.Millisecond) // let them block (the test holds either way)
	for _, c := range []interface{ Close() error }{r, k, r, k} {
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		if err := <-errs; !errors.Is(err, hal.ErrClosed) {
			t.Fatalf("blocked read returned %v, want ErrClosed", err)
		}
	}
	if h, _ := r.Health(); h.OK || !errors.Is(h.Err, hal.ErrClosed) {
		t.Fatalf("health after Close %+v", h)
	}
}

func TestOpenErrors(t *testing.T) {
	// /dev/null is a character device that refuses EVIOCGRAB: a device
	// that cannot be grabbed is a fault, not silently shared.
	k, err := evdev.OpenKeypad(evdev.Config{Device: "/dev/null"})
	if err != nil {
		t.Fatalf("ungrabbable character device: %v", err)
	}
	if h, _ := k.Health(); h.OK || !errors.Is(h.Err, hal.ErrFault) || !strings.Contains(h.Err.Error(), "grab") {
		t.Fatalf("ungrabbable character device: health %+v", h)
	}
	k.Close()
	if _, err := evdev.OpenKeypad(evdev.Config{}); err == nil {
		t.Fatal("no device path was taken")
	}
	if _, err := evdev.OpenKeypad(evdev.Config{Device: "/dev/null", EventSize: 20}); !errors.Is(err, evdev.ErrEventSize) {
		t.Fatalf("event size 20: %v", err)
	}
	if _, err := evdev.OpenCardReader(evdev.Config{Device: "/dev/null", Line: card.Line{MinDigits: 30}}); err == nil {
		t.Fatal("line accepting nothing was taken")
	}
}

func TestFaultInputUnplugged(t *testing.T) {
	dev := newInput(t, 0)
	r, err := evdev.OpenCardReader(config(t, dev, 0))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx := ctxT(t)
	_, wake := r.Health()
	pulled := time.Now()
	if err := dev.Unplug(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-wake:
	case <-ctx.Done():
		t.Fatal("unplug not noticed")
	}
	h, wake := r.Health()
	if h.OK || !errors.Is(h.Err, hal.ErrFault) {
		t.Fatalf("health after unplug %+v", h)
	}
	detect := time.Since(pulled)
	if err := dev.Replug(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-wake:
	case <-ctx.Done():
		t.Fatal("replug not noticed")
	}
	if h, _ := r.Health(); !h.OK {
		t.Fatalf("health after replug %+v", h)
	}
	if err := dev.Type(ctx, "0006547886\n", 0); err != nil {
		t.Fatal(err)
	}
	c, err := r.ReadCard(ctx)
	if err != nil || c.Number != "0006547886" {
		t.Fatalf("card after replug %+v %v", c, err)
	}
	t.Logf("FAULTROW\t%s\t%s\t%s", "USB wedge reader unplugged and replugged", "health lost (fault), device reopened by path, next card reads",
		fmt.Sprintf("detect %v, reopens %d", detect.Round(time.Microsecond), r.Stats().Reopens))
}

// A device missing at open is in the state of one unplugged later: Open
// succeeds, Health reports the fault, and the device is opened with the
// backoff when it appears (a USB reader plugged in after boot).
func TestFaultInputMissingAtStart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "event-kbd")
	cfg := evdev.Config{
		Device:  path,
		Backoff: backoff.Policy{Min: 10 * time.Millisecond, Max: 100 * time.Millisecond},
		Logger:  zerolog.New(zerolog.NewTestWriter(t)),
	}
	r, err := evdev.OpenCardReader(cfg)
	if err != nil {
		t.Fatalf("missing device at open: %v", err)
	}
	defer r.Close()
	h, wake := r.Health()
	if h.OK || !errors.Is(h.Err, hal.ErrFault) {
		t.Fatalf("health of a missing device %+v", h)
	}
	ctx := ctxT(t)
	plugged := time.Now()
	dev, err := sim.NewInputDevice(path, sim.InputConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	select {
	case <-wake:
	case <-ctx.Done():
		t.Fatal("device plugged in after open not noticed")
	}
	if h, _ := r.Health(); !h.OK {
		t.Fatalf("health after plug-in %+v", h)
	}
	found := time.Since(plugged)
	if err := dev.Type(ctx, "0006547886\n", 0); err != nil {
		t.Fatal(err)
	}
	if c, err := r.ReadCard(ctx); err != nil || c.Number != "0006547886" {
		t.Fatalf("card after plug-in %+v %v", c, err)
	}
	// The door inputs take the same path.
	in, err := evdev.OpenDoorInputs(evdev.DoorConfig{Device: filepath.Join(t.TempDir(), "gpio-keys")})
	if err != nil {
		t.Fatalf("missing door inputs at open: %v", err)
	}
	defer in.Close()
	if h, _ := in.Health(); h.OK || !errors.Is(h.Err, hal.ErrFault) {
		t.Fatalf("health of missing door inputs %+v", h)
	}
	t.Logf("FAULTROW\t%s\t%s\t%s", "USB wedge reader missing at start", "starts lost (fault shown), opened when it appears, next card reads",
		fmt.Sprintf("found %v after plug-in", found.Round(time.Millisecond)))
}

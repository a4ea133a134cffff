package keypad_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"termagent/hal"
	"termagent/hal/backoff"
	"termagent/hal/keypad"
	"termagent/hal/sim"
)

// hangDeadline catches hangs; it asserts nothing about speed.
const hangDeadline = 20 * time.Second

func TestDecoder(t *testing.T) {
	in := []byte("12ab#*CD\r\n\n\r\x1b\x08\x7f\x00xE9")
	var d keypad.Decoder
	var got []byte
	noise := 0
	for _, b := range in {
		c, ok, bad := d.Push(b)
		if ok {
			got = append(got, c)
		}
		if bad {
			noise++
		}
	}
	want := []byte{'1', '2', 'A', 'B', '#', '*', 'C', 'D', hal.KeyEnter, hal.KeyEnter, hal.KeyEnter, hal.KeyEscape, hal.KeyBackspace, hal.KeyBackspace, '9'}
	if string(got) != string(want) || noise != 3 {
		t.Fatalf("keys %q noise %d, want %q and 3", got, noise, want)
	}
}

func FuzzDecoder(f *testing.F) {
	f.Add([]byte("1234#\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		var d keypad.Decoder
		for _, b := range in {
			c, ok, bad := d.Push(b)
			if ok && bad {
				t.Fatal("a key that is noise")
			}
			if ok && !(c >= '0' && c <= '9' || c == '*' || c == '#' || c >= 'A' && c <= 'D' || c == hal.KeyEnter || c == hal.KeyEscape || c == hal.KeyBackspace) {
				t.Fatalf("key %q from %q", c, b)
			}
		}
	})
}

type rig struct {
	sim  *sim.Keypad
	plug *sim.Plug
	kp   *keypad.Serial
}

func newRig(t *testing.T) *rig {
	t.Helper()
	dev, err := sim.NewKeypad(sim.KeypadConfig{KeyEvery: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	plug, err := sim.Attach(dev, filepath.Join(t.TempDir(), "keypad"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { plug.Close() })
	kp, err := keypad.Open(keypad.Config{
		Port:    plug.Path(),
		Backoff: backoff.Policy{Min: 10 * time.Millisecond, Max: 200 * time.Millisecond},
		Logger:  zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.DebugLevel),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { kp.Close() })
	return &rig{sim: dev, plug: plug, kp: kp}
}

func readKeys(t *testing.T, kp *keypad.Serial, n int) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hangDeadline)
	defer cancel()
	var got []byte
	for range n {
		k, err := kp.ReadKey(ctx)
		if err != nil {
			t.Fatalf("ReadKey after %q: %v", got, err)
		}
		got = append(got, k.Char)
	}
	return string(got)
}

func TestSerialAgainstSim(t *testing.T) {
	g := newRig(t)
	ctx, cancel := context.WithTimeout(context.Background(), hangDeadline)
	defer cancel()
	if err := g.sim.WriteRaw([]byte{0x00, 0xFF}); err != nil { // noise first
		t.Fatal(err)
	}
	for _, keys := range []string{"1234#", "*", "enter", "esc", "bs"} {
		if err := g.sim.Press(ctx, keys); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := readKeys(t, g.kp, 9), "1234#*\n\x1b\x08"; got != want {
		t.Fatalf("keys %q, want %q", got, want)
	}
	for g.kp.Stats().Noise != 2 { // counted by the read goroutine, with the keys
		if ctx.Err() != nil {
			t.Fatalf("stats %+v", g.kp.Stats())
		}
		time.Sleep(time.Millisecond)
	}
	if _, err := sim.KeyBytes("12x"); err == nil {
		t.Fatal("key x accepted")
	}
}

func TestCloseUnblocks(t *testing.T) {
	g := newRig(t)
	errc := make(chan error, 1)
	go func() { _, err := g.kp.ReadKey(context.Background()); errc <- err }()
	time.Sleep(20 * time.Millisecond) // let it block (the test holds either way)
	if err := g.kp.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, hal.ErrClosed) {
		t.Fatalf("ReadKey after Close: %v", err)
	}
	if err := g.kp.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
}

func TestFaultKeypadUnplugged(t *testing.T) {
	g := newRig(t)
	ctx, cancel := context.WithTimeout(context.Background(), hangDeadline)
	defer cancel()
	_, wake := g.kp.Health()
	pulled := time.Now()
	if err := g.plug.Unplug(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-wake:
	case <-ctx.Done():
		t.Fatal("unplug not noticed")
	}
	h, wake := g.kp.Health()
	if h.OK || !errors.Is(h.Err, hal.ErrFault) {
		t.Fatalf("health after unplug %+v", h)
	}
	detect := time.Since(pulled)
	if err := g.plug.Replug(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-wake:
	case <-ctx.Done():
		t.Fatal("replug not noticed")
	}
	if err := g.sim.Press(ctx, "42#"); err != nil {
		t.Fatal(err)
	}
	if got := readKeys(t, g.kp, 3); got != "42#" {
		t.Fatalf("keys after replug %q", got)
	}
	t.Logf("FAULTROW\t%s\t%s\t%s", "serial keypad unplugged and replugged", "health lost (fault), port reopened, next keys read", fmt.Sprintf("detect %v", detect.Round(time.Microsecond)))
}

package card_test

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
	"termagent/hal/internal/porttest"
	"termagent/hal/sim"
)

// hangDeadline catches hangs; it asserts nothing about speed.
const hangDeadline = 20 * time.Second

type rig struct {
	sim    *sim.CardReader
	plug   *sim.Plug
	reader *card.Reader
}

func newRig(t *testing.T, simCfg sim.CardReaderConfig, cfg card.Config) *rig {
	t.Helper()
	dev, err := sim.NewCardReader(simCfg)
	if err != nil {
		t.Fatal(err)
	}
	plug, err := sim.Attach(dev, filepath.Join(t.TempDir(), "card"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { plug.Close() })
	cfg.Port = plug.Path()
	if cfg.Driver == "" {
		cfg.Driver = card.Protocol(dev.Protocol())
	}
	if cfg.Backoff == (backoff.Policy{}) {
		cfg.Backoff = backoff.Policy{Min: 10 * time.Millisecond, Max: 200 * time.Millisecond}
	}
	cfg.Logger = zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.DebugLevel)
	r, err := card.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return &rig{sim: dev, plug: plug, reader: r}
}

func (g *rig) swipe(t *testing.T, number string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hangDeadline)
	defer cancel()
	if err := g.sim.Swipe(ctx, number); err != nil {
		t.Fatal(err)
	}
}

func (g *rig) read(t *testing.T) hal.Card {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hangDeadline)
	defer cancel()
	c, err := g.reader.ReadCard(ctx)
	if err != nil {
		t.Fatalf("ReadCard: %v", err)
	}
	return c
}

// expectNothing asserts no card is pending: ReadCard must come back with
// the context's error, not a card and not a hang.
func (g *rig) expectNothing(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	c, err := g.reader.ReadCard(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("ReadCard on a quiet line: %+v, %v; want DeadlineExceeded", c, err)
	}
}

func TestEveryProtocolOverPTY(t *testing.T) {
	for _, tc := range []struct {
		proto  string
		format card.Format
		line   card.Line
		swipe  string
		want   string
	}{
		{sim.CardRDM6300, card.Format{}, card.Line{}, "0006547886", "0006547886"},
		{sim.CardRDM6300, card.Format{Style: card.Hex}, card.Line{}, "0x010063E9AE", "010063E9AE"},
		{sim.CardGwiot7941, card.Format{}, card.Line{}, "0x06008E6D5D", "0009334109"},
		{sim.CardGwiot7941, card.Format{Style: card.Wiegand26}, card.Line{}, "0x6B3D12D6", "06104822"},
		{sim.CardLine, card.Format{}, card.Line{}, "0006547886", "0006547886"},
		{sim.CardLine, card.Format{Style: card.Text}, card.Line{Hex: true}, "0x3D12D6", "3D12D6"},
	} {
		t.Run(tc.proto+"/"+tc.want, func(t *testing.T) {
			g := newRig(t, sim.CardReaderConfig{Protocol: tc.proto}, card.Config{Format: tc.format, Line: tc.line})
			before := time.Now()
			g.swipe(t, tc.swipe)
			c := g.read(t)
			if c.Number != tc.want {
				t.Fatalf("card %q, want %q", c.Number, tc.want)
			}
			if c.At.Before(before) || len(c.Raw) == 0 {
				t.Fatalf("card %+v: bad At or Raw", c)
			}
			g.expectNothing(t) // the swipe's repeats were suppressed
		})
	}
}

func TestRepeatsSuppressedDistinctCardsDelivered(t *testing.T) {
	g := newRig(t, sim.CardReaderConfig{Repeats: 5, RepeatEvery: 10 * time.Millisecond}, card.Config{})
	for _, n := range []string{"0000000001", "0000000002", "0000000001"} {
		g.swipe(t, n)
	}
	for _, want := range []string{"0000000001", "0000000002", "0000000001"} {
		if c := g.read(t); c.Number != want {
			t.Fatalf("card %q, want %q", c.Number, want)
		}
	}
	g.expectNothing(t)
}

func TestRepeatWindowNegativeDeliversEveryFrame(t *testing.T) {
	g := newRig(t, sim.CardReaderConfig{Repeats: 3, RepeatEvery: time.Millisecond}, card.Config{RepeatWindow: -1})
	g.swipe(t, "42")
	for range 3 {
		if c := g.read(t); c.Number != "0000000042" {
			t.Fatalf("card %q", c.Number)
		}
	}
}

func TestStrayBytesBadChecksumsPartialFrames(t *testing.T) {
	for _, proto := range []string{sim.CardRDM6300, sim.CardGwiot7941, sim.CardLine} {
		t.Run(proto, func(t *testing.T) {
			// A long frame gap so the two halves of a frame, written
			// separately, are not taken for a dead partial frame.
			g := newRig(t, sim.CardReaderConfig{Protocol: proto}, card.Config{FrameGap: 10 * time.Second})
			good, err := g.sim.Frame("0000001234")
			if err != nil {
				t.Fatal(err)
			}
			other, _ := g.sim.Frame("0000009999")
			corrupt := []byte(strings.Clone(string(other)))
			corrupt[len(corrupt)-3] ^= 0x01 // checksum (rdm6300, gwiot) or a digit (line)
			for _, chunk := range [][]byte{
				{0xFF, 0x00, 0x7F, 0x02, 0x02, 0x03, 0x0A}, // stray bytes, including frame marks
				corrupt,
				good[:4], good[4:], // one frame in two writes
			} {
				if err := g.sim.WriteRaw(chunk); err != nil {
					t.Fatal(err)
				}
			}
			c := g.read(t)
			if proto == sim.CardLine && c.Number != "0000001234" {
				// A line reader has no checksum: the corrupted line is a
				// different, well-formed number and is delivered first.
				if c.Number != "0000009998" {
					t.Fatalf("card %q, want the corrupted 0000009998 then 0000001234", c.Number)
				}
				c = g.read(t)
			}
			if c.Number != "0000001234" {
				t.Fatalf("card %q, want 0000001234", c.Number)
			}
			g.expectNothing(t)
		})
	}
}

func TestLineNoiseThenCards(t *testing.T) {
	const gap = 20 * time.Millisecond
	for _, proto := range []string{sim.CardRDM6300, sim.CardGwiot7941, sim.CardLine} {
		t.Run(proto, func(t *testing.T) {
			g := newRig(t, sim.CardReaderConfig{Protocol: proto}, card.Config{FrameGap: gap})
			for i := range 5 {
				n := fmt.Sprintf("%010d", 1000+i)
				got := make(chan string, 1)
				go func() {
					ctx, cancel := context.WithTimeout(context.Background(), hangDeadline)
					defer cancel()
					c, err := g.reader.ReadCard(ctx)
					if err != nil {
						got <- err.Error()
						return
					}
					got <- c.Number
				}()
				if err := g.sim.Noise(64); err != nil {
					t.Fatal(err)
				}
				if proto == sim.CardLine {
					// A line has no frame marks: only silence separates
					// noise from the next number. This sleep makes that
					// silence on the line; it waits for nothing.
					time.Sleep(5 * gap)
				}
				g.swipe(t, n)
				if c := <-got; c != n {
					t.Fatalf("after noise: card %q, want %q", c, n)
				}
			}
		})
	}
}

func TestPartialLineDroppedAfterSilence(t *testing.T) {
	g := newRig(t, sim.CardReaderConfig{Protocol: sim.CardLine}, card.Config{FrameGap: 20 * time.Millisecond})
	if err := g.sim.WriteRaw([]byte("12345")); err != nil {
		t.Fatal(err)
	}
	// The reader must be reading while the line is silent for well over the
	// frame gap; this sleep makes that silence, it waits for nothing.
	readErr := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		_, err := g.reader.ReadCard(ctx)
		readErr <- err
	}()
	if err := <-readErr; !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("ReadCard on a partial line: %v", err)
	}
	g.swipe(t, "0006547886")
	if c := g.read(t); c.Number != "0006547886" {
		t.Fatalf("card %q: the stale partial line was glued on", c.Number)
	}
}

func TestSilenceTimesOutWithoutHanging(t *testing.T) {
	g := newRig(t, sim.CardReaderConfig{}, card.Config{})
	g.expectNothing(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := g.reader.ReadCard(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("ReadCard with a cancelled ctx: %v", err)
	}
}

func TestCloseUnblocksReadCard(t *testing.T) {
	g := newRig(t, sim.CardReaderConfig{}, card.Config{FrameGap: time.Hour})
	errc := make(chan error, 1)
	go func() {
		_, err := g.reader.ReadCard(context.Background())
		errc <- err
	}()
	if err := g.reader.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, hal.ErrClosed) {
			t.Fatalf("ReadCard after Close: %v", err)
		}
	case <-time.After(hangDeadline):
		t.Fatal("Close did not unblock ReadCard")
	}
	if err := g.reader.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := g.reader.ReadCard(context.Background()); !errors.Is(err, hal.ErrClosed) {
		t.Fatalf("ReadCard after Close: %v", err)
	}
}

func TestCloseWhileUnplugged(t *testing.T) {
	g := newRig(t, sim.CardReaderConfig{}, card.Config{})
	if err := g.plug.Unplug(); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := g.reader.ReadCard(context.Background())
		errc <- err
	}()
	g.reader.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, hal.ErrClosed) {
			t.Fatalf("ReadCard after Close: %v", err)
		}
	case <-time.After(hangDeadline):
		t.Fatal("Close did not stop the reopen loop")
	}
}

func TestUnplugReplug(t *testing.T) {
	g := newRig(t, sim.CardReaderConfig{}, card.Config{})
	g.swipe(t, "0000000007")
	if c := g.read(t); c.Number != "0000000007" {
		t.Fatalf("card %q", c.Number)
	}
	cards := make(chan hal.Card, 1)
	errc := make(chan error, 1)
	ctx, cancel := context.WithTimeout(context.Background(), hangDeadline)
	defer cancel()
	go func() {
		c, err := g.reader.ReadCard(ctx)
		if err != nil {
			errc <- err
			return
		}
		cards <- c
	}()
	if err := g.plug.Unplug(); err != nil {
		t.Fatal(err)
	}
	if err := g.sim.Swipe(ctx, "1"); !errors.Is(err, sim.ErrUnplugged) {
		t.Fatalf("swipe while unplugged: %v", err)
	}
	if err := g.plug.Replug(); err != nil {
		t.Fatal(err)
	}
	// The driver reopens on its own schedule and drops what queued before
	// it did, as after a real replug; swipe until the card arrives.
	for {
		if err := g.sim.Swipe(ctx, "0000000008"); err != nil {
			t.Fatal(err)
		}
		select {
		case c := <-cards:
			if c.Number != "0000000008" {
				t.Fatalf("after replug: card %q", c.Number)
			}
			return
		case err := <-errc:
			t.Fatalf("ReadCard across unplug: %v", err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// A reader missing at Open is in the state of one unplugged later (the one
// open path): Open succeeds, Health names the port, and once the reader
// appears its cards are read.
func TestOpenMissingPort(t *testing.T) {
	dev, err := sim.NewCardReader(sim.CardReaderConfig{})
	if err != nil {
		t.Fatal(err)
	}
	porttest.MissingAtOpen(t, func(path string) (*card.Reader, error) {
		return card.Open(card.Config{Port: path, Backoff: backoff.Policy{Min: 10 * time.Millisecond, Max: 100 * time.Millisecond}})
	}, dev, func(ctx context.Context, r *card.Reader) error {
		if err := dev.Swipe(ctx, "0006547886"); err != nil {
			return err
		}
		c, err := r.ReadCard(ctx)
		if err == nil && c.Number != "0006547886" {
			err = fmt.Errorf("card %q, want 0006547886", c.Number)
		}
		return err
	})
}

func TestOpenErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "ttyUSB9")
	for _, cfg := range []card.Config{
		{Port: missing, Driver: "wiegand"},
		{Port: missing, Format: card.Format{Style: "roman"}},
		{Port: missing, FrameGap: -1},
		{Port: missing, Driver: card.ProtoLine, Line: card.Line{MinDigits: 10, MaxDigits: 5}},
	} {
		if _, err := card.Open(cfg); err == nil || errors.Is(err, hal.ErrFault) {
			t.Errorf("Open(%+v): %v, want a config error", cfg, err)
		}
	}
}

func TestNoiseStormNeitherHangsNorLosesTheNextCard(t *testing.T) {
	for _, proto := range []string{sim.CardRDM6300, sim.CardGwiot7941} {
		t.Run(proto, func(t *testing.T) {
			g := newRig(t, sim.CardReaderConfig{Protocol: proto}, card.Config{})
			got := make(chan string, 1)
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), hangDeadline)
				defer cancel()
				c, err := g.reader.ReadCard(ctx)
				if err != nil {
					got <- err.Error()
					return
				}
				got <- c.Number
			}()
			for range 4 {
				if err := g.sim.Noise(4096); err != nil {
					t.Fatal(err)
				}
			}
			// Frame marks alone, in every arrangement that could make a
			// decoder wait for bytes that never come.
			for _, b := range [][]byte{{card.STX}, {card.STX, 0x20}, {card.STX, 0x0A, 0x02}} {
				if err := g.sim.WriteRaw(b); err != nil {
					t.Fatal(err)
				}
			}
			g.swipe(t, "0000004321")
			if c := <-got; c != "0000004321" {
				t.Fatalf("after the storm: %q", c)
			}
		})
	}
}

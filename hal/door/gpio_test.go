package door_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"periph.io/x/conn/v3/gpio"

	"termagent/hal"
	"termagent/hal/door"
)

// levelPin is a GPIO line held in memory: what Out drives is what Read
// returns, and drive plays the outside world on an input, signalling an
// edge unless the line is set up without edge detection. It stands in for
// the kernel's GPIO character device, which this machine does not have.
type levelPin struct {
	mu      sync.Mutex
	level   gpio.Level
	outs    []gpio.Level // every level driven by Out, in order
	input   bool
	closed  bool
	noEdges bool // a line whose edge events never come: the door must poll
	edges   chan struct{}
	halt    chan struct{}
}

var _ door.Pin = (*levelPin)(nil)

func newLevelPin(l gpio.Level) *levelPin {
	return &levelPin{level: l, edges: make(chan struct{}, 64), halt: make(chan struct{}, 1)}
}

func (p *levelPin) Out(l gpio.Level) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errors.New("line released")
	}
	p.level, p.input = l, false
	p.outs = append(p.outs, l)
	return nil
}

func (p *levelPin) In(gpio.Pull, gpio.Edge) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.input = true
	return nil
}

func (p *levelPin) Read() gpio.Level {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.level
}

func (p *levelPin) WaitForEdge(timeout time.Duration) bool {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.edges:
		return true
	case <-p.halt:
		return false
	case <-t.C:
		return false
	}
}

func (p *levelPin) Halt() error {
	select {
	case p.halt <- struct{}{}:
	default:
	}
	return nil
}

func (p *levelPin) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
}

func (p *levelPin) drive(l gpio.Level) {
	p.mu.Lock()
	p.level = l
	noEdges := p.noEdges
	p.mu.Unlock()
	if !noEdges {
		p.edges <- struct{}{}
	}
}

func (p *levelPin) get() (gpio.Level, []gpio.Level, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.level, append([]gpio.Level(nil), p.outs...), p.closed
}

func newGPIO(t *testing.T, cfg door.GPIOConfig, pins door.GPIOPins) *door.GPIO {
	t.Helper()
	cfg.Relay = "test"
	g, err := door.NewGPIO(cfg, pins)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return g
}

func TestGPIOPulseRelocks(t *testing.T) {
	for _, activeLow := range []bool{false, true} {
		synctest.Test(t, func(t *testing.T) {
			on, off := gpio.Level(!activeLow), gpio.Level(activeLow)
			relay := newLevelPin(on) // left energised by whoever ran before
			g := newGPIO(t, door.GPIOConfig{ActiveLow: activeLow}, door.GPIOPins{Relay: relay})
			if l, _, _ := relay.get(); l != off {
				t.Fatalf("activeLow=%v: relay %v after start, want released (%v)", activeLow, l, off)
			}
			start := time.Now()
			if err := g.Unlock(context.Background(), 3*time.Second); err != nil {
				t.Fatal(err)
			}
			if time.Since(start) != 0 {
				t.Fatalf("Unlock blocked for %v", time.Since(start))
			}
			if l, _, _ := relay.get(); l != on || !g.State().Unlocked {
				t.Fatalf("after Unlock: relay %v state %+v", l, g.State())
			}
			time.Sleep(3*time.Second - time.Millisecond)
			synctest.Wait()
			if l, _, _ := relay.get(); l != on {
				t.Fatal("relocked before the pulse ended")
			}
			time.Sleep(2 * time.Millisecond)
			synctest.Wait()
			if l, _, _ := relay.get(); l != off || g.State().Unlocked {
				t.Fatalf("after the pulse: relay %v state %+v", l, g.State())
			}
		})
	}
}

func TestGPIORetriggerExtends(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		relay := newLevelPin(gpio.Low)
		g := newGPIO(t, door.GPIOConfig{}, door.GPIOPins{Relay: relay})
		ctx := context.Background()
		g.Unlock(ctx, 3*time.Second)
		time.Sleep(2 * time.Second)
		g.Unlock(ctx, 3*time.Second) // now held until t=5s
		time.Sleep(2 * time.Second)  // t=4s: past the first hold
		synctest.Wait()
		if l, _, _ := relay.get(); l != gpio.High {
			t.Fatal("the second Unlock did not extend the hold")
		}
		time.Sleep(time.Second + time.Millisecond)
		synctest.Wait()
		if l, outs, _ := relay.get(); l != gpio.Low {
			t.Fatalf("not relocked at t=5s: %v", outs)
		}
	})
}

func TestGPIODefaultPulse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		relay := newLevelPin(gpio.Low)
		g := newGPIO(t, door.GPIOConfig{Pulse: 7 * time.Second}, door.GPIOPins{Relay: relay})
		g.Unlock(context.Background(), 0)
		time.Sleep(7*time.Second - time.Millisecond)
		synctest.Wait()
		if !g.State().Unlocked {
			t.Fatal("d=0 did not use the configured pulse")
		}
		time.Sleep(2 * time.Millisecond)
		synctest.Wait()
		if g.State().Unlocked {
			t.Fatal("still unlocked after the configured pulse")
		}
		if err := g.Unlock(context.Background(), door.MaxHold+1); err == nil {
			t.Fatal("Unlock beyond MaxHold accepted")
		}
	})
}

func TestGPIOCloseReleasesRelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		relay, sensor := newLevelPin(gpio.Low), newLevelPin(gpio.Low)
		g, err := door.NewGPIO(door.GPIOConfig{Relay: "r", Sensor: door.InputConfig{Line: "s"}},
			door.GPIOPins{Relay: relay, Sensor: sensor})
		if err != nil {
			t.Fatal(err)
		}
		g.Unlock(context.Background(), time.Hour)
		next := make(chan error, 1)
		go func() {
			_, err := g.NextInput(context.Background())
			next <- err
		}()
		synctest.Wait()
		if err := g.Close(); err != nil {
			t.Fatal(err)
		}
		l, outs, closed := relay.get()
		if l != gpio.Low || !closed || g.State().Unlocked {
			t.Fatalf("after Close: relay %v (history %v) closed=%v state %+v", l, outs, closed, g.State())
		}
		if _, _, closed := sensor.get(); !closed {
			t.Fatal("sensor line not released")
		}
		if err := <-next; !errors.Is(err, hal.ErrClosed) {
			t.Fatalf("NextInput across Close: %v", err)
		}
		if err := g.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		if err := g.Unlock(context.Background(), time.Second); !errors.Is(err, hal.ErrClosed) {
			t.Fatalf("Unlock after Close: %v", err)
		}
		// The relock timer of the hour-long hold must not fire into a
		// released line.
		time.Sleep(2 * time.Hour)
		synctest.Wait()
		if _, outs2, _ := relay.get(); len(outs2) != len(outs) {
			t.Fatalf("relay driven after Close: %v", outs2)
		}
	})
}

func TestGPIOInputsDebounced(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Door shut: the NC sensor pulls the line low. Button released: high.
		sensor, button := newLevelPin(gpio.Low), newLevelPin(gpio.High)
		g := newGPIO(t, door.GPIOConfig{
			Sensor:   door.InputConfig{Line: "s"},
			Button:   door.InputConfig{Line: "b", ActiveLow: true},
			Debounce: 30 * time.Millisecond,
		}, door.GPIOPins{Relay: newLevelPin(gpio.Low), Sensor: sensor, Button: button})
		if s := g.State(); !s.HasSensor || s.Open {
			t.Fatalf("initial state %+v", s)
		}
		ctx := context.Background()

		sensor.drive(gpio.High) // door opens
		ev, err := g.NextInput(ctx)
		if err != nil || ev.Kind != hal.DoorSensor || !ev.Active {
			t.Fatalf("door open: %+v %v", ev, err)
		}
		if !g.State().Open {
			t.Fatal("State does not show the door open")
		}

		button.drive(gpio.Low) // pressed
		if ev, err := g.NextInput(ctx); err != nil || ev.Kind != hal.ExitButton || !ev.Active {
			t.Fatalf("button: %+v %v", ev, err)
		}

		// A 10 ms bounce on the sensor is not an edge.
		sensor.drive(gpio.Low)
		time.Sleep(10 * time.Millisecond)
		sensor.drive(gpio.High)
		short, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		if ev, err := g.NextInput(short); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("bounce delivered: %+v %v", ev, err)
		}
		if !g.State().Open {
			t.Fatal("a bounce changed the door state")
		}
	})
}

func TestGPIOInputsPolledWithoutEdges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sensor := newLevelPin(gpio.Low)
		sensor.noEdges = true
		g := newGPIO(t, door.GPIOConfig{Sensor: door.InputConfig{Line: "s"}},
			door.GPIOPins{Relay: newLevelPin(gpio.Low), Sensor: sensor})
		sensor.drive(gpio.High)
		ev, err := g.NextInput(context.Background())
		if err != nil || !ev.Active {
			t.Fatalf("polled edge: %+v %v", ev, err)
		}
	})
}

func TestGPIOInputQueueKeepsNewest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sensor := newLevelPin(gpio.Low)
		g := newGPIO(t, door.GPIOConfig{Sensor: door.InputConfig{Line: "s"}},
			door.GPIOPins{Relay: newLevelPin(gpio.Low), Sensor: sensor})
		level := gpio.Low
		for range 41 { // more edges than the queue holds, nobody reading
			level = !level
			sensor.drive(level)
			time.Sleep(100 * time.Millisecond)
			synctest.Wait()
		}
		var last hal.DoorInput
		n := 0
		for {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			ev, err := g.NextInput(ctx)
			cancel()
			if err != nil {
				break
			}
			last, n = ev, n+1
		}
		if n == 0 || n > 16 || last.Active != bool(level) {
			t.Fatalf("%d queued, last %+v; want at most 16 ending with active=%v", n, last, level)
		}
	})
}

func TestOpenGPIOWithoutChipIsFault(t *testing.T) {
	_, err := door.OpenGPIO(door.GPIOConfig{Relay: "17", Chip: "no-such-chip"})
	if !errors.Is(err, hal.ErrFault) {
		t.Fatalf("OpenGPIO on a missing chip: %v, want ErrFault", err)
	}
	if _, err := door.OpenGPIO(door.GPIOConfig{}); err == nil || errors.Is(err, hal.ErrFault) {
		t.Fatalf("OpenGPIO without a relay line: %v, want a config error", err)
	}
}

func TestNoneDoor(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d, err := door.Open(door.Config{})
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Unlock(context.Background(), time.Second); err != nil || !d.State().Unlocked {
			t.Fatalf("none: %v %+v", err, d.State())
		}
		time.Sleep(time.Second + time.Millisecond)
		synctest.Wait()
		if d.State().Unlocked {
			t.Fatal("none: still unlocked after the hold")
		}
		d.Close()
		if err := d.Unlock(context.Background(), time.Second); !errors.Is(err, hal.ErrClosed) {
			t.Fatalf("none after Close: %v", err)
		}
	})
	if _, err := door.Open(door.Config{Driver: "solenoid"}); err == nil {
		t.Fatal("unknown driver accepted")
	}
}

package agent_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"

	"termagent/agent"
	"termagent/hal/door"
	"termagent/hal/haltest"
	"termagent/store"
)

// doorLine is a GPIO line held in memory for hal/door's GPIO door: what
// Out drives is what Read returns, and drive plays the outside world on an
// input with an edge. There is no GPIO chip on this machine.
type doorLine struct {
	mu    sync.Mutex
	level gpio.Level
	edges chan struct{}
	halt  chan struct{}
}

var _ door.Pin = (*doorLine)(nil)

func newDoorLine(l gpio.Level) *doorLine {
	return &doorLine{level: l, edges: make(chan struct{}, 64), halt: make(chan struct{}, 1)}
}

func (p *doorLine) Out(l gpio.Level) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.level = l
	return nil
}

func (p *doorLine) In(gpio.Pull, gpio.Edge) error { return nil }

func (p *doorLine) Read() gpio.Level {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.level
}

func (p *doorLine) WaitForEdge(timeout time.Duration) bool {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.edges:
		return true
	case <-p.halt:
	case <-t.C:
	}
	return false
}

func (p *doorLine) Halt() error {
	select {
	case p.halt <- struct{}{}:
	default:
	}
	return nil
}

func (p *doorLine) Close() {}

func (p *doorLine) drive(l gpio.Level) {
	p.mu.Lock()
	p.level = l
	p.mu.Unlock()
	p.edges <- struct{}{}
}

// A GPIO door reads its own sensor and exit button (Door implements
// hal.DoorInputs, no Parts.DoorInputs): an opening with no grant is
// forced; the exit button opens, and the opening it allowed is held open,
// not forced.
func TestGPIODoorOwnInputsSupervised(t *testing.T) {
	srv := newTestServer(t)
	db := openStore(t, store.Config{})
	relay, sensor, button := newDoorLine(gpio.Low), newDoorLine(gpio.Low), newDoorLine(gpio.High)
	g, err := door.NewGPIO(door.GPIOConfig{Relay: "relay", Sensor: door.InputConfig{Line: "sensor"},
		Button: door.InputConfig{Line: "button", ActiveLow: true}, Debounce: 5 * time.Millisecond},
		door.GPIOPins{Relay: relay, Sensor: sensor, Button: button})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	a := startAgent(t, agent.Config{Link: agent.LinkConfig{ServerAddress: srv.addr},
		Access:    agent.AccessConfig{DoorPulse: time.Hour}, // the button's opening is allowed all along
		DoorWatch: agent.DoorWatchConfig{HeldOpen: 200 * time.Millisecond}},
		agent.Parts{Store: db, Door: g})
	srv.peer()
	sensor.drive(gpio.High) // nobody let in
	if ev := firstDoorEvent(t, srv); ev.CommandType != 10 {
		t.Fatalf("door event type %d %q, want forced", ev.CommandType, ev.CommandValue)
	}
	if st := a.Status(context.Background()); !st.DoorForced || !st.DoorOpen || st.Modules["door"].State != agent.ModuleOK {
		t.Fatalf("status forced %v open %v door module %s", st.DoorForced, st.DoorOpen, st.Modules["door"].State)
	}
	sensor.drive(gpio.Low)
	if evs := doorEvents(t, srv, 9, 10); len(evs) != 1 || evs[0].CommandType != 10 {
		t.Fatalf("closing events %d", len(evs))
	}
	button.drive(gpio.Low) // pressed
	haltest.Eventually(t, "the exit button's unlock", func() bool { return a.Status(context.Background()).DoorUnlocked })
	button.drive(gpio.High)
	sensor.drive(gpio.High)
	if ev := firstDoorEvent(t, srv); ev.CommandType != 9 {
		t.Fatalf("after the exit button, door event type %d %q, want held open", ev.CommandType, ev.CommandValue)
	}
	sensor.drive(gpio.Low)
	if evs := doorEvents(t, srv, 9, 10); len(evs) != 1 || evs[0].CommandType != 9 {
		t.Fatalf("closing events %d", len(evs))
	}
}

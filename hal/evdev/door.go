package evdev

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"
	"unsafe"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"termagent/hal"
	"termagent/hal/backoff"
	"termagent/hal/internal/chanq"
)

// Event types and codes of door inputs.
const (
	EvSw           = 0x05
	SwMachineCover = 0x10 // SW_MACHINE_COVER: set = cover (door) closed
	KeyOpen        = 134  // KEY_OPEN
	swBytes        = 8    // bytes of the EVIOCGSW bitmap read (SW_CNT is 17 bits)
	// eviocgsw is EVIOCGSW(8), _IOC(_IOC_READ, 'E', 0x1b, 8).
	eviocgsw = 2<<30 | swBytes<<16 | 'E'<<8 | 0x1b
)

// DoorInputCode names the input event of one door input.
type DoorInputCode struct {
	// Type is the event type: EvSw (a level switch, the usual for a
	// door contact) or EvKey (a button).
	Type uint16 `yaml:"type"`
	// Code is the switch or key code.
	Code uint16 `yaml:"code"`
	// Inverted says value 1 means inactive (door shut, button up), as
	// SW_MACHINE_COVER's "cover closed" does.
	Inverted bool `yaml:"inverted"`
}

// DoorConfig configures DoorInputs. Zero values mean the documented
// defaults.
type DoorConfig struct {
	// Device is the input device of the door's inputs, typically the
	// kernel's gpio-keys device: /dev/input/by-path/platform-<node>-event.
	// Required.
	Device string `yaml:"device"`
	// EventSize is the input_event record size in bytes, 16 or 24; zero
	// means the running process's.
	EventSize int `yaml:"event_size"`
	// Sensor is the door-position switch's event; zero means EV_SW
	// SW_MACHINE_COVER, inverted (set while the door is shut).
	Sensor DoorInputCode `yaml:"sensor"`
	// NoSensor says no door-position switch is wired.
	NoSensor bool `yaml:"no_sensor"`
	// Button is the exit button's event; zero means EV_KEY KEY_OPEN,
	// value 1 while pressed.
	Button DoorInputCode `yaml:"exit_button"`
	// NoButton says no exit button is wired.
	NoButton bool `yaml:"no_button"`
	// Backoff paces reopening a vanished device; zero fields mean 100 ms
	// doubling to 2 s.
	Backoff backoff.Policy `yaml:"-"`
	// Logger receives input changes (info), faults (warn) and reopens
	// (info). The zero Logger discards.
	Logger zerolog.Logger `yaml:"-"`
}

// DoorInputs reads a door's sensor and exit button from an input device:
// the way an embedded Linux board exposes GPIO contacts when its device
// tree declares them as gpio-keys (debounced by the kernel). It implements
// hal.DoorInputs and hal.HealthReporter; the door relay is driven by
// another driver (hal/door). NextInput is for one goroutine at a time;
// the other methods are safe for concurrent use.
type DoorInputs struct {
	dev    *device
	sensor *DoorInputCode // nil when not wired
	button *DoorInputCode
	inputs chan hal.DoorInput

	mu   sync.Mutex
	open bool // the sensor's last state
}

var (
	_ hal.DoorInputs     = (*DoorInputs)(nil)
	_ hal.HealthReporter = (*DoorInputs)(nil)
)

// OpenDoorInputs opens and grabs cfg.Device, reads the sensor's current
// state where the device can tell (EVIOCGSW on a switch) and starts
// watching. Like a serial device, a device missing at open (or whose grab is
// refused: another program reads it) is in the state of one lost later:
// Health reports a fault wrapping hal.ErrFault and the device is opened
// with the backoff when it can be. Open fails only for an invalid
// configuration. The caller
// closes the DoorInputs.
func OpenDoorInputs(cfg DoorConfig) (*DoorInputs, error) {
	dc, err := Config{Device: cfg.Device, EventSize: cfg.EventSize, Backoff: cfg.Backoff, Logger: cfg.Logger}.validate()
	if err != nil {
		return nil, err
	}
	in := &DoorInputs{inputs: make(chan hal.DoorInput, queueLen)}
	if !cfg.NoSensor {
		s := cfg.Sensor
		if s == (DoorInputCode{}) {
			s = DoorInputCode{Type: EvSw, Code: SwMachineCover, Inverted: true}
		}
		in.sensor = &s
	}
	if !cfg.NoButton {
		b := cfg.Button
		if b == (DoorInputCode{}) {
			b = DoorInputCode{Type: EvKey, Code: KeyOpen}
		}
		in.button = &b
	}
	for _, c := range []*DoorInputCode{in.sensor, in.button} {
		if c != nil && c.Type != EvSw && c.Type != EvKey {
			return nil, fmt.Errorf("evdev %s: door input event type %d, want %d (EV_SW) or %d (EV_KEY)", cfg.Device, c.Type, EvSw, EvKey)
		}
	}
	if in.dev, err = openDevice(dc, "evdev-door", (*doorHandler)(in)); err != nil {
		return nil, err
	}
	in.dev.start()
	return in, nil
}

// doorHandler is the DoorInputs' handler, run on the read goroutine (and
// in OpenDoorInputs before it starts).
type doorHandler DoorInputs

func (h *doorHandler) pending() bool { return false }
func (h *doorHandler) silence()      {}

// opened reads the switch's state on a character device; a FIFO in tests
// cannot tell, and the state stays what it was.
func (h *doorHandler) opened(f *os.File) {
	if h.sensor == nil || h.sensor.Type != EvSw || h.sensor.Code >= swBytes*8 {
		return
	}
	sc, err := f.SyscallConn()
	if err != nil {
		return
	}
	var bits [swBytes]byte
	var ioErr error
	_ = sc.Control(func(fd uintptr) {
		_, _, e := unix.Syscall(unix.SYS_IOCTL, fd, eviocgsw, uintptr(unsafe.Pointer(&bits[0])))
		if e != 0 {
			ioErr = e
		}
	})
	if ioErr != nil {
		return
	}
	set := bits[h.sensor.Code/8]>>(h.sensor.Code%8)&1 == 1
	h.setOpen(set != h.sensor.Inverted, time.Now())
}

// setOpen records the sensor's state and delivers a change.
func (h *doorHandler) setOpen(open bool, at time.Time) {
	h.mu.Lock()
	changed := h.open != open
	h.open = open
	h.mu.Unlock()
	if changed {
		h.deliver(hal.DoorInput{Kind: hal.DoorSensor, Active: open, At: at})
	}
}

func (h *doorHandler) handle(ev Event) {
	match := func(c *DoorInputCode) bool { return c != nil && ev.Type == c.Type && ev.Code == c.Code }
	switch {
	case match(h.sensor):
		if ev.Value == Repeat {
			return
		}
		h.setOpen((ev.Value != 0) != h.sensor.Inverted, ev.Time)
	case match(h.button):
		if ev.Value == Repeat {
			return
		}
		h.deliver(hal.DoorInput{Kind: hal.ExitButton, Active: (ev.Value != 0) != h.button.Inverted, At: ev.Time})
	}
}

func (h *doorHandler) deliver(in hal.DoorInput) {
	h.dev.count(func(s *Stats) { s.Keys++ })
	h.dev.log.Info().Str("input", in.Kind.String()).Bool("active", in.Active).Msg("door input")
	if chanq.DropOldest(h.inputs, in) {
		h.dev.count(func(s *Stats) { s.Overflow++ })
		h.dev.log.Warn().Msg("door input queue full; dropped the oldest")
	}
}

// NextInput blocks until an input changes, ctx is done (ctx.Err()) or the
// inputs are closed (an error wrapping hal.ErrClosed).
func (in *DoorInputs) NextInput(ctx context.Context) (hal.DoorInput, error) {
	return chanq.Take(ctx, in.inputs, in.dev.stop, "evdev "+in.dev.cfg.Device)
}

// Open reports whether the sensor says the door is open, and whether a
// sensor is wired.
func (in *DoorInputs) Open() (open, hasSensor bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.open, in.sensor != nil
}

// Health reports whether the device is open (hal.HealthReporter).
func (in *DoorInputs) Health() (hal.Health, <-chan struct{}) { return in.dev.getHealth() }

// Stats returns the counts so far (Keys counts input changes).
func (in *DoorInputs) Stats() Stats { return in.dev.getStats() }

// Close releases the device and wakes NextInput; idempotent.
func (in *DoorInputs) Close() error { return in.dev.close() }

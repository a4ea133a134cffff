package door

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"periph.io/x/conn/v3/driver/driverreg"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/host/v3/gpioioctl"

	"termagent/hal"
	"termagent/hal/internal/chanq"
)

// Defaults for the gpio driver.
const (
	// DefaultDebounce is how long an input must hold a new level.
	DefaultDebounce = 30 * time.Millisecond
	// inputPoll bounds a wait for an edge; inputs are re-read after it, so
	// a line without edge detection still works, by polling.
	inputPoll = 100 * time.Millisecond
	// inputQueue bounds undelivered input edges; the oldest is dropped.
	inputQueue = 16
)

// Pin is one GPIO line as the gpio door uses it: a subset of periph.io's
// gpio.PinIO plus Close. *gpioioctl.GPIOLine (the Linux GPIO character
// device) implements it. Levels are electrical; the door applies
// active-low itself.
type Pin interface {
	// Out drives the line as an output.
	Out(l gpio.Level) error
	// In makes the line an input with the given bias and edge detection.
	In(pull gpio.Pull, edge gpio.Edge) error
	// Read returns the line's level.
	Read() gpio.Level
	// WaitForEdge waits up to timeout for an edge; false on timeout or Halt.
	WaitForEdge(timeout time.Duration) bool
	// Halt interrupts a pending WaitForEdge.
	Halt() error
	// Close releases the line.
	Close()
}

var _ Pin = (*gpioioctl.GPIOLine)(nil)

// InputConfig wires one door input. The usual wiring, with the line pulled
// up: a normally-closed door sensor to ground reads high when the door is
// open (ActiveLow false); a normally-open exit button to ground reads low
// while pressed (ActiveLow true).
type InputConfig struct {
	// Line is the line's name (e.g. "GPIO27") or offset on the chip
	// ("27"); zero means the input is not wired.
	Line string `yaml:"line"`
	// ActiveLow says the input is active (door open, button pressed) when
	// the line reads low.
	ActiveLow bool `yaml:"active_low"`
}

// GPIOConfig configures the gpio driver. Zero values mean the documented
// defaults.
type GPIOConfig struct {
	// Chip is the GPIO chip: its name (gpiochip0), label
	// (pinctrl-bcm2711) or path (/dev/gpiochip0); zero means the first.
	Chip string `yaml:"chip"`
	// Relay is the relay line's name or offset on the chip. Required.
	Relay string `yaml:"line"`
	// ActiveLow says the relay is energised by driving the line low.
	ActiveLow bool `yaml:"active_low"`
	// Sensor is the door-position switch; optional.
	Sensor InputConfig `yaml:"sensor"`
	// Button is the exit (request-to-exit) button; optional.
	Button InputConfig `yaml:"exit_button"`
	// Debounce is how long an input must hold a new level before it
	// counts; zero means 30 ms.
	Debounce time.Duration `yaml:"debounce"`
	// Pulse is the hold for Unlock with d <= 0; zero means 3 s.
	Pulse time.Duration `yaml:"-"`
	// Logger receives relay faults and input edges. The zero Logger discards.
	Logger zerolog.Logger `yaml:"-"`
}

// GPIOPins are the lines a GPIO door drives; Sensor and Button may be nil
// when not wired.
type GPIOPins struct {
	Relay, Sensor, Button Pin
}

// GPIO is a door on GPIO lines. It implements hal.Door and hal.DoorInputs;
// all methods are safe for concurrent use.
type GPIO struct {
	cfg  GPIOConfig
	pins GPIOPins
	h    *hold
	log  zerolog.Logger

	inputs chan hal.DoorInput
	done   chan struct{}
	wg     sync.WaitGroup
	once   sync.Once

	mu   sync.Mutex
	open bool // debounced door-sensor state
}

var (
	_ hal.Door       = (*GPIO)(nil)
	_ hal.DoorInputs = (*GPIO)(nil)
)

// OpenGPIO opens the configured lines on the GPIO character device and
// returns the door with the relay released. A missing chip or line is an
// error wrapping hal.ErrFault. The caller closes the GPIO.
func OpenGPIO(cfg GPIOConfig) (*GPIO, error) {
	if cfg.Relay == "" {
		return nil, errors.New("door gpio: no relay line configured")
	}
	if _, err := driverreg.Init(); err != nil {
		return nil, fmt.Errorf("door gpio: init: %w: %w", hal.ErrFault, err)
	}
	chip, err := findChip(gpioioctl.Chips, cfg.Chip)
	if err != nil {
		return nil, err
	}
	var pins GPIOPins
	if pins.Relay, err = findLine(chip, cfg.Relay); err != nil {
		return nil, err
	}
	if cfg.Sensor.Line != "" {
		if pins.Sensor, err = findLine(chip, cfg.Sensor.Line); err != nil {
			return nil, err
		}
	}
	if cfg.Button.Line != "" {
		if pins.Button, err = findLine(chip, cfg.Button.Line); err != nil {
			return nil, err
		}
	}
	return NewGPIO(cfg, pins)
}

func findChip(chips []*gpioioctl.GPIOChip, want string) (*gpioioctl.GPIOChip, error) {
	if len(chips) == 0 {
		return nil, fmt.Errorf("door gpio: no GPIO character device (/dev/gpiochip*): %w", hal.ErrFault)
	}
	if want == "" {
		return chips[0], nil
	}
	for _, c := range chips {
		if c.Name() == want || c.Label() == want || c.Path() == want || filepath.Base(c.Path()) == want {
			return c, nil
		}
	}
	return nil, fmt.Errorf("door gpio: no GPIO chip %q: %w", want, hal.ErrFault)
}

func findLine(chip *gpioioctl.GPIOChip, want string) (Pin, error) {
	if l := chip.ByName(want); l != nil {
		return l, nil
	}
	if n, err := strconv.Atoi(want); err == nil && n >= 0 && n < chip.LineCount() {
		return chip.ByNumber(n), nil
	}
	return nil, fmt.Errorf("door gpio: no line %q on %s: %w", want, chip.Name(), hal.ErrFault)
}

// NewGPIO builds a door on the given pins: it releases the relay, reads the
// inputs' levels and starts watching them. The caller closes the GPIO,
// which closes the pins.
func NewGPIO(cfg GPIOConfig, pins GPIOPins) (*GPIO, error) {
	if pins.Relay == nil {
		return nil, errors.New("door gpio: no relay pin")
	}
	if cfg.Debounce == 0 {
		cfg.Debounce = DefaultDebounce
	}
	if cfg.Debounce < 0 {
		return nil, fmt.Errorf("door gpio: negative debounce %v", cfg.Debounce)
	}
	g := &GPIO{
		cfg:    cfg,
		pins:   pins,
		log:    cfg.Logger.With().Str(logComponent, "door").Str(logDriver, DriverGPIO).Logger(),
		inputs: make(chan hal.DoorInput, inputQueue),
		done:   make(chan struct{}),
	}
	g.h = newHold("door gpio "+cfg.Relay, cfg.Pulse, g.set, g.log)
	if err := g.set(context.Background(), false); err != nil {
		return nil, fmt.Errorf("door gpio %s: release relay at start: %w", cfg.Relay, err)
	}
	for _, in := range []struct {
		pin  Pin
		cfg  InputConfig
		kind hal.DoorInputKind
	}{{pins.Sensor, cfg.Sensor, hal.DoorSensor}, {pins.Button, cfg.Button, hal.ExitButton}} {
		if in.pin == nil {
			continue
		}
		if err := in.pin.In(gpio.PullUp, gpio.BothEdges); err != nil {
			g.Close()
			return nil, fmt.Errorf("door gpio: %s line %s as input: %w: %w", in.kind, in.cfg.Line, hal.ErrFault, err)
		}
		active := in.pin.Read() == activeLevel(in.cfg.ActiveLow)
		if in.kind == hal.DoorSensor {
			g.open = active
		}
		g.wg.Add(1)
		go g.watch(in.pin, in.kind, in.cfg.ActiveLow, active)
	}
	return g, nil
}

func activeLevel(activeLow bool) gpio.Level { return gpio.Level(!activeLow) }

func (g *GPIO) set(_ context.Context, on bool) error {
	l := activeLevel(g.cfg.ActiveLow)
	if !on {
		l = !l
	}
	if err := g.pins.Relay.Out(l); err != nil {
		return fmt.Errorf("drive relay line: %w: %w", hal.ErrFault, err)
	}
	return nil
}

// watch follows one input until Close, delivering debounced changes.
func (g *GPIO) watch(pin Pin, kind hal.DoorInputKind, activeLow bool, stable bool) {
	defer g.wg.Done()
	want := activeLevel(activeLow)
	for {
		pin.WaitForEdge(inputPoll)
		if g.stopped() {
			return
		}
		if (pin.Read() == want) == stable {
			continue
		}
		// A new level: it counts only if it still holds after Debounce.
		t := time.NewTimer(g.cfg.Debounce)
		select {
		case <-g.done:
			t.Stop()
			return
		case <-t.C:
		}
		now := pin.Read() == want
		if now == stable {
			continue // a bounce
		}
		stable = now
		if kind == hal.DoorSensor {
			g.mu.Lock()
			g.open = now
			g.mu.Unlock()
		}
		g.log.Info().Str(logInput, kind.String()).Bool(logActive, now).Msg("door input")
		g.deliver(hal.DoorInput{Kind: kind, Active: now, At: time.Now()})
	}
}

// deliver queues ev without blocking, dropping the oldest when full.
func (g *GPIO) deliver(ev hal.DoorInput) {
	for {
		select {
		case g.inputs <- ev:
			return
		default:
		}
		select {
		case old := <-g.inputs:
			g.log.Warn().Str(logInput, old.Kind.String()).Msg("door input queue full; dropped oldest")
		default:
		}
	}
}

func (g *GPIO) stopped() bool {
	select {
	case <-g.done:
		return true
	default:
		return false
	}
}

// Unlock energises the relay line and returns at once; it is released when
// d has passed (d <= 0: the configured pulse). A second Unlock extends the
// hold to d from now.
func (g *GPIO) Unlock(ctx context.Context, d time.Duration) error { return g.h.unlock(ctx, d) }

// State reports the relay and, if wired, the debounced door sensor.
func (g *GPIO) State() hal.DoorState {
	g.mu.Lock()
	defer g.mu.Unlock()
	return hal.DoorState{Unlocked: g.h.unlocked.Load(), Open: g.open, HasSensor: g.pins.Sensor != nil}
}

// NextInput blocks until a debounced input edge, ctx is done or the door is
// closed (an error wrapping hal.ErrClosed). One caller at a time.
func (g *GPIO) NextInput(ctx context.Context) (hal.DoorInput, error) {
	return chanq.Take(ctx, g.inputs, g.done, "door gpio")
}

// Close releases the relay, stops watching the inputs and releases the
// lines; idempotent.
func (g *GPIO) Close() error {
	var err error
	g.once.Do(func() {
		close(g.done)
		for _, p := range []Pin{g.pins.Sensor, g.pins.Button} {
			if p != nil {
				_ = p.Halt()
			}
		}
		g.wg.Wait()
		err = g.h.close()
		for _, p := range []Pin{g.pins.Relay, g.pins.Sensor, g.pins.Button} {
			if p != nil {
				p.Close()
			}
		}
	})
	return err
}

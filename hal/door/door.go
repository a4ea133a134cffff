// Package door drives the door lock relay and reads the door's inputs.
// Three drivers implement hal.Door, selected by Config.Driver:
//
//   - "gpio": a Linux GPIO character-device line drives the relay (active
//     high or low); optional door-sensor and exit-button lines are
//     debounced and delivered through hal.DoorInputs. Lines are reached
//     through the Pin interface, implemented by periph.io's gpioioctl.
//   - "lcus": the common CH340 USB relay board (LCUS-1/2/4/8): 9600 8N1,
//     frames A0 <channel> <00 off|01 on> <sum>, e.g. A0 01 01 A2 on and
//     A0 01 00 A1 off; the board does not answer. Usable on a simulator's
//     pseudo-terminal, so the door path is testable end to end.
//   - "none": no relay; Unlock only records the logical state.
//
// All three share one hold: Unlock switches the relay and returns, a timer
// relocks after the duration, a second Unlock extends the hold to d from
// now, and Close relocks at once. Conventions: door sensor normally closed, exit
// button normally open, inputs active low, as access controllers wire them.
//
// Import rule: door imports hal, hal/serialport and periph.io only; never
// agent, store or protocol.
package door

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"termagent/hal"
	"termagent/hal/serialport"
)

// Driver names, as written in configuration.
const (
	DriverGPIO = "gpio"
	DriverLCUS = "lcus"
	DriverNone = "none"
)

// Defaults and limits.
const (
	// DefaultPulse is how long Unlock holds when given d <= 0.
	DefaultPulse = 3 * time.Second
	// MaxHold bounds one Unlock's duration.
	MaxHold = 24 * time.Hour
	// switchTimeout bounds one relay switch that has no caller's context
	// (the relock, Close).
	switchTimeout = 2 * time.Second
	// relockRetry is the pause before retrying a relock that failed.
	relockRetry = 500 * time.Millisecond
)

// Log field keys.
const (
	logComponent = "component"
	logDriver    = "driver"
	logPort      = "port"
	logHold      = "hold"
	logInput     = "input"
	logActive    = "active"
)

// Config selects and configures a door driver. Zero values mean the
// documented defaults.
type Config struct {
	// Driver is gpio, lcus or none; zero means none.
	Driver string `yaml:"driver"`
	// Pulse is the hold used when Unlock is given d <= 0; zero means 3 s.
	Pulse time.Duration `yaml:"pulse"`
	// GPIO configures the gpio driver. (Its fields and LCUS's share one
	// flat section in configuration files: yaml ",inline".)
	GPIO GPIOConfig `yaml:",inline"`
	// LCUS configures the lcus driver.
	LCUS LCUSConfig `yaml:",inline"`
	// Logger receives relay faults (error) and switches (debug). The zero
	// Logger discards.
	Logger zerolog.Logger `yaml:"-"`
}

// WithDefaults returns c with every zero field that has a default set to
// it (driver none, pulse 3 s, lcus 9600 baud on channel 1, gpio debounce
// 30 ms); Open applies the same defaults.
func (c Config) WithDefaults() Config {
	if c.Driver == "" {
		c.Driver = DriverNone
	}
	if c.Pulse == 0 {
		c.Pulse = DefaultPulse
	}
	if c.LCUS.Baud == 0 {
		c.LCUS.Baud = serialport.DefaultBaud
	}
	if c.LCUS.Channel == 0 {
		c.LCUS.Channel = 1
	}
	if c.GPIO.Debounce == 0 {
		c.GPIO.Debounce = DefaultDebounce
	}
	return c
}

// Open builds the configured door. The caller closes it. The gpio door
// also implements hal.DoorInputs.
func Open(cfg Config) (hal.Door, error) {
	switch cfg.Driver {
	case "", DriverNone:
		return NewNone(cfg.Pulse), nil
	case DriverLCUS:
		c := cfg.LCUS
		c.Pulse = cmpOr(c.Pulse, cfg.Pulse)
		c.Logger = cfg.Logger
		return OpenLCUS(c)
	case DriverGPIO:
		c := cfg.GPIO
		c.Pulse = cmpOr(c.Pulse, cfg.Pulse)
		c.Logger = cfg.Logger
		return OpenGPIO(c)
	}
	return nil, fmt.Errorf("door: unknown driver %q (want gpio, lcus or none)", cfg.Driver)
}

func cmpOr(a, b time.Duration) time.Duration {
	if a != 0 {
		return a
	}
	return b
}

// switchFunc energises (on) or releases the lock relay.
type switchFunc func(ctx context.Context, on bool) error

// hold is the unlock timing every driver shares.
type hold struct {
	name  string // for errors: "door lcus /dev/ttyUSB0"
	pulse time.Duration
	set   switchFunc
	log   zerolog.Logger

	unlocked atomic.Bool // what State reports; written under mu

	mu     sync.Mutex
	gen    uint64 // bumped by every Unlock and Close; stale timers see a newer one
	timer  *time.Timer
	closed bool
}

func newHold(name string, pulse time.Duration, set switchFunc, log zerolog.Logger) *hold {
	if pulse <= 0 {
		pulse = DefaultPulse
	}
	return &hold{name: name, pulse: pulse, set: set, log: log}
}

// unlock implements hal.Door.Unlock.
func (h *hold) unlock(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		d = h.pulse
	}
	if d > MaxHold {
		return fmt.Errorf("%s: unlock for %v: longer than %v", h.name, d, MaxHold)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return fmt.Errorf("%s: unlock: %w", h.name, hal.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	// Switch even when we believe the relay is on: a board that was
	// replugged has lost its state.
	if err := h.set(ctx, true); err != nil {
		return fmt.Errorf("%s: unlock: %w", h.name, err)
	}
	h.unlocked.Store(true)
	h.gen++
	if h.timer != nil {
		h.timer.Stop()
	}
	gen := h.gen
	h.timer = time.AfterFunc(d, func() { h.relock(gen) })
	h.log.Debug().Dur(logHold, d).Msg("unlocked")
	return nil
}

// relock runs when the hold of Unlock number gen has passed.
func (h *hold) relock(gen uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed || gen != h.gen {
		return // closed, or extended by a later Unlock
	}
	ctx, cancel := context.WithTimeout(context.Background(), switchTimeout)
	defer cancel()
	if err := h.set(ctx, false); err != nil {
		// The lock must not stay released: keep trying until it works or
		// the door is closed (Close relocks too).
		h.log.Error().Err(err).Msg("relock failed; retrying")
		h.timer = time.AfterFunc(relockRetry, func() { h.relock(gen) })
		return
	}
	h.unlocked.Store(false)
	h.log.Debug().Msg("relocked")
}

// close relocks and stops the timer; idempotent.
func (h *hold) close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil
	}
	h.closed = true
	h.gen++
	if h.timer != nil {
		h.timer.Stop()
	}
	ctx, cancel := context.WithTimeout(context.Background(), switchTimeout)
	defer cancel()
	err := h.set(ctx, false)
	h.unlocked.Store(false)
	if err != nil {
		return fmt.Errorf("%s: relock on close: %w", h.name, err)
	}
	return nil
}

// None is a door without a relay: Unlock succeeds and State reports the
// logical hold, so the rest of the terminal behaves as with a lock. Safe
// for concurrent use.
type None struct{ h *hold }

var _ hal.Door = (*None)(nil)

// NewNone returns a door with no relay; pulse is the hold for Unlock with
// d <= 0 (zero means 3 s).
func NewNone(pulse time.Duration) *None {
	return &None{h: newHold("door none", pulse, func(context.Context, bool) error { return nil }, zerolog.Nop())}
}

// Unlock records the door as unlocked for d (d <= 0: the default pulse).
func (n *None) Unlock(ctx context.Context, d time.Duration) error { return n.h.unlock(ctx, d) }

// State reports the logical hold; there is no sensor.
func (n *None) State() hal.DoorState { return hal.DoorState{Unlocked: n.h.unlocked.Load()} }

// Close ends the hold; idempotent.
func (n *None) Close() error { return n.h.close() }

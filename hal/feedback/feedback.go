// Package feedback drives a terminal's feedback outputs — a buzzer, a green
// or a red LED — each on one GPIO line, with on/off patterns: a short beep
// for a grant, three for a refusal.
//
// A Pattern is a list of durations, alternately on and off, starting with
// on; the output is off when the pattern ends. Playing a pattern replaces
// the one playing. Config strings parse with ParsePattern: "200ms" is one
// beep, "100ms,100ms,100ms,100ms,100ms" three short ones.
//
// Wiring: a GPIO pin sources a few mA at 3.3 V. An LED takes a series
// resistor; a buzzer (or a 5/12 V indicator) takes a transistor or a
// driver board, and an active buzzer beeps by itself when powered (a
// passive one needs a tone, which this driver does not make). Boards that
// switch on a low level set ActiveLow.
//
// Import rule: feedback imports hal, hal/internal/gpiofind and periph.io
// only; never agent, store or protocol.
package feedback

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/host/v3/gpioioctl"

	"termagent/hal"
	"termagent/hal/internal/gpiofind"
)

// Limits of a Pattern.
const (
	MaxSteps = 32               // on/off steps in one pattern
	MinStep  = time.Millisecond // shortest step
	MaxStep  = 10 * time.Second // longest step
	MaxTotal = 30 * time.Second // longest pattern
)

// ErrPattern is wrapped by the error of a pattern out of the limits.
var ErrPattern = errors.New("feedback: bad pattern")

// Pattern is a list of durations, alternately on and off, starting with
// on. The output is off after the last step.
type Pattern []time.Duration

// Validate reports a pattern with no step, more than MaxSteps, a step
// outside MinStep..MaxStep or a total above MaxTotal.
func (p Pattern) Validate() error {
	if len(p) == 0 || len(p) > MaxSteps {
		return fmt.Errorf("%w: %d steps, want 1..%d", ErrPattern, len(p), MaxSteps)
	}
	var total time.Duration
	for i, d := range p {
		if d < MinStep || d > MaxStep {
			return fmt.Errorf("%w: step %d is %v, want %v..%v", ErrPattern, i+1, d, MinStep, MaxStep)
		}
		total += d
	}
	if total > MaxTotal {
		return fmt.Errorf("%w: lasts %v, more than %v", ErrPattern, total, MaxTotal)
	}
	return nil
}

// String writes p as ParsePattern reads it.
func (p Pattern) String() string {
	parts := make([]string, len(p))
	for i, d := range p {
		parts[i] = d.String()
	}
	return strings.Join(parts, ",")
}

// ParsePattern parses durations separated by commas ("100ms,100ms,100ms")
// and validates the pattern.
func ParsePattern(s string) (Pattern, error) {
	var p Pattern
	for _, f := range strings.Split(s, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("%w: %q: %q is not a duration (e.g. 200ms)", ErrPattern, s, strings.TrimSpace(f))
		}
		p = append(p, d)
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return p, nil
}

// Pin is one GPIO output line as an Output uses it: a subset of
// periph.io's gpio.PinOut plus Close. *gpioioctl.GPIOLine implements it,
// and so does hal/door's Pin. Levels are electrical; the Output applies
// ActiveLow itself.
type Pin interface {
	// Out drives the line.
	Out(l gpio.Level) error
	// Close releases the line.
	Close()
}

var _ Pin = (*gpioioctl.GPIOLine)(nil)

// Config configures an Output. Zero values mean the documented defaults.
type Config struct {
	// Name says what the output is (buzzer, green, red) in logs and
	// errors; zero means "output".
	Name string
	// Chip is the GPIO chip: its name (gpiochip0), label or path; zero
	// means the first. Used by Open only.
	Chip string
	// Line is the line's name (e.g. "GPIO22") or offset on the chip.
	// Required by Open.
	Line string
	// ActiveLow says the output is on when the line is driven low.
	ActiveLow bool
	// Logger receives line failures (error). The zero Logger discards.
	Logger zerolog.Logger
}

// Output is one feedback output on a GPIO line. All methods are safe for
// concurrent use; none blocks for a pattern's duration.
type Output struct {
	cfg Config
	pin Pin
	log zerolog.Logger

	mu     sync.Mutex
	gen    uint64 // bumped by every Play, Set and Close
	timer  *time.Timer
	on     bool
	closed bool
	err    error // the last line failure, nil once a drive succeeds
}

// Open finds cfg.Line on cfg.Chip and returns the Output, off. A missing
// chip or line is an error wrapping hal.ErrFault. The caller closes it.
func Open(cfg Config) (*Output, error) {
	chip, err := gpiofind.Chip(cfg.Chip)
	if err != nil {
		return nil, fmt.Errorf("feedback %s: %w", cfg.name(), err)
	}
	if cfg.Line == "" {
		return nil, fmt.Errorf("feedback %s: no line configured", cfg.name())
	}
	line, err := gpiofind.Line(chip, cfg.Line)
	if err != nil {
		return nil, fmt.Errorf("feedback %s: %w", cfg.name(), err)
	}
	return New(cfg, line)
}

func (c Config) name() string {
	if c.Name == "" {
		return "output"
	}
	return c.Name
}

// New returns an Output on pin, which it owns, driven off.
func New(cfg Config, pin Pin) (*Output, error) {
	if pin == nil {
		return nil, fmt.Errorf("feedback %s: no pin", cfg.name())
	}
	o := &Output{cfg: cfg, pin: pin, log: cfg.Logger.With().Str("component", "feedback").Str("output", cfg.name()).Logger()}
	o.mu.Lock()
	defer o.mu.Unlock()
	if err := o.driveLocked(false); err != nil {
		pin.Close()
		return nil, err
	}
	return o, nil
}

func (o *Output) driveLocked(on bool) error {
	l := gpio.Level(on != o.cfg.ActiveLow)
	if err := o.pin.Out(l); err != nil {
		o.err = fmt.Errorf("feedback %s: drive line %s: %w: %w", o.cfg.name(), o.cfg.Line, hal.ErrFault, err)
		return o.err
	}
	o.on, o.err = on, nil
	return nil
}

// stopLocked stops a playing pattern.
func (o *Output) stopLocked() error {
	if o.closed {
		return fmt.Errorf("feedback %s: %w", o.cfg.name(), hal.ErrClosed)
	}
	o.gen++
	if o.timer != nil {
		o.timer.Stop()
		o.timer = nil
	}
	return nil
}

// Play starts the pattern steps (a Pattern; the plain slice type lets a
// consumer declare this method without importing this package, and the
// GPIO library it links), replacing whatever plays, and returns at once:
// the line is on for steps[0], off for steps[1], and so on, off at the
// end. It returns the first step's line failure (wrapping hal.ErrFault);
// later steps' failures are logged and reported by Err.
func (o *Output) Play(steps []time.Duration) error {
	p := Pattern(steps)
	if err := p.Validate(); err != nil {
		return fmt.Errorf("feedback %s: %w", o.cfg.name(), err)
	}
	p = append(Pattern(nil), p...)
	o.mu.Lock()
	defer o.mu.Unlock()
	if err := o.stopLocked(); err != nil {
		return err
	}
	return o.stepLocked(o.gen, p, 0)
}

func (o *Output) stepLocked(gen uint64, p Pattern, i int) error {
	if i == len(p) {
		o.timer = nil
		return o.driveLocked(false)
	}
	err := o.driveLocked(i%2 == 0)
	o.timer = time.AfterFunc(p[i], func() {
		o.mu.Lock()
		defer o.mu.Unlock()
		if o.gen != gen || o.closed {
			return
		}
		if err := o.stepLocked(gen, p, i+1); err != nil {
			o.log.Error().Err(err).Msg("feedback pattern step failed")
		}
	})
	return err
}

// Set stops any pattern and holds the output on or off.
func (o *Output) Set(on bool) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if err := o.stopLocked(); err != nil {
		return err
	}
	return o.driveLocked(on)
}

// On reports whether the output is on now.
func (o *Output) On() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.on
}

// Err returns the last line failure, or nil once a drive succeeded again.
func (o *Output) Err() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.err
}

// Close stops any pattern, drives the output off and releases the line;
// idempotent.
func (o *Output) Close() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return nil
	}
	_ = o.stopLocked()
	o.closed = true
	err := o.driveLocked(false)
	o.pin.Close()
	return err
}

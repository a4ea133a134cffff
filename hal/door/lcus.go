package door

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"termagent/hal"
	"termagent/hal/backoff"
	"termagent/hal/serialport"
)

// LCUS frame bytes.
const (
	lcusStart = 0xA0
	lcusOff   = 0x00
	lcusOn    = 0x01
	// LCUSFrameLen is the length of one LCUS command frame in bytes.
	LCUSFrameLen = 4
	// LCUSMaxChannel is the highest channel of the largest board (LCUS-8).
	LCUSMaxChannel = 8
)

// AppendLCUS appends the LCUS frame switching channel (1..8) on or off to
// dst: A0, channel, 01 or 00, and the low byte of the sum of the three.
func AppendLCUS(dst []byte, channel byte, on bool) []byte {
	op := byte(lcusOff)
	if on {
		op = lcusOn
	}
	return append(dst, lcusStart, channel, op, lcusStart+channel+op)
}

// LCUSConfig configures the lcus driver. Zero values mean the documented
// defaults.
type LCUSConfig struct {
	// Port is the board's serial device, e.g. /dev/ttyUSB0. Required.
	Port string `yaml:"port"`
	// Baud is the line speed in bits per second; zero means 9600.
	Baud int `yaml:"baud"`
	// Channel is the relay to drive, 1..8; zero means 1.
	Channel int `yaml:"channel"`
	// Pulse is the hold for Unlock with d <= 0; zero means 3 s.
	Pulse time.Duration `yaml:"-"`
	// Backoff paces reopening a vanished port; zero means serialport's
	// defaults.
	Backoff backoff.Policy `yaml:"-"`
	// Logger receives relay faults and switches. The zero Logger discards.
	Logger zerolog.Logger `yaml:"-"`
}

// LCUS drives a CH340 USB relay board. It implements hal.Door and
// hal.HealthReporter; all methods are safe for concurrent use. The board
// has no inputs and does not answer, so State reports what was last
// switched successfully. A goroutine started by OpenLCUS reads the port
// (the board sends nothing) only to notice its disappearance at once, idle
// or not, and reopens it with backoff.
type LCUS struct {
	port      *serialport.Port
	channel   byte
	h         *hold
	log       zerolog.Logger
	life      context.Context // cancelled by Close: aborts a reopen in progress
	stop      context.CancelFunc
	watchDone chan struct{} // closed when watch has returned
	// releasePending: the board was missing at open; watch releases the
	// relay once it is reopened (unless a switch got there first).
	releasePending atomic.Bool
}

var (
	_ hal.Door           = (*LCUS)(nil)
	_ hal.HealthReporter = (*LCUS)(nil)
)

// lcusWatchEvery is the read timeout of the watching goroutine: how often
// it wakes on a board that never talks.
const lcusWatchEvery = 500 * time.Millisecond

// OpenLCUS opens the board's port and releases the relay at once, so the
// lock starts locked whatever state the board was left in. It fails only
// for a bad cfg: a board missing now is in the state of one unplugged
// later (Health reports it, naming the port; the port is reopened with
// backoff, and the relay released as soon as it is). The caller closes
// the LCUS.
func OpenLCUS(cfg LCUSConfig) (*LCUS, error) {
	if cfg.Channel == 0 {
		cfg.Channel = 1
	}
	if cfg.Channel < 1 || cfg.Channel > LCUSMaxChannel {
		return nil, fmt.Errorf("door lcus %s: channel %d out of range 1..%d", cfg.Port, cfg.Channel, LCUSMaxChannel)
	}
	port, err := serialport.Open(serialport.Config{Name: cfg.Port, Baud: cfg.Baud, ReadTimeout: lcusWatchEvery, Backoff: cfg.Backoff})
	if err != nil {
		return nil, fmt.Errorf("door lcus: %w", err)
	}
	life, stop := context.WithCancel(context.Background())
	log := cfg.Logger.With().Str(logComponent, "door").Str(logDriver, DriverLCUS).Str(logPort, cfg.Port).Logger()
	l := &LCUS{port: port, channel: byte(cfg.Channel), log: log, life: life, stop: stop, watchDone: make(chan struct{})}
	l.h = newHold("door lcus "+cfg.Port, cfg.Pulse, l.set, log)
	if h, _ := port.Health(); h.OK {
		ctx, cancel := context.WithTimeout(context.Background(), switchTimeout)
		defer cancel()
		if err := l.set(ctx, false); err != nil {
			stop()
			port.Close()
			return nil, fmt.Errorf("door lcus %s: release relay at start: %w", cfg.Port, err)
		}
	} else {
		l.releasePending.Store(true)
	}
	go l.watch()
	return l, nil
}

// watch reads the port until Close: the board sends nothing, so a read
// only ever times out, until the port vanishes; then it reopens it with
// backoff (Health says lost meanwhile).
func (l *LCUS) watch() {
	defer close(l.watchDone)
	var buf [16]byte
	for {
		_, err := l.port.Read(buf[:])
		switch {
		case err == nil || errors.Is(err, hal.ErrTimeout):
		case errors.Is(err, hal.ErrClosed):
			return
		default:
			l.log.Warn().Err(err).Msg("relay board lost; reopening")
			if err := l.port.Reopen(l.life); err != nil {
				return // closed
			}
			l.log.Info().Msg("relay board back")
			l.releaseIfPending()
		}
	}
}

// releaseIfPending sends the start's release to a board that was missing
// at open, unless the lock is held by then.
func (l *LCUS) releaseIfPending() {
	if !l.releasePending.Swap(false) {
		return
	}
	l.h.mu.Lock() // serialised with Unlock, relock and Close
	defer l.h.mu.Unlock()
	if l.h.closed || l.h.unlocked.Load() {
		return
	}
	ctx, cancel := context.WithTimeout(l.life, switchTimeout)
	defer cancel()
	if err := l.set(ctx, false); err != nil {
		l.log.Warn().Err(err).Msg("release relay after the board appeared")
	}
}

// Health reports whether the board's port is open (hal.HealthReporter).
func (l *LCUS) Health() (hal.Health, <-chan struct{}) { return l.port.Health() }

// set writes the switch frame; if the port has vanished it reopens it once,
// within ctx and at most 2 s (Close cuts that short), and writes again.
func (l *LCUS) set(ctx context.Context, on bool) error {
	frame := AppendLCUS(make([]byte, 0, LCUSFrameLen), l.channel, on)
	_, err := l.port.Write(frame)
	if err == nil || !errors.Is(err, hal.ErrFault) {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, switchTimeout)
	defer cancel()
	defer context.AfterFunc(l.life, cancel)()
	if rerr := l.port.Reopen(ctx); rerr != nil {
		return fmt.Errorf("%w (reopen: %w)", err, rerr)
	}
	_, err = l.port.Write(frame)
	return err
}

// Unlock energises the relay and returns once the frame is written; the
// relay is released when d has passed (d <= 0: the configured pulse). A
// second Unlock extends the hold to d from now. An unplugged board is
// reopened within ctx and at most 2 s; failing that, the error wraps
// hal.ErrFault.
func (l *LCUS) Unlock(ctx context.Context, d time.Duration) error { return l.h.unlock(ctx, d) }

// State reports whether the relay is held; the board has no sensor.
func (l *LCUS) State() hal.DoorState { return hal.DoorState{Unlocked: l.h.unlocked.Load()} }

// Close releases the relay and closes the port; idempotent. A board that
// is unplugged is not waited for (it has no power: its relay is off).
func (l *LCUS) Close() error {
	l.stop()
	err := l.h.close()
	err = errors.Join(err, l.port.Close())
	<-l.watchDone
	return err
}

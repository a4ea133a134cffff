// Package serialport is the one wrapper around go.bug.st/serial that every
// serial driver in hal uses (card readers, fingerprint and face modules, the
// LCUS relay board). It turns the library's quirks into the hal contract:
//
//   - a read that times out returns an error wrapping hal.ErrTimeout instead
//     of (0, nil), so io.ReadFull and friends never spin;
//   - a missing or vanished port (unplugged USB adapter, simulator unplugged)
//     is an error wrapping hal.ErrFault whose message names the port; a
//     port missing when Open is called is in the same state as one that
//     vanished later: Open succeeds, Health says lost, Reopen brings it;
//   - Close is idempotent, wakes a goroutine blocked in Read, and every call
//     after it returns an error wrapping hal.ErrClosed;
//   - Reopen reopens a vanished port by name with jittered exponential
//     backoff (hal/backoff), so a driver survives unplug and replug; bytes the device
//     sent between its replug and the reopen are kept (only the first
//     Open drops what queued up before it);
//   - Health reports whether the port is open, and wakes a watcher at
//     each change (hal.HealthReporter): lost when an I/O error drops the
//     port, back when Reopen succeeds.
//
// The modem lines (DTR/RTS) are never touched: pseudo-terminals reject the
// modem-control ioctls, and none of our modules need them.
//
// Import rule: like every hal sub-package, serialport imports only hal
// (and hal/backoff), never agent, store or protocol. It does not log; drivers do.
package serialport

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.bug.st/serial"

	"termagent/hal"
	"termagent/hal/backoff"
)

// Defaults for zero Config fields.
const (
	DefaultBaud        = 9600
	DefaultReadTimeout = 100 * time.Millisecond
	DefaultBackoffMin  = backoff.DefaultMin
	DefaultBackoffMax  = backoff.DefaultMax
)

// Config says which port to open and how. Zero values mean the documented
// defaults; the line is always 8 data bits, no parity, one stop bit.
type Config struct {
	// Name is the device path, e.g. /dev/ttyS1, /dev/ttyUSB0 or a
	// simulator's symlink such as /tmp/termsim/card. Required.
	Name string
	// Baud is the line speed in bits per second; zero means 9600.
	Baud int
	// ReadTimeout bounds one Read call: when no byte arrives within it,
	// Read returns an error wrapping hal.ErrTimeout. Zero means 100 ms.
	ReadTimeout time.Duration
	// Backoff paces Reopen's attempts; zero fields mean 100 ms to 2 s
	// (a replugged device is found within about 2 s).
	Backoff backoff.Policy
}

func (c Config) withDefaults() Config {
	if c.Baud == 0 {
		c.Baud = DefaultBaud
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = DefaultReadTimeout
	}
	c.Backoff = c.Backoff.WithDefaults()
	return c
}

func (c Config) validate() error {
	switch {
	case c.Name == "":
		return errors.New("serial port: empty port name")
	case c.Baud < 0:
		return fmt.Errorf("serial port %s: negative baud rate %d", c.Name, c.Baud)
	case c.ReadTimeout < 0:
		return fmt.Errorf("serial port %s: negative read timeout %v", c.Name, c.ReadTimeout)
	case c.Backoff.Min < 0 || c.Backoff.Max < c.Backoff.Min:
		return fmt.Errorf("serial port %s: bad backoff %v..%v", c.Name, c.Backoff.Min, c.Backoff.Max)
	}
	return nil
}

// Port is an open serial port. Read and Write may be called from different
// goroutines, but each by one goroutine at a time; Close and Reopen may be
// called from any goroutine.
type Port struct {
	cfg        Config
	errTimeout error // prebuilt: timeouts are frequent and must not allocate
	done       chan struct{}

	reopening chan struct{} // holds a token while a Reopen runs

	mu     sync.Mutex
	sp     serial.Port // nil while the port has vanished
	gen    uint64      // bumped by every successful open
	closed bool
	health hal.Health
	hwake  chan struct{} // closed and replaced at every health change
}

var _ hal.HealthReporter = (*Port)(nil)

// Open opens cfg.Name at once. It fails only for an invalid cfg: a port
// that cannot be opened now (missing, unplugged, not yet created by a
// simulator) gives a Port in the lost state, exactly as if it had vanished
// after opening: Health reports it (an error wrapping hal.ErrFault and the
// underlying os error, naming the port), Read and Write fail with
// hal.ErrFault, and Reopen opens it with backoff once it is there. So a
// driver has one path for "missing at start" and "lost later". The caller
// closes the Port.
func Open(cfg Config) (*Port, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	p := &Port{
		cfg:        cfg,
		errTimeout: fmt.Errorf("serial port %s: read: no data within %v: %w", cfg.Name, cfg.ReadTimeout, hal.ErrTimeout),
		done:       make(chan struct{}),
		reopening:  make(chan struct{}, 1),
		hwake:      make(chan struct{}),
	}
	sp, err := p.open()
	if err != nil {
		p.health = hal.Health{Err: err, Since: time.Now()}
		return p, nil
	}
	p.sp, p.gen = sp, 1
	p.health = hal.Health{OK: true, Since: time.Now()}
	return p, nil
}

// Name returns the port's device path as configured.
func (p *Port) Name() string { return p.cfg.Name }

// Baud returns the configured line speed in bits per second.
func (p *Port) Baud() int { return p.cfg.Baud }

// open opens the device. At the first successful open (gen 0) it drops
// what queued up before; after a replug, whatever is queued was sent after
// it and is kept.
func (p *Port) open() (serial.Port, error) {
	sp, err := serial.Open(p.cfg.Name, &serial.Mode{BaudRate: p.cfg.Baud, DataBits: 8})
	if err != nil {
		return nil, fmt.Errorf("open serial port %s: %w: %w", p.cfg.Name, hal.ErrFault, err)
	}
	if err := sp.SetReadTimeout(p.cfg.ReadTimeout); err != nil {
		sp.Close()
		return nil, fmt.Errorf("open serial port %s: set read timeout: %w: %w", p.cfg.Name, hal.ErrFault, err)
	}
	p.mu.Lock()
	first := p.gen == 0
	p.mu.Unlock()
	if first {
		// Drop whatever queued up before the driver started: stale frames
		// must not be taken for fresh ones.
		_ = sp.ResetInputBuffer()
	}
	return sp, nil
}

// current returns the underlying port or the error to report instead.
func (p *Port) current(op string) (serial.Port, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, fmt.Errorf("serial port %s: %s: %w", p.cfg.Name, op, hal.ErrClosed)
	}
	if p.sp == nil {
		return nil, fmt.Errorf("serial port %s: %s: port vanished: %w", p.cfg.Name, op, hal.ErrFault)
	}
	return p.sp, nil
}

// Read reads up to len(b) bytes, blocking for at most the configured
// ReadTimeout. It returns n > 0 with a nil error, or n == 0 with an error
// wrapping hal.ErrTimeout (silence), hal.ErrFault (the port vanished: call
// Reopen) or hal.ErrClosed (Close was called, possibly while Read waited).
func (p *Port) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	sp, err := p.current("read")
	if err != nil {
		return 0, err
	}
	n, err := sp.Read(b)
	if n > 0 {
		return n, nil
	}
	if err == nil {
		return 0, p.errTimeout
	}
	return 0, p.fault("read", sp, err)
}

// Write writes b; it blocks until the bytes are queued to the device. An
// error wraps hal.ErrFault (the port vanished: call Reopen) or hal.ErrClosed.
func (p *Port) Write(b []byte) (int, error) {
	sp, err := p.current("write")
	if err != nil {
		return 0, err
	}
	n, err := sp.Write(b)
	if err != nil {
		return n, p.fault("write", sp, err)
	}
	if n < len(b) {
		return n, p.fault("write", sp, fmt.Errorf("short write %d of %d bytes", n, len(b)))
	}
	return n, nil
}

// fault classifies an I/O error from sp: after Close it is ErrClosed;
// otherwise the port is treated as vanished (a hung-up pseudo-terminal or
// an unplugged adapter reads EOF or EIO) and dropped until Reopen.
func (p *Port) fault(op string, sp serial.Port, cause error) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return fmt.Errorf("serial port %s: %s: %w", p.cfg.Name, op, hal.ErrClosed)
	}
	err := fmt.Errorf("serial port %s: %s: port vanished: %w: %w", p.cfg.Name, op, hal.ErrFault, cause)
	if p.sp == sp {
		p.sp = nil
		go sp.Close() // may wait for a concurrent Read to return; never block the caller
		p.setHealthLocked(false, err)
	}
	return err
}

// setHealthLocked records a health change and wakes the watchers; p.mu is
// held.
func (p *Port) setHealthLocked(ok bool, err error) {
	if p.health.OK == ok && (ok || !errors.Is(err, hal.ErrClosed)) {
		return // no change (a lost port that fails again stays lost since then)
	}
	p.health = hal.Health{OK: ok, Err: err, Since: time.Now()}
	close(p.hwake)
	p.hwake = make(chan struct{})
}

// Health reports whether the port is open: false from the I/O error that
// dropped it (or Close: Err then wraps hal.ErrClosed) until Reopen
// succeeds. The channel is closed at the next change. It implements
// hal.HealthReporter.
func (p *Port) Health() (hal.Health, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.health, p.hwake
}

// Reopen closes the current connection, if any, and opens the port again
// by name, retrying with the configured backoff until it succeeds, ctx is
// done (ctx.Err()) or the Port is closed (an error wrapping hal.ErrClosed).
// Drivers call it from their read loop after an error wrapping hal.ErrFault.
// Concurrent calls are serialised, and a call that finds the port already
// reopened by another while it waited returns nil at once.
func (p *Port) Reopen(ctx context.Context) error {
	p.mu.Lock()
	startGen := p.gen
	p.mu.Unlock()
	select {
	case p.reopening <- struct{}{}:
		defer func() { <-p.reopening }()
	case <-ctx.Done():
		return ctx.Err()
	case <-p.done:
		return fmt.Errorf("serial port %s: reopen: %w", p.cfg.Name, hal.ErrClosed)
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return fmt.Errorf("serial port %s: reopen: %w", p.cfg.Name, hal.ErrClosed)
	}
	if p.gen != startGen && p.sp != nil {
		p.mu.Unlock()
		return nil
	}
	old := p.sp
	p.sp = nil
	if old != nil {
		p.setHealthLocked(false, fmt.Errorf("serial port %s: reopening: %w", p.cfg.Name, hal.ErrFault))
	}
	p.mu.Unlock()
	if old != nil {
		old.Close()
	}
	for attempt := 0; ; attempt++ {
		sp, err := p.open()
		if err == nil {
			p.mu.Lock()
			if p.closed {
				p.mu.Unlock()
				sp.Close()
				return fmt.Errorf("serial port %s: reopen: %w", p.cfg.Name, hal.ErrClosed)
			}
			p.sp = sp
			p.gen++
			p.setHealthLocked(true, nil)
			p.mu.Unlock()
			return nil
		}
		t := time.NewTimer(p.cfg.Backoff.Delay(attempt))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-p.done:
			t.Stop()
			return fmt.Errorf("serial port %s: reopen: %w", p.cfg.Name, hal.ErrClosed)
		}
	}
}

// Close closes the port and wakes a goroutine blocked in Read or Reopen.
// It is idempotent and safe to call concurrently with any other method.
func (p *Port) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	close(p.done)
	sp := p.sp
	p.sp = nil
	p.setHealthLocked(false, fmt.Errorf("serial port %s: %w", p.cfg.Name, hal.ErrClosed))
	p.mu.Unlock()
	if sp == nil {
		return nil
	}
	if err := sp.Close(); err != nil {
		return fmt.Errorf("close serial port %s: %w", p.cfg.Name, err)
	}
	return nil
}

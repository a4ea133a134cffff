package evdev

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"termagent/hal"
	"termagent/hal/backoff"
	"termagent/hal/card"
	"termagent/hal/internal/chanq"
)

// eviocgrab is EVIOCGRAB, _IOW('E', 0x90, int).
const eviocgrab = 1<<30 | 4<<16 | 'E'<<8 | 0x90

// Pacing and bounds.
const (
	// idlePoll bounds one read when nothing is pending, so Close is
	// seen promptly even if it raced the read.
	idlePoll = 200 * time.Millisecond
	// batch is how many records one read takes at most.
	batch = 64
	// queueLen bounds the cards or keys read and not yet taken; the
	// oldest is dropped (and counted) when one more arrives.
	queueLen = 16
)

// Log field keys.
const (
	logComponent = "component"
	logDevice    = "device"
	logNumber    = "number"
	logCount     = "count"
)

// Config configures a CardReader or a Keypad. Zero values mean the
// documented defaults.
type Config struct {
	// Device is the input device's path: preferably its udev name
	// /dev/input/by-id/usb-<Vendor>_<Product>-event-kbd, else
	// /dev/input/eventN. Required.
	Device string `yaml:"device"`
	// EventSize is the input_event record size in bytes, 16 or 24; zero
	// means the running process's (24 on 64-bit, 16 on 32-bit).
	EventSize int `yaml:"event_size"`
	// KeyGap (card mode) is the silence after which a partial card
	// number is dropped; zero means 100 ms.
	KeyGap time.Duration `yaml:"key_gap"`
	// Line (card mode) says which numbers are accepted: decimal or hex
	// digits, their count (hal/card's line rules; zero: decimal, 6 to 19
	// digits).
	Line card.Line `yaml:"-"`
	// Format (card mode) turns the number into the server's card_number;
	// zero means the 10-digit decimal of the low 32 bits, which is the
	// typed number itself for 10-digit readers.
	Format card.Format `yaml:"-"`
	// Backoff paces reopening a vanished device; zero fields mean 100 ms
	// doubling to 2 s.
	Backoff backoff.Policy `yaml:"-"`
	// Logger receives faults (warn), reopens (info), dropped input (warn,
	// with counts) and cards (debug). Keys are never logged. The zero
	// Logger discards.
	Logger zerolog.Logger `yaml:"-"`
}

func (c Config) validate() (Config, error) {
	if c.Device == "" {
		return c, errors.New("evdev: no device path")
	}
	if c.EventSize == 0 {
		c.EventSize = NativeEventSize
	}
	if c.EventSize != 16 && c.EventSize != 24 {
		return c, fmt.Errorf("evdev %s: event_size %d: %w", c.Device, c.EventSize, ErrEventSize)
	}
	if c.KeyGap == 0 {
		c.KeyGap = DefaultKeyGap
	}
	if c.KeyGap < 0 {
		return c, fmt.Errorf("evdev %s: negative key gap %v", c.Device, c.KeyGap)
	}
	if err := c.Format.Validate(); err != nil {
		return c, fmt.Errorf("evdev %s: %w", c.Device, err)
	}
	return c, nil
}

// Stats counts what a device delivered and dropped since it opened.
type Stats struct {
	// Cards (card mode) and Keys (keypad mode) delivered or queued.
	Cards, Keys int
	// Dropped counts partial numbers dropped (silence, too long, a key
	// that is no digit) and lines refused by Config.Line.
	Dropped int
	// Overflow counts cards or keys dropped because nobody read them.
	Overflow int
	// Reopens counts how often the device was lost and found again.
	Reopens int
}

// handler is what a mode does with the records: handle takes one event,
// silence is called when the device has been quiet for the pending gap.
type handler interface {
	handle(ev Event)
	pending() bool
	silence()
}

// openHook is implemented by handlers that read the device's state after
// each open (before any event of that open is handled).
type openHook interface {
	opened(f *os.File)
}

// device owns the input device: it opens and grabs it, reads records,
// hands them to a handler and reopens the device when it vanishes.
type device struct {
	cfg Config
	log zerolog.Logger
	h   handler

	stop chan struct{}
	once sync.Once
	done chan struct{}

	mu     sync.Mutex
	f      *os.File
	closed bool
	stats  Stats
	health hal.Health
	hwake  chan struct{}
}

func openDevice(cfg Config, kind string, h handler) (*device, error) {
	d := &device{
		cfg:   cfg,
		log:   cfg.Logger.With().Str(logComponent, kind).Str(logDevice, cfg.Device).Logger(),
		h:     h,
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
		hwake: make(chan struct{}),
	}
	// A device missing (or not grabbable) at open is in the state of one
	// lost later: reported lost, and reopened by run with the backoff.
	f, err := openGrab(cfg.Device)
	if err != nil {
		d.health = hal.Health{OK: false, Err: err, Since: time.Now()}
		d.log.Warn().Err(err).Msg("input device missing at start; opening it when it appears")
		return d, nil
	}
	d.f = f
	d.health = hal.Health{OK: true, Since: time.Now()}
	return d, nil
}

// start reads the device's state (openHook) and starts the read goroutine;
// the caller has made its handler ready.
func (d *device) start() {
	if oh, ok := d.h.(openHook); ok && d.f != nil {
		oh.opened(d.f)
	}
	go d.run()
}

// openGrab opens path for reading and grabs it. The grab may fail only on
// what is not a character device (a FIFO in tests): there it is skipped.
func openGrab(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("evdev: open %s: %w: %w", path, hal.ErrFault, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("evdev: stat %s: %w: %w", path, hal.ErrFault, err)
	}
	sc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("evdev: %s: %w: %w", path, hal.ErrFault, err)
	}
	var grabErr error
	if err := sc.Control(func(fd uintptr) { grabErr = unix.IoctlSetInt(int(fd), eviocgrab, 1) }); err != nil {
		grabErr = err
	}
	if grabErr != nil && fi.Mode()&os.ModeCharDevice != 0 {
		f.Close()
		return nil, fmt.Errorf("evdev: grab %s (EVIOCGRAB; is another program reading it?): %w: %w", path, hal.ErrFault, grabErr)
	}
	return f, nil
}

func (d *device) count(f func(*Stats)) {
	d.mu.Lock()
	f(&d.stats)
	d.mu.Unlock()
}

func (d *device) getStats() Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stats
}

func (d *device) getHealth() (hal.Health, <-chan struct{}) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.health, d.hwake
}

func (d *device) setHealthLocked(ok bool, err error) {
	if d.health.OK == ok && (ok || !errors.Is(err, hal.ErrClosed)) {
		return
	}
	d.health = hal.Health{OK: ok, Err: err, Since: time.Now()}
	close(d.hwake)
	d.hwake = make(chan struct{})
}

func (d *device) stopped() bool {
	select {
	case <-d.stop:
		return true
	default:
		return false
	}
}

// run reads records until Close. A read that times out while input is
// pending proves the gap of silence (every earlier record was read before
// it began), so the handler drops the partial input.
func (d *device) run() {
	defer close(d.done)
	size := d.cfg.EventSize
	buf := make([]byte, batch*size)
	have := 0
	for {
		d.mu.Lock()
		f := d.f
		d.mu.Unlock()
		if f == nil {
			if !d.reopen() {
				return
			}
			have = 0
			continue
		}
		wait := idlePoll
		if d.h.pending() {
			wait = d.cfg.KeyGap
		}
		_ = f.SetReadDeadline(time.Now().Add(wait))
		n, err := f.Read(buf[have:])
		if d.stopped() {
			return
		}
		have += n
		k := 0
		for ; have-k >= size; k += size {
			ev, _ := Decode(buf[k:], size) // size was validated
			d.h.handle(ev)
		}
		have = copy(buf, buf[k:have])
		switch {
		case err == nil:
		case errors.Is(err, os.ErrDeadlineExceeded):
			if d.h.pending() {
				d.h.silence()
			}
		default: // unplugged (ENODEV), or a FIFO's writer went (EOF)
			if errors.Is(err, io.EOF) {
				err = errors.New("end of input")
			}
			err = fmt.Errorf("evdev %s: read: device vanished: %w: %w", d.cfg.Device, hal.ErrFault, err)
			d.log.Warn().Err(err).Msg("input device lost; reopening")
			d.mu.Lock()
			if d.f == f {
				d.f = nil
				f.Close()
				d.setHealthLocked(false, err)
			}
			d.mu.Unlock()
			if d.h.pending() {
				d.h.silence()
			}
		}
	}
}

// reopen opens the device again with backoff until it succeeds (true) or
// Close is called (false).
func (d *device) reopen() bool {
	for attempt := 0; ; attempt++ {
		t := time.NewTimer(d.cfg.Backoff.Delay(attempt))
		select {
		case <-d.stop:
			t.Stop()
			return false
		case <-t.C:
		}
		f, err := openGrab(d.cfg.Device)
		if err != nil {
			continue
		}
		d.mu.Lock()
		if d.closed {
			d.mu.Unlock()
			f.Close()
			return false
		}
		d.f = f
		d.stats.Reopens++
		d.setHealthLocked(true, nil)
		d.mu.Unlock()
		if oh, ok := d.h.(openHook); ok {
			oh.opened(f)
		}
		d.log.Info().Msg("input device back")
		return true
	}
}

func (d *device) close() error {
	var err error
	d.once.Do(func() {
		close(d.stop)
		d.mu.Lock()
		d.closed = true
		if d.f != nil {
			err = d.f.Close() // wakes the read
			d.f = nil
		}
		d.setHealthLocked(false, fmt.Errorf("evdev %s: %w", d.cfg.Device, hal.ErrClosed))
		d.mu.Unlock()
		<-d.done
	})
	if err != nil {
		return fmt.Errorf("evdev %s: close: %w", d.cfg.Device, err)
	}
	return nil
}

// CardReader is a USB keyboard-wedge card reader. It implements
// hal.CardReader and hal.HealthReporter. A goroutine reads the device all
// the time; ReadCard is for one goroutine at a time; Close may be called
// from any goroutine.
type CardReader struct {
	dev   *device
	asm   CardAssembler // owned by the read goroutine
	cards chan hal.Card
}

var (
	_ hal.CardReader     = (*CardReader)(nil)
	_ hal.HealthReporter = (*CardReader)(nil)
)

// OpenCardReader opens and grabs cfg.Device and starts reading card
// numbers from it. Like a serial device, a device missing at open (or whose grab is
// refused: another program reads it) is in the state of one lost later:
// Health reports a fault wrapping hal.ErrFault and the device is opened
// with the backoff when it can be. Open fails only for an invalid
// configuration. The caller closes the reader.
func OpenCardReader(cfg Config) (*CardReader, error) {
	cfg, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	if err := cfg.Line.Validate(); err != nil {
		return nil, fmt.Errorf("evdev %s: %w", cfg.Device, err)
	}
	r := &CardReader{asm: CardAssembler{KeyGap: cfg.KeyGap}, cards: make(chan hal.Card, queueLen)}
	if r.dev, err = openDevice(cfg, "evdev-card", (*cardHandler)(r)); err != nil {
		return nil, err
	}
	r.dev.start()
	return r, nil
}

// cardHandler is the CardReader's handler, run on the read goroutine.
type cardHandler CardReader

func (h *cardHandler) pending() bool { return h.asm.Pending() }

func (h *cardHandler) silence() {
	if h.asm.Flush() {
		h.dropped(ErrPartial)
	}
}

func (h *cardHandler) dropped(err error) {
	h.dev.count(func(s *Stats) { s.Dropped++ })
	h.dev.log.Warn().Err(err).Int(logCount, h.dev.getStats().Dropped).Msg("dropped card input")
}

func (h *cardHandler) handle(ev Event) {
	text, ok, err := h.asm.Push(ev)
	if err != nil {
		h.dropped(err)
	}
	if !ok {
		return
	}
	rd, ok, _, err := h.dev.cfg.Line.Decode([]byte(text + "\n"))
	if !ok {
		h.dropped(fmt.Errorf("refused by the line rules: %w", err))
		return
	}
	number, err := h.dev.cfg.Format.Apply(rd)
	if err != nil { // Format was validated at open
		h.dev.log.Error().Err(err).Msg("format card number")
		return
	}
	h.dev.count(func(s *Stats) { s.Cards++ })
	h.dev.log.Debug().Str(logNumber, number).Msg("card")
	if chanq.DropOldest(h.cards, hal.Card{Number: number, Raw: rd.UID, At: ev.Time}) {
		h.dev.count(func(s *Stats) { s.Overflow++ })
		h.dev.log.Warn().Msg("card queue full; dropped the oldest")
	}
}

// ReadCard blocks until a card number is typed and Enter pressed, ctx is
// done (ctx.Err()) or the reader is closed (an error wrapping
// hal.ErrClosed). Card.At is the Enter's kernel timestamp.
func (r *CardReader) ReadCard(ctx context.Context) (hal.Card, error) {
	return chanq.Take(ctx, r.cards, r.dev.stop, "evdev "+r.dev.cfg.Device)
}

// Health reports whether the device is open (hal.HealthReporter).
func (r *CardReader) Health() (hal.Health, <-chan struct{}) { return r.dev.getHealth() }

// Stats returns the counts so far. Safe for concurrent use.
func (r *CardReader) Stats() Stats { return r.dev.getStats() }

// Close releases the grab and the device and wakes ReadCard; idempotent.
func (r *CardReader) Close() error { return r.dev.close() }

// Keypad is a USB keypad (or keyboard). It implements hal.Keypad and
// hal.HealthReporter. A goroutine reads the device all the time; ReadKey
// is for one goroutine at a time; Close may be called from any goroutine.
type Keypad struct {
	dev  *device
	km   KeyMapper // owned by the read goroutine
	keys chan hal.Key
}

var (
	_ hal.Keypad         = (*Keypad)(nil)
	_ hal.HealthReporter = (*Keypad)(nil)
)

// OpenKeypad opens and grabs cfg.Device (Line, Format and KeyGap are not
// used) and starts reading keys from it. Like a serial device, a device missing at open (or whose grab is
// refused: another program reads it) is in the state of one lost later:
// Health reports a fault wrapping hal.ErrFault and the device is opened
// with the backoff when it can be. Open fails only for an invalid
// configuration. The caller closes
// the keypad.
func OpenKeypad(cfg Config) (*Keypad, error) {
	cfg, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	k := &Keypad{keys: make(chan hal.Key, queueLen)}
	if k.dev, err = openDevice(cfg, "evdev-keypad", (*keyHandler)(k)); err != nil {
		return nil, err
	}
	k.dev.start()
	return k, nil
}

// keyHandler is the Keypad's handler, run on the read goroutine.
type keyHandler Keypad

func (h *keyHandler) pending() bool { return false }
func (h *keyHandler) silence()      {}

func (h *keyHandler) handle(ev Event) {
	c, ok := h.km.Push(ev)
	if !ok {
		return
	}
	h.dev.count(func(s *Stats) { s.Keys++ })
	if chanq.DropOldest(h.keys, hal.Key{Char: c, At: ev.Time}) {
		h.dev.count(func(s *Stats) { s.Overflow++ })
		h.dev.log.Warn().Int(logCount, h.dev.getStats().Overflow).Msg("key queue full; dropped the oldest")
	}
}

// ReadKey blocks until a key is pressed, ctx is done (ctx.Err()) or the
// keypad is closed (an error wrapping hal.ErrClosed). Key.At is the
// press's kernel timestamp.
func (k *Keypad) ReadKey(ctx context.Context) (hal.Key, error) {
	return chanq.Take(ctx, k.keys, k.dev.stop, "evdev "+k.dev.cfg.Device)
}

// Health reports whether the device is open (hal.HealthReporter).
func (k *Keypad) Health() (hal.Health, <-chan struct{}) { return k.dev.getHealth() }

// Stats returns the counts so far. Safe for concurrent use.
func (k *Keypad) Stats() Stats { return k.dev.getStats() }

// Close releases the grab and the device and wakes ReadKey; idempotent.
func (k *Keypad) Close() error { return k.dev.close() }

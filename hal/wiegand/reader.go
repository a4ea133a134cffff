package wiegand

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"termagent/hal"
	"termagent/hal/card"
	"termagent/hal/internal/chanq"
)

// Lines is the D0/D1 pair as the Reader uses it: falling edges in the order
// they happened, with their timestamps. *CdevLines (the kernel's GPIO
// character device) implements it.
type Lines interface {
	// WaitEdge waits up to timeout for the next edge. ok is false when
	// none came within timeout or Halt interrupted the wait; err is a
	// failure of the lines themselves.
	WaitEdge(timeout time.Duration) (e Edge, ok bool, err error)
	// Halt interrupts a pending WaitEdge.
	Halt() error
	// Close releases the lines.
	Close() error
}

// Limits and pacing.
const (
	// idlePoll bounds a wait for an edge when no burst is pending, so
	// Close is seen within it even if a Halt raced the wait.
	idlePoll = 200 * time.Millisecond
	// queueLen bounds the cards and the keys decoded and not yet taken;
	// the oldest is dropped (and counted) when one more arrives.
	queueLen = 16
	// retryAfter paces reading again after the lines failed.
	retryAfter = time.Second
)

// Log field keys.
const (
	logComponent = "component"
	logBits      = "bits"
	logNumber    = "number"
	logCount     = "count"
)

// Config configures a Reader. Zero values mean the documented defaults.
type Config struct {
	// Chip is the GPIO chip: its name (gpiochip0), label
	// (pinctrl-bcm2711) or path (/dev/gpiochip0); zero means the first.
	// Used by Open only.
	Chip string `yaml:"chip"`
	// D0 and D1 are the data lines' names (e.g. "GPIO17") or offsets on
	// the chip ("17"). Required by Open.
	D0 string `yaml:"d0"`
	D1 string `yaml:"d1"`
	// Gap is the silence that ends a burst; zero means 25 ms. It must
	// exceed the reader's bit period (1–3 ms) and stay below the silence
	// between frames (50 ms or more).
	Gap time.Duration `yaml:"gap"`
	// Format turns a card's payload into the server's card_number; zero
	// means the 10-digit decimal of the low 32 bits.
	Format card.Format `yaml:"-"`
	// Logger receives read errors (warn, with their bit count), line
	// failures (error) and cards (debug). Keys are never logged. The zero
	// Logger discards.
	Logger zerolog.Logger `yaml:"-"`
}

// Stats counts what a Reader decoded since it started.
type Stats struct {
	// Cards and Keys delivered (or queued).
	Cards, Keys int
	// BadParity, BadLength and BadKey count read errors by kind.
	BadParity, BadLength, BadKey int
	// Dropped counts cards and keys dropped because nobody read them and
	// the queue was full.
	Dropped int
}

// Errors returns the read errors of all kinds.
func (s Stats) Errors() int { return s.BadParity + s.BadLength + s.BadKey }

// Reader reads Wiegand bursts from D0/D1: card frames are delivered by
// ReadCard, keypad keys by ReadKey. It implements hal.CardReader,
// hal.Keypad and hal.HealthReporter. A goroutine started by New reads the
// lines all the time; ReadCard and ReadKey are each for one goroutine at a
// time; Close may be called from any goroutine.
type Reader struct {
	cfg   Config
	lines Lines
	log   zerolog.Logger

	cards chan hal.Card
	keys  chan hal.Key
	stop  chan struct{}
	once  sync.Once
	done  chan struct{}

	mu     sync.Mutex
	stats  Stats
	health hal.Health
	hwake  chan struct{}
}

var (
	_ hal.CardReader     = (*Reader)(nil)
	_ hal.Keypad         = (*Reader)(nil)
	_ hal.HealthReporter = (*Reader)(nil)
)

// New starts a Reader on lines, which it owns (Close closes them).
func New(cfg Config, lines Lines) (*Reader, error) {
	if lines == nil {
		return nil, errors.New("wiegand: no lines")
	}
	if cfg.Gap == 0 {
		cfg.Gap = DefaultGap
	}
	if cfg.Gap < 0 {
		return nil, fmt.Errorf("wiegand: negative gap %v", cfg.Gap)
	}
	if err := cfg.Format.Validate(); err != nil {
		return nil, fmt.Errorf("wiegand: %w", err)
	}
	r := &Reader{
		cfg:    cfg,
		lines:  lines,
		log:    cfg.Logger.With().Str(logComponent, "wiegand").Logger(),
		cards:  make(chan hal.Card, queueLen),
		keys:   make(chan hal.Key, queueLen),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
		health: hal.Health{OK: true, Since: time.Now()},
		hwake:  make(chan struct{}),
	}
	go r.run()
	return r, nil
}

// ReadCard blocks until a card frame with good parity arrives, ctx is done
// (ctx.Err()) or the Reader is closed (an error wrapping hal.ErrClosed).
func (r *Reader) ReadCard(ctx context.Context) (hal.Card, error) {
	return chanq.Take(ctx, r.cards, r.stop, "wiegand")
}

// ReadKey blocks until a keypad key arrives, ctx is done (ctx.Err()) or the
// Reader is closed (an error wrapping hal.ErrClosed).
func (r *Reader) ReadKey(ctx context.Context) (hal.Key, error) {
	return chanq.Take(ctx, r.keys, r.stop, "wiegand")
}

// Stats returns the counts so far. Safe for concurrent use.
func (r *Reader) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats
}

// Health reports whether the lines can be read (hal.HealthReporter).
func (r *Reader) Health() (hal.Health, <-chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.health, r.hwake
}

func (r *Reader) setHealth(ok bool, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.health.OK == ok && ok {
		return
	}
	if !r.health.OK && !ok && !errors.Is(err, hal.ErrClosed) {
		return
	}
	r.health = hal.Health{OK: ok, Err: err, Since: time.Now()}
	close(r.hwake)
	r.hwake = make(chan struct{})
}

// run reads edges until Close. A wait that times out while a burst is
// pending proves Gap of silence since its last edge (every earlier edge
// was read before the wait began), so the burst is complete.
func (r *Reader) run() {
	defer close(r.done)
	var dec Decoder
	dec.Gap = r.cfg.Gap
	failing := false
	for {
		timeout := idlePoll
		if dec.Pending() {
			timeout = r.cfg.Gap
		}
		e, ok, err := r.lines.WaitEdge(timeout)
		if r.stopped() {
			return
		}
		if err != nil {
			err = fmt.Errorf("wiegand: read D0/D1 %s/%s: %w: %w", r.cfg.D0, r.cfg.D1, hal.ErrFault, err)
			if !failing { // once per outage, not once per retry
				r.log.Error().Err(err).Msg("wiegand lines failed; retrying every second")
			}
			failing = true
			r.setHealth(false, err)
			dec = Decoder{Gap: r.cfg.Gap} // a burst cut by the failure is lost
			t := time.NewTimer(retryAfter)
			select {
			case <-r.stop:
				t.Stop()
				return
			case <-t.C:
			}
			continue
		}
		if failing {
			failing = false
			r.log.Info().Msg("wiegand lines back")
		}
		r.setHealth(true, nil)
		var b Burst
		var done bool
		if ok {
			b, done = dec.Push(e)
		} else {
			b, done = dec.Flush()
		}
		if done {
			r.handle(b)
		}
	}
}

func (r *Reader) stopped() bool {
	select {
	case <-r.stop:
		return true
	default:
		return false
	}
}

// handle counts a burst and queues what it carries.
func (r *Reader) handle(b Burst) {
	now := time.Now()
	switch b.Kind {
	case KindCard:
		number, err := r.cfg.Format.Apply(card.Read{UID: b.Data})
		if err != nil { // Format was validated in New
			r.log.Error().Err(err).Msg("format card number")
			return
		}
		r.count(func(s *Stats) { s.Cards++ })
		r.log.Debug().Int(logBits, b.Bits).Str(logNumber, number).Msg("card")
		if chanq.DropOldest(r.cards, hal.Card{Number: number, Raw: b.Data, At: now}) {
			r.dropped()
		}
	case KindKey:
		r.count(func(s *Stats) { s.Keys++ })
		if chanq.DropOldest(r.keys, hal.Key{Char: b.Key, At: now}) {
			r.dropped()
		}
	default:
		r.count(func(s *Stats) {
			switch {
			case errors.Is(b.Err, ErrParity):
				s.BadParity++
			case errors.Is(b.Err, ErrKeyCheck):
				s.BadKey++
			default:
				s.BadLength++
			}
		})
		r.log.Warn().Err(b.Err).Int(logBits, b.Bits).Int(logCount, r.Stats().Errors()).Msg("wiegand read error")
	}
}

func (r *Reader) count(f func(*Stats)) {
	r.mu.Lock()
	f(&r.stats)
	r.mu.Unlock()
}

func (r *Reader) dropped() {
	r.count(func(s *Stats) { s.Dropped++ })
	r.log.Warn().Int(logCount, r.Stats().Dropped).Msg("wiegand queue full; dropped the oldest")
}

// Close stops reading and releases the lines, which wakes ReadCard and
// ReadKey; idempotent.
func (r *Reader) Close() error {
	var err error
	r.once.Do(func() {
		close(r.stop)
		_ = r.lines.Halt()
		<-r.done
		err = r.lines.Close()
		r.setHealth(false, fmt.Errorf("wiegand: %w", hal.ErrClosed))
	})
	if err != nil {
		return fmt.Errorf("wiegand: close lines: %w", err)
	}
	return nil
}

package card

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"termagent/hal"
	"termagent/hal/backoff"
	"termagent/hal/internal/chanq"
	"termagent/hal/serialport"
)

// Protocol names a reader's wire protocol, as written in configuration.
type Protocol string

// Protocols.
const (
	ProtoRDM6300   Protocol = "rdm6300"   // STX + ASCII hex + XOR + ETX
	ProtoGwiot7941 Protocol = "gwiot7941" // binary push frames 02 LEN TYPE UID BCC 03
	ProtoLine      Protocol = "line"      // digits + CR/LF
)

// Defaults for zero Config fields.
const (
	DefaultRepeatWindow = time.Second
	DefaultFrameGap     = 100 * time.Millisecond
)

// pollEvery bounds how long ReadCard takes to notice a done ctx.
const pollEvery = 100 * time.Millisecond

// bufSize bounds the bytes a Reader holds while looking for a frame; every
// protocol's longest frame is far shorter.
const bufSize = 256

// Log field keys.
const (
	logComponent = "component"
	logPort      = "port"
	logBytes     = "bytes"
	logUID       = "uid"
	logNumber    = "number"
)

// Config configures a Reader. Zero values mean the documented defaults.
type Config struct {
	// Driver is the reader's wire protocol (rdm6300, gwiot7941 or line);
	// zero means rdm6300.
	Driver Protocol `yaml:"driver"`
	// Port is the serial device path, e.g. /dev/ttyS2. Required.
	Port string `yaml:"port"`
	// Baud is the line speed in bits per second; zero means 9600.
	Baud int `yaml:"baud"`
	// Format turns identifiers into card numbers; zero means 10-digit
	// decimal of the low 32 bits.
	Format Format `yaml:"format"`
	// Line configures the line protocol (ignored by the others).
	Line Line `yaml:"line"`
	// RepeatWindow: a read of the same card arriving within this time of
	// the previous read of it (readers repeat every ~50 ms while the card stays
	// in the field) is a repeat and is not delivered. Zero means 1 s;
	// negative delivers every read.
	RepeatWindow time.Duration `yaml:"repeat_window"`
	// FrameGap is the silence after which a partial frame is dropped, so a
	// half-received line never glues onto the next. Zero means 100 ms.
	FrameGap time.Duration `yaml:"-"`
	// Backoff paces reopening a vanished port; zero means serialport's
	// defaults (100 ms doubling to 2 s).
	Backoff backoff.Policy `yaml:"-"`
	// Logger receives faults (warn), reconnects (info) and frames (debug).
	// The zero Logger discards.
	Logger zerolog.Logger `yaml:"-"`
}

// WithDefaults returns c with every zero field that has a default set to
// it; Open applies it.
func (c Config) WithDefaults() Config {
	if c.Driver == "" {
		c.Driver = ProtoRDM6300
	}
	if c.Baud == 0 {
		c.Baud = serialport.DefaultBaud
	}
	if c.RepeatWindow == 0 {
		c.RepeatWindow = DefaultRepeatWindow
	}
	if c.FrameGap == 0 {
		c.FrameGap = DefaultFrameGap
	}
	if c.Format.Style == "" {
		c.Format.Style = Decimal
	}
	return c
}

func (c Config) decoder() (decoder, error) {
	switch c.Driver {
	case ProtoRDM6300:
		return DecodeRDM6300, nil
	case ProtoGwiot7941:
		return DecodeGwiot7941, nil
	case ProtoLine:
		if lo, hi := c.Line.limits(); c.Line.MinDigits < 0 || lo > hi {
			return nil, fmt.Errorf("card reader %s: line digits %d..%d", c.Port, c.Line.MinDigits, c.Line.MaxDigits)
		}
		return c.Line.Decode, nil
	}
	return nil, fmt.Errorf("card reader %s: unknown driver %q (want rdm6300, gwiot7941 or line)", c.Port, c.Driver)
}

// cardQueue bounds the cards decoded and not yet taken by ReadCard. A
// person presents one card at a time; when this many wait, the read
// goroutine waits for ReadCard (no card is dropped; bytes queue in the
// port meanwhile).
const cardQueue = 16

// Reader is a serial card reader. It implements hal.CardReader and
// hal.HealthReporter. A goroutine started by Open reads the port all the
// time, so that every frame is stamped when its bytes arrive (the repeat
// filter goes by that time, however late ReadCard is called) and a
// vanished port is noticed and reopened while the reader is idle. ReadCard
// is for one goroutine at a time; Close may be called from any goroutine.
type Reader struct {
	cfg    Config
	port   *serialport.Port
	decode decoder
	log    zerolog.Logger

	cards    chan hal.Card // decoded fresh cards, oldest first
	stop     chan struct{} // closed by Close
	stopOnce sync.Once
	done     chan struct{} // closed when the read goroutine has returned

	// Owned by the read goroutine.
	buf    [bufSize]byte
	n      int       // bytes pending in buf
	lastIn time.Time // when the last byte arrived
	repeat repeatFilter
}

var (
	_ hal.CardReader     = (*Reader)(nil)
	_ hal.HealthReporter = (*Reader)(nil)
)

// Open validates cfg, opens the reader's port and starts reading it. A
// missing port is an error wrapping hal.ErrFault naming it. The caller
// closes the Reader.
func Open(cfg Config) (*Reader, error) {
	cfg = cfg.WithDefaults()
	dec, err := cfg.decoder()
	if err != nil {
		return nil, err
	}
	if err := cfg.Format.Validate(); err != nil {
		return nil, fmt.Errorf("card reader %s: %w", cfg.Port, err)
	}
	if cfg.FrameGap < 0 {
		return nil, fmt.Errorf("card reader %s: negative frame gap %v", cfg.Port, cfg.FrameGap)
	}
	port, err := serialport.Open(serialport.Config{
		Name: cfg.Port, Baud: cfg.Baud, ReadTimeout: min(cfg.FrameGap, pollEvery), Backoff: cfg.Backoff,
	})
	if err != nil {
		return nil, fmt.Errorf("card reader: %w", err)
	}
	r := &Reader{
		cfg:    cfg,
		port:   port,
		decode: dec,
		log:    cfg.Logger.With().Str(logComponent, "card").Str(logPort, cfg.Port).Logger(),
		cards:  make(chan hal.Card, cardQueue),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
		repeat: repeatFilter{window: cfg.RepeatWindow},
	}
	go r.run()
	return r, nil
}

// ReadCard blocks until a card is presented and returns it, formatted. It
// returns ctx.Err() as soon as ctx is done, and an error wrapping
// hal.ErrClosed once Close is called. Garbage, bad checksums and partial
// frames are dropped; a vanished port is reopened with backoff while
// ReadCard keeps waiting (Health says so meanwhile).
func (r *Reader) ReadCard(ctx context.Context) (hal.Card, error) {
	return chanq.Take(ctx, r.cards, r.stop, "card reader "+r.cfg.Port)
}

// Health reports whether the reader's port is open (hal.HealthReporter).
func (r *Reader) Health() (hal.Health, <-chan struct{}) { return r.port.Health() }

// run reads the port until Close: bytes are stamped as they arrive and
// decoded at once; a vanished port is reopened with backoff.
func (r *Reader) run() {
	defer close(r.done)
	life, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-r.stop:
			cancel()
		case <-life.Done():
		}
	}()
	for {
		if r.n == len(r.buf) { // cannot happen with the bounded decoders; stay safe
			r.n = 0
		}
		k, err := r.port.Read(r.buf[r.n:])
		switch {
		case err == nil:
			r.n += k
			r.lastIn = time.Now()
			r.deliver(r.lastIn)
		case errors.Is(err, hal.ErrTimeout):
			if r.n > 0 && time.Since(r.lastIn) >= r.cfg.FrameGap {
				r.log.Debug().Int(logBytes, r.n).Msg("dropped partial frame after silence")
				r.n = 0
			}
		case errors.Is(err, hal.ErrClosed):
			return
		default: // the port vanished
			r.log.Warn().Err(err).Msg("card reader lost; reopening")
			r.n = 0
			if err := r.port.Reopen(life); err != nil {
				return // closed
			}
			r.log.Info().Msg("card reader back")
		}
		select {
		case <-r.stop:
			return
		default:
		}
	}
}

// deliver decodes what is buffered and queues every fresh card, stamped
// with at, when its last bytes arrived.
func (r *Reader) deliver(at time.Time) {
	for r.n > 0 {
		rd, ok, adv, err := r.decode(r.buf[:r.n])
		if adv == 0 {
			return
		}
		if err != nil {
			r.log.Debug().Err(err).Msg("dropped bad frame")
		}
		r.n = copy(r.buf[:], r.buf[adv:r.n])
		if !ok {
			continue
		}
		if !r.repeat.fresh(rd.UID, at) {
			continue
		}
		number, err := r.cfg.Format.Apply(rd)
		if err != nil { // Format was validated in Open
			r.log.Error().Err(err).Msg("format card number")
			continue
		}
		r.log.Debug().Hex(logUID, rd.UID).Str(logNumber, number).Msg("card")
		select {
		case r.cards <- hal.Card{Number: number, Raw: rd.UID, At: at}:
		case <-r.stop:
			return
		}
	}
}

// Close stops the read goroutine and closes the port, which wakes
// ReadCard; idempotent.
func (r *Reader) Close() error {
	var err error
	r.stopOnce.Do(func() {
		close(r.stop)
		err = r.port.Close()
		<-r.done
	})
	if err != nil {
		return fmt.Errorf("card reader: %w", err)
	}
	return nil
}

// repeatFilter suppresses a card read again within window of its previous
// read. The window slides: a card held in the field keeps being suppressed.
type repeatFilter struct {
	window time.Duration // negative: no suppression
	last   []byte
	at     time.Time
}

// fresh reports whether uid, read at now, should be delivered.
func (f *repeatFilter) fresh(uid []byte, now time.Time) bool {
	if f.window < 0 {
		return true
	}
	same := bytes.Equal(uid, f.last) && now.Sub(f.at) < f.window
	f.last, f.at = uid, now
	return !same
}

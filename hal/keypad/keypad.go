// Package keypad drives serial-line keypads: keypad modules (matrix
// keypads with a UART, RS-232/RS-485 PIN pads) that send one ASCII byte per
// key press.
//
// # Protocol ("ascii")
//
// Each key press is one byte, at 9600 8N1 unless configured otherwise:
//
//	'0'–'9', '*', '#'        the keys themselves
//	'A'–'D' (or 'a'–'d')     the function keys of 16-key pads
//	CR, LF or CR LF          Enter (hal.KeyEnter; a CR LF pair is one Enter)
//	ESC (0x1B)               hal.KeyEscape
//	BS (0x08), DEL (0x7F)    hal.KeyBackspace
//
// Any other byte is line noise: dropped and counted. Keys are never logged,
// only counted (they are PINs). hal/sim's Keypad speaks the module side on
// a pseudo-terminal.
//
// Import rule: keypad imports hal and hal/serialport only; never agent,
// store or protocol.
package keypad

import (
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

// Decoder turns the bytes of an ascii keypad into keys. It is a pure state
// machine (it remembers only whether the last byte was a CR); the zero
// Decoder is ready.
type Decoder struct {
	afterCR bool
}

// Push decodes one byte: the key it is (ok), or nothing (a noise byte, or
// the LF of a CR LF pair: noise reports which).
func (d *Decoder) Push(b byte) (char byte, ok, noise bool) {
	afterCR := d.afterCR
	d.afterCR = b == '\r'
	switch {
	case b >= '0' && b <= '9', b == '*', b == '#', b >= 'A' && b <= 'D':
		return b, true, false
	case b >= 'a' && b <= 'd':
		return b - 'a' + 'A', true, false
	case b == '\r':
		return hal.KeyEnter, true, false
	case b == '\n':
		if afterCR {
			return 0, false, false
		}
		return hal.KeyEnter, true, false
	case b == 0x1B:
		return hal.KeyEscape, true, false
	case b == 0x08, b == 0x7F:
		return hal.KeyBackspace, true, false
	}
	return 0, false, true
}

// Config configures a serial keypad. Zero values mean the documented
// defaults.
type Config struct {
	// Port is the serial device path, e.g. /dev/ttyS3. Required.
	Port string `yaml:"port"`
	// Baud is the line speed in bits per second; zero means 9600.
	Baud int `yaml:"baud"`
	// Backoff paces reopening a vanished port; zero means serialport's
	// defaults (100 ms doubling to 2 s).
	Backoff backoff.Policy `yaml:"-"`
	// Logger receives faults (warn), reconnects (info) and noise counts
	// (debug). Keys are never logged. The zero Logger discards.
	Logger zerolog.Logger `yaml:"-"`
}

// Bounds.
const (
	// queueLen bounds keys read and not yet taken; the oldest is dropped
	// (and counted) when one more arrives.
	queueLen = 32
	// readTimeout bounds one read, so Close is seen promptly.
	readTimeout = 100 * time.Millisecond
)

// Log field keys.
const (
	logComponent = "component"
	logPort      = "port"
	logCount     = "count"
)

// Stats counts what a Serial keypad read since it opened.
type Stats struct {
	// Keys delivered or queued.
	Keys int
	// Noise counts bytes that are no key.
	Noise int
	// Dropped counts keys dropped because nobody read them.
	Dropped int
}

// Serial is a keypad on a serial line. It implements hal.Keypad and
// hal.HealthReporter. A goroutine started by Open reads the port all the
// time and reopens it when it vanishes; ReadKey is for one goroutine at a
// time; Close may be called from any goroutine.
type Serial struct {
	cfg  Config
	port *serialport.Port
	log  zerolog.Logger

	keys     chan hal.Key
	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}

	mu    sync.Mutex
	stats Stats
}

var (
	_ hal.Keypad         = (*Serial)(nil)
	_ hal.HealthReporter = (*Serial)(nil)
)

// Open opens the keypad's port and starts reading it. Like every serial
// device (hal/serialport), a port missing at Open is in the state of a port
// lost later: Health reports it lost and the reader reopens it with its
// backoff. Open fails only for an invalid configuration. The caller closes
// the Serial.
func Open(cfg Config) (*Serial, error) {
	port, err := serialport.Open(serialport.Config{Name: cfg.Port, Baud: cfg.Baud, ReadTimeout: readTimeout, Backoff: cfg.Backoff})
	if err != nil {
		return nil, fmt.Errorf("keypad: %w", err)
	}
	s := &Serial{
		cfg:  cfg,
		port: port,
		log:  cfg.Logger.With().Str(logComponent, "keypad").Str(logPort, cfg.Port).Logger(),
		keys: make(chan hal.Key, queueLen),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	go s.run()
	return s, nil
}

// ReadKey blocks until a key is pressed, ctx is done (ctx.Err()) or the
// keypad is closed (an error wrapping hal.ErrClosed). Key.At is when its
// byte arrived.
func (s *Serial) ReadKey(ctx context.Context) (hal.Key, error) {
	return chanq.Take(ctx, s.keys, s.stop, "keypad "+s.cfg.Port)
}

// Health reports whether the keypad's port is open (hal.HealthReporter).
func (s *Serial) Health() (hal.Health, <-chan struct{}) { return s.port.Health() }

// Stats returns the counts so far. Safe for concurrent use.
func (s *Serial) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

func (s *Serial) run() {
	defer close(s.done)
	life, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-s.stop:
			cancel()
		case <-life.Done():
		}
	}()
	var dec Decoder
	var buf [64]byte
	for {
		n, err := s.port.Read(buf[:])
		switch {
		case err == nil:
			now := time.Now()
			noise := 0
			for _, b := range buf[:n] {
				c, ok, bad := dec.Push(b)
				if bad {
					noise++
				}
				if ok {
					s.deliver(hal.Key{Char: c, At: now})
				}
			}
			if noise > 0 {
				s.mu.Lock()
				s.stats.Noise += noise
				total := s.stats.Noise
				s.mu.Unlock()
				s.log.Debug().Int(logCount, total).Msg("keypad line noise dropped")
			}
		case errors.Is(err, hal.ErrTimeout):
		case errors.Is(err, hal.ErrClosed):
			return
		default:
			s.log.Warn().Err(err).Msg("keypad lost; reopening")
			dec = Decoder{}
			if err := s.port.Reopen(life); err != nil {
				return
			}
			s.log.Info().Msg("keypad back")
		}
		select {
		case <-s.stop:
			return
		default:
		}
	}
}

// deliver queues k, dropping the oldest key when the queue is full.
func (s *Serial) deliver(k hal.Key) {
	s.mu.Lock()
	s.stats.Keys++
	s.mu.Unlock()
	for {
		select {
		case s.keys <- k:
			return
		default:
		}
		select {
		case <-s.keys:
			s.mu.Lock()
			s.stats.Dropped++
			s.mu.Unlock()
			s.log.Warn().Msg("key queue full; dropped the oldest")
		default:
		}
	}
}

// Close stops the read goroutine and closes the port, which wakes ReadKey;
// idempotent.
func (s *Serial) Close() error {
	var err error
	s.stopOnce.Do(func() {
		close(s.stop)
		err = s.port.Close()
		<-s.done
	})
	if err != nil {
		return fmt.Errorf("keypad: %w", err)
	}
	return nil
}

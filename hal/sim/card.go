package sim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Card reader protocols the simulator speaks (the names hal/card's
// configuration uses).
const (
	CardRDM6300   = "rdm6300"
	CardGwiot7941 = "gwiot7941"
	CardLine      = "line"
)

// Limits on what a control command may ask of the card reader.
const (
	maxNoise   = 4096 // bytes of noise per command
	maxRepeats = 100  // frames per swipe
)

// CardReaderConfig configures a simulated card reader. Zero values mean the
// documented defaults.
type CardReaderConfig struct {
	// Protocol is rdm6300, gwiot7941 or line; zero means rdm6300.
	Protocol string
	// Repeats is how many frames one swipe sends, as a reader repeats the
	// frame while the card stays in the field; zero means 3.
	Repeats int
	// RepeatEvery is the pause between repeated frames; zero means 50 ms.
	RepeatEvery time.Duration
	// LineEnd ends each line of the line protocol; zero means "\r\n".
	LineEnd string
}

// CardReader is a simulated push card reader: it ignores what the host
// sends and writes a frame when a card is swiped. Safe for concurrent use.
type CardReader struct {
	cfg CardReaderConfig

	wire   wire
	mu     sync.Mutex // guards swipes
	swipes int
}

var _ Device = (*CardReader)(nil)

// NewCardReader returns a card reader; it fails on an unknown protocol.
func NewCardReader(cfg CardReaderConfig) (*CardReader, error) {
	switch cfg.Protocol {
	case "":
		cfg.Protocol = CardRDM6300
	case CardRDM6300, CardGwiot7941, CardLine:
	default:
		return nil, fmt.Errorf("sim: card reader: unknown protocol %q (want rdm6300, gwiot7941 or line)", cfg.Protocol)
	}
	if cfg.Repeats == 0 {
		cfg.Repeats = 3
	}
	if cfg.Repeats < 0 || cfg.Repeats > maxRepeats {
		return nil, fmt.Errorf("sim: card reader: repeats %d out of range 1..%d", cfg.Repeats, maxRepeats)
	}
	if cfg.RepeatEvery == 0 {
		cfg.RepeatEvery = 50 * time.Millisecond
	}
	if cfg.LineEnd == "" {
		cfg.LineEnd = "\r\n"
	}
	return &CardReader{cfg: cfg}, nil
}

// Protocol returns the protocol the reader speaks.
func (c *CardReader) Protocol() string { return c.cfg.Protocol }

// Serve makes port the reader's line until ctx is done. A card reader only
// talks; it does not read what the host sends.
func (c *CardReader) Serve(ctx context.Context, port io.ReadWriter) error {
	defer c.wire.attach(port)()
	<-ctx.Done()
	return ctx.Err()
}

// Swipe presents a card: it writes the card's frame Repeats times,
// RepeatEvery apart, and returns when the last is written, ctx is done or
// the reader is unplugged (ErrUnplugged). number is decimal digits (the
// number printed on the card: the low 32 bits of an EM4100 tag) or "0x"
// and hex digits (the identifier bytes as the reader would send them).
func (c *CardReader) Swipe(ctx context.Context, number string) error {
	frame, err := c.Frame(number)
	if err != nil {
		return err
	}
	for i := range c.cfg.Repeats {
		if i > 0 {
			t := time.NewTimer(c.cfg.RepeatEvery)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
		}
		if err := c.WriteRaw(frame); err != nil {
			return fmt.Errorf("sim: swipe %s: %w", number, err)
		}
	}
	c.mu.Lock()
	c.swipes++
	c.mu.Unlock()
	return nil
}

// Swipes returns how many swipes completed.
func (c *CardReader) Swipes() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.swipes
}

// Noise writes n random bytes (at most 4096), as a noisy line would.
func (c *CardReader) Noise(n int) error {
	if n < 0 || n > maxNoise {
		return fmt.Errorf("sim: noise of %d bytes out of range 0..%d", n, maxNoise)
	}
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rand.Uint32())
	}
	return c.WriteRaw(b)
}

// WriteRaw writes b to the host as is (tests use it for partial and
// corrupted frames). It returns ErrUnplugged while no Serve runs.
func (c *CardReader) WriteRaw(b []byte) error {
	if err := c.wire.write(b); err != nil {
		return fmt.Errorf("sim: card reader: %w", err)
	}
	return nil
}

// Frame returns the bytes one read of number produces in the reader's
// protocol (see Swipe for number's syntax).
func (c *CardReader) Frame(number string) ([]byte, error) {
	uid, text, err := parseCardNumber(number)
	if err != nil {
		return nil, err
	}
	switch c.cfg.Protocol {
	case CardLine:
		return []byte(text + c.cfg.LineEnd), nil
	case CardGwiot7941:
		typ := byte(0x02) // EM4100
		if len(uid) == 4 || len(uid) == 7 {
			typ = 0x01 // MIFARE 1K
		}
		if len(uid) < 2 || len(uid) > 27 {
			return nil, fmt.Errorf("sim: card %q: gwiot7941 carries 2..27 identifier bytes, not %d", number, len(uid))
		}
		n := byte(len(uid) + 5)
		sum := n ^ typ
		for _, b := range uid {
			sum ^= b
		}
		f := append([]byte{0x02, n, typ}, uid...)
		return append(f, sum, 0x03), nil
	default: // rdm6300
		if len(uid) > 5 {
			return nil, fmt.Errorf("sim: card %q: rdm6300 carries 5 identifier bytes, not %d", number, len(uid))
		}
		var data [5]byte
		copy(data[5-len(uid):], uid)
		var sum byte
		f := []byte{0x02}
		for _, b := range data {
			sum ^= b
			f = fmt.Appendf(f, "%02X", b)
		}
		f = fmt.Appendf(f, "%02X", sum)
		return append(f, 0x03), nil
	}
}

// parseCardNumber turns "0006547886" into the 5-byte EM4100 identifier
// 00 00 63 E9 AE (and the text as given), and "0x010063E9AE" into the
// bytes written (and the hex text without the prefix).
func parseCardNumber(number string) (uid []byte, text string, err error) {
	if h, ok := strings.CutPrefix(strings.ToLower(number), "0x"); ok {
		if h == "" || len(h) > 54 {
			return nil, "", fmt.Errorf("sim: card %q: want 1..54 hex digits", number)
		}
		text = strings.ToUpper(h)
		if len(h)%2 == 1 {
			h = "0" + h
		}
		uid = make([]byte, len(h)/2)
		for i := range uid {
			v, err := strconv.ParseUint(h[2*i:2*i+2], 16, 8)
			if err != nil {
				return nil, "", fmt.Errorf("sim: card %q: not hex", number)
			}
			uid[i] = byte(v)
		}
		return uid, text, nil
	}
	if number == "" || len(number) > 19 {
		return nil, "", fmt.Errorf("sim: card %q: want 1..19 decimal digits or 0x and hex digits", number)
	}
	v, err := strconv.ParseUint(number, 10, 64)
	if err != nil || strings.ContainsAny(number, "+-") {
		return nil, "", fmt.Errorf("sim: card %q: not a decimal number", number)
	}
	if v >= 1<<40 {
		return nil, "", errors.New("sim: card " + number + ": more than 40 bits; give the bytes as 0x…")
	}
	return []byte{byte(v >> 32), byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}, number, nil
}

package wiegand

import (
	"errors"
	"fmt"
	"time"
)

// Errors a burst carries when it is not a card or a key. Bursts with them
// are read errors: counted and logged, never delivered.
var (
	// ErrParity means a card frame's parity bits do not match its data.
	ErrParity = errors.New("wiegand: parity error")
	// ErrLength means a burst of a length that is neither a card frame
	// (26, 34, 37 bits) nor a key (4, 8 bits).
	ErrLength = errors.New("wiegand: unsupported burst length")
	// ErrKeyCheck means an 8-bit key whose high nibble is not the
	// complement of its low nibble.
	ErrKeyCheck = errors.New("wiegand: key check nibble mismatch")
)

// DefaultGap is the silence that ends a burst when Config.Gap is zero.
const DefaultGap = 25 * time.Millisecond

// maxBits bounds the bits a burst holds; a longer one is an ErrLength.
const maxBits = 64

// Line says which data line pulsed.
type Line uint8

// Data lines.
const (
	D0 Line = iota // a 0 bit
	D1             // a 1 bit
)

// Edge is one bit: a falling edge on D0 or D1.
type Edge struct {
	// Line is D0 or D1.
	Line Line
	// At is the edge's timestamp on a monotonic clock (the kernel's
	// CLOCK_MONOTONIC for CdevLines); only differences matter.
	At time.Duration
}

// Kind says what a burst was.
type Kind int

// Burst kinds.
const (
	KindCard  Kind = iota + 1 // a card frame with good parity
	KindKey                   // a keypad key
	KindError                 // a read error; Burst.Err says which
)

// String implements fmt.Stringer.
func (k Kind) String() string {
	switch k {
	case KindCard:
		return "card"
	case KindKey:
		return "key"
	case KindError:
		return "error"
	}
	return "unknown"
}

// Burst is one decoded burst of bits.
type Burst struct {
	// Kind says whether this is a card, a key or a read error.
	Kind Kind
	// Bits is how many bits the burst had.
	Bits int
	// Data is a card's payload: the bits between the parity bits,
	// big-endian, right-aligned in (Bits-2+7)/8 bytes. Nil for keys and
	// errors.
	Data []byte
	// Key is a key's character (see hal.Key); 0 for cards and errors.
	Key byte
	// Err wraps ErrParity, ErrLength or ErrKeyCheck for KindError.
	Err error
	// At is the last bit's timestamp.
	At time.Duration
}

// Decoder assembles edges into bursts. The zero Decoder uses DefaultGap.
// It is a pure state machine: no goroutines, no clock of its own.
type Decoder struct {
	// Gap is the silence between two edges that separates bursts; zero
	// means DefaultGap.
	Gap time.Duration

	bits uint64 // the first maxBits bits, first bit most significant
	n    int    // bits seen in the pending burst
	last time.Duration
}

func (d *Decoder) gap() time.Duration {
	if d.Gap <= 0 {
		return DefaultGap
	}
	return d.Gap
}

// Pending reports whether a burst has begun and not ended.
func (d *Decoder) Pending() bool { return d.n > 0 }

// Push adds an edge. When the edge comes more than Gap after the previous
// one, the pending burst ended before it: Push returns that burst (ok) and
// the edge begins a new one.
func (d *Decoder) Push(e Edge) (b Burst, ok bool) {
	if d.n > 0 && e.At-d.last > d.gap() {
		b, ok = d.Flush()
	}
	if d.n < maxBits {
		d.bits = d.bits<<1 | uint64(e.Line&1)
	}
	d.n++
	d.last = e.At
	return b, ok
}

// Flush ends the pending burst, as Gap of silence does, and returns it; ok
// is false when no burst was pending.
func (d *Decoder) Flush() (Burst, bool) {
	if d.n == 0 {
		return Burst{}, false
	}
	b := decodeBurst(d.bits, d.n, d.last)
	d.bits, d.n = 0, 0
	return b, true
}

// Decode runs a whole timeline through a Decoder with the given gap (zero:
// DefaultGap) and returns every burst, the last one flushed.
func Decode(edges []Edge, gap time.Duration) []Burst {
	d := Decoder{Gap: gap}
	var out []Burst
	for _, e := range edges {
		if b, ok := d.Push(e); ok {
			out = append(out, b)
		}
	}
	if b, ok := d.Flush(); ok {
		out = append(out, b)
	}
	return out
}

// keyChars maps a keypad nibble to its character.
const keyChars = "0123456789*#ABCD"

// decodeBurst decodes n bits (the first min(n, 64) in bits, first bit most
// significant) ending at at.
func decodeBurst(bits uint64, n int, at time.Duration) Burst {
	b := Burst{Bits: n, At: at, Kind: KindError}
	switch n {
	case 4:
		b.Kind, b.Key = KindKey, keyChars[bits&0xF]
	case 8:
		// The error names no bits: they are a PIN digit.
		if hi, lo := bits>>4&0xF, bits&0xF; hi != ^lo&0xF {
			b.Err = fmt.Errorf("8-bit key: %w", ErrKeyCheck)
		} else {
			b.Kind, b.Key = KindKey, keyChars[lo]
		}
	case 26, 34, 37:
		data := n - 2
		payload := bits >> 1 & (1<<data - 1)
		first := data - data/2                                    // bits under the even parity
		second := data / 2                                        // bits under the odd parity
		even := ones(bits>>(n-1)&1) + ones(payload>>(data-first)) // leading parity + first half
		odd := ones(bits&1) + ones(payload&(1<<second-1))         // trailing parity + second half
		if even%2 != 0 || odd%2 != 1 {
			b.Err = fmt.Errorf("%d-bit frame: %w", n, ErrParity)
			break
		}
		b.Kind = KindCard
		b.Data = make([]byte, (data+7)/8)
		for i := range b.Data {
			b.Data[len(b.Data)-1-i] = byte(payload >> (8 * i))
		}
	default:
		b.Err = fmt.Errorf("%d bits: %w", n, ErrLength)
	}
	return b
}

func ones(v uint64) int {
	c := 0
	for ; v != 0; v &= v - 1 {
		c++
	}
	return c
}

package evdev

import (
	"errors"
	"fmt"
	"time"

	"termagent/hal"
)

// Errors for dropped card input. They are informational: the assembler
// drops the partial number and goes on.
var (
	// ErrPartial means a partial number was dropped after a silence.
	ErrPartial = errors.New("evdev: partial card number dropped after silence")
	// ErrTooLong means a number grew past MaxChars without an Enter.
	ErrTooLong = errors.New("evdev: card number too long")
	// ErrBadKey means a key that is no digit arrived inside a number.
	ErrBadKey = errors.New("evdev: key that is no digit inside a card number")
	// ErrDropped means the kernel dropped events (SYN_DROPPED: its buffer
	// overflowed); the number they belonged to is dropped.
	ErrDropped = errors.New("evdev: kernel dropped events")
)

// Defaults.
const (
	// DefaultKeyGap is the silence after which a partial card number is
	// dropped. Wedge readers type a whole number within a few tens of
	// milliseconds.
	DefaultKeyGap = 100 * time.Millisecond
	// MaxChars bounds a card number's characters before Enter.
	MaxChars = 32
)

// digitKey returns the digit a key code types, or 0.
func digitKey(code uint16) byte {
	switch {
	case code >= Key1 && code <= Key1+8:
		return byte('1' + code - Key1)
	case code == Key0:
		return '0'
	case code >= KeyNumeric0 && code <= KeyNumeric0+9:
		return byte('0' + code - KeyNumeric0)
	}
	switch code { // the keypad's digits are laid out as on the pad
	case 82:
		return '0'
	case 79, 80, 81:
		return byte('1' + code - 79)
	case 75, 76, 77:
		return byte('4' + code - 75)
	case 71, 72, 73:
		return byte('7' + code - 71)
	}
	return 0
}

// letterKey returns 'A'–'F' for KEY_A–KEY_F, or 0.
func letterKey(code uint16) byte {
	switch code {
	case 30:
		return 'A'
	case 48:
		return 'B'
	case 46:
		return 'C'
	case 32:
		return 'D'
	case 18:
		return 'E'
	case 33:
		return 'F'
	}
	return 0
}

func isShift(code uint16) bool { return code == KeyLeftShift || code == KeyRightShift }

// CardAssembler turns the key events of a keyboard-wedge reader into card
// numbers (text), one per Enter. It is a pure state machine driven by the
// events' own timestamps; the zero CardAssembler uses DefaultKeyGap.
type CardAssembler struct {
	// KeyGap is the silence after which a partial number is dropped; zero
	// means DefaultKeyGap.
	KeyGap time.Duration

	buf  [MaxChars]byte
	n    int
	last time.Time
	skip bool // after SYN_DROPPED: discard up to the next Enter or silence
}

// Pending reports whether a partial number is held (or keys are being
// discarded after the kernel dropped events).
func (a *CardAssembler) Pending() bool { return a.n > 0 || a.skip }

// Push takes one event. It returns the number typed (ok) when ev is the
// Enter that ends it, and a non-nil err when ev made it drop a partial
// number (ErrPartial, ErrTooLong, ErrBadKey). An Enter with nothing before
// it is ignored.
func (a *CardAssembler) Push(ev Event) (text string, ok bool, err error) {
	if ev.Type == EvSyn && ev.Code == SynDropped {
		// Digits may be missing from the number being typed: it must
		// never be delivered short. Discard it, and what of it is still
		// to come, up to its Enter.
		had := a.n > 0
		a.n, a.skip = 0, true
		if had {
			return "", false, ErrDropped
		}
		return "", false, nil
	}
	if ev.Type != EvKey || ev.Value != Press || isShift(ev.Code) {
		return "", false, nil
	}
	gap := a.KeyGap
	if gap <= 0 {
		gap = DefaultKeyGap
	}
	if a.Pending() && ev.Time.Sub(a.last) > gap {
		if a.n > 0 {
			err = fmt.Errorf("%w (%v)", ErrPartial, gap)
		}
		a.n, a.skip = 0, false
	}
	a.last = ev.Time
	if a.skip {
		if ev.Code == KeyEnter || ev.Code == KeyKPEnter {
			a.skip = false
			return "", false, fmt.Errorf("rest of a number: %w", ErrDropped)
		}
		return "", false, err
	}
	if ev.Code == KeyEnter || ev.Code == KeyKPEnter {
		if a.n == 0 {
			return "", false, err
		}
		text = string(a.buf[:a.n])
		a.n = 0
		return text, true, err
	}
	c := digitKey(ev.Code)
	if c == 0 {
		c = letterKey(ev.Code)
	}
	switch {
	case c == 0:
		if a.n > 0 {
			a.n = 0
			return "", false, fmt.Errorf("key code %d: %w", ev.Code, ErrBadKey)
		}
		return "", false, err
	case a.n == MaxChars:
		a.n = 0
		return "", false, fmt.Errorf("%w: more than %d characters", ErrTooLong, MaxChars)
	}
	a.buf[a.n] = c
	a.n++
	return "", false, err
}

// Flush drops a partial number, as KeyGap of silence does; it reports
// whether there was one.
func (a *CardAssembler) Flush() bool {
	had := a.n > 0
	a.n, a.skip = 0, false
	return had
}

// KeyMapper turns a keypad's key events into hal.Key characters. It keeps
// the Shift state; the zero KeyMapper is ready.
type KeyMapper struct {
	shift int // shift keys held
}

// Push takes one event and returns the key it pressed (ok), if any.
func (m *KeyMapper) Push(ev Event) (char byte, ok bool) {
	if ev.Type == EvSyn && ev.Code == SynDropped {
		m.shift = 0 // a Shift release may be among the lost events
		return 0, false
	}
	if ev.Type != EvKey {
		return 0, false
	}
	if isShift(ev.Code) {
		switch ev.Value {
		case Press:
			m.shift = min(m.shift+1, 2)
		case Release:
			m.shift = max(m.shift-1, 0)
		}
		return 0, false
	}
	if ev.Value != Press {
		return 0, false
	}
	if m.shift > 0 {
		switch ev.Code {
		case Key1 + 2: // KEY_3
			return '#', true
		case Key1 + 7: // KEY_8
			return '*', true
		}
	}
	if c := digitKey(ev.Code); c != 0 {
		return c, true
	}
	switch ev.Code {
	case KeyKPAsterisk, KeyNumericStar:
		return '*', true
	case KeyNumPound:
		return '#', true
	case KeyEnter, KeyKPEnter:
		return hal.KeyEnter, true
	case KeyEsc:
		return hal.KeyEscape, true
	case KeyBackspace, KeyDelete:
		return hal.KeyBackspace, true
	}
	if ev.Code >= KeyNumericA && ev.Code <= KeyNumericA+3 {
		return byte('A' + ev.Code - KeyNumericA), true
	}
	if c := letterKey(ev.Code); c != 0 && c <= 'D' {
		return c, true
	}
	return 0, false
}

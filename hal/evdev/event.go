package evdev

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
	"unsafe"
)

// ErrEventSize means an input_event size other than 16 or 24 bytes.
var ErrEventSize = errors.New("evdev: input_event size must be 16 or 24 bytes")

// Event types and key codes (linux/input-event-codes.h) the drivers use.
const (
	EvSyn = 0x00
	EvKey = 0x01
	EvMsc = 0x04

	SynDropped = 3 // EV_SYN code: the kernel's buffer overflowed

	KeyEsc         = 1
	Key1           = 2 // KEY_1 … KEY_9 are 2 … 10
	Key0           = 11
	KeyBackspace   = 14
	KeyEnter       = 28
	KeyLeftShift   = 42
	KeyRightShift  = 54
	KeyKPAsterisk  = 55
	KeyKPEnter     = 96
	KeyDelete      = 111
	KeyNumeric0    = 0x200 // KEY_NUMERIC_0 … KEY_NUMERIC_9 are 0x200 … 0x209
	KeyNumericStar = 0x20a
	KeyNumPound    = 0x20b
	KeyNumericA    = 0x20c // KEY_NUMERIC_A … KEY_NUMERIC_D are 0x20c … 0x20f
)

// Key values of EV_KEY events.
const (
	Release = 0
	Press   = 1
	Repeat  = 2
)

// Event is one input_event record.
type Event struct {
	// Time is the kernel's timestamp of the event (CLOCK_REALTIME unless
	// the device was told otherwise).
	Time time.Time
	// Type is the event type (EvKey, EvSyn, EvMsc, …).
	Type uint16
	// Code is the key or axis code.
	Code uint16
	// Value is 0 release, 1 press, 2 repeat for EvKey.
	Value int32
}

// NativeEventSize is the input_event size of the running process: 24 bytes
// on 64-bit, 16 on 32-bit.
const NativeEventSize = 8 + 2*int(unsafe.Sizeof(uintptr(0)))

// Decode decodes the input_event record at the start of b, of size bytes
// (16 or 24). b must hold at least size bytes.
func Decode(b []byte, size int) (Event, error) {
	if size != 16 && size != 24 {
		return Event{}, fmt.Errorf("%w, not %d", ErrEventSize, size)
	}
	if len(b) < size {
		return Event{}, fmt.Errorf("evdev: record of %d bytes, want %d", len(b), size)
	}
	ne := binary.NativeEndian
	var sec, usec int64
	if size == 24 {
		sec, usec = int64(ne.Uint64(b[0:])), int64(ne.Uint64(b[8:]))
	} else {
		sec, usec = int64(ne.Uint32(b[0:])), int64(ne.Uint32(b[4:]))
	}
	t := b[size-8:]
	return Event{
		Time:  time.Unix(sec, usec*1000),
		Type:  ne.Uint16(t[0:]),
		Code:  ne.Uint16(t[2:]),
		Value: int32(ne.Uint32(t[4:])),
	}, nil
}

// Append appends ev as an input_event record of size bytes (16 or 24) to
// dst. The time is truncated to microseconds.
func Append(dst []byte, ev Event, size int) ([]byte, error) {
	if size != 16 && size != 24 {
		return dst, fmt.Errorf("%w, not %d", ErrEventSize, size)
	}
	ne := binary.NativeEndian
	sec, usec := ev.Time.Unix(), int64(ev.Time.Nanosecond()/1000)
	if size == 24 {
		dst = ne.AppendUint64(dst, uint64(sec))
		dst = ne.AppendUint64(dst, uint64(usec))
	} else {
		dst = ne.AppendUint32(dst, uint32(sec))
		dst = ne.AppendUint32(dst, uint32(usec))
	}
	dst = ne.AppendUint16(dst, ev.Type)
	dst = ne.AppendUint16(dst, ev.Code)
	return ne.AppendUint32(dst, uint32(ev.Value)), nil
}

package sim

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// InputConfig configures a simulated input device. Zero values mean the
// documented defaults.
type InputConfig struct {
	// EventSize is the input_event record size written: 24 (64-bit) or
	// 16 (32-bit); zero means the running process's.
	EventSize int
	// KeyEvery is the pause between two keys typed; zero means 2 ms (a
	// wedge reader types a 10-digit number in about 20 ms). A keypad
	// typed by a person is slower: Type takes a per-call pause.
	KeyEvery time.Duration
}

// InputDevice is a simulated Linux input device (a USB keyboard-wedge card
// reader or a USB keypad): it writes input_event records, as evdev would
// to a reader of /dev/input/eventN, into a FIFO at a path. It is not a
// pseudo-terminal device: a driver opens the FIFO as it would the event
// device (the grab then fails with ENOTTY, which drivers allow on anything
// that is not a character device). The device holds the FIFO open for
// writing all the time, so a driver's reads never see end of input while
// it is plugged. Safe for concurrent use.
type InputDevice struct {
	path string
	cfg  InputConfig

	mu     sync.Mutex
	w      *os.File // nil while unplugged
	keys   int
	closed bool
}

// Key codes (linux/input-event-codes.h) the simulated devices type.
const (
	evSyn         = 0
	evKey         = 1
	evMsc         = 4
	mscScan       = 4
	keyEnter      = 28
	keyLeftShift  = 42
	keyKPAsterisk = 55
	keyEsc        = 1
	keyBackspace  = 14
)

// inputWriteTimeout bounds a write to the FIFO: a full FIFO (64 KiB, some
// 400 keys) means nobody reads it.
const inputWriteTimeout = 2 * time.Second

// NewInputDevice makes the FIFO at path (its directory must exist) and
// plugs the device in. The caller closes it, which removes the FIFO.
func NewInputDevice(path string, cfg InputConfig) (*InputDevice, error) {
	if cfg.EventSize == 0 {
		cfg.EventSize = 8 + 2*int(unsafe.Sizeof(uintptr(0)))
	}
	if cfg.EventSize != 16 && cfg.EventSize != 24 {
		return nil, fmt.Errorf("sim: input device: event size %d, want 16 or 24", cfg.EventSize)
	}
	if cfg.KeyEvery == 0 {
		cfg.KeyEvery = 2 * time.Millisecond
	}
	d := &InputDevice{path: path, cfg: cfg}
	if err := d.Replug(); err != nil {
		return nil, err
	}
	return d, nil
}

// Path returns the FIFO's path, which the driver opens.
func (d *InputDevice) Path() string { return d.path }

// Plugged reports whether the device is plugged in.
func (d *InputDevice) Plugged() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.w != nil
}

// Replug makes a fresh FIFO at the path (made aside and renamed into place,
// already held open for writing, so a driver never opens a FIFO without a
// writer). Replugging a plugged device is no error.
func (d *InputDevice) Replug() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return fmt.Errorf("sim: replug %s: device closed", d.path)
	}
	if d.w != nil {
		return nil
	}
	tmp := filepath.Join(filepath.Dir(d.path), "."+filepath.Base(d.path)+".tmp")
	_ = os.Remove(tmp)
	if err := unix.Mkfifo(tmp, 0o600); err != nil {
		return fmt.Errorf("sim: input device %s: mkfifo: %w", d.path, err)
	}
	// O_RDWR: opening never blocks, and the FIFO always has a reader of
	// our own, so writes never fail with EPIPE while no driver reads.
	// Non-blocking underneath, so a write to a FIFO nobody drains gives
	// up at its deadline instead of hanging.
	w, err := os.OpenFile(tmp, os.O_RDWR|unix.O_NONBLOCK, 0)
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("sim: input device %s: %w", d.path, err)
	}
	if err := os.Rename(tmp, d.path); err != nil {
		w.Close()
		os.Remove(tmp)
		return fmt.Errorf("sim: input device %s: %w", d.path, err)
	}
	d.w = w
	return nil
}

// Unplug removes the FIFO and closes it: a driver reading it sees end of
// input, and its reopen attempts find nothing until Replug. Unplugging an
// unplugged device is no error.
func (d *InputDevice) Unplug() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.unplugLocked()
}

func (d *InputDevice) unplugLocked() error {
	if d.w == nil {
		return nil
	}
	err := os.Remove(d.path)
	if errors.Is(err, os.ErrNotExist) {
		err = nil
	}
	err = errors.Join(err, d.w.Close())
	d.w = nil
	return err
}

// Close unplugs the device for good; idempotent.
func (d *InputDevice) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	return d.unplugLocked()
}

// Keys returns how many keys were typed.
func (d *InputDevice) Keys() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.keys
}

// keyStrokes returns the key code and whether Shift is held for one
// character: '0'–'9', 'A'–'F' (either case), '*' (keypad asterisk), '#'
// (Shift+3), '\n' (Enter), 0x1B (Esc), '\b' (Backspace).
func keyStrokes(c byte) (code uint16, shift bool, err error) {
	switch {
	case c >= '1' && c <= '9':
		return uint16(2 + c - '1'), false, nil
	case c == '0':
		return 11, false, nil
	}
	switch c {
	case 'a', 'A':
		return 30, false, nil
	case 'b', 'B':
		return 48, false, nil
	case 'c', 'C':
		return 46, false, nil
	case 'd', 'D':
		return 32, false, nil
	case 'e', 'E':
		return 18, false, nil
	case 'f', 'F':
		return 33, false, nil
	case '*':
		return keyKPAsterisk, false, nil
	case '#':
		return 4, true, nil // Shift+3 on a US layout
	case '\n', '\r':
		return keyEnter, false, nil
	case 0x1B:
		return keyEsc, false, nil
	case '\b':
		return keyBackspace, false, nil
	}
	return 0, false, fmt.Errorf("sim: input device: no key types %q", c)
}

// Type types text, one key every pause (zero: the configured KeyEvery),
// as a reader or keypad would: per key EV_MSC/MSC_SCAN, EV_KEY press,
// EV_SYN, EV_KEY release, EV_SYN, with Shift around '#'. It returns when
// the last key is written, ctx is done, or the device is unplugged
// (ErrUnplugged).
func (d *InputDevice) Type(ctx context.Context, text string, pause time.Duration) error {
	if pause == 0 {
		pause = d.cfg.KeyEvery
	}
	for i := 0; i < len(text); i++ {
		code, shift, err := keyStrokes(text[i])
		if err != nil {
			return err
		}
		if i > 0 {
			t := time.NewTimer(pause)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
		}
		var b []byte
		now := time.Now()
		if shift {
			b = d.appendKey(b, now, keyLeftShift, 1)
		}
		b = d.appendRecord(b, now, evMsc, mscScan, 0x70000+int32(code))
		b = d.appendKey(b, now, code, 1)
		b = d.appendKey(b, now, code, 0)
		if shift {
			b = d.appendKey(b, now, keyLeftShift, 0)
		}
		if err := d.WriteRaw(b); err != nil {
			return err
		}
		d.mu.Lock()
		d.keys++
		d.mu.Unlock()
	}
	return nil
}

func (d *InputDevice) appendKey(b []byte, t time.Time, code uint16, value int32) []byte {
	b = d.appendRecord(b, t, evKey, code, value)
	return d.appendRecord(b, t, evSyn, 0, 0)
}

// appendRecord appends one input_event record in the configured layout.
func (d *InputDevice) appendRecord(b []byte, t time.Time, typ, code uint16, value int32) []byte {
	ne := binary.NativeEndian
	if d.cfg.EventSize == 24 {
		b = ne.AppendUint64(b, uint64(t.Unix()))
		b = ne.AppendUint64(b, uint64(t.Nanosecond()/1000))
	} else {
		b = ne.AppendUint32(b, uint32(t.Unix()))
		b = ne.AppendUint32(b, uint32(t.Nanosecond()/1000))
	}
	b = ne.AppendUint16(b, typ)
	b = ne.AppendUint16(b, code)
	return ne.AppendUint32(b, uint32(value))
}

// Door input codes a gpio-keys device sends (hal/evdev's defaults).
const (
	evSw           = 5
	swMachineCover = 0x10 // set = cover (door) closed
	keyOpen        = 134  // KEY_OPEN: the exit button
)

// Event writes one event and a SYN_REPORT, stamped now: a switch
// (type 5, EV_SW) changing, a key (type 1) pressed or released.
func (d *InputDevice) Event(typ, code uint16, value int32) error {
	now := time.Now()
	b := d.appendRecord(nil, now, typ, code, value)
	return d.WriteRaw(d.appendRecord(b, now, evSyn, 0, 0))
}

// SetDoor models a gpio-keys door-position switch: EV_SW
// SW_MACHINE_COVER, set while the door is shut.
func (d *InputDevice) SetDoor(open bool) error {
	v := int32(1)
	if open {
		v = 0
	}
	return d.Event(evSw, swMachineCover, v)
}

// PressExit models a gpio-keys exit button: EV_KEY KEY_OPEN pressed, then
// released.
func (d *InputDevice) PressExit() error {
	if err := d.Event(evKey, keyOpen, 1); err != nil {
		return err
	}
	return d.Event(evKey, keyOpen, 0)
}

// WriteRaw writes b to the FIFO as is (tests use it for torn records). It
// returns ErrUnplugged while unplugged.
func (d *InputDevice) WriteRaw(b []byte) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.w == nil {
		return fmt.Errorf("sim: input device %s: %w", d.path, ErrUnplugged)
	}
	_ = d.w.SetWriteDeadline(time.Now().Add(inputWriteTimeout))
	if _, err := d.w.Write(b); err != nil {
		return fmt.Errorf("sim: input device %s: write (is a driver reading?): %w", d.path, err)
	}
	return nil
}

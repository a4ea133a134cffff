package evdev_test

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"termagent/hal"
	"termagent/hal/evdev"
)

// uinput ioctls (linux/uinput.h; the _IOW direction bit as on ARM and x86).
const (
	uiDevCreate  = 0x5501
	uiDevDestroy = 0x5502
	uiDevSetup   = 1<<30 | 92<<16 | 'U'<<8 | 3 // _IOW('U', 3, struct uinput_setup)
	uiSetEvBit   = 1<<30 | 4<<16 | 'U'<<8 | 100
	uiSetKeyBit  = 1<<30 | 4<<16 | 'U'<<8 | 101
	uiGetSysname = 2<<30 | 64<<16 | 'U'<<8 | 44 // _IOC(_IOC_READ, 'U', 44, 64)
)

// virtualKeyboard is a keyboard made by the kernel's uinput: a real
// /dev/input/eventN, so the driver's open, grab and reads meet the real
// evdev interface. It needs /dev/uinput (CONFIG_INPUT_UINPUT, root); the
// test skips without it (this workplace's VM has none; the QEMU system
// test has).
type virtualKeyboard struct {
	f     *os.File
	event string // /dev/input/eventN
}

func newVirtualKeyboard(t *testing.T) *virtualKeyboard {
	t.Helper()
	f, err := os.OpenFile("/dev/uinput", os.O_WRONLY, 0)
	if err != nil {
		t.Skipf("no uinput here (%v): the real evdev interface is tested where it exists", err)
	}
	fd := f.Fd()
	ioctl := func(req, arg uintptr) {
		t.Helper()
		if _, _, e := unix.Syscall(unix.SYS_IOCTL, fd, req, arg); e != 0 {
			f.Close()
			t.Fatalf("uinput ioctl %#x: %v", req, e)
		}
	}
	ioctl(uiSetEvBit, evdev.EvKey)
	for code := uintptr(1); code < 128; code++ {
		ioctl(uiSetKeyBit, code)
	}
	var setup [92]byte
	binary.NativeEndian.PutUint16(setup[0:], 0x03) // BUS_USB
	binary.NativeEndian.PutUint16(setup[2:], 0x1234)
	binary.NativeEndian.PutUint16(setup[4:], 0x5678)
	copy(setup[8:], "termagent test wedge")
	ioctl(uiDevSetup, uintptr(unsafe.Pointer(&setup[0])))
	ioctl(uiDevCreate, 0)
	kb := &virtualKeyboard{f: f}
	t.Cleanup(func() {
		unix.Syscall(unix.SYS_IOCTL, fd, uiDevDestroy, 0)
		f.Close()
	})
	var name [64]byte
	ioctl(uiGetSysname, uintptr(unsafe.Pointer(&name[0])))
	sys := strings.TrimRight(string(name[:]), "\x00")
	deadline := time.Now().Add(10 * time.Second) // devtmpfs makes the node; a bound, not a speed claim
	for {
		m, _ := filepath.Glob(filepath.Join("/sys/devices/virtual/input", sys, "event*"))
		if len(m) == 1 {
			kb.event = filepath.Join("/dev/input", filepath.Base(m[0]))
			if _, err := os.Stat(kb.event); err == nil {
				return kb
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("uinput device %s: no event node", sys)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// typeKeys writes presses and releases of codes, each followed by a
// SYN_REPORT, as a reader does.
func (kb *virtualKeyboard) typeKeys(t *testing.T, codes ...uint16) {
	t.Helper()
	var b []byte
	for _, c := range codes {
		for _, v := range []int32{evdev.Press, evdev.Release} {
			b, _ = evdev.Append(b, evdev.Event{Type: evdev.EvKey, Code: c, Value: v}, evdev.NativeEventSize)
			b, _ = evdev.Append(b, evdev.Event{Type: evdev.EvSyn}, evdev.NativeEventSize)
		}
	}
	if _, err := kb.f.Write(b); err != nil {
		t.Fatal(err)
	}
}

func TestCardReaderOnUinput(t *testing.T) {
	kb := newVirtualKeyboard(t)
	r, err := evdev.OpenCardReader(evdev.Config{Device: kb.event})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if h, _ := r.Health(); !h.OK {
		t.Fatalf("the first reader: health %+v, want OK (its grab taken)", h)
	}
	// The grab is exclusive: a second reader's grab is refused (EBUSY), and,
	// like a device missing at open, it starts lost instead of reading too.
	second, err := evdev.OpenKeypad(evdev.Config{Device: kb.event})
	if err != nil {
		t.Fatal(err)
	}
	h, _ := second.Health()
	second.Close()
	if h.OK || !errors.Is(h.Err, hal.ErrFault) || !errors.Is(h.Err, unix.EBUSY) {
		t.Fatalf("a second reader of a grabbed device: health %+v, want a fault wrapping EBUSY", h)
	}
	// 0006547886 Enter
	kb.typeKeys(t, evdev.Key0, evdev.Key0, evdev.Key0, evdev.Key1+5, evdev.Key1+4, evdev.Key1+3, evdev.Key1+6,
		evdev.Key1+7, evdev.Key1+7, evdev.Key1+5, evdev.KeyEnter)
	ctx, cancel := context.WithTimeout(context.Background(), hangDeadline)
	defer cancel()
	c, err := r.ReadCard(ctx)
	if err != nil || c.Number != "0006547886" {
		t.Fatalf("card %+v %v", c, err)
	}
}

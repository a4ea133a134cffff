package wiegand

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"termagent/hal"
	"termagent/hal/internal/gpiofind"
)

// The GPIO character device's v2 uAPI (linux/gpio.h), as far as a reader
// of two input lines needs it. periph.io's line API reads edge events but
// drops their kernel timestamps, which tell one burst from the next when
// this process is late, so the line request is made here.
const (
	lineRequestSize = 592 // sizeof(struct gpio_v2_line_request)
	lineEventSize   = 48  // sizeof(struct gpio_v2_line_event)

	// gpioV2GetLineIoctl is GPIO_V2_GET_LINE_IOCTL, _IOWR(0xB4, 0x07,
	// struct gpio_v2_line_request).
	gpioV2GetLineIoctl = 3<<30 | lineRequestSize<<16 | 0xB4<<8 | 0x07

	lineFlagInput        = 1 << 2
	lineFlagEdgeFalling  = 1 << 5
	lineFlagBiasPullUp   = 1 << 8
	lineEventFallingEdge = 2

	// Offsets in struct gpio_v2_line_request.
	reqOffsets     = 0   // __u32 offsets[64]
	reqConsumer    = 256 // char consumer[32]
	reqFlags       = 288 // config.flags (__aligned_u64)
	reqNumLines    = 560 // __u32 num_lines
	reqEventBuffer = 564 // __u32 event_buffer_size
	reqFD          = 588 // __s32 fd (out)

	// eventBuffer asks the kernel to queue this many edges: eight 37-bit
	// frames' worth, so a late reader loses nothing.
	eventBuffer = 256
	// readBatch is how many events one read takes.
	readBatch = 16
)

// encodeLineRequest builds a struct gpio_v2_line_request for the given
// line offsets as inputs with pull-up bias and falling-edge events.
func encodeLineRequest(offsets []uint32, consumer string) [lineRequestSize]byte {
	var b [lineRequestSize]byte
	ne := binary.NativeEndian
	for i, o := range offsets {
		ne.PutUint32(b[reqOffsets+4*i:], o)
	}
	copy(b[reqConsumer:reqConsumer+31], consumer) // NUL-terminated
	ne.PutUint64(b[reqFlags:], lineFlagInput|lineFlagEdgeFalling|lineFlagBiasPullUp)
	ne.PutUint32(b[reqNumLines:], uint32(len(offsets)))
	ne.PutUint32(b[reqEventBuffer:], eventBuffer)
	return b
}

// decodeLineEvent decodes a struct gpio_v2_line_event.
func decodeLineEvent(b []byte) (ts time.Duration, id, offset uint32) {
	ne := binary.NativeEndian
	return time.Duration(ne.Uint64(b[0:])), ne.Uint32(b[8:]), ne.Uint32(b[12:])
}

// CdevLines is D0 and D1 requested from the kernel's GPIO character device
// as one line request: inputs, pull-up bias, falling-edge events stamped
// by the kernel (CLOCK_MONOTONIC). It implements Lines. WaitEdge is for
// one goroutine at a time; Halt and Close may be called from any.
type CdevLines struct {
	f      *os.File
	d0, d1 uint32
	name   string

	mu      sync.Mutex // guards pending (WaitEdge is single-caller)
	buf     [readBatch * lineEventSize]byte
	pending []Edge
}

var _ Lines = (*CdevLines)(nil)

// OpenCdev requests lines d0 and d1 (offsets) of the chip at chipPath
// (/dev/gpiochipN). A missing chip or a refused request is an error
// wrapping hal.ErrFault. The caller closes the CdevLines.
func OpenCdev(chipPath string, d0, d1 int) (*CdevLines, error) {
	name := fmt.Sprintf("%s lines %d/%d", chipPath, d0, d1)
	if d0 < 0 || d1 < 0 || d0 == d1 {
		return nil, fmt.Errorf("wiegand %s: D0 and D1 must be two different lines", name)
	}
	chip, err := os.OpenFile(chipPath, os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("wiegand %s: %w: %w", name, hal.ErrFault, err)
	}
	defer chip.Close()
	req := encodeLineRequest([]uint32{uint32(d0), uint32(d1)}, "termagent-wiegand")
	sc, err := chip.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("wiegand %s: %w: %w", name, hal.ErrFault, err)
	}
	var errno unix.Errno
	if err := sc.Control(func(fd uintptr) {
		_, _, errno = unix.Syscall(unix.SYS_IOCTL, fd, gpioV2GetLineIoctl, uintptr(unsafe.Pointer(&req[0])))
	}); err != nil {
		return nil, fmt.Errorf("wiegand %s: %w: %w", name, hal.ErrFault, err)
	}
	if errno != 0 {
		return nil, fmt.Errorf("wiegand %s: request lines: %w: %w", name, hal.ErrFault, errno)
	}
	fd := int(int32(binary.NativeEndian.Uint32(req[reqFD:])))
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("wiegand %s: %w: %w", name, hal.ErrFault, err)
	}
	return &CdevLines{f: os.NewFile(uintptr(fd), name), d0: uint32(d0), d1: uint32(d1), name: name}, nil
}

// WaitEdge returns the next falling edge on D0 or D1, waiting up to
// timeout; ok is false on timeout or Halt.
func (c *CdevLines) WaitEdge(timeout time.Duration) (Edge, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.pending) == 0 {
		if err := c.f.SetReadDeadline(time.Now().Add(timeout)); err != nil {
			return Edge{}, false, fmt.Errorf("%s: %w", c.name, err)
		}
		n, err := c.f.Read(c.buf[:])
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return Edge{}, false, nil
		}
		if err != nil {
			return Edge{}, false, fmt.Errorf("%s: read events: %w", c.name, err)
		}
		for i := 0; i+lineEventSize <= n; i += lineEventSize {
			ts, id, off := decodeLineEvent(c.buf[i:])
			if id != lineEventFallingEdge {
				continue
			}
			switch off {
			case c.d0:
				c.pending = append(c.pending, Edge{Line: D0, At: ts})
			case c.d1:
				c.pending = append(c.pending, Edge{Line: D1, At: ts})
			}
		}
	}
	e := c.pending[0]
	c.pending = c.pending[1:]
	return e, true, nil
}

// Halt interrupts a pending WaitEdge.
func (c *CdevLines) Halt() error { return c.f.SetReadDeadline(time.Unix(1, 0)) }

// Close releases the lines; idempotent.
func (c *CdevLines) Close() error {
	err := c.f.Close()
	if errors.Is(err, os.ErrClosed) {
		return nil
	}
	return err
}

// Open starts a Reader on cfg.Chip's lines cfg.D0 and cfg.D1 (by name or
// offset). Like a serial device, a chip or line missing at Open (a GPIO
// expander probed later) is in the state of lines lost later: Health
// reports a fault wrapping hal.ErrFault and the lines are requested again
// every second until they exist. Open fails only for a configuration
// without both lines. The caller closes the Reader.
func Open(cfg Config) (*Reader, error) {
	if cfg.D0 == "" || cfg.D1 == "" {
		return nil, errors.New("wiegand: D0 and D1 lines are required")
	}
	lines := &chipLines{cfg: cfg}
	_, openErr := lines.get()
	r, err := New(cfg, lines)
	if err != nil {
		lines.Close()
		return nil, err
	}
	if openErr != nil {
		r.setHealth(false, openErr)
	}
	return r, nil
}

// chipLines are D0 and D1 found on cfg.Chip and requested when needed: at
// Open, and again after they failed (the Reader retries every second).
type chipLines struct {
	cfg Config

	mu     sync.Mutex
	c      *CdevLines // nil while not requested
	closed bool
}

// get returns the requested lines, requesting them if need be.
func (l *chipLines) get() (*CdevLines, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.c != nil || l.closed {
		return l.c, nil
	}
	chip, err := gpiofind.Chip(l.cfg.Chip)
	if err != nil {
		return nil, fmt.Errorf("wiegand: %w", err)
	}
	d0, err := gpiofind.Line(chip, l.cfg.D0)
	if err != nil {
		return nil, fmt.Errorf("wiegand D0: %w", err)
	}
	d1, err := gpiofind.Line(chip, l.cfg.D1)
	if err != nil {
		return nil, fmt.Errorf("wiegand D1: %w", err)
	}
	c, err := OpenCdev(chip.Path(), d0.Number(), d1.Number())
	if err != nil {
		return nil, err
	}
	l.c = c
	return c, nil
}

// WaitEdge requests the lines if need be and waits on them; lines that
// fail are released, to be requested again at the next call.
func (l *chipLines) WaitEdge(timeout time.Duration) (Edge, bool, error) {
	c, err := l.get()
	if err != nil {
		return Edge{}, false, err
	}
	if c == nil { // closed
		return Edge{}, false, nil
	}
	e, ok, err := c.WaitEdge(timeout)
	if err != nil {
		l.mu.Lock()
		if l.c == c {
			l.c = nil
			c.Close()
		}
		l.mu.Unlock()
	}
	return e, ok, err
}

// Halt interrupts a pending WaitEdge.
func (l *chipLines) Halt() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.c == nil {
		return nil
	}
	return l.c.Halt()
}

// Close releases the lines; idempotent.
func (l *chipLines) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	if l.c == nil {
		return nil
	}
	err := l.c.Close()
	l.c = nil
	return err
}

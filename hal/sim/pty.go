package sim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// PTY is one pseudo-terminal pair. The simulator reads and writes the
// master side through the PTY itself (it is an io.ReadWriteCloser); a
// driver opens Path, the slave, with the real serial library.
//
// The PTY keeps its own descriptor on the slave so that the master does
// not see EIO while no driver has the port open (between a driver's Close
// and its reopen), and so that the raw mode set at creation persists.
type PTY struct {
	master *os.File
	slave  *os.File
	path   string
	once   sync.Once
	err    error
}

var _ io.ReadWriteCloser = (*PTY)(nil)

// OpenPTY creates a pseudo-terminal, puts the slave in raw mode at once (no
// echo, no line editing, no CR/LF translation, 8 bit) and returns it. The
// master is non-blocking underneath, so Close wakes a goroutine blocked in
// Read. The caller closes the PTY.
func OpenPTY() (*PTY, error) {
	m, s, err := pty.Open()
	if err != nil {
		return nil, fmt.Errorf("open pseudo-terminal: %w", err)
	}
	p := &PTY{slave: s, path: s.Name()}
	if err := makeRaw(s); err != nil {
		m.Close()
		s.Close()
		return nil, fmt.Errorf("pseudo-terminal %s: raw mode: %w", p.path, err)
	}
	// pty.Open leaves the master in blocking mode (it calls Fd()), where
	// Close does not interrupt a pending Read. Re-wrap a non-blocking
	// duplicate so the runtime poller owns it.
	fd, err := unix.Dup(int(m.Fd()))
	m.Close()
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("pseudo-terminal %s: dup master: %w", p.path, err)
	}
	unix.CloseOnExec(fd)
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		s.Close()
		return nil, fmt.Errorf("pseudo-terminal %s: non-blocking master: %w", p.path, err)
	}
	p.master = os.NewFile(uintptr(fd), "/dev/ptmx")
	return p, nil
}

// makeRaw is cfmakeraw(3) on f.
func makeRaw(f *os.File) error {
	fd := int(f.Fd())
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return err
	}
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB
	t.Cflag |= unix.CS8
	t.Cc[unix.VMIN] = 1
	t.Cc[unix.VTIME] = 0
	return unix.IoctlSetTermios(fd, unix.TCSETS, t)
}

// Path returns the slave's device path (/dev/pts/N) for the driver to open.
func (p *PTY) Path() string { return p.path }

// Read reads what the driver wrote to the slave. It returns an error
// (os.ErrClosed) once the PTY is closed.
func (p *PTY) Read(b []byte) (int, error) { return p.master.Read(b) }

// Write sends bytes to the driver, as the module's TX line would.
func (p *PTY) Write(b []byte) (int, error) { return p.master.Write(b) }

// Close closes both sides; a driver holding the slave sees the line hang
// up (its reads fail), as when a USB adapter is pulled. Idempotent.
func (p *PTY) Close() error {
	p.once.Do(func() {
		p.err = errors.Join(p.master.Close(), p.slave.Close())
	})
	return p.err
}

// Link makes a symbolic link at link pointing at the slave, replacing
// whatever link was there, so drivers can be configured with a path that
// survives replug. The parent directory must exist. The link is replaced
// atomically (rename over it), so a driver never sees a half-made link.
func (p *PTY) Link(link string) error {
	tmp := filepath.Join(filepath.Dir(link), "."+filepath.Base(link)+".tmp")
	_ = os.Remove(tmp)
	if err := os.Symlink(p.path, tmp); err != nil {
		return fmt.Errorf("link %s to %s: %w", link, p.path, err)
	}
	if err := os.Rename(tmp, link); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("link %s to %s: %w", link, p.path, err)
	}
	return nil
}

// Device is a simulated module: it speaks the module side of one wire
// protocol. See the package documentation for the convention.
type Device interface {
	// Serve speaks the protocol on port until ctx is done or port fails,
	// then returns (ctx.Err() or the port error). Device state (stored
	// templates, users, relay state) outlives Serve: the next Serve, after
	// a replug, continues with it.
	Serve(ctx context.Context, port io.ReadWriter) error
}

// Plug runs a Device on a fresh pseudo-terminal behind a stable symlink
// and can pull it out and put it back, as a hand would a USB adapter.
// All methods are safe for concurrent use.
type Plug struct {
	dev  Device
	link string

	mu     sync.Mutex
	pty    *PTY
	cancel context.CancelFunc
	done   chan struct{} // closed when the current Serve has returned
	closed bool
}

// ErrUnplugged is returned by a Plug (and by devices' control methods)
// while the device is unplugged.
var ErrUnplugged = errors.New("sim: device unplugged")

// Attach opens a pseudo-terminal, links link to it (the parent directory
// must exist) and starts dev.Serve on it in a goroutine. The driver under
// test opens link. The caller closes the Plug.
func Attach(dev Device, link string) (*Plug, error) {
	if link == "" {
		return nil, errors.New("sim: attach: empty link path")
	}
	pl := &Plug{dev: dev, link: link}
	if err := pl.Replug(); err != nil {
		return nil, err
	}
	return pl, nil
}

// Path returns the stable symlink the driver should open.
func (pl *Plug) Path() string { return pl.link }

// TTY returns the current slave path (/dev/pts/N), or "" while unplugged.
func (pl *Plug) TTY() string {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	if pl.pty == nil {
		return ""
	}
	return pl.pty.Path()
}

// Plugged reports whether the device is plugged in.
func (pl *Plug) Plugged() bool {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	return pl.pty != nil
}

// Unplug removes the symlink, closes the pseudo-terminal (a driver reading
// it sees the line hang up) and waits for Serve to return. Unplugging an
// unplugged device is no error.
func (pl *Plug) Unplug() error {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	return pl.unplugLocked()
}

func (pl *Plug) unplugLocked() error {
	if pl.pty == nil {
		return nil
	}
	errLink := os.Remove(pl.link)
	if errors.Is(errLink, os.ErrNotExist) {
		errLink = nil
	}
	pl.cancel()
	errPTY := pl.pty.Close()
	<-pl.done
	pl.pty, pl.cancel = nil, nil
	return errors.Join(errLink, errPTY)
}

// Replug opens a fresh pseudo-terminal, points the symlink at it and starts
// Serve again. Replugging a plugged device is no error and changes nothing.
func (pl *Plug) Replug() error {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	if pl.closed {
		return fmt.Errorf("sim: replug %s: plug closed", pl.link)
	}
	if pl.pty != nil {
		return nil
	}
	p, err := OpenPTY()
	if err != nil {
		return fmt.Errorf("sim: plug %s: %w", pl.link, err)
	}
	if err := p.Link(pl.link); err != nil {
		p.Close()
		return fmt.Errorf("sim: plug: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	pl.pty, pl.cancel, pl.done = p, cancel, done
	go func() {
		defer close(done)
		// Serve's error is the port closing under it on Unplug, or the
		// device's own, which it reports through its control methods.
		_ = pl.dev.Serve(ctx, p)
	}()
	return nil
}

// Close unplugs the device for good; idempotent.
func (pl *Plug) Close() error {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	if pl.closed {
		return nil
	}
	pl.closed = true
	return pl.unplugLocked()
}

// SetReadDeadline sets the deadline for pending and future Reads of the
// master, as os.File does; a zero time means none.
func (p *PTY) SetReadDeadline(t time.Time) error { return p.master.SetReadDeadline(t) }

// wakeOnDone makes a Read of port blocked past ctx's end return, when port
// supports read deadlines (a PTY or os.File does). The returned stop
// releases the watch; call it before Serve returns.
func wakeOnDone(ctx context.Context, port io.Reader) (stop func() bool) {
	d, ok := port.(interface{ SetReadDeadline(time.Time) error })
	if !ok {
		return func() bool { return false }
	}
	return context.AfterFunc(ctx, func() { _ = d.SetReadDeadline(time.Unix(1, 0)) })
}

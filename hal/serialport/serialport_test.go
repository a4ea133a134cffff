package serialport_test

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"termagent/hal"
	"termagent/hal/backoff"
	"termagent/hal/serialport"
	"termagent/hal/sim"
)

// echo is a device that sends back every byte it receives.
type echo struct{}

func (echo) Serve(ctx context.Context, port io.ReadWriter) error {
	buf := make([]byte, 256)
	for {
		n, err := port.Read(buf)
		if err != nil {
			return err
		}
		if _, err := port.Write(buf[:n]); err != nil {
			return err
		}
	}
}

var _ sim.Device = echo{}

const hangDeadline = 20 * time.Second

func attachEcho(t *testing.T) *sim.Plug {
	t.Helper()
	pl, err := sim.Attach(echo{}, filepath.Join(t.TempDir(), "echo"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pl.Close() })
	return pl
}

func open(t *testing.T, name string) *serialport.Port {
	t.Helper()
	p, err := serialport.Open(serialport.Config{Name: name, ReadTimeout: 50 * time.Millisecond,
		Backoff: backoff.Policy{Min: 10 * time.Millisecond, Max: 100 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// readN reads exactly n bytes, skipping timeouts, within hangDeadline.
func readN(t *testing.T, p *serialport.Port, n int) []byte {
	t.Helper()
	deadline := time.Now().Add(hangDeadline)
	var got []byte
	buf := make([]byte, 64)
	for len(got) < n {
		if time.Now().After(deadline) {
			t.Fatalf("read %d of %d bytes before deadline", len(got), n)
		}
		k, err := p.Read(buf)
		if errors.Is(err, hal.ErrTimeout) {
			continue
		}
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		got = append(got, buf[:k]...)
	}
	return got
}

func TestEchoRoundTrip(t *testing.T) {
	pl := attachEcho(t)
	p := open(t, pl.Path())
	want := []byte{0x02, 0x00, 0xFF, 0x0D, 0x0A, 0x03}
	if _, err := p.Write(want); err != nil {
		t.Fatal(err)
	}
	if got := readN(t, p, len(want)); string(got) != string(want) {
		t.Fatalf("got % X, want % X (raw mode must pass every byte unchanged)", got, want)
	}
}

func TestReadTimeoutIsAnError(t *testing.T) {
	pl := attachEcho(t)
	p := open(t, pl.Path())
	n, err := p.Read(make([]byte, 8))
	if n != 0 || !errors.Is(err, hal.ErrTimeout) {
		t.Fatalf("silent port: got (%d, %v), want (0, ErrTimeout)", n, err)
	}
	if !strings.Contains(err.Error(), pl.Path()) {
		t.Errorf("timeout error %q does not name the port", err)
	}
}

// A port missing at Open is the state of a port lost later: Open
// succeeds, Health says lost (hal.ErrFault wrapping the os error, naming
// the port), I/O fails with hal.ErrFault, and Reopen opens the port once
// it appears, waking a Health watcher; bytes then pass both ways.
func TestMissingAtOpenIsLost(t *testing.T) {
	name := filepath.Join(t.TempDir(), "nothing-here")
	p := open(t, name)
	h, changed := p.Health()
	if h.OK || !errors.Is(h.Err, hal.ErrFault) || !errors.Is(h.Err, fs.ErrNotExist) {
		t.Fatalf("health of a missing port: %+v, want lost with ErrFault wrapping ErrNotExist", h)
	}
	if !strings.Contains(h.Err.Error(), name) {
		t.Errorf("error %q does not name the port", h.Err)
	}
	if _, err := p.Read(make([]byte, 8)); !errors.Is(err, hal.ErrFault) {
		t.Fatalf("read on a missing port: %v, want ErrFault", err)
	}
	if _, err := p.Write([]byte{1}); !errors.Is(err, hal.ErrFault) {
		t.Fatalf("write on a missing port: %v, want ErrFault", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), hangDeadline)
	defer cancel()
	reopened := make(chan error, 1)
	go func() { reopened <- p.Reopen(ctx) }()
	pl, err := sim.Attach(echo{}, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pl.Close() })
	if err := <-reopened; err != nil {
		t.Fatalf("reopen after the port appeared: %v", err)
	}
	select {
	case <-changed:
	default:
		t.Fatal("Health watcher not woken by the reopen")
	}
	if h, _ := p.Health(); !h.OK {
		t.Fatalf("health after reopen: %+v", h)
	}
	if _, err := p.Write([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	if got := readN(t, p, 2); string(got) != "hi" {
		t.Fatalf("echo after reopen: %q", got)
	}
}

func TestBadConfig(t *testing.T) {
	for _, cfg := range []serialport.Config{
		{},
		{Name: "/dev/x", Baud: -1},
		{Name: "/dev/x", ReadTimeout: -time.Second},
		{Name: "/dev/x", Backoff: backoff.Policy{Min: time.Second, Max: time.Millisecond}},
	} {
		if _, err := serialport.Open(cfg); err == nil {
			t.Errorf("Open(%+v) succeeded", cfg)
		}
	}
}

func TestCloseUnblocksReadAndIsIdempotent(t *testing.T) {
	pl := attachEcho(t)
	p, err := serialport.Open(serialport.Config{Name: pl.Path(), ReadTimeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := p.Read(make([]byte, 8))
		errc <- err
	}()
	// Make sure the reader is blocked: it cannot return before Close since
	// the echo device is silent and the timeout is an hour.
	select {
	case err := <-errc:
		t.Fatalf("Read returned before Close: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, hal.ErrClosed) {
			t.Fatalf("Read after Close: %v, want ErrClosed", err)
		}
	case <-time.After(hangDeadline):
		t.Fatal("Close did not unblock Read")
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := p.Write([]byte{1}); !errors.Is(err, hal.ErrClosed) {
		t.Fatalf("Write after Close: %v", err)
	}
	if err := p.Reopen(context.Background()); !errors.Is(err, hal.ErrClosed) {
		t.Fatalf("Reopen after Close: %v", err)
	}
}

func TestUnplugFaultThenReopen(t *testing.T) {
	pl := attachEcho(t)
	p := open(t, pl.Path())
	if err := pl.Unplug(); err != nil {
		t.Fatal(err)
	}
	// The next read sees the hang-up as a fault (not a timeout, not a spin).
	deadline := time.Now().Add(hangDeadline)
	var err error
	for {
		_, err = p.Read(make([]byte, 8))
		if !errors.Is(err, hal.ErrTimeout) || time.Now().After(deadline) {
			break
		}
	}
	if !errors.Is(err, hal.ErrFault) {
		t.Fatalf("read after unplug: %v, want ErrFault", err)
	}
	if !strings.Contains(err.Error(), pl.Path()) {
		t.Errorf("fault %q does not name the port", err)
	}
	if _, err := p.Write([]byte{1}); !errors.Is(err, hal.ErrFault) {
		t.Fatalf("write while vanished: %v, want ErrFault", err)
	}

	reopened := make(chan error, 1)
	ctx, cancel := context.WithTimeout(context.Background(), hangDeadline)
	defer cancel()
	go func() { reopened <- p.Reopen(ctx) }()
	// Reopen keeps failing while the link is gone; replug makes it succeed.
	select {
	case err := <-reopened:
		t.Fatalf("Reopen returned while unplugged: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	if err := pl.Replug(); err != nil {
		t.Fatal(err)
	}
	if err := <-reopened; err != nil {
		t.Fatalf("Reopen after replug: %v", err)
	}
	if _, err := p.Write([]byte("ok")); err != nil {
		t.Fatal(err)
	}
	if got := readN(t, p, 2); string(got) != "ok" {
		t.Fatalf("after replug got %q", got)
	}
}

func TestCloseStopsReopen(t *testing.T) {
	pl := attachEcho(t)
	p := open(t, pl.Path())
	pl.Unplug()
	errc := make(chan error, 1)
	go func() { errc <- p.Reopen(context.Background()) }()
	p.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, hal.ErrClosed) {
			t.Fatalf("Reopen after Close: %v", err)
		}
	case <-time.After(hangDeadline):
		t.Fatal("Close did not stop Reopen")
	}
}

func TestReopenHonoursContext(t *testing.T) {
	pl := attachEcho(t)
	p := open(t, pl.Path())
	pl.Unplug()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.Reopen(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Reopen with cancelled ctx: %v", err)
	}
}

func TestConcurrentReopensOpenOnce(t *testing.T) {
	pl := attachEcho(t)
	p := open(t, pl.Path())
	if err := pl.Unplug(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), hangDeadline)
	defer cancel()
	errc := make(chan error, 3)
	for range 3 {
		go func() { errc <- p.Reopen(ctx) }()
	}
	if err := pl.Replug(); err != nil {
		t.Fatal(err)
	}
	// All three return once the port is back, and the port works: the
	// later callers find it reopened and do not tear it down again.
	for range 3 {
		if err := <-errc; err != nil {
			t.Fatalf("Reopen: %v", err)
		}
	}
	if _, err := p.Write([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	if got := readN(t, p, 2); string(got) != "hi" {
		t.Fatalf("got %q", got)
	}
}

// Health follows the port: lost at the I/O error that drops it, back when
// Reopen succeeds, and every change wakes the watcher.
func TestHealthFollowsUnplugAndReopen(t *testing.T) {
	pl := attachEcho(t)
	p := open(t, pl.Path())
	h, changed := p.Health()
	if !h.OK {
		t.Fatalf("health at open %+v, want ok", h)
	}
	if err := pl.Unplug(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(hangDeadline)
	for {
		_, err := p.Read(make([]byte, 8))
		if !errors.Is(err, hal.ErrTimeout) || time.Now().After(deadline) {
			break
		}
	}
	select {
	case <-changed:
	case <-time.After(hangDeadline):
		t.Fatal("no health change after the port vanished")
	}
	h, changed = p.Health()
	if h.OK || !errors.Is(h.Err, hal.ErrFault) || !strings.Contains(h.Err.Error(), pl.Path()) {
		t.Fatalf("health after unplug %+v, want a fault naming the port", h)
	}
	if err := pl.Replug(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), hangDeadline)
	defer cancel()
	if err := p.Reopen(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
	case <-time.After(hangDeadline):
		t.Fatal("no health change after reopen")
	}
	if h, _ = p.Health(); !h.OK {
		t.Fatalf("health after reopen %+v, want ok", h)
	}
	p.Close()
	if h, _ = p.Health(); h.OK || !errors.Is(h.Err, hal.ErrClosed) {
		t.Fatalf("health after Close %+v, want ErrClosed", h)
	}
}

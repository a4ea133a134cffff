package modlink_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"termagent/hal"
	"termagent/hal/internal/modlink"
	"termagent/hal/internal/modlinktest"
	"termagent/hal/serialport"
)

// hang is the deadline that catches a hung call; it asserts no speed.
const hang = 30 * time.Second

// bufDecoder is a modlink.Decoder whose frames are whatever bytes came.
type bufDecoder struct {
	buf     []byte
	resyncs int
}

func (d *bufDecoder) Write(p []byte) (int, error) { d.buf = append(d.buf, p...); return len(p), nil }
func (d *bufDecoder) Buffered() int               { return len(d.buf) }
func (d *bufDecoder) Resync()                     { d.buf = d.buf[:0]; d.resyncs++ }

var _ modlink.Decoder = (*bufDecoder)(nil)

// newLink returns a link over port with test names, a short ByteGap
// unless cfg sets one, and logs to t; the test's cleanup closes it.
func newLink(t *testing.T, port io.ReadWriteCloser, cfg modlink.Config) *modlink.Link {
	t.Helper()
	cfg.Kind = "test"
	cfg.Port = "/dev/ttyT0"
	if cfg.ByteGap == 0 {
		cfg.ByteGap = 5 * time.Millisecond
	}
	cfg.Logger = zerolog.New(zerolog.NewTestWriter(t))
	l := modlink.New(port, cfg)
	t.Cleanup(func() { l.Close() })
	return l
}

// testCtx returns a context that ends at the hang deadline.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), hang)
	t.Cleanup(cancel)
	return ctx
}

// TestSendAndReceive: the reader goroutine hands the module's answer to
// Fill, which writes it to the decoder.
func TestSendAndReceive(t *testing.T) {
	l := newLink(t, modlinktest.NewReplyPort([]byte("pong")), modlink.Config{})
	ctx := testCtx(t)
	release, err := l.Acquire(ctx, "ping")
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if err := l.Send([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	rcv := l.Receive("ping", hang)
	defer rcv.Stop()
	var dec bufDecoder
	for !bytes.Equal(dec.buf, []byte("pong")) {
		if err := rcv.Fill(ctx, &dec); err != nil {
			t.Fatalf("Fill: %v (have %q)", err, dec.buf)
		}
		if len(dec.buf) > 4 {
			t.Fatalf("received %q, want pong", dec.buf)
		}
	}
}

// TestReceiveTimeout: silence ends in hal.ErrTimeout, a skipped corrupt
// frame in hal.ErrFault naming it; both name the link and op.
func TestReceiveTimeout(t *testing.T) {
	l := newLink(t, modlinktest.NewReplyPort(nil), modlink.Config{})
	ctx := testCtx(t)
	release, err := l.Acquire(ctx, "op")
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	fill := func(corrupt error) error {
		rcv := l.Receive("wait", 20*time.Millisecond)
		defer rcv.Stop()
		rcv.Corrupt = corrupt
		var dec bufDecoder
		for {
			if err := rcv.Fill(ctx, &dec); err != nil {
				return err
			}
		}
	}
	err = fill(nil)
	if !errors.Is(err, hal.ErrTimeout) || !strings.HasPrefix(err.Error(), "test /dev/ttyT0: wait: no reply within 20ms: ") {
		t.Fatalf("silent module: %v, want hal.ErrTimeout", err)
	}
	bad := errors.New("bad checksum")
	if err := fill(bad); !errors.Is(err, hal.ErrFault) || !errors.Is(err, bad) {
		t.Fatalf("corrupt frame: %v, want hal.ErrFault wrapping the cause", err)
	}
}

// TestStalledStartResyncs: bytes that stop coming for ByteGap are dropped.
func TestStalledStartResyncs(t *testing.T) {
	port := modlinktest.NewReplyPort([]byte{0xEF})
	l := newLink(t, port, modlink.Config{})
	ctx := testCtx(t)
	release, err := l.Acquire(ctx, "op")
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if err := l.Send([]byte{1}); err != nil {
		t.Fatal(err)
	}
	rcv := l.Receive("op", hang)
	defer rcv.Stop()
	var dec bufDecoder
	for dec.resyncs == 0 {
		if err := rcv.Fill(ctx, &dec); err != nil {
			t.Fatal(err)
		}
	}
	if dec.Buffered() != 0 {
		t.Fatalf("%d bytes left after resync", dec.Buffered())
	}
}

// TestAcquireSerialisesAndHonoursCtx: a second caller waits for the
// holder and gives up with its ctx.
func TestAcquireSerialisesAndHonoursCtx(t *testing.T) {
	l := newLink(t, modlinktest.NewReplyPort(nil), modlink.Config{})
	release, err := l.Acquire(testCtx(t), "first")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := l.Acquire(ctx, "second")
		errc <- err
	}()
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("second Acquire: %v, want context.Canceled", err)
		}
	case <-time.After(hang):
		t.Fatal("Acquire ignored its ctx")
	}
	release()
	release2, err := l.Acquire(testCtx(t), "third")
	if err != nil {
		t.Fatalf("Acquire after release: %v", err)
	}
	release2()
}

// TestCloseWakesEveryone: Close is idempotent and wakes a caller waiting
// for the link and one waiting for a reply, with hal.ErrClosed.
func TestCloseWakesEveryone(t *testing.T) {
	l := modlink.New(modlinktest.NewReplyPort(nil), modlink.Config{Kind: "test", ByteGap: time.Millisecond})
	ctx := testCtx(t)
	release, err := l.Acquire(ctx, "holder")
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 2)
	go func() {
		_, err := l.Acquire(ctx, "waiter")
		errc <- err
	}()
	go func() {
		rcv := l.Receive("reply", hang)
		defer rcv.Stop()
		var dec bufDecoder
		for {
			if err := rcv.Fill(ctx, &dec); err != nil {
				errc <- err
				return
			}
		}
	}()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	for range 2 {
		select {
		case err := <-errc:
			if !errors.Is(err, hal.ErrClosed) {
				t.Fatalf("woken with %v, want hal.ErrClosed", err)
			}
		case <-time.After(hang):
			t.Fatal("Close left a caller waiting")
		}
	}
	release()
	if _, err := l.Acquire(ctx, "after"); !errors.Is(err, hal.ErrClosed) {
		t.Fatalf("Acquire after Close: %v, want hal.ErrClosed", err)
	}
	select {
	case <-l.Done():
	default:
		t.Fatal("Done not closed after Close")
	}
}

// failingPort fails its first Read with err, then reads silence.
type failingPort struct {
	err    error
	failed atomic.Bool
	done   chan struct{}
	once   sync.Once
}

func (p *failingPort) Read(b []byte) (int, error) {
	if !p.failed.Swap(true) {
		return 0, p.err
	}
	select {
	case <-p.done:
		return 0, hal.ErrClosed
	case <-time.After(time.Millisecond):
		return 0, hal.ErrTimeout
	}
}
func (p *failingPort) Write(b []byte) (int, error) { return len(b), nil }
func (p *failingPort) Close() error                { p.once.Do(func() { close(p.done) }); return nil }

// reopeningPort is a failingPort that can come back: Reopen reports on
// reopened and arms one more failure.
type reopeningPort struct {
	*failingPort
	reopened chan struct{}
}

func (p reopeningPort) Reopen(ctx context.Context) error {
	p.failed.Store(false)
	select {
	case p.reopened <- struct{}{}:
	default: // the test has seen enough
	}
	return nil
}

// TestDeadPort: a port that fails for good ends a wait with hal.ErrFault
// wrapping the port's error.
func TestDeadPort(t *testing.T) {
	cause := errors.New("device unplugged")
	l := newLink(t, &failingPort{err: cause, done: make(chan struct{})}, modlink.Config{})
	rcv := l.Receive("reply", hang)
	defer rcv.Stop()
	var dec bufDecoder
	ctx := testCtx(t)
	for {
		err := rcv.Fill(ctx, &dec)
		if err == nil {
			continue
		}
		if !errors.Is(err, hal.ErrFault) || !errors.Is(err, cause) {
			t.Fatalf("dead port: %v, want hal.ErrFault wrapping the cause", err)
		}
		return
	}
}

// TestReopen: a port with Reopen is reopened after a read error, and the
// link lives on.
func TestReopen(t *testing.T) {
	p := reopeningPort{&failingPort{err: errors.New("device unplugged"), done: make(chan struct{})}, make(chan struct{}, 1)}
	l := newLink(t, p, modlink.Config{})
	for i := range 2 { // the reader goes on after the first reopen
		select {
		case <-p.reopened:
		case <-time.After(hang):
			t.Fatalf("port not reopened (%d reopens)", i)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestOwedReplySettled: after Owe, the next Acquire has Settle wait it out
// (at least ByteGap); an interrupted Settle leaves it owed, a finished one
// clears it.
func TestOwedReplySettled(t *testing.T) {
	var calls []time.Duration
	var fail error
	cfg := modlink.Config{ByteGap: 50 * time.Millisecond}
	cfg.Settle = func(ctx context.Context, op string, timeout time.Duration) error {
		calls = append(calls, timeout)
		return fail
	}
	l := newLink(t, modlinktest.NewReplyPort(nil), cfg)
	ctx := testCtx(t)
	acquire := func() error {
		release, err := l.Acquire(ctx, "op")
		if err == nil {
			release()
		}
		return err
	}
	if err := acquire(); err != nil || len(calls) != 0 {
		t.Fatalf("nothing owed: err %v, %d Settle calls", err, len(calls))
	}
	release, err := l.Acquire(ctx, "op")
	if err != nil {
		t.Fatal(err)
	}
	l.Owe(time.Now()) // already due: the wait is ByteGap
	release()
	fail = l.Wrap("settle", hal.ErrClosed)
	if err := acquire(); !errors.Is(err, hal.ErrClosed) || len(calls) != 1 || calls[0] != 50*time.Millisecond {
		t.Fatalf("interrupted settle: err %v, calls %v", err, calls)
	}
	fail = nil
	if err := acquire(); err != nil || len(calls) != 2 {
		t.Fatalf("settle: err %v, calls %v", err, calls)
	}
	if err := acquire(); err != nil || len(calls) != 2 {
		t.Fatalf("after settle: err %v, calls %v (want no more)", err, calls)
	}
}

// TestOpenErrors: Open refuses an empty port name; a missing port is not
// an error but a link whose Health says lost, naming the port, until the
// port appears.
func TestOpenErrors(t *testing.T) {
	newDriver := func(p io.ReadWriteCloser) (*driver, error) {
		return &driver{modlink.New(p, modlink.Config{Kind: "test", ByteGap: time.Millisecond})}, nil
	}
	if _, err := modlink.Open("test", serialport.Config{}, newDriver); err == nil || err.Error() != "test: open: empty port name" {
		t.Fatalf("empty port: %v", err)
	}
	missing := filepath.Join(t.TempDir(), "none")
	d, err := modlink.Open("test", serialport.Config{Name: missing}, newDriver)
	if err != nil {
		t.Fatalf("missing port: %v, want a driver in the lost state", err)
	}
	defer d.l.Close()
	if h, _ := d.l.Health(); h.OK || !errors.Is(h.Err, hal.ErrFault) || !bytes.Contains([]byte(h.Err.Error()), []byte(missing)) {
		t.Fatalf("health of a missing port: %+v, want lost with hal.ErrFault naming it", h)
	}
}

// driver is the least driver over a Link.
type driver struct{ l *modlink.Link }

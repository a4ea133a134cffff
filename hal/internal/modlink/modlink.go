// Package modlink is the link machinery the request/response serial
// module drivers share (hal/face's EF AA driver, hal/fingerprint's 0xEF01
// driver): one reader goroutine moving received bytes to a channel, with
// reopen of a vanished port; a one-command-at-a-time hold of the link that
// honours ctx; the wait for a reply with its byte-gap resynchronisation,
// deadline, ctx, Close and dead-port exits; the reply a cancelled command
// left owed, waited out by the next holder; and an idempotent Close that
// wakes every waiter.
//
// It knows nothing of frames or commands: the drivers keep their codec,
// their commands, their probe and how they recover a cancelled command
// (face sends RESET and waits for its reply, fingerprint waits for the
// ACK the module still owes). Shape of the drivers: one reader goroutine,
// writes serialised, and a Close that stops everything safely.
//
// Import rule: it imports only hal and hal/serialport, and only hal
// packages may import it (it is internal to hal).
package modlink

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"termagent/hal"
	"termagent/hal/serialport"
)

// Log field keys.
const (
	logComponent = "component"
	logPort      = "port"
	logBytes     = "bytes"
)

// rxQueue is how many received chunks (of at most readSize bytes) wait
// for the driver before the reader goroutine blocks.
const (
	rxQueue  = 64
	readSize = 512
)

// Config configures a Link. Kind and ByteGap are required.
type Config struct {
	// Kind names the module family ("face", "fingerprint"): it starts
	// every error and is the log component.
	Kind string
	// Port names the serial device in errors and logs; empty means
	// "(unnamed port)".
	Port string
	// ByteGap is how long a started frame may stall before Receive.Fill
	// resynchronises the decoder, and the least wait for an owed reply;
	// must be positive.
	ByteGap time.Duration
	// Settle, if set, is called by Acquire, under the hold of the link,
	// when a reply is owed (see Link.Owe), with timeout the time left
	// until it is due (at least ByteGap). It waits for and judges that
	// reply, and returns nil once the reply no longer stands in the way
	// (it came, or the wait timed out and the driver will probe). An
	// error (Interrupted: ctx ended or Close) leaves the reply owed to the
	// next holder, and Acquire returns it.
	Settle func(ctx context.Context, op string, timeout time.Duration) error
	// Logger receives the link's events; the zero Logger means none.
	Logger zerolog.Logger
}

// Link is one serial link to a module that answers one command at a
// time. New starts its reader goroutine; Close ends it. Acquire, Close and
// Done are safe for concurrent use; the other methods are for the holder
// of the link (between Acquire and release) only.
type Link struct {
	port    io.ReadWriteCloser
	prefix  string // "face /dev/ttyS1": starts every error
	log     zerolog.Logger
	byteGap time.Duration
	settle  func(ctx context.Context, op string, timeout time.Duration) error

	sem        chan struct{} // holds the link; a channel so waiting honours ctx
	rx         chan []byte   // received chunks, from readLoop
	done       chan struct{} // closed by Close
	readerDone chan struct{} // closed when readLoop returns
	closeOnce  sync.Once
	closeErr   error

	deadMu sync.Mutex
	dead   error // why readLoop stopped for good, if it did

	owedBy time.Time // guarded by sem: a reply is owed until then, if set
}

// reopener is implemented by ports that can come back after vanishing
// (serialport.Port).
type reopener interface {
	Reopen(ctx context.Context) error
}

// New returns a link over port, which it owns and closes, and starts its
// reader goroutine. port's Read may return errors wrapping hal.ErrTimeout
// for silence; after other errors the link calls port's Reopen(ctx) error
// method if it has one (serialport.Port does), or else treats the module
// as gone (Receive.Fill then fails with hal.ErrFault).
func New(port io.ReadWriteCloser, cfg Config) *Link {
	name := cfg.Port
	if name == "" {
		name = "(unnamed port)"
	}
	l := &Link{
		port:       port,
		prefix:     cfg.Kind + " " + name,
		log:        cfg.Logger.With().Str(logComponent, cfg.Kind).Str(logPort, name).Logger(),
		byteGap:    cfg.ByteGap,
		settle:     cfg.Settle,
		sem:        make(chan struct{}, 1),
		rx:         make(chan []byte, rxQueue),
		done:       make(chan struct{}),
		readerDone: make(chan struct{}),
	}
	go l.readLoop()
	return l
}

// Open opens the serial port pc names and builds the driver over it with
// newDriver, which owns the port from then on. It fails only for a bad
// configuration: a port missing now is the state of a port lost later
// (serialport.Open): the link's reader reopens it with backoff, Health
// reports it meanwhile, and the driver probes the module before its first
// command as it does after a loss. kind names the module family in
// errors. The caller closes the driver.
func Open[D any](kind string, pc serialport.Config, newDriver func(io.ReadWriteCloser) (D, error)) (D, error) {
	var none D
	if pc.Name == "" {
		return none, fmt.Errorf("%s: open: empty port name", kind)
	}
	p, err := serialport.Open(pc)
	if err != nil {
		return none, fmt.Errorf("open %s module: %w", kind, err)
	}
	d, err := newDriver(p)
	if err != nil {
		p.Close()
		return none, err
	}
	return d, nil
}

// readLoop moves received bytes to rx until Close or the port is gone.
func (l *Link) readLoop() {
	defer close(l.readerDone)
	buf := make([]byte, readSize)
	for {
		n, err := l.port.Read(buf)
		if n > 0 {
			select {
			case l.rx <- append([]byte(nil), buf[:n]...):
			case <-l.done:
				return
			}
		}
		select {
		case <-l.done:
			return
		default:
		}
		if err == nil || errors.Is(err, hal.ErrTimeout) {
			continue
		}
		r, ok := l.port.(reopener)
		if !ok || errors.Is(err, hal.ErrClosed) {
			l.setDead(err)
			return
		}
		l.log.Warn().Err(err).Msg("serial port lost; reopening")
		if err := r.Reopen(context.Background()); err != nil {
			l.setDead(err)
			return
		}
		l.log.Info().Msg("serial port reopened")
	}
}

// setDead records why the reader stopped for good.
func (l *Link) setDead(err error) {
	l.deadMu.Lock()
	l.dead = err
	l.deadMu.Unlock()
}

// deadErr returns why the reader stopped for good, if it did.
func (l *Link) deadErr() error {
	l.deadMu.Lock()
	defer l.deadMu.Unlock()
	return l.dead
}

// alwaysOK is the health of a port that cannot report its own.
var alwaysOK = hal.Health{OK: true}

// Health reports the port's health when the port reports it
// (serialport.Port does: lost when the reader goroutine's read fails, back
// when its reopen succeeds), else always OK with a channel that never
// closes. It implements hal.HealthReporter for the drivers.
func (l *Link) Health() (hal.Health, <-chan struct{}) {
	if hr, ok := l.port.(hal.HealthReporter); ok {
		return hr.Health()
	}
	return alwaysOK, nil
}

// Logger returns the link's logger, with the component and port fields,
// for the driver to log with.
func (l *Link) Logger() zerolog.Logger { return l.log }

// Wrap returns err wrapped with the module kind, port and op:
// "face /dev/ttyS1: op: err".
func (l *Link) Wrap(op string, err error) error {
	return fmt.Errorf("%s: %s: %w", l.prefix, op, err)
}

// Done returns a channel closed by Close, for waits of the driver's own.
func (l *Link) Done() <-chan struct{} { return l.done }

// Cancelled reports whether err is ctx's own error, ctx having ended: the
// caller gave up, the module may still be working.
func Cancelled(ctx context.Context, err error) bool {
	return ctx.Err() != nil && errors.Is(err, ctx.Err())
}

// Interrupted reports whether a wait failed because ctx ended or the link
// closed, rather than because the module answered wrongly or not at all.
func Interrupted(ctx context.Context, err error) bool {
	return Cancelled(ctx, err) || errors.Is(err, hal.ErrClosed)
}

// Acquire takes the link, waiting while another call holds it, and, when
// a reply is owed (see Owe), has Config.Settle wait it out first. It
// returns ctx.Err() when ctx ends first, an error wrapping hal.ErrClosed
// after Close, or Settle's error; otherwise the caller holds the link
// until it calls release, once.
func (l *Link) Acquire(ctx context.Context, op string) (release func(), err error) {
	select {
	case <-l.done:
		return nil, l.Wrap(op, hal.ErrClosed)
	default:
	}
	select {
	case l.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-l.done:
		return nil, l.Wrap(op, hal.ErrClosed)
	}
	release = func() { <-l.sem }
	if l.owedBy.IsZero() || l.settle == nil {
		return release, nil
	}
	timeout := max(time.Until(l.owedBy), l.byteGap)
	if err := l.settle(ctx, op, timeout); err != nil {
		release()
		return nil, err // still owed to the next holder of the link
	}
	l.owedBy = time.Time{}
	return release, nil
}

// Owe records that the module owes a reply until by (a command whose ctx
// ended, or the abort the driver sent for it): the next Acquire hands it
// to Config.Settle. The caller holds the link.
func (l *Link) Owe(by time.Time) { l.owedBy = by }

// Send writes b, one whole frame, to the port. The caller holds the link.
func (l *Link) Send(b []byte) error {
	_, err := l.port.Write(b)
	return err
}

// Pending returns a chunk received and not yet taken, without waiting;
// ok is false when there is none. The caller holds the link.
func (l *Link) Pending() (b []byte, ok bool) {
	select {
	case b = <-l.rx:
		return b, true
	default:
		return nil, false
	}
}

// A Decoder buffers received bytes until they make a frame; the driver
// reads the frames. Both drivers' Decoder types satisfy it.
type Decoder interface {
	// Write appends received bytes.
	Write(p []byte) (int, error)
	// Buffered returns the number of bytes waiting for the rest of a frame.
	Buffered() int
	// Resync drops the buffered frame start and looks for the next one.
	Resync()
}

// A Receive is one wait for a reply: its deadline, the byte-gap timer and
// the last reason a frame was skipped. Link.Receive makes it, the holder
// of the link uses it, Stop releases its timers.
type Receive struct {
	l        *Link
	op       string
	timeout  time.Duration
	deadline *time.Timer
	gap      *time.Timer
	// Corrupt is the last reason the driver skipped a frame; when no
	// reply comes in time, the wait fails with it (wrapping hal.ErrFault)
	// rather than with a bare timeout.
	Corrupt error
}

// Receive starts a wait of at most timeout for the reply to op. The
// caller holds the link and calls Stop when done.
func (l *Link) Receive(op string, timeout time.Duration) *Receive {
	return &Receive{
		l:        l,
		op:       op,
		timeout:  timeout,
		deadline: time.NewTimer(timeout),
		gap:      time.NewTimer(l.byteGap),
	}
}

// Stop releases the timers.
func (r *Receive) Stop() {
	r.deadline.Stop()
	r.gap.Stop()
}

// Fill blocks until there is something new for the driver to decode and
// returns nil: received bytes written to dec, or, after ByteGap without
// bytes, a stalled frame start dropped (dec.Resync). It returns the error
// that ends the wait instead: ctx.Err() when ctx ends; errors wrapping
// hal.ErrClosed after Close, hal.ErrFault when the port is gone for good
// or when the deadline passed after a corrupt frame (see Corrupt), and
// hal.ErrTimeout when it passed in silence.
func (r *Receive) Fill(ctx context.Context, dec Decoder) error {
	l := r.l
	r.gap.Reset(l.byteGap)
	select {
	case b := <-l.rx:
		dec.Write(b)
	case <-r.gap.C:
		if dec.Buffered() > 0 {
			l.log.Debug().Int(logBytes, dec.Buffered()).Msg("stalled frame start skipped")
			dec.Resync()
		}
	case <-r.deadline.C:
		if r.Corrupt != nil {
			return l.Wrap(r.op, fmt.Errorf("%w: %w", hal.ErrFault, r.Corrupt))
		}
		return l.Wrap(r.op, fmt.Errorf("no reply within %v: %w", r.timeout, hal.ErrTimeout))
	case <-ctx.Done():
		return ctx.Err()
	case <-l.done:
		return l.Wrap(r.op, hal.ErrClosed)
	case <-l.readerDone:
		select {
		case <-l.done: // the reader ended because of Close
			return l.Wrap(r.op, hal.ErrClosed)
		default:
		}
		return l.Wrap(r.op, fmt.Errorf("%w: port gone: %w", hal.ErrFault, l.deadErr()))
	}
	return nil
}

// Close stops the link: calls waiting for the link or a reply return an
// error wrapping hal.ErrClosed, the port is closed and the reader
// goroutine has ended when Close returns. Idempotent; it returns the
// port's close error, the same each time.
func (l *Link) Close() error {
	l.closeOnce.Do(func() {
		close(l.done)
		if err := l.port.Close(); err != nil {
			l.closeErr = l.Wrap("close", err)
		}
		<-l.readerDone
	})
	return l.closeErr
}

package protocol

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"
)

// Defaults of PeerConfig.
const (
	DefaultMaxInFlight  = 16
	DefaultMaxQueued    = 64
	DefaultCallTimeout  = 30 * time.Second
	DefaultWriteTimeout = 60 * time.Second
	// DefaultMaxCallTimeouts is PeerConfig.MaxCallTimeouts' default.
	DefaultMaxCallTimeouts = 3
)

// Log field keys.
const (
	logComponent = "component"
	logRemote    = "remote"
	logMod       = "mod"
	logSession   = "session_id"
	logCode      = "code"
)

// Handler answers the requests a Peer receives.
//
// ServeMessage runs on one of at most PeerConfig.MaxInFlight worker
// goroutines, several at once; req has passed Validate. It
// returns the response body as req.Reply(CodeOK, "") with fields added, or
// nil for a bare success. An error answers CodeError with the error's text,
// or the code of a *RemoteError (see Errorf). The Peer fills the response's
// mod, session_id, type and code fields, so exactly one response goes back.
// ctx ends when the Peer stops.
type Handler interface {
	ServeMessage(ctx context.Context, req *Message) (*Message, error)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, req *Message) (*Message, error)

// ServeMessage implements Handler by calling f.
func (f HandlerFunc) ServeMessage(ctx context.Context, req *Message) (*Message, error) {
	return f(ctx, req)
}

// PeerConfig configures a Peer. Zero values mean the documented defaults.
type PeerConfig struct {
	// Handler answers incoming requests; nil answers every request
	// CodeError "unsupported mod".
	Handler Handler
	// MaxInFlight bounds the handlers running at once; default
	// DefaultMaxInFlight.
	MaxInFlight int
	// MaxQueued bounds the requests waiting for a handler when all are
	// busy; default DefaultMaxQueued. A request beyond it is answered
	// CodeError "busy" at once. The reader never waits for a handler, so
	// responses keep arriving and a handler may wait for a Call on its own
	// Peer. Memory held is at most (MaxInFlight+MaxQueued) requests (with
	// a Spool, their long strings are on disk, not in memory). Every
	// request read gets its response: when the busy answers pile up in
	// the write queue the reader waits for the writer (reading more slowly
	// is the backpressure on a side that floods requests); a side that
	// never reads its answers then trips WriteTimeout.
	MaxQueued int
	// CallTimeout bounds each Call from send to response unless ctx ends
	// sooner; default DefaultCallTimeout.
	CallTimeout time.Duration
	// MaxCallTimeouts is how many Calls in a row may end by CallTimeout,
	// with no response to any Call in between, before the Peer presumes
	// the link half-open and stops with an error wrapping ErrUnresponsive;
	// default DefaultMaxCallTimeouts, negative never. A side that is idle
	// is never dropped by it: only calls that went unanswered count.
	MaxCallTimeouts int
	// WriteTimeout bounds each write to the connection (one batch of
	// queued messages; a 16 MiB message on a slow link needs time);
	// default DefaultWriteTimeout. A write that fails ends the connection.
	WriteTimeout time.Duration
	// Logger receives the Peer's events (frames only at debug level, never
	// their bodies); default none.
	Logger zerolog.Logger
	// Spool, when the Conn's Reader spools long strings into it (see
	// Spool), decodes incoming messages; the blobs of a request then stay
	// in its files until the response is written (the Peer closes the
	// request then). A response Call returns is the caller's to Close.
	// Default none: Decode.
	Spool *Spool
}

// Peer is one side of a connection: it sends requests and matches their
// responses by session_id (Call), and answers the other side's requests
// with its Handler, both directions at once (PROTOCOL.md §1 "The link"
// and §3 "The envelope"). The same type serves the device and the server.
//
// Run's goroutine reads; one writer goroutine writes everything queued at
// once (serialised, few system calls); responses are delivered without
// blocking the reader. Late and unknown responses are
// logged and dropped. When the connection ends every waiting Call fails
// with ErrNotSent or ErrNoResponse. A Peer is used for one connection: a
// reconnect makes a new one. Its methods are safe for concurrent use.
type Peer struct {
	conn Conn
	cfg  PeerConfig
	log  zerolog.Logger

	jobs    chan job     // requests waiting for a worker (cap MaxQueued)
	workers int          // workers started; only Run's goroutine touches it
	idle    atomic.Int32 // workers waiting for a job

	// The write queue: Run's writer goroutine takes everything queued and
	// writes it in one go (one system call on TCP), so writes are
	// serialised and many in flight cost few system calls.
	wqmu sync.Mutex
	wq   []*outgoing
	wake chan struct{} // cap 1: the queue is not empty

	mu      sync.Mutex
	pending map[string]chan result
	closed  bool
	cause   error // why the Peer stopped, set once with closed

	timeouts atomic.Int32 // Calls in a row ended by CallTimeout

	closing   chan struct{}
	closeOnce sync.Once
	started   atomic.Bool
	handlers  sync.WaitGroup
}

type result struct {
	msg *Message
	err error
}

// NewPeer returns a Peer over conn. It takes ownership of conn: Run and
// Close close it. Start it with Run.
func NewPeer(conn Conn, cfg PeerConfig) *Peer {
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = DefaultMaxInFlight
	}
	if cfg.MaxQueued <= 0 {
		cfg.MaxQueued = DefaultMaxQueued
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = DefaultCallTimeout
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.MaxCallTimeouts == 0 {
		cfg.MaxCallTimeouts = DefaultMaxCallTimeouts
	}
	remote := ""
	if a := conn.RemoteAddr(); a != nil {
		remote = a.String()
	}
	return &Peer{
		conn:    conn,
		cfg:     cfg,
		log:     cfg.Logger.With().Str(logComponent, "protocol.peer").Str(logRemote, remote).Logger(),
		wake:    make(chan struct{}, 1),
		jobs:    make(chan job, cfg.MaxQueued),
		pending: make(map[string]chan result),
		closing: make(chan struct{}),
	}
}

// Run reads and dispatches messages until the connection fails, ctx ends
// or Close is called; then it closes the connection, fails the waiting
// calls, waits for running handlers (their ctx is cancelled) and returns:
// nil after Close, ctx.Err() when ctx ended, otherwise the error that ended
// the connection (wrapping io.EOF when the other side closed it). Run may
// be called once.
func (p *Peer) Run(ctx context.Context) error {
	if !p.started.CompareAndSwap(false, true) {
		return errors.New("protocol: Peer.Run called twice")
	}
	hctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { p.shutdown(ctx.Err()) })
	defer stop()

	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		p.writeLoop()
	}()
	p.log.Debug().Msg("peer running")
	for {
		b, err := p.conn.ReadMessage()
		if err != nil {
			if errors.Is(err, ErrMalformed) {
				p.log.Warn().Err(err).Msg("skipped malformed input")
				continue
			}
			p.shutdown(fmt.Errorf("read: %w", err))
			break
		}
		p.dispatch(hctx, b)
	}
	cancel()
	p.handlers.Wait()
	<-writerDone
	for {
		select {
		case j := <-p.jobs: // never handled: answered by nobody, released here
			j.req.Close()
			continue
		default:
		}
		break
	}
	cause := p.stopCause()
	p.log.Debug().AnErr("cause", cause).Msg("peer stopped")
	if errors.Is(cause, ErrClosed) {
		return nil
	}
	return cause
}

// dispatch routes one incoming message without blocking.
func (p *Peer) dispatch(ctx context.Context, b []byte) {
	decode := Decode
	if p.cfg.Spool != nil {
		decode = p.cfg.Spool.Decode
	}
	m, err := decode(b)
	if err != nil {
		mod, sid, isResponse := salvage(b)
		if ch := p.take(sid); ch != nil {
			p.timeouts.Store(0)
			ch <- result{err: fmt.Errorf("%s %s: %w: response unreadable: %w", mod, sid, ErrNoResponse, err)}
			return
		}
		if mod == "" || sid == "" || isResponse {
			p.log.Warn().Err(err).Str(logMod, mod).Str(logSession, sid).Msg("dropped malformed message")
			return
		}
		p.serve(ctx, &Message{Mod: mod, SessionID: sid}, err)
		return
	}
	if ch := p.take(m.SessionID); ch != nil {
		p.timeouts.Store(0)
		p.log.Debug().Str(logMod, m.Mod).Str(logSession, m.SessionID).Int(logCode, m.Code).Msg("response")
		ch <- result{msg: m}
		return
	}
	if m.HasCode {
		p.log.Debug().Str(logMod, m.Mod).Str(logSession, m.SessionID).Int(logCode, m.Code).Msg("dropped late or unknown response")
		m.Close()
		return
	}
	p.serve(ctx, m, m.Validate())
}

// job is one request for a worker; err, if set, is answered instead of
// calling the handler.
type job struct {
	req *Message
	err error
}

// serve hands req to a worker: a new one when none is idle and fewer
// than MaxInFlight run, else through the queue. When the queue is full it
// answers "busy" at once. It never blocks, so the reader keeps reading.
func (p *Peer) serve(ctx context.Context, req *Message, reqErr error) {
	p.log.Debug().Str(logMod, req.Mod).Str(logSession, req.SessionID).Msg("request")
	j := job{req, reqErr}
	if p.idle.Load() == 0 && p.workers < p.cfg.MaxInFlight {
		p.workers++
		p.handlers.Add(1)
		go p.work(ctx, j)
		return
	}
	select {
	case p.jobs <- j:
		return
	default:
	}
	p.log.Warn().Str(logMod, req.Mod).Str(logSession, req.SessionID).Msg("busy: request refused")
	req.Close()
	b, err := Marshal(req.Reply(CodeError, fmt.Sprintf("busy: %d requests in progress and %d waiting; try again later", p.cfg.MaxInFlight, p.cfg.MaxQueued)))
	if err != nil {
		return
	}
	// Every request read is answered. While the answers queued for the
	// writer stay few the reader goes on at once; beyond that it waits
	// for this one to be written, so a side that floods requests is read
	// only as fast as it reads its answers, and the queue stays bounded.
	m := p.enqueue(b)
	p.wqmu.Lock()
	flooded := len(p.wq) > 4*(p.cfg.MaxInFlight+p.cfg.MaxQueued)
	p.wqmu.Unlock()
	if flooded {
		select {
		case <-m.done:
		case <-p.closing:
		}
	}
}

// work answers j, then further jobs until ctx ends.
func (p *Peer) work(ctx context.Context, j job) {
	defer p.handlers.Done()
	for {
		var after afterReply
		resp := p.handle(context.WithValue(ctx, afterReplyKey{}, &after), j.req, j.err)
		b, err := Marshal(resp)
		if err != nil {
			p.log.Error().Err(err).Str(logMod, j.req.Mod).Msg("encode response")
			b, _ = Marshal(j.req.Reply(CodeError, "internal error: cannot encode the response"))
		}
		err = p.write(ctx, b)
		if err != nil {
			p.log.Warn().Err(err).Str(logMod, j.req.Mod).Str(logSession, j.req.SessionID).Msg("response not sent")
		}
		j.req.Close() // the request's spooled blobs, if any, go now
		after.run(err)
		p.idle.Add(1)
		select {
		case j = <-p.jobs:
			p.idle.Add(-1)
		case <-ctx.Done():
			p.idle.Add(-1)
			return
		}
	}
}

// afterReplyKey is the context key of a request's afterReply.
type afterReplyKey struct{}

// afterReply holds what a handler asked to run once its response has
// been written.
type afterReply struct {
	mu   sync.Mutex
	fs   []func(error)
	done bool // the response has gone: too late to register
}

func (a *afterReply) run(err error) {
	a.mu.Lock()
	fs := a.fs
	a.fs, a.done = nil, true
	a.mu.Unlock()
	for _, f := range fs {
		f(err)
	}
}

// AfterReply arranges for f to run once the response to the request that
// ctx belongs to has been written, with nil, or has failed to be written,
// with the error (the connection ended). ctx must be the ctx a Handler's
// ServeMessage was given (or derived from it), and the call must come
// before the response has gone; otherwise AfterReply returns false and f
// never runs. f runs on the handler's goroutine after ServeMessage has
// returned, in the order registered ("reply, then move to the new
// server"); it must not block for long: the next request waits for it.
func AfterReply(ctx context.Context, f func(err error)) bool {
	a, ok := ctx.Value(afterReplyKey{}).(*afterReply)
	if !ok {
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.done {
		return false
	}
	a.fs = append(a.fs, f)
	return true
}

// handle returns the response to req: exactly one, whatever the handler
// does.
func (p *Peer) handle(ctx context.Context, req *Message, reqErr error) (resp *Message) {
	defer func() {
		if r := recover(); r != nil {
			p.log.Error().Str(logMod, req.Mod).Str(logSession, req.SessionID).
				Str("panic", fmt.Sprint(r)).Bytes("stack", debug.Stack()).Msg("handler panicked")
			resp = req.Reply(CodeError, fmt.Sprintf("internal error while handling %s", req.Mod))
		}
		resp.Mod, resp.SessionID, resp.Type, resp.HasCode = req.Mod, req.SessionID, TypeResponse, true
	}()
	if reqErr != nil {
		return req.Reply(CodeError, strings.TrimPrefix(reqErr.Error(), "protocol: "))
	}
	if p.cfg.Handler == nil {
		return req.Reply(CodeError, fmt.Sprintf("unsupported mod %q", req.Mod))
	}
	resp, err := p.cfg.Handler.ServeMessage(ctx, req)
	if err != nil {
		var re *RemoteError
		if errors.As(err, &re) && re.Code != CodeOK {
			return req.Reply(re.Code, re.Message)
		}
		return req.Reply(CodeError, err.Error())
	}
	if resp == nil {
		resp = req.Reply(CodeOK, "")
	}
	return resp
}

// Call sends req and waits for its response. It sets req.SessionID to a
// fresh UUID when empty (a caller that retries a record passes the record's
// id) and req.Type to TypeRequest when zero. The wait ends after
// PeerConfig.CallTimeout or when ctx ends, whichever is first.
//
// A response with a non-zero code returns the response and a *RemoteError.
// An error wrapping ErrNotSent means the request never left (safe to send
// again anywhere); one wrapping ErrNoResponse means it left, or may have,
// and no response came (lost connection, timeout, cancel: errors.Is also
// finds context.DeadlineExceeded or context.Canceled then). Run must be
// running for the request to be written and the response to arrive.
func (p *Peer) Call(ctx context.Context, req *Message) (*Message, error) {
	if req.HasCode || req.Mod == "" {
		return nil, fmt.Errorf("call %q: %w: %w: a request needs a mod and no code", req.Mod, ErrNotSent, ErrInvalid)
	}
	if req.SessionID == "" {
		req.SessionID = uuid.NewString()
	}
	if req.Type == 0 {
		req.Type = TypeRequest
	}
	name := req.Mod + " " + req.SessionID
	b, err := Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("call %s: %w: %w", name, ErrNotSent, err)
	}
	ctx, cancel := context.WithTimeoutCause(ctx, p.cfg.CallTimeout, errCallTimeout)
	defer cancel()

	ch := make(chan result, 1)
	p.mu.Lock()
	if p.closed {
		cause := p.cause
		p.mu.Unlock()
		return nil, fmt.Errorf("call %s: %w: %w", name, ErrNotSent, cause)
	}
	if _, dup := p.pending[req.SessionID]; dup {
		p.mu.Unlock()
		return nil, fmt.Errorf("call %s: %w: %w", name, ErrNotSent, ErrDuplicateSession)
	}
	p.pending[req.SessionID] = ch
	p.mu.Unlock()

	if err := p.write(ctx, b); err != nil {
		p.remove(req.SessionID, ch)
		p.timedOut(ctx)
		if errors.Is(err, ErrNotSent) {
			return nil, fmt.Errorf("call %s: %w", name, err)
		}
		return nil, fmt.Errorf("call %s: %w: %w", name, ErrNoResponse, err)
	}
	select {
	case r := <-ch:
		return p.result(name, r)
	case <-ctx.Done():
		p.remove(req.SessionID, ch)
		select {
		case r := <-ch:
			return p.result(name, r)
		default:
		}
		p.timedOut(ctx)
		return nil, fmt.Errorf("call %s: %w: %w", name, ErrNoResponse, ctx.Err())
	case <-p.closing:
		select {
		case r := <-ch:
			return p.result(name, r)
		default:
		}
		return nil, fmt.Errorf("call %s: %w: connection ended: %w", name, ErrNoResponse, p.stopCause())
	}
}

// errCallTimeout is the cause of a Call's context when CallTimeout ends it.
var errCallTimeout = errors.New("no response within the call timeout")

// timedOut counts a Call that ctx ended; when CallTimeout ended it, and
// MaxCallTimeouts calls in a row did so, the Peer stops: the link is
// presumed half-open.
func (p *Peer) timedOut(ctx context.Context) {
	if context.Cause(ctx) != errCallTimeout || p.cfg.MaxCallTimeouts < 0 {
		return
	}
	if n := p.timeouts.Add(1); int(n) >= p.cfg.MaxCallTimeouts {
		p.log.Warn().Int32("calls", n).Dur("timeout", p.cfg.CallTimeout).Msg("calls in a row unanswered: link presumed dead")
		p.shutdown(fmt.Errorf("%w: %d calls in a row got no response within %v", ErrUnresponsive, n, p.cfg.CallTimeout))
	}
}

func (p *Peer) result(name string, r result) (*Message, error) {
	if r.err != nil {
		return nil, r.err
	}
	if r.msg.Code != CodeOK {
		return r.msg, &RemoteError{Mod: r.msg.Mod, Code: r.msg.Code, Message: r.msg.Text}
	}
	return r.msg, nil
}

// outgoing is one encoded message in the write queue.
type outgoing struct {
	b    []byte
	done chan error // cap 1: the write's outcome
}

// write queues one encoded message and waits until the writer has written
// it. It returns an error wrapping ErrNotSent if the message left the
// queue unwritten (ctx ended, the Peer stopped) or no byte of it was sent.
// Once taken by the writer, a message is waited for even if ctx ends; the
// writer's own deadline (WriteTimeout) bounds that.
func (p *Peer) write(ctx context.Context, b []byte) error {
	select {
	case <-p.closing:
		return fmt.Errorf("%w: connection ended: %w", ErrNotSent, p.stopCause())
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", ErrNotSent, ctx.Err())
	default:
	}
	m := p.enqueue(b)
	var why error
	select {
	case err := <-m.done:
		return err
	case <-ctx.Done():
		why = ctx.Err()
	case <-p.closing:
		why = fmt.Errorf("connection ended: %w", p.stopCause())
	}
	if p.unqueue(m) {
		return fmt.Errorf("%w: waiting to write: %w", ErrNotSent, why)
	}
	return <-m.done
}

// enqueue queues b for the writer without waiting.
func (p *Peer) enqueue(b []byte) *outgoing {
	m := &outgoing{b: b, done: make(chan error, 1)}
	p.wqmu.Lock()
	p.wq = append(p.wq, m)
	p.wqmu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
	return m
}

// unqueue removes m from the write queue if the writer has not taken it.
func (p *Peer) unqueue(m *outgoing) bool {
	p.wqmu.Lock()
	defer p.wqmu.Unlock()
	for i, q := range p.wq {
		if q == m {
			p.wq = append(p.wq[:i], p.wq[i+1:]...)
			return true
		}
	}
	return false
}

// writeLoop is the writer goroutine: it writes whatever is queued until
// the Peer stops, then fails what is left as not sent.
func (p *Peer) writeLoop() {
	var batch []*outgoing
	bufs := make([][]byte, 0, 64)
	for {
		select {
		case <-p.wake:
		case <-p.closing:
			p.wqmu.Lock()
			left := p.wq
			p.wq = nil
			p.wqmu.Unlock()
			for _, m := range left {
				m.done <- fmt.Errorf("%w: connection ended: %w", ErrNotSent, p.stopCause())
			}
			return
		}
		// Let the goroutines that are ready to queue a message do so, so
		// that one system call carries them all.
		runtime.Gosched()
		for {
			p.wqmu.Lock()
			batch, p.wq = p.wq, batch[:0]
			p.wqmu.Unlock()
			if len(batch) == 0 {
				break
			}
			bufs = bufs[:0]
			for _, m := range batch {
				bufs = append(bufs, m.b)
			}
			sent, err := p.writeBatch(bufs)
			if err != nil {
				select {
				case <-p.closing:
					// The connection ended under the write; say why.
					err = fmt.Errorf("%w (connection ended: %w)", err, p.stopCause())
				default:
				}
				p.shutdown(fmt.Errorf("write: %w", err))
			}
			for i, m := range batch {
				switch {
				case err == nil:
					m.done <- nil
				case i < sent:
					m.done <- err
				default:
					m.done <- fmt.Errorf("%w: %w", ErrNotSent, err)
				}
				batch[i] = nil
			}
			for i := range bufs {
				bufs[i] = nil
			}
		}
	}
}

// batchWriter is implemented by Conns that write several messages at once
// (StreamConn).
type batchWriter interface {
	WriteMessages(ctx context.Context, msgs [][]byte) (int, error)
}

// writeBatch writes msgs within WriteTimeout. It returns how many of them
// were at least partly sent, and the first error.
func (p *Peer) writeBatch(msgs [][]byte) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.WriteTimeout)
	defer cancel()
	if bw, ok := p.conn.(batchWriter); ok {
		return bw.WriteMessages(ctx, msgs)
	}
	for i, b := range msgs {
		if err := p.conn.WriteMessage(ctx, b); err != nil {
			if errors.Is(err, ErrNotSent) {
				return i, err
			}
			return i + 1, err
		}
	}
	return len(msgs), nil
}

func (p *Peer) stopCause() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cause
}

func (p *Peer) take(sid string) chan result {
	if sid == "" {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	ch := p.pending[sid]
	delete(p.pending, sid)
	return ch
}

func (p *Peer) remove(sid string, ch chan result) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pending[sid] == ch {
		delete(p.pending, sid)
	}
}

// shutdown stops the Peer once, recording why.
func (p *Peer) shutdown(cause error) {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		p.closed, p.cause = true, cause
		p.pending = make(map[string]chan result)
		p.mu.Unlock()
		close(p.closing)
		p.conn.Close()
	})
}

// Close closes the connection and stops the Peer: waiting calls fail, Run
// returns nil. It does not wait for Run; it is idempotent.
func (p *Peer) Close() error {
	p.shutdown(ErrClosed)
	return nil
}

// Done returns a channel closed once the Peer has stopped taking calls: the
// connection is closed and waiting calls are failing. Run may still be
// waiting for handlers.
func (p *Peer) Done() <-chan struct{} { return p.closing }

// Err returns why the Peer stopped (as Run would), or nil while it runs.
func (p *Peer) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if errors.Is(p.cause, ErrClosed) {
		return nil
	}
	return p.cause
}

// LocalAddr returns the address of this side of the connection.
func (p *Peer) LocalAddr() string { return addrString(p.conn.LocalAddr()) }

// RemoteAddr returns the address of the other side.
func (p *Peer) RemoteAddr() string { return addrString(p.conn.RemoteAddr()) }

func addrString(a interface{ String() string }) string {
	if a == nil {
		return ""
	}
	return a.String()
}

// salvage finds mod and session_id in bytes that did not decode, so a
// malformed request can still be answered, and tells whether they carry a
// code (a response, never answered).
func salvage(b []byte) (mod, sid string, isResponse bool) {
	return stringField(b, "mod"), stringField(b, "session_id"), bytes.Contains(b, []byte(`"code"`)) || bytes.Contains(b, []byte(`"ret"`))
}

// stringField returns the value of the first "key":"value" in b, with
// simple values only (no escapes), or "".
func stringField(b []byte, key string) string {
	k := []byte(`"` + key + `"`)
	for {
		i := bytes.Index(b, k)
		if i < 0 {
			return ""
		}
		b = b[i+len(k):]
		rest := bytes.TrimLeft(b, " \t\r\n")
		if len(rest) == 0 || rest[0] != ':' {
			continue
		}
		rest = bytes.TrimLeft(rest[1:], " \t\r\n")
		if len(rest) == 0 || rest[0] != '"' {
			continue
		}
		end := bytes.IndexAny(rest[1:], "\"\\\n")
		if end < 0 || rest[1+end] != '"' || end > 256 {
			return ""
		}
		return string(rest[1 : 1+end])
	}
}

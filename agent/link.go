package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"termagent/hal/backoff"
	"termagent/protocol"
	"termagent/store"
)

// linkManager keeps the terminal connected: it dials (or accepts), runs a
// session on each connection until it ends, backs off with full jitter and
// starts again, forever. The manager knows nothing of what the session
// does; the connection knows nothing of retries.
type linkManager struct {
	a   *Agent
	log zerolog.Logger
	// moved is signalled (cap 1) when set_device_info changed the server
	// or the device port, after the response was written: the current
	// connection is dropped and the new settings are used.
	moved chan struct{}
	// backoff paces the redials; wait sleeps its delays on the real clock,
	// which tests control with testing/synctest.
	backoff backoff.Policy
}

func newLinkManager(a *Agent) *linkManager {
	return &linkManager{
		a:       a,
		log:     a.cfg.Logger.With().Str(logComponent, "link").Logger(),
		moved:   make(chan struct{}, 1),
		backoff: backoff.Policy{Min: a.cfg.Link.BackoffMin, Max: a.cfg.Link.BackoffMax},
	}
}

// move asks the manager to drop the connection and use the stored settings.
func (l *linkManager) move() {
	select {
	case l.moved <- struct{}{}:
	default:
	}
}

// Run connects and reconnects until ctx is done.
func (l *linkManager) Run(ctx context.Context) {
	if l.a.cfg.Link.Listen {
		l.runListen(ctx)
		return
	}
	l.runDial(ctx)
}

// wait sleeps d, returning early (false) when ctx is done; a move
// signal also ends the wait (true).
func (l *linkManager) wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
	case <-l.moved:
	}
	return true
}

// errMoved ends a session when set_device_info moved the terminal to
// another server.
var errMoved = errors.New("server moved by set_device_info")

// minHealthy is how long a session must have lasted for the next
// connection attempt to start again from the smallest backoff.
const minHealthy = 10 * time.Second

func (l *linkManager) runDial(ctx context.Context) {
	a := l.a
	attempt := 0
	var moveSince time.Time // when a pending move (PrevServer set) was first seen
	for ctx.Err() == nil {
		s, err := a.parts.Store.DeviceInfo(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			l.log.Error().Err(err).Msg("read server address")
			a.setLink(LinkDown, "", "", err)
			l.wait(ctx, l.backoff.Delay(attempt))
			attempt++
			continue
		}
		pending := s.PrevServerIP != "" || s.PrevServerPort != 0
		switch {
		case !pending:
			moveSince = time.Time{}
		case moveSince.IsZero():
			moveSince = a.cfg.Now()
		case a.cfg.Now().Sub(moveSince) >= a.cfg.Link.FallbackAfter:
			prev := joinHostPort(s.PrevServerIP, s.PrevServerPort)
			if _, err := a.parts.Store.RevertServer(ctx); err != nil {
				l.log.Error().Err(err).Msg("fall back to the previous server")
			} else {
				l.log.Warn().Str(logServer, joinHostPort(s.ServerIP, s.ServerPort)).Str("previous", prev).
					Dur("after", a.cfg.Link.FallbackAfter).Msg("new server not reached in time; falling back to the previous one")
			}
			moveSince = time.Time{}
			attempt = 0
			continue
		}
		if s.ServerIP == "" || s.ServerPort == 0 {
			a.setLink(LinkDown, "", "", ErrNoServer)
			l.log.Error().Err(ErrNoServer).Msg("cannot dial")
			l.wait(ctx, l.backoff.Delay(attempt))
			attempt++
			continue
		}
		addr := joinHostPort(s.ServerIP, s.ServerPort)
		a.setLink(LinkConnecting, addr, "", nil)
		conn, err := protocol.Dial(ctx, l.dialConfig(addr))
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			d := l.backoff.Delay(attempt)
			attempt++
			a.setLink(LinkDown, addr, "", err)
			l.log.Warn().Err(err).Str(logServer, addr).Int(logAttempt, attempt).Dur(logDelay, d).Msg("connect failed")
			l.wait(ctx, d)
			continue
		}
		if pending {
			if _, err := a.parts.Store.ConfirmServer(ctx); err != nil {
				l.log.Error().Err(err).Msg("confirm the new server")
			} else {
				l.log.Info().Str(logServer, addr).Msg("moved to the new server")
			}
			moveSince = time.Time{}
		}
		start := a.cfg.Now()
		err = l.session(ctx, conn, addr)
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, errMoved) {
			// A new server starts with a fresh backoff, dialled at once;
			// the fallback timer starts when the loop sees the move.
			a.setLink(LinkDown, addr, "", err)
			l.log.Info().Str("from", addr).Msg("server moved: dialling the new server now")
			attempt = 0
			continue
		}
		if a.cfg.Now().Sub(start) >= minHealthy {
			attempt = 0
		}
		d := l.backoff.Delay(attempt)
		attempt++
		a.setLink(LinkDown, addr, "", err)
		l.log.Warn().Err(err).Str(logServer, addr).Dur(logDelay, d).Msg("link down")
		l.wait(ctx, d)
	}
}

func (l *linkManager) dialConfig(addr string) protocol.DialConfig {
	c := l.a.cfg.Link
	return protocol.DialConfig{
		Address:   addr,
		Transport: c.Transport,
		Path:      c.Path,
		TLS: protocol.TLSConfig{
			CAFile: c.TLS.CAFile, PinSHA256: c.TLS.PinSHA256,
			CertFile: c.TLS.CertFile, KeyFile: c.TLS.KeyFile, ServerName: c.TLS.ServerName,
		},
		Timeout:        c.DialTimeout,
		KeepAlive:      c.KeepAlive,
		MaxMessageSize: c.MaxMessageSize,
		Spool:          l.a.spool,
	}
}

// runListen accepts the server's connections on device_port (listen mode).
// One connection is served at a time; a new one from an allowed address
// replaces the current one (the server reconnected; the old link may be
// half-open). Connections from other addresses are closed at once.
func (l *linkManager) runListen(ctx context.Context) {
	a := l.a
	allowed := make([]netip.Prefix, 0, len(a.cfg.Link.AllowedPeers))
	for _, p := range a.cfg.Link.AllowedPeers {
		pf, _ := parsePeer(p) // checked by Validate
		allowed = append(allowed, pf)
	}
	attempt := 0
	for ctx.Err() == nil {
		s, err := a.parts.Store.DeviceInfo(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			l.log.Error().Err(err).Msg("read device port")
			l.wait(ctx, l.backoff.Delay(attempt))
			attempt++
			continue
		}
		port := s.DevicePort
		if port == 0 {
			port = a.cfg.Device.DevicePort
		}
		addr := net.JoinHostPort(a.cfg.Link.ListenHost, strconv.Itoa(port))
		ln, err := protocol.Listen(ctx, l.listenConfig(addr))
		if err != nil {
			a.setLink(LinkDown, "", "", err)
			d := l.backoff.Delay(attempt)
			attempt++
			l.log.Error().Err(err).Str("listen", addr).Dur(logDelay, d).Msg("listen failed")
			l.wait(ctx, d)
			continue
		}
		attempt = 0
		a.setLink(LinkConnecting, "", "", nil)
		l.log.Info().Str("listen", ln.Addr().String()).Msg("listening for the server")
		l.acceptLoop(ctx, ln, allowed)
		ln.Close()
	}
}

// acceptLoop serves connections from ln until ctx is done or a move asks
// for a new listener.
func (l *linkManager) acceptLoop(ctx context.Context, ln *protocol.Listener, allowed []netip.Prefix) {
	a := l.a
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	conns := make(chan protocol.Conn)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				if !errors.Is(err, protocol.ErrClosed) && lctx.Err() == nil {
					l.log.Error().Err(err).Msg("accept")
				}
				return
			}
			select {
			case conns <- c:
			case <-lctx.Done():
				c.Close()
				return
			}
		}
	}()
	stop := context.AfterFunc(lctx, func() { ln.Close() })
	defer stop()

	var (
		wg      sync.WaitGroup
		current context.CancelFunc
	)
	defer wg.Wait()
	for {
		select {
		case <-lctx.Done():
			return
		case <-l.moved:
			l.log.Info().Msg("device port changed; listening again")
			cancel()
			return
		case c := <-conns:
			remote := c.RemoteAddr()
			if !peerAllowed(remote, allowed) {
				l.log.Warn().Stringer("remote", remote).Msg("refused a connection from an address not allowed")
				c.Close()
				continue
			}
			if current != nil {
				l.log.Info().Msg("new server connection replaces the current one")
				current()
				wg.Wait()
			}
			sctx, scancel := context.WithCancel(lctx)
			current = scancel
			wg.Go(func() {
				err := l.session(sctx, c, remote.String())
				if lctx.Err() == nil {
					a.setLink(LinkConnecting, "", "", err)
					l.log.Warn().Err(err).Msg("server connection ended")
				}
			})
		}
	}
}

func (l *linkManager) listenConfig(addr string) protocol.ListenConfig {
	c := l.a.cfg.Link
	return protocol.ListenConfig{
		Address:        addr,
		Transport:      c.Transport,
		Path:           c.Path,
		TLS:            protocol.ListenTLSConfig{CertFile: c.TLS.CertFile, KeyFile: c.TLS.KeyFile, ClientCAFile: c.TLS.CAFile},
		KeepAlive:      c.KeepAlive,
		MaxMessageSize: c.MaxMessageSize,
		Spool:          l.a.spool,
	}
}

// peerAllowed reports whether addr's IP is inside one of allowed.
func peerAllowed(addr net.Addr, allowed []netip.Prefix) bool {
	if addr == nil {
		return false
	}
	ap, err := netip.ParseAddrPort(addr.String())
	if err != nil {
		return false
	}
	ip := ap.Addr().Unmap()
	for _, p := range allowed {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// A server sends one request at a time in V1.0; these bound what a server
// that sends more can make the terminal hold. Each held request can be up
// to Link.MaxMessageSize, so the worst case is (in flight + queued) ×
// MaxMessageSize; a request beyond them is answered -1 "busy" at once.
const (
	serverRequestsInFlight = 2
	serverRequestsQueued   = 2
)

// session runs one connection: a Peer answering the server's requests,
// the uploader, the device-event sender, the heartbeat and the idle
// watchdog, until the connection ends, ctx is done or a move is ordered.
// It returns why the connection ended.
func (l *linkManager) session(ctx context.Context, conn protocol.Conn, server string) error {
	a := l.a
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	wc := &watchedConn{Conn: conn, now: a.cfg.Now}
	wc.touch()
	s := &session{a: a, conn: wc, cancel: cancel}
	peer := protocol.NewPeer(wc, protocol.PeerConfig{
		Handler:     s.handler(),
		MaxInFlight: serverRequestsInFlight,
		MaxQueued:   serverRequestsQueued,
		CallTimeout: a.cfg.Link.CallTimeout,
		// Half-open detection: unanswered calls in a row, and writes
		// that a server which never reads blocks.
		MaxCallTimeouts: a.cfg.Link.UnansweredCalls,
		WriteTimeout:    a.cfg.Link.WriteTimeout,
		Logger:          a.cfg.Logger,
		Spool:           a.spool,
	})
	s.peer = peer
	local := ""
	if la := conn.LocalAddr(); la != nil {
		local = la.String()
	}
	a.setLink(LinkUp, server, local, nil)
	l.log.Info().Str(logServer, server).Str("local", local).Msg("link up")

	var wg sync.WaitGroup
	wg.Go(func() { a.runUploader(ctx, peer) })
	wg.Go(func() { a.runEvents(ctx, peer) })
	if a.cfg.Link.Heartbeat.Mod != "" {
		wg.Go(func() { s.heartbeat(ctx) })
	}
	if rt := a.cfg.Link.ReadTimeout; rt > 0 {
		wg.Go(func() { s.watchdog(ctx, rt) })
	}
	wg.Go(func() {
		select {
		case <-ctx.Done():
		case <-l.moved:
			if !a.cfg.Link.Listen {
				cancel(errMoved)
				return
			}
			// In listen mode the accept loop handles moves.
			l.move()
		}
	})
	err := peer.Run(ctx)
	cancel(err)
	wg.Wait()
	if cause := context.Cause(ctx); err == nil || errors.Is(err, context.Canceled) {
		err = cause
	}
	return err
}

// watchedConn wraps the connection to note when the last message arrived
// (for the idle watchdog).
type watchedConn struct {
	protocol.Conn
	now      func() time.Time
	lastRead atomic.Int64 // unix nanoseconds
}

func (c *watchedConn) touch() { c.lastRead.Store(c.now().UnixNano()) }

// ReadMessage implements protocol.Conn.
func (c *watchedConn) ReadMessage() ([]byte, error) {
	b, err := c.Conn.ReadMessage()
	if err == nil {
		c.touch()
	}
	return b, err
}

// batchWriter is the optional batch write of protocol.StreamConn, which
// protocol.Peer uses when the Conn has it.
type batchWriter interface {
	WriteMessages(ctx context.Context, msgs [][]byte) (int, error)
}

// WriteMessages writes several messages in one system call when the
// wrapped Conn can (see protocol.StreamConn.WriteMessages), else one by
// one; it returns how many were at least partly sent.
func (c *watchedConn) WriteMessages(ctx context.Context, msgs [][]byte) (int, error) {
	if bw, ok := c.Conn.(batchWriter); ok {
		return bw.WriteMessages(ctx, msgs)
	}
	for i, b := range msgs {
		if err := c.Conn.WriteMessage(ctx, b); err != nil {
			if errors.Is(err, protocol.ErrNotSent) {
				return i, err
			}
			return i + 1, err
		}
	}
	return len(msgs), nil
}

// session is what runs on one connection.
type session struct {
	a      *Agent
	conn   *watchedConn
	peer   *protocol.Peer
	cancel context.CancelCauseFunc
}

// heartbeat sends the configured heartbeat request every interval; a
// failed heartbeat (no response) drops the link. A non-zero code is
// logged only: the server is alive.
func (s *session) heartbeat(ctx context.Context) {
	a := s.a
	t := time.NewTicker(a.cfg.Link.Heartbeat.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		_, err := s.peer.Call(ctx, protocol.NewRequest(a.cfg.Link.Heartbeat.Mod))
		var re *protocol.RemoteError
		switch {
		case err == nil:
		case errors.As(err, &re):
			a.log.Debug().Err(err).Msg("heartbeat refused")
		case ctx.Err() != nil:
			return
		default:
			s.cancel(fmt.Errorf("heartbeat: %w", err))
			return
		}
	}
}

// watchdog drops the link when nothing has arrived for rt.
func (s *session) watchdog(ctx context.Context, rt time.Duration) {
	for {
		last := time.Unix(0, s.conn.lastRead.Load())
		idle := s.a.cfg.Now().Sub(last)
		if idle >= rt {
			s.cancel(fmt.Errorf("nothing received for %v: link presumed dead", idle.Round(time.Millisecond)))
			return
		}
		t := time.NewTimer(rt - idle)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// joinHostPort formats a stored server address.
func joinHostPort(host string, port int) string {
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// seed writes the configured first values into the settings where they
// are still empty.
func (a *Agent) seed(ctx context.Context) error {
	seed := store.Settings{
		DeviceIP:      a.cfg.Device.DeviceIP,
		DevicePort:    a.cfg.Device.DevicePort,
		Address:       a.cfg.Device.Address,
		CommunityCode: a.cfg.Device.CommunityCode,
	}
	if addr := a.cfg.Link.ServerAddress; addr != "" {
		host, port, err := splitHostPort(addr)
		if err != nil {
			return fmt.Errorf("%w: Link.ServerAddress: %w", ErrConfig, err)
		}
		seed.ServerIP, seed.ServerPort = host, port
	}
	if _, err := a.parts.Store.SeedDeviceInfo(ctx, seed); err != nil {
		return fmt.Errorf("seed device info: %w", err)
	}
	return nil
}

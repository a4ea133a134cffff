package agent_test

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"termagent/agent"
	"termagent/protocol"
	"termagent/store"
)

// waitFor is the deadline for anything a test waits for. It catches hangs;
// it never asserts speed.
const waitFor = 30 * time.Second

// testServer is a management server on 127.0.0.1:0: a protocol.Peer per
// accepted connection that records every upload and device event and
// answers them with the code Code returns (0 by default).
type testServer struct {
	t    *testing.T
	ln   *protocol.Listener
	addr string

	peers   chan *protocol.Peer
	uploads chan *protocol.Message
	events  chan *protocol.Message

	mu    sync.Mutex
	code  func(*protocol.Message) int // nil: 0
	live  []*protocol.Peer
	extra map[string]protocol.HandlerFunc
}

func newTestServer(t *testing.T) *testServer {
	t.Helper()
	return listenTestServer(t, "127.0.0.1:0")
}

func listenTestServer(t *testing.T, addr string) *testServer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ln, err := protocol.Listen(ctx, protocol.ListenConfig{Address: addr})
	if err != nil {
		cancel()
		t.Fatalf("listen: %v", err)
	}
	s := &testServer{
		t: t, ln: ln, addr: ln.Addr().String(),
		peers:   make(chan *protocol.Peer, 16),
		uploads: make(chan *protocol.Message, 1<<16),
		events:  make(chan *protocol.Message, 1024),
	}
	s.extra = map[string]protocol.HandlerFunc{}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p := protocol.NewPeer(c, protocol.PeerConfig{Handler: s.mux(), MaxInFlight: 64, Logger: testLogger(t, "server")})
			s.mu.Lock()
			s.live = append(s.live, p)
			s.mu.Unlock()
			wg.Go(func() { p.Run(ctx) })
			s.peers <- p
		}
	})
	t.Cleanup(func() {
		cancel()
		ln.Close()
		s.dropAll()
		wg.Wait()
	})
	return s
}

// mux returns the handlers of a new connection: uploads and device events,
// plus those added with handle.
func (s *testServer) mux() *protocol.Mux {
	mux := protocol.NewMux()
	mux.HandleFunc(protocol.ModUploadAccessInfo, func(ctx context.Context, req *protocol.Message) (*protocol.Message, error) {
		s.uploads <- req
		if c := s.answer(req); c != 0 {
			return nil, protocol.Errorf(c, "refused by the test server")
		}
		return nil, nil
	})
	mux.HandleFunc(protocol.ModSendDeviceCommand, func(ctx context.Context, req *protocol.Message) (*protocol.Message, error) {
		s.events <- req
		return nil, nil
	})
	s.mu.Lock()
	defer s.mu.Unlock()
	for mod, h := range s.extra {
		mux.HandleFunc(mod, h)
	}
	return mux
}

// handle adds a handler for connections accepted from now on.
func (s *testServer) handle(mod string, h protocol.HandlerFunc) {
	s.mu.Lock()
	s.extra[mod] = h
	s.mu.Unlock()
}

func (s *testServer) answer(m *protocol.Message) int {
	s.mu.Lock()
	code := s.code
	s.mu.Unlock()
	if code == nil {
		return 0
	}
	return code(m)
}

func (s *testServer) setCode(f func(*protocol.Message) int) {
	s.mu.Lock()
	s.code = f
	s.mu.Unlock()
}

// stop closes the listener and every connection: the server is away.
func (s *testServer) stop() {
	s.ln.Close()
	s.dropAll()
}

func (s *testServer) dropAll() {
	s.mu.Lock()
	live := s.live
	s.live = nil
	s.mu.Unlock()
	for _, p := range live {
		p.Close()
	}
}

// port returns the server's port.
func (s *testServer) port() int {
	_, ps, _ := net.SplitHostPort(s.addr)
	p, _ := strconv.Atoi(ps)
	return p
}

// peer waits for the agent's connection.
func (s *testServer) peer() *protocol.Peer {
	s.t.Helper()
	select {
	case p := <-s.peers:
		return p
	case <-time.After(waitFor):
		s.t.Fatal("the agent did not connect")
		return nil
	}
}

// upload waits for the next upload_access_info.
func (s *testServer) upload() *protocol.Message {
	s.t.Helper()
	select {
	case m := <-s.uploads:
		return m
	case <-time.After(waitFor):
		s.t.Fatal("no upload_access_info arrived")
		return nil
	}
}

// event waits for the next send_device_command whose command_type is typ.
func (s *testServer) event(typ int) *protocol.Message {
	s.t.Helper()
	deadline := time.After(waitFor)
	for {
		select {
		case m := <-s.events:
			if m.CommandType == typ {
				return m
			}
		case <-deadline:
			s.t.Fatalf("no send_device_command with command_type %d arrived", typ)
			return nil
		}
	}
}

func testLogger(t testing.TB, component string) zerolog.Logger {
	level := zerolog.InfoLevel
	if _, bench := t.(*testing.B); bench {
		level = zerolog.WarnLevel
	}
	return zerolog.New(zerolog.NewTestWriter(t)).Level(level).With().Str("side", component).Logger()
}

// openStore opens a real SQLite store in a temporary directory.
func openStore(t *testing.T, cfg store.Config) *store.DB {
	t.Helper()
	if cfg.Logger.GetLevel() == zerolog.DebugLevel {
		cfg.Logger = testLogger(t, "store")
	}
	db, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "termagent.db"), cfg)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// runningAgent is an agent running in the background of a test.
type runningAgent struct {
	*agent.Agent
	cancel context.CancelFunc
	done   chan error
}

// startAgent runs an agent until the test ends (or stop is called).
func startAgent(t *testing.T, cfg agent.Config, parts agent.Parts) *runningAgent {
	t.Helper()
	cfg.Logger = testLogger(t, "agent")
	if cfg.Link.BackoffMin == 0 {
		cfg.Link.BackoffMin = 20 * time.Millisecond
		cfg.Link.BackoffMax = 200 * time.Millisecond
	}
	if cfg.Upload.RetryMin == 0 {
		cfg.Upload.RetryMin = 10 * time.Millisecond
		cfg.Upload.RetryMax = 100 * time.Millisecond
	}
	a, err := agent.New(cfg, parts)
	if err != nil {
		t.Fatalf("agent.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &runningAgent{Agent: a, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- a.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop cancels Run and waits for it; idempotent.
func (r *runningAgent) stop(t *testing.T) error {
	r.cancel()
	select {
	case err, ok := <-r.done:
		if ok {
			close(r.done)
		}
		return err
	case <-time.After(waitFor):
		t.Fatal("Run did not return after cancel")
		return nil
	}
}

// call sends a request from the server and returns the response and the
// code (0, or the RemoteError's code); a transport error fails the test.
func call(t *testing.T, p *protocol.Peer, req *protocol.Message) (*protocol.Message, int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	resp, err := p.Call(ctx, req)
	var re *protocol.RemoteError
	switch {
	case err == nil:
		return resp, 0, resp.Text
	case errors.As(err, &re):
		return resp, re.Code, re.Message
	default:
		t.Fatalf("call %s: %v", req.Mod, err)
		return nil, 0, ""
	}
}

type netListenerFactory struct{}

// closedPort returns a loopback port nothing listens on (it was free a
// moment ago).
func (netListenerFactory) closedPort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port, nil
}

package protocol

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// hangTimeout only catches hangs; nothing here asserts speed.
const hangTimeout = 30 * time.Second

func testLogger(t *testing.T) zerolog.Logger {
	return zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.DebugLevel)
}

type runningPeer struct {
	*Peer
	done chan error // Run's result
}

func startPeer(t *testing.T, ctx context.Context, conn Conn, cfg PeerConfig) *runningPeer {
	t.Helper()
	cfg.Logger = testLogger(t)
	p := &runningPeer{Peer: NewPeer(conn, cfg), done: make(chan error, 1)}
	go func() { p.done <- p.Run(ctx) }()
	t.Cleanup(func() {
		p.Close()
		p.wait(t)
	})
	return p
}

// wait returns Run's result, failing the test if Run does not return.
func (p *runningPeer) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-p.done:
		p.done <- err
		return err
	case <-time.After(hangTimeout):
		t.Fatal("Peer.Run did not return")
		return nil
	}
}

// pair connects a client and a server Peer over transport on loopback.
func pair(t *testing.T, transport string, server, client PeerConfig) (srv, cli *runningPeer) {
	t.Helper()
	ctx := context.Background()
	ln, err := Listen(ctx, ListenConfig{Address: "127.0.0.1:0", Transport: transport})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			t.Error(err)
		}
		accepted <- c
	}()
	cc, err := Dial(ctx, DialConfig{Address: ln.Addr().String(), Transport: transport})
	if err != nil {
		t.Fatal(err)
	}
	sc := <-accepted
	if sc == nil {
		t.FailNow()
	}
	return startPeer(t, ctx, sc, server), startPeer(t, ctx, cc, client)
}

func echoMux(tag string) *Mux {
	mux := NewMux()
	mux.HandleFunc(ModSendUserCommand, func(ctx context.Context, req *Message) (*Message, error) {
		resp := req.Reply(CodeOK, tag)
		resp.CommandType, resp.CommandValue = req.CommandType, req.CommandValue
		return resp, nil
	})
	return mux
}

var transports = []string{TransportTCP, TransportWS}

// TestPeerConcurrentCallsBothWays: many calls in flight in each direction
// at once, each matched to its own response.
func TestPeerConcurrentCallsBothWays(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			srv, cli := pair(t, tr, PeerConfig{Handler: echoMux("server")}, PeerConfig{Handler: echoMux("client")})
			ctx, cancel := context.WithTimeout(context.Background(), hangTimeout)
			defer cancel()
			var wg sync.WaitGroup
			for side, p := range map[string]*runningPeer{"client": cli, "server": srv} {
				other := map[string]string{"client": "server", "server": "client"}[side]
				for g := range 16 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for i := range 25 {
							req := NewRequest(ModSendUserCommand)
							req.CommandType = g
							req.CommandValue = fmt.Sprintf("%s-%d-%d", side, g, i)
							resp, err := p.Call(ctx, req)
							if err != nil {
								t.Errorf("%s call: %v", side, err)
								return
							}
							if resp.SessionID != req.SessionID || resp.CommandValue != req.CommandValue || resp.CommandType != g || resp.Text != other || resp.Type != TypeResponse {
								t.Errorf("%s got %s for %s", side, summary(resp), summary(req))
								return
							}
						}
					}()
				}
			}
			wg.Wait()
		})
	}
}

func TestPeerHandlerOutcomes(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			mux := NewMux()
			mux.HandleFunc("fail", func(context.Context, *Message) (*Message, error) {
				return nil, errors.New("card reader unplugged")
			})
			mux.HandleFunc("db", func(context.Context, *Message) (*Message, error) {
				return nil, fmt.Errorf("wrapped: %w", Errorf(CodeDatabase, "store person: %w", io.ErrShortWrite))
			})
			mux.HandleFunc("panic", func(context.Context, *Message) (*Message, error) {
				panic("boom")
			})
			mux.HandleFunc("nil", func(context.Context, *Message) (*Message, error) { return nil, nil })
			mux.HandleFunc("coded", func(_ context.Context, req *Message) (*Message, error) {
				return req.Reply(CodeDevice, "face module timed out"), nil
			})
			mux.HandleFunc("wrong-envelope", func(_ context.Context, req *Message) (*Message, error) {
				return &Message{Mod: "other", SessionID: "other", Type: 1, DeviceInfo: &DeviceInfo{UUID: "u"}}, nil
			})
			mux.HandleFunc(ModDownloadPerson, func(context.Context, *Message) (*Message, error) {
				t.Error("handler saw an invalid download_person")
				return nil, nil
			})
			_, cli := pair(t, tr, PeerConfig{Handler: mux}, PeerConfig{})
			ctx := context.Background()
			tests := []struct {
				req      *Message
				code     int
				text     string
				checkErr func(error) bool
			}{
				{NewRequest("fail"), CodeError, "card reader unplugged", nil},
				{NewRequest("db"), CodeDatabase, "store person: short write", nil},
				{NewRequest("panic"), CodeError, "internal error while handling panic", nil},
				{NewRequest("nil"), CodeOK, "", nil},
				{NewRequest("coded"), CodeDevice, "face module timed out", nil},
				{NewRequest("nosuch"), CodeError, `unsupported mod "nosuch"`, nil},
				{&Message{Mod: ModDownloadPerson, PersonInfo: &PersonInfo{PersonID: "p", Face: &Biometric{Length: 123221, Data: make([]byte, 1200)}}},
					CodeError, "invalid message: person_info.face.length is 123221 but data decodes to 1200 bytes", nil},
				{NewRequest("panic"), CodeError, "internal error while handling panic", nil}, // the peer lives on
			}
			for _, tt := range tests {
				resp, err := cli.Call(ctx, tt.req)
				if resp == nil {
					t.Fatalf("%s: no response: %v", tt.req.Mod, err)
				}
				if resp.Code != tt.code || resp.Text != tt.text || resp.Mod != tt.req.Mod || resp.SessionID != tt.req.SessionID {
					t.Errorf("%s: got %s; want code %d %q", tt.req.Mod, summary(resp), tt.code, tt.text)
				}
				var re *RemoteError
				switch {
				case tt.code == CodeOK && err != nil:
					t.Errorf("%s: err = %v", tt.req.Mod, err)
				case tt.code != CodeOK && (!errors.As(err, &re) || re.Code != tt.code || re.Message != tt.text || re.Mod != tt.req.Mod):
					t.Errorf("%s: err = %#v; want *RemoteError code %d", tt.req.Mod, err, tt.code)
				}
			}
			resp, err := cli.Call(ctx, NewRequest("wrong-envelope"))
			if err != nil || resp.Mod != "wrong-envelope" || resp.Type != TypeResponse || resp.DeviceInfo == nil {
				t.Errorf("the Peer did not fix the envelope: %s, %v", summary(resp), err)
			}
		})
	}
}

// rawServer accepts one TCP connection and gives the test the raw bytes.
func rawServer(t *testing.T) (addr string, accept func() net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String(), func() net.Conn {
		c, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
}

func dialPeer(t *testing.T, addr string, cfg PeerConfig) *runningPeer {
	t.Helper()
	c, err := Dial(context.Background(), DialConfig{Address: addr})
	if err != nil {
		t.Fatal(err)
	}
	return startPeer(t, context.Background(), c, cfg)
}

// TestPeerAgainstRawSide drives a Peer with hand-written bytes, as a
// careless server might send them.
func TestPeerAgainstRawSide(t *testing.T) {
	addr, accept := rawServer(t)
	p := dialPeer(t, addr, PeerConfig{Handler: echoMux("dev")})
	raw := accept()
	in := NewReader(raw, 0)
	next := func() *Message {
		t.Helper()
		raw.SetReadDeadline(time.Now().Add(hangTimeout))
		b, err := in.ReadMessage()
		if err != nil {
			t.Fatalf("read from peer: %v", err)
		}
		m, err := Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	send := func(s string) {
		t.Helper()
		if _, err := io.WriteString(raw, s); err != nil {
			t.Fatal(err)
		}
	}

	// A late or unknown response is dropped, never answered; garbage is
	// skipped; a request marked type 2 without a code is still a request;
	// pretty-printed and split messages arrive.
	send(`{"mod":"upload_access_info","session_id":"gone","type":2,"code":0,"message":""}` + "\nHELLO\n")
	send("{\n \"mod\": \"send_user_command\",\n \"session_id\": \"r1\",\n \"type\": \"2\",\n \"command_type\": \"7\",")
	send("\n \"command_value\": \"open\"\n}")
	if m := next(); m.SessionID != "r1" || m.Code != CodeOK || m.CommandValue != "open" || m.CommandType != 7 {
		t.Fatalf("got %s", summary(m))
	}
	// A malformed request that still names its mod and session is
	// answered -1 with the reason; one without them is dropped.
	send(`{"mod":"send_user_command","session_id":"r2","type":1,"command_type":2` + "\n" + `"command_value":"test!"}`)
	send(`{"mod":"x" "session_id":}` + "\n")
	send(`{"mod":"send_user_command","session_id":"r3","command_type":"abc"}`)
	// Handlers run concurrently: the two answers may come in either order.
	got := map[string]*Message{}
	for range 2 {
		m := next()
		got[m.SessionID] = m
	}
	if m := got["r2"]; m == nil || m.Code != CodeError || !strings.Contains(m.Text, "invalid JSON") {
		t.Fatalf("r2: got %s", summary(m))
	}
	if m := got["r3"]; m == nil || m.Code != CodeError || m.Text != `malformed message: command_type: "abc" is not a number` {
		t.Fatalf("r3: got %s", summary(m))
	}
	// An invalid request (no session id) is answered too.
	send(`{"mod":"send_user_command"}`)
	if m := next(); m.Code != CodeError || m.Text != "invalid message: session_id is missing" {
		t.Fatalf("got %s", summary(m))
	}

	// A response with ret/msg answers a call; a malformed response to a
	// pending call fails that call with ErrNoResponse.
	type callResult struct {
		resp *Message
		err  error
	}
	results := make(chan callResult, 2)
	go func() {
		req := NewRequest(ModUploadAccessInfo)
		req.SessionID = "up-1"
		req.AccessInfo = &AccessInfo{PersonID: "p", Time: "20260127081500"}
		resp, err := p.Call(context.Background(), req)
		results <- callResult{resp, err}
	}()
	if m := next(); m.SessionID != "up-1" || m.AccessInfo == nil || m.AccessInfo.PersonID != "p" || m.HasCode {
		t.Fatalf("got %s", summary(m))
	}
	send(`{"mod":"upload_access_info","session_id":"up-1","type":2,"ret":-3,"msg":"db busy"}`)
	r := <-results
	var re *RemoteError
	if !errors.As(r.err, &re) || re.Code != CodeDatabase || re.Message != "db busy" || r.resp.Text != "db busy" {
		t.Fatalf("call = %s, %v", summary(r.resp), r.err)
	}
	go func() {
		req := NewRequest(ModUploadAccessInfo)
		req.SessionID = "up-2"
		resp, err := p.Call(context.Background(), req)
		results <- callResult{resp, err}
	}()
	next()
	send(`{"mod":"upload_access_info","session_id":"up-2","code":"zero"}`)
	r = <-results
	if !errors.Is(r.err, ErrNoResponse) || !strings.Contains(r.err.Error(), "not a number") {
		t.Fatalf("call = %s, %v", summary(r.resp), r.err)
	}
	// The same session id again, answered twice: the second is late.
	go func() {
		req := NewRequest(ModUploadAccessInfo)
		req.SessionID = "up-2"
		resp, err := p.Call(context.Background(), req)
		results <- callResult{resp, err}
	}()
	next()
	send(`{"mod":"upload_access_info","session_id":"up-2","code":0,"message":""}{"mod":"upload_access_info","session_id":"up-2","code":0,"message":""}`)
	if r = <-results; r.err != nil {
		t.Fatalf("retry = %v", r.err)
	}
	// Still alive.
	send(`{"mod":"nosuch","session_id":"r9"}`)
	if m := next(); m.SessionID != "r9" || m.Code != CodeError || m.Text != `unsupported mod "nosuch"` {
		t.Fatalf("got %s", summary(m))
	}
}

func TestPeerSessionIDs(t *testing.T) {
	var seen sync.Map
	handler := HandlerFunc(func(_ context.Context, req *Message) (*Message, error) {
		if _, dup := seen.LoadOrStore(req.SessionID, true); dup && req.SessionID != "fixed" {
			return nil, fmt.Errorf("session id %s reused", req.SessionID)
		}
		return nil, nil
	})
	_, cli := pair(t, TransportTCP, PeerConfig{Handler: handler}, PeerConfig{})
	for range 100 {
		req := NewRequest("x")
		if _, err := cli.Call(context.Background(), req); err != nil {
			t.Fatal(err)
		}
		if len(req.SessionID) != 36 || strings.Count(req.SessionID, "-") != 4 {
			t.Fatalf("session id %q is not a UUID", req.SessionID)
		}
	}
	for range 3 {
		req := &Message{Mod: "x", SessionID: "fixed"}
		resp, err := cli.Call(context.Background(), req)
		if err != nil || resp.SessionID != "fixed" || req.Type != TypeRequest {
			t.Fatalf("fixed id: %s, %v", summary(resp), err)
		}
	}
	for _, bad := range []*Message{{Mod: ""}, (&Message{Mod: "x", SessionID: "s"}).Reply(0, "")} {
		if _, err := cli.Call(context.Background(), bad); !errors.Is(err, ErrNotSent) || !errors.Is(err, ErrInvalid) {
			t.Errorf("Call(%s) = %v; want ErrNotSent and ErrInvalid", summary(bad), err)
		}
	}
}

func TestPeerDuplicateSessionInFlight(t *testing.T) {
	release := make(chan struct{})
	handler := HandlerFunc(func(ctx context.Context, req *Message) (*Message, error) {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil, nil
	})
	_, cli := pair(t, TransportTCP, PeerConfig{Handler: handler}, PeerConfig{})
	first := make(chan error, 1)
	go func() {
		_, err := cli.Call(context.Background(), &Message{Mod: "x", SessionID: "same"})
		first <- err
	}()
	waitPending(t, cli.Peer, 1)
	if _, err := cli.Call(context.Background(), &Message{Mod: "x", SessionID: "same"}); !errors.Is(err, ErrDuplicateSession) || !errors.Is(err, ErrNotSent) {
		t.Fatalf("second call = %v; want ErrDuplicateSession and ErrNotSent", err)
	}
	close(release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
}

// waitPending waits until p has n calls waiting for a response.
func waitPending(t *testing.T, p *Peer, n int) {
	t.Helper()
	deadline := time.Now().Add(hangTimeout)
	for {
		p.mu.Lock()
		got := len(p.pending)
		p.mu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d calls pending; want %d", got, n)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestPeerCallTimeoutAndLateResponse(t *testing.T) {
	release := make(chan struct{})
	answered := make(chan struct{}, 1)
	mux := echoMux("server")
	mux.HandleFunc("slow", func(ctx context.Context, req *Message) (*Message, error) {
		select {
		case <-release:
		case <-ctx.Done():
		}
		defer func() { answered <- struct{}{} }()
		return nil, nil
	})
	// PeerConfig.CallTimeout ends a call that gets no answer.
	never := HandlerFunc(func(ctx context.Context, req *Message) (*Message, error) {
		<-ctx.Done()
		return nil, nil
	})
	_, quick := pair(t, TransportTCP, PeerConfig{Handler: never}, PeerConfig{CallTimeout: 50 * time.Millisecond})
	_, err := quick.Call(context.Background(), NewRequest("slow"))
	if !errors.Is(err, ErrNoResponse) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Call = %v; want ErrNoResponse and DeadlineExceeded", err)
	}

	// So does the caller's deadline; the answer that comes later is
	// dropped and the peer goes on.
	_, cli := pair(t, TransportTCP, PeerConfig{Handler: mux}, PeerConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req := NewRequest("slow")
	if _, err := cli.Call(ctx, req); !errors.Is(err, ErrNoResponse) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Call = %v; want ErrNoResponse and DeadlineExceeded", err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	if _, err := cli.Call(ctx, NewRequest("slow")); !errors.Is(err, ErrNotSent) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Call with a cancelled ctx = %v; want ErrNotSent", err)
	}
	close(release)
	<-answered // the late response is on its way and must be dropped
	after := NewRequest(ModSendUserCommand)
	after.CommandValue = "after"
	resp, err := cli.Call(context.Background(), after)
	if err != nil || resp.CommandValue != "after" {
		t.Fatalf("call after a late response = %s, %v", summary(resp), err)
	}
	waitPending(t, cli.Peer, 0)
}

// TestPeerConnectionLoss: calls waiting for a response fail with
// ErrNoResponse, calls that never got to write fail with ErrNotSent, and
// Run reports the end.
func TestPeerConnectionLoss(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			started := make(chan struct{}, 8)
			handler := HandlerFunc(func(ctx context.Context, req *Message) (*Message, error) {
				started <- struct{}{}
				<-ctx.Done()
				return nil, ctx.Err()
			})
			srv, cli := pair(t, tr, PeerConfig{Handler: handler}, PeerConfig{})
			errs := make(chan error, 3)
			for range 3 {
				go func() {
					_, err := cli.Call(context.Background(), NewRequest("hang"))
					errs <- err
				}()
			}
			for range 3 {
				<-started
			}
			srv.Close() // the server side goes away
			for range 3 {
				err := <-errs
				if !errors.Is(err, ErrNoResponse) || errors.Is(err, ErrNotSent) {
					t.Errorf("in-flight call = %v; want ErrNoResponse", err)
				}
			}
			if err := cli.wait(t); err == nil || errors.Is(err, ErrClosed) {
				t.Errorf("client Run = %v; want the read error", err)
			}
			if err := srv.wait(t); err != nil {
				t.Errorf("server Run after Close = %v; want nil", err)
			}
			select {
			case <-cli.Done():
			default:
				t.Error("Done not closed")
			}
			if _, err := cli.Call(context.Background(), NewRequest("x")); !errors.Is(err, ErrNotSent) {
				t.Errorf("call after the loss = %v; want ErrNotSent", err)
			}
		})
	}
}

// TestPeerNotSentWhileWaitingToWrite: a call queued behind a write that
// the other side never reads is reported ErrNotSent when the connection
// dies; the call whose bytes were going out is ErrNoResponse.
func TestPeerNotSentWhileWaitingToWrite(t *testing.T) {
	addr, accept := rawServer(t)
	p := dialPeer(t, addr, PeerConfig{})
	raw := accept()
	big := &Message{Mod: ModUploadAccessInfo, AccessInfo: &AccessInfo{PersonID: strings.Repeat("x", 32<<20)}}
	bigErr := make(chan error, 1)
	go func() {
		_, err := p.Call(context.Background(), big)
		bigErr <- err
	}()
	// Read one byte: the big request is going out, and with the rest
	// unread its write blocks, holding the write lock.
	raw.SetReadDeadline(time.Now().Add(hangTimeout))
	if _, err := io.ReadFull(raw, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	smallErr := make(chan error, 1)
	go func() {
		_, err := p.Call(context.Background(), NewRequest("small"))
		smallErr <- err
	}()
	waitPending(t, p.Peer, 2)
	p.Close()
	if err := <-smallErr; !errors.Is(err, ErrNotSent) {
		t.Errorf("queued call = %v; want ErrNotSent", err)
	}
	if err := <-bigErr; !errors.Is(err, ErrNoResponse) {
		t.Errorf("call being written = %v; want ErrNoResponse", err)
	}
}

func TestPeerRunContext(t *testing.T) {
	addr, accept := rawServer(t)
	c, err := Dial(context.Background(), DialConfig{Address: addr})
	if err != nil {
		t.Fatal(err)
	}
	accept()
	ctx, cancel := context.WithCancel(context.Background())
	p := startPeer(t, ctx, c, PeerConfig{})
	callErr := make(chan error, 1)
	go func() {
		_, err := p.Call(context.Background(), NewRequest("x"))
		callErr <- err
	}()
	waitPending(t, p.Peer, 1)
	cancel()
	if err := p.wait(t); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v; want context.Canceled", err)
	}
	if err := <-callErr; !errors.Is(err, ErrNoResponse) && !errors.Is(err, ErrNotSent) {
		t.Fatalf("call = %v", err)
	}
	if err := p.Run(context.Background()); err == nil {
		t.Fatal("a second Run succeeded")
	}
}

func TestPeerMaxInFlight(t *testing.T) {
	var running, peak atomic.Int32
	gate := make(chan struct{})
	handler := HandlerFunc(func(ctx context.Context, req *Message) (*Message, error) {
		n := running.Add(1)
		defer running.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		select {
		case <-gate:
		case <-ctx.Done():
		}
		return nil, nil
	})
	_, cli := pair(t, TransportTCP, PeerConfig{Handler: handler, MaxInFlight: 3}, PeerConfig{})
	errs := make(chan error, 10)
	for range 10 {
		go func() {
			_, err := cli.Call(context.Background(), NewRequest("x"))
			errs <- err
		}()
	}
	deadline := time.Now().Add(hangTimeout)
	for peak.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatal("handlers never started")
		}
		time.Sleep(time.Millisecond)
	}
	close(gate)
	for range 10 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if p := peak.Load(); p != 3 {
		t.Fatalf("peak concurrency %d; want 3", p)
	}
}

// TestPeerOversizedMessage: a message over the limit ends the connection.
func TestPeerOversizedMessage(t *testing.T) {
	addr, accept := rawServer(t)
	c, err := Dial(context.Background(), DialConfig{Address: addr, MaxMessageSize: 1024})
	if err != nil {
		t.Fatal(err)
	}
	raw := accept()
	p := startPeer(t, context.Background(), c, PeerConfig{})
	go io.WriteString(raw, `{"mod":"x","session_id":"s","pad":"`+strings.Repeat("a", 4096)+`"}`)
	if err := p.wait(t); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Run = %v; want ErrTooLarge", err)
	}
}

// TestWSOversizedMessage: over WebSocket too, a message over the limit
// ends the connection with ErrTooLarge.
func TestWSOversizedMessage(t *testing.T) {
	ctx := context.Background()
	ln, err := Listen(ctx, ListenConfig{Address: "127.0.0.1:0", Transport: TransportWS, MaxMessageSize: 1024})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	cc, err := Dial(ctx, DialConfig{Address: ln.Addr().String(), Transport: TransportWS})
	if err != nil {
		t.Fatal(err)
	}
	sc := <-accepted
	srv := startPeer(t, ctx, sc, PeerConfig{Handler: echoMux("server")})
	cli := startPeer(t, ctx, cc, PeerConfig{Handler: echoMux("client")})
	// Under the limit works; over it ends the server's side.
	if _, err := cli.Call(ctx, NewRequest(ModSendUserCommand)); err != nil {
		t.Fatal(err)
	}
	big := NewRequest(ModSendUserCommand)
	big.CommandValue = strings.Repeat("x", 4096)
	if _, err := cli.Call(ctx, big); !errors.Is(err, ErrNoResponse) {
		t.Fatalf("oversized call = %v; want ErrNoResponse", err)
	}
	if err := srv.wait(t); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("server Run = %v; want ErrTooLarge", err)
	}
}

// TestPeerNoHandlerAndClose: without a Handler every request is answered
// "unsupported mod"; Close is idempotent; Err and Done report the end.
func TestPeerNoHandlerAndClose(t *testing.T) {
	srv, cli := pair(t, TransportTCP, PeerConfig{}, PeerConfig{})
	resp, err := cli.Call(context.Background(), NewRequest(ModGetDeviceInfo))
	var re *RemoteError
	if !errors.As(err, &re) || re.Code != CodeError || resp.Text != `unsupported mod "get_device_info"` {
		t.Fatalf("Call = %s, %v", summary(resp), err)
	}
	if err := cli.Err(); err != nil {
		t.Fatalf("Err while running = %v", err)
	}
	srv.Close()
	srv.Close()
	<-srv.Done()
	if err := srv.wait(t); err != nil || srv.Err() != nil {
		t.Fatalf("Run after Close = %v, Err = %v; want nil", err, srv.Err())
	}
	<-cli.Done()
	if err := cli.wait(t); err == nil || cli.Err() != err {
		t.Fatalf("client Run = %v, Err = %v; want the read error from both", err, cli.Err())
	}
}

// TestPeerBusy: with every handler busy and the queue full, a request is
// answered "busy" at once, and the reader keeps reading: a handler that
// waits for a Call on its own Peer still gets its response.
func TestPeerBusy(t *testing.T) {
	var srvPeer atomic.Pointer[Peer]
	release := make(chan struct{})
	entered := make(chan struct{}, 8)
	handler := HandlerFunc(func(ctx context.Context, req *Message) (*Message, error) {
		if req.Mod != "wait-for-call" {
			entered <- struct{}{}
			select {
			case <-release:
			case <-ctx.Done():
			}
			return nil, nil
		}
		// Ask the other side something while answering it.
		entered <- struct{}{}
		resp, err := srvPeer.Load().Call(ctx, NewRequest(ModSendUserCommand))
		if err != nil {
			return nil, err
		}
		return req.Reply(CodeOK, "asked: "+resp.Text), nil
	})
	srv, cli := pair(t, TransportTCP, PeerConfig{Handler: handler, MaxInFlight: 2, MaxQueued: 1}, PeerConfig{Handler: echoMux("client")})
	srvPeer.Store(srv.Peer)

	type res struct {
		resp *Message
		err  error
	}
	call := func(mod string) chan res {
		ch := make(chan res, 1)
		go func() {
			resp, err := cli.Call(context.Background(), NewRequest(mod))
			ch <- res{resp, err}
		}()
		return ch
	}
	first := call("block")
	<-entered
	waiting := call("wait-for-call") // the second handler: it calls back
	<-entered
	if r := <-waiting; r.err != nil || r.resp.Text != "asked: client" {
		t.Fatalf("handler calling its own peer = %s, %v", summary(r.resp), r.err)
	}
	second := call("block")
	<-entered
	queued := call("block") // both workers busy: waits in the queue
	waitQueued(t, srv.Peer, 1)
	busy := call("block") // queue full
	r := <-busy
	var re *RemoteError
	if !errors.As(r.err, &re) || re.Code != CodeError || !strings.HasPrefix(re.Message, "busy: 2 requests in progress and 1 waiting") {
		t.Fatalf("over the limit = %s, %v; want busy", summary(r.resp), r.err)
	}
	close(release)
	for _, ch := range []chan res{first, second, queued} {
		if r := <-ch; r.err != nil {
			t.Fatalf("blocked call = %v", r.err)
		}
	}
}

// waitQueued waits until n requests wait for a worker of p.
func waitQueued(t *testing.T, p *Peer, n int) {
	t.Helper()
	deadline := time.Now().Add(hangTimeout)
	for len(p.jobs) != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d requests queued; want %d", len(p.jobs), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// Package servertest runs a termserver for tests: the protocol server and
// its admin endpoint on loopback, a database in a temp dir, logs in the
// test log; and fake terminals to drive it.
//
// Import rule: for tests only; it imports protocol and its siblings server
// and admin.
package servertest

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"termagent/cmd/termserver/internal/admin"
	"termagent/cmd/termserver/internal/server"
	"termagent/protocol"
)

// Server is a server.Server running on loopback with its admin endpoint.
type Server struct {
	*server.Server
	Admin     string // admin endpoint host:port
	TokenFile string // its admin token's file
	Token     string
}

// Client returns an admin client of s.
func (s *Server) Client() *admin.Client {
	ac := admin.NewClient(s.Admin)
	ac.Token = s.Token
	return ac
}

// Start runs a server on 127.0.0.1:0 (TCP and WebSocket, unless cfg says
// otherwise) with its database in a temp dir, and its admin endpoint; both
// stop at the test's end.
func Start(t testing.TB, cfg server.Config) *Server {
	t.Helper()
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	if cfg.WSListen == "" {
		cfg.WSListen = "127.0.0.1:0"
	}
	if cfg.DB == "" {
		cfg.DB = filepath.Join(t.TempDir(), "server.db")
	}
	cfg.Logger = zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel)
	ctx, cancel := context.WithCancel(context.Background())
	s, err := server.New(ctx, cfg)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	ln, err := admin.Listen("127.0.0.1:0")
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	token, err := admin.NewToken()
	tokenFile := filepath.Join(t.TempDir(), "admin.token")
	if err == nil {
		err = admin.WriteToken(tokenFile, token)
	}
	if err != nil {
		cancel()
		ln.Close()
		t.Fatal(err)
	}
	done := make(chan error, 2)
	go func() { done <- s.Run(ctx) }()
	go func() { done <- admin.Serve(ctx, s, ln, token) }()
	t.Cleanup(func() {
		cancel()
		for range 2 {
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("server stopped with %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("server did not stop within 30 s")
			}
		}
	})
	return &Server{Server: s, Admin: ln.Addr().String(), TokenFile: tokenFile, Token: token}
}

// WaitFor polls cond until it holds, failing the test after 30 s (a hang,
// not a speed limit).
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// Terminal connects a fake terminal to addr: a protocol.Peer that answers
// get_device_info with uuid (or -1 when uuid is ""), and whatever the
// handlers add to its Mux. The precise instrument for fault tests; it is
// closed at the test's end.
func Terminal(t testing.TB, addr, transport, uuid string, handlers ...func(*protocol.Mux)) *protocol.Peer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := protocol.Dial(ctx, protocol.DialConfig{Address: addr, Transport: transport})
	if err != nil {
		t.Fatal(err)
	}
	mux := protocol.NewMux()
	mux.HandleFunc(protocol.ModGetDeviceInfo, func(ctx context.Context, req *protocol.Message) (*protocol.Message, error) {
		if uuid == "" {
			return nil, errors.New("no device info here")
		}
		resp := req.Reply(protocol.CodeOK, "")
		resp.DeviceInfo = &protocol.DeviceInfo{UUID: uuid, Address: "test bench", SoftwareVersion: "fake"}
		return resp, nil
	})
	for _, h := range handlers {
		h(mux)
	}
	p := protocol.NewPeer(conn, protocol.PeerConfig{Handler: mux, CallTimeout: 20 * time.Second})
	runDone := make(chan struct{})
	go func() { p.Run(context.Background()); close(runDone) }()
	t.Cleanup(func() { p.Close(); <-runDone })
	return p
}

// Upload returns an upload_access_info request of person with the given
// session_id (a card swipe, in).
func Upload(session, person string) *protocol.Message {
	req := protocol.NewRequest(protocol.ModUploadAccessInfo)
	req.SessionID = session
	req.AccessInfo = &protocol.AccessInfo{PersonID: person, Time: "20260101080000", CardNumber: "0012345678",
		OpenDoorType: 1, InOutType: 1}
	return req
}

// Count returns how many records s stores.
func Count(t testing.TB, s *Server) int {
	t.Helper()
	n, err := s.Records().Count(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	return n
}

package main

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"termagent/protocol"
)

// testServer is a Server running on loopback with its admin endpoint.
type testServer struct {
	*Server
	admin     string // admin endpoint host:port
	tokenFile string // its admin token's file
	token     string
}

// cliArgs returns the global flags that point the CLI at s, then args.
func (s *testServer) cliArgs(args ...string) []string {
	return append([]string{"-admin", s.admin, "-token-file", s.tokenFile}, args...)
}

// client returns an admin client of s.
func (s *testServer) client() *adminClient {
	ac := newAdminClient(s.admin)
	ac.token = s.token
	return ac
}

// startServer runs a server on 127.0.0.1:0 (TCP and WebSocket) with its
// database in a temp dir; it stops at the test's end.
func startServer(t *testing.T, cfg Config) *testServer {
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
	s, err := NewServer(ctx, cfg)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	ln, err := listenAdmin("127.0.0.1:0")
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	token, err := newToken()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	tokenFile := filepath.Join(t.TempDir(), "admin.token")
	if err := writeToken(tokenFile, token); err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 2)
	go func() { done <- s.Run(ctx) }()
	go func() { done <- serveAdmin(ctx, s, ln, token) }()
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
	return &testServer{Server: s, admin: ln.Addr().String(), tokenFile: tokenFile, token: token}
}

// waitFor polls cond until it holds, failing the test after 30 s (a hang,
// not a speed limit).
func waitFor(t *testing.T, what string, cond func() bool) {
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

// fakeTerminal is a protocol.Peer client that answers get_device_info with
// uuid (or -1 when uuid is ""): the precise instrument for fault tests.
func fakeTerminal(t *testing.T, addr, transport, uuid string, handlers ...func(*protocol.Mux)) *protocol.Peer {
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

func uploadReq(session, person string) *protocol.Message {
	req := protocol.NewRequest(protocol.ModUploadAccessInfo)
	req.SessionID = session
	req.AccessInfo = &protocol.AccessInfo{PersonID: person, Time: "20260101080000", CardNumber: "0012345678",
		OpenDoorType: 1, InOutType: 1}
	return req
}

func count(t *testing.T, s *testServer) int {
	t.Helper()
	n, err := s.Records().Count(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestServer_storesAndDedupesUploads(t *testing.T) {
	for _, transport := range []string{protocol.TransportTCP, protocol.TransportWS} {
		t.Run(transport, func(t *testing.T) {
			s := startServer(t, Config{})
			p := fakeTerminal(t, s.Addr(transport), transport, "T-"+transport)
			ctx := context.Background()
			for range 2 { // the retry of an upload keeps its session_id
				if _, err := p.Call(ctx, uploadReq("s-1", "p1")); err != nil {
					t.Fatalf("upload: %v; want code 0 for the first copy and the duplicate", err)
				}
			}
			if _, err := p.Call(ctx, uploadReq("s-2", "p2")); err != nil {
				t.Fatal(err)
			}
			recs, err := s.Records().List(ctx, RecordFilter{})
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) != 2 || recs[0].SessionID != "s-1" || recs[1].PersonID != "p2" {
				t.Fatalf("records %+v; want s-1 once and s-2", recs)
			}
			if recs[0].Terminal != "T-"+transport || recs[0].CardNumber != "0012345678" || recs[0].OpenDoorType != 1 {
				t.Fatalf("record %+v: want it named by the terminal's uuid with its fields", recs[0])
			}
			if st := s.Stats(); st.Uploads != 3 || st.Stored != 2 || st.Duplicates != 1 {
				t.Fatalf("stats %+v; want 3 uploads, 2 stored, 1 duplicate", st)
			}
			ts := s.Terminals()
			if len(ts) != 1 || ts[0].UUID != "T-"+transport || ts[0].Transport != transport || ts[0].Duplicates != 1 {
				t.Fatalf("terminals %+v", ts)
			}
		})
	}
}

func TestServer_rejectsUploadWithoutBody(t *testing.T) {
	s := startServer(t, Config{})
	p := fakeTerminal(t, s.Addr("tcp"), "tcp", "T1")
	req := protocol.NewRequest(protocol.ModUploadAccessInfo)
	_, err := p.Call(context.Background(), req)
	var re *protocol.RemoteError
	if !errors.As(err, &re) || re.Code != protocol.CodeError {
		t.Fatalf("upload without access_info: %v; want code -1", err)
	}
	// A server-to-device mod sent to the server is refused, not crashed on.
	_, err = p.Call(context.Background(), protocol.NewRequest(protocol.ModDownloadPerson))
	if !errors.As(err, &re) {
		t.Fatalf("download_person sent to the server: %v; want a refusal", err)
	}
	if n := count(t, s); n != 0 {
		t.Fatalf("%d records stored from bad uploads", n)
	}
}

func TestServer_unidentifiedTerminalStillServed(t *testing.T) {
	s := startServer(t, Config{IdentifyWait: 5 * time.Second})
	p := fakeTerminal(t, s.Addr("tcp"), "tcp", "") // answers get_device_info -1
	if _, err := p.Call(context.Background(), uploadReq("s-1", "p1")); err != nil {
		t.Fatal(err)
	}
	recs, err := s.Records().List(context.Background(), RecordFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].Terminal != "" || recs[0].Remote == "" {
		t.Fatalf("records %+v; want one, with no uuid but the remote address", recs)
	}
	// It is reachable by its address, not by an empty name.
	if ts, err := s.find(recs[0].Remote); err != nil || len(ts) != 1 {
		t.Fatalf("find by address %s: %v, %v", recs[0].Remote, ts, err)
	}
	if _, err := s.find(""); !errors.Is(err, ErrNoTerminal) {
		t.Fatalf("find(\"\"): %v; want ErrNoTerminal", err)
	}
}

func TestFaults_failFraction(t *testing.T) {
	s := startServer(t, Config{Faults: Faults{FailUploads: 1}})
	p := fakeTerminal(t, s.Addr("tcp"), "tcp", "T1")
	ctx := context.Background()
	_, err := p.Call(ctx, uploadReq("s-1", "p1"))
	var re *protocol.RemoteError
	if !errors.As(err, &re) || re.Code != protocol.CodeError {
		t.Fatalf("upload with fail=1: %v; want code -1", err)
	}
	if n := count(t, s); n != 0 {
		t.Fatalf("a refused upload was stored (%d records)", n)
	}
	if err := s.SetFaults(Faults{FailUploads: 0.5}); err != nil {
		t.Fatal(err)
	}
	refused := 0
	const n = 400
	for i := range n {
		if _, err := p.Call(ctx, uploadReq("r-"+strconv.Itoa(i), "p")); err != nil {
			refused++
		}
	}
	// Binomial(400, 0.5): 5 standard deviations is ±50.
	if refused < 150 || refused > 250 {
		t.Fatalf("fail=0.5 refused %d of %d uploads", refused, n)
	}
	if got := count(t, s); got != n-refused {
		t.Fatalf("stored %d; want the %d accepted", got, n-refused)
	}
	if err := s.SetFaults(Faults{FailUploads: 1.5}); !errors.Is(err, ErrBadFaults) {
		t.Fatalf("fail=1.5: %v; want ErrBadFaults", err)
	}
}

func TestFaults_dropEveryStoresButDoesNotAnswer(t *testing.T) {
	s := startServer(t, Config{Faults: Faults{DropEvery: 2}, IdentifyWait: 5 * time.Second})
	p := fakeTerminal(t, s.Addr("tcp"), "tcp", "T1")
	ctx := context.Background()
	if _, err := p.Call(ctx, uploadReq("s-1", "p1")); err != nil {
		t.Fatalf("first request: %v", err)
	}
	_, err := p.Call(ctx, uploadReq("s-2", "p2"))
	if !errors.Is(err, protocol.ErrNoResponse) {
		t.Fatalf("second request with drop_every=2: %v; want ErrNoResponse", err)
	}
	select {
	case <-p.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("connection not closed after the dropped request")
	}
	if n := count(t, s); n != 2 {
		t.Fatalf("stored %d; want 2 (the dropped request is carried out, only its answer is lost)", n)
	}
	// The terminal reconnects and resends: a duplicate, answered 0.
	p2 := fakeTerminal(t, s.Addr("tcp"), "tcp", "T1")
	if _, err := p2.Call(ctx, uploadReq("s-2", "p2")); err != nil {
		t.Fatalf("resend after reconnect: %v", err)
	}
	if n, st := count(t, s), s.Stats(); n != 2 || st.Duplicates != 1 || st.Drops != 1 {
		t.Fatalf("records %d, stats %+v; want 2 records, 1 duplicate, 1 drop", n, st)
	}
}

func TestFaults_delayHoldsReplies(t *testing.T) {
	const delay = time.Second
	s := startServer(t, Config{Faults: Faults{Delay: delay}})
	p := fakeTerminal(t, s.Addr("tcp"), "tcp", "T1")
	start := time.Now()
	if _, err := p.Call(context.Background(), uploadReq("s-1", "p1")); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < delay {
		t.Fatalf("reply after %v; want at least the %v delay", el, delay)
	}
	// A caller whose timeout is shorter than the delay gets no response,
	// but the record is stored: the retry will be a duplicate.
	ctx, cancel := context.WithTimeout(context.Background(), delay/2)
	defer cancel()
	if _, err := p.Call(ctx, uploadReq("s-2", "p2")); !errors.Is(err, protocol.ErrNoResponse) {
		t.Fatalf("call shorter than the delay: %v; want ErrNoResponse", err)
	}
	waitFor(t, "the delayed record to be stored", func() bool { return count(t, s) == 2 })
}

func TestFaults_refuseCutsTerminalsOff(t *testing.T) {
	s := startServer(t, Config{})
	p := fakeTerminal(t, s.Addr("tcp"), "tcp", "T1")
	waitFor(t, "the terminal to be identified", func() bool {
		ts := s.Terminals()
		return len(ts) == 1 && ts[0].UUID == "T1"
	})
	if err := s.SetFaults(Faults{Refuse: true}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("refuse did not close the connected terminal")
	}
	// A new connection is accepted and closed at once.
	c, err := net.Dial("tcp", s.Addr("tcp"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("read on a refused connection succeeded; want it closed")
	}
	if err := s.SetFaults(Faults{}); err != nil {
		t.Fatal(err)
	}
	p2 := fakeTerminal(t, s.Addr("tcp"), "tcp", "T1")
	if _, err := p2.Call(context.Background(), uploadReq("s-1", "p1")); err != nil {
		t.Fatalf("upload after the cut: %v", err)
	}
}

func TestFaults_parse(t *testing.T) {
	f, err := ParseFaults(Faults{DropEvery: 3}, map[string][]string{"fail": {"0.25"}, "delay": {"150ms"}})
	if err != nil {
		t.Fatal(err)
	}
	if f != (Faults{FailUploads: 0.25, Delay: 150 * time.Millisecond, DropEvery: 3}) {
		t.Fatalf("parsed %+v", f)
	}
	back, err := ParseFaults(Faults{}, f.Values())
	if err != nil || back != f {
		t.Fatalf("round trip: %+v, %v; want %+v", back, err, f)
	}
	for _, bad := range []map[string][]string{
		{"fail": {"x"}}, {"fail": {"-0.1"}}, {"fail": {"NaN"}}, {"delay": {"5"}}, {"delay": {"2h"}},
		{"drop_every": {"-1"}}, {"refuse": {"maybe"}},
	} {
		if _, err := ParseFaults(Faults{}, bad); !errors.Is(err, ErrBadFaults) {
			t.Errorf("ParseFaults(%v) = %v; want ErrBadFaults", bad, err)
		}
	}
}

func TestServer_reconnectReplacesOlderConnection(t *testing.T) {
	s := startServer(t, Config{})
	p1 := fakeTerminal(t, s.Addr("tcp"), "tcp", "T1")
	waitFor(t, "first connection identified", func() bool { return len(s.Terminals()) == 1 && s.Terminals()[0].UUID == "T1" })
	fakeTerminal(t, s.Addr("tcp"), "tcp", "T1")
	select {
	case <-p1.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("the older connection of T1 was not closed")
	}
	waitFor(t, "one connection of T1", func() bool { return len(s.Terminals()) == 1 })
}

package server_test

import (
	"context"
	"errors"
	"net"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"termagent/cmd/termserver/internal/faults"
	"termagent/cmd/termserver/internal/recordstore"
	"termagent/cmd/termserver/internal/server"
	"termagent/cmd/termserver/internal/servertest"
	"termagent/protocol"
)

func TestServer_storesAndDedupesUploads(t *testing.T) {
	for _, transport := range []string{protocol.TransportTCP, protocol.TransportWS} {
		t.Run(transport, func(t *testing.T) {
			s := servertest.Start(t, server.Config{})
			p := servertest.Terminal(t, s.Addr(transport), transport, "T-"+transport)
			ctx := context.Background()
			for range 2 { // the retry of an upload keeps its session_id
				if _, err := p.Call(ctx, servertest.Upload("s-1", "p1")); err != nil {
					t.Fatalf("upload: %v; want code 0 for the first copy and the duplicate", err)
				}
			}
			if _, err := p.Call(ctx, servertest.Upload("s-2", "p2")); err != nil {
				t.Fatal(err)
			}
			recs, err := s.Records().List(ctx, recordstore.Filter{})
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
	s := servertest.Start(t, server.Config{})
	p := servertest.Terminal(t, s.Addr("tcp"), "tcp", "T1")
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
	if n := servertest.Count(t, s); n != 0 {
		t.Fatalf("%d records stored from bad uploads", n)
	}
}

func TestServer_unidentifiedTerminalStillServed(t *testing.T) {
	s := servertest.Start(t, server.Config{IdentifyWait: 5 * time.Second})
	p := servertest.Terminal(t, s.Addr("tcp"), "tcp", "") // answers get_device_info -1
	if _, err := p.Call(context.Background(), servertest.Upload("s-1", "p1")); err != nil {
		t.Fatal(err)
	}
	recs, err := s.Records().List(context.Background(), recordstore.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].Terminal != "" || recs[0].Remote == "" {
		t.Fatalf("records %+v; want one, with no uuid but the remote address", recs)
	}
	// It is reachable by its address, not by an empty name.
	info := protocol.NewRequest(protocol.ModGetDeviceInfo)
	if res, err := s.Call(context.Background(), recs[0].Remote, info); err != nil || len(res) != 1 || res[0].Terminal != recs[0].Remote {
		t.Fatalf("call by address %s: %+v, %v", recs[0].Remote, res, err)
	}
	if _, err := s.Call(context.Background(), "", info); !errors.Is(err, server.ErrNoTerminal) {
		t.Fatalf("call to \"\": %v; want ErrNoTerminal", err)
	}
}

func TestFaults_failFraction(t *testing.T) {
	s := servertest.Start(t, server.Config{Faults: faults.Config{FailUploads: 1}})
	p := servertest.Terminal(t, s.Addr("tcp"), "tcp", "T1")
	ctx := context.Background()
	_, err := p.Call(ctx, servertest.Upload("s-1", "p1"))
	var re *protocol.RemoteError
	if !errors.As(err, &re) || re.Code != protocol.CodeError {
		t.Fatalf("upload with fail=1: %v; want code -1", err)
	}
	if n := servertest.Count(t, s); n != 0 {
		t.Fatalf("a refused upload was stored (%d records)", n)
	}
	if err := s.SetFaults(faults.Config{FailUploads: 0.5}); err != nil {
		t.Fatal(err)
	}
	refused := 0
	const n = 400
	for i := range n {
		if _, err := p.Call(ctx, servertest.Upload("r-"+strconv.Itoa(i), "p")); err != nil {
			refused++
		}
	}
	// Binomial(400, 0.5): 5 standard deviations is ±50.
	if refused < 150 || refused > 250 {
		t.Fatalf("fail=0.5 refused %d of %d uploads", refused, n)
	}
	if got := servertest.Count(t, s); got != n-refused {
		t.Fatalf("stored %d; want the %d accepted", got, n-refused)
	}
	if err := s.SetFaults(faults.Config{FailUploads: 1.5}); !errors.Is(err, faults.ErrInvalid) {
		t.Fatalf("fail=1.5: %v; want faults.ErrInvalid", err)
	}
}

func TestFaults_dropEveryStoresButDoesNotAnswer(t *testing.T) {
	s := servertest.Start(t, server.Config{Faults: faults.Config{DropEvery: 2}, IdentifyWait: 5 * time.Second})
	p := servertest.Terminal(t, s.Addr("tcp"), "tcp", "T1")
	ctx := context.Background()
	if _, err := p.Call(ctx, servertest.Upload("s-1", "p1")); err != nil {
		t.Fatalf("first request: %v", err)
	}
	_, err := p.Call(ctx, servertest.Upload("s-2", "p2"))
	if !errors.Is(err, protocol.ErrNoResponse) {
		t.Fatalf("second request with drop_every=2: %v; want ErrNoResponse", err)
	}
	select {
	case <-p.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("connection not closed after the dropped request")
	}
	if n := servertest.Count(t, s); n != 2 {
		t.Fatalf("stored %d; want 2 (the dropped request is carried out, only its answer is lost)", n)
	}
	// The terminal reconnects and resends: a duplicate, answered 0.
	p2 := servertest.Terminal(t, s.Addr("tcp"), "tcp", "T1")
	if _, err := p2.Call(ctx, servertest.Upload("s-2", "p2")); err != nil {
		t.Fatalf("resend after reconnect: %v", err)
	}
	if n, st := servertest.Count(t, s), s.Stats(); n != 2 || st.Duplicates != 1 || st.Drops != 1 {
		t.Fatalf("records %d, stats %+v; want 2 records, 1 duplicate, 1 drop", n, st)
	}
}

func TestFaults_delayHoldsReplies(t *testing.T) {
	const delay = time.Second
	s := servertest.Start(t, server.Config{Faults: faults.Config{Delay: delay}})
	p := servertest.Terminal(t, s.Addr("tcp"), "tcp", "T1")
	start := time.Now()
	if _, err := p.Call(context.Background(), servertest.Upload("s-1", "p1")); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < delay {
		t.Fatalf("reply after %v; want at least the %v delay", el, delay)
	}
	// A caller whose timeout is shorter than the delay gets no response,
	// but the record is stored: the retry will be a duplicate.
	ctx, cancel := context.WithTimeout(context.Background(), delay/2)
	defer cancel()
	if _, err := p.Call(ctx, servertest.Upload("s-2", "p2")); !errors.Is(err, protocol.ErrNoResponse) {
		t.Fatalf("call shorter than the delay: %v; want ErrNoResponse", err)
	}
	servertest.WaitFor(t, "the delayed record to be stored", func() bool { return servertest.Count(t, s) == 2 })
}

func TestFaults_refuseCutsTerminalsOff(t *testing.T) {
	s := servertest.Start(t, server.Config{})
	p := servertest.Terminal(t, s.Addr("tcp"), "tcp", "T1")
	servertest.WaitFor(t, "the terminal to be identified", func() bool {
		ts := s.Terminals()
		return len(ts) == 1 && ts[0].UUID == "T1"
	})
	if err := s.SetFaults(faults.Config{Refuse: true}); err != nil {
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
	if err := s.SetFaults(faults.Config{}); err != nil {
		t.Fatal(err)
	}
	p2 := servertest.Terminal(t, s.Addr("tcp"), "tcp", "T1")
	if _, err := p2.Call(context.Background(), servertest.Upload("s-1", "p1")); err != nil {
		t.Fatalf("upload after the cut: %v", err)
	}
}

func TestServer_reconnectReplacesOlderConnection(t *testing.T) {
	s := servertest.Start(t, server.Config{})
	p1 := servertest.Terminal(t, s.Addr("tcp"), "tcp", "T1")
	servertest.WaitFor(t, "first connection identified", func() bool { return len(s.Terminals()) == 1 && s.Terminals()[0].UUID == "T1" })
	servertest.Terminal(t, s.Addr("tcp"), "tcp", "T1")
	select {
	case <-p1.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("the older connection of T1 was not closed")
	}
	servertest.WaitFor(t, "one connection of T1", func() bool { return len(s.Terminals()) == 1 })
}

// TestServer_keepsNamesOfPushedPersons: after a download_person that a
// terminal answered 0, records of that person carry the name; a refused
// push teaches nothing.
func TestServer_keepsNamesOfPushedPersons(t *testing.T) {
	s := servertest.Start(t, server.Config{})
	var refuse atomic.Bool
	p := servertest.Terminal(t, s.Addr("tcp"), "tcp", "T1", func(mux *protocol.Mux) {
		mux.HandleFunc(protocol.ModDownloadPerson, func(ctx context.Context, req *protocol.Message) (*protocol.Message, error) {
			if refuse.Load() {
				return nil, errors.New("no room")
			}
			return req.Reply(protocol.CodeOK, ""), nil
		})
	})
	servertest.WaitFor(t, "the terminal to be identified", func() bool {
		ts := s.Terminals()
		return len(ts) == 1 && ts[0].UUID == "T1"
	})
	ctx := context.Background()
	push := func(id, name string) {
		t.Helper()
		req := protocol.NewRequest(protocol.ModDownloadPerson)
		req.PersonInfo = &protocol.PersonInfo{PersonID: id, PersonName: name}
		if _, err := s.Call(ctx, "T1", req); err != nil {
			t.Fatal(err)
		}
	}
	push("p1", "Ada")
	refuse.Store(true)
	push("p2", "Bob")
	for _, id := range []string{"p1", "p2"} {
		if _, err := p.Call(ctx, servertest.Upload("s-"+id, id)); err != nil {
			t.Fatal(err)
		}
	}
	recs, err := s.Records().List(ctx, recordstore.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs[0].PersonName != "Ada" || recs[1].PersonName != "" {
		t.Fatalf("records %+v; want p1 named Ada, p2 unnamed", recs)
	}
}

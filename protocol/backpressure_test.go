package protocol

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"testing/synctest"
	"time"
)

// TestPeerBurstEveryRequestAnswered pipelines a burst far beyond the
// Peer's limits from a side that reads its answers: every request gets
// exactly one response (an answer or "busy"), none is dropped.
func TestPeerBurstEveryRequestAnswered(t *testing.T) {
	const n = 5000
	addr, accept := rawServer(t)
	release := make(chan struct{})
	handler := HandlerFunc(func(ctx context.Context, req *Message) (*Message, error) {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil, nil
	})
	dialPeer(t, addr, PeerConfig{Handler: handler, MaxInFlight: 2, MaxQueued: 2})
	raw := accept()
	go func() {
		w := bufio.NewWriter(raw)
		for i := range n {
			fmt.Fprintf(w, `{"mod":"get_device_info","session_id":"s%d","type":1}`+"\n", i)
		}
		w.Flush()
	}()
	in := NewReader(raw, 0)
	seen := make(map[string]bool, n)
	busy := 0
	for len(seen) < n {
		if len(seen) == n-4 {
			close(release) // the four held by the handlers answer now
		}
		raw.SetReadDeadline(time.Now().Add(hangTimeout))
		b, err := in.ReadMessage()
		if err != nil {
			t.Fatalf("after %d responses (%d busy): %v", len(seen), busy, err)
		}
		m, err := Decode(b)
		if err != nil || !m.HasCode {
			t.Fatalf("response %s: %v", b, err)
		}
		if seen[m.SessionID] {
			t.Fatalf("two responses to %s", m.SessionID)
		}
		seen[m.SessionID] = true
		if m.Code != CodeOK {
			busy++
		}
	}
	t.Logf("%d requests: %d answered busy, %d carried out", n, busy, n-busy)
}

// TestPeerConsecutiveCallTimeouts: a side that takes requests and never
// answers them makes MaxCallTimeouts calls in a row time out, and the Peer
// stops with ErrUnresponsive instead of holding the link.
func TestPeerConsecutiveCallTimeouts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := net.Pipe()
		defer b.Close()
		go func() { // the silent side reads everything and answers nothing
			buf := make([]byte, 4096)
			for {
				if _, err := b.Read(buf); err != nil {
					return
				}
			}
		}()
		p := NewPeer(NewStreamConn(a, 0), PeerConfig{CallTimeout: 30 * time.Second, MaxCallTimeouts: 2})
		done := make(chan error, 1)
		go func() { done <- p.Run(context.Background()) }()
		start := time.Now()
		for i := range 2 {
			if _, err := p.Call(context.Background(), NewRequest("x")); !errors.Is(err, ErrNoResponse) {
				t.Fatalf("call %d = %v; want ErrNoResponse", i, err)
			}
		}
		err := <-done
		if !errors.Is(err, ErrUnresponsive) {
			t.Fatalf("Run = %v; want ErrUnresponsive", err)
		}
		if d := time.Since(start); d != 60*time.Second {
			t.Fatalf("link dropped after %v; want 60s (two call timeouts)", d)
		}
	})
}

// A response in between resets the count: a peer that answers slowly
// but answers is never dropped.
func TestPeerCallTimeoutsResetByResponse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := net.Pipe()
		defer b.Close()
		p := NewPeer(NewStreamConn(a, 0), PeerConfig{CallTimeout: 30 * time.Second, MaxCallTimeouts: 2})
		go p.Run(context.Background())
		defer p.Close()
		// The other side answers every second request.
		go func() {
			r := NewReader(b, 0)
			for i := 0; ; i++ {
				msg, err := r.ReadMessage()
				if err != nil {
					return
				}
				if i%2 == 1 {
					m, _ := Decode(msg)
					WriteMessage(b, m.Reply(CodeOK, ""))
				}
			}
		}()
		for i := range 6 {
			_, err := p.Call(context.Background(), NewRequest("x"))
			if (i%2 == 0) != errors.Is(err, ErrNoResponse) {
				t.Fatalf("call %d = %v", i, err)
			}
		}
		if err := p.Err(); err != nil {
			t.Fatalf("peer stopped: %v", err)
		}
	})
}

// AfterReply runs its function once the response is on the wire: inside
// it the other side can already read the response (were it run before
// the write, the read below would wait for a write that never comes).
func TestPeerAfterReply(t *testing.T) {
	if AfterReply(context.Background(), func(error) {}) {
		t.Fatal("AfterReply outside a handler accepted")
	}
	addr, accept := rawServer(t)
	type outcome struct {
		err  error
		resp *Message
		rerr error
	}
	ran := make(chan outcome, 1)
	var raw net.Conn
	var in *Reader
	connected := make(chan struct{})
	handler := HandlerFunc(func(ctx context.Context, req *Message) (*Message, error) {
		<-connected
		ok := AfterReply(ctx, func(err error) {
			raw.SetReadDeadline(time.Now().Add(hangTimeout))
			b, rerr := in.ReadMessage()
			var m *Message
			if rerr == nil {
				m, rerr = Decode(b)
			}
			ran <- outcome{err, m, rerr}
		})
		if !ok {
			t.Error("AfterReply in a handler refused")
		}
		return req.Reply(CodeOK, "done"), nil
	})
	dialPeer(t, addr, PeerConfig{Handler: handler})
	raw = accept()
	in = NewReader(raw, 0)
	close(connected)
	if _, err := raw.Write([]byte(`{"mod":"m","session_id":"s1"}` + "\n")); err != nil {
		t.Fatal(err)
	}
	select {
	case o := <-ran:
		if o.err != nil || o.rerr != nil || o.resp.SessionID != "s1" || o.resp.Text != "done" {
			t.Fatalf("after the reply: err %v, read %v, response %s", o.err, o.rerr, summary(o.resp))
		}
	case <-time.After(hangTimeout):
		t.Fatal("the AfterReply function never ran")
	}
}

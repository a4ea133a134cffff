package agent_test

import (
	"context"
	"net"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"termagent/agent"
	"termagent/hal/haltest"
	"termagent/protocol"
	"termagent/store"
)

func TestListenModeAcceptsOnlyAllowedPeers(t *testing.T) {
	port, err := netListenerFactory{}.closedPort()
	if err != nil {
		t.Fatal(err)
	}
	db := openStore(t, store.Config{})
	startAgent(t, agent.Config{
		Device: agent.DeviceConfig{DevicePort: port},
		Link:   agent.LinkConfig{Listen: true, ListenHost: "127.0.0.1", AllowedPeers: []string{"127.0.0.1"}},
	}, agent.Parts{Store: db})
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))

	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	var conn protocol.Conn
	haltest.Eventually(t, "the agent to listen", func() bool {
		conn, err = protocol.Dial(ctx, protocol.DialConfig{Address: addr})
		return err == nil
	})
	peer := protocol.NewPeer(conn, protocol.PeerConfig{Logger: testLogger(t, "server")})
	go peer.Run(ctx)
	defer peer.Close()
	resp, code, msg := call(t, peer, req(protocol.ModGetDeviceInfo))
	if code != 0 || resp.DeviceInfo.DevicePort != port || resp.DeviceInfo.DeviceIP != "127.0.0.1" {
		t.Fatalf("get_device_info in listen mode: %d %q %+v", code, msg, resp.DeviceInfo)
	}
}

func TestListenModeRefusesOtherPeers(t *testing.T) {
	port, err := netListenerFactory{}.closedPort()
	if err != nil {
		t.Fatal(err)
	}
	db := openStore(t, store.Config{})
	startAgent(t, agent.Config{
		Device: agent.DeviceConfig{DevicePort: port},
		Link:   agent.LinkConfig{Listen: true, ListenHost: "127.0.0.1", AllowedPeers: []string{"10.20.30.0/24"}},
	}, agent.Parts{Store: db})
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	var c net.Conn
	haltest.Eventually(t, "the agent to listen", func() bool {
		c, err = net.Dial("tcp", addr)
		return err == nil
	})
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(waitFor))
	buf := make([]byte, 1)
	if n, err := c.Read(buf); err == nil {
		t.Fatalf("a refused peer read %d bytes", n)
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("a connection from an address not allowed was kept open")
	}
}

func TestWebSocketTransport(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ln, err := protocol.Listen(ctx, protocol.ListenConfig{Address: "127.0.0.1:0", Transport: protocol.TransportWS, Path: "/term"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	db := openStore(t, store.Config{})
	startAgent(t, agent.Config{Link: agent.LinkConfig{ServerAddress: ln.Addr().String(), Transport: "ws", Path: "/term"}},
		agent.Parts{Store: db})
	conn, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	peer := protocol.NewPeer(conn, protocol.PeerConfig{Handler: protocol.NewMux()})
	go peer.Run(ctx)
	defer peer.Close()
	if _, code, msg := call(t, peer, req(protocol.ModGetDeviceStatus)); code != 0 {
		t.Fatalf("get_device_status over ws: %d %q", code, msg)
	}
}

func TestHeartbeat(t *testing.T) {
	srv := newTestServer(t)
	var beats atomic.Int64
	got := make(chan struct{}, 16)
	srv.handle("heartbeat", func(ctx context.Context, req *protocol.Message) (*protocol.Message, error) {
		beats.Add(1)
		select {
		case got <- struct{}{}:
		default:
		}
		return nil, nil
	})
	db := openStore(t, store.Config{})
	startAgent(t, agent.Config{Link: agent.LinkConfig{ServerAddress: srv.addr,
		Heartbeat: agent.HeartbeatConfig{Mod: "heartbeat", Interval: 20 * time.Millisecond}}}, agent.Parts{Store: db})
	srv.peer()
	for range 3 {
		select {
		case <-got:
		case <-time.After(waitFor):
			t.Fatal("no heartbeat")
		}
	}
}

// A server that accepts and then says nothing, as on a half-open link: the
// read deadline (three heartbeat intervals) drops the link and the agent
// dials again.
func TestReadDeadlineDropsSilentLink(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepts := make(chan net.Conn, 8)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepts <- c // held open, never read or written
		}
	}()
	db := openStore(t, store.Config{})
	startAgent(t, agent.Config{Link: agent.LinkConfig{ServerAddress: ln.Addr().String(),
		// A call timeout longer than the test's deadline: only the read
		// deadline can drop this link in time.
		CallTimeout: 10 * time.Minute,
		Heartbeat:   agent.HeartbeatConfig{Mod: "heartbeat", Interval: 50 * time.Millisecond}}}, agent.Parts{Store: db})
	for i := range 2 {
		select {
		case c := <-accepts:
			defer c.Close()
		case <-time.After(waitFor):
			t.Fatalf("connection %d never came: the silent link was not dropped", i+1)
		}
	}
}

func TestOutboxNearlyFullEvent(t *testing.T) {
	srv := newTestServer(t)
	addr := srv.addr
	db := openStore(t, store.Config{OutboxCapacity: 10})
	c := newSimCard(t)
	addPerson(t, db, "p1", 1)
	a := startAgent(t, agent.Config{Link: agent.LinkConfig{ServerAddress: addr}}, agent.Parts{Store: db, Card: c.reader})
	srv.peer()
	srv.stop()
	haltest.Eventually(t, "the link to go down", func() bool { return a.Status(context.Background()).Link != agent.LinkUp })
	for range 8 {
		c.swipe(t, 1)
	}
	haltest.Eventually(t, "8 queued records", func() bool { return a.Status(context.Background()).OutboxDepth == 8 })
	back := listenTestServer(t, addr)
	back.peer()
	if ev := back.event(4); ev.CommandValue == "" {
		t.Error("nearly-full event without a value")
	}
}

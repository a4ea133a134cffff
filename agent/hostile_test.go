package agent_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"termagent/agent"
	"termagent/hal/haltest"
	"termagent/protocol"
	"termagent/store"
)

// The hostile-server suite: each test puts a real agent, with access
// records waiting in a real store, in front of a server that misbehaves
// in one way on loopback TCP, then gives it a well-behaved server. The
// agent must keep working (answer a probe), answer every request it read,
// lose no record (the outbox drains, every record reaches the good
// server) and keep its memory bounded (VmHWM printed in the row).

// hostileRig is an agent, its store and the raw server it dials.
type hostileRig struct {
	t       *testing.T
	srv     *rawServer
	db      *store.DB
	path    string
	a       *runningAgent
	records int

	mu        sync.Mutex
	delivered map[string]int // person_id of each record answered 0 → times
}

// records waiting in the outbox of each hostile test.
const hostileRecords = 20

func newHostileRig(t *testing.T, cfg agent.Config) *hostileRig {
	t.Helper()
	r := &hostileRig{t: t, srv: newRawServer(t), records: hostileRecords, delivered: map[string]int{}}
	r.path = filepath.Join(t.TempDir(), "termagent.db")
	db, err := store.Open(context.Background(), r.path, store.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	r.db = db
	enqueueRecords(t, db, "rec", r.records)
	cfg.Link.ServerAddress = r.srv.addr
	r.a = startAgent(t, cfg, agent.Parts{Store: db})
	return r
}

// goodAnswer answers as a well-behaved server: 0 to everything, and
// notes each record delivered.
func (r *hostileRig) goodAnswer(m *protocol.Message) (int, bool) {
	if m.Mod == protocol.ModUploadAccessInfo && m.AccessInfo != nil {
		r.mu.Lock()
		r.delivered[m.AccessInfo.PersonID]++
		r.mu.Unlock()
	}
	return 0, true
}

// good serves the agent's next connection as a well-behaved server.
func (r *hostileRig) good() *rawSide {
	r.t.Helper()
	return newAnsweringSide(r.t, r.srv.accept(r.t), r.goodAnswer)
}

// serveGood serves every later connection as a well-behaved server.
func (r *hostileRig) serveGood() {
	go func() {
		for c := range r.srv.conns {
			newAnsweringSide(r.t, c, r.goodAnswer)
		}
	}()
}

// drained waits until every record has been delivered and acknowledged:
// none lost, none left.
func (r *hostileRig) drained() {
	r.t.Helper()
	haltest.Eventually(r.t, "every record to be delivered", func() bool {
		st, err := r.db.OutboxStats(context.Background())
		r.mu.Lock()
		n := len(r.delivered)
		r.mu.Unlock()
		return err == nil && st.Depth == 0 && st.Quarantined == 0 && n == r.records
	})
}

// row logs the fault's table row, adding the records and the memory peak.
func (r *hostileRig) row(fault, does, figures string) {
	r.mu.Lock()
	n := len(r.delivered)
	r.mu.Unlock()
	r.t.Logf("FAULTROW\t%s\t%s\t%s", fault, does, fmt.Sprintf("%s; records %d/%d delivered, %s", figures, n, r.records, vmHWM()))
}

func TestHostileResetMidMessage(t *testing.T) {
	r := newHostileRig(t, agent.Config{})
	resets := 3
	if fullFaults() {
		resets = 30
	}
	for range resets {
		c := r.srv.accept(t)
		c.Write([]byte(`{"mod":"get_device_info","session_id":"cut","ty`))
		c.(*net.TCPConn).SetLinger(0) // RST, not FIN
		c.Close()
	}
	side := r.good()
	side.probe("after-reset")
	r.serveGood()
	r.drained()
	r.row("server resets the link mid-message", "drops the partial message, redials with backoff, resends the records",
		fmt.Sprintf("resets %d", resets))
}

// halfOpen: the server accepts and then never reads (or reads and never
// answers); the agent's unanswered uploads drop the link.
func halfOpen(t *testing.T, reads bool, fault string) {
	r := newHostileRig(t, agent.Config{Link: agent.LinkConfig{CallTimeout: 2 * time.Second}})
	c := r.srv.accept(t)
	start := time.Now()
	if reads {
		go func() {
			buf := make([]byte, 4096)
			for {
				if _, err := c.Read(buf); err != nil {
					return
				}
			}
		}()
	}
	// The agent drops the link and dials again.
	side := r.good()
	detect := time.Since(start)
	side.probe("after-half-open")
	r.serveGood()
	r.drained()
	r.row(fault, "3 unanswered uploads in a row (CallTimeout each) drop the link; redials; resends",
		fmt.Sprintf("call timeout 2s, detect %v", detect.Round(10*time.Millisecond)))
}

func TestHostileHalfOpenNeverReads(t *testing.T) {
	halfOpen(t, false, "half-open: server accepts, never reads")
}

func TestHostileHalfOpenNeverAnswers(t *testing.T) {
	halfOpen(t, true, "half-open: server reads, never answers")
}

// sameLink sends junk on a working link, then a probe: the junk is
// skipped (logged) and the link stays up.
func sameLink(t *testing.T, fault, does string, junk []byte) {
	r := newHostileRig(t, agent.Config{})
	side := r.good()
	if err := side.send(junk); err != nil {
		t.Fatalf("send: %v", err)
	}
	side.probe("after-junk")
	r.serveGood()
	r.drained()
	select {
	case <-side.done:
		t.Fatal("the agent dropped the link over skippable input")
	default:
	}
	r.row(fault, does, fmt.Sprintf("junk %d bytes, same link", len(junk)))
}

func TestHostileGarbage(t *testing.T) {
	junk := []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n\x00\xff\xfe garbage ]]]}}} \"unterminated\n" +
		`{"s":"raw newline` + "\n" + `"}` + "\n" + "not json at all\n")
	sameLink(t, "garbage between messages", "skips to the next line (logged), link stays up", junk)
}

func TestHostileUnbalancedBrackets(t *testing.T) {
	junk := []byte(`{"mod":"get_device_info","session_id":"x","type":1,"x":[1,2}` + "\n" + `{"a":{"b":1]}` + "\n")
	sameLink(t, "unbalanced brackets ([1,2} and {\"b\":1])", "skips the message (logged), resyncs at the next line", junk)
}

func TestHostileDeepNesting(t *testing.T) {
	depth := 10000
	if fullFaults() {
		depth = 1 << 20
	}
	junk := []byte(`{"mod":"get_device_info","session_id":"deep","x":` + strings.Repeat("[", depth) + strings.Repeat("]", depth) + "}\n")
	sameLink(t, fmt.Sprintf("deep nesting (%d levels)", depth), "skips the message past 128 levels (logged), link stays up", junk)
}

func TestHostileOverLimit(t *testing.T) {
	const limit = 64 << 10
	r := newHostileRig(t, agent.Config{Link: agent.LinkConfig{MaxMessageSize: limit}})
	c := r.srv.accept(t)
	size := 1 << 20
	if fullFaults() {
		size = 64 << 20
	}
	go func() { // streamed: the test holds 64 KiB of it, the agent no more than its limit
		c.Write([]byte(`{"mod":"get_device_info","session_id":"big","x":"`))
		chunk := bytes.Repeat([]byte("A"), 64<<10)
		for sent := 0; sent < size; sent += len(chunk) {
			if _, err := c.Write(chunk); err != nil {
				return // the agent reset the link long before the end
			}
		}
		c.Write([]byte("\"}\n"))
	}()
	side := r.good()
	side.probe("after-over-limit")
	r.serveGood()
	r.drained()
	r.row("message over the size limit", "never buffers it whole: resets the link, redials",
		fmt.Sprintf("limit %d KiB, message %d KiB", limit>>10, size>>10))
}

func TestHostileStrayResponses(t *testing.T) {
	// Three uploads go unanswered here on purpose: a higher UnansweredCalls
	// keeps the link, so that the late answers arrive on it.
	r := newHostileRig(t, agent.Config{Link: agent.LinkConfig{CallTimeout: 2 * time.Second, UnansweredCalls: 10}})
	c := r.srv.accept(t)
	var held []*protocol.Message
	var mu sync.Mutex
	late := 0
	side := newAnsweringSide(t, c, func(m *protocol.Message) (int, bool) {
		if m.Mod != protocol.ModUploadAccessInfo {
			return 0, true
		}
		mu.Lock()
		defer mu.Unlock()
		if len(held) < 3 { // never answered in time: answered late below
			held = append(held, m)
			return 0, false
		}
		r.goodAnswer(m)
		return 0, true
	})
	var unknown bytes.Buffer
	for i := range 50 {
		fmt.Fprintf(&unknown, `{"mod":"upload_access_info","session_id":"nobody-%d","type":2,"code":0,"message":""}`+"\n", i)
		fmt.Fprintf(&unknown, `{"mod":"get_device_info","session_id":"nobody-%d","ret":-1,"msg":"x"}`+"\n", i)
	}
	side.send(unknown.Bytes())
	haltest.Eventually(t, "uploads held", func() bool { mu.Lock(); defer mu.Unlock(); return len(held) == 3 })
	haltest.Eventually(t, "the held records to be resent", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		mu.Lock()
		defer mu.Unlock()
		for _, m := range held {
			if r.delivered[m.AccessInfo.PersonID] == 0 {
				return false
			}
		}
		return true
	})
	mu.Lock()
	for _, m := range held { // late, and twice: both dropped
		b, _ := protocol.Marshal(m.Reply(0, ""))
		side.send(append(b, b...))
		late++
	}
	mu.Unlock()
	side.probe("after-stray")
	for i := range 50 {
		if n := side.responses(fmt.Sprintf("nobody-%d", i)); n != 0 {
			t.Fatalf("the agent answered a stray response (nobody-%d) %d times", i, n)
		}
	}
	r.serveGood()
	r.drained()
	r.row("unknown, duplicated and late responses", "logs and drops them; never answers a response; unanswered records resent",
		fmt.Sprintf("unknown 100, late+duplicated %d", 2*late))
}

func TestHostileRefusalStorm(t *testing.T) {
	r := newHostileRig(t, agent.Config{})
	storm := r.records * 3 // each record refused about 3 times: under the quarantine limit
	var mu sync.Mutex
	refused := 0
	c := r.srv.accept(t)
	newAnsweringSide(t, c, func(m *protocol.Message) (int, bool) {
		mu.Lock()
		defer mu.Unlock()
		if refused < storm {
			refused++
			return protocol.CodeError, true
		}
		return r.goodAnswer(m)
	})
	r.serveGood()
	r.drained()
	r.row("-1 storm (every answer -1 for a while)", "keeps each refused record, retries with backoff, delivers once accepted",
		fmt.Sprintf("refusals %d", storm))
}

// burst pipelines n get_device_info requests and reads the answers:
// exactly one each.
func burst(t *testing.T, n int) {
	r := newHostileRig(t, agent.Config{})
	side := r.good()
	var buf bytes.Buffer
	for i := range n {
		fmt.Fprintf(&buf, `{"mod":"get_device_info","session_id":"b%d","type":1}`+"\n", i)
	}
	go side.send(buf.Bytes())
	busy := 0
	for i := range n {
		m := side.response(fmt.Sprintf("b%d", i))
		if m.Code != 0 {
			if !strings.HasPrefix(m.Text, "busy") {
				t.Fatalf("b%d answered %d %q", i, m.Code, m.Text)
			}
			busy++
		}
	}
	side.probe("after-burst")
	for i := range n {
		if k := side.responses(fmt.Sprintf("b%d", i)); k != 1 {
			t.Fatalf("b%d got %d responses", i, k)
		}
	}
	r.serveGood()
	r.drained()
	r.row(fmt.Sprintf("pipelined burst of %d requests", n), "answers every request exactly once (busy when over its limits; reads slower instead of dropping)",
		fmt.Sprintf("answered %d/%d, busy %d", n, n, busy))
}

func TestHostileBurst50(t *testing.T) { burst(t, 50) }

func TestHostileBurstLarge(t *testing.T) {
	n := 200
	if fullFaults() {
		n = 10000
	}
	burst(t, n)
}

func TestHostileRestartLoop(t *testing.T) {
	r := newHostileRig(t, agent.Config{})
	restarts := 5
	if fullFaults() {
		restarts = 100
	}
	for i := range restarts {
		side := r.good()
		side.probe(fmt.Sprintf("restart-%d", i))
		side.c.Close()
	}
	r.serveGood()
	r.drained()
	r.row("server restarting in a loop", "redials each time with backoff; records resent until acknowledged",
		fmt.Sprintf("restarts %d", restarts))
}

func TestHostileMoveToDeadAddress(t *testing.T) {
	r := newHostileRig(t, agent.Config{Link: agent.LinkConfig{FallbackAfter: 500 * time.Millisecond}})
	dead, err := netListenerFactory{}.closedPort()
	if err != nil {
		t.Fatal(err)
	}
	side := newRawSide(t, r.srv.accept(t))
	m := req(protocol.ModSetDeviceInfo)
	m.SessionID = "move"
	m.DeviceInfo = &protocol.DeviceInfo{ServerIP: "127.0.0.1", ServerPort: dead, Fields: protocol.FieldServerIP | protocol.FieldServerPort}
	b, _ := protocol.Marshal(m)
	start := time.Now()
	side.send(b)
	if resp := side.response("move"); resp.Code != 0 {
		t.Fatalf("move answered %d %q", resp.Code, resp.Text)
	}
	back := r.good()
	took := time.Since(start)
	back.probe("after-fallback")
	r.serveGood()
	r.drained()
	s, _ := r.db.DeviceInfo(context.Background())
	if s.PrevServerPort != 0 || fmt.Sprint(s.ServerPort) != r.srv.addr[strings.LastIndexByte(r.srv.addr, ':')+1:] {
		t.Errorf("settings after the fallback: %+v", s)
	}
	r.row("server move to a dead address", "replies, dials the new address at once, falls back to the previous server after FallbackAfter",
		fmt.Sprintf("fallback after %v (FallbackAfter 500ms)", took.Round(10*time.Millisecond)))
}

// A move dials the new server at once with a fresh backoff, whatever
// backoff the old server had run up: with a backoff of an hour, the new
// server still gets the link within the test's wait.
func TestHostileServerMoveDialsAtOnce(t *testing.T) {
	srvA := newTestServer(t)
	srvB := newTestServer(t)
	db := openStore(t, store.Config{})
	cfg := agent.Config{Link: agent.LinkConfig{ServerAddress: srvA.addr, BackoffMin: time.Hour, BackoffMax: time.Hour}}
	startAgent(t, cfg, agent.Parts{Store: db})
	m := req(protocol.ModSetDeviceInfo)
	m.DeviceInfo = &protocol.DeviceInfo{ServerIP: "127.0.0.1", ServerPort: srvB.port(), Fields: protocol.FieldServerIP | protocol.FieldServerPort}
	start := time.Now()
	if _, code, msg := call(t, srvA.peer(), m); code != 0 {
		t.Fatalf("move: code %d %q", code, msg)
	}
	srvB.peer()
	t.Logf("FAULTROW\t%s\t%s\t%s", "server move (set_device_info) after backoff built up",
		"replies, then dials the new server at once with a fresh backoff", "dial after "+time.Since(start).Round(time.Millisecond).String()+", backoff 1h, "+vmHWM())
}

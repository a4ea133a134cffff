package agent_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3" // the store's driver, to read its file as is

	"termagent/protocol"
	"termagent/store"
)

// fullFaults reports whether the full fault suite runs (make faults).
func fullFaults() bool { return os.Getenv("TERMAGENT_FAULTS") == "full" }

// vmHWM is the process's peak resident memory (VmHWM), as /proc prints it.
func vmHWM() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "VmHWM ?"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			return "VmHWM " + strings.Join(strings.Fields(v), " ")
		}
	}
	return "VmHWM ?"
}

// rawServer is a hostile or careless server: a TCP listener on
// 127.0.0.1:0 whose connections the test drives byte by byte.
type rawServer struct {
	addr  string
	conns chan net.Conn
}

func newRawServer(t *testing.T) *rawServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &rawServer{addr: ln.Addr().String(), conns: make(chan net.Conn, 64)}
	var (
		mu   sync.Mutex
		open []net.Conn
	)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			open = append(open, c)
			mu.Unlock()
			s.conns <- c
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range open {
			c.Close()
		}
	})
	return s
}

// accept waits for the agent's next connection.
func (s *rawServer) accept(t *testing.T) net.Conn {
	t.Helper()
	select {
	case c := <-s.conns:
		return c
	case <-time.After(waitFor):
		t.Fatal("the agent did not connect")
		return nil
	}
}

// rawSide reads what the agent sends on one raw connection: responses
// are kept by session id (counting duplicates), requests go to reqs
// unanswered.
type rawSide struct {
	t    *testing.T
	c    net.Conn
	wmu  sync.Mutex
	mu   sync.Mutex
	got  map[string]chan *protocol.Message
	n    map[string]int
	reqs chan *protocol.Message
	done chan struct{} // closed when the connection ends
}

func newRawSide(t *testing.T, c net.Conn) *rawSide { return newAnsweringSide(t, c, nil) }

// newAnsweringSide is a rawSide that answers the agent's requests with
// answer's code (and none when answer says so), from its reader.
func newAnsweringSide(t *testing.T, c net.Conn, answer func(m *protocol.Message) (code int, reply bool)) *rawSide {
	r := &rawSide{t: t, c: c, got: map[string]chan *protocol.Message{}, n: map[string]int{},
		reqs: make(chan *protocol.Message, 1<<14), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		in := protocol.NewReader(c, 0)
		for {
			b, err := in.ReadMessage()
			if err != nil {
				return
			}
			m, err := protocol.Decode(b)
			if err != nil {
				t.Errorf("the agent sent a message that does not decode: %v", err)
				continue
			}
			if !m.HasCode {
				if answer != nil {
					if code, ok := answer(m); ok {
						b, _ := protocol.Marshal(m.Reply(code, ""))
						if err := r.send(b); err != nil {
							return
						}
					}
					continue
				}
				select {
				case r.reqs <- m:
				default:
				}
				continue
			}
			r.mu.Lock()
			r.n[m.SessionID]++
			ch := r.chanOf(m.SessionID)
			r.mu.Unlock()
			select {
			case ch <- m:
			default:
			}
		}
	}()
	return r
}

func (r *rawSide) chanOf(sid string) chan *protocol.Message {
	ch, ok := r.got[sid]
	if !ok {
		ch = make(chan *protocol.Message, 1)
		r.got[sid] = ch
	}
	return ch
}

// send writes raw bytes.
func (r *rawSide) send(b []byte) error {
	r.wmu.Lock()
	defer r.wmu.Unlock()
	r.c.SetWriteDeadline(time.Now().Add(waitFor))
	_, err := r.c.Write(b)
	return err
}

// response waits for the response to sid.
func (r *rawSide) response(sid string) *protocol.Message {
	r.t.Helper()
	r.mu.Lock()
	ch := r.chanOf(sid)
	r.mu.Unlock()
	select {
	case m := <-ch:
		return m
	case <-time.After(waitFor):
		r.t.Fatalf("no response to %s", sid)
		return nil
	}
}

// responses returns how many responses sid got.
func (r *rawSide) responses(sid string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n[sid]
}

// probe sends a get_device_info and waits for its answer: the link works.
func (r *rawSide) probe(sid string) {
	r.t.Helper()
	if err := r.send([]byte(`{"mod":"get_device_info","session_id":"` + sid + `","type":1}` + "\n")); err != nil {
		r.t.Fatalf("send probe: %v", err)
	}
	if m := r.response(sid); m.Code != 0 || m.DeviceInfo == nil {
		r.t.Fatalf("probe answered %d %q", m.Code, m.Text)
	}
}

// dbContent renders every row of every table of the store's file, sorted:
// what the database holds (persons, biometrics, settings, outbox, ...).
func dbContent(t *testing.T, path string) string {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro&_busy_timeout=10000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	rows, err := db.QueryContext(ctx, `SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var n string
		rows.Scan(&n)
		tables = append(tables, n)
	}
	rows.Close()
	var out bytes.Buffer
	for _, tb := range tables {
		rows, err := db.QueryContext(ctx, `SELECT * FROM "`+tb+`"`)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		var lines []string
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			lines = append(lines, fmt.Sprintf("%q", vals))
		}
		rows.Close()
		sort.Strings(lines)
		fmt.Fprintf(&out, "%s %v\n%s\n", tb, cols, strings.Join(lines, "\n"))
	}
	return out.String()
}

// enqueueRecords puts n access records into the outbox, person ids
// prefix000.. .
func enqueueRecords(t *testing.T, db *store.DB, prefix string, n int) {
	t.Helper()
	for i := range n {
		m := protocol.NewRequest(protocol.ModUploadAccessInfo)
		m.AccessInfo = &protocol.AccessInfo{PersonID: fmt.Sprintf("%s%03d", prefix, i), Time: "20260101120000", OpenDoorType: 1, InOutType: 1}
		body, err := protocol.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Enqueue(context.Background(), store.Record{Body: body}); err != nil {
			t.Fatal(err)
		}
	}
}

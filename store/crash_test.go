package store

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// crashChildEnv names the environment variable that turns the test binary
// into the crash test's child: it holds the database path.
const crashChildEnv = "STORE_CRASH_CHILD_DB"

func TestMain(m *testing.M) {
	if path := os.Getenv(crashChildEnv); path != "" {
		crashChild(path)
		return
	}
	os.Exit(m.Run())
}

// crashChild enqueues from four goroutines and peeks, nacks and acks from
// one, forever, writing one line per event on stdout (unbuffered, so a line
// written is in the pipe before the next step):
//
//	E <id> <session_id> <body>   Enqueue returned for this record
//	A <id>                       about to Ack this record
//
// It runs until it is killed.
func crashChild(path string) {
	ctx := context.Background()
	db, err := Open(ctx, path, Config{OutboxCapacity: 1 << 30, MaxAttempts: 1 << 20})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child open:", err)
		os.Exit(2)
	}
	if _, ok := db.Recovery(); ok {
		fmt.Fprintln(os.Stderr, "child: database was damaged")
		os.Exit(3)
	}
	var mu sync.Mutex
	say := func(s string) {
		mu.Lock()
		defer mu.Unlock()
		if _, err := os.Stdout.WriteString(s); err != nil {
			os.Exit(4)
		}
	}
	fail := func(what string, err error) {
		fmt.Fprintln(os.Stderr, "child:", what, err)
		os.Exit(5)
	}
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	for g := 0; g < 4; g++ {
		go func() {
			for i := 0; ; i++ {
				body := fmt.Sprintf("%s-%d-%d", run, g, i)
				r, err := db.Enqueue(ctx, Record{Body: []byte(body)})
				if err != nil {
					fail("enqueue", err)
				}
				say(fmt.Sprintf("E %d %s %s\n", r.ID, r.SessionID, body))
			}
		}()
	}
	for {
		recs, err := db.Peek(ctx, 8)
		if err != nil {
			fail("peek", err)
		}
		var ack []int64
		for i, r := range recs {
			if i%4 == 3 {
				if _, err := db.Nack(ctx, r.ID, time.Time{}, "crash test"); err != nil {
					fail("nack", err)
				}
				continue
			}
			ack = append(ack, r.ID)
		}
		if len(ack) == 0 {
			continue
		}
		var b strings.Builder
		for _, id := range ack {
			fmt.Fprintf(&b, "A %d\n", id)
		}
		say(b.String())
		if err := db.Ack(ctx, ack...); err != nil {
			fail("ack", err)
		}
	}
}

type crashRecord struct {
	id      int64
	session string
	body    string
}

// TestCrashLosesNothing kills a child that enqueues and acks with SIGKILL at
// random moments, then checks the database: it opens without recovery,
// passes integrity_check, holds every record Enqueue returned for unless it
// was (about to be) acked, and holds no duplicates.
func TestCrashLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test skipped in -short mode")
	}
	kills := 50
	if s := os.Getenv("STORE_CRASH_KILLS"); s != "" {
		kills, _ = strconv.Atoi(s)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "crash.db")
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	enqueued := map[int64]crashRecord{} // every E line ever seen
	acked := map[int64]bool{}           // every A line ever seen
	total := 0
	start := time.Now()
	for k := 0; k < kills; k++ {
		cmd := exec.Command(exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
		// Never leave a child running if this test dies.
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		killed := false
		t.Cleanup(func() {
			if !killed {
				cmd.Process.Kill()
				cmd.Wait()
			}
		})
		lines := make(chan string, 1024)
		readDone := make(chan struct{})
		go func() {
			defer close(readDone)
			defer close(lines)
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				lines <- sc.Text()
			}
		}()
		// Kill after a random number of events, plus a random sub-millisecond
		// to a few milliseconds so the kill lands anywhere in a commit.
		target := 1 + rng.IntN(300)
		seen := 0
		var got []string
		deadline := time.After(30 * time.Second)
	wait:
		for seen < target {
			select {
			case l, ok := <-lines:
				if !ok {
					break wait
				}
				got = append(got, l)
				seen++
			case <-deadline:
				cmd.Process.Kill()
				t.Fatalf("kill %d: child produced %d of %d lines in 30 s; stderr: %s", k, seen, target, stderr.String())
			}
		}
		if seen < target {
			cmd.Wait()
			t.Fatalf("kill %d: child exited by itself after %d lines: %s", k, seen, stderr.String())
		}
		<-time.After(time.Duration(rng.IntN(3000)) * time.Microsecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatalf("kill %d: %v", k, err)
		}
		err = cmd.Wait()
		killed = true
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("kill %d: child ended with %v, not by SIGKILL; stderr: %s", k, err, stderr.String())
		}
		for l := range lines {
			got = append(got, l)
		}
		<-readDone
		for _, l := range got {
			f := strings.Fields(l)
			switch {
			case len(f) == 4 && f[0] == "E":
				id, _ := strconv.ParseInt(f[1], 10, 64)
				if _, dup := enqueued[id]; dup {
					t.Fatalf("id %d returned by Enqueue twice", id)
				}
				enqueued[id] = crashRecord{id: id, session: f[2], body: f[3]}
				total++
			case len(f) == 2 && f[0] == "A":
				id, _ := strconv.ParseInt(f[1], 10, 64)
				acked[id] = true
			default:
				t.Fatalf("kill %d: bad child line %q", k, l)
			}
		}
		verifyAfterCrash(t, k, path, enqueued, acked)
	}
	t.Logf("%d kills, %d records returned by Enqueue, %d acked, in %v", kills, total, len(acked), time.Since(start).Round(time.Millisecond))
}

func verifyAfterCrash(t *testing.T, k int, path string, enqueued map[int64]crashRecord, acked map[int64]bool) {
	t.Helper()
	ctx := context.Background()
	db, err := Open(ctx, path, Config{Check: CheckFull, OutboxCapacity: 1 << 30, MaxAttempts: 1 << 20})
	if err != nil {
		t.Fatalf("kill %d: reopen: %v", k, err)
	}
	defer db.Close()
	if r, ok := db.Recovery(); ok {
		t.Fatalf("kill %d: the database was judged damaged: %+v", k, r)
	}
	if err := db.IntegrityCheck(ctx); err != nil {
		t.Fatalf("kill %d: %v", k, err)
	}
	rows, err := db.r.Query(`SELECT id, session_id, body FROM outbox`)
	if err != nil {
		t.Fatal(err)
	}
	present := map[int64]crashRecord{}
	sessions := map[string]bool{}
	bodies := map[string]bool{}
	for rows.Next() {
		var r crashRecord
		var body []byte
		if err := rows.Scan(&r.id, &r.session, &body); err != nil {
			t.Fatal(err)
		}
		r.body = string(body)
		if sessions[r.session] || bodies[r.body] {
			t.Fatalf("kill %d: duplicate row %+v", k, r)
		}
		sessions[r.session], bodies[r.body] = true, true
		present[r.id] = r
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	lost := 0
	for id, want := range enqueued {
		got, ok := present[id]
		switch {
		case ok && got != want:
			t.Errorf("kill %d: record %d is %+v, Enqueue returned %+v", k, id, got, want)
		case !ok && !acked[id]:
			lost++
			if lost <= 5 {
				t.Errorf("kill %d: record %+v lost (Enqueue had returned, never acked)", k, want)
			}
		}
	}
	if lost > 0 {
		t.Fatalf("kill %d: %d records lost", k, lost)
	}
	// Acked rows that are still present were acked when the kill came;
	// their ack may be retried: that is not a duplicate.
	var depth int
	if err := db.r.QueryRow(`SELECT count(*) FROM outbox`).Scan(&depth); err != nil {
		t.Fatal(err)
	}
	if st, _ := db.OutboxStats(ctx); st.Depth+st.Quarantined != depth {
		t.Errorf("kill %d: stats %+v disagree with %d rows", k, st, depth)
	}
}

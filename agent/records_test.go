package agent_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"

	"termagent/agent"
	"termagent/hal/haltest"
	"termagent/hal/sim"
	"termagent/protocol"
	"termagent/store"
)

// lockWriter takes SQLite's write lock on the database file at path from a
// second connection (BEGIN IMMEDIATE, as a backup or the sqlite3 shell
// would) and returns the function that releases it (idempotent; also run at
// cleanup). While it is held, every write of the store fails with
// SQLITE_BUSY after the store's busy timeout; reads go on (WAL).
func lockWriter(t *testing.T, path string) (release func()) {
	t.Helper()
	ctx := context.Background()
	other, err := sql.Open("sqlite3", "file:"+path+"?_busy_timeout=10000")
	if err != nil {
		t.Fatalf("open second connection: %v", err)
	}
	conn, err := other.Conn(ctx)
	if err != nil {
		other.Close()
		t.Fatalf("second connection: %v", err)
	}
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		conn.Close()
		other.Close()
		t.Fatalf("take the write lock: %v", err)
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
				t.Errorf("release the write lock: %v", err)
			}
			conn.Close()
			other.Close()
		})
	}
	t.Cleanup(release)
	return release
}

// TestRecordSurvivesBusyDatabase: while another connection holds the write
// lock for much longer than the store's busy timeout (50 ms here, so every
// Enqueue really fails with SQLITE_BUSY), two cards are presented: the door
// opens for each at once, the records wait in memory (Status, a "database"
// fault event), and once the lock is released both reach the server in
// order, acknowledged with code 0, with their original access times.
func TestRecordSurvivesBusyDatabase(t *testing.T) {
	srv := newTestServer(t)
	path := filepath.Join(t.TempDir(), "termagent.db")
	db, err := store.Open(context.Background(), path, store.Config{BusyTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	h := newHWRig(t, sim.RigConfig{Devices: []string{sim.DevCard, sim.DevRelay}})
	addPerson(t, db, "p1", 4001)
	addPerson(t, db, "p2", 4002)
	a := startAgent(t, agent.Config{
		Link:    agent.LinkConfig{ServerAddress: srv.addr},
		Access:  agent.AccessConfig{DoorPulse: 100 * time.Millisecond},
		Upload:  agent.UploadConfig{Window: 1},
		Modules: agent.ModuleConfig{RetryMin: 10 * time.Millisecond, RetryMax: 100 * time.Millisecond},
	}, h.parts(db))
	srv.peer()
	srv.event(1) // started
	status := func() agent.Status { return a.Status(context.Background()) }
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	relay := h.rig.Relay()

	release := lockWriter(t, path)
	t0 := time.Now()
	for _, card := range []string{"4001", "4002"} {
		h.exec(t, "swipe "+card)
		if _, err := relay.Wait(ctx, func(s sim.RelayState) bool { return s.On }); err != nil {
			t.Fatalf("card %s: the door did not open while the database was locked: %v", card, err)
		}
		if _, err := relay.Wait(ctx, func(s sim.RelayState) bool { return !s.On }); err != nil {
			t.Fatalf("card %s: the door did not close after the pulse: %v", card, err)
		}
	}
	if ev := srv.event(2); !strings.HasPrefix(ev.CommandValue, "database: ") {
		t.Errorf("module fault event %q, want the database's", ev.CommandValue)
	}
	haltest.Eventually(t, "both records to wait in memory", func() bool {
		st := status()
		return st.RecordsPending == 2 && st.Modules["database"].State == agent.ModuleFault
	})
	if st := status(); st.OutboxDepth != 0 || st.RecordsDropped != 0 {
		t.Fatalf("while locked: outbox depth %d, dropped %d; want 0 and 0", st.OutboxDepth, st.RecordsDropped)
	}
	select {
	case up := <-srv.uploads:
		t.Fatalf("upload %+v while the database was locked", up.AccessInfo)
	default:
	}
	// Hold the lock into the next second of the clock, so that a record
	// stamped when it is finally stored would show a later time than any
	// access.
	t1 := time.Now()
	haltest.Eventually(t, "the clock to pass into the next second", func() bool {
		return time.Now().Truncate(time.Second).After(t1)
	})
	release()

	for _, want := range []string{"p1", "p2"} {
		ai := srv.upload().AccessInfo
		if ai.PersonID != want {
			t.Fatalf("upload of %s, want %s (order kept)", ai.PersonID, want)
		}
		at, err := protocol.ParseTime(ai.Time, time.Local)
		if err != nil {
			t.Fatalf("record time %q: %v", ai.Time, err)
		}
		if at.Before(t0.Truncate(time.Second)) || at.After(t1) {
			t.Errorf("record of %s has time %s, want the access time in [%s, %s]", want, at, t0, t1)
		}
	}
	if ev := srv.event(3); ev.CommandValue != "database" {
		t.Errorf("module recovered event %q, want database", ev.CommandValue)
	}
	haltest.Eventually(t, "both records acknowledged and the database ok", func() bool {
		st := status()
		return st.Uploaded == 2 && st.OutboxDepth == 0 && st.RecordsPending == 0 &&
			st.Modules["database"].State == agent.ModuleOK
	})
	if st := status(); st.RecordsDropped != 0 {
		t.Errorf("%d records dropped", st.RecordsDropped)
	}
}

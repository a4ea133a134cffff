package agent

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"
	"github.com/rs/zerolog"

	"termagent/store"
)

func pending(n int) pendingRecord {
	return pendingRecord{rec: store.Record{SessionID: fmt.Sprint(n), Body: []byte("{}")}, person: fmt.Sprint("p", n)}
}

// ids lists the queue's session_ids, oldest first.
func (q *recordQueue) ids() []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []string
	for _, r := range q.items {
		out = append(out, r.rec.SessionID)
	}
	return out
}

func TestRecordQueueDropsOldest(t *testing.T) {
	q := newRecordQueue(3)
	for i := 1; i <= 3; i++ {
		if _, dropped := q.push(pending(i)); dropped {
			t.Fatalf("push %d dropped a record below capacity", i)
		}
	}
	for i, want := range []string{"1", "2"} {
		lost, dropped := q.push(pending(4 + i))
		if !dropped || lost.rec.SessionID != want {
			t.Fatalf("push %d when full dropped %v %q, want the oldest %s", 4+i, dropped, lost.rec.SessionID, want)
		}
	}
	if got := q.ids(); !slices.Equal(got, []string{"3", "4", "5"}) || q.dropped.Load() != 2 {
		t.Fatalf("queue %v dropped %d, want [3 4 5] and 2", got, q.dropped.Load())
	}

	// The record being written is never the one dropped: the next oldest
	// goes instead.
	if r, ok := q.front(); !ok || r.rec.SessionID != "3" {
		t.Fatalf("front %q %v, want 3", r.rec.SessionID, ok)
	}
	if lost, dropped := q.push(pending(6)); !dropped || lost.rec.SessionID != "4" {
		t.Fatalf("push with a busy head dropped %v %q, want 4", dropped, lost.rec.SessionID)
	}
	q.done()
	if got := q.ids(); !slices.Equal(got, []string{"5", "6"}) || q.len() != 2 || q.dropped.Load() != 3 {
		t.Fatalf("after done: queue %v dropped %d, want [5 6] and 3", got, q.dropped.Load())
	}
	// done without front removes nothing.
	q.done()
	if q.len() != 2 {
		t.Fatalf("done without front changed the queue to %v", q.ids())
	}
}

// TestFlushRecordsBounded: at shutdown, pending records are stored in
// order when the database takes them; while another connection holds the
// write lock (longer than the busy timeout, so every attempt really fails)
// the flush gives up after its bound and keeps them counted as pending.
func TestFlushRecordsBounded(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "termagent.db")
	db, err := store.Open(ctx, path, store.Config{BusyTimeout: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	a, err := New(Config{
		Link:    LinkConfig{ServerAddress: "127.0.0.1:1"},
		Modules: ModuleConfig{RetryMin: 5 * time.Millisecond, RetryMax: 20 * time.Millisecond},
		Logger:  zerolog.New(zerolog.NewTestWriter(t)),
	}, Parts{Store: db})
	if err != nil {
		t.Fatal(err)
	}
	a.flushTimeout = 300 * time.Millisecond
	for i := range 3 {
		a.record(access{kind: 1, granted: true, person: store.Person{PersonID: fmt.Sprint("p", i)}, at: time.Now()})
	}
	want := a.records.ids()

	other, err := sql.Open("sqlite3", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	conn, err := other.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	a.flushRecords(ctx)
	if n := a.records.len(); n != 3 {
		t.Fatalf("%d records pending after a flush against a locked database, want 3", n)
	}
	if st, err := db.OutboxStats(ctx); err != nil || st.Depth != 0 {
		t.Fatalf("outbox %+v %v while locked", st, err)
	}
	if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}

	a.flushRecords(ctx)
	if n := a.records.len(); n != 0 {
		t.Fatalf("%d records pending after a flush, want 0", n)
	}
	recs, err := db.Peek(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range recs {
		got = append(got, r.SessionID)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("outbox session_ids %v, want %v (order kept)", got, want)
	}
}

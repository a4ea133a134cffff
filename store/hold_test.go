package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// A held record is on disk (it survives a reopen) but not sent until it is
// released or its hold has passed; Ack withdraws it.
func TestEnqueueHeldIsDurableButNotDueUntilReleased(t *testing.T) {
	ctx := context.Background()
	clock := newTestClock()
	cfg := testConfig(t)
	cfg.Now = clock.Now
	path := filepath.Join(t.TempDir(), "termagent.db")
	db := mustOpen(t, path, cfg)
	held, err := db.EnqueueHeld(ctx, Record{Body: []byte("door opened")}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !held.NextTry.Equal(clock.Now().Add(5 * time.Second)) {
		t.Errorf("NextTry %v, want now + 5 s", held.NextTry)
	}
	withdrawn, err := db.EnqueueHeld(ctx, Record{Body: []byte("door failed")}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	free := enqueueN(t, db, 1, "plain")[0]
	if got, _ := db.Peek(ctx, 10); fmt.Sprint(ids(got)) != fmt.Sprint([]int64{free.ID}) {
		t.Fatalf("Peek = %v, want only the record that is not held (%d)", ids(got), free.ID)
	}
	st, err := db.OutboxStats(ctx)
	if err != nil || st.Depth != 3 || !st.NextDue.Equal(held.NextTry) {
		t.Fatalf("stats %+v, %v: want depth 3 and NextDue at the end of the hold", st, err)
	}
	if err := db.Ack(ctx, withdrawn.ID); err != nil {
		t.Fatal(err)
	}

	// A power cut: the held record is still there after a reopen.
	db.Close()
	db = mustOpen(t, path, cfg)
	if got, _ := db.Peek(ctx, 10); fmt.Sprint(ids(got)) != fmt.Sprint([]int64{free.ID}) {
		t.Fatalf("after reopen Peek = %v, want %d", ids(got), free.ID)
	}
	select {
	case <-db.Wake():
	default:
	}
	if err := db.Release(ctx, held.ID); err != nil {
		t.Fatal(err)
	}
	select {
	case <-db.Wake():
	default:
		t.Error("Release did not signal Wake")
	}
	if got, _ := db.Peek(ctx, 10); fmt.Sprint(ids(got)) != fmt.Sprint([]int64{held.ID, free.ID}) {
		t.Fatalf("after Release Peek = %v, want %v", ids(got), []int64{held.ID, free.ID})
	}

	// A hold that is never released expires: the record is then due.
	late, err := db.EnqueueHeld(ctx, Record{Body: []byte("power cut before the relay")}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	clock.Add(5 * time.Second)
	got, _ := db.Peek(ctx, 10)
	if len(got) != 3 || got[2].ID != late.ID {
		t.Fatalf("after the hold Peek = %v, want the expired hold %d last", ids(got), late.ID)
	}
	// Release leaves a record retrying after a Nack alone.
	if _, err := db.Nack(ctx, free.ID, clock.Now().Add(time.Minute), "refused"); err != nil {
		t.Fatal(err)
	}
	if err := db.Release(ctx, free.ID, 12345); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.Peek(ctx, 10); len(got) != 2 {
		t.Errorf("Release made a nacked record due: Peek = %v", ids(got))
	}
	if _, err := db.EnqueueHeld(ctx, Record{Body: []byte("x")}, -time.Second); err == nil {
		t.Error("negative hold accepted")
	}
}

// An Enqueue whose caller gave up while its batch waited for the write
// lock (another process held it) is not stored behind the caller's back:
// the agent keeps such a record in memory and must not get it twice.
func TestEnqueueGivenUpWhileWaitingForTheLockIsNotStored(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "termagent.db")
	cfg := testConfig(t)
	cfg.BusyTimeout = 30 * time.Second
	db := mustOpen(t, path, cfg)
	raw := rawDB(t, path)
	conn, err := raw.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	tctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	_, err = db.EnqueueHeld(tctx, Record{Body: []byte("given up")}, time.Minute)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Enqueue behind a held lock: %v, want DeadlineExceeded", err)
	}
	if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	kept := enqueueN(t, db, 1, "kept")[0]
	st, err := db.OutboxStats(ctx)
	if err != nil || st.Depth != 1 || !st.NextDue.IsZero() {
		t.Fatalf("stats %+v, %v: want only the record enqueued after the lock (%d)", st, err, kept.ID)
	}
}

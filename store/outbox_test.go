package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func enqueueN(t testing.TB, db *DB, n int, prefix string) []Record {
	t.Helper()
	var out []Record
	for i := 0; i < n; i++ {
		r, err := db.Enqueue(context.Background(), Record{Body: []byte(fmt.Sprintf("%s%d", prefix, i))})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

func ids(recs []Record) []int64 {
	var out []int64
	for _, r := range recs {
		out = append(out, r.ID)
	}
	return out
}

func TestOutboxFIFOPeekAck(t *testing.T) {
	ctx := context.Background()
	clock := newTestClock()
	cfg := testConfig(t)
	cfg.Now = clock.Now
	db := mustOpen(t, "", cfg)
	recs := enqueueN(t, db, 5, "r")
	for i, r := range recs {
		if r.ID == 0 || r.SessionID == "" || !r.CreatedAt.Equal(clock.Now()) {
			t.Errorf("record %d = %+v: want ID, session id and CreatedAt set", i, r)
		}
		if i > 0 && r.ID <= recs[i-1].ID {
			t.Errorf("ids not increasing: %d after %d", r.ID, recs[i-1].ID)
		}
	}
	got, err := db.Peek(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(ids(got)) != fmt.Sprint(ids(recs[:3])) {
		t.Fatalf("Peek(3) = %v, want %v", ids(got), ids(recs[:3]))
	}
	if string(got[0].Body) != "r0" || got[0].SessionID != recs[0].SessionID {
		t.Errorf("Peek returned %+v, want %+v", got[0], recs[0])
	}
	again, _ := db.Peek(ctx, 3)
	if fmt.Sprint(ids(again)) != fmt.Sprint(ids(got)) {
		t.Errorf("second Peek %v differs from first %v: Peek must not remove", ids(again), ids(got))
	}
	if err := db.Ack(ctx, recs[0].ID, recs[2].ID, 9999); err != nil {
		t.Fatal(err)
	}
	if err := db.Ack(ctx, recs[0].ID); err != nil {
		t.Errorf("acking twice: %v", err)
	}
	got, _ = db.Peek(ctx, 10)
	if want := []int64{recs[1].ID, recs[3].ID, recs[4].ID}; fmt.Sprint(ids(got)) != fmt.Sprint(want) {
		t.Errorf("after Ack: %v, want %v", ids(got), want)
	}
	st, err := db.OutboxStats(ctx)
	if err != nil || st.Depth != 3 || st.Quarantined != 0 || !st.Oldest.Equal(clock.Now()) {
		t.Errorf("stats %+v (%v), want depth 3 and oldest %v", st, err, clock.Now())
	}
}

func TestSessionIDIsKeptAcrossRetriesAndRestarts(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "t.db")
	db := mustOpen(t, path, testConfig(t))
	given, err := db.Enqueue(ctx, Record{SessionID: "caller-chosen", Body: []byte("a")})
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := db.Enqueue(ctx, Record{Body: []byte("b")})
	if err != nil {
		t.Fatal(err)
	}
	if given.SessionID != "caller-chosen" || fresh.SessionID == "" || fresh.SessionID == given.SessionID {
		t.Fatalf("session ids %q and %q", given.SessionID, fresh.SessionID)
	}
	if _, err := db.Nack(ctx, fresh.ID, time.Time{}, "code -1"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db = mustOpen(t, path, testConfig(t))
	got, err := db.Peek(ctx, 10)
	if err != nil || len(got) != 2 {
		t.Fatalf("Peek after restart: %v, %v", got, err)
	}
	if got[0].SessionID != given.SessionID || got[1].SessionID != fresh.SessionID || got[1].Attempts != 1 {
		t.Errorf("after restart %+v, want session ids %q %q and one attempt", got, given.SessionID, fresh.SessionID)
	}
	select {
	case <-db.Wake():
	default:
		t.Error("Open with a non-empty outbox did not signal Wake")
	}
}

func TestNackBacksOffAndQuarantines(t *testing.T) {
	ctx := context.Background()
	clock := newTestClock()
	cfg := testConfig(t)
	cfg.Now = clock.Now
	cfg.MaxAttempts = 3
	db := mustOpen(t, "", cfg)
	recs := enqueueN(t, db, 3, "n")
	poison := recs[0]

	for attempt := 1; attempt <= 3; attempt++ {
		q, err := db.Nack(ctx, poison.ID, clock.Now().Add(time.Minute), fmt.Sprintf("code -1 try %d", attempt))
		if err != nil {
			t.Fatal(err)
		}
		if q != (attempt == 3) {
			t.Fatalf("attempt %d: quarantined = %v", attempt, q)
		}
		if attempt < 3 {
			got, _ := db.Peek(ctx, 1)
			if len(got) != 1 || got[0].ID != recs[1].ID {
				t.Errorf("attempt %d: the record backing off blocks the queue: %v", attempt, ids(got))
			}
			st, _ := db.OutboxStats(ctx)
			if !st.NextDue.Equal(clock.Now().Add(time.Minute)) {
				t.Errorf("NextDue = %v, want %v", st.NextDue, clock.Now().Add(time.Minute))
			}
			clock.Add(time.Minute)
			got, _ = db.Peek(ctx, 1)
			if len(got) != 1 || got[0].ID != poison.ID || got[0].Attempts != attempt {
				t.Errorf("attempt %d: once due, the oldest record comes first again: %+v", attempt, got)
			}
		}
	}
	got, _ := db.Peek(ctx, 10)
	if fmt.Sprint(ids(got)) != fmt.Sprint(ids(recs[1:])) {
		t.Errorf("Peek after quarantine = %v, want %v", ids(got), ids(recs[1:]))
	}
	st, err := db.OutboxStats(ctx)
	if err != nil || st.Depth != 2 || st.Quarantined != 1 || !st.NextDue.IsZero() {
		t.Errorf("stats %+v (%v), want depth 2, quarantined 1, no NextDue", st, err)
	}
	q, err := db.Quarantined(ctx, 10)
	if err != nil || len(q) != 1 || q[0].ID != poison.ID || q[0].LastError != "code -1 try 3" || !q[0].Quarantined {
		t.Errorf("Quarantined = %+v, %v", q, err)
	}
	if _, err := db.Nack(ctx, 12345, time.Time{}, ""); !errors.Is(err, ErrNotFound) {
		t.Errorf("Nack unknown = %v, want ErrNotFound", err)
	}
	if err := db.Requeue(ctx, poison.ID); err != nil {
		t.Fatal(err)
	}
	got, _ = db.Peek(ctx, 1)
	if len(got) != 1 || got[0].ID != poison.ID || got[0].Attempts != 0 {
		t.Errorf("after Requeue: %+v", got)
	}
	if st, _ := db.OutboxStats(ctx); st.Quarantined != 0 || st.Depth != 3 {
		t.Errorf("stats after Requeue: %+v", st)
	}
	// Acking a quarantined record removes it and its count.
	db.Nack(ctx, poison.ID, time.Time{}, "")
	db.Nack(ctx, poison.ID, time.Time{}, "")
	db.Nack(ctx, poison.ID, time.Time{}, "")
	if err := db.Ack(ctx, poison.ID); err != nil {
		t.Fatal(err)
	}
	if st, _ := db.OutboxStats(ctx); st.Quarantined != 0 || st.Depth != 2 {
		t.Errorf("stats after acking a quarantined record: %+v", st)
	}
}

func TestOutboxFullDropOldest(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "t.db")
	cfg := testConfig(t)
	cfg.OutboxCapacity = 4
	cfg.MaxAttempts = 1
	var mu sync.Mutex
	drops := 0
	cfg.OnDrop = func(n int) { mu.Lock(); drops += n; mu.Unlock() }
	db := mustOpen(t, path, cfg)
	recs := enqueueN(t, db, 4, "d")
	if q, _ := db.Nack(ctx, recs[2].ID, time.Time{}, "poison"); !q {
		t.Fatal("not quarantined after one attempt with MaxAttempts 1")
	}
	more := enqueueN(t, db, 2, "e")
	// The quarantined record goes first, then the oldest.
	got, _ := db.Peek(ctx, 10)
	want := []int64{recs[1].ID, recs[3].ID, more[0].ID, more[1].ID}
	if fmt.Sprint(ids(got)) != fmt.Sprint(want) {
		t.Errorf("after overflow: %v, want %v", ids(got), want)
	}
	st, _ := db.OutboxStats(ctx)
	if st.Depth != 4 || st.Quarantined != 0 || st.Dropped != 2 || st.Capacity != 4 {
		t.Errorf("stats %+v, want depth 4, dropped 2", st)
	}
	mu.Lock()
	if drops != 2 {
		t.Errorf("OnDrop counted %d, want 2", drops)
	}
	mu.Unlock()
	db.Close()
	db = mustOpen(t, path, cfg)
	if st, _ := db.OutboxStats(ctx); st.Dropped != 2 || st.Depth != 4 {
		t.Errorf("after restart: %+v, want the drop counter kept", st)
	}
}

func TestOutboxFullRefuse(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)
	cfg.OutboxCapacity = 3
	cfg.WhenFull = Refuse
	db := mustOpen(t, "", cfg)
	recs := enqueueN(t, db, 3, "f")
	if _, err := db.Enqueue(ctx, Record{Body: []byte("one too many")}); !errors.Is(err, ErrOutboxFull) {
		t.Fatalf("Enqueue on a full outbox = %v, want ErrOutboxFull", err)
	}
	got, _ := db.Peek(ctx, 10)
	if fmt.Sprint(ids(got)) != fmt.Sprint(ids(recs)) {
		t.Errorf("refusal changed the queue: %v", ids(got))
	}
	if err := db.Ack(ctx, recs[0].ID); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Enqueue(ctx, Record{Body: []byte("fits now")}); err != nil {
		t.Errorf("after an Ack: %v", err)
	}
	if st, _ := db.OutboxStats(ctx); st.Dropped != 0 || st.Depth != 3 {
		t.Errorf("stats %+v", st)
	}
	// Concurrent enqueues into the last free places: exactly the room is taken.
	db.Ack(ctx, recs[1].ID, recs[2].ID)
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, full := 0, 0
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := db.Enqueue(ctx, Record{Body: []byte("race")})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.Is(err, ErrOutboxFull):
				full++
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if ok != 2 || full != 8 {
		t.Errorf("10 concurrent enqueues into 2 free places: %d stored, %d refused", ok, full)
	}
}

func TestWakeSignalsWithoutBlocking(t *testing.T) {
	ctx := context.Background()
	db := mustOpen(t, "", testConfig(t))
	select {
	case <-db.Wake():
		t.Fatal("Wake signalled on an empty outbox")
	default:
	}
	enqueueN(t, db, 3, "w") // three commits, nobody listening: must not block
	select {
	case <-db.Wake():
	case <-time.After(10 * time.Second):
		t.Fatal("no wake-up after Enqueue")
	}
	select {
	case <-db.Wake():
		t.Fatal("more than one pending wake-up")
	default:
	}
	// A sleeping uploader is woken by the next enqueue.
	woke := make(chan struct{})
	go func() { <-db.Wake(); close(woke) }()
	if _, err := db.Enqueue(ctx, Record{Body: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-woke:
	case <-time.After(10 * time.Second):
		t.Fatal("uploader not woken")
	}
}

func TestConcurrentEnqueuesShareCommitsAndLoseNothing(t *testing.T) {
	ctx := context.Background()
	db := mustOpen(t, "", testConfig(t))
	const writers, each = 8, 50
	var wg sync.WaitGroup
	got := make(chan Record, writers*each)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				r, err := db.Enqueue(ctx, Record{Body: []byte(fmt.Sprintf("%d/%d", w, i))})
				if err != nil {
					t.Error(err)
					return
				}
				got <- r
			}
		}(w)
	}
	wg.Wait()
	close(got)
	byID := map[int64]string{}
	sessions := map[string]bool{}
	for r := range got {
		if _, dup := byID[r.ID]; dup || sessions[r.SessionID] {
			t.Fatalf("duplicate id %d or session %s", r.ID, r.SessionID)
		}
		byID[r.ID], sessions[r.SessionID] = string(r.Body), true
	}
	stored, err := db.Peek(ctx, writers*each+1)
	if err != nil || len(stored) != writers*each {
		t.Fatalf("stored %d records (%v), want %d", len(stored), err, writers*each)
	}
	for _, r := range stored {
		if byID[r.ID] != string(r.Body) {
			t.Errorf("record %d body %q, Enqueue returned %q", r.ID, r.Body, byID[r.ID])
		}
	}
}

func TestEnqueueHonoursContext(t *testing.T) {
	db := mustOpen(t, "", testConfig(t))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// With the context already done, either the record went in (the
	// committer was ready) or Enqueue reports the context: never a hang.
	_, err := db.Enqueue(ctx, Record{Body: []byte("x")})
	if err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("Enqueue with a cancelled context = %v", err)
	}
}

// A quarantined record is not stranded: RetryQuarantined gives it one more
// try (one more refusal quarantines it again), Unquarantine a fresh set of
// tries; both survive a restart (the state is in the rows).
func TestQuarantinedRecordsGetAnotherTry(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "q.db")
	cfg := testConfig(t)
	cfg.MaxAttempts = 3
	db := mustOpen(t, path, cfg)
	recs := enqueueN(t, db, 2, "q")
	for range cfg.MaxAttempts {
		if _, err := db.Nack(ctx, recs[0].ID, time.Time{}, "refused"); err != nil {
			t.Fatal(err)
		}
	}
	if st, _ := db.OutboxStats(ctx); st.Quarantined != 1 || st.Depth != 1 {
		t.Fatalf("stats %+v, want 1 quarantined", st)
	}
	db.Close()
	db = mustOpen(t, path, cfg) // a restart does not release it by itself
	<-db.Wake()
	if got, _ := db.Peek(ctx, 10); len(got) != 1 || got[0].ID != recs[1].ID {
		t.Fatalf("Peek after restart = %+v", got)
	}
	n, err := db.RetryQuarantined(ctx)
	if err != nil || n != 1 {
		t.Fatalf("RetryQuarantined = %d, %v", n, err)
	}
	select {
	case <-db.Wake():
	default:
		t.Error("no Wake after RetryQuarantined")
	}
	if st, _ := db.OutboxStats(ctx); st.Quarantined != 0 || st.Depth != 2 {
		t.Errorf("stats after retry %+v", st)
	}
	if got, _ := db.Peek(ctx, 10); len(got) != 2 || got[0].ID != recs[0].ID || got[0].SessionID != recs[0].SessionID {
		t.Fatalf("Peek after RetryQuarantined = %+v", got)
	}
	if q, err := db.Nack(ctx, recs[0].ID, time.Time{}, "refused again"); err != nil || !q {
		t.Errorf("one more refusal: quarantined %v, %v; want quarantined again", q, err)
	}
	if n, err := db.Unquarantine(ctx); err != nil || n != 1 {
		t.Fatalf("Unquarantine = %d, %v", n, err)
	}
	if q, err := db.Nack(ctx, recs[0].ID, time.Time{}, "refused"); err != nil || q {
		t.Errorf("after Unquarantine one refusal quarantined it (%v, %v)", q, err)
	}
	if err := db.Ack(ctx, recs[0].ID, recs[1].ID); err != nil {
		t.Fatal(err)
	}
	if st, _ := db.OutboxStats(ctx); st.Quarantined != 0 || st.Depth != 0 {
		t.Errorf("stats after ack %+v", st)
	}
}

package recordstore_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"termagent/cmd/termserver/internal/recordstore"
)

func openTestStore(t *testing.T) (*recordstore.Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "records.db")
	r, err := recordstore.Open(path, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r, path
}

func TestStore_dedupeBySessionID(t *testing.T) {
	r, path := openTestStore(t)
	ctx := context.Background()
	rec := recordstore.Record{SessionID: "s-1", Terminal: "T1", PersonID: "p1", Time: "20260101120000", OpenDoorType: 1}
	dup, err := r.Add(ctx, rec)
	if err != nil || dup {
		t.Fatalf("first Add = dup %v, err %v; want new record", dup, err)
	}
	rec.PersonID = "changed"
	dup, err = r.Add(ctx, rec)
	if err != nil || !dup {
		t.Fatalf("second Add = dup %v, err %v; want duplicate", dup, err)
	}
	got, err := r.List(ctx, recordstore.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].PersonID != "p1" {
		t.Fatalf("stored %+v; want the first copy only", got)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("database mode %v; want 0600", st.Mode().Perm())
	}
}

func TestStore_concurrentAddsBatch(t *testing.T) {
	r, _ := openTestStore(t)
	ctx := context.Background()
	const workers, each = 16, 50
	var wg sync.WaitGroup
	var mu sync.Mutex
	dups := 0
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				// Every record is sent twice, from two goroutines' view
				// of the same id space, so half of the Adds are dups.
				id := fmt.Sprintf("s-%d", (w/2)*each+i)
				dup, err := r.Add(ctx, recordstore.Record{SessionID: id, Terminal: fmt.Sprint("T", w%2)})
				if err != nil {
					errs <- err
					return
				}
				if dup {
					mu.Lock()
					dups++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	n, err := r.Count(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if want := workers * each / 2; n != want || dups != want {
		t.Fatalf("stored %d, dups %d; want %d and %d", n, dups, want, want)
	}
}

func TestStore_rejectsEmptySessionAndClosed(t *testing.T) {
	r, _ := openTestStore(t)
	ctx := context.Background()
	if _, err := r.Add(ctx, recordstore.Record{}); !errors.Is(err, recordstore.ErrNoSessionID) {
		t.Fatalf("Add without session_id: %v; want ErrNoSessionID", err)
	}
	r.Close()
	if err := r.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := r.Add(ctx, recordstore.Record{SessionID: "x"}); !errors.Is(err, recordstore.ErrClosed) {
		t.Fatalf("Add after Close: %v; want ErrClosed", err)
	}
}

func TestStore_filterAndCSV(t *testing.T) {
	r, _ := openTestStore(t)
	ctx := context.Background()
	for i, term := range []string{"A", "B", "A"} {
		if _, err := r.Add(ctx, recordstore.Record{SessionID: fmt.Sprint("s", i), Terminal: term,
			PersonID: fmt.Sprint("p", i), CardNumber: "00,12\"3"}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := r.List(ctx, recordstore.Filter{Terminal: "A"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].PersonID != "p0" || got[1].PersonID != "p2" {
		t.Fatalf("terminal A: %+v", got)
	}
	page, err := r.List(ctx, recordstore.Filter{AfterID: got[0].ID, Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(page) != 1 || page[0].PersonID != "p1" {
		t.Fatalf("page after %d: %+v", got[0].ID, page)
	}
	var buf bytes.Buffer
	if err := recordstore.WriteCSV(&buf, got); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatalf("export is not valid CSV: %v\n%s", err, buf.String())
	}
	if len(rows) != 3 || rows[0][1] != "session_id" || rows[2][4] != "p2" || rows[1][7] != "00,12\"3" {
		t.Fatalf("csv rows: %q", rows)
	}
}

// TestStore_closeKeepsWhatItAcknowledged closes the store while uploads
// are arriving: every Add that reported success is in the database when
// it is opened again, and every other one failed with ErrClosed.
func TestStore_closeKeepsWhatItAcknowledged(t *testing.T) {
	r, path := openTestStore(t)
	ctx := context.Background()
	const workers = 32
	var ok atomic.Int64
	var wg sync.WaitGroup
	started := make(chan struct{})
	start := sync.OnceFunc(func() { close(started) })
	for w := range workers {
		wg.Go(func() {
			defer start() // should the loop end early
			for i := 0; ; i++ {
				if i == 10 {
					start()
				}
				_, err := r.Add(ctx, recordstore.Record{SessionID: fmt.Sprintf("w%d-%d", w, i)})
				if errors.Is(err, recordstore.ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("Add: %v", err)
					return
				}
				ok.Add(1)
			}
		})
	}
	<-started
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	again, err := recordstore.Open(path, false)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	n, err := again.Count(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if int64(n) != ok.Load() {
		t.Fatalf("%d records stored; %d Adds reported success", n, ok.Load())
	}
}

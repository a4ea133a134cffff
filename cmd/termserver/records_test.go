package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

func openTestRecords(t *testing.T) (*Records, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "records.db")
	r, err := OpenRecords(path, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r, path
}

func TestRecords_dedupeBySessionID(t *testing.T) {
	r, path := openTestRecords(t)
	ctx := context.Background()
	rec := Record{SessionID: "s-1", Terminal: "T1", PersonID: "p1", Time: "20260101120000", OpenDoorType: 1}
	dup, err := r.Add(ctx, rec)
	if err != nil || dup {
		t.Fatalf("first Add = dup %v, err %v; want new record", dup, err)
	}
	rec.PersonID = "changed"
	dup, err = r.Add(ctx, rec)
	if err != nil || !dup {
		t.Fatalf("second Add = dup %v, err %v; want duplicate", dup, err)
	}
	got, err := r.List(ctx, RecordFilter{})
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

func TestRecords_concurrentAddsBatch(t *testing.T) {
	r, _ := openTestRecords(t)
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
				dup, err := r.Add(ctx, Record{SessionID: id, Terminal: fmt.Sprint("T", w%2)})
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

func TestRecords_rejectsEmptySessionAndClosed(t *testing.T) {
	r, _ := openTestRecords(t)
	ctx := context.Background()
	if _, err := r.Add(ctx, Record{}); !errors.Is(err, ErrNoSessionID) {
		t.Fatalf("Add without session_id: %v; want ErrNoSessionID", err)
	}
	r.Close()
	if err := r.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := r.Add(ctx, Record{SessionID: "x"}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Add after Close: %v; want ErrClosed", err)
	}
}

func TestRecords_filterAndCSV(t *testing.T) {
	r, _ := openTestRecords(t)
	ctx := context.Background()
	for i, term := range []string{"A", "B", "A"} {
		if _, err := r.Add(ctx, Record{SessionID: fmt.Sprint("s", i), Terminal: term,
			PersonID: fmt.Sprint("p", i), CardNumber: "00,12\"3"}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := r.List(ctx, RecordFilter{Terminal: "A"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].PersonID != "p0" || got[1].PersonID != "p2" {
		t.Fatalf("terminal A: %+v", got)
	}
	page, err := r.List(ctx, RecordFilter{AfterID: got[0].ID, Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(page) != 1 || page[0].PersonID != "p1" {
		t.Fatalf("page after %d: %+v", got[0].ID, page)
	}
	var buf bytes.Buffer
	if err := WriteCSV(&buf, got); err != nil {
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

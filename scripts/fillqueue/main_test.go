package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"termagent/store"
)

// TestFillQueue fills a fresh database and reads the records back as the
// agent would: every one an upload_access_info request with access_info.
func TestFillQueue(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "termagent.db")
	const n = 120
	if err := run(ctx, path, n, 8); err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(ctx, path, store.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st, err := db.OutboxStats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Depth != n {
		t.Fatalf("outbox depth %d, want %d", st.Depth, n)
	}
	recs, err := db.Peek(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	persons := map[string]bool{}
	for _, r := range recs {
		var m struct {
			Mod        string `json:"mod"`
			AccessInfo struct {
				PersonID string `json:"person_id"`
			} `json:"access_info"`
		}
		if err := json.Unmarshal(r.Body, &m); err != nil {
			t.Fatalf("record %d: %v: %s", r.ID, err, r.Body)
		}
		if m.Mod != "upload_access_info" || m.AccessInfo.PersonID == "" {
			t.Fatalf("record %d is not an access record: %s", r.ID, r.Body)
		}
		persons[m.AccessInfo.PersonID] = true
	}
	if len(recs) != n || len(persons) != n {
		t.Errorf("peeked %d records for %d persons, want %d distinct", len(recs), len(persons), n)
	}
}

func TestFillQueueRejectsBadArguments(t *testing.T) {
	dir := t.TempDir()
	notDir := filepath.Join(dir, "file")
	if err := os.WriteFile(notDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path       string
		n, workers int
	}{
		{"", 10, 1},
		{filepath.Join(dir, "a.db"), -1, 1},
		{filepath.Join(dir, "b.db"), 10, 0},
		{filepath.Join(notDir, "c.db"), 10, 1}, // parent is a file
	} {
		if err := run(context.Background(), c.path, c.n, c.workers); err == nil {
			t.Errorf("run(%q, %d, %d) succeeded; want an error", c.path, c.n, c.workers)
		}
	}
}

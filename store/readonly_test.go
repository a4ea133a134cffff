package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func readOnlyConfig(t testing.TB) Config {
	cfg := testConfig(t)
	cfg.ReadOnly = true
	return cfg
}

func TestReadOnlyNextToADaemon(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "t.db")
	daemon := mustOpen(t, path, testConfig(t))
	fillSome(t, daemon)
	ro := mustOpen(t, path, readOnlyConfig(t))

	// Reads see what the daemon wrote, also after the read-only open.
	if _, err := daemon.Enqueue(ctx, Record{Body: []byte("later")}); err != nil {
		t.Fatal(err)
	}
	st, err := ro.OutboxStats(ctx)
	if err != nil || st.Depth != 21 {
		t.Errorf("read-only stats %+v, %v; want depth 21", st, err)
	}
	if recs, err := ro.Peek(ctx, 100); err != nil || len(recs) != 21 {
		t.Errorf("read-only Peek: %d records, %v", len(recs), err)
	}
	if n, err := ro.CountPersons(ctx); err != nil || n != 20 {
		t.Errorf("read-only CountPersons = %d, %v", n, err)
	}
	want, _ := daemon.DeviceInfo(ctx)
	if got, err := ro.DeviceInfo(ctx); err != nil || got != want {
		t.Errorf("read-only DeviceInfo = %+v, %v", got, err)
	}

	writes := map[string]error{}
	_, writes["Enqueue"] = ro.Enqueue(ctx, Record{Body: []byte("x")})
	writes["Ack"] = ro.Ack(ctx, 1)
	_, writes["Nack"] = ro.Nack(ctx, 1, time.Time{}, "")
	writes["SaveDeviceInfo"] = ro.SaveDeviceInfo(ctx, want)
	_, writes["MoveServer"] = ro.MoveServer(ctx, "10.0.0.9", 1)
	_, writes["BeginPerson"] = ro.BeginPerson(ctx, "p")
	_, writes["DeletePerson"] = ro.DeletePerson(ctx, testPerson(1).PersonID)
	writes["Checkpoint"] = ro.Checkpoint(ctx)
	for name, err := range writes {
		if !errors.Is(err, ErrReadOnly) {
			t.Errorf("read-only %s = %v, want ErrReadOnly", name, err)
		}
	}
	if st, _ := daemon.OutboxStats(ctx); st.Depth != 21 {
		t.Errorf("daemon's outbox changed: %+v", st)
	}
}

func TestReadOnlyAfterACleanShutdown(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "t.db")
	db := mustOpen(t, path, testConfig(t))
	fillSome(t, db)
	db.Close()
	ro := mustOpen(t, path, readOnlyConfig(t))
	if st, err := ro.OutboxStats(ctx); err != nil || st.Depth != 20 {
		t.Errorf("stats %+v, %v", st, err)
	}
}

func TestReadOnlyNeverCreatesMovesOrMigrates(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.db")
	if _, err := Open(ctx, missing, readOnlyConfig(t)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("read-only open of a missing file = %v, want ErrNotExist", err)
	}
	if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Error("read-only open created the file")
	}

	empty := filepath.Join(dir, "empty.db")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, empty, readOnlyConfig(t)); !errors.Is(err, ErrReadOnly) {
		t.Errorf("read-only open of an unmigrated file = %v, want ErrReadOnly", err)
	}

	bad := filepath.Join(dir, "bad.db")
	if err := os.WriteFile(bad, []byte("this is not a database, it is a text file of some length"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, bad, readOnlyConfig(t)); !errors.Is(err, ErrDamaged) {
		t.Errorf("read-only open of garbage = %v, want ErrDamaged", err)
	}
	if m, _ := filepath.Glob(bad + ".damaged-*"); len(m) != 0 {
		t.Errorf("read-only open moved the file aside: %v", m)
	}
}

package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/rs/zerolog"
)

// testClock is a settable clock for Config.Now.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock() *testClock {
	return &testClock{t: time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)}
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// testConfig returns a Config that logs to the test.
func testConfig(t testing.TB) Config {
	return Config{Logger: zerolog.New(zerolog.NewTestWriter(t))}
}

// mustOpen opens path (in a fresh temp dir when empty) and closes it at the
// end of the test.
func mustOpen(t testing.TB, path string, cfg Config) *DB {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "termagent.db")
	}
	db, err := Open(context.Background(), path, cfg)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// rawDB opens path with the driver directly, bypassing the store.
func rawDB(t testing.TB, path string) *sql.DB {
	t.Helper()
	raw, err := sql.Open("sqlite3", "file:"+escapePath(path))
	if err != nil {
		t.Fatal(err)
	}
	raw.SetMaxOpenConns(1)
	t.Cleanup(func() { raw.Close() })
	return raw
}

func TestPragmasAreSetOnEveryConnection(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		dur  Durability
		sync int
	}{{"full", DurabilityFull, 2}, {"nofsync", DurabilityNoFsync, 1}} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.Durability = tc.dur
			db := mustOpen(t, "", cfg)
			for name, pool := range map[string]*sql.DB{"writer": db.w, "reader": db.r} {
				var mode string
				var syncLevel, fk, busy, queryOnly int
				q := func(pragma string, dst any) {
					t.Helper()
					if err := pool.QueryRowContext(ctx, "PRAGMA "+pragma).Scan(dst); err != nil {
						t.Fatalf("%s: PRAGMA %s: %v", name, pragma, err)
					}
				}
				q("journal_mode", &mode)
				q("synchronous", &syncLevel)
				q("foreign_keys", &fk)
				q("busy_timeout", &busy)
				q("query_only", &queryOnly)
				if mode != "wal" || syncLevel != tc.sync || fk != 1 || busy != int(DefaultBusyTimeout.Milliseconds()) {
					t.Errorf("%s: journal_mode=%s synchronous=%d foreign_keys=%d busy_timeout=%d, want wal %d 1 %d",
						name, mode, syncLevel, fk, busy, tc.sync, DefaultBusyTimeout.Milliseconds())
				}
				if want := map[string]int{"writer": 0, "reader": 1}[name]; queryOnly != want {
					t.Errorf("%s: query_only=%d, want %d", name, queryOnly, want)
				}
			}
		})
	}
}

func TestFilesAreCreatedPrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "sub")
	path := filepath.Join(dir, "t.db")
	db := mustOpen(t, path, testConfig(t))
	if _, err := db.Enqueue(context.Background(), Record{Body: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatalf("stat %s: %v", p, err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", p, fi.Mode().Perm())
		}
	}
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("directory has mode %v, want 0700", fi.Mode().Perm())
	}
}

func TestExistingFileIsMadePrivate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.db")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	mustOpen(t, path, testConfig(t))
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
}

func TestPathWithURICharacters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a?b#c%d e.db")
	db := mustOpen(t, path, testConfig(t))
	if _, err := db.Enqueue(context.Background(), Record{Body: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database not at its path: %v", err)
	}
}

func TestOpenRefusesNonFilePaths(t *testing.T) {
	for _, p := range []string{"", ":memory:", "file:x.db?mode=memory"} {
		if _, err := Open(context.Background(), p, Config{}); !errors.Is(err, ErrInvalid) {
			t.Errorf("Open(%q) = %v, want ErrInvalid", p, err)
		}
	}
	if _, err := Open(context.Background(), t.TempDir(), Config{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("Open(directory) = %v, want ErrInvalid", err)
	}
}

func TestMigrationsAreNumberedAndRecorded(t *testing.T) {
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) == 0 {
		t.Fatal("no migrations embedded")
	}
	path := filepath.Join(t.TempDir(), "t.db")
	db := mustOpen(t, path, testConfig(t))
	var n, maxV, userVersion int
	if err := db.r.QueryRow(`SELECT count(*), max(version) FROM schema_migrations`).Scan(&n, &maxV); err != nil {
		t.Fatal(err)
	}
	if err := db.r.QueryRow(`PRAGMA user_version`).Scan(&userVersion); err != nil {
		t.Fatal(err)
	}
	if n != len(ms) || maxV != len(ms) || userVersion != len(ms) {
		t.Errorf("recorded %d migrations up to %d (user_version %d), want %d", n, maxV, userVersion, len(ms))
	}
	db.Close()
	// Reopening applies nothing twice.
	db = mustOpen(t, path, testConfig(t))
	if err := db.r.QueryRow(`SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != len(ms) {
		t.Errorf("after reopen %d migrations recorded, want %d", n, len(ms))
	}
}

func TestNewerSchemaIsRefusedAndKept(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.db")
	db := mustOpen(t, path, testConfig(t))
	if _, err := db.Enqueue(context.Background(), Record{Body: []byte("keep me")}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	raw := rawDB(t, path)
	if _, err := raw.Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, '0999_future.sql', 0)`); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	_, err := Open(context.Background(), path, testConfig(t))
	if !errors.Is(err, ErrNewerSchema) {
		t.Fatalf("Open = %v, want ErrNewerSchema", err)
	}
	if m, _ := filepath.Glob(path + ".damaged-*"); len(m) != 0 {
		t.Errorf("a newer database was moved aside: %v", m)
	}
	raw = rawDB(t, path)
	var n int
	if err := raw.QueryRow(`SELECT count(*) FROM outbox`).Scan(&n); err != nil || n != 1 {
		t.Errorf("outbox rows after refused open: %d, %v; want 1", n, err)
	}
}

// damage describes one way to break a database file.
type damage struct {
	name  string
	apply func(t *testing.T, path string)
}

var damages = []damage{
	{"garbage", func(t *testing.T, path string) {
		if err := os.WriteFile(path, bytes.Repeat([]byte("not a database "), 1000), 0o600); err != nil {
			t.Fatal(err)
		}
	}},
	{"truncated", func(t *testing.T, path string) {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(path, fi.Size()/3); err != nil {
			t.Fatal(err)
		}
	}},
	{"half-header", func(t *testing.T, path string) {
		if err := os.Truncate(path, 50); err != nil {
			t.Fatal(err)
		}
	}},
	{"corrupt-pages", func(t *testing.T, path string) {
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		fi, _ := f.Stat()
		// Scribble over every page but the first (the header and schema
		// survive, the tables do not).
		junk := bytes.Repeat([]byte{0xA5, 0x5A, 0x00, 0xFF}, 256)
		for off := int64(4096); off < fi.Size(); off += 4096 {
			if _, err := f.WriteAt(junk, off+100); err != nil {
				t.Fatal(err)
			}
		}
	}},
}

func TestDamagedDatabaseIsMovedAsideAndReplaced(t *testing.T) {
	for _, d := range damages {
		t.Run(d.name, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			path := filepath.Join(dir, "t.db")
			clock := newTestClock()
			cfg := testConfig(t)
			cfg.Now = clock.Now
			db := mustOpen(t, path, cfg)
			fillSome(t, db)
			if err := db.Checkpoint(ctx); err != nil {
				t.Fatal(err)
			}
			db.Close()
			d.apply(t, path)
			damaged, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}

			db, err = Open(ctx, path, cfg)
			if err != nil {
				t.Fatalf("Open of a damaged database failed: %v", err)
			}
			defer db.Close()
			rec, ok := db.Recovery()
			if !ok {
				t.Fatal("Recovery() reports nothing after opening a damaged file")
			}
			want := path + ".damaged-20261127T080000Z"
			if rec.MovedTo != want || rec.Reason == "" || !rec.At.Equal(clock.Now()) {
				t.Errorf("Recovery = %+v, want MovedTo %s, a reason, At %v", rec, want, clock.Now())
			}
			kept, err := os.ReadFile(rec.MovedTo)
			if err != nil || !bytes.Equal(kept, damaged) {
				t.Errorf("damaged file not kept intact at %s (err %v)", rec.MovedTo, err)
			}
			if err := db.IntegrityCheck(ctx); err != nil {
				t.Errorf("fresh database: %v", err)
			}
			if n, err := db.CountPersons(ctx); err != nil || n != rec.Salvaged.Persons {
				t.Errorf("fresh database has %d persons (%v), salvaged %d", n, err, rec.Salvaged.Persons)
			}
			if _, err := db.Enqueue(ctx, Record{Body: []byte("after recovery")}); err != nil {
				t.Errorf("enqueue on the fresh database: %v", err)
			}
		})
	}
}

func TestSecondRecoveryKeepsBothFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "t.db")
	clock := newTestClock()
	cfg := testConfig(t)
	cfg.Now = clock.Now
	for i := 0; i < 2; i++ {
		if err := os.WriteFile(path, []byte(strings.Repeat("junk", 2000)), 0o600); err != nil {
			t.Fatal(err)
		}
		db, err := Open(context.Background(), path, cfg)
		if err != nil {
			t.Fatal(err)
		}
		db.Close()
	}
	m, _ := filepath.Glob(path + ".damaged-*")
	if len(m) != 2 {
		t.Errorf("damaged copies %v, want 2 (same second, distinct names)", m)
	}
}

func TestUnreadableDirectoryIsAnErrorNotARecovery(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root ignores permissions")
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(dir, 0o700)
	if _, err := Open(context.Background(), filepath.Join(dir, "t.db"), Config{}); err == nil {
		t.Fatal("Open in a read-only directory succeeded")
	}
}

func TestCloseIsIdempotentAndStopsEverything(t *testing.T) {
	ctx := context.Background()
	db := mustOpen(t, "", testConfig(t))
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	checks := map[string]error{}
	_, checks["Enqueue"] = db.Enqueue(ctx, Record{Body: []byte("x")})
	_, checks["Peek"] = db.Peek(ctx, 1)
	checks["Ack"] = db.Ack(ctx, 1)
	_, checks["Nack"] = db.Nack(ctx, 1, time.Time{}, "")
	_, checks["OutboxStats"] = db.OutboxStats(ctx)
	_, checks["DeviceInfo"] = db.DeviceInfo(ctx)
	checks["SaveDeviceInfo"] = db.SaveDeviceInfo(ctx, Settings{UUID: "u"})
	_, checks["PersonByCard"] = db.PersonByCard(ctx, "1")
	_, checks["BeginPerson"] = db.BeginPerson(ctx, "p")
	_, checks["DeletePerson"] = db.DeletePerson(ctx, "p")
	for name, err := range checks {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", name, err)
		}
	}
}

// fillSome stores a few persons and records so a file has content.
func fillSome(t *testing.T, db *DB) {
	t.Helper()
	ctx := context.Background()
	for i := 0; i < 20; i++ {
		p := testPerson(i)
		putPerson(t, db, p)
		if _, err := db.Enqueue(ctx, Record{Body: []byte(p.PersonID)}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCloseDuringTraffic(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(t.TempDir(), "t.db"), testConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	putPerson(t, db, testPerson(1))
	card := testPerson(1).CardNumber
	ops := []func() error{
		func() error { _, err := db.Enqueue(ctx, Record{Body: []byte("x")}); return err },
		func() error { _, err := db.Peek(ctx, 4); return err },
		func() error { _, err := db.PersonByCard(ctx, card); return err },
		func() error { _, err := db.OutboxStats(ctx); return err },
		func() error {
			recs, err := db.Peek(ctx, 4)
			if err != nil || len(recs) == 0 {
				return err
			}
			return db.Ack(ctx, ids(recs)...)
		},
		func() error {
			tx, err := db.BeginPerson(ctx, "q")
			if err != nil {
				return err
			}
			defer tx.Rollback()
			tx.Put(Person{PersonID: "q", Name: "n"})
			return tx.Commit(ctx)
		},
	}
	errs := make(chan error, 64)
	started := make(chan struct{}, len(ops)*2)
	var wg sync.WaitGroup
	for i := 0; i < len(ops)*2; i++ {
		wg.Add(1)
		go func(op func() error) {
			defer wg.Done()
			for n := 0; ; n++ {
				if n == 3 {
					started <- struct{}{}
				}
				if err := op(); err != nil {
					errs <- err
					return
				}
			}
		}(ops[i%len(ops)])
	}
	for i := 0; i < len(ops)*2; i++ {
		select {
		case <-started:
		case err := <-errs:
			t.Fatalf("before Close: %v", err)
		case <-time.After(30 * time.Second):
			t.Fatal("operations did not get going")
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("operation cut off by Close: %v, want ErrClosed", err)
		}
	}
}

func TestMigrationNamesAreChecked(t *testing.T) {
	sql := &fstest.MapFile{Data: []byte("SELECT 1;")}
	for name, fsys := range map[string]fstest.MapFS{
		"gap":       {"migrations/0001_a.sql": sql, "migrations/0003_c.sql": sql},
		"no number": {"migrations/init.sql": sql},
		"zero":      {"migrations/0000_a.sql": sql},
		"duplicate": {"migrations/0001_a.sql": sql, "migrations/1_b.sql": sql},
	} {
		if _, err := parseMigrations(fsys); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	ms, err := parseMigrations(fstest.MapFS{
		"migrations/0010_j.sql": sql, "migrations/0002_b.sql": sql, "migrations/0001_a.sql": sql,
		"migrations/0003_c.sql": sql, "migrations/0004_d.sql": sql, "migrations/0005_e.sql": sql,
		"migrations/0006_f.sql": sql, "migrations/0007_g.sql": sql, "migrations/0008_h.sql": sql,
		"migrations/0009_i.sql": sql,
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range ms {
		if m.version != i+1 {
			t.Errorf("migration %d is %s: numeric order broken", i, m.name)
		}
	}
}

func TestGarbageLogFileIsNotDamage(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "t.db")
	db := mustOpen(t, path, testConfig(t))
	fillSome(t, db)
	db.Close()
	if err := os.WriteFile(path+"-wal", bytes.Repeat([]byte("garbage log "), 4000), 0o600); err != nil {
		t.Fatal(err)
	}
	db = mustOpen(t, path, testConfig(t))
	if r, ok := db.Recovery(); ok {
		t.Fatalf("a sound database was moved aside for a garbage log: %+v", r)
	}
	if st, err := db.OutboxStats(ctx); err != nil || st.Depth != 20 {
		t.Errorf("after a garbage log: %+v, %v", st, err)
	}
}

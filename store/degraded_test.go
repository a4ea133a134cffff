package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"termagent/store/faultfs"
)

// A database on a file system that is read-only at start opens read-only
// instead of failing: persons are readable, writes say ErrReadOnly, and
// MakeWritable switches it to read-write once the file system is writable
// again, keeping everything.
func TestFaultReadOnlyFileSystemAtOpen(t *testing.T) {
	if !faultfs.Run(t) {
		return
	}
	for _, crashed := range []bool{false, true} {
		t.Run(fmt.Sprintf("crashed=%v", crashed), func(t *testing.T) {
			ctx := context.Background()
			fs := faultfs.Mount(t, 16<<20)
			path := filepath.Join(fs.Dir, "t.db")
			db := mustOpen(t, path, testConfig(t))
			fillSome(t, db)
			if crashed {
				// A copy of the files as a power cut leaves them: the WAL
				// and its index still there.
				if err := copyFiles(path, path+".crash"); err != nil {
					t.Fatal(err)
				}
			}
			db.Close()
			if crashed {
				path += ".crash"
			}
			fs.ReadOnly()

			start := time.Now()
			db, err := Open(ctx, path, testConfig(t))
			if err != nil {
				t.Fatalf("Open on a read-only file system: %v", err)
			}
			defer db.Close()
			if ok, why := db.Writable(); ok || why == "" {
				t.Errorf("Writable() = %v, %q; want false and a reason", ok, why)
			}
			if p, err := db.PersonByCard(ctx, testPerson(7).CardNumber); err != nil || p.PersonID != testPerson(7).PersonID {
				t.Errorf("PersonByCard on the read-only store = %+v, %v", p, err)
			}
			if st, err := db.OutboxStats(ctx); err != nil || st.Depth != 20 {
				t.Errorf("OutboxStats = %+v, %v", st, err)
			}
			if _, err := db.Enqueue(ctx, Record{Body: []byte("x")}); !errors.Is(err, ErrReadOnly) {
				t.Errorf("Enqueue on the read-only store = %v, want ErrReadOnly", err)
			}
			if _, err := db.BeginPerson(ctx, "p"); !errors.Is(err, ErrReadOnly) {
				t.Errorf("BeginPerson = %v, want ErrReadOnly", err)
			}
			if err := db.MakeWritable(ctx); err == nil {
				t.Error("MakeWritable succeeded on a read-only file system")
			}

			fs.ReadWrite()
			if err := db.MakeWritable(ctx); err != nil {
				t.Fatalf("MakeWritable after the remount: %v", err)
			}
			took := time.Since(start)
			if ok, _ := db.Writable(); !ok {
				t.Error("still read-only after MakeWritable")
			}
			select {
			case <-db.Wake():
			default:
				t.Error("no Wake after becoming writable with records waiting")
			}
			r, err := db.Enqueue(ctx, Record{Body: []byte("after")})
			if err != nil {
				t.Fatalf("Enqueue after MakeWritable: %v", err)
			}
			recs, err := db.Peek(ctx, 100)
			if err != nil || len(recs) != 21 || recs[20].ID != r.ID {
				t.Errorf("Peek after recovery: %d records, %v", len(recs), err)
			}
			if err := db.Ack(ctx, recs[0].ID); err != nil {
				t.Error(err)
			}
			putPerson(t, db, testPerson(99))
			if n, err := db.CountPersons(ctx); err != nil || n != 21 {
				t.Errorf("CountPersons = %d, %v", n, err)
			}
			if err := db.IntegrityCheck(ctx); err != nil {
				t.Error(err)
			}
			if !crashed {
				t.Logf("FAULTROW\t%s\t%s\t%s", "store read-only at start (store level)",
					"opens read-only: persons readable, writes refused with ErrReadOnly; writable again after the remount",
					fmt.Sprintf("persons 20 readable, records 20 kept, open→writable %v", took.Round(time.Millisecond)))
			}
		})
	}
}

// copyFiles copies a database and its -wal and -shm files, as they are.
func copyFiles(src, dst string) error {
	for _, sfx := range []string{"", "-wal", "-shm"} {
		b, err := readFileIfExists(src + sfx)
		if err != nil {
			return err
		}
		if b == nil {
			continue
		}
		if err := writeFile0600(dst+sfx, b); err != nil {
			return err
		}
	}
	return nil
}

func readFileIfExists(p string) ([]byte, error) {
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	return b, err
}

func writeFile0600(p string, b []byte) error { return os.WriteFile(p, b, 0o600) }

package store

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// readableByRowid reads, one rowid at a time as a careful person with the
// sqlite3 shell would, the person_ids and outbox session_ids a damaged file
// still holds. It opens a private copy (so the file under test is not
// touched) and skips every row that fails.
func readableByRowid(t *testing.T, path string, maxRowid int) (persons, sessions map[string]bool) {
	t.Helper()
	cp := filepath.Join(t.TempDir(), "copy.db")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := sql.Open("sqlite3", "file:"+cp+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	persons, sessions = map[string]bool{}, map[string]bool{}
	for id := 1; id <= maxRowid; id++ {
		var s string
		if c.QueryRow(`SELECT person_id FROM persons WHERE rowid = ?`, id).Scan(&s) == nil {
			persons[s] = true
		}
		if c.QueryRow(`SELECT session_id FROM outbox WHERE id = ?`, id).Scan(&s) == nil {
			sessions[s] = true
		}
	}
	return persons, sessions
}

// A damaged database is moved aside, and what can still be read from it —
// settings (the uuid), persons with their biometrics, unsent records with
// their session_ids — is salvaged into the fresh one and counted.
func TestFaultDamagedDatabaseIsSalvaged(t *testing.T) {
	const nPersons, nRecords = 301, 20
	for _, tc := range []struct {
		name, fault string
		damage      func(t *testing.T, path string)
	}{
		{"middle", "database damaged (8 KiB of garbage mid-file)", func(t *testing.T, path string) {
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			// Two pages from the one holding person 150's row (its name is
			// stored nowhere else): persons are lost, not only blobs.
			at := bytes.Index(b, []byte(testPerson(150).Name))
			if at < 0 {
				t.Fatal("person 150 not found in the file")
			}
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			off := int64(at) &^ 4095
			if _, err := f.WriteAt(bytes.Repeat([]byte{0xDE, 0xAD, 0xBE, 0xEF}, 2048), off); err != nil {
				t.Fatal(err)
			}
		}},
		{"header", "database damaged (header scribbled)", func(t *testing.T, path string) {
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.WriteAt(bytes.Repeat([]byte{0x5A}, 100), 0); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), "t.db")
			cfg := testConfig(t)
			db := mustOpen(t, path, cfg)
			want := map[string]Person{}
			for i := range nPersons {
				p := testPerson(i)
				if i%10 != 0 { // most persons carry a card only: many to a page
					p.Face, p.LeftImage, p.RightImage, p.LeftCode, p.RightCode = nil, nil, nil, nil, nil
				}
				putPerson(t, db, p)
				want[p.PersonID] = p
			}
			recs := enqueueN(t, db, nRecords, "rec")
			if _, err := db.Nack(ctx, recs[3].ID, time.Time{}, "refused"); err != nil {
				t.Fatal(err)
			}
			info, err := db.DeviceInfo(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := db.Checkpoint(ctx); err != nil {
				t.Fatal(err)
			}
			db.Close()
			tc.damage(t, path)
			var readable, readableRecs map[string]bool
			if tc.name == "middle" {
				readable, readableRecs = readableByRowid(t, path, nPersons+nRecords)
				if len(readable) == 0 || len(readable) == nPersons {
					t.Fatalf("the damage left %d of %d persons readable: the test needs a partial loss", len(readable), nPersons)
				}
			}

			start := time.Now()
			db, err = Open(ctx, path, cfg)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			took := time.Since(start)
			defer db.Close()
			rec, ok := db.Recovery()
			if !ok {
				t.Fatal("no Recovery reported for a damaged database")
			}
			t.Logf("recovery: %s; salvaged %v; lost %v", rec.Reason, rec.Salvaged, rec.Lost)
			if readable != nil {
				// Exactly what a row-by-row reader gets, no less.
				if rec.Salvaged.Persons < len(readable) || rec.Salvaged.Records < len(readableRecs) {
					t.Errorf("salvaged %v; a row-by-row reader gets %d persons and %d records", rec.Salvaged, len(readable), len(readableRecs))
				}
			} else if rec.Salvaged.Persons != nPersons || rec.Salvaged.Records != nRecords {
				t.Errorf("salvaged %v after a scribbled header; want every person and record", rec.Salvaged)
			}
			n, err := db.CountPersons(ctx)
			if err != nil || n != rec.Salvaged.Persons {
				t.Errorf("fresh database holds %d persons (%v), Recovery says %d", n, err, rec.Salvaged.Persons)
			}
			// Every salvaged person is the same as before, biometrics included.
			bios := 0
			err = db.EachPerson(ctx, func(p Person) error {
				w, ok := want[p.PersonID]
				if !ok || !sameFields(p, w) {
					return fmt.Errorf("salvaged person %+v differs from %+v", p, w)
				}
				if w.LeftCode != nil {
					b, err := db.Biometric(ctx, p.PersonID, LeftCode)
					if err != nil || !sameBio(b, w.LeftCode) {
						return fmt.Errorf("person %s: left code %v", p.PersonID, err)
					}
					bios++
				}
				return nil
			})
			if err != nil {
				t.Error(err)
			}
			if s, err := db.DeviceInfo(ctx); err != nil || rec.Salvaged.Settings == 1 && s.UUID != info.UUID {
				t.Errorf("settings after salvage: %+v, %v; uuid was %s", s, err, info.UUID)
			}
			// Records keep their session_ids and their quarantine state.
			got, err := db.Peek(ctx, 100)
			if err != nil {
				t.Fatal(err)
			}
			q, _ := db.Quarantined(ctx, 100)
			sessions := map[string]bool{}
			for _, r := range append(got, q...) {
				sessions[r.SessionID] = true
			}
			orig := map[string]bool{}
			for _, r := range recs {
				orig[r.SessionID] = true
			}
			for s := range sessions {
				if !orig[s] {
					t.Errorf("salvaged record with unknown session_id %s", s)
				}
			}
			for s := range readableRecs {
				if !sessions[s] {
					t.Errorf("readable record %s not salvaged", s)
				}
			}
			if len(sessions) != rec.Salvaged.Records {
				t.Errorf("outbox holds %d records, Recovery says %d", len(sessions), rec.Salvaged.Records)
			}
			if err := db.IntegrityCheck(ctx); err != nil {
				t.Error(err)
			}
			t.Logf("FAULTROW\t%s\t%s\t%s", tc.fault,
				"file moved aside, readable persons/settings/unsent records salvaged into a fresh one, counts logged and sent as an event",
				fmt.Sprintf("persons %d/%d (with biometrics %d), records %d/%d salvaged, lost rows %d, detect+salvage %v",
					rec.Salvaged.Persons, nPersons, bios, rec.Salvaged.Records, nRecords, rec.Lost.Total(), took.Round(time.Millisecond)))
		})
	}
}

// A write-ahead log damaged in the middle is not the torn end of a power
// cut: committed transactions follow the damage, and SQLite would skip them
// without a word. Open detects it, moves the database aside, salvages what
// the valid part of the log holds and reports the lost commits.
func TestFaultDamagedLogIsDetected(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	live := filepath.Join(dir, "live.db")
	cfg := testConfig(t)
	db := mustOpen(t, live, cfg)
	fillSome(t, db)
	if err := db.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	recs := enqueueN(t, db, 20, "wal") // 20 commits, in the log only
	// A power cut: the files as they are now (the WAL index is rebuilt at
	// the next open).
	path := filepath.Join(dir, "t.db")
	for _, sfx := range []string{"", "-wal"} {
		b, err := os.ReadFile(live + sfx)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path+sfx, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	fi, err := os.Stat(path + "-wal")
	if err != nil || fi.Size() < 10*4120 {
		t.Fatalf("log of %d bytes (%v): the test needs the 20 commits in it", fi.Size(), err)
	}
	f, err := os.OpenFile(path+"-wal", os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	frames := (fi.Size() - 32) / 4120
	if _, err := f.WriteAt(bytes.Repeat([]byte{0xDE, 0xAD, 0xBE, 0xEF}, 2048), 32+frames/2*4120+100); err != nil {
		t.Fatal(err)
	}
	f.Close()
	// What SQLite itself replays from the damaged files.
	cp := filepath.Join(t.TempDir(), "copy.db")
	for _, sfx := range []string{"", "-wal"} {
		b, _ := os.ReadFile(path + sfx)
		os.WriteFile(cp+sfx, b, 0o600)
	}
	var replayed int
	raw, err := sql.Open("sqlite3", "file:"+cp)
	if err != nil {
		t.Fatal(err)
	}
	if err := raw.QueryRow(`SELECT count(*) FROM outbox`).Scan(&replayed); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	if replayed >= 40 {
		t.Fatalf("SQLite replayed every commit (%d records): the damage missed the log", replayed)
	}

	start := time.Now()
	got, err := Open(ctx, path, cfg)
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	defer got.Close()
	rec, ok := got.Recovery()
	if !ok {
		t.Fatalf("a log damaged in the middle went unnoticed (SQLite replays %d of 40 records)", replayed)
	}
	t.Logf("recovery: %s; salvaged %v; lost commits %d", rec.Reason, rec.Salvaged, rec.LostCommits)
	if rec.LostCommits == 0 || rec.Salvaged.Records != replayed || rec.Salvaged.Persons != 20 {
		t.Errorf("Recovery %+v; want lost commits > 0, %d records and 20 persons salvaged", rec, replayed)
	}
	orig := map[string]bool{}
	for _, r := range recs {
		orig[r.SessionID] = true
	}
	kept, _ := got.Peek(ctx, 100)
	for _, r := range kept {
		if bytes.HasPrefix(r.Body, []byte("wal")) && !orig[r.SessionID] {
			t.Errorf("salvaged record %s has a new session_id", r.Body)
		}
	}
	t.Logf("FAULTROW\t%s\t%s\t%s", "database damaged (write-ahead log, mid-file)",
		"detected before SQLite silently skips the commits after the damage: moved aside, the valid part salvaged, lost commits reported (log, status, event)",
		fmt.Sprintf("records 40 committed, %d salvaged, %d later commits lost and reported, detect+salvage %v",
			rec.Salvaged.Records, rec.LostCommits, took.Round(time.Millisecond)))
}

package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"path/filepath"
	"testing"
)

// readerSource is a Source that reads data, failing after failAt bytes
// when failAt >= 0 (a spool file cut off under the store).
type readerSource struct {
	data   []byte
	failAt int
}

func (s readerSource) Len() int { return len(s.data) }
func (s readerSource) Open() io.Reader {
	if s.failAt >= 0 {
		return io.MultiReader(bytes.NewReader(s.data[:s.failAt]), iotestErrReader{})
	}
	return bytes.NewReader(s.data)
}

type iotestErrReader struct{}

func (iotestErrReader) Read([]byte) (int, error) { return 0, errors.New("source failed") }

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// countRows returns the rows of table.
func countRows(t *testing.T, db *DB, table string) int {
	t.Helper()
	var n int
	if err := db.readRow(context.Background(), `SELECT count(*) FROM `+table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestBigBiometricsFromASource: a biometric longer than a chunk, from a
// Source or from Data, is stored in chunks and read back whole by
// Biometric and PersonWithBiometrics; a small Source stays in its row; a
// replacement and a deletion leave no chunk behind.
func TestBigBiometricsFromASource(t *testing.T) {
	ctx := context.Background()
	db := mustOpen(t, filepath.Join(t.TempDir(), "t.db"), testConfig(t))
	face := randomBytes(3*chunkSize + 123)
	left := randomBytes(chunkSize + 1)
	small := randomBytes(1000)
	p := Person{PersonID: "big", Name: "Big",
		Face:      &Biometric{Source: readerSource{face, -1}, Format: "2", Width: 640, Height: 480},
		LeftImage: &Biometric{Data: left},
		LeftCode:  &Biometric{Source: readerSource{small, -1}},
	}
	putPerson(t, db, p)
	if n := countRows(t, db, "biometric_chunks"); n != 4+2 {
		t.Fatalf("%d chunks stored, want 6", n)
	}
	got, err := db.PersonWithBiometrics(ctx, "big")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		got, want []byte
	}{{"face", got.Face.Data, face}, {"left_image", got.LeftImage.Data, left}, {"left_code", got.LeftCode.Data, small}} {
		if !bytes.Equal(c.got, c.want) {
			t.Fatalf("%s: read back %d bytes, want %d (or different bytes)", c.name, len(c.got), len(c.want))
		}
	}
	if got.Face.Format != "2" || got.Face.Width != 640 || got.Face.Height != 480 {
		t.Fatalf("face description: %+v", got.Face)
	}
	b, err := db.Biometric(ctx, "big", Face)
	if err != nil || !bytes.Equal(b.Data, face) {
		t.Fatalf("Biometric(face): %d bytes, %v", len(b.Data), err)
	}
	if _, err := db.Biometric(ctx, "big", RightCode); !errors.Is(err, ErrNotFound) {
		t.Fatalf("absent biometric: %v", err)
	}

	p.Face = &Biometric{Data: small}
	p.LeftImage = nil
	putPerson(t, db, p)
	if n := countRows(t, db, "biometric_chunks"); n != 0 {
		t.Fatalf("%d chunks left after the replacement", n)
	}
	p.Face = &Biometric{Source: readerSource{face, -1}}
	putPerson(t, db, p)
	if _, err := db.DeletePerson(ctx, "big"); err != nil {
		t.Fatal(err)
	}
	if n := countRows(t, db, "biometric_chunks"); n != 0 {
		t.Fatalf("%d chunks left after the deletion", n)
	}
}

// TestFailedSourceLeavesNothing: a Source that fails half-way through
// (its spool file cut off) fails the Commit, and the database is as
// before: the old person, its biometrics, no chunk of the new one.
func TestFailedSourceLeavesNothing(t *testing.T) {
	ctx := context.Background()
	db := mustOpen(t, filepath.Join(t.TempDir(), "t.db"), testConfig(t))
	old := randomBytes(2 * chunkSize)
	putPerson(t, db, Person{PersonID: "p", Name: "Old", Face: &Biometric{Data: old}})
	tx, err := db.BeginPerson(ctx, "p")
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if err := tx.Put(Person{PersonID: "p", Name: "New", Face: &Biometric{Source: readerSource{randomBytes(5 * chunkSize), 3*chunkSize + 7}}}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err == nil {
		t.Fatal("Commit succeeded with a failing source")
	}
	got, err := db.PersonWithBiometrics(ctx, "p")
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "Old" || !bytes.Equal(got.Face.Data, old) {
		t.Fatalf("after the failed commit: name %q, face %d bytes", got.Name, len(got.Face.Data))
	}
	if n := countRows(t, db, "biometric_chunks"); n != 2 {
		t.Fatalf("%d chunks, want the old face's 2", n)
	}
}

// TestSalvageKeepsWholeChunkedBiometricsOnly: salvage copies a chunked
// biometric whose chunks all read, and drops (counted lost) one whose
// chunks are partly gone, rather than restore a truncated photo or
// template that a module would enrol.
func TestSalvageKeepsWholeChunkedBiometricsOnly(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	srcPath := filepath.Join(dir, "damaged.db")
	src := mustOpen(t, srcPath, testConfig(t))
	whole := randomBytes(2*chunkSize + 7)
	cut := randomBytes(3 * chunkSize)
	putPerson(t, src, Person{PersonID: "whole", Face: &Biometric{Data: whole}})
	putPerson(t, src, Person{PersonID: "cut", Face: &Biometric{Data: cut}})
	// The last chunk of "cut" is lost with its page: the rows left still
	// run 0, 1 in sequence, so only the stored size can tell.
	if _, err := src.w.ExecContext(ctx, `DELETE FROM biometric_chunks WHERE person_id = 'cut' AND seq = 2`); err != nil {
		t.Fatal(err)
	}
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}

	db := mustOpen(t, filepath.Join(dir, "fresh.db"), testConfig(t))
	got, lost := db.salvage(ctx, srcPath)
	if got.Persons != 2 || got.Biometrics != 1 || lost.Biometrics != 1 {
		t.Fatalf("salvaged %+v, lost %+v; want 2 persons, 1 biometric kept and 1 lost", got, lost)
	}
	p, err := db.PersonWithBiometrics(ctx, "whole")
	if err != nil || p.Face == nil || !bytes.Equal(p.Face.Data, whole) {
		t.Fatalf("whole face not salvaged byte for byte: %v", err)
	}
	p, err = db.PersonWithBiometrics(ctx, "cut")
	if err != nil {
		t.Fatal(err)
	}
	if p.Face != nil {
		t.Fatalf("a face with a chunk missing was salvaged (%d of %d bytes)", len(p.Face.Data), len(cut))
	}
	if n := countRows(t, db, "biometric_chunks"); n != 3 {
		t.Fatalf("%d chunk rows after salvage, want the 3 of the whole face", n)
	}
}

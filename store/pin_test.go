package store

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestKeyHolders(t *testing.T) {
	db := mustOpen(t, filepath.Join(t.TempDir(), "t.db"), Config{})
	ctx := context.Background()
	for i, key := range []string{"1234", "1234", "9999", ""} {
		p := testPerson(i)
		p.KeyNumber = key
		putPerson(t, db, p)
	}
	for _, c := range []struct {
		key  string
		want []string
	}{
		{"1234", []string{"P00000", "P00001"}},
		{"9999", []string{"P00002"}},
		{"123", nil},   // a prefix is no match
		{"12345", nil}, // nor a longer key
		{"", nil},      // an empty key never matches, though P00003 has none
	} {
		got, err := db.KeyHolders(ctx, c.key)
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(got)
		if !slices.Equal(got, c.want) {
			t.Errorf("KeyHolders(%q) = %q, want %q", c.key, got, c.want)
		}
	}
	db.Close()
	if _, err := db.KeyHolders(ctx, "1234"); err == nil {
		t.Error("KeyHolders on a closed store: no error")
	}
}

// BenchmarkKeyHolders looks a PIN up among 10,000 persons with a PIN (the
// scan with a constant-time compare per row) and, in the same run, a card
// through its index, the baseline; it reports both and their ratio.
func BenchmarkKeyHolders(b *testing.B) {
	const persons = 10000
	db, err := Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"), Config{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	tx, err := db.w.Begin()
	if err != nil {
		b.Fatal(err)
	}
	for i := range persons {
		if _, err := tx.Exec(`INSERT INTO persons (person_id, card_number, key_number, updated_at) VALUES (?, ?, ?, 1)`,
			fmt.Sprintf("P%05d", i), fmt.Sprintf("%010d", i), fmt.Sprintf("%06d", 100000+i)); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	var byKey, byCard time.Duration
	n := 0
	for b.Loop() {
		i := n % persons
		t0 := time.Now()
		ids, err := db.KeyHolders(ctx, fmt.Sprintf("%06d", 100000+i))
		t1 := time.Now()
		if err != nil || len(ids) != 1 {
			b.Fatalf("KeyHolders: %v %v", ids, err)
		}
		if _, err := db.PersonByCard(ctx, fmt.Sprintf("%010d", i)); err != nil {
			b.Fatal(err)
		}
		byKey += t1.Sub(t0)
		byCard += time.Since(t1)
		n++
	}
	b.ReportMetric(float64(byKey.Microseconds())/float64(n), "µs/pin")
	b.ReportMetric(float64(byCard.Microseconds())/float64(n), "µs/card")
	b.ReportMetric(float64(byKey)/float64(byCard), "pin/card")
}

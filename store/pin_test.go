package store

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
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

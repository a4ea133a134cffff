package store

import (
	"context"
	"crypto/subtle"
	"fmt"
)

// qKeys lists every person that has a key_number. PIN lookups scan it and
// compare in Go, in constant time per row, so the time a lookup takes
// depends on how many persons have a PIN, not on how much of a guess is
// right. (A PIN is short: an index seek would leak little, but a keypad
// lookup is rare and the scan of these small rows is cheap.)
const qKeys = `SELECT person_id, key_number FROM persons WHERE key_number <> ''`

// KeyHolders returns the person_ids of every person whose key_number is
// key (the PIN typed on a keypad), in no particular order: none when
// nobody holds it (an empty key never matches), several when persons
// share it (allowed on a card+PIN terminal). It never logs the key.
func (db *DB) KeyHolders(ctx context.Context, key string) ([]string, error) {
	if key == "" {
		return nil, nil
	}
	if db.isClosed() {
		return nil, ErrClosed
	}
	rows, err := db.read(ctx, qKeys)
	if err != nil {
		return nil, fmt.Errorf("persons by key: %w", err)
	}
	defer rows.Close()
	want := []byte(key)
	var ids []string
	var id string
	var k []byte
	for rows.Next() {
		if err := rows.Scan(&id, &k); err != nil {
			return nil, fmt.Errorf("persons by key: %w", err)
		}
		if subtle.ConstantTimeCompare(k, want) == 1 {
			ids = append(ids, id)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("persons by key: %w", db.closedOr(err))
	}
	return ids, nil
}

package store

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
)

// FuzzPerson stores arbitrary persons and outbox records: each is either
// refused with ErrInvalid (and nothing changes) or read back exactly.
func FuzzPerson(f *testing.F) {
	f.Add("P1", "张三", "0001234567", []byte("template"), "jpg", 3, []byte(`{"person_id":"P1"}`))
	f.Add("'; DROP TABLE persons; --", "\x00", "%", []byte{}, "", -1, []byte{})
	f.Add("\xff", "ok", "", []byte{0}, "\xfe", 1<<30, []byte("x"))
	cfg := Config{Durability: DurabilityNoFsync, MaxBiometricBytes: 1 << 16, MaxRecordBytes: 1 << 12}
	db, err := Open(context.Background(), filepath.Join(f.TempDir(), "fuzz.db"), cfg)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { db.Close() })
	f.Fuzz(func(t *testing.T, id, name, card string, data []byte, format string, role int, body []byte) {
		ctx := context.Background()
		p := Person{PersonID: id, Name: name, CardNumber: card, Role: role, LeftCode: &Biometric{Data: data, Format: format}}
		before, _ := db.CountPersons(ctx)
		_, existed := db.Person(ctx, id)
		err := func() error {
			tx, err := db.BeginPerson(ctx, id)
			if err != nil {
				return err
			}
			defer tx.Rollback()
			if err := tx.Put(p); err != nil {
				return err
			}
			return tx.Commit(ctx)
		}()
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Put(%q) = %v, want nil or ErrInvalid", id, err)
			}
			if after, _ := db.CountPersons(ctx); after != before {
				t.Fatalf("a refused person changed the count %d → %d", before, after)
			}
		} else {
			got, err := db.PersonWithBiometrics(ctx, id)
			if err != nil || !sameFields(got, p) || !sameBio(got.LeftCode, p.LeftCode) {
				t.Fatalf("stored %+v, read back %+v, %v", p, got, err)
			}
			if card != "" {
				if got, err := db.PersonByCard(ctx, card); err != nil || got.CardNumber != card {
					t.Fatalf("PersonByCard(%q) = %+v, %v", card, got, err)
				}
			}
			if after, _ := db.CountPersons(ctx); after != before+map[bool]int{true: 0, false: 1}[existed == nil] {
				t.Fatalf("count %d → %d (existed: %v)", before, after, existed == nil)
			}
		}

		rec, err := db.Enqueue(ctx, Record{SessionID: name, Body: body})
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Enqueue = %v, want nil or ErrInvalid", err)
			}
			return
		}
		recs, err := db.Peek(ctx, 1<<20)
		if err != nil || len(recs) == 0 {
			t.Fatalf("Peek: %d, %v", len(recs), err)
		}
		last := recs[len(recs)-1]
		if last.ID != rec.ID || string(last.Body) != string(body) || last.SessionID != rec.SessionID ||
			(name != "" && rec.SessionID != name) {
			t.Fatalf("enqueued %+v, read back %+v", rec, last)
		}
		if err := db.Ack(ctx, rec.ID); err != nil {
			t.Fatal(err)
		}
	})
}

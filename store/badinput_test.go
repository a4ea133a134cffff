package store

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// sqlish are strings that would break a store that built SQL from text.
var sqlish = []string{
	`'; DROP TABLE persons; --`,
	`" OR 1=1 --`,
	`Robert'); DELETE FROM outbox;--`,
	"NUL\x00inside",
	`%_\`,
	"日本語 ✓ émoji 🚪",
}

func TestBadInputIsStoredVerbatimOrRefusedCleanly(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)
	cfg.MaxBiometricBytes = 1 << 20
	cfg.MaxRecordBytes = 4096
	db := mustOpen(t, "", cfg)
	fillSome(t, db)
	personsBefore, _ := db.CountPersons(ctx)
	statsBefore, _ := db.OutboxStats(ctx)
	infoBefore, _ := db.DeviceInfo(ctx)

	// Stored verbatim: SQL-looking text in every field and key.
	for i, s := range sqlish {
		p := Person{PersonID: s + string(rune('a'+i)), Name: s, IDNumber: s, CardNumber: s, KeyNumber: s, DepartmentNumber: s,
			Face: &Biometric{Data: []byte(s), Format: s}}
		putPerson(t, db, p)
		got, err := db.PersonByCard(ctx, s)
		if err != nil || !sameFields(got, p) {
			t.Errorf("person with %q: %+v, %v", s, got, err)
		}
		full, err := db.PersonWithBiometrics(ctx, p.PersonID)
		if err != nil || !sameBio(full.Face, p.Face) {
			t.Errorf("biometric with %q: %v", s, err)
		}
		r, err := db.Enqueue(ctx, Record{SessionID: s, Body: []byte(s)})
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Ack(ctx, r.ID); err != nil {
			t.Fatal(err)
		}
	}

	// Refused with ErrInvalid, nothing written.
	long := strings.Repeat("名", 100000) // 100,000 characters
	bigBio := &Biometric{Data: bytes.Repeat([]byte{1}, cfg.MaxBiometricBytes+1)}
	refused := map[string]Person{
		"100000-char name":  {PersonID: "x1", Name: long},
		"100000-char id":    {PersonID: long},
		"long card":         {PersonID: "x2", CardNumber: strings.Repeat("9", MaxTextBytes+1)},
		"bad utf8 name":     {PersonID: "x3", Name: "ok\xc3\x28"},
		"bad utf8 id":       {PersonID: "\xff"},
		"oversized face":    {PersonID: "x4", Face: bigBio},
		"empty template":    {PersonID: "x5", LeftCode: &Biometric{}},
		"negative width":    {PersonID: "x6", LeftImage: &Biometric{Data: []byte{1}, Width: -1}},
		"huge height":       {PersonID: "x7", RightImage: &Biometric{Data: []byte{1}, Height: 1 << 30}},
		"long format":       {PersonID: "x8", Face: &Biometric{Data: []byte{1}, Format: strings.Repeat("f", 65)}},
		"bad utf8 format":   {PersonID: "x9", Face: &Biometric{Data: []byte{1}, Format: "\xfe"}},
		"empty person id":   {PersonID: ""},
		"long key number":   {PersonID: "x10", KeyNumber: long},
		"bad utf8 dept":     {PersonID: "x11", DepartmentNumber: "\xed\xa0\x80"},
		"bad utf8 idnumber": {PersonID: "x12", IDNumber: "\x80"},
	}
	for name, p := range refused {
		tx, err := db.BeginPerson(ctx, p.PersonID)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("%s: BeginPerson = %v, want ErrInvalid", name, err)
			}
			continue
		}
		if err := tx.Put(p); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Put = %v, want ErrInvalid", name, err)
		}
		if err := tx.Commit(ctx); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: Commit after a refused Put = %v, want ErrNotFound (nothing to bind)", name, err)
		}
	}
	if tx, err := db.BeginPerson(ctx, "mismatch"); err == nil {
		if err := tx.Put(Person{PersonID: "other"}); !errors.Is(err, ErrInvalid) {
			t.Errorf("Put of another person_id = %v, want ErrInvalid", err)
		}
		tx.Rollback()
	}
	for name, r := range map[string]Record{
		"empty body":        {},
		"oversized body":    {Body: bytes.Repeat([]byte{'x'}, cfg.MaxRecordBytes+1)},
		"long session id":   {SessionID: strings.Repeat("s", 129), Body: []byte("x")},
		"bad utf8 session":  {SessionID: "\xff\xfe", Body: []byte("x")},
		"100000-char sessn": {SessionID: long, Body: []byte("x")},
	} {
		if _, err := db.Enqueue(ctx, r); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Enqueue = %v, want ErrInvalid", name, err)
		}
	}
	if err := db.SaveDeviceInfo(ctx, Settings{UUID: long}); !errors.Is(err, ErrInvalid) {
		t.Errorf("100000-char uuid: %v", err)
	}
	victim, _ := db.Peek(ctx, 1)
	if _, err := db.Nack(ctx, victim[0].ID, victim[0].NextTry, long+"\xff"); err != nil {
		t.Errorf("Nack with a long invalid reason: %v", err)
	}
	if got, _ := db.Peek(ctx, 1); len(got[0].LastError) > MaxTextBytes || !utf8.ValidString(got[0].LastError) ||
		!strings.HasPrefix(long, got[0].LastError) {
		t.Errorf("Nack reason stored as %d bytes, valid UTF-8 %v", len(got[0].LastError), utf8.ValidString(got[0].LastError))
	}

	// Nothing else changed and the file is sound.
	if n, _ := db.CountPersons(ctx); n != personsBefore+len(sqlish) {
		t.Errorf("persons %d, want %d", n, personsBefore+len(sqlish))
	}
	if st, _ := db.OutboxStats(ctx); st.Depth != statsBefore.Depth {
		t.Errorf("outbox depth %d, want %d", st.Depth, statsBefore.Depth)
	}
	if info, _ := db.DeviceInfo(ctx); info != infoBefore {
		t.Errorf("settings changed: %+v", info)
	}
	if err := db.IntegrityCheck(ctx); err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{"persons", "biometrics", "outbox", "settings", "finger_slots"} {
		var n int
		if err := db.r.QueryRow(`SELECT count(*) FROM ` + table).Scan(&n); err != nil {
			t.Errorf("table %s: %v", table, err)
		}
	}
}

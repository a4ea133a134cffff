package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// testPerson returns a person with every field and biometric set.
func testPerson(i int) Person {
	bio := func(kind string, n int) *Biometric {
		return &Biometric{Data: bytes.Repeat([]byte(fmt.Sprintf("%s-%d;", kind, i)), n), Format: "jpg", Width: 480, Height: 640}
	}
	return Person{
		PersonID:         fmt.Sprintf("P%05d", i),
		Name:             fmt.Sprintf("张三 %d", i),
		IDNumber:         fmt.Sprintf("11010119900101%04d", i),
		CardNumber:       fmt.Sprintf("%010d", 1000000+i),
		KeyNumber:        fmt.Sprintf("K%d", i),
		DepartmentNumber: "D7",
		Role:             i % 3,
		Face:             bio("face", 500),
		LeftImage:        bio("limg", 300),
		RightImage:       bio("rimg", 300),
		LeftCode:         &Biometric{Data: bytes.Repeat([]byte{byte(i), 0xAB}, 256)},
		RightCode:        &Biometric{Data: bytes.Repeat([]byte{byte(i), 0xCD}, 256)},
	}
}

// putPerson stores p without module bindings.
func putPerson(t testing.TB, db *DB, p Person) {
	t.Helper()
	ctx := context.Background()
	tx, err := db.BeginPerson(ctx, p.PersonID)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if err := tx.Put(p); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}

// sameFields compares the V1.0 fields of two persons.
func sameFields(a, b Person) bool {
	return a.PersonID == b.PersonID && a.Name == b.Name && a.IDNumber == b.IDNumber &&
		a.CardNumber == b.CardNumber && a.KeyNumber == b.KeyNumber &&
		a.DepartmentNumber == b.DepartmentNumber && a.Role == b.Role
}

func sameBio(a, b *Biometric) bool {
	if a == nil || b == nil {
		return a == b
	}
	return bytes.Equal(a.Data, b.Data) && a.Format == b.Format && a.Width == b.Width && a.Height == b.Height
}

func TestPersonRoundTripAndLookups(t *testing.T) {
	ctx := context.Background()
	clock := newTestClock()
	cfg := testConfig(t)
	cfg.Now = clock.Now
	db := mustOpen(t, "", cfg)
	want := testPerson(7)

	tx, err := db.BeginPerson(ctx, want.PersonID)
	if err != nil {
		t.Fatal(err)
	}
	if _, existed := tx.Old(); existed {
		t.Fatal("Old reports a person that was never stored")
	}
	if err := tx.Put(want); err != nil {
		t.Fatal(err)
	}
	left, err := tx.AllocFingerSlot(ctx, Left, 100)
	if err != nil {
		t.Fatal(err)
	}
	right, err := tx.AllocFingerSlot(ctx, Right, 100)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := tx.AllocFingerSlot(ctx, Left, 100); again != left {
		t.Errorf("second AllocFingerSlot(Left) = %d, want the same %d", again, left)
	}
	if left == right {
		t.Fatalf("both hands got slot %d", left)
	}
	if err := tx.SetFaceUser(42); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); !errors.Is(err, ErrTxDone) {
		t.Errorf("second Commit = %v, want ErrTxDone", err)
	}
	tx.Rollback() // no-op after Commit

	check := func(how string, p Person, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", how, err)
		}
		if !sameFields(p, want) {
			t.Errorf("%s = %+v, want fields of %+v", how, p, want)
		}
		if p.LeftSlot != left || p.RightSlot != right || p.FaceUser != 42 {
			t.Errorf("%s bindings = %d/%d/%d, want %d/%d/42", how, p.LeftSlot, p.RightSlot, p.FaceUser, left, right)
		}
		if p.Stored.Len() != 5 || !p.Stored.Has(Face) || !p.Stored.Has(RightCode) {
			t.Errorf("%s Stored = %b, want all five kinds", how, p.Stored)
		}
		if !p.UpdatedAt.Equal(clock.Now()) {
			t.Errorf("%s UpdatedAt = %v, want %v", how, p.UpdatedAt, clock.Now())
		}
	}
	p, err := db.PersonByCard(ctx, want.CardNumber)
	check("PersonByCard", p, err)
	if p.Face != nil || p.LeftCode != nil {
		t.Error("PersonByCard returned biometric blobs")
	}
	p, err = db.Person(ctx, want.PersonID)
	check("Person", p, err)
	p, err = db.PersonByFingerSlot(ctx, right)
	check("PersonByFingerSlot", p, err)
	p, err = db.PersonByFaceUser(ctx, 42)
	check("PersonByFaceUser", p, err)
	p, err = db.PersonWithBiometrics(ctx, want.PersonID)
	check("PersonWithBiometrics", p, err)
	for _, k := range allKinds {
		if !sameBio(p.Biometric(k), want.Biometric(k)) {
			t.Errorf("%s does not round-trip", k)
		}
		b, err := db.Biometric(ctx, want.PersonID, k)
		if err != nil || !sameBio(b, want.Biometric(k)) {
			t.Errorf("Biometric(%s) = %v, want the stored one", k, err)
		}
	}

	for name, f := range map[string]func() error{
		"PersonByCard(unknown)":  func() error { _, err := db.PersonByCard(ctx, "999"); return err },
		"PersonByCard(empty)":    func() error { _, err := db.PersonByCard(ctx, ""); return err },
		"Person(unknown)":        func() error { _, err := db.Person(ctx, "nobody"); return err },
		"PersonByFingerSlot(99)": func() error { _, err := db.PersonByFingerSlot(ctx, 99); return err },
		"PersonByFaceUser(1)":    func() error { _, err := db.PersonByFaceUser(ctx, 1); return err },
		"Biometric(unknown)":     func() error { _, err := db.Biometric(ctx, "nobody", Face); return err },
	} {
		if err := f(); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s = %v, want ErrNotFound", name, err)
		}
	}
}

func TestCardLookupNeverReadsBiometrics(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "t.db")
	db := mustOpen(t, path, testConfig(t))
	want := testPerson(1)
	putPerson(t, db, want)
	// Remove the biometrics table behind the store's back: a lookup that
	// touched it would now fail.
	raw := rawDB(t, path)
	if _, err := raw.Exec(`PRAGMA foreign_keys = OFF; DROP TABLE biometrics`); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	p, err := db.PersonByCard(ctx, want.CardNumber)
	if err != nil || p.PersonID != want.PersonID {
		t.Fatalf("PersonByCard without a biometrics table = %+v, %v", p, err)
	}
	if _, err := db.PersonWithBiometrics(ctx, want.PersonID); err == nil {
		t.Fatal("PersonWithBiometrics worked without a biometrics table: the check above proves nothing")
	}
}

func TestCardLookupUsesTheIndex(t *testing.T) {
	db := mustOpen(t, "", testConfig(t))
	rows, err := db.r.Query(`EXPLAIN QUERY PLAN `+qPersonByCard, "1")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	all := strings.Join(plan, " | ")
	if !strings.Contains(all, "persons_card") || strings.Contains(all, "biometrics") || strings.Contains(all, "SCAN p") {
		t.Errorf("card lookup plan: %s", all)
	}
}

func TestSecondDownloadReplacesPersonAndReleasesBindings(t *testing.T) {
	ctx := context.Background()
	db := mustOpen(t, "", testConfig(t))
	first := testPerson(3)
	tx, err := db.BeginPerson(ctx, first.PersonID)
	if err != nil {
		t.Fatal(err)
	}
	tx.Put(first)
	oldLeft, _ := tx.AllocFingerSlot(ctx, Left, 10)
	oldRight, _ := tx.AllocFingerSlot(ctx, Right, 10)
	tx.SetFaceUser(5)
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}

	second := first
	second.Name = "renamed"
	second.CardNumber = "NEWCARD"
	second.Face, second.LeftImage, second.RightImage, second.RightCode = nil, nil, nil, nil
	second.LeftCode = &Biometric{Data: []byte("new template")}
	tx, err = db.BeginPerson(ctx, first.PersonID)
	if err != nil {
		t.Fatal(err)
	}
	old, existed := tx.Old()
	if !existed || old.LeftSlot != oldLeft || old.RightSlot != oldRight || old.FaceUser != 5 {
		t.Fatalf("Old = %+v, %v; want the first download's bindings", old, existed)
	}
	tx.Put(second)
	newLeft, err := tx.AllocFingerSlot(ctx, Left, 10)
	if err != nil {
		t.Fatal(err)
	}
	if newLeft == oldLeft || newLeft == oldRight {
		t.Errorf("new slot %d reuses an old one (%d, %d): a failed enrolment would clobber them", newLeft, oldLeft, oldRight)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}

	p, err := db.PersonWithBiometrics(ctx, first.PersonID)
	if err != nil {
		t.Fatal(err)
	}
	if !sameFields(p, second) || p.Face != nil || p.RightCode != nil || !sameBio(p.LeftCode, second.LeftCode) {
		t.Errorf("after the second download: %+v", p)
	}
	if p.Stored.Len() != 1 || !p.Stored.Has(LeftCode) {
		t.Errorf("Stored = %b, want only left_code", p.Stored)
	}
	if p.LeftSlot != newLeft || p.RightSlot != Unbound || p.FaceUser != Unbound {
		t.Errorf("bindings %d/%d/%d, want %d/-1/-1", p.LeftSlot, p.RightSlot, p.FaceUser, newLeft)
	}
	if _, err := db.PersonByCard(ctx, first.CardNumber); !errors.Is(err, ErrNotFound) {
		t.Errorf("old card still finds the person: %v", err)
	}
	for _, s := range []int{oldLeft, oldRight} {
		if _, err := db.PersonByFingerSlot(ctx, s); !errors.Is(err, ErrNotFound) {
			t.Errorf("old slot %d still bound: %v", s, err)
		}
	}
	var n int
	if err := db.r.QueryRow(`SELECT count(*) FROM biometrics`).Scan(&n); err != nil || n != 1 {
		t.Errorf("%d biometric rows, want 1 (%v)", n, err)
	}
}

func TestRollbackChangesNothing(t *testing.T) {
	ctx := context.Background()
	db := mustOpen(t, "", testConfig(t))
	orig := testPerson(1)
	putPerson(t, db, orig)

	tx, err := db.BeginPerson(ctx, orig.PersonID)
	if err != nil {
		t.Fatal(err)
	}
	changed := orig
	changed.Name = "should not stick"
	tx.Put(changed)
	slot, _ := tx.AllocFingerSlot(ctx, Left, 10)
	tx.SetFaceUser(9)
	tx.Rollback()
	tx.Rollback()
	if err := tx.Put(changed); !errors.Is(err, ErrTxDone) {
		t.Errorf("Put after Rollback = %v, want ErrTxDone", err)
	}

	p, err := db.Person(ctx, orig.PersonID)
	if err != nil || p.Name != orig.Name || p.LeftSlot != Unbound || p.FaceUser != Unbound {
		t.Errorf("after Rollback: %+v, %v", p, err)
	}
	// The reserved slot is free again.
	tx, err = db.BeginPerson(ctx, "other")
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if s, _ := tx.AllocFingerSlot(ctx, Left, 10); s != slot {
		t.Errorf("slot after rollback = %d, want the freed %d", s, slot)
	}
}

func TestFingerSlotsAreFreedOnDeleteAndBoundedByCapacity(t *testing.T) {
	ctx := context.Background()
	db := mustOpen(t, "", testConfig(t))
	const capacity = 5
	enrol := func(id string, hands ...Hand) ([]int, error) {
		tx, err := db.BeginPerson(ctx, id)
		if err != nil {
			return nil, err
		}
		defer tx.Rollback()
		if err := tx.Put(Person{PersonID: id}); err != nil {
			return nil, err
		}
		var slots []int
		for _, h := range hands {
			s, err := tx.AllocFingerSlot(ctx, h, capacity)
			if err != nil {
				return nil, err
			}
			slots = append(slots, s)
		}
		return slots, tx.Commit(ctx)
	}
	a, err := enrol("a", Left, Right)
	if err != nil {
		t.Fatal(err)
	}
	b, err := enrol("b", Left, Right)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := enrol("c", Left, Right); !errors.Is(err, ErrNoFreeSlot) {
		t.Fatalf("third person with 2 fingers in 5 slots: %v, want ErrNoFreeSlot", err)
	}
	if _, err := db.Person(ctx, "c"); !errors.Is(err, ErrNotFound) {
		t.Errorf("failed enrolment stored the person: %v", err)
	}
	removed, err := db.DeletePerson(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if removed.LeftSlot != a[0] || removed.RightSlot != a[1] {
		t.Errorf("DeletePerson returned slots %d/%d, want %v", removed.LeftSlot, removed.RightSlot, a)
	}
	c, err := enrol("c", Left, Right)
	if err != nil {
		t.Fatalf("after deleting a: %v", err)
	}
	used := map[int]bool{}
	for _, s := range append(b, c...) {
		if used[s] || s < 0 || s >= capacity {
			t.Errorf("slot %d duplicated or out of range in %v %v", s, b, c)
		}
		used[s] = true
	}
	if _, err := db.DeletePerson(ctx, "a"); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleting twice = %v, want ErrNotFound", err)
	}
	if err := db.ClearFingerSlots(ctx); err != nil {
		t.Fatal(err)
	}
	if p, _ := db.Person(ctx, "b"); p.LeftSlot != Unbound {
		t.Errorf("ClearFingerSlots left slot %d bound", p.LeftSlot)
	}
	if _, err := enrol("d", Left, Right); err != nil {
		t.Errorf("after ClearFingerSlots: %v", err)
	}
}

func TestDeleteRemovesBiometricsAndFaceBinding(t *testing.T) {
	ctx := context.Background()
	db := mustOpen(t, "", testConfig(t))
	p := testPerson(2)
	tx, _ := db.BeginPerson(ctx, p.PersonID)
	tx.Put(p)
	tx.SetFaceUser(3)
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := db.DeletePerson(ctx, p.PersonID); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.r.QueryRow(`SELECT count(*) FROM biometrics`).Scan(&n); err != nil || n != 0 {
		t.Errorf("%d biometric rows left (%v)", n, err)
	}
	if _, err := db.PersonByFaceUser(ctx, 3); !errors.Is(err, ErrNotFound) {
		t.Errorf("face user still bound: %v", err)
	}
}

func TestStaleFaceUserMovesToTheNewPerson(t *testing.T) {
	ctx := context.Background()
	db := mustOpen(t, "", testConfig(t))
	for _, id := range []string{"a", "b"} {
		tx, _ := db.BeginPerson(ctx, id)
		tx.Put(Person{PersonID: id})
		tx.SetFaceUser(7)
		if err := tx.Commit(ctx); err != nil {
			t.Fatalf("bind 7 to %s: %v", id, err)
		}
	}
	if p, err := db.PersonByFaceUser(ctx, 7); err != nil || p.PersonID != "b" {
		t.Errorf("face user 7 → %+v, %v; want b", p, err)
	}
	if p, _ := db.Person(ctx, "a"); p.FaceUser != Unbound {
		t.Errorf("a still bound to %d", p.FaceUser)
	}
	if err := db.ClearFaceUsers(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := db.PersonByFaceUser(ctx, 7); !errors.Is(err, ErrNotFound) {
		t.Errorf("after ClearFaceUsers: %v", err)
	}
}

func TestBindingsWithoutPut(t *testing.T) {
	ctx := context.Background()
	db := mustOpen(t, "", testConfig(t))
	putPerson(t, db, testPerson(1))
	id := testPerson(1).PersonID
	tx, _ := db.BeginPerson(ctx, id)
	slot, _ := tx.AllocFingerSlot(ctx, Right, 10)
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	p, _ := db.PersonWithBiometrics(ctx, id)
	if p.RightSlot != slot || p.Stored.Len() != 5 || p.Name != testPerson(1).Name {
		t.Errorf("rebinding changed more than the binding: %+v", p)
	}
	tx, _ = db.BeginPerson(ctx, id)
	tx.ReleaseFingerSlots()
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if p, _ := db.Person(ctx, id); p.RightSlot != Unbound {
		t.Errorf("ReleaseFingerSlots left %d", p.RightSlot)
	}
	tx, _ = db.BeginPerson(ctx, "ghost")
	tx.SetFaceUser(1)
	if err := tx.Commit(ctx); !errors.Is(err, ErrNotFound) {
		t.Errorf("binding a person that does not exist = %v, want ErrNotFound", err)
	}
}

func TestEachPersonAndCount(t *testing.T) {
	ctx := context.Background()
	db := mustOpen(t, "", testConfig(t))
	const n = 600 // more than two pages
	bulkPersons(t, db, n)
	if c, err := db.CountPersons(ctx); err != nil || c != n {
		t.Fatalf("CountPersons = %d, %v", c, err)
	}
	seen := map[string]bool{}
	prev := ""
	err := db.EachPerson(ctx, func(p Person) error {
		if p.PersonID <= prev || seen[p.PersonID] {
			return fmt.Errorf("order broken at %s after %s", p.PersonID, prev)
		}
		if p.Face != nil {
			return fmt.Errorf("%s carries blobs", p.PersonID)
		}
		seen[p.PersonID], prev = true, p.PersonID
		return nil
	})
	if err != nil || len(seen) != n {
		t.Fatalf("EachPerson saw %d of %d: %v", len(seen), n, err)
	}
	stop := errors.New("stop")
	calls := 0
	if err := db.EachPerson(ctx, func(Person) error { calls++; return stop }); !errors.Is(err, stop) || calls != 1 {
		t.Errorf("EachPerson did not stop at the first error: %v after %d calls", err, calls)
	}
}

func TestPersonTxSerialisesWriters(t *testing.T) {
	ctx := context.Background()
	db := mustOpen(t, "", testConfig(t))
	var wg sync.WaitGroup
	slots := make(chan int, 40)
	errs := make(chan error, 40)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			id := fmt.Sprintf("p%d", i)
			tx, err := db.BeginPerson(ctx, id)
			if err != nil {
				errs <- err
				return
			}
			defer tx.Rollback()
			tx.Put(Person{PersonID: id})
			for _, h := range []Hand{Left, Right} {
				s, err := tx.AllocFingerSlot(ctx, h, 1000)
				if err != nil {
					errs <- err
					return
				}
				slots <- s
			}
			errs <- tx.Commit(ctx)
		}(i)
	}
	wg.Wait()
	close(slots)
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	seen := map[int]bool{}
	for s := range slots {
		if seen[s] {
			t.Errorf("slot %d given twice", s)
		}
		seen[s] = true
	}
}

// bulkPersons stores n persons with small blobs in one transaction.
func bulkPersons(t testing.TB, db *DB, n int) {
	t.Helper()
	ctx := context.Background()
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	ps, err := tx.Prepare(`INSERT INTO persons (person_id, name, id_number, card_number, key_number,
		department_number, role, bio_kinds, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		t.Fatal(err)
	}
	bs, err := tx.Prepare(`INSERT INTO biometrics (person_id, kind, format, width, height, data) VALUES (?, ?, ?, ?, ?, ?)`)
	if err != nil {
		t.Fatal(err)
	}
	blob := bytes.Repeat([]byte{0x5A}, 512)
	for i := 0; i < n; i++ {
		p := testPerson(i)
		if _, err := ps.Exec(p.PersonID, p.Name, p.IDNumber, p.CardNumber, p.KeyNumber, p.DepartmentNumber,
			p.Role, int64(1<<LeftCode|1<<Face), int64(i+1)); err != nil {
			t.Fatal(err)
		}
		for _, k := range []Kind{Face, LeftCode} {
			if _, err := bs.Exec(p.PersonID, int(k), "", 0, 0, blob); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// A database written before Commit refused held cards may hold a card
// twice: the most recently stored holder wins.
func TestSharedCardFindsTheNewestHolder(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)
	db := mustOpen(t, "", cfg)
	for i, id := range []string{"b", "a", "c"} {
		if _, err := db.w.ExecContext(ctx, `INSERT INTO persons (person_id, name, id_number, card_number, key_number,
			department_number, role, bio_kinds, updated_at) VALUES (?, '', '', '42', '', '', 0, 0, ?)`, id, int64(i+1)); err != nil {
			t.Fatal(err)
		}
		if p, err := db.PersonByCard(ctx, "42"); err != nil || p.PersonID != id {
			t.Errorf("after storing %s: card 42 → %q, %v", id, p.PersonID, err)
		}
	}
	putPerson(t, db, Person{PersonID: "nocard"})
	if _, err := db.PersonByCard(ctx, ""); !errors.Is(err, ErrNotFound) {
		t.Errorf("empty card matched: %v", err)
	}
}

package store_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"termagent/store"
)

// The outbox as the uploader sees it: enqueue, peek the oldest, ack on
// success, nack (with a retry time) when the server refused.
func Example_outbox() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "store-example")
	defer os.RemoveAll(dir)
	db, err := store.Open(ctx, filepath.Join(dir, "termagent.db"), store.Config{MaxAttempts: 2})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()

	for _, body := range []string{`{"person_id":"P1"}`, `{"person_id":"P2"}`} {
		if _, err := db.Enqueue(ctx, store.Record{Body: []byte(body)}); err != nil {
			fmt.Println(err)
			return
		}
	}
	<-db.Wake() // the uploader sleeps here when there is nothing to send

	recs, _ := db.Peek(ctx, 10)
	fmt.Println("to send:", len(recs), string(recs[0].Body))
	db.Ack(ctx, recs[0].ID) // the server answered code 0
	for range 2 {           // the server refused the second one, twice
		q, _ := db.Nack(ctx, recs[1].ID, time.Time{}, "code -1")
		fmt.Println("quarantined:", q)
	}
	st, _ := db.OutboxStats(ctx)
	fmt.Println("depth:", st.Depth, "quarantined:", st.Quarantined)
	// Output:
	// to send: 2 {"person_id":"P1"}
	// quarantined: false
	// quarantined: true
	// depth: 0 quarantined: 1
}

// A person download: store the person, reserve fingerprint slots, enrol
// the templates into the module, commit; a card lookup finds the person.
func Example_person() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "store-example")
	defer os.RemoveAll(dir)
	db, err := store.Open(ctx, filepath.Join(dir, "termagent.db"), store.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()

	p := store.Person{PersonID: "P1", Name: "张三", CardNumber: "0001234567",
		LeftCode: &store.Biometric{Data: []byte("template bytes")}}
	tx, err := db.BeginPerson(ctx, p.PersonID)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer tx.Rollback()
	tx.Put(p)
	slot, _ := tx.AllocFingerSlot(ctx, store.Left, 200)
	// ... fingerprint.Store(ctx, slot, p.LeftCode.Data) ...
	if err := tx.Commit(ctx); err != nil {
		fmt.Println(err) // and delete the template from the module
		return
	}

	got, _ := db.PersonByCard(ctx, "0001234567")
	fmt.Println(got.Name, got.LeftSlot == slot, got.RightSlot == store.Unbound, got.LeftCode == nil)
	// Output:
	// 张三 true true true
}

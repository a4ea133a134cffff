package store

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// A card that another person holds is refused, naming both person_ids;
// nothing changes. The holder itself may be stored again with its card,
// and the card is free once the holder gives it up.
func TestCardHeldByAnotherPersonIsRefused(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(t.TempDir(), "db"), Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	putPerson(t, db, Person{PersonID: "42", CardNumber: "0006547886"})

	tx, err := db.BeginPerson(ctx, "42.5")
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Put(Person{PersonID: "42.5", CardNumber: "0006547886"}); err != nil {
		t.Fatal(err)
	}
	err = tx.Commit(ctx)
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), `"42"`) || !strings.Contains(err.Error(), `"42.5"`) || !strings.Contains(err.Error(), "0006547886") {
		t.Fatalf("Commit of a held card = %v; want ErrInvalid naming the card and both persons", err)
	}
	if _, err := db.Person(ctx, "42.5"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("refused person stored anyway: %v", err)
	}
	if p, err := db.PersonByCard(ctx, "0006547886"); err != nil || p.PersonID != "42" {
		t.Fatalf("card holder = %q, %v; want 42", p.PersonID, err)
	}
	putPerson(t, db, Person{PersonID: "42", Name: "again", CardNumber: "0006547886"})
	putPerson(t, db, Person{PersonID: "42", CardNumber: "0000000001"})
	putPerson(t, db, Person{PersonID: "43", CardNumber: "0006547886"})
	putPerson(t, db, Person{PersonID: "44"}) // no card: never a collision
	putPerson(t, db, Person{PersonID: "45"})
}

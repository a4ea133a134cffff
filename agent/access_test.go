package agent_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"termagent/agent"
	"termagent/hal/backoff"
	"termagent/hal/card"
	"termagent/hal/haltest"
	"termagent/hal/sim"
	"termagent/protocol"
	"termagent/store"
)

// simCard is a simulated RDM6300 reader on a pseudo-terminal with the real
// driver reading it.
type simCard struct {
	dev    *sim.CardReader
	reader *card.Reader
}

func newSimCard(t *testing.T) *simCard {
	t.Helper()
	dev, err := sim.NewCardReader(sim.CardReaderConfig{Repeats: 1})
	if err != nil {
		t.Fatal(err)
	}
	plug, err := sim.Attach(dev, filepath.Join(t.TempDir(), "card"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { plug.Close() })
	r, err := card.Open(card.Config{
		Port: plug.Path(), Driver: card.ProtoRDM6300, RepeatWindow: -1,
		Backoff: backoff.Policy{Min: 10 * time.Millisecond, Max: 200 * time.Millisecond},
		Logger:  testLogger(t, "card"),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return &simCard{dev: dev, reader: r}
}

// swipe presents card number n (decimal); the reader formats it as ten
// digits.
func (c *simCard) swipe(t *testing.T, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := c.dev.Swipe(ctx, fmt.Sprint(n)); err != nil {
		t.Fatalf("swipe %d: %v", n, err)
	}
}

func cardNumber(n int) string { return fmt.Sprintf("%010d", n) }

// addPerson stores a person with a card directly in the database (as a
// download_person would).
func addPerson(t *testing.T, db *store.DB, id string, cardNo int) {
	t.Helper()
	ctx := context.Background()
	tx, err := db.BeginPerson(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if err := tx.Put(store.Person{PersonID: id, Name: "P " + id, IDNumber: "ID" + id, CardNumber: cardNumber(cardNo), Role: 3}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestSwipeDoorRecordAck(t *testing.T) {
	srv := newTestServer(t)
	db := openStore(t, store.Config{})
	c := newSimCard(t)
	addPerson(t, db, "p1", 12345678)
	a := startAgent(t, agent.Config{
		Link:   agent.LinkConfig{ServerAddress: srv.addr},
		Device: agent.DeviceConfig{InOutType: 1, CommunityCode: "CC"},
		Upload: agent.UploadConfig{Window: 1},
	}, agent.Parts{Store: db, Card: c.reader})
	srv.peer()
	srv.event(1) // started

	// An unknown card is denied and, by default, not recorded: the first
	// upload is the known card's.
	c.swipe(t, 999)
	c.swipe(t, 12345678)
	up := srv.upload()
	ai := up.AccessInfo
	if ai.PersonID != "p1" || ai.CardNumber != cardNumber(12345678) || ai.OpenDoorType != 1 || ai.InOutType != 1 ||
		ai.CommunityCode != "CC" || ai.IDNumber != "IDp1" || ai.Role != 3 {
		t.Fatalf("record %+v", ai)
	}
	if up.SessionID == "" {
		t.Error("upload without session_id")
	}
	haltest.Eventually(t, "the acknowledged record to leave the outbox", func() bool {
		st := a.Status(context.Background())
		return st.OutboxDepth == 0 && st.Uploaded == 1
	})
	st := a.Status(context.Background())
	if st.Modules["card"].State != agent.ModuleOK || st.Persons != 1 {
		t.Errorf("status %+v", st)
	}
}

func TestDeniedRecordedWhenConfigured(t *testing.T) {
	srv := newTestServer(t)
	db := openStore(t, store.Config{})
	c := newSimCard(t)
	startAgent(t, agent.Config{
		Link:   agent.LinkConfig{ServerAddress: srv.addr},
		Access: agent.AccessConfig{RecordDenied: true},
	}, agent.Parts{Store: db, Card: c.reader})
	srv.peer()
	c.swipe(t, 4242)
	ai := srv.upload().AccessInfo
	if ai.PersonID != "" || ai.CardNumber != cardNumber(4242) || ai.OpenDoorType != 1 {
		t.Errorf("denied record %+v", ai)
	}
}

func TestSwipesWhileServerAway(t *testing.T) {
	srv := newTestServer(t)
	addr := srv.addr
	db := openStore(t, store.Config{})
	c := newSimCard(t)
	const n = 25
	for i := range n {
		addPerson(t, db, fmt.Sprintf("p%02d", i), 1000+i)
	}
	a := startAgent(t, agent.Config{Link: agent.LinkConfig{ServerAddress: addr}, Upload: agent.UploadConfig{Window: 1}},
		agent.Parts{Store: db, Card: c.reader})
	srv.peer()
	srv.stop()
	haltest.Eventually(t, "the link to go down", func() bool { return a.Status(context.Background()).Link != agent.LinkUp })

	for i := range n {
		c.swipe(t, 1000+i)
	}
	haltest.Eventually(t, "every swipe to be queued", func() bool { return a.Status(context.Background()).OutboxDepth == n })

	back := listenTestServer(t, addr)
	back.peer()
	seen := map[string]string{} // session_id → person_id
	for i := range n {
		up := back.upload()
		want := fmt.Sprintf("p%02d", i)
		if up.AccessInfo.PersonID != want {
			t.Fatalf("upload %d is %s, want %s (window 1 keeps order)", i, up.AccessInfo.PersonID, want)
		}
		if prev, dup := seen[up.SessionID]; dup {
			t.Fatalf("session_id %s reused for %s and %s", up.SessionID, prev, want)
		}
		seen[up.SessionID] = want
	}
	haltest.Eventually(t, "the outbox to drain", func() bool { return a.Status(context.Background()).OutboxDepth == 0 })
}

func TestUploadRefusedThenQuarantined(t *testing.T) {
	srv := newTestServer(t)
	srv.setCode(func(*protocol.Message) int { return protocol.CodeError })
	db := openStore(t, store.Config{MaxAttempts: 3})
	c := newSimCard(t)
	addPerson(t, db, "p1", 77)
	a := startAgent(t, agent.Config{Link: agent.LinkConfig{ServerAddress: srv.addr}}, agent.Parts{Store: db, Card: c.reader})
	srv.peer()
	c.swipe(t, 77)
	first := srv.upload()
	for range 2 {
		again := srv.upload()
		if again.SessionID != first.SessionID {
			t.Fatalf("retry with session_id %s, first was %s", again.SessionID, first.SessionID)
		}
	}
	haltest.Eventually(t, "the record to be quarantined", func() bool {
		st := a.Status(context.Background())
		return st.OutboxQuarantined == 1 && st.OutboxDepth == 0
	})
	// A quarantined record does not block the queue.
	srv.setCode(nil)
	addPerson(t, db, "p2", 78)
	c.swipe(t, 78)
	if up := srv.upload(); up.AccessInfo.PersonID != "p2" {
		t.Fatalf("after quarantine got %+v", up.AccessInfo)
	}
}

func TestUploadResentWithSameSessionAfterLinkLoss(t *testing.T) {
	srv := newTestServer(t)
	db := openStore(t, store.Config{})
	c := newSimCard(t)
	addPerson(t, db, "p1", 5)
	// The first upload makes the server drop every connection before it
	// answers: sent, not acknowledged.
	dropped := make(chan struct{})
	srv.setCode(func(m *protocol.Message) int {
		select {
		case <-dropped:
			return 0
		default:
			close(dropped)
			srv.dropAll()
			return protocol.CodeError // never written: the connection is closed
		}
	})
	a := startAgent(t, agent.Config{Link: agent.LinkConfig{ServerAddress: srv.addr}}, agent.Parts{Store: db, Card: c.reader})
	srv.peer()
	c.swipe(t, 5)
	first := srv.upload()
	second := srv.upload()
	if second.SessionID != first.SessionID || second.AccessInfo.PersonID != "p1" {
		t.Fatalf("resent %s/%s, first %s", second.SessionID, second.AccessInfo.PersonID, first.SessionID)
	}
	haltest.Eventually(t, "the outbox to drain", func() bool {
		st := a.Status(context.Background())
		return st.OutboxDepth == 0 && st.OutboxQuarantined == 0
	})
}

package agent_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"termagent/agent"
	"termagent/store"
)

// A damaged database replaced at start is reported to the server (a
// DatabaseRecovered event with the counts, so it can push the persons
// again) and in status; the salvaged persons still open the door.
func TestDamagedDatabaseIsReportedToTheServer(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "termagent.db")
	db, err := store.Open(ctx, path, store.Config{})
	if err != nil {
		t.Fatal(err)
	}
	addPerson(t, db, "p1", 77)
	addPerson(t, db, "p2", 78)
	db.Close()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt(bytes.Repeat([]byte{0x5A}, 100), 0) // scribbled header
	f.Close()
	db, err = store.Open(ctx, path, store.Config{Logger: testLogger(t, "store")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })

	srv := newTestServer(t)
	c := newSimCard(t)
	a := startAgent(t, agent.Config{Link: agent.LinkConfig{ServerAddress: srv.addr}}, agent.Parts{Store: db, Card: c.reader})
	srv.peer()
	ev := srv.event(6) // default Events.DatabaseRecovered
	if !strings.Contains(ev.CommandValue, "persons 2") || !strings.Contains(ev.CommandValue, "salvaged") {
		t.Errorf("DatabaseRecovered event %q", ev.CommandValue)
	}
	st := a.Status(ctx)
	if r := st.DatabaseRecovered; r == nil || r.Salvaged.Persons != 2 || r.MovedTo == "" {
		t.Errorf("status database_recovered = %+v", r)
	}
	c.swipe(t, 77)
	if up := srv.upload(); up.AccessInfo.PersonID != "p1" {
		t.Errorf("salvaged person's access recorded as %+v", up.AccessInfo)
	}
}

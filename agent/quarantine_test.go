package agent_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"termagent/agent"
	"termagent/hal/haltest"
	"termagent/protocol"
	"termagent/store"
)

// A quarantined record is not stranded: the quarantine is reported (status
// and a RecordsQuarantined event), the record gets one more try after the
// link comes back (here: the server recovered and the terminal
// reconnected), and the release_quarantine command frees it for good.
func TestFaultQuarantineHasAWayOut(t *testing.T) {
	srv := newTestServer(t)
	srv.setCode(func(*protocol.Message) int { return protocol.CodeError })
	db := openStore(t, store.Config{MaxAttempts: 3})
	c := newSimCard(t)
	addPerson(t, db, "p1", 77)
	addPerson(t, db, "p2", 78)
	a := startAgent(t, agent.Config{Link: agent.LinkConfig{ServerAddress: srv.addr}}, agent.Parts{Store: db, Card: c.reader})
	srv.peer()
	start := time.Now()
	c.swipe(t, 77)
	first := srv.upload()
	ev := srv.event(7) // default Events.RecordsQuarantined
	detect := time.Since(start)
	if !strings.Contains(ev.CommandValue, first.SessionID) || !strings.Contains(ev.CommandValue, "1 quarantined") {
		t.Errorf("quarantine event %q", ev.CommandValue)
	}
	haltest.Eventually(t, "status to show the quarantined record", func() bool {
		st := a.Status(context.Background())
		return st.OutboxQuarantined == 1 && st.OutboxDepth == 0
	})

	// The server recovers; the link drops and comes back: one more try.
	srv.setCode(nil)
	for len(srv.uploads) > 0 {
		<-srv.uploads
	}
	srv.dropAll()
	p := srv.peer()
	again := srv.upload()
	if again.SessionID != first.SessionID {
		t.Fatalf("after reconnecting got %s, want the quarantined %s", again.SessionID, first.SessionID)
	}
	haltest.Eventually(t, "the quarantined record to be delivered", func() bool {
		st := a.Status(context.Background())
		return st.OutboxQuarantined == 0 && st.OutboxDepth == 0
	})
	recovered := time.Since(start)

	// Quarantined again, then released by the operator's command.
	srv.setCode(func(*protocol.Message) int { return protocol.CodeError })
	c.swipe(t, 78)
	second := srv.upload()
	srv.event(7) // RecordsQuarantined again
	haltest.Eventually(t, "the second record to be quarantined", func() bool { return a.Status(context.Background()).OutboxQuarantined == 1 })
	srv.setCode(nil)
	for len(srv.uploads) > 0 {
		<-srv.uploads
	}
	req := protocol.NewRequest(protocol.ModSendUserCommand)
	req.CommandType = 4 // release_quarantine in the default table
	if _, code, msg := call(t, p, req); code != 0 {
		t.Fatalf("release_quarantine: code %d %s", code, msg)
	}
	if up := srv.upload(); up.SessionID != second.SessionID {
		t.Fatalf("after release got %s, want %s", up.SessionID, second.SessionID)
	}
	haltest.Eventually(t, "the released record to be delivered", func() bool {
		st := a.Status(context.Background())
		return st.OutboxQuarantined == 0 && st.OutboxDepth == 0
	})
	t.Logf("FAULTROW\t%s\t%s\t%s", "server refuses a record max_attempts times",
		"record quarantined (kept), status outbox_quarantined, RecordsQuarantined event; one more try after each reconnect and every 15 min; release_quarantine command frees it",
		"records 2, quarantined 2, delivered 2, lost 0, detect "+detect.Round(time.Millisecond).String()+", recover after reconnect "+recovered.Round(time.Millisecond).String())
}

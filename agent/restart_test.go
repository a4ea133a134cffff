package agent_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"termagent/agent"
	"termagent/hal/haltest"
	"termagent/protocol"
	"termagent/store"
)

// The agent stops in the middle of a drain (uploads in flight, acks not
// yet written) and a new one starts on the same database: every record
// reaches the server, and a record sent twice carries the same session_id.
func TestDrainSurvivesRestart(t *testing.T) {
	srv := newTestServer(t)
	srv.setCode(func(*protocol.Message) int {
		time.Sleep(2 * time.Millisecond) // a slow server keeps uploads in flight
		return 0
	})
	db := openStore(t, store.Config{})
	const n = 300
	ctx := context.Background()
	for i := range n {
		m := protocol.NewRequest(protocol.ModUploadAccessInfo)
		m.AccessInfo = &protocol.AccessInfo{PersonID: fmt.Sprintf("p%03d", i), Time: "20260101120000", OpenDoorType: 1, InOutType: 1}
		body, err := protocol.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Enqueue(ctx, store.Record{Body: body}); err != nil {
			t.Fatal(err)
		}
	}
	cfg := agent.Config{Link: agent.LinkConfig{ServerAddress: srv.addr}, Upload: agent.UploadConfig{Window: 16}}
	first := startAgent(t, cfg, agent.Parts{Store: db})
	srv.peer()
	sessions := map[string]string{} // person_id → session_id
	record := func(m *protocol.Message) {
		id := m.AccessInfo.PersonID
		if prev, ok := sessions[id]; ok && prev != m.SessionID {
			t.Fatalf("%s uploaded with session_id %s and %s", id, prev, m.SessionID)
		}
		sessions[id] = m.SessionID
	}
	for range n / 3 {
		record(srv.upload())
	}
	if err := first.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	startAgent(t, cfg, agent.Parts{Store: db})
	for len(sessions) < n {
		record(srv.upload())
	}
	haltest.Eventually(t, "the outbox to drain", func() bool {
		st, err := db.OutboxStats(ctx)
		return err == nil && st.Depth == 0
	})
	// Drain what the server got while the last acks were written.
	for {
		select {
		case m := <-srv.uploads:
			record(m)
			continue
		default:
		}
		break
	}
	if len(sessions) != n {
		t.Fatalf("%d distinct records delivered, want %d", len(sessions), n)
	}
}

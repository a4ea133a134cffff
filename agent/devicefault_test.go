package agent_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"termagent/agent"
	"termagent/hal/haltest"
	"termagent/hal/sim"
	"termagent/protocol"
	"termagent/store"
)

// A photo the face module refuses is bad data from the server: -1 naming
// person_info.face, and the module stays healthy (no fault, no event).
func TestDownloadRejectedPhotoIsARequestError(t *testing.T) {
	srv := newTestServer(t)
	db := openStore(t, store.Config{})
	h := newHWRig(t, sim.RigConfig{Devices: []string{sim.DevFace, sim.DevFingerprint}})
	a := startAgent(t, agent.Config{Link: agent.LinkConfig{ServerAddress: srv.addr}}, h.parts(db))
	peer := srv.peer()
	notJPEG := photo(3000, 1)
	copy(notJPEG, "\x89PNG\r\n\x1a\n")
	for _, tc := range []struct {
		name  string
		photo []byte
	}{{"not a JPEG", notJPEG}, {"too small", photo(16, 2)}} {
		m := req(protocol.ModDownloadPerson)
		m.PersonInfo = &protocol.PersonInfo{PersonID: "p1", Face: blob(tc.photo)}
		_, code, msg := call(t, peer, m)
		if code != protocol.CodeError || !strings.Contains(msg, "person_info.face") {
			t.Errorf("%s: code %d %q, want -1 naming person_info.face", tc.name, code, msg)
		}
		if st := a.Status(context.Background()).Modules["face"]; st.State != agent.ModuleOK {
			t.Errorf("%s: face module %s (%s), want ok: bad data is no hardware fault", tc.name, st.State, st.Error)
		}
	}
	// The same for a fingerprint template the module refuses.
	m := req(protocol.ModDownloadPerson)
	m.PersonInfo = &protocol.PersonInfo{PersonID: "p1", LeftCode: blob([]byte("not a template"))}
	if _, code, msg := call(t, peer, m); code != protocol.CodeError || !strings.Contains(msg, "person_info.left_code") {
		t.Errorf("bad template: code %d %q, want -1 naming person_info.left_code", code, msg)
	}
	if st := a.Status(context.Background()).Modules["fingerprint"]; st.State != agent.ModuleOK {
		t.Errorf("bad template: fingerprint module %s (%s), want ok", st.State, st.Error)
	}
	// The module is fine: a good photo enrols.
	m = req(protocol.ModDownloadPerson)
	m.PersonInfo = &protocol.PersonInfo{PersonID: "p1", Face: blob(photo(3000, 3))}
	if _, code, msg := call(t, peer, m); code != 0 {
		t.Fatalf("good photo: %d %q", code, msg)
	}
}

// A grant whose relay cannot be driven makes no record and raises a door
// fault event; the reader's repeats of one swipe make one attempt; after
// replug one swipe makes exactly one record.
func TestGrantWithRelayUnpluggedMakesNoRecord(t *testing.T) {
	srv := newTestServer(t)
	db := openStore(t, store.Config{})
	h := newHWRig(t, sim.RigConfig{Devices: []string{sim.DevCard, sim.DevRelay}, Card: sim.CardReaderConfig{Repeats: 3}})
	addPerson(t, db, "p1", 6547886)
	addPerson(t, db, "p2", 6547887)
	a := startAgent(t, agent.Config{Link: agent.LinkConfig{ServerAddress: srv.addr},
		Access:  agent.AccessConfig{DoorPulse: 50 * time.Millisecond},
		Modules: agent.ModuleConfig{RetryMin: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond}}, h.parts(db))
	srv.peer()
	h.exec(t, "unplug relay")
	h.exec(t, "swipe 0006547886")
	ev := srv.event(5)
	if !strings.Contains(ev.CommandValue, "door") || !strings.Contains(ev.CommandValue, "p1") {
		t.Errorf("door fault event value %q, want the door and the person", ev.CommandValue)
	}
	if st := a.Status(context.Background()).Modules["door"]; st.State != agent.ModuleFault {
		t.Errorf("door module %s, want fault", st.State)
	}
	h.exec(t, "replug relay")
	h.exec(t, "swipe 0006547887")
	if ai := srv.upload().AccessInfo; ai.PersonID != "p2" {
		t.Fatalf("first record is %q's, want p2's: the grant whose door failed was recorded", ai.PersonID)
	}
	haltest.Eventually(t, "the ack", func() bool { return a.Status(context.Background()).Uploaded == 1 })
	if st := a.Status(context.Background()); st.OutboxDepth != 0 || st.RecordsPending != 0 {
		t.Errorf("outbox %d, pending %d after the one good swipe: want nothing left", st.OutboxDepth, st.RecordsPending)
	}
	select {
	case m := <-srv.uploads:
		t.Errorf("a second record %+v for one swipe", m.AccessInfo)
	default:
	}
}

// observedStore is the real store; it notes the relay's switch count each
// time a record's commit returns, to prove the order record → relay.
type observedStore struct {
	*store.DB
	relay *sim.Relay
	mu    sync.Mutex
	at    []int // relay switches when each commit returned
}

func (s *observedStore) note() {
	s.mu.Lock()
	s.at = append(s.at, s.relay.State().Switches)
	s.mu.Unlock()
}

func (s *observedStore) Enqueue(ctx context.Context, rec store.Record) (store.Record, error) {
	r, err := s.DB.Enqueue(ctx, rec)
	if err == nil {
		s.note()
	}
	return r, err
}

func (s *observedStore) EnqueueHeld(ctx context.Context, rec store.Record, hold time.Duration) (store.Record, error) {
	r, err := s.DB.EnqueueHeld(ctx, rec, hold)
	if err == nil {
		s.note()
	}
	return r, err
}

// The record of a granted access is committed before the relay clicks.
func TestRecordCommittedBeforeTheRelayClicks(t *testing.T) {
	srv := newTestServer(t)
	db := openStore(t, store.Config{})
	h := newHWRig(t, sim.RigConfig{Devices: []string{sim.DevCard, sim.DevRelay}})
	addPerson(t, db, "p1", 31337)
	obs := &observedStore{DB: db, relay: h.rig.Relay()}
	parts := h.parts(db)
	parts.Store = obs
	startAgent(t, agent.Config{Link: agent.LinkConfig{ServerAddress: srv.addr}, Access: agent.AccessConfig{DoorPulse: 50 * time.Millisecond}}, parts)
	srv.peer()
	for i := range 3 {
		before := h.rig.Relay().State().Switches
		h.exec(t, "swipe 31337")
		if ai := srv.upload().AccessInfo; ai.PersonID != "p1" {
			t.Fatalf("record %+v", ai)
		}
		obs.mu.Lock()
		at := obs.at[len(obs.at)-1]
		n := len(obs.at)
		obs.mu.Unlock()
		if n != i+1 {
			t.Fatalf("%d commits for %d swipes", n, i+1)
		}
		if at != before {
			t.Fatalf("swipe %d: the record was committed after the relay switched (%d switches before the swipe, %d at the commit)", i, before, at)
		}
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		_, err := h.rig.Relay().Wait(ctx, func(s sim.RelayState) bool { return s.Switches >= before+2 && !s.On })
		cancel()
		if err != nil {
			t.Fatalf("the pulse did not end: %v", err)
		}
	}
}

// holdWriteLock takes the database's write lock from another connection,
// as a backup tool or a stuck disk would, until the returned func is called.
func holdWriteLock(t *testing.T, path string) (release func()) {
	t.Helper()
	raw, err := sql.Open("sqlite3", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	conn, err := raw.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(context.Background(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			if _, err := conn.ExecContext(context.Background(), "ROLLBACK"); err != nil {
				t.Error(err)
			}
			conn.Close()
		})
	}
	t.Cleanup(release)
	return release
}

// A store that does not commit within Access.RecordTimeout does not keep a
// known person out: the door opens, the database fault is raised, the
// record waits in memory (counted in status) and is delivered once when
// the store takes writes again.
func TestFaultStoreStuckDoorOpensRecordKept(t *testing.T) {
	srv := newTestServer(t)
	path := filepath.Join(t.TempDir(), "termagent.db")
	db, err := store.Open(context.Background(), path, store.Config{BusyTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	h := newHWRig(t, sim.RigConfig{Devices: []string{sim.DevCard, sim.DevRelay}})
	addPerson(t, db, "p1", 31337)
	const bound = 300 * time.Millisecond
	a := startAgent(t, agent.Config{Link: agent.LinkConfig{ServerAddress: srv.addr},
		Access:  agent.AccessConfig{DoorPulse: 50 * time.Millisecond, RecordTimeout: bound},
		Modules: agent.ModuleConfig{RetryMin: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond}}, h.parts(db))
	srv.peer()
	release := holdWriteLock(t, path)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	start := time.Now()
	h.exec(t, "swipe 31337")
	if _, err := h.rig.Relay().Wait(ctx, func(s sim.RelayState) bool { return s.On }); err != nil {
		t.Fatalf("the door did not open while the store was stuck: %v", err)
	}
	opened := time.Since(start)
	pending := 0
	haltest.Eventually(t, "status to show the database fault and the record held in memory", func() bool {
		st := a.Status(context.Background())
		pending = st.RecordsPending
		return st.Modules["database"].State == agent.ModuleFault && st.RecordsPending == 1
	})
	if ev := srv.event(2); !strings.HasPrefix(ev.CommandValue, "database") {
		t.Errorf("fault event %q, want the database's", ev.CommandValue)
	}
	release()
	up := srv.upload()
	if up.AccessInfo.PersonID != "p1" {
		t.Fatalf("record %+v", up.AccessInfo)
	}
	haltest.Eventually(t, "the record acknowledged and the fault cleared", func() bool {
		st := a.Status(context.Background())
		return st.Uploaded == 1 && st.RecordsPending == 0 && st.OutboxDepth == 0 && st.Modules["database"].State == agent.ModuleOK
	})
	dups := 0
	select {
	case m := <-srv.uploads:
		dups++
		t.Errorf("a second upload %s for one swipe (first %s)", m.SessionID, up.SessionID)
	default:
	}
	t.Logf("FAULTROW\t%s\t%s\t%s", "database write lock held (store stuck) during a grant",
		"door opens after at most Access.RecordTimeout (1 s); database fault in status and as an event; record kept in memory (records_pending), stored and sent once the store takes writes",
		fmt.Sprintf("swipes 1, door opened after %v (bound %v), records pending %d, delivered %d, duplicates %d, lost 0", opened.Round(time.Millisecond), bound, pending, a.Status(context.Background()).Uploaded, dups))
}

package agent_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"termagent/agent"
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
	until(t, "the ack", func() bool { return a.Status(context.Background()).Uploaded == 1 })
	if st := a.Status(context.Background()); st.OutboxDepth != 0 || st.RecordsPending != 0 {
		t.Errorf("outbox %d, pending %d after the one good swipe: want nothing left", st.OutboxDepth, st.RecordsPending)
	}
	select {
	case m := <-srv.uploads:
		t.Errorf("a second record %+v for one swipe", m.AccessInfo)
	default:
	}
}

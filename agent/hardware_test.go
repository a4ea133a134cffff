package agent_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"termagent/agent"
	"termagent/hal/backoff"
	"termagent/hal/card"
	"termagent/hal/door"
	"termagent/hal/face"
	"termagent/hal/fingerprint"
	"termagent/hal/haltest"
	"termagent/hal/sim"
	"termagent/protocol"
	"termagent/store"
)

// hwRig is every simulated device on pseudo-terminals with the real
// drivers opened on them.
type hwRig struct {
	rig    *sim.Rig
	card   *card.Reader
	relay  *door.LCUS
	finger *fingerprint.R30x
	face   *face.FM22x
}

func newHWRig(t *testing.T, cfg sim.RigConfig) *hwRig { return newHWRigTB(t, cfg) }

// newHWRigTB makes the rig's devices (all, unless cfg.Devices says) and
// opens the real driver of each on its pseudo-terminal.
func newHWRigTB(t testing.TB, cfg sim.RigConfig) *hwRig {
	t.Helper()
	cfg.Dir = filepath.Join(t.TempDir(), "dev")
	// One frame per swipe and no repeat filter, unless the test asks for
	// a reader that repeats: then the driver filters with its default window.
	window := time.Duration(0)
	if cfg.Card.Repeats == 0 {
		cfg.Card.Repeats, window = 1, -1
	}
	rig, err := sim.NewRig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rig.Close() })
	bo := backoff.Policy{Min: 10 * time.Millisecond, Max: 200 * time.Millisecond}
	h := &hwRig{rig: rig}
	if path := rig.Path(sim.DevCard); path != "" {
		if h.card, err = card.Open(card.Config{Port: path, RepeatWindow: window, Backoff: bo, Logger: testLogger(t, "card")}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.card.Close() })
	}
	if path := rig.Path(sim.DevRelay); path != "" {
		if h.relay, err = door.OpenLCUS(door.LCUSConfig{Port: path, Backoff: bo, Logger: testLogger(t, "relay")}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.relay.Close() })
	}
	if path := rig.Path(sim.DevFingerprint); path != "" {
		if h.finger, err = fingerprint.Open(fingerprint.Config{Port: path, PollInterval: 20 * time.Millisecond,
			CommandTimeout: time.Second, SlowTimeout: 2 * time.Second, Logger: testLogger(t, "fingerprint")}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.finger.Close() })
	}
	if path := rig.Path(sim.DevFace); path != "" {
		if h.face, err = face.Open(face.Config{Port: path, PhotoEnrollMsgID: 0xF7, VerifySeconds: 1,
			Logger: testLogger(t, "face")}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.face.Close() })
	}
	return h
}

func (h *hwRig) parts(db *store.DB) agent.Parts {
	p := agent.Parts{Store: db}
	// Only the devices the rig has: a nil *driver in an interface is not
	// an absent module.
	if h.card != nil {
		p.Card = h.card
	}
	if h.relay != nil {
		p.Door = h.relay
	}
	if h.finger != nil {
		p.Fingerprint = h.finger
	}
	if h.face != nil {
		p.Face = h.face
	}
	return p
}

func (h *hwRig) exec(t *testing.T, line string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if out := h.rig.Exec(ctx, line); len(out) >= 3 && out[:3] == "err" {
		t.Fatalf("sim %q: %s", line, out)
	}
}

// photo is a JPEG-looking photo of n bytes (the simulator keeps its hash).
func photo(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) ^ seed
	}
	b[0], b[1], b[2] = 0xFF, 0xD8, 0xFF
	return b
}

func blob(b []byte) *protocol.Biometric { return &protocol.Biometric{Length: len(b), Data: b} }

func TestSwipeOpensDoorThenRecordAcked(t *testing.T) {
	srv := newTestServer(t)
	db := openStore(t, store.Config{})
	h := newHWRig(t, sim.RigConfig{Devices: []string{sim.DevCard, sim.DevRelay, sim.DevFingerprint, sim.DevFace}})
	addPerson(t, db, "p1", 31337)
	a := startAgent(t, agent.Config{Link: agent.LinkConfig{ServerAddress: srv.addr}, Access: agent.AccessConfig{DoorPulse: 300 * time.Millisecond}},
		h.parts(db))
	srv.peer()
	h.exec(t, "swipe 31337")
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if _, err := h.rig.Relay().Wait(ctx, func(s sim.RelayState) bool { return s.On }); err != nil {
		t.Fatalf("relay never switched on: %v", err)
	}
	if _, err := h.rig.Relay().Wait(ctx, func(s sim.RelayState) bool { return !s.On }); err != nil {
		t.Fatalf("relay never released after the pulse: %v", err)
	}
	if ai := srv.upload().AccessInfo; ai.PersonID != "p1" || ai.OpenDoorType != 1 {
		t.Fatalf("record %+v", ai)
	}
	haltest.Eventually(t, "the ack", func() bool { return a.Status(context.Background()).Uploaded == 1 })
	// An unknown card leaves the relay alone.
	before := h.rig.Relay().State().Switches
	h.exec(t, "swipe 1")
	h.exec(t, "swipe 31337") // a known card after it proves the unknown one was handled
	if _, err := h.rig.Relay().Wait(ctx, func(s sim.RelayState) bool { return s.On }); err != nil {
		t.Fatal(err)
	}
	if got := h.rig.Relay().State().Switches; got != before+1 {
		t.Errorf("relay switched %d times for an unknown and a known card, want 1", got-before)
	}
}

func TestDownloadEnrolsThenFingerAndFaceOpen(t *testing.T) {
	srv := newTestServer(t)
	db := openStore(t, store.Config{})
	h := newHWRig(t, sim.RigConfig{})
	startAgent(t, agent.Config{Link: agent.LinkConfig{ServerAddress: srv.addr}, Access: agent.AccessConfig{DoorPulse: 100 * time.Millisecond}},
		h.parts(db))
	peer := srv.peer()
	fsim := h.rig.Fingerprint()
	left, right := fsim.Template(1), fsim.Template(2)
	m := req(protocol.ModDownloadPerson)
	m.PersonInfo = &protocol.PersonInfo{PersonID: "p7", PersonName: "Li", CardNumber: "0000000007",
		Face: blob(photo(4000, 1)), LeftCode: blob(left), RightCode: blob(right)}
	if _, code, msg := call(t, peer, m); code != 0 {
		t.Fatalf("download_person: %d %q", code, msg)
	}
	p, err := db.PersonByCard(context.Background(), "0000000007")
	if err != nil || p.LeftSlot == store.Unbound || p.RightSlot == store.Unbound || p.FaceUser == store.Unbound {
		t.Fatalf("bindings %+v, %v", p, err)
	}
	if got, ok := fsim.Stored(p.LeftSlot); !ok || !bytes.Equal(got, left) {
		t.Fatalf("left template not in slot %d", p.LeftSlot)
	}
	if _, ok := h.rig.Face().User(p.FaceUser); !ok {
		t.Fatalf("face user %d not enrolled", p.FaceUser)
	}
	if err := fsim.PlaceFinger(p.RightSlot); err != nil {
		t.Fatal(err)
	}
	if ai := srv.upload().AccessInfo; ai.PersonID != "p7" || ai.OpenDoorType != 3 {
		t.Fatalf("finger record %+v", ai)
	}
	if err := h.rig.Face().ShowFace(p.FaceUser); err != nil {
		t.Fatal(err)
	}
	if ai := srv.upload().AccessInfo; ai.PersonID != "p7" || ai.OpenDoorType != 2 {
		t.Fatalf("face record %+v", ai)
	}

	// Replacing the person moves the templates to new slots and frees the
	// old ones in the module.
	m = req(protocol.ModDownloadPerson)
	m.PersonInfo = &protocol.PersonInfo{PersonID: "p7", PersonName: "Li", LeftCode: blob(fsim.Template(3))}
	if _, code, msg := call(t, peer, m); code != 0 {
		t.Fatalf("second download_person: %d %q", code, msg)
	}
	q, _ := db.Person(context.Background(), "p7")
	if _, ok := fsim.Stored(p.LeftSlot); ok {
		t.Errorf("old left slot %d still in the module", p.LeftSlot)
	}
	if _, ok := fsim.Stored(p.RightSlot); ok {
		t.Errorf("old right slot %d still in the module", p.RightSlot)
	}
	if _, ok := h.rig.Face().User(p.FaceUser); ok || q.FaceUser != store.Unbound {
		t.Errorf("old face user %d still enrolled (db %d)", p.FaceUser, q.FaceUser)
	}
	if got, ok := fsim.Stored(q.LeftSlot); !ok || !bytes.Equal(got, fsim.Template(3)) {
		t.Errorf("new left template not in slot %d", q.LeftSlot)
	}

	// remove_person empties the modules too.
	rm := req(protocol.ModRemovePerson)
	rm.PersonIDs = []string{"p7"}
	if _, code, msg := call(t, peer, rm); code != 0 {
		t.Fatalf("remove_person: %d %q", code, msg)
	}
	if s := fsim.Slots(); len(s) != 0 {
		t.Errorf("slots left after remove_person: %v", s)
	}
}

func TestDownloadAllOrNothingWhenAModuleFails(t *testing.T) {
	srv := newTestServer(t)
	db := openStore(t, store.Config{})
	h := newHWRig(t, sim.RigConfig{Face: sim.FaceConfig{MaxUsers: 2}})
	a := startAgent(t, agent.Config{Link: agent.LinkConfig{ServerAddress: srv.addr}}, h.parts(db))
	peer := srv.peer()
	fsim, facesim := h.rig.Fingerprint(), h.rig.Face()
	ctx := context.Background()

	// p1 is enrolled everywhere.
	m := req(protocol.ModDownloadPerson)
	m.PersonInfo = &protocol.PersonInfo{PersonID: "p1", CardNumber: "11", Face: blob(photo(3000, 1)), LeftCode: blob(fsim.Template(1))}
	if _, code, msg := call(t, peer, m); code != 0 {
		t.Fatalf("download p1: %d %q", code, msg)
	}
	// Fill the face module (2 users) so the next enrolment fails: with a
	// person of the database, not a user added behind the agent's back,
	// which the start-up resynchronisation (running meanwhile) may delete.
	m = req(protocol.ModDownloadPerson)
	m.PersonInfo = &protocol.PersonInfo{PersonID: "p0", CardNumber: "10", Face: blob(photo(3000, 4))}
	if _, code, msg := call(t, peer, m); code != 0 {
		t.Fatalf("download p0: %d %q", code, msg)
	}
	old, _ := db.Person(ctx, "p1")
	slotsBefore := fsim.Slots()
	usersBefore := facesim.Users()

	// A new person: the fingerprint template is stored, then the face
	// fails: -2, and the template is taken back out.
	m = req(protocol.ModDownloadPerson)
	m.PersonInfo = &protocol.PersonInfo{PersonID: "p2", CardNumber: "22", Face: blob(photo(3000, 2)),
		LeftCode: blob(fsim.Template(2)), RightCode: blob(fsim.Template(3))}
	_, code, msg := call(t, peer, m)
	if code != protocol.CodeDevice {
		t.Fatalf("download with a full face module: code %d %q, want -2", code, msg)
	}
	if _, err := db.Person(ctx, "p2"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("p2 stored despite -2: %v", err)
	}
	// Replacing p1 fails the same way and leaves p1 as it was.
	m = req(protocol.ModDownloadPerson)
	m.PersonInfo = &protocol.PersonInfo{PersonID: "p1", CardNumber: "99", Face: blob(photo(3000, 3)), LeftCode: blob(fsim.Template(4))}
	if _, code, _ := call(t, peer, m); code != protocol.CodeDevice {
		t.Fatalf("replacement with a full face module: code %d, want -2", code)
	}
	now, _ := db.Person(ctx, "p1")
	if now.CardNumber != "11" || now.LeftSlot != old.LeftSlot || now.FaceUser != old.FaceUser {
		t.Errorf("p1 changed by a failed download: %+v → %+v", old, now)
	}
	if got := fsim.Slots(); !slices.Equal(got, slotsBefore) {
		t.Errorf("fingerprint slots %v after failed downloads, want %v", got, slotsBefore)
	}
	if got := facesim.Users(); !slices.Equal(got, usersBefore) {
		t.Errorf("face users %v after failed downloads, want %v", got, usersBefore)
	}
	if tmpl, ok := fsim.Stored(old.LeftSlot); !ok || !bytes.Equal(tmpl, fsim.Template(1)) {
		t.Errorf("p1's template lost from slot %d", old.LeftSlot)
	}

	// A silent fingerprint module: -2, nothing stored.
	fsim.SetFaults(sim.ReplyFaults{Silent: true})
	m = req(protocol.ModDownloadPerson)
	m.PersonInfo = &protocol.PersonInfo{PersonID: "p3", LeftCode: blob(fsim.Template(5))}
	if _, code, msg := call(t, peer, m); code != protocol.CodeDevice {
		t.Fatalf("download with a silent fingerprint module: code %d %q, want -2", code, msg)
	}
	if _, err := db.Person(ctx, "p3"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("p3 stored despite -2: %v", err)
	}
	if st := a.Status(ctx); st.Modules["fingerprint"].State != agent.ModuleFault {
		t.Errorf("fingerprint module state %s, want fault", st.Modules["fingerprint"].State)
	}
	srv.event(2) // module fault
	fsim.SetFaults(sim.ReplyFaults{})
	srv.event(3) // module recovered
}

func TestResyncAtStartHealsModules(t *testing.T) {
	srv := newTestServer(t)
	db := openStore(t, store.Config{})
	h := newHWRig(t, sim.RigConfig{})
	fsim, facesim := h.rig.Fingerprint(), h.rig.Face()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()

	// First life: enrol p1 and p2 through downloads.
	first := startAgent(t, agent.Config{Link: agent.LinkConfig{ServerAddress: srv.addr}}, h.parts(db))
	peer := srv.peer()
	for i, id := range []string{"p1", "p2"} {
		m := req(protocol.ModDownloadPerson)
		m.PersonInfo = &protocol.PersonInfo{PersonID: id, Face: blob(photo(2000, byte(i))), LeftCode: blob(fsim.Template(10 + i))}
		if _, code, msg := call(t, peer, m); code != 0 {
			t.Fatalf("download %s: %d %q", id, code, msg)
		}
	}
	first.stop(t)
	p1, _ := db.Person(ctx, "p1")
	p2, _ := db.Person(ctx, "p2")

	// The modules are replaced by new, empty ones that hold strangers'
	// data.
	h = newHWRig(t, sim.RigConfig{})
	fsim, facesim = h.rig.Fingerprint(), h.rig.Face()
	if err := h.finger.Store(ctx, 150, fsim.Template(99)); err != nil {
		t.Fatal(err)
	}
	if _, err := facesim.AddUser("ghost"); err != nil {
		t.Fatal(err)
	}

	startAgent(t, agent.Config{Link: agent.LinkConfig{ServerAddress: srv.addr}}, h.parts(db))
	srv.peer()
	haltest.Eventually(t, "the fingerprint module to be resynchronised", func() bool {
		return slices.Equal(fsim.Slots(), []int{min(p1.LeftSlot, p2.LeftSlot), max(p1.LeftSlot, p2.LeftSlot)})
	})
	for _, p := range []struct {
		slot int
		n    int
	}{{p1.LeftSlot, 10}, {p2.LeftSlot, 11}} {
		if got, _ := fsim.Stored(p.slot); !bytes.Equal(got, fsim.Template(p.n)) {
			t.Errorf("slot %d holds the wrong template", p.slot)
		}
	}
	haltest.Eventually(t, "the face module to be resynchronised", func() bool {
		q1, _ := db.Person(ctx, "p1")
		q2, _ := db.Person(ctx, "p2")
		users := facesim.Users()
		// Exactly the two persons: the ghost (whose id may be reused) is gone.
		return q1.FaceUser != store.Unbound && q2.FaceUser != store.Unbound && len(users) == 2 &&
			slices.Contains(users, q1.FaceUser) && slices.Contains(users, q2.FaceUser)
	})
	// The healed modules recognise the persons again.
	q1, _ := db.Person(ctx, "p1")
	if err := facesim.ShowFace(q1.FaceUser); err != nil {
		t.Fatal(err)
	}
	if ai := srv.upload().AccessInfo; ai.PersonID != "p1" || ai.OpenDoorType != 2 {
		t.Fatalf("face record after resync %+v", ai)
	}
}

func TestModuleUnpluggedAndBack(t *testing.T) {
	srv := newTestServer(t)
	db := openStore(t, store.Config{})
	h := newHWRig(t, sim.RigConfig{Devices: []string{sim.DevCard, sim.DevRelay, sim.DevFingerprint, sim.DevFace}})
	cfg := agent.Config{Link: agent.LinkConfig{ServerAddress: srv.addr},
		Modules: agent.ModuleConfig{RetryMin: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond}}
	a := startAgent(t, cfg, h.parts(db))
	peer := srv.peer()
	fsim := h.rig.Fingerprint()
	m := req(protocol.ModDownloadPerson)
	m.PersonInfo = &protocol.PersonInfo{PersonID: "p1", LeftCode: blob(fsim.Template(1))}
	if _, code, msg := call(t, peer, m); code != 0 {
		t.Fatalf("download: %d %q", code, msg)
	}
	h.exec(t, "unplug fingerprint")
	if ev := srv.event(2); ev.CommandValue == "" || ev.CommandValue[:11] != "fingerprint" {
		t.Errorf("fault event value %q", ev.CommandValue)
	}
	h.exec(t, "replug fingerprint")
	if ev := srv.event(3); ev.CommandValue != "fingerprint" {
		t.Errorf("recovery event value %q", ev.CommandValue)
	}
	haltest.Eventually(t, "the module state to be ok", func() bool {
		return a.Status(context.Background()).Modules["fingerprint"].State == agent.ModuleOK
	})
	p, _ := db.Person(context.Background(), "p1")
	if err := fsim.PlaceFinger(p.LeftSlot); err != nil {
		t.Fatal(err)
	}
	if ai := srv.upload().AccessInfo; ai.PersonID != "p1" {
		t.Fatalf("record after replug %+v", ai)
	}
}

// The door never waits for the network: with a server that takes uploads
// and never answers them, every swipe still pulses the relay at once.
func TestDoorDoesNotWaitForTheServer(t *testing.T) {
	srv := newTestServer(t)
	release := make(chan struct{})
	defer close(release)
	srv.setCode(func(*protocol.Message) int {
		<-release // hold every upload unanswered until the test ends
		return 0
	})
	db := openStore(t, store.Config{})
	h := newHWRig(t, sim.RigConfig{Devices: []string{sim.DevCard, sim.DevRelay}})
	for i := range 3 {
		addPerson(t, db, "p"+string(rune('a'+i)), 500+i)
	}
	startAgent(t, agent.Config{Link: agent.LinkConfig{ServerAddress: srv.addr}, Upload: agent.UploadConfig{Window: 1},
		Access: agent.AccessConfig{DoorPulse: 50 * time.Millisecond}}, h.parts(db))
	srv.peer()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	relay := h.rig.Relay()
	for i := range 3 {
		before := relay.State().Switches
		h.exec(t, "swipe "+strconv.Itoa(500+i))
		if _, err := relay.Wait(ctx, func(s sim.RelayState) bool { return s.Switches >= before+2 && !s.On }); err != nil {
			t.Fatalf("swipe %d: the relay did not pulse while the server held the uploads: %v", i, err)
		}
	}
	srv.upload() // the first upload is held by the server; the others wait their turn
}

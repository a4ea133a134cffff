package agent_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"termagent/agent"
	"termagent/hal/haltest"
	"termagent/hal/sim"
	"termagent/protocol"
	"termagent/store"
)

// faultsFull reports whether the long form of the fault suite runs
// (make faults); the short form, in make test, uses small counts.
func faultsFull() bool { return os.Getenv("TERMAGENT_FAULTS") == "full" }

// cycles is how many unplug/replug rounds a device fault test runs.
func cycles() int {
	if faultsFull() {
		return 5
	}
	return 1
}

// waitModule waits for a module's state and returns how long that took.
func waitModule(t *testing.T, a *runningAgent, name string, want agent.ModuleState) time.Duration {
	t.Helper()
	start := time.Now()
	haltest.Eventually(t, "module "+name+" to be "+string(want), func() bool {
		return a.Status(context.Background()).Modules[name].State == want
	})
	return time.Since(start)
}

// eventFor waits for the next send_device_command of type typ whose value
// starts with prefix, skipping others.
func eventFor(t *testing.T, srv *testServer, typ int, prefix string) *protocol.Message {
	t.Helper()
	for {
		ev := srv.event(typ)
		if strings.HasPrefix(ev.CommandValue, prefix) {
			return ev
		}
	}
}

// uploads collects n uploads and counts distinct session_ids.
func uploads(srv *testServer, n int) (people []string, sessions map[string]int) {
	sessions = map[string]int{}
	for range n {
		up := srv.upload()
		people = append(people, up.AccessInfo.PersonID)
		sessions[up.SessionID]++
	}
	return people, sessions
}

// noMoreUploads reports an upload that arrived beyond those expected.
func noMoreUploads(t *testing.T, a *runningAgent, srv *testServer, want int64) int {
	t.Helper()
	haltest.Eventually(t, "every record acknowledged", func() bool {
		st := a.Status(context.Background())
		return st.Uploaded == want && st.OutboxDepth == 0 && st.RecordsPending == 0
	})
	extra := 0
	for {
		select {
		case m := <-srv.uploads:
			extra++
			t.Errorf("an extra upload: %+v", m.AccessInfo)
		default:
			return extra
		}
	}
}

func maxDur(a, b time.Duration) time.Duration { return max(a, b) }

func TestFaultCardReaderUnplugged(t *testing.T) {
	srv := newTestServer(t)
	db := openStore(t, store.Config{})
	h := newHWRig(t, sim.RigConfig{Devices: []string{sim.DevCard, sim.DevRelay}})
	addPerson(t, db, "p1", 4001)
	a := startAgent(t, agent.Config{Link: agent.LinkConfig{ServerAddress: srv.addr},
		Access: agent.AccessConfig{DoorPulse: 20 * time.Millisecond}}, h.parts(db))
	srv.peer()
	var detect, recover time.Duration
	swipes := 0
	sessions := map[string]int{}
	delivered := func() {
		up := srv.upload()
		if up.AccessInfo.PersonID != "p1" {
			t.Errorf("record of %q", up.AccessInfo.PersonID)
		}
		sessions[up.SessionID]++
	}
	for range cycles() {
		h.exec(t, "swipe 4001")
		swipes++
		delivered() // the card was read before the cable is pulled
		h.exec(t, "unplug card")
		detect = maxDur(detect, waitModule(t, a, "card", agent.ModuleFault))
		eventFor(t, srv, 2, "card")
		h.exec(t, "replug card")
		start := time.Now()
		h.exec(t, "swipe 4001") // at once: the driver may not have reopened yet
		swipes++
		haltest.Eventually(t, "the card reader back", func() bool { return a.Status(context.Background()).Modules["card"].State == agent.ModuleOK })
		recover = maxDur(recover, time.Since(start))
		eventFor(t, srv, 3, "card")
		delivered()
	}
	uploaded := 0
	for _, n := range sessions {
		uploaded += n
	}
	extra := noMoreUploads(t, a, srv, int64(swipes))
	t.Logf("FAULTROW\t%s\t%s\t%s", "card reader unplugged and replugged (swipe right after replug)",
		"status card: fault and a module-fault event within a moment, even when idle; the swipe made right after replug is kept; status ok and a recovered event once reopened",
		fmt.Sprintf("cycles %d, swipes %d, records delivered %d, duplicates %d, lost %d, detect ≤%v, recover ≤%v",
			cycles(), swipes, len(sessions), extra+uploaded-len(sessions), swipes-len(sessions), detect.Round(time.Millisecond), recover.Round(time.Millisecond)))
}

func TestFaultRelayUnpluggedDuringGrant(t *testing.T) {
	srv := newTestServer(t)
	db := openStore(t, store.Config{})
	h := newHWRig(t, sim.RigConfig{Devices: []string{sim.DevCard, sim.DevRelay}, Card: sim.CardReaderConfig{Repeats: 3}})
	addPerson(t, db, "p1", 6547886)
	addPerson(t, db, "p2", 6547887) // another card: the same one again within 1 s would be a repeat
	a := startAgent(t, agent.Config{Link: agent.LinkConfig{ServerAddress: srv.addr},
		Access: agent.AccessConfig{DoorPulse: 20 * time.Millisecond, DoorTimeout: 500 * time.Millisecond}}, h.parts(db))
	srv.peer()
	var detect, recover time.Duration
	swipes, doorFaults := 0, 0
	for range cycles() {
		h.exec(t, "unplug relay")
		detect = maxDur(detect, waitModule(t, a, "door", agent.ModuleFault))
		eventFor(t, srv, 2, "door")
		h.exec(t, "swipe 0006547886") // three frames, as a reader repeats
		swipes++
		eventFor(t, srv, 5, "door")
		doorFaults++
		if st := a.Status(context.Background()); st.OutboxDepth != 0 || st.RecordsPending != 0 {
			t.Errorf("a record for a door that did not open: outbox %d, pending %d", st.OutboxDepth, st.RecordsPending)
		}
		h.exec(t, "replug relay")
		recover = maxDur(recover, waitModule(t, a, "door", agent.ModuleOK))
		eventFor(t, srv, 3, "door")
		before := h.rig.Relay().State().Switches
		h.exec(t, "swipe 0006547887")
		swipes++
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		_, err := h.rig.Relay().Wait(ctx, func(s sim.RelayState) bool { return s.Switches > before })
		cancel()
		if err != nil {
			t.Fatalf("the door did not open after replug: %v", err)
		}
	}
	people, sessions := uploads(srv, cycles())
	for _, p := range people {
		if p != "p2" {
			t.Errorf("a record of %q, whose door did not open", p)
		}
	}
	extra := noMoreUploads(t, a, srv, int64(cycles()))
	for drained := false; !drained; {
		select {
		case ev := <-srv.events:
			if ev.CommandType == 5 {
				doorFaults++
				t.Errorf("another door fault event %q: one swipe made several attempts", ev.CommandValue)
			}
		default:
			drained = true
		}
	}
	t.Logf("FAULTROW\t%s\t%s\t%s", "relay board unplugged, then a grant",
		"status door: fault and a module-fault event even when idle; a grant that cannot drive the relay makes no record and sends a door-fault event (type 5) naming the person; one swipe (the reader repeats it) is one attempt; after replug one swipe, one record",
		fmt.Sprintf("cycles %d, swipes %d, door-fault events %d, records delivered %d (want %d), duplicates %d, detect ≤%v, recover ≤%v",
			cycles(), swipes, doorFaults, len(sessions), cycles(), extra+len(people)-len(sessions), detect.Round(time.Millisecond), recover.Round(time.Millisecond)))
}

func TestFaultFaceModuleUnplugged(t *testing.T) {
	detect, recover, extra := unplugModuleCycles(t, sim.DevFace,
		func(*hwRig) *protocol.PersonInfo {
			return &protocol.PersonInfo{PersonID: "p1", Face: blob(photo(3000, 1))}
		},
		func(h *hwRig, p store.Person) error { return h.rig.Face().ShowFace(p.FaceUser) }, 2)
	t.Logf("FAULTROW\t%s\t%s\t%s", "face module unplugged and replugged",
		"status face: fault and a module-fault event at once, even when idle; after replug the module is resynchronised, status ok and a recovered event; faces are recognised again",
		fmt.Sprintf("cycles %d, faces shown %d, records %d, duplicates %d, detect ≤%v, recover ≤%v (resync included)",
			cycles(), cycles(), cycles(), extra, detect.Round(time.Millisecond), recover.Round(time.Millisecond)))
}

func TestFaultFingerprintModuleUnplugged(t *testing.T) {
	detect, recover, extra := unplugModuleCycles(t, sim.DevFingerprint,
		func(h *hwRig) *protocol.PersonInfo {
			return &protocol.PersonInfo{PersonID: "p1", LeftCode: blob(h.rig.Fingerprint().Template(1))}
		},
		func(h *hwRig, p store.Person) error { return h.rig.Fingerprint().PlaceFinger(p.LeftSlot) }, 3)
	t.Logf("FAULTROW\t%s\t%s\t%s", "fingerprint module unplugged and replugged",
		"status fingerprint: fault and a module-fault event at once, even when idle; after replug the module is resynchronised, status ok and a recovered event; fingers match again",
		fmt.Sprintf("cycles %d, fingers placed %d, records %d, duplicates %d, detect ≤%v, recover ≤%v (resync included)",
			cycles(), cycles(), cycles(), extra, detect.Round(time.Millisecond), recover.Round(time.Millisecond)))
}

// unplugModuleCycles runs an agent with the biometric module dev (and a
// relay), downloads person p1 with the biometric person returns, then
// unplugs and replugs the module cycles() times: each time the status and
// a module-fault event show the loss, the status and a recovered event the
// return, and p1's biometric presented afterwards (present) makes a record
// of open_door_type openType. It returns the longest detection and
// recovery and the duplicate records.
func unplugModuleCycles(t *testing.T, dev string, person func(*hwRig) *protocol.PersonInfo,
	present func(*hwRig, store.Person) error, openType int) (detect, recover time.Duration, extra int) {
	t.Helper()
	srv := newTestServer(t)
	db := openStore(t, store.Config{})
	h := newHWRig(t, sim.RigConfig{Devices: []string{dev, sim.DevRelay}})
	a := startAgent(t, agent.Config{Link: agent.LinkConfig{ServerAddress: srv.addr},
		Access: agent.AccessConfig{DoorPulse: 20 * time.Millisecond}}, h.parts(db))
	peer := srv.peer()
	m := req(protocol.ModDownloadPerson)
	m.PersonInfo = person(h)
	if _, code, msg := call(t, peer, m); code != 0 {
		t.Fatalf("download: %d %q", code, msg)
	}
	for range cycles() {
		h.exec(t, "unplug "+dev)
		detect = maxDur(detect, waitModule(t, a, dev, agent.ModuleFault))
		eventFor(t, srv, 2, dev)
		h.exec(t, "replug "+dev)
		recover = maxDur(recover, waitModule(t, a, dev, agent.ModuleOK))
		eventFor(t, srv, 3, dev)
		p, err := db.Person(context.Background(), "p1")
		if err != nil {
			t.Fatal(err)
		}
		if err := present(h, p); err != nil {
			t.Fatal(err)
		}
		if ai := srv.upload().AccessInfo; ai.PersonID != "p1" || ai.OpenDoorType != openType {
			t.Fatalf("%s record after replug %+v", dev, ai)
		}
	}
	return detect, recover, noMoreUploads(t, a, srv, int64(cycles()))
}

func TestFaultNoisyCardLine(t *testing.T) {
	srv := newTestServer(t)
	db := openStore(t, store.Config{})
	h := newHWRig(t, sim.RigConfig{Devices: []string{sim.DevCard, sim.DevRelay}, Card: sim.CardReaderConfig{Repeats: 3}})
	n := 5
	if faultsFull() {
		n = 40
	}
	for i := range n {
		addPerson(t, db, "p"+strconv.Itoa(i), 7000+i)
	}
	a := startAgent(t, agent.Config{Link: agent.LinkConfig{ServerAddress: srv.addr}, Upload: agent.UploadConfig{Window: 1},
		Access: agent.AccessConfig{DoorPulse: 20 * time.Millisecond}}, h.parts(db))
	srv.peer()
	noise := 0
	for i := range n {
		h.exec(t, "noise card 4096")
		noise += 4096
		h.exec(t, "swipe "+strconv.Itoa(7000+i))
		// The next person's noise and card may follow at once.
	}
	people, sessions := uploads(srv, n)
	for i, p := range people {
		if want := "p" + strconv.Itoa(i); p != want {
			t.Errorf("record %d is %q, want %q", i, p, want)
		}
	}
	extra := noMoreUploads(t, a, srv, int64(n))
	if st := a.Status(context.Background()).Modules["card"]; st.State != agent.ModuleOK {
		t.Errorf("card module %s after noise, want ok (noise is no fault)", st.State)
	}
	t.Logf("FAULTROW\t%s\t%s\t%s", "noisy card line (random bytes between swipes)",
		"garbage is dropped; every swipe (each repeated 3 times by the reader) makes exactly one record, in order; the reader stays ok",
		fmt.Sprintf("swipes %d, noise %d bytes, records delivered %d, duplicates %d, lost %d", n, noise, len(sessions), extra+len(people)-len(sessions), n-len(sessions)))
}

func TestFaultNoisyModuleLines(t *testing.T) {
	srv := newTestServer(t)
	db := openStore(t, store.Config{})
	h := newHWRig(t, sim.RigConfig{Devices: []string{sim.DevFingerprint, sim.DevFace, sim.DevRelay}})
	a := startAgent(t, agent.Config{Link: agent.LinkConfig{ServerAddress: srv.addr},
		Access:  agent.AccessConfig{DoorPulse: 20 * time.Millisecond},
		Modules: agent.ModuleConfig{RetryMin: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond}}, h.parts(db))
	peer := srv.peer()
	fsim := h.rig.Fingerprint()
	m := req(protocol.ModDownloadPerson)
	m.PersonInfo = &protocol.PersonInfo{PersonID: "p1", LeftCode: blob(fsim.Template(1)), Face: blob(photo(3000, 1))}
	if _, code, msg := call(t, peer, m); code != 0 {
		t.Fatalf("download: %d %q", code, msg)
	}
	n := 3
	if faultsFull() {
		n = 20
	}
	noise := 0
	for range n {
		p, err := db.Person(context.Background(), "p1")
		if err != nil {
			t.Fatal(err)
		}
		h.exec(t, "noise fingerprint 4096")
		h.exec(t, "noise face 4096")
		noise += 2 * 4096
		if err := fsim.PlaceFinger(p.LeftSlot); err != nil {
			t.Fatal(err)
		}
		if ai := srv.upload().AccessInfo; ai.PersonID != "p1" || ai.OpenDoorType != 3 {
			t.Fatalf("finger record %+v", ai)
		}
		// The face module answers between the noise (were it resynchronised, wait for it).
		haltest.Eventually(t, "the face module ready", func() bool {
			return a.Status(context.Background()).Modules["face"].State == agent.ModuleOK
		})
		p, _ = db.Person(context.Background(), "p1")
		if err := h.rig.Face().ShowFace(p.FaceUser); err != nil {
			t.Fatal(err)
		}
		if ai := srv.upload().AccessInfo; ai.PersonID != "p1" || ai.OpenDoorType != 2 {
			t.Fatalf("face record %+v", ai)
		}
	}
	extra := noMoreUploads(t, a, srv, int64(2*n))
	faults := 0
	for drained := false; !drained; {
		select {
		case ev := <-srv.events:
			if ev.CommandType == 2 {
				faults++
			}
		default:
			drained = true
		}
	}
	t.Logf("FAULTROW\t%s\t%s\t%s", "noisy face and fingerprint lines (random bytes during recognition)",
		"garbage is skipped by the frame decoders; every finger and face presented makes exactly one record",
		fmt.Sprintf("presentations %d, noise %d bytes, records delivered %d, duplicates %d, lost 0, module-fault events %d", 2*n, noise, 2*n, extra, faults))
}

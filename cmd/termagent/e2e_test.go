package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"termagent/agent"
	"termagent/hal/haltest"
	"termagent/hal/sim"
	"termagent/protocol"
)

// rig is one simulated terminal's hardware and configuration: a card
// reader and an LCUS relay board (and, if asked, a fingerprint and a face
// module) on pseudo-terminals, a systemd notify socket and a config file
// pointing the daemon at them.
type rig struct {
	t      *testing.T
	dir    string
	cfg    string
	card   *sim.CardReader
	relay  *sim.Relay
	finger *sim.Fingerprint
	face   *sim.Face
	keypad *sim.Keypad
	doorio *sim.InputDevice
	notify <-chan string
	env    string // NOTIFY_SOCKET=...
}

// rigOpts varies the rig.
type rigOpts struct {
	// extra is appended to the config file (top-level sections not
	// already written).
	extra string
	// cardLink is the card reader's port, relative to the rig's
	// directory; the reader is plugged in at start only when it is
	// "card" (the default).
	cardLink string
	// biometrics adds a fingerprint and a face module.
	biometrics bool
	// server is appended to the server section (keys indented by two).
	server string
	// terminal adds a serial keypad (DIR/keypad) and gpio-keys door
	// inputs (DIR/doorio).
	terminal bool
}

// newRig builds the hardware and writes the config.
func newRig(t *testing.T, serverAddr, extra string) *rig {
	return newRigOpts(t, serverAddr, rigOpts{extra: extra})
}

func newRigOpts(t *testing.T, serverAddr string, o rigOpts) *rig {
	t.Helper()
	if o.cardLink == "" {
		o.cardLink = "card"
	}
	dir := t.TempDir()
	card, err := sim.NewCardReader(sim.CardReaderConfig{Repeats: 1})
	if err != nil {
		t.Fatal(err)
	}
	relay, err := sim.NewRelay(sim.RelayConfig{})
	if err != nil {
		t.Fatal(err)
	}
	devs := map[string]sim.Device{"relay": relay}
	if o.cardLink == "card" {
		devs["card"] = card
	}
	notifyPath := filepath.Join(dir, "notify.sock")
	r := &rig{
		t: t, dir: dir, card: card, relay: relay,
		notify: listenNotify(t, notifyPath),
		env:    "NOTIFY_SOCKET=" + notifyPath,
	}
	hal := ""
	if o.biometrics {
		if r.finger, err = sim.NewFingerprint(sim.FingerprintConfig{}); err != nil {
			t.Fatal(err)
		}
		if r.face, err = sim.NewFace(sim.FaceConfig{}); err != nil {
			t.Fatal(err)
		}
		devs["finger"], devs["face"] = r.finger, r.face
		hal = fmt.Sprintf("  fingerprint:\n    driver: r30x\n    port: %s\n  face:\n    driver: fm22x\n    port: %s\n    photo_enroll_msg_id: 0xF7\n",
			filepath.Join(dir, "finger"), filepath.Join(dir, "face"))
	}
	if o.terminal {
		if r.keypad, err = sim.NewKeypad(sim.KeypadConfig{KeyEvery: 10 * time.Millisecond}); err != nil {
			t.Fatal(err)
		}
		devs["keypad"] = r.keypad
		// The record layout is stated on both sides: the daemon is built
		// for the build machine, while this test may run under qemu-user
		// as a 32-bit ARM program whose native layout is 16 bytes.
		if r.doorio, err = sim.NewInputDevice(filepath.Join(dir, "doorio"), sim.InputConfig{EventSize: 24}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.doorio.Close() })
		hal += fmt.Sprintf("  keypad:\n    driver: serial\n    port: %s\n  door_inputs:\n    driver: evdev\n    device: %s\n    event_size: 24\n",
			filepath.Join(dir, "keypad"), filepath.Join(dir, "doorio"))
	}
	for link, dev := range devs {
		plug, err := sim.Attach(dev, filepath.Join(dir, link))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { plug.Close() })
	}
	r.cfg = writeConfig(t, fmt.Sprintf(`
server:
  address: %q
  backoff_min: 50ms
  backoff_max: 500ms
%sstore:
  path: %s
device:
  community_code: C1
hal:
  card:
    driver: rdm6300
    port: %s
  door:
    driver: lcus
    port: %s
    pulse: 20s
%scontrol:
  socket: %s
log:
  level: debug
%s`, serverAddr, o.server, filepath.Join(dir, "termagent.db"), filepath.Join(dir, o.cardLink), filepath.Join(dir, "relay"),
		hal, filepath.Join(dir, "ctl.sock"), o.extra))
	return r
}

// start runs the daemon and waits for READY=1.
func (r *rig) start(env ...string) *daemonProc {
	r.t.Helper()
	d := startDaemon(r.t, r.cfg, append(env, r.env)...)
	r.expectNotify("READY=1", d)
	return d
}

// expectNotify waits for the daemon to send state to the notify socket.
func (r *rig) expectNotify(state string, d *daemonProc) {
	r.t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case got := <-r.notify:
			if got == state {
				return
			}
		case <-d.done:
			for { // the daemon may have sent it just before exiting
				select {
				case got := <-r.notify:
					if got == state {
						return
					}
					continue
				case <-time.After(time.Second):
				}
				break
			}
			r.t.Fatalf("daemon exited (%v) before %s", d.err, state)
		case <-deadline:
			r.t.Fatalf("no %s from the daemon within 30s", state)
		}
	}
}

// status asks the running daemon for its status over the control socket.
func (r *rig) status() (agent.Status, error) {
	var st agent.Status
	err := queryStatus(context.Background(), filepath.Join(r.dir, "ctl.sock"), &st)
	return st, err
}

// waitStatus polls the daemon's status until cond holds.
func (r *rig) waitStatus(what string, cond func(agent.Status) bool) agent.Status {
	r.t.Helper()
	var st agent.Status
	haltest.Eventually(r.t, what, func() bool {
		var err error
		st, err = r.status()
		return err == nil && cond(st)
	})
	return st
}

func (r *rig) swipe(number string) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.card.Swipe(ctx, number); err != nil {
		r.t.Fatal(err)
	}
}

// The whole path through the real binary: the server downloads a person,
// the person's card opens the door, the record reaches the server and is
// acknowledged; status reads the daemon; SIGTERM releases the relay and
// exits 0 within 5 s; status then falls back to the database.
func TestDaemonSwipeToAck(t *testing.T) {
	srv := startServer(t, "127.0.0.1:0")
	r := newRig(t, srv.addr, "")
	d := r.start("WATCHDOG_USEC=400000") // systemd's WatchdogSec=400ms: a ping every 200ms
	peer := srv.nextPeer()
	r.expectNotify("WATCHDOG=1", d)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req := protocol.NewRequest(protocol.ModDownloadPerson)
	req.PersonInfo = &protocol.PersonInfo{PersonID: "p1", PersonName: "Ann", CardNumber: "0006547886", Role: 1}
	if _, err := peer.Call(ctx, req); err != nil {
		t.Fatalf("download_person: %v", err)
	}

	r.swipe("6547886") // printed number of EM4100 tag 01 00 63 E9 AE
	if _, err := r.relay.Wait(ctx, func(s sim.RelayState) bool { return s.On }); err != nil {
		t.Fatalf("door not unlocked for an enrolled card: %v", err)
	}
	up := srv.nextUpload()
	ai := up.AccessInfo
	if ai == nil || ai.PersonID != "p1" || ai.CardNumber != "0006547886" || ai.OpenDoorType != 1 ||
		ai.InOutType != 1 || ai.CommunityCode != "C1" || ai.Role != 1 || len(ai.Time) != 14 {
		t.Errorf("upload_access_info = %+v", ai)
	}
	if up.SessionID == "" {
		t.Error("upload without session_id")
	}

	st := r.waitStatus("outbox empty after the ack", func(s agent.Status) bool { return s.OutboxDepth == 0 && s.Uploaded >= 1 })
	if st.Link != agent.LinkUp || st.Persons != 1 || st.Modules["card"].State != agent.ModuleOK ||
		st.Modules["door"].State != agent.ModuleOK || st.SoftwareVersion != testVersion {
		t.Errorf("status = %+v", st)
	}

	// termagent status, as a person runs it.
	code, out, errOut := runCLI(t, "status", "-config", r.cfg)
	if code != 0 || !strings.Contains(out, "link") || !strings.Contains(out, "up since") ||
		!strings.Contains(out, "persons") || !strings.Contains(out, testVersion) {
		t.Errorf("status: exit %d\n%s%s", code, out, errOut)
	}

	code, out, _ = runCLI(t, "status", "-config", r.cfg, "-json")
	var running statusReport
	if err := json.Unmarshal([]byte(out), &running); err != nil {
		t.Fatalf("status -json: %v\n%s", err, out)
	}
	if code != 0 || !running.Running || running.Agent == nil || running.Agent.Link != agent.LinkUp || running.Agent.Persons != 1 {
		t.Errorf("status -json of the running daemon: exit %d %+v", code, running)
	}

	// SIGTERM while the door is unlocked: the relay is switched off by the
	// daemon (one more switch frame, not just the board losing power) and
	// the daemon exits 0 within 5 s.
	before := r.relay.State()
	if !before.On {
		t.Fatal("relay already off before SIGTERM; the pulse is 20s")
	}
	code, took := d.stop(syscall.SIGTERM)
	if code != 0 {
		t.Errorf("exit status after SIGTERM = %d, want 0", code)
	}
	if took > 5*time.Second {
		t.Errorf("exit took %v after SIGTERM, want at most 5s", took)
	}
	t.Logf("SIGTERM to exit: %v", took)
	after := r.relay.State()
	if after.On || after.Switches < before.Switches+1 {
		t.Errorf("relay after SIGTERM: %+v (before %+v): not released by the daemon", after, before)
	}
	r.expectNotify("STOPPING=1", d)

	// Not running: status reads the database and exits 3.
	code, out, _ = runCLI(t, "status", "-config", r.cfg, "-json")
	var rep statusReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("status -json: %v\n%s", err, out)
	}
	if code != exitNotRunning || rep.Running || rep.Database == nil || rep.Database.Persons != 1 ||
		rep.Database.OutboxDepth != 0 || rep.Database.Server != srv.addr {
		t.Errorf("status of a stopped daemon: exit %d %+v %+v", code, rep, rep.Database)
	}
}

// Swipes while the server is away are kept; when it comes back they are
// drained, and a SIGKILL in the middle of the drain loses nothing: after a
// restart every record arrives, and a record that arrives twice carries
// the same session_id both times.
func TestDaemonKillDuringDrain(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // the server is away: nothing listens here yet

	r := newRig(t, addr, "access:\n  record_denied: true\nupload:\n  window: 4\n")
	d := r.start()
	const n = 40
	for i := range n {
		r.swipe(fmt.Sprint(1000 + i)) // unknown cards: denied, recorded
	}
	r.waitStatus(fmt.Sprintf("%d records queued", n), func(s agent.Status) bool { return s.OutboxDepth == n })
	if st := r.relay.State(); st.On {
		t.Error("door unlocked for unknown cards")
	}

	srv := startServer(t, addr)
	srv.mu.Lock()
	srv.delay = 20 * time.Millisecond
	srv.mu.Unlock()

	sessions := map[string]map[string]bool{} // card_number → session_ids seen
	total := 0
	receive := func(m *protocol.Message) {
		total++
		ai := m.AccessInfo
		if ai == nil || ai.PersonID != "" || ai.OpenDoorType != 1 {
			t.Errorf("bad upload %+v", ai)
			return
		}
		if sessions[ai.CardNumber] == nil {
			sessions[ai.CardNumber] = map[string]bool{}
		}
		sessions[ai.CardNumber][m.SessionID] = true
	}
	for range n / 4 {
		receive(srv.nextUpload())
	}
	t.Logf("SIGKILL after %d uploads", len(sessions))
	if code, _ := d.stop(syscall.SIGKILL); code != -int(syscall.SIGKILL) {
		t.Fatalf("exit after SIGKILL = %d", code)
	}

	r.start()
	for len(sessions) < n {
		receive(srv.nextUpload())
	}
	r.waitStatus("outbox drained after restart", func(s agent.Status) bool { return s.OutboxDepth == 0 && s.Link == agent.LinkUp })
	for {
		select {
		case m := <-srv.uploads:
			receive(m)
			continue
		default:
		}
		break
	}
	for i := range n {
		num := fmt.Sprintf("%010d", 1000+i)
		switch ids := sessions[num]; {
		case len(ids) == 0:
			t.Errorf("record of card %s lost", num)
		case len(ids) > 1:
			t.Errorf("record of card %s uploaded under %d session_ids: %v", num, len(ids), ids)
		}
	}
	if len(sessions) != n {
		t.Errorf("%d distinct records uploaded, want %d", len(sessions), n)
	}
	t.Logf("%d records in %d uploads (a record resent after the restart keeps its session_id)", len(sessions), total)
}

// A module missing at start does not keep the terminal down: the daemon
// runs, reports the card reader faulty, and uses it once it appears.
func TestDaemonModuleAppearsLater(t *testing.T) {
	srv := startServer(t, "127.0.0.1:0")
	r := newRigOpts(t, srv.addr, rigOpts{
		extra:    "access:\n  record_denied: true\nmodules:\n  retry_min: 50ms\n  retry_max: 200ms\n",
		cardLink: "late-card",
	})
	late := filepath.Join(r.dir, "late-card")
	r.start()
	srv.nextPeer()
	r.waitStatus("card reader faulty", func(s agent.Status) bool { return s.Modules["card"].State == agent.ModuleFault })

	plug, err := sim.Attach(r.card, late)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { plug.Close() })
	// A card reader has no probe: it counts as recovered at its first
	// card. Swipe (new cards, so none is a repeat) until one gets through:
	// the agent reopens the reader on its own backoff.
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; ; i++ {
		if time.Now().After(deadline) {
			t.Fatal("no card got through within 30s after the reader appeared")
		}
		r.swipe(fmt.Sprint(4200 + i))
		select {
		case up := <-srv.uploads:
			if ai := up.AccessInfo; ai == nil || !strings.HasPrefix(ai.CardNumber, "00000042") {
				t.Fatalf("upload after the reader appeared: %+v", ai)
			}
		case <-time.After(time.Second):
			continue
		}
		break
	}
	r.waitStatus("card reader recovered", func(s agent.Status) bool { return s.Modules["card"].State == agent.ModuleOK })
}

// Biometrics through the real binary and the real drivers: a downloaded
// person is enrolled into the simulated fingerprint and face modules, and
// the person's finger and face open the door and are recorded with their
// open_door_type.
func TestDaemonBiometrics(t *testing.T) {
	srv := startServer(t, "127.0.0.1:0")
	r := newRigOpts(t, srv.addr, rigOpts{biometrics: true})
	d := r.start()
	peer := srv.nextPeer()
	r.waitStatus("modules up", func(s agent.Status) bool {
		return s.Modules["fingerprint"].State == agent.ModuleOK && s.Modules["face"].State == agent.ModuleOK
	})

	template := r.finger.Template(7)
	photo := append([]byte{0xFF, 0xD8, 0xFF, 0xE0}, make([]byte, 2000)...) // a JPEG's size and start
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req := protocol.NewRequest(protocol.ModDownloadPerson)
	req.PersonInfo = &protocol.PersonInfo{
		PersonID: "p7", PersonName: "Bo",
		LeftCode: &protocol.Biometric{Length: len(template), Data: template},
		Face:     &protocol.Biometric{Width: 640, Height: 480, Length: len(photo), Data: photo},
	}
	if _, err := peer.Call(ctx, req); err != nil {
		t.Fatalf("download_person: %v", err)
	}
	slots, users := r.finger.Slots(), r.face.Users()
	if len(slots) != 1 || len(users) != 1 {
		t.Fatalf("after download: fingerprint slots %v, face users %v; want one each", slots, users)
	}

	if err := r.finger.PlaceFinger(slots[0]); err != nil {
		t.Fatal(err)
	}
	if ai := srv.nextUpload().AccessInfo; ai == nil || ai.PersonID != "p7" || ai.OpenDoorType != 3 {
		t.Errorf("fingerprint access: %+v", ai)
	}
	if err := r.face.ShowFace(users[0]); err != nil {
		t.Fatal(err)
	}
	if ai := srv.nextUpload().AccessInfo; ai == nil || ai.PersonID != "p7" || ai.OpenDoorType != 2 {
		t.Errorf("face access: %+v", ai)
	}
	if !r.relay.State().On {
		t.Error("door not unlocked by the person's finger and face")
	}
	if code, _ := d.stop(syscall.SIGTERM); code != 0 {
		t.Errorf("exit status after SIGTERM = %d", code)
	}
	if r.relay.State().On {
		t.Error("relay still on after SIGTERM")
	}
}

// nextEvent waits for the server to receive a device event of type typ
// (other events are skipped) and returns its value.
func (s *testServer) nextEvent(t *testing.T, typ int, what string) string {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case ev := <-s.events:
			if ev.CommandType == typ {
				return ev.CommandValue
			}
		case <-deadline:
			t.Fatalf("no %s event (type %d) at the server within 30s", what, typ)
		}
	}
}

// The whole terminal through the real binary and the real drivers: a
// serial keypad and gpio-keys door inputs (evdev) wired from the file. A
// door opened with no grant reaches the server as "door forced"; the
// downloaded person's PIN opens the door (record type 5); three wrong
// PINs send "PIN lockout"; a door held open after the grant sends "door
// held open"; each closing is sent too.
func TestDaemonPINAndDoorWatch(t *testing.T) {
	srv := startServer(t, "127.0.0.1:0")
	r := newRigOpts(t, srv.addr, rigOpts{
		terminal: true,
		extra:    "pin:\n  lockout_for: 2s\ndoor_watch:\n  held_open: 1s\n",
	})
	d := r.start()
	peer := srv.nextPeer()
	r.waitStatus("keypad and door inputs up", func(s agent.Status) bool {
		return s.Modules["keypad"].State == agent.ModuleOK
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req := protocol.NewRequest(protocol.ModDownloadPerson)
	req.PersonInfo = &protocol.PersonInfo{PersonID: "p9", PersonName: "Pin", KeyNumber: "2468"}
	if _, err := peer.Call(ctx, req); err != nil {
		t.Fatalf("download_person: %v", err)
	}

	if err := r.doorio.SetDoor(true); err != nil {
		t.Fatal(err)
	}
	if v := srv.nextEvent(t, 10, "door forced"); strings.HasPrefix(v, "closed") {
		t.Errorf("door forced event %q", v)
	}
	if err := r.doorio.SetDoor(false); err != nil {
		t.Fatal(err)
	}
	if v := srv.nextEvent(t, 10, "door forced, closed"); !strings.HasPrefix(v, "closed") {
		t.Errorf("door forced closing event %q", v)
	}

	if err := r.keypad.Press(ctx, "2468#"); err != nil {
		t.Fatal(err)
	}
	if ai := srv.nextUpload().AccessInfo; ai == nil || ai.PersonID != "p9" || ai.OpenDoorType != 5 {
		t.Fatalf("PIN access: %+v", ai)
	}
	if !r.relay.State().On {
		t.Error("door not unlocked by the PIN")
	}
	if err := r.doorio.SetDoor(true); err != nil { // within the grant: allowed, then held
		t.Fatal(err)
	}
	if v := srv.nextEvent(t, 9, "door held open"); strings.HasPrefix(v, "closed") {
		t.Errorf("door held open event %q", v)
	}
	if err := r.doorio.SetDoor(false); err != nil {
		t.Fatal(err)
	}
	if v := srv.nextEvent(t, 9, "door held open, closed"); !strings.HasPrefix(v, "closed") {
		t.Errorf("door held open closing event %q", v)
	}

	for range 3 {
		if err := r.keypad.Press(ctx, "1111#"); err != nil {
			t.Fatal(err)
		}
	}
	srv.nextEvent(t, 8, "PIN lockout")
	if code, _ := d.stop(syscall.SIGTERM); code != 0 {
		t.Errorf("exit status after SIGTERM = %d", code)
	}
}

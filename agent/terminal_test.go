package agent_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"periph.io/x/conn/v3/gpio"

	"termagent/agent"
	"termagent/hal/backoff"
	"termagent/hal/evdev"
	"termagent/hal/feedback"
	"termagent/hal/haltest"
	"termagent/hal/keypad"
	"termagent/hal/sim"
	"termagent/protocol"
	"termagent/store"
)

// termRig is hwRig plus a serial keypad and gpio-keys door inputs, with
// their real drivers: hal/keypad on the keypad's pseudo-terminal and
// hal/evdev's DoorInputs on the doorio input_event FIFO.
type termRig struct {
	*hwRig
	keypad *keypad.Serial
	inputs *evdev.DoorInputs
}

func newTermRig(t *testing.T, devices ...string) *termRig {
	t.Helper()
	h := newHWRig(t, sim.RigConfig{Devices: devices, Keypad: sim.KeypadConfig{KeyEvery: 2 * time.Millisecond}})
	r := &termRig{hwRig: h}
	bo := backoff.Policy{Min: 10 * time.Millisecond, Max: 200 * time.Millisecond}
	var err error
	if p := h.rig.Path(sim.DevKeypad); p != "" {
		if r.keypad, err = keypad.Open(keypad.Config{Port: p, Backoff: bo, Logger: testLogger(t, "keypad")}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.keypad.Close() })
	}
	if p := h.rig.Path(sim.DevDoorIO); p != "" {
		if r.inputs, err = evdev.OpenDoorInputs(evdev.DoorConfig{Device: p, Backoff: bo, Logger: testLogger(t, "doorio")}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.inputs.Close() })
	}
	return r
}

func (r *termRig) parts(db *store.DB) agent.Parts {
	p := r.hwRig.parts(db)
	if r.keypad != nil {
		p.Keypad = r.keypad
	}
	if r.inputs != nil {
		p.DoorInputs = r.inputs
	}
	return p
}

// addPersonKey stores a person with a card and a PIN.
func addPersonKey(t *testing.T, db *store.DB, id string, cardNo int, key string) {
	t.Helper()
	ctx := context.Background()
	tx, err := db.BeginPerson(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if err := tx.Put(store.Person{PersonID: id, CardNumber: cardNumber(cardNo), KeyNumber: key}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}

// expectUpload waits for the next upload and checks its person and type.
func expectUpload(t *testing.T, srv *testServer, person string, kind int) *protocol.AccessInfo {
	t.Helper()
	ai := srv.upload().AccessInfo
	if ai == nil || ai.PersonID != person || ai.OpenDoorType != kind {
		t.Fatalf("record %+v, want person %q open_door_type %d", ai, person, kind)
	}
	return ai
}

func TestPINOpensDoor(t *testing.T) {
	srv := newTestServer(t)
	db := openStore(t, store.Config{})
	h := newTermRig(t, sim.DevCard, sim.DevRelay, sim.DevKeypad)
	addPersonKey(t, db, "p1", 31337, "97531")
	addPersonKey(t, db, "p2", 31338, "2468")
	startAgent(t, agent.Config{Link: agent.LinkConfig{ServerAddress: srv.addr}, Upload: agent.UploadConfig{Window: 1},
		Access: agent.AccessConfig{DoorPulse: 100 * time.Millisecond, RecordDenied: true}}, h.parts(db))
	srv.peer()
	h.exec(t, "pin 13*97531#") // * clears what came before
	ai := expectUpload(t, srv, "p1", 5)
	if ai.CardNumber != "0000031337" {
		t.Errorf("card_number %q, want the person's card", ai.CardNumber)
	}
	h.exec(t, "pin 2468")
	h.exec(t, "pin enter") // Enter ends a PIN as # does
	expectUpload(t, srv, "p2", 5)
	h.exec(t, "pin 24689")
	h.exec(t, "pin bs")
	h.exec(t, "pin #") // 2468 after the backspace
	expectUpload(t, srv, "p2", 5)
	h.exec(t, "pin 975#") // a prefix of p1's PIN
	if ai := expectUpload(t, srv, "", 5); ai.CardNumber != "" {
		t.Errorf("a wrong PIN's record carries card_number %q", ai.CardNumber)
	}
	h.exec(t, "pin 1234567890123#") // longer than PIN.MaxLength (12) keys
	expectUpload(t, srv, "", 5)
	// A PIN two persons hold (stored past download_person's check) names
	// nobody: it opens nothing.
	addPersonKey(t, db, "p3", 31339, "1357")
	addPersonKey(t, db, "p4", 31340, "1357")
	h.exec(t, "pin 1357#")
	expectUpload(t, srv, "", 5)
}

func TestFaultWrongPINLockout(t *testing.T) {
	srv := newTestServer(t)
	db := openStore(t, store.Config{})
	h := newTermRig(t, sim.DevRelay, sim.DevKeypad)
	addPersonKey(t, db, "p1", 31337, "97531864")
	logs := &haltest.Buffer{}
	cfg := agent.Config{Link: agent.LinkConfig{ServerAddress: srv.addr, BackoffMin: 20 * time.Millisecond, BackoffMax: 200 * time.Millisecond},
		Upload: agent.UploadConfig{Window: 1, RetryMin: 10 * time.Millisecond, RetryMax: 100 * time.Millisecond},
		Access: agent.AccessConfig{DoorPulse: 100 * time.Millisecond, RecordDenied: true},
		PIN:    agent.PINConfig{LockoutAfter: 3, LockoutWindow: time.Hour, LockoutFor: time.Hour}}
	a := startAgentWithLog(t, cfg, h.parts(db), logs)
	srv.peer()
	start := time.Now()
	wrong := []string{"11113333", "22224444", "33335555"}
	for _, wrong := range wrong {
		h.exec(t, "pin "+wrong+"#")
		expectUpload(t, srv, "", 5)
	}
	ev := srv.event(8)
	detect := time.Since(start)
	if !strings.Contains(ev.CommandValue, "3 wrong PINs") {
		t.Errorf("lockout event value %q", ev.CommandValue)
	}
	if until := a.Status(context.Background()).PINLockedUntil; until.IsZero() {
		t.Error("status does not show the lockout")
	}
	switches := h.rig.Relay().State().Switches // 0: nobody came in
	h.exec(t, "pin 97531864#")                 // right, but the keypad is locked out
	expectUpload(t, srv, "", 5)
	if got := h.rig.Relay().State().Switches; got != switches {
		t.Errorf("the right PIN opened the door during the lockout")
	}
	for _, secret := range append(wrong, "97531864") {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("a PIN (%s) is in the agent's log", secret)
		}
	}
	t.Logf("FAULTROW\t%s\t%s\t%s", "wrong PIN three times on the keypad",
		"refuses each, locks the keypad (right PINs refused unchecked), PIN lockout event, status shows locked until; no PIN logged",
		"wrong PINs 3, lockout events 1, right PIN during lockout refused, detect "+detect.Round(time.Millisecond).String())
}

// startAgentWithLog is startAgent with the agent's logs copied to buf.
func startAgentWithLog(t *testing.T, cfg agent.Config, parts agent.Parts, buf *haltest.Buffer) *runningAgent {
	t.Helper()
	cfg.Logger = zerolog.New(zerolog.MultiLevelWriter(zerolog.NewTestWriter(t), buf)).Level(zerolog.DebugLevel)
	a, err := agent.New(cfg, parts)
	if err != nil {
		t.Fatalf("agent.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &runningAgent{Agent: a, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- a.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

func TestCardPlusPIN(t *testing.T) {
	srv := newTestServer(t)
	db := openStore(t, store.Config{})
	h := newTermRig(t, sim.DevCard, sim.DevRelay, sim.DevKeypad)
	addPersonKey(t, db, "p1", 31337, "97531")
	addPersonKey(t, db, "p2", 31338, "97531") // shared PINs are fine with card+pin
	hook, out := writeHook(t, 0)
	startAgent(t, agent.Config{Link: agent.LinkConfig{ServerAddress: srv.addr}, Upload: agent.UploadConfig{Window: 1},
		Access:   agent.AccessConfig{DoorPulse: 100 * time.Millisecond, RecordDenied: true},
		Verify:   agent.VerifyConfig{Mode: agent.VerifyCardPIN, PINTimeout: time.Hour},
		PIN:      agent.PINConfig{LockoutAfter: 100},
		Feedback: agent.FeedbackConfig{Hook: hook}}, h.parts(db))
	srv.peer()
	hookSaid := func(want string) {
		t.Helper()
		haltest.Eventually(t, "the feedback hook saying "+want, func() bool {
			b, _ := os.ReadFile(out)
			return strings.Contains(string(b), want)
		})
	}
	h.exec(t, "pin 97531#") // a PIN alone opens nothing
	expectUpload(t, srv, "", 5)
	hookSaid("deny\npin\n\n")

	h.exec(t, "swipe 31338")
	hookSaid("pin\ncard\np2\n") // the card is known; its PIN is awaited
	h.exec(t, "pin 97531#")
	if ai := expectUpload(t, srv, "p2", 5); ai.CardNumber != "0000031338" {
		t.Errorf("card_number %q, want the card presented", ai.CardNumber)
	}
	hookSaid("grant\npin\np2\n")

	h.exec(t, "swipe 31337")
	hookSaid("pin\ncard\np1\n")
	h.exec(t, "pin 1111#") // wrong PIN for the card
	if ai := expectUpload(t, srv, "", 5); ai.CardNumber != "0000031337" {
		t.Errorf("a refused card+PIN's card_number %q", ai.CardNumber)
	}
	h.exec(t, "pin 97531#") // the card was used up by the wrong try
	expectUpload(t, srv, "", 5)

	h.exec(t, "swipe 4242") // an unknown card is refused at once
	if ai := expectUpload(t, srv, "", 1); ai.CardNumber != "0000004242" {
		t.Errorf("unknown card record %+v", ai)
	}
}

func TestDownloadRefusesSharedPIN(t *testing.T) {
	for _, mode := range []string{agent.VerifyAny, agent.VerifyCardPIN} {
		t.Run(mode, func(t *testing.T) {
			srv := newTestServer(t)
			db := openStore(t, store.Config{})
			h := newTermRig(t, sim.DevCard, sim.DevKeypad)
			startAgent(t, agent.Config{Link: agent.LinkConfig{ServerAddress: srv.addr}, Verify: agent.VerifyConfig{Mode: mode}}, h.parts(db))
			peer := srv.peer()
			put := func(id, key string) (int, string) {
				m := req(protocol.ModDownloadPerson)
				m.PersonInfo = &protocol.PersonInfo{PersonID: id, KeyNumber: key}
				_, code, msg := call(t, peer, m)
				return code, msg
			}
			if code, msg := put("p1", "97531"); code != 0 {
				t.Fatalf("first holder: %d %q", code, msg)
			}
			if code, msg := put("p1", "97531"); code != 0 { // the holder itself again
				t.Fatalf("the holder downloaded again: %d %q", code, msg)
			}
			code, msg := put("p2", "97531")
			_, err := db.Person(context.Background(), "p2")
			if mode == agent.VerifyCardPIN {
				if code != 0 || err != nil {
					t.Fatalf("card+pin: a shared PIN refused: %d %q (stored: %v)", code, msg, err)
				}
				return
			}
			if code != -1 || !strings.Contains(msg, `"p1"`) || !strings.Contains(msg, `"p2"`) || !strings.Contains(msg, "key_number") {
				t.Fatalf("any: a shared PIN: %d %q, want -1 naming key_number, p1 and p2", code, msg)
			}
			if strings.Contains(msg, "97531") {
				t.Errorf("the refusal names the PIN: %q", msg)
			}
			if err == nil {
				t.Error("the refused person was stored")
			}
		})
	}
}

// doorEvents collects device events of the door types until one whose
// value starts with "closed" arrives, and returns them.
func doorEvents(t *testing.T, srv *testServer, types ...int) []*protocol.Message {
	t.Helper()
	var got []*protocol.Message
	deadline := time.After(waitFor)
	for {
		select {
		case m := <-srv.events:
			for _, typ := range types {
				if m.CommandType == typ {
					got = append(got, m)
					if strings.HasPrefix(m.CommandValue, "closed") {
						return got
					}
				}
			}
		case <-deadline:
			t.Fatalf("door events so far %d, no closing event", len(got))
			return nil
		}
	}
}

func TestFaultDoorHeldOpen(t *testing.T) {
	srv := newTestServer(t)
	db := openStore(t, store.Config{})
	h := newTermRig(t, sim.DevCard, sim.DevRelay, sim.DevDoorIO)
	addPerson(t, db, "p1", 31337)
	a := startAgent(t, agent.Config{Link: agent.LinkConfig{ServerAddress: srv.addr},
		Access:    agent.AccessConfig{DoorPulse: time.Hour}, // allowed for the whole test
		DoorWatch: agent.DoorWatchConfig{HeldOpen: 300 * time.Millisecond}}, h.parts(db))
	srv.peer()
	h.exec(t, "swipe 31337")
	expectUpload(t, srv, "p1", 1)
	opened := time.Now()
	h.exec(t, "door open")
	ev := srv.event(9)
	detect := time.Since(opened)
	if strings.HasPrefix(ev.CommandValue, "closed") || detect < 300*time.Millisecond {
		t.Fatalf("held-open event %q after %v, want an alarm after at least 300ms", ev.CommandValue, detect)
	}
	st := a.Status(context.Background())
	if !st.DoorHeldOpen || st.DoorForced || !st.DoorOpen || st.DoorAlarmSince.IsZero() {
		t.Fatalf("status held_open %v forced %v open %v since %v", st.DoorHeldOpen, st.DoorForced, st.DoorOpen, st.DoorAlarmSince)
	}
	h.exec(t, "door closed")
	evs := doorEvents(t, srv, 9, 10)
	if len(evs) != 1 || evs[0].CommandType != 9 {
		t.Fatalf("events after closing %d (first type %d), want the held-open type's closing only", len(evs), evs[0].CommandType)
	}
	haltest.Eventually(t, "the status cleared", func() bool {
		st := a.Status(context.Background())
		return !st.DoorHeldOpen && !st.DoorForced && !st.DoorOpen
	})
	t.Logf("FAULTROW\t%s\t%s\t%s", "door held open after a grant",
		"held-open device event after DoorWatch.HeldOpen, status door_held_open; closing sends the closing event and clears it",
		"held-open 300ms, detect "+detect.Round(time.Millisecond).String()+", events 2 (alarm, closed), forced 0")
}

func TestFaultDoorForced(t *testing.T) {
	srv := newTestServer(t)
	db := openStore(t, store.Config{})
	h := newTermRig(t, sim.DevRelay, sim.DevDoorIO)
	a := startAgent(t, agent.Config{Link: agent.LinkConfig{ServerAddress: srv.addr},
		Access:    agent.AccessConfig{DoorPulse: time.Hour}, // the remote open's opening is allowed all along
		DoorWatch: agent.DoorWatchConfig{HeldOpen: 200 * time.Millisecond}}, h.parts(db))
	peer := srv.peer()
	opened := time.Now()
	h.exec(t, "door open") // nobody was let in
	ev := srv.event(10)
	detect := time.Since(opened)
	if strings.HasPrefix(ev.CommandValue, "closed") {
		t.Fatalf("forced event %q", ev.CommandValue)
	}
	st := a.Status(context.Background())
	if !st.DoorForced || st.DoorHeldOpen || !st.DoorOpen {
		t.Fatalf("status forced %v held_open %v open %v", st.DoorForced, st.DoorHeldOpen, st.DoorOpen)
	}
	h.exec(t, "door closed")
	evs := doorEvents(t, srv, 9, 10)
	if len(evs) != 1 || evs[0].CommandType != 10 {
		t.Fatalf("events after the alarm %d, want the forced type's closing only (a forced door is not also held open)", len(evs))
	}
	haltest.Eventually(t, "the status cleared", func() bool { return !a.Status(context.Background()).DoorForced })

	// A remote open lets the door open: held open, not forced.
	m := req(protocol.ModSendUserCommand)
	m.CommandType = 1
	if _, code, msg := call(t, peer, m); code != 0 {
		t.Fatalf("remote open: %d %q", code, msg)
	}
	h.exec(t, "door open")
	if ev := firstDoorEvent(t, srv); ev.CommandType != 9 {
		t.Fatalf("after a remote open, door event type %d %q, want held open", ev.CommandType, ev.CommandValue)
	}
	h.exec(t, "door closed")
	t.Logf("FAULTROW\t%s\t%s\t%s", "door forced open (no grant, exit button or remote open)",
		"forced device event at once, status door_forced; closing sends the closing event and clears it",
		"detect "+detect.Round(time.Millisecond).String()+", forced events 2 (alarm, closed); after a remote open: held open, not forced")
}

func TestExitButtonOpensRecordedNoAlarm(t *testing.T) {
	srv := newTestServer(t)
	db := openStore(t, store.Config{})
	h := newTermRig(t, sim.DevRelay, sim.DevDoorIO)
	startAgent(t, agent.Config{Link: agent.LinkConfig{ServerAddress: srv.addr},
		Access:    agent.AccessConfig{DoorPulse: time.Hour}, // allowed for the whole test
		DoorWatch: agent.DoorWatchConfig{HeldOpen: 200 * time.Millisecond, RecordExit: true}}, h.parts(db))
	srv.peer()
	h.exec(t, "button")
	ai := expectUpload(t, srv, "", 6)
	if ai.InOutType != 2 {
		t.Errorf("exit record in_out_type %d, want 2", ai.InOutType)
	}
	if !h.rig.Relay().State().On {
		t.Error("the exit button did not release the lock")
	}
	// The opening it allowed is supervised like a grant's: held open,
	// not forced.
	h.exec(t, "door open")
	if first := firstDoorEvent(t, srv); first.CommandType != 9 {
		t.Fatalf("door event type %d %q: the exit button's opening was taken for a forced one", first.CommandType, first.CommandValue)
	}
	h.exec(t, "door closed")
	if evs := doorEvents(t, srv, 9, 10); len(evs) != 1 || evs[0].CommandType != 9 {
		t.Fatalf("closing events %d", len(evs))
	}
}

// firstDoorEvent waits for the next held-open or forced event.
func firstDoorEvent(t *testing.T, srv *testServer) *protocol.Message {
	t.Helper()
	deadline := time.After(waitFor)
	for {
		select {
		case m := <-srv.events:
			if m.CommandType == 9 || m.CommandType == 10 {
				return m
			}
		case <-deadline:
			t.Fatal("no door event")
			return nil
		}
	}
}

// levelPin is a GPIO line (hal/feedback's Pin) that remembers whether it
// was ever driven high: there is no local GPIO to drive.
type levelPin struct {
	mu   sync.Mutex
	high int
}

var _ feedback.Pin = (*levelPin)(nil)

func (p *levelPin) Out(l gpio.Level) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if l == gpio.High {
		p.high++
	}
	return nil
}

func (p *levelPin) Close() {}

func (p *levelPin) highs() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.high
}

func TestFeedbackOnGrantAndDeny(t *testing.T) {
	srv := newTestServer(t)
	db := openStore(t, store.Config{})
	h := newTermRig(t, sim.DevCard, sim.DevRelay)
	addPerson(t, db, "p1", 31337)
	pins := map[string]*levelPin{"buzzer": {}, "green": {}, "red": {}}
	outs := map[string]*feedback.Output{}
	for name, p := range pins {
		o, err := feedback.New(feedback.Config{Name: name}, p)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { o.Close() })
		outs[name] = o
	}
	parts := h.parts(db)
	parts.Buzzer, parts.Green, parts.Red = outs["buzzer"], outs["green"], outs["red"]
	hook, out := writeHook(t, 0)
	startAgent(t, agent.Config{Link: agent.LinkConfig{ServerAddress: srv.addr},
		Access: agent.AccessConfig{DoorPulse: 100 * time.Millisecond}, Feedback: agent.FeedbackConfig{Hook: hook}}, parts)
	srv.peer()
	h.exec(t, "swipe 31337")
	haltest.Eventually(t, "the grant hook", func() bool { b, _ := os.ReadFile(out); return string(b) == "grant\ncard\np1\n" })
	if pins["green"].highs() == 0 || pins["buzzer"].highs() == 0 || pins["red"].highs() != 0 {
		t.Fatalf("after a grant: green %d buzzer %d red %d times on", pins["green"].highs(), pins["buzzer"].highs(), pins["red"].highs())
	}
	h.exec(t, "swipe 1")
	haltest.Eventually(t, "the deny hook", func() bool { b, _ := os.ReadFile(out); return strings.HasSuffix(string(b), "deny\ncard\n\n") })
	if pins["red"].highs() == 0 || pins["green"].highs() != 1 {
		t.Fatalf("after a refusal: red %d, green %d times on", pins["red"].highs(), pins["green"].highs())
	}
}

func TestPINOnUSBKeypad(t *testing.T) {
	srv := newTestServer(t)
	db := openStore(t, store.Config{})
	addPersonKey(t, db, "p1", 31337, "2468")
	dev, err := sim.NewInputDevice(filepath.Join(t.TempDir(), "kbd"), sim.InputConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dev.Close() })
	kp, err := evdev.OpenKeypad(evdev.Config{Device: dev.Path(), Logger: testLogger(t, "evdev")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { kp.Close() })
	startAgent(t, agent.Config{Link: agent.LinkConfig{ServerAddress: srv.addr}, Upload: agent.UploadConfig{Window: 1},
		Access: agent.AccessConfig{RecordDenied: true}}, agent.Parts{Store: db, Keypad: kp})
	srv.peer()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := dev.Type(ctx, "2468#", 0); err != nil { // '#' is Shift+3 on a USB keyboard
		t.Fatal(err)
	}
	expectUpload(t, srv, "p1", 5)
	if err := dev.Type(ctx, "99*2468\n", 0); err != nil { // * clears, Enter ends
		t.Fatal(err)
	}
	expectUpload(t, srv, "p1", 5)
}

func TestPINLockoutEnds(t *testing.T) {
	srv := newTestServer(t)
	db := openStore(t, store.Config{})
	h := newTermRig(t, sim.DevKeypad)
	addPersonKey(t, db, "p1", 31337, "2468")
	a := startAgent(t, agent.Config{Link: agent.LinkConfig{ServerAddress: srv.addr}, Upload: agent.UploadConfig{Window: 1},
		Access: agent.AccessConfig{RecordDenied: true},
		PIN:    agent.PINConfig{LockoutAfter: 2, LockoutWindow: time.Hour, LockoutFor: 200 * time.Millisecond}}, h.parts(db))
	srv.peer()
	h.exec(t, "pin 1#")
	expectUpload(t, srv, "", 5)
	h.exec(t, "pin 2#")
	expectUpload(t, srv, "", 5)
	srv.event(8)
	haltest.Eventually(t, "the lockout's end", func() bool { return a.Status(context.Background()).PINLockedUntil.IsZero() })
	h.exec(t, "pin 2468#")
	expectUpload(t, srv, "p1", 5)
}

func TestFaultKeypadUnplugged(t *testing.T) {
	srv := newTestServer(t)
	db := openStore(t, store.Config{})
	h := newTermRig(t, sim.DevKeypad)
	addPersonKey(t, db, "p1", 31337, "2468")
	a := startAgent(t, agent.Config{Link: agent.LinkConfig{ServerAddress: srv.addr},
		Modules: agent.ModuleConfig{RetryMin: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond}}, h.parts(db))
	srv.peer()
	if st := a.Status(context.Background()).Modules["keypad"]; st.State != agent.ModuleOK {
		t.Fatalf("keypad %s at start", st.State)
	}
	h.exec(t, "unplug keypad")
	if ev := srv.event(2); !strings.HasPrefix(ev.CommandValue, "keypad") {
		t.Fatalf("module fault event %q, want the keypad's", ev.CommandValue)
	}
	if st := a.Status(context.Background()).Modules["keypad"]; st.State != agent.ModuleFault {
		t.Fatalf("keypad %s while unplugged", st.State)
	}
	h.exec(t, "replug keypad")
	if ev := srv.event(3); ev.CommandValue != "keypad" {
		t.Fatalf("module recovered event %q", ev.CommandValue)
	}
	h.exec(t, "pin 2468#")
	expectUpload(t, srv, "p1", 5)
	t.Logf("FAULTROW\t%s\t%s\t%s", "keypad unplugged and plugged back",
		"module fault event and status keypad fault; recovered event when back, PINs work again", "events 2, PIN after replug 1")
}

package agent_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"termagent/agent"
	"termagent/hal/haltest"
	"termagent/protocol"
	"termagent/store"
)

// commandRig is an agent without hardware connected to a test server.
type commandRig struct {
	srv  *testServer
	db   *store.DB
	a    *runningAgent
	peer *protocol.Peer
}

func newCommandRig(t *testing.T, cfg agent.Config) *commandRig {
	t.Helper()
	srv := newTestServer(t)
	db := openStore(t, store.Config{})
	cfg.Link.ServerAddress = srv.addr
	if cfg.Device.SoftwareVersion == "" {
		cfg.Device.SoftwareVersion = "test-1.0"
	}
	a := startAgent(t, cfg, agent.Parts{Store: db})
	return &commandRig{srv: srv, db: db, a: a, peer: srv.peer()}
}

func req(mod string) *protocol.Message { return protocol.NewRequest(mod) }

func TestGetDeviceInfo(t *testing.T) {
	r := newCommandRig(t, agent.Config{Device: agent.DeviceConfig{HardwareVersion: "V5.8.9", Address: "gate", CommunityCode: "C1"}})
	for _, m := range []*protocol.Message{req(protocol.ModGetDeviceInfo), req(protocol.ModSetDeviceInfo)} {
		resp, code, msg := call(t, r.peer, m)
		if code != 0 {
			t.Fatalf("%s: code %d %q", m.Mod, code, msg)
		}
		di := resp.DeviceInfo
		if di == nil {
			t.Fatalf("%s: no device_info", m.Mod)
		}
		if di.DeviceIP != "127.0.0.1" || di.ServerIP != "127.0.0.1" || di.ServerPort != r.srv.port() {
			t.Errorf("%s: device_ip %q server %s:%d; want 127.0.0.1 and %s", m.Mod, di.DeviceIP, di.ServerIP, di.ServerPort, r.srv.addr)
		}
		if di.UUID == "" || di.DevicePort != 1545 || di.Address != "gate" || di.CommunityCode != "C1" ||
			di.SoftwareVersion != "test-1.0" || di.HardwareVersion != "V5.8.9" {
			t.Errorf("%s: device_info %+v", m.Mod, di)
		}
	}
}

func TestSetDeviceInfo(t *testing.T) {
	r := newCommandRig(t, agent.Config{})
	before, _ := r.db.DeviceInfo(context.Background())

	bad := []struct {
		name string
		di   protocol.DeviceInfo
		want string
	}{
		{"port", protocol.DeviceInfo{ServerPort: 70000, Address: "x", Fields: protocol.FieldServerPort | protocol.FieldAddress}, "server_port"},
		{"ip", protocol.DeviceInfo{DeviceIP: "1.2.3.999", Fields: protocol.FieldDeviceIP}, "device_ip"},
		{"server ip", protocol.DeviceInfo{ServerIP: "not an ip", Fields: protocol.FieldServerIP}, "server_ip"},
		{"device port", protocol.DeviceInfo{DevicePort: 0, Fields: protocol.FieldDevicePort}, "device_port"},
		{"uuid", protocol.DeviceInfo{UUID: "", Fields: protocol.FieldUUID}, "uuid"},
		{"too long", protocol.DeviceInfo{Address: strings.Repeat("x", 5000), Fields: protocol.FieldAddress}, "address"},
	}
	for _, tc := range bad {
		m := req(protocol.ModSetDeviceInfo)
		di := tc.di
		m.DeviceInfo = &di
		_, code, msg := call(t, r.peer, m)
		if code != protocol.CodeError || !strings.Contains(msg, tc.want) {
			t.Errorf("%s: code %d %q; want -1 naming %s", tc.name, code, msg, tc.want)
		}
	}
	after, _ := r.db.DeviceInfo(context.Background())
	if after != before {
		t.Fatalf("a refused set_device_info changed the settings: %+v → %+v", before, after)
	}

	m := req(protocol.ModSetDeviceInfo)
	m.DeviceInfo = &protocol.DeviceInfo{UUID: "dev-42", Address: "门口考勤机器", CommunityCode: "1312123312", DevicePort: 1600,
		Fields: protocol.FieldUUID | protocol.FieldAddress | protocol.FieldCommunityCode | protocol.FieldDevicePort}
	if _, code, msg := call(t, r.peer, m); code != 0 {
		t.Fatalf("set_device_info: code %d %q", code, msg)
	}
	resp, _, _ := call(t, r.peer, req(protocol.ModGetDeviceInfo))
	di := resp.DeviceInfo
	if di.UUID != "dev-42" || di.Address != "门口考勤机器" || di.CommunityCode != "1312123312" || di.DevicePort != 1600 {
		t.Errorf("after set: %+v", di)
	}
	if di.ServerPort != r.srv.port() {
		t.Errorf("server changed though not asked: %+v", di)
	}
	// A record made now carries the new community code.
	uc := req(protocol.ModSendUserCommand)
	uc.CommandType = 1
	if _, code, msg := call(t, r.peer, uc); code != 0 {
		t.Fatalf("open door: %d %q", code, msg)
	}
	if up := r.srv.upload(); up.AccessInfo.CommunityCode != "1312123312" {
		t.Errorf("record community_code %q, want the new one", up.AccessInfo.CommunityCode)
	}
}

func TestSetDeviceInfoMovesServerAndFallsBack(t *testing.T) {
	srvA := newTestServer(t)
	srvB := newTestServer(t)
	db := openStore(t, store.Config{})
	cfg := agent.Config{Link: agent.LinkConfig{ServerAddress: srvA.addr, FallbackAfter: 300 * time.Millisecond}}
	startAgent(t, cfg, agent.Parts{Store: db})
	peerA := srvA.peer()

	move := func(p *protocol.Peer, port int) {
		m := req(protocol.ModSetDeviceInfo)
		m.DeviceInfo = &protocol.DeviceInfo{ServerIP: "127.0.0.1", ServerPort: port, Fields: protocol.FieldServerIP | protocol.FieldServerPort}
		if _, code, msg := call(t, p, m); code != 0 {
			t.Fatalf("move to %d: code %d %q", port, code, msg)
		}
	}
	// Reply, then move: the response arrived (above), then B gets the link.
	move(peerA, srvB.port())
	peerB := srvB.peer()
	resp, _, _ := call(t, peerB, req(protocol.ModGetDeviceInfo))
	if resp.DeviceInfo.ServerPort != srvB.port() {
		t.Fatalf("after the move the device reports server port %d, want %d", resp.DeviceInfo.ServerPort, srvB.port())
	}
	haltest.Eventually(t, "the move to be confirmed", func() bool {
		s, _ := db.DeviceInfo(context.Background())
		return s.PrevServerPort == 0 && s.ServerPort == srvB.port()
	})

	// Move to a server that does not exist: after FallbackAfter the
	// terminal goes back to B, the last server that worked.
	dead, err := (&netListenerFactory{}).closedPort()
	if err != nil {
		t.Fatal(err)
	}
	move(peerB, dead)
	back := srvB.peer()
	resp, _, _ = call(t, back, req(protocol.ModGetDeviceInfo))
	if resp.DeviceInfo.ServerPort != srvB.port() {
		t.Fatalf("after the fallback the device reports server port %d, want %d", resp.DeviceInfo.ServerPort, srvB.port())
	}
	s, _ := db.DeviceInfo(context.Background())
	if s.ServerPort != srvB.port() || s.PrevServerPort != 0 {
		t.Errorf("stored settings after fallback: %+v", s)
	}
}

func TestDownloadAndRemovePerson(t *testing.T) {
	r := newCommandRig(t, agent.Config{})
	ctx := context.Background()
	face := bytes.Repeat([]byte{0xFF, 0xD8, 1, 2}, 300)
	pi := &protocol.PersonInfo{
		PersonID: "3413123123", PersonName: "张飒", IDNumber: "1545123", CardNumber: "123123123", Role: 12,
		Face:     &protocol.Biometric{Width: 520, Height: 690, Format: 2, Length: len(face), Data: face},
		LeftCode: &protocol.Biometric{Length: 4, Data: []byte{1, 2, 3, 4}},
	}
	m := req(protocol.ModDownloadPerson)
	m.PersonInfo = pi
	if _, code, msg := call(t, r.peer, m); code != 0 {
		t.Fatalf("download_person: code %d %q", code, msg)
	}
	p, err := r.db.PersonByCard(ctx, "123123123")
	if err != nil || p.PersonID != "3413123123" || p.Name != "张飒" || p.Role != 12 {
		t.Fatalf("stored person %+v, %v", p, err)
	}
	got, err := r.db.Biometric(ctx, p.PersonID, store.Face)
	if err != nil || !bytes.Equal(got.Data, face) || got.Width != 520 {
		t.Fatalf("stored face: %v", err)
	}
	// A second download replaces the person.
	m = req(protocol.ModDownloadPerson)
	m.PersonInfo = &protocol.PersonInfo{PersonID: "3413123123", PersonName: "Zhang", CardNumber: "999"}
	if _, code, msg := call(t, r.peer, m); code != 0 {
		t.Fatalf("second download_person: code %d %q", code, msg)
	}
	if _, err := r.db.PersonByCard(ctx, "123123123"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("old card still found after replacement: %v", err)
	}
	if _, err := r.db.Biometric(ctx, p.PersonID, store.Face); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("old face kept after a replacement without face: %v", err)
	}

	bad := []struct {
		name string
		pi   *protocol.PersonInfo
		want string
	}{
		{"no person_info", nil, "person_info"},
		{"no person_id", &protocol.PersonInfo{PersonName: "x"}, "person_id"},
		{"length", &protocol.PersonInfo{PersonID: "p2", Face: &protocol.Biometric{Length: 123221, Data: make([]byte, 1200)}},
			"person_info.face.length is 123221 but data decodes to 1200 bytes"},
		{"code length", &protocol.PersonInfo{PersonID: "p2", RightCode: &protocol.Biometric{Length: 1, Data: []byte{1, 2}}},
			"person_info.right_code.length is 1 but data decodes to 2 bytes"},
		{"long name", &protocol.PersonInfo{PersonID: "p2", PersonName: strings.Repeat("名", 2000)}, "name"},
	}
	for _, tc := range bad {
		m := req(protocol.ModDownloadPerson)
		m.PersonInfo = tc.pi
		_, code, msg := call(t, r.peer, m)
		if code != protocol.CodeError || !strings.Contains(msg, tc.want) {
			t.Errorf("%s: code %d %q; want -1 containing %q", tc.name, code, msg, tc.want)
		}
	}
	if n, _ := r.db.CountPersons(ctx); n != 1 {
		t.Errorf("%d persons after refused downloads, want 1", n)
	}

	rm := req(protocol.ModRemovePerson)
	rm.PersonIDs = []string{"3413123123", "nobody"}
	if _, code, msg := call(t, r.peer, rm); code != 0 {
		t.Fatalf("remove_person: code %d %q", code, msg)
	}
	if n, _ := r.db.CountPersons(ctx); n != 0 {
		t.Errorf("%d persons after remove_person", n)
	}
	rm = req(protocol.ModRemovePerson)
	rm.PersonID = "nobody"
	if _, code, _ := call(t, r.peer, rm); code != 0 {
		t.Errorf("remove_person of an unknown id: code %d, want 0", code)
	}
	if _, code, _ := call(t, r.peer, req(protocol.ModRemovePerson)); code != protocol.CodeError {
		t.Errorf("remove_person without ids: code %d, want -1", code)
	}
}

// writeHook writes an executable script that appends each argument, one
// per line, to out.
func writeHook(t *testing.T, exit int) (hook, out string) {
	t.Helper()
	dir := t.TempDir()
	hook = filepath.Join(dir, "hook.sh")
	out = filepath.Join(dir, "out")
	script := "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\" >> " + out + "; done\necho hook-said-no >&2\nexit " + string(rune('0'+exit)) + "\n"
	if err := os.WriteFile(hook, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	return hook, out
}

func TestSendUserCommand(t *testing.T) {
	hook, out := writeHook(t, 0)
	failing, _ := writeHook(t, 3)
	msgHook, msgOut := writeHook(t, 0)
	r := newCommandRig(t, agent.Config{
		Commands: map[int]agent.Command{
			1: {Action: agent.ActionOpenDoor},
			2: {Action: agent.ActionMessage},
			5: {Action: agent.ActionHook, Hook: hook},
			6: {Action: agent.ActionHook, Hook: failing},
			7: {Action: agent.ActionRestart},
		},
		Hooks:  agent.Hooks{Message: msgHook},
		Device: agent.DeviceConfig{InOutType: 2, CommunityCode: "C9"},
	})
	cmd := func(mod string, typ int, value string) (int, string) {
		m := req(mod)
		m.CommandType, m.CommandValue = typ, value
		_, code, msg := call(t, r.peer, m)
		return code, msg
	}
	if code, msg := cmd(protocol.ModSendUserCommand, 1, ""); code != 0 {
		t.Fatalf("open door: %d %q", code, msg)
	}
	up := r.srv.upload()
	ai := up.AccessInfo
	if ai.OpenDoorType != 4 || ai.InOutType != 2 || ai.CommunityCode != "C9" || len(ai.Time) != 14 {
		t.Errorf("remote open record %+v", ai)
	}
	if tm, err := protocol.ParseTime(ai.Time, nil); err != nil || time.Since(tm) > time.Hour || time.Since(tm) < -time.Hour {
		t.Errorf("record time %q is not the local time now (%v)", ai.Time, err)
	}

	if code, msg := cmd(protocol.ModSendUserCommand, 2, "hello 你好"); code != 0 {
		t.Fatalf("message: %d %q", code, msg)
	}
	if b, _ := os.ReadFile(msgOut); string(b) != "hello 你好\n" {
		t.Errorf("message hook got %q", b)
	}
	evil := `$(touch /tmp/pwned); rm -rf / "quoted" 'x'`
	if code, msg := cmd(protocol.ModSendUserCommand, 5, evil); code != 0 {
		t.Fatalf("hook: %d %q", code, msg)
	}
	if b, _ := os.ReadFile(out); string(b) != evil+"\n" {
		t.Errorf("hook argument %q, want the value verbatim as one argument", b)
	}
	if code, msg := cmd(protocol.ModSendUserCommand, 6, "x"); code != protocol.CodeError || !strings.Contains(msg, "hook-said-no") {
		t.Errorf("failing hook: %d %q; want -1 with its output", code, msg)
	}
	if code, msg := cmd(protocol.ModSendUserCommand, 99, "x"); code != protocol.CodeError || !strings.Contains(msg, "99") {
		t.Errorf("unmapped type: %d %q; want -1", code, msg)
	}
	// A send_device_command from a server is handled the same way.
	if code, msg := cmd(protocol.ModSendDeviceCommand, 5, "from-server"); code != 0 {
		t.Fatalf("send_device_command: %d %q", code, msg)
	}
	if code, _ := cmd(protocol.ModSendDeviceCommand, 42, ""); code != protocol.CodeError {
		t.Errorf("unmapped send_device_command: %d, want -1", code)
	}
	// Restart: the response comes first, then Run returns ErrRestart.
	if code, msg := cmd(protocol.ModSendUserCommand, 7, ""); code != 0 {
		t.Fatalf("restart: %d %q", code, msg)
	}
	select {
	case err := <-r.a.done:
		if !errors.Is(err, agent.ErrRestart) {
			t.Errorf("Run returned %v, want ErrRestart", err)
		}
		close(r.a.done)
	case <-time.After(waitFor):
		t.Fatal("Run did not return after a restart command")
	}
}

func TestSetDeviceTime(t *testing.T) {
	hook, out := writeHook(t, 0)
	shanghai := time.FixedZone("CST", 8*3600)
	r := newCommandRig(t, agent.Config{Hooks: agent.Hooks{SetTime: hook}, Device: agent.DeviceConfig{Location: shanghai}})
	m := req(protocol.ModSetDeviceTime)
	m.Time = "20190823123435"
	if _, code, msg := call(t, r.peer, m); code != 0 {
		t.Fatalf("set_device_time: %d %q", code, msg)
	}
	m = req(protocol.ModSetDeviceTime)
	m.Time = "2019-8-23 4:34:35Z" // UTC → 12:34:35 in Shanghai
	if _, code, msg := call(t, r.peer, m); code != 0 {
		t.Fatalf("set_device_time with Z: %d %q", code, msg)
	}
	if b, _ := os.ReadFile(out); string(b) != "2019-08-23 12:34:35\n2019-08-23 12:34:35\n" {
		t.Errorf("time hook got %q", b)
	}
	m = req(protocol.ModSetDeviceTime)
	m.Time = "yesterday"
	if _, code, _ := call(t, r.peer, m); code != protocol.CodeError {
		t.Errorf("bad time: code %d, want -1", code)
	}

	noHook := newCommandRig(t, agent.Config{})
	m = req(protocol.ModSetDeviceTime)
	m.Time = "20190823123435"
	if _, code, msg := call(t, noHook.peer, m); code != protocol.CodeError || !strings.Contains(msg, "hook") {
		t.Errorf("no hook: code %d %q, want -1", code, msg)
	}
}

func TestGetDeviceStatusAndUnknownMod(t *testing.T) {
	r := newCommandRig(t, agent.Config{})
	resp, code, msg := call(t, r.peer, req(protocol.ModGetDeviceStatus))
	if code != 0 || resp.DeviceStatus == nil {
		t.Fatalf("get_device_status: %d %q", code, msg)
	}
	ds := resp.DeviceStatus
	if ds.Link != "up" || ds.SoftwareVersion != "test-1.0" || ds.Door != "none" || len(ds.Modules) != 4 {
		t.Errorf("device_status %+v", ds)
	}
	for _, m := range ds.Modules {
		if m.State != "absent" {
			t.Errorf("module %s is %s, want absent", m.Name, m.State)
		}
	}
	_, code, msg = call(t, r.peer, req("format_disk"))
	if code != protocol.CodeError || !strings.Contains(msg, "format_disk") {
		t.Errorf("unknown mod: %d %q; want -1 naming it", code, msg)
	}
	st := r.a.Status(context.Background())
	if st.Link != agent.LinkUp || st.Server != r.srv.addr {
		t.Errorf("Status: link %s server %q", st.Link, st.Server)
	}
}

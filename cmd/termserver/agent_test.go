package main

// Tests of termserver against the real termagent program: built once per
// test binary, run as a process on loopback with its own database, no
// hardware (every driver "none"; a remote open still makes a record).

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"termagent/cmd/termserver/internal/faults"
	"termagent/cmd/termserver/internal/recordstore"
	"termagent/cmd/termserver/internal/server"
	"termagent/cmd/termserver/internal/servertest"
	"termagent/protocol"
)

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// termagentBinary builds cmd/termagent once and returns its path.
func termagentBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "termserver-test-bin-")
		if buildErr != nil {
			return
		}
		gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
		cmd := exec.Command(gobin, "build", "-o", filepath.Join(buildDir, "termagent"), "termagent/cmd/termagent")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("build termagent: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(buildDir, "termagent")
}

// agentOpts are the termagent settings a test changes.
type agentOpts struct {
	window      int           // upload.window; 0: 8
	transport   string        // server.transport; "": tcp
	callTimeout time.Duration // server.call_timeout; 0: 30s
}

// startAgent runs termagent against addr until the test ends (SIGTERM,
// which must exit 0). Its log goes to the test log at the end.
func startAgent(t *testing.T, addr string, o agentOpts) {
	t.Helper()
	bin := termagentBinary(t)
	dir := t.TempDir()
	if o.window == 0 {
		o.window = 8
	}
	if o.transport == "" {
		o.transport = "tcp"
	}
	if o.callTimeout == 0 {
		o.callTimeout = 30 * time.Second
	}
	cfg := fmt.Sprintf(`server:
  address: %q
  transport: %s
  backoff_min: 50ms
  backoff_max: 300ms
  call_timeout: %s
store:
  path: %q
device:
  address: "test bench"
upload:
  window: %d
  retry_min: 50ms
  retry_max: 300ms
control:
  socket: %q
log:
  level: debug
  format: console
`, addr, o.transport, o.callTimeout, filepath.Join(dir, "agent.db"), o.window, filepath.Join(dir, "ctl.sock"))
	cfgPath := filepath.Join(dir, "termagent.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	// One writer for both pipes: os/exec then has one goroutine write at
	// a time, and the log is read after Wait.
	var logBuf bytes.Buffer
	cmd := exec.Command(bin, "run", "-config", cfgPath)
	cmd.Stdout, cmd.Stderr = &logBuf, &logBuf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("termagent exited with %v after SIGTERM", err)
			}
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-done
			t.Errorf("termagent did not stop within 30 s of SIGTERM")
		}
		if t.Failed() {
			t.Logf("termagent log:\n%s", logBuf.String())
		}
	})
}

// awaitTerminal waits until exactly one identified terminal is connected
// and returns its uuid.
func awaitTerminal(t *testing.T, s *servertest.Server) string {
	t.Helper()
	var uuid string
	servertest.WaitFor(t, "termagent to connect and identify itself", func() bool {
		ts := s.Terminals()
		if len(ts) != 1 || ts[0].UUID == "" {
			return false
		}
		uuid = ts[0].UUID
		return true
	})
	return uuid
}

// runCLI runs a termserver command against s's admin endpoint.
func runCLI(t *testing.T, s *servertest.Server, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), cliArgs(s, args...), strings.NewReader(""), &out, &errOut)
	return out.String() + errOut.String(), err
}

// remoteOpen asks the terminal to open the door: the agent records it.
func remoteOpen(t *testing.T, s *servertest.Server, uuid string) {
	t.Helper()
	req := protocol.NewRequest(protocol.ModSendUserCommand)
	req.CommandType = 1
	res, err := s.Call(context.Background(), uuid, req)
	if err != nil || len(res) != 1 || !res[0].OK() {
		t.Fatalf("send_user_command 1: %+v, %v", res, err)
	}
}

// outboxDepth asks the terminal (get_device_status) how many records it
// still holds.
func outboxDepth(t *testing.T, s *servertest.Server, uuid string) int {
	t.Helper()
	res, err := s.Call(context.Background(), uuid, protocol.NewRequest(protocol.ModGetDeviceStatus))
	if err != nil || len(res) != 1 || !res[0].OK() || res[0].Response.DeviceStatus == nil {
		return -1 // not answered now (e.g. mid-reconnect)
	}
	return res[0].Response.DeviceStatus.OutboxDepth
}

func TestAgent_commandsThroughTheCLI(t *testing.T) {
	s := servertest.Start(t, server.Config{})
	startAgent(t, s.Addr("tcp"), agentOpts{})
	uuid := awaitTerminal(t, s)

	out, err := runCLI(t, s, "list")
	if err != nil || !strings.Contains(out, uuid) || !strings.Contains(out, "1 terminal(s) connected") {
		t.Fatalf("list: %v\n%s", err, out)
	}
	out, err = runCLI(t, s, "info", uuid[:8])
	if err != nil || !strings.Contains(out, "uuid             "+uuid) || !strings.Contains(out, "test bench") {
		t.Fatalf("info by uuid prefix: %v\n%s", err, out)
	}
	if out, err = runCLI(t, s, "set", uuid, "address=Lobby door", "community_code=C42"); err != nil {
		t.Fatalf("set: %v\n%s", err, out)
	}
	out, err = runCLI(t, s, "info", uuid)
	if err != nil || !strings.Contains(out, "Lobby door") || !strings.Contains(out, "C42") {
		t.Fatalf("info after set: %v\n%s", err, out)
	}
	// An invalid value is refused by the terminal and the CLI says so.
	if out, err = runCLI(t, s, "set", uuid, "device_ip=not-an-ip"); err == nil || !strings.Contains(out, "FAILED") {
		t.Fatalf("set device_ip=not-an-ip: %v\n%s; want a failure", err, out)
	}
	if out, err = runCLI(t, s, "set", uuid, "server_port=70000"); err == nil {
		t.Fatalf("set server_port=70000 accepted by the CLI:\n%s", out)
	}

	// Remote open through the CLI makes a record that comes back.
	if out, err = runCLI(t, s, "command", "-to", uuid, "1"); err != nil || !strings.Contains(out, "ok") {
		t.Fatalf("command 1: %v\n%s", err, out)
	}
	servertest.WaitFor(t, "the remote-open record", func() bool { return servertest.Count(t, s) == 1 })
	recs, err := s.Records().List(context.Background(), recordstore.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if recs[0].Terminal != uuid || recs[0].OpenDoorType != 4 || recs[0].CommunityCode != "C42" {
		t.Fatalf("record %+v; want terminal %s, open_door_type 4 (remote), community C42", recs[0], uuid)
	}
	// An unmapped command type is answered -1.
	if out, err = runCLI(t, s, "command", "99", "x"); err == nil || !strings.Contains(out, "FAILED") {
		t.Fatalf("command 99: %v\n%s; want the terminal's refusal", err, out)
	}

	out, err = runCLI(t, s, "records", "-terminal", uuid)
	if err != nil || !strings.Contains(out, "remote") || !strings.Contains(out, "1 record(s)") {
		t.Fatalf("records: %v\n%s", err, out)
	}
	csvPath := filepath.Join(t.TempDir(), "records.csv")
	if out, err = runCLI(t, s, "export", "-o", csvPath); err != nil {
		t.Fatalf("export: %v\n%s", err, out)
	}
	f, err := os.Open(csvPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil || len(rows) != 2 || rows[1][2] != uuid || rows[1][9] != "4" {
		t.Fatalf("export rows %q, %v", rows, err)
	}
	if st, _ := f.Stat(); st.Mode().Perm() != 0o600 {
		t.Errorf("export file mode %v; want 0600", st.Mode().Perm())
	}

	out, err = runCLI(t, s, "status", uuid)
	if err != nil || !strings.Contains(out, "link up") {
		t.Fatalf("status: %v\n%s", err, out)
	}
	if _, err = runCLI(t, s, "info", "no-such-terminal"); err == nil || !strings.Contains(err.Error(), "no such terminal") {
		t.Fatalf("info of an unknown terminal: %v", err)
	}
}

func TestAgent_pushAndRemovePersons(t *testing.T) {
	s := servertest.Start(t, server.Config{})
	startAgent(t, s.Addr("tcp"), agentOpts{})
	uuid := awaitTerminal(t, s)
	dir := t.TempDir()
	d := &demo{dir: dir}
	if err := d.writePersons(); err != nil {
		t.Fatal(err)
	}
	out, err := runCLI(t, s, "push", "-to", uuid, filepath.Join(dir, "persons", "persons.csv"))
	if err != nil || !strings.Contains(out, "pushed 3 person(s)") || !strings.Contains(out, "3/3  ok 3  failed 0") {
		t.Fatalf("push: %v\n%s", err, out)
	}
	persons := func() int {
		res, err := s.Call(context.Background(), uuid, protocol.NewRequest(protocol.ModGetDeviceStatus))
		if err != nil || !res[0].OK() {
			t.Fatalf("get_device_status: %+v %v", res, err)
		}
		return res[0].Response.DeviceStatus.PersonsEnrolled
	}
	if n := persons(); n != 3 {
		t.Fatalf("terminal holds %d persons after push; want 3", n)
	}
	if out, err = runCLI(t, s, "remove", "-to", uuid, "1001", "1003"); err != nil {
		t.Fatalf("remove: %v\n%s", err, out)
	}
	if n := persons(); n != 1 {
		t.Fatalf("terminal holds %d persons after removing two; want 1", n)
	}
	// A broken persons file is refused before anything is sent.
	bad := filepath.Join(dir, "bad.csv")
	os.WriteFile(bad, []byte("person_id,face\n2001,missing.jpg\n"), 0o600)
	if _, err := runCLI(t, s, "push", bad); err == nil || !strings.Contains(err.Error(), "missing.jpg") {
		t.Fatalf("push of a CSV naming a missing photo: %v", err)
	}
	if n := persons(); n != 1 {
		t.Fatalf("terminal holds %d persons after a refused push; want 1", n)
	}
}

func TestAgent_duplicateDroppedWhenAckIsLate(t *testing.T) {
	// The server stores the record but answers after the terminal gave
	// up waiting: the terminal resends it with the same session_id, and
	// the server drops the copy (answering 0 once the delay is lifted).
	s := servertest.Start(t, server.Config{})
	startAgent(t, s.Addr("tcp"), agentOpts{callTimeout: 300 * time.Millisecond})
	uuid := awaitTerminal(t, s)
	if err := s.SetFaults(faults.Config{Delay: 1500 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	remoteOpen(t, s, uuid)
	servertest.WaitFor(t, "a resent copy of the record", func() bool { return s.Stats().Duplicates >= 1 })
	if err := s.SetFaults(faults.Config{}); err != nil {
		t.Fatal(err)
	}
	servertest.WaitFor(t, "the terminal's outbox to empty", func() bool { return outboxDepth(t, s, uuid) == 0 })
	if n := servertest.Count(t, s); n != 1 {
		t.Fatalf("server holds %d records; want exactly 1 (copies dropped)", n)
	}
}

func TestAgent_refusedUploadsAreRetried(t *testing.T) {
	s := servertest.Start(t, server.Config{})
	startAgent(t, s.Addr("tcp"), agentOpts{})
	uuid := awaitTerminal(t, s)
	if err := s.SetFaults(faults.Config{FailUploads: 1}); err != nil {
		t.Fatal(err)
	}
	remoteOpen(t, s, uuid)
	remoteOpen(t, s, uuid)
	servertest.WaitFor(t, "each record refused at least twice", func() bool { return s.Stats().Refused >= 4 })
	if n := servertest.Count(t, s); n != 0 {
		t.Fatalf("%d refused records stored", n)
	}
	if d := outboxDepth(t, s, uuid); d != 2 {
		t.Fatalf("terminal outbox %d; want the 2 refused records kept", d)
	}
	if err := s.SetFaults(faults.Config{}); err != nil {
		t.Fatal(err)
	}
	servertest.WaitFor(t, "the terminal's outbox to empty", func() bool { return outboxDepth(t, s, uuid) == 0 })
	if n, st := servertest.Count(t, s), s.Stats(); n != 2 || st.Duplicates != 0 {
		t.Fatalf("records %d, stats %+v; want 2 records, no duplicate", n, st)
	}
}

func TestAgent_dropEveryLosesNothing(t *testing.T) {
	// With upload window 1 the terminal sends one record at a time: on
	// each connection the second request is stored, not answered, and the
	// connection dropped; the terminal reconnects and resends it.
	s := servertest.Start(t, server.Config{})
	startAgent(t, s.Addr("tcp"), agentOpts{window: 1})
	uuid := awaitTerminal(t, s)
	// Queue three records while uploads are refused, then let them
	// through a server that drops every second request.
	if err := s.SetFaults(faults.Config{FailUploads: 1}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		remoteOpen(t, s, uuid)
	}
	if err := s.SetFaults(faults.Config{DropEvery: 2}); err != nil {
		t.Fatal(err)
	}
	servertest.WaitFor(t, "three records at the server", func() bool { return servertest.Count(t, s) == 3 })
	servertest.WaitFor(t, "the dropped copies resent", func() bool { return s.Stats().Duplicates >= 2 })
	if err := s.SetFaults(faults.Config{}); err != nil {
		t.Fatal(err)
	}
	servertest.WaitFor(t, "the terminal's outbox to empty", func() bool { return outboxDepth(t, s, uuid) == 0 })
	if n, st := servertest.Count(t, s), s.Stats(); n != 3 || st.Drops < 2 {
		t.Fatalf("records %d, stats %+v; want 3 records and at least 2 drops", n, st)
	}
}

func TestAgent_networkCutOverWebSocket(t *testing.T) {
	s := servertest.Start(t, server.Config{})
	startAgent(t, s.Addr("ws"), agentOpts{transport: "ws"})
	uuid := awaitTerminal(t, s)
	if ts := s.Terminals(); ts[0].Transport != "ws" {
		t.Fatalf("terminal on %q; want ws", ts[0].Transport)
	}
	if out, err := runCLI(t, s, "faults", "-refuse=true"); err != nil || !strings.Contains(out, "refuse=true") {
		t.Fatalf("faults -refuse=true: %v\n%s", err, out)
	}
	servertest.WaitFor(t, "the terminal to be cut off", func() bool { return len(s.Terminals()) == 0 })
	req := protocol.NewRequest(protocol.ModSendUserCommand)
	req.CommandType = 1
	if _, err := s.Call(context.Background(), uuid, req); !errors.Is(err, server.ErrNoTerminal) {
		t.Fatalf("command during the cut: %v; want server.ErrNoTerminal", err)
	}
	if out, err := runCLI(t, s, "faults", "-refuse=false"); err != nil {
		t.Fatalf("faults -refuse=false: %v\n%s", err, out)
	}
	if again := awaitTerminal(t, s); again != uuid {
		t.Fatalf("terminal came back as %s; want the same uuid %s", again, uuid)
	}
	remoteOpen(t, s, uuid)
	servertest.WaitFor(t, "the record after the cut", func() bool { return servertest.Count(t, s) == 1 })
}

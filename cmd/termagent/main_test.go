package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"termagent/hal/haltest"
	"termagent/protocol"
)

// testVersion is stamped into the test binary, as the Makefile stamps a release.
const testVersion = "test-1.2.3"

var (
	binOnce sync.Once
	binDir  string
	binPath string
	binErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// buildBinary builds termagent once per test run with go build, stamping
// testVersion the way the Makefile stamps a release.
func buildBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the daemon binary")
	}
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "termagent-bin-")
		if binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "termagent")
		cmd := exec.Command("go", "build", "-ldflags", "-X main.version="+testVersion, "-o", binPath, ".")
		out, err := cmd.CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// runCLI runs the binary to completion and returns its exit status and output.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	bin := buildBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		code = exit.ExitCode()
	default:
		t.Fatalf("run %v: %v", args, err)
	}
	return code, o.String(), e.String()
}

func TestVersionAndHelp(t *testing.T) {
	code, out, _ := runCLI(t, "version")
	if code != 0 || out != "termagent "+testVersion+"\n" {
		t.Errorf("version: exit %d, %q", code, out)
	}
	code, out, _ = runCLI(t, "-h")
	if code != 0 || !strings.Contains(out, "termagent run [-config FILE]") || !strings.Contains(out, "check-config") {
		t.Errorf("-h: exit %d\n%s", code, out)
	}
	code, out, _ = runCLI(t, "run", "-h")
	if code != 0 || !strings.Contains(out, "Usage: termagent run") || !strings.Contains(out, "-config file") {
		t.Errorf("run -h: exit %d\n%s", code, out)
	}
	code, _, errOut := runCLI(t, "frobnicate")
	if code != exitUsage || !strings.Contains(errOut, `unknown command "frobnicate"`) {
		t.Errorf("unknown command: exit %d\n%s", code, errOut)
	}
	code, _, errOut = runCLI(t, "run", "-config")
	if code != exitUsage || !strings.Contains(errOut, "flag needs an argument") {
		t.Errorf("flag without value: exit %d\n%s", code, errOut)
	}
}

func TestCheckConfigCLI(t *testing.T) {
	code, out, errOut := runCLI(t, "check-config", "-config", "termagent.example.yaml")
	if code != 0 || out != "termagent.example.yaml: ok\n" {
		// A user who cannot create /var/lib/termagent and /run/termagent
		// (not root) is told so; the file itself must be valid.
		for _, l := range strings.Split(strings.TrimSpace(errOut), "\n") {
			if !strings.Contains(l, "store.path") && !strings.Contains(l, "control.socket") || os.Getuid() == 0 {
				t.Errorf("example: exit %d, %q %q", code, out, errOut)
			}
		}
	}
	bad := writeConfig(t, "server:\n  address: 127.0.0.1:9\nhal:\n  card:\n    baud: fast\n")
	code, _, errOut = runCLI(t, "check-config", "-config", bad)
	if want := bad + `: config line 5: hal.card.baud: "fast" is not a number` + "\n"; code != exitUsage || errOut != want {
		t.Errorf("bad value: exit %d\n got %q\nwant %q", code, errOut, want)
	}
	unknown := writeConfig(t, "server:\n  address: 127.0.0.1:9\n  adress: x\n")
	code, _, errOut = runCLI(t, "check-config", "-config", unknown)
	if code != exitUsage || !strings.Contains(errOut, "config line 3: server.adress: unknown key") {
		t.Errorf("unknown key: exit %d\n%s", code, errOut)
	}
	// Valid, but the hook is missing on this machine: a warning, exit 0.
	missing := writeConfig(t, "server:\n  address: 127.0.0.1:9\nhooks:\n  message: /nonexistent/show\n")
	code, out, errOut = runCLI(t, "check-config", "-config", missing)
	if code != 0 || !strings.HasSuffix(out, ": ok\n") ||
		!strings.Contains(errOut, "warning: hooks.message: stat /nonexistent/show: no such file or directory") {
		t.Errorf("missing hook: exit %d, %q %q", code, out, errOut)
	}
	code, _, errOut = runCLI(t, "check-config", "-config", filepath.Join(t.TempDir(), "absent.yaml"))
	if code != exitUsage || !strings.Contains(errOut, "no such file") {
		t.Errorf("missing file: exit %d\n%s", code, errOut)
	}
	// Every problem at once, each with its line: what run would refuse on
	// this machine too (a database and a socket that cannot be created
	// here, two drivers on one port), not only what the file says.
	notDir := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(notDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	several := writeConfig(t, "server:\n  address: 127.0.0.1:9\n"+
		"store:\n  path: "+notDir+"/termagent.db\n"+
		"device:\n  in_out_type: 3\n"+
		"hal:\n  card: {driver: rdm6300, port: /dev/ttyS1}\n  fingerprint: {driver: r30x, port: /dev/ttyS1}\n"+
		"control:\n  socket: "+notDir+"/sub/termagent.sock\n")
	code, out, errOut = runCLI(t, "check-config", "-config", several)
	lines := strings.Split(strings.TrimSpace(errOut), "\n")
	for i, want := range []string{
		"config line 6: device.in_out_type: 3 is not 1 (in) or 2 (out)",
		`config line 9: hal.fingerprint.port: "/dev/ttyS1" is also hal.card.port`,
		"config line 4: store.path: ",
		"config line 11: control.socket: ",
	} {
		if i >= len(lines) || !strings.HasPrefix(lines[i], several+": "+want) {
			t.Errorf("several problems: line %d: want %q\n%s", i+1, want, errOut)
		}
	}
	if code != exitUsage || out != "" || len(lines) != 4 {
		t.Errorf("several problems: exit %d, stdout %q, %d lines; want 2, nothing, 4 lines:\n%s", code, out, len(lines), errOut)
	}
	machine := writeConfig(t, "server:\n  address: 127.0.0.1:9\n"+
		"store:\n  path: "+notDir+"/termagent.db\n"+
		"control:\n  socket: "+notDir+"/sub/termagent.sock\n")
	code, out, errOut = runCLI(t, "check-config", "-config", machine)
	lines = strings.Split(strings.TrimSpace(errOut), "\n")
	if code != exitUsage || out != "" || len(lines) != 2 ||
		!strings.HasPrefix(lines[0], machine+": config line 4: store.path: ") || !strings.Contains(lines[0], notDir+" is not a directory") ||
		!strings.HasPrefix(lines[1], machine+": config line 6: control.socket: ") {
		t.Errorf("database and socket that cannot be created: exit %d, stdout %q\n%s", code, out, errOut)
	}
	// run refuses the same bad file before touching anything.
	code, _, errOut = runCLI(t, "run", "-config", bad)
	if code != exitUsage || !strings.Contains(errOut, `hal.card.baud: "fast" is not a number`) {
		t.Errorf("run with bad config: exit %d\n%s", code, errOut)
	}
}

// daemonProc is a running `termagent run`.
type daemonProc struct {
	t      *testing.T
	cmd    *exec.Cmd
	log    *haltest.Buffer
	done   chan struct{}
	err    error // Wait's result, after done
	killed bool
}

// startDaemon starts `termagent run -config cfg` with env added.
func startDaemon(t *testing.T, cfg string, env ...string) *daemonProc {
	t.Helper()
	bin := buildBinary(t)
	d := &daemonProc{t: t, log: &haltest.Buffer{}, done: make(chan struct{})}
	d.cmd = exec.Command(bin, "run", "-config", cfg)
	d.cmd.Env = append(os.Environ(), env...)
	d.cmd.Stderr = d.log
	d.cmd.Stdout = d.log
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		d.err = d.cmd.Wait()
		close(d.done)
	}()
	t.Cleanup(func() {
		select {
		case <-d.done:
		default:
			d.cmd.Process.Kill()
			<-d.done
		}
		if t.Failed() {
			t.Logf("daemon log:\n%s", d.log.String())
		}
	})
	return d
}

// signal sends sig and waits (up to 30 s, a hang catcher) for the exit. It
// returns the exit status and how long the exit took.
func (d *daemonProc) stop(sig syscall.Signal) (int, time.Duration) {
	d.t.Helper()
	start := time.Now()
	if err := d.cmd.Process.Signal(sig); err != nil {
		d.t.Fatal(err)
	}
	select {
	case <-d.done:
	case <-time.After(30 * time.Second):
		d.t.Fatalf("daemon still running 30s after %v", sig)
	}
	took := time.Since(start)
	var exit *exec.ExitError
	switch {
	case d.err == nil:
		return 0, took
	case errors.As(d.err, &exit):
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return -int(ws.Signal()), took
		}
		return exit.ExitCode(), took
	}
	d.t.Fatal(d.err)
	return 0, took
}

// exited reports whether the daemon has exited.
func (d *daemonProc) exited() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// testServer is a management server on loopback: it accepts terminals,
// records every upload_access_info and answers it with ackCode.
type testServer struct {
	t       *testing.T
	ln      *protocol.Listener
	addr    string
	uploads chan *protocol.Message
	events  chan *protocol.Message
	peers   chan *protocol.Peer

	mu      sync.Mutex
	ackCode int
	delay   time.Duration
}

func startServer(t *testing.T, addr string) *testServer {
	t.Helper()
	return startServerConfig(t, protocol.ListenConfig{Address: addr})
}

func startServerConfig(t *testing.T, lc protocol.ListenConfig) *testServer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ln, err := protocol.Listen(ctx, lc)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	s := &testServer{
		t: t, ln: ln, addr: ln.Addr().String(),
		uploads: make(chan *protocol.Message, 100000),
		events:  make(chan *protocol.Message, 1000),
		peers:   make(chan *protocol.Peer, 16),
	}
	mux := protocol.NewMux()
	mux.HandleFunc(protocol.ModUploadAccessInfo, func(ctx context.Context, req *protocol.Message) (*protocol.Message, error) {
		s.mu.Lock()
		code, delay := s.ackCode, s.delay
		s.mu.Unlock()
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		s.uploads <- req
		return req.Reply(code, ""), nil
	})
	mux.HandleFunc(protocol.ModSendDeviceCommand, func(ctx context.Context, req *protocol.Message) (*protocol.Message, error) {
		select {
		case s.events <- req:
		default:
		}
		return req.Reply(protocol.CodeOK, ""), nil
	})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			p := protocol.NewPeer(conn, protocol.PeerConfig{Handler: mux})
			wg.Go(func() { p.Run(ctx) })
			s.peers <- p
		}
	})
	t.Cleanup(func() {
		cancel()
		ln.Close()
		wg.Wait()
	})
	return s
}

// nextPeer waits for a terminal to connect.
func (s *testServer) nextPeer() *protocol.Peer {
	s.t.Helper()
	select {
	case p := <-s.peers:
		return p
	case <-time.After(30 * time.Second):
		s.t.Fatal("no terminal connected within 30s")
	}
	return nil
}

// nextUpload waits for an upload_access_info.
func (s *testServer) nextUpload() *protocol.Message {
	s.t.Helper()
	select {
	case m := <-s.uploads:
		return m
	case <-time.After(30 * time.Second):
		s.t.Fatal("no upload_access_info within 30s")
	}
	return nil
}

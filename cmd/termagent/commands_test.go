package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"termagent/hal/sim"
	"termagent/protocol"
)

// The commands table of the file reaches the agent: a mapped open_door
// opens the door and is recorded as a remote open, a hook type runs the
// integrator's program with command_value as its one argument (no shell),
// and an unmapped type is refused with -1.
func TestDaemonUserCommands(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "hook.out")
	hook := filepath.Join(dir, "hook")
	script := fmt.Sprintf("#!/bin/sh\nprintf '%%s|%%s' \"$#\" \"$1\" > %s\n", out)
	if err := os.WriteFile(hook, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, "127.0.0.1:0")
	r := newRig(t, srv.addr, fmt.Sprintf("commands:\n  5:\n    action: open_door\n  9:\n    action: hook\n    hook: %s\n", hook))
	r.start()
	peer := srv.nextPeer()
	call := func(typ int, value string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		req := protocol.NewRequest(protocol.ModSendUserCommand)
		req.CommandType, req.CommandValue = typ, value
		_, err := peer.Call(ctx, req)
		return err
	}

	if err := call(5, ""); err != nil {
		t.Fatalf("open_door command: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := r.relay.Wait(ctx, func(s sim.RelayState) bool { return s.On }); err != nil {
		t.Fatalf("door not opened by the command: %v", err)
	}
	if ai := srv.nextUpload().AccessInfo; ai == nil || ai.OpenDoorType != 4 {
		t.Errorf("remote open recorded as %+v, want open_door_type 4", ai)
	}

	value := `x"; touch /tmp/pwned; echo "$HOME`
	if err := call(9, value); err != nil {
		t.Fatalf("hook command: %v", err)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatalf("hook did not run: %v", err)
	}
	if want := "1|" + value; string(got) != want {
		t.Errorf("hook got %q, want %q (one argument, untouched)", got, want)
	}

	// Type 1 is mapped by default but not in this file's table: the table
	// replaces the defaults.
	for _, typ := range []int{1, 77} {
		var remote *protocol.RemoteError
		if err := call(typ, ""); !errors.As(err, &remote) || remote.Code != protocol.CodeError {
			t.Errorf("unmapped command_type %d: %v, want code -1", typ, err)
		}
	}
}

// A restart ordered by the server (type 3 in the default table) is
// answered, then the daemon exits with status 75 for its supervisor to
// start it again.
func TestDaemonRestartCommand(t *testing.T) {
	srv := startServer(t, "127.0.0.1:0")
	r := newRig(t, srv.addr, "")
	d := r.start()
	peer := srv.nextPeer()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req := protocol.NewRequest(protocol.ModSendUserCommand)
	req.CommandType = 3
	if _, err := peer.Call(ctx, req); err != nil {
		t.Fatalf("restart command: %v", err)
	}
	select {
	case <-d.done:
	case <-time.After(30 * time.Second):
		t.Fatal("daemon still running 30s after a restart command")
	}
	var exit *exec.ExitError
	if !errors.As(d.err, &exit) || exit.ExitCode() != exitRestart {
		t.Errorf("exit after a restart command: %v, want status %d", d.err, exitRestart)
	}
	r.expectNotify("STOPPING=1", d)
}

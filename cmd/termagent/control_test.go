package main

import (
	"bufio"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

type fakeStatus struct {
	Link    string `json:"link"`
	Persons int    `json:"persons"`
}

// startControl serves a control socket in a temporary directory until the
// test ends.
func startControl(t *testing.T, status func(context.Context) (any, error)) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "run", "ctl.sock")
	s, err := listenControl(path, status, zerolog.New(zerolog.NewTestWriter(t)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return path
}

func TestControlStatus(t *testing.T) {
	path := startControl(t, func(context.Context) (any, error) {
		return fakeStatus{Link: "up", Persons: 42}, nil
	})
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("socket mode %v, want 0600", perm)
	}
	if fi, err := os.Stat(filepath.Dir(path)); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("socket directory: %v %v, want mode 0700", fi.Mode(), err)
	}
	var got fakeStatus
	if err := queryStatus(context.Background(), path, &got); err != nil {
		t.Fatal(err)
	}
	if got != (fakeStatus{Link: "up", Persons: 42}) {
		t.Errorf("got %+v", got)
	}
}

func TestControlStatusError(t *testing.T) {
	path := startControl(t, func(context.Context) (any, error) { return nil, errors.New("database locked") })
	var got fakeStatus
	err := queryStatus(context.Background(), path, &got)
	if err == nil || !strings.Contains(err.Error(), "daemon says: database locked") {
		t.Fatalf("err = %v", err)
	}
}

func TestControlBadRequests(t *testing.T) {
	path := startControl(t, func(context.Context) (any, error) { return fakeStatus{}, nil })
	exchange := func(req string) string {
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		c.Write([]byte(req))
		line, _ := bufio.NewReader(c).ReadString('\n')
		return line
	}
	if got := exchange("reboot\n"); !strings.Contains(got, `"error":"unknown request \"reboot\""`) {
		t.Errorf("unknown request answered %q", got)
	}
	// A line longer than the limit is dropped without an answer, and the
	// server keeps serving.
	if got := exchange(strings.Repeat("x", 4*maxControlLine) + "\n"); got != "" {
		t.Errorf("over-long request answered %q", got)
	}
	var st fakeStatus
	if err := queryStatus(context.Background(), path, &st); err != nil {
		t.Fatalf("server stopped serving after bad requests: %v", err)
	}
}

func TestControlNotRunning(t *testing.T) {
	var st fakeStatus
	err := queryStatus(context.Background(), filepath.Join(t.TempDir(), "none.sock"), &st)
	if !errors.Is(err, errNotRunning) {
		t.Fatalf("err = %v, want errNotRunning", err)
	}
}

func TestControlStaleAndLiveSocket(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ctl.sock")
	// A socket file left by a daemon that died: nobody listens on it.
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("stale socket not left behind: %v", err)
	}
	status := func(context.Context) (any, error) { return fakeStatus{Link: "down"}, nil }
	s, err := listenControl(path, status, zerolog.Nop())
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()

	// A second daemon must not steal the socket of a live one.
	if _, err := listenControl(path, status, zerolog.Nop()); err == nil || !strings.Contains(err.Error(), "another termagent is running") {
		t.Errorf("second listener: err = %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket file not removed at stop: %v", err)
	}

	// A regular file at the path is never removed.
	file := filepath.Join(dir, "file")
	os.WriteFile(file, nil, 0o600)
	if _, err := listenControl(file, status, zerolog.Nop()); err == nil {
		t.Error("listened over a regular file")
	}
}

// A socket the caller may not open is not "not running".
func TestControlPermissionDenied(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root may open any socket")
	}
	path := startControl(t, func(context.Context) (any, error) { return fakeStatus{}, nil })
	if err := os.Chmod(filepath.Dir(path), 0); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(filepath.Dir(path), 0o700)
	var st fakeStatus
	err := queryStatus(context.Background(), path, &st)
	if err == nil || errors.Is(err, errNotRunning) || !errors.Is(err, os.ErrPermission) {
		t.Fatalf("err = %v, want a permission error", err)
	}
}

package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// listenNotify opens a unixgram socket like systemd's and returns a channel
// of the datagrams it receives.
func listenNotify(t *testing.T, name string) <-chan string {
	t.Helper()
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ch := make(chan string, 64)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, _, err := conn.ReadFromUnix(buf)
			if err != nil {
				close(ch)
				return
			}
			ch <- string(buf[:n])
		}
	}()
	return ch
}

func recv(t *testing.T, ch <-chan string) string {
	t.Helper()
	select {
	case s := <-ch:
		return s
	case <-time.After(10 * time.Second):
		t.Fatal("no datagram within 10s")
	}
	return ""
}

func TestNotifyPathAndAbstractSocket(t *testing.T) {
	for _, name := range []string{
		filepath.Join(t.TempDir(), "notify.sock"),
		fmt.Sprintf("@termagent-test-%d-%d", os.Getpid(), time.Now().UnixNano()),
	} {
		t.Run(name, func(t *testing.T) {
			ch := listenNotify(t, name)
			n := notifierFromEnv(func(k string) string {
				if k == "NOTIFY_SOCKET" {
					return name
				}
				return ""
			})
			for _, state := range []string{"READY=1", "STOPPING=1"} {
				if err := n.notify(state); err != nil {
					t.Fatal(err)
				}
				if got := recv(t, ch); got != state {
					t.Errorf("got %q, want %q", got, state)
				}
			}
		})
	}
}

func TestNotifyWithoutSocketDoesNothing(t *testing.T) {
	n := notifierFromEnv(func(string) string { return "" })
	if err := n.notify("READY=1"); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		n.runWatchdog(context.Background(), nil, nil) // returns at once
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("runWatchdog without NOTIFY_SOCKET did not return")
	}
}

func TestNotifyMissingSocketIsAnError(t *testing.T) {
	n := &notifier{addr: filepath.Join(t.TempDir(), "absent.sock")}
	if err := n.notify("READY=1"); err == nil {
		t.Fatal("no error for a socket nobody listens on")
	}
}

func TestWatchdog(t *testing.T) {
	name := filepath.Join(t.TempDir(), "notify.sock")
	ch := listenNotify(t, name)
	env := map[string]string{
		"NOTIFY_SOCKET": name,
		"WATCHDOG_USEC": "100000", // 100 ms: a ping every 50 ms
		"WATCHDOG_PID":  strconv.Itoa(os.Getpid()),
	}
	n := notifierFromEnv(func(k string) string { return env[k] })
	if n.watchdog != 100*time.Millisecond {
		t.Fatalf("watchdog = %v, want 100ms", n.watchdog)
	}

	// Healthy: pings arrive.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		n.runWatchdog(ctx, func(context.Context) error { return nil }, func(err error) { t.Error(err) })
		close(done)
	}()
	for range 3 {
		if got := recv(t, ch); got != "WATCHDOG=1" {
			t.Fatalf("got %q, want WATCHDOG=1", got)
		}
	}
	cancel()
	<-done

	// Unhealthy: the failure is reported instead of a ping (on a fresh
	// socket, so no ping of the healthy phase can be in flight).
	name = filepath.Join(t.TempDir(), "notify2.sock")
	ch = listenNotify(t, name)
	env["NOTIFY_SOCKET"] = name
	n = notifierFromEnv(func(k string) string { return env[k] })
	sick := errors.New("agent stuck")
	errs := make(chan error, 16)
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	go n.runWatchdog(ctx, func(context.Context) error { return sick }, func(err error) { errs <- err })
	select {
	case err := <-errs:
		if !errors.Is(err, sick) {
			t.Fatalf("reported %v, want %v", err, sick)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("failing health check not reported")
	}
	cancel()
	for {
		select {
		case s := <-ch:
			t.Fatalf("ping %q sent although the daemon is unhealthy", s)
		default:
			return
		}
	}
}

func TestWatchdogOtherPID(t *testing.T) {
	env := map[string]string{"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "100000", "WATCHDOG_PID": "1"}
	if n := notifierFromEnv(func(k string) string { return env[k] }); n.watchdog != 0 {
		t.Errorf("watchdog for another pid enabled: %v", n.watchdog)
	}
}

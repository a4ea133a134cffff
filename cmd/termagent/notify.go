package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"
)

// notifier speaks the sd_notify(3) protocol: one datagram per state change
// to the unix socket systemd names in NOTIFY_SOCKET. A notifier with no
// socket does nothing, so the daemon runs the same with or without systemd.
type notifier struct {
	addr     string        // NOTIFY_SOCKET; "@name" is an abstract socket
	watchdog time.Duration // WATCHDOG_USEC, 0 when systemd wants no pings
}

// notifierFromEnv reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID. The
// watchdog is enabled only when WATCHDOG_PID is absent or names this process.
func notifierFromEnv(getenv func(string) string) *notifier {
	n := &notifier{addr: getenv("NOTIFY_SOCKET")}
	if n.addr == "" {
		return n
	}
	if pid := getenv("WATCHDOG_PID"); pid != "" && pid != strconv.Itoa(os.Getpid()) {
		return n
	}
	if usec, err := strconv.ParseInt(getenv("WATCHDOG_USEC"), 10, 64); err == nil && usec > 0 {
		n.watchdog = time.Duration(usec) * time.Microsecond
	}
	return n
}

// notify sends state ("READY=1", "WATCHDOG=1", "STOPPING=1", ...) as one
// datagram. It does nothing when NOTIFY_SOCKET was not set. The Go runtime
// maps a leading '@' to Linux's abstract socket namespace.
func (n *notifier) notify(state string) error {
	if n == nil || n.addr == "" {
		return nil
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: n.addr, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("sd_notify %s: %w", n.addr, err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		return fmt.Errorf("sd_notify %s: send %q: %w", n.addr, state, err)
	}
	return nil
}

// runWatchdog sends WATCHDOG=1 every half of WATCHDOG_USEC while alive
// reports the daemon healthy, until ctx is done. A ping is skipped (and
// systemd eventually restarts the daemon) when alive fails. It returns at
// once when systemd asked for no watchdog.
func (n *notifier) runWatchdog(ctx context.Context, alive func(context.Context) error, onErr func(error)) {
	if n == nil || n.addr == "" || n.watchdog <= 0 {
		return
	}
	interval := n.watchdog / 2
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		actx, cancel := context.WithTimeout(ctx, interval)
		err := alive(actx)
		cancel()
		if err == nil {
			err = n.notify("WATCHDOG=1")
		}
		if err != nil && ctx.Err() == nil {
			onErr(err)
		}
	}
}

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// The control socket is a local unix stream socket (mode 0600) through which
// `termagent status` asks the running daemon for its state. One request line
// in, one JSON line out, then the daemon closes the connection:
//
//	status\n  →  {"status": {...agent.Status...}}\n
//	other\n   →  {"error": "unknown request \"other\""}\n
const (
	controlTimeout  = 5 * time.Second // bounds one client exchange, both sides
	maxControlLine  = 256             // longest request line accepted
	maxControlReply = 1 << 20         // longest reply line accepted
)

// controlReply is the one JSON line the daemon answers with.
type controlReply struct {
	Status json.RawMessage `json:"status,omitempty"`
	Error  string          `json:"error,omitempty"`
}

// controlServer serves the control socket.
type controlServer struct {
	path   string
	status func(context.Context) (any, error)
	log    zerolog.Logger
	ln     *net.UnixListener
}

// listenControl creates the control socket at path, mode 0600, in a
// directory it creates 0700 if missing. A stale socket left by a daemon that
// died is replaced; a socket a live daemon answers on is an error.
func listenControl(path string, status func(context.Context) (any, error), log zerolog.Logger) (*controlServer, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != os.ModeSocket {
			return nil, fmt.Errorf("control socket %s: exists and is not a socket", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("control socket %s: another termagent is running", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("control socket %s: remove stale socket: %w", path, err)
		}
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	return &controlServer{path: path, status: status, log: log, ln: ln}, nil
}

// Run accepts and answers clients until ctx is done, then closes the
// listener (which removes the socket file) and waits for open exchanges.
func (s *controlServer) Run(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { s.ln.Close() })
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := s.ln.AcceptUnix()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			s.ln.Close()
			return fmt.Errorf("control socket %s: accept: %w", s.path, err)
		}
		wg.Go(func() { s.serve(ctx, c) })
	}
}

func (s *controlServer) serve(ctx context.Context, c *net.UnixConn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(controlTimeout))
	line, err := bufio.NewReaderSize(&limitedConn{c, maxControlLine}, maxControlLine).ReadString('\n')
	if err != nil {
		s.log.Debug().Err(err).Msg("control: read request")
		return
	}
	var reply controlReply
	switch req := strings.TrimSpace(line); req {
	case "status":
		ctx, cancel := context.WithTimeout(ctx, controlTimeout)
		st, err := s.status(ctx)
		cancel()
		if err == nil {
			reply.Status, err = json.Marshal(st)
		}
		if err != nil {
			reply.Error = err.Error()
		}
	default:
		reply.Error = fmt.Sprintf("unknown request %q", req)
	}
	b, _ := json.Marshal(reply)
	if _, err := c.Write(append(b, '\n')); err != nil {
		s.log.Debug().Err(err).Msg("control: write reply")
	}
}

// limitedConn reads at most n bytes in all, then io.EOF.
type limitedConn struct {
	c net.Conn
	n int
}

func (l *limitedConn) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, errors.New("request line too long")
	}
	if len(p) > l.n {
		p = p[:l.n]
	}
	n, err := l.c.Read(p)
	l.n -= n
	return n, err
}

// errNotRunning means no daemon answers on the control socket.
var errNotRunning = errors.New("termagent is not running")

// queryStatus asks the daemon on the control socket at path for its status
// and decodes it into v. It returns an error wrapping errNotRunning when no
// daemon listens there.
func queryStatus(ctx context.Context, path string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, controlTimeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	switch {
	case errors.Is(err, os.ErrPermission):
		return fmt.Errorf("control socket %s: %w (run status as root or as the daemon's user)", path, err)
	case err != nil:
		return fmt.Errorf("%w (control socket %s: %v)", errNotRunning, path, err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	if _, err := c.Write([]byte("status\n")); err != nil {
		return fmt.Errorf("control socket %s: %w", path, err)
	}
	line, err := bufio.NewReader(io.LimitReader(c, maxControlReply)).ReadBytes('\n')
	if err != nil {
		return fmt.Errorf("control socket %s: read reply: %w", path, err)
	}
	var reply controlReply
	if err := json.Unmarshal(line, &reply); err != nil {
		return fmt.Errorf("control socket %s: bad reply: %w", path, err)
	}
	if reply.Error != "" {
		return fmt.Errorf("control socket %s: daemon says: %s", path, reply.Error)
	}
	if err := json.Unmarshal(reply.Status, v); err != nil {
		return fmt.Errorf("control socket %s: bad status: %w", path, err)
	}
	return nil
}

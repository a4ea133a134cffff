package protocol

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// Conn is a message-oriented connection: the seam that lets a Peer run the
// same over a raw byte stream (TCP, TLS) and over WebSocket. NewStreamConn
// and NewWSConn make one; Dial and Listener.Accept return one.
//
// One goroutine may call ReadMessage while others write; WriteMessage is
// not safe for concurrent use (Peer serialises writes). Close is
// idempotent, safe from any goroutine, and wakes blocked calls.
//
// A Conn that also has StreamConn's WriteMessages method gets several
// queued messages in one call; a wrapper that embeds Conn (to watch
// reads or writes) does not, and gets one WriteMessage per message.
type Conn interface {
	// ReadMessage blocks until the next message and returns one JSON
	// object's bytes, valid only until the next call. Errors wrapping
	// ErrMalformed are recoverable; any other error ends the connection.
	ReadMessage() ([]byte, error)
	// WriteMessage sends one message: a JSON object, optionally followed
	// by "\n" (as Marshal returns it). It blocks until the bytes are handed
	// to the operating system or ctx ends. An error wrapping ErrNotSent
	// means no byte left; after any other error the connection is unusable
	// and the message may have arrived.
	WriteMessage(ctx context.Context, b []byte) error
	// Close closes the connection.
	Close() error
	// LocalAddr and RemoteAddr return the endpoints' network addresses.
	LocalAddr() net.Addr
	RemoteAddr() net.Addr
}

var (
	_ Conn = (*StreamConn)(nil)
	_ Conn = (*WSConn)(nil)
)

// StreamConn is a Conn over a byte stream (a TCP or TLS net.Conn): a
// Reader for input, compact JSON plus "\n" for output.
type StreamConn struct {
	c         net.Conn
	r         *Reader
	closeOnce sync.Once
	closeErr  error
}

// NewStreamConn returns a Conn over c that rejects incoming messages longer
// than maxSize bytes (DefaultMaxMessageSize when maxSize <= 0). The
// StreamConn owns c: its Close closes c.
func NewStreamConn(c net.Conn, maxSize int) *StreamConn {
	return &StreamConn{c: c, r: NewReader(c, maxSize)}
}

// newStreamConn is NewStreamConn whose Reader uses spool when not nil.
func newStreamConn(c net.Conn, maxSize int, spool *Spool) *StreamConn {
	s := NewStreamConn(c, maxSize)
	if spool != nil {
		s.r.UseSpool(spool)
	}
	return s
}

// ReadMessage implements Conn.
func (s *StreamConn) ReadMessage() ([]byte, error) { return s.r.ReadMessage() }

// WriteMessage implements Conn. It appends "\n" if b lacks it, and applies
// ctx's deadline and cancellation as a write deadline.
func (s *StreamConn) WriteMessage(ctx context.Context, b []byte) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrNotSent, err)
	}
	if len(b) == 0 || b[len(b)-1] != '\n' {
		b = append(b[:len(b):len(b)], '\n')
	}
	deadline, _ := ctx.Deadline()
	if err := s.c.SetWriteDeadline(deadline); err != nil {
		return fmt.Errorf("%w: set write deadline: %w", ErrNotSent, err)
	}
	stop := context.AfterFunc(ctx, func() { s.c.SetWriteDeadline(time.Unix(1, 0)) })
	n, err := s.c.Write(b)
	stop()
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			err = fmt.Errorf("%w (%w)", cerr, err)
		}
		if n == 0 {
			return fmt.Errorf("%w: write: %w", ErrNotSent, err)
		}
		return fmt.Errorf("write (%d of %d bytes sent): %w", n, len(b), err)
	}
	return nil
}

// WriteMessages writes several messages, each as WriteMessage would, with
// one system call where the platform allows (writev on TCP). It returns
// how many messages were at least partly sent: the rest are not sent.
func (s *StreamConn) WriteMessages(ctx context.Context, msgs [][]byte) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("%w: %w", ErrNotSent, err)
	}
	bufs := make(net.Buffers, len(msgs))
	for i, b := range msgs {
		if len(b) == 0 || b[len(b)-1] != '\n' {
			b = append(b[:len(b):len(b)], '\n')
		}
		bufs[i] = b
	}
	lens := make([]int, len(bufs))
	for i, b := range bufs {
		lens[i] = len(b)
	}
	deadline, _ := ctx.Deadline()
	if err := s.c.SetWriteDeadline(deadline); err != nil {
		return 0, fmt.Errorf("%w: set write deadline: %w", ErrNotSent, err)
	}
	stop := context.AfterFunc(ctx, func() { s.c.SetWriteDeadline(time.Unix(1, 0)) })
	n, err := bufs.WriteTo(s.c)
	stop()
	if err == nil {
		return len(msgs), nil
	}
	if cerr := ctx.Err(); cerr != nil {
		err = fmt.Errorf("%w (%w)", cerr, err)
	}
	sent := 0
	for off := int64(0); sent < len(lens) && off < n; sent++ {
		off += int64(lens[sent])
	}
	if sent == 0 {
		return 0, fmt.Errorf("%w: write: %w", ErrNotSent, err)
	}
	return sent, fmt.Errorf("write (%d bytes sent): %w", n, err)
}

// Close implements Conn: it closes the underlying connection once.
func (s *StreamConn) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.c.Close() })
	return s.closeErr
}

// LocalAddr implements Conn.
func (s *StreamConn) LocalAddr() net.Addr { return s.c.LocalAddr() }

// RemoteAddr implements Conn.
func (s *StreamConn) RemoteAddr() net.Addr { return s.c.RemoteAddr() }

// WSConn is a Conn over a WebSocket (RFC 6455): one JSON message per frame.
// It writes text frames and reads text and binary ones.
type WSConn struct {
	ws            *websocket.Conn
	max           int
	local, remote net.Addr
	closed        chan struct{}
	closeOnce     sync.Once
}

// NewWSConn returns a Conn over ws that rejects incoming messages longer
// than maxSize bytes (DefaultMaxMessageSize when maxSize <= 0). local and
// remote are reported by LocalAddr and RemoteAddr (either may be nil). The
// WSConn owns ws.
func NewWSConn(ws *websocket.Conn, maxSize int, local, remote net.Addr) *WSConn {
	if maxSize <= 0 {
		maxSize = DefaultMaxMessageSize
	}
	// ReadMessage enforces the limit itself; the library's is set just
	// above it so that it never trips first.
	ws.SetReadLimit(int64(maxSize) + 1)
	return &WSConn{ws: ws, max: maxSize, local: local, remote: remote, closed: make(chan struct{})}
}

// ReadMessage implements Conn. The returned slice is the message's payload;
// a message over the maximum size ends the connection with ErrTooLarge
// after reading at most one byte more than the limit.
func (w *WSConn) ReadMessage() ([]byte, error) {
	_, r, err := w.ws.Reader(context.Background())
	if err != nil {
		return nil, w.readErr(err)
	}
	b, err := io.ReadAll(io.LimitReader(r, int64(w.max)+1))
	if err != nil {
		return nil, w.readErr(err)
	}
	if len(b) > w.max {
		w.Close()
		return nil, fmt.Errorf("%w: websocket message over %d bytes", ErrTooLarge, w.max)
	}
	return b, nil
}

func (w *WSConn) readErr(err error) error {
	select {
	case <-w.closed:
		return fmt.Errorf("websocket read: %w (%w)", ErrClosed, err)
	default:
	}
	return fmt.Errorf("websocket read: %w", err)
}

// WriteMessage implements Conn: one text frame holding b without its
// trailing "\n".
func (w *WSConn) WriteMessage(ctx context.Context, b []byte) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrNotSent, err)
	}
	select {
	case <-w.closed:
		return fmt.Errorf("%w: %w", ErrNotSent, ErrClosed)
	default:
	}
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
	}
	if err := w.ws.Write(ctx, websocket.MessageText, b); err != nil {
		return fmt.Errorf("websocket write: %w", err)
	}
	return nil
}

// Close implements Conn. It closes the connection at once, without the
// closing handshake, so it never blocks.
func (w *WSConn) Close() error {
	var err error
	w.closeOnce.Do(func() {
		close(w.closed)
		err = w.ws.CloseNow()
	})
	return err
}

// LocalAddr implements Conn.
func (w *WSConn) LocalAddr() net.Addr { return w.local }

// RemoteAddr implements Conn.
func (w *WSConn) RemoteAddr() net.Addr { return w.remote }

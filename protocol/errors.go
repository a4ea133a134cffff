package protocol

import (
	"errors"
	"fmt"
)

// Errors of the package. Callers test them with errors.Is; the errors
// returned wrap them with what was being done.
var (
	// ErrMalformed means bytes that are not a usable message: not a JSON
	// object, or a field of the wrong type. The Reader has skipped them and
	// can go on.
	ErrMalformed = errors.New("protocol: malformed message")
	// ErrInvalid means a well-formed message that lacks a required field or
	// carries an inconsistent one (Message.Validate).
	ErrInvalid = errors.New("protocol: invalid message")
	// ErrTooLarge means a message exceeded the maximum size. The stream
	// cannot be resynchronised: the connection must be reset.
	ErrTooLarge = errors.New("protocol: message too large")
	// ErrClosed is returned by a Peer, Conn or Listener after Close, and
	// wrapped into the errors of calls that the close interrupted.
	ErrClosed = errors.New("protocol: closed")
	// ErrNotSent means no byte of the request left this side: it is safe
	// to send it again, on this connection or another.
	ErrNotSent = errors.New("protocol: request not sent")
	// ErrNoResponse means the request was (or may have been) sent but no
	// response came: the connection was lost, the call timed out or its
	// context ended. The other side may have carried it out.
	ErrNoResponse = errors.New("protocol: request sent, no response")
	// ErrUnresponsive means the other side left PeerConfig.MaxCallTimeouts
	// calls in a row unanswered: the Peer presumed the link half-open and
	// stopped.
	ErrUnresponsive = errors.New("protocol: peer unresponsive")
	// ErrDuplicateSession means Call was given a session id that a call in
	// flight on the same peer already uses. Nothing was sent.
	ErrDuplicateSession = errors.New("protocol: session id already in flight")
)

// RemoteError is a response with a non-zero code: the other side refused or
// failed the request. Peer.Call returns it (with the response) for every
// such response. A handler may return one (see Errorf) to choose the code
// of its response; any other handler error answers CodeError.
type RemoteError struct {
	Mod     string // the request's mod; may be empty for a handler's error
	Code    int    // a negative Code* value
	Message string // the response's message
	err     error  // the cause, for a handler's error made with Errorf
}

// Error implements error.
func (e *RemoteError) Error() string {
	if e.Mod == "" {
		return fmt.Sprintf("code %d: %s", e.Code, e.Message)
	}
	return fmt.Sprintf("%s: code %d: %s", e.Mod, e.Code, e.Message)
}

// Unwrap returns the cause given to Errorf, if any.
func (e *RemoteError) Unwrap() error { return e.err }

// Errorf returns a *RemoteError with the given code whose Message is the
// formatted text; %w works as in fmt.Errorf and the wrapped error stays
// reachable with errors.Is/As. Handlers use it to answer a code other than
// CodeError, e.g. Errorf(CodeDatabase, "store person %s: %w", id, err).
func Errorf(code int, format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	return &RemoteError{Code: code, Message: err.Error(), err: err}
}

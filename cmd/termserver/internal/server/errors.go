package server

import "errors"

// Errors of the server, wrapped with what was being done, tested with
// errors.Is.
var (
	// ErrConfig means a Config value is invalid; the message names it.
	ErrConfig = errors.New("server: invalid configuration")
	// ErrNoTerminal means no connected terminal matches the given name.
	ErrNoTerminal = errors.New("server: no such terminal connected")
	// ErrAmbiguous means a terminal name prefix matches several terminals.
	ErrAmbiguous = errors.New("server: terminal name matches several terminals")
)

package agent

import "errors"

// Errors of the agent. Handlers wrap them with what was being done; callers
// test them with errors.Is.
var (
	// ErrConfig means a Config value is invalid; the message names the field.
	ErrConfig = errors.New("agent: invalid configuration")
	// ErrRestart is returned by Run after the server ordered a restart
	// (ActionRestart) and no restart hook is configured: the daemon should
	// exit with a status its supervisor restarts it on.
	ErrRestart = errors.New("agent: restart requested by the server")
	// ErrNoServer means there is no server to dial: none in the database
	// and none in Config.Link.ServerAddress.
	ErrNoServer = errors.New("agent: no server address configured")
	// ErrInvalid marks a request the terminal refuses as malformed or
	// invalid (answered with code -1).
	ErrInvalid = errors.New("agent: invalid request")
	// ErrDevice marks a failure of a hardware module (answered with -2).
	ErrDevice = errors.New("agent: device fault")
	// ErrDatabase marks a failure of the local database (answered with -3).
	ErrDatabase = errors.New("agent: database error")
	// ErrAlreadyRun is returned by a second call of Run: an Agent runs once.
	ErrAlreadyRun = errors.New("agent: Run called twice")
)

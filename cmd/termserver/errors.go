package main

import "errors"

// Errors of the server and its admin commands; wrapped with what was being
// done, tested with errors.Is.
var (
	// ErrConfig means a Config value is invalid; the message names it.
	ErrConfig = errors.New("termserver: invalid configuration")
	// ErrClosed is returned by a Records or Server method after Close.
	ErrClosed = errors.New("termserver: closed")
	// ErrNoSessionID means an upload carried no session_id to store it by.
	ErrNoSessionID = errors.New("termserver: record has no session_id")
	// ErrBadFaults means a fault-injection setting is out of range.
	ErrBadFaults = errors.New("termserver: invalid fault setting")
	// ErrBadPersons means a persons folder or CSV cannot be read as such.
	ErrBadPersons = errors.New("termserver: invalid persons file")
	// ErrNoTerminal means no connected terminal matches the given name.
	ErrNoTerminal = errors.New("termserver: no such terminal connected")
	// ErrAmbiguous means a terminal name prefix matches several terminals.
	ErrAmbiguous = errors.New("termserver: terminal name matches several terminals")
)

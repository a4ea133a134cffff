package agent

import (
	"context"
	"time"

	"termagent/store"
)

// LinkState is the state of the link to the server.
type LinkState string

// Link states.
const (
	LinkDown       LinkState = "down"       // no connection; waiting to retry
	LinkConnecting LinkState = "connecting" // dialling / waiting for the server in listen mode
	LinkUp         LinkState = "up"         // a connection is live
)

// ModuleState is the state of one hardware module.
type ModuleState string

// Module states.
const (
	ModuleAbsent ModuleState = "absent" // the terminal has no such module
	ModuleOK     ModuleState = "ok"     // answering
	ModuleFault  ModuleState = "fault"  // failing; probed with backoff
)

// Status is a snapshot of the terminal for `termagent status` and
// get_device_status. It is plain data, safe to marshal as JSON.
type Status struct {
	// Link is the link state; Server is the "host:port" the terminal
	// dials (or, in listen mode, the peer it accepted).
	Link   LinkState `json:"link"`
	Server string    `json:"server"`
	// LinkSince is when Link last changed.
	LinkSince time.Time `json:"link_since"`
	// LocalAddr is the local address of the live connection, if any.
	LocalAddr string `json:"local_addr,omitempty"`
	// LastError is the last link error, if any.
	LastError string `json:"last_error,omitempty"`
	// OutboxDepth counts the records waiting to be uploaded (quarantined
	// ones not included); OutboxOldest is when the oldest of them was
	// recorded (zero if none).
	OutboxDepth  int       `json:"outbox_depth"`
	OutboxOldest time.Time `json:"outbox_oldest"`
	// OutboxQuarantined counts records the server refused too often
	// (store.Config.MaxAttempts times). They are kept, get one more try
	// after every (re)connection and every Upload.QuarantineRetry, and
	// are released for good by the release-quarantine command.
	OutboxQuarantined int `json:"outbox_quarantined"`
	// OutboxDropped counts records dropped because the outbox was full.
	OutboxDropped int64 `json:"outbox_dropped"`
	// RecordsPending counts access records kept in memory because the
	// database has not taken them yet (at most 1,024; normally 0 or a
	// record being written). They are not in OutboxDepth.
	RecordsPending int `json:"records_pending"`
	// RecordsDropped counts access records lost since start: dropped
	// from the full memory queue while the database failed, or refused
	// by the store as invalid. Each one was logged as an error.
	RecordsDropped int64 `json:"records_dropped"`
	// Uploaded counts records acknowledged since start.
	Uploaded int64 `json:"uploaded"`
	// Persons counts the persons in the database.
	Persons int `json:"persons"`
	// DatabaseReadOnly, when not empty, says why the database is open
	// read-only (its file system refused writes at start): accesses are
	// still decided from the persons it holds, records wait in memory
	// (RecordsPending), and the terminal retries until it is writable.
	DatabaseReadOnly string `json:"database_read_only,omitempty"`
	// DatabaseRecovered, when set, says the database was found damaged at
	// start, moved aside, and what was salvaged from it.
	DatabaseRecovered *DatabaseRecovery `json:"database_recovered,omitempty"`
	// Modules maps "card", "fingerprint", "face", "door", "keypad",
	// "door_inputs" (Parts.DoorInputs), "feedback" (the outputs) and
	// "database" (the outbox's write path) to their state.
	Modules map[string]ModuleStatus `json:"modules"`
	// DoorUnlocked and DoorOpen are the door's last known state (DoorOpen
	// meaningful only with a sensor).
	DoorUnlocked bool `json:"door_unlocked"`
	DoorOpen     bool `json:"door_open"`
	// DoorHeldOpen and DoorForced are the door alarms (DoorWatchConfig):
	// the door stayed open too long after a grant, or opened with none.
	// Both clear when the door closes. DoorAlarmSince is when the one set
	// began.
	DoorHeldOpen   bool      `json:"door_held_open"`
	DoorForced     bool      `json:"door_forced"`
	DoorAlarmSince time.Time `json:"door_alarm_since,omitzero"`
	// PINLockedUntil is when the keypad's lockout after wrong PINs ends;
	// zero when the keypad is not locked out.
	PINLockedUntil time.Time `json:"pin_locked_until,omitzero"`
	// SoftwareVersion is Config.Device.SoftwareVersion.
	SoftwareVersion string `json:"software_version"`
	// Started is when Run started; Uptime is Now - Started.
	Started time.Time     `json:"started"`
	Uptime  time.Duration `json:"uptime"`
	// Errors lists parts of the snapshot that could not be read (e.g.
	// the database failed); the other fields are still valid.
	Errors []string `json:"errors,omitempty"`
}

// DatabaseRecovery describes the replacement of a damaged database.
type DatabaseRecovery struct {
	// MovedTo is where the damaged file was kept; Reason what was wrong.
	MovedTo string `json:"moved_to"`
	Reason  string `json:"reason"`
	// Salvaged and Lost count rows per table (settings, persons,
	// biometrics, finger slots, records).
	Salvaged store.SalvageCounts `json:"salvaged"`
	Lost     store.SalvageCounts `json:"lost"`
	// LostLogCommits counts the whole transactions found after the damage
	// of a damaged write-ahead log (lost; a lower bound).
	LostLogCommits int `json:"lost_log_commits"`
}

// ModuleStatus is one module's state.
type ModuleStatus struct {
	State ModuleState `json:"state"`
	// Since is when State last changed.
	Since time.Time `json:"since"`
	// Error is the last error, when State is fault.
	Error string `json:"error,omitempty"`
}

// Status returns a snapshot of the terminal. It reads the database (outbox
// counters, person count) with ctx; what cannot be read is listed in
// Errors. Safe to call from any goroutine, before, during and after Run.
func (a *Agent) Status(ctx context.Context) Status {
	a.mu.Lock()
	st := Status{
		Link:            a.linkState,
		Server:          a.server,
		LinkSince:       a.linkSince,
		LocalAddr:       a.localAddr,
		LastError:       a.lastErr,
		Modules:         make(map[string]ModuleStatus, len(a.modules)),
		SoftwareVersion: a.cfg.Device.SoftwareVersion,
	}
	for k, v := range a.modules {
		st.Modules[k] = v
	}
	a.mu.Unlock()
	if p := a.started.Load(); p != nil {
		st.Started = *p
		st.Uptime = a.cfg.Now().Sub(*p)
	}
	st.Uploaded = a.uploaded.Load()
	st.RecordsPending, st.RecordsDropped = a.records.len(), a.records.dropped.Load()
	if st.Server == "" {
		if s, err := a.parts.Store.DeviceInfo(ctx); err == nil && s.ServerIP != "" {
			st.Server = joinHostPort(s.ServerIP, s.ServerPort)
		}
	}
	if ob, err := a.parts.Store.OutboxStats(ctx); err != nil {
		st.Errors = append(st.Errors, err.Error())
	} else {
		st.OutboxDepth, st.OutboxOldest = ob.Depth, ob.Oldest
		st.OutboxQuarantined, st.OutboxDropped = ob.Quarantined, ob.Dropped
	}
	if d, ok := a.parts.Store.(degradable); ok {
		if w, why := d.Writable(); !w {
			st.DatabaseReadOnly = why
		}
	}
	if r, ok := a.parts.Store.(recoverable); ok {
		if rec, ok := r.Recovery(); ok {
			st.DatabaseRecovered = &DatabaseRecovery{MovedTo: rec.MovedTo, Reason: rec.Reason, Salvaged: rec.Salvaged, Lost: rec.Lost, LostLogCommits: rec.LostCommits}
		}
	}
	if n, err := a.parts.Store.CountPersons(ctx); err != nil {
		st.Errors = append(st.Errors, err.Error())
	} else {
		st.Persons = n
	}
	if d := a.parts.Door; d != nil {
		ds := d.State()
		st.DoorUnlocked = ds.Unlocked
		st.DoorOpen = ds.HasSensor && ds.Open
	}
	if known, open, held, forced, since := a.doorWatchStatus(); known {
		st.DoorOpen, st.DoorHeldOpen, st.DoorForced, st.DoorAlarmSince = open, held, forced, since
	}
	st.PINLockedUntil = a.pinLockedUntil()
	return st
}

package agent

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/rs/zerolog"
)

// Config is everything the agent can be told. The zero value of every field
// means the documented default; defaults are filled in one place
// (Config.WithDefaults). The yaml tags of the section types name each
// field's key in cmd/termagent's configuration file, which decodes its
// sections straight into them; a field tagged "-" is set by cmd from
// another key (named in its comment) or is not configured by file.
type Config struct {
	// Device describes this terminal.
	Device DeviceConfig
	// Link says how to reach the server.
	Link LinkConfig
	// Upload tunes the outbox drain.
	Upload UploadConfig
	// Access tunes the access path (card, face, fingerprint → door).
	Access AccessConfig
	// Commands maps a send_user_command command_type to what the terminal
	// does. A type missing from the map is answered with code -1. Nil means
	// DefaultCommands().
	Commands map[int]Command
	// Hooks are the integrator's programs for what the agent must not do
	// itself (set the clock, change the network address, show a message).
	Hooks Hooks
	// Events are the command_type values of the device's own
	// send_device_command events.
	Events EventTypes
	// Modules tunes the module supervisor (fault detection, resync).
	Modules ModuleConfig
	// PIN tunes PIN entry on the keypad (config_terminal.go).
	PIN PINConfig
	// Verify says which credentials open the door alone.
	Verify VerifyConfig
	// DoorWatch supervises the door sensor (held open, forced).
	DoorWatch DoorWatchConfig
	// Feedback drives the buzzer, LEDs and display hook on a decision.
	Feedback FeedbackConfig
	// Logger receives the agent's logs; each component adds a "component"
	// field. Default zerolog.Nop().
	Logger zerolog.Logger
	// Now is the clock. Default time.Now. Tests inject their own.
	Now func() time.Time
}

// DeviceConfig describes this terminal. Values that the server may change
// (community code, address, device port) are only first values: once stored
// in the database, the stored value wins.
type DeviceConfig struct {
	// InOutType is the access record's in_out_type: 1 in, 2 out.
	// Default 1.
	InOutType int `yaml:"in_out_type"`
	// CommunityCode is the first value of community_code (the server may
	// change it with set_device_info). Default "".
	CommunityCode string `yaml:"community_code"`
	// Address is the first value of the free-text address. Default "".
	Address string `yaml:"address"`
	// DeviceIP is reported as device_ip when there is no live connection
	// to take the local address from. Default "".
	DeviceIP string `yaml:"device_ip"`
	// DevicePort is the first value of device_port, the TCP port listen
	// mode accepts the server on (1..65535). Default 1545. (File:
	// server.listen.device_port.)
	DevicePort int `yaml:"-"`
	// HardwareVersion is reported as hardware_version. Default "".
	HardwareVersion string `yaml:"hardware_version"`
	// SoftwareVersion is reported as software_version; cmd stamps it at
	// build time. Default "dev".
	SoftwareVersion string `yaml:"-"`
	// Location is the time zone of record times and of set_device_time.
	// Default time.Local (the system's zone). (File: device.time_zone.)
	Location *time.Location `yaml:"-"`
}

// LinkConfig says how the terminal reaches the server.
type LinkConfig struct {
	// ServerAddress is the first server as "host:port". The database's
	// stored server_ip/server_port win once set (set_device_info changes
	// them). Required unless Listen is set or the database already holds
	// a server.
	ServerAddress string `yaml:"address"`
	// Transport is "tcp" (default), "tls", "ws" or "wss".
	Transport string `yaml:"transport"`
	// Path is the HTTP path for ws/wss. Default "/".
	Path string `yaml:"ws_path"`
	// TLS configures tls and wss. When dialling, it verifies the server
	// (CAFile, PinSHA256, ServerName) and may present a client certificate
	// (CertFile, KeyFile). In listen mode the terminal is the TLS server:
	// CertFile and KeyFile are its certificate, and CAFile, if set, is the
	// CA that must sign the server's client certificate.
	TLS TLSConfig `yaml:"tls"`
	// KeepAlive is the TCP keepalive period. Default 30 s; negative
	// disables keepalive.
	KeepAlive time.Duration `yaml:"keepalive"`
	// DialTimeout bounds one connection attempt, TLS and WebSocket
	// handshakes included. Default 10 s.
	DialTimeout time.Duration `yaml:"dial_timeout"`
	// BackoffMin and BackoffMax bound the wait between connection
	// attempts: exponential with full jitter, from BackoffMin (default 1 s)
	// doubling up to BackoffMax (default 60 s), forever.
	BackoffMin time.Duration `yaml:"backoff_min"`
	BackoffMax time.Duration `yaml:"backoff_max"`
	// FallbackAfter is how long the terminal tries a server that
	// set_device_info moved it to before it goes back to the previous one.
	// Default 5 min.
	FallbackAfter time.Duration `yaml:"fallback_after"`
	// Listen selects listen mode: instead of dialling, the terminal
	// accepts the server's connection on device_port (the stored value,
	// which set_device_info may change: the terminal then listens on the
	// new port). A set_device_info that changes server_ip/server_port is
	// only stored in this mode.
	Listen bool `yaml:"-"`
	// ListenHost is the local address listen mode binds to. Default ""
	// (every interface). (File: Listen, ListenHost and AllowedPeers are
	// server.listen.enabled, .host and .allow.)
	ListenHost string `yaml:"-"`
	// AllowedPeers lists the addresses listen mode accepts connections
	// from, as IP addresses or CIDR prefixes ("10.0.0.5", "10.0.0.0/24").
	// Required in listen mode: an empty list accepts nobody.
	AllowedPeers []string `yaml:"-"`
	// Heartbeat, when Mod is set, sends a request with that mod every
	// Interval; a heartbeat that fails drops the link. (File: the
	// heartbeat section.)
	Heartbeat HeartbeatConfig `yaml:"-"`
	// ReadTimeout drops the link when nothing at all has arrived from the
	// server for this long, so a half-open link is noticed. Default: three
	// heartbeat intervals when the heartbeat is on, else 0 (off: an idle
	// V1.0 server may legitimately stay silent; TCP keepalive still
	// applies). Negative disables it.
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// CallTimeout bounds one request the terminal sends (upload, event,
	// heartbeat) from write to response. Default 30 s.
	CallTimeout time.Duration `yaml:"call_timeout"`
	// UnansweredCalls is how many requests in a row the terminal sends
	// without any of them answered within CallTimeout before it presumes
	// the link half-open, drops it and dials again (a server that accepts
	// and never reads, or never answers uploads). Default 3; negative
	// never. An idle server trips nothing: only unanswered requests count.
	UnansweredCalls int `yaml:"unanswered_calls"`
	// WriteTimeout bounds one write to the server (a server that never
	// reads fills the socket buffers; the write then fails and the link is
	// dropped). Default 60 s.
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// HandlerTimeout bounds the handling of one server request (a
	// download_person enrols into modules). Default 60 s.
	HandlerTimeout time.Duration `yaml:"handler_timeout"`
	// MaxMessageSize is the largest message accepted, in bytes. Default
	// 16 MiB.
	MaxMessageSize int `yaml:"max_message"`
}

// TLSConfig configures transport security for tls and wss.
type TLSConfig struct {
	// CAFile is a PEM file of CAs that sign the server's certificate.
	// Default: the system's roots.
	CAFile string `yaml:"ca_file"`
	// PinSHA256 is the hex SHA-256 of the server certificate (DER); when
	// set, the certificate must match it.
	PinSHA256 string `yaml:"pin_sha256"`
	// CertFile and KeyFile are the terminal's client certificate (PEM),
	// optional.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName overrides the name verified in the server's certificate.
	// Default: the host of the server address.
	ServerName string `yaml:"server_name"`
}

// HeartbeatConfig is the optional application-level heartbeat.
type HeartbeatConfig struct {
	// Mod is the request's mod, e.g. "heartbeat". Empty: no heartbeat
	// (the default; a V1.0 server does not know one).
	Mod string `yaml:"mod"`
	// Interval between heartbeats. Default 30 s (at least 1 s).
	Interval time.Duration `yaml:"interval"`
}

// UploadConfig tunes the outbox drain.
type UploadConfig struct {
	// Window is the number of upload_access_info calls in flight. Default
	// 8; 1 keeps strict oldest-first order on the wire.
	Window int `yaml:"window"`
	// RetryMin and RetryMax bound the wait before a record the server
	// refused (non-zero code) is sent again, and the pause after a
	// transport error: exponential with full jitter. Default 1 s and 60 s.
	// (Quarantine after N refusals is the store's MaxAttempts.)
	RetryMin time.Duration `yaml:"retry_min"`
	RetryMax time.Duration `yaml:"retry_max"`
	// NearlyFull is the outbox fill ratio (0..1] of the store's capacity
	// at which an "outbox nearly full" device event is sent (once, until
	// the fill drops below it again). Default 0.8.
	NearlyFull float64 `yaml:"nearly_full"`
	// QuarantineRetry is how often quarantined records (refused
	// store.Config.MaxAttempts times) get one more try; they also get one
	// after every (re)connection. Default 15 min; negative: only after a
	// (re)connection.
	QuarantineRetry time.Duration `yaml:"quarantine_retry"`
}

// AccessConfig tunes the access path.
type AccessConfig struct {
	// DoorPulse is how long the lock is released on a granted access or a
	// remote open. Default 3 s. (File: hal.door.pulse.)
	DoorPulse time.Duration `yaml:"-"`
	// DoorTimeout bounds one command to the lock relay (a relay board that
	// was unplugged is reopened within it). A grant whose relay does not
	// switch in time makes no record. Default 2 s.
	DoorTimeout time.Duration `yaml:"door_timeout"`
	// RecordTimeout bounds the wait for a granted access's record to be
	// committed before the door opens. When the store does not commit in
	// time (or fails), the door opens anyway, the record is kept in memory
	// and the "database" fault is raised. Default 1 s.
	RecordTimeout time.Duration `yaml:"record_timeout"`
	// RecordDenied also records (and uploads) denied attempts: an unknown
	// card keeps its card_number, person_id is empty. Default false.
	RecordDenied bool `yaml:"record_denied"`
	// OpenDoorTypes are the open_door_type values written in records.
	OpenDoorTypes OpenDoorTypes `yaml:"open_door_type"`
}

// OpenDoorTypes are the open_door_type values of access records. Zero
// fields take the defaults of protocol/PROTOCOL.md §5 upload_access_info.
type OpenDoorTypes struct {
	Card        int `yaml:"card"`        // default 1
	Face        int `yaml:"face"`        // default 2
	Fingerprint int `yaml:"fingerprint"` // default 3
	Remote      int `yaml:"remote"`      // default 4 (a server's open-door command)
	Key         int `yaml:"key"`         // default 5 (a PIN on the keypad)
	ExitButton  int `yaml:"exit_button"` // default 6 (the exit button, when DoorWatch.RecordExit)
}

// Action is what a send_user_command type does.
type Action string

// Actions of the send_user_command table.
const (
	// ActionOpenDoor pulses the door and records an access with
	// open_door_type Remote (on a terminal without a relay it is only
	// recorded). command_value is ignored.
	ActionOpenDoor Action = "open_door"
	// ActionMessage shows command_value: it is logged, and passed to the
	// Message hook when one is configured.
	ActionMessage Action = "message"
	// ActionRestart answers 0, then restarts the terminal: through
	// Hooks.Restart when set, else Run returns ErrRestart.
	ActionRestart Action = "restart"
	// ActionReleaseQuarantine releases every quarantined access record
	// for good (attempts reset: store.Config.MaxAttempts more tries) and
	// wakes the upload; command_value is ignored. The operator's way out
	// after the server's refusals were fixed.
	ActionReleaseQuarantine Action = "release_quarantine"
	// ActionHook runs Command.Hook with command_value as its only
	// argument (no shell); a non-zero exit is code -1.
	ActionHook Action = "hook"
)

// Command is one entry of the send_user_command table.
type Command struct {
	// Action is what the command does.
	Action Action `yaml:"action"`
	// Hook is the program ActionHook runs (an absolute path; run directly,
	// never through a shell).
	Hook string `yaml:"hook"`
}

// DefaultCommands is the table used when Config.Commands is nil:
// 1 open door, 2 show a message, 3 restart, 4 release quarantined records.
func DefaultCommands() map[int]Command {
	return map[int]Command{
		1: {Action: ActionOpenDoor},
		2: {Action: ActionMessage},
		3: {Action: ActionRestart},
		4: {Action: ActionReleaseQuarantine},
	}
}

// Hooks are integrator programs, each run directly (exec, no shell) with
// the documented arguments, bounded by Timeout. An empty path means "not
// configured".
type Hooks struct {
	// SetTime is run for set_device_time with one argument, the new local
	// time as "YYYY-MM-DD hh:mm:ss" in Device.Location (what `date -s`
	// takes). Unset: set_device_time answers -1.
	SetTime string `yaml:"set_device_time"`
	// DeviceIP is run when set_device_info changes device_ip, with the new
	// address as its argument, after the response was sent (its failure
	// is logged). Unset: the address is only stored.
	DeviceIP string `yaml:"device_ip"`
	// Message is run for ActionMessage with the text as its argument.
	// Unset: the message is only logged.
	Message string `yaml:"message"`
	// Restart is run for ActionRestart (no arguments). Unset: Run returns
	// ErrRestart.
	Restart string `yaml:"restart"`
	// Timeout bounds one hook run. Default 10 s.
	Timeout time.Duration `yaml:"timeout"`
}

// EventTypes are the command_type values of send_device_command events the
// terminal sends. command_value carries a short text (module name, detail).
type EventTypes struct {
	Started          int `yaml:"started"`            // default 1: the agent started
	ModuleFault      int `yaml:"module_fault"`       // default 2: a module stopped answering
	ModuleRecovered  int `yaml:"module_recovered"`   // default 3: a module is back
	OutboxNearlyFull int `yaml:"outbox_nearly_full"` // default 4: the outbox passed Upload.NearlyFull
	// DoorFault (default 5): a granted access whose lock could not be
	// driven; no access record is made. command_value names the person
	// and the error.
	DoorFault int `yaml:"door_fault"`
	// DatabaseRecovered (default 6): the database was damaged, moved aside
	// and what could be read salvaged; the value gives the counts
	// salvaged and lost, so the server can push the persons again.
	DatabaseRecovered int `yaml:"database_recovered"`
	// RecordsQuarantined (default 7): the server refused records so often
	// that they are quarantined; the value gives how many are.
	RecordsQuarantined int `yaml:"records_quarantined"`
	// PINLockout (default 8): too many wrong PINs; the keypad refuses
	// PINs for PIN.LockoutFor. The value gives the counts, never a PIN.
	PINLockout int `yaml:"pin_lockout"`
	// DoorHeldOpen (default 9) and DoorForced (default 10): the door
	// stayed open too long after a grant, or opened with none. When the
	// door closes the same type is sent again, its value starting
	// "closed".
	DoorHeldOpen int `yaml:"door_held_open"`
	DoorForced   int `yaml:"door_forced"`
	// Queue is how many events are kept while the link is down (oldest
	// dropped). Default 64.
	Queue int `yaml:"queue"`
}

// ModuleConfig tunes the module supervisor.
type ModuleConfig struct {
	// RetryMin and RetryMax bound the wait between probes of a faulty
	// module (exponential, full jitter). Default 1 s and 30 s.
	RetryMin time.Duration `yaml:"retry_min"`
	RetryMax time.Duration `yaml:"retry_max"`
	// OpTimeout bounds one module operation in resync and downloads
	// (store a template, enrol a face). Default 10 s.
	OpTimeout time.Duration `yaml:"op_timeout"`
}

// WithDefaults returns c with every zero field set to its documented
// default: the one place the agent's defaults live. New applies it.
func (c Config) WithDefaults() Config {
	d := &c.Device
	if d.InOutType == 0 {
		d.InOutType = 1
	}
	if d.DevicePort == 0 {
		d.DevicePort = 1545
	}
	if d.SoftwareVersion == "" {
		d.SoftwareVersion = "dev"
	}
	if d.Location == nil {
		d.Location = time.Local
	}
	l := &c.Link
	if l.Transport == "" {
		l.Transport = "tcp"
	}
	if l.Path == "" {
		l.Path = "/"
	}
	if l.KeepAlive == 0 {
		l.KeepAlive = 30 * time.Second
	}
	durDefault(&l.DialTimeout, 10*time.Second)
	durDefault(&l.BackoffMin, time.Second)
	durDefault(&l.BackoffMax, 60*time.Second)
	durDefault(&l.FallbackAfter, 5*time.Minute)
	durDefault(&l.CallTimeout, 30*time.Second)
	durDefault(&l.WriteTimeout, 60*time.Second)
	if l.UnansweredCalls == 0 {
		l.UnansweredCalls = 3
	}
	durDefault(&l.HandlerTimeout, 60*time.Second)
	durDefault(&l.Heartbeat.Interval, 30*time.Second)
	if l.Heartbeat.Mod != "" && l.ReadTimeout == 0 {
		l.ReadTimeout = 3 * l.Heartbeat.Interval
	}
	if l.MaxMessageSize == 0 {
		l.MaxMessageSize = 16 << 20
	}
	u := &c.Upload
	if u.Window == 0 {
		u.Window = 8
	}
	durDefault(&u.RetryMin, time.Second)
	durDefault(&u.RetryMax, 60*time.Second)
	if u.NearlyFull == 0 {
		u.NearlyFull = 0.8
	}
	durDefault(&u.QuarantineRetry, 15*time.Minute)
	a := &c.Access
	durDefault(&a.DoorPulse, 3*time.Second)
	durDefault(&a.DoorTimeout, 2*time.Second)
	durDefault(&a.RecordTimeout, time.Second)
	o := &a.OpenDoorTypes
	intDefault(&o.Card, 1)
	intDefault(&o.Face, 2)
	intDefault(&o.Fingerprint, 3)
	intDefault(&o.Remote, 4)
	intDefault(&o.Key, 5)
	intDefault(&o.ExitButton, 6)
	if c.Commands == nil {
		c.Commands = DefaultCommands()
	}
	durDefault(&c.Hooks.Timeout, 10*time.Second)
	e := &c.Events
	intDefault(&e.Started, 1)
	intDefault(&e.ModuleFault, 2)
	intDefault(&e.ModuleRecovered, 3)
	intDefault(&e.OutboxNearlyFull, 4)
	intDefault(&e.DoorFault, 5)
	intDefault(&e.DatabaseRecovered, 6)
	intDefault(&e.RecordsQuarantined, 7)
	intDefault(&e.PINLockout, 8)
	intDefault(&e.DoorHeldOpen, 9)
	intDefault(&e.DoorForced, 10)
	intDefault(&e.Queue, 64)
	m := &c.Modules
	durDefault(&m.RetryMin, time.Second)
	durDefault(&m.RetryMax, 30*time.Second)
	durDefault(&m.OpTimeout, 10*time.Second)
	c.terminalDefaults()
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

func durDefault(p *time.Duration, d time.Duration) {
	if *p == 0 {
		*p = d
	}
}

func intDefault(p *int, d int) {
	if *p == 0 {
		*p = d
	}
}

// FieldError is one invalid value of a Config. Field is its path from
// Config in Go names ("Link.Transport", "Link.AllowedPeers[1]",
// "Commands[7].Hook"); cmd/termagent turns it into the file's key by the
// yaml tags. It wraps ErrConfig.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return fmt.Sprintf("%v: %s: %s", ErrConfig, e.Field, e.Msg) }

// Unwrap returns ErrConfig.
func (e *FieldError) Unwrap() error { return ErrConfig }

// Validate reports every invalid value of c (after defaults), each as a
// *FieldError, joined (errors.Join); nil when there is none. New calls it;
// cmd calls it when it loads its file, to report every problem at once.
func (c Config) Validate() error {
	c = c.WithDefaults()
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	d := c.Device
	if d.InOutType != 1 && d.InOutType != 2 {
		bad("Device.InOutType", "%d is not 1 (in) or 2 (out)", d.InOutType)
	}
	if d.DeviceIP != "" && net.ParseIP(d.DeviceIP) == nil {
		bad("Device.DeviceIP", "%q is not an IP address", d.DeviceIP)
	}
	if d.DevicePort < 1 || d.DevicePort > 65535 {
		bad("Device.DevicePort", "%d is not a port (1..65535)", d.DevicePort)
	}
	l := c.Link
	if l.ServerAddress != "" {
		if _, _, err := splitHostPort(l.ServerAddress); err != nil {
			bad("Link.ServerAddress", "%v", err)
		}
	}
	switch l.Transport {
	case "tcp", "tls", "ws", "wss":
	default:
		bad("Link.Transport", "%q is not one of tcp, tls, ws, wss", l.Transport)
	}
	if !strings.HasPrefix(l.Path, "/") {
		bad("Link.Path", "%q does not start with /", l.Path)
	}
	if p := l.TLS.PinSHA256; p != "" {
		if b, err := hex.DecodeString(strings.NewReplacer(":", "", " ", "").Replace(p)); err != nil || len(b) != sha256.Size {
			bad("Link.TLS.PinSHA256", "%q is not 64 hex digits (a SHA-256)", p)
		}
	}
	if (l.TLS.CertFile == "") != (l.TLS.KeyFile == "") {
		bad("Link.TLS.CertFile", "the certificate and its key go together")
	}
	for _, f := range []struct{ field, path string }{
		{"Link.TLS.CAFile", l.TLS.CAFile}, {"Link.TLS.CertFile", l.TLS.CertFile}, {"Link.TLS.KeyFile", l.TLS.KeyFile},
	} {
		if f.path != "" && !filepath.IsAbs(f.path) {
			bad(f.field, "%q is not an absolute path", f.path)
		}
	}
	if l.BackoffMin < 0 || l.BackoffMax < l.BackoffMin {
		bad("Link.BackoffMax", "%v is less than the minimum %v", l.BackoffMax, l.BackoffMin)
	}
	if l.MaxMessageSize < 4096 || l.MaxMessageSize > 256<<20 {
		bad("Link.MaxMessageSize", "%d is outside 4096..268435456 bytes", l.MaxMessageSize)
	}
	if l.ListenHost != "" && net.ParseIP(l.ListenHost) == nil {
		bad("Link.ListenHost", "%q is not an IP address", l.ListenHost)
	}
	if l.Listen && len(l.AllowedPeers) == 0 {
		bad("Link.AllowedPeers", "required in listen mode: the addresses the server connects from")
	}
	for i, p := range l.AllowedPeers {
		if _, err := parsePeer(p); err != nil {
			bad(fmt.Sprintf("Link.AllowedPeers[%d]", i), "%q is not an IP address or CIDR", p)
		}
	}
	if l.Heartbeat.Interval < 0 {
		bad("Link.Heartbeat.Interval", "%v is negative", l.Heartbeat.Interval)
	}
	u := c.Upload
	if u.Window < 1 || u.Window > 1024 {
		bad("Upload.Window", "%d is outside 1..1024", u.Window)
	}
	if u.RetryMin < 0 || u.RetryMax < u.RetryMin {
		bad("Upload.RetryMax", "%v is less than the minimum %v", u.RetryMax, u.RetryMin)
	}
	if u.NearlyFull <= 0 || u.NearlyFull > 1 {
		bad("Upload.NearlyFull", "%v is outside (0, 1]", u.NearlyFull)
	}
	a := c.Access
	for _, v := range []struct {
		field string
		d     time.Duration
	}{{"Access.DoorPulse", a.DoorPulse}, {"Access.DoorTimeout", a.DoorTimeout}, {"Access.RecordTimeout", a.RecordTimeout}} {
		if v.d < 0 {
			bad(v.field, "%v is negative", v.d)
		}
	}
	t := a.OpenDoorTypes
	for _, v := range []struct {
		field string
		v     int
	}{{"Card", t.Card}, {"Face", t.Face}, {"Fingerprint", t.Fingerprint}, {"Remote", t.Remote}, {"Key", t.Key}} {
		if v.v < 0 {
			bad("Access.OpenDoorTypes."+v.field, "%d is negative", v.v)
		}
	}
	for _, typ := range slices.Sorted(maps.Keys(c.Commands)) {
		cmd := c.Commands[typ]
		field := fmt.Sprintf("Commands[%d]", typ)
		switch cmd.Action {
		case ActionOpenDoor, ActionMessage, ActionRestart, ActionReleaseQuarantine:
			if cmd.Hook != "" {
				bad(field+".Hook", "only with action hook")
			}
		case ActionHook:
			if !filepath.IsAbs(cmd.Hook) {
				bad(field+".Hook", "%q is not an absolute path to a program", cmd.Hook)
			}
		default:
			bad(field+".Action", "%q is not one of open_door, message, restart, release_quarantine, hook", cmd.Action)
		}
	}
	for _, h := range []struct{ field, path string }{
		{"Hooks.SetTime", c.Hooks.SetTime}, {"Hooks.DeviceIP", c.Hooks.DeviceIP},
		{"Hooks.Message", c.Hooks.Message}, {"Hooks.Restart", c.Hooks.Restart},
	} {
		if h.path != "" && !filepath.IsAbs(h.path) {
			bad(h.field, "%q is not an absolute path to a program", h.path)
		}
	}
	if c.Events.Queue < 1 || c.Events.Queue > 100000 {
		bad("Events.Queue", "%d is outside 1..100000", c.Events.Queue)
	}
	if m := c.Modules; m.RetryMin < 0 || m.RetryMax < m.RetryMin {
		bad("Modules.RetryMax", "%v is less than the minimum %v", m.RetryMax, m.RetryMin)
	}
	c.validateTerminal(bad)
	return errors.Join(errs...)
}

// parsePeer parses an AllowedPeers entry: an IP address or a CIDR prefix.
func parsePeer(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("allowed peer %q: %w", s, err)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("allowed peer %q: %w", s, err)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

package main

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"termagent/hal/card"
	"termagent/hal/door"
	"termagent/hal/face"
	"termagent/hal/fingerprint"
	"termagent/protocol"
	"termagent/store"
)

// Config is the whole configuration file. Every zero field means the default
// documented on it and in termagent.example.yaml; withDefaults fills them in,
// in one place. Durations are written with a unit (300ms, 3s, 5m). The
// sections the agent consumes mirror agent.Config field by field.
type Config struct {
	Server    ServerConfig          `yaml:"server"`
	Heartbeat HeartbeatConfig       `yaml:"heartbeat"`
	Store     StoreConfig           `yaml:"store"`
	Device    DeviceConfig          `yaml:"device"`
	HAL       HALConfig             `yaml:"hal"`
	Access    AccessConfig          `yaml:"access"`
	Upload    UploadConfig          `yaml:"upload"`
	Modules   ModulesConfig         `yaml:"modules"`
	Events    EventsConfig          `yaml:"events"`
	Commands  map[int]CommandConfig `yaml:"commands"`
	Hooks     HooksConfig           `yaml:"hooks"`
	Control   ControlConfig         `yaml:"control"`
	Log       LogConfig             `yaml:"log"`
}

// ServerConfig says how to reach the management server.
type ServerConfig struct {
	// Address is the server's host:port used until the server stores
	// another one with set_device_info (the stored settings win after the
	// first start). Required unless listen mode is on.
	Address string `yaml:"address"`
	// Transport is tcp (default), tls, ws or wss.
	Transport string `yaml:"transport"`
	// WSPath is the WebSocket request path for ws and wss; default "/".
	WSPath string `yaml:"ws_path"`
	// TLS configures tls and wss.
	TLS TLSConfig `yaml:"tls"`
	// DialTimeout bounds one connection attempt, handshakes included;
	// default 10s.
	DialTimeout time.Duration `yaml:"dial_timeout"`
	// KeepAlive is the TCP keepalive period; default 30s.
	KeepAlive time.Duration `yaml:"keepalive"`
	// BackoffMin and BackoffMax bound the reconnect delay (exponential
	// with full jitter, forever); defaults 1s and 60s.
	BackoffMin time.Duration `yaml:"backoff_min"`
	BackoffMax time.Duration `yaml:"backoff_max"`
	// FallbackAfter is how long a server moved to by set_device_info may
	// stay unreachable before the terminal returns to the previous one;
	// default 5m.
	FallbackAfter time.Duration `yaml:"fallback_after"`
	// ReadTimeout drops a link on which nothing arrived for this long
	// (a half-open connection); default 3 heartbeat intervals when the
	// heartbeat is on, else 0 (off; TCP keepalive alone).
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// CallTimeout bounds one request to the server, write to response;
	// default 30s.
	CallTimeout time.Duration `yaml:"call_timeout"`
	// HandlerTimeout bounds the handling of one server request; default 60s.
	HandlerTimeout time.Duration `yaml:"handler_timeout"`
	// MaxMessage is the largest message accepted, in bytes; default
	// 16777216 (16 MiB).
	MaxMessage int `yaml:"max_message"`
	// Listen turns on listen mode: the server connects to the terminal.
	Listen ListenConfig `yaml:"listen"`
}

// TLSConfig configures the tls and wss transports.
type TLSConfig struct {
	// CAFile is a PEM bundle of the CAs the server's certificate must chain
	// to; default: the system roots.
	CAFile string `yaml:"ca_file"`
	// PinSHA256 is the hex SHA-256 of the server certificate (DER); when
	// set, the certificate must match it.
	PinSHA256 string `yaml:"pin_sha256"`
	// CertFile and KeyFile (PEM, both or neither) are the terminal's
	// client certificate when it dials; in listen mode they are its server
	// certificate, and CAFile then names the CA that signs the server's
	// client certificate.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName overrides the name checked in the server's certificate;
	// default: the host of server.address.
	ServerName string `yaml:"server_name"`
}

// ListenConfig configures listen mode.
type ListenConfig struct {
	// Enabled makes the terminal accept the server's connection on
	// DevicePort instead of dialling.
	Enabled bool `yaml:"enabled"`
	// Host is the local address to bind; default "" (every interface).
	Host string `yaml:"host"`
	// DevicePort is the first device_port (the server may change it);
	// default 1545.
	DevicePort int `yaml:"device_port"`
	// Allow lists the addresses (IP or CIDR) the server may connect
	// from; required in listen mode.
	Allow []string `yaml:"allow"`
}

// HeartbeatConfig is the optional device → server heartbeat.
type HeartbeatConfig struct {
	// Mod is the heartbeat request's mod; empty (default) turns it off.
	Mod string `yaml:"mod"`
	// Interval between heartbeats; default 30s.
	Interval time.Duration `yaml:"interval"`
}

// StoreConfig is the local database.
type StoreConfig struct {
	// Path of the SQLite file (created 0600); default
	// /var/lib/termagent/termagent.db.
	Path string `yaml:"path"`
	// OutboxCapacity is the most records kept unsent; default 100000.
	OutboxCapacity int `yaml:"outbox_capacity"`
	// WhenFull is what a new record does when the outbox is full:
	// drop_oldest (default: the oldest record is dropped and counted) or
	// refuse (the new record is not kept).
	WhenFull string `yaml:"when_full"`
}

// DeviceConfig describes the terminal.
type DeviceConfig struct {
	// InOutType is the in_out_type of every record (1 in, 2 out); default 1.
	InOutType int `yaml:"in_out_type"`
	// CommunityCode is the first community_code; the server may change it.
	CommunityCode string `yaml:"community_code"`
	// Address is the first free-text address; the server may change it.
	Address string `yaml:"address"`
	// HardwareVersion is reported in device_info.
	HardwareVersion string `yaml:"hardware_version"`
	// DeviceIP is the device_ip reported when there is no live
	// connection; default "".
	DeviceIP string `yaml:"device_ip"`
	// TimeZone is the IANA zone of record times (Asia/Shanghai); default:
	// the system's.
	TimeZone string `yaml:"time_zone"`
}

// HALConfig names the hardware drivers.
type HALConfig struct {
	Card        CardConfig        `yaml:"card"`
	Fingerprint FingerprintConfig `yaml:"fingerprint"`
	Face        FaceConfig        `yaml:"face"`
	Door        DoorConfig        `yaml:"door"`
}

// CardConfig is the card reader.
type CardConfig struct {
	// Driver: none (default), rdm6300, line or gwiot7941.
	Driver string `yaml:"driver"`
	// Port is the serial device; required with a driver.
	Port string `yaml:"port"`
	// Baud in bits/s; default 9600.
	Baud int `yaml:"baud"`
	// Format turns the card's identifier into card_number.
	Format CardFormatConfig `yaml:"format"`
	// Line configures the line driver.
	Line CardLineConfig `yaml:"line"`
	// RepeatWindow: a read of the same card within this time of its
	// previous read is a repeat and is dropped; default 1s.
	RepeatWindow time.Duration `yaml:"repeat_window"`
}

// CardLineConfig is hal/card.Line: what a line reader's numbers look like.
type CardLineConfig struct {
	// Hex says the digits are hexadecimal; default false (decimal).
	Hex bool `yaml:"hex"`
	// MinDigits and MaxDigits bound an accepted number; 0 = 1 and the
	// longest that fits (19 decimal, 32 hex).
	MinDigits int `yaml:"min_digits"`
	MaxDigits int `yaml:"max_digits"`
}

// CardFormatConfig is hal/card.Format: how a card identifier is written as
// the server's card_number.
type CardFormatConfig struct {
	// Style: dec (default: decimal of the low Bytes bytes), hex, w26
	// (Wiegand-26 facility code and card number, 3+5 digits) or text (the
	// line as a line reader sent it).
	Style string `yaml:"style"`
	// Width is the minimum number of digits, zero padded; 0 = the style's
	// default (dec 10, hex 2 per byte, text none).
	Width int `yaml:"width"`
	// Bytes is how many low-order bytes of the identifier are used; 0 = the
	// style's default (dec 4, hex all, w26 3).
	Bytes int `yaml:"bytes"`
	// ReverseBytes takes the identifier least significant byte first.
	ReverseBytes bool `yaml:"reverse_bytes"`
	// Separator goes between facility code and card number (w26).
	Separator string `yaml:"separator"`
	// Lower writes hex digits in lower case.
	Lower bool `yaml:"lower"`
}

// FingerprintConfig is the fingerprint module.
type FingerprintConfig struct {
	// Driver: none (default) or r30x.
	Driver string `yaml:"driver"`
	// Port is the serial device; required with a driver.
	Port string `yaml:"port"`
	// Baud in bits/s; default 57600.
	Baud int `yaml:"baud"`
	// Address is the module's 32-bit address; default 0xFFFFFFFF.
	Address uint32 `yaml:"address"`
	// Password is the module's 32-bit password; default 0.
	Password uint32 `yaml:"password"`
	// Capacity is the number of template slots, used when the module does
	// not report it (R308); default 200.
	Capacity int `yaml:"capacity"`
	// PollInterval is the pause between finger polls; default 150ms.
	PollInterval time.Duration `yaml:"poll_interval"`
}

// FaceConfig is the face module.
type FaceConfig struct {
	// Driver: none (default) or fm22x.
	Driver string `yaml:"driver"`
	// Port is the serial device; required with a driver.
	Port string `yaml:"port"`
	// Baud in bits/s; default 115200.
	Baud int `yaml:"baud"`
	// VerifySeconds is the module-side timeout of one recognition, 1..255;
	// default 3. It bounds how long other commands wait.
	VerifySeconds int `yaml:"verify_seconds"`
	// PhotoEnrollMsgID is the firmware's enrol-from-photo message id (0xF7
	// on the builds seen); default 0: the module cannot enrol from a photo
	// and downloaded faces are stored only.
	PhotoEnrollMsgID uint8 `yaml:"photo_enroll_msg_id"`
	// PhotoChunk is the JPEG bytes per enrolment packet, 1..4094; default 246.
	PhotoChunk int `yaml:"photo_chunk"`
	// MaxPhoto bounds an enrolled photo, in bytes; default 524288 (512 KiB).
	MaxPhoto int `yaml:"max_photo"`
}

// DoorConfig is the lock relay and the door's inputs.
type DoorConfig struct {
	// Driver: none (default: no relay), gpio (GPIO character device) or
	// lcus (LCUS USB relay board on a serial port).
	Driver string `yaml:"driver"`
	// Pulse is how long a grant or a remote open releases the lock;
	// default 3s.
	Pulse time.Duration `yaml:"pulse"`
	// Port (lcus) is the relay board's serial device.
	Port string `yaml:"port"`
	// Baud (lcus) in bits/s; default 9600.
	Baud int `yaml:"baud"`
	// Channel (lcus) is the relay number on the board, from 1; default 1.
	Channel int `yaml:"channel"`
	// Chip (gpio) is the GPIO chip: name (gpiochip0), label or path;
	// default "": the first chip.
	Chip string `yaml:"chip"`
	// Line (gpio) is the relay's line, by name or offset; required with gpio.
	Line string `yaml:"line"`
	// ActiveLow (gpio) drives the relay line low to unlock.
	ActiveLow bool `yaml:"active_low"`
	// Sensor (gpio) is the door-position switch; empty line: none.
	Sensor InputConfig `yaml:"sensor"`
	// ExitButton (gpio) is the request-to-exit button; empty line: none.
	ExitButton InputConfig `yaml:"exit_button"`
	// Debounce (gpio) is how long an input must hold a new level; default
	// 30ms.
	Debounce time.Duration `yaml:"debounce"`
}

// InputConfig is one GPIO input.
type InputConfig struct {
	// Line is the input's line, by name or offset; empty: not wired.
	Line string `yaml:"line"`
	// ActiveLow reads the input as active when the line is low (a contact
	// to ground with a pull-up).
	ActiveLow bool `yaml:"active_low"`
}

// AccessConfig shapes access decisions and records.
type AccessConfig struct {
	// RecordDenied also records (and uploads) unknown cards, faces and
	// fingers; default false.
	RecordDenied bool `yaml:"record_denied"`
	// OpenDoorType gives the open_door_type value of each way in.
	OpenDoorType OpenDoorTypeConfig `yaml:"open_door_type"`
}

// OpenDoorTypeConfig is the open_door_type value per way in.
type OpenDoorTypeConfig struct {
	Card        int `yaml:"card"`        // default 1
	Face        int `yaml:"face"`        // default 2
	Fingerprint int `yaml:"fingerprint"` // default 3
	Remote      int `yaml:"remote"`      // default 4
	Key         int `yaml:"key"`         // default 5
}

// UploadConfig shapes the outbox drain.
type UploadConfig struct {
	// Window is how many uploads may be in flight; 1 keeps strict order;
	// default 8.
	Window int `yaml:"window"`
	// MaxAttempts quarantines a record after this many non-zero codes;
	// default 10.
	MaxAttempts int `yaml:"max_attempts"`
	// RetryMin and RetryMax pace retries after errors; defaults 1s, 60s.
	RetryMin time.Duration `yaml:"retry_min"`
	RetryMax time.Duration `yaml:"retry_max"`
	// NearlyFull is the outbox fill ratio (0..1] that sends the "outbox
	// nearly full" event; default 0.8.
	NearlyFull float64 `yaml:"nearly_full"`
}

// ModulesConfig tunes the module supervisor.
type ModulesConfig struct {
	// RetryMin and RetryMax pace the probes of a faulty module; defaults
	// 1s and 30s.
	RetryMin time.Duration `yaml:"retry_min"`
	RetryMax time.Duration `yaml:"retry_max"`
	// OpTimeout bounds one module operation; default 10s.
	OpTimeout time.Duration `yaml:"op_timeout"`
}

// EventsConfig gives the command_type of each send_device_command event.
type EventsConfig struct {
	Started          int `yaml:"started"`            // default 1
	ModuleFault      int `yaml:"module_fault"`       // default 2
	ModuleRecovered  int `yaml:"module_recovered"`   // default 3
	OutboxNearlyFull int `yaml:"outbox_nearly_full"` // default 4
	// Queue is how many events wait while the link is down; default 64.
	Queue int `yaml:"queue"`
}

// CommandConfig maps one send_user_command command_type to an action.
type CommandConfig struct {
	// Action: open_door, message, restart, release_quarantine or hook.
	Action string `yaml:"action"`
	// Hook (action hook) is the program run with command_value as its
	// one argument, never through a shell. Absolute path.
	Hook string `yaml:"hook"`
}

// HooksConfig names the integrator's programs for what the agent does not
// do itself. Each runs directly (no shell), bounded by Timeout.
type HooksConfig struct {
	// SetDeviceTime is run with the time as "YYYY-MM-DD hh:mm:ss"; empty:
	// set_device_time answers -1.
	SetDeviceTime string `yaml:"set_device_time"`
	// DeviceIP is run with the new device_ip; empty: only stored.
	DeviceIP string `yaml:"device_ip"`
	// Message is run with a message's text; empty: only logged.
	Message string `yaml:"message"`
	// Restart is run (no arguments) for a restart command; empty: the
	// daemon exits with status 75 so that its supervisor restarts it.
	Restart string `yaml:"restart"`
	// Timeout bounds one hook run; default 10s.
	Timeout time.Duration `yaml:"timeout"`
}

// ControlConfig is the local control socket `termagent status` reads.
type ControlConfig struct {
	// Socket is the unix socket's path (created 0600); default
	// /run/termagent/termagent.sock.
	Socket string `yaml:"socket"`
}

// LogConfig shapes the daemon's log on stderr.
type LogConfig struct {
	// Level: debug, info (default), warn or error.
	Level string `yaml:"level"`
	// Format: json (default) or console.
	Format string `yaml:"format"`
}

const driverNone = "none"

// withDefaults returns c with every zero field set to its default. It is
// the one place defaults are filled in: a part's exported default is used
// where it has one; the agent's (unexported) ones are the values
// agent.Config documents. TestExampleConfigDocumentsTheDefaults keeps the
// example file in step with them.
func (c Config) withDefaults() Config {
	s := &c.Server
	setDefault(&s.Transport, "tcp")
	setDefault(&s.WSPath, protocol.DefaultWSPath)
	setDefault(&s.DialTimeout, 10*time.Second)
	setDefault(&s.KeepAlive, 30*time.Second)
	setDefault(&s.BackoffMin, time.Second)
	setDefault(&s.BackoffMax, 60*time.Second)
	setDefault(&s.FallbackAfter, 5*time.Minute)
	setDefault(&s.CallTimeout, 30*time.Second)
	setDefault(&s.HandlerTimeout, 60*time.Second)
	setDefault(&s.MaxMessage, protocol.DefaultMaxMessageSize)
	setDefault(&s.Listen.DevicePort, 1545)
	setDefault(&c.Heartbeat.Interval, 30*time.Second)
	if c.Heartbeat.Mod != "" {
		setDefault(&s.ReadTimeout, 3*c.Heartbeat.Interval)
	}

	setDefault(&c.Store.Path, "/var/lib/termagent/termagent.db")
	setDefault(&c.Store.OutboxCapacity, store.DefaultOutboxCapacity)
	setDefault(&c.Store.WhenFull, "drop_oldest")
	setDefault(&c.Device.InOutType, 1)

	h := &c.HAL
	setDefault(&h.Card.Driver, driverNone)
	setDefault(&h.Card.Baud, 9600)
	setDefault(&h.Card.Format.Style, "dec")
	setDefault(&h.Card.RepeatWindow, card.DefaultRepeatWindow)
	setDefault(&h.Fingerprint.Driver, driverNone)
	setDefault(&h.Fingerprint.Baud, fingerprint.DefaultBaud)
	setDefault(&h.Fingerprint.Address, 0xFFFFFFFF)
	setDefault(&h.Fingerprint.Capacity, fingerprint.DefaultCapacity)
	setDefault(&h.Fingerprint.PollInterval, fingerprint.DefaultPollInterval)
	setDefault(&h.Face.Driver, driverNone)
	setDefault(&h.Face.Baud, face.DefaultBaud)
	setDefault(&h.Face.VerifySeconds, face.DefaultVerifySeconds)
	setDefault(&h.Face.PhotoChunk, face.DefaultPhotoChunk)
	setDefault(&h.Face.MaxPhoto, face.DefaultMaxPhoto)
	setDefault(&h.Door.Driver, driverNone)
	setDefault(&h.Door.Pulse, door.DefaultPulse)
	setDefault(&h.Door.Baud, 9600)
	setDefault(&h.Door.Channel, 1)
	setDefault(&h.Door.Debounce, door.DefaultDebounce)

	t := &c.Access.OpenDoorType
	setDefault(&t.Card, 1)
	setDefault(&t.Face, 2)
	setDefault(&t.Fingerprint, 3)
	setDefault(&t.Remote, 4)
	setDefault(&t.Key, 5)

	u := &c.Upload
	setDefault(&u.Window, 8)
	setDefault(&u.MaxAttempts, store.DefaultMaxAttempts)
	setDefault(&u.RetryMin, time.Second)
	setDefault(&u.RetryMax, 60*time.Second)
	setDefault(&u.NearlyFull, 0.8)
	m := &c.Modules
	setDefault(&m.RetryMin, time.Second)
	setDefault(&m.RetryMax, 30*time.Second)
	setDefault(&m.OpTimeout, 10*time.Second)
	e := &c.Events
	setDefault(&e.Started, 1)
	setDefault(&e.ModuleFault, 2)
	setDefault(&e.ModuleRecovered, 3)
	setDefault(&e.OutboxNearlyFull, 4)
	setDefault(&e.Queue, 64)
	if c.Commands == nil {
		c.Commands = map[int]CommandConfig{1: {Action: "open_door"}, 2: {Action: "message"}, 3: {Action: "restart"}}
	}
	setDefault(&c.Hooks.Timeout, 10*time.Second)
	setDefault(&c.Control.Socket, "/run/termagent/termagent.sock")
	setDefault(&c.Log.Level, "info")
	setDefault(&c.Log.Format, "json")
	return c
}

func setDefault[T comparable](p *T, def T) {
	var zero T
	if *p == zero {
		*p = def
	}
}

// loadConfig reads, decodes, defaults and validates the file at path.
// Several problems come back as configErrors, one per line.
func loadConfig(path string) (Config, error) {
	c, _, err := loadConfigLines(path)
	return c, err
}

// loadConfigLines is loadConfig that also returns the line of each key
// path set in the file. When the file decodes but does not validate it
// returns the defaulted configuration with the error.
func loadConfigLines(path string) (Config, map[string]int, error) {
	f, err := os.Open(path)
	if err != nil {
		return Config{}, nil, fmt.Errorf("open config: %w", err)
	}
	defer f.Close()
	var c Config
	lines, err := decodeStrict(f, &c)
	if err != nil {
		return Config{}, nil, err
	}
	c = c.withDefaults()
	if errs := c.validate(); len(errs) > 0 {
		for _, e := range errs {
			e.Line = lineOf(lines, e.Path)
		}
		// c goes back too: check-config also checks it against this machine.
		if len(errs) == 1 {
			return c, lines, errs[0]
		}
		return c, lines, configErrors(errs)
	}
	return c, lines, nil
}

// lineOf finds the line of path, or of its nearest parent in the file.
func lineOf(lines map[string]int, path string) int {
	for path != "" {
		if l, ok := lines[path]; ok {
			return l
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return 0
}

// validate checks the defaulted configuration and returns every problem,
// each with its key path (the caller adds the lines), in file order of the
// checks; nil when there is none.
func (c Config) validate() []*configError {
	var errs []*configError
	bad := func(path, format string, args ...any) {
		errs = append(errs, &configError{Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	s := c.Server
	switch {
	case s.Address == "" && !s.Listen.Enabled:
		bad("server.address", "required (host:port) unless server.listen.enabled is true")
	case s.Address != "":
		if _, err := hostPort(s.Address); err != nil {
			bad("server.address", "%q: %v", s.Address, err)
		}
	}
	if !oneOf(s.Transport, "tcp", "tls", "ws", "wss") {
		bad("server.transport", "%q is not one of tcp, tls, ws, wss", s.Transport)
	}
	if !strings.HasPrefix(s.WSPath, "/") {
		bad("server.ws_path", "%q does not start with /", s.WSPath)
	}
	if p := s.TLS.PinSHA256; p != "" {
		if b, err := hex.DecodeString(strings.NewReplacer(":", "", " ", "").Replace(p)); err != nil || len(b) != 32 {
			bad("server.tls.pin_sha256", "%q is not 64 hex digits (a SHA-256)", p)
		}
	}
	if (s.TLS.CertFile == "") != (s.TLS.KeyFile == "") {
		bad("server.tls.cert_file", "cert_file and key_file go together")
	}
	for _, f := range []struct{ path, file string }{
		{"server.tls.ca_file", s.TLS.CAFile}, {"server.tls.cert_file", s.TLS.CertFile}, {"server.tls.key_file", s.TLS.KeyFile},
	} {
		if f.file != "" && !strings.HasPrefix(f.file, "/") {
			bad(f.path, "%q is not an absolute path", f.file)
		}
	}
	if s.BackoffMax < s.BackoffMin {
		bad("server.backoff_max", "%v is less than backoff_min %v", s.BackoffMax, s.BackoffMin)
	}
	if s.MaxMessage < 4096 || s.MaxMessage > 256<<20 {
		bad("server.max_message", "%d is outside 4096..268435456 bytes", s.MaxMessage)
	}
	l := s.Listen
	if l.DevicePort < 1 || l.DevicePort > 65535 {
		bad("server.listen.device_port", "%d is not a port (1..65535)", l.DevicePort)
	}
	if l.Host != "" && net.ParseIP(l.Host) == nil {
		bad("server.listen.host", "%q is not an IP address", l.Host)
	}
	if l.Enabled && len(l.Allow) == 0 {
		bad("server.listen.allow", "required in listen mode: the addresses the server connects from")
	}
	for i, a := range l.Allow {
		if _, err := parseAllow(a); err != nil {
			bad(fmt.Sprintf("server.listen.allow[%d]", i), "%q is not an IP address or CIDR", a)
		}
	}
	if c.Heartbeat.Interval < time.Second {
		bad("heartbeat.interval", "%v is less than 1s", c.Heartbeat.Interval)
	}

	if c.Store.OutboxCapacity < 1 {
		bad("store.outbox_capacity", "%d is not positive", c.Store.OutboxCapacity)
	}
	if !oneOf(c.Store.WhenFull, "drop_oldest", "refuse") {
		bad("store.when_full", "%q is not drop_oldest or refuse", c.Store.WhenFull)
	}
	if t := c.Device.InOutType; t != 1 && t != 2 {
		bad("device.in_out_type", "%d is not 1 (in) or 2 (out)", t)
	}
	if ip := c.Device.DeviceIP; ip != "" && net.ParseIP(ip) == nil {
		bad("device.device_ip", "%q is not an IP address", ip)
	}
	if _, err := loadLocation(c.Device.TimeZone); err != nil {
		bad("device.time_zone", "%q: %v", c.Device.TimeZone, err)
	}

	h := c.HAL
	if !oneOf(h.Card.Driver, driverNone, "rdm6300", "line", "gwiot7941") {
		bad("hal.card.driver", "%q is not one of none, rdm6300, line, gwiot7941", h.Card.Driver)
	}
	if l := h.Card.Line; l.MinDigits < 0 || l.MaxDigits < 0 || l.MaxDigits > 0 && l.MaxDigits < l.MinDigits {
		bad("hal.card.line", "digits %d..%d is not a range", l.MinDigits, l.MaxDigits)
	}
	if err := h.Card.Format.card().Validate(); err != nil {
		bad("hal.card.format", "%v", strings.TrimPrefix(err.Error(), "card format: "))
	}
	if !oneOf(h.Fingerprint.Driver, driverNone, "r30x") {
		bad("hal.fingerprint.driver", "%q is not one of none, r30x", h.Fingerprint.Driver)
	}
	if !oneOf(h.Face.Driver, driverNone, "fm22x") {
		bad("hal.face.driver", "%q is not one of none, fm22x", h.Face.Driver)
	}
	if !oneOf(h.Door.Driver, driverNone, "gpio", "lcus") {
		bad("hal.door.driver", "%q is not one of none, gpio, lcus", h.Door.Driver)
	}
	for _, sp := range []struct {
		name, driver, port string
		baud               int
	}{
		{"hal.card", h.Card.Driver, h.Card.Port, h.Card.Baud},
		{"hal.fingerprint", h.Fingerprint.Driver, h.Fingerprint.Port, h.Fingerprint.Baud},
		{"hal.face", h.Face.Driver, h.Face.Port, h.Face.Baud},
	} {
		if sp.driver != driverNone && sp.port == "" {
			bad(sp.name+".port", "required with driver %s", sp.driver)
		}
		if !validBaud(sp.baud) {
			bad(sp.name+".baud", "%d is not a serial speed", sp.baud)
		}
	}
	if c := h.Fingerprint.Capacity; c < 1 || c > 0xFFFF {
		bad("hal.fingerprint.capacity", "%d is outside 1..65535", c)
	}
	if v := h.Face.VerifySeconds; v < 1 || v > 255 {
		bad("hal.face.verify_seconds", "%d is outside 1..255", v)
	}
	if v := h.Face.PhotoChunk; v < 1 || v > 4094 {
		bad("hal.face.photo_chunk", "%d is outside 1..4094", v)
	}
	if v := h.Face.MaxPhoto; v < 1024 || v > 16<<20 {
		bad("hal.face.max_photo", "%d is outside 1024..16777216 bytes", v)
	}
	d := h.Door
	if d.Pulse < 100*time.Millisecond || d.Pulse > 60*time.Second {
		bad("hal.door.pulse", "%v is outside 100ms..60s", d.Pulse)
	}
	switch d.Driver {
	case "lcus":
		if d.Port == "" {
			bad("hal.door.port", "required with driver lcus")
		}
		if !validBaud(d.Baud) {
			bad("hal.door.baud", "%d is not a serial speed", d.Baud)
		}
		if d.Channel < 1 || d.Channel > 8 {
			bad("hal.door.channel", "%d is outside 1..8", d.Channel)
		}
	case "gpio":
		if d.Line == "" {
			bad("hal.door.line", "required with driver gpio")
		}
	}

	// Two drivers on one serial port would each read the other's frames.
	ports := map[string]string{}
	for _, p := range []struct{ key, driver, port string }{
		{"hal.card.port", h.Card.Driver, h.Card.Port},
		{"hal.fingerprint.port", h.Fingerprint.Driver, h.Fingerprint.Port},
		{"hal.face.port", h.Face.Driver, h.Face.Port},
		{"hal.door.port", d.Driver, d.Port},
	} {
		if p.driver == driverNone || p.driver == "gpio" || p.port == "" {
			continue
		}
		port := filepath.Clean(p.port)
		if first, ok := ports[port]; ok {
			bad(p.key, "%q is also %s: one serial port, one device", p.port, first)
			continue
		}
		ports[port] = p.key
	}

	t := c.Access.OpenDoorType
	for _, v := range []struct {
		key string
		v   int
	}{{"card", t.Card}, {"face", t.Face}, {"fingerprint", t.Fingerprint}, {"remote", t.Remote}, {"key", t.Key}} {
		if v.v < 0 {
			bad("access.open_door_type."+v.key, "%d is negative", v.v)
		}
	}

	u := c.Upload
	if u.Window < 1 || u.Window > 1024 {
		bad("upload.window", "%d is outside 1..1024", u.Window)
	}
	if u.MaxAttempts < 1 {
		bad("upload.max_attempts", "%d is not positive", u.MaxAttempts)
	}
	if u.RetryMax < u.RetryMin {
		bad("upload.retry_max", "%v is less than retry_min %v", u.RetryMax, u.RetryMin)
	}
	if u.NearlyFull <= 0 || u.NearlyFull > 1 {
		bad("upload.nearly_full", "%v is outside (0, 1]", u.NearlyFull)
	}
	if c.Modules.RetryMax < c.Modules.RetryMin {
		bad("modules.retry_max", "%v is less than retry_min %v", c.Modules.RetryMax, c.Modules.RetryMin)
	}
	if c.Events.Queue < 1 || c.Events.Queue > 100000 {
		bad("events.queue", "%d is outside 1..100000", c.Events.Queue)
	}

	for _, typ := range slices.Sorted(maps.Keys(c.Commands)) {
		cmd := c.Commands[typ]
		path := "commands." + strconv.Itoa(typ)
		switch cmd.Action {
		case "open_door", "message", "restart", "release_quarantine":
			if cmd.Hook != "" {
				bad(path+".hook", "only with action hook")
			}
		case "hook":
			if !strings.HasPrefix(cmd.Hook, "/") {
				bad(path+".hook", "%q is not an absolute path to a program", cmd.Hook)
			}
		default:
			bad(path+".action", "%q is not one of open_door, message, restart, release_quarantine, hook", cmd.Action)
		}
	}
	for _, h := range []struct{ key, hook string }{
		{"set_device_time", c.Hooks.SetDeviceTime}, {"device_ip", c.Hooks.DeviceIP},
		{"message", c.Hooks.Message}, {"restart", c.Hooks.Restart},
	} {
		if h.hook != "" && !strings.HasPrefix(h.hook, "/") {
			bad("hooks."+h.key, "%q is not an absolute path to a program", h.hook)
		}
	}
	if !strings.HasPrefix(c.Control.Socket, "/") {
		bad("control.socket", "%q is not an absolute path", c.Control.Socket)
	}
	if !oneOf(c.Log.Level, "debug", "info", "warn", "error") {
		bad("log.level", "%q is not one of debug, info, warn, error", c.Log.Level)
	}
	if !oneOf(c.Log.Format, "json", "console") {
		bad("log.format", "%q is not json or console", c.Log.Format)
	}
	return errs
}

// configErrors is every problem validate found, one per line.
type configErrors []*configError

func (es configErrors) Error() string {
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// Unwrap lets errors.As find each *configError.
func (es configErrors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// machineErrors lists what run would refuse on this machine although the
// file is valid: a database or control socket directory this user cannot
// create or write (run creates them, 0700, when missing).
func (c Config) machineErrors() []*configError {
	var errs []*configError
	for _, f := range []struct{ key, path string }{
		{"store.path", c.Store.Path}, {"control.socket", c.Control.Socket},
	} {
		if f.path == "" {
			continue
		}
		if err := dirWritable(filepath.Dir(f.path)); err != nil {
			errs = append(errs, &configError{Path: f.key, Msg: fmt.Sprintf("%q: %v (user id %d; choose a directory this user can write)", f.path, err, os.Getuid())})
		}
	}
	return errs
}

// dirWritable reports why this process could not create files in dir,
// creating dir and its missing parents first if need be; nil if it could.
func dirWritable(dir string) error {
	d := dir
	for {
		fi, err := os.Stat(d)
		if err == nil {
			if !fi.IsDir() {
				return fmt.Errorf("%s is not a directory", d)
			}
			if err := unix.Access(d, unix.W_OK|unix.X_OK); err != nil {
				if d == dir {
					return fmt.Errorf("directory %s is not writable: %w", d, err)
				}
				return fmt.Errorf("cannot create %s: %s is not writable: %w", dir, d, err)
			}
			return nil
		}
		if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, unix.ENOTDIR) {
			return err
		}
		parent := filepath.Dir(d)
		if parent == d {
			return err
		}
		d = parent
	}
}

func oneOf(v string, allowed ...string) bool {
	for _, a := range allowed {
		if v == a {
			return true
		}
	}
	return false
}

func validBaud(b int) bool {
	switch b {
	case 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600:
		return true
	}
	return false
}

// hostPort checks a host:port and returns the port.
func hostPort(addr string) (int, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, err
	}
	if host == "" {
		return 0, errors.New("no host")
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 {
		return 0, fmt.Errorf("port %q is not 1..65535", port)
	}
	return p, nil
}

// parseAllow reads an IP address or a CIDR prefix.
func parseAllow(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

// loadLocation is time.LoadLocation with "" meaning the system's zone.
func loadLocation(name string) (*time.Location, error) {
	if name == "" {
		return time.Local, nil
	}
	return time.LoadLocation(name)
}

// card returns the hal/card format.
func (f CardFormatConfig) card() card.Format {
	return card.Format{
		Style:        card.Style(f.Style),
		Width:        f.Width,
		Bytes:        f.Bytes,
		ReverseBytes: f.ReverseBytes,
		Separator:    f.Separator,
		Lower:        f.Lower,
	}
}

// warnings lists what looks wrong on this machine but may be right on the
// terminal the file is for: programs and files that do not exist or cannot
// be run, serial ports that are missing. check-config prints them; run
// logs them.
func (c Config) warnings() []string {
	var out []string
	check := func(key, path string, exec bool) {
		if path == "" {
			return
		}
		fi, err := os.Stat(path)
		switch {
		case err != nil:
			out = append(out, fmt.Sprintf("%s: %v", key, err))
		case exec && (fi.IsDir() || fi.Mode().Perm()&0o111 == 0):
			out = append(out, fmt.Sprintf("%s: %s is not an executable program", key, path))
		}
	}
	check("server.tls.ca_file", c.Server.TLS.CAFile, false)
	check("server.tls.cert_file", c.Server.TLS.CertFile, false)
	check("server.tls.key_file", c.Server.TLS.KeyFile, false)
	check("hooks.set_device_time", c.Hooks.SetDeviceTime, true)
	check("hooks.device_ip", c.Hooks.DeviceIP, true)
	check("hooks.message", c.Hooks.Message, true)
	check("hooks.restart", c.Hooks.Restart, true)
	for _, typ := range slices.Sorted(maps.Keys(c.Commands)) {
		check(fmt.Sprintf("commands.%d.hook", typ), c.Commands[typ].Hook, true)
	}
	h := c.HAL
	for _, p := range []struct{ key, driver, port string }{
		{"hal.card.port", h.Card.Driver, h.Card.Port},
		{"hal.fingerprint.port", h.Fingerprint.Driver, h.Fingerprint.Port},
		{"hal.face.port", h.Face.Driver, h.Face.Port},
	} {
		if p.driver != driverNone {
			check(p.key, p.port, false)
		}
	}
	if h.Door.Driver == "lcus" {
		check("hal.door.port", h.Door.Port, false)
	}
	return out
}

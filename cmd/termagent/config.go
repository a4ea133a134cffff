package main

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"termagent/agent"
	"termagent/hal/card"
	"termagent/hal/door"
	"termagent/hal/evdev"
	"termagent/hal/face"
	"termagent/hal/feedback"
	"termagent/hal/fingerprint"
	"termagent/hal/keypad"
	"termagent/hal/wiegand"
	"termagent/store"
)

// Config is the whole configuration file. Each section decodes straight
// into the configuration type of the part it configures, through the yaml
// tags on those types (agent.LinkConfig, card.Config, door.Config...): a
// key lives in one struct, and its default in that part's WithDefaults
// (agent.Config.WithDefaults, card.Config.WithDefaults, ...), applied by
// the part itself. The few cmd types here only add what the file arranges
// differently from the parts (server.listen, device.time_zone, the module
// drivers' "none") and the sections only cmd uses (store, control, log);
// agentConfig maps them. The `agent` tags give the agent field a key
// configures, so that the agent's validation errors name the file's key.
// Durations are written with a unit (300ms, 3s, 5m).
type Config struct {
	Server    ServerConfig          `yaml:"server" agent:"Link"`
	Heartbeat agent.HeartbeatConfig `yaml:"heartbeat" agent:"Link.Heartbeat"`
	Store     StoreConfig           `yaml:"store"`
	Device    DeviceConfig          `yaml:"device" agent:"Device"`
	HAL       HALConfig             `yaml:"hal"`
	Access    agent.AccessConfig    `yaml:"access" agent:"Access"`
	Upload    UploadConfig          `yaml:"upload" agent:"Upload"`
	Modules   agent.ModuleConfig    `yaml:"modules" agent:"Modules"`
	Events    agent.EventTypes      `yaml:"events" agent:"Events"`
	// Commands nil (absent from the file) means agent.DefaultCommands().
	Commands map[int]agent.Command `yaml:"commands" agent:"Commands"`
	Hooks    agent.Hooks           `yaml:"hooks" agent:"Hooks"`
	// PIN, Verify, DoorWatch and Feedback are the terminal's PIN entry,
	// verification mode, door supervision and grant/deny feedback.
	PIN       agent.PINConfig       `yaml:"pin" agent:"PIN"`
	Verify    agent.VerifyConfig    `yaml:"verify" agent:"Verify"`
	DoorWatch agent.DoorWatchConfig `yaml:"door_watch" agent:"DoorWatch"`
	Feedback  agent.FeedbackConfig  `yaml:"feedback" agent:"Feedback"`
	Control   ControlConfig         `yaml:"control"`
	Log       LogConfig             `yaml:"log"`
}

// ServerConfig is the server section: agent.LinkConfig and listen mode.
type ServerConfig struct {
	agent.LinkConfig `yaml:",inline"`
	Listen           ListenConfig `yaml:"listen"`
}

// ListenConfig is server.listen: listen mode's agent fields, gathered.
type ListenConfig struct {
	Enabled    bool     `yaml:"enabled" agent:"Link.Listen"`
	Host       string   `yaml:"host" agent:"Link.ListenHost"`
	DevicePort int      `yaml:"device_port" agent:"Device.DevicePort"`
	Allow      []string `yaml:"allow" agent:"Link.AllowedPeers"`
}

// DeviceConfig is the device section: agent.DeviceConfig and its zone.
type DeviceConfig struct {
	agent.DeviceConfig `yaml:",inline"`
	// TimeZone is the IANA zone of record times (Asia/Shanghai); "" (the
	// default): the system's.
	TimeZone string `yaml:"time_zone" agent:"Device.Location"`
}

// UploadConfig is the upload section: agent.UploadConfig, and the
// outbox's quarantine threshold (store.Config.MaxAttempts).
type UploadConfig struct {
	agent.UploadConfig `yaml:",inline"`
	// MaxAttempts quarantines a record after this many refusals; 0 means
	// store.DefaultMaxAttempts.
	MaxAttempts int `yaml:"max_attempts"`
}

// StoreConfig is the local database.
type StoreConfig struct {
	// Path of the SQLite file (created 0600); default
	// /var/lib/termagent/termagent.db.
	Path string `yaml:"path"`
	// OutboxCapacity is the most records kept unsent; 0 means
	// store.DefaultOutboxCapacity.
	OutboxCapacity int `yaml:"outbox_capacity"`
	// WhenFull is what a new record does when the outbox is full:
	// drop_oldest (default: the oldest record is dropped and counted) or
	// refuse (the new record is not kept).
	WhenFull string `yaml:"when_full"`
}

// HALConfig is the hardware: each driver's own configuration. A driver
// "none" (the default) means the terminal has no such module.
type HALConfig struct {
	Card        CardConfig        `yaml:"card"`
	Fingerprint FingerprintConfig `yaml:"fingerprint"`
	Face        FaceConfig        `yaml:"face"`
	Door        door.Config       `yaml:"door"`
	Keypad      KeypadConfig      `yaml:"keypad"`
	DoorInputs  DoorInputsConfig  `yaml:"door_inputs"`
	Feedback    FeedbackHAL       `yaml:"feedback"`
}

// Drivers that are not serial card protocols (hal.card, hal.keypad).
const (
	driverEvdev   = "evdev"
	driverWiegand = "wiegand"
	driverSerial  = "serial"
)

// CardConfig is hal.card: the serial readers' card.Config (its format
// and line keys serve every driver), the USB keyboard-wedge reader's
// input device (driver evdev) and the Wiegand reader's lines (driver
// wiegand).
type CardConfig struct {
	card.Config `yaml:",inline"`
	Evdev       evdev.Config   `yaml:"evdev"`
	Wiegand     wiegand.Config `yaml:"wiegand"`
}

// KeypadConfig is hal.keypad: none (default), serial (one ASCII byte a
// key), evdev (a USB keypad) or wiegand (a Wiegand reader's keys; the
// same reader as hal.card when both are wiegand on the same lines).
type KeypadConfig struct {
	Driver        string `yaml:"driver"`
	keypad.Config `yaml:",inline"`
	Evdev         evdev.Config   `yaml:"evdev"`
	Wiegand       wiegand.Config `yaml:"wiegand"`
}

// DoorInputsConfig is hal.door_inputs: none (default) or evdev, the door
// sensor and exit button as an input device (gpio-keys).
type DoorInputsConfig struct {
	Driver           string `yaml:"driver"`
	evdev.DoorConfig `yaml:",inline"`
}

// FeedbackHAL is hal.feedback: the buzzer and LED lines.
type FeedbackHAL struct {
	Buzzer OutputConfig `yaml:"buzzer"`
	Green  OutputConfig `yaml:"green"`
	Red    OutputConfig `yaml:"red"`
}

// OutputConfig is one feedback output's GPIO line; line "" (the default)
// means not wired.
type OutputConfig struct {
	Chip      string `yaml:"chip"`
	Line      string `yaml:"line"`
	ActiveLow bool   `yaml:"active_low"`
}

// FingerprintConfig is hal.fingerprint: none (default) or r30x.
type FingerprintConfig struct {
	Driver             string `yaml:"driver"`
	fingerprint.Config `yaml:",inline"`
}

// FaceConfig is hal.face: none (default) or fm22x.
type FaceConfig struct {
	Driver      string `yaml:"driver"`
	face.Config `yaml:",inline"`
}

// ControlConfig is the local control socket `termagent status` reads.
type ControlConfig struct {
	// Socket is the unix socket's path (created 0600); default
	// termagent.sock in store.path's directory.
	Socket string `yaml:"socket"`
}

// LogConfig shapes the daemon's log on stderr.
type LogConfig struct {
	// Level: debug, info (default), warn or error.
	Level string `yaml:"level"`
	// Format: json (default) or console.
	Format string `yaml:"format"`
}

// driverNone is every module's "not fitted" driver.
const driverNone = "none"

// defaultStorePath is where the database goes by default.
const defaultStorePath = "/var/lib/termagent/termagent.db"

// withDefaults returns c with the defaults of the keys cmd owns: the
// drivers ("none"), the database path, the socket beside it, the log. The
// parts fill in their own (New and Open apply them).
func (c Config) withDefaults() Config {
	h := &c.HAL
	setDefault(&h.Card.Driver, driverNone)
	setDefault(&h.Fingerprint.Driver, driverNone)
	setDefault(&h.Face.Driver, driverNone)
	setDefault(&h.Door.Driver, driverNone)
	setDefault(&h.Keypad.Driver, driverNone)
	setDefault(&h.DoorInputs.Driver, driverNone)
	setDefault(&c.Store.Path, defaultStorePath)
	setDefault(&c.Store.WhenFull, "drop_oldest")
	setDefault(&c.Control.Socket, filepath.Join(filepath.Dir(c.Store.Path), "termagent.sock"))
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

// agentConfig maps the file's agent sections onto agent.Config (Logger and
// Now are left for run to set). The sections are the agent's own types;
// only the keys the file arranges differently are moved here.
func (c Config) agentConfig() agent.Config {
	loc, _ := loadLocation(c.Device.TimeZone) // validated; nil: the agent's default
	dev := c.Device.DeviceConfig
	dev.DevicePort = c.Server.Listen.DevicePort
	dev.SoftwareVersion = version
	dev.Location = loc
	link := c.Server.LinkConfig
	link.Listen = c.Server.Listen.Enabled
	link.ListenHost = c.Server.Listen.Host
	link.AllowedPeers = c.Server.Listen.Allow
	link.Heartbeat = c.Heartbeat
	access := c.Access
	access.DoorPulse = c.HAL.Door.Pulse
	return agent.Config{
		Device:   dev,
		Link:     link,
		Upload:   c.Upload.UploadConfig,
		Access:   access,
		Commands: c.Commands,
		Hooks:    c.Hooks,
		Events:   c.Events,
		Modules:  c.Modules,

		PIN:       c.PIN,
		Verify:    c.Verify,
		DoorWatch: c.DoorWatch,
		Feedback:  c.Feedback,
	}
}

// storeConfig is the database's configuration (Logger left for run).
func (c Config) storeConfig() store.Config {
	policy := store.DropOldest
	if c.Store.WhenFull == "refuse" {
		policy = store.Refuse
	}
	return store.Config{OutboxCapacity: c.Store.OutboxCapacity, WhenFull: policy, MaxAttempts: c.Upload.MaxAttempts}
}

// loadConfig reads, decodes, defaults and validates the file at path.
// Several problems come back as configErrors, one per line.
func loadConfig(path string) (Config, error) {
	c, _, err := loadConfigLines(path)
	return c, err
}

// loadConfigLines is loadConfig that also returns the line of each key
// path set in the file. It reports every problem at once: keys and values
// the decoder refused, then what the parts' validation refuses of the
// rest, sorted by line. When the file is YAML but has problems it returns
// the defaulted configuration with the error.
func loadConfigLines(path string) (Config, map[string]int, error) {
	f, err := os.Open(path)
	if err != nil {
		return Config{}, nil, fmt.Errorf("open config: %w", err)
	}
	defer f.Close()
	var c Config
	lines, err := decodeStrict(f, &c)
	var errs configErrors
	switch {
	case errors.As(err, &errs):
	case err != nil:
		return Config{}, nil, err // not YAML of one document: nothing more to check
	}
	c = c.withDefaults()
	for _, e := range c.validate() {
		if !errs.cover(e.Path) {
			errs = append(errs, e)
		}
	}
	if len(errs) == 0 {
		return c, lines, nil
	}
	for _, e := range errs {
		if e.Line == 0 {
			e.Line = lineOf(lines, e.Path)
		}
	}
	// In file order; problems of keys absent from the file (line 0) last.
	slices.SortStableFunc(errs, func(a, b *configError) int {
		return cmp.Compare(cmp.Or(a.Line, math.MaxInt), cmp.Or(b.Line, math.MaxInt))
	})
	// c goes back too: check-config also checks it against this machine.
	if len(errs) == 1 {
		return c, lines, errs[0]
	}
	return c, lines, errs
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
// each with its key path (the caller adds the lines): the agent's own
// validation (agent.Config.Validate, its fields named by their keys), then
// what only the file decides (drivers, ports, store, control, log).
func (c Config) validate() []*configError {
	var errs []*configError
	bad := func(path, format string, args ...any) {
		errs = append(errs, &configError{Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	if c.Server.ServerAddress == "" && !c.Server.Listen.Enabled {
		bad("server.address", "required (host:port) unless server.listen.enabled is true")
	}
	if _, err := loadLocation(c.Device.TimeZone); err != nil {
		bad("device.time_zone", "%q: %v", c.Device.TimeZone, err)
	}
	if err := c.agentConfig().Validate(); err != nil {
		var fe *agent.FieldError
		for _, e := range unwrapAll(err) {
			if errors.As(e, &fe) {
				bad(agentKey(fe.Field), "%s", fe.Msg)
			} else {
				bad("", "%v", e)
			}
		}
	}
	if hb := c.Heartbeat.Interval; hb != 0 && hb < time.Second {
		bad("heartbeat.interval", "%v is less than 1s", hb)
	}

	if c.Store.OutboxCapacity < 0 {
		bad("store.outbox_capacity", "%d is not positive", c.Store.OutboxCapacity)
	}
	if !oneOf(c.Store.WhenFull, "drop_oldest", "refuse") {
		bad("store.when_full", "%q is not drop_oldest or refuse", c.Store.WhenFull)
	}
	if c.Upload.MaxAttempts < 0 {
		bad("upload.max_attempts", "%d is not positive", c.Upload.MaxAttempts)
	}

	h := c.HAL
	for _, m := range []struct{ module, driver string }{
		{"card", string(h.Card.Driver)}, {"fingerprint", h.Fingerprint.Driver}, {"face", h.Face.Driver}, {"door", h.Door.Driver},
		{"keypad", h.Keypad.Driver}, {"door_inputs", h.DoorInputs.Driver},
	} {
		if !slices.Contains(drivers[m.module], m.driver) {
			bad("hal."+m.module+".driver", "%q is not one of %s", m.driver, strings.Join(drivers[m.module], ", "))
		}
	}
	if l := h.Card.Line; l.MinDigits < 0 || l.MaxDigits < 0 || l.MaxDigits > 0 && l.MaxDigits < l.MinDigits {
		bad("hal.card.line", "digits %d..%d is not a range", l.MinDigits, l.MaxDigits)
	}
	if err := h.Card.Format.Validate(); err != nil {
		bad("hal.card.format", "%v", strings.TrimPrefix(err.Error(), "card format: "))
	}
	for _, sp := range []struct {
		name, driver, port string
		baud               int
	}{
		{"hal.card", cardPortDriver(h.Card.Driver), h.Card.Port, h.Card.Baud},
		{"hal.fingerprint", h.Fingerprint.Driver, h.Fingerprint.Port, h.Fingerprint.Baud},
		{"hal.face", h.Face.Driver, h.Face.Port, h.Face.Baud},
		{"hal.keypad", keypadPortDriver(h.Keypad.Driver), h.Keypad.Port, h.Keypad.Baud},
	} {
		if sp.driver != driverNone && sp.port == "" {
			bad(sp.name+".port", "required with driver %s", sp.driver)
		}
		if sp.baud != 0 && !validBaud(sp.baud) {
			bad(sp.name+".baud", "%d is not a serial speed", sp.baud)
		}
	}
	if c := h.Fingerprint.Capacity; c < 0 || c > 0xFFFF {
		bad("hal.fingerprint.capacity", "%d is outside 1..65535", c)
	}
	if v := h.Face.VerifySeconds; v < 0 || v > 255 {
		bad("hal.face.verify_seconds", "%d is outside 1..255", v)
	}
	if v := h.Face.PhotoChunk; v < 0 || v > 4094 {
		bad("hal.face.photo_chunk", "%d is outside 1..4094", v)
	}
	if v := h.Face.MaxPhoto; v != 0 && (v < 1024 || v > 16<<20) {
		bad("hal.face.max_photo", "%d is outside 1024..16777216 bytes", v)
	}
	c.validateTerminalHAL(bad)
	d := h.Door.WithDefaults()
	if d.Pulse < 100*time.Millisecond || d.Pulse > 60*time.Second {
		bad("hal.door.pulse", "%v is outside 100ms..60s", d.Pulse)
	}
	switch d.Driver {
	case door.DriverLCUS:
		if d.LCUS.Port == "" {
			bad("hal.door.port", "required with driver lcus")
		}
		if !validBaud(d.LCUS.Baud) {
			bad("hal.door.baud", "%d is not a serial speed", d.LCUS.Baud)
		}
		if d.LCUS.Channel < 1 || d.LCUS.Channel > door.LCUSMaxChannel {
			bad("hal.door.channel", "%d is outside 1..%d", d.LCUS.Channel, door.LCUSMaxChannel)
		}
	case door.DriverGPIO:
		if d.GPIO.Relay == "" {
			bad("hal.door.line", "required with driver gpio")
		}
	}

	// Two drivers on one serial port would each read the other's frames.
	ports := map[string]string{}
	for _, p := range []struct{ key, driver, port string }{
		{"hal.card.port", cardPortDriver(h.Card.Driver), h.Card.Port},
		{"hal.fingerprint.port", h.Fingerprint.Driver, h.Fingerprint.Port},
		{"hal.face.port", h.Face.Driver, h.Face.Port},
		{"hal.door.port", d.Driver, d.LCUS.Port},
		{"hal.keypad.port", keypadPortDriver(h.Keypad.Driver), h.Keypad.Port},
	} {
		if p.driver == driverNone || p.driver == door.DriverGPIO || p.port == "" {
			continue
		}
		port := filepath.Clean(p.port)
		if first, ok := ports[port]; ok {
			bad(p.key, "%q is also %s: one serial port, one device", p.port, first)
			continue
		}
		ports[port] = p.key
	}

	if !filepath.IsAbs(c.Control.Socket) {
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

// unwrapAll lists the errors joined in err (errors.Join), or err itself.
func unwrapAll(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// agentKeys maps agent.Config field paths ("Link.Transport",
// "Commands[*].Hook") to the file's keys ("server.transport",
// "commands.*.hook"), from Config's yaml and agent tags.
var agentKeys = func() map[string]string {
	out := map[string]string{"Access.DoorPulse": "hal.door.pulse"}
	walkAgentKeys(reflect.TypeFor[Config](), "", "", out)
	return out
}()

var agentPkg = reflect.TypeFor[agent.Config]().PkgPath()

func walkAgentKeys(t reflect.Type, ypath, apath string, out map[string]string) {
	for i := range t.NumField() {
		f := t.Field(i)
		name, opt, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if opt == "inline" {
			walkAgentKeys(f.Type, ypath, apath, out)
			continue
		}
		ap := f.Tag.Get("agent")
		if ap == "" && apath != "" && t.PkgPath() == agentPkg {
			ap = apath + "." + f.Name
		}
		yp := join(ypath, name)
		if ap != "" {
			out[ap] = yp
		}
		switch f.Type.Kind() {
		case reflect.Struct:
			if ap != "" {
				walkAgentKeys(f.Type, yp, ap, out)
			} else {
				walkAgentKeys(f.Type, yp, "", out)
			}
		case reflect.Map:
			if f.Type.Elem().Kind() == reflect.Struct {
				walkAgentKeys(f.Type.Elem(), yp+".*", ap+"[*]", out)
			}
		case reflect.Slice:
			out[ap+"[*]"] = yp + "[*]"
		}
	}
}

var indexRE = regexp.MustCompile(`\[([^]]*)\]`)

// agentKey names the file's key of an agent field path such as
// "Commands[5].Hook" (commands.5.hook); a field no key sets keeps its Go
// path.
func agentKey(field string) string {
	var idx []string
	pattern := indexRE.ReplaceAllStringFunc(field, func(m string) string {
		idx = append(idx, m[1:len(m)-1])
		return "[*]"
	})
	key, ok := agentKeys[pattern]
	if !ok {
		return field
	}
	for _, i := range idx {
		key = strings.Replace(key, "*", i, 1)
	}
	return key
}

// configErrors is every problem in the file, one per line.
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

// cover reports whether a problem was already found at path, at a key
// around or under it, or at the top (a value the decoder refused is not
// reported again by the validation of its default).
func (es configErrors) cover(path string) bool {
	for _, e := range es {
		if e.Path == "" || e.Path == path || strings.HasPrefix(path, e.Path+".") || strings.HasPrefix(e.Path, path+".") ||
			strings.HasPrefix(path, e.Path+"[") || strings.HasPrefix(e.Path, path+"[") {
			return true
		}
	}
	return false
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

// loadLocation is time.LoadLocation with "" meaning the system's zone.
func loadLocation(name string) (*time.Location, error) {
	if name == "" {
		return time.Local, nil
	}
	return time.LoadLocation(name)
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
	check("hooks.set_device_time", c.Hooks.SetTime, true)
	check("hooks.device_ip", c.Hooks.DeviceIP, true)
	check("hooks.message", c.Hooks.Message, true)
	check("hooks.restart", c.Hooks.Restart, true)
	for _, typ := range slices.Sorted(maps.Keys(c.Commands)) {
		check(fmt.Sprintf("commands.%d.hook", typ), c.Commands[typ].Hook, true)
	}
	h := c.HAL
	for _, p := range []struct{ key, driver, port string }{
		{"hal.card.port", cardPortDriver(h.Card.Driver), h.Card.Port},
		{"hal.fingerprint.port", h.Fingerprint.Driver, h.Fingerprint.Port},
		{"hal.face.port", h.Face.Driver, h.Face.Port},
		{"hal.keypad.port", keypadPortDriver(h.Keypad.Driver), h.Keypad.Port},
	} {
		if p.driver != driverNone {
			check(p.key, p.port, false)
		}
	}
	if h.Card.Driver == driverEvdev {
		check("hal.card.evdev.device", h.Card.Evdev.Device, false)
	}
	if h.Keypad.Driver == driverEvdev {
		check("hal.keypad.evdev.device", h.Keypad.Evdev.Device, false)
	}
	if h.DoorInputs.Driver == driverEvdev {
		check("hal.door_inputs.device", h.DoorInputs.Device, false)
	}
	check("feedback.hook", c.Feedback.Hook, true)
	if h.Door.Driver == door.DriverLCUS {
		check("hal.door.port", h.Door.LCUS.Port, false)
	}
	return out
}

// cardPortDriver is the card driver when it reads a serial port, else
// "none" (the port key is then unused).
func cardPortDriver(driver card.Protocol) string {
	if !serialCard(driver) {
		return driverNone
	}
	return string(driver)
}

// keypadPortDriver is the keypad driver when it reads a serial port, else
// "none".
func keypadPortDriver(driver string) string {
	if driver != driverSerial {
		return driverNone
	}
	return driver
}

// validateTerminalHAL reports, through bad, the problems of the keypad,
// Wiegand, input-device and feedback keys, and of the feedback patterns
// against the output driver's limits.
func (c Config) validateTerminalHAL(bad func(key, format string, args ...any)) {
	h := c.HAL
	evdevKeys := func(key string, ec evdev.Config) {
		if ec.Device == "" {
			bad(key+".device", "required with driver evdev")
		}
		if ec.EventSize != 0 && ec.EventSize != 16 && ec.EventSize != 24 {
			bad(key+".event_size", "%d is not 16 or 24", ec.EventSize)
		}
	}
	wiegandKeys := func(key string, wc wiegand.Config) {
		if wc.D0 == "" {
			bad(key+".d0", "required with driver wiegand")
		}
		if wc.D1 == "" {
			bad(key+".d1", "required with driver wiegand")
		}
		if wc.D0 != "" && wc.D0 == wc.D1 {
			bad(key+".d1", "%q is also d0", wc.D1)
		}
	}
	switch h.Card.Driver {
	case driverEvdev:
		evdevKeys("hal.card.evdev", h.Card.Evdev)
	case driverWiegand:
		wiegandKeys("hal.card.wiegand", h.Card.Wiegand)
	}
	switch h.Keypad.Driver {
	case driverEvdev:
		evdevKeys("hal.keypad.evdev", h.Keypad.Evdev)
	case driverWiegand:
		if !h.sameWiegandLines() {
			wiegandKeys("hal.keypad.wiegand", h.Keypad.Wiegand)
		}
	}
	if h.Card.Driver == driverEvdev && h.Keypad.Driver == driverEvdev && h.Card.Evdev.Device != "" &&
		filepath.Clean(h.Card.Evdev.Device) == filepath.Clean(h.Keypad.Evdev.Device) {
		bad("hal.keypad.evdev.device", "%q is also hal.card.evdev.device: one input device, one driver", h.Keypad.Evdev.Device)
	}
	if h.DoorInputs.Driver == driverEvdev {
		di := h.DoorInputs
		if di.Device == "" {
			bad("hal.door_inputs.device", "required with driver evdev")
		}
		if di.EventSize != 0 && di.EventSize != 16 && di.EventSize != 24 {
			bad("hal.door_inputs.event_size", "%d is not 16 or 24", di.EventSize)
		}
		for _, in := range []struct {
			key  string
			code evdev.DoorInputCode
		}{{"hal.door_inputs.sensor.type", di.Sensor}, {"hal.door_inputs.exit_button.type", di.Button}} {
			if in.code != (evdev.DoorInputCode{}) && in.code.Type != evdev.EvSw && in.code.Type != evdev.EvKey {
				bad(in.key, "%d is not %d (EV_SW) or %d (EV_KEY)", in.code.Type, evdev.EvSw, evdev.EvKey)
			}
		}
	}
	if c.Verify.Mode == agent.VerifyCardPIN && (h.Card.Driver == driverNone || h.Keypad.Driver == driverNone) {
		bad("verify.mode", "%s needs a card reader (hal.card) and a keypad (hal.keypad)", agent.VerifyCardPIN)
	}
	for _, p := range []struct {
		key string
		p   agent.Pattern
	}{
		{"feedback.grant.buzzer", c.Feedback.Grant.Buzzer}, {"feedback.grant.green", c.Feedback.Grant.Green},
		{"feedback.grant.red", c.Feedback.Grant.Red}, {"feedback.deny.buzzer", c.Feedback.Deny.Buzzer},
		{"feedback.deny.green", c.Feedback.Deny.Green}, {"feedback.deny.red", c.Feedback.Deny.Red},
	} {
		if len(p.p) == 0 {
			continue // the default
		}
		if err := feedback.Pattern(p.p).Validate(); err != nil {
			bad(p.key, "%s", strings.TrimPrefix(err.Error(), feedback.ErrPattern.Error()+": "))
		}
	}
}

package main

import (
	"errors"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"termagent/agent"
	"termagent/hal/card"
	"termagent/hal/evdev"
	"termagent/hal/wiegand"
	"termagent/store"
)

// writeConfig writes text to a config file in a temporary directory.
func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "termagent.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// keyPaths lists the dotted key path of every leaf of a section type,
// the keys of `yaml:",inline"` fields in their enclosing section.
func keyPaths(t reflect.Type, prefix string) []string {
	var out []string
	fields, names := keysOf(t)
	for _, name := range names {
		f := t.FieldByIndex(fields[name])
		path := join(prefix, name)
		if f.Type.Kind() == reflect.Struct && f.Type != durationType {
			out = append(out, keyPaths(f.Type, path)...)
			continue
		}
		out = append(out, path)
	}
	return out
}

// flatten returns the value of every leaf key of v (a section struct).
func flatten(v reflect.Value, prefix string, out map[string]any) map[string]any {
	fields, names := keysOf(v.Type())
	for _, name := range names {
		f := v.FieldByIndex(fields[name])
		path := join(prefix, name)
		if f.Kind() == reflect.Struct && f.Type() != durationType {
			flatten(f, path, out)
			continue
		}
		out[path] = f.Interface()
	}
	return out
}

// allDefaults returns c with every default filled in, each by the part
// that owns it: cmd's keys, the agent's (agent.Config.WithDefaults, mapped
// back onto the file's sections), the drivers' and the store's.
func allDefaults(c Config) Config {
	c = c.withDefaults()
	a := c.agentConfig().WithDefaults()
	c.Server.LinkConfig = a.Link
	c.Server.Listen = ListenConfig{Enabled: a.Link.Listen, Host: a.Link.ListenHost, DevicePort: a.Device.DevicePort, Allow: a.Link.AllowedPeers}
	c.Heartbeat = a.Link.Heartbeat
	c.Device.DeviceConfig = a.Device
	c.Access = a.Access
	c.Upload.UploadConfig = a.Upload
	c.Modules, c.Events, c.Commands, c.Hooks = a.Modules, a.Events, a.Commands, a.Hooks
	c.PIN, c.Verify, c.DoorWatch, c.Feedback = a.PIN, a.Verify, a.DoorWatch, a.Feedback
	for _, ec := range []*evdev.Config{&c.HAL.Card.Evdev, &c.HAL.Keypad.Evdev} {
		setDefault(&ec.KeyGap, evdev.DefaultKeyGap) // evdev.Config: zero means DefaultKeyGap
	}
	for _, wc := range []*wiegand.Config{&c.HAL.Card.Wiegand, &c.HAL.Keypad.Wiegand} {
		setDefault(&wc.Gap, wiegand.DefaultGap)
	}
	setDefault(&c.HAL.Keypad.Baud, 9600) // keypad.Config: zero means 9600
	c.HAL.Card.Config = c.HAL.Card.Config.WithDefaults()
	c.HAL.Fingerprint.Config = c.HAL.Fingerprint.Config.WithDefaults()
	c.HAL.Face.Config = c.HAL.Face.Config.WithDefaults()
	c.HAL.Door = c.HAL.Door.WithDefaults()
	setDefault(&c.Store.OutboxCapacity, store.DefaultOutboxCapacity)
	setDefault(&c.Upload.MaxAttempts, store.DefaultMaxAttempts)
	return c
}

const exampleFile = "termagent.example.yaml"

// The example file sets every key to its documented default (server.address
// aside, which has none): it must mention every key of every section type,
// and each value it states must be the default of the part that owns the
// key, so that loading it is the same as loading a file with the address
// alone.
func TestExampleConfigDocumentsTheDefaults(t *testing.T) {
	f, err := os.Open(exampleFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var raw Config
	lines, err := decodeStrict(f, &raw)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range keyPaths(reflect.TypeFor[Config](), "") {
		if lines[p] == 0 {
			t.Errorf("example file does not document key %s", p)
		}
	}
	if _, err := loadConfig(exampleFile); err != nil {
		t.Fatal(err)
	}

	def := allDefaults(Config{Server: ServerConfig{LinkConfig: agent.LinkConfig{ServerAddress: "192.0.2.10:49003"}}})
	stated := flatten(reflect.ValueOf(raw), "", map[string]any{})
	want := flatten(reflect.ValueOf(def), "", map[string]any{})
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if k == "control.socket" { // "" in the file: beside the store, computed
			continue
		}
		if !reflect.DeepEqual(stated[k], want[k]) {
			t.Errorf("example states %s: %#v, the default is %#v", k, stated[k], want[k])
		}
	}
	// The defaults are the values the example states, spelled out for the
	// keys whose default is not the type's zero value.
	for _, c := range []struct {
		key       string
		got, want any
	}{
		{"server.transport", def.Server.Transport, "tcp"},
		{"server.backoff_max", def.Server.BackoffMax, time.Minute},
		{"server.fallback_after", def.Server.FallbackAfter, 5 * time.Minute},
		{"server.max_message", def.Server.MaxMessageSize, 16 << 20},
		{"server.unanswered_calls", def.Server.UnansweredCalls, 3},
		{"server.write_timeout", def.Server.WriteTimeout, time.Minute},
		{"server.listen.device_port", def.Server.Listen.DevicePort, 1545},
		{"server.read_timeout", def.Server.ReadTimeout, time.Duration(0)},
		{"store.path", def.Store.Path, "/var/lib/termagent/termagent.db"},
		{"store.outbox_capacity", def.Store.OutboxCapacity, 100000},
		{"store.when_full", def.Store.WhenFull, "drop_oldest"},
		{"device.in_out_type", def.Device.InOutType, 1},
		{"hal.card.driver", def.HAL.Card.Driver, card.Protocol("none")},
		{"hal.card.format.style", def.HAL.Card.Format.Style, card.Decimal},
		{"hal.fingerprint.address", def.HAL.Fingerprint.Address, uint32(0xFFFFFFFF)},
		{"hal.fingerprint.baud", def.HAL.Fingerprint.Baud, 57600},
		{"hal.face.baud", def.HAL.Face.Baud, 115200},
		{"hal.door.pulse", def.HAL.Door.Pulse, 3 * time.Second},
		{"access.door_timeout", def.Access.DoorTimeout, 2 * time.Second},
		{"access.record_timeout", def.Access.RecordTimeout, time.Second},
		{"access.open_door_type.remote", def.Access.OpenDoorTypes.Remote, 4},
		{"upload.window", def.Upload.Window, 8},
		{"upload.max_attempts", def.Upload.MaxAttempts, 10},
		{"upload.nearly_full", def.Upload.NearlyFull, 0.8},
		{"upload.quarantine_retry", def.Upload.QuarantineRetry, 15 * time.Minute},
		{"events.door_fault", def.Events.DoorFault, 5},
		{"events.database_recovered", def.Events.DatabaseRecovered, 6},
		{"events.records_quarantined", def.Events.RecordsQuarantined, 7},
		{"commands", raw.Commands, agent.DefaultCommands()},
		{"hooks.timeout", def.Hooks.Timeout, 10 * time.Second},
		{"control.socket", def.Control.Socket, "/var/lib/termagent/termagent.sock"},
		{"log.level", def.Log.Level, "info"},
		{"log.format", def.Log.Format, "json"},
	} {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %v, want %v", c.key, c.got, c.want)
		}
	}
}

// A minimal file and the example give the same agent configuration, and it
// passes the agent's own validation; the default command table is the
// agent's.
func TestMinimalConfigMapsToAgent(t *testing.T) {
	min, err := loadConfig(writeConfig(t, "server:\n  address: 192.0.2.10:49003\n"))
	if err != nil {
		t.Fatal(err)
	}
	ex, err := loadConfig(exampleFile)
	if err != nil {
		t.Fatal(err)
	}
	a, b := min.agentConfig().WithDefaults(), ex.agentConfig().WithDefaults()
	a.Now, b.Now = nil, nil
	if !reflect.DeepEqual(a, b) {
		t.Errorf("minimal and example files map differently:\n%+v\n%+v", a, b)
	}
	if err := a.Validate(); err != nil {
		t.Fatal(err)
	}
	if a.Link.ServerAddress != "192.0.2.10:49003" || a.Upload.Window != 8 || a.Access.DoorPulse != 3*time.Second ||
		a.Device.DevicePort != 1545 || a.Device.SoftwareVersion != version || !reflect.DeepEqual(a.Commands, agent.DefaultCommands()) {
		t.Errorf("agent config not mapped: %+v", a)
	}
	if min.Commands != nil {
		t.Errorf("commands absent from the file = %v, want nil (the agent's table)", min.Commands)
	}
}

// Every key that reaches the agent does, including those with no
// counterpart in cmd before (they were unreachable from the file).
func TestConfigKeysReachTheAgent(t *testing.T) {
	c, err := loadConfig(writeConfig(t, `
server: {address: "192.0.2.1:1", unanswered_calls: -1, write_timeout: 5s, listen: {device_port: 2000, host: 127.0.0.1}}
access: {door_timeout: 700ms, record_timeout: 300ms}
upload: {quarantine_retry: 1h, max_attempts: 4}
events: {door_fault: 15, database_recovered: 16, records_quarantined: 17}
hal: {door: {pulse: 2s}}
commands: {}
`))
	if err != nil {
		t.Fatal(err)
	}
	a := c.agentConfig()
	for _, ck := range []struct {
		key       string
		got, want any
	}{
		{"server.unanswered_calls", a.Link.UnansweredCalls, -1},
		{"server.write_timeout", a.Link.WriteTimeout, 5 * time.Second},
		{"server.listen.device_port", a.Device.DevicePort, 2000},
		{"server.listen.host", a.Link.ListenHost, "127.0.0.1"},
		{"access.door_timeout", a.Access.DoorTimeout, 700 * time.Millisecond},
		{"access.record_timeout", a.Access.RecordTimeout, 300 * time.Millisecond},
		{"hal.door.pulse", a.Access.DoorPulse, 2 * time.Second},
		{"upload.quarantine_retry", a.Upload.QuarantineRetry, time.Hour},
		{"upload.max_attempts", c.storeConfig().MaxAttempts, 4},
		{"events.door_fault", a.Events.DoorFault, 15},
		{"events.database_recovered", a.Events.DatabaseRecovered, 16},
		{"events.records_quarantined", a.Events.RecordsQuarantined, 17},
		{"commands", a.Commands, map[int]agent.Command{}},
	} {
		if !reflect.DeepEqual(ck.got, ck.want) {
			t.Errorf("%s = %#v, want %#v", ck.key, ck.got, ck.want)
		}
	}
}

func TestConfigValues(t *testing.T) {
	c, err := loadConfig(writeConfig(t, `
server:
  address: "[2001:db8::1]:9000"
  transport: wss
  listen: {device_port: 8000, allow: [10.0.0.0/24, 192.0.2.7]}
heartbeat: {mod: heartbeat, interval: 10s}
device: {in_out_type: 2, community_code: "0012", time_zone: Asia/Shanghai}
hal:
  card: {driver: rdm6300, port: /dev/ttyS1, format: {style: w26, separator: ","}}
  door: {driver: gpio, line: RELAY, active_low: yes, pulse: 500ms, sensor: {line: "17"}}
upload: {window: 1}
commands:
  7: {action: hook, hook: /usr/local/bin/buzz}
log: {level: debug, format: console}
`))
	if err != nil {
		t.Fatal(err)
	}
	for _, ck := range []struct {
		key       string
		got, want any
	}{
		{"server.address", c.Server.ServerAddress, "[2001:db8::1]:9000"},
		{"server.transport", c.Server.Transport, "wss"},
		{"server.listen.allow", c.Server.Listen.Allow, []string{"10.0.0.0/24", "192.0.2.7"}},
		{"server.read_timeout", c.agentConfig().WithDefaults().Link.ReadTimeout, 30 * time.Second},
		{"device.community_code", c.Device.CommunityCode, "0012"},
		{"device.in_out_type", c.Device.InOutType, 2},
		{"hal.card.format.separator", c.HAL.Card.Format.Separator, ","},
		{"hal.card.baud", c.HAL.Card.WithDefaults().Baud, 9600},
		{"hal.door.active_low", c.HAL.Door.GPIO.ActiveLow, true},
		{"hal.door.pulse", c.HAL.Door.Pulse, 500 * time.Millisecond},
		{"hal.door.sensor.line", c.HAL.Door.GPIO.Sensor.Line, "17"},
		{"hal.door.line", c.HAL.Door.GPIO.Relay, "RELAY"},
		{"upload.window", c.Upload.Window, 1},
		{"commands", c.Commands, map[int]agent.Command{7: {Action: agent.ActionHook, Hook: "/usr/local/bin/buzz"}}},
		{"log.format", c.Log.Format, "console"},
	} {
		if !reflect.DeepEqual(ck.got, ck.want) {
			t.Errorf("%s = %#v, want %#v", ck.key, ck.got, ck.want)
		}
	}
	ac := c.agentConfig()
	if ac.Device.Location.String() != "Asia/Shanghai" || ac.Link.Heartbeat.Mod != "heartbeat" || len(ac.Commands) != 1 {
		t.Errorf("agent config: %+v", ac)
	}
}

func TestConfigErrors(t *testing.T) {
	const head = "server:\n  address: 192.0.2.10:49003\n" // lines 1-2
	for _, c := range []struct {
		name, text, want string
	}{
		{"bad number", head + "hal:\n  card:\n    baud: fast\n",
			`config line 5: hal.card.baud: "fast" is not a number`},
		{"unknown key", head + "hal:\n  card:\n    speed: 9600\n",
			`config line 5: hal.card.speed: unknown key (known here: driver, port, baud, format, line, repeat_window, evdev, wiegand)`},
		{"unknown section", head + "\nlogging:\n  level: info\n",
			`config line 4: logging: unknown key`},
		{"repeated key", head + "log:\n  level: info\n  level: debug\n",
			`config line 5: log.level: key given twice`},
		{"bad enum", head + "log:\n  format: xml\n",
			`config line 4: log.format: "xml" is not json or console`},
		{"bad transport", "server:\n  address: a:1\n  transport: udp\n",
			`config line 3: server.transport: "udp" is not one of tcp, tls, ws, wss`},
		{"bad duration", head + "hal:\n  door:\n    pulse: 3\n",
			`config line 5: hal.door.pulse: "3" is not a duration (write it with a unit: 300ms, 3s, 5m)`},
		{"negative duration", head + "upload:\n  retry_min: -1s\n",
			`config line 4: upload.retry_min: -1s is negative`},
		{"out of range", head + "hal:\n  fingerprint:\n    address: 0x1FFFFFFFF\n",
			`config line 5: hal.fingerprint.address: 0x1FFFFFFFF is out of range`},
		{"bool", head + "access:\n  record_denied: maybe\n",
			`config line 4: access.record_denied: "maybe" is not true or false`},
		{"section as value", head + "log: debug\n",
			`config line 3: log: want a section of keys, not a single value`},
		{"list as value", head + "store:\n  path: [a, b]\n",
			`config line 4: store.path: want a single value, not a list`},
		{"missing address", "log:\n  level: info\n",
			`config: server.address: required (host:port) unless server.listen.enabled is true`},
		{"bad address", "server:\n  address: 192.0.2.10\n",
			`config line 2: server.address: "192.0.2.10": address 192.0.2.10: missing port in address`},
		{"port out of range", "server:\n  address: host:70000\n",
			`config line 2: server.address: "host:70000": port "70000" is not 1..65535`},
		{"driver without port", head + "hal:\n  face:\n    driver: fm22x\n",
			`config line 4: hal.face.port: required with driver fm22x`},
		{"unknown driver", head + "hal:\n  door:\n    driver: relay\n",
			`config line 5: hal.door.driver: "relay" is not one of none, gpio, lcus`},
		{"bad baud", head + "hal:\n  card:\n    baud: 1234\n",
			`config line 5: hal.card.baud: 1234 is not a serial speed`},
		{"window", head + "upload:\n  window: 2000\n",
			`config line 4: upload.window: 2000 is outside 1..1024`},
		{"command action", head + "commands:\n  5:\n    action: reboot\n",
			`config line 5: commands.5.action: "reboot" is not one of open_door, message, restart, release_quarantine, hook`},
		{"command hook path", head + "commands:\n  5:\n    action: hook\n",
			`config line 4: commands.5.hook: "" is not an absolute path to a program`},
		{"command type", head + "commands:\n  five:\n    action: restart\n",
			`config line 4: commands.five: "five" is not a number`},
		{"listen without allow", "server:\n  listen:\n    enabled: true\n",
			`config line 2: server.listen.allow: required in listen mode: the addresses the server connects from`},
		{"bad allow", "server:\n  listen:\n    enabled: true\n    allow: [10.0.0.1, 10.0.0/8]\n",
			`config line 4: server.listen.allow[1]: "10.0.0/8" is not an IP address or CIDR`},
		{"time zone", head + "device:\n  time_zone: Mars/Olympus\n",
			`config line 4: device.time_zone: "Mars/Olympus": unknown time zone Mars/Olympus`},
		{"card format", head + "hal:\n  card:\n    format:\n      style: oct\n",
			`config line 5: hal.card.format: unknown style "oct" (want dec, hex, w26 or text)`},
		{"syntax", head + "log:\n  level: [info\n",
			`config line 3: did not find expected ',' or ']'`}, // yaml's line: where the flow started
		{"alias", head + "log: &l\n  level: info\n",
			`config line 3: log: anchors and aliases are not supported`},
		{"two documents", head + "---\nlog: {}\n",
			`config line 3: more than one YAML document`},
		{"top level list", "- a\n",
			`config line 1: want a section of keys, not a list`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := loadConfig(writeConfig(t, c.text))
			if err == nil {
				t.Fatalf("no error, want %q", c.want)
			}
			if !strings.HasPrefix(err.Error(), c.want) {
				t.Errorf("error\n  %s\nwant\n  %s", err, c.want)
			}
		})
	}
}

func TestConfigTooLarge(t *testing.T) {
	_, err := loadConfig(writeConfig(t, "log:\n  level: info\n"+strings.Repeat("# padding\n", maxConfigSize/10+1)))
	if err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("err = %v, want a size error", err)
	}
}

func TestEmptyFileNeedsOnlyAnAddress(t *testing.T) {
	_, err := loadConfig(writeConfig(t, ""))
	if err == nil || !strings.Contains(err.Error(), "server.address: required") {
		t.Fatalf("err = %v, want server.address required", err)
	}
	c, err := loadConfig(writeConfig(t, "server:\n  listen:\n    enabled: true\n    allow: [127.0.0.1]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Server.ServerAddress != "" || !c.Server.Listen.Enabled {
		t.Errorf("listen config: %+v", c.Server)
	}
}

// check-config and run report every problem of a file at once, the
// decoder's (unknown key, wrong type) and the validation's, in file order,
// each on its own line starting with the file's name.
func TestEveryConfigProblemReported(t *testing.T) {
	path := writeConfig(t, "server:\n  address: 192.0.2.1:1\n  adress: x\n  backoff_min: 5s\n  backoff_max: 1s\n"+
		"hal:\n  card: {baud: fast}\nlog: {level: loud}\n")
	want := []string{
		"config line 3: server.adress: unknown key (known here: address, transport, ws_path, tls,",
		"config line 5: server.backoff_max: 1s is less than the minimum 5s",
		`config line 7: hal.card.baud: "fast" is not a number`,
		`config line 8: log.level: "loud" is not one of debug, info, warn, error`,
	}
	for _, cmd := range []string{"check-config", "run"} {
		code, out, errOut := runCLI(t, cmd, "-config", path)
		lines := strings.Split(strings.TrimSpace(errOut), "\n")
		if code != exitUsage || out != "" || len(lines) != len(want) {
			t.Errorf("%s: exit %d, stdout %q, %d lines; want 2, nothing, %d lines:\n%s", cmd, code, out, len(lines), len(want), errOut)
			continue
		}
		for i, w := range want {
			if !strings.HasPrefix(lines[i], path+": "+w) {
				t.Errorf("%s: line %d\n got %s\nwant %s: %s", cmd, i+1, lines[i], path, w)
			}
		}
	}
}

// The control socket's default is beside the database, so a user who can
// write the database directory can run the terminal with the example's
// defaults and store.path alone changed.
func TestDefaultSocketBesideTheStore(t *testing.T) {
	dir := t.TempDir()
	path := writeConfig(t, "server: {address: 192.0.2.1:1}\nstore: {path: "+dir+"/db/termagent.db}\n")
	c, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "db", "termagent.sock"); c.Control.Socket != want {
		t.Errorf("control.socket = %q, want %q", c.Control.Socket, want)
	}
	if code, out, errOut := runCLI(t, "check-config", "-config", path); code != 0 || !strings.HasSuffix(out, ": ok\n") {
		t.Errorf("check-config: exit %d, %q %q", code, out, errOut)
	}
}

// The agent's validation errors name the file's key of the field, never
// the agent's Go field path, however the file arranges the field.
func TestAgentProblemsNameTheKey(t *testing.T) {
	_, err := loadConfig(writeConfig(t, `
server:
  address: 192.0.2.1:1
  ws_path: x
  tls: {pin_sha256: ab, ca_file: ca.pem, cert_file: /c.pem}
  backoff_min: 5s
  backoff_max: 1s
  max_message: 1
  listen: {host: nowhere, device_port: 70000, allow: [10.0.0.1, x]}
device: {in_out_type: 3, device_ip: 1.2.3}
access: {open_door_type: {card: -1}}
upload: {window: 2000, nearly_full: 2, retry_min: 2s, retry_max: 1s}
modules: {retry_min: 2s, retry_max: 1s}
events: {queue: 200000}
commands: {9: {action: open_door, hook: /bin/true}}
hooks: {restart: reboot}
`))
	var errs configErrors
	if !errors.As(err, &errs) {
		t.Fatalf("err = %v, want several config errors", err)
	}
	var got []string
	for _, e := range errs {
		got = append(got, e.Path)
	}
	want := []string{
		"server.ws_path", "server.tls.pin_sha256", "server.tls.cert_file", "server.tls.ca_file",
		"server.backoff_max", "server.max_message", "server.listen.device_port", "server.listen.host",
		"server.listen.allow[1]", "device.in_out_type", "device.device_ip", "access.open_door_type.card",
		"upload.window", "upload.retry_max", "upload.nearly_full", "modules.retry_max", "events.queue",
		"commands.9.hook", "hooks.restart",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("problems at\n%v\nwant\n%v\n%v", got, want, err)
	}
}

// The terminal's keys (PIN entry, verification, door watch, feedback and
// the drivers of issue 14) reach the agent and the drivers.
func TestTerminalKeysReachTheAgent(t *testing.T) {
	c, err := loadConfig(writeConfig(t, `
server: {address: "192.0.2.1:1"}
pin: {enter: "A", clear: "B", max_length: 6, timeout: 4s, lockout_after: 5, lockout_window: 2m, lockout_for: 5s}
verify: {mode: card+pin, pin_timeout: 7s}
door_watch: {held_open: 3s, grace: 500ms, record_exit: true}
feedback:
  grant: {buzzer: "50ms", red: "1s,200ms,1s"}
  deny: {green: "300ms"}
  hook: /usr/local/bin/show
access: {open_door_type: {exit_button: 16}}
events: {pin_lockout: 18, door_held_open: 19, door_forced: 20}
hal:
  card: {driver: wiegand, wiegand: {chip: gpiochip1, d0: "5", d1: "6", gap: 30ms}, format: {style: w26}}
  keypad: {driver: wiegand, wiegand: {chip: gpiochip1, d0: "5", d1: "6"}}
  door_inputs: {driver: evdev, device: /dev/input/by-path/platform-gpio-keys-event, sensor: {type: 1, code: 200}, no_button: true}
  feedback: {buzzer: {line: BUZZER, active_low: true}, red: {chip: gpiochip2, line: "7"}}
`))
	if err != nil {
		t.Fatal(err)
	}
	a := c.agentConfig().WithDefaults()
	if err := a.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, ck := range []struct {
		key       string
		got, want any
	}{
		{"pin.enter", a.PIN.Enter, agent.PINKey('A')},
		{"pin.clear", a.PIN.Clear, agent.PINKey('B')},
		{"pin.max_length", a.PIN.MaxLength, 6},
		{"pin.timeout", a.PIN.Timeout, 4 * time.Second},
		{"pin.lockout_after", a.PIN.LockoutAfter, 5},
		{"pin.lockout_window", a.PIN.LockoutWindow, 2 * time.Minute},
		{"pin.lockout_for", a.PIN.LockoutFor, 5 * time.Second},
		{"verify.mode", a.Verify.Mode, agent.VerifyCardPIN},
		{"verify.pin_timeout", a.Verify.PINTimeout, 7 * time.Second},
		{"door_watch.held_open", a.DoorWatch.HeldOpen, 3 * time.Second},
		{"door_watch.grace", a.DoorWatch.Grace, 500 * time.Millisecond},
		{"door_watch.record_exit", a.DoorWatch.RecordExit, true},
		{"feedback.grant.buzzer", a.Feedback.Grant.Buzzer, agent.Pattern{50 * time.Millisecond}},
		{"feedback.grant.red", a.Feedback.Grant.Red, agent.Pattern{time.Second, 200 * time.Millisecond, time.Second}},
		{"feedback.grant.green (default)", a.Feedback.Grant.Green, agent.Pattern{2 * time.Second}},
		{"feedback.deny.green", a.Feedback.Deny.Green, agent.Pattern{300 * time.Millisecond}},
		{"feedback.hook", a.Feedback.Hook, "/usr/local/bin/show"},
		{"access.open_door_type.exit_button", a.Access.OpenDoorTypes.ExitButton, 16},
		{"events.pin_lockout", a.Events.PINLockout, 18},
		{"events.door_held_open", a.Events.DoorHeldOpen, 19},
		{"events.door_forced", a.Events.DoorForced, 20},
		{"hal.card.wiegand.d0", c.HAL.Card.Wiegand.D0, "5"},
		{"hal.card.wiegand.gap", c.HAL.Card.Wiegand.Gap, 30 * time.Millisecond},
		{"one wiegand reader", c.HAL.sameWiegandLines(), true},
		{"hal.door_inputs.device", c.HAL.DoorInputs.Device, "/dev/input/by-path/platform-gpio-keys-event"},
		{"hal.door_inputs.sensor", c.HAL.DoorInputs.Sensor, evdev.DoorInputCode{Type: 1, Code: 200}},
		{"hal.door_inputs.no_button", c.HAL.DoorInputs.NoButton, true},
		{"hal.feedback.buzzer", c.HAL.Feedback.Buzzer, OutputConfig{Line: "BUZZER", ActiveLow: true}},
		{"hal.feedback.red", c.HAL.Feedback.Red, OutputConfig{Chip: "gpiochip2", Line: "7"}},
	} {
		if !reflect.DeepEqual(ck.got, ck.want) {
			t.Errorf("%s = %#v, want %#v", ck.key, ck.got, ck.want)
		}
	}
}

// Bad terminal values are each named by their key in the file.
func TestTerminalConfigErrors(t *testing.T) {
	const head = "server:\n  address: 192.0.2.10:49003\n" // lines 1-2
	for _, c := range []struct {
		name, text, want string
	}{
		{"long key", head + "pin:\n  enter: \"##\"\n", `config line 4: pin.enter: "##" is not one key (* # or A-D)`},
		{"digit key", head + "pin:\n  clear: \"5\"\n", `pin.clear: '5' is not * # or A-D`},
		{"same keys", head + "pin:\n  clear: \"#\"\n", `pin.clear: '#' is also PIN.Enter`},
		{"pin length", head + "pin:\n  max_length: 65\n", `pin.max_length: 65 is outside 1..64`},
		{"lockout", head + "pin:\n  lockout_after: 0\n  lockout_for: -1s\n", `config line 5: pin.lockout_for: -1s is negative`},
		{"verify mode", head + "verify:\n  mode: face+pin\n", `verify.mode: "face+pin" is not "any" or "card+pin"`},
		{"card+pin without keypad", head + "verify:\n  mode: card+pin\n", `verify.mode: card+pin needs a card reader (hal.card) and a keypad (hal.keypad)`},
		{"pattern syntax", head + "feedback:\n  grant:\n    buzzer: 100ms,loud\n", `config line 5: feedback.grant.buzzer: "loud" is not a duration (e.g. 200ms)`},
		{"pattern limits", head + "feedback:\n  deny:\n    red: 11s\n", `feedback.deny.red: step 1 is 11s, want 1ms..10s`},
		{"keypad driver", head + "hal:\n  keypad:\n    driver: usb\n", `hal.keypad.driver: "usb" is not one of none, serial, evdev, wiegand`},
		{"keypad port", head + "hal:\n  keypad:\n    driver: serial\n", `hal.keypad.port: required with driver serial`},
		{"keypad port shared", head + "hal:\n  keypad: {driver: serial, port: /dev/ttyS1}\n  card: {driver: rdm6300, port: /dev/ttyS1}\n", `hal.keypad.port: "/dev/ttyS1" is also hal.card.port`},
		{"wedge device", head + "hal:\n  card:\n    driver: evdev\n", `hal.card.evdev.device: required with driver evdev`},
		{"wedge event size", head + "hal:\n  card: {driver: evdev, evdev: {device: /dev/input/event3, event_size: 20}}\n", `hal.card.evdev.event_size: 20 is not 16 or 24`},
		{"wiegand lines", head + "hal:\n  keypad: {driver: wiegand, wiegand: {d0: \"5\"}}\n", `hal.keypad.wiegand.d1: required with driver wiegand`},
		{"door inputs", head + "hal:\n  door_inputs: {driver: evdev}\n", `hal.door_inputs.device: required with driver evdev`},
		{"door input type", head + "hal:\n  door_inputs: {driver: evdev, device: /dev/input/event1, sensor: {type: 3, code: 1}}\n", `hal.door_inputs.sensor.type: 3 is not 5 (EV_SW) or 1 (EV_KEY)`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := loadConfig(writeConfig(t, c.text))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error\n  %v\nwant\n  %s", err, c.want)
			}
		})
	}
}

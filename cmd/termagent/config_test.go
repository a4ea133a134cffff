package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"termagent/agent"
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

// keyPaths lists the dotted key path of every leaf of the Config type.
func keyPaths(t reflect.Type, prefix string) []string {
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		path := join(prefix, name)
		if f.Type.Kind() == reflect.Struct && f.Type != durationType {
			out = append(out, keyPaths(f.Type, path)...)
			continue
		}
		out = append(out, path)
	}
	return out
}

// The example file sets every key to its documented default (server.address
// aside, which has none), so loading it must give exactly the defaults, and
// it must mention every key the Config type has.
func TestExampleConfigDocumentsTheDefaults(t *testing.T) {
	f, err := os.Open("termagent.example.yaml")
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

	got, err := loadConfig("termagent.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := Config{Server: ServerConfig{Address: "192.0.2.10:49003"}}.withDefaults()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("example file differs from the defaults:\n got %+v\nwant %+v", got, want)
	}
	// The defaults are the values the example states, spelled out for the
	// keys whose default is not the type's zero value.
	for _, c := range []struct {
		key       string
		got, want any
	}{
		{"server.transport", got.Server.Transport, "tcp"},
		{"server.backoff_max", got.Server.BackoffMax, time.Minute},
		{"server.fallback_after", got.Server.FallbackAfter, 5 * time.Minute},
		{"server.max_message", got.Server.MaxMessage, 16 << 20},
		{"server.listen.device_port", got.Server.Listen.DevicePort, 1545},
		{"server.read_timeout", got.Server.ReadTimeout, time.Duration(0)},
		{"store.path", got.Store.Path, "/var/lib/termagent/termagent.db"},
		{"store.outbox_capacity", got.Store.OutboxCapacity, 100000},
		{"store.when_full", got.Store.WhenFull, "drop_oldest"},
		{"device.in_out_type", got.Device.InOutType, 1},
		{"hal.card.driver", got.HAL.Card.Driver, "none"},
		{"hal.card.format.style", got.HAL.Card.Format.Style, "dec"},
		{"hal.fingerprint.address", got.HAL.Fingerprint.Address, uint32(0xFFFFFFFF)},
		{"hal.fingerprint.baud", got.HAL.Fingerprint.Baud, 57600},
		{"hal.face.baud", got.HAL.Face.Baud, 115200},
		{"hal.door.pulse", got.HAL.Door.Pulse, 3 * time.Second},
		{"access.open_door_type.remote", got.Access.OpenDoorType.Remote, 4},
		{"upload.window", got.Upload.Window, 8},
		{"upload.max_attempts", got.Upload.MaxAttempts, 10},
		{"upload.nearly_full", got.Upload.NearlyFull, 0.8},
		{"commands", got.Commands, map[int]CommandConfig{1: {Action: "open_door"}, 2: {Action: "message"}, 3: {Action: "restart"}}},
		{"hooks.timeout", got.Hooks.Timeout, 10 * time.Second},
		{"control.socket", got.Control.Socket, "/run/termagent/termagent.sock"},
		{"log.level", got.Log.Level, "info"},
		{"log.format", got.Log.Format, "json"},
	} {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %v, want %v", c.key, c.got, c.want)
		}
	}
}

// A minimal file and the example give the same agent configuration, and it
// passes the agent's own validation.
func TestMinimalConfigMapsToAgent(t *testing.T) {
	min, err := loadConfig(writeConfig(t, "server:\n  address: 192.0.2.10:49003\n"))
	if err != nil {
		t.Fatal(err)
	}
	ex, err := loadConfig("termagent.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	a, err := min.agentConfig()
	if err != nil {
		t.Fatal(err)
	}
	b, err := ex.agentConfig()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Errorf("minimal and example files map differently:\n%+v\n%+v", a, b)
	}
	if a.Link.ServerAddress != "192.0.2.10:49003" || a.Upload.Window != 8 || a.Access.DoorPulse != 3*time.Second ||
		a.Device.DevicePort != 1545 || a.Device.SoftwareVersion != version || a.Commands[1].Action != agent.ActionOpenDoor {
		t.Errorf("agent config not mapped: %+v", a)
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
		{"server.address", c.Server.Address, "[2001:db8::1]:9000"},
		{"server.transport", c.Server.Transport, "wss"},
		{"server.listen.allow", c.Server.Listen.Allow, []string{"10.0.0.0/24", "192.0.2.7"}},
		{"server.read_timeout", c.Server.ReadTimeout, 30 * time.Second},
		{"device.community_code", c.Device.CommunityCode, "0012"},
		{"device.in_out_type", c.Device.InOutType, 2},
		{"hal.card.format.separator", c.HAL.Card.Format.Separator, ","},
		{"hal.card.baud", c.HAL.Card.Baud, 9600},
		{"hal.door.active_low", c.HAL.Door.ActiveLow, true},
		{"hal.door.pulse", c.HAL.Door.Pulse, 500 * time.Millisecond},
		{"hal.door.sensor.line", c.HAL.Door.Sensor.Line, "17"},
		{"upload.window", c.Upload.Window, 1},
		{"commands", c.Commands, map[int]CommandConfig{7: {Action: "hook", Hook: "/usr/local/bin/buzz"}}},
		{"log.format", c.Log.Format, "console"},
	} {
		if !reflect.DeepEqual(ck.got, ck.want) {
			t.Errorf("%s = %#v, want %#v", ck.key, ck.got, ck.want)
		}
	}
	ac, err := c.agentConfig()
	if err != nil {
		t.Fatal(err)
	}
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
			`config line 5: hal.card.speed: unknown key (known here: driver, port, baud, format, line, repeat_window)`},
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
	if c.Server.Address != "" || !c.Server.Listen.Enabled {
		t.Errorf("listen config: %+v", c.Server)
	}
}

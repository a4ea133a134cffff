package agent

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestConfigDefaults(t *testing.T) {
	c := Config{}.WithDefaults()
	checks := []struct {
		name      string
		got, want any
	}{
		{"InOutType", c.Device.InOutType, 1},
		{"DevicePort", c.Device.DevicePort, 1545},
		{"Location", c.Device.Location, time.Local},
		{"Transport", c.Link.Transport, "tcp"},
		{"KeepAlive", c.Link.KeepAlive, 30 * time.Second},
		{"BackoffMin", c.Link.BackoffMin, time.Second},
		{"BackoffMax", c.Link.BackoffMax, time.Minute},
		{"FallbackAfter", c.Link.FallbackAfter, 5 * time.Minute},
		{"ReadTimeout without heartbeat", c.Link.ReadTimeout, time.Duration(0)},
		{"MaxMessageSize", c.Link.MaxMessageSize, 16 << 20},
		{"Window", c.Upload.Window, 8},
		{"NearlyFull", c.Upload.NearlyFull, 0.8},
		{"DoorPulse", c.Access.DoorPulse, 3 * time.Second},
		{"DoorTimeout", c.Access.DoorTimeout, 2 * time.Second},
		{"RecordTimeout", c.Access.RecordTimeout, time.Second},
		{"DoorFault", c.Events.DoorFault, 5},
		{"Remote", c.Access.OpenDoorTypes.Remote, 4},
		{"Commands", len(c.Commands), 4},
		{"ReleaseQuarantine", c.Commands[4].Action, ActionReleaseQuarantine},
		{"QuarantineRetry", c.Upload.QuarantineRetry, 15 * time.Minute},
		{"DatabaseRecovered", c.Events.DatabaseRecovered, 6},
		{"RecordsQuarantined", c.Events.RecordsQuarantined, 7},
		{"HookTimeout", c.Hooks.Timeout, 10 * time.Second},
	}
	for _, ck := range checks {
		if ck.got != ck.want {
			t.Errorf("%s = %v, want %v", ck.name, ck.got, ck.want)
		}
	}
	hb := Config{Link: LinkConfig{Heartbeat: HeartbeatConfig{Mod: "heartbeat", Interval: 10 * time.Second}}}.WithDefaults()
	if hb.Link.ReadTimeout != 30*time.Second {
		t.Errorf("ReadTimeout with 10s heartbeat = %v, want 30s", hb.Link.ReadTimeout)
	}
	if err := (Config{}).Validate(); err != nil {
		t.Errorf("zero Config: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		field string
		c     Config
	}{
		{"Link.Transport", Config{Link: LinkConfig{Transport: "udp"}}},
		{"Link.ServerAddress", Config{Link: LinkConfig{ServerAddress: "no-port"}}},
		{"Link.ServerAddress", Config{Link: LinkConfig{ServerAddress: "1.2.3.4:70000"}}},
		{"Link.AllowedPeers", Config{Link: LinkConfig{Listen: true}}},
		{"Link.AllowedPeers", Config{Link: LinkConfig{AllowedPeers: []string{"10.0.0.300"}}}},
		{"Device.DevicePort", Config{Device: DeviceConfig{DevicePort: 70000}}},
		{"Upload.Window", Config{Upload: UploadConfig{Window: -1}}},
		{"Upload.NearlyFull", Config{Upload: UploadConfig{NearlyFull: 1.5}}},
		{"Access.DoorTimeout", Config{Access: AccessConfig{DoorTimeout: -time.Second}}},
		{"Access.RecordTimeout", Config{Access: AccessConfig{RecordTimeout: -time.Second}}},
		{"Commands[7].Hook", Config{Commands: map[int]Command{7: {Action: ActionHook}}}},
		{"Commands[8].Action", Config{Commands: map[int]Command{8: {Action: "reboot"}}}},
	}
	for _, tc := range cases {
		err := tc.c.Validate()
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("Validate() = %v, want ErrConfig naming %s", err, tc.field)
		}
	}
	ok := Config{Link: LinkConfig{Listen: true, AllowedPeers: []string{"10.0.0.5", "192.168.0.0/16", "::1"}}}
	if err := ok.Validate(); err != nil {
		t.Errorf("listen config: %v", err)
	}
}

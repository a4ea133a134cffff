package agent_test

import (
	"testing"
	"time"

	"termagent/agent"
	"termagent/protocol"
	"termagent/store"
)

// A move dials the new server at once with a fresh backoff, whatever
// backoff the old server had run up: with a backoff of an hour, the new
// server still gets the link within the test's wait.
func TestHostileServerMoveDialsAtOnce(t *testing.T) {
	srvA := newTestServer(t)
	srvB := newTestServer(t)
	db := openStore(t, store.Config{})
	cfg := agent.Config{Link: agent.LinkConfig{ServerAddress: srvA.addr, BackoffMin: time.Hour, BackoffMax: time.Hour}}
	startAgent(t, cfg, agent.Parts{Store: db})
	m := req(protocol.ModSetDeviceInfo)
	m.DeviceInfo = &protocol.DeviceInfo{ServerIP: "127.0.0.1", ServerPort: srvB.port(), Fields: protocol.FieldServerIP | protocol.FieldServerPort}
	start := time.Now()
	if _, code, msg := call(t, srvA.peer(), m); code != 0 {
		t.Fatalf("move: code %d %q", code, msg)
	}
	srvB.peer()
	t.Logf("FAULTROW\t%s\t%s\t%s", "server move (set_device_info) after backoff built up",
		"replies, then dials the new server at once with a fresh backoff", "dial after "+time.Since(start).Round(time.Millisecond).String()+", backoff 1h")
}

package agent

import (
	"testing"
	"time"
)

// Half-open detection is on by default, and only through what an idle
// V1.0 server (no heartbeat) cannot trip: unanswered calls and blocked
// writes; the read timeout stays off without a heartbeat.
func TestHalfOpenDefaults(t *testing.T) {
	c := Config{}.WithDefaults()
	if c.Link.UnansweredCalls != 3 || c.Link.WriteTimeout != time.Minute || c.Link.CallTimeout != 30*time.Second || c.Link.ReadTimeout != 0 {
		t.Errorf("defaults: UnansweredCalls %d, WriteTimeout %v, CallTimeout %v, ReadTimeout %v; want 3, 1m, 30s, 0",
			c.Link.UnansweredCalls, c.Link.WriteTimeout, c.Link.CallTimeout, c.Link.ReadTimeout)
	}
	off := Config{Link: LinkConfig{UnansweredCalls: -1}}.WithDefaults()
	if off.Link.UnansweredCalls != -1 {
		t.Errorf("UnansweredCalls -1 became %d", off.Link.UnansweredCalls)
	}
}

// Package haltest holds the test helpers that tests across the module
// share: Eventually, the one way a test waits for a condition it cannot be
// told about (a relay that switched, a file a process wrote), and Unhex,
// which reads the golden byte vectors of the wire codecs. Only _test.go
// files import it.
//
// It lives under hal because hal is the one tree every test may import:
// hal's own packages may import nothing outside hal, and agent, cmd and
// scripts may import hal. protocol and store may not import hal, so their
// tests wait their own way (they have no such waits today).
//
// Import rule: haltest imports only the standard library.
package haltest

import (
	"encoding/hex"
	"strings"
	"testing"
	"time"
)

// Within bounds every Eventually: far above any plausible wait on a loaded
// 2-core machine, so reaching it means the condition will not come true.
const Within = 30 * time.Second

// pollEvery is how often Eventually checks its condition.
const pollEvery = 10 * time.Millisecond

// Eventually calls cond until it reports true, and fails the test (naming
// what it waited for) if that has not happened within Within. Call it from
// the test's goroutine.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(Within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(pollEvery)
	}
}

// Unhex decodes hex written with spaces between bytes ("EF 01 FF"), and
// fails the test if s is not hex.
func Unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

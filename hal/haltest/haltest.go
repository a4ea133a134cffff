// Package haltest holds the test helpers that tests across the module
// share: Eventually, the one way a test waits for a condition it cannot be
// told about (a relay that switched, a file a process wrote); Unhex, which
// reads the golden byte vectors of the wire codecs; Buffer, where logs are
// written concurrently and read by the test; BenchParse, the benchmark of a
// frame codec. Only _test.go files import it.
//
// It lives under hal because hal is the one tree every test may import:
// hal's own packages may import nothing outside hal, and agent, cmd and
// scripts may import hal. protocol and store may not import hal, so their
// tests wait their own way (they have no such waits today).
//
// Import rule: haltest imports only the standard library.
package haltest

import (
	"bytes"
	"encoding/hex"
	"strings"
	"sync"
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

// Buffer is a bytes.Buffer safe for concurrent use: a logger's or a child
// process's goroutines write while the test reads. The zero value is ready.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p; it never fails.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

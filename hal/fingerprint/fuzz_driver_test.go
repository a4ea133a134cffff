package fingerprint_test

import (
	"context"
	"testing"
	"time"

	"termagent/hal/fingerprint"
	"termagent/hal/haltest"
	"termagent/hal/internal/modlinktest"
)

// FuzzDriverReplies: whatever the module answers, every operation of the
// driver returns (no panic, no hang) and Close ends it.
func FuzzDriverReplies(f *testing.F) {
	for _, s := range []string{
		"EF 01 FF FF FF FF 07 00 03 00 00 0A",
		"EF 01 FF FF FF FF 07 00 03 02 00 0C",
		"EF 01 FF FF FF FF 07 00 07 00 00 05 00 64 00 77",
		"EF 01 FF FF FF FF 07 00 13 00 00 00 00 00 00 50 00 03 FF FF FF FF 00 02 00 0C 04 77",
		"55 EF 01 FF FF FF FF 07 01 02",
	} {
		f.Add(haltest.Unhex(f, s))
	}
	f.Fuzz(func(t *testing.T, reply []byte) {
		port := modlinktest.NewReplyPort(reply)
		m, err := fingerprint.New(port, fingerprint.Config{
			CommandTimeout: 20 * time.Millisecond, SlowTimeout: 20 * time.Millisecond,
			ByteGap: 5 * time.Millisecond, PollInterval: time.Millisecond,
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_ = m.Probe(ctx)
		_, _ = m.Slots(ctx)
		_ = m.Store(ctx, 1, make([]byte, 512))
		_ = m.Delete(ctx, 1)
		_ = m.Clear(ctx)
		_, _ = m.Identify(ctx)
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

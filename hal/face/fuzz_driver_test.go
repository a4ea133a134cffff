package face_test

import (
	"context"
	"testing"
	"time"

	"termagent/hal/face"
	"termagent/hal/haltest"
	"termagent/hal/internal/modlinktest"
)

// FuzzDriverReplies: whatever the module answers, every operation of the
// driver returns (no panic, no hang) and Close ends it.
func FuzzDriverReplies(f *testing.F) {
	for _, s := range []string{
		"EF AA 00 00 03 11 00 00 12",
		"EF AA 01 00 01 00 00",
		"EF AA 00 00 05 24 00 01 00 01 21",
		"EF AA 00 00 06 F7 00 00 01 00 01 F1",
		"55 EF AA 00 FF FF",
	} {
		f.Add(haltest.Unhex(f, s))
	}
	f.Fuzz(func(t *testing.T, reply []byte) {
		port := modlinktest.NewReplyPort(reply)
		m, err := face.New(port, face.Config{
			CommandTimeout: 20 * time.Millisecond, DeleteTimeout: 20 * time.Millisecond,
			EnrollTimeout: 20 * time.Millisecond, ByteGap: 5 * time.Millisecond,
			VerifySeconds: 1, PhotoEnrollMsgID: face.MsgEnrollWithPhoto, PhotoChunk: 100,
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_ = m.Probe(ctx)
		_, _ = m.Users(ctx)
		_, _ = m.Enroll(ctx, "x", make([]byte, 250))
		_ = m.Delete(ctx, 1)
		_ = m.Clear(ctx)
		_, _ = m.Recognize(ctx)
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

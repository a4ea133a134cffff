package haltest_test

import (
	"bytes"
	"sync"
	"sync/atomic"
	"testing"

	"termagent/hal/haltest"
)

func TestEventuallyWaitsForTheCondition(t *testing.T) {
	var calls atomic.Int32
	haltest.Eventually(t, "the third call", func() bool { return calls.Add(1) == 3 })
	if n := calls.Load(); n != 3 {
		t.Fatalf("cond called %d times, want 3", n)
	}
}

func TestUnhex(t *testing.T) {
	if got := haltest.Unhex(t, "EF 01 ff 00"); !bytes.Equal(got, []byte{0xEF, 0x01, 0xFF, 0x00}) {
		t.Fatalf("Unhex = % X", got)
	}
}

func TestBufferConcurrent(t *testing.T) {
	var b haltest.Buffer
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 100 {
				b.Write([]byte("x"))
				_ = b.String()
			}
		})
	}
	wg.Wait()
	if n := len(b.String()); n != 400 {
		t.Fatalf("%d bytes, want 400", n)
	}
}

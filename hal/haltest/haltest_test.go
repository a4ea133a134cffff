package haltest_test

import (
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

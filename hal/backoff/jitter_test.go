package backoff

import (
	"testing"
	"time"
)

func TestJitter(t *testing.T) {
	for _, tc := range []struct {
		c    time.Duration
		r    float64
		want time.Duration
	}{
		{8 * time.Second, 0, 8 * time.Second}, // r = 0: the ceiling itself
		{8 * time.Second, 0.5, 4 * time.Second},
		{8 * time.Second, 0.9999999999999999, 1}, // never 0: a retry always waits a little
		{0, 0.5, 0},
		{-time.Second, 0.5, 0},
	} {
		if got := jitter(tc.c, tc.r); got != tc.want {
			t.Errorf("jitter(%v, %v) = %v, want %v", tc.c, tc.r, got, tc.want)
		}
	}
}

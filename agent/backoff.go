package agent

import (
	"math/rand/v2"
	"time"
)

// Backoff is an exponential backoff with full jitter: the wait before retry
// number attempt (0-based) is uniform in (0, min(Max, Min·2^attempt)].
// It is a value; the caller keeps the attempt count and resets it to 0 after
// a success.
type Backoff struct {
	// Min is the first ceiling (attempt 0). Must be > 0.
	Min time.Duration
	// Max caps every ceiling.
	Max time.Duration
	// Rand returns a float in [0, 1); nil means math/rand/v2.Float64.
	Rand func() float64
}

// Ceiling is the upper bound of the wait before retry number attempt.
func (b Backoff) Ceiling(attempt int) time.Duration {
	if b.Min <= 0 {
		return 0
	}
	c := b.Min
	for i := 0; i < attempt && c < b.Max; i++ {
		c *= 2
	}
	if c > b.Max {
		c = b.Max
	}
	return c
}

// Delay returns the wait before retry number attempt: a uniformly random
// duration in (0, Ceiling(attempt)].
func (b Backoff) Delay(attempt int) time.Duration {
	c := b.Ceiling(attempt)
	if c <= 0 {
		return 0
	}
	r := rand.Float64
	if b.Rand != nil {
		r = b.Rand
	}
	d := time.Duration((1 - r()) * float64(c)) // (0, c]
	if d <= 0 {
		d = 1
	}
	return d
}

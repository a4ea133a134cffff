// Package backoff is termagent's one retry schedule: exponential backoff
// with full jitter, as a value (Policy), and a sleep that ends with its
// context (Sleep). The agent paces its reconnections, module retries and
// uploads with it; hal/serialport paces the reopening of a vanished port.
//
// It lives under hal because hal's packages may import nothing outside hal,
// while agent and cmd may import hal: here every user can reach it.
//
// Import rule: backoff imports only the standard library.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Defaults for the zero fields of a Policy: a device that comes back is
// found within about 2 s.
const (
	DefaultMin = 100 * time.Millisecond
	DefaultMax = 2 * time.Second
)

// Policy is an exponential backoff with full jitter: the wait before retry
// number attempt (0-based) is uniform in (0, min(Max, Min·2^attempt)], so
// that many clients do not retry in lockstep. It is a value; the caller
// keeps the attempt count and resets it to 0 after a success. A Policy is
// comparable and safe for concurrent use; the zero Policy is ready to use.
type Policy struct {
	// Min is the first ceiling (attempt 0); zero means DefaultMin, and a
	// negative Min means no wait at all.
	Min time.Duration
	// Max caps every ceiling; zero means DefaultMax, or Min if larger.
	Max time.Duration
}

// WithDefaults returns p with its zero fields set to the defaults.
func (p Policy) WithDefaults() Policy {
	if p.Min == 0 {
		p.Min = DefaultMin
	}
	if p.Max == 0 {
		p.Max = max(DefaultMax, p.Min)
	}
	return p
}

// Ceiling is the upper bound of the wait before retry number attempt.
func (p Policy) Ceiling(attempt int) time.Duration {
	p = p.WithDefaults()
	if p.Min < 0 {
		return 0
	}
	c := p.Min
	for i := 0; i < attempt && c < p.Max; i++ {
		c *= 2
	}
	if c > p.Max {
		c = p.Max
	}
	return c
}

// Delay returns the wait before retry number attempt: a uniformly random
// duration in (0, Ceiling(attempt)].
func (p Policy) Delay(attempt int) time.Duration {
	return jitter(p.Ceiling(attempt), rand.Float64())
}

// jitter maps r in [0, 1) to a duration in (0, c]; 0 when c is not positive.
func jitter(c time.Duration, r float64) time.Duration {
	if c <= 0 {
		return 0
	}
	d := time.Duration((1 - r) * float64(c)) // (0, c]
	if d <= 0 {
		d = 1
	}
	return d
}

// Sleep waits d and reports true, or reports false as soon as ctx is done.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

package backoff_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"termagent/hal/backoff"
)

func TestPolicy(t *testing.T) {
	b := backoff.Policy{Min: time.Second, Max: 60 * time.Second}
	wantCeil := []time.Duration{1, 2, 4, 8, 16, 32, 60, 60, 60}
	for i, w := range wantCeil {
		if got := b.Ceiling(i); got != w*time.Second {
			t.Errorf("Ceiling(%d) = %v, want %v", i, got, w*time.Second)
		}
	}
	if got := b.Ceiling(1000); got != 60*time.Second {
		t.Errorf("Ceiling(1000) = %v (overflow?)", got)
	}
	var zero backoff.Policy
	if c0, c9 := zero.Ceiling(0), zero.Ceiling(9); c0 != backoff.DefaultMin || c9 != backoff.DefaultMax {
		t.Errorf("zero Policy ceilings %v..%v, want the defaults %v..%v", c0, c9, backoff.DefaultMin, backoff.DefaultMax)
	}
	if d := zero.Delay(9); d <= 0 || d > backoff.DefaultMax {
		t.Errorf("zero Policy Delay(9) = %v, want in (0, %v]", d, backoff.DefaultMax)
	}
	if c := (backoff.Policy{Min: 5 * time.Second}).Ceiling(0); c != 5*time.Second {
		t.Errorf("Min 5s, Max zero: Ceiling(0) = %v, want 5s (Max defaults to Min when larger)", c)
	}
	if d := (backoff.Policy{Min: -1}).Delay(3); d != 0 {
		t.Errorf("negative Min: Delay = %v, want 0", d)
	}
	// Real randomness stays inside (0, ceiling] and is spread out.
	seen := map[time.Duration]bool{}
	for range 200 {
		d := b.Delay(2)
		if d <= 0 || d > 4*time.Second {
			t.Fatalf("Delay(2) = %v outside (0, 4s]", d)
		}
		seen[d/(500*time.Millisecond)] = true
	}
	if len(seen) < 5 {
		t.Errorf("Delay(2) not jittered across (0, 4s]: buckets %v", seen)
	}
}

func TestSleep(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		if !backoff.Sleep(context.Background(), 3*time.Second) {
			t.Fatal("Sleep with a live ctx reported false")
		}
		if got := time.Since(start); got != 3*time.Second {
			t.Fatalf("Sleep(3s) took %v", got)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		start = time.Now()
		if backoff.Sleep(ctx, time.Hour) {
			t.Fatal("Sleep past ctx's end reported true")
		}
		if got := time.Since(start); got != time.Second {
			t.Fatalf("Sleep ended %v after start, want when ctx ended (1s)", got)
		}
	})
}

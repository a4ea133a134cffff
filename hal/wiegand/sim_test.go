package wiegand

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"termagent/hal/sim"
)

// The driver against the simulator's Wiegand timelines: a PIN on a 4-bit
// keypad, the same on an 8-bit one, then a W34 and a W37 card.
func TestReaderOnSimTimeline(t *testing.T) {
	var bursts [][]bool
	for _, width := range []int{4, 8} {
		for _, k := range []byte("1234#") {
			b, err := sim.WiegandKey(width, k)
			if err != nil {
				t.Fatal(err)
			}
			bursts = append(bursts, b)
		}
	}
	w34, err := sim.WiegandCard(34, 0x6B3D12D6)
	if err != nil {
		t.Fatal(err)
	}
	w37, err := sim.WiegandCard(37, 1234<<19|56789)
	if err != nil {
		t.Fatal(err)
	}
	bursts = append(bursts, w34, w37)
	pulses := sim.WiegandTimeline(10*time.Millisecond, 2*time.Millisecond, 200*time.Millisecond, bursts...)
	edges := make([]Edge, len(pulses))
	for i, p := range pulses {
		edges[i] = Edge{Line: D0, At: p.At}
		if p.One {
			edges[i].Line = D1
		}
	}
	synctest.Test(t, func(t *testing.T) {
		r, lines := newReader(t, Config{})
		lines.play(edges)
		ctx := context.Background()
		var keys []byte
		for range 10 {
			k, err := r.ReadKey(ctx)
			if err != nil {
				t.Fatal(err)
			}
			keys = append(keys, k.Char)
		}
		if string(keys) != "1234#1234#" {
			t.Fatalf("keys %q", keys)
		}
		for _, want := range []string{"1799164630", "0647028181"} { // 0x6B3D12D6; 0x2690DDD5
			c, err := r.ReadCard(ctx)
			if err != nil || c.Number != want {
				t.Fatalf("card %+v %v, want %s", c, err, want)
			}
		}
		if s := r.Stats(); s.Errors() != 0 {
			t.Fatalf("read errors %+v", s)
		}
	})
	if _, err := sim.WiegandCard(26, 1<<24); err == nil {
		t.Fatal("25-bit payload in a W26 frame accepted")
	}
}

package wiegand

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"testing/synctest"
	"time"
)

// TestFaultWiegandNoise: interference on D0/D1 (random pulses) and frames
// with a flipped bit never become cards or keys; each is a counted read
// error, and a good card after them reads.
func TestFaultWiegandNoise(t *testing.T) {
	bursts := 20
	if os.Getenv("TERMAGENT_FAULTS") == "full" {
		bursts = 1000
	}
	rng := rand.New(rand.NewPCG(1, 2))
	good := "1 01100011 1110100110101110 0"
	var noise []string
	for i := range bursts {
		if i%2 == 0 { // a good frame with one bit flipped
			b := []byte(good)
			for {
				k := rng.IntN(len(b))
				if b[k] != ' ' {
					b[k] ^= 1
					break
				}
			}
			noise = append(noise, string(b))
			continue
		}
		n := 1 + rng.IntN(40) // random pulses, never a key's 4 or 8
		for n == 4 || n == 8 || n == 26 || n == 34 || n == 37 {
			n++
		}
		b := make([]byte, n)
		for k := range b {
			b[k] = '0' + byte(rng.IntN(2))
		}
		noise = append(noise, string(b))
	}
	synctest.Test(t, func(t *testing.T) {
		r, lines := newReader(t, Config{})
		start := time.Now()
		lines.play(at(10*time.Millisecond, timeline(t, 2*time.Millisecond, 100*time.Millisecond, append(noise, good)...)))
		ctx := context.Background()
		c, err := r.ReadCard(ctx)
		if err != nil || c.Number != "0006547886" {
			t.Fatalf("card after the noise %+v %v", c, err)
		}
		s := r.Stats()
		if s.Cards != 1 || s.Keys != 0 || s.Errors() != bursts {
			t.Fatalf("stats %+v, want 1 card, 0 keys, %d errors", s, bursts)
		}
		short, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		if k, err := r.ReadKey(short); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("noise became a key %+v %v", k, err)
		}
		t.Logf("FAULTROW\t%s\t%s\t%s", "Wiegand D0/D1 noise and flipped bits",
			"no card, no key; each burst a counted, logged read error; the next good card reads",
			fmt.Sprintf("bursts %d, parity %d, length %d, cards 1 (%v of simulated line time)", bursts, s.BadParity, s.BadLength, time.Since(start).Round(time.Millisecond)))
	})
}

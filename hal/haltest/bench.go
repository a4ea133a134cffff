package haltest

import (
	"bytes"
	"testing"
)

// BenchParse benchmarks a frame codec's parse over wire, a stream of
// frames (wire frames whole frames that each start with sync), as two
// sub-benchmarks: "baseline_sync_scan" finds every sync word with
// bytes.Index, "parse" decodes every frame and reports frames/s and
// x_vs_baseline, its cost relative to the baseline measured in the same
// run. parse returns the frame and the bytes it used.
func BenchParse[F any](b *testing.B, wire, sync []byte, frames int, parse func([]byte) (F, int, error)) {
	var baseNs float64
	b.Run("baseline_sync_scan", func(b *testing.B) {
		b.SetBytes(int64(len(wire)))
		for b.Loop() {
			n := 0
			for rest := wire; ; {
				i := bytes.Index(rest, sync)
				if i < 0 {
					break
				}
				n++
				rest = rest[i+len(sync):]
			}
			if n < frames {
				b.Fatalf("baseline found %d sync words, want >= %d", n, frames)
			}
		}
		baseNs = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	})
	b.Run("parse", func(b *testing.B) {
		b.SetBytes(int64(len(wire)))
		for b.Loop() {
			n := 0
			for rest := wire; len(rest) > 0; {
				_, used, err := parse(rest)
				if err != nil {
					b.Fatal(err)
				}
				n++
				rest = rest[used:]
			}
			if n != frames {
				b.Fatalf("parsed %d frames, want %d", n, frames)
			}
		}
		ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		b.ReportMetric(float64(frames)/(ns/1e9), "frames/s")
		if baseNs > 0 {
			b.ReportMetric(ns/baseNs, "x_vs_baseline")
		}
	})
}

package fingerprint

import (
	"bytes"
	"testing"
)

// benchStream is a realistic receive stream: an identify poll's ACKs and
// a 512-byte template in four 128-byte data packets, repeated.
func benchStream(b *testing.B) (wire []byte, frames int) {
	one := []Packet{
		{DefaultAddress, PIDAck, []byte{byte(CodeNoFinger)}},
		{DefaultAddress, PIDAck, []byte{0}},
		{DefaultAddress, PIDAck, []byte{0, 0, 5, 0, 100}},
		{DefaultAddress, PIDData, bytes.Repeat([]byte{0x03}, 128)},
		{DefaultAddress, PIDData, bytes.Repeat([]byte{0x01}, 128)},
		{DefaultAddress, PIDData, bytes.Repeat([]byte{0x5A}, 128)},
		{DefaultAddress, PIDEnd, bytes.Repeat([]byte{0xA5}, 128)},
	}
	for wire == nil || len(wire) < 64<<10 {
		for _, p := range one {
			var err error
			if wire, err = p.Append(wire); err != nil {
				b.Fatal(err)
			}
			frames++
		}
	}
	return wire, frames
}

// BenchmarkParse reports packets decoded per second and the cost relative
// to the trivial baseline of finding every sync word with bytes.Index over
// the same buffer, measured in the same run.
func BenchmarkParse(b *testing.B) {
	wire, frames := benchStream(b)
	var baseNs float64
	b.Run("baseline_sync_scan", func(b *testing.B) {
		b.SetBytes(int64(len(wire)))
		for b.Loop() {
			n := 0
			for rest := wire; ; {
				i := bytes.Index(rest, []byte{sync0, sync1})
				if i < 0 {
					break
				}
				n++
				rest = rest[i+2:]
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
				_, used, err := Parse(rest)
				if err != nil {
					b.Fatal(err)
				}
				n++
				rest = rest[used:]
			}
			if n != frames {
				b.Fatalf("parsed %d packets, want %d", n, frames)
			}
		}
		ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		b.ReportMetric(float64(frames)/(ns/1e9), "frames/s")
		if baseNs > 0 {
			b.ReportMetric(ns/baseNs, "x_vs_baseline")
		}
	})
}

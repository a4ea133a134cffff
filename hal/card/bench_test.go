package card_test

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"termagent/hal/card"
	"termagent/hal/sim"
)

// benchStream is n frames of protocol proto, back to back, with the byte
// that a trivial scanner would look for.
func benchStream(b *testing.B, proto string, n int) (stream []byte, mark byte) {
	dev, err := sim.NewCardReader(sim.CardReaderConfig{Protocol: proto})
	if err != nil {
		b.Fatal(err)
	}
	for i := range n {
		f, err := dev.Frame(fmt.Sprintf("%010d", 1000000+i))
		if err != nil {
			b.Fatal(err)
		}
		stream = append(stream, f...)
	}
	mark = card.STX
	if proto == sim.CardLine {
		mark = '\n'
	}
	return stream, mark
}

type decodeFunc func([]byte) (card.Read, bool, int, error)

// BenchmarkDecode measures frames per second each codec decodes from a
// buffer of back-to-back frames, and the ratio of its time to a trivial
// baseline over the same buffer in the same run: a bytes.IndexByte scan
// for each frame's start (or line end) byte.
func BenchmarkDecode(b *testing.B) {
	const frames = 1000
	for _, tc := range []struct {
		proto string
		dec   decodeFunc
	}{
		{sim.CardRDM6300, card.DecodeRDM6300},
		{sim.CardGwiot7941, card.DecodeGwiot7941},
		{sim.CardLine, card.Line{}.Decode},
	} {
		b.Run(tc.proto, func(b *testing.B) {
			stream, mark := benchStream(b, tc.proto, frames)
			b.SetBytes(int64(len(stream)))
			b.ResetTimer()
			for range b.N {
				buf, got := stream, 0
				for len(buf) > 0 {
					_, ok, adv, _ := tc.dec(buf)
					if adv == 0 {
						break
					}
					if ok {
						got++
					}
					buf = buf[adv:]
				}
				if got != frames {
					b.Fatalf("decoded %d of %d frames", got, frames)
				}
			}
			subject := b.Elapsed()
			b.StopTimer()

			start, marks := time.Now(), 0
			for range b.N {
				buf := stream
				for {
					i := bytes.IndexByte(buf, mark)
					if i < 0 {
						break
					}
					marks++
					buf = buf[i+1:]
				}
			}
			baseline := time.Since(start)
			if marks < frames*b.N {
				b.Fatalf("baseline found %d marks", marks)
			}
			b.ReportMetric(float64(frames*b.N)/subject.Seconds(), "frames/s")
			b.ReportMetric(float64(subject)/float64(max(baseline, 1)), "x_vs_baseline")
		})
	}
}

// BenchmarkSwipeLatency measures from the simulator writing one RDM6300
// frame to the pseudo-terminal to ReadCard returning the card, and reports
// it as a ratio to the frame's wire time at 9600 baud (14 bytes × 10 bits
// / 9600 = 14.6 ms): below 1 means the driver adds less than the wire does.
func BenchmarkSwipeLatency(b *testing.B) {
	dev, err := sim.NewCardReader(sim.CardReaderConfig{Repeats: 1})
	if err != nil {
		b.Fatal(err)
	}
	plug, err := sim.Attach(dev, filepath.Join(b.TempDir(), "card"))
	if err != nil {
		b.Fatal(err)
	}
	defer plug.Close()
	r, err := card.Open(card.Config{Port: plug.Path(), Baud: 9600, RepeatWindow: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	frame, _ := dev.Frame("0006547886")
	wire := time.Duration(len(frame)*10) * time.Second / 9600
	ctx := context.Background()
	b.ResetTimer()
	for range b.N {
		if err := dev.WriteRaw(frame); err != nil {
			b.Fatal(err)
		}
		if c, err := r.ReadCard(ctx); err != nil || c.Number != "0006547886" {
			b.Fatalf("ReadCard: %+v %v", c, err)
		}
	}
	perOp := b.Elapsed() / time.Duration(b.N)
	b.ReportMetric(float64(perOp)/float64(wire), "x_wire_time")
	b.ReportMetric(float64(perOp.Microseconds()), "us/swipe")
}

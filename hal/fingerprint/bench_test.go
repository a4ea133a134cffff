package fingerprint

import (
	"bytes"
	"testing"

	"termagent/hal/haltest"
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
	haltest.BenchParse(b, wire, []byte{sync0, sync1}, frames, Parse)
}

package sim

import (
	"fmt"
	"strings"
	"time"
)

// WiegandPulse is one bit on a Wiegand reader's data lines: a low pulse on
// D1 (a 1) or D0 (a 0), starting At after the timeline's start. There are
// no GPIO chips to drive in a container, so a simulated Wiegand reader is
// a recorded timeline of pulses; tests replay it at the driver's GPIO seam
// (and a gpio-sim rig can play it on real lines).
type WiegandPulse struct {
	// One says the pulse is on D1.
	One bool
	// At is the falling edge's time from the start of the timeline.
	At time.Duration
}

// WiegandCard returns the bits a reader sends for a card whose payload is
// data (the bits between the parity bits) in a frame of bits bits: 26
// (H10301: FC 8 + CN 16), 34 (32 data bits) or 37 (H10304: FC 16 + CN 19).
// The first bit is even parity over the first half of the data bits, the
// last odd parity over the second half (for 37 bits the halves share the
// middle bit). Written independently of hal/wiegand.
func WiegandCard(bits int, data uint64) ([]bool, error) {
	switch bits {
	case 26, 34, 37:
	default:
		return nil, fmt.Errorf("sim: wiegand: %d-bit frames are not simulated (26, 34, 37)", bits)
	}
	n := bits - 2
	if data >= 1<<n {
		return nil, fmt.Errorf("sim: wiegand: %#x does not fit %d data bits", data, n)
	}
	out := make([]bool, bits)
	for i := range n {
		out[1+i] = data>>(n-1-i)&1 == 1
	}
	half := (n + 1) / 2 // bits under each parity
	even, odd := 0, 0
	for i := range half {
		if out[1+i] {
			even++
		}
		if out[bits-2-i] {
			odd++
		}
	}
	out[0] = even%2 == 1     // makes the count even
	out[bits-1] = odd%2 == 0 // makes the count odd
	return out, nil
}

// WiegandKey returns the bits of one key press from a Wiegand keypad:
// width 4 sends the key's nibble, width 8 its complement and then the
// nibble. Keys are '0'–'9', '*' (10), '#' (11), 'A'–'D' (12–15).
func WiegandKey(width int, key byte) ([]bool, error) {
	v := strings.IndexByte("0123456789*#ABCD", key)
	if v < 0 {
		return nil, fmt.Errorf("sim: wiegand: no keypad key %q", key)
	}
	var code uint64
	switch width {
	case 4:
		code = uint64(v)
	case 8:
		code = uint64(^v&0xF)<<4 | uint64(v)
	default:
		return nil, fmt.Errorf("sim: wiegand: %d-bit keys are not simulated (4, 8)", width)
	}
	out := make([]bool, width)
	for i := range width {
		out[i] = code>>(width-1-i)&1 == 1
	}
	return out, nil
}

// WiegandTimeline lays bursts out in time: each burst's bits period apart,
// pause between the end of one burst and the start of the next, the first
// pulse at start.
func WiegandTimeline(start, period, pause time.Duration, bursts ...[]bool) []WiegandPulse {
	var out []WiegandPulse
	at := start
	for i, b := range bursts {
		if i > 0 {
			at += pause
		}
		for j, one := range b {
			if j > 0 {
				at += period
			}
			out = append(out, WiegandPulse{One: one, At: at})
		}
	}
	return out
}

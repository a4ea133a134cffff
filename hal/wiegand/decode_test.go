package wiegand

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

// timeline turns bursts written as bit strings ("0 0011 1" — blanks are
// ignored) into edges: bits every period, bursts pause apart.
func timeline(t testing.TB, period, pause time.Duration, bursts ...string) []Edge {
	t.Helper()
	var out []Edge
	at := time.Second
	for _, b := range bursts {
		for _, c := range strings.ReplaceAll(b, " ", "") {
			switch c {
			case '0':
				out = append(out, Edge{Line: D0, At: at})
			case '1':
				out = append(out, Edge{Line: D1, At: at})
			default:
				t.Fatalf("bit %q", c)
			}
			at += period
		}
		at += pause
	}
	return out
}

// Golden frames. The W26/W34 pair carries the UID 6B 3D 12 D6 of
// hal/card's format tests (W26 drops the first byte: FC 61, CN 4822); the W26
// EM4100 frame carries the fob printed 0006547886; the W37 frame is HID
// H10304 FC 1234 CN 56789. Parity bits worked out by hand.
func TestDecodeGoldenCards(t *testing.T) {
	for _, tc := range []struct {
		name, bits string
		data       []byte
	}{
		{"w26 3D12D6", "0 00111101 0001001011010110 1", []byte{0x3D, 0x12, 0xD6}},
		{"w26 EM fob", "1 01100011 1110100110101110 0", []byte{0x63, 0xE9, 0xAE}},
		{"w34 6B3D12D6", "0 01101011001111010001001011010110 0", []byte{0x6B, 0x3D, 0x12, 0xD6}},
		{"w37 H10304", "1 0000010011010010 0001101110111010101 0", []byte{0x00, 0x26, 0x90, 0xDD, 0xD5}},
	} {
		got := Decode(timeline(t, 2*time.Millisecond, 0, tc.bits), 0)
		if len(got) != 1 {
			t.Fatalf("%s: %d bursts, want 1: %+v", tc.name, len(got), got)
		}
		b := got[0]
		if b.Kind != KindCard || b.Err != nil || !bytes.Equal(b.Data, tc.data) {
			t.Errorf("%s: kind %v data % X err %v, want card % X", tc.name, b.Kind, b.Data, b.Err, tc.data)
		}
		if n := len(strings.ReplaceAll(tc.bits, " ", "")); b.Bits != n {
			t.Errorf("%s: bits %d, want %d", tc.name, b.Bits, n)
		}
	}
}

func TestDecodeKeys(t *testing.T) {
	// A PIN typed on a 4-bit keypad, then the same keys on an 8-bit one;
	// keys are a person's pace apart.
	four := []string{"0001", "0010", "0011", "0100", "1011", "1010", "0000", "1111"}
	eight := []string{"1110 0001", "1001 0110", "0101 1010", "0100 1011"}
	got := Decode(timeline(t, 2*time.Millisecond, 300*time.Millisecond, append(four, eight...)...), 0)
	var keys string
	for _, b := range got {
		if b.Kind != KindKey {
			t.Fatalf("burst %+v, want a key", b)
		}
		keys += string(b.Key)
	}
	if want := "1234#*0D" + "16*#"; keys != want {
		t.Fatalf("keys %q, want %q", keys, want)
	}
}

func TestDecodeErrors(t *testing.T) {
	good := "0 00111101 0001001011010110 1"
	for _, tc := range []struct {
		name, bits string
		want       error
	}{
		{"w26 flipped data bit", "0 00111101 0001001011010111 1", ErrParity},
		{"w26 flipped leading parity", "1 00111101 0001001011010110 1", ErrParity},
		{"w26 flipped trailing parity", good[:len(good)-1] + "0", ErrParity},
		{"w34 flipped", "0 01101011001111010001001011010110 1", ErrParity},
		{"w37 flipped", "0 0000010011010010 0001101110111010101 0", ErrParity},
		{"25 bits", good[2:], ErrLength},
		{"1 bit", "1", ErrLength},
		{"70 bits", strings.Repeat("10", 35), ErrLength},
		{"8-bit key bad check", "1111 0001", ErrKeyCheck},
	} {
		got := Decode(timeline(t, 2*time.Millisecond, 0, tc.bits), 0)
		if len(got) != 1 || got[0].Kind != KindError || !errors.Is(got[0].Err, tc.want) || got[0].Data != nil || got[0].Key != 0 {
			t.Errorf("%s: %+v, want one error wrapping %v", tc.name, got, tc.want)
		}
	}
}

// A reader late to read sees several frames at once; the kernel's
// timestamps still separate them, and a gap inside a frame (a reader
// glitch longer than Gap) splits it into two bad bursts, never one card.
func TestDecodeTimeline(t *testing.T) {
	w26 := "0 00111101 0001001011010110 1"
	edges := timeline(t, 2*time.Millisecond, 60*time.Millisecond, w26, w26, "0101")
	got := Decode(edges, 0)
	if len(got) != 3 || got[0].Kind != KindCard || got[1].Kind != KindCard || got[2].Key != '5' {
		t.Fatalf("bursts %+v, want card, card, key 5", got)
	}
	split := timeline(t, 2*time.Millisecond, 0, w26)
	for i := 10; i < len(split); i++ {
		split[i].At += 40 * time.Millisecond
	}
	got = Decode(split, 0)
	if len(got) != 2 || got[0].Kind != KindError || got[1].Kind != KindError {
		t.Fatalf("split frame gave %+v, want two errors", got)
	}
	// A slow reader (400 µs pulses, 2.4 ms period, the Gwiot 7941E) is
	// one burst at the default gap.
	if got := Decode(timeline(t, 2400*time.Microsecond, 0, w26), 0); len(got) != 1 || got[0].Kind != KindCard {
		t.Fatalf("slow reader: %+v", got)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte("\x00\x01\x02\x00\x01"), uint8(2))
	f.Add([]byte(strings.Repeat("\x01\x00", 13)), uint8(2))
	f.Fuzz(func(t *testing.T, in []byte, step uint8) {
		var edges []Edge
		at := time.Duration(0)
		for _, c := range in {
			at += time.Duration(c>>1) * time.Duration(step) * time.Millisecond
			edges = append(edges, Edge{Line: Line(c & 1), At: at})
		}
		total := 0
		for _, b := range Decode(edges, 0) {
			total += b.Bits
			switch b.Kind {
			case KindCard:
				if b.Bits != 26 && b.Bits != 34 && b.Bits != 37 || len(b.Data) != (b.Bits-2+7)/8 || b.Err != nil {
					t.Fatalf("card %+v", b)
				}
			case KindKey:
				if (b.Bits != 4 && b.Bits != 8) || !strings.ContainsRune(keyChars, rune(b.Key)) {
					t.Fatalf("key %+v", b)
				}
			case KindError:
				if b.Err == nil || b.Data != nil {
					t.Fatalf("error %+v", b)
				}
			default:
				t.Fatalf("kind %v", b.Kind)
			}
		}
		if total != len(edges) {
			t.Fatalf("%d bits in bursts, %d edges", total, len(edges))
		}
	})
}

// Golden layout of the kernel structs (linux/gpio.h).
func TestLineRequestLayout(t *testing.T) {
	if gpioV2GetLineIoctl != 0xC250B407 {
		t.Fatalf("GPIO_V2_GET_LINE_IOCTL %#x, want 0xC250B407", uint32(gpioV2GetLineIoctl))
	}
	req := encodeLineRequest([]uint32{17, 27}, "termagent-wiegand")
	le := func(off int) uint32 {
		return uint32(req[off]) | uint32(req[off+1])<<8 | uint32(req[off+2])<<16 | uint32(req[off+3])<<24
	}
	if le(0) != 17 || le(4) != 27 || le(8) != 0 {
		t.Fatalf("offsets % X", req[:12])
	}
	if string(req[256:256+17]) != "termagent-wiegand" || req[256+17] != 0 {
		t.Fatalf("consumer %q", req[256:288])
	}
	if le(288) != 0x124 || le(292) != 0 { // INPUT | EDGE_FALLING | BIAS_PULL_UP
		t.Fatalf("flags % X", req[288:296])
	}
	if le(296) != 0 { // num_attrs
		t.Fatalf("num_attrs %d", le(296))
	}
	if le(560) != 2 || le(564) != eventBuffer || le(588) != 0 {
		t.Fatalf("num_lines %d event_buffer_size %d fd %d", le(560), le(564), le(588))
	}
	ev := make([]byte, lineEventSize)
	copy(ev, []byte{0x00, 0xCA, 0x9A, 0x3B, 0, 0, 0, 0, 2, 0, 0, 0, 27, 0, 0, 0, 5, 0, 0, 0})
	ts, id, off := decodeLineEvent(ev)
	if ts != time.Second || id != lineEventFallingEdge || off != 27 {
		t.Fatalf("event: ts %v id %d offset %d", ts, id, off)
	}
}

// A read error names no bits: a bad 8-bit key is a PIN digit, and the error
// is logged.
func TestErrorsNameNoKey(t *testing.T) {
	got := Decode(timeline(t, 2*time.Millisecond, 0, "1111 0101"), 0)
	if len(got) != 1 || got[0].Err == nil || strings.Contains(got[0].Err.Error(), "0101") || strings.Contains(got[0].Err.Error(), "1111") {
		t.Fatalf("error %v shows the key's bits", got[0].Err)
	}
}

package card

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"termagent/hal/haltest"
)

// Golden vectors: the RDM6300 frame of tag 01 00 63 E9 AE by the XOR rule
// and the Seeed datasheet's checksum example (62E3086CED has 08); the 7941
// frames are published examples (a Newegg listing, the README of
// github.com/herra/rfidtagsclone).
func TestRDM6300Golden(t *testing.T) {
	frame := haltest.Unhex(t, "02 30 31 30 30 36 33 45 39 41 45 32 35 03")
	r, ok, adv, err := DecodeRDM6300(frame)
	if !ok || err != nil || adv != 14 {
		t.Fatalf("decode: ok=%v adv=%d err=%v", ok, adv, err)
	}
	if want := haltest.Unhex(t, "01 00 63 E9 AE"); !bytes.Equal(r.UID, want) || r.Type != TypeEM4100 {
		t.Fatalf("uid % X type %d, want % X", r.UID, r.Type, want)
	}
	if got := AppendRDM6300(nil, [5]byte{0x01, 0x00, 0x63, 0xE9, 0xAE}); !bytes.Equal(got, frame) {
		t.Fatalf("encode: % X, want % X", got, frame)
	}
	// The Seeed datasheet's data 62E3086CED has checksum 08.
	f := AppendRDM6300(nil, [5]byte{0x62, 0xE3, 0x08, 0x6C, 0xED})
	if string(f[11:13]) != "08" {
		t.Fatalf("checksum chars %q, want 08", f[11:13])
	}
}

func TestGwiot7941Golden(t *testing.T) {
	for _, tc := range []struct{ frame, uid string }{
		{"02 0A 02 06 00 8E 6D 5D B0 03", "06 00 8E 6D 5D"}, // Newegg example
		{"02 0A 02 2E 00 B6 D7 B5 F2 03", "2E 00 B6 D7 B5"}, // herra README
	} {
		frame := haltest.Unhex(t, tc.frame)
		r, ok, adv, err := DecodeGwiot7941(frame)
		if !ok || err != nil || adv != len(frame) {
			t.Fatalf("%s: ok=%v adv=%d err=%v", tc.frame, ok, adv, err)
		}
		if want := haltest.Unhex(t, tc.uid); !bytes.Equal(r.UID, want) || r.Type != TypeEM4100 {
			t.Fatalf("%s: uid % X type %d", tc.frame, r.UID, r.Type)
		}
		enc, err := AppendGwiot7941(nil, TypeEM4100, r.UID)
		if err != nil || !bytes.Equal(enc, frame) {
			t.Fatalf("encode % X: % X %v", r.UID, enc, err)
		}
	}
	if _, err := AppendGwiot7941(nil, 1, []byte{1}); err == nil {
		t.Fatal("1-byte identifier encoded")
	}
}

type decodeStep struct {
	ok  bool
	adv int
	err error
}

func TestRDM6300Bad(t *testing.T) {
	good := AppendRDM6300(nil, [5]byte{1, 0, 0x63, 0xE9, 0xAE})
	badSum := bytes.Clone(good)
	badSum[12] = '6'
	noETX := bytes.Clone(good)
	noETX[13] = 0x04
	for name, tc := range map[string]struct {
		in   []byte
		want decodeStep
	}{
		"empty":        {nil, decodeStep{adv: 0}},
		"noise":        {[]byte{0xFF, 0x00, 'A'}, decodeStep{adv: 3}},
		"noise first":  {append([]byte{0xFF, 0x30}, good...), decodeStep{adv: 2}},
		"partial":      {good[:9], decodeStep{adv: 0}},
		"bad checksum": {badSum, decodeStep{adv: 1, err: ErrChecksum}},
		"no ETX":       {noETX, decodeStep{adv: 1, err: ErrMalformed}},
		"stray STX":    {append([]byte{STX}, good...), decodeStep{adv: 1, err: ErrMalformed}},
		"non-hex":      {[]byte{STX, '0', 'G'}, decodeStep{adv: 1, err: ErrMalformed}},
	} {
		_, ok, adv, err := DecodeRDM6300(tc.in)
		if ok != tc.want.ok || adv != tc.want.adv || !errors.Is(err, tc.want.err) || (tc.want.err == nil) != (err == nil) {
			t.Errorf("%s: ok=%v adv=%d err=%v, want %+v", name, ok, adv, err, tc.want)
		}
	}
}

func TestGwiot7941Bad(t *testing.T) {
	good, _ := AppendGwiot7941(nil, TypeMifare1K, []byte{0xE4, 0x3A, 0xC9, 0xD2})
	badSum := bytes.Clone(good)
	badSum[len(badSum)-2] ^= 0x40
	for name, tc := range map[string]struct {
		in   []byte
		want decodeStep
	}{
		"noise":        {[]byte{0x55, 0xAA}, decodeStep{adv: 2}},
		"partial":      {good[:5], decodeStep{adv: 0}},
		"len only":     {good[:1], decodeStep{adv: 0}},
		"bad length":   {[]byte{STX, 0x03, 0, 0}, decodeStep{adv: 1, err: ErrMalformed}},
		"huge length":  {[]byte{STX, 0xFF}, decodeStep{adv: 1, err: ErrMalformed}},
		"bad checksum": {badSum, decodeStep{adv: 1, err: ErrChecksum}},
	} {
		_, ok, adv, err := DecodeGwiot7941(tc.in)
		if ok != tc.want.ok || adv != tc.want.adv || !errors.Is(err, tc.want.err) || (tc.want.err == nil) != (err == nil) {
			t.Errorf("%s: ok=%v adv=%d err=%v, want %+v", name, ok, adv, err, tc.want)
		}
	}
}

func TestLineDecode(t *testing.T) {
	dec := Line{}
	for _, tc := range []struct {
		in      string
		ok      bool
		adv     int
		uid     string
		malform bool
	}{
		{"0006547886\r\n", true, 11, "0063E9AE", false}, // S4A-style line
		{"0013110988\n", true, 11, "00C80ECC", false},   // rusty-octopus line
		{"\n0006547886\r\n", false, 1, "", false},       // empty line dropped
		{"000654", false, 0, "", false},                 // partial
		{"12\r", false, 3, "", true},                    // too short (default min 6)
		{"12A4567\r", false, 3, "", true},               // not decimal: dropped up to the A
		{"99999999999999999999\r", false, 21, "", true}, // too long
		{strings.Repeat("7", 40), false, 40, "", true},  // runaway line
		{"12345678901234567\n", true, 18, "2BDC545D6B4B87", false},
	} {
		r, ok, adv, err := dec.Decode([]byte(tc.in))
		if ok != tc.ok || adv != tc.adv || tc.malform != errors.Is(err, ErrMalformed) {
			t.Errorf("%q: ok=%v adv=%d err=%v", tc.in, ok, adv, err)
			continue
		}
		if ok && hex.EncodeToString(r.UID) != strings.ToLower(tc.uid) {
			t.Errorf("%q: uid % X, want %s", tc.in, r.UID, tc.uid)
		}
	}
	hexLine := Line{Hex: true}
	r, ok, _, err := hexLine.Decode([]byte("3d12d6\r"))
	if !ok || err != nil || !bytes.Equal(r.UID, []byte{0x3D, 0x12, 0xD6}) || r.Text != "3d12d6" {
		t.Fatalf("hex line: %+v %v %v", r, ok, err)
	}
	if _, ok, _, err := hexLine.Decode([]byte("3G12D6\r")); ok || !errors.Is(err, ErrMalformed) {
		t.Fatalf("bad hex line accepted: %v", err)
	}
}

func TestLineNoiseBeforeDigitsResyncs(t *testing.T) {
	buf := []byte("\x93\xfe\x00 0006547886\r\n")
	var got []Read
	for len(buf) > 0 {
		r, ok, adv, _ := Line{}.Decode(buf)
		if adv == 0 {
			break
		}
		if ok {
			got = append(got, r)
		}
		buf = buf[adv:]
	}
	if len(got) != 1 || got[0].Text != "0006547886" {
		t.Fatalf("got %+v, want the one card after the noise", got)
	}
}

// checkDecoder is the invariant every decoder keeps on any input: it makes
// progress or asks for more, never advances past the buffer, and never
// returns a read without consuming it.
func checkDecoder(t *testing.T, name string, dec decoder, in []byte) {
	buf := in
	for steps := 0; len(buf) > 0; steps++ {
		if steps > len(in)+1 {
			t.Fatalf("%s: no progress on % X", name, in)
		}
		r, ok, adv, err := dec(buf)
		if adv < 0 || adv > len(buf) {
			t.Fatalf("%s: advance %d of %d bytes", name, adv, len(buf))
		}
		if ok && (adv == 0 || err != nil || len(r.UID) == 0) {
			t.Fatalf("%s: read %+v with advance %d err %v", name, r, adv, err)
		}
		if adv == 0 {
			return
		}
		buf = buf[adv:]
	}
}

func FuzzRDM6300(f *testing.F) {
	f.Add(AppendRDM6300(nil, [5]byte{1, 0, 0x63, 0xE9, 0xAE}))
	f.Add([]byte{STX, STX, '0', ETX})
	f.Fuzz(func(t *testing.T, in []byte) {
		checkDecoder(t, "rdm6300", DecodeRDM6300, in)
		if r, ok, _, _ := DecodeRDM6300(in); ok {
			var uid [5]byte
			copy(uid[:], r.UID)
			if re := AppendRDM6300(nil, uid); !bytes.EqualFold(re, in[:RDM6300FrameLen]) {
				t.Fatalf("decoded % X re-encodes as % X", in[:RDM6300FrameLen], re)
			}
		}
	})
}

func FuzzGwiot7941(f *testing.F) {
	g, _ := AppendGwiot7941(nil, TypeEM4100, []byte{6, 0, 0x8E, 0x6D, 0x5D})
	f.Add(g)
	f.Add([]byte{STX, 0x20, 0, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		checkDecoder(t, "gwiot7941", DecodeGwiot7941, in)
		if r, ok, adv, _ := DecodeGwiot7941(in); ok {
			if re, err := AppendGwiot7941(nil, r.Type, r.UID); err != nil || !bytes.Equal(re, in[:adv]) {
				t.Fatalf("decoded % X re-encodes as % X (%v)", in[:adv], re, err)
			}
		}
	})
}

func FuzzLine(f *testing.F) {
	f.Add([]byte("0006547886\r\n"), false)
	f.Add([]byte("3D12D6\r"), true)
	f.Fuzz(func(t *testing.T, in []byte, hexDigits bool) {
		checkDecoder(t, "line", Line{Hex: hexDigits}.Decode, in)
	})
}

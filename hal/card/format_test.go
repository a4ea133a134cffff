package card

import "testing"

// Worked examples: Wiegand 26's facility code and card number (the
// converters' "mode 0" 24-bit decimal), and the printed-number conventions
// of EM4100 tags and Mifare UIDs (little-endian decimal).
func TestFormatGolden(t *testing.T) {
	em := Read{UID: []byte{0x01, 0x00, 0x63, 0xE9, 0xAE}, Type: TypeEM4100}
	mifare := Read{UID: []byte{0xE4, 0x3A, 0xC9, 0xD2}, Type: TypeMifare1K}
	w26 := Read{UID: []byte{0x6B, 0x3D, 0x12, 0xD6}}
	newegg := Read{UID: []byte{0x06, 0x00, 0x8E, 0x6D, 0x5D}}
	short := Read{UID: []byte{0x12}}
	line := Read{UID: []byte{0x00, 0x63, 0xE9, 0xAE}, Text: "6547886"}
	for _, tc := range []struct {
		name string
		f    Format
		r    Read
		want string
	}{
		{"default is dec10", Format{}, em, "0006547886"},
		{"dec10", Format{Style: Decimal}, newegg, "0009334109"},
		{"hex all", Format{Style: Hex}, em, "010063E9AE"},
		{"hex 4 bytes", Format{Style: Hex, Bytes: 4}, em, "0063E9AE"},
		{"hex lower", Format{Style: Hex, Lower: true}, em, "010063e9ae"},
		{"hex lsb", Format{Style: Hex, ReverseBytes: true}, mifare, "D2C93AE4"},
		{"hex width", Format{Style: Hex, Width: 12}, em, "00010063E9AE"},
		{"w26 8 digits", Format{Style: Wiegand26}, em, "09959822"},
		{"w26 comma", Format{Style: Wiegand26, Separator: ","}, em, "099,59822"},
		{"w26 drops first byte", Format{Style: Wiegand26}, w26, "06104822"},
		{"24-bit decimal", Format{Style: Decimal, Bytes: 3, Width: 8}, em, "06547886"},
		{"mifare little-endian decimal", Format{ReverseBytes: true}, mifare, "3536403172"},
		{"mifare msb decimal", Format{}, mifare, "3829058002"},
		{"short uid padded", Format{}, short, "0000000018"},
		{"dec 5 bytes", Format{Bytes: 5, Width: 13}, em, "0004301515182"},
		{"text as sent", Format{Style: Text, Width: 10}, line, "0006547886"},
		{"text falls back to hex", Format{Style: Text}, em, "010063E9AE"},
	} {
		got, err := tc.f.Apply(tc.r)
		if err != nil || got != tc.want {
			t.Errorf("%s: %q %v, want %q", tc.name, got, err, tc.want)
		}
	}
}

func TestFormatInvalid(t *testing.T) {
	for _, f := range []Format{
		{Style: "octal"},
		{Width: -1},
		{Width: 65},
		{Bytes: 9},
		{Style: Hex, Bytes: 33},
		{Separator: "123456789"},
	} {
		if err := f.Validate(); err == nil {
			t.Errorf("%+v validated", f)
		}
		if _, err := f.Apply(Read{UID: []byte{1}}); err == nil {
			t.Errorf("%+v applied", f)
		}
	}
}

func TestRepeatFilterSlides(t *testing.T) {
	var t0 = testTime(0)
	f := repeatFilter{window: 1000}
	a, b := []byte{1}, []byte{2}
	steps := []struct {
		uid  []byte
		at   int64
		want bool
	}{
		{a, 0, true},     // first read
		{a, 50, false},   // repeat while in field
		{a, 900, false},  // still in field: the window slides
		{a, 1899, false}, // 999 after the previous sighting
		{b, 1950, true},  // another card
		{a, 2000, true},  // a again: the last read was b
		{a, 3001, true},  // a after a full window of silence
	}
	for i, s := range steps {
		if got := f.fresh(s.uid, t0.Add(timeDur(s.at))); got != s.want {
			t.Fatalf("step %d (%x at %d): fresh=%v, want %v", i, s.uid, s.at, got, s.want)
		}
	}
	off := repeatFilter{window: -1}
	if !off.fresh(a, t0) || !off.fresh(a, t0) {
		t.Fatal("negative window suppressed a read")
	}
}

package evdev

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"termagent/hal"
	"termagent/hal/haltest"
)

// Golden records (little-endian, as on ARM and x86): Enter pressed at
// 1700000000.123456 (0x6553F100 s, 0x1E240 µs).
func TestEventGolden(t *testing.T) {
	enter := Event{Time: time.Unix(1700000000, 123456000), Type: EvKey, Code: KeyEnter, Value: Press}
	for _, tc := range []struct {
		size int
		raw  string
	}{
		{24, "00F15365 00000000 40E20100 00000000 0100 1C00 01000000"},
		{16, "00F15365 40E20100 0100 1C00 01000000"},
	} {
		raw := haltest.Unhex(t, tc.raw)
		ev, err := Decode(raw, tc.size)
		if err != nil || !ev.Time.Equal(enter.Time) || ev.Type != enter.Type || ev.Code != enter.Code || ev.Value != enter.Value {
			t.Fatalf("%d: decode %+v %v", tc.size, ev, err)
		}
		enc, err := Append(nil, enter, tc.size)
		if err != nil || !bytes.Equal(enc, raw) {
			t.Fatalf("%d: encode % X %v", tc.size, enc, err)
		}
	}
	// A 32-bit process with a 64-bit time_t gets the seconds as an
	// unsigned 32-bit number: past 2038 they must not turn negative.
	ev, err := Decode(haltest.Unhex(t, "00000080 00000000 0100 0200 FFFFFFFF"), 16)
	if err != nil || ev.Time.Unix() != 1<<31 || ev.Value != -1 {
		t.Fatalf("2038: %v %d %v", ev.Time, ev.Value, err)
	}
	for _, size := range []int{0, 8, 20, 32} {
		if _, err := Decode(make([]byte, 32), size); err == nil {
			t.Errorf("size %d accepted", size)
		}
	}
	if _, err := Decode(make([]byte, 23), 24); err == nil {
		t.Error("short record accepted")
	}
	if NativeEventSize != 16 && NativeEventSize != 24 {
		t.Fatalf("native size %d", NativeEventSize)
	}
}

// typed records what a wedge reader or keypad sends for text, starting at
// start, one key every step: MSC_SCAN, press, SYN, release, SYN; '#' is
// Shift+3, '^' presses Shift alone for the next character (an AZERTY
// reader's digits), '\n' is Enter, 'k' is KEY_KPENTER, '*' is the keypad
// asterisk, 'r' an auto-repeat of the previous key.
func typed(t testing.TB, size int, start time.Time, step time.Duration, text string) []byte {
	t.Helper()
	var out []byte
	add := func(at time.Time, typ, code uint16, v int32) {
		var err error
		if out, err = Append(out, Event{Time: at, Type: typ, Code: code, Value: v}, size); err != nil {
			t.Fatal(err)
		}
	}
	at := start
	shift := false
	var last uint16
	for _, c := range []byte(text) {
		var code uint16
		switch {
		case c == '^':
			shift = true
			continue
		case c == 'r':
			add(at, EvKey, last, Repeat)
			add(at, EvSyn, 0, 0)
			continue
		case c >= '1' && c <= '9':
			code = uint16(Key1 + c - '1')
		case c == '0':
			code = Key0
		case c == '#':
			code, shift = Key1+2, true
		case c == '*':
			code = KeyKPAsterisk
		case c == '\n':
			code = KeyEnter
		case c == 'k':
			code = KeyKPEnter
		case c >= 'A' && c <= 'F':
			code = [...]uint16{30, 48, 46, 32, 18, 33}[c-'A']
		default:
			t.Fatalf("char %q", c)
		}
		if shift {
			add(at, EvKey, KeyLeftShift, Press)
			add(at, EvSyn, 0, 0)
		}
		add(at, EvMsc, 4, int32(0x70000+int(code)))
		add(at, EvKey, code, Press)
		add(at, EvSyn, 0, 0)
		add(at, EvKey, code, Release)
		add(at, EvSyn, 0, 0)
		if shift {
			add(at, EvKey, KeyLeftShift, Release)
			add(at, EvSyn, 0, 0)
			shift = false
		}
		last = code
		at = at.Add(step)
	}
	return out
}

func events(t testing.TB, b []byte, size int) []Event {
	t.Helper()
	var out []Event
	for ; len(b) >= size; b = b[size:] {
		ev, err := Decode(b, size)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ev)
	}
	return out
}

func TestCardAssembler(t *testing.T) {
	start := time.Unix(1700000000, 0)
	for _, size := range []int{16, 24} {
		var stream []byte
		stream = append(stream, typed(t, size, start, 3*time.Millisecond, "0006547886\n")...)
		// An AZERTY reader: Shift with every digit; ends with KP Enter.
		stream = append(stream, typed(t, size, start.Add(time.Second), 3*time.Millisecond, "^0^0^1^2^3^4^5^6k")...)
		// Half a number, a pause, then a whole one: the half is dropped.
		stream = append(stream, typed(t, size, start.Add(2*time.Second), 3*time.Millisecond, "12345")...)
		stream = append(stream, typed(t, size, start.Add(3*time.Second), 3*time.Millisecond, "3D12D6\n")...)
		// A key that is no digit spoils the number it is in (Shift+3 would
		// be a 3: card mode ignores Shift).
		stream = append(stream, typed(t, size, start.Add(4*time.Second), 3*time.Millisecond, "12*34\n")...)
		// Too long.
		stream = append(stream, typed(t, size, start.Add(5*time.Second), time.Millisecond, strings.Repeat("9", MaxChars+1)+"\n")...)
		// An auto-repeat adds nothing; an Enter alone is nothing.
		stream = append(stream, typed(t, size, start.Add(6*time.Second), 3*time.Millisecond, "\n12r34\n")...)

		var a CardAssembler
		var got, errs []string
		for _, ev := range events(t, stream, size) {
			text, ok, err := a.Push(ev)
			if err != nil {
				errs = append(errs, err.Error())
			}
			if ok {
				got = append(got, text)
			}
		}
		want := []string{"0006547886", "00123456", "3D12D6", "34", "1234"}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("%d: numbers %q, want %q", size, got, want)
		}
		if len(errs) != 3 || !strings.Contains(errs[0], "partial") || !strings.Contains(errs[1], "no digit") || !strings.Contains(errs[2], "too long") {
			t.Errorf("%d: errors %q", size, errs)
		}
	}
}

// SYN_DROPPED in the middle of a number (the kernel lost some of its
// digits) drops that number whole, its remaining digits and Enter
// included; the next number reads.
func TestCardAssemblerSynDropped(t *testing.T) {
	start := time.Unix(1700000000, 0)
	stream := typed(t, 24, start, 3*time.Millisecond, "00065")
	stream, _ = Append(stream, Event{Time: start.Add(15 * time.Millisecond), Type: EvSyn, Code: SynDropped}, 24)
	stream = append(stream, typed(t, 24, start.Add(20*time.Millisecond), 3*time.Millisecond, "886\n")...)
	stream = append(stream, typed(t, 24, start.Add(time.Second), 3*time.Millisecond, "0001234567\n")...)
	var a CardAssembler
	var got []string
	drops := 0
	for _, ev := range events(t, stream, 24) {
		text, ok, err := a.Push(ev)
		if errors.Is(err, ErrDropped) {
			drops++
		}
		if ok {
			got = append(got, text)
		}
	}
	if strings.Join(got, ",") != "0001234567" || drops != 2 {
		t.Fatalf("numbers %q, drops %d; want only 0001234567 and 2 drops", got, drops)
	}
}

func TestKeyMapper(t *testing.T) {
	stream := typed(t, 24, time.Unix(1700000000, 0), 300*time.Millisecond, "1234#*0rk")
	var extra []byte
	for _, code := range []uint16{KeyEsc, KeyBackspace, KeyNumeric0 + 7, KeyNumericStar, KeyNumPound, KeyNumericA + 3, 79, 73, 30, 33} {
		extra, _ = Append(extra, Event{Type: EvKey, Code: code, Value: Press}, 24)
		extra, _ = Append(extra, Event{Type: EvKey, Code: code, Value: Release}, 24)
	}
	var m KeyMapper
	var got []byte
	for _, ev := range events(t, append(stream, extra...), 24) {
		if c, ok := m.Push(ev); ok {
			got = append(got, c)
		}
	}
	want := []byte{'1', '2', '3', '4', '#', '*', '0', hal.KeyEnter, hal.KeyEscape, hal.KeyBackspace, '7', '*', '#', 'D', '1', '9', 'A'}
	if !bytes.Equal(got, want) {
		t.Fatalf("keys %q, want %q", got, want)
	}
}

func FuzzStream(f *testing.F) {
	f.Add(typed(f, 24, time.Unix(1, 0), time.Millisecond, "0006547886\n"), true)
	f.Add(typed(f, 16, time.Unix(1, 0), time.Second, "12#4*k"), false)
	f.Fuzz(func(t *testing.T, b []byte, wide bool) {
		size := 16
		if wide {
			size = 24
		}
		var a CardAssembler
		var m KeyMapper
		for ; len(b) >= size; b = b[size:] {
			ev, err := Decode(b, size)
			if err != nil {
				t.Fatal(err)
			}
			if text, ok, _ := a.Push(ev); ok {
				if text == "" || len(text) > MaxChars || strings.Trim(text, "0123456789ABCDEF") != "" {
					t.Fatalf("card text %q", text)
				}
			}
			if c, ok := m.Push(ev); ok && !strings.ContainsRune("0123456789*#ABCD\n\x1b\b", rune(c)) {
				t.Fatalf("key %q", c)
			}
		}
	})
}

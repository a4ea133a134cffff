package fingerprint

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"termagent/hal"
	"termagent/hal/haltest"
)

// Golden vectors, checked by computation and against the checksums
// printed in the ZFM-20 and R503 user manuals.
var golden = []struct {
	name string
	pkt  Packet
	wire string
}{
	{"VfyPwd(0)", Command(DefaultAddress, CmdVfyPwd, 0, 0, 0, 0), "EF 01 FF FF FF FF 01 00 07 13 00 00 00 00 00 1B"},
	{"GenImg", Command(DefaultAddress, CmdGenImg), "EF 01 FF FF FF FF 01 00 03 01 00 05"},
	{"Img2Tz(buf1)", Command(DefaultAddress, CmdImg2Tz, 1), "EF 01 FF FF FF FF 01 00 04 02 01 00 08"},
	{"RegModel", Command(DefaultAddress, CmdRegModel), "EF 01 FF FF FF FF 01 00 03 05 00 09"},
	{"Store(buf1,5)", Command(DefaultAddress, CmdStore, 1, 0, 5), "EF 01 FF FF FF FF 01 00 06 06 01 00 05 00 13"},
	{"LoadChar(buf1,5)", Command(DefaultAddress, CmdLoadChar, 1, 0, 5), "EF 01 FF FF FF FF 01 00 06 07 01 00 05 00 14"},
	{"UpChar(buf1)", Command(DefaultAddress, CmdUpChar, 1), "EF 01 FF FF FF FF 01 00 04 08 01 00 0E"},
	{"DownChar(buf1)", Command(DefaultAddress, CmdDownChar, 1), "EF 01 FF FF FF FF 01 00 04 09 01 00 0F"},
	{"Search(buf1,0,200)", Command(DefaultAddress, CmdSearch, 1, 0, 0, 0, 200), "EF 01 FF FF FF FF 01 00 08 04 01 00 00 00 C8 00 D6"},
	{"DeleteChar(5,1)", Command(DefaultAddress, CmdDeleteChar, 0, 5, 0, 1), "EF 01 FF FF FF FF 01 00 07 0C 00 05 00 01 00 1A"},
	{"Empty", Command(DefaultAddress, CmdEmpty), "EF 01 FF FF FF FF 01 00 03 0D 00 11"},
	{"TempleteNum", Command(DefaultAddress, CmdTempleteNum), "EF 01 FF FF FF FF 01 00 03 1D 00 21"},
	{"ReadSysPara", Command(DefaultAddress, CmdReadSysPara), "EF 01 FF FF FF FF 01 00 03 0F 00 13"},
	{"ReadIndexTable(0)", Command(DefaultAddress, CmdReadIndexTable, 0), "EF 01 FF FF FF FF 01 00 04 1F 00 00 24"},
	{"SetSysPara(4,12)", Command(DefaultAddress, CmdSetSysPara, 4, 12), "EF 01 FF FF FF FF 01 00 05 0E 04 0C 00 24"},
	{"HandShake", Command(DefaultAddress, CmdHandShake), "EF 01 FF FF FF FF 01 00 03 40 00 44"},
	{"ACK ok", Packet{DefaultAddress, PIDAck, []byte{0}}, "EF 01 FF FF FF FF 07 00 03 00 00 0A"},
	{"ACK no finger", Packet{DefaultAddress, PIDAck, []byte{2}}, "EF 01 FF FF FF FF 07 00 03 02 00 0C"},
	{"ACK search hit 5/100", Packet{DefaultAddress, PIDAck, []byte{0, 0, 5, 0, 100}}, "EF 01 FF FF FF FF 07 00 07 00 00 05 00 64 00 77"},
	{"ACK search miss", Packet{DefaultAddress, PIDAck, []byte{9, 0, 0, 0, 0}}, "EF 01 FF FF FF FF 07 00 07 09 00 00 00 00 00 17"},
	{"ACK TempleteNum=3", Packet{DefaultAddress, PIDAck, []byte{0, 0, 3}}, "EF 01 FF FF FF FF 07 00 05 00 00 03 00 0F"},
	// A real ReadSysPara reply (Adafruit product 4750, ada-py issue #30).
	{"ACK ReadSysPara", Packet{DefaultAddress, PIDAck, []byte{0, 0, 0, 0, 0, 0, 0x50, 0, 3, 0xFF, 0xFF, 0xFF, 0xFF, 0, 2, 0, 0x0C}},
		"EF 01 FF FF FF FF 07 00 13 00 00 00 00 00 00 50 00 03 FF FF FF FF 00 02 00 0C 04 77"},
}

func TestGoldenEncode(t *testing.T) {
	for _, g := range golden {
		got, err := g.pkt.MarshalBinary()
		if err != nil {
			t.Fatalf("%s: %v", g.name, err)
		}
		if want := haltest.Unhex(t, g.wire); !bytes.Equal(got, want) {
			t.Errorf("%s: encoded % X, want % X", g.name, got, want)
		}
	}
}

func TestGoldenParse(t *testing.T) {
	for _, g := range golden {
		wire := haltest.Unhex(t, g.wire)
		p, n, err := Parse(wire)
		if err != nil {
			t.Fatalf("%s: %v", g.name, err)
		}
		if n != len(wire) || p.Address != g.pkt.Address || p.PID != g.pkt.PID || !bytes.Equal(p.Content, g.pkt.Content) {
			t.Errorf("%s: parsed %+v (n=%d), want %+v (n=%d)", g.name, p, n, g.pkt, len(wire))
		}
	}
}

func TestParseSkipsStrayBytes(t *testing.T) {
	ack := haltest.Unhex(t, "EF 01 FF FF FF FF 07 00 03 00 00 0A")
	// The R503's power-on 0x55, a lone 0xEF and noise before the packet.
	in := append([]byte{0x55, 0xEF, 0x00, 0xEF, 0xEF}, ack...)
	p, n, err := Parse(in)
	if err != nil || n != len(in) || p.PID != PIDAck || !bytes.Equal(p.Content, []byte{0}) {
		t.Fatalf("Parse = %+v, %d, %v; want the ACK using all %d bytes", p, n, err, len(in))
	}
}

func TestParseIncomplete(t *testing.T) {
	ack := haltest.Unhex(t, "EF 01 FF FF FF FF 07 00 03 00 00 0A")
	for i := 0; i < len(ack); i++ {
		_, n, err := Parse(ack[:i])
		if !errors.Is(err, ErrIncomplete) {
			t.Fatalf("Parse(%d bytes) err = %v, want ErrIncomplete", i, err)
		}
		if n != 0 {
			t.Fatalf("Parse(%d bytes) consumed %d bytes of a packet's start", i, n)
		}
	}
	_, n, err := Parse([]byte{1, 2, 3, 0xEF})
	if !errors.Is(err, ErrIncomplete) || n != 3 {
		t.Fatalf("noise then 0xEF: n=%d err=%v, want 3 and ErrIncomplete (keep the 0xEF)", n, err)
	}
}

func TestParseCorruptResyncs(t *testing.T) {
	good := haltest.Unhex(t, "EF 01 FF FF FF FF 07 00 03 02 00 0C")
	badSum := haltest.Unhex(t, "EF 01 FF FF FF FF 07 00 03 00 00 0B")
	badLen := haltest.Unhex(t, "EF 01 FF FF FF FF 07 01 03")
	badPID := haltest.Unhex(t, "EF 01 FF FF FF FF 05 00 03 00 00 08")
	for _, c := range []struct {
		name string
		bad  []byte
		want error
	}{{"checksum", badSum, ErrChecksum}, {"length", badLen, ErrLength}, {"pid", badPID, ErrPID}} {
		var d Decoder
		d.Write(c.bad)
		d.Write(good)
		_, err := d.Next()
		if !errors.Is(err, c.want) {
			t.Fatalf("%s: first Next err = %v, want %v", c.name, err, c.want)
		}
		var p Packet
		for {
			p, err = d.Next()
			if !errors.Is(err, ErrChecksum) && !errors.Is(err, ErrLength) && !errors.Is(err, ErrPID) {
				break
			}
		}
		if err != nil || !bytes.Equal(p.Content, []byte{2}) {
			t.Fatalf("%s: after resync Next = %+v, %v; want the no-finger ACK", c.name, p, err)
		}
		if d.Buffered() != 0 {
			t.Fatalf("%s: %d bytes left", c.name, d.Buffered())
		}
	}
}

func TestDecoderByteByByte(t *testing.T) {
	var wire []byte
	for _, g := range golden {
		wire = append(wire, haltest.Unhex(t, g.wire)...)
	}
	var d Decoder
	var got []Packet
	for _, c := range wire {
		d.Write([]byte{c})
		for {
			p, err := d.Next()
			if errors.Is(err, ErrIncomplete) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, p)
		}
	}
	if len(got) != len(golden) {
		t.Fatalf("decoded %d packets, want %d", len(got), len(golden))
	}
	for i, g := range golden {
		if !bytes.Equal(got[i].Content, g.pkt.Content) || got[i].PID != g.pkt.PID {
			t.Errorf("%s: got %+v", g.name, got[i])
		}
	}
}

func TestDecoderResync(t *testing.T) {
	var d Decoder
	// A false start announcing 256 content bytes, then a whole ACK.
	d.Write(haltest.Unhex(t, "EF 01 FF FF FF FF 07 01 02"))
	d.Write(haltest.Unhex(t, "EF 01 FF FF FF FF 07 00 03 00 00 0A"))
	if _, err := d.Next(); !errors.Is(err, ErrIncomplete) {
		t.Fatalf("before Resync: %v, want ErrIncomplete", err)
	}
	d.Resync()
	p, err := d.Next()
	if err != nil || p.PID != PIDAck || !bytes.Equal(p.Content, []byte{0}) {
		t.Fatalf("after Resync: %+v, %v", p, err)
	}
}

func TestDecoderBounded(t *testing.T) {
	var d Decoder
	junk := bytes.Repeat([]byte{0xEF}, 10*MaxPacketLen)
	d.Write(junk)
	if d.Buffered() > 2*MaxPacketLen {
		t.Fatalf("buffered %d bytes, bound is %d", d.Buffered(), 2*MaxPacketLen)
	}
	if _, err := d.Next(); !errors.Is(err, ErrIncomplete) {
		t.Fatalf("Next on junk: %v", err)
	}
	if d.Buffered() > 1 {
		t.Fatalf("after Next on junk %d bytes are kept, want at most 1", d.Buffered())
	}
}

func TestEncodeRejects(t *testing.T) {
	if _, err := (Packet{PID: PIDData, Content: make([]byte, MaxContent+1)}).MarshalBinary(); !errors.Is(err, ErrTooLong) {
		t.Errorf("oversized content: %v", err)
	}
	if _, err := (Packet{PID: PIDData}).MarshalBinary(); !errors.Is(err, ErrLength) {
		t.Errorf("empty content: %v", err)
	}
	if _, err := (Packet{PID: 3, Content: []byte{1}}).MarshalBinary(); !errors.Is(err, ErrPID) {
		t.Errorf("bad PID: %v", err)
	}
}

func TestCodeErrorClasses(t *testing.T) {
	for _, c := range []struct {
		code Code
		want error
	}{{CodeBadTemplate, hal.ErrRejected}, {CodeLibraryFull, hal.ErrFull}, {CodeFlashError, hal.ErrFault}, {0x77, hal.ErrFault}} {
		err := error(&CodeError{Instr: CmdStore, Code: c.code})
		if !errors.Is(err, c.want) {
			t.Errorf("code %v: %v does not wrap %v", c.code, err, c.want)
		}
	}
	if s := Code(0x77).String(); !strings.Contains(s, "0x77") {
		t.Errorf("unknown code string %q", s)
	}
}

// FuzzParse feeds arbitrary bytes to Parse and the Decoder: they must not
// panic, must consume at least one byte on corruption, and every packet
// they accept must re-encode to the same bytes.
func FuzzParse(f *testing.F) {
	for _, g := range golden {
		f.Add(haltest.Unhex(f, g.wire))
	}
	f.Add([]byte{0x55, 0xEF, 0x01, 0xFF})
	f.Add(haltest.Unhex(f, "EF 01 FF FF FF FF 07 FF FF 00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, n, err := Parse(b)
		if n < 0 || n > len(b) {
			t.Fatalf("consumed %d of %d", n, len(b))
		}
		switch {
		case err == nil:
			enc, err := p.MarshalBinary()
			if err != nil {
				t.Fatalf("accepted packet does not encode: %v", err)
			}
			if !bytes.HasSuffix(b[:n], enc) {
				t.Fatalf("re-encoded % X is not the tail of consumed % X", enc, b[:n])
			}
		case errors.Is(err, ErrIncomplete):
		default:
			if n == 0 {
				t.Fatalf("corrupt packet consumed nothing: %v", err)
			}
		}
		var d Decoder
		d.Write(b)
		for i := 0; i <= len(b); i++ {
			if _, err := d.Next(); errors.Is(err, ErrIncomplete) {
				return
			}
		}
		t.Fatalf("decoder did not drain %d bytes", len(b))
	})
}

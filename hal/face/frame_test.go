package face

import (
	"bytes"
	"errors"
	"testing"

	"termagent/hal"
	"termagent/hal/haltest"
)

// Golden frames computed with the EF AA XOR rule (the XOR of every byte
// after the sync word); the NOTE ready frame matches the L015 document.
var golden = []struct {
	name  string
	frame Frame
	wire  string
}{
	{"NOTE ready", NoteFrame(NoteReady), "EF AA 01 00 01 00 00"},
	{"GET_STATUS", Frame{MsgID: MsgGetStatus}, "EF AA 11 00 00 11"},
	{"VERIFY 10s", Frame{MsgID: MsgVerify, Data: []byte{0, 10}}, "EF AA 12 00 02 00 0A 1A"},
	{"DELETE user 1", Frame{MsgID: MsgDelUser, Data: []byte{0, 1}}, "EF AA 20 00 02 00 01 23"},
	{"DELETE ALL", Frame{MsgID: MsgDelAll}, "EF AA 21 00 00 21"},
	{"GET_ALL_USERID", Frame{MsgID: MsgGetAllUserID}, "EF AA 24 00 00 24"},
}

func TestGolden(t *testing.T) {
	for _, g := range golden {
		wire := haltest.Unhex(t, g.wire)
		got, err := g.frame.MarshalBinary()
		if err != nil || !bytes.Equal(got, wire) {
			t.Errorf("%s: encoded % X (%v), want % X", g.name, got, err, wire)
		}
		f, n, err := Parse(wire)
		if err != nil || n != len(wire) || f.MsgID != g.frame.MsgID || !bytes.Equal(f.Data, g.frame.Data) {
			t.Errorf("%s: parsed %+v n=%d err=%v", g.name, f, n, err)
		}
	}
}

func TestParseStrayAndPartial(t *testing.T) {
	wire := haltest.Unhex(t, "EF AA 12 00 02 00 0A 1A")
	for i := range wire {
		if _, n, err := Parse(wire[:i]); !errors.Is(err, ErrIncomplete) || n != 0 {
			t.Fatalf("prefix %d: n=%d err=%v", i, n, err)
		}
	}
	in := append([]byte{0x00, 0xEF, 0x55, 0xAA}, wire...)
	f, n, err := Parse(in)
	if err != nil || n != len(in) || f.MsgID != MsgVerify {
		t.Fatalf("stray prefix: %+v n=%d err=%v", f, n, err)
	}
}

func TestDecoderResyncs(t *testing.T) {
	var d Decoder
	d.Write(haltest.Unhex(t, "EF AA 00 00 02 12 00 11")) // parity wrong (should be 0x10)
	d.Write(haltest.Unhex(t, "EF AA FF FF"))             // size 65535 > MaxData
	d.Write(haltest.Unhex(t, "EF AA 24 00 00 24"))
	var errs []error
	for {
		f, err := d.Next()
		if err == nil {
			if f.MsgID != MsgGetAllUserID {
				t.Fatalf("got %+v", f)
			}
			break
		}
		if errors.Is(err, ErrIncomplete) {
			t.Fatalf("lost the good frame; errors so far %v", errs)
		}
		errs = append(errs, err)
	}
	if len(errs) < 2 || !errors.Is(errs[0], ErrParity) || !errors.Is(errs[1], ErrSize) {
		t.Fatalf("errors %v, want parity then size", errs)
	}
}

func TestDecoderBounded(t *testing.T) {
	var d Decoder
	d.Write(bytes.Repeat([]byte{0x42}, 5*decoderBound))
	if d.Buffered() > decoderBound {
		t.Fatalf("buffered %d > %d", d.Buffered(), decoderBound)
	}
}

func TestReplyAndErrors(t *testing.T) {
	if _, err := ParseReply([]byte{MsgVerify}); !errors.Is(err, ErrShortReply) {
		t.Errorf("short reply: %v", err)
	}
	r, err := ParseReply(ReplyFrame(MsgVerify, ResultSuccess, 0, 7).Data)
	if err != nil || r.Cmd != MsgVerify || r.Result != 0 || !bytes.Equal(r.Payload, []byte{0, 7}) {
		t.Errorf("reply %+v %v", r, err)
	}
	for _, c := range []struct {
		res  byte
		want error
	}{{ResultMaxUser, hal.ErrFull}, {ResultPhotoLarge, hal.ErrRejected}, {ResultCamera, hal.ErrFault}, {0x77, hal.ErrFault}} {
		if err := error(&ResultError{Cmd: MsgEnrollWithPhoto, Result: c.res}); !errors.Is(err, c.want) {
			t.Errorf("result 0x%02X: %v is not %v", c.res, err, c.want)
		}
	}
	if _, err := (Frame{MsgID: 1, Data: make([]byte, MaxData+1)}).MarshalBinary(); !errors.Is(err, ErrSize) {
		t.Errorf("oversized frame: %v", err)
	}
}

// FuzzParse: no panic, progress on corruption, accepted frames re-encode
// to the bytes they came from.
func FuzzParse(f *testing.F) {
	for _, g := range golden {
		f.Add(haltest.Unhex(f, g.wire))
	}
	f.Add([]byte{0xEF, 0xEF, 0xAA, 0x00, 0xFF, 0xFF})
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, n, err := Parse(b)
		if n < 0 || n > len(b) {
			t.Fatalf("consumed %d of %d", n, len(b))
		}
		switch {
		case err == nil:
			enc, err := fr.MarshalBinary()
			if err != nil || !bytes.HasSuffix(b[:n], enc) {
				t.Fatalf("re-encoded % X (%v) is not the tail of % X", enc, err, b[:n])
			}
		case errors.Is(err, ErrIncomplete):
		default:
			if n == 0 {
				t.Fatalf("corrupt frame consumed nothing: %v", err)
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

// BenchmarkParse reports frames decoded per second and the cost relative
// to finding every sync word with bytes.Index over the same buffer.
func BenchmarkParse(b *testing.B) {
	one := []Frame{
		NoteFrame(NoteFaceState, make([]byte, 16)...),
		ReplyFrame(MsgVerify, ResultSuccess, append([]byte{0, 7}, make([]byte, 34)...)...),
		ReplyFrame(MsgGetAllUserID, ResultSuccess, 3, 0, 1, 0, 2, 0, 3),
		{MsgID: MsgEnrollWithPhoto, Data: append([]byte{0, 1}, bytes.Repeat([]byte{0x5A}, 246)...)},
	}
	var wire []byte
	frames := 0
	for len(wire) < 64<<10 {
		for _, f := range one {
			wire, _ = f.Append(wire)
			frames++
		}
	}
	haltest.BenchParse(b, wire, syncWord, frames, Parse)
}

package protocol

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"testing/iotest"
)

// fuzzSeeds are the seed corpus shared by the fuzz targets: the golden
// vectors (without the large blobs), the lenient forms and broken ones.
func fuzzSeeds() []string {
	seeds := []string{
		msgA, msgB, msgC,
		`{"mod":"set_device_info","session_id":"s","type":"1","device_info":{"device_port":"1545","server_port":49003,"uuid":31231412332}}`,
		`{"mod":"upload_access_info","session_id":"s","type":2,"ret":"-3","msg":"db"}`,
		`{"mod":"download_person","session_id":"s","type":1,"person_info":{"person_id":"3413123123","person_name":"张飒","role":"12","face":{"width":520,"height":690,"format":2,"length":3,"data":"AQID"},"left_code":{"length":"2","data":"\/w=="}}}`,
		`{"mod":"remove_person","session_id":"s","person_ids":["a","b"],"person_id":"c"}`,
		`{"mod":"remove_person","session_id":"s","person_ids":"a"}`,
		`{"mod":"set_device_time","session_id":"s","time":"2019-8-23 12:34:35Z"}`,
		`{"mod":"get_device_status","session_id":"s","type":2,"code":0,"message":"","device_status":{"link":"up","modules":[{"name":"card","state":"ok"}],"uptime_seconds":"42"}}`,
		`{"mod":"send_user_command","session_id":"s","type":1,"command_type":2` + "\n" + `"command_value":"test!"}`,
		"{\n  \"mod\": \"a\",\n  \"session_id\": \"1\"\n}\n{}{}",
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + msgA,
		`{"s":"unterminated` + "\n" + msgB,
		`{"n":1e999,"type":1.5,"code":"x"}`,
		"[{]}\x00\xff",
		`{"mod":"a\"b\\c\/d\b\f\n\r\t\u00e9\ud83d\ude00\ud83dX","session_id":"\u4e2d","person_ids":["\/"],"person_info":{"face":{"data":"\/w=="}}}`,
	}
	for _, g := range goldens() {
		if len(g.in) < 4096 {
			seeds = append(seeds, g.in)
		}
	}
	return append(seeds, badInputSeeds()...)
}

// badInputSeeds are the requests of the agent's bad-input corpus
// (../agent/testdata/badinput, one case per file: a header, a blank line,
// the request's bytes).
func badInputSeeds() []string {
	files, _ := filepath.Glob(filepath.Join("..", "agent", "testdata", "badinput", "*.case"))
	var seeds []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if _, msg, ok := bytes.Cut(b, []byte("\n\n")); ok && len(msg) < 8192 {
			seeds = append(seeds, string(bytes.TrimRight(msg, "\n")))
		}
	}
	return seeds
}

// TestBadInputSeedsFound: the fuzz targets do start from the agent's
// bad-input corpus (a moved directory would silently drop it).
func TestBadInputSeedsFound(t *testing.T) {
	if len(badInputSeeds()) < 50 {
		t.Fatalf("only %d bad-input seeds found", len(badInputSeeds()))
	}
}

// FuzzReader: the reader never panics, never returns more than the limit
// or anything but a brace-delimited object, ends with a clean error, and
// finds the same messages whatever the read sizes.
func FuzzReader(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add([]byte(s), uint8(1))
	}
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		const max = 512
		collect := func(src io.Reader) ([]string, int, error) {
			r := NewReader(src, max)
			var msgs []string
			malformed := 0
			for i := 0; ; i++ {
				if i > len(data)+2 {
					t.Fatalf("more results than input bytes")
				}
				b, err := r.ReadMessage()
				switch {
				case err == nil:
					if len(b) < 2 || len(b) > max || b[0] != '{' || b[len(b)-1] != '}' {
						t.Fatalf("bad message %q", b)
					}
					msgs = append(msgs, string(b))
				case errors.Is(err, ErrMalformed):
					malformed++
				case err == io.EOF || err == io.ErrUnexpectedEOF || errors.Is(err, ErrTooLarge):
					return msgs, malformed, err
				default:
					t.Fatalf("unexpected error %v", err)
				}
			}
		}
		whole, wm, werr := collect(bytes.NewReader(data))
		sizes := []int{int(chunk%16) + 1, 1, 3}
		split, sm, serr := collect(iotest.HalfReader(&chunkReader{data: data, sizes: sizes}))
		if werr != serr && !(errors.Is(werr, ErrTooLarge) && errors.Is(serr, ErrTooLarge)) {
			t.Fatalf("end differs: %v vs %v", werr, serr)
		}
		if wm != sm || len(whole) != len(split) {
			t.Fatalf("whole read: %d messages %d malformed; split: %d, %d", len(whole), wm, len(split), sm)
		}
		for i := range whole {
			if whole[i] != split[i] {
				t.Fatalf("message %d differs: %q vs %q", i, whole[i], split[i])
			}
		}
	})
}

// FuzzDecode: decoding never panics; the plain and lenient decoders agree;
// what decodes re-encodes, and the encoding is a fixpoint
// (decode(encode(m)) encodes the same).
func FuzzDecode(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Decode(data)
		// The fast decoder agrees with the strict encoding/json path
		// wherever it answers, and Decode with that path everywhere:
		// the same messages refused, the same values decoded.
		slow, serr := decodeSlow(data)
		if (err == nil) != (serr == nil) || !reflect.DeepEqual(m, slow) {
			t.Fatalf("Decode = %v, strict encoding/json path = %v\n%s\n%s", err, serr, summary(m), summary(slow))
		}
		if fast, ok := fastDecode(data); ok {
			if serr != nil || !reflect.DeepEqual(fast, slow) {
				t.Fatalf("fast decoder disagrees: %v\n%s\n%s", serr, summary(fast), summary(slow))
			}
		}
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Decode error %v does not wrap ErrMalformed", err)
			}
			return
		}
		// The plain and the lenient decoders agree wherever both apply.
		lenient, err := decodeLenient(data)
		if err != nil || !reflect.DeepEqual(lenient, m) {
			t.Fatalf("lenient decoder disagrees: %v\n%s\n%s", err, summary(lenient), summary(m))
		}
		_ = m.Validate()
		_ = m.RemoveIDs()
		e1, err := Marshal(m)
		if err != nil {
			t.Fatalf("Marshal of a decoded message: %v", err)
		}
		if ref := referenceMarshal(m); !bytes.Equal(e1, ref) {
			t.Fatalf("Marshal differs from encoding/json:\n%s\n%s", e1, ref)
		}
		m2, err := Decode(e1)
		if err != nil {
			t.Fatalf("Decode(Marshal(m)) = %v for %s", err, e1)
		}
		e2, err := Marshal(m2)
		if err != nil || !bytes.Equal(e1, e2) {
			t.Fatalf("not a fixpoint:\n%s\n%s", e1, e2)
		}
		if (m.Validate() == nil) != (m2.Validate() == nil) {
			t.Fatalf("validity changed over a round trip: %v vs %v", m.Validate(), m2.Validate())
		}
	})
}

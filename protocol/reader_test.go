package protocol

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// readAll reads messages until a non-malformed error and returns them with
// the malformed errors seen and the final error.
func readAll(r *Reader) (msgs []string, malformed int, err error) {
	for {
		b, err := r.ReadMessage()
		switch {
		case err == nil:
			msgs = append(msgs, string(b))
		case errors.Is(err, ErrMalformed):
			malformed++
		default:
			return msgs, malformed, err
		}
	}
}

const (
	msgA = `{"mod":"a","session_id":"1"}`
	msgB = `{"mod":"b","session_id":"2","x":{"y":[1,{"z":"}"}]}}`
	msgC = `{"mod":"c","session_id":"3","s":"brace } and quote \" and { inside"}`
)

func TestReaderSeparators(t *testing.T) {
	pretty := "{\n  \"mod\": \"a\",\n  \"session_id\": \"1\"\n}"
	tests := []struct {
		name, in string
		want     []string
	}{
		{"newlines", msgA + "\n" + msgB + "\n" + msgC + "\n", []string{msgA, msgB, msgC}},
		{"crlf", msgA + "\r\n" + msgB + "\r\n", []string{msgA, msgB}},
		{"other whitespace", " \t" + msgA + " \t\r\n \n" + msgB + "\t", []string{msgA, msgB}},
		{"nothing", msgA + msgB + msgC, []string{msgA, msgB, msgC}},
		{"pretty-printed", pretty + "\n" + pretty + pretty, []string{pretty, pretty, pretty}},
		{"no trailing newline", msgA, []string{msgA}},
		{"empty object", "{}{}", []string{"{}", "{}"}},
		{"unicode", `{"address":"公司门口"}`, []string{`{"address":"公司门口"}`}},
		{"NUL terminated", msgA + "\x00" + msgB + "\x00", []string{msgA, msgB}},
		{"byte order mark", "\xEF\xBB\xBF" + msgA + "\n", []string{msgA}},
		{"escaped backslash before quote", `{"s":"a\\"}` + msgA, []string{`{"s":"a\\"}`, msgA}},
	}
	for _, tt := range tests {
		for _, delivery := range []struct {
			name string
			wrap func(io.Reader) io.Reader
		}{
			{"one read", func(r io.Reader) io.Reader { return r }},
			{"byte at a time", iotest.OneByteReader},
			{"half reads", iotest.HalfReader},
			{"data with EOF", iotest.DataErrReader},
		} {
			t.Run(tt.name+"/"+delivery.name, func(t *testing.T) {
				r := NewReader(delivery.wrap(strings.NewReader(tt.in)), 0)
				msgs, malformed, err := readAll(r)
				if err != io.EOF || malformed != 0 {
					t.Fatalf("ended with %v after %d malformed; want io.EOF and none", err, malformed)
				}
				if strings.Join(msgs, "|") != strings.Join(tt.want, "|") {
					t.Fatalf("got %q\nwant %q", msgs, tt.want)
				}
				// The error is final.
				if _, err := r.ReadMessage(); err != io.EOF {
					t.Fatalf("second end = %v", err)
				}
			})
		}
	}
}

// TestReaderSeveralPerRead delivers many messages in each read, and reads
// that end mid-message.
func TestReaderSeveralPerRead(t *testing.T) {
	var in bytes.Buffer
	var want []string
	for i := range 1000 {
		m := []string{msgA, msgB, msgC}[i%3]
		want = append(want, m)
		in.WriteString(m)
		if i%2 == 0 {
			in.WriteByte('\n')
		}
	}
	r := NewReader(&chunkReader{data: in.Bytes(), sizes: []int{1, 7, 4096, 100, 3, 65536}}, 0)
	msgs, malformed, err := readAll(r)
	if err != io.EOF || malformed != 0 || len(msgs) != len(want) {
		t.Fatalf("%d messages, %d malformed, %v", len(msgs), malformed, err)
	}
	for i := range want {
		if msgs[i] != want[i] {
			t.Fatalf("message %d = %q; want %q", i, msgs[i], want[i])
		}
	}
}

// chunkReader returns data in reads of the given sizes, cycling.
type chunkReader struct {
	data  []byte
	sizes []int
	i     int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := min(c.sizes[c.i%len(c.sizes)], len(p), len(c.data))
	c.i++
	copy(p, c.data[:n])
	c.data = c.data[n:]
	return n, nil
}

func TestReaderTenMiB(t *testing.T) {
	data := blob(10<<20*3/4, 9)
	m := &Message{Mod: ModDownloadPerson, SessionID: "s", PersonInfo: &PersonInfo{PersonID: "p", Face: &Biometric{Length: len(data), Data: data}}}
	enc, err := Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if len(enc) < 10<<20 {
		t.Fatalf("message is %d bytes; want at least 10 MiB", len(enc))
	}
	stream := append(append([]byte(msgA+"\n"), enc...), msgB...)
	r := NewReader(&chunkReader{data: stream, sizes: []int{1500, 65536, 1}}, 0)
	msgs, malformed, err := readAll(r)
	if err != io.EOF || malformed != 0 || len(msgs) != 3 {
		t.Fatalf("%d messages, %d malformed, %v", len(msgs), malformed, err)
	}
	got, err := Decode([]byte(msgs[1]))
	if err != nil || !bytes.Equal(got.PersonInfo.Face.Data, data) || msgs[2] != msgB {
		t.Fatalf("10 MiB message did not survive: %v", err)
	}
}

// countingReader serves an endless stream and counts what was read.
type countingReader struct {
	prefix []byte
	fill   byte
	n      int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n := copy(p, c.prefix)
	c.prefix = c.prefix[n:]
	for i := n; i < len(p); i++ {
		p[i] = c.fill
	}
	c.n += len(p)
	return len(p), nil
}

func TestReaderOversized(t *testing.T) {
	const max = 64 << 10
	t.Run("endless string", func(t *testing.T) {
		src := &countingReader{prefix: []byte(msgA + `{"mod":"download_person","data":"`), fill: 'A'}
		r := NewReader(src, max)
		if b, err := r.ReadMessage(); err != nil || string(b) != msgA {
			t.Fatalf("first message = %q, %v", b, err)
		}
		_, err := r.ReadMessage()
		if !errors.Is(err, ErrTooLarge) {
			t.Fatalf("ReadMessage = %v; want ErrTooLarge", err)
		}
		// Never buffered whole: the reader stopped soon after the limit.
		if src.n > 2*max || len(r.buf) > max+minReadSize {
			t.Fatalf("read %d bytes, buffer %d, for a %d-byte limit", src.n, len(r.buf), max)
		}
		if _, err2 := r.ReadMessage(); !errors.Is(err2, ErrTooLarge) {
			t.Fatalf("the error is not final: %v", err2)
		}
	})
	t.Run("complete but too long", func(t *testing.T) {
		big := `{"s":"` + strings.Repeat("x", max) + `"}`
		r := NewReader(strings.NewReader(big+msgA), max)
		if _, err := r.ReadMessage(); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("ReadMessage = %v; want ErrTooLarge", err)
		}
	})
	t.Run("exactly the limit", func(t *testing.T) {
		exact := `{"s":"` + strings.Repeat("x", max-8) + `"}`
		if len(exact) != max {
			t.Fatalf("test message is %d bytes", len(exact))
		}
		r := NewReader(iotest.HalfReader(strings.NewReader(exact+msgA)), max)
		msgs, _, err := readAll(r)
		if err != io.EOF || len(msgs) != 2 || msgs[0] != exact {
			t.Fatalf("%d messages, %v", len(msgs), err)
		}
	})
	t.Run("deep nesting", func(t *testing.T) {
		src := &countingReader{fill: '['}
		src.prefix = []byte("{")
		r := NewReader(src, max)
		if _, err := r.ReadMessage(); !errors.Is(err, ErrMalformed) {
			t.Fatalf("ReadMessage = %v; want ErrMalformed (nested deeper than MaxDepth)", err)
		}
	})
}

func TestReaderResync(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		want      []string
		malformed int
	}{
		{"garbage line then valid", "GET / HTTP/1.1\r\n" + msgA + "\n", []string{msgA}, 1},
		{"garbage then object on the same line is skipped", "xx" + msgA + "\n" + msgB, []string{msgB}, 1},
		{"several garbage lines", "a\nb\n\n  c\n\t" + msgA, []string{msgA}, 3},
		{"stray closing brace", "}\n" + msgA, []string{msgA}, 1},
		{"top-level array", "[1,2]\n" + msgA, []string{msgA}, 1},
		{"raw newline inside a string", `{"mod":"a","s":"broken` + "\n" + msgB + "\n", []string{msgB}, 1},
		{"indented object after garbage", "oops\n    " + msgC, []string{msgC}, 1},
		{"object closed by a bracket", "{\"a\":1]\n" + msgA, []string{msgA}, 1},
		{"binary noise", "\x01\xff\xfe\n" + msgA, []string{msgA}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReader(iotest.OneByteReader(strings.NewReader(tt.in)), 0)
			msgs, malformed, err := readAll(r)
			if err != io.EOF {
				t.Fatalf("ended with %v", err)
			}
			if malformed != tt.malformed || strings.Join(msgs, "|") != strings.Join(tt.want, "|") {
				t.Fatalf("got %q with %d malformed; want %q with %d", msgs, malformed, tt.want, tt.malformed)
			}
		})
	}
}

func TestReaderEOF(t *testing.T) {
	r := NewReader(strings.NewReader(msgA+`{"mod":"b",`), 0)
	if b, err := r.ReadMessage(); err != nil || string(b) != msgA {
		t.Fatalf("first = %q, %v", b, err)
	}
	if _, err := r.ReadMessage(); err != io.ErrUnexpectedEOF {
		t.Fatalf("truncated = %v; want io.ErrUnexpectedEOF", err)
	}
	failing := errors.New("link down")
	r = NewReader(iotest.ErrReader(failing), 0)
	if _, err := r.ReadMessage(); !errors.Is(err, failing) {
		t.Fatalf("read error = %v", err)
	}
	r = NewReader(strings.NewReader(" \n\t "), 0)
	if _, err := r.ReadMessage(); err != io.EOF {
		t.Fatalf("whitespace only = %v", err)
	}
}

// zeroReader returns (0, nil) forever, as some serial and broken readers do.
type zeroReader struct{}

func (zeroReader) Read([]byte) (int, error) { return 0, nil }

func TestReaderNoProgress(t *testing.T) {
	if _, err := NewReader(zeroReader{}, 0).ReadMessage(); !errors.Is(err, io.ErrNoProgress) {
		t.Fatalf("ReadMessage = %v; want io.ErrNoProgress", err)
	}
}

// TestReaderReleasesLargeBuffer: after a large message has been consumed,
// the Reader does not keep a buffer the size of that message for the rest
// of the connection, and small messages after it read as before.
func TestReaderReleasesLargeBuffer(t *testing.T) {
	big := `{"mod":"x","session_id":"s","pad":"` + strings.Repeat("a", 1<<20) + `"}`
	stream := big + "\n" + msgA + "\n" + msgB
	r := NewReader(&chunkReader{data: []byte(stream), sizes: []int{65536}}, 0)
	m, err := r.ReadMessage()
	if err != nil || len(m) != len(big) {
		t.Fatalf("large message: %d bytes, %v", len(m), err)
	}
	if len(r.buf) < len(big) {
		t.Fatalf("buffer %d bytes holds a %d-byte message?", len(r.buf), len(big))
	}
	for _, want := range []string{msgA, msgB} {
		m, err := r.ReadMessage()
		if err != nil || string(m) != want {
			t.Fatalf("after the large message: %q, %v; want %q", m, err, want)
		}
	}
	// Waiting for the next message (here: the end of the stream) is when
	// the buffer is given back.
	if _, err := r.ReadMessage(); err != io.EOF {
		t.Fatalf("end of stream: %v", err)
	}
	if len(r.buf) > keepBufSize {
		t.Fatalf("buffer still %d bytes after the large message was consumed; want at most %d", len(r.buf), keepBufSize)
	}
}

// A bracket closed by the other kind (`[1,2}`) is malformed: the object
// is skipped and the reader resynchronises at the next message instead of
// swallowing everything after it into one "object".
func TestReaderMismatchedBrackets(t *testing.T) {
	tests := []struct {
		name, in string
		want     []string
	}{
		{"list closed by brace", `{"mod":"get_device_info","session_id":"x","type":1,"x":[1,2}` + "\n" + msgA + "\n" + msgB + "\n", []string{msgA, msgB}},
		{"object closed by bracket", `{"a":{"b":1]}` + "\n" + msgA + "\n", []string{msgA}},
		{"extra closer", `{"a":[1]]}` + "\n" + msgA + "\n", []string{msgA}},
	}
	for _, tt := range tests {
		for _, wrap := range []func(io.Reader) io.Reader{func(r io.Reader) io.Reader { return r }, iotest.OneByteReader} {
			msgs, malformed, err := readAll(NewReader(wrap(strings.NewReader(tt.in)), 1<<20))
			if err != io.EOF || malformed == 0 || strings.Join(msgs, "|") != strings.Join(tt.want, "|") {
				t.Errorf("%s: got %q, %d malformed, %v; want %q, some malformed, EOF", tt.name, msgs, malformed, err, tt.want)
			}
		}
	}
}

// Nesting deeper than MaxDepth is malformed, and the reader goes on.
func TestReaderDeepNesting(t *testing.T) {
	deep := `{"a":` + strings.Repeat("[", 100000) + strings.Repeat("]", 100000) + "}"
	msgs, malformed, err := readAll(NewReader(strings.NewReader(deep+"\n"+msgA+"\n"), 1<<20))
	if err != io.EOF || malformed == 0 || len(msgs) != 1 || msgs[0] != msgA {
		t.Fatalf("got %d messages, %d malformed, %v; want [msgA], some malformed, EOF", len(msgs), malformed, err)
	}
}

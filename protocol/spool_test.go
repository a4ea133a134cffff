package protocol

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
)

// inMemory returns m with every spooled blob read back into Data, for
// comparing with what Decode returns.
func inMemory(t testing.TB, m *Message) *Message {
	t.Helper()
	if m == nil || m.PersonInfo == nil {
		return m
	}
	c := *m
	pi := *m.PersonInfo
	for _, b := range []**Biometric{&pi.Face, &pi.LeftImage, &pi.RightImage, &pi.LeftCode, &pi.RightCode} {
		if *b == nil || !(*b).Spooled() {
			continue
		}
		data, err := (*b).Bytes()
		if err != nil {
			t.Fatalf("read spooled blob back: %v", err)
		}
		if len(data) != (*b).Len() {
			t.Fatalf("spooled blob: Len %d, read %d bytes", (*b).Len(), len(data))
		}
		nb := **b
		nb.Data, nb.spool = data, nil
		*b = &nb
	}
	c.PersonInfo = &pi
	return &c
}

// spoolMessages reads data with a Reader using a Spool of the given
// threshold in chunks of the given sizes, and returns, per message, what
// Spool.Decode made of it (in memory) and its error.
type decoded struct {
	m   *Message
	err error
	ok  bool // message read (else: the reader's error)
}

func readSpooled(t testing.TB, src io.Reader, max int, sp *Spool) []decoded {
	t.Helper()
	r := NewReader(src, max)
	decode := Decode
	if sp != nil {
		r.UseSpool(sp)
		decode = sp.Decode
	}
	var out []decoded
	for {
		b, err := r.ReadMessage()
		if err != nil {
			out = append(out, decoded{err: err})
			if errors.Is(err, ErrMalformed) {
				continue
			}
			return out
		}
		m, err := decode(b)
		if err == nil {
			err = m.Validate()
		}
		out = append(out, decoded{m: inMemory(t, m), err: err, ok: true})
		m.Close()
	}
}

// checkSpoolSame: reading data through a spool decodes to exactly what it
// decodes to without one: the same messages, the same refusals in the
// same words, and nothing left in the spool afterwards.
func checkSpoolSame(t testing.TB, data []byte, max, threshold int, sizes []int) {
	t.Helper()
	sp, err := NewSpool(t.TempDir(), threshold)
	if err != nil {
		t.Fatal(err)
	}
	want := readSpooled(t, bytes.NewReader(data), max, nil)
	got := readSpooled(t, iotest.HalfReader(&chunkReader{data: data, sizes: sizes}), max, sp)
	if len(got) != len(want) {
		t.Fatalf("%d results through the spool, %d without", len(got), len(want))
	}
	for i := range want {
		w, g := want[i], got[i]
		if w.ok != g.ok || fmt.Sprint(w.err) != fmt.Sprint(g.err) && !(errors.Is(w.err, ErrTooLarge) && errors.Is(g.err, ErrTooLarge)) {
			t.Fatalf("result %d: through the spool %v (read %v), without %v (read %v)", i, g.err, g.ok, w.err, w.ok)
		}
		if !reflect.DeepEqual(w.m, g.m) {
			t.Fatalf("message %d differs through the spool:\n%s\n%s", i, summary(g.m), summary(w.m))
		}
	}
	sp.mu.Lock()
	left := len(sp.pending)
	sp.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d spooled strings left pending", left)
	}
	if names, _ := filepath.Glob(filepath.Join(sp.Dir(), "*")); len(names) != 0 {
		t.Fatalf("files left in the spool directory: %v", names)
	}
}

func b64Of(n int, seed byte) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) + seed
	}
	return base64.StdEncoding.EncodeToString(b)
}

// spoolCases are download_person requests with long strings, clean and
// broken in the ways the spool's streaming check must leave to Decode.
func spoolCases() []string {
	big := b64Of(3000, 1)
	person := func(fields string) string {
		return `{"mod":"download_person","session_id":"s","type":1,"person_info":{"person_id":"p1",` + fields + `}}`
	}
	mid := len(big) / 2 / 4 * 4
	return []string{
		person(`"face":{"length":3000,"data":"` + big + `"},"left_code":{"length":3000,"data":"` + big + `"}`),
		person(`"face":{"length":2999,"data":"` + big + `"}`), // length mismatch
		person(`"face":{"length":3000,"data":"` + big[:mid] + `@` + big[mid+1:] + `"}`),
		person(`"face":{"length":3000,"data":"` + big[:mid] + `====` + big[mid:] + `"}`),
		person(`"face":{"length":3000,"data":"` + big[:mid] + `\/` + big[mid:] + `"}`),
		person(`"face":{"length":3000,"data":"` + strings.ReplaceAll(big, "/", `\/`) + `"}`), // PHP's json_encode
		person(`"face":{"length":3000,"data":"` + big[:mid] + `\u0041` + big[mid+1:] + `"}`),
		person(`"face":{"length":3000,"data":"` + big + `\"}`),
		person(`"face":{"length":3000,"data":"` + big[:mid] + `\n` + big[mid:] + `"}`),
		person(`"face":{"length":3000,"data":"` + big[:len(big)-1] + `"}`),
		person(`"face":{"length":3000,"data":"` + big + `","data":"` + big + `"}`),
		person(`"face":{"length":3000,"data":"` + big + "\x01" + `"}`),
		person(`"person_name":"` + strings.Repeat("名", 1000) + `","face":{"length":3000,"data":"` + big + `"}`),
		person(`"person_name":"` + strings.Repeat("x", 1000) + "\xff" + `"`),
		person(`"x_extra":"` + big + `","face":{"length":3000,"data":"` + big + `"}`),
		person(`"` + strings.Repeat("k", 500) + `":1,"face":{"length":3000,"data":"` + big + `"}`),
		person(`"face":{"length":3000,"data":"` + big + `"},"person_id":"again"`),
		person(`"face":"` + big + `"`),
		`{"mod":"download_person","session_id":"` + strings.Repeat("s", 600) + `","person_info":{"person_id":"p","face":{"length":3000,"data":"` + big + `"}}}`,
		`{"mod":"set_device_time","session_id":"s","time":"` + big + `"}`,
	}
}

// TestSpoolDecodesLikeDecode: through a spool (strings of 64 bytes or more
// spooled), every case decodes to what Decode makes of it, refusals and
// their words included, whatever the read sizes; and nothing stays in the
// spool.
func TestSpoolDecodesLikeDecode(t *testing.T) {
	var all []byte
	for _, c := range append(spoolCases(), fuzzSeeds()...) {
		checkSpoolSame(t, []byte(c), 1<<20, 64, []int{7, 1000, 3})
		all = append(append(all, c...), '\n')
	}
	checkSpoolSame(t, all, 1<<20, 64, []int{4096, 13})
}

// FuzzSpool: reading through a spool never changes what a message decodes
// to or how it is refused.
func FuzzSpool(f *testing.F) {
	for _, s := range append(fuzzSeeds(), spoolCases()...) {
		f.Add([]byte(s), uint8(5))
	}
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		checkSpoolSame(t, data, 1<<16, 1, []int{int(chunk%64) + 1, 1, 300})
	})
}

func openFiles(t *testing.T) int {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("counts /proc/self/fd")
	}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip(err)
	}
	return len(fds)
}

// bigPerson is a download_person request of about size bytes on the wire
// (five blobs of random data).
func bigPerson(size int) ([]byte, [][]byte) {
	var blobs [][]byte
	var fields []string
	for _, name := range []string{"face", "left_image", "right_image", "left_code", "right_code"} { // the order of PersonInfo.blobs
		b := make([]byte, size/5*3/4)
		rand.Read(b)
		blobs = append(blobs, b)
		fields = append(fields, fmt.Sprintf(`"%s":{"length":%d,"data":"%s"}`, name, len(b), base64.StdEncoding.EncodeToString(b)))
	}
	return []byte(`{"mod":"download_person","session_id":"big","type":1,"person_info":{"person_id":"p1",` + strings.Join(fields, ",") + "}}\n"), blobs
}

// TestSpoolBigMessage: a 15 MiB download_person read through a spool never
// grows the read buffer beyond a few hundred KiB, decodes to the same
// blobs, and once closed leaves no file open; one byte over the maximum
// size is still refused (the spooled bytes count).
func TestSpoolBigMessage(t *testing.T) {
	fds := openFiles(t)
	sp, err := NewSpool(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	msg, blobs := bigPerson(15 << 20)
	r := NewReader(iotest.HalfReader(bytes.NewReader(msg)), DefaultMaxMessageSize)
	r.UseSpool(sp)
	b, err := r.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	if len(r.buf) > 2*DefaultSpoolThreshold+minReadSize {
		t.Fatalf("read buffer grew to %d bytes for a %d-byte message", len(r.buf), len(msg))
	}
	if len(b) > 4096 {
		t.Fatalf("the message handed on is %d bytes: the blobs were not spooled", len(b))
	}
	m, err := sp.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	for i, bio := range m.PersonInfo.blobs() {
		if !bio.Spooled() || bio.Data != nil {
			t.Fatalf("blob %d not spooled", i)
		}
		got, err := io.ReadAll(bio.Open())
		if err != nil || !bytes.Equal(got, blobs[i]) {
			t.Fatalf("blob %d: %d bytes read back (%v), want %d", i, len(got), err, len(blobs[i]))
		}
	}
	m.Close()
	if _, err := r.ReadMessage(); err != io.EOF {
		t.Fatalf("after the message: %v", err)
	}
	if n := openFiles(t); n != fds {
		t.Fatalf("%d files open after the message was closed, %d before", n, fds)
	}

	over := append(bytes.TrimSuffix(msg, []byte("}}\n")), []byte(`,"x":"`+strings.Repeat("A", DefaultMaxMessageSize-len(msg)+2)+`"}}`)...)
	r = NewReader(bytes.NewReader(over), DefaultMaxMessageSize)
	r.UseSpool(sp)
	if _, err := r.ReadMessage(); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("a %d-byte message through the spool: %v, want ErrTooLarge", len(over), err)
	}
	if n := openFiles(t); n != fds {
		t.Fatalf("%d files open after the refused message, %d before", n, fds)
	}
}

// TestSpoolRemovesLeftovers: a spool file left by a process killed
// between creating and unlinking it is removed when the next spool starts;
// other files stay.
func TestSpoolRemovesLeftovers(t *testing.T) {
	dir := t.TempDir()
	left := filepath.Join(dir, ".termagent-spool-123")
	other := filepath.Join(dir, "termagent.db")
	for _, f := range []string{left, other} {
		if err := os.WriteFile(f, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := NewSpool(dir, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(left); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("leftover spool file: %v", err)
	}
	if _, err := os.Stat(other); err != nil {
		t.Fatalf("another file was removed: %v", err)
	}
}

// TestSpooledMessageMarshals: a request decoded through a spool encodes
// as the same message decoded without one (a server relaying it).
func TestSpooledMessageMarshals(t *testing.T) {
	sp, err := NewSpool(t.TempDir(), 64)
	if err != nil {
		t.Fatal(err)
	}
	in := []byte(spoolCases()[0])
	m := readOneSpooled(t, sp, in)
	defer m.Close()
	if !m.PersonInfo.Face.Spooled() {
		t.Fatal("face not spooled")
	}
	plain, err := Decode(in)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := Marshal(m)
	want, _ := Marshal(plain)
	if !bytes.Equal(got, want) {
		t.Fatalf("spooled message encodes as\n%.200s\nwant\n%.200s", got, want)
	}
}

// TestSpoolWithoutAFileReadsIntoMemory: when the spool cannot create a
// file (its directory is gone or unwritable), long strings are read into
// memory as without a spool, and the message decodes all the same.
func TestSpoolWithoutAFileReadsIntoMemory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "spool")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	sp, err := NewSpool(dir, 64)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	in := []byte(spoolCases()[0])
	m := readOneSpooled(t, sp, in)
	want, _ := Decode(in)
	if m.PersonInfo.Face.Spooled() || !reflect.DeepEqual(m, want) {
		t.Fatalf("decoded without a spool file:\n%s\nwant\n%s", summary(m), summary(want))
	}
}

// readOneSpooled reads the one message in through a Reader using sp and
// decodes it with sp.
func readOneSpooled(t *testing.T, sp *Spool, in []byte) *Message {
	t.Helper()
	r := NewReader(bytes.NewReader(in), 1<<20)
	r.UseSpool(sp)
	b, err := r.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	m, err := sp.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

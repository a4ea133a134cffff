package protocol

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"sync"
)

// DefaultSpoolThreshold is the length (raw bytes between the quotes) from
// which a Reader with a Spool moves a string out of memory.
const DefaultSpoolThreshold = 256 << 10

// spoolPattern names the spool's files while they exist in the directory
// (only between creation and unlinking, a few system calls).
const spoolPattern = ".termagent-spool-*"

// tokenLen is the length of the placeholder a Reader writes for a spooled
// string: a raw 0x01 byte (impossible inside valid JSON text) and 16 hex
// digits of a random token.
const tokenLen = 1 + 16

// Spool keeps the long strings of incoming messages out of memory: a
// Reader given one (Reader.UseSpool, DialConfig.Spool, ListenConfig.Spool)
// writes each string longer than the threshold, raw as it arrives, to its
// own file in the spool's directory, and hands on the message with a short
// placeholder instead; Spool.Decode (which a Peer with PeerConfig.Spool
// uses) reads the placeholders back. A blob's data (the base64 biometrics
// of download_person) is then checked by streaming through its file and
// stays there: the Message's Biometric reads it back on demand (Open), so
// a 16 MiB download_person costs a few hundred KiB of memory, not three
// copies of itself. Any other spooled string, and any message the
// streaming path does not take exactly as Decode would, is put back
// together in memory and decoded by Decode, so the refusals and their
// words are Decode's.
//
// The files have no name (O_TMPFILE on Linux; elsewhere, or on a
// filesystem without it, they are unlinked as soon as created): nothing is
// left on disk when a message is refused, dropped or handled, nor when the
// process is killed (the kernel frees a nameless file with its last
// descriptor). NewSpool removes the files a process killed between
// creating and unlinking one (the fallback) left behind.
//
// The placeholders carry a random token and a Spool only resolves the
// tokens its Readers wrote for the message being decoded: a peer cannot
// name another message's file. A Spool is safe for concurrent use and may
// serve several connections.
type Spool struct {
	dir       string
	threshold int

	mu      sync.Mutex
	pending map[string]*os.File // token → file of a string a Reader spooled, not yet decoded
}

// NewSpool returns a Spool keeping its files in dir (which must exist; on a
// terminal, the database's directory: persistent storage, not a tmpfs
// that would hold the strings in RAM again) for strings of threshold bytes
// or more (DefaultSpoolThreshold when threshold <= 0). It removes spool
// files a killed process left in dir.
func NewSpool(dir string, threshold int) (*Spool, error) {
	if threshold <= 0 {
		threshold = DefaultSpoolThreshold
	}
	threshold = max(threshold, 2*tokenLen)
	left, err := filepath.Glob(filepath.Join(dir, spoolPattern))
	if err != nil {
		return nil, fmt.Errorf("spool %s: %w", dir, err)
	}
	for _, f := range left {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("spool %s: remove leftover: %w", dir, err)
		}
	}
	if fi, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("spool: %s is not a directory", dir)
	}
	return &Spool{dir: dir, threshold: threshold, pending: make(map[string]*os.File)}, nil
}

// Dir returns the spool's directory.
func (s *Spool) Dir() string { return s.dir }

// create returns a new unlinked file (0600) and the placeholder that will
// stand for it in the message.
func (s *Spool) create() (*os.File, []byte, error) {
	var raw [8]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return nil, nil, fmt.Errorf("spool token: %w", err)
	}
	tok := make([]byte, tokenLen)
	tok[0] = 0x01
	hex.Encode(tok[1:], raw[:])
	if f, err := openAnonymous(s.dir); err == nil {
		return f, tok, nil
	}
	f, err := os.CreateTemp(s.dir, spoolPattern) // 0600
	if err != nil {
		return nil, nil, fmt.Errorf("spool: %w", err)
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("spool: unlink: %w", err)
	}
	return f, tok, nil
}

// add registers a complete spooled string under its placeholder.
func (s *Spool) add(tok []byte, f *os.File) {
	s.mu.Lock()
	s.pending[string(tok)] = f
	s.mu.Unlock()
}

// drop forgets and closes the files of placeholders not taken by Decode.
func (s *Spool) drop(toks []string) {
	s.mu.Lock()
	var fs []*os.File
	for _, t := range toks {
		if f, ok := s.pending[t]; ok {
			fs = append(fs, f)
			delete(s.pending, t)
		}
	}
	s.mu.Unlock()
	for _, f := range fs {
		f.Close()
	}
}

// take removes from the pending set the files whose placeholders b holds.
func (s *Spool) take(b []byte) map[string]*os.File {
	var out map[string]*os.File
	for i := 0; ; {
		j := bytes.IndexByte(b[i:], 0x01)
		if j < 0 || i+j+tokenLen > len(b) {
			return out
		}
		tok := string(b[i+j : i+j+tokenLen])
		i += j + 1
		s.mu.Lock()
		f, ok := s.pending[tok]
		delete(s.pending, tok)
		s.mu.Unlock()
		if ok {
			if out == nil {
				out = make(map[string]*os.File)
			}
			out[tok] = f
		}
	}
}

// Decode is Decode for a message that a Reader using s returned: the
// spooled data of a blob is checked (standard base64, as Decode checks
// it) by streaming through its file, which the Biometric then reads from
// (call Message.Close when done with the message); anything else is put
// back together in memory and decoded by Decode. Same result, same
// errors as Decode of the message as it was on the wire.
func (s *Spool) Decode(b []byte) (*Message, error) {
	files := s.take(b)
	if len(files) == 0 {
		return Decode(b)
	}
	p := fastParser{cursor: cursor{b: b}, spooled: maps.Clone(files)}
	if m, ok := fastDecodeWith(&p); ok && len(p.spooled) == 0 {
		return m, nil
	}
	// Not the clean form: the spooled strings go back in, and Decode
	// words what is wrong.
	full, err := unspool(b, files)
	for _, f := range files {
		f.Close()
	}
	if err != nil {
		return nil, err
	}
	return Decode(full)
}

// unspool returns b with every placeholder replaced by its file's bytes.
func unspool(b []byte, files map[string]*os.File) ([]byte, error) {
	size := len(b)
	for _, f := range files {
		fi, err := f.Stat()
		if err != nil {
			return nil, fmt.Errorf("spool: %w", err)
		}
		size += int(fi.Size())
	}
	out := make([]byte, 0, size)
	for len(b) > 0 {
		i := bytes.IndexByte(b, 0x01)
		if i < 0 || i+tokenLen > len(b) {
			break
		}
		f, ok := files[string(b[i:i+tokenLen])]
		if !ok {
			out = append(out, b[:i+1]...)
			b = b[i+1:]
			continue
		}
		out = append(out, b[:i]...)
		fi, err := f.Stat()
		if err != nil {
			return nil, fmt.Errorf("spool: %w", err)
		}
		n := len(out)
		out = out[:n+int(fi.Size())]
		if _, err := f.ReadAt(out[n:], 0); err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("spool: read back: %w", err)
		}
		b = b[i+tokenLen:]
	}
	return append(out, b...), nil
}

// spooledData is a blob's data left in its spool file: base64 text of
// raw bytes, which decodes to size bytes.
type spooledData struct {
	f    *os.File
	raw  int64
	size int
}

// spoolChunk is how much base64 text the streaming check decodes at a
// time (a multiple of 4).
const spoolChunk = 64 << 10

// checkSpooled decodes f's base64 text (a JSON string's contents) a
// chunk at a time, as Decode would decode it whole, and returns the
// decoded length. The one escape it takes is \/ (PHP's json_encode writes
// every '/' so). ok is false where the outcome is not certain (another
// escape, a line break, padding before the last chunk, invalid base64):
// Decode then decides.
func checkSpooled(f *os.File) (*spooledData, bool) {
	fi, err := f.Stat()
	if err != nil {
		return nil, false
	}
	raw := fi.Size()
	r := &unslash{r: io.NewSectionReader(f, 0, raw)}
	src := make([]byte, spoolChunk)
	dst := make([]byte, base64.StdEncoding.DecodedLen(spoolChunk))
	size := 0
	for {
		n, err := io.ReadFull(r, src)
		last := err == io.EOF || err == io.ErrUnexpectedEOF
		if err != nil && !last {
			return nil, false
		}
		chunk := src[:n]
		if (!last && bytes.IndexByte(chunk, '=') >= 0) || bytes.ContainsAny(chunk, "\r\n") {
			return nil, false
		}
		k, err := base64.StdEncoding.Decode(dst, chunk)
		if err != nil {
			return nil, false
		}
		size += k
		if last {
			break
		}
	}
	if size == 0 {
		return nil, false
	}
	return &spooledData{f: f, raw: raw, size: size}, true
}

// errEscape stops unslash at an escape other than \/.
var errEscape = errors.New("spool: escape other than \\/")

// unslash reads the contents of a JSON string whose only escape is \/,
// unescaped.
type unslash struct {
	r   io.Reader
	esc bool // the last byte read was a backslash
}

func (u *unslash) Read(p []byte) (int, error) {
	for {
		n, err := u.r.Read(p)
		w := 0
		for _, c := range p[:n] {
			switch {
			case u.esc:
				if c != '/' {
					return w, errEscape
				}
				u.esc = false
				p[w] = c
				w++
			case c == '\\':
				u.esc = true
			default:
				p[w] = c
				w++
			}
		}
		if err == io.EOF && u.esc {
			err = errEscape
		}
		if w > 0 || err != nil {
			return w, err
		}
	}
}

// spooledBlob parses a blob's data when it is a placeholder: ok reports
// that it was one and decoded cleanly. It leaves the parser alone when it
// is not a placeholder (handled reports false).
func (p *fastParser) spooledBlob(v *Biometric) (handled, ok bool) {
	if len(p.spooled) == 0 || p.i+tokenLen+2 > len(p.b) || p.b[p.i] != '"' || p.b[p.i+1] != 0x01 || p.b[p.i+1+tokenLen] != '"' {
		return false, false
	}
	tok := string(p.b[p.i+1 : p.i+1+tokenLen])
	f, found := p.spooled[tok]
	if !found {
		return false, false
	}
	d, ok := checkSpooled(f)
	if !ok {
		return true, false
	}
	delete(p.spooled, tok)
	v.spool = d
	p.i += tokenLen + 2
	return true, true
}

// Len returns the number of decoded bytes: len(Data), or the size of the
// spooled data.
func (b *Biometric) Len() int {
	if b.spool != nil {
		return b.spool.size
	}
	return len(b.Data)
}

// Spooled reports whether the data is in a spool file (Data is nil; read
// it with Open or Bytes) rather than in Data.
func (b *Biometric) Spooled() bool { return b.spool != nil }

// Open returns a reader of the decoded bytes (Data, or the spooled data
// decoded as it is read). Each call starts at the beginning; readers may
// be used concurrently. The reader fails once the Message is closed.
func (b *Biometric) Open() io.Reader {
	if b.spool == nil {
		return bytes.NewReader(b.Data)
	}
	return base64.NewDecoder(base64.StdEncoding, &unslash{r: io.NewSectionReader(b.spool.f, 0, b.spool.raw)})
}

// Bytes returns the decoded bytes in memory: Data, or the spooled data
// read back (for a module that takes a photo or a template whole).
func (b *Biometric) Bytes() ([]byte, error) {
	if b.spool == nil {
		return b.Data, nil
	}
	out := make([]byte, b.spool.size)
	if _, err := io.ReadFull(b.Open(), out); err != nil {
		return nil, fmt.Errorf("read spooled data: %w", err)
	}
	return out, nil
}

// Close releases the spool files of m's blobs (see Spool); their Open
// readers fail from then on. Idempotent; a no-op for a message without
// spooled data. A Peer closes each request once its response is written.
func (m *Message) Close() error {
	if m == nil || m.PersonInfo == nil {
		return nil
	}
	var errs []error
	for _, b := range m.PersonInfo.blobs() {
		if b != nil && b.spool != nil {
			if err := b.spool.f.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

func (p *PersonInfo) blobs() []*Biometric {
	return []*Biometric{p.Face, p.LeftImage, p.RightImage, p.LeftCode, p.RightCode}
}

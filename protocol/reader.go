package protocol

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
)

// DefaultMaxMessageSize is the maximum size of one message when a
// configuration leaves it zero: 16 MiB.
const DefaultMaxMessageSize = 16 << 20

const minReadSize = 4 << 10

// MaxDepth is the deepest nesting of objects and lists a Reader accepts
// in a message (a V1.0 message nests three levels).
const MaxDepth = 128

// keepBufSize is the largest read buffer a Reader keeps between messages;
// one grown beyond it for a large message is replaced by a minReadSize one
// once that message has been consumed.
const keepBufSize = 64 << 10

// Reader splits a byte stream into JSON objects (PROTOCOL.md §2 "Framing on
// raw TCP"): objects separated by newlines, other whitespace or nothing,
// pretty-printed over many lines, split over any number of reads or several
// in one read. It only finds each object's end (tracking strings and
// nesting); Decode checks the JSON itself.
//
// Between objects, NUL bytes and UTF-8 byte order marks count as
// whitespace. Other bytes outside an object are malformed: ReadMessage
// returns an error wrapping ErrMalformed and the next call resumes at the
// next line that starts with '{' (after optional whitespace). A string
// that runs into a raw newline (impossible in valid JSON) is malformed the
// same way, and so is a bracket closed by the other kind (`[1,2}`) or
// nesting deeper than MaxDepth: the object is dropped and the reader
// resumes at the next line, instead of taking everything after it for the
// rest of one "object". An object longer than the maximum size is never buffered whole:
// ReadMessage returns ErrTooLarge, and so does every later call.
//
// A Reader does no I/O of its own beyond Read on the underlying reader, and
// is not safe for concurrent use.
type Reader struct {
	r   io.Reader
	max int

	buf        []byte
	start, end int // buf[start:end] holds unconsumed bytes
	pos        int // scan position in buf, start <= pos <= end

	// Scanner state of the object at buf[start:pos] (inObject) or of the
	// bytes between objects.
	inObject bool
	depth    int
	open     [MaxDepth / 64]uint64 // bit depth-1 set: that level is a list
	inString bool
	escape   bool
	skipping bool // discarding a malformed line up to its newline
	err      error

	// Spooling (UseSpool): the current string starts at buf[strStart];
	// once spooled, buf[strStart:strStart+tokenLen] holds its placeholder
	// and its bytes go to spill. spilled counts the bytes of the current
	// object moved out of buf (net of placeholders); toks are the
	// placeholders of the current object, or of the message last returned.
	spool    *Spool
	strStart int
	spill    *os.File
	spillTok []byte
	spilled  int
	toks     []string
	noSpill  bool // the current string could not get a spool file: it stays in memory
}

// NewReader returns a Reader of r that rejects messages longer than
// maxSize bytes (DefaultMaxMessageSize when maxSize <= 0).
func NewReader(r io.Reader, maxSize int) *Reader {
	if maxSize <= 0 {
		maxSize = DefaultMaxMessageSize
	}
	return &Reader{r: r, max: maxSize, buf: make([]byte, min(minReadSize, maxSize+1))}
}

// UseSpool makes r move each string of s's threshold or more out of
// memory into a file of s as it arrives (see Spool): the message
// ReadMessage returns holds a placeholder instead, which only s.Decode
// reads. The maximum message size still counts the bytes on the wire.
// Call it before the first ReadMessage.
func (r *Reader) UseSpool(s *Spool) { r.spool = s }

// ReadMessage blocks until the next complete JSON object and returns its
// bytes, from '{' to the matching '}'. The slice is valid only until the
// next call. At the end of the stream it returns io.EOF, or
// io.ErrUnexpectedEOF inside an object. Errors wrapping ErrMalformed are
// recoverable: call again. Any other error is final and repeats.
func (r *Reader) ReadMessage() ([]byte, error) {
	if len(r.toks) > 0 {
		// The message last returned has been decoded: whatever of its
		// spooled strings the decoder did not take goes.
		r.dropSpills()
	}
	for {
		if r.err != nil {
			return nil, r.err
		}
		msg, err := r.scan()
		if msg != nil || err != nil {
			return msg, err
		}
		if err := r.fill(); err != nil {
			r.dropSpills()
			switch {
			case errors.Is(err, io.EOF) && r.inObject:
				err = io.ErrUnexpectedEOF
			case errors.Is(err, io.EOF):
				err = io.EOF
			}
			r.err = err
			return nil, err
		}
	}
}

// scan advances over the buffered bytes. It returns a complete object, a
// malformed-input error, or (nil, nil) when it needs more bytes.
func (r *Reader) scan() ([]byte, error) {
	buf := r.buf[:r.end]
	for r.pos < r.end {
		if !r.inObject {
			c := buf[r.pos]
			r.pos++
			r.start = r.pos
			switch {
			case r.skipping:
				if c == '\n' {
					r.skipping = false
				}
			case c == '{':
				r.inObject, r.depth, r.start = true, 1, r.pos-1
			case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			case c == 0 || c == 0xEF || c == 0xBB || c == 0xBF:
				// NUL terminators (C servers) and byte order marks
				// separate messages too.
			default:
				r.skipping = true
				return nil, fmt.Errorf("%w: unexpected %q between messages, skipping to the next line", ErrMalformed, c)
			}
			continue
		}
		// Inside an object: find its end without looking at anything but
		// quotes, escapes, braces and newlines.
		i := r.pos
		for ; i < r.end; i++ {
			c := buf[i]
			if r.inString && !r.escape && c != '"' && c != '\\' && c != '\n' {
				// Skip plain string bytes (base64 blobs are most of a big
				// message) a window at a time; the window bounds the
				// rescanning when escapes are dense.
				w := buf[i:min(i+512, r.end)]
				stop := len(w)
				if q := bytes.IndexByte(w, '"'); q >= 0 {
					stop = q
				}
				if e := bytes.IndexByte(w[:stop], '\\'); e >= 0 {
					stop = e
				}
				if n := bytes.IndexByte(w[:stop], '\n'); n >= 0 {
					stop = n
				}
				i += stop - 1
				continue
			}
			if r.inString {
				switch {
				case r.escape:
					r.escape = false
				case c == '\\':
					r.escape = true
				case c == '"':
					if r.spill != nil {
						n, err := r.endSpill(i)
						if err != nil {
							return r.spillFailed(i, err)
						}
						i, buf = n, r.buf[:r.end]
					}
					r.inString = false
				case c == '\n':
					r.dropSpills()
					r.reset()
					r.pos = i + 1
					r.start = r.pos
					return nil, fmt.Errorf("%w: newline inside a string, skipping to the next line", ErrMalformed)
				}
				continue
			}
			switch c {
			case '"':
				r.inString = true
				r.strStart = i + 1
				r.noSpill = false
			case '{', '[':
				if r.depth >= MaxDepth {
					return r.resync(i, fmt.Errorf("%w: nested deeper than %d levels, skipping to the next line", ErrMalformed, MaxDepth))
				}
				r.setOpen(r.depth, c == '[')
				r.depth++
			case '}', ']':
				r.depth--
				if r.isOpenList(r.depth) != (c == ']') {
					return r.resync(i, fmt.Errorf("%w: %q closes %s, skipping to the next line", ErrMalformed, c, map[bool]string{true: "a list", false: "an object"}[c == '}']))
				}
				if r.depth == 0 {
					msg := buf[r.start : i+1]
					r.reset()
					r.pos = i + 1
					r.start = r.pos
					if n := len(msg) + r.spilled; n > r.max {
						r.dropSpills()
						r.err = fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, n, r.max)
						return nil, r.err
					}
					r.spilled = 0
					return msg, nil
				}
			}
		}
		r.pos = i
		if r.inString && r.spool != nil {
			if err := r.spillString(); err != nil {
				return r.spillFailed(r.end-1, err)
			}
		}
		if r.pos-r.start+r.spilled > r.max {
			r.dropSpills()
			r.err = fmt.Errorf("%w: more than %d bytes", ErrTooLarge, r.max)
			return nil, r.err
		}
	}
	return nil, nil
}

// resync drops the object being scanned at buf[i] as malformed: the rest
// of its line is skipped too.
func (r *Reader) resync(i int, err error) ([]byte, error) {
	r.dropSpills()
	r.reset()
	r.pos = i + 1
	r.start = r.pos
	r.skipping = true
	return nil, err
}

// setOpen records whether nesting level d is a list.
func (r *Reader) setOpen(d int, list bool) {
	if list {
		r.open[d/64] |= 1 << (d % 64)
	} else {
		r.open[d/64] &^= 1 << (d % 64)
	}
}

// isOpenList reports whether nesting level d is a list.
func (r *Reader) isOpenList(d int) bool { return r.open[d/64]&(1<<(d%64)) != 0 }

// spillString moves the bytes of the string being read (all of it
// buffered: r.pos == r.end) to its spool file once it is long enough.
func (r *Reader) spillString() error {
	if r.spill == nil {
		if r.noSpill || r.end-r.strStart < r.spool.threshold {
			return nil
		}
		f, tok, err := r.spool.create()
		if err != nil {
			// No file (directory unwritable, disk full): the string is
			// read into memory as without a spool.
			r.noSpill = true
			return nil
		}
		if _, err := f.Write(r.buf[r.strStart:r.end]); err != nil {
			f.Close()
			return fmt.Errorf("spool: %w", err)
		}
		r.spill, r.spillTok = f, tok
		r.spilled += r.end - r.strStart - tokenLen
		copy(r.buf[r.strStart:], tok)
		r.end = r.strStart + tokenLen
		r.pos = r.end
		return nil
	}
	from := r.strStart + tokenLen
	if r.end-from < r.spool.threshold/2 {
		return nil // wait for more: fewer, larger writes
	}
	if _, err := r.spill.Write(r.buf[from:r.end]); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	r.spilled += r.end - from
	r.end, r.pos = from, from
	return nil
}

// endSpill writes the rest of the spooled string that ends at buf[i]
// (its closing quote) to its file, registers the file with the spool and
// returns where the quote now is.
func (r *Reader) endSpill(i int) (int, error) {
	from := r.strStart + tokenLen
	if _, err := r.spill.Write(r.buf[from:i]); err != nil {
		return 0, fmt.Errorf("spool: %w", err)
	}
	r.spilled += i - from
	r.end = from + copy(r.buf[from:], r.buf[i:r.end])
	r.spool.add(r.spillTok, r.spill)
	r.toks = append(r.toks, string(r.spillTok))
	r.spill = nil
	return from, nil
}

// spillFailed drops the object whose string could not be written on to
// its spool file (the disk filled up or failed mid-string): recoverable,
// like malformed input.
func (r *Reader) spillFailed(i int, err error) ([]byte, error) {
	return r.resync(i, fmt.Errorf("%w: cannot hold a long string (%w), skipping to the next line", ErrMalformed, err))
}

// dropSpills discards the spooled strings of the object being dropped,
// or those of the message last returned that its decoder left.
func (r *Reader) dropSpills() {
	if r.spill != nil {
		r.spill.Close()
		r.spill = nil
	}
	if len(r.toks) > 0 {
		r.spool.drop(r.toks)
		r.toks = r.toks[:0]
	}
	r.spilled = 0
}

func (r *Reader) reset() {
	r.inObject, r.depth, r.inString, r.escape = false, 0, false, false
}

// fill reads more bytes, first moving the unconsumed ones to the front and
// growing the buffer (up to the maximum message size plus one read) if it
// is full.
func (r *Reader) fill() error {
	if len(r.buf) > keepBufSize && !r.inObject && r.end-r.start <= minReadSize/2 {
		// A large message grew the buffer and has been consumed: give the
		// memory back while the link waits for the next one, instead of
		// holding up to the maximum message size for the connection's life.
		nb := make([]byte, minReadSize)
		r.end = copy(nb, r.buf[r.start:r.end])
		r.pos -= r.start
		r.strStart -= r.start
		r.start = 0
		r.buf = nb
	}
	if r.start > 0 {
		n := copy(r.buf, r.buf[r.start:r.end])
		r.pos -= r.start
		r.strStart -= r.start
		r.end = n
		r.start = 0
	}
	if r.end == len(r.buf) {
		size := min(2*len(r.buf), r.max+minReadSize)
		if size <= len(r.buf) {
			// Cannot happen: scan rejects an object longer than max.
			return fmt.Errorf("%w: buffer full", ErrTooLarge)
		}
		nb := make([]byte, size)
		copy(nb, r.buf[:r.end])
		r.buf = nb
	}
	for range 100 {
		n, err := r.r.Read(r.buf[r.end:])
		r.end += n
		if n > 0 {
			return nil
		}
		if err != nil {
			return err
		}
	}
	return io.ErrNoProgress
}

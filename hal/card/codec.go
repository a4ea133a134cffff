package card

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
)

// Errors a decoder reports for bytes it dropped. They are informational: the
// caller drops the bytes the decoder says and goes on.
var (
	// ErrChecksum means a well-formed frame failed its checksum.
	ErrChecksum = errors.New("card: frame checksum mismatch")
	// ErrMalformed means bytes that started like a frame were not one.
	ErrMalformed = errors.New("card: malformed frame")
)

// Frame bytes and card types.
const (
	STX = 0x02 // start of frame
	ETX = 0x03 // end of frame

	// RDM6300FrameLen is the length of an RDM6300 frame in bytes.
	RDM6300FrameLen = 14

	// TypeEM4100 is the Gwiot card-type code of a 125 kHz EM4100 tag;
	// RDM6300 reads are reported with it too.
	TypeEM4100 = 0x02
	// TypeMifare1K is the Gwiot card-type code of a MIFARE Classic 1K.
	TypeMifare1K = 0x01

	gwiotMinLen = 7  // STX LEN TYPE + 2 UID bytes + BCC ETX
	gwiotMaxLen = 32 // no card type has a longer identifier
)

// Read is one decoded card read, before formatting.
type Read struct {
	// UID is the identifier, most significant byte first as the reader
	// sent it. For an EM4100 tag it is the version byte and the 32-bit
	// tag (5 bytes). Line readers' digits are converted to bytes (decimal
	// as a big-endian integer of at least 4 bytes, hex as written).
	UID []byte
	// Type is the reader's card-type code (Gwiot table; TypeEM4100 for
	// RDM6300); 0 when the protocol does not say (line readers).
	Type byte
	// Text is the line as received (trimmed) for line readers, else "".
	Text string
}

// A decoder looks for one frame at the start of buf. It returns how many
// bytes the caller must drop (advance) and, when a whole valid frame was
// found, ok with the read. advance == 0 means buf holds the beginning of a
// frame and more bytes are needed. A non-nil err (ErrChecksum,
// ErrMalformed) explains bytes dropped that looked like a frame; noise
// before a frame start is dropped silently. Decoders never keep a reference
// to buf: Read.UID is a copy.
type decoder func(buf []byte) (r Read, ok bool, advance int, err error)

// DecodeRDM6300 decodes an RDM6300 frame at the start of buf (see decoder
// for the results). On a bad frame it drops only the STX so that a real
// frame starting inside the bad one is still found.
func DecodeRDM6300(buf []byte) (r Read, ok bool, advance int, err error) {
	if i := bytes.IndexByte(buf, STX); i != 0 {
		if i < 0 {
			return Read{}, false, len(buf), nil
		}
		return Read{}, false, i, nil
	}
	end := min(len(buf), RDM6300FrameLen-1)
	for j := 1; j < end; j++ {
		if unhex(buf[j]) < 0 {
			return Read{}, false, 1, fmt.Errorf("rdm6300: byte %d is %#02x, not a hex digit: %w", j, buf[j], ErrMalformed)
		}
	}
	if len(buf) < RDM6300FrameLen {
		return Read{}, false, 0, nil
	}
	if buf[RDM6300FrameLen-1] != ETX {
		return Read{}, false, 1, fmt.Errorf("rdm6300: byte 13 is %#02x, not ETX: %w", buf[RDM6300FrameLen-1], ErrMalformed)
	}
	var data [6]byte // 5 data bytes + checksum
	for k := range data {
		data[k] = byte(unhex(buf[1+2*k])<<4 | unhex(buf[2+2*k]))
	}
	var sum byte
	for _, b := range data[:5] {
		sum ^= b
	}
	if sum != data[5] {
		return Read{}, false, 1, fmt.Errorf("rdm6300: checksum %02X, computed %02X: %w", data[5], sum, ErrChecksum)
	}
	return Read{UID: bytes.Clone(data[:5]), Type: TypeEM4100}, true, RDM6300FrameLen, nil
}

// AppendRDM6300 appends the RDM6300 frame for the 5 identifier bytes (version
// byte + 32-bit tag) to dst.
func AppendRDM6300(dst []byte, uid [5]byte) []byte {
	const digits = "0123456789ABCDEF"
	var sum byte
	dst = append(dst, STX)
	for _, b := range uid {
		sum ^= b
		dst = append(dst, digits[b>>4], digits[b&0x0F])
	}
	return append(dst, digits[sum>>4], digits[sum&0x0F], ETX)
}

// DecodeGwiot7941 decodes a Gwiot 7941-family push frame
// 02 LEN TYPE UID… BCC 03 at the start of buf (see decoder for the results).
// LEN is the whole frame's length (7 to 32); BCC is the XOR of the bytes
// from LEN through the last UID byte.
func DecodeGwiot7941(buf []byte) (r Read, ok bool, advance int, err error) {
	if i := bytes.IndexByte(buf, STX); i != 0 {
		if i < 0 {
			return Read{}, false, len(buf), nil
		}
		return Read{}, false, i, nil
	}
	if len(buf) < 2 {
		return Read{}, false, 0, nil
	}
	n := int(buf[1])
	if n < gwiotMinLen || n > gwiotMaxLen {
		return Read{}, false, 1, fmt.Errorf("gwiot7941: length byte %d out of range %d..%d: %w", n, gwiotMinLen, gwiotMaxLen, ErrMalformed)
	}
	if len(buf) < n {
		return Read{}, false, 0, nil
	}
	if buf[n-1] != ETX {
		return Read{}, false, 1, fmt.Errorf("gwiot7941: byte %d is %#02x, not ETX: %w", n-1, buf[n-1], ErrMalformed)
	}
	var sum byte
	for _, b := range buf[1 : n-2] {
		sum ^= b
	}
	if sum != buf[n-2] {
		return Read{}, false, 1, fmt.Errorf("gwiot7941: checksum %02X, computed %02X: %w", buf[n-2], sum, ErrChecksum)
	}
	return Read{UID: bytes.Clone(buf[3 : n-2]), Type: buf[2]}, true, n, nil
}

// AppendGwiot7941 appends the Gwiot 7941 push frame for a card of type typ
// with identifier uid (2 to 27 bytes) to dst.
func AppendGwiot7941(dst []byte, typ byte, uid []byte) ([]byte, error) {
	n := len(uid) + 5
	if n < gwiotMinLen || n > gwiotMaxLen {
		return dst, fmt.Errorf("gwiot7941: identifier of %d bytes, want %d..%d", len(uid), gwiotMinLen-5, gwiotMaxLen-5)
	}
	sum := byte(n) ^ typ
	for _, b := range uid {
		sum ^= b
	}
	dst = append(dst, STX, byte(n), typ)
	dst = append(dst, uid...)
	return append(dst, sum, ETX), nil
}

// Line describes a text line reader: a card number as digits, ended by CR,
// LF or CR LF. Zero fields mean the documented defaults.
type Line struct {
	// Hex says the digits are hexadecimal (0-9, A-F, either case);
	// otherwise they are decimal.
	Hex bool
	// MinDigits is the shortest accepted number; zero means 6 (a
	// Wiegand-26 number in hex), so line noise that happens to hold a
	// digit and a line end is not taken for a card.
	MinDigits int
	// MaxDigits is the longest accepted number; zero means 19 for decimal
	// (fits 64 bits) and 32 for hex. Decimal is capped at 19.
	MaxDigits int
}

func (l Line) limits() (lo, hi int) {
	lo, hi = l.MinDigits, l.MaxDigits
	if lo <= 0 {
		lo = 6
	}
	switch {
	case hi <= 0 && l.Hex:
		hi = 32
	case hi <= 0, !l.Hex && hi > 19:
		hi = 19
	}
	return lo, hi
}

// Validate reports digit limits that accept no number.
func (l Line) Validate() error {
	if lo, hi := l.limits(); l.MinDigits < 0 || lo > hi {
		return fmt.Errorf("card line: digits %d..%d accept no number", l.MinDigits, l.MaxDigits)
	}
	return nil
}

// Decode decodes one line at the start of buf (see decoder for the
// results). Empty lines (the LF of a CR LF) are dropped silently; a byte
// that cannot be part of a number (neither a digit of the alphabet, a space
// nor a line end) drops the line up to and including it, so noise before a
// number does not spoil it; a line longer than the limit is dropped as soon
// as it is seen to be too long.
func (l Line) Decode(buf []byte) (r Read, ok bool, advance int, err error) {
	lo, hi := l.limits()
	i := bytes.IndexAny(buf, "\r\n")
	end := i
	if end < 0 {
		end = len(buf)
	}
	for j := end - 1; j >= 0; j-- {
		if c := buf[j]; c != ' ' && c != '\t' && !l.digit(c) {
			return Read{}, false, j + 1, fmt.Errorf("line: byte %#02x is not a digit: %w", c, ErrMalformed)
		}
	}
	if i < 0 {
		if len(bytes.TrimSpace(buf)) > hi+2 {
			return Read{}, false, len(buf), fmt.Errorf("line: %d bytes without a line end: %w", len(buf), ErrMalformed)
		}
		return Read{}, false, 0, nil
	}
	text := string(bytes.TrimSpace(buf[:i]))
	advance = i + 1
	if text == "" {
		return Read{}, false, advance, nil
	}
	if len(text) < lo || len(text) > hi {
		return Read{}, false, advance, fmt.Errorf("line: %d digits, want %d..%d: %w", len(text), lo, hi, ErrMalformed)
	}
	uid, err := l.parse(text)
	if err != nil {
		return Read{}, false, advance, err
	}
	return Read{UID: uid, Text: text}, true, advance, nil
}

func (l Line) digit(c byte) bool {
	if l.Hex {
		return unhex(c) >= 0
	}
	return '0' <= c && c <= '9'
}

func (l Line) parse(text string) ([]byte, error) {
	if l.Hex {
		if len(text)%2 == 1 {
			text = "0" + text
		}
		uid := make([]byte, len(text)/2)
		for k := range uid {
			hi, lo := unhex(text[2*k]), unhex(text[2*k+1])
			if hi < 0 || lo < 0 {
				return nil, fmt.Errorf("line: %q is not hex: %w", text, ErrMalformed)
			}
			uid[k] = byte(hi<<4 | lo)
		}
		return uid, nil
	}
	for k := 0; k < len(text); k++ {
		if text[k] < '0' || text[k] > '9' {
			return nil, fmt.Errorf("line: %q is not decimal: %w", text, ErrMalformed)
		}
	}
	v, err := strconv.ParseUint(text, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("line: %q: %w", text, ErrMalformed)
	}
	uid := []byte{byte(v >> 56), byte(v >> 48), byte(v >> 40), byte(v >> 32), byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}
	for len(uid) > 4 && uid[0] == 0 {
		uid = uid[1:]
	}
	return uid, nil
}

// unhex returns the value of an ASCII hex digit, or -1.
func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'A' <= c && c <= 'F':
		return int(c - 'A' + 10)
	case 'a' <= c && c <= 'f':
		return int(c - 'a' + 10)
	}
	return -1
}

package card

import (
	"fmt"
	"strconv"
	"strings"
)

// Style is how a card identifier is written as the server's card_number.
type Style string

// Styles. Worked examples use the EM4100 tag 01 00 63 E9 AE.
const (
	// Decimal is the decimal value of the identifier's low Bytes bytes
	// (default 4: the number printed on EM fobs), zero padded to Width
	// (default 10): "0006547886".
	Decimal Style = "dec"
	// Hex is the identifier's low Bytes bytes (default all) in upper-case
	// hex, zero padded to Width (default two digits a byte): "010063E9AE".
	Hex Style = "hex"
	// Wiegand26 is what a Wiegand-26 reader carries: the facility code
	// (third-last byte, 3 digits), Separator, then the card number (last
	// two bytes, 5 digits): "09959822", or "099,59822" with Separator ",".
	Wiegand26 Style = "w26"
	// Text is the line exactly as a line reader sent it, zero padded to
	// Width; for other protocols it falls back to Hex.
	Text Style = "text"
)

// Format turns a Read into the server's card_number string. The zero Format
// is Decimal, 10 digits, most significant byte first.
type Format struct {
	// Style selects the notation; zero means Decimal.
	Style Style `yaml:"style"`
	// Width is the minimum number of digits, zero padded on the left; zero
	// means the style's default (Decimal 10, Hex 2 per byte used, Text
	// none). Ignored by Wiegand26, which is always 3+5 digits.
	Width int `yaml:"width"`
	// Bytes is how many of the identifier's low-order bytes are used (after
	// ReverseBytes); zero means the style's default (Decimal 4, Hex all,
	// Wiegand26 3). Decimal accepts at most 8.
	Bytes int `yaml:"bytes"`
	// ReverseBytes takes the identifier least significant byte first, as
	// many printed MIFARE numbers are ("little-endian decimal").
	ReverseBytes bool `yaml:"reverse_bytes"`
	// Separator goes between facility code and card number (Wiegand26
	// only); zero means none.
	Separator string `yaml:"separator"`
	// Lower writes Hex digits in lower case.
	Lower bool `yaml:"lower"`
}

// Validate reports a Format that cannot be applied.
func (f Format) Validate() error {
	switch f.Style {
	case "", Decimal, Hex, Wiegand26, Text:
	default:
		return fmt.Errorf("card format: unknown style %q (want dec, hex, w26 or text)", f.Style)
	}
	if f.Width < 0 || f.Width > 64 {
		return fmt.Errorf("card format: width %d out of range 0..64", f.Width)
	}
	if f.Bytes < 0 || f.Bytes > 32 {
		return fmt.Errorf("card format: bytes %d out of range 0..32", f.Bytes)
	}
	if (f.Style == "" || f.Style == Decimal) && f.Bytes > 8 {
		return fmt.Errorf("card format: decimal of %d bytes exceeds 64 bits", f.Bytes)
	}
	if len(f.Separator) > 8 {
		return fmt.Errorf("card format: separator %q longer than 8 bytes", f.Separator)
	}
	return nil
}

// Apply formats r. It never fails for a Format that passed Validate; an
// invalid Format gives Validate's error.
func (f Format) Apply(r Read) (string, error) {
	if err := f.Validate(); err != nil {
		return "", err
	}
	uid := r.UID
	if f.ReverseBytes {
		uid = make([]byte, len(r.UID))
		for i, b := range r.UID {
			uid[len(uid)-1-i] = b
		}
	}
	switch f.Style {
	case Text:
		if r.Text != "" {
			return pad(r.Text, f.Width), nil
		}
		fallthrough
	case Hex:
		low := lowBytes(uid, f.Bytes, len(uid))
		hexDigits := "0123456789ABCDEF"
		if f.Lower {
			hexDigits = "0123456789abcdef"
		}
		var sb strings.Builder
		for _, b := range low {
			sb.WriteByte(hexDigits[b>>4])
			sb.WriteByte(hexDigits[b&0x0F])
		}
		return pad(sb.String(), f.Width), nil
	case Wiegand26:
		low := lowBytes(uid, f.Bytes, 3)
		v := beUint(low)
		return fmt.Sprintf("%03d%s%05d", (v>>16)&0xFF, f.Separator, v&0xFFFF), nil
	default: // Decimal
		low := lowBytes(uid, f.Bytes, 4)
		width := f.Width
		if width == 0 {
			width = 10
		}
		return pad(strconv.FormatUint(beUint(low), 10), width), nil
	}
}

// lowBytes returns the last n bytes of uid (def when n is 0), left padded
// with zero bytes when uid is shorter.
func lowBytes(uid []byte, n, def int) []byte {
	if n == 0 {
		n = def
	}
	if len(uid) >= n {
		return uid[len(uid)-n:]
	}
	out := make([]byte, n)
	copy(out[n-len(uid):], uid)
	return out
}

func beUint(b []byte) uint64 {
	var v uint64
	for _, x := range b {
		v = v<<8 | uint64(x)
	}
	return v
}

func pad(s string, width int) string {
	if len(s) >= width {
		return s
	}
	return strings.Repeat("0", width-len(s)) + s
}

package protocol

import (
	"os"
	"strconv"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// fastDecode parses the clean, common form of a message (what this
// package and careful peers write) without reflection. It gives up
// (ok false) on anything it does not handle exactly as the encoding/json
// path of Decode would: escapes or non-ASCII in keys, repeated
// known keys, numbers that are not plain integers, values of another type
// than expected, device_status, invalid JSON. Decode then takes the
// encoding/json path, which also words the errors. FuzzDecode checks that
// both paths agree wherever this one answers.
func fastDecode(b []byte) (m *Message, ok bool) {
	return fastDecodeWith(&fastParser{cursor: cursor{b: b}})
}

// fastDecodeWith is fastDecode with a parser that may carry spooled blob
// data (see Spool.Decode).
func fastDecodeWith(p *fastParser) (m *Message, ok bool) {
	m = &Message{}
	if !p.object(func(key []byte) bool { return p.topField(m, key) }) {
		return nil, false
	}
	p.ws()
	if p.i != len(p.b) {
		return nil, false
	}
	switch {
	case p.codeSet:
		m.HasCode = true
	case p.retSet:
		m.HasCode, m.Code = true, p.ret
	}
	if !p.messageSet && p.msgSet {
		m.Text = p.msg
	}
	return m, true
}

type fastParser struct {
	cursor
	depth int

	// spooled holds the files of the blob data a Reader spooled, by
	// placeholder; a blob takes its own out (see Spool.Decode).
	spooled map[string]*os.File

	unk   [][]byte // unknown keys of the objects being parsed
	ubase int      // where the innermost object's start in unk

	seen               uint64 // known top-level keys met, by bit
	codeSet, retSet    bool
	messageSet, msgSet bool
	ret                int
	msg                string
}

// cursor is a place in JSON text, as the fast decoder and the strict
// checker walk it.
type cursor struct {
	b []byte
	i int
}

// ws skips white space.
func (c *cursor) ws() {
	for c.i < len(c.b) {
		switch c.b[c.i] {
		case ' ', '\t', '\n', '\r':
			c.i++
		default:
			return
		}
	}
}

// next skips white space and what ends a member of an object or an
// element of a list: a comma (more) or end ('}' or ']'). ok is false
// for anything else.
func (c *cursor) next(end byte) (more, ok bool) {
	c.ws()
	if c.i >= len(c.b) {
		return false, false
	}
	switch c.b[c.i] {
	case ',':
		c.i++
		return true, true
	case end:
		c.i++
		return false, true
	}
	return false, false
}

// object parses {"key": value, ...}, calling field for each key with the
// parser before the value (after the colon). field parses the value.
func (p *fastParser) object(field func(key []byte) bool) bool {
	base, saved := len(p.unk), p.ubase
	p.ubase = base
	ok := p.members(field)
	p.unk, p.ubase = p.unk[:base], saved
	return ok
}

// unknown skips the value of a key the message does not use; a key met
// twice in one object gives up (Decode refuses it).
func (p *fastParser) unknown(key []byte) bool {
	for _, k := range p.unk[p.ubase:] {
		if foldEqual(k, key) {
			return false
		}
	}
	p.unk = append(p.unk, key)
	return p.skip()
}

func (p *fastParser) members(field func(key []byte) bool) bool {
	p.ws()
	if p.i >= len(p.b) || p.b[p.i] != '{' {
		return false
	}
	p.i++
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == '}' {
		p.i++
		return true
	}
	for {
		p.ws()
		key, ok := p.rawString()
		if !ok {
			return false
		}
		for _, c := range key {
			if c >= utf8.RuneSelf {
				return false
			}
		}
		p.ws()
		if p.i >= len(p.b) || p.b[p.i] != ':' {
			return false
		}
		p.i++
		p.ws()
		if !field(key) {
			return false
		}
		if more, ok := p.next('}'); !more {
			return ok
		}
	}
}

// rawString parses a string without escapes (a key) and returns its
// bytes, which alias the input.
func (p *fastParser) rawString() ([]byte, bool) {
	if p.i >= len(p.b) || p.b[p.i] != '"' {
		return nil, false
	}
	start := p.i + 1
	ascii := true
	for j := start; j < len(p.b); j++ {
		c := p.b[j]
		switch {
		case c == '"':
			s := p.b[start:j]
			if !ascii && !utf8.Valid(s) {
				return nil, false
			}
			p.i = j + 1
			return s, true
		case c == '\\' || c < 0x20:
			return nil, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return nil, false
}

// stringValue parses a string value, escapes and all, unquoted as
// encoding/json unquotes it. It gives up on what Decode refuses (invalid
// UTF-8, a lone surrogate, NUL) so that the strict path words the error.
// The bytes alias the input when nothing needed changing.
func (p *fastParser) stringValue() ([]byte, bool) {
	if p.i >= len(p.b) || p.b[p.i] != '"' {
		return nil, false
	}
	start := p.i + 1
	escaped, ascii := false, true
	for j := start; j < len(p.b); j++ {
		switch c := p.b[j]; {
		case c == '"':
			s := p.b[start:j]
			p.i = j + 1
			if !ascii && !utf8.Valid(s) {
				return nil, false
			}
			if !escaped {
				return s, true
			}
			return unquote(s)
		case c == '\\':
			escaped = true
			j++
		case c < 0x20:
			return nil, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return nil, false
}

// unquote resolves the escapes of a string's contents (valid UTF-8) as
// encoding/json does; ok is false where encoding/json would report a
// syntax error and where Decode refuses: a lone surrogate, NUL.
func unquote(s []byte) ([]byte, bool) {
	out := make([]byte, 0, len(s)+utf8.UTFMax)
	for r := 0; r < len(s); {
		c := s[r]
		switch {
		case c == '\\':
			if r+1 >= len(s) {
				return nil, false
			}
			switch e := s[r+1]; e {
			case '"', '\\', '/':
				out = append(out, e)
				r += 2
			case 'b':
				out = append(out, '\b')
				r += 2
			case 'f':
				out = append(out, '\f')
				r += 2
			case 'n':
				out = append(out, '\n')
				r += 2
			case 'r':
				out = append(out, '\r')
				r += 2
			case 't':
				out = append(out, '\t')
				r += 2
			case 'u':
				rr := getu4(s[r:])
				if rr <= 0 {
					return nil, false
				}
				r += 6
				if utf16.IsSurrogate(rr) {
					dec := utf16.DecodeRune(rr, getu4(s[r:]))
					if dec == unicode.ReplacementChar {
						return nil, false
					}
					out = utf8.AppendRune(out, dec)
					r += 6
					break
				}
				out = utf8.AppendRune(out, rr)
			default:
				return nil, false
			}
		case c < 0x20:
			return nil, false
		case c < utf8.RuneSelf:
			out = append(out, c)
			r++
		default:
			rr, size := utf8.DecodeRune(s[r:])
			out = utf8.AppendRune(out, rr)
			r += size
		}
	}
	return out, true
}

// getu4 decodes \uXXXX at the start of s, or returns -1.
func getu4(s []byte) rune {
	if len(s) < 6 || s[0] != '\\' || s[1] != 'u' {
		return -1
	}
	var r rune
	for _, c := range s[2:6] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	return r
}

func (p *fastParser) isNull() bool {
	if len(p.b)-p.i >= 4 && string(p.b[p.i:p.i+4]) == "null" {
		p.i += 4
		return true
	}
	return false
}

// str parses a string value; null leaves dst alone. set reports that a
// string (not null) was there.
func (p *fastParser) str(dst *string) (ok, set bool) {
	if p.isNull() {
		return true, false
	}
	s, ok := p.stringValue()
	if !ok {
		return false, false
	}
	*dst = string(s)
	return true, true
}

// integer parses a JSON integer that fits an int; null leaves dst alone.
func (p *fastParser) integer(dst *int) (ok, set bool) {
	if p.isNull() {
		return true, false
	}
	start := p.i
	if p.i < len(p.b) && p.b[p.i] == '-' {
		p.i++
	}
	digits := p.i
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		p.i++
	}
	n := p.i - digits
	if n == 0 || (n > 1 && p.b[digits] == '0') || n > 18 {
		return false, false
	}
	if p.i < len(p.b) {
		switch p.b[p.i] {
		case '.', 'e', 'E':
			return false, false
		}
	}
	v, err := strconv.ParseInt(string(p.b[start:p.i]), 10, strconv.IntSize)
	if err != nil {
		return false, false
	}
	*dst = int(v)
	return true, true
}

func (p *fastParser) strField(dst *string) bool {
	ok, _ := p.str(dst)
	return ok
}

func (p *fastParser) intField(dst *int) bool {
	ok, _ := p.integer(dst)
	return ok
}

// once records a known top-level key; a repeated one gives up (encoding/json
// merges repeated objects in ways not worth copying).
func (p *fastParser) once(bit uint) bool {
	if p.seen&(1<<bit) != 0 {
		return false
	}
	p.seen |= 1 << bit
	return true
}

func (p *fastParser) topField(m *Message, key []byte) bool {
	var ok bool
	switch {
	case fold(key, "mod"):
		return p.once(0) && p.strField(&m.Mod)
	case fold(key, "session_id"):
		return p.once(1) && p.strField(&m.SessionID)
	case fold(key, "type"):
		return p.once(2) && p.intField(&m.Type)
	case fold(key, "code"):
		ok, p.codeSet = p.integer(&m.Code)
		return p.once(3) && ok
	case fold(key, "ret"):
		ok, p.retSet = p.integer(&p.ret)
		return p.once(4) && ok
	case fold(key, "message"):
		ok, p.messageSet = p.str(&m.Text)
		return p.once(5) && ok
	case fold(key, "msg"):
		ok, p.msgSet = p.str(&p.msg)
		return p.once(6) && ok
	case fold(key, "command_type"):
		return p.once(7) && p.intField(&m.CommandType)
	case fold(key, "command_value"):
		return p.once(8) && p.strField(&m.CommandValue)
	case fold(key, "person_id"):
		return p.once(9) && p.strField(&m.PersonID)
	case fold(key, "time"):
		return p.once(10) && p.strField(&m.Time)
	case fold(key, "person_ids"):
		return p.once(11) && p.stringList(&m.PersonIDs)
	case fold(key, "device_info"):
		return p.once(12) && decodeObject(p, &m.DeviceInfo, deviceMembers)
	case fold(key, "person_info"):
		return p.once(13) && decodeObject(p, &m.PersonInfo, personMembers)
	case fold(key, "access_info"):
		return p.once(14) && decodeObject(p, &m.AccessInfo, accessMembers)
	case fold(key, "device_status"):
		return false
	}
	return p.unknown(key)
}

// stringList parses an array of strings; null and [] leave dst nil.
func (p *fastParser) stringList(dst *[]string) bool {
	if p.isNull() {
		return true
	}
	if p.i >= len(p.b) || p.b[p.i] != '[' {
		return false
	}
	p.i++
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == ']' {
		p.i++
		return true
	}
	var out []string
	for {
		p.ws()
		s, ok := p.stringValue()
		if !ok {
			return false
		}
		out = append(out, string(s))
		if more, ok := p.next(']'); !more {
			*dst = out
			return ok
		}
	}
}

// fields tracks repeated keys inside one nested object.
type fields uint32

func (f *fields) once(bit uint) bool {
	if *f&(1<<bit) != 0 {
		return false
	}
	*f |= 1 << bit
	return true
}

// skip parses and discards any JSON value, strictly; strings with escapes
// and deep nesting give up.
func (p *fastParser) skip() bool {
	if p.i >= len(p.b) {
		return false
	}
	switch c := p.b[p.i]; {
	case c == '"':
		_, ok := p.stringValue()
		return ok
	case c == '{':
		if p.depth++; p.depth > 32 {
			return false
		}
		ok := p.object(p.unknown)
		p.depth--
		return ok
	case c == '[':
		if p.depth++; p.depth > 32 {
			return false
		}
		p.i++
		p.ws()
		if p.i < len(p.b) && p.b[p.i] == ']' {
			p.i++
			p.depth--
			return true
		}
		for {
			p.ws()
			if !p.skip() {
				return false
			}
			if more, ok := p.next(']'); !more {
				p.depth--
				return ok
			}
		}
	case c == 't':
		return p.literal("true")
	case c == 'f':
		return p.literal("false")
	case c == 'n':
		return p.literal("null")
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	}
	return false
}

func (p *fastParser) literal(s string) bool {
	if len(p.b)-p.i >= len(s) && string(p.b[p.i:p.i+len(s)]) == s {
		p.i += len(s)
		return true
	}
	return false
}

// number parses a JSON number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (p *fastParser) number() bool {
	if p.b[p.i] == '-' {
		p.i++
	}
	digits := func() int {
		start := p.i
		for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
			p.i++
		}
		return p.i - start
	}
	start := p.i
	n := digits()
	if n == 0 || (n > 1 && p.b[start] == '0') {
		return false
	}
	if p.i < len(p.b) && p.b[p.i] == '.' {
		p.i++
		if digits() == 0 {
			return false
		}
	}
	if p.i < len(p.b) && (p.b[p.i] == 'e' || p.b[p.i] == 'E') {
		p.i++
		if p.i < len(p.b) && (p.b[p.i] == '+' || p.b[p.i] == '-') {
			p.i++
		}
		if digits() == 0 {
			return false
		}
	}
	return true
}

// foldEqual reports whether two ASCII keys are equal ignoring case.
func foldEqual(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i, c := range a {
		d := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if 'A' <= d && d <= 'Z' {
			d += 'a' - 'A'
		}
		if c != d {
			return false
		}
	}
	return true
}

// fold reports whether key equals name, ASCII case-insensitively, as
// encoding/json matches keys (keys here are ASCII; name is lower case).
func fold(key []byte, name string) bool {
	if len(key) != len(name) {
		return false
	}
	for i, c := range key {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != name[i] {
			return false
		}
	}
	return true
}

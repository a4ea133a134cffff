package protocol

import (
	"fmt"
	"strconv"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// checkStrict finds what PROTOCOL.md ("Envelope") refuses in a message
// that encoding/json would take: a key twice in one object (keys match as
// encoding/json matches them, case-insensitively), text that is not valid
// UTF-8, a lone UTF-16 surrogate escape, a NUL character. The error wraps
// ErrMalformed and names the field. It returns nil for anything else,
// syntax errors included: encoding/json reports those.
func checkStrict(b []byte) error {
	c := strictChecker{cursor: cursor{b: b}}
	c.ws()
	if err := c.value(""); err != nil && err != errSyntax {
		return err
	}
	return nil
}

// errSyntax stops the walk at invalid JSON; checkStrict leaves the words
// to encoding/json.
var errSyntax = fmt.Errorf("%w: syntax", ErrMalformed)

// strictMaxDepth bounds the walk's recursion as encoding/json bounds its
// own.
const strictMaxDepth = 10000

type strictChecker struct {
	cursor
	depth int
}

func (c *strictChecker) value(path string) error {
	if c.i >= len(c.b) {
		return errSyntax
	}
	switch ch := c.b[c.i]; {
	case ch == '{':
		return c.object(path)
	case ch == '[':
		return c.list(path)
	case ch == '"':
		_, err := c.str(path)
		return err
	default:
		// Numbers and literals: only their extent matters here.
		for c.i < len(c.b) {
			switch c.b[c.i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return nil
			}
			c.i++
		}
		return nil
	}
}

func (c *strictChecker) enter() error {
	if c.depth++; c.depth > strictMaxDepth {
		return errSyntax
	}
	return nil
}

func (c *strictChecker) object(path string) error {
	if err := c.enter(); err != nil {
		return err
	}
	defer func() { c.depth-- }()
	c.i++ // '{'
	var keys []string
	for {
		c.ws()
		if c.i >= len(c.b) {
			return errSyntax
		}
		if c.b[c.i] == '}' && len(keys) == 0 {
			c.i++
			return nil
		}
		if c.b[c.i] != '"' {
			return errSyntax
		}
		key, err := c.str(join(path, "(a key)"))
		if err != nil {
			return err
		}
		name := join(path, key)
		folded := foldKey(key)
		for _, k := range keys {
			if k == folded {
				return fmt.Errorf("%w: %s: the key appears twice", ErrMalformed, name)
			}
		}
		keys = append(keys, folded)
		c.ws()
		if c.i >= len(c.b) || c.b[c.i] != ':' {
			return errSyntax
		}
		c.i++
		c.ws()
		if err := c.value(name); err != nil {
			return err
		}
		if more, err := c.after('}'); !more {
			return err
		}
	}
}

func (c *strictChecker) list(path string) error {
	if err := c.enter(); err != nil {
		return err
	}
	defer func() { c.depth-- }()
	c.i++ // '['
	c.ws()
	if c.i < len(c.b) && c.b[c.i] == ']' {
		c.i++
		return nil
	}
	for n := 0; ; n++ {
		c.ws()
		if err := c.value(path + "[" + strconv.Itoa(n) + "]"); err != nil {
			return err
		}
		if more, err := c.after(']'); !more {
			return err
		}
	}
}

// str checks the string at c.i and returns its contents (escapes
// resolved; only keys need them).
func (c *strictChecker) str(path string) (string, error) {
	c.i++ // '"'
	start := c.i
	var out []byte
	escaped := false
	for c.i < len(c.b) {
		ch := c.b[c.i]
		switch {
		case ch == '"':
			s := c.b[start:c.i]
			c.i++
			if !escaped {
				return string(s), nil
			}
			return string(out), nil
		case ch == '\\':
			if !escaped {
				escaped = true
				out = append(out, c.b[start:c.i]...)
			}
			if c.i+1 >= len(c.b) {
				return "", errSyntax
			}
			if c.b[c.i+1] != 'u' {
				e := c.b[c.i+1]
				switch e {
				case 'b':
					e = '\b'
				case 'f':
					e = '\f'
				case 'n':
					e = '\n'
				case 'r':
					e = '\r'
				case 't':
					e = '\t'
				}
				out = append(out, e)
				c.i += 2
				continue
			}
			r := getu4(c.b[c.i:])
			if r < 0 {
				return "", errSyntax
			}
			c.i += 6
			switch {
			case r == 0:
				return "", fmt.Errorf("%w: %s: contains a NUL character", ErrMalformed, path)
			case utf16.IsSurrogate(r):
				r2 := getu4(c.b[c.i:])
				dec := utf16.DecodeRune(r, r2)
				if r2 < 0 || dec == unicode.ReplacementChar {
					return "", fmt.Errorf("%w: %s: lone UTF-16 surrogate \\u%04x", ErrMalformed, path, r)
				}
				c.i += 6
				r = dec
			}
			out = utf8.AppendRune(out, r)
		case ch < 0x20:
			return "", errSyntax
		case ch < utf8.RuneSelf:
			if escaped {
				out = append(out, ch)
			}
			c.i++
		default:
			r, size := utf8.DecodeRune(c.b[c.i:])
			if r == utf8.RuneError && size == 1 {
				return "", fmt.Errorf("%w: %s: invalid UTF-8", ErrMalformed, path)
			}
			if escaped {
				out = append(out, c.b[c.i:c.i+size]...)
			}
			c.i += size
		}
	}
	return "", errSyntax
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// foldKey folds a key as encoding/json matches keys: each rune to the
// smallest of its case-folding orbit ("mod", "MOD" and "ſ"-spellings of
// "s" are one key).
func foldKey(key string) string {
	ascii := true
	for i := 0; i < len(key); i++ {
		if key[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		b := []byte(key)
		for i, ch := range b {
			if 'a' <= ch && ch <= 'z' {
				b[i] = ch - 'a' + 'A'
			}
		}
		return string(b)
	}
	out := make([]rune, 0, len(key))
	for _, r := range key {
		m := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			m = min(m, f)
		}
		out = append(out, m)
	}
	return string(out)
}

// after is cursor.next with errSyntax where no comma or end follows.
func (c *strictChecker) after(end byte) (more bool, err error) {
	more, ok := c.next(end)
	if !ok {
		return false, errSyntax
	}
	return more, nil
}

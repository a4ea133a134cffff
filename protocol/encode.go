package protocol

import (
	"bytes"
	"encoding/base64"
	"io"
	"strconv"
	"unicode/utf8"
)

// appendMessage appends m's wire form and "\n" to b: the documented
// names in a fixed order, zero-valued optional parts left out. It writes
// what encoding/json would write for the same fields (reference_test.go
// holds the two together), without reflection.
func appendMessage(b []byte, m *Message) []byte {
	b = append(b, `{"mod":`...)
	b = appendString(b, m.Mod)
	b = append(b, `,"session_id":`...)
	b = appendString(b, m.SessionID)
	if m.Type != 0 {
		b = appendInt(b, `,"type":`, m.Type)
	}
	if m.HasCode {
		b = appendInt(b, `,"code":`, m.Code)
		b = append(b, `,"message":`...)
		b = appendString(b, m.Text)
	}
	if d := m.DeviceInfo; d != nil {
		b = append(b, `,"device_info":`...)
		b = append(appendMembers(b, d, deviceMembers, d.Fields, false), '}')
	}
	if p := m.PersonInfo; p != nil {
		b = append(b, `,"person_info":`...)
		b = append(appendMembers(b, p, personMembers, 0, false), '}')
	}
	if a := m.AccessInfo; a != nil {
		b = append(b, `,"access_info":`...)
		b = append(appendMembers(b, a, accessMembers, 0, false), '}')
	}
	if writeCommand(m) {
		b = appendInt(b, `,"command_type":`, m.CommandType)
		b = append(b, `,"command_value":`...)
		b = appendString(b, m.CommandValue)
	}
	if len(m.PersonIDs) > 0 {
		b = append(b, `,"person_ids":[`...)
		for i, id := range m.PersonIDs {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, id)
		}
		b = append(b, ']')
	}
	if m.PersonID != "" {
		b = append(b, `,"person_id":`...)
		b = appendString(b, m.PersonID)
	}
	if m.Time != "" {
		b = append(b, `,"time":`...)
		b = appendString(b, m.Time)
	}
	if s := m.DeviceStatus; s != nil {
		b = appendDeviceStatus(b, s)
	}
	return append(b, '}', '\n')
}

// writeCommand reports whether command_type and command_value are written:
// for a command request always, otherwise when either is set.
func writeCommand(m *Message) bool {
	set := m.CommandType != 0 || m.CommandValue != ""
	command := m.Mod == ModSendUserCommand || m.Mod == ModSendDeviceCommand
	return set || (command && !m.HasCode)
}

// appendBlob writes an image (with its size and format) or a template
// (length and data only).
func appendBlob(b []byte, v *Biometric, image bool) []byte {
	b = appendMembers(b, v, biometricMembers, 0, image)
	b = append(b, `,"data":"`...)
	if v.spool != nil {
		// A received blob sent on: decoded and encoded again a piece at a
		// time (once its Message is closed, nothing is left to write).
		buf := bytes.NewBuffer(b)
		enc := base64.NewEncoder(base64.StdEncoding, buf)
		io.Copy(enc, v.Open())
		enc.Close()
		return append(buf.Bytes(), '"', '}')
	}
	b = base64.StdEncoding.AppendEncode(b, v.Data)
	return append(b, '"', '}')
}

func appendDeviceStatus(b []byte, s *DeviceStatus) []byte {
	b = append(b, `,"device_status":{"link":`...)
	b = appendString(b, s.Link)
	b = appendInt(b, `,"outbox_depth":`, s.OutboxDepth)
	b = append(b, `,"oldest_unsent":`...)
	b = appendString(b, s.OldestUnsent)
	b = appendInt(b, `,"persons_enrolled":`, s.PersonsEnrolled)
	b = append(b, `,"modules":[`...)
	for i, mod := range s.Modules {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"name":`...)
		b = appendString(b, mod.Name)
		b = append(b, `,"state":`...)
		b = appendString(b, mod.State)
		if mod.Detail != "" {
			b = append(b, `,"detail":`...)
			b = appendString(b, mod.Detail)
		}
		b = append(b, '}')
	}
	b = append(b, `],"door":`...)
	b = appendString(b, s.Door)
	b = append(b, `,"software_version":`...)
	b = appendString(b, s.SoftwareVersion)
	b = append(b, `,"uptime_seconds":`...)
	b = strconv.AppendInt(b, s.UptimeSeconds, 10)
	return append(b, '}')
}

func appendInt(b []byte, key string, v int) []byte {
	b = append(b, key...)
	return strconv.AppendInt(b, int64(v), 10)
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string escaped as encoding/json does
// with HTML escaping off: quote, backslash and control characters escaped,
// invalid UTF-8 replaced by U+FFFD, U+2028 and U+2029 escaped.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

package fingerprint

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// Packet identifiers (the PID byte).
const (
	PIDCommand byte = 0x01 // command, host to module
	PIDData    byte = 0x02 // data packet, more follow
	PIDAck     byte = 0x07 // acknowledge, module to host
	PIDEnd     byte = 0x08 // last data packet
)

// Instruction codes the driver and the simulator use (reference §4).
const (
	CmdGenImg         byte = 0x01
	CmdImg2Tz         byte = 0x02
	CmdMatch          byte = 0x03
	CmdSearch         byte = 0x04
	CmdRegModel       byte = 0x05
	CmdStore          byte = 0x06
	CmdLoadChar       byte = 0x07
	CmdUpChar         byte = 0x08
	CmdDownChar       byte = 0x09
	CmdDeleteChar     byte = 0x0C
	CmdEmpty          byte = 0x0D
	CmdSetSysPara     byte = 0x0E
	CmdReadSysPara    byte = 0x0F
	CmdVfyPwd         byte = 0x13
	CmdHiSpeedSearch  byte = 0x1B
	CmdTempleteNum    byte = 0x1D
	CmdReadIndexTable byte = 0x1F
	CmdHandShake      byte = 0x40
)

// Wire limits.
const (
	// DefaultAddress is the module address every module ships with.
	DefaultAddress uint32 = 0xFFFFFFFF
	// MaxContent is the largest content (instruction or confirmation plus
	// parameters, or data) one packet carries, in bytes.
	MaxContent = 256
	// HeaderLen is the bytes before the content: sync word (2), address
	// (4), PID (1), length (2).
	HeaderLen = 9
	// MaxPacketLen is the longest packet on the wire, in bytes.
	MaxPacketLen = HeaderLen + MaxContent + 2
)

const (
	sync0 = 0xEF
	sync1 = 0x01
)

// Errors of the codec. Parse and Decoder.Next return them; the driver
// wraps them with the port and the command.
var (
	// ErrIncomplete means the bytes end inside a packet: read more.
	ErrIncomplete = errors.New("fingerprint: incomplete packet")
	// ErrChecksum means a packet's checksum did not match its bytes.
	ErrChecksum = errors.New("fingerprint: bad packet checksum")
	// ErrLength means a packet header announced an impossible length.
	ErrLength = errors.New("fingerprint: bad packet length")
	// ErrPID means a packet header carried an unknown packet identifier.
	ErrPID = errors.New("fingerprint: unknown packet identifier")
	// ErrTooLong means content beyond MaxContent bytes was to be encoded.
	ErrTooLong = errors.New("fingerprint: packet content too long")
)

// Packet is one 0xEF01 packet: header, address, PID, length, content and
// checksum on the wire. Content is the instruction and its parameters
// (command), the confirmation code and return values (ACK), or raw data.
type Packet struct {
	// Address is the module address; DefaultAddress unless changed.
	Address uint32
	// PID is one of PIDCommand, PIDData, PIDAck, PIDEnd.
	PID byte
	// Content is 1..MaxContent bytes.
	Content []byte
}

// Command returns a command packet for addr with the instruction code and
// its parameters.
func Command(addr uint32, instr byte, params ...byte) Packet {
	return Packet{Address: addr, PID: PIDCommand, Content: append([]byte{instr}, params...)}
}

// Checksum is the packet checksum: the sum of PID, both length bytes and
// every content byte, modulo 0x10000.
func Checksum(pid byte, content []byte) uint16 {
	n := len(content) + 2
	sum := uint32(pid) + uint32(n>>8&0xFF) + uint32(n&0xFF)
	for _, c := range content {
		sum += uint32(c)
	}
	return uint16(sum)
}

// Append appends the packet's wire bytes to b. It fails with ErrTooLong
// or ErrLength (empty content) and ErrPID for an unknown PID.
func (p Packet) Append(b []byte) ([]byte, error) {
	switch {
	case len(p.Content) == 0:
		return b, fmt.Errorf("encode packet: empty content: %w", ErrLength)
	case len(p.Content) > MaxContent:
		return b, fmt.Errorf("encode packet: %d content bytes: %w", len(p.Content), ErrTooLong)
	case !validPID(p.PID):
		return b, fmt.Errorf("encode packet: PID 0x%02X: %w", p.PID, ErrPID)
	}
	b = append(b, sync0, sync1)
	b = binary.BigEndian.AppendUint32(b, p.Address)
	b = append(b, p.PID)
	b = binary.BigEndian.AppendUint16(b, uint16(len(p.Content)+2))
	b = append(b, p.Content...)
	return binary.BigEndian.AppendUint16(b, Checksum(p.PID, p.Content)), nil
}

// MarshalBinary returns the packet's wire bytes.
func (p Packet) MarshalBinary() ([]byte, error) {
	return p.Append(make([]byte, 0, HeaderLen+len(p.Content)+2))
}

func validPID(pid byte) bool {
	return pid == PIDCommand || pid == PIDData || pid == PIDAck || pid == PIDEnd
}

// Parse decodes the first packet in b, skipping any stray bytes before its
// sync word. It returns the packet, the number of bytes of b consumed
// (stray bytes included) and:
//
//   - nil: a valid packet; its Content aliases b.
//   - ErrIncomplete: b ends inside a packet or holds no sync word; the n
//     consumed bytes are stray and may be dropped, the rest must be kept
//     and more bytes appended.
//   - ErrChecksum, ErrLength or ErrPID (wrapped): a corrupt packet; n
//     covers the stray bytes and the corrupt header's first byte, so
//     parsing b[n:] resynchronises on the next sync word.
//
// Parse never reads beyond b and never panics.
func Parse(b []byte) (Packet, int, error) {
	start := 0
	for {
		i := indexSync(b[start:])
		if i < 0 {
			// Keep a trailing 0xEF: it may be the first half of a sync word.
			n := len(b)
			if n > start && b[n-1] == sync0 {
				n--
			}
			return Packet{}, n, ErrIncomplete
		}
		start += i
		rest := b[start:]
		if len(rest) < HeaderLen {
			return Packet{}, start, ErrIncomplete
		}
		pid := rest[6]
		length := int(binary.BigEndian.Uint16(rest[7:9]))
		if !validPID(pid) {
			return Packet{}, start + 1, fmt.Errorf("packet at byte %d: PID 0x%02X: %w", start, pid, ErrPID)
		}
		if length < 3 || length > MaxContent+2 {
			return Packet{}, start + 1, fmt.Errorf("packet at byte %d: length %d: %w", start, length, ErrLength)
		}
		if len(rest) < HeaderLen+length {
			return Packet{}, start, ErrIncomplete
		}
		content := rest[HeaderLen : HeaderLen+length-2]
		got := binary.BigEndian.Uint16(rest[HeaderLen+length-2:])
		if want := Checksum(pid, content); got != want {
			return Packet{}, start + 1, fmt.Errorf("packet at byte %d: checksum 0x%04X, want 0x%04X: %w", start, got, want, ErrChecksum)
		}
		return Packet{
			Address: binary.BigEndian.Uint32(rest[2:6]),
			PID:     pid,
			Content: content,
		}, start + HeaderLen + length, nil
	}
}

// indexSync returns the index of the first EF 01 in b, or -1.
func indexSync(b []byte) int {
	return bytes.Index(b, syncWord)
}

var syncWord = []byte{sync0, sync1}

// Decoder reassembles packets from the bytes of a serial stream, which
// arrive in arbitrary pieces with stray bytes and corrupt packets among
// them. It holds at most 2*MaxPacketLen bytes. It is pure (no I/O, no
// goroutines) and not safe for concurrent use.
type Decoder struct {
	buf []byte
}

// Write appends received bytes; it never fails. When more than the bound
// is pending, the oldest bytes are dropped (they cannot start a packet
// that fits).
func (d *Decoder) Write(p []byte) (int, error) {
	d.buf = append(d.buf, p...)
	if over := len(d.buf) - 2*MaxPacketLen; over > 0 {
		d.buf = append(d.buf[:0], d.buf[over:]...)
	}
	return len(p), nil
}

// Next returns the next complete packet, ErrIncomplete when more bytes
// are needed, or a wrapped ErrChecksum/ErrLength/ErrPID after dropping a
// corrupt packet's first byte (call Next again to resynchronise). The
// returned Content is a copy the caller owns.
func (d *Decoder) Next() (Packet, error) {
	p, n, err := Parse(d.buf)
	if err == nil {
		p.Content = append([]byte(nil), p.Content...)
	}
	d.buf = append(d.buf[:0], d.buf[n:]...)
	return p, err
}

// Resync gives up on the packet whose start is pending: it drops the
// first pending byte so the next Next looks for a later sync word. Use it
// when no byte has arrived for a while (a stray EF 01 announced a length
// the stream never fills).
func (d *Decoder) Resync() {
	if len(d.buf) > 0 {
		d.buf = append(d.buf[:0], d.buf[1:]...)
	}
}

// Buffered returns the number of bytes waiting for the rest of a packet.
func (d *Decoder) Buffered() int { return len(d.buf) }

// Reset drops every pending byte.
func (d *Decoder) Reset() { d.buf = d.buf[:0] }

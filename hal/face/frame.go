package face

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"termagent/hal"
)

// Message ids (esphome's hlk_fm22x component and the L015 document). Host-to-module commands,
// then the three module-to-host kinds.
const (
	MsgReply        byte = 0x00 // module → host: Data = cmd, result, payload
	MsgNote         byte = 0x01 // module → host: Data = note id, payload
	MsgImage        byte = 0x02 // module → host: image data
	MsgReset        byte = 0x10
	MsgGetStatus    byte = 0x11
	MsgVerify       byte = 0x12
	MsgEnroll       byte = 0x13
	MsgEnrollSingle byte = 0x1D
	MsgDelUser      byte = 0x20
	MsgDelAll       byte = 0x21
	MsgGetUserInfo  byte = 0x22
	MsgGetAllUserID byte = 0x24
	MsgGetVersion   byte = 0x30
	// MsgEnrollWithPhoto is the photo-enrol message id seen in FM22x host
	// code; firmware builds differ (0x1E is also seen), so the driver takes
	// the id from its configuration.
	MsgEnrollWithPhoto byte = 0xF7
)

// Note ids: the first Data byte of a MsgNote frame.
const (
	NoteReady        byte = 0x00 // sent after boot and after a reset
	NoteFaceState    byte = 0x01 // face position while verifying or enrolling
	NoteUnknownError byte = 0x02
)

// Result codes: the second Data byte of a MsgReply frame.
const (
	ResultSuccess      byte = 0x00
	ResultRejected     byte = 0x01 // face not known
	ResultAborted      byte = 0x02
	ResultCamera       byte = 0x04
	ResultUnknown      byte = 0x05
	ResultInvalidParam byte = 0x06
	ResultNoMemory     byte = 0x07
	ResultUnknownUser  byte = 0x08
	ResultMaxUser      byte = 0x09
	ResultFaceEnrolled byte = 0x0A
	ResultLiveness     byte = 0x0C
	ResultTimeout      byte = 0x0D
	ResultAuthFailed   byte = 0x0E
	ResultPhotoLarge   byte = 0x18
	ResultPhotoSmall   byte = 0x19
)

// Wire limits.
const (
	// HeaderLen is the sync word (2), message id (1) and size (2).
	HeaderLen = 5
	// MaxData bounds a frame's Data; larger sizes are treated as corrupt.
	MaxData = 4096
)

const (
	sync0 = 0xEF
	sync1 = 0xAA
)

var syncWord = []byte{sync0, sync1}

// Errors of this package.
var (
	// ErrIncomplete means the bytes end inside a frame: read more.
	ErrIncomplete = errors.New("face: incomplete frame")
	// ErrParity means a frame's XOR parity did not match its bytes.
	ErrParity = errors.New("face: bad frame parity")
	// ErrSize means a frame announced more than MaxData bytes, or a frame
	// to encode is that large.
	ErrSize = errors.New("face: bad frame size")
	// ErrShortReply means a reply or note carried too few bytes for its kind.
	ErrShortReply = errors.New("face: reply too short")
	// ErrReset means the module sent NOTE READY (it rebooted or was reset)
	// while a command was pending: the command was not carried out.
	ErrReset = errors.New("face: module reset during command")
)

// Frame is one EF AA frame: sync word, message id, big-endian size, data,
// XOR parity.
type Frame struct {
	// MsgID is the command (host to module) or MsgReply, MsgNote, MsgImage.
	MsgID byte
	// Data is 0..MaxData bytes.
	Data []byte
}

// Parity is the XOR of the message id, both size bytes and every data byte.
func Parity(msgID byte, data []byte) byte {
	p := msgID ^ byte(len(data)>>8) ^ byte(len(data))
	for _, c := range data {
		p ^= c
	}
	return p
}

// Append appends the frame's wire bytes to b; it fails with ErrSize when
// Data is longer than MaxData.
func (f Frame) Append(b []byte) ([]byte, error) {
	if len(f.Data) > MaxData {
		return b, fmt.Errorf("encode frame 0x%02X: %d data bytes: %w", f.MsgID, len(f.Data), ErrSize)
	}
	b = append(b, sync0, sync1, f.MsgID)
	b = binary.BigEndian.AppendUint16(b, uint16(len(f.Data)))
	b = append(b, f.Data...)
	return append(b, Parity(f.MsgID, f.Data)), nil
}

// MarshalBinary returns the frame's wire bytes.
func (f Frame) MarshalBinary() ([]byte, error) {
	return f.Append(make([]byte, 0, HeaderLen+len(f.Data)+1))
}

// Parse decodes the first frame in b, skipping stray bytes before its sync
// word. It returns the frame, the bytes of b consumed (stray bytes
// included) and nil (Data aliases b); ErrIncomplete (the consumed bytes
// are stray and may be dropped, keep the rest and append more); or a
// wrapped ErrParity/ErrSize, having consumed the corrupt frame's first
// byte so that parsing b[n:] resynchronises. It never panics.
func Parse(b []byte) (Frame, int, error) {
	i := bytes.Index(b, syncWord)
	if i < 0 {
		n := len(b)
		if n > 0 && b[n-1] == sync0 {
			n--
		}
		return Frame{}, n, ErrIncomplete
	}
	rest := b[i:]
	if len(rest) < HeaderLen {
		return Frame{}, i, ErrIncomplete
	}
	size := int(binary.BigEndian.Uint16(rest[3:5]))
	if size > MaxData {
		return Frame{}, i + 1, fmt.Errorf("frame at byte %d: size %d: %w", i, size, ErrSize)
	}
	if len(rest) < HeaderLen+size+1 {
		return Frame{}, i, ErrIncomplete
	}
	f := Frame{MsgID: rest[2], Data: rest[HeaderLen : HeaderLen+size]}
	if got, want := rest[HeaderLen+size], Parity(f.MsgID, f.Data); got != want {
		return Frame{}, i + 1, fmt.Errorf("frame at byte %d: parity 0x%02X, want 0x%02X: %w", i, got, want, ErrParity)
	}
	return f, i + HeaderLen + size + 1, nil
}

// Decoder reassembles frames from a serial stream that arrives in pieces,
// with stray bytes and corrupt frames among them. It holds at most
// 2*(HeaderLen+MaxData+1) bytes. It is pure and not safe for concurrent use.
type Decoder struct {
	buf []byte
}

const decoderBound = 2 * (HeaderLen + MaxData + 1)

// Write appends received bytes; it never fails. Beyond the bound the
// oldest bytes are dropped.
func (d *Decoder) Write(p []byte) (int, error) {
	d.buf = append(d.buf, p...)
	if over := len(d.buf) - decoderBound; over > 0 {
		d.buf = append(d.buf[:0], d.buf[over:]...)
	}
	return len(p), nil
}

// Next returns the next complete frame (Data is a copy the caller owns),
// ErrIncomplete when more bytes are needed, or a wrapped ErrParity/ErrSize
// after dropping the corrupt frame's first byte (call Next again).
func (d *Decoder) Next() (Frame, error) {
	f, n, err := Parse(d.buf)
	if err == nil {
		f.Data = append([]byte(nil), f.Data...)
	}
	d.buf = append(d.buf[:0], d.buf[n:]...)
	return f, err
}

// Resync gives up on the frame whose start is pending: it drops the first
// pending byte so the next Next looks for a later sync word. Use it when
// no byte has arrived for a while.
func (d *Decoder) Resync() {
	if len(d.buf) > 0 {
		d.buf = append(d.buf[:0], d.buf[1:]...)
	}
}

// Buffered returns the number of bytes waiting for the rest of a frame.
func (d *Decoder) Buffered() int { return len(d.buf) }

// Reset drops every pending byte.
func (d *Decoder) Reset() { d.buf = d.buf[:0] }

// Reply is a decoded MsgReply frame.
type Reply struct {
	// Cmd is the message id the reply answers.
	Cmd byte
	// Result is the result code; ResultSuccess is 0.
	Result byte
	// Payload is what follows the result.
	Payload []byte
}

// ParseReply decodes a MsgReply frame's data; it fails with ErrShortReply
// when fewer than two bytes are present.
func ParseReply(data []byte) (Reply, error) {
	if len(data) < 2 {
		return Reply{}, fmt.Errorf("reply of %d bytes: %w", len(data), ErrShortReply)
	}
	return Reply{Cmd: data[0], Result: data[1], Payload: data[2:]}, nil
}

// ReplyFrame builds the module's reply frame to cmd.
func ReplyFrame(cmd, result byte, payload ...byte) Frame {
	return Frame{MsgID: MsgReply, Data: append([]byte{cmd, result}, payload...)}
}

// NoteFrame builds a module note frame.
func NoteFrame(note byte, payload ...byte) Frame {
	return Frame{MsgID: MsgNote, Data: append([]byte{note}, payload...)}
}

var resultText = map[byte]string{
	ResultSuccess:      "success",
	ResultRejected:     "rejected",
	ResultAborted:      "aborted",
	ResultCamera:       "camera error",
	ResultUnknown:      "unknown error",
	ResultInvalidParam: "invalid parameter",
	ResultNoMemory:     "no memory",
	ResultUnknownUser:  "unknown user",
	ResultMaxUser:      "user storage full",
	ResultFaceEnrolled: "face already enrolled",
	ResultLiveness:     "liveness check failed",
	ResultTimeout:      "timeout",
	ResultAuthFailed:   "authorization failed",
	ResultPhotoLarge:   "photo too large",
	ResultPhotoSmall:   "photo too small",
}

// ResultError is a command the module answered with a non-zero result: a
// remote error, distinct from local timeouts and corrupt frames. It
// unwraps to the hal error of its class (hal.ErrFull, hal.ErrRejected,
// hal.ErrUnsupported or hal.ErrFault).
type ResultError struct {
	// Cmd is the message id the module refused.
	Cmd byte
	// Result is its result code.
	Result byte
}

// Error implements error.
func (e *ResultError) Error() string {
	s, ok := resultText[e.Result]
	if !ok {
		s = "unknown result"
	}
	return fmt.Sprintf("module answered message 0x%02X with %s (0x%02X)", e.Cmd, s, e.Result)
}

// Unwrap returns the hal error class of the result.
func (e *ResultError) Unwrap() error {
	switch e.Result {
	case ResultMaxUser, ResultNoMemory:
		return hal.ErrFull
	case ResultRejected, ResultFaceEnrolled, ResultPhotoLarge, ResultPhotoSmall, ResultLiveness, ResultInvalidParam:
		return hal.ErrRejected
	}
	return hal.ErrFault
}

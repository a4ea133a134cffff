package protocol

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
)

// Mod names of V1.0 and of the project's extensions (PROTOCOL.md
// §5 "Messages" and §7 "Extensions"). A heartbeat's mod is configurable
// and has no constant here.
const (
	ModGetDeviceInfo     = "get_device_info"     // server → device
	ModSetDeviceInfo     = "set_device_info"     // server → device; without device_info it is a get
	ModDownloadPerson    = "download_person"     // server → device
	ModUploadAccessInfo  = "upload_access_info"  // device → server
	ModSendUserCommand   = "send_user_command"   // server → device
	ModSendDeviceCommand = "send_device_command" // device → server (handled like send_user_command if received)
	ModRemovePerson      = "remove_person"       // extension, server → device
	ModSetDeviceTime     = "set_device_time"     // extension, server → device
	ModGetDeviceStatus   = "get_device_status"   // extension, server → device
)

// Message types: the optional "type" field of the envelope.
const (
	TypeRequest  = 1
	TypeResponse = 2
)

// Response codes (PROTOCOL.md §4 "Codes").
const (
	CodeOK       = 0  // success
	CodeError    = -1 // malformed request, invalid field, unsupported mod or command_type
	CodeDevice   = -2 // a hardware module failed
	CodeDatabase = -3 // the local database failed
)

// Message is one protocol message, request or response, of any mod: the
// envelope plus every body field V1.0 and the extensions define. Only the
// fields the mod uses are set; the rest stay zero and are not written.
//
// Decode and UnmarshalJSON are lenient as PROTOCOL.md §3 requires: numbers may
// be JSON numbers or numeric strings (and string fields accept integers),
// unknown fields are ignored, and ret/msg are read as code/message; and
// strict where it refuses (see Decode).
// Marshal and MarshalJSON write compact JSON with the documented names and
// types only.
//
// A Message is not safe for concurrent modification; Peer hands each
// handler its own.
type Message struct {
	// Mod is the method name, e.g. ModDownloadPerson.
	Mod string
	// SessionID matches a response to its request. Peer.Call fills it with
	// a fresh UUID when empty.
	SessionID string
	// Type is TypeRequest or TypeResponse; 0 means absent (not written).
	// Receivers must not trust it: a message is a response when it answers
	// a pending request or carries a code (HasCode).
	Type int

	// HasCode reports that the message carries a code (or ret) field: it is
	// a response. Reply sets it. Code and Text are written only when it is
	// set, and then always both.
	HasCode bool
	// Code is the response code, CodeOK or a negative Code* value.
	Code int
	// Text is the response's "message": empty on success, otherwise what
	// went wrong in plain words.
	Text string

	// DeviceInfo is the body of get_device_info responses and
	// set_device_info requests. A set_device_info request without one is a
	// get (see WantsDeviceInfo).
	DeviceInfo *DeviceInfo
	// PersonInfo is the body of download_person.
	PersonInfo *PersonInfo
	// AccessInfo is the body of upload_access_info.
	AccessInfo *AccessInfo

	// CommandType and CommandValue are the body of send_user_command and
	// send_device_command. They are written for those mods, and for any
	// other mod when non-zero.
	CommandType  int
	CommandValue string

	// PersonIDs and PersonID are the body of remove_person; see RemoveIDs.
	PersonIDs []string
	PersonID  string

	// Time is the body of set_device_time: local time YYYYMMDDhhmmss (see
	// ParseTime).
	Time string

	// DeviceStatus is the body of a get_device_status response.
	DeviceStatus *DeviceStatus
}

// DeviceField names one field of a DeviceInfo, as a bit of DeviceInfo.Fields.
type DeviceField uint16

// The fields of device_info.
const (
	FieldUUID DeviceField = 1 << iota
	FieldDeviceIP
	FieldDevicePort
	FieldServerIP
	FieldServerPort
	FieldAddress
	FieldCommunityCode
	FieldSoftwareVersion
	FieldHardwareVersion

	// AllDeviceFields is every field: a full device_info.
	AllDeviceFields DeviceField = 1<<iota - 1
)

// DeviceInfo is the device_info object (PROTOCOL.md §5 get_device_info
// and set_device_info).
type DeviceInfo struct {
	UUID            string
	DeviceIP        string
	DevicePort      int // 1..65535
	ServerIP        string
	ServerPort      int // 1..65535
	Address         string
	CommunityCode   string
	SoftwareVersion string
	HardwareVersion string

	// Fields says which fields the object carries. Decoding sets exactly
	// the keys that were present, so a set_device_info handler changes only
	// those (see Has). Encoding writes the fields in Fields, or every field
	// when Fields is zero (a full device_info, as a get response carries).
	Fields DeviceField
}

// Has reports whether the decoded object carried field f. It reads Fields
// as is: for a DeviceInfo built in code with Fields zero it reports false.
func (d *DeviceInfo) Has(f DeviceField) bool { return d.Fields&f != 0 }

// PersonInfo is the person_info object of download_person.
type PersonInfo struct {
	PersonID         string // required: the key
	PersonName       string
	IDNumber         string
	CardNumber       string
	KeyNumber        string
	DepartmentNumber string
	Role             int

	// Face is the face photo for the face module.
	Face *Biometric
	// LeftImage and RightImage are fingerprint images.
	LeftImage  *Biometric
	RightImage *Biometric
	// LeftCode and RightCode are fingerprint templates; only their Length
	// and Data are used on the wire.
	LeftCode  *Biometric
	RightCode *Biometric
}

// Biometric is one biometric blob: a face photo, a fingerprint image or a
// fingerprint template. Never log its Data.
type Biometric struct {
	Width  int // pixels; images only
	Height int // pixels; images only
	Format int // images only; V1.0 defines no values
	// Length is the decoded byte count the sender declared; Validate checks
	// it against len(Data).
	Length int
	// Data is the decoded blob (standard base64 on the wire). It is nil
	// when the data was spooled (see Spool, Spooled): read it with Open
	// or Bytes, and its length with Len.
	Data []byte

	spool *spooledData // the spooled data, or nil
}

// AccessInfo is the access_info object of upload_access_info: one access
// record.
type AccessInfo struct {
	PersonID      string
	Time          string // local time YYYYMMDDhhmmss
	IDNumber      string
	CardNumber    string
	Role          int
	OpenDoorType  int // project values: 1 card, 2 face, 3 fingerprint, 4 remote, 5 password/key
	InOutType     int // project values: 1 in, 2 out
	CommunityCode string
}

// DeviceStatus is the device_status object of a get_device_status response
// (an extension; the field names are the project's).
type DeviceStatus struct {
	Link            string         // link state, e.g. "up"
	OutboxDepth     int            // access records not yet acknowledged
	OldestUnsent    string         // time of the oldest unacknowledged record, YYYYMMDDhhmmss, or ""
	PersonsEnrolled int            // persons in the local database
	Modules         []ModuleStatus // each hardware module's state
	Door            string         // door state, e.g. "closed"
	SoftwareVersion string
	UptimeSeconds   int64 // seconds since the agent started
}

// ModuleStatus is the state of one hardware module in a DeviceStatus.
type ModuleStatus struct {
	Name   string // e.g. "fingerprint"
	State  string // e.g. "ok", "fault", "absent"
	Detail string // what is wrong, or ""
}

// NewRequest returns a request of the given mod with Type TypeRequest and
// no session id (Peer.Call fills it).
func NewRequest(mod string) *Message {
	return &Message{Mod: mod, Type: TypeRequest}
}

// Reply returns a response to m: the same mod and session id, Type
// TypeResponse, the given code and text. Add a body to it if the mod has one.
func (m *Message) Reply(code int, text string) *Message {
	return &Message{Mod: m.Mod, SessionID: m.SessionID, Type: TypeResponse, HasCode: true, Code: code, Text: text}
}

// IsResponse reports whether m carries a code, which makes it a response
// when its session id matches no pending request (PROTOCOL.md §3 "The envelope").
func (m *Message) IsResponse() bool { return m.HasCode }

// WantsDeviceInfo reports whether m asks for the device info:
// get_device_info, or set_device_info without a device_info object.
func (m *Message) WantsDeviceInfo() bool {
	return m.Mod == ModGetDeviceInfo || (m.Mod == ModSetDeviceInfo && m.DeviceInfo == nil)
}

// RemoveIDs returns the person ids a remove_person request names:
// person_ids followed by person_id, without empty or repeated ids.
func (m *Message) RemoveIDs() []string {
	seen := make(map[string]bool, len(m.PersonIDs)+1)
	var ids []string
	for _, id := range append(m.PersonIDs[:len(m.PersonIDs):len(m.PersonIDs)], m.PersonID) {
		if id != "" && !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	return ids
}

// Validate checks what decoding leaves to the receiver: a request has a mod
// and a session id, and the bodies of the mods a device carries out are
// complete (download_person names a person and each blob's length matches
// its data; remove_person names someone; set_device_time has a valid time).
// The error text is fit for a response's message. Peer validates every
// request before its handler sees it.
func (m *Message) Validate() error {
	if m.Mod == "" {
		return fmt.Errorf("%w: mod is missing", ErrInvalid)
	}
	if m.SessionID == "" {
		return fmt.Errorf("%w: session_id is missing", ErrInvalid)
	}
	if m.HasCode {
		return nil
	}
	switch m.Mod {
	case ModDownloadPerson:
		p := m.PersonInfo
		if p == nil {
			return fmt.Errorf("%w: person_info is missing", ErrInvalid)
		}
		if p.PersonID == "" {
			return fmt.Errorf("%w: person_info.person_id is missing", ErrInvalid)
		}
		for _, f := range personMembers {
			if f.blob == nil {
				continue
			}
			if b := *f.blob(p); b != nil && b.Length != b.Len() {
				return fmt.Errorf("%w: person_info.%s.length is %d but data decodes to %d bytes", ErrInvalid, f.name, b.Length, b.Len())
			}
		}
	case ModRemovePerson:
		if len(m.RemoveIDs()) == 0 {
			return fmt.Errorf("%w: person_ids is missing or empty", ErrInvalid)
		}
	case ModSetDeviceTime:
		if _, err := ParseTime(m.Time, nil); err != nil {
			return fmt.Errorf("%w: time: %w", ErrInvalid, err)
		}
	}
	return nil
}

// Decode parses one JSON object into a Message, leniently where
// PROTOCOL.md §3 allows it (see Message) and strictly elsewhere: a key twice
// in one object, invalid UTF-8, a lone surrogate escape, a NUL character,
// a value of the wrong kind (a fraction, a boolean, an object or a list
// where a string is expected, a string where a list is expected) are
// errors wrapping ErrMalformed whose text names the field. It does not
// Validate. The result does not alias b.
func Decode(b []byte) (*Message, error) {
	if m, ok := fastDecode(b); ok {
		return m, nil
	}
	return decodeSlow(b)
}

// decodeSlow is Decode without the fast path: the strict checks, then
// encoding/json.
func decodeSlow(b []byte) (*Message, error) {
	if err := checkStrict(b); err != nil {
		return nil, err
	}
	return decodeJSON(b)
}

// decodeJSON is Decode through encoding/json: well-typed input takes the
// plain decoder; a field of another type sends it to the lenient one.
func decodeJSON(b []byte) (*Message, error) {
	var plain plainIn
	err := json.Unmarshal(b, &plain)
	if err == nil {
		return plain.message(), nil
	}
	var te *json.UnmarshalTypeError
	if !errors.As(err, &te) {
		return nil, fmt.Errorf("%w: %s", ErrMalformed, explain(err))
	}
	return decodeLenient(b)
}

func decodeLenient(b []byte) (*Message, error) {
	var w lenientIn
	if err := json.Unmarshal(b, &w); err != nil {
		return nil, fmt.Errorf("%w: %s", ErrMalformed, explain(err))
	}
	return w.message(), nil
}

// Marshal encodes m as compact JSON followed by "\n", the form the stream
// writer sends. Only documented names are written (code and message, never
// ret and msg); strings are escaped as encoding/json escapes them, except
// that HTML characters are not. It does not fail; the error is for future
// checks.
func Marshal(m *Message) ([]byte, error) {
	size := 128 + len(m.Mod) + len(m.SessionID) + len(m.Text) + len(m.CommandValue)
	if m.PersonInfo != nil {
		size += 512 + m.PersonInfo.blobSize()*4/3
	}
	if m.AccessInfo != nil || m.DeviceInfo != nil || m.DeviceStatus != nil {
		size += 256
	}
	return appendMessage(make([]byte, 0, size), m), nil
}

// MarshalJSON implements json.Marshaler: compact JSON without the trailing
// newline Marshal adds.
func (m *Message) MarshalJSON() ([]byte, error) {
	b, err := Marshal(m)
	if err != nil {
		return nil, err
	}
	return b[:len(b)-1], nil
}

// UnmarshalJSON implements json.Unmarshaler with Decode's leniency.
func (m *Message) UnmarshalJSON(b []byte) error {
	d, err := Decode(b)
	if err != nil {
		return err
	}
	*m = *d
	return nil
}

// WriteMessage writes m to w as compact JSON followed by "\n", in one Write.
func WriteMessage(w io.Writer, m *Message) error {
	b, err := Marshal(m)
	if err != nil {
		return err
	}
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("write %s message: %w", m.Mod, err)
	}
	return nil
}

// explain turns an encoding/json error into words fit for a response's
// message, naming the field in wire terms.
func explain(err error) string {
	var (
		te  *json.UnmarshalTypeError
		se  *json.SyntaxError
		b64 base64.CorruptInputError
	)
	switch {
	case errors.As(err, &te):
		want := "a " + te.Type.Kind().String()
		switch te.Type.Kind() {
		case reflect.Int, reflect.Int64:
			want = "a number"
		case reflect.Struct, reflect.Pointer:
			want = "an object"
		case reflect.Slice:
			want = "a list"
			if te.Type.Elem().Kind() == reflect.Uint8 {
				want = "base64 text"
			}
		}
		if te.Field == "" {
			return fmt.Sprintf("the message is %s, not an object", te.Value)
		}
		return fmt.Sprintf("%s: %s is not %s", te.Field, te.Value, want)
	case errors.As(err, &se):
		return fmt.Sprintf("invalid JSON at byte %d: %v", se.Offset, se)
	case errors.As(err, &b64):
		return fmt.Sprintf("a data field is not standard base64: %v", b64)
	}
	return err.Error()
}

func (p *PersonInfo) blobSize() int {
	n := 0
	for _, b := range p.blobs() {
		if b != nil {
			n += b.Len()
		}
	}
	return n
}

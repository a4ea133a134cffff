package protocol

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"math"
	"reflect"
	"strconv"
	"unicode/utf8"
)

// The encoding/json forms of Message for decoding (Decode tries the
// reflection-free fastDecode first; encode.go writes without reflection).
// wireIn is generic so that one definition serves two decoders:
// wireIn[string, int, []string] is plain encoding/json, for well-typed
// input, and wireIn[flexString, flexInt, flexStrings] is lenient (numbers
// as numeric strings and so on), used when the plain one meets a type it
// cannot take. Blobs stay []byte so encoding/json does the base64 work in
// one pass.

type (
	plainIn   = wireIn[string, int, []string]
	lenientIn = wireIn[flexString, flexInt, flexStrings]
)

type wireIn[S ~string, I ~int, L ~[]S] struct {
	Mod          S                   `json:"mod"`
	SessionID    S                   `json:"session_id"`
	Type         I                   `json:"type"`
	Code         *I                  `json:"code"`
	Ret          *I                  `json:"ret"`
	Message      *S                  `json:"message"`
	Msg          *S                  `json:"msg"`
	DeviceInfo   *wireDeviceIn[S, I] `json:"device_info"`
	PersonInfo   *wirePersonIn[S, I] `json:"person_info"`
	AccessInfo   *wireAccessIn[S, I] `json:"access_info"`
	CommandType  I                   `json:"command_type"`
	CommandValue S                   `json:"command_value"`
	PersonIDs    L                   `json:"person_ids"`
	PersonID     S                   `json:"person_id"`
	Time         S                   `json:"time"`
	DeviceStatus *wireStatusIn[S, I] `json:"device_status"`
}

type wireDeviceIn[S ~string, I ~int] struct {
	UUID            *S `json:"uuid"`
	DeviceIP        *S `json:"device_ip"`
	DevicePort      *I `json:"device_port"`
	ServerIP        *S `json:"server_ip"`
	ServerPort      *I `json:"server_port"`
	Address         *S `json:"address"`
	CommunityCode   *S `json:"community_code"`
	SoftwareVersion *S `json:"software_version"`
	HardwareVersion *S `json:"hardware_version"`
}

type wirePersonIn[S ~string, I ~int] struct {
	PersonID         S              `json:"person_id"`
	PersonName       S              `json:"person_name"`
	IDNumber         S              `json:"id_number"`
	CardNumber       S              `json:"card_number"`
	KeyNumber        S              `json:"key_number"`
	DepartmentNumber S              `json:"department_number"`
	Role             I              `json:"role"`
	Face             *wireBlobIn[I] `json:"face"`
	LeftImage        *wireBlobIn[I] `json:"left_image"`
	RightImage       *wireBlobIn[I] `json:"right_image"`
	LeftCode         *wireBlobIn[I] `json:"left_code"`
	RightCode        *wireBlobIn[I] `json:"right_code"`
}

type wireBlobIn[I ~int] struct {
	Width  I          `json:"width"`
	Height I          `json:"height"`
	Format I          `json:"format"`
	Length I          `json:"length"`
	Data   base64Data `json:"data"`
}

// base64Data is a blob's data: standard base64 decoded as encoding/json
// decodes a []byte ("" is an empty, non-nil slice; null is nil), except
// that an error is a type error, so that its text names the field.
type base64Data []byte

var bytesType = reflect.TypeFor[[]byte]()

// UnmarshalJSON implements json.Unmarshaler.
func (d *base64Data) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	if len(b) < 2 || b[0] != '"' {
		return &json.UnmarshalTypeError{Value: kind(b), Type: bytesType}
	}
	s := b[1 : len(b)-1]
	if bytes.IndexByte(s, '\\') >= 0 {
		var str string
		if err := json.Unmarshal(b, &str); err != nil {
			return err
		}
		s = []byte(str)
	}
	out := make([]byte, base64.StdEncoding.DecodedLen(len(s)))
	n, err := base64.StdEncoding.Decode(out, s)
	if err != nil {
		return &json.UnmarshalTypeError{Value: describe(b), Type: bytesType}
	}
	*d = out[:n]
	return nil
}

type wireAccessIn[S ~string, I ~int] struct {
	PersonID      S `json:"person_id"`
	Time          S `json:"time"`
	IDNumber      S `json:"id_number"`
	CardNumber    S `json:"card_number"`
	Role          I `json:"role"`
	OpenDoorType  I `json:"open_door_type"`
	InOutType     I `json:"in_out_type"`
	CommunityCode S `json:"community_code"`
}

type wireStatusIn[S ~string, I ~int] struct {
	Link            S                 `json:"link"`
	OutboxDepth     I                 `json:"outbox_depth"`
	OldestUnsent    S                 `json:"oldest_unsent"`
	PersonsEnrolled I                 `json:"persons_enrolled"`
	Modules         []wireModuleIn[S] `json:"modules"`
	Door            S                 `json:"door"`
	SoftwareVersion S                 `json:"software_version"`
	UptimeSeconds   I                 `json:"uptime_seconds"`
}

type wireModuleIn[S ~string] struct {
	Name   S `json:"name"`
	State  S `json:"state"`
	Detail S `json:"detail"`
}

func (w *wireIn[S, I, L]) message() *Message {
	m := &Message{
		Mod:          string(w.Mod),
		SessionID:    string(w.SessionID),
		Type:         int(w.Type),
		CommandType:  int(w.CommandType),
		CommandValue: string(w.CommandValue),
		PersonID:     string(w.PersonID),
		Time:         string(w.Time),
	}
	switch {
	case w.Code != nil:
		m.HasCode, m.Code = true, int(*w.Code)
	case w.Ret != nil:
		m.HasCode, m.Code = true, int(*w.Ret)
	}
	switch {
	case w.Message != nil:
		m.Text = string(*w.Message)
	case w.Msg != nil:
		m.Text = string(*w.Msg)
	}
	if len(w.PersonIDs) > 0 {
		m.PersonIDs = make([]string, len(w.PersonIDs))
		for i, id := range w.PersonIDs {
			m.PersonIDs[i] = string(id)
		}
	}
	if d := w.DeviceInfo; d != nil {
		m.DeviceInfo = d.deviceInfo()
	}
	if p := w.PersonInfo; p != nil {
		m.PersonInfo = &PersonInfo{
			PersonID:         string(p.PersonID),
			PersonName:       string(p.PersonName),
			IDNumber:         string(p.IDNumber),
			CardNumber:       string(p.CardNumber),
			KeyNumber:        string(p.KeyNumber),
			DepartmentNumber: string(p.DepartmentNumber),
			Role:             int(p.Role),
			Face:             p.Face.biometric(),
			LeftImage:        p.LeftImage.biometric(),
			RightImage:       p.RightImage.biometric(),
			LeftCode:         p.LeftCode.biometric(),
			RightCode:        p.RightCode.biometric(),
		}
	}
	if a := w.AccessInfo; a != nil {
		m.AccessInfo = &AccessInfo{
			PersonID:      string(a.PersonID),
			Time:          string(a.Time),
			IDNumber:      string(a.IDNumber),
			CardNumber:    string(a.CardNumber),
			Role:          int(a.Role),
			OpenDoorType:  int(a.OpenDoorType),
			InOutType:     int(a.InOutType),
			CommunityCode: string(a.CommunityCode),
		}
	}
	if s := w.DeviceStatus; s != nil {
		st := &DeviceStatus{
			Link:            string(s.Link),
			OutboxDepth:     int(s.OutboxDepth),
			OldestUnsent:    string(s.OldestUnsent),
			PersonsEnrolled: int(s.PersonsEnrolled),
			Door:            string(s.Door),
			SoftwareVersion: string(s.SoftwareVersion),
			UptimeSeconds:   int64(s.UptimeSeconds),
		}
		for _, mod := range s.Modules {
			st.Modules = append(st.Modules, ModuleStatus{Name: string(mod.Name), State: string(mod.State), Detail: string(mod.Detail)})
		}
		m.DeviceStatus = st
	}
	return m
}

func (d *wireDeviceIn[S, I]) deviceInfo() *DeviceInfo {
	var out DeviceInfo
	str := func(f DeviceField, src *S, dst *string) {
		if src != nil {
			out.Fields |= f
			*dst = string(*src)
		}
	}
	num := func(f DeviceField, src *I, dst *int) {
		if src != nil {
			out.Fields |= f
			*dst = int(*src)
		}
	}
	str(FieldUUID, d.UUID, &out.UUID)
	str(FieldDeviceIP, d.DeviceIP, &out.DeviceIP)
	num(FieldDevicePort, d.DevicePort, &out.DevicePort)
	str(FieldServerIP, d.ServerIP, &out.ServerIP)
	num(FieldServerPort, d.ServerPort, &out.ServerPort)
	str(FieldAddress, d.Address, &out.Address)
	str(FieldCommunityCode, d.CommunityCode, &out.CommunityCode)
	str(FieldSoftwareVersion, d.SoftwareVersion, &out.SoftwareVersion)
	str(FieldHardwareVersion, d.HardwareVersion, &out.HardwareVersion)
	return &out
}

func (b *wireBlobIn[I]) biometric() *Biometric {
	if b == nil {
		return nil
	}
	return &Biometric{Width: int(b.Width), Height: int(b.Height), Format: int(b.Format), Length: int(b.Length), Data: []byte(b.Data)}
}

// flexInt is an integer that arrives as a JSON number or a numeric string.
// An empty string and null are 0; a number with a fraction, or one outside
// int's range (32 bits on the ARM terminals), is an error.
type flexInt int

var intType = reflect.TypeFor[int]()

// UnmarshalJSON implements json.Unmarshaler.
func (n *flexInt) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	s := b
	if len(b) > 0 && b[0] == '"' {
		var str string
		if err := json.Unmarshal(b, &str); err != nil {
			return err
		}
		s = bytes.TrimSpace([]byte(str))
		if len(s) == 0 {
			*n = 0
			return nil
		}
	}
	if v, err := strconv.ParseInt(string(s), 10, strconv.IntSize); err == nil {
		*n = flexInt(v)
		return nil
	}
	// 12.0 and 1e3 are integers too; 1.5 is not.
	if f, err := strconv.ParseFloat(string(s), 64); err == nil && f == math.Trunc(f) && math.Abs(f) < 1<<53 && f >= math.MinInt && f <= math.MaxInt {
		*n = flexInt(f)
		return nil
	}
	return &json.UnmarshalTypeError{Value: describe(b), Type: intType}
}

// flexString is a string that may also arrive as a JSON integer (its
// literal text is kept). null is "". A fraction, an exponent, a boolean,
// an object or a list is an error.
type flexString string

var stringType = reflect.TypeFor[string]()

// UnmarshalJSON implements json.Unmarshaler.
func (s *flexString) UnmarshalJSON(b []byte) error {
	switch {
	case len(b) == 0:
		return nil
	case b[0] == '"':
		if bytes.IndexByte(b, '\\') < 0 && utf8.Valid(b) {
			*s = flexString(b[1 : len(b)-1])
			return nil
		}
		var str string
		if err := json.Unmarshal(b, &str); err != nil {
			return err
		}
		*s = flexString(str)
		return nil
	case isInteger(b):
		*s = flexString(b)
		return nil
	case string(b) == "null":
		return nil
	}
	return &json.UnmarshalTypeError{Value: describe(b), Type: stringType}
}

// isInteger reports whether b is a JSON integer: -?(0|[1-9][0-9]*).
func isInteger(b []byte) bool {
	if len(b) > 0 && b[0] == '-' {
		b = b[1:]
	}
	if len(b) == 0 || (len(b) > 1 && b[0] == '0') {
		return false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// flexStrings is a list of strings (each a flexString); null is empty.
// Anything but a list, a string included, is an error.
type flexStrings []flexString

var stringsType = reflect.TypeFor[[]string]()

// UnmarshalJSON implements json.Unmarshaler.
func (l *flexStrings) UnmarshalJSON(b []byte) error {
	switch {
	case string(b) == "null":
		return nil
	case len(b) > 0 && b[0] == '[':
		var v []flexString
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*l = v
		return nil
	}
	return &json.UnmarshalTypeError{Value: describe(b), Type: stringsType}
}

// kind names the kind of a JSON value that is not a string, as
// encoding/json's errors do.
func kind(b []byte) string {
	switch {
	case len(b) == 0:
		return "value"
	case b[0] == '{':
		return "object"
	case b[0] == '[':
		return "array"
	case b[0] == 't' || b[0] == 'f':
		return "bool"
	}
	return "number"
}

// describe names a JSON value for an error message without quoting a
// large one whole.
func describe(b []byte) string {
	if len(b) > 32 {
		return string(b[:32]) + "..."
	}
	return string(b)
}

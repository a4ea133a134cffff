package protocol

import (
	"bytes"
	"encoding/json"
)

// referenceMarshal is the encoding/json form of Marshal: Marshal must
// write exactly these bytes (TestGoldenVectors, FuzzDecode), so the
// hand-written encoder is held to the library's escaping and layout.
func referenceMarshal(m *Message) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(newWireOut(m)); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

type wireOut struct {
	Mod          string         `json:"mod"`
	SessionID    string         `json:"session_id"`
	Type         int            `json:"type,omitempty"`
	Code         *int           `json:"code,omitempty"`
	Message      *string        `json:"message,omitempty"`
	DeviceInfo   *wireDeviceOut `json:"device_info,omitempty"`
	PersonInfo   *wirePersonOut `json:"person_info,omitempty"`
	AccessInfo   *wireAccessOut `json:"access_info,omitempty"`
	CommandType  *int           `json:"command_type,omitempty"`
	CommandValue *string        `json:"command_value,omitempty"`
	PersonIDs    []string       `json:"person_ids,omitempty"`
	PersonID     string         `json:"person_id,omitempty"`
	Time         string         `json:"time,omitempty"`
	DeviceStatus *wireStatusOut `json:"device_status,omitempty"`
}

type wireDeviceOut struct {
	UUID            *string `json:"uuid,omitempty"`
	DeviceIP        *string `json:"device_ip,omitempty"`
	DevicePort      *int    `json:"device_port,omitempty"`
	ServerIP        *string `json:"server_ip,omitempty"`
	ServerPort      *int    `json:"server_port,omitempty"`
	Address         *string `json:"address,omitempty"`
	CommunityCode   *string `json:"community_code,omitempty"`
	SoftwareVersion *string `json:"software_version,omitempty"`
	HardwareVersion *string `json:"hardware_version,omitempty"`
}

type wirePersonOut struct {
	PersonID         string        `json:"person_id"`
	PersonName       string        `json:"person_name"`
	IDNumber         string        `json:"id_number"`
	CardNumber       string        `json:"card_number"`
	KeyNumber        string        `json:"key_number"`
	DepartmentNumber string        `json:"department_number"`
	Role             int           `json:"role"`
	Face             *wireImageOut `json:"face,omitempty"`
	LeftImage        *wireImageOut `json:"left_image,omitempty"`
	LeftCode         *wireCodeOut  `json:"left_code,omitempty"`
	RightImage       *wireImageOut `json:"right_image,omitempty"`
	RightCode        *wireCodeOut  `json:"right_code,omitempty"`
}

type wireImageOut struct {
	Width  int    `json:"width"`
	Height int    `json:"height"`
	Format int    `json:"format"`
	Length int    `json:"length"`
	Data   []byte `json:"data"`
}

type wireCodeOut struct {
	Length int    `json:"length"`
	Data   []byte `json:"data"`
}

type wireAccessOut struct {
	PersonID      string `json:"person_id"`
	Time          string `json:"time"`
	IDNumber      string `json:"id_number"`
	CardNumber    string `json:"card_number"`
	Role          int    `json:"role"`
	OpenDoorType  int    `json:"open_door_type"`
	InOutType     int    `json:"in_out_type"`
	CommunityCode string `json:"community_code"`
}

type wireStatusOut struct {
	Link            string          `json:"link"`
	OutboxDepth     int             `json:"outbox_depth"`
	OldestUnsent    string          `json:"oldest_unsent"`
	PersonsEnrolled int             `json:"persons_enrolled"`
	Modules         []wireModuleOut `json:"modules"`
	Door            string          `json:"door"`
	SoftwareVersion string          `json:"software_version"`
	UptimeSeconds   int64           `json:"uptime_seconds"`
}

type wireModuleOut struct {
	Name   string `json:"name"`
	State  string `json:"state"`
	Detail string `json:"detail,omitempty"`
}

func newWireOut(m *Message) *wireOut {
	w := &wireOut{
		Mod:       m.Mod,
		SessionID: m.SessionID,
		Type:      m.Type,
		PersonIDs: m.PersonIDs,
		PersonID:  m.PersonID,
		Time:      m.Time,
	}
	if m.HasCode {
		w.Code, w.Message = &m.Code, &m.Text
	}
	if m.Mod == ModSendUserCommand || m.Mod == ModSendDeviceCommand || m.CommandType != 0 || m.CommandValue != "" {
		if !m.HasCode || m.CommandType != 0 || m.CommandValue != "" {
			w.CommandType, w.CommandValue = &m.CommandType, &m.CommandValue
		}
	}
	if d := m.DeviceInfo; d != nil {
		fields := d.Fields
		if fields == 0 {
			fields = AllDeviceFields
		}
		o := &wireDeviceOut{}
		if fields&FieldUUID != 0 {
			o.UUID = &d.UUID
		}
		if fields&FieldDeviceIP != 0 {
			o.DeviceIP = &d.DeviceIP
		}
		if fields&FieldDevicePort != 0 {
			o.DevicePort = &d.DevicePort
		}
		if fields&FieldServerIP != 0 {
			o.ServerIP = &d.ServerIP
		}
		if fields&FieldServerPort != 0 {
			o.ServerPort = &d.ServerPort
		}
		if fields&FieldAddress != 0 {
			o.Address = &d.Address
		}
		if fields&FieldCommunityCode != 0 {
			o.CommunityCode = &d.CommunityCode
		}
		if fields&FieldSoftwareVersion != 0 {
			o.SoftwareVersion = &d.SoftwareVersion
		}
		if fields&FieldHardwareVersion != 0 {
			o.HardwareVersion = &d.HardwareVersion
		}
		w.DeviceInfo = o
	}
	if p := m.PersonInfo; p != nil {
		w.PersonInfo = &wirePersonOut{
			PersonID:         p.PersonID,
			PersonName:       p.PersonName,
			IDNumber:         p.IDNumber,
			CardNumber:       p.CardNumber,
			KeyNumber:        p.KeyNumber,
			DepartmentNumber: p.DepartmentNumber,
			Role:             p.Role,
			Face:             imageOut(p.Face),
			LeftImage:        imageOut(p.LeftImage),
			LeftCode:         codeOut(p.LeftCode),
			RightImage:       imageOut(p.RightImage),
			RightCode:        codeOut(p.RightCode),
		}
	}
	if a := m.AccessInfo; a != nil {
		o := wireAccessOut(*a)
		w.AccessInfo = &o
	}
	if s := m.DeviceStatus; s != nil {
		o := &wireStatusOut{
			Link:            s.Link,
			OutboxDepth:     s.OutboxDepth,
			OldestUnsent:    s.OldestUnsent,
			PersonsEnrolled: s.PersonsEnrolled,
			Modules:         make([]wireModuleOut, 0, len(s.Modules)),
			Door:            s.Door,
			SoftwareVersion: s.SoftwareVersion,
			UptimeSeconds:   s.UptimeSeconds,
		}
		for _, mod := range s.Modules {
			o.Modules = append(o.Modules, wireModuleOut(mod))
		}
		w.DeviceStatus = o
	}
	return w
}

func imageOut(b *Biometric) *wireImageOut {
	if b == nil {
		return nil
	}
	return &wireImageOut{Width: b.Width, Height: b.Height, Format: b.Format, Length: b.Length, Data: nonNil(b.Data)}
}

func codeOut(b *Biometric) *wireCodeOut {
	if b == nil {
		return nil
	}
	return &wireCodeOut{Length: b.Length, Data: nonNil(b.Data)}
}

// nonNil makes encoding/json write "" rather than null for an empty blob.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

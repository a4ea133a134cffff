package protocol

import (
	"encoding/base64"
	"strconv"
)

// The members of the nested wire objects, each written once: the fast
// decoder (fastdecode.go), the encoder (encode.go) and Validate read these
// tables. The encoding/json forms in wire.go (and reference_test.go) are
// a second, independent description on purpose: FuzzDecode and
// TestGoldenVectors hold the two together.
//
// A table's order is the order Marshal writes the members in.

// member is one member of a wire object of Go type T: its name and where
// its value lives. Exactly one of str, num, blob and data is set.
type member[T any] struct {
	name string
	key  string // `,"name":`, as written after another member

	str  func(*T) *string
	num  func(*T) *int
	blob func(*T) **Biometric
	data bool // a Biometric's data: read by blobData, written by appendBlob

	image     bool        // blob: an image (width, height, format written), not a template
	imageOnly bool        // a Biometric member written only for images
	bit       DeviceField // a DeviceInfo member: its bit of Fields
}

func strMember[T any](name string, f func(*T) *string) member[T] {
	return member[T]{name: name, key: `,"` + name + `":`, str: f}
}

func numMember[T any](name string, f func(*T) *int) member[T] {
	return member[T]{name: name, key: `,"` + name + `":`, num: f}
}

func blobMember(name string, image bool, f func(*PersonInfo) **Biometric) member[PersonInfo] {
	return member[PersonInfo]{name: name, key: `,"` + name + `":`, blob: f, image: image}
}

func deviceMember(bit DeviceField, m member[DeviceInfo]) member[DeviceInfo] {
	m.bit = bit
	return m
}

func imageMember(m member[Biometric]) member[Biometric] {
	m.imageOnly = true
	return m
}

// deviceMembers are the members of device_info.
var deviceMembers = []member[DeviceInfo]{
	deviceMember(FieldUUID, strMember("uuid", func(d *DeviceInfo) *string { return &d.UUID })),
	deviceMember(FieldDeviceIP, strMember("device_ip", func(d *DeviceInfo) *string { return &d.DeviceIP })),
	deviceMember(FieldDevicePort, numMember("device_port", func(d *DeviceInfo) *int { return &d.DevicePort })),
	deviceMember(FieldServerIP, strMember("server_ip", func(d *DeviceInfo) *string { return &d.ServerIP })),
	deviceMember(FieldServerPort, numMember("server_port", func(d *DeviceInfo) *int { return &d.ServerPort })),
	deviceMember(FieldAddress, strMember("address", func(d *DeviceInfo) *string { return &d.Address })),
	deviceMember(FieldCommunityCode, strMember("community_code", func(d *DeviceInfo) *string { return &d.CommunityCode })),
	deviceMember(FieldSoftwareVersion, strMember("software_version", func(d *DeviceInfo) *string { return &d.SoftwareVersion })),
	deviceMember(FieldHardwareVersion, strMember("hardware_version", func(d *DeviceInfo) *string { return &d.HardwareVersion })),
}

// personMembers are the members of person_info.
var personMembers = []member[PersonInfo]{
	strMember("person_id", func(p *PersonInfo) *string { return &p.PersonID }),
	strMember("person_name", func(p *PersonInfo) *string { return &p.PersonName }),
	strMember("id_number", func(p *PersonInfo) *string { return &p.IDNumber }),
	strMember("card_number", func(p *PersonInfo) *string { return &p.CardNumber }),
	strMember("key_number", func(p *PersonInfo) *string { return &p.KeyNumber }),
	strMember("department_number", func(p *PersonInfo) *string { return &p.DepartmentNumber }),
	numMember("role", func(p *PersonInfo) *int { return &p.Role }),
	blobMember("face", true, func(p *PersonInfo) **Biometric { return &p.Face }),
	blobMember("left_image", true, func(p *PersonInfo) **Biometric { return &p.LeftImage }),
	blobMember("left_code", false, func(p *PersonInfo) **Biometric { return &p.LeftCode }),
	blobMember("right_image", true, func(p *PersonInfo) **Biometric { return &p.RightImage }),
	blobMember("right_code", false, func(p *PersonInfo) **Biometric { return &p.RightCode }),
}

// biometricMembers are the members of a blob. Its data, last, may be
// spooled: blobData reads it and appendBlob writes it.
var biometricMembers = []member[Biometric]{
	imageMember(numMember("width", func(b *Biometric) *int { return &b.Width })),
	imageMember(numMember("height", func(b *Biometric) *int { return &b.Height })),
	imageMember(numMember("format", func(b *Biometric) *int { return &b.Format })),
	numMember("length", func(b *Biometric) *int { return &b.Length }),
	{name: "data", key: `,"data":`, data: true},
}

// accessMembers are the members of access_info.
var accessMembers = []member[AccessInfo]{
	strMember("person_id", func(a *AccessInfo) *string { return &a.PersonID }),
	strMember("time", func(a *AccessInfo) *string { return &a.Time }),
	strMember("id_number", func(a *AccessInfo) *string { return &a.IDNumber }),
	strMember("card_number", func(a *AccessInfo) *string { return &a.CardNumber }),
	numMember("role", func(a *AccessInfo) *int { return &a.Role }),
	numMember("open_door_type", func(a *AccessInfo) *int { return &a.OpenDoorType }),
	numMember("in_out_type", func(a *AccessInfo) *int { return &a.InOutType }),
	strMember("community_code", func(a *AccessInfo) *string { return &a.CommunityCode }),
}

// decodeObject parses a nested object by its table into a new T stored in
// *dst; null leaves *dst alone.
func decodeObject[T any](p *fastParser, dst **T, table []member[T]) bool {
	if p.isNull() {
		return true
	}
	v := new(T)
	var seen fields
	ok := p.object(func(key []byte) bool {
		for i := range table {
			m := &table[i]
			if len(key) != len(m.name) || !fold(key, m.name) {
				continue
			}
			if !seen.once(uint(i)) {
				return false
			}
			switch {
			case m.str != nil:
				ok, set := p.str(m.str(v))
				if set && m.bit != 0 {
					any(v).(*DeviceInfo).Fields |= m.bit
				}
				return ok
			case m.num != nil:
				ok, set := p.integer(m.num(v))
				if set && m.bit != 0 {
					any(v).(*DeviceInfo).Fields |= m.bit
				}
				return ok
			case m.blob != nil:
				return decodeObject(p, m.blob(v), biometricMembers)
			default:
				return p.blobData(any(v).(*Biometric))
			}
		}
		return p.unknown(key)
	})
	*dst = v
	return ok
}

// blobData parses a blob's data member: spooled, null, or standard base64
// decoded as encoding/json decodes it ("" is an empty, non-nil slice).
func (p *fastParser) blobData(v *Biometric) bool {
	if handled, ok := p.spooledBlob(v); handled {
		return ok
	}
	if p.isNull() {
		return true
	}
	s, ok := p.stringValue()
	if !ok {
		return false
	}
	data := make([]byte, base64.StdEncoding.DecodedLen(len(s)))
	n, err := base64.StdEncoding.Decode(data, s)
	if err != nil {
		return false
	}
	v.Data = data[:n]
	return true
}

// appendMembers appends '{' and the members of v its table names, but the
// DeviceInfo members not in fields (zero fields is all of them: a full
// device_info), the nil blobs, a blob's data (appendBlob writes it), and
// for a template (image false) the image-only members.
func appendMembers[T any](b []byte, v *T, table []member[T], fields DeviceField, image bool) []byte {
	if fields == 0 {
		fields = AllDeviceFields
	}
	b = append(b, '{')
	first := 1 // the key's comma is left out before the first member
	for i := range table {
		m := &table[i]
		if (m.bit != 0 && fields&m.bit == 0) || (m.imageOnly && !image) || m.data {
			continue
		}
		var blob *Biometric
		if m.blob != nil {
			if blob = *m.blob(v); blob == nil {
				continue
			}
		}
		b = append(b, m.key[first:]...)
		first = 0
		switch {
		case m.str != nil:
			b = appendString(b, *m.str(v))
		case m.num != nil:
			b = strconv.AppendInt(b, int64(*m.num(v)), 10)
		default:
			b = appendBlob(b, blob, m.image)
		}
	}
	return b
}

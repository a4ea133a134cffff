package protocol

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

const docSession = "de6a6236-db52-11e9-aaa8-00e04c110030"

// blob returns n deterministic bytes standing in for a biometric blob.
func blob(n int, seed byte) []byte {
	b := make([]byte, n)
	x := uint32(seed) + 1
	for i := range b {
		x = x*1664525 + 1013904223
		b[i] = byte(x >> 24)
	}
	return b
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// golden is one example of protocol-v1.0.zh.md with its JSON mistakes
// corrected (missing commas, curly quotes, trailing commas, the placeholder
// "BASE64 ... data" replaced by real base64 of the declared length), the
// values it must decode to, and the compact form it must re-encode to.
type golden struct {
	name    string
	in      string
	want    *Message
	encoded string
}

func goldens() []golden {
	face, leftImg, leftCode, rightImg, rightCode := blob(123221, 1), blob(123221, 2), blob(123221, 3), blob(123221, 4), blob(123221, 5)
	img := func(d []byte) *Biometric {
		return &Biometric{Width: 520, Height: 690, Format: 2, Length: 123221, Data: d}
	}
	code := func(d []byte) *Biometric { return &Biometric{Length: 123221, Data: d} }
	imgJSON := func(d []byte) string {
		return fmt.Sprintf(`{"width":520,"height":690,"format":2,"length":123221,"data":"%s"}`, b64(d))
	}
	codeJSON := func(d []byte) string { return fmt.Sprintf(`{"length":123221,"data":"%s"}`, b64(d)) }
	// simple is the golden of a message with only flat members after
	// the session id (members as written, want without mod and session).
	simple := func(name, mod, members string, want Message) golden {
		want.Mod, want.SessionID = mod, docSession
		return golden{
			name: mod + " " + name,
			in: `{
                 "mod":"` + mod + `",
                 "session_id":"de6a6236-db52-11e9-aaa8-00e04c110030",
                 ` + strings.ReplaceAll(members, ",", ",\n                 ") + `
             }`,
			want:    &want,
			encoded: `{"mod":"` + mod + `","session_id":"` + docSession + `",` + members + `}`,
		}
	}
	command := func(mod string) golden {
		return simple("request", mod, `"type":1,"command_type":2,"command_value":"test!"`, Message{Type: 1, CommandType: 2, CommandValue: "test!"})
	}
	ok := func(mod string) golden {
		return simple("response", mod, `"type":2,"code":0,"message":""`, Message{Type: 2, HasCode: true})
	}
	return []golden{
		{
			// The original says "set_device_info" here by mistake; the
			// corrected request names get_device_info.
			name: "get_device_info request",
			in: `{
                 "mod":"get_device_info",
                 "session_id":"de6a6236-db52-11e9-aaa8-00e04c110030",
                 "type":1
             }`,
			want:    &Message{Mod: ModGetDeviceInfo, SessionID: docSession, Type: 1},
			encoded: `{"mod":"get_device_info","session_id":"` + docSession + `","type":1}`,
		},
		{
			name: "get_device_info response",
			in: `{
                 "mod":"get_device_info",
                 "session_id":"de6a6236-db52-11e9-aaa8-00e04c110030",
                 "type":2,
                 "code":0,
                 "message":"",
                 "device_info":
	    			{
	    			"uuid":"31231412332",
	    			"device_ip":"192.168.1.156",
	    			"device_port":1545,
	    			"server_ip":"192.168.1.166",
	    			"server_port":49003,
	    			"address":"公司门口",
	    			"community_code":"1312312",
	    			"software_version":"V3.2.1",
	    			"hardware_version":"V5.8.9"
	    		 	}
             }`,
			want: &Message{Mod: ModGetDeviceInfo, SessionID: docSession, Type: 2, HasCode: true, DeviceInfo: &DeviceInfo{
				UUID: "31231412332", DeviceIP: "192.168.1.156", DevicePort: 1545, ServerIP: "192.168.1.166", ServerPort: 49003,
				Address: "公司门口", CommunityCode: "1312312", SoftwareVersion: "V3.2.1", HardwareVersion: "V5.8.9", Fields: AllDeviceFields,
			}},
			encoded: `{"mod":"get_device_info","session_id":"` + docSession + `","type":2,"code":0,"message":"","device_info":{"uuid":"31231412332","device_ip":"192.168.1.156","device_port":1545,"server_ip":"192.168.1.166","server_port":49003,"address":"公司门口","community_code":"1312312","software_version":"V3.2.1","hardware_version":"V5.8.9"}}`,
		},
		{
			name: "set_device_info request",
			in: `{
                 "mod":"set_device_info",
                 "session_id":"de6a6236-db52-11e9-aaa8-00e04c110030",
                 "type":1,
                 "device_info":
	    			{
	    			"uuid":"123119823234342",
	    			"device_ip":"192.168.1.156",
	    			"device_port":1545,
	    			"server_ip":"192.168.1.166",
	    			"server_port":39877,
	    			"address":"门口考勤机器",
	    			"community_code":"1312123312"
	    		 	}
             }`,
			want: &Message{Mod: ModSetDeviceInfo, SessionID: docSession, Type: 1, DeviceInfo: &DeviceInfo{
				UUID: "123119823234342", DeviceIP: "192.168.1.156", DevicePort: 1545, ServerIP: "192.168.1.166", ServerPort: 39877,
				Address: "门口考勤机器", CommunityCode: "1312123312",
				Fields: FieldUUID | FieldDeviceIP | FieldDevicePort | FieldServerIP | FieldServerPort | FieldAddress | FieldCommunityCode,
			}},
			encoded: `{"mod":"set_device_info","session_id":"` + docSession + `","type":1,"device_info":{"uuid":"123119823234342","device_ip":"192.168.1.156","device_port":1545,"server_ip":"192.168.1.166","server_port":39877,"address":"门口考勤机器","community_code":"1312123312"}}`,
		},
		ok(ModSetDeviceInfo),
		{
			name: "download_person request",
			in: `{
                 "mod":"download_person",
                 "session_id":"de6a6236-db52-11e9-aaa8-00e04c110030",
                 "type":1,
                 "person_info":
	    			{
	    			"person_id":"3413123123",
	    			"person_name":"张飒",
	    			"id_number":"1545123",
	    			"card_number":"123123123",
	    			"key_number":"1231233",
	    			"department_number":"111111111222",
	    			"role":12,
	    			"face":
	    				{
	    				"width":520,
	    				"height":690,
	    				"format":2,
	    				"length":123221,
	    				"data":"` + b64(face) + `"
	    				},
	    			"left_image":
	    				{
	    				"width":520,
	    				"height":690,
	    				"format":2,
	    				"length":123221,
	    				"data":"` + b64(leftImg) + `"
	    				},
	    			"left_code":
	    				{
	    				"length":123221,
	    				"data":"` + b64(leftCode) + `"
	    				},
	    			"right_image":
	    				{
	    				"width":520,
	    				"height":690,
	    				"format":2,
	    				"length":123221,
	    				"data":"` + b64(rightImg) + `"
	    				},
	    			"right_code":
	    				{
	    				"length":123221,
	    				"data":"` + b64(rightCode) + `"
	    				}
	    		 	}
             }`,
			want: &Message{Mod: ModDownloadPerson, SessionID: docSession, Type: 1, PersonInfo: &PersonInfo{
				PersonID: "3413123123", PersonName: "张飒", IDNumber: "1545123", CardNumber: "123123123", KeyNumber: "1231233",
				DepartmentNumber: "111111111222", Role: 12,
				Face: img(face), LeftImage: img(leftImg), LeftCode: code(leftCode), RightImage: img(rightImg), RightCode: code(rightCode),
			}},
			encoded: `{"mod":"download_person","session_id":"` + docSession + `","type":1,"person_info":{"person_id":"3413123123","person_name":"张飒","id_number":"1545123","card_number":"123123123","key_number":"1231233","department_number":"111111111222","role":12,` +
				`"face":` + imgJSON(face) + `,"left_image":` + imgJSON(leftImg) + `,"left_code":` + codeJSON(leftCode) + `,"right_image":` + imgJSON(rightImg) + `,"right_code":` + codeJSON(rightCode) + `}}`,
		},
		ok(ModDownloadPerson),
		{
			name: "upload_access_info request",
			in: `{
                 "mod":"upload_access_info",
                 "session_id":"de6a6236-db52-11e9-aaa8-00e04c110030",
                 "type":1,
                 "access_info":
	    			{
	    			"person_id":"3413123123",
	    			"time":"20190823123435",
	    			"id_number":"1545123",
	    			"card_number":"123123123",
	    			"role":12,
	    			"open_door_type":2,
	    			"in_out_type":2,
	    			"community_code":"1231321"
	    		 	}
             }`,
			want: &Message{Mod: ModUploadAccessInfo, SessionID: docSession, Type: 1, AccessInfo: &AccessInfo{
				PersonID: "3413123123", Time: "20190823123435", IDNumber: "1545123", CardNumber: "123123123",
				Role: 12, OpenDoorType: 2, InOutType: 2, CommunityCode: "1231321",
			}},
			encoded: `{"mod":"upload_access_info","session_id":"` + docSession + `","type":1,"access_info":{"person_id":"3413123123","time":"20190823123435","id_number":"1545123","card_number":"123123123","role":12,"open_door_type":2,"in_out_type":2,"community_code":"1231321"}}`,
		},
		ok(ModUploadAccessInfo),
		command(ModSendUserCommand),
		ok(ModSendUserCommand),
		command(ModSendDeviceCommand),
		ok(ModSendDeviceCommand),
	}
}

func TestGoldenVectors(t *testing.T) {
	for _, g := range goldens() {
		t.Run(g.name, func(t *testing.T) {
			m, err := Decode([]byte(g.in))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !reflect.DeepEqual(m, g.want) {
				t.Fatalf("Decode:\n got %s\nwant %s", summary(m), summary(g.want))
			}
			if err := m.Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
			if _, ok := fastDecode([]byte(g.in)); !ok {
				t.Error("the example does not take the fast decoder")
			}
			b, err := Marshal(m)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			if ref := referenceMarshal(m); !bytes.Equal(b, ref) {
				t.Fatalf("Marshal differs from encoding/json:\n got %s\nwant %s", clip(string(b)), clip(string(ref)))
			}
			if got := string(b); got != g.encoded+"\n" {
				t.Fatalf("Marshal:\n got %s\nwant %s", clip(got), clip(g.encoded))
			}
			// The framing reader finds exactly this object in the
			// pretty-printed original form.
			r := NewReader(strings.NewReader(g.in), 0)
			raw, err := r.ReadMessage()
			if err != nil || string(raw) != strings.TrimSpace(g.in) {
				t.Fatalf("ReadMessage = %q, %v", clip(string(raw)), err)
			}
		})
	}
}

// TestOriginalGetExample: the original's get example says set_device_info
// with no device_info; it must be recognisable as a get.
func TestOriginalGetExample(t *testing.T) {
	m, err := Decode([]byte(`{"mod":"set_device_info","session_id":"de6a6236-db52-11e9-aaa8-00e04c110030","type":1}`))
	if err != nil {
		t.Fatal(err)
	}
	if m.DeviceInfo != nil || !m.WantsDeviceInfo() {
		t.Fatalf("DeviceInfo = %v, WantsDeviceInfo = %v; want nil, true", m.DeviceInfo, m.WantsDeviceInfo())
	}
	m, _ = Decode([]byte(`{"mod":"set_device_info","session_id":"x","device_info":{"address":"A"}}`))
	if m.WantsDeviceInfo() {
		t.Fatal("set_device_info with a body wants the device info")
	}
	if !m.DeviceInfo.Has(FieldAddress) || m.DeviceInfo.Has(FieldServerPort) {
		t.Fatalf("Fields = %b; want only address", m.DeviceInfo.Fields)
	}
}

// TestOriginalExamplesAsWritten: the original's examples, mistakes
// included, are malformed JSON; decoding says so instead of guessing.
func TestOriginalExamplesAsWritten(t *testing.T) {
	for _, in := range []string{
		`{"mod":"send_user_command","session_id":"x","type":1,"command_type":2
          "command_value":"test!"}`,
		`{"mod":"download_person","session_id":"x","person_info":{"id_number":“1545123"}}`,
		`{"mod":"set_device_info","session_id":"x","device_info":{"community_code":"1",}}`,
	} {
		if _, err := Decode([]byte(in)); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "invalid JSON at byte") {
			t.Errorf("Decode(%.40q) = %v; want ErrMalformed naming the byte", in, err)
		}
	}
}

func TestDecodeLenient(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want *Message
	}{
		{"numeric strings", `{"mod":"set_device_info","session_id":"s","type":"1","device_info":{"device_port":"1545","server_port":" 49003 "}}`,
			&Message{Mod: ModSetDeviceInfo, SessionID: "s", Type: 1, DeviceInfo: &DeviceInfo{DevicePort: 1545, ServerPort: 49003, Fields: FieldDevicePort | FieldServerPort}}},
		{"ret and msg", `{"mod":"upload_access_info","session_id":"s","type":2,"ret":"-3","msg":"db down"}`,
			&Message{Mod: ModUploadAccessInfo, SessionID: "s", Type: 2, HasCode: true, Code: -3, Text: "db down"}},
		{"code wins over ret", `{"mod":"m","session_id":"s","ret":-1,"code":0,"msg":"x","message":"y"}`,
			&Message{Mod: "m", SessionID: "s", HasCode: true, Code: 0, Text: "y"}},
		{"unknown fields ignored", `{"mod":"m","session_id":"s","extra":{"a":[1,2,{"b":null}]},"n":1.5,"access_info":{"person_id":"p","camera":"x"}}`,
			&Message{Mod: "m", SessionID: "s", AccessInfo: &AccessInfo{PersonID: "p"}}},
		{"numbers for strings", `{"mod":"upload_access_info","session_id":123,"access_info":{"person_id":3413123123,"card_number":-7,"role":"12","time":20190823123435}}`,
			&Message{Mod: ModUploadAccessInfo, SessionID: "123", AccessInfo: &AccessInfo{PersonID: "3413123123", CardNumber: "-7", Role: 12, Time: "20190823123435"}}},
		{"nulls", `{"mod":"m","session_id":"s","type":null,"device_info":null,"command_value":null,"command_type":""}`,
			&Message{Mod: "m", SessionID: "s"}},
		{"integral floats", `{"mod":"m","session_id":"s","type":1.0,"command_type":2e0}`,
			&Message{Mod: "m", SessionID: "s", Type: 1, CommandType: 2}},
		{"person_ids as list and id", `{"mod":"remove_person","session_id":"s","person_ids":["a","b"],"person_id":"c"}`,
			&Message{Mod: ModRemovePerson, SessionID: "s", PersonIDs: []string{"a", "b"}, PersonID: "c"}},
		{"escapes", `{"mod":"m","session_id":"s","message":"a\"b\\c\u00e9","code":"0"}`,
			&Message{Mod: "m", SessionID: "s", HasCode: true, Text: "a\"b\\cé"}},
		{"escaped slash in base64", `{"mod":"download_person","session_id":"s","person_info":{"person_id":"p","left_code":{"length":"3","data":"\/\/\/\/"}}}`,
			&Message{Mod: ModDownloadPerson, SessionID: "s", PersonInfo: &PersonInfo{PersonID: "p", LeftCode: &Biometric{Length: 3, Data: []byte{0xff, 0xff, 0xff}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Decode([]byte(tt.in))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !reflect.DeepEqual(m, tt.want) {
				t.Fatalf("got  %s\nwant %s", summary(m), summary(tt.want))
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{`{"mod":"m","session_id":"s","type":"one"}`, `type: "one" is not a number`},
		{`{"mod":"m","session_id":"s","type":1.5}`, `type: 1.5 is not a number`},
		{`{"mod":"m","session_id":"s","type":99999999999999999999}`, `type: 99999999999999999999 is not a number`},
		{`{"mod":"m","session_id":"s","type":"99999999999999999999"}`, `is not a number`},
		{`{"mod":"m","session_id":"s","person_info":{"face":{"width":true}}}`, `person_info.face.width: true is not a number`},
		{`{"mod":"m","session_id":"s","person_info":{"face":{"data":12}}}`, `person_info.face.data: number is not base64 text`},
		{`{"mod":"m","session_id":"s","person_info":{"face":{"data":"@@@@"}}}`, `person_info.face.data: "@@@@" is not base64 text`},
		{`{"mod":"m","session_id":"s","person_info":{"left_code":{"data":true}}}`, `person_info.left_code.data: bool is not base64 text`},
		{`{"mod":"m","session_id":"s","device_info":"x"}`, `device_info: string is not an object`},
		{`{"mod":"remove_person","session_id":"s","person_ids":"42"}`, `person_ids: "42" is not a list`},
		{`{"mod":"m","session_id":"s","person_info":{"person_id":42.5}}`, `person_info.person_id: 42.5 is not a string`},
		{`{"mod":"m","session_id":"s","person_info":{"person_id":4e2}}`, `person_info.person_id: 4e2 is not a string`},
		{`{"mod":"m","session_id":"s","person_info":{"person_id":true}}`, `person_info.person_id: true is not a string`},
		{`{"mod":"m","session_id":"s","person_info":{"person_id":["42"]}}`, `person_info.person_id: ["42"] is not a string`},
		{`{"mod":"m","session_id":"s","command_value":{}}`, `command_value: {} is not a string`},
		{"{\"mod\":\"m\",\"session_id\":\"s\",\"person_info\":{\"person_id\":\"4\xff2\"}}", `person_info.person_id: invalid UTF-8`},
		{`{"mod":"m","session_id":"s","person_info":{"person_id":"4\ud8002"}}`, `person_info.person_id: lone UTF-16 surrogate \ud800`},
		{`{"mod":"m","session_id":"s","person_info":{"person_id":"\udc00"}}`, `person_info.person_id: lone UTF-16 surrogate \udc00`},
		{`{"mod":"m","session_id":"s","person_info":{"person_id":"4\u00002"}}`, `person_info.person_id: contains a NUL character`},
		{`{"mod":"m","session_id":"s","person_info":{"person_id":"42","person_id":"43"}}`, `person_info.person_id: the key appears twice`},
		{`{"mod":"m","session_id":"s","MOD":"n"}`, `MOD: the key appears twice`},
		{`{"mod":"m","session_id":"s","x":1,"x":2}`, `x: the key appears twice`},
		{`{"mod":"m","session_id":"s","x":[{"y":1,"y":1}]}`, `x[0].y: the key appears twice`},
		{`{"mod":{"a":1},"session_id":"s"}`, `mod: {"a":1} is not a string`},
		{`[1,2]`, `not an object`},
		{`{"mod":"m",}`, `invalid JSON at byte`},
		{``, `invalid JSON`},
	}
	for _, tt := range tests {
		_, err := Decode([]byte(tt.in))
		if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Decode(%s) = %v; want ErrMalformed containing %q", tt.in, err, tt.want)
		}
	}
}

func TestEncodeDocumentedForm(t *testing.T) {
	// A response read with ret/msg is written with code/message.
	m, err := Decode([]byte(`{"mod":"upload_access_info","session_id":"s","type":"2","ret":"0","msg":""}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Marshal(m)
	if want := `{"mod":"upload_access_info","session_id":"s","type":2,"code":0,"message":""}` + "\n"; string(b) != want {
		t.Fatalf("Marshal = %s; want %s", b, want)
	}
	// A request carries no code or message; a set_device_info writes only
	// the fields it names.
	req := NewRequest(ModSetDeviceInfo)
	req.SessionID = "s"
	req.DeviceInfo = &DeviceInfo{ServerPort: 39877, Address: "", Fields: FieldServerPort | FieldAddress}
	b, _ = Marshal(req)
	if want := `{"mod":"set_device_info","session_id":"s","type":1,"device_info":{"server_port":39877,"address":""}}` + "\n"; string(b) != want {
		t.Fatalf("Marshal = %s; want %s", b, want)
	}
	// Reply copies the envelope; extensions keep their names; HTML is not
	// escaped; an empty blob is "" not null.
	r := (&Message{Mod: ModRemovePerson, SessionID: "s<&>"}).Reply(CodeDatabase, "a<b")
	b, _ = Marshal(r)
	if want := `{"mod":"remove_person","session_id":"s<&>","type":2,"code":-3,"message":"a<b"}` + "\n"; string(b) != want {
		t.Fatalf("Marshal = %s; want %s", b, want)
	}
	ext := &Message{Mod: ModRemovePerson, SessionID: "s", Type: 1, PersonIDs: []string{"a", "b"}}
	b, _ = Marshal(ext)
	if want := `{"mod":"remove_person","session_id":"s","type":1,"person_ids":["a","b"]}` + "\n"; string(b) != want {
		t.Fatalf("Marshal = %s; want %s", b, want)
	}
	st := &Message{Mod: ModGetDeviceStatus, SessionID: "s", Type: 2, HasCode: true, DeviceStatus: &DeviceStatus{
		Link: "up", OutboxDepth: 3, OldestUnsent: "20260101000000", PersonsEnrolled: 10,
		Modules: []ModuleStatus{{Name: "card", State: "ok"}, {Name: "fingerprint", State: "fault", Detail: "no answer"}},
		Door:    "closed", SoftwareVersion: "v1", UptimeSeconds: 42,
	}}
	b, _ = Marshal(st)
	if want := `{"mod":"get_device_status","session_id":"s","type":2,"code":0,"message":"","device_status":{"link":"up","outbox_depth":3,"oldest_unsent":"20260101000000","persons_enrolled":10,"modules":[{"name":"card","state":"ok"},{"name":"fingerprint","state":"fault","detail":"no answer"}],"door":"closed","software_version":"v1","uptime_seconds":42}}` + "\n"; string(b) != want {
		t.Fatalf("Marshal = %s; want %s", b, want)
	}
	back, err := Decode(b)
	if err != nil || !reflect.DeepEqual(back, st) {
		t.Fatalf("round trip = %s, %v", summary(back), err)
	}
	empty := &Message{Mod: ModDownloadPerson, SessionID: "s", PersonInfo: &PersonInfo{PersonID: "p", LeftCode: &Biometric{}}}
	b, _ = Marshal(empty)
	if !bytes.Contains(b, []byte(`"left_code":{"length":0,"data":""}`)) {
		t.Fatalf("Marshal = %s; want an empty data string", b)
	}
	// json.Marshal and json.Unmarshal use the same forms.
	jb, err := r.MarshalJSON()
	if err != nil || string(jb)+"\n" != `{"mod":"remove_person","session_id":"s<&>","type":2,"code":-3,"message":"a<b"}`+"\n" {
		t.Fatalf("MarshalJSON = %s, %v", jb, err)
	}
	var u Message
	if err := u.UnmarshalJSON(jb); err != nil || !reflect.DeepEqual(&u, r) {
		t.Fatalf("UnmarshalJSON = %s, %v", summary(&u), err)
	}
}

func TestWriteMessage(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteMessage(&buf, &Message{Mod: "m", SessionID: "s", Type: 1}); err != nil {
		t.Fatal(err)
	}
	if got := buf.String(); got != `{"mod":"m","session_id":"s","type":1}`+"\n" {
		t.Fatalf("wrote %q", got)
	}
}

func TestValidate(t *testing.T) {
	person := func(p *PersonInfo) *Message { return &Message{Mod: ModDownloadPerson, SessionID: "s", PersonInfo: p} }
	tests := []struct {
		m    *Message
		want string // "" means valid
	}{
		{&Message{SessionID: "s"}, "mod is missing"},
		{&Message{Mod: "m"}, "session_id is missing"},
		{&Message{Mod: "unknown_mod", SessionID: "s"}, ""},
		{&Message{Mod: ModDownloadPerson, SessionID: "s"}, "person_info is missing"},
		{person(&PersonInfo{}), "person_info.person_id is missing"},
		{person(&PersonInfo{PersonID: "p", Face: &Biometric{Length: 123221, Data: make([]byte, 1200)}}), "person_info.face.length is 123221 but data decodes to 1200 bytes"},
		{person(&PersonInfo{PersonID: "p", RightCode: &Biometric{Length: 1}}), "person_info.right_code.length is 1 but data decodes to 0 bytes"},
		{person(&PersonInfo{PersonID: "p", LeftImage: &Biometric{Length: 2, Data: []byte{1, 2}}}), ""},
		{&Message{Mod: ModRemovePerson, SessionID: "s"}, "person_ids is missing or empty"},
		{&Message{Mod: ModRemovePerson, SessionID: "s", PersonID: "p"}, ""},
		{&Message{Mod: ModSetDeviceTime, SessionID: "s", Time: "yesterday"}, `time: "yesterday" is not a time`},
		{&Message{Mod: ModSetDeviceTime, SessionID: "s", Time: "20260127081500"}, ""},
		{&Message{Mod: ModDownloadPerson, SessionID: "s", HasCode: true}, ""},
	}
	for _, tt := range tests {
		err := tt.m.Validate()
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("Validate(%s) = %v; want nil", summary(tt.m), err)
		case tt.want != "" && (!errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("Validate(%s) = %v; want ErrInvalid with %q", summary(tt.m), err, tt.want)
		}
	}
}

func TestRemoveIDs(t *testing.T) {
	m := &Message{PersonIDs: []string{"a", "", "b", "a"}, PersonID: "b"}
	if got := m.RemoveIDs(); !reflect.DeepEqual(got, []string{"a", "b"}) {
		t.Fatalf("RemoveIDs = %q", got)
	}
	if !reflect.DeepEqual(m.PersonIDs, []string{"a", "", "b", "a"}) {
		t.Fatal("RemoveIDs modified PersonIDs")
	}
}

func TestTime(t *testing.T) {
	loc := time.FixedZone("CST", 8*3600)
	want := time.Date(2019, 8, 23, 12, 34, 35, 0, loc)
	for _, s := range []string{"20190823123435", "2019-8-23 12:34:35", "2019-08-23 12:34:35", " 20190823123435 "} {
		got, err := ParseTime(s, loc)
		if err != nil || !got.Equal(want) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	got, err := ParseTime("2019-8-23 4:3:5Z", loc)
	if want := time.Date(2019, 8, 23, 4, 3, 5, 0, time.UTC); err != nil || !got.Equal(want) {
		t.Errorf("ParseTime(Z) = %v, %v; want %v", got, err, want)
	}
	for _, s := range []string{"", "2019082312343", "20191323123435", "2019-8-23", "tomorrow"} {
		if _, err := ParseTime(s, loc); err == nil {
			t.Errorf("ParseTime(%q) succeeded", s)
		}
	}
	if got := FormatTime(want.In(time.UTC), loc); got != "20190823123435" {
		t.Errorf("FormatTime = %s", got)
	}
}

func TestRemoteErrorAndErrorf(t *testing.T) {
	cause := errors.New("disk full")
	err := Errorf(CodeDatabase, "store person %s: %w", "p", cause)
	var re *RemoteError
	if !errors.As(err, &re) || re.Code != CodeDatabase || re.Message != "store person p: disk full" || !errors.Is(err, cause) {
		t.Fatalf("Errorf = %#v", err)
	}
}

// summary prints a message without its blobs.
func summary(m *Message) string {
	if m == nil {
		return "<nil>"
	}
	c := *m
	s := fmt.Sprintf("%+v", c)
	if c.DeviceInfo != nil {
		s += fmt.Sprintf(" device_info=%+v", *c.DeviceInfo)
	}
	if c.AccessInfo != nil {
		s += fmt.Sprintf(" access_info=%+v", *c.AccessInfo)
	}
	if c.DeviceStatus != nil {
		s += fmt.Sprintf(" device_status=%+v", *c.DeviceStatus)
	}
	if p := c.PersonInfo; p != nil {
		s += fmt.Sprintf(" person=%s/%s", p.PersonID, p.PersonName)
		for _, b := range []*Biometric{p.Face, p.LeftImage, p.LeftCode, p.RightImage, p.RightCode} {
			if b != nil {
				s += fmt.Sprintf(" blob(%dx%d f%d len%d data%d)", b.Width, b.Height, b.Format, b.Length, len(b.Data))
			}
		}
	}
	return s
}

func clip(s string) string {
	if len(s) > 300 {
		return s[:300] + fmt.Sprintf("...(%d bytes)", len(s))
	}
	return s
}

// TestDecodeDoesNotAlias: the Reader reuses its buffer, so a decoded
// message must not point into the bytes it came from.
func TestDecodeDoesNotAlias(t *testing.T) {
	in := []byte(`{"mod":"download_person","session_id":"s","person_info":{"person_id":"p","person_name":"n","left_code":{"length":3,"data":"AQID"}}}`)
	m, err := Decode(in)
	if err != nil {
		t.Fatal(err)
	}
	for i := range in {
		in[i] = 'x'
	}
	p := m.PersonInfo
	if m.Mod != ModDownloadPerson || m.SessionID != "s" || p.PersonID != "p" || p.PersonName != "n" || !bytes.Equal(p.LeftCode.Data, []byte{1, 2, 3}) {
		t.Fatalf("decoded message changed with its input: %s", summary(m))
	}
}

// TestFastDecoderAgrees: on tricky inputs the reflection-free decoder
// either gives up or gives exactly what encoding/json gives.
func TestFastDecoderAgrees(t *testing.T) {
	inputs := []string{
		`{}`, ` { } `, `{"MOD":"a","Session_ID":"s","TYPE":1}`,
		`{"mod":"a","mod":"b"}`,
		`{"mod":"a","code":null,"ret":-2,"message":null,"msg":"m"}`,
		`{"mod":"a","ret":-2,"code":0,"msg":"m","message":""}`,
		`{"mod":"a","type":-0}`, `{"mod":"a","type":01}`, `{"mod":"a","type":1.0}`, `{"mod":"a","type":1e2}`,
		`{"mod":"a","type":9223372036854775807}`, `{"mod":"a","type":99999999999999999999}`,
		`{"mod":"a","type":"1"}`, `{"mod":1}`, `{"mod":true}`, `{"mod":null,"session_id":null}`,
		`{"mod":"张飒","x":"\u00e9"}`, `{"mod":"a\u00e9"}`, "{\"mod\":\"\xff\"}", "{\"mod\":\"a\tb\"}",
		`{"mod":"a"} x`, `{"mod":"a"}}`, `{"mod":"a",}`, `{"mod" "a"}`, `{"mod":"a"`,
		`{"x":[1,2.5,-3e-2,true,false,null,{"y":[]},"s",[[]]],"mod":"a"}`, `{"x":[1,]}`, `{"x":01}`, `{"x":1.}`, `{"x":tru}`,
		`{"person_ids":[],"device_info":{},"access_info":{},"person_info":{}}`,
		`{"person_ids":["a",null]}`, `{"person_ids":"a"}`, `{"person_ids":null,"device_info":null,"person_info":null}`,
		`{"device_info":{"device_port":null,"uuid":null,"address":""}}`,
		`{"device_info":{"server_port":"1"}}`, `{"device_info":{"uuid":"a","UUID":"b"}}`,
		`{"person_info":{"person_id":"p","face":{"data":""},"left_code":{"data":null},"right_code":{"length":3,"data":"AQID"}}}`,
		`{"person_info":{"face":{"data":"AQI"}}}`, `{"person_info":{"face":{"data":"AQ=="}}}`, `{"person_info":{"face":{"data":"A Q=="}}}`,
		`{"person_info":{"face":{"data":"\/w=="}}}`, `{"person_info":{"face":null,"role":"3"}}`,
		`{"device_status":{"link":"up"}}`, `{"access_info":{"role":2,"Role":3}}`,
		`{"mod":"a\"b\\c\/d\b\f\n\r\t"}`, `{"mod":"\u00e9\u4E2D"}`, `{"mod":"\ud83d\ude00"}`, `{"mod":"\ud83dX"}`,
		`{"mod":"\ud83d\u0041"}`, `{"mod":"\ude00"}`, `{"mod":"\ud83d\ud83d\ude00"}`, `{"mod":"\x"}`, `{"mod":"\u12"}`, `{"mod":"\u12G4"}`,
		"{\"mod\":\"\xff\\n\"}", `{"m\u006fd":"a"}`, `{"x":"\u0000","mod":"\u0000"}`, `{"person_ids":["\u00e9","a\/b"]}`,
		`{"person_info":{"face":{"data":"\/\/8="}}}`, `{"person_info":{"face":{"data":"\u0041QID"}}}`, `{"mod":"a\`,
		`[]`, `null`, `"x"`, ``, `{"a":{"b":{"c":{"d":{"e":{"f":{"g":{"h":{"i":{"j":{"k":{"l":{"m":{"n":{"o":{"p":{"q":{"r":{"s":{"t":{"u":{"v":{"w":{"x":{"y":{"z":{"A":{"B":{"C":{"D":{"E":{"F":{"G":1}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}`,
	}
	fast := 0
	for _, in := range inputs {
		want, wantErr := decodeSlow([]byte(in))
		got, err := Decode([]byte(in))
		if (err == nil) != (wantErr == nil) || !reflect.DeepEqual(got, want) {
			t.Errorf("Decode(%s) = %s, %v; encoding/json gives %s, %v", in, summary(got), err, summary(want), wantErr)
		}
		if _, ok := fastDecode([]byte(in)); ok {
			fast++
		}
	}
	if fast < 10 {
		t.Errorf("only %d inputs took the fast decoder", fast)
	}
}

// TestMarshalMatchesEncodingJSON: the hand-written encoder writes what
// encoding/json writes, escaping included.
func TestMarshalMatchesEncodingJSON(t *testing.T) {
	strs := []string{"", "plain", "公司门口", "q\"b\\s", "ctl\x00\x01\x1f\b\f\n\r\t", "<html>&amp;", "bad\xff\xfeutf8", "\u2028\u2029", "\x7f", "é\xc3"}
	for _, s := range strs {
		msgs := []*Message{
			{Mod: s, SessionID: s, Type: 1},
			(&Message{Mod: s, SessionID: s}).Reply(CodeDevice, s),
			{Mod: ModSendUserCommand, SessionID: s, CommandValue: s},
			{Mod: ModSendUserCommand, SessionID: s, HasCode: true},
			{Mod: "x", SessionID: "y", CommandType: -5, HasCode: true},
			{Mod: ModRemovePerson, PersonIDs: []string{s, s}, PersonID: s, Time: s},
			{Mod: ModSetDeviceInfo, DeviceInfo: &DeviceInfo{UUID: s, Address: s, DevicePort: -1, Fields: FieldUUID | FieldDevicePort | FieldHardwareVersion}},
			{Mod: ModGetDeviceInfo, DeviceInfo: &DeviceInfo{UUID: s, ServerPort: 65535}},
			{Mod: ModDownloadPerson, PersonInfo: &PersonInfo{PersonID: s, PersonName: s, Role: -3,
				Face: &Biometric{Width: 1, Height: 2, Format: 3, Length: 4, Data: []byte(s)}, RightCode: &Biometric{}, LeftImage: &Biometric{Data: []byte{}}}},
			{Mod: ModUploadAccessInfo, AccessInfo: &AccessInfo{PersonID: s, Time: s, CommunityCode: s, InOutType: 2}},
			{Mod: ModGetDeviceStatus, DeviceStatus: &DeviceStatus{Link: s, Modules: []ModuleStatus{{Name: s, State: s, Detail: s}, {Name: s}}, UptimeSeconds: 1 << 40}},
			{Mod: ModGetDeviceStatus, DeviceStatus: &DeviceStatus{}},
		}
		for _, m := range msgs {
			got, err := Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			if want := referenceMarshal(m); !bytes.Equal(got, want) {
				t.Errorf("Marshal(%s):\n got %s\nwant %s", summary(m), got, want)
			}
		}
	}
}

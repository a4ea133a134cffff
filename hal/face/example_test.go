package face_test

import (
	"fmt"

	"termagent/hal/face"
)

func ExampleFrame() {
	b, _ := face.Frame{MsgID: face.MsgVerify, Data: []byte{0, 10}}.MarshalBinary()
	fmt.Printf("% X\n", b)
	// Output: EF AA 12 00 02 00 0A 1A
}

// A Decoder skips noise and hands back whole frames; a reply carries the
// command it answers and a result.
func ExampleParseReply() {
	var d face.Decoder
	d.Write([]byte{0x00, 0x42, 0xEF, 0xAA, 0x00, 0x00, 0x03, 0x11, 0x00, 0x00, 0x12})
	f, _ := d.Next()
	r, err := face.ParseReply(f.Data)
	fmt.Printf("reply to 0x%02X: result %d, payload %v, %v\n", r.Cmd, r.Result, r.Payload, err)
	// Output: reply to 0x11: result 0, payload [0], <nil>
}

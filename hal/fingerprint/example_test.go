package fingerprint_test

import (
	"errors"
	"fmt"

	"termagent/hal/fingerprint"
)

func ExampleCommand() {
	b, _ := fingerprint.Command(fingerprint.DefaultAddress, fingerprint.CmdSearch, 1, 0, 0, 0, 200).MarshalBinary()
	fmt.Printf("% X\n", b)
	// Output: EF 01 FF FF FF FF 01 00 08 04 01 00 00 00 C8 00 D6
}

// A Decoder takes bytes as they come off the line: an R503's reset byte,
// then a search hit split across two reads.
func ExampleDecoder() {
	var d fingerprint.Decoder
	d.Write([]byte{0x55, 0xEF, 0x01, 0xFF, 0xFF, 0xFF})
	if _, err := d.Next(); errors.Is(err, fingerprint.ErrIncomplete) {
		fmt.Println("waiting for more bytes")
	}
	d.Write([]byte{0xFF, 0x07, 0x00, 0x07, 0x00, 0x00, 0x05, 0x00, 0x64, 0x00, 0x77})
	p, err := d.Next()
	fmt.Println(p.PID == fingerprint.PIDAck, fingerprint.Code(p.Content[0]), p.Content[1:], err)
	// Output:
	// waiting for more bytes
	// true ok (0x00) [0 5 0 100] <nil>
}

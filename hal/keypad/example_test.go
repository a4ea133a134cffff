package keypad_test

import (
	"fmt"

	"termagent/hal"
	"termagent/hal/keypad"
)

// What a serial keypad sends for the PIN 1234 and Enter (CR LF).
func ExampleDecoder() {
	var d keypad.Decoder
	for _, b := range []byte("1234\r\n") {
		if c, ok, _ := d.Push(b); ok {
			if c == hal.KeyEnter {
				fmt.Println("enter")
				continue
			}
			fmt.Printf("%c ", c)
		}
	}
	// Output: 1 2 3 4 enter
}

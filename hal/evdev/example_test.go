package evdev_test

import (
	"fmt"
	"time"

	"termagent/hal/evdev"
)

// A keyboard-wedge reader types 42 and Enter: the records (here built with
// Append, in the 32-bit layout) become the number.
func ExampleCardAssembler() {
	var records []byte
	at := time.Unix(1700000000, 0)
	for _, code := range []uint16{evdev.Key1 + 3, evdev.Key1 + 1, evdev.KeyEnter} {
		for _, v := range []int32{evdev.Press, evdev.Release} {
			records, _ = evdev.Append(records, evdev.Event{Time: at, Type: evdev.EvKey, Code: code, Value: v}, 16)
			records, _ = evdev.Append(records, evdev.Event{Time: at, Type: evdev.EvSyn}, 16)
		}
		at = at.Add(3 * time.Millisecond)
	}
	var a evdev.CardAssembler
	for ; len(records) >= 16; records = records[16:] {
		ev, _ := evdev.Decode(records, 16)
		if text, ok, _ := a.Push(ev); ok {
			fmt.Println(text)
		}
	}
	// Output: 42
}

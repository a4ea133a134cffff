package wiegand_test

import (
	"fmt"
	"time"

	"termagent/hal/wiegand"
)

// A Wiegand-26 frame and a 4-bit keypad key, as edges on D0/D1 two
// milliseconds apart, decoded.
func ExampleDecode() {
	var edges []wiegand.Edge
	at := time.Duration(0)
	for _, burst := range []string{"10110001111101001101011100", "1011"} {
		for _, bit := range burst {
			edges = append(edges, wiegand.Edge{Line: wiegand.Line(bit - '0'), At: at})
			at += 2 * time.Millisecond
		}
		at += 100 * time.Millisecond
	}
	for _, b := range wiegand.Decode(edges, 0) {
		switch b.Kind {
		case wiegand.KindCard:
			fmt.Printf("card, %d bits, % X\n", b.Bits, b.Data)
		case wiegand.KindKey:
			fmt.Printf("key %c\n", b.Key)
		}
	}
	// Output:
	// card, 26 bits, 63 E9 AE
	// key #
}

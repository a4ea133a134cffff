package card_test

import (
	"fmt"

	"termagent/hal/card"
)

// An EM4100 fob read by an RDM6300, written the ways servers expect.
func ExampleFormat_Apply() {
	frame := []byte("\x02010063E9AE25\x03")
	r, ok, _, err := card.DecodeRDM6300(frame)
	if !ok || err != nil {
		panic(err)
	}
	for _, f := range []card.Format{
		{}, // 10-digit decimal of the low 32 bits: the number printed on the fob
		{Style: card.Hex},
		{Style: card.Wiegand26, Separator: ","},
	} {
		s, _ := f.Apply(r)
		fmt.Println(s)
	}
	// Output:
	// 0006547886
	// 010063E9AE
	// 099,59822
}

package door_test

import (
	"fmt"

	"termagent/hal/door"
)

// The frames an LCUS-1 board understands.
func ExampleAppendLCUS() {
	fmt.Printf("% X\n", door.AppendLCUS(nil, 1, true))
	fmt.Printf("% X\n", door.AppendLCUS(nil, 1, false))
	// Output:
	// A0 01 01 A2
	// A0 01 00 A1
}

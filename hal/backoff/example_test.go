package backoff_test

import (
	"fmt"
	"time"

	"termagent/hal/backoff"
)

// The wait before each retry is drawn uniformly in (0, ceiling], and the
// ceiling doubles from Min up to Max.
func ExamplePolicy() {
	b := backoff.Policy{Min: time.Second, Max: time.Minute}
	for attempt := range 8 {
		fmt.Print(b.Ceiling(attempt), " ")
	}
	fmt.Println()
	// Output: 1s 2s 4s 8s 16s 32s 1m0s 1m0s
}

package feedback_test

import (
	"fmt"

	"termagent/hal/feedback"
)

func ExampleParsePattern() {
	deny, err := feedback.ParsePattern("100ms,100ms,100ms,100ms,100ms")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(len(deny), "steps:", deny)
	_, err = feedback.ParsePattern("forever")
	fmt.Println(err)
	// Output:
	// 5 steps: 100ms,100ms,100ms,100ms,100ms
	// feedback: bad pattern: "forever": "forever" is not a duration (e.g. 200ms)
}

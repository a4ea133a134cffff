package agent_test

import (
	"fmt"
	"time"

	"termagent/agent"
)

// The wait before each retry is drawn uniformly below a ceiling that
// doubles from Min up to Max. With Rand returning 0 the wait is the
// ceiling itself.
func ExampleBackoff() {
	b := agent.Backoff{Min: time.Second, Max: time.Minute, Rand: func() float64 { return 0 }}
	for attempt := range 8 {
		fmt.Print(b.Delay(attempt), " ")
	}
	fmt.Println()
	// Output: 1s 2s 4s 8s 16s 32s 1m0s 1m0s
}

// A zero Config is complete: every field takes its documented default.
func ExampleConfig_Validate() {
	cfg := agent.Config{Link: agent.LinkConfig{ServerAddress: "192.168.1.166:49003"}}
	fmt.Println(cfg.Validate())
	cfg.Upload.Window = 5000
	fmt.Println(cfg.Validate())
	// Output:
	// <nil>
	// agent: invalid configuration: Upload.Window: 5000 is outside 1..1024
}

package agent_test

import (
	"fmt"

	"termagent/agent"
)

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

package main

import (
	"context"
	"io"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// BenchmarkFleet runs a fleet of in-process terminals (agent + store +
// in-process card reader) against an in-process server for 5 s at
// 1 event/s each and reports the event-to-ack percentiles, against a
// one-terminal fleet measured in the same run (the ratio is what the load
// adds to the latency). Each iteration is one whole run; use
// -benchtime=1x. FLEET_N sets the fleet size (default 200).
func BenchmarkFleet(b *testing.B) {
	n := 200
	if s := os.Getenv("FLEET_N"); s != "" {
		if v, err := strconv.Atoi(s); err == nil && v > 0 {
			n = v
		}
	}
	run := func(terms int) fleetReport {
		rep, err := runFleet(context.Background(), fleetConfig{Terminals: terms, Rate: 1,
			Duration: 5 * time.Second, Dir: b.TempDir(), Logger: zerolog.Nop()}, io.Discard)
		if err != nil {
			b.Fatal(err)
		}
		return rep
	}
	base := run(1)
	var rep fleetReport
	for b.Loop() {
		rep = run(n)
	}
	b.ReportMetric(float64(n), "terminals")
	b.ReportMetric(float64(rep.Acked)/rep.Generating.Seconds(), "acks/s")
	b.ReportMetric(100*rep.ackRatio(), "%acked")
	b.ReportMetric(ms(rep.percentile(50)), "p50_ms")
	b.ReportMetric(ms(rep.percentile(99)), "p99_ms")
	b.ReportMetric(ms(base.percentile(99)), "baseline_p99_ms")
	if p := base.percentile(99); p > 0 {
		b.ReportMetric(float64(rep.percentile(99))/float64(p), "x_vs_baseline")
	}
	b.ReportMetric(rep.CPU.Seconds()/rep.Generating.Seconds(), "cores")
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

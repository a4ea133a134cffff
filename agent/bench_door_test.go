package agent_test

import (
	"context"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"termagent/agent"
	"termagent/hal/sim"
	"termagent/store"
)

// BenchmarkSwipeToRelayRecordFirst measures the latency from a card swipe
// written by the simulated reader to the simulated relay switching on,
// through the real card driver on a pseudo-terminal, the durable commit of
// the access record (synchronous=FULL, held until the relay has switched)
// and the real relay driver; the same-run baseline is the bare durable
// commit (EnqueueHeld) on the same database, which the access path now
// includes. The target is a p99 well under 100 ms.
func BenchmarkSwipeToRelayRecordFirst(b *testing.B) {
	swipes := benchSize(b, "AGENT_BENCH_SWIPES", 300, 50)
	var p50, p99, base50, base99 float64
	for range b.N {
		b.StopTimer()
		db := populatePersons(b, filepath.Join(b.TempDir(), "persons.db"), 100)
		srv := newCountingServer(b, swipes)
		h := newBenchRig(b)
		a, err := agent.New(agent.Config{Link: agent.LinkConfig{ServerAddress: srv.ln.Addr().String()},
			Access: agent.AccessConfig{DoorPulse: 5 * time.Millisecond}}, h.parts(db))
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- a.Run(ctx) }()
		relay := h.rig.Relay()
		lat := make([]float64, 0, swipes)
		b.StartTimer()
		for i := range swipes {
			before := relay.State().Switches
			start := time.Now()
			if err := h.rig.Card().Swipe(ctx, strconv.Itoa(1+i%100)); err != nil {
				b.Fatal(err)
			}
			if _, err := relay.Wait(ctx, func(s sim.RelayState) bool { return s.Switches > before }); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, float64(time.Since(start))/float64(time.Millisecond))
			if _, err := relay.Wait(ctx, func(s sim.RelayState) bool { return s.Switches >= before+2 && !s.On }); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		if st := a.Status(ctx); st.Modules["database"].State != agent.ModuleOK || st.RecordsPending != 0 {
			b.Fatalf("the store failed during the run (the door did not wait for it): %+v", st)
		}
		cancel()
		<-done
		base := make([]float64, 0, swipes)
		for range swipes {
			start := time.Now()
			rec, err := db.EnqueueHeld(context.Background(), store.Record{Body: []byte(`{"mod":"upload_access_info"}`)}, time.Minute)
			if err != nil {
				b.Fatal(err)
			}
			base = append(base, float64(time.Since(start))/float64(time.Millisecond))
			if err := db.Ack(context.Background(), rec.ID); err != nil {
				b.Fatal(err)
			}
		}
		p50, p99 = percentile(lat, 50), percentile(lat, 99)
		base50, base99 = percentile(base, 50), percentile(base, 99)
	}
	b.ReportMetric(p50, "p50_ms")
	b.ReportMetric(p99, "p99_ms")
	b.ReportMetric(base50, "commit_p50_ms")
	b.ReportMetric(base99, "commit_p99_ms")
	b.ReportMetric(p99/base99, "x_vs_commit")
}

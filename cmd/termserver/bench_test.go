package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"termagent/protocol"
)

// BenchmarkUpload measures uploads through the server (16 terminals on
// TCP, each with 8 calls in flight, as the agent's default window) against
// the same number of bare Records.Add calls measured first in the same run
// (sub-benchmark "baseline"): x_vs_baseline is the cost of the protocol,
// the connection and the handler over the database alone.
func BenchmarkUpload(b *testing.B) {
	const terms, window = 16, 8
	var baseNsPerOp float64
	b.Run("baseline", func(b *testing.B) {
		r, err := OpenRecords(filepath.Join(b.TempDir(), "r.db"), false)
		if err != nil {
			b.Fatal(err)
		}
		defer r.Close()
		var next atomic.Int64
		b.ResetTimer()
		parallel(terms*window, func() bool {
			n := next.Add(1)
			if n > int64(b.N) {
				return false
			}
			if _, err := r.Add(context.Background(), Record{SessionID: strconv.FormatInt(n, 10), Terminal: "T"}); err != nil {
				b.Error(err)
				return false
			}
			return true
		})
		b.StopTimer()
		baseNsPerOp = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		b.ReportMetric(1e9/baseNsPerOp, "adds/s")
	})
	b.Run("server", func(b *testing.B) {
		s, err := NewServer(context.Background(), Config{Listen: "127.0.0.1:0", DB: filepath.Join(b.TempDir(), "s.db")})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.Run(ctx) }()
		defer func() { cancel(); <-done }()
		peers := make([]*protocol.Peer, terms)
		for i := range peers {
			conn, err := protocol.Dial(ctx, protocol.DialConfig{Address: s.Addr("tcp")})
			if err != nil {
				b.Fatal(err)
			}
			mux := protocol.NewMux()
			uuid := fmt.Sprint("bench-", i)
			mux.HandleFunc(protocol.ModGetDeviceInfo, func(ctx context.Context, req *protocol.Message) (*protocol.Message, error) {
				resp := req.Reply(protocol.CodeOK, "")
				resp.DeviceInfo = &protocol.DeviceInfo{UUID: uuid}
				return resp, nil
			})
			peers[i] = protocol.NewPeer(conn, protocol.PeerConfig{Handler: mux})
			go peers[i].Run(ctx)
		}
		var next atomic.Int64
		b.ResetTimer()
		parallel(terms*window, func() bool {
			n := next.Add(1)
			if n > int64(b.N) {
				return false
			}
			if _, err := peers[n%terms].Call(ctx, uploadReq("u-"+strconv.FormatInt(n, 10), "p")); err != nil {
				b.Error(err)
				return false
			}
			return true
		})
		b.StopTimer()
		perOp := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		b.ReportMetric(1e9/perOp, "uploads/s")
		if baseNsPerOp > 0 {
			b.ReportMetric(perOp/baseNsPerOp, "x_vs_baseline")
		}
	})
}

// parallel runs step in n goroutines until each returns false.
func parallel(n int, step func() bool) {
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for step() {
			}
		})
	}
	wg.Wait()
}

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
	run := func(terms int) FleetReport {
		rep, err := RunFleet(context.Background(), FleetConfig{Terminals: terms, Rate: 1,
			Duration: 5 * time.Second, Dir: b.TempDir(), Logger: zerolog.Nop()}, io.Discard)
		if err != nil {
			b.Fatal(err)
		}
		return rep
	}
	base := run(1)
	var rep FleetReport
	for b.Loop() {
		rep = run(n)
	}
	b.ReportMetric(float64(n), "terminals")
	b.ReportMetric(float64(rep.Acked)/rep.Generating.Seconds(), "acks/s")
	b.ReportMetric(100*rep.AckRatio(), "%acked")
	b.ReportMetric(ms(rep.Percentile(50)), "p50_ms")
	b.ReportMetric(ms(rep.Percentile(99)), "p99_ms")
	b.ReportMetric(ms(base.Percentile(99)), "baseline_p99_ms")
	if p := base.Percentile(99); p > 0 {
		b.ReportMetric(float64(rep.Percentile(99))/float64(p), "x_vs_baseline")
	}
	b.ReportMetric(rep.CPU.Seconds()/rep.Generating.Seconds(), "cores")
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

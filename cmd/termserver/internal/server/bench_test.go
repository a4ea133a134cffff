package server_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"termagent/cmd/termserver/internal/recordstore"
	"termagent/cmd/termserver/internal/server"
	"termagent/cmd/termserver/internal/servertest"
	"termagent/protocol"
)

// BenchmarkUpload measures uploads through the server (16 terminals on
// TCP, each with 8 calls in flight, as the agent's default window) against
// the same number of bare recordstore.Store.Add calls measured first in the same run
// (sub-benchmark "baseline"): x_vs_baseline is the cost of the protocol,
// the connection and the handler over the database alone.
func BenchmarkUpload(b *testing.B) {
	const terms, window = 16, 8
	var baseNsPerOp float64
	b.Run("baseline", func(b *testing.B) {
		r, err := recordstore.Open(filepath.Join(b.TempDir(), "r.db"), false)
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
			if _, err := r.Add(context.Background(), recordstore.Record{SessionID: strconv.FormatInt(n, 10), Terminal: "T"}); err != nil {
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
		s, err := server.New(context.Background(), server.Config{Listen: "127.0.0.1:0", DB: filepath.Join(b.TempDir(), "s.db")})
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
			if _, err := peers[n%terms].Call(ctx, servertest.Upload("u-"+strconv.FormatInt(n, 10), "p")); err != nil {
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

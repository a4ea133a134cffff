package protocol

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Benchmarks print their figures with a ratio against a baseline measured
// in the same run, x_vs_baseline. Run with `make bench`.
//
//   - Codec and Reader benchmarks: time ratio, ours/baseline (lower is
//     better; the download_person goal is <= 1.5).
//   - BenchmarkPeerRoundTrip: rate ratio, our calls/s over the bare echo's
//     messages/s (higher is better; the goal at 64 in flight is >= 0.5).
//
// allocs/op is the allocations per message for the codec benchmarks and
// per round trip (both peers, request and response) for the peer.

// bareDownload mirrors download_person as a plain tagged struct (with
// wirePersonOut, reference_test.go's mirror of person_info): the baseline
// is bare encoding/json on it.
type bareDownload struct {
	Mod        string         `json:"mod"`
	SessionID  string         `json:"session_id"`
	Type       int            `json:"type"`
	PersonInfo *wirePersonOut `json:"person_info"`
}

// downloadPerson1MiB returns an encoded download_person of about 1 MiB:
// five blobs of 150 KiB each, as PROTOCOL.md sizes it.
func downloadPerson1MiB(tb testing.TB) []byte {
	const n = 150 << 10
	img := func(seed byte) *Biometric {
		return &Biometric{Width: 520, Height: 690, Format: 2, Length: n, Data: blob(n, seed)}
	}
	code := func(seed byte) *Biometric { return &Biometric{Length: n, Data: blob(n, seed)} }
	m := &Message{Mod: ModDownloadPerson, SessionID: docSession, Type: 1, PersonInfo: &PersonInfo{
		PersonID: "3413123123", PersonName: "张飒", IDNumber: "1545123", CardNumber: "123123123", KeyNumber: "1231233",
		DepartmentNumber: "111111111222", Role: 12, Face: img(1), LeftImage: img(2), LeftCode: code(3), RightImage: img(4), RightCode: code(5),
	}}
	b, err := Marshal(m)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// compare runs baseline and subject b.N times each, alternating in blocks
// so that both see the same machine load (testing.Benchmark cannot run
// inside a benchmark), with the timer stopped for the baseline. It reports
// the baseline's time per op and the ratio subject/baseline.
func compare(b *testing.B, baseline, subject func()) {
	b.ReportAllocs()
	b.ResetTimer()
	var base time.Duration
	for _, n := range blocks(b.N) {
		b.StopTimer()
		start := time.Now()
		for range n {
			baseline()
		}
		base += time.Since(start)
		b.StartTimer()
		for range n {
			subject()
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(base.Nanoseconds())/float64(b.N), "baseline_ns/op")
	b.ReportMetric(float64(b.Elapsed())/float64(base), "x_vs_baseline")
}

// blocks splits n iterations into up to 8 blocks.
func blocks(n int) []int {
	k := min(n, 8)
	out := make([]int, k)
	for i := range out {
		out[i] = n / k
	}
	out[0] += n % k
	return out
}

// BenchmarkDownloadPersonCodec: decode + encode of a 1 MiB download_person
// with Decode and Marshal, against json.Unmarshal + json.Marshal on the
// plain struct. Goal: within 1.5x.
func BenchmarkDownloadPersonCodec(b *testing.B) {
	enc := downloadPerson1MiB(b)
	b.SetBytes(int64(len(enc)))
	benchCodec[bareDownload](b, enc)
}

// benchCodec compares Decode + Marshal of enc with json.Unmarshal +
// json.Marshal of the plain struct T.
func benchCodec[T any](b *testing.B, enc []byte) {
	compare(b, func() {
		var m T
		if err := json.Unmarshal(enc, &m); err != nil {
			b.Fatal(err)
		}
		if _, err := json.Marshal(&m); err != nil {
			b.Fatal(err)
		}
	}, func() {
		m, err := Decode(enc)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Marshal(m); err != nil {
			b.Fatal(err)
		}
	})
}

// BenchmarkSmallMessageCodec: decode + encode of one upload_access_info
// (allocs/op is the allocations per message), against bare encoding/json.
func BenchmarkSmallMessageCodec(b *testing.B) {
	enc := []byte(`{"mod":"upload_access_info","session_id":"de6a6236-db52-11e9-aaa8-00e04c110030","type":1,"access_info":{"person_id":"3413123123","time":"20190823123435","id_number":"1545123","card_number":"123123123","role":12,"open_door_type":2,"in_out_type":2,"community_code":"1231321"}}`)
	type bareAccess struct {
		Mod        string `json:"mod"`
		SessionID  string `json:"session_id"`
		Type       int    `json:"type"`
		AccessInfo *struct {
			PersonID      string `json:"person_id"`
			Time          string `json:"time"`
			IDNumber      string `json:"id_number"`
			CardNumber    string `json:"card_number"`
			Role          int    `json:"role"`
			OpenDoorType  int    `json:"open_door_type"`
			InOutType     int    `json:"in_out_type"`
			CommunityCode string `json:"community_code"`
		} `json:"access_info"`
	}
	benchCodec[bareAccess](b, enc)
}

// BenchmarkReader: framing a stream of 1000 small messages (allocs/op is
// per 1000 messages), against json.Decoder reading the same stream into
// json.RawMessage (the obvious alternative, which frames by parsing).
func BenchmarkReader(b *testing.B) {
	one := []byte(`{"mod":"upload_access_info","session_id":"de6a6236-db52-11e9-aaa8-00e04c110030","type":2,"code":0,"message":""}` + "\n")
	benchReader(b, bytes.Repeat(one, 1000), 1000)
}

// BenchmarkReaderDownloadPerson: framing one 1 MiB download_person.
func BenchmarkReaderDownloadPerson(b *testing.B) {
	benchReader(b, downloadPerson1MiB(b), 1)
}

func benchReader(b *testing.B, stream []byte, n int) {
	b.SetBytes(int64(len(stream)))
	compare(b, func() {
		d := json.NewDecoder(bytes.NewReader(stream))
		for range n {
			var raw json.RawMessage
			if err := d.Decode(&raw); err != nil {
				b.Fatal(err)
			}
		}
	}, func() {
		r := NewReader(bytes.NewReader(stream), 0)
		for range n {
			if _, err := r.ReadMessage(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkPeerRoundTrip: upload_access_info calls answered code 0 over
// loopback TCP, with 1 and with 64 calls in flight, against a bare TCP
// echo of the same request bytes with the same number in flight. Goal at
// 64: at least half the echo rate (x_vs_baseline >= 0.5).
func BenchmarkPeerRoundTrip(b *testing.B) {
	req := NewRequest(ModUploadAccessInfo)
	req.SessionID = "de6a6236-db52-11e9-aaa8-00e04c110030"
	req.AccessInfo = &AccessInfo{PersonID: "3413123123", Time: "20190823123435", IDNumber: "1545123", CardNumber: "123123123", Role: 12, OpenDoorType: 2, InOutType: 2, CommunityCode: "1231321"}
	reqBytes, err := Marshal(req)
	if err != nil {
		b.Fatal(err)
	}
	for _, inFlight := range []int{1, 64} {
		b.Run(map[int]string{1: "inflight=1", 64: "inflight=64"}[inFlight], func(b *testing.B) {
			srv, cli := benchPair(b)
			defer srv.Close()
			defer cli.Close()
			echo := newEcho(b)
			defer echo.Close()
			b.ReportAllocs()
			b.ResetTimer()
			var echoTime, peerTime, echoCPU, peerCPU time.Duration
			for _, n := range blocks(b.N) {
				b.StopTimer()
				cpu := cpuTime()
				echoTime += echo.run(b, reqBytes, inFlight, n)
				echoCPU += cpuTime() - cpu
				b.StartTimer()
				cpu = cpuTime()
				start := time.Now()
				var wg sync.WaitGroup
				work := make(chan struct{}, n)
				for range n {
					work <- struct{}{}
				}
				close(work)
				for range min(inFlight, n) {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for range work {
							m := NewRequest(ModUploadAccessInfo)
							m.AccessInfo = req.AccessInfo
							if _, err := cli.Call(context.Background(), m); err != nil {
								b.Error(err)
								return
							}
						}
					}()
				}
				wg.Wait()
				peerTime += time.Since(start)
				peerCPU += cpuTime() - cpu
			}
			b.StopTimer()
			rate := float64(b.N) / peerTime.Seconds()
			echoRate := float64(b.N) / echoTime.Seconds()
			b.ReportMetric(rate, "calls/s")
			b.ReportMetric(echoRate, "echo_msgs/s")
			b.ReportMetric(rate/echoRate, "x_vs_baseline")
			// CPU per message is steadier than rates on a busy machine.
			b.ReportMetric(float64(peerCPU.Nanoseconds())/float64(b.N), "cpu_ns/call")
			b.ReportMetric(float64(echoCPU.Nanoseconds())/float64(b.N), "echo_cpu_ns/msg")
		})
	}
}

// benchPair connects two Peers over loopback TCP; the server answers every
// request with a bare success.
func benchPair(b *testing.B) (srv, cli *Peer) {
	ln, err := Listen(context.Background(), ListenConfig{Address: "127.0.0.1:0"})
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	cc, err := Dial(context.Background(), DialConfig{Address: ln.Addr().String()})
	if err != nil {
		b.Fatal(err)
	}
	sc := <-accepted
	ok := HandlerFunc(func(context.Context, *Message) (*Message, error) { return nil, nil })
	srv = NewPeer(sc, PeerConfig{Handler: ok, MaxInFlight: 64})
	cli = NewPeer(cc, PeerConfig{})
	go srv.Run(context.Background())
	go cli.Run(context.Background())
	return srv, cli
}

// echo is a bare TCP echo on loopback: the server is io.Copy.
type echo struct {
	ln net.Listener
	c  net.Conn
}

func newEcho(b *testing.B) *echo {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.Copy(c, c)
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	return &echo{ln: ln, c: c}
}

func (e *echo) Close() {
	e.c.Close()
	e.ln.Close()
}

// run writes msg n times and reads the same bytes back, with inFlight
// messages outstanding (one writer and one reader goroutine, pipelined),
// and returns the time taken.
func (e *echo) run(b *testing.B, msg []byte, inFlight, n int) time.Duration {
	window := make(chan struct{}, inFlight)
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		buf := make([]byte, len(msg))
		for range n {
			if _, err := io.ReadFull(e.c, buf); err != nil {
				done <- err
				return
			}
			<-window
		}
		done <- nil
	}()
	for range n {
		window <- struct{}{}
		if _, err := e.c.Write(msg); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}

// cpuTime returns the CPU time (user and system) the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

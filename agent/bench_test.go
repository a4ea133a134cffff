package agent_test

// Benchmarks of the agent (make bench). Sizes are the defaults below
// unless -short or an environment variable makes them smaller:
//
//	AGENT_BENCH_RECORDS          backlog drained without added delay (default 100000; -short 5000)
//	AGENT_BENCH_DELAYED_RECORDS  backlog drained through the 20 ms proxy (default 1000; -short 200):
//	                             100,000 records at window 1 and 20 ms would take 33 minutes
//	AGENT_BENCH_PERSONS          persons enrolled for the swipe-to-door latency (default 50000; -short 5000)
//	AGENT_BENCH_SWIPES           swipes measured (default 300; -short 50)
//	AGENT_BENCH_DOWNLOADS        download_person requests measured (default 40; -short 10)
//
// Each benchmark reports its own figures and a ratio against a baseline
// measured in the same run (x_vs_baseline).

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"termagent/agent"
	"termagent/hal/sim"
	"termagent/protocol"
	"termagent/store"
)

func benchSize(b *testing.B, env string, def, short int) int {
	if v := os.Getenv(env); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("%s=%q is not a positive number", env, v)
		}
		return n
	}
	if testing.Short() {
		return short
	}
	return def
}

// delayProxy forwards TCP connections to target, holding every chunk of
// bytes back for delay in each direction (so the round trip gains
// 2·delay) while keeping the stream pipelined.
type delayProxy struct {
	ln     net.Listener
	target string
	delay  time.Duration
	wg     sync.WaitGroup
}

func newDelayProxy(tb testing.TB, target string, rtt time.Duration) *delayProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &delayProxy{ln: ln, target: target, delay: rtt / 2}
	p.wg.Go(p.accept)
	tb.Cleanup(func() { ln.Close(); p.wg.Wait() })
	return p
}

func (p *delayProxy) addr() string { return p.ln.Addr().String() }

func (p *delayProxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.wg.Go(func() { p.pump(c, s) })
		p.wg.Go(func() { p.pump(s, c) })
	}
}

type chunk struct {
	b  []byte
	at time.Time
}

// pump copies src to dst, each chunk delivered delay after it was read.
func (p *delayProxy) pump(src, dst net.Conn) {
	defer dst.Close()
	defer src.Close()
	q := make(chan chunk, 4096)
	go func() {
		defer close(q)
		for {
			buf := make([]byte, 32<<10)
			n, err := src.Read(buf)
			if n > 0 {
				q <- chunk{buf[:n], time.Now().Add(p.delay)}
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range q {
		if d := time.Until(c.at); d > 0 {
			time.Sleep(d) // the proxy's job is to delay; no test waits on it
		}
		if _, err := dst.Write(c.b); err != nil {
			go func() { io.Copy(io.Discard, src) }()
			for range q {
			}
			return
		}
	}
}

// countingServer accepts connections and acknowledges every upload,
// counting them; done is closed when want uploads have arrived.
type countingServer struct {
	ln    *protocol.Listener
	n     atomic.Int64
	want  int64
	done  chan struct{}
	once  sync.Once
	peers chan *protocol.Peer
}

func newCountingServer(b *testing.B, want int) *countingServer {
	ctx, cancel := context.WithCancel(context.Background())
	ln, err := protocol.Listen(ctx, protocol.ListenConfig{Address: "127.0.0.1:0"})
	if err != nil {
		b.Fatal(err)
	}
	s := &countingServer{ln: ln, want: int64(want), done: make(chan struct{}), peers: make(chan *protocol.Peer, 4)}
	mux := protocol.NewMux()
	mux.HandleFunc(protocol.ModUploadAccessInfo, func(ctx context.Context, req *protocol.Message) (*protocol.Message, error) {
		if s.n.Add(1) == s.want {
			s.once.Do(func() { close(s.done) })
		}
		return nil, nil
	})
	mux.HandleFunc(protocol.ModSendDeviceCommand, func(ctx context.Context, req *protocol.Message) (*protocol.Message, error) {
		return nil, nil
	})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p := protocol.NewPeer(c, protocol.PeerConfig{Handler: mux, MaxInFlight: 64})
			wg.Go(func() { p.Run(ctx) })
			select {
			case s.peers <- p:
			default:
			}
		}
	})
	b.Cleanup(func() { cancel(); ln.Close(); wg.Wait() })
	return s
}

func benchRecord(i int) *protocol.Message {
	m := protocol.NewRequest(protocol.ModUploadAccessInfo)
	m.AccessInfo = &protocol.AccessInfo{PersonID: fmt.Sprintf("person-%06d", i%50000), Time: "20260101120000",
		IDNumber: "110101199001011234", CardNumber: fmt.Sprintf("%010d", i), Role: 1, OpenDoorType: 1, InOutType: 1, CommunityCode: "1312123312"}
	return m
}

// fillOutbox enqueues n access records (as the access path writes them)
// with 64 concurrent writers.
func fillOutbox(b *testing.B, db *store.DB, n int) {
	ctx := context.Background()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				body, err := protocol.Marshal(benchRecord(i))
				if err == nil {
					_, err = db.Enqueue(ctx, store.Record{Body: body})
				}
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// bareRate measures the protocol layer alone: n upload_access_info calls
// with window calls in flight from a plain Peer to srv at addr.
func bareRate(b *testing.B, addr string, srv *countingServer, n, window int) float64 {
	ctx := context.Background()
	conn, err := protocol.Dial(ctx, protocol.DialConfig{Address: addr})
	if err != nil {
		b.Fatal(err)
	}
	peer := protocol.NewPeer(conn, protocol.PeerConfig{})
	go peer.Run(ctx)
	defer peer.Close()
	bodies := make([][]byte, n)
	for i := range bodies {
		bodies[i], _ = protocol.Marshal(benchRecord(i))
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range window {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				// Decode like the uploader does, so the baseline carries
				// the same message work.
				m, err := protocol.Decode(bodies[i])
				if err == nil {
					_, err = peer.Call(ctx, m)
				}
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return float64(n) / time.Since(start).Seconds()
}

// BenchmarkBacklogDrain drains a backlog of access records to a loopback
// server with window 1 and 32, directly and through a proxy adding 20 ms
// of round trip, and reports records/s and the ratio to the protocol
// layer's bare rate for the same window and path (x_vs_baseline).
func BenchmarkBacklogDrain(b *testing.B) {
	for _, delay := range []time.Duration{0, 20 * time.Millisecond} {
		for _, window := range []int{1, 32} {
			b.Run(fmt.Sprintf("window=%d/rtt=%v", window, delay), func(b *testing.B) {
				n := benchSize(b, "AGENT_BENCH_RECORDS", 100000, 5000)
				if delay > 0 {
					n = benchSize(b, "AGENT_BENCH_DELAYED_RECORDS", 1000, 200)
				}
				var agentRate, bare float64
				for range b.N {
					agentRate, bare = drainOnce(b, n, window, delay)
				}
				b.ReportMetric(float64(n), "records")
				b.ReportMetric(agentRate, "records/s")
				b.ReportMetric(bare, "baseline_calls/s")
				b.ReportMetric(agentRate/bare, "x_vs_baseline")
			})
		}
	}
}

func drainOnce(b *testing.B, n, window int, delay time.Duration) (agentRate, bare float64) {
	b.StopTimer()
	dir := b.TempDir()
	db, err := store.Open(context.Background(), filepath.Join(dir, "bench.db"), store.Config{OutboxCapacity: n + 1})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	fillOutbox(b, db, n)

	// The baseline runs before and after the drain (up to 20,000 calls
	// each) and is their mean, so a change in the machine's load during
	// the run weighs on both sides of the ratio.
	nb := min(n, 20000)
	baseSrv := newCountingServer(b, 2*nb)
	baseAddr := baseSrv.ln.Addr().String()
	if delay > 0 {
		baseAddr = newDelayProxy(b, baseAddr, delay).addr()
	}
	bare = bareRate(b, baseAddr, baseSrv, nb, window)
	defer func() { bare = (bare + bareRate(b, baseAddr, baseSrv, nb, window)) / 2 }()

	srv := newCountingServer(b, n)
	addr := srv.ln.Addr().String()
	if delay > 0 {
		addr = newDelayProxy(b, addr, delay).addr()
	}
	a, err := agent.New(agent.Config{Link: agent.LinkConfig{ServerAddress: addr}, Upload: agent.UploadConfig{Window: window}},
		agent.Parts{Store: db})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	b.StartTimer()
	start := time.Now()
	go func() { done <- a.Run(ctx) }()
	// The deadline catches a hang; it is far above any plausible drain.
	limit := time.Duration(n) * (2*delay + 10*time.Millisecond)
	limit = max(limit, 2*time.Minute)
	select {
	case <-srv.done:
	case <-time.After(limit):
		st := a.Status(ctx)
		b.Fatalf("drain did not finish in %v: server got %d of %d, status %+v", limit, srv.n.Load(), n, st)
	}
	for a.Status(ctx).OutboxDepth > 0 { // the last acks
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	cancel()
	<-done
	return float64(n) / elapsed.Seconds(), bare
}

// populatePersons stores n persons with cards 1..n, quickly (no fsync
// per commit), then reopens the database with full durability.
func populatePersons(b *testing.B, path string, n int) *store.DB {
	ctx := context.Background()
	fast, err := store.Open(ctx, path, store.Config{Durability: store.DurabilityNoFsync})
	if err != nil {
		b.Fatal(err)
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				i := int(next.Add(1))
				if i > n {
					return
				}
				id := fmt.Sprintf("p%06d", i)
				tx, err := fast.BeginPerson(ctx, id)
				if err == nil {
					err = tx.Put(store.Person{PersonID: id, Name: id, CardNumber: cardNumber(i), IDNumber: "ID" + id})
					if err == nil {
						err = tx.Commit(ctx)
					}
					tx.Rollback()
				}
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	fast.Close()
	db, err := store.Open(ctx, path, store.Config{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return db
}

// BenchmarkSwipeToDoor measures the latency from a card swipe written by
// the simulated reader to the simulated relay switching on, through the
// real card and relay drivers on pseudo-terminals and the agent, with
// AGENT_BENCH_PERSONS persons enrolled; the baseline is the same with one
// person enrolled.
func BenchmarkSwipeToDoor(b *testing.B) {
	persons := benchSize(b, "AGENT_BENCH_PERSONS", 50000, 5000)
	swipes := benchSize(b, "AGENT_BENCH_SWIPES", 300, 50)
	var p50, p99, base99 float64
	for range b.N {
		base := swipeLatencies(b, 1, swipes)
		lat := swipeLatencies(b, persons, swipes)
		p50, p99, base99 = percentile(lat, 50), percentile(lat, 99), percentile(base, 99)
	}
	b.ReportMetric(float64(persons), "persons")
	b.ReportMetric(p50, "p50_ms")
	b.ReportMetric(p99, "p99_ms")
	b.ReportMetric(base99, "baseline_p99_ms")
	b.ReportMetric(p99/base99, "x_vs_baseline")
}

func percentile(ms []float64, p int) float64 {
	s := slices.Clone(ms)
	slices.Sort(s)
	i := (len(s)*p+99)/100 - 1
	return s[max(i, 0)]
}

func swipeLatencies(b *testing.B, persons, swipes int) []float64 {
	b.StopTimer()
	db := populatePersons(b, filepath.Join(b.TempDir(), "persons.db"), persons)
	srv := newCountingServer(b, swipes)
	h := newBenchRig(b)
	a, err := agent.New(agent.Config{Link: agent.LinkConfig{ServerAddress: srv.ln.Addr().String()},
		Access: agent.AccessConfig{DoorPulse: 5 * time.Millisecond}},
		h.parts(db))
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() { cancel(); <-done }()
	relay := h.rig.Relay()
	lat := make([]float64, 0, swipes)
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Minute)
	defer wcancel()
	b.StartTimer()
	for i := range swipes {
		n := 1 + (i*7919)%persons
		// Count relay frames rather than watch the level, which a short
		// pulse may show only briefly: on, then off.
		before := relay.State().Switches
		start := time.Now()
		if err := h.rig.Card().Swipe(wctx, strconv.Itoa(n)); err != nil {
			b.Fatal(err)
		}
		if _, err := relay.Wait(wctx, func(s sim.RelayState) bool { return s.Switches > before }); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, float64(time.Since(start))/float64(time.Millisecond))
		if _, err := relay.Wait(wctx, func(s sim.RelayState) bool { return s.Switches >= before+2 && !s.On }); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	return lat
}

// newBenchRig is newHWRig for benchmarks (card and relay only).
func newBenchRig(b *testing.B) *hwRig {
	return newHWRigTB(b, sim.RigConfig{Devices: []string{sim.DevCard, sim.DevRelay}})
}

// BenchmarkDownloadPerson measures download_person requests per second,
// each with a 120 KB face photo and two 512-byte templates, from a server
// peer to the agent with the real fingerprint and face drivers on
// simulated modules; the baseline is the protocol layer alone carrying the
// same requests to a handler that does nothing.
//
// The sub-benchmark modules=none stores into the database only (a terminal
// without biometric modules), which shows the agent's own cost; with the
// modules, the serial transfer of the photo dominates (on real hardware at
// 115200 baud, 120 KB alone take over 10 s).
func BenchmarkDownloadPerson(b *testing.B) {
	for _, modules := range []bool{false, true} {
		name := "modules=none"
		if modules {
			name = "modules=fingerprint+face"
		}
		b.Run(name, func(b *testing.B) {
			downloads := benchSize(b, "AGENT_BENCH_DOWNLOADS", 40, 10)
			if !modules {
				downloads *= 10
			}
			var rate, bare float64
			for range b.N {
				rate, bare = downloadRates(b, downloads, modules)
			}
			b.ReportMetric(rate, "persons/s")
			b.ReportMetric(bare, "baseline_msgs/s")
			b.ReportMetric(rate/bare, "x_vs_baseline")
		})
	}
}

func downloadRates(b *testing.B, n int, modules bool) (rate, bare float64) {
	b.StopTimer()
	h := newHWRigTB(b, sim.RigConfig{Devices: []string{sim.DevFingerprint, sim.DevFace},
		Fingerprint: sim.FingerprintConfig{Capacity: 1000}, Face: sim.FaceConfig{MaxUsers: 255, MaxPhoto: 200 << 10}})
	fsim := h.rig.Fingerprint()
	parts := h.parts(nil)
	if !modules {
		parts = agent.Parts{}
	}
	reqs := make([]*protocol.Message, n)
	for i := range reqs {
		m := protocol.NewRequest(protocol.ModDownloadPerson)
		m.PersonInfo = &protocol.PersonInfo{PersonID: fmt.Sprintf("p%d", i%50), PersonName: "Bench", CardNumber: cardNumber(i),
			Face: blob(photo(120<<10, byte(i))), LeftCode: blob(fsim.Template(2 * i)), RightCode: blob(fsim.Template(2*i + 1))}
		reqs[i] = m
	}

	// Baseline: the same messages through the protocol layer alone.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ln, err := protocol.Listen(ctx, protocol.ListenConfig{Address: "127.0.0.1:0"})
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		protocol.NewPeer(c, protocol.PeerConfig{Handler: protocol.HandlerFunc(func(ctx context.Context, req *protocol.Message) (*protocol.Message, error) {
			return nil, nil
		})}).Run(ctx)
	}()
	conn, err := protocol.Dial(ctx, protocol.DialConfig{Address: ln.Addr().String()})
	if err != nil {
		b.Fatal(err)
	}
	client := protocol.NewPeer(conn, protocol.PeerConfig{})
	go client.Run(ctx)
	start := time.Now()
	for _, m := range reqs {
		c := *m
		c.SessionID = ""
		if _, err := client.Call(ctx, &c); err != nil {
			b.Fatal(err)
		}
	}
	bare = float64(n) / time.Since(start).Seconds()
	client.Close()

	// The agent.
	db, err := store.Open(ctx, filepath.Join(b.TempDir(), "dl.db"), store.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	srv := newCountingServer(b, 1)
	parts.Store = db
	a, err := agent.New(agent.Config{Link: agent.LinkConfig{ServerAddress: srv.ln.Addr().String()}, Logger: zerolog.Nop()},
		parts)
	if err != nil {
		b.Fatal(err)
	}
	actx, acancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(actx) }()
	defer func() { acancel(); <-done }()
	var peer *protocol.Peer
	select {
	case peer = <-srv.peers:
	case <-time.After(time.Minute):
		b.Fatal("agent did not connect")
	}
	b.StartTimer()
	start = time.Now()
	for i, m := range reqs {
		c := *m
		c.SessionID = ""
		if _, err := peer.Call(ctx, &c); err != nil {
			b.Fatalf("download %d: %v", i, err)
		}
	}
	rate = float64(n) / time.Since(start).Seconds()
	b.StopTimer()
	return rate, bare
}

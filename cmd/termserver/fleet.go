package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"termagent/agent"
	"termagent/cmd/termserver/internal/faults"
	"termagent/cmd/termserver/internal/server"
	"termagent/hal"
	"termagent/hal/backoff"
	"termagent/store"
)

// fleetConfig configures a fleet run. Zero values mean the documented
// defaults.
type fleetConfig struct {
	// Terminals is how many simulated terminals run; default 100.
	Terminals int
	// Rate is each terminal's card presentations per second; default 1.
	Rate float64
	// Duration is how long events are generated; default 30 s.
	Duration time.Duration
	// Drain bounds the wait for the last records' acks after generation
	// stops; default 30 s. A negative Drain waits until every record is
	// acknowledged or ctx is done: tests use it with their own deadline,
	// so a slow machine makes them slower, never wrong.
	Drain time.Duration
	// Server is the server's "host:port"; "" starts a termserver in this
	// process on loopback.
	Server string
	// Transport is the link's transport ("tcp" default, "ws", ...).
	Transport string
	// Dir holds the terminals' databases; "" makes a temp dir, removed
	// afterwards.
	Dir string
	// Durable keeps the store's full durability (fsync per commit); by
	// default fleet terminals use store.DurabilityNoFsync to spare the
	// disk, and the report says so.
	Durable bool
	// Window is each terminal's upload window; 0 means the agent default.
	Window int
	// Faults is the fault injection of the in-process server (ignored
	// with Server set).
	Faults faults.Config
	// Logger receives the fleet's, agents' and in-process server's
	// events at warn level and above; default zerolog.Nop().
	Logger zerolog.Logger

	profile io.Writer // CPU profile of generation and drain, if set
}

func (c fleetConfig) withDefaults() fleetConfig {
	if c.Terminals <= 0 {
		c.Terminals = 100
	}
	if c.Rate <= 0 {
		c.Rate = 1
	}
	if c.Duration <= 0 {
		c.Duration = 30 * time.Second
	}
	if c.Drain == 0 {
		c.Drain = 30 * time.Second
	}
	return c
}

// fleetReport is what a fleet run measured.
type fleetReport struct {
	Terminals  int
	Connected  int           // terminals whose link came up
	ConnectIn  time.Duration // time until every link was up (or gave up)
	Presented  int64         // card presentations
	Recorded   int64         // access records enqueued by the agents
	Acked      int64         // records acknowledged by the server (code 0)
	Generating time.Duration // how long events were generated
	Latencies  []time.Duration
	CPU        time.Duration // user+system CPU of this process during generation and drain
	Durable    bool
	Server     string
	Stats      *server.Stats // the in-process server's counters, if any
}

// ackRatio is Acked / Presented.
func (r fleetReport) ackRatio() float64 {
	if r.Presented == 0 {
		return 0
	}
	return float64(r.Acked) / float64(r.Presented)
}

// percentile returns the p-th percentile (0..100) of the event-to-ack
// latencies (nearest rank), or 0 with none.
func (r fleetReport) percentile(p float64) time.Duration {
	n := len(r.Latencies)
	if n == 0 {
		return 0
	}
	i := int(float64(n)*p/100+0.999999) - 1
	return r.Latencies[max(0, min(n-1, i))]
}

// print writes the report for a reader.
func (r fleetReport) print(w io.Writer) {
	dur := "full (fsync per commit)"
	if !r.Durable {
		dur = "RELAXED: store.DurabilityNoFsync (no fsync per commit; a power cut could lose the last records)"
	}
	fmt.Fprintf(w, "fleet: %d terminals against %s; %d connected in %v\n", r.Terminals, r.Server, r.Connected, r.ConnectIn.Round(time.Millisecond))
	fmt.Fprintf(w, "  terminal durability: %s\n", dur)
	secs := r.Generating.Seconds()
	fmt.Fprintf(w, "  events presented  %8d  (%.0f/s over %v)\n", r.Presented, float64(r.Presented)/secs, r.Generating.Round(time.Millisecond))
	fmt.Fprintf(w, "  records made      %8d\n", r.Recorded)
	fmt.Fprintf(w, "  records acked     %8d  (%.3f%% of events; %.0f/s)\n", r.Acked, 100*r.ackRatio(), float64(r.Acked)/secs)
	fmt.Fprintf(w, "  event-to-ack      p50 %v  p90 %v  p99 %v  p99.9 %v  max %v\n",
		r.percentile(50).Round(time.Microsecond*100), r.percentile(90).Round(time.Microsecond*100),
		r.percentile(99).Round(time.Microsecond*100), r.percentile(99.9).Round(time.Microsecond*100),
		r.percentile(100).Round(time.Microsecond*100))
	perEvent := 0.0
	if r.Acked > 0 {
		perEvent = float64(r.CPU.Microseconds()) / 1000 / float64(r.Acked)
	}
	fmt.Fprintf(w, "  process CPU       %v (%.2f cores; %.2f ms per acknowledged event, terminals and server)\n",
		r.CPU.Round(time.Millisecond), r.CPU.Seconds()/secs, perEvent)
	if r.Stats != nil {
		fmt.Fprintf(w, "  server            uploads %d  stored %d  duplicates %d  refused %d  drops %d  (faults: %s)\n",
			r.Stats.Uploads, r.Stats.Stored, r.Stats.Duplicates, r.Stats.Refused, r.Stats.Drops, r.Stats.Faults)
	}
}

// fleetCard is a simulated card reader in process: the fleet's clock
// presents cards through a channel. (The real drivers and the PTY
// simulator are exercised by the demo and the agent's tests; a thousand
// PTYs would measure the kernel's tty layer, not the terminals.)
type fleetCard struct {
	cards  chan hal.Card
	closed chan struct{}
	once   sync.Once
}

var _ hal.CardReader = (*fleetCard)(nil)

func newFleetCard() *fleetCard {
	return &fleetCard{cards: make(chan hal.Card, 16), closed: make(chan struct{})}
}

// ReadCard implements hal.CardReader.
func (c *fleetCard) ReadCard(ctx context.Context) (hal.Card, error) {
	select {
	case card := <-c.cards:
		return card, nil
	case <-c.closed:
		return hal.Card{}, hal.ErrClosed
	case <-ctx.Done():
		return hal.Card{}, ctx.Err()
	}
}

// Close implements hal.CardReader.
func (c *fleetCard) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}

// fleetStore is a terminal's *store.DB that timestamps its records: it
// pairs each Enqueue with the oldest presentation not yet recorded, and
// each Ack with that presentation, to measure event-to-ack.
type fleetStore struct {
	*store.DB
	m *fleetMetrics

	mu        sync.Mutex
	presented []time.Time         // presentations awaiting their record
	pending   map[int64]time.Time // record id → presentation
	early     map[int64]time.Time // record id → ack seen before Enqueue returned
}

func (s *fleetStore) present(at time.Time) {
	s.mu.Lock()
	s.presented = append(s.presented, at)
	s.mu.Unlock()
	s.m.presented.Add(1)
}

// Enqueue implements agent.Outbox.
func (s *fleetStore) Enqueue(ctx context.Context, rec store.Record) (store.Record, error) {
	r, err := s.DB.Enqueue(ctx, rec)
	if err != nil {
		return r, err
	}
	s.m.recorded.Add(1)
	s.mu.Lock()
	at := time.Now()
	if len(s.presented) > 0 {
		at, s.presented = s.presented[0], s.presented[1:]
	}
	ackedAt, early := s.early[r.ID]
	if early {
		// The uploader saw the commit and got the ack before we got here.
		delete(s.early, r.ID)
	} else {
		s.pending[r.ID] = at
	}
	s.mu.Unlock()
	if early {
		s.m.ack([]time.Duration{ackedAt.Sub(at)})
	}
	return r, nil
}

// Ack implements agent.Outbox.
func (s *fleetStore) Ack(ctx context.Context, ids ...int64) error {
	if err := s.DB.Ack(ctx, ids...); err != nil {
		return err
	}
	now := time.Now()
	s.mu.Lock()
	var lat []time.Duration
	for _, id := range ids {
		if at, ok := s.pending[id]; ok {
			delete(s.pending, id)
			lat = append(lat, now.Sub(at))
		} else {
			s.early[id] = now
		}
	}
	s.mu.Unlock()
	s.m.ack(lat)
	return nil
}

// fleetMetrics gathers every terminal's figures. Safe for concurrent use.
type fleetMetrics struct {
	presented atomic.Int64
	recorded  atomic.Int64
	acked     atomic.Int64
	mu        sync.Mutex
	lat       []time.Duration
}

func (m *fleetMetrics) ack(lat []time.Duration) {
	m.acked.Add(int64(len(lat)))
	m.mu.Lock()
	m.lat = append(m.lat, lat...)
	m.mu.Unlock()
}

type fleetTerminal struct {
	card  *fleetCard
	store *fleetStore
	agent *agent.Agent
	num   string // the card number of its one person
}

// fleet is one fleet run: setup builds the in-process server and the
// terminals, connect starts the agents and waits for their links, measure
// generates events and waits for their acks, report gathers the figures,
// and close undoes it all.
type fleet struct {
	cfg     fleetConfig
	rep     fleetReport
	m       fleetMetrics
	srv     *server.Server // the in-process server; nil with cfg.Server
	terms   []*fleetTerminal
	cleanup []func() // run by close, last first
}

// runFleet runs cfg.Terminals agents in this process against the server
// and reports what they measured, printing its steps on progress. It
// returns when the run is over or ctx is done.
func runFleet(ctx context.Context, cfg fleetConfig, progress io.Writer) (fleetReport, error) {
	cfg = cfg.withDefaults()
	f := &fleet{cfg: cfg, rep: fleetReport{Terminals: cfg.Terminals, Durable: cfg.Durable, Server: cfg.Server}}
	defer f.close()
	if err := f.setup(ctx, progress); err != nil {
		return f.rep, err
	}
	if err := f.connect(ctx, progress); err != nil {
		return f.rep, err
	}
	err := f.measure(ctx)
	f.report(ctx)
	return f.rep, err
}

// onClose has close run fn, before what was registered earlier.
func (f *fleet) onClose(fn func()) { f.cleanup = append(f.cleanup, fn) }

// close stops the agents, closes the terminals, stops the in-process
// server and removes the temp dir: setup and connect in reverse.
func (f *fleet) close() {
	for i := len(f.cleanup) - 1; i >= 0; i-- {
		f.cleanup[i]()
	}
}

// setup makes the terminals (a store with one person each, an in-process
// card reader, an agent) and, without cfg.Server, the server.
func (f *fleet) setup(ctx context.Context, progress io.Writer) error {
	dir := f.cfg.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "termfleet-")
		if err != nil {
			return fmt.Errorf("fleet: %w", err)
		}
		f.onClose(func() { os.RemoveAll(d) })
		dir = d
	}
	if f.cfg.Server == "" {
		if err := f.startServer(ctx, dir); err != nil {
			return err
		}
	}
	durability := store.DurabilityNoFsync
	if f.cfg.Durable {
		durability = store.DurabilityFull
	}
	fmt.Fprintf(progress, "fleet: opening %d terminals in %s\n", f.cfg.Terminals, dir)
	for i := range f.cfg.Terminals {
		t, err := newFleetTerminal(ctx, f.cfg, dir, i, durability, &f.m)
		if err != nil {
			return err
		}
		f.onClose(func() { t.card.Close(); t.store.Close() })
		f.terms = append(f.terms, t)
	}
	return nil
}

// startServer runs a termserver in this process on loopback, relaxed (no
// fsync per commit: the fleet measures the terminals), and points the
// fleet at it.
func (f *fleet) startServer(ctx context.Context, dir string) error {
	ctx, cancel := context.WithCancel(ctx)
	srv, err := server.New(ctx, server.Config{Listen: "127.0.0.1:0", WSListen: wsIf(f.cfg.Transport),
		DB: filepath.Join(dir, "server.db"), RelaxedSync: true, Faults: f.cfg.Faults, Logger: f.cfg.Logger})
	if err != nil {
		cancel()
		return err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Run(ctx); err != nil {
			f.cfg.Logger.Error().Err(err).Msg("fleet: in-process server stopped")
		}
	}()
	f.onClose(func() { cancel(); <-done })
	addr := srv.Addr(transportKind(f.cfg.Transport))
	f.srv, f.cfg.Server, f.rep.Server = srv, addr, "in-process termserver at "+addr+" (relaxed: no fsync per commit)"
	return nil
}

// connect starts the agents and waits for their links, at most a minute.
func (f *fleet) connect(ctx context.Context, progress io.Writer) error {
	runCtx, stopAgents := context.WithCancel(ctx)
	var agents sync.WaitGroup
	f.onClose(func() { stopAgents(); agents.Wait() })
	start := time.Now()
	for _, t := range f.terms {
		agents.Go(func() {
			if err := t.agent.Run(runCtx); err != nil && runCtx.Err() == nil {
				f.cfg.Logger.Error().Err(err).Msg("fleet: agent stopped")
			}
		})
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		f.rep.Connected = 0
		for _, t := range f.terms {
			if t.agent.Status(ctx).Link == agent.LinkUp {
				f.rep.Connected++
			}
		}
		if f.rep.Connected == len(f.terms) || time.Now().After(deadline) || !backoff.Sleep(ctx, 100*time.Millisecond) {
			break
		}
	}
	f.rep.ConnectIn = time.Since(start)
	fmt.Fprintf(progress, "fleet: %d/%d links up after %v; generating %.3g events/s per terminal for %v\n",
		f.rep.Connected, len(f.terms), f.rep.ConnectIn.Round(time.Millisecond), f.cfg.Rate, f.cfg.Duration)
	return ctx.Err()
}

// measure generates events for cfg.Duration, then waits for their acks
// (bounded by cfg.Drain), with the CPU profile, if any, running.
func (f *fleet) measure(ctx context.Context) error {
	if f.cfg.profile != nil {
		if err := pprof.StartCPUProfile(f.cfg.profile); err != nil {
			return fmt.Errorf("fleet: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	cpu0 := cpuTime()
	genStart := time.Now()
	genCtx, stopGen := context.WithTimeout(ctx, f.cfg.Duration)
	var gens sync.WaitGroup
	period := time.Duration(float64(time.Second) / f.cfg.Rate)
	for _, t := range f.terms {
		gens.Go(func() { t.generate(genCtx, period) })
	}
	gens.Wait()
	stopGen()
	f.rep.Generating = time.Since(genStart)

	m := &f.m
	drainDeadline := time.Now().Add(f.cfg.Drain)
	for m.acked.Load() < m.recorded.Load() || m.recorded.Load() < m.presented.Load() {
		if (f.cfg.Drain > 0 && time.Now().After(drainDeadline)) || !backoff.Sleep(ctx, 50*time.Millisecond) {
			break
		}
	}
	f.rep.CPU = cpuTime() - cpu0
	return ctx.Err()
}

// report logs the terminals that did not drain and fills in the figures.
func (f *fleet) report(ctx context.Context) {
	m := &f.m
	if m.acked.Load() < m.recorded.Load() {
		for i, t := range f.terms {
			st := t.agent.Status(ctx)
			if st.OutboxDepth > 0 || st.Link != agent.LinkUp {
				f.cfg.Logger.Warn().Int("terminal", i).Str("link", string(st.Link)).Int("outbox", st.OutboxDepth).
					Str("last_error", st.LastError).Msg("fleet: terminal not drained")
			}
		}
	}
	f.rep.Presented, f.rep.Recorded, f.rep.Acked = m.presented.Load(), m.recorded.Load(), m.acked.Load()
	m.mu.Lock()
	f.rep.Latencies = slices.Clone(m.lat)
	m.mu.Unlock()
	slices.Sort(f.rep.Latencies)
	if f.srv != nil {
		st := f.srv.Stats()
		f.rep.Stats = &st
	}
}

func wsIf(transport string) string {
	if transportKind(transport) == "ws" {
		return "127.0.0.1:0"
	}
	return ""
}

func transportKind(transport string) string {
	if transport == "ws" {
		return "ws"
	}
	return "tcp"
}

func newFleetTerminal(ctx context.Context, cfg fleetConfig, dir string, i int, d store.Durability, m *fleetMetrics) (*fleetTerminal, error) {
	db, err := store.Open(ctx, filepath.Join(dir, fmt.Sprintf("t%05d.db", i)), store.Config{Durability: d})
	if err != nil {
		return nil, fmt.Errorf("fleet terminal %d: %w", i, err)
	}
	t := &fleetTerminal{card: newFleetCard(), num: fmt.Sprintf("%010d", 1000000+i)}
	t.store = &fleetStore{DB: db, m: m, pending: map[int64]time.Time{}, early: map[int64]time.Time{}}
	if err := enrolCard(ctx, db, fmt.Sprintf("fleet-%d", i), t.num); err != nil {
		db.Close()
		return nil, fmt.Errorf("fleet terminal %d: %w", i, err)
	}
	a, err := agent.New(agent.Config{
		Device: agent.DeviceConfig{Address: fmt.Sprintf("fleet terminal %d", i), SoftwareVersion: "fleet-" + version},
		Link:   agent.LinkConfig{ServerAddress: cfg.Server, Transport: cfg.Transport, BackoffMin: 200 * time.Millisecond, BackoffMax: 5 * time.Second},
		Upload: agent.UploadConfig{Window: cfg.Window, RetryMin: 200 * time.Millisecond, RetryMax: 5 * time.Second},
		Logger: cfg.Logger,
	}, agent.Parts{Store: t.store, Card: t.card})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("fleet terminal %d: %w", i, err)
	}
	t.agent = a
	return t, nil
}

// enrolCard stores one person holding card number num.
func enrolCard(ctx context.Context, db *store.DB, id, num string) error {
	tx, err := db.BeginPerson(ctx, id)
	if err != nil {
		return fmt.Errorf("enrol %s: %w", id, err)
	}
	defer tx.Rollback()
	if err := tx.Put(store.Person{PersonID: id, Name: id, CardNumber: num}); err != nil {
		return fmt.Errorf("enrol %s: %w", id, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("enrol %s: %w", id, err)
	}
	return nil
}

// generate presents the terminal's card every period (first after a
// random phase, so the fleet's events spread evenly) until ctx is done.
func (t *fleetTerminal) generate(ctx context.Context, period time.Duration) {
	if !backoff.Sleep(ctx, rand.N(period)) {
		return
	}
	tick := time.NewTicker(period)
	defer tick.Stop()
	for {
		now := time.Now()
		t.store.present(now)
		select {
		case t.card.cards <- hal.Card{Number: t.num, Raw: []byte(t.num), At: now}:
		case <-ctx.Done():
			t.store.unpresent()
			return
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
	}
}

// unpresent takes back the last presentation (its card was never read).
func (s *fleetStore) unpresent() {
	s.mu.Lock()
	if n := len(s.presented); n > 0 {
		s.presented = s.presented[:n-1]
	}
	s.mu.Unlock()
	s.m.presented.Add(-1)
}

// cpuTime is this process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cmdFleet runs a fleet and prints its report.
func cmdFleet(ctx context.Context, c *client, args []string) error {
	fs := newFlags(c, "fleet")
	cfg := fleetConfig{}
	fs.IntVar(&cfg.Terminals, "n", 1000, "simulated terminals")
	fs.Float64Var(&cfg.Rate, "rate", 1, "card presentations per second per terminal")
	fs.DurationVar(&cfg.Duration, "duration", 30*time.Second, "how long to generate events")
	fs.DurationVar(&cfg.Drain, "drain", 30*time.Second, "bound on the wait for the last acks")
	fs.StringVar(&cfg.Server, "server", "", `server host:port (empty: an in-process termserver on loopback)`)
	fs.StringVar(&cfg.Transport, "transport", "tcp", "tcp or ws")
	fs.StringVar(&cfg.Dir, "dir", "", "directory for the terminals' databases (empty: a temp dir, removed)")
	fs.BoolVar(&cfg.Durable, "durable", false, "fsync every commit in the terminals' stores (default: relaxed)")
	fs.IntVar(&cfg.Window, "window", 0, "upload window per terminal (0: the agent's default)")
	fs.Float64Var(&cfg.Faults.FailUploads, "fail", 0, "in-process server: fraction (0..1) of uploads answered -1")
	fs.DurationVar(&cfg.Faults.Delay, "delay", 0, "in-process server: delay before every reply")
	fs.IntVar(&cfg.Faults.DropEvery, "drop-every", 0, "in-process server: drop a connection after every N requests")
	verbose := fs.Bool("v", false, "log warnings and errors to stderr")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the generation and drain to `file`")
	args, err := fs.parse(args)
	if err != nil {
		return err
	}
	if len(args) > 0 {
		return usagef("fleet takes only flags")
	}
	if cfg.Server != "" && cfg.Faults != (faults.Config{}) {
		return usagef("-fail, -delay and -drop-every apply to the in-process server only (no -server)")
	}
	if cfg.Transport != "tcp" && cfg.Transport != "ws" {
		return usagef("transport %q: want tcp or ws", cfg.Transport)
	}
	if *verbose {
		cfg.Logger = zerolog.New(c.stderr).Level(zerolog.WarnLevel).With().Timestamp().Logger()
	}
	if *cpuProfile != "" {
		f, err := os.OpenFile(*cpuProfile, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return fmt.Errorf("fleet: %w", err)
		}
		defer f.Close()
		cfg.profile = f
	}
	rep, err := runFleet(ctx, cfg, c.stderr)
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	rep.print(c.stdout)
	return err
}

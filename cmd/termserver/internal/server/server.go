// Package server is termserver's protocol side: it accepts terminals over
// TCP and WebSocket (protocol V1.0, see protocol/PROTOCOL.md), names each by
// its device_info.uuid, stores their access records (dropping duplicates by
// session_id) and sends them requests, with the fault injection of package
// faults applied to what it answers.
//
// Import rule: it imports protocol and its siblings recordstore and
// faults; the admin endpoint and the termserver command build on it.
package server

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"termagent/cmd/termserver/internal/faults"
	"termagent/cmd/termserver/internal/recordstore"
	"termagent/protocol"
)

// Defaults of Config.
const (
	DefaultListen       = "127.0.0.1:49003"
	DefaultDB           = "termserver.db"
	DefaultCallTimeout  = 30 * time.Second
	DefaultIdentifyWait = 10 * time.Second
	DefaultMaxInFlight  = 256
)

// Config configures a Server. Zero values mean the documented defaults.
type Config struct {
	// Listen is the TCP address terminals connect to (raw TCP, one JSON
	// object per line); default DefaultListen. "off" disables it.
	Listen string
	// WSListen is the address of the WebSocket listener (one JSON message
	// per text frame, path "/"); "" (default) disables it.
	WSListen string
	// DB is the path of the record database; default DefaultDB.
	DB string
	// RelaxedSync stops fsyncing the record database on every commit: a
	// power cut may then lose records already acknowledged. For load
	// tests only (fleet mode); default false.
	RelaxedSync bool
	// Faults is the fault injection the server starts with; SetFaults
	// changes it at run time.
	Faults faults.Config
	// Seed seeds the draw of failed uploads; 0 picks a random seed.
	Seed uint64
	// CallTimeout bounds each request the server sends a terminal, from
	// write to response; default DefaultCallTimeout.
	CallTimeout time.Duration
	// IdentifyWait bounds the get_device_info that identifies a terminal
	// on connect; uploads that arrive meanwhile wait for it. Default
	// DefaultIdentifyWait.
	IdentifyWait time.Duration
	// MaxInFlight bounds the requests handled at once per terminal;
	// default DefaultMaxInFlight (well above a terminal's upload window,
	// so uploads waiting for identification cannot stall the link).
	MaxInFlight int
	// MaxMessageSize bounds each incoming message, in bytes; default
	// protocol.DefaultMaxMessageSize.
	MaxMessageSize int
	// Logger receives the server's events; default zerolog.Nop().
	Logger zerolog.Logger
}

func (c Config) withDefaults() Config {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.DB == "" {
		c.DB = DefaultDB
	}
	if c.CallTimeout <= 0 {
		c.CallTimeout = DefaultCallTimeout
	}
	if c.IdentifyWait <= 0 {
		c.IdentifyWait = DefaultIdentifyWait
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	return c
}

// Log field keys.
const (
	logComponent = "component"
	logTerminal  = "terminal"
	logRemote    = "remote"
	logTransport = "transport"
	logSession   = "session_id"
)

// Server accepts terminals, identifies them, stores their uploads and sends
// them commands. Create it with New, run it with Run (once). Its
// methods are safe for concurrent use.
type Server struct {
	cfg     Config
	log     zerolog.Logger
	records *recordstore.Store
	faults  *faults.Injector
	lns     []listener

	mu    sync.Mutex
	terms map[*terminal]struct{}
	wg    sync.WaitGroup

	stats serverStats
}

type listener struct {
	transport string
	ln        *protocol.Listener
}

// serverStats are the server's counters since start.
type serverStats struct {
	connections atomic.Int64
	uploads     atomic.Int64 // upload_access_info requests received
	stored      atomic.Int64 // new records stored
	duplicates  atomic.Int64 // duplicates dropped (answered 0)
	refused     atomic.Int64 // answered -1 by fault injection
	failed      atomic.Int64 // answered -1/-3 for a real error
	events      atomic.Int64 // send_device_command received
	drops       atomic.Int64 // connections dropped by fault injection or command
}

// Stats is a snapshot of the server's counters since start.
type Stats struct {
	Connections int64  `json:"connections"` // terminals accepted
	Connected   int    `json:"connected"`   // terminals connected now
	Uploads     int64  `json:"uploads"`     // upload_access_info received
	Stored      int64  `json:"stored"`      // new records stored
	Duplicates  int64  `json:"duplicates"`  // duplicate uploads dropped, answered 0
	Refused     int64  `json:"refused"`     // uploads answered -1 by fault injection
	Failed      int64  `json:"failed"`      // uploads answered an error for a real fault
	Events      int64  `json:"events"`      // send_device_command received
	Drops       int64  `json:"drops"`       // connections the server dropped on purpose
	Faults      string `json:"faults"`      // the fault injection in force
}

// New opens the record database and the listeners. The caller runs the
// server with Run, which closes both.
func New(ctx context.Context, cfg Config) (*Server, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Faults.Validate(); err != nil {
		return nil, err
	}
	s := &Server{
		cfg:    cfg,
		log:    cfg.Logger.With().Str(logComponent, "termserver").Logger(),
		faults: faults.NewInjector(cfg.Faults, cfg.Seed),
		terms:  map[*terminal]struct{}{},
	}
	var err error
	if s.records, err = recordstore.Open(cfg.DB, cfg.RelaxedSync); err != nil {
		return nil, err
	}
	open := func(addr, transport string) error {
		ln, err := protocol.Listen(ctx, protocol.ListenConfig{
			Address: addr, Transport: transport, MaxMessageSize: cfg.MaxMessageSize})
		if err != nil {
			return fmt.Errorf("listen %s on %s: %w", transport, addr, err)
		}
		s.lns = append(s.lns, listener{transport: transport, ln: ln})
		return nil
	}
	if cfg.Listen != "off" {
		err = open(cfg.Listen, protocol.TransportTCP)
	}
	if err == nil && cfg.WSListen != "" {
		err = open(cfg.WSListen, protocol.TransportWS)
	}
	if err == nil && len(s.lns) == 0 {
		err = fmt.Errorf("no listener: both Listen and WSListen are off: %w", ErrConfig)
	}
	if err != nil {
		for _, l := range s.lns {
			l.ln.Close()
		}
		s.records.Close()
		return nil, err
	}
	return s, nil
}

// Addr returns the address of the listener for transport ("tcp" or "ws"),
// or "" when there is none.
func (s *Server) Addr(transport string) string {
	for _, l := range s.lns {
		if l.transport == transport {
			return l.ln.Addr().String()
		}
	}
	return ""
}

// Records returns the server's record database (owned by the Server,
// closed when Run returns).
func (s *Server) Records() *recordstore.Store { return s.records }

// Run accepts and serves terminals until ctx is done, then closes the
// listeners and every connection, waits for them, closes the database and
// returns nil. A failing Accept (e.g. out of file descriptors) is logged
// and retried with backoff.
func (s *Server) Run(ctx context.Context) error {
	var accepting sync.WaitGroup
	for _, l := range s.lns {
		accepting.Go(func() {
			var pause time.Duration
			for {
				conn, err := l.ln.Accept()
				if err != nil {
					if ctx.Err() != nil || errors.Is(err, protocol.ErrClosed) {
						return
					}
					// Out of file descriptors and the like: the
					// terminals connected go on; retry, backing off as
					// net/http does.
					pause = min(max(2*pause, 5*time.Millisecond), time.Second)
					s.log.Error().Err(err).Str(logTransport, l.transport).Dur("retry_in", pause).Msg("accept failed")
					select {
					case <-time.After(pause):
					case <-ctx.Done():
						return
					}
					continue
				}
				pause = 0
				s.serve(ctx, conn, l.transport)
			}
		})
	}
	s.log.Info().Strs("listen", s.addrs()).Msg("serving terminals")
	<-ctx.Done()
	for _, l := range s.lns {
		l.ln.Close()
	}
	accepting.Wait()
	s.mu.Lock()
	for t := range s.terms {
		t.peer.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	s.records.Close()
	return nil
}

func (s *Server) addrs() []string {
	var out []string
	for _, l := range s.lns {
		out = append(out, l.transport+"://"+l.ln.Addr().String())
	}
	return out
}

// terminal is one connected terminal.
type terminal struct {
	peer       *protocol.Peer
	transport  string
	remote     string
	connected  time.Time
	identified chan struct{} // closed once get_device_info answered or failed
	received   atomic.Int64  // requests received on this connection
	uploads    atomic.Int64
	stored     atomic.Int64
	duplicates atomic.Int64

	mu        sync.Mutex
	info      protocol.DeviceInfo // as last reported
	uuid      string              // "" until identified
	lastEvent string              // last send_device_command, for list
}

func (t *terminal) name() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.uuid
}

// serve starts a Peer for conn and identifies the terminal.
func (s *Server) serve(ctx context.Context, conn protocol.Conn, transport string) {
	t := &terminal{
		transport:  transport,
		remote:     conn.RemoteAddr().String(),
		connected:  time.Now(),
		identified: make(chan struct{}),
	}
	log := s.log.With().Str(logRemote, t.remote).Str(logTransport, transport).Logger()
	if s.faults.Get().Refuse {
		log.Info().Msg("refusing terminal: network cut in force")
		conn.Close()
		return
	}
	t.peer = protocol.NewPeer(conn, protocol.PeerConfig{
		Handler: protocol.HandlerFunc(func(ctx context.Context, req *protocol.Message) (*protocol.Message, error) {
			return s.handle(ctx, t, req)
		}),
		MaxInFlight: s.cfg.MaxInFlight,
		CallTimeout: s.cfg.CallTimeout,
		Logger:      log,
	})
	s.stats.connections.Add(1)
	s.mu.Lock()
	s.terms[t] = struct{}{}
	s.mu.Unlock()
	s.wg.Go(func() {
		err := t.peer.Run(ctx)
		s.mu.Lock()
		delete(s.terms, t)
		s.mu.Unlock()
		log.Info().Str(logTerminal, t.name()).Err(err).Msg("terminal disconnected")
	})
	s.wg.Go(func() { s.identify(ctx, t, log) })
}

// identify asks the terminal for its device info and names it by its uuid.
// A newer connection of the same uuid replaces an older one.
func (s *Server) identify(ctx context.Context, t *terminal, log zerolog.Logger) {
	defer close(t.identified)
	ctx, cancel := context.WithTimeout(ctx, s.cfg.IdentifyWait)
	defer cancel()
	resp, err := t.peer.Call(ctx, protocol.NewRequest(protocol.ModGetDeviceInfo))
	if err != nil || resp.DeviceInfo == nil {
		if err == nil {
			err = errors.New("response carries no device_info")
		}
		log.Warn().Err(err).Msg("terminal did not identify itself; named by its address")
		return
	}
	t.mu.Lock()
	t.info = *resp.DeviceInfo
	t.uuid = resp.DeviceInfo.UUID
	t.mu.Unlock()
	log.Info().Str(logTerminal, t.uuid).Str("address", resp.DeviceInfo.Address).
		Str("software_version", resp.DeviceInfo.SoftwareVersion).Msg("terminal connected")
	if t.uuid == "" {
		return
	}
	s.mu.Lock()
	var stale []*terminal
	for o := range s.terms {
		if o != t && o.name() == t.uuid && o.connected.Before(t.connected) {
			stale = append(stale, o)
		}
	}
	s.mu.Unlock()
	for _, o := range stale {
		log.Info().Str(logTerminal, t.uuid).Str("old_remote", o.remote).Msg("closing the older connection of a reconnected terminal")
		o.peer.Close()
	}
}

// handle answers one request of a terminal, applying the fault injection.
func (s *Server) handle(ctx context.Context, t *terminal, req *protocol.Message) (*protocol.Message, error) {
	n := t.received.Add(1)
	f := s.faults.Get()
	var resp *protocol.Message
	var err error
	switch req.Mod {
	case protocol.ModUploadAccessInfo:
		resp, err = s.upload(ctx, t, req)
	case protocol.ModSendDeviceCommand:
		s.stats.events.Add(1)
		select { // name the event's terminal (see upload)
		case <-t.identified:
		case <-ctx.Done():
		}
		t.mu.Lock()
		t.lastEvent = fmt.Sprintf("%d %s", req.CommandType, req.CommandValue)
		t.mu.Unlock()
		s.log.Info().Str(logTerminal, t.name()).Int("command_type", req.CommandType).
			Str("command_value", req.CommandValue).Msg("device event")
	case protocol.ModGetDeviceInfo, protocol.ModSetDeviceInfo, protocol.ModDownloadPerson,
		protocol.ModSendUserCommand, protocol.ModRemovePerson, protocol.ModSetDeviceTime,
		protocol.ModGetDeviceStatus:
		err = fmt.Errorf("%s is a server-to-device request; this is the server", req.Mod)
	default:
		// Anything else is taken as the terminal's heartbeat (its mod is
		// the terminal's configuration) and answered 0.
		s.log.Debug().Str(logTerminal, t.name()).Str("mod", req.Mod).Msg("heartbeat")
	}
	if f.DropEvery > 0 && n%int64(f.DropEvery) == 0 {
		s.stats.drops.Add(1)
		s.log.Info().Str(logTerminal, t.name()).Int64("request", n).Str("mod", req.Mod).
			Msg("fault injection: dropping the connection without answering")
		t.peer.Close()
		return nil, protocol.ErrClosed
	}
	if f.Delay > 0 {
		timer := time.NewTimer(f.Delay)
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
		}
	}
	return resp, err
}

// upload stores one access record; a duplicate session_id is answered 0.
func (s *Server) upload(ctx context.Context, t *terminal, req *protocol.Message) (*protocol.Message, error) {
	s.stats.uploads.Add(1)
	t.uploads.Add(1)
	if req.AccessInfo == nil {
		s.stats.failed.Add(1)
		return nil, errors.New("upload_access_info carries no access_info")
	}
	// Name the record by its terminal's uuid: wait (bounded) for the
	// get_device_info that identify sent when the terminal connected.
	select {
	case <-t.identified:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if s.faults.FailUpload() {
		s.stats.refused.Add(1)
		return nil, errors.New("upload refused by fault injection")
	}
	a := req.AccessInfo
	// Once queued, the record is committed even if the connection drops
	// meanwhile: wait for the outcome so the counters tell the truth.
	dup, err := s.records.Add(context.WithoutCancel(ctx), recordstore.Record{
		SessionID: req.SessionID, Terminal: t.name(), Remote: t.remote,
		PersonID: a.PersonID, Time: a.Time, IDNumber: a.IDNumber, CardNumber: a.CardNumber,
		Role: a.Role, OpenDoorType: a.OpenDoorType, InOutType: a.InOutType,
		CommunityCode: a.CommunityCode,
	})
	if err != nil {
		s.stats.failed.Add(1)
		s.log.Error().Err(err).Str(logTerminal, t.name()).Str(logSession, req.SessionID).Msg("store record")
		return nil, protocol.Errorf(protocol.CodeDatabase, "store record: %v", err)
	}
	if dup {
		s.stats.duplicates.Add(1)
		t.duplicates.Add(1)
		s.log.Debug().Str(logTerminal, t.name()).Str(logSession, req.SessionID).Msg("duplicate record dropped")
	} else {
		s.stats.stored.Add(1)
		t.stored.Add(1)
		s.log.Debug().Str(logTerminal, t.name()).Str(logSession, req.SessionID).
			Int("open_door_type", a.OpenDoorType).Msg("record stored")
	}
	return nil, nil
}

// Stats returns the server's counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	n := len(s.terms)
	s.mu.Unlock()
	return Stats{
		Connections: s.stats.connections.Load(), Connected: n,
		Uploads: s.stats.uploads.Load(), Stored: s.stats.stored.Load(),
		Duplicates: s.stats.duplicates.Load(), Refused: s.stats.refused.Load(),
		Failed: s.stats.failed.Load(), Events: s.stats.events.Load(),
		Drops: s.stats.drops.Load(), Faults: s.faults.Get().String(),
	}
}

// Faults returns the fault injection in force.
func (s *Server) Faults() faults.Config { return s.faults.Get() }

// SetFaults changes the fault injection (faults.ErrInvalid: unchanged).
// Turning Refuse on also closes every connected terminal (a network cut).
func (s *Server) SetFaults(f faults.Config) error {
	if err := s.faults.Set(f); err != nil {
		return err
	}
	s.log.Info().Str("faults", f.String()).Msg("fault injection changed")
	if f.Refuse {
		s.Drop("all") // none connected is fine
	}
	return nil
}

// TerminalStatus describes one connected terminal.
type TerminalStatus struct {
	UUID       string    `json:"uuid"` // "" when it did not identify itself
	Remote     string    `json:"remote"`
	Transport  string    `json:"transport"`
	Connected  time.Time `json:"connected"`
	Address    string    `json:"address"`
	Software   string    `json:"software_version"`
	Uploads    int64     `json:"uploads"`
	Stored     int64     `json:"stored"`
	Duplicates int64     `json:"duplicates"`
	LastEvent  string    `json:"last_event,omitempty"`
}

// Terminals lists the connected terminals, sorted by uuid then address.
func (s *Server) Terminals() []TerminalStatus {
	s.mu.Lock()
	ts := make([]*terminal, 0, len(s.terms))
	for t := range s.terms {
		ts = append(ts, t)
	}
	s.mu.Unlock()
	out := make([]TerminalStatus, 0, len(ts))
	for _, t := range ts {
		t.mu.Lock()
		st := TerminalStatus{UUID: t.uuid, Remote: t.remote, Transport: t.transport,
			Connected: t.connected, Address: t.info.Address, Software: t.info.SoftwareVersion,
			LastEvent: t.lastEvent}
		t.mu.Unlock()
		st.Uploads, st.Stored, st.Duplicates = t.uploads.Load(), t.stored.Load(), t.duplicates.Load()
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].UUID != out[j].UUID {
			return out[i].UUID < out[j].UUID
		}
		return out[i].Remote < out[j].Remote
	})
	return out
}

// find returns the terminals name selects: "all" (every connected one),
// an exact uuid or remote address, or a unique uuid prefix.
func (s *Server) find(name string) ([]*terminal, error) {
	if name == "" {
		return nil, fmt.Errorf("no terminal named (give a uuid, a uuid prefix, an address or all): %w", ErrNoTerminal)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var all, exact, prefix []*terminal
	for t := range s.terms {
		all = append(all, t)
		u := t.name()
		switch {
		case u == name || t.remote == name:
			exact = append(exact, t)
		case strings.HasPrefix(u, name):
			prefix = append(prefix, t)
		}
	}
	sortTerms := func(ts []*terminal) []*terminal {
		sort.Slice(ts, func(i, j int) bool { return ts[i].connected.Before(ts[j].connected) })
		return ts
	}
	switch {
	case name == "all":
		return sortTerms(all), nil
	case len(exact) > 0:
		// Several connections of one uuid: the newest is the live one.
		return sortTerms(exact)[len(exact)-1:], nil
	case len(prefix) == 1:
		return prefix, nil
	case len(prefix) > 1:
		return nil, fmt.Errorf("terminal %q: %w", name, ErrAmbiguous)
	}
	return nil, fmt.Errorf("terminal %q: %w", name, ErrNoTerminal)
}

// CallResult is one terminal's answer to a request sent by Call.
type CallResult struct {
	Terminal string `json:"terminal"` // uuid, or remote address if unidentified
	// Response is the terminal's response (its code and body); nil when
	// no response came.
	Response *protocol.Message `json:"response,omitempty"`
	// Error is why no response came, or the remote error's text.
	Error string `json:"error,omitempty"`
}

// OK reports whether the terminal answered code 0.
func (r CallResult) OK() bool {
	return r.Error == "" && r.Response != nil && r.Response.Code == protocol.CodeOK
}

// Call sends req to the terminals name selects concurrently and returns
// their answers in connection order: name is "all" (every connected
// terminal), a uuid or remote address, or a unique uuid prefix; otherwise
// Call returns ErrNoTerminal or ErrAmbiguous. Each call is bounded by
// Config.CallTimeout and ctx. After a download_person that a terminal
// answered 0, the record database keeps the person's name (records show
// it).
func (s *Server) Call(ctx context.Context, name string, req *protocol.Message) ([]CallResult, error) {
	ts, err := s.find(name)
	if err != nil {
		return nil, err
	}
	out := make([]CallResult, len(ts))
	var wg sync.WaitGroup
	for i, t := range ts {
		wg.Go(func() {
			r := *req // each terminal gets its own session id
			r.SessionID = ""
			resp, err := t.peer.Call(ctx, &r)
			if err == nil && r.Mod == protocol.ModSetDeviceInfo && r.DeviceInfo != nil && r.DeviceInfo.Has(protocol.FieldUUID) {
				t.mu.Lock()
				t.uuid = r.DeviceInfo.UUID
				t.mu.Unlock()
			}
			if (err == nil && resp != nil && resp.DeviceInfo != nil) && r.WantsDeviceInfo() {
				t.mu.Lock()
				t.info = *resp.DeviceInfo
				t.mu.Unlock()
			}
			res := CallResult{Terminal: label(t), Response: resp}
			if err != nil {
				res.Error = err.Error()
			}
			out[i] = res
		})
	}
	wg.Wait()
	if p := req.PersonInfo; req.Mod == protocol.ModDownloadPerson && p != nil && slices.ContainsFunc(out, CallResult.OK) {
		if err := s.records.SetPersonName(ctx, p.PersonID, p.PersonName); err != nil {
			s.log.Warn().Err(err).Msg("person name not kept")
		}
	}
	return out, nil
}

func label(t *terminal) string {
	if u := t.name(); u != "" {
		return u
	}
	return t.remote
}

// Drop closes the connections of the terminals name selects (see Call);
// they are expected to reconnect. It returns the terminals dropped, or
// ErrNoTerminal or ErrAmbiguous.
func (s *Server) Drop(name string) ([]string, error) {
	ts, err := s.find(name)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, t := range ts {
		s.stats.drops.Add(1)
		t.peer.Close()
		out = append(out, label(t))
	}
	return out, nil
}

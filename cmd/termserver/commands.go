package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rs/zerolog"

	"termagent/cmd/termserver/internal/admin"
	"termagent/cmd/termserver/internal/recordstore"
	"termagent/cmd/termserver/internal/server"
	"termagent/hal/backoff"
	"termagent/protocol"
)

const serveAbout = `Runs the server until SIGINT or SIGTERM: terminals connect on -listen
(loopback by default: give -listen :49003 to accept terminals from the
network), records go to -db, and the admin endpoint (-admin, loopback only)
serves the other commands. At start it writes a fresh admin token to a 0600
file (-token-file; default admin-HOST-PORT.token in the state directory,
~/.local/state/termserver) that the other commands read, and logs where the
database and the token file are. It removes the token file when it stops.`

// cmdServe runs the server and its admin endpoint until a signal.
func cmdServe(ctx context.Context, c *client, args []string) error {
	cfg, err := serveConfig(c, args)
	if err != nil {
		return err
	}
	ln, err := admin.Listen(c.admin)
	if err != nil {
		return err
	}
	tokenFile := c.tokenFile
	if tokenFile == "" {
		if tokenFile, err = admin.DefaultTokenFile(ln.Addr().String()); err != nil {
			ln.Close()
			return err
		}
	}
	token, err := admin.NewToken()
	if err == nil {
		err = admin.WriteToken(tokenFile, token)
	}
	if err != nil {
		ln.Close()
		return err
	}
	defer os.Remove(tokenFile)
	s, err := server.New(ctx, cfg)
	if err != nil {
		ln.Close()
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	adminDone := make(chan error, 1)
	go func() { adminDone <- admin.Serve(ctx, s, ln, token) }()
	cfg.Logger.Info().Str("admin", ln.Addr().String()).Str("token_file", tokenFile).Str("db", cfg.DB).
		Msg("termserver started")
	err = s.Run(ctx)
	cancel()
	if aerr := <-adminDone; err == nil {
		err = aerr
	}
	return err
}

// serveConfig reads serve's flags into the server's Config: its logger on
// stderr, and its database (absolute) in the state directory by default.
func serveConfig(c *client, args []string) (server.Config, error) {
	fs := newFlags(c, "serve")
	cfg := server.Config{}
	fs.StringVar(&cfg.Listen, "listen", server.DefaultListen, `TCP address for terminals ("off" disables)`)
	fs.StringVar(&cfg.WSListen, "ws", "", "WebSocket address for terminals (empty: off)")
	fs.StringVar(&cfg.DB, "db", "", "record database `file` (default: termserver.db in the state directory, ~/.local/state/termserver)")
	fs.Float64Var(&cfg.Faults.FailUploads, "fail", 0, "fraction (0..1) of uploads answered -1")
	fs.DurationVar(&cfg.Faults.Delay, "delay", 0, "delay before every reply")
	fs.IntVar(&cfg.Faults.DropEvery, "drop-every", 0, "drop a connection after every N requests on it (0: never)")
	fs.DurationVar(&cfg.CallTimeout, "call-timeout", server.DefaultCallTimeout, "bound on each request sent to a terminal")
	level := fs.String("log-level", "info", "log level: debug, info, warn, error")
	logFormat := fs.String("log-format", "auto", "log format: console (human-readable), json (one object a line), or auto: console on a terminal, else json")
	args, err := fs.parse(args)
	if err != nil {
		return cfg, err
	}
	if len(args) > 0 {
		return cfg, usagef("serve takes no arguments, got %q", args)
	}
	if cfg.Logger, err = newLogger(c.stderr, *level, *logFormat); err != nil {
		return cfg, err
	}
	if cfg.DB == "" {
		dir, err := admin.StateDir()
		if err != nil {
			return cfg, err
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return cfg, fmt.Errorf("state directory: %w", err)
		}
		cfg.DB = filepath.Join(dir, "termserver.db")
	}
	if abs, err := filepath.Abs(cfg.DB); err == nil {
		cfg.DB = abs
	}
	return cfg, nil
}

// newLogger returns serve's logger on w at level, in format: json, console
// (human-readable) or auto (console on a terminal, else json).
func newLogger(w io.Writer, level, format string) (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil {
		return zerolog.Logger{}, usagef("log level %q: %v", level, err)
	}
	switch format {
	case "json":
	case "console", "auto":
		if format == "console" || isTerminal(w) {
			w = zerolog.ConsoleWriter{Out: w, TimeFormat: "15:04:05", NoColor: !isTerminal(w)}
		}
	default:
		return zerolog.Logger{}, usagef("log format %q: want console, json or auto", format)
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger(), nil
}

func cmdList(ctx context.Context, c *client, args []string) error {
	args, err := newFlags(c, "list").parse(args)
	if err != nil {
		return err
	}
	if len(args) > 0 {
		return usagef("list takes no arguments")
	}
	var ts []server.TerminalStatus
	if err := c.client().Do(ctx, http.MethodGet, "/v1/terminals", nil, nil, &ts); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "UUID\tREMOTE\tTRANSPORT\tCONNECTED\tADDRESS\tVERSION\tUPLOADS\tSTORED\tDUPS\tLAST EVENT")
	for _, t := range ts {
		u := t.UUID
		if u == "" {
			u = "(unidentified)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\n", u, t.Remote, t.Transport,
			t.Connected.Local().Format("15:04:05"), t.Address, t.Software, t.Uploads, t.Stored,
			t.Duplicates, t.LastEvent)
	}
	tw.Flush()
	fmt.Fprintf(c.stdout, "%d terminal(s) connected\n", len(ts))
	return nil
}

func cmdStats(ctx context.Context, c *client, args []string) error {
	args, err := newFlags(c, "stats").parse(args)
	if err != nil {
		return err
	}
	if len(args) > 0 {
		return usagef("stats takes no arguments")
	}
	var st server.Stats
	if err := c.client().Do(ctx, http.MethodGet, "/v1/stats", nil, nil, &st); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "connected %d (accepted %d)  uploads %d  stored %d  duplicates %d  refused %d  failed %d  events %d  drops %d\nfaults: %s\n",
		st.Connected, st.Connections, st.Uploads, st.Stored, st.Duplicates, st.Refused,
		st.Failed, st.Events, st.Drops, st.Faults)
	return nil
}

// printResults prints one line per terminal answer and returns an error
// when any terminal did not answer code 0.
func printResults(w io.Writer, what string, res []server.CallResult) error {
	failed := 0
	for _, r := range res {
		switch {
		case r.OK():
			fmt.Fprintf(w, "%s: %s: ok\n", r.Terminal, what)
		default:
			failed++
			fmt.Fprintf(w, "%s: %s: FAILED: %s\n", r.Terminal, what, r.Error)
		}
	}
	if failed > 0 {
		return fmt.Errorf("%s failed on %d of %d terminal(s)", what, failed, len(res))
	}
	return nil
}

// callTerminal parses the arguments of command name (TERMINAL|all) and
// sends the terminals it names a request mod without a body.
func callTerminal(ctx context.Context, c *client, name, mod string, args []string) ([]server.CallResult, error) {
	args, err := newFlags(c, name).parse(args)
	if err != nil {
		return nil, err
	}
	if len(args) != 1 {
		return nil, usagef("usage: %s TERMINAL|all", name)
	}
	return c.client().Call(ctx, args[0], protocol.NewRequest(mod))
}

func cmdInfo(ctx context.Context, c *client, args []string) error {
	res, err := callTerminal(ctx, c, "info", protocol.ModGetDeviceInfo, args)
	if err != nil {
		return err
	}
	for _, r := range res {
		if !r.OK() || r.Response.DeviceInfo == nil {
			continue
		}
		d := r.Response.DeviceInfo
		fmt.Fprintf(c.stdout, "%s:\n  uuid             %s\n  device_ip        %s\n  device_port      %d\n  server_ip        %s\n  server_port      %d\n  address          %s\n  community_code   %s\n  software_version %s\n  hardware_version %s\n",
			r.Terminal, d.UUID, d.DeviceIP, d.DevicePort, d.ServerIP, d.ServerPort, d.Address,
			d.CommunityCode, d.SoftwareVersion, d.HardwareVersion)
	}
	return printFailures(c.stdout, "get_device_info", res)
}

// printFailures prints only the terminals that did not answer 0.
func printFailures(w io.Writer, what string, res []server.CallResult) error {
	var bad []server.CallResult
	for _, r := range res {
		if !r.OK() {
			bad = append(bad, r)
		}
	}
	if len(bad) == 0 {
		return nil
	}
	return printResults(w, what, bad)
}

func cmdStatus(ctx context.Context, c *client, args []string) error {
	res, err := callTerminal(ctx, c, "status", protocol.ModGetDeviceStatus, args)
	if err != nil {
		return err
	}
	for _, r := range res {
		if !r.OK() || r.Response.DeviceStatus == nil {
			continue
		}
		d := r.Response.DeviceStatus
		fmt.Fprintf(c.stdout, "%s: link %s, outbox %d (oldest %q), persons %d, door %s, version %s, up %ds\n",
			r.Terminal, d.Link, d.OutboxDepth, d.OldestUnsent, d.PersonsEnrolled, d.Door,
			d.SoftwareVersion, d.UptimeSeconds)
		for _, m := range d.Modules {
			fmt.Fprintf(c.stdout, "  %-12s %s %s\n", m.Name, m.State, m.Detail)
		}
	}
	return printFailures(c.stdout, "get_device_status", res)
}

// parseDeviceInfo turns key=value words into a device_info carrying
// exactly those fields.
func parseDeviceInfo(words []string) (*protocol.DeviceInfo, error) {
	d := &protocol.DeviceInfo{}
	for _, w := range words {
		k, v, ok := strings.Cut(w, "=")
		if !ok {
			return nil, usagef("%q is not key=value", w)
		}
		port := func() (int, error) {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 65535 {
				return 0, usagef("%s=%q is not a port 1..65535", k, v)
			}
			return n, nil
		}
		var err error
		switch k {
		case "uuid":
			d.UUID, d.Fields = v, d.Fields|protocol.FieldUUID
		case "device_ip":
			d.DeviceIP, d.Fields = v, d.Fields|protocol.FieldDeviceIP
		case "device_port":
			d.DevicePort, err = port()
			d.Fields |= protocol.FieldDevicePort
		case "server_ip":
			d.ServerIP, d.Fields = v, d.Fields|protocol.FieldServerIP
		case "server_port":
			d.ServerPort, err = port()
			d.Fields |= protocol.FieldServerPort
		case "address":
			d.Address, d.Fields = v, d.Fields|protocol.FieldAddress
		case "community_code":
			d.CommunityCode, d.Fields = v, d.Fields|protocol.FieldCommunityCode
		default:
			return nil, usagef("unknown device_info key %q (uuid device_ip device_port server_ip server_port address community_code)", k)
		}
		if err != nil {
			return nil, err
		}
	}
	if d.Fields == 0 {
		return nil, usagef("nothing to set")
	}
	return d, nil
}

func cmdSet(ctx context.Context, c *client, args []string) error {
	args, err := newFlags(c, "set").parse(args)
	if err != nil {
		return err
	}
	if len(args) < 2 {
		return usagef("usage: set TERMINAL|all key=value...")
	}
	d, err := parseDeviceInfo(args[1:])
	if err != nil {
		return err
	}
	req := protocol.NewRequest(protocol.ModSetDeviceInfo)
	req.DeviceInfo = d
	res, err := c.client().Call(ctx, args[0], req)
	if err != nil {
		return err
	}
	return printResults(c.stdout, "set_device_info", res)
}

// personRequest builds the download_person request for p.
func personRequest(p personFile) *protocol.Message {
	blob := func(b []byte, image bool) *protocol.Biometric {
		if len(b) == 0 {
			return nil
		}
		bio := &protocol.Biometric{Length: len(b), Data: b}
		if image {
			bio.Width, bio.Height = jpegSize(b)
		}
		return bio
	}
	req := protocol.NewRequest(protocol.ModDownloadPerson)
	req.PersonInfo = &protocol.PersonInfo{
		PersonID: p.ID, PersonName: p.Name, IDNumber: p.IDNumber, CardNumber: p.CardNumber,
		KeyNumber: p.KeyNumber, DepartmentNumber: p.Department, Role: p.Role,
		Face: blob(p.Face, true), LeftImage: blob(p.LeftImage, true), RightImage: blob(p.RightImage, true),
		LeftCode: blob(p.LeftCode, false), RightCode: blob(p.RightCode, false),
	}
	return req
}

func cmdPush(ctx context.Context, c *client, args []string) error {
	fs := newFlags(c, "push")
	to := fs.String("to", "all", "terminal to push to, or all")
	args, err := fs.parse(args)
	if err != nil {
		return err
	}
	if len(args) != 1 {
		return usagef("push needs one folder or CSV file")
	}
	persons, err := loadPersons(args[0])
	if err != nil {
		return err
	}
	return pushPersons(ctx, c.client(), *to, persons, c.stderr, c.stdout)
}

const pushAbout = `Sends each person to the terminals (download_person), one request per person.
FILE.csv's first line names its columns, in any order; person_id is required:

  person_id          the person's id (unique)
  person_name        name (termserver records shows it)
  id_number          identity document number
  card_number        card number as printed on the card, e.g. 0006547886
  key_number         key number
  department_number  department
  role               a number (the protocol's role)
  face               face photo file (JPEG), relative to the CSV's folder
  left_code          fingerprint template file (the module's format)
  right_code         second fingerprint template file
  left_image         fingerprint image file
  right_image        second fingerprint image file

Lines starting with # are comments. A FOLDER is read as FOLDER/persons.csv,
or, without one, as one person per photo <person_id>.jpg with optional
<person_id>.left.tpl / <person_id>.right.tpl templates.
'termserver sample DIR' writes a person the simulated modules accept.`

// pushPersons downloads persons one by one to the terminals named to,
// drawing a progress bar on bar and listing failures on out. It stops at
// the first failure of the admin endpoint itself (server gone, no such
// terminal): those would repeat identically for every person.
func pushPersons(ctx context.Context, ac *admin.Client, to string, persons []personFile, bar, out io.Writer) error {
	var ts []server.TerminalStatus
	if err := ac.Do(ctx, http.MethodGet, "/v1/terminals", nil, nil, &ts); err != nil {
		return err
	}
	if len(ts) == 0 {
		return errors.New("push: no terminal is connected (termserver list shows them; is termagent running?)")
	}
	p := newProgress(bar, "push", len(persons))
	var failures []string
	for _, person := range persons {
		res, err := ac.Call(ctx, to, personRequest(person))
		if err != nil {
			p.finish()
			return fmt.Errorf("push %s: %w", person.ID, err)
		}
		ok := true
		for _, r := range res {
			if !r.OK() {
				ok = false
				failures = append(failures, fmt.Sprintf("%s on %s: %s", person.ID, r.Terminal, r.Error))
			}
		}
		p.step(ok, person.ID)
		if ctx.Err() != nil {
			break
		}
	}
	p.finish()
	for _, f := range failures {
		fmt.Fprintln(out, "FAILED:", f)
	}
	if len(failures) > 0 {
		return fmt.Errorf("push: %d failure(s)", len(failures))
	}
	fmt.Fprintf(out, "pushed %d person(s) to %s\n", len(persons), to)
	return nil
}

func cmdRemove(ctx context.Context, c *client, args []string) error {
	fs := newFlags(c, "remove")
	to := fs.String("to", "all", "terminal, or all")
	args, err := fs.parse(args)
	if err != nil {
		return err
	}
	if len(args) == 0 {
		return usagef("remove needs at least one person_id")
	}
	req := protocol.NewRequest(protocol.ModRemovePerson)
	req.PersonIDs = args
	res, err := c.client().Call(ctx, *to, req)
	if err != nil {
		return err
	}
	return printResults(c.stdout, "remove_person "+strings.Join(args, ","), res)
}

func cmdCommand(ctx context.Context, c *client, args []string) error {
	fs := newFlags(c, "command")
	to := fs.String("to", "all", "terminal, or all")
	args, err := fs.parse(args)
	if err != nil {
		return err
	}
	if len(args) < 1 || len(args) > 2 {
		return usagef("command needs TYPE and an optional VALUE")
	}
	typ, err := strconv.Atoi(args[0])
	if err != nil {
		return usagef("command type %q is not a number", args[0])
	}
	req := protocol.NewRequest(protocol.ModSendUserCommand)
	req.CommandType = typ
	if len(args) > 1 {
		req.CommandValue = args[1]
	}
	res, err := c.client().Call(ctx, *to, req)
	if err != nil {
		return err
	}
	return printResults(c.stdout, fmt.Sprintf("send_user_command %d", typ), res)
}

func recordQuery(terminal string, after int64, limit int) url.Values {
	q := url.Values{}
	if terminal != "" {
		q.Set("terminal", terminal)
	}
	if after > 0 {
		q.Set("after", strconv.FormatInt(after, 10))
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	return q
}

func cmdRecords(ctx context.Context, c *client, args []string) error {
	fs := newFlags(c, "records")
	terminal := fs.String("terminal", "", "only terminals whose uuid starts with this")
	after := fs.Int64("after", 0, "only records with id > after")
	limit := fs.Int("limit", 50, "at most this many (0: all)")
	first := fs.Bool("first", false, "the oldest -limit records instead of the newest")
	args, err := fs.parse(args)
	if err != nil {
		return err
	}
	if len(args) > 0 {
		return usagef("records takes only flags")
	}
	q := recordQuery(*terminal, *after, *limit)
	if !*first {
		q.Set("newest", "true")
	}
	var recs []recordstore.Record
	if err := c.client().Do(ctx, http.MethodGet, "/v1/records", q, nil, &recs); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTIME\tPERSON\tNAME\tHOW\tCARD\tIN/OUT\tTERMINAL\tRECEIVED")
	for _, r := range recs {
		name := r.PersonName
		if name == "" {
			name = "-"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.FormatTime(), r.PersonID, name,
			openDoorName(r.OpenDoorType), r.CardNumber, inOutName(r.InOutType), r.Terminal,
			r.Received.Local().Format(time.DateTime))
	}
	tw.Flush()
	what := "record(s)"
	if *limit > 0 && len(recs) == *limit {
		what = "record(s) (the newest; -limit 0 for all)"
		if *first {
			what = "record(s) (the oldest; -limit 0 for all)"
		}
	}
	fmt.Fprintf(c.stdout, "%d %s\n", len(recs), what)
	return nil
}

// inOutName names in_out_type values.
func inOutName(t int) string {
	switch t {
	case 1:
		return "in"
	case 2:
		return "out"
	}
	return strconv.Itoa(t)
}

// openDoorName names the project's open_door_type values.
func openDoorName(t int) string {
	switch t {
	case 1:
		return "card"
	case 2:
		return "face"
	case 3:
		return "finger"
	case 4:
		return "remote"
	case 5:
		return "pin"
	case 6:
		return "exit"
	}
	return strconv.Itoa(t)
}

func cmdExport(ctx context.Context, c *client, args []string) error {
	fs := newFlags(c, "export")
	terminal := fs.String("terminal", "", "only terminals whose uuid starts with this")
	outPath := fs.String("o", "", "write to FILE (mode 0600) instead of stdout")
	args, err := fs.parse(args)
	if err != nil {
		return err
	}
	w := c.stdout
	if *outPath != "" {
		f, err := os.OpenFile(*outPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return fmt.Errorf("export: %w", err)
		}
		defer f.Close()
		w = f
	}
	if err := c.client().Do(ctx, http.MethodGet, "/v1/records.csv", recordQuery(*terminal, 0, 0), nil, w); err != nil {
		return err
	}
	if f, ok := w.(*os.File); ok && f != os.Stdout {
		if err := f.Close(); err != nil {
			return fmt.Errorf("export: %w", err)
		}
	}
	return nil
}

func cmdFaults(ctx context.Context, c *client, args []string) error {
	fs := newFlags(c, "faults")
	fs.String("fail", "", "fraction (0..1) of uploads answered -1")
	fs.String("delay", "", "delay before every reply, e.g. 200ms")
	fs.String("drop-every", "", "drop a connection after every N requests (0: never)")
	fs.String("refuse", "", "true: cut every terminal off until false")
	args, err := fs.parse(args)
	if err != nil {
		return err
	}
	if len(args) > 0 {
		return usagef("faults takes only flags")
	}
	q := url.Values{}
	fs.Visit(func(f *flag.Flag) { q.Set(strings.ReplaceAll(f.Name, "-", "_"), f.Value.String()) })
	method := http.MethodGet
	if len(q) > 0 {
		method = http.MethodPost
	}
	var got url.Values
	if err := c.client().Do(ctx, method, "/v1/faults", q, nil, &got); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "faults: fail=%s delay=%s drop_every=%s refuse=%s\n",
		got.Get("fail"), got.Get("delay"), got.Get("drop_every"), got.Get("refuse"))
	return nil
}

func cmdDrop(ctx context.Context, c *client, args []string) error {
	args, err := newFlags(c, "drop").parse(args)
	if err != nil {
		return err
	}
	if len(args) != 1 {
		return usagef("usage: drop TERMINAL|all")
	}
	var dropped []string
	if err := c.client().Do(ctx, http.MethodPost, "/v1/drop", url.Values{"to": {args[0]}}, nil, &dropped); err != nil {
		return err
	}
	for _, d := range dropped {
		fmt.Fprintf(c.stdout, "%s: dropped\n", d)
	}
	return nil
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func cmdWait(ctx context.Context, c *client, args []string) error {
	fs := newFlags(c, "wait")
	terminals := fs.Int("terminals", 0, "wait until at least N terminals are connected and identified")
	records := fs.Int("records", 0, "wait until at least N records are stored")
	timeout := fs.Duration("timeout", time.Minute, "give up after this long (exit 1)")
	args, err := fs.parse(args)
	if err != nil {
		return err
	}
	if len(args) > 0 {
		return usagef("wait takes only flags")
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	ac := c.client()
	var last error
	for {
		last = waitCheck(ctx, ac, *terminals, *records)
		if last == nil {
			return nil
		}
		if !backoff.Sleep(ctx, 100*time.Millisecond) {
			return fmt.Errorf("wait: not within %v: %w", *timeout, last)
		}
	}
}

// waitCheck returns nil once the server answers with at least terminals
// identified terminals and records stored records.
func waitCheck(ctx context.Context, ac *admin.Client, terminals, records int) error {
	var ts []server.TerminalStatus
	if err := ac.Do(ctx, http.MethodGet, "/v1/terminals", nil, nil, &ts); err != nil {
		return err
	}
	n := 0
	for _, t := range ts {
		if t.UUID != "" {
			n++
		}
	}
	if n < terminals {
		return fmt.Errorf("%d terminal(s) connected, want %d", n, terminals)
	}
	if records > 0 {
		var recs []recordstore.Record
		if err := ac.Do(ctx, http.MethodGet, "/v1/records", recordQuery("", 0, records), nil, &recs); err != nil {
			return err
		}
		if len(recs) < records {
			return fmt.Errorf("%d record(s) stored, want %d", len(recs), records)
		}
	}
	return nil
}

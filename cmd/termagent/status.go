package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"termagent/agent"
	"termagent/store"
)

// statusReport is what `termagent status` shows: the running daemon's
// snapshot, or, when no daemon answers, what the database says.
type statusReport struct {
	// Running reports whether a daemon answered on the control socket.
	Running bool `json:"running"`
	// Agent is the daemon's snapshot (Running only).
	Agent *agent.Status `json:"agent,omitempty"`
	// Database is read from the database file (not Running only).
	Database *dbStatus `json:"database,omitempty"`
	// Problem says why the daemon or the database could not be read.
	Problem string `json:"problem,omitempty"`
}

// statusJSON is what `termagent status -json` prints (documented in
// statusAbout): statusReport with the agent's snapshot in agentJSON's form.
type statusJSON struct {
	Running  bool       `json:"running"`
	Agent    *agentJSON `json:"agent,omitempty"`
	Database *dbStatus  `json:"database,omitempty"`
	Problem  string     `json:"problem,omitempty"`
}

// agentJSON is agent.Status for people and scripts: times absent when
// they never happened (instead of 0001-01-01T00:00:00Z) and the uptime in
// seconds (instead of nanoseconds). Its fields at depth 0 take precedence
// over agent.Status's of the same JSON name; every other field of
// agent.Status appears as agent.Status marshals it.
type agentJSON struct {
	*agent.Status
	LinkSince     *time.Time            `json:"link_since,omitempty"`
	OutboxOldest  *time.Time            `json:"outbox_oldest,omitempty"`
	Started       *time.Time            `json:"started,omitempty"`
	Uptime        struct{}              `json:"uptime,omitzero"` // hides the nanoseconds
	UptimeSeconds int64                 `json:"uptime_seconds"`
	Modules       map[string]moduleJSON `json:"modules"`
}

// moduleJSON is agent.ModuleStatus with Since absent when zero.
type moduleJSON struct {
	State agent.ModuleState `json:"state"`
	Since *time.Time        `json:"since,omitempty"`
	Error string            `json:"error,omitempty"`
}

// timeOrNil returns &t, or nil for the zero time.
func timeOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func (rep statusReport) jsonReport() statusJSON {
	out := statusJSON{Running: rep.Running, Database: rep.Database, Problem: rep.Problem}
	if a := rep.Agent; a != nil {
		mods := make(map[string]moduleJSON, len(a.Modules))
		for name, m := range a.Modules {
			mods[name] = moduleJSON{State: m.State, Since: timeOrNil(m.Since), Error: m.Error}
		}
		out.Agent = &agentJSON{Status: a, LinkSince: timeOrNil(a.LinkSince), OutboxOldest: timeOrNil(a.OutboxOldest),
			Started: timeOrNil(a.Started), UptimeSeconds: int64(a.Uptime / time.Second), Modules: mods}
	}
	return out
}

// dbStatus is the state kept in the database while no daemon runs.
type dbStatus struct {
	Path              string    `json:"path"`
	Server            string    `json:"server"`
	OutboxDepth       int       `json:"outbox_depth"`
	OutboxOldest      time.Time `json:"outbox_oldest,omitzero"`
	OutboxQuarantined int       `json:"outbox_quarantined"`
	OutboxDropped     int64     `json:"outbox_dropped"`
	Persons           int       `json:"persons"`
}

const statusAbout = `Shows the running daemon's state: link and server, outbox depth, oldest
unsent record, quarantined records, persons and each module's state.
When no daemon answers on the control socket it shows what the database
holds instead and exits 3.

-json prints one object: "running" (bool); "agent" (when running):
"link" (up, down, ...), "server", "link_since", "local_addr",
"last_error", "outbox_depth", "outbox_oldest", "outbox_quarantined",
"outbox_dropped", "records_pending", "records_dropped", "uploaded",
"persons", "modules" (name → {"state", "since", "error"}),
"door_unlocked", "door_open", "software_version", "started",
"uptime_seconds" (integer seconds), "errors"; "database" (when not
running): "path", "server", "outbox_depth", "outbox_oldest",
"outbox_quarantined", "outbox_dropped", "persons"; "problem" (why the
daemon or database could not be read). Times are RFC 3339 and absent
when there is none (an empty outbox has no "outbox_oldest"); strings,
errors and lists are absent when empty.`

func cmdStatus(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("status", "[-config FILE] [-socket PATH] [-json]", statusAbout, stderr)
	path := fs.String("config", defaultConfigPath, "configuration `file` (for control.socket and store.path)")
	sock := fs.String("socket", "", "control socket `path` (default: control.socket of the configuration)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	var cfg Config
	cfgErr := error(nil)
	if c, err := loadConfig(*path); err == nil {
		cfg = c
	} else {
		cfgErr = err
		cfg = Config{}.withDefaults()
	}
	if *sock == "" {
		if cfgErr != nil {
			printConfigErrors(stderr, *path, cfgErr)
			return exitUsage
		}
		*sock = cfg.Control.Socket
	}

	rep := statusReport{}
	var st agent.Status
	err := queryStatus(ctx, *sock, &st)
	switch {
	case err == nil:
		rep.Running, rep.Agent = true, &st
	case errors.Is(err, errNotRunning) && cfgErr == nil:
		rep.Problem = err.Error()
		db, dbErr := readDatabase(ctx, cfg.Store)
		if dbErr != nil {
			rep.Problem += "; " + dbErr.Error()
		} else {
			rep.Database = &db
		}
	default:
		rep.Problem = err.Error()
	}

	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(rep.jsonReport())
	} else {
		printStatus(stdout, rep, time.Now())
	}
	switch {
	case rep.Running:
		return exitOK
	case errors.Is(err, errNotRunning):
		return exitNotRunning
	}
	return exitError
}

// readDatabase reads the fallback status from the database file. It never
// creates the file.
func readDatabase(ctx context.Context, sc StoreConfig) (dbStatus, error) {
	if _, err := os.Stat(sc.Path); err != nil {
		return dbStatus{}, fmt.Errorf("database %s: %w", sc.Path, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	// Read-only: never creates, migrates, moves aside or writes, even if
	// a daemon is running after all.
	db, err := store.Open(ctx, sc.Path, store.Config{OutboxCapacity: sc.OutboxCapacity, Check: store.CheckNone, ReadOnly: true})
	if err != nil {
		return dbStatus{}, err
	}
	defer db.Close()
	out := dbStatus{Path: sc.Path}
	s, err := db.DeviceInfo(ctx)
	if err != nil {
		return out, err
	}
	if s.ServerIP != "" {
		out.Server = net.JoinHostPort(s.ServerIP, strconv.Itoa(s.ServerPort))
	}
	ob, err := db.OutboxStats(ctx)
	if err != nil {
		return out, err
	}
	out.OutboxDepth, out.OutboxOldest, out.OutboxQuarantined, out.OutboxDropped = ob.Depth, ob.Oldest, ob.Quarantined, ob.Dropped
	if out.Persons, err = db.CountPersons(ctx); err != nil {
		return out, err
	}
	return out, nil
}

// printStatus writes rep for a person to read.
func printStatus(w io.Writer, rep statusReport, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	defer tw.Flush()
	ago := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return fmt.Sprintf("%s (%s ago)", t.Local().Format("2006-01-02 15:04:05"), now.Sub(t).Round(time.Second))
	}
	if a := rep.Agent; a != nil {
		fmt.Fprintf(tw, "termagent\t%s, running, up %s\n", a.SoftwareVersion, a.Uptime.Round(time.Second))
		link := fmt.Sprintf("%s since %s", a.Link, ago(a.LinkSince))
		if a.Server != "" {
			link += ", server " + a.Server
		}
		if a.LocalAddr != "" {
			link += ", local " + a.LocalAddr
		}
		fmt.Fprintf(tw, "link\t%s\n", link)
		if a.LastError != "" {
			fmt.Fprintf(tw, "last link error\t%s\n", a.LastError)
		}
		fmt.Fprintf(tw, "outbox\t%d unsent, oldest %s\n", a.OutboxDepth, ago(a.OutboxOldest))
		fmt.Fprintf(tw, "quarantined\t%d\n", a.OutboxQuarantined)
		fmt.Fprintf(tw, "dropped (full)\t%d\n", a.OutboxDropped)
		if a.RecordsPending > 0 || a.RecordsDropped > 0 {
			// Records the database has not taken yet (it is failing or
			// busy), and records lost because that memory queue was full.
			fmt.Fprintf(tw, "not yet stored\t%d in memory, %d lost since start\n", a.RecordsPending, a.RecordsDropped)
		}
		fmt.Fprintf(tw, "uploaded\t%d since start\n", a.Uploaded)
		fmt.Fprintf(tw, "persons\t%d\n", a.Persons)
		for _, name := range slices.Sorted(maps.Keys(a.Modules)) {
			m := a.Modules[name]
			line := fmt.Sprintf("%s since %s", m.State, ago(m.Since))
			if m.Error != "" {
				line += ": " + m.Error
			}
			fmt.Fprintf(tw, "%s\t%s\n", name, line)
		}
		door := "locked"
		if a.DoorUnlocked {
			door = "unlocked"
		}
		if a.DoorOpen {
			door += ", open"
		}
		fmt.Fprintf(tw, "door state\t%s\n", door)
		for _, e := range a.Errors {
			fmt.Fprintf(tw, "error\t%s\n", e)
		}
		return
	}
	fmt.Fprintf(tw, "termagent\tnot running\n")
	if d := rep.Database; d != nil {
		fmt.Fprintf(tw, "database\t%s\n", d.Path)
		server := d.Server
		if server == "" {
			server = "(none stored yet)"
		}
		fmt.Fprintf(tw, "server\t%s\n", server)
		fmt.Fprintf(tw, "outbox\t%d unsent, oldest %s\n", d.OutboxDepth, ago(d.OutboxOldest))
		fmt.Fprintf(tw, "quarantined\t%d\n", d.OutboxQuarantined)
		fmt.Fprintf(tw, "dropped (full)\t%d\n", d.OutboxDropped)
		fmt.Fprintf(tw, "persons\t%d\n", d.Persons)
	}
	if rep.Problem != "" {
		fmt.Fprintf(tw, "problem\t%s\n", strings.ReplaceAll(rep.Problem, "\n", " "))
	}
}

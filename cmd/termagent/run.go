package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"termagent/agent"
	"termagent/store"
)

// Shutdown budget: SIGTERM must end in exit 0 within 5 s (systemd's stop
// timeout is longer, but a terminal's supervisor may not be systemd).
const (
	// stopGrace is how long Run may take to wind down on its own (finish
	// database writes, stop its loops) before the devices are closed
	// under it to unblock whatever still waits on them.
	stopGrace = 3 * time.Second
	// stopForce is how much longer Run gets after that.
	stopForce = time.Second
)

// Log field keys of the daemon.
const (
	logComponent = "component"
	logConfig    = "config"
	logVersion   = "version"
	logPath      = "path"
	logModule    = "module"
	logServer    = "server"
	logTransport = "transport"
	logListen    = "listen"
	logAfter     = "after"
	logMovedTo   = "moved_to"
	logReason    = "reason"
	logDrivers   = "drivers"
)

func cmdRun(ctx context.Context, args []string, stderr io.Writer) int {
	fs := newFlagSet("run", "[-config FILE]",
		"Runs the terminal: opens the database and the configured devices, keeps\n"+
			"the link to the server, decides accesses and uploads records, until\n"+
			"SIGTERM or SIGINT. Logs go to stderr. Under systemd (Type=notify) it\n"+
			"reports READY=1, WATCHDOG=1 and STOPPING=1. Exits 0 after a signal, 75\n"+
			"when the server ordered a restart, 1 on a failure and 2 on a bad\n"+
			"configuration.", stderr)
	path := fs.String("config", defaultConfigPath, "configuration `file`")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		printConfigErrors(stderr, *path, err)
		return exitUsage
	}
	log := newLogger(cfg.Log, stderr)

	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	// SIGHUP would kill the daemon without a clean stop; there is no reload.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-hup:
				log.Warn().Msg("SIGHUP ignored: termagent does not reload its configuration; restart it to apply changes")
			case <-ctx.Done():
				return
			}
		}
	}()
	d := &daemon{cfg: cfg, log: log, notify: notifierFromEnv(os.Getenv)}
	h := cfg.HAL
	log.Info().Str(logVersion, version).Str(logConfig, *path).
		Str(logServer, cfg.Server.ServerAddress).Str(logTransport, cfg.Server.Transport).Bool(logListen, cfg.Server.Listen.Enabled).
		Dict(logDrivers, zerolog.Dict().Str("card", string(h.Card.Driver)).Str("fingerprint", h.Fingerprint.Driver).
			Str("face", h.Face.Driver).Str("door", h.Door.Driver)).
		Msg("termagent starting")
	for _, w := range cfg.warnings() {
		log.Warn().Str(logConfig, *path).Msg(w)
	}
	err = d.run(ctx)
	switch {
	case err == nil:
		log.Info().Msg("termagent stopped")
		return exitOK
	case errors.Is(err, agent.ErrRestart):
		log.Warn().Msg("termagent exits for a restart ordered by the server")
		return exitRestart
	}
	log.Error().Err(err).Msg("termagent failed")
	return exitError
}

// printConfigErrors prints err, a configuration file's problems, one per
// line, each line starting with the file's name.
func printConfigErrors(w io.Writer, path string, err error) {
	var many configErrors
	if !errors.As(err, &many) {
		fmt.Fprintf(w, "%s: %v\n", path, err)
		return
	}
	for _, e := range many {
		fmt.Fprintf(w, "%s: %v\n", path, e)
	}
}

// newLogger builds the daemon's logger from the log section (validated).
func newLogger(c LogConfig, w io.Writer) zerolog.Logger {
	if c.Format == "console" {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.RFC3339, NoColor: true}
	}
	level, err := zerolog.ParseLevel(c.Level)
	if err != nil {
		level = zerolog.InfoLevel
	}
	return zerolog.New(w).Level(level).With().Timestamp().Logger()
}

// daemon is one run of the terminal: the parts it built and closes.
type daemon struct {
	cfg    Config
	log    zerolog.Logger
	notify *notifier

	db    *store.DB
	parts agent.Parts
	close []namedCloser // devices, closed in order (the door first)
}

type namedCloser struct {
	name string
	c    io.Closer
}

// run builds the parts, runs the agent until ctx is done or the agent
// stops, and tears everything down in order. It returns nil after a
// signal, agent.ErrRestart after a server-ordered restart, or what failed.
func (d *daemon) run(ctx context.Context) (err error) {
	started := false
	defer func() {
		if cerr := d.closeAll(); cerr != nil && err == nil {
			err = cerr
		}
		if err != nil && !started && ctx.Err() != nil {
			// A signal during start: whatever it interrupted is not a failure.
			d.log.Info().Err(err).Msg("stopped by a signal while starting")
			err = nil
		}
	}()
	if err := d.openStore(ctx); err != nil {
		return err
	}
	if err := d.openDevices(); err != nil {
		return err
	}
	ac := d.cfg.agentConfig()
	ac.Logger = d.log
	a, err := agent.New(ac, d.parts)
	if err != nil {
		return fmt.Errorf("build agent: %w", err)
	}
	ctl, err := listenControl(d.cfg.Control.Socket, func(ctx context.Context) (any, error) {
		return a.Status(ctx), nil
	}, d.log.With().Str(logComponent, "control").Logger())
	if err != nil {
		return err
	}

	runCtx, cancelRun := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelRun()
	agentDone := make(chan error, 1)
	go func() { agentDone <- a.Run(runCtx) }()
	started = true

	var wg sync.WaitGroup
	defer wg.Wait()
	auxCtx, cancelAux := context.WithCancel(context.Background())
	defer cancelAux()
	wg.Go(func() {
		if err := ctl.Run(auxCtx); err != nil {
			d.log.Error().Err(err).Msg("control socket stopped")
		}
	})
	wg.Go(func() {
		d.notify.runWatchdog(auxCtx, func(ctx context.Context) error {
			_ = a.Status(ctx)
			return ctx.Err()
		}, func(err error) { d.log.Warn().Err(err).Msg("watchdog ping skipped") })
	})
	if err := d.notify.notify("READY=1"); err != nil {
		d.log.Warn().Err(err).Msg("notify systemd")
	}
	d.log.Info().Str(logPath, d.cfg.Store.Path).Msg("termagent running")

	var runErr error
	select {
	case runErr = <-agentDone:
		// The agent stopped by itself: a restart order or a failure.
		d.stopping()
	case <-ctx.Done():
		d.log.Info().Msg("signal received, stopping")
		d.stopping()
		cancelRun()
		runErr = d.waitAgent(agentDone)
	}
	cancelAux()
	return runErr
}

// stopping tells systemd the daemon is shutting down.
func (d *daemon) stopping() {
	if err := d.notify.notify("STOPPING=1"); err != nil {
		d.log.Warn().Err(err).Msg("notify systemd")
	}
}

// waitAgent waits for Run to return after its context was cancelled. If it
// takes longer than stopGrace, the devices are closed under it (which
// relocks the door and wakes any call blocked on a port) and it gets
// stopForce more; after that the daemon gives up waiting.
func (d *daemon) waitAgent(done <-chan error) error {
	select {
	case err := <-done:
		return err
	case <-time.After(stopGrace):
	}
	d.log.Warn().Dur(logAfter, stopGrace).Msg("agent slow to stop; closing devices under it")
	d.closeDevices()
	select {
	case err := <-done:
		return err
	case <-time.After(stopForce):
		return errors.New("agent did not stop within the shutdown budget")
	}
}

// openStore opens the database (creating it 0600 with its directory). A
// database the file system will not write is opened read-only (the store
// degrades instead of failing: a restart loop would keep the door shut).
func (d *daemon) openStore(ctx context.Context) error {
	sc := d.cfg.Store
	stc := d.cfg.storeConfig()
	stc.Logger = d.log
	db, err := store.Open(ctx, sc.Path, stc)
	if err != nil {
		return fmt.Errorf("open database %s: %w", sc.Path, err)
	}
	if r, ok := db.Recovery(); ok {
		d.log.Error().Str(logPath, sc.Path).Str(logMovedTo, r.MovedTo).Str(logReason, r.Reason).
			Str("salvaged", r.Salvaged.String()).Str("lost", r.Lost.String()).
			Msg("the database was damaged; a fresh one was started with what could be salvaged")
	}
	if ok, why := db.Writable(); !ok {
		// Not a failure: the agent decides from the persons the database
		// holds, keeps records in memory and retries until it is writable.
		d.log.Error().Str(logPath, sc.Path).Str(logReason, why).
			Msg("the database is READ-ONLY: running degraded until it can be written")
	}
	d.db = db
	d.parts.Store = db
	return nil
}

// closeDevices closes every device once (the door first, so the relay is
// released before anything else), then forgets them.
func (d *daemon) closeDevices() error {
	var errs []error
	for _, c := range d.close {
		if err := c.c.Close(); err != nil {
			d.log.Warn().Err(err).Str(logModule, c.name).Msg("close device")
			errs = append(errs, fmt.Errorf("close %s: %w", c.name, err))
		}
	}
	d.close = nil
	return errors.Join(errs...)
}

// closeAll closes the devices, then the database.
func (d *daemon) closeAll() error {
	err := d.closeDevices()
	if d.db != nil {
		if cerr := d.db.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("close database: %w", cerr))
		}
		d.db = nil
	}
	return err
}

// addCloser registers a device to close at the end; the door goes first.
func (d *daemon) addCloser(name string, c io.Closer) {
	nc := namedCloser{name, c}
	if strings.HasPrefix(name, "door") {
		d.close = append([]namedCloser{nc}, d.close...)
		return
	}
	d.close = append(d.close, nc)
}

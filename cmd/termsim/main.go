// Command termsim is the terminal's hardware simulator: it makes a card
// reader, a door relay board, a fingerprint module, a face module and a
// keypad, each on its own pseudo-terminal speaking the real wire protocol,
// and a USB keyboard-wedge card reader (input_event records on a FIFO), so termagent
// (or any driver) runs against them unchanged. Events (a card swiped, a
// finger placed, a face shown, a cable pulled) come from the console, a
// scenario file, a control socket or `termsim send`. Run `termsim help` for
// the details. The command line follows cmd/internal/cli's convention.
//
// Import rule: cmd/termsim parses flags and wires hal/sim; nothing imports
// it.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"termagent/cmd/internal/cli"
	"termagent/hal/sim"
)

// version is stamped by the Makefile with -ldflags "-X main.version=...".
var version = "dev"

// Exit statuses.
const (
	exitOK    = 0
	exitError = 1 // a device could not be made, or the scenario failed
	exitUsage = 2 // bad command line
)

const defaultDir = "/tmp/termsim"

const intro = `termsim simulates a terminal's hardware on pseudo-terminals.

It creates one pseudo-terminal per device and links it in a directory
(-dir, default ` + defaultDir + `):

  DIR/card          card reader (rdm6300, gwiot7941 or line protocol, -card)
  DIR/relay         LCUS USB relay board driving the door lock
  DIR/fingerprint   R30x/AS608 fingerprint module (0xEF01 packets)
  DIR/face          HLK-FM22x face module (EF AA frames)
  DIR/keypad        serial keypad (one ASCII byte per key)
  DIR/wedge         USB keyboard-wedge card reader: a FIFO of input_event
                    records, opened as /dev/input/eventN would be
  DIR/doorio        door sensor and exit button as gpio-keys (input_event
                    FIFO: EV_SW SW_MACHINE_COVER, EV_KEY KEY_OPEN)
  DIR/control.sock  control socket (-control)

Point termagent's configuration at those paths, e.g.
  hal: {card: {driver: rdm6300, port: DIR/card},
        door: {driver: lcus, port: DIR/relay}, ...}

Each device speaks the module side of its real protocol and keeps its state
(stored fingerprints, enrolled faces, relay contact) across unplug/replug.
Then drive it with commands, from any of:
  - this console: type a command and press Enter (Ctrl-D or quit to stop);
  - a scenario file (-scenario FILE): one command per line, run in order,
    "wait 2s" between steps; -exit stops termsim when it ends;
  - the control socket: connect (e.g. socat - UNIX-CONNECT:DIR/control.sock,
    or hal/sim.Dial from Go), send command lines, read one reply line each.

Example session:
  swipe 0006547886        a card: termagent reads card number 0006547886
  await relay on 5s       wait for termagent to unlock the door
  door open               the simulated door-position sensor says open
                          (shown by relay?, and sent on DIR/doorio; the LCUS
                          board has no inputs)
  button                  the exit button is pressed and released (doorio)
  finger 3                a finger matching the template stored at slot 3
  pin 1234#               a PIN typed on the keypad, ended by #
  wedge 0006547886        the USB reader types a card number and Enter
  unplug card             the reader vanishes; termagent should reconnect
  replug card             ... once it is back

`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// options are the parsed command line.
type options struct {
	dir, control, scenario string
	exitAfter, console     bool
	verbose                bool
	cfg                    sim.RigConfig
}

const usage = `Usage:
  termsim [run] [flags]         simulate the devices; read commands from the console
  termsim send [flags] COMMAND  send one command to a running termsim, print its reply
  termsim version               print the version
  termsim completion bash       print a bash completion script
  termsim help [send]           this help, or send's

`

func parseArgs(args []string, stdout, stderr io.Writer) (options, int, bool) {
	var o options
	fs := cli.NewFlagSet("termsim")
	fs.StringVar(&o.dir, "dir", defaultDir, "`directory` for the device links (created 0700)")
	fs.StringVar(&o.control, "control", "", "control socket `path`; default DIR/control.sock; \"none\" disables it")
	devices := fs.String("devices", strings.Join(sim.AllDevices, ","), "comma-separated `list` of devices to simulate")
	fs.StringVar(&o.cfg.Card.Protocol, "card", sim.CardRDM6300, "card reader `protocol`: rdm6300, gwiot7941 or line")
	fs.IntVar(&o.cfg.Card.Repeats, "card-repeats", 3, "frames one swipe sends, as a reader repeats while the card stays in the field")
	fs.IntVar(&o.cfg.Relay.Channels, "relay-channels", 1, "relays on the board (LCUS-1/2/4/8)")
	fs.IntVar(&o.cfg.Fingerprint.Capacity, "finger-capacity", 200, "fingerprint template slots")
	fs.IntVar(&o.cfg.Wedge.EventSize, "wedge-event-size", 0, "input_event record `size` the wedge reader writes: 24 (64-bit) or 16 (32-bit); 0 means this machine's")
	fs.BoolVar(&o.cfg.Face.NoPhotoEnroll, "face-no-photo-enroll", false, "simulate a face module without enrolment from a photo")
	fs.StringVar(&o.scenario, "scenario", "", "run the commands in `file` after start")
	fs.BoolVar(&o.exitAfter, "exit", false, "exit when the scenario ends (status 1 if a command failed)")
	fs.BoolVar(&o.console, "console", true, "read commands from standard input")
	fs.BoolVar(&o.verbose, "v", false, "log every command, from any source, to standard error")
	showVersion := fs.Bool("version", false, "print the version and exit")
	pos, err := cli.Parse(fs, args)
	switch {
	case errors.Is(err, cli.ErrHelp):
		printHelp(stdout, fs)
		return o, exitOK, false
	case err != nil:
		return o, cli.Report(stderr, "termsim", err), false
	case len(pos) > 0:
		return o, cli.Report(stderr, "termsim", cli.Usagef("", "unexpected argument %q", pos[0])), false
	case *showVersion:
		fmt.Fprintf(stdout, "termsim %s\n", version)
		return o, exitOK, false
	case o.exitAfter && o.scenario == "":
		return o, cli.Report(stderr, "termsim", cli.Usagef("", "-exit needs -scenario")), false
	}
	o.cfg.Dir = o.dir
	for _, d := range strings.Split(*devices, ",") {
		if d = strings.TrimSpace(d); d != "" {
			o.cfg.Devices = append(o.cfg.Devices, d)
		}
	}
	if len(o.cfg.Devices) == 0 {
		return o, cli.Report(stderr, "termsim", cli.Usagef("", "-devices lists no device")), false
	}
	switch o.control {
	case "":
		o.control = filepath.Join(o.dir, "control.sock")
	case "none":
		o.control = ""
	}
	return o, 0, true
}

// printHelp writes termsim's whole help: what it makes, the commands, the
// subcommands and run's flags.
func printHelp(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprint(w, intro)
	fmt.Fprintf(w, "%s\n\n%sFlags of run:\n", sim.Help, usage)
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

// run runs termsim with args and returns the exit status: the simulator
// until ctx is done, the console quits or (with -exit) the scenario ends;
// or one of the subcommands send, version and help.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch {
		case cli.IsVersion(args[0]):
			fmt.Fprintf(stdout, "termsim %s\n", version)
			return exitOK
		case args[0] == "help":
			if len(args) > 1 && args[1] == "send" {
				return cmdSend(ctx, []string{"-h"}, stdout, stderr)
			}
			args = []string{"-h"}
		case args[0] == "send":
			return cmdSend(ctx, args[1:], stdout, stderr)
		case args[0] == "completion":
			if len(args) != 2 || args[1] != "bash" {
				return cli.Report(stderr, "termsim", cli.Usagef("", "completion supports bash only: completion bash"))
			}
			fmt.Fprint(stdout, cli.BashCompletion("termsim", []string{"run", "send", "version", "completion", "help"}))
			return exitOK
		case args[0] == "run":
			args = args[1:]
		}
	}
	o, code, ok := parseArgs(args, stdout, stderr)
	if !ok {
		return code
	}
	level := zerolog.WarnLevel
	if o.verbose {
		level = zerolog.InfoLevel
	}
	o.cfg.Log = zerolog.New(zerolog.ConsoleWriter{Out: stderr, NoColor: true}).Level(level).
		With().Timestamp().Str("component", "termsim").Logger()

	rig, err := sim.NewRig(o.cfg)
	if err != nil {
		fmt.Fprintf(stderr, "termsim: %v\n", err)
		return exitError
	}
	defer rig.Close()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	served := make(chan error, 1)
	if o.control != "" {
		ln, err := listenControl(o.control)
		if err != nil {
			fmt.Fprintf(stderr, "termsim: %v\n", err)
			return exitError
		}
		defer os.Remove(o.control)
		go func() { served <- rig.ServeControl(ctx, ln) }()
	} else {
		close(served)
	}

	for _, d := range rig.Devices() {
		target, err := os.Readlink(rig.Path(d))
		if err != nil { // the wedge reader's FIFO is no link
			target = "(FIFO of input_event records)"
		}
		fmt.Fprintf(stdout, "%-12s %s -> %s\n", d, rig.Path(d), target)
	}
	if o.control != "" {
		fmt.Fprintf(stdout, "%-12s %s\n", "control", o.control)
	}
	if relay := rig.Relay(); relay != nil {
		go watchRelay(ctx, relay, stdout)
	}
	fmt.Fprintln(stdout, "termsim: ready (type help for commands)")

	code = exitOK
	if o.scenario != "" {
		if err := runScenario(ctx, rig, o.scenario, stdout); err != nil {
			fmt.Fprintf(stderr, "termsim: %v\n", err)
			code = exitError
			if o.exitAfter || errors.Is(err, fs.ErrNotExist) {
				return stopControl(cancel, served, code)
			}
		}
		if o.exitAfter {
			return stopControl(cancel, served, code)
		}
	}
	if o.console {
		if quit := console(ctx, rig, stdin, stdout); quit {
			return stopControl(cancel, served, code)
		}
	}
	<-ctx.Done()
	fmt.Fprintln(stdout, "termsim: stopped")
	return stopControl(cancel, served, code)
}

func stopControl(cancel context.CancelFunc, served <-chan error, code int) int {
	cancel()
	if err := <-served; err != nil && code == exitOK {
		return exitError
	}
	return code
}

// listenControl listens on a unix socket at path, replacing a stale socket
// left by a killed termsim but nothing else, and makes it owner-only.
func listenControl(path string) (net.Listener, error) {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&fs.ModeSocket == 0 {
			return nil, fmt.Errorf("control socket %s: exists and is not a socket", path)
		}
		if c, err := net.Dial("unix", path); err == nil {
			c.Close()
			return nil, fmt.Errorf("control socket %s: another termsim is listening", path)
		}
		os.Remove(path)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	return ln, nil
}

func runScenario(ctx context.Context, rig *sim.Rig, path string, stdout io.Writer) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("scenario: %w", err)
	}
	defer f.Close()
	return rig.RunScript(ctx, f, stdout)
}

// console runs commands typed on stdin, printing each reply, until quit, end
// of input or ctx. It reports whether termsim should stop: on quit, or at
// end of input from a terminal (Ctrl-D). End of input from a file or
// /dev/null (termsim in the background) only ends the console.
func console(ctx context.Context, rig *sim.Rig, stdin io.Reader, stdout io.Writer) (quit bool) {
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdin)
		sc.Buffer(make([]byte, sim.MaxCommandLen), sim.MaxCommandLen)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return false
		case line, ok := <-lines:
			if !ok {
				return isTerminal(stdin)
			}
			switch strings.TrimSpace(line) {
			case "quit", "exit":
				return true
			}
			reply := rig.Exec(ctx, line)
			if reply == "ok" && strings.TrimSpace(line) != "" {
				reply = "ok: " + strings.TrimSpace(line) // say what was done
			}
			fmt.Fprintln(stdout, reply)
		}
	}
}

// watchRelay prints a line each time the door relay switches, until ctx
// is done: what a person at the door would hear click.
func watchRelay(ctx context.Context, relay *sim.Relay, stdout io.Writer) {
	on := relay.State().On
	for {
		st, err := relay.Wait(ctx, func(s sim.RelayState) bool { return s.On != on })
		if err != nil {
			return
		}
		on = st.On
		if on {
			fmt.Fprintln(stdout, "relay: click, ON (door unlocked)")
		} else {
			fmt.Fprintln(stdout, "relay: click, off (door locked)")
		}
	}
}

const sendAbout = `Connects to a running termsim's control socket (DIR/control.sock, or
-control) and sends COMMAND: its words joined by blanks, several commands
separated by ";" and run in order, e.g.
  termsim send swipe 0006547886
  termsim send 'swipe 0006547886; await relay on 30s'
It prints each reply and exits 0 when all were "ok ...", 1 at the first
"err ..." or when no termsim answers within -timeout. It waits for the
socket to appear, so it can follow a termsim started in the background.
'termsim help' lists the commands.`

// cmdSend sends one command to a running termsim.
func cmdSend(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := cli.NewFlagSet("send")
	dir := fs.String("dir", defaultDir, "`directory` of the running termsim")
	control := fs.String("control", "", "control socket `path`; default DIR/control.sock")
	timeout := fs.Duration("timeout", 30*time.Second, "give up when no termsim answers (or the command has not ended) within this")
	pos, err := cli.Parse(fs, args)
	switch {
	case errors.Is(err, cli.ErrHelp):
		cli.PrintCommandHelp(stdout, "termsim", fs, "[-dir DIR] [-control PATH] COMMAND...", sendAbout)
		return exitOK
	case err == nil && len(pos) == 0:
		err = cli.Usagef("send", "send needs a command, e.g. send swipe 0006547886")
	}
	if err != nil {
		return cli.Report(stderr, "termsim", err)
	}
	if *control == "" {
		*control = filepath.Join(*dir, "control.sock")
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	var c *sim.Control
	for {
		if c, err = sim.Dial(ctx, *control); err == nil {
			break
		}
		t := time.NewTimer(50 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return cli.Report(stderr, "termsim", fmt.Errorf("no termsim answers on %s within %v: %w", *control, *timeout, err))
		case <-t.C:
		}
	}
	defer c.Close()
	for _, command := range strings.Split(strings.Join(pos, " "), ";") {
		command = strings.TrimSpace(command)
		if command == "" {
			continue
		}
		reply, err := c.Do(ctx, command)
		if err != nil {
			return cli.Report(stderr, "termsim", err)
		}
		if reply == "" {
			reply = command
		}
		fmt.Fprintln(stdout, "ok:", reply)
	}
	return exitOK
}

func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// Command termserver is the project's reference management server: it
// accepts terminals over TCP and WebSocket (protocol V1.0, see
// shared/spec/PROTOCOL.md), names each by its device_info.uuid, stores their
// access records in SQLite (dropping duplicates by session_id) and sends
// them commands. It can inject faults to test terminals, run a fleet of
// simulated terminals against any server, and drive the end-to-end demo.
//
//	termserver serve [-listen :49003] [-ws ADDR] [-db FILE] [-fail F] [-delay D] [-drop-every N]
//	termserver list | stats
//	termserver info TERMINAL | status TERMINAL
//	termserver set TERMINAL key=value...
//	termserver push [-to TERMINAL|all] FOLDER|FILE.csv
//	termserver remove [-to TERMINAL|all] PERSON_ID...
//	termserver command [-to TERMINAL|all] TYPE [VALUE]
//	termserver records [-terminal T] [-after ID] [-limit N]
//	termserver export [-terminal T] [-o FILE]
//	termserver faults [-fail F] [-delay D] [-drop-every N] [-refuse=true|false]
//	termserver drop TERMINAL|all
//	termserver console
//	termserver fleet [-n 1000] [-rate 1] [-duration 30s] [-server ADDR]
//	termserver demo -bin DIR
//
// Every command but serve, fleet and demo talks to a running server through
// its admin endpoint (HTTP on loopback, -admin, default 127.0.0.1:49005).
//
// Import rule: as every cmd/, it builds the concrete parts (protocol, store,
// agent, hal/sim) and handles flags and signals; nothing imports it.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// version is stamped at build time (-ldflags -X main.version=...).
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "termserver:", err)
		}
		os.Exit(exitCode(err))
	}
}

// exitCode is 2 for usage errors, 1 for everything else.
func exitCode(err error) int {
	var u usageError
	if errors.As(err, &u) || errors.Is(err, flag.ErrHelp) {
		return 2
	}
	return 1
}

// usageError is a command line that cannot be carried out as written.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// cli is what every command needs: where to print and how to reach the
// admin endpoint.
type cli struct {
	admin  string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

func (c *cli) client() *adminClient { return newAdminClient(c.admin) }

type command struct {
	name    string
	usage   string
	run     func(ctx context.Context, c *cli, args []string) error
	console bool // available in the interactive console
}

func commands() []command {
	return []command{
		{"serve", "run the server", cmdServe, false},
		{"list", "list connected terminals", cmdList, true},
		{"stats", "print the server's counters", cmdStats, true},
		{"info", "TERMINAL: get device info", cmdInfo, true},
		{"status", "TERMINAL: get device status (extension)", cmdStatus, true},
		{"set", "TERMINAL key=value...: set device info (uuid device_ip device_port server_ip server_port address community_code)", cmdSet, true},
		{"push", "[-to T|all] FOLDER|FILE.csv: download persons", cmdPush, true},
		{"remove", "[-to T|all] PERSON_ID...: remove persons (extension)", cmdRemove, true},
		{"command", "[-to T|all] TYPE [VALUE]: send a user command", cmdCommand, true},
		{"records", "[-terminal T] [-after ID] [-limit N]: list records", cmdRecords, true},
		{"export", "[-terminal T] [-o FILE]: export records as CSV", cmdExport, true},
		{"faults", "[-fail F] [-delay D] [-drop-every N] [-refuse=B]: show or change fault injection", cmdFaults, true},
		{"drop", "TERMINAL|all: close terminal connections", cmdDrop, true},
		{"console", "interactive console of these commands", cmdConsole, false},
		{"fleet", "run N simulated terminals against a server and measure", cmdFleet, false},
		{"demo", "the end-to-end demo (server, termsim, termagent)", cmdDemo, false},
		{"version", "print the version", func(_ context.Context, c *cli, _ []string) error {
			fmt.Fprintln(c.stdout, "termserver", version)
			return nil
		}, true},
	}
}

func usage(w io.Writer, console bool) {
	if !console {
		fmt.Fprintln(w, "usage: termserver [-admin 127.0.0.1:49005] COMMAND [flags] [args]")
	}
	fmt.Fprintln(w, "commands:")
	for _, cmd := range commands() {
		if console && !cmd.console {
			continue
		}
		fmt.Fprintf(w, "  %-8s %s\n", cmd.name, cmd.usage)
	}
	if console {
		fmt.Fprintln(w, "  help     this list\n  quit     leave the console")
	}
}

// run parses the global flags and runs one command.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("termserver", flag.ContinueOnError)
	fs.SetOutput(stderr)
	admin := fs.String("admin", envOr("TERMSERVER_ADMIN", DefaultAdmin), "admin endpoint (loopback host:port); env TERMSERVER_ADMIN")
	fs.Usage = func() { usage(stderr, false); fs.PrintDefaults() }
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return usagef("no command")
	}
	c := &cli{admin: *admin, stdin: stdin, stdout: stdout, stderr: stderr}
	return dispatch(ctx, c, fs.Args(), false)
}

func dispatch(ctx context.Context, c *cli, args []string, console bool) error {
	name := args[0]
	for _, cmd := range commands() {
		if cmd.name == name && (!console || cmd.console) {
			return cmd.run(ctx, c, args[1:])
		}
	}
	if name == "help" || name == "-h" || name == "--help" {
		usage(c.stdout, console)
		return nil
	}
	return usagef("unknown command %q (try help)", name)
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// newFlags returns a flag set for a subcommand that reports errors
// instead of exiting.
func newFlags(c *cli, name, args string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	fs.Usage = func() {
		fmt.Fprintf(c.stderr, "usage: termserver %s %s\n", name, args)
		fs.PrintDefaults()
	}
	return fs
}

// cmdConsole reads commands line by line from stdin until EOF or quit.
func cmdConsole(ctx context.Context, c *cli, args []string) error {
	if len(args) > 0 {
		return usagef("console takes no arguments")
	}
	fmt.Fprintf(c.stdout, "termserver console on %s; help lists the commands\n", c.admin)
	sc := bufio.NewScanner(c.stdin)
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	for {
		fmt.Fprint(c.stdout, "> ")
		if !sc.Scan() {
			fmt.Fprintln(c.stdout)
			return sc.Err()
		}
		words, err := splitWords(sc.Text())
		if err != nil {
			fmt.Fprintln(c.stdout, "error:", err)
			continue
		}
		if len(words) == 0 {
			continue
		}
		if words[0] == "quit" || words[0] == "exit" {
			return nil
		}
		if err := dispatch(ctx, c, words, true); err != nil && !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(c.stdout, "error:", err)
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// splitWords splits a console line into words: blanks separate, and
// "double" or 'single' quotes keep blanks inside a word. It never runs a
// shell.
func splitWords(line string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	var quote rune
	for _, r := range line {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '"' || r == '\'':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unclosed %c quote", quote)
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

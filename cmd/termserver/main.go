// Command termserver is the project's reference management server: it
// accepts terminals over TCP and WebSocket (protocol V1.0, see
// protocol/PROTOCOL.md), names each by its device_info.uuid, stores their
// access records in SQLite (dropping duplicates by session_id) and sends
// them commands. It can inject faults to test terminals, run a fleet of
// simulated terminals against any server, and drive the end-to-end demo.
//
//	termserver serve [-listen 127.0.0.1:49003] [-ws ADDR] [-db FILE] [-fail F] [-delay D] [-drop-every N]
//	termserver list | stats | wait [-terminals N] [-records N]
//	termserver info TERMINAL | status TERMINAL
//	termserver set TERMINAL key=value...
//	termserver push [-to TERMINAL|all] FOLDER|FILE.csv
//	termserver sample DIR
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
// Every command but serve, fleet, demo and sample talks to a running server
// through its admin endpoint (HTTP/JSON on loopback, -admin, default
// 127.0.0.1:49005), authenticated by a token serve writes to a 0600 file.
// The command line follows cmd/internal/cli's convention.
//
// The server lives in packages under internal/: server (terminals,
// uploads, calls), recordstore (the SQLite record database), faults (fault
// injection) and admin (the admin endpoint and its client); servertest
// runs them in tests. This package is the command line, the demo and the
// fleet.
//
// Import rule: as every cmd/, it builds the concrete parts (protocol, store,
// agent, its internal packages) and handles flags and signals; nothing
// imports it.
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

	"termagent/cmd/internal/cli"
	"termagent/cmd/termserver/internal/admin"
)

// version is stamped at build time (-ldflags -X main.version=...).
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(cli.Report(os.Stderr, "termserver", err))
}

// exitCode is the status main exits with for err (see cmd/internal/cli).
func exitCode(err error) int { return cli.Report(io.Discard, "termserver", err) }

// usagef returns a usage error (exit status 2).
func usagef(format string, args ...any) error { return cli.Usagef("", format, args...) }

// client is what every command needs: where to print and how to reach the
// admin endpoint.
type client struct {
	admin     string // admin endpoint host:port
	tokenFile string // the admin token's file ("" for the default of admin)
	stdin     io.Reader
	stdout    io.Writer
	stderr    io.Writer
}

func (c *client) client() *admin.Client {
	ac := admin.NewClient(c.admin)
	ac.TokenFile = c.tokenFile
	return ac
}

type command struct {
	name     string
	synopsis string // arguments, for the usage line
	summary  string // one line, for the command list
	about    string // what it does, for COMMAND -h
	run      func(ctx context.Context, c *client, args []string) error
	console  bool // available in the interactive console
}

func commands() []command {
	return []command{
		{"serve", "[flags]", "run the server", serveAbout, cmdServe, false},
		{"list", "", "list connected terminals", "", cmdList, true},
		{"wait", "[-terminals N] [-records N] [-timeout D]", "wait until N terminals are connected or N records stored",
			"Waits until the server answers, at least -terminals terminals are connected\nand identified, and at least -records records are stored; exits 1 after\n-timeout.", cmdWait, true},
		{"stats", "", "print the server's counters", "", cmdStats, true},
		{"info", "TERMINAL|all", "get device info", "", cmdInfo, true},
		{"status", "TERMINAL|all", "get device status (extension)", "", cmdStatus, true},
		{"set", "TERMINAL|all key=value...", "set device info",
			"Keys: uuid device_ip device_port server_ip server_port address community_code.", cmdSet, true},
		{"push", "[-to TERMINAL|all] FOLDER|FILE.csv", "download persons (card, face photo, fingerprint templates)", pushAbout, cmdPush, true},
		{"sample", "DIR", "write a sample person (CSV, face photo, fingerprint template) into DIR", sampleAbout, cmdSample, true},
		{"remove", "[-to TERMINAL|all] PERSON_ID...", "remove persons (extension)", "", cmdRemove, true},
		{"command", "[-to TERMINAL|all] TYPE [VALUE]", "send a user command (1: open the door)", "", cmdCommand, true},
		{"records", "[-terminal T] [-after ID] [-limit N] [-first]", "list records, newest last", "", cmdRecords, true},
		{"export", "[-terminal T] [-o FILE]", "export records as CSV", "", cmdExport, true},
		{"faults", "[-fail F] [-delay D] [-drop-every N] [-refuse=B]", "show or change fault injection", "", cmdFaults, true},
		{"drop", "TERMINAL|all", "close terminal connections", "", cmdDrop, true},
		{"console", "", "interactive console of these commands", "", cmdConsole, false},
		{"fleet", "[flags]", "run N simulated terminals against a server and measure", "", cmdFleet, false},
		{"demo", "[-bin DIR] [-keep]", "the end-to-end demo (server, termsim, termagent)", "", cmdDemo, false},
		{"completion", "bash", "print a bash completion script (source <(termserver completion bash))", "", cmdCompletion, false},
		{"version", "", "print the version", "", func(ctx context.Context, c *client, args []string) error {
			if _, err := newFlags(c, "version").parse(args); err != nil {
				return err
			}
			fmt.Fprintln(c.stdout, "termserver", version)
			return nil
		}, true},
	}
}

const globalFlags = `Global flags (before COMMAND):
  -admin HOST:PORT   the admin endpoint (loopback only; env TERMSERVER_ADMIN;
                     default ` + admin.DefaultAddr + `)
  -token-file FILE   the admin token (default: admin-HOST-PORT.token in the
                     state directory, ~/.local/state/termserver)
`

func usage(w io.Writer, console bool) {
	if !console {
		fmt.Fprintln(w, "Usage: termserver [-admin HOST:PORT] [-token-file FILE] COMMAND [flags] [args]")
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, "Commands:")
	for _, cmd := range commands() {
		if console && !cmd.console {
			continue
		}
		fmt.Fprintf(w, "  %-8s %s\n", cmd.name, cmd.summary)
	}
	if console {
		fmt.Fprintln(w, "  help     this list (help COMMAND: its flags)\n  quit     leave the console")
		return
	}
	fmt.Fprintf(w, "\n%s\nEvery command but serve, fleet, demo and sample talks to a running server\nthrough its admin endpoint. Flags may follow arguments. Run\n'termserver help COMMAND' (or COMMAND -h) for a command's flags.\n", globalFlags)
}

// run parses the global flags and runs one command.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) > 0 && cli.IsVersion(args[0]) {
		args = append([]string{"version"}, args[1:]...)
	}
	fs := cli.NewFlagSet("termserver")
	admin := fs.String("admin", envOr("TERMSERVER_ADMIN", admin.DefaultAddr), "")
	tokenFile := fs.String("token-file", "", "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(stdout, false)
			return cli.ErrHelp
		}
		return usagef("%v", err)
	}
	if fs.NArg() == 0 {
		return usagef("no command")
	}
	c := &client{admin: *admin, tokenFile: *tokenFile, stdin: stdin, stdout: stdout, stderr: stderr}
	return dispatch(ctx, c, fs.Args(), false)
}

func dispatch(ctx context.Context, c *client, args []string, console bool) error {
	name := args[0]
	if cli.IsHelp(name) {
		if len(args) > 1 && !cli.IsHelp(args[1]) {
			// help COMMAND is COMMAND -h.
			return dispatch(ctx, c, []string{args[1], "-h"}, console)
		}
		usage(c.stdout, console)
		return cli.ErrHelp
	}
	for _, cmd := range commands() {
		if cmd.name == name && (!console || cmd.console) {
			return cmd.run(ctx, c, args[1:])
		}
	}
	return usagef("unknown command %q", name)
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// flagSet is a subcommand's flags, parsed the shared way (cmd/internal/cli):
// flags may follow arguments; -h prints the command's help on stdout.
type flagSet struct {
	*flag.FlagSet
	c *client
}

// newFlags returns the flag set of command name.
func newFlags(c *client, name string) *flagSet {
	return &flagSet{FlagSet: cli.NewFlagSet(name), c: c}
}

// parse parses args and returns the arguments that are not flags. On -h it
// prints the command's help and returns cli.ErrHelp.
func (fs *flagSet) parse(args []string) ([]string, error) {
	pos, err := cli.Parse(fs.FlagSet, args)
	if errors.Is(err, cli.ErrHelp) {
		for _, cmd := range commands() {
			if cmd.name == fs.Name() {
				about := cmd.about
				if about == "" {
					about = strings.ToUpper(cmd.summary[:1]) + cmd.summary[1:] + "."
				}
				cli.PrintCommandHelp(fs.c.stdout, "termserver", fs.FlagSet, cmd.synopsis, about)
			}
		}
	}
	return pos, err
}

// cmdCompletion prints the bash completion script.
func cmdCompletion(ctx context.Context, c *client, args []string) error {
	args, err := newFlags(c, "completion").parse(args)
	if err != nil {
		return err
	}
	if len(args) != 1 || args[0] != "bash" {
		return usagef("completion supports bash only: completion bash")
	}
	names := []string{"help"}
	for _, cmd := range commands() {
		names = append(names, cmd.name)
	}
	fmt.Fprint(c.stdout, cli.BashCompletion("termserver", names))
	return nil
}

// cmdConsole reads commands line by line from stdin until EOF or quit.
func cmdConsole(ctx context.Context, c *client, args []string) error {
	args, err := newFlags(c, "console").parse(args)
	if err != nil {
		return err
	}
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
		if err := dispatch(ctx, c, words, true); err != nil && !errors.Is(err, cli.ErrHelp) {
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

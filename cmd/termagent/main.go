// Command termagent is the daemon of an attendance / access-control
// terminal: it reads one YAML configuration file, builds the database, the
// hardware drivers and the agent, and runs them until SIGTERM or SIGINT.
//
//	termagent run -config /etc/termagent/termagent.yaml
//	termagent status [-config FILE] [-json]
//	termagent check-config -config FILE
//	termagent version
//
// Import rule: cmd/termagent is the only place that reads configuration,
// builds concrete parts (store.DB, hal drivers) and handles signals; agent,
// store, protocol and hal never import it. termagent.example.yaml beside
// this file documents every configuration key and its default.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"termagent/cmd/internal/cli"
)

// version is the software version, stamped by the Makefile with
// -ldflags "-X main.version=...".
var version = "dev"

// defaultConfigPath is where run, status and check-config look without -config.
const defaultConfigPath = "/etc/termagent/termagent.yaml"

// Exit statuses.
const (
	exitOK         = 0
	exitError      = 1  // the command failed
	exitUsage      = 2  // bad command line or configuration
	exitNotRunning = 3  // status: no daemon answered (LSB "program is not running")
	exitRestart    = 75 // run: the server ordered a restart (EX_TEMPFAIL); the supervisor restarts us
)

func main() {
	os.Exit(runMain(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `termagent runs an attendance / access-control terminal.

Usage:
  termagent run [-config FILE]            run the terminal until SIGTERM or SIGINT
  termagent status [-config FILE] [-json] show the running daemon's state
                                          (or, when it is not running, the database's)
  termagent check-config [-config FILE]   check a configuration file and exit
  termagent version                       print the version
  termagent completion bash               print a bash completion script
  termagent help [COMMAND]                this help, or a command's

FILE defaults to ` + defaultConfigPath + `. termagent.example.yaml documents every key.
Run 'termagent help COMMAND' (or COMMAND -h) for a command's flags; flags may
follow arguments.
`

// runMain runs the command line args and returns the exit status. The
// command line follows cmd/internal/cli's convention.
func runMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		return cli.Report(stderr, "termagent", cli.Usagef("", "no command"))
	}
	cmd, args := args[0], args[1:]
	if cmd == "help" && len(args) > 0 {
		cmd, args = args[0], []string{"-h"}
	}
	// A command asked for its help prints it on stdout: the commands print
	// their help where they print their errors, so give them stdout.
	if wantsHelp(args) {
		stderr = stdout
	}
	switch {
	case cmd == "run":
		return cmdRun(ctx, args, stderr)
	case cmd == "status":
		return cmdStatus(ctx, args, stdout, stderr)
	case cmd == "check-config":
		return cmdCheckConfig(args, stdout, stderr)
	case cli.IsVersion(cmd):
		fmt.Fprintf(stdout, "termagent %s\n", version)
		return exitOK
	case cmd == "completion":
		if len(args) != 1 || args[0] != "bash" {
			return cli.Report(stderr, "termagent", cli.Usagef("", "completion supports bash only: completion bash"))
		}
		fmt.Fprint(stdout, cli.BashCompletion("termagent", []string{"run", "status", "check-config", "version", "completion", "help"}))
		return exitOK
	case cli.IsHelp(cmd):
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	return cli.Report(stderr, "termagent", cli.Usagef("", "unknown command %q", cmd))
}

// wantsHelp reports whether args ask for help before any "--".
func wantsHelp(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		if a == "-h" || a == "-help" || a == "--help" {
			return true
		}
	}
	return false
}

// newFlagSet returns a flag set for a subcommand; its -h prints what it
// does on w, where parseFlags also reports errors.
func newFlagSet(name, synopsis, about string, w io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(w)
	fs.Usage = func() {
		out := fs.Output()
		cli.PrintCommandHelp(out, "termagent", fs, synopsis, about)
		fs.SetOutput(out)
	}
	return fs
}

// parseFlags parses args (flags may follow arguments; none are expected)
// and reports the exit status to return when parsing ended the command
// (-h, or a usage error, printed once).
func parseFlags(fs *flag.FlagSet, args []string) (int, bool) {
	out := fs.Output()
	fs.SetOutput(io.Discard)
	pos, err := cli.Parse(fs, args)
	fs.SetOutput(out)
	switch {
	case errors.Is(err, cli.ErrHelp):
		fs.Usage()
		return exitOK, false
	case err == nil && len(pos) > 0:
		err = cli.Usagef(fs.Name(), "%s: unexpected argument %q", fs.Name(), pos[0])
	}
	if err != nil {
		return cli.Report(out, "termagent", err), false
	}
	return 0, true
}

func cmdCheckConfig(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("check-config", "[-config FILE]",
		"Reads and checks the configuration file the way run does, without opening\n"+
			"the database or any device, and checks that this user can create the\n"+
			"database and the control socket where the file says. Prints \"ok\" and\n"+
			"exits 0, or prints every problem, each with its line and key, and exits 2.\n"+
			"Hooks, TLS files and serial ports missing on this machine are printed as\n"+
			"warnings.", stderr)
	path := fs.String("config", defaultConfigPath, "configuration `file`")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	c, lines, err := loadConfigLines(*path)
	var many configErrors
	var one *configError
	switch {
	case errors.As(err, &many):
	case errors.As(err, &one):
		many = configErrors{one}
	case err != nil: // unreadable, or not YAML of one document: nothing more to check
		fmt.Fprintf(stderr, "%s: %v\n", *path, err)
		return exitUsage
	}
	printConfigErrors(stderr, *path, many)
	bad := len(many) > 0
	for _, e := range c.machineErrors() {
		e.Line = lineOf(lines, e.Path)
		fmt.Fprintf(stderr, "%s: %v\n", *path, e)
		bad = true
	}
	if bad {
		return exitUsage
	}
	for _, w := range c.warnings() {
		fmt.Fprintf(stderr, "%s: warning: %s\n", *path, w)
	}
	fmt.Fprintf(stdout, "%s: ok\n", *path)
	return exitOK
}

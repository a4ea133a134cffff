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

FILE defaults to ` + defaultConfigPath + `. termagent.example.yaml documents every key.
Run 'termagent COMMAND -h' for a command's flags.
`

// runMain runs the command line args and returns the exit status.
func runMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "run":
		return cmdRun(ctx, args, stderr)
	case "status":
		return cmdStatus(ctx, args, stdout, stderr)
	case "check-config":
		return cmdCheckConfig(args, stdout, stderr)
	case "version", "-version", "--version":
		fmt.Fprintf(stdout, "termagent %s\n", version)
		return exitOK
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	fmt.Fprintf(stderr, "termagent: unknown command %q\n\n%s", cmd, usage)
	return exitUsage
}

// newFlagSet returns a flag set for a subcommand whose -h prints what it does.
func newFlagSet(name, synopsis, about string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: termagent %s %s\n\n%s\n\nFlags:\n", name, synopsis, about)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args and reports the exit status to return when parsing
// ended the command (-h or a bad flag).
func parseFlags(fs *flag.FlagSet, args []string) (int, bool) {
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return exitOK, false
	case err != nil:
		return exitUsage, false
	case fs.NArg() > 0:
		fmt.Fprintf(fs.Output(), "termagent %s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return exitUsage, false
	}
	return 0, true
}

func cmdCheckConfig(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("check-config", "[-config FILE]",
		"Reads and checks the configuration file the way run does, without opening\n"+
			"the database or any device. Prints \"ok\" and exits 0, or prints the first\n"+
			"problem with its line and key and exits 2. Hooks, TLS files and serial\n"+
			"ports missing on this machine are printed as warnings.", stderr)
	path := fs.String("config", defaultConfigPath, "configuration `file`")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	c, err := loadConfig(*path)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", *path, err)
		return exitUsage
	}
	if _, err := c.agentConfig(); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", *path, err)
		return exitUsage
	}
	for _, w := range c.warnings() {
		fmt.Fprintf(stderr, "%s: warning: %s\n", *path, w)
	}
	fmt.Fprintf(stdout, "%s: ok\n", *path)
	return exitOK
}

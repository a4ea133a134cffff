// Package cli is the command-line convention termagent, termsim and
// termserver share, so the three programs behave alike:
//
//   - PROG -h, -help, --help and PROG help print the usage on stdout and
//     exit 0; so do PROG COMMAND -h and PROG help COMMAND.
//   - PROG version (and -version, --version) prints "PROG VERSION", exit 0.
//   - A usage error (unknown command or flag, missing argument) prints one
//     line on stderr, "PROG: what is wrong (PROG help COMMAND)", and exits 2.
//   - Any other failure prints "PROG: error" once on stderr and exits 1
//     (or the command's own documented status).
//   - Flags may come before or after arguments (push FILE -to all); "--"
//     ends the flags.
//
// It is a thin layer over the standard flag package: the three programs
// have a handful of subcommands and flags each, which flag expresses; a
// framework (cobra, urfave/cli) would add two modules and their licences to
// every binary for the same result.
//
// Import rule: only cmd/ programs import it; it imports nothing of the
// project.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// Exit statuses shared by the three programs.
const (
	ExitOK    = 0
	ExitError = 1
	ExitUsage = 2
)

// ErrHelp is returned by Parse when -h, -help or --help was given; the
// caller prints the help and exits 0.
var ErrHelp = flag.ErrHelp

// UsageError is a command line that cannot be carried out as written.
type UsageError struct {
	// Msg says what is wrong, without the program's name.
	Msg string
	// Command is the subcommand whose help the user should read ("" for
	// the program's own).
	Command string
}

func (e *UsageError) Error() string { return e.Msg }

// Usagef returns a *UsageError for command with a formatted message.
func Usagef(command, format string, args ...any) error {
	return &UsageError{Msg: fmt.Sprintf(format, args...), Command: command}
}

// IsHelp reports whether s asks for help (-h, -help, --help, help).
func IsHelp(s string) bool {
	switch s {
	case "-h", "-help", "--help", "help":
		return true
	}
	return false
}

// IsVersion reports whether s asks for the version (version, -version,
// --version).
func IsVersion(s string) bool {
	switch s {
	case "version", "-version", "--version":
		return true
	}
	return false
}

// NewFlagSet returns a flag set for command that never prints or exits by
// itself: Parse returns what went wrong and the caller reports it once.
func NewFlagSet(command string) *flag.FlagSet {
	fs := flag.NewFlagSet(command, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// Parse parses args into fs and returns the arguments that are not flags,
// in order. Flags may follow arguments; "--" ends the flags (it is not
// returned). It returns ErrHelp for -h, -help and --help, and a
// *UsageError naming fs for anything flag refuses.
func Parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var tail []string
	for i, a := range args {
		if a == "--" {
			args, tail = args[:i], args[i+1:]
			break
		}
	}
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, ErrHelp
			}
			return nil, &UsageError{Msg: err.Error(), Command: fs.Name()}
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	return append(pos, tail...), nil
}

// PrintCommandHelp writes a command's help: its usage line, what it does
// and its flags.
func PrintCommandHelp(w io.Writer, prog string, fs *flag.FlagSet, synopsis, about string) {
	fmt.Fprintf(w, "Usage: %s %s %s\n", prog, fs.Name(), synopsis)
	if about != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimRight(about, "\n"))
	}
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n > 0 {
		fmt.Fprintln(w, "\nFlags:")
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
}

// Report prints err once on stderr the convention's way and returns the
// exit status: 0 for nil and ErrHelp (the caller printed the help), 2 for
// a *UsageError, 1 otherwise.
func Report(stderr io.Writer, prog string, err error) int {
	var u *UsageError
	switch {
	case err == nil, errors.Is(err, ErrHelp):
		return ExitOK
	case errors.As(err, &u):
		hint := prog + " help"
		if u.Command != "" && u.Command != prog {
			hint += " " + u.Command
		}
		fmt.Fprintf(stderr, "%s: %s (%s)\n", prog, u.Msg, hint)
		return ExitUsage
	}
	fmt.Fprintf(stderr, "%s: %v\n", prog, err)
	return ExitError
}

// BashCompletion returns a bash completion script for prog: its
// subcommands as the first word, then files. Load it with
// `source <(PROG completion bash)`.
func BashCompletion(prog string, subcommands []string) string {
	fn := "_" + strings.NewReplacer("-", "_", ".", "_").Replace(prog)
	return fmt.Sprintf(`# bash completion for %[1]s: source <(%[1]s completion bash)
%[2]s() {
	local cur=${COMP_WORDS[COMP_CWORD]}
	if [ "$COMP_CWORD" -eq 1 ]; then
		COMPREPLY=($(compgen -W %[3]q -- "$cur"))
	fi
}
complete -o default -o bashdefault -F %[2]s %[1]s
`, prog, fn, strings.Join(subcommands, " "))
}

package cli_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// buildPrograms builds termagent, termsim and termserver into a temp dir.
func buildPrograms(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	goBin := os.Getenv("GO")
	if goBin == "" {
		goBin = "go"
	}
	cmd := exec.Command(goBin, "build", "-o", dir+"/", "-ldflags", "-X main.version=v9.8.7-test",
		"termagent/cmd/termagent", "termagent/cmd/termsim", "termagent/cmd/termserver")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return dir
}

type result struct {
	code           int
	stdout, stderr string
}

func runProg(t *testing.T, bin string, args ...string) result {
	t.Helper()
	// A hang catcher, not a speed limit: no case here waits on anything.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "XDG_STATE_HOME=")
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr, cmd.Stdin = &o, &e, strings.NewReader("")
	err := cmd.Run()
	r := result{stdout: o.String(), stderr: e.String()}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	default:
		t.Fatalf("%s %q: %v", filepath.Base(bin), args, err)
	}
	return r
}

// TestConvention runs the same checks on the three programs: help on
// stdout with status 0, the version, one-line usage errors with status 2,
// each subcommand's help, and flags after arguments.
func TestConvention(t *testing.T) {
	dir := buildPrograms(t)
	for _, p := range []struct {
		prog      string
		subs      []string   // subcommands whose -h must print their usage
		usageErrs [][]string // command lines that are usage errors
		flagAfter []string   // a flag after an argument: anything but a usage error
	}{
		{"termagent", []string{"run", "status", "check-config"},
			[][]string{{}, {"frobnicate"}, {"status", "-bogus"}, {"run", "-config"}, {"check-config", "stray"}},
			[]string{"status", "-socket", "/nonexistent/sock", "-json"}},
		{"termserver", []string{"serve", "push", "info", "list", "records", "wait", "sample", "command", "set", "drop", "fleet", "demo"},
			[][]string{{}, {"frobnicate"}, {"info"}, {"push"}, {"push", "-bogus", "x.csv"}, {"records", "-limit", "many"}, {"-bogus", "list"}},
			[]string{"-admin", "127.0.0.1:1", "push", "/nonexistent.csv", "-to", "all"}},
		{"termsim", []string{"send"},
			[][]string{{"stray"}, {"-bogus"}, {"send"}, {"send", "-bogus", "swipe", "1"}, {"-exit"}},
			[]string{"send", "swipe", "1", "-dir", "/nonexistent", "-timeout", "1ms"}},
	} {
		t.Run(p.prog, func(t *testing.T) {
			bin := filepath.Join(dir, p.prog)
			for _, h := range []string{"-h", "-help", "--help", "help"} {
				r := runProg(t, bin, h)
				if r.code != 0 || !strings.Contains(r.stdout, "Usage") || r.stderr != "" {
					t.Errorf("%s %s: exit %d, stdout %q, stderr %q; want the usage on stdout, exit 0", p.prog, h, r.code, r.stdout, r.stderr)
				}
			}
			for _, v := range []string{"version", "-version", "--version"} {
				r := runProg(t, bin, v)
				if r.code != 0 || r.stdout != p.prog+" v9.8.7-test\n" {
					t.Errorf("%s %s: exit %d, %q", p.prog, v, r.code, r.stdout)
				}
			}
			for _, sub := range p.subs {
				for _, args := range [][]string{{sub, "-h"}, {sub, "--help"}, {"help", sub}} {
					r := runProg(t, bin, args...)
					want := "Usage: " + p.prog + " " + sub
					if r.code != 0 || !strings.Contains(r.stdout, want) || r.stderr != "" {
						t.Errorf("%s %q: exit %d, stdout %q, stderr %q; want %q on stdout, exit 0", p.prog, args, r.code, r.stdout, r.stderr, want)
					}
				}
			}
			for _, args := range p.usageErrs {
				r := runProg(t, bin, args...)
				lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
				if r.code != 2 || len(lines) != 1 || !strings.HasPrefix(lines[0], p.prog+": ") || r.stdout != "" {
					t.Errorf("%s %q: exit %d, stdout %q, stderr %q; want exit 2 and one line on stderr", p.prog, args, r.code, r.stdout, r.stderr)
				}
			}
			if r := runProg(t, bin, "completion", "bash"); r.code != 0 || !strings.Contains(r.stdout, "complete ") ||
				!strings.Contains(r.stdout, " "+p.prog+"\n") {
				t.Errorf("%s completion bash: exit %d, %q", p.prog, r.code, r.stdout)
			}
			if _, err := exec.LookPath("bash"); err == nil {
				// The script is valid bash and completes the subcommands.
				f := filepath.Join(t.TempDir(), "c.bash")
				os.WriteFile(f, []byte(runProg(t, bin, "completion", "bash").stdout), 0o600)
				fn := "_" + p.prog
				out, err := exec.Command("bash", "-c", `source "$1"; COMP_WORDS=(`+p.prog+` ve); COMP_CWORD=1; `+fn+`; echo "${COMPREPLY[@]}"`, "bash", f).CombinedOutput()
				if err != nil || strings.TrimSpace(string(out)) != "version" {
					t.Errorf("%s: completing \"ve\": %q, %v", p.prog, out, err)
				}
			}
			r := runProg(t, bin, p.flagAfter...)
			if r.code == 2 || r.code == 0 {
				t.Errorf("%s %q: exit %d, stderr %q; want the command run (and fail: nothing is running), not a usage error", p.prog, p.flagAfter, r.code, r.stderr)
			}
		})
	}
}

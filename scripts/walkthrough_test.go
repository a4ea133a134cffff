package scripts

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// walkthrough returns the shell commands of README.md's "Try it by hand"
// section (its ```sh blocks, in order, up to the next heading of the same
// level or its "Admin API" subsection), so the README cannot drift from
// what the test runs.
func walkthrough(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, "\n## Try it by hand\n")
	if i < 0 {
		t.Fatal(`README.md has no "## Try it by hand" section`)
	}
	s = s[i+1:]
	if j := strings.Index(s[3:], "\n## "); j >= 0 {
		s = s[:j+3]
	}
	var blocks []string
	for _, m := range regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(s, -1) {
		blocks = append(blocks, m[1])
	}
	if len(blocks) < 5 {
		t.Fatalf("README.md's walkthrough has %d sh blocks; want the whole walkthrough", len(blocks))
	}
	return strings.Join(blocks, "\n")
}

// TestWalkthrough runs README.md's "Try it by hand" as written, as one bash
// script, with three substitutions so that it cannot collide with anything
// else on the machine: the working directory D is a temp dir, the two
// ports (49003 for terminals, 49005 for the admin endpoint, given by
// TERMSERVER_ADMIN) are free ones, and HOME is a temp dir (termserver's
// state directory). "make build" is done by the test before. Every wait in
// the walkthrough waits for an event (termserver wait, termsim's await)
// with a bound of 30 s or more, so a slow machine makes it slower, not
// fail. It must end with no program left running and D removed.
func TestWalkthrough(t *testing.T) {
	script := walkthrough(t)
	for _, want := range []string{"make build\n", "D=/tmp/termagent-try ", "127.0.0.1:49003", "kill %1 %2 %3", `rm -rf "$D"`,
		"termserver push", "swipe ", "face 1", "finger 0", "termserver records"} {
		if !strings.Contains(script, want) {
			t.Fatalf("the walkthrough lacks %q:\n%s", want, script)
		}
	}
	work := t.TempDir()
	bin := filepath.Join(work, "bin")
	goBin := os.Getenv("GO")
	if goBin == "" {
		goBin = "go"
	}
	build := exec.Command(goBin, "build", "-o", bin+"/", "termagent/cmd/termagent", "termagent/cmd/termsim", "termagent/cmd/termserver")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	d := filepath.Join(work, "try")
	terminals, admin := freeAddr(t), freeAddr(t)
	script = strings.Replace(script, "make build\n", "", 1)
	script = strings.Replace(script, "D=/tmp/termagent-try ", "D="+d+" ", 1)
	script = strings.ReplaceAll(script, "127.0.0.1:49003", terminals)
	script = "set -euo pipefail\n" + script

	ctx, cancel := context.WithCancel(context.Background())
	if dl, ok := t.Deadline(); ok {
		ctx, cancel = context.WithDeadline(context.Background(), dl.Add(-30*time.Second))
	}
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script)
	cmd.Dir = work
	home := filepath.Join(work, "home")
	cmd.Env = append(os.Environ(), "HOME="+home, "XDG_STATE_HOME=", "TERMSERVER_ADMIN="+admin)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	// Whatever happened, nothing of the walkthrough may outlive the test.
	if cmd.Process != nil {
		if syscall.Kill(-cmd.Process.Pid, 0) == nil {
			t.Errorf("programs of the walkthrough still run after its teardown")
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
	}
	if err != nil {
		logs := ""
		for _, l := range []string{"server.log", "termsim.log", "termagent.log"} {
			b, _ := os.ReadFile(filepath.Join(d, l))
			logs += "\n--- " + l + "\n" + string(b)
		}
		t.Fatalf("the walkthrough failed: %v\n%s%s", err, out.String(), logs)
	}
	o := out.String()
	for _, want := range []string{
		": ok\n",                        // check-config
		"1 terminal(s) connected",       // list
		"pushed 1 person(s) to all",     // push
		"ok: relay on", "ok: relay off", // the door clicks
		"42      Ada   card", "42      Ada   face", "42      Ada   finger", // records, with the name
		"3 record(s)",
		"link            up", // status of the running agent
	} {
		if !strings.Contains(o, want) {
			t.Errorf("the walkthrough's output lacks %q:\n%s", want, o)
		}
	}
	if _, err := os.Stat(d); !os.IsNotExist(err) {
		t.Errorf("the teardown left %s: %v", d, err)
	}
	if n, _ := filepath.Glob(filepath.Join(home, ".local", "state", "termserver", "*.token")); len(n) > 0 {
		t.Errorf("the server left its admin token behind: %v", n)
	}
}

// freeAddr returns a loopback host:port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

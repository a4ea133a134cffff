// Package scripts holds the shell scripts and service files that build,
// install and supervise termagent on a terminal. It has no Go code: its
// tests run install.sh into a DESTDIR in a temporary directory and the init
// script's supervisor against a stand-in binary, and check what they leave
// behind (files, modes, idempotence, respawn, clean stop).
package scripts

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"termagent/hal/haltest"
)

// hostTools are the commands install.sh may run on a live system. With
// DESTDIR it must run none of them: they would change the build machine.
var hostTools = []string{"useradd", "groupadd", "usermod", "adduser", "addgroup", "systemctl", "udevadm", "update-rc.d"}

// tripwirePath returns a PATH whose first directory holds a script for each
// host tool that records its call in the returned log file.
func tripwirePath(t *testing.T) (path, log string) {
	t.Helper()
	dir := t.TempDir()
	log = filepath.Join(dir, "calls.log")
	for _, name := range hostTools {
		script := "#!/bin/sh\necho \"" + name + " $*\" >>" + log + "\n"
		if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir + string(os.PathListSeparator) + os.Getenv("PATH"), log
}

// fakeBinary writes a stand-in for the termagent binary and returns its path.
func fakeBinary(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "termagent")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// runInstall runs install.sh under umask 077 (a strict caller must not leak
// into the tree's modes) with env added to the environment.
func runInstall(t *testing.T, env []string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", append([]string{"-c", `umask 077; exec sh ./install.sh "$@"`, "install.sh"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("install.sh %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// wantMode checks that rel under root exists with the given type and permission bits.
func wantMode(t *testing.T, root, rel string, dir bool, perm os.FileMode) {
	t.Helper()
	fi, err := os.Lstat(filepath.Join(root, rel))
	if err != nil {
		t.Errorf("%s: %v", rel, err)
		return
	}
	if fi.IsDir() != dir || (!dir && !fi.Mode().IsRegular()) {
		t.Errorf("%s: mode %v, want a %s", rel, fi.Mode(), map[bool]string{true: "directory", false: "regular file"}[dir])
	}
	if got := fi.Mode().Perm(); got != perm {
		t.Errorf("%s: permissions %#o, want %#o", rel, got, perm)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestInstallDestdirSystemd(t *testing.T) {
	dest := t.TempDir()
	path, calls := tripwirePath(t)
	bin := fakeBinary(t, "echo termagent test\n")
	env := []string{"DESTDIR=" + dest, "PATH=" + path}

	runInstall(t, env, "--bin", bin, "--init", "systemd")

	// Every directory the script had to create is 0755 despite umask 077.
	for _, d := range []string{"usr", "usr/local/bin", "etc", "etc/termagent", "usr/lib/systemd/system", "usr/lib/sysusers.d", "etc/udev/rules.d"} {
		wantMode(t, dest, d, true, 0o755)
	}
	wantMode(t, dest, "var/lib/termagent", true, 0o700)
	wantMode(t, dest, "usr/local/bin/termagent", false, 0o755)
	wantMode(t, dest, "etc/termagent/termagent.yaml", false, 0o644)
	wantMode(t, dest, "etc/termagent/termagent.example.yaml", false, 0o644)
	wantMode(t, dest, "usr/lib/systemd/system/termagent.service", false, 0o644)
	wantMode(t, dest, "usr/lib/sysusers.d/termagent.conf", false, 0o644)
	wantMode(t, dest, "etc/udev/rules.d/99-termagent.rules", false, 0o644)

	if got, want := readFile(t, filepath.Join(dest, "usr/local/bin/termagent")), readFile(t, bin); got != want {
		t.Errorf("installed binary differs from --bin")
	}
	example := readFile(t, "../cmd/termagent/termagent.example.yaml")
	if got := readFile(t, filepath.Join(dest, "etc/termagent/termagent.yaml")); got != example {
		t.Errorf("termagent.yaml is not the example configuration")
	}
	unit := readFile(t, filepath.Join(dest, "usr/lib/systemd/system/termagent.service"))
	if !strings.Contains(unit, "\nExecStart=/usr/local/bin/termagent run -config /etc/termagent/termagent.yaml\n") {
		t.Errorf("unit's ExecStart is not the installed binary:\n%s", unit)
	}
	link, err := os.Readlink(filepath.Join(dest, "etc/systemd/system/multi-user.target.wants/termagent.service"))
	if err != nil || link != "/usr/lib/systemd/system/termagent.service" {
		t.Errorf("unit not enabled: wants link %q, %v", link, err)
	}
	if _, err := os.Stat(filepath.Join(dest, "etc/init.d/termagent")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("--init systemd installed the init script too (%v)", err)
	}

	// Idempotent: a second run succeeds, keeps the operator's configuration
	// and leaves no temporary files.
	edited := example + "\n# edited on the device\n"
	if err := os.WriteFile(filepath.Join(dest, "etc/termagent/termagent.yaml"), []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	out := runInstall(t, env, "--bin", bin, "--init", "systemd")
	if !strings.Contains(out, "kept the existing") {
		t.Errorf("second run did not say it kept the configuration:\n%s", out)
	}
	if got := readFile(t, filepath.Join(dest, "etc/termagent/termagent.yaml")); got != edited {
		t.Errorf("second run overwrote the edited termagent.yaml")
	}
	err = filepath.WalkDir(dest, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.Contains(d.Name(), ".tmp.") {
			t.Errorf("temporary file left behind: %s", p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	// With DESTDIR nothing on the build machine is touched.
	if b, err := os.ReadFile(calls); err == nil {
		t.Errorf("install.sh with DESTDIR ran host tools:\n%s", b)
	}
}

func TestInstallDestdirSysvPrefix(t *testing.T) {
	dest := t.TempDir()
	path, calls := tripwirePath(t)
	bin := fakeBinary(t, "exit 0\n")
	if err := os.MkdirAll(filepath.Join(dest, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	inittab := "::sysinit:/etc/init.d/rcS\nttyS0::respawn:/sbin/getty -L ttyS0 115200 vt100\n"
	if err := os.WriteFile(filepath.Join(dest, "etc/inittab"), []byte(inittab), 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{"DESTDIR=" + dest, "PATH=" + path, "PREFIX=/usr"}

	for range 2 {
		runInstall(t, env, "--bin", bin, "--init", "sysv", "--inittab")
	}

	wantMode(t, dest, "usr/bin/termagent", false, 0o755)
	wantMode(t, dest, "etc/init.d/termagent", false, 0o755)
	wantMode(t, dest, "var/lib/termagent", true, 0o700)
	script := readFile(t, filepath.Join(dest, "etc/init.d/termagent"))
	if !strings.Contains(script, "BIN=${TERMAGENT_BIN:-/usr/bin/termagent}") {
		t.Errorf("init script does not default to PREFIX's binary")
	}
	want := inittab + "::respawn:/etc/init.d/termagent run\n"
	if got := readFile(t, filepath.Join(dest, "etc/inittab")); got != want {
		t.Errorf("inittab after two runs:\n%s\nwant:\n%s", got, want)
	}
	if _, err := os.Stat(filepath.Join(dest, "usr/lib/systemd/system/termagent.service")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("--init sysv installed the systemd unit too (%v)", err)
	}
	if b, err := os.ReadFile(calls); err == nil {
		t.Errorf("install.sh with DESTDIR ran host tools:\n%s", b)
	}
}

func TestInstallRejectsBadArguments(t *testing.T) {
	for _, args := range [][]string{
		{"--init", "upstart"},
		{"--bin", "/nonexistent/termagent"},
		{"--frobnicate"},
	} {
		cmd := exec.Command("sh", append([]string{"./install.sh"}, args...)...)
		cmd.Env = append(os.Environ(), "DESTDIR="+t.TempDir())
		out, err := cmd.CombinedOutput()
		if err == nil {
			t.Errorf("install.sh %v succeeded; want an error", args)
		} else if !strings.Contains(string(out), "install.sh:") {
			t.Errorf("install.sh %v: error without a message: %s", args, out)
		}
	}
}

// TestScriptsParse runs every shell script through sh -n (on Debian sh is
// dash, so this also catches bashisms in the POSIX ones) and the unit
// through systemd-analyze verify when the machine has it.
func TestScriptsParse(t *testing.T) {
	posix := []string{"install.sh", "termagent.init"}
	for _, f := range posix {
		if out, err := exec.Command("sh", "-n", f).CombinedOutput(); err != nil {
			t.Errorf("sh -n %s: %v\n%s", f, err, out)
		}
	}
	matches, err := filepath.Glob("*.sh")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range matches {
		if out, err := exec.Command("bash", "-n", f).CombinedOutput(); err != nil {
			t.Errorf("bash -n %s: %v\n%s", f, err, out)
		}
	}

	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Log("systemd-analyze not installed: unit not verified")
		return
	}
	bin := fakeBinary(t, "exit 0\n")
	unit := strings.ReplaceAll(readFile(t, "termagent.service"), "/usr/local/bin/termagent", bin)
	p := filepath.Join(t.TempDir(), "termagent.service")
	if err := os.WriteFile(p, []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("systemd-analyze", "verify", p).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify termagent.service: %v\n%s", err, out)
	}
}

// startLines returns the pids the stand-in binary logged at each start.
func startLines(log string) []int {
	b, _ := os.ReadFile(log)
	var pids []int
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "start" {
			if pid, err := strconv.Atoi(f[1]); err == nil {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

// initService is the init script set up in a temporary directory with a
// stand-in termagent.
type initService struct {
	dir, log, pidfile string
	defaults          string
	sh                initShell
}

// initShell is a shell and PATH the init script runs with.
type initShell struct {
	name string
	argv []string // the shell command
	path string   // PATH; "" = inherited
}

// initShells returns the host's sh (dash and Debian's start-stop-daemon on
// Debian) and, when installed, BusyBox alone: its ash and its applets
// (start-stop-daemon, setsid, ...) first on PATH, as on a BusyBox image.
func initShells(t *testing.T) []initShell {
	shells := []initShell{{name: "sh", argv: []string{"sh"}}}
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Log("busybox not installed: the init script is tested with sh only")
		return shells
	}
	dir := t.TempDir()
	if out, err := exec.Command(bb, "--install", "-s", dir).CombinedOutput(); err != nil {
		t.Fatalf("busybox --install: %v\n%s", err, out)
	}
	return append(shells, initShell{name: "busybox", argv: []string{bb, "sh"}, path: dir + string(os.PathListSeparator) + os.Getenv("PATH")})
}

// newInitService writes a stand-in termagent whose shell body is standin
// (LOG names its log file) and the defaults file pointing the init script at
// it and at directories under a temporary directory. Stopping the service is
// registered as cleanup.
func newInitService(t *testing.T, sh initShell, standin string, extra ...string) *initService {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the supervisor chowns its directories and drops privileges with start-stop-daemon -c")
	}
	_, ssd := exec.LookPath("start-stop-daemon")
	_, setpriv := exec.LookPath("setpriv")
	if ssd != nil && setpriv != nil {
		t.Skip("neither start-stop-daemon nor setpriv installed")
	}
	s := &initService{dir: t.TempDir(), sh: sh}
	s.log = filepath.Join(s.dir, "agent.log")
	s.pidfile = filepath.Join(s.dir, "supervisor.pid")
	bin := fakeBinary(t, "LOG="+s.log+"\n"+standin)
	s.defaults = filepath.Join(s.dir, "default")
	conf := strings.Join(append([]string{
		"TERMAGENT_BIN=" + bin,
		"TERMAGENT_CONFIG=" + filepath.Join(s.dir, "termagent.yaml"),
		"TERMAGENT_USER=root",
		"TERMAGENT_LOG=console",
		"TERMAGENT_STATE_DIR=" + filepath.Join(s.dir, "state"),
		"TERMAGENT_RUN_DIR=" + filepath.Join(s.dir, "run"),
		"TERMAGENT_PIDFILE=" + s.pidfile,
		"RESPAWN_DELAY=0",
	}, extra...), "\n") + "\n"
	if err := os.WriteFile(s.defaults, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.run("stop") })
	return s
}

// run runs the init script with action and returns its output.
func (s *initService) run(action string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	argv := append(append([]string{}, s.sh.argv...), "./termagent.init", action)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "TERMAGENT_DEFAULTS="+s.defaults)
	if s.sh.path != "" {
		cmd.Env = append(cmd.Env, "PATH="+s.sh.path)
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// supervisor returns the supervisor's pid from its pid file.
func (s *initService) supervisor(t *testing.T) int {
	t.Helper()
	pid, err := strconv.Atoi(strings.TrimSpace(readFile(t, s.pidfile)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// TestInitScriptRespawnsAndStops starts the init script's supervisor with a
// stand-in termagent, kills the stand-in (a crash), waits for the respawn,
// then stops the service and checks that SIGTERM reached the stand-in and
// that nothing is left running.
func TestInitScriptRespawnsAndStops(t *testing.T) {
	for _, sh := range initShells(t) {
		t.Run(sh.name, func(t *testing.T) { testInitRespawnsAndStops(t, sh) })
	}
}

func testInitRespawnsAndStops(t *testing.T, sh initShell) {
	// The stand-in logs its start with its pid and arguments, and its
	// SIGTERM, like termagent's graceful stop.
	s := newInitService(t, sh, `
case "$1" in status) echo "stand-in status"; exit 0 ;; esac
echo "start $$ $* GOMEMLIMIT=$GOMEMLIMIT" >>$LOG
trap 'echo "term $$" >>$LOG; exit 0' TERM
while :; do sleep 1 & wait $!; done
`, "GOMEMLIMIT=33MiB")
	if out, err := s.run("start"); err != nil {
		t.Fatalf("start: %v\n%s", err, out)
	}
	haltest.Eventually(t, "the first start", func() bool { return len(startLines(s.log)) >= 1 })
	first := startLines(s.log)[0]
	// The script sets no GOMEMLIMIT of its own; one set in the defaults
	// file reaches the agent.
	if got := readFile(t, s.log); !strings.Contains(got, "run -config "+filepath.Join(s.dir, "termagent.yaml")+" GOMEMLIMIT=33MiB\n") {
		t.Errorf("stand-in started with the wrong arguments or environment: %s", got)
	}
	wantMode(t, s.dir, "state", true, 0o700)
	wantMode(t, s.dir, "run", true, 0o700)
	if out, err := s.run("status"); err != nil || !strings.Contains(out, "stand-in status") {
		t.Errorf("status while running: %v\n%s", err, out)
	}
	if out, err := s.run("start"); err != nil || !strings.Contains(out, "already running") {
		t.Errorf("second start: %v\n%s", err, out)
	}

	// A crash: the supervisor starts it again.
	if err := syscall.Kill(first, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	haltest.Eventually(t, "the respawn", func() bool { return len(startLines(s.log)) >= 2 })
	second := startLines(s.log)[1]
	if second == first {
		t.Fatalf("respawned process has the crashed one's pid %d", first)
	}
	sup := s.supervisor(t)

	if out, err := s.run("stop"); err != nil {
		t.Fatalf("stop: %v\n%s", err, out)
	}
	if got := readFile(t, s.log); !strings.Contains(got, "term "+strconv.Itoa(second)) {
		t.Errorf("stop did not pass SIGTERM to termagent; log:\n%s", got)
	}
	haltest.Eventually(t, "the stand-in to be gone", func() bool { return !alive(second) })
	haltest.Eventually(t, "the supervisor to be gone", func() bool { return !alive(sup) })
	if _, err := os.Stat(s.pidfile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pid file left after stop (%v)", err)
	}
	if n := len(startLines(s.log)); n != 2 {
		t.Errorf("%d starts, want 2 (no respawn after stop)", n)
	}
	if out, err := s.run("status"); err == nil {
		t.Errorf("status after stop succeeded:\n%s", out)
	}
}

// TestInitScriptStopKillsAHungAgent: a termagent that ignores SIGTERM is
// killed when the stop timeout passes, and nothing is left running.
func TestInitScriptStopKillsAHungAgent(t *testing.T) {
	for _, sh := range initShells(t) {
		t.Run(sh.name, func(t *testing.T) { testInitStopKillsAHungAgent(t, sh) })
	}
}

func testInitStopKillsAHungAgent(t *testing.T, sh initShell) {
	s := newInitService(t, sh, `
trap '' TERM
echo "start $$" >>$LOG
while :; do sleep 1; done
`, "TERMAGENT_STOP_TIMEOUT=1")
	if out, err := s.run("start"); err != nil {
		t.Fatalf("start: %v\n%s", err, out)
	}
	haltest.Eventually(t, "the start", func() bool { return len(startLines(s.log)) >= 1 })
	agent, sup := startLines(s.log)[0], s.supervisor(t)

	out, err := s.run("stop")
	if err == nil || !strings.Contains(out, "killing termagent") {
		t.Errorf("stop of a hung agent: %v, want an error saying it was killed\n%s", err, out)
	}
	haltest.Eventually(t, "the hung agent to be gone", func() bool { return !alive(agent) })
	haltest.Eventually(t, "the supervisor to be gone", func() bool { return !alive(sup) })
}

// TestMakeCrossCompiler checks how the Makefile picks the C cross-compiler:
// Debian's by default, CC from the command line for both ARM targets, and
// never a CC from the environment (a host CC=gcc must not reach an ARM link).
func TestMakeCrossCompiler(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make not installed")
	}
	dryRun := func(env []string, args ...string) string {
		t.Helper()
		cmd := exec.Command("make", append([]string{"-n", "-C", ".."}, args...)...)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("make -n %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	for _, c := range []struct {
		name string
		env  []string
		args []string
		want []string
	}{
		{"default", nil, []string{"arm", "arm64"},
			[]string{"ARM_CC='arm-linux-gnueabihf-gcc'", "ARM64_CC='aarch64-linux-gnu-gcc'", "cross.sh armv7 dist/linux-armv7 ./cmd/...", "cross.sh arm64 dist/linux-arm64 ./cmd/..."}},
		{"environment CC ignored", []string{"CC=gcc"}, []string{"arm"},
			[]string{"ARM_CC='arm-linux-gnueabihf-gcc'"}},
		{"command-line CC", nil, []string{"arm", "CC=/opt/sdk/bin/arm-poky-gcc --sysroot=/opt/sdk/sysroot"},
			[]string{"ARM_CC='/opt/sdk/bin/arm-poky-gcc --sysroot=/opt/sdk/sysroot'"}},
		{"ARM64_CC", nil, []string{"arm64", "ARM64_CC=clang --target=aarch64-linux-gnu"},
			[]string{"ARM64_CC='clang --target=aarch64-linux-gnu'"}},
		{"version and dynamic link", nil, []string{"arm", "VERSION=1.2.3", "EXTLDFLAGS="},
			[]string{"VERSION='1.2.3'", "EXTLDFLAGS=''"}},
	} {
		out := dryRun(c.env, c.args...)
		for _, w := range c.want {
			if !strings.Contains(out, w) {
				t.Errorf("%s: make -n %v lacks %q:\n%s", c.name, c.args, w, out)
			}
		}
	}
}

// TestInstallLiveInPrivateNamespace runs install.sh as on a live terminal
// (no DESTDIR): real useradd, groupadd and usermod, inside a private mount
// namespace where /etc is a copy and /usr/local, /var/lib and /run are
// empty tmpfs, so the machine running the test is not changed. systemd is
// made to look booted (/run/systemd/system) and systemctl is a recorder.
// It checks the user, its groups, the state directory's owner and mode, the
// unit, and that a second run changes nothing.
func TestInstallLiveInPrivateNamespace(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (mount namespace, useradd)")
	}
	for _, tool := range []string{"unshare", "useradd", "groupadd", "usermod"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	if out, err := exec.Command("unshare", "-m", "true").CombinedOutput(); err != nil {
		t.Skipf("no mount namespaces here: %v %s", err, out)
	}
	hostPasswd := readFile(t, "/etc/passwd")
	dir := t.TempDir()
	stubs := filepath.Join(dir, "stubs")
	if err := os.Mkdir(stubs, 0o755); err != nil {
		t.Fatal(err)
	}
	systemctlLog := filepath.Join(dir, "systemctl.log")
	if err := os.WriteFile(filepath.Join(stubs, "systemctl"), []byte("#!/bin/sh\necho \"$*\" >>"+systemctlLog+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	bin := fakeBinary(t, "exit 0\n")
	script := `set -eu
mount --make-rprivate /
cp -a /etc "$T/etc"
mount --bind "$T/etc" /etc
mount -t tmpfs tmpfs /usr/local
mount -t tmpfs tmpfs /var/lib
mount -t tmpfs tmpfs /run
mkdir -p /run/systemd/system
export PATH="$STUBS:$PATH"
sh ./install.sh --bin "$BIN" >"$T/first.out" 2>&1
sh ./install.sh --bin "$BIN" >"$T/second.out" 2>&1
id termagent >"$T/id.out"
grep '^termagent:' /etc/passwd >"$T/passwd.out"
stat -c '%U:%G %a' /var/lib/termagent >"$T/state.out"
stat -c '%a' /usr/local/bin/termagent >"$T/bin.out"
`
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "unshare", "-m", "sh", "-c", script)
	cmd.Env = append(os.Environ(), "T="+dir, "STUBS="+stubs, "BIN="+bin)
	if out, err := cmd.CombinedOutput(); err != nil {
		first, _ := os.ReadFile(filepath.Join(dir, "first.out"))
		second, _ := os.ReadFile(filepath.Join(dir, "second.out"))
		t.Fatalf("install in a private namespace: %v\n%s\nfirst run:\n%s\nsecond run:\n%s", err, out, first, second)
	}

	first := readFile(t, filepath.Join(dir, "first.out"))
	if !strings.Contains(first, "created user termagent") {
		t.Errorf("first run did not create the user:\n%s", first)
	}
	second := readFile(t, filepath.Join(dir, "second.out"))
	if strings.Contains(second, "created") || strings.Contains(second, "added") || !strings.Contains(second, "kept the existing") {
		t.Errorf("second run is not a no-op for users and configuration:\n%s", second)
	}
	id := readFile(t, filepath.Join(dir, "id.out"))
	for _, g := range []string{"(termagent)", "(dialout)", "(gpio)", "(input)"} {
		if !strings.Contains(id, g) {
			t.Errorf("id termagent = %q, want group %s", id, g)
		}
	}
	passwd := strings.TrimSpace(readFile(t, filepath.Join(dir, "passwd.out")))
	if f := strings.Split(passwd, ":"); len(f) != 7 || f[5] != "/var/lib/termagent" || !strings.HasSuffix(f[6], "nologin") {
		t.Errorf("passwd entry %q: want home /var/lib/termagent and a nologin shell", passwd)
	}
	if got := strings.TrimSpace(readFile(t, filepath.Join(dir, "state.out"))); got != "termagent:termagent 700" {
		t.Errorf("/var/lib/termagent is %q, want termagent:termagent 700", got)
	}
	if got := strings.TrimSpace(readFile(t, filepath.Join(dir, "bin.out"))); got != "755" {
		t.Errorf("/usr/local/bin/termagent mode %s, want 755", got)
	}
	wantMode(t, dir, "etc/systemd/system/termagent.service", false, 0o644)
	wantMode(t, dir, "etc/termagent/termagent.yaml", false, 0o644)
	calls := readFile(t, systemctlLog)
	if strings.Count(calls, "daemon-reload\n") != 2 || strings.Count(calls, "enable termagent.service\n") != 2 {
		t.Errorf("systemctl calls over two runs:\n%s\nwant daemon-reload and enable twice", calls)
	}
	if got := readFile(t, "/etc/passwd"); got != hostPasswd {
		t.Errorf("the host's /etc/passwd changed")
	}
}

// TestInstallInittabMissing: a tree without /etc/inittab gets none. BusyBox
// init without one runs its built-in default (rcS, console shells); a file
// holding only termagent's line would replace that and the image would not
// boot.
func TestInstallInittabMissing(t *testing.T) {
	dest := t.TempDir()
	path, _ := tripwirePath(t)
	bin := fakeBinary(t, "exit 0\n")
	env := []string{"DESTDIR=" + dest, "PATH=" + path}

	out := runInstall(t, env, "--bin", bin, "--init", "sysv", "--inittab")

	if _, err := os.Stat(filepath.Join(dest, "etc/inittab")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("install.sh --inittab created an inittab in a tree that had none (%v)", err)
	}
	if !strings.Contains(out, "no /etc/inittab") {
		t.Errorf("install.sh did not say why it left the inittab alone:\n%s", out)
	}
	wantMode(t, dest, "etc/init.d/termagent", false, 0o755)
}

// TestInstallInittabNoFinalNewline: the line goes on a line of its own even
// when the image's inittab does not end in a newline.
func TestInstallInittabNoFinalNewline(t *testing.T) {
	dest := t.TempDir()
	path, _ := tripwirePath(t)
	bin := fakeBinary(t, "exit 0\n")
	if err := os.MkdirAll(filepath.Join(dest, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	inittab := "::sysinit:/etc/init.d/rcS"
	if err := os.WriteFile(filepath.Join(dest, "etc/inittab"), []byte(inittab), 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{"DESTDIR=" + dest, "PATH=" + path}

	runInstall(t, env, "--bin", bin, "--init", "sysv", "--inittab")

	want := inittab + "\n::respawn:/etc/init.d/termagent run\n"
	if got := readFile(t, filepath.Join(dest, "etc/inittab")); got != want {
		t.Errorf("inittab:\n%q\nwant:\n%q", got, want)
	}
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"termagent/hal"
	"termagent/hal/card"
	"termagent/hal/door"
	"termagent/hal/evdev"
	"termagent/hal/face"
	"termagent/hal/fingerprint"
	"termagent/hal/keypad"
	"termagent/hal/sim"
)

const hangDeadline = 30 * time.Second

// lines is a stdout that hands each written line to a channel.
type lines struct {
	mu  sync.Mutex
	buf []byte
	ch  chan string
}

func newLines() *lines { return &lines{ch: make(chan string, 256)} }

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	for {
		i := strings.IndexByte(string(l.buf), '\n')
		if i < 0 {
			return len(p), nil
		}
		select {
		case l.ch <- string(l.buf[:i]):
		default: // a test that reads no more lines must not block termsim
		}
		l.buf = l.buf[i+1:]
	}
}

// await returns the first line with prefix, failing after hangDeadline.
func (l *lines) await(t *testing.T, prefix string) string {
	t.Helper()
	timeout := time.After(hangDeadline)
	for {
		select {
		case s := <-l.ch:
			if strings.HasPrefix(s, prefix) {
				return s
			}
		case <-timeout:
			t.Fatalf("no line starting %q", prefix)
		}
	}
}

type session struct {
	dir  string
	out  *lines
	code chan int
	stop context.CancelFunc
}

// start runs termsim in-process with args plus -dir, and waits until ready.
func start(t *testing.T, stdin io.Reader, args ...string) *session {
	t.Helper()
	// Unix socket paths are short (108 bytes): keep the directory short.
	dir, err := os.MkdirTemp("", "ts")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	ctx, cancel := context.WithCancel(context.Background())
	s := &session{dir: dir, out: newLines(), code: make(chan int, 1), stop: cancel}
	go func() { s.code <- run(ctx, append([]string{"-dir", dir}, args...), stdin, s.out, io.Discard) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-s.code:
		case <-time.After(hangDeadline):
			t.Error("termsim did not stop")
		}
	})
	s.out.await(t, "termsim: ready")
	return s
}

func TestHelp(t *testing.T) {
	var out strings.Builder
	if code := run(context.Background(), []string{"-help"}, nil, &out, io.Discard); code != exitOK {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"pseudo-terminal", "DIR/card", "control.sock", "swipe NUMBER", "finger unknown",
		"face stranger", "pin KEYS", "wedge NUMBER", "DIR/keypad", "DIR/wedge", "DIR/doorio", "button", "unplug DEVICE", "noise DEVICE N", "door open|closed", "relay?", "-scenario", "-dir"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help lacks %q", want)
		}
	}
}

func TestBadCommandLines(t *testing.T) {
	for _, args := range [][]string{
		{"-exit"},
		{"stray"},
		{"-devices", ","},
		{"-bogus"},
	} {
		if code := run(context.Background(), args, nil, io.Discard, io.Discard); code != exitUsage {
			t.Errorf("%v: exit %d, want %d", args, code, exitUsage)
		}
	}
	dir := t.TempDir()
	if code := run(context.Background(), []string{"-dir", dir, "-devices", "toaster"}, nil, io.Discard, io.Discard); code != exitError {
		t.Errorf("unknown device: exit %d", code)
	}
}

func TestScenarioExit(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.txt")
	os.WriteFile(good, []byte("# swipe, then the door\nswipe 42\nwait 1ms\ndoor open\nrelay?\n"), 0o600)
	out := newLines()
	code := run(context.Background(), []string{"-dir", filepath.Join(dir, "sim"), "-control", "none",
		"-scenario", good, "-exit", "-console=false"}, nil, out, io.Discard)
	if code != exitOK {
		t.Fatalf("good scenario: exit %d", code)
	}
	out.await(t, "ok relay off door open")

	bad := filepath.Join(dir, "bad.txt")
	os.WriteFile(bad, []byte("swipe 42\nfinger 9\nswipe 43\n"), 0o600)
	if code := run(context.Background(), []string{"-dir", filepath.Join(dir, "sim2"), "-control", "none",
		"-scenario", bad, "-exit"}, nil, io.Discard, io.Discard); code != exitError {
		t.Fatalf("failing scenario: exit %d", code)
	}
	if code := run(context.Background(), []string{"-dir", filepath.Join(dir, "sim3"), "-scenario",
		filepath.Join(dir, "missing"), "-exit"}, nil, io.Discard, io.Discard); code != exitError {
		t.Fatalf("missing scenario: exit %d", code)
	}
}

func TestConsole(t *testing.T) {
	in, feed := io.Pipe()
	s := start(t, in, "-control", "none")
	io.WriteString(feed, "door open\n")
	s.out.await(t, "ok")
	io.WriteString(feed, "relay?\n")
	if got := s.out.await(t, "ok relay"); got != "ok relay off door open switches 0" {
		t.Fatalf("relay?: %q", got)
	}
	io.WriteString(feed, "dance\n")
	s.out.await(t, "err unknown command")
	io.WriteString(feed, "quit\n")
	select {
	case code := <-s.code:
		s.code <- code // for the cleanup
		if code != exitOK {
			t.Fatalf("quit: exit %d", code)
		}
	case <-time.After(hangDeadline):
		t.Fatal("quit did not stop termsim")
	}
}

// startControlled starts termsim with devices (a comma list) and no
// console input, and dials its control socket; both end with the test.
// The context bounds the whole test (hangDeadline).
func startControlled(t *testing.T, devices string) (*session, context.Context, *sim.Control) {
	t.Helper()
	s := start(t, strings.NewReader(""), "-devices", devices)
	ctx, cancel := context.WithTimeout(context.Background(), hangDeadline)
	t.Cleanup(cancel)
	ctl, err := sim.Dial(ctx, filepath.Join(s.dir, "control.sock"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ctl.Close() })
	return s, ctx, ctl
}

// TestDriversThroughTermsim drives the real card and door drivers against
// termsim's devices through its control socket, as the demo and the agent's
// end-to-end tests do.
func TestDriversThroughTermsim(t *testing.T) {
	s, ctx, ctl := startControlled(t, "card,relay")

	reader, err := card.Open(card.Config{Port: filepath.Join(s.dir, "card")})
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	if err := ctl.Swipe(ctx, "0006547886"); err != nil {
		t.Fatal(err)
	}
	c, err := reader.ReadCard(ctx)
	if err != nil || c.Number != "0006547886" {
		t.Fatalf("card %+v %v", c, err)
	}

	lock, err := door.OpenLCUS(door.LCUSConfig{Port: filepath.Join(s.dir, "relay")})
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := lock.Unlock(ctx, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := ctl.AwaitRelay(ctx, true, hangDeadline); err != nil {
		t.Fatal(err)
	}
	s.out.await(t, "relay: click, ON (door unlocked)") // a person at the console sees it
	if err := lock.Close(); err != nil {
		t.Fatal(err)
	}
	if err := ctl.AwaitRelay(ctx, false, hangDeadline); err != nil {
		t.Fatal(err)
	}
	s.out.await(t, "relay: click, off (door locked)")

	// termsim send drives the same socket from a shell: a failing command
	// is exit 1 with the reply, several commands run in order.
	var out, errOut strings.Builder
	if code := run(ctx, []string{"send", "-dir", s.dir, "relay?; swipe 0001234567"}, nil, &out, &errOut); code != exitOK ||
		!strings.HasPrefix(out.String(), "ok: relay off door closed switches ") || !strings.HasSuffix(out.String(), "\nok: swipe 0001234567\n") {
		t.Errorf("send: exit %d, %q %q", code, out.String(), errOut.String())
	}
	if c, err := reader.ReadCard(ctx); err != nil || c.Number != "0001234567" {
		t.Fatalf("card sent by termsim send: %+v %v", c, err)
	}
	out.Reset()
	errOut.Reset()
	if code := run(ctx, []string{"send", "-dir", s.dir, "finger", "3"}, nil, &out, &errOut); code != exitError ||
		!strings.Contains(errOut.String(), "no fingerprint module") {
		t.Errorf("send of a failing command: exit %d, %q %q", code, out.String(), errOut.String())
	}

	// Pull the reader's cable and put it back: the driver reconnects.
	if err := ctl.Unplug(ctx, "card"); err != nil {
		t.Fatal(err)
	}
	if err := ctl.Swipe(ctx, "1"); !errors.Is(err, sim.ErrCommand) {
		t.Fatalf("swipe while unplugged: %v", err)
	}
	if err := ctl.Replug(ctx, "card"); err != nil {
		t.Fatal(err)
	}
	got := make(chan hal.Card, 1)
	go func() {
		if c, err := reader.ReadCard(ctx); err == nil {
			got <- c
		}
	}()
	for {
		if err := ctl.Swipe(ctx, "0000000008"); err != nil {
			t.Fatal(err)
		}
		select {
		case c := <-got:
			if c.Number != "0000000008" {
				t.Fatalf("after replug: %q", c.Number)
			}
			return
		case <-time.After(200 * time.Millisecond):
		case <-ctx.Done():
			t.Fatal("no card after replug")
		}
	}
}

func TestSecondTermsimRefused(t *testing.T) {
	s := start(t, strings.NewReader(""), "-devices", "relay")
	code := run(context.Background(), []string{"-dir", filepath.Join(s.dir, "other"),
		"-control", filepath.Join(s.dir, "control.sock")}, nil, io.Discard, io.Discard)
	if code != exitError {
		t.Fatalf("second termsim on the same socket: exit %d", code)
	}
	fi, err := os.Stat(filepath.Join(s.dir, "control.sock"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("control socket %v, %v: want mode 0600", fi, err)
	}
}

func TestExampleScenarioRuns(t *testing.T) {
	// Every command of the example, without its waits (they only pace it
	// for a person watching).
	b, err := os.ReadFile("example.scenario")
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(l, "wait ") {
			kept = append(kept, l)
		}
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "example.scenario")
	if err := os.WriteFile(path, []byte(strings.Join(kept, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	if code := run(context.Background(), []string{"-dir", filepath.Join(dir, "sim"), "-control", "none",
		"-scenario", path, "-exit"}, nil, io.Discard, io.Discard); code != exitOK {
		t.Fatalf("example.scenario: exit %d", code)
	}
}

// TestModulesThroughTermsim drives the fingerprint and face drivers against
// termsim's modules through the control socket.
func TestModulesThroughTermsim(t *testing.T) {
	s, ctx, ctl := startControlled(t, "fingerprint,face")

	fp, err := fingerprint.Open(fingerprint.Config{Port: filepath.Join(s.dir, "fingerprint")})
	if err != nil {
		t.Fatal(err)
	}
	defer fp.Close()
	template := make([]byte, 512)
	for i := range template {
		template[i] = byte(i * 7)
	}
	if err := fp.Store(ctx, 3, template); err != nil {
		t.Fatal(err)
	}
	if err := ctl.Finger(ctx, 3); err != nil {
		t.Fatal(err)
	}
	if f, err := fp.Identify(ctx); err != nil || !f.Matched || f.Slot != 3 {
		t.Fatalf("finger 3: %+v %v", f, err)
	}
	if err := ctl.Finger(ctx, -1); err != nil {
		t.Fatal(err)
	}
	if f, err := fp.Identify(ctx); err != nil || f.Matched {
		t.Fatalf("unknown finger: %+v %v", f, err)
	}

	fm, err := face.Open(face.Config{Port: filepath.Join(s.dir, "face"), VerifySeconds: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer fm.Close()
	if err := ctl.Face(ctx, -1); err != nil {
		t.Fatal(err)
	}
	if f, err := fm.Recognize(ctx); err != nil || f.Recognised {
		t.Fatalf("stranger: %+v %v", f, err)
	}
}

// TestKeypadAndWedgeThroughTermsim drives the real serial keypad and evdev
// card reader drivers against termsim's keypad and wedge devices.
func TestKeypadAndWedgeThroughTermsim(t *testing.T) {
	s, ctx, ctl := startControlled(t, "keypad,wedge")

	kp, err := keypad.Open(keypad.Config{Port: filepath.Join(s.dir, "keypad")})
	if err != nil {
		t.Fatal(err)
	}
	defer kp.Close()
	if err := ctl.Pin(ctx, "1234#"); err != nil {
		t.Fatal(err)
	}
	var pin []byte
	for range 5 {
		k, err := kp.ReadKey(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pin = append(pin, k.Char)
	}
	if string(pin) != "1234#" {
		t.Fatalf("keys %q", pin)
	}

	wedge, err := evdev.OpenCardReader(evdev.Config{Device: filepath.Join(s.dir, "wedge")})
	if err != nil {
		t.Fatal(err)
	}
	defer wedge.Close()
	if err := ctl.Wedge(ctx, "0006547886"); err != nil {
		t.Fatal(err)
	}
	if c, err := wedge.ReadCard(ctx); err != nil || c.Number != "0006547886" {
		t.Fatalf("wedge card %+v %v", c, err)
	}
}

// TestDoorIOThroughTermsim: "door open", "button" and "door closed" reach
// the evdev door inputs driver through termsim's doorio device.
func TestDoorIOThroughTermsim(t *testing.T) {
	s, ctx, ctl := startControlled(t, "doorio")
	in, err := evdev.OpenDoorInputs(evdev.DoorConfig{Device: filepath.Join(s.dir, "doorio")})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	if err := ctl.Door(ctx, true); err != nil {
		t.Fatal(err)
	}
	if err := ctl.Button(ctx); err != nil {
		t.Fatal(err)
	}
	if err := ctl.Door(ctx, false); err != nil {
		t.Fatal(err)
	}
	var got []string
	for range 4 {
		ev, err := in.NextInput(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s=%v", ev.Kind, ev.Active))
	}
	if want := "door_sensor=true exit_button=true exit_button=false door_sensor=false"; strings.Join(got, " ") != want {
		t.Fatalf("inputs %q, want %q", got, want)
	}
}

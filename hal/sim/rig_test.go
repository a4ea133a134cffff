package sim

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unsafe"
)

func newTestRig(t *testing.T) *Rig {
	t.Helper()
	r, err := NewRig(RigConfig{Dir: filepath.Join(t.TempDir(), "termsim"), Card: CardReaderConfig{Repeats: 1}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func TestRigLinksEveryDevice(t *testing.T) {
	r := newTestRig(t)
	if got := r.Devices(); strings.Join(got, ",") != "card,relay,fingerprint,face,keypad,wedge,doorio" {
		t.Fatalf("devices %v", got)
	}
	for _, d := range []string{DevWedge, DevDoorIO} {
		if fi, err := os.Stat(r.Path(d)); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
			t.Fatalf("%s: %v %v, want a FIFO", d, fi, err)
		}
	}
	for _, d := range AllDevices {
		if d == DevWedge || d == DevDoorIO {
			continue
		}
		target, err := os.Readlink(r.Path(d))
		if err != nil || !strings.HasPrefix(target, "/dev/pts/") {
			t.Fatalf("%s: link %q → %q (%v)", d, r.Path(d), target, err)
		}
	}
	if _, err := NewRig(RigConfig{Dir: t.TempDir(), Devices: []string{"toaster"}}); err == nil {
		t.Fatal("unknown device accepted")
	}
	if _, err := NewRig(RigConfig{}); err == nil {
		t.Fatal("rig without a directory accepted")
	}
}

func TestRigCommands(t *testing.T) {
	r := newTestRig(t)
	ctx := context.Background()
	host, err := openHost(r.Path(DevCard))
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	for _, tc := range []struct{ cmd, want string }{
		{"", "ok"},
		{"# a comment", "ok"},
		{"swipe 0006547886", "ok"},
		{"relay?", "ok relay off door closed switches 0"},
		{"door open", "ok"},
		{"relay?", "ok relay off door open switches 0"},
		{"door ajar", "err door: \"ajar\" is neither open nor closed"},
		{"finger 3", "err sim: fingerprint: place finger of slot 3: slot is empty"},
		{"finger unknown", "ok"},
		{"face stranger", "ok"},
		{"face 7", "ok"},
		{"face seven", "err face: \"seven\" is neither a user id nor stranger"},
		{"noise card 0", "err noise: \"0\" is not a byte count 1..4096"},
		{"noise relay 5", "err noise: the relay board only listens"},
		{"noise toaster 5", "err noise: no device \"toaster\" (have card, relay, fingerprint, face, keypad, wedge, doorio)"},
		{"unplug toaster", "err unplug: no device \"toaster\" (have card, relay, fingerprint, face, keypad, wedge, doorio)"},
		{"swipe", "err swipe: wrong number of arguments (try help)"},
		{"swipe 12x", "err sim: card \"12x\": not a decimal number"},
		{"wait 1ms", "ok"},
		{"wait forever", "err wait: \"forever\" is not a duration (e.g. 500ms, 2s)"},
		{"wait 6m", "err wait: 6m0s is outside 0..5m0s"},
		{"await relay off 1s", "ok relay off door open switches 0"},
		{"await relay sideways", "err await: \"sideways\" is neither on nor off"},
		{"dance", "err unknown command \"dance\" (try help)"},
		{"pin 12x", "err sim: keypad: no key 'X' (keys are 0-9 * # A-D, or enter, esc, bs)"},
		{"pin", "err pin: wrong number of arguments (try help)"},
		{"wedge 12-4", "err wedge: \"12-4\" is not 1..32 decimal or hex digits"},
		{"noise wedge 5", "err noise: the input device delivers whole records"},
	} {
		if got := r.Exec(ctx, tc.cmd); got != tc.want {
			t.Errorf("%q: got %q, want %q", tc.cmd, got, tc.want)
		}
	}
	// The swipe reached the card reader's line.
	frame, _ := r.Card().Frame("0006547886")
	got := make([]byte, len(frame))
	if _, err := io.ReadFull(host, got); err != nil || !bytes.Equal(got, frame) {
		t.Fatalf("card line got % X (%v), want % X", got, err, frame)
	}
	if got := r.Exec(ctx, "help"); !strings.HasPrefix(got, "ok Commands") || strings.Contains(got, "\n") {
		t.Fatalf("help: %q", got)
	}
}

func TestRigUnplugReplugAndStatus(t *testing.T) {
	r := newTestRig(t)
	ctx := context.Background()
	if got := r.Exec(ctx, "unplug card"); got != "ok" {
		t.Fatal(got)
	}
	if _, err := os.Lstat(r.Path(DevCard)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("link still there: %v", err)
	}
	if got := r.Exec(ctx, "swipe 1"); !strings.HasPrefix(got, "err ") || !strings.Contains(got, "unplugged") {
		t.Fatalf("swipe while unplugged: %q", got)
	}
	if got := r.Exec(ctx, "status?"); !strings.Contains(got, "card unplugged") || !strings.Contains(got, "relay plugged") {
		t.Fatalf("status: %q", got)
	}
	if got := r.Exec(ctx, "replug card"); got != "ok" {
		t.Fatal(got)
	}
	if _, err := os.Readlink(r.Path(DevCard)); err != nil {
		t.Fatalf("link not back: %v", err)
	}
}

func TestRigAwaitRelay(t *testing.T) {
	r := newTestRig(t)
	host, err := openHost(r.Path(DevRelay))
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	done := make(chan string, 1)
	go func() { done <- r.Exec(context.Background(), "await relay on 20s") }()
	if _, err := host.Write([]byte{0xA0, 0x01, 0x01, 0xA2}); err != nil {
		t.Fatal(err)
	}
	if got := <-done; got != "ok relay on door closed switches 1" {
		t.Fatalf("await: %q", got)
	}
	if got := r.Exec(context.Background(), "await relay off 10ms"); !strings.HasPrefix(got, "err await relay off: not within 10ms") {
		t.Fatalf("await timeout: %q", got)
	}
}

func TestRunScript(t *testing.T) {
	r := newTestRig(t)
	var out bytes.Buffer
	script := "# demo\nswipe 42\n\nwait 1ms\ndoor open\nbogus\nswipe 43\n"
	err := r.RunScript(context.Background(), strings.NewReader(script), &out)
	if !errors.Is(err, ErrCommand) || !strings.Contains(err.Error(), "line 6") {
		t.Fatalf("script error: %v", err)
	}
	want := "> swipe 42\nok\n> wait 1ms\nok\n> door open\nok\n> bogus\nerr unknown command \"bogus\" (try help)\n"
	if out.String() != want {
		t.Fatalf("transcript:\n%s\nwant:\n%s", out.String(), want)
	}
	if !r.Relay().State().DoorOpen {
		t.Fatal("door open did not run")
	}
}

func TestControlSocket(t *testing.T) {
	r := newTestRig(t)
	sock := filepath.Join(t.TempDir(), "control.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- r.ServeControl(ctx, ln) }()

	dctx, dcancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer dcancel()
	c, err := Dial(dctx, sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Door(dctx, true); err != nil {
		t.Fatal(err)
	}
	if on, err := c.RelayOn(dctx); err != nil || on {
		t.Fatalf("relay on=%v err=%v", on, err)
	}
	if err := c.Swipe(dctx, "0006547886"); err != nil {
		t.Fatal(err)
	}
	if err := c.Finger(dctx, -1); err != nil {
		t.Fatal(err)
	}
	if err := c.Face(dctx, -1); err != nil {
		t.Fatal(err)
	}
	if err := c.Finger(dctx, 5); !errors.Is(err, ErrCommand) {
		t.Fatalf("finger on an empty slot: %v", err)
	}
	if err := c.Unplug(dctx, "face"); err != nil {
		t.Fatal(err)
	}
	if err := c.Replug(dctx, "face"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Do(dctx, "swipe 1\nunplug card"); !errors.Is(err, ErrCommand) {
		t.Fatalf("two lines in one command: %v", err)
	}
	if err := c.AwaitRelay(dctx, false, time.Second); err != nil {
		t.Fatal(err)
	}
	// A wait cut short by the caller's context.
	short, scancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	_, err = c.Do(short, "wait 1m")
	scancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("wait cut short: %v", err)
	}
	if err := c.Swipe(dctx, "1"); err == nil {
		t.Fatal("a Control whose reply was lost still answers")
	}

	// An over-long line ends that connection with an error line.
	raw, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.Write(append(bytes.Repeat([]byte("x"), 2*MaxCommandLen), '\n'))
	reply, _ := io.ReadAll(raw)
	if !strings.HasPrefix(string(reply), "err command longer than") {
		t.Fatalf("over-long line: %q", reply)
	}

	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("ServeControl: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("ServeControl did not stop with its context")
	}
}

func TestRigKeypadAndWedge(t *testing.T) {
	r := newTestRig(t)
	ctx := context.Background()
	host, err := openHost(r.Path(DevKeypad))
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	for _, cmd := range []string{"pin 1234#", "pin enter"} {
		if got := r.Exec(ctx, cmd); got != "ok" {
			t.Fatalf("%s: %q", cmd, got)
		}
	}
	got := make([]byte, 6)
	if _, err := io.ReadFull(host, got); err != nil || string(got) != "1234#\r" {
		t.Fatalf("keypad line %q %v", got, err)
	}
	// The wedge reader's FIFO gets whole input_event records: per key
	// MSC_SCAN, press, SYN, release, SYN.
	fifo, err := os.OpenFile(r.Path(DevWedge), os.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fifo.Close()
	if got := r.Exec(ctx, "wedge 3D12D6"); got != "ok" {
		t.Fatalf("wedge: %q", got)
	}
	size := 8 + 2*int(unsafe.Sizeof(uintptr(0)))
	rec := make([]byte, 7*5*size)
	if _, err := io.ReadFull(fifo, rec); err != nil {
		t.Fatal(err)
	}
	var keys []uint16
	for i := 0; i < len(rec); i += size {
		typ, code, value := binary.NativeEndian.Uint16(rec[i+size-8:]), binary.NativeEndian.Uint16(rec[i+size-6:]), int32(binary.NativeEndian.Uint32(rec[i+size-4:]))
		if typ == evKey && value == 1 {
			keys = append(keys, code)
		}
	}
	if want := []uint16{4, 32, 2, 3, 32, 7, 28}; fmt.Sprint(keys) != fmt.Sprint(want) { // 3 D 1 2 D 6 Enter
		t.Fatalf("key codes %v, want %v", keys, want)
	}
	if got := r.Exec(ctx, "unplug wedge"); got != "ok" {
		t.Fatal(got)
	}
	if _, err := os.Stat(r.Path(DevWedge)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("FIFO still there: %v", err)
	}
	if got := r.Exec(ctx, "wedge 1"); !strings.Contains(got, "unplugged") {
		t.Fatalf("wedge while unplugged: %q", got)
	}
	if got := r.Exec(ctx, "replug wedge"); got != "ok" {
		t.Fatal(got)
	}
}

// The door inputs' FIFO gets gpio-keys events: the door switch (EV_SW
// SW_MACHINE_COVER, set while shut) and the exit button (KEY_OPEN).
func TestRigDoorIO(t *testing.T) {
	r := newTestRig(t)
	ctx := context.Background()
	fifo, err := os.OpenFile(r.Path(DevDoorIO), os.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fifo.Close()
	for _, cmd := range []string{"door open", "button", "door closed"} {
		if got := r.Exec(ctx, cmd); got != "ok" {
			t.Fatalf("%s: %q", cmd, got)
		}
	}
	if got := r.Exec(ctx, "relay?"); got != "ok relay off door closed switches 0" {
		t.Fatalf("relay?: %q", got)
	}
	size := 8 + 2*int(unsafe.Sizeof(uintptr(0)))
	rec := make([]byte, 4*2*size) // four events, each with its SYN_REPORT
	if _, err := io.ReadFull(fifo, rec); err != nil {
		t.Fatal(err)
	}
	var got []string
	for i := 0; i < len(rec); i += size {
		typ, code, value := binary.NativeEndian.Uint16(rec[i+size-8:]), binary.NativeEndian.Uint16(rec[i+size-6:]), int32(binary.NativeEndian.Uint32(rec[i+size-4:]))
		if typ != evSyn {
			got = append(got, fmt.Sprintf("%d/%d=%d", typ, code, value))
		}
	}
	if want := "5/16=0 1/134=1 1/134=0 5/16=1"; strings.Join(got, " ") != want {
		t.Fatalf("events %q, want %q", got, want)
	}
}

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"termagent/cmd/internal/cli"
	"termagent/cmd/termserver/internal/admin"
	"termagent/cmd/termserver/internal/faults"
	"termagent/cmd/termserver/internal/recordstore"
	"termagent/cmd/termserver/internal/server"
	"termagent/cmd/termserver/internal/servertest"
)

func TestSplitWords(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
		err  bool
	}{
		{"list", []string{"list"}, false},
		{"  set  T1 \taddress='Gate 2' x=\"a b\"", []string{"set", "T1", "address=Gate 2", "x=a b"}, false},
		{`command 2 ""`, []string{"command", "2", ""}, false},
		{"", nil, false},
		{`set "unclosed`, nil, true},
		{"rm $(reboot); x", []string{"rm", "$(reboot);", "x"}, false}, // never a shell
	} {
		got, err := splitWords(c.in)
		if (err != nil) != c.err || !reflect.DeepEqual(got, c.want) {
			t.Errorf("splitWords(%q) = %q, %v; want %q, error %v", c.in, got, err, c.want, c.err)
		}
	}
}

func TestConsole_runsCommandsAgainstTheServer(t *testing.T) {
	s := servertest.Start(t, server.Config{})
	p := servertest.Terminal(t, s.Addr("tcp"), "tcp", "T-console")
	servertest.WaitFor(t, "the terminal to be identified", func() bool {
		ts := s.Terminals()
		return len(ts) == 1 && ts[0].UUID == "T-console"
	})
	in := strings.NewReader("help\nlist\nfaults -fail 0.5 -delay 10ms\nbogus\nserve\nset T-console 'address=Gate 2'\nstats\ndrop T-con\nquit\nlist\n")
	var out bytes.Buffer
	if err := run(context.Background(), cliArgs(s, "console"), in, &out, &out); err != nil {
		t.Fatalf("console: %v\n%s", err, out.String())
	}
	o := out.String()
	for _, want := range []string{
		"T-console",                   // list
		"1 terminal(s) connected",     // list
		"faults: fail=0.5 delay=10ms", // faults changed
		`unknown command "bogus"`,     // errors do not end the console
		`unknown command "serve"`,     // serve is not a console command
		"set_device_info: FAILED",     // the fake terminal has no set_device_info
		"termserver console on " + s.Admin,
		"connected 1 (accepted 1)", // stats
		"T-console: dropped",       // drop by uuid prefix
	} {
		if !strings.Contains(o, want) {
			t.Errorf("console output lacks %q:\n%s", want, o)
		}
	}
	if strings.Count(o, "1 terminal(s) connected") != 1 {
		t.Errorf("console went on after quit:\n%s", o)
	}
	if f := s.Faults(); f.FailUploads != 0.5 || f.Delay != 10*time.Millisecond {
		t.Errorf("faults after the console: %+v", f)
	}
	select {
	case <-p.Done():
	case <-time.After(30 * time.Second):
		t.Error("drop did not close the terminal's connection")
	}
}

func TestCLI_usageErrors(t *testing.T) {
	var out bytes.Buffer
	for _, args := range [][]string{
		{}, {"nope"}, {"info"}, {"set", "T"}, {"set", "T", "port=1"}, {"set", "T", "device_port=0"},
		{"command", "x"}, {"remove"}, {"push"}, {"drop"},
	} {
		out.Reset()
		err := run(context.Background(), args, strings.NewReader(""), &out, &out)
		var u *cli.UsageError
		if !errors.As(err, &u) {
			t.Errorf("termserver %q: %v; want a usage error", args, err)
		}
		if exitCode(err) != 2 {
			t.Errorf("termserver %q: exit code %d; want 2", args, exitCode(err))
		}
	}
	// No server listening: a clear error naming the admin address.
	err := run(context.Background(), []string{"-admin", "127.0.0.1:1", "-token-file", filepath.Join(t.TempDir(), "none"), "list"}, strings.NewReader(""), &out, &out)
	if err == nil || !strings.Contains(err.Error(), "is termserver serve running") {
		t.Fatalf("list without a server: %v", err)
	}
}

func TestLoadPersons(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	photo := demoPhoto(1)
	write("a.jpg", string(photo))
	write("a.tpl", "TEMPLATE")
	write("list.csv", "\ufeffperson_id, person_name,card_number,role,face,left_code\n"+
		"# a comment\n"+
		"7,Ann,0001,3,a.jpg,a.tpl\n"+
		"8,Ben,0002,,,\n")
	ps, err := loadPersons(filepath.Join(dir, "list.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 2 || ps[0].Name != "Ann" || ps[0].Role != 3 || !bytes.Equal(ps[0].Face, photo) ||
		string(ps[0].LeftCode) != "TEMPLATE" || ps[1].Face != nil || ps[1].CardNumber != "0002" {
		t.Fatalf("loaded %+v", ps)
	}
	req := personRequest(ps[0])
	if err := req.Validate(); err != nil {
		req.SessionID = "x"
		if err := req.Validate(); err != nil {
			t.Fatalf("download_person built from a CSV row is invalid: %v", err)
		}
	}
	if f := req.PersonInfo.Face; f.Width != 120 || f.Height != 160 || f.Length != len(photo) {
		t.Fatalf("face blob %dx%d length %d; want 120x160 from the SOF0 marker, length %d", f.Width, f.Height, f.Length, len(photo))
	}

	for name, csv := range map[string]string{
		"nocol.csv":   "person_name\nAnn\n",
		"unknown.csv": "person_id,shoe_size\n1,42\n",
		"dup.csv":     "person_id\n1\n1\n",
		"empty.csv":   "person_id\n\"\"\n",
		"role.csv":    "person_id,role\n1,admin\n",
		"photo.csv":   "person_id,face\n1,nothere.jpg\n",
		"zero.csv":    "person_id,face\n1,zero.jpg\n",
	} {
		write(name, csv)
		write("zero.jpg", "")
		if _, err := loadPersons(filepath.Join(dir, name)); err == nil {
			t.Errorf("%s: loaded; want an error", name)
		}
	}

	// A folder without persons.csv: one person per <id>.jpg.
	fdir := filepath.Join(dir, "folder")
	os.Mkdir(fdir, 0o700)
	os.WriteFile(filepath.Join(fdir, "42.jpg"), photo, 0o600)
	os.WriteFile(filepath.Join(fdir, "42.left.tpl"), []byte("L"), 0o600)
	os.WriteFile(filepath.Join(fdir, "notes.txt"), []byte("x"), 0o600)
	ps, err = loadPersons(fdir)
	if err != nil || len(ps) != 1 || ps[0].ID != "42" || string(ps[0].LeftCode) != "L" || ps[0].RightCode != nil {
		t.Fatalf("folder: %+v, %v", ps, err)
	}
	if _, err := loadPersons(t.TempDir()); !errors.Is(err, errBadPersons) {
		t.Fatalf("empty folder: %v; want errBadPersons", err)
	}
}

func TestJPEGSize(t *testing.T) {
	for _, c := range []struct {
		b    []byte
		w, h int
	}{
		{demoPhoto(0), 120, 160},
		{[]byte{0xFF, 0xD8}, 0, 0},
		{[]byte("not a jpeg at all"), 0, 0},
		{[]byte{0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x01}, 0, 0}, // bad length
		{[]byte{0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x11, 0x08}, 0, 0},
	} {
		if w, h := jpegSize(c.b); w != c.w || h != c.h {
			t.Errorf("jpegSize(% x…) = %d×%d; want %d×%d", c.b[:min(len(c.b), 8)], w, h, c.w, c.h)
		}
	}
}

func FuzzJPEGSize(f *testing.F) {
	f.Add(demoPhoto(0))
	f.Add([]byte{0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x11, 0x08})
	f.Fuzz(func(t *testing.T, b []byte) {
		w, h := jpegSize(b)
		if w < 0 || h < 0 || w > 65535 || h > 65535 {
			t.Fatalf("jpegSize = %d×%d", w, h)
		}
	})
}

func TestFleet_smallRunAcksEverything(t *testing.T) {
	var progress bytes.Buffer
	rep, err := runFleet(testContext(t), fleetConfig{
		Terminals: 5, Rate: 10, Duration: time.Second, Drain: -1, Dir: t.TempDir(),
	}, &progress)
	if err != nil {
		t.Fatalf("fleet: %v\n%s", err, progress.String())
	}
	if rep.Connected != 5 || rep.Presented == 0 {
		t.Fatalf("report %+v", rep)
	}
	if rep.Recorded != rep.Presented || rep.Acked != rep.Presented || len(rep.Latencies) != int(rep.Presented) {
		t.Fatalf("presented %d, recorded %d, acked %d, latencies %d; want all equal",
			rep.Presented, rep.Recorded, rep.Acked, len(rep.Latencies))
	}
	if rep.Stats == nil || rep.Stats.Stored != rep.Presented || rep.Stats.Connected != 5 {
		t.Fatalf("server stats %+v; want %d stored from 5 terminals", rep.Stats, rep.Presented)
	}
	if rep.percentile(50) <= 0 || rep.percentile(99) < rep.percentile(50) || rep.percentile(100) != rep.Latencies[len(rep.Latencies)-1] {
		t.Fatalf("percentiles p50 %v p99 %v max %v", rep.percentile(50), rep.percentile(99), rep.percentile(100))
	}
	var out bytes.Buffer
	rep.print(&out)
	for _, want := range []string{"RELAXED", "records acked", "p99"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

func TestFleetReport_percentile(t *testing.T) {
	r := fleetReport{}
	if r.percentile(99) != 0 {
		t.Fatal("percentile of nothing")
	}
	for i := 1; i <= 1000; i++ {
		r.Latencies = append(r.Latencies, time.Duration(i)*time.Millisecond)
	}
	for p, want := range map[float64]time.Duration{50: 500 * time.Millisecond, 99: 990 * time.Millisecond,
		99.9: 999 * time.Millisecond, 100: time.Second, 0: time.Millisecond} {
		if got := r.percentile(p); got != want {
			t.Errorf("p%v = %v; want %v", p, got, want)
		}
	}
}

func TestFleet_faultyServerLosesNothing(t *testing.T) {
	// Drain: -1 waits for every ack (the event), not for a fixed time: with
	// 30% of uploads refused and a connection dropped every 5 requests,
	// records wait out retry and reconnect backoffs, and on a loaded
	// machine a fixed 30 s drain ended before the last ones were acked
	// ("presented 50, acked 48, stored 50"). The bound is the test's own
	// deadline (go test -timeout).
	rep, err := runFleet(testContext(t), fleetConfig{
		Terminals: 5, Rate: 10, Duration: time.Second, Drain: -1, Dir: t.TempDir(),
		Faults: faults.Config{FailUploads: 0.3, DropEvery: 5},
	}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	st := rep.Stats
	if rep.Presented == 0 || rep.Acked != rep.Presented || st.Stored != rep.Presented {
		t.Fatalf("presented %d, acked %d, stored %d; want all equal despite the faults", rep.Presented, rep.Acked, st.Stored)
	}
	if st.Refused == 0 || st.Drops == 0 || st.Duplicates == 0 {
		t.Fatalf("server stats %+v; want refusals, drops and dropped duplicates", st)
	}
}

// testContext is a context that ends a minute before the test binary's
// deadline (go test -timeout), so a test that waits for an event fails
// with its own message instead of a panic, however slow the machine.
func testContext(t *testing.T) context.Context {
	t.Helper()
	d, ok := t.Deadline()
	if !ok {
		return t.Context()
	}
	ctx, cancel := context.WithDeadline(t.Context(), d.Add(-time.Minute))
	t.Cleanup(cancel)
	return ctx
}

// TestCLI_recordsForPeople: records shows the newest by default, the
// person's name, a readable time, and takes a terminal uuid prefix as
// info does (the issue: person id only, raw 20261130141058 times, the
// oldest 50, and silently nothing for a prefix).
func TestCLI_recordsForPeople(t *testing.T) {
	s := servertest.Start(t, server.Config{})
	ctx := context.Background()
	for i := range 60 {
		if _, err := s.Records().Add(ctx, recordstore.Record{SessionID: fmt.Sprint("s", i), Terminal: "b13f5584-2335-4ef7",
			PersonID: fmt.Sprint(i), Time: fmt.Sprintf("202611301410%02d", i%60), OpenDoorType: 1, InOutType: 1}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Records().SetPersonName(ctx, "59", "Ada"); err != nil {
		t.Fatal(err)
	}
	out, err := runCLI(t, s, "records", "-terminal", "b13f")
	if err != nil {
		t.Fatalf("records: %v\n%s", err, out)
	}
	for _, want := range []string{"2026-11-30 14:10:59  59      Ada", "50 record(s) (the newest; -limit 0 for all)"} {
		if !strings.Contains(out, want) {
			t.Errorf("records lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "20261130141059") || strings.Contains(out, "2026-11-30 14:10:09  9 ") {
		t.Errorf("records shows a raw time or an old record:\n%s", out)
	}
	out, err = runCLI(t, s, "records", "-first", "-limit", "1")
	if err != nil || !strings.Contains(out, "2026-11-30 14:10:00  0       -") {
		t.Errorf("records -first -limit 1: %v\n%s", err, out)
	}
}

// TestCLI_pushExplainsItself: push -h documents the CSV columns, and a
// push to a server that is not there fails once, not once per person.
func TestCLI_pushExplainsItself(t *testing.T) {
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"push", "-h"}, strings.NewReader(""), &out, &errOut); exitCode(err) != 0 {
		t.Fatalf("push -h: %v", err)
	}
	for _, col := range csvColumns {
		if !strings.Contains(out.String(), "  "+col+" ") {
			t.Errorf("push -h does not document column %s:\n%s", col, out.String())
		}
	}
	dir := t.TempDir()
	var rows strings.Builder
	rows.WriteString("person_id,person_name\n")
	for i := range 20 {
		fmt.Fprintf(&rows, "%d,P%d\n", i, i)
	}
	csvPath := filepath.Join(dir, "p.csv")
	if err := os.WriteFile(csvPath, []byte(rows.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	tok := filepath.Join(dir, "token")
	if err := admin.WriteToken(tok, strings.Repeat("a", 64)); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	errOut.Reset()
	err := run(context.Background(), []string{"-admin", "127.0.0.1:1", "-token-file", tok, "push", csvPath, "-to", "all"},
		strings.NewReader(""), &out, &errOut)
	if err == nil || exitCode(err) != 1 || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "is termserver running") ||
		out.Len()+errOut.Len() != 0 {
		t.Errorf("push to a dead admin port: %v\nstdout %q\nstderr %q", err, out.String(), errOut.String())
	}
}

// cliArgs returns the global flags that point the CLI at s, then args.
func cliArgs(s *servertest.Server, args ...string) []string {
	return append([]string{"-admin", s.Admin, "-token-file", s.TokenFile}, args...)
}

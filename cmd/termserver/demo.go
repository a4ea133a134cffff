package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"termagent/agent"
	"termagent/cmd/termserver/internal/admin"
	"termagent/cmd/termserver/internal/recordstore"
	"termagent/cmd/termserver/internal/server"
	"termagent/hal/backoff"
	"termagent/hal/sim"
	"termagent/protocol"
)

// The demo: termserver, termsim and termagent as three processes on
// loopback, driven through termserver's admin endpoint and termsim's
// control socket, with a story on stdout and a summary that must add up.

// demoPerson is one enrolled person of the scenario and how to present
// each credential on the simulator.
type demoPerson struct {
	ID, Name, Card string
	FaceUser       int    // the face module's user id (enrolment order, from 1)
	FingerSlot     int    // the fingerprint slot (enrolment order, from 0)
	PIN            string // key_number typed on the keypad; "" = none
}

// The three persons. The face module gives ids from 1 and the agent
// allocates fingerprint slots from 0, in enrolment order; the scenario
// checks the records' person_id, so a different assignment fails it.
var demoPersons = []demoPerson{
	{ID: "1001", Name: "Alice", Card: "0006547886", FaceUser: 1, FingerSlot: 0, PIN: "2468"},
	{ID: "1002", Name: "Bob", Card: "0012345678", FaceUser: 2, FingerSlot: 1},
	{ID: "1003", Name: "Carol", Card: "0087654321", FaceUser: 3, FingerSlot: 2},
}

// demoTemplateSize is the simulated R30x module's template size.
const demoTemplateSize = 512

type demo struct {
	out      io.Writer
	dir      string
	bin      string
	admin    *admin.Client
	adminAdr string
	termAddr string
	ctl      *sim.Control
	procs    []*demoProc
	uuid     string
	opens    int         // door openings seen on the relay
	expected int         // door openings the scenario caused on purpose, each with a record
	exits    int         // door openings by the exit button (no record)
	events   map[int]int // device events seen at the server, by type
	steps    []demoStep
	start    time.Time
}

// demoStep is one line of the summary: what was done, what happened.
type demoStep struct {
	what, want, got string
	ok              bool
}

type demoProc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan error
}

// cmdDemo runs the end-to-end demo.
func cmdDemo(ctx context.Context, c *client, args []string) error {
	fs := newFlags(c, "demo")
	bin := fs.String("bin", "", "directory holding termsim and termagent (and termserver; default: this binary)")
	keep := fs.Bool("keep", false, "keep the temp dir (logs, databases) afterwards")
	args, err := fs.parse(args)
	if err != nil {
		return err
	}
	if len(args) > 0 {
		return usagef("demo takes only flags")
	}
	ctx, cancel := context.WithTimeout(ctx, 110*time.Second)
	defer cancel()
	d := &demo{out: c.stdout, bin: *bin, start: time.Now(), events: map[int]int{}}
	if err := d.checkBinaries(); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "termdemo-")
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	d.dir = dir
	defer func() {
		d.stopAll()
		if *keep {
			fmt.Fprintf(c.stdout, "logs and databases kept in %s\n", dir)
		} else {
			os.RemoveAll(dir)
		}
	}()
	err = d.run(ctx)
	if err != nil {
		fmt.Fprintf(c.stdout, "\nDEMO FAILED: %v\n", err)
		d.tailLogs()
		return err
	}
	return nil
}

func (d *demo) path(name string) string {
	if name == "termserver" && d.bin == "" {
		if exe, err := os.Executable(); err == nil {
			return exe
		}
	}
	return filepath.Join(d.bin, name)
}

// checkBinaries says precisely which program is missing.
func (d *demo) checkBinaries() error {
	var missing []string
	for _, name := range []string{"termserver", "termsim", "termagent"} {
		p := d.path(name)
		if st, err := os.Stat(p); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			missing = append(missing, fmt.Sprintf("%s (looked for %s)", name, p))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("demo: missing program(s): %s; build them with: go build -o DIR/ ./cmd/termserver ./cmd/termsim ./cmd/termagent",
			strings.Join(missing, ", "))
	}
	return nil
}

func (d *demo) say(format string, args ...any) {
	fmt.Fprintf(d.out, "[%5.1fs] %s\n", time.Since(d.start).Seconds(), fmt.Sprintf(format, args...))
}

func (d *demo) check(what, want, got string, ok bool) {
	d.steps = append(d.steps, demoStep{what: what, want: want, got: got, ok: ok})
	mark := "ok"
	if !ok {
		mark = "WRONG"
	}
	d.say("  %s: %s (%s)", what, got, mark)
}

func (d *demo) run(ctx context.Context) error {
	fmt.Fprintln(d.out, "termagent demo: a terminal with a card reader, a face module, a fingerprint module,")
	fmt.Fprintln(d.out, "a keypad, a door relay, a door sensor and an exit button (all simulated by termsim:")
	fmt.Fprintln(d.out, "pseudo-terminals, and gpio-keys input events on a FIFO), run by termagent, managed by")
	fmt.Fprintln(d.out, "termserver. Everything runs on loopback in", d.dir)
	fmt.Fprintln(d.out)

	if err := d.writePersons(); err != nil {
		return err
	}
	if err := d.startServer(ctx); err != nil {
		return err
	}
	if err := d.startSim(ctx); err != nil {
		return err
	}
	if err := d.startAgent(ctx); err != nil {
		return err
	}

	d.say("1. Enrol three persons (card number, face photo, fingerprint template) from %s",
		filepath.Join(d.dir, "persons", "persons.csv"))
	persons, err := loadPersons(filepath.Join(d.dir, "persons"))
	if err != nil {
		return err
	}
	if err := pushPersons(ctx, d.admin, d.uuid, persons, d.out, d.out); err != nil {
		return err
	}
	st, err := d.agentStatus(ctx)
	if err != nil {
		return err
	}
	d.check("persons on the terminal", "3", fmt.Sprint(st.Persons), st.Persons == len(demoPersons))

	d.say("2. Each person presents each credential; the door must open and the server get the record")
	for _, p := range demoPersons {
		for _, way := range []struct {
			kind int
			act  string
			do   func() error
		}{
			{1, "swipes card " + p.Card, func() error { return d.ctl.Swipe(ctx, p.Card) }},
			{2, fmt.Sprintf("shows their face (face user %d)", p.FaceUser), func() error { return d.ctl.Face(ctx, p.FaceUser) }},
			{3, fmt.Sprintf("places their finger (slot %d)", p.FingerSlot), func() error { return d.ctl.Finger(ctx, p.FingerSlot) }},
			{5, "types their PIN on the keypad", func() error { return d.ctl.Pin(ctx, p.PIN+"#") }},
		} {
			if way.kind == 5 && p.PIN == "" {
				continue
			}
			if err := d.present(ctx, p, way.kind, way.act, way.do); err != nil {
				return err
			}
		}
	}

	d.say("3. A stranger shows their face, then swipes an unknown card: the door must stay shut")
	before, err := d.recordCount(ctx)
	if err != nil {
		return err
	}
	for _, s := range []struct {
		act string
		do  func() error
	}{
		{"stranger's face", func() error { return d.ctl.Face(ctx, -1) }},
		{"unknown card 0099999999", func() error { return d.ctl.Swipe(ctx, "0099999999") }},
	} {
		if err := s.do(); err != nil {
			return fmt.Errorf("present %s: %w", s.act, err)
		}
		opened := d.ctl.AwaitRelay(ctx, true, 2*time.Second) == nil
		if opened {
			d.opens++
			d.ctl.AwaitRelay(ctx, false, 10*time.Second)
		}
		d.check(s.act, "door stays shut", map[bool]string{true: "door OPENED", false: "door stayed shut"}[opened], !opened)
	}
	after, err := d.recordCount(ctx)
	if err != nil {
		return err
	}
	d.check("records for the stranger", "0", fmt.Sprint(after-before), after == before)

	if err := d.networkCut(ctx); err != nil {
		return err
	}

	d.say("5. The server opens the door remotely (send_user_command 1)")
	if err := d.remoteOpen(ctx); err != nil {
		return err
	}
	if err := d.lostAck(ctx); err != nil {
		return err
	}
	if err := d.doorWatch(ctx); err != nil {
		return err
	}
	return d.summary(ctx)
}

// present does one presentation and follows it to the server.
func (d *demo) present(ctx context.Context, p demoPerson, kind int, act string, do func() error) error {
	before, err := d.recordCount(ctx)
	if err != nil {
		return err
	}
	if err := do(); err != nil {
		return fmt.Errorf("%s %s: %w", p.Name, act, err)
	}
	d.expected++
	opened := d.ctl.AwaitRelay(ctx, true, 10*time.Second) == nil
	if opened {
		d.opens++
	}
	rec, err := d.awaitRecord(ctx, before, 15*time.Second)
	got := "door stayed shut, "
	if opened {
		got = "door opened, "
	}
	ok := opened && err == nil && rec.PersonID == p.ID && rec.OpenDoorType == kind
	if err != nil {
		got += "no record at the server"
	} else {
		got += fmt.Sprintf("server stored record #%d (person %s, %s)", rec.ID, rec.PersonID, openDoorName(rec.OpenDoorType))
	}
	d.check(p.Name+" "+act, "door opens, record at server", got, ok)
	if opened {
		if err := d.ctl.AwaitRelay(ctx, false, 10*time.Second); err != nil {
			return fmt.Errorf("the door did not lock again: %w", err)
		}
	}
	return nil
}

// networkCut cuts the terminal off, presents a card while it is off, and
// checks that the record arrives after the link comes back.
func (d *demo) networkCut(ctx context.Context) error {
	d.say("4. Network cut: the server refuses every connection (termserver faults -refuse=true)")
	if err := d.setFaults(ctx, "true"); err != nil {
		return err
	}
	if err := d.awaitLink(ctx, agent.LinkUp, false); err != nil {
		return err
	}
	d.say("   the terminal noticed: its link is down")
	before, err := d.recordCount(ctx)
	if err != nil {
		return err
	}
	p := demoPersons[0]
	if err := d.ctl.Swipe(ctx, p.Card); err != nil {
		return fmt.Errorf("swipe during the cut: %w", err)
	}
	d.expected++
	opened := d.ctl.AwaitRelay(ctx, true, 10*time.Second) == nil
	if opened {
		d.opens++
		d.ctl.AwaitRelay(ctx, false, 10*time.Second)
	}
	st, err := d.agentStatus(ctx)
	if err != nil {
		return err
	}
	d.check(p.Name+" swipes during the cut", "door opens offline, record queued",
		fmt.Sprintf("door %s, %d record(s) queued on the terminal", map[bool]string{true: "opened", false: "stayed shut"}[opened], st.OutboxDepth),
		opened && st.OutboxDepth == 1)
	if n, err := d.recordCount(ctx); err != nil || n != before {
		return fmt.Errorf("a record reached the server during the cut (%d → %d, %v)", before, n, err)
	}
	d.say("   network back (termserver faults -refuse=false)")
	cutEnd := time.Now()
	if err := d.setFaults(ctx, "false"); err != nil {
		return err
	}
	rec, err := d.awaitRecord(ctx, before, 30*time.Second)
	ok := err == nil && rec.PersonID == p.ID
	got := "the queued record never arrived"
	if err == nil {
		got = fmt.Sprintf("queued record #%d arrived %.1fs after the network came back", rec.ID, time.Since(cutEnd).Seconds())
	}
	d.check("recovery", "queued record delivered", got, ok)
	return nil
}

// lostAck makes the server store a record and drop the connection before
// answering: the terminal must resend it and the server drop the copy.
func (d *demo) lostAck(ctx context.Context) error {
	d.say("6. A lost acknowledgement: the server stores the next record but drops the connection")
	d.say("   before answering (termserver faults -drop-every 1)")
	before, err := d.recordCount(ctx)
	if err != nil {
		return err
	}
	var st0 server.Stats
	if err := d.admin.Do(ctx, http.MethodGet, "/v1/stats", nil, nil, &st0); err != nil {
		return err
	}
	if err := d.admin.Do(ctx, http.MethodPost, "/v1/faults", map[string][]string{"drop_every": {"1"}}, nil, nil); err != nil {
		return err
	}
	p := demoPersons[2]
	if err := d.ctl.Finger(ctx, p.FingerSlot); err != nil {
		return fmt.Errorf("%s places their finger: %w", p.Name, err)
	}
	d.expected++
	opened := d.ctl.AwaitRelay(ctx, true, 10*time.Second) == nil
	if opened {
		d.opens++
		d.ctl.AwaitRelay(ctx, false, 10*time.Second)
	}
	rec, err := d.awaitRecord(ctx, before, 15*time.Second)
	if err != nil {
		return err
	}
	d.say("   %s places their finger: door %s, record #%d stored, answer lost", p.Name,
		map[bool]string{true: "opened", false: "stayed shut"}[opened], rec.ID)
	if err := d.admin.Do(ctx, http.MethodPost, "/v1/faults", map[string][]string{"drop_every": {"0"}}, nil, nil); err != nil {
		return err
	}
	var st server.Stats
	err = d.poll(ctx, 20*time.Second, "the terminal to resend the record", func() bool {
		s, err := d.agentStatus(ctx)
		return err == nil && s.OutboxDepth == 0 && s.Link == agent.LinkUp
	})
	if err == nil {
		err = d.admin.Do(ctx, http.MethodGet, "/v1/stats", nil, nil, &st)
	}
	after, cerr := d.recordCount(ctx)
	got := "the record was not resent"
	if err == nil && cerr == nil {
		got = fmt.Sprintf("resent, %d duplicate(s) dropped, still %d record(s) for it", st.Duplicates-st0.Duplicates, after-before)
	}
	d.check("lost acknowledgement", "resent once acknowledged, copy dropped, one record", got,
		opened && err == nil && cerr == nil && st.Duplicates > st0.Duplicates && after == before+1)
	return nil
}

func (d *demo) remoteOpen(ctx context.Context) error {
	before, err := d.recordCount(ctx)
	if err != nil {
		return err
	}
	req := protocol.NewRequest(protocol.ModSendUserCommand)
	req.CommandType = 1
	res, err := d.admin.Call(ctx, d.uuid, req)
	if err != nil {
		return err
	}
	d.expected++
	answered := len(res) == 1 && res[0].OK()
	opened := d.ctl.AwaitRelay(ctx, true, 10*time.Second) == nil
	if opened {
		d.opens++
		d.ctl.AwaitRelay(ctx, false, 10*time.Second)
	}
	rec, err := d.awaitRecord(ctx, before, 15*time.Second)
	got := fmt.Sprintf("answered %v, door opened %v", answered, opened)
	if err == nil {
		got += fmt.Sprintf(", record #%d (%s)", rec.ID, openDoorName(rec.OpenDoorType))
	}
	d.check("remote open", "answered 0, door opens, record", got, answered && opened && err == nil && rec.OpenDoorType == 4)
	return nil
}

// summary prints the table and fails unless every figure is right.
func (d *demo) summary(ctx context.Context) error {
	st, err := d.agentStatus(ctx)
	if err != nil {
		return err
	}
	var stats server.Stats
	if err := d.admin.Do(ctx, http.MethodGet, "/v1/stats", nil, nil, &stats); err != nil {
		return err
	}
	var recs []recordstore.Record
	if err := d.admin.Do(ctx, http.MethodGet, "/v1/records", nil, nil, &recs); err != nil {
		return err
	}
	made := int(st.Uploaded) + st.OutboxDepth
	fmt.Fprintln(d.out)
	fmt.Fprintln(d.out, "Summary")
	tw := tabwriter.NewWriter(d.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\tEXPECTED\tSEEN\t")
	row := func(name string, want, got int) {
		mark := ""
		if want != got {
			mark = "WRONG"
			d.steps = append(d.steps, demoStep{what: name, want: fmt.Sprint(want), got: fmt.Sprint(got)})
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\n", name, want, got, mark)
	}
	row("persons enrolled", len(demoPersons), st.Persons)
	row("door opens (relay)", d.expected+d.exits, d.opens)
	row("records made (terminal)", d.expected, made)
	row("records acknowledged (terminal)", d.expected, int(st.Uploaded))
	row("records still queued (terminal)", 0, st.OutboxDepth)
	row("records stored (server)", d.expected, len(recs))
	row("PIN lockout events (server)", 1, d.events[demoEventLockout])
	row("door forced events (server)", 1, d.events[demoEventForced])
	row("door held open events (server)", 1, d.events[demoEventHeldOpen])
	tw.Flush()
	fmt.Fprintf(d.out, "server: %d uploads, %d duplicates dropped; terminal %s\n", stats.Uploads, stats.Duplicates, d.uuid)
	fmt.Fprintln(d.out)
	tw = tabwriter.NewWriter(d.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RECORD\tPERSON\tHOW\tTIME (terminal)")
	names := map[string]string{}
	for _, p := range demoPersons {
		names[p.ID] = p.Name
	}
	for _, r := range recs {
		who := names[r.PersonID] + " " + r.PersonID
		if r.PersonID == "" {
			who = "(the server)"
		}
		fmt.Fprintf(tw, "#%d\t%s\t%s\t%s\n", r.ID, who, openDoorName(r.OpenDoorType), r.Time)
	}
	tw.Flush()
	var wrong []string
	for _, s := range d.steps {
		if !s.ok {
			wrong = append(wrong, fmt.Sprintf("%s: want %s, got %s", s.what, s.want, s.got))
		}
	}
	fmt.Fprintln(d.out)
	if len(wrong) > 0 {
		return fmt.Errorf("%d check(s) failed:\n  %s", len(wrong), strings.Join(wrong, "\n  "))
	}
	fmt.Fprintf(d.out, "DEMO OK in %.1fs: every presentation opened the door and reached the server once; the stranger did not; the record made during the network cut arrived after it; the record whose answer was lost was resent and its copy dropped; the PIN lockout, the forced door and the door held open each reached the server.\n",
		time.Since(d.start).Seconds())
	return nil
}

// writePersons writes persons.csv, a face photo and a template per person.
func (d *demo) writePersons() error {
	dir := filepath.Join(d.dir, "persons")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("demo data: %w", err)
	}
	var csv bytes.Buffer
	csv.WriteString("person_id,person_name,card_number,key_number,face,left_code\n")
	for i, p := range demoPersons {
		photo, tpl := demoPhoto(i), demoTemplate(i)
		face, code := strings.ToLower(p.Name)+".jpg", strings.ToLower(p.Name)+".tpl"
		if err := os.WriteFile(filepath.Join(dir, face), photo, 0o600); err != nil {
			return fmt.Errorf("demo data: %w", err)
		}
		if err := os.WriteFile(filepath.Join(dir, code), tpl, 0o600); err != nil {
			return fmt.Errorf("demo data: %w", err)
		}
		fmt.Fprintf(&csv, "%s,%s,%s,%s,%s,%s\n", p.ID, p.Name, p.Card, p.PIN, face, code)
	}
	return os.WriteFile(filepath.Join(dir, "persons.csv"), csv.Bytes(), 0o600)
}

// demoPhoto is a small JPEG-like blob: SOI, a JFIF APP0, a baseline SOF0
// of 120×160 pixels, bytes unique to person i, EOI. The simulated face
// module checks the SOI marker and tells photos apart by their hash.
func demoPhoto(i int) []byte {
	b := []byte{0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, 'J', 'F', 'I', 'F', 0x00, 0x01, 0x01, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00}
	b = append(b, 0xFF, 0xC0, 0x00, 0x11, 0x08, 0x00, 160, 0x00, 120, 0x03,
		0x01, 0x22, 0x00, 0x02, 0x11, 0x01, 0x03, 0x11, 0x01)
	r := rand.New(rand.NewPCG(uint64(i), 0xface))
	for range 2048 {
		b = append(b, byte(r.UintN(0xFF))) // never 0xFF: no stray markers
	}
	return append(b, 0xFF, 0xD9)
}

// demoTemplate is a fingerprint template of the size the simulated R30x
// module stores, starting 03 01 like a real one, unique to person i.
func demoTemplate(i int) []byte {
	t := make([]byte, demoTemplateSize)
	t[0], t[1] = 0x03, 0x01
	binary.BigEndian.PutUint64(t[2:10], uint64(1000+i))
	r := rand.New(rand.NewPCG(uint64(i), 0xf19e))
	for j := 10; j < len(t); j++ {
		t[j] = byte(r.Uint32())
	}
	return t
}

// freePort returns a loopback port that was free a moment ago.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// spawn starts a program with its output in DIR/NAME.log.
func (d *demo) spawn(name string, args ...string) (*demoProc, error) {
	logPath := filepath.Join(d.dir, name+".log")
	f, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	cmd := exec.Command(d.path(name), args...)
	cmd.Stdout, cmd.Stderr, cmd.Dir = f, f, d.dir
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &demoProc{name: name, cmd: cmd, log: logPath, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait(); f.Close() }()
	d.procs = append(d.procs, p)
	return p, nil
}

// stopAll stops the programs in reverse order: SIGTERM, then SIGKILL
// after 5 s.
func (d *demo) stopAll() {
	if d.ctl != nil {
		d.ctl.Close()
	}
	for i := len(d.procs) - 1; i >= 0; i-- {
		p := d.procs[i]
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			p.cmd.Process.Kill()
			<-p.done
		}
	}
	d.procs = nil
}

// tailLogs prints the end of each program's log after a failure.
func (d *demo) tailLogs() {
	for _, p := range d.procs {
		b, err := os.ReadFile(p.log)
		if err != nil {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
		fmt.Fprintf(d.out, "\n--- last lines of %s (%s) ---\n", p.name, p.log)
		fmt.Fprintln(d.out, strings.Join(lines[max(0, len(lines)-15):], "\n"))
	}
}

// exited reports a program that stopped early.
func (d *demo) exited() error {
	for _, p := range d.procs {
		select {
		case err := <-p.done:
			p.done <- err
			return fmt.Errorf("%s exited early (%v); see %s", p.name, err, p.log)
		default:
		}
	}
	return nil
}

// poll calls cond every 50 ms until it is true, d passes, ctx ends or a
// program exits.
func (d *demo) poll(ctx context.Context, limit time.Duration, what string, cond func() bool) error {
	deadline := time.Now().Add(limit)
	for !cond() {
		if err := d.exited(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not within %v", what, limit)
		}
		if !backoff.Sleep(ctx, 50*time.Millisecond) {
			return fmt.Errorf("%s: %w", what, ctx.Err())
		}
	}
	return nil
}

func (d *demo) startServer(ctx context.Context) error {
	var err error
	if d.adminAdr, err = freePort(); err != nil {
		return err
	}
	if d.termAddr, err = freePort(); err != nil {
		return err
	}
	tokenFile := filepath.Join(d.dir, "admin.token")
	if _, err := d.spawn("termserver", "-admin", d.adminAdr, "-token-file", tokenFile, "serve", "-listen", d.termAddr,
		"-db", filepath.Join(d.dir, "server.db"), "-log-format", "console"); err != nil {
		return err
	}
	d.admin = admin.NewClient(d.adminAdr)
	d.admin.TokenFile = tokenFile
	if err := d.poll(ctx, 20*time.Second, "termserver's admin endpoint", func() bool {
		var st server.Stats
		return d.admin.Do(ctx, http.MethodGet, "/v1/stats", nil, nil, &st) == nil
	}); err != nil {
		return err
	}
	d.say("termserver: terminals on %s, admin on %s", d.termAddr, d.adminAdr)
	return nil
}

func (d *demo) startSim(ctx context.Context) error {
	simDir := filepath.Join(d.dir, "sim")
	if _, err := d.spawn("termsim", "-dir", simDir, "-console=false", "-v"); err != nil {
		return err
	}
	sock := filepath.Join(simDir, "control.sock")
	if err := d.poll(ctx, 20*time.Second, "termsim's control socket", func() bool {
		c, err := sim.Dial(ctx, sock)
		if err != nil {
			return false
		}
		d.ctl = c
		return true
	}); err != nil {
		return err
	}
	d.say("termsim: card reader, relay, fingerprint and face modules and keypad on pseudo-terminals, door sensor and exit button (gpio-keys) in %s", simDir)
	return nil
}

func (d *demo) agentConfig() string {
	sim := filepath.Join(d.dir, "sim")
	return fmt.Sprintf(`# termagent configuration written by termserver demo
server:
  address: %q
  backoff_min: 200ms
  backoff_max: 1s
store:
  path: %q
device:
  address: "demo gate"
hal:
  card:
    driver: rdm6300
    port: %q
  fingerprint:
    driver: r30x
    port: %q
  face:
    driver: fm22x
    port: %q
    photo_enroll_msg_id: 0xF7
    # An enrolment waits for the running recognition window to end.
    verify_seconds: 1
  door:
    driver: lcus
    port: %q
    pulse: 1s
  keypad:
    driver: serial
    port: %q
  door_inputs:
    driver: evdev
    device: %q
pin:
  lockout_for: 5s
door_watch:
  held_open: 3s
upload:
  retry_min: 200ms
  retry_max: 1s
control:
  socket: %q
log:
  level: info
  format: console
`, d.termAddr, filepath.Join(d.dir, "agent", "termagent.db"),
		filepath.Join(sim, "card"), filepath.Join(sim, "fingerprint"), filepath.Join(sim, "face"),
		filepath.Join(sim, "relay"), filepath.Join(sim, "keypad"), filepath.Join(sim, "doorio"),
		filepath.Join(d.dir, "agent", "termagent.sock"))
}

func (d *demo) startAgent(ctx context.Context) error {
	if err := os.MkdirAll(filepath.Join(d.dir, "agent"), 0o700); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	cfg := filepath.Join(d.dir, "agent", "termagent.yaml")
	if err := os.WriteFile(cfg, []byte(d.agentConfig()), 0o600); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	if _, err := d.spawn("termagent", "run", "-config", cfg); err != nil {
		return err
	}
	if err := d.poll(ctx, 30*time.Second, "termagent to connect and identify itself", func() bool {
		var ts []server.TerminalStatus
		if d.admin.Do(ctx, http.MethodGet, "/v1/terminals", nil, nil, &ts) != nil || len(ts) != 1 || ts[0].UUID == "" {
			return false
		}
		d.uuid = ts[0].UUID
		return true
	}); err != nil {
		return err
	}
	d.say("termagent: connected to termserver as terminal %s", d.uuid)
	return nil
}

// agentStatus runs `termagent status -json` and returns the agent's snapshot.
func (d *demo) agentStatus(ctx context.Context) (agent.Status, error) {
	cmd := exec.CommandContext(ctx, d.path("termagent"), "status", "-json",
		"-config", filepath.Join(d.dir, "agent", "termagent.yaml"))
	out, err := cmd.Output()
	if err != nil {
		return agent.Status{}, fmt.Errorf("termagent status: %w: %s", err, bytes.TrimSpace(out))
	}
	var rep struct {
		Running bool          `json:"running"`
		Agent   *agent.Status `json:"agent"`
	}
	if err := json.Unmarshal(out, &rep); err != nil || !rep.Running || rep.Agent == nil {
		return agent.Status{}, fmt.Errorf("termagent status: not running or unreadable (%v): %s", err, bytes.TrimSpace(out))
	}
	return *rep.Agent, nil
}

func (d *demo) recordCount(ctx context.Context) (int, error) {
	var recs []recordstore.Record
	if err := d.admin.Do(ctx, http.MethodGet, "/v1/records", nil, nil, &recs); err != nil {
		return 0, err
	}
	return len(recs), nil
}

// awaitRecord waits for the server to hold more than before records and
// returns the newest.
func (d *demo) awaitRecord(ctx context.Context, before int, limit time.Duration) (recordstore.Record, error) {
	var rec recordstore.Record
	err := d.poll(ctx, limit, "a new record at the server", func() bool {
		var recs []recordstore.Record
		if d.admin.Do(ctx, http.MethodGet, "/v1/records", nil, nil, &recs) != nil || len(recs) <= before {
			return false
		}
		rec = recs[len(recs)-1]
		return true
	})
	return rec, err
}

func (d *demo) setFaults(ctx context.Context, refuse string) error {
	return d.admin.Do(ctx, http.MethodPost, "/v1/faults", map[string][]string{"refuse": {refuse}}, nil, nil)
}

// awaitLink waits until the terminal's link is (or, with is false, is
// not) in state.
func (d *demo) awaitLink(ctx context.Context, state agent.LinkState, is bool) error {
	return d.poll(ctx, 20*time.Second, fmt.Sprintf("terminal link %s=%v", state, is), func() bool {
		st, err := d.agentStatus(ctx)
		return err == nil && (st.Link == state) == is
	})
}

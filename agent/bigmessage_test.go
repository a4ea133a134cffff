package agent_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/metrics"
	"strings"
	"syscall"
	"testing"
	"time"

	"termagent/agent"
	"termagent/hal/haltest"
	"termagent/store"
)

// bigBlobs are the five biometrics of bigPerson: 2.4 MB each, which
// makes a download_person of 15.3 MiB on the wire (the limit is 16 MiB).
var bigBlobNames = []string{"face", "left_image", "right_image", "left_code", "right_code"}

// bigPerson returns a download_person request for id with five random
// blobs of n bytes each, and the blobs. edit, if set, changes the wire
// form of blob i (base64 text) before it is put in.
func bigPerson(id string, n int, edit func(i int, b64 []byte) []byte) ([]byte, [][]byte) {
	var msg bytes.Buffer
	fmt.Fprintf(&msg, `{"mod":"download_person","session_id":"%s","type":1,"person_info":{"person_id":"%s","person_name":"Big"`, id, id)
	var blobs [][]byte
	for i, name := range bigBlobNames {
		b := make([]byte, n)
		rand.Read(b)
		blobs = append(blobs, b)
		text := []byte(base64.StdEncoding.EncodeToString(b))
		if edit != nil {
			text = edit(i, text)
		}
		fmt.Fprintf(&msg, `,"%s":{"length":%d,"data":"%s"}`, name, n, text)
	}
	msg.WriteString("}}\n")
	return msg.Bytes(), blobs
}

// heapAllocs is the bytes the Go heap has allocated so far, process-wide.
func heapAllocs() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// spoolFilesOpen returns the spool files (nameless or unlinked files in
// dir) process pid holds open.
func spoolFilesOpen(t *testing.T, pid, dir string) []string {
	t.Helper()
	fds, err := os.ReadDir("/proc/" + pid + "/fd")
	if err != nil {
		t.Skipf("needs /proc: %v", err)
	}
	var out []string
	for _, fd := range fds {
		l, err := os.Readlink(filepath.Join("/proc", pid, "fd", fd.Name()))
		if err == nil && strings.HasPrefix(l, dir+"/") && strings.HasSuffix(l, " (deleted)") {
			out = append(out, l)
		}
	}
	return out
}

// dirFiles lists dir, without the database's own files.
func dirFiles(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		if n := e.Name(); n != "termagent.db" && n != "termagent.db-wal" && n != "termagent.db-shm" {
			out = append(out, n)
		}
	}
	return out
}

// TestHostileBigDownloadPerson: a 15.3 MiB download_person is stored
// without the agent's Go heap ever holding it: its biometrics go from the
// connection to spool files beside the database and from there, a chunk
// at a time, into SQLite. Before, the read buffer, the decoded blobs and
// their copies allocated over 40 MiB for it; the bound here is 8 MiB.
func TestHostileBigDownloadPerson(t *testing.T) {
	r := newHostileRig(t, agent.Config{})
	side := r.good()
	side.probe("before")
	msg, blobs := bigPerson("big-1", 2_400_000, nil)
	before := heapAllocs()
	side.send(msg)
	if m := side.response("big-1"); m.Code != 0 {
		t.Fatalf("answered %d %q", m.Code, m.Text)
	}
	allocated := heapAllocs() - before
	p, err := r.db.PersonWithBiometrics(context.Background(), "big-1")
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range []*store.Biometric{p.Face, p.LeftImage, p.RightImage, p.LeftCode, p.RightCode} {
		if b == nil || sha256.Sum256(b.Data) != sha256.Sum256(blobs[i]) {
			t.Fatalf("%s not stored as sent", bigBlobNames[i])
		}
	}
	if allocated > 8<<20 {
		t.Fatalf("the Go heap allocated %.1f MiB for a %.1f MiB message", float64(allocated)/(1<<20), float64(len(msg))/(1<<20))
	}
	dir := filepath.Dir(r.path)
	// A PHP server (json_encode) escapes every '/' of the base64 text.
	msg, blobs = bigPerson("big-php", 2_400_000, func(_ int, b []byte) []byte { return bytes.ReplaceAll(b, []byte("/"), []byte(`\/`)) })
	before = heapAllocs()
	side.send(msg)
	if m := side.response("big-php"); m.Code != 0 {
		t.Fatalf("escaped slashes: answered %d %q", m.Code, m.Text)
	}
	phpAllocated := heapAllocs() - before
	if b, err := r.db.Biometric(context.Background(), "big-php", store.RightCode); err != nil || !bytes.Equal(b.Data, blobs[4]) {
		t.Fatalf("escaped slashes: right_code not stored as sent (%v)", err)
	}
	if phpAllocated > 8<<20 {
		t.Fatalf("escaped slashes: the Go heap allocated %.1f MiB for a %.1f MiB message", float64(phpAllocated)/(1<<20), float64(len(msg))/(1<<20))
	}
	haltest.Eventually(t, "the spool files to be closed", func() bool { return len(spoolFilesOpen(t, "self", dir)) == 0 })
	if left := dirFiles(t, dir); len(left) != 0 {
		t.Fatalf("files left beside the database: %v", left)
	}
	r.serveGood()
	r.drained()
	r.row("15.3 MiB download_person", "stores it streaming: blobs spooled beside the database, then chunked into SQLite",
		fmt.Sprintf("Go heap allocated %.1f MiB for the message, %.1f MiB with every '/' escaped (PHP)", float64(allocated)/(1<<20), float64(phpAllocated)/(1<<20)))
}

// TestHostileBigDownloadRefusedLeavesNoTrace: a big download_person that
// is refused (invalid base64 in its last blob, a wrong length) or cut off
// mid-message leaves the database as it was, no file beside it and no
// spool file open.
func TestHostileBigDownloadRefusedLeavesNoTrace(t *testing.T) {
	r := newHostileRig(t, agent.Config{})
	side := r.good()
	side.probe("before")
	r.drained() // the outbox stops changing the database
	dir := filepath.Dir(r.path)
	before := dbContent(t, r.path)
	noTrace := func(what string) {
		t.Helper()
		haltest.Eventually(t, what+": spool files closed", func() bool { return len(spoolFilesOpen(t, "self", dir)) == 0 })
		if got := dbContent(t, r.path); got != before {
			t.Fatalf("%s: the database changed", what)
		}
		if left := dirFiles(t, dir); len(left) != 0 {
			t.Fatalf("%s: files left beside the database: %v", what, left)
		}
	}
	const n = 2_400_000
	for _, c := range []struct {
		name, field string
		edit        func(i int, b64 []byte) []byte
		length      bool
	}{
		{"invalid base64 mid-blob", "person_info.right_code.data", func(i int, b []byte) []byte {
			if i == 4 {
				b[len(b)/2] = '@'
			}
			return b
		}, false},
		{"padding mid-blob", "person_info.left_image.data", func(i int, b []byte) []byte {
			if i == 1 {
				copy(b[len(b)/2/4*4:], "====")
			}
			return b
		}, false},
		{"length mismatch", "person_info.face.length", nil, true},
	} {
		sid := "bad-" + strings.ReplaceAll(c.name, " ", "-")
		msg, _ := bigPerson(sid, n, c.edit)
		if c.length {
			msg = bytes.Replace(msg, []byte(fmt.Sprintf(`"face":{"length":%d`, n)), []byte(fmt.Sprintf(`"face":{"length":%d`, n+1)), 1)
		}
		side.send(msg)
		m := side.response(sid)
		if m.Code != -1 || !strings.Contains(m.Text, c.field) {
			t.Fatalf("%s: answered %d %q, want -1 naming %s", c.name, m.Code, m.Text, c.field)
		}
		noTrace(c.name)
	}

	// Cut off: half the message, then the connection ends.
	msg, _ := bigPerson("cut", n, nil)
	side.send(msg[:len(msg)/2])
	haltest.Eventually(t, "a spool file to be written", func() bool { return len(spoolFilesOpen(t, "self", dir)) > 0 })
	side.c.Close()
	noTrace("cut off mid-message")
	r.serveGood()
	r.drained()
	noTrace("after the drain")
	r.row("big download_person refused or cut off", "-1 naming the field (or the link drops); database unchanged, no file left, no spool file open",
		"3 refusals of 15.3 MiB messages, 1 cut off at 7.6 MiB")
}

// spoolChildEnv turns the test binary into the SIGKILL test's child: an
// agent with the database at that path, dialling spoolChildAddr.
const (
	spoolChildEnv  = "TERMAGENT_SPOOL_CHILD_DB"
	spoolChildAddr = "TERMAGENT_SPOOL_CHILD_ADDR"
)

// personRows counts the rows of persons, biometrics and their chunks.
func personRows(t *testing.T, path string) int {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro&_busy_timeout=10000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT (SELECT count(*) FROM persons) + (SELECT count(*) FROM biometrics) +
		(SELECT count(*) FROM biometric_chunks)`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestSpoolChild is the child of TestFaultKilledMidBigMessage (skipped
// otherwise): it runs an agent until it is killed.
func TestSpoolChild(t *testing.T) {
	path := os.Getenv(spoolChildEnv)
	if path == "" {
		t.Skip("the child of TestFaultKilledMidBigMessage")
	}
	db, err := store.Open(context.Background(), path, store.Config{})
	if err != nil {
		t.Fatal(err)
	}
	a, err := agent.New(agent.Config{Link: agent.LinkConfig{ServerAddress: os.Getenv(spoolChildAddr)}, Logger: testLogger(t, "child")}, agent.Parts{Store: db})
	if err != nil {
		t.Fatal(err)
	}
	a.Run(context.Background())
}

// TestFaultKilledMidBigMessage: an agent killed (SIGKILL) while a
// 15.3 MiB download_person is arriving leaves no file beside its database
// and no trace in it; the next agent starts clean on the same directory.
func TestFaultKilledMidBigMessage(t *testing.T) {
	if _, err := os.Stat("/proc/self/fd"); err != nil {
		t.Skip("needs /proc")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "termagent.db")
	db, err := store.Open(context.Background(), path, store.Config{})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	srv := newRawServer(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run", "^TestSpoolChild$", "-test.v")
	cmd.Env = append(os.Environ(), spoolChildEnv+"="+path, spoolChildAddr+"="+srv.addr)
	// Never leave a child running if this test dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	c := srv.accept(t)
	msg, _ := bigPerson("killed", 2_400_000, nil)
	go func() {
		// Everything but the last blob; the child is killed meanwhile.
		c.Write(msg[:len(msg)*4/5])
	}()
	pid := fmt.Sprint(cmd.Process.Pid)
	deadline := time.Now().Add(waitFor)
	for len(spoolFilesOpen(t, pid, dir)) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the child never spooled; its output:\n%s", out.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	spooled := spoolFilesOpen(t, pid, dir)
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	c.Close()
	// Spool files have no name (O_TMPFILE); where the filesystem lacks
	// it, one killed between its creation and unlinking may remain: the
	// next start removes it (checked below).
	leftovers := dirFiles(t, dir)
	for _, f := range leftovers {
		if !strings.HasPrefix(f, ".termagent-spool-") {
			t.Fatalf("files left beside the database after SIGKILL: %v", leftovers)
		}
	}
	if got := personRows(t, path); got != 0 {
		t.Fatalf("%d rows of persons, biometrics and chunks after the kill", got)
	}
	// The next agent on the same directory (and server: the database
	// keeps its address): a clean start, and a download that works.
	r := &hostileRig{t: t, srv: srv, path: path, delivered: map[string]int{}}
	r.db, err = store.Open(context.Background(), path, store.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.db.Close() })
	r.a = startAgent(t, agent.Config{Link: agent.LinkConfig{ServerAddress: r.srv.addr}}, agent.Parts{Store: r.db})
	side := r.good()
	msg, _ = bigPerson("after-kill", 2_400_000, nil)
	side.send(msg)
	if m := side.response("after-kill"); m.Code != 0 {
		t.Fatalf("after the kill: answered %d %q", m.Code, m.Text)
	}
	if n, err := r.db.CountPersons(context.Background()); err != nil || n != 1 {
		t.Fatalf("persons after the kill and one download: %d, %v", n, err)
	}
	haltest.Eventually(t, "the spool files to be closed", func() bool { return len(spoolFilesOpen(t, "self", dir)) == 0 })
	if left := dirFiles(t, dir); len(left) != 0 {
		t.Fatalf("files left beside the database after the next start: %v", left)
	}
	t.Logf("FAULTROW\t%s\t%s\t%s", "SIGKILL mid 15.3 MiB download_person", "no file left beside the database, no person, biometric or chunk row; the next start downloads normally",
		fmt.Sprintf("%d spool files open at the kill, %d named leftovers (removed at the next start)", len(spooled), len(leftovers)))
}

package agent_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"termagent/agent"
	"termagent/store"
)

// badCase is one file of testdata/badinput: a request as raw bytes, the
// code the terminal must answer, the field its message must name (and
// other words it must contain).
type badCase struct {
	name  string
	code  int
	field string
	names []string
	msg   []byte
}

func loadBadCases(t *testing.T) []badCase {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "badinput", "*.case"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no bad-input cases: %v", err)
	}
	var cases []badCase
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		head, msg, ok := bytes.Cut(b, []byte("\n\n"))
		if !ok {
			t.Fatalf("%s: no blank line after the header", f)
		}
		c := badCase{name: strings.TrimSuffix(filepath.Base(f), ".case"), msg: bytes.TrimRight(msg, "\n")}
		for _, l := range strings.Split(string(head), "\n") {
			k, v, _ := strings.Cut(l, ":")
			v = strings.TrimSpace(v)
			switch k {
			case "code":
				if c.code, err = strconv.Atoi(v); err != nil {
					t.Fatalf("%s: code %q", f, v)
				}
			case "field":
				c.field = v
			case "names":
				c.names = strings.Fields(v)
			}
		}
		cases = append(cases, c)
	}
	return cases
}

// TestHostileBadInputCorpus sends every case of testdata/badinput to a
// real agent over loopback TCP: each gets exactly one response with the
// expected code and a message naming the field; after a refused request
// the database holds exactly what it held before (persons, biometrics,
// settings, outbox), and the link goes on working.
func TestHostileBadInputCorpus(t *testing.T) {
	cases := loadBadCases(t)
	srv := newRawServer(t)
	path := filepath.Join(t.TempDir(), "termagent.db")
	db, err := store.Open(context.Background(), path, store.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	putPersonDB(t, db, store.Person{PersonID: "42", Name: "张飒", CardNumber: "0006547886",
		Face: &store.Biometric{Data: []byte{1, 2, 3}, Format: "1", Width: 1, Height: 1}})
	enqueueRecords(t, db, "rec", 2)
	cfg := agent.Config{
		Link:     agent.LinkConfig{ServerAddress: srv.addr, CallTimeout: time.Hour},
		Commands: map[int]agent.Command{1: {Action: agent.ActionMessage}},
	}
	startAgent(t, cfg, agent.Parts{Store: db})
	side := newRawSide(t, srv.accept(t))
	side.probe("probe-start") // the agent is up and has seeded its settings

	refused, unchanged := 0, 0
	for i, c := range cases {
		before := dbContent(t, path)
		sid := "bad-" + c.name
		if err := side.send(append(c.msg, '\n')); err != nil {
			t.Fatalf("%s: send: %v", c.name, err)
		}
		resp := side.response(sid)
		side.probe("probe-" + strconv.Itoa(i)) // the link goes on
		if n := side.responses(sid); n != 1 {
			t.Errorf("%s: %d responses", c.name, n)
		}
		if resp.Code != c.code {
			t.Errorf("%s: code %d %q; want %d", c.name, resp.Code, resp.Text, c.code)
			continue
		}
		for _, w := range append([]string{c.field}, c.names...) {
			if !strings.Contains(resp.Text, w) {
				t.Errorf("%s: message %q does not name %q", c.name, resp.Text, w)
			}
		}
		if c.code == 0 {
			continue
		}
		refused++
		if after := dbContent(t, path); after != before {
			t.Errorf("%s: the database changed on a refused request:\nbefore:\n%.2000s\nafter:\n%.2000s", c.name, before, after)
		} else {
			unchanged++
		}
	}
	p, err := db.PersonByCard(context.Background(), "0006547886")
	if err != nil || p.PersonID != "42" {
		t.Errorf("card 0006547886 → %q, %v; want person 42", p.PersonID, err)
	}
	t.Logf("FAULTROW\t%s\t%s\t%s", "bad-input corpus, every request type (testdata/badinput)",
		"one response each: -1 naming the field, database unchanged; link goes on",
		strconv.Itoa(len(cases))+" cases, "+strconv.Itoa(refused)+" refused, db unchanged "+strconv.Itoa(unchanged)+"/"+strconv.Itoa(refused)+", "+vmHWM())
}

// putPersonDB stores p without module bindings.
func putPersonDB(t *testing.T, db *store.DB, p store.Person) {
	t.Helper()
	ctx := context.Background()
	tx, err := db.BeginPerson(ctx, p.PersonID)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if err := tx.Put(p); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}

package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"termagent/agent"
)

func TestPrintStatus(t *testing.T) {
	now := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	rep := statusReport{Running: true, Agent: &agent.Status{
		Link: agent.LinkUp, Server: "10.0.0.5:49003", LinkSince: now.Add(-time.Hour), LocalAddr: "10.0.0.7:51000",
		OutboxDepth: 3, OutboxOldest: now.Add(-90 * time.Second), OutboxQuarantined: 1, Uploaded: 12, Persons: 5000,
		Modules: map[string]agent.ModuleStatus{
			"card":        {State: agent.ModuleOK, Since: now.Add(-time.Hour)},
			"fingerprint": {State: agent.ModuleFault, Since: now.Add(-time.Minute), Error: "fingerprint /dev/ttyS2: hal: device timed out"},
		},
		DoorUnlocked: true, SoftwareVersion: "1.2.3", Uptime: 3 * time.Hour,
		RecordsPending: 4, RecordsDropped: 2,
	}}
	var b bytes.Buffer
	printStatus(&b, rep, now)
	out := squeeze(b.String())
	for _, want := range []string{
		"termagent 1.2.3, running, up 3h0m0s",
		"up since", "server 10.0.0.5:49003, local 10.0.0.7:51000",
		"3 unsent, oldest", "(1m30s ago)",
		"quarantined 1", "persons 5000",
		"fault since", ": fingerprint /dev/ttyS2: hal: device timed out",
		"door state unlocked",
		"not yet stored 4 in memory, 2 lost since start",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status output lacks %q:\n%s", want, out)
		}
	}

	// A healthy database: the line is left out.
	rep.Agent.RecordsPending, rep.Agent.RecordsDropped = 0, 0
	b.Reset()
	printStatus(&b, rep, now)
	if out := b.String(); strings.Contains(out, "not yet stored") {
		t.Errorf("status shows records not yet stored with none:\n%s", out)
	}

	b.Reset()
	printStatus(&b, statusReport{Problem: "termagent is not running (no socket)", Database: &dbStatus{Path: "/x.db", Persons: 2}}, now)
	out = squeeze(b.String())
	for _, want := range []string{"not running", "database /x.db", "(none stored yet)", "persons 2", "problem termagent is not running"} {
		if !strings.Contains(out, want) {
			t.Errorf("stopped status output lacks %q:\n%s", want, out)
		}
	}
}

// Without a daemon and without a database, status says so and exits 3.
func TestStatusNothingThere(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, "server:\n  address: 127.0.0.1:9\nstore:\n  path: "+dir+"/none/t.db\ncontrol:\n  socket: "+dir+"/ctl.sock\n")
	code, out, _ := runCLI(t, "status", "-config", cfg)
	if code != exitNotRunning || !strings.Contains(out, "not running") || !strings.Contains(out, "no such file or directory") {
		t.Errorf("status: exit %d\n%s", code, out)
	}
	if _, err := readDatabase(t.Context(), StoreConfig{Path: dir + "/none/t.db"}); err == nil {
		t.Error("readDatabase created a database that was not there")
	}
}

// squeeze collapses the runs of spaces tabwriter puts between columns.
func squeeze(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.Join(strings.Fields(l), " ")
	}
	return strings.Join(lines, "\n")
}

// TestStatusJSON: a status report once had "outbox_oldest":"0001-01-01T00:00:00Z"
// for an empty outbox and "uptime":11935361184 (nanoseconds).
func TestStatusJSON(t *testing.T) {
	since := time.Date(2026, 11, 30, 14, 10, 58, 0, time.UTC)
	rep := statusReport{Running: true, Agent: &agent.Status{
		Link: agent.LinkUp, Server: "127.0.0.1:49003", LinkSince: since, Started: since,
		Uptime:  11935361184, // 11.9 s
		Modules: map[string]agent.ModuleStatus{"card": {State: agent.ModuleOK, Since: since}, "face": {State: agent.ModuleFault}},
	}}
	b, err := json.Marshal(rep.jsonReport())
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	a, _ := got["agent"].(map[string]any)
	if a == nil {
		t.Fatalf("no agent in %s", b)
	}
	for _, absent := range []string{"outbox_oldest", "uptime", "local_addr", "last_error", "errors"} {
		if v, ok := a[absent]; ok {
			t.Errorf("%q = %v present; want it absent: %s", absent, v, b)
		}
	}
	if a["uptime_seconds"] != float64(11) || a["link_since"] != "2026-11-30T14:10:58Z" || a["started"] != "2026-11-30T14:10:58Z" ||
		a["link"] != "up" || a["outbox_depth"] != float64(0) {
		t.Errorf("agent fields wrong: %s", b)
	}
	mods, _ := a["modules"].(map[string]any)
	card, _ := mods["card"].(map[string]any)
	face, _ := mods["face"].(map[string]any)
	if card["since"] != "2026-11-30T14:10:58Z" || face == nil || face["state"] != "fault" {
		t.Errorf("modules: %s", b)
	}
	if _, ok := face["since"]; ok {
		t.Errorf("a module that never changed state has a since: %s", b)
	}
	db, err := json.Marshal(statusReport{Database: &dbStatus{Path: "/x.db"}}.jsonReport())
	if err != nil || strings.Contains(string(db), "0001-01-01") || strings.Contains(string(db), `"agent"`) {
		t.Errorf("database report: %s, %v", db, err)
	}
}

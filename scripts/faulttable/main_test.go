package main

import (
	"strings"
	"testing"
)

func TestTable(t *testing.T) {
	in := strings.Join([]string{
		`{"Action":"run","Package":"termagent/agent","Test":"TestFaultDiskFull"}`,
		`{"Action":"output","Package":"termagent/agent","Test":"TestFaultDiskFull","Output":"    x_test.go:9: FAULTROW\tdisk full\topens the door\t3 committed\n"}`,
		`{"Action":"pass","Package":"termagent/agent","Test":"TestFaultDiskFull"}`,
		`{"Action":"output","Package":"termagent/agent","Test":"TestHostileBurst/50","Output":"FAULTROW\tburst of 50\tanswers all\t50/50\n"}`,
		`{"Action":"fail","Package":"termagent/agent","Test":"TestHostileBurst/50"}`,
		`{"Action":"fail","Package":"termagent/agent","Test":"TestHostileBurst"}`,
		`{"Action":"fail","Package":"termagent/store","Test":"TestFaultNoRow"}`,
		`not json: build output`,
	}, "\n")
	rows, err := read(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range rows {
		got[r.fault] = r.result
	}
	want := map[string]string{"disk full": "pass", "burst of 50": "fail", "TestFaultNoRow": "fail"}
	if len(got) != len(want) {
		t.Fatalf("rows %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("row %q: %q, want %q", k, got[k], v)
		}
	}
	var b strings.Builder
	if print(&b, rows) {
		t.Error("a table with failed rows printed as passing")
	}
	if !strings.Contains(b.String(), "faults: 1 passed, 2 failed") {
		t.Errorf("closing line missing:\n%s", b.String())
	}
}

func TestTableEmptyFails(t *testing.T) {
	var b strings.Builder
	if print(&b, nil) {
		t.Error("an empty table passed")
	}
}

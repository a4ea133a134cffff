package scripts

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// programs are the binaries the project ships.
var programs = []string{"termagent", "termsim", "termserver"}

// licenceMarks are phrases of each licence's text: a module's licence file
// must contain every phrase of the licence NOTICE names for it.
var licenceMarks = map[string][]string{
	"MIT":          {"Permission is hereby granted, free of charge"},
	"ISC":          {"Permission to use, copy, modify, and", "THE SOFTWARE IS PROVIDED \"AS IS\""},
	"BSD-3-Clause": {"Redistribution and use in source and binary forms", "Neither the name"},
	"Apache-2.0":   {"Apache License", "Version 2.0"},
}

// noticeEntry is one line of NOTICE's module table.
type noticeEntry struct {
	module, version, licence string
	linkedInto               []string
}

// readNotice parses the module table of ../NOTICE: the lines after the
// "module version licence linked into" header up to the first blank line.
func readNotice(t *testing.T) map[string]noticeEntry {
	t.Helper()
	f, err := os.Open("../NOTICE")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]noticeEntry{}
	sc := bufio.NewScanner(f)
	in := false
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "module ") && strings.Contains(line, "linked into"):
			in = true
			continue
		case !in:
			continue
		case strings.TrimSpace(line) == "":
			return out
		}
		f := strings.Fields(line)
		if len(f) < 4 {
			t.Fatalf("NOTICE: short table line %q", line)
		}
		e := noticeEntry{module: f[0], version: f[1]}
		// The licence is one SPDX id or an expression "A AND B"; the
		// programs follow.
		i := 2
		e.licence = f[i]
		for i+2 < len(f) && f[i+1] == "AND" {
			e.licence += " AND " + f[i+2]
			i += 2
		}
		e.linkedInto = f[i+1:]
		out[e.module] = e
	}
	if !in {
		t.Fatal("NOTICE has no module table")
	}
	return out
}

// linkedModules returns, for each module (but the main one) that a
// program links, its version and the programs that link it.
func linkedModules(t *testing.T) map[string]noticeEntry {
	t.Helper()
	out := map[string]noticeEntry{}
	for _, prog := range programs {
		b, err := exec.Command("go", "list", "-deps", "-f", "{{with .Module}}{{if not .Main}}{{.Path}} {{.Version}}{{end}}{{end}}",
			"termagent/cmd/"+prog).Output()
		if err != nil {
			t.Fatalf("go list %s: %v", prog, err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			path, version, ok := strings.Cut(strings.TrimSpace(line), " ")
			if !ok {
				continue
			}
			e := out[path]
			e.module, e.version = path, version
			if !slices.Contains(e.linkedInto, prog) {
				e.linkedInto = append(e.linkedInto, prog)
			}
			out[path] = e
		}
	}
	return out
}

// TestNotice keeps NOTICE's third-party table equal to what the three
// programs link: every module, at go.mod's version, the programs linking
// it, and a licence its own licence file bears out.
func TestNotice(t *testing.T) {
	notice := readNotice(t)
	linked := linkedModules(t)
	if len(linked) == 0 {
		t.Fatal("go list found no linked module")
	}
	for path, l := range linked {
		n, ok := notice[path]
		switch {
		case !ok:
			t.Errorf("NOTICE lacks %s %s (linked into %s)", path, l.version, strings.Join(l.linkedInto, " "))
			continue
		case n.version != l.version:
			t.Errorf("NOTICE: %s is %s; go.mod selects %s", path, n.version, l.version)
		}
		if !slices.Equal(n.linkedInto, l.linkedInto) {
			t.Errorf("NOTICE: %s linked into %v; it is linked into %v", path, n.linkedInto, l.linkedInto)
		}
		dir, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", path).Output()
		if err != nil {
			t.Fatalf("go list -m %s: %v", path, err)
		}
		text := licenceText(t, strings.TrimSpace(string(dir)))
		for _, id := range strings.Split(n.licence, " AND ") {
			marks, ok := licenceMarks[id]
			if !ok {
				t.Errorf("NOTICE: %s: licence %q: add its marks to licenceMarks", path, id)
			}
			for _, m := range marks {
				if !strings.Contains(text, m) {
					t.Errorf("NOTICE says %s is %s, but its licence files lack %q", path, n.licence, m)
				}
			}
		}
	}
	for path := range notice {
		if _, ok := linked[path]; !ok {
			t.Errorf("NOTICE lists %s, which no program links any more", path)
		}
	}
}

// licenceText returns the licence files of the module in dir, joined.
func licenceText(t *testing.T, dir string) string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var text strings.Builder
	for _, e := range entries {
		name := strings.ToUpper(e.Name())
		if !e.IsDir() && (strings.HasPrefix(name, "LICENSE") || strings.HasPrefix(name, "LICENCE") || strings.HasPrefix(name, "COPYING")) {
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			text.Write(b)
		}
	}
	if text.Len() == 0 {
		t.Errorf("no licence file in %s", dir)
	}
	return text.String()
}

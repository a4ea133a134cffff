// Command faulttable reads `go test -json` output on standard input and
// prints the fault table of `make faults`: one row per fault that a test
// reported, with the test's own result, then "N passed, N failed".
//
// A fault test reports its row by logging one line:
//
//	t.Logf("FAULTROW\t%s\t%s\t%s", fault, whatTheTerminalDoes, figures)
//
// The row passes only if the test (or subtest) that logged it passed. A
// test that fails before logging its row shows up as a failed row named
// after the test, so a missing row cannot pass silently. Exit status: 0
// when every row passed and at least one ran, 1 otherwise.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
)

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action  string
	Package string
	Test    string
	Output  string
	Elapsed float64
}

// row is one fault of the table.
type row struct {
	pkg, test         string
	fault, does, figs string
	result            string // pass, fail, skip, or "" while running
}

const marker = "FAULTROW\t"

func main() {
	rows, err := read(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "faulttable:", err)
		os.Exit(1)
	}
	if !print(os.Stdout, rows) {
		os.Exit(1)
	}
}

// read collects the rows and each test's result.
func read(r io.Reader) ([]*row, error) {
	var rows []*row
	byTest := map[string][]*row{} // package + test → its rows
	result := map[string]string{}
	var failedTests []event
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var ev event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			continue // build output and the like
		}
		key := ev.Package + " " + ev.Test
		switch ev.Action {
		case "output":
			i := strings.Index(ev.Output, marker)
			if i < 0 || ev.Test == "" {
				continue
			}
			f := strings.Split(strings.TrimRight(ev.Output[i+len(marker):], "\n"), "\t")
			for len(f) < 3 {
				f = append(f, "")
			}
			rw := &row{pkg: ev.Package, test: ev.Test, fault: f[0], does: f[1], figs: f[2]}
			rows = append(rows, rw)
			byTest[key] = append(byTest[key], rw)
		case "pass", "fail", "skip":
			if ev.Test == "" {
				if ev.Action == "fail" && len(byTest) == 0 {
					failedTests = append(failedTests, ev)
				}
				continue
			}
			result[key] = ev.Action
			if ev.Action == "fail" {
				failedTests = append(failedTests, ev)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read go test -json: %w", err)
	}
	for key, rs := range byTest {
		for _, rw := range rs {
			rw.result = result[key]
		}
	}
	// A failed test without a row of its own (or a package that did not
	// build) is a failed row too.
	for _, ev := range failedTests {
		if len(byTest[ev.Package+" "+ev.Test]) > 0 || hasChildRow(byTest, ev) {
			continue
		}
		name := ev.Test
		if name == "" {
			name = "(package)"
		}
		rows = append(rows, &row{pkg: ev.Package, test: name, fault: name, does: "the test failed before reporting its row", result: "fail"})
	}
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].pkg < rows[j].pkg })
	return rows, nil
}

// hasChildRow reports whether a subtest of ev's test logged a row (a parent
// fails when a subtest does; the subtest's row carries the failure).
func hasChildRow(byTest map[string][]*row, ev event) bool {
	prefix := ev.Package + " " + ev.Test + "/"
	for k := range byTest {
		if strings.HasPrefix(k, prefix) {
			return true
		}
	}
	return false
}

// print writes the table and the closing line; it reports whether every
// row passed.
func print(w io.Writer, rows []*row) bool {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RESULT\tFAULT\tWHAT THE TERMINAL DOES\tFIGURES\tTEST")
	passed, failed, skipped := 0, 0, 0
	for _, r := range rows {
		res := "FAIL"
		switch r.result {
		case "pass":
			res = "pass"
			passed++
		case "skip":
			res = "skip"
			skipped++
		default:
			failed++
		}
		pkg := r.pkg[strings.LastIndex(r.pkg, "/")+1:]
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s.%s\n", res, r.fault, r.does, r.figs, pkg, r.test)
	}
	tw.Flush()
	fmt.Fprintf(w, "faults: %d passed, %d failed", passed, failed)
	if skipped > 0 {
		fmt.Fprintf(w, ", %d skipped", skipped)
	}
	fmt.Fprintln(w)
	return failed == 0 && passed > 0
}

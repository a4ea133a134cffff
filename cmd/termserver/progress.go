package main

import (
	"fmt"
	"io"
	"strings"
)

// progress draws a progress bar:
//
//	push [##########..........]  12/24  ok 11  failed 1  alice
//
// redrawn in place on a terminal, one line per step on anything else (a
// log, a pipe). Not safe for concurrent use.
type progress struct {
	w       io.Writer
	label   string
	total   int
	done    int
	failed  int
	width   int
	inPlace bool
}

func newProgress(w io.Writer, label string, total int) *progress {
	return &progress{w: w, label: label, total: total, width: 30, inPlace: isTerminal(w)}
}

// step records one finished item and redraws the bar.
func (p *progress) step(ok bool, item string) {
	p.done++
	if !ok {
		p.failed++
	}
	filled := p.width
	if p.total > 0 {
		filled = p.width * p.done / p.total
	}
	if len(item) > 24 {
		item = item[:24]
	}
	start, end := "\r", ""
	if !p.inPlace {
		start, end = "", "\n"
	}
	fmt.Fprintf(p.w, "%s%s [%s%s] %*d/%d  ok %d  failed %d  %-24s%s", start,
		p.label, strings.Repeat("#", filled), strings.Repeat(".", p.width-filled),
		len(fmt.Sprint(p.total)), p.done, p.total, p.done-p.failed, p.failed, item, end)
}

// finish ends the bar's line.
func (p *progress) finish() {
	if p.inPlace {
		fmt.Fprintln(p.w)
	}
}

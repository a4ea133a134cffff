package feedback_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"periph.io/x/conn/v3/gpio"

	"termagent/hal"
	"termagent/hal/feedback"
)

// timelinePin is a GPIO output line in memory that records every level
// driven and when (under synctest, on the bubble's fake clock); fail makes
// its drives fail, as a released or broken line would. It stands in for
// the GPIO character device, which this machine does not have.
type timelinePin struct {
	start time.Time

	mu     sync.Mutex
	log    []string
	fail   bool
	closed bool
}

var _ feedback.Pin = (*timelinePin)(nil)

func newTimelinePin() *timelinePin { return &timelinePin{start: time.Now()} }

func (p *timelinePin) Out(l gpio.Level) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fail || p.closed {
		return errors.New("line gone")
	}
	p.log = append(p.log, fmt.Sprintf("%v@%v", l, time.Since(p.start)))
	return nil
}

func (p *timelinePin) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
}

func (p *timelinePin) timeline() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.log, " ")
}

func TestPatternTimeline(t *testing.T) {
	for _, activeLow := range []bool{false, true} {
		synctest.Test(t, func(t *testing.T) {
			pin := newTimelinePin()
			o, err := feedback.New(feedback.Config{Name: "buzzer", ActiveLow: activeLow}, pin)
			if err != nil {
				t.Fatal(err)
			}
			defer o.Close()
			deny, err := feedback.ParsePattern("100ms, 50ms,100ms,50ms,100ms")
			if err != nil {
				t.Fatal(err)
			}
			if err := o.Play(deny); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Second)
			on, off := "High", "Low"
			if activeLow {
				on, off = off, on
			}
			want := fmt.Sprintf("%[2]s@0s %[1]s@0s %[2]s@100ms %[1]s@150ms %[2]s@250ms %[1]s@300ms %[2]s@400ms", on, off)
			if got := pin.timeline(); got != want {
				t.Fatalf("timeline\n got %s\nwant %s", got, want)
			}
			if o.On() {
				t.Fatal("on after the pattern")
			}
		})
	}
}

// A second Play replaces the first at once; Set stops a pattern; Close
// drives off and releases the line, and is idempotent.
func TestReplaceSetClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pin := newTimelinePin()
		o, err := feedback.New(feedback.Config{}, pin)
		if err != nil {
			t.Fatal(err)
		}
		if err := o.Play(feedback.Pattern{time.Second}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
		if err := o.Play(feedback.Pattern{200 * time.Millisecond}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Second)
		if got, want := pin.timeline(), "Low@0s High@0s High@100ms Low@300ms"; got != want {
			t.Fatalf("replace: %s, want %s", got, want)
		}
		if err := o.Play(feedback.Pattern{time.Second}); err != nil {
			t.Fatal(err)
		}
		if err := o.Set(true); err != nil || !o.On() {
			t.Fatal("Set(true):", err)
		}
		time.Sleep(2 * time.Second) // the stopped pattern must not switch it off
		if !o.On() {
			t.Fatal("a stopped pattern switched the output off")
		}
		if err := o.Play(feedback.Pattern{time.Second}); err != nil {
			t.Fatal(err)
		}
		if err := o.Close(); err != nil || o.On() {
			t.Fatal("Close:", err)
		}
		time.Sleep(2 * time.Second)
		if err := o.Close(); err != nil {
			t.Fatal("second Close:", err)
		}
		if err := o.Play(feedback.Pattern{time.Second}); !errors.Is(err, hal.ErrClosed) {
			t.Fatalf("Play after Close: %v", err)
		}
		pin.mu.Lock()
		closed := pin.closed
		pin.mu.Unlock()
		if !closed || !strings.HasSuffix(pin.timeline(), "Low@4.1s") {
			t.Fatalf("line not released off: %s", pin.timeline())
		}
	})
}

func TestFaultFeedbackLineFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pin := newTimelinePin()
		o, err := feedback.New(feedback.Config{Name: "red"}, pin)
		if err != nil {
			t.Fatal(err)
		}
		defer o.Close()
		pin.mu.Lock()
		pin.fail = true
		pin.mu.Unlock()
		if err := o.Play(feedback.Pattern{time.Second}); !errors.Is(err, hal.ErrFault) || !strings.Contains(err.Error(), "red") {
			t.Fatalf("Play on a failing line: %v", err)
		}
		if !errors.Is(o.Err(), hal.ErrFault) {
			t.Fatalf("Err %v", o.Err())
		}
		pin.mu.Lock()
		pin.fail = false
		pin.mu.Unlock()
		time.Sleep(2 * time.Second) // the pattern's end drives off, which now works
		if o.Err() != nil {
			t.Fatalf("Err after the line came back: %v", o.Err())
		}
		t.Logf("FAULTROW\t%s\t%s\t%s", "feedback output line fails", "Play returns a fault naming the output, Err reports it until a drive succeeds", "patterns 1, errors 1")
	})
}

func TestParsePattern(t *testing.T) {
	p, err := feedback.ParsePattern("200ms")
	if err != nil || p.String() != "200ms" {
		t.Fatalf("%v %v", p, err)
	}
	for _, bad := range []string{"", "200", "0s", "-1s", "11s", "10s,10s,10s,10s", strings.Repeat("1ms,", 32) + "1ms"} {
		if _, err := feedback.ParsePattern(bad); !errors.Is(err, feedback.ErrPattern) {
			t.Errorf("%q: %v", bad, err)
		}
	}
	if _, err := feedback.New(feedback.Config{}, nil); err == nil {
		t.Error("nil pin accepted")
	}
	if _, err := feedback.Open(feedback.Config{Line: "GPIO22"}); !errors.Is(err, hal.ErrFault) {
		t.Errorf("Open on a machine without GPIO: %v", err)
	}
}

func FuzzParsePattern(f *testing.F) {
	f.Add("100ms,100ms,100ms")
	f.Add("1h")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := feedback.ParsePattern(s)
		if err != nil {
			if !errors.Is(err, feedback.ErrPattern) {
				t.Fatalf("%q: error %v does not wrap ErrPattern", s, err)
			}
			return
		}
		if p.Validate() != nil {
			t.Fatalf("%q parsed into an invalid pattern %v", s, p)
		}
		if q, err := feedback.ParsePattern(p.String()); err != nil || q.String() != p.String() {
			t.Fatalf("%q: round trip %v %v", s, q, err)
		}
	})
}

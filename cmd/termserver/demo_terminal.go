package main

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"termagent/cmd/termserver/internal/server"
	"termagent/hal/backoff"
)

// The device events the demo's terminal sends (termagent's defaults,
// events.pin_lockout, door_forced and door_held_open).
const (
	demoEventLockout  = 8
	demoEventHeldOpen = 9
	demoEventForced   = 10
)

// demoGrace is the door watch's grace (door_watch.grace, default 1 s)
// with a margin: a door opened this long after the lock closed again was
// not let through.
const demoGrace = 2 * time.Second

// doorWatch plays the keypad lockout and the door supervision: three
// wrong PINs, the exit button, a forced door, a door held open.
func (d *demo) doorWatch(ctx context.Context) error {
	d.say("7. Someone types a wrong PIN three times: the keypad locks (event %d at the server)", demoEventLockout)
	for range 3 {
		if err := d.ctl.Pin(ctx, "1111#"); err != nil {
			return fmt.Errorf("wrong PIN: %w", err)
		}
	}
	v, err := d.awaitEvent(ctx, demoEventLockout, false)
	d.checkEvent("three wrong PINs", "PIN lockout event", demoEventLockout, v, err)

	d.say("8. The exit button opens the door, with no record")
	if _, err := d.ctl.Do(ctx, "button"); err != nil {
		return fmt.Errorf("exit button: %w", err)
	}
	d.exits++
	opened := d.ctl.AwaitRelay(ctx, true, 10*time.Second) == nil
	if opened {
		d.opens++
		if err := d.ctl.AwaitRelay(ctx, false, 10*time.Second); err != nil {
			return fmt.Errorf("the door did not lock again: %w", err)
		}
	}
	d.check("exit button", "door opens", map[bool]string{true: "door opened", false: "door stayed shut"}[opened], opened)

	d.say("9. The door is forced open while locked (event %d), then shut", demoEventForced)
	if !backoff.Sleep(ctx, demoGrace) { // the exit button's opening window ends
		return ctx.Err()
	}
	if err := d.ctl.Door(ctx, true); err != nil {
		return fmt.Errorf("door open: %w", err)
	}
	v, err = d.awaitEvent(ctx, demoEventForced, false)
	d.checkEvent("door forced open", "door forced event", demoEventForced, v, err)
	if err := d.ctl.Door(ctx, false); err != nil {
		return fmt.Errorf("door closed: %w", err)
	}
	v, err = d.awaitEvent(ctx, demoEventForced, true)
	d.checkEvent("forced door shut", "door forced event, closed", 0, v, err)

	p := demoPersons[1]
	d.say("10. %s swipes their card, opens the door and holds it open beyond 3s (event %d), then shuts it", p.Name, demoEventHeldOpen)
	before, err := d.recordCount(ctx)
	if err != nil {
		return err
	}
	if err := d.ctl.Swipe(ctx, p.Card); err != nil {
		return fmt.Errorf("swipe: %w", err)
	}
	d.expected++
	opened = d.ctl.AwaitRelay(ctx, true, 10*time.Second) == nil
	if opened {
		d.opens++
	}
	if err := d.ctl.Door(ctx, true); err != nil { // while the lock is released: allowed
		return fmt.Errorf("door open: %w", err)
	}
	rec, rerr := d.awaitRecord(ctx, before, 15*time.Second)
	got := map[bool]string{true: "door opened, ", false: "door stayed shut, "}[opened]
	if rerr != nil {
		got += "no record at the server"
	} else {
		got += fmt.Sprintf("server stored record #%d (person %s, %s)", rec.ID, rec.PersonID, openDoorName(rec.OpenDoorType))
	}
	d.check(p.Name+" swipes card "+p.Card, "door opens, record at server", got, opened && rerr == nil && rec.PersonID == p.ID)
	v, err = d.awaitEvent(ctx, demoEventHeldOpen, false)
	d.checkEvent("door held open", "door held open event", demoEventHeldOpen, v, err)
	if err := d.ctl.Door(ctx, false); err != nil {
		return fmt.Errorf("door closed: %w", err)
	}
	v, err = d.awaitEvent(ctx, demoEventHeldOpen, true)
	d.checkEvent("held door shut", "door held open event, closed", 0, v, err)
	if opened {
		if err := d.ctl.AwaitRelay(ctx, false, 10*time.Second); err != nil {
			return fmt.Errorf("the door did not lock again: %w", err)
		}
	}
	return nil
}

// checkEvent records a summary line for an awaited device event; count
// names the event type counted in the summary (0: not counted).
func (d *demo) checkEvent(what, want string, count int, value string, err error) {
	if err != nil {
		d.check(what, want, "no such event at the server", false)
		return
	}
	if count != 0 {
		d.events[count]++
	}
	d.check(what, want, fmt.Sprintf("server got event %q", value), true)
}

// awaitEvent waits for the terminal's last device event at the server to
// be of type typ, its value starting with "closed" or not as closed says,
// and returns it ("TYPE VALUE").
func (d *demo) awaitEvent(ctx context.Context, typ int, closed bool) (string, error) {
	var last string
	err := d.poll(ctx, 20*time.Second, fmt.Sprintf("device event %d at the server", typ), func() bool {
		var ts []server.TerminalStatus
		if d.admin.Do(ctx, http.MethodGet, "/v1/terminals", nil, nil, &ts) != nil || len(ts) != 1 {
			return false
		}
		last = ts[0].LastEvent
		t, value, _ := strings.Cut(last, " ")
		n, err := strconv.Atoi(t)
		return err == nil && n == typ && strings.HasPrefix(value, "closed") == closed
	})
	return last, err
}

package agent

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"termagent/store"
)

func TestTerminalConfigDefaults(t *testing.T) {
	c := Config{}.WithDefaults()
	for _, ck := range []struct {
		name      string
		got, want any
	}{
		{"PIN.Enter", c.PIN.Enter, PINKey('#')},
		{"PIN.Clear", c.PIN.Clear, PINKey('*')},
		{"PIN.MaxLength", c.PIN.MaxLength, 12},
		{"PIN.Timeout", c.PIN.Timeout, 10 * time.Second},
		{"PIN.LockoutAfter", c.PIN.LockoutAfter, 3},
		{"PIN.LockoutWindow", c.PIN.LockoutWindow, time.Minute},
		{"PIN.LockoutFor", c.PIN.LockoutFor, time.Minute},
		{"Verify.Mode", c.Verify.Mode, VerifyAny},
		{"Verify.PINTimeout", c.Verify.PINTimeout, 10 * time.Second},
		{"DoorWatch.HeldOpen", c.DoorWatch.HeldOpen, 30 * time.Second},
		{"DoorWatch.Grace", c.DoorWatch.Grace, time.Second},
		{"DoorWatch.RecordExit", c.DoorWatch.RecordExit, false},
		{"Feedback.Grant.Buzzer", fmt.Sprint(c.Feedback.Grant.Buzzer), "[150ms]"},
		{"Feedback.Grant.Green", fmt.Sprint(c.Feedback.Grant.Green), "[2s]"},
		{"Feedback.Grant.Red", fmt.Sprint(c.Feedback.Grant.Red), "[]"},
		{"Feedback.Deny.Buzzer", fmt.Sprint(c.Feedback.Deny.Buzzer), "[100ms 100ms 100ms 100ms 100ms]"},
		{"Feedback.Deny.Red", fmt.Sprint(c.Feedback.Deny.Red), "[2s]"},
		{"Feedback.Deny.Green", fmt.Sprint(c.Feedback.Deny.Green), "[]"},
		{"OpenDoorTypes.Key", c.Access.OpenDoorTypes.Key, 5},
		{"OpenDoorTypes.ExitButton", c.Access.OpenDoorTypes.ExitButton, 6},
		{"Events.PINLockout", c.Events.PINLockout, 8},
		{"Events.DoorHeldOpen", c.Events.DoorHeldOpen, 9},
		{"Events.DoorForced", c.Events.DoorForced, 10},
	} {
		if ck.got != ck.want {
			t.Errorf("%s = %v, want %v", ck.name, ck.got, ck.want)
		}
	}
}

func TestTerminalConfigInvalid(t *testing.T) {
	for _, c := range []struct {
		field string
		cfg   Config
	}{
		{"PIN.Enter", Config{PIN: PINConfig{Enter: '5'}}},
		{"PIN.Clear", Config{PIN: PINConfig{Clear: '#'}}},
		{"PIN.MaxLength", Config{PIN: PINConfig{MaxLength: 65}}},
		{"PIN.MaxLength", Config{PIN: PINConfig{MaxLength: -1}}},
		{"PIN.LockoutAfter", Config{PIN: PINConfig{LockoutAfter: -2}}},
		{"PIN.LockoutFor", Config{PIN: PINConfig{LockoutFor: -time.Second}}},
		{"Verify.Mode", Config{Verify: VerifyConfig{Mode: "card-or-pin"}}},
		{"DoorWatch.Grace", Config{DoorWatch: DoorWatchConfig{Grace: -time.Second}}},
		{"Feedback.Deny.Red", Config{Feedback: FeedbackConfig{Deny: FeedbackPatterns{Red: []time.Duration{time.Second, 0}}}}},
		{"Feedback.Grant.Buzzer", Config{Feedback: FeedbackConfig{Grant: FeedbackPatterns{Buzzer: make([]time.Duration, 33)}}}},
	} {
		err := c.cfg.Validate()
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), c.field) {
			t.Errorf("%s: %v, want ErrConfig naming it", c.field, err)
		}
	}
	// card+pin needs a card reader and a keypad.
	db, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "t.db"), store.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_, err = New(Config{Verify: VerifyConfig{Mode: VerifyCardPIN}}, Parts{Store: db})
	if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "keypad") {
		t.Errorf("card+pin without a keypad: %v", err)
	}
}

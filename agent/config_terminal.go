package agent

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// PINConfig tunes PIN entry on the keypad (Parts.Keypad). A PIN is the
// keys typed since the last clear, ended by Enter; it opens the door when
// it matches a person's key_number (open_door_type Access.OpenDoorTypes.Key).
// PINs and key presses are never logged, only counted.
type PINConfig struct {
	// Enter is the key that ends a PIN. Default '#'. hal.KeyEnter (the
	// Enter/OK key of keypads that have one) always ends a PIN too.
	Enter PINKey `yaml:"enter"`
	// Clear is the key that discards the keys typed so far. Default '*'.
	// hal.KeyEscape always clears too; hal.KeyBackspace removes one key.
	Clear PINKey `yaml:"clear"`
	// MaxLength is the longest PIN, in keys. A PIN typed longer is
	// refused, as a wrong one, when it is ended. Default 12; at most 64.
	MaxLength int `yaml:"max_length"`
	// Timeout discards the keys typed when no key follows for this long.
	// Default 10 s.
	Timeout time.Duration `yaml:"timeout"`
	// LockoutAfter wrong PINs within LockoutWindow lock the keypad for
	// LockoutFor: every PIN is refused unchecked meanwhile, and a "PIN
	// lockout" device event (Events.PINLockout) is sent. A right PIN does
	// not reset the count (one known PIN must not buy more guesses).
	// Default 3, window 60 s, lockout 60 s. Counted per terminal.
	LockoutAfter  int           `yaml:"lockout_after"`
	LockoutWindow time.Duration `yaml:"lockout_window"`
	LockoutFor    time.Duration `yaml:"lockout_for"`
}

// PINKey is a keypad key that ends or clears a PIN. In the configuration
// file it is written as the key itself: "#", "*", "A".."D".
type PINKey byte

// UnmarshalText reads one key.
func (k *PINKey) UnmarshalText(b []byte) error {
	if len(b) != 1 {
		return fmt.Errorf("%q is not one key (* # or A-D)", b)
	}
	*k = PINKey(b[0])
	return nil
}

// MarshalText writes the key.
func (k PINKey) MarshalText() ([]byte, error) { return []byte{byte(k)}, nil }

// Pattern is a feedback pattern: durations alternately on and off,
// starting with on (hal/feedback's Pattern). In the configuration file it
// is written "100ms,100ms,100ms".
type Pattern []time.Duration

// UnmarshalText reads durations separated by commas; "" is the nil
// Pattern (the default). The limits of the output driver are checked
// where the outputs are opened.
func (p *Pattern) UnmarshalText(b []byte) error {
	if strings.TrimSpace(string(b)) == "" {
		*p = nil
		return nil
	}
	var out Pattern
	for f := range strings.SplitSeq(string(b), ",") {
		d, err := time.ParseDuration(strings.TrimSpace(f))
		if err != nil {
			return fmt.Errorf("%q is not a duration (e.g. 200ms)", strings.TrimSpace(f))
		}
		if d <= 0 {
			return errors.New(strings.TrimSpace(f) + " is not positive")
		}
		out = append(out, d)
	}
	*p = out
	return nil
}

// MarshalText writes p as UnmarshalText reads it.
func (p Pattern) MarshalText() ([]byte, error) {
	parts := make([]string, len(p))
	for i, d := range p {
		parts[i] = d.String()
	}
	return []byte(strings.Join(parts, ",")), nil
}

// Verification modes (VerifyConfig.Mode).
const (
	// VerifyAny: each credential opens alone: card, face, fingerprint or
	// PIN. PINs must be unique among persons (download_person refuses a
	// key_number another person holds).
	VerifyAny = "any"
	// VerifyCardPIN: a card opens only when its holder's PIN follows on
	// the keypad within VerifyConfig.PINTimeout; a PIN alone opens
	// nothing. Face and fingerprint still open alone. PINs need not be
	// unique. The record has open_door_type Key and the card's number.
	VerifyCardPIN = "card+pin"
)

// VerifyConfig says which credentials open the door.
type VerifyConfig struct {
	// Mode is VerifyAny (default) or VerifyCardPIN.
	Mode string `yaml:"mode"`
	// PINTimeout is how long after a card its PIN may be typed in
	// card+pin mode. Default 10 s.
	PINTimeout time.Duration `yaml:"pin_timeout"`
}

// DoorWatchConfig supervises the door-position sensor (Parts.DoorInputs,
// or Parts.Door when it implements hal.DoorInputs). A door opened while
// no grant, exit button or remote open allows it is "forced"; a door that
// opened with one and stays open longer than HeldOpen is "held open". Each
// sends a device event and shows in Status until the door closes, which
// sends the same event type again with a value starting "closed".
type DoorWatchConfig struct {
	// HeldOpen is how long a door may stay open after an allowed
	// opening. Default 30 s; negative: never reported.
	HeldOpen time.Duration `yaml:"held_open"`
	// Grace is added to Access.DoorPulse: a door that opens up to
	// DoorPulse+Grace after the lock was released opened allowed (the
	// sensor's debounce and delivery). Default 1 s.
	Grace time.Duration `yaml:"grace"`
	// RecordExit records an opening by the exit button as an access with
	// open_door_type OpenDoorTypes.ExitButton, in_out_type 2 (out) and no
	// person. Default false: the button only opens.
	RecordExit bool `yaml:"record_exit"`
}

// FeedbackPatterns are the patterns played on each output for one
// result (Pattern; cmd/termagent also checks each against hal/feedback's
// limits). A nil pattern takes the default.
type FeedbackPatterns struct {
	Buzzer Pattern `yaml:"buzzer"`
	Green  Pattern `yaml:"green"`
	Red    Pattern `yaml:"red"`
}

// FeedbackConfig says how a grant and a refusal show (Parts.Buzzer,
// Parts.Green, Parts.Red, and Hook).
type FeedbackConfig struct {
	// Grant is played on a granted access (the exit button and remote
	// opens included). Default: buzzer 150 ms, green 2 s, red not lit.
	Grant FeedbackPatterns `yaml:"grant"`
	// Deny is played on a refusal and on a PIN lockout. Default: buzzer
	// three 100 ms beeps, red 2 s, green not lit.
	Deny FeedbackPatterns `yaml:"deny"`
	// Hook, when set, is run (directly, never through a shell; bounded by
	// Hooks.Timeout; in the background, one at a time, at most 16
	// waiting, more dropped and logged) after every decision with three
	// arguments: the result ("grant", "deny", "lockout" or "pin" when
	// card+pin mode waits for the PIN), the way in ("card", "face",
	// "fingerprint", "pin", "remote", "exit") and the person_id ("" when
	// unknown). Never a PIN.
	Hook string `yaml:"hook"`
}

// Limits of the terminal configuration.
const (
	maxPINLength = 64
	// maxPatternSteps is hal/feedback's MaxSteps; its other limits are
	// checked where patterns are parsed and by Play.
	maxPatternSteps = 32
)

// terminalDefaults fills the zero fields of the PIN, Verify, DoorWatch and
// Feedback sections with their documented defaults.
func (c *Config) terminalDefaults() {
	p := &c.PIN
	if p.Enter == 0 {
		p.Enter = '#'
	}
	if p.Clear == 0 {
		p.Clear = '*'
	}
	intDefault(&p.MaxLength, 12)
	durDefault(&p.Timeout, 10*time.Second)
	intDefault(&p.LockoutAfter, 3)
	durDefault(&p.LockoutWindow, time.Minute)
	durDefault(&p.LockoutFor, time.Minute)
	if c.Verify.Mode == "" {
		c.Verify.Mode = VerifyAny
	}
	durDefault(&c.Verify.PINTimeout, 10*time.Second)
	durDefault(&c.DoorWatch.HeldOpen, 30*time.Second)
	durDefault(&c.DoorWatch.Grace, time.Second)
	f := &c.Feedback
	patDefault(&f.Grant.Buzzer, 150*time.Millisecond)
	patDefault(&f.Grant.Green, 2*time.Second)
	patDefault(&f.Deny.Buzzer, 100*time.Millisecond, 100*time.Millisecond, 100*time.Millisecond, 100*time.Millisecond, 100*time.Millisecond)
	patDefault(&f.Deny.Red, 2*time.Second)
}

func patDefault(p *Pattern, steps ...time.Duration) {
	if len(*p) == 0 {
		*p = steps
	}
}

// validateTerminal reports, through bad, every invalid value of the PIN,
// Verify, DoorWatch and Feedback sections (after defaults).
func (c Config) validateTerminal(bad func(field, format string, args ...any)) {
	p := c.PIN
	for _, k := range []struct {
		name string
		key  PINKey
	}{{"PIN.Enter", p.Enter}, {"PIN.Clear", p.Clear}} {
		if !controlKey(k.key) {
			bad(k.name, "%q is not * # or A-D", k.key)
		}
	}
	if p.Enter == p.Clear {
		bad("PIN.Clear", "%q is also PIN.Enter", p.Clear)
	}
	if p.MaxLength < 1 || p.MaxLength > maxPINLength {
		bad("PIN.MaxLength", "%d is outside 1..%d", p.MaxLength, maxPINLength)
	}
	if p.Timeout < 0 {
		bad("PIN.Timeout", "%v is negative", p.Timeout)
	}
	if p.LockoutAfter < 1 {
		bad("PIN.LockoutAfter", "%d is below 1", p.LockoutAfter)
	}
	if p.LockoutWindow < 0 {
		bad("PIN.LockoutWindow", "%v is negative", p.LockoutWindow)
	}
	if p.LockoutFor < 0 {
		bad("PIN.LockoutFor", "%v is negative", p.LockoutFor)
	}
	switch c.Verify.Mode {
	case VerifyAny, VerifyCardPIN:
	default:
		bad("Verify.Mode", "%q is not %q or %q", c.Verify.Mode, VerifyAny, VerifyCardPIN)
	}
	if c.Verify.PINTimeout < 0 {
		bad("Verify.PINTimeout", "%v is negative", c.Verify.PINTimeout)
	}
	if c.DoorWatch.Grace < 0 {
		bad("DoorWatch.Grace", "%v is negative", c.DoorWatch.Grace)
	}
	for _, f := range []struct {
		name string
		p    []time.Duration
	}{{"Feedback.Grant.Buzzer", c.Feedback.Grant.Buzzer}, {"Feedback.Grant.Green", c.Feedback.Grant.Green},
		{"Feedback.Grant.Red", c.Feedback.Grant.Red}, {"Feedback.Deny.Buzzer", c.Feedback.Deny.Buzzer},
		{"Feedback.Deny.Green", c.Feedback.Deny.Green}, {"Feedback.Deny.Red", c.Feedback.Deny.Red}} {
		if len(f.p) > maxPatternSteps {
			bad(f.name, "%d steps, at most %d", len(f.p), maxPatternSteps)
			continue
		}
		for i, d := range f.p {
			if d <= 0 {
				bad(f.name, "step %d is %v, not positive", i+1, d)
				break
			}
		}
	}
}

// controlKey reports whether k may end or clear a PIN: a keypad key that
// is no digit.
func controlKey(k PINKey) bool {
	return k == '*' || k == '#' || k >= 'A' && k <= 'D'
}

// checkTerminalParts reports parts the terminal configuration needs but
// does not have.
func checkTerminalParts(cfg Config, parts Parts) error {
	if cfg.Verify.Mode == VerifyCardPIN && (parts.Keypad == nil || parts.Card == nil) {
		return fmt.Errorf("%w: Verify.Mode %q needs a card reader and a keypad", ErrConfig, VerifyCardPIN)
	}
	return nil
}

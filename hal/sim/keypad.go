package sim

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// KeypadConfig configures a simulated serial keypad. Zero values mean the
// documented defaults.
type KeypadConfig struct {
	// KeyEvery is the pause between two keys, as a person types; zero
	// means 150 ms.
	KeyEvery time.Duration
}

// maxKeys bounds the keys one Press may type.
const maxKeys = 64

// Keypad is a simulated serial keypad module speaking hal/keypad's
// "ascii" protocol: one byte per key press ('0'–'9', '*', '#', 'A'–'D',
// CR for Enter, ESC, BS). It ignores what the host sends. Safe for
// concurrent use.
type Keypad struct {
	cfg  KeypadConfig
	wire wire

	mu   sync.Mutex
	keys int
}

var _ Device = (*Keypad)(nil)

// NewKeypad returns a keypad.
func NewKeypad(cfg KeypadConfig) (*Keypad, error) {
	if cfg.KeyEvery == 0 {
		cfg.KeyEvery = 150 * time.Millisecond
	}
	if cfg.KeyEvery < 0 {
		return nil, fmt.Errorf("sim: keypad: negative key pause %v", cfg.KeyEvery)
	}
	return &Keypad{cfg: cfg}, nil
}

// Serve makes port the keypad's line until ctx is done. A keypad only
// talks.
func (k *Keypad) Serve(ctx context.Context, port io.ReadWriter) error {
	defer k.wire.attach(port)()
	<-ctx.Done()
	return ctx.Err()
}

// KeyBytes returns the bytes the keypad sends for keys: '0'–'9', '*', '#'
// and 'A'–'D' as themselves; the words "enter", "esc" and "bs" (alone) as
// CR, ESC and BS. It fails on anything else, naming it.
func KeyBytes(keys string) ([]byte, error) {
	switch strings.ToLower(keys) {
	case "enter":
		return []byte{'\r'}, nil
	case "esc":
		return []byte{0x1B}, nil
	case "bs", "backspace":
		return []byte{0x08}, nil
	}
	if keys == "" || len(keys) > maxKeys {
		return nil, fmt.Errorf("sim: keypad: want 1..%d keys", maxKeys)
	}
	b := []byte(strings.ToUpper(keys))
	for _, c := range b {
		if !(c >= '0' && c <= '9' || c == '*' || c == '#' || c >= 'A' && c <= 'D') {
			return nil, fmt.Errorf("sim: keypad: no key %q (keys are 0-9 * # A-D, or enter, esc, bs)", c)
		}
	}
	return b, nil
}

// Press types keys (see KeyBytes), one every KeyEvery, and returns when
// the last is sent, ctx is done or the keypad is unplugged (ErrUnplugged).
func (k *Keypad) Press(ctx context.Context, keys string) error {
	b, err := KeyBytes(keys)
	if err != nil {
		return err
	}
	for i, c := range b {
		if i > 0 {
			t := time.NewTimer(k.cfg.KeyEvery)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
		}
		if err := k.wire.write([]byte{c}); err != nil {
			return fmt.Errorf("sim: keypad: %w", err)
		}
		k.mu.Lock()
		k.keys++
		k.mu.Unlock()
	}
	return nil
}

// Keys returns how many keys were pressed.
func (k *Keypad) Keys() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.keys
}

// WriteRaw writes b to the host as is (line noise in tests).
func (k *Keypad) WriteRaw(b []byte) error {
	if err := k.wire.write(b); err != nil {
		return fmt.Errorf("sim: keypad: %w", err)
	}
	return nil
}

package sim

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync"
)

// RelayConfig configures a simulated LCUS relay board. Zero values mean the
// documented defaults.
type RelayConfig struct {
	// Channels is the number of relays on the board (LCUS-1/2/4/8); zero
	// means 1.
	Channels int
}

// RelayState is what the simulated board and the door behind it are doing.
type RelayState struct {
	// On is channel 1's relay: true while energised (lock released).
	On bool
	// Channels holds every channel's relay, channel 1 first.
	Channels []bool
	// Switches counts valid frames received since the board was made.
	Switches int
	// BadFrames counts frames dropped for a bad checksum, channel or
	// operation.
	BadFrames int
	// DoorOpen is the simulated door-position sensor (set by SetDoorOpen).
	DoorOpen bool
}

// Relay is a simulated LCUS USB relay board (CH340, 9600 8N1): it reads
// frames A0 <channel> <00|01> <sum> and switches the channel; it never
// answers. Like the real board, it loses power when unplugged: every relay
// drops out when Serve ends. It also models the door behind the lock, whose
// position sensor a test or termsim sets. Safe for concurrent use.
type Relay struct {
	channels int

	mu       sync.Mutex
	on       []bool
	switches int
	bad      int
	doorOpen bool
	changed  chan struct{} // closed and replaced on every change
}

var _ Device = (*Relay)(nil)

// NewRelay returns a relay board with every relay off.
func NewRelay(cfg RelayConfig) (*Relay, error) {
	if cfg.Channels == 0 {
		cfg.Channels = 1
	}
	if cfg.Channels < 1 || cfg.Channels > 8 {
		return nil, fmt.Errorf("sim: relay: %d channels, want 1..8", cfg.Channels)
	}
	return &Relay{channels: cfg.Channels, on: make([]bool, cfg.Channels), changed: make(chan struct{})}, nil
}

// Serve reads switch frames from port until ctx is done or port fails;
// then every relay drops out.
func (r *Relay) Serve(ctx context.Context, port io.ReadWriter) error {
	defer wakeOnDone(ctx, port)()
	defer r.powerOff()
	var buf [64]byte
	n := 0
	for {
		k, err := port.Read(buf[n:])
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("sim: relay: read: %w", err)
		}
		n += k
		for {
			ch, on, ok, adv := decodeLCUS(buf[:n])
			if adv == 0 {
				break
			}
			n = copy(buf[:], buf[adv:n])
			r.apply(ch, on, ok)
		}
		if n == len(buf) { // cannot happen: decodeLCUS needs 4 bytes at most
			n = 0
		}
	}
}

// decodeLCUS looks for one frame at the start of buf. It returns how many
// bytes to drop (0: need more) and, for a whole frame, its channel and
// operation; ok is false for a frame with a bad checksum or operation.
// Bytes before a start byte are dropped silently (adv > 0, ch 0).
func decodeLCUS(buf []byte) (ch byte, on bool, ok bool, adv int) {
	if i := bytes.IndexByte(buf, 0xA0); i != 0 {
		if i < 0 {
			return 0, false, false, len(buf)
		}
		return 0, false, false, i
	}
	if len(buf) < 4 {
		return 0, false, false, 0
	}
	if buf[0]+buf[1]+buf[2] != buf[3] || buf[2] > 1 || buf[1] == 0 {
		return buf[1], false, false, 1 // resynchronise one byte on
	}
	return buf[1], buf[2] == 1, true, 4
}

func (r *Relay) apply(ch byte, on, ok bool) {
	if !ok && ch == 0 {
		return // noise before a frame
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !ok || int(ch) > r.channels {
		r.bad++
	} else {
		r.on[ch-1] = on
		r.switches++
	}
	r.notifyLocked()
}

func (r *Relay) powerOff() {
	r.mu.Lock()
	defer r.mu.Unlock()
	clear(r.on)
	r.notifyLocked()
}

func (r *Relay) notifyLocked() {
	close(r.changed)
	r.changed = make(chan struct{})
}

// SetDoorOpen sets the simulated door-position sensor.
func (r *Relay) SetDoorOpen(open bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.doorOpen = open
	r.notifyLocked()
}

// State returns a snapshot of the board.
func (r *Relay) State() RelayState {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stateLocked()
}

func (r *Relay) stateLocked() RelayState {
	return RelayState{
		On: r.on[0], Channels: append([]bool(nil), r.on...),
		Switches: r.switches, BadFrames: r.bad, DoorOpen: r.doorOpen,
	}
}

// Wait blocks until cond holds for the board's state (checked now and on
// every change) or ctx is done, and returns the state it held for.
func (r *Relay) Wait(ctx context.Context, cond func(RelayState) bool) (RelayState, error) {
	for {
		r.mu.Lock()
		s, changed := r.stateLocked(), r.changed
		r.mu.Unlock()
		if cond(s) {
			return s, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return s, ctx.Err()
		}
	}
}

// Package hal is the terminal's hardware abstraction layer: the small
// interfaces the agent consumes, the events devices deliver, and the errors
// they return. Each device family lives in its own sub-package with a real
// driver that speaks the device's wire protocol (hal/card, hal/fingerprint,
// hal/face, hal/door, hal/keypad, hal/evdev, hal/wiegand, hal/feedback); hal/sim speaks the module side of the same protocols
// on pseudo-terminals so the real drivers run in tests.
//
// Import rule: hal and its sub-packages never import agent, store or
// protocol. Drivers return errors; they do not log unless handed a logger.
//
// Three helper packages serve the rest: hal/serialport, the one serial
// transport; hal/backoff, the one retry schedule (the agent's too); and
// hal/haltest, the helpers tests share across the module (imported only by
// _test.go files).
//
// Every device's Close is idempotent, returns the hardware to an inert state
// (relay released, reader idle) and wakes any goroutine blocked in a call.
// Methods that wait on a device take a context first and return ctx.Err()
// when it is done.
package hal

import (
	"context"
	"errors"
	"time"
)

// Errors shared by every driver. Drivers wrap them with the device and port
// they concern, e.g. fmt.Errorf("fingerprint %s: store slot 3: %w", port, ErrTimeout);
// callers test them with errors.Is.
var (
	// ErrClosed is returned by every method of a device after Close.
	ErrClosed = errors.New("hal: device closed")
	// ErrTimeout means the device did not answer within its deadline.
	ErrTimeout = errors.New("hal: device timed out")
	// ErrFault means the device is missing, unplugged or answered with an
	// error it cannot recover from by itself; the message names the port.
	ErrFault = errors.New("hal: device fault")
	// ErrUnsupported means the device or its firmware cannot do the
	// operation (e.g. a face module without photo enrolment).
	ErrUnsupported = errors.New("hal: operation not supported by device")
	// ErrFull means the module's storage has no free slot or user id.
	ErrFull = errors.New("hal: device storage full")
	// ErrRejected means the module refused the data it was given (a
	// template or photo it cannot use).
	ErrRejected = errors.New("hal: device rejected the data")
)

// Card is one card presentation.
type Card struct {
	// Number is the card number formatted for the server's card_number
	// field by the reader's configured formatter.
	Number string
	// Raw is the identifier as the reader sent it (UID bytes), before
	// formatting. Callers must not modify it.
	Raw []byte
	// At is when the frame's last bytes arrived at the driver (not when
	// ReadCard returned it).
	At time.Time
}

// CardReader delivers card numbers. Repeats a reader sends while a card
// stays in the field are suppressed by the driver, by when they arrived,
// however late they are read.
type CardReader interface {
	// ReadCard blocks until a card is presented, ctx is done or the reader
	// is closed (ErrClosed). Safe for one caller at a time.
	ReadCard(ctx context.Context) (Card, error)
	// Close stops the reader; idempotent; unblocks ReadCard.
	Close() error
}

// Key is one key press on a keypad.
type Key struct {
	// Char is the key: '0'–'9', '*', '#', 'A'–'D' (the function keys of
	// 16-key pads), KeyEnter, KeyEscape or KeyBackspace. What a key means
	// (ends a PIN, clears it) is the caller's decision.
	Char byte
	// At is when the key press reached the driver (the kernel's timestamp
	// where the device gives one).
	At time.Time
}

// Special keys (Key.Char values other than digits, '*', '#' and 'A'–'D').
const (
	KeyEnter     byte = '\n' // Enter / OK / ENT
	KeyEscape    byte = 0x1B // Esc / Cancel
	KeyBackspace byte = 0x08 // Backspace / Del
)

// Keypad delivers key presses, one at a time, in the order they were made.
// Drivers never log which keys were pressed (they are PINs), only counts.
type Keypad interface {
	// ReadKey blocks until a key is pressed, ctx is done or the keypad is
	// closed (ErrClosed). Safe for one caller at a time.
	ReadKey(ctx context.Context) (Key, error)
	// Close stops the keypad; idempotent; unblocks ReadKey.
	Close() error
}

// Finger is the result of one identification attempt on the fingerprint
// module: a finger was placed and either matched a stored slot or not.
type Finger struct {
	// Matched reports whether the finger matched a stored template.
	Matched bool
	// Slot is the matched template's slot; meaningful only when Matched.
	Slot int
	// Score is the module's match score (0 when not matched).
	Score int
	// At is when the driver got the module's answer.
	At time.Time
}

// FingerprintModule stores templates in numbered slots and identifies
// fingers against them. Implementations serialise commands on the one
// serial link, so all methods are safe for concurrent use; a Store or
// Delete issued while Identify waits for a finger is carried out between
// two polls.
type FingerprintModule interface {
	// Store writes template (opaque bytes, size decided by the module) to slot.
	Store(ctx context.Context, slot int, template []byte) error
	// Delete removes the template at slot; deleting an empty slot is no error.
	Delete(ctx context.Context, slot int) error
	// Clear removes every template.
	Clear(ctx context.Context) error
	// Slots lists the occupied slots in ascending order.
	Slots(ctx context.Context) ([]int, error)
	// Identify blocks until a finger is placed and returns the result.
	Identify(ctx context.Context) (Finger, error)
	// Close stops the module's driver; idempotent; unblocks Identify.
	Close() error
}

// Face is the result of one recognition attempt on the face module.
type Face struct {
	// Recognised reports whether the face belongs to an enrolled user.
	Recognised bool
	// UserID is the module's id of the recognised user; meaningful only
	// when Recognised.
	UserID int
	// At is when the driver got the module's answer.
	At time.Time
}

// FaceModule enrols users from photos and recognises faces. All methods are
// safe for concurrent use (commands are serialised on the serial link).
type FaceModule interface {
	// Enroll enrols a user from a photo (JPEG bytes as the server sent
	// them) and returns the id the module assigned. name is a display name
	// the module may store (truncated to what it holds). Returns an error
	// wrapping ErrUnsupported when the module cannot enrol from a photo.
	Enroll(ctx context.Context, name string, photo []byte) (userID int, err error)
	// Delete removes a user; deleting an unknown user is no error.
	Delete(ctx context.Context, userID int) error
	// Clear removes every user.
	Clear(ctx context.Context) error
	// Users lists the enrolled user ids in ascending order.
	Users(ctx context.Context) ([]int, error)
	// Recognize blocks until a face is seen and returns the result.
	Recognize(ctx context.Context) (Face, error)
	// Close stops the module's driver; idempotent; unblocks Recognize.
	Close() error
}

// DoorState is the state of the door relay and its inputs.
type DoorState struct {
	// Unlocked reports whether the lock is currently released.
	Unlocked bool
	// Open reports whether the door-position sensor says the door is open;
	// meaningful only when HasSensor.
	Open bool
	// HasSensor reports whether a door-position sensor is wired.
	HasSensor bool
}

// DoorInput is an edge on one of the door's inputs.
type DoorInput struct {
	// Kind says which input changed.
	Kind DoorInputKind
	// Active is the input's new state: door open, button pressed.
	Active bool
	// At is when the edge was seen.
	At time.Time
}

// DoorInputKind names a door input.
type DoorInputKind int

// Door inputs.
const (
	DoorSensor DoorInputKind = iota + 1 // door-position switch
	ExitButton                          // request-to-exit button
)

// String implements fmt.Stringer.
func (k DoorInputKind) String() string {
	switch k {
	case DoorSensor:
		return "door_sensor"
	case ExitButton:
		return "exit_button"
	}
	return "unknown"
}

// Door drives the lock relay.
type Door interface {
	// Unlock releases the lock for d and returns once the relay has
	// switched; the driver relocks by itself when d has passed. Unlocking
	// while unlocked extends the hold to d from now. It never blocks for d.
	Unlock(ctx context.Context, d time.Duration) error
	// State reports the relay and sensor state.
	State() DoorState
	// Close relocks (releases the relay), stops input watching; idempotent.
	Close() error
}

// DoorInputs is implemented by doors with wired inputs (sensor, exit button).
type DoorInputs interface {
	// NextInput blocks until an input changes, ctx is done or the door is
	// closed (ErrClosed).
	NextInput(ctx context.Context) (DoorInput, error)
}

// Health is a device's connection as its driver sees it.
type Health struct {
	// OK reports whether the device is connected (its port is open).
	OK bool
	// Err says why not, when OK is false; it wraps ErrFault and names the
	// port.
	Err error
	// Since is when OK last changed (or when the driver opened).
	Since time.Time
}

// HealthReporter is implemented by drivers that watch their device all the
// time, idle or not, so that a lost device is noticed within a few seconds
// and its return too. Every serial driver in hal implements it, the same
// way: the port's disappearance is seen by the driver's reader goroutine,
// which reopens it with backoff.
type HealthReporter interface {
	// Health returns the current health and a channel that is closed at
	// the next change. Safe for concurrent use.
	Health() (Health, <-chan struct{})
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"termagent/hal"
	"termagent/hal/fingerprint"
)

// retryOpen holds a device that may not have opened at start (unplugged,
// silent, still booting). Every use of a device that is not open yet tries
// to open it again, at most once per interval; until one attempt succeeds
// the use fails with an error wrapping hal.ErrFault, so the agent reports
// the module faulty, backs off and probes it like any failing module, and
// resynchronises it once it answers. After Close every use returns
// hal.ErrClosed. Safe for concurrent use.
type retryOpen[T io.Closer] struct {
	name     string
	openFn   func(context.Context) (T, error)
	interval time.Duration

	mu      sync.Mutex
	dev     T
	isOpen  bool
	opening bool
	closed  bool
	last    time.Time // of the last failed attempt
	lastErr error
}

func newRetryOpen[T io.Closer](name string, open func(context.Context) (T, error), interval time.Duration) *retryOpen[T] {
	return &retryOpen[T]{name: name, openFn: open, interval: interval}
}

// open makes one attempt now (at start) and returns its error.
func (r *retryOpen[T]) open(ctx context.Context) error {
	_, err := r.attempt(ctx, true)
	return err
}

// get returns the open device, or tries to open it (if the last attempt is
// older than the interval), or fails.
func (r *retryOpen[T]) get(ctx context.Context) (T, error) {
	return r.attempt(ctx, false)
}

func (r *retryOpen[T]) attempt(ctx context.Context, now bool) (T, error) {
	var zero T
	r.mu.Lock()
	switch {
	case r.closed:
		r.mu.Unlock()
		return zero, fmt.Errorf("%s: %w", r.name, hal.ErrClosed)
	case r.isOpen:
		dev := r.dev
		r.mu.Unlock()
		return dev, nil
	case r.opening:
		r.mu.Unlock()
		return zero, fmt.Errorf("%s is being opened: %w", r.name, hal.ErrFault)
	case !now && time.Since(r.last) < r.interval:
		err := r.lastErr
		r.mu.Unlock()
		return zero, fmt.Errorf("not open yet: %w", withFault(err))
	}
	r.opening = true
	r.mu.Unlock()

	dev, err := r.openFn(ctx) // without the lock: Close must not wait for a probe

	r.mu.Lock()
	defer r.mu.Unlock()
	r.opening = false
	if err != nil {
		r.last, r.lastErr = time.Now(), err
		return zero, withFault(err)
	}
	if r.closed {
		dev.Close()
		return zero, fmt.Errorf("%s: %w", r.name, hal.ErrClosed)
	}
	r.dev, r.isOpen = dev, true
	return dev, nil
}

// withFault makes sure an open failure reads as a device fault. Drivers'
// errors already name the device and port.
func withFault(err error) error {
	if isHalError(err) {
		return err
	}
	return fmt.Errorf("%w: %w", hal.ErrFault, err)
}

func isHalError(err error) bool {
	for _, e := range []error{hal.ErrFault, hal.ErrTimeout, hal.ErrClosed, hal.ErrUnsupported} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// peek returns the device if it is open, without trying to open it.
func (r *retryOpen[T]) peek() (T, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.dev, r.isOpen && !r.closed
}

// Close closes the device if it was opened; idempotent.
func (r *retryOpen[T]) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	if r.isOpen {
		return r.dev.Close()
	}
	return nil
}

// lazyCard is a card reader opened on demand.
type lazyCard struct {
	*retryOpen[hal.CardReader]
}

var _ hal.CardReader = (*lazyCard)(nil)

func newLazyCard[T hal.CardReader](open func(context.Context) (T, error), interval time.Duration) *lazyCard {
	return &lazyCard{newRetryOpen("card reader", func(ctx context.Context) (hal.CardReader, error) {
		return asIface[hal.CardReader](open(ctx))
	}, interval)}
}

func (l *lazyCard) ReadCard(ctx context.Context) (hal.Card, error) {
	r, err := l.get(ctx)
	if err != nil {
		return hal.Card{}, err
	}
	return r.ReadCard(ctx)
}

// lazyFinger is a fingerprint module opened on demand.
type lazyFinger struct {
	*retryOpen[hal.FingerprintModule]
}

var _ hal.FingerprintModule = (*lazyFinger)(nil)

func newLazyFinger[T hal.FingerprintModule](open func(context.Context) (T, error), interval time.Duration) *lazyFinger {
	return &lazyFinger{newRetryOpen("fingerprint module", func(ctx context.Context) (hal.FingerprintModule, error) {
		return asIface[hal.FingerprintModule](open(ctx))
	}, interval)}
}

// capacity is the module's slot count when it is open and reports one,
// else def.
func (l *lazyFinger) capacity(ctx context.Context, def int) int {
	if m, ok := l.peek(); ok {
		if r, ok := m.(*fingerprint.R30x); ok {
			if c, err := r.Capacity(ctx); err == nil && c > 0 {
				return c
			}
		}
	}
	return def
}

func (l *lazyFinger) Store(ctx context.Context, slot int, template []byte) error {
	m, err := l.get(ctx)
	if err != nil {
		return err
	}
	return m.Store(ctx, slot, template)
}

func (l *lazyFinger) Delete(ctx context.Context, slot int) error {
	m, err := l.get(ctx)
	if err != nil {
		return err
	}
	return m.Delete(ctx, slot)
}

func (l *lazyFinger) Clear(ctx context.Context) error {
	m, err := l.get(ctx)
	if err != nil {
		return err
	}
	return m.Clear(ctx)
}

func (l *lazyFinger) Slots(ctx context.Context) ([]int, error) {
	m, err := l.get(ctx)
	if err != nil {
		return nil, err
	}
	return m.Slots(ctx)
}

func (l *lazyFinger) Identify(ctx context.Context) (hal.Finger, error) {
	m, err := l.get(ctx)
	if err != nil {
		return hal.Finger{}, err
	}
	return m.Identify(ctx)
}

// lazyFace is a face module opened on demand.
type lazyFace struct {
	*retryOpen[hal.FaceModule]
}

var _ hal.FaceModule = (*lazyFace)(nil)

func newLazyFace[T hal.FaceModule](open func(context.Context) (T, error), interval time.Duration) *lazyFace {
	return &lazyFace{newRetryOpen("face module", func(ctx context.Context) (hal.FaceModule, error) {
		return asIface[hal.FaceModule](open(ctx))
	}, interval)}
}

func (l *lazyFace) Enroll(ctx context.Context, name string, photo []byte) (int, error) {
	m, err := l.get(ctx)
	if err != nil {
		return 0, err
	}
	return m.Enroll(ctx, name, photo)
}

func (l *lazyFace) Delete(ctx context.Context, userID int) error {
	m, err := l.get(ctx)
	if err != nil {
		return err
	}
	return m.Delete(ctx, userID)
}

func (l *lazyFace) Clear(ctx context.Context) error {
	m, err := l.get(ctx)
	if err != nil {
		return err
	}
	return m.Clear(ctx)
}

func (l *lazyFace) Users(ctx context.Context) ([]int, error) {
	m, err := l.get(ctx)
	if err != nil {
		return nil, err
	}
	return m.Users(ctx)
}

func (l *lazyFace) Recognize(ctx context.Context) (hal.Face, error) {
	m, err := l.get(ctx)
	if err != nil {
		return hal.Face{}, err
	}
	return m.Recognize(ctx)
}

// lazyDoor is a door relay opened on demand.
type lazyDoor struct {
	*retryOpen[hal.Door]
}

var _ hal.Door = (*lazyDoor)(nil)

func newLazyDoor(open func(context.Context) (hal.Door, error), interval time.Duration) *lazyDoor {
	return &lazyDoor{newRetryOpen("door", open, interval)}
}

func (l *lazyDoor) Unlock(ctx context.Context, d time.Duration) error {
	dr, err := l.get(ctx)
	if err != nil {
		return err
	}
	return dr.Unlock(ctx, d)
}

// State reports the door's state; a door not open yet reads locked.
func (l *lazyDoor) State() hal.DoorState {
	if dr, ok := l.peek(); ok {
		return dr.State()
	}
	return hal.DoorState{}
}

// lazyDoorInputs is a lazyDoor whose driver has inputs (gpio).
type lazyDoorInputs struct {
	*lazyDoor
}

var _ hal.DoorInputs = (*lazyDoorInputs)(nil)

// NextInput waits for the door to open (retrying every interval), then
// for its next input edge.
func (l *lazyDoorInputs) NextInput(ctx context.Context) (hal.DoorInput, error) {
	for {
		dr, err := l.get(ctx)
		if err == nil {
			in, ok := dr.(hal.DoorInputs)
			if !ok {
				<-ctx.Done() // a driver without inputs: nothing will ever come
				return hal.DoorInput{}, ctx.Err()
			}
			return in.NextInput(ctx)
		}
		if errors.Is(err, hal.ErrClosed) {
			return hal.DoorInput{}, err
		}
		t := time.NewTimer(l.interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return hal.DoorInput{}, ctx.Err()
		case <-t.C:
		}
	}
}

// asIface converts a concrete constructor result to the interface, keeping
// a nil interface on error (never a typed nil).
func asIface[I any, T any](dev T, err error) (I, error) {
	var zero I
	if err != nil {
		return zero, err
	}
	i, ok := any(dev).(I)
	if !ok {
		return zero, fmt.Errorf("%T does not implement %T", dev, (*I)(nil))
	}
	return i, nil
}

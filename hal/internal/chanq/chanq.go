// Package chanq holds the bounded hand-over the input drivers (evdev,
// wiegand) share between their read goroutine and their callers: a
// buffered channel that never blocks the reader and, when full, gives up
// its oldest item for the newest, and the blocking read on its other end.
//
// Import rule: like all of hal, it imports nothing of termagent outside hal.
package chanq

import (
	"context"
	"fmt"

	"termagent/hal"
)

// DropOldest queues v on ch without blocking; when ch is full it drops the
// oldest queued item first and reports true. It is for one sender (the
// driver's read goroutine); receivers may run concurrently.
func DropOldest[T any](ch chan T, v T) (dropped bool) {
	for {
		select {
		case ch <- v:
			return dropped
		default:
		}
		select {
		case <-ch:
			dropped = true
		default:
		}
	}
}

// Take receives the next item from ch for a driver's blocking read
// (ReadCard, ReadKey, NextInput): it returns ctx.Err() when ctx is done,
// and an error wrapping hal.ErrClosed, prefixed with what (the device and
// its port), once stop is closed, even if items are still queued.
func Take[T any](ctx context.Context, ch <-chan T, stop <-chan struct{}, what string) (T, error) {
	var zero T
	select {
	case <-stop:
		return zero, fmt.Errorf("%s: %w", what, hal.ErrClosed)
	default:
	}
	select {
	case v := <-ch:
		return v, nil
	case <-ctx.Done():
		return zero, ctx.Err()
	case <-stop:
		return zero, fmt.Errorf("%s: %w", what, hal.ErrClosed)
	}
}

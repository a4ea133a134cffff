// Package chanq holds the bounded hand-over the input drivers (evdev,
// wiegand) share between their read goroutine and their callers: a
// buffered channel that never blocks the reader and, when full, gives up
// its oldest item for the newest.
//
// Import rule: like all of hal, it imports nothing of termagent outside hal.
package chanq

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

package agent

import "sync"

// deviceEvent is one send_device_command the terminal sends on its own.
type deviceEvent struct {
	Type  int
	Value string
	seq   uint64 // set by the queue; tells this event from a later one
}

// eventQueue keeps device events while the link is down: bounded, oldest
// dropped when full, with a cap-1 wake channel. Safe for concurrent use.
type eventQueue struct {
	mu      sync.Mutex
	items   []deviceEvent
	max     int
	dropped int
	next    uint64
	wake    chan struct{}
}

func newEventQueue(max int) *eventQueue {
	return &eventQueue{max: max, wake: make(chan struct{}, 1)}
}

// push appends e, dropping the oldest event if the queue is full. It never
// blocks.
func (q *eventQueue) push(e deviceEvent) {
	q.mu.Lock()
	if len(q.items) >= q.max {
		q.items = q.items[1:]
		q.dropped++
	}
	q.next++
	e.seq = q.next
	q.items = append(q.items, e)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// peek returns the oldest event, if any.
func (q *eventQueue) peek() (deviceEvent, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) == 0 {
		return deviceEvent{}, false
	}
	return q.items[0], true
}

// pop removes e (after it was delivered) if it is still the oldest event;
// if push dropped it meanwhile to make room, the queue is left as it is, so
// a delivered event never takes an undelivered one with it.
func (q *eventQueue) pop(e deviceEvent) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) > 0 && q.items[0].seq == e.seq {
		q.items = q.items[1:]
	}
}

// sendEvent queues a device event for the server.
func (a *Agent) sendEvent(typ int, value string) {
	a.log.Info().Int("command_type", typ).Str("command_value", value).Msg("device event")
	a.events.push(deviceEvent{Type: typ, Value: value})
}

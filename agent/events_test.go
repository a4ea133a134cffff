package agent

import "testing"

// TestEventQueuePopAfterDrop covers the race between delivery and a full
// queue: the event being sent is dropped by push to make room, and its
// later pop must not remove the undelivered event that is now the oldest.
func TestEventQueuePopAfterDrop(t *testing.T) {
	q := newEventQueue(2)
	q.push(deviceEvent{Type: 1, Value: "a"})
	q.push(deviceEvent{Type: 1, Value: "b"})
	sending, ok := q.peek()
	if !ok || sending.Value != "a" {
		t.Fatalf("peek = %+v, %v; want a", sending, ok)
	}
	q.push(deviceEvent{Type: 1, Value: "c"}) // full: drops "a" while it is in flight
	q.pop(sending)
	var got []string
	for {
		e, ok := q.peek()
		if !ok {
			break
		}
		got = append(got, e.Value)
		q.pop(e)
	}
	if len(got) != 2 || got[0] != "b" || got[1] != "c" {
		t.Fatalf("left after delivering a: %v, want [b c]", got)
	}
	if q.dropped != 1 {
		t.Fatalf("dropped = %d, want 1", q.dropped)
	}
}

package chanq

import "testing"

func TestDropOldest(t *testing.T) {
	ch := make(chan int, 2)
	if DropOldest(ch, 1) || DropOldest(ch, 2) {
		t.Fatal("dropped while there was room")
	}
	if !DropOldest(ch, 3) {
		t.Fatal("a full queue took a third item without dropping")
	}
	if a, b := <-ch, <-ch; a != 2 || b != 3 {
		t.Fatalf("queue holds %d, %d; want the newest two, 2 and 3", a, b)
	}
}

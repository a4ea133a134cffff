package chanq

import (
	"context"
	"errors"
	"strings"
	"testing"

	"termagent/hal"
)

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

func TestTake(t *testing.T) {
	ch := make(chan int, 1)
	stop := make(chan struct{})
	ch <- 7
	if v, err := Take(context.Background(), ch, stop, "dev x"); v != 7 || err != nil {
		t.Fatalf("Take = %d, %v; want 7", v, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Take(ctx, ch, stop, "dev x"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Take on a done ctx: %v", err)
	}
	ch <- 8
	close(stop)
	_, err := Take(context.Background(), ch, stop, "dev x")
	if !errors.Is(err, hal.ErrClosed) || !strings.HasPrefix(err.Error(), "dev x: ") {
		t.Fatalf("Take after stop, with an item queued: %v; want dev x: ...ErrClosed", err)
	}
}

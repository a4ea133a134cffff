// Command fillqueue fills a termagent database's outbox with synthetic
// access records, so scripts/footprint.sh can measure the agent while it
// drains a full queue. It creates the database (with termagent's
// migrations) if it does not exist. Never point it at a terminal's real
// database: the records are fake.
//
//	go run ./scripts/fillqueue -db /tmp/fp/termagent.db -n 100000
//
// Import rule: like every command it only composes store and protocol.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"sync"
	"time"

	"termagent/protocol"
	"termagent/store"
)

func main() {
	path := flag.String("db", "", "termagent database `file` to fill (required)")
	n := flag.Int("n", 100000, "number of records to enqueue")
	workers := flag.Int("workers", 64, "concurrent Enqueue calls (the store commits them in groups)")
	flag.Parse()
	if err := run(context.Background(), *path, *n, *workers); err != nil {
		fmt.Fprintln(os.Stderr, "fillqueue:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, path string, n, workers int) error {
	if path == "" || n < 0 || workers < 1 {
		return errors.New("need -db, -n >= 0 and -workers >= 1")
	}
	// Capacity: at least n, so DropOldest never drops a record we add.
	db, err := store.Open(ctx, path, store.Config{OutboxCapacity: max(n, store.DefaultOutboxCapacity)})
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	defer db.Close()

	start := time.Now()
	next := make(chan int)
	errc := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := enqueue(ctx, db, i); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	var werr error
feed:
	for i := range n {
		select {
		case next <- i:
		case werr = <-errc:
			break feed
		}
	}
	close(next)
	wg.Wait()
	if werr == nil {
		select {
		case werr = <-errc:
		default:
		}
	}
	if werr != nil {
		return werr
	}
	st, err := db.OutboxStats(ctx)
	if err != nil {
		return fmt.Errorf("outbox stats: %w", err)
	}
	fmt.Printf("fillqueue: %d records enqueued in %s; outbox depth %d\n", n, time.Since(start).Round(time.Millisecond), st.Depth)
	return nil
}

// enqueue stores record i as the agent stores an access record: an
// upload_access_info message without session_id (the store assigns one).
func enqueue(ctx context.Context, db *store.DB, i int) error {
	m := protocol.NewRequest(protocol.ModUploadAccessInfo)
	m.AccessInfo = &protocol.AccessInfo{
		PersonID:     fmt.Sprintf("fp-%06d", i),
		Time:         protocol.FormatTime(time.Now(), time.Local),
		CardNumber:   fmt.Sprintf("%010d", i),
		OpenDoorType: 1,
		InOutType:    1,
	}
	body, err := protocol.Marshal(m)
	if err != nil {
		return fmt.Errorf("record %d: %w", i, err)
	}
	if _, err := db.Enqueue(ctx, store.Record{Body: body}); err != nil {
		return fmt.Errorf("enqueue record %d: %w", i, err)
	}
	return nil
}

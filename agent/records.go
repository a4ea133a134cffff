package agent

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"termagent/store"
)

// Access records reach the outbox through a small queue in memory, so that
// neither the door nor a reader's loop ever waits for the database, and a
// record the database cannot take right now (SQLite busy, a slow flash
// write, a transient disk error) is kept and retried instead of lost:
//
//   - grant and remoteOpen push the record (body and session_id fixed at
//     the access, so it keeps its access time) and return at once;
//   - runRecords, one goroutine, writes the oldest record to the outbox,
//     one at a time and in order; on a failure it keeps the record at the
//     head, marks the "database" module faulty (a device event), and
//     retries with backoff (Modules.RetryMin..RetryMax) until the store
//     takes it; the first success after a fault reports the recovery;
//   - the queue holds at most recordQueueCap records; when it is full the
//     oldest waiting record is dropped, logged as an error and counted
//     (Status.RecordsDropped): the only way a record is lost while the
//     agent runs;
//   - when Run ends, flushRecords makes a last attempt, bounded by
//     flushTimeout, and logs how many records could not be stored.
//
// Each record carries its own session_id from the start. An attempt that
// times out may still have been committed (store.DB.Enqueue says so); its
// retry then stores a second row with the same session_id, which the server
// recognises as a resend: a duplicate, never a loss.

// recordQueueCap is how many access records are kept in memory while the
// database does not take them (a record is well under 1 KiB: at most about
// 1 MiB in all).
const recordQueueCap = 1024

// flushTimeout bounds the last attempt to store pending records when Run
// ends.
const flushTimeout = 5 * time.Second

// moduleDatabase is the module name under which failures to store access
// records are reported (Status.Modules, device events).
const moduleDatabase = "database"

// pendingRecord is an access record not yet in the outbox.
type pendingRecord struct {
	rec    store.Record // SessionID and Body, fixed at the access
	person string       // person_id, for logs
	at     time.Time    // access time, for logs
}

// recordQueue is a bounded FIFO of pending records with a cap-1 wake
// channel. The writer reads the oldest record with front, which marks it
// busy, and removes it with done once it is stored; a busy record is never
// the one dropped. Safe for concurrent use.
type recordQueue struct {
	mu      sync.Mutex
	items   []pendingRecord
	max     int  // ≥ 2
	busy    bool // items[0] is being written
	dropped atomic.Int64
	wake    chan struct{}
}

// newRecordQueue returns a queue of at most n records (at least 2).
func newRecordQueue(n int) *recordQueue {
	return &recordQueue{max: max(n, 2), wake: make(chan struct{}, 1)}
}

// push appends r. When the queue is full it first removes the oldest record
// that is not busy and returns it with true: the caller reports the loss.
// It never blocks.
func (q *recordQueue) push(r pendingRecord) (pendingRecord, bool) {
	var lost pendingRecord
	dropped := false
	q.mu.Lock()
	if len(q.items) >= q.max {
		i := 0
		if q.busy {
			i = 1
		}
		lost, dropped = q.items[i], true
		copy(q.items[i:], q.items[i+1:])
		q.items[len(q.items)-1] = pendingRecord{}
		q.items = q.items[:len(q.items)-1]
		q.dropped.Add(1)
	}
	q.items = append(q.items, r)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return lost, dropped
}

// front returns the oldest record and marks it busy; false if the queue is
// empty.
func (q *recordQueue) front() (pendingRecord, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) == 0 {
		return pendingRecord{}, false
	}
	q.busy = true
	return q.items[0], true
}

// done removes the busy oldest record (it was stored, or refused for good).
func (q *recordQueue) done() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.busy && len(q.items) > 0 {
		q.items[0] = pendingRecord{}
		q.items = q.items[1:]
	}
	q.busy = false
}

// len is the number of records in the queue, the busy one included.
func (q *recordQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}

// pushRecord queues r for the outbox without waiting; a record dropped to
// make room is logged as an error.
func (a *Agent) pushRecord(r pendingRecord) {
	lost, dropped := a.records.push(r)
	if dropped {
		a.log.Error().Str(logPerson, lost.person).Time("access_time", lost.at).Str(logSession, lost.rec.SessionID).
			Int64("records_dropped", a.records.dropped.Load()).
			Msg("access record LOST: the database has not taken records for a while and the memory queue is full")
	}
}

// runRecords writes pending records to the outbox, oldest first, until ctx
// is done (records still pending are left to flushRecords).
func (a *Agent) runRecords(ctx context.Context) {
	b := Backoff{Min: a.cfg.Modules.RetryMin, Max: a.cfg.Modules.RetryMax}
	attempt := 0
	for ctx.Err() == nil {
		ok, err := a.storeNext(context.WithoutCancel(ctx), enqueueTimeout)
		switch {
		case err != nil:
			a.log.Warn().Err(err).Int(logAttempt, attempt).Int("records_pending", a.records.len()).
				Msg("access record not stored yet; kept in memory and retried")
			if !sleepCtx(ctx, b.Delay(attempt)) {
				return
			}
			attempt++
		case ok:
			attempt = 0
		default:
			select {
			case <-ctx.Done():
			case <-a.records.wake:
			}
		}
	}
}

// storeNext writes the oldest pending record to the outbox, the attempt
// bounded by timeout. It reports false if there was none, and an error if
// the record stays pending (to be retried).
func (a *Agent) storeNext(ctx context.Context, timeout time.Duration) (bool, error) {
	r, ok := a.records.front()
	if !ok {
		return false, nil
	}
	ectx, cancel := context.WithTimeout(ctx, timeout)
	_, err := a.parts.Store.Enqueue(ectx, r.rec)
	cancel()
	switch {
	case err == nil:
		a.records.done()
		a.moduleOK(moduleDatabase)
		sctx, cancel := context.WithTimeout(ctx, timeout)
		a.checkOutboxFill(sctx)
		cancel()
		return true, nil
	case errors.Is(err, store.ErrInvalid):
		// The store will never take this record: retrying would hold up
		// every record behind it.
		a.records.done()
		a.records.dropped.Add(1)
		a.log.Error().Err(err).Str(logPerson, r.person).Time("access_time", r.at).Msg("access record LOST: refused by the store")
		return true, nil
	default:
		a.moduleError(moduleDatabase, err)
		return true, err
	}
}

// flushRecords makes the last attempt to store the pending records when Run
// ends (after every loop that could add one has stopped), retrying with
// backoff until flushTimeout, and logs how many could not be stored.
func (a *Agent) flushRecords(ctx context.Context) {
	n := a.records.len()
	if n == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.flushTimeout)
	defer cancel()
	b := Backoff{Min: a.cfg.Modules.RetryMin, Max: a.cfg.Modules.RetryMax}
	attempt := 0
	for ctx.Err() == nil {
		ok, err := a.storeNext(ctx, a.flushTimeout)
		if !ok {
			a.log.Info().Int("records", n).Msg("pending access records stored at shutdown")
			return
		}
		if err == nil {
			attempt = 0
			continue
		}
		if !sleepCtx(ctx, b.Delay(attempt)) {
			break
		}
		attempt++
	}
	a.log.Error().Int("records_not_stored", a.records.len()).Dur("tried_for", a.flushTimeout).
		Msg("shutdown: access records NOT stored (the last one tried may have been)")
}

package agent

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"termagent/hal/backoff"
	"termagent/store"
)

// A record is evidence that the door opened (protocol/PROTOCOL.md §5 "upload_access_info"): it is
// on disk before the relay clicks, and there is none for a door that did
// not open. openWithRecord (access.go) does, for every granted access:
//
//  1. commit the record to the outbox with a hold (store.DB.EnqueueHeld,
//     hold recordHold: longer than the door command and the withdrawal
//     below can take), waiting at most Access.RecordTimeout. The hold keeps
//     the uploader from sending it before the door was driven;
//  2. drive the relay, waiting at most Access.DoorTimeout;
//  3. if the relay switched, Release the record (due now, the uploader is
//     woken); the door does not wait for that write. If the relay failed,
//     delete the record (Ack) and send the "door fault" device event
//     (Events.DoorFault) naming the person: no record, and the module
//     state "door" turns fault.
//
// A power cut between 1 and 3 leaves a held record that becomes due when
// its hold passes: the evidence of a grant decision is kept, even though
// whether the relay clicked is unknown. A commit that timed out may still
// land later; if its door then failed, that record is sent after its hold.
//
// When the store fails — the commit does not finish within
// Access.RecordTimeout or returns an error — the door opens anyway (a known
// person is not locked out by a disk), the "database" module turns fault
// (a device event) and the record waits in the memory queue below, counted
// in Status.RecordsPending. While that fault lasts and records wait, later
// grants skip step 1 and queue behind them, so the door does not wait on a
// store known to fail. Denied attempts (Access.RecordDenied) and accesses
// on a terminal without a relay open nothing and go through the queue.
//
// The memory queue keeps records the database cannot take right now
// (SQLite busy, a slow flash write, a full disk) instead of losing them:
//
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
// ends. It fits inside a daemon's shutdown budget (cmd/termagent gives Run
// 3 s before it closes the devices, 5 s in all), so a store that keeps
// failing cannot turn a SIGTERM into a failed stop.
const flushTimeout = 2 * time.Second

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

// recordHold is how long a record committed before its door opens stays
// unsent unless released: the door command and the withdrawal of the
// record (one write) must fit in it.
func (a *Agent) recordHold() time.Duration {
	return a.cfg.Access.DoorTimeout + enqueueTimeout + time.Second
}

// storeHeld commits r to the outbox, held (step 1 above), within
// Access.RecordTimeout. It reports false when the store failed (the fault
// is raised and logged): the caller then keeps r in memory once the door
// has opened.
func (a *Agent) storeHeld(ctx context.Context, r pendingRecord) (store.Record, bool) {
	if a.records.len() > 0 && a.moduleState(moduleDatabase) == ModuleFault {
		return store.Record{}, false // queue behind the records the store has not taken
	}
	ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.Access.RecordTimeout)
	held, err := a.parts.Store.EnqueueHeld(ectx, r.rec, a.recordHold())
	cancel()
	if err != nil {
		a.log.Error().Err(err).Str(logPerson, r.person).Dur("waited_at_most", a.cfg.Access.RecordTimeout).
			Msg("access record not committed: the door opens anyway, the record is kept in memory")
		a.moduleError(moduleDatabase, err)
		return store.Record{}, false
	}
	if a.records.len() == 0 {
		a.moduleOK(moduleDatabase)
	}
	return held, true
}

// withdrawRecord deletes a held record whose door could not be opened.
func (a *Agent) withdrawRecord(ctx context.Context, held store.Record) {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), enqueueTimeout)
	err := a.parts.Store.Ack(wctx, held.ID)
	cancel()
	if err != nil {
		a.log.Error().Err(err).Int64(logRecord, held.ID).
			Msg("withdraw the record of a door that did not open: it will be sent when its hold passes")
	}
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
	b := backoff.Policy{Min: a.cfg.Modules.RetryMin, Max: a.cfg.Modules.RetryMax}
	attempt := 0
	for ctx.Err() == nil {
		ok, err := a.storeNext(context.WithoutCancel(ctx), enqueueTimeout)
		switch {
		case err != nil:
			a.log.Warn().Err(err).Int(logAttempt, attempt).Int("records_pending", a.records.len()).
				Msg("access record not stored yet; kept in memory and retried")
			if !backoff.Sleep(ctx, b.Delay(attempt)) {
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
	b := backoff.Policy{Min: a.cfg.Modules.RetryMin, Max: a.cfg.Modules.RetryMax}
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
		if !backoff.Sleep(ctx, b.Delay(attempt)) {
			break
		}
		attempt++
	}
	a.log.Error().Int("records_not_stored", a.records.len()).Dur("tried_for", a.flushTimeout).
		Msg("shutdown: access records NOT stored (the last one tried may have been)")
}

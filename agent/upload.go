package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"termagent/hal/backoff"
	"termagent/protocol"
	"termagent/store"
)

// uploadResult is the outcome of one upload_access_info call.
type uploadResult struct {
	rec store.Record
	err error
}

// runUploader drains the outbox over peer while the session lasts:
// oldest first, up to Upload.Window calls in flight, each record with its
// stable session_id. A record is acknowledged (removed) only on code 0 for
// its session_id; a non-zero code Nacks it (retried later with backoff,
// quarantined by the store after MaxAttempts); a transport error leaves it
// queued and pauses the drain. It sleeps on the outbox's Wake channel (and
// the next retry time), never polls.
//
// Acks are written by a separate goroutine that batches every id ready at
// once into one transaction, so the fsync of one ack overlaps the next
// calls; a record stays out of the next Peek until its ack is committed.
// An ack that cannot be written (the disk is full, the store read-only)
// pauses the drain like a transport error: the records stay and are sent
// again later with their session_ids, never in a loop. While the store is
// read-only nothing is sent (nothing could be acknowledged).
//
// Quarantined records (refused store.Config.MaxAttempts times) get one
// more try when the session starts (the server may have been at fault) and
// every Upload.QuarantineRetry; a record that becomes quarantined sends a
// RecordsQuarantined event.
func (a *Agent) runUploader(ctx context.Context, peer *protocol.Peer) {
	u := newUploader(a, peer)
	u.retryQuarantined(ctx)
	go u.runAcker(ctx)
	defer u.stop(ctx)
	u.run(ctx)
}

// uploader is the state of one session's drain (runUploader). Its fields
// belong to the goroutine of run, except those the acker goroutine shares:
// toAck, acked and ackerDone, which are set once in newUploader.
type uploader struct {
	a        *Agent
	peer     *protocol.Peer
	ob       Store
	log      zerolog.Logger
	window   int            // calls in flight at most
	prefetch int            // records one Peek fetches beyond those in flight or being acked
	retry    backoff.Policy // pauses after failures and the next try of refused records

	inflight map[int64]bool    // calls in progress
	acking   map[int64]bool    // acknowledged, ack not yet committed
	results  chan uploadResult // outcomes of the calls; buffered to the window
	queue    []store.Record    // peeked but not yet sent, oldest first

	pause        int       // consecutive failures (transport, peek, ack)
	pauseUntil   time.Time // nothing is sent before it
	quarantineAt time.Time // next retry of the quarantined records; zero: none

	// The acker: ids in, committed batches out. pending holds the ids
	// acknowledged while the acker is busy, so run never blocks on toAck.
	toAck     chan []int64
	acked     chan ackResult
	ackerDone chan struct{}
	pending   []int64
	ackBusy   bool
}

func newUploader(a *Agent, peer *protocol.Peer) *uploader {
	window := a.cfg.Upload.Window
	return &uploader{
		a:         a,
		peer:      peer,
		ob:        a.parts.Store,
		log:       a.cfg.Logger.With().Str(logComponent, "uploader").Logger(),
		window:    window,
		prefetch:  max(4*window, 64),
		retry:     backoff.Policy{Min: a.cfg.Upload.RetryMin, Max: a.cfg.Upload.RetryMax},
		inflight:  make(map[int64]bool, window),
		acking:    make(map[int64]bool, window),
		results:   make(chan uploadResult, window),
		toAck:     make(chan []int64),
		acked:     make(chan ackResult, 1),
		ackerDone: make(chan struct{}),
	}
}

// run launches calls and handles their outcomes until ctx is done.
func (u *uploader) run(ctx context.Context) {
	now := u.a.cfg.Now
	for {
		u.startAck()
		if !u.quarantineAt.IsZero() && !now().Before(u.quarantineAt) {
			u.retryQuarantined(ctx)
		}
		if !u.a.writable() && !now().Before(u.pauseUntil) {
			// Nothing sent could be acknowledged: look again soon (the
			// store signals Wake when it becomes writable).
			u.pauseUntil = now().Add(u.a.cfg.Modules.RetryMin)
			u.queue = nil
		}
		var nextDue time.Time
		if !now().Before(u.pauseUntil) && len(u.inflight) < u.window {
			// Launch what the window allows, from a prefetched batch: one
			// Peek serves many launches (a Peek re-reads the records still
			// in flight or being acked, so it is not cheap).
			if len(u.queue) == 0 && !u.fill(ctx) {
				return
			}
			for len(u.queue) > 0 && len(u.inflight) < u.window {
				rec := u.queue[0]
				u.queue = u.queue[1:]
				u.inflight[rec.ID] = true
				go u.a.upload(ctx, u.peer, rec, u.results)
			}
			if len(u.inflight) == 0 && len(u.acking) == 0 {
				if st, err := u.ob.OutboxStats(ctx); err == nil {
					nextDue = st.NextDue
				}
			}
		}
		if !u.wait(ctx, nextDue) {
			return
		}
	}
}

// fill peeks the oldest records that are neither in flight nor being
// acked into the queue. A failed Peek pauses the drain; fill reports false
// only when ctx is done.
func (u *uploader) fill(ctx context.Context) bool {
	recs, err := u.ob.Peek(ctx, u.prefetch+len(u.inflight)+len(u.acking))
	if err != nil {
		if ctx.Err() != nil {
			return false
		}
		u.log.Error().Err(err).Msg("peek outbox")
		u.pauseAfterFailure()
	}
	for _, rec := range recs {
		if !u.inflight[rec.ID] && !u.acking[rec.ID] {
			u.queue = append(u.queue, rec)
		}
	}
	return true
}

// wait sleeps until there is something to do: a call's outcome, a
// committed ack batch, a new record (Wake), the end of a pause, nextDue
// (the next refused record's retry time) or the next quarantine retry. It
// handles the outcome it woke for and reports false when ctx is done.
func (u *uploader) wait(ctx context.Context, nextDue time.Time) bool {
	now := u.a.cfg.Now()
	paused := now.Before(u.pauseUntil)
	wakeAt := nextDue
	if paused {
		wakeAt = u.pauseUntil
	}
	if !u.quarantineAt.IsZero() && (wakeAt.IsZero() || u.quarantineAt.Before(wakeAt)) {
		wakeAt = u.quarantineAt
	}
	var timer <-chan time.Time
	if !wakeAt.IsZero() {
		t := time.NewTimer(max(wakeAt.Sub(now), time.Millisecond))
		defer t.Stop()
		timer = t.C
	}
	wake := u.ob.Wake()
	if len(u.inflight) >= u.window || len(u.queue) > 0 || paused {
		wake = nil // nothing new can start before a result or the pause ends
	}
	select {
	case <-ctx.Done():
		return false
	case r := <-u.results:
		u.finish(ctx, r)
		for more := true; more; {
			select {
			case r := <-u.results:
				u.finish(ctx, r)
			default:
				more = false
			}
		}
	case r := <-u.acked:
		u.ackedBatch(ctx, r)
	case <-wake:
	case <-timer:
	}
	return true
}

// finish handles the outcome of one call: an ack to commit, a refusal to
// Nack, or a transport failure that pauses the drain.
func (u *uploader) finish(ctx context.Context, r uploadResult) {
	delete(u.inflight, r.rec.ID)
	var re *protocol.RemoteError
	switch {
	case r.err == nil:
		u.acking[r.rec.ID] = true
		u.pending = append(u.pending, r.rec.ID)
		u.pause = 0
	case errors.As(r.err, &re):
		u.pause = 0
		u.refused(ctx, r.rec, re)
	default:
		if ctx.Err() == nil {
			d := u.pauseAfterFailure()
			u.log.Warn().Err(r.err).Int64(logRecord, r.rec.ID).Dur(logDelay, d).Msg("upload failed; pausing")
		}
	}
}

// refused Nacks a record the server refused, and reports it when the store
// quarantines it.
func (u *uploader) refused(ctx context.Context, rec store.Record, re *protocol.RemoteError) {
	next := u.a.cfg.Now().Add(u.retry.Delay(rec.Attempts))
	q, err := u.ob.Nack(context.WithoutCancel(ctx), rec.ID, next, re.Error())
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		u.log.Error().Err(err).Int64(logRecord, rec.ID).Msg("nack")
	}
	u.log.Warn().Int64(logRecord, rec.ID).Str(logSession, rec.SessionID).Int("code", re.Code).
		Str("message", re.Message).Bool("quarantined", q).Msg("server refused a record")
	if !q {
		return
	}
	n := 0
	if st, err := u.ob.OutboxStats(context.WithoutCancel(ctx)); err == nil {
		n = st.Quarantined
	}
	u.a.sendEvent(u.a.cfg.Events.RecordsQuarantined, fmt.Sprintf(
		"record %s quarantined after %d refusals (code %d: %s); %d quarantined",
		rec.SessionID, rec.Attempts+1, re.Code, re.Message, n))
}

// pauseAfterFailure pauses the drain for the next backoff delay and
// returns it.
func (u *uploader) pauseAfterFailure() time.Duration {
	d := u.retry.Delay(u.pause)
	u.pause++
	u.pauseUntil = u.a.cfg.Now().Add(d)
	return d
}

// retryQuarantined gives the quarantined records one more try (when the
// store is writable) and schedules the next time.
func (u *uploader) retryQuarantined(ctx context.Context) {
	u.quarantineAt = time.Time{}
	qr, ok := u.ob.(quarantineRetrier)
	if !ok || !u.a.writable() {
		return
	}
	if n, err := qr.RetryQuarantined(context.WithoutCancel(ctx)); err != nil {
		u.log.Error().Err(err).Msg("retry quarantined records")
	} else if n > 0 {
		u.log.Info().Int("records", n).Msg("quarantined records get one more try")
	}
	if d := u.a.cfg.Upload.QuarantineRetry; d > 0 {
		u.quarantineAt = u.a.cfg.Now().Add(d)
	}
}

// runAcker commits the batches of ids sent on toAck, one transaction each,
// and reports each on acked, until toAck is closed.
func (u *uploader) runAcker(ctx context.Context) {
	defer close(u.ackerDone)
	for ids := range u.toAck {
		err := u.ob.Ack(context.WithoutCancel(ctx), ids...)
		if err != nil {
			// Not acked: the records stay and are sent again with the
			// same session_id; the server drops duplicates.
			u.log.Error().Err(err).Int("records", len(ids)).Msg("ack")
		} else {
			u.a.uploaded.Add(int64(len(ids)))
		}
		u.acked <- ackResult{ids, err}
	}
}

// startAck hands the pending ids to the acker when it is idle.
func (u *uploader) startAck() {
	if u.ackBusy || len(u.pending) == 0 {
		return
	}
	u.ackBusy = true
	u.toAck <- u.pending
	u.pending = nil
}

// ackedBatch handles a batch the acker finished: its records leave acking;
// a failed commit pauses the drain.
func (u *uploader) ackedBatch(ctx context.Context, r ackResult) {
	u.ackBusy = false
	for _, id := range r.ids {
		delete(u.acking, id)
	}
	if r.err != nil && ctx.Err() == nil {
		d := u.pauseAfterFailure()
		u.queue = nil // peek again after the pause
		u.log.Warn().Dur(logDelay, d).Msg("acks not stored; pausing the upload")
	}
}

// stop waits for the calls in flight, commits their acks and ends the
// acker.
func (u *uploader) stop(ctx context.Context) {
	for len(u.inflight) > 0 {
		u.finish(ctx, <-u.results)
	}
	for u.ackBusy || len(u.pending) > 0 {
		u.startAck()
		u.ackedBatch(ctx, <-u.acked)
	}
	close(u.toAck)
	<-u.ackerDone
}

// ackResult is the outcome of one Ack of the acker.
type ackResult struct {
	ids []int64
	err error
}

// upload sends one record and reports the outcome on results (buffered to
// the window, so it never blocks).
func (a *Agent) upload(ctx context.Context, peer *protocol.Peer, rec store.Record, results chan<- uploadResult) {
	req, err := protocol.Decode(rec.Body)
	if err == nil && req.AccessInfo == nil {
		err = errors.New("record body has no access_info")
	}
	if err != nil {
		// A body this program cannot read will never be accepted: let the
		// store count it towards quarantine like a refusal.
		results <- uploadResult{rec: rec, err: protocol.Errorf(protocol.CodeError, "unreadable record: %v", err)}
		return
	}
	req.Mod, req.Type, req.SessionID, req.HasCode = protocol.ModUploadAccessInfo, protocol.TypeRequest, rec.SessionID, false
	_, err = peer.Call(ctx, req)
	results <- uploadResult{rec: rec, err: err}
}

// runEvents sends the queued device events over peer as
// send_device_command while the session lasts. An event the server refuses
// is dropped (logged); a transport error ends the loop (the session ends).
func (a *Agent) runEvents(ctx context.Context, peer *protocol.Peer) {
	for {
		ev, ok := a.events.peek()
		if !ok {
			select {
			case <-ctx.Done():
				return
			case <-a.events.wake:
				continue
			}
		}
		req := protocol.NewRequest(protocol.ModSendDeviceCommand)
		req.CommandType, req.CommandValue = ev.Type, ev.Value
		_, err := peer.Call(ctx, req)
		var re *protocol.RemoteError
		switch {
		case err == nil:
			a.events.pop(ev)
		case errors.As(err, &re):
			a.log.Warn().Err(err).Int("command_type", ev.Type).Msg("server refused a device event; dropped")
			a.events.pop(ev)
		default:
			if ctx.Err() == nil {
				a.log.Warn().Err(err).Msg("device event not delivered; kept for the next link")
			}
			return
		}
	}
}

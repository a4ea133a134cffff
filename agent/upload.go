package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

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
	log := a.cfg.Logger.With().Str(logComponent, "uploader").Logger()
	ob := a.parts.Store
	window := a.cfg.Upload.Window
	retry := backoff.Policy{Min: a.cfg.Upload.RetryMin, Max: a.cfg.Upload.RetryMax}
	inflight := make(map[int64]bool, window) // calls in progress
	acking := make(map[int64]bool, window)   // acknowledged, ack not yet committed
	results := make(chan uploadResult, window)
	pause := 0 // consecutive transport errors
	var pauseUntil time.Time
	// queue holds records peeked but not yet sent, oldest first.
	prefetch := max(4*window, 64)
	var queue []store.Record
	var quarantineAt time.Time // next retry of the quarantined records
	retryQuarantined := func() {
		quarantineAt = time.Time{}
		qr, ok := ob.(quarantineRetrier)
		if !ok || !a.writable() {
			return
		}
		if n, err := qr.RetryQuarantined(context.WithoutCancel(ctx)); err != nil {
			log.Error().Err(err).Msg("retry quarantined records")
		} else if n > 0 {
			log.Info().Int("records", n).Msg("quarantined records get one more try")
		}
		if d := a.cfg.Upload.QuarantineRetry; d > 0 {
			quarantineAt = a.cfg.Now().Add(d)
		}
	}
	retryQuarantined()

	// The acker: ids in, committed batches out. toAck is unbounded on the
	// sender side (pending) so the loop never blocks on it.
	toAck := make(chan []int64)
	acked := make(chan ackResult, 1)
	var pending []int64
	ackerDone := make(chan struct{})
	go func() {
		defer close(ackerDone)
		for ids := range toAck {
			err := ob.Ack(context.WithoutCancel(ctx), ids...)
			if err != nil {
				// Not acked: the records stay and are sent again with the
				// same session_id; the server drops duplicates.
				log.Error().Err(err).Int("records", len(ids)).Msg("ack")
			} else {
				a.uploaded.Add(int64(len(ids)))
			}
			acked <- ackResult{ids, err}
		}
	}()
	ackBusy := false

	finish := func(r uploadResult) {
		delete(inflight, r.rec.ID)
		var re *protocol.RemoteError
		switch {
		case r.err == nil:
			acking[r.rec.ID] = true
			pending = append(pending, r.rec.ID)
			pause = 0
		case errors.As(r.err, &re):
			pause = 0
			next := a.cfg.Now().Add(retry.Delay(r.rec.Attempts))
			q, err := ob.Nack(context.WithoutCancel(ctx), r.rec.ID, next, re.Error())
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				log.Error().Err(err).Int64(logRecord, r.rec.ID).Msg("nack")
			}
			log.Warn().Int64(logRecord, r.rec.ID).Str(logSession, r.rec.SessionID).Int("code", re.Code).
				Str("message", re.Message).Bool("quarantined", q).Msg("server refused a record")
			if q {
				n := 0
				if st, err := ob.OutboxStats(context.WithoutCancel(ctx)); err == nil {
					n = st.Quarantined
				}
				a.sendEvent(a.cfg.Events.RecordsQuarantined, fmt.Sprintf(
					"record %s quarantined after %d refusals (code %d: %s); %d quarantined",
					r.rec.SessionID, r.rec.Attempts+1, re.Code, re.Message, n))
			}
		default:
			if ctx.Err() == nil {
				d := retry.Delay(pause)
				pause++
				pauseUntil = a.cfg.Now().Add(d)
				log.Warn().Err(r.err).Int64(logRecord, r.rec.ID).Dur(logDelay, d).Msg("upload failed; pausing")
			}
		}
	}
	// startAck hands the pending ids to the acker when it is idle.
	startAck := func() {
		if ackBusy || len(pending) == 0 {
			return
		}
		ackBusy = true
		toAck <- pending
		pending = nil
	}
	ackedBatch := func(r ackResult) {
		ackBusy = false
		for _, id := range r.ids {
			delete(acking, id)
		}
		if r.err != nil && ctx.Err() == nil {
			d := retry.Delay(pause)
			pause++
			pauseUntil = a.cfg.Now().Add(d)
			queue = nil // peek again after the pause
			log.Warn().Dur(logDelay, d).Msg("acks not stored; pausing the upload")
		}
	}
	defer func() {
		for len(inflight) > 0 {
			finish(<-results)
		}
		for ackBusy || len(pending) > 0 {
			startAck()
			ackedBatch(<-acked)
		}
		close(toAck)
		<-ackerDone
	}()

	for {
		startAck()
		// Launch what the window allows, from a prefetched batch: one
		// Peek serves many launches (a Peek re-reads the records still in
		// flight or being acked, so it is not cheap).
		var nextDue time.Time
		if !quarantineAt.IsZero() && !a.cfg.Now().Before(quarantineAt) {
			retryQuarantined()
		}
		if !a.writable() && !a.cfg.Now().Before(pauseUntil) {
			// Nothing sent could be acknowledged: look again soon (the
			// store signals Wake when it becomes writable).
			pauseUntil = a.cfg.Now().Add(a.cfg.Modules.RetryMin)
			queue = nil
		}
		if !a.cfg.Now().Before(pauseUntil) && len(inflight) < window {
			if len(queue) == 0 {
				recs, err := ob.Peek(ctx, prefetch+len(inflight)+len(acking))
				if err != nil {
					if ctx.Err() != nil {
						return
					}
					log.Error().Err(err).Msg("peek outbox")
					pauseUntil = a.cfg.Now().Add(retry.Delay(pause))
					pause++
				}
				for _, rec := range recs {
					if !inflight[rec.ID] && !acking[rec.ID] {
						queue = append(queue, rec)
					}
				}
			}
			for len(queue) > 0 && len(inflight) < window {
				rec := queue[0]
				queue = queue[1:]
				inflight[rec.ID] = true
				go a.upload(ctx, peer, rec, results)
			}
			if len(inflight) == 0 && len(acking) == 0 {
				if st, err := ob.OutboxStats(ctx); err == nil {
					nextDue = st.NextDue
				}
			}
		}
		// Wait for something to do.
		var (
			timer <-chan time.Time
			t     *time.Timer
		)
		wakeAt := nextDue
		if a.cfg.Now().Before(pauseUntil) {
			wakeAt = pauseUntil
		}
		if !quarantineAt.IsZero() && (wakeAt.IsZero() || quarantineAt.Before(wakeAt)) {
			wakeAt = quarantineAt
		}
		if !wakeAt.IsZero() {
			t = time.NewTimer(max(wakeAt.Sub(a.cfg.Now()), time.Millisecond))
			timer = t.C
		}
		wake := ob.Wake()
		if len(inflight) >= window || len(queue) > 0 || a.cfg.Now().Before(pauseUntil) {
			wake = nil // nothing new can start before a result or the pause ends
		}
		select {
		case <-ctx.Done():
			if t != nil {
				t.Stop()
			}
			return
		case r := <-results:
			finish(r)
			for more := true; more; {
				select {
				case r := <-results:
					finish(r)
				default:
					more = false
				}
			}
		case r := <-acked:
			ackedBatch(r)
		case <-wake:
		case <-timer:
		}
		if t != nil {
			t.Stop()
		}
	}
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

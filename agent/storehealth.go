package agent

import (
	"context"
	"errors"
	"fmt"

	"termagent/hal/backoff"
	"termagent/store"
)

// The database's own faults, beside the records writer's (records.go):
//
//   - a database that the file system refuses to write at start is opened
//     read-only by the store: the terminal keeps deciding accesses from the
//     persons it holds, records wait in the memory queue (records.go), the
//     "database" module is faulty with the reason, and runStore — the one
//     place that retries — tries to make it writable with backoff
//     (Modules.RetryMin..RetryMax); on success it reports the recovery,
//     seeds the settings and lets the records writer and the uploader go;
//   - a damaged database replaced at start (store.Recovery) is reported to
//     the server as a DatabaseRecovered event with the counts salvaged and
//     lost, so it can push the persons again.

// runStore makes a read-only (degraded) store writable again, with backoff.
// It returns at once for a store that is writable or cannot degrade.
func (a *Agent) runStore(ctx context.Context) {
	d, ok := a.parts.Store.(degradable)
	if !ok {
		return
	}
	if w, why := d.Writable(); !w {
		a.moduleError(moduleDatabase, fmt.Errorf("database read-only: %s", why))
	} else {
		return
	}
	b := backoff.Policy{Min: a.cfg.Modules.RetryMin, Max: a.cfg.Modules.RetryMax}
	for attempt := 0; ; attempt++ {
		if !backoff.Sleep(ctx, b.Delay(attempt)) {
			return
		}
		err := d.MakeWritable(ctx)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return
		}
		a.log.Debug().Err(err).Int(logAttempt, attempt).Msg("database still read-only")
	}
	a.log.Warn().Msg("database writable again: records in memory are stored now")
	if err := a.seed(ctx); err != nil {
		a.log.Error().Err(err).Msg("seed device info after the database became writable")
	}
	a.moduleOK(moduleDatabase)
	select { // the records writer may be waiting for a record, not a retry
	case a.records.wake <- struct{}{}:
	default:
	}
}

// reportRecovery sends the DatabaseRecovered event if the store replaced a
// damaged database at open.
func (a *Agent) reportRecovery() {
	r, ok := a.parts.Store.(recoverable)
	if !ok {
		return
	}
	rec, ok := r.Recovery()
	if !ok {
		return
	}
	a.log.Error().Str("moved_to", rec.MovedTo).Str("reason", rec.Reason).
		Str("salvaged", rec.Salvaged.String()).Str("lost", rec.Lost.String()).Int("lost_log_commits", rec.LostCommits).
		Msg("the database was damaged: moved aside, salvaged into a fresh one")
	a.sendEvent(a.cfg.Events.DatabaseRecovered, fmt.Sprintf("database damaged, replaced: salvaged %s; lost %s; lost log commits %d",
		rec.Salvaged, rec.Lost, rec.LostCommits))
}

// writable reports whether the store takes writes now (a store that cannot
// degrade always does).
func (a *Agent) writable() bool {
	d, ok := a.parts.Store.(degradable)
	if !ok {
		return true
	}
	w, _ := d.Writable()
	return w
}

// seedOrReadOnly seeds the settings, unless the store is read-only: then
// the stored settings are used as they are and runStore seeds later.
func (a *Agent) seedOrReadOnly(ctx context.Context) error {
	err := a.seed(ctx)
	if errors.Is(err, store.ErrReadOnly) {
		a.log.Warn().Err(err).Msg("database read-only: the stored settings are used as they are")
		return nil
	}
	return err
}

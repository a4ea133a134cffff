package agent

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"termagent/hal"
	"termagent/hal/backoff"
	"termagent/protocol"
	"termagent/store"
)

// enqueueTimeout bounds one attempt to enqueue an access record durably
// (and one read of the settings). The attempt is detached from Run's
// context so that a shutdown finishes a write in progress.
const enqueueTimeout = 5 * time.Second

// Access is one decided access attempt, as the access path saw it.
type access struct {
	kind    int // open_door_type
	person  store.Person
	granted bool
	card    string // card number presented, if any
	at      time.Time
	inOut   int // in_out_type; 0: Device.InOutType
}

// decide looks the credential up and returns the decision. A lookup error
// other than "not found" denies (fail secure) and is logged.
func (a *Agent) decide(ctx context.Context, kind int, card string, at time.Time, lookup func(context.Context) (store.Person, error)) access {
	acc := access{kind: kind, card: card, at: at}
	p, err := lookup(ctx)
	switch {
	case err == nil:
		acc.person, acc.granted = p, true
		if acc.card == "" {
			acc.card = p.CardNumber
		}
	case errors.Is(err, store.ErrNotFound):
	default:
		a.log.Error().Err(err).Int("open_door_type", kind).Msg("person lookup failed; access denied")
	}
	return acc
}

// grant runs the access path after the decision. A granted access opens
// the door with its record written first (openWithRecord, records.go); a
// denied one is only recorded, if Access.RecordDenied says so.
func (a *Agent) grant(ctx context.Context, acc access) {
	l := a.log.Info()
	if !acc.granted {
		l = a.log.Warn()
	}
	l.Bool("granted", acc.granted).Int("open_door_type", acc.kind).Str(logPerson, acc.person.PersonID).Msg("access")
	if acc.granted {
		err := a.openWithRecord(ctx, acc)
		a.signal(acc, err == nil)
		return
	}
	a.signal(acc, false)
	if a.cfg.Access.RecordDenied {
		a.record(acc)
	}
}

// openWithRecord opens the door for a granted access and records it, in
// the order records.go describes: the record is committed to the outbox,
// held, before the relay is driven; a door that opened releases it, a door
// that could not be driven withdraws it and raises the "door fault" event.
// When the store fails (no commit within Access.RecordTimeout, or an
// error), the door opens anyway and the record waits in memory. It
// returns the door's error.
func (a *Agent) openWithRecord(ctx context.Context, acc access) error {
	body, err := a.recordBody(acc)
	if err != nil {
		// Only a bug can get here (the fields are bounded, Marshal of them
		// does not fail); say so loudly, and let the person in.
		a.log.Error().Err(err).Str(logPerson, acc.person.PersonID).Msg("access record LOST: cannot encode it")
		return a.openDoor(ctx)
	}
	pending := pendingRecord{
		rec:    store.Record{SessionID: uuid.NewString(), Body: body},
		person: acc.person.PersonID,
		at:     acc.at,
	}
	if a.parts.Door == nil { // nothing opens: recorded like any access
		a.allowOpen()
		a.pushRecord(pending)
		return nil
	}
	held, stored := a.storeHeld(ctx, pending)
	if err := a.openDoor(ctx); err != nil {
		if stored {
			a.withdrawRecord(ctx, held)
		}
		a.log.Error().Err(err).Str(logPerson, acc.person.PersonID).Int("open_door_type", acc.kind).
			Msg("access granted but the door could not be opened: no record")
		a.sendEvent(a.cfg.Events.DoorFault, fmt.Sprintf("door: access of %q (open_door_type %d) not carried out: %v",
			acc.person.PersonID, acc.kind, err))
		return err
	}
	if !stored {
		a.pushRecord(pending)
		return nil
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), enqueueTimeout)
	defer cancel()
	if err := a.parts.Store.Release(rctx, held.ID); err != nil {
		a.log.Warn().Err(err).Int64(logRecord, held.ID).Dur("hold", a.recordHold()).
			Msg("release the record of an opened door: it is sent when its hold passes")
	}
	a.checkOutboxFill(rctx)
	return nil
}

// openDoor pulses the door relay, if the terminal has one, waiting at most
// Access.DoorTimeout for it to switch.
func (a *Agent) openDoor(ctx context.Context) error {
	a.allowOpen() // the door may open from now on (supervise.go)
	d := a.parts.Door
	if d == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, a.cfg.Access.DoorTimeout)
	defer cancel()
	if err := d.Unlock(ctx, a.cfg.Access.DoorPulse); err != nil {
		a.moduleError(moduleDoor, err)
		return err
	}
	a.moduleOK(moduleDoor)
	return nil
}

// record queues the record of an access that opens nothing (a denied
// attempt) for the outbox (records.go) and returns at once: it never waits
// for the database.
func (a *Agent) record(acc access) {
	body, err := a.recordBody(acc)
	if err != nil {
		// Only a bug can get here (the fields are bounded, Marshal of them
		// does not fail); say so loudly.
		a.log.Error().Err(err).Str(logPerson, acc.person.PersonID).Msg("access record LOST: cannot encode it")
		return
	}
	a.pushRecord(pendingRecord{
		rec:    store.Record{SessionID: uuid.NewString(), Body: body},
		person: acc.person.PersonID,
		at:     acc.at,
	})
}

// recordBody builds the upload_access_info message stored in the outbox
// (without session_id: the store assigns one per record).
func (a *Agent) recordBody(acc access) ([]byte, error) {
	st := a.cachedSettings()
	m := protocol.NewRequest(protocol.ModUploadAccessInfo)
	m.AccessInfo = &protocol.AccessInfo{
		PersonID:      acc.person.PersonID,
		Time:          protocol.FormatTime(acc.at, a.cfg.Device.Location),
		IDNumber:      acc.person.IDNumber,
		CardNumber:    acc.card,
		Role:          acc.person.Role,
		OpenDoorType:  acc.kind,
		InOutType:     cmp.Or(acc.inOut, a.cfg.Device.InOutType),
		CommunityCode: st.CommunityCode,
	}
	return protocol.Marshal(m)
}

// cachedSettings returns the stored settings, read at most once per
// second (the community code is in every record; the access path must not
// wait on the database more than it has to).
func (a *Agent) cachedSettings() store.Settings {
	a.smu.Lock()
	defer a.smu.Unlock()
	now := a.cfg.Now()
	if a.settingsAt.IsZero() || now.Sub(a.settingsAt) > time.Second {
		ctx, cancel := context.WithTimeout(context.Background(), enqueueTimeout)
		s, err := a.parts.Store.DeviceInfo(ctx)
		cancel()
		if err == nil {
			a.settings, a.settingsAt = s, now
		} else {
			a.log.Error().Err(err).Msg("read settings for a record")
			if a.settings.CommunityCode == "" {
				a.settings.CommunityCode = a.cfg.Device.CommunityCode
			}
		}
	}
	return a.settings
}

// invalidateSettings makes the next record re-read the settings.
func (a *Agent) invalidateSettings() {
	a.smu.Lock()
	a.settingsAt = time.Time{}
	a.smu.Unlock()
}

// checkOutboxFill sends the "outbox nearly full" event once each time the
// fill crosses Upload.NearlyFull.
func (a *Agent) checkOutboxFill(ctx context.Context) {
	st, err := a.parts.Store.OutboxStats(ctx)
	if err != nil || st.Capacity <= 0 {
		return
	}
	full := float64(st.Depth+st.Quarantined) >= a.cfg.Upload.NearlyFull*float64(st.Capacity)
	if full && a.nearlyFull.CompareAndSwap(false, true) {
		a.sendEvent(a.cfg.Events.OutboxNearlyFull, "outbox nearly full")
	} else if !full {
		a.nearlyFull.Store(false)
	}
}

// remoteOpen opens the door for a server command and records it with
// open_door_type Remote, record first like every granted access; a door
// that cannot be driven answers -2 and makes no record.
func (a *Agent) remoteOpen(ctx context.Context) error {
	acc := access{kind: a.cfg.Access.OpenDoorTypes.Remote, granted: true, at: a.cfg.Now()}
	err := a.openWithRecord(ctx, acc)
	a.signal(acc, err == nil)
	if err != nil {
		return devErr("door: %v", err)
	}
	return nil
}

// readerLoop runs one reader: wait for an event, act on it; on a device
// error mark the module faulty and retry with backoff until it answers,
// or at once when watchHealth sees the device's port come back.
func (a *Agent) readerLoop(ctx context.Context, module string, next func(context.Context) error) {
	b := backoff.Policy{Min: a.cfg.Modules.RetryMin, Max: a.cfg.Modules.RetryMax}
	attempt := 0
	for ctx.Err() == nil {
		err := next(ctx)
		if ctx.Err() != nil || errors.Is(err, hal.ErrClosed) {
			return
		}
		if err == nil {
			attempt = 0
			continue
		}
		a.moduleError(module, err)
		t := time.NewTimer(b.Delay(attempt))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		case <-a.retry[module]: // the device is back (watchHealth)
			t.Stop()
		}
		attempt++
	}
}

// runCard runs the card reader's access path.
func (a *Agent) runCard(ctx context.Context) {
	r := a.parts.Card
	a.readerLoop(ctx, moduleCard, func(ctx context.Context) error {
		c, err := r.ReadCard(ctx)
		if err != nil {
			return err
		}
		a.moduleOK(moduleCard)
		at := c.At
		if at.IsZero() {
			at = a.cfg.Now()
		}
		acc := a.decide(ctx, a.cfg.Access.OpenDoorTypes.Card, c.Number, at, func(ctx context.Context) (store.Person, error) {
			return a.parts.Store.PersonByCard(ctx, c.Number)
		})
		if a.awaitPIN(ctx, acc) { // card+pin: the PIN decides (pin.go)
			return nil
		}
		a.grant(ctx, acc)
		return nil
	})
}

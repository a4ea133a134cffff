package agent

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"termagent/hal"
	"termagent/store"
)

// moduleError marks a module faulty; the first error of a fault sends a
// "module fault" event.
func (a *Agent) moduleError(name string, err error) {
	if a.setModule(name, ModuleFault, err) {
		a.log.Error().Err(err).Str(logModule, name).Msg("module fault")
		a.sendEvent(a.cfg.Events.ModuleFault, name+": "+err.Error())
	}
}

// moduleOK marks a module healthy; leaving a fault sends a "module
// recovered" event and reports true.
func (a *Agent) moduleOK(name string) bool {
	if a.setModule(name, ModuleOK, nil) {
		a.log.Info().Str(logModule, name).Msg("module recovered")
		a.sendEvent(a.cfg.Events.ModuleRecovered, name)
		return true
	}
	return false
}

// watchHealth follows one device's connection (hal.HealthReporter) until
// ctx is done or the device is closed: a lost port marks the module faulty
// at once, idle or not (a "module fault" event); its return marks a card
// reader or a relay healthy again, and makes the face and fingerprint
// loops retry at once (they resynchronise the module, then report it
// healthy). So every device reports lost/recovered the same way, within
// the driver's reopen backoff (at most 2 s by default).
func (a *Agent) watchHealth(ctx context.Context, name string, hr hal.HealthReporter) {
	for {
		h, changed := hr.Health()
		switch {
		case h.OK:
			if name != moduleFingerprint && name != moduleFace { // nothing to resync
				a.moduleOK(name)
			} else if a.moduleState(name) == ModuleFault {
				a.retryNow(name)
			}
		case errors.Is(h.Err, hal.ErrClosed):
			return
		default:
			err := h.Err
			if err == nil {
				err = fmt.Errorf("%s: %w", name, hal.ErrFault)
			}
			a.moduleError(name, err)
			select { // interrupt a Recognize/Identify waiting on a dead port
			case a.lost[name] <- struct{}{}:
			default:
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
	}
}

// untilLost runs wait (a Recognize or Identify) with a context that is
// also cancelled when watchHealth sees the module's port vanish: a module
// that comes back may be another one, and is resynchronised before it is
// used. It returns wait's error, or, when the port was lost, lost=true and
// the error to report (nil when the port is back already).
func (a *Agent) untilLost(ctx context.Context, name string, part any, wait func(context.Context) error) (lost bool, err error) {
	select { // a loss signalled before this wait began is stale
	case <-a.lost[name]:
	default:
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-a.lost[name]:
			cancel()
		case <-wctx.Done():
		}
	}()
	err = wait(wctx)
	if err == nil || ctx.Err() != nil || wctx.Err() == nil {
		return false, err
	}
	if hr, ok := part.(hal.HealthReporter); ok {
		if h, _ := hr.Health(); !h.OK {
			return true, h.Err
		}
	}
	return true, nil
}

// retryNow wakes the named module's loop from its backoff sleep.
func (a *Agent) retryNow(name string) {
	select {
	case a.retry[name] <- struct{}{}:
	default:
	}
}

// runFingerprint resynchronises the fingerprint module, then identifies
// fingers. After a fault it probes the module with backoff and resyncs it
// again when it answers (a replaced module heals itself).
func (a *Agent) runFingerprint(ctx context.Context) {
	fp := a.parts.Fingerprint
	synced := false
	a.readerLoop(ctx, moduleFingerprint, func(ctx context.Context) error {
		if !synced {
			if err := a.resyncFingerprint(ctx); err != nil {
				return err
			}
			synced = true
			a.moduleOK(moduleFingerprint)
		}
		var f hal.Finger
		lost, err := a.untilLost(ctx, moduleFingerprint, fp, func(ctx context.Context) (err error) {
			f, err = fp.Identify(ctx)
			return err
		})
		if lost || err != nil {
			synced = false // resync when it comes back
			return err
		}
		a.moduleOK(moduleFingerprint)
		at := f.At
		if at.IsZero() {
			at = a.cfg.Now()
		}
		kind := a.cfg.Access.OpenDoorTypes.Fingerprint
		if !f.Matched {
			a.grant(ctx, access{kind: kind, at: at})
			return nil
		}
		acc := a.decide(ctx, kind, "", at, func(ctx context.Context) (store.Person, error) {
			return a.parts.Store.PersonByFingerSlot(ctx, f.Slot)
		})
		a.grant(ctx, acc)
		return nil
	})
}

// runFace is runFingerprint for the face module.
func (a *Agent) runFace(ctx context.Context) {
	fm := a.parts.Face
	synced := false
	a.readerLoop(ctx, moduleFace, func(ctx context.Context) error {
		if !synced {
			if err := a.resyncFace(ctx); err != nil {
				return err
			}
			synced = true
			a.moduleOK(moduleFace)
		}
		var f hal.Face
		lost, err := a.untilLost(ctx, moduleFace, fm, func(ctx context.Context) (err error) {
			f, err = fm.Recognize(ctx)
			return err
		})
		if lost || err != nil {
			synced = false
			return err
		}
		a.moduleOK(moduleFace)
		at := f.At
		if at.IsZero() {
			at = a.cfg.Now()
		}
		kind := a.cfg.Access.OpenDoorTypes.Face
		if !f.Recognised {
			a.grant(ctx, access{kind: kind, at: at})
			return nil
		}
		acc := a.decide(ctx, kind, "", at, func(ctx context.Context) (store.Person, error) {
			return a.parts.Store.PersonByFaceUser(ctx, f.UserID)
		})
		a.grant(ctx, acc)
		return nil
	})
}

// resyncFingerprint makes the module's slots match the database: templates
// bound in the database but missing from the module are stored again,
// templates of persons not bound to a slot are enrolled, and slots the
// database does not bind are deleted.
func (a *Agent) resyncFingerprint(ctx context.Context) error {
	fp := a.parts.Fingerprint
	if err := a.lockModules(ctx); err != nil {
		return err
	}
	defer a.unlockModules()
	octx, cancel := context.WithTimeout(ctx, a.cfg.Modules.OpTimeout)
	have, err := fp.Slots(octx)
	cancel()
	if err != nil {
		return fmt.Errorf("fingerprint resync: list slots: %w", err)
	}
	inModule := make(map[int]bool, len(have))
	for _, s := range have {
		inModule[s] = true
	}
	bound := map[int]bool{}
	type job struct {
		id   string
		kind store.Kind
		slot int
	}
	var (
		jobs  []job
		enrol []string // persons with a template but no slot
	)
	err = a.parts.Store.EachPerson(ctx, func(p store.Person) error {
		for _, h := range []struct {
			hand store.Hand
			kind store.Kind
			slot int
		}{{store.Left, store.LeftCode, p.LeftSlot}, {store.Right, store.RightCode, p.RightSlot}} {
			if h.slot != store.Unbound {
				bound[h.slot] = true
				if !inModule[h.slot] {
					jobs = append(jobs, job{p.PersonID, h.kind, h.slot})
				}
			} else if p.Stored.Has(h.kind) && !slices.Contains(enrol, p.PersonID) {
				enrol = append(enrol, p.PersonID)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("fingerprint resync: %w: %w", ErrDatabase, err)
	}
	var orphans []int
	for _, s := range have {
		if !bound[s] {
			orphans = append(orphans, s)
		}
	}
	for _, s := range orphans {
		octx, cancel := context.WithTimeout(ctx, a.cfg.Modules.OpTimeout)
		err := fp.Delete(octx, s)
		cancel()
		if err != nil {
			return fmt.Errorf("fingerprint resync: delete orphan slot %d: %w", s, err)
		}
	}
	stored := 0
	for _, j := range jobs {
		b, err := a.parts.Store.Biometric(ctx, j.id, j.kind)
		if errors.Is(err, store.ErrNotFound) {
			continue // bound slot without template: nothing to restore
		}
		if err != nil {
			return fmt.Errorf("fingerprint resync: %w: %w", ErrDatabase, err)
		}
		octx, cancel := context.WithTimeout(ctx, a.cfg.Modules.OpTimeout)
		err = fp.Store(octx, j.slot, b.Data)
		cancel()
		if err != nil {
			return fmt.Errorf("fingerprint resync: restore slot %d: %w", j.slot, err)
		}
		stored++
	}
	for _, id := range enrol {
		if err := a.enrolFingers(ctx, id); err != nil {
			if errors.Is(err, store.ErrNoFreeSlot) || errors.Is(err, hal.ErrRejected) || errors.Is(err, hal.ErrFull) {
				a.log.Warn().Err(err).Str(logPerson, id).Msg("fingerprint resync: templates not enrolled")
				continue
			}
			return fmt.Errorf("fingerprint resync: %w", err)
		}
		stored++
	}
	a.log.Info().Int("restored", stored).Int("deleted", len(orphans)).Int("slots", len(have)).Msg("fingerprint module resynchronised")
	return nil
}

// enrolFingers enrols every template of a person into fresh slots and
// binds them (resync of a person stored while the module was absent or
// faulty), then frees the person's previous slots: a PersonTx binds all of
// a person's slots at once.
func (a *Agent) enrolFingers(ctx context.Context, id string) error {
	fp := a.parts.Fingerprint
	tx, err := a.parts.Store.BeginPerson(ctx, id)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrDatabase, err)
	}
	defer tx.Rollback()
	old, ok := tx.Old()
	if !ok {
		return nil // removed meanwhile
	}
	var stored []int
	undo := func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.Modules.OpTimeout)
		defer cancel()
		for _, s := range stored {
			fp.Delete(dctx, s)
		}
	}
	for _, h := range []struct {
		hand store.Hand
		kind store.Kind
	}{{store.Left, store.LeftCode}, {store.Right, store.RightCode}} {
		if !old.Stored.Has(h.kind) {
			continue
		}
		b, err := a.parts.Store.Biometric(ctx, id, h.kind)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			undo()
			return fmt.Errorf("%w: %w", ErrDatabase, err)
		}
		slot, err := tx.AllocFingerSlot(ctx, h.hand, a.fingerCapacity(ctx))
		if err != nil {
			undo()
			return err
		}
		octx, cancel := context.WithTimeout(ctx, a.cfg.Modules.OpTimeout)
		err = fp.Store(octx, slot, b.Data)
		cancel()
		stored = append(stored, slot)
		if err != nil {
			undo()
			return fmt.Errorf("store %s of %s in slot %d: %w", h.kind, id, slot, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		undo()
		return fmt.Errorf("%w: %w", ErrDatabase, err)
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.Modules.OpTimeout)
	defer cancel()
	for _, s := range []int{old.LeftSlot, old.RightSlot} {
		if s != store.Unbound {
			fp.Delete(dctx, s)
		}
	}
	return nil
}

// resyncFace makes the face module's users match the database: persons
// with a photo whose user is missing are enrolled again (the module assigns
// a new id, which is stored), users the database does not bind are deleted.
func (a *Agent) resyncFace(ctx context.Context) error {
	fm := a.parts.Face
	if err := a.lockModules(ctx); err != nil {
		return err
	}
	defer a.unlockModules()
	octx, cancel := context.WithTimeout(ctx, a.cfg.Modules.OpTimeout)
	users, err := fm.Users(octx)
	cancel()
	if err != nil {
		return fmt.Errorf("face resync: list users: %w", err)
	}
	bound := map[int]bool{}
	var missing []string
	err = a.parts.Store.EachPerson(ctx, func(p store.Person) error {
		if p.FaceUser != store.Unbound && slices.Contains(users, p.FaceUser) {
			bound[p.FaceUser] = true
			return nil
		}
		if p.Stored.Has(store.Face) {
			missing = append(missing, p.PersonID)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("face resync: %w: %w", ErrDatabase, err)
	}
	deleted := 0
	for _, u := range users {
		if bound[u] {
			continue
		}
		octx, cancel := context.WithTimeout(ctx, a.cfg.Modules.OpTimeout)
		err := fm.Delete(octx, u)
		cancel()
		if err != nil {
			return fmt.Errorf("face resync: delete orphan user %d: %w", u, err)
		}
		deleted++
	}
	enrolled := 0
	for _, id := range missing {
		err := a.enrolFace(ctx, id)
		switch {
		case err == nil:
			enrolled++
		case errors.Is(err, hal.ErrUnsupported):
			a.log.Warn().Err(err).Msg("face resync: the module cannot enrol from a photo")
			return nil
		case errors.Is(err, hal.ErrRejected):
			a.log.Warn().Err(err).Str(logPerson, id).Msg("face resync: photo rejected by the module")
		default:
			return fmt.Errorf("face resync: %w", err)
		}
	}
	a.log.Info().Int("enrolled", enrolled).Int("deleted", deleted).Int("users", len(users)).Msg("face module resynchronised")
	return nil
}

// enrolFace enrols a stored person's photo and binds the new user id.
func (a *Agent) enrolFace(ctx context.Context, id string) error {
	tx, err := a.parts.Store.BeginPerson(ctx, id)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrDatabase, err)
	}
	defer tx.Rollback()
	old, ok := tx.Old()
	if !ok {
		return nil
	}
	photo, err := a.parts.Store.Biometric(ctx, id, store.Face)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrDatabase, err)
	}
	octx, cancel := context.WithTimeout(ctx, a.cfg.Modules.OpTimeout)
	uid, err := a.parts.Face.Enroll(octx, old.Name, photo.Data)
	cancel()
	if err != nil {
		return fmt.Errorf("enrol %s: %w", id, err)
	}
	if err := tx.SetFaceUser(uid); err == nil {
		err = tx.Commit(ctx)
		if err == nil {
			return nil
		}
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.Modules.OpTimeout)
	a.parts.Face.Delete(dctx, uid)
	cancel()
	return fmt.Errorf("%w: bind face user of %s: %w", ErrDatabase, id, err)
}

// moduleState returns a module's current state.
func (a *Agent) moduleState(name string) ModuleState {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.modules[name].State
}

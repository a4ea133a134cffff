package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"strconv"

	"termagent/hal"
	"termagent/protocol"
	"termagent/store"
)

// devErr answers -2 for a module failure.
func devErr(format string, args ...any) error {
	return protocol.Errorf(protocol.CodeDevice, format, args...)
}

// toBiometric converts a wire biometric to the store's (nil stays nil). A
// spooled one stays in its spool file: the store reads it from there a
// chunk at a time.
func toBiometric(b *protocol.Biometric) *store.Biometric {
	if b == nil {
		return nil
	}
	f := ""
	if b.Format != 0 {
		f = strconv.Itoa(b.Format)
	}
	sb := &store.Biometric{Data: b.Data, Format: f, Width: b.Width, Height: b.Height}
	if b.Spooled() {
		sb.Source = b
	}
	return sb
}

// bioBytes returns a biometric's bytes in memory, for a module that takes
// a template or a photo whole (a spooled one is read back).
func bioBytes(b *store.Biometric) ([]byte, error) {
	if b.Data != nil || b.Source == nil {
		return b.Data, nil
	}
	out := make([]byte, b.Source.Len())
	if _, err := io.ReadFull(b.Source.Open(), out); err != nil {
		return nil, fmt.Errorf("read spooled biometric: %w", err)
	}
	return out, nil
}

// downloadPerson answers download_person: validate, store, enrol into the
// modules this terminal has, all or nothing (protocol/PROTOCOL.md §5 download_person): -1 for an
// invalid request, -2 when a module fails, -3 when the database fails; on
// any failure the database and the modules are as before.
func (a *Agent) downloadPerson(ctx context.Context, req *protocol.Message) (*protocol.Message, error) {
	pi := req.PersonInfo
	if pi == nil {
		return nil, protocol.Errorf(protocol.CodeError, "person_info is missing")
	}
	if big(pi) {
		// Give the memory a big download used back to the system at once
		// (the collector would keep it for minutes): see freeMemory.
		defer a.freeMemory()
	}
	if pi.PersonID == "" {
		return nil, protocol.Errorf(protocol.CodeError, "person_info.person_id is missing")
	}
	for _, b := range []struct {
		name string
		b    *protocol.Biometric
	}{{"face", pi.Face}, {"left_image", pi.LeftImage}, {"right_image", pi.RightImage}, {"left_code", pi.LeftCode}, {"right_code", pi.RightCode}} {
		if b.b == nil {
			continue
		}
		if b.b.Length != b.b.Len() {
			return nil, protocol.Errorf(protocol.CodeError, "person_info.%s.length is %d but data decodes to %d bytes", b.name, b.b.Length, b.b.Len())
		}
		if b.b.Len() == 0 {
			return nil, protocol.Errorf(protocol.CodeError, "person_info.%s.data is empty", b.name)
		}
	}
	p := store.Person{
		PersonID: pi.PersonID, Name: pi.PersonName, IDNumber: pi.IDNumber, CardNumber: pi.CardNumber,
		KeyNumber: pi.KeyNumber, DepartmentNumber: pi.DepartmentNumber, Role: pi.Role,
		Face: toBiometric(pi.Face), LeftImage: toBiometric(pi.LeftImage), RightImage: toBiometric(pi.RightImage),
		LeftCode: toBiometric(pi.LeftCode), RightCode: toBiometric(pi.RightCode),
	}

	if err := a.lockModules(ctx); err != nil { // one download/removal/resync at a time
		return nil, devErr("%v", err)
	}
	defer a.unlockModules()
	tx, err := a.parts.Store.BeginPerson(ctx, p.PersonID)
	if err != nil {
		return nil, dbError("download person %s: %w", p.PersonID, err)
	}
	defer tx.Rollback()
	if err := tx.Put(p); err != nil {
		return nil, dbError("download person %s: %w", p.PersonID, err)
	}
	old, existed := tx.Old()
	// A card another person holds is refused before any module is
	// touched (the store's Commit refuses it too, inside its transaction).
	if p.CardNumber != "" {
		if holder, err := a.parts.Store.PersonByCard(ctx, p.CardNumber); err == nil && holder.PersonID != p.PersonID {
			return nil, protocol.Errorf(protocol.CodeError, "person_info.card_number %q is held by person_id %q; person_id %q cannot take it (change or remove the holder first)",
				p.CardNumber, holder.PersonID, p.PersonID)
		}
	}
	if err := a.checkKeyUnique(ctx, p); err != nil { // a PIN alone must name one person (pin.go)
		return nil, err
	}

	// undo removes what this download put into the modules; it runs on any
	// failure before the commit (the old templates stay in their slots:
	// new ones always go to fresh slots).
	var undo []func(context.Context) error
	fail := func(err error) (*protocol.Message, error) {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.Modules.OpTimeout)
		defer cancel()
		for i := len(undo) - 1; i >= 0; i-- {
			if uerr := undo[i](uctx); uerr != nil {
				a.log.Error().Err(uerr).Str(logPerson, p.PersonID).Msg("undo module enrolment (resync will remove it)")
			}
		}
		return nil, err
	}

	if fp := a.parts.Fingerprint; fp != nil {
		for _, h := range []struct {
			hand store.Hand
			name string
			code *store.Biometric
		}{{store.Left, "left_code", p.LeftCode}, {store.Right, "right_code", p.RightCode}} {
			if h.code == nil {
				continue
			}
			slot, err := tx.AllocFingerSlot(ctx, h.hand, a.fingerCapacity(ctx))
			if errors.Is(err, store.ErrNoFreeSlot) {
				return fail(devErr("fingerprint module is full (%d slots)", a.fingerCapacity(ctx)))
			}
			if err != nil {
				return fail(dbError("allocate fingerprint slot: %w", err))
			}
			code, err := bioBytes(h.code)
			if err != nil {
				return fail(dbError("download person %s: %w", p.PersonID, err))
			}
			octx, cancel := context.WithTimeout(ctx, a.cfg.Modules.OpTimeout)
			err = fp.Store(octx, slot, code)
			cancel()
			if errors.Is(err, hal.ErrRejected) {
				// Bad data is the request's fault, not the module's.
				undo = append(undo, func(ctx context.Context) error { return fp.Delete(ctx, slot) })
				return fail(protocol.Errorf(protocol.CodeError, "person_info.%s: the fingerprint module refused the template: %v", h.name, err))
			}
			if err != nil {
				a.moduleError(moduleFingerprint, err)
				// The module may have written part of it: delete it too.
				undo = append(undo, func(ctx context.Context) error { return fp.Delete(ctx, slot) })
				return fail(devErr("fingerprint module: store %s in slot %d: %v", h.name, slot, err))
			}
			undo = append(undo, func(ctx context.Context) error { return fp.Delete(ctx, slot) })
		}
	}
	if fm := a.parts.Face; fm != nil && p.Face != nil {
		photo, err := bioBytes(p.Face)
		if err != nil {
			return fail(dbError("download person %s: %w", p.PersonID, err))
		}
		octx, cancel := context.WithTimeout(ctx, a.cfg.Modules.OpTimeout)
		uid, err := fm.Enroll(octx, p.Name, photo)
		cancel()
		switch {
		case errors.Is(err, hal.ErrUnsupported):
			// The module cannot enrol from a photo: store the photo only,
			// as for a module the terminal does not have.
			a.log.Warn().Err(err).Str(logPerson, p.PersonID).Msg("face stored but not enrolled: the module cannot enrol from a photo")
		case errors.Is(err, hal.ErrRejected):
			// Not a JPEG, too small, too large, a face already enrolled:
			// bad data is the request's fault; the module stays healthy.
			a.log.Warn().Err(err).Str(logPerson, p.PersonID).Msg("download refused: the face module rejected the photo")
			return fail(protocol.Errorf(protocol.CodeError, "person_info.face: the face module refused the photo: %v", err))
		case err != nil:
			a.moduleError(moduleFace, err)
			return fail(devErr("face module: enrol: %v", err))
		default:
			undo = append(undo, func(ctx context.Context) error { return fm.Delete(ctx, uid) })
			if err := tx.SetFaceUser(uid); err != nil {
				return fail(dbError("bind face user: %w", err))
			}
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fail(dbError("download person %s: %w", p.PersonID, err))
	}
	a.log.Info().Str(logPerson, p.PersonID).Bool("replaced", existed).Msg("person downloaded")
	if existed {
		a.releaseModules(ctx, old)
	}
	return nil, nil
}

// releaseModules deletes a stored person's old templates and face user
// from the modules (after the database no longer binds them). Failures
// are logged; the next resync removes what is left.
func (a *Agent) releaseModules(ctx context.Context, old store.Person) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.Modules.OpTimeout)
	defer cancel()
	var errs []error
	if fp := a.parts.Fingerprint; fp != nil {
		for _, s := range []int{old.LeftSlot, old.RightSlot} {
			if s == store.Unbound {
				continue
			}
			if err := fp.Delete(ctx, s); err != nil {
				errs = append(errs, fmt.Errorf("fingerprint module: delete slot %d: %w", s, err))
			}
		}
	}
	if fm := a.parts.Face; fm != nil && old.FaceUser != store.Unbound {
		if err := fm.Delete(ctx, old.FaceUser); err != nil {
			errs = append(errs, fmt.Errorf("face module: delete user %d: %w", old.FaceUser, err))
		}
	}
	err := errors.Join(errs...)
	if err != nil {
		a.log.Warn().Err(err).Str(logPerson, old.PersonID).Msg("release module enrolments (resync will remove them)")
	}
	return err
}

// removePerson answers remove_person: each person leaves the database
// (access is denied from then on) and then every module. Unknown ids are
// no error. A module that fails answers -2: the person is gone from the
// database and the leftover is removed at the next resync.
func (a *Agent) removePerson(ctx context.Context, req *protocol.Message) (*protocol.Message, error) {
	ids := req.RemoveIDs()
	if len(ids) == 0 {
		return nil, protocol.Errorf(protocol.CodeError, "person_ids is missing or empty")
	}
	if err := a.lockModules(ctx); err != nil {
		return nil, devErr("%v", err)
	}
	defer a.unlockModules()
	var modErr error
	for _, id := range ids {
		old, err := a.parts.Store.DeletePerson(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, dbError("remove person %s: %w", id, err)
		}
		a.log.Info().Str(logPerson, id).Msg("person removed")
		if err := a.releaseModules(ctx, old); err != nil && modErr == nil {
			modErr = err
		}
	}
	if modErr != nil {
		return nil, devErr("removed from the database, but %v", modErr)
	}
	return nil, nil
}

// big reports whether pi carries a spooled biometric (a big download).
func big(pi *protocol.PersonInfo) bool {
	for _, b := range []*protocol.Biometric{pi.Face, pi.LeftImage, pi.RightImage, pi.LeftCode, pi.RightCode} {
		if b != nil && b.Spooled() {
			return true
		}
	}
	return false
}

// freeMemory returns the Go heap's free memory to the system
// (debug.FreeOSMemory: one collection and a scavenge, a few milliseconds
// on the agent's small heap) after a big download, so that the resident
// size falls back near its idle figure within the second instead of the
// minutes the background scavenger takes; measured by make footprint
// ("RSS 5 s later").
func (a *Agent) freeMemory() { debug.FreeOSMemory() }

package agent

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"sync"
	"time"

	"termagent/hal"
	"termagent/protocol"
	"termagent/store"
)

// keyFinder is the part of the store that finds persons by PIN (*store.DB).
type keyFinder interface {
	KeyHolders(ctx context.Context, key string) ([]string, error)
	Person(ctx context.Context, id string) (store.Person, error)
}

var _ keyFinder = (*store.DB)(nil)

// pinPad is the PIN entry's shared state: the wrong PINs of the lockout
// window, the lockout, and (card+pin mode) the card waiting for its PIN.
// The keys being typed live in runKeypad alone. Guarded by mu.
type pinPad struct {
	mu          sync.Mutex
	fails       []time.Time // wrong PINs within PIN.LockoutWindow, oldest first
	lockedUntil time.Time
	card        *pendingCard
}

// pendingCard is a known card in card+pin mode, waiting for its PIN.
type pendingCard struct {
	person store.Person
	number string
	until  time.Time
}

// runKeypad reads keys and assembles PINs (PINConfig): digits and letters
// are kept (up to PIN.MaxLength; more make the entry wrong), the Enter key
// submits, the Clear key and Esc discard, Backspace removes one key, and
// PIN.Timeout without a key discards. Keys are never logged.
func (a *Agent) runKeypad(ctx context.Context) {
	kp := a.parts.Keypad
	cfg := a.cfg.PIN
	buf := make([]byte, 0, cfg.MaxLength)
	over := false // more keys than MaxLength were typed
	reset := func() {
		clear(buf[:cap(buf)])
		buf, over = buf[:0], false
	}
	a.readerLoop(ctx, moduleKeypad, func(ctx context.Context) error {
		kctx, cancel := ctx, context.CancelFunc(func() {})
		if len(buf) > 0 || over {
			kctx, cancel = context.WithTimeout(ctx, cfg.Timeout)
		}
		k, err := kp.ReadKey(kctx)
		cancel()
		if err != nil {
			if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
				a.log.Info().Int("keys", len(buf)).Msg("PIN entry timed out: keys discarded")
				reset()
				return nil
			}
			return err
		}
		a.moduleOK(moduleKeypad)
		switch k.Char {
		case byte(cfg.Enter), hal.KeyEnter:
			if len(buf) == 0 && !over {
				return nil
			}
			at := k.At
			if at.IsZero() {
				at = a.cfg.Now()
			}
			a.submitPIN(ctx, buf, over, at)
			reset()
		case byte(cfg.Clear), hal.KeyEscape:
			reset()
		case hal.KeyBackspace:
			if len(buf) > 0 {
				buf[len(buf)-1] = 0
				buf = buf[:len(buf)-1]
			}
		default:
			if len(buf) == cfg.MaxLength {
				over = true
			} else {
				buf = append(buf, k.Char)
			}
		}
		return nil
	})
}

// submitPIN decides a PIN that was ended: refused unchecked while the
// keypad is locked out; in card+pin mode compared with the waiting card's
// holder's; else looked up among the persons. A refusal counts towards
// the lockout.
func (a *Agent) submitPIN(ctx context.Context, pin []byte, over bool, at time.Time) {
	kind := a.cfg.Access.OpenDoorTypes.Key
	now := a.cfg.Now()
	p := &a.pin
	p.mu.Lock()
	locked := now.Before(p.lockedUntil)
	remaining := p.lockedUntil.Sub(now)
	var card *pendingCard
	if a.cfg.Verify.Mode == VerifyCardPIN {
		card, p.card = p.card, nil // one try per card presentation
		if card != nil && now.After(card.until) {
			card = nil
		}
	}
	p.mu.Unlock()
	if locked {
		a.log.Warn().Dur("remaining", remaining).Msg("keypad locked out: PIN refused unchecked")
		a.grant(ctx, access{kind: kind, at: at})
		return
	}
	acc := access{kind: kind, at: at}
	switch {
	case over:
	case a.cfg.Verify.Mode == VerifyCardPIN:
		if card == nil {
			a.log.Warn().Msg("card+pin: a PIN with no card before it: refused")
			break
		}
		acc.card = card.number
		if card.person.KeyNumber != "" && subtle.ConstantTimeCompare(pin, []byte(card.person.KeyNumber)) == 1 {
			acc.person, acc.granted = card.person, true
		}
	default:
		acc = a.decide(ctx, kind, "", at, func(ctx context.Context) (store.Person, error) {
			return a.personByPIN(ctx, pin)
		})
	}
	a.grant(ctx, acc)
	if !acc.granted {
		a.wrongPIN(now)
	}
}

// personByPIN returns the one person whose key_number is pin. A PIN held
// by several persons (stored under card+pin mode) opens nothing.
func (a *Agent) personByPIN(ctx context.Context, pin []byte) (store.Person, error) {
	kf, ok := a.parts.Store.(keyFinder)
	if !ok {
		return store.Person{}, errors.New("the store cannot look PINs up")
	}
	ids, err := kf.KeyHolders(ctx, string(pin))
	if err != nil {
		return store.Person{}, err
	}
	switch len(ids) {
	case 0:
		return store.Person{}, store.ErrNotFound
	case 1:
		return kf.Person(ctx, ids[0])
	}
	a.log.Warn().Int("holders", len(ids)).Msg("a PIN held by several persons opens nothing (download them again with distinct key_numbers)")
	return store.Person{}, store.ErrNotFound
}

// wrongPIN counts a refused PIN; PIN.LockoutAfter of them within
// PIN.LockoutWindow lock the keypad for PIN.LockoutFor and send the
// "PIN lockout" event.
func (a *Agent) wrongPIN(now time.Time) {
	cfg := a.cfg.PIN
	p := &a.pin
	p.mu.Lock()
	keep := p.fails[:0]
	for _, t := range p.fails {
		if now.Sub(t) < cfg.LockoutWindow {
			keep = append(keep, t)
		}
	}
	p.fails = append(keep, now)
	n := len(p.fails)
	lock := n >= cfg.LockoutAfter
	if lock {
		p.fails = p.fails[:0]
		p.lockedUntil = now.Add(cfg.LockoutFor)
	}
	p.mu.Unlock()
	if !lock {
		return
	}
	a.log.Error().Int("wrong_pins", n).Dur("window", cfg.LockoutWindow).Dur("lockout", cfg.LockoutFor).Msg("keypad locked out")
	a.sendEvent(a.cfg.Events.PINLockout, fmt.Sprintf("keypad locked for %v after %d wrong PINs within %v", cfg.LockoutFor, n, cfg.LockoutWindow))
	a.show(resultLockout, "pin", "")
}

// pinLockedUntil returns the end of the lockout, zero when none.
func (a *Agent) pinLockedUntil() time.Time {
	p := &a.pin
	p.mu.Lock()
	defer p.mu.Unlock()
	if a.cfg.Now().Before(p.lockedUntil) {
		return p.lockedUntil
	}
	return time.Time{}
}

// awaitPIN takes over a card's decision in card+pin mode: a known card
// waits Verify.PINTimeout for its holder's PIN (submitPIN decides); an
// unknown card, or one whose holder has no PIN, is refused at once. It
// reports whether it took the decision (false: any mode, grant as usual).
func (a *Agent) awaitPIN(ctx context.Context, acc access) bool {
	if a.cfg.Verify.Mode != VerifyCardPIN || !acc.granted {
		return false
	}
	if acc.person.KeyNumber == "" {
		a.log.Warn().Str(logPerson, acc.person.PersonID).Msg("card+pin: the card's holder has no PIN: refused")
		a.grant(ctx, access{kind: acc.kind, card: acc.card, at: acc.at})
		return true
	}
	p := &a.pin
	p.mu.Lock()
	p.card = &pendingCard{person: acc.person, number: acc.card, until: a.cfg.Now().Add(a.cfg.Verify.PINTimeout)}
	p.mu.Unlock()
	a.log.Info().Str(logPerson, acc.person.PersonID).Msg("card+pin: card known, waiting for the PIN")
	a.show(resultPIN, "card", acc.person.PersonID)
	return true
}

// checkKeyUnique refuses, before any module is touched, a download_person
// whose key_number another person holds, where a PIN alone opens the door
// (Verify.Mode any): the PIN must name one person. The answer names both
// person_ids and never the PIN.
func (a *Agent) checkKeyUnique(ctx context.Context, p store.Person) error {
	if p.KeyNumber == "" || a.cfg.Verify.Mode != VerifyAny {
		return nil
	}
	kf, ok := a.parts.Store.(keyFinder)
	if !ok {
		return nil
	}
	ids, err := kf.KeyHolders(ctx, p.KeyNumber)
	if err != nil {
		return dbError("download person %s: check key_number: %w", p.PersonID, err)
	}
	for _, id := range ids {
		if id != p.PersonID {
			return protocol.Errorf(protocol.CodeError, "person_info.key_number is held by person_id %q; person_id %q cannot take it (a PIN opens the door alone on this terminal and must name one person)",
				id, p.PersonID)
		}
	}
	return nil
}

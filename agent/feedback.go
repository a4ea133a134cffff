package agent

import (
	"context"
	"time"
)

// FeedbackOutput is one feedback output, a buzzer or an LED; hal/feedback's
// *Output implements it. (The agent does not import hal/feedback: the
// reference server, which runs agents in its demo, does not link GPIO.)
type FeedbackOutput interface {
	// Play starts the steps (on, off, on, …; off at the end), replacing
	// what plays, and returns at once. It returns a line failure.
	Play(steps []time.Duration) error
}

// Results passed to the feedback hook.
const (
	resultGrant   = "grant"
	resultDeny    = "deny"
	resultLockout = "lockout"
	resultPIN     = "pin" // card+pin: the card is known, its PIN is awaited
)

// maxHooksWaiting bounds the feedback hook runs waiting for the one
// running; more are dropped (and logged).
const maxHooksWaiting = 16

// way names the way in of an open_door_type for the feedback hook.
func (a *Agent) way(kind int) string {
	o := a.cfg.Access.OpenDoorTypes
	switch kind {
	case o.Card:
		return "card"
	case o.Face:
		return "face"
	case o.Fingerprint:
		return "fingerprint"
	case o.Remote:
		return "remote"
	case o.Key:
		return "pin"
	case o.ExitButton:
		return "exit"
	}
	return "unknown"
}

// signal shows a decided access: the grant or deny patterns on the
// outputs and a run of the feedback hook. ok is whether the door was
// opened (a grant whose lock failed shows as a refusal). It never blocks.
func (a *Agent) signal(acc access, ok bool) {
	res := resultDeny
	if acc.granted && ok {
		res = resultGrant
	}
	a.show(res, a.way(acc.kind), acc.person.PersonID)
}

// show plays result's patterns and queues the hook. It never blocks.
func (a *Agent) show(result, way, person string) {
	pats := a.cfg.Feedback.Deny
	switch result {
	case resultGrant:
		pats = a.cfg.Feedback.Grant
	case resultPIN:
		pats = FeedbackPatterns{}
	}
	var failed error
	for _, o := range []struct {
		out FeedbackOutput
		p   []time.Duration
	}{{a.parts.Buzzer, pats.Buzzer}, {a.parts.Green, pats.Green}, {a.parts.Red, pats.Red}} {
		if o.out == nil || len(o.p) == 0 {
			continue
		}
		if err := o.out.Play(o.p); err != nil && failed == nil {
			failed = err
		}
	}
	if a.parts.Buzzer != nil || a.parts.Green != nil || a.parts.Red != nil {
		if failed != nil {
			a.moduleError(moduleFeedback, failed)
		} else if result != resultPIN {
			a.moduleOK(moduleFeedback)
		}
	}
	if a.cfg.Feedback.Hook == "" {
		return
	}
	select {
	case a.hooks <- []string{result, way, person}:
	default:
		a.log.Warn().Str("result", result).Msg("feedback hook busy: this decision is not shown")
	}
}

// runFeedbackHooks runs the feedback hook for each queued decision, one at
// a time, until ctx is done.
func (a *Agent) runFeedbackHooks(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case args := <-a.hooks:
			if err := runHook(ctx, a.cfg.Hooks.Timeout, a.cfg.Feedback.Hook, args...); err != nil && ctx.Err() == nil {
				a.log.Warn().Err(err).Str("result", args[0]).Msg("feedback hook failed")
			}
		}
	}
}

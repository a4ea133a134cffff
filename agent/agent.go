package agent

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"termagent/hal"
	"termagent/protocol"
	"termagent/store"
)

// Parts are the concrete pieces the agent composes. cmd builds them and
// closes them after Run has returned; the agent never closes a part.
type Parts struct {
	// Store is the database (*store.DB). Required.
	Store Store
	// Card, Fingerprint and Face are the readers this terminal has; nil
	// means the terminal has no such module (an untyped nil: a nil
	// *driver stored in the interface is not "absent").
	Card        hal.CardReader
	Fingerprint hal.FingerprintModule
	Face        hal.FaceModule
	// Door is the lock relay; nil means no relay (accesses are still
	// decided and recorded). If it also implements hal.DoorInputs and
	// DoorInputs is nil, its inputs are the door's inputs.
	Door hal.Door
	// DoorInputs are the door sensor and exit button when another device
	// than the relay reads them (hal/evdev's gpio-keys DoorInputs); nil:
	// the Door's, if it has any. The exit button opens the door; the
	// sensor is supervised (DoorWatchConfig).
	DoorInputs hal.DoorInputs
	// Keypad delivers key presses for PIN entry (PINConfig); nil means
	// no keypad.
	Keypad hal.Keypad
	// Buzzer, Green and Red are the feedback outputs (hal/feedback's
	// *Output); nil means not wired.
	Buzzer, Green, Red FeedbackOutput
	// FingerCapacity is the fingerprint module's number of slots, for slot
	// allocation. Default: what the module reports, if its driver has a
	// Capacity(ctx) (int, error) method (hal/fingerprint does), else 200.
	FingerCapacity int
}

// Agent is one terminal. Create it with New, run it with Run (once); Status
// may be called at any time from any goroutine.
type Agent struct {
	cfg   Config
	parts Parts
	log   zerolog.Logger

	started atomic.Pointer[time.Time]

	mu        sync.Mutex
	linkState LinkState
	linkSince time.Time
	server    string
	localAddr string
	lastErr   string
	modules   map[string]ModuleStatus

	uploaded   atomic.Int64
	nearlyFull atomic.Bool // the "outbox nearly full" event was sent

	smu        sync.Mutex // guards settings, settingsAt
	settings   store.Settings
	settingsAt time.Time

	link    *linkManager
	events  *eventQueue
	records *recordQueue  // access records on their way to the outbox
	restart chan struct{} // closed-once signal: the server ordered a restart
	once    sync.Once

	flushTimeout time.Duration // bound of flushRecords: flushTimeout (tests shorten it)

	fingerCap atomic.Int64 // slots of the fingerprint module; 0 until known

	// retry holds a cap-1 channel per module: watchHealth signals it when
	// the module's port is back, to cut readerLoop's backoff short.
	retry map[string]chan struct{}
	// lost holds a cap-1 channel per module: watchHealth signals it when
	// the module's port vanishes, to interrupt a wait for a face or finger.
	lost map[string]chan struct{}
	// spool keeps the base64 biometrics of big requests on disk beside
	// the database while they wait for their handler (see protocol.Spool);
	// nil when the store has no directory.
	spool *protocol.Spool

	inputs hal.DoorInputs // Parts.DoorInputs, or the Door's; nil when none
	pin    pinPad         // PIN entry state (pin.go)
	watch  doorWatch      // door supervision state (supervise.go)
	hooks  chan []string  // feedback hook runs waiting (feedback.go)

	// dl (a one-slot semaphore) serialises download_person,
	// remove_person and module resynchronisation: they change module slots
	// and users and must not interleave.
	dl chan struct{}
}

// New checks cfg and parts and returns an Agent. It does no I/O.
func New(cfg Config, parts Parts) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if parts.Store == nil {
		return nil, fmt.Errorf("%w: Parts.Store is required", ErrConfig)
	}
	if parts.FingerCapacity < 0 {
		return nil, fmt.Errorf("%w: Parts.FingerCapacity %d is negative", ErrConfig, parts.FingerCapacity)
	}
	cfg = cfg.WithDefaults()
	if err := checkTerminalParts(cfg, parts); err != nil {
		return nil, err
	}
	a := &Agent{
		cfg:     cfg,
		parts:   parts,
		log:     cfg.Logger.With().Str(logComponent, "agent").Logger(),
		modules: map[string]ModuleStatus{},
		restart: make(chan struct{}),
		dl:      make(chan struct{}, 1),
		retry:   map[string]chan struct{}{},
		lost:    map[string]chan struct{}{},
		hooks:   make(chan []string, maxHooksWaiting),
	}
	a.inputs = parts.DoorInputs
	if in, ok := parts.Door.(hal.DoorInputs); ok && a.inputs == nil && parts.Door != nil {
		a.inputs = in
	}
	for _, name := range []string{moduleCard, moduleFingerprint, moduleFace, moduleDoor, moduleKeypad, moduleDoorInputs} {
		a.retry[name] = make(chan struct{}, 1)
		a.lost[name] = make(chan struct{}, 1)
	}
	a.spool = newSpool(parts.Store, a.log)
	now := cfg.Now()
	a.linkState, a.linkSince = LinkDown, now
	for name, present := range map[string]bool{
		moduleCard: parts.Card != nil, moduleFingerprint: parts.Fingerprint != nil,
		moduleFace: parts.Face != nil, moduleDoor: parts.Door != nil,
		moduleKeypad: parts.Keypad != nil, moduleDoorInputs: parts.DoorInputs != nil,
		moduleFeedback: parts.Buzzer != nil || parts.Green != nil || parts.Red != nil,
	} {
		st := ModuleAbsent
		if present {
			st = ModuleOK
		}
		a.modules[name] = ModuleStatus{State: st, Since: now}
	}
	a.modules[moduleDatabase] = ModuleStatus{State: ModuleOK, Since: now}
	a.events = newEventQueue(cfg.Events.Queue)
	a.records = newRecordQueue(recordQueueCap)
	a.flushTimeout = flushTimeout
	a.link = newLinkManager(a)
	return a, nil
}

// Module names used in Status.Modules, logs and device events.
const (
	moduleCard        = "card"
	moduleFingerprint = "fingerprint"
	moduleFace        = "face"
	moduleDoor        = "door"
	moduleKeypad      = "keypad"
	// moduleDoorInputs is Parts.DoorInputs (a Door's own inputs report
	// as "door").
	moduleDoorInputs = "door_inputs"
	moduleFeedback   = "feedback"
	// moduleDatabase (records.go) is the outbox's write path.
)

// Log field keys.
const (
	logComponent = "component"
	logModule    = "module"
	logServer    = "server"
	logPerson    = "person_id"
	logSession   = "session_id"
	logMod       = "mod"
	logRecord    = "record_id"
	logAttempt   = "attempt"
	logDelay     = "delay"
)

// Run runs the terminal until ctx is done: the link manager, the uploader
// (while the link is up), the access path for each reader, the writer of
// access records to the outbox, the module supervisors and a health
// watcher for each device that reports its connection (hal.HealthReporter),
// PIN entry on the keypad, the door inputs' supervision and the feedback
// hook's runner. It seeds the
// database with the configured first values, queues a "started" event and
// resynchronises the modules at start. When ctx is done it stops every
// goroutine, then tries for up to 2 s to store the access records still
// in memory (records.go). It returns nil when ctx is cancelled (after every
// goroutine has stopped and no database write is in progress), ErrRestart when the server ordered a
// restart and no hook is configured, or an error when the database cannot
// be read at start. The parts stay open; the caller closes them.
func (a *Agent) Run(ctx context.Context) error {
	now := a.cfg.Now()
	if !a.started.CompareAndSwap(nil, &now) {
		return ErrAlreadyRun
	}
	if err := a.seedOrReadOnly(ctx); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	a.sendEvent(a.cfg.Events.Started, "started "+a.cfg.Device.SoftwareVersion)
	a.reportRecovery()

	var wg sync.WaitGroup
	goRun := func(name string, f func(context.Context)) {
		wg.Go(func() {
			f(ctx)
			a.log.Debug().Str("loop", name).Msg("stopped")
		})
	}
	goRun("link", func(ctx context.Context) { a.link.Run(ctx) })
	goRun("records", a.runRecords)
	goRun("store", a.runStore)
	if a.parts.Card != nil {
		goRun("card", a.runCard)
	}
	if a.parts.Fingerprint != nil {
		goRun("fingerprint", a.runFingerprint)
	}
	if a.parts.Face != nil {
		goRun("face", a.runFace)
	}
	if a.inputs != nil {
		a.initDoorWatch()
		goRun("door", a.runDoorInputs)
	}
	if a.parts.Keypad != nil {
		goRun("keypad", a.runKeypad)
	}
	if a.cfg.Feedback.Hook != "" {
		goRun("feedback hook", a.runFeedbackHooks)
	}
	defer a.stopDoorWatch()
	for name, part := range map[string]any{moduleCard: a.parts.Card, moduleFingerprint: a.parts.Fingerprint,
		moduleFace: a.parts.Face, moduleDoor: a.parts.Door, moduleKeypad: a.parts.Keypad, moduleDoorInputs: a.parts.DoorInputs} {
		if hr, ok := part.(hal.HealthReporter); ok {
			goRun("health "+name, func(ctx context.Context) { a.watchHealth(ctx, name, hr) })
		}
	}

	var err error
	select {
	case <-ctx.Done():
	case <-a.restart:
		err = ErrRestart
	}
	cancel()
	wg.Wait()
	if a.writable() {
		a.flushRecords(ctx) // nothing can add a record any more
	} else if n := a.records.len(); n > 0 {
		// A read-only database will not take them: do not hold the stop.
		a.log.Error().Int("records_not_stored", n).
			Msg("shutdown: access records NOT stored: the database is read-only")
	}
	return err
}

// capacityReporter is implemented by fingerprint drivers that can read the
// module's library size (hal/fingerprint's R30x).
type capacityReporter interface {
	Capacity(ctx context.Context) (int, error)
}

// defaultFingerCapacity is used when neither Parts nor the module say.
const defaultFingerCapacity = 200

// fingerCapacity returns the fingerprint module's number of slots.
func (a *Agent) fingerCapacity(ctx context.Context) int {
	if a.parts.FingerCapacity > 0 {
		return a.parts.FingerCapacity
	}
	if n := a.fingerCap.Load(); n > 0 {
		return int(n)
	}
	if cr, ok := a.parts.Fingerprint.(capacityReporter); ok {
		octx, cancel := context.WithTimeout(ctx, a.cfg.Modules.OpTimeout)
		n, err := cr.Capacity(octx)
		cancel()
		if err == nil && n > 0 {
			a.fingerCap.Store(int64(n))
			return n
		}
	}
	return defaultFingerCapacity
}

// lockModules takes the module lock (dl), waiting for ctx.
func (a *Agent) lockModules(ctx context.Context) error {
	select {
	case a.dl <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: modules busy (resynchronising or enrolling): %w", ErrDevice, ctx.Err())
	}
}

// unlockModules releases the module lock.
func (a *Agent) unlockModules() { <-a.dl }

// requestRestart makes Run return ErrRestart.
func (a *Agent) requestRestart() {
	a.once.Do(func() { close(a.restart) })
}

// setModule records a module's state and reports whether it changed.
func (a *Agent) setModule(name string, st ModuleState, err error) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	old := a.modules[name]
	ms := ModuleStatus{State: st, Since: old.Since}
	if err != nil {
		ms.Error = err.Error()
	}
	changed := old.State != st
	if changed {
		ms.Since = a.cfg.Now()
	}
	a.modules[name] = ms
	return changed
}

// setLink records the link state.
func (a *Agent) setLink(st LinkState, server, local string, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.linkState != st {
		a.linkSince = a.cfg.Now()
	}
	a.linkState = st
	if server != "" {
		a.server = server
	}
	a.localAddr = local
	if err != nil {
		a.lastErr = err.Error()
	}
}

// newSpool returns a spool in the database's directory (persistent
// storage: the strings must not land in a RAM-backed /tmp), or nil when
// the store is not a file or the directory is unusable; big messages are
// then held in memory, as protocol.Decode holds them.
func newSpool(st Store, log zerolog.Logger) *protocol.Spool {
	f, ok := st.(interface{ Path() string })
	if !ok || f.Path() == "" || strings.HasPrefix(f.Path(), ":memory:") || strings.HasPrefix(f.Path(), "file:") {
		return nil
	}
	sp, err := protocol.NewSpool(filepath.Dir(f.Path()), 0)
	if err != nil {
		log.Warn().Err(err).Msg("no spool for big messages: they are held in memory")
		return nil
	}
	return sp
}

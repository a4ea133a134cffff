package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/mattn/go-sqlite3"
	"github.com/rs/zerolog"
)

// Errors returned by the store; callers test them with errors.Is. Driver
// errors are wrapped with what was being done.
var (
	// ErrClosed is returned by every method after Close.
	ErrClosed = errors.New("store: database closed")
	// ErrNotFound means no row matched (person, outbox record).
	ErrNotFound = errors.New("store: not found")
	// ErrInvalid means a value was refused before anything was written
	// (empty key, text too long or not UTF-8, port out of range, blob too
	// large). The wrapped message names the field.
	ErrInvalid = errors.New("store: invalid value")
	// ErrNewerSchema means the database was written by a newer program
	// (it has migrations this one does not know). The file is left as it
	// is: it is not damaged, it must not be downgraded.
	ErrNewerSchema = errors.New("store: database schema is newer than this program")
	// ErrDamaged wraps the reason a database was judged damaged (not a
	// database, malformed, failed integrity check). Open returns it only
	// with Config.ReadOnly; otherwise it moves the file aside and reports
	// it through Recovery.
	ErrDamaged = errors.New("store: database damaged")
	// ErrReadOnly is returned by every write method of a DB opened with
	// Config.ReadOnly, and by such an Open when the schema is older than
	// this program's (it cannot migrate).
	ErrReadOnly = errors.New("store: database opened read-only")
	// ErrOutboxFull is returned by Enqueue when the outbox holds
	// OutboxCapacity records and the policy is Refuse. Nothing was written.
	ErrOutboxFull = errors.New("store: outbox full")
	// ErrNoFreeSlot means every fingerprint slot below the module's
	// capacity is bound to a person or reserved by the transaction.
	ErrNoFreeSlot = errors.New("store: no free fingerprint slot")
	// ErrTxDone is returned by a PersonTx method after Commit or Rollback.
	ErrTxDone = errors.New("store: person transaction already finished")
)

// Durability says when a committed transaction reaches the disk.
type Durability int

const (
	// DurabilityFull (the default) fsyncs the write-ahead log on every
	// commit (synchronous=FULL): once a write method returns, the data
	// survives a crash of the process, the kernel or the power.
	DurabilityFull Durability = iota
	// DurabilityNoFsync does not fsync per commit (WAL with
	// synchronous=NORMAL; the log is synced only at checkpoints). A
	// process crash loses nothing, but a power loss or kernel crash may
	// lose the last commits. For the fleet simulator, which runs many
	// stores on one disk; never for a real terminal.
	DurabilityNoFsync
)

// FullPolicy says what Enqueue does when the outbox is at capacity.
type FullPolicy int

const (
	// DropOldest (the default) accepts the new record and deletes the
	// oldest one (quarantined records first), counts it in
	// OutboxStats.Dropped, logs a warning and calls Config.OnDrop.
	DropOldest FullPolicy = iota
	// Refuse rejects the new record with ErrOutboxFull.
	Refuse
)

// IntegrityCheck says how Open checks an existing database.
type IntegrityCheck int

const (
	// CheckQuick (the default) runs PRAGMA quick_check: every page is
	// read once, indexes are not cross-checked against their tables.
	CheckQuick IntegrityCheck = iota
	// CheckFull runs PRAGMA integrity_check (slower: also verifies that
	// every index matches its table).
	CheckFull
	// CheckNone skips the check; damage is still detected when SQLite
	// reports it while opening or migrating.
	CheckNone
)

// Defaults for the zero values of Config.
const (
	DefaultOutboxCapacity    = 100000
	DefaultMaxAttempts       = 10
	DefaultMaxRecordBytes    = 64 << 10
	DefaultMaxBiometricBytes = 8 << 20
	DefaultBusyTimeout       = 5 * time.Second
	// MaxTextBytes bounds every text field of a person or of the
	// settings (in bytes of UTF-8).
	MaxTextBytes = 1024
	// maxBatch bounds how many Enqueue calls share one transaction.
	maxBatch = 256
)

// Config configures Open. The zero value is a complete configuration.
type Config struct {
	// OutboxCapacity is the most records the outbox holds, quarantined
	// ones included; 0 means DefaultOutboxCapacity.
	OutboxCapacity int
	// WhenFull is the policy when the outbox is at capacity; the zero
	// value is DropOldest.
	WhenFull FullPolicy
	// OnDrop, if set, is called after a commit that dropped n records
	// under DropOldest, before that commit's Enqueue calls return. It runs
	// on the committer goroutine: it must not block nor call Enqueue.
	OnDrop func(n int)
	// MaxAttempts is how many Nacks quarantine a record; 0 means
	// DefaultMaxAttempts.
	MaxAttempts int
	// MaxRecordBytes bounds an outbox record's body; 0 means
	// DefaultMaxRecordBytes.
	MaxRecordBytes int
	// MaxBiometricBytes bounds each biometric blob; 0 means
	// DefaultMaxBiometricBytes.
	MaxBiometricBytes int
	// Durability chooses the fsync policy; the zero value is
	// DurabilityFull.
	Durability Durability
	// BusyTimeout is how long SQLite waits for another process's lock
	// before failing; 0 means DefaultBusyTimeout. (Inside this process
	// writers queue on one connection and never see a busy error.)
	BusyTimeout time.Duration
	// Check is the integrity check run on an existing database at Open;
	// the zero value is CheckQuick.
	Check IntegrityCheck
	// Logger receives the store's events (recovery, drops); the zero
	// value logs nothing.
	Logger zerolog.Logger
	// Now is the clock for timestamps and due times; nil means time.Now.
	Now func() time.Time
	// ReadOnly opens an existing database for reading only, next to a
	// daemon that has it open (a status command): the file is never
	// created, migrated, moved aside or written; a damaged file is an
	// error wrapping ErrDamaged; write methods return ErrReadOnly.
	ReadOnly bool
}

func (c Config) withDefaults() Config {
	if c.OutboxCapacity <= 0 {
		c.OutboxCapacity = DefaultOutboxCapacity
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.MaxRecordBytes <= 0 {
		c.MaxRecordBytes = DefaultMaxRecordBytes
	}
	if c.MaxBiometricBytes <= 0 {
		c.MaxBiometricBytes = DefaultMaxBiometricBytes
	}
	if c.BusyTimeout <= 0 {
		c.BusyTimeout = DefaultBusyTimeout
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Recovery reports that Open found a damaged database, moved it aside and
// started a fresh one.
type Recovery struct {
	// MovedTo is the path the damaged file now has (its -wal and -shm
	// files, if any, were moved alongside with the same suffixes).
	MovedTo string
	// Reason is what was wrong, e.g. "file is not a database".
	Reason string
	// At is when the move happened (Config.Now).
	At time.Time
	// Salvaged counts what was read back from the damaged file into the
	// fresh one; Lost what could not be read (a table whose pages are
	// unreadable counts its unreadable rows, when their number is known,
	// or 1 per unreadable range). See salvage.go.
	Salvaged, Lost SalvageCounts
	// LostCommits counts the committed transactions found whole in a
	// damaged write-ahead log after its damage (a lower bound: the damaged
	// ones are not counted): SQLite cannot replay them, so what they
	// wrote (records, acks, persons) is not in the salvage.
	LostCommits int
}

// Log field keys.
const (
	logComponent = "component"
	logPath      = "path"
	logMovedTo   = "moved_to"
	logDropped   = "dropped"
	logRecordID  = "record_id"
	logAttempts  = "attempts"
)

// DB is the terminal's database. Create it with Open; all methods are safe
// for concurrent use; Close it once when done.
type DB struct {
	path string
	cfg  Config
	log  zerolog.Logger
	now  func() time.Time

	// w is the only writer: one connection, transactions BEGIN IMMEDIATE.
	// wmu is held around every write transaction so that the in-memory
	// outbox counters change together with the rows. While the DB is
	// degraded (see Writable) w is a read-only connection.
	w           *sql.DB
	wmu         sync.Mutex
	depth       int // outbox rows, quarantined included
	quarantined int // outbox rows with quarantined = 1

	// r is the reader pool (query_only): lookups never wait for a writer.
	r *sql.DB
	// rq and wq hold the prepared statements of r and w.
	rq, wq *stmtCache
	// cmu guards the swap of w, r, rq and wq by MakeWritable: readers hold
	// it shared while they start a query; the swap holds it (and wmu)
	// exclusively. degraded is non-empty, the reason, while the file
	// system refuses writes (guarded by cmu).
	cmu      sync.RWMutex
	degraded string

	// personSem (one token) serialises person transactions, deletes and
	// slot allocation, so a slot computed free stays free until commit.
	personSem chan struct{}

	reqs          chan *enqueueReq
	wake          chan struct{}
	closing       chan struct{}
	committerDone chan struct{}
	closeOnce     sync.Once
	closeErr      error

	recovery *Recovery
}

// Open opens (creating if needed) the database at path, checks it, applies
// the embedded migrations and starts the outbox committer. The file and its
// directory are created with modes 0600 and 0700.
//
// A damaged file (not a database, truncated, failing the integrity check)
// never makes Open fail: it is renamed to path+".damaged-<UTC time>" (kept
// for inspection), a fresh database is created, what can still be read from
// the damaged copy (settings, persons, unsent records) is salvaged into it,
// an error event is logged and Recovery reports it. A database with a newer
// schema is refused with ErrNewerSchema and left untouched.
//
// An existing database that cannot be written (a read-only file system, a
// file the process may not write) is opened read-only instead of failing:
// reads work, writes return ErrReadOnly, Writable reports why, and
// MakeWritable switches to read-write once the file system allows it.
// Other errors (a missing file in a read-only directory, disk full while
// creating) are returned as they are.
//
// ctx bounds the opening work only; the DB lives until Close.
func Open(ctx context.Context, path string, cfg Config) (*DB, error) {
	cfg = cfg.withDefaults()
	log := cfg.Logger.With().Str(logComponent, "store").Logger()
	if path == "" || strings.HasPrefix(path, ":memory:") || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("open store %q: %w: need a plain file path", path, ErrInvalid)
	}
	var (
		wal walDamage
		db  *DB
		err error
	)
	if d, bad, werr := checkWAL(path); !cfg.ReadOnly && werr == nil && bad {
		// SQLite would open it without a word and without those commits.
		wal, err = d, fmt.Errorf("%w: %s: %s", ErrDamaged, path, d)
	} else {
		db, err = openFile(ctx, path, cfg, log)
		if err == nil {
			return db, nil
		}
		if !cfg.ReadOnly && writeRefused(err) {
			return openDegraded(ctx, path, cfg, log, err)
		}
		if !errors.Is(err, ErrDamaged) || cfg.ReadOnly {
			return nil, err
		}
	}
	at := cfg.Now()
	moved, mvErr := moveAside(path, at)
	if mvErr != nil {
		return nil, fmt.Errorf("open store %s: %w; moving it aside failed: %v", path, err, mvErr)
	}
	log.Error().Err(err).Str(logPath, path).Str(logMovedTo, moved).
		Msg("damaged database moved aside, starting a fresh one")
	db, err2 := openFile(ctx, path, cfg, log)
	if err2 != nil {
		return nil, fmt.Errorf("open fresh store %s after moving the damaged one to %s: %w", path, moved, err2)
	}
	rec := &Recovery{MovedTo: moved, Reason: err.Error(), At: at, LostCommits: wal.lostCommits}
	rec.Salvaged, rec.Lost = db.salvage(ctx, moved)
	log.Error().Str(logMovedTo, moved).Dict("salvaged", rec.Salvaged.dict()).Dict("lost", rec.Lost.dict()).
		Msg("salvaged what the damaged database still held")
	db.recovery = rec
	return db, nil
}

// Recovery reports whether Open replaced a damaged database, and how.
func (db *DB) Recovery() (Recovery, bool) {
	if db.recovery == nil {
		return Recovery{}, false
	}
	return *db.recovery, true
}

// Path returns the database file's path.
func (db *DB) Path() string { return db.path }

// Close stops the committer (pending Enqueue calls that were not yet taken
// into a transaction fail with ErrClosed), waits for the transaction in
// flight and closes the file. Idempotent; safe to call concurrently with
// other methods, which then fail with ErrClosed.
func (db *DB) Close() error {
	db.closeOnce.Do(func() {
		close(db.closing)
		<-db.committerDone
		// Wait for the write transaction in flight; later ones see closing.
		db.wmu.Lock()
		db.rq.close()
		db.wq.close()
		err := db.r.Close()
		if err2 := db.w.Close(); err == nil {
			err = err2
		}
		db.wmu.Unlock()
		if err != nil {
			db.closeErr = fmt.Errorf("close store %s: %w", db.path, err)
		}
	})
	return db.closeErr
}

// isClosed reports whether Close was called.
func (db *DB) isClosed() bool {
	select {
	case <-db.closing:
		return true
	default:
		return false
	}
}

// dsn builds the connection string. Each pragma is set by the driver on
// every new connection (several are per connection, not per file):
//
//   - _journal_mode=WAL: readers never block the writer nor the writer
//     readers, and a commit appends to the log instead of rewriting pages
//     in place (fewer bytes written: less flash wear).
//   - _synchronous=FULL: in WAL mode, FULL syncs the log on every commit,
//     so a commit that returned survives a power loss. NORMAL (the
//     driver's default for WAL) syncs only at checkpoints and can lose the
//     last commits on power loss: that breaks the outbox's promise, so it
//     is only used for DurabilityNoFsync.
//   - _busy_timeout: another process holding the lock (a backup, the
//     sqlite3 shell) makes us wait this long instead of failing at once.
//   - _foreign_keys=1: biometrics and slot bindings are deleted with their
//     person (ON DELETE CASCADE); SQLite leaves this off by default.
//   - _txlock=immediate (writer): a write transaction takes the write lock
//     at BEGIN, so it can never fail half-way with SQLITE_BUSY on upgrade.
//   - _query_only=1 (readers): the reader pool cannot write by mistake.
//   - mode=ro (Config.ReadOnly, or a degraded DB): SQLite opens the file
//     read-only.
//   - immutable=1 (a degraded DB whose WAL index cannot be created on a
//     read-only file system): SQLite reads the file without any locking,
//     trusting that nobody changes it; the connections are replaced when
//     the DB becomes writable.
func dsn(path string, cfg Config, m connMode) string {
	sync := "FULL"
	if cfg.Durability == DurabilityNoFsync {
		sync = "NORMAL"
	}
	q := fmt.Sprintf("_journal_mode=WAL&_synchronous=%s&_busy_timeout=%d&_foreign_keys=1",
		sync, cfg.BusyTimeout.Milliseconds())
	switch m {
	case connWriter:
		q += "&_txlock=immediate"
	case connReader:
		q += "&_query_only=1"
	case connReadOnly:
		q += "&mode=ro&_query_only=1"
	case connImmutable:
		q = fmt.Sprintf("mode=ro&immutable=1&_query_only=1&_busy_timeout=%d", cfg.BusyTimeout.Milliseconds())
	}
	return "file:" + escapePath(path) + "?" + q
}

// connMode says how dsn opens a connection.
type connMode int

const (
	connWriter    connMode = iota // the read-write writer
	connReader                    // a reader next to the writer
	connReadOnly                  // mode=ro: Config.ReadOnly, or degraded
	connImmutable                 // degraded, no WAL index possible
)

// escapePath escapes the characters that SQLite's URI parser treats
// specially in the path part of a file: URI.
func escapePath(p string) string {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		switch c := p[i]; c {
		case '%', '?', '#':
			fmt.Fprintf(&b, "%%%02X", c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// createFile makes sure path exists as a regular file with mode 0600 before
// SQLite opens it. SQLite creates the -wal and -shm files with the mode of
// the database file, so they are 0600 too; no umask change is needed (the
// umask is process-wide state; changing it would race other goroutines).
func createFile(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create directory for %s: %w", path, err)
	}
	if fi, err := os.Stat(path); err == nil && !fi.Mode().IsRegular() {
		return fmt.Errorf("open store %s: %w: not a regular file", path, ErrInvalid)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("stat %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("open store %s: %w: not a regular file", path, ErrInvalid)
	}
	if fi.Mode().Perm() != 0o600 {
		if err := f.Chmod(0o600); err != nil {
			return fmt.Errorf("chmod %s: %w", path, err)
		}
	}
	return nil
}

// openFile opens path without any recovery; damage is reported as an error
// wrapping ErrDamaged.
func openFile(ctx context.Context, path string, cfg Config, log zerolog.Logger) (*DB, error) {
	wm, rm := connWriter, connReader
	if cfg.ReadOnly {
		wm, rm = connReadOnly, connReadOnly
	}
	return openWith(ctx, path, cfg, log, wm, rm, "")
}

// openWith opens path with its writer connection in mode wm and its readers
// in mode rm, initialises the DB and starts its committer. degraded, if
// not empty, marks the DB read-only for that reason.
func openWith(ctx context.Context, path string, cfg Config, log zerolog.Logger, wm, rm connMode, degraded string) (*DB, error) {
	w, r, err := openConns(ctx, path, cfg, wm, rm)
	if err != nil {
		return nil, err
	}
	db := &DB{
		path:          path,
		cfg:           cfg,
		log:           log,
		now:           cfg.Now,
		w:             w,
		r:             r,
		rq:            newStmtCache(r),
		wq:            newStmtCache(w),
		degraded:      degraded,
		personSem:     make(chan struct{}, 1),
		reqs:          make(chan *enqueueReq),
		wake:          make(chan struct{}, 1),
		closing:       make(chan struct{}),
		committerDone: make(chan struct{}),
	}
	fail := func(what string, err error) (*DB, error) {
		db.rq.close()
		db.wq.close()
		r.Close()
		w.Close()
		return nil, classify(what, path, wm, err)
	}
	if err := prepareWriter(ctx, db.wq); err != nil {
		return fail("prepare store statements", err)
	}
	if err := db.init(ctx); err != nil {
		return fail("initialise store", err)
	}
	go db.committer()
	return db, nil
}

// openConns opens the writer connection (mode wm) and the reader pool (mode
// rm) of path, checking and (for a writer) migrating the database.
func openConns(ctx context.Context, path string, cfg Config, wm, rm connMode) (w, r *sql.DB, err error) {
	if wm != connWriter {
		if _, err := os.Stat(path); err != nil {
			return nil, nil, fmt.Errorf("open store %s read-only: %w", path, err)
		}
	} else if err := createFile(path); err != nil {
		return nil, nil, err
	}
	w, err = sql.Open("sqlite3", dsn(path, cfg, wm))
	if err != nil {
		return nil, nil, fmt.Errorf("open store %s: %w", path, err)
	}
	// One writer connection: writers queue in Go, never in SQLite's busy
	// loop, and the connection lives as long as the DB.
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	fail := func(what string, err error) (*sql.DB, *sql.DB, error) {
		w.Close()
		return nil, nil, classify(what, path, wm, err)
	}
	if err := w.PingContext(ctx); err != nil {
		return fail("open store", err)
	}
	if err := check(ctx, w, cfg.Check); err != nil {
		return fail("check store", err)
	}
	if wm != connWriter {
		if err := checkSchema(ctx, w); err != nil {
			return fail("check store schema", err)
		}
	} else {
		if err := migrate(ctx, w, cfg.Now()); err != nil {
			return fail("migrate store", err)
		}
		for _, sfx := range []string{"-wal", "-shm"} {
			if err := os.Chmod(path+sfx, 0o600); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fail("chmod store", err)
			}
		}
	}
	r, err = sql.Open("sqlite3", dsn(path, cfg, rm))
	if err != nil {
		return fail("open store readers", err)
	}
	r.SetMaxOpenConns(4)
	r.SetMaxIdleConns(4)
	return w, r, nil
}

// classify wraps err from doing what on path: ErrDamaged for a bad file,
// ErrReadOnly for a read-only open of a file that would need writing.
func classify(what, path string, wm connMode, err error) error {
	if isDamage(err) {
		return fmt.Errorf("%w: %s %s: %w", ErrDamaged, what, path, err)
	}
	var se sqlite3.Error
	if wm != connWriter && errors.As(err, &se) && se.Code == sqlite3.ErrReadonly {
		// An empty or never-opened file would need writing.
		return fmt.Errorf("%w: %s %s: %w", ErrReadOnly, what, path, err)
	}
	return fmt.Errorf("%s %s: %w", what, path, err)
}

// init ensures the settings row (with a generated uuid) exists and loads the
// outbox counters.
func (db *DB) init(ctx context.Context) error {
	if !db.cfg.ReadOnly && db.degraded == "" {
		if err := ensureSettings(ctx, db.w); err != nil {
			return err
		}
	}
	var err error
	if db.depth, db.quarantined, err = countOutbox(ctx, db.w); err != nil {
		return err
	}
	if db.depth > 0 {
		db.signal()
	}
	return nil
}

// countOutbox counts the outbox rows and the quarantined ones among them.
func countOutbox(ctx context.Context, c *sql.DB) (depth, quarantined int, err error) {
	err = c.QueryRowContext(ctx, `SELECT count(*), coalesce(sum(quarantined), 0) FROM outbox`).Scan(&depth, &quarantined)
	if err != nil {
		return 0, 0, fmt.Errorf("count outbox: %w", err)
	}
	return depth, quarantined, nil
}

// check runs the configured integrity check.
func check(ctx context.Context, w *sql.DB, c IntegrityCheck) error {
	var pragma string
	switch c {
	case CheckNone:
		return nil
	case CheckFull:
		pragma = "PRAGMA integrity_check(20)"
	default:
		pragma = "PRAGMA quick_check(20)"
	}
	rows, err := w.QueryContext(ctx, pragma)
	if err != nil {
		return err
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return err
		}
		if s != "ok" {
			problems = append(problems, s)
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: integrity check: %s", ErrDamaged, strings.Join(problems, "; "))
	}
	return nil
}

// isDamage reports whether err says the file itself is bad (as opposed to
// permissions, a full disk or a newer schema).
func isDamage(err error) bool {
	if errors.Is(err, ErrDamaged) {
		return true
	}
	var se sqlite3.Error
	if errors.As(err, &se) {
		return se.Code == sqlite3.ErrCorrupt || se.Code == sqlite3.ErrNotADB
	}
	return false
}

// moveAside renames path (and its -wal and -shm files, which must not be
// applied to a fresh database) to a timestamped name that does not exist yet.
func moveAside(path string, at time.Time) (string, error) {
	base := path + ".damaged-" + at.UTC().Format("20060102T150405Z")
	dst := base
	for i := 1; ; i++ {
		if _, err := os.Lstat(dst); errors.Is(err, os.ErrNotExist) {
			break
		}
		dst = fmt.Sprintf("%s.%d", base, i)
	}
	if err := os.Rename(path, dst); err != nil {
		return "", err
	}
	for _, sfx := range []string{"-wal", "-shm"} {
		if err := os.Rename(path+sfx, dst+sfx); err != nil && !errors.Is(err, os.ErrNotExist) {
			return dst, err
		}
	}
	// Make the renames durable before a fresh file takes the old name.
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return dst, nil
}

// writeTx runs fn in one write transaction under the writer lock; after a
// successful commit it runs after (still under the lock) so in-memory
// counters change with the rows.
func (db *DB) writeTx(ctx context.Context, fn func(tx *sql.Tx) error, after func()) error {
	if db.isClosed() {
		return ErrClosed
	}
	db.wmu.Lock()
	defer db.wmu.Unlock()
	if db.isClosed() {
		return ErrClosed
	}
	if err := db.refuseWrite(); err != nil {
		return err
	}
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	if after != nil {
		after()
	}
	return nil
}

// lockPersons takes the person lock, waiting for ctx.
func (db *DB) lockPersons(ctx context.Context) error {
	if db.isClosed() {
		return ErrClosed
	}
	if err := db.refuseWrite(); err != nil {
		return err
	}
	select {
	case db.personSem <- struct{}{}:
		if db.isClosed() {
			<-db.personSem
			return ErrClosed
		}
		return nil
	case <-db.closing:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (db *DB) unlockPersons() { <-db.personSem }

// Checkpoint copies the write-ahead log into the database file and
// truncates the log (PRAGMA wal_checkpoint(TRUNCATE)). SQLite checkpoints
// by itself every 1000 pages; call this before a backup or to measure.
func (db *DB) Checkpoint(ctx context.Context) error {
	if db.isClosed() {
		return ErrClosed
	}
	db.wmu.Lock()
	defer db.wmu.Unlock()
	if err := db.refuseWrite(); err != nil {
		return err
	}
	if _, err := db.w.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		return fmt.Errorf("checkpoint %s: %w", db.path, err)
	}
	return nil
}

// IntegrityCheck runs PRAGMA integrity_check on the open database and
// returns an error wrapping ErrDamaged listing the first problems, or nil.
func (db *DB) IntegrityCheck(ctx context.Context) error {
	if db.isClosed() {
		return ErrClosed
	}
	db.cmu.RLock()
	r := db.r
	db.cmu.RUnlock()
	if err := check(ctx, r, CheckFull); err != nil {
		return fmt.Errorf("check store %s: %w", db.path, err)
	}
	return nil
}

// unixNano stores a time as nanoseconds since the epoch; the zero time is 0.
func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// fromUnixNano is the inverse of unixNano.
func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

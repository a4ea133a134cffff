package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/mattn/go-sqlite3"
	"github.com/rs/zerolog"
)

// A terminal whose file system turned read-only (a flash error, a remount
// by the kernel, a read-only image at boot) must keep deciding accesses
// from the persons it holds. So Open, when the file cannot be written,
// opens it read-only instead of failing ("degraded"):
//
//   - reads (persons, settings, the outbox) work as usual;
//   - every write returns an error wrapping ErrReadOnly with the reason;
//   - Writable reports the state and the reason;
//   - MakeWritable reopens the file for writing once the file system
//     allows it (the caller retries it with backoff); on success the DB is
//     as if opened normally, and Wake is signalled if records wait.

// writeRefused reports whether err says the file system or the file
// refuses writes (as opposed to damage or a missing file).
func writeRefused(err error) bool {
	if errors.Is(err, syscall.EROFS) || errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM) {
		return true
	}
	var se sqlite3.Error
	if errors.As(err, &se) {
		return se.Code == sqlite3.ErrReadonly || se.Code == sqlite3.ErrCantOpen
	}
	return false
}

// openDegraded opens path read-only after the read-write open failed with
// cause. It tries mode=ro first (which reads a write-ahead log left by a
// crash), then immutable=1 (needed when the file system cannot hold the
// WAL index of a cleanly closed database).
func openDegraded(ctx context.Context, path string, cfg Config, log zerolog.Logger, cause error) (*DB, error) {
	reason := cause.Error()
	db, err := openWith(ctx, path, cfg, log, connReadOnly, connReadOnly, reason)
	if err != nil {
		var err2 error
		db, err2 = openWith(ctx, path, cfg, log, connImmutable, connImmutable, reason)
		if err2 != nil {
			return nil, fmt.Errorf("%w; opening it read-only failed too: %w", cause, err2)
		}
	}
	log.Error().Err(cause).Str(logPath, path).
		Msg("database cannot be written: opened READ-ONLY (persons readable, records not stored until it is writable again)")
	return db, nil
}

// Writable reports whether the database takes writes. When it does not, it
// also returns why: Config.ReadOnly, or the file system refused writes at
// Open (see MakeWritable).
func (db *DB) Writable() (bool, string) {
	if db.cfg.ReadOnly {
		return false, "opened read-only by configuration"
	}
	db.cmu.RLock()
	defer db.cmu.RUnlock()
	return db.writableLocked()
}

// writableLocked is Writable with cmu held.
func (db *DB) writableLocked() (bool, string) { return db.degraded == "", db.degraded }

// refuseWrite returns an error wrapping ErrReadOnly if the DB does not take
// writes now, else nil.
func (db *DB) refuseWrite() error {
	if db.cfg.ReadOnly {
		return ErrReadOnly
	}
	db.cmu.RLock()
	d := db.degraded
	db.cmu.RUnlock()
	if d != "" {
		return fmt.Errorf("%w (degraded: %s)", ErrReadOnly, d)
	}
	return nil
}

// MakeWritable tries to reopen a database that Open had to open read-only
// for writing: it returns nil once the DB takes writes (at once if it
// already did), or the reason it still cannot (the DB stays read-only and
// usable). It waits for the write in flight, if any; reads go on. Call it
// again later (with backoff) after an error. ErrReadOnly with
// Config.ReadOnly.
func (db *DB) MakeWritable(ctx context.Context) error {
	if db.cfg.ReadOnly {
		return ErrReadOnly
	}
	db.wmu.Lock()
	defer db.wmu.Unlock()
	if db.isClosed() {
		return ErrClosed
	}
	if ok, _ := db.Writable(); ok {
		return nil
	}
	// Cheap test first: the old connections are closed only when the file
	// can be opened for writing.
	if f, err := os.OpenFile(db.path, os.O_RDWR, 0); err != nil {
		return fmt.Errorf("make store %s writable: %w", db.path, err)
	} else {
		f.Close()
	}
	probe, err := os.CreateTemp(filepath.Dir(db.path), ".writable-*")
	if err != nil {
		return fmt.Errorf("make store %s writable: %w", db.path, err)
	}
	probe.Close()
	os.Remove(probe.Name())

	// SQLite shares a file's WAL index between the connections of a
	// process: the read-only ones must be closed before a writer opens, or
	// the writer inherits their read-only mapping.
	db.cmu.Lock()
	defer db.cmu.Unlock()
	db.rq.close()
	db.wq.close()
	db.r.Close() // waits for the queries started on it
	db.w.Close()
	w, r, wq, depth, quarantined, err := openWritable(ctx, db.path, db.cfg)
	if err != nil {
		// Back to read-only, as Open left it.
		for _, m := range []connMode{connReadOnly, connImmutable} {
			w2, r2, err2 := openConns(ctx, db.path, db.cfg, m, m)
			if err2 == nil {
				db.w, db.r, db.rq, db.wq = w2, r2, newStmtCache(r2), newStmtCache(w2)
				prepareWriter(ctx, db.wq)
				break
			}
		}
		return fmt.Errorf("make store %s writable: %w", db.path, err)
	}
	db.w, db.r, db.rq, db.wq = w, r, newStmtCache(r), wq
	db.depth, db.quarantined = depth, quarantined
	db.degraded = ""
	db.log.Warn().Str(logPath, db.path).Msg("database writable again")
	if depth > 0 {
		db.signal()
	}
	return nil
}

// openWritable opens path read-write and prepares what a DB needs: the
// writer statements, the settings row and the outbox counters.
func openWritable(ctx context.Context, path string, cfg Config) (w, r *sql.DB, wq *stmtCache, depth, quarantined int, err error) {
	w, r, err = openConns(ctx, path, cfg, connWriter, connReader)
	if err != nil {
		return nil, nil, nil, 0, 0, err
	}
	wq = newStmtCache(w)
	err = prepareWriter(ctx, wq)
	if err == nil {
		err = ensureSettings(ctx, w)
	}
	if err == nil {
		depth, quarantined, err = countOutbox(ctx, w)
	}
	if err != nil {
		wq.close()
		r.Close()
		w.Close()
		return nil, nil, nil, 0, 0, err
	}
	return w, r, wq, depth, quarantined, nil
}

package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
)

// stmtCache prepares each query text once per pool and keeps it (the
// store's queries are a fixed set of constants): a hot lookup skips
// SQLite's parser and planner.
type stmtCache struct {
	pool *sql.DB
	mu   sync.Mutex
	m    map[string]*sql.Stmt
}

func newStmtCache(pool *sql.DB) *stmtCache {
	return &stmtCache{pool: pool, m: make(map[string]*sql.Stmt)}
}

// get returns the prepared statement for q, preparing it on first use.
func (c *stmtCache) get(ctx context.Context, q string) (*sql.Stmt, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.m[q]; ok {
		return s, nil
	}
	s, err := c.pool.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	c.m[q] = s
	return s, nil
}

// close closes every statement.
func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for q, s := range c.m {
		s.Close()
		delete(c.m, q)
	}
}

// errRow is a row whose Scan returns the error that prevented the query.
type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// readRow runs a single-row query on the reader pool.
func (db *DB) readRow(ctx context.Context, q string, args ...any) scanner {
	db.cmu.RLock()
	defer db.cmu.RUnlock()
	s, err := db.rq.get(ctx, q)
	if err != nil {
		return errRow{db.closedOr(err)}
	}
	return closedRow{db, s.QueryRowContext(ctx, args...)}
}

// closedRow reports ErrClosed for a query cut off by Close.
type closedRow struct {
	db  *DB
	row *sql.Row
}

func (r closedRow) Scan(dest ...any) error { return r.db.closedOr(r.row.Scan(dest...)) }

// closedOr returns ErrClosed instead of err when err came from Close
// pulling the statements or connections away.
func (db *DB) closedOr(err error) error {
	if err != nil && !errors.Is(err, sql.ErrNoRows) && db.isClosed() {
		return ErrClosed
	}
	return err
}

// read runs a query on the reader pool.
func (db *DB) read(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	db.cmu.RLock()
	defer db.cmu.RUnlock()
	s, err := db.rq.get(ctx, q)
	if err != nil {
		return nil, db.closedOr(err)
	}
	rows, err := s.QueryContext(ctx, args...)
	return rows, db.closedOr(err)
}

// writerQueries are prepared on the writer when the DB opens: inside a
// write transaction the one writer connection is taken, so a statement
// cannot be prepared on the pool there.
var writerQueries = []string{qInsertRecord, qAckRecords}

// prepareWriter prepares writerQueries in wq.
func prepareWriter(ctx context.Context, wq *stmtCache) error {
	for _, q := range writerQueries {
		if _, err := wq.get(ctx, q); err != nil {
			return fmt.Errorf("prepare %q: %w", q, err)
		}
	}
	return nil
}

// txStmt returns the writer statement for q (one of writerQueries) bound
// to tx.
func (db *DB) txStmt(ctx context.Context, tx *sql.Tx, q string) (*sql.Stmt, error) {
	db.wq.mu.Lock()
	s, ok := db.wq.m[q]
	db.wq.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("store: statement not prepared at open: %q", q)
	}
	return tx.StmtContext(ctx, s), nil
}

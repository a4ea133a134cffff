package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Record is one access record in the outbox. The store does not interpret
// Body (the agent puts the access_info JSON there).
type Record struct {
	// ID is assigned by Enqueue, increasing, never reused.
	ID int64
	// SessionID is the session_id the record is uploaded with, on every
	// attempt and after every restart. Enqueue assigns a fresh UUID if the
	// caller leaves it empty.
	SessionID string
	// Body is the record's payload, at most Config.MaxRecordBytes.
	Body []byte
	// CreatedAt is when Enqueue stored it (Config.Now).
	CreatedAt time.Time
	// Attempts counts the Nacks so far.
	Attempts int
	// NextTry is when the record is due again after a Nack (zero: due now).
	NextTry time.Time
	// Quarantined reports that the record failed MaxAttempts times; it is
	// kept and counted but Peek skips it.
	Quarantined bool
	// LastError is the reason given with the last Nack.
	LastError string
}

// OutboxStats describes the outbox.
type OutboxStats struct {
	// Depth is the number of records waiting to be sent (not quarantined).
	Depth int
	// Quarantined is the number of quarantined records.
	Quarantined int
	// Capacity is Config.OutboxCapacity; Depth+Quarantined never exceeds it.
	Capacity int
	// Oldest is the creation time of the oldest waiting record (zero when
	// Depth is 0).
	Oldest time.Time
	// NextDue is the earliest NextTry of the records waiting for a retry
	// (zero when none is): when Peek returns nothing, sleep until then or
	// until Wake.
	NextDue time.Time
	// Dropped counts the records dropped by DropOldest since the database
	// was created (it survives restarts).
	Dropped int64
}

// Writer statements, prepared at Open (see writerQueries).
const (
	qInsertRecord = `INSERT INTO outbox (session_id, body, created_at, next_try) VALUES (?, ?, ?, ?)`
	qAckRecords   = `DELETE FROM outbox WHERE id IN (SELECT value FROM json_each(?)) RETURNING quarantined`
)

type enqueueReq struct {
	ctx  context.Context // the caller's: a request it gave up on before its insert is not stored
	rec  Record
	hold time.Duration // not due before CreatedAt + hold (0: due at once)
	done chan error    // buffered: the committer never blocks on it
}

// Enqueue stores rec (its Body and, if set, SessionID) as a new outbox
// record and returns it with ID, SessionID and CreatedAt filled in, once the
// transaction holding it is committed (durable per Config.Durability).
// Concurrent calls share a transaction (group commit). When the outbox is
// full, Refuse returns ErrOutboxFull and DropOldest drops the oldest
// records. If ctx ends first, Enqueue returns ctx.Err(); the record is then
// not stored if its transaction had not begun (it waited for the write
// lock or for earlier batches), and may or may not be if the commit was
// under way. Signals Wake after the commit.
func (db *DB) Enqueue(ctx context.Context, rec Record) (Record, error) {
	return db.EnqueueHeld(ctx, rec, 0)
}

// EnqueueHeld is Enqueue for a record that must not be sent yet: it is
// stored durably but Peek skips it until hold has passed (its NextTry is
// CreatedAt + hold) or Release makes it due. The agent holds the record of
// a door opening until the relay has switched, so that the record is on
// disk before the door opens and yet never sent for a door that did not
// open (it deletes the record with Ack then). A hold that expires, after a
// power cut say, makes the record due like any other. A negative hold is
// ErrInvalid.
func (db *DB) EnqueueHeld(ctx context.Context, rec Record, hold time.Duration) (Record, error) {
	if hold < 0 {
		return Record{}, fmt.Errorf("enqueue: %w: negative hold %v", ErrInvalid, hold)
	}
	if err := db.refuseWrite(); err != nil {
		return Record{}, fmt.Errorf("enqueue: %w", err)
	}
	if len(rec.Body) == 0 {
		return Record{}, fmt.Errorf("enqueue: %w: empty body", ErrInvalid)
	}
	if len(rec.Body) > db.cfg.MaxRecordBytes {
		return Record{}, fmt.Errorf("enqueue: %w: body is %d bytes, at most %d", ErrInvalid, len(rec.Body), db.cfg.MaxRecordBytes)
	}
	if rec.SessionID == "" {
		rec.SessionID = uuid.NewString()
	} else if len(rec.SessionID) > 128 || !utf8.ValidString(rec.SessionID) {
		return Record{}, fmt.Errorf("enqueue: %w: session_id must be valid UTF-8 of at most 128 bytes", ErrInvalid)
	}
	rec.ID, rec.Attempts, rec.NextTry, rec.Quarantined, rec.LastError = 0, 0, time.Time{}, false, ""
	req := &enqueueReq{ctx: ctx, rec: rec, hold: hold, done: make(chan error, 1)}
	select {
	case db.reqs <- req:
	case <-db.closing:
		return Record{}, fmt.Errorf("enqueue: %w", ErrClosed)
	case <-ctx.Done():
		return Record{}, fmt.Errorf("enqueue: %w", ctx.Err())
	}
	select {
	case err := <-req.done:
		if err != nil {
			return Record{}, fmt.Errorf("enqueue: %w", err)
		}
		return req.rec, nil
	case <-ctx.Done():
		return Record{}, fmt.Errorf("enqueue: %w", ctx.Err())
	}
}

// committer takes Enqueue requests and commits them in batches: it takes
// one, then every request already waiting (up to maxBatch), and writes
// them in one transaction. While it commits, new requests queue up for
// the next batch, so under load many records share one fsync.
func (db *DB) committer() {
	defer close(db.committerDone)
	batch := make([]*enqueueReq, 0, maxBatch)
	for {
		batch = batch[:0]
		select {
		case r := <-db.reqs:
			batch = append(batch, r)
		case <-db.closing:
			return
		}
	fill:
		for len(batch) < maxBatch {
			select {
			case r := <-db.reqs:
				batch = append(batch, r)
			default:
				break fill
			}
		}
		db.commitBatch(batch)
	}
}

// commitBatch writes one batch and answers each request.
func (db *DB) commitBatch(batch []*enqueueReq) {
	accept := batch
	var refused, abandoned []*enqueueReq
	dropped := 0
	var dropQ int
	now := db.now()
	ctx := context.Background()
	err := db.writeTx(ctx, func(tx *sql.Tx) error {
		// A caller that gave up while the batch waited for the write lock
		// (another process holding it, a slow disk) has had its ctx's
		// error: its record is not stored behind its back.
		accept, abandoned = accept[:0:0], abandoned[:0]
		for _, r := range batch {
			if r.ctx.Err() != nil {
				abandoned = append(abandoned, r)
			} else {
				accept = append(accept, r)
			}
		}
		// Count under the writer lock (writeTx holds it).
		if db.cfg.WhenFull == Refuse {
			room := max(db.cfg.OutboxCapacity-db.depth, 0)
			if room < len(accept) {
				accept, refused = accept[:room], accept[room:]
			}
		}
		if len(accept) == 0 {
			return nil
		}
		stmt, err := db.txStmt(ctx, tx, qInsertRecord)
		if err != nil {
			return err
		}
		for _, r := range accept {
			r.rec.CreatedAt, r.rec.NextTry = now, time.Time{}
			if r.hold > 0 {
				r.rec.NextTry = now.Add(r.hold)
			}
			res, err := stmt.ExecContext(ctx, r.rec.SessionID, r.rec.Body, now.UnixNano(), unixNano(r.rec.NextTry))
			if err != nil {
				return err
			}
			if r.rec.ID, err = res.LastInsertId(); err != nil {
				return err
			}
		}
		if over := db.depth + len(accept) - db.cfg.OutboxCapacity; over > 0 {
			dropped, dropQ, err = dropOldest(ctx, tx, over)
			if err != nil {
				return err
			}
		}
		return nil
	}, func() {
		db.depth += len(accept) - dropped
		db.quarantined -= dropQ
	})
	for _, r := range refused {
		r.done <- ErrOutboxFull
	}
	for _, r := range abandoned {
		r.done <- r.ctx.Err()
	}
	if err != nil {
		if !errors.Is(err, ErrClosed) {
			err = fmt.Errorf("commit %d records: %w", len(accept), err)
		}
		for _, r := range accept {
			r.done <- err
		}
		return
	}
	if dropped > 0 {
		db.log.Warn().Int(logDropped, dropped).Msg("outbox full: dropped the oldest records")
		if db.cfg.OnDrop != nil {
			db.cfg.OnDrop(dropped)
		}
	}
	for _, r := range accept {
		r.done <- nil
	}
	if len(accept) > 0 {
		db.signal()
	}
}

// dropOldest deletes the n oldest records, quarantined ones first, and
// counts them; it returns how many it deleted and how many of those were
// quarantined.
func dropOldest(ctx context.Context, tx *sql.Tx, n int) (int, int, error) {
	rows, err := tx.QueryContext(ctx, `DELETE FROM outbox WHERE id IN
		(SELECT id FROM outbox ORDER BY quarantined DESC, id LIMIT ?) RETURNING quarantined`, n)
	if err != nil {
		return 0, 0, err
	}
	deleted, quarantined := 0, 0
	for rows.Next() {
		var q int
		if err := rows.Scan(&q); err != nil {
			rows.Close()
			return 0, 0, err
		}
		deleted++
		quarantined += q
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, 0, err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE counters SET value = value + ? WHERE name = 'outbox_dropped'`, deleted); err != nil {
		return 0, 0, err
	}
	return deleted, quarantined, nil
}

// signal wakes the uploader without ever blocking.
func (db *DB) signal() {
	select {
	case db.wake <- struct{}{}:
	default:
	}
}

// Wake returns a channel that receives after records were enqueued or
// requeued (and once at Open if the outbox is not empty). It has room for
// one signal and is never closed: several commits while nobody listens
// leave one signal. One consumer (the uploader) should receive from it.
func (db *DB) Wake() <-chan struct{} { return db.wake }

const recordCols = `id, session_id, body, created_at, attempts, next_try, quarantined, last_error`

func scanRecords(rows *sql.Rows) ([]Record, error) {
	defer rows.Close()
	var out []Record
	for rows.Next() {
		var r Record
		var created, next int64
		if err := rows.Scan(&r.ID, &r.SessionID, &r.Body, &created, &r.Attempts, &next, &r.Quarantined, &r.LastError); err != nil {
			return nil, err
		}
		r.CreatedAt, r.NextTry = fromUnixNano(created), fromUnixNano(next)
		out = append(out, r)
	}
	return out, rows.Err()
}

// Peek returns up to n records that are due (NextTry at or before now, by
// Config.Now), oldest first, skipping quarantined ones. It removes
// nothing: a record leaves the outbox only through Ack (or DropOldest).
// Calling Peek again before Ack/Nack returns the same records.
func (db *DB) Peek(ctx context.Context, n int) ([]Record, error) {
	if db.isClosed() {
		return nil, ErrClosed
	}
	if n <= 0 {
		return nil, nil
	}
	rows, err := db.read(ctx, `SELECT `+recordCols+` FROM outbox
		WHERE quarantined = 0 AND next_try <= ? ORDER BY id LIMIT ?`, db.now().UnixNano(), n)
	if err != nil {
		return nil, fmt.Errorf("peek outbox: %w", err)
	}
	recs, err := scanRecords(rows)
	if err != nil {
		return nil, fmt.Errorf("peek outbox: %w", err)
	}
	return recs, nil
}

// Quarantined returns up to n quarantined records, oldest first.
func (db *DB) Quarantined(ctx context.Context, n int) ([]Record, error) {
	if db.isClosed() {
		return nil, ErrClosed
	}
	rows, err := db.read(ctx, `SELECT `+recordCols+` FROM outbox WHERE quarantined = 1 ORDER BY id LIMIT ?`, n)
	if err != nil {
		return nil, fmt.Errorf("list quarantined: %w", err)
	}
	recs, err := scanRecords(rows)
	if err != nil {
		return nil, fmt.Errorf("list quarantined: %w", err)
	}
	return recs, nil
}

// idsJSON renders ids as a JSON array for json_each: one constant
// statement for any number of ids, and only integers reach SQLite.
func idsJSON(ids []int64) string {
	b := make([]byte, 0, 2+len(ids)*8)
	b = append(b, '[')
	for i, id := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, id, 10)
	}
	return string(append(b, ']'))
}

// Ack removes the records with ids (the server accepted them), durably, in
// one transaction. Unknown ids (already acked, dropped) are ignored.
func (db *DB) Ack(ctx context.Context, ids ...int64) error {
	if len(ids) == 0 {
		return nil
	}
	var deleted, deletedQ int
	err := db.writeTx(ctx, func(tx *sql.Tx) error {
		deleted, deletedQ = 0, 0
		stmt, err := db.txStmt(ctx, tx, qAckRecords)
		if err != nil {
			return err
		}
		rows, err := stmt.QueryContext(ctx, idsJSON(ids))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var q int
			if err := rows.Scan(&q); err != nil {
				return err
			}
			deleted++
			deletedQ += q
		}
		return rows.Err()
	}, func() {
		db.depth -= deleted
		db.quarantined -= deletedQ
	})
	if err != nil {
		return fmt.Errorf("ack %d records: %w", len(ids), err)
	}
	return nil
}

// Nack records a failed attempt for record id: the server refused it (a
// non-zero code). Do not Nack when the link failed — that is no fault of
// the record; just retry later. The record is due again at nextTry; after
// Config.MaxAttempts Nacks it is quarantined (kept, counted, skipped by
// Peek). reason is kept as LastError (truncated to MaxTextBytes).
// Returns whether the record is now quarantined; ErrNotFound if id is not
// in the outbox.
func (db *DB) Nack(ctx context.Context, id int64, nextTry time.Time, reason string) (bool, error) {
	reason = strings.ToValidUTF8(reason, "\uFFFD")
	if len(reason) > MaxTextBytes {
		cut := MaxTextBytes
		for cut > 0 && !utf8.RuneStart(reason[cut]) {
			cut--
		}
		reason = reason[:cut]
	}
	var quarantined, was bool
	var attempts int
	err := db.writeTx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT attempts, quarantined FROM outbox WHERE id = ?`, id).Scan(&attempts, &was)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		attempts++
		quarantined = was || attempts >= db.cfg.MaxAttempts
		next := unixNano(nextTry)
		if quarantined {
			next = 0 // out of the retry index
		}
		_, err = tx.ExecContext(ctx, `UPDATE outbox SET attempts = ?, next_try = ?, quarantined = ?, last_error = ?
			WHERE id = ?`, attempts, next, quarantined, reason, id)
		return err
	}, func() {
		if quarantined && !was {
			db.quarantined++
		}
	})
	if err != nil {
		return false, fmt.Errorf("nack record %d: %w", id, err)
	}
	if quarantined && !was {
		db.log.Warn().Int64(logRecordID, id).Int(logAttempts, attempts).Msg("outbox record quarantined")
	}
	return quarantined, nil
}

// Release makes the held records with ids (see EnqueueHeld) due now and
// signals Wake. Records already due, retrying after a Nack, quarantined or
// gone are left as they are.
func (db *DB) Release(ctx context.Context, ids ...int64) error {
	if len(ids) == 0 {
		return nil
	}
	err := db.writeTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE outbox SET next_try = 0
			WHERE attempts = 0 AND quarantined = 0 AND id IN (SELECT value FROM json_each(?))`, idsJSON(ids))
		return err
	}, func() {})
	if err != nil {
		return fmt.Errorf("release %d records: %w", len(ids), err)
	}
	db.signal()
	return nil
}

// Requeue takes quarantined (or retrying) records back into the queue:
// attempts reset, due now. Unknown ids are ignored. Signals Wake.
func (db *DB) Requeue(ctx context.Context, ids ...int64) error {
	if len(ids) == 0 {
		return nil
	}
	var released int
	err := db.writeTx(ctx, func(tx *sql.Tx) error {
		list := idsJSON(ids)
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM outbox WHERE quarantined = 1
			AND id IN (SELECT value FROM json_each(?))`, list).Scan(&released); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE outbox SET attempts = 0, next_try = 0, quarantined = 0
			WHERE id IN (SELECT value FROM json_each(?))`, list)
		return err
	}, func() { db.quarantined -= released })
	if err != nil {
		return fmt.Errorf("requeue %d records: %w", len(ids), err)
	}
	db.signal()
	return nil
}

// RetryQuarantined gives every quarantined record one more try: it is due
// now, and one more refusal quarantines it again (its attempts are set to
// Config.MaxAttempts-1); an Ack removes it. Call it on a slow schedule and
// after the link to the server comes back (the refusal may have been the
// server's fault). Returns how many records it released; signals Wake.
func (db *DB) RetryQuarantined(ctx context.Context) (int, error) {
	n, err := db.unquarantine(ctx, db.cfg.MaxAttempts-1)
	if err != nil {
		return 0, fmt.Errorf("retry quarantined records: %w", err)
	}
	return n, nil
}

// Unquarantine releases every quarantined record for good (an operator's
// decision): attempts reset, due now, Config.MaxAttempts more tries.
// Returns how many; signals Wake.
func (db *DB) Unquarantine(ctx context.Context) (int, error) {
	n, err := db.unquarantine(ctx, 0)
	if err != nil {
		return 0, fmt.Errorf("release quarantined records: %w", err)
	}
	return n, nil
}

// unquarantine makes every quarantined record due now with attempts set.
func (db *DB) unquarantine(ctx context.Context, attempts int) (int, error) {
	var n int64
	err := db.writeTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE outbox SET quarantined = 0, attempts = ?, next_try = 0
			WHERE quarantined = 1`, attempts)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	}, func() { db.quarantined -= int(n) })
	if err != nil {
		return 0, err
	}
	if n > 0 {
		db.log.Info().Int64("records", n).Msg("quarantined records released for another try")
		db.signal()
	}
	return int(n), nil
}

// OutboxStats returns the outbox's counters and times.
func (db *DB) OutboxStats(ctx context.Context) (OutboxStats, error) {
	if db.isClosed() {
		return OutboxStats{}, ErrClosed
	}
	db.wmu.Lock()
	st := OutboxStats{Depth: db.depth - db.quarantined, Quarantined: db.quarantined, Capacity: db.cfg.OutboxCapacity}
	db.wmu.Unlock()
	if db.cfg.ReadOnly {
		// Another process writes: count the rows instead.
		var depth, quarantined int
		if err := db.readRow(ctx, `SELECT count(*), coalesce(sum(quarantined), 0) FROM outbox`).Scan(&depth, &quarantined); err != nil {
			return OutboxStats{}, fmt.Errorf("outbox stats: %w", err)
		}
		st.Depth, st.Quarantined = depth-quarantined, quarantined
	}
	var oldest, next sql.NullInt64
	err := db.readRow(ctx, `SELECT
		(SELECT created_at FROM outbox WHERE quarantined = 0 ORDER BY id LIMIT 1),
		(SELECT min(next_try) FROM outbox WHERE next_try > 0 AND quarantined = 0),
		(SELECT value FROM counters WHERE name = 'outbox_dropped')`).Scan(&oldest, &next, &st.Dropped)
	if err != nil {
		return OutboxStats{}, fmt.Errorf("outbox stats: %w", err)
	}
	st.Oldest, st.NextDue = fromUnixNano(oldest.Int64), fromUnixNano(next.Int64)
	return st, nil
}

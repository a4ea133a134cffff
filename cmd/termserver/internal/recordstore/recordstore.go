// Package recordstore is termserver's record database: the access records
// terminals upload, kept once per session_id in SQLite, and the names of
// the persons the server pushed. Add commits concurrent uploads in shared
// transactions (group commit).
//
// Import rule: a leaf of cmd/termserver; it imports nothing of the
// project.
package recordstore

import (
	"context"
	"database/sql"
	_ "embed"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"time"

	_ "github.com/mattn/go-sqlite3" // database/sql driver "sqlite3" (cgo)
)

//go:embed schema.sql
var schemaSQL string

// Errors of the record store, wrapped with what was being done.
var (
	// ErrClosed is returned by Add after Close, and to the Adds still
	// queued when Close stopped the writer.
	ErrClosed = errors.New("recordstore: closed")
	// ErrNoSessionID means a record has no session_id to store it by.
	ErrNoSessionID = errors.New("recordstore: record has no session_id")
)

// Record is one access record as the server stores it: the terminal's
// upload_access_info plus where and when it arrived.
type Record struct {
	// ID is the server's row id (ascending in arrival order).
	ID int64 `json:"id"`
	// SessionID is the upload's session_id, unique across all terminals.
	SessionID string `json:"session_id"`
	// Terminal is the uploading terminal's device_info.uuid ("" if the
	// terminal never answered get_device_info).
	Terminal string `json:"terminal"`
	// Remote is the terminal's remote address when it uploaded.
	Remote string `json:"remote"`
	// The access_info fields as the terminal sent them.
	PersonID      string `json:"person_id"`
	Time          string `json:"time"` // terminal local time, YYYYMMDDhhmmss
	IDNumber      string `json:"id_number"`
	CardNumber    string `json:"card_number"`
	Role          int    `json:"role"`
	OpenDoorType  int    `json:"open_door_type"`
	InOutType     int    `json:"in_out_type"`
	CommunityCode string `json:"community_code"`
	// Received is when the server stored the record (UTC).
	Received time.Time `json:"received"`
	// PersonName is the name this server last pushed for PersonID; ""
	// when it never pushed that person.
	PersonName string `json:"person_name,omitempty"`
}

// FormatTime returns the record's time as "2006-01-02 15:04:05", or as
// the terminal sent it when that is not YYYYMMDDhhmmss.
func (r Record) FormatTime() string {
	t, err := time.Parse("20060102150405", r.Time)
	if err != nil {
		return r.Time
	}
	return t.Format(time.DateTime)
}

// Store is the server's SQLite record table. Add batches concurrent
// inserts into one transaction so a thousand terminals do not mean a
// thousand commits a second. Safe for concurrent use; Close once.
type Store struct {
	db   *sql.DB
	adds chan addReq
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// maxBatch bounds how many uploads share one transaction.
const maxBatch = 512

type addReq struct {
	rec   Record
	reply chan addResult // buffered 1
}

type addResult struct {
	dup bool
	err error
}

// Open opens (creating if needed, mode 0600) the record database at path
// and applies the schema. relaxed trades durability for CPU (see
// below); a reference server leaves it false. The caller closes it.
func Open(path string, relaxed bool) (*Store, error) {
	if f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600); err != nil {
		return nil, fmt.Errorf("create record database %s: %w", path, err)
	} else {
		f.Close()
	}
	// _journal_mode=WAL: readers (list, export) never block the writer.
	// _synchronous=FULL: a commit is on disk (WAL fsynced) before Add
	// returns, so a record is never acknowledged to a terminal (which
	// then deletes it) and lost to a power cut here; the writer batches
	// concurrent uploads so one fsync serves many. relaxed uses NORMAL:
	// no fsync per commit (a power cut may lose the last acknowledged
	// records; never corrupts), for load tests that measure terminals.
	// _busy_timeout=5000: wait up to 5 s for a lock instead of failing.
	// _foreign_keys=on: no foreign keys today; on so future ones hold.
	synchronous := "FULL"
	if relaxed {
		synchronous = "NORMAL"
	}
	dsn := "file:" + path + "?_journal_mode=WAL&_synchronous=" + synchronous + "&_busy_timeout=5000&_foreign_keys=on"
	db, err := sql.Open("sqlite3", dsn)
	if err != nil {
		return nil, fmt.Errorf("open record database %s: %w", path, err)
	}
	if _, err := db.Exec(schemaSQL); err != nil {
		db.Close()
		return nil, fmt.Errorf("apply schema to %s: %w", path, err)
	}
	r := &Store{
		db:   db,
		adds: make(chan addReq, maxBatch),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	go r.writer()
	return r, nil
}

// Close stops the writer (pending Adds fail with ErrClosed) and closes the
// database. Idempotent.
func (r *Store) Close() error {
	var err error
	r.once.Do(func() {
		close(r.stop)
		<-r.done
		err = r.db.Close()
	})
	return err
}

// Add stores rec unless a record with its SessionID is already stored, in
// which case it reports dup. It returns once the record is committed (or
// known to be a duplicate), ctx is done or the store is closed.
func (r *Store) Add(ctx context.Context, rec Record) (dup bool, err error) {
	if rec.SessionID == "" {
		return false, fmt.Errorf("store record: %w", ErrNoSessionID)
	}
	req := addReq{rec: rec, reply: make(chan addResult, 1)}
	select {
	case <-r.stop:
		return false, ErrClosed
	default:
	}
	select {
	case r.adds <- req:
	case <-r.stop:
		return false, ErrClosed
	case <-ctx.Done():
		return false, ctx.Err()
	}
	select {
	case res := <-req.reply:
		return res.dup, res.err
	case <-r.done:
		// The writer stopped; it may have answered just before.
		select {
		case res := <-req.reply:
			return res.dup, res.err
		default:
			return false, ErrClosed
		}
	case <-ctx.Done():
		return false, ctx.Err()
	}
}

// writer commits queued Adds in batches until Close.
func (r *Store) writer() {
	defer close(r.done)
	batch := make([]addReq, 0, maxBatch)
	for {
		select {
		case <-r.stop:
			r.failQueued()
			return
		case req := <-r.adds:
			batch = append(batch[:0], req)
		}
	fill:
		for len(batch) < maxBatch {
			select {
			case req := <-r.adds:
				batch = append(batch, req)
			default:
				break fill
			}
		}
		r.commit(batch)
	}
}

func (r *Store) failQueued() {
	for {
		select {
		case req := <-r.adds:
			req.reply <- addResult{err: ErrClosed}
		default:
			return
		}
	}
}

const insertRecord = `INSERT OR IGNORE INTO records
	(session_id, terminal, remote, person_id, time, id_number, card_number,
	 role, open_door_type, in_out_type, community_code, received)
	VALUES (?,?,?,?,?,?,?,?,?,?,?,?)`

// commit inserts batch in one transaction and answers every request.
func (r *Store) commit(batch []addReq) {
	results := make([]addResult, len(batch))
	err := func() error {
		tx, err := r.db.Begin()
		if err != nil {
			return fmt.Errorf("begin: %w", err)
		}
		defer tx.Rollback()
		stmt, err := tx.Prepare(insertRecord)
		if err != nil {
			return fmt.Errorf("prepare insert: %w", err)
		}
		defer stmt.Close()
		now := time.Now().UTC()
		for i, req := range batch {
			c := req.rec
			res, err := stmt.Exec(c.SessionID, c.Terminal, c.Remote, c.PersonID, c.Time,
				c.IDNumber, c.CardNumber, c.Role, c.OpenDoorType, c.InOutType,
				c.CommunityCode, now.Format(time.RFC3339Nano))
			if err != nil {
				return fmt.Errorf("insert record %s: %w", c.SessionID, err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return fmt.Errorf("insert record %s: %w", c.SessionID, err)
			}
			results[i].dup = n == 0
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("commit %d records: %w", len(batch), err)
		}
		return nil
	}()
	for i, req := range batch {
		if err != nil {
			results[i] = addResult{err: err}
		}
		req.reply <- results[i]
	}
}

// SetPersonName remembers name as person id's name (shown by List).
func (r *Store) SetPersonName(ctx context.Context, id, name string) error {
	_, err := r.db.ExecContext(ctx, `INSERT INTO persons (person_id, person_name) VALUES (?, ?)
		ON CONFLICT (person_id) DO UPDATE SET person_name = excluded.person_name`, id, name)
	if err != nil {
		return fmt.Errorf("remember person %s: %w", id, err)
	}
	return nil
}

// Filter selects records for List and Each. Zero fields select everything.
type Filter struct {
	// Terminal keeps only records from terminals whose uuid starts with
	// Terminal (a whole uuid or a prefix, as the other commands take).
	Terminal string
	// Newest keeps the last Limit records instead of the first (still
	// returned in ascending ID order).
	Newest bool
	// AfterID keeps only records with ID > AfterID (for paging).
	AfterID int64
	// Limit caps the number of records; 0 means no limit.
	Limit int
}

// List returns the records matching f in ascending ID order.
func (r *Store) List(ctx context.Context, f Filter) ([]Record, error) {
	var out []Record
	err := r.Each(ctx, f, func(rec Record) error {
		out = append(out, rec)
		return nil
	})
	return out, err
}

// Each calls fn for each record matching f in ascending ID order, stopping
// at fn's first error.
func (r *Store) Each(ctx context.Context, f Filter, fn func(Record) error) error {
	order := "ASC"
	if f.Newest && f.Limit > 0 {
		order = "DESC"
	}
	q := `SELECT r.id, r.session_id, r.terminal, r.remote, r.person_id, r.time, r.id_number,
		r.card_number, r.role, r.open_door_type, r.in_out_type, r.community_code, r.received,
		coalesce(p.person_name, '')
		FROM records r LEFT JOIN persons p ON p.person_id = r.person_id
		WHERE r.id > ? AND substr(r.terminal, 1, length(?)) = ? ORDER BY r.id ` + order
	args := []any{f.AfterID, f.Terminal, f.Terminal}
	if f.Limit > 0 {
		q += ` LIMIT ?`
		args = append(args, f.Limit)
	}
	if order == "DESC" {
		q = `SELECT * FROM (` + q + `) ORDER BY 1 ASC`
	}
	rows, err := r.db.QueryContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("list records: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var rec Record
		var received string
		if err := rows.Scan(&rec.ID, &rec.SessionID, &rec.Terminal, &rec.Remote,
			&rec.PersonID, &rec.Time, &rec.IDNumber, &rec.CardNumber, &rec.Role,
			&rec.OpenDoorType, &rec.InOutType, &rec.CommunityCode, &received, &rec.PersonName); err != nil {
			return fmt.Errorf("list records: %w", err)
		}
		rec.Received, _ = time.Parse(time.RFC3339Nano, received)
		if err := fn(rec); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("list records: %w", err)
	}
	return nil
}

// Count returns how many records are stored (for terminal, or all when "").
func (r *Store) Count(ctx context.Context, terminal string) (int, error) {
	var n int
	err := r.db.QueryRowContext(ctx,
		`SELECT count(*) FROM records WHERE ? = '' OR terminal = ?`, terminal, terminal).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count records: %w", err)
	}
	return n, nil
}

// csvHeader is the first line of an export.
var csvHeader = []string{"id", "session_id", "terminal", "remote", "person_id", "time",
	"id_number", "card_number", "role", "open_door_type", "in_out_type",
	"community_code", "received", "person_name"}

// WriteCSV writes recs as CSV with a header line.
func WriteCSV(w io.Writer, recs []Record) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(csvHeader); err != nil {
		return fmt.Errorf("write csv: %w", err)
	}
	for _, c := range recs {
		row := []string{strconv.FormatInt(c.ID, 10), c.SessionID, c.Terminal, c.Remote,
			c.PersonID, c.Time, c.IDNumber, c.CardNumber, strconv.Itoa(c.Role),
			strconv.Itoa(c.OpenDoorType), strconv.Itoa(c.InOutType), c.CommunityCode,
			c.Received.Format(time.RFC3339Nano), c.PersonName}
		if err := cw.Write(row); err != nil {
			return fmt.Errorf("write csv: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("write csv: %w", err)
	}
	return nil
}

package store

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/rs/zerolog"
)

// A damaged database is moved aside, never thrown away, and a fresh one
// takes its place (Open). Damage is usually local — a few pages of a flash
// block, a torn header — so most rows of the old file can still be read.
// salvage reads them back, table by table and rowid range by rowid range,
// skipping what fails:
//
//   - the settings row (keeping the terminal's uuid and server address);
//   - persons, their biometrics and fingerprint slot bindings;
//   - unsent outbox records with their ids, session_ids (so a record the
//     server already has is recognised as a resend), attempts and
//     quarantine state.
//
// If the file's 100-byte header itself is unreadable ("file is not a
// database"), a copy with a rebuilt header is read instead. What cannot be
// read is counted in Recovery.Lost; the caller should tell the server, so
// it can push the persons again.

// SalvageCounts counts rows per table, for Recovery.
type SalvageCounts struct {
	Settings    int `json:"settings"` // 0 or 1
	Persons     int `json:"persons"`
	Biometrics  int `json:"biometrics"`
	FingerSlots int `json:"finger_slots"`
	Records     int `json:"records"` // outbox records, quarantined ones included
}

// Total is the sum of every count.
func (c SalvageCounts) Total() int {
	return c.Settings + c.Persons + c.Biometrics + c.FingerSlots + c.Records
}

// String renders the counts for logs and device events.
func (c SalvageCounts) String() string {
	return fmt.Sprintf("settings %d, persons %d, biometrics %d, finger slots %d, records %d",
		c.Settings, c.Persons, c.Biometrics, c.FingerSlots, c.Records)
}

func (c SalvageCounts) dict() *zerolog.Event {
	return zerolog.Dict().Int("settings", c.Settings).Int("persons", c.Persons).Int("biometrics", c.Biometrics).
		Int("finger_slots", c.FingerSlots).Int("records", c.Records)
}

// salvageChunk is how many rowids one range query covers; a range that
// fails is read again one rowid at a time.
const salvageChunk = 256

// salvage copies what can be read from the damaged file at moved into db
// (fresh, empty) and returns the counts salvaged and lost. It never fails:
// whatever goes wrong is lost.
func (db *DB) salvage(ctx context.Context, moved string) (got, lost SalvageCounts) {
	src, cleanup, err := openSalvageSource(ctx, moved)
	if err != nil {
		db.log.Error().Err(err).Str(logMovedTo, moved).Msg("salvage: the damaged database cannot be read at all")
		lost.Settings = 1
		return got, lost
	}
	defer cleanup()
	db.wmu.Lock()
	defer db.wmu.Unlock()
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		db.log.Error().Err(err).Msg("salvage: begin")
		return SalvageCounts{}, lost
	}
	defer tx.Rollback()

	// Settings: one row, id 1.
	row := src.QueryRowContext(ctx, `SELECT `+settingsCols+` FROM settings WHERE id = 1`)
	if s, err := scanSettings(row); err != nil {
		lost.Settings = 1
	} else if err := saveSettings(ctx, tx, s); err != nil {
		lost.Settings = 1
	} else {
		got.Settings = 1
	}

	var persons []string
	got.Persons, lost.Persons = copyRows(ctx, src, tx, "persons",
		`person_id, name, id_number, card_number, key_number, department_number, role, bio_kinds, face_user, updated_at`,
		func(vals []any) { persons = append(persons, asString(vals[0])) })
	bioCols := `person_id, kind, format, width, height, data, chunked_size`
	if probe, err := src.QueryContext(ctx, `SELECT chunked_size FROM biometrics LIMIT 0`); err != nil {
		bioCols = `person_id, kind, format, width, height, data` // written before chunks existed
	} else {
		probe.Close() // the source has one connection
	}
	for _, p := range persons {
		rows, err := src.QueryContext(ctx, `SELECT `+bioCols+` FROM biometrics WHERE person_id = ?`, p)
		if err != nil {
			lost.Biometrics++
			continue
		}
		var chunked [][]any
		n, l := insertRows(ctx, rows, tx, "biometrics", len(splitCols(bioCols)), bioCols, func(vals []any) {
			if len(vals) > 6 && asInt(vals[6]) > 0 {
				chunked = append(chunked, vals)
			}
		})
		for _, v := range chunked {
			if !copyChunks(ctx, src, tx, asString(v[0]), asInt(v[1]), asInt(v[6])) {
				n--
				l++
			}
		}
		got.Biometrics += n
		lost.Biometrics += l
	}
	// A person whose biometric rows were lost must not claim them.
	if _, err := tx.ExecContext(ctx, `UPDATE persons SET bio_kinds =
		(SELECT coalesce(sum(1 << kind), 0) FROM biometrics b WHERE b.person_id = persons.person_id)`); err != nil {
		db.log.Error().Err(err).Msg("salvage: biometric kinds")
	}
	got.FingerSlots, lost.FingerSlots = copyRows(ctx, src, tx, "finger_slots", `slot, person_id, hand`, nil)
	got.Records, lost.Records = copyRows(ctx, src, tx, "outbox",
		`id, session_id, body, created_at, attempts, next_try, quarantined, last_error`, nil)
	if err := tx.Commit(); err != nil {
		db.log.Error().Err(err).Msg("salvage: commit")
		return SalvageCounts{}, lost
	}
	db.depth, db.quarantined, err = countOutbox(ctx, db.w)
	if err != nil {
		db.log.Error().Err(err).Msg("salvage: count outbox")
	}
	if db.depth > 0 {
		db.signal()
	}
	return got, lost
}

// openSalvageSource opens the damaged file read-only. If SQLite refuses it
// as "not a database" (a scribbled header), it reads a private copy whose
// header is rebuilt instead. cleanup closes it (and removes the copy).
func openSalvageSource(ctx context.Context, path string) (*sql.DB, func(), error) {
	open := func(p string) (*sql.DB, error) {
		c, err := sql.Open("sqlite3", "file:"+escapePath(p)+"?mode=ro&_query_only=1")
		if err != nil {
			return nil, err
		}
		c.SetMaxOpenConns(1)
		if err := c.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master`).Scan(new(int)); err != nil {
			c.Close()
			return nil, err
		}
		return c, nil
	}
	c, err := open(path)
	if err == nil {
		return c, func() { c.Close() }, nil
	}
	for _, pageSize := range []int{4096, 1024, 2048, 8192, 16384, 32768, 65536} {
		cp := path + ".salvage"
		if err2 := copyWithHeader(path, cp, pageSize); err2 != nil {
			return nil, nil, fmt.Errorf("%w; rebuilding its header: %w", err, err2)
		}
		if c, err2 := open(cp); err2 == nil {
			return c, func() { c.Close(); removeDB(cp) }, nil
		}
		removeDB(cp)
	}
	return nil, nil, err
}

// removeDB removes a database file and its -wal and -shm files.
func removeDB(p string) {
	for _, sfx := range []string{"", "-wal", "-shm"} {
		os.Remove(p + sfx)
	}
}

// copyWithHeader copies src to dst (0600), replacing its first 100 bytes by
// a valid SQLite header for pageSize (UTF-8, no free list: free pages
// become unused, which reading does not mind). The WAL, if any, is not
// copied: its salt would not match the new header.
func copyWithHeader(src, dst string, pageSize int) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer out.Close()
	if _, err := io.Copy(out, in); err != nil {
		return err
	}
	var h [100]byte
	copy(h[:], "SQLite format 3\x00")
	ps := uint16(pageSize)
	if pageSize == 65536 {
		ps = 1
	}
	binary.BigEndian.PutUint16(h[16:], ps)
	h[18], h[19] = 1, 1 // legacy journal: no WAL index needed to read
	h[21], h[22], h[23] = 64, 32, 32
	binary.BigEndian.PutUint32(h[24:], 1) // change counter
	binary.BigEndian.PutUint32(h[28:], 0) // size: from the file's length
	binary.BigEndian.PutUint32(h[40:], 1) // schema cookie
	binary.BigEndian.PutUint32(h[44:], 4) // schema format
	binary.BigEndian.PutUint32(h[56:], 1) // UTF-8
	binary.BigEndian.PutUint32(h[92:], 1) // version-valid-for
	binary.BigEndian.PutUint32(h[96:], 3046000)
	_, err = out.WriteAt(h[:], 0)
	return err
}

// copyRows copies the rows of table (columns cols, the first one's rowid
// order) from src into tx, range by range; a range that fails is retried
// row by row, and a row that fails is counted as lost. each, if set, sees
// every row copied.
func copyRows(ctx context.Context, src *sql.DB, tx *sql.Tx, table, cols string, each func([]any)) (got, lost int) {
	var maxID sql.NullInt64
	if err := src.QueryRowContext(ctx, `SELECT max(rowid) FROM `+table).Scan(&maxID); err != nil {
		// The table's right edge is unreadable: walk forward from the
		// start as far as the rows read.
		maxID = sql.NullInt64{}
		if err := src.QueryRowContext(ctx, `SELECT count(*) FROM `+table).Scan(new(int)); err != nil {
			lost++
		}
	}
	ncols := len(splitCols(cols))
	sel := `SELECT ` + cols + ` FROM ` + table + ` WHERE rowid >= ? AND rowid < ? ORDER BY rowid`
	limit := maxID.Int64
	if !maxID.Valid {
		limit = 1 << 20 // a bound for a table without a readable end
	}
	for lo := int64(1); lo <= limit; lo += salvageChunk {
		rows, err := src.QueryContext(ctx, sel, lo, lo+salvageChunk)
		if err == nil {
			n, l := insertRows(ctx, rows, tx, table, ncols, cols, each)
			if l == 0 {
				got += n
				continue
			}
			// The range broke part-way: the rows copied stay (INSERT OR
			// IGNORE makes the row-by-row pass skip them).
			got += n
		}
		for id := lo; id < lo+salvageChunk && id <= limit; id++ {
			rows, err := src.QueryContext(ctx, sel, id, id+1)
			if err != nil {
				lost++
				continue
			}
			n, l := insertRows(ctx, rows, tx, table, ncols, cols, each)
			got += n
			lost += l
		}
	}
	return got, lost
}

// insertRows inserts every row of rows (ncols columns) into table; it
// returns how many were inserted (a row already there is not counted) and 1
// lost if reading failed part-way.
func insertRows(ctx context.Context, rows *sql.Rows, tx *sql.Tx, table string, ncols int, cols string, each func([]any)) (got, lost int) {
	defer rows.Close()
	ph := "?"
	for i := 1; i < ncols; i++ {
		ph += ", ?"
	}
	ins := `INSERT OR IGNORE INTO ` + table + ` (` + cols + `) VALUES (` + ph + `)`
	for rows.Next() {
		vals := make([]any, ncols)
		ptrs := make([]any, ncols)
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return got, lost + 1
		}
		res, err := tx.ExecContext(ctx, ins, vals...)
		if err != nil {
			lost++
			continue
		}
		if n, _ := res.RowsAffected(); n == 1 {
			got++
			if each != nil {
				each(vals)
			}
		}
	}
	if err := rows.Err(); err != nil && !errors.Is(err, context.Canceled) {
		lost++
	}
	return got, lost
}

// splitCols splits a column list "a, b, c".
func splitCols(cols string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(cols); i++ {
		if i == len(cols) || cols[i] == ',' {
			out = append(out, cols[start:i])
			start = i + 1
		}
	}
	return out
}

// asString converts a scanned TEXT or BLOB value to a string.
func asString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case []byte:
		return string(x)
	}
	return fmt.Sprint(v)
}

// copyChunks copies the chunks of one chunked biometric (size bytes in
// all) into tx. Unless every chunk reads, in sequence, and they add up to
// size, it copies none and deletes the biometric's row from tx: a template
// or photo with a part missing must not reach a module. It reports whether
// the biometric was kept.
func copyChunks(ctx context.Context, src *sql.DB, tx *sql.Tx, person string, kind, size int64) bool {
	drop := func() bool {
		tx.ExecContext(ctx, `DELETE FROM biometrics WHERE person_id = ? AND kind = ?`, person, kind)
		return false
	}
	rows, err := src.QueryContext(ctx, `SELECT seq, data FROM biometric_chunks WHERE person_id = ? AND kind = ? ORDER BY seq`, person, kind)
	if err != nil {
		return drop()
	}
	defer rows.Close()
	var total, want int64
	for rows.Next() {
		var seq int64
		var data []byte
		if err := rows.Scan(&seq, &data); err != nil || seq != want {
			return drop()
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO biometric_chunks (person_id, kind, seq, data) VALUES (?, ?, ?, ?)`,
			person, kind, seq, data); err != nil {
			return drop()
		}
		total += int64(len(data))
		want++
	}
	if rows.Err() != nil || total != size {
		return drop()
	}
	return true
}

// asInt returns a salvaged integer column's value (0 if it is not one).
func asInt(v any) int64 {
	n, _ := v.(int64)
	return n
}

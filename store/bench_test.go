package store

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
)

// benchBody is a typical access_info JSON body.
var benchBody = []byte(`{"person_id":"P00042","time":"20261127081500","id_number":"110101199001010042",` +
	`"card_number":"0001000042","role":1,"open_door_type":1,"in_out_type":1,"community_code":"C-17"}`)

// bareTable has the outbox's columns, without the store around it.
const bareTable = `CREATE TABLE IF NOT EXISTS bare (
	id INTEGER PRIMARY KEY AUTOINCREMENT, session_id TEXT NOT NULL, body BLOB NOT NULL,
	created_at INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_try INTEGER NOT NULL DEFAULT 0,
	quarantined INTEGER NOT NULL DEFAULT 0, last_error TEXT NOT NULL DEFAULT '')`

// benchDB opens a store in a temp dir, with the bare table created.
func benchDB(b *testing.B) *DB {
	b.Helper()
	db, err := Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"), Config{OutboxCapacity: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	if _, err := db.w.Exec(bareTable); err != nil {
		b.Fatal(err)
	}
	return db
}

// writeBytes returns this process's write_bytes and wchar from /proc/self/io
// (bytes sent to the block layer, bytes passed to write calls).
func writeBytes(b *testing.B) (disk, wchar int64) {
	f, err := os.Open("/proc/self/io")
	if err != nil {
		b.Skipf("no /proc/self/io: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ": ")
		n, _ := strconv.ParseInt(v, 10, 64)
		switch k {
		case "write_bytes":
			disk = n
		case "wchar":
			wchar = n
		}
	}
	return disk, wchar
}

// ioMeter reports bytes written per record, checkpoint included.
type ioMeter struct{ disk, wchar int64 }

func startIO(b *testing.B) ioMeter {
	d, w := writeBytes(b)
	return ioMeter{d, w}
}

// perRecord returns the disk and write() bytes per record since m,
// after a checkpoint so the copy into the database file counts too.
func (m ioMeter) perRecord(b *testing.B, db *DB, records int) (disk, wchar float64) {
	if err := db.Checkpoint(context.Background()); err != nil {
		b.Fatal(err)
	}
	d, w := writeBytes(b)
	return float64(d-m.disk) / float64(records), float64(w-m.wchar) / float64(records)
}

// run is one measured pass: rate in records/s and bytes per record.
type run struct{ rate, disk, wchar float64 }

// bareInsert inserts n rows one autocommit INSERT at a time from `writers`
// goroutines, with the store's pragmas (the baseline).
func bareInsert(b *testing.B, n, writers int) run {
	db := benchDB(b)
	stmt, err := db.w.Prepare(`INSERT INTO bare (session_id, body, created_at) VALUES (?, ?, ?)`)
	if err != nil {
		b.Fatal(err)
	}
	defer stmt.Close()
	m := startIO(b)
	start := time.Now()
	parallel(n, writers, func() {
		if _, err := stmt.Exec(uuid.NewString(), benchBody, time.Now().UnixNano()); err != nil {
			b.Error(err)
		}
	})
	r := run{rate: float64(n) / time.Since(start).Seconds()}
	r.disk, r.wchar = m.perRecord(b, db, n)
	return r
}

// enqueue enqueues n records from `writers` goroutines.
func enqueue(b *testing.B, n, writers int) run {
	db := benchDB(b)
	ctx := context.Background()
	m := startIO(b)
	start := time.Now()
	parallel(n, writers, func() {
		if _, err := db.Enqueue(ctx, Record{Body: benchBody}); err != nil {
			b.Error(err)
		}
	})
	r := run{rate: float64(n) / time.Since(start).Seconds()}
	r.disk, r.wchar = m.perRecord(b, db, n)
	return r
}

// parallel runs n calls of fn spread over w goroutines.
func parallel(n, w int, fn func()) {
	var wg sync.WaitGroup
	for g := 0; g < w; g++ {
		share := n / w
		if g < n%w {
			share++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < share; i++ {
				fn()
			}
		}()
	}
	wg.Wait()
}

// BenchmarkEnqueue measures durable enqueues (synchronous=FULL, one fsync
// per commit) one at a time and from 8 writers. Each run first measures, with
// the timer stopped, the baseline: a bare autocommit INSERT of the same row
// with the same pragmas, one at a time, b.N rows (x_vs_bare: goal >= 0.8).
// disk_B/rec is /proc/self/io write_bytes per record, checkpoint included
// (goal <= 16 KiB single, less grouped); write_B/rec counts write() calls.
func BenchmarkEnqueue(b *testing.B) {
	for _, writers := range []int{1, 8} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			b.StopTimer()
			base := bareInsert(b, b.N, 1)
			b.StartTimer()
			r := enqueue(b, b.N, writers)
			b.StopTimer()
			b.ReportMetric(r.rate, "rec/s")
			b.ReportMetric(base.rate, "bare_rec/s")
			b.ReportMetric(r.rate/base.rate, "x_vs_bare")
			b.ReportMetric(r.disk, "disk_B/rec")
			b.ReportMetric(base.disk, "bare_disk_B/rec")
			b.ReportMetric(r.wchar, "write_B/rec")
		})
	}
}

// fillOutbox puts n records in the outbox in one transaction.
func fillOutbox(b *testing.B, db *DB, table string, n int) {
	tx, err := db.w.Begin()
	if err != nil {
		b.Fatal(err)
	}
	stmt, err := tx.Prepare(`INSERT INTO ` + table + ` (session_id, body, created_at) VALUES (?, ?, ?)`)
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < n; i++ {
		if _, err := stmt.Exec(uuid.NewString(), benchBody, int64(i+1)); err != nil {
			b.Fatal(err)
		}
	}
	stmt.Close()
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	db.wmu.Lock()
	if table == "outbox" {
		db.depth += n
	}
	db.wmu.Unlock()
}

const peekBatch = 32

// peekAck drains n records with Peek(32) + Ack; returns records/s.
func peekAck(b *testing.B, n int) float64 {
	db := benchDB(b)
	ctx := context.Background()
	fillOutbox(b, db, "outbox", n)
	start := time.Now()
	for done := 0; done < n; {
		recs, err := db.Peek(ctx, peekBatch)
		if err != nil || len(recs) == 0 {
			b.Fatalf("peek after %d: %d records, %v", done, len(recs), err)
		}
		if err := db.Ack(ctx, ids(recs)...); err != nil {
			b.Fatal(err)
		}
		done += len(recs)
	}
	return float64(n) / time.Since(start).Seconds()
}

// barePeekAck does the same with a bare SELECT and DELETE.
func barePeekAck(b *testing.B, n int) float64 {
	db := benchDB(b)
	fillOutbox(b, db, "bare", n)
	sel, err := db.r.Prepare(`SELECT id, session_id, body, created_at, attempts, next_try, quarantined, last_error
		FROM bare WHERE quarantined = 0 AND next_try <= ? ORDER BY id LIMIT ?`)
	if err != nil {
		b.Fatal(err)
	}
	defer sel.Close()
	start := time.Now()
	for done := 0; done < n; {
		rows, err := sel.Query(time.Now().UnixNano(), peekBatch)
		if err != nil {
			b.Fatal(err)
		}
		recs, err := scanRecords(rows)
		if err != nil || len(recs) == 0 {
			b.Fatalf("bare peek: %d, %v", len(recs), err)
		}
		if _, err := db.w.Exec(`DELETE FROM bare WHERE id IN (` + idList(ids(recs)) + `)`); err != nil {
			b.Fatal(err)
		}
		done += len(recs)
	}
	return float64(n) / time.Since(start).Seconds()
}

// BenchmarkPeekAck measures draining the outbox by Peek(32) + Ack (one
// durable transaction per batch) against a bare SELECT + DELETE of the same
// rows with the same pragmas, measured first in the same run.
func BenchmarkPeekAck(b *testing.B) {
	b.StopTimer()
	base := barePeekAck(b, b.N)
	b.StartTimer()
	rate := peekAck(b, b.N)
	b.StopTimer()
	b.ReportMetric(rate, "rec/s")
	b.ReportMetric(base, "bare_rec/s")
	b.ReportMetric(rate/base, "x_vs_bare")
}

// BenchmarkCardLookup50k measures PersonByCard latency with 50,000 persons
// enrolled (each with a face and a template blob), p50 and p99 (goal: p99 <
// 1 ms), against a bare indexed SELECT of the person_id in the same run.
func BenchmarkCardLookup50k(b *testing.B) {
	const n = 50000
	db := benchDB(b)
	start := time.Now()
	bulkPersons(b, db, n)
	b.Logf("populated %d persons in %v", n, time.Since(start).Round(time.Millisecond))
	cards := make([]string, n)
	for i := range cards {
		cards[i] = testPerson(i).CardNumber
	}
	ctx := context.Background()
	measure := func(b *testing.B, lookup func(card string) error) (p50, p99 time.Duration) {
		rng := rand.New(rand.NewPCG(1, 2))
		lat := make([]time.Duration, b.N)
		b.ResetTimer()
		for i := range lat {
			card := cards[rng.IntN(n)]
			t0 := time.Now()
			if err := lookup(card); err != nil {
				b.Fatal(err)
			}
			lat[i] = time.Since(t0)
		}
		b.StopTimer()
		slices.Sort(lat)
		p50, p99 = lat[len(lat)/2], lat[len(lat)*99/100]
		b.ReportMetric(float64(p50.Nanoseconds())/1e3, "p50_µs")
		b.ReportMetric(float64(p99.Nanoseconds())/1e3, "p99_µs")
		return p50, p99
	}
	var bare50, bare99 time.Duration
	b.Run("bare_select", func(b *testing.B) {
		stmt, err := db.r.Prepare(`SELECT person_id FROM persons WHERE card_number = ? AND card_number <> ''`)
		if err != nil {
			b.Fatal(err)
		}
		defer stmt.Close()
		bare50, bare99 = measure(b, func(card string) error {
			var id string
			return stmt.QueryRow(card).Scan(&id)
		})
	})
	b.Run("PersonByCard", func(b *testing.B) {
		p50, p99 := measure(b, func(card string) error {
			p, err := db.PersonByCard(ctx, card)
			if err == nil && p.CardNumber != card {
				err = fmt.Errorf("card %s gave %+v", card, p)
			}
			return err
		})
		if bare50 > 0 {
			b.ReportMetric(float64(p50)/float64(bare50), "p50_x_vs_bare")
			b.ReportMetric(float64(p99)/float64(bare99), "p99_x_vs_bare")
		}
	})
}

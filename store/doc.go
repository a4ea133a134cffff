// Package store keeps the terminal's state in one SQLite file: the device
// settings, the persons the server downloaded (with their biometrics and
// their bindings to the fingerprint and face modules), and the durable
// outbox of access records waiting for the server's acknowledgement.
//
// The protocol it serves is described in protocol/PROTOCOL.md (device_info,
// download_person, upload_access_info); the store itself knows nothing of
// the protocol: an outbox record's body is opaque bytes.
//
// Import rule: store imports neither agent, hal nor protocol. The agent
// declares the small interfaces it needs and *store.DB satisfies them; only
// cmd/ builds a DB from configuration.
//
// # Using the package
//
//	db, err := store.Open(ctx, "/var/lib/termagent/termagent.db", store.Config{
//		OutboxCapacity: 100000,
//		Logger:         log,
//	})
//	if err != nil { ... }                 // never for a damaged file: that is moved aside
//	defer db.Close()
//	if r, ok := db.Recovery(); ok { ... } // report r.MovedTo, r.Reason, r.Salvaged, r.Lost
//	if ok, why := db.Writable(); !ok { ... } // read-only file system: retry db.MakeWritable(ctx)
//
//	// Settings: seeded from configuration once, then owned by the server.
//	s, err := db.SeedDeviceInfo(ctx, store.Settings{ServerIP: "10.0.0.2", ServerPort: 9000})
//	s, err = db.UpdateDeviceInfo(ctx, func(s *store.Settings) error { s.Address = "gate"; return nil })
//	s, err = db.MoveServer(ctx, ip, port) // then ConfirmServer, or RevertServer on failure
//
//	// Outbox: Enqueue returns once the record is on disk.
//	rec, err := db.Enqueue(ctx, store.Record{Body: accessInfoJSON})
//
//	// The uploader: send what Peek returns, Ack or Nack, sleep on Wake.
//	for {
//		recs, err := db.Peek(ctx, 16)
//		if len(recs) == 0 {
//			// wait for <-db.Wake(), or a timer to OutboxStats().NextDue
//			continue
//		}
//		// send rec.Body with rec.SessionID (the same on every attempt), then
//		db.Ack(ctx, rec.ID)                                     // server said code 0
//		db.Nack(ctx, rec.ID, time.Now().Add(backoff), "code -1") // server refused it
//	}
//
//	// Persons: one person at a time, all or nothing with the modules.
//	tx, err := db.BeginPerson(ctx, p.PersonID)
//	defer tx.Rollback()
//	old, existed := tx.Old()
//	err = tx.Put(p)
//	slot, err := tx.AllocFingerSlot(ctx, store.Left, capacity) // then store the template there
//	err = tx.SetFaceUser(userID)                               // the id the face module assigned
//	err = tx.Commit(ctx) // on error: undo the module enrolments
//	// after commit: delete old's slots and face user from the modules
//
//	p, err := db.PersonByCard(ctx, "0012345678") // never reads biometrics
//
// # Durability
//
// Every write is a transaction on one writer connection; the file is in WAL
// mode with synchronous=FULL, so a transaction that returned is on disk and
// survives a crash of the process, the kernel or the power (see Open for
// each pragma and DurabilityNoFsync for the relaxed mode). Concurrent
// Enqueue calls are grouped into one transaction (group commit): they share
// the fsync instead of queueing for one each.
//
// # Big biometrics
//
// A biometric longer than 256 KiB is stored as 256 KiB rows of
// biometric_chunks (its biometrics row holds an empty data), written from
// its Source (a protocol message's spooled blob) one chunk at a time inside
// the person's one transaction: memory stays at one chunk whatever the
// photo's size, and a refused, failed or interrupted download (even a
// SIGKILL: SQLite's log rolls it back) leaves no chunk and no file behind.
// Reads (Biometric, PersonWithBiometrics) return the bytes whole, read in
// one statement. Measured (agent TestHostileBigDownloadPerson, amd64): a
// 15.3 MiB download_person allocates 2.6 MiB of Go heap end to end, where
// holding the message, its decoded blobs and their bound copies allocated
// 43.4 MiB. Files beside the database were the other choice; rows keep
// the all-or-nothing transaction, the salvage of a damaged file and the
// backups in one place, and need no orphan cleanup; mattn/go-sqlite3
// offers no incremental blob I/O (sqlite3_blob_open) to write one row in
// pieces.
//
// A status command next to the running daemon opens the same file with
// Config.ReadOnly: it never creates, migrates, moves aside or writes it.
//
// # Faults
//
// The store degrades instead of failing (degraded.go, salvage.go,
// walcheck.go):
//
//   - a file the file system will not write (read-only, no permission) is
//     opened read-only: reads work, writes return ErrReadOnly, Writable
//     says why, MakeWritable switches back once writes are possible;
//   - a damaged file (bad header, bad pages, a write-ahead log with
//     committed frames after a bad one) is moved aside and what can still
//     be read — settings, persons with biometrics and slots, unsent records
//     with their session_ids — is salvaged into the fresh file and counted
//     in Recovery;
//   - a full disk makes writes fail with SQLite's "database or disk is
//     full" and nothing else: the caller keeps what it could not write
//     and retries;
//   - quarantined records are never stranded: RetryQuarantined gives them
//     one more try, Unquarantine a fresh set of tries.
//
// All methods of DB are safe for concurrent use.
package store

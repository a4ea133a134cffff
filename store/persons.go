package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"time"
)

// Unbound is the value of Person.LeftSlot, RightSlot and FaceUser when the
// person is not enrolled in that module.
const Unbound = -1

// Hand says which finger a fingerprint slot holds.
type Hand int

// Hands; a person has at most one slot per hand.
const (
	Left  Hand = iota // left_code
	Right             // right_code
)

// Kind names one of a person's biometrics.
type Kind int

// Biometric kinds, as in download_person.
const (
	Face       Kind = iota + 1 // face photo for the face module
	LeftImage                  // left fingerprint image
	RightImage                 // right fingerprint image
	LeftCode                   // left fingerprint template for the module
	RightCode                  // right fingerprint template for the module
)

// Kinds is a set of biometric kinds.
type Kinds uint8

// Has reports whether k is in the set.
func (s Kinds) Has(k Kind) bool { return s&(1<<k) != 0 }

// Len returns the number of kinds in the set.
func (s Kinds) Len() int { return bits.OnesCount8(uint8(s)) }

// Biometric is one biometric as the server sent it: the decoded bytes and
// their description. Width and Height are pixels (0 for templates).
type Biometric struct {
	Data []byte // the decoded bytes (base64 undone), at most Config.MaxBiometricBytes
	// Source, when Data is nil, supplies the bytes instead: Commit reads
	// them a chunk at a time (a big photo never sits in memory whole).
	// Output never sets it: the store's reads return Data.
	Source Source
	Format string // the protocol's integer format in decimal ("" for 0); at most 64 bytes
	Width  int    // pixels, 0..65536
	Height int    // pixels, 0..65536
}

// Source is a biometric's bytes kept out of memory (a protocol
// message's spooled blob).
type Source interface {
	// Len returns the number of bytes.
	Len() int
	// Open returns a reader of the Len bytes from the start.
	Open() io.Reader
}

// Len returns the biometric's length in bytes: len(Data), or Source's
// Len when Data is nil.
func (b *Biometric) Len() int {
	if b.Data == nil && b.Source != nil {
		return b.Source.Len()
	}
	return len(b.Data)
}

// chunkSize is the largest biometric stored in its biometrics row; a
// longer one is stored as rows of biometric_chunks of this size, written
// from its Source one at a time, so memory stays at one chunk whatever the
// biometric's size (and the person's transaction stays all or nothing).
const chunkSize = 256 << 10

// Person is one person as download_person describes it, plus the store's
// bookkeeping. Methods that do not load biometrics leave the five
// biometric fields nil; Stored says which ones exist.
type Person struct {
	PersonID         string // the key; required
	Name             string
	IDNumber         string
	CardNumber       string // "" when the person has no card
	KeyNumber        string
	DepartmentNumber string
	Role             int

	Face       *Biometric
	LeftImage  *Biometric
	RightImage *Biometric
	LeftCode   *Biometric
	RightCode  *Biometric

	// Stored is the set of biometrics stored for the person (output only).
	Stored Kinds
	// LeftSlot and RightSlot are the fingerprint module slots holding the
	// person's templates, FaceUser the face module's user id; Unbound when
	// not enrolled. Output only: set them through a PersonTx.
	LeftSlot, RightSlot, FaceUser int
	// UpdatedAt is when the person was last stored (output only).
	UpdatedAt time.Time
}

// Biometric returns the biometric of kind k held in p (nil if absent or
// not loaded).
func (p *Person) Biometric(k Kind) *Biometric {
	switch k {
	case Face:
		return p.Face
	case LeftImage:
		return p.LeftImage
	case RightImage:
		return p.RightImage
	case LeftCode:
		return p.LeftCode
	case RightCode:
		return p.RightCode
	}
	return nil
}

func (p *Person) setBiometric(k Kind, b *Biometric) {
	switch k {
	case Face:
		p.Face = b
	case LeftImage:
		p.LeftImage = b
	case RightImage:
		p.RightImage = b
	case LeftCode:
		p.LeftCode = b
	case RightCode:
		p.RightCode = b
	}
}

var allKinds = [...]Kind{Face, LeftImage, RightImage, LeftCode, RightCode}

// String returns the kind's download_person field name ("left_code").
func (k Kind) String() string {
	switch k {
	case Face:
		return "face"
	case LeftImage:
		return "left_image"
	case RightImage:
		return "right_image"
	case LeftCode:
		return "left_code"
	case RightCode:
		return "right_code"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// validate checks a person before it is stored.
func (db *DB) validatePerson(p *Person) error {
	if p.PersonID == "" {
		return fmt.Errorf("%w: person_id is empty", ErrInvalid)
	}
	texts := []struct{ name, v string }{
		{"person_id", p.PersonID}, {"person_name", p.Name}, {"id_number", p.IDNumber},
		{"card_number", p.CardNumber}, {"key_number", p.KeyNumber}, {"department_number", p.DepartmentNumber},
	}
	for _, t := range texts {
		if err := checkText(t.name, t.v); err != nil {
			return err
		}
	}
	for _, k := range allKinds {
		b := p.Biometric(k)
		if b == nil {
			continue
		}
		if b.Len() == 0 {
			return fmt.Errorf("%w: %s has no data", ErrInvalid, k)
		}
		if b.Len() > db.cfg.MaxBiometricBytes {
			return fmt.Errorf("%w: %s is %d bytes, at most %d", ErrInvalid, k, b.Len(), db.cfg.MaxBiometricBytes)
		}
		if len(b.Format) > 64 {
			return fmt.Errorf("%w: %s format is %d bytes, at most 64", ErrInvalid, k, len(b.Format))
		}
		if err := checkText(k.String()+".format", b.Format); err != nil {
			return err
		}
		if b.Width < 0 || b.Width > 1<<16 || b.Height < 0 || b.Height > 1<<16 {
			return fmt.Errorf("%w: %s size %dx%d is outside 0..65536", ErrInvalid, k, b.Width, b.Height)
		}
	}
	return nil
}

// personCols selects a person without blobs, with its bindings. The slot
// subqueries use finger_slots' UNIQUE (person_id, hand) index.
const personCols = `p.person_id, p.name, p.id_number, p.card_number, p.key_number,
	p.department_number, p.role, p.bio_kinds, coalesce(p.face_user, -1), p.updated_at,
	coalesce((SELECT slot FROM finger_slots f WHERE f.person_id = p.person_id AND f.hand = 0), -1),
	coalesce((SELECT slot FROM finger_slots f WHERE f.person_id = p.person_id AND f.hand = 1), -1)`

func scanPerson(row scanner) (Person, error) {
	var p Person
	var kinds int64
	var updated int64
	err := row.Scan(&p.PersonID, &p.Name, &p.IDNumber, &p.CardNumber, &p.KeyNumber,
		&p.DepartmentNumber, &p.Role, &kinds, &p.FaceUser, &updated, &p.LeftSlot, &p.RightSlot)
	p.Stored = Kinds(kinds)
	p.UpdatedAt = fromUnixNano(updated)
	return p, err
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// onePerson runs a query selecting personCols and returns its only row.
func (db *DB) onePerson(ctx context.Context, what, query string, args ...any) (Person, error) {
	if db.isClosed() {
		return Person{}, ErrClosed
	}
	p, err := scanPerson(db.readRow(ctx, query, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return Person{}, fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	if err != nil {
		return Person{}, fmt.Errorf("%s: %w", what, err)
	}
	return p, nil
}

// PersonByCard returns the person holding card (without biometrics; the
// query touches the persons table and its card index only). Commit refuses
// a card another person holds; if several persons hold one all the same
// (stored before that check), the most recently stored wins. ErrNotFound when
// nobody holds it (an empty card never matches).
func (db *DB) PersonByCard(ctx context.Context, card string) (Person, error) {
	if card == "" {
		return Person{}, fmt.Errorf("person by card: empty card: %w", ErrNotFound)
	}
	if db.isClosed() {
		return Person{}, ErrClosed
	}
	// All holders (nearly always one), the newest chosen here: an ORDER BY
	// in the query costs a descending index seek, several times the lookup.
	rows, err := db.read(ctx, qPersonByCard, card)
	if err != nil {
		return Person{}, fmt.Errorf("person by card: %w", err)
	}
	defer rows.Close()
	var best Person
	found := false
	for rows.Next() {
		p, err := scanPerson(rows)
		if err != nil {
			return Person{}, fmt.Errorf("person by card: %w", err)
		}
		if !found || p.UpdatedAt.After(best.UpdatedAt) ||
			(p.UpdatedAt.Equal(best.UpdatedAt) && p.PersonID > best.PersonID) {
			best, found = p, true
		}
	}
	if err := rows.Err(); err != nil {
		return Person{}, fmt.Errorf("person by card: %w", err)
	}
	if !found {
		return Person{}, fmt.Errorf("person by card: %w", ErrNotFound)
	}
	return best, nil
}

// qPersonByCard selects every holder of a card through the persons_card
// index (the non-empty test repeats the partial index's condition).
const qPersonByCard = `SELECT ` + personCols + ` FROM persons p WHERE p.card_number = ? AND p.card_number <> ''`

// Person returns the person with id, without biometrics (see
// PersonWithBiometrics). ErrNotFound when absent.
func (db *DB) Person(ctx context.Context, id string) (Person, error) {
	return db.onePerson(ctx, "person "+id, `SELECT `+personCols+` FROM persons p WHERE p.person_id = ?`, id)
}

// PersonByFingerSlot returns the person bound to fingerprint slot,
// without biometrics. ErrNotFound when the slot is free.
func (db *DB) PersonByFingerSlot(ctx context.Context, slot int) (Person, error) {
	return db.onePerson(ctx, fmt.Sprintf("person by finger slot %d", slot),
		`SELECT `+personCols+` FROM finger_slots s JOIN persons p ON p.person_id = s.person_id WHERE s.slot = ?`, slot)
}

// PersonByFaceUser returns the person bound to the face module's userID,
// without biometrics. ErrNotFound when nobody is.
func (db *DB) PersonByFaceUser(ctx context.Context, userID int) (Person, error) {
	return db.onePerson(ctx, fmt.Sprintf("person by face user %d", userID),
		`SELECT `+personCols+` FROM persons p WHERE p.face_user = ?`, userID)
}

// PersonWithBiometrics returns the person with id and all its biometrics.
func (db *DB) PersonWithBiometrics(ctx context.Context, id string) (Person, error) {
	p, err := db.Person(ctx, id)
	if err != nil {
		return Person{}, err
	}
	rows, err := db.read(ctx, `SELECT b.kind, b.format, b.width, b.height, b.data, c.data FROM biometrics b
		LEFT JOIN biometric_chunks c ON c.person_id = b.person_id AND c.kind = b.kind
		WHERE b.person_id = ? ORDER BY b.kind, c.seq`, id)
	if err != nil {
		return Person{}, fmt.Errorf("biometrics of %s: %w", id, err)
	}
	defer rows.Close()
	for rows.Next() {
		var k Kind
		var b Biometric
		var chunk []byte
		if err := rows.Scan(&k, &b.Format, &b.Width, &b.Height, &b.Data, &chunk); err != nil {
			return Person{}, fmt.Errorf("biometrics of %s: %w", id, err)
		}
		if have := p.Biometric(k); have != nil {
			have.Data = append(have.Data, chunk...)
			continue
		}
		b.Data = append(b.Data, chunk...)
		p.setBiometric(k, &b)
	}
	if err := rows.Err(); err != nil {
		return Person{}, fmt.Errorf("biometrics of %s: %w", id, err)
	}
	return p, nil
}

// Biometric returns one biometric of a person (for re-enrolling a module
// one template at a time). ErrNotFound when the person has none of kind k.
func (db *DB) Biometric(ctx context.Context, id string, k Kind) (*Biometric, error) {
	if db.isClosed() {
		return nil, ErrClosed
	}
	// One statement: one snapshot of the row and its chunks (a chunked
	// biometric's row holds no data).
	rows, err := db.read(ctx, `SELECT b.format, b.width, b.height, b.data, c.data FROM biometrics b
		LEFT JOIN biometric_chunks c ON c.person_id = b.person_id AND c.kind = b.kind
		WHERE b.person_id = ? AND b.kind = ? ORDER BY c.seq`, id, int(k))
	if err != nil {
		return nil, fmt.Errorf("%s of %s: %w", k, id, err)
	}
	defer rows.Close()
	var b *Biometric
	for rows.Next() {
		var chunk []byte
		if b == nil {
			b = &Biometric{}
			err = rows.Scan(&b.Format, &b.Width, &b.Height, &b.Data, &chunk)
		} else {
			err = rows.Scan(new(string), new(int), new(int), new([]byte), &chunk)
		}
		if err != nil {
			return nil, fmt.Errorf("%s of %s: %w", k, id, err)
		}
		b.Data = append(b.Data, chunk...)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s of %s: %w", k, id, db.closedOr(err))
	}
	if b == nil {
		return nil, fmt.Errorf("%s of %s: %w", k, id, ErrNotFound)
	}
	return b, nil
}

// putBiometric stores one biometric of a person inside stx: in its
// biometrics row, or, when longer than chunkSize, as chunks read from its
// Source one at a time.
func putBiometric(ctx context.Context, stx *sql.Tx, id string, k Kind, b *Biometric) error {
	const insert = `INSERT INTO biometrics (person_id, kind, format, width, height, data) VALUES (?, ?, ?, ?, ?, ?)`
	if b.Data != nil || b.Len() <= chunkSize {
		data := b.Data
		if data == nil {
			data = make([]byte, b.Len())
			if _, err := io.ReadFull(b.Source.Open(), data); err != nil {
				return fmt.Errorf("read %s: %w", k, err)
			}
		}
		if len(data) <= chunkSize {
			_, err := stx.ExecContext(ctx, insert, id, int(k), b.Format, b.Width, b.Height, data)
			return err
		}
		b = &Biometric{Source: bytesSource(data), Format: b.Format, Width: b.Width, Height: b.Height}
	}
	if _, err := stx.ExecContext(ctx, `INSERT INTO biometrics (person_id, kind, format, width, height, data, chunked_size)
		VALUES (?, ?, ?, ?, ?, x'', ?)`, id, int(k), b.Format, b.Width, b.Height, b.Len()); err != nil {
		return err
	}
	r := b.Source.Open()
	buf := make([]byte, chunkSize)
	left := b.Len()
	for seq := 0; left > 0; seq++ {
		n, err := io.ReadFull(r, buf[:min(left, chunkSize)])
		if err != nil {
			return fmt.Errorf("read %s (%d of %d bytes): %w", k, b.Len()-left+n, b.Len(), err)
		}
		if _, err := stx.ExecContext(ctx, `INSERT INTO biometric_chunks (person_id, kind, seq, data) VALUES (?, ?, ?, ?)`,
			id, int(k), seq, buf[:n]); err != nil {
			return err
		}
		left -= n
	}
	return nil
}

// bytesSource is a Source over bytes in memory.
type bytesSource []byte

func (s bytesSource) Len() int        { return len(s) }
func (s bytesSource) Open() io.Reader { return bytes.NewReader(s) }

// CountPersons returns how many persons are stored.
func (db *DB) CountPersons(ctx context.Context) (int, error) {
	if db.isClosed() {
		return 0, ErrClosed
	}
	var n int
	if err := db.readRow(ctx, `SELECT count(*) FROM persons`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count persons: %w", err)
	}
	return n, nil
}

// ListPersons returns up to limit persons (without biometrics) whose
// person_id sorts after `after` ("" for the first page), in person_id order.
// Pages are independent reads: a long resynchronisation never holds a read
// transaction open.
func (db *DB) ListPersons(ctx context.Context, after string, limit int) ([]Person, error) {
	if db.isClosed() {
		return nil, ErrClosed
	}
	if limit <= 0 {
		return nil, nil
	}
	rows, err := db.read(ctx, `SELECT `+personCols+` FROM persons p WHERE p.person_id > ?
		ORDER BY p.person_id LIMIT ?`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("list persons: %w", err)
	}
	defer rows.Close()
	var out []Person
	for rows.Next() {
		p, err := scanPerson(rows)
		if err != nil {
			return nil, fmt.Errorf("list persons: %w", err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list persons: %w", err)
	}
	return out, nil
}

// EachPerson calls fn for every person (without biometrics) in person_id
// order, reading pages of 256 with ListPersons; fn may call the DB,
// including BeginPerson. Persons stored or deleted meanwhile may or may not
// be seen. Stops at the first error fn returns and returns it.
func (db *DB) EachPerson(ctx context.Context, fn func(Person) error) error {
	after := ""
	for {
		page, err := db.ListPersons(ctx, after, 256)
		if err != nil {
			return err
		}
		for _, p := range page {
			if err := fn(p); err != nil {
				return err
			}
		}
		if len(page) < 256 {
			return nil
		}
		after = page[len(page)-1].PersonID
	}
}

// DeletePerson removes the person with id, its biometrics and its module
// bindings (the slots and face user id become free), durably. It returns
// the removed person (without biometrics) so the caller can delete its
// slots and face user from the modules. ErrNotFound when absent.
func (db *DB) DeletePerson(ctx context.Context, id string) (Person, error) {
	if err := db.lockPersons(ctx); err != nil {
		return Person{}, fmt.Errorf("delete person %s: %w", id, err)
	}
	defer db.unlockPersons()
	var old Person
	err := db.writeTx(ctx, func(tx *sql.Tx) error {
		var err error
		old, err = scanPerson(tx.QueryRowContext(ctx, `SELECT `+personCols+` FROM persons p WHERE p.person_id = ?`, id))
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM persons WHERE person_id = ?`, id)
		return err
	}, nil)
	if err != nil {
		return Person{}, fmt.Errorf("delete person %s: %w", id, err)
	}
	return old, nil
}

// ClearFingerSlots unbinds every fingerprint slot (after the module was
// cleared or replaced); persons and their templates stay.
func (db *DB) ClearFingerSlots(ctx context.Context) error {
	if err := db.lockPersons(ctx); err != nil {
		return fmt.Errorf("clear finger slots: %w", err)
	}
	defer db.unlockPersons()
	err := db.writeTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM finger_slots`)
		return err
	}, nil)
	if err != nil {
		return fmt.Errorf("clear finger slots: %w", err)
	}
	return nil
}

// ClearFaceUsers unbinds every face module user id (after the module was
// cleared or replaced); persons and their photos stay.
func (db *DB) ClearFaceUsers(ctx context.Context) error {
	if err := db.lockPersons(ctx); err != nil {
		return fmt.Errorf("clear face users: %w", err)
	}
	defer db.unlockPersons()
	err := db.writeTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE persons SET face_user = NULL WHERE face_user IS NOT NULL`)
		return err
	}, nil)
	if err != nil {
		return fmt.Errorf("clear face users: %w", err)
	}
	return nil
}

// PersonTx changes one person and its module bindings all or nothing.
// It is not an SQLite transaction while it is open: it holds the store's
// person lock (one PersonTx, DeletePerson or Clear* at a time), so the
// caller can enrol into the modules — which takes seconds — without
// blocking the outbox, and the changes are written in one short
// transaction at Commit. Not safe for concurrent use; always call Rollback
// (a no-op after Commit), typically deferred.
type PersonTx struct {
	db      *DB
	id      string
	old     Person
	existed bool
	put     *Person
	slots   [2]int
	slotSet bool
	face    int
	faceSet bool
	done    bool
}

// BeginPerson starts changing the person with id, waiting (for ctx) until
// no other PersonTx, DeletePerson or Clear* is in progress. The lock is not
// reentrant: while a PersonTx is open, its goroutine must not call
// BeginPerson, DeletePerson or Clear* (they would wait for it forever or
// until ctx ends). Reads and the outbox are never blocked by it.
func (db *DB) BeginPerson(ctx context.Context, id string) (*PersonTx, error) {
	if id == "" {
		return nil, fmt.Errorf("begin person: %w: person_id is empty", ErrInvalid)
	}
	if err := checkText("person_id", id); err != nil {
		return nil, fmt.Errorf("begin person: %w", err)
	}
	if err := db.lockPersons(ctx); err != nil {
		return nil, fmt.Errorf("begin person %s: %w", id, err)
	}
	tx := &PersonTx{db: db, id: id, slots: [2]int{Unbound, Unbound}, face: Unbound}
	old, err := db.Person(ctx, id)
	switch {
	case err == nil:
		tx.old, tx.existed = old, true
	case errors.Is(err, ErrNotFound):
	default:
		db.unlockPersons()
		return nil, fmt.Errorf("begin person %s: %w", id, err)
	}
	return tx, nil
}

// Old returns the person as stored when the transaction began (without
// biometrics, with its bindings) and whether it existed.
func (tx *PersonTx) Old() (Person, bool) { return tx.old, tx.existed }

// Put replaces the person's fields and biometrics at Commit (biometrics
// absent from p are deleted). p.PersonID must be the transaction's id. The
// person's previous module bindings are released at Commit unless this
// transaction sets new ones (AllocFingerSlot, SetFaceUser). p is copied
// (biometric bytes are not); output-only fields are ignored.
func (tx *PersonTx) Put(p Person) error {
	if tx.done {
		return ErrTxDone
	}
	if p.PersonID != tx.id {
		return fmt.Errorf("put person: %w: person_id %q in a transaction for %q", ErrInvalid, p.PersonID, tx.id)
	}
	if err := tx.db.validatePerson(&p); err != nil {
		return fmt.Errorf("put person %s: %w", tx.id, err)
	}
	tx.put = &p
	return nil
}

// AllocFingerSlot reserves a free fingerprint slot below capacity (the
// module's template capacity) for the hand's template and returns it; the
// caller stores the template there, and Commit binds it. The slot is never
// one bound to anyone (this person's old slots included: they stay valid
// until Commit, so a failed enrolment leaves the old templates in place).
// Asking twice for the same hand returns the same slot. ErrNoFreeSlot when
// the module is full.
func (tx *PersonTx) AllocFingerSlot(ctx context.Context, hand Hand, capacity int) (int, error) {
	if tx.done {
		return 0, ErrTxDone
	}
	if hand != Left && hand != Right {
		return 0, fmt.Errorf("alloc finger slot: %w: hand %d", ErrInvalid, hand)
	}
	if capacity <= 0 {
		return 0, fmt.Errorf("alloc finger slot: %w: capacity %d", ErrInvalid, capacity)
	}
	if s := tx.slots[hand]; s != Unbound {
		return s, nil
	}
	used := make(map[int]bool)
	rows, err := tx.db.read(ctx, `SELECT slot FROM finger_slots WHERE slot < ?`, capacity)
	if err != nil {
		return 0, fmt.Errorf("alloc finger slot: %w", err)
	}
	for rows.Next() {
		var s int
		if err := rows.Scan(&s); err != nil {
			rows.Close()
			return 0, fmt.Errorf("alloc finger slot: %w", err)
		}
		used[s] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("alloc finger slot: %w", err)
	}
	if o := tx.slots[1-hand]; o != Unbound {
		used[o] = true
	}
	for s := 0; s < capacity; s++ {
		if !used[s] {
			tx.slots[hand] = s
			tx.slotSet = true
			return s, nil
		}
	}
	return 0, fmt.Errorf("alloc finger slot for %s (capacity %d): %w", tx.id, capacity, ErrNoFreeSlot)
}

// ReleaseFingerSlots makes Commit unbind the person's fingerprint slots
// (and forget slots this transaction reserved).
func (tx *PersonTx) ReleaseFingerSlots() {
	tx.slots = [2]int{Unbound, Unbound}
	tx.slotSet = true
}

// SetFaceUser makes Commit bind the face module's userID to the person
// (Unbound unbinds). The module assigned the id, so it is the truth: if
// the store still binds it to someone else, that stale binding is cleared.
func (tx *PersonTx) SetFaceUser(userID int) error {
	if tx.done {
		return ErrTxDone
	}
	if userID < 0 && userID != Unbound {
		return fmt.Errorf("set face user: %w: id %d", ErrInvalid, userID)
	}
	tx.face = userID
	tx.faceSet = true
	return nil
}

// Commit writes everything in one durable transaction and ends the
// PersonTx (whatever the result). Without Put, the person must exist
// (ErrNotFound) and only the bindings change.
func (tx *PersonTx) Commit(ctx context.Context) error {
	if tx.done {
		return ErrTxDone
	}
	defer tx.finish()
	db := tx.db
	now := unixNano(db.now())
	err := db.writeTx(ctx, func(stx *sql.Tx) error {
		if p := tx.put; p != nil {
			if err := cardFree(ctx, stx, p); err != nil {
				return err
			}
			var kinds Kinds
			for _, k := range allKinds {
				if p.Biometric(k) != nil {
					kinds |= 1 << k
				}
			}
			_, err := stx.ExecContext(ctx, `INSERT INTO persons (person_id, name, id_number, card_number,
				key_number, department_number, role, bio_kinds, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
				ON CONFLICT (person_id) DO UPDATE SET name = excluded.name, id_number = excluded.id_number,
				card_number = excluded.card_number, key_number = excluded.key_number,
				department_number = excluded.department_number, role = excluded.role,
				bio_kinds = excluded.bio_kinds, updated_at = excluded.updated_at`,
				p.PersonID, p.Name, p.IDNumber, p.CardNumber, p.KeyNumber, p.DepartmentNumber, p.Role, int64(kinds), now)
			if err != nil {
				return fmt.Errorf("store person: %w", err)
			}
			if _, err := stx.ExecContext(ctx, `DELETE FROM biometrics WHERE person_id = ?`, p.PersonID); err != nil {
				return fmt.Errorf("replace biometrics: %w", err)
			}
			for _, k := range allKinds {
				b := p.Biometric(k)
				if b == nil {
					continue
				}
				if err := putBiometric(ctx, stx, p.PersonID, k, b); err != nil {
					return fmt.Errorf("store %s: %w", k, err)
				}
			}
		} else {
			var one int
			err := stx.QueryRowContext(ctx, `SELECT 1 FROM persons WHERE person_id = ?`, tx.id).Scan(&one)
			if errors.Is(err, sql.ErrNoRows) {
				return ErrNotFound
			}
			if err != nil {
				return err
			}
		}
		if tx.put != nil || tx.slotSet {
			if _, err := stx.ExecContext(ctx, `DELETE FROM finger_slots WHERE person_id = ?`, tx.id); err != nil {
				return fmt.Errorf("release finger slots: %w", err)
			}
			for h, s := range tx.slots {
				if s == Unbound {
					continue
				}
				if _, err := stx.ExecContext(ctx, `INSERT INTO finger_slots (slot, person_id, hand) VALUES (?, ?, ?)`,
					s, tx.id, h); err != nil {
					return fmt.Errorf("bind finger slot %d: %w", s, err)
				}
			}
		}
		if tx.put != nil || tx.faceSet {
			var face any // NULL unless bound
			if tx.face != Unbound {
				face = tx.face
				if _, err := stx.ExecContext(ctx, `UPDATE persons SET face_user = NULL WHERE face_user = ? AND person_id <> ?`,
					tx.face, tx.id); err != nil {
					return fmt.Errorf("clear stale face user %d: %w", tx.face, err)
				}
			}
			if _, err := stx.ExecContext(ctx, `UPDATE persons SET face_user = ? WHERE person_id = ?`, face, tx.id); err != nil {
				return fmt.Errorf("bind face user: %w", err)
			}
		}
		return nil
	}, nil)
	if err != nil {
		return fmt.Errorf("commit person %s: %w", tx.id, err)
	}
	return nil
}

// cardFree refuses a card number that another person holds (protocol/PROTOCOL.md
// §5 download_person: the server moves a card by changing or removing its
// old holder first), naming both persons.
func cardFree(ctx context.Context, stx *sql.Tx, p *Person) error {
	if p.CardNumber == "" {
		return nil
	}
	var holder string
	err := stx.QueryRowContext(ctx, `SELECT person_id FROM persons WHERE card_number = ? AND person_id <> ? LIMIT 1`,
		p.CardNumber, p.PersonID).Scan(&holder)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil
	case err != nil:
		return fmt.Errorf("check card_number: %w", err)
	}
	return fmt.Errorf("%w: card_number %q is held by person_id %q; person_id %q cannot take it (change or remove the holder first)",
		ErrInvalid, p.CardNumber, holder, p.PersonID)
}

// Rollback ends the PersonTx without writing anything; idempotent, a
// no-op after Commit. Slots reserved by AllocFingerSlot become free again
// (the caller deletes whatever it already stored in them).
func (tx *PersonTx) Rollback() {
	if !tx.done {
		tx.finish()
	}
}

func (tx *PersonTx) finish() {
	tx.done = true
	tx.db.unlockPersons()
}

-- 0001: settings, persons with biometrics and module bindings, outbox.

-- One row: the device info of protocol/PROTOCOL.md plus the previous server address.
CREATE TABLE settings (
	id               INTEGER PRIMARY KEY CHECK (id = 1),
	uuid             TEXT    NOT NULL,
	device_ip        TEXT    NOT NULL DEFAULT '',
	device_port      INTEGER NOT NULL DEFAULT 0,
	server_ip        TEXT    NOT NULL DEFAULT '',
	server_port      INTEGER NOT NULL DEFAULT 0,
	address          TEXT    NOT NULL DEFAULT '',
	community_code   TEXT    NOT NULL DEFAULT '',
	prev_server_ip   TEXT    NOT NULL DEFAULT '',
	prev_server_port INTEGER NOT NULL DEFAULT 0
);

-- Persons without their blobs, so a card lookup reads one small row.
-- bio_kinds is a bit set of the biometrics stored for the person.
-- face_user is the face module's id for the person (NULL: not enrolled).
CREATE TABLE persons (
	person_id         TEXT    PRIMARY KEY,
	name              TEXT    NOT NULL DEFAULT '',
	id_number         TEXT    NOT NULL DEFAULT '',
	card_number       TEXT    NOT NULL DEFAULT '',
	key_number        TEXT    NOT NULL DEFAULT '',
	department_number TEXT    NOT NULL DEFAULT '',
	role              INTEGER NOT NULL DEFAULT 0,
	bio_kinds         INTEGER NOT NULL DEFAULT 0,
	face_user         INTEGER UNIQUE,
	updated_at        INTEGER NOT NULL
);
CREATE INDEX persons_card ON persons (card_number, updated_at) WHERE card_number <> '';

-- Biometrics, one row per kind (1 face, 2 left image, 3 right image,
-- 4 left code, 5 right code).
CREATE TABLE biometrics (
	person_id TEXT    NOT NULL REFERENCES persons (person_id) ON DELETE CASCADE,
	kind      INTEGER NOT NULL CHECK (kind BETWEEN 1 AND 5),
	format    TEXT    NOT NULL DEFAULT '',
	width     INTEGER NOT NULL DEFAULT 0,
	height    INTEGER NOT NULL DEFAULT 0,
	data      BLOB    NOT NULL,
	PRIMARY KEY (person_id, kind)
) WITHOUT ROWID;

-- Fingerprint module slots bound to persons (hand 0 left, 1 right).
CREATE TABLE finger_slots (
	slot      INTEGER PRIMARY KEY CHECK (slot >= 0),
	person_id TEXT    NOT NULL REFERENCES persons (person_id) ON DELETE CASCADE,
	hand      INTEGER NOT NULL CHECK (hand IN (0, 1)),
	UNIQUE (person_id, hand)
);

-- Access records waiting for the server's acknowledgement. AUTOINCREMENT:
-- an id is never reused, even after the newest record was acked. No index
-- on the insert path: a new record writes one leaf page (flash wear); only
-- records waiting for a retry are indexed.
CREATE TABLE outbox (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	session_id  TEXT    NOT NULL,
	body        BLOB    NOT NULL,
	created_at  INTEGER NOT NULL,
	attempts    INTEGER NOT NULL DEFAULT 0,
	next_try    INTEGER NOT NULL DEFAULT 0,
	quarantined INTEGER NOT NULL DEFAULT 0 CHECK (quarantined IN (0, 1)),
	last_error  TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX outbox_retry ON outbox (next_try) WHERE next_try > 0 AND quarantined = 0;

-- Counters that outlive restarts (outbox_dropped).
CREATE TABLE counters (
	name  TEXT    PRIMARY KEY,
	value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO counters (name, value) VALUES ('outbox_dropped', 0);

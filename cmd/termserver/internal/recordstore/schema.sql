-- termserver's record database. Applied on every start; idempotent.
CREATE TABLE IF NOT EXISTS records (
	id             INTEGER PRIMARY KEY,
	-- The upload's session_id: a retried upload keeps it, so a second
	-- copy is dropped here (and still answered code 0).
	session_id     TEXT    NOT NULL UNIQUE,
	terminal       TEXT    NOT NULL,  -- device_info.uuid of the uploader
	remote         TEXT    NOT NULL,  -- its remote address
	person_id      TEXT    NOT NULL,
	time           TEXT    NOT NULL,  -- terminal local time YYYYMMDDhhmmss
	id_number      TEXT    NOT NULL,
	card_number    TEXT    NOT NULL,
	role           INTEGER NOT NULL,
	open_door_type INTEGER NOT NULL,
	in_out_type    INTEGER NOT NULL,
	community_code TEXT    NOT NULL,
	received       TEXT    NOT NULL   -- server UTC time, RFC 3339
);
CREATE INDEX IF NOT EXISTS records_terminal ON records (terminal, id);
-- Names of the persons this server pushed (download_person answered 0),
-- so records can show who came in, not only their person_id.
CREATE TABLE IF NOT EXISTS persons (
	person_id   TEXT PRIMARY KEY,
	person_name TEXT NOT NULL
);

-- 0002: a biometric longer than one chunk (see persons.go, chunkSize) is
-- stored as consecutive chunks here, its biometrics row holding an empty
-- data; written in the person's one transaction, so a refused or
-- interrupted download leaves no chunk behind.
CREATE TABLE biometric_chunks (
	person_id TEXT    NOT NULL,
	kind      INTEGER NOT NULL,
	seq       INTEGER NOT NULL CHECK (seq >= 0),
	data      BLOB    NOT NULL,
	PRIMARY KEY (person_id, kind, seq),
	FOREIGN KEY (person_id, kind) REFERENCES biometrics (person_id, kind) ON DELETE CASCADE
) WITHOUT ROWID;

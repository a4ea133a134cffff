-- 0002: a biometric longer than one chunk (see persons.go, chunkSize) is
-- stored as consecutive chunks here, its biometrics row holding an empty
-- data and the total size in chunked_size (0 for a biometric held in its
-- row), so that salvage can tell a complete set of chunks from a partly
-- lost one; written in the person's one transaction, so a refused or
-- interrupted download leaves no chunk behind.
ALTER TABLE biometrics ADD COLUMN chunked_size INTEGER NOT NULL DEFAULT 0 CHECK (chunked_size >= 0);
CREATE TABLE biometric_chunks (
	person_id TEXT    NOT NULL,
	kind      INTEGER NOT NULL,
	seq       INTEGER NOT NULL CHECK (seq >= 0),
	data      BLOB    NOT NULL,
	PRIMARY KEY (person_id, kind, seq),
	FOREIGN KEY (person_id, kind) REFERENCES biometrics (person_id, kind) ON DELETE CASCADE
) WITHOUT ROWID;

-- Idempotency keys of batch imports: the key, a fingerprint of the payload it
-- came with, and the ids the batch got (a JSON array), written in the same
-- transaction as the batch's documents.
CREATE TABLE IF NOT EXISTS idempotency_keys (
    key         TEXT    NOT NULL PRIMARY KEY,
    fingerprint TEXT    NOT NULL,
    ids         TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
) WITHOUT ROWID;

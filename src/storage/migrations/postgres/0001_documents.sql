-- Documents are kept as the compact JSON text the client sent (see
-- src/domain/document.rs). `text`, not `jsonb`: jsonb reorders keys, drops
-- duplicates and rewrites numbers (1.0 stays, but key order does not), so a
-- document would not read back as written. COLLATE "C" makes id order the
-- byte order on every server locale, which is also the list order.
CREATE TABLE IF NOT EXISTS documents (
    id         text COLLATE "C" NOT NULL PRIMARY KEY CHECK (length(id) = 24),
    body       text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Idempotency keys of batch imports, written in the batch's transaction.
CREATE TABLE IF NOT EXISTS idempotency_keys (
    key         text        NOT NULL PRIMARY KEY,
    fingerprint text        NOT NULL,
    ids         text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Documents are kept as the compact JSON text the client sent (see
-- src/domain/document.rs), keyed by their 24-hex id. WITHOUT ROWID stores
-- rows in id order, which is also the list order.
CREATE TABLE IF NOT EXISTS documents (
    id         TEXT    NOT NULL PRIMARY KEY CHECK (length(id) = 24),
    body       TEXT    NOT NULL,
    created_at INTEGER NOT NULL
) WITHOUT ROWID;

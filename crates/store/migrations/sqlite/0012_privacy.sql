-- feedloop SQLite schema, version 12: privacy. Per-project settings (PII redaction on ingest,
-- retention), erasure receipts, and the log of removed vectors that vector indexes follow.

-- A project's PrivacySettings as JSON; no row means the defaults (nothing redacted, kept forever).
CREATE TABLE privacy_settings (
    project_id  INTEGER PRIMARY KEY,
    updated_at  INTEGER NOT NULL,
    doc         TEXT NOT NULL
);

-- One row per erasure. doc holds the SHA-256 of the user id (never the id), the rows deleted per
-- table and the lessons to review.
CREATE TABLE erasure_receipts (
    project_id    INTEGER NOT NULL,
    id            TEXT NOT NULL,
    requested_at  INTEGER NOT NULL,
    completed_at  INTEGER NOT NULL,
    doc           TEXT NOT NULL,
    PRIMARY KEY (project_id, id)
) WITHOUT ROWID;

-- Vectors deleted with their trace (retention, erasure). Indexes on every replica follow seq and
-- drop the key, as they follow embeddings.seq to add one.
CREATE TABLE vector_removals (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id  INTEGER NOT NULL,
    trace_seq   INTEGER NOT NULL,
    removed_at  INTEGER NOT NULL
);

-- Sequence numbers must never be reused once rows are deleted: index keys are trace seqs, and
-- followers (review rules, satisfaction) resume after the last trace or feedback seq they saw.
-- Without AUTOINCREMENT SQLite hands out max(seq) + 1, which repeats after deleting the newest
-- row, so both tables are rebuilt with it (same columns, same indexes).
CREATE TABLE traces_new (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id     INTEGER NOT NULL,
    id             TEXT NOT NULL,
    session_id     TEXT,
    user_id        TEXT,
    user_role      TEXT,
    environment    TEXT,
    model_name     TEXT,
    model_version  TEXT,
    prompt_name    TEXT,
    prompt_version TEXT,
    started_at     INTEGER NOT NULL,
    doc            TEXT NOT NULL
);
INSERT INTO traces_new SELECT seq, project_id, id, session_id, user_id, user_role, environment,
    model_name, model_version, prompt_name, prompt_version, started_at, doc FROM traces;
DROP TABLE traces;
ALTER TABLE traces_new RENAME TO traces;
CREATE UNIQUE INDEX traces_by_id ON traces (project_id, id);
CREATE INDEX traces_by_time ON traces (project_id, started_at, seq);
CREATE INDEX traces_by_session ON traces (project_id, session_id, started_at) WHERE session_id IS NOT NULL;
CREATE INDEX traces_by_user ON traces (project_id, user_id, started_at) WHERE user_id IS NOT NULL;

CREATE TABLE feedback_new (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id    INTEGER NOT NULL,
    id            TEXT NOT NULL,
    trace_id      TEXT NOT NULL,
    span_id       TEXT,
    session_id    TEXT,
    kind          TEXT NOT NULL,
    source        TEXT NOT NULL,
    author        TEXT,
    rating_sign   INTEGER,
    categories    TEXT,
    created_at    INTEGER NOT NULL,
    received_at   INTEGER NOT NULL,
    superseded_by TEXT,
    supersession_key INTEGER,
    content_hash  BLOB NOT NULL,
    doc           TEXT NOT NULL,
    negative      INTEGER NOT NULL DEFAULT 0
);
INSERT INTO feedback_new SELECT seq, project_id, id, trace_id, span_id, session_id, kind, source,
    author, rating_sign, categories, created_at, received_at, superseded_by, supersession_key,
    content_hash, doc, negative FROM feedback;
DROP TABLE feedback;
ALTER TABLE feedback_new RENAME TO feedback;
CREATE UNIQUE INDEX feedback_by_id ON feedback (project_id, id);
CREATE INDEX feedback_by_trace ON feedback (project_id, trace_id, supersession_key, created_at, seq);
CREATE INDEX feedback_by_time ON feedback (project_id, created_at, seq);
-- Erasure finds the feedback a user authored.
CREATE INDEX feedback_by_author ON feedback (project_id, author) WHERE author IS NOT NULL;

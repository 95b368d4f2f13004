-- feedloop PostgreSQL schema, version 12: privacy. Per-project settings (PII redaction on ingest,
-- retention), erasure receipts, and the log of removed vectors that vector indexes follow.
-- Identity columns are never reused, so deleting rows needs no change to traces or feedback.

-- A project's PrivacySettings as JSON; no row means the defaults (nothing redacted, kept forever).
CREATE TABLE privacy_settings (
    project_id  BIGINT PRIMARY KEY,
    updated_at  BIGINT NOT NULL,
    doc         TEXT NOT NULL
);

-- One row per erasure. doc holds the SHA-256 of the user id (never the id), the rows deleted per
-- table and the lessons to review.
CREATE TABLE erasure_receipts (
    project_id    BIGINT NOT NULL,
    id            TEXT NOT NULL,
    requested_at  BIGINT NOT NULL,
    completed_at  BIGINT NOT NULL,
    doc           TEXT NOT NULL,
    PRIMARY KEY (project_id, id)
);

-- Vectors deleted with their trace (retention, erasure). Indexes on every replica follow seq and
-- drop the key, as they follow embeddings.seq to add one; written under the vectors' advisory
-- lock, so seq order is commit order.
CREATE TABLE vector_removals (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id  BIGINT NOT NULL,
    trace_seq   BIGINT NOT NULL,
    removed_at  BIGINT NOT NULL
);

-- Erasure finds the feedback a user authored; retention the oldest traces with feedback.
CREATE INDEX feedback_by_author ON feedback (project_id, author) WHERE author IS NOT NULL;

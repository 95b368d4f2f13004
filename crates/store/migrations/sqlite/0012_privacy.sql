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
-- The analytics triggers of migration 10 sit on (or read) both tables: dropped here and created
-- again, unchanged, after the rebuild.
DROP TRIGGER analytics_feedback_insert;
DROP TRIGGER analytics_feedback_update;
DROP TRIGGER analytics_feedback_delete;
DROP TRIGGER analytics_trace_insert;
DROP TRIGGER analytics_trace_update;
DROP TRIGGER analytics_trace_delete;
DROP TRIGGER analytics_tag_insert;
DROP TRIGGER analytics_tag_delete;
DROP TRIGGER analytics_satisfaction_insert;
DROP TRIGGER analytics_satisfaction_update;
DROP TRIGGER analytics_satisfaction_delete;

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

-- Migration 10's analytics triggers, as they were.
CREATE TRIGGER analytics_feedback_insert AFTER INSERT ON feedback
WHEN NEW.created_at < CAST(unixepoch('subsec') * 1000000 AS INTEGER) - 3600000000
BEGIN
    INSERT INTO analytics_invalidations VALUES (NEW.project_id, NEW.created_at, NEW.created_at);
END;

CREATE TRIGGER analytics_feedback_update AFTER UPDATE ON feedback
WHEN MIN(OLD.created_at, NEW.created_at) < CAST(unixepoch('subsec') * 1000000 AS INTEGER) - 3600000000
BEGIN
    INSERT INTO analytics_invalidations VALUES (OLD.project_id, OLD.created_at, OLD.created_at);
    INSERT INTO analytics_invalidations VALUES (NEW.project_id, NEW.created_at, NEW.created_at);
END;

CREATE TRIGGER analytics_feedback_delete AFTER DELETE ON feedback
WHEN OLD.created_at < CAST(unixepoch('subsec') * 1000000 AS INTEGER) - 3600000000
BEGIN
    INSERT INTO analytics_invalidations VALUES (OLD.project_id, OLD.created_at, OLD.created_at);
END;

CREATE TRIGGER analytics_trace_insert AFTER INSERT ON traces
BEGIN
    INSERT INTO analytics_invalidations
    SELECT NEW.project_id, MIN(created_at), MAX(created_at) FROM feedback
     WHERE project_id = NEW.project_id AND trace_id = NEW.id
    HAVING MIN(created_at) < CAST(unixepoch('subsec') * 1000000 AS INTEGER) - 3600000000;
END;

CREATE TRIGGER analytics_trace_update AFTER UPDATE ON traces
BEGIN
    INSERT INTO analytics_invalidations
    SELECT OLD.project_id, MIN(created_at), MAX(created_at) FROM feedback
     WHERE project_id = OLD.project_id AND trace_id = OLD.id
    HAVING MIN(created_at) < CAST(unixepoch('subsec') * 1000000 AS INTEGER) - 3600000000;
END;

CREATE TRIGGER analytics_trace_delete AFTER DELETE ON traces
BEGIN
    INSERT INTO analytics_invalidations
    SELECT OLD.project_id, MIN(created_at), MAX(created_at) FROM feedback
     WHERE project_id = OLD.project_id AND trace_id = OLD.id
    HAVING MIN(created_at) < CAST(unixepoch('subsec') * 1000000 AS INTEGER) - 3600000000;
END;

CREATE TRIGGER analytics_tag_insert AFTER INSERT ON trace_tags
BEGIN
    INSERT INTO analytics_invalidations
    SELECT NEW.project_id, MIN(f.created_at), MAX(f.created_at)
      FROM traces t JOIN feedback f ON f.project_id = t.project_id AND f.trace_id = t.id
     WHERE t.seq = NEW.trace_seq
    HAVING MIN(f.created_at) < CAST(unixepoch('subsec') * 1000000 AS INTEGER) - 3600000000;
END;

CREATE TRIGGER analytics_tag_delete AFTER DELETE ON trace_tags
BEGIN
    INSERT INTO analytics_invalidations
    SELECT OLD.project_id, MIN(f.created_at), MAX(f.created_at)
      FROM traces t JOIN feedback f ON f.project_id = t.project_id AND f.trace_id = t.id
     WHERE t.seq = OLD.trace_seq
    HAVING MIN(f.created_at) < CAST(unixepoch('subsec') * 1000000 AS INTEGER) - 3600000000;
END;

CREATE TRIGGER analytics_satisfaction_insert AFTER INSERT ON trace_satisfaction
BEGIN
    INSERT INTO analytics_invalidations
    SELECT NEW.project_id, MIN(created_at), MAX(created_at) FROM feedback
     WHERE project_id = NEW.project_id AND trace_id = NEW.trace_id
    HAVING MIN(created_at) < CAST(unixepoch('subsec') * 1000000 AS INTEGER) - 3600000000;
END;

CREATE TRIGGER analytics_satisfaction_update AFTER UPDATE ON trace_satisfaction
BEGIN
    INSERT INTO analytics_invalidations
    SELECT OLD.project_id, MIN(created_at), MAX(created_at) FROM feedback
     WHERE project_id = OLD.project_id AND trace_id = OLD.trace_id
    HAVING MIN(created_at) < CAST(unixepoch('subsec') * 1000000 AS INTEGER) - 3600000000;
END;

CREATE TRIGGER analytics_satisfaction_delete AFTER DELETE ON trace_satisfaction
BEGIN
    INSERT INTO analytics_invalidations
    SELECT OLD.project_id, MIN(created_at), MAX(created_at) FROM feedback
     WHERE project_id = OLD.project_id AND trace_id = OLD.trace_id
    HAVING MIN(created_at) < CAST(unixepoch('subsec') * 1000000 AS INTEGER) - 3600000000;
END;

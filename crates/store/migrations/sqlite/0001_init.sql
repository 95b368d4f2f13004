-- feedloop SQLite schema, version 1.
-- Times are microseconds since the Unix epoch (UTC). Each domain object is stored whole as
-- JSON in `doc`; the other columns are derived from it for filtering and ordering.

CREATE TABLE projects (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
);

CREATE TABLE api_keys (
    id          INTEGER PRIMARY KEY,
    project_id  INTEGER NOT NULL REFERENCES projects (id),
    name        TEXT NOT NULL,
    role        TEXT NOT NULL,
    prefix      TEXT NOT NULL,
    hash        BLOB NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);
CREATE INDEX api_keys_by_project ON api_keys (project_id);

CREATE TABLE categories (
    project_id  INTEGER NOT NULL REFERENCES projects (id),
    name        TEXT NOT NULL,
    description TEXT,
    created_at  INTEGER NOT NULL,
    retired_at  INTEGER,
    PRIMARY KEY (project_id, name)
) WITHOUT ROWID;

CREATE TABLE traces (
    seq            INTEGER PRIMARY KEY,
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
CREATE UNIQUE INDEX traces_by_id ON traces (project_id, id);
CREATE INDEX traces_by_time ON traces (project_id, started_at, seq);
CREATE INDEX traces_by_session ON traces (project_id, session_id, started_at) WHERE session_id IS NOT NULL;
CREATE INDEX traces_by_user ON traces (project_id, user_id, started_at) WHERE user_id IS NOT NULL;

CREATE TABLE trace_tags (
    project_id  INTEGER NOT NULL,
    tag         TEXT NOT NULL,
    trace_seq   INTEGER NOT NULL,
    PRIMARY KEY (project_id, tag, trace_seq)
) WITHOUT ROWID;

CREATE TABLE spans (
    seq         INTEGER PRIMARY KEY,
    project_id  INTEGER NOT NULL,
    trace_id    TEXT NOT NULL,
    id          TEXT NOT NULL,
    started_at  INTEGER NOT NULL,
    doc         TEXT NOT NULL
);
CREATE UNIQUE INDEX spans_by_id ON spans (project_id, trace_id, id);

CREATE TABLE feedback (
    seq           INTEGER PRIMARY KEY,
    project_id    INTEGER NOT NULL,
    id            TEXT NOT NULL,
    trace_id      TEXT NOT NULL,
    span_id       TEXT,
    session_id    TEXT,
    kind          TEXT NOT NULL,
    source        TEXT NOT NULL,
    author        TEXT,
    rating_sign   INTEGER,
    categories    TEXT,            -- JSON array of taxonomy names, or NULL
    created_at    INTEGER NOT NULL, -- the client's time, else the arrival time
    received_at   INTEGER NOT NULL,
    superseded_by TEXT,
    supersession_key INTEGER,       -- digest of (trace, span, author, kind, compared trace), or NULL
    content_hash  BLOB NOT NULL,
    doc           TEXT NOT NULL
);
CREATE UNIQUE INDEX feedback_by_id ON feedback (project_id, id);
-- Serves a trace's feedback (by prefix) and the look-up of a restated judgement's group, so
-- that each feedback row costs one random index insertion for both.
CREATE INDEX feedback_by_trace ON feedback (project_id, trace_id, supersession_key, created_at, seq);
CREATE INDEX feedback_by_time ON feedback (project_id, created_at, seq);

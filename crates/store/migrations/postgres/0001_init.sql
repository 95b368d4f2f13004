-- feedloop PostgreSQL schema, version 1. The same tables and columns as
-- migrations/sqlite/0001_init.sql, so that one filter builder serves both backends:
--
-- * Times are BIGINT microseconds since the Unix epoch (UTC), as in SQLite, so both backends
--   order, page and encode cursors identically.
-- * Each domain object is stored whole in `doc` as the exact serde_json text SQLite stores; the
--   other columns are derived from it for filtering and ordering.
-- * Every TEXT column uses the "C" collation: ids and names compare and sort bytewise, as under
--   SQLite's BINARY collation, whatever the database's locale (and btree comparisons are cheaper).
-- * Sequence numbers are identity columns; like SQLite rowids they only order rows, and the
--   store's cursors carry them.

CREATE TABLE projects (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        TEXT COLLATE "C" NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL
);

CREATE TABLE api_keys (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id  BIGINT NOT NULL REFERENCES projects (id),
    name        TEXT COLLATE "C" NOT NULL,
    role        TEXT COLLATE "C" NOT NULL,
    prefix      TEXT COLLATE "C" NOT NULL,
    hash        BYTEA NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);
CREATE INDEX api_keys_by_project ON api_keys (project_id);

CREATE TABLE categories (
    project_id  BIGINT NOT NULL REFERENCES projects (id),
    name        TEXT COLLATE "C" NOT NULL,
    description TEXT COLLATE "C",
    created_at  BIGINT NOT NULL,
    retired_at  BIGINT,
    PRIMARY KEY (project_id, name)
);

-- `metadata` repeats doc's metadata object as JSONB for the `meta.<key>=<value>` filter, which
-- is containment (`metadata @> '{"key": value}'`) served by a jsonb_path_ops GIN index.
CREATE TABLE traces (
    seq            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id     BIGINT NOT NULL,
    id             TEXT COLLATE "C" NOT NULL,
    session_id     TEXT COLLATE "C",
    user_id        TEXT COLLATE "C",
    user_role      TEXT COLLATE "C",
    environment    TEXT COLLATE "C",
    model_name     TEXT COLLATE "C",
    model_version  TEXT COLLATE "C",
    prompt_name    TEXT COLLATE "C",
    prompt_version TEXT COLLATE "C",
    started_at     BIGINT NOT NULL,
    metadata       JSONB NOT NULL,
    doc            TEXT COLLATE "C" NOT NULL
);
CREATE UNIQUE INDEX traces_by_id ON traces (project_id, id);
CREATE INDEX traces_by_time ON traces (project_id, started_at, seq);
CREATE INDEX traces_by_session ON traces (project_id, session_id, started_at, seq) WHERE session_id IS NOT NULL;
CREATE INDEX traces_by_user ON traces (project_id, user_id, started_at) WHERE user_id IS NOT NULL;
CREATE INDEX traces_by_metadata ON traces USING GIN (metadata jsonb_path_ops);

-- Tags in their own table rather than a TEXT[] column: the primary key answers "traces of this
-- project with this tag" with one btree range, already scoped to the project (a GIN index on an
-- array cannot lead with project_id without the btree_gin extension), tags only ever get added
-- (INSERT … ON CONFLICT DO NOTHING, no array rewrite), and the filter fragment is the same SQL
-- on both backends.
CREATE TABLE trace_tags (
    project_id  BIGINT NOT NULL,
    tag         TEXT COLLATE "C" NOT NULL,
    trace_seq   BIGINT NOT NULL,
    PRIMARY KEY (project_id, tag, trace_seq)
);

CREATE TABLE spans (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id  BIGINT NOT NULL,
    trace_id    TEXT COLLATE "C" NOT NULL,
    id          TEXT COLLATE "C" NOT NULL,
    started_at  BIGINT NOT NULL,
    doc         TEXT COLLATE "C" NOT NULL
);
CREATE UNIQUE INDEX spans_by_id ON spans (project_id, trace_id, id);

-- `categories` is the item's taxonomy names (NULL for kinds without categories), matched with
-- `categories @> ARRAY[name]` through a GIN index. `metadata` is the item's own metadata, which
-- the feedback list filters on.
CREATE TABLE feedback (
    seq           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id    BIGINT NOT NULL,
    id            TEXT COLLATE "C" NOT NULL,
    trace_id      TEXT COLLATE "C" NOT NULL,
    span_id       TEXT COLLATE "C",
    session_id    TEXT COLLATE "C",
    kind          TEXT COLLATE "C" NOT NULL,
    source        TEXT COLLATE "C" NOT NULL,
    author        TEXT COLLATE "C",
    rating_sign   BIGINT,
    categories    TEXT[] COLLATE "C",
    metadata      JSONB NOT NULL,
    created_at    BIGINT NOT NULL, -- the client's time, else the arrival time
    received_at   BIGINT NOT NULL,
    superseded_by TEXT COLLATE "C",
    supersession_key BIGINT,        -- digest of (trace, span, author, kind, compared trace), or NULL
    content_hash  BYTEA NOT NULL,
    doc           TEXT COLLATE "C" NOT NULL
);
CREATE UNIQUE INDEX feedback_by_id ON feedback (project_id, id);
-- Serves a trace's feedback (by prefix) and the look-up of a restated judgement's group, so
-- that each feedback row costs one random index insertion for both.
CREATE INDEX feedback_by_trace ON feedback (project_id, trace_id, supersession_key, created_at, seq);
CREATE INDEX feedback_by_time ON feedback (project_id, created_at, seq);
CREATE INDEX feedback_by_session ON feedback (project_id, session_id) WHERE session_id IS NOT NULL;
CREATE INDEX feedback_by_category ON feedback USING GIN (categories);
CREATE INDEX feedback_by_metadata ON feedback USING GIN (metadata jsonb_path_ops);

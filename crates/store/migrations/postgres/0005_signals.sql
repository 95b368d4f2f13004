-- feedloop PostgreSQL schema, version 5: implicit signals (the same tables as
-- migrations/sqlite/0005_signals.sql). Derived signals themselves are feedback rows (kind
-- 'signal', source 'automatic', ids 'auto-<rule>-…'); these tables hold the rest.

-- Each project's signal settings (`SignalSettings` as JSON text); a missing row means the
-- defaults.
CREATE TABLE signal_settings (
    project_id  BIGINT PRIMARY KEY,
    updated_at  BIGINT NOT NULL,
    doc         TEXT COLLATE "C" NOT NULL
);

-- How far the derived-signal job got, by name (see the SQLite migration). Positions only move
-- forward (GREATEST on update).
CREATE TABLE signal_progress (
    name        TEXT COLLATE "C" PRIMARY KEY,
    position    BIGINT NOT NULL
);

-- The satisfaction estimate of each trace with voting feedback.
CREATE TABLE trace_satisfaction (
    project_id      BIGINT NOT NULL,
    trace_id        TEXT COLLATE "C" NOT NULL,
    score           DOUBLE PRECISION NOT NULL,
    evidence_weight DOUBLE PRECISION NOT NULL,
    num_votes       BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (project_id, trace_id)
);
CREATE INDEX trace_satisfaction_by_score ON trace_satisfaction (project_id, score);

-- feedloop SQLite schema, version 5: implicit signals. Derived signals themselves are feedback
-- rows (kind 'signal', source 'automatic', ids 'auto-<rule>-…'); these tables hold the rest.

-- Each project's signal settings (`SignalSettings` as JSON); a missing row means the defaults.
CREATE TABLE signal_settings (
    project_id  INTEGER PRIMARY KEY,
    updated_at  INTEGER NOT NULL,
    doc         TEXT NOT NULL
);

-- How far the derived-signal job got, by name: the last vector followed (per model), the time
-- up to which a project's answers were checked for abandonment, the last feedback folded into
-- satisfaction. Positions only move forward.
CREATE TABLE signal_progress (
    name        TEXT PRIMARY KEY,
    position    INTEGER NOT NULL
) WITHOUT ROWID;

-- The satisfaction estimate of each trace with voting feedback.
CREATE TABLE trace_satisfaction (
    project_id      INTEGER NOT NULL,
    trace_id        TEXT NOT NULL,
    score           REAL NOT NULL,
    evidence_weight REAL NOT NULL,
    num_votes       INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    PRIMARY KEY (project_id, trace_id)
) WITHOUT ROWID;
CREATE INDEX trace_satisfaction_by_score ON trace_satisfaction (project_id, score);

-- feedloop SQLite schema, version 9: analytics alerts and webhooks.

-- Alerts raised by the regression and negative-spike detectors. `dedupe_key` names the
-- condition (a version pair, an hour), so a condition is alerted once.
CREATE TABLE alerts (
    id          INTEGER PRIMARY KEY,
    project_id  INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    dedupe_key  TEXT NOT NULL,
    message     TEXT NOT NULL,
    evidence    TEXT NOT NULL,     -- JSON
    created_at  INTEGER NOT NULL
);
CREATE UNIQUE INDEX alerts_by_key ON alerts (project_id, dedupe_key);
CREATE INDEX alerts_by_time ON alerts (project_id, created_at);

-- Webhook endpoints; `event_types` is a JSON array of event type names.
CREATE TABLE webhooks (
    id          INTEGER PRIMARY KEY,
    project_id  INTEGER NOT NULL,
    url         TEXT NOT NULL,
    secret      TEXT NOT NULL,
    event_types TEXT NOT NULL,
    description TEXT,
    created_at  INTEGER NOT NULL,
    deleted_at  INTEGER
);
CREATE INDEX webhooks_by_project ON webhooks (project_id);

-- The outbox: every emitted event with the exact body sent.
CREATE TABLE webhook_events (
    seq         INTEGER PRIMARY KEY,
    project_id  INTEGER NOT NULL,
    event_id    TEXT NOT NULL,
    event_type  TEXT NOT NULL,
    payload     TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

-- One delivery per (event, subscribed endpoint); `next_attempt_at` is NULL once settled.
CREATE TABLE webhook_deliveries (
    id              INTEGER PRIMARY KEY,
    project_id      INTEGER NOT NULL,
    webhook_id      INTEGER NOT NULL,
    event_seq       INTEGER NOT NULL,
    status          TEXT NOT NULL,
    num_attempts    INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER,
    created_at      INTEGER NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_by_project ON webhook_deliveries (project_id, id);

-- The delivery log: every attempt.
CREATE TABLE webhook_attempts (
    id           INTEGER PRIMARY KEY,
    delivery_id  INTEGER NOT NULL,
    at           INTEGER NOT NULL,
    status_code  INTEGER,
    error        TEXT,
    latency_ms   INTEGER NOT NULL
);
CREATE INDEX webhook_attempts_by_delivery ON webhook_attempts (delivery_id, id);

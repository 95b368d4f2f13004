-- feedloop PostgreSQL schema, version 9: analytics alerts and webhooks.

-- Alerts raised by the regression and negative-spike detectors. `dedupe_key` names the
-- condition (a version pair, an hour), so a condition is alerted once.
CREATE TABLE alerts (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id  BIGINT NOT NULL,
    kind        TEXT COLLATE "C" NOT NULL,
    dedupe_key  TEXT COLLATE "C" NOT NULL,
    message     TEXT COLLATE "C" NOT NULL,
    evidence    TEXT COLLATE "C" NOT NULL,     -- JSON
    created_at  BIGINT NOT NULL
);
CREATE UNIQUE INDEX alerts_by_key ON alerts (project_id, dedupe_key);
CREATE INDEX alerts_by_time ON alerts (project_id, created_at);

-- Webhook endpoints; `event_types` is a JSON array of event type names.
CREATE TABLE webhooks (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id  BIGINT NOT NULL,
    url         TEXT COLLATE "C" NOT NULL,
    secret      TEXT COLLATE "C" NOT NULL,
    event_types TEXT COLLATE "C" NOT NULL,
    description TEXT COLLATE "C",
    created_at  BIGINT NOT NULL,
    deleted_at  BIGINT
);
CREATE INDEX webhooks_by_project ON webhooks (project_id);

-- The outbox: every emitted event with the exact body sent.
CREATE TABLE webhook_events (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id  BIGINT NOT NULL,
    event_id    TEXT COLLATE "C" NOT NULL,
    event_type  TEXT COLLATE "C" NOT NULL,
    payload     TEXT COLLATE "C" NOT NULL,
    created_at  BIGINT NOT NULL
);

-- One delivery per (event, subscribed endpoint); `next_attempt_at` is NULL once settled.
CREATE TABLE webhook_deliveries (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id      BIGINT NOT NULL,
    webhook_id      BIGINT NOT NULL,
    event_seq       BIGINT NOT NULL,
    status          TEXT COLLATE "C" NOT NULL,
    num_attempts    BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT,
    created_at      BIGINT NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_by_project ON webhook_deliveries (project_id, id);

-- The delivery log: every attempt.
CREATE TABLE webhook_attempts (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id  BIGINT NOT NULL,
    at           BIGINT NOT NULL,
    status_code  BIGINT,
    error        TEXT COLLATE "C",
    latency_ms   BIGINT NOT NULL
);
CREATE INDEX webhook_attempts_by_delivery ON webhook_attempts (delivery_id, id);

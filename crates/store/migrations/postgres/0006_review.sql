-- feedloop PostgreSQL schema, version 6: review queues (the same tables as
-- migrations/sqlite/0006_review.sql; documents are the same JSON text).

CREATE TABLE review_queues (
    project_id  BIGINT NOT NULL,
    name        TEXT COLLATE "C" NOT NULL,
    updated_at  BIGINT NOT NULL,
    doc         TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (project_id, name)
);

-- A trace is in a queue at most once.
CREATE TABLE review_items (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id    BIGINT NOT NULL,
    queue         TEXT COLLATE "C" NOT NULL,
    trace_id      TEXT COLLATE "C" NOT NULL,
    state         TEXT COLLATE "C" NOT NULL,
    priority      DOUBLE PRECISION NOT NULL,
    assignee      TEXT COLLATE "C",
    lock_until    BIGINT,
    num_verdicts  BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    doc           TEXT COLLATE "C" NOT NULL,
    UNIQUE (project_id, queue, trace_id)
);
CREATE INDEX review_items_by_priority ON review_items (project_id, queue, priority DESC, id);
CREATE INDEX review_items_by_trace ON review_items (project_id, trace_id);

-- Who gave a verdict on which item, so that reserving skips items a reviewer already judged.
CREATE TABLE review_verdicts (
    item_id     BIGINT NOT NULL,
    reviewer    TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (item_id, reviewer)
);

-- Everything done to an item: author, time, action and its details. Append-only.
CREATE TABLE review_events (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id  BIGINT NOT NULL,
    item_id     BIGINT NOT NULL,
    at          BIGINT NOT NULL,
    author      TEXT COLLATE "C" NOT NULL,
    action      TEXT COLLATE "C" NOT NULL,
    payload     TEXT COLLATE "C" NOT NULL
);
CREATE INDEX review_events_by_item ON review_events (item_id, id);

-- How far the review-rules job got, by name (new traces, new feedback). Forward only.
CREATE TABLE review_progress (
    name        TEXT COLLATE "C" PRIMARY KEY,
    position    BIGINT NOT NULL
);

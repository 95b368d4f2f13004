-- feedloop SQLite schema, version 6: review queues. Queues and items are stored whole as JSON
-- in `doc` (`core::review::Queue`, `core::review::ReviewItem`); the other columns are derived
-- from it for filters and ordering, except an item's `id` and `priority`, which the columns own
-- (priorities are recomputed without rewriting the document).

CREATE TABLE review_queues (
    project_id  INTEGER NOT NULL,
    name        TEXT NOT NULL,
    updated_at  INTEGER NOT NULL,
    doc         TEXT NOT NULL,
    PRIMARY KEY (project_id, name)
) WITHOUT ROWID;

-- A trace is in a queue at most once.
CREATE TABLE review_items (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id    INTEGER NOT NULL,
    queue         TEXT NOT NULL,
    trace_id      TEXT NOT NULL,
    state         TEXT NOT NULL,
    priority      REAL NOT NULL,
    assignee      TEXT,
    lock_until    INTEGER,
    num_verdicts  INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    doc           TEXT NOT NULL,
    UNIQUE (project_id, queue, trace_id)
);
CREATE INDEX review_items_by_priority ON review_items (project_id, queue, priority DESC, id);
CREATE INDEX review_items_by_trace ON review_items (project_id, trace_id);

-- Who gave a verdict on which item, so that reserving skips items a reviewer already judged.
CREATE TABLE review_verdicts (
    item_id     INTEGER NOT NULL,
    reviewer    TEXT NOT NULL,
    PRIMARY KEY (item_id, reviewer)
) WITHOUT ROWID;

-- Everything done to an item: author, time, action and its details. Append-only.
CREATE TABLE review_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id  INTEGER NOT NULL,
    item_id     INTEGER NOT NULL,
    at          INTEGER NOT NULL,
    author      TEXT NOT NULL,
    action      TEXT NOT NULL,
    payload     TEXT NOT NULL
);
CREATE INDEX review_events_by_item ON review_events (item_id, id);

-- How far the review-rules job got, by name (new traces, new feedback). Forward only.
CREATE TABLE review_progress (
    name        TEXT PRIMARY KEY,
    position    INTEGER NOT NULL
) WITHOUT ROWID;

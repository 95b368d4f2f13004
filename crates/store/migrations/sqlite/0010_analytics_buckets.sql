-- feedloop SQLite schema, version 10: the bucket cache of feedback aggregations.
--
-- A feedback trend over a closed time bucket does not change unless old records change, so
-- each whole, closed bucket of an aggregation is kept once computed (`analytics_buckets`, one
-- row per project, bucket and query: the bucket width, grouping and filter, hashed). The
-- triggers below keep it true: any write that touches feedback created more than an hour ago
-- (or the trace, tags or satisfaction that such feedback is counted with) deletes the cached
-- buckets around it and bumps the project's epoch. Fresh writes pay nothing, because a bucket
-- is cached only once it ended two hours before (see `crate::analytics_cache`, which also
-- explains the epoch: a result computed from a snapshot older than a bump is not kept).

CREATE TABLE analytics_buckets (
    project_id   INTEGER NOT NULL,
    bucket_start INTEGER NOT NULL,
    query_key    TEXT NOT NULL,
    bucket_end   INTEGER NOT NULL,
    counts       TEXT NOT NULL,     -- JSON array of the bucket's FeedbackCounts
    PRIMARY KEY (project_id, bucket_start, query_key)
) WITHOUT ROWID;

CREATE TABLE analytics_epochs (
    project_id INTEGER PRIMARY KEY,
    epoch      INTEGER NOT NULL
);

-- Every invalidation goes through this table: a row names the feedback times [from_time,
-- to_time] whose buckets must go; its trigger does the work and removes the row again.
CREATE TABLE analytics_invalidations (
    project_id INTEGER NOT NULL,
    from_time  INTEGER NOT NULL,
    to_time    INTEGER NOT NULL
);

-- Buckets are at most a week wide (604800000000 µs), so a bucket holding time t starts
-- after t minus a week: the delete is a range of the primary key.
CREATE TRIGGER analytics_invalidate AFTER INSERT ON analytics_invalidations
BEGIN
    INSERT INTO analytics_epochs (project_id, epoch) VALUES (NEW.project_id, 1)
        ON CONFLICT (project_id) DO UPDATE SET epoch = epoch + 1;
    DELETE FROM analytics_buckets
     WHERE project_id = NEW.project_id
       AND bucket_start > NEW.from_time - 604800000000
       AND bucket_start <= NEW.to_time
       AND bucket_end > NEW.from_time;
    DELETE FROM analytics_invalidations WHERE rowid = NEW.rowid;
END;

-- "Old" is older than an hour by the database's clock: 3600000000 µs.
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

-- A trace's fields, tags and satisfaction are counted with each of its feedback items: a
-- change invalidates the time span of its feedback, when some of it is old (an index range
-- of feedback_by_trace).
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

-- feedloop PostgreSQL schema, version 10: the bucket cache of feedback aggregations.
--
-- A feedback trend over a closed time bucket does not change unless old records change, so
-- each whole, closed bucket of an aggregation is kept once computed (`analytics_buckets`, one
-- row per project, bucket and query: the bucket width, grouping and filter, hashed). The
-- triggers below keep it true: any write that touches feedback created more than an hour ago
-- (or the trace, tags or satisfaction that such feedback is counted with) deletes the cached
-- buckets around it, holding the project's analytics lock shared until it commits. A query
-- stores buckets only under that lock taken exclusively (and only if it gets it at once), so
-- it never keeps a result that misses a write in flight. Fresh writes pay nothing, because a
-- bucket is cached only once it ended two hours before (see `crate::analytics_cache`).

CREATE TABLE analytics_buckets (
    project_id   BIGINT NOT NULL,
    bucket_start BIGINT NOT NULL,
    query_key    TEXT COLLATE "C" NOT NULL,
    bucket_end   BIGINT NOT NULL,
    counts       TEXT NOT NULL,     -- JSON array of the bucket's FeedbackCounts
    PRIMARY KEY (project_id, bucket_start, query_key)
);

-- The advisory lock that orders invalidations (shared) against storing buckets (exclusive).
CREATE FUNCTION feedloop_analytics_lock_key(project BIGINT) RETURNS BIGINT
LANGUAGE sql IMMUTABLE AS $$ SELECT hashtextextended('feedloop analytics buckets', project) $$;

-- Feedback created before this (an hour ago by the database's clock, in µs) is "old".
CREATE FUNCTION feedloop_analytics_old_before() RETURNS BIGINT
LANGUAGE sql VOLATILE AS $$
    SELECT (EXTRACT(EPOCH FROM clock_timestamp()) * 1000000)::BIGINT - 3600000000
$$;

-- Drops the cached buckets holding feedback times [from_time, to_time]. Buckets are at most a
-- week wide (604800000000 µs), so the delete is a range of the primary key.
CREATE FUNCTION feedloop_analytics_invalidate(project BIGINT, from_time BIGINT, to_time BIGINT)
RETURNS VOID LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared(feedloop_analytics_lock_key(project));
    DELETE FROM analytics_buckets
     WHERE project_id = project
       AND bucket_start > from_time - 604800000000
       AND bucket_start <= to_time
       AND bucket_end > from_time;
END $$;

-- A trace's fields, tags and satisfaction are counted with each of its feedback items: a
-- change invalidates the time span of its feedback, when some of it is old.
CREATE FUNCTION feedloop_analytics_invalidate_trace(project BIGINT, trace TEXT)
RETURNS VOID LANGUAGE plpgsql AS $$
DECLARE
    first_time BIGINT;
    last_time BIGINT;
BEGIN
    SELECT MIN(created_at), MAX(created_at) INTO first_time, last_time
      FROM feedback WHERE project_id = project AND trace_id = trace;
    IF first_time < feedloop_analytics_old_before() THEN
        PERFORM feedloop_analytics_invalidate(project, first_time, last_time);
    END IF;
END $$;

CREATE FUNCTION feedloop_analytics_feedback_changed() RETURNS TRIGGER
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.created_at < feedloop_analytics_old_before() THEN
        PERFORM feedloop_analytics_invalidate(OLD.project_id, OLD.created_at, OLD.created_at);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.created_at < feedloop_analytics_old_before() THEN
        PERFORM feedloop_analytics_invalidate(NEW.project_id, NEW.created_at, NEW.created_at);
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION feedloop_analytics_trace_changed() RETURNS TRIGGER
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM feedloop_analytics_invalidate_trace(OLD.project_id, OLD.id);
    ELSE
        PERFORM feedloop_analytics_invalidate_trace(NEW.project_id, NEW.id);
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION feedloop_analytics_tag_changed() RETURNS TRIGGER
LANGUAGE plpgsql AS $$
DECLARE
    changed trace_tags;
BEGIN
    IF TG_OP = 'DELETE' THEN changed := OLD; ELSE changed := NEW; END IF;
    PERFORM feedloop_analytics_invalidate_trace(changed.project_id, t.id)
       FROM traces t WHERE t.seq = changed.trace_seq;
    RETURN NULL;
END $$;

CREATE FUNCTION feedloop_analytics_satisfaction_changed() RETURNS TRIGGER
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM feedloop_analytics_invalidate_trace(OLD.project_id, OLD.trace_id);
    ELSE
        PERFORM feedloop_analytics_invalidate_trace(NEW.project_id, NEW.trace_id);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER analytics_feedback AFTER INSERT OR UPDATE OR DELETE ON feedback
    FOR EACH ROW EXECUTE FUNCTION feedloop_analytics_feedback_changed();
CREATE TRIGGER analytics_traces AFTER INSERT OR UPDATE OR DELETE ON traces
    FOR EACH ROW EXECUTE FUNCTION feedloop_analytics_trace_changed();
CREATE TRIGGER analytics_tags AFTER INSERT OR DELETE ON trace_tags
    FOR EACH ROW EXECUTE FUNCTION feedloop_analytics_tag_changed();
CREATE TRIGGER analytics_satisfaction AFTER INSERT OR UPDATE OR DELETE ON trace_satisfaction
    FOR EACH ROW EXECUTE FUNCTION feedloop_analytics_satisfaction_changed();

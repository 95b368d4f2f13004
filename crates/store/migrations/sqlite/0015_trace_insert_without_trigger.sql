-- A trace's INSERT ran migration 10's trigger, and a statement with a trigger keeps a statement
-- journal: every page the insert touched (the table's last page, a leaf of each index) was
-- copied before it changed, about an eighth of the writer's time under OTLP ingest. The
-- writer now does the trigger's work itself, after the insert (sqlite/ingest.rs,
-- `invalidate_old_feedback`): a new trace whose feedback came first and is older than the open
-- hour invalidates that feedback's time span.
DROP TRIGGER analytics_trace_insert;

-- The trace list's equality filters, each led by its column and ending in the list's order
-- (newest first), so that a filter matching few traces reads only them instead of walking every
-- trace of the project by time (seconds at a million traces; now a few index pages). Partial:
-- traces without the field cost nothing.
CREATE INDEX traces_by_model_name ON traces (project_id, model_name, started_at, seq) WHERE model_name IS NOT NULL;
CREATE INDEX traces_by_model_version ON traces (project_id, model_version, started_at, seq) WHERE model_version IS NOT NULL;
CREATE INDEX traces_by_prompt_name ON traces (project_id, prompt_name, started_at, seq) WHERE prompt_name IS NOT NULL;
CREATE INDEX traces_by_prompt_version ON traces (project_id, prompt_version, started_at, seq) WHERE prompt_version IS NOT NULL;
CREATE INDEX traces_by_environment ON traces (project_id, environment, started_at, seq) WHERE environment IS NOT NULL;
CREATE INDEX traces_by_user_role ON traces (project_id, user_role, started_at, seq) WHERE user_role IS NOT NULL;

/* sim_metrics--1.6--1.7.sql */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION sim_metrics UPDATE TO '1.7'" to load this file. \quit

--------------------------------------------------------------------------
-- 1.7: backfill, and the labelled history
--------------------------------------------------------------------------

CREATE FUNCTION sim_backfill(span interval, incidents jsonb DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'sim_backfill'
LANGUAGE C VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION sim_backfill(interval, jsonb) IS
  'Write span of history ending at the current simulated time, from the same model as live ticking (bit for bit), with automatic incidents and the incidents placed by hand ([{scenario, servers, at, intensity, duration}]); the fleet goes on from its end once the transaction commits. Needs a fleet with no history but the running session''s first rows, which it replaces. Returns the rows written.';

-- Every sample with the ground truth: the run acting on the server, its
-- scenario and the phase it was in (NULL when normal). The view reads
-- through a SQL function the planner inlines, so that it does not depend
-- on the history table: a history replaced by a partitioned one (README,
-- pg_partman) keeps its view. security invoker: it shows what the caller
-- may read of the history and the log.
CREATE FUNCTION sim_history_labelled_rows(
    OUT id bigint, OUT server_id text, OUT "timestamp" timestamptz, OUT tick bigint,
    OUT cpu_usage numeric, OUT memory_usage numeric, OUT disk_usage numeric,
    OUT network_io bigint, OUT status text, OUT session_id text,
    OUT run_id bigint, OUT parent_run_id bigint, OUT scenario text, OUT phase text,
    OUT is_incident boolean)
RETURNS SETOF record
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
SELECT h.id, h.server_id, h."timestamp", h.tick, h.cpu_usage, h.memory_usage, h.disk_usage,
       h.network_io, h.status, h.session_id,
       h.scenario_run_id, l.parent_run_id, l.scenario_name, l.phase,
       h.scenario_run_id IS NOT NULL
  FROM @extschema@.server_metrics_history h
  LEFT JOIN LATERAL (
       SELECT x.scenario_name, x.phase, x.parent_run_id
         FROM @extschema@.scenario_execution_log x
        WHERE x.run_id OPERATOR(pg_catalog.=) h.scenario_run_id
          AND x.phase OPERATOR(pg_catalog.<>) 'interrupted'
          AND x.started_at OPERATOR(pg_catalog.<=) h."timestamp"
        ORDER BY x.started_at DESC, x.id DESC
        LIMIT 1) l ON true
$$;
COMMENT ON FUNCTION sim_history_labelled_rows() IS 'The rows of the view sim_history_labelled.';

CREATE VIEW sim_history_labelled WITH (security_invoker = true) AS
SELECT * FROM sim_history_labelled_rows();
COMMENT ON VIEW sim_history_labelled IS
  'Every sample of server_metrics_history with its ground truth: run_id, scenario and phase of the scenario run acting on the server (NULL when normal), and is_incident.';

REVOKE ALL ON FUNCTION sim_backfill(interval, jsonb) FROM PUBLIC;
-- a backfill replaces the runs a fresh install's first minutes logged
GRANT DELETE ON scenario_execution_log TO sim_metrics_writer;
GRANT SELECT ON sim_history_labelled TO PUBLIC;
GRANT EXECUTE ON FUNCTION sim_history_labelled_rows() TO PUBLIC;

DO $admin17$
DECLARE
    admin text := COALESCE(NULLIF(pg_catalog.current_setting('sim_metrics.admin_role', true), ''), 'postgres');
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = admin AND NOT rolsuper) THEN
        RETURN;
    END IF;
    EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION sim_backfill(interval, jsonb) TO %I WITH GRANT OPTION', admin);
END
$admin17$;

/* sim_metrics--1.7--1.8.sql */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION sim_metrics UPDATE TO '1.8'" to load this file. \quit

--------------------------------------------------------------------------
-- 1.8: the anomaly detector
--------------------------------------------------------------------------

-- Rows written before 1.8 (and rows recovered from a 1.7 mirror) have no
-- score: NULL, not 0. The check is NOT VALID: every existing row is NULL,
-- and validating would scan the whole history under an exclusive lock
-- while the writer waits and the ring fills.
ALTER TABLE server_metrics_history ADD COLUMN anomaly_score real;
ALTER TABLE server_metrics_history ADD CONSTRAINT server_metrics_history_anomaly_score_check
    CHECK (anomaly_score >= 0 AND anomaly_score <= 1) NOT VALID;
COMMENT ON COLUMN server_metrics_history.anomaly_score IS
  'The built-in detector''s score of this sample, 0 (normal) to 1, from the server''s own earlier samples only; NULL for rows written before 1.8.';

-- The live reads gain the score and the signal behind it. Their result
-- type changes, so they are made anew (a view of yours over them must be
-- dropped first; the wrappers sim_expose() made are made anew below).
DROP FUNCTION sim_current_metrics();
CREATE FUNCTION sim_current_metrics(
    OUT server_id text, OUT name text, OUT hostname text, OUT role text,
    OUT location text, OUT environment text,
    OUT cpu_usage double precision, OUT memory_usage double precision,
    OUT disk_usage double precision, OUT network_io bigint,
    OUT network_usage double precision, OUT response_time_ms double precision,
    OUT status text, OUT scenario text, OUT tick bigint,
    OUT sim_time timestamptz, OUT updated_at timestamptz,
    OUT anomaly_score double precision, OUT anomaly_metric text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'sim_current_metrics'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION sim_current_metrics() IS
  'The live fleet from shared memory: one row per server, as of the last tick, with the detector''s anomaly_score (0..1) and the metric behind it (anomaly_metric, NULL at 0).';

DROP FUNCTION sim_server_metrics(text);
CREATE FUNCTION sim_server_metrics(
    server_id text,
    OUT server_id text, OUT name text, OUT hostname text, OUT role text,
    OUT location text, OUT environment text,
    OUT cpu_usage double precision, OUT memory_usage double precision,
    OUT disk_usage double precision, OUT network_io bigint,
    OUT network_usage double precision, OUT response_time_ms double precision,
    OUT status text, OUT scenario text, OUT tick bigint,
    OUT sim_time timestamptz, OUT updated_at timestamptz,
    OUT anomaly_score double precision, OUT anomaly_metric text, OUT source text)
RETURNS record
AS 'MODULE_PATHNAME', 'sim_server_metrics'
LANGUAGE C STRICT STABLE PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION sim_server_metrics(text) IS
  'One server''s latest row from the nearest layer: shared memory, else Redis (at most redis_timeout), else its latest history row; source says which.';

GRANT EXECUTE ON FUNCTION sim_current_metrics(), sim_server_metrics(text) TO PUBLIC;

-- Wrappers sim_expose() made of the two: the same wrapper (their OUT
-- columns are the function's), owner and grants, with the new columns.
DO $wrappers$
DECLARE
    ext_schema name;
    w record;
    g record;
    fn pg_catalog.oid;
    made pg_catalog.regprocedure;
BEGIN
    SELECT n.nspname INTO ext_schema FROM pg_catalog.pg_extension e
      JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) e.extnamespace
     WHERE e.extname OPERATOR(pg_catalog.=) 'sim_metrics';
    FOR w IN
        SELECT p.oid, n.nspname, p.proname, p.proowner, p.proacl
          FROM pg_catalog.pg_proc p
          JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) p.pronamespace
          JOIN pg_catalog.pg_language l ON l.oid OPERATOR(pg_catalog.=) p.prolang
         WHERE l.lanname OPERATOR(pg_catalog.=) 'sql'
           AND n.nspname OPERATOR(pg_catalog.<>) ext_schema
           AND ((p.proname OPERATOR(pg_catalog.=) 'sim_current_metrics'
                 AND p.prosrc OPERATOR(pg_catalog.=) pg_catalog.format('SELECT * FROM %I.%I()', ext_schema, 'sim_current_metrics'))
             OR (p.proname OPERATOR(pg_catalog.=) 'sim_server_metrics'
                 AND p.prosrc OPERATOR(pg_catalog.=) pg_catalog.format('SELECT * FROM %I.%I($1)', ext_schema, 'sim_server_metrics')))
    LOOP
        fn := pg_catalog.format('%I.%I', ext_schema, w.proname)::pg_catalog.regproc;
        EXECUTE pg_catalog.format('DROP FUNCTION %s', w.oid::pg_catalog.regprocedure);
        EXECUTE pg_catalog.format(
            'CREATE FUNCTION %I.%I(%s) RETURNS %s LANGUAGE sql STABLE SECURITY INVOKER'
            ' SET search_path = '''' AS %L',
            w.nspname, w.proname, pg_catalog.pg_get_function_arguments(fn),
            pg_catalog.pg_get_function_result(fn),
            CASE WHEN w.proname OPERATOR(pg_catalog.=) 'sim_current_metrics'
                 THEN pg_catalog.format('SELECT * FROM %I.%I()', ext_schema, w.proname)
                 ELSE pg_catalog.format('SELECT * FROM %I.%I($1)', ext_schema, w.proname) END);
        SELECT p.oid::pg_catalog.regprocedure INTO made FROM pg_catalog.pg_proc p
         WHERE p.pronamespace OPERATOR(pg_catalog.=) (SELECT x.oid FROM pg_catalog.pg_namespace x
                                                     WHERE x.nspname OPERATOR(pg_catalog.=) w.nspname)
           AND p.proname OPERATOR(pg_catalog.=) w.proname
           AND p.proargtypes OPERATOR(pg_catalog.=) (SELECT f.proargtypes FROM pg_catalog.pg_proc f
                                                    WHERE f.oid OPERATOR(pg_catalog.=) fn);
        -- made by this script, it would be the extension's: it stays the user's
        EXECUTE pg_catalog.format('ALTER EXTENSION sim_metrics DROP FUNCTION %s', made);
        EXECUTE pg_catalog.format('ALTER FUNCTION %s OWNER TO %s', made, w.proowner::pg_catalog.regrole::text);
        EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', made);
        FOR g IN SELECT a.grantee FROM pg_catalog.aclexplode(w.proacl) a
                  WHERE a.privilege_type OPERATOR(pg_catalog.=) 'EXECUTE' AND a.grantee OPERATOR(pg_catalog.<>) w.proowner
        LOOP
            EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO %s', made,
                CASE WHEN g.grantee OPERATOR(pg_catalog.=) 0::pg_catalog.oid THEN 'PUBLIC'
                     ELSE g.grantee::pg_catalog.regrole::text END);
        END LOOP;
    END LOOP;
END
$wrappers$;

-- The labelled history shows the score beside the truth.
DROP VIEW sim_history_labelled;
DROP FUNCTION sim_history_labelled_rows();
CREATE FUNCTION sim_history_labelled_rows(
    OUT id bigint, OUT server_id text, OUT "timestamp" timestamptz, OUT tick bigint,
    OUT cpu_usage numeric, OUT memory_usage numeric, OUT disk_usage numeric,
    OUT network_io bigint, OUT status text, OUT session_id text,
    OUT run_id bigint, OUT parent_run_id bigint, OUT scenario text, OUT phase text,
    OUT is_incident boolean, OUT anomaly_score real)
RETURNS SETOF record
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
SELECT h.id, h.server_id, h."timestamp", h.tick, h.cpu_usage, h.memory_usage, h.disk_usage,
       h.network_io, h.status, h.session_id,
       h.scenario_run_id, l.parent_run_id, l.scenario_name, l.phase,
       h.scenario_run_id IS NOT NULL, h.anomaly_score
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
  'Every sample of server_metrics_history with its ground truth: run_id, scenario and phase of the scenario run acting on the server (NULL when normal), is_incident, and the detector''s anomaly_score.';
GRANT SELECT ON sim_history_labelled TO PUBLIC;
GRANT EXECUTE ON FUNCTION sim_history_labelled_rows() TO PUBLIC;

CREATE FUNCTION sim_anomaly_scores(ts timestamptz[], value double precision[],
    OUT ts timestamptz, OUT value double precision, OUT score double precision,
    OUT onset double precision)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'sim_anomaly_scores'
LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION sim_anomaly_scores(timestamptz[], double precision[]) IS
  'Score a series with the built-in detector, in time order, each row from the rows before it only: one row per element; score (0 normal .. 1) says how far off the series is now, as the fleet''s anomaly_score (either way); onset says how new that is, once an event (what NAB rewards). A NULL or non-finite value gets NULL. The first 64 rows score 0 (warm-up).';
GRANT EXECUTE ON FUNCTION sim_anomaly_scores(timestamptz[], double precision[]) TO PUBLIC;

-- The dashboard carries each server's score and how many are over
-- sim_metrics.anomaly_threshold.
CREATE OR REPLACE FUNCTION sim_dashboard(status text DEFAULT NULL, page integer DEFAULT 1,
    page_size integer DEFAULT 50)
RETURNS jsonb
LANGUAGE plpgsql STABLE PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    want text := sim_dashboard.status;
    threshold double precision :=
        COALESCE(NULLIF(pg_catalog.current_setting('sim_metrics.anomaly_threshold', true), '')::double precision, 0.9);
    result jsonb;
BEGIN
    IF want IS NOT NULL AND want NOT IN ('online', 'warning', 'critical', 'offline') THEN
        RAISE EXCEPTION 'unknown status "%"', want USING ERRCODE = '22023',
            HINT = 'Use online, warning, critical or offline, or NULL for every server.';
    END IF;
    IF page IS NULL OR page < 1 THEN
        RAISE EXCEPTION 'page must be 1 or more' USING ERRCODE = '22023',
            HINT = 'Pages count from 1.';
    END IF;
    IF page_size IS NULL OR page_size < 1 OR page_size > 1000 THEN
        RAISE EXCEPTION 'page_size must be between 1 and 1000' USING ERRCODE = '22023',
            HINT = 'Ask for more pages rather than one larger page.';
    END IF;
    WITH m AS MATERIALIZED (SELECT * FROM @extschema@.sim_current_metrics()),
    f AS (SELECT * FROM m WHERE want IS NULL OR m.status OPERATOR(pg_catalog.=) want),
    n AS (SELECT (SELECT count(*) FROM m) AS all_servers, (SELECT count(*) FROM f) AS matching),
    p AS (SELECT * FROM f ORDER BY f.server_id COLLATE "C"
          LIMIT page_size OFFSET (page - 1)::bigint * page_size)
    SELECT jsonb_build_object(
        'success', true,
        'timestamp', (SELECT max(m.sim_time) FROM m),
        'data', COALESCE((SELECT jsonb_agg(jsonb_build_object(
                    'id', p.server_id, 'name', p.name, 'hostname', p.hostname,
                    'status', p.status, 'cpu', p.cpu_usage, 'memory', p.memory_usage,
                    'disk', p.disk_usage, 'network', p.network_usage,
                    'network_io', p.network_io, 'responseTime', p.response_time_ms,
                    'location', p.location, 'role', p.role, 'environment', p.environment,
                    'scenario', p.scenario, 'tick', p.tick,
                    'anomalyScore', p.anomaly_score, 'anomalyMetric', p.anomaly_metric)
                    ORDER BY p.server_id COLLATE "C")
                  FROM p), '[]'::jsonb),
        'summary', jsonb_build_object(
            'total', n.all_servers,
            'statusSummary', (SELECT jsonb_build_object(
                'online', count(*) FILTER (WHERE m.status = 'online'),
                'warning', count(*) FILTER (WHERE m.status = 'warning'),
                'critical', count(*) FILTER (WHERE m.status = 'critical'),
                'offline', count(*) FILTER (WHERE m.status = 'offline')) FROM m),
            'anomalySummary', (SELECT jsonb_build_object(
                'threshold', threshold,
                'anomalous', count(*) FILTER (WHERE m.anomaly_score >= threshold),
                'maxScore', COALESCE(max(m.anomaly_score), 0),
                'top', COALESCE((SELECT jsonb_agg(jsonb_build_object('id', t.server_id,
                            'score', t.anomaly_score, 'metric', t.anomaly_metric)
                            ORDER BY t.anomaly_score DESC, t.server_id COLLATE "C")
                          FROM (SELECT * FROM m WHERE m.anomaly_score >= threshold
                                 ORDER BY m.anomaly_score DESC, m.server_id COLLATE "C" LIMIT 5) t),
                          '[]'::jsonb)) FROM m)),
        'pagination', jsonb_build_object(
            'page', page, 'limit', page_size, 'total', n.matching,
            'totalPages', (n.matching + page_size - 1) / page_size,
            'hasNext', page::bigint * page_size < n.matching,
            'hasPrev', page > 1))
      INTO result
      FROM n;
    RETURN result;
END
$fn$;
COMMENT ON FUNCTION sim_dashboard(text, integer, integer) IS
  'The live fleet as one JSON document in the dashboard''s servers-unified shape: success, timestamp (simulated time of the data), data[] (id, name, hostname, status, cpu, memory, disk, network %, network_io, responseTime, location, role, environment, scenario, tick, anomalyScore, anomalyMetric), summary.statusSummary, summary.anomalySummary (threshold = sim_metrics.anomaly_threshold, anomalous servers, maxScore, the top 5), pagination. Reads shared memory only: never waits on Redis.';

-- How good is a detector: NAB's scoring against the ground truth.
CREATE FUNCTION sim_detector_report(since timestamptz, until timestamptz, scores regclass DEFAULT NULL,
    OUT profile text, OUT score double precision, OUT threshold double precision,
    OUT true_positives bigint, OUT false_positives bigint, OUT false_negatives bigint,
    OUT "precision" double precision, OUT recall double precision, OUT median_delay interval)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'sim_detector_report'
LANGUAGE C VOLATILE PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION sim_detector_report(timestamptz, timestamptz, regclass) IS
  'Score a detector against sim_incident_labels over [since, until) of simulated time with NAB''s scoring: the built-in anomaly_score, or your table of (server_id text, "timestamp" timestamptz, score real). One row per NAB profile (standard, reward_low_fp, reward_low_fn): NAB-normalised score (100 perfect, 0 a detector that never fires), the threshold that scores best, and event-wise counts at it (one run on one server = one window; overlapping runs on a server make one), precision, recall, median delay from a window''s start to its first alarm.';

CREATE FUNCTION sim_score_detector(scores regclass, windows regclass,
    probation double precision DEFAULT 0.15, fixed_threshold double precision DEFAULT NULL,
    OUT profile text, OUT score double precision, OUT threshold double precision,
    OUT true_positives bigint, OUT false_positives bigint, OUT false_negatives bigint,
    OUT "precision" double precision, OUT recall double precision, OUT median_delay interval)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'sim_score_detector'
LANGUAGE C VOLATILE PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION sim_score_detector(regclass, regclass, double precision, double precision) IS
  'Score any series of scores, (server_id text, "timestamp" timestamptz, score real), against any labelled windows, (server_id text, window_start timestamptz, window_end timestamptz), both ends inclusive, with NAB''s scoring: the columns of sim_detector_report(). probation: the share of each series'' first rows whose alarms are ignored (NAB: 0.15); fixed_threshold: score at this threshold (NULL: the best).';

GRANT EXECUTE ON FUNCTION sim_detector_report(timestamptz, timestamptz, regclass),
    sim_score_detector(regclass, regclass, double precision, double precision) TO PUBLIC;

-- Default privileges (such as Supabase's on extensions) may have granted
-- anything on what this script made: every grant but the owner's goes, then
-- the grants above are made again.
DO $grants18$
DECLARE
    g record;
BEGIN
    FOR g IN
        SELECT pg_catalog.format('FUNCTION %s', p.oid::pg_catalog.regprocedure) AS obj, a.grantee
          FROM pg_catalog.pg_proc p CROSS JOIN LATERAL pg_catalog.aclexplode(p.proacl) a
         WHERE p.oid OPERATOR(pg_catalog.=) ANY (ARRAY['sim_current_metrics()'::pg_catalog.regprocedure,
                 'sim_server_metrics(text)'::pg_catalog.regprocedure,
                 'sim_history_labelled_rows()'::pg_catalog.regprocedure,
                 'sim_anomaly_scores(timestamptz[], double precision[])'::pg_catalog.regprocedure,
                 'sim_detector_report(timestamptz, timestamptz, regclass)'::pg_catalog.regprocedure,
                 'sim_score_detector(regclass, regclass, double precision, double precision)'::pg_catalog.regprocedure]::pg_catalog.oid[])
           AND a.grantee OPERATOR(pg_catalog.<>) p.proowner
        UNION
        SELECT pg_catalog.format('TABLE %s', c.oid::pg_catalog.regclass), a.grantee
          FROM pg_catalog.pg_class c CROSS JOIN LATERAL pg_catalog.aclexplode(c.relacl) a
         WHERE c.oid OPERATOR(pg_catalog.=) 'sim_history_labelled'::pg_catalog.regclass
           AND a.grantee OPERATOR(pg_catalog.<>) c.relowner
    LOOP
        EXECUTE pg_catalog.format('REVOKE ALL ON %s FROM %s', g.obj,
            CASE WHEN g.grantee OPERATOR(pg_catalog.=) 0::pg_catalog.oid THEN 'PUBLIC' ELSE g.grantee::pg_catalog.regrole::text END);
    END LOOP;
END
$grants18$;
GRANT EXECUTE ON FUNCTION sim_current_metrics(), sim_server_metrics(text), sim_history_labelled_rows(),
    sim_anomaly_scores(timestamptz[], double precision[]),
    sim_detector_report(timestamptz, timestamptz, regclass),
    sim_score_detector(regclass, regclass, double precision, double precision) TO PUBLIC;
GRANT SELECT ON sim_history_labelled TO PUBLIC;

/* sim_metrics--1.8--1.9.sql */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION sim_metrics UPDATE TO '1.9'" to load this file. \quit

--------------------------------------------------------------------------
-- 1.9: forecasts and predicted alerts
--------------------------------------------------------------------------

CREATE FUNCTION sim_forecast(server_id text, metric text, horizon interval,
    training interval DEFAULT '14 days', as_of timestamptz DEFAULT NULL,
    OUT sim_time timestamptz, OUT forecast double precision,
    OUT lo_80 double precision, OUT hi_80 double precision,
    OUT lo_95 double precision, OUT hi_95 double precision)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'sim_forecast'
LANGUAGE C VOLATILE PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION sim_forecast(text, text, interval, interval, timestamptz) IS
  'Forecast a server''s cpu_usage, memory_usage, disk_usage or network_usage every tick from the current simulated time to horizon ahead, with 80 % and 95 % prediction intervals, fitted on the training span of its history (sim_history: the table and the ring): a daily profile (median of 5-minute slots over days), a trend (disk growth), and where the series is now; labelled incidents and offline samples do not shape the fit. Needs at least 2 usable days. as_of: the forecast that earlier simulated time would have made from the samples before it (a backtest).';

CREATE FUNCTION sim_forecast_series(ts timestamptz[], value double precision[], horizon interval,
    OUT ts timestamptz, OUT forecast double precision,
    OUT lo_80 double precision, OUT hi_80 double precision,
    OUT lo_95 double precision, OUT hi_95 double precision)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'sim_forecast_series'
LANGUAGE C IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION sim_forecast_series(timestamptz[], double precision[], interval) IS
  'The forecast of sim_forecast() for any series in time order (its grid: the median gap between its times), trained on all of it, from its last time to horizon ahead. NULL values are gaps. Needs at least 2 days of rows.';

CREATE FUNCTION sim_predict_alerts(horizon interval DEFAULT '1 hour',
    OUT server_id text, OUT metric text, OUT status text, OUT eta timestamptz,
    OUT probability double precision, OUT current double precision)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'sim_predict_alerts'
LANGUAGE C VOLATILE PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION sim_predict_alerts(interval) IS
  'The thresholds (the role''s warning and critical) each live server''s cpu_usage, memory_usage, disk_usage or network_usage is predicted to cross within horizon, from its last half hour (the ring and the table): one row a crossing, with its eta, the probability that it happens within horizon, and the current value. A prediction needs a steady, new and fast climb (see the README).';

CREATE FUNCTION sim_alert_report(since timestamptz, until timestamptz, horizon interval DEFAULT '1 hour',
    OUT crossings bigint, OUT reachable bigint, OUT predicted bigint, OUT recall double precision,
    OUT median_lead interval, OUT predictions bigint, OUT false_predictions bigint,
    OUT false_per_server_day double precision, OUT server_days double precision)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'sim_alert_report'
LANGUAGE C VOLATILE PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION sim_alert_report(timestamptz, timestamptz, interval) IS
  'sim_predict_alerts()''s predictor replayed at every tick of [since, until) over server_metrics_history, scored against what happened: crossings = critical crossings of memory during a memory_leak run and of disk during a disk_full run; reachable = of them, those at least 5 minutes after their run began; predicted = those predicted at least 5 minutes ahead; recall = predicted / crossings; median_lead; predictions = prediction events (a run of ticks predicting one threshold of one metric), false_predictions = those whose threshold was not crossed within horizon of their end; false_per_server_day.';

-- The dashboard carries the alerts predicted for the next hour.
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
    a AS MATERIALIZED (SELECT * FROM @extschema@.sim_predict_alerts('1 hour')),
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
                          '[]'::jsonb)) FROM m),
            'alertForecast', (SELECT jsonb_build_object(
                'horizon', '1 hour',
                'warning', count(*) FILTER (WHERE a.status = 'warning'),
                'critical', count(*) FILTER (WHERE a.status = 'critical'),
                'next', COALESCE((SELECT jsonb_agg(jsonb_build_object('id', t.server_id,
                            'metric', t.metric, 'status', t.status, 'eta', t.eta,
                            'probability', t.probability, 'current', t.current)
                            ORDER BY t.eta, t.server_id COLLATE "C", t.metric COLLATE "C")
                          FROM (SELECT * FROM a ORDER BY a.eta, a.server_id COLLATE "C", a.metric COLLATE "C"
                                 LIMIT 5) t), '[]'::jsonb)) FROM a)),
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
  'The live fleet as one JSON document in the dashboard''s servers-unified shape: success, timestamp (simulated time of the data), data[] (id, name, hostname, status, cpu, memory, disk, network %, network_io, responseTime, location, role, environment, scenario, tick, anomalyScore, anomalyMetric), summary.statusSummary, summary.anomalySummary (threshold = sim_metrics.anomaly_threshold, anomalous servers, maxScore, the top 5), summary.alertForecast (sim_predict_alerts(''1 hour''): warning and critical crossings predicted, the next 5 by eta), pagination. Reads shared memory and the last half hour of history: never waits on Redis.';

-- sim_expose() wraps the forecasts too: a dashboard's "AI prediction"
-- panel calls them over PostgREST. Wrappers made before stay as they are;
-- running sim_expose() again adds the new ones.
CREATE OR REPLACE FUNCTION sim_expose(schema name, roles name[])
RETURNS SETOF regprocedure
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    ext_schema name;
    f record;
    created regprocedure;
    r name;
    g pg_catalog.oid;
BEGIN
    SELECT n.nspname INTO ext_schema FROM pg_catalog.pg_extension e
      JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'sim_metrics';
    IF schema IS NULL OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = schema) THEN
        RAISE EXCEPTION 'schema "%" does not exist', schema USING ERRCODE = '3F000',
            HINT = 'Create it first, e.g. CREATE SCHEMA api: the wrappers go only where you ask.';
    END IF;
    IF schema = ext_schema THEN
        RAISE EXCEPTION 'the wrappers cannot go into the extension''s own schema' USING ERRCODE = '22023',
            HINT = 'Name an exposed schema such as public or api.';
    END IF;
    IF roles IS NULL OR pg_catalog.cardinality(roles) = 0 THEN
        RAISE EXCEPTION 'name at least one role' USING ERRCODE = '22023',
            HINT = 'Such as ARRAY[''authenticated''] or ARRAY[''anon'', ''authenticated''].';
    END IF;
    FOREACH r IN ARRAY roles LOOP
        IF r IS NULL OR (r <> 'public' AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = r)) THEN
            RAISE EXCEPTION 'role "%" does not exist', r USING ERRCODE = '42704',
                HINT = 'Name existing roles, such as authenticated or service_role.';
        END IF;
    END LOOP;
    -- the roles reach the wrappers through the schema
    FOREACH r IN ARRAY roles LOOP
        EXECUTE pg_catalog.format('GRANT USAGE ON SCHEMA %I TO %s', schema,
                                  CASE WHEN r = 'public' THEN 'PUBLIC' ELSE pg_catalog.quote_ident(r) END);
    END LOOP;
    FOR f IN
        SELECT p.oid, p.proname, p.pronargs, p.proargtypes FROM pg_catalog.pg_proc p
          JOIN pg_catalog.pg_depend d ON d.objid = p.oid
           AND d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass::pg_catalog.oid
           AND d.deptype = 'e'::pg_catalog."char"
          JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid AND e.extname = 'sim_metrics'::pg_catalog.name
         WHERE p.proname IN ('sim_current_metrics', 'sim_status', 'sim_history', 'sim_server_metrics',
                             'sim_scenario_runs', 'sim_dashboard', 'sim_forecast', 'sim_predict_alerts')
         ORDER BY p.proname
    LOOP
        -- never take over a function someone else made there
        IF EXISTS (SELECT 1 FROM pg_catalog.pg_proc w
                    WHERE w.pronamespace = (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = schema)
                      AND w.proname = f.proname AND w.proargtypes = f.proargtypes
                      AND w.proowner <> (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = current_user)) THEN
            RAISE EXCEPTION 'function %.% exists and belongs to another role', schema, f.proname
                USING ERRCODE = '42501',
                HINT = 'Drop it, or have its owner run sim_expose().';
        END IF;
        EXECUTE pg_catalog.format(
            'CREATE OR REPLACE FUNCTION %I.%I(%s) RETURNS %s LANGUAGE sql STABLE SECURITY INVOKER'
            ' SET search_path = '''' AS %L',
            schema, f.proname, pg_catalog.pg_get_function_arguments(f.oid),
            pg_catalog.pg_get_function_result(f.oid),
            pg_catalog.format('SELECT * FROM %I.%I(%s)', ext_schema, f.proname,
                (SELECT pg_catalog.string_agg('$' || i, ', ' ORDER BY i)
                   FROM pg_catalog.generate_series(1, f.pronargs) i)));
        SELECT w.oid::regprocedure INTO created FROM pg_catalog.pg_proc w
         WHERE w.pronamespace = (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = schema)
           AND w.proname = f.proname AND w.proargtypes = f.proargtypes;
        -- only the roles named: whatever default privileges granted goes
        FOR g IN SELECT a.grantee FROM pg_catalog.pg_proc w, pg_catalog.aclexplode(w.proacl) a
                  WHERE w.oid = created AND a.grantee <> w.proowner
        LOOP
            EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s FROM %s', created,
                CASE WHEN g = 0::pg_catalog.oid THEN 'PUBLIC' ELSE g::pg_catalog.regrole::text END);
        END LOOP;
        EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', created);
        FOREACH r IN ARRAY roles LOOP
            EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO %s', created,
                                      CASE WHEN r = 'public' THEN 'PUBLIC' ELSE pg_catalog.quote_ident(r) END);
        END LOOP;
        RETURN NEXT created;
    END LOOP;
END
$fn$;
COMMENT ON FUNCTION sim_expose(name, name[]) IS
  'Create thin SECURITY INVOKER wrappers of the reads (sim_current_metrics, sim_status, sim_history, sim_server_metrics, sim_scenario_runs, sim_dashboard, and from 1.9 sim_forecast and sim_predict_alerts) in the schema you name, executable by the roles you name only (they get USAGE on the schema); for PostgREST RPC. Returns the wrappers.';

-- Default privileges (such as Supabase's on extensions) may have granted
-- anything on what this script made: every grant but the owner's goes, then
-- the grants below are made.
DO $grants19$
DECLARE
    g record;
BEGIN
    FOR g IN
        SELECT pg_catalog.format('FUNCTION %s', p.oid::pg_catalog.regprocedure) AS obj, a.grantee
          FROM pg_catalog.pg_proc p CROSS JOIN LATERAL pg_catalog.aclexplode(p.proacl) a
         WHERE p.oid OPERATOR(pg_catalog.=) ANY (ARRAY[
                 'sim_forecast(text, text, interval, interval, timestamptz)'::pg_catalog.regprocedure,
                 'sim_forecast_series(timestamptz[], double precision[], interval)'::pg_catalog.regprocedure,
                 'sim_predict_alerts(interval)'::pg_catalog.regprocedure,
                 'sim_alert_report(timestamptz, timestamptz, interval)'::pg_catalog.regprocedure]::pg_catalog.oid[])
           AND a.grantee OPERATOR(pg_catalog.<>) p.proowner
    LOOP
        EXECUTE pg_catalog.format('REVOKE ALL ON %s FROM %s', g.obj,
            CASE WHEN g.grantee OPERATOR(pg_catalog.=) 0::pg_catalog.oid THEN 'PUBLIC' ELSE g.grantee::pg_catalog.regrole::text END);
    END LOOP;
END
$grants19$;
GRANT EXECUTE ON FUNCTION sim_forecast(text, text, interval, interval, timestamptz),
    sim_forecast_series(timestamptz[], double precision[], interval),
    sim_predict_alerts(interval), sim_alert_report(timestamptz, timestamptz, interval) TO PUBLIC;

-- sim_dashboard() and sim_expose() (1.5), deterministic: the worker is
-- paused, sim_tick() steps the fleet, seed 42.
SELECT sim_tick(3) > 0 AS ticked;
\set SHOW_CONTEXT never

-- the dashboard's shape
SELECT jsonb_object_keys(sim_dashboard()) AS key ORDER BY 1;
SELECT d->'success' AS success, (d->'summary') - 'anomalySummary'::text - 'alertForecast'::text AS summary, d->'pagination' AS pagination,
       jsonb_array_length(d->'data') AS rows, d->'timestamp' = to_jsonb(s.sim_time) AS timestamp_is_sim_time
FROM sim_dashboard() d, sim_status() s;
-- the alerts predicted for the next hour (1.9): the disk filling on
-- db-mysql-icn-primary, as sim_predict_alerts() says
SELECT jsonb_pretty(sim_dashboard()->'summary'->'alertForecast') AS alert_forecast;
SELECT (sim_dashboard()->'summary'->'alertForecast'->>'critical')::int =
       (SELECT count(*) FROM sim_predict_alerts() WHERE status = 'critical') AS forecast_counts;
SELECT jsonb_object_keys(sim_dashboard()->'data'->0) AS server_key ORDER BY 1;
-- pages: 5 a page, the third is the last
SELECT p, jsonb_path_query_array(sim_dashboard(NULL, p, 5), '$.data[*].id') AS ids,
       sim_dashboard(NULL, p, 5)->'pagination' AS pagination
FROM generate_series(1, 4) p;
-- every server of the fleet, once, across the pages
SELECT count(DISTINCT id) AS servers FROM generate_series(1, 3) p,
       jsonb_array_elements_text(jsonb_path_query_array(sim_dashboard(NULL, p, 5), '$.data[*].id')) id;
-- the data equal sim_current_metrics()
SELECT count(*) AS differences FROM jsonb_to_recordset(sim_dashboard(NULL, 1, 1000)->'data')
    AS d(id text, status text, cpu double precision, memory double precision, disk double precision,
         network double precision, network_io bigint, scenario text)
  FULL JOIN sim_current_metrics() m ON m.server_id = d.id
WHERE d.id IS NULL OR m.server_id IS NULL OR d.status <> m.status OR d.cpu <> m.cpu_usage
   OR d.memory <> m.memory_usage OR d.disk <> m.disk_usage OR d.network <> m.network_usage
   OR d.network_io <> m.network_io OR d.scenario IS DISTINCT FROM m.scenario;
-- a status filter
SELECT sim_scenario_start('server_down', '{web-nginx-icn-02}', 1, '10 min') > 0 AS started;
SELECT sim_tick(4) > 0 AS ticked;
SELECT jsonb_path_query_array(sim_dashboard('offline'), '$.data[*].id') AS offline,
       sim_dashboard('offline')->'summary'->'statusSummary'->'offline' AS counted,
       sim_dashboard('offline')->'pagination'->'total' AS total;
SELECT sim_dashboard('offline')->'data'->0->>'scenario' AS scenario;

-- bad input
SELECT sim_dashboard('down');
SELECT sim_dashboard(NULL, 0);
SELECT sim_dashboard(NULL, NULL);
SELECT sim_dashboard(NULL, 1, 0);
SELECT sim_dashboard(NULL, 1, 1001);
-- past the last page: no rows, still the summary
SELECT jsonb_array_length(sim_dashboard(NULL, 99, 50)->'data') AS rows,
       sim_dashboard(NULL, 99, 50)->'pagination'->'hasPrev' AS has_prev;

-- sim_expose(): wrappers in the schema and for the roles asked, nowhere else
CREATE ROLE regress_dash_reader NOLOGIN;
CREATE ROLE regress_dash_other NOLOGIN;
CREATE SCHEMA regress_api;
SELECT * FROM sim_expose('regress_api', ARRAY['regress_dash_reader']) ORDER BY 1::text;
SELECT p.oid::regprocedure AS wrapper, p.prosecdef AS definer, p.proconfig, p.provolatile,
       has_function_privilege('regress_dash_reader', p.oid, 'EXECUTE') AS reader,
       has_function_privilege('regress_dash_other', p.oid, 'EXECUTE') AS other
FROM pg_proc p WHERE p.pronamespace = 'regress_api'::regnamespace ORDER BY 1::text;
SET ROLE regress_dash_reader;
SELECT count(*) AS servers FROM regress_api.sim_current_metrics();
SELECT regress_api.sim_dashboard(page_size => 2)->'pagination'->'limit' AS named_arguments;
SELECT count(*) > 0 AS history FROM regress_api.sim_history('web-nginx-icn-01', '-infinity');
RESET ROLE;
SET ROLE regress_dash_other;
SELECT count(*) FROM regress_api.sim_current_metrics();
RESET ROLE;
-- again: replaced, not duplicated
SELECT count(*) AS wrappers FROM sim_expose('regress_api', ARRAY['regress_dash_reader', 'regress_dash_other']);
SELECT count(*) AS wrappers FROM pg_proc WHERE pronamespace = 'regress_api'::regnamespace;
-- bad input
SELECT sim_expose('no_such_schema', ARRAY['regress_dash_reader']);
SELECT sim_expose(NULL, ARRAY['regress_dash_reader']);
SELECT sim_expose('regress_api', ARRAY['no_such_role']);
SELECT sim_expose('regress_api', '{}');
SELECT sim_expose('regress_api', NULL);
SELECT sim_expose(n.nspname, ARRAY['regress_dash_reader'])
  FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'sim_metrics';
DROP SCHEMA regress_api CASCADE;
DROP OWNED BY regress_dash_reader;
DROP ROLE regress_dash_reader;
DROP OWNED BY regress_dash_other;
DROP ROLE regress_dash_other;

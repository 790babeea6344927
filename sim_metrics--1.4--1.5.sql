/* sim_metrics--1.4--1.5.sql: dashboards and Supabase. sim_dashboard()
 * (the servers-unified JSON), sim_expose() (RPC wrappers where asked),
 * sim_status() with the live push's counters, and privileges that default
 * privileges cannot widen: every grant on the extension's objects to anyone
 * but the owner is revoked, then exactly the intended ones are made, the
 * control functions to sim_metrics.admin_role (postgres) with grant option. */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION sim_metrics UPDATE TO '1.5'" to load this file. \quit

-- A trigger someone put on a table the writer fills would fire as the
-- table's owner: the update stops until it is looked at.
DO $triggers$
DECLARE
    culprit text;
BEGIN
    SELECT pg_catalog.format('%s on %s', t.tgname, t.tgrelid::pg_catalog.regclass) INTO culprit
      FROM pg_catalog.pg_trigger t
      JOIN pg_catalog.pg_depend d ON d.objid OPERATOR(pg_catalog.=) t.tgrelid
       AND d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass::pg_catalog.oid
       AND d.deptype OPERATOR(pg_catalog.=) 'e'::pg_catalog."char"
      JOIN pg_catalog.pg_extension e ON e.oid OPERATOR(pg_catalog.=) d.refobjid
       AND e.extname OPERATOR(pg_catalog.=) 'sim_metrics'::pg_catalog.name
     WHERE NOT t.tgisinternal
       AND t.tgname OPERATOR(pg_catalog.<>) ALL (ARRAY['server_templates_changed', 'sim_scenarios_changed']::pg_catalog.name[])
     LIMIT 1;
    IF culprit IS NOT NULL THEN
        RAISE EXCEPTION 'trigger % was not created by sim_metrics', culprit USING ERRCODE = '42501',
            HINT = 'The writer would fire it as the table''s owner. Check who made it and drop it, then update again.';
    END IF;
END
$triggers$;

DROP FUNCTION sim_status();
CREATE FUNCTION sim_status(
    OUT running boolean, OUT paused boolean, OUT session_id text,
    OUT servers integer, OUT tick bigint, OUT last_tick_at timestamptz,
    OUT tick_ms double precision, OUT pid integer, OUT last_error text,
    OUT last_error_at timestamptz, OUT worker_state text,
    OUT sim_time timestamptz, OUT tick_interval_ms integer,
    OUT max_servers integer, OUT skipped_servers integer, OUT errors bigint,
    OUT pending_samples bigint, OUT last_flush_at timestamptz,
    OUT flushed_samples bigint, OUT dropped_samples bigint,
    OUT flush_errors bigint, OUT buffer_capacity bigint,
    OUT late_ticks bigint, OUT tick_lag_ms double precision,
    OUT rejected_samples bigint, OUT writer_pid integer, OUT writer_state text,
    OUT redis_state text, OUT redis_last_error text, OUT redis_errors bigint,
    OUT redis_writes bigint, OUT redis_skipped bigint, OUT active_scenarios integer,
    OUT notifications bigint, OUT realtime_messages bigint, OUT realtime_errors bigint)
RETURNS record
AS 'MODULE_PATHNAME', 'sim_status'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp;

COMMENT ON FUNCTION sim_status() IS
  'State of the simulator: the ticker (pid, tick, tick_ms, late_ticks, tick_lag_ms), the writer (writer_pid, writer_state), buffered, flushed, dropped and rejected history samples, the Redis mirror (redis_state, redis_last_error, redis_errors, redis_writes, redis_skipped), scenario runs pending or active (active_scenarios), the live push (notifications: NOTIFY sim_metrics_status sent; realtime_messages, realtime_errors: realtime.send calls), the last error.';

--------------------------------------------------------------------------
-- 1.5: dashboards and Supabase
--------------------------------------------------------------------------

CREATE FUNCTION sim_dashboard(status text DEFAULT NULL, page integer DEFAULT 1,
    page_size integer DEFAULT 50)
RETURNS jsonb
LANGUAGE plpgsql STABLE PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    want text := sim_dashboard.status;
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
                    'scenario', p.scenario, 'tick', p.tick) ORDER BY p.server_id COLLATE "C")
                  FROM p), '[]'::jsonb),
        'summary', jsonb_build_object(
            'total', n.all_servers,
            'statusSummary', (SELECT jsonb_build_object(
                'online', count(*) FILTER (WHERE m.status = 'online'),
                'warning', count(*) FILTER (WHERE m.status = 'warning'),
                'critical', count(*) FILTER (WHERE m.status = 'critical'),
                'offline', count(*) FILTER (WHERE m.status = 'offline')) FROM m)),
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
  'The live fleet as one JSON document in the dashboard''s servers-unified shape: success, timestamp (simulated time of the data), data[] (id, name, hostname, status, cpu, memory, disk, network %, network_io, responseTime, location, role, environment, scenario, tick), summary.statusSummary, pagination. Reads shared memory only: never waits on Redis.';

CREATE FUNCTION sim_expose(schema name, roles name[])
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
                             'sim_scenario_runs', 'sim_dashboard')
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
  'Create thin SECURITY INVOKER wrappers of the reads (sim_current_metrics, sim_status, sim_history, sim_server_metrics, sim_scenario_runs, sim_dashboard) in the schema you name, executable by the roles you name only (they get USAGE on the schema); for PostgREST RPC. Returns the wrappers.';

--------------------------------------------------------------------------
-- Privileges, whatever the schema's default privileges gave (1.5)
--------------------------------------------------------------------------

-- Default privileges (ALTER DEFAULT PRIVILEGES, such as Supabase's on the
-- extensions schema, or on public) may have granted anything on the objects
-- above to anyone. Every grant to a role other than the owner goes; then
-- exactly the grants below are made.
DO $grants$
DECLARE
    g record;
BEGIN
    FOR g IN
        SELECT pg_catalog.format('%s %s', CASE WHEN c.relkind OPERATOR(pg_catalog.=) 'S'::pg_catalog."char" THEN 'SEQUENCE' ELSE 'TABLE' END,
                                 c.oid::pg_catalog.regclass) AS obj, a.grantee
          FROM pg_catalog.pg_depend d
          JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) d.objid
          CROSS JOIN LATERAL pg_catalog.aclexplode(c.relacl) a
         WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass::pg_catalog.oid
           AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_extension'::pg_catalog.regclass::pg_catalog.oid
           AND d.refobjid OPERATOR(pg_catalog.=) (SELECT e.oid FROM pg_catalog.pg_extension e
                                                 WHERE e.extname OPERATOR(pg_catalog.=) 'sim_metrics'::pg_catalog.name)
           AND d.deptype OPERATOR(pg_catalog.=) 'e'::pg_catalog."char" AND a.grantee OPERATOR(pg_catalog.<>) c.relowner
        UNION
        SELECT pg_catalog.format('TABLE %s', c.oid::pg_catalog.regclass), a.grantee
          FROM pg_catalog.pg_depend d
          JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) d.objid
          JOIN pg_catalog.pg_attribute t ON t.attrelid OPERATOR(pg_catalog.=) c.oid
          CROSS JOIN LATERAL pg_catalog.aclexplode(t.attacl) a
         WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass::pg_catalog.oid
           AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_extension'::pg_catalog.regclass::pg_catalog.oid
           AND d.refobjid OPERATOR(pg_catalog.=) (SELECT e.oid FROM pg_catalog.pg_extension e
                                                 WHERE e.extname OPERATOR(pg_catalog.=) 'sim_metrics'::pg_catalog.name)
           AND d.deptype OPERATOR(pg_catalog.=) 'e'::pg_catalog."char" AND a.grantee OPERATOR(pg_catalog.<>) c.relowner
        UNION
        SELECT pg_catalog.format('FUNCTION %s', p.oid::pg_catalog.regprocedure), a.grantee
          FROM pg_catalog.pg_depend d
          JOIN pg_catalog.pg_proc p ON p.oid OPERATOR(pg_catalog.=) d.objid
          CROSS JOIN LATERAL pg_catalog.aclexplode(p.proacl) a
         WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass::pg_catalog.oid
           AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_extension'::pg_catalog.regclass::pg_catalog.oid
           AND d.refobjid OPERATOR(pg_catalog.=) (SELECT e.oid FROM pg_catalog.pg_extension e
                                                 WHERE e.extname OPERATOR(pg_catalog.=) 'sim_metrics'::pg_catalog.name)
           AND d.deptype OPERATOR(pg_catalog.=) 'e'::pg_catalog."char" AND a.grantee OPERATOR(pg_catalog.<>) p.proowner
    LOOP
        EXECUTE pg_catalog.format('REVOKE ALL ON %s FROM %s CASCADE', g.obj,
            CASE WHEN g.grantee OPERATOR(pg_catalog.=) 0::pg_catalog.oid THEN 'PUBLIC' ELSE g.grantee::pg_catalog.regrole::text END);
    END LOOP;
END
$grants$;

-- the reads: anyone
GRANT SELECT ON server_templates, server_metrics_history, scenario_execution_log,
    sim_scenarios, sim_incident_labels TO PUBLIC;
REVOKE ALL ON FUNCTION sim_start(), sim_stop(), sim_tick(integer), sim_reload(), sim_flush(),
    sim_templates_changed(), sim_scenario_start(text, text[], real, interval),
    sim_scenario_stop(bigint), sim_expose(name, name[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sim_current_metrics(), sim_status(),
    sim_history(text, timestamptz, timestamptz), sim_server_metrics(text),
    sim_scenario_runs(), sim_scenarios(), sim_dashboard(text, integer, integer) TO PUBLIC;

-- The administrator (sim_metrics.admin_role, default postgres), when that
-- role exists and is not a superuser: the control functions, to pass on,
-- and the editable tables; never TRIGGER, TRUNCATE or REFERENCES, nor any
-- write to the history or the log.
DO $admin$
DECLARE
    admin text := COALESCE(NULLIF(pg_catalog.current_setting('sim_metrics.admin_role', true), ''), 'postgres');
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = admin AND NOT rolsuper) THEN
        RETURN;
    END IF;
    EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION sim_start(), sim_stop(), sim_tick(integer),'
        ' sim_reload(), sim_flush(), sim_scenario_start(text, text[], real, interval),'
        ' sim_scenario_stop(bigint), sim_expose(name, name[]) TO %I WITH GRANT OPTION', admin);
    EXECUTE pg_catalog.format('GRANT SELECT, INSERT, UPDATE, DELETE ON server_templates, sim_scenarios'
        ' TO %I WITH GRANT OPTION', admin);
    EXECUTE pg_catalog.format('GRANT SELECT ON server_metrics_rejected TO %I WITH GRANT OPTION', admin);
END
$admin$;

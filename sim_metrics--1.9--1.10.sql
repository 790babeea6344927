/* sim_metrics--1.9--1.10.sql */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION sim_metrics UPDATE TO '1.10'" to load this file. \quit

--------------------------------------------------------------------------
-- 1.10: the live fleet as a relation that streams
--------------------------------------------------------------------------

-- A set-returning function in FROM is materialised into a tuplestore
-- (past work_mem, a temporary file); a foreign table's scan is not. The
-- scan copies one tick from shared memory and hands rows to the executor
-- as they are asked for; equality on server_id (binary search), status,
-- role and location is pushed down.
CREATE FUNCTION sim_fdw_handler() RETURNS fdw_handler
AS 'MODULE_PATHNAME', 'sim_fdw_handler'
LANGUAGE C STRICT
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION sim_fdw_handler() IS
  'The handler of sim_metrics_fdw, the foreign-data wrapper of sim_current.';

CREATE FUNCTION sim_fdw_validator(text[], oid) RETURNS void
AS 'MODULE_PATHNAME', 'sim_fdw_validator'
LANGUAGE C STRICT
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION sim_fdw_validator(text[], oid) IS
  'The validator of sim_metrics_fdw: it takes no options.';

CREATE FOREIGN DATA WRAPPER sim_metrics_fdw
    HANDLER sim_fdw_handler VALIDATOR sim_fdw_validator;
COMMENT ON FOREIGN DATA WRAPPER sim_metrics_fdw IS
  'Reads the live fleet from this server''s shared memory (sim_current).';

CREATE SERVER sim_metrics_hot FOREIGN DATA WRAPPER sim_metrics_fdw;
COMMENT ON SERVER sim_metrics_hot IS
  'This server''s shared memory, where the simulator keeps the live fleet.';

CREATE FOREIGN TABLE sim_current (
    server_id text, name text, hostname text, role text,
    location text, environment text,
    cpu_usage double precision, memory_usage double precision,
    disk_usage double precision, network_io bigint,
    network_usage double precision, response_time_ms double precision,
    status text, scenario text, tick bigint,
    sim_time timestamptz, updated_at timestamptz,
    anomaly_score double precision, anomaly_metric text)
SERVER sim_metrics_hot;
COMMENT ON FOREIGN TABLE sim_current IS
  'The live fleet from shared memory, one row per server as of one tick, streamed (no tuplestore, no temporary file). Equality and = ANY on server_id (a binary search), status, role and location are pushed down; EXPLAIN shows them. The same rows as sim_current_metrics().';

-- sim_current_metrics() keeps its signature and its rows, and becomes a
-- view-like SQL function over sim_current that the planner inlines: a
-- query over it streams, and its WHERE reaches the scan. It pins no
-- search_path (a pinned setting stops inlining); its body names the table
-- by schema and its columns by *, so no search_path changes what it reads.
CREATE OR REPLACE FUNCTION sim_current_metrics(
    OUT server_id text, OUT name text, OUT hostname text, OUT role text,
    OUT location text, OUT environment text,
    OUT cpu_usage double precision, OUT memory_usage double precision,
    OUT disk_usage double precision, OUT network_io bigint,
    OUT network_usage double precision, OUT response_time_ms double precision,
    OUT status text, OUT scenario text, OUT tick bigint,
    OUT sim_time timestamptz, OUT updated_at timestamptz,
    OUT anomaly_score double precision, OUT anomaly_metric text)
RETURNS SETOF record
LANGUAGE sql STABLE PARALLEL RESTRICTED
AS $fn$SELECT * FROM @extschema@.sim_current$fn$;
COMMENT ON FUNCTION sim_current_metrics() IS
  'The live fleet from shared memory: one row per server, as of the last tick, with the detector''s anomaly_score (0..1) and the metric behind it (anomaly_metric, NULL at 0). From 1.10 a query over sim_current, inlined: it streams and its filters are pushed down.';

-- sim_expose(): the wrapper of sim_current_metrics() streams too. Wrappers
-- made before keep their pinned search_path; running sim_expose() again
-- makes them anew.
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
        -- sim_current_metrics()'s wrapper pins no search_path, so that the
        -- planner inlines it as it inlines the function: a PostgREST
        -- filter reaches sim_current's scan (its body names the function
        -- by schema and its columns by *, so no search_path changes it)
        EXECUTE pg_catalog.format(
            'CREATE OR REPLACE FUNCTION %I.%I(%s) RETURNS %s LANGUAGE sql STABLE SECURITY INVOKER'
            '%s AS %L',
            schema, f.proname, pg_catalog.pg_get_function_arguments(f.oid),
            pg_catalog.pg_get_function_result(f.oid),
            CASE WHEN f.proname = 'sim_current_metrics' THEN '' ELSE ' SET search_path = ''''' END,
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
  'Create thin SECURITY INVOKER wrappers of the reads (sim_current_metrics, sim_status, sim_history, sim_server_metrics, sim_scenario_runs, sim_dashboard, and from 1.9 sim_forecast and sim_predict_alerts; from 1.10 the wrapper of sim_current_metrics is inlined and streams from sim_current) in the schema you name, executable by the roles you name only (they get USAGE on the schema); for PostgREST RPC. Returns the wrappers.';

-- Default privileges (such as Supabase's on extensions) may have granted
-- anything on what this script made: every grant but the owner's goes,
-- then the grants below are made. The wrapper and its server take no
-- default privileges; USAGE on them stays the owner's.
DO $grants110$
DECLARE
    g record;
BEGIN
    FOR g IN
        SELECT pg_catalog.format('FUNCTION %s', p.oid::pg_catalog.regprocedure) AS obj, a.grantee
          FROM pg_catalog.pg_proc p CROSS JOIN LATERAL pg_catalog.aclexplode(p.proacl) a
         WHERE p.oid OPERATOR(pg_catalog.=) ANY (ARRAY[
                 'sim_fdw_handler()'::pg_catalog.regprocedure,
                 'sim_fdw_validator(text[], oid)'::pg_catalog.regprocedure]::pg_catalog.oid[])
           AND a.grantee OPERATOR(pg_catalog.<>) p.proowner
        UNION ALL
        SELECT pg_catalog.format('TABLE %s', c.oid::pg_catalog.regclass), a.grantee
          FROM pg_catalog.pg_class c CROSS JOIN LATERAL pg_catalog.aclexplode(c.relacl) a
         WHERE c.oid OPERATOR(pg_catalog.=) '@extschema@.sim_current'::pg_catalog.regclass::pg_catalog.oid
           AND a.grantee OPERATOR(pg_catalog.<>) c.relowner
    LOOP
        EXECUTE pg_catalog.format('REVOKE ALL ON %s FROM %s', g.obj,
            CASE WHEN g.grantee OPERATOR(pg_catalog.=) 0::pg_catalog.oid THEN 'PUBLIC' ELSE g.grantee::pg_catalog.regrole::text END);
    END LOOP;
END
$grants110$;
REVOKE ALL ON FUNCTION sim_fdw_handler(), sim_fdw_validator(text[], oid) FROM PUBLIC;
-- sim_current is read by whoever may run sim_current_metrics() (PUBLIC,
-- unless you revoked it): the update opens no read that was closed
DO $read110$
DECLARE
    g pg_catalog.oid;
BEGIN
    FOR g IN
        SELECT a.grantee FROM pg_catalog.pg_proc p
         CROSS JOIN LATERAL pg_catalog.aclexplode(COALESCE(p.proacl, pg_catalog.acldefault('f', p.proowner))) a
         WHERE p.oid OPERATOR(pg_catalog.=) '@extschema@.sim_current_metrics()'::pg_catalog.regprocedure::pg_catalog.oid
           AND a.privilege_type OPERATOR(pg_catalog.=) 'EXECUTE'
           AND a.grantee OPERATOR(pg_catalog.<>) p.proowner
    LOOP
        EXECUTE pg_catalog.format('GRANT SELECT ON @extschema@.sim_current TO %s',
            CASE WHEN g OPERATOR(pg_catalog.=) 0::pg_catalog.oid THEN 'PUBLIC' ELSE g::pg_catalog.regrole::text END);
    END LOOP;
END
$read110$;

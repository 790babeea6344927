/* sim_metrics--1.5--1.6.sql */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION sim_metrics UPDATE TO '1.6'" to load this file. \quit

-- An install made before 1.6 may have bound a CHECK constraint or a column
-- default of its tables to an operator or function that a role other than
-- a superuser put in the schema (base scripts before 1.6 had no guard).
-- Every operator and function they use must be pg_catalog's.
DO $bound$
DECLARE
    culprit text;
BEGIN
    WITH members AS (
        SELECT e.objid AS rel FROM pg_catalog.pg_depend e
         WHERE e.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass::pg_catalog.oid
           AND e.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_extension'::pg_catalog.regclass::pg_catalog.oid
           AND e.refobjid OPERATOR(pg_catalog.=) (SELECT oid FROM pg_catalog.pg_extension
                                                 WHERE extname OPERATOR(pg_catalog.=) 'sim_metrics'::pg_catalog.name)),
    -- what the tables' CHECKs and defaults depend on
    uses AS (
        SELECT pg_catalog.format('constraint %s of %s', c.conname, c.conrelid::pg_catalog.regclass) AS what,
               d.refclassid, d.refobjid
          FROM pg_catalog.pg_constraint c
          JOIN pg_catalog.pg_depend d ON d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_constraint'::pg_catalog.regclass::pg_catalog.oid
                                    AND d.objid OPERATOR(pg_catalog.=) c.oid
         WHERE c.conrelid IN (SELECT rel FROM members)
        UNION ALL
        SELECT pg_catalog.format('the default of %s.%s', a.adrelid::pg_catalog.regclass, a.adnum),
               d.refclassid, d.refobjid
          FROM pg_catalog.pg_attrdef a
          JOIN pg_catalog.pg_depend d ON d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_attrdef'::pg_catalog.regclass::pg_catalog.oid
                                    AND d.objid OPERATOR(pg_catalog.=) a.oid
         WHERE a.adrelid IN (SELECT rel FROM members)),
    -- the operators and functions among them, with their schema; the
    -- extension's own functions are its own
    used AS (
        SELECT u.what, 'operator ' OPERATOR(pg_catalog.||) o.oid::pg_catalog.regoperator::text AS obj, o.oprnamespace AS nsp
          FROM uses u JOIN pg_catalog.pg_operator o ON o.oid OPERATOR(pg_catalog.=) u.refobjid
         WHERE u.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_operator'::pg_catalog.regclass::pg_catalog.oid
        UNION ALL
        SELECT u.what, 'function ' OPERATOR(pg_catalog.||) p.oid::pg_catalog.regprocedure::text, p.pronamespace
          FROM uses u JOIN pg_catalog.pg_proc p ON p.oid OPERATOR(pg_catalog.=) u.refobjid
         WHERE u.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass::pg_catalog.oid
           AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e
                            WHERE e.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass::pg_catalog.oid
                              AND e.objid OPERATOR(pg_catalog.=) p.oid
                              AND e.deptype OPERATOR(pg_catalog.=) 'e'::pg_catalog."char"))
    SELECT pg_catalog.format('%s uses %s of schema %s', x.what, x.obj, n.nspname) INTO culprit
      FROM used x JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) x.nsp
     WHERE n.nspname OPERATOR(pg_catalog.<>) 'pg_catalog'::pg_catalog.name
     LIMIT 1;
    IF culprit IS NOT NULL THEN
        RAISE EXCEPTION 'sim_metrics cannot be updated: %, which is not pg_catalog''s', culprit
            USING ERRCODE = '42501',
                  DETAIL = 'Someone put that operator or function in the schema before the extension was installed; the tables would run it on every write.',
                  HINT = 'Drop the extension (keep the history with pg_dump first), drop that object, and CREATE EXTENSION sim_metrics again.';
    END IF;
END
$bound$;

--------------------------------------------------------------------------
-- The writer role (1.6)
--------------------------------------------------------------------------

-- Every statement sim_metrics runs on its tables (the writer's flush, dead
-- letters, retention, scenario log, reloads, restore and Redis recovery,
-- and sim_flush() in a backend) runs as sim_metrics_writer: no attribute,
-- no membership, only the grants below. Whatever another role attaches to
-- these tables (a trigger, a CHECK or an index on a partition it owns)
-- then runs with nothing worth taking. A role of that name made by someone
-- else is used only when it is just as bare.
DO $writer$
DECLARE
    r record;
BEGIN
    SELECT * INTO r FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) 'sim_metrics_writer'::pg_catalog.name;
    IF NOT FOUND THEN
        CREATE ROLE sim_metrics_writer NOLOGIN NOINHERIT;
        COMMENT ON ROLE sim_metrics_writer IS 'sim_metrics reads and writes its tables as this role only';
    ELSIF r.rolsuper OR r.rolcreaterole OR r.rolcreatedb OR r.rolreplication OR r.rolbypassrls OR r.rolcanlogin
          OR EXISTS (SELECT 1 FROM pg_catalog.pg_auth_members m WHERE m.member OPERATOR(pg_catalog.=) r.oid) THEN
        RAISE EXCEPTION 'role sim_metrics_writer exists and holds more than writing history needs'
            USING ERRCODE = '42501',
                  DETAIL = 'sim_metrics runs every statement on its tables as that role; it must have no attribute (NOLOGIN, NOSUPERUSER, NOCREATEROLE, NOCREATEDB, NOREPLICATION, NOBYPASSRLS) and be a member of no role.',
                  HINT = 'As a superuser: DROP ROLE sim_metrics_writer (or strip it), then install again.';
    END IF;
END
$writer$;
GRANT USAGE ON SCHEMA @extschema@ TO sim_metrics_writer;
GRANT SELECT ON server_templates, sim_scenarios TO sim_metrics_writer;
GRANT SELECT, INSERT, DELETE ON server_metrics_history TO sim_metrics_writer;
GRANT SELECT, INSERT, UPDATE ON scenario_execution_log TO sim_metrics_writer;
GRANT INSERT ON server_metrics_rejected TO sim_metrics_writer;

-- Installing: schema, default fleet, constraints, privileges.
CREATE EXTENSION sim_metrics;

SELECT extrelocatable, extversion FROM pg_extension WHERE extname = 'sim_metrics';

-- the dashboard's 15-server fleet
SELECT id, role, location, cpu_cores, base_memory_limit, base_disk_size,
       baseline_cpu, baseline_memory, baseline_disk, baseline_network,
       depends_on
FROM server_templates ORDER BY id;

-- every dependency names a server of the fleet
SELECT t.id, d AS unknown_dependency
FROM server_templates t, unnest(t.depends_on) d
WHERE d NOT IN (SELECT id FROM server_templates);

-- user-editable rows are dumped, the defaults come back with CREATE EXTENSION
SELECT c.relname, x.cond
FROM pg_extension e,
     unnest(e.extconfig, e.extcondition) AS x(cfg, cond)
     JOIN pg_class c ON c.oid = x.cfg
WHERE e.extname = 'sim_metrics' ORDER BY 1;

-- invalid template rows are rejected (terse: DETAIL would show created_at)
\set VERBOSITY terse
INSERT INTO server_templates (id, name, hostname, role, location)
VALUES ('x-1', 'x', 'x', 'mainframe', 'lab');
INSERT INTO server_templates (id, name, hostname, role, location, baseline_cpu)
VALUES ('x-1', 'x', 'x', 'web', 'lab', 150);
INSERT INTO server_templates (id, name, hostname, role, location, baseline_memory)
VALUES ('x-1', 'x', 'x', 'web', 'lab', -1);
INSERT INTO server_templates (id, name, hostname, role, location, network_capacity_bps)
VALUES ('x-1', 'x', 'x', 'web', 'lab', 0);
INSERT INTO server_templates (id, name, hostname, role, location, base_memory_limit)
VALUES ('x-1', 'x', 'x', 'web', 'lab', -32);
INSERT INTO server_templates (id, name, hostname, role, location, depends_on)
VALUES ('x-1', 'x', 'x', 'web', 'lab', '{x-1}');
INSERT INTO server_templates (id, name, hostname, role, location)
VALUES ('bad id with spaces', 'x', 'x', 'web', 'lab');
INSERT INTO server_templates (id, name, hostname, role, location)
VALUES (repeat('a', 64), 'x', 'x', 'web', 'lab');
INSERT INTO server_templates (id, name, hostname, role, location, environment)
VALUES ('x-1', 'x', 'x', 'web', 'lab', 'qa');
INSERT INTO server_templates (id, name, hostname, role, location, services)
VALUES ('x-1', 'x', 'x', 'web', 'lab', '{"not":"an array"}');
INSERT INTO server_metrics_history (server_id, cpu_usage, status, "timestamp")
VALUES ('web-nginx-icn-01', 101, 'online', now());
INSERT INTO server_metrics_history (server_id, cpu_usage, status, "timestamp")
VALUES ('web-nginx-icn-01', 50, 'sleeping', now());

\set VERBOSITY default

-- privileges: reads are public, control functions and writes are not
SELECT p.proname,
       has_function_privilege('public', p.oid, 'EXECUTE') AS public_execute
FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.classid = 'pg_proc'::regclass
JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'sim_metrics'
ORDER BY 1;

-- every function has a fixed search_path and a comment
SELECT p.proname, p.proconfig, obj_description(p.oid, 'pg_proc') IS NOT NULL AS has_comment
FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.classid = 'pg_proc'::regclass
JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'sim_metrics'
ORDER BY 1;

SELECT sim_reload();

CREATE ROLE sim_reader NOLOGIN;
SET ROLE sim_reader;
SELECT count(*) FROM sim_current_metrics();
SELECT servers FROM sim_status();
SELECT count(*) FROM server_templates;
SELECT sim_tick();
SELECT sim_reload();
SELECT sim_start();
SELECT sim_stop();
INSERT INTO server_templates (id, name, hostname, role, location)
VALUES ('x-1', 'x', 'x', 'web', 'lab');
DELETE FROM server_metrics_history;
CREATE TRIGGER t BEFORE INSERT ON server_metrics_history
    FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger();
RESET ROLE;
DROP ROLE sim_reader;

-- one fleet per cluster: other databases are refused
CREATE DATABASE sim_metrics_other;
\c sim_metrics_other
CREATE EXTENSION sim_metrics;
\c contrib_regression
DROP DATABASE sim_metrics_other;

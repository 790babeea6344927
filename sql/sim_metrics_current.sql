-- sim_current (1.10): the live fleet as a foreign table that streams, and
-- sim_current_metrics() inlined over it. Deterministic: the worker is
-- paused, sim_tick() steps the fleet, seed 42.
SET client_min_messages = warning;
\set SHOW_CONTEXT never
SELECT sim_tick(2) > 0 AS ticked;

-- the same rows as the function, one tick
SELECT (SELECT count(*) FROM sim_current) AS servers,
       (SELECT count(*) FROM (SELECT * FROM sim_current EXCEPT SELECT * FROM sim_current_metrics()) x) AS only_table,
       (SELECT count(*) FROM (SELECT * FROM sim_current_metrics() EXCEPT SELECT * FROM sim_current) x) AS only_function,
       (SELECT count(DISTINCT tick) FROM sim_current) AS ticks,
       (SELECT min(tick) FROM sim_current) = (SELECT tick FROM sim_status()) AS last_tick;

-- the function is inlined: its WHERE reaches the scan, by binary search
EXPLAIN (COSTS OFF) SELECT * FROM sim_current_metrics() WHERE server_id = 'web-nginx-icn-01';
SELECT server_id, role, location, status, tick FROM sim_current_metrics() WHERE server_id = 'web-nginx-icn-01';
-- status, role and location are pushed; = ANY too; count(*) forms no column
EXPLAIN (COSTS OFF) SELECT count(*) FROM sim_current WHERE status = 'online' AND role = ANY (ARRAY['web', 'cache']) AND location = 'Seoul-ICN-AZ1';
SELECT server_id FROM sim_current WHERE status = 'online' AND role = ANY (ARRAY['web', 'cache']) AND location = 'Seoul-ICN-AZ1' ORDER BY 1;
SELECT count(*) FROM sim_current WHERE status = 'online' AND role = ANY (ARRAY['web', 'cache']) AND location = 'Seoul-ICN-AZ1';
-- each pushed filter gives what a table of the same rows gives
CREATE TEMP TABLE cur AS SELECT * FROM sim_current;
SELECT f.col, f.val,
       (SELECT count(*) FROM sim_current c WHERE CASE f.col WHEN 'role' THEN c.role = f.val WHEN 'location' THEN c.location = f.val ELSE c.status = f.val END) AS streamed,
       (SELECT count(*) FROM cur c WHERE CASE f.col WHEN 'role' THEN c.role = f.val WHEN 'location' THEN c.location = f.val ELSE c.status = f.val END) AS table_rows
  FROM (SELECT DISTINCT 'role' AS col, role AS val FROM cur UNION SELECT DISTINCT 'location', location FROM cur
        UNION SELECT 'status', s FROM unnest(ARRAY['online', 'warning', 'critical', 'offline', 'nope']) s) f
 ORDER BY 1, 2;
SELECT count(*) AS mismatched FROM cur t FULL JOIN sim_current c USING (server_id)
 WHERE (SELECT count(*) FROM sim_current x WHERE x.server_id = t.server_id AND x.role = t.role AND x.location = t.location AND x.status = t.status) <> 1;
-- ids: unknown, NULL, repeated, mixed with ones that exist
SELECT count(*) AS unknown FROM sim_current WHERE server_id = 'no-such-server';
SELECT count(*) AS null_id FROM sim_current WHERE server_id = NULL;
SELECT server_id FROM sim_current WHERE server_id = ANY (ARRAY['web-nginx-icn-01', 'web-nginx-icn-01', NULL, 'nope', 'db-mysql-icn-primary']) ORDER BY 1;
SELECT count(*) AS contradiction FROM sim_current WHERE server_id = 'web-nginx-icn-01' AND server_id = 'db-mysql-icn-primary';
SELECT count(*) AS both_ways FROM sim_current WHERE 'web-nginx-icn-01' = server_id AND status = ANY ('{online,warning,critical,offline}');
-- varchar values are compared as text
EXPLAIN (COSTS OFF) SELECT server_id FROM sim_current WHERE server_id = ANY (ARRAY['web-nginx-icn-01', 'nope']::varchar[]) AND location = 'Seoul-ICN-AZ1'::varchar;
SELECT server_id FROM sim_current WHERE server_id = ANY (ARRAY['web-nginx-icn-01', 'nope']::varchar[]) AND location = 'Seoul-ICN-AZ1'::varchar;
-- parameters, in a generic plan
SET plan_cache_mode = force_generic_plan;
PREPARE by_id(text) AS SELECT server_id, tick FROM sim_current WHERE server_id = $1;
EXPLAIN (COSTS OFF) EXECUTE by_id('web-nginx-icn-01');
EXECUTE by_id('web-nginx-icn-01');
EXECUTE by_id(NULL);
PREPARE by_role(text[]) AS SELECT count(*) FROM sim_current WHERE role = ANY ($1);
EXECUTE by_role(ARRAY['web']);
EXECUTE by_role(NULL);
RESET plan_cache_mode;
-- a join rescans the lookup with each outer id
SELECT v.id, c.server_id IS NOT NULL AS found
  FROM (VALUES ('web-nginx-icn-01'), ('nope'), ('cache-redis-icn-01')) v(id)
  LEFT JOIN LATERAL (SELECT server_id FROM sim_current WHERE server_id = v.id OFFSET 0) c ON true ORDER BY 1;
-- ids that change at each rescan (a correlated subquery) are searched in a
-- copy of one tick; many ids too
EXPLAIN (COSTS OFF) SELECT t.id FROM server_templates t
 WHERE (SELECT tick FROM sim_current_metrics() m WHERE m.server_id = t.id) IS NOT NULL;
SELECT count(*) AS found, count(DISTINCT (SELECT tick FROM sim_current_metrics() m WHERE m.server_id = t.id)) AS ticks
  FROM server_templates t WHERE (SELECT tick FROM sim_current_metrics() m WHERE m.server_id = t.id) IS NOT NULL;
SELECT count(*) AS of_many FROM sim_current
 WHERE server_id = ANY ((SELECT array_agg(x) FROM (SELECT id FROM server_templates UNION ALL
                                                   SELECT 'x' || g FROM generate_series(1, 3000) g) s(x))::text[]);
EXPLAIN (COSTS OFF) SELECT count(*) FROM sim_current
 WHERE server_id = ANY ((SELECT array_agg(x) FROM (SELECT 'x' || g FROM generate_series(1, 3000) g) s(x))::text[]);
-- what is not pushed is filtered as usual: expressions, a case-insensitive collation
EXPLAIN (COSTS OFF) SELECT server_id FROM sim_current WHERE upper(server_id) = 'WEB-NGINX-ICN-01';
SELECT server_id FROM sim_current WHERE upper(server_id) = 'WEB-NGINX-ICN-01';
CREATE COLLATION regress_ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
EXPLAIN (COSTS OFF) SELECT server_id FROM sim_current WHERE server_id = 'WEB-NGINX-ICN-01' COLLATE regress_ci;
SELECT server_id FROM sim_current WHERE server_id = 'WEB-NGINX-ICN-01' COLLATE regress_ci;
DROP COLLATION regress_ci;
-- a self-join reads two copies of the same tick
SELECT count(*) AS pairs FROM sim_current a JOIN sim_current b USING (server_id, tick, cpu_usage);

-- a cursor keeps its tick while the fleet moves, and other reads meanwhile
-- see the new one
BEGIN;
DECLARE c CURSOR FOR SELECT server_id, tick FROM sim_current;
FETCH 2 FROM c;
SELECT sim_tick() > 0 AS ticked;
SELECT count(DISTINCT tick) AS ticks, min(tick) = (SELECT tick FROM sim_status()) AS new_tick FROM sim_current;
FETCH 2 FROM c;
CLOSE c;
COMMIT;
SELECT min(tick) = (SELECT tick FROM sim_status()) AS new_tick FROM sim_current;

-- EXPLAIN ANALYZE says how many servers were copied
EXPLAIN (COSTS OFF, ANALYZE, TIMING OFF, SUMMARY OFF) SELECT * FROM sim_current WHERE server_id = 'web-nginx-icn-01';

-- the scan is read-only, takes no options, and reads only its own columns
INSERT INTO sim_current (server_id) VALUES ('x');
DELETE FROM sim_current;
ALTER FOREIGN TABLE sim_current OPTIONS (ADD refresh 'fast');
CREATE SERVER regress_hot2 FOREIGN DATA WRAPPER sim_metrics_fdw OPTIONS (host 'x');
CREATE FOREIGN TABLE regress_other (server_id text, cpu integer) SERVER sim_metrics_hot;
SELECT * FROM regress_other;
DROP FOREIGN TABLE regress_other;

-- privileges: anyone reads it, nobody else writes it or runs its handler
CREATE ROLE regress_cur_reader NOLOGIN;
CREATE SCHEMA regress_cur_own AUTHORIZATION regress_cur_reader;
SELECT has_table_privilege('regress_cur_reader', 'sim_current', 'SELECT') AS reads,
       has_table_privilege('regress_cur_reader', 'sim_current', 'INSERT, UPDATE, DELETE, TRUNCATE, TRIGGER, REFERENCES') AS writes,
       has_function_privilege('regress_cur_reader', 'sim_fdw_handler()', 'EXECUTE') AS handler,
       has_foreign_data_wrapper_privilege('regress_cur_reader', 'sim_metrics_fdw', 'USAGE') AS fdw,
       has_server_privilege('regress_cur_reader', 'sim_metrics_hot', 'USAGE') AS server;
SET ROLE regress_cur_reader;
SELECT count(*) AS servers FROM sim_current_metrics() WHERE status = 'online';
CREATE FOREIGN TABLE regress_cur_own.mine (server_id text) SERVER sim_metrics_hot;
RESET ROLE;

-- sim_expose(): the wrapper of sim_current_metrics() is inlined too, so a
-- PostgREST-shaped query reaches the binary search
CREATE SCHEMA regress_cur_api;
SELECT count(*) AS wrappers FROM sim_expose('regress_cur_api', ARRAY['regress_cur_reader']);
SELECT p.proconfig FROM pg_proc p WHERE p.oid = 'regress_cur_api.sim_current_metrics()'::regprocedure;
EXPLAIN (COSTS OFF)
WITH pgrst_source AS (SELECT pgrst_call.* FROM regress_cur_api.sim_current_metrics() pgrst_call)
SELECT server_id, status FROM pgrst_source WHERE server_id = 'web-nginx-icn-01';
SET ROLE regress_cur_reader;
WITH pgrst_source AS (SELECT pgrst_call.* FROM regress_cur_api.sim_current_metrics() pgrst_call)
SELECT server_id, status FROM pgrst_source WHERE server_id = 'web-nginx-icn-01';
RESET ROLE;
-- a search_path of the caller's changes nothing the wrapper reads
CREATE SCHEMA regress_cur_evil;
CREATE TABLE regress_cur_evil.sim_current (server_id text);
SET search_path = regress_cur_evil, public;
SELECT count(*) AS servers FROM regress_cur_api.sim_current_metrics();
RESET search_path;
DROP SCHEMA regress_cur_evil CASCADE;
DROP SCHEMA regress_cur_api CASCADE;
DROP SCHEMA regress_cur_own;
DROP ROLE regress_cur_reader;

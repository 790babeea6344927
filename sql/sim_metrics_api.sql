-- SQL API: bad input, template edits, status.
SELECT sim_tick(0);
SELECT sim_tick(-5);
SELECT sim_tick(NULL) IS NULL AS null_is_noop;

-- (whether the worker runs right now is timing-dependent here: see t/)
SELECT paused, servers, skipped_servers, max_servers, tick_interval_ms, last_error,
       tick_ms >= 0 AS tick_cost_known
FROM sim_status();

-- edits are picked up by the next tick
INSERT INTO server_templates (id, name, hostname, role, location, baseline_cpu)
VALUES ('web-test-01', 'Test Web', 'web-test-01.example', 'web', 'Lab-1', 20);
SELECT tick AS before FROM sim_status() \gset
SELECT sim_tick() = :before + 1 AS ticked;
SELECT server_id, role, location, status FROM sim_current_metrics() WHERE server_id = 'web-test-01';
SELECT servers FROM sim_status();

-- NULL baselines take the role defaults; a new server starts near its target
INSERT INTO server_templates (id, name, hostname, role, location)
VALUES ('cache-test-01', 'Test Cache', 'cache-test-01.example', 'cache', 'Lab-1');
SELECT sim_tick();
SELECT server_id, memory_usage BETWEEN 70 AND 90 AS cache_memory_high
FROM sim_current_metrics() WHERE server_id = 'cache-test-01';

-- disabling and deleting take servers out; other servers keep their state
CREATE TEMP TABLE before_edit AS SELECT server_id, cpu_usage FROM sim_current_metrics();
UPDATE server_templates SET enabled = false WHERE id = 'web-test-01';
DELETE FROM server_templates WHERE id = 'cache-test-01';
SELECT sim_reload();
SELECT count(*) AS servers,
       count(*) FILTER (WHERE c.cpu_usage = b.cpu_usage) AS unchanged
FROM sim_current_metrics() c JOIN before_edit b USING (server_id);

-- an edit rolled back changes nothing
BEGIN;
DELETE FROM server_templates;
ROLLBACK;
SELECT sim_tick() > 0 AS ticked, (SELECT servers FROM sim_status()) AS servers;

-- a reload inside a transaction that rolls back is undone by the next tick
BEGIN;
DELETE FROM server_templates;
SELECT sim_reload();
ROLLBACK;
SELECT sim_tick() > 0 AS ticked, (SELECT servers FROM sim_status()) AS servers;

-- a baseline edit keeps the server's state and moves its target
UPDATE server_templates SET baseline_cpu = 95 WHERE id = 'web-nginx-pus-01';
SELECT sim_tick(60);
SELECT cpu_usage > 60 AS pulled_up FROM sim_current_metrics() WHERE server_id = 'web-nginx-pus-01';
UPDATE server_templates SET baseline_cpu = 25 WHERE id = 'web-nginx-pus-01';
SELECT sim_tick(120);
SELECT cpu_usage < 50 AS back_down FROM sim_current_metrics() WHERE server_id = 'web-nginx-pus-01';

-- a renamed server shows its new name in this same session (reader cache)
SELECT name FROM sim_current_metrics() WHERE server_id = 'web-nginx-pus-01';
UPDATE server_templates SET name = 'Renamed Web PUS-01' WHERE id = 'web-nginx-pus-01';
SELECT sim_tick() > 0 AS ticked;
SELECT name FROM sim_current_metrics() WHERE server_id = 'web-nginx-pus-01';

-- text limits are bytes (the shared-memory slots): multibyte names fit by bytes
\set VERBOSITY terse
INSERT INTO server_templates (id, name, hostname, role, location)
VALUES ('web-utf8-01', repeat('é', 32), 'h', 'web', 'Lab');
\set VERBOSITY default
INSERT INTO server_templates (id, name, hostname, role, location)
VALUES ('web-utf8-01', repeat('é', 31) || 'x', 'h', 'web', 'Lab');
SELECT sim_tick() > 0 AS ticked;
SELECT octet_length(name), name = repeat('é', 31) || 'x' AS intact
FROM sim_current_metrics() WHERE server_id = 'web-utf8-01';
DELETE FROM server_templates WHERE id = 'web-utf8-01';
\set VERBOSITY terse
UPDATE server_templates SET network_capacity_bps = 9223372036854775807 WHERE id = 'web-nginx-icn-01';
\set VERBOSITY default

-- settings that cannot be set per session
SET sim_metrics.seed = 7;
SET sim_metrics.start_time = 'yesterday';
SET sim_metrics.max_servers = 5;
SET sim_metrics.bogus = 1;
SHOW sim_metrics.tick_interval;
SHOW sim_metrics.enabled;

-- the tiered point read: a live server from memory (Redis is off here),
-- the same values as sim_current_metrics(); an unknown id is an error
SELECT p.source, p.server_id, p.name, p.role, p.status,
       p.cpu_usage = c.cpu_usage AND p.tick = c.tick AS same_as_current
  FROM sim_server_metrics('web-nginx-icn-01') p
  JOIN sim_current_metrics() c USING (server_id);
SELECT source FROM sim_server_metrics('no-such-server');

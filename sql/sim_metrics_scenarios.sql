-- Incident scenarios, stepped with sim_tick() (worker paused, seed 42).
SET client_min_messages = notice;

-- the catalog
SELECT name, roles, phase_curves, cascade_scenario, cascade_probability, auto_weight
FROM sim_scenarios ORDER BY name;
SELECT count(*) AS via_function FROM sim_scenarios();

-- a catalog entry that cannot run is refused
INSERT INTO sim_scenarios (name, phase_shares, cpu_effect) VALUES ('bad_shares', '{0.5,0.5,0.5,0.5}', 10);
INSERT INTO sim_scenarios (name, phase_curves, cpu_effect) VALUES ('bad_curve', '{linear,cubic,linear,linear}', 10);
INSERT INTO sim_scenarios (name, phase_shares, cpu_effect) VALUES ('bad_count', '{0.5,0.5}', 10);
INSERT INTO sim_scenarios (name) VALUES ('no_effect');
INSERT INTO sim_scenarios (name, roles, cpu_effect) VALUES ('bad_role', '{mainframe}', 10);
INSERT INTO sim_scenarios (name, cpu_effect, cascade_delay_min, cascade_delay_max)
  VALUES ('bad_delay', 10, '2 min', '1 min');
INSERT INTO sim_scenarios (name, cpu_effect, cascade_scenario) VALUES ('bad_cascade', 10, 'nothing');
INSERT INTO sim_scenarios (name, cpu_effect) VALUES ('Bad Name', 10);
INSERT INTO sim_scenarios (name, cpu_effect) VALUES ('nan_effect', 'NaN');

-- bad input to sim_scenario_start
SELECT sim_scenario_start('no_such_scenario');
SELECT sim_scenario_start(NULL);
SELECT sim_scenario_start('memory_leak', '{no-such-server}');
SELECT sim_scenario_start('memory_leak', '{location:Atlantis}');
SELECT sim_scenario_start('memory_leak', '{role:mainframe}');
SELECT sim_scenario_start('memory_leak', '{}');
SELECT sim_scenario_start('memory_leak', ARRAY['web-nginx-icn-01', NULL]);
SELECT sim_scenario_start('memory_leak', NULL, 0);
SELECT sim_scenario_start('memory_leak', NULL, 1.5);
SELECT sim_scenario_start('memory_leak', NULL, 'NaN');
SELECT sim_scenario_start('memory_leak', NULL, NULL);
SELECT sim_scenario_start('memory_leak', NULL, 0.7, '0 s');
SELECT sim_scenario_start('memory_leak', NULL, 0.7, '-1 min');
SELECT sim_scenario_start('memory_leak', NULL, 0.7, '8 days');
SELECT sim_scenario_start('memory_leak', NULL, 0.7, NULL);
SELECT sim_scenario_start('slow_database', '{web-nginx-icn-01}');
SELECT sim_scenario_stop(NULL);
SELECT sim_scenario_stop(999999);
-- nothing was started by any of them
SELECT count(*) AS runs FROM sim_scenario_runs();

-- memory_leak on a cache: memory ramps through onset and peak, reaches
-- critical, and recovers after the run
SELECT sim_scenario_start('memory_leak', '{cache-redis-icn-01}') AS leak \gset
SELECT sim_scenario_start('cpu_spike', '{cache-redis-icn-01}');
SELECT scenario, state, phase, servers, intensity, ends_at - started_at AS length
FROM sim_scenario_runs() WHERE run_id = :leak;
CREATE TEMP TABLE leak_ticks (tick bigint, phase text, memory double precision, status text, scenario text);
DO $$
BEGIN
  FOR i IN 1..24 LOOP
    PERFORM sim_tick();
    INSERT INTO leak_ticks
      SELECT m.tick, r.phase, m.memory_usage, m.status, m.scenario
      FROM sim_current_metrics() m
      LEFT JOIN sim_scenario_runs() r ON m.server_id = ANY (r.servers) AND r.state = 'active'
      WHERE m.server_id = 'cache-redis-icn-01';
  END LOOP;
END $$;
SELECT coalesce(phase, '(after)') AS phase, count(*) AS ticks, min(memory), max(memory),
       string_agg(DISTINCT status, ',') AS statuses
FROM leak_ticks GROUP BY phase ORDER BY min(tick);
-- memory rises through onset; critical at the peak; online again after
SELECT bool_and(memory >= prev) AS onset_ramps
FROM (SELECT memory, lag(memory) OVER (ORDER BY tick) AS prev FROM leak_ticks WHERE phase = 'onset') s
WHERE prev IS NOT NULL;
SELECT (SELECT status FROM leak_ticks ORDER BY tick DESC LIMIT 1) AS status_after,
       (SELECT scenario FROM leak_ticks ORDER BY tick DESC LIMIT 1) AS scenario_after;
SELECT state, phase, progress FROM sim_scenario_runs() WHERE run_id = :leak;

-- the log: one row per phase; labels match the history's run ids
SELECT sim_flush() > 0 AS flushed;
SELECT phase, affected_servers, intensity, duration_seconds, ended_at - started_at AS length,
       parameters->'ticks' AS ticks
FROM scenario_execution_log WHERE run_id = :leak ORDER BY id;
SELECT count(*) AS labelled_samples,
       count(*) FILTER (WHERE l.run_id IS NULL) AS samples_without_label
FROM server_metrics_history h
LEFT JOIN sim_incident_labels l
  ON l.run_id = h.scenario_run_id AND l.server_id = h.server_id
 AND h."timestamp" >= l.started_at AND h."timestamp" < l.ended_at
WHERE h.scenario_run_id = :leak;
SELECT count(*) AS unlabelled_in_window
FROM server_metrics_history h, sim_incident_labels l
WHERE l.run_id = :leak AND l.server_id = h.server_id
  AND h."timestamp" >= l.started_at AND h."timestamp" < l.ended_at
  AND h.scenario_run_id IS DISTINCT FROM :leak;
-- a server out of the fleet answers from its latest history row (Redis is
-- off here), with the scenario of that row's run as the log names it
INSERT INTO server_metrics_history (server_id, cpu_usage, memory_usage, disk_usage, network_io,
                                    status, "timestamp", tick, scenario_run_id)
VALUES ('retired-01', 12.5, 40, 50, 1000, 'online', '2026-01-05 00:30:00+00', 60, NULL),
       ('retired-01', 12.5, 90, 50, 1000, 'critical', '2026-01-05 01:00:00+00', 120, :leak),
       ('retired-02', 12.5, 40, 50, 1000, 'online', '2026-01-05 01:00:00+00', 120, NULL);
SELECT p.server_id, p.source, p.status, p.scenario, p.tick
FROM unnest(ARRAY['retired-01', 'retired-02']) id CROSS JOIN LATERAL sim_server_metrics(id) p;
DELETE FROM server_metrics_history WHERE server_id IN ('retired-01', 'retired-02');

-- slow_database on the primary cascades up the callers, each a linked run
SELECT sim_scenario_start('slow_database', '{db-mysql-icn-primary}', 0.8, '15 min') AS slow \gset
SELECT sim_scenario_start('memory_leak', '{db-mysql-icn-primary}');
SELECT sim_tick(10) > 0;
SELECT server_id, status, scenario FROM sim_current_metrics() WHERE scenario IS NOT NULL ORDER BY server_id;
-- the point read names the scenario as sim_current_metrics() does
SELECT m.server_id, p.source, p.scenario
FROM sim_current_metrics() m CROSS JOIN LATERAL sim_server_metrics(m.server_id) p
WHERE m.scenario IS NOT NULL ORDER BY m.server_id;
SELECT count(*) AS differences
FROM sim_current_metrics() m CROSS JOIN LATERAL sim_server_metrics(m.server_id) p
WHERE p.scenario IS DISTINCT FROM m.scenario;
SELECT sim_tick(30) > 0;
SELECT sim_flush() >= 0 AS flushed;
WITH RECURSIVE tree AS (
  SELECT run_id, parent_run_id, scenario_name, 0 AS depth FROM scenario_execution_log
   WHERE run_id = :slow AND phase = 'warning'
  UNION ALL
  SELECT l.run_id, l.parent_run_id, l.scenario_name, t.depth + 1
  FROM scenario_execution_log l JOIN tree t ON l.parent_run_id = t.run_id AND l.phase = 'warning')
SELECT t.depth, t.scenario_name, l.affected_servers->>0 AS server, p.affected_servers->>0 AS caused_by,
       l.started_at - s.started_at AS delay
FROM tree t
JOIN scenario_execution_log l ON l.run_id = t.run_id AND l.phase = 'warning'
LEFT JOIN scenario_execution_log p ON p.run_id = t.parent_run_id AND p.phase = 'warning'
CROSS JOIN (SELECT started_at FROM scenario_execution_log WHERE run_id = :slow AND phase = 'warning') s
ORDER BY t.depth, server;
-- every cascade is logged through its four phases, and its callee is what it calls
SELECT count(DISTINCT run_id) AS runs, count(*) AS phase_rows, count(*) FILTER (WHERE ended_at IS NULL) AS open
FROM scenario_execution_log WHERE run_id >= :slow;
SELECT bool_and(c.server_id = ANY (t.depends_on)) AS follows_depends_on
FROM (SELECT l.affected_servers->>0 AS caller, p.affected_servers->>0 AS server_id
      FROM scenario_execution_log l JOIN scenario_execution_log p
        ON p.run_id = l.parent_run_id AND p.phase = 'warning'
      WHERE l.phase = 'warning' AND l.run_id > :slow) c
JOIN server_templates t ON t.id = c.caller;

-- stop: the run recovers from where it is; its skipped phases are not logged
SELECT sim_scenario_start('cpu_spike', '{web-nginx-icn-01}', 1, '20 min') AS spike \gset
SELECT sim_tick(3) > 0;
SELECT phase FROM sim_scenario_runs() WHERE run_id = :spike;
SELECT sim_scenario_stop(:spike);
SELECT state, phase FROM sim_scenario_runs() WHERE run_id = :spike;
SELECT sim_scenario_stop(:spike);
SELECT sim_tick(12) > 0;
SELECT sim_scenario_stop(:spike);
SELECT sim_flush() >= 0 AS flushed;
SELECT phase, duration_seconds, parameters->'stopped' AS stopped FROM scenario_execution_log
WHERE run_id = :spike ORDER BY id;

-- server_down: offline, every metric 0
SELECT sim_scenario_start('server_down', '{api-was-pus-01}', 1, '10 min') AS down \gset
SELECT sim_tick(4) > 0;
SELECT server_id, status, cpu_usage, memory_usage, disk_usage, network_io, scenario
FROM sim_current_metrics() WHERE server_id = 'api-was-pus-01';
SELECT sim_tick(20) > 0;
SELECT server_id, status, scenario FROM sim_current_metrics() WHERE server_id = 'api-was-pus-01';

-- NULL targets: one server the scenario suits, chosen by the seed
SELECT sim_scenario_start('cache_failure') AS cf \gset
SELECT servers FROM sim_scenario_runs() WHERE run_id = :cf;
SELECT sim_scenario_stop(:cf);

-- automatic incidents: a session may try a rate with sim_tick()
SET sim_metrics.incident_rate = 150;
SET sim_metrics.max_incidents = 2;
SELECT max(run_id) AS before_auto FROM sim_scenario_runs() \gset
SELECT sim_tick(300) > 0;
SELECT scenario, servers, intensity, started_at, ends_at - started_at AS length
FROM sim_scenario_runs() WHERE automatic AND parent_run_id IS NULL AND run_id > :before_auto
ORDER BY run_id;
SELECT count(*) <= 2 AS at_most_two_at_once FROM sim_scenario_runs()
WHERE automatic AND parent_run_id IS NULL AND state IN ('active', 'pending', 'stopping');
RESET sim_metrics.incident_rate;
RESET sim_metrics.max_incidents;
SELECT active_scenarios >= 0 AS counted FROM sim_status();

-- fuzz: random scenarios, targets, intensities and durations give a run
-- or a clean ERROR with a hint, never anything else
SELECT setseed(0.42);
CREATE TEMP TABLE fuzz (outcome text, hinted boolean);
DO $$
DECLARE
  names text[] := ARRAY['memory_leak', 'cpu_spike', 'slow_database', 'server_down', 'disk_full',
                        'nope', '', 'cache_failure', 'network_saturation', repeat('x', 200)];
  picks text[] := ARRAY['web-nginx-icn-01', 'role:database', 'role:cache', 'location:Seoul-ICN-AZ1',
                        'env:production', 'env:staging', 'role:', 'location:', 'x', 'db-mysql-pus-dr',
                        'role:web', 'lb-haproxy-pus-01', ':', 'role:load-balancer'];
  srv text[];
  run bigint;
  st text;
  hint text;
BEGIN
  FOR i IN 1..300 LOOP
    srv := CASE WHEN random() < 0.2 THEN NULL
           ELSE ARRAY(SELECT picks[1 + floor(random() * 14)::int] FROM generate_series(1, 1 + floor(random() * 3)::int)) END;
    BEGIN
      run := sim_scenario_start(names[1 + floor(random() * 10)::int], srv,
                                (random() * 1.4 - 0.2)::real,
                                make_interval(secs => random() * 800000 - 1000));
      INSERT INTO fuzz VALUES ('run', true);
      PERFORM sim_scenario_stop(run);
    EXCEPTION WHEN OTHERS THEN
      GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, hint = PG_EXCEPTION_HINT;
      INSERT INTO fuzz VALUES (st, hint <> '');
    END;
  END LOOP;
END $$;
SELECT count(*) FILTER (WHERE outcome = 'run') > 0 AS some_ran,
       count(*) FILTER (WHERE outcome <> 'run') > 0 AS some_refused,
       count(*) FILTER (WHERE NOT hinted) AS without_hint,
       count(*) FILTER (WHERE outcome NOT IN ('run', '22023', '22004', '42704', '55006', '54000', '53400', '22000')) AS unexpected
FROM fuzz;
SELECT sim_tick(30) > 0;

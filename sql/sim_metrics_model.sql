-- Deterministic simulation: worker paused, seed 42, start 2026-01-05 00:00 UTC.
SELECT paused, servers, tick, sim_time FROM sim_status();

-- tick 0: every server at its target
SELECT server_id, cpu_usage, memory_usage, disk_usage, network_io, status, tick, sim_time
FROM sim_current_metrics() ORDER BY server_id;

SELECT sim_tick(100);
SELECT server_id, cpu_usage, memory_usage, disk_usage, network_io,
       network_usage, response_time_ms, status, tick, sim_time
FROM sim_current_metrics() ORDER BY server_id;

SELECT sim_tick(100);
SELECT server_id, cpu_usage, memory_usage, disk_usage, network_io, status, tick, sim_time
FROM sim_current_metrics() ORDER BY server_id;

-- nothing moves while paused and nobody ticks
CREATE TEMP TABLE snap AS SELECT * FROM sim_current_metrics();
SELECT pg_sleep(0.2);
SELECT count(*) AS changed
FROM sim_current_metrics() c JOIN snap s USING (server_id)
WHERE c.cpu_usage <> s.cpu_usage OR c.tick <> s.tick;

-- the simulated clock: start_time + tick x tick_interval x time_scale
SELECT tick, sim_time, sim_time = '2026-01-05 00:00:00+00'::timestamptz + tick * interval '30 seconds' AS on_clock
FROM sim_status();

-- business hours run hotter than the night (tick 200 is 01:40; tick 1320 is 11:00)
CREATE TEMP TABLE night AS SELECT avg(cpu_usage) AS cpu FROM sim_current_metrics() WHERE role = 'web';
SELECT sim_tick(1120);
SELECT (SELECT avg(cpu_usage) FROM sim_current_metrics() WHERE role = 'web') > (SELECT cpu FROM night) * 1.5 AS business_hours_busier;

-- bench/realism.sql — how believable the baseline is, read back from
-- server_metrics_history: one row a property, what was measured, the target
-- (issue "Model v2") and whether it is met. Meant for a history without
-- scenarios; bench/realism.sh makes one (seven simulated days, 30 s ticks,
-- seed 7, the default fleet) and runs this on it.
--
--   psql -X -f bench/realism.sql          (in the fleet's database)
--
-- Local time for days and hours: sim_metrics.utc_offset (minutes).
\set ON_ERROR_STOP on
SET client_min_messages = warning;

CREATE TEMP TABLE rz_h AS
SELECT x.server_id, t.role, x.tick,
       x."timestamp" + make_interval(mins => current_setting('sim_metrics.utc_offset')::int) AS lt,
       x.cpu_usage::float8 AS cpu, x.memory_usage::float8 AS mem, x.disk_usage::float8 AS disk,
       100.0 * x.network_io / t.network_capacity_bps AS net, x.status,
       lag(x.status) OVER w AS prev_status,
       x.cpu_usage::float8 - lag(x.cpu_usage::float8) OVER w AS d_cpu,
       x.memory_usage::float8 - lag(x.memory_usage::float8) OVER w AS d_mem,
       x.disk_usage::float8 - lag(x.disk_usage::float8) OVER w AS d_disk,
       100.0 * (x.network_io - lag(x.network_io) OVER w) / t.network_capacity_bps AS d_net
  FROM server_metrics_history x
  JOIN server_templates t ON t.id = x.server_id
WINDOW w AS (PARTITION BY x.server_id ORDER BY x.tick);
ANALYZE rz_h;

-- per server: shares, changes, moments of the 30 s changes
CREATE TEMP TABLE rz_s AS
SELECT server_id, role,
       100.0 * avg((status = 'warning')::int) AS warn_pct,
       100.0 * avg((status = 'critical')::int) AS crit_pct,
       count(*) FILTER (WHERE status <> prev_status)
         / greatest(extract(epoch FROM max(lt) - min(lt)) / 86400.0, 1e-9) AS changes_per_day,
       avg(net) AS net_mean,
       min(cpu) AS cpu_min,
       count(*) FILTER (WHERE cpu = 0) AS cpu_zero,
       100.0 * avg((d_disk >= -0.01 OR d_disk < -1)::int) FILTER (WHERE d_disk IS NOT NULL) AS disk_mono_pct,
       count(d_cpu) AS n,
       avg(d_cpu) AS c1, avg(d_cpu ^ 2) AS c2, avg(d_cpu ^ 3) AS c3, avg(d_cpu ^ 4) AS c4,
       avg(d_net) AS n1, avg(d_net ^ 2) AS n2, avg(d_net ^ 3) AS n3, avg(d_net ^ 4) AS n4
  FROM rz_h
 GROUP BY server_id, role;

-- excess kurtosis from raw moments: m4 / m2^2 - 3
CREATE TEMP TABLE rz_k AS
SELECT server_id, role,
       (c4 - 4 * c1 * c3 + 6 * c1 ^ 2 * c2 - 3 * c1 ^ 4) / nullif((c2 - c1 ^ 2) ^ 2, 0) - 3 AS kurt_cpu,
       (n4 - 4 * n1 * n3 + 6 * n1 ^ 2 * n2 - 3 * n1 ^ 4) / nullif((n2 - n1 ^ 2) ^ 2, 0) - 3 AS kurt_net
  FROM rz_s;

-- hourly and daily means (local time)
CREATE TEMP TABLE rz_hour AS
SELECT server_id, role, date_trunc('hour', lt) AS hr, avg(cpu) AS cpu, avg(net) AS net, avg(mem) AS mem
  FROM rz_h GROUP BY 1, 2, 3;
CREATE TEMP TABLE rz_day AS
SELECT server_id, role, date_trunc('day', lt) AS day, avg(cpu) AS cpu, avg(disk) AS disk,
       extract(isodow FROM date_trunc('day', lt)) < 6 AS weekday,
       count(*) AS n,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY mem) - percentile_cont(0.05) WITHIN GROUP (ORDER BY mem) AS mem_swing,
       count(*) FILTER (WHERE d_mem < -2) AS mem_drops
  FROM rz_h GROUP BY 1, 2, 3;

-- daily swing: p95 / p5 of hourly means, per server
CREATE TEMP TABLE rz_swing AS
SELECT server_id, role,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY cpu) / nullif(percentile_cont(0.05) WITHIN GROUP (ORDER BY cpu), 0) AS cpu_swing,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY net) / nullif(percentile_cont(0.05) WITHIN GROUP (ORDER BY net), 0) AS net_swing
  FROM rz_hour GROUP BY 1, 2;

-- correlation of 30 s cpu changes along each depends_on edge
CREATE TEMP TABLE rz_edge AS
SELECT t.id AS a, d.b, corr(ha.d_cpu, hb.d_cpu) AS r
  FROM server_templates t
 CROSS JOIN LATERAL unnest(t.depends_on) AS d(b)
  JOIN rz_h ha ON ha.server_id = t.id
  JOIN rz_h hb ON hb.server_id = d.b AND hb.tick = ha.tick
 GROUP BY 1, 2;

WITH props(ord, property, measured, target, ok) AS (
  SELECT 1, 'samples in warning, worst server (%)',
         round(max(warn_pct)::numeric, 2)::text, '<= 1', max(warn_pct) <= 1 FROM rz_s
  UNION ALL
  SELECT 2, 'samples in critical, worst server (%)',
         round(max(crit_pct)::numeric, 2)::text, '<= 0.1', max(crit_pct) <= 0.1 FROM rz_s
  UNION ALL
  SELECT 3, 'servers in warning more than half the time',
         count(*) FILTER (WHERE warn_pct > 50)::text, '0', count(*) FILTER (WHERE warn_pct > 50) = 0 FROM rz_s
  UNION ALL
  SELECT 4, 'status changes a day, worst server',
         round(max(changes_per_day)::numeric, 1)::text, '<= 2', max(changes_per_day) <= 2 FROM rz_s
  UNION ALL
  SELECT 5, 'excess kurtosis of 30 s cpu changes, median (min) server',
         round(percentile_cont(0.5) WITHIN GROUP (ORDER BY kurt_cpu)::numeric, 2) || ' (' ||
         round(min(kurt_cpu)::numeric, 2) || ')', '>= 3', min(kurt_cpu) >= 3 FROM rz_k
  UNION ALL
  SELECT 6, 'excess kurtosis of 30 s network changes, median (min) server',
         round(percentile_cont(0.5) WITHIN GROUP (ORDER BY kurt_net)::numeric, 2) || ' (' ||
         round(min(kurt_net)::numeric, 2) || ')', '>= 3', min(kurt_net) >= 3 FROM rz_k
  UNION ALL
  SELECT 7, 'correlation of 30 s cpu changes along depends_on, mean (min) of ' || count(*) || ' edges',
         round(avg(r)::numeric, 2) || ' (' || round(min(r)::numeric, 2) || ')', '>= 0.3',
         coalesce(min(r) >= 0.3, false) FROM rz_edge
  UNION ALL
  SELECT 8, 'disk: 30 s steps that do not fall (drops over 1 point aside), worst server (%)',
         round(min(disk_mono_pct)::numeric, 2)::text, '>= 99', min(disk_mono_pct) >= 99 FROM rz_s
  UNION ALL
  SELECT 9, 'disk growth (points a day, slope of daily means), min / median server',
         round(min(g)::numeric, 2) || ' / ' ||
         round(percentile_cont(0.5) WITHIN GROUP (ORDER BY g)::numeric, 2), '> 0', min(g) > 0
    FROM (SELECT server_id, regr_slope(disk, extract(epoch FROM day) / 86400) AS g
            FROM rz_day GROUP BY 1) d
  UNION ALL
  SELECT 10, 'day-to-day variation of weekday cpu means, median server (%)',
         round(percentile_cont(0.5) WITHIN GROUP (ORDER BY v)::numeric, 1)::text, '5 - 15',
         percentile_cont(0.5) WITHIN GROUP (ORDER BY v) BETWEEN 5 AND 15
    FROM (SELECT server_id, 100 * stddev_samp(cpu) / nullif(avg(cpu), 0) AS v
            FROM rz_day WHERE weekday AND n >= 2000 GROUP BY 1) d
  UNION ALL
  SELECT 11, 'servers of one role differ: spread of daily cpu swing within a role, mean (least) of roles (%)',
         round(avg(cv)::numeric, 1) || ' (' || round(min(cv)::numeric, 1) || ')', '>= 5', avg(cv) >= 5
    FROM (SELECT role, 100 * stddev_samp(cpu_swing) / nullif(avg(cpu_swing), 0) AS cv
            FROM rz_swing GROUP BY role HAVING count(*) >= 2) r
  UNION ALL
  SELECT 12, 'database memory: daily swing, median day (points)',
         round(percentile_cont(0.5) WITHIN GROUP (ORDER BY mem_swing)::numeric, 2)::text, '<= 2',
         percentile_cont(0.5) WITHIN GROUP (ORDER BY mem_swing) <= 2 FROM rz_day WHERE role = 'database'
  UNION ALL
  SELECT 13, 'app memory: drops over 2 points a day (GC), median day',
         percentile_cont(0.5) WITHIN GROUP (ORDER BY mem_drops)::text, '>= 1',
         percentile_cont(0.5) WITHIN GROUP (ORDER BY mem_drops) >= 1 FROM rz_day WHERE role = 'app'
  UNION ALL
  SELECT 14, 'cache memory: mean (daily swing, median day)',
         (SELECT round(avg(mem)::numeric, 1) FROM rz_h WHERE role = 'cache') || ' (' ||
         round(percentile_cont(0.5) WITHIN GROUP (ORDER BY mem_swing)::numeric, 2) || ')', 'high, swing <= 2',
         percentile_cont(0.5) WITHIN GROUP (ORDER BY mem_swing) <= 2 FROM rz_day WHERE role = 'cache'
  UNION ALL
  SELECT 15, 'network, mean % of capacity: least / most server',
         round(min(net_mean)::numeric, 1) || ' / ' || round(max(net_mean)::numeric, 1), '5 - 30',
         min(net_mean) >= 5 AND max(net_mean) <= 30 FROM rz_s
  UNION ALL
  SELECT 16, 'network daily swing over cpu daily swing, median server',
         round(percentile_cont(0.5) WITHIN GROUP (ORDER BY net_swing / nullif(cpu_swing, 0))::numeric, 2)::text, '>= 1',
         percentile_cont(0.5) WITHIN GROUP (ORDER BY net_swing / nullif(cpu_swing, 0)) >= 1 FROM rz_swing
  UNION ALL
  SELECT 17, 'minimum cpu of any sample (samples at exactly 0.0)',
         round(min(cpu_min)::numeric, 2) || ' (' || sum(cpu_zero) || ')', '> 0 (0)',
         min(cpu_min) > 0 AND sum(cpu_zero) = 0 FROM rz_s
)
SELECT property, measured, target, CASE WHEN ok THEN 'yes' ELSE 'NO' END AS met
  FROM props ORDER BY ord;

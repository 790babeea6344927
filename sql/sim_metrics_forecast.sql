-- Forecasts (1.9): sim_forecast over a server's history (sim_metrics_backfill's
-- 2-day backfill and the ticks since), as of now and as of an hour ago
-- (a backtest against what happened); sim_forecast_series over a series
-- handed in; sim_predict_alerts on a disk filled by hand, sim_alert_report
-- over the session's history; bad input.
SET client_min_messages = warning;
SELECT sim_flush() >= 0 AS flushed;
-- one row a tick up to the horizon, after the current simulated time;
-- intervals ordered and within 0..100, for every metric
SELECT m.metric, count(*) AS rows,
       min(f.sim_time) = (SELECT sim_time FROM sim_status()) + interval '30 s' AS first_tick_next,
       max(f.sim_time) = (SELECT sim_time FROM sim_status()) + interval '1 hour' AS last_at_horizon,
       bool_and(f.lo_95 <= f.lo_80 AND f.lo_80 <= f.forecast AND f.forecast <= f.hi_80 AND f.hi_80 <= f.hi_95) AS ordered,
       bool_and(f.lo_95 >= 0 AND f.hi_95 <= 100) AS bounded
  FROM unnest(ARRAY['cpu_usage', 'memory_usage', 'disk_usage', 'network_usage']) m(metric)
 CROSS JOIN LATERAL sim_forecast('web-nginx-icn-01', m.metric, '1 hour', '2 days') f
 GROUP BY m.metric ORDER BY m.metric;
-- the same history, the same forecast
SELECT (SELECT array_agg(forecast) FROM sim_forecast('db-mysql-icn-primary', 'memory_usage', '10 min', '2 days'))
     = (SELECT array_agg(forecast) FROM sim_forecast('db-mysql-icn-primary', 'memory_usage', '10 min', '2 days')) AS repeatable;
-- as of an hour ago, against what happened: every server's cpu, the
-- error next to the value a day before's (one hour of two days' history:
-- a sanity bound; t/033_forecast.pl compares over many origins), and the
-- 95 % interval's coverage
CREATE TEMP TABLE backtest AS
SELECT t.id AS server_id, f.sim_time, f.forecast, f.lo_95, f.hi_95, h.cpu_usage AS actual, y.cpu_usage AS day_before
  FROM server_templates t
 CROSS JOIN LATERAL sim_forecast(t.id, 'cpu_usage', '1 hour', '2 days',
                                 (SELECT sim_time FROM sim_status()) - interval '1 hour') f
  JOIN sim_history(t.id, (SELECT sim_time FROM sim_status()) - interval '1 hour',
                   (SELECT sim_time FROM sim_status())) h ON h."timestamp" = f.sim_time
  JOIN server_metrics_history y ON y.server_id = t.id AND y."timestamp" = f.sim_time - interval '1 day'
 WHERE t.enabled;
SELECT count(DISTINCT server_id) AS servers, count(*) > 1500 AS compared,
       avg(abs(forecast - actual)) < 1.5 * avg(abs(day_before - actual)) AS near_a_day_before,
       avg((actual BETWEEN lo_95 AND hi_95)::int) >= 0.8 AS covered_95
  FROM backtest;
-- any series: three days of a daily curve at 5 minutes, a day ahead
CREATE TEMP TABLE curve AS
SELECT '2026-01-01'::timestamptz + i * interval '5 min' AS ts,
       50 + 20 * sin(2 * pi() * i / 288.0) + 2 * sin(i * 0.7) AS v
  FROM generate_series(0, 3 * 288 - 1) i;
SELECT count(*) AS rows, min(ts) AS first, max(ts) AS last,
       max(abs(forecast - (50 + 20 * sin(2 * pi() * (extract(epoch FROM ts - '2026-01-01') / 300) / 288.0)))) < 5 AS close
  FROM sim_forecast_series((SELECT array_agg(ts ORDER BY ts) FROM curve),
                           (SELECT array_agg(v ORDER BY ts) FROM curve), '1 day');
-- predicted alerts: a disk filled by hand is predicted to cross, with an
-- eta after now and no later than the horizon (15 minutes in: its faster
-- onset began at 10, and a climb must hold a few ticks to be reported)
SELECT sim_scenario_start('disk_full', ARRAY['web-nginx-icn-02'], 1.0, '40 min') > 0 AS started;
SELECT sim_tick(30) > 0 AS ticked;
SELECT server_id, metric, status, eta > (SELECT sim_time FROM sim_status()) AS after_now,
       eta <= (SELECT sim_time FROM sim_status()) + interval '1 hour' AS within_horizon,
       probability BETWEEN 0 AND 1 AS probability_ok, current < 90 AS below
  FROM sim_predict_alerts() WHERE server_id = 'web-nginx-icn-02' ORDER BY status DESC;
SELECT sim_tick(34) > 0 AS ticked;
SELECT sim_flush() > 0 AS flushed;
-- the predictor replayed over the session's history, scored against it
SELECT crossings >= 1 AS crossed, predicted >= 1 AS predicted, recall > 0 AS recall,
       median_lead >= interval '5 min' AS lead_ok, false_per_server_day >= 0 AS rate_ok, server_days > 0 AS days
  FROM sim_alert_report((SELECT min("timestamp") FROM server_metrics_history) + interval '30 min',
                        (SELECT sim_time FROM sim_status()) - interval '1 min');
-- an hourly series: a day has 24 samples, enough
SELECT count(*) AS hourly_rows
  FROM sim_forecast_series((SELECT array_agg('2026-01-01'::timestamptz + i * interval '1 hour' ORDER BY i) FROM generate_series(0, 95) i),
                           (SELECT array_agg(50 + 20 * sin(2 * pi() * i / 24.0) ORDER BY i) FROM generate_series(0, 95) i), '6 hours');
-- bad input
SELECT * FROM sim_forecast('web-nginx-icn-01', 'cpu_usage', '1 hour', '500 days');
SELECT * FROM sim_forecast_series(ARRAY['2026-01-01', '2026-01-03']::timestamptz[], ARRAY[1, 1e31]::float8[], '1 hour');
SELECT * FROM sim_predict_alerts(NULL);
SELECT * FROM sim_predict_alerts('-1 hour');
SELECT * FROM sim_alert_report(NULL, now());
SELECT * FROM sim_alert_report(now(), now() - interval '1 day');
SELECT * FROM sim_alert_report('-infinity', now());
SELECT * FROM sim_forecast('nope', 'cpu_usage', '1 hour');
SELECT * FROM sim_forecast('web-nginx-icn-01', 'cpu', '1 hour');
SELECT * FROM sim_forecast('web-nginx-icn-01', NULL, '1 hour');
SELECT * FROM sim_forecast('web-nginx-icn-01', 'cpu_usage', '0');
SELECT * FROM sim_forecast('web-nginx-icn-01', 'cpu_usage', '-1 hour');
SELECT * FROM sim_forecast('web-nginx-icn-01', 'cpu_usage', '3 days', '2 days');
SELECT * FROM sim_forecast('web-nginx-icn-01', 'cpu_usage', '1 hour', '1 day');
SELECT * FROM sim_forecast('web-nginx-icn-01', 'cpu_usage', '1 hour', '2 days', 'infinity');
SELECT count(*) FROM sim_forecast('web-nginx-icn-01', 'cpu_usage', '1 hour', '2 days', '2100-01-01');
SELECT * FROM sim_forecast_series(ARRAY['2026-01-01']::timestamptz[], ARRAY[1, 2]::float8[], '1 hour');
SELECT * FROM sim_forecast_series(ARRAY['2026-01-02', '2026-01-01']::timestamptz[], ARRAY[1, 2]::float8[], '1 hour');
SELECT * FROM sim_forecast_series(ARRAY['2026-01-01', '2026-01-02']::timestamptz[], ARRAY[1, 2]::float8[], '2 days');
SELECT * FROM sim_forecast_series(ARRAY['2026-01-01', '2026-01-01 01:00']::timestamptz[], ARRAY[1, 2]::float8[], '1 hour');
SELECT * FROM sim_forecast_series(ARRAY['2026-01-01', 'infinity']::timestamptz[], ARRAY[1, 2]::float8[], '1 hour');
RESET client_min_messages;

-- The anomaly detector (1.8): the score of every sample, the same detector
-- on any series (sim_anomaly_scores), NAB's scoring (sim_score_detector,
-- sim_detector_report); bad input. The history is sim_metrics_backfill's
-- 2-day backfill, with a memory_leak placed on cache-redis-icn-01.
SET client_min_messages = warning;
-- every sample has a score in [0, 1]; nothing scores in the warm-up
SELECT count(*) AS rows, count(anomaly_score) AS scored,
       min(anomaly_score) >= 0 AND max(anomaly_score) <= 1 AS in_range,
       max(anomaly_score) FILTER (WHERE tick <= 64 AND status <> 'offline') AS warmup_max
  FROM server_metrics_history;
-- a leak started on the fleet scores over the threshold while it runs
SELECT sim_scenario_start('memory_leak', ARRAY['api-was-icn-01'], 1.0, '20 min') > 0 AS started;
SELECT sim_tick(50) > 0 AS ticked;
SELECT sim_flush() > 0 AS flushed;
SELECT count(*) > 0 AS labelled, max(anomaly_score) >= current_setting('sim_metrics.anomaly_threshold')::real AS leak_seen
  FROM sim_history_labelled WHERE server_id = 'api-was-icn-01' AND scenario = 'memory_leak';
-- the live reads carry the score and the metric behind it
SELECT count(*) AS servers, bool_and(anomaly_score BETWEEN 0 AND 1) AS scored,
       bool_and((anomaly_metric IS NULL) = (anomaly_score = 0)) AS metric_iff_score,
       bool_and(anomaly_metric IS NULL OR anomaly_metric IN ('cpu_usage', 'memory_usage', 'disk_usage',
                'network_usage', 'response_time_ms', 'status')) AS known_metrics
  FROM sim_current_metrics();
SELECT m.anomaly_score = p.anomaly_score AND m.anomaly_metric IS NOT DISTINCT FROM p.anomaly_metric AS point_agrees
  FROM sim_current_metrics() m, sim_server_metrics('cache-redis-icn-01') p
 WHERE m.server_id = 'cache-redis-icn-01';
SELECT jsonb_object_keys(sim_dashboard()->'summary'->'anomalySummary') AS anomaly_summary_key ORDER BY 1;
SELECT (sim_dashboard()->'summary'->'anomalySummary'->>'anomalous')::int =
       (SELECT count(*) FROM sim_current_metrics()
         WHERE anomaly_score >= current_setting('sim_metrics.anomaly_threshold')::float8) AS summary_counts;
-- a periodic series of a week at 5 min with an incident (up 25 over 10
-- rows from row 1800, held 30 rows): quiet before it, over the threshold
-- in it; its onset alarms once, and from day 3 (the onset ranks each row
-- against the series' own past, which needs days) the quiet rows alarm
-- rarely (a sequence of bins never seen before does)
CREATE TEMP TABLE series AS
SELECT i, '2026-01-01'::timestamptz + i * interval '5 min' AS ts,
       50 + 3 * sin(i * 0.9) + 2 * cos(i * 0.31)
          + CASE WHEN i >= 1800 AND i < 1840 THEN 25 * least(1, (i - 1799) / 10.0) ELSE 0 END AS v
  FROM generate_series(0, 1999) i;
CREATE TEMP TABLE scored AS
SELECT * FROM sim_anomaly_scores((SELECT array_agg(ts ORDER BY i) FROM series),
                                 (SELECT array_agg(v ORDER BY i) FROM series));
SELECT count(*) AS rows,
       bool_and(score = 0 AND onset = 0) FILTER (WHERE s.i < 64) AS warmup_zero,
       max(score) FILTER (WHERE s.i >= 64 AND s.i < 1800) < current_setting('sim_metrics.anomaly_threshold')::float8 AS quiet,
       max(score) FILTER (WHERE s.i >= 1800 AND s.i < 1840) >= current_setting('sim_metrics.anomaly_threshold')::float8 AS incident_seen,
       max(onset) FILTER (WHERE s.i >= 1800 AND s.i < 1810) >= 0.5 AS onset_seen,
       count(*) FILTER (WHERE s.i >= 1800 AND s.i < 1840 AND onset >= 0.25) = 1 AS one_onset,
       count(*) FILTER (WHERE s.i >= 864 AND s.i < 1800 AND onset >= 0.5) <= 2 AS few_quiet_alarms
  FROM scored JOIN series s USING (ts);
-- missing values: no score, the state left as it was
SELECT * FROM sim_anomaly_scores(ARRAY['2026-01-01', '2026-01-02', '2026-01-03']::timestamptz[],
                                 ARRAY[1, NULL, 'NaN']::float8[]);
SELECT count(*) FROM sim_anomaly_scores('{}', '{}');
-- bad input
SELECT * FROM sim_anomaly_scores(ARRAY['2026-01-01']::timestamptz[], ARRAY[1, 2]::float8[]);
SELECT * FROM sim_anomaly_scores(ARRAY['2026-01-01', NULL]::timestamptz[], ARRAY[1, 2]::float8[]);
SELECT * FROM sim_anomaly_scores(ARRAY['2026-01-02', '2026-01-01']::timestamptz[], ARRAY[1, 2]::float8[]);
SELECT * FROM sim_anomaly_scores(ARRAY['2026-01-01', '2026-01-01']::timestamptz[], ARRAY[1, 2]::float8[]);
SELECT * FROM sim_anomaly_scores(ARRAY[['2026-01-01'], ['2026-01-02']]::timestamptz[], ARRAY[1, 2]::float8[]);
SELECT * FROM sim_anomaly_scores(ARRAY['-infinity', '2026-01-01']::timestamptz[], ARRAY[1, 2]::float8[]);
-- NAB's scoring by hand: 100 rows of 5 min on server a, a window over rows
-- 40..49 alarmed at row 45, a false alarm at row 80 (score 0.9), and a
-- window on server b, which has no rows: as in NAB, not scored (neither
-- found nor missed), though it counts in the perfect score
CREATE TEMP TABLE sc AS
SELECT 'a'::text AS server_id, '2026-01-01'::timestamptz + i * interval '5 min' AS "timestamp",
       (CASE i WHEN 45 THEN 1 WHEN 80 THEN 0.9 ELSE 0 END)::real AS score
  FROM generate_series(0, 99) i;
CREATE TEMP TABLE win (server_id text, window_start timestamptz, window_end timestamptz);
INSERT INTO win VALUES ('a', '2026-01-01'::timestamptz + 40 * interval '5 min', '2026-01-01'::timestamptz + 49 * interval '5 min'),
                       ('b', '2026-01-01', '2026-01-01 01:00');
SELECT profile, round(score::numeric, 2) AS score, threshold, true_positives, false_positives,
       false_negatives, "precision", recall, median_delay
  FROM sim_score_detector('sc', 'win', 0);
-- at a fixed threshold the false alarm counts
SELECT profile, round(score::numeric, 2) AS score, threshold, true_positives, false_positives, false_negatives
  FROM sim_score_detector('sc', 'win', 0, 0.5);
-- the built-in detector against the ground truth: one window, the leak
SELECT profile, true_positives + false_negatives AS windows, score BETWEEN -1000 AND 100 AS normalised
  FROM sim_detector_report('2026-01-05', '2026-01-07');
-- a user's scores, through the same report
SELECT profile, true_positives + false_negatives AS windows
  FROM sim_detector_report('2026-01-01', '2026-01-02', 'sc');
-- bad input
SELECT * FROM sim_detector_report(NULL, '2026-01-07');
SELECT * FROM sim_detector_report('2026-01-07', '2026-01-05');
SELECT * FROM sim_detector_report('2026-01-05', '2026-01-07', 'win');
SELECT * FROM sim_score_detector('sc', 'series');
SELECT * FROM sim_score_detector('sc', 'win', 1.5);
SELECT * FROM sim_score_detector('sc', 'win', 0, 'NaN');
SELECT * FROM sim_detector_report('-infinity', 'infinity');
CREATE TEMP TABLE sc_text (server_id text, "timestamp" timestamptz, score text);
SELECT * FROM sim_score_detector('sc_text', 'win');
-- two rows at one time (real data has them): both scored
INSERT INTO sc VALUES ('a', '2026-01-01', 0.5);
SELECT profile, round(score::numeric, 2) AS score, threshold, true_positives, false_positives, false_negatives
  FROM sim_score_detector('sc', 'win', 0);
RESET client_min_messages;

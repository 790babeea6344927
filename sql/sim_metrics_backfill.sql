-- sim_backfill() (1.7): refused on a fleet with history, then a backfill of
-- a clean history with start_time set (the origin is start_time), the fleet
-- going on from its end; bad input; the labelled view.
SET client_min_messages = warning;
-- the earlier tests' history is the running session's (sim_tick() on the
-- paused fleet): a backfill replaces it; here, with start_time set, the
-- fleet is past the end of a 1-hour backfill
SELECT sim_flush() >= 0 AS flushed;
SELECT sim_backfill('1 hour');
SELECT sim_stop();
TRUNCATE server_metrics_history, scenario_execution_log;
SELECT sim_backfill('1 day') AS rows;
SELECT min(tick), max(tick), min("timestamp"), max("timestamp"), count(DISTINCT server_id) AS servers,
       count(DISTINCT session_id) AS sessions, bool_and(session_id LIKE 'backfill-%') AS backfill_session
  FROM server_metrics_history;
-- the fleet goes on from the backfill's end
SELECT tick, sim_time FROM sim_status();
SELECT sim_tick(1);
SELECT sim_flush();
SELECT tick, "timestamp", count(*) FROM server_metrics_history WHERE tick > 2879 GROUP BY 1, 2 ORDER BY 1;
SELECT count(*) AS duplicates FROM (SELECT server_id, tick FROM server_metrics_history GROUP BY 1, 2 HAVING count(*) > 1) d;
-- history now: refused again
SELECT sim_backfill('2 days');
-- bad input, checked before anything is written
TRUNCATE server_metrics_history, scenario_execution_log;
SELECT sim_backfill(NULL);
SELECT sim_backfill('0');
SELECT sim_backfill('10 seconds');
SELECT sim_backfill('2 days', '{}');
SELECT sim_backfill('2 days', '["x"]');
SELECT sim_backfill('2 days', '[{"scenario": "cpu_spike", "servers": ["web-nginx-icn-01"]}]');
SELECT sim_backfill('2 days', '[{"scenario": "cpu_spike", "servers": ["web-nginx-icn-01"], "at": "2026-01-05 00:10+00", "duration": "8 days"}]');
SELECT sim_backfill('2 days', '[{"scenario": "cpu_spike", "servers": [], "at": "2026-01-05 00:10+00"}]');
SELECT sim_backfill('2 days', '[{"scenario": "cpu_spike", "servers": ["role:nope"], "at": "2026-01-05 00:10+00"}]');
SELECT sim_backfill('2 days', '[{"scenario": "cpu_spike", "servers": ["web-nginx-icn-01"], "at": 5}]');
SELECT count(*) AS rows_after_refusals FROM server_metrics_history;
-- a transaction that ran a backfill cannot be prepared; it rolls back whole
BEGIN;
SELECT sim_backfill('2 days') AS rows;
PREPARE TRANSACTION 'regress_backfill';
SELECT count(*) AS rows_after_prepare FROM server_metrics_history;
-- a placed incident, then the labelled view
SELECT sim_backfill('2 days', '[{"scenario": "memory_leak", "servers": ["cache-redis-icn-01"],
    "at": "2026-01-05 00:20:00+00", "intensity": 0.8, "duration": "20 min"}]') AS rows;
SELECT scenario, phase, min(tick), max(tick), count(*)
  FROM sim_history_labelled WHERE server_id = 'cache-redis-icn-01' AND is_incident
 GROUP BY 1, 2 ORDER BY 3;
SELECT count(*) FILTER (WHERE is_incident) = count(run_id) AS labels_agree,
       count(*) FILTER (WHERE NOT is_incident AND phase IS NOT NULL) AS normal_with_phase
  FROM sim_history_labelled;
-- the view reads through an inlined function: a filter reaches the table's index
CREATE FUNCTION pg_temp.labelled_plan_uses_index() RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    line text;
BEGIN
    FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) SELECT tick FROM sim_history_labelled WHERE server_id = ''web-nginx-icn-01''' LOOP
        IF line LIKE '%server_metrics_history_server_time%' THEN
            RETURN true;
        END IF;
    END LOOP;
    RETURN false;
END $$;
SELECT pg_temp.labelled_plan_uses_index();
RESET client_min_messages;

-- Cold layer: the ring, sim_flush(), sim_history(). Worker paused, no
-- automatic flush (flush_interval = 1h), so every count here is exact.
SELECT buffer_capacity, dropped_samples, flush_errors, flushed_samples
FROM sim_status();

-- every sample of every tick so far is buffered, none written yet
SELECT count(*) AS rows_before FROM server_metrics_history;
SELECT pending_samples AS pending FROM sim_status() \gset
SELECT :pending > 20000 AS many_pending, sim_flush() = :pending AS flushed_all;
SELECT pending_samples, flushed_samples = (SELECT count(*) FROM server_metrics_history) AS counted
FROM sim_status();

-- one row per server and tick, no duplicates, tick numbering without gaps
SELECT count(*) = count(DISTINCT (server_id, tick)) AS no_duplicates,
       min(tick) AS first_tick, max(tick) = (SELECT tick FROM sim_status()) AS up_to_now
FROM server_metrics_history;
SELECT server_id, count(*) AS samples, max(tick) - min(tick) + 1 AS span
FROM server_metrics_history
WHERE server_id IN ('db-mysql-icn-primary', 'web-nginx-pus-01')
GROUP BY 1 ORDER BY 1;

-- the values written are those served: the latest row equals the live one
SELECT h.cpu_usage::float8 = c.cpu_usage AND h.memory_usage::float8 = c.memory_usage
       AND h.network_io = c.network_io AND h.status = c.status AND h.tick = c.tick
       AND h."timestamp" = c.sim_time AS same
FROM sim_current_metrics() c
JOIN server_metrics_history h ON h.server_id = c.server_id AND h.tick = c.tick
WHERE c.server_id = 'api-was-icn-01';

-- a flush rolled back keeps the samples buffered
SELECT max(tick) AS flushed_upto FROM server_metrics_history \gset
SELECT sim_tick(3);
BEGIN;
SELECT sim_flush();
ROLLBACK;
SELECT pending_samples FROM sim_status();
SELECT count(*) AS rows_after_rollback FROM server_metrics_history WHERE tick > :flushed_upto;

-- a flush in a subtransaction that rolls back keeps the samples too
BEGIN;
SAVEPOINT s;
SELECT sim_flush();
ROLLBACK TO s;
COMMIT;
SELECT pending_samples FROM sim_status();
DO $$ BEGIN PERFORM sim_flush(); RAISE EXCEPTION 'undo'; EXCEPTION WHEN raise_exception THEN NULL; END $$;
SELECT pending_samples FROM sim_status();

-- a flush cannot be prepared for two-phase commit
BEGIN;
SELECT sim_flush();
PREPARE TRANSACTION 'sim_flush_2pc';
SELECT pending_samples FROM sim_status();

-- sim_history merges the buffered samples with the table: no gap, no duplicate
SELECT source, count(*), min(tick), max(tick)
FROM sim_history('api-was-icn-01', '-infinity', 'infinity')
GROUP BY source ORDER BY source;
SELECT count(*) = count(DISTINCT tick) AS no_duplicates,
       count(*) = max(tick) - min(tick) + 1 AS no_gaps
FROM sim_history('api-was-icn-01', '-infinity', 'infinity');
SELECT bool_and(prev < tick) AS ordered
FROM (SELECT tick, lag(tick) OVER () AS prev
      FROM sim_history('api-was-icn-01', '-infinity', 'infinity')) s WHERE prev IS NOT NULL;

-- a time window in simulated time
SELECT count(*), min(tick), max(tick)
FROM sim_history('api-was-icn-01', '2026-01-05 10:00:00+00', '2026-01-05 10:10:00+00');

-- across a flush boundary: flush, then the same query gives the same rows
CREATE TEMP TABLE before_flush AS
  SELECT tick, cpu_usage, status FROM sim_history('api-was-icn-01', '-infinity', 'infinity');
SELECT sim_flush();
SELECT count(*) AS differences FROM (
  (SELECT tick, cpu_usage, status FROM sim_history('api-was-icn-01', '-infinity', 'infinity')
   EXCEPT SELECT * FROM before_flush)
  UNION ALL
  (SELECT * FROM before_flush
   EXCEPT SELECT tick, cpu_usage, status FROM sim_history('api-was-icn-01', '-infinity', 'infinity'))) d;

-- bad input
SELECT * FROM sim_history('api-was-icn-01', '2026-01-06', '2026-01-05');
SELECT * FROM sim_history('no-such-server', '-infinity', 'infinity');
SELECT count(*) FROM sim_history('api-was-icn-01', '2030-01-01', '2030-01-02');

-- a retired server keeps its history
DELETE FROM server_templates WHERE id = 'storage-s3gw-pus-01';
SELECT sim_tick();
SELECT count(*) > 0 AS still_readable FROM sim_history('storage-s3gw-pus-01', '-infinity', 'infinity');

/* sim_metrics--1.0--1.1.sql: the dead-letter table, a BRIN index on tick,
 * sim_status() with the ticker's schedule, dead letters and the writer. */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION sim_metrics UPDATE TO '1.1'" to load this file. \quit

CREATE TABLE server_metrics_rejected (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    server_id   text NOT NULL,
    "timestamp" timestamptz,
    tick        bigint,
    sample      jsonb NOT NULL,
    sqlstate    text NOT NULL,
    message     text NOT NULL,
    rejected_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
CREATE INDEX server_metrics_rejected_server ON server_metrics_rejected (server_id, "timestamp");

COMMENT ON TABLE server_metrics_rejected IS
  'Dead letters: samples server_metrics_history refused (a CHECK, a trigger, no partition), with the SQLSTATE and message; the rest of their batch was written.';
COMMENT ON COLUMN server_metrics_rejected.sample IS
  'The refused row''s values: cpu_usage, memory_usage, disk_usage, network_io, status, session_id, scenario_run_id.';

SELECT pg_catalog.pg_extension_config_dump('server_metrics_rejected', '');
SELECT pg_catalog.pg_extension_config_dump('server_metrics_rejected_id_seq', '');

-- the restore after a restart finds the newest tick through it
CREATE INDEX server_metrics_history_tick_brin
    ON server_metrics_history USING brin (tick);

DROP FUNCTION sim_status();
CREATE FUNCTION sim_status(
    OUT running boolean, OUT paused boolean, OUT session_id text,
    OUT servers integer, OUT tick bigint, OUT last_tick_at timestamptz,
    OUT tick_ms double precision, OUT pid integer, OUT last_error text,
    OUT last_error_at timestamptz, OUT worker_state text,
    OUT sim_time timestamptz, OUT tick_interval_ms integer,
    OUT max_servers integer, OUT skipped_servers integer, OUT errors bigint,
    OUT pending_samples bigint, OUT last_flush_at timestamptz,
    OUT flushed_samples bigint, OUT dropped_samples bigint,
    OUT flush_errors bigint, OUT buffer_capacity bigint,
    OUT late_ticks bigint, OUT tick_lag_ms double precision,
    OUT rejected_samples bigint, OUT writer_pid integer, OUT writer_state text)
RETURNS record
AS 'MODULE_PATHNAME', 'sim_status'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp;

COMMENT ON FUNCTION sim_status() IS
  'State of the simulator: the ticker (pid, tick, tick_ms, late_ticks, tick_lag_ms), the writer (writer_pid, writer_state), buffered, flushed, dropped and rejected history samples, the last error.';

REVOKE ALL ON server_metrics_rejected FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sim_status() TO PUBLIC;

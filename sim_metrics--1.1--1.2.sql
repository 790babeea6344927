/* sim_metrics--1.1--1.2.sql: sim_status() with the Redis mirror's state,
 * sim_server_metrics(), the tiered point read. */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION sim_metrics UPDATE TO '1.2'" to load this file. \quit

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
    OUT rejected_samples bigint, OUT writer_pid integer, OUT writer_state text,
    OUT redis_state text, OUT redis_last_error text, OUT redis_errors bigint,
    OUT redis_writes bigint, OUT redis_skipped bigint)
RETURNS record
AS 'MODULE_PATHNAME', 'sim_status'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp;

COMMENT ON FUNCTION sim_status() IS
  'State of the simulator: the ticker (pid, tick, tick_ms, late_ticks, tick_lag_ms), the writer (writer_pid, writer_state), buffered, flushed, dropped and rejected history samples, the Redis mirror (redis_state, redis_last_error, redis_errors, redis_writes, redis_skipped), the last error.';


CREATE FUNCTION sim_server_metrics(
    server_id text,
    OUT server_id text, OUT name text, OUT hostname text, OUT role text,
    OUT location text, OUT environment text,
    OUT cpu_usage double precision, OUT memory_usage double precision,
    OUT disk_usage double precision, OUT network_io bigint,
    OUT network_usage double precision, OUT response_time_ms double precision,
    OUT status text, OUT scenario text, OUT tick bigint,
    OUT sim_time timestamptz, OUT updated_at timestamptz, OUT source text)
RETURNS record
AS 'MODULE_PATHNAME', 'sim_server_metrics'
LANGUAGE C STRICT STABLE PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp;

COMMENT ON FUNCTION sim_server_metrics(text) IS
  'One server''s latest row from the nearest layer: shared memory, else Redis (at most redis_timeout), else its latest history row; source says which.';

GRANT EXECUTE ON FUNCTION sim_status(), sim_server_metrics(text) TO PUBLIC;

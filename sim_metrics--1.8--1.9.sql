/* sim_metrics--1.8--1.9.sql */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION sim_metrics UPDATE TO '1.9'" to load this file. \quit

--------------------------------------------------------------------------
-- 1.9: forecasts
--------------------------------------------------------------------------

CREATE FUNCTION sim_forecast(server_id text, metric text, horizon interval,
    training interval DEFAULT '14 days', as_of timestamptz DEFAULT NULL,
    OUT sim_time timestamptz, OUT forecast double precision,
    OUT lo_80 double precision, OUT hi_80 double precision,
    OUT lo_95 double precision, OUT hi_95 double precision)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'sim_forecast'
LANGUAGE C VOLATILE PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION sim_forecast(text, text, interval, interval, timestamptz) IS
  'Forecast a server''s cpu_usage, memory_usage, disk_usage or network_usage every tick from the current simulated time to horizon ahead, with 80 % and 95 % prediction intervals, fitted on the training span of its history (sim_history: the table and the ring): a daily profile (median of 5-minute slots over days), a trend (disk growth), and where the series is now; labelled incidents and offline samples do not shape the fit. Needs at least 2 usable days. as_of: the forecast that earlier simulated time would have made from the samples before it (a backtest).';

CREATE FUNCTION sim_forecast_series(ts timestamptz[], value double precision[], horizon interval,
    OUT ts timestamptz, OUT forecast double precision,
    OUT lo_80 double precision, OUT hi_80 double precision,
    OUT lo_95 double precision, OUT hi_95 double precision)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'sim_forecast_series'
LANGUAGE C IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION sim_forecast_series(timestamptz[], double precision[], interval) IS
  'The forecast of sim_forecast() for any series in time order (its grid: the median gap between its times), trained on all of it, from its last time to horizon ahead. NULL values are gaps. Needs at least 2 days of rows.';

-- Default privileges (such as Supabase's on extensions) may have granted
-- anything on what this script made: every grant but the owner's goes, then
-- the grants below are made.
DO $grants19$
DECLARE
    g record;
BEGIN
    FOR g IN
        SELECT pg_catalog.format('FUNCTION %s', p.oid::pg_catalog.regprocedure) AS obj, a.grantee
          FROM pg_catalog.pg_proc p CROSS JOIN LATERAL pg_catalog.aclexplode(p.proacl) a
         WHERE p.oid OPERATOR(pg_catalog.=) ANY (ARRAY[
                 'sim_forecast(text, text, interval, interval, timestamptz)'::pg_catalog.regprocedure,
                 'sim_forecast_series(timestamptz[], double precision[], interval)'::pg_catalog.regprocedure]::pg_catalog.oid[])
           AND a.grantee OPERATOR(pg_catalog.<>) p.proowner
    LOOP
        EXECUTE pg_catalog.format('REVOKE ALL ON %s FROM %s', g.obj,
            CASE WHEN g.grantee OPERATOR(pg_catalog.=) 0::pg_catalog.oid THEN 'PUBLIC' ELSE g.grantee::pg_catalog.regrole::text END);
    END LOOP;
END
$grants19$;
GRANT EXECUTE ON FUNCTION sim_forecast(text, text, interval, interval, timestamptz),
    sim_forecast_series(timestamptz[], double precision[], interval) TO PUBLIC;

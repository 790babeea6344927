/* sim_metrics--1.6.sql */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION sim_metrics" to load this file. \quit

-- The schema must not hold operators or functions that someone other than a
-- superuser made, nor belong to such a role: the CHECK constraints below bind their operators and
-- functions when they are created, and the privileged writer evaluates
-- them on every insert (as the tables' owner).
DO $guard$
DECLARE
    nsp pg_catalog.oid := (SELECT n.oid FROM pg_catalog.pg_namespace n
                            WHERE n.nspname OPERATOR(pg_catalog.=) pg_catalog.current_schema());
    culprit text;
BEGIN
    SELECT pg_catalog.format('%s %s (owner %s)', kind, what, who) INTO culprit FROM (
        SELECT 'operator' AS kind, o.oid::pg_catalog.regoperator::text AS what, r.rolname AS who
          FROM pg_catalog.pg_operator o JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) o.oprowner
         WHERE o.oprnamespace OPERATOR(pg_catalog.=) nsp AND NOT r.rolsuper
        UNION ALL
        SELECT 'function', p.oid::pg_catalog.regprocedure::text, r.rolname
          FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) p.proowner
         WHERE p.pronamespace OPERATOR(pg_catalog.=) nsp AND NOT r.rolsuper) x
     LIMIT 1;
    -- nor belong to one: its owner could rename it and put another in its place
    IF culprit IS NULL THEN
        SELECT pg_catalog.format('the schema itself (owner %s)', r.rolname) INTO culprit
          FROM pg_catalog.pg_namespace n
          JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=)
               CASE WHEN n.nspowner OPERATOR(pg_catalog.=) 'pg_database_owner'::pg_catalog.regrole::pg_catalog.oid
                    THEN (SELECT d.datdba FROM pg_catalog.pg_database d
                           WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database())
                    ELSE n.nspowner END
         WHERE n.oid OPERATOR(pg_catalog.=) nsp AND NOT r.rolsuper;
    END IF;
    IF culprit IS NOT NULL THEN
        RAISE EXCEPTION 'sim_metrics cannot be installed into schema "%": it holds % made by a role that is not a superuser',
            pg_catalog.current_schema(), culprit
            USING ERRCODE = '42501',
                  HINT = 'Install it into a schema only superusers create in: CREATE EXTENSION sim_metrics WITH SCHEMA extensions (or a new schema).';
    END IF;
END
$guard$;

--------------------------------------------------------------------------
-- Tables (the seed's names and columns are a contract)
--------------------------------------------------------------------------

CREATE TABLE server_templates (
    id                  text PRIMARY KEY
                        CHECK (id ~ '^[A-Za-z0-9][A-Za-z0-9._:-]{0,62}$'),
    name                text NOT NULL CHECK (octet_length(name) BETWEEN 1 AND 63),
    hostname            text NOT NULL CHECK (octet_length(hostname) BETWEEN 1 AND 127),
    role                text NOT NULL
                        CHECK (role IN ('web', 'app', 'database', 'cache', 'storage', 'load-balancer')),
    location            text NOT NULL CHECK (octet_length(location) BETWEEN 1 AND 47),
    base_cpu_limit      integer NOT NULL DEFAULT 100 CHECK (base_cpu_limit BETWEEN 1 AND 100),
    base_memory_limit   integer NOT NULL DEFAULT 32 CHECK (base_memory_limit > 0),
    base_disk_size      integer NOT NULL DEFAULT 500 CHECK (base_disk_size > 0),
    services            jsonb NOT NULL DEFAULT '[]'
                        CHECK (jsonb_typeof(services) = 'array'),
    environment         text NOT NULL DEFAULT 'production'
                        CHECK (environment IN ('production', 'staging', 'development')),
    created_at          timestamptz NOT NULL DEFAULT now(),
    -- what the model needs beyond the seed's columns
    cpu_cores           integer NOT NULL DEFAULT 8 CHECK (cpu_cores > 0),
    ip                  inet,
    os                  text,
    baseline_cpu        real CHECK (baseline_cpu BETWEEN 0 AND 100),
    baseline_memory     real CHECK (baseline_memory BETWEEN 0 AND 100),
    baseline_disk       real CHECK (baseline_disk BETWEEN 0 AND 100),
    baseline_network    real CHECK (baseline_network BETWEEN 0 AND 100),
    network_capacity_bps bigint NOT NULL DEFAULT 1250000000
                        CHECK (network_capacity_bps BETWEEN 1 AND 1000000000000000),
    depends_on          text[] NOT NULL DEFAULT '{}'
                        CHECK (NOT (id = ANY (depends_on)) AND array_position(depends_on, NULL) IS NULL),
    enabled             boolean NOT NULL DEFAULT true,
    is_default          boolean NOT NULL DEFAULT false,
    disk_growth         real CHECK (disk_growth BETWEEN 0 AND 100)
);

COMMENT ON TABLE server_templates IS
  'The simulated fleet: one row per server. Edits are picked up by the worker within a tick; NULL baselines take the role default.';
COMMENT ON COLUMN server_templates.network_capacity_bps IS 'Network capacity in bytes per second; network % = network_io / capacity.';
COMMENT ON COLUMN server_templates.depends_on IS 'Ids of the servers this one calls (cascade edges for incidents).';
COMMENT ON COLUMN server_templates.disk_growth IS
  'Disk growth in points a day before the daily log rotation gives most of it back; NULL: the role''s default. Set it high and the disk fills by growth alone.';
COMMENT ON COLUMN server_templates.is_default IS 'Row installed by CREATE EXTENSION; pg_dump leaves these rows (and changes to them) out, CREATE EXTENSION restores them as installed.';

CREATE TABLE server_metrics_history (
    id              bigint GENERATED ALWAYS AS IDENTITY,
    server_id       text NOT NULL,
    cpu_usage       numeric(5,2) CHECK (cpu_usage BETWEEN 0 AND 100),
    memory_usage    numeric(5,2) CHECK (memory_usage BETWEEN 0 AND 100),
    disk_usage      numeric(5,2) CHECK (disk_usage BETWEEN 0 AND 100),
    network_io      bigint CHECK (network_io >= 0),
    status          text NOT NULL CHECK (status IN ('online', 'warning', 'critical', 'offline')),
    "timestamp"     timestamptz NOT NULL DEFAULT now(),
    session_id      text,
    tick            bigint,
    scenario_run_id bigint
);
CREATE INDEX server_metrics_history_server_time
    ON server_metrics_history (server_id, "timestamp" DESC);
-- small and cheap to maintain: lets retention find old rows without a full scan
CREATE INDEX server_metrics_history_time_brin
    ON server_metrics_history USING brin ("timestamp");
-- the restore after a restart finds the newest tick through it
CREATE INDEX server_metrics_history_tick_brin
    ON server_metrics_history USING brin (tick);

COMMENT ON TABLE server_metrics_history IS
  'Every sample of every server (cold layer). No foreign key to server_templates on purpose: retired servers keep their history.';
COMMENT ON COLUMN server_metrics_history.id IS
  'Row number. Not a primary key on purpose: inserts are the hot path, and a time-partitioned table needs the partition key in every unique index.';
COMMENT ON COLUMN server_metrics_history.scenario_run_id IS 'Ground truth: the scenario run acting on the server, NULL when none.';

CREATE TABLE scenario_execution_log (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id           bigint NOT NULL,
    scenario_name    text NOT NULL,
    phase            text NOT NULL,
    affected_servers jsonb NOT NULL DEFAULT '[]'
                     CHECK (jsonb_typeof(affected_servers) = 'array'),
    intensity        numeric(3,2) CHECK (intensity BETWEEN 0 AND 1),
    duration_seconds integer CHECK (duration_seconds >= 0),
    started_at       timestamptz NOT NULL,
    ended_at         timestamptz CHECK (ended_at >= started_at)
);
CREATE INDEX scenario_execution_log_run ON scenario_execution_log (run_id);

COMMENT ON TABLE scenario_execution_log IS 'One row per scenario phase, grouped by run_id.';

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

--------------------------------------------------------------------------
-- Functions
--------------------------------------------------------------------------

CREATE FUNCTION sim_current_metrics(
    OUT server_id text, OUT name text, OUT hostname text, OUT role text,
    OUT location text, OUT environment text,
    OUT cpu_usage double precision, OUT memory_usage double precision,
    OUT disk_usage double precision, OUT network_io bigint,
    OUT network_usage double precision, OUT response_time_ms double precision,
    OUT status text, OUT scenario text, OUT tick bigint,
    OUT sim_time timestamptz, OUT updated_at timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'sim_current_metrics'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp;

COMMENT ON FUNCTION sim_current_metrics() IS
  'The live fleet from shared memory: one row per server, as of the last tick.';

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
    OUT redis_writes bigint, OUT redis_skipped bigint, OUT active_scenarios integer,
    OUT notifications bigint, OUT realtime_messages bigint, OUT realtime_errors bigint)
RETURNS record
AS 'MODULE_PATHNAME', 'sim_status'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp;

COMMENT ON FUNCTION sim_status() IS
  'State of the simulator: the ticker (pid, tick, tick_ms, late_ticks, tick_lag_ms), the writer (writer_pid, writer_state), buffered, flushed, dropped and rejected history samples, the Redis mirror (redis_state, redis_last_error, redis_errors, redis_writes, redis_skipped), scenario runs pending or active (active_scenarios), the live push (notifications: NOTIFY sim_metrics_status sent; realtime_messages, realtime_errors: realtime.send calls), the last error.';

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

CREATE FUNCTION sim_flush() RETURNS bigint
AS 'MODULE_PATHNAME', 'sim_flush'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp;

COMMENT ON FUNCTION sim_flush() IS
  'Write buffered samples to server_metrics_history now; returns rows written. Inside a transaction block they leave the buffer when it commits.';

CREATE FUNCTION sim_history(
    server_id text, since timestamptz, until timestamptz DEFAULT now(),
    OUT server_id text, OUT "timestamp" timestamptz,
    OUT cpu_usage double precision, OUT memory_usage double precision,
    OUT disk_usage double precision, OUT network_io bigint, OUT status text,
    OUT session_id text, OUT tick bigint, OUT scenario_run_id bigint,
    OUT source text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'sim_history'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp;

COMMENT ON FUNCTION sim_history(text, timestamptz, timestamptz) IS
  'A server''s samples between since and until (simulated time), in order: buffered ones (source memory) merged with the table (source table), no gaps, no duplicates.';

CREATE FUNCTION sim_start() RETURNS boolean
AS 'MODULE_PATHNAME', 'sim_start'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp;

COMMENT ON FUNCTION sim_start() IS
  'Resume the automatic loop; returns whether a worker is running to carry it out.';

CREATE FUNCTION sim_stop() RETURNS void
AS 'MODULE_PATHNAME', 'sim_stop'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp;

COMMENT ON FUNCTION sim_stop() IS 'Pause the automatic loop (sim_tick() still works).';

CREATE FUNCTION sim_tick(n integer DEFAULT 1) RETURNS bigint
AS 'MODULE_PATHNAME', 'sim_tick'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp;

COMMENT ON FUNCTION sim_tick(integer) IS
  'Advance the simulation n ticks now; returns the tick reached.';

CREATE FUNCTION sim_reload() RETURNS integer
AS 'MODULE_PATHNAME', 'sim_reload'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp;

COMMENT ON FUNCTION sim_reload() IS
  'Re-read server_templates now; returns the number of servers simulated.';

CREATE FUNCTION sim_templates_changed() RETURNS trigger
AS 'MODULE_PATHNAME', 'sim_templates_changed'
LANGUAGE C VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp;

COMMENT ON FUNCTION sim_templates_changed() IS
  'Trigger: tells the worker at commit that server_templates changed.';

CREATE TRIGGER server_templates_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON server_templates
    FOR EACH STATEMENT EXECUTE FUNCTION sim_templates_changed();

-- One fleet per cluster: the worker reads only sim_metrics.database_name.
DO $$
DECLARE
    worker_db text := pg_catalog.current_setting('sim_metrics.database_name', true);
BEGIN
    IF worker_db IS NOT NULL AND worker_db <> pg_catalog.current_database() THEN
        RAISE EXCEPTION 'sim_metrics can only be created in database "%"', worker_db
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'The sim_metrics worker and its shared fleet belong to the database named by sim_metrics.database_name.',
                  HINT = pg_catalog.format('Create the extension in "%s", or set sim_metrics.database_name = %L and restart the server.',
                                           worker_db, pg_catalog.current_database());
    END IF;
END
$$;

--------------------------------------------------------------------------
-- The default fleet: the 15 servers of the dashboard (Seoul ICN + Busan DR)
--------------------------------------------------------------------------

INSERT INTO server_templates
    (id, name, hostname, role, location, environment, cpu_cores,
     base_memory_limit, base_disk_size, ip, os, services,
     baseline_cpu, baseline_memory, baseline_disk, baseline_network,
     network_capacity_bps, depends_on, is_default)
VALUES
 ('web-nginx-icn-01', 'Nginx Web ICN-01', 'web-nginx-icn-01.openmanager.kr', 'web', 'Seoul-ICN-AZ1', 'production', 8, 16, 500, '10.1.1.10', 'Ubuntu 22.04',
  '[{"name":"nginx","version":"1.24.0","port":80}]', 24, 45, 25, 14, 1250000000,
  '{api-was-icn-01,api-was-icn-02}', true),
 ('web-nginx-icn-02', 'Nginx Web ICN-02', 'web-nginx-icn-02.openmanager.kr', 'web', 'Seoul-ICN-AZ2', 'production', 8, 16, 500, '10.1.2.10', 'Ubuntu 22.04',
  '[{"name":"nginx","version":"1.24.0","port":80}]', 28, 50, 30, 16, 1250000000,
  '{api-was-icn-01,api-was-icn-02}', true),
 ('web-nginx-pus-01', 'Nginx Web PUS-01', 'web-nginx-pus-01.openmanager.kr', 'web', 'Busan-PUS-DR', 'production', 4, 8, 250, '10.2.1.10', 'Ubuntu 22.04',
  '[{"name":"nginx","version":"1.24.0","port":80}]', 20, 40, 28, 10, 1250000000,
  '{api-was-pus-01}', true),
 ('api-was-icn-01', 'Spring Boot API ICN-01', 'api-was-icn-01.openmanager.kr', 'app', 'Seoul-ICN-AZ1', 'production', 16, 32, 500, '10.1.1.20', 'Rocky Linux 9.2',
  '[{"name":"spring-boot","version":"3.2 (JDK 21)","port":8080}]', 30, 60, 40, 10, 1250000000,
  '{db-mysql-icn-primary,db-mysql-icn-replica,cache-redis-icn-01,cache-redis-icn-02}', true),
 ('api-was-icn-02', 'Spring Boot API ICN-02', 'api-was-icn-02.openmanager.kr', 'app', 'Seoul-ICN-AZ2', 'production', 16, 32, 500, '10.1.2.20', 'Rocky Linux 9.2',
  '[{"name":"spring-boot","version":"3.2","port":8080}]', 34, 70, 45, 12, 1250000000,
  '{db-mysql-icn-primary,db-mysql-icn-replica,cache-redis-icn-01,cache-redis-icn-02}', true),
 ('api-was-pus-01', 'Spring Boot API PUS-01', 'api-was-pus-01.openmanager.kr', 'app', 'Busan-PUS-DR', 'production', 8, 16, 250, '10.2.1.20', 'Rocky Linux 9.2',
  '[{"name":"spring-boot","version":"3.2","port":8080}]', 24, 55, 38, 7, 1250000000,
  '{db-mysql-pus-dr}', true),
 ('db-mysql-icn-primary', 'MySQL Primary ICN', 'db-mysql-icn-primary.openmanager.kr', 'database', 'Seoul-ICN-AZ1', 'production', 32, 128, 2000, '10.1.1.30', 'Oracle Linux 8.8',
  '[{"name":"mysql","version":"8.0.35","port":3306,"mode":"primary"}]', 34, 70, 50, 9, 1250000000,
  '{storage-nfs-icn-01}', true),
 ('db-mysql-icn-replica', 'MySQL Replica ICN', 'db-mysql-icn-replica.openmanager.kr', 'database', 'Seoul-ICN-AZ2', 'production', 32, 128, 2000, '10.1.2.30', 'Oracle Linux 8.8',
  '[{"name":"mysql","version":"8.0.35","port":3306,"mode":"replica"}]', 28, 65, 48, 8, 1250000000,
  '{db-mysql-icn-primary}', true),
 ('db-mysql-pus-dr', 'MySQL DR PUS', 'db-mysql-pus-dr.openmanager.kr', 'database', 'Busan-PUS-DR', 'production', 16, 64, 1000, '10.2.1.30', 'Oracle Linux 8.8',
  '[{"name":"mysql","version":"8.0.35","port":3306,"mode":"dr"}]', 18, 50, 45, 6, 1250000000,
  '{db-mysql-icn-primary}', true),
 ('cache-redis-icn-01', 'Redis Cluster Master ICN', 'cache-redis-icn-01.openmanager.kr', 'cache', 'Seoul-ICN-AZ1', 'production', 8, 64, 200, '10.1.1.40', 'Debian 12',
  '[{"name":"redis","version":"7.2","port":6379,"mode":"master"}]', 20, 80, 20, 12, 1250000000,
  '{}', true),
 ('cache-redis-icn-02', 'Redis Cluster Replica ICN', 'cache-redis-icn-02.openmanager.kr', 'cache', 'Seoul-ICN-AZ2', 'production', 8, 64, 200, '10.1.2.40', 'Debian 12',
  '[{"name":"redis","version":"7.2","port":6379,"mode":"replica"}]', 22, 85, 25, 14, 1250000000,
  '{cache-redis-icn-01}', true),
 ('storage-nfs-icn-01', 'NetApp NFS ICN', 'storage-nfs-icn-01.openmanager.kr', 'storage', 'Seoul-ICN-AZ1', 'production', 8, 32, 10000, '10.1.1.50', 'Rocky Linux 9.2',
  '[{"name":"nfs","version":"NetApp ONTAP","port":2049}]', 14, 40, 62, 20, 1250000000,
  '{}', true),
 ('storage-s3gw-pus-01', 'MinIO S3 Gateway PUS', 'storage-s3gw-pus-01.openmanager.kr', 'storage', 'Busan-PUS-DR', 'production', 4, 16, 5000, '10.2.1.50', 'Rocky Linux 9.2',
  '[{"name":"minio","version":"S3 gateway","port":9000}]', 12, 35, 55, 16, 1250000000,
  '{storage-nfs-icn-01}', true),
 ('lb-haproxy-icn-01', 'HAProxy LB ICN', 'lb-haproxy-icn-01.openmanager.kr', 'load-balancer', 'Seoul-ICN-AZ1', 'production', 4, 8, 100, '10.1.1.5', 'Ubuntu 22.04',
  '[{"name":"haproxy","version":"2.8.3","port":443}]', 16, 50, 15, 18, 1250000000,
  '{web-nginx-icn-01,web-nginx-icn-02}', true),
 ('lb-haproxy-pus-01', 'HAProxy LB PUS', 'lb-haproxy-pus-01.openmanager.kr', 'load-balancer', 'Busan-PUS-DR', 'production', 4, 8, 100, '10.2.1.5', 'Ubuntu 22.04',
  '[{"name":"haproxy","version":"2.8.3","port":443}]', 14, 45, 12, 15, 1250000000,
  '{web-nginx-pus-01}', true);

-- pg_dump keeps the rows users add; the default rows come back with CREATE EXTENSION.
SELECT pg_catalog.pg_extension_config_dump('server_templates', 'WHERE NOT is_default');
SELECT pg_catalog.pg_extension_config_dump('server_metrics_history', '');
SELECT pg_catalog.pg_extension_config_dump('server_metrics_history_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('scenario_execution_log', '');
SELECT pg_catalog.pg_extension_config_dump('scenario_execution_log_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('server_metrics_rejected', '');
SELECT pg_catalog.pg_extension_config_dump('server_metrics_rejected_id_seq', '');

--------------------------------------------------------------------------
-- Privileges: reads may be public, control and writes are not
--------------------------------------------------------------------------

REVOKE ALL ON server_templates, server_metrics_history, scenario_execution_log FROM PUBLIC;
GRANT SELECT ON server_templates, server_metrics_history, scenario_execution_log TO PUBLIC;
REVOKE ALL ON server_metrics_rejected FROM PUBLIC;

REVOKE ALL ON FUNCTION sim_start(), sim_stop(), sim_tick(integer), sim_reload(),
    sim_flush(), sim_templates_changed() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sim_current_metrics(), sim_status(),
    sim_history(text, timestamptz, timestamptz), sim_server_metrics(text) TO PUBLIC;

--------------------------------------------------------------------------
-- 1.4: incident scenarios
--------------------------------------------------------------------------

CREATE TABLE sim_scenarios (
    name                text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_]{0,30}$'),
    description         text NOT NULL DEFAULT '',
    roles               text[] NOT NULL DEFAULT '{}'
                        CHECK (roles <@ ARRAY['web', 'app', 'database', 'cache', 'storage', 'load-balancer']
                               AND array_position(roles, NULL) IS NULL),
    phase_shares        real[] NOT NULL DEFAULT '{0.15,0.25,0.35,0.25}'
                        CHECK (array_ndims(phase_shares) = 1 AND array_lower(phase_shares, 1) = 1
                               AND cardinality(phase_shares) = 4
                               AND array_position(phase_shares, NULL) IS NULL
                               AND 0.001 <= ALL (phase_shares) AND 1 >= ALL (phase_shares)
                               AND abs(phase_shares[1] + phase_shares[2] + phase_shares[3]
                                       + phase_shares[4] - 1) <= 0.001),
    phase_curves        text[] NOT NULL DEFAULT '{linear,exponential,linear,linear}'
                        CHECK (array_ndims(phase_curves) = 1 AND array_lower(phase_curves, 1) = 1
                               AND cardinality(phase_curves) = 4
                               AND array_position(phase_curves, NULL) IS NULL
                               AND phase_curves <@ ARRAY['linear', 'exponential', 'step', 'sine']),
    cpu_effect          real NOT NULL DEFAULT 0 CHECK (cpu_effect BETWEEN -100 AND 100),
    memory_effect       real NOT NULL DEFAULT 0 CHECK (memory_effect BETWEEN -100 AND 100),
    disk_effect         real NOT NULL DEFAULT 0 CHECK (disk_effect BETWEEN -100 AND 100),
    network_effect      real NOT NULL DEFAULT 0 CHECK (network_effect BETWEEN -100 AND 100),
    response_factor     real NOT NULL DEFAULT 1 CHECK (response_factor BETWEEN 1 AND 1000),
    takes_offline       boolean NOT NULL DEFAULT false,
    auto_weight         real NOT NULL DEFAULT 1 CHECK (auto_weight BETWEEN 0 AND 1000),
    cascade_scenario    text REFERENCES sim_scenarios (name) ON UPDATE CASCADE ON DELETE SET NULL,
    cascade_probability real NOT NULL DEFAULT 0 CHECK (cascade_probability BETWEEN 0 AND 1),
    cascade_intensity   real NOT NULL DEFAULT 0.7 CHECK (cascade_intensity > 0 AND cascade_intensity <= 1),
    cascade_delay_min   interval NOT NULL DEFAULT '30 seconds',
    cascade_delay_max   interval NOT NULL DEFAULT '2 minutes',
    is_default          boolean NOT NULL DEFAULT false,
    CONSTRAINT sim_scenarios_has_effect CHECK (cpu_effect <> 0 OR memory_effect <> 0 OR disk_effect <> 0
        OR network_effect <> 0 OR response_factor > 1 OR takes_offline),
    CONSTRAINT sim_scenarios_cascade_delay CHECK (cascade_delay_min >= interval '0'
        AND cascade_delay_max >= cascade_delay_min AND cascade_delay_max <= interval '1 day')
);

COMMENT ON TABLE sim_scenarios IS
  'The incident catalog: what each scenario does to a server over its phases (warning, onset, peak, recovery) and what the servers calling it feel (cascade). Edits apply to runs started afterwards.';
COMMENT ON COLUMN sim_scenarios.roles IS 'Roles the scenario suits; empty: any. Automatic incidents and NULL targets pick among these.';
COMMENT ON COLUMN sim_scenarios.phase_shares IS 'Share of the duration of warning, onset, peak and recovery; they sum to 1.';
COMMENT ON COLUMN sim_scenarios.phase_curves IS
  'Curve of each phase: linear, exponential (slow then fast), step (at the phase''s end level at once) or sine (a wobble over linear). The envelope rises 0 -> 0.2 (warning), 0.2 -> 1 (onset), holds 1 (peak), falls to 0 (recovery).';
COMMENT ON COLUMN sim_scenarios.cpu_effect IS 'Points added to cpu at full envelope and intensity 1 (likewise memory_effect, disk_effect, network_effect).';
COMMENT ON COLUMN sim_scenarios.response_factor IS 'Response time multiplied by this at full envelope and intensity 1.';
COMMENT ON COLUMN sim_scenarios.takes_offline IS 'The server is offline through onset and peak: status offline, every metric 0.';
COMMENT ON COLUMN sim_scenarios.auto_weight IS 'Weight among automatic incidents (sim_metrics.incident_rate); 0: never chosen automatically.';
COMMENT ON COLUMN sim_scenarios.cascade_scenario IS
  'What the servers that call an affected server (their depends_on names it) feel, each as a run of its own linked by parent_run_id; NULL: nothing.';
COMMENT ON COLUMN sim_scenarios.cascade_probability IS 'Chance that a calling server feels the cascade, drawn from the seed.';
COMMENT ON COLUMN sim_scenarios.cascade_intensity IS 'The cascade''s intensity as a share of the run''s.';

CREATE TRIGGER sim_scenarios_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON sim_scenarios
    FOR EACH STATEMENT EXECUTE FUNCTION sim_templates_changed();

INSERT INTO sim_scenarios
    (name, description, roles, phase_shares, phase_curves, cpu_effect, memory_effect,
     disk_effect, network_effect, response_factor, takes_offline, auto_weight,
     cascade_scenario, cascade_probability, cascade_intensity, cascade_delay_min,
     cascade_delay_max, is_default)
VALUES
 ('upstream_slowdown', 'A server waits on a slow server it calls: threads pile up, requests slow down.',
  '{}', '{0.10,0.30,0.40,0.20}', '{linear,linear,sine,linear}', 22, 6, 0, 4, 4, false, 0,
  'upstream_slowdown', 0.8, 0.8, '20 seconds', '1 minute', true),
 ('cpu_spike', 'A runaway process or a traffic surge pins the CPU.',
  '{}', '{0.10,0.15,0.50,0.25}', '{linear,exponential,sine,linear}', 65, 5, 0, 10, 2.5, false, 1,
  'upstream_slowdown', 0.3, 0.5, '30 seconds', '2 minutes', true),
 ('memory_leak', 'Memory climbs slowly, then fast, until the process is restarted.',
  '{}', '{0.20,0.35,0.30,0.15}', '{linear,exponential,linear,linear}', 8, 60, 0, 0, 1.8, false, 1,
  NULL, 0, 0.7, '30 seconds', '2 minutes', true),
 ('disk_full', 'Logs or data fill the disk; writes slow down, then fail.',
  '{web,app,database,storage}', '{0.25,0.35,0.25,0.15}', '{linear,linear,linear,step}', 5, 0, 55, 0, 2, false, 1,
  'upstream_slowdown', 0.4, 0.6, '30 seconds', '2 minutes', true),
 ('network_saturation', 'The NIC saturates: packet loss and retransmits.',
  '{web,app,storage,load-balancer}', '{0.10,0.20,0.50,0.20}', '{exponential,exponential,sine,linear}', 15, 0, 0, 75, 4, false, 1,
  'upstream_slowdown', 0.6, 0.7, '20 seconds', '1 minute', true),
 ('slow_database', 'Lock contention or a bad plan: queries slow down and CPU climbs.',
  '{database}', '{0.15,0.25,0.40,0.20}', '{linear,exponential,sine,linear}', 45, 5, 8, 0, 8, false, 1,
  'upstream_slowdown', 0.9, 0.8, '20 seconds', '1 minute 30 seconds', true),
 ('cache_failure', 'The cache is lost: memory drops, callers fall through to the database.',
  '{cache}', '{0.05,0.10,0.60,0.25}', '{step,step,linear,linear}', 30, -50, 0, -5, 3, false, 1,
  'upstream_slowdown', 0.9, 0.8, '10 seconds', '40 seconds', true),
 ('server_down', 'The server stops answering: offline through onset and peak, then it boots.',
  '{}', '{0.10,0.05,0.65,0.20}', '{linear,step,linear,exponential}', 25, 0, 0, 0, 3, true, 0.5,
  'upstream_slowdown', 0.7, 0.6, '10 seconds', '1 minute', true);

SELECT pg_catalog.pg_extension_config_dump('sim_scenarios', 'WHERE NOT is_default');

ALTER TABLE scenario_execution_log
    ADD COLUMN parent_run_id bigint,
    ADD COLUMN parameters jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(parameters) = 'object'),
    ADD CONSTRAINT scenario_execution_log_phase
        CHECK (phase IN ('warning', 'onset', 'peak', 'recovery', 'interrupted'));
CREATE INDEX scenario_execution_log_open ON scenario_execution_log (run_id) WHERE ended_at IS NULL;
COMMENT ON COLUMN scenario_execution_log.phase IS
  'warning, onset, peak or recovery, as it began; interrupted: the run''s time passed while the simulator was down.';
COMMENT ON COLUMN scenario_execution_log.parent_run_id IS 'The run this cascade came from; NULL for a run started by sim_scenario_start() or automatically.';
COMMENT ON COLUMN scenario_execution_log.parameters IS
  'What the run was started with: phase ticks, the catalog entry as it was, automatic, stopped. A run still open goes on from these after a restart.';
COMMENT ON COLUMN scenario_execution_log.started_at IS 'Simulated time of the phase''s first tick.';
COMMENT ON COLUMN scenario_execution_log.ended_at IS 'Simulated time of the first tick after the phase (the phase is [started_at, ended_at)); NULL while it lasts.';

CREATE VIEW sim_incident_labels AS
SELECT s.server_id, l.run_id, l.parent_run_id, l.scenario_name, l.phase,
       l.started_at, l.ended_at, l.intensity
  FROM scenario_execution_log l
 CROSS JOIN LATERAL jsonb_array_elements_text(l.affected_servers) AS s(server_id)
 WHERE l.phase <> 'interrupted';
COMMENT ON VIEW sim_incident_labels IS
  'Ground truth for anomaly detection: one row per server, run and phase, over [started_at, ended_at) in simulated time (ended_at NULL: still going).';

CREATE FUNCTION sim_scenario_start(scenario text, servers text[] DEFAULT NULL,
    intensity real DEFAULT 0.7, duration interval DEFAULT '10 min')
RETURNS bigint
AS 'MODULE_PATHNAME', 'sim_scenario_start'
LANGUAGE C VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION sim_scenario_start(text, text[], real, interval) IS
  'Start a scenario at the next tick on servers given by id or by role:, location: or env: selectors (NULL: one the seed picks); intensity in (0, 1], duration in simulated time. Returns the run id.';

CREATE FUNCTION sim_scenario_stop(run_id bigint)
RETURNS void
AS 'MODULE_PATHNAME', 'sim_scenario_stop'
LANGUAGE C VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION sim_scenario_stop(bigint) IS
  'End a run, and the cascades it caused, through their recovery phase, from the next tick.';

CREATE FUNCTION sim_scenario_runs(
    OUT run_id bigint, OUT parent_run_id bigint, OUT scenario text, OUT state text,
    OUT phase text, OUT progress double precision, OUT intensity real,
    OUT servers text[], OUT automatic boolean,
    OUT started_at timestamptz, OUT ends_at timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'sim_scenario_runs'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION sim_scenario_runs() IS
  'Active and recent scenario runs (the last 64 at most): state, phase and progress at the current tick, servers acted on, simulated start and end.';

CREATE FUNCTION sim_scenarios() RETURNS SETOF sim_scenarios
AS 'SELECT * FROM @extschema@.sim_scenarios ORDER BY name'
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION sim_scenarios() IS 'The scenario catalog (the sim_scenarios table), by name.';

REVOKE ALL ON sim_scenarios FROM PUBLIC;
GRANT SELECT ON sim_scenarios, sim_incident_labels TO PUBLIC;
REVOKE ALL ON FUNCTION sim_scenario_start(text, text[], real, interval),
    sim_scenario_stop(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sim_scenario_runs(), sim_scenarios() TO PUBLIC;

--------------------------------------------------------------------------
-- 1.5: dashboards and Supabase
--------------------------------------------------------------------------

CREATE FUNCTION sim_dashboard(status text DEFAULT NULL, page integer DEFAULT 1,
    page_size integer DEFAULT 50)
RETURNS jsonb
LANGUAGE plpgsql STABLE PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    want text := sim_dashboard.status;
    result jsonb;
BEGIN
    IF want IS NOT NULL AND want NOT IN ('online', 'warning', 'critical', 'offline') THEN
        RAISE EXCEPTION 'unknown status "%"', want USING ERRCODE = '22023',
            HINT = 'Use online, warning, critical or offline, or NULL for every server.';
    END IF;
    IF page IS NULL OR page < 1 THEN
        RAISE EXCEPTION 'page must be 1 or more' USING ERRCODE = '22023',
            HINT = 'Pages count from 1.';
    END IF;
    IF page_size IS NULL OR page_size < 1 OR page_size > 1000 THEN
        RAISE EXCEPTION 'page_size must be between 1 and 1000' USING ERRCODE = '22023',
            HINT = 'Ask for more pages rather than one larger page.';
    END IF;
    WITH m AS MATERIALIZED (SELECT * FROM @extschema@.sim_current_metrics()),
    f AS (SELECT * FROM m WHERE want IS NULL OR m.status OPERATOR(pg_catalog.=) want),
    n AS (SELECT (SELECT count(*) FROM m) AS all_servers, (SELECT count(*) FROM f) AS matching),
    p AS (SELECT * FROM f ORDER BY f.server_id COLLATE "C"
          LIMIT page_size OFFSET (page - 1)::bigint * page_size)
    SELECT jsonb_build_object(
        'success', true,
        'timestamp', (SELECT max(m.sim_time) FROM m),
        'data', COALESCE((SELECT jsonb_agg(jsonb_build_object(
                    'id', p.server_id, 'name', p.name, 'hostname', p.hostname,
                    'status', p.status, 'cpu', p.cpu_usage, 'memory', p.memory_usage,
                    'disk', p.disk_usage, 'network', p.network_usage,
                    'network_io', p.network_io, 'responseTime', p.response_time_ms,
                    'location', p.location, 'role', p.role, 'environment', p.environment,
                    'scenario', p.scenario, 'tick', p.tick) ORDER BY p.server_id COLLATE "C")
                  FROM p), '[]'::jsonb),
        'summary', jsonb_build_object(
            'total', n.all_servers,
            'statusSummary', (SELECT jsonb_build_object(
                'online', count(*) FILTER (WHERE m.status = 'online'),
                'warning', count(*) FILTER (WHERE m.status = 'warning'),
                'critical', count(*) FILTER (WHERE m.status = 'critical'),
                'offline', count(*) FILTER (WHERE m.status = 'offline')) FROM m)),
        'pagination', jsonb_build_object(
            'page', page, 'limit', page_size, 'total', n.matching,
            'totalPages', (n.matching + page_size - 1) / page_size,
            'hasNext', page::bigint * page_size < n.matching,
            'hasPrev', page > 1))
      INTO result
      FROM n;
    RETURN result;
END
$fn$;
COMMENT ON FUNCTION sim_dashboard(text, integer, integer) IS
  'The live fleet as one JSON document in the dashboard''s servers-unified shape: success, timestamp (simulated time of the data), data[] (id, name, hostname, status, cpu, memory, disk, network %, network_io, responseTime, location, role, environment, scenario, tick), summary.statusSummary, pagination. Reads shared memory only: never waits on Redis.';

CREATE FUNCTION sim_expose(schema name, roles name[])
RETURNS SETOF regprocedure
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    ext_schema name;
    f record;
    created regprocedure;
    r name;
    g pg_catalog.oid;
BEGIN
    SELECT n.nspname INTO ext_schema FROM pg_catalog.pg_extension e
      JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'sim_metrics';
    IF schema IS NULL OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = schema) THEN
        RAISE EXCEPTION 'schema "%" does not exist', schema USING ERRCODE = '3F000',
            HINT = 'Create it first, e.g. CREATE SCHEMA api: the wrappers go only where you ask.';
    END IF;
    IF schema = ext_schema THEN
        RAISE EXCEPTION 'the wrappers cannot go into the extension''s own schema' USING ERRCODE = '22023',
            HINT = 'Name an exposed schema such as public or api.';
    END IF;
    IF roles IS NULL OR pg_catalog.cardinality(roles) = 0 THEN
        RAISE EXCEPTION 'name at least one role' USING ERRCODE = '22023',
            HINT = 'Such as ARRAY[''authenticated''] or ARRAY[''anon'', ''authenticated''].';
    END IF;
    FOREACH r IN ARRAY roles LOOP
        IF r IS NULL OR (r <> 'public' AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = r)) THEN
            RAISE EXCEPTION 'role "%" does not exist', r USING ERRCODE = '42704',
                HINT = 'Name existing roles, such as authenticated or service_role.';
        END IF;
    END LOOP;
    -- the roles reach the wrappers through the schema
    FOREACH r IN ARRAY roles LOOP
        EXECUTE pg_catalog.format('GRANT USAGE ON SCHEMA %I TO %s', schema,
                                  CASE WHEN r = 'public' THEN 'PUBLIC' ELSE pg_catalog.quote_ident(r) END);
    END LOOP;
    FOR f IN
        SELECT p.oid, p.proname, p.pronargs, p.proargtypes FROM pg_catalog.pg_proc p
          JOIN pg_catalog.pg_depend d ON d.objid = p.oid
           AND d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass::pg_catalog.oid
           AND d.deptype = 'e'::pg_catalog."char"
          JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid AND e.extname = 'sim_metrics'::pg_catalog.name
         WHERE p.proname IN ('sim_current_metrics', 'sim_status', 'sim_history', 'sim_server_metrics',
                             'sim_scenario_runs', 'sim_dashboard')
         ORDER BY p.proname
    LOOP
        -- never take over a function someone else made there
        IF EXISTS (SELECT 1 FROM pg_catalog.pg_proc w
                    WHERE w.pronamespace = (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = schema)
                      AND w.proname = f.proname AND w.proargtypes = f.proargtypes
                      AND w.proowner <> (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = current_user)) THEN
            RAISE EXCEPTION 'function %.% exists and belongs to another role', schema, f.proname
                USING ERRCODE = '42501',
                HINT = 'Drop it, or have its owner run sim_expose().';
        END IF;
        EXECUTE pg_catalog.format(
            'CREATE OR REPLACE FUNCTION %I.%I(%s) RETURNS %s LANGUAGE sql STABLE SECURITY INVOKER'
            ' SET search_path = '''' AS %L',
            schema, f.proname, pg_catalog.pg_get_function_arguments(f.oid),
            pg_catalog.pg_get_function_result(f.oid),
            pg_catalog.format('SELECT * FROM %I.%I(%s)', ext_schema, f.proname,
                (SELECT pg_catalog.string_agg('$' || i, ', ' ORDER BY i)
                   FROM pg_catalog.generate_series(1, f.pronargs) i)));
        SELECT w.oid::regprocedure INTO created FROM pg_catalog.pg_proc w
         WHERE w.pronamespace = (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = schema)
           AND w.proname = f.proname AND w.proargtypes = f.proargtypes;
        -- only the roles named: whatever default privileges granted goes
        FOR g IN SELECT a.grantee FROM pg_catalog.pg_proc w, pg_catalog.aclexplode(w.proacl) a
                  WHERE w.oid = created AND a.grantee <> w.proowner
        LOOP
            EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s FROM %s', created,
                CASE WHEN g = 0::pg_catalog.oid THEN 'PUBLIC' ELSE g::pg_catalog.regrole::text END);
        END LOOP;
        EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', created);
        FOREACH r IN ARRAY roles LOOP
            EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO %s', created,
                                      CASE WHEN r = 'public' THEN 'PUBLIC' ELSE pg_catalog.quote_ident(r) END);
        END LOOP;
        RETURN NEXT created;
    END LOOP;
END
$fn$;
COMMENT ON FUNCTION sim_expose(name, name[]) IS
  'Create thin SECURITY INVOKER wrappers of the reads (sim_current_metrics, sim_status, sim_history, sim_server_metrics, sim_scenario_runs, sim_dashboard) in the schema you name, executable by the roles you name only (they get USAGE on the schema); for PostgREST RPC. Returns the wrappers.';

--------------------------------------------------------------------------
-- Privileges, whatever the schema's default privileges gave (1.5)
--------------------------------------------------------------------------

-- Default privileges (ALTER DEFAULT PRIVILEGES, such as Supabase's on the
-- extensions schema, or on public) may have granted anything on the objects
-- above to anyone. Every grant to a role other than the owner goes; then
-- exactly the grants below are made.
DO $grants$
DECLARE
    g record;
BEGIN
    FOR g IN
        SELECT pg_catalog.format('%s %s', CASE WHEN c.relkind OPERATOR(pg_catalog.=) 'S'::pg_catalog."char" THEN 'SEQUENCE' ELSE 'TABLE' END,
                                 c.oid::pg_catalog.regclass) AS obj, a.grantee
          FROM pg_catalog.pg_depend d
          JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) d.objid
          CROSS JOIN LATERAL pg_catalog.aclexplode(c.relacl) a
         WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass::pg_catalog.oid
           AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_extension'::pg_catalog.regclass::pg_catalog.oid
           AND d.refobjid OPERATOR(pg_catalog.=) (SELECT e.oid FROM pg_catalog.pg_extension e
                                                 WHERE e.extname OPERATOR(pg_catalog.=) 'sim_metrics'::pg_catalog.name)
           AND d.deptype OPERATOR(pg_catalog.=) 'e'::pg_catalog."char" AND a.grantee OPERATOR(pg_catalog.<>) c.relowner
        UNION
        SELECT pg_catalog.format('TABLE %s', c.oid::pg_catalog.regclass), a.grantee
          FROM pg_catalog.pg_depend d
          JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) d.objid
          JOIN pg_catalog.pg_attribute t ON t.attrelid OPERATOR(pg_catalog.=) c.oid
          CROSS JOIN LATERAL pg_catalog.aclexplode(t.attacl) a
         WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass::pg_catalog.oid
           AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_extension'::pg_catalog.regclass::pg_catalog.oid
           AND d.refobjid OPERATOR(pg_catalog.=) (SELECT e.oid FROM pg_catalog.pg_extension e
                                                 WHERE e.extname OPERATOR(pg_catalog.=) 'sim_metrics'::pg_catalog.name)
           AND d.deptype OPERATOR(pg_catalog.=) 'e'::pg_catalog."char" AND a.grantee OPERATOR(pg_catalog.<>) c.relowner
        UNION
        SELECT pg_catalog.format('FUNCTION %s', p.oid::pg_catalog.regprocedure), a.grantee
          FROM pg_catalog.pg_depend d
          JOIN pg_catalog.pg_proc p ON p.oid OPERATOR(pg_catalog.=) d.objid
          CROSS JOIN LATERAL pg_catalog.aclexplode(p.proacl) a
         WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass::pg_catalog.oid
           AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_extension'::pg_catalog.regclass::pg_catalog.oid
           AND d.refobjid OPERATOR(pg_catalog.=) (SELECT e.oid FROM pg_catalog.pg_extension e
                                                 WHERE e.extname OPERATOR(pg_catalog.=) 'sim_metrics'::pg_catalog.name)
           AND d.deptype OPERATOR(pg_catalog.=) 'e'::pg_catalog."char" AND a.grantee OPERATOR(pg_catalog.<>) p.proowner
    LOOP
        EXECUTE pg_catalog.format('REVOKE ALL ON %s FROM %s CASCADE', g.obj,
            CASE WHEN g.grantee OPERATOR(pg_catalog.=) 0::pg_catalog.oid THEN 'PUBLIC' ELSE g.grantee::pg_catalog.regrole::text END);
    END LOOP;
END
$grants$;

-- the reads: anyone
GRANT SELECT ON server_templates, server_metrics_history, scenario_execution_log,
    sim_scenarios, sim_incident_labels TO PUBLIC;
REVOKE ALL ON FUNCTION sim_start(), sim_stop(), sim_tick(integer), sim_reload(), sim_flush(),
    sim_templates_changed(), sim_scenario_start(text, text[], real, interval),
    sim_scenario_stop(bigint), sim_expose(name, name[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sim_current_metrics(), sim_status(),
    sim_history(text, timestamptz, timestamptz), sim_server_metrics(text),
    sim_scenario_runs(), sim_scenarios(), sim_dashboard(text, integer, integer) TO PUBLIC;

-- The administrator (sim_metrics.admin_role, default postgres), when that
-- role exists and is not a superuser: the control functions, to pass on,
-- and the editable tables; never TRIGGER, TRUNCATE or REFERENCES, nor any
-- write to the history or the log.
DO $admin$
DECLARE
    admin text := COALESCE(NULLIF(pg_catalog.current_setting('sim_metrics.admin_role', true), ''), 'postgres');
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = admin AND NOT rolsuper) THEN
        RETURN;
    END IF;
    EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION sim_start(), sim_stop(), sim_tick(integer),'
        ' sim_reload(), sim_flush(), sim_scenario_start(text, text[], real, interval),'
        ' sim_scenario_stop(bigint), sim_expose(name, name[]) TO %I WITH GRANT OPTION', admin);
    EXECUTE pg_catalog.format('GRANT SELECT, INSERT, UPDATE, DELETE ON server_templates, sim_scenarios'
        ' TO %I WITH GRANT OPTION', admin);
    EXECUTE pg_catalog.format('GRANT SELECT ON server_metrics_rejected TO %I WITH GRANT OPTION', admin);
END
$admin$;

--------------------------------------------------------------------------
-- The writer role (1.6)
--------------------------------------------------------------------------

-- Every statement sim_metrics runs on its tables (the writer's flush, dead
-- letters, retention, scenario log, reloads, restore and Redis recovery,
-- and sim_flush() in a backend) runs as sim_metrics_writer: no attribute,
-- no membership, only the grants below. Whatever another role attaches to
-- these tables (a trigger, a CHECK or an index on a partition it owns)
-- then runs with nothing worth taking. A role of that name made by someone
-- else is used only when it is just as bare.
DO $writer$
DECLARE
    r record;
BEGIN
    SELECT * INTO r FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) 'sim_metrics_writer'::pg_catalog.name;
    IF NOT FOUND THEN
        CREATE ROLE sim_metrics_writer NOLOGIN NOINHERIT;
        COMMENT ON ROLE sim_metrics_writer IS 'sim_metrics reads and writes its tables as this role only';
    ELSIF r.rolsuper OR r.rolcreaterole OR r.rolcreatedb OR r.rolreplication OR r.rolbypassrls OR r.rolcanlogin
          OR EXISTS (SELECT 1 FROM pg_catalog.pg_auth_members m WHERE m.member OPERATOR(pg_catalog.=) r.oid) THEN
        RAISE EXCEPTION 'role sim_metrics_writer exists and holds more than writing history needs'
            USING ERRCODE = '42501',
                  DETAIL = 'sim_metrics runs every statement on its tables as that role; it must have no attribute (NOLOGIN, NOSUPERUSER, NOCREATEROLE, NOCREATEDB, NOREPLICATION, NOBYPASSRLS) and be a member of no role.',
                  HINT = 'As a superuser: DROP ROLE sim_metrics_writer (or strip it), then install again.';
    END IF;
END
$writer$;
GRANT USAGE ON SCHEMA @extschema@ TO sim_metrics_writer;
GRANT SELECT ON server_templates, sim_scenarios TO sim_metrics_writer;
GRANT SELECT, INSERT, DELETE ON server_metrics_history TO sim_metrics_writer;
GRANT SELECT, INSERT, UPDATE ON scenario_execution_log TO sim_metrics_writer;
GRANT INSERT ON server_metrics_rejected TO sim_metrics_writer;

/* sim_metrics--1.0.sql */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION sim_metrics" to load this file. \quit

-- (Since 1.6, in this base too: every install path guards.) The schema must not hold operators or functions that someone other than a
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
    is_default          boolean NOT NULL DEFAULT false
);

COMMENT ON TABLE server_templates IS
  'The simulated fleet: one row per server. Edits are picked up by the worker within a tick; NULL baselines take the role default.';
COMMENT ON COLUMN server_templates.network_capacity_bps IS 'Network capacity in bytes per second; network % = network_io / capacity.';
COMMENT ON COLUMN server_templates.depends_on IS 'Ids of the servers this one calls (cascade edges for incidents).';
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
    OUT flush_errors bigint, OUT buffer_capacity bigint)
RETURNS record
AS 'MODULE_PATHNAME', 'sim_status'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp;

COMMENT ON FUNCTION sim_status() IS
  'State of the simulator and its worker: tick, cost of the last tick (tick_ms), pid, last error, buffered and flushed history samples.';

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
  '[{"name":"nginx","version":"1.24.0","port":80}]', 30, 45, 25, 50, 1250000000,
  '{api-was-icn-01,api-was-icn-02}', true),
 ('web-nginx-icn-02', 'Nginx Web ICN-02', 'web-nginx-icn-02.openmanager.kr', 'web', 'Seoul-ICN-AZ2', 'production', 8, 16, 500, '10.1.2.10', 'Ubuntu 22.04',
  '[{"name":"nginx","version":"1.24.0","port":80}]', 35, 50, 30, 55, 1250000000,
  '{api-was-icn-01,api-was-icn-02}', true),
 ('web-nginx-pus-01', 'Nginx Web PUS-01', 'web-nginx-pus-01.openmanager.kr', 'web', 'Busan-PUS-DR', 'production', 4, 8, 250, '10.2.1.10', 'Ubuntu 22.04',
  '[{"name":"nginx","version":"1.24.0","port":80}]', 25, 40, 28, 45, 1250000000,
  '{api-was-pus-01}', true),
 ('api-was-icn-01', 'Spring Boot API ICN-01', 'api-was-icn-01.openmanager.kr', 'app', 'Seoul-ICN-AZ1', 'production', 16, 32, 500, '10.1.1.20', 'Rocky Linux 9.2',
  '[{"name":"spring-boot","version":"3.2 (JDK 21)","port":8080}]', 45, 60, 40, 50, 1250000000,
  '{db-mysql-icn-primary,db-mysql-icn-replica,cache-redis-icn-01,cache-redis-icn-02}', true),
 ('api-was-icn-02', 'Spring Boot API ICN-02', 'api-was-icn-02.openmanager.kr', 'app', 'Seoul-ICN-AZ2', 'production', 16, 32, 500, '10.1.2.20', 'Rocky Linux 9.2',
  '[{"name":"spring-boot","version":"3.2","port":8080}]', 50, 70, 45, 55, 1250000000,
  '{db-mysql-icn-primary,db-mysql-icn-replica,cache-redis-icn-01,cache-redis-icn-02}', true),
 ('api-was-pus-01', 'Spring Boot API PUS-01', 'api-was-pus-01.openmanager.kr', 'app', 'Busan-PUS-DR', 'production', 8, 16, 250, '10.2.1.20', 'Rocky Linux 9.2',
  '[{"name":"spring-boot","version":"3.2","port":8080}]', 35, 55, 38, 40, 1250000000,
  '{db-mysql-pus-dr}', true),
 ('db-mysql-icn-primary', 'MySQL Primary ICN', 'db-mysql-icn-primary.openmanager.kr', 'database', 'Seoul-ICN-AZ1', 'production', 32, 128, 2000, '10.1.1.30', 'Oracle Linux 8.8',
  '[{"name":"mysql","version":"8.0.35","port":3306,"mode":"primary"}]', 50, 70, 50, 45, 1250000000,
  '{storage-nfs-icn-01}', true),
 ('db-mysql-icn-replica', 'MySQL Replica ICN', 'db-mysql-icn-replica.openmanager.kr', 'database', 'Seoul-ICN-AZ2', 'production', 32, 128, 2000, '10.1.2.30', 'Oracle Linux 8.8',
  '[{"name":"mysql","version":"8.0.35","port":3306,"mode":"replica"}]', 40, 65, 48, 40, 1250000000,
  '{db-mysql-icn-primary}', true),
 ('db-mysql-pus-dr', 'MySQL DR PUS', 'db-mysql-pus-dr.openmanager.kr', 'database', 'Busan-PUS-DR', 'production', 16, 64, 1000, '10.2.1.30', 'Oracle Linux 8.8',
  '[{"name":"mysql","version":"8.0.35","port":3306,"mode":"dr"}]', 25, 50, 45, 30, 1250000000,
  '{db-mysql-icn-primary}', true),
 ('cache-redis-icn-01', 'Redis Cluster Master ICN', 'cache-redis-icn-01.openmanager.kr', 'cache', 'Seoul-ICN-AZ1', 'production', 8, 64, 200, '10.1.1.40', 'Debian 12',
  '[{"name":"redis","version":"7.2","port":6379,"mode":"master"}]', 35, 80, 20, 60, 1250000000,
  '{}', true),
 ('cache-redis-icn-02', 'Redis Cluster Replica ICN', 'cache-redis-icn-02.openmanager.kr', 'cache', 'Seoul-ICN-AZ2', 'production', 8, 64, 200, '10.1.2.40', 'Debian 12',
  '[{"name":"redis","version":"7.2","port":6379,"mode":"replica"}]', 40, 85, 25, 65, 1250000000,
  '{cache-redis-icn-01}', true),
 ('storage-nfs-icn-01', 'NetApp NFS ICN', 'storage-nfs-icn-01.openmanager.kr', 'storage', 'Seoul-ICN-AZ1', 'production', 8, 32, 10000, '10.1.1.50', 'Rocky Linux 9.2',
  '[{"name":"nfs","version":"NetApp ONTAP","port":2049}]', 20, 40, 75, 35, 1250000000,
  '{}', true),
 ('storage-s3gw-pus-01', 'MinIO S3 Gateway PUS', 'storage-s3gw-pus-01.openmanager.kr', 'storage', 'Busan-PUS-DR', 'production', 4, 16, 5000, '10.2.1.50', 'Rocky Linux 9.2',
  '[{"name":"minio","version":"S3 gateway","port":9000}]', 15, 35, 60, 40, 1250000000,
  '{storage-nfs-icn-01}', true),
 ('lb-haproxy-icn-01', 'HAProxy LB ICN', 'lb-haproxy-icn-01.openmanager.kr', 'load-balancer', 'Seoul-ICN-AZ1', 'production', 4, 8, 100, '10.1.1.5', 'Ubuntu 22.04',
  '[{"name":"haproxy","version":"2.8.3","port":443}]', 30, 50, 15, 70, 1250000000,
  '{web-nginx-icn-01,web-nginx-icn-02}', true),
 ('lb-haproxy-pus-01', 'HAProxy LB PUS', 'lb-haproxy-pus-01.openmanager.kr', 'load-balancer', 'Busan-PUS-DR', 'production', 4, 8, 100, '10.2.1.5', 'Ubuntu 22.04',
  '[{"name":"haproxy","version":"2.8.3","port":443}]', 25, 45, 12, 65, 1250000000,
  '{web-nginx-pus-01}', true);

-- pg_dump keeps the rows users add; the default rows come back with CREATE EXTENSION.
SELECT pg_catalog.pg_extension_config_dump('server_templates', 'WHERE NOT is_default');
SELECT pg_catalog.pg_extension_config_dump('server_metrics_history', '');
SELECT pg_catalog.pg_extension_config_dump('server_metrics_history_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('scenario_execution_log', '');
SELECT pg_catalog.pg_extension_config_dump('scenario_execution_log_id_seq', '');

--------------------------------------------------------------------------
-- Privileges: reads may be public, control and writes are not
--------------------------------------------------------------------------

REVOKE ALL ON server_templates, server_metrics_history, scenario_execution_log FROM PUBLIC;
GRANT SELECT ON server_templates, server_metrics_history, scenario_execution_log TO PUBLIC;

REVOKE ALL ON FUNCTION sim_start(), sim_stop(), sim_tick(integer), sim_reload(),
    sim_flush(), sim_templates_changed() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sim_current_metrics(), sim_status(),
    sim_history(text, timestamptz, timestamptz) TO PUBLIC;

--------------------------------------------------------------------------
-- The writer role (1.6, here too: the library of 1.6 needs it)
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
GRANT SELECT ON server_templates TO sim_metrics_writer;
GRANT SELECT, INSERT, DELETE ON server_metrics_history TO sim_metrics_writer;
GRANT SELECT, INSERT, UPDATE ON scenario_execution_log TO sim_metrics_writer;

/* sim_metrics--1.3--1.4.sql: incident scenarios. The catalog
 * (sim_scenarios), the functions that start, stop and list runs, the log's
 * parent_run_id and parameters, the sim_incident_labels view, and
 * sim_status().active_scenarios. */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION sim_metrics UPDATE TO '1.4'" to load this file. \quit

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
    OUT redis_writes bigint, OUT redis_skipped bigint, OUT active_scenarios integer)
RETURNS record
AS 'MODULE_PATHNAME', 'sim_status'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp;

COMMENT ON FUNCTION sim_status() IS
  'State of the simulator: the ticker (pid, tick, tick_ms, late_ticks, tick_lag_ms), the writer (writer_pid, writer_state), buffered, flushed, dropped and rejected history samples, the Redis mirror (redis_state, redis_last_error, redis_errors, redis_writes, redis_skipped), scenario runs pending or active (active_scenarios), the last error.';
GRANT EXECUTE ON FUNCTION sim_status() TO PUBLIC;

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

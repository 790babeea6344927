/*
 * module.c — module entry point and the sim_metrics.* settings.
 *
 * Loading rules: under pg_upgrade (IsBinaryUpgrade) nothing is done, so the
 * worker never connects to a database pg_upgrade is rebuilding. When loaded
 * without shared_preload_libraries only the reloadable settings are defined
 * (PostgreSQL refuses new postmaster-context settings after startup), no
 * shared memory or worker is set up, and every SQL function raises
 * OBJECT_NOT_IN_PREREQUISITE_STATE (see smx_require_loaded).
 */
#include "postgres.h"

#include <float.h>
#include <stdlib.h>

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/guc.h"

#include "compat.h"
#include "sim_metrics.h"

PG_MODULE_MAGIC;

char	   *smx_database_name = NULL;
char	   *smx_worker_role = NULL;
int			smx_max_servers = 1000;
int			smx_tick_interval_ms = 30000;
bool		smx_enabled = true;
int			smx_seed = 1;
char	   *smx_start_time = NULL;
double		smx_time_scale = 1.0;
int			smx_utc_offset_min = 0;
int			smx_history_buffer = 64;
int			smx_flush_interval_ms = 300000;
int			smx_history_retention_s = 0;
char	   *smx_redis_host = NULL;
int			smx_redis_port = 6379;
int			smx_redis_db = 0;
int			smx_redis_timeout_ms = 200;
char	   *smx_redis_user = NULL;
char	   *smx_redis_password = NULL;	/* always "": see the check hook */
const char *smx_redis_password_value = NULL;
char	   *smx_redis_password_file = NULL;
char	   *smx_redis_key_prefix = NULL;
int			smx_redis_ttl_s = 300;
int			smx_redis_min_interval_ms = 5000;
double		smx_change_threshold = 2.0;
char	   *smx_admin_role = NULL;
double		smx_incident_rate = 0.0;
double		smx_anomaly_threshold = SMX_ANOMALY_THRESHOLD;
int			smx_backfill_workers = -1;
int			smx_max_incidents = 2;

void		_PG_init(void);

/* start_time must be empty or an ISO 8601 timestamp the model can read. */
static bool
smx_check_start_time(char **newval, void **extra, GucSource source)
{
	double		epoch;

	if (*newval == NULL || (*newval)[0] == '\0')
		return true;
	if (!smx_parse_iso8601(*newval, &epoch))
	{
		GUC_check_errdetail("\"%s\" is not an ISO 8601 timestamp.", *newval);
		GUC_check_errhint("Use a form such as '2026-01-05 00:00:00+00', or an empty string for the wall clock at first start.");
		return false;
	}
	return true;
}

/* Settings fixed at server start; only definable while preloading. */
static void
smx_define_postmaster_gucs(void)
{
	DefineCustomStringVariable("sim_metrics.database_name",
							   "Database the sim_metrics worker connects to.",
							   "The extension must be created in this database.",
							   &smx_database_name, "postgres",
							   PGC_POSTMASTER, 0, NULL, NULL, NULL);

	DefineCustomStringVariable("sim_metrics.role",
							   "Role the sim_metrics worker runs as.",
							   "Empty means the bootstrap superuser.",
							   &smx_worker_role, "",
							   PGC_POSTMASTER, GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);

	DefineCustomIntVariable("sim_metrics.max_servers",
							"Capacity of the shared-memory fleet, in servers.",
							"Each server takes 692 bytes of shared memory.",
							&smx_max_servers, 1000, 1, 1000000,
							PGC_POSTMASTER, 0, NULL, NULL, NULL);

	DefineCustomIntVariable("sim_metrics.history_buffer",
							"Ticks of samples the shared-memory history ring holds per server.",
							"The ring holds max_servers x history_buffer samples of 48 bytes.",
							&smx_history_buffer, 64, 4, 100000,
							PGC_POSTMASTER, 0, NULL, NULL, NULL);

	DefineCustomBoolVariable("sim_metrics.enabled",
							 "Whether the worker's automatic loop starts running.",
							 "Off starts the worker paused; sim_start() resumes it.",
							 &smx_enabled, true,
							 PGC_POSTMASTER, 0, NULL, NULL, NULL);
}

/* Settings a reload changes; the worker and sim_tick() read the same values. */
static void
smx_define_reload_gucs(void)
{
	DefineCustomIntVariable("sim_metrics.tick_interval",
							"Wall-clock time between automatic ticks.",
							NULL,
							&smx_tick_interval_ms, 30000, 10, 86400000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);

	DefineCustomIntVariable("sim_metrics.seed",
							"Seed of the simulation's random draws.",
							"The same templates, seed, start_time and tick give the same values.",
							&smx_seed, 1, 0, INT_MAX,
							PGC_SIGHUP, 0, NULL, NULL, NULL);

	DefineCustomStringVariable("sim_metrics.start_time",
							   "Simulated clock at tick 0 (ISO 8601).",
							   "Empty means the wall clock when the simulation first starts.",
							   &smx_start_time, "",
							   PGC_SIGHUP, 0, smx_check_start_time, NULL, NULL);

	DefineCustomRealVariable("sim_metrics.time_scale",
							 "Simulated seconds per wall-clock second of tick interval.",
							 "Each tick advances the simulated clock by tick_interval x time_scale.",
							 &smx_time_scale, 1.0, 0.001, 1000000.0,
							 PGC_SIGHUP, 0, NULL, NULL, NULL);

	DefineCustomIntVariable("sim_metrics.flush_interval",
							"Time between flushes of buffered samples to server_metrics_history.",
							"The worker also flushes when the ring is three quarters full, on sim_flush() and before it exits.",
							&smx_flush_interval_ms, 300000, 100, 86400000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);

	DefineCustomIntVariable("sim_metrics.history_retention",
							"Age (in simulated time) after which history rows are deleted; 0 keeps them forever.",
							"Deleted by the worker in batches of 10000 rows; a partitioned history table is left to its partition manager.",
							&smx_history_retention_s, 0, 0, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);

	DefineCustomIntVariable("sim_metrics.utc_offset",
							"Offset from UTC of the simulated local time used by the daily and weekly profiles.",
							NULL,
							&smx_utc_offset_min, 0, -720, 840,
							PGC_SIGHUP, GUC_UNIT_MIN, NULL, NULL, NULL);
}

/*
 * sim_metrics.redis_password: the value is kept aside (extra) and the
 * setting itself always reads as empty, so neither SHOW nor the
 * postmaster's "parameter ... changed to" line on a reload ever shows it.
 * Runs on the boot value too. *newval (the GUC machinery's copy) is wiped
 * and released, and both the empty value and the extra are allocated, the
 * way the running server's GUC code expects (SMX_GUC_*, compat.h: malloc
 * up to 15, GUCMemoryContext from 16).
 */
static bool
smx_check_redis_password(char **newval, void **extra, GucSource source)
{
	char	   *secret = SMX_GUC_STRDUP(*newval ? *newval : "");
	char	   *empty = SMX_GUC_STRDUP("");

	if (secret == NULL || empty == NULL)
	{
		if (secret)
			explicit_bzero(secret, strlen(secret));
		SMX_GUC_FREE(secret);
		SMX_GUC_FREE(empty);
		GUC_check_errcode(ERRCODE_OUT_OF_MEMORY);
		GUC_check_errdetail("Out of memory while keeping the password aside.");
		return false;
	}
	if (*newval)
	{
		explicit_bzero(*newval, strlen(*newval));
		SMX_GUC_FREE(*newval);
	}
	*newval = empty;
	*extra = secret;
	return true;
}

/*
 * sim_metrics.redis_key_prefix: at most SMX_REDIS_PREFIX_MAX bytes, so
 * every key the mirror builds ({prefix}{kind}{id or tick}) fits its buffer.
 */
static bool
smx_check_redis_key_prefix(char **newval, void **extra, GucSource source)
{
	size_t		len = *newval ? strlen(*newval) : 0;

	if (len > SMX_REDIS_PREFIX_MAX)
	{
		GUC_check_errdetail("The prefix is %zu bytes long; at most %d bytes are allowed.",
							len, SMX_REDIS_PREFIX_MAX);
		GUC_check_errhint("Every Redis key is the prefix followed by a kind (\"server:\", \"journal:\", ...) and a server id or a tick: choose a shorter prefix.");
		return false;
	}
	return true;
}

static void
smx_assign_redis_password(const char *newval, void *extra)
{
	smx_redis_password_value = (const char *) extra;
}

/* The Redis mirror's settings (mirror.c, redis.c); the mirror applies them on SIGHUP. */
static void
smx_define_redis_gucs(void)
{
	DefineCustomStringVariable("sim_metrics.redis_host",
							   "Redis the mirror copies the fleet to; empty: no Redis.",
							   "A value starting with / is a unix socket.",
							   &smx_redis_host, "", PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("sim_metrics.redis_port", "Redis TCP port.", NULL,
							&smx_redis_port, 6379, 1, 65535, PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("sim_metrics.redis_db", "Redis database number (SELECT).", NULL,
							&smx_redis_db, 0, 0, 1000000, PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("sim_metrics.redis_timeout",
							"Connect and command timeout of every Redis call.", NULL,
							&smx_redis_timeout_ms, 200, 1, 60000, PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomStringVariable("sim_metrics.redis_user",
							   "Redis 6 ACL user name for AUTH; empty: AUTH with the password alone.",
							   NULL, &smx_redis_user, "", PGC_SIGHUP, GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);
	DefineCustomStringVariable("sim_metrics.redis_password",
							   "Redis password; prefer redis_password_file.",
							   "Members of pg_read_all_settings can read this setting.",
							   &smx_redis_password, "", PGC_SIGHUP,
							   GUC_SUPERUSER_ONLY | GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE,
							   smx_check_redis_password, smx_assign_redis_password, NULL);
	DefineCustomStringVariable("sim_metrics.redis_password_file",
							   "File whose first line is the Redis password, read at each connect.",
							   NULL, &smx_redis_password_file, "", PGC_SIGHUP, GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);
	DefineCustomStringVariable("sim_metrics.redis_key_prefix", "Prefix of every Redis key.",
							   "At most 128 bytes.",
							   &smx_redis_key_prefix, "sim:", PGC_SIGHUP, 0,
							   smx_check_redis_key_prefix, NULL, NULL);
	DefineCustomIntVariable("sim_metrics.redis_ttl",
							"Lifetime of a server's Redis keys; refreshed at half of it.", NULL,
							&smx_redis_ttl_s, 300, 2, 86400 * 30, PGC_SIGHUP, GUC_UNIT_S,
							NULL, NULL, NULL);
	DefineCustomIntVariable("sim_metrics.redis_min_interval",
							"A server is written to Redis at most this often (0: every tick).", NULL,
							&smx_redis_min_interval_ms, 5000, 0, 86400000, PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomRealVariable("sim_metrics.change_threshold",
							 "Points a metric must move (or a status change) for a server to be written to Redis.",
							 NULL, &smx_change_threshold, 2.0, 0.0, 100.0, PGC_SIGHUP, 0,
							 NULL, NULL, NULL);
}

/* Live push: Supabase Realtime messages from the writer (notify.c). */
static const struct config_enum_entry smx_realtime_options[] = {
	{"off", SMX_REALTIME_OFF, false},
	{"public", SMX_REALTIME_PUBLIC, false},
	{"private", SMX_REALTIME_PRIVATE, false},
	{NULL, 0, false}
};

static void
smx_define_realtime_gucs(void)
{
	DefineCustomEnumVariable("sim_metrics.realtime",
							 "Send one message a tick through realtime.send() (Supabase Realtime Broadcast): off, public or private.",
							 "Needs realtime.send(jsonb, text, text, boolean), looked up at each send; without it nothing is sent.",
							 &smx_realtime, SMX_REALTIME_OFF, smx_realtime_options, PGC_SIGHUP, 0,
							 NULL, NULL, NULL);
	DefineCustomStringVariable("sim_metrics.realtime_topic",
							   "Topic of the Realtime messages.", NULL,
							   &smx_realtime_topic, "sim_metrics", PGC_SIGHUP, 0,
							   NULL, NULL, NULL);
}

/*
 * The administrator the install and update scripts grant the control
 * functions to (when that role exists and is not a superuser).
 */
static void
smx_define_admin_guc(void)
{
	DefineCustomStringVariable("sim_metrics.admin_role",
							   "Role CREATE EXTENSION and ALTER EXTENSION UPDATE grant the control functions to, with grant option.",
							   "Also INSERT, UPDATE, DELETE on server_templates and sim_scenarios. Only when the role exists and is not a superuser.",
							   &smx_admin_role, "postgres", PGC_SUSET, 0,
							   NULL, NULL, NULL);
}

/*
 * Automatic incidents. Superuser-settable so a session's sim_tick() can try
 * a rate; the ticker follows the configuration file.
 */
static void
smx_define_incident_gucs(void)
{
	DefineCustomRealVariable("sim_metrics.incident_rate",
							 "Automatic incidents per simulated day (0 = none).",
							 "Each tick starts one with chance rate x tick length / 1 day, drawn from the seed: the same settings give the same incidents at the same ticks.",
							 &smx_incident_rate, 0.0, 0.0, 1000.0, PGC_SUSET, 0,
							 NULL, NULL, NULL);
	DefineCustomIntVariable("sim_metrics.backfill_workers",
							"Background workers that insert a backfill's rows beside the backend that runs it.",
							"-1: the number of CPUs less one; 0: the backend alone. The rows do not depend on it.",
							&smx_backfill_workers, -1, -1, SMX_BF_MAX_WORKERS, PGC_USERSET, 0,
							NULL, NULL, NULL);
	DefineCustomRealVariable("sim_metrics.anomaly_threshold",
							 "Anomaly score from which sim_dashboard() counts a server as anomalous.",
							 "The detector's scores are 0..1; bench/detect.sh prints the threshold that scores best.",
							 &smx_anomaly_threshold, SMX_ANOMALY_THRESHOLD, 0.0, 1.0, PGC_USERSET, 0,
							 NULL, NULL, NULL);
	DefineCustomIntVariable("sim_metrics.max_incidents",
							"Automatic incidents running at once, at most (their cascades aside).",
							NULL, &smx_max_incidents, 2, 0, SMX_MAX_RUNS / 2, PGC_SUSET, 0,
							NULL, NULL, NULL);
}

void
_PG_init(void)
{
	if (IsBinaryUpgrade)
		return;

	smx_define_reload_gucs();
	smx_define_redis_gucs();
	smx_define_incident_gucs();
	smx_define_admin_guc();
	smx_define_realtime_gucs();
	if (process_shared_preload_libraries_in_progress)
		smx_define_postmaster_gucs();
	MarkGUCPrefixReserved("sim_metrics");

	if (!process_shared_preload_libraries_in_progress)
		return;

	smx_shmem_install_hooks();
	smx_register_workers();
}

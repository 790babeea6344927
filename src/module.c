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

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/guc.h"

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
							"Each server takes 408 bytes of shared memory.",
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

void
_PG_init(void)
{
	if (IsBinaryUpgrade)
		return;

	smx_define_reload_gucs();
	if (process_shared_preload_libraries_in_progress)
		smx_define_postmaster_gucs();
	MarkGUCPrefixReserved("sim_metrics");

	if (!process_shared_preload_libraries_in_progress)
		return;

	smx_shmem_install_hooks();
	smx_register_workers();
}

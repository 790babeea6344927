/*
 * sim_metrics.h — declarations shared by the extension's source files.
 *
 * The shared-memory layout and its locking rules are described in shmem.c;
 * this header only declares them.
 */
#ifndef SIM_METRICS_H
#define SIM_METRICS_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "port/atomics.h"
#include "storage/lwlock.h"

#include "model.h"

#define SMX_EXTENSION_NAME	"sim_metrics"
#define SMX_WORKER_TYPE		"sim_metrics worker"

/* Fixed text sizes in shared memory; the table's CHECKs keep values within. */
#define SMX_ID_LEN			64
#define SMX_NAME_LEN		64
#define SMX_HOSTNAME_LEN	128
#define SMX_LOCATION_LEN	48
#define SMX_ENV_LEN			16
#define SMX_SESSION_LEN		40
#define SMX_ERROR_LEN		256

/* GUCs (module.c) */
extern char *smx_database_name;
extern char *smx_worker_role;
extern int	smx_max_servers;
extern int	smx_tick_interval_ms;
extern bool smx_enabled;
extern int	smx_seed;
extern char *smx_start_time;
extern double smx_time_scale;
extern int	smx_utc_offset_min;

/* Descriptive fields of a server: change only on a template reload. */
typedef struct SmxServerDesc
{
	char		id[SMX_ID_LEN];
	char		name[SMX_NAME_LEN];
	char		hostname[SMX_HOSTNAME_LEN];
	char		location[SMX_LOCATION_LEN];
	char		environment[SMX_ENV_LEN];
} SmxServerDesc;

/* The one shared-memory struct; see shmem.c for the locking rules. */
typedef struct SmxShared
{
	LWLock	   *lock;			/* protects the published fields below */
	LWLock	   *sim_lock;		/* serialises simulation steps and reloads */

	/* control, written without the LWLock */
	pg_atomic_uint32 paused;	/* 1 = automatic loop paused */
	pg_atomic_uint32 templates_version; /* bumped when templates change */
	pg_atomic_uint32 worker_pid;		/* 0 when no worker runs */

	/* published state: written under lock exclusive, read under shared */
	bool		clock_set;		/* start_epoch fixed */
	double		start_epoch;	/* simulated clock at tick 0 */
	double		step_seconds;	/* step of the last tick */
	uint64		tick;			/* ticks simulated so far */
	uint64		state_version;	/* bumped by every publish */
	uint64		fleet_version;	/* bumped when the server list changes */
	TimestampTz last_tick_at;	/* wall clock of the last tick */
	double		tick_ms;		/* model cost of the last tick, ms */
	TimestampTz worker_started_at;
	int			worker_tick_interval_ms;	/* as the worker last read it */
	char		session_id[SMX_SESSION_LEN];
	char		worker_state[32];	/* "starting", "waiting for extension"... */
	char		last_error[SMX_ERROR_LEN];
	TimestampTz last_error_at;
	int64		errors;			/* tick errors since postmaster start */
	uint32		loaded_templates_version;
	Oid			loaded_extension;	/* extension OID the fleet came from */
	int			capacity;		/* = sim_metrics.max_servers */
	int			nservers;		/* servers in use, sorted by id */
	int			skipped_servers;	/* enabled templates beyond capacity */

	/*
	 * Arrays of capacity entries follow the struct; use the accessors below.
	 */
} SmxShared;

extern SmxShared *smx_shared;

/* shmem.c */
extern void smx_shmem_install_hooks(void);
extern Size smx_shmem_size(void);
extern SmxServerDesc *smx_shared_desc(void);
extern smx_params *smx_shared_params(void);
extern smx_state *smx_shared_state(void);
extern void smx_require_loaded(void);
extern bool smx_in_fleet_database(void);
extern void smx_require_fleet_database(void);

/* engine.c */
extern uint64 smx_engine_tick(int64 n, bool from_worker);
extern int	smx_engine_reload(bool from_worker);
extern void smx_engine_clear(void);
extern bool smx_engine_needs_reload(Oid ext);
extern Oid	smx_extension_schema(Oid *ext);
extern void smx_current_config(smx_config *cfg, bool for_publish);
extern void smx_record_error(const char *msg);
extern void smx_copy_clipped(char *dst, const char *src, size_t len);

/* worker.c */
extern void smx_register_worker(void);
PGDLLEXPORT void sim_metrics_worker_main(Datum main_arg);
extern void smx_wake_worker(void);

#endif							/* SIM_METRICS_H */

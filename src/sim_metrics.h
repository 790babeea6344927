/*
 * sim_metrics.h — declarations shared by the extension's source files.
 *
 * The shared-memory layout and its locking rules are described in shmem.c;
 * this header only declares them.
 */
#ifndef SIM_METRICS_H
#define SIM_METRICS_H

#include "postgres.h"

#include <math.h>
#include <signal.h>

#include "access/htup.h"
#include "access/tupdesc.h"
#include "datatype/timestamp.h"
#include "lib/stringinfo.h"
#include "nodes/parsenodes.h"
#include "port/atomics.h"
#include "storage/condition_variable.h"
#include "storage/lwlock.h"
#include "fmgr.h"
#include "utils/portal.h"

#include "model.h"
#include "detect.h"

#define SMX_EXTENSION_NAME	"sim_metrics"
/* the role every table access of ours runs as (common.c, smx_writer_role) */
#define SMX_WRITER_ROLE		"sim_metrics_writer"
#define SMX_TICKER_TYPE		"sim_metrics ticker"
#define SMX_WRITER_TYPE		"sim_metrics writer"
#define SMX_MIRROR_TYPE		"sim_metrics mirror"

/* Fixed text sizes in shared memory; the table's CHECKs keep values within. */
#define SMX_ID_LEN			64
#define SMX_NAME_LEN		64
#define SMX_HOSTNAME_LEN	128
#define SMX_LOCATION_LEN	48
#define SMX_ENV_LEN			16
#define SMX_SESSION_LEN		40
#define SMX_ERROR_LEN		256
#define SMX_SESSIONS		16
#define SMX_NO_SESSION		255
#define SMX_CALLS			4	/* depends_on edges kept a server, for cascades */
#define SMX_MAX_SCENARIOS	64	/* catalog entries */
#define SMX_SCENARIO_LEN	32
#define SMX_MAX_RUNS		64	/* runs in shared memory, active or recent */
#define SMX_RUN_TARGETS		32	/* servers a run may name */
#define SMX_REDIS_PREFIX_MAX 128	/* bytes of sim_metrics.redis_key_prefix */

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
extern int	smx_history_buffer;	/* sim_metrics.history_buffer: the ring's size in ticks */
extern int	smx_flush_interval_ms;
extern int	smx_history_retention_s;
extern char *smx_redis_host;
extern int	smx_redis_port;
extern int	smx_redis_db;
extern int	smx_redis_timeout_ms;
extern char *smx_redis_user;
extern char *smx_redis_password;
extern const char *smx_redis_password_value;
extern char *smx_redis_password_file;
extern char *smx_redis_key_prefix;
extern int	smx_redis_ttl_s;
extern int	smx_redis_min_interval_ms;
extern double smx_change_threshold;
extern double smx_incident_rate;
extern double smx_anomaly_threshold;
/* the default of sim_metrics.anomaly_threshold (README: Detection) */
#define SMX_ANOMALY_THRESHOLD	0.9
extern int	smx_max_incidents;
extern char *smx_admin_role;

/* sim_metrics.realtime (notify.c) */
typedef enum SmxRealtime
{
	SMX_REALTIME_OFF = 0,
	SMX_REALTIME_PUBLIC,
	SMX_REALTIME_PRIVATE
} SmxRealtime;
extern int	smx_realtime;
extern char *smx_realtime_topic;

/* Descriptive fields of a server: change only on a template reload. */
typedef struct SmxServerDesc
{
	char		id[SMX_ID_LEN];
	char		name[SMX_NAME_LEN];
	char		hostname[SMX_HOSTNAME_LEN];
	char		location[SMX_LOCATION_LEN];
	char		environment[SMX_ENV_LEN];
} SmxServerDesc;

/*
 * One sample in the history ring: a server's values at one tick. The server
 * is named through the id pool (SmxIdEntry), so a sample stays resolvable
 * after a reload retired the server.
 */
typedef struct SmxSample
{
	int64		tick;
	TimestampTz sim_time;		/* the "timestamp" column: simulated time */
	int64		network_io;
	int64		scenario_run;	/* 0 = none, else the scenario run acting */
	int32		id_ref;			/* index into the id pool */
	int16		cpu;			/* hundredths of a percent */
	int16		memory;
	int16		disk;
	int16		anomaly;		/* the detector's score in 1e-4 (0..10000) */
	uint8		status;
	uint8		session;		/* slot in SmxShared.sessions[] */
} SmxSample;

/*
 * Id pool entry. retired_tick is -1 while the server is in the fleet, else
 * the last tick it had a sample; the entry is reusable once no pending
 * sample is that old.
 */
typedef struct SmxIdEntry
{
	char		id[SMX_ID_LEN];
	int64		retired_tick;
	bool		used;
} SmxIdEntry;

/* A catalog entry (sim_scenarios row) as the engine runs it. */
typedef struct SmxScenarioDef
{
	char		name[SMX_SCENARIO_LEN];
	float		share[SMX_PH_COUNT];	/* of the duration, summing to 1 */
	uint8		curve[SMX_PH_COUNT];	/* smx_curve */
	smx_effects effects;
	uint32		roles;			/* bit per smx_role; 0 = any */
	float		auto_weight;	/* chance weight among automatic incidents */
	char		cascade[SMX_SCENARIO_LEN];	/* what callers feel; "" = nothing */
	float		cascade_p;		/* chance a caller feels it */
	float		cascade_intensity;	/* its intensity, x the run's */
	float		cascade_delay_s[2]; /* after min..max simulated seconds */
} SmxScenarioDef;

typedef enum SmxRunState
{
	SMX_RUN_FREE = 0,
	SMX_RUN_PENDING,			/* starts at ticks[0] */
	SMX_RUN_ACTIVE,
	SMX_RUN_DONE
} SmxRunState;

/*
 * A scenario run. Phase k acts on ticks [ticks[k], ticks[k + 1]); the run
 * is over at ticks[SMX_PH_COUNT]. The log fields are the writer's.
 */
typedef struct SmxRun
{
	int64		id;
	int64		parent_id;		/* 0 = started by a user or automatically */
	uint8		state;			/* SmxRunState */
	bool		automatic;
	bool		stopped;		/* by sim_scenario_stop(): recovery began early */
	bool		interrupted;	/* its time passed while the server was down */
	int64		resumed_at;		/* read back after a restart: the first tick
								 * not in the history then; 0 = not resumed */
	float		intensity;
	float		from_level;		/* the recovery starts from this envelope */
	int64		ticks[SMX_PH_COUNT + 1];
	double		step_seconds;	/* simulated seconds a tick at its start */
	double		requested_s;	/* the duration asked for */
	SmxScenarioDef def;			/* as it was when the run was made */
	int			ntargets;
	uint32		affected;		/* bit i: targets[i] was free and is acted on */
	char		targets[SMX_RUN_TARGETS][SMX_ID_LEN];
	/* the writer's progress in scenario_execution_log */
	uint8		logged_begun;	/* bit per phase: its row is in */
	uint8		logged_ended;	/* bit per phase: its ended_at is in */
	bool		stop_logged;	/* a stop's new plan is in the parameters */
	bool		log_closed;		/* nothing left to write: the slot may go */
} SmxRun;

/*
 * The shared state, split by owner. Each block says who writes it and
 * under which lock; shmem.c has the whole picture. publish_lock guards
 * what readers copy (the fleet, the arrays after this struct, the ring
 * bounds, the runs); step_lock serialises whoever computes the next state.
 * A block is written only through the file that owns it (directly there,
 * through its functions elsewhere). Counters that only their owner bumps
 * and that no reader needs consistent with anything else are atomics
 * (pg_atomic_uint64), bumped and read without a lock.
 */

/* The published fleet (engine.c): written by the step_lock holder (ticker,
 * sim_tick(), a reload) under publish_lock exclusive; read under
 * publish_lock shared. Two exceptions, under publish_lock exclusive too:
 * session_id, sessions and session_slot are set by the ticker when it
 * starts (ticker.c), and state is the fleet's condition as the writer last
 * saw it (writer.c). */
typedef struct SmxFleet
{
	bool		clock_set;		/* start_epoch fixed */
	double		start_epoch;	/* simulated clock at tick 0 */
	double		step_seconds;	/* step of the last tick */
	uint64		tick;			/* ticks simulated so far */
	uint64		state_version;	/* bumped by every publish */
	uint64		version;		/* bumped when the server list changes */
	TimestampTz last_tick_at;	/* wall clock of the last tick */
	double		tick_ms;		/* model cost of the last tick, ms */
	char		session_id[SMX_SESSION_LEN];
	/*
	 * Recent worker sessions; a sample carries the slot of the session that
	 * produced it (SmxSample.session), so buffered samples keep their
	 * session across up to SMX_SESSIONS - 1 worker restarts.
	 */
	char		sessions[SMX_SESSIONS][SMX_SESSION_LEN];
	uint8		session_slot;	/* SMX_NO_SESSION before the first worker */
	uint32		templates_version;	/* templates_version of the loaded fleet */
	Oid			extension;		/* extension OID the fleet came from */
	int			capacity;		/* = sim_metrics.max_servers */
	int			nservers;		/* servers in use, sorted by id */
	int			skipped_servers;	/* enabled templates beyond capacity */
	bool		history_restored;	/* fleet state restored from history */
	/*
	 * Set by the step_lock holder (without publish_lock: no reader looks at
	 * it) while it writes the detectors, until the tick they scored is
	 * published: a process killed meanwhile (an immediate shutdown) leaves
	 * it set, and the postmaster's exit then saves no detector that is
	 * ahead of fleet.tick (detect_store.c).
	 */
	bool		detect_busy;
	char		state[32];		/* "running", "paused", "waiting for ..." */
} SmxFleet;

/*
 * The history ring and the id pool (ring.c). Samples [tail, head); positions
 * count up forever, index = position % capacity. The step_lock holder
 * writes past head and publishes the new head under publish_lock; the one
 * flusher reads [tail, head) without a lock and moves tail under
 * publish_lock once its insert committed (smx_ring_advance). Other files
 * change the block only through ring.c (smx_ring_publish_locked,
 * smx_ring_clear_locked, smx_ring_request_flush, smx_ring_report_dropped).
 * The counters stay under publish_lock, not atomics: every sample made is
 * pending (head - tail), flushed, rejected or dropped, and flushed and
 * rejected move in the critical section that moves tail, dropped in the one
 * that publishes head with the tick, so one copy of them always adds up (no
 * sample counted twice or not at all). pool_changes (a seqlock on the id
 * pool) and flush_requested are atomics.
 */
typedef struct SmxRingCtl
{
	uint64		capacity;
	uint64		head;
	uint64		tail;
	int			id_pool_size;	/* 2 x fleet capacity */
	pg_atomic_uint64 pool_changes;	/* odd while the id pool is written */
	int64		flushed;		/* samples written to the table */
	int64		dropped;		/* samples dropped: ring full */
	int64		rejected;		/* samples the table refused (dead letters) */
	TimestampTz last_drop_log_at;	/* the "ring full" log line's rate limit */
	pg_atomic_uint32 flush_requested;	/* a backend waits for ring room */
	ConditionVariable cv;		/* broadcast when tail advances */
} SmxRingCtl;

/* The ticker's own (ticker.c), under publish_lock; pid and late_ticks are
 * atomics. */
typedef struct SmxTickerStatus
{
	pg_atomic_uint32 pid;		/* 0 when no ticker runs */
	pg_atomic_uint64 late_ticks;	/* ticks run > interval/2 after due */
	double		lag_ms;			/* how late the last tick ran */
	TimestampTz started_at;
	int			interval_ms;	/* tick_interval as the ticker last read it */
} SmxTickerStatus;

/*
 * The writer's own (writer.c), set elsewhere only through writer.c's
 * functions: the flush fields by whoever flushed (smx_writer_flushed_locked,
 * inside smx_ring_advance's critical section, so flush_clock moves with the
 * ring's tail), the counters by notify.c. state and the flush fields are
 * under publish_lock; pid and the counters are atomics.
 */
typedef struct SmxWriterStatus
{
	pg_atomic_uint32 pid;		/* 0 when no writer runs */
	char		state[32];		/* "idle", "flushing", ... */
	TimestampTz last_flush_at;	/* 0 until the first flush */
	TimestampTz flush_clock;	/* the flush interval counts from here */
	int64		last_flush_rows;
	pg_atomic_uint64 flush_errors;
	pg_atomic_uint64 notifications; /* NOTIFY sim_metrics_status sent */
	pg_atomic_uint64 realtime_messages; /* realtime.send() calls that worked */
	pg_atomic_uint64 realtime_errors;	/* and that failed */
} SmxWriterStatus;

/*
 * The mirror's own (mirror.c), under publish_lock; pid, writes and skipped
 * are atomics. errors stays under the lock: it is bumped in the critical
 * section that writes last_error, so a copy never shows one without the
 * other.
 */
typedef struct SmxMirrorStatus
{
	pg_atomic_uint32 pid;		/* 0 when no mirror runs */
	char		state[32];		/* "off", "connected", ... */
	char		last_error[SMX_ERROR_LEN];
	int64		errors;
	pg_atomic_uint64 writes;	/* servers written */
	pg_atomic_uint64 skipped;	/* servers not due in a round */
} SmxMirrorStatus;

/*
 * The last error of any process, written only by common.c's
 * smx_record_error, under publish_lock. count stays under the lock with
 * message and at (one critical section, a copy shows the count and the
 * last message together).
 */
typedef struct SmxErrorStatus
{
	char		message[SMX_ERROR_LEN];
	TimestampTz at;
	int64		count;			/* errors since postmaster start */
} SmxErrorStatus;

/*
 * Scenarios (scenario.c): the catalog and the runs. Written by the
 * step_lock holder under publish_lock exclusive (the log fields of a run:
 * by the writer, under publish_lock exclusive); read under publish_lock
 * shared.
 */
typedef struct SmxScenarioState
{
	int			ndefs;
	SmxScenarioDef defs[SMX_MAX_SCENARIOS];
	SmxRun		runs[SMX_MAX_RUNS];
	int64		next_run_id;
	int64		log_tick;		/* the writer logged every phase up to it */
} SmxScenarioState;

/*
 * A backfill in progress (backfill.c): pid holds the fleet (the ticker
 * waits, sim_tick() and reloads are refused) from the backfill's start to
 * the end of its transaction; the progress fields are under publish_lock.
 */
typedef struct SmxBackfillStatus
{
	pg_atomic_uint32 pid;		/* 0 when no backfill holds the fleet */
	int64		ticks_total;
	int64		ticks_done;
	int64		rows;
	TimestampTz started_at;
} SmxBackfillStatus;

typedef struct SmxShared
{
	LWLock	   *publish_lock;	/* what readers copy: see the blocks */
	LWLock	   *step_lock;		/* serialises simulation steps and reloads */

	/* control, read and written without a lock */
	pg_atomic_uint32 paused;	/* 1 = automatic loop paused */
	pg_atomic_uint32 templates_version; /* bumped when templates change */

	SmxFleet	fleet;
	SmxRingCtl	ring;
	SmxTickerStatus ticker;
	SmxWriterStatus writer;
	SmxMirrorStatus mirror;
	SmxErrorStatus error;
	SmxScenarioState scen;
	SmxBackfillStatus backfill;

	/*
	 * Arrays follow the struct: desc, params, state and id_ref (capacity
	 * entries each), the id pool, the ring. Use the accessors below.
	 */
} SmxShared;

extern SmxShared *smx_shared;

/* shmem.c */
extern void smx_shmem_install_hooks(void);
extern void smx_wake_ticker(void);
extern void smx_wake_writer(void);
extern void smx_wake_mirror(void);
extern Size smx_shmem_size(void);
extern SmxServerDesc *smx_shared_desc(void);
extern smx_params *smx_shared_params(void);
extern smx_state *smx_shared_state(void);
extern int32 *smx_shared_id_ref(void);
extern int32 *smx_shared_calls(void);
extern smx_server_detector *smx_shared_detect(void);
extern SmxIdEntry *smx_shared_id_pool(void);
extern SmxSample *smx_shared_ring(void);
extern void smx_require_loaded(void);
extern bool smx_in_fleet_database(void);
extern void smx_require_fleet_database(void);

/* A percentage rounded to two decimals, as the readers show it. */
static inline Datum
smx_pct_datum(double v)
{
	return Float8GetDatum(rint(v * 100.0) / 100.0);
}

/* common.c: helpers every layer uses; depends on nothing of ours but shmem */
extern Oid	smx_extension_schema(Oid *ext);
extern char *smx_extension_schema_name(void);
extern bool smx_epoch_to_timestamptz(double epoch, TimestampTz *ts);
extern int	smx_cmp_double(const void *a, const void *b);
extern double smx_timestamptz_epoch(TimestampTz ts);
extern TimestampTz smx_epoch_timestamptz(double epoch);
extern double smx_positive_interval_arg(FunctionCallInfo fcinfo, int arg, const char *name);
extern Portal smx_open_cursor(const char *sql, int nargs, Oid *types, Datum *args, bool latest);
extern bool smx_flush_postponed;	/* flush.c: the last flush gave way to a sim_flush() */
extern double smx_sim_epoch_at(uint64 tick);
extern bool smx_sim_now(double *epoch, TimestampTz *ts);
extern void smx_record_error(const char *msg);
extern void smx_copy_clipped(char *dst, const char *src, size_t len);
extern void smx_set_state(char *slot, const char *state);
extern void smx_pin_session_settings(void);
extern int	smx_desc_find(const SmxServerDesc *desc, int n, const char *id);
extern void smx_alloc_fleet_copy(MemoryContext cxt, int n, smx_state **state,
								 SmxServerDesc **desc, uint8 **role);
extern void smx_copy_text(HeapTuple tup, TupleDesc desc, int col, char *dst, size_t len);
extern double smx_get_double(HeapTuple tup, TupleDesc desc, int col, double dflt);
extern void smx_require_known_server(const char *nspname, text *server_t, const char *server_id);
extern Datum smx_tick_time_datum(int64 tick, bool *isnull);

/*
 * A step: code run under a guard, step(arg). Its arguments and its results
 * go through arg (NULL when it has none). The workers' loop steps
 * (smx_worker_guarded) and the code run in a subtransaction (smx_subxact,
 * smx_try_in_subxact) share this shape.
 */
typedef void (*SmxStep) (void *arg);
extern ErrorData *smx_subxact(SmxStep step, void *arg);
extern ErrorData *smx_try_in_subxact(SmxStep step, void *arg, Oid as_user);

/* the user a switch to the writer role saved, to switch back */
typedef struct SmxSavedUser
{
	Oid			user;
	int			sec;
	int			guc_nest;		/* settings made as the writer role go with it */
} SmxSavedUser;
extern Oid	smx_writer_role(void);
extern void smx_writer_may(Oid relid, AclMode mode, const char *grant);
extern void smx_become_role(Oid role, SmxSavedUser *saved);
extern void smx_become_writer(SmxSavedUser *saved);
extern void smx_restore_user(const SmxSavedUser *saved);
extern void smx_desc_match(const SmxServerDesc *old_desc, int old_n,
						   const SmxServerDesc *desc, int n, int *old_index);

/* engine.c */
extern uint64 smx_engine_tick(int64 n, bool from_worker);
extern int	smx_engine_reload(bool from_worker);
extern void smx_engine_clear(void);
extern bool smx_engine_needs_reload(Oid ext);
extern void smx_current_config(smx_config *cfg);

/* A backfill's end, for the fleet to go on from (smx_engine_adopt). */
typedef struct SmxAdopt
{
	uint64		fleet_version;	/* the server list it stepped */
	Oid			extension;
	int			n;
	const smx_state *state;		/* n servers at its last tick */
	const smx_server_detector *detect;	/* and their detectors */
	smx_config	clock;			/* its origin and step */
	uint64		tick;			/* its last tick */
	const SmxRun *runs;			/* SMX_MAX_RUNS */
	int64		next_run_id;
} SmxAdopt;
extern bool smx_engine_adopt(const SmxAdopt *a);

/*
 * scenario.c: runs stepped with the fleet. A run set is the runs, the
 * catalog and the servers they name: the fleet's in shared memory
 * (smx_runs_shared, changed under publish_lock), or a backfill's private
 * copy (lock NULL). Caller holds step_lock for the shared set.
 */
typedef struct SmxRunSet
{
	SmxScenarioState *scen;
	const SmxServerDesc *desc;
	const int32 *calls;			/* SMX_CALLS a server */
	LWLock	   *lock;			/* publish_lock, or NULL: private */
} SmxRunSet;
extern const SmxRunSet *smx_runs_shared(void);
extern const smx_overlay *smx_runs_tick(const SmxRunSet *set, const smx_tick_ctx *ctx,
										smx_state *state, const smx_params *params, int n,
										int64 *run_ids);
extern int	smx_run_alloc(const SmxRunSet *set);
extern int64 smx_run_add(const SmxRunSet *set, int slot, SmxRun *r);
extern void smx_run_stop(const SmxRunSet *set, int slot, int64 T);
extern void smx_runs_resume(SmxRun *runs, int nruns, int64 next_id,
							const SmxServerDesc *desc, smx_state *state, int n,
							int64 tick);
extern void smx_run_plan(SmxRun *r, int64 start_tick, double duration_s, double step_s);
extern float smx_run_level(const SmxRun *r, int64 tick, int *phase);
extern const SmxScenarioDef *smx_scenario_find(const SmxRunSet *set, const char *name);
extern void smx_copy_run_names(char (*names)[SMX_SCENARIO_LEN]);	/* caller holds lock */
extern void smx_runs_adopt_locked(const SmxRun *runs, int64 next_id, int64 log_tick);

/* scenario_sql.c */
#define SMX_MAX_DURATION_S	(7 * 86400.0)	/* a run's longest duration */
extern double smx_interval_seconds(const Interval *iv);

/* A history sample as sim_history() returns it (history_reader.c). */
typedef struct SmxHistRow
{
	int64		tick;
	TimestampTz ts;
	double		cpu,
				mem,
				disk;
	int64		net;
	int			status;			/* index into smx_status_names, -1: text */
	char	   *status_text;
	char	   *session;
	int64		run;			/* 0 = NULL */
	bool		from_memory;
} SmxHistRow;

/* The server's unflushed samples in [since, until], from the ring, in tick order. */
extern SmxHistRow *smx_history_ring_rows(const char *server_id, TimestampTz since,
										 TimestampTz until, int *nmem);
extern void smx_run_set_targets(SmxRun *r, const char *const *servers, int nservers,
								const char *what);

/* scenario_db.c: the catalog, the log and the runs read back (SPI) */
extern int	smx_scenarios_read(const char *nspname, SmxScenarioDef *defs, int max);
extern void smx_scenario_read_one(const char *nspname, const char *name,
								  SmxScenarioDef *def);
extern int	smx_runs_read_open(const char *nspname, SmxRun *runs, int max, int64 newest_tick,
							   int64 *next_id);
extern void smx_scenario_log(void *arg);

/*
 * The log's statements for one schema. dry: write nothing, only move a
 * run's log marks (a backfill plans its log as it steps, writes it after).
 * has_clock: tick times from clock (a backfill's), else the fleet's.
 */
typedef struct SmxLogSql
{
	const char *insert;
	const char *close;
	const char *replan;
	bool		dry;
	bool		has_clock;
	smx_config	clock;
} SmxLogSql;
extern void smx_log_sql(const char *nsp, SmxLogSql *q);
extern bool smx_run_needs_log(const SmxRun *r, int64 now_tick);
extern void smx_log_run(const SmxLogSql *q, SmxRun *r, int64 now_tick);
extern void smx_wait_scenario_log(int64 tick, int timeout_ms);

/* ring.c */
extern void smx_ring_append(const smx_state *state, const int32 *id_ref,
							   const int64 *run_ids,
							   int n, uint64 tick, double sim_epoch,
							   uint64 *head, uint64 tail, int64 *dropped);
extern void smx_sample_fill(SmxSample *s, const smx_state *state, int32 id_ref,
							const int64 *run_ids, int64 tick, TimestampTz ts, uint8 session);
extern bool smx_id_pool_assign(const SmxServerDesc *desc, const int *old_index,
							   int n, int old_n, int32 *id_ref_out);
extern int	smx_id_pool_find(const char *server_id, int32 *refs, int max_refs);
extern void smx_wait_ring_room(uint64 need, TimestampTz deadline);
extern uint64 smx_ring_free(void);
extern void smx_ring_bounds(uint64 *tail, uint64 *head);
extern void smx_ring_publish_locked(uint64 head, int64 dropped);	/* caller holds publish_lock */
extern void smx_ring_clear_locked(void);	/* caller holds step_lock, publish_lock */
extern void smx_ring_request_flush(void);
extern void smx_ring_report_dropped(int64 dropped, bool from_worker);

/* A lock-free scan of the ring, a chunk at a time (ring.c). */
#define SMX_RING_CHUNK	16384	/* samples copied a step */
typedef struct SmxRingIter
{
	uint64		next;			/* position of the next chunk */
	uint64		end;			/* the scan stops before it */
	uint64		from;			/* position of buf[0] */
	SmxSample  *buf;			/* the chunk copied */
} SmxRingIter;
extern void smx_ring_iter_begin(SmxRingIter *it, uint64 from, uint64 end, SmxSample *buf);
extern int	smx_ring_iter_next(SmxRingIter *it, int *first);
extern void smx_ring_advance(uint64 upto, int64 rows, int64 rejected);

/* flush.c */
extern int64 smx_history_flush(bool final, int budget_ms);
extern bool smx_history_flush_due(TimestampTz now);
extern void smx_history_insert_buffer(Oid nsp, const SmxSample *buf, int k, const char *session,
									  int64 *rows, int64 *rejected);
extern bool smx_error_is_per_row(int sqlerrcode);

/*
 * sample_rows.c: samples and rows, the one place a sample becomes a
 * history row, a current row, Redis text or a status event; every writer
 * and reader of those shapes goes through it, so they cannot drift apart.
 */

/* History rows: the one INSERT into server_metrics_history. */
#define SMX_HISTORY_INSERT_COLS 11

/* One row of server_metrics_history, whatever it came from. */
typedef struct SmxHistoryRow
{
	Datum		server_id;		/* text */
	Datum		session_id;		/* text; (Datum) 0 = NULL */
	int64		tick;
	TimestampTz sim_time;		/* the "timestamp" column */
	int16		pct[3];			/* cpu, memory, disk in hundredths */
	int64		network_io;
	uint8		status;			/* smx_status */
	int64		scenario_run;	/* 0 = NULL */
	int16		anomaly;		/* score in 1e-4; -1 = NULL (not known) */
} SmxHistoryRow;

/* Rows gathered for one INSERT (column arrays in lockstep). */
typedef struct SmxHistoryBatch
{
	struct _SPI_plan *plan;		/* the kept insert plan */
	int			ncols;			/* the columns it writes (smx_history_ncols) */
	int			cap;
	int			n;				/* rows added since the last insert */
	Datum	   *col[SMX_HISTORY_INSERT_COLS];
	bool	   *sess_null;
	bool	   *run_null;
	bool	   *anomaly_null;
	Datum		status_text[4];
} SmxHistoryBatch;

extern int	smx_history_ncols(Oid relid);
extern struct _SPI_plan *smx_history_insert_plan(Oid nsp, int *ncols);
extern Datum smx_history_array(Datum *elems, bool *nulls, int n, Oid type);
extern Datum smx_hundredths_numeric(int16 v);
extern List *smx_history_copy_columns(int ncols);
extern void smx_copy_binary_header(StringInfo out);
extern void smx_sample_copy_binary(StringInfo out, const SmxSample *s, const char *id, int id_len,
								   const char *session, int session_len, int ncols);
extern void smx_history_batch_init(SmxHistoryBatch *b, Oid nsp, int cap);
extern void smx_history_batch_add(SmxHistoryBatch *b, const SmxHistoryRow *r);
extern int64 smx_history_batch_insert(SmxHistoryBatch *b);

/* Current rows: sim_current_metrics()'s columns, from memory or Redis. */
#define SMX_CURRENT_COLS		19
#define SMX_CURRENT_DESC_COLS	6	/* id, name, hostname, role, location, env */

/* One row of sim_current_metrics(), whatever layer it came from. */
typedef struct SmxCurrentRow
{
	const Datum *desc_text;		/* the SMX_CURRENT_DESC_COLS as text, or
								 * NULL: only the id (the rest left as is) */
	const char *id;				/* when desc_text is NULL */
	double		cpu,
				memory,
				disk,
				network,
				response_ms;
	int64		network_io;
	int			status;			/* smx_status */
	const char *scenario;		/* the acting run's scenario; NULL = none */
	int64		tick;
	TimestampTz sim_time;
	bool		sim_time_valid;
	TimestampTz updated_at;
	bool		updated_valid;
	double		anomaly;		/* the detector's score; < 0 = not known */
	int			anomaly_signal; /* smx_detect_signal_names[], -1 = none */
} SmxCurrentRow;

extern void smx_current_desc_text(Datum *t, const SmxServerDesc *d, int role);
extern void smx_current_from_state(SmxCurrentRow *r, const smx_state *s,
								   const char (*runs)[SMX_SCENARIO_LEN], const Datum *desc_text,
								   uint64 tick, TimestampTz sim_time, bool sim_time_valid,
								   TimestampTz updated_at);
extern void smx_current_row_values(const SmxCurrentRow *r, Datum *values, bool *nulls);
/* fdw.c: the whole fleet, one tick, as sim_current reads it */
extern void smx_current_put_fleet(Tuplestorestate *ts, TupleDesc desc);

/*
 * Sample text: "tick|sim_time|cpu|memory|disk|network_io|status|session|anomaly",
 * how Redis keeps a sample (the mirror writes it, the recovery reads it).
 * A longer text was not written by the mirror.
 */
#define SMX_SAMPLE_TEXT_MAX		512

/* A score 0..1 in the 1e-4 units samples keep it in, and back. */
static inline int16
smx_score_units(float score)
{
	if (!(score > 0.0f))
		return 0;
	if (score >= 1.0f)
		return 10000;
	return (int16) (score * 10000.0f + 0.5f);
}

#define SMX_SCORE_VALUE(u)	((float) (u) / 10000.0f)

/* A score as the reads show it: rounded to 1e-4, as a double. */
static inline double
smx_score_shown(float score)
{
	return smx_score_units(score) / 10000.0;
}

/* A sample decoded from its Redis text, every field checked. */
typedef struct SmxRedisSample
{
	int64		tick;
	TimestampTz sim_time;
	int16		pct[3];			/* cpu, memory, disk in hundredths */
	int64		network_io;
	uint8		status;			/* smx_status */
	char		session[SMX_SESSION_LEN];	/* "" = none */
	int16		anomaly;		/* score in 1e-4; -1 = none (a 1.7 mirror) */
} SmxRedisSample;

extern int	smx_sample_encode(char *dst, int size, const char *tick, const char *sim_time,
							  double cpu, double memory, double disk, int64 network_io,
							  int status, const char *session, int anomaly);
extern bool smx_sample_decode(const char *text, size_t len, SmxRedisSample *r);
extern bool smx_text_int64(const char *s, int64 *out);

/* Status events: NOTIFY sim_metrics_status and Redis {prefix}events. */
extern void smx_status_event(StringInfo buf, const char *server_id, int from, int to,
							 int64 tick, const char *sim_time, int64 scenario_run);

/* backfill.c, backfill_workers.c */
#define SMX_BF_MAX_WORKERS	8	/* sim_metrics.backfill_workers at most */
extern int	smx_backfill_workers;
extern bool smx_backfill_holds_fleet(void);
extern int64 smx_bf_copy_into(Oid relid, int (*cb) (void *outbuf, int minread, int maxread),
							  int64 bytes_total);
typedef struct SmxBfPool SmxBfPool;
/* why a worker's COPY failed, when the leader may step again row-isolated */
typedef struct SmxBfFailure
{
	int			sqlerrcode;		/* 0 = none */
	bool		no_partition;
	char		message[SMX_ERROR_LEN];
} SmxBfFailure;
extern SmxBfPool *smx_bfpool_start(Oid relid, int nworkers);
extern int	smx_bfpool_size(const SmxBfPool *p);
extern void smx_bfpool_send(SmxBfPool *p, int w, const char *data, Size len);
extern int64 smx_bfpool_finish(SmxBfPool *p, SmxBfFailure *fail);
extern bool smx_bfpool_verdict(SmxBfPool *p, bool commit);
PGDLLEXPORT void sim_metrics_backfill_main(Datum main_arg);
extern void smx_backfill_refuse(const char *what) pg_attribute_noreturn();
extern void smx_backfill_status_text(char *dst, size_t len);

/* retention.c */
extern int64 smx_history_retention(void);

/* restore.c */
extern void smx_select_latest_rows(Oid nsp, const SmxServerDesc *desc, int n,
								   const char *select, bool read_only);
extern void smx_restore_newest_tick(Oid nsp, uint64 *max_tick, double *max_tick_epoch);
extern int	smx_restore_from_history(Oid nsp, const SmxServerDesc *desc,
									 const smx_params *params, int n,
									 smx_state *restored, bool *found, int64 *row_tick,
									 uint64 *max_tick, double *max_tick_epoch);

/*
 * detect_store.c: the detectors across a clean restart, kept in a file
 * the postmaster writes at a clean shutdown and the first load reads.
 */
extern void smx_detect_store_register(void);
extern int	smx_detect_store_load(const SmxServerDesc *desc, int n, const bool *found,
								  const int64 *row_tick, smx_server_detector *detect);

/*
 * redis.c: connections and pipelines; the only file that sees hiredis.
 * A pipeline formats commands into buf and sends them as it fills; replies
 * are read by smx_pipe_finish.
 */
typedef struct SmxPipe
{
	void	   *conn;			/* the connection (a hiredis context) */
	StringInfoData buf;			/* commands not yet sent */
	int64		commands;		/* commands sent or buffered: replies due */
	int64		error_replies;	/* replies that were errors */
	bool		broken;			/* the connection failed: drop it */
	char		err[SMX_ERROR_LEN]; /* the failure, or the first error reply */
} SmxPipe;
typedef void (*SmxReplyFn) (void *arg, int64 index, const void *reply);

extern void *smx_redis_open(char *err, size_t errlen);
extern void smx_redis_close(void *conn);
extern void smx_pipe_begin(SmxPipe *p, void *conn);
extern void smx_pipe_command(SmxPipe *p, int argc);
extern void smx_pipe_arg(SmxPipe *p, const char *s, int len);
extern void smx_resp_arg(StringInfo buf, const char *s, int len);
extern void smx_pipe_raw(SmxPipe *p, const char *data, int len);
extern void smx_pipe_end(SmxPipe *p);
extern void smx_pipe_argv(SmxPipe *p, int argc, const char **argv);
extern bool smx_pipe_finish(SmxPipe *p, SmxReplyFn on_reply, void *arg);
/*
 * The longest string the extension takes from a Redis reply (a sample, a
 * field of the mark or of a server's hash, an id). What the mirror writes
 * stays under 300 bytes (a sample: tick, ISO time, three percentages,
 * network_io, status, session); anything longer was not written by it and
 * is treated as absent, so no size Redis sends reaches a copy or a cast.
 */
#define SMX_REPLY_STRING_MAX	4096

extern int64 smx_reply_elements(const void *reply);
extern const char *smx_reply_element(const void *reply, int64 i, size_t *len);
extern int	smx_fmt_int64(char *dst, int64 v);
extern int	smx_fmt_pct(char *dst, double v);
extern int	smx_fmt_score(char *dst, int units);
extern void *smx_redis_point_fetch(const char *id);
extern const char *smx_redis_point_field(void *reply, const char *name);
extern void smx_redis_point_free(void *reply);

/* mirror.c: the mirror worker's Redis round */
extern void smx_mirror_round(bool *more);
extern void smx_mirror_shutdown(void);
extern void smx_mirror_reconfigure(void);

/* notify.c: NOTIFY on status changes, Supabase Realtime messages */
extern void smx_notify_step(void *arg);

/* recover.c: the writer takes unflushed samples back from Redis */
extern int64 smx_recover_from_redis(Oid nsp, const SmxServerDesc *desc, int n);

/*
 * startup.c: what the first fleet load after a restart reads back (the
 * writer's, see smx_engine_reload): the servers' state from history, after
 * the samples recovered from Redis, their detectors as the last clean
 * shutdown saved them, and the runs still open in the log.
 */
typedef struct SmxRestored
{
	bool		done;			/* history was consulted */
	int			nfound;
	smx_state  *state;
	bool	   *found;
	uint64		max_tick;
	double		max_tick_epoch;
	int64	   *row_tick;		/* tick of the row each continues from; -1 none */
	smx_server_detector *detect;	/* each one's detector: saved or zeroed */
	int			nkept;			/* detectors taken from the saved file */
	SmxRun	   *runs;			/* scenario runs still open in the log */
	int			nruns;
	int64		next_run_id;
} SmxRestored;
extern void smx_startup_read(Oid nsp, const char *nspname, const SmxServerDesc *desc,
							 const smx_params *params, int n, SmxRestored *rs);

/* worker.c: what the workers share */
extern void smx_register_workers(void);
extern bool smx_worker_guarded(SmxStep step, void *arg);
extern void smx_timeout_cancel_handler(SIGNAL_ARGS);
extern volatile sig_atomic_t smx_cancel_on_shutdown;
extern void smx_worker_begin(const char *type, pqsigfunc on_sigint, const char *database);
extern void smx_worker_wait(long timeout_ms);
extern void smx_worker_xact_begin(const char *activity, const char *lock_timeout);
extern void smx_worker_xact_end(MemoryContext cxt);
extern MemoryContext smx_loop_cxt;

/* writer.c: the writer block as other files set it */
extern void smx_writer_flushed_locked(int64 rows);	/* caller holds publish_lock */
extern void smx_writer_count_notifications(int64 n);
extern void smx_writer_count_realtime(bool ok);

/* ticker.c, writer.c, mirror.c */
PGDLLEXPORT void sim_metrics_ticker_main(Datum main_arg);
PGDLLEXPORT void sim_metrics_writer_main(Datum main_arg);
PGDLLEXPORT void sim_metrics_mirror_main(Datum main_arg);

#endif							/* SIM_METRICS_H */

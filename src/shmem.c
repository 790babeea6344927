/*
 * shmem.c — the hot layer: the shared-memory state, in blocks by owner.
 *
 * Layout: SmxShared, then the arrays of `capacity` entries — SmxServerDesc
 * (text fields), smx_params (model inputs), smx_state (the values readers
 * see), the id_ref of each server — then the id pool (2 x capacity) and the
 * history ring. Only plain values live here: no pointer to process-local
 * memory, so a restarted worker can use what it finds.
 *
 * Processes and who owns what:
 *  - the ticker (ticker.c) steps the fleet every tick_interval: model step,
 *    publish, ring append. It has no database and does no I/O.
 *  - the writer (writer.c) does every database write and read: template
 *    reloads (it publishes new fleets), the scenario log, NOTIFY and
 *    Realtime messages (notify.c), flushes of the ring into the history
 *    table (it moves ring_tail), retention, and after a restart the
 *    recovery of unflushed samples from Redis (recover.c).
 *  - the mirror (mirror.c) has no database: it copies the published state
 *    and the ring's samples (read like sim_history reads them) to Redis.
 *  - backends: readers copy out; sim_tick() / sim_reload() step or reload
 *    like the ticker / writer do, under the same locks; sim_flush() flushes
 *    like the writer. sim_backfill() (backfill.c) holds the fleet
 *    (backfill.pid): it steps a private copy and hands its end over at
 *    commit (smx_engine_adopt); meanwhile nothing else steps or reloads.
 *
 * Stages of one tick (smx_engine_tick): take step_lock; model step on the
 * process-local copy; append one sample a server past ring_head; publish
 * state + ring_head under publish_lock; release step_lock.
 *
 * Locking rules:
 *  - publish_lock (LWLock) protects what readers copy: the blocks of
 *    SmxShared (sim_metrics.h, each with its rule beside it) and the five
 *    arrays after it (desc, params, state, id_ref, calls).
 *    Writers hold it exclusive only to memcpy a finished tick or
 *    fleet in; readers hold it shared only to copy what they need out, and
 *    build tuples after releasing it. No reader can see a half-written tick.
 *    No reader holds it for more than a bounded copy (sim_current's scan,
 *    fdw.c, copies 64 bytes a server, or a binary search a server named;
 *    sim_history scans the ring without it).
 *  - smx_shared->step_lock (LWLock) serialises whoever computes the next
 *    state (ticker, sim_tick(), reloads). Its holder is the only writer, so
 *    it may read the arrays without publish_lock; it takes publish_lock exclusive to
 *    publish. Order: step_lock, then lock; never the reverse. Only
 *    privileged code paths take it: no reader does.
 *  - paused, templates_version, the workers' pids, backfill.pid, flush_requested and
 *    pool_changes are atomics, read and written without any lock. So are
 *    the counters that only their owner bumps and only sim_status() shows,
 *    with nothing they must agree with: ticker.late_ticks,
 *    writer.flush_errors / notifications / realtime_messages /
 *    realtime_errors, mirror.writes / skipped (pg_atomic_uint64). Counters
 *    that must agree with other fields stay under publish_lock, bumped in
 *    the critical section that writes those: ring.flushed and
 *    ring.rejected with ring_tail, ring.dropped with ring_head (so pending,
 *    flushed, rejected and dropped in one copy add up), mirror.errors with
 *    mirror.last_error, error.count with error.message.
 *  - Each block is written only through the file that owns it: ring.c the
 *    ring (engine.c publishes the head and clears it through
 *    smx_ring_publish_locked / smx_ring_clear_locked, inside its own
 *    critical section), writer.c the writer block (ring.c records a flush
 *    through smx_writer_flushed_locked, notify.c counts through
 *    smx_writer_count_*), mirror.c and ticker.c their own, common.c the
 *    error block (smx_record_error). The fleet block is the step_lock
 *    holder's (engine.c), except its session fields (the ticker, when it
 *    starts) and its state word (the writer). Readers copy what they need.
 *  - The history ring: the step_lock holder writes samples past ring_head
 *    (no lock: nobody reads there) and publishes the new head under publish_lock.
 *    A flusher (one at a time: a transaction lock whose tag SQL cannot
 *    build, see flush.c) reads [ring_tail, ring_head) without publish_lock
 *    (nobody writes there) and moves ring_tail under publish_lock once its insert
 *    committed. A slot is rewritten only after ring_tail passed it, so a
 *    lock-free reader that finds ring_tail still at or below the position
 *    after copying it has read a whole sample (ring.c).
 *  - The id pool is written only by the step_lock holder, only in entries no
 *    pending sample refers to, with pool_changes odd meanwhile (a seqlock):
 *    readers scan it without a lock and retry when the count moved.
 *  - Scenario runs and the catalog (SmxShared.runs, .scenarios): changed
 *    by the step_lock holder (a tick activating, ending or cascading a run;
 *    sim_scenario_start/stop; a reload) under publish_lock exclusive; the writer
 *    marks what it logged under publish_lock exclusive; readers copy under
 *    publish_lock shared. A server's run is its smx_state.run, published with
 *    the state.
 *  - No ereport() while holding publish_lock: the critical section is a copy.
 */
#include "postgres.h"

#include "commands/dbcommands.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "storage/shmem.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "sim_metrics.h"

#define SMX_TRANCHE	"sim_metrics"

/* The README and the settings' descriptions promise these sizes. */
StaticAssertDecl(sizeof(SmxSample) == 48, "history sample size changed: update README");
StaticAssertDecl(sizeof(SmxIdEntry) == 80, "id pool entry size changed: update README");
StaticAssertDecl(sizeof(SmxServerDesc) + sizeof(smx_params) + sizeof(smx_state) +
				 SMX_CALLS * sizeof(int32) + sizeof(smx_server_detector) == 692,
				 "per-server shared memory changed: update README and max_servers help");

SmxShared  *smx_shared = NULL;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static Size
smx_header_size(void)
{
	return MAXALIGN(sizeof(SmxShared));
}

/* Bytes of shared memory the fleet needs for sim_metrics.max_servers. */
Size
smx_shmem_size(void)
{
	Size		size = smx_header_size();

	size = add_size(size, MAXALIGN(mul_size(smx_max_servers, sizeof(SmxServerDesc))));
	size = add_size(size, MAXALIGN(mul_size(smx_max_servers, sizeof(smx_params))));
	size = add_size(size, MAXALIGN(mul_size(smx_max_servers, sizeof(smx_state))));
	size = add_size(size, MAXALIGN(mul_size(smx_max_servers, sizeof(int32))));
	size = add_size(size, MAXALIGN(mul_size(smx_max_servers, SMX_CALLS * sizeof(int32))));
	size = add_size(size, MAXALIGN(mul_size(smx_max_servers, sizeof(smx_server_detector))));
	size = add_size(size, MAXALIGN(mul_size(mul_size(smx_max_servers, 2), sizeof(SmxIdEntry))));
	size = add_size(size, mul_size(mul_size(smx_max_servers, smx_history_buffer),
								   sizeof(SmxSample)));
	return size;
}

SmxServerDesc *
smx_shared_desc(void)
{
	return (SmxServerDesc *) ((char *) smx_shared + smx_header_size());
}

smx_params *
smx_shared_params(void)
{
	return (smx_params *) ((char *) smx_shared_desc() +
						   MAXALIGN(smx_shared->fleet.capacity * sizeof(SmxServerDesc)));
}

smx_state *
smx_shared_state(void)
{
	return (smx_state *) ((char *) smx_shared_params() +
						  MAXALIGN(smx_shared->fleet.capacity * sizeof(smx_params)));
}

/* Id pool index of each fleet server (parallel to desc/params/state). */
int32 *
smx_shared_id_ref(void)
{
	return (int32 *) ((char *) smx_shared_state() +
					  MAXALIGN(smx_shared->fleet.capacity * sizeof(smx_state)));
}

/*
 * Cascade edges: up to SMX_CALLS indexes of the servers each server calls
 * (its depends_on), -1 for none. Written with the server list.
 */
int32 *
smx_shared_calls(void)
{
	return (int32 *) ((char *) smx_shared_id_ref() +
					  MAXALIGN(smx_shared->fleet.capacity * sizeof(int32)));
}

/*
 * The anomaly detector of each server (parallel to state). Only whoever
 * steps reads or writes it, under step_lock: readers see the scores it
 * leaves in smx_state, never this.
 */
smx_server_detector *
smx_shared_detect(void)
{
	return (smx_server_detector *) ((char *) smx_shared_calls() +
									MAXALIGN(smx_shared->fleet.capacity * SMX_CALLS * sizeof(int32)));
}

SmxIdEntry *
smx_shared_id_pool(void)
{
	return (SmxIdEntry *) ((char *) smx_shared_detect() +
						   MAXALIGN(smx_shared->fleet.capacity * sizeof(smx_server_detector)));
}

SmxSample *
smx_shared_ring(void)
{
	return (SmxSample *) ((char *) smx_shared_id_pool() +
						  MAXALIGN(smx_shared->ring.id_pool_size * sizeof(SmxIdEntry)));
}

static void
smx_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();

	RequestAddinShmemSpace(smx_shmem_size());
	RequestNamedLWLockTranche(SMX_TRANCHE, 2);
}

static void
smx_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	/* a crash-restart re-runs this hook: forget the old pointer first */
	smx_shared = NULL;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	smx_shared = ShmemInitStruct("sim_metrics", smx_shmem_size(), &found);
	if (!found)
	{
		LWLockPadded *locks = GetNamedLWLockTranche(SMX_TRANCHE);

		memset(smx_shared, 0, smx_header_size());
		smx_shared->publish_lock = &locks[0].lock;
		smx_shared->step_lock = &locks[1].lock;
		pg_atomic_init_u32(&smx_shared->paused, smx_enabled ? 0 : 1);
		pg_atomic_init_u32(&smx_shared->templates_version, 1);
		pg_atomic_init_u32(&smx_shared->ticker.pid, 0);
		pg_atomic_init_u32(&smx_shared->writer.pid, 0);
		pg_atomic_init_u32(&smx_shared->mirror.pid, 0);
		pg_atomic_init_u32(&smx_shared->backfill.pid, 0);
		pg_atomic_init_u64(&smx_shared->ring.pool_changes, 0);
		/* the counters read without a lock (see their blocks) */
		pg_atomic_init_u64(&smx_shared->ticker.late_ticks, 0);
		pg_atomic_init_u64(&smx_shared->writer.flush_errors, 0);
		pg_atomic_init_u64(&smx_shared->writer.notifications, 0);
		pg_atomic_init_u64(&smx_shared->writer.realtime_messages, 0);
		pg_atomic_init_u64(&smx_shared->writer.realtime_errors, 0);
		pg_atomic_init_u64(&smx_shared->mirror.writes, 0);
		pg_atomic_init_u64(&smx_shared->mirror.skipped, 0);
		smx_shared->fleet.capacity = smx_max_servers;
		smx_shared->scen.next_run_id = 1;
		smx_shared->ring.id_pool_size = smx_max_servers * 2;
		smx_shared->ring.capacity = (uint64) smx_max_servers * smx_history_buffer;
		ConditionVariableInit(&smx_shared->ring.cv);
		/* the first flush is due one flush_interval after start */
		smx_shared->writer.flush_clock = GetCurrentTimestamp();
		smx_shared->fleet.session_slot = SMX_NO_SESSION;
		pg_atomic_init_u32(&smx_shared->ring.flush_requested, 0);
		memset(smx_shared_id_pool(), 0, smx_shared->ring.id_pool_size * sizeof(SmxIdEntry));
		smx_shared->fleet.extension = InvalidOid;
		strlcpy(smx_shared->fleet.state, "not started", sizeof(smx_shared->fleet.state));
		strlcpy(smx_shared->writer.state, "not started", sizeof(smx_shared->writer.state));
		strlcpy(smx_shared->mirror.state, "off", sizeof(smx_shared->mirror.state));
	}
	LWLockRelease(AddinShmemInitLock);

	/* the postmaster saves the detectors when it shuts down cleanly */
	smx_detect_store_register();
}

void
smx_shmem_install_hooks(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = smx_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = smx_shmem_startup;
}

/* Set the latch of the process whose pid is in *pid; no-op when none runs. */
static void
smx_wake_pid(pg_atomic_uint32 *pidp)
{
	int			pid = (int) pg_atomic_read_u32(pidp);
	PGPROC	   *proc;

	if (pid == 0)
		return;
	proc = BackendPidGetProc(pid);
	if (proc != NULL)
		SetLatch(&proc->procLatch);
}

/* Wake the ticker (sim_start, a new interval). */
void
smx_wake_ticker(void)
{
	smx_wake_pid(&smx_shared->ticker.pid);
}

/* Wake the writer (a template edit, a backend waiting for ring room). */
void
smx_wake_writer(void)
{
	smx_wake_pid(&smx_shared->writer.pid);
}

/* Wake the mirror (a new tick to send to Redis). */
void
smx_wake_mirror(void)
{
	smx_wake_pid(&smx_shared->mirror.pid);
}

/* Every entry point calls this first. */
void
smx_require_loaded(void)
{
	if (smx_shared == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("sim_metrics must be loaded via shared_preload_libraries"),
				 errhint("Add sim_metrics to shared_preload_libraries in postgresql.conf and restart the server.")));
}

/*
 * True when this backend is connected to the database the fleet belongs to
 * (sim_metrics.database_name). There is one fleet per cluster.
 */
bool
smx_in_fleet_database(void)
{
	static int	cached = -1;	/* a backend never changes database */

	if (cached < 0)
	{
		if (!OidIsValid(MyDatabaseId))
			return false;
		cached = get_database_oid(smx_database_name, true) == MyDatabaseId;
	}
	return cached == 1;
}

/* SQL entry points: preloaded, and called from the fleet's database. */
void
smx_require_fleet_database(void)
{
	smx_require_loaded();
	if (!smx_in_fleet_database())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("sim_metrics runs in database \"%s\", not in \"%s\"",
						smx_database_name, get_database_name(MyDatabaseId)),
				 errhint("Connect to database \"%s\", or set sim_metrics.database_name and restart the server.",
						 smx_database_name)));
}

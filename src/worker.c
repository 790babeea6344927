/*
 * worker.c — the background worker: one static worker, started from
 * shared_preload_libraries, that ticks the fleet every tick_interval.
 *
 * Rules it keeps:
 *  - core signal handlers (die, SignalHandlerForConfigReload), installed
 *    before signals are unblocked; waits only on MyLatch with
 *    WL_EXIT_ON_PM_DEATH and calls CHECK_FOR_INTERRUPTS() after each wait,
 *    so DROP DATABASE barriers and shutdown are never held up;
 *  - a loop memory context reset every iteration and switched back to after
 *    every commit or abort;
 *  - an error never kills the worker: it is logged, recorded for
 *    sim_status(), the transaction aborted. A failed template reload backs
 *    off and retries while the loaded fleet keeps ticking; only
 *    SMX_MAX_FAILURES failed ticks in a row end the process (exit code 1,
 *    so the postmaster starts a fresh one after bgw_restart_time);
 *  - it idles, without errors, while the extension is absent, being
 *    created or dropped, or the server is in recovery.
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "tcop/tcopprot.h"
#include "utils/lsyscache.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "sim_metrics.h"

#define SMX_RESTART_SECONDS		5
#define SMX_MAX_FAILURES		10
#define SMX_IDLE_POLL_MS		1000	/* while waiting for the extension */
#define SMX_MAX_BACKOFF_MS		60000

void
smx_register_worker(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = SMX_RESTART_SECONDS;
	strlcpy(worker.bgw_library_name, "sim_metrics", BGW_MAXLEN);
	strlcpy(worker.bgw_function_name, "sim_metrics_worker_main", BGW_MAXLEN);
	strlcpy(worker.bgw_name, SMX_WORKER_TYPE, BGW_MAXLEN);
	strlcpy(worker.bgw_type, SMX_WORKER_TYPE, BGW_MAXLEN);
	RegisterBackgroundWorker(&worker);
}

/* Wake the worker (sim_start, a template edit); no-op when none runs. */
void
smx_wake_worker(void)
{
	int			pid = (int) pg_atomic_read_u32(&smx_shared->worker_pid);
	PGPROC	   *proc;

	if (pid == 0)
		return;
	proc = BackendPidGetProc(pid);
	if (proc != NULL)
		SetLatch(&proc->procLatch);
}

/* Reset every iteration; current again after every commit or abort. */
static MemoryContext smx_loop_cxt = NULL;

static void
smx_set_worker_state(const char *state)
{
	LWLockAcquire(smx_shared->lock, LW_EXCLUSIVE);
	strlcpy(smx_shared->worker_state, state, sizeof(smx_shared->worker_state));
	LWLockRelease(smx_shared->lock);
}

static void
smx_worker_exit(int code, Datum arg)
{
	pg_atomic_write_u32(&smx_shared->worker_pid, 0);
}

/*
 * The transactional half of an iteration: check the extension, reload the
 * templates when they changed. Returns true when a fleet from the current
 * extension is loaded and may be ticked.
 */
static bool
smx_worker_prepare(bool paused)
{
	bool		ready = false;
	const char *state;
	Oid			ext;
	Oid			nsp;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	/* a locked history table (restore) must not stall the worker or its exit */
	(void) set_config_option("lock_timeout", "1s", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_LOCAL, true, 0, false);
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "sim_metrics: checking templates");

	if (RecoveryInProgress())
		state = "waiting for recovery";
	else if (!OidIsValid(nsp = smx_extension_schema(&ext)))
	{
		state = "waiting for CREATE EXTENSION";
		if (OidIsValid(smx_shared->loaded_extension))
			smx_engine_clear();
	}
	else
	{
		Oid			relid = get_relname_relid("server_templates", nsp);

		if (!OidIsValid(relid))
			state = "waiting for CREATE EXTENSION";
		else if (!smx_engine_needs_reload(ext))
			state = paused ? "paused" : "running";
		else if (ConditionalLockRelationOid(relid, AccessShareLock))
		{
			smx_engine_reload(true);
			state = paused ? "paused" : "running";
		}
		else
			state = "templates locked, retrying";
		ready = smx_shared->loaded_extension == ext;
	}

	PopActiveSnapshot();
	CommitTransactionCommand();
	MemoryContextSwitchTo(smx_loop_cxt);
	pgstat_report_activity(STATE_IDLE, NULL);
	pgstat_report_stat(false);

	smx_set_worker_state(state);
	return ready;
}

/*
 * Run one step of the loop, catching any error: the error is logged and
 * recorded for sim_status(), the transaction aborted, locks released, and
 * memory put back in the loop context. Returns false when it failed.
 */
static bool
smx_worker_guarded(bool (*step) (bool), bool arg, bool *result)
{
	MemoryContext loop_cxt = smx_loop_cxt;

	volatile bool ok = true;

	PG_TRY();
	{
		*result = step(arg);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(loop_cxt);
		edata = CopyErrorData();
		EmitErrorReport();
		FlushErrorState();
		LWLockReleaseAll();
		AbortCurrentTransaction();
		MemoryContextSwitchTo(loop_cxt);
		pgstat_report_activity(STATE_IDLE, NULL);
		smx_record_error(edata->message);
		ok = false;
	}
	PG_END_TRY();
	return ok;
}

/*
 * One tick of the current fleet (no transaction needed). Returns false when
 * a backend was stepping the simulation and this tick was skipped.
 */
static bool
smx_worker_tick(bool unused)
{
	return smx_engine_tick(1, true) != 0;
}

/*
 * Flush buffered samples to the history table (own transactions). A
 * regular flush gets back to ticking after half a tick interval (at least
 * 100 ms) and continues at the next iteration; the exit flush has 10 s.
 */
static int64 smx_worker_flushed;

static bool
smx_worker_flush(bool final)
{
	smx_worker_flushed = smx_history_flush(final, final ? 10000 :
										   Max(smx_tick_interval_ms / 2, 100));
	return true;
}

/* Delete expired history rows (own transaction). */
static bool
smx_worker_retention(bool unused)
{
	TimestampTz stop = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), 2000);
	int64		deleted;

	/* one transaction a batch, for at most about two seconds */
	do
	{
		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		PushActiveSnapshot(GetTransactionSnapshot());
		pgstat_report_activity(STATE_RUNNING, "sim_metrics: history retention");
		deleted = smx_history_retention();
		PopActiveSnapshot();
		CommitTransactionCommand();
		MemoryContextSwitchTo(smx_loop_cxt);
		pgstat_report_activity(STATE_IDLE, NULL);
	} while (deleted > 0 && GetCurrentTimestamp() < stop);
	return true;
}

/*
 * Leave after a last flush (SIGTERM: server shutdown or
 * pg_terminate_backend). Exit code 1, so that after pg_terminate_backend
 * the postmaster starts a new worker.
 */
static void
smx_worker_shutdown(void)
{
	bool		unused;

	uint64		tail,
				head;

	smx_worker_flushed = 0;
	if (OidIsValid(smx_shared->loaded_extension))
		(void) smx_worker_guarded(smx_worker_flush, true, &unused);
	smx_ring_bounds(&tail, &head);
	if (head == tail)
		ereport(LOG,
				(errmsg("sim_metrics worker flushed its buffered samples (%lld rows) and is exiting",
						(long long) smx_worker_flushed)));
	else
		ereport(LOG,
				(errmsg("sim_metrics worker is exiting with %llu samples not flushed (%lld rows written)",
						(unsigned long long) (head - tail), (long long) smx_worker_flushed),
				 errdetail("They stay in shared memory for the next worker, unless the server is shutting down.")));
	proc_exit(1);
}

/* A step retried with backoff after failures (reload, flush). */
typedef struct SmxRetry
{
	int			failures;		/* in a row */
	TimestampTz retry_at;		/* not before; 0 = now */
} SmxRetry;

static long smx_backoff_ms(int failures);

/*
 * Run a guarded step; on failure count it and schedule the retry after the
 * backoff (at most cap_ms). Returns whether the step succeeded.
 */
static bool
smx_run_with_backoff(bool (*step) (bool), bool arg, bool *result, SmxRetry *retry,
					 long cap_ms)
{
	if (smx_worker_guarded(step, arg, result))
	{
		retry->failures = 0;
		retry->retry_at = 0;
		return true;
	}
	retry->failures++;
	retry->retry_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
												  Min(smx_backoff_ms(retry->failures), cap_ms));
	return false;
}

/* Retry delay after n failures in a row: interval x 2^(n-1), at most 60 s. */
static long
smx_backoff_ms(int failures)
{
	long		base = Max(smx_tick_interval_ms, SMX_IDLE_POLL_MS);

	return failures > 16 ? SMX_MAX_BACKOFF_MS :
		Min((long) SMX_MAX_BACKOFF_MS, base << (failures - 1));
}

void
sim_metrics_worker_main(Datum main_arg)
{
	MemoryContext loop_cxt;
	TimestampTz next_tick;
	TimestampTz last_prepare = 0;
	SmxRetry	prepare_retry = {0, 0};
	SmxRetry	flush_retry = {0, 0};
	int			tick_failures = 0;
	TimestampTz next_retention = 0;

	/*
	 * SIGTERM only asks to stop (the core handler sets ShutdownRequestPending
	 * and our latch), so the loop can flush buffered samples first. Every
	 * wait in the flush is bounded (lock_timeout, synchronous_commit =
	 * local), so shutdown is never held up.
	 */
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	BackgroundWorkerUnblockSignals();

	if (smx_shared == NULL)
		ereport(ERROR,
				(errmsg("sim_metrics worker started without shared memory")));

	BackgroundWorkerInitializeConnection(smx_database_name,
										 smx_worker_role[0] ? smx_worker_role : NULL,
										 0);
	pgstat_report_appname(SMX_WORKER_TYPE);

	LWLockAcquire(smx_shared->lock, LW_EXCLUSIVE);
	smx_shared->worker_started_at = GetCurrentTimestamp();
	smx_shared->worker_tick_interval_ms = smx_tick_interval_ms;
	/* a new session slot: buffered samples keep the session that made them */
	snprintf(smx_shared->session_id, SMX_SESSION_LEN, "%llx-%d",
			 (unsigned long long) smx_shared->worker_started_at, MyProcPid);
	smx_shared->session_slot = smx_shared->session_slot == SMX_NO_SESSION ? 0 :
		(smx_shared->session_slot + 1) % SMX_SESSIONS;
	memcpy(smx_shared->sessions[smx_shared->session_slot], smx_shared->session_id,
		   SMX_SESSION_LEN);
	strlcpy(smx_shared->worker_state, "starting", sizeof(smx_shared->worker_state));
	LWLockRelease(smx_shared->lock);

	/* announce the pid last: sim_status() then sees a complete entry */
	pg_atomic_write_u32(&smx_shared->worker_pid, (uint32) MyProcPid);
	on_shmem_exit(smx_worker_exit, (Datum) 0);

	ereport(LOG,
			(errmsg("sim_metrics worker started in database \"%s\"%s",
					smx_database_name,
					pg_atomic_read_u32(&smx_shared->paused) ? " (paused)" : "")));

	/* template reads must see the latest commits, whatever the default */
	SetConfigOption("default_transaction_isolation", "read committed",
					PGC_SUSET, PGC_S_OVERRIDE);

	loop_cxt = AllocSetContextCreate(TopMemoryContext, "sim_metrics loop",
									 ALLOCSET_DEFAULT_SIZES);
	smx_loop_cxt = loop_cxt;
	next_tick = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), smx_tick_interval_ms);

	for (;;)
	{
		TimestampTz now;
		bool		paused;
		bool		ready = false;
		long		timeout_ms;

		MemoryContextSwitchTo(loop_cxt);
		SMX_RESET_CONTEXT(loop_cxt);

		if (ConfigReloadPending)
		{
			TimestampTz last = next_tick - (TimestampTz) smx_tick_interval_ms * 1000;

			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			/* a new interval counts from the last tick */
			next_tick = TimestampTzPlusMilliseconds(last, smx_tick_interval_ms);
			LWLockAcquire(smx_shared->lock, LW_EXCLUSIVE);
			smx_shared->worker_tick_interval_ms = smx_tick_interval_ms;
			LWLockRelease(smx_shared->lock);
		}

		now = GetCurrentTimestamp();
		paused = pg_atomic_read_u32(&smx_shared->paused) != 0;
		timeout_ms = smx_tick_interval_ms;

		/* resuming starts a full interval later, not at once */
		if (paused)
			next_tick = TimestampTzPlusMilliseconds(now, smx_tick_interval_ms);

		/*
		 * Check the extension and reload changed templates, also while
		 * paused: at once when the templates changed or nothing is loaded,
		 * otherwise once a second (to notice DROP EXTENSION) rather than
		 * in a transaction every tick. A failure here (say, a broken
		 * server_templates) backs off but does not stop the fleet already
		 * loaded from ticking.
		 */
		ready = OidIsValid(smx_shared->loaded_extension);
		if (now >= prepare_retry.retry_at &&
			(!ready ||
			 smx_shared->loaded_templates_version !=
			 pg_atomic_read_u32(&smx_shared->templates_version) ||
			 now >= TimestampTzPlusMilliseconds(last_prepare, SMX_IDLE_POLL_MS)))
		{
			last_prepare = now;
			if (!smx_run_with_backoff(smx_worker_prepare, paused, &ready,
									  &prepare_retry, SMX_MAX_BACKOFF_MS))
				ready = OidIsValid(smx_shared->loaded_extension);
		}

		if (!ready)
			timeout_ms = SMX_IDLE_POLL_MS;
		else if (!paused && now >= next_tick)
		{
			bool		unused;

			if (smx_worker_guarded(smx_worker_tick, false, &unused))
				tick_failures = 0;
			else if (++tick_failures >= SMX_MAX_FAILURES)
			{
				ereport(LOG,
						(errmsg("sim_metrics worker exiting after %d failed ticks in a row",
								tick_failures)));
				proc_exit(1);
			}
			next_tick = TimestampTzPlusMilliseconds(next_tick, smx_tick_interval_ms);
			/* after a stall, do not try to catch up in a burst */
			if (next_tick <= now)
				next_tick = TimestampTzPlusMilliseconds(now, smx_tick_interval_ms);
		}

		/*
		 * Flush buffered samples: every flush_interval, when the ring is
		 * three quarters full, or when a backend waits for room. Also while
		 * paused (sim_tick() fills the ring too). A failing flush backs off;
		 * the samples stay in the ring.
		 */
		if (ready && now >= flush_retry.retry_at && smx_history_flush_due(now))
		{
			bool		unused;

			if (!smx_run_with_backoff(smx_worker_flush, false, &unused, &flush_retry,
									  (long) smx_flush_interval_ms))
			{
				LWLockAcquire(smx_shared->lock, LW_EXCLUSIVE);
				smx_shared->flush_errors++;
				LWLockRelease(smx_shared->lock);
			}
		}

		/* retention: once a minute, in bounded batches */
		if (ready && smx_history_retention_s > 0 && now >= next_retention)
		{
			bool		unused;

			next_retention = TimestampTzPlusMilliseconds(now, 60000);
			(void) smx_worker_guarded(smx_worker_retention, false, &unused);
		}

		/* sleep until the next tick, retry or poll, whichever comes first */
		now = GetCurrentTimestamp();
		{
			TimestampTz wake = next_tick;
			long		until;

			if (prepare_retry.retry_at > now && prepare_retry.retry_at < wake)
				wake = prepare_retry.retry_at;
			if (ready && flush_retry.retry_at > now && flush_retry.retry_at < wake)
				wake = flush_retry.retry_at;
			until = (long) ((wake - now) / 1000);
			timeout_ms = Min(timeout_ms, Max(until, 0));
		}

		(void) WaitLatch(MyLatch,
						 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 timeout_ms, SMX_WAIT_EVENT_MAIN);
		ResetLatch(MyLatch);
		/* a cancel (pg_cancel_backend) has no query to cancel here */
		QueryCancelPending = false;
		CHECK_FOR_INTERRUPTS();
		if (ShutdownRequestPending)
			smx_worker_shutdown();
	}
}

/*
 * writer.c — the writer: every database read and write of the simulator,
 * so the ticker never waits on I/O.
 *
 * Each iteration, in this order:
 *  1. prepare: check the extension, reload server_templates when they
 *     changed (at once on an edit's commit, else once a second); the first
 *     load takes unflushed samples back from Redis (recover.c), then
 *     continues from history (restore.c). A failure backs off while
 *     the loaded fleet keeps ticking.
 *  2. the scenario log (scenario_db.c): a row for every phase that began,
 *     its end once it ended, up to the published tick; then the live push
 *     (notify.c): NOTIFY on status changes, a Realtime message a tick.
 *  3. flush the ring into server_metrics_history (flush.c): every
 *     flush_interval, when the ring is three quarters full, or when a
 *     backend waits for room. A failure backs off; samples stay buffered.
 *  4. retention (retention.c), once a minute, about two seconds at most.
 * Every wait inside is bounded (lock_timeout, conditional locks). A
 * shutdown request ends a flush between batches; the exit flush then has
 * SMX_EXIT_FLUSH_MS and logs what it could not write.
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
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "sim_metrics.h"

#define SMX_POLL_MS				1000	/* extension check, flush check */
#define SMX_MAX_BACKOFF_MS		60000
#define SMX_EXIT_FLUSH_MS		8000	/* the whole exit stays under 10 s */
#define SMX_FLUSH_BUDGET_MS		2000	/* then back to reload checks */
#define SMX_RETENTION_EVERY_MS	60000
#define SMX_RETENTION_BUDGET_MS	2000

/* A step retried with backoff after failures (reload, flush). */
typedef struct SmxRetry
{
	int			failures;		/* in a row */
	TimestampTz retry_at;		/* not before; 0 = now */
} SmxRetry;

static void
smx_writer_exit(int code, Datum arg)
{
	pg_atomic_write_u32(&smx_shared->writer_pid, 0);
}

/*
 * The transactional half of an iteration: check the extension, reload the
 * templates when they changed. Returns true when a fleet from the current
 * extension is loaded.
 */
static bool
smx_writer_prepare(bool paused)
{
	bool		ready = false;
	const char *state;
	Oid			ext;
	Oid			nsp;

	/* a locked history table (restore) must not stall the writer or its exit */
	smx_worker_xact_begin("sim_metrics: checking templates", "1s");

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

		/* a new extension (dropped and created again): its buffered samples
		 * belonged to the old one's table */
		if (OidIsValid(smx_shared->loaded_extension) && smx_shared->loaded_extension != ext)
			smx_engine_clear();
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

	smx_worker_xact_end(smx_loop_cxt);
	pgstat_report_stat(false);

	smx_set_state(smx_shared->worker_state, state);
	return ready;
}

static bool
smx_writer_flush(bool final)
{
	smx_set_state(smx_shared->writer_state, "flushing");
	(void) smx_history_flush(final, final ? SMX_EXIT_FLUSH_MS : SMX_FLUSH_BUDGET_MS);
	smx_set_state(smx_shared->writer_state, "idle");
	return true;
}

/* Delete expired history rows: one transaction a batch, ~2 s at most. */
static bool
smx_writer_retention(bool unused)
{
	TimestampTz stop = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
												   SMX_RETENTION_BUDGET_MS);
	int64		deleted;

	smx_set_state(smx_shared->writer_state, "retention");
	do
	{
		smx_worker_xact_begin("sim_metrics: history retention", NULL);
		deleted = smx_history_retention();
		smx_worker_xact_end(smx_loop_cxt);
	} while (deleted > 0 && GetCurrentTimestamp() < stop && !ShutdownRequestPending);
	smx_set_state(smx_shared->writer_state, "idle");
	return true;
}

/*
 * Leave after a last flush (SIGTERM: server shutdown or
 * pg_terminate_backend). At a server shutdown the ticker is told to stop
 * at the same moment: give it a moment to leave, so its last tick is in
 * the flush. Exit code 1, so that after pg_terminate_backend the
 * postmaster starts a new writer.
 */
static void
smx_writer_shutdown(void)
{
	bool		unused;
	uint64		tail0,
				tail,
				head,
				head0;
	uint64		tick0;

	for (int i = 0; i < 50 && pg_atomic_read_u32(&smx_shared->ticker_pid) != 0; i++)
		pg_usleep(10000L);
	LWLockAcquire(smx_shared->lock, LW_SHARED);
	tail0 = smx_shared->ring_tail;
	head0 = smx_shared->ring_head;
	tick0 = smx_shared->tick;
	LWLockRelease(smx_shared->lock);
	if (OidIsValid(smx_shared->loaded_extension))
		(void) smx_worker_guarded(smx_writer_flush, true, &unused);
	smx_ring_bounds(&tail, &head);
	if (tail >= head0)
		ereport(LOG,
				(errmsg("sim_metrics writer flushed its buffered samples (%llu rows, up to tick " UINT64_FORMAT ") and is exiting",
						(unsigned long long) (tail - tail0), tick0)));
	else
		ereport(LOG,
				(errmsg("sim_metrics writer is exiting with %llu samples not flushed (%llu written)",
						(unsigned long long) (head - tail), (unsigned long long) (tail - tail0)),
				 errdetail("They stay in shared memory for the next writer, unless the server is shutting down.")));
	proc_exit(1);
}

/* Retry delay after n failures in a row: interval x 2^(n-1), at most 60 s. */
static long
smx_backoff_ms(int failures)
{
	long		base = Max(smx_tick_interval_ms, SMX_POLL_MS);

	return failures > 16 ? SMX_MAX_BACKOFF_MS :
		Min((long) SMX_MAX_BACKOFF_MS, base << (failures - 1));
}

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

/* The writer's loop state between iterations. */
typedef struct SmxWriterLoop
{
	TimestampTz last_prepare;
	TimestampTz next_retention;
	SmxRetry	prepare_retry;
	SmxRetry	log_retry;
	SmxRetry	notify_retry;
	SmxRetry	flush_retry;
} SmxWriterLoop;

/* One iteration: prepare, flush, retention. Returns the wait in ms. */
static long
smx_writer_iteration(SmxWriterLoop *w)
{
	TimestampTz now = GetCurrentTimestamp();
	bool		paused = pg_atomic_read_u32(&smx_shared->paused) != 0;
	bool		ready = OidIsValid(smx_shared->loaded_extension);
	bool		unused;
	TimestampTz wake;

	if (now >= w->prepare_retry.retry_at &&
		(!ready ||
		 smx_shared->loaded_templates_version !=
		 pg_atomic_read_u32(&smx_shared->templates_version) ||
		 now >= TimestampTzPlusMilliseconds(w->last_prepare, SMX_POLL_MS)))
	{
		w->last_prepare = now;
		if (!smx_run_with_backoff(smx_writer_prepare, paused, &ready,
								  &w->prepare_retry, SMX_MAX_BACKOFF_MS))
			ready = OidIsValid(smx_shared->loaded_extension);
	}

	/* the scenario log first, so what is flushed next has its labels */
	if (ready && now >= w->log_retry.retry_at)
		(void) smx_run_with_backoff(smx_scenario_log, false, &unused, &w->log_retry, 10000);
	/* status changes and Realtime: before the flush moves the ring's tail */
	if (ready && now >= w->notify_retry.retry_at)
		(void) smx_run_with_backoff(smx_notify_step, false, &unused, &w->notify_retry, 10000);

	if (ready && now >= w->flush_retry.retry_at && smx_history_flush_due(now) &&
		!smx_run_with_backoff(smx_writer_flush, false, &unused, &w->flush_retry,
							  (long) smx_flush_interval_ms))
	{
		smx_set_state(smx_shared->writer_state, "flush failed, retrying");
		LWLockAcquire(smx_shared->lock, LW_EXCLUSIVE);
		smx_shared->flush_errors++;
		LWLockRelease(smx_shared->lock);
	}

	if (ready && smx_history_retention_s > 0 && now >= w->next_retention)
	{
		w->next_retention = TimestampTzPlusMilliseconds(now, SMX_RETENTION_EVERY_MS);
		(void) smx_worker_guarded(smx_writer_retention, false, &unused);
	}

	/* sleep until the next poll, retry or due flush, whichever is first */
	now = GetCurrentTimestamp();
	wake = TimestampTzPlusMilliseconds(now, SMX_POLL_MS);
	if (w->prepare_retry.retry_at > now && w->prepare_retry.retry_at < wake)
		wake = w->prepare_retry.retry_at;
	if (ready)
	{
		TimestampTz flush_at;

		/* behind (flush requested, ring 3/4 full): again at once */
		if (smx_history_flush_due(now))
			flush_at = now;
		else
		{
			LWLockAcquire(smx_shared->lock, LW_SHARED);
			flush_at = TimestampTzPlusMilliseconds(smx_shared->flush_clock, smx_flush_interval_ms);
			LWLockRelease(smx_shared->lock);
		}
		flush_at = Max(flush_at, w->flush_retry.retry_at);
		if (flush_at < wake)
			wake = flush_at;
	}
	return wake <= now ? 0 : (long) ((wake - now + 999) / 1000);
}

void
sim_metrics_writer_main(Datum main_arg)
{
	SmxWriterLoop w;

	/* SIGTERM only asks to stop, so the loop can flush buffered samples first */
	smx_worker_begin(SMX_WRITER_TYPE, smx_timeout_cancel_handler, smx_database_name);
	smx_pin_session_settings();

	pg_atomic_write_u32(&smx_shared->writer_pid, (uint32) MyProcPid);
	on_shmem_exit(smx_writer_exit, (Datum) 0);
	smx_set_state(smx_shared->writer_state, "idle");
	ereport(LOG,
			(errmsg("sim_metrics writer started in database \"%s\"", smx_database_name)));

	smx_loop_cxt = AllocSetContextCreate(TopMemoryContext, "sim_metrics writer loop",
										 ALLOCSET_DEFAULT_SIZES);
	memset(&w, 0, sizeof(w));

	for (;;)
	{
		long		timeout_ms;

		MemoryContextSwitchTo(smx_loop_cxt);
		SMX_RESET_CONTEXT(smx_loop_cxt);
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		timeout_ms = smx_writer_iteration(&w);

		smx_worker_wait(ShutdownRequestPending ? 0 : timeout_ms);
		if (ShutdownRequestPending)
			smx_writer_shutdown();
	}
}

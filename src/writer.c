/*
 * writer.c — the writer: every database read and write of the simulator,
 * so the ticker never waits on I/O.
 *
 * Each iteration runs the stages of smx_writer_stages, in this order:
 *  1. prepare: check the extension, reload server_templates when they
 *     changed (at once on an edit's commit, else once a second); the first
 *     load reads back what the restart took (startup.c): unflushed samples
 *     from Redis, then history, then the open scenario runs. A failure
 *     backs off while the loaded fleet keeps ticking.
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

/* A stage retried with backoff after failures (all but retention). */
typedef struct SmxRetry
{
	int			failures;		/* in a row */
	TimestampTz retry_at;		/* not before; 0 = now */
} SmxRetry;

/* The writer's stages, in the order they run (see the top of the file). */
typedef enum SmxWriterStageId
{
	SMX_STAGE_PREPARE,
	SMX_STAGE_LOG,
	SMX_STAGE_NOTIFY,
	SMX_STAGE_FLUSH,
	SMX_STAGE_RETENTION,
	SMX_STAGES
} SmxWriterStageId;

/* The writer's loop state between iterations, and the iteration's. */
typedef struct SmxWriterLoop
{
	TimestampTz last_prepare;
	TimestampTz next_retention;
	SmxRetry	retry[SMX_STAGES];
	/* this iteration */
	TimestampTz now;			/* when it began */
	bool		paused;			/* sim_pause() in effect */
	bool		ready;			/* a fleet from the current extension is loaded */
	bool		final;			/* the exit flush */
} SmxWriterLoop;

static void
smx_writer_exit(int code, Datum arg)
{
	pg_atomic_write_u32(&smx_shared->writer.pid, 0);
}

/*
 * The writer block (SmxWriterStatus) is this file's: other files set it
 * only through the functions below.
 */

/* The writer's state word, as sim_status() shows it. */
static void
smx_writer_set_state(const char *state)
{
	smx_set_state(smx_shared->writer.state, state);
}

/*
 * A flush of rows samples committed (the writer's or a sim_flush()'s): the
 * flush interval counts from now. Caller holds publish_lock exclusive
 * (smx_ring_advance, which moves the ring's tail in the same section).
 */
void
smx_writer_flushed_locked(int64 rows)
{
	smx_shared->writer.last_flush_rows = rows;
	smx_shared->writer.last_flush_at = GetCurrentTimestamp();
	smx_shared->writer.flush_clock = smx_shared->writer.last_flush_at;
}

/* A flush failed (its samples stay buffered). */
static void
smx_writer_count_flush_error(void)
{
	pg_atomic_fetch_add_u64(&smx_shared->writer.flush_errors, 1);
}

/* n NOTIFY sim_metrics_status were sent (notify.c). */
void
smx_writer_count_notifications(int64 n)
{
	pg_atomic_fetch_add_u64(&smx_shared->writer.notifications, n);
}

/* A Realtime message was sent (ok) or failed (notify.c). */
void
smx_writer_count_realtime(bool ok)
{
	pg_atomic_fetch_add_u64(ok ? &smx_shared->writer.realtime_messages :
							&smx_shared->writer.realtime_errors, 1);
}

/*
 * The transactional half of an iteration: check the extension, reload the
 * templates when they changed. Sets w->ready when a fleet from the current
 * extension is loaded. arg is the SmxWriterLoop.
 */
static void
smx_writer_prepare(void *arg)
{
	SmxWriterLoop *w = arg;
	bool		paused = w->paused;
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
		if (OidIsValid(smx_shared->fleet.extension))
			smx_engine_clear();
	}
	else
	{
		Oid			relid = get_relname_relid("server_templates", nsp);

		/* a new extension (dropped and created again): its buffered samples
		 * belonged to the old one's table */
		if (OidIsValid(smx_shared->fleet.extension) && smx_shared->fleet.extension != ext)
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
		ready = smx_shared->fleet.extension == ext;
	}

	smx_worker_xact_end(smx_loop_cxt);
	pgstat_report_stat(false);

	smx_set_state(smx_shared->fleet.state, state);
	w->ready = ready;
}

/* Flush the ring (w->final: the exit flush). arg is the SmxWriterLoop. */
static void
smx_writer_flush(void *arg)
{
	SmxWriterLoop *w = arg;

	smx_writer_set_state("flushing");
	(void) smx_history_flush(w->final, w->final ? SMX_EXIT_FLUSH_MS : SMX_FLUSH_BUDGET_MS);
	smx_writer_set_state("idle");
}

/* Delete expired history rows: one transaction a batch, ~2 s at most. */
static void
smx_writer_retention(void *arg)
{
	TimestampTz stop = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
												   SMX_RETENTION_BUDGET_MS);
	int64		deleted;

	smx_writer_set_state("retention");
	do
	{
		smx_worker_xact_begin("sim_metrics: history retention", NULL);
		deleted = smx_history_retention();
		smx_worker_xact_end(smx_loop_cxt);
	} while (deleted > 0 && GetCurrentTimestamp() < stop && !ShutdownRequestPending);
	smx_writer_set_state("idle");
}

/*
 * Leave after a last flush (SIGTERM: server shutdown or
 * pg_terminate_backend). At a server shutdown the ticker is told to stop
 * at the same moment: give it a moment to leave, so its last tick is in
 * the flush. Exit code 1, so that after pg_terminate_backend the
 * postmaster starts a new writer.
 */
static void
smx_writer_shutdown(SmxWriterLoop *w)
{
	uint64		tail0,
				tail,
				head,
				head0;
	uint64		tick0;

	for (int i = 0; i < 50 && pg_atomic_read_u32(&smx_shared->ticker.pid) != 0; i++)
		pg_usleep(10000L);
	LWLockAcquire(smx_shared->publish_lock, LW_SHARED);
	tail0 = smx_shared->ring.tail;
	head0 = smx_shared->ring.head;
	tick0 = smx_shared->fleet.tick;
	LWLockRelease(smx_shared->publish_lock);
	w->final = true;
	if (OidIsValid(smx_shared->fleet.extension))
		(void) smx_worker_guarded(smx_writer_flush, w);
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
 * When each stage runs. A stage with a backoff runs only once its retry
 * time came; ready: only with a fleet of the current extension loaded.
 */
static bool
smx_prepare_due(SmxWriterLoop *w)
{
	if (w->ready &&
		smx_shared->fleet.templates_version ==
		pg_atomic_read_u32(&smx_shared->templates_version) &&
		w->now < TimestampTzPlusMilliseconds(w->last_prepare, SMX_POLL_MS))
		return false;
	w->last_prepare = w->now;
	return true;
}

static bool
smx_when_ready(SmxWriterLoop *w)
{
	return w->ready;
}

static bool
smx_flush_due(SmxWriterLoop *w)
{
	return w->ready && smx_history_flush_due(w->now);
}

static bool
smx_retention_due(SmxWriterLoop *w)
{
	if (!w->ready || smx_history_retention_s <= 0 || w->now < w->next_retention)
		return false;
	w->next_retention = TimestampTzPlusMilliseconds(w->now, SMX_RETENTION_EVERY_MS);
	return true;
}

/* Longest backoffs after failures in a row. */
static long
smx_prepare_backoff_cap(void)
{
	return SMX_MAX_BACKOFF_MS;
}

static long
smx_short_backoff_cap(void)
{
	return 10000;
}

static long
smx_flush_backoff_cap(void)
{
	return (long) smx_flush_interval_ms;
}

/* After a failure: what is loaded now (a failed reload may have cleared it). */
static void
smx_prepare_failed(SmxWriterLoop *w)
{
	w->ready = OidIsValid(smx_shared->fleet.extension);
}

/* After a failure: samples stay buffered, the flush is retried. */
static void
smx_flush_failed(SmxWriterLoop *w)
{
	/* giving way to a session's sim_flush() loses nothing: no flush error */
	if (smx_flush_postponed)
	{
		/* cleared: the guard must not take a later step's lock timeout for it */
		smx_flush_postponed = false;
		smx_writer_set_state("flush postponed, retrying");
		return;
	}
	smx_writer_set_state("flush failed, retrying");
	smx_writer_count_flush_error();
}

/*
 * A stage of the writer's iteration: its step, run guarded with the loop
 * state as its argument when `when` says so (and, with a backoff, once its
 * retry time came); on failure the retry is put off by the backoff (at
 * most backoff_cap_ms(); NULL: no backoff, `when` alone decides) and
 * `failed` (if any) runs.
 */
typedef struct SmxWriterStage
{
	const char *name;
	SmxStep		step;
	bool		(*when) (SmxWriterLoop *w);
	long		(*backoff_cap_ms) (void);
	void		(*failed) (SmxWriterLoop *w);
} SmxWriterStage;

/*
 * In this order: the reload; the scenario log before the flush, so what is
 * flushed next has its labels; status changes and Realtime before the
 * flush moves the ring's tail; the flush; retention.
 */
static const SmxWriterStage smx_writer_stages[SMX_STAGES] = {
	[SMX_STAGE_PREPARE] = {"prepare", smx_writer_prepare, smx_prepare_due,
	smx_prepare_backoff_cap, smx_prepare_failed},
	[SMX_STAGE_LOG] = {"scenario log", smx_scenario_log, smx_when_ready,
	smx_short_backoff_cap, NULL},
	[SMX_STAGE_NOTIFY] = {"notify", smx_notify_step, smx_when_ready,
	smx_short_backoff_cap, NULL},
	[SMX_STAGE_FLUSH] = {"flush", smx_writer_flush, smx_flush_due,
	smx_flush_backoff_cap, smx_flush_failed},
	[SMX_STAGE_RETENTION] = {"retention", smx_writer_retention, smx_retention_due,
	NULL, NULL},
};

/*
 * Run a stage when it is due; on failure count it and schedule the retry
 * after the backoff.
 */
static void
smx_writer_stage(SmxWriterLoop *w, SmxWriterStageId id)
{
	const SmxWriterStage *st = &smx_writer_stages[id];
	SmxRetry   *retry = &w->retry[id];

	if (st->backoff_cap_ms != NULL && w->now < retry->retry_at)
		return;
	if (!st->when(w))
		return;
	if (smx_worker_guarded(st->step, w))
	{
		retry->failures = 0;
		retry->retry_at = 0;
		return;
	}
	if (st->backoff_cap_ms != NULL)
	{
		retry->failures++;
		retry->retry_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													  Min(smx_backoff_ms(retry->failures),
														  st->backoff_cap_ms()));
	}
	if (st->failed != NULL)
		st->failed(w);
}

/* One iteration: the stages in their order. Returns the wait in ms. */
static long
smx_writer_iteration(SmxWriterLoop *w)
{
	TimestampTz now;
	TimestampTz wake;
	TimestampTz prepare_retry_at;

	w->now = GetCurrentTimestamp();
	w->paused = pg_atomic_read_u32(&smx_shared->paused) != 0;
	w->ready = OidIsValid(smx_shared->fleet.extension);
	for (int id = 0; id < SMX_STAGES; id++)
		smx_writer_stage(w, (SmxWriterStageId) id);

	/* sleep until the next poll, retry or due flush, whichever is first */
	now = GetCurrentTimestamp();
	wake = TimestampTzPlusMilliseconds(now, SMX_POLL_MS);
	prepare_retry_at = w->retry[SMX_STAGE_PREPARE].retry_at;
	if (prepare_retry_at > now && prepare_retry_at < wake)
		wake = prepare_retry_at;
	if (w->ready)
	{
		TimestampTz flush_at;

		/* behind (flush requested, ring 3/4 full): again at once */
		if (smx_history_flush_due(now))
			flush_at = now;
		else
		{
			LWLockAcquire(smx_shared->publish_lock, LW_SHARED);
			flush_at = TimestampTzPlusMilliseconds(smx_shared->writer.flush_clock, smx_flush_interval_ms);
			LWLockRelease(smx_shared->publish_lock);
		}
		flush_at = Max(flush_at, w->retry[SMX_STAGE_FLUSH].retry_at);
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

	pg_atomic_write_u32(&smx_shared->writer.pid, (uint32) MyProcPid);
	on_shmem_exit(smx_writer_exit, (Datum) 0);
	smx_writer_set_state("idle");
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
			smx_writer_shutdown(&w);
	}
}

/*
 * ticker.c — the ticker: steps the fleet every tick_interval, and nothing
 * else. It computes, publishes to shared memory and appends to the history
 * ring; it has no database (so it holds up no DROP DATABASE), runs no SQL
 * and waits on no I/O. The writer (writer.c) loads the fleet it ticks.
 *
 * Schedule: tick k is due at anchor + k x tick_interval. A tick that runs
 * more than half an interval after it was due counts in late_ticks; ticks
 * the ticker fell behind on (a busy machine, a long sim_tick(n) holding
 * step_lock) are caught up at once, in bounded chunks, never skipped, so
 * with time_scale = 1 the simulated clock keeps to the wall clock.
 * Pausing (sim_stop) or having no fleet moves the anchor: no catch-up
 * after a pause.
 */
#include "postgres.h"

#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "sim_metrics.h"

#define SMX_MAX_FAILURES		10
#define SMX_IDLE_POLL_MS		1000	/* while there is no fleet */
#define SMX_CATCHUP_WORK		2000000 /* server-ticks per loop iteration */

static void
smx_ticker_exit(int code, Datum arg)
{
	pg_atomic_write_u32(&smx_shared->ticker.pid, 0);
}

/* Take a session slot: buffered samples keep the session that made them. */
static void
smx_ticker_start_session(void)
{
	LWLockAcquire(smx_shared->publish_lock, LW_EXCLUSIVE);
	smx_shared->ticker.started_at = GetCurrentTimestamp();
	smx_shared->ticker.interval_ms = smx_tick_interval_ms;
	snprintf(smx_shared->fleet.session_id, SMX_SESSION_LEN, "%llx-%d",
			 (unsigned long long) smx_shared->ticker.started_at, MyProcPid);
	smx_shared->fleet.session_slot = smx_shared->fleet.session_slot == SMX_NO_SESSION ? 0 :
		(smx_shared->fleet.session_slot + 1) % SMX_SESSIONS;
	memcpy(smx_shared->fleet.sessions[smx_shared->fleet.session_slot], smx_shared->fleet.session_id,
		   SMX_SESSION_LEN);
	LWLockRelease(smx_shared->publish_lock);
}

/* The ticker's step: run *(int64 *) arg ticks. */
static void
smx_ticker_step(void *arg)
{
	(void) smx_engine_tick(*(const int64 *) arg, true);
}

/*
 * Run the ticks due at `now` from *next_tick on (at most a bounded chunk;
 * the loop comes back at once for the rest), count the late ones, move
 * *next_tick past them. Returns false when the step failed.
 */
static bool
smx_ticker_catch_up(TimestampTz *next_tick, TimestampTz now, TimestampTz not_late_before)
{
	int64		iv = (int64) smx_tick_interval_ms * 1000;
	int64		due = 1 + (now - *next_tick) / iv;
	int64		late = 0;
	int64		n = Min(due, Max(1, SMX_CATCHUP_WORK / Max(smx_shared->fleet.nservers, 1)));

	if (!smx_worker_guarded(smx_ticker_step, &n))
	{
		/* nothing was stepped: try again one interval from now */
		*next_tick = now + iv;
		return false;
	}
	for (int64 k = 0; k < n; k++)
	{
		TimestampTz due_k = *next_tick + k * iv;

		if (due_k >= not_late_before && now - due_k > iv / 2)
			late++;
	}

	if (late > 0)
		pg_atomic_fetch_add_u64(&smx_shared->ticker.late_ticks, (uint64) late);
	LWLockAcquire(smx_shared->publish_lock, LW_EXCLUSIVE);
	smx_shared->ticker.lag_ms = (double) (now - *next_tick) / 1000.0;
	LWLockRelease(smx_shared->publish_lock);

	*next_tick += n * iv;
	return true;
}

/*
 * Where a new schedule starts. When the simulated clock runs at wall speed
 * (time_scale = 1) and is within a tick of the wall clock, the next tick
 * is due when the wall clock reads its simulated time, so sim_time keeps to
 * the wall clock; otherwise (a paused or restored clock runs behind) one
 * interval from now.
 */
static TimestampTz
smx_ticker_anchor(TimestampTz now)
{
	int64		iv = (int64) smx_tick_interval_ms * 1000;
	TimestampTz due;
	bool		set;
	double		epoch;

	if (smx_time_scale != 1.0)
		return now + iv;
	LWLockAcquire(smx_shared->publish_lock, LW_SHARED);
	set = smx_shared->fleet.clock_set;
	epoch = smx_sim_epoch_at(smx_shared->fleet.tick + 1);
	LWLockRelease(smx_shared->publish_lock);
	if (set && smx_epoch_to_timestamptz(epoch, &due) && due > now - iv && due <= now + iv)
		return due;
	return now + iv;
}

/* Milliseconds from now until ts, at least 0, at most cap. */
static long
smx_ms_until(TimestampTz ts, TimestampTz now, long cap)
{
	return ts <= now ? 0 : (long) Min((int64) cap, (ts - now + 999) / 1000);
}

void
sim_metrics_ticker_main(Datum main_arg)
{
	TimestampTz next_tick;
	int			failures = 0;
	bool		was_running = false;
	TimestampTz anchored_at = 0;	/* ticks due before this are not late */

	/* no database: visible in pg_stat_activity, in nobody's way */
	smx_worker_begin(SMX_TICKER_TYPE, SIG_IGN, NULL);

	smx_ticker_start_session();
	/* announce the pid last: sim_status() then sees a complete entry */
	pg_atomic_write_u32(&smx_shared->ticker.pid, (uint32) MyProcPid);
	on_shmem_exit(smx_ticker_exit, (Datum) 0);
	ereport(LOG,
			(errmsg("sim_metrics ticker started%s",
					pg_atomic_read_u32(&smx_shared->paused) ? " (paused)" : "")));

	smx_loop_cxt = AllocSetContextCreate(TopMemoryContext, "sim_metrics ticker loop",
										 ALLOCSET_DEFAULT_SIZES);
	next_tick = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), smx_tick_interval_ms);

	for (;;)
	{
		TimestampTz now;
		bool		ready;
		long		timeout_ms;

		MemoryContextSwitchTo(smx_loop_cxt);
		SMX_RESET_CONTEXT(smx_loop_cxt);

		if (ConfigReloadPending)
		{
			TimestampTz last = next_tick - (TimestampTz) smx_tick_interval_ms * 1000;

			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			/* a new interval counts from the last tick */
			next_tick = TimestampTzPlusMilliseconds(last, smx_tick_interval_ms);
			LWLockAcquire(smx_shared->publish_lock, LW_EXCLUSIVE);
			smx_shared->ticker.interval_ms = smx_tick_interval_ms;
			LWLockRelease(smx_shared->publish_lock);
		}

		now = GetCurrentTimestamp();
		ready = OidIsValid(smx_shared->fleet.extension);
		/* a backfill holding the fleet pauses it: no catch-up after it */
		if (!ready || pg_atomic_read_u32(&smx_shared->paused) != 0 ||
			smx_backfill_holds_fleet())
		{
			was_running = false;
			timeout_ms = ready ? smx_tick_interval_ms : SMX_IDLE_POLL_MS;
		}
		else
		{
			/*
			 * Resuming, or a first fleet, starts a full interval later; so
			 * does a wall clock set back (else ticks would stop until it
			 * caught up again).
			 */
			if (!was_running ||
				next_tick > TimestampTzPlusMilliseconds(now, 2 * smx_tick_interval_ms))
			{
				next_tick = smx_ticker_anchor(now);
				anchored_at = now;
			}
			was_running = true;
			if (now >= next_tick)
			{
				if (smx_ticker_catch_up(&next_tick, now, anchored_at))
				{
					failures = 0;
					/* new samples and state: the mirror follows the ticks */
					if (smx_redis_host && smx_redis_host[0])
						smx_wake_mirror();
				}
				else if (++failures >= SMX_MAX_FAILURES)
				{
					ereport(LOG,
							(errmsg("sim_metrics ticker exiting after %d failed ticks in a row",
									failures)));
					proc_exit(1);
				}
				now = GetCurrentTimestamp();
			}
			timeout_ms = smx_ms_until(next_tick, now, smx_tick_interval_ms);
		}

		smx_worker_wait(timeout_ms);
		if (ShutdownRequestPending)
		{
			ereport(LOG,
					(errmsg("sim_metrics ticker is exiting at tick " UINT64_FORMAT,
							smx_shared->fleet.tick)));
			/* code 1: after pg_terminate_backend a new ticker starts */
			proc_exit(1);
		}
	}
}

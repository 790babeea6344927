/*
 * readers.c — sim_current_metrics() and sim_status(): the reads of the hot
 * layer.
 *
 * Readers copy what they need from shared memory under publish_lock shared
 * and build tuples only after releasing it, so a slow client never holds
 * up a tick. (The control functions are in control.c.)
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "access/xact.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "sim_metrics.h"

PG_FUNCTION_INFO_V1(sim_current_metrics);
/*
 * What sim_status() copies under publish_lock: whole blocks where it
 * reports most of them, single fields of the ring and the ticker.
 */
typedef struct SmxStatusCopy
{
	/* copied under publish_lock shared */
	SmxFleet	fleet;
	SmxErrorStatus error;
	double		ticker_lag_ms;
	int			ticker_interval_ms;
	char		writer_state[32];
	TimestampTz writer_last_flush_at;
	char		mirror_state[32];
	char		mirror_last_error[SMX_ERROR_LEN];
	int64		mirror_errors;
	uint64		ring_capacity;
	uint64		ring_pending;
	int64		ring_flushed;
	int64		ring_dropped;
	int64		ring_rejected;
	/* atomics, read without the lock */
	int64		ticker_late_ticks;
	int64		writer_flush_errors;
	int64		writer_notifications;
	int64		writer_realtime_messages;
	int64		writer_realtime_errors;
	int64		mirror_writes;
	int64		mirror_skipped;
} SmxStatusCopy;

PG_FUNCTION_INFO_V1(sim_status);

#define SMX_STATUS_COLS		36


/*
 * sim_current_metrics() of 1.9, a C set-returning function, kept for
 * clusters not yet updated to 1.10 (where the function reads sim_current):
 * the same copy of the fleet as sim_current's scan, into a tuplestore.
 */
Datum
sim_current_metrics(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	smx_require_fleet_database();
	InitMaterializedSRF(fcinfo, 0);
	smx_current_put_fleet(rsinfo->setResult, rsinfo->setDesc);
	return (Datum) 0;
}

/*
 * sim_status(): one row describing the simulator and its worker.
 */
Datum
sim_status(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[SMX_STATUS_COLS];
	bool		nulls[SMX_STATUS_COLS];
	SmxStatusCopy *sp = palloc(sizeof(SmxStatusCopy));
	int			pid;
	int			writer_pid;
	int			active = 0;

	smx_require_fleet_database();
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	LWLockAcquire(smx_shared->publish_lock, LW_SHARED);
	sp->fleet = smx_shared->fleet;
	sp->ticker_lag_ms = smx_shared->ticker.lag_ms;
	sp->ticker_interval_ms = smx_shared->ticker.interval_ms;
	memcpy(sp->writer_state, smx_shared->writer.state, sizeof(sp->writer_state));
	sp->writer_last_flush_at = smx_shared->writer.last_flush_at;
	memcpy(sp->mirror_state, smx_shared->mirror.state, sizeof(sp->mirror_state));
	memcpy(sp->mirror_last_error, smx_shared->mirror.last_error, sizeof(sp->mirror_last_error));
	sp->mirror_errors = smx_shared->mirror.errors;
	sp->error = smx_shared->error;
	sp->ring_capacity = smx_shared->ring.capacity;
	sp->ring_pending = smx_shared->ring.head - smx_shared->ring.tail;
	sp->ring_flushed = smx_shared->ring.flushed;
	sp->ring_dropped = smx_shared->ring.dropped;
	sp->ring_rejected = smx_shared->ring.rejected;
	for (int r = 0; r < SMX_MAX_RUNS; r++)
		if (smx_shared->scen.runs[r].state == SMX_RUN_PENDING ||
			smx_shared->scen.runs[r].state == SMX_RUN_ACTIVE)
			active++;
	LWLockRelease(smx_shared->publish_lock);
	sp->ticker_late_ticks = (int64) pg_atomic_read_u64(&smx_shared->ticker.late_ticks);
	sp->writer_flush_errors = (int64) pg_atomic_read_u64(&smx_shared->writer.flush_errors);
	sp->writer_notifications = (int64) pg_atomic_read_u64(&smx_shared->writer.notifications);
	sp->writer_realtime_messages = (int64) pg_atomic_read_u64(&smx_shared->writer.realtime_messages);
	sp->writer_realtime_errors = (int64) pg_atomic_read_u64(&smx_shared->writer.realtime_errors);
	sp->mirror_writes = (int64) pg_atomic_read_u64(&smx_shared->mirror.writes);
	sp->mirror_skipped = (int64) pg_atomic_read_u64(&smx_shared->mirror.skipped);
	pid = (int) pg_atomic_read_u32(&smx_shared->ticker.pid);

	memset(nulls, 0, sizeof(nulls));
	values[0] = BoolGetDatum(pid != 0);
	values[1] = BoolGetDatum(pg_atomic_read_u32(&smx_shared->paused) != 0);
	values[2] = CStringGetTextDatum(sp->fleet.session_id);
	nulls[2] = sp->fleet.session_id[0] == '\0';
	values[3] = Int32GetDatum(sp->fleet.nservers);
	values[4] = Int64GetDatum((int64) sp->fleet.tick);
	values[5] = TimestampTzGetDatum(sp->fleet.last_tick_at);
	nulls[5] = sp->fleet.last_tick_at == 0;
	values[6] = Float8GetDatum(sp->fleet.tick_ms);
	nulls[6] = sp->fleet.last_tick_at == 0;
	values[7] = Int32GetDatum(pid);
	nulls[7] = pid == 0;
	values[8] = CStringGetTextDatum(sp->error.message);
	nulls[8] = sp->error.message[0] == '\0';
	values[9] = TimestampTzGetDatum(sp->error.at);
	nulls[9] = sp->error.at == 0;
	if (smx_backfill_holds_fleet())
	{
		char		bf[128];

		smx_backfill_status_text(bf, sizeof(bf));
		values[10] = CStringGetTextDatum(bf);
	}
	else
		values[10] = CStringGetTextDatum(pid != 0 ? sp->fleet.state : "not running");
	{
		TimestampTz sim_time = 0;

		nulls[11] = !sp->fleet.clock_set ||
			!smx_epoch_to_timestamptz(sp->fleet.start_epoch + (double) sp->fleet.tick * sp->fleet.step_seconds,
									  &sim_time);
		values[11] = TimestampTzGetDatum(sim_time);
	}
	/* the interval the worker applies; this session's setting when none runs */
	values[12] = Int32GetDatum(pid != 0 ? sp->ticker_interval_ms : smx_tick_interval_ms);
	values[13] = Int32GetDatum(sp->fleet.capacity);
	values[14] = Int32GetDatum(sp->fleet.skipped_servers);
	values[15] = Int64GetDatum(sp->error.count);
	values[16] = Int64GetDatum((int64) sp->ring_pending);
	values[17] = TimestampTzGetDatum(sp->writer_last_flush_at);
	nulls[17] = sp->writer_last_flush_at == 0;
	values[18] = Int64GetDatum(sp->ring_flushed);
	values[19] = Int64GetDatum(sp->ring_dropped);
	values[20] = Int64GetDatum(sp->writer_flush_errors);
	values[21] = Int64GetDatum((int64) sp->ring_capacity);
	/* 1.1: the ticker's schedule, dead letters, the writer */
	values[22] = Int64GetDatum(sp->ticker_late_ticks);
	values[23] = Float8GetDatum(sp->ticker_lag_ms);
	nulls[23] = sp->fleet.last_tick_at == 0;
	values[24] = Int64GetDatum(sp->ring_rejected);
	writer_pid = (int) pg_atomic_read_u32(&smx_shared->writer.pid);
	values[25] = Int32GetDatum(writer_pid);
	nulls[25] = writer_pid == 0;
	values[26] = CStringGetTextDatum(writer_pid != 0 ? sp->writer_state : "not running");
	/* 1.2: the Redis mirror */
	values[27] = CStringGetTextDatum(sp->mirror_state);
	values[28] = CStringGetTextDatum(sp->mirror_last_error);
	nulls[28] = sp->mirror_last_error[0] == '\0';
	values[29] = Int64GetDatum(sp->mirror_errors);
	values[30] = Int64GetDatum(sp->mirror_writes);
	values[31] = Int64GetDatum(sp->mirror_skipped);
	/* 1.4: scenario runs pending or acting */
	values[32] = Int32GetDatum(active);
	/* 1.5: live push */
	values[33] = Int64GetDatum(sp->writer_notifications);
	values[34] = Int64GetDatum(sp->writer_realtime_messages);
	values[35] = Int64GetDatum(sp->writer_realtime_errors);

	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

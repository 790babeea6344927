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
#include "executor/tuptable.h"
#include "utils/memutils.h"
#include "utils/tuplestore.h"

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
 * Per-backend read cache. The descriptive columns change only when the
 * server list does (fleet_version), so their text datums are built once
 * and reused; each call then copies just the 64-byte states under the lock.
 * The buffers live for the backend, so repeated reads do not fault in fresh
 * pages every call.
 */
#define SMX_TEXT_COLS	SMX_CURRENT_DESC_COLS

static MemoryContext smx_reader_cxt = NULL;
static MemoryContext smx_reader_text_cxt = NULL;
static uint64 smx_reader_fleet = 0;	/* fleet_version the cache holds */
static bool smx_reader_valid = false;
static int	smx_reader_cap = 0;
static smx_state *smx_reader_state = NULL;
static SmxServerDesc *smx_reader_desc = NULL;
static uint8 *smx_reader_role = NULL;
static Datum *smx_reader_text = NULL;	/* SMX_TEXT_COLS per server */
/* the scenario of each run slot (smx_state.run), copied with the states */
static char smx_reader_runs[SMX_MAX_RUNS + 1][SMX_SCENARIO_LEN];

/* Make the buffers hold at least n servers; contents are not kept. */
static void
smx_reader_reserve(int n)
{
	if (smx_reader_cxt == NULL)
		smx_reader_cxt = AllocSetContextCreate(TopMemoryContext,
											   "sim_metrics reader",
											   ALLOCSET_DEFAULT_SIZES);
	if (n <= smx_reader_cap)
		return;
	n = Max(n, 64);
	/* allocate all first: an OOM leaves the old buffers in place */
	{
		smx_state  *state;
		SmxServerDesc *desc;
		uint8	   *role;

		smx_alloc_fleet_copy(smx_reader_cxt, n, &state, &desc, &role);
		if (smx_reader_state)
		{
			pfree(smx_reader_state);
			pfree(smx_reader_desc);
			pfree(smx_reader_role);
		}
		smx_reader_state = state;
		smx_reader_desc = desc;
		smx_reader_role = role;
		smx_reader_cap = n;
		smx_reader_valid = false;
	}
}

/* Rebuild the text datums from smx_reader_desc / smx_reader_role. */
static void
smx_reader_build_text(int n)
{
	MemoryContext old;

	if (smx_reader_text_cxt == NULL)
		smx_reader_text_cxt = AllocSetContextCreate(smx_reader_cxt,
													"sim_metrics reader text",
													ALLOCSET_DEFAULT_SIZES);
	else
		MemoryContextReset(smx_reader_text_cxt);
	smx_reader_text = MemoryContextAllocHuge(smx_reader_text_cxt,
											 sizeof(Datum) * SMX_TEXT_COLS * Max(n, 1));
	old = MemoryContextSwitchTo(smx_reader_text_cxt);
	for (int i = 0; i < n; i++)
		smx_current_desc_text(&smx_reader_text[i * SMX_TEXT_COLS], &smx_reader_desc[i],
							  smx_reader_role[i]);
	MemoryContextSwitchTo(old);
}

/*
 * Formed rows of the last state read (SMX_ROW_CACHE_MAX servers at most):
 * the state changes once a tick, dashboards read far more often, so a read
 * of an unchanged state copies finished tuples instead of forming them.
 */
#define SMX_ROW_CACHE_MAX	10000

static MemoryContext smx_rows_cxt = NULL;
static MinimalTuple *smx_rows = NULL;
static int	smx_rows_n = 0;
static int	smx_rows_natts = 0;
static uint64 smx_rows_version = 0;	/* state_version the rows show */
static bool smx_rows_valid = false;

/* The values of one row of sim_current_metrics() into values/nulls. */
static void
smx_current_row(int i, Datum *values, bool *nulls, uint64 tick, TimestampTz sim_time,
				bool sim_time_valid, TimestampTz updated_at)
{
	SmxCurrentRow r;

	smx_current_from_state(&r, &smx_reader_state[i], smx_reader_runs,
						   &smx_reader_text[i * SMX_TEXT_COLS], tick, sim_time,
						   sim_time_valid, updated_at);
	smx_current_row_values(&r, values, nulls);
}

/*
 * Copy what a read needs under the shared lock: the states (unless the
 * formed rows are current), and the descriptions when the fleet changed.
 * Buffers are sized beforehand from an unlocked read of nservers; if a
 * reload grew the fleet in between we release and try again. No
 * allocation happens under the lock. Returns the number of servers;
 * *version gets the state_version read.
 */
static int
smx_current_copy(uint64 *version, bool *fleet_changed, uint64 *tick,
				 TimestampTz *updated_at, TimestampTz *sim_time, bool *sim_time_valid)
{
	int			n;

	for (;;)
	{
		smx_reader_reserve(smx_shared->fleet.nservers);
		LWLockAcquire(smx_shared->publish_lock, LW_SHARED);
		if (smx_shared->fleet.nservers <= smx_reader_cap)
			break;
		LWLockRelease(smx_shared->publish_lock);
	}
	n = smx_shared->fleet.nservers;
	*version = smx_shared->fleet.state_version;
	*fleet_changed = !smx_reader_valid || smx_reader_fleet != smx_shared->fleet.version;
	if (*fleet_changed)
	{
		smx_params *params = smx_shared_params();

		memcpy(smx_reader_desc, smx_shared_desc(), n * sizeof(SmxServerDesc));
		for (int i = 0; i < n; i++)
			smx_reader_role[i] = params[i].role;
		smx_reader_fleet = smx_shared->fleet.version;
	}
	if (!smx_rows_valid || smx_rows_version != *version || *fleet_changed)
	{
		memcpy(smx_reader_state, smx_shared_state(), n * sizeof(smx_state));
		smx_copy_run_names(smx_reader_runs);
	}
	*tick = smx_shared->fleet.tick;
	*updated_at = smx_shared->fleet.last_tick_at;
	*sim_time_valid = smx_epoch_to_timestamptz(smx_sim_epoch_at(*tick), sim_time);
	LWLockRelease(smx_shared->publish_lock);
	return n;
}

/* Form the n rows into the row cache (n <= SMX_ROW_CACHE_MAX). */
static void
smx_rows_build(TupleDesc desc, int n, uint64 tick, TimestampTz sim_time,
			   bool sim_time_valid, TimestampTz updated_at)
{
	Datum		values[SMX_CURRENT_COLS];
	bool		nulls[SMX_CURRENT_COLS];
	MemoryContext old;

	smx_rows_valid = false;
	if (smx_rows_cxt == NULL)
		smx_rows_cxt = AllocSetContextCreate(smx_reader_cxt, "sim_metrics reader rows",
											 ALLOCSET_DEFAULT_SIZES);
	else
		MemoryContextReset(smx_rows_cxt);
	old = MemoryContextSwitchTo(smx_rows_cxt);
	smx_rows = palloc(sizeof(MinimalTuple) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		smx_current_row(i, values, nulls, tick, sim_time, sim_time_valid, updated_at);
		smx_rows[i] = heap_form_minimal_tuple(desc, values, nulls);
	}
	MemoryContextSwitchTo(old);
	smx_rows_n = n;
	smx_rows_natts = desc->natts;
}

/*
 * sim_current_metrics(): one row per live server, from shared memory.
 */
Datum
sim_current_metrics(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int			n;
	bool		fleet_changed;
	uint64		version;
	uint64		tick;
	TimestampTz updated_at;
	TimestampTz sim_time = 0;
	bool		sim_time_valid;

	smx_require_fleet_database();
	InitMaterializedSRF(fcinfo, 0);

	n = smx_current_copy(&version, &fleet_changed, &tick, &updated_at, &sim_time,
						 &sim_time_valid);
	if (fleet_changed)
	{
		/* invalid until rebuilt, in case building fails half way */
		smx_reader_valid = false;
		smx_rows_valid = false;
		smx_reader_build_text(n);
		smx_reader_valid = true;
	}

	if (n <= SMX_ROW_CACHE_MAX)
	{
		TupleTableSlot *slot;

		if (!smx_rows_valid || smx_rows_version != version ||
			smx_rows_natts != rsinfo->setDesc->natts)
		{
			smx_rows_build(rsinfo->setDesc, n, tick, sim_time, sim_time_valid, updated_at);
			smx_rows_version = version;
			smx_rows_valid = true;
		}
		slot = MakeSingleTupleTableSlot(rsinfo->setDesc, &TTSOpsMinimalTuple);
		for (int i = 0; i < smx_rows_n; i++)
		{
			ExecStoreMinimalTuple(smx_rows[i], slot, false);
			tuplestore_puttupleslot(rsinfo->setResult, slot);
		}
		ExecDropSingleTupleTableSlot(slot);
		return (Datum) 0;
	}

	for (int i = 0; i < n; i++)
	{
		Datum		values[SMX_CURRENT_COLS];
		bool		nulls[SMX_CURRENT_COLS];

		smx_current_row(i, values, nulls, tick, sim_time, sim_time_valid, updated_at);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
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

/*
 * history.c — the cold layer: every sample into server_metrics_history.
 *
 * Each tick appends one sample per server to a ring in shared memory, so a
 * worker restart loses nothing. Flushes move [ring_tail, ring_head) to the
 * table in batches: one INSERT ... SELECT FROM unnest(arrays) per batch
 * through a kept SPI plan. ring_tail moves only after the insert commits,
 * so a failed or rolled-back flush leaves the samples for the next try.
 * One flusher at a time: a transaction-level advisory lock, which also
 * goes away by itself if the flusher dies.
 *
 * When the ring is full the newest samples are dropped (the pending ones
 * are never overwritten), counted in sim_status().dropped_samples and
 * logged at most once a minute.
 */
#include "postgres.h"

#include <math.h>

#include "access/xact.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "sim_metrics.h"

#define SMX_FLUSH_BATCH			10000	/* rows per INSERT statement */
#define SMX_FLUSH_LOCK_TIMEOUT	"200ms"
#define SMX_FINAL_LOCK_TIMEOUT	"2s"	/* the exit flush waits a little */
#define SMX_WORKER_FLUSH_ROWS	100000	/* samples per worker flush transaction */
#define SMX_RETENTION_BATCH		10000
#define SMX_DROP_LOG_INTERVAL_MS 60000

/* Advisory lock key of the flusher: ('S','M','X', 1) */
#define SMX_FLUSH_LOCK_KEY1		0x534d58
#define SMX_FLUSH_LOCK_KEY2		1

PG_FUNCTION_INFO_V1(sim_flush);
PG_FUNCTION_INFO_V1(sim_history);

/* ------------------------------------------------------------------------
 * Ring
 * ------------------------------------------------------------------------ */

/* The ring's pending range [*tail, *head), read under the shared lock. */
void
smx_ring_bounds(uint64 *tail, uint64 *head)
{
	LWLockAcquire(smx_shared->lock, LW_SHARED);
	*tail = smx_shared->ring_tail;
	*head = smx_shared->ring_head;
	LWLockRelease(smx_shared->lock);
}

/* Free slots in the ring (never more than the truth: tail only grows). */
uint64
smx_ring_free(void)
{
	uint64		tail,
				head;

	smx_ring_bounds(&tail, &head);
	return smx_shared->ring_capacity - (head - tail);
}

static inline int16
smx_hundredths(float v)
{
	return (int16) lrintf(v * 100.0f);
}

/*
 * Append one tick's samples at *head (a private copy of ring_head that the
 * caller publishes). Caller must hold sim_lock. When the ring has no room
 * for the whole tick, the tick's samples are dropped and counted.
 */
void
smx_history_append(const smx_state *state, const int32 *id_ref, int n,
				   uint64 tick, double sim_epoch, uint64 *head, uint64 tail,
				   int64 *dropped)
{
	SmxSample  *ring = smx_shared_ring();
	uint64		cap = smx_shared->ring_capacity;
	uint8		session = smx_shared->session_slot;
	TimestampTz ts;

	if (n == 0)
		return;
	if (*head - tail + n > cap)
	{
		*dropped += n;
		return;
	}
	if (!smx_epoch_to_timestamptz(sim_epoch, &ts))
		ts = DT_NOEND;			/* beyond the timestamptz range */
	for (int i = 0; i < n; i++)
	{
		SmxSample  *s = &ring[(*head + i) % cap];

		s->tick = (int64) tick;
		s->sim_time = ts;
		s->network_io = state[i].network_io;
		s->scenario_run = 0;
		s->id_ref = id_ref[i];
		s->cpu = smx_hundredths(state[i].cpu);
		s->memory = smx_hundredths(state[i].memory);
		s->disk = smx_hundredths(state[i].disk);
		s->status = state[i].status;
		s->session = session;
	}
	*head += n;
}

/*
 * Wait until the ring has room for `need` samples or the deadline passes,
 * asking the worker to flush. Used by backends stepping many ticks; the
 * caller must not hold sim_lock. Without room by the deadline the samples
 * that do not fit are dropped and counted.
 */
void
smx_wait_ring_room(uint64 need, TimestampTz deadline)
{
	need = Min(need, smx_shared->ring_capacity);
	ConditionVariablePrepareToSleep(&smx_shared->ring_cv);
	while (smx_ring_free() < need && GetCurrentTimestamp() < deadline &&
		   pg_atomic_read_u32(&smx_shared->worker_pid) != 0)
	{
		pg_atomic_write_u32(&smx_shared->flush_requested, 1);
		smx_wake_worker();
		(void) ConditionVariableTimedSleep(&smx_shared->ring_cv, 1000,
										   SMX_WAIT_EVENT_MAIN);
	}
	ConditionVariableCancelSleep();
}

/* Move ring_tail to upto after a committed flush of rows samples. */
static void
smx_ring_advance(uint64 upto, int64 rows)
{
	LWLockAcquire(smx_shared->lock, LW_EXCLUSIVE);
	if (upto > smx_shared->ring_tail)
		smx_shared->ring_tail = upto;
	smx_shared->flushed_total += rows;
	smx_shared->last_flush_rows = rows;
	smx_shared->last_flush_at = GetCurrentTimestamp();
	smx_shared->flush_clock = smx_shared->last_flush_at;
	LWLockRelease(smx_shared->lock);
	pg_atomic_write_u32(&smx_shared->flush_requested, 0);
	ConditionVariableBroadcast(&smx_shared->ring_cv);
}

/* ------------------------------------------------------------------------
 * Id pool
 * ------------------------------------------------------------------------ */

/*
 * Give every server of the new list an id pool entry: servers that stay
 * (old_index[i] >= 0: their index in the current fleet) keep theirs, new
 * ones take a free entry, removed ones are retired at the current tick.
 * Caller must hold sim_lock. Returns false (nothing changed) when the pool
 * has no free entry: it is then full of retired servers whose samples
 * still wait for a flush.
 */
bool
smx_id_pool_assign(const SmxServerDesc *desc, const int *old_index, int n,
				   int old_n, int32 *id_ref_out)
{
	SmxIdEntry *pool = smx_shared_id_pool();
	int32	   *old_ref = smx_shared_id_ref();
	int			pool_size = smx_shared->id_pool_size;
	int64		oldest_pending;
	int			next_free = 0;
	bool	   *kept = palloc0(sizeof(bool) * Max(old_n, 1));

	/* tick of the oldest sample still in the ring (no lock: see shmem.c) */
	{
		uint64		tail,
					head;

		smx_ring_bounds(&tail, &head);
		oldest_pending = tail < head ?
			smx_shared_ring()[tail % smx_shared->ring_capacity].tick : PG_INT64_MAX;
	}

	/* allocate; an entry is free if unused or retired before oldest_pending */
	for (int i = 0; i < n; i++)
	{
		if (old_index[i] >= 0 && old_ref[old_index[i]] >= 0)
		{
			id_ref_out[i] = old_ref[old_index[i]];
			kept[old_index[i]] = true;
			continue;
		}
		while (next_free < pool_size &&
			   pool[next_free].used &&
			   !(pool[next_free].retired_tick >= 0 &&
				 pool[next_free].retired_tick < oldest_pending))
			next_free++;
		if (next_free >= pool_size)
			return false;
		id_ref_out[i] = next_free++;
	}

	/* commit: retire removed servers, fill new entries */
	for (int k = 0; k < old_n; k++)
		if (!kept[k] && old_ref[k] >= 0)
			pool[old_ref[k]].retired_tick = (int64) smx_shared->tick;
	for (int i = 0; i < n; i++)
	{
		SmxIdEntry *e = &pool[id_ref_out[i]];

		if (old_index[i] >= 0)
			continue;			/* kept */
		memcpy(e->id, desc[i].id, SMX_ID_LEN);
		e->retired_tick = -1;
		e->used = true;
	}
	return true;
}

/* ------------------------------------------------------------------------
 * Flush
 * ------------------------------------------------------------------------ */

static SPIPlanPtr smx_insert_plan = NULL;
static Oid	smx_insert_plan_nsp = InvalidOid;

/* The kept INSERT plan for the history table of schema nsp. */
static SPIPlanPtr
smx_get_insert_plan(Oid nsp)
{
	Oid			argtypes[10] = {TEXTARRAYOID, NUMERICARRAYOID, NUMERICARRAYOID,
		NUMERICARRAYOID, INT8ARRAYOID, TEXTARRAYOID, TIMESTAMPTZARRAYOID,
	TEXTARRAYOID, INT8ARRAYOID, INT8ARRAYOID};
	StringInfoData sql;
	SPIPlanPtr	plan;

	if (smx_insert_plan != NULL && smx_insert_plan_nsp == nsp)
		return smx_insert_plan;
	if (smx_insert_plan != NULL)
	{
		SPI_freeplan(smx_insert_plan);
		smx_insert_plan = NULL;
	}
	initStringInfo(&sql);
	appendStringInfo(&sql,
					 "INSERT INTO %s.server_metrics_history"
					 " (server_id, cpu_usage, memory_usage, disk_usage, network_io,"
					 "  status, \"timestamp\", session_id, tick, scenario_run_id)"
					 " SELECT pg_catalog.unnest($1), pg_catalog.unnest($2),"
					 "  pg_catalog.unnest($3), pg_catalog.unnest($4), pg_catalog.unnest($5),"
					 "  pg_catalog.unnest($6), pg_catalog.unnest($7), pg_catalog.unnest($8),"
					 "  pg_catalog.unnest($9), pg_catalog.unnest($10)",
					 quote_identifier(get_namespace_name(nsp)));
	plan = SPI_prepare(sql.data, 10, argtypes);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed for the history insert: %s",
			 SPI_result_code_string(SPI_result));
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "SPI_keepplan failed");
	smx_insert_plan = plan;
	smx_insert_plan_nsp = nsp;
	return plan;
}

/*
 * numeric datums of the hundredths 0..10000 (0.00 .. 100.00), built once
 * per backend: a flush then allocates no numeric per value.
 */
static Datum *smx_numeric_cache = NULL;

static Datum
smx_hundredths_numeric(int16 v)
{
	if (v < 0 || v > 10000)
		return NumericGetDatum(int64_div_fast_to_numeric(v, 2));
	if (smx_numeric_cache == NULL)
		smx_numeric_cache = MemoryContextAllocZero(TopMemoryContext, sizeof(Datum) * 10001);
	if (smx_numeric_cache[v] == (Datum) 0)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		smx_numeric_cache[v] = NumericGetDatum(int64_div_fast_to_numeric(v, 2));
		MemoryContextSwitchTo(old);
	}
	return smx_numeric_cache[v];
}

/* A one-dimensional array of n elements (nulls may be NULL: none). */
static Datum
smx_array(Datum *elems, bool *nulls, int n, Oid type)
{
	int16		typlen;
	bool		typbyval;
	char		typalign;
	int			dims[1] = {n};
	int			lbs[1] = {1};

	get_typlenbyvalalign(type, &typlen, &typbyval, &typalign);
	return PointerGetDatum(construct_md_array(elems, nulls, 1, dims, lbs, type,
											  typlen, typbyval, typalign));
}

/*
 * A flush moves ring_tail when its transaction commits, from the commit
 * callback: that runs before the transaction's locks (the flusher's
 * advisory lock among them) are released, so the next flusher always sees
 * the new tail. A rolled-back transaction or subtransaction leaves the
 * samples in the ring; PREPARE TRANSACTION is refused.
 */
static uint64 smx_xact_flush_upto = 0;
static int64 smx_xact_flush_rows = 0;
static SubTransactionId smx_xact_flush_subxid = InvalidSubTransactionId;
static bool smx_flush_callbacks_registered = false;

static void
smx_flush_forget(void)
{
	smx_xact_flush_upto = 0;
	smx_xact_flush_rows = 0;
	smx_xact_flush_subxid = InvalidSubTransactionId;
}

static void
smx_flush_xact_callback(XactEvent event, void *arg)
{
	if (smx_xact_flush_upto == 0)
		return;
	switch (event)
	{
		case XACT_EVENT_PRE_PREPARE:
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cannot PREPARE a transaction that has called sim_flush()")));
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			smx_ring_advance(smx_xact_flush_upto, smx_xact_flush_rows);
			smx_flush_forget();
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			smx_flush_forget();
			break;
		default:
			break;
	}
}

static void
smx_flush_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						   SubTransactionId parentSubid, void *arg)
{
	if (smx_xact_flush_upto == 0 || smx_xact_flush_subxid != mySubid)
		return;
	if (event == SUBXACT_EVENT_ABORT_SUB)
		smx_flush_forget();
	else if (event == SUBXACT_EVENT_COMMIT_SUB)
		smx_xact_flush_subxid = parentSubid;
}

/* Remember that this (sub)transaction flushed the ring up to upto. */
static void
smx_flush_remember(uint64 upto, int64 rows)
{
	if (!smx_flush_callbacks_registered)
	{
		RegisterXactCallback(smx_flush_xact_callback, NULL);
		RegisterSubXactCallback(smx_flush_subxact_callback, NULL);
		smx_flush_callbacks_registered = true;
	}
	smx_xact_flush_upto = upto;
	smx_xact_flush_rows = rows;
	smx_xact_flush_subxid = GetCurrentSubTransactionId();
}

/*
 * Insert up to max_rows pending samples, from ring_tail on, into the
 * history table, in the current transaction, in statements of
 * SMX_FLUSH_BATCH rows. ring_tail moves when the transaction commits.
 * One flusher at a time (a transaction-level advisory lock): the worker
 * does not wait for another flusher, nor for a locked table, unless
 * `final` (its exit flush, which waits a little); a backend waits.
 * Must be called inside a transaction, not connected to SPI. Returns the
 * rows written.
 */
static int64
smx_flush_pending(bool from_worker, bool final, uint64 max_rows)
{
	LOCKTAG		tag;
	Oid			ext;
	Oid			nsp;
	uint64		tail,
				head;
	SmxSample  *ring = smx_shared_ring();
	SmxIdEntry *pool = smx_shared_id_pool();
	uint64		cap = smx_shared->ring_capacity;
	int64		rows = 0;
	Datum		status_text[4];
	Datum		session_text[SMX_SESSIONS];

	if (smx_xact_flush_upto != 0)
		return 0;				/* already flushed in this transaction */

	if (from_worker)
	{
		/*
		 * Bounded waits only: lock_timeout covers the advisory lock, the
		 * catalog and the table (partitions, indexes) met on the way;
		 * synchronous_commit = local keeps a missing standby from holding up
		 * the exit.
		 */
		(void) set_config_option("lock_timeout", final ? SMX_FINAL_LOCK_TIMEOUT : SMX_FLUSH_LOCK_TIMEOUT,
								 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_LOCAL,
								 true, 0, false);
		(void) set_config_option("synchronous_commit", "local",
								 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_LOCAL,
								 true, 0, false);
	}

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, SMX_FLUSH_LOCK_KEY1, SMX_FLUSH_LOCK_KEY2, 2);
	if (LockAcquire(&tag, ExclusiveLock, false, from_worker && !final) == LOCKACQUIRE_NOT_AVAIL)
		ereport(ERROR,
				(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
				 errmsg("another session is flushing history; flush postponed"),
				 errhint("A transaction that called sim_flush() holds the flush until it ends.")));

	smx_ring_bounds(&tail, &head);
	if (head - tail > max_rows)
		head = tail + max_rows;
	if (head == tail)
		return 0;

	nsp = smx_extension_schema(&ext);
	if (!OidIsValid(ext))
		return 0;

	if (from_worker && !final)
	{
		Oid			relid = get_relname_relid("server_metrics_history", nsp);

		/* a locked table must not stall the worker's ticks: retry later */
		if (OidIsValid(relid) && !ConditionalLockRelationOid(relid, RowExclusiveLock))
			ereport(ERROR,
					(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
					 errmsg("server_metrics_history is locked by another session; flush postponed"),
					 errdetail("%llu samples stay buffered until a flush succeeds.",
							   (unsigned long long) (head - tail))));
	}

	for (int i = 0; i < 4; i++)
		status_text[i] = CStringGetTextDatum(smx_status_names[i]);
	LWLockAcquire(smx_shared->lock, LW_SHARED);
	for (int i = 0; i < SMX_SESSIONS; i++)
		session_text[i] = CStringGetTextDatum(smx_shared->sessions[i]);
	LWLockRelease(smx_shared->lock);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	{
		SPIPlanPtr	plan = smx_get_insert_plan(nsp);
		int			batch = (int) Min((uint64) SMX_FLUSH_BATCH, head - tail);
		Datum	   *ids = palloc(sizeof(Datum) * batch);
		Datum	   *cpu = palloc(sizeof(Datum) * batch);
		Datum	   *mem = palloc(sizeof(Datum) * batch);
		Datum	   *disk = palloc(sizeof(Datum) * batch);
		Datum	   *net = palloc(sizeof(Datum) * batch);
		Datum	   *status = palloc(sizeof(Datum) * batch);
		Datum	   *ts = palloc(sizeof(Datum) * batch);
		Datum	   *sess = palloc(sizeof(Datum) * batch);
		bool	   *sess_null = palloc(sizeof(bool) * batch);
		Datum	   *tick = palloc(sizeof(Datum) * batch);
		Datum	   *run = palloc(sizeof(Datum) * batch);
		bool	   *run_null = palloc(sizeof(bool) * batch);
		/* server_id text datums, built once per id pool entry and flush */
		Datum	   *id_text = palloc0(sizeof(Datum) * smx_shared->id_pool_size);
		uint64		pos = tail;

		while (pos < head)
		{
			int			k = (int) Min((uint64) batch, head - pos);
			Datum		args[10];
			int			ret;

			for (int i = 0; i < k; i++)
			{
				SmxSample  *s = &ring[(pos + i) % cap];

				if (id_text[s->id_ref] == (Datum) 0)
					id_text[s->id_ref] = CStringGetTextDatum(pool[s->id_ref].id);
				ids[i] = id_text[s->id_ref];
				cpu[i] = smx_hundredths_numeric(s->cpu);
				mem[i] = smx_hundredths_numeric(s->memory);
				disk[i] = smx_hundredths_numeric(s->disk);
				net[i] = Int64GetDatum(s->network_io);
				status[i] = status_text[s->status & 3];
				ts[i] = TimestampTzGetDatum(s->sim_time);
				sess_null[i] = s->session >= SMX_SESSIONS;
				sess[i] = sess_null[i] ? (Datum) 0 : session_text[s->session];
				tick[i] = Int64GetDatum(s->tick);
				run[i] = Int64GetDatum(s->scenario_run);
				run_null[i] = s->scenario_run == 0;
			}
			args[0] = smx_array(ids, NULL, k, TEXTOID);
			args[1] = smx_array(cpu, NULL, k, NUMERICOID);
			args[2] = smx_array(mem, NULL, k, NUMERICOID);
			args[3] = smx_array(disk, NULL, k, NUMERICOID);
			args[4] = smx_array(net, NULL, k, INT8OID);
			args[5] = smx_array(status, NULL, k, TEXTOID);
			args[6] = smx_array(ts, NULL, k, TIMESTAMPTZOID);
			args[7] = smx_array(sess, sess_null, k, TEXTOID);
			args[8] = smx_array(tick, NULL, k, INT8OID);
			args[9] = smx_array(run, run_null, k, INT8OID);

			ret = SPI_execute_plan(plan, args, NULL, false, 0);
			if (ret != SPI_OK_INSERT)
				elog(ERROR, "inserting into server_metrics_history failed: %s",
					 SPI_result_code_string(ret));
			rows += (int64) SPI_processed;
			for (int i = 0; i < 10; i++)
				pfree(DatumGetPointer(args[i]));
			pos += k;
		}
	}
	SPI_finish();
	smx_flush_remember(head, rows);
	return rows;
}

/*
 * The worker's flush: transactions of SMX_WORKER_FLUSH_ROWS samples each,
 * so a large backlog is written (and leaves the ring) piece by piece and
 * the worker gets back to its ticks after budget_ms. Returns rows written.
 * Errors propagate to the caller's guard.
 */
int64
smx_history_flush(bool final, int budget_ms)
{
	TimestampTz stop = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), budget_ms);
	MemoryContext cxt = CurrentMemoryContext;
	int64		total = 0;

	for (;;)
	{
		int64		rows;

		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		PushActiveSnapshot(GetTransactionSnapshot());
		pgstat_report_activity(STATE_RUNNING, "sim_metrics: flushing history");
		rows = smx_flush_pending(true, final, SMX_WORKER_FLUSH_ROWS);
		PopActiveSnapshot();
		CommitTransactionCommand();
		MemoryContextSwitchTo(cxt);
		pgstat_report_activity(STATE_IDLE, NULL);
		total += rows;
		if (rows < SMX_WORKER_FLUSH_ROWS)
			break;
		if (GetCurrentTimestamp() >= stop)
		{
			/* out of time: the rest goes at the next iteration */
			pg_atomic_write_u32(&smx_shared->flush_requested, 1);
			break;
		}
	}
	return total;
}

/* Whether the worker should flush now. */
bool
smx_history_flush_due(TimestampTz now)
{
	uint64		pending;
	TimestampTz last;

	LWLockAcquire(smx_shared->lock, LW_SHARED);
	pending = smx_shared->ring_head - smx_shared->ring_tail;
	last = smx_shared->flush_clock;
	LWLockRelease(smx_shared->lock);

	if (pending == 0)
		return false;
	return pending * 4 >= smx_shared->ring_capacity * 3 ||
		pg_atomic_read_u32(&smx_shared->flush_requested) != 0 ||
		now >= TimestampTzPlusMilliseconds(last, smx_flush_interval_ms);
}

/*
 * sim_flush(): write the buffered samples now, from this backend; returns
 * rows written. In a transaction block they leave the buffer only when it
 * commits; a second call in the same transaction writes nothing.
 */
Datum
sim_flush(PG_FUNCTION_ARGS)
{
	smx_require_fleet_database();
	if (IsInParallelMode())
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TRANSACTION_STATE),
				 errmsg("sim_flush() cannot run in a parallel worker")));
	PG_RETURN_INT64(smx_flush_pending(false, false, PG_UINT64_MAX));
}

/* ------------------------------------------------------------------------
 * Restore after a restart
 * ------------------------------------------------------------------------ */

/*
 * Read the latest history row of each of the n servers (an index probe per
 * server), so a restarted cluster continues each server from where its
 * chart stopped instead of jumping back to the baseline. Fills restored[i]
 * and found[i]; *max_tick and *max_tick_epoch get the newest tick seen.
 * Must run inside a transaction, not connected to SPI. Returns the number
 * of servers found.
 */
int
smx_restore_from_history(Oid nsp, const SmxServerDesc *desc,
						 const smx_params *params, int n, smx_state *restored,
						 bool *found, uint64 *max_tick, double *max_tick_epoch)
{
	StringInfoData sql;
	Datum	   *ids;
	Datum		arg;
	Oid			argtype = TEXTARRAYOID;
	int			ret;
	int			nfound = 0;

	*max_tick = 0;
	*max_tick_epoch = 0;
	memset(found, 0, sizeof(bool) * n);
	if (n == 0)
		return 0;

	ids = palloc(sizeof(Datum) * n);
	for (int i = 0; i < n; i++)
		ids[i] = CStringGetTextDatum(desc[i].id);
	arg = smx_array(ids, NULL, n, TEXTOID);

	initStringInfo(&sql);
	appendStringInfo(&sql,
					 "SELECT u.ord::int4, h.cpu_usage::float8, h.memory_usage::float8,"
					 " h.disk_usage::float8, h.network_io::float8, h.tick,"
					 " pg_catalog.date_part('epoch', h.\"timestamp\")"
					 " FROM pg_catalog.unnest($1) WITH ORDINALITY AS u(id, ord)"
					 " CROSS JOIN LATERAL (SELECT x.cpu_usage, x.memory_usage, x.disk_usage,"
					 "   x.network_io, x.tick, x.\"timestamp\""
					 "   FROM %s.server_metrics_history x WHERE x.server_id = u.id"
					 "   ORDER BY x.\"timestamp\" DESC LIMIT 1) h",
					 quote_identifier(get_namespace_name(nsp)));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	ret = SPI_execute_with_args(sql.data, 1, &argtype, &arg, NULL, false, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "reading server_metrics_history failed: %s", SPI_result_code_string(ret));
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		HeapTuple	tup = SPI_tuptable->vals[r];
		TupleDesc	td = SPI_tuptable->tupdesc;
		bool		isnull[7];
		Datum		v[7];
		int			i;

		for (int c = 0; c < 7; c++)
			v[c] = SPI_getbinval(tup, td, c + 1, &isnull[c]);
		i = DatumGetInt32(v[0]) - 1;
		if (i < 0 || i >= n || isnull[1] || isnull[2] || isnull[3] || isnull[4])
			continue;
		smx_state_restore(&params[i], &restored[i],
						  (float) DatumGetFloat8(v[1]), (float) DatumGetFloat8(v[2]),
						  (float) DatumGetFloat8(v[3]), DatumGetFloat8(v[4]));
		found[i] = true;
		nfound++;
		if (!isnull[5] && DatumGetInt64(v[5]) > 0 &&
			(uint64) DatumGetInt64(v[5]) > *max_tick)
		{
			*max_tick = (uint64) DatumGetInt64(v[5]);
			*max_tick_epoch = isnull[6] ? 0 : DatumGetFloat8(v[6]);
		}
	}
	SPI_finish();
	return nfound;
}

/* ------------------------------------------------------------------------
 * Retention
 * ------------------------------------------------------------------------ */

/*
 * Delete one batch (SMX_RETENTION_BATCH rows) of rows older than
 * history_retention, in simulated time; the worker calls this in a
 * transaction of its own per batch, for a bounded time, so there is never
 * one huge DELETE. A BRIN index on "timestamp" finds the old rows. A
 * partitioned history table is left to its partition manager, and a
 * locked one to the next run. Returns the rows deleted.
 */
int64
smx_history_retention(void)
{
	Oid			ext;
	Oid			nsp = smx_extension_schema(&ext);
	Oid			relid;
	double		now_epoch;
	TimestampTz cutoff;
	StringInfoData sql;
	Oid			argtype = TIMESTAMPTZOID;
	Datum		arg;
	int			ret;
	int64		deleted;

	if (smx_history_retention_s <= 0 || !OidIsValid(ext))
		return 0;
	relid = get_relname_relid("server_metrics_history", nsp);
	if (!OidIsValid(relid) || get_rel_relkind(relid) != RELKIND_RELATION)
		return 0;
	/* locked by someone else: try again next time, never wait */
	if (!ConditionalLockRelationOid(relid, RowExclusiveLock))
		return 0;

	LWLockAcquire(smx_shared->lock, LW_SHARED);
	now_epoch = smx_shared->start_epoch + (double) smx_shared->tick * smx_shared->step_seconds;
	LWLockRelease(smx_shared->lock);
	if (!smx_epoch_to_timestamptz(now_epoch - smx_history_retention_s, &cutoff))
		return 0;
	arg = TimestampTzGetDatum(cutoff);

	initStringInfo(&sql);
	appendStringInfo(&sql,
					 "DELETE FROM %1$s.server_metrics_history WHERE ctid = ANY (ARRAY("
					 " SELECT ctid FROM %1$s.server_metrics_history"
					 " WHERE \"timestamp\" < $1 LIMIT %2$d))",
					 quote_identifier(get_namespace_name(nsp)), SMX_RETENTION_BATCH);

	(void) set_config_option("lock_timeout", SMX_FLUSH_LOCK_TIMEOUT,
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_LOCAL,
							 true, 0, false);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	ret = SPI_execute_with_args(sql.data, 1, &argtype, &arg, NULL, false, 0);
	if (ret != SPI_OK_DELETE)
		elog(ERROR, "history retention failed: %s", SPI_result_code_string(ret));
	deleted = (int64) SPI_processed;
	SPI_finish();
	return deleted;
}

/* ------------------------------------------------------------------------
 * sim_history(server_id, since, until)
 * ------------------------------------------------------------------------ */

#define SMX_HISTORY_COLS 11
#define SMX_MAX_REFS	16		/* id pool entries one server id may have */

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

static void
smx_put_hist_row(ReturnSetInfo *rsinfo, const char *server_id, const SmxHistRow *r)
{
	Datum		values[SMX_HISTORY_COLS];
	bool		nulls[SMX_HISTORY_COLS];

	memset(nulls, 0, sizeof(nulls));
	values[0] = CStringGetTextDatum(server_id);
	values[1] = TimestampTzGetDatum(r->ts);
	values[2] = Float8GetDatum(r->cpu);
	values[3] = Float8GetDatum(r->mem);
	values[4] = Float8GetDatum(r->disk);
	values[5] = Int64GetDatum(r->net);
	values[6] = CStringGetTextDatum(r->status >= 0 ? smx_status_names[r->status] :
									(r->status_text ? r->status_text : ""));
	nulls[6] = r->status < 0 && r->status_text == NULL;
	values[7] = r->session ? CStringGetTextDatum(r->session) : (Datum) 0;
	nulls[7] = r->session == NULL || r->session[0] == '\0';
	values[8] = Int64GetDatum(r->tick);
	nulls[8] = r->tick < 0;
	values[9] = Int64GetDatum(r->run);
	nulls[9] = r->run == 0;
	values[10] = CStringGetTextDatum(r->from_memory ? "memory" : "table");
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

/*
 * sim_history(server_id, since, until): the server's samples in order,
 * those not flushed yet (from the ring) merged with the table's. The ring
 * is read first, then the table with a newer snapshot: a sample flushed in
 * between shows up in both and is taken once (same tick), so there is no
 * gap and no duplicate across a flush boundary.
 */
Datum
sim_history(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	text	   *server_t = PG_GETARG_TEXT_PP(0);
	TimestampTz since = PG_GETARG_TIMESTAMPTZ(1);
	TimestampTz until = PG_GETARG_TIMESTAMPTZ(2);
	char	   *server_id = text_to_cstring(server_t);
	SmxHistRow *mem_rows;
	int			nmem = 0;
	Oid			ext;
	Oid			nsp;
	StringInfoData sql;
	Oid			argtypes[3] = {TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID};
	Datum		args[3];
	int			ret;
	bool		known;
	char		sessions[SMX_SESSIONS][SMX_SESSION_LEN];

	smx_require_fleet_database();
	if (until < since)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("until (%s) is before since (%s)",
						pstrdup(timestamptz_to_str(until)), pstrdup(timestamptz_to_str(since))),
				 errhint("Pass the earlier time as since.")));
	InitMaterializedSRF(fcinfo, 0);

	/*
	 * 1. Unflushed samples of this server, from the ring. First the id pool
	 * entries naming it (under sim_lock, which the pool's only writer
	 * holds), so the ring scan compares integers; then room for at most one
	 * sample an entry a pending tick, allocated outside `lock`; positions a
	 * flush freed in between are skipped (the table has them).
	 */
	{
		SmxSample  *ring = smx_shared_ring();
		SmxIdEntry *pool = smx_shared_id_pool();
		uint64		cap = smx_shared->ring_capacity;
		uint64		tail0,
					head0;
		int32		refs[SMX_MAX_REFS];
		int			nrefs = 0;
		uint64		bound = 0;

		LWLockAcquire(smx_shared->sim_lock, LW_SHARED);
		for (int e = 0; e < smx_shared->id_pool_size && nrefs < SMX_MAX_REFS; e++)
			if (pool[e].used && strcmp(pool[e].id, server_id) == 0)
				refs[nrefs++] = e;
		LWLockRelease(smx_shared->sim_lock);

		smx_ring_bounds(&tail0, &head0);
		if (nrefs > 0 && head0 > tail0)
		{
			int64		span = ring[(head0 - 1) % cap].tick - ring[tail0 % cap].tick + 1;

			bound = Min(head0 - tail0, (uint64) Max(span, 1) * nrefs);
		}
		mem_rows = palloc(sizeof(SmxHistRow) * Max(bound, 1));

		LWLockAcquire(smx_shared->lock, LW_SHARED);
		memcpy(sessions, smx_shared->sessions, sizeof(sessions));
		for (uint64 pos = Max(tail0, smx_shared->ring_tail); pos < head0 && (uint64) nmem < bound; pos++)
		{
			SmxSample  *s = &ring[pos % cap];
			SmxHistRow *r;
			bool		match = false;

			for (int k = 0; k < nrefs; k++)
				match |= s->id_ref == refs[k];
			if (!match || s->sim_time < since || s->sim_time > until)
				continue;
			r = &mem_rows[nmem++];
			r->tick = s->tick;
			r->ts = s->sim_time;
			r->cpu = s->cpu / 100.0;
			r->mem = s->memory / 100.0;
			r->disk = s->disk / 100.0;
			r->net = s->network_io;
			r->status = s->status & 3;
			r->status_text = NULL;
			r->session = s->session < SMX_SESSIONS ? sessions[s->session] : NULL;
			r->run = s->scenario_run;
			r->from_memory = true;
		}
		LWLockRelease(smx_shared->lock);
	}

	/* 2. the table, merged by (timestamp, tick) */
	nsp = smx_extension_schema(&ext);
	if (!OidIsValid(ext))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("extension \"%s\" is not installed in this database", SMX_EXTENSION_NAME)));
	args[0] = PointerGetDatum(server_t);
	args[1] = TimestampTzGetDatum(since);
	args[2] = TimestampTzGetDatum(until);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	initStringInfo(&sql);
	appendStringInfo(&sql,
					 "SELECT EXISTS (SELECT 1 FROM %1$s.server_templates WHERE id = $1)"
					 " OR EXISTS (SELECT 1 FROM %1$s.server_metrics_history WHERE server_id = $1)",
					 quote_identifier(get_namespace_name(nsp)));
	ret = SPI_execute_with_args(sql.data, 1, argtypes, args, NULL, true, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "checking server \"%s\" failed", server_id);
	{
		bool		isnull;

		known = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
										   SPI_tuptable->tupdesc, 1, &isnull));
	}
	if (!known && nmem == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("unknown server \"%s\"", server_id),
				 errhint("Use an id from server_templates or server_metrics_history.")));

	resetStringInfo(&sql);
	appendStringInfo(&sql,
					 "SELECT \"timestamp\", cpu_usage::float8, memory_usage::float8,"
					 " disk_usage::float8, network_io, status, session_id, tick, scenario_run_id"
					 " FROM %s.server_metrics_history"
					 " WHERE server_id = $1 AND \"timestamp\" BETWEEN $2 AND $3"
					 " ORDER BY \"timestamp\", tick",
					 quote_identifier(get_namespace_name(nsp)));
	{
		/*
		 * A snapshot newer than the ring read, whatever the isolation
		 * level: a sample flushed in between must be visible here.
		 */
		SPIPlanPtr	plan = SPI_prepare(sql.data, 3, argtypes);

		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
		ret = SPI_execute_snapshot(plan, args, NULL, GetLatestSnapshot(),
								   InvalidSnapshot, true, false, 0);
	}
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "reading server_metrics_history failed: %s", SPI_result_code_string(ret));

	{
		int			m = 0;

		for (uint64 r = 0; r <= SPI_processed; r++)
		{
			SmxHistRow	t;
			bool		have_t = r < SPI_processed;

			if (have_t)
			{
				HeapTuple	tup = SPI_tuptable->vals[r];
				TupleDesc	td = SPI_tuptable->tupdesc;
				bool		n[9];
				Datum		v[9];

				for (int c = 0; c < 9; c++)
					v[c] = SPI_getbinval(tup, td, c + 1, &n[c]);
				t.ts = DatumGetTimestampTz(v[0]);
				t.cpu = n[1] ? 0 : DatumGetFloat8(v[1]);
				t.mem = n[2] ? 0 : DatumGetFloat8(v[2]);
				t.disk = n[3] ? 0 : DatumGetFloat8(v[3]);
				t.net = n[4] ? 0 : DatumGetInt64(v[4]);
				t.status = -1;
				t.status_text = n[5] ? NULL : TextDatumGetCString(v[5]);
				t.session = n[6] ? NULL : TextDatumGetCString(v[6]);
				t.tick = n[7] ? -1 : DatumGetInt64(v[7]);
				t.run = n[8] ? 0 : DatumGetInt64(v[8]);
				t.from_memory = false;
			}

			/* memory rows that come first */
			while (m < nmem &&
				   (!have_t || mem_rows[m].ts < t.ts ||
					(mem_rows[m].ts == t.ts && mem_rows[m].tick < t.tick)))
				smx_put_hist_row(rsinfo, server_id, &mem_rows[m++]);
			if (!have_t)
				break;
			/* the same sample in both: flushed meanwhile; keep the table's */
			if (m < nmem && mem_rows[m].ts == t.ts && mem_rows[m].tick == t.tick)
				m++;
			smx_put_hist_row(rsinfo, server_id, &t);
		}
	}
	SPI_finish();
	return (Datum) 0;
}

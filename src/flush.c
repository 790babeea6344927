/*
 * flush.c — moving the history ring into server_metrics_history.
 *
 * A flush inserts [ring_tail, ring_head) in batches: one INSERT ... SELECT
 * unnest(arrays) per SMX_FLUSH_BATCH rows through a kept SPI plan, each
 * SMX_SUBXACT_ROWS in a subtransaction. A batch the table refuses for a reason that belongs to
 * its rows (a CHECK, a trigger's RAISE, no partition for the time) is split
 * in halves until the refused rows are alone; those go to the dead-letter
 * table server_metrics_rejected with their SQLSTATE and message, and the
 * rest flows on. Errors that are not about rows (a lock timeout, a missing
 * table, no privilege) end the flush; the samples stay for the next try.
 *
 * ring_tail moves only when the flushing transaction commits, so a failed
 * or rolled-back flush leaves the samples in the ring. One flusher at a
 * time: a transaction lock with a tag of type "userlock", which no SQL
 * function can build (advisory locks use another type), so no session can
 * take it to stall flushing; it goes away by itself with its transaction.
 * The inserts run as the writer role (common.c) in a security-restricted
 * operation, so EXECUTE on sim_flush() is all a caller needs, and nothing
 * attached to the tables runs with more than that role holds.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/interrupt.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "sim_metrics.h"

#define SMX_FLUSH_BATCH			10000	/* rows per INSERT statement */
#define SMX_SUBXACT_ROWS		50000	/* rows per subtransaction */
#define SMX_FLUSH_LOCK_TIMEOUT	"200ms"
#define SMX_FINAL_LOCK_TIMEOUT	"2s"	/* the exit flush waits a little */
#define SMX_WORKER_FLUSH_ROWS	100000	/* samples per worker flush transaction */

/* The flusher lock: ('S','M','X', 1) in a userlock tag. */
#define SMX_FLUSH_LOCK_KEY1		0x534d58
#define SMX_FLUSH_LOCK_KEY2		1

PG_FUNCTION_INFO_V1(sim_flush);

/*
 * A flush moves ring_tail when its transaction commits, from the commit
 * callback: that runs before the transaction's locks (the flusher's
 * lock among them) are released, so the next flusher always sees
 * the new tail. A rolled-back transaction or subtransaction leaves the
 * samples in the ring; PREPARE TRANSACTION is refused.
 */

/* The last flush attempt met another session's flush (sim_flush()) and gave way. */
bool		smx_flush_postponed = false;

static uint64 smx_xact_flush_upto = 0;
static int64 smx_xact_flush_rows = 0;
static int64 smx_xact_flush_rejected = 0;
static SubTransactionId smx_xact_flush_subxid = InvalidSubTransactionId;
static bool smx_flush_callbacks_registered = false;

static void
smx_flush_forget(void)
{
	smx_xact_flush_upto = 0;
	smx_xact_flush_rows = 0;
	smx_xact_flush_rejected = 0;
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
			smx_ring_advance(smx_xact_flush_upto, smx_xact_flush_rows, smx_xact_flush_rejected);
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
smx_flush_remember(uint64 upto, int64 rows, int64 rejected)
{
	if (!smx_flush_callbacks_registered)
	{
		RegisterXactCallback(smx_flush_xact_callback, NULL);
		RegisterSubXactCallback(smx_flush_subxact_callback, NULL);
		smx_flush_callbacks_registered = true;
	}
	smx_xact_flush_upto = upto;
	smx_xact_flush_rows = rows;
	smx_xact_flush_rejected = rejected;
	smx_xact_flush_subxid = GetCurrentSubTransactionId();
}


/* Take the flusher lock (transaction scope); false when busy and !wait. */
static bool
smx_flush_lock(bool wait)
{
	LOCKTAG		tag;

	memset(&tag, 0, sizeof(tag));
	tag.locktag_field1 = MyDatabaseId;
	tag.locktag_field2 = SMX_FLUSH_LOCK_KEY1;
	tag.locktag_field3 = SMX_FLUSH_LOCK_KEY2;
	tag.locktag_field4 = 0;
	tag.locktag_type = LOCKTAG_USERLOCK;
	tag.locktag_lockmethodid = DEFAULT_LOCKMETHOD;
	return LockAcquire(&tag, ExclusiveLock, false, !wait) != LOCKACQUIRE_NOT_AVAIL;
}

/* A sample the history table refused, and why. */
typedef struct SmxDeadLetter
{
	uint64		pos;			/* ring position */
	int			sqlerrcode;
	char	   *message;
} SmxDeadLetter;

/* What one flush needs for building batches; lives in the SPI context. */
typedef struct SmxFlushCtx
{
	Oid			nsp;			/* the extension's schema */
	SPIPlanPtr	dead_plan;		/* prepared at the first refused row */
	SmxDeadLetter *dead;		/* refused rows of the current batch */
	int			ndead;
	Datum		session_text[SMX_SESSIONS];
	Datum	   *id_text;		/* server_id datum per id pool entry, lazily */
	const SmxSample *samples;	/* where positions point: the ring, or a
								 * backfill's buffer */
	uint64		cap;			/* position % cap indexes samples */
	SmxHistoryBatch batch;		/* the rows of one INSERT */
	int64		rows;			/* inserted into the history table */
	int64		rejected;		/* sent to the dead-letter table */
} SmxFlushCtx;

/* Whether an error is about the rows (split the batch) or not (give up). */
bool
smx_error_is_per_row(int sqlerrcode)
{
	int			cat = ERRCODE_TO_CATEGORY(sqlerrcode);

	return cat == ERRCODE_DATA_EXCEPTION ||
		cat == ERRCODE_INTEGRITY_CONSTRAINT_VIOLATION ||
		cat == ERRCODE_TO_CATEGORY(ERRCODE_RAISE_EXCEPTION) ||	/* P0: PL/pgSQL */
		cat == ERRCODE_SQL_ROUTINE_EXCEPTION ||
		cat == ERRCODE_WITH_CHECK_OPTION_VIOLATION;
}

/* Insert the k samples at ring positions [from, from + k). */
static int64
smx_insert_samples(SmxFlushCtx *fc, uint64 from, int k)
{
	const SmxSample *ring = fc->samples;
	SmxIdEntry *pool = smx_shared_id_pool();
	uint64		cap = fc->cap;

	fc->batch.n = 0;
	for (int i = 0; i < k; i++)
	{
		const SmxSample *s = &ring[(from + i) % cap];
		SmxHistoryRow r;

		if (fc->id_text[s->id_ref] == (Datum) 0)
			fc->id_text[s->id_ref] = CStringGetTextDatum(pool[s->id_ref].id);
		r.server_id = fc->id_text[s->id_ref];
		r.session_id = s->session >= SMX_SESSIONS ? (Datum) 0 : fc->session_text[s->session];
		r.tick = s->tick;
		r.sim_time = s->sim_time;
		r.pct[0] = s->cpu;
		r.pct[1] = s->memory;
		r.pct[2] = s->disk;
		r.network_io = s->network_io;
		r.status = s->status;
		r.scenario_run = s->scenario_run;
		r.anomaly = s->anomaly;
		smx_history_batch_add(&fc->batch, &r);
	}
	return smx_history_batch_insert(&fc->batch);
}

/* A flush step's arguments: fc, and the samples [from, from + k). */
typedef struct SmxFlushStep
{
	SmxFlushCtx *fc;
	uint64		from;
	int			k;
} SmxFlushStep;

/*
 * Run step(&{fc, from, k}) in a subtransaction. Returns NULL when it
 * succeeded, else the error (the subtransaction rolled back).
 */
static ErrorData *
smx_in_subxact(SmxStep step, SmxFlushCtx *fc, uint64 from, int k)
{
	SmxFlushStep st = {fc, from, k};

	return smx_subxact(step, &st);
}

/* Insert [from, from + k) in statements of SMX_FLUSH_BATCH rows. */
static void
smx_insert_step(void *arg)
{
	SmxFlushStep *st = arg;
	SmxFlushCtx *fc = st->fc;
	uint64		from = st->from;
	int			k = st->k;
	int64		rows = 0;

	for (int done = 0; done < k; done += SMX_FLUSH_BATCH)
		rows += smx_insert_samples(fc, from + done, Min(SMX_FLUSH_BATCH, k - done));
	fc->rows += rows;
}

/* A refused sample as the dead-letter "sample" json. */
static char *
smx_sample_json(const SmxFlushCtx *fc, const SmxSample *s)
{
	StringInfoData js;

	initStringInfo(&js);
	appendStringInfo(&js,
					 "{\"cpu_usage\": %.2f, \"memory_usage\": %.2f, \"disk_usage\": %.2f,"
					 " \"network_io\": " INT64_FORMAT ", \"status\": \"%s\"",
					 s->cpu / 100.0, s->memory / 100.0, s->disk / 100.0,
					 s->network_io, smx_status_names[s->status & 3]);
	if (s->session < SMX_SESSIONS)
		appendStringInfo(&js, ", \"session_id\": \"%s\"",
						 TextDatumGetCString(fc->session_text[s->session]));
	if (s->scenario_run != 0)
		appendStringInfo(&js, ", \"scenario_run_id\": " INT64_FORMAT, s->scenario_run);
	{
		char		score[16];

		smx_fmt_score(score, s->anomaly);
		appendStringInfo(&js, ", \"anomaly_score\": %s", score);
	}
	appendStringInfoChar(&js, '}');
	return js.data;
}

/*
 * Insert dead letters [first, first + k) of fc->dead into
 * server_metrics_rejected in one statement (as the writer role).
 */
static void
smx_dead_letter_step(void *arg)
{
	static const Oid types[6] = {TEXTOID, TIMESTAMPTZOID, INT8OID, TEXTOID, TEXTOID, TEXTOID};
	SmxFlushStep *st = arg;
	SmxFlushCtx *fc = st->fc;
	uint64		first = st->from;
	int			k = st->k;
	Datum	   *col[6];
	Datum		args[6];
	int			ret;

	for (int c = 0; c < 6; c++)
		col[c] = palloc(sizeof(Datum) * k);
	for (int i = 0; i < k; i++)
	{
		SmxDeadLetter *d = &fc->dead[first + i];
		const SmxSample *s = &fc->samples[d->pos % fc->cap];

		col[0][i] = CStringGetTextDatum(smx_shared_id_pool()[s->id_ref].id);
		col[1][i] = TimestampTzGetDatum(s->sim_time);
		col[2][i] = Int64GetDatum(s->tick);
		col[3][i] = CStringGetTextDatum(smx_sample_json(fc, s));
		col[4][i] = CStringGetTextDatum(unpack_sql_state(d->sqlerrcode));
		col[5][i] = CStringGetTextDatum(d->message);
	}
	for (int c = 0; c < 6; c++)
		args[c] = smx_history_array(col[c], NULL, k, types[c]);

	ret = SPI_execute_plan(fc->dead_plan, args, NULL, false, 0);
	if (ret != SPI_OK_INSERT)
		elog(ERROR, "inserting into server_metrics_rejected failed: %s",
			 SPI_result_code_string(ret));
}

/* A refused sample that could not be kept: say so in the log. */
static void
smx_log_lost_sample(const SmxFlushCtx *fc, const SmxDeadLetter *d, const char *why)
{
	const SmxSample *s = &fc->samples[d->pos % fc->cap];

	ereport(WARNING,
			(errcode(ERRCODE_DATA_EXCEPTION),
			 errmsg("sim_metrics: lost a sample of \"%s\" at tick " INT64_FORMAT " that server_metrics_history refused",
					smx_shared_id_pool()[s->id_ref].id, s->tick),
			 errdetail("The table said: %s (SQLSTATE %s). %s",
					   d->message, unpack_sql_state(d->sqlerrcode), why)));
}

static SPIPlanPtr smx_get_dead_plan(Oid nsp);

/* Prepare the dead-letter insert (NULL when there is no such table); arg is fc. */
static void
smx_prepare_dead_step(void *arg)
{
	SmxFlushCtx *fc = arg;

	fc->dead_plan = smx_get_dead_plan(fc->nsp);
}

/*
 * Keep the refused samples of one batch (fc->dead) in server_metrics_rejected:
 * all in one statement (one subtransaction, whatever their number), or,
 * when the dead-letter table refuses that too, one by one. A sample no
 * table takes, or with no dead-letter table (extension not updated), is
 * logged. All are counted as rejected. An error of the dead-letter insert
 * that is not about its rows ends the flush (retried later).
 */
static void
smx_keep_dead_letters(SmxFlushCtx *fc)
{
	ErrorData  *err;

	if (fc->ndead == 0)
		return;
	fc->rejected += fc->ndead;
	/* prepared only now: a broken dead-letter table must not stop flushes */
	if (fc->dead_plan == NULL)
		err = smx_subxact(smx_prepare_dead_step, fc);
	else
		err = NULL;
	if (fc->dead_plan == NULL)
	{
		for (int i = 0; i < fc->ndead; i++)
			smx_log_lost_sample(fc, &fc->dead[i], err ? err->message :
								"There is no server_metrics_rejected table: run ALTER EXTENSION sim_metrics UPDATE.");
		fc->ndead = 0;
		return;
	}
	err = smx_in_subxact(smx_dead_letter_step, fc, 0, fc->ndead);
	if (err != NULL && !smx_error_is_per_row(err->sqlerrcode))
		ReThrowError(err);
	for (int i = 0; err != NULL && i < fc->ndead; i++)
	{
		ErrorData  *one = smx_in_subxact(smx_dead_letter_step, fc, i, 1);

		if (one != NULL && !smx_error_is_per_row(one->sqlerrcode))
			ReThrowError(one);
		if (one != NULL)
			smx_log_lost_sample(fc, &fc->dead[i], one->message);
	}
	fc->ndead = 0;
}

/*
 * Insert [from, from + k); when the table refuses the batch for a reason
 * about its rows, split it until the refused rows are alone and note those
 * in fc->dead (kept by smx_keep_dead_letters). Any other error is raised:
 * the whole flush is retried later. The refused rows' own attempts fail
 * before any tuple is written, so they take no transaction id.
 */
static void
smx_insert_isolating(SmxFlushCtx *fc, uint64 from, int k)
{
	ErrorData  *edata = smx_in_subxact(smx_insert_step, fc, from, k);

	if (edata == NULL)
		return;

	/*
	 * The writer role's INSERT was checked before: a privilege error now
	 * comes from code attached to the table (a trigger, a CHECK, a default)
	 * refusing rows, so those rows become dead letters like any refusal.
	 */
	if (!smx_error_is_per_row(edata->sqlerrcode) &&
		edata->sqlerrcode != ERRCODE_INSUFFICIENT_PRIVILEGE)
		ReThrowError(edata);
	CHECK_FOR_INTERRUPTS();
	if (k == 1)
	{
		SmxDeadLetter *d = &fc->dead[fc->ndead++];

		d->pos = from;
		d->sqlerrcode = edata->sqlerrcode;
		d->message = pstrdup(edata->message ? edata->message : "");
	}
	else
	{
		smx_insert_isolating(fc, from, k / 2);
		smx_insert_isolating(fc, from + k / 2, k - k / 2);
	}
	FreeErrorData(edata);
}

static SPIPlanPtr smx_dead_plan = NULL;
static Oid	smx_dead_plan_rel = InvalidOid;

/* The kept dead-letter INSERT plan, or NULL when the table is missing. */
static SPIPlanPtr
smx_get_dead_plan(Oid nsp)
{
	Oid			relid = get_relname_relid("server_metrics_rejected", nsp);
	Oid			argtypes[6] = {TEXTARRAYOID, TIMESTAMPTZARRAYOID, INT8ARRAYOID,
	TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID};
	StringInfoData sql;
	SPIPlanPtr	plan;

	if (smx_dead_plan != NULL && smx_dead_plan_rel == relid)
		return smx_dead_plan;
	if (smx_dead_plan != NULL)
		SPI_freeplan(smx_dead_plan);
	smx_dead_plan = NULL;
	smx_dead_plan_rel = InvalidOid;
	if (!OidIsValid(relid))
		return NULL;
	initStringInfo(&sql);
	appendStringInfo(&sql,
					 "INSERT INTO %s.server_metrics_rejected"
					 " (server_id, \"timestamp\", tick, sample, sqlstate, message)"
					 " SELECT u.a, u.b, u.c, CAST(u.d AS pg_catalog.jsonb), u.e, u.f"
					 " FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2),"
					 "  pg_catalog.unnest($3), pg_catalog.unnest($4), pg_catalog.unnest($5),"
					 "  pg_catalog.unnest($6)) AS u(a, b, c, d, e, f)",
					 quote_identifier(get_namespace_name(nsp)));
	plan = SPI_prepare(sql.data, 6, argtypes);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed for the dead-letter insert: %s",
			 SPI_result_code_string(SPI_result));
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "SPI_keepplan failed");
	smx_dead_plan = plan;
	smx_dead_plan_rel = relid;
	return plan;
}

/* Fill fc for a flush into schema nsp; must be connected to SPI. */
static void
smx_flush_ctx_init(SmxFlushCtx *fc, Oid nsp, int batch)
{
	memset(fc, 0, sizeof(*fc));
	fc->nsp = nsp;
	fc->dead = palloc(sizeof(SmxDeadLetter) * batch);
	LWLockAcquire(smx_shared->publish_lock, LW_SHARED);
	for (int i = 0; i < SMX_SESSIONS; i++)
		fc->session_text[i] = CStringGetTextDatum(smx_shared->fleet.sessions[i]);
	LWLockRelease(smx_shared->publish_lock);
	fc->id_text = palloc0(sizeof(Datum) * smx_shared->ring.id_pool_size);
	fc->samples = smx_shared_ring();
	fc->cap = smx_shared->ring.capacity;
	smx_history_batch_init(&fc->batch, nsp, Min(batch, SMX_FLUSH_BATCH));
}

/*
 * Insert up to max_rows pending samples, from ring_tail on, in the current
 * transaction, in batches of SMX_FLUSH_BATCH rows, stopping between batches
 * at `deadline` (and, for the writer's regular flush, on a shutdown
 * request). ring_tail moves when the transaction commits. One flusher at a
 * time: the writer does not wait for another flusher, nor for a locked
 * table, unless `final` (its exit flush, which waits a little); a backend
 * waits. Must be called inside a transaction, not connected to SPI.
 * Returns the rows written to the history table.
 */
static int64
smx_flush_pending(bool from_worker, bool final, uint64 max_rows, TimestampTz deadline)
{
	Oid			ext;
	Oid			nsp;
	Oid			relid;
	uint64		tail,
				head,
				pos;
	SmxSavedUser saved;
	SmxFlushCtx fc;

	if (smx_xact_flush_upto != 0)
		return 0;				/* already flushed in this transaction */

	if (from_worker)
		/* bounded waits: the flusher lock, the catalog, the table */
		(void) set_config_option("lock_timeout", final ? SMX_FINAL_LOCK_TIMEOUT : SMX_FLUSH_LOCK_TIMEOUT,
								 PGC_SUSET, PGC_S_SESSION, GUC_ACTION_LOCAL,
								 true, 0, false);

	smx_flush_postponed = false;
	if (!smx_flush_lock(!from_worker || final))
	{
		/* not a failure: that session's sim_flush() writes these samples */
		smx_flush_postponed = true;
		ereport(ERROR,
				(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
				 errmsg("another session is flushing history; flush postponed"),
				 errhint("A transaction that called sim_flush() holds the flush until it ends.")));
	}

	smx_ring_bounds(&tail, &head);
	if (head - tail > max_rows)
		head = tail + max_rows;
	if (head == tail)
		return 0;

	nsp = smx_extension_schema(&ext);
	if (!OidIsValid(ext))
		return 0;
	relid = get_relname_relid("server_metrics_history", nsp);
	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("table %s.server_metrics_history does not exist; flush postponed",
						get_namespace_name(nsp)),
				 errhint("Recreate the table, or DROP and CREATE EXTENSION %s.", SMX_EXTENSION_NAME)));
	/* a locked table must not hold up the writer: retry later */
	if (from_worker && !final && !ConditionalLockRelationOid(relid, RowExclusiveLock))
		ereport(ERROR,
				(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
				 errmsg("server_metrics_history is locked by another session; flush postponed"),
				 errdetail("%llu samples stay buffered until a flush succeeds.",
						   (unsigned long long) (head - tail))));

	/* as the writer role, whoever was granted sim_flush() */
	smx_writer_may(relid, ACL_INSERT, "SELECT, INSERT, DELETE");
	smx_become_writer(&saved);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	smx_flush_ctx_init(&fc, nsp, (int) Min((uint64) SMX_SUBXACT_ROWS, head - tail));
	pos = tail;
	while (pos < head)
	{
		int			k = (int) Min((uint64) SMX_SUBXACT_ROWS, head - pos);

		smx_insert_isolating(&fc, pos, k);
		smx_keep_dead_letters(&fc);
		pos += k;
		if (GetCurrentTimestamp() >= deadline ||
			(from_worker && !final && ShutdownRequestPending))
			break;
	}
	SPI_finish();
	smx_restore_user(&saved);
	smx_flush_remember(pos, fc.rows, fc.rejected);
	return fc.rows;
}

/*
 * Insert a backfill's samples buf[0, k) as the flush inserts the ring's:
 * refused rows go to the dead letters. session names the samples'
 * session (their session slot is ignored). Must be connected to SPI, as
 * the writer role. Adds to *rows and *rejected.
 */
void
smx_history_insert_buffer(Oid nsp, const SmxSample *buf, int k, const char *session,
						  int64 *rows, int64 *rejected)
{
	SmxFlushCtx fc;

	smx_flush_ctx_init(&fc, nsp, Min(k, SMX_SUBXACT_ROWS));
	fc.samples = buf;
	fc.cap = PG_UINT64_MAX;
	for (int i = 0; i < SMX_SESSIONS; i++)
		fc.session_text[i] = CStringGetTextDatum(session);
	for (int pos = 0; pos < k; pos += SMX_SUBXACT_ROWS)
	{
		smx_insert_isolating(&fc, (uint64) pos, Min(SMX_SUBXACT_ROWS, k - pos));
		smx_keep_dead_letters(&fc);
	}
	*rows += fc.rows;
	*rejected += fc.rejected;
}

/*
 * The writer's flush: transactions of SMX_WORKER_FLUSH_ROWS samples each,
 * so a large backlog is written (and leaves the ring) piece by piece, for
 * at most budget_ms; a regular flush also stops on a shutdown request (the
 * exit flush follows). Returns rows written. Errors propagate to the
 * caller's guard.
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
		uint64		tail0,
					tail1,
					head;

		smx_ring_bounds(&tail0, &head);
		smx_worker_xact_begin("sim_metrics: flushing history", NULL);
		rows = smx_flush_pending(true, final, SMX_WORKER_FLUSH_ROWS, stop);
		smx_worker_xact_end(cxt);
		total += rows;
		smx_ring_bounds(&tail1, &head);
		if (tail1 - tail0 < SMX_WORKER_FLUSH_ROWS || tail1 == head)
			break;
		if (GetCurrentTimestamp() >= stop || (!final && ShutdownRequestPending))
			break;
	}
	/* out of time with samples left: the rest goes at the next iteration */
	if (!final && GetCurrentTimestamp() >= stop)
	{
		uint64		tail,
					head;

		smx_ring_bounds(&tail, &head);
		if (head != tail)
			smx_ring_request_flush();
	}
	return total;
}

/* Whether the writer should flush now. */
bool
smx_history_flush_due(TimestampTz now)
{
	uint64		pending;
	TimestampTz last;

	LWLockAcquire(smx_shared->publish_lock, LW_SHARED);
	pending = smx_shared->ring.head - smx_shared->ring.tail;
	last = smx_shared->writer.flush_clock;
	LWLockRelease(smx_shared->publish_lock);

	if (pending == 0)
		return false;
	return pending * 4 >= smx_shared->ring.capacity * 3 ||
		pg_atomic_read_u32(&smx_shared->ring.flush_requested) != 0 ||
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
	/* the writer logs the scenario phases up to now first (bounded wait) */
	smx_wait_scenario_log((int64) smx_shared->fleet.tick, 10000);
	PG_RETURN_INT64(smx_flush_pending(false, false, PG_UINT64_MAX, DT_NOEND));
}

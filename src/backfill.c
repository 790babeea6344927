/*
 * backfill.c — sim_backfill(): the fleet's past, simulated at once.
 *
 * A backfill of span S re-bases the simulation: its origin becomes the
 * current simulated time minus K ticks (K = S / step; with
 * sim_metrics.start_time set, the origin is start_time), ticks 1..K are
 * stepped from a fresh fleet exactly as the ticker or sim_tick() would
 * step them (same model, same runs, same draws), and their rows go to
 * server_metrics_history; once the transaction commits, the fleet goes on
 * from tick K with the backfill's state and open runs, so the next live
 * tick is K + 1. A paused cluster started at the origin and stepped with
 * sim_tick() writes the same rows, bit for bit (t/029_backfill.pl).
 *
 * A backfill writes the past of a fleet that has none: the history must
 * hold only rows of the running session (a fresh install's first minutes,
 * which the backfill's end re-simulates and replaces) and the log no run.
 * Anything else is refused before a row is written.
 *
 * It steps a private copy of the fleet and of its runs (a private
 * SmxRunSet), in the calling backend, and writes through COPY FROM fed by
 * a callback in binary format: PostgreSQL's multi-insert, constraints,
 * partition routing, triggers and pg_stat_progress_copy, with no text to
 * parse. The scenario log is planned as it steps (the writer's log rules,
 * dry) and written after the COPY. A row the table refuses makes the whole
 * COPY roll back to its subtransaction; the backfill then steps again from
 * the start through the flush's row-isolating insert, so the refused rows
 * go to server_metrics_rejected and the rest is written. Everything runs
 * as the writer role, in a security-restricted operation.
 *
 * The fleet is held (backfill.pid) from the start to the end of the
 * transaction: the ticker waits, sim_tick(), reloads and scenario starts
 * are refused. A cancel or an error leaves nothing: the rows and the log
 * roll back with the transaction, and the fleet is as it was.
 */
#include "postgres.h"

#include <math.h>
#include <unistd.h>

#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/copy.h"
#include "commands/progress.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "parser/parse_node.h"
#include "parser/parse_relation.h"
#include "pgstat.h"
#include "libpq/pqformat.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "storage/lmgr.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "sim_metrics.h"

PG_FUNCTION_INFO_V1(sim_backfill);

/* Bytes of COPY data generated at a time (whole ticks). */
#define SMX_BF_OUT_BYTES	(256 * 1024)
/* Samples of the row-isolating fallback inserted at a time. */
#define SMX_BF_FALLBACK_ROWS	50000
/* Progress is published every this many ticks. */
#define SMX_BF_PROGRESS_TICKS	32
/* Rows a block of COPY data dealt to one process holds, about. */
#define SMX_BF_BLOCK_ROWS	8192
/* The most rows one backfill writes. */
#define SMX_BF_MAX_ROWS		(INT64CONST(1) << 40)

/* A run placed by hand (incidents), started just before its tick. */
typedef struct SmxPlaced
{
	int			ord;			/* its place in incidents */
	SmxRun		run;
} SmxPlaced;

/* The log's work at one tick: the run as it was, written after the COPY. */
typedef struct SmxLogEvent
{
	int64		tick;
	SmxRun		run;
} SmxLogEvent;

typedef struct SmxBackfill
{
	Oid			nsp;
	int			ncols;			/* history columns written (smx_history_ncols) */
	char	   *nspname;
	smx_config	cfg;			/* the backfill's clock: origin, step */
	int64		ticks;			/* K */
	int			n;				/* servers */
	const smx_params *params;
	smx_state  *state;
	smx_server_detector *detect;	/* the servers' detectors, from tick 0 */
	int32	   *id_ref;
	SmxScenarioState *scen;		/* the private runs */
	SmxRunSet	set;
	SmxScenarioDef *defs;		/* the catalog, as the fleet has it */
	int			ndefs;
	SmxPlaced  *placed;
	int			nplaced;
	/* stepping */
	int64		tick;			/* last tick stepped */
	int			next_placed;
	int64		run_ids[SMX_MAX_RUNS + 1];
	SmxLogSql	dry;
	SmxLogEvent *events;
	int			nevents;
	int			cap_events;
	/* rows */
	char	   *session;		/* the rows' session_id */
	char	  **id_client;		/* server ids in the client encoding */
	int		   *id_len;
	char	   *session_client;
	int			session_len;
	StringInfoData out;			/* COPY data not yet handed over */
	int			out_pos;
	int			copy_stage;		/* 0 header, 1 rows, 2 trailer, 3 done */
	int64		rows;
	int64		rejected;
	TimestampTz started;
	MemoryContext cxt;			/* what lives as long as the backfill */
	/* the insert workers (backfill_workers.c) */
	SmxBfPool  *pool;			/* NULL: the leader inserts alone */
	StringInfoData wbuf[SMX_BF_MAX_WORKERS];	/* a worker's block being encoded */
	int		   *id_server_len;	/* server ids' lengths, in the server encoding */
	int64		block_ticks;	/* ticks a block */
} SmxBackfill;

/* The backfill the COPY callback feeds from (it takes no argument). */
static SmxBackfill *smx_bf_current = NULL;

/* The insert workers waiting for this transaction's verdict. */
static SmxBfPool *smx_bf_pool = NULL;

/* The end a committed backfill hands to the fleet (TopMemoryContext). */
static SmxAdopt *smx_bf_adopt = NULL;
static bool smx_bf_callback_registered = false;

bool
smx_backfill_holds_fleet(void)
{
	return pg_atomic_read_u32(&smx_shared->backfill.pid) != 0;
}

void
smx_backfill_refuse(const char *what)
{
	int			pid = (int) pg_atomic_read_u32(&smx_shared->backfill.pid);

	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_IN_USE),
			 errmsg("%s is not possible while a backfill holds the fleet", what),
			 errdetail(pid == MyProcPid ?
					   "This session's sim_backfill() holds it until its transaction ends." :
					   "sim_backfill() in process %d holds it until its transaction ends.", pid),
			 errhint("Commit or roll back the backfill's transaction, or wait for it; sim_status().worker_state shows its progress.")));
}

/* "backfilling: 43% (1234 of 2880 ticks, 1234000 rows)" for sim_status(). */
void
smx_backfill_status_text(char *dst, size_t len)
{
	int64		total,
				done,
				rows;

	LWLockAcquire(smx_shared->publish_lock, LW_SHARED);
	total = smx_shared->backfill.ticks_total;
	done = smx_shared->backfill.ticks_done;
	rows = smx_shared->backfill.rows;
	LWLockRelease(smx_shared->publish_lock);
	if (total <= 0)
		snprintf(dst, len, "backfilling: starting");
	else if (done >= total)
		snprintf(dst, len, "backfilling: committing " INT64_FORMAT " rows", rows);
	else
		snprintf(dst, len, "backfilling: %d%% (" INT64_FORMAT " of " INT64_FORMAT " ticks, " INT64_FORMAT " rows)",
				 (int) (100 * done / total), done, total, rows);
}

static void
smx_bf_progress(int64 total, int64 done, int64 rows)
{
	LWLockAcquire(smx_shared->publish_lock, LW_EXCLUSIVE);
	smx_shared->backfill.ticks_total = total;
	smx_shared->backfill.ticks_done = done;
	smx_shared->backfill.rows = rows;
	LWLockRelease(smx_shared->publish_lock);
}

/*
 * The end of the backfill's transaction: committed, the fleet goes on from
 * the backfill's end; either way, the fleet is released.
 */
static void
smx_bf_xact_callback(XactEvent event, void *arg)
{
	if (pg_atomic_read_u32(&smx_shared->backfill.pid) != (uint32) MyProcPid)
		return;
	switch (event)
	{
		case XACT_EVENT_PRE_PREPARE:
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cannot PREPARE a transaction that ran sim_backfill()")));
			break;
		case XACT_EVENT_PRE_COMMIT:
			/* the workers commit first; one that cannot makes this abort */
			if (smx_bf_pool != NULL)
			{
				SmxBfPool  *p = smx_bf_pool;

				smx_bf_pool = NULL;
				if (!smx_bfpool_verdict(p, true))
					ereport(ERROR,
							(errcode(ERRCODE_INTERNAL_ERROR),
							 errmsg("a sim_backfill() insert worker could not commit its rows"),
							 errhint("See the server log; run the backfill again.")));
			}
			break;
		case XACT_EVENT_COMMIT:
			if (smx_bf_adopt != NULL && !smx_engine_adopt(smx_bf_adopt))
				ereport(WARNING,
						(errmsg("sim_metrics: the fleet changed during the backfill; it goes on from its own state, not the backfill's end")));
			/* FALLTHROUGH */
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			if (smx_bf_pool != NULL)
			{
				SmxBfPool  *p = smx_bf_pool;

				smx_bf_pool = NULL;
				(void) smx_bfpool_verdict(p, false);
			}
			if (smx_bf_adopt != NULL)
			{
				pfree((void *) smx_bf_adopt->state);
				pfree((void *) smx_bf_adopt->detect);
				pfree((void *) smx_bf_adopt->runs);
				pfree(smx_bf_adopt);
				smx_bf_adopt = NULL;
			}
			smx_bf_current = NULL;
			smx_bf_progress(0, 0, 0);
			pg_atomic_write_u32(&smx_shared->backfill.pid, 0);
			smx_wake_ticker();
			break;
		default:
			break;
	}
}

/* Hold the fleet for this transaction, or say who holds it. */
static void
smx_bf_hold(void)
{
	uint32		expected = 0;

	if (!smx_bf_callback_registered)
	{
		RegisterXactCallback(smx_bf_xact_callback, NULL);
		smx_bf_callback_registered = true;
	}
	if (!pg_atomic_compare_exchange_u32(&smx_shared->backfill.pid, &expected, (uint32) MyProcPid))
		smx_backfill_refuse("sim_backfill()");
	LWLockAcquire(smx_shared->publish_lock, LW_EXCLUSIVE);
	smx_shared->backfill.started_at = GetCurrentTimestamp();
	smx_shared->backfill.ticks_total = 0;
	smx_shared->backfill.ticks_done = 0;
	smx_shared->backfill.rows = 0;
	LWLockRelease(smx_shared->publish_lock);
	/* a tick in progress ends before anything is read */
	LWLockAcquire(smx_shared->step_lock, LW_EXCLUSIVE);
	LWLockRelease(smx_shared->step_lock);
}

/*
 * Wait (bounded) until the writer moved every buffered sample to the table
 * and logged every run: the backfill decides on what the tables hold.
 */
static void
smx_bf_wait_flushed(void)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), 30000);
	uint64		tail,
				head;

	smx_ring_bounds(&tail, &head);
	if (tail != head)
		smx_wait_ring_room(smx_shared->ring.capacity, deadline);
	smx_ring_bounds(&tail, &head);
	if (tail != head)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("sim_backfill() found " UINT64_FORMAT " samples not yet flushed", head - tail),
				 errhint("See sim_status().writer_state and last_error: the writer must be running and able to flush.")));
	smx_wait_scenario_log((int64) smx_shared->fleet.tick, 10000);
}

/* Unix seconds of a timestamptz. */
static double
smx_bf_epoch(TimestampTz ts)
{
	return (double) ts / USECS_PER_SEC +
		(double) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY;
}

static char *
smx_bf_time_text(double epoch)
{
	TimestampTz ts;

	if (!smx_epoch_to_timestamptz(epoch, &ts))
		return pstrdup("(out of range)");
	return pstrdup(timestamptz_to_str(ts));
}

/* incidents[i]: the context of an error about one entry. */
typedef struct SmxPlaceCtx
{
	int			ord;
	const char *field;
} SmxPlaceCtx;

static void
smx_bf_place_context(void *arg)
{
	SmxPlaceCtx *c = arg;

	if (c->field)
		errcontext("sim_backfill() incidents[%d].%s", c->ord, c->field);
	else
		errcontext("sim_backfill() incidents[%d]", c->ord);
}

static int
smx_bf_placed_cmp(const void *a, const void *b)
{
	const SmxPlaced *x = a;
	const SmxPlaced *y = b;

	if (x->run.ticks[0] != y->run.ticks[0])
		return x->run.ticks[0] < y->run.ticks[0] ? -1 : 1;
	return x->ord - y->ord;
}

/*
 * The runs placed by hand: a JSON array of {scenario, servers, at,
 * intensity, duration}, every entry checked before anything is written.
 * Must be connected to SPI.
 */
static void
smx_bf_read_incidents(SmxBackfill *b, Jsonb *incidents)
{
	static const char *const sql =
		"SELECT t.ord::int4, pg_catalog.jsonb_typeof(t.e),"
		" pg_catalog.jsonb_typeof(t.e->'scenario'), t.e->>'scenario',"
		" pg_catalog.jsonb_typeof(t.e->'servers'),"
		" CASE pg_catalog.jsonb_typeof(t.e->'servers')"
		"  WHEN 'array' THEN ARRAY(SELECT pg_catalog.jsonb_array_elements_text(t.e->'servers'))"
		"  WHEN 'string' THEN ARRAY[t.e->>'servers'] END,"
		" pg_catalog.jsonb_typeof(t.e->'at'), t.e->>'at',"
		" pg_catalog.jsonb_typeof(t.e->'intensity'), t.e->>'intensity',"
		" pg_catalog.jsonb_typeof(t.e->'duration'), t.e->>'duration',"
		" (SELECT pg_catalog.string_agg(k, ', ') FROM pg_catalog.jsonb_object_keys("
		"   CASE pg_catalog.jsonb_typeof(t.e) WHEN 'object' THEN t.e ELSE '{}' END) k"
		"  WHERE k OPERATOR(pg_catalog.<>) ALL (ARRAY['scenario','servers','at','intensity','duration']))"
		" FROM pg_catalog.jsonb_array_elements($1) WITH ORDINALITY AS t(e, ord) ORDER BY t.ord";
	Oid			argtype = JSONBOID;
	Datum		arg = JsonbPGetDatum(incidents);
	double		first = smx_sim_epoch(&b->cfg, 1);
	double		last = smx_sim_epoch(&b->cfg, (uint64) b->ticks);
	SPITupleTable *tt;
	uint64		nrows;

	if (!JB_ROOT_IS_ARRAY(incidents) || JB_ROOT_IS_SCALAR(incidents))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("incidents must be a JSON array"),
				 errhint("Pass '[{\"scenario\": \"cpu_spike\", \"servers\": [\"web-01\"], \"at\": \"2026-11-20 14:00+00\"}]'.")));
	if (SPI_execute_with_args(sql, 1, &argtype, &arg, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "reading incidents failed");
	tt = SPI_tuptable;
	nrows = SPI_processed;
	/* outlives SPI_finish */
	b->placed = MemoryContextAllocZero(b->cxt, sizeof(SmxPlaced) * Max(nrows, 1));
	for (uint64 i = 0; i < nrows; i++)
	{
		HeapTuple	tup = tt->vals[i];
		TupleDesc	td = tt->tupdesc;
		SmxPlaceCtx pc;
		ErrorContextCallback cb;
		SmxPlaced  *p = &b->placed[b->nplaced];
		SmxRun	   *r = &p->run;
		char	   *kind,
				   *unknown,
				   *name,
				   *v;
		bool		isnull;
		Datum		servers;
		float4		intensity = 0.7f;
		double		duration_s = 600;
		double		at;
		int64		tick;

		pc.ord = (int) i;
		pc.field = NULL;
		cb.callback = smx_bf_place_context;
		cb.arg = &pc;
		cb.previous = error_context_stack;
		error_context_stack = &cb;

		kind = SPI_getvalue(tup, td, 2);
		if (kind == NULL || strcmp(kind, "object") != 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("each incident must be a JSON object, not %s", kind ? kind : "null"),
					 errhint("An incident is {\"scenario\", \"servers\", \"at\", \"intensity\", \"duration\"}.")));
		unknown = SPI_getvalue(tup, td, 13);
		if (unknown != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unknown incident field: %s", unknown),
					 errhint("An incident has scenario, servers, at, and optionally intensity and duration.")));

		/* scenario */
		pc.field = "scenario";
		kind = SPI_getvalue(tup, td, 3);
		if (kind == NULL || strcmp(kind, "string") != 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("an incident needs \"scenario\": the name of a scenario"),
					 errhint("SELECT name FROM sim_scenarios lists the scenarios.")));
		name = SPI_getvalue(tup, td, 4);
		memset(p, 0, sizeof(*p));
		p->ord = (int) i;
		smx_scenario_read_one(b->nspname, name, &r->def);

		/* intensity, duration */
		pc.field = "intensity";
		kind = SPI_getvalue(tup, td, 9);
		v = SPI_getvalue(tup, td, 10);
		if (kind != NULL && strcmp(kind, "null") != 0)
		{
			if (strcmp(kind, "number") != 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("intensity must be a number")));
			intensity = DatumGetFloat4(DirectFunctionCall1(float4in, CStringGetDatum(v)));
		}
		if (!(intensity > 0 && intensity <= 1))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("intensity must be greater than 0 and at most 1"),
					 errhint("0.7 is a clear incident, 1 the worst the scenario does.")));
		pc.field = "duration";
		kind = SPI_getvalue(tup, td, 11);
		v = SPI_getvalue(tup, td, 12);
		if (kind != NULL && strcmp(kind, "null") != 0)
		{
			if (strcmp(kind, "string") != 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("duration must be an interval as a string, such as \"20 min\"")));
			duration_s = smx_interval_seconds(DatumGetIntervalP(
																DirectFunctionCall3(interval_in, CStringGetDatum(v),
																					ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1))));
		}
		if (!(duration_s > 0 && duration_s <= SMX_MAX_DURATION_S))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("duration must be more than 0 and at most 7 days of simulated time"),
					 errhint("Durations are in simulated time, such as \"10 min\" or \"2 hours\".")));

		/* at */
		pc.field = "at";
		kind = SPI_getvalue(tup, td, 7);
		if (kind == NULL || strcmp(kind, "string") != 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("an incident needs \"at\": when it starts, as a timestamptz string")));
		v = SPI_getvalue(tup, td, 8);
		at = smx_bf_epoch(DatumGetTimestampTz(DirectFunctionCall3(timestamptz_in, CStringGetDatum(v),
																  ObjectIdGetDatum(InvalidOid),
																  Int32GetDatum(-1))));
		if (!(at > first - b->cfg.step_seconds && at <= last))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("incident at %s is outside the backfill", v),
					 errdetail("The backfill's ticks run from %s to %s.",
							   smx_bf_time_text(first), smx_bf_time_text(last)),
					 errhint("Place incidents within the span, or start live ones with sim_scenario_start().")));
		/* the first tick at or after at */
		tick = (int64) ceil((at - b->cfg.start_epoch) / b->cfg.step_seconds - 1e-9);
		tick = Max(1, Min(tick, b->ticks));

		/* servers */
		pc.field = "servers";
		kind = SPI_getvalue(tup, td, 5);
		servers = SPI_getbinval(tup, td, 6, &isnull);
		if (isnull)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("an incident needs \"servers\": ids or role:, location:, env: selectors"),
					 errhint("For example \"servers\": [\"web-01\", \"role:database\"].")));
		{
			Datum	   *elems;
			bool	   *enulls;
			int			ne;
			const char **ids;

			deconstruct_array(DatumGetArrayTypeP(servers), TEXTOID, -1, false, TYPALIGN_INT,
							  &elems, &enulls, &ne);
			ids = palloc(sizeof(char *) * Max(ne, 1));
			for (int k = 0; k < ne; k++)
			{
				if (enulls[k])
					ereport(ERROR,
							(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
							 errmsg("servers contains a null")));
				ids[k] = TextDatumGetCString(elems[k]);
			}
			smx_run_set_targets(r, ids, ne, psprintf("incidents[%d]", (int) i));
		}

		r->state = SMX_RUN_PENDING;
		r->intensity = intensity;
		r->from_level = 1.0f;
		smx_run_plan(r, tick, duration_s, b->cfg.step_seconds);
		b->nplaced++;
		error_context_stack = cb.previous;
	}
	qsort(b->placed, b->nplaced, sizeof(SmxPlaced), smx_bf_placed_cmp);
	for (int i = 0; i < b->nplaced; i++)
		elog(DEBUG1, "sim_backfill(): incidents[%d] %s at tick " INT64_FORMAT " on %d servers",
			 b->placed[i].ord, b->placed[i].run.def.name, b->placed[i].run.ticks[0],
			 b->placed[i].run.ntargets);
}

/* Back to tick 0: a fresh fleet at the origin, no run, nothing logged. */
static void
smx_bf_reset(SmxBackfill *b)
{
	smx_tick_ctx ctx;

	smx_prepare_tick(&ctx, &b->cfg, 0);
	for (int i = 0; i < b->n; i++)
		smx_state_init(&ctx, &b->params[i], &b->state[i]);
	memset(b->detect, 0, sizeof(smx_server_detector) * b->n);
	memset(b->scen, 0, sizeof(SmxScenarioState));
	memcpy(b->scen->defs, b->defs, sizeof(SmxScenarioDef) * b->ndefs);
	b->scen->ndefs = b->ndefs;
	b->scen->next_run_id = 1;
	b->tick = 0;
	b->next_placed = 0;
	b->nevents = 0;
	b->rows = 0;
	b->rejected = 0;
}

/* Step one tick, as smx_engine_tick steps the fleet. */
static void
smx_bf_step(SmxBackfill *b, double *epoch)
{
	smx_tick_ctx ctx;

	b->tick++;
	/* a run placed by hand starts as sim_scenario_start() a tick before */
	while (b->next_placed < b->nplaced && b->placed[b->next_placed].run.ticks[0] == b->tick)
	{
		SmxRun		r = b->placed[b->next_placed].run;
		int			slot = smx_run_alloc(&b->set);

		if (slot < 0)
			ereport(ERROR,
					(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
					 errmsg("incidents[%d] finds %d scenario runs active at %s",
							b->placed[b->next_placed].ord, SMX_MAX_RUNS,
							smx_bf_time_text(smx_sim_epoch(&b->cfg, (uint64) b->tick))),
					 errhint("Place fewer incidents at once.")));
		(void) smx_run_add(&b->set, slot, &r);
		b->next_placed++;
	}
	smx_prepare_tick(&ctx, &b->cfg, (uint64) b->tick);
	ctx.overlay = smx_runs_tick(&b->set, &ctx, b->state, b->params, b->n, b->run_ids);
	smx_step(&ctx, b->params, b->state, b->n);
	smx_detect_fleet(b->state, b->detect, b->n);
	*epoch = ctx.sim_epoch;

	/* the log, as the writer keeps it at this tick: planned now, written after */
	for (int s = 0; s < SMX_MAX_RUNS; s++)
	{
		SmxRun	   *r = &b->scen->runs[s];

		if (r->state == SMX_RUN_FREE || !smx_run_needs_log(r, b->tick))
			continue;
		if (b->nevents == b->cap_events)
		{
			b->cap_events = Max(64, b->cap_events * 2);
			b->events = b->events ? repalloc_huge(b->events, sizeof(SmxLogEvent) * b->cap_events) :
				palloc(sizeof(SmxLogEvent) * b->cap_events);
		}
		b->events[b->nevents].tick = b->tick;
		b->events[b->nevents].run = *r;
		b->nevents++;
		smx_log_run(&b->dry, r, b->tick);
	}
	if (b->tick % SMX_BF_PROGRESS_TICKS == 0)
		smx_bf_progress(b->ticks, b->tick, b->rows);
}

/* The samples of the tick just stepped. */
static inline void
smx_bf_samples(SmxBackfill *b, double epoch, SmxSample *out)
{
	TimestampTz ts;

	if (!smx_epoch_to_timestamptz(epoch, &ts))
		ts = DT_NOEND;
	for (int i = 0; i < b->n; i++)
		smx_sample_fill(&out[i], &b->state[i], b->id_ref[i], b->run_ids, b->tick, ts, 0);
}

/* Send worker w's block of COPY data, and start the next. */
static void
smx_bf_send_block(SmxBackfill *b, int w)
{
	if (b->wbuf[w].len > 0)
		smx_bfpool_send(b->pool, w, b->wbuf[w].data, b->wbuf[w].len);
	resetStringInfo(&b->wbuf[w]);
}

/*
 * Step one tick and encode its rows for whoever inserts them: blocks of
 * block_ticks ticks go round the leader (0) and the workers (1..n). A
 * worker reads text in the server's encoding (a background worker's client
 * encoding is SQL_ASCII: no conversion), the leader's COPY in its
 * session's client encoding.
 */
static void
smx_bf_generate_tick(SmxBackfill *b, SmxSample *samples)
{
	double		epoch;
	int			parts = 1 + smx_bfpool_size(b->pool);
	int			dest = (int) (((b->tick) / b->block_ticks) % parts);
	bool		last_of_block;

	smx_bf_step(b, &epoch);
	smx_bf_samples(b, epoch, samples);
	last_of_block = b->tick % b->block_ticks == 0 || b->tick == b->ticks;
	if (dest == 0)
	{
		for (int i = 0; i < b->n; i++)
			smx_sample_copy_binary(&b->out, &samples[i], b->id_client[i], b->id_len[i],
								   b->session_client, b->session_len, b->ncols);
	}
	else
	{
		StringInfo	wb = &b->wbuf[dest - 1];

		for (int i = 0; i < b->n; i++)
			smx_sample_copy_binary(wb, &samples[i], b->set.desc[i].id, b->id_server_len[i],
								   b->session, (int) strlen(b->session), b->ncols);
		if (last_of_block)
			smx_bf_send_block(b, dest - 1);
	}
	b->rows += b->n;
}

/* COPY's data source: the binary stream, generated a few ticks ahead. */
static int
smx_bf_copy_read(void *outbuf, int minread, int maxread)
{
	SmxBackfill *b = smx_bf_current;
	/* COPY calls this in its per-tuple context: what stepping keeps must not go there */
	MemoryContext old = MemoryContextSwitchTo(b->cxt);
	SmxSample  *samples = palloc(sizeof(SmxSample) * Max(b->n, 1));
	int			got = 0;

	while (got < maxread)
	{
		int			k;

		if (b->out_pos >= b->out.len)
		{
			resetStringInfo(&b->out);
			b->out_pos = 0;
			if (b->copy_stage == 0)
			{
				smx_copy_binary_header(&b->out);
				for (int w = 0; w < smx_bfpool_size(b->pool); w++)
				{
					smx_copy_binary_header(&b->wbuf[w]);
					smx_bf_send_block(b, w);
				}
				b->copy_stage = 1;
			}
			else if (b->copy_stage == 1 && b->tick < b->ticks)
			{
				while (b->tick < b->ticks && b->out.len < SMX_BF_OUT_BYTES)
					smx_bf_generate_tick(b, samples);
			}
			else if (b->copy_stage <= 2)
			{
				pq_sendint16(&b->out, (uint16) -1);
				for (int w = 0; w < smx_bfpool_size(b->pool); w++)
				{
					pq_sendint16(&b->wbuf[w], (uint16) -1);
					smx_bf_send_block(b, w);
				}
				b->copy_stage = 3;
			}
			else
				break;			/* EOF */
			continue;
		}
		k = Min(maxread - got, b->out.len - b->out_pos);
		memcpy((char *) outbuf + got, b->out.data + b->out_pos, k);
		b->out_pos += k;
		got += k;
		if (got >= minread && b->out_pos >= b->out.len)
			break;
	}
	pfree(samples);
	MemoryContextSwitchTo(old);
	return got;
}

/*
 * One COPY FROM into relid in binary format, fed by cb, as the current
 * user (the writer role, which the permission check sees): the leader's
 * and each worker's. bytes_total, when known, is what
 * pg_stat_progress_copy shows as the total. Returns the rows written.
 */
int64
smx_bf_copy_into(Oid relid, copy_data_source_cb cb, int64 bytes_total)
{
	Relation	rel;
	ParseState *pstate;
	ParseNamespaceItem *nsitem;
	RangeTblEntry *rte;
	List	   *cols = smx_history_copy_columns(smx_history_ncols(relid));
	List	   *options = list_make1(makeDefElem("format", (Node *) makeString("binary"), -1));
	CopyFromState cstate;
	ListCell   *lc;
	uint64		rows;

	rel = table_open(relid, RowExclusiveLock);
	pstate = make_parsestate(NULL);
	nsitem = addRangeTableEntryForRelation(pstate, rel, RowExclusiveLock, NULL, false, false);
	rte = nsitem->p_rte;
	rte->requiredPerms = ACL_INSERT;
	foreach(lc, cols)
	{
		AttrNumber	att = attnameAttNum(rel, strVal(lfirst(lc)), false);

		if (att == InvalidAttrNumber)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("server_metrics_history has no column \"%s\"", strVal(lfirst(lc))),
					 errhint("ALTER EXTENSION sim_metrics UPDATE brings the table up to date.")));
		rte->insertedCols = bms_add_member(rte->insertedCols,
										   att - FirstLowInvalidHeapAttributeNumber);
	}
	ExecCheckRTPerms(pstate->p_rtable, true);
	if (check_enable_rls(relid, InvalidOid, false) == RLS_ENABLED)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("sim_backfill() cannot write server_metrics_history with row-level security enabled"),
				 errhint("Disable row-level security on the table for the backfill.")));
	cstate = BeginCopyFrom(pstate, rel, NULL, NULL, false, cb, cols, options);
	if (bytes_total > 0)
		pgstat_progress_update_param(PROGRESS_COPY_BYTES_TOTAL, bytes_total);
	rows = CopyFrom(cstate);
	EndCopyFrom(cstate);
	table_close(rel, NoLock);
	return (int64) rows;
}

/* The leader's COPY, its share of the rows; the workers get theirs meanwhile. */
static void
smx_bf_copy_step(void *arg)
{
	SmxBackfill *b = arg;
	double		row_bytes = 2 + 4 * SMX_HISTORY_INSERT_COLS + 3 * 12 + 8 * 3 + 8 +
		(double) b->session_len + 7;

	smx_bf_current = b;
	b->copy_stage = 0;
	b->out_pos = 0;
	resetStringInfo(&b->out);
	/* the leader's share of the bytes, rows without run ids */
	(void) smx_bf_copy_into(get_relname_relid("server_metrics_history", b->nsp), smx_bf_copy_read,
							(int64) ((double) b->ticks * b->n * row_bytes /
									 (1 + smx_bfpool_size(b->pool))) + 21);
	smx_bf_current = NULL;
}

/* The fallback: every row through the flush's row-isolating insert. */
static void
smx_bf_insert_isolating(SmxBackfill *b)
{
	SmxSample  *buf = palloc(sizeof(SmxSample) * (SMX_BF_FALLBACK_ROWS + b->n));
	int			k = 0;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	while (b->tick < b->ticks)
	{
		double		epoch;

		smx_bf_step(b, &epoch);
		smx_bf_samples(b, epoch, &buf[k]);
		k += b->n;
		if (k >= SMX_BF_FALLBACK_ROWS || b->tick == b->ticks)
		{
			int64		rows = 0;

			smx_history_insert_buffer(b->nsp, buf, k, b->session, &rows, &b->rejected);
			b->rows += rows;
			k = 0;
			CHECK_FOR_INTERRUPTS();
		}
	}
	SPI_finish();
	pfree(buf);
}

/* Whether a COPY error is "no partition for this row". */
static bool
smx_bf_no_partition(Relation rel, const ErrorData *e)
{
	return rel->rd_rel->relkind == RELKIND_PARTITIONED_TABLE &&
		e->sqlerrcode == ERRCODE_CHECK_VIOLATION && e->constraint_name == NULL &&
		e->table_name != NULL;
}

/*
 * Start the insert workers (sim_metrics.backfill_workers; -1: a CPU each
 * but one), for a backfill large enough to gain from them. They wait for
 * this transaction's verdict (smx_bf_xact_callback).
 */
static void
smx_bf_start_workers(SmxBackfill *b, Relation rel)
{
	Oid			relid = RelationGetRelid(rel);
	int			want = smx_backfill_workers;

	if (want < 0)
	{
		long		ncpu = sysconf(_SC_NPROCESSORS_ONLN);

		want = (int) Min(Max(ncpu - 1, 0), SMX_BF_MAX_WORKERS);
	}
	/*
	 * A block is about SMX_BF_BLOCK_ROWS rows (800 kB): a worker's queue
	 * holds several, and everyone gets at least one.
	 */
	b->block_ticks = Max(1, SMX_BF_BLOCK_ROWS / Max(b->n, 1));
	if (want == 0 || b->ticks < b->block_ticks * (want + 1))
		return;
	/* a lock of ours the workers' RowExclusiveLock waits for would never be released */
	if (CheckRelationLockedByMe(rel, ShareLock, true))
		return;
	b->pool = smx_bfpool_start(relid, want);
	smx_bf_pool = b->pool;
	for (int w = 0; w < smx_bfpool_size(b->pool); w++)
		initStringInfo(&b->wbuf[w]);
	b->id_server_len = palloc(sizeof(int) * b->n);
	for (int i = 0; i < b->n; i++)
		b->id_server_len[i] = (int) strlen(b->set.desc[i].id);
}

/* Write the planned log, in order, as the writer would have. */
static void
smx_bf_write_log(SmxBackfill *b)
{
	SmxLogSql	q;

	if (b->nevents == 0)
		return;
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	smx_log_sql(quote_identifier(b->nspname), &q);
	q.has_clock = true;
	q.clock = b->cfg;
	for (int i = 0; i < b->nevents; i++)
		smx_log_run(&q, &b->events[i].run, b->events[i].tick);
	SPI_finish();
}

/*
 * What the tables hold decides: nothing, or only what the running session
 * wrote since it started (its rows, its runs), which the backfill
 * replaces: its end re-simulates their time. Anything older is refused.
 * Returns the rows to replace. Runs as the writer role, connected to SPI.
 */
static int64
smx_bf_check_tables(SmxBackfill *b, const char *session)
{
	const char *nsp = quote_identifier(b->nspname);
	Oid			argtype = TEXTOID;
	Datum		arg = CStringGetTextDatum(session);
	bool		isnull,
				no_oldest,
				no_first_run;
	int64		others,
				mine;
	double		oldest,
				first_run;
	const char *why = NULL;

	if (SPI_execute_with_args(psprintf("SELECT"
									   " (SELECT pg_catalog.count(*) FROM (SELECT 1 FROM %1$s.server_metrics_history"
									   "   WHERE (session_id OPERATOR(pg_catalog.=) $1) IS NOT TRUE LIMIT 1) o),"
									   " (SELECT pg_catalog.count(*) FROM %1$s.server_metrics_history"
									   "   WHERE session_id OPERATOR(pg_catalog.=) $1),"
									   " (SELECT pg_catalog.date_part('epoch', pg_catalog.min(\"timestamp\"))"
									   "   FROM %1$s.server_metrics_history),"
									   " (SELECT pg_catalog.date_part('epoch', pg_catalog.min(started_at))"
									   "   FROM %1$s.scenario_execution_log)",
									   nsp),
							  1, &argtype, &arg, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "reading server_metrics_history failed");
	others = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	mine = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	oldest = smx_get_double(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, 0);
	(void) SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &no_oldest);
	first_run = smx_get_double(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4, 0);
	(void) SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4, &no_first_run);

	if (others > 0)
		why = psprintf("server_metrics_history holds rows of earlier sessions (the oldest at %s).",
					   smx_bf_time_text(oldest));
	else if (mine > 0 && oldest < b->cfg.start_epoch)
		why = psprintf("The running session's rows go back to %s, before the backfill's start.",
					   smx_bf_time_text(oldest));
	else if (!no_first_run && (no_oldest || first_run < oldest - b->cfg.step_seconds))
		why = psprintf("scenario_execution_log holds runs older than the running session (the oldest at %s).",
					   smx_bf_time_text(first_run));
	if (why != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("sim_backfill() writes the past of a fleet that has none, and this one has history"),
				 errdetail("%s", why),
				 errhint("Backfill right after CREATE EXTENSION, or start over: SELECT sim_stop(); TRUNCATE %s.server_metrics_history, %s.scenario_execution_log; then sim_backfill() and sim_start().",
						 nsp, nsp)));
	if (mine > 0 || !no_first_run)
	{
		if (SPI_execute_with_args(psprintf("DELETE FROM %s.server_metrics_history"
										   " WHERE session_id OPERATOR(pg_catalog.=) $1",
										   nsp),
								  1, &argtype, &arg, NULL, false, 0) != SPI_OK_DELETE ||
			SPI_execute(psprintf("DELETE FROM %s.scenario_execution_log", nsp), false, 0) !=
			SPI_OK_DELETE)
			elog(ERROR, "deleting what the running session wrote failed");
		ereport(NOTICE,
				(errmsg("sim_backfill() replaces the " INT64_FORMAT " rows the fleet wrote since it started", mine),
				 errdetail("The backfill's last ticks simulate their time again, continuing its past; the session's scenario runs end with it.")));
	}
	return mine;
}

/*
 * sim_backfill(span interval, incidents jsonb DEFAULT NULL) RETURNS bigint:
 * span of history ending at the current simulated time, the fleet going on
 * from its end. Returns the rows written.
 */
Datum
sim_backfill(PG_FUNCTION_ARGS)
{
	SmxBackfill *b;
	double		span_s;
	uint64		now_tick;
	smx_config	cfg;
	SmxSavedUser saved;
	Oid			ext;
	Relation	rel;
	ErrorData  *edata;
	uint64		fleet_version;
	char		session[SMX_SESSION_LEN];
	MemoryContext cxt;

	smx_require_fleet_database();
	if (IsInParallelMode())
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TRANSACTION_STATE),
				 errmsg("sim_backfill() cannot run in a parallel worker")));
	if (IsSubTransaction())
		ereport(ERROR,
				(errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
				 errmsg("sim_backfill() cannot run inside a subtransaction"),
				 errdetail("A savepoint or an EXCEPTION block could roll back part of the backfill and keep the rest."),
				 errhint("Call it outside savepoints and EXCEPTION blocks.")));
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("span must not be NULL"),
				 errhint("Pass how much history to write, such as '30 days'.")));
	span_s = smx_interval_seconds(PG_GETARG_INTERVAL_P(0));
	if (!(span_s > 0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("span must be a positive interval"),
				 errhint("Pass how much history to write, such as '30 days'.")));
	if (!OidIsValid(smx_shared->fleet.extension) || smx_shared->fleet.nservers == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the sim_metrics fleet is not loaded"),
				 errhint("Wait for the writer to load server_templates, or call sim_reload().")));

	/* it decides on rows the writer flushes now: it must see them */
	if (IsolationUsesXactSnapshot())
		ereport(ERROR,
				(errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
				 errmsg("sim_backfill() must run in a READ COMMITTED transaction"),
				 errhint("Call it on its own, or after SET TRANSACTION ISOLATION LEVEL READ COMMITTED.")));
	smx_bf_hold();
	smx_bf_wait_flushed();

	b = palloc0(sizeof(SmxBackfill));
	b->cxt = CurrentMemoryContext;
	b->nsp = smx_extension_schema(&ext);
	b->ncols = smx_history_ncols(get_relname_relid("server_metrics_history", b->nsp));
	b->nspname = smx_extension_schema_name();
	b->started = GetCurrentTimestamp();

	/* the fleet as it stands: held, so nothing changes it from here on */
	LWLockAcquire(smx_shared->step_lock, LW_EXCLUSIVE);
	LWLockAcquire(smx_shared->publish_lock, LW_SHARED);
	smx_current_config(&cfg);
	now_tick = smx_shared->fleet.tick;
	fleet_version = smx_shared->fleet.version;
	b->n = smx_shared->fleet.nservers;
	b->params = palloc(sizeof(smx_params) * b->n);
	memcpy((void *) b->params, smx_shared_params(), sizeof(smx_params) * b->n);
	b->state = palloc(sizeof(smx_state) * b->n);
	b->detect = palloc0(sizeof(smx_server_detector) * b->n);
	b->id_ref = palloc(sizeof(int32) * b->n);
	memcpy(b->id_ref, smx_shared_id_ref(), sizeof(int32) * b->n);
	b->ndefs = smx_shared->scen.ndefs;
	b->defs = palloc(sizeof(SmxScenarioDef) * Max(b->ndefs, 1));
	memcpy(b->defs, smx_shared->scen.defs, sizeof(SmxScenarioDef) * b->ndefs);
	b->set.desc = palloc(sizeof(SmxServerDesc) * b->n);
	memcpy((void *) b->set.desc, smx_shared_desc(), sizeof(SmxServerDesc) * b->n);
	b->set.calls = palloc(sizeof(int32) * SMX_CALLS * b->n);
	memcpy((void *) b->set.calls, smx_shared_calls(), sizeof(int32) * SMX_CALLS * b->n);
	strlcpy(session, smx_shared->fleet.session_id, sizeof(session));
	LWLockRelease(smx_shared->publish_lock);
	LWLockRelease(smx_shared->step_lock);

	/* the clock: K ticks ending at the current simulated time */
	b->ticks = (int64) floor(span_s / cfg.step_seconds + 1e-9);
	if (b->ticks < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("span is shorter than one tick (%g simulated seconds)", cfg.step_seconds),
				 errhint("Pass a span of at least one tick.")));
	if ((double) b->ticks * b->n > (double) SMX_BF_MAX_ROWS)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("a backfill of " INT64_FORMAT " ticks of %d servers is too large", b->ticks, b->n),
				 errhint("Backfill a shorter span, or raise sim_metrics.tick_interval.")));
	if (smx_start_time == NULL || smx_start_time[0] == '\0')
		cfg.start_epoch = smx_sim_epoch(&cfg, now_tick) - (double) b->ticks * cfg.step_seconds;
	else if (now_tick > (uint64) b->ticks)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the fleet is at tick " UINT64_FORMAT ", past the backfill's end at tick " INT64_FORMAT,
						now_tick, b->ticks),
				 errdetail("With sim_metrics.start_time set, a backfill writes span from start_time on; the fleet would go back in time."),
				 errhint("Backfill a longer span, or leave sim_metrics.start_time empty: the backfill then ends at the current simulated time.")));
	b->cfg = cfg;
	{
		TimestampTz t0,
					t1;

		if (!smx_epoch_to_timestamptz(smx_sim_epoch(&cfg, 0), &t0) ||
			!smx_epoch_to_timestamptz(smx_sim_epoch(&cfg, (uint64) b->ticks + 1), &t1))
			ereport(ERROR,
					(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
					 errmsg("the backfill's simulated time leaves the timestamp range"),
					 errhint("Backfill a shorter span.")));
	}
	if (smx_history_retention_s > 0 && span_s > smx_history_retention_s)
		ereport(WARNING,
				(errmsg("the writer's retention deletes the rows older than sim_metrics.history_retention (%d s) soon after the backfill",
						smx_history_retention_s),
				 errhint("Raise sim_metrics.history_retention, or set it to 0, to keep the whole backfill.")));

	/* the private runs */
	cxt = CurrentMemoryContext;
	b->scen = palloc0(sizeof(SmxScenarioState));
	b->set.scen = b->scen;
	b->set.lock = NULL;
	memset(&b->dry, 0, sizeof(b->dry));
	b->dry.dry = true;

	/* the rows' session, and the texts in the client encoding COPY reads */
	b->session = psprintf("backfill-%llx-%d", (unsigned long long) b->started, MyProcPid);
	b->session[Min(strlen(b->session), SMX_SESSION_LEN - 1)] = '\0';
	b->session_client = pg_server_to_client(b->session, (int) strlen(b->session));
	b->session_len = (int) strlen(b->session_client);
	b->id_client = palloc(sizeof(char *) * b->n);
	b->id_len = palloc(sizeof(int) * b->n);
	for (int i = 0; i < b->n; i++)
	{
		b->id_client[i] = pg_server_to_client(b->set.desc[i].id, (int) strlen(b->set.desc[i].id));
		b->id_len[i] = (int) strlen(b->id_client[i]);
	}
	initStringInfo(&b->out);
	enlargeStringInfo(&b->out, SMX_BF_OUT_BYTES + 64 * 1024);

	/* incidents are the caller's: read and checked as the caller */
	if (!PG_ARGISNULL(1))
	{
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		smx_bf_read_incidents(b, PG_GETARG_JSONB_P(1));
		SPI_finish();
	}

	smx_become_writer(&saved);
	rel = table_open(get_relname_relid("server_metrics_history", b->nsp), RowExclusiveLock);
	smx_writer_may(RelationGetRelid(rel), ACL_INSERT,
				   "GRANT INSERT ON server_metrics_history TO " SMX_WRITER_ROLE);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	(void) smx_bf_check_tables(b, session);
	SPI_finish();

	smx_bf_progress(b->ticks, 0, 0);
	smx_bf_reset(b);
	smx_bf_start_workers(b, rel);
	edata = smx_subxact(smx_bf_copy_step, b);
	MemoryContextSwitchTo(cxt);
	if (b->pool != NULL)
	{
		SmxBfFailure fail;

		(void) smx_bfpool_finish(b->pool, &fail);
		if (edata == NULL && fail.sqlerrcode != 0)
		{
			/* a worker's COPY failed: as if the leader's had */
			edata = palloc0(sizeof(ErrorData));
			edata->elevel = ERROR;
			edata->sqlerrcode = fail.sqlerrcode;
			edata->message = pstrdup(fail.message);
			if (fail.no_partition)
				edata->table_name = pstrdup("server_metrics_history");
		}
		if (edata != NULL)
		{
			/* the workers' rows go with them; the rest is the leader's */
			smx_bf_pool = NULL;
			(void) smx_bfpool_verdict(b->pool, false);
			b->pool = NULL;
		}
	}
	if (edata != NULL)
	{
		if (smx_bf_no_partition(rel, edata))
		{
			double		first = smx_sim_epoch(&b->cfg, 1);
			double		last = smx_sim_epoch(&b->cfg, (uint64) b->ticks);

			ereport(ERROR,
					(errcode(ERRCODE_CHECK_VIOLATION),
					 errmsg("server_metrics_history has no partition for part of the backfill's time"),
					 errdetail("The backfill writes \"timestamp\" from %s to %s; the table said: %s",
							   smx_bf_time_text(first), smx_bf_time_text(last), edata->message),
					 errhint("Create partitions covering %s to %s first (with pg_partman: partman.create_partition_time() or a premake far enough back), or a default partition.",
							 smx_bf_time_text(first), smx_bf_time_text(last))));
		}
		if (!smx_error_is_per_row(edata->sqlerrcode) &&
			edata->sqlerrcode != ERRCODE_INSUFFICIENT_PRIVILEGE)
			ReThrowError(edata);
		/* rows the table refuses: step again, isolating them */
		ereport(NOTICE,
				(errmsg("server_metrics_history refused rows of the backfill (%s); writing it row-isolated, refused rows go to server_metrics_rejected",
						edata->message)));
		FreeErrorData(edata);
		smx_bf_reset(b);
		smx_bf_insert_isolating(b);
	}
	smx_bf_write_log(b);
	table_close(rel, NoLock);
	smx_restore_user(&saved);
	smx_bf_progress(b->ticks, b->ticks, b->rows);

	/* what the fleet goes on from, once this transaction commits */
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
		SmxAdopt   *a = palloc0(sizeof(SmxAdopt));
		smx_state  *st = palloc(sizeof(smx_state) * b->n);
		smx_server_detector *det = palloc(sizeof(smx_server_detector) * b->n);
		SmxRun	   *runs = palloc(sizeof(SmxRun) * SMX_MAX_RUNS);

		MemoryContextSwitchTo(old);
		memcpy(st, b->state, sizeof(smx_state) * b->n);
		memcpy(det, b->detect, sizeof(smx_server_detector) * b->n);
		memcpy(runs, b->scen->runs, sizeof(SmxRun) * SMX_MAX_RUNS);
		a->fleet_version = fleet_version;
		a->extension = ext;
		a->n = b->n;
		a->state = st;
		a->detect = det;
		a->clock = b->cfg;
		a->tick = (uint64) b->ticks;
		a->runs = runs;
		a->next_run_id = b->scen->next_run_id;
		if (smx_bf_adopt != NULL)
		{
			pfree((void *) smx_bf_adopt->state);
			pfree((void *) smx_bf_adopt->detect);
			pfree((void *) smx_bf_adopt->runs);
			pfree(smx_bf_adopt);
		}
		smx_bf_adopt = a;
	}
	ereport(DEBUG1,
			(errmsg("sim_backfill(): " INT64_FORMAT " rows with %d insert workers, " INT64_FORMAT " refused, %d log writes in %.3f s, memory %zu kB",
					b->rows, smx_bfpool_size(b->pool), b->rejected, b->nevents,
					(double) (GetCurrentTimestamp() - b->started) / USECS_PER_SEC,
					MemoryContextMemAllocated(b->cxt, true) / 1024)));
	PG_RETURN_INT64(b->rows);
}

/*
 * recover.c — after a restart wiped shared memory, the writer takes the
 * samples that were in the ring but never reached server_metrics_history
 * back from Redis, before the fleet continues from history (restore.c).
 *
 * The mirror (mirror.c) sends every sample to the journal, a hash a tick
 * ({prefix}journal:{tick}, server id -> sample), and after Redis took a
 * round records in {prefix}mirror the tick up to which every sample is in
 * the journal or in the table. Recovery trusts that mark only when it was
 * written by this cluster (system identifier) for this extension (its
 * OID): a re-created extension or another cluster sharing the Redis
 * recovers nothing.
 *
 * Each server gets back its journal samples after its newest stored tick,
 * up to the mark, as long as they follow each other without a gap and the
 * first is the tick right after its stored one; the ticks recovered end at
 * the same tick for every server (the tick numbering then continues from
 * the newest tick stored), so no chart has a hole and nothing is inserted
 * twice. Every field of a sample is checked before it reaches the table;
 * the insert runs as the writer role in a subtransaction: if it fails,
 * recovery is skipped and logged, the fleet still starts.
 *
 * Nothing Redis says is taken on trust for its size: the mark is read no
 * further than the history ring could have held past the newest stored
 * tick (ring capacity / servers), replies and strings past their bounds
 * are left out, the journal is read in batches that check for interrupts
 * and for a shutdown, and reading stops at the first tick the journal
 * lacks (expired or never written). Whatever is rejected or missing is
 * logged as a WARNING and shown in sim_status().last_error.
 */
#include "postgres.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "access/xact.h"
#include "access/xlog.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "postmaster/interrupt.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"

#include "sim_metrics.h"

#define SMX_RECOVER_BATCH		1024	/* journal ticks asked for a round trip */
/* beyond any tick a simulation reaches (2^62: 10 ms ticks for a billion years) */
#define SMX_RECOVER_TICK_MAX	(INT64CONST(1) << 62)
#define SMX_RECOVER_MARK_FIELDS 16	/* fields of the mark read, at most */

/* What recovery learns per server. */
typedef struct SmxRecoverServer
{
	int64		stored;			/* newest tick in the table, 0 = none */
	SmxRedisSample *rows;		/* recovered, in tick order, no gap */
	int			nrows;
} SmxRecoverServer;

/* A journal sample of server idx. */
typedef struct SmxRecoverItem
{
	int			idx;
	SmxRedisSample r;
} SmxRecoverItem;

typedef struct SmxRecoverCtx
{
	const SmxServerDesc *desc;	/* the fleet, sorted by id */
	int			n;
	SmxRecoverServer *srv;
	int64		mark;			/* {prefix}mirror tick, -1 = none */
	bool		mark_ok;
	int64		newest;			/* newest tick stored (any server) */
	int64		read_to;		/* the journal is read up to here (<= mark) */
	bool		mark_cut;		/* read_to < mark: the mark was not believed */
	int64		first_tick;		/* tick of the first journal reply of a batch */
	int64		missing_tick;	/* first tick past newest with no sample, 0 = none */
	int64		oversized;		/* journal replies left out for their size */
	int64		range_from;		/* the first tick read */
	int64		range_n;		/* ticks read: present[] */
	bool	   *present;		/* tick range_from + i had a valid sample */
	SmxRecoverItem *items;		/* journal samples past each server's stored tick */
	int64		nitems;
	int64		items_cap;
} SmxRecoverCtx;

/* A WARNING that also goes to sim_status().last_error. */
static void
smx_recover_warn(const char *msg, const char *hint)
{
	ereport(WARNING,
			(errcode(ERRCODE_DATA_EXCEPTION),
			 errmsg("sim_metrics: %s", msg),
			 hint ? errhint("%s", hint) : 0));
	smx_record_error(psprintf("crash recovery from Redis: %s", msg));
}

/*
 * Interrupts, and the worker's shutdown request (SIGTERM only sets
 * ShutdownRequestPending in the workers): recovery is given up, and the
 * fleet load with it, so the next writer tries again.
 */
static void
smx_recover_check_interrupts(void)
{
	CHECK_FOR_INTERRUPTS();
	if (ShutdownRequestPending)
		ereport(ERROR,
				(errcode(ERRCODE_ADMIN_SHUTDOWN),
				 errmsg("sim_metrics: crash recovery from Redis interrupted by a shutdown request")));
}

/* a + b, no further than PG_INT64_MAX (both >= 0) */
static int64
smx_add_sat(int64 a, int64 b)
{
	return a > PG_INT64_MAX - b ? PG_INT64_MAX : a + b;
}

/* The {prefix}mirror hash: trusted only from this cluster and extension. */
static void
smx_recover_mark_reply(void *arg, int64 index, const void *reply)
{
	SmxRecoverCtx *ctx = (SmxRecoverCtx *) arg;
	int64		n = smx_reply_elements(reply);
	Oid			ext;
	char		sys[24],
				extt[16];
	int			matched = 0;

	(void) smx_extension_schema(&ext);
	snprintf(sys, sizeof(sys), UINT64_FORMAT, GetSystemIdentifier());
	snprintf(extt, sizeof(extt), "%u", ext);
	/* the mirror writes five fields: a hash of many more is not its mark */
	if (n > 2 * SMX_RECOVER_MARK_FIELDS)
	{
		smx_recover_warn(psprintf("the Redis mark has " INT64_FORMAT " fields, more than the %d it may have; it is not trusted",
								  n / 2, SMX_RECOVER_MARK_FIELDS),
						 "Something other than the sim_metrics mirror wrote the mark: check what else uses this Redis and sim_metrics.redis_key_prefix.");
		return;
	}
	for (int64 i = 0; i + 1 < n; i += 2)
	{
		size_t		klen,
					vlen;
		const char *k = smx_reply_element(reply, i, &klen);
		const char *v = smx_reply_element(reply, i + 1, &vlen);
		char		val[64];

		if (k == NULL || v == NULL || vlen >= sizeof(val) || strlen(k) != klen)
			continue;
		memcpy(val, v, vlen);
		val[vlen] = '\0';
		if (strcmp(k, "tick") == 0 && smx_text_int64(val, &ctx->mark))
			matched++;
		else if (strcmp(k, "system") == 0 && strcmp(val, sys) == 0)
			matched++;
		else if (strcmp(k, "extension") == 0 && strcmp(val, extt) == 0)
			matched++;
	}
	ctx->mark_ok = matched == 3 && ctx->mark > 0;
}

/* The fleet index of a server id (not NUL-terminated), or -1. */
static int
smx_recover_index(const SmxRecoverCtx *ctx, const char *id, size_t len)
{
	char		buf[SMX_ID_LEN];

	if (len == 0 || len >= SMX_ID_LEN || memchr(id, '\0', len) != NULL)
		return -1;
	memcpy(buf, id, len);
	buf[len] = '\0';
	return smx_desc_find(ctx->desc, ctx->n, buf);
}

/* One tick's journal: keep the well-formed samples past the stored tick. */
static void
smx_recover_journal_reply(void *arg, int64 index, const void *reply)
{
	SmxRecoverCtx *ctx = (SmxRecoverCtx *) arg;
	int64		tick = ctx->first_tick + index;
	int64		n = smx_reply_elements(reply);
	int64		kept = 0;

	smx_recover_check_interrupts();

	/*
	 * A tick's hash has a field a server, of the fleet or retired since:
	 * never more than the id pool holds. A bigger one was not written by
	 * the mirror and is left out (counted, reported once).
	 */
	if (n > 2 * (int64) Max(smx_shared->ring.id_pool_size, ctx->n))
	{
		ctx->oversized++;
		n = 0;
	}
	for (int64 i = 0; i + 1 < n; i += 2)
	{
		size_t		idlen,
					len;
		const char *id = smx_reply_element(reply, i, &idlen);
		const char *v = smx_reply_element(reply, i + 1, &len);
		int			idx = id ? smx_recover_index(ctx, id, idlen) : -1;
		SmxRedisSample r;

		if (idx < 0 || v == NULL || !smx_sample_decode(v, len, &r) || r.tick != tick)
			continue;
		kept++;
		if (tick <= ctx->srv[idx].stored)
			continue;
		if (ctx->nitems == ctx->items_cap)
		{
			ctx->items_cap = Max(1024, ctx->items_cap * 2);
			ctx->items = ctx->items ?
				repalloc_huge(ctx->items, sizeof(SmxRecoverItem) * ctx->items_cap) :
				palloc_extended(sizeof(SmxRecoverItem) * ctx->items_cap, MCXT_ALLOC_HUGE);
		}
		ctx->items[ctx->nitems].idx = idx;
		ctx->items[ctx->nitems].r = r;
		ctx->nitems++;
	}
	if (tick >= ctx->range_from && tick - ctx->range_from < ctx->range_n)
		ctx->present[tick - ctx->range_from] = kept > 0;
	/* past every stored tick, a tick without one sample is a hole */
	if (kept == 0 && tick > ctx->newest && ctx->missing_tick == 0)
		ctx->missing_tick = tick;
}

static int
smx_recover_item_cmp(const void *a, const void *b)
{
	const SmxRecoverItem *x = a;
	const SmxRecoverItem *y = b;

	if (x->idx != y->idx)
		return x->idx < y->idx ? -1 : 1;
	return x->r.tick < y->r.tick ? -1 : x->r.tick > y->r.tick ? 1 : 0;
}

/*
 * Whether every tick of [from, to) was read and had samples (of other
 * servers): a server missing from them was not in the fleet then (a
 * journal tick expires whole), so its journal starting later is no hole.
 */
static bool
smx_recover_absent(const SmxRecoverCtx *ctx, int64 from, int64 to)
{
	if (from < ctx->range_from || to - ctx->range_from > ctx->range_n)
		return false;
	for (int64 t = from; t < to; t++)
		if (!ctx->present[t - ctx->range_from])
			return false;
	return true;
}

/*
 * Give each server its run of journal samples without a gap, starting
 * right after its stored tick (anywhere in what was read for a server with
 * no row yet, or after ticks it was not in the fleet for). A server whose
 * journal starts later lost the ticks between (an expired journal tick):
 * it gets nothing, and the first such server is reported.
 */
static void
smx_recover_runs(SmxRecoverCtx *ctx)
{
	int			late = 0;
	int			late_idx = -1;
	int64		late_tick = 0;

	qsort(ctx->items, ctx->nitems, sizeof(SmxRecoverItem), smx_recover_item_cmp);
	for (int64 i = 0; i < ctx->nitems;)
	{
		int			idx = ctx->items[i].idx;
		SmxRecoverServer *s = &ctx->srv[idx];
		int64		j = i;

		s->nrows = 0;
		while (j < ctx->nitems && ctx->items[j].idx == idx)
			j++;
		if (s->stored > 0 && ctx->items[i].r.tick != s->stored + 1 &&
			smx_recover_absent(ctx, s->stored + 1, ctx->items[i].r.tick))
			ereport(LOG,
					(errmsg("sim_metrics: the Redis journal of server \"%s\" starts at tick " INT64_FORMAT ", after its newest stored tick " INT64_FORMAT ": the ticks between hold samples of other servers only, it was not in the fleet then",
							ctx->desc[idx].id, ctx->items[i].r.tick, s->stored)));
		else if (s->stored > 0 && ctx->items[i].r.tick != s->stored + 1)
		{
			if (late++ == 0)
			{
				late_idx = idx;
				late_tick = ctx->items[i].r.tick;
			}
			i = j;
			continue;
		}
		s->rows = palloc(sizeof(SmxRedisSample) * (j - i));
		for (int64 k = i; k < j; k++)
		{
			if (s->nrows > 0 && ctx->items[k].r.tick != s->rows[s->nrows - 1].tick + 1)
				break;
			s->rows[s->nrows++] = ctx->items[k].r;
		}
		i = j;
	}
	if (late > 0)
		smx_recover_warn(psprintf("the Redis journal of %d servers does not start right after their newest stored tick (server \"%s\": stored up to tick " INT64_FORMAT ", journal from tick " INT64_FORMAT "); their samples are not recovered",
								  late, ctx->desc[late_idx].id, ctx->srv[late_idx].stored, late_tick),
						 "The journal ticks in between expired or were never written; those servers' history has a hole there.");
}

/* Each server's newest stored tick (of its latest row). Connected to SPI. */
static void
smx_recover_stored(Oid nsp, const SmxServerDesc *desc, int n, SmxRecoverServer *srv)
{
	smx_select_latest_rows(nsp, desc, n, "h.tick", true);
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		bool		n1,
					n2;
		int			i = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1, &n1)) - 1;
		Datum		t = SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 2, &n2);

		if (!n1 && !n2 && i >= 0 && i < n)
			srv[i].stored = Max(DatumGetInt64(t), 0);
	}
}

/*
 * The tick the journal is read up to: the mark, but no further than the
 * history ring could have held past the newest tick stored (ring capacity /
 * servers, the bound recovery already used for how far back to read). A
 * mark beyond it was not written by this cluster's mirror for this table
 * (or the table lost rows): it is cut to the bound and reported.
 */
static int64
smx_recover_read_to(SmxRecoverCtx *ctx, Oid nsp, int64 ring_ticks)
{
	uint64		table_newest = (uint64) ctx->newest;
	double		unused;
	int64		limit;

	/* rows of retired servers may run further than the fleet's latest rows */
	smx_restore_newest_tick(nsp, &table_newest, &unused);
	limit = smx_add_sat(Max((int64) Min(table_newest, (uint64) PG_INT64_MAX), ctx->newest),
						ring_ticks);
	if (ctx->mark <= limit)
		return ctx->mark;
	ctx->mark_cut = true;
	smx_recover_warn(psprintf("the Redis mark claims tick " INT64_FORMAT ", beyond what the history ring could hold past the newest stored tick (" INT64_FORMAT " + " INT64_FORMAT " ticks); the journal is read no further than tick " INT64_FORMAT,
							  ctx->mark, limit - ring_ticks, ring_ticks, limit),
					 "The mark was not written by this cluster's mirror for this history table; check what else writes to this Redis under sim_metrics.redis_key_prefix.");
	return limit;
}

/*
 * Ask Redis: the mark, then the journal of each tick from the oldest one a
 * server may miss (no further back than the ring could hold) to the mark
 * (no further than the ring could hold past the newest stored tick), in
 * batches of SMX_RECOVER_BATCH ticks, up to the first tick with no sample.
 * False (with err) when Redis could not be asked.
 */
static bool
smx_recover_fetch(SmxRecoverCtx *ctx, Oid nsp, char *err, size_t errlen)
{
	void	   *volatile conn = smx_redis_open(err, errlen);
	volatile bool ok = true;

	if (conn == NULL)
		return false;
	/* the connection is closed however this ends (an interrupt, an error) */
	PG_TRY();
	{
		SmxPipe		p;
		const char *argv[2] = {"HGETALL", psprintf("%smirror", smx_redis_key_prefix)};

		smx_pipe_begin(&p, conn);
		smx_pipe_argv(&p, 2, argv);
		ok = smx_pipe_finish(&p, smx_recover_mark_reply, ctx) && p.error_replies == 0;
		if (!ok)
			strlcpy(err, p.err, errlen);
		if (ok && ctx->mark_ok)
		{
			for (int i = 0; i < ctx->n; i++)
				ctx->newest = Max(ctx->newest, ctx->srv[i].stored);
			/* a tick no simulation reaches: nothing to trust, no sum to overflow */
			if (ctx->newest > SMX_RECOVER_TICK_MAX)
			{
				smx_recover_warn(psprintf("the newest stored tick (" INT64_FORMAT ") is beyond what a simulation reaches; nothing is recovered",
										  ctx->newest), NULL);
				ctx->mark_ok = false;
			}
		}
		if (ok && ctx->mark_ok)
		{
			int64		oldest = ctx->mark;
			int64		ring_ticks = (int64) (smx_shared->ring.capacity / Max(ctx->n, 1)) + 1;
			int64		from;
			char	   *key = palloc(strlen(smx_redis_key_prefix) + 32);

			for (int i = 0; i < ctx->n; i++)
				oldest = Min(oldest, ctx->srv[i].stored);
			ctx->read_to = smx_recover_read_to(ctx, nsp, ring_ticks);
			from = Max(oldest, ctx->read_to - ring_ticks) + 1;
			ctx->range_from = from;
			ctx->range_n = Max(ctx->read_to - from + 1, 0);
			ctx->present = palloc_extended(sizeof(bool) * Max(ctx->range_n, 1),
										   MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
			argv[1] = key;
			while (ok && from <= ctx->read_to && ctx->missing_tick == 0)
			{
				int64		k = Min((int64) SMX_RECOVER_BATCH, ctx->read_to - from + 1);

				smx_recover_check_interrupts();
				smx_pipe_begin(&p, conn);
				for (int64 t = from; t < from + k; t++)
				{
					snprintf(key, strlen(smx_redis_key_prefix) + 32, "%sjournal:" INT64_FORMAT,
							 smx_redis_key_prefix, t);
					smx_pipe_argv(&p, 2, argv);
				}
				ctx->first_tick = from;
				ok = smx_pipe_finish(&p, smx_recover_journal_reply, ctx) &&
					p.error_replies == 0;
				if (!ok)
					strlcpy(err, p.err, errlen);
				from += k;
			}
			if (ctx->oversized > 0)
				smx_recover_warn(psprintf(INT64_FORMAT " ticks of the Redis journal have more fields than the fleet could have written; they are left out",
										  ctx->oversized), NULL);
		}
	}
	PG_FINALLY();
	{
		smx_redis_close(conn);
	}
	PG_END_TRY();
	return ok;
}

/* Insert rows [0, upto - stored] of every server (as the writer role). */
static int64
smx_recover_insert(Oid nsp, const SmxServerDesc *desc, int n, SmxRecoverServer *srv, int64 upto)
{
	int64		total = 0;
	SmxHistoryBatch batch;

	for (int i = 0; i < n; i++)
		for (int j = 0; j < srv[i].nrows && srv[i].rows[j].tick <= upto; j++)
			total++;
	if (total == 0)
		return 0;
	smx_history_batch_init(&batch, nsp, (int) total);
	for (int i = 0; i < n; i++)
	{
		Datum		id = CStringGetTextDatum(desc[i].id);

		for (int j = 0; j < srv[i].nrows && srv[i].rows[j].tick <= upto; j++)
		{
			SmxRedisSample *r = &srv[i].rows[j];
			SmxHistoryRow row;

			row.server_id = id;
			row.session_id = r->session[0] == '\0' ? (Datum) 0 : CStringGetTextDatum(r->session);
			row.tick = r->tick;
			row.sim_time = r->sim_time;
			memcpy(row.pct, r->pct, sizeof(row.pct));
			row.network_io = r->network_io;
			row.status = r->status;
			row.scenario_run = 0;	/* the journal does not carry it */
			row.anomaly = r->anomaly;
			smx_history_batch_add(&batch, &row);
		}
	}
	return smx_history_batch_insert(&batch);
}

/* The tick every server's recovered samples reach: the least of their ends. */
static int64
smx_recover_upto(const SmxRecoverServer *srv, int n, int64 mark, int *nservers)
{
	int64		upto = mark;

	*nservers = 0;
	for (int i = 0; i < n; i++)
		if (srv[i].nrows > 0)
		{
			upto = Min(upto, srv[i].rows[srv[i].nrows - 1].tick);
			(*nservers)++;
		}
	return upto;
}

/* The arguments and result of one guarded recovery (smx_recover_step). */
typedef struct SmxRecoverStep
{
	Oid			nsp;
	const SmxServerDesc *desc;
	int			n;
	SmxRecoverCtx *ctx;
	int64	   *upto;
	int		   *nservers;
	int64		rows;
} SmxRecoverStep;

static void
smx_recover_step(void *arg)
{
	SmxRecoverStep *st = arg;
	SmxRecoverCtx *ctx = st->ctx;
	char		err[SMX_ERROR_LEN] = "";

	smx_recover_stored(st->nsp, st->desc, st->n, ctx->srv);
	if (!smx_recover_fetch(ctx, st->nsp, err, sizeof(err)))
		ereport(LOG,
				(errmsg("sim_metrics: could not recover unflushed samples from Redis: %s", err)));
	else if (ctx->mark_ok)
	{
		smx_recover_runs(ctx);
		*st->upto = smx_recover_upto(ctx->srv, st->n, ctx->read_to, st->nservers);
		/* past a mark cut short, the journal is expected to end: no second report */
		if (ctx->mark_cut)
			;
		else if (ctx->missing_tick > 0 && ctx->missing_tick <= ctx->read_to)
			smx_recover_warn(psprintf("the Redis journal has no sample of tick " INT64_FORMAT " though the mark claims every tick up to " INT64_FORMAT "; recovery stops before it",
									  ctx->missing_tick, ctx->mark),
							 "The journal tick expired (sim_metrics.redis_ttl, sim_metrics.flush_interval) or was removed; the samples from it on are lost.");
		else if (*st->nservers > 0 && *st->upto < ctx->read_to)
			smx_recover_warn(psprintf("the Redis journal lacks samples of some servers after tick " INT64_FORMAT " though the mark claims every tick up to " INT64_FORMAT "; recovery stops there for every server",
									  *st->upto, ctx->mark), NULL);
		st->rows = smx_recover_insert(st->nsp, st->desc, st->n, ctx->srv, *st->upto);
	}
}

/*
 * Run the recovery in a subtransaction as the writer role. Returns the
 * rows inserted; on an error, logs it and returns 0 (nothing inserted).
 */
static int64
smx_recover_guarded(Oid nsp, const SmxServerDesc *desc, int n, SmxRecoverCtx *ctx, int64 *upto,
					int *nservers)
{
	Oid			relid = get_relname_relid("server_metrics_history", nsp);
	SmxRecoverStep st = {nsp, desc, n, ctx, upto, nservers, 0};
	ErrorData  *edata;

	if (!OidIsValid(relid))
		return 0;
	edata = smx_try_in_subxact(smx_recover_step, &st, smx_writer_role());
	if (edata == NULL)
		return st.rows;
	/* a shutdown: give up the fleet load too, so the next writer recovers */
	if (edata->sqlerrcode == ERRCODE_ADMIN_SHUTDOWN)
		ReThrowError(edata);
	ereport(LOG,
			(errmsg("sim_metrics: recovering unflushed samples from Redis failed: %s",
					edata->message)));
	smx_record_error(edata->message);
	return 0;
}

/*
 * Put the samples a restart took from the ring back into the history
 * table from Redis. For the first fleet load after shared memory was set
 * up; must run inside a transaction, not connected to SPI. Returns the
 * rows inserted.
 */
int64
smx_recover_from_redis(Oid nsp, const SmxServerDesc *desc, int n)
{
	SmxRecoverCtx ctx;
	int64		rows;
	int64		upto = 0;
	int			nservers = 0;

	if (n == 0 || smx_redis_host == NULL || smx_redis_host[0] == '\0')
		return 0;
	memset(&ctx, 0, sizeof(ctx));
	ctx.srv = palloc0(sizeof(SmxRecoverServer) * n);
	ctx.desc = desc;
	ctx.n = n;
	ctx.mark = -1;
	rows = smx_recover_guarded(nsp, desc, n, &ctx, &upto, &nservers);
	if (rows > 0)
		ereport(LOG,
				(errmsg("sim_metrics: recovered %lld unflushed samples of %d servers from Redis, up to tick " INT64_FORMAT,
						(long long) rows, nservers, upto)));
	return rows;
}

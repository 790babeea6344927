/*
 * alerts_sql.c — sim_predict_alerts(horizon): the thresholds each live
 * server is about to cross (alerts.c over its last half hour), and
 * sim_alert_report(since, until, horizon): the same predictor replayed
 * over stored history, scored against the crossings that happened.
 *
 * A live server's last half hour is in the table and, not flushed yet, in
 * the ring: the ring is read in one pass (samples mapped to servers by
 * their id pool entry), then the table for those servers with a newer
 * snapshot. A sample read twice lands twice in its cell with the same
 * value. A backend keeps its last rows until the next tick is published. Thresholds are the role's (smx_thresholds), network in percent of
 * the server's capacity.
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "sim_metrics.h"
#include "alerts.h"

PG_FUNCTION_INFO_V1(sim_predict_alerts);
PG_FUNCTION_INFO_V1(sim_alert_report);

#define SMX_AL_WINDOW_SECONDS	(4 * SMX_ALERT_FIT_SECONDS)	/* what a prediction looks at */
#define SMX_AL_MAX_CELLS		1800
#define SMX_AL_LEAD_SECONDS		300.0	/* "predicted" = at least this far ahead */

static const char *const smx_al_metrics[4] = {
	"cpu_usage", "memory_usage", "disk_usage", "network_usage"
};

/*
 * The last call's rows, per backend: a dashboard polls more often than the
 * fleet ticks, and the prediction only changes when a tick is published
 * (state_version) or the horizon does; they were read with one role's
 * rights, so another role (SET ROLE, a pooled API connection) reads anew.
 */
typedef struct SmxAlRow
{
	char		id[SMX_ID_LEN];
	int			metric;
	int			level;			/* 0 warning, 1 critical */
	double		eta;			/* unix seconds */
	double		probability;
	double		current;
} SmxAlRow;

static SmxAlRow *smx_al_cache = NULL;
static int	smx_al_cache_n = 0;
static int	smx_al_cache_cap = 0;
static bool smx_al_cache_valid = false;
static uint64 smx_al_cache_version = 0;
static double smx_al_cache_horizon = 0;
static Oid	smx_al_cache_ext = InvalidOid;
static Oid	smx_al_cache_user = InvalidOid;	/* rows read with this role's rights */

static void
smx_al_emit(ReturnSetInfo *rsinfo, const SmxAlRow *r)
{
	Datum		values[6];
	bool		nulls[6] = {false, false, false, false, false, false};

	values[0] = CStringGetTextDatum(r->id);
	values[1] = CStringGetTextDatum(smx_al_metrics[r->metric]);
	values[2] = CStringGetTextDatum(r->level == 0 ? "warning" : "critical");
	values[3] = TimestampTzGetDatum(smx_epoch_timestamptz(r->eta));
	values[4] = Float8GetDatum(r->probability);
	values[5] = Float8GetDatum(r->current);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

/* A live server as the prediction needs it. */
typedef struct SmxAlServer
{
	char		id[SMX_ID_LEN];
	int			role;
	double		capacity;
	int32		id_ref;
	float		now[4];			/* current values */
	bool		offline;
} SmxAlServer;

static int
smx_al_cmp_id(const void *a, const void *b)
{
	return strcmp(((const SmxAlServer *) a)->id, ((const SmxAlServer *) b)->id);
}

/*
 * Add one sample's four metrics to server i's cells (ncell, g seconds from
 * t_first): sums and counts, so a cell holds the mean of its samples
 * (several when g is longer than the tick) whatever the order read. A
 * sample after until is left out.
 */
static inline void
smx_al_put(double *sum, int32 *cnt, int ncell, double t_first, double g, double until,
		   int i, TimestampTz ts, const double v[4], const bool isnull[4])
{
	double		t;
	int64		c;

	if (TIMESTAMP_NOT_FINITE(ts))
		return;
	t = smx_timestamptz_epoch(ts);
	if (t > until)
		return;
	c = (int64) floor((t - t_first) / g + 0.5);
	if (c < 0 || c >= ncell)
		return;
	for (int m = 0; m < 4; m++)
		if (!isnull[m] && isfinite(v[m]))
		{
			size_t		k = ((size_t) i * 4 + m) * ncell + c;

			sum[k] += v[m];
			cnt[k]++;
		}
}

/* The cells' means into y (NaN: no sample), k cells; sums and counts cleared. */
static void
smx_al_means(double *sum, int32 *cnt, float *y, size_t k)
{
	for (size_t j = 0; j < k; j++)
	{
		y[j] = cnt[j] ? (float) (sum[j] / cnt[j]) : NAN;
		sum[j] = 0;
		cnt[j] = 0;
	}
}

/*
 * sim_predict_alerts(horizon interval DEFAULT '1 hour'): one row a live
 * server, metric and threshold (warning, critical) predicted to be crossed
 * within horizon: server_id, metric, status, eta, probability, current.
 */
Datum
sim_predict_alerts(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	double		horizon_s = smx_positive_interval_arg(fcinfo, 0, "horizon");
	double		now,
				step,
				g,
				t_first;
	int			n,
				cap,
				ncell;
	SmxAlServer *srv;
	int32	   *map;
	int			pool;
	float	   *y;
	double	   *sum;
	int32	   *cnt;
	const char *nsp;
	uint64		version;
	Oid			ext;

	smx_require_fleet_database();
	/* before the first load (or once the extension is gone): nothing to predict */
	if (!smx_sim_now(&now, NULL))
	{
		InitMaterializedSRF(fcinfo, 0);
		return (Datum) 0;
	}

	/* the live fleet, copied under the shared lock */
	for (;;)
	{
		cap = Max(smx_shared->fleet.nservers, 1);
		srv = palloc(sizeof(SmxAlServer) * cap);
		LWLockAcquire(smx_shared->publish_lock, LW_SHARED);
		if (smx_shared->fleet.nservers <= cap)
			break;
		LWLockRelease(smx_shared->publish_lock);
		pfree(srv);
	}
	n = smx_shared->fleet.nservers;
	step = smx_shared->fleet.step_seconds;
	now = smx_sim_epoch_at(smx_shared->fleet.tick);
	version = smx_shared->fleet.state_version;
	ext = smx_shared->fleet.extension;
	{
		const SmxServerDesc *desc = smx_shared_desc();
		const smx_params *params = smx_shared_params();
		const smx_state *state = smx_shared_state();
		const int32 *ref = smx_shared_id_ref();

		for (int i = 0; i < n; i++)
		{
			memcpy(srv[i].id, desc[i].id, SMX_ID_LEN);
			srv[i].role = params[i].role;
			srv[i].capacity = params[i].net_capacity;
			srv[i].id_ref = ref[i];
			srv[i].now[0] = state[i].cpu;
			srv[i].now[1] = state[i].memory;
			srv[i].now[2] = state[i].disk;
			srv[i].now[3] = state[i].network;
			srv[i].offline = state[i].status == SMX_STATUS_OFFLINE;
		}
	}
	LWLockRelease(smx_shared->publish_lock);
	InitMaterializedSRF(fcinfo, 0);
	if (n == 0 || !(step > 0))
		return (Datum) 0;
	if (smx_al_cache_valid && smx_al_cache_version == version && smx_al_cache_ext == ext &&
		smx_al_cache_horizon == horizon_s && smx_al_cache_user == GetUserId())
	{
		for (int k = 0; k < smx_al_cache_n; k++)
			smx_al_emit(rsinfo, &smx_al_cache[k]);
		return (Datum) 0;
	}
	smx_al_cache_valid = false;
	qsort(srv, n, sizeof(SmxAlServer), smx_al_cmp_id);

	/* the cells of the last half hour */
	g = Max(step, SMX_AL_WINDOW_SECONDS / SMX_AL_MAX_CELLS);
	ncell = (int) ceil(SMX_AL_WINDOW_SECONDS / g) + 1;
	t_first = now - (ncell - 1) * g;
	y = palloc_extended(sizeof(float) * (size_t) n * 4 * ncell, MCXT_ALLOC_HUGE);
	sum = palloc_extended(sizeof(double) * (size_t) n * 4 * ncell, MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	cnt = palloc_extended(sizeof(int32) * (size_t) n * 4 * ncell, MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);

	/* the ring, one pass: id pool entry -> server */
	pool = smx_shared->ring.id_pool_size;
	map = palloc(sizeof(int32) * Max(pool, 1));
	for (int k = 0; k < pool; k++)
		map[k] = -1;
	for (int i = 0; i < n; i++)
		if (srv[i].id_ref >= 0 && srv[i].id_ref < pool)
			map[srv[i].id_ref] = i;
	{
		uint64		tail,
					head;
		SmxRingIter it;
		int			k,
					first_ok;

		LWLockAcquire(smx_shared->publish_lock, LW_SHARED);
		tail = smx_shared->ring.tail;
		head = smx_shared->ring.head;
		LWLockRelease(smx_shared->publish_lock);
		smx_ring_iter_begin(&it, tail, head, NULL);
		while ((k = smx_ring_iter_next(&it, &first_ok)) > 0)
		{
			for (int j = first_ok; j < k; j++)
			{
				const SmxSample *s = &it.buf[j];
				int			i = s->id_ref >= 0 && s->id_ref < pool ? map[s->id_ref] : -1;
				double		v[4];
				bool		nul[4] = {false, false, false, false};

				if (i < 0 || (s->status & 3) == SMX_STATUS_OFFLINE)
					continue;
				v[0] = s->cpu / 100.0;
				v[1] = s->memory / 100.0;
				v[2] = s->disk / 100.0;
				v[3] = (double) s->network_io / srv[i].capacity * 100.0;
				smx_al_put(sum, cnt, ncell, t_first, g, now, i, s->sim_time, v, nul);
			}
			CHECK_FOR_INTERRUPTS();
		}
		pfree(it.buf);
	}

	/* the table, for the same servers, with a newer snapshot */
	nsp = quote_identifier(smx_extension_schema_name());
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	{
		Datum	   *ids = palloc(sizeof(Datum) * n);
		Datum		args[3];
		Oid			types[3] = {TEXTARRAYOID, TIMESTAMPTZOID, TIMESTAMPTZOID};
		Portal		portal;

		for (int i = 0; i < n; i++)
			ids[i] = CStringGetTextDatum(srv[i].id);
		args[0] = PointerGetDatum(construct_array(ids, n, TEXTOID, -1, false, TYPALIGN_INT));
		args[1] = TimestampTzGetDatum(smx_epoch_timestamptz(t_first - g / 2));
		args[2] = TimestampTzGetDatum(smx_epoch_timestamptz(now));
		portal = smx_open_cursor(psprintf("SELECT h.server_id, h.\"timestamp\", h.cpu_usage::pg_catalog.float8,"
										   " h.memory_usage::pg_catalog.float8, h.disk_usage::pg_catalog.float8,"
										   " h.network_io::pg_catalog.float8,"
										   " h.status OPERATOR(pg_catalog.=) 'offline'"
										   " FROM %s.server_metrics_history h"
										   " WHERE h.server_id OPERATOR(pg_catalog.=) ANY ($1)"
										   "   AND h.\"timestamp\" OPERATOR(pg_catalog.>=) $2"
										   "   AND h.\"timestamp\" OPERATOR(pg_catalog.<=) $3", nsp),
								 3, types, args, true);
		for (;;)
		{
			SPI_cursor_fetch(portal, true, 5000);
			if (SPI_processed == 0)
				break;
			for (uint64 r = 0; r < SPI_processed; r++)
			{
				HeapTuple	tup = SPI_tuptable->vals[r];
				TupleDesc	td = SPI_tuptable->tupdesc;
				bool		nul[4],
							n_id,
							n_ts,
							n_off;
				double		v[4];
				Datum		d = SPI_getbinval(tup, td, 1, &n_id);
				TimestampTz ts = DatumGetTimestampTz(SPI_getbinval(tup, td, 2, &n_ts));
				bool		off = DatumGetBool(SPI_getbinval(tup, td, 7, &n_off));
				SmxAlServer key;
				SmxAlServer *found = NULL;
				int			i;

				if (!n_id)
				{
					text_to_cstring_buffer(DatumGetTextPP(d), key.id, sizeof(key.id));
					found = bsearch(&key, srv, n, sizeof(SmxAlServer), smx_al_cmp_id);
				}
				i = found ? (int) (found - srv) : -1;
				if (i < 0 || n_ts || (!n_off && off))
					continue;
				for (int m = 0; m < 4; m++)
				{
					Datum		x = SPI_getbinval(tup, td, 3 + m, &nul[m]);

					v[m] = nul[m] ? NAN : DatumGetFloat8(x);
				}
				v[3] = v[3] / srv[i].capacity * 100.0;
				smx_al_put(sum, cnt, ncell, t_first, g, now, i, ts, v, nul);
			}
			SPI_freetuptable(SPI_tuptable);
			CHECK_FOR_INTERRUPTS();
		}
		SPI_cursor_close(portal);
	}
	SPI_finish();
	smx_al_means(sum, cnt, y, (size_t) n * 4 * ncell);

	/* predict, into the cache, then the rows */
	if (smx_al_cache == NULL)
	{
		smx_al_cache_cap = 64;
		smx_al_cache = MemoryContextAlloc(TopMemoryContext, sizeof(SmxAlRow) * smx_al_cache_cap);
	}
	smx_al_cache_n = 0;
	for (int i = 0; i < n; i++)
	{
		const smx_threshold *th = smx_thresholds[srv[i].role >= 0 && srv[i].role < SMX_ROLE_COUNT ? srv[i].role : 0];

		if (srv[i].offline)
			continue;
		for (int m = 0; m < 4; m++)
		{
			const float *series = &y[((size_t) i * 4 + m) * ncell];
			float		level[2] = {th[m].warn, th[m].crit};

			for (int l = 0; l < 2; l++)
			{
				smx_alert	a;
				SmxAlRow   *r;

				if (srv[i].now[m] >= level[l] ||
					!smx_alert_predict(series, ncell, g, level[l], horizon_s, &a))
					continue;
				if (smx_al_cache_n == smx_al_cache_cap)
				{
					smx_al_cache_cap *= 2;
					smx_al_cache = repalloc(smx_al_cache, sizeof(SmxAlRow) * smx_al_cache_cap);
				}
				r = &smx_al_cache[smx_al_cache_n++];
				memcpy(r->id, srv[i].id, SMX_ID_LEN);
				r->metric = m;
				r->level = l;
				r->eta = now + rint(a.eta);
				r->probability = rint(a.probability * 1e4) / 1e4;
				r->current = rint((double) srv[i].now[m] * 100) / 100;
			}
		}
	}
	smx_al_cache_version = version;
	smx_al_cache_ext = ext;
	smx_al_cache_user = GetUserId();
	smx_al_cache_horizon = horizon_s;
	smx_al_cache_valid = true;
	for (int k = 0; k < smx_al_cache_n; k++)
		smx_al_emit(rsinfo, &smx_al_cache[k]);
	return (Datum) 0;
}

/* One server's replay: its cells over the span, labels, and the counters it adds to. */
typedef struct SmxAlReplay
{
	int64		crossings;		/* critical crossings during a leak/disk_full run, on its metric */
	int64		reachable;		/* of them, at least the lead after the run's start */
	int64		predicted;		/* of them, predicted at least the lead ahead */
	int64		predictions;	/* prediction events (either level, any metric) */
	int64		false_predictions;
	double	   *leads;			/* seconds, one a predicted crossing */
	int64		nleads,
				leads_cap;
	MemoryContext cxt;			/* where leads live (outlives SPI) */
	double		server_days;
} SmxAlReplay;

/*
 * Score server i's cells (ncell from t_first, g apart; y[m][c], run_kind[c]:
 * 1 memory_leak, 2 disk_full, 0 other or none; run_start[c]: its run's
 * first cell) from origin cells o0..o1.
 */
static void
smx_al_replay_server(const float *y, const uint8 *run_kind, const int32 *run_start, int ncell,
					 double g, int role, double horizon_s, int o0, int o1, SmxAlReplay *rep)
{
	const smx_threshold *th = smx_thresholds[role >= 0 && role < SMX_ROLE_COUNT ? role : 0];
	int			win = (int) ceil(SMX_AL_WINDOW_SECONDS / g) + 1;
	int			hcell = (int) floor(horizon_s / g);
	int			lead = (int) ceil(SMX_AL_LEAD_SECONDS / g);
	bool	   *pred = palloc(sizeof(bool) * ncell);

	for (int m = 0; m < 4; m++)
	{
		const float *s = &y[(size_t) m * ncell];

		for (int l = 0; l < 2; l++)
		{
			float		level = l == 0 ? th[m].warn : th[m].crit;

			memset(pred, 0, sizeof(bool) * ncell);
			for (int o = Max(o0, win - 1); o <= o1 && o < ncell; o++)
			{
				smx_alert	a;

				if ((o & 4095) == 0)
					CHECK_FOR_INTERRUPTS();
				if (isnan(s[o]) || s[o] >= level)
					continue;
				pred[o] = smx_alert_predict(&s[o - win + 1], win, g, level, horizon_s, &a);
			}
			/* prediction events: runs of origins; false when nothing crossed by their end + horizon */
			for (int o = o0; o <= o1 && o < ncell; o++)
			{
				int			e = o,
							hit = 0;

				if (!pred[o] || (o > 0 && pred[o - 1]))
					continue;
				while (e + 1 <= o1 && e + 1 < ncell && pred[e + 1])
					e++;
				for (int c = o + 1; c <= e + hcell && c < ncell; c++)
					if (!isnan(s[c]) && !isnan(s[c - 1]) && s[c] >= level && s[c - 1] < level)
					{
						hit = 1;
						break;
					}
				rep->predictions++;
				rep->false_predictions += !hit;
			}
			if (l == 0 || (m != 1 && m != 2))
				continue;
			/* critical crossings a leak (memory) or a full disk (disk) caused */
			for (int c = Max(o0, 1); c <= o1 && c < ncell; c++)
			{
				int			first = -1;

				if (isnan(s[c]) || isnan(s[c - 1]) || !(s[c] >= level && s[c - 1] < level) ||
					run_kind[c] != (m == 1 ? 1 : 2))
					continue;
				rep->crossings++;
				if (c - run_start[c] >= lead)
					rep->reachable++;
				for (int o = Max(c - hcell, 0); o <= c - lead; o++)
					if (pred[o])
					{
						first = o;
						break;
					}
				if (first < 0)
					continue;
				rep->predicted++;
				if (rep->nleads == rep->leads_cap)
				{
					rep->leads_cap = Max(64, rep->leads_cap * 2);
					rep->leads = rep->leads ? repalloc(rep->leads, sizeof(double) * rep->leads_cap) :
						MemoryContextAlloc(rep->cxt, sizeof(double) * rep->leads_cap);
				}
				rep->leads[rep->nleads++] = (c - first) * g;
			}
		}
	}
	pfree(pred);
}

/*
 * sim_alert_report(since, until, horizon DEFAULT '1 hour'): the predictor
 * replayed at every tick of [since, until) over server_metrics_history,
 * against what happened: one row.
 */
Datum
sim_alert_report(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	TimestampTz since,
				until;
	double		horizon_s,
				g,
				t_first,
				t_since,
				t_until;
	int			ncell,
				o0,
				o1;
	const char *nsp;
	SmxAlReplay rep;
	double	   *sum;
	int32	   *cnt;
	float	   *y;
	uint8	   *kind;
	int32	   *start;
	char		cur[SMX_ID_LEN + 1] = "";
	int			cur_role = 0;
	bool		have = false;
	Datum		values[10];
	bool		nulls[10];
	Portal		portal;
	MemoryContext rowcxt;
	Datum		args[2];
	Oid			types[2] = {TIMESTAMPTZOID, TIMESTAMPTZOID};

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("since and until must not be NULL")));
	since = PG_GETARG_TIMESTAMPTZ(0);
	until = PG_GETARG_TIMESTAMPTZ(1);
	horizon_s = smx_positive_interval_arg(fcinfo, 2, "horizon");
	if (TIMESTAMP_NOT_FINITE(since) || TIMESTAMP_NOT_FINITE(until))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("since and until must be finite")));
	if (!(until > since))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("until is not after since"),
				 errhint("Pass the earlier time as since.")));
	smx_require_fleet_database();
	LWLockAcquire(smx_shared->publish_lock, LW_SHARED);
	g = smx_shared->fleet.step_seconds;
	LWLockRelease(smx_shared->publish_lock);
	if (!(g > 0))
		g = 30.0;
	/* the cells sim_predict_alerts() uses: the same predictor, bounded work */
	g = Max(g, SMX_AL_WINDOW_SECONDS / SMX_AL_MAX_CELLS);
	t_since = smx_timestamptz_epoch(since);
	t_until = smx_timestamptz_epoch(until);
	/* cells: the window before since, the span, the horizon after it */
	if ((t_until - t_since + SMX_AL_WINDOW_SECONDS + horizon_s) / g > 10e6)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("the span is too long to replay: more than 10 million ticks a server"),
				 errhint("Score a shorter span, e.g. 30 days at a time.")));
	t_first = t_since - SMX_AL_WINDOW_SECONDS;
	ncell = (int) ceil((t_until + horizon_s - t_first) / g) + 1;
	o0 = (int) ceil((t_since - t_first) / g);
	o1 = (int) floor((t_until - t_first) / g) - 1;
	y = palloc_extended(sizeof(float) * 4 * (size_t) ncell, MCXT_ALLOC_HUGE);
	sum = palloc_extended(sizeof(double) * 4 * (size_t) ncell, MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	cnt = palloc_extended(sizeof(int32) * 4 * (size_t) ncell, MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	kind = palloc_extended(ncell, MCXT_ALLOC_HUGE);
	start = palloc_extended(sizeof(int32) * (size_t) ncell, MCXT_ALLOC_HUGE);
	memset(&rep, 0, sizeof(rep));
	rep.cxt = CurrentMemoryContext;
	/* the per-server replay's scratch, and each batch's row values */
	rowcxt = AllocSetContextCreate(CurrentMemoryContext, "sim_alert_report rows",
								   ALLOCSET_DEFAULT_SIZES);

	nsp = quote_identifier(smx_extension_schema_name());
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	args[0] = TimestampTzGetDatum(smx_epoch_timestamptz(t_first - g / 2));
	args[1] = TimestampTzGetDatum(smx_epoch_timestamptz(t_until + horizon_s));
	/* every sample of the span, by server, with its role, capacity and run */
	portal = smx_open_cursor(psprintf(
		"SELECT h.server_id, h.\"timestamp\", h.cpu_usage::pg_catalog.float8,"
		" h.memory_usage::pg_catalog.float8, h.disk_usage::pg_catalog.float8,"
		" h.network_io::pg_catalog.float8 OPERATOR(pg_catalog./) COALESCE(t.network_capacity_bps, 1250000000)::pg_catalog.float8"
		"   OPERATOR(pg_catalog.*) 100,"
		" h.status OPERATOR(pg_catalog.=) 'offline', COALESCE(t.role, 'web'),"
		" CASE r.scenario_name WHEN 'memory_leak' THEN 1 WHEN 'disk_full' THEN 2 ELSE 0 END, r.started_at"
		" FROM %1$s.server_metrics_history h"
		" LEFT JOIN %1$s.server_templates t ON t.id OPERATOR(pg_catalog.=) h.server_id"
		" LEFT JOIN (SELECT l.run_id, pg_catalog.min(l.scenario_name) AS scenario_name,"
		"                   pg_catalog.min(l.started_at) AS started_at"
		"              FROM %1$s.scenario_execution_log l GROUP BY l.run_id) r"
		"   ON r.run_id OPERATOR(pg_catalog.=) h.scenario_run_id"
		" WHERE h.\"timestamp\" OPERATOR(pg_catalog.>=) $1 AND h.\"timestamp\" OPERATOR(pg_catalog.<=) $2"
		" ORDER BY h.server_id COLLATE \"C\", h.\"timestamp\"", nsp),
							 2, types, args, false);
	for (;;)
	{
		bool		done;
		MemoryContext old;

		SPI_cursor_fetch(portal, true, 10000);
		done = SPI_processed == 0;
		old = MemoryContextSwitchTo(rowcxt);
		for (uint64 r = 0; r <= SPI_processed; r++)
		{
			HeapTuple	tup = r < SPI_processed ? SPI_tuptable->vals[r] : NULL;
			TupleDesc	td = SPI_tuptable ? SPI_tuptable->tupdesc : NULL;
			bool		isnull;
			char	   *id = NULL;
			TimestampTz ts;
			int64		c;

			if (r == SPI_processed && !done)
				break;
			if (tup)
			{
				Datum		d = SPI_getbinval(tup, td, 1, &isnull);

				id = isnull ? NULL : TextDatumGetCString(d);
				if (id == NULL)
					continue;
			}
			/* a new server (or the end): replay the one before */
			if (have && (id == NULL || strncmp(id, cur, SMX_ID_LEN) != 0))
			{
				smx_al_means(sum, cnt, y, 4 * (size_t) ncell);
				smx_al_replay_server(y, kind, start, ncell, g, cur_role, horizon_s, o0, o1, &rep);
				rep.server_days += (t_until - t_since) / 86400.0;
				have = false;
			}
			if (id == NULL)
				break;
			if (!have)
			{
				char	   *role;

				strlcpy(cur, id, sizeof(cur));
				role = TextDatumGetCString(SPI_getbinval(tup, td, 8, &isnull));
				cur_role = 0;
				for (int k = 0; k < SMX_ROLE_COUNT; k++)
					if (strcmp(role, smx_role_names[k]) == 0)
						cur_role = k;
				memset(kind, 0, ncell);
				memset(start, 0, sizeof(int32) * ncell);
				have = true;
			}
			ts = DatumGetTimestampTz(SPI_getbinval(tup, td, 2, &isnull));
			if (isnull || TIMESTAMP_NOT_FINITE(ts))
				continue;
			c = (int64) floor((smx_timestamptz_epoch(ts) - t_first) / g + 0.5);
			if (c < 0 || c >= ncell)
				continue;
			if (!DatumGetBool(SPI_getbinval(tup, td, 7, &isnull)))
			{
				double		v[4];
				bool		nul[4];

				for (int m = 0; m < 4; m++)
				{
					Datum		x = SPI_getbinval(tup, td, 3 + m, &nul[m]);

					v[m] = nul[m] ? NAN : DatumGetFloat8(x);
				}
				smx_al_put(sum, cnt, ncell, t_first, g, INFINITY, 0, ts, v, nul);
			}
			kind[c] = (uint8) DatumGetInt32(SPI_getbinval(tup, td, 9, &isnull));
			{
				Datum		st = SPI_getbinval(tup, td, 10, &isnull);

				/* in double first: a run begun long before the span */
				start[c] = isnull ? (int32) c :
					(int32) fmax(-1.0, floor((smx_timestamptz_epoch(DatumGetTimestampTz(st)) - t_first) / g + 0.5));
			}
		}
		MemoryContextSwitchTo(old);
		MemoryContextReset(rowcxt);
		if (SPI_tuptable)
			SPI_freetuptable(SPI_tuptable);
		CHECK_FOR_INTERRUPTS();
		if (done)
			break;
	}
	SPI_cursor_close(portal);
	SPI_finish();

	InitMaterializedSRF(fcinfo, 0);
	memset(nulls, 0, sizeof(nulls));
	values[0] = Int64GetDatum(rep.crossings);
	values[1] = Int64GetDatum(rep.reachable);
	values[2] = Int64GetDatum(rep.predicted);
	values[3] = Float8GetDatum(rep.crossings ? (double) rep.predicted / rep.crossings : 0);
	nulls[3] = rep.crossings == 0;
	if (rep.nleads > 0)
	{
		Interval   *iv = palloc0(sizeof(Interval));

		qsort(rep.leads, rep.nleads, sizeof(double), smx_cmp_double);
		iv->time = (int64) llrint(rep.leads[rep.nleads / 2] * USECS_PER_SEC);
		values[4] = IntervalPGetDatum(iv);
	}
	else
		nulls[4] = true;
	values[5] = Int64GetDatum(rep.predictions);
	values[6] = Int64GetDatum(rep.false_predictions);
	values[7] = Float8GetDatum(rep.server_days > 0 ? rep.false_predictions / rep.server_days : 0);
	nulls[7] = rep.server_days <= 0;
	values[8] = Float8GetDatum(rep.server_days);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	return (Datum) 0;
}

/*
 * forecast_sql.c — sim_forecast(server_id, metric, horizon, training) and
 * sim_forecast_series(ts[], value[], horizon): forecast.c over a server's
 * history or over any series handed in.
 *
 * A server's samples (the ring's and the table's, read as the caller)
 * are laid on the fleet's tick grid, ending at the current simulated time; samples of a labelled scenario run or of an
 * offline server are marked so they shape nothing (forecast.h). A tick
 * shorter than training / SMX_FC_MAX_POINTS is averaged into cells of that
 * size, so memory stays bounded (about 12 bytes a cell) whatever the tick.
 */
#include "postgres.h"

#include <float.h>
#include <math.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "sim_metrics.h"
#include "forecast.h"

PG_FUNCTION_INFO_V1(sim_forecast);
PG_FUNCTION_INFO_V1(sim_forecast_series);

#define SMX_FC_MAX_POINTS	2000000	/* grid cells a fit uses, at most */
#define SMX_FC_MAX_DAYS		400		/* the longest training span (bounds memory) */
#define SMX_FC_MAX_VALUE	1e30	/* larger values are refused (float sums) */
#define SMX_FC_FETCH		5000	/* history rows a cursor fetch */
#define SMX_FC_COLS			6

static const char *const smx_fc_metrics[4] = {
	"cpu_usage", "memory_usage", "disk_usage", "network_usage"
};

/* Add one sample to its grid cell (cells: n from t_first, step apart). */
static inline void
smx_fc_put(double *y, int *cnt, uint8 *excl, int n, double t_first, double step,
		   TimestampTz ts, double x, bool missing, bool offline, bool labelled)
{
	int64		i;

	if (TIMESTAMP_NOT_FINITE(ts))
		return;
	i = (int64) floor((smx_timestamptz_epoch(ts) - t_first) / step + 0.5);
	if (i < 0 || i >= n)
		return;
	/* an incident's or an offline server's sample: no normal behaviour */
	if (labelled || offline)
		excl[i] = 1;
	/* an offline server's values mean nothing */
	if (missing || offline || !isfinite(x))
		return;
	y[i] += x;
	cnt[i]++;
}

/* Fit, or explain why not. what: the series, for the message. */
static void
smx_fc_fit_or_error(const float *y, const uint8 *excl, int n, double step, double t_last,
					double horizon_s, float lo, float hi, smx_fc_model *m, const char *what)
{
	void	   *work = palloc(smx_fc_work_size(n, step));

	if (smx_fc_fit(y, excl, n, step, t_last, horizon_s, lo, hi, work, m) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("%s has %.0f usable days of samples; a forecast needs at least %d",
						what, m->days, SMX_FC_MIN_DAYS),
				 errdetail("A usable day has samples in at least half of its 5-minute slots, outside labelled incidents."),
				 errhint("Let the fleet run longer, lengthen training, or backfill history, e.g. SELECT sim_backfill('14 days').")));
	pfree(work);
}

/*
 * Rows of the forecast every step seconds from t_last + step to t_last +
 * horizon_s; shift: what was added to the times for the fit (local time).
 */
static void
smx_fc_emit(FunctionCallInfo fcinfo, const smx_fc_model *m, double step, double horizon_s, double shift)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int64		rows = (int64) floor(horizon_s / step + 1e-9);

	InitMaterializedSRF(fcinfo, 0);
	if (rows < 1)
		rows = 1;
	for (int64 k = 1; k <= rows; k++)
	{
		Datum		values[SMX_FC_COLS];
		bool		nulls[SMX_FC_COLS] = {false, false, false, false, false, false};
		float		out[5];
		double		ahead = k * step > horizon_s ? horizon_s : (double) k * step;

		smx_fc_at(m, ahead, out);
		values[0] = TimestampTzGetDatum(smx_epoch_timestamptz(m->t_last - shift + ahead));
		for (int j = 0; j < 5; j++)
			values[1 + j] = Float8GetDatum(rint((double) out[j] * 1e4) / 1e4);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
}

/*
 * sim_forecast(server_id text, metric text, horizon interval,
 *              training interval DEFAULT '14 days', as_of timestamptz DEFAULT NULL)
 */
Datum
sim_forecast(PG_FUNCTION_ARGS)
{
	text	   *server_t;
	char	   *server_id,
			   *metric;
	int			mi = -1;
	double		horizon_s,
				train_s,
				now,
				tick_s,
				step,
				t_first,
				capacity = 1.25e9;
	int			n;
	float	   *y;
	double	   *sum;
	int		   *cnt;
	uint8	   *excl;
	const char *nsp;
	Portal		portal;
	TimestampTz since,
				until;
	SmxHistRow *mem;
	int			nmem;
	Datum		args[3];
	Oid			argtypes[3] = {TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID};
	smx_fc_model m;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("server_id and metric must not be NULL")));
	server_t = PG_GETARG_TEXT_PP(0);
	server_id = text_to_cstring(server_t);
	metric = text_to_cstring(PG_GETARG_TEXT_PP(1));
	for (int i = 0; i < 4; i++)
		if (strcmp(metric, smx_fc_metrics[i]) == 0)
			mi = i;
	if (mi < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown metric \"%s\"", metric),
				 errhint("Use cpu_usage, memory_usage, disk_usage or network_usage.")));
	horizon_s = smx_positive_interval_arg(fcinfo, 2, "horizon");
	train_s = smx_positive_interval_arg(fcinfo, 3, "training");
	if (train_s > SMX_FC_MAX_DAYS * 86400.0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("training is longer than %d days", SMX_FC_MAX_DAYS),
				 errhint("The daily profile needs weeks, not years: 14 days is the default.")));
	if (horizon_s > train_s)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("horizon is longer than training"),
				 errhint("Forecast at most as far ahead as the history it learns from: shorten horizon or lengthen training.")));
	smx_require_fleet_database();

	/* the grid: the fleet's tick, ending at the current simulated time */
	LWLockAcquire(smx_shared->publish_lock, LW_SHARED);
	tick_s = smx_shared->fleet.step_seconds;
	LWLockRelease(smx_shared->publish_lock);
	if (!smx_sim_now(&now, NULL) || !(tick_s > 0))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the simulated clock has not started"),
				 errhint("Start the fleet (sim_start() or sim_tick()) or backfill history first.")));
	/* as_of: the forecast that time would have made, from the samples before it */
	if (!PG_ARGISNULL(4))
	{
		TimestampTz as_of = PG_GETARG_TIMESTAMPTZ(4);

		if (TIMESTAMP_NOT_FINITE(as_of))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("as_of must be finite")));
		if (smx_timestamptz_epoch(as_of) > now)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("as_of (%s) is after the current simulated time",
							pstrdup(timestamptz_to_str(as_of))),
					 errhint("Leave as_of NULL to forecast from now.")));
		now = smx_timestamptz_epoch(as_of);
	}
	step = Max(tick_s, train_s / SMX_FC_MAX_POINTS);
	n = (int) floor(train_s / step) + 1;
	t_first = now - (double) (n - 1) * step;
	sum = palloc0(sizeof(double) * n);
	cnt = palloc0(sizeof(int) * n);
	excl = palloc0(n);

	nsp = quote_identifier(smx_extension_schema_name());
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	smx_require_known_server(nsp, server_t, server_id);
	if (mi == 3)
	{
		char	   *q = psprintf("SELECT t.network_capacity_bps::pg_catalog.float8 FROM %s.server_templates t"
								 " WHERE t.id OPERATOR(pg_catalog.=) $1", nsp);
		bool		isnull;

		args[0] = PointerGetDatum(server_t);
		if (SPI_execute_with_args(q, 1, argtypes, args, NULL, true, 1) != SPI_OK_SELECT)
			elog(ERROR, "reading the network capacity of \"%s\" failed", server_id);
		if (SPI_processed == 1)
		{
			Datum		c = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

			if (!isnull && DatumGetFloat8(c) > 0)
				capacity = DatumGetFloat8(c);
		}
	}

	/*
	 * The span's samples: the ring's (not flushed yet), then the table's
	 * with a newer snapshot. A sample flushed in between is read twice and
	 * lands twice in its cell: the same value, so the cell's mean is the
	 * same. No order is needed, so none is asked of the table.
	 */
	since = smx_epoch_timestamptz(t_first - step / 2);
	until = smx_epoch_timestamptz(now);
	mem = smx_history_ring_rows(server_id, since, until, &nmem);
	for (int r = 0; r < nmem; r++)
		smx_fc_put(sum, cnt, excl, n, t_first, step, mem[r].ts,
				   mi == 0 ? mem[r].cpu : mi == 1 ? mem[r].mem : mi == 2 ? mem[r].disk :
				   (double) mem[r].net / capacity * 100.0,
				   false, mem[r].status == SMX_STATUS_OFFLINE, mem[r].run != 0);
	args[0] = PointerGetDatum(server_t);
	args[1] = TimestampTzGetDatum(since);
	args[2] = TimestampTzGetDatum(until);
	portal = smx_open_cursor(psprintf("SELECT h.\"timestamp\", h.%s::pg_catalog.float8,"
									   " h.status OPERATOR(pg_catalog.=) 'offline',"
									   " h.scenario_run_id IS NOT NULL"
									   " FROM %s.server_metrics_history h"
									   " WHERE h.server_id OPERATOR(pg_catalog.=) $1"
									   "   AND h.\"timestamp\" OPERATOR(pg_catalog.>=) $2"
									   "   AND h.\"timestamp\" OPERATOR(pg_catalog.<=) $3",
									   mi == 3 ? "network_io" : smx_fc_metrics[mi], nsp),
							3, argtypes, args, true);
	for (;;)
	{
		SPI_cursor_fetch(portal, true, SMX_FC_FETCH);
		if (SPI_processed == 0)
			break;
		for (uint64 r = 0; r < SPI_processed; r++)
		{
			HeapTuple	tup = SPI_tuptable->vals[r];
			TupleDesc	td = SPI_tuptable->tupdesc;
			bool		n_ts,
						n_v,
						n_off,
						n_run;
			TimestampTz ts = DatumGetTimestampTz(SPI_getbinval(tup, td, 1, &n_ts));
			Datum		v = SPI_getbinval(tup, td, 2, &n_v);
			Datum		off = SPI_getbinval(tup, td, 3, &n_off);
			Datum		run = SPI_getbinval(tup, td, 4, &n_run);
			double		x = n_v ? NAN : DatumGetFloat8(v);

			if (n_ts)
				continue;
			if (mi == 3)
				x = x / capacity * 100.0;
			smx_fc_put(sum, cnt, excl, n, t_first, step, ts, x, n_v,
					   !n_off && DatumGetBool(off), DatumGetBool(run));
		}
		SPI_freetuptable(SPI_tuptable);
		CHECK_FOR_INTERRUPTS();
	}
	SPI_cursor_close(portal);
	SPI_finish();
	y = palloc(sizeof(float) * n);
	for (int i = 0; i < n; i++)
		y[i] = cnt[i] ? (float) (sum[i] / cnt[i]) : NAN;
	pfree(cnt);
	pfree(sum);

	/*
	 * fitted in the simulation's local time (sim_metrics.utc_offset), as
	 * the model draws its days and weekends
	 */
	smx_fc_fit_or_error(y, excl, n, step, now + smx_utc_offset_min * 60.0, horizon_s, 0.0f, 100.0f, &m,
						psprintf("server \"%s\" (%s)", server_id, metric));
	smx_fc_emit(fcinfo, &m, step, horizon_s, smx_utc_offset_min * 60.0);
	return (Datum) 0;
}

/*
 * sim_forecast_series(ts timestamptz[], value float8[], horizon interval):
 * the same forecast for any series in time order, on its own grid (the
 * median gap between its times), trained on all of it.
 */
Datum
sim_forecast_series(PG_FUNCTION_ARGS)
{
	ArrayType  *ta,
			   *va;
	Datum	   *ts,
			   *val;
	bool	   *ts_null,
			   *val_null;
	int			nts,
				nval,
				n;
	double		horizon_s,
				step,
				t0,
				t1;
	double	   *gaps;
	double	   *sum;
	float	   *y;
	int		   *cnt;
	smx_fc_model m;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("ts and value must not be NULL")));
	horizon_s = smx_positive_interval_arg(fcinfo, 2, "horizon");
	ta = PG_GETARG_ARRAYTYPE_P(0);
	va = PG_GETARG_ARRAYTYPE_P(1);
	if (ARR_NDIM(ta) > 1 || ARR_NDIM(va) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("ts and value must be one-dimensional arrays"),
				 errhint("Pass the series as two flat arrays, e.g. array_agg(ts ORDER BY ts) and array_agg(value ORDER BY ts).")));
	deconstruct_array(ta, TIMESTAMPTZOID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &ts, &ts_null, &nts);
	deconstruct_array(va, FLOAT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &val, &val_null, &nval);
	if (nts != nval)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("ts has %d elements and value has %d", nts, nval),
				 errhint("Pass one time for each value.")));
	if (nts < 2)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the series has %d rows; a forecast needs at least %d days of them", nts, SMX_FC_MIN_DAYS)));
	for (int i = 0; i < nts; i++)
	{
		if (ts_null[i] || TIMESTAMP_NOT_FINITE(DatumGetTimestampTz(ts[i])))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("ts[%d] is NULL or infinite", i + 1),
					 errhint("Every value needs a finite time; leave a missing value NULL instead.")));
		if (i > 0 && DatumGetTimestampTz(ts[i]) < DatumGetTimestampTz(ts[i - 1]))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("ts[%d] is before ts[%d]", i + 1, i),
					 errhint("Sort the series, e.g. array_agg(ts ORDER BY ts) and array_agg(value ORDER BY ts).")));
	}
	/* the grid: the median gap between distinct times */
	gaps = palloc(sizeof(double) * nts);
	n = 0;
	for (int i = 1; i < nts; i++)
		if (ts[i] != ts[i - 1])
			gaps[n++] = smx_timestamptz_epoch(DatumGetTimestampTz(ts[i])) - smx_timestamptz_epoch(DatumGetTimestampTz(ts[i - 1]));
	if (n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("every row of the series has the same time")));
	qsort(gaps, n, sizeof(double), smx_cmp_double);
	step = gaps[n / 2];
	t0 = smx_timestamptz_epoch(DatumGetTimestampTz(ts[0]));
	t1 = smx_timestamptz_epoch(DatumGetTimestampTz(ts[nts - 1]));
	if (horizon_s > t1 - t0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("horizon is longer than the series"),
				 errhint("Forecast at most as far ahead as the history it learns from.")));
	if (t1 - t0 > SMX_FC_MAX_DAYS * 86400.0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the series spans more than %d days", SMX_FC_MAX_DAYS),
				 errhint("Pass its last weeks: the daily profile needs weeks, not years.")));
	step = Max(step, (t1 - t0) / SMX_FC_MAX_POINTS);
	n = (int) floor((t1 - t0) / step + 0.5) + 1;
	sum = palloc0(sizeof(double) * n);
	cnt = palloc0(sizeof(int) * n);
	for (int i = 0; i < nts; i++)
	{
		double		x = val_null[i] ? NAN : DatumGetFloat8(val[i]);
		int64		k = (int64) floor((smx_timestamptz_epoch(DatumGetTimestampTz(ts[i])) - t0) / step + 0.5);

		if (isfinite(x) && fabs(x) > SMX_FC_MAX_VALUE)
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("value[%d] is too large to forecast", i + 1),
					 errhint("Values up to 1e30 in magnitude are forecast; rescale the series.")));
		if (!isfinite(x) || k < 0 || k >= n)
			continue;
		sum[k] += x;
		cnt[k]++;
	}
	y = palloc(sizeof(float) * n);
	for (int i = 0; i < n; i++)
		y[i] = cnt[i] ? (float) (sum[i] / cnt[i]) : NAN;
	/* the grid ends at the last row's cell */
	smx_fc_fit_or_error(y, NULL, n, step, t0 + (double) (n - 1) * step, horizon_s,
						-FLT_MAX, FLT_MAX, &m, "the series");
	smx_fc_emit(fcinfo, &m, step, horizon_s, 0.0);
	return (Datum) 0;
}

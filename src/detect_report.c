/*
 * detect_report.c — how good is a detector: sim_detector_report() scores
 * the built-in detector (or a user's table of scores) against the
 * simulator's ground truth, sim_score_detector() scores any table of
 * scores against any table of windows (NAB's corpus, a user's own
 * incidents). Both use NAB's scoring (nab.c): one threshold for all the
 * series, the one that scores best, and the three NAB profiles.
 *
 * Everything runs as the caller: the tables are read through SPI with the
 * caller's privileges. The rows are held in memory, 16 bytes each.
 */
#include "postgres.h"

#include <math.h>
#include <stdlib.h>

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "nab.h"
#include "sim_metrics.h"

PG_FUNCTION_INFO_V1(sim_detector_report);
PG_FUNCTION_INFO_V1(sim_score_detector);

#define SMX_REPORT_FETCH	50000
/* rows held at most: 16 bytes each here, as many for the sweep's sort */
#define SMX_REPORT_MAX_ROWS	(INT64CONST(1) << 25)

/* The series read: rows grouped by series name (in "C" order). */
typedef struct SmxReportData
{
	int64		nrows;
	int64		cap;
	int64	   *ts;
	double	   *score;
	int			nseries;
	int			series_cap;
	char	  **name;			/* of each series */
	int64	   *first;			/* its first row */
	int64	   *count;			/* and how many */
	/* windows, per series (merged, in time order) */
	int64	  **win_start;
	int64	  **win_end;
	int		   *nwin;
} SmxReportData;

static void
smx_report_grow_rows(SmxReportData *d)
{
	if (d->nrows < d->cap)
		return;
	if (d->cap >= SMX_REPORT_MAX_ROWS)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("more than " INT64_FORMAT " scored rows", (int64) SMX_REPORT_MAX_ROWS),
				 errhint("Score a shorter span, or fewer servers at a time.")));
	d->cap = d->cap == 0 ? 65536 : d->cap * 2;
	if (d->ts == NULL)
	{
		d->ts = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(int64) * d->cap);
		d->score = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(double) * d->cap);
	}
	else
	{
		d->ts = repalloc_huge(d->ts, sizeof(int64) * d->cap);
		d->score = repalloc_huge(d->score, sizeof(double) * d->cap);
	}
}

static int
smx_report_add_series(SmxReportData *d, const char *name)
{
	if (d->nseries == d->series_cap)
	{
		d->series_cap = d->series_cap == 0 ? 64 : d->series_cap * 2;
		if (d->name == NULL)
		{
			d->name = palloc(sizeof(char *) * d->series_cap);
			d->first = palloc(sizeof(int64) * d->series_cap);
			d->count = palloc(sizeof(int64) * d->series_cap);
		}
		else
		{
			d->name = repalloc(d->name, sizeof(char *) * d->series_cap);
			d->first = repalloc(d->first, sizeof(int64) * d->series_cap);
			d->count = repalloc(d->count, sizeof(int64) * d->series_cap);
		}
	}
	d->name[d->nseries] = pstrdup(name);
	d->first[d->nseries] = d->nrows;
	d->count[d->nseries] = 0;
	return d->nseries++;
}

/*
 * Read (series text, ts timestamptz, score float8) rows ordered by series
 * (COLLATE "C"), time and score (rows at one time: real data has them). A
 * NULL score is no score; a NULL series or time is an error.
 */
static void
smx_report_read_scores(SmxReportData *d, const char *sql, int nargs, Oid *argtypes,
					   Datum *args, const char *what)
{
	SPIPlanPtr	plan = SPI_prepare(sql, nargs, argtypes);
	Portal		portal;

	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	portal = SPI_cursor_open(NULL, plan, args, NULL, true);
	for (;;)
	{
		SPI_cursor_fetch(portal, true, SMX_REPORT_FETCH);
		if (SPI_processed == 0)
			break;
		for (uint64 r = 0; r < SPI_processed; r++)
		{
			HeapTuple	tup = SPI_tuptable->vals[r];
			TupleDesc	td = SPI_tuptable->tupdesc;
			bool		n0,
						n1,
						n2;
			Datum		id = SPI_getbinval(tup, td, 1, &n0);
			Datum		ts = SPI_getbinval(tup, td, 2, &n1);
			Datum		sc = SPI_getbinval(tup, td, 3, &n2);
			char	   *name;
			int			s;

			if (n0 || n1)
				ereport(ERROR,
						(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						 errmsg("%s has a row with a NULL %s", what, n0 ? "server_id" : "\"timestamp\""),
						 errhint("Every score needs its server and its time.")));
			if (TIMESTAMP_NOT_FINITE(DatumGetTimestampTz(ts)))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("%s has a row at %s", what, timestamptz_to_str(DatumGetTimestampTz(ts))),
						 errhint("Scores need finite times.")));
			name = TextDatumGetCString(id);
			s = d->nseries - 1;
			if (s < 0 || strcmp(d->name[s], name) != 0)
				s = smx_report_add_series(d, name);
			pfree(name);
			smx_report_grow_rows(d);
			d->ts[d->nrows] = DatumGetTimestampTz(ts);
			d->score[d->nrows] = n2 ? NAN : DatumGetFloat8(sc);
			d->nrows++;
			d->count[s]++;
		}
		SPI_freetuptable(SPI_tuptable);
		CHECK_FOR_INTERRUPTS();
	}
	SPI_cursor_close(portal);
}

static int
smx_report_name_cmp(const void *key, const void *elem)
{
	return strcmp((const char *) key, *(char *const *) elem);
}

/* The series named name among the first n ("C" order: strcmp's); -1 if none. */
static int
smx_report_find(const SmxReportData *d, int n, const char *name)
{
	char	  **hit = n > 0 ? bsearch(name, d->name, n, sizeof(char *), smx_report_name_cmp) : NULL;

	return hit ? (int) (hit - d->name) : -1;
}

/*
 * Read (series text, start timestamptz, end timestamptz) windows, both
 * ends inclusive, ordered by series (COLLATE "C") and start; windows that
 * overlap or touch on a series are merged into one. A window of a series
 * with no score is kept; as NAB does with a window that has no row, the
 * scoring counts it in the perfect score only (neither found nor missed).
 */
static void
smx_report_read_windows(SmxReportData *d, const char *sql, int nargs, Oid *argtypes,
						Datum *args, const char *what)
{
	int			ret = SPI_execute_with_args(sql, nargs, argtypes, args, NULL, true, 0);
	uint64		nw = SPI_processed;
	SPITupleTable *tt = SPI_tuptable;
	int			nscored = d->nseries;
	int		   *sidx;
	int64	   *wa,
			   *wb;

	if (ret != SPI_OK_SELECT)
		elog(ERROR, "reading %s failed: %s", what, SPI_result_code_string(ret));
	sidx = palloc(sizeof(int) * Max(nw, 1));
	wa = palloc(sizeof(int64) * Max(nw, 1));
	wb = palloc(sizeof(int64) * Max(nw, 1));
	for (uint64 r = 0; r < nw; r++)
	{
		bool		n0,
					n1,
					n2;
		Datum		id = SPI_getbinval(tt->vals[r], tt->tupdesc, 1, &n0);
		Datum		ws = SPI_getbinval(tt->vals[r], tt->tupdesc, 2, &n1);
		Datum		we = SPI_getbinval(tt->vals[r], tt->tupdesc, 3, &n2);
		char	   *name;
		int			s;

		if (n0 || n1 || n2)
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("%s has a window with a NULL server_id, start or end", what),
					 errhint("Every window needs its server, its start and its end.")));
		name = TextDatumGetCString(id);
		wa[r] = DatumGetTimestampTz(ws);
		wb[r] = DatumGetTimestampTz(we);
		if (TIMESTAMP_NOT_FINITE(wa[r]) || TIMESTAMP_NOT_FINITE(wb[r]))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s has a window of server \"%s\" with an infinite bound", what, name),
					 errhint("Give each window finite times.")));
		if (wb[r] < wa[r])
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s has a window of server \"%s\" that ends (%s) before it starts",
							what, name, pstrdup(timestamptz_to_str(wb[r]))),
					 errhint("Give each window its start, then its end.")));
		/* the scored series are sorted; those with no score come after, in order */
		s = smx_report_find(d, nscored, name);
		if (s < 0 && d->nseries > nscored && strcmp(d->name[d->nseries - 1], name) == 0)
			s = d->nseries - 1;
		if (s < 0)
			s = smx_report_add_series(d, name);
		sidx[r] = s;
		pfree(name);
	}
	d->win_start = palloc0(sizeof(int64 *) * Max(d->nseries, 1));
	d->win_end = palloc0(sizeof(int64 *) * Max(d->nseries, 1));
	d->nwin = palloc0(sizeof(int) * Max(d->nseries, 1));
	for (uint64 r = 0; r < nw; r++)
		d->nwin[sidx[r]]++;
	for (int s = 0; s < d->nseries; s++)
	{
		d->win_start[s] = palloc(sizeof(int64) * Max(d->nwin[s], 1));
		d->win_end[s] = palloc(sizeof(int64) * Max(d->nwin[s], 1));
		d->nwin[s] = 0;
	}
	for (uint64 r = 0; r < nw; r++)
	{
		int			s = sidx[r];
		int			k = d->nwin[s];

		if (k > 0 && wa[r] - 1 <= d->win_end[s][k - 1])
		{
			/* overlaps or touches the one before: one window */
			if (wb[r] > d->win_end[s][k - 1])
				d->win_end[s][k - 1] = wb[r];
			continue;
		}
		d->win_start[s][k] = wa[r];
		d->win_end[s][k] = wb[r];
		d->nwin[s] = k + 1;
	}
}

/* An interval of usecs microseconds. */
static Datum
smx_usecs_interval(double usecs)
{
	Interval   *iv = palloc0(sizeof(Interval));

	iv->time = (TimeOffset) rint(usecs);
	return IntervalPGetDatum(iv);
}

static int
smx_int64_cmp(const void *a, const void *b)
{
	int64		x = *(const int64 *) a,
				y = *(const int64 *) b;

	return x < y ? -1 : x > y;
}

/*
 * Score the series read against their windows for the three profiles and
 * put one row each: the best threshold (or fixed_threshold when not NaN),
 * the normalised score there, and the event counts. probation: the share
 * of each series' first rows whose detections are ignored (NAB: 0.15).
 */
static void
smx_report_emit(ReturnSetInfo *rsinfo, SmxReportData *d, double probation,
				double fixed_threshold)
{
	SmxNabSeries *ser = palloc0(sizeof(SmxNabSeries) * Max(d->nseries, 1));
	size_t		total_windows = 0;
	int64	   *delays;

	for (int s = 0; s < d->nseries; s++)
	{
		size_t		n = (size_t) d->count[s];

		ser[s].n = n;
		ser[s].ts = d->ts + d->first[s];
		ser[s].score = d->score + d->first[s];
		ser[s].probation = smx_nab_probation_share(n, probation);
		ser[s].nwindows = d->nwin ? (size_t) d->nwin[s] : 0;
		ser[s].win_start = d->win_start ? d->win_start[s] : NULL;
		ser[s].win_end = d->win_end ? d->win_end[s] : NULL;
		total_windows += ser[s].nwindows;
	}
	delays = palloc(sizeof(int64) * Max(total_windows, 1));
	for (int p = 0; p < 3; p++)
	{
		const SmxNabCosts *costs = &smx_nab_profiles[p];
		SmxNabResult res;
		double		threshold = fixed_threshold;
		size_t		nd = 0;
		Datum		values[9];
		bool		nulls[9] = {0};

		CHECK_FOR_INTERRUPTS();
		if (isnan(threshold))
		{
			if (smx_nab_sweep(ser, d->nseries, costs, &res) != 0)
				ereport(ERROR,
						(errcode(ERRCODE_OUT_OF_MEMORY),
						 errmsg("out of memory scoring " INT64_FORMAT " rows", d->nrows),
						 errhint("Score a shorter span, or fewer servers at a time.")));
			threshold = res.threshold;
		}
		if (smx_nab_score_at(ser, d->nseries, costs, threshold, &res, delays, &nd) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("out of memory scoring " INT64_FORMAT " rows", d->nrows)));
		values[0] = CStringGetTextDatum(costs->name);
		values[1] = Float8GetDatum(res.normalised);
		nulls[1] = !isfinite(res.normalised);
		values[2] = Float8GetDatum(threshold);
		nulls[2] = !isfinite(threshold);
		values[3] = Int64GetDatum(res.tp_windows);
		values[4] = Int64GetDatum(res.fp_events);
		values[5] = Int64GetDatum(res.fn_windows);
		nulls[6] = res.tp_windows + res.fp_events == 0;
		values[6] = Float8GetDatum(nulls[6] ? 0.0 :
								   (double) res.tp_windows / (double) (res.tp_windows + res.fp_events));
		nulls[7] = res.tp_windows + res.fn_windows == 0;
		values[7] = Float8GetDatum(nulls[7] ? 0.0 :
								   (double) res.tp_windows / (double) (res.tp_windows + res.fn_windows));
		nulls[8] = nd == 0;
		if (nd > 0)
		{
			qsort(delays, nd, sizeof(int64), smx_int64_cmp);
			values[8] = smx_usecs_interval(nd % 2 ? (double) delays[nd / 2] :
										   ((double) delays[nd / 2 - 1] + (double) delays[nd / 2]) / 2.0);
		}
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
}

/*
 * Raise a clear error unless relation rel has every column in cols, of the
 * type in types (a second type, or InvalidOid, in types2): the values are
 * read with no cast, so no function of the table's owner runs for them.
 */
static void
smx_report_require_columns(Oid rel, const char *const *cols, const Oid *types,
						   const Oid *types2, int ncols, const char *shape)
{
	char	   *name = get_rel_name(rel);

	if (name == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", rel)));
	for (int c = 0; c < ncols; c++)
	{
		AttrNumber	att = get_attnum(rel, cols[c]);
		Oid			t = att == InvalidAttrNumber ? InvalidOid : get_atttype(rel, att);

		if (att == InvalidAttrNumber)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("relation %s has no column \"%s\"", name, cols[c]),
					 errhint("It needs the columns %s.", shape)));
		if (t != types[c] && (types2[c] == InvalidOid || t != types2[c]))
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("column \"%s\" of relation %s is of type %s", cols[c], name, format_type_be(t)),
					 errhint("It needs the columns %s.", shape)));
	}
}

/* The relation's name, schema-qualified and quoted, for SQL. */
static char *
smx_report_relname(Oid rel)
{
	char	   *name = get_rel_name(rel);

	if (name == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", rel)));
	return quote_qualified_identifier(get_namespace_name(get_rel_namespace(rel)), name);
}

static const char *const smx_score_cols[3] = {"server_id", "timestamp", "score"};
static const Oid smx_score_types[3] = {TEXTOID, TIMESTAMPTZOID, FLOAT4OID};
static const Oid smx_score_types2[3] = {InvalidOid, InvalidOid, FLOAT8OID};
#define SMX_SCORE_SHAPE "(server_id text, \"timestamp\" timestamptz, score real)"

Datum
sim_detector_report(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	TimestampTz since,
				until;
	const char *nsp;
	char	   *sql;
	Oid			argtypes[2] = {TIMESTAMPTZOID, TIMESTAMPTZOID};
	Datum		args[2];
	SmxReportData d;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("since and until must not be NULL"),
				 errhint("Name the simulated span to score, e.g. the last 30 days of sim_status().sim_time.")));
	since = PG_GETARG_TIMESTAMPTZ(0);
	until = PG_GETARG_TIMESTAMPTZ(1);
	if (TIMESTAMP_NOT_FINITE(since) || TIMESTAMP_NOT_FINITE(until))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("since and until must be finite"),
				 errhint("Name the simulated span to score, e.g. the last 30 days of sim_status().sim_time.")));
	if (!(until > since))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("until (%s) is not after since (%s)",
						pstrdup(timestamptz_to_str(until)), pstrdup(timestamptz_to_str(since))),
				 errhint("Pass the earlier time as since.")));
	nsp = quote_identifier(smx_extension_schema_name());
	InitMaterializedSRF(fcinfo, 0);
	memset(&d, 0, sizeof(d));
	args[0] = TimestampTzGetDatum(since);
	args[1] = TimestampTzGetDatum(until);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (PG_ARGISNULL(2))
		sql = psprintf("SELECT h.server_id, h.\"timestamp\", h.anomaly_score::float8"
					   " FROM %s.server_metrics_history h"
					   " WHERE h.\"timestamp\" >= $1 AND h.\"timestamp\" < $2"
					   " ORDER BY h.server_id COLLATE \"C\", h.\"timestamp\", h.tick", nsp);
	else
	{
		Oid			rel = PG_GETARG_OID(2);

		smx_report_require_columns(rel, smx_score_cols, smx_score_types, smx_score_types2, 3,
								   SMX_SCORE_SHAPE);
		sql = psprintf("SELECT s.server_id, s.\"timestamp\", s.score::pg_catalog.float8"
					   " FROM %s s"
					   " WHERE s.\"timestamp\" OPERATOR(pg_catalog.>=) $1"
					   " AND s.\"timestamp\" OPERATOR(pg_catalog.<) $2"
					   " ORDER BY s.server_id COLLATE \"C\", s.\"timestamp\", s.score",
					   smx_report_relname(rel));
	}
	smx_report_read_scores(&d, sql, 2, argtypes, args, PG_ARGISNULL(2) ? "server_metrics_history" : "scores");
	/* a run's window on a server: its phases' span, clipped to [since, until) */
	sql = psprintf("SELECT l.server_id, GREATEST(pg_catalog.min(l.started_at), $1),"
				   " LEAST(pg_catalog.max(COALESCE(l.ended_at, $2)), $2) - interval '1 microsecond'"
				   " FROM %s.sim_incident_labels l GROUP BY l.server_id, l.run_id"
				   " HAVING pg_catalog.min(l.started_at) < $2 AND pg_catalog.max(COALESCE(l.ended_at, $2)) > $1"
				   " ORDER BY l.server_id COLLATE \"C\", 2", nsp);
	smx_report_read_windows(&d, sql, 2, argtypes, args, "sim_incident_labels");
	smx_report_emit(rsinfo, &d, 0.0, NAN);
	SPI_finish();
	return (Datum) 0;
}

Datum
sim_score_detector(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	static const char *const win_cols[3] = {"server_id", "window_start", "window_end"};
	static const Oid win_types[3] = {TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID};
	static const Oid win_types2[3] = {InvalidOid, InvalidOid, InvalidOid};
	Oid			scores,
				windows;
	double		probation,
				threshold = NAN;
	SmxReportData d;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("scores, windows and probation must not be NULL"),
				 errhint("Name a table of scores and one of windows; probation 0 ignores nothing.")));
	scores = PG_GETARG_OID(0);
	windows = PG_GETARG_OID(1);
	probation = PG_GETARG_FLOAT8(2);
	if (!(probation >= 0.0 && probation < 1.0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("probation must be in [0, 1), not %g", probation),
				 errhint("It is the share of each series' first rows whose detections are ignored; NAB uses 0.15.")));
	if (!PG_ARGISNULL(3))
	{
		threshold = PG_GETARG_FLOAT8(3);
		if (isnan(threshold))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("threshold must be a number"),
					 errhint("Leave it NULL to choose the best threshold.")));
	}
	smx_report_require_columns(scores, smx_score_cols, smx_score_types, smx_score_types2, 3,
							   SMX_SCORE_SHAPE);
	smx_report_require_columns(windows, win_cols, win_types, win_types2, 3,
							   "(server_id text, window_start timestamptz, window_end timestamptz)");
	InitMaterializedSRF(fcinfo, 0);
	memset(&d, 0, sizeof(d));
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	smx_report_read_scores(&d,
						   psprintf("SELECT s.server_id, s.\"timestamp\", s.score::pg_catalog.float8"
									" FROM %s s ORDER BY s.server_id COLLATE \"C\", s.\"timestamp\", s.score",
									smx_report_relname(scores)),
						   0, NULL, NULL, "scores");
	smx_report_read_windows(&d,
							psprintf("SELECT w.server_id, w.window_start, w.window_end"
									 " FROM %s w ORDER BY w.server_id COLLATE \"C\", w.window_start",
									 smx_report_relname(windows)),
							0, NULL, NULL, "windows");
	smx_report_emit(rsinfo, &d, probation, threshold);
	SPI_finish();
	return (Datum) 0;
}

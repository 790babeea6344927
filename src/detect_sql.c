/*
 * detect_sql.c — the anomaly detector for any series:
 * sim_anomaly_scores(ts timestamptz[], value float8[]): each row's score
 * (how far off the series is now, as the fleet's anomaly_score) and onset
 * (how new that is: one alarm an event).
 *
 * The detector (detect.c) that scores every sample of the fleet, run over
 * a series the caller hands in, in time order, each row scored from the
 * rows before it only (the onset also uses the rows' times: a daily shape
 * is read in UTC). Users score their own metrics with it, and the NAB
 * benchmark goes through it (bench/nab.sh). Rows at the same time (real
 * data has them) are scored in the order given.
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "sim_metrics.h"

PG_FUNCTION_INFO_V1(sim_anomaly_scores);

/* A one-dimensional array's elements; name says which argument in errors. */
static int
smx_detect_arg(ArrayType *a, Oid type, const char *name, Datum **elems, bool **nulls)
{
	int			n;
	int16		typlen;
	bool		typbyval;
	char		typalign;

	if (ARR_NDIM(a) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("%s must be a one-dimensional array", name),
				 errhint("Pass the series as two flat arrays, e.g. array_agg(ts ORDER BY ts) and array_agg(value ORDER BY ts).")));
	get_typlenbyvalalign(type, &typlen, &typbyval, &typalign);
	deconstruct_array(a, type, typlen, typbyval, typalign, elems, nulls, &n);
	return n;
}

Datum
sim_anomaly_scores(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Datum	   *ts,
			   *val;
	bool	   *ts_null,
			   *val_null;
	int			nts,
				nval;
	smx_series_detector *d;

	nts = smx_detect_arg(PG_GETARG_ARRAYTYPE_P(0), TIMESTAMPTZOID, "ts", &ts, &ts_null);
	nval = smx_detect_arg(PG_GETARG_ARRAYTYPE_P(1), FLOAT8OID, "value", &val, &val_null);
	if (nts != nval)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("ts has %d elements and value has %d", nts, nval),
				 errhint("Pass one time for each value.")));
	for (int i = 0; i < nts; i++)
	{
		if (ts_null[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("ts[%d] is NULL", i + 1),
					 errhint("Every value needs its time; leave a missing value NULL instead.")));
		if (TIMESTAMP_NOT_FINITE(DatumGetTimestampTz(ts[i])))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("ts[%d] is infinite", i + 1),
					 errhint("Every value needs a finite time; leave such rows out.")));
		if (i > 0 && DatumGetTimestampTz(ts[i]) < DatumGetTimestampTz(ts[i - 1]))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("ts[%d] is before ts[%d]", i + 1, i),
					 errdetail("%s comes after %s.", pstrdup(timestamptz_to_str(DatumGetTimestampTz(ts[i]))),
							   pstrdup(timestamptz_to_str(DatumGetTimestampTz(ts[i - 1])))),
					 errhint("The series is scored in time order: sort it, e.g. array_agg(ts ORDER BY ts) and array_agg(value ORDER BY ts).")));
	}

	InitMaterializedSRF(fcinfo, 0);
	d = palloc0(sizeof(smx_series_detector));
	for (int i = 0; i < nts; i++)
	{
		Datum		values[4];
		bool		nulls[4] = {false, false, false, false};
		double		x = val_null[i] ? NAN : DatumGetFloat8(val[i]);

		/* the detector works in float: a value beyond its range is none */
		if (!isfinite((float) x))
			x = NAN;

		CHECK_FOR_INTERRUPTS();
		values[0] = ts[i];
		values[1] = val[i];
		nulls[1] = val_null[i];
		/* a missing or non-finite value has no score and leaves the state be */
		if (!isfinite(x))
			nulls[2] = nulls[3] = true;
		else
		{
			TimestampTz t = DatumGetTimestampTz(ts[i]);
			float		level;
			float		onset;

			/* whole seconds since 2000-01-01, a UTC midnight (floor) */
			t = t >= 0 ? t / USECS_PER_SEC : -((-t + USECS_PER_SEC - 1) / USECS_PER_SEC);
			onset = smx_series_step(d, t, x, &level);

			values[2] = Float8GetDatum(smx_score_shown(level));
			/* onsets are small numbers: six decimals, not the 1e-4 of scores */
			values[3] = Float8GetDatum(rint((double) onset * 1e6) / 1e6);
		}
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/*
 * restore.c — continuing the fleet from server_metrics_history after a
 * server start or crash-restart wiped shared memory: each server from its
 * latest row, the tick numbering after the newest tick stored. Only finite
 * times and values reach the model.
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "sim_metrics.h"

/* A one-dimensional text array of the fleet's ids. */
static Datum
smx_id_array(const SmxServerDesc *desc, int n)
{
	Datum	   *ids = palloc(sizeof(Datum) * n);
	int			dims[1] = {n};
	int			lbs[1] = {1};

	for (int i = 0; i < n; i++)
		ids[i] = CStringGetTextDatum(desc[i].id);
	return PointerGetDatum(construct_md_array(ids, NULL, 1, dims, lbs, TEXTOID, -1, false, TYPALIGN_INT));
}

/*
 * Select each of the n servers' latest history row with a finite time, as
 * h, beside u.ord (the server's index + 1): "SELECT u.ord::int4, <select>".
 * An index probe a server. Must be connected to SPI; the rows are left in
 * SPI_tuptable.
 */
void
smx_select_latest_rows(Oid nsp, const SmxServerDesc *desc, int n, const char *select,
					   bool read_only)
{
	Datum		arg = smx_id_array(desc, n);
	Oid			argtype = TEXTARRAYOID;
	char	   *sql = psprintf("SELECT u.ord::int4, %s"
							   " FROM pg_catalog.unnest($1) WITH ORDINALITY AS u(id, ord)"
							   " CROSS JOIN LATERAL (SELECT x.*"
							   "   FROM %s.server_metrics_history x"
							   "   WHERE x.server_id OPERATOR(pg_catalog.=) u.id"
							   "     AND pg_catalog.isfinite(x.\"timestamp\")"
							   "   ORDER BY x.\"timestamp\" DESC LIMIT 1) h",
							   select, quote_identifier(get_namespace_name(nsp)));
	int			ret = SPI_execute_with_args(sql, 1, &argtype, &arg, NULL, read_only, 0);

	if (ret != SPI_OK_SELECT)
		elog(ERROR, "reading server_metrics_history failed: %s", SPI_result_code_string(ret));
}

/*
 * Raise *max_tick to the newest tick in the whole table, of any server,
 * with its time: rows of retired servers or a restored dump may run
 * further than the current fleet's latest rows. Starts from the fleet's
 * newest tick, so the BRIN index on tick reads only the last block ranges.
 * Must be connected to SPI.
 */
void
smx_restore_newest_tick(Oid nsp, uint64 *max_tick, double *max_tick_epoch)
{
	StringInfoData sql;
	Oid			argtype = INT8OID;
	Datum		arg = Int64GetDatum((int64) *max_tick);
	int			ret;

	initStringInfo(&sql);
	appendStringInfo(&sql,
					 "SELECT x.tick, pg_catalog.date_part('epoch', x.\"timestamp\")"
					 " FROM %s.server_metrics_history x"
					 " WHERE x.tick OPERATOR(pg_catalog.>) $1"
					 "   AND pg_catalog.isfinite(x.\"timestamp\")"
					 " ORDER BY x.tick DESC LIMIT 1",
					 quote_identifier(get_namespace_name(nsp)));
	ret = SPI_execute_with_args(sql.data, 1, &argtype, &arg, NULL, true, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "reading server_metrics_history failed: %s", SPI_result_code_string(ret));
	if (SPI_processed == 1)
	{
		bool		n1,
					n2;
		Datum		t = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &n1);
		Datum		e = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &n2);

		if (!n1 && !n2 && isfinite(DatumGetFloat8(e)))
		{
			*max_tick = (uint64) DatumGetInt64(t);
			*max_tick_epoch = DatumGetFloat8(e);
		}
	}
}

/*
 * The columns the restore takes from a server's latest row h. A row an
 * incident acted on (scenario_run_id set) shows the incident laid over the
 * model's values, or zeros for a server that was down: the values are
 * then taken from the server's latest row before it (the run, if it goes
 * on, lays itself over them again), the tick from h.
 */
static char *
smx_restore_columns(Oid nsp)
{
	const char *rel = quote_identifier(get_namespace_name(nsp));
	StringInfoData s;
	static const char *const cols[4] = {"cpu_usage", "memory_usage", "disk_usage", "network_io"};

	initStringInfo(&s);
	for (int c = 0; c < 4; c++)
		appendStringInfo(&s,
						 "CASE WHEN h.scenario_run_id IS NULL THEN h.%1$s::float8"
						 " ELSE COALESCE((SELECT y.%1$s::float8 FROM %2$s.server_metrics_history y"
						 "  WHERE y.server_id OPERATOR(pg_catalog.=) h.server_id"
						 "    AND y.scenario_run_id IS NULL"
						 "    AND y.\"timestamp\" OPERATOR(pg_catalog.<) h.\"timestamp\""
						 "  ORDER BY y.\"timestamp\" DESC LIMIT 1), h.%1$s::float8) END, ",
						 cols[c], rel);
	appendStringInfoString(&s, "h.tick, pg_catalog.date_part('epoch', h.\"timestamp\")");
	return s.data;
}

/*
 * Read the latest history row of each of the n servers (an index probe per
 * server), so a restarted cluster continues each server from where its
 * chart stopped instead of jumping back to the baseline. Fills restored[i],
 * found[i] and row_tick[i] (the tick of the row server i continues from,
 * -1 when none); *max_tick and *max_tick_epoch get the newest tick stored
 * (of any server, current or retired) and its simulated time.
 * Must run inside a transaction, not connected to SPI. Returns the number
 * of servers found.
 */
int
smx_restore_from_history(Oid nsp, const SmxServerDesc *desc,
						 const smx_params *params, int n, smx_state *restored,
						 bool *found, int64 *row_tick, uint64 *max_tick,
						 double *max_tick_epoch)
{
	int			nfound = 0;
	SmxSavedUser saved;

	*max_tick = 0;
	*max_tick_epoch = 0;
	memset(found, 0, sizeof(bool) * n);
	for (int i = 0; i < n; i++)
		row_tick[i] = -1;
	if (n == 0)
		return 0;

	smx_become_writer(&saved);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	smx_select_latest_rows(nsp, desc, n, smx_restore_columns(nsp), false);
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
		/* the model takes only finite input */
		if (!isfinite(DatumGetFloat8(v[1])) || !isfinite(DatumGetFloat8(v[2])) ||
			!isfinite(DatumGetFloat8(v[3])) || !isfinite(DatumGetFloat8(v[4])))
			continue;
		smx_state_restore(&params[i], &restored[i],
						  (float) DatumGetFloat8(v[1]), (float) DatumGetFloat8(v[2]),
						  (float) DatumGetFloat8(v[3]), DatumGetFloat8(v[4]));
		found[i] = true;
		nfound++;
		if (!isnull[5])
			row_tick[i] = DatumGetInt64(v[5]);
		if (!isnull[5] && !isnull[6] && DatumGetInt64(v[5]) > 0 &&
			(uint64) DatumGetInt64(v[5]) > *max_tick && isfinite(DatumGetFloat8(v[6])))
		{
			*max_tick = (uint64) DatumGetInt64(v[5]);
			*max_tick_epoch = DatumGetFloat8(v[6]);
		}
	}
	if (nfound > 0)
		smx_restore_newest_tick(nsp, max_tick, max_tick_epoch);
	SPI_finish();
	smx_restore_user(&saved);
	return nfound;
}


/*
 * server_read.c — sim_server_metrics(server_id): one server's latest row from the
 * nearest layer that has it: shared memory (a live server), else Redis (a
 * server that left the fleet less than redis_ttl ago, or whatever the
 * mirror last wrote), else its latest history row. Column `source` says
 * which. Redis is asked through a connection of the call's own, every step
 * bounded by redis_timeout, so a down or slow Redis costs at most that; and
 * only for an id server_templates or the history knows (anyone may call
 * this, through sim_expose()'s wrappers too), with a bounded reply.
 */
#include "postgres.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "sim_metrics.h"

PG_FUNCTION_INFO_V1(sim_server_metrics);

#define SMX_POINT_COLS	(SMX_CURRENT_COLS + 1)	/* sim_current_metrics()'s + source */

/* From shared memory: the live server's row (binary search by id). */
static bool
smx_point_memory(const char *id, Datum *values, bool *nulls)
{
	SmxServerDesc d;
	smx_state	s;
	int			role = 0;
	bool		found = false;
	uint64		tick = 0;
	TimestampTz updated_at = 0;
	TimestampTz sim_time = 0;
	bool		sim_time_valid = false;
	char		runs[SMX_MAX_RUNS + 1][SMX_SCENARIO_LEN];

	LWLockAcquire(smx_shared->publish_lock, LW_SHARED);
	{
		int			i = smx_desc_find(smx_shared_desc(), smx_shared->fleet.nservers, id);

		if (i >= 0)
		{
			d = smx_shared_desc()[i];
			s = smx_shared_state()[i];
			role = smx_shared_params()[i].role;
			found = true;
			smx_copy_run_names(runs);
		}
		tick = smx_shared->fleet.tick;
		updated_at = smx_shared->fleet.last_tick_at;
		sim_time_valid = smx_epoch_to_timestamptz(smx_sim_epoch_at(tick), &sim_time);
	}
	LWLockRelease(smx_shared->publish_lock);
	if (!found)
		return false;

	{
		SmxCurrentRow r;
		Datum		desc_text[SMX_CURRENT_DESC_COLS];

		smx_current_desc_text(desc_text, &d, role);
		smx_current_from_state(&r, &s, runs, desc_text, tick, sim_time, sim_time_valid,
							   updated_at);
		smx_current_row_values(&r, values, nulls);
	}
	return true;
}

/* What a Redis hash held, copied out so the reply is freed at once. */
typedef struct SmxPointHash
{
	double		pct[5];			/* cpu, memory, disk, network %, response ms */
	int64		network_io;
	int64		tick;
	int			status;
	char		scenario[SMX_SCENARIO_LEN];	/* "" = none */
	bool		sim_time_valid;
	TimestampTz sim_time;
	bool		updated_valid;
	TimestampTz updated_at;
	double		anomaly;		/* -1: none (a 1.7 mirror wrote no score) */
	int			anomaly_signal;
} SmxPointHash;

static bool
smx_point_double(void *reply, const char *name, double *out)
{
	const char *v = smx_redis_point_field(reply, name);
	char	   *end;

	if (v == NULL || v[0] == '\0')
		return false;
	errno = 0;
	*out = strtod(v, &end);
	return *end == '\0' && errno == 0 && isfinite(*out);
}

static bool
smx_point_int64(void *reply, const char *name, int64 *out)
{
	const char *v = smx_redis_point_field(reply, name);
	char	   *end;

	if (v == NULL || v[0] == '\0')
		return false;
	errno = 0;
	*out = strtoll(v, &end, 10);
	return *end == '\0' && errno == 0;
}

/* An ISO 8601 time field (the mirror writes ISO, UTC); false when unreadable. */
static bool
smx_point_time(void *reply, const char *name, TimestampTz *out)
{
	const char *v = smx_redis_point_field(reply, name);
	double		epoch;

	return v != NULL && smx_parse_iso8601(v, &epoch) && smx_epoch_to_timestamptz(epoch, out);
}

/* Parse the fetched hash; false when a field is missing or malformed. */
static bool
smx_point_parse(void *r, SmxPointHash *h)
{
	static const char *const pct_names[5] = {"cpu_usage", "memory_usage", "disk_usage",
	"network_usage", "response_time_ms"};
	const char *status = smx_redis_point_field(r, "status");

	h->status = -1;
	for (int i = 0; status && i < 4; i++)
		if (strcmp(status, smx_status_names[i]) == 0)
			h->status = i;
	if (h->status < 0)
		return false;
	for (int i = 0; i < 5; i++)
		if (!smx_point_double(r, pct_names[i], &h->pct[i]))
			return false;
	if (!smx_point_int64(r, "network_io", &h->network_io) || !smx_point_int64(r, "tick", &h->tick))
		return false;
	/* the mirror writes "" for none; no field (an older mirror) is none too */
	{
		const char *scenario = smx_redis_point_field(r, "scenario");

		if (scenario == NULL)
			scenario = "";
		if (strlen(scenario) >= SMX_SCENARIO_LEN)
			return false;
		strlcpy(h->scenario, scenario, SMX_SCENARIO_LEN);
	}
	/* the score and its signal: none from an older mirror */
	h->anomaly = -1;
	h->anomaly_signal = -1;
	if (smx_redis_point_field(r, "anomaly_score") != NULL)
	{
		const char *sig = smx_redis_point_field(r, "anomaly_metric");

		if (!smx_point_double(r, "anomaly_score", &h->anomaly) ||
			!(h->anomaly >= 0.0 && h->anomaly <= 1.0))
			return false;
		for (int i = 0; sig && i <= SMX_DETECT_SIGNALS; i++)
			if (strcmp(sig, smx_detect_signal_names[i]) == 0)
				h->anomaly_signal = i;
		if (h->anomaly == 0.0)
			h->anomaly_signal = -1;
	}
	h->sim_time_valid = smx_point_time(r, "sim_time", &h->sim_time);
	h->updated_valid = smx_point_time(r, "updated_at", &h->updated_at);
	return true;
}

/*
 * From Redis: the hash the mirror last wrote. Asked only while the
 * mirror's own connection is up, so a down Redis costs nothing.
 */
static bool
smx_point_redis(const char *id, Datum *values, bool *nulls)
{
	void	   *r;
	SmxPointHash h;
	bool		ok;
	bool		up;

	LWLockAcquire(smx_shared->publish_lock, LW_SHARED);
	up = strcmp(smx_shared->mirror.state, "connected") == 0;
	LWLockRelease(smx_shared->publish_lock);
	if (!up || (r = smx_redis_point_fetch(id)) == NULL)
		return false;
	ok = smx_point_parse(r, &h);
	smx_redis_point_free(r);
	if (!ok)
		return false;
	{
		SmxCurrentRow row;

		row.desc_text = NULL;	/* from server_templates (smx_point_describe) */
		row.id = id;
		row.cpu = h.pct[0];
		row.memory = h.pct[1];
		row.disk = h.pct[2];
		row.network = h.pct[3];
		row.response_ms = h.pct[4];
		row.network_io = h.network_io;
		row.status = h.status;
		row.scenario = h.scenario[0] == '\0' ? NULL : h.scenario;
		row.tick = h.tick;
		row.sim_time = h.sim_time;
		row.sim_time_valid = h.sim_time_valid;
		row.updated_at = h.updated_at;
		row.updated_valid = h.updated_valid;
		row.anomaly = h.anomaly;
		row.anomaly_signal = h.anomaly_signal;
		smx_current_row_values(&row, values, nulls);
	}
	return true;
}

/*
 * From the table: the latest history row, and the scenario of its run
 * (scenario_run_id) as the log names it. Must be connected to SPI.
 */
static bool
smx_point_table(const char *nspname, text *id_t, Datum *values, bool *nulls)
{
	StringInfoData sql;
	Oid			argtype = TEXTOID;
	Datum		arg = PointerGetDatum(id_t);
	bool		n[6];
	Datum		v[6];
	bool		an;
	Datum		av;
	int			ret;

	Oid			nsp = get_namespace_oid(nspname, false);
	/* a history from before 1.8 has no score */
	bool		scored = smx_history_ncols(get_relname_relid("server_metrics_history", nsp)) ==
		SMX_HISTORY_INSERT_COLS;

	initStringInfo(&sql);
	appendStringInfo(&sql,
					 "SELECT h.cpu_usage::float8, h.memory_usage::float8, h.disk_usage::float8,"
					 " h.network_io, h.status, h.tick, h.\"timestamp\","
					 " (SELECT l.scenario_name FROM %1$s.scenario_execution_log l"
					 "   WHERE l.run_id OPERATOR(pg_catalog.=) h.scenario_run_id"
					 "   ORDER BY l.id LIMIT 1), %2$s"
					 " FROM %1$s.server_metrics_history h WHERE h.server_id OPERATOR(pg_catalog.=) $1"
					 " ORDER BY h.\"timestamp\" DESC LIMIT 1", quote_identifier(nspname),
					 scored ? "pg_catalog.round(h.anomaly_score::numeric, 4)::float8" : "NULL::float8");
	ret = SPI_execute_with_args(sql.data, 1, &argtype, &arg, NULL, true, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "reading server_metrics_history failed: %s", SPI_result_code_string(ret));
	if (SPI_processed == 0)
		return false;
	for (int c = 0; c < 6; c++)
		v[c] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, c + 1, &n[c]);
	values[0] = PointerGetDatum(id_t);
	for (int c = 0; c < 3; c++)
	{
		values[6 + c] = n[c] ? (Datum) 0 : Float8GetDatum(DatumGetFloat8(v[c]));
		nulls[6 + c] = n[c];
	}
	values[9] = v[3];
	nulls[9] = n[3];
	nulls[10] = nulls[11] = true;	/* not kept in history */
	values[12] = n[4] ? (Datum) 0 : PointerGetDatum(DatumGetTextPCopy(v[4]));
	nulls[12] = n[4];
	values[14] = v[5];
	nulls[14] = n[5];
	{
		bool		tn;
		Datum		ts = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 7, &tn);
		Datum		sc = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 8, &nulls[13]);

		values[15] = ts;
		nulls[15] = tn;
		values[13] = nulls[13] ? (Datum) 0 : PointerGetDatum(DatumGetTextPCopy(sc));
	}
	nulls[16] = true;			/* the wall clock of the sample is not kept */
	av = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 9, &an);
	values[17] = an ? (Datum) 0 : Float8GetDatum(DatumGetFloat8(av));
	nulls[17] = an;
	nulls[18] = true;			/* the signal behind it is not kept */
	return true;
}

/* The descriptive columns from server_templates (NULL when gone). */
static void
smx_point_describe(const char *nspname, text *id_t, Datum *values, bool *nulls)
{
	StringInfoData sql;
	Oid			argtype = TEXTOID;
	Datum		arg = PointerGetDatum(id_t);
	int			ret;

	for (int c = 1; c <= 5; c++)
		nulls[c] = true;
	initStringInfo(&sql);
	appendStringInfo(&sql,
					 "SELECT name, hostname, role, location, environment"
					 " FROM %s.server_templates WHERE id OPERATOR(pg_catalog.=) $1",
					 quote_identifier(nspname));
	ret = SPI_execute_with_args(sql.data, 1, &argtype, &arg, NULL, true, 1);
	if (ret != SPI_OK_SELECT || SPI_processed == 0)
		return;
	for (int c = 1; c <= 5; c++)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, c, &isnull);

		values[c] = isnull ? (Datum) 0 : PointerGetDatum(DatumGetTextPCopy(d));
		nulls[c] = isnull;
	}
}

Datum
sim_server_metrics(PG_FUNCTION_ARGS)
{
	text	   *id_t = PG_GETARG_TEXT_PP(0);
	char	   *id = text_to_cstring(id_t);
	TupleDesc	tupdesc;
	Datum		values[SMX_POINT_COLS];
	bool		nulls[SMX_POINT_COLS];
	const char *source;
	char	   *nspname;
	MemoryContext cxt = CurrentMemoryContext;

	smx_require_fleet_database();
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	nspname = smx_extension_schema_name();
	memset(nulls, 0, sizeof(nulls));
	memset(values, 0, sizeof(values));

	if (smx_point_memory(id, values, nulls))
		source = "memory";
	else
	{
		bool		from_redis;

		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		/* an id nobody knows never reaches Redis */
		smx_require_known_server(nspname, id_t, id);
		from_redis = smx_point_redis(id, values, nulls);
		source = from_redis ? "redis" : "table";
		if (!from_redis && !smx_point_table(nspname, id_t, values, nulls))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("unknown server \"%s\"", id),
					 errhint("Use an id from server_templates or server_metrics_history.")));
		smx_point_describe(nspname, id_t, values, nulls);
		/* copies made in the SPI context must outlive SPI_finish */
		MemoryContextSwitchTo(cxt);
		for (int c = 0; c < tupdesc->natts - 1 && c < SMX_POINT_COLS - 1; c++)
		{
			Form_pg_attribute att = TupleDescAttr(tupdesc, c);

			if (!nulls[c] && !att->attbyval)
				values[c] = datumCopy(values[c], false, att->attlen);
		}
		SPI_finish();
	}
	/* an older version's function (before 1.8) has no score columns */
	values[tupdesc->natts - 1] = CStringGetTextDatum(source);
	nulls[tupdesc->natts - 1] = false;
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

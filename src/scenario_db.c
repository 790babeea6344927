/*
 * scenario_db.c — the scenarios' tables: the catalog read at each reload,
 * the runs read back after a restart, and scenario_execution_log, which
 * the writer keeps up with the runs in shared memory.
 *
 * The log has one row per phase that began. The writer inserts a phase's
 * row once the published tick reached it, and writes its ended_at once
 * the next phase began ([started_at, ended_at) in simulated time, the
 * ticks whose samples carry the run id). The row's parameters hold what
 * the run needs to go on after a restart: its phase ticks and the
 * catalog entry as it was at the start. A run still open in the log after
 * a restart continues where its phases say; one whose end passed before
 * the tick the fleet continues from is closed with a last row,
 * 'interrupted'. The writer writes as the log's owner, in a security-
 * restricted operation, like the history flush.
 */
#include "postgres.h"

#include <math.h>

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "sim_metrics.h"

#define SMX_ROLE_ARRAY "ARRAY['web','app','database','cache','storage','load-balancer']"
#define SMX_PHASE_ARRAY "ARRAY['warning','onset','peak','recovery']"

/* Ticks of history searched for run ids the log did not have at a crash. */
#define SMX_RUN_ID_PROBE_TICKS	64

/* Whether the extension's schema has a relation (1.4 added sim_scenarios). */
static Oid
smx_relation(const char *nspname, const char *relname)
{
	Oid			nsp = get_namespace_oid(nspname, true);

	return OidIsValid(nsp) ? get_relname_relid(relname, nsp) : InvalidOid;
}

/*
 * The catalog columns, from column `first` of a row selected with
 * SMX_DEF_COLUMNS (a sim_scenarios row) or from a log row's parameters.
 */
#define SMX_DEF_COLUMNS \
	"name, roles_mask, s1, s2, s3, s4, c1, c2, c3, c4," \
	" cpu, mem, disk, net, resp, offline, auto_weight," \
	" cascade, cascade_p, cascade_i, delay_min, delay_max"
#define SMX_DEF_NCOLS 22

static bool
smx_def_from_row(HeapTuple tup, TupleDesc td, int first, SmxScenarioDef *d)
{
	bool		isnull;
	double		sum = 0;

	memset(d, 0, sizeof(*d));
	smx_copy_text(tup, td, first, d->name, SMX_SCENARIO_LEN);
	d->roles = (uint32) smx_get_double(tup, td, first + 1, 0);
	for (int k = 0; k < SMX_PH_COUNT; k++)
	{
		char		curve[16];
		int			c;

		d->share[k] = (float) smx_get_double(tup, td, first + 2 + k, -1);
		smx_copy_text(tup, td, first + 6 + k, curve, sizeof(curve));
		c = smx_curve_from_name(curve);
		if (!(d->share[k] > 0) || c < 0)
			return false;
		d->curve[k] = (uint8) c;
		sum += d->share[k];
	}
	if (fabs(sum - 1.0) > 0.01)
		return false;
	for (int m = 0; m < SMX_M_COUNT; m++)
		d->effects.add[m] = (float) smx_get_double(tup, td, first + 10 + m, 0);
	d->effects.response = (float) Max(1.0, smx_get_double(tup, td, first + 14, 1));
	d->effects.offline = DatumGetBool(SPI_getbinval(tup, td, first + 15, &isnull)) && !isnull;
	d->auto_weight = (float) Max(0.0, smx_get_double(tup, td, first + 16, 0));
	smx_copy_text(tup, td, first + 17, d->cascade, SMX_SCENARIO_LEN);
	d->cascade_p = (float) smx_get_double(tup, td, first + 18, 0);
	d->cascade_intensity = (float) smx_get_double(tup, td, first + 19, 0);
	d->cascade_delay_s[0] = (float) Max(0.0, smx_get_double(tup, td, first + 20, 0));
	d->cascade_delay_s[1] = (float) Max(d->cascade_delay_s[0], smx_get_double(tup, td, first + 21, 0));
	for (int m = 0; m < SMX_M_COUNT; m++)
		if (!isfinite(d->effects.add[m]))
			return false;
	return isfinite(d->effects.response) && isfinite(d->cascade_p) &&
		isfinite(d->cascade_intensity) && isfinite(d->cascade_delay_s[1]);
}

/* The catalog as SMX_DEF_COLUMNS, for a WHERE clause (may be empty). */
static char *
smx_catalog_query(const char *nspname, const char *where, int limit)
{
	return psprintf("SELECT " SMX_DEF_COLUMNS " FROM (SELECT name,"
					" (SELECT pg_catalog.bit_or(1 OPERATOR(pg_catalog.<<)"
					"   (pg_catalog.array_position(" SMX_ROLE_ARRAY ", r) OPERATOR(pg_catalog.-) 1))"
					"   FROM pg_catalog.unnest(roles) r)::float8 AS roles_mask,"
					" phase_shares[1]::float8 s1, phase_shares[2]::float8 s2,"
					" phase_shares[3]::float8 s3, phase_shares[4]::float8 s4,"
					" phase_curves[1] c1, phase_curves[2] c2, phase_curves[3] c3, phase_curves[4] c4,"
					" cpu_effect::float8 cpu, memory_effect::float8 mem, disk_effect::float8 disk,"
					" network_effect::float8 net, response_factor::float8 resp, takes_offline offline,"
					" auto_weight::float8 auto_weight, cascade_scenario cascade,"
					" cascade_probability::float8 cascade_p, cascade_intensity::float8 cascade_i,"
					" pg_catalog.date_part('epoch', cascade_delay_min) delay_min,"
					" pg_catalog.date_part('epoch', cascade_delay_max) delay_max"
					" FROM %s.sim_scenarios %s ORDER BY name COLLATE \"C\" LIMIT %d) c",
					quote_identifier(nspname), where, limit);
}

/*
 * Read the catalog (at most max entries, by name) into defs; 0 when the
 * extension predates it. A row the CHECKs let through but the engine cannot
 * run is skipped with a WARNING. Runs inside a transaction; connects to SPI
 * itself.
 */
int
smx_scenarios_read(const char *nspname, SmxScenarioDef *defs, int max)
{
	int			n = 0;
	int			ret;
	SmxSavedUser saved;

	if (!OidIsValid(smx_relation(nspname, "sim_scenarios")))
		return 0;
	smx_become_writer(&saved);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	ret = SPI_execute(smx_catalog_query(nspname, "", max + 1), true, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "reading sim_scenarios failed: %s", SPI_result_code_string(ret));
	if (SPI_processed > (uint64) max)
		ereport(WARNING,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("sim_metrics: only the first %d scenarios of sim_scenarios (by name) are used", max)));
	for (uint64 i = 0; i < SPI_processed && n < max; i++)
	{
		if (smx_def_from_row(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &defs[n]))
			n++;
		else
			ereport(WARNING,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("sim_metrics: skipping scenario \"%s\": its phases or effects cannot run",
							SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1))));
	}
	SPI_finish();
	smx_restore_user(&saved);
	return n;
}

/*
 * One catalog entry by name, for a run started by hand (sim_scenario_start(),
 * sim_backfill()'s incidents): an error when there is none or it cannot
 * run. Read as the caller, who needs SELECT on sim_scenarios.
 */
void
smx_scenario_read_one(const char *nspname, const char *name, SmxScenarioDef *def)
{
	Oid			argtype = TEXTOID;
	Datum		arg = CStringGetTextDatum(name);
	bool		found;
	bool		runnable;
	int			ret;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	ret = SPI_execute_with_args(smx_catalog_query(nspname, "WHERE name OPERATOR(pg_catalog.=) $1", 1),
								1, &argtype, &arg, NULL, true, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "reading sim_scenarios failed: %s", SPI_result_code_string(ret));
	found = SPI_processed == 1;
	runnable = found && smx_def_from_row(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, def);
	SPI_finish();
	if (!found)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("scenario \"%s\" does not exist", name),
				 errhint("SELECT name FROM sim_scenarios lists the scenarios.")));
	if (!runnable)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("scenario \"%s\" cannot run: its phase shares or effects are out of range", name),
				 errhint("Check its row in sim_scenarios.")));
}

/* The arguments and result of reading the open runs back. */
typedef struct SmxReadOpen
{
	const char *nsp;			/* quoted schema */
	SmxRun	   *runs;
	int			max;
	int64		newest_tick;
	int64	   *next_id;
	int			n;
} SmxReadOpen;

static void
smx_runs_read_open_step(void *arg)
{
	SmxReadOpen *st = arg;
	const char *nsp = st->nsp;
	char	   *sql;
	int			ret;

	ret = SPI_execute(psprintf("SELECT pg_catalog.max(run_id)::float8 FROM %s.scenario_execution_log", nsp),
					  true, 0);
	if (ret == SPI_OK_SELECT && SPI_processed == 1)
		*st->next_id = (int64) smx_get_double(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, 0) + 1;

	/*
	 * The last flush may have written samples of runs the log had not
	 * caught up with (ticks after the writer's last log step): their
	 * ids are not given out again. They are in the newest ticks.
	 */
	ret = SPI_execute(psprintf("SELECT pg_catalog.max(scenario_run_id)::float8"
							   " FROM %s.server_metrics_history"
							   " WHERE tick OPERATOR(pg_catalog.>=) " INT64_FORMAT,
							   nsp, Max(st->newest_tick - SMX_RUN_ID_PROBE_TICKS, 0)),
					  true, 0);
	if (ret == SPI_OK_SELECT && SPI_processed == 1)
		*st->next_id = Max(*st->next_id,
					   (int64) smx_get_double(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, 0) + 1);
	sql = psprintf("SELECT " SMX_DEF_COLUMNS ","
				   " run_id, parent_run_id, intensity, targets, begun, ended,"
				   " t0, t1, t2, t3, t4, step, requested, from_level, automatic, stopped"
				   " FROM (SELECT l.run_id::float8 run_id, COALESCE(l.parent_run_id, 0)::float8 parent_run_id,"
				   "  l.intensity::float8 intensity, l.scenario_name AS name,"
				   "  ARRAY(SELECT pg_catalog.jsonb_array_elements_text(l.affected_servers)) targets,"
				   "  (SELECT pg_catalog.bit_or(1 OPERATOR(pg_catalog.<<) (pg_catalog.array_position("
				   SMX_PHASE_ARRAY ", x.phase) OPERATOR(pg_catalog.-) 1))"
				   "   FROM %1$s.scenario_execution_log x WHERE x.run_id OPERATOR(pg_catalog.=) l.run_id)::float8 begun,"
				   "  (SELECT pg_catalog.bit_or(1 OPERATOR(pg_catalog.<<) (pg_catalog.array_position("
				   SMX_PHASE_ARRAY ", x.phase) OPERATOR(pg_catalog.-) 1))"
				   "   FROM %1$s.scenario_execution_log x WHERE x.run_id OPERATOR(pg_catalog.=) l.run_id"
				   "   AND x.ended_at IS NOT NULL)::float8 ended,"
				   "  (p->'ticks'->>0)::float8 t0, (p->'ticks'->>1)::float8 t1, (p->'ticks'->>2)::float8 t2,"
				   "  (p->'ticks'->>3)::float8 t3, (p->'ticks'->>4)::float8 t4,"
				   "  (p->>'step_seconds')::float8 step, (p->>'requested_seconds')::float8 requested,"
				   "  (p->>'from_level')::float8 from_level, (p->>'automatic')::bool automatic,"
				   "  (p->>'stopped')::bool stopped,"
				   "  (p->'roles_mask')::float8 roles_mask,"
				   "  (p->'shares'->>0)::float8 s1, (p->'shares'->>1)::float8 s2,"
				   "  (p->'shares'->>2)::float8 s3, (p->'shares'->>3)::float8 s4,"
				   "  p->'curves'->>0 c1, p->'curves'->>1 c2, p->'curves'->>2 c3, p->'curves'->>3 c4,"
				   "  (p->'effects'->>'cpu')::float8 cpu, (p->'effects'->>'memory')::float8 mem,"
				   "  (p->'effects'->>'disk')::float8 disk, (p->'effects'->>'network')::float8 net,"
				   "  (p->'effects'->>'response')::float8 resp, (p->'effects'->>'offline')::bool offline,"
				   "  0::float8 auto_weight, p->'cascade'->>'scenario' cascade,"
				   "  (p->'cascade'->>'probability')::float8 cascade_p,"
				   "  (p->'cascade'->>'intensity')::float8 cascade_i,"
				   "  (p->'cascade'->'delay_seconds'->>0)::float8 delay_min,"
				   "  (p->'cascade'->'delay_seconds'->>1)::float8 delay_max"
				   "  FROM (SELECT DISTINCT ON (run_id) *, parameters AS p"
				   "   FROM %1$s.scenario_execution_log"
				   "   WHERE run_id IN (SELECT run_id FROM %1$s.scenario_execution_log WHERE ended_at IS NULL)"
				   "   ORDER BY run_id, id DESC) l) o ORDER BY run_id LIMIT %2$d",
				   nsp, st->max);
	ret = SPI_execute(sql, true, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "reading scenario_execution_log failed: %s", SPI_result_code_string(ret));
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	td = SPI_tuptable->tupdesc;
		SmxRun	   *r = &st->runs[st->n];
		int			c = SMX_DEF_NCOLS + 1;
		bool		isnull;
		Datum		targets;

		memset(r, 0, sizeof(*r));
		if (!smx_def_from_row(tup, td, 1, &r->def))
			continue;
		r->id = (int64) smx_get_double(tup, td, c, 0);
		r->parent_id = (int64) smx_get_double(tup, td, c + 1, 0);
		r->intensity = (float) smx_get_double(tup, td, c + 2, 0.5);
		targets = SPI_getbinval(tup, td, c + 3, &isnull);
		if (!isnull)
		{
			Datum	   *elems;
			bool	   *enulls;
			int			ne;

			deconstruct_array(DatumGetArrayTypeP(targets), TEXTOID, -1, false, TYPALIGN_INT,
							  &elems, &enulls, &ne);
			for (int e = 0; e < ne && r->ntargets < SMX_RUN_TARGETS; e++)
				if (!enulls[e])
					smx_copy_clipped(r->targets[r->ntargets++], TextDatumGetCString(elems[e]),
									 SMX_ID_LEN);
		}
		r->logged_begun = (uint8) smx_get_double(tup, td, c + 4, 0);
		r->logged_ended = (uint8) smx_get_double(tup, td, c + 5, 0);
		for (int k = 0; k <= SMX_PH_COUNT; k++)
			r->ticks[k] = (int64) smx_get_double(tup, td, c + 6 + k, -1);
		r->step_seconds = smx_get_double(tup, td, c + 11, 0);
		r->requested_s = smx_get_double(tup, td, c + 12, 0);
		r->from_level = (float) smx_get_double(tup, td, c + 13, 1);
		r->automatic = DatumGetBool(SPI_getbinval(tup, td, c + 14, &isnull)) && !isnull;
		r->stopped = DatumGetBool(SPI_getbinval(tup, td, c + 15, &isnull)) && !isnull;
		r->stop_logged = r->stopped;
		if (r->id <= 0 || r->ticks[0] < 0 || r->step_seconds <= 0 || r->ntargets == 0)
			continue;
		for (int k = 0; k < SMX_PH_COUNT; k++)
			if (r->ticks[k + 1] < r->ticks[k])
				r->ntargets = 0;
		if (r->ntargets > 0 && st->n < st->max)
			st->n++;
	}
}

/*
 * The runs still open in the log (a phase without ended_at), as they were
 * planned, with what of them is logged; and the next free run id. Reads
 * inside a subtransaction: a log the engine cannot read resumes nothing
 * (logged), the fleet still loads.
 */
int
smx_runs_read_open(const char *nspname, SmxRun *runs, int max, int64 newest_tick,
				   int64 *next_id)
{
	SmxReadOpen st = {quote_identifier(nspname), runs, max, newest_tick, next_id, 0};
	ErrorData  *edata;

	*next_id = 1;
	if (!OidIsValid(smx_relation(nspname, "sim_scenarios")))
		return 0;
	edata = smx_try_in_subxact(smx_runs_read_open_step, &st, smx_writer_role());
	if (edata == NULL)
		return st.n;
	ereport(LOG,
			(errmsg("sim_metrics: could not read the open scenario runs back: %s", edata->message)));
	FreeErrorData(edata);
	return 0;
}

/* The affected servers of a run, as a json array. */
static char *
smx_run_servers_json(const SmxRun *r)
{
	StringInfoData s;
	bool		first = true;

	initStringInfo(&s);
	appendStringInfoChar(&s, '[');
	for (int t = 0; t < r->ntargets; t++)
		if (r->affected & ((uint32) 1 << t))
		{
			if (!first)
				appendStringInfoString(&s, ", ");
			escape_json(&s, r->targets[t]);
			first = false;
		}
	appendStringInfoChar(&s, ']');
	return s.data;
}

/* What a run needs to go on after a restart, as the log's parameters. */
static char *
smx_run_parameters(const SmxRun *r)
{
	StringInfoData s;
	const SmxScenarioDef *d = &r->def;

	initStringInfo(&s);
	appendStringInfo(&s, "{\"ticks\": [" INT64_FORMAT ", " INT64_FORMAT ", " INT64_FORMAT
					 ", " INT64_FORMAT ", " INT64_FORMAT "]",
					 r->ticks[0], r->ticks[1], r->ticks[2], r->ticks[3], r->ticks[4]);
	appendStringInfo(&s, ", \"step_seconds\": %.17g, \"requested_seconds\": %.17g,"
					 " \"from_level\": %.9g, \"automatic\": %s, \"stopped\": %s",
					 r->step_seconds, r->requested_s, r->from_level,
					 r->automatic ? "true" : "false", r->stopped ? "true" : "false");
	appendStringInfo(&s, ", \"roles_mask\": %u, \"shares\": [%.9g, %.9g, %.9g, %.9g]",
					 d->roles, d->share[0], d->share[1], d->share[2], d->share[3]);
	appendStringInfo(&s, ", \"curves\": [\"%s\", \"%s\", \"%s\", \"%s\"]",
					 smx_curve_names[d->curve[0]], smx_curve_names[d->curve[1]],
					 smx_curve_names[d->curve[2]], smx_curve_names[d->curve[3]]);
	appendStringInfo(&s, ", \"effects\": {\"cpu\": %.9g, \"memory\": %.9g, \"disk\": %.9g,"
					 " \"network\": %.9g, \"response\": %.9g, \"offline\": %s}",
					 d->effects.add[0], d->effects.add[1], d->effects.add[2], d->effects.add[3],
					 d->effects.response, d->effects.offline ? "true" : "false");
	if (d->cascade[0] != '\0')
	{
		appendStringInfoString(&s, ", \"cascade\": {\"scenario\": ");
		escape_json(&s, d->cascade);
		appendStringInfo(&s, ", \"probability\": %.9g, \"intensity\": %.9g,"
						 " \"delay_seconds\": [%.9g, %.9g]}",
						 d->cascade_p, d->cascade_intensity,
						 d->cascade_delay_s[0], d->cascade_delay_s[1]);
	}
	appendStringInfoChar(&s, '}');
	return s.data;
}

/*
 * A phase that never acted (a stop skipped it) is left out of the log,
 * unless its row was written before (read back after a restart, then
 * stopped): that row is closed.
 */
static inline bool
smx_phase_skipped(const SmxRun *r, int k)
{
	return r->ticks[k] == r->ticks[k + 1] && !(r->logged_begun & (1 << k));
}

/* Whether the writer has something to write for a run at tick now_tick. */
bool
smx_run_needs_log(const SmxRun *r, int64 now_tick)
{
	if ((r->state != SMX_RUN_ACTIVE && r->state != SMX_RUN_DONE) || r->log_closed)
		return false;
	if (r->state == SMX_RUN_DONE || (r->stopped && !r->stop_logged))
		return true;
	for (int k = 0; k < SMX_PH_COUNT; k++)
	{
		uint8		bit = (uint8) (1 << k);

		if (smx_phase_skipped(r, k))
			continue;
		if (r->ticks[k] <= now_tick && !(r->logged_begun & bit))
			return true;
		if (r->ticks[k + 1] <= now_tick && !(r->logged_ended & bit))
			return true;
	}
	return false;
}

/* The simulated time of a tick, as the log writes it. */
static Datum
smx_log_time(const SmxLogSql *q, int64 tick)
{
	TimestampTz ts;

	if (!q->has_clock)
		return smx_tick_time_datum(tick, NULL);
	if (!smx_epoch_to_timestamptz(smx_sim_epoch(&q->clock, (uint64) Max(tick, 0)), &ts))
		ts = DT_NOEND;
	return TimestampTzGetDatum(ts);
}

void
smx_log_sql(const char *nsp, SmxLogSql *q)
{
	memset(q, 0, sizeof(*q));
	q->insert = psprintf("INSERT INTO %s.scenario_execution_log (run_id, parent_run_id,"
						 " scenario_name, phase, affected_servers, intensity, duration_seconds,"
						 " started_at, ended_at, parameters)"
						 " VALUES ($1, $2, $3, $4, $5::pg_catalog.jsonb, $6::numeric(3,2), $7,"
						 " $8, $9, $10::pg_catalog.jsonb)", nsp);
	q->close = psprintf("UPDATE %s.scenario_execution_log SET ended_at = GREATEST(started_at, $3),"
						" duration_seconds = $4 WHERE run_id OPERATOR(pg_catalog.=) $1"
						" AND phase OPERATOR(pg_catalog.=) $2 AND ended_at IS NULL", nsp);
	q->replan = psprintf("UPDATE %s.scenario_execution_log SET parameters = $2::pg_catalog.jsonb"
						 " WHERE run_id OPERATOR(pg_catalog.=) $1", nsp);
}

/* Insert a log row. */
static void
smx_log_insert(const SmxLogSql *q, const SmxRun *r, const char *phase, const char *servers,
			   const char *params, int secs, int64 from, int64 to, bool ended)
{
	static const Oid types[10] = {INT8OID, INT8OID, TEXTOID, TEXTOID, TEXTOID,
	FLOAT8OID, INT4OID, TIMESTAMPTZOID, TIMESTAMPTZOID, TEXTOID};
	Datum		v[10];
	char		n[11] = "          ";

	if (q->dry)
		return;
	v[0] = Int64GetDatum(r->id);
	v[1] = Int64GetDatum(r->parent_id);
	n[1] = r->parent_id == 0 ? 'n' : ' ';
	v[2] = CStringGetTextDatum(r->def.name);
	v[3] = CStringGetTextDatum(phase);
	v[4] = CStringGetTextDatum(servers);
	v[5] = Float8GetDatum(rint(r->intensity * 100.0) / 100.0);
	v[6] = Int32GetDatum(secs);
	v[7] = smx_log_time(q, from);
	v[8] = smx_log_time(q, to);
	n[8] = ended ? ' ' : 'n';
	v[9] = CStringGetTextDatum(params);
	if (SPI_execute_with_args(q->insert, 10, (Oid *) types, v, n, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "inserting into scenario_execution_log failed");
}

/*
 * Write what one run needs at tick now_tick: rows of phases that began, ended_at
 * of phases that ended, a stop's new plan; for a run whose time passed
 * while the simulator was down, its phases up to the tick the fleet went
 * on from, then a last 'interrupted' row. Sets the run's log bits. Runs in
 * SPI, as the log's owner.
 */
void
smx_log_run(const SmxLogSql *q, SmxRun *r, int64 now_tick)
{
	char	   *servers = q->dry ? NULL : smx_run_servers_json(r);
	char	   *params = q->dry ? NULL : smx_run_parameters(r);
	int64		ticks[SMX_PH_COUNT + 1];
	bool		closed = true;

	memcpy(ticks, r->ticks, sizeof(ticks));
	if (r->interrupted)
	{
		/* what the history holds of it: up to where the fleet went on */
		now_tick = r->resumed_at;
		for (int k = 1; k <= SMX_PH_COUNT; k++)
			ticks[k] = Max(Min(ticks[k], now_tick), ticks[k - 1]);
	}
	if (r->stopped && !r->stop_logged && q->dry)
		r->stop_logged = true;
	else if (r->stopped && !r->stop_logged)
	{
		Datum		v[2] = {Int64GetDatum(r->id), CStringGetTextDatum(params)};

		if (SPI_execute_with_args(q->replan, 2, (Oid[]) {INT8OID, TEXTOID}, v, NULL, false, 0) !=
			SPI_OK_UPDATE)
			elog(ERROR, "updating scenario_execution_log failed");
		r->stop_logged = true;
	}
	for (int k = 0; k < SMX_PH_COUNT; k++)
	{
		uint8		bit = (uint8) (1 << k);
		bool		begun = ticks[k] <= now_tick;
		bool		ended = ticks[k + 1] <= now_tick;
		int			secs = (int) Min(llround((double) (ticks[k + 1] - ticks[k]) * r->step_seconds),
									 PG_INT32_MAX);

		if (ticks[k] == ticks[k + 1] && !(r->logged_begun & bit))
			continue;			/* never acted */
		if (begun && !(r->logged_begun & bit))
		{
			smx_log_insert(q, r, smx_phase_names[k], servers, params, secs,
						   ticks[k], ticks[k + 1], ended);
			r->logged_begun |= bit;
			if (ended)
				r->logged_ended |= bit;
		}
		else if (ended && (r->logged_begun & bit) && !(r->logged_ended & bit) && q->dry)
			r->logged_ended |= bit;
		else if (ended && (r->logged_begun & bit) && !(r->logged_ended & bit))
		{
			Datum		v[4] = {Int64GetDatum(r->id), CStringGetTextDatum(smx_phase_names[k]),
			smx_log_time(q, ticks[k + 1]), Int32GetDatum(secs)};

			if (SPI_execute_with_args(q->close, 4, (Oid[]) {INT8OID, TEXTOID, TIMESTAMPTZOID, INT4OID},
									  v, NULL, false, 0) != SPI_OK_UPDATE)
				elog(ERROR, "updating scenario_execution_log failed");
			r->logged_ended |= bit;
		}
		if (!ended)
			closed = false;
	}
	if (r->interrupted)
	{
		smx_log_insert(q, r, "interrupted", servers, params, 0, now_tick, now_tick, true);
		closed = true;
	}
	r->log_closed = closed && r->state == SMX_RUN_DONE;
}

/*
 * The writer's step: bring scenario_execution_log up to the published
 * tick. One transaction for every run that needs a row; the marks in
 * shared memory move only after it committed. A failure raises, and the
 * step is retried at the next iteration. Takes no arguments (a step).
 */
void
smx_scenario_log(void *arg)
{
	SmxRun	   *todo;
	int		   *slots;
	int			ntodo = 0;
	int64		now_tick;
	Oid			ext;
	Oid			nsp;
	Oid			relid;
	SmxSavedUser saved;

	todo = palloc(sizeof(SmxRun) * SMX_MAX_RUNS);
	slots = palloc(sizeof(int) * SMX_MAX_RUNS);
	LWLockAcquire(smx_shared->publish_lock, LW_SHARED);
	now_tick = (int64) smx_shared->fleet.tick;
	for (int i = 0; i < SMX_MAX_RUNS; i++)
		if (smx_run_needs_log(&smx_shared->scen.runs[i], now_tick))
		{
			todo[ntodo] = smx_shared->scen.runs[i];
			slots[ntodo++] = i;
		}
	LWLockRelease(smx_shared->publish_lock);

	if (ntodo > 0)
	{
		smx_worker_xact_begin("sim_metrics: scenario log", "1s");
		nsp = smx_extension_schema(&ext);
		relid = OidIsValid(nsp) ? get_relname_relid("scenario_execution_log", nsp) : InvalidOid;
		if (OidIsValid(relid) && OidIsValid(get_relname_relid("sim_scenarios", nsp)))
		{
			SmxLogSql	q;

			smx_log_sql(quote_identifier(get_namespace_name(nsp)), &q);
			smx_become_writer(&saved);
			if (SPI_connect() != SPI_OK_CONNECT)
				elog(ERROR, "SPI_connect failed");
			for (int i = 0; i < ntodo; i++)
				smx_log_run(&q, &todo[i], now_tick);
			SPI_finish();
			smx_restore_user(&saved);
		}
		smx_worker_xact_end(smx_loop_cxt);
	}

	LWLockAcquire(smx_shared->publish_lock, LW_EXCLUSIVE);
	for (int i = 0; i < ntodo; i++)
	{
		SmxRun	   *r = &smx_shared->scen.runs[slots[i]];

		if (r->id != todo[i].id)
			continue;
		r->logged_begun |= todo[i].logged_begun;
		r->logged_ended |= todo[i].logged_ended;
		/* a stop since the copy: its plan is written next time */
		if (todo[i].stop_logged && r->stopped && memcmp(r->ticks, todo[i].ticks, sizeof(r->ticks)) == 0)
			r->stop_logged = true;
		if (todo[i].log_closed && r->state == SMX_RUN_DONE)
			r->log_closed = true;
	}
	if (now_tick > smx_shared->scen.log_tick)
		smx_shared->scen.log_tick = now_tick;
	LWLockRelease(smx_shared->publish_lock);
}

/*
 * Wait (at most timeout_ms) until the writer logged every phase up to
 * tick; sim_flush() uses it so that the log is as current as the history.
 */
void
smx_wait_scenario_log(int64 tick, int timeout_ms)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout_ms);

	for (;;)
	{
		bool		behind = false;

		LWLockAcquire(smx_shared->publish_lock, LW_SHARED);
		if (smx_shared->scen.log_tick < tick)
			for (int i = 0; i < SMX_MAX_RUNS && !behind; i++)
				behind = smx_run_needs_log(&smx_shared->scen.runs[i], tick);
		LWLockRelease(smx_shared->publish_lock);
		if (!behind || GetCurrentTimestamp() >= deadline)
			return;
		smx_wake_writer();
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 10,
						 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

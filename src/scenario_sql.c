/*
 * scenario_sql.c — the scenario functions: sim_scenario_start(),
 * sim_scenario_stop(), sim_scenario_runs().
 *
 * A start is checked in full before anything changes: the scenario (read
 * from sim_scenarios as the caller), intensity, duration, and every target
 * (ids and role:/location:/env: selectors, resolved against the fleet under
 * step_lock, so that no tick runs in between). The run starts at the next
 * tick. Like sim_tick(), a start or stop takes effect at once, not at
 * commit.
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "sim_metrics.h"

PG_FUNCTION_INFO_V1(sim_scenario_start);
PG_FUNCTION_INFO_V1(sim_scenario_stop);
PG_FUNCTION_INFO_V1(sim_scenario_runs);

#define SMX_RUNS_COLS		11

/* Why a start was refused, raised after step_lock is released. */
typedef struct SmxStartError
{
	int			code;			/* 0 = none */
	char		msg[256];
	char		hint[256];
} SmxStartError;

static void
smx_start_error(SmxStartError *e, int code, const char *hint, const char *fmt,...)
pg_attribute_printf(4, 5);

static void
smx_start_error(SmxStartError *e, int code, const char *hint, const char *fmt,...)
{
	va_list		ap;

	if (e->code != 0)
		return;
	e->code = code;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	strlcpy(e->hint, hint, sizeof(e->hint));
}

/* The roles a scenario suits, as "a, b" ("any role" when all). */
static char *
smx_roles_text(uint32 roles)
{
	StringInfoData s;

	if (roles == 0)
		return pstrdup("any role");
	initStringInfo(&s);
	for (int r = 0; r < SMX_ROLE_COUNT; r++)
		if (roles & (1u << r))
			appendStringInfo(&s, "%s%s", s.len > 0 ? ", " : "", smx_role_names[r]);
	return s.data;
}

/* Whether server i is in a run or named by one waiting to start. */
static int64
smx_server_busy(const smx_state *state, int i, const char *id)
{
	if (state[i].run != 0)
		return smx_shared->scen.runs[state[i].run - 1].id;
	for (int r = 0; r < SMX_MAX_RUNS; r++)
	{
		SmxRun	   *run = &smx_shared->scen.runs[r];

		if (run->state != SMX_RUN_PENDING)
			continue;
		for (int t = 0; t < run->ntargets; t++)
			if (strcmp(run->targets[t], id) == 0)
				return run->id;
	}
	return 0;
}

/* Add server i to the targets (once). */
static void
smx_add_target(SmxRun *r, int i, const SmxServerDesc *desc, SmxStartError *e)
{
	for (int t = 0; t < r->ntargets; t++)
		if (strcmp(r->targets[t], desc[i].id) == 0)
			return;
	if (r->ntargets == SMX_RUN_TARGETS)
	{
		smx_start_error(e, ERRCODE_PROGRAM_LIMIT_EXCEEDED,
						"Name fewer servers, or start one run per group of servers.",
						"a run can act on at most %d servers", SMX_RUN_TARGETS);
		return;
	}
	strlcpy(r->targets[r->ntargets++], desc[i].id, SMX_ID_LEN);
}

/*
 * Resolve one target: a server id, or role:/location:/env: selecting every
 * server that matches.
 */
static void
smx_resolve_target(SmxRun *r, const char *target, const SmxServerDesc *desc,
				   const smx_params *params, int n, SmxStartError *e)
{
	const char *colon = strchr(target, ':');
	int			matched = 0;

	if (colon != NULL &&
		(strncmp(target, "role:", 5) == 0 || strncmp(target, "location:", 9) == 0 ||
		 strncmp(target, "env:", 4) == 0 || strncmp(target, "environment:", 12) == 0))
	{
		const char *value = colon + 1;
		int			role = -1;

		if (target[0] == 'r' && (role = smx_role_from_name(value)) < 0)
		{
			smx_start_error(e, ERRCODE_INVALID_PARAMETER_VALUE,
							"Roles are web, app, database, cache, storage and load-balancer.",
							"unknown role in selector \"%s\"", target);
			return;
		}
		for (int i = 0; i < n; i++)
		{
			bool		match = target[0] == 'r' ? params[i].role == role :
				target[0] == 'l' ? strcmp(desc[i].location, value) == 0 :
				strcmp(desc[i].environment, value) == 0;

			if (match)
			{
				smx_add_target(r, i, desc, e);
				matched++;
			}
		}
		if (matched == 0)
			smx_start_error(e, ERRCODE_UNDEFINED_OBJECT,
							"SELECT role, location, environment FROM sim_current_metrics() shows what the fleet has.",
							"selector \"%s\" matches no server", target);
		return;
	}
	{
		int			i = smx_desc_find(desc, n, target);

		if (i < 0)
			smx_start_error(e, ERRCODE_UNDEFINED_OBJECT,
							"SELECT server_id FROM sim_current_metrics() lists the servers; selectors are role:, location: and env:.",
							"server \"%s\" is not in the fleet", target);
		else
			smx_add_target(r, i, desc, e);
	}
}

/*
 * The targets of a start, checked against the fleet; NULL servers: one
 * server the scenario suits, chosen by the seed and the start tick.
 * Caller holds step_lock.
 */
static void
smx_resolve_targets(SmxRun *r, ArrayType *servers, SmxStartError *e)
{
	const SmxServerDesc *desc = smx_shared_desc();
	const smx_params *params = smx_shared_params();
	const smx_state *state = smx_shared_state();
	int			n = smx_shared->fleet.nservers;
	uint32		roles = r->def.roles;

	if (servers == NULL)
	{
		int			candidates = 0,
					chosen;

		for (int i = 0; i < n; i++)
			if ((roles == 0 || (roles & (1u << params[i].role))) && !smx_server_busy(state, i, desc[i].id))
				candidates++;
		if (candidates == 0)
		{
			smx_start_error(e, ERRCODE_UNDEFINED_OBJECT,
							"Name the servers, or wait for running scenarios to end (sim_scenario_runs()).",
							"no free server suits scenario \"%s\" (it suits %s)",
							r->def.name, smx_roles_text(roles));
			return;
		}
		chosen = (int) (smx_unit_key((uint64) smx_seed, smx_hash_str(r->def.name),
									 (uint64) r->ticks[0]) * candidates);
		for (int i = 0; i < n; i++)
			if ((roles == 0 || (roles & (1u << params[i].role))) && !smx_server_busy(state, i, desc[i].id) &&
				chosen-- == 0)
				smx_add_target(r, i, desc, e);
		return;
	}
	{
		Datum	   *elems;
		bool	   *enulls;
		int			ne;

		deconstruct_array(servers, TEXTOID, -1, false, TYPALIGN_INT, &elems, &enulls, &ne);
		if (ne == 0)
			smx_start_error(e, ERRCODE_INVALID_PARAMETER_VALUE,
							"Pass NULL to let the seed choose one server, or name servers or selectors.",
							"servers is an empty array");
		for (int k = 0; k < ne && e->code == 0; k++)
		{
			if (enulls[k])
				smx_start_error(e, ERRCODE_NULL_VALUE_NOT_ALLOWED,
								"Remove the NULL from servers.", "servers contains a NULL");
			else
				smx_resolve_target(r, TextDatumGetCString(elems[k]), desc, params, n, e);
		}
	}
	for (int t = 0; t < r->ntargets && e->code == 0; t++)
	{
		int			i = smx_desc_find(desc, n, r->targets[t]);
		int64		busy = smx_server_busy(state, i, desc[i].id);

		if (roles != 0 && !(roles & (1u << params[i].role)))
			smx_start_error(e, ERRCODE_INVALID_PARAMETER_VALUE,
							"Pick servers of a role it suits, or add the role to sim_scenarios.roles.",
							"scenario \"%s\" suits %s; server \"%s\" is %s",
							r->def.name, smx_roles_text(roles), desc[i].id,
							smx_role_names[params[i].role]);
		else if (busy != 0)
			smx_start_error(e, ERRCODE_OBJECT_IN_USE,
							"Stop that run with sim_scenario_stop(), or wait for it to end.",
							"server \"%s\" is already in scenario run " INT64_FORMAT,
							desc[i].id, busy);
	}
}

/* Interval in seconds, months as 30 days (as interval arithmetic does). */
double
smx_interval_seconds(const Interval *iv)
{
	return (double) iv->time / USECS_PER_SEC + (double) iv->day * SECS_PER_DAY +
		(double) iv->month * DAYS_PER_MONTH * SECS_PER_DAY;
}

/*
 * The targets of a run placed by hand in a backfill (sim_backfill's
 * incidents): ids and selectors resolved against the fleet as
 * sim_scenario_start() resolves them, the scenario's roles checked. A
 * server busy when the run starts is skipped then, as any run's busy
 * target is. Raises the first problem, naming the entry by what.
 */
void
smx_run_set_targets(SmxRun *r, const char *const *servers, int nservers, const char *what)
{
	SmxStartError e;
	const SmxServerDesc *desc = smx_shared_desc();
	const smx_params *params = smx_shared_params();
	int			n;

	memset(&e, 0, sizeof(e));
	if (nservers == 0)
		smx_start_error(&e, ERRCODE_INVALID_PARAMETER_VALUE,
						"Name servers by id or with role:, location: and env: selectors.",
						"servers is empty");
	LWLockAcquire(smx_shared->publish_lock, LW_SHARED);
	n = smx_shared->fleet.nservers;
	for (int k = 0; k < nservers && e.code == 0; k++)
		smx_resolve_target(r, servers[k], desc, params, n, &e);
	for (int t = 0; t < r->ntargets && e.code == 0; t++)
	{
		int			i = smx_desc_find(desc, n, r->targets[t]);

		if (r->def.roles != 0 && !(r->def.roles & (1u << params[i].role)))
			smx_start_error(&e, ERRCODE_INVALID_PARAMETER_VALUE,
							"Pick servers of a role it suits, or add the role to sim_scenarios.roles.",
							"scenario \"%s\" suits %s; server \"%s\" is %s",
							r->def.name, smx_roles_text(r->def.roles), desc[i].id,
							smx_role_names[params[i].role]);
	}
	LWLockRelease(smx_shared->publish_lock);
	if (e.code != 0)
		ereport(ERROR, (errcode(e.code), errmsg("%s: %s", what, e.msg), errhint("%s", e.hint)));
}

/*
 * sim_scenario_start(scenario, servers, intensity, duration): a new run,
 * from the next tick; returns its id.
 */
Datum
sim_scenario_start(PG_FUNCTION_ARGS)
{
	char	   *name;
	ArrayType  *servers = PG_ARGISNULL(1) ? NULL : PG_GETARG_ARRAYTYPE_P(1);
	float4		intensity;
	double		duration_s;
	SmxRun		r;
	SmxStartError e;
	int			slot;
	smx_config	cfg;
	char	   *nspname;

	smx_require_fleet_database();
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("scenario must not be NULL"),
				 errhint("SELECT name FROM sim_scenarios lists the scenarios.")));
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	intensity = PG_ARGISNULL(2) ? -1 : PG_GETARG_FLOAT4(2);
	if (!(intensity > 0 && intensity <= 1))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("intensity must be greater than 0 and at most 1"),
				 errhint("0.7 is a clear incident, 1 the worst the scenario does.")));
	duration_s = PG_ARGISNULL(3) ? -1 : smx_interval_seconds(PG_GETARG_INTERVAL_P(3));
	if (!(duration_s > 0 && duration_s <= SMX_MAX_DURATION_S))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("duration must be more than 0 and at most 7 days of simulated time"),
				 errhint("Durations are in simulated time, such as '10 min' or '2 hours'.")));
	if (!OidIsValid(smx_shared->fleet.extension) || smx_shared->fleet.nservers == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the sim_metrics fleet is not loaded"),
				 errhint("Wait for the writer to load server_templates, or call sim_reload().")));
	nspname = smx_extension_schema_name();
	memset(&r, 0, sizeof(r));
	smx_scenario_read_one(nspname, name, &r.def);
	r.state = SMX_RUN_PENDING;
	r.intensity = intensity;
	r.from_level = 1.0f;
	memset(&e, 0, sizeof(e));

	LWLockAcquire(smx_shared->step_lock, LW_EXCLUSIVE);
	if (smx_backfill_holds_fleet())
	{
		LWLockRelease(smx_shared->step_lock);
		smx_backfill_refuse("sim_scenario_start()");
	}
	smx_current_config(&cfg);
	smx_run_plan(&r, (int64) smx_shared->fleet.tick + 1, duration_s, cfg.step_seconds);
	smx_resolve_targets(&r, servers, &e);
	slot = e.code == 0 ? smx_run_alloc(smx_runs_shared()) : -1;
	if (e.code == 0 && slot < 0)
		smx_start_error(&e, ERRCODE_CONFIGURATION_LIMIT_EXCEEDED,
						"Stop runs with sim_scenario_stop(), or wait for the writer to log the finished ones.",
						"%d scenario runs are active or not yet logged", SMX_MAX_RUNS);
	if (e.code == 0)
		(void) smx_run_add(smx_runs_shared(), slot, &r);
	LWLockRelease(smx_shared->step_lock);
	if (e.code != 0)
		ereport(ERROR, (errcode(e.code), errmsg("%s", e.msg), errhint("%s", e.hint)));
	PG_RETURN_INT64(r.id);
}

/* sim_scenario_stop(run_id): end a run (and its cascades) through recovery. */
Datum
sim_scenario_stop(PG_FUNCTION_ARGS)
{
	int64		id;
	int			found = -1;
	int64		now_tick;
	int			phase = -1;
	int			state = SMX_RUN_FREE;

	smx_require_fleet_database();
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("run_id must not be NULL"),
				 errhint("sim_scenario_runs() lists the runs.")));
	id = PG_GETARG_INT64(0);
	LWLockAcquire(smx_shared->step_lock, LW_EXCLUSIVE);
	if (smx_backfill_holds_fleet())
	{
		LWLockRelease(smx_shared->step_lock);
		smx_backfill_refuse("sim_scenario_stop()");
	}
	now_tick = (int64) smx_shared->fleet.tick;
	for (int i = 0; i < SMX_MAX_RUNS; i++)
		if (smx_shared->scen.runs[i].state != SMX_RUN_FREE && smx_shared->scen.runs[i].id == id)
			found = i;
	if (found >= 0)
	{
		SmxRun	   *r = &smx_shared->scen.runs[found];

		state = r->state;
		(void) smx_run_level(r, now_tick, &phase);
		if (state == SMX_RUN_PENDING || state == SMX_RUN_ACTIVE)
			smx_run_stop(smx_runs_shared(), found, now_tick);
	}
	LWLockRelease(smx_shared->step_lock);
	if (found < 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("scenario run " INT64_FORMAT " is not active", id),
				 errhint("sim_scenario_runs() lists the runs; scenario_execution_log has the finished ones.")));
	if (state == SMX_RUN_DONE)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("scenario run " INT64_FORMAT " has already ended", id),
				 errhint("sim_scenario_runs() shows which runs are active.")));
	if (phase == SMX_PH_RECOVERY)
		ereport(NOTICE,
				(errmsg("scenario run " INT64_FORMAT " is already recovering", id)));
	PG_RETURN_VOID();
}

/* The state word of a run in sim_scenario_runs(). */
static const char *
smx_run_state_text(const SmxRun *r)
{
	switch (r->state)
	{
		case SMX_RUN_PENDING:
			return "pending";
		case SMX_RUN_ACTIVE:
			return r->stopped ? "stopping" : "active";
		default:
			return r->interrupted ? "interrupted" : r->affected == 0 ? "skipped" :
				r->stopped ? "stopped" : "done";
	}
}

/* sim_scenario_runs(): the runs in shared memory, active and recent. */
Datum
sim_scenario_runs(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	SmxRun	   *runs = palloc(sizeof(SmxRun) * SMX_MAX_RUNS);
	int			n = 0;
	int64		now_tick;

	smx_require_fleet_database();
	InitMaterializedSRF(fcinfo, 0);
	LWLockAcquire(smx_shared->publish_lock, LW_SHARED);
	now_tick = (int64) smx_shared->fleet.tick;
	for (int i = 0; i < SMX_MAX_RUNS; i++)
		if (smx_shared->scen.runs[i].state != SMX_RUN_FREE)
			runs[n++] = smx_shared->scen.runs[i];
	LWLockRelease(smx_shared->publish_lock);

	for (int i = 0; i < n; i++)
	{
		SmxRun	   *r = &runs[i];
		Datum		values[SMX_RUNS_COLS];
		bool		nulls[SMX_RUNS_COLS];
		Datum	   *names = palloc(sizeof(Datum) * Max(r->ntargets, 1));
		int			nnames = 0;
		int			phase = -1;
		double		total = (double) (r->ticks[SMX_PH_COUNT] - r->ticks[0]);
		double		progress;

		/* pending: its targets; else the servers it acts on */
		for (int t = 0; t < r->ntargets; t++)
			if (r->state == SMX_RUN_PENDING || (r->affected & ((uint32) 1 << t)))
				names[nnames++] = CStringGetTextDatum(r->targets[t]);
		if (r->state == SMX_RUN_ACTIVE)
			(void) smx_run_level(r, now_tick, &phase);
		progress = r->state == SMX_RUN_PENDING ? 0 :
			r->state == SMX_RUN_DONE ? 1 :
			Min(1.0, Max(0.0, (double) (now_tick - r->ticks[0] + 1) / Max(total, 1)));
		memset(nulls, 0, sizeof(nulls));
		values[0] = Int64GetDatum(r->id);
		values[1] = Int64GetDatum(r->parent_id);
		nulls[1] = r->parent_id == 0;
		values[2] = CStringGetTextDatum(r->def.name);
		values[3] = CStringGetTextDatum(smx_run_state_text(r));
		values[4] = phase >= 0 ? CStringGetTextDatum(smx_phase_names[phase]) : (Datum) 0;
		nulls[4] = phase < 0;
		values[5] = Float8GetDatum(rint(progress * 1000.0) / 1000.0);
		values[6] = Float4GetDatum(rintf(r->intensity * 100.0f) / 100.0f);
		values[7] = PointerGetDatum(construct_array(names, nnames, TEXTOID, -1, false, TYPALIGN_INT));
		values[8] = BoolGetDatum(r->automatic);
		values[9] = smx_tick_time_datum(r->ticks[0], &nulls[9]);
		values[10] = smx_tick_time_datum(r->ticks[SMX_PH_COUNT], &nulls[10]);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/*
 * control.c — the SQL functions that drive the simulation: sim_start(),
 * sim_stop(), sim_tick(), sim_reload(), and the statement trigger on
 * server_templates that tells the writer to reload when an edit commits.
 * All are revoked from PUBLIC by the install script (the trigger runs as
 * whoever edits the table).
 */
#include "postgres.h"

#include "access/xact.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"

#include "compat.h"
#include "sim_metrics.h"

PG_FUNCTION_INFO_V1(sim_start);
PG_FUNCTION_INFO_V1(sim_stop);
PG_FUNCTION_INFO_V1(sim_tick);
PG_FUNCTION_INFO_V1(sim_reload);
PG_FUNCTION_INFO_V1(sim_templates_changed);

Datum
sim_start(PG_FUNCTION_ARGS)
{
	smx_require_fleet_database();
	pg_atomic_write_u32(&smx_shared->paused, 0);
	smx_wake_ticker();
	smx_wake_writer();			/* it shows the state word */
	PG_RETURN_BOOL(pg_atomic_read_u32(&smx_shared->ticker.pid) != 0);
}

Datum
sim_stop(PG_FUNCTION_ARGS)
{
	smx_require_fleet_database();
	pg_atomic_write_u32(&smx_shared->paused, 1);
	smx_wake_ticker();
	smx_wake_writer();
	PG_RETURN_VOID();
}

/* Reload now when server_templates changed since the fleet was loaded. */
static void
smx_reload_if_stale(void)
{
	Oid			ext;

	(void) smx_extension_schema(&ext);
	if (OidIsValid(ext) && smx_engine_needs_reload(ext))
		smx_engine_reload(false);
}

Datum
sim_tick(PG_FUNCTION_ARGS)
{
	int32		n = PG_GETARG_INT32(0);
	uint64		tick;

	smx_require_fleet_database();
	if (n < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("number of ticks must be at least 1, not %d", n),
				 errhint("Call sim_tick() or sim_tick(n) with a positive n.")));
	smx_reload_if_stale();
	tick = smx_engine_tick(n, false);
	/* as after the ticker's ticks: Redis gets them now, not at the next poll */
	if (smx_redis_host && smx_redis_host[0])
		smx_wake_mirror();
	PG_RETURN_INT64((int64) tick);
}

Datum
sim_reload(PG_FUNCTION_ARGS)
{
	smx_require_fleet_database();
	PG_RETURN_INT32(smx_engine_reload(false));
}

/*
 * Template edits become visible to the worker only at commit, so the
 * change is announced from a commit callback, not from the trigger itself.
 */
static bool smx_templates_dirty = false;
static bool smx_xact_callback_registered = false;

static void
smx_xact_callback(XactEvent event, void *arg)
{
	if (!smx_templates_dirty)
		return;
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:

			/*
			 * An abort announces too: a sim_reload() or sim_tick() inside
			 * the transaction may have published the uncommitted rows.
			 */
			smx_templates_dirty = false;
			pg_atomic_fetch_add_u32(&smx_shared->templates_version, 1);
			smx_wake_writer();
			break;
		default:
			break;
	}
}

/*
 * Statement trigger on server_templates. Never fails an edit: without
 * preloading it does nothing.
 */
Datum
sim_templates_changed(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("sim_templates_changed() must be called as a trigger")));
	if (smx_shared != NULL && smx_in_fleet_database())
	{
		if (!smx_xact_callback_registered)
		{
			RegisterXactCallback(smx_xact_callback, NULL);
			smx_xact_callback_registered = true;
		}
		smx_templates_dirty = true;
	}
	return PointerGetDatum(NULL);
}

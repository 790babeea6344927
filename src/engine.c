/*
 * engine.c — advancing and reloading the fleet, for the worker and for
 * sim_tick() / sim_reload() alike.
 *
 * Whoever steps the simulation takes step_lock, brings its process-local
 * copy of params + state up to date (only when another process published
 * since: state_version tells), runs the model on that copy, and publishes
 * the result with one memcpy under the exclusive lock. The worker's copy
 * is normally current, so a worker tick costs the model step plus one copy.
 * See shmem.c for the locking rules.
 */
#include "postgres.h"

#include <math.h>

#include "access/detoast.h"
#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "access/table.h"
#include "catalog/indexing.h"
#include "catalog/pg_extension.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "portability/instr_time.h"
#include "storage/latch.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "sim_metrics.h"

/* Upper bound of server-ticks computed per lock hold, to stay cancellable. */
#define SMX_WORK_PER_CHUNK	2000000
/* How long a backend's reload waits for the writer's first load. */
#define SMX_FIRST_LOAD_WAIT_MS	15000

static MemoryContext smx_engine_cxt = NULL;
static smx_params *smx_priv_params = NULL;
static smx_state *smx_priv_state = NULL;
static uint64 smx_priv_version = 0;
static bool smx_priv_valid = false;

/* Allocate the process-local copy (capacity entries), once. */
static void
smx_priv_alloc(void)
{
	MemoryContext cxt;
	smx_params *params;
	smx_state  *state;

	if (smx_engine_cxt != NULL)
		return;
	/* allocate everything first; publish the pointers only when all worked */
	cxt = AllocSetContextCreate(TopMemoryContext, "sim_metrics engine",
								ALLOCSET_DEFAULT_SIZES);
	params = MemoryContextAllocExtended(cxt, (Size) smx_shared->fleet.capacity * sizeof(smx_params),
										MCXT_ALLOC_HUGE | MCXT_ALLOC_NO_OOM);
	state = MemoryContextAllocExtended(cxt, (Size) smx_shared->fleet.capacity * sizeof(smx_state),
									   MCXT_ALLOC_HUGE | MCXT_ALLOC_NO_OOM);
	if (params == NULL || state == NULL)
	{
		MemoryContextDelete(cxt);
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory for the sim_metrics engine's copy of %d servers",
						smx_shared->fleet.capacity),
				 errhint("Lower sim_metrics.max_servers, or free memory.")));
	}
	smx_priv_params = params;
	smx_priv_state = state;
	smx_engine_cxt = cxt;
}

/*
 * Bring the process-local copy up to date. Caller must hold step_lock, which
 * makes it the only writer, so the arrays are read without publish_lock.
 */
static void
smx_priv_sync(void)
{
	int			n = smx_shared->fleet.nservers;

	if (smx_priv_valid && smx_priv_version == smx_shared->fleet.state_version)
		return;
	memcpy(smx_priv_params, smx_shared_params(), n * sizeof(smx_params));
	memcpy(smx_priv_state, smx_shared_state(), n * sizeof(smx_state));
	smx_priv_version = smx_shared->fleet.state_version;
	smx_priv_valid = true;
}

/*
 * Mark the detectors as being written (busy) or consistent with the
 * published fleet.tick again; see SmxFleet.detect_busy. The barrier keeps
 * the mark ahead of the detectors' writes, and the published tick ahead of
 * its clearing. Caller must hold step_lock.
 */
static inline void
smx_detect_busy(bool busy)
{
	pg_write_barrier();
	smx_shared->fleet.detect_busy = busy;
	pg_write_barrier();
}

/*
 * Simulation settings from the GUCs. The clock origin is start_time when
 * set; otherwise the origin already fixed in shared memory, or now.
 * Caller must hold step_lock.
 */
void
smx_current_config(smx_config *cfg)
{
	double		epoch;

	cfg->seed = (uint64_t) smx_seed;
	cfg->step_seconds = smx_tick_interval_ms / 1000.0 * smx_time_scale;
	cfg->utc_offset = smx_utc_offset_min * 60.0;
	if (smx_start_time && smx_start_time[0] != '\0' &&
		smx_parse_iso8601(smx_start_time, &epoch))
		cfg->start_epoch = epoch;
	else if (smx_shared->fleet.clock_set)
		cfg->start_epoch = smx_shared->fleet.start_epoch;
	else
		cfg->start_epoch = floor((double) (GetCurrentTimestamp() / USECS_PER_SEC) +
								 (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY);
}

/* A new server list to publish with a state (see smx_publish). */
typedef struct SmxFleetUpdate
{
	const SmxServerDesc *desc;
	const int32 *calls;			/* SMX_CALLS a server */
	const SmxScenarioDef *defs; /* the scenario catalog */
	int			ndefs;
	const int32 *id_ref;		/* id pool entry of each server */
	int			n;
	bool		restored;		/* history was consulted for this list */
	int			skipped;		/* enabled templates beyond capacity */
	uint32		version;		/* templates_version the list was read at */
	Oid			extension;
} SmxFleetUpdate;

/*
 * Publish the process-local copy: the state of the current fleet, or with
 * fleet != NULL a new server list (descriptions, params and state in one
 * critical section). Caller must hold step_lock; takes publish_lock.
 */
static void
smx_publish(const smx_config *cfg, uint64 tick, double tick_ms, bool ticked,
			const SmxFleetUpdate *fleet, uint64 ring_head, int64 dropped)
{
	int			n;

	LWLockAcquire(smx_shared->publish_lock, LW_EXCLUSIVE);
	smx_ring_publish_locked(ring_head, dropped);
	if (fleet != NULL)
	{
		n = fleet->n;
		memcpy(smx_shared_desc(), fleet->desc, n * sizeof(SmxServerDesc));
		memcpy(smx_shared_params(), smx_priv_params, n * sizeof(smx_params));
		memcpy(smx_shared_id_ref(), fleet->id_ref, n * sizeof(int32));
		memcpy(smx_shared_calls(), fleet->calls, n * SMX_CALLS * sizeof(int32));
		memcpy(smx_shared->scen.defs, fleet->defs, fleet->ndefs * sizeof(SmxScenarioDef));
		smx_shared->scen.ndefs = fleet->ndefs;
		if (fleet->restored)
			smx_shared->fleet.history_restored = true;
		smx_shared->fleet.nservers = n;
		smx_shared->fleet.version++;
		smx_shared->fleet.skipped_servers = fleet->skipped;
		smx_shared->fleet.templates_version = fleet->version;
		smx_shared->fleet.extension = fleet->extension;
	}
	else
		n = smx_shared->fleet.nservers;
	memcpy(smx_shared_state(), smx_priv_state, n * sizeof(smx_state));
	smx_shared->fleet.tick = tick;
	smx_shared->fleet.start_epoch = cfg->start_epoch;
	smx_shared->fleet.clock_set = true;
	smx_shared->fleet.step_seconds = cfg->step_seconds;
	if (ticked)
	{
		smx_shared->fleet.last_tick_at = GetCurrentTimestamp();
		smx_shared->fleet.tick_ms = tick_ms;
	}
	smx_shared->fleet.state_version++;
	smx_priv_version = smx_shared->fleet.state_version;
	LWLockRelease(smx_shared->publish_lock);
}

/*
 * Refuse ticks whose simulated time leaves the timestamptz range: a
 * backend gets an ERROR; the ticker pauses the simulation and records why
 * (sim_status().last_error), since retrying would fail the same way.
 * Caller must hold step_lock; it is released before raising.
 */
static bool
smx_check_time_range(const smx_config *cfg, uint64 last_tick, bool from_worker)
{
	TimestampTz ts;
	char		msg[SMX_ERROR_LEN];

	if (smx_epoch_to_timestamptz(smx_sim_epoch(cfg, last_tick), &ts))
		return true;
	LWLockRelease(smx_shared->step_lock);
	snprintf(msg, sizeof(msg),
			 "simulated time of tick " UINT64_FORMAT " is past the end of the timestamp range",
			 last_tick);
	if (!from_worker)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("%s", msg),
				 errhint("Lower sim_metrics.time_scale or tick_interval, or set an earlier sim_metrics.start_time.")));
	pg_atomic_write_u32(&smx_shared->paused, 1);
	smx_record_error(msg);
	ereport(LOG,
			(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
			 errmsg("sim_metrics: %s; the simulation is paused", msg),
			 errhint("Lower sim_metrics.time_scale or tick_interval, or set an earlier sim_metrics.start_time, then call sim_start().")));
	return false;
}

/*
 * Advance the simulation n ticks and return the tick reached. Works in
 * chunks so that a large n can be cancelled between chunks and readers see
 * progress. The ticker waits for step_lock like everyone else: its holders
 * keep it for one bounded chunk (SMX_WORK_PER_CHUNK server-ticks) or a
 * reload's merge, and a tick that waited is caught up, never skipped.
 */
uint64
smx_engine_tick(int64 n, bool from_worker)
{
	uint64		tick = 0;
	/* one deadline for the whole call: waiting for room is bounded */
	TimestampTz wait_deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), 30000);

	smx_require_loaded();
	smx_priv_alloc();

	while (n > 0)
	{
		int64		chunk;
		smx_config	cfg;
		smx_tick_ctx ctx;
		instr_time	start,
					elapsed;
		int			nservers;
		uint64		head;
		uint64		tail;
		uint64		room;
		int64		dropped = 0;
		int32	   *id_ref = smx_shared_id_ref();
		int64		run_ids[SMX_MAX_RUNS + 1];

		/* a backend stepping many ticks waits for the worker's flushes */
		if (!from_worker && smx_shared->fleet.nservers > 0 &&
			smx_ring_free() < (uint64) smx_shared->fleet.nservers)
			smx_wait_ring_room((uint64) smx_shared->fleet.nservers *
							   Min(n, (int64) smx_history_buffer / 2 + 1),
							   wait_deadline);

		LWLockAcquire(smx_shared->step_lock, LW_EXCLUSIVE);
		if (smx_backfill_holds_fleet())
		{
			/* the ticker waits (sim_status says so); a backend is told */
			LWLockRelease(smx_shared->step_lock);
			if (!from_worker)
				smx_backfill_refuse("sim_tick()");
			return smx_shared->fleet.tick;
		}
		smx_priv_sync();
		nservers = smx_shared->fleet.nservers;
		smx_ring_bounds(&tail, &head);	/* head: only we write it */
		room = smx_shared->ring.capacity - (head - tail);

		chunk = Min(n, Max(1, SMX_WORK_PER_CHUNK / Max(nservers, 1)));
		if (nservers > 0)
			chunk = Min(chunk, Max(1, (int64) (room / nservers)));
		smx_current_config(&cfg);
		tick = smx_shared->fleet.tick;
		if (!smx_check_time_range(&cfg, tick + chunk, from_worker))
			return tick;

		smx_detect_busy(true);
		INSTR_TIME_SET_CURRENT(start);
		for (int64 k = 0; k < chunk; k++)
		{
			tick++;
			smx_prepare_tick(&ctx, &cfg, tick);
			ctx.overlay = smx_runs_tick(smx_runs_shared(), &ctx, smx_priv_state, smx_priv_params,
										nservers, run_ids);
			smx_step(&ctx, smx_priv_params, smx_priv_state, nservers);
			smx_detect_fleet(smx_priv_state, smx_shared_detect(), nservers);
			smx_ring_append(smx_priv_state, id_ref, run_ids, nservers, tick,
							   ctx.sim_epoch, &head, tail, &dropped);
		}
		INSTR_TIME_SET_CURRENT(elapsed);
		INSTR_TIME_SUBTRACT(elapsed, start);

		smx_publish(&cfg, tick, INSTR_TIME_GET_MILLISEC(elapsed) / chunk, true, NULL,
					head, dropped);
		smx_detect_busy(false);
		LWLockRelease(smx_shared->step_lock);

		if (dropped > 0)
			smx_ring_report_dropped(dropped, from_worker);
		/* three quarters full: the writer flushes early */
		if ((head - tail) * 4 >= smx_shared->ring.capacity * 3)
			smx_wake_writer();
		n -= chunk;
		CHECK_FOR_INTERRUPTS();
	}
	return tick;
}

/* The enabled templates, read and checked, ready to become the fleet. */
typedef struct SmxTemplates
{
	SmxServerDesc *desc;
	smx_params *params;
	int			n;
	int64		total;			/* enabled templates, also beyond capacity */
	uint32		version;		/* templates_version they were read at */
	int32	   *calls;			/* SMX_CALLS a server: whom it calls, -1 none */
	SmxScenarioDef *defs;		/* the scenario catalog */
	int			ndefs;
} SmxTemplates;

/* Whether the extension's server_templates has a column (1.3 added disk_growth). */
static bool
smx_templates_have(const char *column)
{
	Oid			ext;
	Oid			relid = get_relname_relid("server_templates", smx_extension_schema(&ext));

	return OidIsValid(relid) && get_attnum(relid, column) != InvalidAttrNumber;
}

/*
 * The depends_on arrays the reload takes, at most: SMX_MAX_DEPENDS ids
 * (SMX_CALLS of them carry cascades, every one links traffic) and the
 * bytes such an array of ids may take. The table does not bound the
 * array; a bigger one is refused whole (WARNING, the server loads without
 * its edges) before it is detoasted or taken apart.
 */
#define SMX_MAX_DEPENDS			256
#define SMX_MAX_DEPENDS_BYTES	(SMX_MAX_DEPENDS * (SMX_ID_LEN + 8) + 1024)

/* Warn that server id's depends_on is refused. */
static void
smx_depends_refused(const char *id, int k, Size bytes)
{
	ereport(WARNING,
			(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
			 errmsg("sim_metrics: ignoring the depends_on of server \"%s\": more than %d ids",
					id, SMX_MAX_DEPENDS),
			 errdetail_internal("%s", k >= 0 ? psprintf("It names %d ids.", k) :
								psprintf("It takes %zu bytes, more than %d ids can.",
										 (size_t) bytes, SMX_MAX_DEPENDS)),
			 errhint("Keep depends_on to the servers it really calls, at most %d.",
					 SMX_MAX_DEPENDS)));
}

/*
 * Servers linked by depends_on (within the fleet) share their traffic: the
 * model gives them one traffic key, the key of the group's first server.
 * deps[i]: the depends_on array of server i (0 when NULL). Also fills
 * t->calls. Runs connected to SPI (smx_read_templates): what it returns
 * must be allocated with SPI_palloc, as t->desc and t->params are; a
 * plain palloc lands in SPI's procedure context, which SPI_finish frees.
 */
static void
smx_set_traffic_groups(SmxTemplates *t, const Datum *deps)
{
	int		   *edges = NULL;
	int			nedges = 0,
				cap = 0;
	int		   *root = palloc(sizeof(int) * Max(t->n, 1));
	int		   *size;

	for (int i = 0; i < t->n; i++)
	{
		Datum	   *elems;
		bool	   *nulls;
		int			k;

		if (deps[i] == (Datum) 0)
			continue;
		/* its size first (no detoasting), its ids once taken apart */
		if (toast_raw_datum_size(deps[i]) > SMX_MAX_DEPENDS_BYTES)
		{
			smx_depends_refused(t->desc[i].id, -1, toast_raw_datum_size(deps[i]));
			continue;
		}
		deconstruct_array(DatumGetArrayTypeP(deps[i]), TEXTOID, -1, false, TYPALIGN_INT,
						  &elems, &nulls, &k);
		if (k > SMX_MAX_DEPENDS)
		{
			smx_depends_refused(t->desc[i].id, k, toast_raw_datum_size(deps[i]));
			continue;
		}
		for (int e = 0; e < k; e++)
		{
			int			j;

			if (nulls[e])
				continue;
			j = smx_desc_find(t->desc, t->n, TextDatumGetCString(elems[e]));
			if (j < 0)
				continue;
			if (nedges == cap)
			{
				cap = Max(64, cap * 2);
				edges = edges ? repalloc(edges, sizeof(int) * 2 * cap) : palloc(sizeof(int) * 2 * cap);
			}
			edges[2 * nedges] = i;
			edges[2 * nedges + 1] = j;
			nedges++;
		}
	}
	/* outlives SPI_finish: the reload publishes it after */
	t->calls = SPI_palloc(sizeof(int32) * SMX_CALLS * Max(t->n, 1));
	memset(t->calls, 0xff, sizeof(int32) * SMX_CALLS * Max(t->n, 1));
	for (int e = 0; e < nedges; e++)
	{
		int32	   *c = &t->calls[edges[2 * e] * SMX_CALLS];

		/* cascades follow the first SMX_CALLS edges of a server */
		for (int k = 0; k < SMX_CALLS; k++)
			if (c[k] < 0)
			{
				c[k] = edges[2 * e + 1];
				break;
			}
	}
	smx_traffic_groups(t->n, edges, nedges, root);
	/* a group of one shares nothing: its root is itself and nobody names it */
	size = palloc0(sizeof(int) * Max(t->n, 1));
	for (int i = 0; i < t->n; i++)
		size[root[i]]++;
	for (int i = 0; i < t->n; i++)
		if (size[root[i]] > 1)
			smx_params_set_traffic(&t->params[i], t->params[root[i]].key);
}

/*
 * Read the enabled rows of server_templates (by id, at most capacity) into
 * *t. Must run inside a transaction with a snapshot.
 */
static void
smx_read_templates(const char *nspname, SmxTemplates *t)
{
	int			cap = smx_shared->fleet.capacity;
	StringInfoData sql;
	int			ret;
	int			nrows;
	Datum	   *deps;
	SmxSavedUser saved;

	t->version = pg_atomic_read_u32(&smx_shared->templates_version);
	initStringInfo(&sql);
	appendStringInfo(&sql,
					 "SELECT id, name, hostname, role, location, environment,"
					 " baseline_cpu::float8, baseline_memory::float8,"
					 " baseline_disk::float8, baseline_network::float8,"
					 " network_capacity_bps::float8,"
					 " pg_catalog.count(*) OVER (), depends_on, %s"
					 " FROM %s.server_templates WHERE enabled"
					 " ORDER BY id COLLATE \"C\" LIMIT %d",
					 smx_templates_have("disk_growth") ? "disk_growth::float8" : "NULL::float8",
					 quote_identifier(nspname), cap);

	smx_become_writer(&saved);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	/*
	 * Not read-only, so that in READ COMMITTED the query takes a snapshot
	 * newer than the version read above. A transaction snapshot (REPEATABLE
	 * READ and up) may predate it: then the list is marked as read at an
	 * older version, so the writer reads it again with a fresh snapshot.
	 */
	ret = SPI_execute(sql.data, false, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "reading server_templates failed: %s", SPI_result_code_string(ret));
	if (IsolationUsesXactSnapshot())
		t->version--;
	nrows = (int) SPI_processed;
	t->desc = SPI_palloc(sizeof(SmxServerDesc) * Max(nrows, 1));
	t->params = SPI_palloc(sizeof(smx_params) * Max(nrows, 1));
	t->n = 0;
	t->total = 0;
	deps = palloc0(sizeof(Datum) * Max(nrows, 1));
	for (int i = 0; i < nrows; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	td = SPI_tuptable->tupdesc;
		char	   *role = SPI_getvalue(tup, td, 4);
		int			r = role ? smx_role_from_name(role) : -1;
		SmxServerDesc *d = &t->desc[t->n];
		bool		isnull;

		t->total = DatumGetInt64(SPI_getbinval(tup, td, 12, &isnull));
		if (r < 0)
		{
			/* the CHECK constraint prevents this; never let it stop the loop */
			ereport(WARNING,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("sim_metrics: skipping server \"%s\" with unknown role \"%s\"",
							SPI_getvalue(tup, td, 1), role ? role : "")));
			continue;
		}
		smx_copy_text(tup, td, 1, d->id, SMX_ID_LEN);
		smx_copy_text(tup, td, 2, d->name, SMX_NAME_LEN);
		smx_copy_text(tup, td, 3, d->hostname, SMX_HOSTNAME_LEN);
		smx_copy_text(tup, td, 5, d->location, SMX_LOCATION_LEN);
		smx_copy_text(tup, td, 6, d->environment, SMX_ENV_LEN);
		smx_params_init(&t->params[t->n], d->id, d->location, (smx_role) r,
						smx_get_double(tup, td, 7, -1),
						smx_get_double(tup, td, 8, -1),
						smx_get_double(tup, td, 9, -1),
						smx_get_double(tup, td, 10, -1),
						smx_get_double(tup, td, 11, 0));
		smx_params_set_disk_growth(&t->params[t->n], smx_get_double(tup, td, 14, -1));
		deps[t->n] = SPI_getbinval(tup, td, 13, &isnull);
		if (isnull)
			deps[t->n] = (Datum) 0;
		t->n++;
	}
	smx_set_traffic_groups(t, deps);
	SPI_finish();
	smx_restore_user(&saved);
}

/*
 * Merge the templates with the current fleet and publish the result:
 * servers that stay keep their state, restored ones continue from history,
 * new ones start at their target. Caller must hold step_lock. Returns false
 * (nothing published) when another process already published a newer read.
 */
static bool
smx_merge_and_publish(SmxTemplates *t, const SmxRestored *rs, Oid ext, int skipped)
{
	SmxServerDesc *old_desc = smx_shared_desc();
	int			old_n = smx_shared->fleet.nservers;
	int			n = t->n;
	int		   *old_index = palloc(sizeof(int) * Max(n, 1));
	int32	   *id_ref = palloc(sizeof(int32) * Max(n, 1));
	smx_state  *state = palloc(sizeof(smx_state) * Max(n, 1));
	smx_server_detector *detect;
	smx_config	cfg;
	smx_tick_ctx ctx;
	uint64		new_tick;
	SmxFleetUpdate fleet;

	smx_priv_sync();
	if (OidIsValid(smx_shared->fleet.extension) &&
		smx_shared->fleet.extension == ext &&
		(int32) (t->version - smx_shared->fleet.templates_version) < 0)
		return false;
	smx_desc_match(old_desc, old_n, t->desc, n, old_index);
	if (!smx_id_pool_assign(t->desc, old_index, n, old_n, id_ref))
	{
		LWLockRelease(smx_shared->step_lock);
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_RESOURCES),
				 errmsg("sim_metrics: cannot load the new servers until buffered history of removed servers is flushed"),
				 errdetail("The id pool holds %d names, and samples of removed servers still wait in the ring.",
						   smx_shared->ring.id_pool_size),
				 errhint("Call sim_flush(), or wait for the writer's next flush; the reload is retried.")));
	}
	smx_current_config(&cfg);
	new_tick = smx_shared->fleet.tick;
	if (rs->done && rs->nfound > 0 && rs->max_tick > new_tick)
	{
		new_tick = rs->max_tick;
		/* without a fixed start_time, keep the restored clock */
		if (smx_start_time == NULL || smx_start_time[0] == '\0')
			cfg.start_epoch = rs->max_tick_epoch - (double) rs->max_tick * cfg.step_seconds;
	}
	smx_prepare_tick(&ctx, &cfg, new_tick);
	/*
	 * each kept server keeps its detector; a restored one takes what the
	 * last clean shutdown saved for it (startup.c), zeroed when nothing
	 * matched; new ones start afresh
	 */
	detect = palloc0(sizeof(smx_server_detector) * Max(n, 1));
	for (int i = 0; i < n; i++)
		if (old_index[i] >= 0)
			detect[i] = smx_shared_detect()[old_index[i]];
		else if (rs->done && rs->found[i])
			detect[i] = rs->detect[i];
	for (int i = 0; i < n; i++)
	{
		if (old_index[i] >= 0)
			state[i] = smx_priv_state[old_index[i]];
		else if (rs->done && rs->found[i])
			state[i] = rs->state[i];
		else
			smx_state_init(&ctx, &t->params[i], &state[i]);
	}

	if (rs->done)
		smx_runs_resume(rs->runs, rs->nruns, rs->next_run_id, t->desc, state, n,
						(int64) new_tick);
	fleet.desc = t->desc;
	fleet.calls = t->calls;
	fleet.defs = t->defs;
	fleet.ndefs = t->ndefs;
	fleet.id_ref = id_ref;
	fleet.restored = rs->done;
	fleet.n = n;
	fleet.skipped = skipped;
	fleet.version = t->version;
	fleet.extension = ext;
	memcpy(smx_priv_params, t->params, n * sizeof(smx_params));
	memcpy(smx_priv_state, state, n * sizeof(smx_state));
	/* in the new order only now, with the states it belongs to */
	smx_detect_busy(true);
	memcpy(smx_shared_detect(), detect, sizeof(smx_server_detector) * n);
	smx_publish(&cfg, new_tick, 0, false, &fleet, smx_shared->ring.head, 0);
	smx_detect_busy(false);
	smx_priv_valid = true;
	return true;
}

/*
 * Whether this transaction created the extension's history table (CREATE
 * EXTENSION not committed yet): then no other session can see the table,
 * nothing can be read back for it (startup.c), and a rollback takes
 * the extension, and with it the fleet, away.
 */
static bool
smx_history_created_here(Oid nsp)
{
	Oid			relid = get_relname_relid("server_metrics_history", nsp);
	Relation	rel;
	bool		here;

	if (!OidIsValid(relid))
		return false;
	rel = relation_open(relid, AccessShareLock);
	here = rel->rd_createSubid != InvalidSubTransactionId;
	relation_close(rel, AccessShareLock);
	return here;
}

/*
 * A backend's reload found the first load since the restart not done yet:
 * that load inserts the samples it recovers (startup.c) and sets
 * history_restored, so it is the writer's alone, in a transaction of its
 * own. A backend's transaction could roll the recovered rows back after the
 * flag was set (losing them), and two loaders would both insert them. Wake
 * the writer and wait (bounded, cancellable) until it has done it; ERROR
 * when it cannot.
 */
static void
smx_wait_first_load(Oid ext)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													   SMX_FIRST_LOAD_WAIT_MS);

	for (;;)
	{
		bool		done;
		bool		none;

		LWLockAcquire(smx_shared->publish_lock, LW_SHARED);
		done = smx_shared->fleet.history_restored;
		/* the writer loaded the committed templates and found no server */
		none = smx_shared->fleet.extension == ext && smx_shared->fleet.nservers == 0 &&
			smx_shared->fleet.templates_version ==
			pg_atomic_read_u32(&smx_shared->templates_version);
		LWLockRelease(smx_shared->publish_lock);
		if (done)
			return;
		if (none || GetCurrentTimestamp() >= deadline)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("sim_metrics: the writer has not made the first load of the fleet yet"),
					 errdetail(none ?
							   "The first load after a restart recovers unflushed samples and continues from history; only the writer makes it, and it sees no enabled server committed." :
							   "The first load after a restart recovers unflushed samples and continues from history; only the writer makes it."),
					 errhint(none ?
							 "Commit the template changes first: the writer then loads them." :
							 "See sim_status().worker_state and last_error, then try again.")));
		smx_wake_writer();
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 50,
						 SMX_WAIT_EVENT_MAIN);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * Re-read server_templates (enabled rows, by id) and make them the fleet.
 * The first load since shared memory was set up (server start or crash
 * restart) first reads back what the restart took (startup.c): every
 * server continues from history, the tick numbering after the newest tick
 * stored; only the writer makes it (a backend waits for it, see
 * smx_wait_first_load). Must run inside a
 * transaction with a snapshot; connects to SPI itself. Returns the number
 * of servers loaded.
 */
int
smx_engine_reload(bool from_worker)
{
	Oid			ext;
	Oid			nsp;
	char	   *nspname;
	SmxTemplates t;
	SmxRestored rs;
	int			skipped;
	int			n;

	smx_require_loaded();
	if (smx_backfill_holds_fleet())
	{
		/* the writer tries again once the backfill ended */
		if (!from_worker)
			smx_backfill_refuse("sim_reload()");
		return smx_shared->fleet.nservers;
	}
	smx_priv_alloc();
	nspname = smx_extension_schema_name();
	nsp = smx_extension_schema(&ext);
	smx_read_templates(nspname, &t);
	n = t.n;
	t.defs = palloc(sizeof(SmxScenarioDef) * SMX_MAX_SCENARIOS);
	t.ndefs = smx_scenarios_read(nspname, t.defs, SMX_MAX_SCENARIOS);

	memset(&rs, 0, sizeof(rs));
	rs.done = !smx_shared->fleet.history_restored && n > 0;
	if (rs.done && !from_worker && !smx_history_created_here(nsp))
	{
		/* the writer's; it is done once this returns */
		smx_wait_first_load(ext);
		rs.done = false;
	}
	if (rs.done)
		smx_startup_read(nsp, nspname, t.desc, t.params, n, &rs);

	skipped = t.total > smx_shared->fleet.capacity ? (int) (t.total - smx_shared->fleet.capacity) : 0;
	if (skipped > 0)
		ereport(WARNING,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("sim_metrics: %lld enabled templates exceed sim_metrics.max_servers = %d",
						(long long) t.total, smx_shared->fleet.capacity),
				 errdetail("Only the first %d servers by id are simulated, \"%s\" through \"%s\"; %d are left out.",
						   n, n > 0 ? t.desc[0].id : "", n > 0 ? t.desc[n - 1].id : "", skipped),
				 errhint("Raise sim_metrics.max_servers and restart the server, or disable templates with enabled = false.")));

	LWLockAcquire(smx_shared->step_lock, LW_EXCLUSIVE);
	if (!smx_merge_and_publish(&t, &rs, ext, skipped))
		n = smx_shared->fleet.nservers;	/* a newer read is already published */
	LWLockRelease(smx_shared->step_lock);
	/* a first fleet starts the ticker's schedule now, not at its next poll */
	smx_wake_ticker();

	if (rs.done && rs.nfound > 0)
		ereport(LOG,
				(errmsg("sim_metrics: continued %d of %d servers from server_metrics_history at tick " UINT64_FORMAT,
						rs.nfound, n, rs.max_tick),
				 errdetail("%d of them kept the anomaly detector a clean shutdown saved; the others' detectors start over.",
						   rs.nkept)));
	return n;
}

/*
 * Make a backfill's end the fleet's state (backfill.c, once its
 * transaction committed): the clock re-based on the backfill's origin, the
 * tick its last, the servers' state and the runs as it left them, so the
 * next tick continues from it. False (nothing changed) when the server
 * list is no longer the one the backfill stepped.
 */
bool
smx_engine_adopt(const SmxAdopt *a)
{
	bool		same;

	LWLockAcquire(smx_shared->step_lock, LW_EXCLUSIVE);
	same = smx_shared->fleet.version == a->fleet_version &&
		smx_shared->fleet.extension == a->extension &&
		smx_shared->fleet.nservers == a->n;
	if (same)
	{
		LWLockAcquire(smx_shared->publish_lock, LW_EXCLUSIVE);
		smx_detect_busy(true);
		memcpy(smx_shared_state(), a->state, a->n * sizeof(smx_state));
		memcpy(smx_shared_detect(), a->detect, a->n * sizeof(smx_server_detector));
		smx_shared->fleet.tick = a->tick;
		smx_shared->fleet.start_epoch = a->clock.start_epoch;
		smx_shared->fleet.step_seconds = a->clock.step_seconds;
		smx_shared->fleet.clock_set = true;
		smx_shared->fleet.state_version++;
		smx_runs_adopt_locked(a->runs, a->next_run_id, (int64) a->tick);
		smx_detect_busy(false);
		LWLockRelease(smx_shared->publish_lock);
		smx_priv_valid = false;
	}
	LWLockRelease(smx_shared->step_lock);
	return same;
}

/* True when server_templates changed (or the extension was re-created). */
bool
smx_engine_needs_reload(Oid ext)
{
	return smx_shared->fleet.extension != ext ||
		smx_shared->fleet.templates_version !=
		pg_atomic_read_u32(&smx_shared->templates_version);
}

/*
 * Forget the fleet: the extension was dropped, and with it the history
 * table the buffered samples were meant for.
 */
void
smx_engine_clear(void)
{
	LWLockAcquire(smx_shared->step_lock, LW_EXCLUSIVE);
	LWLockAcquire(smx_shared->publish_lock, LW_EXCLUSIVE);
	smx_ring_clear_locked();
	smx_shared->fleet.history_restored = false;
	smx_shared->fleet.nservers = 0;
	smx_shared->fleet.skipped_servers = 0;
	smx_shared->fleet.tick = 0;
	smx_shared->fleet.clock_set = false;
	smx_shared->fleet.extension = InvalidOid;
	/* the runs belonged to the dropped extension's log */
	memset(smx_shared->scen.runs, 0, sizeof(smx_shared->scen.runs));
	smx_shared->scen.ndefs = 0;
	smx_shared->scen.log_tick = 0;
	smx_shared->fleet.state_version++;
	smx_shared->fleet.version++;
	LWLockRelease(smx_shared->publish_lock);
	LWLockRelease(smx_shared->step_lock);
	smx_priv_valid = false;
}

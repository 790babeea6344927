/*
 * scenario.c — incident runs in shared memory, stepped with the fleet.
 *
 * Every tick, before the model step, the step_lock holder (the ticker or a
 * backend in sim_tick()) calls smx_runs_tick(), which
 *  1. starts an automatic incident when the seeded draw of this tick says
 *     so (sim_metrics.incident_rate, at most max_incidents at once);
 *  2. activates the runs whose start tick came: each free target gets the
 *     run in its smx_state.run, and the servers that call a target (its
 *     depends_on edges) get a cascade run of their own, delayed, with the
 *     catalog's probability;
 *  3. ends the runs whose recovery is over;
 *  4. computes each active run's overlay for the model.
 * Every choice is a draw keyed by (seed, tick, servers), apart from the
 * model's draws: the same settings give the same incidents at the same
 * ticks, from the ticker or from sim_tick(), and a server no run touches
 * is what it would have been without any.
 *
 * Every change of a run's state is here: a new run (smx_run_add), a stop
 * down its cascade (smx_run_stop), the runs resumed after a restart
 * (smx_runs_resume), and the tick's activations and ends. Run records
 * change under publish_lock exclusive (shmem.c); the log fields are the
 * writer's (scenario_db.c).
 */
#include "postgres.h"

#include <math.h>

#include "storage/lwlock.h"

#include "sim_metrics.h"

/* Keys of the incidents' draws, apart from each other. */
#define SMX_KEY_AUTO_WHEN	UINT64_C(0xa0701)
#define SMX_KEY_AUTO_WHAT	UINT64_C(0xa0702)
#define SMX_KEY_AUTO_WHERE	UINT64_C(0xa0703)
#define SMX_KEY_AUTO_HOW	UINT64_C(0xa0704)
#define SMX_KEY_AUTO_LONG	UINT64_C(0xa0705)
#define SMX_KEY_CASCADE		UINT64_C(0xca5c)
#define SMX_KEY_DELAY		UINT64_C(0xde1a)

/* A cascade weaker than this is not started. */
#define SMX_MIN_INTENSITY	0.05f

static smx_overlay smx_overlays[SMX_MAX_RUNS + 1];

/*
 * The shared run set: the fleet's runs in shared memory, changed under
 * publish_lock. A backfill steps a private set of its own (lock NULL).
 */
const SmxRunSet *
smx_runs_shared(void)
{
	static SmxRunSet shared;

	shared.scen = &smx_shared->scen;
	shared.desc = smx_shared_desc();
	shared.calls = smx_shared_calls();
	shared.lock = smx_shared->publish_lock;
	return &shared;
}

static inline void
smx_set_lock(const SmxRunSet *set, LWLockMode mode)
{
	if (set->lock != NULL)
		LWLockAcquire(set->lock, mode);
}

static inline void
smx_set_unlock(const SmxRunSet *set)
{
	if (set->lock != NULL)
		LWLockRelease(set->lock);
}

const SmxScenarioDef *
smx_scenario_find(const SmxRunSet *set, const char *name)
{
	for (int i = 0; i < set->scen->ndefs; i++)
		if (strcmp(set->scen->defs[i].name, name) == 0)
			return &set->scen->defs[i];
	return NULL;
}

/*
 * The scenario of each run slot, by smx_state.run (names[0] unused), for
 * a reader that copies the states. Caller holds publish_lock.
 */
void
smx_copy_run_names(char (*names)[SMX_SCENARIO_LEN])
{
	const SmxRunSet *set = smx_runs_shared();

	for (int r = 0; r < SMX_MAX_RUNS; r++)
		memcpy(names[r + 1], set->scen->runs[r].def.name, SMX_SCENARIO_LEN);
}

/*
 * Phase ticks from the duration: each phase gets its share, at least one
 * tick, and the run at least one tick a phase.
 */
void
smx_run_plan(SmxRun *r, int64 start_tick, double duration_s, double step_s)
{
	double		total = step_s > 0 ? duration_s / step_s : SMX_PH_COUNT;
	double		acc = 0;

	if (!(total >= SMX_PH_COUNT))
		total = SMX_PH_COUNT;
	r->ticks[0] = start_tick;
	for (int k = 0; k < SMX_PH_COUNT; k++)
	{
		int64		end;

		acc += r->def.share[k];
		end = start_tick + (int64) llround(Min(acc, 1.0) * total);
		if (k == SMX_PH_COUNT - 1)
			end = start_tick + (int64) llround(total);
		r->ticks[k + 1] = Max(end, r->ticks[k] + 1);
	}
	r->step_seconds = step_s;
	r->requested_s = duration_s;
}

/*
 * The envelope of a run at a tick, and its phase (-1 outside the run). The
 * last tick of a phase reaches the phase's end level.
 */
float
smx_run_level(const SmxRun *r, int64 tick, int *phase)
{
	for (int k = 0; k < SMX_PH_COUNT; k++)
	{
		if (tick >= r->ticks[k] && tick < r->ticks[k + 1])
		{
			double		len = (double) (r->ticks[k + 1] - r->ticks[k]);

			*phase = k;
			return smx_envelope(k, r->def.curve[k], (double) (tick - r->ticks[k] + 1) / len,
								r->from_level);
		}
	}
	*phase = -1;
	return 0.0f;
}

/*
 * A slot for a new run: a free one, else the oldest finished run the
 * writer has logged. -1 when every slot is in use. Caller holds step_lock.
 */
int
smx_run_alloc(const SmxRunSet *set)
{
	int			best = -1;

	smx_set_lock(set, LW_SHARED);
	for (int i = 0; i < SMX_MAX_RUNS; i++)
	{
		SmxRun	   *r = &set->scen->runs[i];

		if (r->state == SMX_RUN_FREE)
		{
			best = i;
			break;
		}
		if (r->state == SMX_RUN_DONE && r->log_closed &&
			(best < 0 || r->id < set->scen->runs[best].id))
			best = i;
	}
	smx_set_unlock(set);
	return best;
}

/*
 * Add a new run (sim_scenario_start, an automatic incident, a cascade) in
 * slot, giving it the next run id; returns the id. Caller holds step_lock.
 */
int64
smx_run_add(const SmxRunSet *set, int slot, SmxRun *r)
{
	smx_set_lock(set, LW_EXCLUSIVE);
	r->id = set->scen->next_run_id++;
	set->scen->runs[slot] = *r;
	smx_set_unlock(set);
	return r->id;
}

/* Servers i calling server j, by their depends_on (SMX_CALLS kept each). */
static inline bool
smx_calls(const int32 *calls, int i, int j)
{
	for (int c = 0; c < SMX_CALLS; c++)
		if (calls[i * SMX_CALLS + c] == j)
			return true;
	return false;
}

/*
 * Plan the cascades of a run activated at tick t: every server that calls
 * one of its servers may feel the catalog's cascade scenario, after a
 * drawn delay, until the run's end.
 */
static void
smx_run_cascade(const SmxRunSet *set, const smx_tick_ctx *ctx, const SmxRun *parent, const int *targets,
				int ntargets, const smx_state *state, const smx_params *params, int n)
{
	const SmxScenarioDef *child = smx_scenario_find(set, parent->def.cascade);
	const SmxServerDesc *desc = set->desc;
	const int32 *calls = set->calls;
	float		intensity = parent->intensity * parent->def.cascade_intensity;
	double		step = parent->step_seconds;

	if (child == NULL || intensity < SMX_MIN_INTENSITY || parent->def.cascade_p <= 0)
		return;
	for (int t = 0; t < ntargets; t++)
	{
		int			j = targets[t];

		for (int i = 0; i < n; i++)
		{
			double		delay_s;
			int64		start;
			SmxRun		r;
			int			slot;

			if (!smx_calls(calls, i, j) || state[i].run != 0 ||
				smx_unit_key(ctx->seed, params[j].key ^ (params[i].key * 31), ctx->tick ^ SMX_KEY_CASCADE) >=
				parent->def.cascade_p)
				continue;
			delay_s = parent->def.cascade_delay_s[0] +
				(parent->def.cascade_delay_s[1] - parent->def.cascade_delay_s[0]) *
				smx_unit_key(ctx->seed, params[i].key, ctx->tick ^ SMX_KEY_DELAY);
			start = (int64) ctx->tick + Max(1, (int64) llround(delay_s / step));
			/* the caller feels it while the cause lasts, a phase a tick at least */
			if (start + SMX_PH_COUNT > parent->ticks[SMX_PH_COUNT])
				continue;
			slot = smx_run_alloc(set);
			if (slot < 0)
				return;
			memset(&r, 0, sizeof(r));
			r.parent_id = parent->id;
			r.state = SMX_RUN_PENDING;
			r.automatic = parent->automatic;
			r.intensity = intensity;
			r.from_level = 1.0f;
			r.def = *child;
			r.ntargets = 1;
			strlcpy(r.targets[0], desc[i].id, SMX_ID_LEN);
			smx_run_plan(&r, start, (double) (parent->ticks[SMX_PH_COUNT] - start) * step, step);
			r.requested_s = 0;
			(void) smx_run_add(set, slot, &r);
		}
	}
}

/* The run's start tick came: act on its free targets, plan its cascades. */
static void
smx_run_activate(const SmxRunSet *set, const smx_tick_ctx *ctx, int slot, smx_state *state,
				 const smx_params *params, int n)
{
	SmxRun	   *r = &set->scen->runs[slot];
	const SmxServerDesc *desc = set->desc;
	int			targets[SMX_RUN_TARGETS];
	int			ntargets = 0;
	uint32		affected = 0;

	for (int i = 0; i < r->ntargets; i++)
	{
		int			j = smx_desc_find(desc, n, r->targets[i]);

		if (j < 0 || state[j].run != 0)
			continue;
		state[j].run = (uint8) (slot + 1);
		affected |= (uint32) 1 << i;
		targets[ntargets++] = j;
	}
	smx_set_lock(set, LW_EXCLUSIVE);
	r->affected = affected;
	r->state = affected != 0 ? SMX_RUN_ACTIVE : SMX_RUN_DONE;
	/* a run that found every server busy leaves nothing to log */
	r->log_closed = affected == 0;
	smx_set_unlock(set);
	if (affected != 0 && r->def.cascade[0] != '\0')
		smx_run_cascade(set, ctx, r, targets, ntargets, state, params, n);
}

/*
 * Count the automatic incidents still running (their cascades aside).
 * -1 when one read back after a restart starts at this tick: this tick's
 * draw made it already.
 */
static int
smx_auto_running(const SmxRunSet *set, int64 tick)
{
	int			k = 0;

	for (int i = 0; i < SMX_MAX_RUNS; i++)
	{
		SmxRun	   *r = &set->scen->runs[i];

		if (!r->automatic || r->parent_id != 0 || r->state == SMX_RUN_FREE)
			continue;
		if (r->resumed_at != 0 && r->ticks[0] == tick)
			return -1;
		if (r->state == SMX_RUN_PENDING || r->state == SMX_RUN_ACTIVE)
			k++;
	}
	return k;
}

/*
 * Automatic incidents: a Bernoulli draw a tick with incident_rate per
 * simulated day, then the scenario (by auto_weight), one free server of a
 * role it suits, an intensity in [0.5, 1) and a duration of 10 to 40
 * simulated minutes, each from its own draw.
 */
static void
smx_auto_incident(const SmxRunSet *set, const smx_tick_ctx *ctx, const smx_state *state,
				  const smx_params *params, int n)
{
	double		p = smx_incident_rate * ctx->dt / 86400.0;
	const SmxScenarioDef *def = NULL;
	double		total = 0,
				pick;
	int			candidates = 0,
				chosen,
				slot,
				running;
	SmxRun		r;

	if (n == 0 || ctx->dt <= 0 ||
		smx_unit_key(ctx->seed, SMX_KEY_AUTO_WHEN, ctx->tick) >= p)
		return;
	running = smx_auto_running(set, (int64) ctx->tick);
	if (running < 0 || running >= smx_max_incidents)
		return;
	for (int i = 0; i < set->scen->ndefs; i++)
		total += set->scen->defs[i].auto_weight;
	if (total <= 0)
		return;
	pick = smx_unit_key(ctx->seed, SMX_KEY_AUTO_WHAT, ctx->tick) * total;
	for (int i = 0; i < set->scen->ndefs && def == NULL; i++)
	{
		pick -= set->scen->defs[i].auto_weight;
		if (pick < 0 && set->scen->defs[i].auto_weight > 0)
			def = &set->scen->defs[i];
	}
	if (def == NULL)
		return;
	for (int i = 0; i < n; i++)
		if (state[i].run == 0 && (def->roles == 0 || (def->roles & (1u << params[i].role))))
			candidates++;
	if (candidates == 0 || (slot = smx_run_alloc(set)) < 0)
		return;
	chosen = (int) (smx_unit_key(ctx->seed, SMX_KEY_AUTO_WHERE, ctx->tick) * candidates);
	memset(&r, 0, sizeof(r));
	for (int i = 0; i < n; i++)
		if (state[i].run == 0 && (def->roles == 0 || (def->roles & (1u << params[i].role))) &&
			chosen-- == 0)
		{
			strlcpy(r.targets[0], set->desc[i].id, SMX_ID_LEN);
			break;
		}
	r.ntargets = 1;
	r.state = SMX_RUN_PENDING;
	r.automatic = true;
	r.intensity = (float) (0.5 + 0.5 * smx_unit_key(ctx->seed, SMX_KEY_AUTO_HOW, ctx->tick));
	r.from_level = 1.0f;
	r.def = *def;
	smx_run_plan(&r, (int64) ctx->tick,
				 600.0 + 1800.0 * smx_unit_key(ctx->seed, SMX_KEY_AUTO_LONG, ctx->tick), ctx->dt);
	(void) smx_run_add(set, slot, &r);
}

/*
 * End a run through its recovery: the phase it is in ends now, the phases
 * before recovery are skipped, and the recovery starts from where the
 * envelope is. Caller holds step_lock.
 */
static void
smx_run_stop_one(const SmxRunSet *set, SmxRun *r, int64 now_tick)
{
	int			phase;
	float		level = smx_run_level(r, now_tick, &phase);
	int64		rec = r->ticks[SMX_PH_COUNT] - r->ticks[SMX_PH_RECOVERY];

	smx_set_lock(set, LW_EXCLUSIVE);
	if (r->state == SMX_RUN_PENDING)
	{
		r->state = SMX_RUN_DONE;
		r->log_closed = true;	/* never began: nothing to log */
	}
	else if (phase < SMX_PH_RECOVERY)
	{
		/* phase -1: read back after a restart, not begun again yet */
		r->from_level = phase < 0 ? 0.0f : level;
		for (int k = phase + 1; k <= SMX_PH_RECOVERY; k++)
			r->ticks[k] = now_tick + 1;
		r->ticks[SMX_PH_COUNT] = now_tick + 1 + rec;
		r->stopped = true;
		r->stop_logged = false;
	}
	smx_set_unlock(set);
}

static bool
smx_id_listed(const int64 *ids, int n, int64 id)
{
	for (int k = 0; k < n; k++)
		if (ids[k] == id)
			return true;
	return false;
}

/*
 * Stop the run in slot at tick now_tick (pending: it never begins; else it ends
 * through its recovery), and with it what it caused, down the whole
 * cascade. Caller holds step_lock; the run is pending or active.
 */
void
smx_run_stop(const SmxRunSet *set, int slot, int64 now_tick)
{
	int64		stopped[SMX_MAX_RUNS];
	int			nstopped = 1;
	bool		more = true;

	stopped[0] = set->scen->runs[slot].id;
	smx_run_stop_one(set, &set->scen->runs[slot], now_tick);
	/* what it caused ends with it, down the whole cascade */
	while (more)
	{
		more = false;
		for (int i = 0; i < SMX_MAX_RUNS; i++)
		{
			SmxRun	   *c = &set->scen->runs[i];

			if ((c->state == SMX_RUN_PENDING || c->state == SMX_RUN_ACTIVE) &&
				!c->stopped && nstopped < SMX_MAX_RUNS &&
				smx_id_listed(stopped, nstopped, c->parent_id) &&
				!smx_id_listed(stopped, nstopped, c->id))
			{
				smx_run_stop_one(set, c, now_tick);
				stopped[nstopped++] = c->id;
				more = true;
			}
		}
	}
}

/*
 * Resume the runs read back from the log after a restart (startup.c): put
 * them into free slots with their servers (in state, the new fleet of n
 * servers), at the first fleet load; they keep their ids, and the next run
 * id moves past them and next_id. A run whose end is at or before the tick
 * the fleet continues from is over: the writer closes it as interrupted.
 * Caller holds step_lock.
 */
void
smx_runs_resume(SmxRun *runs, int nruns, int64 next_id, const SmxServerDesc *desc,
				smx_state *state, int n, int64 tick)
{
	const SmxRunSet *set = smx_runs_shared();

	int			slot = 0;

	smx_set_lock(set, LW_EXCLUSIVE);
	if (next_id > set->scen->next_run_id)
		set->scen->next_run_id = next_id;
	for (int i = 0; i < nruns; i++)
	{
		SmxRun	   *r = &runs[i];

		while (slot < SMX_MAX_RUNS && set->scen->runs[slot].state != SMX_RUN_FREE)
			slot++;
		if (slot == SMX_MAX_RUNS)
			break;
		r->affected = 0;
		r->resumed_at = tick + 1;
		if (r->ticks[SMX_PH_COUNT] <= tick)
		{
			r->state = SMX_RUN_DONE;
			r->interrupted = true;
		}
		else
		{
			r->state = SMX_RUN_ACTIVE;
			for (int t = 0; t < r->ntargets; t++)
			{
				int			j = smx_desc_find(desc, n, r->targets[t]);

				if (j >= 0 && state[j].run == 0)
				{
					state[j].run = (uint8) (slot + 1);
					r->affected |= (uint32) 1 << t;
				}
			}
			if (r->affected == 0)
			{
				r->state = SMX_RUN_DONE;
				r->interrupted = true;
			}
		}
		if (r->id >= set->scen->next_run_id)
			set->scen->next_run_id = r->id + 1;
		set->scen->runs[slot] = *r;
	}
	smx_set_unlock(set);
}

/*
 * The runs a backfill left (backfill.c, through smx_engine_adopt): they
 * replace the fleet's, logged up to log_tick. Caller holds step_lock and
 * publish_lock exclusive.
 */
void
smx_runs_adopt_locked(const SmxRun *runs, int64 next_id, int64 log_tick)
{
	memcpy(smx_shared->scen.runs, runs, sizeof(smx_shared->scen.runs));
	smx_shared->scen.next_run_id = next_id;
	smx_shared->scen.log_tick = log_tick;
}

/*
 * The runs' work of one tick (see the top of the file). state and params
 * are the caller's copy of the fleet (n servers). Fills run_ids[run] for
 * the ring's labels and returns the overlays for smx_tick_ctx, or NULL
 * when no run acts. Caller holds step_lock.
 */
const smx_overlay *
smx_runs_tick(const SmxRunSet *set, const smx_tick_ctx *ctx, smx_state *state, const smx_params *params,
			  int n, int64 *run_ids)
{
	int64		t = (int64) ctx->tick;
	bool		any = false;

	memset(run_ids, 0, sizeof(int64) * (SMX_MAX_RUNS + 1));
	if (smx_incident_rate > 0 && smx_max_incidents > 0)
		smx_auto_incident(set, ctx, state, params, n);
	for (int slot = 0; slot < SMX_MAX_RUNS; slot++)
	{
		SmxRun	   *r = &set->scen->runs[slot];
		int			phase;
		float		level;

		if (r->state == SMX_RUN_PENDING && r->ticks[0] <= t)
			smx_run_activate(set, ctx, slot, state, params, n);
		if (r->state != SMX_RUN_ACTIVE)
			continue;
		if (t >= r->ticks[SMX_PH_COUNT])
		{
			/* over: its servers show the model's own values from this tick */
			for (int i = 0; i < n; i++)
				if (state[i].run == slot + 1)
					state[i].run = 0;
			smx_set_lock(set, LW_EXCLUSIVE);
			r->state = SMX_RUN_DONE;
			smx_set_unlock(set);
			continue;
		}
		level = smx_run_level(r, t, &phase);
		any = true;
		if (phase < 0)
		{
			/* resumed ahead of the history: it holds its servers, acts later */
			static const smx_effects none = {{0, 0, 0, 0}, 1.0f, false};

			smx_overlay_at(&none, 0.0f, 0.0f, false, &smx_overlays[slot + 1]);
			continue;
		}
		smx_overlay_at(&r->def.effects, level, r->intensity,
					   phase == SMX_PH_ONSET || phase == SMX_PH_PEAK,
					   &smx_overlays[slot + 1]);
		run_ids[slot + 1] = r->id;
	}
	return any ? smx_overlays : NULL;
}

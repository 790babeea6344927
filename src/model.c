/*
 * model.c — the fleet simulation model (pure C, see model.h).
 *
 * cpu and network are Ornstein–Uhlenbeck processes pulled toward a target,
 * plus decaying bursts:
 *
 *     target = baseline x daily profile (the server's phase and swing)
 *              x weekly profile x day factor x slow trend x location load
 *     x'     = target + (x - target) * a + sigma * sqrt(1 - a^2) * z
 *     value  = x' + burst,   burst' = burst * decay + jumps
 *
 * with a = exp(-dt / tau), the exact discretisation, so the spread does not
 * depend on the tick length. z mixes a shock shared by the server's traffic
 * group (servers linked by depends_on) with its own, and the jumps are
 * traffic bursts shared by the group or spikes of the server's own (cron,
 * GC pauses): 30 s changes are heavy-tailed and move together along the
 * dependency graph. Memory is shaped by role: a database's buffer pool and
 * a cache sit flat, an app server's heap climbs and drops at each GC.
 * Disk only grows, at the template's rate, until the daily log rotation
 * frees most of the day's growth.
 *
 * A server's character (phase, swing, spread, GC period, rotation hour) is
 * drawn from its id; day factors, shocks and jumps from (seed, server or
 * group, tick or day). The status uses the role's thresholds with
 * hysteresis.
 */
#include "model.h"

#include <math.h>
#include <string.h>

const char *const smx_role_names[SMX_ROLE_COUNT] = {
	"web", "app", "database", "cache", "storage", "load-balancer"
};

const char *const smx_status_names[4] = {
	"online", "warning", "critical", "offline"
};

const smx_role_defaults smx_role_default_baselines[SMX_ROLE_COUNT] = {
	/* cpu, memory, disk, network, disk growth (points a day) */
	{22, 40, 28, 14, 0.6f},		/* web */
	{30, 55, 40, 10, 0.8f},		/* app */
	{30, 65, 48, 9, 1.2f},		/* database */
	{20, 80, 22, 12, 0.1f},		/* cache */
	{14, 38, 65, 16, 1.5f},		/* storage */
	{16, 40, 14, 16, 0.3f},		/* load-balancer */
};

/* warn / crit by role and metric (cpu, memory, disk, network) */
const smx_threshold smx_thresholds[SMX_ROLE_COUNT][4] = {
	{{80, 90}, {80, 90}, {80, 90}, {70, 85}},	/* web */
	{{80, 90}, {80, 90}, {80, 90}, {70, 85}},	/* app */
	{{80, 90}, {80, 90}, {80, 90}, {70, 85}},	/* database */
	{{80, 90}, {92, 97}, {80, 90}, {70, 85}},	/* cache: memory full by design */
	{{80, 90}, {80, 90}, {80, 90}, {70, 85}},	/* storage */
	{{80, 90}, {80, 90}, {80, 90}, {70, 85}},	/* load-balancer */
};

/* Mean-reversion times in simulated seconds, per metric (disk: none). */
static const double smx_tau[SMX_M_COUNT] = {600.0, 1800.0, 21600.0, 300.0};

/* Stationary spread (percentage points) per role and metric. */
static const float smx_sigma[SMX_ROLE_COUNT][SMX_M_COUNT] = {
	/* cpu, memory, disk, network */
	{3.0f, 1.0f, 0.0f, 1.2f},	/* web */
	{3.5f, 0.6f, 0.0f, 1.0f},	/* app */
	{2.5f, 0.3f, 0.0f, 0.8f},	/* database */
	{1.8f, 0.25f, 0.0f, 1.2f},	/* cache */
	{1.8f, 0.8f, 0.0f, 1.6f},	/* storage */
	{2.2f, 0.8f, 0.0f, 1.5f},	/* load-balancer */
};

/* Share of the cpu/network shock that comes from the traffic group. */
static const float smx_traffic_share[SMX_ROLE_COUNT] = {
	0.75f, 0.65f, 0.55f, 0.55f, 0.45f, 0.85f
};

/* Points of cpu and network a traffic burst of size 1 adds, per role. */
static const float smx_burst_cpu[SMX_ROLE_COUNT] = {7.0f, 8.0f, 6.0f, 4.0f, 3.0f, 5.0f};
static const float smx_burst_net[SMX_ROLE_COUNT] = {4.0f, 2.5f, 2.5f, 3.0f, 1.5f, 5.0f};
/* Mean points of a spike of the server's own (cron, GC pause), and how often. */
static const float smx_spike_cpu[SMX_ROLE_COUNT] = {4.0f, 6.0f, 5.0f, 3.0f, 6.0f, 2.0f};
static const double smx_spike_every_s[SMX_ROLE_COUNT] = {1800, 1200, 2400, 3600, 1800, 3600};

/* cpu never goes below this: the kernel, agents, the runtime's own work */
static const float smx_cpu_floor[SMX_ROLE_COUNT] = {1.5f, 3.0f, 4.0f, 1.5f, 1.0f, 1.0f};

/* How much memory follows the daily curve, per role (app: its GC saw). */
static const float smx_mem_follow[SMX_ROLE_COUNT] = {0.10f, 0.0f, 0.0f, 0.01f, 0.08f, 0.08f};
#define SMX_GC_SAW_POINTS		8.0f	/* app heap climbs this much between GCs */
#define SMX_ROTATE_FREES		0.8f	/* share of a day's disk growth rotation frees */
#define SMX_BURST_TAU_S			90.0	/* bursts decay in about this long */
#define SMX_TRAFFIC_EVERY_S		600.0	/* a traffic burst per group, on average */
#define SMX_DAY_LOCATION		0.11	/* day-to-day level: location share */
#define SMX_DAY_SERVER			0.07	/* and the server's own */
#define SMX_TREND_AMPLITUDE		0.06	/* slow trend over SMX_TREND_DAYS */
#define SMX_TREND_DAYS			45.0

/* Typical response time in ms at idle, per role. */
static const float smx_response_base[SMX_ROLE_COUNT] = {
	35.0f, 120.0f, 12.0f, 0.8f, 20.0f, 4.0f
};

/* Hour-of-day CPU multipliers (simulated local hours 0..23). */
static const float smx_daily_interactive[24] = {
	0.55f, 0.50f, 0.45f, 0.45f, 0.45f, 0.50f, 0.65f, 0.85f,
	1.05f, 1.20f, 1.25f, 1.25f, 1.15f, 1.20f, 1.30f, 1.30f,
	1.25f, 1.15f, 1.00f, 0.95f, 0.90f, 0.85f, 0.75f, 0.65f
};

/* Databases: business hours plus a nightly batch window at 02–03 h. */
static const float smx_daily_database[24] = {
	0.70f, 0.80f, 1.00f, 0.95f, 0.70f, 0.60f, 0.70f, 0.85f,
	1.00f, 1.15f, 1.20f, 1.20f, 1.10f, 1.15f, 1.25f, 1.25f,
	1.20f, 1.10f, 1.00f, 0.95f, 0.90f, 0.85f, 0.80f, 0.75f
};

/* Storage: nightly backups dominate. */
static const float smx_daily_storage[24] = {
	0.90f, 1.30f, 1.50f, 1.50f, 1.30f, 0.90f, 0.70f, 0.75f,
	0.85f, 0.95f, 1.00f, 1.00f, 0.95f, 1.00f, 1.00f, 1.00f,
	0.95f, 0.90f, 0.85f, 0.80f, 0.80f, 0.80f, 0.80f, 0.85f
};

#define SMX_LOAD_KNOT_SECONDS	1800.0	/* location load changes per half hour */
#define SMX_LOAD_AMPLITUDE		0.08	/* ±8 % */

static inline uint64_t
smx_mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= UINT64_C(0xbf58476d1ce4e5b9);
	x ^= x >> 27;
	x *= UINT64_C(0x94d049bb133111eb);
	x ^= x >> 31;
	return x;
}

uint64_t
smx_hash_str(const char *s)
{
	uint64_t	h = UINT64_C(0xcbf29ce484222325);

	for (; *s; s++)
	{
		h ^= (unsigned char) *s;
		h *= UINT64_C(0x100000001b3);
	}
	return smx_mix64(h);
}

/* Uniform in [-1, 1) from a hash. */
static inline double
smx_unit(uint64_t h)
{
	return (double) (h >> 11) * (2.0 / 9007199254740992.0) - 1.0;
}

/* Approximately standard normal, bounded by ±2*sqrt(3), from a hash. */
static inline float
smx_gauss(uint64_t h)
{
	uint32_t	sum = (uint32_t) (h & 0xffff) + (uint32_t) ((h >> 16) & 0xffff) +
		(uint32_t) ((h >> 32) & 0xffff) + (uint32_t) (h >> 48);

	return (float) (((double) sum / 65536.0 - 2.0) * 1.7320508075688772);
}

static inline float
smx_clampf(float v, float lo, float hi)
{
	return v < lo ? lo : (v > hi ? hi : v);
}

/* |simulated time| is kept below this (about 317,000 years) */
#define SMX_EPOCH_LIMIT 1e13

double
smx_sim_epoch(const smx_config *cfg, uint64_t tick)
{
	return cfg->start_epoch + (double) tick * cfg->step_seconds;
}

int
smx_role_from_name(const char *name)
{
	for (int i = 0; i < SMX_ROLE_COUNT; i++)
		if (strcmp(name, smx_role_names[i]) == 0)
			return i;
	return -1;
}

static float
smx_baseline(double v, float dflt)
{
	if (!isfinite(v) || v < 0)
		return dflt;
	return v > 100 ? 100.0f : (float) v;
}

/* A finite value in [lo, hi]; NaN gives dflt. */
static float
smx_finite_clamp(double v, float lo, float hi, float dflt)
{
	if (isnan(v))
		return dflt;
	return v < lo ? lo : (v > hi ? hi : (float) v);
}

/* Uniform in [0, 1) from a hash. */
static inline double
smx_unit01(uint64_t h)
{
	return (double) (h >> 11) * (1.0 / 9007199254740992.0);
}

/*
 * An exponential draw of mean about 1 from a hash, capped at 3.5: bursts
 * are heavy-tailed but stay under the critical threshold.
 */
static inline float
smx_expo(uint64_t h)
{
	double		x = -log(1.0 - 0.999999 * smx_unit01(h));

	return (float) (x < 3.5 ? x : 3.5);
}

void
smx_params_init(smx_params *p, const char *server_id, const char *location,
				smx_role role, double cpu, double memory, double disk,
				double network, double net_capacity)
{
	const smx_role_defaults *d = &smx_role_default_baselines[role];
	uint64_t	c;

	memset(p, 0, sizeof(*p));
	p->key = smx_hash_str(server_id);
	p->location_key = smx_hash_str(location);
	p->traffic_key = p->key;
	p->role = (uint8_t) role;
	/* negative, NaN or infinite: the role default; above 100: 100 */
	p->base_cpu = smx_baseline(cpu, d->cpu);
	p->base_memory = smx_baseline(memory, d->memory);
	p->base_disk = smx_baseline(disk, d->disk);
	p->base_network = smx_baseline(network, d->network);
	p->disk_growth = d->disk_growth;
	/* network_io = % x capacity must fit an int64: the table's CHECK bound */
	p->net_capacity = isfinite(net_capacity) && net_capacity > 0 ?
		(net_capacity > 1e15 ? 1e15 : net_capacity) : 1.25e9;

	/* the server's own character, from its id: servers of a role differ */
	c = smx_mix64(p->key ^ UINT64_C(0xc4a7ac7e75e7f00d));
	p->phase_idx = (uint8_t) (smx_mix64(c + 1) % SMX_PHASES);	/* -45 .. +45 min */
	p->phase_h = (float) ((p->phase_idx - (SMX_PHASES - 1) / 2.0) * SMX_PHASE_STEP_H);
	p->amp = (float) (1.0 + 0.25 * smx_unit(smx_mix64(c + 2)));
	p->noise = (float) (1.0 + 0.2 * smx_unit(smx_mix64(c + 3)));
	p->trend_phase = (float) (3.141592653589793 * smx_unit(smx_mix64(c + 4)));
	p->gc_period_s = (float) (480.0 + 420.0 * smx_unit01(smx_mix64(c + 5)));
	p->gc_phase = (float) smx_unit01(smx_mix64(c + 6));
	p->rotate_h = (float) (0.5 + 4.0 * smx_unit01(smx_mix64(c + 7)));
}

void
smx_params_set_traffic(smx_params *p, uint64_t traffic_key)
{
	p->traffic_key = traffic_key;
	p->shares_traffic = true;
}

void
smx_params_set_disk_growth(smx_params *p, double points_per_day)
{
	if (isfinite(points_per_day) && points_per_day >= 0)
		p->disk_growth = points_per_day > 100 ? 100.0f : (float) points_per_day;
}

static int
smx_find_root(int *root, int i)
{
	while (root[i] != i)
	{
		root[i] = root[root[i]];
		i = root[i];
	}
	return i;
}

void
smx_traffic_groups(int n, const int *edges, int n_edges, int *root)
{
	for (int i = 0; i < n; i++)
		root[i] = i;
	for (int e = 0; e < n_edges; e++)
	{
		int			a = edges[2 * e],
					b = edges[2 * e + 1];

		if (a < 0 || b < 0 || a >= n || b >= n)
			continue;
		a = smx_find_root(root, a);
		b = smx_find_root(root, b);
		/* the lower index is the root: the same groups whatever the edge order */
		if (a < b)
			root[b] = a;
		else if (b < a)
			root[a] = b;
	}
	for (int i = 0; i < n; i++)
		root[i] = smx_find_root(root, i);
}

static float
smx_interp_daily(const float *table, double hour)
{
	int			h0 = (int) hour;
	double		f = hour - h0;
	int			h1;

	h0 = h0 < 0 ? 0 : (h0 > 23 ? 23 : h0);
	h1 = h0 == 23 ? 0 : h0 + 1;
	return (float) (table[h0] * (1.0 - f) + table[h1] * f);
}

void
smx_prepare_tick(smx_tick_ctx *ctx, const smx_config *cfg, uint64_t tick)
{
	double		t = smx_sim_epoch(cfg, tick);
	double		local;
	double		days;
	double		hour;
	double		knot;
	double		frac;
	double		dt = isfinite(cfg->step_seconds) && cfg->step_seconds > 0 ? cfg->step_seconds : 0.0;

	/* the tables are indexed by hour and day: finite, bounded input only */
	if (!isfinite(t))
		t = 0;
	t = t < -SMX_EPOCH_LIMIT ? -SMX_EPOCH_LIMIT : (t > SMX_EPOCH_LIMIT ? SMX_EPOCH_LIMIT : t);
	local = t + (isfinite(cfg->utc_offset) ? cfg->utc_offset : 0.0);
	local = local < -SMX_EPOCH_LIMIT ? -SMX_EPOCH_LIMIT : (local > SMX_EPOCH_LIMIT ? SMX_EPOCH_LIMIT : local);
	days = floor(local / 86400.0);
	hour = (local - days * 86400.0) / 3600.0;
	if (!(hour >= 0 && hour < 24))
		hour = 0;
	knot = floor(t / SMX_LOAD_KNOT_SECONDS);
	frac = t / SMX_LOAD_KNOT_SECONDS - knot;

	memset(ctx, 0, sizeof(*ctx));
	ctx->seed = smx_mix64(cfg->seed ^ UINT64_C(0x5157a1e5eed00001));
	ctx->tick = tick;
	ctx->tick_key = smx_mix64(ctx->seed ^ (tick * UINT64_C(0x9e3779b97f4a7c15)));
	ctx->sim_epoch = t;
	ctx->local = local;
	ctx->hour = hour;
	ctx->dt = dt;
	ctx->day = (int64_t) days;
	ctx->dow = (uint8_t) ((((int64_t) days % 7) + 7 + 4) % 7);	/* 0 = Sunday */
	ctx->weekend = (ctx->dow == 0 || ctx->dow == 6);
	/* the day's level blends into the next one's over the last two hours */
	ctx->day_frac = hour < 22.0 ? 0.0 : (hour - 22.0) / 2.0;
	ctx->day_frac = ctx->day_frac * ctx->day_frac * (3.0 - 2.0 * ctx->day_frac);
	ctx->load_knot = (uint64_t) (int64_t) knot;
	ctx->load_frac = frac * frac * (3.0 - 2.0 * frac);
	for (int r = 0; r < SMX_ROLE_COUNT; r++)
	{
		const float *table = r == SMX_ROLE_DATABASE ? smx_daily_database :
			r == SMX_ROLE_STORAGE ? smx_daily_storage : smx_daily_interactive;

		for (int k = 0; k < SMX_PHASES; k++)
		{
			double		hh = hour + (k - (SMX_PHASES - 1) / 2.0) * SMX_PHASE_STEP_H;
			float		daily;

			hh = hh < 0 ? hh + 24.0 : (hh >= 24.0 ? hh - 24.0 : hh);
			daily = smx_interp_daily(table, hh);
			if (r == SMX_ROLE_CACHE)
				daily = 1.0f + 0.6f * (daily - 1.0f);
			ctx->daily[r][k] = daily;
		}
		/* weekends: lower and flatter, except storage (backups still run) */
		if (!ctx->weekend || r == SMX_ROLE_STORAGE)
			ctx->week_level[r] = 1.0f, ctx->week_amp[r] = 1.0f;
		else if (r == SMX_ROLE_DATABASE)
			ctx->week_level[r] = 0.80f, ctx->week_amp[r] = 0.6f;
		else
			ctx->week_level[r] = ctx->dow == 6 ? 0.72f : 0.68f, ctx->week_amp[r] = 0.5f;
	}
	ctx->dt_days = dt / 86400.0;
	ctx->burst_decay = (float) exp(-dt / SMX_BURST_TAU_S);
	ctx->traffic_p = (float) (1.0 - exp(-dt / SMX_TRAFFIC_EVERY_S));
	for (int r = 0; r < SMX_ROLE_COUNT; r++)
	{
		ctx->spike_p[r] = (float) (1.0 - exp(-dt / smx_spike_every_s[r]));
		ctx->share_root[r][0] = sqrtf(smx_traffic_share[r]);
		ctx->share_root[r][1] = sqrtf(1.0f - smx_traffic_share[r]);
	}
	for (int m = 0; m < SMX_M_COUNT; m++)
	{
		double		a = exp(-dt / smx_tau[m]);

		ctx->decay[m] = (float) a;
		ctx->innov[m] = (float) sqrt(1.0 - a * a);
	}
	ctx->overlay = NULL;
}

/*
 * Draws shared by every server of a location or of a traffic group at one
 * tick. They depend only on (seed, key, tick), so smx_step keeps them in a
 * small cache for the call: a hit or a miss gives the same bits.
 */
typedef struct smx_draw
{
	uint64_t	key;
	float		a,
				b,
				c;
	bool		used;
} smx_draw;

#define SMX_DRAW_SLOTS	64

/*
 * The slot of key in slots, or tmp when there is no cache or its probes
 * are taken; *fresh when the caller must fill it.
 */
static inline smx_draw *
smx_draw_get(smx_draw *slots, uint64_t key, smx_draw *tmp, bool *fresh)
{
	unsigned	i = (unsigned) (key >> 17) & (SMX_DRAW_SLOTS - 1);

	*fresh = true;
	for (int probe = 0; slots != NULL && probe < 4; probe++, i = (i + 1) & (SMX_DRAW_SLOTS - 1))
	{
		if (!slots[i].used)
		{
			slots[i].used = true;
			slots[i].key = key;
			return &slots[i];
		}
		if (slots[i].key == key)
		{
			*fresh = false;
			return &slots[i];
		}
	}
	return tmp;
}

/* A day's draw in [-1, 1) for a key. */
static inline double
smx_day_draw_at(uint64_t seed, uint64_t key, int64_t day)
{
	return smx_unit(smx_mix64(seed ^ key ^ ((uint64_t) day * UINT64_C(0xd1b54a32d192ed03))));
}

/* The same, blended into the next day's near midnight. */
static inline double
smx_day_draw(const smx_tick_ctx *ctx, uint64_t key)
{
	double		u = smx_day_draw_at(ctx->seed, key, ctx->day);

	if (ctx->day_frac > 0)
		u += (smx_day_draw_at(ctx->seed, key, ctx->day + 1) - u) * ctx->day_frac;
	return u;
}

/*
 * A location's draws: a = its load multiplier (smooth, half-hourly knots),
 * b = its day level draw.
 */
static inline const smx_draw *
smx_location_draw(const smx_tick_ctx *ctx, uint64_t location_key, smx_draw *slots,
				  smx_draw *tmp)
{
	bool		fresh;
	smx_draw   *d = smx_draw_get(slots, location_key, tmp, &fresh);

	if (fresh)
	{
		uint64_t	base = smx_mix64(ctx->seed ^ location_key);
		double		u0 = smx_unit(smx_mix64(base ^ (ctx->load_knot * UINT64_C(0x9e3779b97f4a7c15))));
		double		u1 = smx_unit(smx_mix64(base ^ ((ctx->load_knot + 1) * UINT64_C(0x9e3779b97f4a7c15))));

		d->a = (float) (1.0 + SMX_LOAD_AMPLITUDE * (u0 + (u1 - u0) * ctx->load_frac));
		d->b = (float) smx_day_draw(ctx, location_key);
	}
	return d;
}

/*
 * A traffic group's draws: a, b = the shared shocks of cpu and network,
 * c = the size of a traffic burst this tick (0: none).
 */
static inline const smx_draw *
smx_traffic_draw(const smx_tick_ctx *ctx, uint64_t traffic_key, smx_draw *slots,
				 smx_draw *tmp)
{
	bool		fresh;
	smx_draw   *d = smx_draw_get(slots, traffic_key, tmp, &fresh);

	if (fresh)
	{
		uint64_t	g = smx_mix64(ctx->tick_key ^ traffic_key ^ UINT64_C(0x7a4ff1c));

		d->a = smx_gauss(smx_mix64(g + 3));
		d->b = smx_gauss(smx_mix64(g + 4));
		d->c = smx_unit01(smx_mix64(g + 1)) < ctx->traffic_p ? smx_expo(smx_mix64(g + 2)) : 0.0f;
	}
	return d;
}

/* A triangle wave in [-1, 1] of period 1 (cheaper than a sine, as smooth as needed). */
static inline double
smx_triangle(double x)
{
	double		f = x - floor(x);

	return f < 0.5 ? 4.0 * f - 1.0 : 3.0 - 4.0 * f;
}

/*
 * A server's own level on a day: its day draw and its slow trend (taken
 * at the day's middle). Pure in (seed, server, day), so the state keeps it
 * for the day (smx_state.day_factor) without changing any value.
 */
static inline float
smx_server_day_factor(uint64_t seed, const smx_params *p, int64_t day)
{
	return (float) ((SMX_DAY_SERVER * smx_day_draw_at(seed, p->key, day)) +
					SMX_TREND_AMPLITUDE *
					smx_triangle(((double) day + 0.5) / SMX_TREND_DAYS + p->trend_phase));
}

/* Everything that scales a server's cpu and network targets at this tick. */
typedef struct smx_shape
{
	float		cpu;			/* daily x weekly profile (server's phase and swing) */
	float		net;
	float		level;			/* day level x trend x location load */
} smx_shape;

/* s: the server's state, keeping its day factor (NULL: computed here). */
static inline void
smx_server_shape(const smx_tick_ctx *ctx, const smx_params *p, smx_state *s,
				 smx_shape *sh, smx_draw *loc_slots)
{
	int			r = p->role;
	smx_draw	tmp;
	const smx_draw *loc = smx_location_draw(ctx, p->location_key, loc_slots, &tmp);
	float		prof = ctx->week_level[r] *
		(1.0f + p->amp * ctx->week_amp[r] * (ctx->daily[r][p->phase_idx % SMX_PHASES] - 1.0f));
	float		own;

	if (s != NULL && s->day_set && s->day_of == (int32_t) ctx->day &&
		s->day_seed == (uint32_t) ctx->seed)
		own = s->day_factor;
	else
	{
		own = smx_server_day_factor(ctx->seed, p, ctx->day);
		if (s != NULL)
		{
			s->day_factor = own;
			s->day_of = (int32_t) ctx->day;
			s->day_seed = (uint32_t) ctx->seed;
			s->day_set = true;
		}
	}
	/* near midnight the next day's level takes over smoothly */
	if (ctx->day_frac > 0)
		own += (smx_server_day_factor(ctx->seed, p, ctx->day + 1) - own) * (float) ctx->day_frac;
	sh->cpu = prof;
	/* traffic swings at least as much as cpu does */
	sh->net = smx_clampf(1.0f + 1.3f * (prof - 1.0f), 0.12f, 3.0f);
	sh->level = (1.0f + SMX_DAY_LOCATION * loc->b + own) * loc->a;
}

static inline float
smx_cpu_target(const smx_params *p, const smx_shape *sh)
{
	return smx_clampf(p->base_cpu * sh->cpu * sh->level, smx_cpu_floor[p->role], 97.0f);
}

static inline float
smx_net_target(const smx_params *p, const smx_shape *sh)
{
	return smx_clampf(p->base_network * sh->net * sh->level, 0.2f, 97.0f);
}

/* An app server's heap at local time t: climbs, drops at each GC. */
static inline float
smx_gc_saw(const smx_params *p, double t)
{
	double		x = t / p->gc_period_s + p->gc_phase;

	return (float) (SMX_GC_SAW_POINTS * ((x - floor(x)) - 0.5));
}

/* The memory target (without an app's GC saw). */
static inline float
smx_mem_target(const smx_params *p, const smx_shape *sh)
{
	return p->base_memory * (1.0f + smx_mem_follow[p->role] * (sh->cpu - 1.0f));
}

/*
 * Status with hysteresis: a level is entered as soon as the value reaches
 * its threshold (the role's), and left only once the value is
 * SMX_HYSTERESIS_PCT below it, so a value hovering at a threshold does not
 * flap.
 */
static inline void
smx_status_rules(smx_state *s, int role)
{
	const float values[SMX_M_COUNT] = {s->cpu, s->memory, s->disk, s->network};
	const smx_threshold *th = smx_thresholds[role >= 0 && role < SMX_ROLE_COUNT ? role : 0];
	int			worst = 0;

	for (int m = 0; m < SMX_M_COUNT; m++)
	{
		double		warn = th[m].warn;
		double		crit = th[m].crit;
		double		v = values[m];
		int			old = s->level[m];
		int			lvl = v >= crit ? 2 : (v >= warn ? 1 : 0);

		if (old > lvl)
		{
			if (old == 2 && v >= crit - SMX_HYSTERESIS_PCT)
				lvl = 2;
			else if (v >= warn - SMX_HYSTERESIS_PCT)
				lvl = 1;
		}
		s->level[m] = (uint8_t) lvl;
		if (lvl > worst)
			worst = lvl;
	}
	s->status = (uint8_t) (worst == 2 ? SMX_STATUS_CRITICAL :
						   worst == 1 ? SMX_STATUS_WARNING : SMX_STATUS_ONLINE);
}

void
smx_update_status(smx_state *s, int role)
{
	smx_status_rules(s, role);
}

void
smx_server_targets(const smx_tick_ctx *ctx, const smx_params *p, smx_targets *t)
{
	smx_shape	sh;

	smx_server_shape(ctx, p, NULL, &sh, NULL);
	t->cpu = smx_cpu_target(p, &sh);
	t->memory = smx_mem_target(p, &sh);
	if (p->role == SMX_ROLE_APP)
		t->memory += smx_gc_saw(p, ctx->local);
	t->disk = p->base_disk;
	t->network = smx_net_target(p, &sh);
	t->cpu_profile = sh.cpu;
	t->net_profile = sh.net;
}

static inline float
smx_response(const smx_params *p, float cpu, float disk, float z)
{
	double		load = cpu / 100.0;
	double		f;

	if (p->role == SMX_ROLE_DATABASE)
	{
		double		d2 = (disk / 100.0) * (disk / 100.0),
					d4 = d2 * d2;

		f = 1.0 + 6.0 * load * load * load + 2.0 * d4 * d4;
	}
	else
		f = 1.0 + 4.0 * load * load * load * load;
	f *= 1.0 + 0.08 * z;
	return (float) (smx_response_base[p->role] * f);
}

/* Clamp the values and derive network_io and the response time. */
static inline void
smx_finish_values(const smx_params *p, smx_state *s, float z_rt)
{
	s->cpu = smx_clampf(s->cpu, smx_cpu_floor[p->role], 100.0f);
	s->memory = smx_clampf(s->memory, 0.0f, 100.0f);
	s->disk = smx_clampf(s->disk, 0.0f, 100.0f);
	s->network = smx_clampf(s->network, 0.0f, 100.0f);
	/* network is in [0, 100]: rounding half up is llround here */
	s->network_io = (int64_t) ((double) s->network / 100.0 * p->net_capacity + 0.5);
	s->response_ms = smx_response(p, s->cpu, s->disk, z_rt);
}

static inline void
smx_finish(const smx_params *p, smx_state *s, float z_rt)
{
	smx_finish_values(p, s, z_rt);
	smx_status_rules(s, p->role);
}

/*
 * Lay an incident over the model's finished values (kept in base[] for the
 * next step). Down: every metric 0 and the status offline; the status levels
 * start afresh when it comes back.
 */
static inline void
smx_apply_overlay(const smx_params *p, smx_state *s, const smx_overlay *ov, float z_rt)
{
	s->base[SMX_M_CPU] = s->cpu;
	s->base[SMX_M_MEMORY] = s->memory;
	s->base[SMX_M_DISK] = s->disk;
	s->base[SMX_M_NETWORK] = s->network;
	s->overlaid = true;
	if (ov->offline)
	{
		s->cpu = s->memory = s->disk = s->network = 0.0f;
		s->network_io = 0;
		s->response_ms = 0.0f;
		memset(s->level, 0, sizeof(s->level));
		s->status = SMX_STATUS_OFFLINE;
		return;
	}
	s->cpu += ov->add[SMX_M_CPU];
	s->memory += ov->add[SMX_M_MEMORY];
	s->disk += ov->add[SMX_M_DISK];
	s->network += ov->add[SMX_M_NETWORK];
	smx_finish_values(p, s, z_rt);
	s->response_ms *= ov->response;
	smx_status_rules(s, p->role);
}

/* Take the model's own values back from under last tick's incident. */
static inline void
smx_remove_overlay(smx_state *s)
{
	s->cpu = s->base[SMX_M_CPU];
	s->memory = s->base[SMX_M_MEMORY];
	s->disk = s->base[SMX_M_DISK];
	s->network = s->base[SMX_M_NETWORK];
	s->overlaid = false;
}

void
smx_state_init(const smx_tick_ctx *ctx, const smx_params *p, smx_state *s)
{
	smx_targets t;

	memset(s, 0, sizeof(*s));
	smx_server_targets(ctx, p, &t);
	s->cpu = t.cpu;
	s->memory = t.memory;
	/* servers of a role start at different fill levels */
	s->disk = t.disk + (float) (3.0 * smx_unit01(smx_mix64(p->key ^ UINT64_C(0xd15c))));
	s->network = t.network;
	smx_finish(p, s, 0.0f);
}

void
smx_state_restore(const smx_params *p, smx_state *s, float cpu, float memory,
				  float disk, double network_io)
{
	memset(s, 0, sizeof(*s));
	/* a restored value that is not a number takes the baseline */
	s->cpu = smx_finite_clamp(cpu, 0, 100, p->base_cpu);
	s->memory = smx_finite_clamp(memory, 0, 100, p->base_memory);
	s->disk = smx_finite_clamp(disk, 0, 100, p->base_disk);
	s->network = smx_finite_clamp(network_io / p->net_capacity * 100.0, 0, 100, p->base_network);
	smx_finish(p, s, 0.0f);
}

/*
 * Disk: grows at the server's rate (with some unevenness, never down) and
 * gives back most of the day's growth at its rotation hour, so it fills
 * slowly (a fifth of the rate a day) until someone frees it.
 */
static inline void
smx_step_disk(const smx_tick_ctx *ctx, const smx_params *p, smx_state *s, uint64_t h)
{
	double		grown = p->disk_growth * ctx->dt_days * (0.5 + smx_unit01(h));
	float		inc = (float) (grown < 100.0 ? grown : 100.0);
	double		since = ctx->hour - p->rotate_h;

	s->disk = smx_clampf(s->disk + inc, 0.0f, 100.0f);
	s->disk_accum = smx_clampf(s->disk_accum + inc, 0.0f, 100.0f);
	/* the rotation hour passed since the last tick */
	if (since < 0)
		since += 24.0;
	if (ctx->dt > 0 && since * 3600.0 < ctx->dt)
	{
		s->disk -= SMX_ROTATE_FREES * s->disk_accum;
		s->disk_accum = 0;
	}
}

void
smx_step(const smx_tick_ctx *ctx, const smx_params *p, smx_state *s, int n)
{
	smx_draw	loc_slots[SMX_DRAW_SLOTS],
				grp_slots[SMX_DRAW_SLOTS];

	for (int k = 0; k < SMX_DRAW_SLOTS; k++)
		loc_slots[k].used = grp_slots[k].used = false;

	for (int i = 0; i < n; i++, p++, s++)
	{
		const float *sig = smx_sigma[p->role];
		int			r = p->role;
		uint64_t	h = smx_mix64(ctx->tick_key ^ p->key);
		float		z_rt;
		float		z_cpu,
					z_net,
					traffic,
					u;
		smx_shape	sh;
		float		cpu_t,
					net_t,
					mem_t,
					cpu_ou,
					net_ou,
					mem_ou;

		if (p->shares_traffic)
		{
			/* a shock and bursts shared by the traffic group, and its own */
			smx_draw	tmp;
			const smx_draw *grp = smx_traffic_draw(ctx, p->traffic_key, grp_slots, &tmp);

			z_cpu = ctx->share_root[r][0] * grp->a + ctx->share_root[r][1] * smx_gauss(smx_mix64(h + 1));
			z_net = ctx->share_root[r][0] * grp->b + ctx->share_root[r][1] * smx_gauss(smx_mix64(h + 4));
			traffic = grp->c;
			u = (float) smx_unit01(smx_mix64(h + 6));
		}
		else
		{
			/* alone: the two parts of a shock are one normal draw */
			z_cpu = smx_gauss(smx_mix64(h + 1));
			z_net = smx_gauss(smx_mix64(h + 4));
			/* one uniform: its own traffic burst, or a spike, or nothing */
			u = (float) smx_unit01(smx_mix64(h + 6));
			traffic = u >= ctx->spike_p[r] && u < ctx->spike_p[r] + ctx->traffic_p ?
				smx_expo(smx_mix64(h + 8)) : 0.0f;
		}
		if (s->overlaid)
			smx_remove_overlay(s);
		smx_server_shape(ctx, p, s, &sh, loc_slots);
		cpu_t = smx_cpu_target(p, &sh);
		net_t = smx_net_target(p, &sh);
		mem_t = smx_mem_target(p, &sh);

		/* the mean-reverting parts: the values less their bursts (and GC saw) */
		cpu_ou = s->cpu - s->burst_cpu;
		net_ou = s->network - s->burst_net;
		mem_ou = s->memory;
		if (r == SMX_ROLE_APP)
			mem_ou -= smx_gc_saw(p, ctx->local - ctx->dt);
		cpu_ou = cpu_t + (cpu_ou - cpu_t) * ctx->decay[SMX_M_CPU] +
			sig[SMX_M_CPU] * p->noise * ctx->innov[SMX_M_CPU] * z_cpu;
		net_ou = net_t + (net_ou - net_t) * ctx->decay[SMX_M_NETWORK] +
			sig[SMX_M_NETWORK] * p->noise * ctx->innov[SMX_M_NETWORK] * z_net;
		mem_ou = mem_t + (mem_ou - mem_t) * ctx->decay[SMX_M_MEMORY] +
			sig[SMX_M_MEMORY] * ctx->innov[SMX_M_MEMORY] * smx_gauss(smx_mix64(h + 2));

		/* bursts: traffic bursts shared down the group, spikes of its own */
		s->burst_cpu *= ctx->burst_decay;
		s->burst_net *= ctx->burst_decay;
		if (traffic > 0)
		{
			traffic *= sh.level;
			s->burst_cpu += smx_burst_cpu[r] * traffic;
			s->burst_net += smx_burst_net[r] * traffic;
		}
		if (u < ctx->spike_p[r])
			s->burst_cpu += smx_spike_cpu[r] * smx_expo(smx_mix64(h + 7));

		s->cpu = cpu_ou + s->burst_cpu;
		s->network = net_ou + s->burst_net;
		s->memory = mem_ou;
		if (r == SMX_ROLE_APP)
			s->memory += smx_gc_saw(p, ctx->local);
		smx_step_disk(ctx, p, s, h);
		z_rt = smx_gauss(smx_mix64(h + 5));
		smx_finish_values(p, s, z_rt);
		if (s->run != 0 && ctx->overlay != NULL)
			smx_apply_overlay(p, s, &ctx->overlay[s->run], z_rt);
		else
			smx_status_rules(s, p->role);
	}
}

/* Incidents: the envelope of the phases and the overlay it makes. */
const char *const smx_phase_names[SMX_PH_COUNT] = {
	"warning", "onset", "peak", "recovery"
};

const char *const smx_curve_names[SMX_CURVE_COUNT] = {
	"linear", "exponential", "step", "sine"
};

double
smx_unit_key(uint64_t seed, uint64_t a, uint64_t b)
{
	return smx_unit01(smx_mix64(smx_mix64(seed ^ UINT64_C(0x5ce7a710c1de47a5) ^ a) + b));
}

int
smx_curve_from_name(const char *name)
{
	for (int c = 0; c < SMX_CURVE_COUNT; c++)
		if (strcmp(name, smx_curve_names[c]) == 0)
			return c;
	return -1;
}

float
smx_envelope(int phase, int curve, double x, float from_level)
{
	static const float from[SMX_PH_COUNT] = {0.0f, SMX_WARNING_LEVEL, 1.0f, 1.0f};
	static const float to[SMX_PH_COUNT] = {SMX_WARNING_LEVEL, 1.0f, 1.0f, 0.0f};
	double		a,
				b,
				f,
				v;

	if (phase < 0 || phase >= SMX_PH_COUNT)
		return 0.0f;
	if (!(x >= 0.0))
		x = 0.0;
	if (x > 1.0)
		x = 1.0;
	a = from[phase];
	b = to[phase];
	if (phase == SMX_PH_RECOVERY)
		a = from_level;
	switch (curve)
	{
		case SMX_CURVE_EXPONENTIAL:
			/* slow, then faster: a leak, a queue filling up */
			f = (exp(4.0 * x) - 1.0) / (exp(4.0) - 1.0);
			break;
		case SMX_CURVE_STEP:
			/* at the phase's end level from its first tick */
			f = 1.0;
			break;
		default:
			f = x;
			break;
	}
	v = a + (b - a) * f;
	if (curve == SMX_CURVE_SINE)
	{
		/* a wobble of two periods a phase, on the larger of the two levels */
		v += 0.12 * (a > b ? a : b) * sin(4.0 * 3.14159265358979323846 * x);
	}
	if (v < 0.0)
		v = 0.0;
	if (v > 1.2)
		v = 1.2;
	return (float) v;
}

void
smx_overlay_at(const smx_effects *e, float level, float intensity,
			   bool offline_now, smx_overlay *ov)
{
	float		k = level * intensity;

	for (int m = 0; m < SMX_M_COUNT; m++)
		ov->add[m] = e->add[m] * k;
	ov->response = 1.0f + (e->response - 1.0f) * k;
	ov->offline = e->offline && offline_now;
}

/* Days since 1970-01-01 of a proleptic Gregorian date. */
static int64_t
smx_days_from_civil(int64_t y, int m, int d)
{
	int64_t		era;
	int			yoe,
				doy,
				doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (int) (y - era * 400);
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* Read exactly n decimal digits; false on anything else. */
static bool
smx_digits(const char **p, int n, int *out)
{
	int			v = 0;

	for (int i = 0; i < n; i++)
	{
		char		c = (*p)[i];

		if (c < '0' || c > '9')
			return false;
		v = v * 10 + (c - '0');
	}
	*p += n;
	*out = v;
	return true;
}

bool
smx_parse_iso8601(const char *s, double *epoch)
{
	const char *p = s;
	int			y,
				mo,
				d,
				h,
				mi,
				sec = 0;
	double		frac = 0;
	int			off = 0;
	static const int mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

	if (!smx_digits(&p, 4, &y) || *p++ != '-' ||
		!smx_digits(&p, 2, &mo) || *p++ != '-' ||
		!smx_digits(&p, 2, &d))
		return false;
	if (*p != 'T' && *p != ' ')
		return false;
	p++;
	if (!smx_digits(&p, 2, &h) || *p++ != ':' || !smx_digits(&p, 2, &mi))
		return false;
	if (*p == ':')
	{
		double		scale = 0.1;

		p++;
		if (!smx_digits(&p, 2, &sec) || sec > 59)
			return false;
		if (*p == '.')
		{
			p++;
			if (*p < '0' || *p > '9')
				return false;
			for (; *p >= '0' && *p <= '9'; p++, scale /= 10)
				frac += (*p - '0') * scale;
		}
	}
	if (*p == 'Z')
		p++;
	else if (*p == '+' || *p == '-')
	{
		int			sign = *p == '-' ? -1 : 1;
		int			oh,
					om = 0;

		p++;
		if (!smx_digits(&p, 2, &oh))
			return false;
		if (*p == ':')
		{
			p++;
			if (!smx_digits(&p, 2, &om))
				return false;
		}
		else if (*p != '\0' && !smx_digits(&p, 2, &om))
			return false;
		if (oh > 14 || om > 59)
			return false;
		off = sign * (oh * 3600 + om * 60);
	}
	if (*p != '\0')
		return false;
	if (y < 1900 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] ||
		h > 23 || mi > 59)
		return false;
	if (mo == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return false;
	*epoch = (double) smx_days_from_civil(y, mo, d) * 86400.0 +
		h * 3600.0 + mi * 60.0 + sec + frac - off;
	return true;
}

/*
 * model.c — the fleet simulation model (pure C, see model.h).
 *
 * Each metric is an Ornstein–Uhlenbeck process pulled toward a target:
 *
 *     target = baseline x daily profile x weekly profile x location load
 *     x'     = target + (x - target) * a + sigma * sqrt(1 - a^2) * z
 *
 * with a = exp(-dt / tau). Using the exact discretisation keeps the spread
 * of every metric (sigma) the same whatever the tick length, so a demo run
 * with a large time scale looks as calm as a 30 s production tick. z is
 * bounded (Irwin–Hall of four uniforms, |z| < 3.47), which together with
 * sigma of a few points keeps values off the 0/100 clamps.
 *
 * Correlations: memory follows CPU a little; web/LB network follows CPU;
 * database disk and response time rise with load; cache memory sits high
 * and flat; servers in one location share a slowly varying load factor.
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
	/* cpu, memory, disk, network */
	{30, 45, 28, 50},			/* web */
	{45, 60, 40, 50},			/* app */
	{40, 65, 48, 40},			/* database */
	{38, 80, 22, 60},			/* cache */
	{18, 38, 65, 38},			/* storage */
	{28, 48, 14, 68},			/* load-balancer */
};

/* Mean-reversion times in simulated seconds, per metric. */
static const double smx_tau[SMX_M_COUNT] = {600.0, 1800.0, 21600.0, 300.0};

/* Stationary spread (percentage points) per role and metric. */
static const float smx_sigma[SMX_ROLE_COUNT][SMX_M_COUNT] = {
	/* cpu, memory, disk, network */
	{4.0f, 2.0f, 0.6f, 4.0f},	/* web */
	{5.0f, 3.0f, 0.6f, 4.0f},	/* app */
	{3.5f, 1.5f, 0.6f, 3.0f},	/* database */
	{2.5f, 1.0f, 0.4f, 4.0f},	/* cache */
	{2.5f, 1.5f, 0.6f, 4.0f},	/* storage */
	{3.0f, 1.5f, 0.4f, 4.0f},	/* load-balancer */
};

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

void
smx_params_init(smx_params *p, const char *server_id, const char *location,
				smx_role role, double cpu, double memory, double disk,
				double network, double net_capacity)
{
	const smx_role_defaults *d = &smx_role_default_baselines[role];

	memset(p, 0, sizeof(*p));
	p->key = smx_hash_str(server_id);
	p->location_key = smx_hash_str(location);
	p->role = (uint8_t) role;
	/* negative, NaN or infinite: the role default; above 100: 100 */
	p->base_cpu = smx_baseline(cpu, d->cpu);
	p->base_memory = smx_baseline(memory, d->memory);
	p->base_disk = smx_baseline(disk, d->disk);
	p->base_network = smx_baseline(network, d->network);
	/* network_io = % x capacity must fit an int64: the table's CHECK bound */
	p->net_capacity = isfinite(net_capacity) && net_capacity > 0 ?
		(net_capacity > 1e15 ? 1e15 : net_capacity) : 1.25e9;
}

static float
smx_interp_daily(const float *table, double hour)
{
	int			h0 = (int) hour;
	double		f = hour - h0;
	int			h1 = (h0 + 1) % 24;

	return (float) (table[h0 % 24] * (1.0 - f) + table[h1] * f);
}

void
smx_prepare_tick(smx_tick_ctx *ctx, const smx_config *cfg, uint64_t tick)
{
	double		t = smx_sim_epoch(cfg, tick);
	double		local;
	double		days;
	double		hour;
	int			dow;
	bool		weekend;
	double		knot;
	double		frac;
	double		dt = isfinite(cfg->step_seconds) && cfg->step_seconds > 0 ? cfg->step_seconds : 0.0;

	/* the tables are indexed by hour and day: finite, bounded input only */
	if (!isfinite(t))
		t = 0;
	t = t < -SMX_EPOCH_LIMIT ? -SMX_EPOCH_LIMIT : (t > SMX_EPOCH_LIMIT ? SMX_EPOCH_LIMIT : t);
	local = t + (isfinite(cfg->utc_offset) ? cfg->utc_offset : 0.0);
	days = floor(local / 86400.0);
	hour = (local - days * 86400.0) / 3600.0;
	if (!(hour >= 0 && hour < 24))
		hour = 0;
	dow = (int) ((((int64_t) days % 7) + 7 + 4) % 7);	/* 0 = Sunday */
	weekend = (dow == 0 || dow == 6);
	knot = floor(t / SMX_LOAD_KNOT_SECONDS);
	frac = t / SMX_LOAD_KNOT_SECONDS - knot;

	memset(ctx, 0, sizeof(*ctx));
	ctx->seed = smx_mix64(cfg->seed ^ UINT64_C(0x5157a1e5eed00001));
	ctx->tick = tick;
	ctx->sim_epoch = t;
	ctx->load_knot = (uint64_t) (int64_t) knot;
	ctx->load_frac = frac * frac * (3.0 - 2.0 * frac);

	for (int r = 0; r < SMX_ROLE_COUNT; r++)
	{
		const float *table;
		float		daily;
		float		level;
		float		amp;
		float		cpu;

		switch (r)
		{
			case SMX_ROLE_DATABASE:
				table = smx_daily_database;
				break;
			case SMX_ROLE_STORAGE:
				table = smx_daily_storage;
				break;
			default:
				table = smx_daily_interactive;
				break;
		}
		daily = smx_interp_daily(table, hour);
		if (r == SMX_ROLE_CACHE)
			daily = 1.0f + 0.6f * (daily - 1.0f);

		/* weekends: lower and flatter, except storage (backups still run) */
		if (!weekend || r == SMX_ROLE_STORAGE)
			level = 1.0f, amp = 1.0f;
		else if (r == SMX_ROLE_DATABASE)
			level = 0.80f, amp = 0.6f;
		else
			level = dow == 6 ? 0.72f : 0.68f, amp = 0.5f;

		cpu = level * (1.0f + (daily - 1.0f) * amp);
		ctx->cpu_profile[r] = cpu;
		ctx->net_profile[r] = r == SMX_ROLE_DATABASE ?
			1.0f + 0.8f * (cpu - 1.0f) :
			smx_clampf(1.0f + 0.6f * (cpu - 1.0f), 0.3f, 2.0f);
		ctx->mem_profile[r] = r == SMX_ROLE_CACHE ?
			1.0f + 0.03f * (cpu - 1.0f) :
			1.0f + 0.15f * (cpu - 1.0f);
		ctx->disk_extra[r] = 0.0f;
		if (r == SMX_ROLE_STORAGE && hour >= 1.0 && hour < 4.0)
			ctx->disk_extra[r] = 3.0f;		/* backup staging */
		else if (r == SMX_ROLE_DATABASE && hour >= 2.0 && hour < 4.0)
			ctx->disk_extra[r] = 2.0f;		/* batch binlogs / temp files */
	}

	for (int m = 0; m < SMX_M_COUNT; m++)
	{
		double		a = exp(-dt / smx_tau[m]);

		ctx->decay[m] = (float) a;
		ctx->innov[m] = (float) sqrt(1.0 - a * a);
	}
}

/* Location load multiplier, smooth in simulated time, shared by location. */
static inline float
smx_location_load(const smx_tick_ctx *ctx, uint64_t location_key)
{
	uint64_t	base = smx_mix64(ctx->seed ^ location_key);
	double		u0 = smx_unit(smx_mix64(base ^ (ctx->load_knot * UINT64_C(0x9e3779b97f4a7c15))));
	double		u1 = smx_unit(smx_mix64(base ^ ((ctx->load_knot + 1) * UINT64_C(0x9e3779b97f4a7c15))));

	return (float) (1.0 + SMX_LOAD_AMPLITUDE * (u0 + (u1 - u0) * ctx->load_frac));
}

/* Targets of one server at the tick ctx describes; cpu is the new CPU. */
typedef struct smx_targets
{
	float		cpu;
	float		memory;
	float		disk;
	float		network;
} smx_targets;

static inline float
smx_cpu_target(const smx_tick_ctx *ctx, const smx_params *p, float load)
{
	return smx_clampf(p->base_cpu * ctx->cpu_profile[p->role] * load, 0.5f, 97.0f);
}

static inline void
smx_other_targets(const smx_tick_ctx *ctx, const smx_params *p, float load,
				  float cpu, float cpu_target, smx_targets *t)
{
	float		dev = cpu - cpu_target;
	float		net_follow;

	t->memory = p->base_memory * ctx->mem_profile[p->role] + 0.15f * dev;
	t->disk = p->base_disk + ctx->disk_extra[p->role];
	if (p->role == SMX_ROLE_DATABASE)
		t->disk += 0.05f * (cpu - p->base_cpu);
	switch (p->role)
	{
		case SMX_ROLE_WEB:
		case SMX_ROLE_LOADBALANCER:
			net_follow = 0.5f;
			break;
		case SMX_ROLE_APP:
			net_follow = 0.3f;
			break;
		default:
			net_follow = 0.1f;
			break;
	}
	t->network = p->base_network * ctx->net_profile[p->role] * load + net_follow * dev;
}

static inline float
smx_response(const smx_params *p, float cpu, float disk, float z)
{
	double		load = cpu / 100.0;
	double		f;

	if (p->role == SMX_ROLE_DATABASE)
		f = 1.0 + 6.0 * load * load * load + 2.0 * pow(disk / 100.0, 8);
	else
		f = 1.0 + 4.0 * load * load * load * load;
	f *= 1.0 + 0.08 * z;
	return (float) (smx_response_base[p->role] * f);
}

static inline void
smx_finish(const smx_params *p, smx_state *s, float z_rt)
{
	s->cpu = smx_clampf(s->cpu, 0.0f, 100.0f);
	s->memory = smx_clampf(s->memory, 0.0f, 100.0f);
	s->disk = smx_clampf(s->disk, 0.0f, 100.0f);
	s->network = smx_clampf(s->network, 0.0f, 100.0f);
	s->network_io = (int64_t) llround((double) s->network / 100.0 * p->net_capacity);
	s->response_ms = smx_response(p, s->cpu, s->disk, z_rt);
	smx_update_status(s);
}

void
smx_state_init(const smx_tick_ctx *ctx, const smx_params *p, smx_state *s)
{
	float		load = smx_location_load(ctx, p->location_key);
	float		cpu_t = smx_cpu_target(ctx, p, load);
	smx_targets t;

	memset(s, 0, sizeof(*s));
	smx_other_targets(ctx, p, load, cpu_t, cpu_t, &t);
	s->cpu = cpu_t;
	s->memory = t.memory;
	s->disk = t.disk;
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

void
smx_step(const smx_tick_ctx *ctx, const smx_params *p, smx_state *s, int n)
{
	uint64_t	tick_key = smx_mix64(ctx->seed ^ (ctx->tick * UINT64_C(0x9e3779b97f4a7c15)));

	for (int i = 0; i < n; i++, p++, s++)
	{
		const float *sig = smx_sigma[p->role];
		uint64_t	h = smx_mix64(tick_key ^ p->key);
		float		load = smx_location_load(ctx, p->location_key);
		float		cpu_t = smx_cpu_target(ctx, p, load);
		smx_targets t;

		s->cpu = cpu_t + (s->cpu - cpu_t) * ctx->decay[SMX_M_CPU] +
			sig[SMX_M_CPU] * ctx->innov[SMX_M_CPU] * smx_gauss(smx_mix64(h + 1));
		smx_other_targets(ctx, p, load, s->cpu, cpu_t, &t);
		s->memory = t.memory + (s->memory - t.memory) * ctx->decay[SMX_M_MEMORY] +
			sig[SMX_M_MEMORY] * ctx->innov[SMX_M_MEMORY] * smx_gauss(smx_mix64(h + 2));
		s->disk = t.disk + (s->disk - t.disk) * ctx->decay[SMX_M_DISK] +
			sig[SMX_M_DISK] * ctx->innov[SMX_M_DISK] * smx_gauss(smx_mix64(h + 3));
		s->network = t.network + (s->network - t.network) * ctx->decay[SMX_M_NETWORK] +
			sig[SMX_M_NETWORK] * ctx->innov[SMX_M_NETWORK] * smx_gauss(smx_mix64(h + 4));
		smx_finish(p, s, smx_gauss(smx_mix64(h + 5)));
	}
}

/*
 * Status with hysteresis: a level is entered as soon as the value reaches
 * its threshold, and left only once the value is SMX_HYSTERESIS_PCT below
 * it, so a value hovering at a threshold does not flap.
 */
void
smx_update_status(smx_state *s)
{
	const float values[SMX_M_COUNT] = {s->cpu, s->memory, s->disk, s->network};
	int			worst = 0;

	for (int m = 0; m < SMX_M_COUNT; m++)
	{
		double		warn = m == SMX_M_NETWORK ? SMX_NET_WARN_PCT : SMX_WARN_PCT;
		double		crit = m == SMX_M_NETWORK ? SMX_NET_CRIT_PCT : SMX_CRIT_PCT;
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

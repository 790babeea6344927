/*
 * model_test.c — unit tests of the fleet simulation model (src/model.c).
 *
 * The model is kept free of PostgreSQL headers so that its promises can be
 * checked here as an ordinary program, under ASan/UBSan and valgrind, with
 * no server: reproducibility (a server's value at tick T depends only on the
 * seed, its template, the simulated clock and its state at T-1), bounded
 * mean-reverting metrics, the daily and weekly profiles, per-role noise, the
 * correlations between metrics and between servers of one location, the
 * status rules with hysteresis, and the ISO 8601 parser.
 *
 * Output is TAP ("ok N - ..." / "not ok N - ..."); the exit status is 1 if
 * any check fails. Every run uses fixed seeds, so the statistical checks are
 * deterministic; their bounds are derived from the design values in model.c
 * with margin. SMX_QUICK=1 shortens the long runs for an edit-compile loop;
 * the bounds are meant for the default length.
 *
 *   gcc -std=c11 -O1 -g -Wall -Wextra -Werror -fsanitize=address,undefined \
 *       -Isrc src/model.c test/model_test.c -lm -o /tmp/model_test
 */
#include "model.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ----------------------------------------------------------------------
 * TAP output
 * ---------------------------------------------------------------------- */

static int	n_checks = 0;
static int	n_failed = 0;

#define CHECK(cond, ...) check_at((cond), #cond, __LINE__, __VA_ARGS__)

static bool check_at(bool ok, const char *expr, int line, const char *fmt,...)
			__attribute__((format(printf, 4, 5)));
static void diag(const char *fmt,...) __attribute__((format(printf, 1, 2)));

static bool
check_at(bool ok, const char *expr, int line, const char *fmt,...)
{
	va_list		ap;

	n_checks++;
	printf("%s %d - ", ok ? "ok" : "not ok", n_checks);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	if (!ok)
	{
		n_failed++;
		printf("#   failed at %s:%d: %s\n", __FILE__, line, expr);
	}
	return ok;
}

static void
diag(const char *fmt,...)
{
	va_list		ap;

	fputs("# ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

/* ----------------------------------------------------------------------
 * The default fleet and configuration
 * ---------------------------------------------------------------------- */

typedef struct fleet_row
{
	const char *id;
	const char *role;
	const char *location;
	double		cpu;
	double		memory;
	double		disk;
	double		network;
} fleet_row;

static const fleet_row fleet[] = {
	{"web-nginx-icn-01", "web", "Seoul-ICN-AZ1", 30, 45, 25, 50},
	{"web-nginx-icn-02", "web", "Seoul-ICN-AZ2", 35, 50, 30, 55},
	{"web-nginx-pus-01", "web", "Busan-PUS-DR", 25, 40, 28, 45},
	{"api-was-icn-01", "app", "Seoul-ICN-AZ1", 45, 60, 40, 50},
	{"api-was-icn-02", "app", "Seoul-ICN-AZ2", 50, 70, 45, 55},
	{"api-was-pus-01", "app", "Busan-PUS-DR", 35, 55, 38, 40},
	{"db-mysql-icn-primary", "database", "Seoul-ICN-AZ1", 50, 70, 50, 45},
	{"db-mysql-icn-replica", "database", "Seoul-ICN-AZ2", 40, 65, 48, 40},
	{"db-mysql-pus-dr", "database", "Busan-PUS-DR", 25, 50, 45, 30},
	{"cache-redis-icn-01", "cache", "Seoul-ICN-AZ1", 35, 80, 20, 60},
	{"cache-redis-icn-02", "cache", "Seoul-ICN-AZ2", 40, 85, 25, 65},
	{"storage-nfs-icn-01", "storage", "Seoul-ICN-AZ1", 20, 40, 75, 35},
	{"storage-s3gw-pus-01", "storage", "Busan-PUS-DR", 15, 35, 60, 40},
	{"lb-haproxy-icn-01", "load-balancer", "Seoul-ICN-AZ1", 30, 50, 15, 70},
	{"lb-haproxy-pus-01", "load-balancer", "Busan-PUS-DR", 25, 45, 12, 65},
};

#define NSERVERS		((int) (sizeof(fleet) / sizeof(fleet[0])))
#define NET_CAPACITY	1.25e9
#define START_ISO		"2026-01-05T00:00:00Z"
#define START_EPOCH		1767571200.0	/* date -u -d 2026-01-05 +%s */
#define HOUR			3600.0
#define DAY				86400.0

/* Design values from model.c that the statistical checks are built on. */
static const double design_sigma_cpu[SMX_ROLE_COUNT] = {3.0, 3.5, 2.5, 1.8, 1.8, 2.2};
static const double design_sigma_memory[SMX_ROLE_COUNT] = {1.0, 0.6, 0.3, 0.25, 0.8, 0.8};
#define DESIGN_TAU_CPU		600.0
#define DESIGN_TAU_MEMORY	1800.0
#define DESIGN_LOAD_AMP		0.08

static bool quick = false;

static int
server_index(const char *id)
{
	for (int i = 0; i < NSERVERS; i++)
		if (strcmp(fleet[i].id, id) == 0)
			return i;
	printf("Bail out! unknown server %s\n", id);
	exit(2);
}

static void
fleet_params(smx_params *p)
{
	for (int i = 0; i < NSERVERS; i++)
	{
		int			role = smx_role_from_name(fleet[i].role);

		if (role < 0)
		{
			printf("Bail out! unknown role %s\n", fleet[i].role);
			exit(2);
		}
		smx_params_init(&p[i], fleet[i].id, fleet[i].location, (smx_role) role,
						fleet[i].cpu, fleet[i].memory, fleet[i].disk,
						fleet[i].network, NET_CAPACITY);
	}
}

static void
default_config(smx_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->seed = 42;
	if (!smx_parse_iso8601(START_ISO, &cfg->start_epoch))
	{
		printf("Bail out! cannot parse %s\n", START_ISO);
		exit(2);
	}
	cfg->step_seconds = 30;
	cfg->utc_offset = 0;
}

/* States of n servers as they appear at tick0. */
static void
sim_start(const smx_config *cfg, const smx_params *p, smx_state *s, int n,
		  uint64_t tick0)
{
	smx_tick_ctx ctx;

	smx_prepare_tick(&ctx, cfg, tick0);
	for (int i = 0; i < n; i++)
		smx_state_init(&ctx, &p[i], &s[i]);
}

/* Step n servers from tick `from` to tick `to`. */
static void
sim_run(const smx_config *cfg, const smx_params *p, smx_state *s, int n,
		uint64_t from, uint64_t to)
{
	smx_tick_ctx ctx;

	for (uint64_t t = from + 1; t <= to; t++)
	{
		smx_prepare_tick(&ctx, cfg, t);
		smx_step(&ctx, p, s, n);
	}
}

/* Local hour (0..23) and weekday (0 = Sunday) of a simulated time. */
static void
local_time(double epoch, double utc_offset, int *hour, int *dow)
{
	double		local = epoch + utc_offset;
	double		days = floor(local / DAY);

	*hour = (int) ((local - days * DAY) / HOUR);
	*dow = (int) ((((int64_t) days % 7) + 11) % 7);	/* 1970-01-01: Thursday */
}

static bool
is_weekday(int dow)
{
	return dow >= 1 && dow <= 5;
}

/* Running sums for a Pearson correlation. */
typedef struct pearson_acc
{
	double		n,
				sx,
				sy,
				sxx,
				syy,
				sxy;
} pearson_acc;

static void
pearson_add(pearson_acc *a, double x, double y)
{
	a->n += 1;
	a->sx += x;
	a->sy += y;
	a->sxx += x * x;
	a->syy += y * y;
	a->sxy += x * y;
}

static double
pearson(const pearson_acc *a)
{
	double		cxy = a->sxy - a->sx * a->sy / a->n;
	double		cxx = a->sxx - a->sx * a->sx / a->n;
	double		cyy = a->syy - a->sy * a->sy / a->n;

	return cxx > 0 && cyy > 0 ? cxy / sqrt(cxx * cyy) : 0.0;
}

static float
metric_value(const smx_state *s, int m)
{
	switch (m)
	{
		case SMX_M_CPU:
			return s->cpu;
		case SMX_M_MEMORY:
			return s->memory;
		case SMX_M_DISK:
			return s->disk;
		default:
			return s->network;
	}
}

static const char *const metric_names[SMX_M_COUNT] = {
	"cpu", "memory", "disk", "network"
};

/* ----------------------------------------------------------------------
 * 1. Reproducibility
 * ---------------------------------------------------------------------- */

static void
test_reproducibility(void)
{
	smx_config cfg;
	smx_params p[NSERVERS],
				p2[NSERVERS];
	smx_state	a[NSERVERS],
				b[NSERVERS],
				c[NSERVERS],
				fresh[NSERVERS];
	smx_state	one;
	int			differ;

	default_config(&cfg);
	fleet_params(p);

	/* padding bytes take part in memcmp: start every array from zero bytes */
	memset(a, 0, sizeof(a));
	memset(b, 0, sizeof(b));
	memset(c, 0, sizeof(c));

	sim_start(&cfg, p, a, NSERVERS, 0);
	sim_run(&cfg, p, a, NSERVERS, 0, 200);

	/* an independent run with freshly computed params */
	fleet_params(p2);
	CHECK(memcmp(p, p2, sizeof(p)) == 0, "params are a pure function of the template");
	sim_start(&cfg, p2, b, NSERVERS, 0);
	sim_run(&cfg, p2, b, NSERVERS, 0, 200);
	CHECK(memcmp(a, b, sizeof(a)) == 0,
		  "two runs of 200 ticks from the same params/config are bit-identical");

	/*
	 * 100 ticks, then hand the state over (as through shared memory) and do
	 * another 100 with a fresh, garbage-filled context per tick.
	 */
	{
		smx_state	handed[NSERVERS];

		sim_start(&cfg, p, c, NSERVERS, 0);
		sim_run(&cfg, p, c, NSERVERS, 0, 100);
		memcpy(handed, c, sizeof(c));
		memset(c, 0x5a, sizeof(c));
		for (uint64_t t = 101; t <= 200; t++)
		{
			smx_tick_ctx *ctx = malloc(sizeof(smx_tick_ctx));

			memset(ctx, 0xa5, sizeof(*ctx));
			smx_prepare_tick(ctx, &cfg, t);
			smx_step(ctx, p, handed, NSERVERS);
			free(ctx);
		}
		CHECK(memcmp(a, handed, sizeof(a)) == 0,
			  "200 ticks == 100 ticks + 100 ticks with fresh contexts");
	}

	/* the noise was really applied: not just the targets at tick 200 */
	memset(fresh, 0, sizeof(fresh));
	sim_start(&cfg, p, fresh, NSERVERS, 200);
	differ = 0;
	for (int i = 0; i < NSERVERS; i++)
		differ += a[i].cpu != fresh[i].cpu && a[i].network != fresh[i].network;
	CHECK(differ == NSERVERS, "after 200 ticks every server is off its noiseless target (%d/%d)",
		  differ, NSERVERS);

	/* another seed gives other values for every server */
	{
		smx_config cfg43 = cfg;

		cfg43.seed = 43;
		memset(b, 0, sizeof(b));
		sim_start(&cfg43, p, b, NSERVERS, 0);
		sim_run(&cfg43, p, b, NSERVERS, 0, 200);
		differ = 0;
		for (int i = 0; i < NSERVERS; i++)
			differ += a[i].cpu != b[i].cpu && a[i].memory != b[i].memory &&
				a[i].network != b[i].network;
		CHECK(differ == NSERVERS, "seed 43 differs from seed 42 for every server (%d/%d)",
			  differ, NSERVERS);
	}

	/* order independence: one at a time, reversed, uneven chunks */
	{
		smx_state	fwd[NSERVERS],
					rev[NSERVERS],
					chunk[NSERVERS];
		smx_tick_ctx ctx;
		static const int chunks[] = {4, 1, 7, 3};

		memset(fwd, 0, sizeof(fwd));
		memset(rev, 0, sizeof(rev));
		memset(chunk, 0, sizeof(chunk));
		sim_start(&cfg, p, fwd, NSERVERS, 0);
		memcpy(rev, fwd, sizeof(fwd));
		memcpy(chunk, fwd, sizeof(fwd));
		for (uint64_t t = 1; t <= 200; t++)
		{
			int			at = 0;

			smx_prepare_tick(&ctx, &cfg, t);
			for (int i = 0; i < NSERVERS; i++)
				smx_step(&ctx, &p[i], &fwd[i], 1);
			for (int i = NSERVERS - 1; i >= 0; i--)
				smx_step(&ctx, &p[i], &rev[i], 1);
			for (int k = 0; at < NSERVERS; k = (k + 1) % 4)
			{
				int			len = chunks[k] < NSERVERS - at ? chunks[k] : NSERVERS - at;

				smx_step(&ctx, &p[at], &chunk[at], len);
				at += len;
			}
		}
		CHECK(memcmp(a, fwd, sizeof(a)) == 0,
			  "stepping servers one at a time == all at once");
		CHECK(memcmp(a, rev, sizeof(a)) == 0,
			  "stepping servers in reverse order == all at once");
		CHECK(memcmp(a, chunk, sizeof(a)) == 0,
			  "stepping servers in uneven chunks == all at once");
	}

	/* a server alone evolves as it does within the fleet */
	{
		int			k = server_index("db-mysql-icn-replica");

		memset(&one, 0, sizeof(one));
		sim_start(&cfg, &p[k], &one, 1, 0);
		sim_run(&cfg, &p[k], &one, 1, 0, 200);
		CHECK(memcmp(&one, &a[k], sizeof(one)) == 0,
			  "a server stepped alone == the same server within the fleet");
	}

	/* a server's trajectory is independent of its neighbours' states */
	{
		int			k = server_index("cache-redis-icn-01");

		memset(b, 0, sizeof(b));
		sim_start(&cfg, p, b, NSERVERS, 0);
		for (int i = 0; i < NSERVERS; i++)
			if (i != k)
				b[i].cpu = b[i].memory = 99.0f;
		sim_run(&cfg, p, b, NSERVERS, 0, 200);
		CHECK(memcmp(&b[k], &a[k], sizeof(smx_state)) == 0,
			  "a server's state does not depend on other servers' states");
	}
}

/* ----------------------------------------------------------------------
 * 2-5. One long run of the default fleet, then checks on its statistics
 * ---------------------------------------------------------------------- */

typedef struct long_stats
{
	uint64_t	ticks;
	/* per server and metric */
	uint64_t	clamped[NSERVERS][SMX_M_COUNT];
	double		sum[NSERVERS][SMX_M_COUNT];
	double		sumsq[NSERVERS][SMX_M_COUNT];
	double		expect_sum[NSERVERS][SMX_M_COUNT];	/* noiseless, load 1 */
	uint64_t	not_online[NSERVERS];
	/* per role: tick-to-tick cpu changes */
	double		d_n[SMX_ROLE_COUNT],
				d_s[SMX_ROLE_COUNT],
				d_ss[SMX_ROLE_COUNT];
	/* web cpu by local time */
	double		web_business,
				web_business_n,
				web_night,
				web_night_n,
				web_weekday,
				web_weekday_n,
				web_weekend,
				web_weekend_n;
	double		web_hourly[24],
				web_hourly_n[24];
	/* storage cpu: backups at night vs business hours */
	double		sto_backup,
				sto_backup_n,
				sto_business,
				sto_business_n;
	pearson_acc cpu_net[NSERVERS];	/* deviations from the profile */
	pearson_acc cpu_net_raw[NSERVERS];
	pearson_acc cpu_rt[NSERVERS];
	uint64_t	bad_status;		/* status != worst level */
	uint64_t	bad_netio;		/* network_io != network% x capacity */
	uint64_t	bad_rt;			/* response_ms not finite or <= 0 */
} long_stats;

static void
long_run(const smx_config *cfg, long_stats *st, uint64_t ticks, bool web_only)
{
	smx_params	p[NSERVERS];
	smx_state	s[NSERVERS];
	float		prev_cpu[NSERVERS];
	smx_tick_ctx ctx;
	int			n = web_only ? 3 : NSERVERS;	/* the web servers come first */

	memset(st, 0, sizeof(*st));
	st->ticks = ticks;
	fleet_params(p);
	sim_start(cfg, p, s, n, 0);
	for (int i = 0; i < n; i++)
		prev_cpu[i] = s[i].cpu;

	for (uint64_t t = 1; t <= ticks; t++)
	{
		int			hour,
					dow,
					utc_hour,
					utc_dow;

		smx_prepare_tick(&ctx, cfg, t);
		smx_step(&ctx, p, s, n);
		local_time(ctx.sim_epoch, cfg->utc_offset, &hour, &dow);
		local_time(ctx.sim_epoch, 0, &utc_hour, &utc_dow);

		for (int i = 0; i < n; i++)
		{
			const smx_state *v = &s[i];
			smx_targets tg;
			int			role = p[i].role;
			double		exp_cpu,
						exp_net;
			int			worst = 0;
			double		d;

			smx_server_targets(&ctx, &p[i], &tg);
			exp_cpu = tg.cpu;
			exp_net = tg.network;

			for (int m = 0; m < SMX_M_COUNT; m++)
			{
				float		x = metric_value(v, m);

				if (x == 0.0f || x == 100.0f)
					st->clamped[i][m]++;
				st->sum[i][m] += x;
				st->sumsq[i][m] += (double) x * x;
				if (v->level[m] > worst)
					worst = v->level[m];
			}
			st->expect_sum[i][SMX_M_CPU] += exp_cpu;
			st->expect_sum[i][SMX_M_MEMORY] += tg.memory;
			st->expect_sum[i][SMX_M_DISK] += tg.disk;
			st->expect_sum[i][SMX_M_NETWORK] += exp_net;

			if (v->status != (worst == 2 ? SMX_STATUS_CRITICAL :
							  worst == 1 ? SMX_STATUS_WARNING : SMX_STATUS_ONLINE))
				st->bad_status++;
			if (v->status != SMX_STATUS_ONLINE)
				st->not_online[i]++;
			if (v->network_io != llround((double) v->network / 100.0 * NET_CAPACITY))
				st->bad_netio++;
			if (!(isfinite(v->response_ms) && v->response_ms > 0))
				st->bad_rt++;

			d = (double) v->cpu - prev_cpu[i];
			prev_cpu[i] = v->cpu;
			/* the OU part's spread: the bursts' jumps and decay left out */
			if (v->burst_cpu < 0.05f && fabs(d) < 6 * design_sigma_cpu[role] * 0.32)
			{
				st->d_n[role] += 1;
				st->d_s[role] += d;
				st->d_ss[role] += d * d;
			}

			pearson_add(&st->cpu_net[i], v->cpu - exp_cpu, v->network - exp_net);
			pearson_add(&st->cpu_net_raw[i], v->cpu, v->network);
			pearson_add(&st->cpu_rt[i], v->cpu, v->response_ms);

			if (role == SMX_ROLE_WEB)
			{
				if (is_weekday(dow) && hour >= 10 && hour < 17)
					st->web_business += v->cpu, st->web_business_n++;
				if (is_weekday(dow) && hour < 5)
					st->web_night += v->cpu, st->web_night_n++;
				if (is_weekday(dow))
					st->web_weekday += v->cpu, st->web_weekday_n++;
				else
					st->web_weekend += v->cpu, st->web_weekend_n++;
				st->web_hourly[utc_hour] += v->cpu;
				st->web_hourly_n[utc_hour]++;
			}
			else if (role == SMX_ROLE_STORAGE && is_weekday(dow))
			{
				if (hour >= 1 && hour < 4)
					st->sto_backup += v->cpu, st->sto_backup_n++;
				if (hour >= 10 && hour < 17)
					st->sto_business += v->cpu, st->sto_business_n++;
			}
		}
	}
}

static void
test_bounded(const long_stats *st)
{
	smx_params	p[NSERVERS];
	uint64_t	worst = 0;
	int			worst_i = 0,
				worst_m = 0;
	int			bad_mean = 0;
	double		worst_rel = 0;

	fleet_params(p);
	for (int i = 0; i < NSERVERS; i++)
		for (int m = 0; m < SMX_M_COUNT; m++)
		{
			bool		ok = st->clamped[i][m] * 100 < st->ticks;

			if (st->clamped[i][m] > worst)
				worst = st->clamped[i][m], worst_i = i, worst_m = m;
			if (!ok)
				CHECK(false, "%s %s at 0 or 100 in %.2f%% of samples (< 1%%)",
					  fleet[i].id, metric_names[m],
					  100.0 * st->clamped[i][m] / st->ticks);
		}
	CHECK(worst * 100 < st->ticks,
		  "over %llu ticks no metric of any server is at 0 or 100 in >= 1%% of samples "
		  "(worst: %s %s %.3f%%)",
		  (unsigned long long) st->ticks, fleet[worst_i].id, metric_names[worst_m],
		  100.0 * worst / st->ticks);

	/* long-run mean near baseline x average profile */
	for (int i = 0; i < NSERVERS; i++)
	{
		double		base[SMX_M_COUNT] = {p[i].base_cpu, p[i].base_memory,
		p[i].base_disk, p[i].base_network};

		for (int m = 0; m < SMX_M_COUNT; m++)
		{
			double		mean = st->sum[i][m] / st->ticks;

			if (m == SMX_M_DISK)
				continue;		/* disk grows: test_disk_growth */
			double		expect = st->expect_sum[i][m] / st->ticks;
			double		rel = fabs(mean - expect) / base[m];

			if (rel > worst_rel)
				worst_rel = rel;
			if (rel > 0.10)
			{
				bad_mean++;
				diag("%s %s: mean %.2f, baseline x profile %.2f", fleet[i].id,
					 metric_names[m], mean, expect);
			}
		}
	}
	CHECK(bad_mean == 0,
		  "long-run mean of cpu, memory, network within 10%% of baseline (x mean profile) "
		  "(worst %.1f%%)", 100 * worst_rel);

	CHECK(st->bad_status == 0, "status is always the worst of the per-metric levels");
	CHECK(st->bad_netio == 0, "network_io == network%% x capacity");
	CHECK(st->bad_rt == 0, "response_ms always finite and positive");
	for (int i = 0; i < NSERVERS; i++)
		if (st->not_online[i] > 0)
			diag("%s is not online %.2f%% of the time", fleet[i].id,
				 100.0 * st->not_online[i] / st->ticks);
}

/*
 * Push cpu and memory of one server to 99 and watch them come back. A paired
 * run from the same seed without the push sees the same random draws, so the
 * difference between the two is the decaying excess alone.
 */
static void
test_mean_reversion(void)
{
	smx_config	cfg;
	smx_params	p[NSERVERS];
	int			k = server_index("api-was-icn-01");
	int			role;
	const int	nseeds = quick ? 8 : 32;
	int			ok_cpu_back = 0,
				ok_cpu_tau = 0,
				ok_cpu_target = 0,
				ok_mem_60 = 0,
				ok_mem_180 = 0,
				ok_level = 0;
	double		cpu_ratio_min = 1,
				cpu_ratio_max = 0,
				worst_cpu_60 = 0,
				worst_mem_60 = 0,
				worst_mem_180 = 0;

	default_config(&cfg);
	fleet_params(p);
	role = p[k].role;
	/* Tuesday 10:00 UTC: interactive profile is flat (1.25) from 10 to 11 h */
	cfg.start_epoch = START_EPOCH + DAY + 10 * HOUR;

	for (int seed = 0; seed < nseeds; seed++)
	{
		smx_state	ctl,
					pushed;
		smx_tick_ctx ctx;
		double		cpu0,
					mem0,
					cpu20 = 0,
					cpu120 = 0,
					mem120 = 0,
					mem360;
		double		sc = design_sigma_cpu[role],
					sm = design_sigma_memory[role];
		double		target;

		cfg.seed = 1000 + seed;
		sim_start(&cfg, &p[k], &ctl, 1, 0);
		pushed = ctl;
		pushed.cpu = 75.0f;
		pushed.memory = 99.0f;
		cpu0 = pushed.cpu - ctl.cpu;
		mem0 = pushed.memory - ctl.memory;
		for (uint64_t t = 1; t <= 360; t++)
		{
			smx_prepare_tick(&ctx, &cfg, t);
			smx_step(&ctx, &p[k], &ctl, 1);
			smx_step(&ctx, &p[k], &pushed, 1);
			if (t == 20)
				cpu20 = pushed.cpu - ctl.cpu;
			if (t == 120)
			{
				cpu120 = pushed.cpu - ctl.cpu;
				mem120 = pushed.memory - ctl.memory;
				smx_targets tg;

				smx_server_targets(&ctx, &p[k], &tg);
				target = tg.cpu;
				if (fabs(pushed.cpu - target) <= 3 * sc + DESIGN_LOAD_AMP * target)
					ok_cpu_target++;
			}
		}
		mem360 = pushed.memory - ctl.memory;

		/* 20 ticks = 600 s = one cpu tau: excess ~ e^-1 of the push */
		if (cpu20 / cpu0 < cpu_ratio_min)
			cpu_ratio_min = cpu20 / cpu0;
		if (cpu20 / cpu0 > cpu_ratio_max)
			cpu_ratio_max = cpu20 / cpu0;
		ok_cpu_tau += cpu20 / cpu0 > 0.25 && cpu20 / cpu0 < 0.50;
		/* 60 min: cpu fully back, memory (tau 30 min) within 2 sigma */
		ok_cpu_back += fabs(cpu120) < 0.5 * sc;
		ok_mem_60 += mem120 > 0 && mem120 < 0.25 * mem0;
		ok_mem_180 += fabs(mem360) < 0.5 * sm;
		ok_level += pushed.level[SMX_M_CPU] == 0 && pushed.level[SMX_M_MEMORY] == 0;
		if (fabs(cpu120) > worst_cpu_60)
			worst_cpu_60 = fabs(cpu120);
		if (fabs(mem120) > worst_mem_60)
			worst_mem_60 = fabs(mem120);
		if (fabs(mem360) > worst_mem_180)
			worst_mem_180 = fabs(mem360);
	}
	CHECK(ok_cpu_tau == nseeds,
		  "cpu pushed to 75 keeps %.2f..%.2f of its excess after 10 min (tau 10 min: ~0.37)",
		  cpu_ratio_min, cpu_ratio_max);
	CHECK(ok_cpu_back == nseeds,
		  "cpu pushed to 75 is back to the unpushed path within 60 min (worst %.3f)",
		  worst_cpu_60);
	CHECK(ok_cpu_target == nseeds,
		  "cpu pushed to 99 is within 3 sigma (+load) of baseline x profile after 60 min "
		  "(%d/%d)", ok_cpu_target, nseeds);
	CHECK(ok_mem_60 == nseeds,
		  "memory pushed to 99 keeps < 25%% of its excess after 60 min (tau 30 min: ~14%%; worst %.2f)",
		  worst_mem_60);
	CHECK(ok_mem_180 == nseeds,
		  "memory pushed to 99 is back within 0.5 sigma after 3 h (worst %.3f)",
		  worst_mem_180);
	CHECK(ok_level == nseeds, "cpu and memory levels back to ok after 3 h (%d/%d)",
		  ok_level, nseeds);
}

static void
test_profiles(const long_stats *st)
{
	double		business = st->web_business / st->web_business_n;
	double		night = st->web_night / st->web_night_n;
	double		weekday = st->web_weekday / st->web_weekday_n;
	double		weekend = st->web_weekend / st->web_weekend_n;
	double		backup = st->sto_backup / st->sto_backup_n;
	double		sto_day = st->sto_business / st->sto_business_n;

	CHECK(business > 1.8 * night,
		  "web cpu, weekdays: business hours (%.1f) > 1.8 x night 0-5 h (%.1f)",
		  business, night);
	CHECK(weekday > 1.2 * weekend,
		  "web cpu: weekday mean (%.1f) > 1.2 x weekend mean (%.1f)", weekday, weekend);
	CHECK(backup > 1.2 * sto_day,
		  "storage cpu: nightly backups 1-4 h (%.1f) > 1.2 x business hours (%.1f)",
		  backup, sto_day);
}

/* Shift (hours) by which the hourly profile b lags profile a. */
static int
best_shift(const double *a, const double *b)
{
	double		ma = 0,
				mb = 0,
				best = -INFINITY;
	int			shift = -1;

	for (int h = 0; h < 24; h++)
		ma += a[h] / 24, mb += b[h] / 24;
	for (int s = 0; s < 24; s++)
	{
		double		c = 0;

		for (int h = 0; h < 24; h++)
			c += (a[(h + s) % 24] - ma) * (b[h] - mb);
		if (c > best)
			best = c, shift = s;
	}
	return shift;
}

static void
test_utc_offset(const long_stats *st0, uint64_t ticks)
{
	smx_config	cfg0,
				cfg9;
	long_stats *st9 = malloc(sizeof(long_stats));
	double		h0[24],
				h9[24];
	int			peak0 = 0,
				peak9 = 0,
				shift,
				mismatch = 0;

	if (st9 == NULL)
	{
		printf("Bail out! out of memory\n");
		exit(2);
	}
	smx_params	p[NSERVERS];

	fleet_params(p);
	default_config(&cfg0);
	cfg9 = cfg0;
	cfg9.utc_offset = 9 * HOUR;

	/* exact: the +9 h profile at UTC time t is the UTC profile at t + 9 h */
	for (uint64_t t = 0; t < 7 * 24 * 4; t++)
	{
		smx_tick_ctx a,
					b;
		uint64_t	tick = t * 30;	/* every 15 min over a week */

		smx_prepare_tick(&a, &cfg9, tick);
		smx_prepare_tick(&b, &cfg0, tick + (uint64_t) (9 * HOUR / cfg0.step_seconds));
		for (int i = 0; i < NSERVERS; i++)
		{
			smx_targets ta,
						tb;

			smx_server_targets(&a, &p[i], &ta);
			smx_server_targets(&b, &p[i], &tb);
			mismatch += ta.cpu_profile != tb.cpu_profile || ta.net_profile != tb.net_profile;
		}
	}
	CHECK(mismatch == 0,
		  "profiles with utc_offset +9 h at UTC t == profiles with offset 0 at t + 9 h "
		  "(%d mismatches over a week)", mismatch);

	/* statistical: the simulated hourly means of web cpu move 9 h earlier */
	long_run(&cfg9, st9, ticks, true);
	for (int h = 0; h < 24; h++)
	{
		h0[h] = st0->web_hourly[h] / st0->web_hourly_n[h];
		h9[h] = st9->web_hourly[h] / st9->web_hourly_n[h];
		if (h0[h] > h0[peak0])
			peak0 = h;
		if (h9[h] > h9[peak9])
			peak9 = h;
	}
	shift = best_shift(h0, h9);
	diag("web cpu peak hour (UTC): offset 0 -> %02d h, offset +9 h -> %02d h", peak0, peak9);
	CHECK(shift == 9, "with utc_offset +9 h the web cpu profile runs 9 h earlier in UTC "
		  "(best shift %d h)", shift);
	CHECK(peak0 >= 13 && peak0 <= 16 && peak9 >= 4 && peak9 <= 7,
		  "web cpu peaks in the afternoon local time (UTC %02d h / %02d h)", peak0, peak9);
	free(st9);
}

static void
test_role_noise(const long_stats *st)
{
	double		sd[SMX_ROLE_COUNT];
	double		a = exp(-30.0 / DESIGN_TAU_CPU);
	int			bad = 0;

	for (int r = 0; r < SMX_ROLE_COUNT; r++)
	{
		double		mean = st->d_s[r] / st->d_n[r];
		/* OU: sd of x(t+1) - x(t) is sigma * sqrt(2 (1 - a)) */
		double		expect = design_sigma_cpu[r] * sqrt(2 * (1 - a));

		sd[r] = sqrt(st->d_ss[r] / st->d_n[r] - mean * mean);
		diag("%s: tick-to-tick cpu sd %.3f (design %.3f)", smx_role_names[r], sd[r], expect);
		if (fabs(sd[r] / expect - 1) > 0.15)
			bad++;
	}
	CHECK(sd[SMX_ROLE_APP] > 1.6 * sd[SMX_ROLE_STORAGE],
		  "app cpu is noisier than storage cpu (%.2f vs %.2f)",
		  sd[SMX_ROLE_APP], sd[SMX_ROLE_STORAGE]);
	CHECK(sd[SMX_ROLE_APP] > sd[SMX_ROLE_WEB] && sd[SMX_ROLE_WEB] > sd[SMX_ROLE_DATABASE] &&
		  sd[SMX_ROLE_DATABASE] > sd[SMX_ROLE_LOADBALANCER] &&
		  sd[SMX_ROLE_LOADBALANCER] > sd[SMX_ROLE_CACHE] &&
		  sd[SMX_ROLE_LOADBALANCER] > sd[SMX_ROLE_STORAGE],
		  "cpu noise by role: app > web > database > load-balancer > cache, storage");
	CHECK(bad == 0, "tick-to-tick cpu sd of every role within 15%% of its design sigma");
}

static void
test_correlations(const long_stats *st)
{
	int			cache2 = server_index("cache-redis-icn-02");
	double		mem_mean = st->sum[cache2][SMX_M_MEMORY] / st->ticks;
	double		mem_sd = sqrt(st->sumsq[cache2][SMX_M_MEMORY] / st->ticks - mem_mean * mem_mean);
	double		min_web = 1,
				min_db = 1;

	for (int i = 0; i < NSERVERS; i++)
	{
		int			role = smx_role_from_name(fleet[i].role);

		if (role == SMX_ROLE_WEB)
		{
			double		r = pearson(&st->cpu_net[i]);

			diag("%s: corr(cpu dev, network dev) %.3f, corr(cpu, network) %.3f",
				 fleet[i].id, r, pearson(&st->cpu_net_raw[i]));
			if (r < min_web)
				min_web = r;
		}
		else if (role == SMX_ROLE_DATABASE)
		{
			double		r = pearson(&st->cpu_rt[i]);

			diag("%s: corr(cpu, response_ms) %.3f", fleet[i].id, r);
			if (r < min_db)
				min_db = r;
		}
	}
	CHECK(min_web > 0.3,
		  "web: cpu deviation and network deviation from their profiles correlate "
		  "(min r %.3f > 0.3)", min_web);
	CHECK(min_db > 0.3, "database: response_ms rises with cpu (min r %.3f > 0.3)", min_db);
	CHECK(mem_mean > 75, "cache-redis-icn-02 memory stays high (mean %.1f > 75)", mem_mean);
	CHECK(mem_sd < 3, "cache-redis-icn-02 memory is flat (sd %.2f < 3)", mem_sd);
}

/*
 * Servers of one location share a slowly varying load factor. The shared
 * daily profile would swamp it, so correlate cpu minus baseline x profile.
 */
static void
test_location_correlation(void)
{
	smx_config	cfg;
	smx_params	p[NSERVERS];
	smx_state	s[NSERVERS];
	smx_tick_ctx ctx;
	uint64_t	ticks = quick ? 5000 : 20000;
	double		sx[NSERVERS] = {0},
				sxx[NSERVERS] = {0},
				sxy[NSERVERS][NSERVERS];
	double		same = 0,
				other = 0,
				min_same = 1,
				max_other = -1;
	int			n_same = 0,
				n_other = 0;

	default_config(&cfg);
	cfg.step_seconds = 300;
	fleet_params(p);
	memset(sxy, 0, sizeof(sxy));
	sim_start(&cfg, p, s, NSERVERS, 0);
	for (uint64_t t = 1; t <= ticks; t++)
	{
		double		r[NSERVERS];

		smx_prepare_tick(&ctx, &cfg, t);
		smx_step(&ctx, p, s, NSERVERS);
		for (int i = 0; i < NSERVERS; i++)
		{
			smx_targets tg;

			smx_server_targets(&ctx, &p[i], &tg);
			/* what is left of the daily curve: day levels, location load, noise */
			r[i] = s[i].cpu - p[i].base_cpu * tg.cpu_profile;
			sx[i] += r[i];
			sxx[i] += r[i] * r[i];
		}
		for (int i = 0; i < NSERVERS; i++)
			for (int j = i + 1; j < NSERVERS; j++)
				sxy[i][j] += r[i] * r[j];
	}
	for (int i = 0; i < NSERVERS; i++)
		for (int j = i + 1; j < NSERVERS; j++)
		{
			double		n = (double) ticks;
			double		c = (sxy[i][j] - sx[i] * sx[j] / n) /
				sqrt((sxx[i] - sx[i] * sx[i] / n) * (sxx[j] - sx[j] * sx[j] / n));

			if (strcmp(fleet[i].location, fleet[j].location) == 0)
			{
				same += c, n_same++;
				if (c < min_same)
					min_same = c;
			}
			else
			{
				other += c, n_other++;
				if (c > max_other)
					max_other = c;
			}
		}
	same /= n_same;
	other /= n_other;
	diag("cpu residual correlation: same location mean %.3f (min %.3f, %d pairs), "
		 "other locations mean %.3f (max %.3f, %d pairs)",
		 same, min_same, n_same, other, max_other, n_other);
	CHECK(same > other + 0.05,
		  "cpu of servers in one location correlates more than across locations "
		  "(%.3f vs %.3f)", same, other);
	CHECK(fabs(other) < 0.05, "cpu of servers in different locations is uncorrelated "
		  "beyond the profile (mean r %.3f)", other);
	CHECK(min_same > 0, "every same-location pair correlates positively (min r %.3f)",
		  min_same);
}

/* ----------------------------------------------------------------------
 * 6. Status rules with hysteresis
 * ---------------------------------------------------------------------- */

static void
set_metric(smx_state *s, int m, float v)
{
	switch (m)
	{
		case SMX_M_CPU:
			s->cpu = v;
			break;
		case SMX_M_MEMORY:
			s->memory = v;
			break;
		case SMX_M_DISK:
			s->disk = v;
			break;
		default:
			s->network = v;
			break;
	}
}

/* A calm state (all 10 %) with no history, then metric m set to v. */
static smx_status
status_fresh(int m, float v)
{
	smx_state	s;

	memset(&s, 0, sizeof(s));
	s.cpu = s.memory = s.disk = s.network = 10.0f;
	set_metric(&s, m, v);
	smx_update_status(&s, SMX_ROLE_WEB);
	return (smx_status) s.status;
}

static smx_status
status_next(smx_state *s, int m, float v)
{
	set_metric(s, m, v);
	smx_update_status(s, SMX_ROLE_WEB);
	return (smx_status) s->status;
}

static void
test_status(void)
{
	for (int m = 0; m < SMX_M_COUNT; m++)
	{
		bool		net = m == SMX_M_NETWORK;
		float		warn = net ? 70.0f : 80.0f;
		float		crit = net ? 85.0f : 90.0f;
		const char *name = metric_names[m];
		smx_state	s;
		int			changes = 0;
		smx_status	prev;

		CHECK(status_fresh(m, warn - 0.1f) == SMX_STATUS_ONLINE,
			  "%s %.1f -> online", name, warn - 0.1f);
		CHECK(status_fresh(m, warn) == SMX_STATUS_WARNING, "%s %.0f -> warning", name, warn);
		CHECK(status_fresh(m, crit - 0.1f) == SMX_STATUS_WARNING,
			  "%s %.1f -> warning", name, crit - 0.1f);
		CHECK(status_fresh(m, crit) == SMX_STATUS_CRITICAL, "%s %.0f -> critical", name, crit);
		CHECK(status_fresh(m, 100.0f) == SMX_STATUS_CRITICAL, "%s 100 -> critical", name);

		/* hovering at the warning threshold */
		memset(&s, 0, sizeof(s));
		prev = status_next(&s, m, warn - 0.5f);
		for (int k = 0; k < 100; k++)
		{
			smx_status st = status_next(&s, m, k % 2 ? warn - 0.5f : warn + 0.5f);

			changes += st != prev;
			prev = st;
		}
		CHECK(changes == 1, "%s alternating %.1f/%.1f 100 times changes status once (%d)",
			  name, warn - 0.5f, warn + 0.5f, changes);

		/* hovering at the critical threshold */
		memset(&s, 0, sizeof(s));
		prev = status_next(&s, m, crit - 0.5f);
		changes = 0;
		for (int k = 0; k < 100; k++)
		{
			smx_status st = status_next(&s, m, k % 2 ? crit - 0.5f : crit + 0.5f);

			changes += st != prev;
			prev = st;
		}
		CHECK(changes == 1, "%s alternating %.1f/%.1f 100 times changes status once (%d)",
			  name, crit - 0.5f, crit + 0.5f, changes);

		/* coming down from critical: 3-point hysteresis at each threshold */
		memset(&s, 0, sizeof(s));
		CHECK(status_next(&s, m, crit + 1) == SMX_STATUS_CRITICAL &&
			  s.level[m] == 2, "%s %.0f -> critical", name, crit + 1);
		CHECK(status_next(&s, m, crit - 2) == SMX_STATUS_CRITICAL,
			  "%s then %.0f stays critical", name, crit - 2);
		CHECK(status_next(&s, m, crit - 3.1f) == SMX_STATUS_WARNING && s.level[m] == 1,
			  "%s then %.1f -> warning", name, crit - 3.1f);
		CHECK(status_next(&s, m, warn - 2.5f) == SMX_STATUS_WARNING,
			  "%s then %.1f stays warning", name, warn - 2.5f);
		CHECK(status_next(&s, m, warn - 3.1f) == SMX_STATUS_ONLINE && s.level[m] == 0,
			  "%s then %.1f -> online", name, warn - 3.1f);
		CHECK(status_next(&s, m, warn - 2.5f) == SMX_STATUS_ONLINE,
			  "%s then back up to %.1f stays online", name, warn - 2.5f);

		/* a drop from critical straight to calm is not held up */
		memset(&s, 0, sizeof(s));
		status_next(&s, m, crit + 5);
		CHECK(status_next(&s, m, 20.0f) == SMX_STATUS_ONLINE && s.level[m] == 0,
			  "%s critical then 20 -> online", name);
	}

	/* the literal sequence of the specification */
	{
		smx_state	s;

		memset(&s, 0, sizeof(s));
		CHECK(status_next(&s, SMX_M_CPU, 91.0f) == SMX_STATUS_CRITICAL &&
			  status_next(&s, SMX_M_CPU, 88.0f) == SMX_STATUS_CRITICAL &&
			  status_next(&s, SMX_M_CPU, 86.9f) == SMX_STATUS_WARNING &&
			  status_next(&s, SMX_M_CPU, 77.5f) == SMX_STATUS_WARNING &&
			  status_next(&s, SMX_M_CPU, 76.9f) == SMX_STATUS_ONLINE,
			  "cpu 91, 88, 86.9, 77.5, 76.9 -> critical, critical, warning, warning, online");
		memset(&s, 0, sizeof(s));
		CHECK(status_next(&s, SMX_M_NETWORK, 70.0f) == SMX_STATUS_WARNING &&
			  status_next(&s, SMX_M_NETWORK, 69.9f) == SMX_STATUS_WARNING &&
			  status_next(&s, SMX_M_NETWORK, 66.9f) == SMX_STATUS_ONLINE,
			  "network 70, 69.9, 66.9 -> warning, warning (hysteresis), online");
	}

	/* the worst metric wins, and each metric keeps its own level */
	{
		smx_state	s;

		memset(&s, 0, sizeof(s));
		s.cpu = 85;
		s.memory = 50;
		s.disk = 20;
		s.network = 86;
		smx_update_status(&s, SMX_ROLE_WEB);
		CHECK(s.status == SMX_STATUS_CRITICAL && s.level[SMX_M_CPU] == 1 &&
			  s.level[SMX_M_MEMORY] == 0 && s.level[SMX_M_NETWORK] == 2,
			  "cpu 85 + network 86 -> critical, levels cpu 1 memory 0 network 2");
		s.network = 40;
		smx_update_status(&s, SMX_ROLE_WEB);
		CHECK(s.status == SMX_STATUS_WARNING && s.level[SMX_M_NETWORK] == 0,
			  "then network 40 -> warning (cpu still 85)");
		s.cpu = 78;
		smx_update_status(&s, SMX_ROLE_WEB);
		CHECK(s.status == SMX_STATUS_WARNING, "then cpu 78 -> warning (hysteresis)");
		s.cpu = 60;
		smx_update_status(&s, SMX_ROLE_WEB);
		CHECK(s.status == SMX_STATUS_ONLINE, "then cpu 60 -> online");
	}
}

/* ----------------------------------------------------------------------
 * 7. smx_parse_iso8601
 * ---------------------------------------------------------------------- */

static void
test_parse(void)
{
	static const struct
	{
		const char *in;
		double		expect;
	}			good[] = {
		{"2026-01-05T00:00:00Z", START_EPOCH},
		{"2026-01-05 09:00:00+09:00", START_EPOCH},
		{"2026-01-05T09:00:00+0900", START_EPOCH},
		{"2026-01-04T19:00:00-05:00", START_EPOCH},
		{"2026-01-05T00:00:00", START_EPOCH},
		{"2026-01-05T00:00", START_EPOCH},
		{"2026-01-05T00:00:00.5Z", START_EPOCH + 0.5},
		{"2026-01-05T00:00:07.250+00:00", START_EPOCH + 7.25},
		{"2026-01-05T23:59:59Z", START_EPOCH + DAY - 1},
		{"1970-01-01T00:00:00Z", 0},
		{"2000-02-29T12:00:00Z", 951825600},
		{"2024-02-29T00:00:00Z", 1709164800},
		{"2026-12-31T23:59:59.999Z", 1798761599.999},
	};
	static const char *const bad[] = {
		"2026-02-30T00:00:00Z",
		"2026-02-29T00:00:00Z",
		"1900-02-29T00:00:00Z",
		"2026-13-01T00:00:00Z",
		"2026-00-10T00:00:00Z",
		"2026-04-31T00:00:00Z",
		"2026-01-00T00:00:00Z",
		"2026-01-05T24:00:00Z",
		"2026-01-05T00:60:00Z",
		"2026-01-05T00:00:60Z",
		"2026-01-05T00:00:00+15:00",
		"2026-01-05T00:00:00Zjunk",
		"2026-01-05T00:00:00Z ",
		"2026-01-05T00:00:00 junk",
		"2026-01-05T00:00:00+09:00x",
		"2026-01-05",
		"2026-01-05X00:00:00Z",
		"2026-1-05T00:00:00Z",
		"garbage",
		"",
	};
	static const char *const lenient[] = {
		"2026-01-05T-1:00:00Z",
		"2026-01-05T00:-5:00Z",
		"2026-01-05T00:00:05e1Z",
		"2026-01-05T00:00:00+09:-1",
		"2026-+1-05T00:00:00Z",
		"2026-01- 5T00:00:00Z",
	};

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
	{
		double		e = -1;
		bool		ok = smx_parse_iso8601(good[i].in, &e);

		CHECK(ok && fabs(e - good[i].expect) < 1e-6, "parse \"%s\" = %.3f (got %s %.3f)",
			  good[i].in, good[i].expect, ok ? "true" : "false", e);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
	{
		double		e = 12345;
		bool		ok = smx_parse_iso8601(bad[i], &e);

		CHECK(!ok && e == 12345, "reject \"%s\"", bad[i]);
	}

	/* signs, blanks, exponents and dangling parts inside fields */
	for (size_t i = 0; i < sizeof(lenient) / sizeof(lenient[0]); i++)
	{
		double		e;

		CHECK(!smx_parse_iso8601(lenient[i], &e), "reject \"%s\"", lenient[i]);
	}
}

/* ----------------------------------------------------------------------
 * 8-9. Roles, params, simulated clock
 * ---------------------------------------------------------------------- */

static void
test_roles_params(void)
{
	static const char *const unknown[] = {
		"", "Web", "db", "loadbalancer", "load_balancer", "web ", "storages"
	};
	smx_params	p,
				q;
	int			bad = 0;

	for (int r = 0; r < SMX_ROLE_COUNT; r++)
		CHECK(smx_role_from_name(smx_role_names[r]) == r, "role \"%s\" -> %d",
			  smx_role_names[r], r);
	for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++)
		bad += smx_role_from_name(unknown[i]) != -1;
	CHECK(bad == 0, "unknown role names -> -1");

	for (int r = 0; r < SMX_ROLE_COUNT; r++)
	{
		const smx_role_defaults *d = &smx_role_default_baselines[r];

		smx_params_init(&p, "x", "y", (smx_role) r, -1, -1, -1, -1, 0);
		CHECK(p.base_cpu == d->cpu && p.base_memory == d->memory &&
			  p.base_disk == d->disk && p.base_network == d->network &&
			  p.role == r && p.net_capacity == 1.25e9,
			  "%s: negative baselines take the role defaults (%g %g %g %g)",
			  smx_role_names[r], d->cpu, d->memory, d->disk, d->network);
	}
	smx_params_init(&p, "x", "y", SMX_ROLE_APP, 0, 12.5, -0.001, 99, 1e6);
	CHECK(p.base_cpu == 0 && p.base_memory == 12.5f &&
		  p.base_disk == smx_role_default_baselines[SMX_ROLE_APP].disk &&
		  p.base_network == 99 && p.net_capacity == 1e6,
		  "explicit baselines (0 included) and capacity are kept");

	smx_params_init(&p, "web-nginx-icn-01", "Seoul-ICN-AZ1", SMX_ROLE_WEB, 30, 45, 25, 50, 0);
	smx_params_init(&q, "web-nginx-icn-02", "Seoul-ICN-AZ1", SMX_ROLE_WEB, 30, 45, 25, 50, 0);
	CHECK(p.key == smx_hash_str("web-nginx-icn-01") && p.key != q.key &&
		  p.location_key == q.location_key &&
		  p.location_key == smx_hash_str("Seoul-ICN-AZ1") &&
		  p.location_key != smx_hash_str("Seoul-ICN-AZ2"),
		  "key from the server id, location_key from the location");

	/* network_io is a share of the server's own capacity */
	{
		smx_config	cfg;
		smx_state	s;
		smx_tick_ctx ctx;

		default_config(&cfg);
		smx_params_init(&p, "x", "y", SMX_ROLE_WEB, -1, -1, -1, -1, 1e8);
		sim_start(&cfg, &p, &s, 1, 0);
		bad = 0;
		for (uint64_t t = 1; t <= 50; t++)
		{
			smx_prepare_tick(&ctx, &cfg, t);
			smx_step(&ctx, &p, &s, 1);
			bad += s.network_io != llround((double) s.network / 100.0 * 1e8);
		}
		CHECK(bad == 0 && s.network_io > 0 && s.network_io < 100000000,
			  "network_io == network%% x a 1e8 B/s capacity (%lld)", (long long) s.network_io);
	}
}

static void
test_sim_epoch(void)
{
	smx_config	cfg;
	static const uint64_t ticks[] = {0, 1, 2, 120, 2880, 1000000, UINT64_C(1) << 32};
	int			bad = 0;

	default_config(&cfg);
	CHECK(cfg.start_epoch == START_EPOCH, "start %s = %.0f", START_ISO, START_EPOCH);
	for (size_t i = 0; i < sizeof(ticks) / sizeof(ticks[0]); i++)
	{
		smx_tick_ctx ctx;

		bad += smx_sim_epoch(&cfg, ticks[i]) != START_EPOCH + (double) ticks[i] * 30;
		smx_prepare_tick(&ctx, &cfg, ticks[i]);
		bad += ctx.sim_epoch != smx_sim_epoch(&cfg, ticks[i]) || ctx.tick != ticks[i];
	}
	CHECK(bad == 0, "smx_sim_epoch(cfg, tick) == start + tick x step (and ctx.sim_epoch)");
	cfg.step_seconds = 0.5;
	CHECK(smx_sim_epoch(&cfg, 7) == START_EPOCH + 3.5, "fractional step: tick 7 x 0.5 s");

	/* the weekday the profiles see: 2026-01-05 is a Monday, 01-10 a Saturday */
	{
		smx_tick_ctx mon,
					sat;

		cfg.step_seconds = 30;
		smx_prepare_tick(&mon, &cfg, (uint64_t) (14 * HOUR / 30));
		smx_prepare_tick(&sat, &cfg, (uint64_t) ((5 * DAY + 14 * HOUR) / 30));
		smx_params web;
		smx_targets tm,
					ts;

		smx_params_init(&web, "web-x", "loc", SMX_ROLE_WEB, -1, -1, -1, -1, NET_CAPACITY);
		smx_server_targets(&mon, &web, &tm);
		smx_server_targets(&sat, &web, &ts);
		CHECK(tm.cpu_profile > 1.15f && ts.cpu_profile < 0.9f,
			  "Monday 14 h is a busy weekday (%.2f), Saturday 14 h a quiet weekend (%.2f)",
			  tm.cpu_profile, ts.cpu_profile);
	}
}

/* ----------------------------------------------------------------------
 * Non-finite input: the model never sees NaN or Inf, whatever it is given
 * ---------------------------------------------------------------------- */

static bool
state_sane(const smx_state *s)
{
	return isfinite(s->cpu) && isfinite(s->memory) && isfinite(s->disk) &&
		isfinite(s->network) && isfinite(s->response_ms) &&
		s->cpu >= 0 && s->cpu <= 100 && s->memory >= 0 && s->memory <= 100 &&
		s->disk >= 0 && s->disk <= 100 && s->network >= 0 && s->network <= 100 &&
		s->network_io >= 0 && s->status <= SMX_STATUS_OFFLINE;
}

static void
test_non_finite(void)
{
	const double bad[] = {NAN, INFINITY, -INFINITY, -1.0, 1e300};
	const char *names[] = {"NaN", "+Inf", "-Inf", "-1", "1e300"};

	for (int b = 0; b < 5; b++)
	{
		smx_params	p;
		smx_config	cfg;
		smx_tick_ctx ctx;
		smx_state	s;
		bool		ok = true;

		smx_params_init(&p, "web-nan", "Nowhere", SMX_ROLE_WEB,
						bad[b], bad[b], bad[b], bad[b], bad[b]);
		CHECK(isfinite(p.base_cpu) && p.base_cpu >= 0 && p.base_cpu <= 100 &&
			  isfinite(p.base_memory) && isfinite(p.base_disk) &&
			  isfinite(p.base_network) && isfinite(p.net_capacity) && p.net_capacity > 0,
			  "%s baselines and capacity become finite defaults (cpu %.1f, capacity %.3g)",
			  names[b], p.base_cpu, p.net_capacity);

		default_config(&cfg);
		cfg.start_epoch = bad[b];
		cfg.step_seconds = bad[b];
		cfg.utc_offset = bad[b];
		smx_prepare_tick(&ctx, &cfg, 7);
		CHECK(isfinite(ctx.sim_epoch) && isfinite(ctx.load_frac) &&
			  isfinite(ctx.local) && isfinite(ctx.decay[SMX_M_CPU]) &&
			  isfinite(ctx.innov[SMX_M_CPU]),
			  "%s start, step and offset give a finite tick context", names[b]);

		smx_state_init(&ctx, &p, &s);
		ok &= state_sane(&s);
		for (uint64_t t = 8; t < 200; t++)
		{
			smx_prepare_tick(&ctx, &cfg, t);
			smx_step(&ctx, &p, &s, 1);
			ok &= state_sane(&s);
		}
		CHECK(ok, "%s everywhere: 200 ticks of bounded, finite values", names[b]);

		smx_params_init(&p, "web-nan", "Nowhere", SMX_ROLE_WEB, -1, -1, -1, -1, 0);
		smx_state_restore(&p, &s, (float) bad[b], (float) bad[b], (float) bad[b], bad[b]);
		CHECK(state_sane(&s), "%s restored from history: finite, bounded (cpu %.2f)",
			  names[b], s.cpu);
	}
}

/* ----------------------------------------------------------------------
 * Model v2: traffic groups, disk growth and rotation, role thresholds,
 * the cpu floor, bursts shared by a traffic group.
 */
static void
test_model_v2(void)
{
	/* groups: 0-1-2 linked (either way), 3 alone, 4-5 linked */
	{
		const int	edges[] = {0, 1, 2, 1, 5, 4, 9, 0, -1, 3};
		int			root[6];

		smx_traffic_groups(6, edges, 5, root);
		CHECK(root[0] == 0 && root[1] == 0 && root[2] == 0 && root[3] == 3 &&
			  root[4] == 4 && root[5] == 4,
			  "traffic groups follow depends_on either way; bad indexes are ignored");
	}

	/* disk: grows at its rate, gives back 80 %% of a day's growth once a day */
	{
		smx_config	cfg;
		smx_tick_ctx ctx;
		smx_params	p;
		smx_state	s;
		int			drops = 0,
					falls = 0;
		float		start;

		default_config(&cfg);
		smx_params_init(&p, "db-disk", "loc", SMX_ROLE_DATABASE, -1, -1, 40, -1, NET_CAPACITY);
		smx_params_set_disk_growth(&p, 2.0);
		smx_prepare_tick(&ctx, &cfg, 0);
		smx_state_init(&ctx, &p, &s);
		start = s.disk;
		for (uint64_t t = 1; t <= 10 * 2880; t++)
		{
			float		before = s.disk;

			smx_prepare_tick(&ctx, &cfg, t);
			smx_step(&ctx, &p, &s, 1);
			if (s.disk < before)
				drops++;
			/* a fall is a rotation only at the server's rotation hour */
			if (s.disk < before && fabs(fmod(ctx.hour - p.rotate_h + 24.0, 24.0)) > 30.0 / 3600.0 + 1e-6)
				falls++;
		}
		CHECK(drops == 10 && falls == 0,
			  "disk falls only at its daily rotation hour (%d rotations, %d other falls in 10 days)",
			  drops, falls);
		CHECK(s.disk - start > 0.2 * 2.0 * 10 * 0.6 && s.disk - start < 0.2 * 2.0 * 10 * 1.4,
			  "disk keeps a fifth of its growth: +%.2f points in 10 days at 2 a day",
			  s.disk - start);
		smx_params_set_disk_growth(&p, 100.0);
		for (uint64_t t = 10 * 2880 + 1; t <= 11 * 2880; t++)
		{
			smx_prepare_tick(&ctx, &cfg, t);
			smx_step(&ctx, &p, &s, 1);
		}
		CHECK(s.disk == 100.0f && s.status == SMX_STATUS_CRITICAL,
			  "a rate of 100 points a day fills the disk by growth alone (%.1f, %s)",
			  s.disk, smx_status_names[s.status]);
	}

	/* thresholds by role: a cache's memory runs high by design */
	{
		smx_state	s;

		memset(&s, 0, sizeof(s));
		s.memory = 90.0f;
		smx_update_status(&s, SMX_ROLE_CACHE);
		CHECK(s.status == SMX_STATUS_ONLINE, "cache memory at 90 is online (warns at 92)");
		s.memory = 92.0f;
		smx_update_status(&s, SMX_ROLE_CACHE);
		CHECK(s.status == SMX_STATUS_WARNING, "cache memory at 92 warns");
		memset(&s, 0, sizeof(s));
		s.memory = 80.0f;
		smx_update_status(&s, SMX_ROLE_APP);
		CHECK(s.status == SMX_STATUS_WARNING, "app memory at 80 warns");
	}

	/* cpu floor, and bursts shared by a traffic group */
	{
		smx_config	cfg;
		smx_tick_ctx ctx;
		smx_params	p[3];
		smx_state	s[3];
		pearson_acc same,
					other;
		float		prev[3];
		float		min_cpu = 100;

		default_config(&cfg);
		smx_params_init(&p[0], "web-a", "loc", SMX_ROLE_WEB, 1, -1, -1, -1, NET_CAPACITY);
		smx_params_init(&p[1], "app-b", "loc", SMX_ROLE_APP, -1, -1, -1, -1, NET_CAPACITY);
		smx_params_init(&p[2], "app-c", "loc", SMX_ROLE_APP, -1, -1, -1, -1, NET_CAPACITY);
		smx_params_set_traffic(&p[0], p[0].key);
		smx_params_set_traffic(&p[1], p[0].key);
		memset(&same, 0, sizeof(same));
		memset(&other, 0, sizeof(other));
		smx_prepare_tick(&ctx, &cfg, 0);
		for (int i = 0; i < 3; i++)
		{
			smx_state_init(&ctx, &p[i], &s[i]);
			prev[i] = s[i].cpu;
		}
		for (uint64_t t = 1; t <= 7 * 2880; t++)
		{
			smx_prepare_tick(&ctx, &cfg, t);
			smx_step(&ctx, p, s, 3);
			pearson_add(&same, s[0].cpu - prev[0], s[1].cpu - prev[1]);
			pearson_add(&other, s[1].cpu - prev[1], s[2].cpu - prev[2]);
			for (int i = 0; i < 3; i++)
				prev[i] = s[i].cpu;
			if (s[0].cpu < min_cpu)
				min_cpu = s[0].cpu;
		}
		CHECK(pearson(&same) > 0.3 && fabs(pearson(&other)) < 0.1,
			  "30 s cpu changes: r %.2f within a traffic group, %.2f across groups",
			  pearson(&same), pearson(&other));
		CHECK(min_cpu >= 1.5f, "a web server's cpu stays at its floor or above (baseline 1: min %.2f)",
			  min_cpu);
	}
}

/* ----------------------------------------------------------------------
 * Incidents: envelope, overlay, and untouched servers
 * ---------------------------------------------------------------------- */

static void
test_incidents(void)
{
	/* the envelope's ends and shapes */
	CHECK(smx_envelope(SMX_PH_WARNING, SMX_CURVE_LINEAR, 0, 1) == 0.0f &&
		  fabsf(smx_envelope(SMX_PH_WARNING, SMX_CURVE_LINEAR, 1, 1) - SMX_WARNING_LEVEL) < 1e-6f,
		  "warning rises from 0 to the warning level");
	CHECK(fabsf(smx_envelope(SMX_PH_ONSET, SMX_CURVE_EXPONENTIAL, 1, 1) - 1.0f) < 1e-6f &&
		  smx_envelope(SMX_PH_ONSET, SMX_CURVE_EXPONENTIAL, 0.5, 1) <
		  smx_envelope(SMX_PH_ONSET, SMX_CURVE_LINEAR, 0.5, 1),
		  "onset reaches 1; exponential is below linear half way (%.3f < %.3f)",
		  smx_envelope(SMX_PH_ONSET, SMX_CURVE_EXPONENTIAL, 0.5, 1),
		  smx_envelope(SMX_PH_ONSET, SMX_CURVE_LINEAR, 0.5, 1));
	CHECK(smx_envelope(SMX_PH_ONSET, SMX_CURVE_STEP, 0.01, 1) == 1.0f,
		  "a step is at its end level from the first tick");
	CHECK(smx_envelope(SMX_PH_PEAK, SMX_CURVE_SINE, 0.125, 1) > 1.0f &&
		  smx_envelope(SMX_PH_PEAK, SMX_CURVE_SINE, 0.375, 1) < 1.0f &&
		  smx_envelope(SMX_PH_PEAK, SMX_CURVE_LINEAR, 0.375, 1) == 1.0f,
		  "a sine peak wobbles around 1, a linear one holds");
	CHECK(smx_envelope(SMX_PH_RECOVERY, SMX_CURVE_LINEAR, 1, 1) == 0.0f &&
		  fabsf(smx_envelope(SMX_PH_RECOVERY, SMX_CURVE_LINEAR, 0, 0.4f) - 0.4f) < 1e-6f,
		  "recovery falls to 0 from where the run was");
	CHECK(smx_envelope(SMX_PH_COUNT, SMX_CURVE_LINEAR, 0.5, 1) == 0.0f &&
		  smx_envelope(SMX_PH_ONSET, SMX_CURVE_LINEAR, NAN, 1) == SMX_WARNING_LEVEL,
		  "an unknown phase or a NaN progress gives a defined level");
	CHECK(smx_curve_from_name("sine") == SMX_CURVE_SINE && smx_curve_from_name("cubic") == -1,
		  "curves by name");

	/* an overlay acts on its server only, and the model goes on underneath */
	{
		enum
		{
			N = 6, T = 600
		};
		smx_config	cfg;
		smx_tick_ctx ctx;
		smx_params	p[N];
		smx_state	a[N],
					b[N];
		smx_effects leak = {{5, 60, 0, 0}, 2, false};
		smx_effects down = {{0, 0, 0, 0}, 1, true};
		smx_overlay ov[3];
		bool		others_same = true,
					after_same = true,
					critical = false,
					offline_ok = true;
		float		max_mem = 0;
		const char *ids[N] = {"cache-1", "web-1", "web-2", "app-1", "db-1", "lb-1"};
		const int	roles[N] = {SMX_ROLE_CACHE, SMX_ROLE_WEB, SMX_ROLE_WEB, SMX_ROLE_APP,
		SMX_ROLE_DATABASE, SMX_ROLE_LOADBALANCER};

		default_config(&cfg);
		for (int i = 0; i < N; i++)
			smx_params_init(&p[i], ids[i], "loc", (smx_role) roles[i], -1, -1, -1, -1, NET_CAPACITY);
		/* web-1, app-1, db-1 share traffic: an incident must not leak through it */
		smx_params_set_traffic(&p[1], p[1].key);
		smx_params_set_traffic(&p[3], p[1].key);
		smx_params_set_traffic(&p[4], p[1].key);
		smx_prepare_tick(&ctx, &cfg, 0);
		for (int i = 0; i < N; i++)
		{
			smx_state_init(&ctx, &p[i], &a[i]);
			b[i] = a[i];
		}
		for (uint64_t t = 1; t <= T; t++)
		{
			bool		in_run = t >= 100 && t < 300;
			bool		in_down = t >= 150 && t < 250;

			smx_prepare_tick(&ctx, &cfg, t);
			smx_step(&ctx, p, b, N);
			if (in_run)
			{
				smx_overlay_at(&leak, 1.0f, 0.7f, false, &ov[1]);
				smx_overlay_at(&down, 1.0f, 1.0f, true, &ov[2]);
				ctx.overlay = ov;
			}
			a[0].run = in_run ? 1 : 0;
			a[3].run = in_down ? 2 : 0;
			smx_step(&ctx, p, a, N);
			for (int i = 0; i < N; i++)
				if (i != 0 && i != 3 && memcmp(&a[i], &b[i], sizeof(smx_state)) != 0)
					others_same = false;
			if (in_run)
			{
				critical |= a[0].status == SMX_STATUS_CRITICAL;
				if (a[0].memory > max_mem)
					max_mem = a[0].memory;
			}
			if (in_down && (a[3].status != SMX_STATUS_OFFLINE || a[3].cpu != 0 ||
							a[3].network_io != 0))
				offline_ok = false;
			if (t >= 310 &&
				(a[0].cpu != b[0].cpu || a[0].memory != b[0].memory || a[3].cpu != b[3].cpu ||
				 a[3].disk != b[3].disk))
				after_same = false;
		}
		CHECK(others_same, "servers without an incident are bit for bit the run without it, "
			  "sharing traffic with an affected one or not");
		CHECK(critical && max_mem == 100.0f, "a leak of 60 points at 0.7 takes a cache to critical (max %.2f)",
			  max_mem);
		CHECK(offline_ok, "down: offline, cpu 0, network_io 0 for every tick of it");
		CHECK(after_same, "after the incident, the values are the model's own again");
	}
	CHECK(smx_unit_key(1, 2, 3) == smx_unit_key(1, 2, 3) && smx_unit_key(1, 2, 3) != smx_unit_key(2, 2, 3) &&
		  smx_unit_key(1, 2, 3) >= 0 && smx_unit_key(1, 2, 3) < 1,
		  "incident draws are keyed, reproducible and in [0, 1)");
}

int
main(void)
{
	const char *q = getenv("SMX_QUICK");
	uint64_t	ticks;
	long_stats *st;

	quick = q != NULL && *q != '\0' && strcmp(q, "0") != 0;
	ticks = quick ? 20000 : 100000;
	if (quick)
		diag("SMX_QUICK: shortened runs, bounds are tuned for the default length");

	test_parse();
	test_sim_epoch();
	test_roles_params();
	test_reproducibility();
	test_status();
	test_non_finite();
	test_model_v2();
	test_incidents();

	st = malloc(sizeof(long_stats));
	if (st == NULL)
	{
		printf("Bail out! out of memory\n");
		return 2;
	}
	{
		smx_config	cfg;

		default_config(&cfg);
		long_run(&cfg, st, ticks, false);
	}
	test_bounded(st);
	test_mean_reversion();
	test_profiles(st);
	test_utc_offset(st, ticks);
	test_role_noise(st);
	test_correlations(st);
	test_location_correlation();
	free(st);

	printf("1..%d\n", n_checks);
	if (n_failed > 0)
		diag("%d of %d checks failed", n_failed, n_checks);
	return n_failed > 0 ? 1 : 0;
}

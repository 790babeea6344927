/*
 * bench/model_tick.c — the model's cost per server and tick, as a plain
 * program: N servers of the default fleet's roles stepped T ticks of 30 s.
 * bench/model_tick.sh builds it against two versions of src/model.c and
 * runs them in turns. Prints nanoseconds per server-tick.
 *
 * Built with -DSMX_BENCH_DETECT and src/detect.c, it also times the
 * anomaly detector (smx_detect_fleet) over the same servers and ticks,
 * right after each step, and prints its nanoseconds per server-tick too.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "model.h"
#ifdef SMX_BENCH_DETECT
#include "detect.h"
#endif

static double
smx_ns(const struct timespec *a, const struct timespec *b)
{
	return (b->tv_sec - a->tv_sec) * 1e9 + (b->tv_nsec - a->tv_nsec);
}

int
main(int argc, char **argv)
{
	int			n = argc > 1 ? atoi(argv[1]) : 10000;
	int			ticks = argc > 2 ? atoi(argv[2]) : 200;
	smx_params *p = calloc(n, sizeof(smx_params));
	smx_state  *s = calloc(n, sizeof(smx_state));
	smx_config	cfg = {7, 1767571200.0, 30.0, 0.0};	/* 2026-01-05 00:00 UTC */
	smx_tick_ctx ctx;
	struct timespec a,
				b;
	double		checksum = 0;

	if (p == NULL || s == NULL || n <= 0 || ticks <= 0)
		return 2;
	for (int i = 0; i < n; i++)
	{
		char		id[32],
					loc[16];

		snprintf(id, sizeof(id), "srv-%06d", i);
		snprintf(loc, sizeof(loc), "loc-%d", i % 8);
		smx_params_init(&p[i], id, loc, (smx_role) (i % SMX_ROLE_COUNT), -1, -1, -1, -1, 1.25e9);
	}
	smx_prepare_tick(&ctx, &cfg, 0);
	for (int i = 0; i < n; i++)
		smx_state_init(&ctx, &p[i], &s[i]);
#ifdef SMX_BENCH_DETECT
	{
		smx_server_detector *d = calloc(n, sizeof(smx_server_detector));
		struct timespec c;
		double		step_ns = 0,
					detect_ns = 0;

		if (d == NULL)
			return 2;
		for (int t = 1; t <= ticks; t++)
		{
			smx_prepare_tick(&ctx, &cfg, (uint64_t) t);
			clock_gettime(CLOCK_MONOTONIC, &a);
			smx_step(&ctx, p, s, n);
			clock_gettime(CLOCK_MONOTONIC, &b);
			smx_detect_fleet(s, d, n);
			clock_gettime(CLOCK_MONOTONIC, &c);
			step_ns += smx_ns(&a, &b);
			detect_ns += smx_ns(&b, &c);
		}
		for (int i = 0; i < n; i++)
			checksum += s[i].cpu + s[i].anomaly;
		printf("%.2f %.3f %.2f\n", step_ns / ((double) n * ticks), checksum / n,
			   detect_ns / ((double) n * ticks));
		free(d);
	}
#else
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (int t = 1; t <= ticks; t++)
	{
		smx_prepare_tick(&ctx, &cfg, (uint64_t) t);
		smx_step(&ctx, p, s, n);
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	for (int i = 0; i < n; i++)
		checksum += s[i].cpu;
	printf("%.2f %.3f\n", smx_ns(&a, &b) / ((double) n * ticks), checksum / n);
#endif
	free(p);
	free(s);
	return 0;
}

/*
 * detect_test.c — unit tests of the anomaly detector (src/detect.c) and of
 * NAB's scoring (src/nab.c), as an ordinary program under ASan/UBSan and
 * valgrind (make model-check, make model-valgrind).
 *
 * The detector: silent through its warm-up, deaf to missing values, quiet
 * on a noisy periodic series, alarmed by a sustained rise and by a step,
 * one onset per event, a level shift taken as the new normal, an offline
 * server scored 1. NAB: hand-computed cases (a window's first row is worth
 * 1, its last almost 0; only the first alarm in a window counts; a false
 * positive costs fp with no window before it, less right after one;
 * probation; misses), the sweep agreeing with scoring at its threshold.
 * Output is TAP; the exit status is 1 if any check fails.
 */
#include "detect.h"
#include "model.h"
#include "nab.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int	n_checks = 0;
static int	n_failed = 0;

static void check(int ok, const char *fmt,...) __attribute__((format(printf, 2, 3)));

static void
check(int ok, const char *fmt,...)
{
	va_list		ap;

	n_checks++;
	if (!ok)
		n_failed++;
	printf("%s %d - ", ok ? "ok" : "not ok", n_checks);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

/* a noisy periodic series: deterministic, no library RNG */
static double
wave(int i)
{
	return 50.0 + 3.0 * sin(i * 0.9) + 2.0 * cos(i * 0.31) + 0.5 * sin(i * 2.7);
}

static void
test_detector(void)
{
	smx_detector d,
				r;
	float		level,
				max_quiet = 0,
				max_step = 0,
				max_level_quiet = 0,
				max_ramp = 0;
	int			warm_ok = 1,
				onsets = 0;

	memset(&d, 0, sizeof(d));
	memset(&r, 0, sizeof(r));
	for (int i = 0; i < 600; i++)
	{
		/* d: a step of 25 at row 400; r: an incident, up over 10 rows, held 30 */
		double		x = wave(i) + (i >= 400 ? 25.0 : 0.0);
		double		y = wave(i) + (i >= 400 && i < 440 ? 25.0 * fmin(1.0, (i - 399) / 10.0) : 0.0);
		float		on = smx_detect_step(&d, x, &level),
					lr;

		smx_detect_step(&r, y, &lr);
		if (i < SMX_DETECT_WARMUP && (on != 0 || level != 0 || lr != 0))
			warm_ok = 0;
		if (i >= SMX_DETECT_WARMUP && i < 400)
		{
			max_quiet = fmaxf(max_quiet, on);
			max_level_quiet = fmaxf(max_level_quiet, fmaxf(level, lr));
		}
		if (i >= 400 && i < 410)
			max_step = fmaxf(max_step, on);
		if (i >= 400 && i < 440)
			max_ramp = fmaxf(max_ramp, lr);
		if (i >= 400 && on > 0.5f * max_step && on > 0)
			onsets++;
	}
	check(warm_ok, "nothing scores in the warm-up (%d rows)", SMX_DETECT_WARMUP);
	check(max_level_quiet < 0.5f, "a noisy periodic series: level at most %.3f", max_level_quiet);
	check(max_ramp >= 0.9f, "an incident of +25 over 10 rows, held: level %.3f", max_ramp);
	check(max_step > 2 * max_quiet, "a step's onset (%.4f) stands out of the quiet ones (%.4f)", max_step, max_quiet);
	check(onsets <= 2, "one event, one onset (%d rows near the peak)", onsets);
	/* the step held: taken as the new level, the score falls back */
	check(level < 0.2f, "200 rows after the step: level %.3f (the new normal)", level);

	/* missing values are skipped and leave the state as it was */
	{
		smx_detector before = d;

		check(smx_detect_step(&d, NAN, &level) == 0 && level == 0, "NaN scores 0");
		check(smx_detect_step(&d, INFINITY, NULL) == 0, "infinity scores 0");
		check(smx_detect_step(&d, 1e300, NULL) == 0, "a double beyond float's range scores 0");
		check(memcmp(&before, &d, sizeof(d)) == 0, "and none of them changes the state");
	}
	/* a flat series has no scale: no division by zero, no alarm */
	{
		smx_detector f;
		float		worst = 0;

		memset(&f, 0, sizeof(f));
		for (int i = 0; i < 300; i++)
		{
			smx_detect_step(&f, 7.0, &level);
			worst = fmaxf(worst, level);
		}
		check(worst == 0 && isfinite(f.scale), "a flat series: level 0, a finite scale");
		smx_detect_step(&f, 8.0, &level);
		check(level > 0 && level <= 1, "then a change of 1: level %.3f in (0, 1]", level);
	}
}

static void
test_fleet(void)
{
	smx_state	s[2];
	smx_server_detector d[2];
	int			rising = 0;

	memset(s, 0, sizeof(s));
	memset(d, 0, sizeof(d));
	for (int t = 0; t < 300; t++)
	{
		for (int i = 0; i < 2; i++)
		{
			s[i].cpu = (float) wave(t + 17 * i);
			s[i].memory = 40.0f;
			s[i].disk = 50.0f + 0.001f * t;
			s[i].network = 20.0f + (float) sin(t * 0.2);
			s[i].response_ms = 30.0f;
			s[i].status = SMX_STATUS_ONLINE;
		}
		if (t >= 200)
		{
			s[0].memory = 40.0f + 0.4f * (t - 200);	/* a leak */
			s[1].status = SMX_STATUS_OFFLINE;
		}
		smx_detect_fleet(s, d, 2);
		if (t >= 200 && s[0].anomaly >= 0.9f && s[0].anomaly_signal == 1)
			rising++;
	}
	check(rising > 50, "a memory leak: over 0.9 on memory_usage for %d of 100 ticks", rising);
	check(s[1].anomaly == 1.0f && s[1].anomaly_signal == SMX_DETECT_OFFLINE,
		  "an offline server scores 1 on \"%s\"", smx_detect_signal_names[s[1].anomaly_signal]);
	check(sizeof(smx_server_detector) <= 1024, "a server's detector: %zu bytes", sizeof(smx_server_detector));
}

/* ---- NAB ---- */

static double
nab_sig(double y)
{
	return y > 3.0 ? -1.0 : 2.0 / (1.0 + exp(5.0 * y)) - 1.0;
}

static void
test_nab(void)
{
	int64_t		ts[100];
	double		sc[100];
	int64_t		ws[2] = {40, 200},
				we[2] = {49, 210};
	SmxNabSeries s = {100, ts, sc, 0, 1, ws, we};
	SmxNabSeries two[2];
	SmxNabResult r;
	int64_t		delays[4];
	size_t		nd;
	const SmxNabCosts *std = &smx_nab_profiles[0];

	for (int i = 0; i < 100; i++)
	{
		ts[i] = i;
		sc[i] = 0;
	}
	check(smx_nab_probation(1000) == 150 && smx_nab_probation(10000) == 750,
		  "probation: 15%%, at most 750 rows");

	sc[40] = 1;
	smx_nab_score_at(&s, 1, std, 0.5, &r, delays, &nd);
	check(fabs(r.raw - 1.0) < 1e-12 && fabs(r.normalised - 100) < 1e-9,
		  "an alarm at a window's first row: worth 1, normalised 100 (%.6f)", r.normalised);
	check(nd == 1 && delays[0] == 0, "its delay: 0");
	sc[40] = 0;
	sc[49] = 1;
	smx_nab_score_at(&s, 1, std, 0.5, &r, NULL, NULL);
	check(fabs(r.raw - nab_sig(-0.1) / nab_sig(-1.0)) < 1e-12,
		  "at its last row: worth sigmoid(-0.1)/sigmoid(-1) = %.6f", r.raw);
	sc[45] = 1;
	smx_nab_score_at(&s, 1, std, 0.5, &r, delays, &nd);
	check(fabs(r.raw - nab_sig(-0.5) / nab_sig(-1.0)) < 1e-12 && r.tp_windows == 1 && delays[0] == 5,
		  "two alarms in a window: only the first counts (%.6f), delay 5", r.raw);
	sc[45] = sc[49] = 0;
	sc[10] = 1;
	smx_nab_score_at(&s, 1, std, 0.5, &r, NULL, NULL);
	check(fabs(r.raw - (-0.11 - 1.0)) < 1e-12 && r.fp_rows == 1 && r.fn_windows == 1,
		  "a false alarm with no window before it costs fp (0.11), the miss fn: %.6f", r.raw);
	sc[10] = 0;
	sc[52] = 1;
	smx_nab_score_at(&s, 1, std, 0.5, &r, NULL, NULL);
	check(fabs(r.raw - (0.11 * nab_sig(3.0 / 9.0) - 1.0)) < 1e-12,
		  "3 rows after a window of 10: fp x sigmoid(3/9) = %.6f", r.raw + 1.0);
	sc[53] = 1;
	smx_nab_score_at(&s, 1, std, 0.5, &r, NULL, NULL);
	check(r.fp_rows == 2 && r.fp_events == 1, "two false alarms in a row: 2 rows, one onset");
	sc[52] = sc[53] = 0;
	s.probation = 50;
	sc[10] = 1;
	sc[45] = 1;
	smx_nab_score_at(&s, 1, std, 0.5, &r, NULL, NULL);
	check(r.fp_rows == 0 && r.fn_windows == 0 && r.skipped_windows == 1,
		  "alarms in the probation are ignored; a window inside it is not scored");
	s.probation = 0;

	/* the sweep: 45 alone (the 0.9 at row 80 is a false alarm) */
	sc[10] = 0;
	sc[80] = 0.9;
	check(smx_nab_sweep(&s, 1, std, &r) == 0 && r.threshold == 1.0 && r.fp_rows == 0,
		  "the sweep takes threshold 1, leaving the false alarm out");
	/* a second series with a window it never reaches: a miss */
	two[0] = s;
	two[1] = s;
	two[1].nwindows = 2;
	smx_nab_sweep(two, 2, std, &r);
	check(r.tp_windows == 2 && r.fn_windows == 0 && r.skipped_windows == 1 &&
		  fabs(r.perfect_raw - 3) < 1e-12 && fabs(r.null_raw + 2) < 1e-12,
		  "a window past a series' end has no row: not scored, but counted in perfect");
	/* never alarming beats alarming only falsely */
	memset(sc, 0, sizeof(sc));
	sc[5] = 1;
	check(smx_nab_sweep(&s, 1, std, &r) == 0 && isinf(r.threshold) && r.normalised == 0,
		  "only false alarms: the best is never alarming (threshold infinity, score 0)");
	/* bad windows */
	{
		int64_t		bs[2] = {40, 45},
					be[2] = {49, 60};
		SmxNabSeries bad = {100, ts, sc, 0, 2, bs, be};

		check(smx_nab_sweep(&bad, 1, std, &r) == -1, "overlapping windows are refused");
	}
	/* an empty corpus */
	check(smx_nab_sweep(NULL, 0, std, &r) == 0 && isnan(r.normalised), "no series: no score (NaN)");
}

int
main(void)
{
	test_detector();
	test_fleet();
	test_nab();
	printf("1..%d\n", n_checks);
	if (n_failed)
		printf("# %d of %d checks failed\n", n_failed, n_checks);
	return n_failed ? 1 : 0;
}

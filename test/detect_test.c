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
#include "tap.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* a noisy periodic series: deterministic, no library RNG */
static double
wave(int i)
{
	return 50.0 + 3.0 * sin(i * 0.9) + 2.0 * cos(i * 0.31) + 0.5 * sin(i * 2.7);
}

/* a row's time: five minutes apart, as most of NAB's series */
#define ROW_SECONDS 300

static void
test_detector(void)
{
	smx_series_detector *d = calloc(1, sizeof(smx_series_detector)),
			   *r = calloc(1, sizeof(smx_series_detector));
	float		level,
				max_quiet = 0,
				max_step = 0,
				max_level_quiet = 0,
				max_ramp = 0;
	int			warm_ok = 1,
				onsets = 0;
	const int	step_at = 2000;

	for (int i = 0; i < step_at + 200; i++)
	{
		/* d: a step of 25 at step_at; r: an incident, up over 10 rows, held 30 */
		double		x = wave(i) + (i >= step_at ? 25.0 : 0.0);
		double		y = wave(i) + (i >= step_at && i < step_at + 40 ? 25.0 * fmin(1.0, (i - step_at + 1) / 10.0) : 0.0);
		float		on = smx_series_step(d, (int64_t) i * ROW_SECONDS, x, &level),
					lr;

		smx_series_step(r, (int64_t) i * ROW_SECONDS, y, &lr);
		if (i < SMX_DETECT_WARMUP && (on != 0 || level != 0 || lr != 0))
			warm_ok = 0;
		/* the quiet rows once the ranks have a day of the past (288 rows) */
		if (i >= 288 && i < step_at)
		{
			max_quiet = fmaxf(max_quiet, on);
			max_level_quiet = fmaxf(max_level_quiet, fmaxf(level, lr));
		}
		if (i >= step_at && i < step_at + 10)
			max_step = fmaxf(max_step, on);
		if (i >= step_at && i < step_at + 40)
			max_ramp = fmaxf(max_ramp, lr);
		if (i >= step_at && on > 0.5f * max_step && on > 0)
			onsets++;
	}
	check(warm_ok, "nothing scores in the warm-up (%d rows)", SMX_DETECT_WARMUP);
	check(max_level_quiet < 0.5f, "a noisy periodic series: level at most %.3f", max_level_quiet);
	check(max_ramp >= 0.9f, "an incident of +25 over 10 rows, held: level %.3f", max_ramp);
	check(max_step >= 0.5f, "a step's onset: %.4f", max_step);
	check(max_step > 2 * max_quiet, "stands out of the quiet rows' (%.4f)", max_quiet);
	check(onsets <= 2, "one event, one onset (%d rows near the peak)", onsets);
	/* the step held: taken as the new level, the score falls back */
	check(level < 0.2f, "200 rows after the step: level %.3f (the new normal)", level);

	/* missing values are skipped and leave the state as it was */
	{
		smx_series_detector *before = malloc(sizeof(smx_series_detector));

		memcpy(before, d, sizeof(*d));
		check(smx_series_step(d, 0, NAN, &level) == 0 && level == 0, "NaN scores 0");
		check(smx_series_step(d, 0, INFINITY, NULL) == 0, "infinity scores 0");
		check(smx_series_step(d, 0, 1e300, NULL) == 0, "a double beyond float's range scores 0");
		check(memcmp(before, d, sizeof(*d)) == 0, "and none of them changes the state");
		free(before);
	}
	/* a flat series has no scale: no division by zero, no alarm */
	{
		smx_series_detector *f = calloc(1, sizeof(smx_series_detector));
		float		worst = 0,
					worst_on = 0;

		for (int i = 0; i < 300; i++)
		{
			worst_on = fmaxf(worst_on, smx_series_step(f, (int64_t) i * ROW_SECONDS, 7.0, &level));
			worst = fmaxf(worst, level);
		}
		check(worst == 0 && worst_on < 0.05f && isfinite(f->core.scale), "a flat series: level 0, onset %.4f, a finite scale", worst_on);
		worst_on = smx_series_step(f, 300 * ROW_SECONDS, 8.0, &level);
		check(level > 0 && level <= 1 && worst_on > 0.5f,
			  "then a change of 1: level %.3f in (0, 1], onset %.3f", level, worst_on);
		free(f);
	}
	/* a daily shape broken: the same values, at the wrong time of day */
	{
		smx_series_detector *s = calloc(1, sizeof(smx_series_detector));
		float		quiet = 0,
					broken = 0;
		const int	day = 86400 / ROW_SECONDS;

		for (int i = 0; i < 12 * day; i++)
		{
			int			h = i % day;
			/* busy from 08:00 to 20:00, idle at night; on day 11 busy all night */
			double		x = (h >= day / 3 && h < 5 * day / 6) || (i >= 11 * day && i < 11 * day + day / 3) ? 80.0 : 20.0;
			float		on = smx_series_step(s, (int64_t) i * ROW_SECONDS, x + 0.5 * sin(i * 0.7), NULL);

			if (i >= 3 * day && i < 11 * day)
				quiet = fmaxf(quiet, on);
			else if (i >= 11 * day)
				broken = fmaxf(broken, on);
		}
		check(broken >= 0.5f && broken > 2 * quiet,
			  "a night as busy as the day: onset %.3f, days 4-11 at most %.3f", broken, quiet);
		free(s);
	}
	/* the lazy decay of the ranks is renormalised: no overflow on a long series */
	{
		smx_series_detector *s = calloc(1, sizeof(smx_series_detector));
		int			finite = 1;

		for (int i = 0; i < 600000; i++)
		{
			float		on = smx_series_step(s, (int64_t) i * 30, wave(i), NULL);

			if (!isfinite(on) || !isfinite(s->gain))
				finite = 0;
		}
		check(finite && s->gain >= 1.0 && s->gain < 1e101, "600,000 rows: every onset finite, the rank weight bounded (%.3g)", s->gain);
		free(s);
	}
	free(d);
	free(r);
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
	check(sizeof(smx_server_detector) == 180, "5 signals of 36 bytes (the README says so)");
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
	return tap_done();
}

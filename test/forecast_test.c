/*
 * forecast_test.c — unit tests of the forecaster (src/forecast.c), as an
 * ordinary program under ASan/UBSan and valgrind (make model-check, make
 * model-valgrind).
 *
 * Synthetic series with a known truth: a daily curve with noise and a
 * trend is forecast close to its truth and better than the value a day
 * before; a disk that grows and gives most of it back at its rotation hour
 * is forecast to drop at that hour; an incident on one day, marked or not,
 * does not bend the profile; the intervals are ordered, bounded and cover
 * about what they say on Gaussian noise; too little history is refused and
 * says how much there was; gaps are fine; a weekend lower and flatter
 * than the weekdays is forecast across Friday to Saturday and Sunday to
 * Monday once the history holds two weekends, and not before; a level that
 * walks from day to day is carried more often than one drawn afresh each
 * day, whatever horizon is asked for. Output is TAP; the exit status
 * is 1 if any check fails.
 */
#define _POSIX_C_SOURCE 200809L

#include "forecast.h"
#include "tap.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PI		3.14159265358979323846


#define TEST_RNG_SEED	42
#include "rng.h"

#define STEP	60.0			/* one sample a minute */
#define DAY		1440
#define T0		(1767571200.0)	/* 2026-01-05 00:00 UTC */

static double
curve(double t)
{
	return 40.0 + 15.0 * sin(2 * PI * (t / 86400.0 - 0.3)) + 2.0 * (t - T0) / 86400.0 / 14.0;
}

static void
fit_ok(const float *y, const uint8_t *ex, int n, double t_last, double ahead, float lo, float hi,
	   smx_fc_model *m)
{
	void	   *work = malloc(smx_fc_work_size(n, STEP));

	if (smx_fc_fit(y, ex, n, STEP, t_last, ahead, lo, hi, work, m) != 0)
		check(0, "fit refused");
	free(work);
}

static void
test_daily(void)
{
	int			n = 14 * DAY;
	float	   *y = malloc(sizeof(float) * n);
	double		t_last = T0 + (n - 1) * STEP;
	smx_fc_model m;
	double		err = 0,
				naive = 0;
	int			in80 = 0,
				in95 = 0,
				ordered = 1,
				k = 0;

	for (int i = 0; i < n; i++)
		y[i] = (float) (curve(T0 + i * STEP) + gauss());
	fit_ok(y, NULL, n, t_last, 86400.0, 0.0f, 100.0f, &m);
	/* the truth ahead, and fresh noise around it for the coverage */
	for (int h = 1; h <= DAY; h++)
	{
		float		o[5];
		double		truth = curve(t_last + h * STEP);
		double		obs = truth + gauss();

		smx_fc_at(&m, h * STEP, o);
		err += fabs(o[0] - truth);
		naive += fabs(y[n - 1 - DAY + h] - truth);
		in80 += obs >= o[1] && obs <= o[2];
		in95 += obs >= o[3] && obs <= o[4];
		ordered &= o[3] <= o[1] && o[1] <= o[0] && o[0] <= o[2] && o[2] <= o[4];
		k++;
	}
	err /= k;
	naive /= k;
	check(err < 0.35, "a daily curve with noise (sd 1): mean error %.3f over a day ahead", err);
	check(err < 0.5 * naive, "half the error of the value a day before (%.3f)", naive);
	check(fabs(m.slope * 86400.0 - 2.0 / 14.0) < 0.05, "the trend: %.4f a day (truth %.4f)", m.slope * 86400.0, 2.0 / 14.0);
	check(ordered, "lo_95 <= lo_80 <= forecast <= hi_80 <= hi_95 at every horizon");
	{
		int			profile = 0;

		for (int j = 0; j < m.nq; j++)
			profile += m.src[j] == 0;
		check(profile == m.nq, "no change of regime: the profile's forecast at %d of %d horizons", profile, m.nq);
	}
	check(in80 > 0.70 * k && in80 < 0.90 * k, "80 %% interval: %.1f %% of fresh samples", 100.0 * in80 / k);
	check(in95 > 0.88 * k && in95 < 0.99 * k, "95 %% interval: %.1f %%", 100.0 * in95 / k);
	free(y);
}

/* a disk: +3 points a day evenly, 80 % of the day's growth freed at 02:00 */
static void
test_disk(void)
{
	int			n = 14 * DAY;
	float	   *y = malloc(sizeof(float) * n);
	double		disk = 50,
				accum = 0,
				t_last = T0 + 10 * 3600.0 + (n - 1) * STEP;	/* ends at 10:00 + 13 days 23:59 */
	smx_fc_model m;
	float		before[5],
				after[5];
	double		rot = 0;

	for (int i = 0; i < n; i++)
	{
		double		t = t_last - (n - 1 - i) * STEP;

		disk += 3.0 / DAY;
		accum += 3.0 / DAY;
		if (fmod(t, 86400.0) == 2 * 3600.0)
		{
			disk -= 0.8 * accum;
			accum = 0;
		}
		y[i] = (float) disk;
	}
	fit_ok(y, NULL, n, t_last, 86400.0, 0.0f, 100.0f, &m);
	/* the next 02:00 is 16 hours after 09:59 */
	rot = 86400.0 + 2 * 3600.0 - fmod(t_last, 86400.0);
	smx_fc_at(&m, rot - 600.0, before);
	smx_fc_at(&m, rot + 600.0, after);
	check(before[0] - after[0] > 1.5, "the disk drops at its rotation hour: %.2f before, %.2f after", before[0], after[0]);
	check(fabs(m.slope * 86400.0 - 0.6) < 0.05, "what a day keeps: %.3f points (truth 0.6)", m.slope * 86400.0);
	{
		float		o[5];

		smx_fc_at(&m, 86400.0, o);
		check(fabs(o[0] - (y[n - 1] + 0.6)) < 0.3, "a day ahead: %.2f (truth %.2f)", o[0], y[n - 1] + 0.6);
	}
	free(y);
}

/*
 * A straight line at 30 s samples, the last one mid-slot: the slot that
 * holds its time of day is split between the two ends of every day, a day
 * apart; each sample is brought to the last one's level by its own time.
 */
static void
test_trend_midslot(void)
{
	int			n = 14 * 2880;
	float	   *y = malloc(sizeof(float) * n);
	void	   *work = malloc(smx_fc_work_size(n, 30.0));
	double		t_last = T0 + (n - 1) * 30.0 + 150.0;
	smx_fc_model m;
	float		worst = 0,
				width = 0;

	for (int i = 0; i < n; i++)
		y[i] = (float) (50.0 + 0.3 * (t_last - (n - 1 - i) * 30.0 - T0) / 86400.0);
	smx_fc_fit(y, NULL, n, 30.0, t_last, 86400.0, 0, 100, work, &m);
	for (int h = 1; h <= 2880; h += 13)
	{
		float		o[5];
		double		truth = 50.0 + 0.3 * (t_last + h * 30.0 - T0) / 86400.0;

		smx_fc_at(&m, h * 30.0, o);
		worst = fmaxf(worst, fabsf((float) (o[0] - truth)));
		width = fmaxf(width, o[4] - o[3]);
	}
	check(worst < 0.002 && width < 0.01,
		  "a line of 0.3 a day, the last sample mid-slot: off by at most %.4f, 95 %% interval %.4f wide", worst, width);
	free(y);
	free(work);
}

/* an incident: one day +40 for 6 hours, marked excluded or not */
static void
test_incident(void)
{
	int			n = 14 * DAY;
	float	   *y = malloc(sizeof(float) * n),
			   *z = malloc(sizeof(float) * n);
	uint8_t    *ex = calloc(n, 1);
	double		t_last = T0 + (n - 1) * STEP;
	smx_fc_model clean,
				marked,
				unmarked;
	float		worst_m = 0,
				worst_u = 0;

	rng_state = 7;
	for (int i = 0; i < n; i++)
		y[i] = z[i] = (float) (curve(T0 + i * STEP) + gauss());
	for (int i = 5 * DAY + 600; i < 5 * DAY + 960; i++)
	{
		z[i] += 40.0f;
		ex[i] = 1;
	}
	fit_ok(y, NULL, n, t_last, 86400.0, -1e9f, 1e9f, &clean);
	fit_ok(z, ex, n, t_last, 86400.0, -1e9f, 1e9f, &marked);
	fit_ok(z, NULL, n, t_last, 86400.0, -1e9f, 1e9f, &unmarked);
	for (int s = 0; s < SMX_FC_SLOTS; s++)
	{
		worst_m = fmaxf(worst_m, fabsf(marked.profile[s] - clean.profile[s]));
		worst_u = fmaxf(worst_u, fabsf(unmarked.profile[s] - clean.profile[s]));
	}
	check(worst_m < 0.6, "an incident marked: the profile moves at most %.3f", worst_m);
	check(worst_u < 1.0, "unmarked, the median still holds it: at most %.3f (the incident was +40)", worst_u);
	free(y);
	free(z);
	free(ex);
}

/* a daily curve, lower and flatter on Saturdays and Sundays (UTC) */
static double
weekly_curve(double t)
{
	int			dow = (int) (((long) floor(t / 86400.0) % 7 + 7 + 4) % 7);	/* 0 = Sunday */
	double		amp = dow == 0 || dow == 6 ? 7.0 : 15.0;
	double		base = dow == 0 || dow == 6 ? 28.0 : 40.0;

	return base + amp * sin(2 * PI * (t / 86400.0 - 0.3));
}

/* mean error over the calendar day that starts `from` seconds after t_last */
static double
weekly_error(double days, double t_last, int *weekly)
{
	int			n = (int) (days * DAY) + 1;
	float	   *y = malloc(sizeof(float) * n);
	smx_fc_model m;
	double		err = 0;
	double		from = 86400.0 - fmod(t_last, 86400.0);

	for (int i = 0; i < n; i++)
		y[i] = (float) (weekly_curve(t_last - (n - 1 - i) * STEP) + gauss());
	fit_ok(y, NULL, n, t_last, from + 86400.0, 0, 100, &m);
	for (int h = 0; h < DAY; h++)
	{
		float		o[5];

		smx_fc_at(&m, from + h * STEP, o);
		err += fabs(o[0] - weekly_curve(t_last + from + h * STEP));
	}
	*weekly = m.weekly;
	free(y);
	return err / DAY;
}

/*
 * Weekends: with three weeks of history the next day's forecast holds
 * whether it is a weekend or not; with one week (fewer than three weekend
 * days) the forecaster falls back to the daily profile alone, and misses.
 */
static void
test_weekly(void)
{
	double		fri = T0 + 18 * 86400.0 + 18 * 3600.0;	/* Friday 18:00, the third week */
	double		sun = T0 + 20 * 86400.0 + 18 * 3600.0;	/* Sunday 18:00 */
	int			wk3,
				wk1;
	double		e3 = weekly_error(18.75, fri, &wk3),
				e1 = weekly_error(4.75, fri, &wk1);

	check(wk3 && !wk1, "weekly with 18.75 days (4 weekend days), daily only with 4.75 (none)");
	check(e3 < 1.0 && e3 < e1 / 4, "Friday evening to Saturday: mean error %.2f (daily only %.2f)", e3, e1);
	e3 = weekly_error(20.75, sun, &wk3);
	e1 = weekly_error(6.75, sun, &wk1);
	check(wk3 && !wk1, "weekly with 20.75 days (6 weekend days), daily only with 6.75 (1.75)");
	check(e3 < 1.0 && e3 < e1 / 4, "Sunday evening to Monday: mean error %.2f (daily only %.2f)", e3, e1);
}

/*
 * A change of regime: for the first 8 of 14 days a burst of +30 fills the
 * slots at :05 and :55 of every hour, then stops, and 40 wild samples of
 * 1e5 come since. The profile's median over days still holds the bursts;
 * the last days' cells do not, and their past errors say so, so the
 * forecast follows them. The wild samples are everyone's errors alike: only
 * the cap on an error keeps them from drowning the difference (without it
 * the profile's forecast stays, 27 off).
 */
static void
test_regime(void)
{
	int			n = 14 * DAY;
	float	   *y = malloc(sizeof(float) * n);
	double		t_last = T0 + (n - 1) * STEP;
	smx_fc_model m;
	double		worst = 0;
	int			recent = 0;

	rng_state = 5;
	for (int i = 0; i < n; i++)
	{
		int			minute = i % 60;

		y[i] = (float) (curve(T0 + i * STEP) + gauss());
		if (i < 8 * DAY && ((minute >= 5 && minute < 10) || minute >= 55))
			y[i] += 30.0f;
	}
	/* and wild samples of 1e5 in the last 3 days, which must not decide the choice */
	for (int j = 1; j <= 40; j++)
		y[n - 1 - j * 97] = 1e5f;
	fit_ok(y, NULL, n, t_last, 86400.0, 0.0f, 1e6f, &m);
	for (int h = 1; h <= 6 * 60; h++)
	{
		float		o[5];

		smx_fc_at(&m, h * STEP, o);
		worst = fmax(worst, fabs(o[0] - curve(t_last + h * STEP)));
	}
	for (int k = 0; k < m.nq; k++)
		recent += m.src[k] != 0;
	check(worst < 4.0, "bursts that stopped 6 days ago, 40 wild samples of 1e5 since: the next 6 hours off by at most %.2f (the bursts were +30)", worst);
	check(recent > 0, "the recent days' forecast at %d of %d horizons", recent, m.nq);
	free(y);
}

/*
 * How long today's level lasts is the series' own: where each day's level
 * is the day before's plus a step (a random walk: a real series' shifts),
 * the level is often carried; where each day's is drawn afresh around the
 * profile (the fleet's "today runs high"), it seldom is. A week of errors
 * tells the two apart only where the walk has moved away from its median,
 * so this counts choices over 30 series of each kind (fixed seeds), and
 * pools the walks' errors a day ahead against the same forecasts with the
 * one-day fade. The choice is the same whatever horizon a call asks for.
 */
static int
level_lasts(int walk, uint64_t seed, double *err, double *err_day, int *same)
{
	int			n = 14 * DAY;
	float	   *y = malloc(sizeof(float) * n);
	double		t_last = T0 + (n - 1) * STEP;
	double		lev = 0;
	smx_fc_model m,
				short_call;
	int			lasts;

	rng_state = seed;
	for (int i = 0; i < n; i++)
	{
		if (i % DAY == 0)
			lev = walk ? lev + 6.0 * gauss() : 6.0 * gauss();
		y[i] = (float) (curve(T0 + i * STEP) + lev + gauss());
	}
	fit_ok(y, NULL, n, t_last, 86400.0, -1e6f, 1e6f, &m);
	fit_ok(y, NULL, n, t_last, 3600.0, -1e6f, 1e6f, &short_call);
	*same &= short_call.fade == m.fade;
	lasts = m.fade > 86400.0f;
	/* the truth a day ahead: the curve at today's level (walk) or at 0 */
	for (int pass = 0; pass < 2; pass++)
	{
		for (int h = 1; h <= DAY; h++)
		{
			float		o[5];

			smx_fc_at(&m, h * STEP, o);
			*(pass ? err_day : err) += fabs(o[0] - (curve(t_last + h * STEP) + (walk ? lev : 0.0)));
		}
		m.fade = 86400.0f;
	}
	free(y);
	return lasts;
}

static void
test_level_lasts(void)
{
	int			walk_lasts = 0,
				fresh_lasts = 0,
				same = 1;
	double		e = 0,
				e_day = 0,
				f = 0,
				f_day = 0;

	for (int s = 1; s <= 30; s++)
	{
		walk_lasts += level_lasts(1, (uint64_t) s, &e, &e_day, &same);
		fresh_lasts += level_lasts(0, (uint64_t) (1000 + s), &f, &f_day, &same);
	}
	check(walk_lasts >= 10, "days' levels as a random walk: the level lasts in %d of 30 series", walk_lasts);
	check(fresh_lasts <= 5 && 3 * fresh_lasts < walk_lasts,
		  "days' levels drawn afresh: it lasts in %d of 30 (the walks %d)", fresh_lasts, walk_lasts);
	check(e < e_day, "the walks a day ahead: mean error %.3f, %.3f with the one-day fade (afresh: %.3f, %.3f)",
		  e / (30.0 * DAY), e_day / (30.0 * DAY), f / (30.0 * DAY), f_day / (30.0 * DAY));
	check(same, "the choice is the same for a call an hour ahead and one a day ahead");
}

static void
test_edges(void)
{
	int			n = 14 * DAY;
	float	   *y = malloc(sizeof(float) * n);
	void	   *work = malloc(smx_fc_work_size(n, STEP));
	smx_fc_model m;
	double		t_last = T0 + (n - 1) * STEP;
	float		o[5];
	int			bounded = 1,
				r;

	/* a day and a quarter of samples, the rest missing */
	for (int i = 0; i < n; i++)
		y[i] = i >= n - DAY * 5 / 4 ? (float) curve(T0 + i * STEP) : NAN;
	r = smx_fc_fit(y, NULL, n, STEP, t_last, 3600.0, 0, 100, work, &m);
	check(r == -1 && m.days == 1, "a day and a quarter of samples: refused, %.0f usable day", m.days);
	/* a day and a half: the second day has half its slots, enough */
	for (int i = 0; i < n; i++)
		y[i] = i >= n - DAY * 3 / 2 ? (float) curve(T0 + i * STEP) : NAN;
	r = smx_fc_fit(y, NULL, n, STEP, t_last, 3600.0, 0, 100, work, &m);
	check(r == 0 && m.days == 2, "a day and a half: fitted on %.0f usable days", m.days);
	/* gaps: every other hour missing for a week */
	for (int i = 0; i < n; i++)
		y[i] = (i / 60) % 2 && i < 7 * DAY ? NAN : (float) curve(T0 + i * STEP);
	check(smx_fc_fit(y, NULL, n, STEP, t_last, 3600.0, 0, 100, work, &m) == 0, "a week with every other hour missing: fitted");
	smx_fc_at(&m, 3600.0, o);
	check(fabs(o[0] - curve(t_last + 3600.0)) < 0.5, "an hour ahead: %.2f (truth %.2f)", o[0], curve(t_last + 3600.0));
	/* an hourly series: a day has 24 samples, and counts */
	{
		int			nh = 14 * 24;
		float	   *yh = malloc(sizeof(float) * nh);
		void	   *wh = malloc(smx_fc_work_size(nh, 3600.0));

		for (int i = 0; i < nh; i++)
			yh[i] = (float) curve(T0 + i * 3600.0);
		r = smx_fc_fit(yh, NULL, nh, 3600.0, T0 + (nh - 1) * 3600.0, 86400.0, 0, 100, wh, &m);
		smx_fc_at(&m, 6 * 3600.0, o);
		check(r == 0 && m.days >= 13 && fabs(o[0] - curve(T0 + (nh - 1 + 6) * 3600.0)) < 1.0,
			  "an hourly series: %.0f usable days, 6 hours ahead %.2f (truth %.2f)", m.days, o[0],
			  curve(T0 + (nh - 1 + 6) * 3600.0));
		free(yh);
		free(wh);
	}
	/* an infinity among the samples is no sample */
	y[n / 2] = INFINITY;
	r = smx_fc_fit(y, NULL, n, STEP, t_last, 3600.0, 0, 100, work, &m);
	smx_fc_at(&m, 3600.0, o);
	check(r == 0 && isfinite(o[0]) && isfinite(o[4]), "an infinite sample is skipped: forecast %.2f", o[0]);
	/* bounds: a series at 99 with noise never forecasts past 100 */
	rng_state = 11;
	for (int i = 0; i < n; i++)
		y[i] = (float) (99.0 + 2.0 * gauss());
	smx_fc_fit(y, NULL, n, STEP, t_last, 86400.0, 0, 100, work, &m);
	for (int h = 1; h <= DAY; h += 7)
	{
		smx_fc_at(&m, h * STEP, o);
		for (int j = 0; j < 5; j++)
			bounded &= o[j] >= 0 && o[j] <= 100;
	}
	check(bounded, "forecasts and intervals stay within 0..100");
	/* no sample at all, or nonsense arguments */
	for (int i = 0; i < n; i++)
		y[i] = NAN;
	r = smx_fc_fit(y, NULL, n, STEP, t_last, 3600.0, 0, 100, work, &m);
	check(r == -1 && m.days == 0, "no samples: refused");
	check(smx_fc_fit(y, NULL, 1, STEP, t_last, 3600.0, 0, 100, work, &m) == -1, "one sample: refused");
	/* the cost the README states: 14 days of 30 s samples */
	{
		int			n30 = 14 * 2880;
		float	   *y30 = malloc(sizeof(float) * n30);
		void	   *w30 = malloc(smx_fc_work_size(n30, 30.0));
		struct timespec a,
					b;

		for (int i = 0; i < n30; i++)
			y30[i] = (float) (curve(T0 + i * 30.0) + gauss());
		clock_gettime(CLOCK_MONOTONIC, &a);
		smx_fc_fit(y30, NULL, n30, 30.0, T0 + (n30 - 1) * 30.0, 86400.0, 0, 100, w30, &m);
		clock_gettime(CLOCK_MONOTONIC, &b);
		printf("# fit of 40,320 samples: %.2f ms, %zu kB of working memory\n",
			   (b.tv_sec - a.tv_sec) * 1e3 + (b.tv_nsec - a.tv_nsec) / 1e6, smx_fc_work_size(n30, 30.0) / 1024);
		free(y30);
		free(w30);
	}
	free(y);
	free(work);
}

int
main(void)
{
	test_daily();
	test_disk();
	test_trend_midslot();
	test_incident();
	test_weekly();
	test_regime();
	test_level_lasts();
	test_edges();
	return tap_done();
}

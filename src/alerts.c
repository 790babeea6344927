/*
 * alerts.c — predicted threshold crossings (see alerts.h).
 *
 * Two ways a climb is believed, each a set of gates:
 *
 * The steady climb (a full disk, a leak's late phase):
 *  - the last SMX_ALERT_FIT_SECONDS (else the last
 *    SMX_ALERT_SHORT_SECONDS, when the longer span holds a bend: a GC
 *    drop, a disk's warning phase giving way to its faster onset) fit a
 *    line whose slope is at least ALERT_MIN_T standard errors: noise and
 *    the wander revert, so their slopes are not that sure;
 *  - the line's value now is ALERT_NEW_HIGH points above every earlier
 *    sample of the window: a GC sawtooth climbs to where it was before, a
 *    burst has been there minutes ago;
 *  - the crossing is within ALERT_REACH times the fit span: a daily ramp
 *    is steady and new, but slow; and within the horizon;
 *  - what is still to go to the threshold is at most ALERT_REST times
 *    what the line rose above the earlier samples: a scenario's envelope
 *    that lifts a metric by a few points is not extrapolated to tens.
 *
 * The fast climb (a leak's or a full disk's first minutes, when a
 * 7.5-minute line still holds the flat before them):
 *  - the last SMX_ALERT_FAST_SECONDS fit a line of at least ALERT_MIN_T
 *    standard errors whose rise a sample is ALERT_FAST_PACE times the
 *    series' mean move a sample before the span: a memory or disk that
 *    barely moves and now climbs points a minute, where cpu and network,
 *    which jump by bursts all the time, seldom qualify;
 *  - at least ALERT_FAST_UP of its steps go up: a burst jumps once and
 *    then decays;
 *  - ALERT_FAST_NEW_HIGH points above every earlier sample, and at most
 *    ALERT_FAST_REST times that rise still to go;
 *  - the crossing within ALERT_FAST_REACH times its span (20 minutes: a
 *    full disk's first minutes climb slower than its last).
 *
 * Either holds at several ticks in a row before it is reported (the
 * steady climb ALERT_STEADY_TICKS, the fast ALERT_FAST_TICKS, counting
 * the last): a burst, a step or a short ramp (a scenario's envelope that
 * levels off below the threshold) passes a gate for one or two ticks; a
 * leak or a disk filling up goes on passing it. The gates were chosen on
 * 30-day backfills of five seeds and checked on seven others (see
 * bench/README.md). The climb is
 * extrapolated along its line. A parabola through the span (for a leak's
 * exponential phase) was tried and dropped: a burst's first minutes
 * accelerate too, and it doubled the false predictions.
 */
#include "alerts.h"

#include <math.h>

#define ALERT_MIN_T			14.0	/* slope / its standard error */
#define ALERT_NEW_HIGH		5.0		/* points above the window's earlier samples */
#define ALERT_REACH			3.0		/* the crossing within this many fit spans */
#define ALERT_REST			5.0		/* and at most this many times the rise still to go */
#define ALERT_STEADY_TICKS	3		/* the steady climb holds at this many ticks */
#define ALERT_FAST_PACE		12.0	/* rise a sample / the mean move a sample before */
#define ALERT_FAST_UP		0.8		/* share of the span's steps that go up */
#define ALERT_FAST_NEW_HIGH	3.0
#define ALERT_FAST_REACH	8.0
#define ALERT_FAST_REST		8.0
#define ALERT_FAST_TICKS	2
#define ALERT_MIN_PACE		0.01	/* points: a flat series' mean move */

/* A line fitted to y[first..n-1], x in seconds before the last sample. */
typedef struct alert_line
{
	int			k;				/* samples fitted */
	double		a,				/* value at the last sample */
				b,				/* points a second */
				se;				/* b's standard error */
} alert_line;

static int
alert_fit(const float *y, int first, int n, double step, alert_line *l)
{
	double		sx = 0,
				sy = 0,
				sxx = 0,
				sxy = 0,
				rss = 0;
	int			k = 0;

	for (int i = first; i < n; i++)
	{
		double		x = (double) (i - (n - 1)) * step;

		if (isnan(y[i]))
			continue;
		sx += x;
		sy += y[i];
		sxx += x * x;
		sxy += x * y[i];
		k++;
	}
	if (k < 3 || k * sxx - sx * sx <= 0)
		return 0;
	l->k = k;
	l->b = (k * sxy - sx * sy) / (k * sxx - sx * sx);
	l->a = (sy - l->b * sx) / k;
	for (int i = first; i < n; i++)
	{
		double		x = (double) (i - (n - 1)) * step,
					e;

		if (isnan(y[i]))
			continue;
		e = y[i] - (l->a + l->b * x);
		rss += e * e;
	}
	l->se = sqrt(rss / (k - 2)) / sqrt(sxx - sx * sx / k);
	return 1;
}

/* The largest sample of y[0..first-1] (-inf: none). */
static double
alert_earlier_max(const float *y, int first)
{
	double		m = -INFINITY;

	for (int i = 0; i < first; i++)
		if (!isnan(y[i]) && y[i] > m)
			m = y[i];
	return m;
}

/*
 * The gates both climbs share once the line is fitted: rising, sure,
 * below the threshold, new_high above the earlier samples, at most rest
 * times that rise still to go, crossing within reach. Fills *out.
 */
static int
alert_finish(const float *y, int first, const alert_line *l, float threshold,
			 double new_high, double rest, double reach, smx_alert *out)
{
	double		eta,
				earlier;

	if (!(l->b > 0) || l->a >= threshold || l->b < ALERT_MIN_T * l->se)
		return 0;
	earlier = alert_earlier_max(y, first);
	if (l->a < earlier + new_high || threshold - l->a > rest * (l->a - earlier))
		return 0;
	eta = (threshold - l->a) / l->b;
	if (!(eta > 0) || eta > reach)
		return 0;
	out->eta = eta;
	out->current = (float) l->a;
	out->slope = (float) l->b;
	/* the slope's uncertainty: how sure that the line reaches it in time */
	out->probability = l->se > 0 ?
		0.5 * erfc(-(l->b - (threshold - l->a) / reach) / (l->se * sqrt(2.0))) : 1.0;
	return 1;
}

static int
alert_steady_over(const float *y, int n, double step, float threshold, double horizon,
				  double seconds, smx_alert *out)
{
	int			s = (int) ceil(seconds / step);
	alert_line	l;

	if (s < 6)
		s = 6;
	if (n < s + 2 || !alert_fit(y, n - s, n, step, &l) || l.k < s / 2 + 2)
		return 0;
	return alert_finish(y, n - s, &l, threshold, ALERT_NEW_HIGH, ALERT_REST,
						fmin(horizon, ALERT_REACH * s * step), out);
}

/* over the long span, else the short one (a bend in the long span: a disk's warning phase to its onset) */
static int
alert_steady(const float *y, int n, double step, float threshold, double horizon, smx_alert *out)
{
	return alert_steady_over(y, n, step, threshold, horizon, SMX_ALERT_FIT_SECONDS, out) ||
		alert_steady_over(y, n, step, threshold, horizon, SMX_ALERT_SHORT_SECONDS, out);
}

static int
alert_fast(const float *y, int n, double step, float threshold, double horizon, smx_alert *out)
{
	int			s = (int) ceil(SMX_ALERT_FAST_SECONDS / step),
				first,
				moves = 0,
				steps = 0,
				up = 0;
	double		pace = 0;
	alert_line	l;

	if (s < 5)
		s = 5;
	first = n - s;
	if (first < 2 * s)
		return 0;
	/* the series' own pace before the span */
	for (int i = 1; i < first; i++)
		if (!isnan(y[i]) && !isnan(y[i - 1]))
		{
			pace += fabs(y[i] - y[i - 1]);
			moves++;
		}
	if (moves < s)
		return 0;
	pace = fmax(pace / moves, ALERT_MIN_PACE);
	if (!alert_fit(y, first, n, step, &l) || l.k < s - 1 ||
		l.b * step < ALERT_FAST_PACE * pace)
		return 0;
	for (int i = first + 1; i < n; i++)
		if (!isnan(y[i]) && !isnan(y[i - 1]))
		{
			steps++;
			up += y[i] > y[i - 1];
		}
	if (steps == 0 || up < ALERT_FAST_UP * steps)
		return 0;
	return alert_finish(y, first, &l, threshold, ALERT_FAST_NEW_HIGH, ALERT_FAST_REST,
						fmin(horizon, ALERT_FAST_REACH * s * step), out);
}

/* climb() at the last ticks ticks (each with the window it had then): the last's result. */
static int
alert_held(int (*climb) (const float *, int, double, float, double, smx_alert *),
		   int ticks, const float *y, int n, double step, float threshold, double horizon,
		   smx_alert *out)
{
	smx_alert	before;

	if (!climb(y, n, step, threshold, horizon, out))
		return 0;
	for (int k = 1; k < ticks; k++)
		if (!climb(y, n - k, step, threshold, horizon + k * step, &before))
			return 0;
	return 1;
}

int
smx_alert_predict(const float *y, int n, double step, float threshold,
				  double horizon, smx_alert *out)
{
	if (n < 1 || !(step > 0) || !(horizon > 0) || isnan(threshold))
		return 0;
	if (alert_held(alert_fast, ALERT_FAST_TICKS, y, n, step, threshold, horizon, out))
		return 1;
	return alert_held(alert_steady, ALERT_STEADY_TICKS, y, n, step, threshold, horizon, out);
}

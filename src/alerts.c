/*
 * alerts.c — predicted threshold crossings (see alerts.h).
 *
 * The gates, and what each keeps out:
 *  - the last SMX_ALERT_FIT_SECONDS fit a line whose slope is at least
 *    ALERT_MIN_T standard errors: noise and the wander revert, so their
 *    slopes are not that sure;
 *  - the line's value now is ALERT_NEW_HIGH points above every earlier
 *    sample of the window: a GC sawtooth climbs to where it was before, a
 *    burst has been there minutes ago;
 *  - the crossing is within ALERT_REACH times the fit span: a daily ramp
 *    is steady and new, but slow; and within the horizon.
 * The climb is extrapolated along its line. A parabola through the span
 * (for a leak's exponential phase) was tried and dropped: a burst's first
 * minutes accelerate too, and it doubled the false predictions.
 */
#include "alerts.h"

#include <math.h>

#define ALERT_MIN_T		14.0	/* slope / its standard error */
#define ALERT_NEW_HIGH	5.0		/* points above the window's earlier samples */
#define ALERT_REACH		3.0		/* the crossing within this many fit spans */

int
smx_alert_predict(const float *y, int n, double step, float threshold,
				  double horizon, smx_alert *out)
{
	int			s = (int) ceil(SMX_ALERT_FIT_SECONDS / step),
				k = 0,
				first;
	double		sx = 0,
				sy = 0,
				sxx = 0,
				sxy = 0,
				a,
				b,
				rss = 0,
				sig,
				se,
				reach,
				eta,
				earlier = -INFINITY;

	if (s < 6)
		s = 6;
	if (n < s + 2 || !(step > 0) || !(horizon > 0))
		return 0;
	first = n - s;
	/* least squares on the fit span, x in seconds before now (x <= 0) */
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
	if (k < s / 2 + 2 || k * sxx - sx * sx <= 0)
		return 0;
	b = (k * sxy - sx * sy) / (k * sxx - sx * sx);
	a = (sy - b * sx) / k;
	if (!(b > 0) || a >= threshold)
		return 0;
	for (int i = first; i < n; i++)
	{
		double		x = (double) (i - (n - 1)) * step,
					e;

		if (isnan(y[i]))
			continue;
		e = y[i] - (a + b * x);
		rss += e * e;
	}
	sig = sqrt(rss / (k - 2));
	se = sig / sqrt(sxx - sx * sx / k);
	if (b < ALERT_MIN_T * se)
		return 0;
	for (int i = 0; i < first; i++)
		if (!isnan(y[i]) && y[i] > earlier)
			earlier = y[i];
	if (a < earlier + ALERT_NEW_HIGH)
		return 0;
	eta = (threshold - a) / b;

	reach = fmin(horizon, ALERT_REACH * SMX_ALERT_FIT_SECONDS);
	if (!(eta > 0) || eta > reach)
		return 0;
	out->eta = eta;
	out->current = (float) a;
	out->slope = (float) b;
	/* the slope's uncertainty: how sure that the line reaches it in time */
	out->probability = 0.5 * erfc(-(b - (threshold - a) / reach) / (se * sqrt(2.0)));
	return 1;
}

/*
 * alerts.h — which thresholds a server is about to cross, as plain C.
 *
 * Like the model, no PostgreSQL header: sim_predict_alerts() runs it over
 * each live server's recent samples (the ring), sim_alert_report() replays
 * it over stored history to score it against what happened, and it is
 * unit-tested as an ordinary program.
 *
 * A prediction needs a climb that is sure, new and fast, and that lasts:
 * either the last 7.5 (or 4) minutes rise along a line far beyond their noise,
 * or the last 2.5 minutes rise, step after step, many times faster than
 * the series moved before; to above anything earlier in the window,
 * reaching the threshold within the horizon and within a few times the
 * span they were seen over; and the same held a tick or two before. A
 * mean-reverting wander, a burst, a daily ramp, a GC sawtooth or a short
 * ramp that levels off fails one of those; a leak or a disk filling up
 * does not.
 */
#ifndef SMX_ALERTS_H
#define SMX_ALERTS_H

#include <stdint.h>

#define SMX_ALERT_FIT_SECONDS	450.0	/* a steady climb is judged over this span */
#define SMX_ALERT_SHORT_SECONDS	240.0	/* or this, when the longer span bends */
#define SMX_ALERT_FAST_SECONDS	150.0	/* a fast one over this */

typedef struct smx_alert
{
	double		eta;			/* seconds from the last sample to the crossing */
	double		probability;	/* that it happens within the horizon, 0..1 */
	float		current;		/* the fitted value now */
	float		slope;			/* points a second now */
} smx_alert;

/*
 * y[0..n-1]: a metric's recent samples, step seconds apart, the last now
 * (NaN: none). True and *out filled when the series is predicted to reach
 * threshold within horizon seconds; false when it is not, or is there
 * already, or the samples are too few.
 */
extern int	smx_alert_predict(const float *y, int n, double step, float threshold,
							  double horizon, smx_alert *out);

#endif							/* SMX_ALERTS_H */

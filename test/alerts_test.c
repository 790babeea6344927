/*
 * alerts_test.c — unit tests of the alert predictor (src/alerts.c), as an
 * ordinary program under ASan/UBSan and valgrind (make model-check, make
 * model-valgrind).
 *
 * Windows of 61 samples 30 s apart (the half hour sim_predict_alerts()
 * looks at): a leak's first minutes (flat, then points a sample) and a
 * disk filling up along a line over the whole window or past the bend from
 * its warning phase to its faster onset are predicted, with
 * the ETA their lines give, up to 20 minutes for the fast climb; a flat
 * series with noise, a mean-reverting cpu with bursts, a burst's jump and decay, a step that levels off and a
 * climb seen at one tick only are not; a series already at its threshold,
 * too few samples and bad arguments are refused; a missing sample does
 * not stop a prediction. Output is TAP; the exit status is 1 if any check
 * fails.
 */
#include "alerts.h"
#include "tap.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>

#define W		61
#define STEP	30.0

#define TEST_RNG_SEED	7
#include "rng.h"

/* flat at base with noise sd, then rising rate a sample over the last climb samples */
static void
leak(float *y, double base, double sd, int climb, double rate)
{
	for (int i = 0; i < W; i++)
	{
		int			c = i - (W - climb) + 1;

		y[i] = (float) (base + sd * gauss() + (c > 0 ? c * rate : 0));
	}
}

int
main(void)
{
	float		y[W];
	smx_alert	a;
	int			hits;

	/* a leak's first minutes: 1.6 points a sample on a memory that barely moves */
	leak(y, 50.0, 0.05, 6, 1.6);
	check(smx_alert_predict(y, W, STEP, 85.0f, 3600.0, &a) == 1,
		  "a leak climbing 1.6 points a sample for 3 minutes is predicted");
	check(fabs(a.eta - (85.0 - 59.6) / 1.6 * STEP) < 2 * STEP,
		  "its ETA is its line's: %.0f s, expected about %.0f s", a.eta, (85.0 - 59.6) / 1.6 * STEP);
	check(fabs(a.slope * STEP - 1.6) < 0.1 && fabs(a.current - 59.6) < 0.5,
		  "slope %.3f a sample, current %.2f", a.slope * STEP, a.current);
	check(a.probability >= 0 && a.probability <= 1, "probability %.3f in [0, 1]", a.probability);
	{
		double		crit = a.eta;
		int			ok = smx_alert_predict(y, W, STEP, 75.0f, 3600.0, &a);

		check(ok && a.eta < crit, "a lower level is reached sooner (%.0f s, %.0f s)", a.eta, crit);
	}
	check(smx_alert_predict(y, W, STEP, 95.0f, 3600.0, &a) == 1 && a.eta > 600.0,
		  "a fast climb is extrapolated up to 8 times its 2.5 minutes (%.0f s)", a.eta);

	/* the same leak seen at its first sample of climb only: not yet */
	leak(y, 50.0, 0.05, 1, 1.6);
	check(smx_alert_predict(y, W, STEP, 90.0f, 3600.0, &a) == 0, "one sample of climb: not predicted");
	/* a fast climb that passes the gates at the last tick only: it must hold a tick */
	leak(y, 50.0, 0.05, 4, 3.0);
	check(smx_alert_predict(y, W, STEP, 90.0f, 3600.0, &a) == 0,
		  "a climb new at this tick (4 samples) is not reported before it held a tick");
	leak(y, 50.0, 0.05, 6, 3.0);
	check(smx_alert_predict(y, W, STEP, 90.0f, 3600.0, &a) == 1, "the same climb two ticks on is");

	/* a missing sample inside the climb */
	leak(y, 50.0, 0.05, 6, 2.0);
	y[W - 3] = NAN;
	check(smx_alert_predict(y, W, STEP, 90.0f, 3600.0, &a) == 1, "a missing sample does not stop it");

	/* a disk filling up along a line over the whole half hour: the steady climb */
	for (int i = 0; i < W; i++)
		y[i] = (float) (40.0 + 0.5 * i);
	check(smx_alert_predict(y, W, STEP, 80.0f, 3600.0, &a) == 1, "a disk growing 0.5 points a sample is predicted");
	check(fabs(a.eta - 20 * STEP) < 1.0, "its ETA %.1f s, expected 600 s", a.eta);
	check(smx_alert_predict(y, W, STEP, 80.0f, 300.0, &a) == 0, "not within a 5-minute horizon");
	check(smx_alert_predict(y, W, STEP, 99.0f, 3600.0, &a) == 0,
		  "nor a threshold 19.5 minutes off, beyond 3 fit spans of 7.5 minutes");

	/*
	 * a full disk's warning phase (0.55 points a sample for 10 minutes),
	 * then its faster onset (1.57): the bend leaves the 7.5-minute line
	 * unsure, the last 4 minutes' line is not
	 */
	for (int i = 0; i < W; i++)
	{
		int			t = i - (W - 31);	/* the run's tick: 30 at the last sample */

		y[i] = (float) (28.0 + (t <= 0 ? 0 : t <= 20 ? 0.55 * t : 11.0 + 1.57 * (t - 20)));
	}
	{
		double		truth = (80.0 - y[W - 1]) / 1.57 * STEP;
		int			ok = smx_alert_predict(y, W, STEP, 80.0f, 3600.0, &a);

		check(ok && fabs(a.eta - truth) < 300.0,
			  "a full disk past the bend to its onset: predicted, ETA %.0f s (%.0f s to go)", a.eta, truth);
	}
	check(smx_alert_predict(y, W - 6, STEP, 80.0f, 3600.0, &a) == 0,
		  "three minutes earlier, the bend not yet held: not yet");

	/* flat with noise */
	hits = 0;
	for (int r = 0; r < 500; r++)
	{
		for (int i = 0; i < W; i++)
			y[i] = (float) (60.0 + 0.3 * gauss());
		hits += smx_alert_predict(y, W, STEP, 80.0f, 3600.0, &a);
	}
	check(hits == 0, "a flat series with noise: %d predictions in 500 windows", hits);

	/* a cpu: mean-reverting, with bursts that decay in 90 s */
	hits = 0;
	{
		double		ou = 0,
					burst = 0;

		for (int r = 0; r < 20000; r++)
		{
			ou = ou * exp(-STEP / 600.0) + 3.0 * sqrt(1 - exp(-2 * STEP / 600.0)) * gauss();
			burst = burst * exp(-STEP / 90.0) + (unif() < 0.05 ? 15.0 * -log(unif()) : 0);
			for (int i = 0; i < W - 1; i++)
				y[i] = y[i + 1];
			y[W - 1] = (float) fmin(100.0, 40.0 + ou + burst);
			if (r >= W && y[W - 1] < 80.0f)
				hits += smx_alert_predict(y, W, STEP, 80.0f, 3600.0, &a);
		}
	}
	check(hits <= 20, "a bursty cpu: %d predicting ticks of 20000", hits);

	/* a burst: a jump and its decay */
	for (int i = 0; i < W; i++)
	{
		int			c = i - (W - 6);

		y[i] = (float) (50.0 + 0.05 * gauss() + (c >= 0 ? 20.0 * exp(-c * STEP / 90.0) : 0));
	}
	check(smx_alert_predict(y, W, STEP, 80.0f, 3600.0, &a) == 0, "a burst's jump and decay: not predicted");

	/* a step that levels off: up 3 points a sample for 3 samples, then flat */
	for (int i = 0; i < W; i++)
	{
		int			c = i - (W - 8) + 1;

		y[i] = (float) (50.0 + 0.05 * gauss() + (c > 0 ? 3.0 * (c < 3 ? c : 3) : 0));
	}
	check(smx_alert_predict(y, W, STEP, 80.0f, 3600.0, &a) == 0, "a step that levels off: not predicted");

	/* refusals */
	leak(y, 50.0, 0.05, 6, 1.6);
	check(smx_alert_predict(y, W, STEP, 55.0f, 3600.0, &a) == 0, "already past the threshold: nothing to predict");
	check(smx_alert_predict(y, 8, STEP, 90.0f, 3600.0, &a) == 0, "8 samples: too few");
	check(smx_alert_predict(y, 0, STEP, 90.0f, 3600.0, &a) == 0, "no samples");
	check(smx_alert_predict(y, W, 0.0, 90.0f, 3600.0, &a) == 0, "a zero step");
	check(smx_alert_predict(y, W, STEP, 90.0f, 0.0, &a) == 0, "a zero horizon");
	check(smx_alert_predict(y, W, STEP, NAN, 3600.0, &a) == 0, "a NaN threshold");
	for (int i = 0; i < W; i++)
		y[i] = NAN;
	check(smx_alert_predict(y, W, STEP, 90.0f, 3600.0, &a) == 0, "all samples missing");
	return tap_done();
}

/*
 * forecast.h — forecasts of a metric with prediction intervals, as plain C.
 *
 * Like the model and the detector, no PostgreSQL header: sim_forecast()
 * fits a server's history with it, the benchmarks run it beside their
 * peers, and it is unit-tested as an ordinary program.
 *
 * The method (forecast.c says why): a series on a regular grid is a daily
 * profile (5-minute slots, the median over days, so an incident or a burst
 * does not bend it), adjusted by class of day (weekday or weekend, when
 * the history holds two weekends), a trend (the median slope between days'
 * medians: disk growth), and its departure from the two now: the last two
 * hours' median departure that fades over a day, or over four days where
 * past errors say the level lasts (today runs high; a burst does not lift
 * a median) and the last few samples' own that fades in about
 * 12 minutes (the mean-reverting wander, a decaying burst). Beside it, the
 * same forecast from the last day's and the last 3 days' cells instead of
 * the profile: where a regime changed (bursts that stopped), the median
 * over weeks keeps the old one. Each horizon uses the forecast whose past
 * errors, recent ones weighing more, are the smallest. The intervals are
 * the errors the chosen forecast made from past origins in the training
 * span, by horizon (empirical quantiles), so heavy tails widen them as
 * they should.
 */
#ifndef SMX_FORECAST_H
#define SMX_FORECAST_H

#include <stddef.h>
#include <stdint.h>

#define SMX_FC_SLOT_SECONDS	300			/* the daily profile's resolution */
#define SMX_FC_SLOTS		(86400 / SMX_FC_SLOT_SECONDS)
#define SMX_FC_MIN_DAYS		2			/* history needed, in days of samples */
#define SMX_FC_HORIZONS		24			/* horizons with measured errors: step x 2^k */
#define SMX_FC_RECENT		2			/* the recent forecasts beside the profile's: the last 1 and 3 days */

typedef struct smx_fc_model
{
	double		t_last;			/* time of the last sample, seconds (a UTC midnight = 0 mod 86400) */
	double		step;			/* seconds between samples */
	double		slope;			/* trend, per second */
	float		profile[SMX_FC_SLOTS];	/* at t_last's trend level (weekdays when weekly) */
	float		weekend[SMX_FC_SLOTS];	/* added on Saturdays and Sundays (UTC); 0 when not weekly */
	int			weekly;			/* 1: the weekend adjustment was learned */
	float		level;			/* the last two hours' median departure from the profile */
	float		fade;			/* level's time constant, seconds (chosen by past errors) */
	float		fast;			/* the last 5 samples' median departure beyond level */
	float		recent[SMX_FC_RECENT][SMX_FC_SLOTS];	/* the last 1 and 3 days' cells (median), at t_last's trend level */
	float		r_level[SMX_FC_RECENT],
				r_fast[SMX_FC_RECENT];	/* the same departures, from them */
	int			src[SMX_FC_HORIZONS];	/* per horizon, the forecast used: 0 the profile's, 1 + r recent[r]'s */
	float		lo,
				hi;				/* bounds of the values (e.g. 0..100) */
	int			nq;				/* horizons measured */
	float		q_ahead[SMX_FC_HORIZONS];	/* horizon, seconds */
	float		q[SMX_FC_HORIZONS][4];	/* error quantiles 2.5, 10, 90, 97.5 % */
	int			q_count[SMX_FC_HORIZONS];	/* errors behind them */
	double		days;			/* days of usable samples in the fit */
} smx_fc_model;

/* Bytes of working memory smx_fc_fit() needs for n samples of step seconds. */
extern size_t smx_fc_work_size(int n, double step);

/*
 * Fit n samples y[0..n-1] on a regular grid of step seconds, the last at
 * t_last; NaN = no sample. exclude[i] (may be NULL) marks samples that are
 * not normal behaviour (a labelled incident, an offline server): they do
 * not shape the profile, the trend or the intervals, though the latest
 * ones still say where the series is now. max_ahead: the longest horizon
 * the intervals must cover, seconds. lo..hi bound the forecasts. work:
 * smx_fc_work_size(n, step) bytes, any alignment of malloc/palloc.
 * Returns 0, or -1 when the usable samples span less than SMX_FC_MIN_DAYS
 * days (m->days says how much there was).
 */
extern int	smx_fc_fit(const float *y, const uint8_t *exclude, int n, double step,
					   double t_last, double max_ahead, float lo, float hi,
					   void *work, smx_fc_model *m);

/*
 * The forecast ahead seconds after t_last: out[0] the value, out[1..2] the
 * 80 % interval, out[3..4] the 95 % one, all within lo..hi.
 */
extern void smx_fc_at(const smx_fc_model *m, double ahead, float out[5]);

#endif							/* SMX_FORECAST_H */

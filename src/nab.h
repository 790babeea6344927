/*
 * nab.h — the Numenta Anomaly Benchmark's scoring, as plain C.
 *
 * No PostgreSQL header: sim_detector_report() and sim_score_detector()
 * (detect_report.c) score with it, and test/nab_test.c checks it as an
 * ordinary program. Written from NAB's paper and documentation, and checked
 * against the scores NAB publishes for its own detectors (bench/nab.sh).
 *
 * A series is rows in time order with a score each, and labelled windows.
 * A row alarms when its score reaches the threshold (and it is past the
 * series' probation). In a window only the first alarm counts, worth more
 * the earlier it comes (a scaled sigmoid of its place in the window: 1 at
 * the window's first row, 0 at its end); a window with no alarm costs fn.
 * An alarm outside every window costs fp, less when it comes just after a
 * window (the same sigmoid of its distance from that window's end). The
 * corpus score is the sum over series, normalised to 100 for a detector
 * that alarms at every window's first row and 0 for one that never alarms.
 * One threshold serves the whole corpus: the one that scores best.
 */
#ifndef SMX_NAB_H
#define SMX_NAB_H

#include <stddef.h>
#include <stdint.h>

/* A profile: what a true positive, a false positive and a miss weigh. */
typedef struct SmxNabCosts
{
	const char *name;
	double		tp,
				fp,
				fn;
} SmxNabCosts;

/* standard, reward_low_fp, reward_low_fn (NAB's config/profiles.json) */
extern const SmxNabCosts smx_nab_profiles[3];

typedef struct SmxNabSeries
{
	size_t		n;				/* rows, in time order */
	const int64_t *ts;			/* row time (any monotone unit) */
	const double *score;		/* NaN: no score, never an alarm */
	size_t		probation;		/* leading rows whose alarms are ignored */
	size_t		nwindows;
	const int64_t *win_start;	/* inclusive, in ts's unit, ascending, */
	const int64_t *win_end;		/* not overlapping */
} SmxNabSeries;

typedef struct SmxNabResult
{
	double		threshold;		/* an alarm is score >= threshold */
	double		raw,
				null_raw,
				perfect_raw;
	double		normalised;		/* 100 (raw - null) / (perfect - null) */
	int64_t		tp_windows;		/* windows with an alarm */
	int64_t		fn_windows;		/* windows without */
	int64_t		fp_rows;		/* alarms outside every window */
	int64_t		fp_events;		/* the same, counted at their onsets */
} SmxNabResult;

/* NAB's probation for a series of n rows: 15 %, at most 750 rows. */
extern size_t smx_nab_probation(size_t n);

/*
 * Choose the threshold that maximises the corpus score (over every
 * distinct score; on a tie the higher threshold), and fill *out at it.
 * INFINITY when no threshold beats never alarming. O(N log N).
 * Returns 0, or -1 when out of memory or windows are not ascending.
 */
extern int	smx_nab_sweep(const SmxNabSeries *series, size_t nseries,
						  const SmxNabCosts *costs, SmxNabResult *out);

/*
 * Score at a given threshold. delays (optional, room for every window):
 * for each window with an alarm, its first alarm's time less the window's
 * start; *ndelays gets how many. Returns 0, or -1 as above.
 */
extern int	smx_nab_score_at(const SmxNabSeries *series, size_t nseries,
							 const SmxNabCosts *costs, double threshold,
							 SmxNabResult *out, int64_t *delays, size_t *ndelays);

#endif							/* SMX_NAB_H */

/*
 * nab.h - Numenta Anomaly Benchmark (NAB) scoring in pure C.
 *
 * Our own implementation of the scoring rules of NAB (github.com/numenta/NAB,
 * MIT, commit ea702d7: nab/sweeper.py, nab/optimizer.py, nab/runner.py), so
 * detectors can be ranked on the same scale as NAB's published results
 * without Python.  No PostgreSQL header: this file is compiled into the
 * extension and into standalone test and benchmark programs.
 *
 * Model (see nab.c for the subtle points):
 *  - a row is a detection when it is past the probationary rows, its score
 *    is not NaN and score >= threshold;
 *  - a window is worth tp * S(pos)/S(-1) for its earliest detection (pos is
 *    the position relative to the window's end, S the scaled sigmoid), or
 *    -fn when it has none; later detections in the window are free;
 *  - a detection outside every window is worth fp * S(distance past the end
 *    of the preceding window) (< 0), or -fp when no window precedes it;
 *  - one threshold for the whole corpus: the one maximising the summed raw
 *    score over the distinct score values (ties go to the higher threshold);
 *  - normalised = 100 (raw - null)/(perfect - null), null = never firing,
 *    perfect = tp for every labelled window.
 */
#ifndef SMX_NAB_H
#define SMX_NAB_H

#include <stddef.h>
#include <stdint.h>

typedef struct SmxNabCosts
{
	const char *name;
	double		tp,
				fp,
				fn;				/* all finite and >= 0, as NAB's profiles */
} SmxNabCosts;

/* "standard" (tp 1, fp 0.11, fn 1), "reward_low_fp" (fp 0.22),
 * "reward_low_fn" (fn 2): NAB's config/profiles.json */
extern const SmxNabCosts smx_nab_profiles[3];

typedef struct SmxNabSeries
{
	size_t		n;				/* rows, in time order */
	const int64_t *ts;			/* row time, any int64 unit, in time order */
	const double *score;		/* per row; NaN = no score (never a detection) */
	size_t		probation;		/* leading rows whose detections are ignored */
	size_t		nwindows;
	const int64_t *win_start;	/* inclusive bounds in the unit of ts, */
	const int64_t *win_end;		/* ascending, not overlapping */
} SmxNabSeries;

typedef struct SmxNabResult
{
	double		threshold;		/* detection = score >= threshold; +inf when
								 * never firing scored best (or the best
								 * threshold is a +inf score) */
	double		raw,
				null_raw,
				perfect_raw;
	double		normalised;		/* 100 (raw - null)/(perfect - null); NaN when
								 * perfect == null (no windows) */
	int64_t		tp_windows;		/* windows with a detection */
	int64_t		fn_windows;		/* scorable windows without one */
	int64_t		skipped_windows;	/* windows with no row past probation:
									 * in perfect_raw only, as in NAB */
	int64_t		fp_rows;		/* detections outside every window */
	int64_t		fp_events;		/* FP rows whose previous row is no detection */
	int64_t		tp_rows,
				tn_rows,
				fn_rows;		/* NAB's row counts (rows past probation) */
} SmxNabResult;

/* NAB's probationary rows for a file of n rows: min(floor(0.15 n), 750). */
size_t		smx_nab_probation(size_t n);

/* The same rule for another share of the rows (sim_score_detector's probation). */
size_t		smx_nab_probation_share(size_t n, double share);

/* Choose the threshold maximising the corpus raw score and fill *out.
 * O(N log N) time, O(N) memory.  0, or -1 on bad input or out of memory. */
int			smx_nab_sweep(const SmxNabSeries *series, size_t nseries,
						  const SmxNabCosts *costs, SmxNabResult *out);

/* Score at a given threshold.  delays (optional) must hold one entry per
 * window of the corpus; it gets, per detected window in series then window
 * order, first detection ts - win_start, and *ndelays their number. */
int			smx_nab_score_at(const SmxNabSeries *series, size_t nseries,
							 const SmxNabCosts *costs, double threshold,
							 SmxNabResult *out, int64_t *delays, size_t *ndelays);

#endif							/* SMX_NAB_H */

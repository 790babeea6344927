/*
 * nab.c - NAB scoring (see nab.h).
 *
 * Written from NAB's nab/sweeper.py and nab/optimizer.py (commit ea702d7)
 * and checked against results/final_results.json by bench/nab_eval.c.
 * Choices that follow NAB exactly, where a simpler reading would differ:
 *
 *  - Positions are counted in rows, not time.  A window of W rows with
 *    last row R puts row i at -(R - i + 1)/W: -1 at its first row, -1/W
 *    (not 0) at its last.  A row j after the window sits at (j - R)/(W - 1)
 *    (W - 1, not W: NAB's asymmetry).  NAB divides by zero for a one-row
 *    window; we treat such a false positive as far away (-fp).
 *  - S(x) = 2 sigmoid(-5x) - 1 for x <= 3, -1 beyond; a true positive is
 *    worth tp S(pos)/S(-1), so exactly tp at a window's first row.
 *  - Probation is by row index, min(floor(0.15 n), 0.15*5000) per file.
 *    Its rows never detect and count in no row total, but they do belong to
 *    windows: a window starting in probation keeps its full width for
 *    positions, a probation row still closes a window for later false
 *    positives, and a window with no row past probation is not scored at
 *    all (neither tp nor fn) although NAB's "perfect" still counts it.
 *  - The window term is max(-fn, best detection weight), which with tp >= 0
 *    is the earliest detection's weight.
 *  - Thresholds are the distinct scores plus "never"; a threshold t means
 *    score >= t, so rows tied at t all detect together.  Of equal corpus
 *    scores the higher threshold wins (NAB sorts stably, descending).
 *  - null = never firing = -fn per scored window (NAB's null detector, a
 *    constant score, optimises to exactly that); perfect = tp per labelled
 *    window, scored or not (runner.py counts the label file).
 *
 * The sweep: a false positive adds a fixed weight from the threshold at its
 * score downwards.  A window's value is that of its earliest detection, so
 * it only changes at rows whose score beats every earlier scorable row of
 * the window ("records", the strict prefix maxima).  Lowering the threshold
 * meets a window's records latest (highest score) first: that one lifts
 * the window from -fn to its value, each earlier one from the value of the
 * record after it.  So the corpus score at threshold t is a base (every
 * window missed) plus the sum of the "events" with score >= t: at most one
 * per row, one sort, one pass.  Then one plain pass at the chosen threshold
 * fills in the result, so sweep and score_at agree.
 */
#include "nab.h"

#include <math.h>
#include <stdlib.h>

const SmxNabCosts smx_nab_profiles[3] = {
	{"standard", 1.0, 0.11, 1.0},
	{"reward_low_fp", 1.0, 0.22, 1.0},
	{"reward_low_fn", 1.0, 0.11, 2.0},
};

size_t
smx_nab_probation_share(size_t n, double share)
{
	/* NAB compares the row index (i >= length) with a float, so round up */
	double		p = floor(share * (double) n);
	double		cap = share * 5000.0;

	return (size_t) ceil(p < cap ? p : cap);
}

size_t
smx_nab_probation(size_t n)
{
	return smx_nab_probation_share(n, 0.15);
}

/* NAB's scaledSigmoid, same operations in the same order (same bits). */
static double
nab_sigmoid(double x)
{
	if (x > 3.0)
		return -1.0;
	return 2.0 * (1.0 / (1.0 + exp(5.0 * x))) - 1.0;
}

/* -------- validation and the row walk shared by both entry points ------- */

static int
nab_costs_ok(const SmxNabCosts *c)
{
	/* negative weights would break "earliest detection is the best" */
	return c && isfinite(c->tp) && isfinite(c->fp) && isfinite(c->fn) &&
		c->tp >= 0.0 && c->fp >= 0.0 && c->fn >= 0.0;
}

static int
nab_series_ok(const SmxNabSeries *s)
{
	if (s->n > 0 && (!s->ts || !s->score))
		return 0;
	if (s->nwindows > 0 && (!s->win_start || !s->win_end))
		return 0;
	for (size_t k = 0; k < s->nwindows; k++)
	{
		if (s->win_start[k] > s->win_end[k])
			return 0;
		if (k > 0 && s->win_start[k] <= s->win_end[k - 1])
			return 0;
	}
	return 1;
}

static int
nab_input_ok(const SmxNabSeries *series, size_t nseries, const SmxNabCosts *c)
{
	if (!nab_costs_ok(c) || (nseries > 0 && !series))
		return 0;
	for (size_t j = 0; j < nseries; j++)
		if (!nab_series_ok(&series[j]))
			return 0;
	return 1;
}

/*
 * Walk a series row by row, knowing for each row its window (if any) and
 * its weight as a detection.  Windows are found by scanning forward the
 * way NAB does (it enters a window at the row whose time is the window's
 * start and leaves it at the first row whose time is its end), which also
 * copes with NAB's own data: duplicated timestamps (DST) and one file,
 * machine_temperature_system_failure, that steps back an hour.  A window
 * opens at the first row at or after its start and closes at the first
 * row at or after its end (that row included only if exactly at the end).
 * Every row is looked at a bounded number of times: O(n + windows).
 */
typedef struct NabWalk
{
	const SmxNabSeries *s;
	const SmxNabCosts *c;
	double		max_tp;			/* S(-1) */
	size_t		i;				/* next row */
	size_t		k;				/* next window to locate */
	size_t		lo,
				hi;				/* rows [lo, hi) of window cur */
	size_t		cur;			/* window of rows [lo, hi), or nwindows */
	int			have_prev;		/* a window closed before row i */
	size_t		prev_last;		/* its last row */
	double		prev_w1;		/* its width - 1 */
} NabWalk;

static void
nab_locate(NabWalk *w)
{
	const SmxNabSeries *s = w->s;
	size_t		lo = w->i;

	w->cur = s->nwindows;
	w->lo = w->hi = s->n;
	while (w->k < s->nwindows)
	{
		size_t		k = w->k++;
		size_t		r;

		/* rows skipped here are below this start, so below the next one's */
		while (lo < s->n && s->ts[lo] < s->win_start[k])
			lo++;
		if (lo == s->n)
			return;
		for (r = lo; r < s->n && s->ts[r] < s->win_end[k]; r++)
			;
		if (r < s->n && s->ts[r] == s->win_end[k])
			r++;
		if (lo < r)				/* a window no row falls in is skipped */
		{
			w->cur = k;
			w->lo = lo;
			w->hi = r;
			return;
		}
	}
}

static void
nab_walk_init(NabWalk *w, const SmxNabSeries *s, const SmxNabCosts *c)
{
	w->s = s;
	w->c = c;
	w->max_tp = nab_sigmoid(-1.0);
	w->i = 0;
	w->k = 0;
	w->have_prev = 0;
	w->prev_last = 0;
	w->prev_w1 = 0.0;
	nab_locate(w);
}

/*
 * Row w->i: its window (index into s's windows, or -1) and its detection
 * weight; then advance.  Window rows: tp S(pos)/S(-1).  Others: fp S(dist)
 * past the previous window, or -fp with none (or a one-row one).
 */
static long
nab_walk_row(NabWalk *w, double *weight)
{
	size_t		i = w->i;
	long		win = -1;

	if (i >= w->lo && i < w->hi)
	{
		double		width = (double) (w->hi - w->lo);
		double		pos = -(double) (w->hi - i) / width;	/* -(R - i + 1)/W */

		*weight = nab_sigmoid(pos) * w->c->tp / w->max_tp;
		win = (long) w->cur;
	}
	else if (w->have_prev && w->prev_w1 > 0.0)
		*weight = nab_sigmoid((double) (i - w->prev_last) / w->prev_w1) * w->c->fp;
	else
		*weight = -1.0 * w->c->fp;

	w->i++;
	if (win >= 0 && w->i == w->hi)
	{
		w->have_prev = 1;
		w->prev_last = i;
		w->prev_w1 = (double) (w->hi - w->lo) - 1.0;
		nab_locate(w);
	}
	return win;
}

/* Whether a window ending before row hi has a row past probation, so is
 * scored (NAB only knows windows through their non-probation rows). */
static int
nab_window_scored(const SmxNabSeries *s, size_t hi)
{
	return hi > s->probation;
}

/* ------------------------------- score_at ------------------------------- */

static void
nab_finish(SmxNabResult *out, size_t nwin_total, int64_t scored, const SmxNabCosts *c)
{
	out->null_raw = -c->fn * (double) scored;
	out->perfect_raw = c->tp * (double) nwin_total;
	out->skipped_windows = (int64_t) nwin_total - scored;
	if (out->perfect_raw != out->null_raw)
		out->normalised = 100.0 * (out->raw - out->null_raw) /
			(out->perfect_raw - out->null_raw);
	else
		out->normalised = NAN;
}

/*
 * never: detect nothing (the sweep's "no threshold"), whatever the scores
 * (so +inf scores do not sneak in at threshold +inf).
 */
static int
nab_score(const SmxNabSeries *series, size_t nseries, const SmxNabCosts *c,
		  double threshold, int never, SmxNabResult *out,
		  int64_t *delays, size_t *ndelays)
{
	size_t		nwin_total = 0,
				nd = 0;
	int64_t		scored = 0;
	double		fp_sum = 0.0,
				win_sum = 0.0;

	out->threshold = never ? INFINITY : threshold;
	out->tp_windows = out->fn_windows = 0;
	out->fp_rows = out->fp_events = 0;
	out->tp_rows = out->tn_rows = out->fn_rows = 0;

	for (size_t j = 0; j < nseries; j++)
	{
		const SmxNabSeries *s = &series[j];
		NabWalk		w;
		int			prev_det = 0;
		long		win_seen = -1;	/* window whose first detection we have */
		double		file_sum = 0.0;

		nwin_total += s->nwindows;
		nab_walk_init(&w, s, c);
		while (w.i < s->n)
		{
			size_t		i = w.i;
			size_t		lo = w.lo,
						hi = w.hi;
			double		weight;
			long		win = nab_walk_row(&w, &weight);
			int			det;

			if (win >= 0 && i == lo && nab_window_scored(s, hi))
				scored++;
			if (i < s->probation)
			{
				prev_det = 0;
				continue;
			}
			det = !never && s->score[i] >= threshold;	/* NaN: false */
			if (win >= 0)
			{
				if (!det)
					out->fn_rows++;
				else
				{
					out->tp_rows++;
					if (win != win_seen)
					{
						/* first detection in window: the only one counted */
						win_seen = win;
						out->tp_windows++;
						file_sum += (weight > -c->fn ? weight : -c->fn) + c->fn;
						if (delays)
							delays[nd] = s->ts[i] - s->win_start[win];
						nd++;
					}
				}
			}
			else if (!det)
				out->tn_rows++;
			else
			{
				out->fp_rows++;
				if (!prev_det)
					out->fp_events++;
				fp_sum += weight;
			}
			prev_det = det;
		}
		win_sum += file_sum;
	}
	out->fn_windows = scored - out->tp_windows;
	/* missed windows first, then the detected ones' gain over missing */
	out->raw = (-c->fn * (double) scored + win_sum) + fp_sum;
	nab_finish(out, nwin_total, scored, c);
	if (ndelays)
		*ndelays = nd;
	return 0;
}

int
smx_nab_score_at(const SmxNabSeries *series, size_t nseries,
				 const SmxNabCosts *costs, double threshold,
				 SmxNabResult *out, int64_t *delays, size_t *ndelays)
{
	if (ndelays)
		*ndelays = 0;
	if (!out || !nab_input_ok(series, nseries, costs))
		return -1;
	return nab_score(series, nseries, costs, threshold, 0, out, delays, ndelays);
}

/* -------------------------------- sweep --------------------------------- */

typedef struct NabEvent
{
	double		score;
	double		delta;			/* change of the corpus score once detected */
} NabEvent;

/*
 * Sort events by score, descending.  Our own introsort: qsort's indirect
 * comparisons cost ~3x on millions of rows, and glibc's may malloc.
 */
static void
nab_swap(NabEvent *a, NabEvent *b)
{
	NabEvent	t = *a;

	*a = *b;
	*b = t;
}

static void
nab_sift(NabEvent *a, size_t root, size_t n)
{
	for (;;)
	{
		size_t		child = 2 * root + 1;

		if (child >= n)
			return;
		/* a min-heap, so the sort comes out descending */
		if (child + 1 < n && a[child + 1].score < a[child].score)
			child++;
		if (!(a[child].score < a[root].score))
			return;
		nab_swap(&a[root], &a[child]);
		root = child;
	}
}

static void
nab_heapsort(NabEvent *a, size_t n)
{
	for (size_t i = n / 2; i-- > 0;)
		nab_sift(a, i, n);
	for (size_t end = n; end-- > 1;)
	{
		nab_swap(&a[0], &a[end]);
		nab_sift(a, 0, end);
	}
}

static void
nab_sort_rec(NabEvent *a, size_t n, int depth)
{
	while (n > 16)
	{
		size_t		mid = n / 2,
					i,
					j;
		double		pivot;

		if (depth-- == 0)
		{
			nab_heapsort(a, n);
			return;
		}
		/* median of three into a[mid] */
		if (a[mid].score > a[0].score)
			nab_swap(&a[mid], &a[0]);
		if (a[n - 1].score > a[mid].score)
		{
			nab_swap(&a[n - 1], &a[mid]);
			if (a[mid].score > a[0].score)
				nab_swap(&a[mid], &a[0]);
		}
		pivot = a[mid].score;
		/* Hoare partition: [0, j] >= pivot >= [j + 1, n) */
		i = 0;
		j = n - 1;
		for (;;)
		{
			while (a[i].score > pivot)
				i++;
			while (a[j].score < pivot)
				j--;
			if (i >= j)
				break;
			nab_swap(&a[i], &a[j]);
			i++;
			j--;
		}
		/* recurse into the smaller side, loop on the larger */
		if (j + 1 < n - (j + 1))
		{
			nab_sort_rec(a, j + 1, depth);
			a += j + 1;
			n -= j + 1;
		}
		else
		{
			nab_sort_rec(a + j + 1, n - (j + 1), depth);
			n = j + 1;
		}
	}
	for (size_t k = 1; k < n; k++)
	{
		NabEvent	e = a[k];
		size_t		m = k;

		while (m > 0 && a[m - 1].score < e.score)
		{
			a[m] = a[m - 1];
			m--;
		}
		a[m] = e;
	}
}

static void
nab_sort(NabEvent *a, size_t n)
{
	int			depth = 0;

	for (size_t m = n; m > 1; m >>= 1)
		depth += 2;
	nab_sort_rec(a, n, depth);
}

/* Neumaier's compensated sum, so a million small steps do not drift. */
typedef struct NabSum
{
	double		s,
				c;
} NabSum;

static void
nab_add(NabSum *t, double x)
{
	double		u = t->s + x;

	if (fabs(t->s) >= fabs(x))
		t->c += (t->s - u) + x;
	else
		t->c += (x - u) + t->s;
	t->s = u;
}

int
smx_nab_sweep(const SmxNabSeries *series, size_t nseries,
			  const SmxNabCosts *costs, SmxNabResult *out)
{
	const SmxNabCosts *c = costs;
	size_t		cap = 0,
				ne = 0;
	int64_t		scored = 0;
	NabEvent   *ev = NULL;
	NabSum		acc = {0.0, 0.0};
	double		best,
				best_thr = INFINITY;
	int			never = 1;

	if (!out || !nab_input_ok(series, nseries, costs))
		return -1;

	/* at most one event per row that can detect */
	for (size_t j = 0; j < nseries; j++)
		if (series[j].n > series[j].probation)
			cap += series[j].n - series[j].probation;
	if (cap > 0)
	{
		if (cap > SIZE_MAX / sizeof(NabEvent))
			return -1;
		ev = malloc(cap * sizeof(NabEvent));
		if (!ev)
			return -1;
	}

	for (size_t j = 0; j < nseries; j++)
	{
		const SmxNabSeries *s = &series[j];
		NabWalk		w;
		long		win_cur = -1;
		size_t		pend = 0;	/* event of win_cur's latest record */
		double		rec_score = 0.0,	/* its score */
					rec_value = 0.0;	/* window value were it first */

		nab_walk_init(&w, s, c);
		while (w.i < s->n)
		{
			size_t		i = w.i;
			size_t		lo = w.lo,
						hi = w.hi;
			double		weight;
			long		win = nab_walk_row(&w, &weight);
			double		sc,
						v;

			if (win >= 0 && i == lo && nab_window_scored(s, hi))
				scored++;
			if (i < s->probation || isnan(s->score[i]))
				continue;
			sc = s->score[i];
			if (win < 0)
			{
				ev[ne].score = sc;
				ev[ne].delta = weight;
				ne++;
				continue;
			}
			v = weight > -c->fn ? weight : -c->fn;
			if (win == win_cur && !(sc > rec_score))
				continue;		/* an earlier row detects whenever this one does */

			/*
			 * A record.  Records come in row order with rising scores, so
			 * the sweep meets them latest first: the latest lifts the window
			 * from -fn, each earlier one from the record after it.
			 */
			if (win == win_cur)
				ev[pend].delta = rec_value - v;
			else if (win_cur >= 0)
				ev[pend].delta = rec_value + c->fn;
			win_cur = win;
			pend = ne++;
			ev[pend].score = sc;
			rec_score = sc;
			rec_value = v;
		}
		if (win_cur >= 0)
			ev[pend].delta = rec_value + c->fn;
	}

	nab_sort(ev, ne);

	/* "never" first: a threshold must beat it strictly, as must each lower
	 * threshold beat the higher ones */
	nab_add(&acc, -c->fn * (double) scored);
	best = acc.s + acc.c;
	for (size_t e = 0; e < ne;)
	{
		double		thr = ev[e].score;
		double		v;

		/* all rows tied at thr detect together */
		while (e < ne && ev[e].score == thr)
			nab_add(&acc, ev[e++].delta);
		v = acc.s + acc.c;
		if (v > best)
		{
			best = v;
			best_thr = thr;
			never = 0;
		}
	}
	free(ev);

	return nab_score(series, nseries, c, best_thr, never, out, NULL, NULL);
}

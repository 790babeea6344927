/*
 * nab.c — NAB's scoring (see nab.h).
 *
 * The sweep: a row's worth at any threshold is fixed (a false positive's
 * weight, or the value of alarming first in its window), so walking every
 * row of the corpus from the highest score down, the corpus score at each
 * distinct score is the running sum of the false positives passed plus,
 * for each window, the best (earliest) alarm passed in it or the miss.
 * One sort, one pass.
 */
#include "nab.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const SmxNabCosts smx_nab_profiles[3] = {
	{"standard", 1.0, 0.11, 1.0},
	{"reward_low_fp", 1.0, 0.22, 1.0},
	{"reward_low_fn", 1.0, 0.11, 2.0},
};

size_t
smx_nab_probation(size_t n)
{
	return (size_t) fmin(floor(0.15 * (double) n), 0.15 * 5000.0);
}

/* NAB's scaled sigmoid: 1 well before 0, 0 at 0, -1 from 3 on. */
static double
nab_sigmoid(double y)
{
	if (y > 3.0)
		return -1.0;
	return 2.0 / (1.0 + exp(5.0 * y)) - 1.0;
}

/* The rows [*a, *b] of window k of s (*a > *b: no row in it). */
static void
nab_window_rows(const SmxNabSeries *s, size_t k, size_t *a, size_t *b)
{
	size_t		lo = 0,
				hi = s->n;

	/* first row with ts >= start */
	while (lo < hi)
	{
		size_t		mid = lo + (hi - lo) / 2;

		if (s->ts[mid] < s->win_start[k])
			lo = mid + 1;
		else
			hi = mid;
	}
	*a = lo;
	hi = s->n;
	/* first row with ts > end */
	while (lo < hi)
	{
		size_t		mid = lo + (hi - lo) / 2;

		if (s->ts[mid] <= s->win_end[k])
			lo = mid + 1;
		else
			hi = mid;
	}
	*b = lo;					/* one past the last; 0 stays "none" below */
}

/*
 * Walk series s: for every row that may alarm (past probation, a score),
 * call fn with its worth: win >= 0 (the window's index in s) and the value
 * of it being the window's first alarm, or win = -1 and its false-positive
 * weight. Returns -1 if the windows are not ascending and apart.
 */
typedef void (*nab_row_fn) (void *arg, size_t row, long win, double worth);

static int
nab_walk(const SmxNabSeries *s, const SmxNabCosts *c, nab_row_fn fn, void *arg)
{
	size_t		k = 0;
	size_t		a = 0,
				b = 0;			/* window k's rows: [a, b) */
	long		prev_end = -1;	/* last row of the window before, or -1 */
	size_t		prev_width = 0;

	for (size_t w = 1; w < s->nwindows; w++)
		if (s->win_start[w] <= s->win_end[w - 1])
			return -1;
	if (s->nwindows > 0)
		nab_window_rows(s, 0, &a, &b);
	for (size_t i = 0; i < s->n; i++)
	{
		while (k < s->nwindows && i >= b && i >= a)
		{
			/* past window k: it is the one before from now on */
			if (b > a)
			{
				prev_end = (long) b - 1;
				prev_width = b - a;
			}
			if (++k < s->nwindows)
				nab_window_rows(s, k, &a, &b);
		}
		if (i < s->probation || isnan(s->score[i]))
			continue;
		if (k < s->nwindows && i >= a && i < b)
		{
			double		width = (double) (b - a);

			fn(arg, i, (long) k,
			   c->tp * nab_sigmoid(-((double) (b - i)) / width) / nab_sigmoid(-1.0));
		}
		else if (prev_end < 0)
			fn(arg, i, -1, -c->fp);
		else
		{
			double		d = prev_width > 1 ? (double) (prev_width - 1) : 0.0;
			double		y = d > 0 ? (double) ((long) i - prev_end) / d : INFINITY;

			fn(arg, i, -1, c->fp * nab_sigmoid(y));
		}
	}
	return 0;
}

/* ---- the sweep ---- */

typedef struct NabRow
{
	double		score;
	double		worth;
	long		win;			/* the window's index in the corpus, or -1 */
} NabRow;

typedef struct NabSweep
{
	NabRow	   *rows;
	size_t		n;
	long		win_base;		/* the series' first window's corpus index */
	const double *score;
} NabSweep;

static void
nab_collect(void *arg, size_t row, long win, double worth)
{
	NabSweep   *sw = arg;
	NabRow	   *r = &sw->rows[sw->n++];

	r->score = sw->score[row];
	r->worth = worth;
	r->win = win < 0 ? -1 : sw->win_base + win;
}

static int
nab_row_cmp(const void *x, const void *y)
{
	double		a = ((const NabRow *) x)->score,
				b = ((const NabRow *) y)->score;

	return a > b ? -1 : a < b;
}

int
smx_nab_sweep(const SmxNabSeries *series, size_t nseries, const SmxNabCosts *costs,
			  SmxNabResult *out)
{
	size_t		total = 0,
				nwin = 0;
	NabSweep	sw;
	double	   *best;
	double		raw,
				best_raw,
				threshold = INFINITY;

	for (size_t s = 0; s < nseries; s++)
	{
		total += series[s].n;
		nwin += series[s].nwindows;
	}
	sw.rows = malloc(sizeof(NabRow) * (total > 0 ? total : 1));
	best = malloc(sizeof(double) * (nwin > 0 ? nwin : 1));
	if (sw.rows == NULL || best == NULL)
	{
		free(sw.rows);
		free(best);
		return -1;
	}
	sw.n = 0;
	sw.win_base = 0;
	for (size_t s = 0; s < nseries; s++)
	{
		sw.score = series[s].score;
		if (nab_walk(&series[s], costs, nab_collect, &sw) != 0)
		{
			free(sw.rows);
			free(best);
			return -1;
		}
		sw.win_base += (long) series[s].nwindows;
	}
	qsort(sw.rows, sw.n, sizeof(NabRow), nab_row_cmp);
	for (size_t w = 0; w < nwin; w++)
		best[w] = -costs->fn;
	raw = best_raw = -costs->fn * (double) nwin;
	for (size_t i = 0; i < sw.n;)
	{
		double		sc = sw.rows[i].score;

		/* every row of this score alarms together */
		for (; i < sw.n && sw.rows[i].score == sc; i++)
		{
			const NabRow *r = &sw.rows[i];

			if (r->win < 0)
				raw += r->worth;
			else if (r->worth > best[r->win])
			{
				raw += r->worth - best[r->win];
				best[r->win] = r->worth;
			}
		}
		if (raw > best_raw)
		{
			best_raw = raw;
			threshold = sc;
		}
	}
	free(sw.rows);
	free(best);
	return smx_nab_score_at(series, nseries, costs, threshold, out, NULL, NULL);
}

/* ---- one threshold ---- */

typedef struct NabAt
{
	const SmxNabSeries *s;
	double		threshold;
	double		raw;
	int64_t		fp_rows,
				fp_events;
	long		last_alarm;		/* row of the last alarm seen, -1 */
	size_t	   *first;			/* first alarm row of each window of s, or SIZE_MAX */
	double	   *value;
} NabAt;

static void
nab_at_row(void *arg, size_t row, long win, double worth)
{
	NabAt	   *at = arg;

	if (!(at->s->score[row] >= at->threshold))
		return;
	if (win < 0)
	{
		at->raw += worth;
		at->fp_rows++;
		if (at->last_alarm != (long) row - 1)
			at->fp_events++;
	}
	else if (at->first[win] == SIZE_MAX)
	{
		at->first[win] = row;
		at->value[win] = worth;
	}
	at->last_alarm = (long) row;
}

int
smx_nab_score_at(const SmxNabSeries *series, size_t nseries, const SmxNabCosts *costs,
				 double threshold, SmxNabResult *out, int64_t *delays, size_t *ndelays)
{
	size_t		maxwin = 0;
	int64_t		nwin = 0;
	NabAt		at;

	memset(out, 0, sizeof(*out));
	memset(&at, 0, sizeof(at));
	for (size_t s = 0; s < nseries; s++)
		if (series[s].nwindows > maxwin)
			maxwin = series[s].nwindows;
	at.first = malloc(sizeof(size_t) * (maxwin > 0 ? maxwin : 1));
	at.value = malloc(sizeof(double) * (maxwin > 0 ? maxwin : 1));
	if (at.first == NULL || at.value == NULL)
	{
		free(at.first);
		free(at.value);
		return -1;
	}
	at.threshold = threshold;
	if (ndelays)
		*ndelays = 0;
	for (size_t s = 0; s < nseries; s++)
	{
		const SmxNabSeries *se = &series[s];

		at.s = se;
		at.last_alarm = -1;
		for (size_t w = 0; w < se->nwindows; w++)
			at.first[w] = SIZE_MAX;
		if (nab_walk(se, costs, nab_at_row, &at) != 0)
		{
			free(at.first);
			free(at.value);
			return -1;
		}
		for (size_t w = 0; w < se->nwindows; w++)
		{
			if (at.first[w] == SIZE_MAX)
			{
				at.raw -= costs->fn;
				out->fn_windows++;
				continue;
			}
			at.raw += at.value[w];
			out->tp_windows++;
			if (delays)
				delays[(*ndelays)++] = se->ts[at.first[w]] - se->win_start[w];
		}
		nwin += (int64_t) se->nwindows;
	}
	free(at.first);
	free(at.value);
	out->threshold = threshold;
	out->raw = at.raw;
	out->fp_rows = at.fp_rows;
	out->fp_events = at.fp_events;
	out->null_raw = -costs->fn * (double) nwin;
	out->perfect_raw = costs->tp * (double) nwin;
	out->normalised = nwin > 0 ?
		100.0 * (out->raw - out->null_raw) / (out->perfect_raw - out->null_raw) : NAN;
	return 0;
}

/*
 * forecast.c — forecasts with prediction intervals (see forecast.h).
 *
 * Why this shape: a server's metric is a daily curve times the day's level,
 * plus a mean-reverting wander, bursts, and incidents; disk grows and drops
 * back at its daily rotation. So:
 *  - the profile is the median over days of each 5-minute slot's mean: a
 *    burst or an incident on one day moves one of the values a median
 *    ignores, and a rotation at a fixed hour is part of the curve;
 *  - weekends (Saturday and Sunday, on the times' days: the caller
 *    passes local times) run lower and flatter than weekdays. When the
 *    span holds FC_WEEK_MIN_DAYS days' worth of weekend cells and as many
 *    of weekday ones (14 days hold 4 and 10), each class gets an
 *    adjustment of the profile: per slot the median of its days'
 *    departures from the profile, smoothed over +-FC_WEEK_SMOOTH slots
 *    (two weekends are few; the effect is smooth), and the trend compares
 *    days of the same class only. With less, the profile alone (daily
 *    only), and the day's level carries what a weekend does;
 *  - the trend is the median of the slopes between every two days'
 *    medians (Theil-Sen): what the disk keeps of a day's growth, unmoved by
 *    one odd day;
 *  - where the series is now decides the near future: the median of the
 *    last two hours' departures from profile and trend (today runs high or
 *    low; a median, so a burst does not lift it, where a mean would) fades
 *    over a day, or over four days where the profile's past errors 1 to
 *    24 hours ahead (whatever the call's horizon) say the level lasts (a
 *    real series' level shifts; the fleet's days are drawn afresh, so
 *    there it fades; the recent forecasts below use the same), and the
 *    median of the last five samples' departures beyond it fades with a
 *    time constant of about 12 minutes, as the wander reverts and a burst
 *    decays (measured on the fleet and NAB: 700 s, against 1500 s before,
 *    takes 15 minutes ahead from 0.67 to 0.61 of the day before's error
 *    and keeps 1 hour; two hours, against one, 1 and 6 hours). Five
 *    samples, not the last one: real series have spikes of one sample, and
 *    carrying them took NAB's 15-minute error from 0.503 to 0.546 of the
 *    day before's (the fleet's went the other way, 0.624 to 0.613);
 *  - a regime can end: on a real series a burst at :09 and :59 of every
 *    hour ran for six days of eleven and stopped, and those slots' median
 *    kept it. So two recent forecasts stand beside the profile's, the same
 *    but from the median of the last day's or the last 3 days' cells (a
 *    sample's departure measured from the days before its own, so their
 *    past errors are out of sample). Per horizon the one whose past errors
 *    (below) are smallest is used, recent origins weighing more (exp(-age
 *    / 2 days)), an error counted up to 32 times the profile's median one
 *    (one wild sample does not decide), and a recent one only when it
 *    beats the profile's by a tenth (the profile's errors are in sample,
 *    and it is the steadier). Between horizons that chose differently the
 *    forecast moves from one to the other in log(horizon);
 *  - the intervals are not assumed: the same forecasts are made from
 *    origins every 30 minutes and a sample over the last week of the span
 *    (one sample more, so the origins' phase in the hour moves and an
 *    hourly pattern is met at every minute; with the fitted profile and
 *    trend, each origin's own level and last samples), and the chosen
 *    forecast's signed errors' quantiles are kept by horizon (step, 2 step,
 *    4 step, ...); between them they are interpolated in log(horizon),
 *    widened for being in-sample (the profile's), and always hold the
 *    forecast.
 * Samples marked excluded (labelled incidents) shape none of it; the
 * latest samples, excluded or not, still say where the series is.
 */
#include "forecast.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define FC_LEVEL_SECONDS	7200.0	/* "now": the last two hours' departures */
#define FC_LEVEL			1		/* their 0 mean, 1 median, 2 interquartile mean */
#define FC_LEVEL_FADE		86400.0	/* which fades with this time constant */
#define FC_FAST_SAMPLES		5		/* the fast part: the median departure of the last 5 samples */
#define FC_FAST_FADE		700.0	/* fades with this time constant */
#define FC_BACKTEST_DAYS	7.0		/* origins of the interval errors: the last week */
#define FC_BACKTEST_EVERY	1800.0	/* an origin every 30 minutes */
#define FC_MAX_ORIGINS		512
#define FC_MIN_ERRORS		30		/* fewer: the previous horizon's quantiles */
#define FC_WEEK_MIN_DAYS	3		/* days of weekend (and of weekday) cells for the weekly part */
#define FC_WEEK_SMOOTH		6		/* the class adjustments: a mean over +-6 slots (65 minutes) */
#define FC_RECENT_TAU		(2 * 86400.0)	/* choosing a forecast: an origin's error weighs exp(-age / this) */
#define FC_SWITCH			0.9		/* a recent forecast replaces the profile's below this share of its error */
#define FC_ERR_CAP			32.0		/* choosing: an error counts up to 32 times the profile's median one (a wild sample does not decide; a regime's misses still do) */

static const int fc_recent_days[SMX_FC_RECENT] = {1, 3};

#define FC_FADE_ALT			(4 * 86400.0)	/* the level's other time constant: it lasts */
#define FC_FADE_SWITCH		0.95	/* chosen when the profile's errors with it are below this share */
#define FC_NFADES			2		/* the level fades (FC_LEVEL_FADE) or lasts (FC_FADE_ALT) */
static const double fc_fades[FC_NFADES] = {FC_LEVEL_FADE, FC_FADE_ALT};

typedef struct fc_work
{
	int			ndays;
	float	   *sum;			/* [ndays][SLOTS] */
	int		   *cnt;
	float	   *tmp;			/* ndays or SLOTS, for medians */
	float	   *dmed;			/* ndays: each day's median */
	float	   *pairs;			/* ndays (ndays - 1) / 2 slopes */
	float	   *dep;			/* n: departures from profile and trend */
	float	   *win;			/* the level's window of them */
	float	   *err;			/* [SMX_FC_HORIZONS][FC_MAX_ORIGINS] */
	float	   *rref[SMX_FC_RECENT];	/* [ndays][SLOTS]: a time's recent reference (fc_recent_ref) */
	float	   *rdep[SMX_FC_RECENT];	/* n: departures from it */
	float	   *rerr[SMX_FC_RECENT];	/* as err, the recent forecasts' (same cases) */
	float	   *eage;			/* as err: the case's origin's age, seconds */
	float	   *abse;			/* FC_MAX_ORIGINS: one horizon's absolute errors, for their median */
	uint8_t    *wkend;			/* [ndays][SLOTS]: the cell is on a weekend */
} fc_work;

static int
fc_days(int n, double step)
{
	return (int) ceil((double) (n - 1) * step / 86400.0) + 1;
}

/* Samples in the level's window: FC_LEVEL_SECONDS of them, 1..n. */
static int
fc_level_pts(int n, double step)
{
	return (int) fmin(fmax(ceil(FC_LEVEL_SECONDS / step), 1.0), (double) n);
}

/* Lay the work area out; with base NULL, only count the bytes. */
static size_t
fc_layout(void *base, int n, double step, fc_work *w)
{
	int			nd = fc_days(n, step);
	size_t		off = 0;
	char	   *b = base;

#define FC_TAKE(field, type, count) \
	do { \
		off = (off + 7) & ~(size_t) 7; \
		if (b) w->field = (type *) (b + off); \
		off += sizeof(type) * (size_t) (count); \
	} while (0)

	if (w)
		w->ndays = nd;
	FC_TAKE(sum, float, (size_t) nd * SMX_FC_SLOTS);
	FC_TAKE(cnt, int, (size_t) nd * SMX_FC_SLOTS);
	FC_TAKE(tmp, float, nd > SMX_FC_SLOTS ? nd : SMX_FC_SLOTS);
	FC_TAKE(dmed, float, nd);
	FC_TAKE(pairs, float, (size_t) nd * (nd - 1) / 2 + 1);
	FC_TAKE(dep, float, (size_t) n);
	FC_TAKE(win, float, fc_level_pts(n, step));
	FC_TAKE(err, float, (size_t) SMX_FC_HORIZONS * FC_MAX_ORIGINS);
	for (int r = 0; r < SMX_FC_RECENT; r++)
	{
		FC_TAKE(rref[r], float, (size_t) nd * SMX_FC_SLOTS);
		FC_TAKE(rdep[r], float, (size_t) n);
		FC_TAKE(rerr[r], float, (size_t) SMX_FC_HORIZONS * FC_MAX_ORIGINS);
	}
	FC_TAKE(eage, float, (size_t) SMX_FC_HORIZONS * FC_MAX_ORIGINS);
	FC_TAKE(abse, float, FC_MAX_ORIGINS);
	FC_TAKE(wkend, uint8_t, (size_t) nd * SMX_FC_SLOTS);
#undef FC_TAKE
	return off;
}

size_t
smx_fc_work_size(int n, double step)
{
	return fc_layout(NULL, n < 1 ? 1 : n, step, NULL);
}

static int
fc_cmp(const void *a, const void *b)
{
	float		x = *(const float *) a,
				y = *(const float *) b;

	return (x > y) - (x < y);
}

/*
 * Reorder v[0..n-1] so that v[k] is its k-th smallest, nothing larger
 * before it and nothing smaller after (Hoare's selection: linear on
 * average, where a sort is n log n; the fit takes thousands of medians).
 */
static void
fc_select(float *v, int n, int k)
{
	int			lo = 0,
				hi = n - 1;

	while (lo < hi)
	{
		float		pivot = v[lo + (hi - lo) / 2];
		int			i = lo,
					j = hi;

		while (i <= j)
		{
			while (v[i] < pivot)
				i++;
			while (v[j] > pivot)
				j--;
			if (i <= j)
			{
				float		t = v[i];

				v[i++] = v[j];
				v[j--] = t;
			}
		}
		if (k <= j)
			hi = j;
		else if (k >= i)
			lo = i;
		else
			return;
	}
}

/* Median of v[0..n-1] (reordered); NaN for n == 0. */
static float
fc_median(float *v, int n)
{
	float		below;

	if (n == 0)
		return NAN;
	fc_select(v, n, n / 2);
	if (n % 2)
		return v[n / 2];
	/* even: the largest of the lower half is the other middle value */
	below = v[0];
	for (int i = 1; i < n / 2; i++)
		below = v[i] > below ? v[i] : below;
	return 0.5f * (below + v[n / 2]);
}

/* The q-quantile (0..1) of sorted v[0..n-1], linear between ranks. */
static float
fc_quantile(const float *v, int n, double q)
{
	double		r = q * (n - 1);
	int			i = (int) floor(r);

	if (i >= n - 1)
		return v[n - 1];
	return (float) (v[i] + (r - i) * (v[i + 1] - v[i]));
}

/* The profile's slot of time t (seconds, UTC midnights at multiples of 86400). */
static inline int
fc_slot(double t)
{
	double		tod = fmod(t, 86400.0);

	if (tod < 0)
		tod += 86400.0;
	return (int) (tod / SMX_FC_SLOT_SECONDS) % SMX_FC_SLOTS;
}

/* Saturday or Sunday (UTC): 1970-01-01, day 0, was a Thursday. */
static inline int
fc_weekend(double t)
{
	double		d = floor(t / 86400.0);
	int			dow = (int) (fmod(d + 4.0, 7.0) + (d + 4.0 < 0 ? 7.0 : 0.0)) % 7;	/* 0 = Sunday */

	return dow == 0 || dow == 6;
}

static inline float
fc_clamp(float v, float lo, float hi)
{
	return v < lo ? lo : (v > hi ? hi : v);
}

/* The profile's value at time t, at t_last's trend level. */
static inline float
fc_profile_at(const smx_fc_model *m, double t)
{
	int			s = fc_slot(t);

	return m->profile[s] + (m->weekly && fc_weekend(t) ? m->weekend[s] : 0.0f);
}

/*
 * A forecast's mean ahead seconds after an origin, from its reference at
 * t_last's trend level (the profile's value, or the recent days') and the
 * origin's level and fast part.
 */
static inline float
fc_fade(double ahead, double fade, float level, float fast)
{
	return (float) (level * exp(-ahead / fade) + fast * exp(-ahead / FC_FAST_FADE));
}

static inline float
fc_from(const smx_fc_model *m, float ref, double t_origin, double ahead, float level, float fast)
{
	return (float) (ref + m->slope * (t_origin + ahead - m->t_last)) + fc_fade(ahead, m->fade, level, fast);
}

/* The profile's forecast ahead seconds after an origin with this level and fast part. */
static inline float
fc_mean(const smx_fc_model *m, double t_origin, double ahead, float level, float fast)
{
	return fc_from(m, fc_profile_at(m, t_origin + ahead), t_origin, ahead, level, fast);
}

/*
 * The recent reference of a time in day d's window (day -1: after t_last)
 * at slot s: the median of the cells of the days days before it, NaN when
 * they hold none. cells: the trend-adjusted slot means, [nd][SLOTS].
 */
static float
fc_recent_ref(const float *cells, int nd, int days, int d, int s)
{
	float		v[8];
	int			k = 0;

	for (int e = d + 1; e <= d + days && e < nd; e++)
		if (e >= 0 && !isnan(cells[e * SMX_FC_SLOTS + s]))
			v[k++] = cells[e * SMX_FC_SLOTS + s];
	return fc_median(v, k);
}

/*
 * Recent forecast r's value at sample i of n (no level): its reference in
 * the sample's day, brought back down the trend; the profile's where the
 * recent days hold no cell.
 */
static float
fc_recent_mean(const smx_fc_model *m, const fc_work *w, int r, int i, int n, double step)
{
	double		back = (double) (n - 1 - i) * step;
	float		ref = w->rref[r][(int) (back / 86400.0) * SMX_FC_SLOTS + fc_slot(m->t_last - back)];

	if (isnan(ref))
		ref = fc_profile_at(m, m->t_last - back);
	return (float) (ref - m->slope * back);
}

/*
 * Where the series is at sample o: the level, a robust mean (FC_LEVEL) of
 * the departures in the level_pts samples up to o, and the fast part, the
 * median departure of the last FC_FAST_SAMPLES beyond it (a median: a
 * spike of one sample, common in real series, does not carry). Returns 0
 * when the window holds no departure.
 */
static int
fc_now(const float *dep, int o, int level_pts, float *win, float *level, float *fast)
{
	float		last[FC_FAST_SAMPLES];
	int			k = 0,
				kf = 0;

	for (int i = o; i > o - level_pts && i >= 0; i--)
		if (!isnan(dep[i]))
		{
			win[k++] = dep[i];
			if (kf < FC_FAST_SAMPLES)
				last[kf++] = dep[i];
		}
	if (k == 0)
		return 0;
	if (FC_LEVEL == 0)
	{
		double		sum = 0;

		for (int i = 0; i < k; i++)
			sum += win[i];
		*level = (float) (sum / k);
	}
	else if (FC_LEVEL == 1)
		*level = fc_median(win, k);
	else
	{
		/* the interquartile mean: the middle half */
		int			a = k / 4,
					b = k - k / 4;
		double		sum = 0;

		qsort(win, (size_t) k, sizeof(float), fc_cmp);
		for (int i = a; i < b; i++)
			sum += win[i];
		*level = (float) (sum / (b - a));
	}
	*fast = fc_median(last, kf) - *level;
	return 1;
}

int
smx_fc_fit(const float *y, const uint8_t *exclude, int n, double step,
		   double t_last, double max_ahead, float lo, float hi,
		   void *work, smx_fc_model *m)
{
	fc_work		w;
	int			nd,
				good_days = 0,
				npairs = 0,
				per_day,
				level_pts,
				need,
				norig = 0;

	memset(m, 0, sizeof(*m));
	m->t_last = t_last;
	m->step = step;
	m->fade = (float) fc_fades[0];
	m->lo = lo;
	m->hi = hi;
	if (n < 2 || !(step > 0))
		return -1;
	fc_layout(work, n, step, &w);
	nd = w.ndays;
	/* in double first: a tiny step would overflow an int */
	per_day = (int) fmin(fmax(floor(86400.0 / step + 0.5), 1.0), (double) INT32_MAX / 2);
	level_pts = fc_level_pts(n, step);
	/* a usable day: samples in half the slots a day can have at this step */
	need = (per_day < SMX_FC_SLOTS ? per_day : SMX_FC_SLOTS) / 2;
	if (need < 1)
		need = 1;

	/* 1. each day's slot means; day d covers (t_last - (d+1) day, t_last - d day] */
	memset(w.sum, 0, sizeof(float) * (size_t) nd * SMX_FC_SLOTS);
	memset(w.cnt, 0, sizeof(int) * (size_t) nd * SMX_FC_SLOTS);
	memset(w.wkend, 0, (size_t) nd * SMX_FC_SLOTS);
	for (int i = 0; i < n; i++)
	{
		double		t = t_last - (double) (n - 1 - i) * step;
		int			d = (int) ((t_last - t) / 86400.0);
		int			c = d * SMX_FC_SLOTS + fc_slot(t);

		if (!isfinite(y[i]) || (exclude && exclude[i]))
			continue;
		if (w.cnt[c] == 0)
			w.wkend[c] = (uint8_t) fc_weekend(t);
		w.sum[c] += y[i];
		w.cnt[c]++;
	}
	for (int c = 0; c < nd * SMX_FC_SLOTS; c++)
	{
		w.sum[c] = w.cnt[c] ? w.sum[c] / (float) w.cnt[c] : NAN;
		if (!isfinite(w.sum[c]))
			w.sum[c] = NAN;
	}

	/*
	 * weekly when both classes of day have FC_WEEK_MIN_DAYS days of cells:
	 * then the profile is the weekdays' and the weekend gets its own
	 * adjustment, and the trend compares days of the same class only
	 */
	{
		int			nwe = 0,
					nwd = 0;

		for (int c = 0; c < nd * SMX_FC_SLOTS; c++)
			if (!isnan(w.sum[c]))
				(void) (w.wkend[c] ? nwe++ : nwd++);
		m->weekly = nwe >= FC_WEEK_MIN_DAYS * SMX_FC_SLOTS && nwd >= FC_WEEK_MIN_DAYS * SMX_FC_SLOTS;
	}

	/* 2. the trend: median slope between the medians of days half covered */
	{
		float	   *dmed = w.dmed;

		for (int d = 0; d < nd; d++)
		{
			int			k = 0;

			for (int s = 0; s < SMX_FC_SLOTS; s++)
				if (!isnan(w.sum[d * SMX_FC_SLOTS + s]))
					w.tmp[k++] = w.sum[d * SMX_FC_SLOTS + s];
			dmed[d] = k >= need ? fc_median(w.tmp, k) : NAN;
			if (k >= need)
				good_days++;
		}
		for (int a = 0; a < nd; a++)
			for (int b = a + 1; b < nd; b++)
				if (!isnan(dmed[a]) && !isnan(dmed[b]) &&
					(!m->weekly || fc_weekend(t_last - (a + 0.5) * 86400.0) == fc_weekend(t_last - (b + 0.5) * 86400.0)))
					w.pairs[npairs++] = (dmed[a] - dmed[b]) / (float) ((b - a) * 86400.0);
		m->slope = npairs ? fc_median(w.pairs, npairs) : 0.0;
	}
	m->days = good_days;
	if (good_days < SMX_FC_MIN_DAYS)
		return -1;

	/*
	 * 3. the profile at t_last's trend level: the slot means again, each
	 * sample brought up by the trend from its own time (a day's window
	 * splits the slot holding t_last's time of day between its two ends, a
	 * day apart), then per slot the median over days
	 */
	memset(w.sum, 0, sizeof(float) * (size_t) nd * SMX_FC_SLOTS);
	memset(w.cnt, 0, sizeof(int) * (size_t) nd * SMX_FC_SLOTS);
	memset(w.wkend, 0, (size_t) nd * SMX_FC_SLOTS);
	for (int i = 0; i < n; i++)
	{
		double		back = (double) (n - 1 - i) * step;
		double		t = t_last - back;
		int			c = (int) (back / 86400.0) * SMX_FC_SLOTS + fc_slot(t);

		if (!isfinite(y[i]) || (exclude && exclude[i]))
			continue;
		if (w.cnt[c] == 0)
			w.wkend[c] = (uint8_t) fc_weekend(t);
		w.sum[c] += (float) (y[i] + m->slope * back);
		w.cnt[c]++;
	}
	for (int c = 0; c < nd * SMX_FC_SLOTS; c++)
	{
		w.sum[c] = w.cnt[c] ? w.sum[c] / (float) w.cnt[c] : NAN;
		if (!isfinite(w.sum[c]))
			w.sum[c] = NAN;
	}
	{
		float		all[SMX_FC_SLOTS];
		int			nall = 0;
		float		mid;

		for (int s = 0; s < SMX_FC_SLOTS; s++)
		{
			int			k = 0;

			for (int d = 0; d < nd; d++)
			{
				float		v = w.sum[d * SMX_FC_SLOTS + s];

				if (!isnan(v))
					w.tmp[k++] = v;
			}
			m->profile[s] = fc_median(w.tmp, k);
			if (!isnan(m->profile[s]))
				all[nall++] = m->profile[s];
		}
		mid = fc_median(all, nall);
		/* a slot never seen (a gap at the same hour every day): its neighbours */
		for (int s = 0; s < SMX_FC_SLOTS; s++)
			if (isnan(m->profile[s]))
			{
				float		l = NAN,
							r = NAN;

				for (int k = 1; k < SMX_FC_SLOTS && (isnan(l) || isnan(r)); k++)
				{
					if (isnan(l) && !isnan(m->profile[(s - k + SMX_FC_SLOTS) % SMX_FC_SLOTS]))
						l = m->profile[(s - k + SMX_FC_SLOTS) % SMX_FC_SLOTS];
					if (isnan(r) && !isnan(m->profile[(s + k) % SMX_FC_SLOTS]))
						r = m->profile[(s + k) % SMX_FC_SLOTS];
				}
				m->profile[s] = isnan(l) || isnan(r) ? mid : 0.5f * (l + r);
			}

		/*
		 * weekly: each class of day (weekday, weekend) gets its adjustment
		 * of the profile, per slot the median of its cells' departures from
		 * it, then averaged over the FC_WEEK_SMOOTH slots each side (with
		 * two weekends a slot alone is noisy; the effect is smooth). The
		 * profile keeps the weekdays' and the weekend's is the difference.
		 */
		memset(m->weekend, 0, sizeof(m->weekend));
		if (m->weekly)
		{
			float		adj[2][SMX_FC_SLOTS];

			for (int cls = 0; cls <= 1; cls++)
			{
				for (int s = 0; s < SMX_FC_SLOTS; s++)
				{
					int			k = 0;

					for (int d = 0; d < nd; d++)
					{
						float		v = w.sum[d * SMX_FC_SLOTS + s];

						if (!isnan(v) && w.wkend[d * SMX_FC_SLOTS + s] == cls)
							w.tmp[k++] = v - m->profile[s];
					}
					all[s] = fc_median(w.tmp, k);
				}
				for (int s = 0; s < SMX_FC_SLOTS; s++)
				{
					double		sum = 0;
					int			k = 0;

					for (int j = -FC_WEEK_SMOOTH; j <= FC_WEEK_SMOOTH; j++)
					{
						float		v = all[(s + j + SMX_FC_SLOTS) % SMX_FC_SLOTS];

						if (!isnan(v))
							sum += v, k++;
					}
					adj[cls][s] = k ? (float) (sum / k) : 0.0f;
				}
			}
			for (int s = 0; s < SMX_FC_SLOTS; s++)
			{
				m->profile[s] += adj[0][s];
				m->weekend[s] = adj[1][s] - adj[0][s];
			}
		}
	}

	/* 4. departures from profile and trend, and where the series is now */
	for (int i = 0; i < n; i++)
		w.dep[i] = isfinite(y[i]) ?
			y[i] - fc_mean(m, t_last - (double) (n - 1 - i) * step, 0.0, 0.0f, 0.0f) : NAN;
	m->level = m->fast = 0.0f;
	fc_now(w.dep, n - 1, level_pts, w.win, &m->level, &m->fast);

	/*
	 * 4b. the recent forecasts: the same, from the median of the last 1 or
	 * 3 days' cells instead of the profile (where a regime changed, the
	 * profile's median over weeks keeps the old one). A sample's departure
	 * is from the days before its own, so their errors below are out of
	 * sample.
	 */
	for (int r = 0; r < SMX_FC_RECENT; r++)
	{
		for (int c = 0; c < nd * SMX_FC_SLOTS; c++)
			w.rref[r][c] = fc_recent_ref(w.sum, nd, fc_recent_days[r], c / SMX_FC_SLOTS, c % SMX_FC_SLOTS);
		for (int i = 0; i < n; i++)
			w.rdep[r][i] = isfinite(y[i]) ? y[i] - fc_recent_mean(m, &w, r, i, n, step) : NAN;
		for (int sl = 0; sl < SMX_FC_SLOTS; sl++)
			m->recent[r][sl] = fc_recent_ref(w.sum, nd, fc_recent_days[r], -1, sl);
		m->r_level[r] = m->r_fast[r] = 0.0f;
		fc_now(w.rdep[r], n - 1, level_pts, w.win, &m->r_level[r], &m->r_fast[r]);
	}

	/* 5. errors of the same forecast from past origins, by horizon */
	{
		/*
		 * one sample more than FC_BACKTEST_EVERY apart: the origins' phase in
		 * the hour then moves (an origin every 30 minutes exactly would
		 * always meet an hourly pattern at the same two points)
		 */
		int			every = (int) fmin(fmax(ceil(FC_BACKTEST_EVERY / step), 1.0) + 1.0, (double) n);
		int			span = (int) ((double) n * 0.5);
		int			first;
		int			cnt[SMX_FC_HORIZONS];
		float		widen;

		if (span > (int) (FC_BACKTEST_DAYS * 86400.0 / step))
			span = (int) (FC_BACKTEST_DAYS * 86400.0 / step);
		first = n - 1 - span;
		if (first < level_pts)
			first = level_pts;
		if (every < 1)
			every = 1;
		m->nq = 0;
		for (int k = 0; k < SMX_FC_HORIZONS; k++)
		{
			double		ahead = step * ldexp(1.0, k);

			m->q_ahead[k] = (float) ahead;
			m->nq = k + 1;
			cnt[k] = 0;
			if (ahead >= max_ahead)
				break;
		}
		/*
		 * 5a. how long the level lasts: the profile's errors from the same
		 * origins with each time constant, over the horizons from an hour to
		 * a day (where the level matters; the same whatever the call's
		 * horizon, so a forecast does not depend on how far it is asked for).
		 * m->fade holds the first until the second proves better.
		 */
		{
			double		mae[FC_NFADES][SMX_FC_HORIZONS] = {{0}};
			double		keep[FC_NFADES][SMX_FC_HORIZONS],
						keep_fast[SMX_FC_HORIZONS];
			int			ncase[SMX_FC_HORIZONS] = {0};
			int			no = 0,
						k_lo = 0,
						k_hi;

			while (k_lo < SMX_FC_HORIZONS - 1 && step * ldexp(1.0, k_lo) < 3600.0)
				k_lo++;
			for (k_hi = k_lo; k_hi < SMX_FC_HORIZONS - 1 && step * ldexp(1.0, k_hi) < 86400.0; k_hi++)
				;
			for (int k = k_lo; k <= k_hi; k++)
			{
				double		ahead = step * ldexp(1.0, k);

				for (int f = 0; f < FC_NFADES; f++)
					keep[f][k] = exp(-ahead / fc_fades[f]);
				keep_fast[k] = exp(-ahead / FC_FAST_FADE);
			}

			for (int o = n - 1 - every; o >= first && no < FC_MAX_ORIGINS; o -= every)
			{
				double		t_o = t_last - (double) (n - 1 - o) * step;
				double		wt = exp(-(double) (n - 1 - o) * step / FC_RECENT_TAU);
				float		lev,
							fst;

				if (!isfinite(y[o]) || (exclude && exclude[o]) ||
					!fc_now(w.dep, o, level_pts, w.win, &lev, &fst))
					continue;
				no++;
				for (int k = k_lo; k <= k_hi; k++)
				{
					int			j = o + (int) ldexp(1.0, k);
					double		t_j = t_o + (double) (j - o) * step,
								base;

					if (j >= n || !isfinite(y[j]) || (exclude && exclude[j]))
						continue;
					/* what is left once profile, trend and fast part are taken */
					base = y[j] - fc_profile_at(m, t_j) - m->slope * (t_j - t_last) - fst * keep_fast[k];
					for (int f = 0; f < FC_NFADES; f++)
						mae[f][k] += wt * fabs(base - lev * keep[f][k]);
					ncase[k]++;
				}
			}
			/* the mean over horizons of the lasting level's error over the fading one's */
			{
				double		sum = 0;
				int			nk = 0;

				for (int k = k_lo; k <= k_hi; k++)
					if (ncase[k] >= FC_MIN_ERRORS && mae[0][k] > 0)
						sum += mae[1][k] / mae[0][k], nk++;
				if (nk > 0 && sum < FC_FADE_SWITCH * nk)
					m->fade = (float) fc_fades[1];
			}
		}
		for (int o = n - 1 - every; o >= first && norig < FC_MAX_ORIGINS; o -= every)
		{
			double		t_o = t_last - (double) (n - 1 - o) * step;
			float		lev,
						fst,
						rlev[SMX_FC_RECENT],
						rfst[SMX_FC_RECENT];

			if (!isfinite(y[o]) || (exclude && exclude[o]) ||
				!fc_now(w.dep, o, level_pts, w.win, &lev, &fst))
				continue;
			for (int r = 0; r < SMX_FC_RECENT; r++)
				if (!fc_now(w.rdep[r], o, level_pts, w.win, &rlev[r], &rfst[r]))
					rlev[r] = rfst[r] = 0.0f;
			for (int k = 0; k < m->nq; k++)
			{
				int			j = o + (int) ldexp(1.0, k);
				int			e = k * FC_MAX_ORIGINS + cnt[k];

				if (j >= n || !isfinite(y[j]) || (exclude && exclude[j]))
					continue;
				w.err[e] = y[j] - fc_mean(m, t_o, (double) (j - o) * step, lev, fst);
				for (int r = 0; r < SMX_FC_RECENT; r++)
					w.rerr[r][e] = y[j] - fc_recent_mean(m, &w, r, j, n, step) -
						fc_fade((double) (j - o) * step, m->fade, rlev[r], rfst[r]);
				w.eage[e] = (float) ((double) (n - 1 - o) * step);
				cnt[k]++;
			}
			norig++;
		}
		for (int k = 0; k < m->nq; k++)
		{
			float	   *e = &w.err[k * FC_MAX_ORIGINS];

			/*
			 * which forecast this far ahead: the profile's, unless a recent
			 * one's errors, recent origins weighing more, are clearly smaller
			 * (its own are in sample, so it is favoured). Its errors give
			 * the intervals: out of sample, they need no widening.
			 */
			m->src[k] = k > 0 ? m->src[k - 1] : 0;
			if (cnt[k] >= FC_MIN_ERRORS)
			{
				double		mae[1 + SMX_FC_RECENT] = {0},
							cap;

				for (int i = 0; i < cnt[k]; i++)
					w.abse[i] = fabsf(e[i]);
				cap = FC_ERR_CAP * fc_median(w.abse, cnt[k]);
				for (int i = 0; i < cnt[k]; i++)
				{
					double		wt = exp(-w.eage[k * FC_MAX_ORIGINS + i] / FC_RECENT_TAU);

					mae[0] += wt * fmin(fabs(e[i]), cap);
					for (int r = 0; r < SMX_FC_RECENT; r++)
						mae[1 + r] += wt * fmin(fabs(w.rerr[r][k * FC_MAX_ORIGINS + i]), cap);
				}
				m->src[k] = 0;
				for (int r = 0; r < SMX_FC_RECENT; r++)
					if (mae[1 + r] < FC_SWITCH * mae[0] && mae[1 + r] < mae[m->src[k]])
						m->src[k] = 1 + r;
			}
			/*
			 * The profile's errors are in sample: it was fitted on the same
			 * days, so with D days each is shrunk by about (D - 1)/D in
			 * variance where a new day's is grown by (D + 1)/D. Widen them by
			 * that ratio's root (1.73 with 2 days, 1.07 with 14). A recent
			 * forecast's are out of sample already.
			 */
			if (m->src[k] > 0)
			{
				e = w.rerr[m->src[k] - 1] + k * FC_MAX_ORIGINS;
				widen = 1.0f;
			}
			else
				widen = (float) sqrt((m->days + 1.0) / (m->days - 1.0));

			m->q_count[k] = cnt[k];
			if (cnt[k] >= FC_MIN_ERRORS)
			{
				static const double qs[4] = {0.025, 0.10, 0.90, 0.975};

				qsort(e, (size_t) cnt[k], sizeof(float), fc_cmp);
				for (int j = 0; j < 4; j++)
					m->q[k][j] = widen * fc_quantile(e, cnt[k], qs[j]);
			}
			else if (k > 0)
			{
				/* too few errors this far ahead: the last quantiles, grown as sqrt(ahead) */
				float		grow = sqrtf(m->q_ahead[k] / m->q_ahead[k - 1]);

				for (int j = 0; j < 4; j++)
					m->q[k][j] = m->q[k - 1][j] * grow;
			}
			else
				memset(m->q[k], 0, sizeof(m->q[k]));
		}
	}
	return 0;
}

/* Forecast src's mean ahead seconds after t_last (0 the profile's, 1 + r recent[r]'s). */
static float
fc_src_mean(const smx_fc_model *m, int src, double ahead)
{
	float		ref;

	if (src == 0)
		return fc_mean(m, m->t_last, ahead, m->level, m->fast);
	ref = m->recent[src - 1][fc_slot(m->t_last + ahead)];
	if (isnan(ref))
		ref = fc_profile_at(m, m->t_last + ahead);
	return fc_from(m, ref, m->t_last, ahead, m->r_level[src - 1], m->r_fast[src - 1]);
}

void
smx_fc_at(const smx_fc_model *m, double ahead, float out[5])
{
	float		q[4];
	float		mean;
	int			k = 0;

	/*
	 * the measured horizons around ahead, interpolated in log(ahead): their
	 * quantiles, and their forecasts where they differ
	 */
	if (m->nq == 0)
	{
		memset(q, 0, sizeof(q));
		mean = fc_src_mean(m, 0, ahead);
	}
	else if (ahead <= m->q_ahead[0])
	{
		memcpy(q, m->q[0], sizeof(q));
		mean = fc_src_mean(m, m->src[0], ahead);
	}
	else
	{
		while (k + 1 < m->nq && m->q_ahead[k + 1] < ahead)
			k++;
		if (k + 1 >= m->nq)
		{
			/* beyond the last measured horizon: grown as sqrt(ahead) */
			float		grow = sqrtf((float) (ahead / m->q_ahead[m->nq - 1]));

			for (int j = 0; j < 4; j++)
				q[j] = m->q[m->nq - 1][j] * grow;
			mean = fc_src_mean(m, m->src[m->nq - 1], ahead);
		}
		else
		{
			double		f = log(ahead / m->q_ahead[k]) / log(m->q_ahead[k + 1] / m->q_ahead[k]);

			for (int j = 0; j < 4; j++)
				q[j] = (float) (m->q[k][j] + f * (m->q[k + 1][j] - m->q[k][j]));
			mean = fc_src_mean(m, m->src[k], ahead);
			if (m->src[k + 1] != m->src[k])
				mean = (float) ((1.0 - f) * mean + f * fc_src_mean(m, m->src[k + 1], ahead));
		}
	}
	/* an interval always holds the forecast, the 95 % one the 80 % one */
	q[1] = fminf(q[1], 0.0f);
	q[2] = fmaxf(q[2], 0.0f);
	q[0] = fminf(q[0], q[1]);
	q[3] = fmaxf(q[3], q[2]);
	out[0] = fc_clamp(mean, m->lo, m->hi);
	out[1] = fc_clamp(mean + q[1], m->lo, m->hi);
	out[2] = fc_clamp(mean + q[2], m->lo, m->hi);
	out[3] = fc_clamp(mean + q[0], m->lo, m->hi);
	out[4] = fc_clamp(mean + q[3], m->lo, m->hi);
}

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
 *    over a day, and the last sample's own departure beyond it fades with a
 *    time constant of about 12 minutes, as the wander reverts and a burst
 *    decays (measured on the fleet and NAB: 700 s, against 1500 s before,
 *    takes 15 minutes ahead from 0.67 to 0.61 of the day before's error
 *    and keeps 1 hour; two hours, against one, 1 and 6 hours);
 *  - the intervals are not assumed: the same forecast is made from origins
 *    every 30 minutes over the last week of the span (with the fitted
 *    profile and trend, each origin's own level and last sample), and the
 *    signed errors' quantiles are kept by horizon (step, 2 step, 4 step,
 *    ...); between them they are interpolated in log(horizon), widened for
 *    being in-sample, and always hold the forecast.
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
#define FC_FAST_SECONDS		0.0		/* the fast part: the mean departure of this long (at least a sample) */
#define FC_FAST_FADE		700.0	/* fades with this time constant */
#define FC_BACKTEST_DAYS	7.0		/* origins of the interval errors: the last week */
#define FC_BACKTEST_EVERY	1800.0	/* an origin every 30 minutes */
#define FC_MAX_ORIGINS		512
#define FC_MIN_ERRORS		30		/* fewer: the previous horizon's quantiles */
#define FC_WEEK_MIN_DAYS	3		/* days of weekend (and of weekday) cells for the weekly part */
#define FC_WEEK_SMOOTH		6		/* the class adjustments: a mean over +-6 slots (65 minutes) */

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

/* Median of v[0..n-1] (reordered); NaN for n == 0. */
static float
fc_median(float *v, int n)
{
	if (n == 0)
		return NAN;
	qsort(v, (size_t) n, sizeof(float), fc_cmp);
	return n % 2 ? v[n / 2] : 0.5f * (v[n / 2 - 1] + v[n / 2]);
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

/* The forecast's mean ahead seconds after an origin with this level and fast part. */
static inline float
fc_mean(const smx_fc_model *m, double t_origin, double ahead, float level, float fast)
{
	double		t = t_origin + ahead;

	int			s = fc_slot(t);

	return (float) (m->profile[s] + (m->weekly && fc_weekend(t) ? m->weekend[s] : 0.0f) +
					m->slope * (t - m->t_last) +
					level * exp(-ahead / FC_LEVEL_FADE) + fast * exp(-ahead / FC_FAST_FADE));
}

/*
 * Where the series is at sample o: the level, a robust mean (FC_LEVEL) of
 * the departures in the level_pts samples up to o, and the fast part, the
 * mean departure of the last FC_FAST_SECONDS beyond it. Returns 0 when the
 * window holds no departure.
 */
static int
fc_now(const float *dep, int o, int level_pts, double step, float *win, float *level, float *fast)
{
	int			k = 0,
				kf = 0,
				fast_pts = (int) fmax(ceil(FC_FAST_SECONDS / step - 1e-9), 1.0);
	double		sf = 0;

	for (int i = o; i > o - level_pts && i >= 0; i--)
		if (!isnan(dep[i]))
		{
			win[k++] = dep[i];
			if (o - i < fast_pts)
				sf += dep[i], kf++;
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
	*fast = kf ? (float) (sf / kf) - *level : 0.0f;
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
	fc_now(w.dep, n - 1, level_pts, step, w.win, &m->level, &m->fast);

	/* 5. errors of the same forecast from past origins, by horizon */
	{
		int			every = (int) fmin(fmax(ceil(FC_BACKTEST_EVERY / step), 1.0), (double) n);
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
		for (int o = n - 1 - every; o >= first && norig < FC_MAX_ORIGINS; o -= every)
		{
			double		t_o = t_last - (double) (n - 1 - o) * step;
			float		lev,
						fst;

			if (!isfinite(y[o]) || (exclude && exclude[o]) ||
				!fc_now(w.dep, o, level_pts, step, w.win, &lev, &fst))
				continue;
			for (int k = 0; k < m->nq; k++)
			{
				int			j = o + (int) ldexp(1.0, k);

				if (j >= n || !isfinite(y[j]) || (exclude && exclude[j]))
					continue;
				w.err[k * FC_MAX_ORIGINS + cnt[k]++] =
					y[j] - fc_mean(m, t_o, (double) (j - o) * step, lev, fst);
			}
			norig++;
		}
		/*
		 * The errors are in-sample: the profile was fitted on the same days,
		 * so with D days each is shrunk by about (D - 1)/D in variance where a
		 * new day's is grown by (D + 1)/D. Widen them by that ratio's root
		 * (1.73 with 2 days, 1.07 with 14).
		 */
		widen = (float) sqrt((m->days + 1.0) / (m->days - 1.0));
		for (int k = 0; k < m->nq; k++)
		{
			float	   *e = &w.err[k * FC_MAX_ORIGINS];

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

void
smx_fc_at(const smx_fc_model *m, double ahead, float out[5])
{
	float		q[4];
	float		mean = fc_mean(m, m->t_last, ahead, m->level, m->fast);
	int			k = 0;

	/* the measured horizons around ahead, interpolated in log(ahead) */
	if (m->nq == 0)
		memset(q, 0, sizeof(q));
	else if (ahead <= m->q_ahead[0])
		memcpy(q, m->q[0], sizeof(q));
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
		}
		else
		{
			double		f = log(ahead / m->q_ahead[k]) / log(m->q_ahead[k + 1] / m->q_ahead[k]);

			for (int j = 0; j < 4; j++)
				q[j] = (float) (m->q[k][j] + f * (m->q[k + 1][j] - m->q[k][j]));
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

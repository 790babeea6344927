/*
 * detect.c — the streaming anomaly detector (see detect.h).
 *
 * A series is predicted one row ahead by a robust Holt smoother (level and
 * trend, time constant 64 rows): slow enough that an incident of tens of
 * rows does not become the new normal, fast enough to follow a daily cycle
 * and a slow growth. Its residual is standardised by the series' typical
 * residual, which already holds the series' own mean-reverting wander, so a
 * noisy series and a quiet one share one threshold. Residuals move the
 * level and the scale only by a clipped amount: a burst or an incident
 * barely bends them.
 *
 * The evidence is a short average (gain 1/4) of the standardised residual
 * clipped at DET_ZC: a heavy-tailed burst that decays in a few rows adds at
 * most DET_ZC per row and is gone before the average fills, while a
 * departure of DET_ZC scales that holds fills it within about ten rows.
 * A one-row jump whose landing holds for a few rows (a log rotation, a GC
 * drop, a level shift) is taken as the new level, and its evidence dropped.
 */
#include "detect.h"
#include "model.h"

#include <math.h>
#include <string.h>

#define DET_ALPHA		(1.0f / 64)	/* level gain */
#define DET_BETA		(1.0f / 16)	/* trend gain, relative to the level's */
#define DET_CLIP		3.0f		/* residuals move level and scale by at most this many scales */
#define DET_SCALE_GAIN	(1.0f / 256)
#define DET_EV_GAIN		0.25f
#define DET_ZC			6.0f		/* a row's weight in the evidence, at most */
#define DET_JUMP		6.0f		/* a one-row move this large may be a level shift */
#define DET_HOLD		3			/* rows (the jump's included) the landing must hold */
#define DET_LAND		1.5f		/* and how close to it, in scales */

static inline float
det_clip(float v, float lim)
{
	return v > lim ? lim : (v < -lim ? -lim : v);
}

/*
 * One row of series d: updates the state, returns the signed evidence (in
 * scales, |e| <= DET_ZC; 0 during the warm-up) and leaves the row's z in d->z.
 */
static inline float
det_core(smx_detector *d, float x)
{
	float		pred,
				r,
				s,
				z,
				psi,
				g;

	if (d->n == 0)
	{
		memset(d, 0, sizeof(*d));
		d->level = x;
		d->prev = x;
		d->n = 1;
		return 0.0f;
	}
	pred = d->level + d->trend;
	r = x - pred;
	/* a floor: flat stretches have no scale to divide by */
	s = d->scale + 1e-6f + 1e-3f * fabsf(d->level);
	z = r / s;
	d->z = z;
	d->ev += DET_EV_GAIN * (det_clip(z, DET_ZC) - d->ev);

	/* a level shift: one row jumps, the next ones stay where it landed */
	if (d->run > 0)
		d->run = fabsf(x - d->land) <= DET_LAND * s ? d->run + 1 : 0;
	if (fabsf(z) > DET_JUMP && d->run == 0 && fabsf(x - d->prev) > DET_JUMP * s)
	{
		d->run = 1;
		d->land = x;
	}
	d->prev = x;
	if (d->run >= DET_HOLD)
	{
		d->level = x;
		d->trend = 0.0f;
		d->ev = 0.0f;
		d->run = 0;
	}
	else
	{
		psi = det_clip(r, DET_CLIP * s);
		g = d->n < 32 ? 1.0f / (float) d->n : DET_SCALE_GAIN;
		d->level = pred + DET_ALPHA * psi;
		d->trend += (DET_ALPHA * DET_BETA) * psi;
		d->scale += g * (fabsf(psi) - d->scale);
	}
	if (d->n < UINT32_MAX)
		d->n++;
	return d->n <= SMX_DETECT_WARMUP ? 0.0f : d->ev;
}

/* ---- the onset stage of a series (smx_series_step) ---- */

#define ONSET_SMOOTH	0.5f	/* gain of the two bin surprises */
#define ONSET_PRIOR		0.5f	/* pseudo-count of every bin (add-half smoothing) */
#define ONSET_KEEP		0.9995	/* rank counts decay by this a row (~2,000 rows) */
#define ONSET_RANK_BASE	0.05f	/* a feature this small is no surprise at all */
#define ONSET_RANK_STEP	0.15f	/* rank bins: sizes a factor e^0.15 apart */
#define ONSET_RECORD_KEEP 0.9f	/* the record decays by this a row below it */

/*
 * A feature smaller than this is never rare, however new: a residual of 2
 * scales, an evidence of 1, a bin surprise under 0.3 of a uniform guess's.
 * Without it a series flat for days alarms at its first wobble.
 */
static const float onset_gate[SMX_ONSET_FEATURES] = {2.0f, 1.0f, 0.3f, 0.3f};
#define ONSET_SLOT_SECONDS (86400 / SMX_ONSET_SLOTS)

/* Surprise of a bin under counts c (total tot): 0 (certain) .. 1 (uniform) .. */
static inline float
onset_surprise(float c, float tot)
{
	float		p = (c + ONSET_PRIOR) / (tot + ONSET_PRIOR * SMX_ONSET_BINS);

	return -logf(p) * (float) (1.0 / 2.0794415416798357);	/* ln 8 */
}

/* The rank bin of a feature's size f >= 0: 0 below the base, then log-spaced. */
static inline int
onset_rank_bin(float f)
{
	float		b;

	if (!(f > ONSET_RANK_BASE))
		return 0;
	b = 1.0f + logf(f / ONSET_RANK_BASE) * (1.0f / ONSET_RANK_STEP);
	return b >= (float) (SMX_ONSET_RANKS - 1) ? SMX_ONSET_RANKS - 1 : (int) b;
}

float
smx_series_step(smx_series_detector *s, int64_t t, double xd, float *level)
{
	float		x = (float) xd,
				e,
				seq = 0.0f,
				day,
				f[SMX_ONSET_FEATURES],
				rare = 0.0f,
				out;
	bool		novel = false;
	int			bin,
				slot;

	if (level)
		*level = 0.0f;
	if (!isfinite(x))			/* also a double beyond float's range */
		return 0.0f;
	e = det_core(&s->core, x);

	/* the value's bin over the range so far; outside it is new by itself */
	if (s->rows == 0)
	{
		s->lo = s->hi = x;
		s->first = t;
		s->prev_bin = -1;
		s->gain = 1.0;
	}
	if (x < s->lo)
	{
		s->lo = x;
		novel = true;
	}
	if (x > s->hi)
	{
		s->hi = x;
		novel = true;
	}
	bin = s->hi > s->lo ? (int) ((x - s->lo) / (s->hi - s->lo) * (SMX_ONSET_BINS - 1) + 0.5) : 0;
	if (s->rows < UINT32_MAX)
		s->rows++;

	/* a sequence never seen: this bin after the previous row's */
	if (s->prev_bin >= 0)
	{
		seq = onset_surprise(s->next[s->prev_bin][bin], s->next_total[s->prev_bin]);
		if (novel)
			seq = fmaxf(seq, 1.0f);
		s->next[s->prev_bin][bin] += 1.0f;
		s->next_total[s->prev_bin] += 1.0f;
	}
	s->prev_bin = bin;
	/* a daily shape broken: this bin in its slot of the day */
	slot = (int) (((t % 86400) + 86400) % 86400 / ONSET_SLOT_SECONDS);
	day = onset_surprise(s->slot[slot][bin], s->slot_total[slot]);
	s->slot[slot][bin] += 1.0f;
	s->slot_total[slot] += 1.0f;
	s->seq_surprise += ONSET_SMOOTH * (seq - s->seq_surprise);
	s->day_surprise += ONSET_SMOOTH * (day - s->day_surprise);

	/* the scale settles in the warm-up's first half: no ranking before */
	if (s->core.n <= SMX_DETECT_WARMUP / 2)
		return 0.0f;
	f[0] = fabsf(s->core.z);
	f[1] = fabsf(s->core.ev);
	f[2] = s->seq_surprise;
	f[3] = s->day_surprise;
	/*
	 * Rank each feature: c = the decayed count of earlier rows whose
	 * feature was in this bin or above; rarity 1/(1 + c). The counts decay
	 * lazily: a row adds gain, which grows by 1/ONSET_KEEP a row, and
	 * everything is brought back to scale before gain gets large.
	 */
	for (int k = 0; k < SMX_ONSET_FEATURES; k++)
	{
		int			b = onset_rank_bin(f[k]);
		double		c = 0.0;

		for (int i = b; i < SMX_ONSET_RANKS; i++)
			c += s->rank[k][i];
		c /= s->gain;
		/* the daily feature is ranked from the start, and counts after a day */
		if (b > 0 && f[k] > onset_gate[k] && (k != 3 || t - s->first >= 86400))
			rare = fmaxf(rare, (float) (1.0 / (1.0 + c)));
	}
	s->gain /= ONSET_KEEP;
	for (int k = 0; k < SMX_ONSET_FEATURES; k++)
		s->rank[k][onset_rank_bin(f[k])] += s->gain;
	if (s->gain > 1e100)
	{
		for (int k = 0; k < SMX_ONSET_FEATURES; k++)
			for (int i = 0; i < SMX_ONSET_RANKS; i++)
				s->rank[k][i] /= s->gain;
		s->gain = 1.0;
	}

	/* only what beats the recent record: an event alarms once */
	out = rare - s->record;
	if (rare >= s->record)
		s->record = rare;
	else
		s->record *= ONSET_RECORD_KEEP;
	if (s->core.n <= SMX_DETECT_WARMUP)
		return 0.0f;
	if (level)
		*level = fabsf(e) * (1.0f / DET_ZC);
	return out > 0.0f ? out : 0.0f;
}

const char *const smx_detect_signal_names[SMX_DETECT_SIGNALS + 1] = {
	"cpu_usage", "memory_usage", "disk_usage", "network_usage", "response_time_ms",
	"status"
};

float
smx_detect_server(smx_server_detector *d, const float x[SMX_DETECT_SIGNALS], uint8_t *driver)
{
	float		best = 0.0f;
	uint8_t		which = 0;

	for (int m = 0; m < SMX_DETECT_SIGNALS; m++)
	{
		float		e = det_core(&d->m[m], x[m]);

		if (e > best)
		{
			best = e;
			which = (uint8_t) m;
		}
	}
	*driver = which;
	return best * (1.0f / DET_ZC);
}

/*
 * log2(v) for v >= 1, to about 0.005: the exponent plus a parabola through
 * the mantissa. The detector standardises, so the base does not matter, and
 * this costs a few instructions where log1pf costs tens of nanoseconds.
 */
static inline float
det_log2(float v)
{
	uint32_t	b;
	int32_t		e;
	float		m;

	if (!(v >= 1.0f))
		v = 1.0f;
	memcpy(&b, &v, sizeof(b));
	e = (int32_t) (b >> 23) - 127;
	b = (b & 0x007fffffu) | 0x3f800000u;
	memcpy(&m, &b, sizeof(m));
	return (float) e + (-0.34484843f * m + 2.02466578f) * m - 1.67487759f;
}

void
smx_detect_fleet(smx_state *s, smx_server_detector *d, int n)
{
	for (int i = 0; i < n; i++, s++, d++)
	{
		float		x[SMX_DETECT_SIGNALS];

		if (s->status == SMX_STATUS_OFFLINE)
		{
			s->anomaly = 1.0f;
			s->anomaly_signal = SMX_DETECT_OFFLINE;
			continue;
		}
		x[0] = s->cpu;
		x[1] = s->memory;
		x[2] = s->disk;
		x[3] = s->network;
		x[4] = det_log2(1.0f + s->response_ms);
		s->anomaly = smx_detect_server(d, x, &s->anomaly_signal);
	}
}

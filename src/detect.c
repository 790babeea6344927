/*
 * detect.c — the streaming anomaly detector (see detect.h).
 *
 * A series is predicted one row ahead by a robust Holt smoother (level and
 * trend); the residual is standardised by the series' typical residual and
 * averaged over a few rows, so a lone heavy-tailed burst counts for little
 * and a sustained departure for much. Residuals far off the prediction move
 * the level only by a clipped amount, so an incident does not become the
 * new normal while it lasts; a departure that stays put and flat for long
 * enough is a level shift (a rotated log, a GC) and is taken as the new
 * level. The evidence is turned into a score by its own tail: how far it is
 * above what this series usually shows, so a noisy series and a quiet one
 * share one threshold.
 */
#include "detect.h"
#include "model.h"

#include <math.h>

#define DET_ALPHA		(1.0f / 64)	/* level gain */
#define DET_BETA		(1.0f / 16)	/* trend gain, relative to the level's */
#define DET_CLIP		2.5f		/* residuals beyond this many scales are clipped */
#define DET_SCALE_N		128			/* rows the scale averages over */
#define DET_FAST_GAIN	(1.0f / 8)
#define DET_Z_EV		3.5f		/* a row's weight in the evidence, at most */
#define DET_EV_N		1024
#define DET_JUMP_Z		4.0f		/* a one-row move this large may be a level shift */
#define DET_SHIFT_ROWS	3			/* rows the new level must hold */
#define DET_Z_MAX		50.0f

static float
det_floor(float level)
{
	return 1e-6f + 1e-3f * fabsf(level);
}

static float
det_clip(float v, float lim)
{
	return v > lim ? lim : (v < -lim ? -lim : v);
}

float
smx_detect_step(smx_detector *d, double xd)
{
	float		x,
				pred,
				r,
				s,
				z,
				ev,
				u,
				g;

	if (!isfinite(xd))
		return 0.0f;
	x = (float) xd;
	if (d->n == 0)
	{
		*d = (smx_detector) {0};
		d->level = x;
		d->peak = x;			/* the previous row */
		d->n = 1;
		return 0.0f;
	}

	pred = d->level + d->trend;
	r = x - pred;
	s = fmaxf(d->scale, det_floor(d->level));
	z = det_clip(r / s, DET_Z_MAX);

	d->fast += DET_FAST_GAIN * (det_clip(z, DET_Z_EV) - d->fast);
	ev = fabsf(d->fast);

	/*
	 * A level shift: one row jumps, the following ones stay where it
	 * landed. d->run counts rows since the jump (0: none pending), mean_ev
	 * is left alone; the landing value is kept in d->pad-free float below.
	 */
	if (d->run > 0)
	{
		if (fabsf(x - d->var_ev_land) <= DET_CLIP * s && fabsf(z) > DET_CLIP)
			d->run++;
		else
			d->run = 0;
	}
	if (d->run == 0 && fabsf(x - d->peak) > DET_JUMP_Z * s && fabsf(z) > DET_JUMP_Z)
	{
		d->run = 1;
		d->var_ev_land = x;
	}
	d->peak = x;

	if (d->run >= DET_SHIFT_ROWS)
	{
		d->level = x;
		d->trend = 0.0f;
		d->fast = 0.0f;
		d->run = 0;
	}
	else
	{
		float		psi = det_clip(r, DET_CLIP * s);

		d->level = pred + DET_ALPHA * psi;
		d->trend += DET_ALPHA * DET_BETA * psi;
		g = d->n < DET_SCALE_N ? 1.0f / d->n : 1.0f / DET_SCALE_N;
		d->scale += g * (fminf(fabsf(r), DET_CLIP * s) - d->scale);
	}

	/* the evidence against this series' own usual evidence */
	g = d->n < DET_EV_N ? 1.0f / d->n : 1.0f / DET_EV_N;
	u = d->var_ev > 0.0f ? (ev - d->mean_ev) / sqrtf(d->var_ev) : 0.0f;
	d->mean_ev += g * (ev - d->mean_ev);
	d->var_ev += g * ((ev - d->mean_ev) * (ev - d->mean_ev) - d->var_ev);

	if (d->n < UINT32_MAX)
		d->n++;
	(void) u;
	if (d->n <= SMX_DETECT_WARMUP)
		return 0.0f;
	return ev / DET_Z_EV;
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
		float		sc = smx_detect_step(&d->m[m], x[m]);

		if (sc > best)
		{
			best = sc;
			which = (uint8_t) m;
		}
	}
	*driver = which;
	return best;
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
		x[4] = log1pf(s->response_ms);
		s->anomaly = smx_detect_server(d, x, &s->anomaly_signal);
	}
}

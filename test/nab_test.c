/*
 * nab_test - unit tests of src/nab.c on small hand-made series.
 *
 * Build and run (from the repository root):
 *   cc -std=c11 -g -Wall -Wextra -Werror -ffp-contract=off -Isrc -O1 \
 *      -fsanitize=address,undefined -fno-sanitize-recover=all \
 *      -fno-omit-frame-pointer src/nab.c test/nab_test.c -lm -o test/nab_test
 *   ./test/nab_test
 * Under valgrind:
 *   cc -std=c11 -g -Wall -Wextra -Werror -ffp-contract=off -Isrc -O2 \
 *      src/nab.c test/nab_test.c -lm -o test/nab_test_vg
 *   valgrind --error-exitcode=1 --leak-check=full -q ./test/nab_test_vg
 *
 * Expectations are worked out by hand from NAB's rules.  NAB's scaled
 * sigmoid S(x) = 2 sigmoid(-5x) - 1 is tanh(-5x/2), so a true positive at
 * position p in a window is worth tanh(-5p/2)/tanh(5/2) and a false
 * positive at distance d past a window costs fp tanh(5d/2): closed forms
 * computed differently from nab.c, compared to 1e-12.
 */
#include "nab.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int	ntest,
			nfail;

static void
check(int ok, const char *what)
{
	ntest++;
	if (!ok)
		nfail++;
	printf("%s %d - %s\n", ok ? "ok" : "not ok", ntest, what);
}

static int
near(double a, double b)
{
	return fabs(a - b) <= 1e-12 * (1.0 + fabs(b));
}

/* a TP at position p (p = -(R - i + 1)/W) */
static double
tp_at(double p)
{
	return tanh(-2.5 * p) / tanh(2.5);
}

/* a FP at distance d = (i - R)/(W - 1) past a window, cost fp */
static double
fp_at(double d, double fp)
{
	return d > 3.0 ? -fp : -fp * tanh(2.5 * d);
}

#define STD (&smx_nab_profiles[0])
#define LOWFP (&smx_nab_profiles[1])
#define LOWFN (&smx_nab_profiles[2])

/*
 * A test series: n rows at ts = 1000 i, score 0 except the rows listed
 * (score 1), one window of rows [wlo, whi] (none if wlo < 0).
 */
typedef struct T
{
	int64_t		ts[64];
	double		score[64];
	int64_t		ws[4],
				we[4];
	SmxNabSeries s;
} T;

static void
mk(T *t, size_t n, size_t probation, int wlo, int whi, const int *hits)
{
	memset(t, 0, sizeof(*t));
	for (size_t i = 0; i < n; i++)
	{
		t->ts[i] = 1000 * (int64_t) i;
		t->score[i] = 0.0;
	}
	for (; hits && *hits >= 0; hits++)
		t->score[*hits] = 1.0;
	t->s.n = n;
	t->s.ts = t->ts;
	t->s.score = t->score;
	t->s.probation = probation;
	if (wlo >= 0)
	{
		t->ws[0] = 1000 * (int64_t) wlo;
		t->we[0] = 1000 * (int64_t) whi;
		t->s.nwindows = 1;
	}
	t->s.win_start = t->ws;
	t->s.win_end = t->we;
}

/* score_at threshold 0.5 (the hits) with the standard profile */
static SmxNabResult
at(const T *t, const SmxNabCosts *c)
{
	SmxNabResult r;

	memset(&r, 0xff, sizeof(r));
	if (smx_nab_score_at(&t->s, 1, c, 0.5, &r, NULL, NULL) != 0)
		r.raw = NAN;
	return r;
}

static void
test_probation(void)
{
	static const size_t n[] = {0, 6, 7, 10, 20, 100, 4032, 4999, 5000, 5002, 1000000};
	static const size_t want[] = {0, 0, 1, 1, 3, 15, 604, 749, 750, 750, 750};
	int			ok = 1;

	for (size_t i = 0; i < sizeof(n) / sizeof(n[0]); i++)
		if (smx_nab_probation(n[i]) != want[i])
		{
			printf("# probation(%zu) = %zu, want %zu\n", n[i], smx_nab_probation(n[i]), want[i]);
			ok = 0;
		}
	check(ok, "probation: min(floor(0.15 n), 750)");
	check(strcmp(STD->name, "standard") == 0 && STD->tp == 1.0 && STD->fp == 0.11 && STD->fn == 1.0 &&
		  strcmp(LOWFP->name, "reward_low_fp") == 0 && LOWFP->fp == 0.22 && LOWFP->fn == 1.0 &&
		  strcmp(LOWFN->name, "reward_low_fn") == 0 && LOWFN->fp == 0.11 && LOWFN->fn == 2.0,
		  "profiles: NAB's cost matrices");
}

static void
test_windows(void)
{
	T			t;
	SmxNabResult r;
	int64_t		delays[4];
	size_t		nd = 99;

	/* window rows 10..14 (W = 5) in 20 rows */
	mk(&t, 20, 0, 10, 14, (const int[]) {10, -1});
	smx_nab_score_at(&t.s, 1, STD, 0.5, &r, delays, &nd);
	check(r.raw == 1.0 && r.tp_windows == 1 && r.fn_windows == 0 && r.fp_rows == 0 &&
		  r.null_raw == -1.0 && r.perfect_raw == 1.0 && r.normalised == 100.0 &&
		  nd == 1 && delays[0] == 0,
		  "detection at a window's first row: exactly tp, normalised 100");

	mk(&t, 20, 0, 10, 14, (const int[]) {13, -1});
	smx_nab_score_at(&t.s, 1, STD, 0.5, &r, delays, &nd);
	check(near(r.raw, tp_at(-0.4)) && fabs(r.raw - 0.7719269) < 1e-6 &&
		  nd == 1 && delays[0] == 3000 &&
		  near(r.normalised, 100.0 * (r.raw + 1.0) / 2.0),
		  "detection late in a window: tanh(1)/tanh(2.5), delay 3 rows");

	mk(&t, 20, 0, 10, 14, (const int[]) {14, -1});
	r = at(&t, STD);
	check(near(r.raw, tp_at(-0.2)), "detection at a window's last row: position -1/W, not 0");

	mk(&t, 20, 0, 10, 14, (const int[]) {11, 13, -1});
	r = at(&t, STD);
	check(near(r.raw, tp_at(-0.8)) && r.tp_windows == 1 && r.tp_rows == 2 &&
		  r.fp_rows == 0 && r.fn_rows == 3 && r.tn_rows == 15,
		  "two detections in a window: only the first counts");

	mk(&t, 20, 0, 10, 14, NULL);
	r = at(&t, STD);
	check(r.raw == -1.0 && r.tp_windows == 0 && r.fn_windows == 1 && r.normalised == 0.0,
		  "missed window: -fn (standard)");
	r = at(&t, LOWFN);
	check(r.raw == -2.0 && r.null_raw == -2.0 && r.normalised == 0.0,
		  "missed window: -fn (reward_low_fn: -2)");
}

static void
test_false_positives(void)
{
	T			t;
	SmxNabResult r;

	mk(&t, 20, 0, 10, 14, (const int[]) {3, -1});
	r = at(&t, STD);
	check(near(r.raw, -1.0 - 0.11) && r.fp_rows == 1 && r.fp_events == 1,
		  "FP before any window: the full -fp");
	r = at(&t, LOWFP);
	check(near(r.raw, -1.0 - 0.22), "FP before any window: -0.22 (reward_low_fp)");

	mk(&t, 20, 0, 10, 14, (const int[]) {16, -1});
	r = at(&t, STD);
	check(near(r.raw, -1.0 + fp_at(0.5, 0.11)),
		  "FP after a window: fp S((i - R)/(W - 1)), here 2/4");

	mk(&t, 40, 0, 10, 14, (const int[]) {15, 26, 27, -1});
	r = at(&t, STD);
	check(near(r.raw, -1.0 + fp_at(0.25, 0.11) + fp_at(3.0, 0.11) - 0.11) &&
		  r.fp_rows == 3 && r.fp_events == 2,
		  "FPs after a window: just after, at distance 3 (not yet -fp), beyond 3 (-fp)");

	mk(&t, 20, 0, -1, -1, (const int[]) {2, 3, 5, -1});
	r = at(&t, STD);
	check(near(r.raw, -0.33) && r.fp_rows == 3 && r.fp_events == 2 &&
		  r.null_raw == 0.0 && r.perfect_raw == 0.0 && isnan(r.normalised),
		  "no windows: every FP -fp, fp_events counts onsets, normalised NaN");

	mk(&t, 20, 0, 10, 14, (const int[]) {14, 15, -1});
	r = at(&t, STD);
	check(near(r.raw, tp_at(-0.2) + fp_at(0.25, 0.11)) && r.fp_rows == 1 && r.fp_events == 0,
		  "FP straight after a detection in the window is no new onset");

	/* a one-row window: NAB would divide by zero; far away for us */
	mk(&t, 20, 0, 10, 10, (const int[]) {10, 12, -1});
	r = at(&t, STD);
	check(near(r.raw, 1.0 - 0.11), "FP after a one-row window: -fp");
}

static void
test_probation_rows(void)
{
	T			t;
	SmxNabResult r;

	/* probation 5: the detection at row 2 is ignored */
	mk(&t, 20, 5, 10, 14, (const int[]) {2, -1});
	r = at(&t, STD);
	check(r.raw == -1.0 && r.fp_rows == 0 && r.tn_rows + r.fn_rows == 15,
		  "probation: detections ignored, rows not counted");

	/* window rows 3..7 straddles probation 5: positions over the whole window */
	mk(&t, 20, 5, 3, 7, (const int[]) {3, 5, -1});
	r = at(&t, STD);
	check(near(r.raw, tp_at(-0.6)) && r.tp_rows == 1 && r.fn_rows == 2,
		  "window straddling probation: first row past it, position in the full window");

	/* window rows 1..3 wholly in probation 5: not scored, but in perfect;
	 * its end still sets the distance of the FP at row 6: (6-3)/(3-1) */
	mk(&t, 20, 5, 1, 3, (const int[]) {2, 6, -1});
	r = at(&t, STD);
	check(near(r.raw, fp_at(1.5, 0.11)) && r.skipped_windows == 1 && r.tp_windows == 0 &&
		  r.fn_windows == 0 && r.null_raw == 0.0 && r.perfect_raw == 1.0 &&
		  near(r.normalised, 100.0 * r.raw),
		  "window wholly in probation: skipped, counted in perfect, still closes for FPs");
}

static void
test_sweep_ties(void)
{
	T			a,
				b;
	SmxNabSeries s2[2];
	SmxNabResult r,
				r2;
	SmxNabCosts half = {"half", 1.0, 0.5, 1.0};

	/* at threshold == score the row detects */
	mk(&a, 20, 0, 10, 14, (const int[]) {10, -1});
	smx_nab_score_at(&a.s, 1, STD, 1.0, &r, NULL, NULL);
	check(r.raw == 1.0, "score == threshold is a detection");

	/* rows 10 (0.9) and 12 (0.8): same score at 0.9 and 0.8, the higher wins */
	mk(&a, 20, 0, 10, 14, NULL);
	a.score[10] = 0.9;
	a.score[12] = 0.8;
	a.score[3] = 0.7;
	smx_nab_sweep(&a.s, 1, STD, &r);
	check(r.threshold == 0.9 && r.raw == 1.0 && r.tp_rows == 1,
		  "sweep: of equal scores the higher threshold");

	/* a TP and a FP (other series) tied at 0.9 detect together */
	mk(&a, 20, 0, 10, 14, NULL);
	a.score[10] = 0.9;
	mk(&b, 20, 0, -1, -1, NULL);
	b.score[4] = 0.9;
	s2[0] = a.s;
	s2[1] = b.s;
	smx_nab_sweep(s2, 2, STD, &r);
	check(r.threshold == 0.9 && near(r.raw, 0.89) && r.fp_rows == 1 && r.tp_windows == 1,
		  "sweep: rows tied at the threshold all detect (TP + FP)");

	/* 20 FPs tied with the TP: never firing is better */
	for (int i = 0; i < 20; i++)
		b.score[i] = 0.9;
	s2[1] = b.s;
	smx_nab_sweep(s2, 2, STD, &r);
	check(isinf(r.threshold) && r.threshold > 0 && r.raw == -1.0 && r.tp_windows == 0 &&
		  r.fp_rows == 0 && r.normalised == 0.0,
		  "sweep: ties cannot be split; never firing wins (threshold +inf)");

	/* exactly as good as never firing: -1 + 2 - 4 * 0.5 = -1, never wins */
	for (int i = 0; i < 20; i++)
		b.score[i] = i < 4 ? 0.9 : 0.0;
	s2[1] = b.s;
	smx_nab_sweep(s2, 2, &half, &r);
	smx_nab_score_at(s2, 2, &half, 0.9, &r2, NULL, NULL);
	check(isinf(r.threshold) && r.raw == -1.0 && r2.raw == -1.0,
		  "sweep: a tie with never firing goes to never firing");
}

static void
test_edges(void)
{
	T			t;
	SmxNabResult r;
	int64_t		ts[8] = {0, 1, 2, 3, 3, 3, 4, 5};
	double		sc[8] = {0, 0, 0, 0, 1, 0, 0, 0};
	int64_t		ws[3] = {1, 11, 25},
				we[3] = {3, 19, 35};
	SmxNabSeries s = {8, ts, sc, 0, 1, ws, we};

	memset(&r, 0, sizeof(r));
	check(smx_nab_sweep(NULL, 0, STD, &r) == 0 && r.raw == 0.0 && r.null_raw == 0.0 &&
		  r.perfect_raw == 0.0 && isnan(r.normalised) && isinf(r.threshold) &&
		  r.tp_windows == 0 && r.fp_rows == 0,
		  "empty corpus: zero, normalised NaN");

	mk(&t, 0, 0, 1, 2, NULL);
	check(smx_nab_sweep(&t.s, 1, STD, &r) == 0 && r.raw == 0.0 && r.skipped_windows == 1 &&
		  r.perfect_raw == 1.0 && r.normalised == 0.0,
		  "empty series with a window: skipped, in perfect only");

	mk(&t, 20, 0, -1, -1, (const int[]) {3, 9, -1});
	check(smx_nab_sweep(&t.s, 1, STD, &r) == 0 && r.raw == 0.0 && isinf(r.threshold) &&
		  r.tn_rows == 20 && isnan(r.normalised),
		  "no windows: the sweep never fires");

	/* NaN never detects, even at -inf */
	mk(&t, 20, 0, 10, 14, NULL);
	for (int i = 0; i < 20; i++)
		t.score[i] = NAN;
	t.score[12] = 0.0;
	smx_nab_score_at(&t.s, 1, STD, -INFINITY, &r, NULL, NULL);
	check(near(r.raw, tp_at(-0.6)) && r.tp_rows == 1 && r.fp_rows == 0 && r.tn_rows == 15,
		  "NaN scores never detect");

	/* a duplicated end timestamp: the first closes the window (as NAB) */
	smx_nab_score_at(&s, 1, STD, 0.5, &r, NULL, NULL);
	check(near(r.raw, -1.0 + fp_at(0.5, 0.11)) && r.fp_rows == 1,
		  "duplicate timestamps: window ends at the first row at its end");

	/* bounds between rows: ts 0,10,..,70; [11,19] has no row, [25,35] is 30 */
	for (int i = 0; i < 8; i++)
	{
		ts[i] = 10 * i;
		sc[i] = i == 3 ? 1.0 : 0.0;
	}
	s.nwindows = 3;
	ws[0] = -5;
	we[0] = 0;
	{
		int64_t		d[3];
		size_t		nd;

		smx_nab_score_at(&s, 1, STD, 0.5, &r, d, &nd);
		check(r.raw == -1.0 + 1.0 && r.skipped_windows == 1 && r.tp_windows == 1 &&
			  r.fn_windows == 1 && r.perfect_raw == 3.0 && r.null_raw == -2.0 &&
			  nd == 1 && d[0] == 5,
			  "window bounds between rows; a window with no row");
	}

	/*
	 * rows stepping back (NAB's machine_temperature file) are walked in
	 * order: window [2, 3] opens at row 2 and closes at row 5 (the first
	 * 3), so holds the stepped-back rows 3 and 4, as in NAB
	 */
	for (int i = 0; i < 8; i++)
	{
		ts[i] = (int64_t[]) {0, 1, 2, 1, 2, 3, 4, 5}[i];
		sc[i] = i == 4 ? 1.0 : 0.0;
	}
	ws[0] = 2;
	we[0] = 3;
	s.nwindows = 1;
	smx_nab_score_at(&s, 1, STD, 0.5, &r, NULL, NULL);
	check(near(r.raw, tp_at(-0.5)) && r.tp_rows == 1 && r.fn_rows == 3,
		  "timestamps stepping back: rows taken in order");
}

static void
test_bad_input(void)
{
	T			t;
	SmxNabResult r;
	SmxNabCosts neg = {"neg", 1.0, -0.1, 1.0},
				nan_ = {"nan", NAN, 0.1, 1.0};
	int			bad = 0;

	mk(&t, 20, 0, 10, 14, NULL);
	t.s.nwindows = 2;
	t.ws[1] = 12000;
	t.we[1] = 16000;
	bad += smx_nab_sweep(&t.s, 1, STD, &r) == -1;	/* overlapping */
	t.ws[1] = 2000;
	t.we[1] = 3000;
	bad += smx_nab_sweep(&t.s, 1, STD, &r) == -1;	/* unsorted */
	t.ws[1] = 14000;
	t.we[1] = 16000;
	bad += smx_nab_score_at(&t.s, 1, STD, 0.5, &r, NULL, NULL) == -1;	/* touching */
	t.s.nwindows = 1;
	t.ws[0] = 15000;
	bad += smx_nab_score_at(&t.s, 1, STD, 0.5, &r, NULL, NULL) == -1;	/* start > end */
	t.ws[0] = 10000;
	bad += smx_nab_sweep(&t.s, 1, &neg, &r) == -1;
	bad += smx_nab_sweep(&t.s, 1, &nan_, &r) == -1;
	bad += smx_nab_sweep(&t.s, 1, NULL, &r) == -1;
	bad += smx_nab_sweep(&t.s, 1, STD, NULL) == -1;
	bad += smx_nab_sweep(NULL, 1, STD, &r) == -1;
	t.s.ts = NULL;
	bad += smx_nab_sweep(&t.s, 1, STD, &r) == -1;
	check(bad == 10, "bad input: overlapping, unsorted, touching, reversed windows, bad costs, NULLs");
}

/* deterministic pseudo-random numbers */
static uint64_t rng = 88172645463325252ULL;

static unsigned
rnd(unsigned n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (unsigned) (rng % n);
}

/*
 * The sweep against brute force: score_at every distinct score (and
 * never), keep the first strict maximum from the top; random series with
 * few distinct scores (many ties), random windows and probation.
 */
static void
test_sweep_vs_brute(void)
{
	enum
	{
		NS = 4, MAXN = 120
	};
	int			ok = 1,
				fired = 0;

	for (int trial = 0; trial < 300 && ok; trial++)
	{
		int64_t		ts[NS][MAXN],
					ws[NS][6],
					we[NS][6];
		double		sc[NS][MAXN],
					cand[NS * MAXN];
		SmxNabSeries s[NS];
		size_t		ncand = 0;
		int			levels = 2 + (int) rnd(12);

		for (int j = 0; j < NS; j++)
		{
			size_t		n = rnd(MAXN + 1);
			int64_t		t0 = 0;
			size_t		nw = 0;

			for (size_t i = 0; i < n; i++)
			{
				ts[j][i] = t0;
				t0 += 1 + rnd(3);
				sc[j][i] = rnd(10) == 0 ? NAN : (double) rnd((unsigned) levels) / levels;
				if (!isnan(sc[j][i]))
					cand[ncand++] = sc[j][i];
			}
			/* up to 5 windows, ascending, in time units */
			for (int64_t at = (int64_t) rnd(20); nw < 5 && at < t0; nw++)
			{
				ws[j][nw] = at;
				we[j][nw] = at + (int64_t) rnd(40);
				at = we[j][nw] + 1 + (int64_t) rnd(60);
			}
			s[j] = (SmxNabSeries) {
				n, ts[j], sc[j], rnd(4) ? smx_nab_probation(n) : rnd(30), nw, ws[j], we[j]
			};
		}
		for (int p = 0; p < 3 && ok; p++)
		{
			const SmxNabCosts *c = &smx_nab_profiles[p];
			SmxNabResult sw,
						bf,
						cur;
			double		best_thr = INFINITY;

			if (smx_nab_sweep(s, NS, c, &sw) != 0)
			{
				ok = 0;
				break;
			}
			/* never: a threshold above every score */
			smx_nab_score_at(s, NS, c, 2.0, &bf, NULL, NULL);
			for (int lev = levels - 1; lev >= 0; lev--)
			{
				double		t = (double) lev / levels;
				int			present = 0;

				for (size_t k = 0; k < ncand; k++)
					present |= cand[k] == t;
				if (!present)
					continue;
				smx_nab_score_at(s, NS, c, t, &cur, NULL, NULL);
				if (cur.raw > bf.raw + 1e-9)
				{
					bf = cur;
					best_thr = t;
				}
			}
			if (!(fabs(sw.raw - bf.raw) <= 1e-9 && sw.threshold == best_thr &&
				  sw.tp_windows == bf.tp_windows && sw.fp_rows == bf.fp_rows &&
				  sw.tn_rows == bf.tn_rows && sw.fn_rows == bf.fn_rows))
			{
				printf("# trial %d profile %s: sweep %.17g at %g, brute %.17g at %g\n",
					   trial, c->name, sw.raw, sw.threshold, bf.raw, best_thr);
				ok = 0;
			}
			fired += !isinf(sw.threshold);
		}
	}
	printf("# %d of 900 sweeps chose a threshold\n", fired);
	check(ok && fired > 300, "sweep = brute force over every threshold (300 random corpora x 3 profiles)");
}

/* Several series and windows: delays and counts add up over the corpus. */
static void
test_corpus(void)
{
	T			a,
				b;
	SmxNabSeries s2[2];
	SmxNabResult r;
	int64_t		d[4];
	size_t		nd;

	mk(&a, 40, 0, 10, 14, (const int[]) {12, 30, -1});
	a.s.nwindows = 2;
	a.ws[1] = 20000;
	a.we[1] = 24000;
	mk(&b, 30, 0, 5, 9, (const int[]) {5, -1});
	s2[0] = a.s;
	s2[1] = b.s;
	smx_nab_score_at(s2, 2, STD, 0.5, &r, d, &nd);
	check(near(r.raw, tp_at(-0.6) - 1.0 + fp_at(1.5, 0.11) + 1.0) &&
		  r.tp_windows == 2 && r.fn_windows == 1 && r.null_raw == -3.0 &&
		  r.perfect_raw == 3.0 && nd == 2 && d[0] == 2000 && d[1] == 0 &&
		  near(r.normalised, 100.0 * (r.raw + 3.0) / 6.0),
		  "corpus of two series: windows, FP after the second window, delays");
}

int
main(void)
{
	test_probation();
	test_windows();
	test_false_positives();
	test_probation_rows();
	test_sweep_ties();
	test_edges();
	test_bad_input();
	test_sweep_vs_brute();
	test_corpus();
	printf("1..%d\n", ntest);
	if (nfail)
		printf("# %d of %d failed\n", nfail, ntest);
	return nfail ? 1 : 0;
}

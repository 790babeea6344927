/*
 * detect.h — the streaming anomaly detector, as plain C.
 *
 * Like the model, no PostgreSQL header: the same code scores every sample
 * in the tick (five signals a server), scores any series handed to
 * sim_anomaly_scores(), and is unit-tested as an ordinary program.
 *
 * Each series sees its own past only: a score at row t depends on rows
 * 0..t of that series and on nothing else (not on the wall clock, not on
 * other series), so a backfill and a live fleet give the same scores for
 * the same values.
 */
#ifndef SMX_DETECT_H
#define SMX_DETECT_H

#include <stdbool.h>
#include <stdint.h>

/*
 * The state of one signal of the fleet (36 bytes). Zeroed = no sample seen
 * yet. No history is kept: every statistic is a running average, so a row
 * costs a few flops whatever the series' length.
 */
typedef struct smx_detector
{
	float		level;			/* robust Holt: level and trend */
	float		trend;
	float		scale;			/* typical |residual| of normal rows */
	float		ev;				/* evidence: short average of clipped z */
	float		z;				/* the last row's standardised residual */
	float		prev;			/* the previous row */
	float		land;			/* where a one-row jump landed */
	uint32_t	n;				/* rows seen (saturates) */
	int32_t		run;			/* rows the landing has held (0: no jump) */
} smx_detector;

/* Rows a series needs before its scores mean anything (the score is 0 before). */
#define SMX_DETECT_WARMUP	64

/*
 * A series handed to sim_anomaly_scores(): the fleet's detector (core), and
 * an onset stage that asks how rare the row is in the series' own past.
 * Four features: the core's standardised residual and its evidence, the
 * surprise of the row's value bin after the previous row's (a sequence
 * never seen) and in its two-hour slot of the day (a daily shape broken).
 * Each feature's size is ranked against the series' earlier rows (decaying
 * counts); the row's surprise is its rarest feature's, and the onset is
 * what beats the recent record of that: one alarm an event. About 3 KB,
 * so a series only, not a server of the fleet.
 */
#define SMX_ONSET_BINS		8	/* value bins over the range seen so far */
#define SMX_ONSET_SLOTS		12	/* slots of the day (UTC) */
#define SMX_ONSET_FEATURES	4
#define SMX_ONSET_RANKS		64	/* log-spaced bins of a feature's size */

typedef struct smx_series_detector
{
	smx_detector core;
	double		lo,
				hi;				/* the range of the values seen so far */
	int64_t		first;			/* the first row's time */
	int32_t		prev_bin;		/* the previous row's value bin; -1: none */
	uint32_t	rows;			/* finite rows seen (saturates) */
	float		seq_surprise;	/* smoothed surprise of the bin after prev_bin */
	float		day_surprise;	/* smoothed surprise of the bin in its slot */
	float		record;			/* recent record of the row's rarity */
	double		gain;			/* a new row's weight in rank[] (decay, lazily) */
	float		next[SMX_ONSET_BINS][SMX_ONSET_BINS];	/* transition counts */
	float		next_total[SMX_ONSET_BINS];
	float		slot[SMX_ONSET_SLOTS][SMX_ONSET_BINS];	/* bin counts by slot */
	float		slot_total[SMX_ONSET_SLOTS];
	double		rank[SMX_ONSET_FEATURES][SMX_ONSET_RANKS];	/* decaying counts */
} smx_series_detector;

/*
 * Score row x at time t (seconds since any UTC midnight, e.g. the Unix
 * epoch) of series s, zeroed before its first row; updates s. Two readings:
 *  - the return value, the onset, 0..1: how much rarer the row is than
 *    anything in the series' recent past, so a change scores at its onset
 *    and not again while it lasts: one event, one alarm (what NAB's scoring
 *    rewards);
 *  - *level (when not NULL): how far off the series is now, the sustained
 *    evidence either way, 0..1, held while the departure lasts: the fleet's
 *    anomaly_score, read both ways since a series has no known bad side.
 * NaN and infinities are skipped (0 and 0, state unchanged).
 */
extern float smx_series_step(smx_series_detector *s, int64_t t, double x, float *level);

/*
 * A server's signals: cpu, memory, disk and network in percent, and the
 * response time (as log(1 + ms): it varies by a factor, not by points).
 * smx_detect_signal_names[] are the SQL names of the column each comes
 * from, and one more: "status", for a server that is offline (no values
 * to score; it scores 1).
 */
#define SMX_DETECT_SIGNALS	5
#define SMX_DETECT_OFFLINE	SMX_DETECT_SIGNALS

extern const char *const smx_detect_signal_names[SMX_DETECT_SIGNALS + 1];

typedef struct smx_server_detector
{
	smx_detector m[SMX_DETECT_SIGNALS];
} smx_server_detector;

/*
 * Score of a server's sample: the highest of its signals' sustained upward
 * evidence (incidents raise load, usage and latency; a falling value, a GC
 * or a log rotation, is no incident), 0..1, held as long as the departure
 * lasts; *driver gets that signal's index. Same per-signal detector as
 * smx_series_step, without its onset stage.
 */
extern float smx_detect_server(smx_server_detector *d,
							   const float x[SMX_DETECT_SIGNALS], uint8_t *driver);

struct smx_state;

/*
 * Score n servers' new values (after smx_step): each state's anomaly and
 * anomaly_signal, from its detector d[i]. An offline server has no values:
 * it scores 1 (signal SMX_DETECT_OFFLINE) and its detector waits for it.
 */
extern void smx_detect_fleet(struct smx_state *s, smx_server_detector *d, int n);

#endif							/* SMX_DETECT_H */

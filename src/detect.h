/*
 * detect.h — the streaming anomaly detector, as plain C.
 *
 * Like the model, no PostgreSQL header: the same code scores every sample
 * in the tick (four metrics a server), scores any series handed to
 * sim_anomaly_scores(), and is unit-tested as an ordinary program.
 *
 * Each series keeps a few floats and sees its own past only: a score at row
 * t depends on rows 0..t of that series and on nothing else (not on the
 * wall clock, not on other series), so a backfill and a live fleet give
 * the same scores for the same values. After a restart a server's
 * detector starts over (the model goes on from stored values; the state
 * is not stored).
 */
#ifndef SMX_DETECT_H
#define SMX_DETECT_H

#include <stdbool.h>
#include <stdint.h>

/*
 * The state of one series (40 bytes). Zeroed = no sample seen yet. No
 * history is kept: every statistic is a running average, so a row costs a
 * few flops whatever the series' length.
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
	float		peak;			/* decaying record of smx_detect_step's surprise */
	uint32_t	n;				/* rows seen (saturates) */
	int32_t		run;			/* rows the landing has held (0: no jump) */
} smx_detector;

/* Rows a series needs before its scores mean anything (the score is 0 before). */
#define SMX_DETECT_WARMUP	64

/*
 * Score row x of a series; updates d. Two readings of one detector:
 *  - the return value, the onset: the row's surprise (a sustained
 *    departure or a lone spike, either way) less the series' slowly
 *    decaying record, so a change scores at its onset and not again while
 *    it lasts: one event, one alarm (what NAB's scoring rewards);
 *  - *level (when not NULL): how far off the series is now, the sustained
 *    evidence either way, 0..1, held while the departure lasts: the fleet's
 *    anomaly_score, read both ways since a series has no known bad side.
 * NaN and infinities are skipped (0 and 0, state unchanged).
 */
extern float smx_detect_step(smx_detector *d, double x, float *level);

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
 * smx_detect_step, read before its onset stage.
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

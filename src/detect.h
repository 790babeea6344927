/*
 * detect.h — the streaming anomaly detector, as plain C.
 *
 * Like the model, no PostgreSQL header: the same code scores every sample
 * in the tick (four metrics a server), scores any series handed to
 * sim_anomaly_scores(), and is unit-tested as an ordinary program.
 *
 * Each series keeps a few floats and sees its own past only: a score at row
 * t depends on rows 0..t of that series and on nothing else (not on the
 * wall clock, not on other series), so a backfill, a live fleet and a
 * replay of stored history give the same scores for the same values.
 */
#ifndef SMX_DETECT_H
#define SMX_DETECT_H

#include <stdbool.h>
#include <stdint.h>

/* The state of one series. Zeroed = no sample seen yet. */
typedef struct smx_detector
{
	float		level;			/* robust Holt: level and trend */
	float		trend;
	float		scale;			/* typical |residual| of normal rows */
	float		fast;			/* short average of standardised residuals */
	float		mean_ev;		/* long averages of the evidence, for its tail */
	float		var_ev;
	float		peak;			/* the previous row */
	float		var_ev_land;	/* where a jump landed */
	uint32_t	n;				/* rows seen (saturates) */
	int16_t		run;			/* consecutive rows off the level, signed */
	uint16_t	pad;
} smx_detector;

/* Rows a series needs before its scores mean anything (the score is 0 before). */
#define SMX_DETECT_WARMUP	64

/* Score of row x (0 = normal .. 1 = surely anomalous); updates d. NaN and
 * infinities are skipped (score 0, state unchanged). */
extern float smx_detect_step(smx_detector *d, double x);

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

/* Score of a server's sample: the highest of its signals' scores; *driver
 * gets that signal's index. */
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

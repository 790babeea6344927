/*
 * model.h — the fleet simulation model, as plain C.
 *
 * No PostgreSQL header is included here on purpose: the model is unit-tested
 * and run under valgrind/ASan as an ordinary program (test/model_test.c), and
 * the same code is used by the background worker and by sim_tick().
 *
 * Reproducibility: every random draw comes from a counter-based generator
 * keyed by (seed, server key, tick, metric), so the value of a server at tick
 * T depends only on its template, the seed, the simulated clock and the state
 * at T-1 — never on wall-clock time, on the order servers are stepped in, or
 * on which process did the stepping.
 */
#ifndef SMX_MODEL_H
#define SMX_MODEL_H

#include <stdbool.h>
#include <stdint.h>

/* Server roles; the SQL names are in smx_role_names[]. */
typedef enum smx_role
{
	SMX_ROLE_WEB = 0,
	SMX_ROLE_APP,
	SMX_ROLE_DATABASE,
	SMX_ROLE_CACHE,
	SMX_ROLE_STORAGE,
	SMX_ROLE_LOADBALANCER,
	SMX_ROLE_COUNT
} smx_role;

/* Status words of the dashboard API, in increasing severity. */
typedef enum smx_status
{
	SMX_STATUS_ONLINE = 0,
	SMX_STATUS_WARNING,
	SMX_STATUS_CRITICAL,
	SMX_STATUS_OFFLINE
} smx_status;

/* Metrics that carry a status level. */
typedef enum smx_metric
{
	SMX_M_CPU = 0,
	SMX_M_MEMORY,
	SMX_M_DISK,
	SMX_M_NETWORK,
	SMX_M_COUNT
} smx_metric;

extern const char *const smx_role_names[SMX_ROLE_COUNT];
extern const char *const smx_status_names[4];

/*
 * Status thresholds (percent): the dashboard's 80/90 (cpu, memory, disk)
 * and 70/85 (network) by default; per role where a role runs higher by
 * design (a cache's memory). A level is left only SMX_HYSTERESIS_PCT below
 * its threshold.
 */
#define SMX_WARN_PCT		80.0
#define SMX_CRIT_PCT		90.0
#define SMX_NET_WARN_PCT	70.0
#define SMX_NET_CRIT_PCT	85.0
#define SMX_HYSTERESIS_PCT	3.0

typedef struct smx_threshold
{
	float		warn;
	float		crit;
} smx_threshold;

extern const smx_threshold smx_thresholds[SMX_ROLE_COUNT][4];

/* Role defaults used when a template leaves a baseline NULL. */
typedef struct smx_role_defaults
{
	float		cpu;
	float		memory;
	float		disk;
	float		network;
	float		disk_growth;	/* points a day before rotation */
} smx_role_defaults;

extern const smx_role_defaults smx_role_default_baselines[SMX_ROLE_COUNT];

/*
 * Fixed per-server parameters, derived from a server_templates row.
 * Plain values only: this struct is copied into shared memory.
 */
typedef struct smx_params
{
	uint64_t	key;			/* smx_hash_str(server id): RNG key */
	uint64_t	location_key;	/* smx_hash_str(location): shared load */
	uint64_t	traffic_key;	/* the traffic it shares (depends_on graph) */
	double		net_capacity;	/* bytes per second at 100 % */
	float		base_cpu;		/* baselines, percent */
	float		base_memory;
	float		base_disk;
	float		base_network;
	float		disk_growth;	/* points a day, before rotation */
	/* the server's own character, drawn from its key */
	float		phase_h;		/* daily curve shifted by this many hours */
	uint8_t		phase_idx;		/* the same, as an index of SMX_PHASES steps */
	float		amp;			/* daily swing x this */
	float		noise;			/* spread x this */
	float		trend_phase;	/* of the slow trend, radians */
	float		gc_period_s;	/* app: seconds between GCs */
	float		gc_phase;		/* app: where in the GC cycle at time 0 */
	float		rotate_h;		/* local hour of the daily log rotation */
	uint8_t		role;			/* smx_role */
	bool		shares_traffic; /* in a traffic group with others */
} smx_params;

/*
 * Evolving per-server state. The values are what readers see; level[] is
 * the per-metric status level (0 ok, 1 warning, 2 critical) kept for
 * hysteresis.
 */
typedef struct smx_state
{
	float		cpu;			/* percent */
	float		memory;
	float		disk;
	float		network;		/* percent of net_capacity */
	float		response_ms;	/* request latency */
	int64_t		network_io;		/* bytes per second */
	float		burst_cpu;		/* decaying spikes on top of cpu, network */
	float		burst_net;
	float		disk_accum;		/* disk grown since the last rotation */
	float		day_factor;		/* the server's own level on day day_of */
	int32_t		day_of;			/* (and for the seed day_seed) */
	uint32_t	day_seed;
	bool		day_set;
	uint8_t		level[SMX_M_COUNT];
	uint8_t		status;			/* smx_status */
	uint8_t		anomaly_signal; /* the detector's signal behind anomaly
								 * (detect.h) */
	uint8_t		run;			/* incident acting this tick: index into
								 * smx_tick_ctx.overlay, 0 = none */
	bool		overlaid;		/* the values include an incident; base[]
								 * holds the model's own */
	float		base[SMX_M_COUNT];	/* cpu, memory, disk, network without it */
	float		anomaly;		/* the detector's score of these values, 0..1
								 * (set by smx_detect_fleet, not smx_step) */
} smx_state;

/* Simulation settings shared by every server. */
typedef struct smx_config
{
	uint64_t	seed;
	double		start_epoch;	/* simulated clock at tick 0, unix seconds */
	double		step_seconds;	/* simulated seconds per tick */
	double		utc_offset;		/* seconds added before reading the hour of
								 * day and weekday of the profiles */
} smx_config;

/* A server's daily curve is shifted by one of SMX_PHASES steps of 6 min. */
#define SMX_PHASES			16
#define SMX_PHASE_STEP_H	0.1

/*
 * Everything that depends on the tick but not on the server, computed once
 * per tick by smx_prepare_tick().
 */
typedef struct smx_tick_ctx
{
	uint64_t	seed;
	uint64_t	tick;
	double		sim_epoch;		/* simulated time of this tick */
	uint64_t	tick_key;		/* hash of (seed, tick) */
	uint64_t	load_knot;		/* location load noise: knot index */
	double		load_frac;		/* and smoothed position between knots */
	double		local;			/* simulated local time, seconds */
	double		hour;			/* local hour of day [0, 24) */
	double		dt;				/* simulated seconds since the last tick */
	double		dt_days;		/* the same in days */
	int64_t		day;			/* local day number */
	double		day_frac;		/* smoothed blend toward the next day, near midnight */
	bool		weekend;
	uint8_t		dow;			/* 0 = Sunday */
	float		daily[SMX_ROLE_COUNT][SMX_PHASES];	/* daily profile by role and phase */
	float		week_level[SMX_ROLE_COUNT];	/* weekends: lower */
	float		week_amp[SMX_ROLE_COUNT];	/* and flatter */
	float		burst_decay;	/* of burst_cpu and burst_net a tick */
	float		spike_p[SMX_ROLE_COUNT];	/* chance of a spike of the server's own */
	float		traffic_p;		/* chance of a traffic burst shared down the graph */
	float		share_root[SMX_ROLE_COUNT][2];	/* sqrt of the traffic share, and of the rest */
	/* OU decay a = exp(-dt/tau) and innovation scale sqrt(1 - a^2) */
	float		decay[SMX_M_COUNT];
	float		innov[SMX_M_COUNT];
	/* incidents acting this tick, by smx_state.run (NULL: none) */
	const struct smx_overlay *overlay;
} smx_tick_ctx;

/* 64-bit FNV-1a + finaliser of a NUL-terminated string. */
extern uint64_t smx_hash_str(const char *s);

/* Simulated time (unix seconds) of a tick. */
extern double smx_sim_epoch(const smx_config *cfg, uint64_t tick);

/*
 * Fill params from a template; a negative baseline or disk growth means
 * "role default". A server shares traffic with nobody until
 * smx_params_set_traffic() puts it in a group (by the group's key).
 */
extern void smx_params_init(smx_params *p, const char *server_id,
							const char *location, smx_role role,
							double cpu, double memory, double disk,
							double network, double net_capacity);
extern void smx_params_set_traffic(smx_params *p, uint64_t traffic_key);
extern void smx_params_set_disk_growth(smx_params *p, double points_per_day);

/*
 * The traffic groups of a fleet: servers linked by depends_on (either
 * way) share one. edges: n_edges pairs of server indexes. Writes each
 * server's group root index into root[] (scratch: n ints).
 */
extern void smx_traffic_groups(int n, const int *edges, int n_edges, int *root);

/* Role by SQL name; -1 if unknown. */
extern int	smx_role_from_name(const char *name);

extern void smx_prepare_tick(smx_tick_ctx *ctx, const smx_config *cfg,
							 uint64_t tick);

/* State of a server that appears at the tick ctx was prepared for. */
extern void smx_state_init(const smx_tick_ctx *ctx, const smx_params *p,
						   smx_state *s);

/*
 * State of a server continued from stored values (after a restart):
 * network_io in bytes/s; response time and status levels are derived.
 */
extern void smx_state_restore(const smx_params *p, smx_state *s, float cpu,
							  float memory, float disk, double network_io);

/*
 * What the model pulls a server toward at the tick ctx is prepared for
 * (before noise and bursts), and its daily x weekly profiles, which depend
 * on the simulated local time only.
 */
typedef struct smx_targets
{
	float		cpu;
	float		memory;			/* an app server's GC saw included */
	float		disk;			/* the baseline: disk only grows from it */
	float		network;
	float		cpu_profile;
	float		net_profile;
} smx_targets;

extern void smx_server_targets(const smx_tick_ctx *ctx, const smx_params *p,
							   smx_targets *t);

/* Advance n servers by one tick (ctx prepared for the new tick). */
extern void smx_step(const smx_tick_ctx *ctx, const smx_params *p,
					 smx_state *s, int n);

/* Apply the status rules (role's thresholds, hysteresis) to s->level[], s->status. */
extern void smx_update_status(smx_state *s, int role);

/*
 * Incidents (scenarios). A scenario runs through four phases, each a share
 * of its duration; over them an envelope rises from 0 to SMX_WARNING_LEVEL
 * (warning signs), to 1 (onset), holds (peak) and falls back to 0
 * (recovery), along each phase's curve. The effect at a tick is the
 * envelope x intensity x the scenario's per-metric effects, laid over the
 * model's own values (which go on evolving underneath, so a server leaves
 * an incident where it would have been without it).
 */
typedef enum smx_phase
{
	SMX_PH_WARNING = 0,
	SMX_PH_ONSET,
	SMX_PH_PEAK,
	SMX_PH_RECOVERY,
	SMX_PH_COUNT
} smx_phase;

typedef enum smx_curve
{
	SMX_CURVE_LINEAR = 0,
	SMX_CURVE_EXPONENTIAL,
	SMX_CURVE_STEP,
	SMX_CURVE_SINE,
	SMX_CURVE_COUNT
} smx_curve;

extern const char *const smx_phase_names[SMX_PH_COUNT];
extern const char *const smx_curve_names[SMX_CURVE_COUNT];

#define SMX_WARNING_LEVEL	0.2f

/* What a scenario does at full envelope and intensity 1. */
typedef struct smx_effects
{
	float		add[SMX_M_COUNT];	/* points added to cpu, memory, disk, network */
	float		response;		/* response time x this (>= 1) */
	bool		offline;		/* down during onset and peak */
} smx_effects;

/* The overlay of one incident at one tick. */
typedef struct smx_overlay
{
	float		add[SMX_M_COUNT];
	float		response;		/* factor */
	bool		offline;
} smx_overlay;

/*
 * A uniform draw in [0, 1) keyed by (seed, a, b): the incidents' choices
 * (when, what, where, cascade or not) come from it, apart from the
 * model's own draws, so an incident never changes another server.
 */
extern double smx_unit_key(uint64_t seed, uint64_t a, uint64_t b);

/* Curve by SQL name; -1 if unknown. */
extern int	smx_curve_from_name(const char *name);

/*
 * The envelope in phase ph at progress x in [0, 1] of that phase.
 * from_level scales the recovery (a run stopped early recovers from where
 * it was).
 */
extern float smx_envelope(int phase, int curve, double x, float from_level);

/* The overlay of an envelope value: level x intensity x effects. */
extern void smx_overlay_at(const smx_effects *e, float level, float intensity,
						   bool offline_now, smx_overlay *ov);

/*
 * Parse "YYYY-MM-DD[ T]HH:MM[:SS[.fff]][Z|±HH[:MM]]" (no zone = UTC) into
 * unix seconds. Returns false on malformed input or out-of-range fields.
 */
extern bool smx_parse_iso8601(const char *s, double *epoch);

#endif							/* SMX_MODEL_H */

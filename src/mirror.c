/*
 * mirror.c — the mirror: a background worker with no database that copies
 * the fleet to Redis (the warm layer). It reads shared memory only (the
 * published state under the shared lock, the history ring without one)
 * and waits only on Redis, each wait bounded by redis_timeout, so neither
 * the ticker nor the writer's flushes ever wait for Redis, nor Redis for
 * a flush.
 *
 * Keys (prefix = sim_metrics.redis_key_prefix, default "sim:"):
 *  - {prefix}server:{id}   hash with the columns of sim_current_metrics(),
 *                          EXPIRE redis_ttl
 *  - {prefix}samples:{id}  sorted set of the server's mirrored samples over
 *                          the TTL window, score = tick, member =
 *                          "tick|sim_time|cpu|memory|disk|network_io|status|session".
 *                          A sorted set rather than a stream: a sample sent
 *                          again after a reconnect adds no duplicate, and
 *                          ranges are read by tick.
 *  - {prefix}servers       set of the live server ids
 *  - {prefix}events        channel: a JSON message per status change
 *  - {prefix}journal:{tick} hash, server id -> sample (as above): every
 *                          sample of the tick until the table has them all,
 *                          then UNLINK (in any case EXPIRE the larger of
 *                          redis_ttl and 2 x flush_interval + 60 s)
 *  - {prefix}mirror        hash: tick (every sample up to it is in the
 *                          journal or already in the table), session,
 *                          system, extension, updated_at; what the writer's
 *                          recovery (recover.c) trusts
 *
 * The journal follows the ring from a cursor: every tick of every server,
 * so the samples a crash takes from the ring can be recovered; it holds
 * only what is not flushed yet, so Redis keeps no second history. The
 * hash and samples:{id} follow change detection: a server is written when
 * a metric moved at least change_threshold points or its status changed
 * since it was last mirrored, at most once per redis_min_interval, and at
 * least every redis_ttl / 2 so its keys never expire while it lives. After
 * a (re)connect every hash is written again, the live set rebuilt and the
 * unflushed samples sent again to the journal. A failure drops the
 * connection and retries with backoff: at once the first time, then
 * 250 ms doubling to 30 s.
 */
#include "postgres.h"

#include <math.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "access/xlog.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "utils/datetime.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "sim_metrics.h"

#define SMX_MIRROR_POLL_MS			1000	/* a round at least this often */
#define SMX_MIRROR_ROUND_SAMPLES	262144	/* ring samples sent per round */
#define SMX_REDIS_MAX_BACKOFF_MS	30000
#define SMX_REDIS_LOG_EVERY_MS		60000	/* errors logged at most this often */
#define SMX_KEY_LEN					(SMX_ID_LEN + 160)
#define SMX_MIRROR_HEAP_EVERY		200		/* loops between heap reports (DEBUG1) */

/* What the mirror last sent for a server of the mirrored fleet. */
typedef struct SmxMirror
{
	float		cpu,
				memory,
				disk,
				network;
	uint8		status;			/* as last written */
	uint8		seen_status;	/* as last seen (events) */
	TimestampTz written_at;		/* 0 = never */
	TimestampTz expires_set_at; /* last EXPIRE; 0 = never */
} SmxMirror;

static void *smx_conn = NULL;
static bool smx_resync = true;
static int	smx_failures = 0;
static TimestampTz smx_retry_at = 0;
static TimestampTz smx_last_log = 0;
static uint64 smx_mirror_fleet = 0; /* fleet_version of smx_mirror */
static uint64 smx_mirrored_version = 0;	/* state_version last mirrored */
static uint64 smx_cursor = 0;	/* next ring position to send */
static MemoryContext smx_mirror_cxt = NULL;
static SmxMirror *smx_mirror = NULL;
static SmxServerDesc *smx_mirror_desc = NULL;
static smx_state *smx_mirror_states = NULL;
/* the scenario of each run slot (smx_state.run), copied with the states */
static char smx_rruns[SMX_MAX_RUNS + 1][SMX_SCENARIO_LEN];
static int64 smx_rrun_ids[SMX_MAX_RUNS + 1];	/* and its id (events) */
static int32 *smx_mirror_id_ref = NULL;	/* id pool entry of each server */
static int32 *smx_ref_index = NULL; /* server of each id pool entry, or -1 */
static SmxSample *smx_chunk = NULL;
static int	smx_rcap = 0;
static int	smx_mirror_n = 0;	/* servers in smx_mirror / smx_mirror_desc */

/* Record the state word, and an error (rate-limited in the log). */
static void
smx_mirror_status(const char *state, const char *error)
{
	TimestampTz now = GetCurrentTimestamp();

	LWLockAcquire(smx_shared->publish_lock, LW_EXCLUSIVE);
	strlcpy(smx_shared->mirror.state, state, sizeof(smx_shared->mirror.state));
	if (error)
	{
		smx_copy_clipped(smx_shared->mirror.last_error, error, SMX_ERROR_LEN);
		smx_shared->mirror.errors++;
	}
	LWLockRelease(smx_shared->publish_lock);
	if (error && now >= TimestampTzPlusMilliseconds(smx_last_log, SMX_REDIS_LOG_EVERY_MS))
	{
		smx_last_log = now;
		ereport(LOG,
				(errmsg("sim_metrics: redis: %s", error),
				 errdetail("Further Redis errors are counted in sim_status().redis_errors and logged at most once a minute.")));
	}
}

static void
smx_mirror_disconnect(void)
{
	smx_redis_close(smx_conn);
	smx_conn = NULL;
	smx_resync = true;
}

/* The n-th failure in a row: retry at once, then after 250 ms doubling, at most 30 s. */
static void
smx_mirror_backoff(TimestampTz now)
{
	smx_failures++;
	smx_retry_at = smx_failures <= 1 ? now :
		TimestampTzPlusMilliseconds(now, Min((long) SMX_REDIS_MAX_BACKOFF_MS,
											 250L << Min(smx_failures - 2, 10)));
}

/* A failure: drop the connection, back off. */
static void
smx_mirror_fail(const char *error)
{
	smx_mirror_disconnect();
	smx_mirror_backoff(GetCurrentTimestamp());
	smx_mirror_status("disconnected, retrying", error);
}

static bool
smx_mirror_connect(void)
{
	char		err[SMX_ERROR_LEN] = "";

	smx_mirror_status("connecting", NULL);
	smx_conn = smx_redis_open(err, sizeof(err));
	if (smx_conn == NULL)
	{
		smx_mirror_fail(err);
		return false;
	}
	smx_resync = true;
	return true;
}

/* The mirror's copies, allocated once for the whole capacity. */
static void
smx_mirror_reserve(void)
{
	int			n = Max(smx_shared->fleet.capacity, 1);

	if (smx_rcap > 0)
		return;
	smx_mirror_cxt = AllocSetContextCreate(TopMemoryContext, "sim_metrics mirror",
										   ALLOCSET_DEFAULT_SIZES);
	smx_mirror_desc = MemoryContextAllocHuge(smx_mirror_cxt, sizeof(SmxServerDesc) * n);
	smx_mirror_states = MemoryContextAllocHuge(smx_mirror_cxt, sizeof(smx_state) * n);
	smx_mirror = MemoryContextAllocHuge(smx_mirror_cxt, sizeof(SmxMirror) * n);
	smx_mirror_id_ref = MemoryContextAllocHuge(smx_mirror_cxt, sizeof(int32) * n);
	smx_ref_index = MemoryContextAllocHuge(smx_mirror_cxt,
										   sizeof(int32) * Max(smx_shared->ring.id_pool_size, 1));
	smx_chunk = MemoryContextAllocHuge(smx_mirror_cxt, sizeof(SmxSample) * SMX_RING_CHUNK);
	smx_rcap = n;
	smx_mirror_fleet = 0;
}

/* The published fleet, state and ring bounds, copied under the shared lock. */
typedef struct SmxMirrorSnap
{
	int			n;
	uint64		fleet_version;
	uint64		state_version;
	uint64		tick;
	TimestampTz sim_time;
	bool		sim_time_valid;
	TimestampTz updated_at;
	uint64		ring_tail;
	uint64		ring_head;
	Oid			extension;
	char		sessions[SMX_SESSIONS][SMX_SESSION_LEN];
	char		session_id[SMX_SESSION_LEN];	/* the ticker's session */
	SmxServerDesc *new_desc;	/* the server list when it changed, else NULL */
} SmxMirrorSnap;

static void
smx_mirror_snapshot(SmxMirrorSnap *snap)
{
	smx_mirror_reserve();
	LWLockAcquire(smx_shared->publish_lock, LW_SHARED);
	snap->n = Min(smx_shared->fleet.nservers, smx_rcap);
	snap->fleet_version = smx_shared->fleet.version;
	snap->state_version = smx_shared->fleet.state_version;
	snap->tick = smx_shared->fleet.tick;
	snap->updated_at = smx_shared->fleet.last_tick_at;
	snap->sim_time_valid = smx_epoch_to_timestamptz(smx_sim_epoch_at(snap->tick),
													&snap->sim_time);
	snap->ring_tail = smx_shared->ring.tail;
	snap->ring_head = smx_shared->ring.head;
	snap->extension = smx_shared->fleet.extension;
	memcpy(snap->sessions, smx_shared->fleet.sessions, sizeof(snap->sessions));
	memcpy(snap->session_id, smx_shared->fleet.session_id, SMX_SESSION_LEN);
	snap->new_desc = NULL;
	if (snap->fleet_version != smx_mirror_fleet)
	{
		snap->new_desc = palloc(Max(snap->n, 1) * sizeof(SmxServerDesc));
		memcpy(snap->new_desc, smx_shared_desc(), snap->n * sizeof(SmxServerDesc));
		memcpy(smx_mirror_id_ref, smx_shared_id_ref(), snap->n * sizeof(int32));
	}
	memcpy(smx_mirror_states, smx_shared_state(), snap->n * sizeof(smx_state));
	smx_copy_run_names(smx_rruns);
	for (int r = 0; r < SMX_MAX_RUNS; r++)
		smx_rrun_ids[r + 1] = smx_shared->scen.runs[r].id;
	LWLockRelease(smx_shared->publish_lock);
}

/*
 * A new server list: servers that stay keep what was mirrored of them
 * (and the status they were last seen with, so no event is lost); new
 * ones start from nothing. Both lists are sorted by id.
 */
static void
smx_mirror_new_fleet(const SmxMirrorSnap *snap)
{
	SmxMirror  *kept = palloc0(sizeof(SmxMirror) * Max(snap->n, 1));
	int		   *old_index = palloc(sizeof(int) * Max(snap->n, 1));

	smx_desc_match(smx_mirror_desc, smx_mirror_n, snap->new_desc, snap->n, old_index);
	for (int i = 0; i < snap->n; i++)
	{
		if (old_index[i] >= 0)
			kept[i] = smx_mirror[old_index[i]];
		else
			kept[i].seen_status = smx_mirror_states[i].status;
	}
	memcpy(smx_mirror, kept, sizeof(SmxMirror) * snap->n);
	memcpy(smx_mirror_desc, snap->new_desc, sizeof(SmxServerDesc) * snap->n);
	smx_mirror_n = snap->n;
	for (int r = 0; r < smx_shared->ring.id_pool_size; r++)
		smx_ref_index[r] = -1;
	for (int i = 0; i < snap->n; i++)
		if (smx_mirror_id_ref[i] >= 0 && smx_mirror_id_ref[i] < smx_shared->ring.id_pool_size)
			smx_ref_index[smx_mirror_id_ref[i]] = i;
}

static void
smx_arg_z(SmxPipe *p, const char *s)
{
	smx_pipe_arg(p, s, strlen(s));
}

/* The longest kind a key is built with (smx_key callers). */
#define SMX_KEY_KIND_MAX	8		/* "samples:", "journal:" */
StaticAssertDecl(SMX_REDIS_PREFIX_MAX + SMX_KEY_KIND_MAX + SMX_ID_LEN <= SMX_KEY_LEN,
				 "every {prefix}{kind}{id} must fit SMX_KEY_LEN");

/*
 * "{prefix}{kind}{id}" into key (SMX_KEY_LEN bytes); returns its length.
 * The prefix's check hook and the id's CHECK keep it within the buffer; a
 * key that would not fit raises rather than send a cut or overlong key.
 */
static int
smx_key(char *key, const char *kind, const char *id)
{
	int			len = snprintf(key, SMX_KEY_LEN, "%s%s%s", smx_redis_key_prefix, kind, id);

	if (len < 0 || len >= SMX_KEY_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_NAME_TOO_LONG),
				 errmsg("sim_metrics: a Redis key of %d bytes is longer than the %d allowed",
						len, SMX_KEY_LEN - 1),
				 errhint("Shorten sim_metrics.redis_key_prefix (at most %d bytes).",
						 SMX_REDIS_PREFIX_MAX)));
	return len;
}

static const char *
smx_ts_text(TimestampTz ts, bool valid)
{
	return valid ? pstrdup(timestamptz_to_str(ts)) : "";
}

/* The parts of a round's writes that are the same for every server. */
typedef struct SmxRoundText
{
	char		ttl[16];
	char		tick[24];
	char		trim[24];		/* "(" lowest tick kept */
	const char *sim_time;
	const char *updated_at;
} SmxRoundText;

static void
smx_round_text(SmxRoundText *rt, const SmxMirrorSnap *snap)
{
	/* the TTL is wall-clock time: so many ticks of tick_interval */
	int64		window = (int64) (smx_redis_ttl_s * 1000.0 / Max(smx_tick_interval_ms, 1)) + 1;

	snprintf(rt->ttl, sizeof(rt->ttl), "%d", smx_redis_ttl_s);
	snprintf(rt->tick, sizeof(rt->tick), UINT64_FORMAT, snap->tick);
	snprintf(rt->trim, sizeof(rt->trim), "(" INT64_FORMAT, (int64) snap->tick - window);
	rt->sim_time = smx_ts_text(snap->sim_time, snap->sim_time_valid);
	rt->updated_at = smx_ts_text(snap->updated_at, snap->updated_at != 0);
}

/* Journal ticks written and where their samples end in the ring. */
typedef struct SmxJournalTick
{
	int64		tick;
	uint64		end;			/* ring position after its last sample sent */
} SmxJournalTick;

static SmxJournalTick *smx_jticks = NULL;
static int	smx_njticks = 0;
static int	smx_jticks_cap = 0;

/* Remember that tick's samples up to ring position end are in the journal. */
static void
smx_journal_note(int64 tick, uint64 end)
{
	if (smx_njticks > 0 && smx_jticks[smx_njticks - 1].tick == tick)
	{
		smx_jticks[smx_njticks - 1].end = Max(smx_jticks[smx_njticks - 1].end, end);
		return;
	}
	if (smx_njticks == smx_jticks_cap)
	{
		smx_jticks_cap = Max(64, smx_jticks_cap * 2);
		smx_jticks = smx_jticks ?
			repalloc_huge(smx_jticks, sizeof(SmxJournalTick) * smx_jticks_cap) :
			MemoryContextAllocHuge(smx_mirror_cxt, sizeof(SmxJournalTick) * smx_jticks_cap);
	}
	smx_jticks[smx_njticks].tick = tick;
	smx_jticks[smx_njticks].end = end;
	smx_njticks++;
}

/*
 * Append an UNLINK of the journal ticks the table has (their samples are all
 * below ring_tail). Returns how many; they leave the list once Redis took
 * the round.
 */
static int
smx_journal_drop_flushed(SmxPipe *p, uint64 ring_tail)
{
	int			k = 0;

	while (k < smx_njticks && smx_jticks[k].end <= ring_tail)
	{
		char		key[SMX_KEY_LEN];
		char		tick[24];

		smx_fmt_int64(tick, smx_jticks[k].tick);
		/* UNLINK: Redis frees the hash (a field a server) off its main thread */
		smx_pipe_command(p, 2);
		smx_pipe_arg(p, "UNLINK", 6);
		smx_pipe_arg(p, key, smx_key(key, "journal:", tick));
		smx_pipe_end(p);
		k++;
	}
	return k;
}

static void
smx_journal_forget(int k)
{
	memmove(smx_jticks, smx_jticks + k, sizeof(SmxJournalTick) * (smx_njticks - k));
	smx_njticks -= k;
}

/* The journal fields gathered for one HSET of one tick. */
typedef struct SmxJournalBatch
{
	StringInfoData args;		/* id, sample, id, sample... as RESP */
	int			pairs;
	int64		tick;
	char		tick_text[24];
	bool		expired;		/* EXPIRE sent for this tick this round */
} SmxJournalBatch;

/*
 * The journal's TTL, in seconds. A journal tick is dropped (UNLINK) once
 * the table has it; the TTL only bounds what is left behind. It must
 * outlive the flush that makes the tick redundant, else a late flush
 * finds the oldest unflushed samples expired while the mark still claims
 * them: twice flush_interval and a minute (a flush that runs late or is
 * retried), never less than redis_ttl. Recovery still checks every tick
 * it reads and stops at the first one missing (recover.c).
 */
static int
smx_journal_ttl_s(void)
{
	int64		ttl = (int64) smx_flush_interval_ms / 1000 * 2 + 60;

	return (int) Min(Max(ttl, (int64) smx_redis_ttl_s), (int64) INT_MAX);
}

static void
smx_journal_emit(SmxPipe *p, SmxJournalBatch *b)
{
	char		key[SMX_KEY_LEN];
	int			klen;

	if (b->pairs == 0)
		return;
	klen = smx_key(key, "journal:", b->tick_text);
	smx_pipe_command(p, 2 + 2 * b->pairs);
	smx_pipe_arg(p, "HSET", 4);
	smx_pipe_arg(p, key, klen);
	smx_pipe_raw(p, b->args.data, b->args.len);
	smx_pipe_end(p);
	if (!b->expired)
	{
		char		ttl[16];

		snprintf(ttl, sizeof(ttl), "%d", smx_journal_ttl_s());
		smx_pipe_argv(p, 3, (const char *[]) {"EXPIRE", key, ttl});
		b->expired = true;
	}
	resetStringInfo(&b->args);
	b->pairs = 0;
}

/*
 * Send the ring's samples from the cursor on (at most
 * SMX_MIRROR_ROUND_SAMPLES) to the journal: a hash a tick, server id ->
 * sample, in HSETs of up to 1000 fields. The ring is read without a lock
 * in chunks; a chunk's samples below the tail seen after the copy may have
 * been overwritten and are left out: the table has them. So are samples
 * of servers no longer in the fleet. Returns the position reached;
 * *last_tick gets the tick of the last sample sent (-1: none).
 */
static uint64
smx_mirror_samples(SmxPipe *p, const SmxMirrorSnap *snap, int64 *last_tick)
{
	uint64		end = Min(snap->ring_head, smx_cursor + SMX_MIRROR_ROUND_SAMPLES);
	SmxJournalBatch b;
	char		when[MAXDATELEN + 1] = "";
	SmxRingIter it;
	int			k,
				first_ok;

	memset(&b, 0, sizeof(b));
	initStringInfo(&b.args);
	b.tick = -1;
	*last_tick = -1;
	smx_ring_iter_begin(&it, smx_cursor, end, smx_chunk);
	while ((k = smx_ring_iter_next(&it, &first_ok)) > 0)
	{
		for (int i = first_ok; i < k; i++)
		{
			SmxSample  *s = &it.buf[i];
			int			idx = s->id_ref >= 0 && s->id_ref < smx_shared->ring.id_pool_size ?
				smx_ref_index[s->id_ref] : -1;
			char		text[SMX_SAMPLE_TEXT_MAX];
			const char *id;

			if (idx < 0)
				continue;
			if (s->tick != b.tick || b.pairs == 1000)
			{
				smx_journal_emit(p, &b);
				if (s->tick != b.tick)
				{
					b.tick = s->tick;
					b.expired = false;
					smx_fmt_int64(b.tick_text, s->tick);
					strlcpy(when, timestamptz_to_str(s->sim_time), sizeof(when));
				}
			}
			id = smx_mirror_desc[idx].id;
			smx_resp_arg(&b.args, id, strlen(id));
			smx_resp_arg(&b.args, text,
						 smx_sample_encode(text, sizeof(text), b.tick_text, when,
										   s->cpu / 100.0, s->memory / 100.0, s->disk / 100.0,
										   s->network_io, s->status,
										   s->session < SMX_SESSIONS ? snap->sessions[s->session] : "",
										   s->anomaly));
			b.pairs++;
			*last_tick = s->tick;
			smx_journal_note(s->tick, it.from + i + 1);
		}
	}
	smx_journal_emit(p, &b);
	pfree(b.args.data);
	return end;
}

/*
 * Append the commands that write server i's hash: HSET, and with
 * expire_too the EXPIREs of both keys and the trim of old samples.
 */
static void
smx_mirror_write_server(SmxPipe *p, int i, const SmxMirrorSnap *snap,
						const SmxRoundText *rt, bool expire_too)
{
	smx_state  *s = &smx_mirror_states[i];
	char		key[SMX_KEY_LEN],
				skey[SMX_KEY_LEN],
				num[24];
	int			klen = smx_key(key, "server:", smx_mirror_desc[i].id);
	int			score = smx_score_units(s->anomaly);
	static const char *const pct_fields[4] = {"cpu_usage", "memory_usage", "disk_usage",
	"network_usage"};
	float		pct[4] = {s->cpu, s->memory, s->disk, s->network};

	smx_pipe_command(p, 28);
	smx_pipe_arg(p, "HSET", 4);
	smx_pipe_arg(p, key, klen);
	for (int f = 0; f < 4; f++)
	{
		smx_arg_z(p, pct_fields[f]);
		smx_pipe_arg(p, num, smx_fmt_pct(num, pct[f]));
	}
	smx_arg_z(p, "network_io");
	smx_pipe_arg(p, num, smx_fmt_int64(num, (int64) s->network_io));
	smx_arg_z(p, "response_time_ms");
	smx_pipe_arg(p, num, smx_fmt_pct(num, s->response_ms));
	smx_arg_z(p, "status");
	smx_arg_z(p, smx_status_names[s->status & 3]);
	smx_arg_z(p, "scenario");
	smx_arg_z(p, s->run != 0 ? smx_rruns[s->run] : "");
	smx_arg_z(p, "anomaly_score");
	smx_pipe_arg(p, num, smx_fmt_score(num, score));
	smx_arg_z(p, "anomaly_metric");
	smx_arg_z(p, score > 0 ? smx_detect_signal_names[Min(s->anomaly_signal, SMX_DETECT_SIGNALS)] : "");
	smx_arg_z(p, "tick");
	smx_arg_z(p, rt->tick);
	smx_arg_z(p, "sim_time");
	smx_arg_z(p, rt->sim_time);
	smx_arg_z(p, "updated_at");
	smx_arg_z(p, rt->updated_at);
	smx_pipe_end(p);
	{
		char		text[SMX_SAMPLE_TEXT_MAX];

		smx_pipe_command(p, 4);
		smx_pipe_arg(p, "ZADD", 4);
		smx_pipe_arg(p, skey, smx_key(skey, "samples:", smx_mirror_desc[i].id));
		smx_arg_z(p, rt->tick);
		smx_pipe_arg(p, text, smx_sample_encode(text, sizeof(text), rt->tick, rt->sim_time,
												s->cpu, s->memory, s->disk, (int64) s->network_io,
												s->status, snap->session_id, score));
		smx_pipe_end(p);
	}
	/* HSET and ZADD keep a key's TTL: set it (and trim) only when new or due */
	if (expire_too)
	{
		const char *expire[3] = {"EXPIRE", key, rt->ttl};
		const char *trim[4] = {"ZREMRANGEBYSCORE", skey, "-inf", rt->trim};
		const char *sexpire[3] = {"EXPIRE", skey, rt->ttl};

		smx_pipe_argv(p, 3, expire);
		smx_pipe_argv(p, 4, trim);
		smx_pipe_argv(p, 3, sexpire);
	}
}

/* Append the rebuild of the live set: exactly the current ids, atomically. */
static void
smx_mirror_write_live_set(SmxPipe *p, int n)
{
	char	   *key = psprintf("%sservers", smx_redis_key_prefix);
	const char *multi[1] = {"MULTI"};
	const char *exec[1] = {"EXEC"};
	const char *del[2] = {"DEL", key};

	/* readers never see the set empty or half built */
	smx_pipe_argv(p, 1, multi);
	smx_pipe_argv(p, 2, del);
	for (int from = 0; from < n; from += 1000)
	{
		int			k = Min(1000, n - from);

		smx_pipe_command(p, k + 2);
		smx_arg_z(p, "SADD");
		smx_arg_z(p, key);
		for (int j = 0; j < k; j++)
			smx_arg_z(p, smx_mirror_desc[from + j].id);
		smx_pipe_end(p);
	}
	smx_pipe_argv(p, 1, exec);
}

/* Append a status-change event of server i (the NOTIFY payload's JSON). */
static void
smx_mirror_event(SmxPipe *p, int i, uint8 from, const SmxMirrorSnap *snap,
				 const SmxRoundText *rt)
{
	smx_state  *s = &smx_mirror_states[i];
	StringInfoData ev;
	const char *argv[3] = {"PUBLISH", psprintf("%sevents", smx_redis_key_prefix), NULL};

	initStringInfo(&ev);
	smx_status_event(&ev, smx_mirror_desc[i].id, from, s->status, (int64) snap->tick, rt->sim_time,
					 s->run != 0 && s->run <= SMX_MAX_RUNS ? smx_rrun_ids[s->run] : 0);
	argv[2] = ev.data;
	smx_pipe_argv(p, 3, argv);
}

static bool
smx_moved(float a, float b, float th)
{
	float		d = fabsf(a - b);

	return d > 0 && d >= th;
}

/* Whether server i's keys need their TTL set again (new, or half gone). */
static bool
smx_refresh_due(int i, TimestampTz now, bool full)
{
	SmxMirror  *m = &smx_mirror[i];

	return full || m->expires_set_at == 0 || now < m->expires_set_at ||
		now >= TimestampTzPlusMilliseconds(m->expires_set_at, (int64) smx_redis_ttl_s * 500);
}

/* Whether server i's hash is to be written now; updates nothing. */
static bool
smx_write_due(int i, TimestampTz now, bool full, bool new_state)
{
	SmxMirror  *m = &smx_mirror[i];
	smx_state  *s = &smx_mirror_states[i];
	float		th = (float) smx_change_threshold;

	/* never written, or the wall clock went back: write */
	if (full || m->written_at == 0 || now < m->written_at)
		return true;
	/* refresh before the TTL runs out, change or not */
	if (smx_refresh_due(i, now, false))
		return true;
	if (!new_state)
		return false;
	/* a status change is written at once; a move waits for min_interval */
	if (s->status != m->status)
		return true;
	if (now < TimestampTzPlusMilliseconds(m->written_at, smx_redis_min_interval_ms))
		return false;
	return smx_moved(s->cpu, m->cpu, th) || smx_moved(s->memory, m->memory, th) ||
		smx_moved(s->disk, m->disk, th) || smx_moved(s->network, m->network, th);
}

/*
 * After a round whose samples went through tick `upto`: record in
 * {prefix}mirror that every sample up to it is in Redis (or in the table),
 * for the writer's recovery. A round trip of its own, after the round's
 * replies came back, so it never claims more than Redis took.
 */
static bool
smx_mirror_mark(int64 upto, const SmxMirrorSnap *snap, const SmxRoundText *rt)
{
	SmxPipe		p;
	char		tick[24],
				sys[24],
				ext[16];
	const char *argv[12] = {"HSET", psprintf("%smirror", smx_redis_key_prefix),
		"tick", tick, "session", snap->session_id, "system", sys, "extension", ext,
	"updated_at", rt->updated_at};

	smx_fmt_int64(tick, upto);
	snprintf(sys, sizeof(sys), UINT64_FORMAT, GetSystemIdentifier());
	snprintf(ext, sizeof(ext), "%u", snap->extension);
	smx_pipe_begin(&p, smx_conn);
	smx_pipe_argv(&p, 12, argv);
	if (!smx_pipe_finish(&p, NULL, NULL) || p.error_replies > 0)
	{
		smx_mirror_fail(p.err);
		return false;
	}
	return true;
}

/* What a round sent for a server (smx_mirror_servers -> smx_mirror_remember). */
#define SMX_SENT_HASH		1	/* its hash and sample */
#define SMX_SENT_EXPIRE		2	/* and the EXPIREs */

/* Write the servers that are due (and events); counts them, notes each in sent[]. */
static void
smx_mirror_servers(SmxPipe *p, const SmxMirrorSnap *snap, const SmxRoundText *rt,
				   TimestampTz now, bool full, uint8 *sent, int64 *writes, int64 *skipped)
{
	bool		new_state = snap->state_version != smx_mirrored_version;

	for (int i = 0; i < snap->n; i++)
	{
		sent[i] = 0;
		if (smx_write_due(i, now, full, new_state))
		{
			sent[i] = SMX_SENT_HASH | (smx_refresh_due(i, now, full) ? SMX_SENT_EXPIRE : 0);
			smx_mirror_write_server(p, i, snap, rt, (sent[i] & SMX_SENT_EXPIRE) != 0);
			(*writes)++;
		}
		else
			(*skipped)++;
		/* the event after the server's writes: a reader sees the new hash */
		if (smx_mirror_states[i].status != smx_mirror[i].seen_status)
			smx_mirror_event(p, i, smx_mirror[i].seen_status, snap, rt);
	}
}

/* The round's writes went through: remember what the servers now hold. */
static void
smx_mirror_remember(const SmxMirrorSnap *snap, TimestampTz now, const uint8 *sent)
{
	for (int i = 0; i < snap->n; i++)
	{
		/* every status change of the round was published */
		smx_mirror[i].seen_status = smx_mirror_states[i].status;
		if (sent[i] & SMX_SENT_HASH)
		{
			if (sent[i] & SMX_SENT_EXPIRE)
				smx_mirror[i].expires_set_at = now;
			smx_mirror[i].cpu = smx_mirror_states[i].cpu;
			smx_mirror[i].memory = smx_mirror_states[i].memory;
			smx_mirror[i].disk = smx_mirror_states[i].disk;
			smx_mirror[i].network = smx_mirror_states[i].network;
			smx_mirror[i].status = smx_mirror_states[i].status;
			smx_mirror[i].written_at = now;
		}
	}
	smx_mirror_fleet = snap->fleet_version;
	smx_mirrored_version = snap->state_version;
}

/*
 * One round: connect when due, then send the new samples and the hashes
 * that are due in one pipeline. Never raises for a Redis failure: it is
 * recorded in sim_status() and retried with backoff. *more is set when
 * samples are left for another round at once.
 */
void
smx_mirror_round(bool *more)
{
	TimestampTz now = GetCurrentTimestamp();
	SmxMirrorSnap snap;
	SmxPipe		pipe;
	SmxRoundText rt;
	bool		full;
	uint8	   *sent;
	uint64		reached;
	int64		last_tick;
	int			dropped;
	int64		writes = 0,
				skipped = 0;

	*more = false;
	if (smx_redis_host == NULL || smx_redis_host[0] == '\0')
	{
		if (smx_conn)
			smx_mirror_disconnect();
		smx_failures = 0;
		smx_mirror_status("off", NULL);
		return;
	}
	if (now < smx_retry_at || (smx_conn == NULL && !smx_mirror_connect()))
		return;
	if (!OidIsValid(smx_shared->fleet.extension))
		return;

	smx_mirror_snapshot(&snap);
	full = smx_resync || snap.fleet_version != smx_mirror_fleet;
	if (snap.fleet_version != smx_mirror_fleet)
		smx_mirror_new_fleet(&snap);
	/* after a (re)connect, every sample not yet in the table again */
	if (smx_resync || smx_cursor < snap.ring_tail || smx_cursor > snap.ring_head)
		smx_cursor = snap.ring_tail;

	smx_pipe_begin(&pipe, smx_conn);
	if (full)
		smx_mirror_write_live_set(&pipe, snap.n);
	smx_round_text(&rt, &snap);
	dropped = smx_journal_drop_flushed(&pipe, snap.ring_tail);
	reached = smx_mirror_samples(&pipe, &snap, &last_tick);
	sent = palloc(sizeof(uint8) * Max(snap.n, 1));
	smx_mirror_servers(&pipe, &snap, &rt, now, full, sent, &writes, &skipped);
	/* nothing to send: a PING, so a dead or stalled Redis is noticed anyway */
	if (pipe.commands == 0)
	{
		const char *ping[1] = {"PING"};

		smx_pipe_argv(&pipe, 1, ping);
	}
	if (!smx_pipe_finish(&pipe, NULL, NULL))
	{
		smx_mirror_fail(pipe.err);
		return;
	}
	if (pipe.error_replies > 0)
	{
		/* refused commands (e.g. OOM under maxmemory): all again, after a pause */
		smx_resync = true;
		smx_mirror_backoff(now);
		smx_mirror_status("connected, commands failing", pipe.err);
		return;
	}

	smx_mirror_remember(&snap, now, sent);
	smx_journal_forget(dropped);
	smx_cursor = reached;
	/* ticks are appended whole: a round cut short may end inside one */
	if (last_tick >= 0 &&
		!smx_mirror_mark(reached == snap.ring_head ? last_tick : last_tick - 1,
						 &snap, &rt))
		return;
	pg_atomic_fetch_add_u64(&smx_shared->mirror.writes, (uint64) writes);
	pg_atomic_fetch_add_u64(&smx_shared->mirror.skipped, (uint64) skipped);
	smx_resync = false;
	smx_failures = 0;
	smx_retry_at = 0;
	smx_mirror_status("connected", NULL);
	*more = reached < snap.ring_head;
}

/* The mirror is leaving: close the connection. */
void
smx_mirror_shutdown(void)
{
	smx_mirror_disconnect();
}

/* Settings were reloaded: connect again with them, at once. */
void
smx_mirror_reconfigure(void)
{
	smx_mirror_disconnect();
	smx_failures = 0;
	smx_retry_at = 0;
}

static void
smx_mirror_exit(int code, Datum arg)
{
	pg_atomic_write_u32(&smx_shared->mirror.pid, 0);
}

/* The mirror's step: one round; arg is its bool *more (see smx_mirror_round). */
static void
smx_mirror_step(void *arg)
{
	PG_TRY();
	{
		smx_mirror_round((bool *) arg);
	}
	PG_CATCH();
	{
		/* a pipeline cut short may owe replies: never read them as the next round's */
		smx_mirror_disconnect();
		smx_mirror_backoff(GetCurrentTimestamp());
		PG_RE_THROW();
	}
	PG_END_TRY();
}

/*
 * At DEBUG1, every SMX_MIRROR_HEAP_EVERY loops: the bytes malloc has handed
 * out and not had back, in this process. A leak grows this; RssAnon also
 * counts the pages malloc touched and keeps, which grow in steps while
 * Redis flaps and say little about a leak of 48 bytes a round. t/016_redis_flap
 * reads these lines.
 */
static void
smx_mirror_heap_report(uint64 loops)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
	struct mallinfo2 mi;

	if (loops % SMX_MIRROR_HEAP_EVERY != 0 || !message_level_is_interesting(DEBUG1))
		return;
	mi = mallinfo2();
	elog(DEBUG1, "sim_metrics mirror: %zu bytes of heap in use after " UINT64_FORMAT " loops",
		 mi.uordblks + mi.hblkhd, loops);
#else
	(void) loops;
#endif
}

void
sim_metrics_mirror_main(Datum main_arg)
{
	uint64		loops = 0;

	/* no database: in nobody's way; pg_cancel_backend() cancels nothing */
	smx_worker_begin(SMX_MIRROR_TYPE, SIG_IGN, NULL);
	smx_pin_session_settings();
	pg_atomic_write_u32(&smx_shared->mirror.pid, (uint32) MyProcPid);
	on_shmem_exit(smx_mirror_exit, (Datum) 0);
	ereport(LOG, (errmsg("sim_metrics mirror started")));

	smx_loop_cxt = AllocSetContextCreate(TopMemoryContext, "sim_metrics mirror loop",
										 ALLOCSET_DEFAULT_SIZES);
	for (;;)
	{
		bool		more = false;
		long		timeout_ms = SMX_MIRROR_POLL_MS;
		TimestampTz now;

		MemoryContextSwitchTo(smx_loop_cxt);
		SMX_RESET_CONTEXT(smx_loop_cxt);
		/* measured here, with nothing of the last round left in the loop context */
		smx_mirror_heap_report(++loops);
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			smx_mirror_reconfigure();
		}

		(void) smx_worker_guarded(smx_mirror_step, &more);

		/* the ticker wakes the mirror after each tick; else poll, or retry */
		now = GetCurrentTimestamp();
		if (more)
			timeout_ms = 0;
		else if (smx_retry_at != 0)
			timeout_ms = smx_retry_at <= now ? 0 :
				Min(timeout_ms, (long) ((smx_retry_at - now + 999) / 1000));
		smx_worker_wait(timeout_ms);
		if (ShutdownRequestPending)
		{
			smx_mirror_shutdown();
			ereport(LOG, (errmsg("sim_metrics mirror is exiting")));
			/* code 1: after pg_terminate_backend a new mirror starts */
			proc_exit(1);
		}
	}
}

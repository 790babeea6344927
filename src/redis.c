/*
 * redis.c — the warm layer: the writer mirrors significant changes of the
 * fleet to Redis through hiredis. Only the writer runs this; the ticker
 * never waits on Redis.
 *
 * Keys (prefix = sim_metrics.redis_key_prefix, default "sim:"):
 *  - {prefix}server:{id}   hash with the columns of sim_current_metrics(),
 *                          EXPIRE redis_ttl
 *  - {prefix}samples:{id}  sorted set of the server's mirrored samples over
 *                          the TTL window, score = tick, member =
 *                          "tick|sim_time|cpu|memory|disk|network_io|status".
 *                          A sorted set rather than a stream: re-sending a
 *                          sample after a reconnect adds no duplicate, and
 *                          ranges are read by tick.
 *  - {prefix}servers       set of the live server ids
 *  - {prefix}events        channel: a JSON message per status change
 *
 * A server is written when a metric moved at least change_threshold points
 * or its status changed since it was last mirrored, at most once per
 * redis_min_interval, and at least every redis_ttl / 2 so its keys never
 * expire while it lives. After a (re)connect or a fleet change everything
 * is written again and the live set rebuilt. All commands of a round go in
 * one pipeline; connect and command timeouts (redis_timeout) bound every
 * wait; a failure drops the connection and retries with backoff. Every
 * reply is freed on every path.
 */
#include "postgres.h"

#include <math.h>
#include <sys/time.h>
#include <hiredis/hiredis.h>

#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "sim_metrics.h"

#define SMX_REDIS_MAX_BACKOFF_MS	30000
#define SMX_REDIS_LOG_EVERY_MS		60000	/* errors logged at most this often */

/* What the writer last sent for a server of the mirrored fleet. */
typedef struct SmxMirror
{
	float		cpu,
				memory,
				disk,
				network;
	uint8		status;			/* as last written */
	uint8		seen_status;	/* as last seen (events) */
	TimestampTz written_at;		/* 0 = never */
	TimestampTz expires_set_at;	/* last EXPIRE; 0 = never */
} SmxMirror;

static redisContext *smx_rc = NULL;
static bool smx_resync = true;
static int	smx_failures = 0;
static TimestampTz smx_retry_at = 0;
static TimestampTz smx_last_log = 0;
static uint64 smx_mirror_fleet = 0;		/* fleet_version of smx_mirror */
static uint64 smx_mirror_state = 0;		/* state_version last mirrored */
static MemoryContext smx_redis_cxt = NULL;
static SmxMirror *smx_mirror = NULL;
static SmxServerDesc *smx_rdesc = NULL;
static smx_state *smx_rstate = NULL;
static int	smx_rcap = 0;

/* Record the state word, and an error (rate-limited in the log). */
static void
smx_redis_status(const char *state, const char *error)
{
	TimestampTz now = GetCurrentTimestamp();

	LWLockAcquire(smx_shared->lock, LW_EXCLUSIVE);
	strlcpy(smx_shared->redis_state, state, sizeof(smx_shared->redis_state));
	if (error)
	{
		smx_copy_clipped(smx_shared->redis_last_error, error, SMX_ERROR_LEN);
		smx_shared->redis_errors++;
	}
	LWLockRelease(smx_shared->lock);
	if (error && now >= TimestampTzPlusMilliseconds(smx_last_log, SMX_REDIS_LOG_EVERY_MS))
	{
		smx_last_log = now;
		ereport(LOG,
				(errmsg("sim_metrics: redis: %s", error),
				 errdetail("Further Redis errors are counted in sim_status().redis_errors and logged at most once a minute.")));
	}
}

static void
smx_redis_disconnect(void)
{
	if (smx_rc)
		redisFree(smx_rc);
	smx_rc = NULL;
	smx_resync = true;
}

/* Retry after the n-th failure in a row: 0.5 s doubling, at most 30 s. */
static TimestampTz
smx_redis_backoff_until(TimestampTz now)
{
	return TimestampTzPlusMilliseconds(now, Min((long) SMX_REDIS_MAX_BACKOFF_MS,
												500L << Min(smx_failures - 1, 10)));
}

/* A failure: drop the connection, back off. */
static void
smx_redis_fail(const char *error)
{
	smx_redis_disconnect();
	smx_failures++;
	smx_retry_at = smx_redis_backoff_until(GetCurrentTimestamp());
	smx_redis_status("disconnected, retrying", error);
}

/*
 * The password: the first line of redis_password_file when set (read at
 * each connect), else redis_password. NULL when none. Never logged.
 */
static char *
smx_redis_read_password(char *err, size_t errlen)
{
	if (smx_redis_password_file && smx_redis_password_file[0])
	{
		FILE	   *f = AllocateFile(smx_redis_password_file, "r");
		char		buf[1024];
		size_t		n;

		if (f == NULL)
		{
			snprintf(err, errlen, "cannot read sim_metrics.redis_password_file: %m");
			return NULL;
		}
		n = fread(buf, 1, sizeof(buf) - 1, f);
		FreeFile(f);
		buf[n] = '\0';
		buf[strcspn(buf, "\r\n")] = '\0';
		return pstrdup(buf);
	}
	if (smx_redis_password_value && smx_redis_password_value[0])
		return pstrdup(smx_redis_password_value);
	return NULL;
}

/* Run one command on the fresh connection; false (err set) when it failed. */
static bool
smx_redis_setup_command(redisContext *c, int argc, const char **argv, const char *what,
						char *err, size_t errlen)
{
	redisReply *r = redisCommandArgv(c, argc, argv, NULL);
	bool		ok = r != NULL && r->type != REDIS_REPLY_ERROR;

	if (!ok)
		snprintf(err, errlen, "%s failed: %s", what,
				 r ? r->str : (c->errstr[0] ? c->errstr : "no reply"));
	if (r)
		freeReplyObject(r);
	return ok;
}

/*
 * A connection from the settings: connect, authenticate, select the
 * database, each step bounded by redis_timeout. NULL (err set) on failure.
 * The writer's mirror and a backend's point read both open theirs here.
 */
static redisContext *
smx_redis_open(char *err, size_t errlen)
{
	struct timeval tv;
	redisContext *c;
	char	   *password;
	bool		ok = true;

	tv.tv_sec = smx_redis_timeout_ms / 1000;
	tv.tv_usec = (smx_redis_timeout_ms % 1000) * 1000;
	c = smx_redis_host[0] == '/' ?
		redisConnectUnixWithTimeout(smx_redis_host, tv) :
		redisConnectWithTimeout(smx_redis_host, smx_redis_port, tv);
	if (c == NULL || c->err)
	{
		snprintf(err, errlen, "cannot connect to %s:%d: %s", smx_redis_host,
				 smx_redis_port, c ? c->errstr : "out of memory");
		if (c)
			redisFree(c);
		return NULL;
	}
	if (redisSetTimeout(c, tv) != REDIS_OK)
	{
		snprintf(err, errlen, "cannot set the command timeout");
		redisFree(c);
		return NULL;
	}
	err[0] = '\0';
	password = smx_redis_read_password(err, errlen);
	if (err[0])
		ok = false;
	else if (password)
	{
		const char *argv[3] = {"AUTH", smx_redis_user, password};
		bool		with_user = smx_redis_user && smx_redis_user[0];

		if (!with_user)
			argv[1] = password;
		ok = smx_redis_setup_command(c, with_user ? 3 : 2, argv, "AUTH", err, errlen);
		memset(password, 0, strlen(password));
		pfree(password);
	}
	if (ok && smx_redis_db != 0)
	{
		char		db[16];
		const char *argv[2] = {"SELECT", db};

		snprintf(db, sizeof(db), "%d", smx_redis_db);
		ok = smx_redis_setup_command(c, 2, argv, "SELECT", err, errlen);
	}
	if (!ok)
	{
		redisFree(c);
		return NULL;
	}
	return c;
}

/* The writer's connection: open it, or record the failure and back off. */
static bool
smx_redis_connect(void)
{
	char		err[SMX_ERROR_LEN] = "";

	smx_redis_status("connecting", NULL);
	smx_rc = smx_redis_open(err, sizeof(err));
	if (smx_rc == NULL)
	{
		smx_redis_fail(err);
		return false;
	}
	smx_resync = true;
	return true;
}

/* Make the writer-local copies hold n servers. */
static void
smx_redis_reserve(int n)
{
	if (smx_redis_cxt == NULL)
		smx_redis_cxt = AllocSetContextCreate(TopMemoryContext, "sim_metrics redis",
											  ALLOCSET_DEFAULT_SIZES);
	if (smx_rcap > 0)
		return;
	/* once, for the whole capacity: the fleet never outgrows it */
	n = Max(smx_shared->capacity, 1);
	smx_rdesc = MemoryContextAllocHuge(smx_redis_cxt, sizeof(SmxServerDesc) * n);
	smx_rstate = MemoryContextAllocHuge(smx_redis_cxt, sizeof(smx_state) * n);
	smx_mirror = MemoryContextAllocHuge(smx_redis_cxt, sizeof(SmxMirror) * n);
	smx_rcap = n;
	smx_mirror_fleet = 0;
}

/* The published fleet and state, copied under the shared lock. */
typedef struct SmxRedisSnap
{
	int			n;
	uint64		fleet_version;
	uint64		state_version;
	uint64		tick;
	TimestampTz sim_time;
	bool		sim_time_valid;
	TimestampTz updated_at;
} SmxRedisSnap;

static void
smx_redis_snapshot(SmxRedisSnap *snap)
{
	for (;;)
	{
		smx_redis_reserve(smx_shared->nservers);
		LWLockAcquire(smx_shared->lock, LW_SHARED);
		if (smx_shared->nservers <= smx_rcap)
			break;
		LWLockRelease(smx_shared->lock);
	}
	snap->n = smx_shared->nservers;
	snap->fleet_version = smx_shared->fleet_version;
	snap->state_version = smx_shared->state_version;
	snap->tick = smx_shared->tick;
	snap->updated_at = smx_shared->last_tick_at;
	snap->sim_time_valid = smx_epoch_to_timestamptz(smx_sim_epoch_at(snap->tick),
													&snap->sim_time);
	if (snap->fleet_version != smx_mirror_fleet)
		memcpy(smx_rdesc, smx_shared_desc(), snap->n * sizeof(SmxServerDesc));
	memcpy(smx_rstate, smx_shared_state(), snap->n * sizeof(smx_state));
	LWLockRelease(smx_shared->lock);
}

/* A pipeline being built: argv vectors kept until the replies are read. */
typedef struct SmxPipe
{
	int			commands;
} SmxPipe;

static void
smx_pipe_add(SmxPipe *p, int argc, const char **argv)
{
	redisAppendCommandArgv(smx_rc, argc, argv, NULL);
	p->commands++;
}

static char *
smx_fmt(const char *fmt,...) pg_attribute_printf(1, 2);

static char *
smx_fmt(const char *fmt,...)
{
	StringInfoData s;

	initStringInfo(&s);
	for (;;)
	{
		va_list		args;
		int			needed;

		va_start(args, fmt);
		needed = appendStringInfoVA(&s, fmt, args);
		va_end(args);
		if (needed == 0)
			break;
		enlargeStringInfo(&s, needed);
	}
	return s.data;
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
smx_round_text(SmxRoundText *rt, const SmxRedisSnap *snap)
{
	/* the TTL is wall-clock time: so many ticks of tick_interval */
	int64		window = (int64) (smx_redis_ttl_s * 1000.0 / Max(smx_tick_interval_ms, 1)) + 1;

	snprintf(rt->ttl, sizeof(rt->ttl), "%d", smx_redis_ttl_s);
	snprintf(rt->tick, sizeof(rt->tick), UINT64_FORMAT, snap->tick);
	snprintf(rt->trim, sizeof(rt->trim), "(" INT64_FORMAT, (int64) snap->tick - window);
	rt->sim_time = smx_ts_text(snap->sim_time, snap->sim_time_valid);
	rt->updated_at = smx_ts_text(snap->updated_at, snap->updated_at != 0);
}

/*
 * Append the commands that write server i: HSET and ZADD, and with
 * expire_too the EXPIREs and the trim of old samples. hiredis copies the
 * arguments into its output buffer at once, so they live on the stack.
 */
static void
smx_redis_write_server(SmxPipe *p, int i, const SmxRoundText *rt, bool expire_too)
{
	smx_state  *s = &smx_rstate[i];
	const char *id = smx_rdesc[i].id;
	const char *status = smx_status_names[s->status & 3];
	char		key[SMX_ID_LEN + 128],
				skey[SMX_ID_LEN + 128],
				cpu[16],
				mem[16],
				disk[16],
				net[16],
				netio[24],
				resp[24],
				member[256];
	const char *hset[24] = {"HSET", key, "cpu_usage", cpu, "memory_usage", mem,
		"disk_usage", disk, "network_io", netio, "network_usage", net,
		"response_time_ms", resp, "status", status, "scenario", "",
		"tick", rt->tick, "sim_time", rt->sim_time, "updated_at", rt->updated_at};
	const char *expire[3] = {"EXPIRE", key, rt->ttl};
	const char *zadd[4] = {"ZADD", skey, rt->tick, member};
	const char *trim[4] = {"ZREMRANGEBYSCORE", skey, "-inf", rt->trim};
	const char *sexpire[3] = {"EXPIRE", skey, rt->ttl};

	snprintf(key, sizeof(key), "%sserver:%s", smx_redis_key_prefix, id);
	snprintf(skey, sizeof(skey), "%ssamples:%s", smx_redis_key_prefix, id);
	snprintf(cpu, sizeof(cpu), "%.2f", s->cpu);
	snprintf(mem, sizeof(mem), "%.2f", s->memory);
	snprintf(disk, sizeof(disk), "%.2f", s->disk);
	snprintf(net, sizeof(net), "%.2f", s->network);
	snprintf(netio, sizeof(netio), INT64_FORMAT, (int64) s->network_io);
	snprintf(resp, sizeof(resp), "%.2f", s->response_ms);
	snprintf(member, sizeof(member), "%s|%s|%s|%s|%s|%s|%s", rt->tick, rt->sim_time,
			 cpu, mem, disk, netio, status);
	smx_pipe_add(p, 24, hset);
	smx_pipe_add(p, 4, zadd);
	/* HSET and ZADD keep a key's TTL: set it (and trim) only when new or due */
	if (expire_too)
	{
		smx_pipe_add(p, 3, expire);
		smx_pipe_add(p, 4, trim);
		smx_pipe_add(p, 3, sexpire);
	}
}

/* Append the rebuild of the live set: exactly the current ids. */
static void
smx_redis_write_live_set(SmxPipe *p, int n)
{
	char	   *key = smx_fmt("%sservers", smx_redis_key_prefix);
	const char *multi[1] = {"MULTI"};
	const char *exec[1] = {"EXEC"};
	const char *del[2] = {"DEL", key};

	/* atomic: readers never see the set empty or half built */
	smx_pipe_add(p, 1, multi);
	smx_pipe_add(p, 2, del);
	for (int from = 0; from < n; from += 1000)
	{
		int			k = Min(1000, n - from);
		const char **argv = palloc(sizeof(char *) * (k + 2));

		argv[0] = "SADD";
		argv[1] = key;
		for (int j = 0; j < k; j++)
			argv[j + 2] = smx_rdesc[from + j].id;
		smx_pipe_add(p, k + 2, argv);
	}
	smx_pipe_add(p, 1, exec);
}

/* Append a status-change event of server i. */
static void
smx_redis_event(SmxPipe *p, int i, uint8 from, const SmxRedisSnap *snap)
{
	const char *argv[3] = {"PUBLISH", smx_fmt("%sevents", smx_redis_key_prefix),
		smx_fmt("{\"server_id\": \"%s\", \"from\": \"%s\", \"to\": \"%s\", \"tick\": " UINT64_FORMAT ", \"sim_time\": \"%s\"}",
				smx_rdesc[i].id, smx_status_names[from & 3],
				smx_status_names[smx_rstate[i].status & 3], snap->tick,
				smx_ts_text(snap->sim_time, snap->sim_time_valid))};

	smx_pipe_add(p, 3, argv);
}

/* Whether server i is to be written now; updates nothing. */
static bool
smx_moved(float a, float b, float th)
{
	float		d = fabsf(a - b);

	return d > 0 && d >= th;
}

/* Whether server i's keys need their TTL set again (new, or half gone). */
static bool
smx_redis_refresh_due(int i, TimestampTz now, bool full)
{
	SmxMirror  *m = &smx_mirror[i];

	return full || m->expires_set_at == 0 || now < m->expires_set_at ||
		now >= TimestampTzPlusMilliseconds(m->expires_set_at, (int64) smx_redis_ttl_s * 500);
}

static bool
smx_redis_due(int i, TimestampTz now, bool full, bool new_state)
{
	SmxMirror  *m = &smx_mirror[i];
	smx_state  *s = &smx_rstate[i];
	float		th = (float) smx_change_threshold;

	/* never written, or the wall clock went back: write */
	if (full || m->written_at == 0 || now < m->written_at)
		return true;
	/* refresh before the TTL runs out, change or not */
	if (smx_redis_refresh_due(i, now, false))
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

/* Read the replies of p; false (connection dropped) on an I/O error. */
static bool
smx_pipe_finish(SmxPipe *p, int64 *error_replies, char *err, size_t errlen)
{
	*error_replies = 0;
	for (int c = 0; c < p->commands; c++)
	{
		void	   *reply = NULL;

		if (redisGetReply(smx_rc, &reply) != REDIS_OK)
		{
			snprintf(err, errlen, "lost the connection: %s",
					 smx_rc->errstr[0] ? smx_rc->errstr : "no reply");
			if (reply)
				freeReplyObject(reply);
			return false;
		}
		if (((redisReply *) reply)->type == REDIS_REPLY_ERROR)
		{
			if (*error_replies == 0)
				snprintf(err, errlen, "%s", ((redisReply *) reply)->str);
			(*error_replies)++;
		}
		freeReplyObject(reply);
	}
	return true;
}

/*
 * One round of the mirror, for the writer: connect when due, then write
 * the servers that are due, in one pipeline. Never raises: failures are
 * recorded in sim_status() and retried with backoff.
 */
void
smx_redis_round(void)
{
	TimestampTz now = GetCurrentTimestamp();
	SmxRedisSnap snap;
	SmxPipe		pipe = {0};
	bool		full;
	bool		new_state;
	uint8	   *seen;
	SmxRoundText rt;
	int64		writes = 0,
				skipped = 0,
				error_replies;
	char		err[SMX_ERROR_LEN] = "";
	MemoryContext old;

	if (smx_redis_host == NULL || smx_redis_host[0] == '\0')
	{
		if (smx_rc)
			smx_redis_disconnect();
		smx_failures = 0;
		smx_redis_status("off", NULL);
		return;
	}
	if (now < smx_retry_at || (smx_rc == NULL && !smx_redis_connect()))
		return;
	if (!OidIsValid(smx_shared->loaded_extension))
		return;

	smx_redis_snapshot(&snap);
	full = smx_resync || snap.fleet_version != smx_mirror_fleet;
	new_state = snap.state_version != smx_mirror_state;
	old = MemoryContextSwitchTo(smx_loop_cxt);
	if (snap.fleet_version != smx_mirror_fleet)
	{
		/* another server list: nothing of the old mirror applies */
		memset(smx_mirror, 0, sizeof(SmxMirror) * snap.n);
		for (int i = 0; i < snap.n; i++)
			smx_mirror[i].seen_status = smx_rstate[i].status;
	}
	if (full)
		smx_redis_write_live_set(&pipe, snap.n);
	seen = palloc(sizeof(uint8) * Max(snap.n, 1));
	smx_round_text(&rt, &snap);
	for (int i = 0; i < snap.n; i++)
	{
		seen[i] = smx_mirror[i].seen_status;
		if (smx_redis_due(i, now, full, new_state))
		{
			smx_redis_write_server(&pipe, i, &rt, smx_redis_refresh_due(i, now, full));
			writes++;
		}
		else
			skipped++;
		/* the event after the server's writes: a reader sees the new hash */
		if (smx_rstate[i].status != seen[i])
		{
			smx_redis_event(&pipe, i, seen[i], &snap);
			seen[i] = smx_rstate[i].status;
		}
	}
	/* nothing due: a PING, so a dead or stalled Redis is noticed anyway */
	if (pipe.commands == 0)
	{
		const char *ping[1] = {"PING"};

		smx_pipe_add(&pipe, 1, ping);
	}
	if (!smx_pipe_finish(&pipe, &error_replies, err, sizeof(err)))
	{
		MemoryContextSwitchTo(old);
		smx_redis_fail(err);
		return;
	}
	MemoryContextSwitchTo(old);

	/* sent: remember what the servers now hold in Redis */
	for (int i = 0; i < snap.n; i++)
	{
		smx_mirror[i].seen_status = seen[i];
		if (smx_redis_due(i, now, full, new_state))
		{
			if (smx_redis_refresh_due(i, now, full))
				smx_mirror[i].expires_set_at = now;
			smx_mirror[i].cpu = smx_rstate[i].cpu;
			smx_mirror[i].memory = smx_rstate[i].memory;
			smx_mirror[i].disk = smx_rstate[i].disk;
			smx_mirror[i].network = smx_rstate[i].network;
			smx_mirror[i].status = smx_rstate[i].status;
			smx_mirror[i].written_at = now;
		}
	}
	smx_mirror_fleet = snap.fleet_version;
	smx_mirror_state = snap.state_version;
	LWLockAcquire(smx_shared->lock, LW_EXCLUSIVE);
	smx_shared->redis_writes += writes;
	smx_shared->redis_skipped += skipped;
	LWLockRelease(smx_shared->lock);
	if (error_replies > 0)
	{
		/* refused commands (e.g. OOM under maxmemory): all again, after a pause */
		smx_resync = true;
		smx_failures++;
		smx_retry_at = smx_redis_backoff_until(now);
		smx_redis_status("connected, commands failing", err);
		return;
	}
	smx_resync = false;
	smx_failures = 0;
	smx_retry_at = 0;
	smx_redis_status("connected", NULL);
}

/* The writer is leaving: close the connection. */
void
smx_redis_shutdown(void)
{
	smx_redis_disconnect();
}

/* Settings were reloaded: connect again with them, at once. */
void
smx_redis_reconfigure(void)
{
	smx_redis_disconnect();
	smx_failures = 0;
	smx_retry_at = 0;
}

/*
 * For a backend's point read (sim_server_metrics): the fields of
 * {prefix}server:{id}, through a connection of its own that lives for this
 * call only and waits at most redis_timeout for each step. Returns the
 * reply (caller frees with smx_redis_point_free) or NULL when Redis is off,
 * unreachable, or has no such key.
 */
void *
smx_redis_point_fetch(const char *id)
{
	redisContext *c;
	redisReply *r;
	char		err[SMX_ERROR_LEN];
	char	   *key;
	const char *argv[2] = {"HGETALL", NULL};

	if (smx_redis_host == NULL || smx_redis_host[0] == '\0')
		return NULL;
	c = smx_redis_open(err, sizeof(err));
	if (c == NULL)
		return NULL;
	key = smx_fmt("%sserver:%s", smx_redis_key_prefix, id);
	argv[1] = key;
	r = redisCommandArgv(c, 2, argv, NULL);
	redisFree(c);
	if (r != NULL && (r->type != REDIS_REPLY_ARRAY || r->elements == 0))
	{
		freeReplyObject(r);
		r = NULL;
	}
	return r;
}

/* The value of field `name` in a fetched hash, or NULL. */
const char *
smx_redis_point_field(void *reply, const char *name)
{
	redisReply *r = (redisReply *) reply;

	for (size_t i = 0; i + 1 < r->elements; i += 2)
		if (r->element[i]->type == REDIS_REPLY_STRING &&
			strcmp(r->element[i]->str, name) == 0 &&
			r->element[i + 1]->type == REDIS_REPLY_STRING)
			return r->element[i + 1]->str;
	return NULL;
}

void
smx_redis_point_free(void *reply)
{
	if (reply)
		freeReplyObject((redisReply *) reply);
}

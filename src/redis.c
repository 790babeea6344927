/*
 * redis.c — talking to Redis through hiredis; nothing else includes it.
 *
 *  - smx_redis_open: a connection from the settings (connect, AUTH,
 *    SELECT), every step bounded by redis_timeout.
 *  - SmxPipe: a pipeline. Commands are formatted here as RESP straight
 *    into a buffer (no per-argument formatting in hiredis) and handed to
 *    the socket in pieces of SMX_PIPE_SEND bytes as they fill, so a round
 *    of 100,000 servers never builds one huge output buffer (hiredis moves
 *    the unsent rest of its buffer after every partial write). Replies are
 *    read once everything is sent: one round trip a pipeline. Every reply
 *    is freed on every path.
 *  - the point read of sim_server_metrics().
 */
#include "postgres.h"

#include <sys/time.h>
#include <hiredis/hiredis.h>

#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "storage/fd.h"

#include "sim_metrics.h"

#define SMX_PIPE_SEND	(1024 * 1024)	/* bytes buffered before a send */

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
 * The mirror, the writer's recovery and a backend's point read all open
 * theirs here.
 */
void *
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


void
smx_redis_close(void *conn)
{
	if (conn)
		redisFree((redisContext *) conn);
}

/* Start a pipeline on conn. */
void
smx_pipe_begin(SmxPipe *p, void *conn)
{
	memset(p, 0, sizeof(*p));
	p->conn = conn;
	initStringInfo(&p->buf);
}

/* Decimal digits of v into dst (room for 21); returns the length. */
int
smx_fmt_int64(char *dst, int64 v)
{
	char		tmp[24];
	int			n = 0,
				len = 0;
	uint64		u = v < 0 ? -(uint64) v : (uint64) v;

	do
	{
		tmp[n++] = '0' + (char) (u % 10);
		u /= 10;
	} while (u > 0);
	if (v < 0)
		dst[len++] = '-';
	while (n > 0)
		dst[len++] = tmp[--n];
	dst[len] = '\0';
	return len;
}

/* v with two decimals ("12.30"), as the readers round it; returns the length. */
int
smx_fmt_pct(char *dst, double v)
{
	int64		h = (int64) rint(v * 100.0);
	int64		a = h < 0 ? -h : h;
	int			len = 0;

	if (h < 0)
		dst[len++] = '-';
	len += smx_fmt_int64(dst + len, a / 100);
	dst[len++] = '.';
	dst[len++] = '0' + (char) ((a % 100) / 10);
	dst[len++] = '0' + (char) (a % 10);
	dst[len] = '\0';
	return len;
}

/* A score of units 1e-4 (0..10000) with four decimals ("0.9412"); the length. */
int
smx_fmt_score(char *dst, int units)
{
	int			len = smx_fmt_int64(dst, units / 10000);

	dst[len++] = '.';
	for (int d = 1000; d > 0; d /= 10)
		dst[len++] = '0' + (char) ((units / d) % 10);
	dst[len] = '\0';
	return len;
}

/* The header of a command of argc arguments. */
void
smx_pipe_command(SmxPipe *p, int argc)
{
	char		num[24];
	int			n = smx_fmt_int64(num, argc);

	appendStringInfoChar(&p->buf, '*');
	appendBinaryStringInfo(&p->buf, num, n);
	appendBinaryStringInfo(&p->buf, "\r\n", 2);
}

/* One RESP argument into buf. */
void
smx_resp_arg(StringInfo buf, const char *s, int len)
{
	char		num[24];
	int			n = smx_fmt_int64(num, len);

	enlargeStringInfo(buf, len + n + 5);
	buf->data[buf->len++] = '$';
	memcpy(buf->data + buf->len, num, n);
	buf->len += n;
	buf->data[buf->len++] = '\r';
	buf->data[buf->len++] = '\n';
	memcpy(buf->data + buf->len, s, len);
	buf->len += len;
	buf->data[buf->len++] = '\r';
	buf->data[buf->len++] = '\n';
	buf->data[buf->len] = '\0';
}

/* One argument of the current command. */
void
smx_pipe_arg(SmxPipe *p, const char *s, int len)
{
	smx_resp_arg(&p->buf, s, len);
}

/* Arguments already formatted by smx_resp_arg. */
void
smx_pipe_raw(SmxPipe *p, const char *data, int len)
{
	appendBinaryStringInfo(&p->buf, data, len);
}

/* A whole command from argv (NUL-terminated strings). */
void
smx_pipe_argv(SmxPipe *p, int argc, const char **argv)
{
	smx_pipe_command(p, argc);
	for (int i = 0; i < argc; i++)
		smx_pipe_arg(p, argv[i], strlen(argv[i]));
	smx_pipe_end(p);
}

/* Hand the buffered commands to the socket, blocking at most redis_timeout. */
static void
smx_pipe_send(SmxPipe *p)
{
	redisContext *c = (redisContext *) p->conn;
	int			done = 0;

	if (p->buf.len == 0 || p->broken)
		return;
	if (redisAppendFormattedCommand(c, p->buf.data, p->buf.len) != REDIS_OK)
		done = -1;
	while (done == 0)
	{
		if (redisBufferWrite(c, &done) != REDIS_OK)
			done = -1;
	}
	if (done < 0)
	{
		p->broken = true;
		snprintf(p->err, sizeof(p->err), "lost the connection: %s",
				 c->errstr[0] ? c->errstr : "write failed");
	}
	resetStringInfo(&p->buf);
}

/* The current command is complete. */
void
smx_pipe_end(SmxPipe *p)
{
	p->commands++;
	if (p->buf.len >= SMX_PIPE_SEND)
		smx_pipe_send(p);
}

/* Hand one reply to on_reply; it is freed even when on_reply raises. */
static void
smx_pipe_deliver(SmxReplyFn on_reply, void *arg, int64 index, void *reply)
{
	PG_TRY();
	{
		on_reply(arg, index, reply);
	}
	PG_CATCH();
	{
		freeReplyObject(reply);
		PG_RE_THROW();
	}
	PG_END_TRY();
	freeReplyObject(reply);
}

/*
 * Send what is left and read every reply, in order; on_reply (may be NULL)
 * sees each one. Error replies are counted in p->error_replies, the first
 * one's text kept in p->err. Returns false when the connection failed
 * (p->err says how): the caller drops it.
 */
bool
smx_pipe_finish(SmxPipe *p, SmxReplyFn on_reply, void *arg)
{
	redisContext *c = (redisContext *) p->conn;

	smx_pipe_send(p);
	pfree(p->buf.data);
	p->buf.data = NULL;
	if (p->broken)
		return false;
	for (int64 i = 0; i < p->commands; i++)
	{
		void	   *reply = NULL;

		if (redisGetReply(c, &reply) != REDIS_OK)
		{
			if (reply)
				freeReplyObject(reply);
			p->broken = true;
			snprintf(p->err, sizeof(p->err), "lost the connection: %s",
					 c->errstr[0] ? c->errstr : "no reply");
			return false;
		}
		if (((redisReply *) reply)->type == REDIS_REPLY_ERROR)
		{
			if (p->error_replies++ == 0)
				snprintf(p->err, sizeof(p->err), "%s", ((redisReply *) reply)->str);
		}
		if (on_reply)
			smx_pipe_deliver(on_reply, arg, i, reply);
		else
			freeReplyObject(reply);
	}
	return true;
}

/* Elements of an array reply, or -1 when it is not one. */
int64
smx_reply_elements(const void *reply)
{
	const redisReply *r = (const redisReply *) reply;

	if (r->type != REDIS_REPLY_ARRAY)
		return -1;
	return r->elements > (size_t) PG_INT64_MAX ? PG_INT64_MAX : (int64) r->elements;
}

/*
 * Element i of an array reply when it is a string of at most
 * SMX_REPLY_STRING_MAX bytes, else NULL: the caller sees nothing longer
 * than that, whatever Redis holds.
 */
const char *
smx_reply_element(const void *reply, int64 i, size_t *len)
{
	const redisReply *r = (const redisReply *) reply;
	const redisReply *e;

	if (r->type != REDIS_REPLY_ARRAY || i < 0 || (uint64) i >= (uint64) r->elements)
		return NULL;
	e = r->element[i];
	if (e == NULL || e->type != REDIS_REPLY_STRING || e->len > SMX_REPLY_STRING_MAX)
		return NULL;
	*len = e->len;
	return e->str;
}

/*
 * The most of a point reply taken in: the hash the mirror writes (the
 * columns of sim_current_metrics()) is well under 1 kB; a reply that
 * grows past these limits is not read on.
 */
#define SMX_POINT_REPLY_BYTES		16384
#define SMX_POINT_REPLY_ELEMENTS	64

#if HIREDIS_MAJOR >= 1
typedef size_t smx_array_len;
#else
typedef int smx_array_len;
#endif

/* hiredis's own reply builders, wrapped for the point read */
static redisReplyObjectFunctions *smx_point_builders;

/*
 * Arrays in a point reply: the top one only, of at most
 * SMX_POINT_REPLY_ELEMENTS (hiredis allocates as many elements as the
 * header announces before any arrives). NULL makes the reader fail.
 */
static void *
smx_point_create_array(const redisReadTask *task, smx_array_len elements)
{
	if (task->parent != NULL || elements > SMX_POINT_REPLY_ELEMENTS)
		return NULL;
	return smx_point_builders->createArray(task, elements);
}

/*
 * Send one command and read its reply, taking in at most
 * SMX_POINT_REPLY_BYTES from the socket; NULL on any failure or a reply
 * over the limits. Each read waits at most redis_timeout.
 */
static redisReply *
smx_redis_bounded_command(redisContext *c, int argc, const char **argv)
{
	redisReplyObjectFunctions bounded;
	void	   *reply = NULL;
	size_t		taken = 0;
	int			done = 0;
	bool		ok = true;

	if (c->reader->fn == NULL || c->reader->fn->createArray == NULL ||
		redisAppendCommandArgv(c, argc, argv, NULL) != REDIS_OK)
		return NULL;
	while (!done)
		if (redisBufferWrite(c, &done) != REDIS_OK)
			return NULL;
	smx_point_builders = c->reader->fn;
	bounded = *c->reader->fn;
	bounded.createArray = smx_point_create_array;
	c->reader->fn = &bounded;
	while (ok)
	{
		size_t		before;

		if (redisGetReplyFromReader(c, &reply) != REDIS_OK || reply != NULL)
			break;
		/* what a read appends to the reader's buffer is what came in */
		before = c->reader->len;
		ok = redisBufferRead(c) == REDIS_OK;
		taken += c->reader->len - before;
		ok = ok && taken <= SMX_POINT_REPLY_BYTES;
	}
	c->reader->fn = smx_point_builders;
	return (redisReply *) reply;
}

/*
 * For a backend's point read (sim_server_metrics): the fields of
 * {prefix}server:{id}, through a connection of its own that lives for this
 * call only and waits at most redis_timeout for each step, taking in a
 * reply of bounded size. Returns the reply (caller frees with
 * smx_redis_point_free) or NULL when Redis is off, unreachable, has no
 * such key, or answers with more than a hash of ours can be.
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
	c = (redisContext *) smx_redis_open(err, sizeof(err));
	if (c == NULL)
		return NULL;
	key = psprintf("%sserver:%s", smx_redis_key_prefix, id);
	argv[1] = key;
	r = smx_redis_bounded_command(c, 2, argv);
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

	/* a value longer than SMX_REPLY_STRING_MAX, or with a NUL inside, is not ours */
	for (size_t i = 0; i + 1 < r->elements; i += 2)
		if (r->element[i]->type == REDIS_REPLY_STRING &&
			strcmp(r->element[i]->str, name) == 0 &&
			r->element[i + 1]->type == REDIS_REPLY_STRING &&
			r->element[i + 1]->len <= SMX_REPLY_STRING_MAX &&
			strlen(r->element[i + 1]->str) == r->element[i + 1]->len)
			return r->element[i + 1]->str;
	return NULL;
}

void
smx_redis_point_free(void *reply)
{
	if (reply)
		freeReplyObject((redisReply *) reply);
}

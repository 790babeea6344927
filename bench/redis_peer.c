/*
 * bench/redis_peer.c — the fair peer of the mirror in bench/redis.sh.
 *
 * The mirror's figure means little beside a client that sends less than
 * it does, so this one sends, for every server and every tick, what the
 * mirror sends when every server is due (src/mirror.c, smx_mirror_round):
 *
 *   - the tick's journal: HSET {prefix}journal:{tick} id sample ... in
 *     commands of 1000 fields, an EXPIRE of the key after the first one,
 *     and the UNLINK of the previous run's journal ticks (the mirror drops
 *     a tick once the table has it; bench/redis.sh flushes between runs);
 *   - each server's hash: HSET {prefix}server:{id} with the 13 fields of
 *     sim_current_metrics(), then ZADD {prefix}samples:{id} tick sample;
 *   - once the tick's replies are all in, the mark: HSET {prefix}mirror
 *     with its five fields, a round trip of its own as the mirror's is.
 *
 * Samples are in the codec's text (src/sample_rows.c, smx_sample_encode):
 * "tick|sim_time|cpu|memory|disk|network_io|status|session|score", numbers
 * formatted as the mirror formats them, so keys, field counts and value
 * sizes match. The values change every tick (a hash field rewritten with
 * the same bytes would flatter the peer). It uses plain hiredis over one
 * connection: redisAppendCommandArgv, then redisGetReply for each batch.
 *
 *   redis_peer run  ADDR SERVERS TICKS FIRST_TICK [BATCH [PREFIX]]
 *       prints "servers/s seconds cpu_seconds" (its own CPU: the client's
 *       cost, set beside the mirror's by bench/redis.sh); ADDR is a unix socket path or host:port;
 *       BATCH: commands in flight before their replies are read [2000];
 *       0 sends each tick whole in pieces of about 1 MB and reads its
 *       replies at the end, as the mirror does; PREFIX ["sip:", as long
 *       as the mirror's "sim:" so keys are as long, but apart]
 *       REDIS_PEER_PARTS (environment) ["jhz"]: what is sent, j the journal,
 *       h the hashes, z the ZADDs: bench/redis.sh prices each part with it
 *   redis_peer wait ADDR KEY TICK
 *       polls HGET KEY tick every millisecond until it is >= TICK (at
 *       most 300 s); prints the wall-clock time seen, in epoch seconds:
 *       bench/redis.sh times the mirror's rounds with it
 *
 * Built by bench/redis.sh with the extension's flags (pg_config --cflags,
 * -Wall -Wextra -Werror) and -lhiredis; no PostgreSQL headers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/resource.h>

#include <hiredis/hiredis.h>

#define JOURNAL_FIELDS	1000	/* fields per journal HSET, as the mirror */
#define SEND_PIECE		(1024 * 1024)	/* BATCH 0: bytes before a send */
#define ID_LEN			16
#define TEXT_LEN		160

static redisContext *conn;
static long pending;			/* commands appended, replies not read */
static long piece;				/* BATCH 0: bytes appended, not sent */

static void
die(const char *what)
{
	fprintf(stderr, "redis_peer: %s: %s\n", what,
			conn && conn->errstr[0] ? conn->errstr : "failed");
	exit(1);
}

static double
now_s(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static redisContext *
connect_to(const char *addr)
{
	const char *colon = strrchr(addr, ':');
	redisContext *c;

	if (addr[0] == '/' || colon == NULL)
		c = redisConnectUnix(addr);
	else
	{
		char		host[256];

		snprintf(host, sizeof(host), "%.*s", (int) (colon - addr), addr);
		c = redisConnect(host, atoi(colon + 1));
	}
	if (c == NULL || c->err)
	{
		conn = c;
		die("connect");
	}
	return c;
}

/* Read n replies; an error reply is fatal, as it is a failed round for the mirror. */
static void
read_replies(long n)
{
	for (long i = 0; i < n; i++)
	{
		redisReply *r;

		if (redisGetReply(conn, (void **) &r) != REDIS_OK)
			die("reply");
		if (r->type == REDIS_REPLY_ERROR)
		{
			fprintf(stderr, "redis_peer: error reply: %s\n", r->str);
			exit(1);
		}
		freeReplyObject(r);
	}
	pending -= n;
}

/*
 * Append one command. BATCH > 0: read the replies once that many are in
 * flight. BATCH 0: hand about 1 MB at a time to the socket, replies left
 * for the end of the tick (hiredis's output buffer would otherwise grow to
 * the whole tick, and it moves the unsent rest after each partial write).
 */
static void
command(int argc, const char **argv, const size_t *lens, long batch)
{
	if (redisAppendCommandArgv(conn, argc, argv, lens) != REDIS_OK)
		die("append");
	pending++;
	if (batch > 0)
	{
		if (pending >= batch)
			read_replies(pending);
		return;
	}
	for (int i = 0; i < argc; i++)
		piece += (long) lens[i] + 16;
	if (piece >= SEND_PIECE)
	{
		int			done = 0;

		while (!done)
			if (redisBufferWrite(conn, &done) != REDIS_OK)
				die("send");
		piece = 0;
	}
}

/* A percentage with two decimals ("12.30"), as smx_fmt_pct. */
static int
fmt_pct(char *dst, int hundredths)
{
	return sprintf(dst, "%d.%02d", hundredths / 100, hundredths % 100);
}

/* timestamptz_to_str's ISO text in UTC: fractional zeros trimmed, "+00". */
static int
fmt_time(char *dst, double epoch)
{
	time_t		sec = (time_t) epoch;
	long		usec = (long) ((epoch - (double) sec) * 1e6);
	struct tm	tm;
	int			n;

	gmtime_r(&sec, &tm);
	n = (int) strftime(dst, 32, "%Y-%m-%d %H:%M:%S", &tm);
	if (usec > 0)
	{
		n += sprintf(dst + n, ".%06ld", usec);
		while (dst[n - 1] == '0')
			n--;
	}
	return n + sprintf(dst + n, "+00");
}

/* The simulation's state of one server at one tick: cheap, changing values. */
typedef struct State
{
	int			cpu,
				memory,
				disk,
				network,
				response;		/* hundredths */
	long long	network_io;
	const char *status;
} State;

static State
state_of(unsigned server, long tick)
{
	unsigned long long x = (server + 1) * 0x9E3779B97F4A7C15ULL ^ (unsigned long long) tick * 0xD1B54A32D192ED03ULL;
	State		s;

	x ^= x >> 31;
	x *= 0xBF58476D1CE4E5B9ULL;
	x ^= x >> 29;
	s.cpu = 1000 + (int) (x % 7000);
	s.memory = 3000 + (int) ((x >> 13) % 6000);
	s.disk = 2000 + (int) ((x >> 26) % 5000);
	s.network = 500 + (int) ((x >> 39) % 3000);
	s.response = 2000 + (int) ((x >> 7) % 15000);
	s.network_io = 50000000 + (long long) ((x >> 20) % 150000000);
	s.status = (x >> 50) % 50 == 0 ? "warning" : "online";
	return s;
}

/* smx_sample_encode's text. */
static int
sample_text(char *dst, const char *tick, const char *sim_time, const State *s,
			const char *session)
{
	int			n = sprintf(dst, "%s|%s|", tick, sim_time);

	n += fmt_pct(dst + n, s->cpu);
	dst[n++] = '|';
	n += fmt_pct(dst + n, s->memory);
	dst[n++] = '|';
	n += fmt_pct(dst + n, s->disk);
	return n + sprintf(dst + n, "|%lld|%s|%s|0.0000", s->network_io, s->status, session);
}

static int
run(const char *addr, long nservers, long nticks, long first_tick, long batch,
	const char *prefix)
{
	static const char session[] = "304d320a7f154-12309";	/* as long as a session id */
	char	   *ids = malloc((size_t) nservers * ID_LEN);
	char	   *jtext = malloc((size_t) JOURNAL_FIELDS * TEXT_LEN);
	const char **jargv = malloc(sizeof(char *) * (2 + 2 * JOURNAL_FIELDS));
	const char *parts = getenv("REDIS_PEER_PARTS") ? getenv("REDIS_PEER_PARTS") : "jhz";
	int			journal = strchr(parts, 'j') != NULL,
				hash = strchr(parts, 'h') != NULL,
				zadd = strchr(parts, 'z') != NULL;
	size_t	   *jlens = malloc(sizeof(size_t) * (2 + 2 * JOURNAL_FIELDS));
	double		start;

	if (!ids || !jtext || !jargv || !jlens)
		die("out of memory");
	for (long i = 0; i < nservers; i++)
		snprintf(ids + i * ID_LEN, ID_LEN, "rb-%06ld", i + 1);
	conn = connect_to(addr);
	start = now_s(CLOCK_MONOTONIC);
	for (long tick = first_tick; tick < first_tick + nticks; tick++)
	{
		char		tick_s[24],
					jkey[64],
					sim_time[40],
					updated_at[40];
		double		wall = now_s(CLOCK_REALTIME);

		snprintf(tick_s, sizeof(tick_s), "%ld", tick);
		snprintf(jkey, sizeof(jkey), "%sjournal:%ld", prefix, tick);
		fmt_time(sim_time, 1796400000.0 + tick * 0.5);
		fmt_time(updated_at, wall);

		/* the journal ticks the table has by now: the previous run's */
		if (tick == first_tick)
			for (long t = first_tick - nticks; t < first_tick; t++)
			{
				char		key[64];
				const char *argv[2] = {"UNLINK", key};
				size_t		lens[2] = {6, 0};

				if (t < 0)
					continue;
				lens[1] = (size_t) snprintf(key, sizeof(key), "%sjournal:%ld", prefix, t);
				command(2, argv, lens, batch);
			}

		/* every server's sample in the journal, 1000 fields a command */
		for (long from = 0; journal && from < nservers; from += JOURNAL_FIELDS)
		{
			int			k = (int) (nservers - from < JOURNAL_FIELDS ? nservers - from : JOURNAL_FIELDS);

			jargv[0] = "HSET";
			jlens[0] = 4;
			jargv[1] = jkey;
			jlens[1] = strlen(jkey);
			for (int j = 0; j < k; j++)
			{
				State		s = state_of((unsigned) (from + j), tick);
				char	   *text = jtext + (size_t) j * TEXT_LEN;

				jargv[2 + 2 * j] = ids + (from + j) * ID_LEN;
				jlens[2 + 2 * j] = strlen(jargv[2 + 2 * j]);
				jargv[3 + 2 * j] = text;
				jlens[3 + 2 * j] = (size_t) sample_text(text, tick_s, sim_time, &s, session);
			}
			command(2 + 2 * k, jargv, jlens, batch);
			if (from == 0)
			{
				const char *argv[3] = {"EXPIRE", jkey, "660"};
				size_t		lens[3] = {6, strlen(jkey), 3};

				command(3, argv, lens, batch);
			}
		}

		/* every server's hash and sample */
		for (long i = 0; (hash || zadd) && i < nservers; i++)
		{
			State		s = state_of((unsigned) i, tick);
			const char *id = ids + i * ID_LEN;
			char		key[64],
						skey[64],
						num[6][24],
						text[TEXT_LEN];
			const char *hargv[28] = {"HSET", key,
				"cpu_usage", num[0], "memory_usage", num[1], "disk_usage", num[2],
				"network_usage", num[3], "network_io", num[4],
				"response_time_ms", num[5], "status", s.status, "scenario", "",
				"anomaly_score", "0.0000", "anomaly_metric", "", "tick", tick_s,
				"sim_time", sim_time, "updated_at", updated_at};
			size_t		hlens[28];
			const char *zargv[4] = {"ZADD", skey, tick_s, text};
			size_t		zlens[4];

			snprintf(key, sizeof(key), "%sserver:%s", prefix, id);
			snprintf(skey, sizeof(skey), "%ssamples:%s", prefix, id);
			fmt_pct(num[0], s.cpu);
			fmt_pct(num[1], s.memory);
			fmt_pct(num[2], s.disk);
			fmt_pct(num[3], s.network);
			sprintf(num[4], "%lld", s.network_io);
			fmt_pct(num[5], s.response);
			for (int a = 0; a < 28; a++)
				hlens[a] = strlen(hargv[a]);
			if (hash)
				command(28, hargv, hlens, batch);
			zlens[3] = (size_t) sample_text(text, tick_s, sim_time, &s, session);
			for (int a = 0; a < 3; a++)
				zlens[a] = strlen(zargv[a]);
			if (zadd)
				command(4, zargv, zlens, batch);
		}
		read_replies(pending);
		piece = 0;

		/* the mark, once Redis took the tick */
		{
			char		key[64];
			const char *argv[12] = {"HSET", key, "tick", tick_s, "session", session,
			"system", "7444146282717020325", "extension", "16388", "updated_at", updated_at};
			size_t		lens[12];

			snprintf(key, sizeof(key), "%smirror", prefix);
			for (int a = 0; a < 12; a++)
				lens[a] = strlen(argv[a]);
			command(12, argv, lens, 1);
		}
	}
	{
		double		secs = now_s(CLOCK_MONOTONIC) - start;
		struct rusage ru;

		getrusage(RUSAGE_SELF, &ru);
		printf("%.0f %.3f %.3f\n", (double) nservers * nticks / secs, secs,
			   ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
			   (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
	}
	redisFree(conn);
	free(ids);
	free(jtext);
	free(jargv);
	free(jlens);
	return 0;
}

static int
wait_mark(const char *addr, const char *key, long tick)
{
	double		give_up = now_s(CLOCK_MONOTONIC) + 300;

	conn = connect_to(addr);
	for (;;)
	{
		redisReply *r = redisCommand(conn, "HGET %s tick", key);
		long		seen;

		if (r == NULL)
			die("HGET");
		seen = r->type == REDIS_REPLY_STRING ? atol(r->str) : -1;
		freeReplyObject(r);
		if (seen >= tick)
		{
			printf("%.6f\n", now_s(CLOCK_REALTIME));
			return 0;
		}
		if (now_s(CLOCK_MONOTONIC) > give_up)
		{
			fprintf(stderr, "redis_peer: %s tick did not reach %ld\n", key, tick);
			return 1;
		}
		usleep(1000);
	}
}

int
main(int argc, char **argv)
{
	if (argc >= 6 && strcmp(argv[1], "run") == 0)
		return run(argv[2], atol(argv[3]), atol(argv[4]), atol(argv[5]),
				   argc > 6 ? atol(argv[6]) : 2000, argc > 7 ? argv[7] : "sip:");
	if (argc == 5 && strcmp(argv[1], "wait") == 0)
		return wait_mark(argv[2], argv[3], atol(argv[4]));
	fprintf(stderr, "usage: redis_peer run ADDR SERVERS TICKS FIRST_TICK [BATCH [PREFIX]]\n"
			"       redis_peer wait ADDR KEY TICK\n");
	return 2;
}

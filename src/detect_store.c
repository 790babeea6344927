/*
 * detect_store.c — the anomaly detectors across a clean restart.
 *
 * The detectors live in shared memory only (smx_shared_detect()), so a
 * restart would start every server's detector over: SMX_DETECT_WARMUP
 * samples scoring 0, then scores that differ from a fleet that never
 * stopped. Like pg_stat_statements keeps its counters, the postmaster
 * writes every server's detector to a file when it shuts down cleanly
 * (smx_detect_store_shutdown), and the first fleet load after the start
 * (startup.c) gives each restored server its saved detector back
 * (smx_detect_store_load) when the detector last scored the very row the
 * server continues from; everything else starts over, as without the file.
 * The load removes the file whether it used it or not, so a later crash
 * (after which nothing is written) cannot bring back a stale detector.
 *
 * The file, in the byte order and float format of the machine (it never
 * leaves the data directory):
 *	uint32	SMX_DSTORE_MAGIC
 *	uint32	SMX_DSTORE_VERSION
 *	uint32	sizeof(smx_server_detector)
 *	int32	count: servers that follow (at most sim_metrics.max_servers)
 *	count times:
 *		uint32	id length (1 .. SMX_ID_LEN - 1), then the id's bytes
 *		int64	the tick of the last sample this detector scored
 *		the smx_server_detector, sizeof(smx_server_detector) bytes
 *	uint32	CRC-32C of every byte before it
 * Nothing read from it is trusted beyond these bounds: a file that breaks
 * any of them is logged and ignored, and the detectors start over.
 */
#include "postgres.h"

#include <sys/stat.h>
#include <unistd.h>

#include "miscadmin.h"
#include "pgstat.h"
#include "port/pg_crc32c.h"
#include "storage/fd.h"
#include "storage/ipc.h"

#include "sim_metrics.h"

/* In the data directory, beside what the cumulative statistics keep. */
#define SMX_DSTORE_FILE		PGSTAT_STAT_PERMANENT_DIRECTORY "/sim_metrics_detect.stat"
#define SMX_DSTORE_TMP		SMX_DSTORE_FILE ".tmp"

static const uint32 SMX_DSTORE_MAGIC = 0x534d5844;	/* "SMXD" */
static const uint32 SMX_DSTORE_VERSION = 1;

#define SMX_DSTORE_HEADER	(3 * sizeof(uint32) + sizeof(int32))
/* a server's record at most: id length, id, tick, detector */
#define SMX_DSTORE_RECORD_MAX \
	(sizeof(uint32) + (SMX_ID_LEN - 1) + sizeof(int64) + sizeof(smx_server_detector))

/* One server's record, as found in the file (pointers into its bytes). */
typedef struct SmxSavedDetector
{
	const char *id;
	uint32		id_len;
	int64		tick;
	const char *detector;		/* sizeof(smx_server_detector) bytes, unaligned */
} SmxSavedDetector;

/* The file being written: stdio, the running CRC, whether all went out. */
typedef struct SmxStoreOut
{
	FILE	   *f;
	pg_crc32c	crc;
	bool		ok;
} SmxStoreOut;

static void
smx_store_put(SmxStoreOut *o, const void *data, size_t len)
{
	if (!o->ok)
		return;
	COMP_CRC32C(o->crc, data, len);
	if (fwrite(data, 1, len, o->f) != len)
		o->ok = false;
}

/*
 * on_shmem_exit callback of the postmaster: write every server's detector
 * (see the file comment). Only at a clean shutdown (code 0): after a crash
 * the shared state may be half-written, and nothing is kept. Only after
 * the fleet's first load since the start (fleet.history_restored): before
 * it the detectors are empty, and a file saved by the previous shutdown,
 * still waiting for that load, is left as it is. Not when a process was
 * killed while it wrote them (fleet.detect_busy, an immediate shutdown):
 * they may be ahead of fleet.tick. Every other process has exited, so the
 * shared state is read without a lock. Failures are logged:
 * the next start then finds no file and starts the detectors over.
 */
static void
smx_detect_store_shutdown(int code, Datum arg)
{
	SmxStoreOut o;
	SmxServerDesc *desc;
	smx_server_detector *detect;
	int32		count;
	int64		tick;
	uint32		word;

	if (code != 0 || smx_shared == NULL || !smx_shared->fleet.history_restored)
		return;
	if (smx_shared->fleet.detect_busy)
	{
		/* a process was killed while it stepped them (immediate shutdown) */
		ereport(LOG,
				(errmsg("sim_metrics: not saving the anomaly detectors: they were being written when the server stopped"),
				 errdetail("The anomaly detectors start over after the restart.")));
		return;
	}

	desc = smx_shared_desc();
	detect = smx_shared_detect();
	count = smx_shared->fleet.nservers;
	/* every server's detector scored the fleet's last tick, or nothing yet */
	tick = (int64) smx_shared->fleet.tick;

	o.f = AllocateFile(SMX_DSTORE_TMP, PG_BINARY_W);
	if (o.f == NULL)
		goto error;
	o.ok = true;
	INIT_CRC32C(o.crc);
	smx_store_put(&o, &SMX_DSTORE_MAGIC, sizeof(uint32));
	smx_store_put(&o, &SMX_DSTORE_VERSION, sizeof(uint32));
	word = (uint32) sizeof(smx_server_detector);
	smx_store_put(&o, &word, sizeof(uint32));
	smx_store_put(&o, &count, sizeof(int32));
	for (int i = 0; i < count; i++)
	{
		word = (uint32) strnlen(desc[i].id, SMX_ID_LEN - 1);
		smx_store_put(&o, &word, sizeof(uint32));
		smx_store_put(&o, desc[i].id, word);
		smx_store_put(&o, &tick, sizeof(int64));
		smx_store_put(&o, &detect[i], sizeof(smx_server_detector));
	}
	FIN_CRC32C(o.crc);
	word = o.crc;
	smx_store_put(&o, &word, sizeof(uint32));
	if (!o.ok)
		goto error;
	if (FreeFile(o.f))
	{
		o.f = NULL;
		goto error;
	}
	/* durable_rename logs its own failure */
	if (durable_rename(SMX_DSTORE_TMP, SMX_DSTORE_FILE, LOG) == 0)
		ereport(DEBUG1,
				(errmsg_internal("sim_metrics: saved the anomaly detectors of %d servers at tick " INT64_FORMAT,
								 count, tick)));
	else
		unlink(SMX_DSTORE_TMP);
	return;

error:
	ereport(LOG,
			(errcode_for_file_access(),
			 errmsg("sim_metrics: could not write file \"%s\": %m", SMX_DSTORE_TMP),
			 errdetail("The anomaly detectors start over after the restart.")));
	if (o.f)
		FreeFile(o.f);
	unlink(SMX_DSTORE_TMP);
}

/*
 * Arrange for the postmaster to save the detectors when it exits (the
 * shmem startup hook's, shmem.c). Only in the postmaster: a backend or
 * worker exiting must not write anything. A crash restart runs the exit
 * callbacks (code 1: nothing written) and this again.
 */
void
smx_detect_store_register(void)
{
	if (!IsUnderPostmaster)
		on_shmem_exit(smx_detect_store_shutdown, (Datum) 0);
}

/* The file is not to be used: log why. */
static void
smx_detect_store_refuse(const char *why)
{
	ereport(LOG,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("sim_metrics: ignoring the saved anomaly detectors in \"%s\": %s",
					SMX_DSTORE_FILE, why),
			 errdetail("The anomaly detectors start over.")));
}

static int
smx_saved_cmp(const void *a, const void *b)
{
	const SmxSavedDetector *x = a;
	const SmxSavedDetector *y = b;
	int			c = memcmp(x->id, y->id, Min(x->id_len, y->id_len));

	if (c != 0)
		return c;
	return (x->id_len > y->id_len) - (x->id_len < y->id_len);
}

/*
 * Take the file's records apart into saved[] (its count records), every
 * bound checked. Returns false, after logging why, when the file is not
 * one to use.
 */
static bool
smx_detect_store_parse(const char *buf, size_t len, SmxSavedDetector **saved, int *count)
{
	uint32		header[3];
	int32		n;
	pg_crc32c	crc;
	uint32		stored_crc;
	size_t		pos;
	SmxSavedDetector *s;

	if (len < SMX_DSTORE_HEADER + sizeof(uint32))
	{
		smx_detect_store_refuse("the file is too short");
		return false;
	}
	memcpy(header, buf, sizeof(header));
	memcpy(&n, buf + sizeof(header), sizeof(int32));
	if (header[0] != SMX_DSTORE_MAGIC)
	{
		smx_detect_store_refuse("not a sim_metrics detector file (wrong magic number)");
		return false;
	}
	if (header[1] != SMX_DSTORE_VERSION)
	{
		smx_detect_store_refuse(psprintf("format version %u, this build reads version %u",
										 header[1], SMX_DSTORE_VERSION));
		return false;
	}
	if (header[2] != (uint32) sizeof(smx_server_detector))
	{
		smx_detect_store_refuse(psprintf("detectors of %u bytes, this build's take %zu",
										 header[2], sizeof(smx_server_detector)));
		return false;
	}
	if (n < 0 || n > smx_shared->fleet.capacity)
	{
		smx_detect_store_refuse(psprintf("%d servers, more than sim_metrics.max_servers = %d or fewer than 0",
										 n, smx_shared->fleet.capacity));
		return false;
	}
	memcpy(&stored_crc, buf + len - sizeof(uint32), sizeof(uint32));
	INIT_CRC32C(crc);
	COMP_CRC32C(crc, buf, len - sizeof(uint32));
	FIN_CRC32C(crc);
	if (crc != stored_crc)
	{
		smx_detect_store_refuse("its checksum does not match (the file is truncated or damaged)");
		return false;
	}

	/* within buf minus the checksum; the CRC matched, the bounds still hold */
	len -= sizeof(uint32);
	pos = SMX_DSTORE_HEADER;
	s = palloc(sizeof(SmxSavedDetector) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		uint32		id_len;

		if (len - pos < sizeof(uint32))
			goto short_file;
		memcpy(&id_len, buf + pos, sizeof(uint32));
		pos += sizeof(uint32);
		if (id_len == 0 || id_len >= SMX_ID_LEN || memchr(buf + pos, '\0', Min(id_len, len - pos)))
		{
			smx_detect_store_refuse(psprintf("server %d has an id of %u bytes, or a NUL in it", i, id_len));
			pfree(s);
			return false;
		}
		if (len - pos < id_len + sizeof(int64) + sizeof(smx_server_detector))
			goto short_file;
		s[i].id = buf + pos;
		s[i].id_len = id_len;
		pos += id_len;
		memcpy(&s[i].tick, buf + pos, sizeof(int64));
		pos += sizeof(int64);
		s[i].detector = buf + pos;
		pos += sizeof(smx_server_detector);
	}
	if (pos != len)
	{
		smx_detect_store_refuse(psprintf("%zu bytes after the last of its %d servers", len - pos, n));
		pfree(s);
		return false;
	}
	qsort(s, n, sizeof(SmxSavedDetector), smx_saved_cmp);
	for (int i = 1; i < n; i++)
		if (smx_saved_cmp(&s[i - 1], &s[i]) == 0)
		{
			smx_detect_store_refuse("a server id appears twice");
			pfree(s);
			return false;
		}
	*saved = s;
	*count = n;
	return true;

short_file:
	smx_detect_store_refuse("the file ends inside a server's record");
	pfree(s);
	return false;
}

/*
 * Give restored servers the detectors the last clean shutdown saved, then
 * remove the file (always: used, refused or partly used). Server i of the
 * n in desc takes its saved detector into detect[i] when found[i] (it was
 * restored from history), the file has its id, and the tick saved with the
 * detector is row_tick[i], the tick of the latest history row the server
 * continues from: the detector scored exactly the samples the table holds.
 * Any other server's detect[i] is left as it is (zeroed: it starts over);
 * that is also every server's lot when the writer's exit flush could not
 * write everything (the saved tick is then ahead of the table) or when the
 * file is missing (a first start, a crash before) or not to be trusted
 * (logged). Returns the number of servers given their detector. Never
 * raises an ERROR for the file's sake. Caller must hold no lock; runs in
 * the first load's transaction (startup.c).
 */
int
smx_detect_store_load(const SmxServerDesc *desc, int n, const bool *found,
					  const int64 *row_tick, smx_server_detector *detect)
{
	FILE	   *f;
	struct stat st;
	size_t		max_len;
	char	   *buf = NULL;
	SmxSavedDetector *saved = NULL;
	int			count = 0;
	int			adopted = 0;

	f = AllocateFile(SMX_DSTORE_FILE, PG_BINARY_R);
	if (f == NULL)
	{
		/* no file is the rule: a first start, or a start after a crash */
		if (errno == ENOENT)
			return 0;
		ereport(LOG,
				(errcode_for_file_access(),
				 errmsg("sim_metrics: could not open file \"%s\": %m", SMX_DSTORE_FILE),
				 errdetail("The anomaly detectors start over.")));
		goto done;
	}
	max_len = SMX_DSTORE_HEADER + sizeof(uint32) +
		(size_t) smx_shared->fleet.capacity * SMX_DSTORE_RECORD_MAX;
	if (fstat(fileno(f), &st) != 0)
	{
		ereport(LOG,
				(errcode_for_file_access(),
				 errmsg("sim_metrics: could not stat file \"%s\": %m", SMX_DSTORE_FILE),
				 errdetail("The anomaly detectors start over.")));
		goto done;
	}
	if (st.st_size < 0 || (uint64) st.st_size > (uint64) max_len)
	{
		smx_detect_store_refuse(psprintf("%lld bytes, more than %d servers take",
										 (long long) st.st_size, smx_shared->fleet.capacity));
		goto done;
	}
	buf = palloc_extended(Max(st.st_size, 1), MCXT_ALLOC_HUGE | MCXT_ALLOC_NO_OOM);
	if (buf == NULL)
	{
		ereport(LOG,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("sim_metrics: out of memory reading file \"%s\"", SMX_DSTORE_FILE),
				 errdetail("The anomaly detectors start over.")));
		goto done;
	}
	if (fread(buf, 1, st.st_size, f) != (size_t) st.st_size)
	{
		if (ferror(f))
			ereport(LOG,
					(errcode_for_file_access(),
					 errmsg("sim_metrics: could not read file \"%s\": %m", SMX_DSTORE_FILE),
					 errdetail("The anomaly detectors start over.")));
		else
			smx_detect_store_refuse("the file is shorter than its size said");
		goto done;
	}
	if (!smx_detect_store_parse(buf, st.st_size, &saved, &count))
		goto done;

	for (int i = 0; i < n; i++)
	{
		SmxSavedDetector key;
		SmxSavedDetector *hit;

		if (!found[i] || row_tick[i] < 0)
			continue;
		key.id = desc[i].id;
		key.id_len = (uint32) strnlen(desc[i].id, SMX_ID_LEN - 1);
		hit = bsearch(&key, saved, count, sizeof(SmxSavedDetector), smx_saved_cmp);
		if (hit == NULL || hit->tick != row_tick[i])
			continue;
		memcpy(&detect[i], hit->detector, sizeof(smx_server_detector));
		adopted++;
	}

done:
	if (f)
		FreeFile(f);
	if (saved)
		pfree(saved);
	if (buf)
		pfree(buf);
	/* used or not: a crash later must not bring these detectors back */
	if (unlink(SMX_DSTORE_FILE) != 0 && errno != ENOENT)
		ereport(LOG,
				(errcode_for_file_access(),
				 errmsg("sim_metrics: could not remove file \"%s\": %m", SMX_DSTORE_FILE)));
	return adopted;
}

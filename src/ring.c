/*
 * ring.c — the history ring and the id pool in shared memory.
 *
 * Each tick appends one sample per server past ring_head; the writer (or a
 * sim_flush()) moves [ring_tail, ring_head) to the table and advances
 * ring_tail when that commits. When the ring is full the newest samples
 * are dropped (the pending ones are never overwritten), counted in
 * sim_status().dropped_samples and logged at most once a minute.
 *
 * A sample names its server through the id pool (SmxIdEntry), so it stays
 * resolvable after a reload retired the server. See shmem.c for the
 * locking rules of both.
 *
 * Readers that do not flush (sim_history, the mirror, the writer's
 * notifications) scan the ring without a lock through one iterator
 * (smx_ring_iter_begin / smx_ring_iter_next), SMX_RING_CHUNK samples a copy.
 */
#include "postgres.h"

#include <math.h>

#include "miscadmin.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "sim_metrics.h"

/* The ring's pending range [*tail, *head), read under the shared lock. */
void
smx_ring_bounds(uint64 *tail, uint64 *head)
{
	LWLockAcquire(smx_shared->publish_lock, LW_SHARED);
	*tail = smx_shared->ring.tail;
	*head = smx_shared->ring.head;
	LWLockRelease(smx_shared->publish_lock);
}

/*
 * Copy the k samples at ring positions [from, from + k) into dst without a
 * lock. Returns how many leading ones to skip: slots below the tail seen
 * after the copy may have been rewritten meanwhile (the table has those
 * samples).
 */
static int
smx_ring_copy(uint64 from, int k, SmxSample *dst)
{
	SmxSample  *ring = smx_shared_ring();
	uint64		cap = smx_shared->ring.capacity;
	uint64		tail_now,
				unused;

	for (int i = 0; i < k; i++)
		dst[i] = ring[(from + i) % cap];
	pg_read_barrier();
	smx_ring_bounds(&tail_now, &unused);
	return tail_now > from ? (int) Min(tail_now - from, (uint64) k) : 0;
}

/*
 * The lock-free scan of ring positions [from, end) in chunks of
 * SMX_RING_CHUNK samples: how every reader that does not flush
 * (sim_history, the mirror, the writer's notifications) reads the ring.
 * buf holds SMX_RING_CHUNK samples; NULL: allocated here, in the current
 * memory context, no larger than the range needs.
 */
void
smx_ring_iter_begin(SmxRingIter *it, uint64 from, uint64 end, SmxSample *buf)
{
	it->next = from;
	it->end = Max(end, from);
	it->from = from;
	it->buf = buf != NULL ? buf :
		palloc(sizeof(SmxSample) * Min((uint64) SMX_RING_CHUNK, Max(it->end - from, 1)));
}

/*
 * Copy the next chunk into it->buf (it->from: the position of buf[0]).
 * Returns its samples, 0 when the range is done; *first gets the first
 * one to use: those before it a flush freed while they were copied (the
 * table has them).
 */
int
smx_ring_iter_next(SmxRingIter *it, int *first)
{
	int			k;

	if (it->next >= it->end)
		return 0;
	k = (int) Min((uint64) SMX_RING_CHUNK, it->end - it->next);
	it->from = it->next;
	*first = smx_ring_copy(it->from, k, it->buf);
	it->next += k;
	return k;
}

/* Free slots in the ring (never more than the truth: tail only grows). */
uint64
smx_ring_free(void)
{
	uint64		tail,
				head;

	smx_ring_bounds(&tail, &head);
	return smx_shared->ring.capacity - (head - tail);
}

static inline int16
smx_hundredths(float v)
{
	return (int16) lrintf(v * 100.0f);
}

/*
 * Append one tick's samples at *head (a private copy of ring_head that the
 * caller publishes). Caller must hold step_lock. When the ring has no room
 * for the whole tick, the tick's samples are dropped and counted.
 */
void
smx_ring_append(const smx_state *state, const int32 *id_ref,
				   const int64 *run_ids, int n, uint64 tick, double sim_epoch, uint64 *head, uint64 tail,
				   int64 *dropped)
{
	SmxSample  *ring = smx_shared_ring();
	uint64		cap = smx_shared->ring.capacity;
	uint8		session = smx_shared->fleet.session_slot;
	TimestampTz ts;

	if (n == 0)
		return;
	if (*head - tail + n > cap)
	{
		*dropped += n;
		return;
	}
	if (!smx_epoch_to_timestamptz(sim_epoch, &ts))
		ts = DT_NOEND;			/* beyond the timestamptz range */
	for (int i = 0; i < n; i++)
		smx_sample_fill(&ring[(*head + i) % cap], &state[i], id_ref[i], run_ids,
						(int64) tick, ts, session);
	*head += n;
}

/*
 * One server's sample at a tick: what the ring keeps and a backfill writes
 * (run_ids: the run id of each slot, smx_runs_tick's).
 */
void
smx_sample_fill(SmxSample *s, const smx_state *state, int32 id_ref, const int64 *run_ids,
				int64 tick, TimestampTz ts, uint8 session)
{
	s->tick = tick;
	s->sim_time = ts;
	s->network_io = state->network_io;
	s->scenario_run = state->run != 0 ? run_ids[state->run] : 0;
	s->id_ref = id_ref;
	s->cpu = smx_hundredths(state->cpu);
	s->memory = smx_hundredths(state->memory);
	s->disk = smx_hundredths(state->disk);
	s->anomaly = smx_score_units(state->anomaly);
	s->status = state->status;
	s->session = session;
}

/*
 * Publish the new head and count the samples of this step that found no
 * room. Caller holds publish_lock exclusive (smx_publish: the head goes out
 * with the tick whose samples it covers, the drops with it).
 */
void
smx_ring_publish_locked(uint64 head, int64 dropped)
{
	smx_shared->ring.head = head;
	smx_shared->ring.dropped += dropped;
}

/*
 * Forget the pending samples and the id pool (the extension was dropped).
 * Caller holds step_lock (the id pool's only writer) and publish_lock
 * exclusive.
 */
void
smx_ring_clear_locked(void)
{
	smx_shared->ring.tail = smx_shared->ring.head;
	/* the id pool is a seqlock for lock-free readers */
	pg_atomic_fetch_add_u64(&smx_shared->ring.pool_changes, 1);
	pg_write_barrier();
	memset(smx_shared_id_pool(), 0, smx_shared->ring.id_pool_size * sizeof(SmxIdEntry));
	pg_write_barrier();
	pg_atomic_fetch_add_u64(&smx_shared->ring.pool_changes, 1);
}

/* Ask the flusher to flush again at once (a backend waits, a flush stopped short). */
void
smx_ring_request_flush(void)
{
	pg_atomic_write_u32(&smx_shared->ring.flush_requested, 1);
}

/*
 * Samples were dropped because the ring was full: say so at most once a
 * minute (they are all counted in sim_status().dropped_samples).
 */
void
smx_ring_report_dropped(int64 dropped, bool from_worker)
{
	TimestampTz now = GetCurrentTimestamp();
	bool		report = false;
	int64		total;

	LWLockAcquire(smx_shared->publish_lock, LW_EXCLUSIVE);
	if (now >= TimestampTzPlusMilliseconds(smx_shared->ring.last_drop_log_at, 60000))
	{
		smx_shared->ring.last_drop_log_at = now;
		report = true;
	}
	total = smx_shared->ring.dropped;
	LWLockRelease(smx_shared->publish_lock);
	if (report)
		ereport(from_worker ? LOG : WARNING,
				(errcode(ERRCODE_INSUFFICIENT_RESOURCES),
				 errmsg("sim_metrics: history ring full, dropped the newest %lld samples (%lld since start)",
						(long long) dropped, (long long) total),
				 errdetail("Samples waiting for a flush to server_metrics_history are kept; new ones are dropped until a flush makes room."),
				 errhint("Check sim_status().last_error for why flushes fail, or raise sim_metrics.history_buffer.")));
}

/*
 * Wait until the ring has room for `need` samples or the deadline passes,
 * asking the worker to flush. Used by backends stepping many ticks; the
 * caller must not hold step_lock. Without room by the deadline the samples
 * that do not fit are dropped and counted.
 */
void
smx_wait_ring_room(uint64 need, TimestampTz deadline)
{
	need = Min(need, smx_shared->ring.capacity);
	ConditionVariablePrepareToSleep(&smx_shared->ring.cv);
	while (smx_ring_free() < need && GetCurrentTimestamp() < deadline &&
		   pg_atomic_read_u32(&smx_shared->writer.pid) != 0)
	{
		smx_ring_request_flush();
		smx_wake_writer();
		(void) ConditionVariableTimedSleep(&smx_shared->ring.cv, 1000,
										   SMX_WAIT_EVENT_MAIN);
	}
	ConditionVariableCancelSleep();
}

/*
 * Move ring_tail to upto after a committed flush of rows samples, of which
 * `rejected` went to the dead-letter table instead.
 */
void
smx_ring_advance(uint64 upto, int64 rows, int64 rejected)
{
	LWLockAcquire(smx_shared->publish_lock, LW_EXCLUSIVE);
	if (upto > smx_shared->ring.tail)
		smx_shared->ring.tail = upto;
	smx_shared->ring.flushed += rows;
	smx_shared->ring.rejected += rejected;
	/* the flush interval counts from the tail's move: same critical section */
	smx_writer_flushed_locked(rows);
	LWLockRelease(smx_shared->publish_lock);
	pg_atomic_write_u32(&smx_shared->ring.flush_requested, 0);
	ConditionVariableBroadcast(&smx_shared->ring.cv);
}

/*
 * Give every server of the new list an id pool entry: servers that stay
 * (old_index[i] >= 0: their index in the current fleet) keep theirs, new
 * ones take a free entry, removed ones are retired at the current tick.
 * Caller must hold step_lock. Returns false (nothing changed) when the pool
 * has no free entry: it is then full of retired servers whose samples
 * still wait for a flush.
 */
bool
smx_id_pool_assign(const SmxServerDesc *desc, const int *old_index, int n,
				   int old_n, int32 *id_ref_out)
{
	SmxIdEntry *pool = smx_shared_id_pool();
	int32	   *old_ref = smx_shared_id_ref();
	int			pool_size = smx_shared->ring.id_pool_size;
	int64		oldest_pending;
	int			next_free = 0;
	bool	   *kept = palloc0(sizeof(bool) * Max(old_n, 1));
	uint64		changes;

	/* tick of the oldest sample still in the ring (no lock: see shmem.c) */
	{
		uint64		tail,
					head;

		smx_ring_bounds(&tail, &head);
		oldest_pending = tail < head ?
			smx_shared_ring()[tail % smx_shared->ring.capacity].tick : PG_INT64_MAX;
	}

	/* allocate; an entry is free if unused or retired before oldest_pending */
	for (int i = 0; i < n; i++)
	{
		if (old_index[i] >= 0 && old_ref[old_index[i]] >= 0)
		{
			id_ref_out[i] = old_ref[old_index[i]];
			kept[old_index[i]] = true;
			continue;
		}
		while (next_free < pool_size &&
			   pool[next_free].used &&
			   !(pool[next_free].retired_tick >= 0 &&
				 pool[next_free].retired_tick < oldest_pending))
			next_free++;
		if (next_free >= pool_size)
			return false;
		id_ref_out[i] = next_free++;
	}

	/* commit: retire removed servers, fill new entries (seqlock odd) */
	changes = pg_atomic_fetch_add_u64(&smx_shared->ring.pool_changes, 1);
	Assert(changes % 2 == 0);
	pg_write_barrier();
	for (int k = 0; k < old_n; k++)
		if (!kept[k] && old_ref[k] >= 0)
			pool[old_ref[k]].retired_tick = (int64) smx_shared->fleet.tick;
	for (int i = 0; i < n; i++)
	{
		SmxIdEntry *e = &pool[id_ref_out[i]];

		if (old_index[i] >= 0)
			continue;			/* kept */
		memcpy(e->id, desc[i].id, SMX_ID_LEN);
		e->retired_tick = -1;
		e->used = true;
	}
	pg_write_barrier();
	pg_atomic_write_u64(&smx_shared->ring.pool_changes, changes + 2);
	return true;
}

/*
 * The id pool entries naming server_id (a retired and a live entry may
 * both), at most max_refs; returns how many. Lock-free: the pool is a
 * seqlock (see shmem.c), so a scan that overlapped a reload is repeated;
 * reloads are rare and short, and the wait between tries is interruptible.
 */
int
smx_id_pool_find(const char *server_id, int32 *refs, int max_refs)
{
	SmxIdEntry *pool = smx_shared_id_pool();
	int			size = smx_shared->ring.id_pool_size;
	size_t		len = strlen(server_id);
	int			n = 0;

	if (len >= SMX_ID_LEN)
		return 0;
	for (;;)
	{
		uint64		before = pg_atomic_read_u64(&smx_shared->ring.pool_changes);

		if (before % 2 == 0)
		{
			pg_read_barrier();
			n = 0;
			for (int e = 0; e < size && n < max_refs; e++)
			{
				/* compare the whole slot with the NUL: a torn copy cannot pass */
				if (pool[e].used && memcmp(pool[e].id, server_id, len + 1) == 0)
					refs[n++] = e;
			}
			pg_read_barrier();
			if (pg_atomic_read_u64(&smx_shared->ring.pool_changes) == before)
				return n;
		}
		CHECK_FOR_INTERRUPTS();
		pg_usleep(1000L);
	}
}


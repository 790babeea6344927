/*
 * backfill_workers.c — the backfill's insert workers: more cores for
 * sim_backfill()'s COPY.
 *
 * The backend that runs sim_backfill() (the leader) steps the fleet alone,
 * so the rows do not depend on the number of workers. What costs is the
 * insert (heap, indexes, WAL), and a COPY uses one core. So the leader
 * deals the binary COPY stream out by blocks of ticks: its own share to
 * its own COPY, the others through a shm_mq each to dynamic background
 * workers, each running a COPY of its own into the same table, as the
 * writer role.
 *
 * One outcome for all: a worker keeps its transaction open when its COPY
 * is done and waits for the leader's verdict. The leader gives it at its
 * own commit (XACT_EVENT_PRE_COMMIT: the workers commit, then it does) or
 * abort (the workers abort). A worker that fails records why in the DSM
 * segment; the leader then raises it (or, for rows the table refused,
 * steps again without workers, row-isolated). A leader that dies detaches
 * the segment: the workers see it and abort. Only a crash between the
 * workers' commits and the leader's own can leave their rows without the
 * leader's (the scenario log, the fleet's hand-over); the next start then
 * continues the fleet from those rows, as after any restart.
 */
#include "postgres.h"

#include "access/xact.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/dsm.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/shm_mq.h"
#include "storage/shm_toc.h"
#include "tcop/tcopprot.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "compat.h"
#include "sim_metrics.h"

#define SMX_BFW_QUEUE_BYTES	(2 * 1024 * 1024)
#define SMX_BFW_MAGIC		0x534d5842	/* "SMXB" */

typedef enum SmxBfwState
{
	SMX_BFW_STARTING = 0,
	SMX_BFW_COPYING,
	SMX_BFW_READY,				/* its COPY is done, its transaction open */
	SMX_BFW_COMMITTED,
	SMX_BFW_ABORTED,
	SMX_BFW_FAILED
} SmxBfwState;

typedef struct SmxBfwSlot
{
	pg_atomic_uint32 state;		/* SmxBfwState */
	Latch	   *latch;			/* the worker's, once it runs */
	int64		rows;
	int			sqlerrcode;
	bool		no_partition;
	char		message[SMX_ERROR_LEN];
} SmxBfwSlot;

/* The DSM segment: this, then one queue a worker. */
typedef struct SmxBfwShared
{
	Oid			dboid;
	Oid			relid;
	int			nworkers;
	pg_atomic_uint32 verdict;	/* 0 pending, 1 commit, 2 abort */
	Latch	   *leader_latch;
	int			leader_pid;
	SmxBfwSlot	slot[SMX_BF_MAX_WORKERS];
} SmxBfwShared;

struct SmxBfPool
{
	dsm_segment *seg;
	SmxBfwShared *sh;
	int			n;
	shm_mq_handle *mqh[SMX_BF_MAX_WORKERS];
	BackgroundWorkerHandle *handle[SMX_BF_MAX_WORKERS];
	bool		detached;
};

static Size
smx_bfw_queue_offset(int w)
{
	return MAXALIGN(sizeof(SmxBfwShared)) + (Size) w * SMX_BFW_QUEUE_BYTES;
}

/*
 * Start up to nworkers workers for a COPY into relid; NULL when none
 * could start (no free background worker slot): the leader then works
 * alone.
 */
SmxBfPool *
smx_bfpool_start(Oid relid, int nworkers)
{
	SmxBfPool  *p;
	Size		size;
	int			started = 0;

	MemoryContext old;

	nworkers = Min(nworkers, SMX_BF_MAX_WORKERS);
	if (nworkers <= 0)
		return NULL;
	/*
	 * The pool, the queue handles and the workers' handles are used at the
	 * transaction's end, after the statement's memory is gone.
	 */
	old = MemoryContextSwitchTo(TopMemoryContext);
	p = palloc0(sizeof(SmxBfPool));
	size = smx_bfw_queue_offset(nworkers);
	p->seg = dsm_create(size, DSM_CREATE_NULL_IF_MAXSEGMENTS);
	if (p->seg == NULL)
	{
		pfree(p);
		MemoryContextSwitchTo(old);
		return NULL;
	}
	/* it outlives the statement: the verdict comes at the transaction's end */
	dsm_pin_mapping(p->seg);
	p->sh = dsm_segment_address(p->seg);
	memset(p->sh, 0, sizeof(SmxBfwShared));
	p->sh->dboid = MyDatabaseId;
	p->sh->relid = relid;
	p->sh->nworkers = nworkers;
	pg_atomic_init_u32(&p->sh->verdict, 0);
	p->sh->leader_latch = MyLatch;
	p->sh->leader_pid = MyProcPid;

	for (int w = 0; w < nworkers; w++)
	{
		BackgroundWorker bgw;
		shm_mq	   *mq;

		pg_atomic_init_u32(&p->sh->slot[w].state, SMX_BFW_STARTING);
		mq = shm_mq_create((char *) p->sh + smx_bfw_queue_offset(w), SMX_BFW_QUEUE_BYTES);
		shm_mq_set_sender(mq, MyProc);
		memset(&bgw, 0, sizeof(bgw));
		bgw.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
		bgw.bgw_start_time = BgWorkerStart_ConsistentState;
		bgw.bgw_restart_time = BGW_NEVER_RESTART;
		strlcpy(bgw.bgw_library_name, "sim_metrics", BGW_MAXLEN);
		strlcpy(bgw.bgw_function_name, "sim_metrics_backfill_main", BGW_MAXLEN);
		snprintf(bgw.bgw_name, BGW_MAXLEN, "sim_metrics backfill worker %d for PID %d", w + 1, MyProcPid);
		strlcpy(bgw.bgw_type, "sim_metrics backfill", BGW_MAXLEN);
		bgw.bgw_main_arg = UInt32GetDatum(dsm_segment_handle(p->seg));
		memcpy(bgw.bgw_extra, &w, sizeof(int));
		bgw.bgw_notify_pid = MyProcPid;
		p->mqh[w] = shm_mq_attach(mq, p->seg, NULL);
		if (!RegisterDynamicBackgroundWorker(&bgw, &p->handle[w]))
		{
			shm_mq_detach(p->mqh[w]);
			break;
		}
		shm_mq_set_handle(p->mqh[w], p->handle[w]);
		started++;
	}
	p->n = started;
	p->sh->nworkers = started;
	MemoryContextSwitchTo(old);
	if (started == 0)
	{
		dsm_detach(p->seg);
		pfree(p);
		return NULL;
	}
	return p;
}

int
smx_bfpool_size(const SmxBfPool *p)
{
	return p ? p->n : 0;
}

/* Raise what worker w recorded, or that it is gone. */
static void
smx_bfpool_raise(SmxBfPool *p, int w)
{
	SmxBfwSlot *s = &p->sh->slot[w];

	if (pg_atomic_read_u32(&s->state) == SMX_BFW_FAILED)
		ereport(ERROR,
				(errcode(s->sqlerrcode),
				 errmsg("%s", s->message),
				 errcontext("sim_backfill() insert worker %d", w + 1)));
	ereport(ERROR,
			(errcode(ERRCODE_INTERNAL_ERROR),
			 errmsg("sim_backfill() insert worker %d exited before its COPY was done", w + 1),
			 errhint("See the server log.")));
}

/* Send len bytes to worker w's COPY (waits while its queue is full). */
void
smx_bfpool_send(SmxBfPool *p, int w, const char *data, Size len)
{
	shm_mq_result res = shm_mq_send(p->mqh[w], len, data, false, true);

	if (res != SHM_MQ_SUCCESS)
		smx_bfpool_raise(p, w);
}

/*
 * The stream is done: end the workers' COPYs and wait for them. Returns
 * the rows they wrote; a worker that failed is raised, except a refused
 * row or a missing partition, returned in *fail (sqlerrcode != 0).
 */
int64
smx_bfpool_finish(SmxBfPool *p, SmxBfFailure *fail)
{
	int64		rows = 0;

	memset(fail, 0, sizeof(*fail));
	if (!p->detached)
	{
		for (int w = 0; w < p->n; w++)
			shm_mq_detach(p->mqh[w]);
		p->detached = true;
	}
	for (int w = 0; w < p->n; w++)
	{
		for (;;)
		{
			uint32		st = pg_atomic_read_u32(&p->sh->slot[w].state);
			pid_t		pid;

			pg_read_barrier();
			if (st == SMX_BFW_READY)
				break;
			if (st == SMX_BFW_FAILED)
			{
				SmxBfwSlot *s = &p->sh->slot[w];

				if (fail->sqlerrcode == 0)
				{
					fail->sqlerrcode = s->sqlerrcode;
					fail->no_partition = s->no_partition;
					strlcpy(fail->message, s->message, sizeof(fail->message));
				}
				break;
			}
			if (GetBackgroundWorkerPid(p->handle[w], &pid) == BGWH_STOPPED)
			{
				/* it may have recorded why just before it went */
				if (pg_atomic_read_u32(&p->sh->slot[w].state) == SMX_BFW_STARTING ||
					pg_atomic_read_u32(&p->sh->slot[w].state) == SMX_BFW_COPYING)
					smx_bfpool_raise(p, w);
				continue;
			}
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 100,
							 PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
		}
		rows += p->sh->slot[w].rows;
	}
	return rows;
}

/*
 * The verdict: commit (wait, bounded, until every worker committed; false
 * when one did not) or abort (no wait). Then the pool is gone.
 */
bool
smx_bfpool_verdict(SmxBfPool *p, bool commit)
{
	bool		ok = true;

	pg_atomic_write_u32(&p->sh->verdict, commit ? 1 : 2);
	for (int w = 0; w < p->n; w++)
		if (p->sh->slot[w].latch)
			SetLatch(p->sh->slot[w].latch);
	if (commit)
	{
		for (int w = 0; w < p->n; w++)
		{
			for (;;)
			{
				uint32		st = pg_atomic_read_u32(&p->sh->slot[w].state);
				pid_t		pid;

				if (st == SMX_BFW_COMMITTED)
					break;
				if (st == SMX_BFW_FAILED || st == SMX_BFW_ABORTED ||
					GetBackgroundWorkerPid(p->handle[w], &pid) == BGWH_STOPPED)
				{
					if (pg_atomic_read_u32(&p->sh->slot[w].state) != SMX_BFW_COMMITTED)
						ok = false;
					break;
				}
				(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 20,
								 PG_WAIT_EXTENSION);
				ResetLatch(MyLatch);
			}
		}
	}
	if (!p->detached)
	{
		for (int w = 0; w < p->n; w++)
			shm_mq_detach(p->mqh[w]);
		p->detached = true;
	}
	dsm_detach(p->seg);
	for (int w = 0; w < p->n; w++)
		pfree(p->handle[w]);
	pfree(p);
	return ok;
}

/* ---------------------------------------------------------------------
 * The worker
 * --------------------------------------------------------------------- */

static shm_mq_handle *smx_bfw_mqh = NULL;
static const char *smx_bfw_data = NULL;
static Size smx_bfw_len = 0;
static Size smx_bfw_off = 0;
static bool smx_bfw_eof = false;

/* The worker's COPY source: its queue, until the leader detaches. */
static int
smx_bfw_read(void *outbuf, int minread, int maxread)
{
	int			got = 0;

	while (got < minread)
	{
		Size		k;

		if (smx_bfw_off >= smx_bfw_len)
		{
			void	   *data;
			Size		len;

			if (smx_bfw_eof ||
				shm_mq_receive(smx_bfw_mqh, &len, &data, false) != SHM_MQ_SUCCESS)
			{
				smx_bfw_eof = true;
				break;
			}
			smx_bfw_data = data;
			smx_bfw_len = len;
			smx_bfw_off = 0;
			continue;
		}
		k = Min((Size) (maxread - got), smx_bfw_len - smx_bfw_off);
		memcpy((char *) outbuf + got, smx_bfw_data + smx_bfw_off, k);
		smx_bfw_off += k;
		got += (int) k;
	}
	return got;
}

void
sim_metrics_backfill_main(Datum main_arg)
{
	dsm_segment *seg;
	SmxBfwShared *sh;
	SmxBfwSlot *slot;
	int			w;
	shm_mq	   *mq;
	uint32		verdict;

	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	memcpy(&w, MyBgworkerEntry->bgw_extra, sizeof(int));
	seg = dsm_attach(DatumGetUInt32(main_arg));
	if (seg == NULL)
		proc_exit(0);			/* the leader is gone already */
	sh = dsm_segment_address(seg);
	if (w < 0 || w >= SMX_BF_MAX_WORKERS)
		proc_exit(1);
	slot = &sh->slot[w];
	slot->latch = MyLatch;
	pg_write_barrier();
	BackgroundWorkerInitializeConnectionByOid(sh->dboid, InvalidOid, 0);
	/* the leader sends text in the server's encoding: COPY must not convert it */
	SetClientEncoding(GetDatabaseEncoding());
	pgstat_report_appname("sim_metrics backfill");
	mq = (shm_mq *) ((char *) sh + smx_bfw_queue_offset(w));
	shm_mq_set_receiver(mq, MyProc);
	smx_bfw_mqh = shm_mq_attach(mq, seg, NULL);

	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "sim_metrics: backfill COPY");
	pg_atomic_write_u32(&slot->state, SMX_BFW_COPYING);
	PG_TRY();
	{
		SmxSavedUser saved;

		smx_become_writer(&saved);
		slot->rows = smx_bf_copy_into(sh->relid, smx_bfw_read, 0);
		smx_restore_user(&saved);
	}
	PG_CATCH();
	{
		ErrorData  *e;

		MemoryContextSwitchTo(TopMemoryContext);
		e = CopyErrorData();
		slot->sqlerrcode = e->sqlerrcode;
		slot->no_partition = e->sqlerrcode == ERRCODE_CHECK_VIOLATION &&
			e->constraint_name == NULL && e->table_name != NULL;
		strlcpy(slot->message, e->message ? e->message : "", sizeof(slot->message));
		pg_write_barrier();
		pg_atomic_write_u32(&slot->state, SMX_BFW_FAILED);
		SetLatch(sh->leader_latch);
		PG_RE_THROW();
	}
	PG_END_TRY();
	pg_write_barrier();
	pg_atomic_write_u32(&slot->state, SMX_BFW_READY);
	SetLatch(sh->leader_latch);
	pgstat_report_activity(STATE_IDLEINTRANSACTION, "sim_metrics: backfill waits for its leader");

	/* the leader's verdict; its death (the segment's other users gone) aborts */
	while ((verdict = pg_atomic_read_u32(&sh->verdict)) == 0)
	{
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 1000,
						 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (kill(sh->leader_pid, 0) != 0)
		{
			verdict = 2;
			break;
		}
	}
	PopActiveSnapshot();
	if (verdict == 1)
	{
		CommitTransactionCommand();
		pg_atomic_write_u32(&slot->state, SMX_BFW_COMMITTED);
	}
	else
	{
		AbortCurrentTransaction();
		pg_atomic_write_u32(&slot->state, SMX_BFW_ABORTED);
	}
	SetLatch(sh->leader_latch);
	pgstat_report_activity(STATE_IDLE, NULL);
	dsm_detach(seg);
	proc_exit(0);
}

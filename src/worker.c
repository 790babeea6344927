/*
 * worker.c — what the three background workers share: their registration
 * and the guard every step of their loops runs under.
 *
 * The ticker (ticker.c) computes; the writer (writer.c) does the database
 * I/O; the mirror (mirror.c) the Redis I/O. All are static workers started
 * from shared_preload_libraries after recovery, restarted 5 s after an
 * exit with code 1. Rules all keep:
 *  - core signal handlers (SignalHandlerForShutdownRequest,
 *    SignalHandlerForConfigReload) installed before signals are unblocked;
 *    pg_cancel_backend() cancels nothing of theirs: the ticker and the
 *    mirror ignore SIGINT, the writer passes it on only when its own
 *    lock_timeout or statement_timeout fired (they cancel through a SIGINT
 *    to self); SIGTERM also cancels what runs under
 *    smx_cancel_on_shutdown (the writer's realtime.send);
 *  - they wait only on MyLatch with WL_EXIT_ON_PM_DEATH and call
 *    CHECK_FOR_INTERRUPTS() after each wait;
 *  - a loop memory context reset every iteration and switched back to
 *    after every commit or abort;
 *  - an error never kills a worker at once: it is logged, recorded for
 *    sim_status(), the transaction aborted, the step retried with backoff.
 */
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timeout.h"

#include "compat.h"
#include "sim_metrics.h"

#define SMX_RESTART_SECONDS		5

/* Reset every iteration; current again after every commit or abort. */
MemoryContext smx_loop_cxt = NULL;

/*
 * Set while the writer runs code it does not own (realtime.send): a
 * shutdown request then also cancels that code, so the exit is not held up
 * by it.
 */
volatile sig_atomic_t smx_cancel_on_shutdown = false;

static void
smx_register_one(const char *type, const char *function, bool database)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = SMX_RESTART_SECONDS;
	strlcpy(worker.bgw_library_name, "sim_metrics", BGW_MAXLEN);
	strlcpy(worker.bgw_function_name, function, BGW_MAXLEN);
	strlcpy(worker.bgw_name, type, BGW_MAXLEN);
	strlcpy(worker.bgw_type, type, BGW_MAXLEN);
	RegisterBackgroundWorker(&worker);
}

void
smx_register_workers(void)
{
	smx_register_one(SMX_TICKER_TYPE, "sim_metrics_ticker_main", false);
	smx_register_one(SMX_WRITER_TYPE, "sim_metrics_writer_main", true);
	smx_register_one(SMX_MIRROR_TYPE, "sim_metrics_mirror_main", false);
}

/*
 * SIGTERM: the core handler (ShutdownRequestPending and the latch); while
 * smx_cancel_on_shutdown is set, the running statement is cancelled too.
 */
static void
smx_shutdown_handler(SIGNAL_ARGS)
{
	int			save_errno = errno;

	if (smx_cancel_on_shutdown)
	{
		QueryCancelPending = true;
		InterruptPending = true;
	}
	SignalHandlerForShutdownRequest(postgres_signal_arg);
	errno = save_errno;
}

/*
 * Start a worker: core handlers for SIGHUP and SIGTERM (the latter only
 * sets ShutdownRequestPending and the latch, and cancels a statement only
 * under smx_cancel_on_shutdown), `on_sigint` for SIGINT, then a connection
 * to `database` (NULL: none, shared catalogs only).
 */
void
smx_worker_begin(const char *type, pqsigfunc on_sigint, const char *database)
{
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, smx_shutdown_handler);
	pqsignal(SIGINT, on_sigint);
	BackgroundWorkerUnblockSignals();

	if (smx_shared == NULL)
		ereport(ERROR,
				(errmsg("%s started without shared memory", type)));
	BackgroundWorkerInitializeConnection(database,
										 database && smx_worker_role[0] ? smx_worker_role : NULL,
										 0);
	pgstat_report_appname(type);
}

/*
 * Sleep on the latch for at most timeout_ms (0: just look, postmaster
 * death included), then handle interrupts. The only wait either worker
 * makes between its steps.
 */
void
smx_worker_wait(long timeout_ms)
{
	(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
					 Max(timeout_ms, 0), SMX_WAIT_EVENT_MAIN);
	ResetLatch(MyLatch);
	CHECK_FOR_INTERRUPTS();
}

/*
 * The writer's SIGINT handler: a timeout of its own cancels the statement
 * as usual; a SIGINT from anyone else (pg_cancel_backend) is ignored.
 */
void
smx_timeout_cancel_handler(SIGNAL_ARGS)
{
	if (get_timeout_indicator(LOCK_TIMEOUT, false) ||
		get_timeout_indicator(STATEMENT_TIMEOUT, false))
		StatementCancelHandler(postgres_signal_arg);
}

/*
 * Run one step of a loop, step(arg), catching any error: the error is
 * logged and recorded for sim_status(), the transaction (if any) aborted,
 * locks released, and memory put back in the loop context. Returns false
 * when it failed. What the step has to tell goes back through arg.
 */
bool
smx_worker_guarded(SmxStep step, void *arg)
{
	MemoryContext loop_cxt = smx_loop_cxt;

	volatile bool ok = true;

	PG_TRY();
	{
		step(arg);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		bool		gave_way;

		MemoryContextSwitchTo(loop_cxt);
		edata = CopyErrorData();

		/*
		 * a writer flush that gave way to a session's sim_flush() loses
		 * nothing (that session writes the samples): logged, not an error
		 */
		gave_way = smx_flush_postponed && edata->sqlerrcode == ERRCODE_LOCK_NOT_AVAILABLE;
		if (!gave_way)
			EmitErrorReport();
		FlushErrorState();
		LWLockReleaseAll();
		AbortCurrentTransaction();	/* a no-op outside a transaction */
		MemoryContextSwitchTo(loop_cxt);
		pgstat_report_activity(STATE_IDLE, NULL);
		if (gave_way)
			ereport(LOG, (errmsg("%s", edata->message),
						  edata->hint ? errhint("%s", edata->hint) : 0));
		else
			smx_record_error(edata->message);
		ok = false;
	}
	PG_END_TRY();
	return ok;
}

/*
 * A worker step's transaction: the statement time, a snapshot, the
 * activity pg_stat_activity shows; lock_timeout (NULL: none) bounds its
 * waits for locks.
 */
void
smx_worker_xact_begin(const char *activity, const char *lock_timeout)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (lock_timeout != NULL)
		(void) set_config_option("lock_timeout", lock_timeout, PGC_SUSET, PGC_S_SESSION,
								 GUC_ACTION_LOCAL, true, 0, false);
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, activity);
}

/* Commit it, back in cxt, idle. */
void
smx_worker_xact_end(MemoryContext cxt)
{
	PopActiveSnapshot();
	CommitTransactionCommand();
	MemoryContextSwitchTo(cxt);
	pgstat_report_activity(STATE_IDLE, NULL);
}

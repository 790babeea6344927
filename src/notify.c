/*
 * notify.c — live push from the writer: NOTIFY sim_metrics_status on every
 * status change, and one aggregated Supabase Realtime message a tick
 * through realtime.send() when sim_metrics.realtime asks for it and the
 * function exists.
 *
 * Status changes are read from the history ring (lock-free, like
 * sim_history), sample by sample, so each change has its tick. The ring is
 * read before the writer's flush moves its tail; when a backend's
 * sim_flush() took samples first, a change is still reported, from the
 * status last seen to the new one.
 *
 * realtime.send() is not ours: the writer runs it as its owner, in a
 * security-restricted operation, so whoever created it gets nothing the
 * owner did not have. It is looked up at each send; the install script
 * never names it. A failure is counted (sim_status().realtime_errors),
 * kept in sim_status().last_error and never stops the writer.
 *
 * It gets SMX_REALTIME_TIMEOUT_MS. A background worker never arms the
 * statement timer itself (only postgres.c does, per client statement), so
 * setting statement_timeout alone bounds nothing: the timer is armed here
 * around the call, its SIGINT turned into a cancel by the writer's handler
 * (smx_timeout_cancel_handler), and lock_timeout bounds each lock wait. A
 * shutdown request cancels the call at once. A send that timed out is
 * tried again only after a backoff (SMX_REALTIME_TIMEOUT_MS x 2^(n-1), at
 * most SMX_REALTIME_MAX_BACKOFF_MS), so a send that is always slow does
 * not hold up the writer's flushes and scenario log every tick.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "commands/async.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "parser/parse_func.h"
#include "pgstat.h"
#include "postmaster/interrupt.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/regproc.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"

#include "sim_metrics.h"

#define SMX_NOTIFY_CHANNEL	"sim_metrics_status"
#define SMX_NOTIFY_MAX		10000	/* notifications a step, the rest next step */
#define SMX_REALTIME_TIMEOUT_MS	5000	/* what realtime.send gets */
#define SMX_REALTIME_LOCK_TIMEOUT "2s"	/* each of its lock waits */
#define SMX_REALTIME_MAX_BACKOFF_MS 60000	/* after sends that timed out */

/* What the writer saw: the ring position read up to, each id's status. */
static uint64 smx_notify_pos = 0;
static uint8 *smx_notify_seen = NULL;	/* by id pool index; 255 = not seen */
static SmxSample *smx_notify_chunk = NULL;
static uint64 smx_realtime_tick = 0;	/* tick of the last message sent */
static int	smx_realtime_slow = 0;	/* sends in a row that timed out */
static TimestampTz smx_realtime_retry_at = 0;	/* no send before; 0 = now */

/* sim_metrics.realtime: off, public or private */
int			smx_realtime = SMX_REALTIME_OFF;
char	   *smx_realtime_topic = NULL;

/*
 * Queue a NOTIFY for every status change in the ring since the last step
 * (at most SMX_NOTIFY_MAX; the rest next step). Must run in a transaction;
 * the notifications go out when it commits. Returns how many.
 */
static int64
smx_notify_changes(void)
{
	uint64		tail,
				head;
	int64		sent = 0;
	StringInfoData buf;
	SmxRingIter it;
	int			k,
				skip;

	if (smx_notify_seen == NULL)
	{
		smx_notify_seen = MemoryContextAllocHuge(TopMemoryContext, smx_shared->ring.id_pool_size);
		memset(smx_notify_seen, 255, smx_shared->ring.id_pool_size);
		smx_notify_chunk = MemoryContextAlloc(TopMemoryContext, sizeof(SmxSample) * SMX_RING_CHUNK);
	}
	smx_ring_bounds(&tail, &head);
	if (smx_notify_pos < tail || smx_notify_pos > head)
		smx_notify_pos = tail;
	initStringInfo(&buf);
	smx_ring_iter_begin(&it, smx_notify_pos, head, smx_notify_chunk);
	while (sent < SMX_NOTIFY_MAX && (k = smx_ring_iter_next(&it, &skip)) > 0)
	{
		int			i;

		for (i = skip; i < k && sent < SMX_NOTIFY_MAX; i++)
		{
			const SmxSample *s = &it.buf[i];
			uint8		before;

			if (s->id_ref < 0 || s->id_ref >= smx_shared->ring.id_pool_size)
				continue;
			before = smx_notify_seen[s->id_ref];
			smx_notify_seen[s->id_ref] = s->status;
			if (before == 255 || before == s->status)
				continue;
			resetStringInfo(&buf);
			smx_status_event(&buf, smx_shared_id_pool()[s->id_ref].id, before, s->status,
							 s->tick, timestamptz_to_str(s->sim_time), s->scenario_run);
			Async_Notify(SMX_NOTIFY_CHANNEL, buf.data);
			sent++;
		}
		smx_notify_pos = it.from + i;
	}
	pfree(buf.data);
	return sent;
}

/*
 * realtime.send(jsonb, text, text, boolean), when it exists, with its
 * owner and qualified name; InvalidOid when not.
 */
static Oid
smx_realtime_send_fn(Oid *owner, char **name)
{
	List	   *names = list_make2(makeString("realtime"), makeString("send"));
	Oid			argtypes[4] = {JSONBOID, TEXTOID, TEXTOID, BOOLOID};
	Oid			fn = LookupFuncName(names, 4, argtypes, true);
	HeapTuple	tup;

	if (!OidIsValid(fn))
		return InvalidOid;
	tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(fn));
	if (!HeapTupleIsValid(tup))
		return InvalidOid;
	*owner = ((Form_pg_proc) GETSTRUCT(tup))->proowner;
	*name = quote_qualified_identifier(get_namespace_name(((Form_pg_proc) GETSTRUCT(tup))->pronamespace),
									   NameStr(((Form_pg_proc) GETSTRUCT(tup))->proname));
	ReleaseSysCache(tup);
	return fn;
}

/*
 * The role realtime.send runs as: never a superuser, since someone else
 * shaped the function. Its owner when that is a plain role, else
 * sim_metrics.admin_role when that is one; InvalidOid when neither.
 */
static Oid
smx_realtime_role(Oid owner)
{
	Oid			admin;

	if (!superuser_arg(owner))
		return owner;
	admin = smx_admin_role && smx_admin_role[0] ? get_role_oid(smx_admin_role, true) : InvalidOid;
	return OidIsValid(admin) && !superuser_arg(admin) ? admin : InvalidOid;
}

/* One Realtime message: what smx_realtime_send_step needs. */
typedef struct SmxRealtimeSend
{
	const char *fn;				/* realtime.send, qualified */
	Oid			nsp;			/* the extension's schema */
	uint64		tick;
} SmxRealtimeSend;

/*
 * The message for the tick: sim_dashboard()'s document (the first 1000
 * servers, the status summary) with the tick. Runs in smx_try_in_subxact,
 * as realtime.send's owner.
 */
static void
smx_realtime_send_step(void *arg)
{
	SmxRealtimeSend *rs = arg;
	Datum		args[2];
	Oid			types[2] = {TEXTOID, BOOLOID};
	char	   *sql;
	char	   *nspname = get_namespace_name(rs->nsp);
	int			ret;

	if (nspname == NULL)
		elog(ERROR, "the extension's schema is gone");
	sql = psprintf("SELECT %s(%s.sim_dashboard(NULL::pg_catalog.text, 1, 1000)"
				   " OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('tick'::pg_catalog.text, "
				   UINT64_FORMAT "::pg_catalog.int8),"
				   " 'tick'::pg_catalog.text, $1, $2)",
				   rs->fn, quote_identifier(nspname), rs->tick);
	args[0] = CStringGetTextDatum(smx_realtime_topic && smx_realtime_topic[0] ? smx_realtime_topic : "sim_metrics");
	args[1] = BoolGetDatum(smx_realtime == SMX_REALTIME_PRIVATE);
	ret = SPI_execute_with_args(sql, 2, types, args, NULL, false, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "realtime.send failed: %s", SPI_result_code_string(ret));
}

/*
 * Count a send's outcome. A failure is logged and kept in last_error; one
 * that ran out of time (the timer or lock_timeout) also puts the next send
 * off by the backoff.
 */
static void
smx_realtime_result(ErrorData *edata)
{
	char		msg[SMX_ERROR_LEN];
	long		backoff_ms = 0;

	smx_writer_count_realtime(edata == NULL);
	if (edata == NULL)
	{
		smx_realtime_slow = 0;
		smx_realtime_retry_at = 0;
		return;
	}
	/* (a shutdown's cancel says nothing about the send) */
	if (!ShutdownRequestPending &&
		(edata->sqlerrcode == ERRCODE_QUERY_CANCELED ||
		 edata->sqlerrcode == ERRCODE_LOCK_NOT_AVAILABLE))
	{
		smx_realtime_slow++;
		backoff_ms = smx_realtime_slow > 8 ? SMX_REALTIME_MAX_BACKOFF_MS :
			Min((long) SMX_REALTIME_MAX_BACKOFF_MS,
				(long) SMX_REALTIME_TIMEOUT_MS << (smx_realtime_slow - 1));
		smx_realtime_retry_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), backoff_ms);
	}
	snprintf(msg, sizeof(msg), "realtime.send failed: %s", edata->message);
	smx_record_error(msg);
	if (backoff_ms > 0)
		ereport(LOG,
				(errmsg("sim_metrics: %s", msg),
				 errdetail("realtime.send gets %d ms; %d sends in a row ran out of time, the next is tried in %ld s.",
						   SMX_REALTIME_TIMEOUT_MS, smx_realtime_slow, backoff_ms / 1000)));
	else
		ereport(LOG,
				(errmsg("sim_metrics: %s", msg)));
	FreeErrorData(edata);
}

/*
 * Send the tick's message when realtime.send exists; a failure is counted
 * and logged, never raised. Must run in a transaction.
 */
static void
smx_realtime_send(Oid nsp, uint64 tick)
{
	Oid			owner = InvalidOid;
	char	   *name = NULL;
	SmxRealtimeSend rs;
	ErrorData  *volatile edata = NULL;

	Oid			as_user;
	int			nest;

	if (!OidIsValid(smx_realtime_send_fn(&owner, &name)))
		return;
	as_user = smx_realtime_role(owner);
	if (!OidIsValid(as_user))
	{
		smx_writer_count_realtime(false);
		ereport(LOG,
				(errmsg("sim_metrics: not calling realtime.send: its owner is a superuser and sim_metrics.admin_role names no plain role to run it as")));
		return;
	}
	rs.fn = name;
	rs.nsp = nsp;
	rs.tick = tick;
	/* the time limits set here end with the call */
	nest = NewGUCNestLevel();
	(void) set_config_option("statement_timeout", CppAsString2(SMX_REALTIME_TIMEOUT_MS) "ms",
							 PGC_SUSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("lock_timeout", SMX_REALTIME_LOCK_TIMEOUT, PGC_SUSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	PG_TRY();
	{
		/* the timer the setting above does not arm in a background worker */
		enable_timeout_after(STATEMENT_TIMEOUT, SMX_REALTIME_TIMEOUT_MS);
		smx_cancel_on_shutdown = true;
		edata = smx_try_in_subxact(smx_realtime_send_step, &rs, as_user);
	}
	PG_FINALLY();
	{
		smx_cancel_on_shutdown = false;
		disable_timeout(STATEMENT_TIMEOUT, false);

		/*
		 * A cancel that came (timer, shutdown) just as the call returned is
		 * for the call: nothing after it must see it. Only these two set it
		 * here: the writer ignores anyone else's SIGINT.
		 */
		QueryCancelPending = false;
	}
	PG_END_TRY();
	AtEOXact_GUC(false, nest);
	smx_realtime_result(edata);
}

/*
 * The writer's step: notifications of the status changes since the last
 * step, then (sim_metrics.realtime) the tick's Realtime message. A failed
 * Realtime send is counted and logged, never raised. Takes no arguments
 * (a step).
 */
void
smx_notify_step(void *arg)
{
	uint64		tick;
	Oid			ext;
	Oid			nsp;
	int64		sent;
	bool		realtime_due;

	LWLockAcquire(smx_shared->publish_lock, LW_SHARED);
	tick = smx_shared->fleet.tick;
	LWLockRelease(smx_shared->publish_lock);
	realtime_due = smx_realtime != SMX_REALTIME_OFF && tick != smx_realtime_tick &&
		GetCurrentTimestamp() >= smx_realtime_retry_at && !ShutdownRequestPending;
	if (!realtime_due && smx_notify_seen != NULL)
	{
		uint64		tail,
					head;

		/* nothing new in the ring: no transaction */
		smx_ring_bounds(&tail, &head);
		if (smx_notify_pos == head)
			return;
	}

	smx_worker_xact_begin("sim_metrics: notifications", NULL);
	sent = smx_notify_changes();
	nsp = smx_extension_schema(&ext);
	if (realtime_due && OidIsValid(nsp))
	{
		smx_realtime_send(nsp, tick);
		smx_realtime_tick = tick;
	}
	smx_worker_xact_end(smx_loop_cxt);
	if (sent > 0)
		smx_writer_count_notifications(sent);
}

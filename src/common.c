/*
 * common.c — small helpers every layer uses: the extension lookup, time
 * conversion, "simulated now", error and state slots in shared memory, the
 * settings the workers pin. It depends on nothing of ours but the shared
 * struct, so engine, ring, flush and workers can all call it without
 * calling each other.
 */
#include "postgres.h"

#include "commands/trigger.h"

#include <math.h>

#include "access/genam.h"
#include "access/xact.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/indexing.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/catcache.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "sim_metrics.h"

/*
 * Find our extension (*ext) and return its schema, by a catalog scan
 * (pg_extension has no syscache on PostgreSQL 15). Both are InvalidOid when
 * the extension is absent. Needs a transaction.
 */
Oid
smx_extension_schema(Oid *ext)
{
	Relation	rel;
	SysScanDesc scan;
	ScanKeyData key;
	HeapTuple	tup;
	Oid			nsp = InvalidOid;

	*ext = InvalidOid;
	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber,
				F_NAMEEQ, CStringGetDatum(SMX_EXTENSION_NAME));
	scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		Form_pg_extension form = (Form_pg_extension) GETSTRUCT(tup);

		*ext = form->oid;
		nsp = form->extnamespace;
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return nsp;
}

/*
 * The extension's schema, by name as in pg_namespace (not quoted: quote it
 * with quote_identifier() where SQL text is built, and only there); ERROR
 * when the extension is not installed in this database.
 */
char *
smx_extension_schema_name(void)
{
	Oid			ext;
	Oid			nsp = smx_extension_schema(&ext);
	char	   *name = OidIsValid(ext) ? get_namespace_name(nsp) : NULL;

	if (name == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("extension \"%s\" is not installed in this database",
						SMX_EXTENSION_NAME),
				 errhint("Run CREATE EXTENSION %s.", SMX_EXTENSION_NAME)));
	return name;
}

/*
 * Unix seconds to timestamptz; false when out of range or not finite (an
 * extreme time_scale x tick can leave the timestamptz range).
 */
bool
smx_epoch_to_timestamptz(double epoch, TimestampTz *ts)
{
	double		usecs = (epoch - (double) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY) *
		USECS_PER_SEC;

	if (!isfinite(usecs) || !(usecs >= (double) MIN_TIMESTAMP && usecs < (double) END_TIMESTAMP))
		return false;
	*ts = (TimestampTz) usecs;
	return true;
}

/* qsort comparator of doubles, ascending. */
int
smx_cmp_double(const void *a, const void *b)
{
	double		x = *(const double *) a,
				y = *(const double *) b;

	return (x > y) - (x < y);
}

/* Unix seconds of a timestamptz (finite). */
double
smx_timestamptz_epoch(TimestampTz ts)
{
	return (double) ts / USECS_PER_SEC +
		(double) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY;
}

/* A timestamptz of unix seconds, to the microsecond; an error out of range. */
TimestampTz
smx_epoch_timestamptz(double epoch)
{
	TimestampTz ts;

	if (!smx_epoch_to_timestamptz(rint(epoch * USECS_PER_SEC) / USECS_PER_SEC, &ts))
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range")));
	return ts;
}

/*
 * Argument arg, an interval, in seconds: an error when it is NULL or not
 * positive; name says which argument.
 */
double
smx_positive_interval_arg(FunctionCallInfo fcinfo, int arg, const char *name)
{
	double		s;

	if (PG_ARGISNULL(arg))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be NULL", name)));
	s = smx_interval_seconds(PG_GETARG_INTERVAL_P(arg));
	if (!(s > 0) || !isfinite(s))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be a positive interval", name),
				 errhint("For example '1 hour' or '14 days'.")));
	return s;
}

/*
 * Open a read-only cursor on sql with its arguments. latest: with a
 * snapshot newer than anything read before it (the ring), whatever the
 * isolation level, so a sample flushed meanwhile is visible. Must be
 * connected to SPI.
 */
Portal
smx_open_cursor(const char *sql, int nargs, Oid *types, Datum *args, bool latest)
{
	SPIPlanPtr	plan = SPI_prepare_cursor(sql, nargs, types, CURSOR_OPT_NO_SCROLL);
	Portal		portal;

	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	if (latest)
		PushActiveSnapshot(GetLatestSnapshot());
	portal = SPI_cursor_open(NULL, plan, args, NULL, true);
	if (latest)
		PopActiveSnapshot();
	return portal;
}

/*
 * Simulated time of tick `tick` on the published clock, unix seconds.
 * Caller must hold smx_shared->publish_lock (either mode).
 */
double
smx_sim_epoch_at(uint64 tick)
{
	return smx_shared->fleet.start_epoch + (double) tick * smx_shared->fleet.step_seconds;
}

/*
 * Simulated time of the last tick, as unix seconds and timestamptz; false
 * when the clock is not set yet or out of range. Takes publish_lock shared.
 */
bool
smx_sim_now(double *epoch, TimestampTz *ts)
{
	bool		set;
	double		e;
	TimestampTz t = 0;

	LWLockAcquire(smx_shared->publish_lock, LW_SHARED);
	set = smx_shared->fleet.clock_set;
	e = smx_sim_epoch_at(smx_shared->fleet.tick);
	LWLockRelease(smx_shared->publish_lock);
	if (epoch)
		*epoch = e;
	if (!set || !smx_epoch_to_timestamptz(e, &t))
		return false;
	if (ts)
		*ts = t;
	return true;
}

/*
 * Copy a NUL-terminated string into a fixed slot of len bytes, cut on a
 * character boundary (the table's CHECKs keep values within their slot;
 * this keeps the output valid text whatever happens).
 */
void
smx_copy_clipped(char *dst, const char *src, size_t len)
{
	int			n = strlen(src);

	if (n >= (int) len)
		n = pg_mbcliplen(src, n, len - 1);
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* Remember a worker error for sim_status(). */
void
smx_record_error(const char *msg)
{
	char		clipped[SMX_ERROR_LEN];

	smx_copy_clipped(clipped, msg ? msg : "unknown error", SMX_ERROR_LEN);
	LWLockAcquire(smx_shared->publish_lock, LW_EXCLUSIVE);
	memcpy(smx_shared->error.message, clipped, SMX_ERROR_LEN);
	smx_shared->error.at = GetCurrentTimestamp();
	smx_shared->error.count++;
	LWLockRelease(smx_shared->publish_lock);
}

/* Write a worker's state word (a 32-byte slot of SmxShared). */
void
smx_set_state(char *slot, const char *state)
{
	LWLockAcquire(smx_shared->publish_lock, LW_EXCLUSIVE);
	strlcpy(slot, state, 32);
	LWLockRelease(smx_shared->publish_lock);
}

/*
 * The workers run privileged SQL: nothing a database or role setting says
 * may change what it means. search_path and the transaction defaults are
 * pinned as overrides, above ALTER DATABASE / ALTER ROLE ... SET (only our
 * own code sets anything in the writer's session after this); the
 * timeouts at session level, above those too, so that a step can still set
 * its own bounded lock_timeout for one transaction.
 */
void
smx_pin_session_settings(void)
{
	static const char *const pinned[][2] = {
		{"search_path", "pg_catalog, pg_temp"},
		{"default_transaction_isolation", "read committed"},
		{"default_transaction_read_only", "off"},
		{"session_replication_role", "origin"},
		/* times the writer puts in Redis are read back as ISO, UTC */
		{"DateStyle", "ISO, YMD"},
		{"TimeZone", "UTC"},
	};
	static const char *const session[][2] = {
		{"statement_timeout", "0"},
		{"idle_in_transaction_session_timeout", "0"},
		{"lock_timeout", "0"},
		{"synchronous_commit", "local"},
	};

	for (int i = 0; i < (int) lengthof(pinned); i++)
		SetConfigOption(pinned[i][0], pinned[i][1], PGC_SUSET, PGC_S_OVERRIDE);
	for (int i = 0; i < (int) lengthof(session); i++)
		SetConfigOption(session[i][0], session[i][1], PGC_SUSET, PGC_S_SESSION);
}

/*
 * For each of the n servers of desc, its index in old_desc (old_n servers),
 * or -1 when it is new. Both lists are sorted by id in byte order.
 */
void
smx_desc_match(const SmxServerDesc *old_desc, int old_n, const SmxServerDesc *desc, int n,
			   int *old_index)
{
	int			j = 0;

	for (int i = 0; i < n; i++)
	{
		int			c = 1;

		while (j < old_n && (c = strcmp(old_desc[j].id, desc[i].id)) < 0)
			j++;
		old_index[i] = (j < old_n && c == 0) ? j : -1;
	}
}

/* Index of server id in desc (n servers sorted by id, byte order), or -1. */
int
smx_desc_find(const SmxServerDesc *desc, int n, const char *id)
{
	int			lo = 0,
				hi = n - 1;

	while (lo <= hi)
	{
		int			mid = lo + (hi - lo) / 2;
		int			c = strcmp(desc[mid].id, id);

		if (c == 0)
			return mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return -1;
}

/*
 * Run step(arg) in a subtransaction. Returns NULL when it succeeded, else
 * the error: the subtransaction was rolled back (with it any SPI
 * connection and user change made inside) and the caller says what
 * failed. Must run inside a transaction.
 */
ErrorData *
smx_subxact(SmxStep step, void *arg)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	ErrorData  *volatile edata = NULL;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		step(arg);
		ReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
	CurrentResourceOwner = owner;
	return edata;
}

/* What smx_try_in_subxact runs inside the subtransaction. */
typedef struct SmxSpiStep
{
	SmxStep		step;
	void	   *arg;
	Oid			as_user;
} SmxSpiStep;

static void
smx_spi_step(void *arg)
{
	SmxSpiStep *st = arg;
	SmxSavedUser saved;

	smx_become_role(st->as_user, &saved);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	st->step(st->arg);
	SPI_finish();
	smx_restore_user(&saved);
}

/*
 * smx_subxact(step, arg), connected to SPI, as as_user in a security-
 * restricted operation (InvalidOid: as the current user). Must run inside
 * a transaction, not connected to SPI.
 */
ErrorData *
smx_try_in_subxact(SmxStep step, void *arg, Oid as_user)
{
	SmxSpiStep	st = {step, arg, as_user};

	return smx_subxact(smx_spi_step, &st);
}

/* Whether a role has no attribute and is a member of no role. */
static bool
smx_role_is_bare(Oid role)
{
	HeapTuple	tup = SearchSysCache1(AUTHOID, ObjectIdGetDatum(role));
	Form_pg_authid a;
	bool		bare;
	CatCList   *memberships;

	if (!HeapTupleIsValid(tup))
		return false;
	a = (Form_pg_authid) GETSTRUCT(tup);
	bare = !a->rolcreaterole && !a->rolcreatedb && !a->rolcanlogin &&
		!a->rolreplication && !a->rolbypassrls;
	ReleaseSysCache(tup);
	memberships = SearchSysCacheList1(AUTHMEMMEMROLE, ObjectIdGetDatum(role));
	bare = bare && memberships->n_members == 0;
	ReleaseSysCacheList(memberships);
	return bare;
}

/*
 * The writer role. Every statement our C code runs on the extension's
 * tables -- the writer's flush, dead letters, retention, scenario log,
 * template and catalog reads, restore and Redis recovery, and the same
 * paths reached from sim_flush(), sim_tick() or sim_reload() in a backend --
 * runs as SMX_WRITER_ROLE in a security-restricted operation, never as the
 * tables' owner nor as the worker's login role. The install creates that
 * role with no attribute and grants it only what writing history needs, so
 * whatever someone else attached to those tables (a trigger, a CHECK, a
 * default or an index expression on a partition they own, an operator a
 * CHECK bound to) runs with nothing worth taking, whatever was granted on
 * the tables later. Refuses to go on when the role is missing, has been
 * made a superuser, or has been given an attribute or a membership.
 */
Oid
smx_writer_role(void)
{
	Oid			role = get_role_oid(SMX_WRITER_ROLE, true);

	if (!OidIsValid(role))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("role \"%s\" does not exist", SMX_WRITER_ROLE),
				 errdetail("sim_metrics reads and writes its tables only as that role."),
				 errhint("Run ALTER EXTENSION %s UPDATE, or DROP and CREATE EXTENSION %s, which create it.",
						 SMX_EXTENSION_NAME, SMX_EXTENSION_NAME)));
	if (superuser_arg(role))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("role \"%s\" is a superuser: sim_metrics writes nothing as a superuser",
						SMX_WRITER_ROLE),
				 errdetail("Code others attached to the tables (triggers, constraints) would run with its rights."),
				 errhint("ALTER ROLE %s NOSUPERUSER.", SMX_WRITER_ROLE)));
	if (!smx_role_is_bare(role))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("role \"%s\" holds more than writing history needs", SMX_WRITER_ROLE),
				 errdetail("Code others attached to the tables would run with its rights: it must have no attribute and be a member of no role."),
				 errhint("ALTER ROLE %s NOLOGIN NOCREATEROLE NOCREATEDB NOREPLICATION NOBYPASSRLS, and REVOKE its memberships.",
						 SMX_WRITER_ROLE)));
	return role;
}

/*
 * Refuse, with the grant to make, when the writer role lacks `mode` on
 * relid: a table that replaced one of ours (a partitioned history, say)
 * starts without the extension's grants.
 */
void
smx_writer_may(Oid relid, AclMode mode, const char *grant)
{
	if (pg_class_aclcheck(relid, smx_writer_role(), mode) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("role \"%s\" may not write %s", SMX_WRITER_ROLE, get_rel_name(relid)),
				 errdetail("sim_metrics reads and writes its tables only as that role."),
				 errhint("GRANT %s ON %s TO %s", grant,
						 quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
													get_rel_name(relid)),
						 SMX_WRITER_ROLE)));
}

/*
 * Switch to role (InvalidOid: stay who we are) in a security-restricted
 * operation, at a GUC nest level of its own: what the code run meanwhile
 * sets (set_config) ends with the switch. Undo with smx_restore_user.
 */
void
smx_become_role(Oid role, SmxSavedUser *saved)
{
	GetUserIdAndSecContext(&saved->user, &saved->sec);
	if (OidIsValid(role))
	{
		ConstraintsSetStmt immediate;

		SetUserIdAndSecContext(role, saved->sec | SECURITY_LOCAL_USERID_CHANGE |
							   SECURITY_RESTRICTED_OPERATION);

		/*
		 * SET CONSTRAINTS ALL IMMEDIATE: a deferred constraint trigger
		 * planted on our tables fires at the end of the statement that
		 * queued it, as this role, not at commit as whoever commits (a
		 * worker's login role, a superuser). Pending deferred events of
		 * the transaction fire now, as this role, and the mode stays for
		 * the rest of the transaction.
		 */
		memset(&immediate, 0, sizeof(immediate));
		immediate.type = T_ConstraintsSetStmt;
		immediate.constraints = NIL;
		immediate.deferred = false;
		AfterTriggerSetState(&immediate);
	}
	saved->guc_nest = NewGUCNestLevel();
}

/* Switch to the writer role (see smx_writer_role); undo with smx_restore_user. */
void
smx_become_writer(SmxSavedUser *saved)
{
	smx_become_role(smx_writer_role(), saved);
}

void
smx_restore_user(const SmxSavedUser *saved)
{
	AtEOXact_GUC(false, saved->guc_nest);
	SetUserIdAndSecContext(saved->user, saved->sec);
}

/* Column col of an SPI row: its text into dst (clipped), "" when NULL. */
void
smx_copy_text(HeapTuple tup, TupleDesc desc, int col, char *dst, size_t len)
{
	char	   *v = SPI_getvalue(tup, desc, col);

	smx_copy_clipped(dst, v ? v : "", len);
}

/* Column col (float8) of an SPI row, or dflt when NULL. */
double
smx_get_double(HeapTuple tup, TupleDesc desc, int col, double dflt)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);

	return isnull ? dflt : DatumGetFloat8(d);
}

/*
 * The simulated time of a tick as a timestamptz datum. Out of range:
 * *isnull is set when asked for, else the time is 'infinity'.
 */
Datum
smx_tick_time_datum(int64 tick, bool *isnull)
{
	TimestampTz ts;
	bool		valid = smx_epoch_to_timestamptz(smx_sim_epoch_at((uint64) Max(tick, 0)), &ts);

	if (isnull != NULL)
		*isnull = !valid;
	else if (!valid)
		ts = DT_NOEND;
	return TimestampTzGetDatum(ts);
}

/*
 * Error out unless the server is in server_templates or has history: what
 * the readers take as a server id (sim_history, sim_server_metrics). Read
 * as the caller; must be connected to SPI.
 */
void
smx_require_known_server(const char *nspname, text *server_t, const char *server_id)
{
	StringInfoData sql;
	Oid			argtype = TEXTOID;
	Datum		arg = PointerGetDatum(server_t);
	bool		isnull;
	int			ret;

	initStringInfo(&sql);
	appendStringInfo(&sql,
					 "SELECT EXISTS (SELECT 1 FROM %1$s.server_templates"
					 "               WHERE id OPERATOR(pg_catalog.=) $1)"
					 " OR EXISTS (SELECT 1 FROM %1$s.server_metrics_history"
					 "            WHERE server_id OPERATOR(pg_catalog.=) $1)",
					 quote_identifier(nspname));
	ret = SPI_execute_with_args(sql.data, 1, &argtype, &arg, NULL, true, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "checking server \"%s\" failed", server_id);
	if (!DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("unknown server \"%s\"", server_id),
				 errhint("Use an id from server_templates or server_metrics_history.")));
}

/*
 * The arrays of a private copy of n servers (states, descriptions, roles)
 * in cxt, all or none: on an allocation failure nothing is kept and an
 * error says so, so a caller's old arrays stay in place.
 */
void
smx_alloc_fleet_copy(MemoryContext cxt, int n, smx_state **state, SmxServerDesc **desc,
					 uint8 **role)
{
	int			flags = MCXT_ALLOC_HUGE | MCXT_ALLOC_NO_OOM;
	smx_state  *st = MemoryContextAllocExtended(cxt, sizeof(smx_state) * n, flags);
	SmxServerDesc *de = MemoryContextAllocExtended(cxt, sizeof(SmxServerDesc) * n, flags);
	uint8	   *ro = MemoryContextAllocExtended(cxt, n, flags);

	if (st == NULL || de == NULL || ro == NULL)
	{
		if (st)
			pfree(st);
		if (de)
			pfree(de);
		if (ro)
			pfree(ro);
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory for a copy of %d servers", n)));
	}
	*state = st;
	*desc = de;
	*role = ro;
}

/*
 * retention.c — deleting history older than sim_metrics.history_retention
 * (simulated time), for the writer, in batches, never one huge DELETE.
 */
#include "postgres.h"

#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "lib/stringinfo.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "sim_metrics.h"

#define SMX_RETENTION_BATCH		10000

/*
 * Delete one batch (SMX_RETENTION_BATCH rows) of rows older than
 * history_retention, in simulated time; the worker calls this in a
 * transaction of its own per batch, for a bounded time, so there is never
 * one huge DELETE. A BRIN index on "timestamp" finds the old rows. A
 * partitioned history table is left to its partition manager, and a
 * locked one to the next run. Returns the rows deleted.
 */
int64
smx_history_retention(void)
{
	Oid			ext;
	Oid			nsp = smx_extension_schema(&ext);
	Oid			relid;
	double		now_epoch;
	TimestampTz cutoff;
	StringInfoData sql;
	Oid			argtype = TIMESTAMPTZOID;
	Datum		arg;
	int			ret;
	int64		deleted;
	SmxSavedUser saved;

	if (smx_history_retention_s <= 0 || !OidIsValid(ext))
		return 0;
	relid = get_relname_relid("server_metrics_history", nsp);
	if (!OidIsValid(relid) || get_rel_relkind(relid) != RELKIND_RELATION)
		return 0;
	/* locked by someone else: try again next time, never wait */
	if (!ConditionalLockRelationOid(relid, RowExclusiveLock))
		return 0;

	if (!smx_sim_now(&now_epoch, NULL) ||
		!smx_epoch_to_timestamptz(now_epoch - smx_history_retention_s, &cutoff))
		return 0;
	arg = TimestampTzGetDatum(cutoff);

	initStringInfo(&sql);
	appendStringInfo(&sql,
					 "DELETE FROM %1$s.server_metrics_history"
					 " WHERE ctid OPERATOR(pg_catalog.=) ANY (ARRAY("
					 "  SELECT ctid FROM %1$s.server_metrics_history"
					 "  WHERE \"timestamp\" OPERATOR(pg_catalog.<) $1 LIMIT %2$d))",
					 quote_identifier(get_namespace_name(nsp)), SMX_RETENTION_BATCH);

	(void) set_config_option("lock_timeout", "200ms",
							 PGC_SUSET, PGC_S_SESSION, GUC_ACTION_LOCAL,
							 true, 0, false);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	/* as the writer role, like the flush: DELETE triggers fire as it */
	smx_writer_may(relid, ACL_SELECT | ACL_DELETE, "SELECT, INSERT, DELETE");
	smx_become_writer(&saved);
	ret = SPI_execute_with_args(sql.data, 1, &argtype, &arg, NULL, false, 0);
	smx_restore_user(&saved);
	if (ret != SPI_OK_DELETE)
		elog(ERROR, "history retention failed: %s", SPI_result_code_string(ret));
	deleted = (int64) SPI_processed;
	SPI_finish();
	return deleted;
}


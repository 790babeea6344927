/*
 * history_reader.c — sim_history(server_id, since, until): a server's
 * samples in order, those not flushed yet (from the ring) merged with the
 * table's.
 *
 * Nothing here holds a lock the ticker needs for longer than a few
 * fields' copy: the id pool is read as a seqlock, the ring without a lock
 * in chunks (a chunk is kept only if ring_tail had not passed it when the
 * copy ended, see shmem.c), and the table through a cursor fetched in
 * chunks into the tuplestore, which spills to disk past work_mem: memory
 * stays bounded whatever range is asked for.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "compat.h"
#include "sim_metrics.h"

#define SMX_FETCH_ROWS		1000	/* table rows per cursor fetch */

PG_FUNCTION_INFO_V1(sim_history);

#define SMX_HISTORY_COLS 11
#define SMX_MAX_REFS	16		/* id pool entries one server id may have */


static void
smx_put_hist_row(ReturnSetInfo *rsinfo, const char *server_id, const SmxHistRow *r)
{
	Datum		values[SMX_HISTORY_COLS];
	bool		nulls[SMX_HISTORY_COLS];

	memset(nulls, 0, sizeof(nulls));
	values[0] = CStringGetTextDatum(server_id);
	values[1] = TimestampTzGetDatum(r->ts);
	values[2] = Float8GetDatum(r->cpu);
	values[3] = Float8GetDatum(r->mem);
	values[4] = Float8GetDatum(r->disk);
	values[5] = Int64GetDatum(r->net);
	values[6] = CStringGetTextDatum(r->status >= 0 ? smx_status_names[r->status] :
									(r->status_text ? r->status_text : ""));
	nulls[6] = r->status < 0 && r->status_text == NULL;
	values[7] = r->session ? CStringGetTextDatum(r->session) : (Datum) 0;
	nulls[7] = r->session == NULL || r->session[0] == '\0';
	values[8] = Int64GetDatum(r->tick);
	nulls[8] = r->tick < 0;
	values[9] = Int64GetDatum(r->run);
	nulls[9] = r->run == 0;
	values[10] = CStringGetTextDatum(r->from_memory ? "memory" : "table");
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}


/*
 * The server's unflushed samples in [since, until], from the ring, in ring
 * order (= tick order). *nmem gets their number. A sample whose slot a
 * flush freed while it was copied is left out: the table has it, and is
 * read afterwards with a newer snapshot. NULL when the id has no samples
 * in the ring.
 */
SmxHistRow *
smx_history_ring_rows(const char *server_id, TimestampTz since, TimestampTz until,
					  int *nmem)
{
	uint64		tail0,
				head0;
	int32		refs[SMX_MAX_REFS];
	int			nrefs;
	char		sessions[SMX_SESSIONS][SMX_SESSION_LEN];
	SmxRingIter it;
	int			k,
				first_ok;
	SmxHistRow *rows = NULL;
	int			n = 0,
				size = 0;

	*nmem = 0;
	/*
	 * The bounds first, then the names: an entry reassigned to another
	 * server after this point has samples only at or past head0.
	 */
	LWLockAcquire(smx_shared->publish_lock, LW_SHARED);
	memcpy(sessions, smx_shared->fleet.sessions, sizeof(sessions));
	tail0 = smx_shared->ring.tail;
	head0 = smx_shared->ring.head;
	LWLockRelease(smx_shared->publish_lock);
	nrefs = smx_id_pool_find(server_id, refs, SMX_MAX_REFS);
	if (nrefs == 0)
		return NULL;

	smx_ring_iter_begin(&it, tail0, head0, NULL);
	while ((k = smx_ring_iter_next(&it, &first_ok)) > 0)
	{
		for (int i = first_ok; i < k; i++)
		{
			SmxSample  *s = &it.buf[i];
			SmxHistRow *r;
			bool		match = false;

			for (int j = 0; j < nrefs; j++)
				match |= s->id_ref == refs[j];
			if (!match || s->sim_time < since || s->sim_time > until)
				continue;
			if (n == size)
			{
				size = Max(64, size * 2);
				rows = rows ? repalloc_huge(rows, sizeof(SmxHistRow) * size) :
					palloc(sizeof(SmxHistRow) * size);
			}
			r = &rows[n++];
			r->tick = s->tick;
			r->ts = s->sim_time;
			r->cpu = s->cpu / 100.0;
			r->mem = s->memory / 100.0;
			r->disk = s->disk / 100.0;
			r->net = s->network_io;
			r->status = s->status & 3;
			r->status_text = NULL;
			r->session = s->session < SMX_SESSIONS ? pstrdup(sessions[s->session]) : NULL;
			r->run = s->scenario_run;
			r->from_memory = true;
		}
		CHECK_FOR_INTERRUPTS();
	}
	pfree(it.buf);
	*nmem = n;
	return rows;
}

/* A table row of the history cursor, as a SmxHistRow. */
static void
smx_history_table_row(HeapTuple tup, TupleDesc td, SmxHistRow *t)
{
	bool		n[9];
	Datum		v[9];

	for (int c = 0; c < 9; c++)
		v[c] = SPI_getbinval(tup, td, c + 1, &n[c]);
	t->ts = DatumGetTimestampTz(v[0]);
	t->cpu = n[1] ? 0 : DatumGetFloat8(v[1]);
	t->mem = n[2] ? 0 : DatumGetFloat8(v[2]);
	t->disk = n[3] ? 0 : DatumGetFloat8(v[3]);
	t->net = n[4] ? 0 : DatumGetInt64(v[4]);
	t->status = -1;
	t->status_text = n[5] ? NULL : TextDatumGetCString(v[5]);
	t->session = n[6] ? NULL : TextDatumGetCString(v[6]);
	t->tick = n[7] ? -1 : DatumGetInt64(v[7]);
	t->run = n[8] ? 0 : DatumGetInt64(v[8]);
	t->from_memory = false;
}

/*
 * Open a cursor on the server's table rows in [since, until], ordered by
 * (timestamp, tick), with a snapshot newer than the ring read, whatever
 * the isolation level: a sample flushed in between must be visible.
 */
static Portal
smx_history_open_cursor(const char *nspname, Datum *args)
{
	Oid			argtypes[3] = {TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID};

	return smx_open_cursor(psprintf("SELECT \"timestamp\", cpu_usage::float8, memory_usage::float8,"
									" disk_usage::float8, network_io, status, session_id, tick, scenario_run_id"
									" FROM %s.server_metrics_history"
									" WHERE server_id OPERATOR(pg_catalog.=) $1"
									"   AND \"timestamp\" OPERATOR(pg_catalog.>=) $2"
									"   AND \"timestamp\" OPERATOR(pg_catalog.<=) $3"
									" ORDER BY \"timestamp\", tick",
									quote_identifier(nspname)),
						   3, argtypes, args, true);
}

/*
 * sim_history(server_id, since, until): the server's samples in order,
 * those not flushed yet (from the ring) merged with the table's. The ring
 * is read first, then the table with a newer snapshot: a sample flushed in
 * between shows up in both and is taken once (same tick), so there is no
 * gap and no duplicate across a flush boundary.
 */
Datum
sim_history(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	text	   *server_t = PG_GETARG_TEXT_PP(0);
	TimestampTz since = PG_GETARG_TIMESTAMPTZ(1);
	TimestampTz until = PG_GETARG_TIMESTAMPTZ(2);
	char	   *server_id = text_to_cstring(server_t);
	char	   *nspname;
	SmxHistRow *mem_rows;
	int			nmem = 0;
	int			m = 0;
	Datum		args[3];
	Portal		portal;
	MemoryContext rowcxt;

	smx_require_fleet_database();
	if (until < since)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("until (%s) is before since (%s)",
						pstrdup(timestamptz_to_str(until)), pstrdup(timestamptz_to_str(since))),
				 errhint("Pass the earlier time as since.")));
	nspname = smx_extension_schema_name();
	InitMaterializedSRF(fcinfo, 0);

	mem_rows = smx_history_ring_rows(server_id, since, until, &nmem);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (nmem == 0)
		smx_require_known_server(nspname, server_t, server_id);

	args[0] = PointerGetDatum(server_t);
	args[1] = TimestampTzGetDatum(since);
	args[2] = TimestampTzGetDatum(until);
	portal = smx_history_open_cursor(nspname, args);
	rowcxt = AllocSetContextCreate(CurrentMemoryContext, "sim_history rows",
								   ALLOCSET_DEFAULT_SIZES);
	for (;;)
	{
		MemoryContext old;

		SPI_cursor_fetch(portal, true, SMX_FETCH_ROWS);
		old = MemoryContextSwitchTo(rowcxt);
		for (uint64 r = 0; r < SPI_processed; r++)
		{
			SmxHistRow	t;

			smx_history_table_row(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, &t);
			/* memory rows that come first */
			while (m < nmem &&
				   (mem_rows[m].ts < t.ts ||
					(mem_rows[m].ts == t.ts && mem_rows[m].tick < t.tick)))
				smx_put_hist_row(rsinfo, server_id, &mem_rows[m++]);
			/* the same sample in both: flushed meanwhile; keep the table's */
			if (m < nmem && mem_rows[m].ts == t.ts && mem_rows[m].tick == t.tick)
				m++;
			smx_put_hist_row(rsinfo, server_id, &t);
		}
		MemoryContextSwitchTo(old);
		MemoryContextReset(rowcxt);
		if (SPI_processed == 0)
			break;
		SPI_freetuptable(SPI_tuptable);
		CHECK_FOR_INTERRUPTS();
	}
	SPI_cursor_close(portal);
	SPI_finish();
	while (m < nmem)
		smx_put_hist_row(rsinfo, server_id, &mem_rows[m++]);
	return (Datum) 0;
}

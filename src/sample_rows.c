/*
 * sample_rows.c — samples and rows: the one place a sample becomes a
 * history row, a current row, Redis text or a status event.
 *
 * Each of these shapes used to be written out where it was needed (the
 * history INSERT in the flush and again in the Redis recovery, the
 * current-metrics row in three readers, the Redis sample text encoded in
 * one file and decoded in another, the status event twice with different
 * escaping). A column added or a field changed is now one edit here, and
 * a coming writer of history rows (a backfill) takes the same builder.
 */
#include "postgres.h"

#include "libpq/pqformat.h"
#include "nodes/value.h"
#include "nodes/pg_list.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

#include "sim_metrics.h"

/* ---------------------------------------------------------------------
 * History rows: server_metrics_history, one INSERT ... SELECT unnest()
 * of column arrays through a kept plan.
 * --------------------------------------------------------------------- */

/* The columns the history INSERT writes, in the order of its arrays. */
static const struct
{
	const char *name;
	Oid			type;			/* element type */
	Oid			array_type;
}			smx_history_cols[SMX_HISTORY_INSERT_COLS] =
{
	{"server_id", TEXTOID, TEXTARRAYOID},
	{"cpu_usage", NUMERICOID, NUMERICARRAYOID},
	{"memory_usage", NUMERICOID, NUMERICARRAYOID},
	{"disk_usage", NUMERICOID, NUMERICARRAYOID},
	{"network_io", INT8OID, INT8ARRAYOID},
	{"status", TEXTOID, TEXTARRAYOID},
	{"\"timestamp\"", TIMESTAMPTZOID, TIMESTAMPTZARRAYOID},
	{"session_id", TEXTOID, TEXTARRAYOID},
	{"tick", INT8OID, INT8ARRAYOID},
	{"scenario_run_id", INT8OID, INT8ARRAYOID},
	{"anomaly_score", FLOAT4OID, FLOAT4ARRAYOID},
};

/* the columns that may be NULL, and where their null flags are kept */
#define SMX_HCOL_SESSION	7
#define SMX_HCOL_RUN		9
#define SMX_HCOL_ANOMALY	10

static SPIPlanPtr smx_insert_plan = NULL;
static Oid	smx_insert_plan_nsp = InvalidOid;
static int	smx_insert_plan_cols = 0;

/*
 * The columns of the history INSERT the table relid has: all, or all but
 * the last (anomaly_score) when the table predates 1.8, as it does while
 * this library runs an older extension version (before ALTER EXTENSION
 * UPDATE). The writes then go on without the score.
 */
int
smx_history_ncols(Oid relid)
{
	if (OidIsValid(relid) && get_attnum(relid, "anomaly_score") == InvalidAttrNumber)
		return SMX_HISTORY_INSERT_COLS - 1;
	return SMX_HISTORY_INSERT_COLS;
}

/*
 * The kept INSERT plan for the history table of schema nsp (SPI connected);
 * *ncols gets the columns it writes (smx_history_ncols). Made again when
 * the table gained or lost the score column.
 */
SPIPlanPtr
smx_history_insert_plan(Oid nsp, int *ncols_out)
{
	Oid			argtypes[SMX_HISTORY_INSERT_COLS];
	StringInfoData sql;
	SPIPlanPtr	plan;
	int			ncols = smx_history_ncols(get_relname_relid("server_metrics_history", nsp));

	*ncols_out = ncols;
	if (smx_insert_plan != NULL && smx_insert_plan_nsp == nsp && smx_insert_plan_cols == ncols)
		return smx_insert_plan;
	if (smx_insert_plan != NULL)
	{
		SPI_freeplan(smx_insert_plan);
		smx_insert_plan = NULL;
	}
	initStringInfo(&sql);
	appendStringInfo(&sql, "INSERT INTO %s.server_metrics_history (",
					 quote_identifier(get_namespace_name(nsp)));
	for (int c = 0; c < ncols; c++)
		appendStringInfo(&sql, "%s%s", c ? ", " : "", smx_history_cols[c].name);
	appendStringInfoString(&sql, ") SELECT ");
	for (int c = 0; c < ncols; c++)
	{
		appendStringInfo(&sql, "%spg_catalog.unnest($%d)", c ? ", " : "", c + 1);
		argtypes[c] = smx_history_cols[c].array_type;
	}
	plan = SPI_prepare(sql.data, ncols, argtypes);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed for the history insert: %s",
			 SPI_result_code_string(SPI_result));
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "SPI_keepplan failed");
	smx_insert_plan = plan;
	smx_insert_plan_nsp = nsp;
	smx_insert_plan_cols = ncols;
	pfree(sql.data);
	return plan;
}

/*
 * numeric datums of the hundredths 0..10000 (0.00 .. 100.00), built once
 * per backend: a flush then allocates no numeric per value.
 */
static Datum *smx_numeric_cache = NULL;

Datum
smx_hundredths_numeric(int16 v)
{
	if (v < 0 || v > 10000)
		return NumericGetDatum(int64_div_fast_to_numeric(v, 2));
	if (smx_numeric_cache == NULL)
		smx_numeric_cache = MemoryContextAllocZero(TopMemoryContext, sizeof(Datum) * 10001);
	if (smx_numeric_cache[v] == (Datum) 0)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		smx_numeric_cache[v] = NumericGetDatum(int64_div_fast_to_numeric(v, 2));
		MemoryContextSwitchTo(old);
	}
	return smx_numeric_cache[v];
}

/*
 * The first ncols history columns as COPY names them (unquoted), in the
 * order smx_sample_copy_binary writes them: the INSERT's columns.
 */
List *
smx_history_copy_columns(int ncols)
{
	List	   *cols = NIL;

	for (int c = 0; c < ncols; c++)
	{
		const char *name = smx_history_cols[c].name;
		size_t		len = strlen(name);

		if (name[0] == '"')
			cols = lappend(cols, makeString(pnstrdup(name + 1, len - 2)));
		else
			cols = lappend(cols, makeString(pstrdup(name)));
	}
	return cols;
}

/* COPY binary: the signature, flags and header extension, then the rows. */
void
smx_copy_binary_header(StringInfo out)
{
	static const char sig[11] = {'P', 'G', 'C', 'O', 'P', 'Y', '\n', '\377', '\r', '\n', '\0'};

	appendBinaryStringInfo(out, sig, sizeof(sig));
	pq_sendint32(out, 0);
	pq_sendint32(out, 0);
}

/* A numeric of hundredths in numeric_recv's form: base-10000 digits, scale 2. */
static inline void
smx_copy_hundredths(StringInfo out, int16 v)
{
	int			a = v < 0 ? -v : v;
	int			ip = a / 100,
				fr = a % 100;
	int16		digits[2];
	int			nd = 0;
	int16		weight = 0;

	if (ip > 0)
	{
		digits[nd++] = (int16) ip;
		if (fr > 0)
			digits[nd++] = (int16) (fr * 100);
	}
	else if (fr > 0)
	{
		digits[nd++] = (int16) (fr * 100);
		weight = -1;
	}
	pq_sendint32(out, 8 + 2 * nd);
	pq_sendint16(out, (uint16) nd);
	pq_sendint16(out, (uint16) weight);
	pq_sendint16(out, v < 0 ? 0x4000 : 0);
	pq_sendint16(out, 2);
	for (int k = 0; k < nd; k++)
		pq_sendint16(out, (uint16) digits[k]);
}

static inline void
smx_copy_textf(StringInfo out, const char *s, int len)
{
	pq_sendint32(out, (uint32) len);
	appendBinaryStringInfoNT(out, s, len);
}

static inline void
smx_copy_int8(StringInfo out, int64 v)
{
	pq_sendint32(out, 8);
	pq_sendint64(out, (uint64) v);
}

/*
 * One history row in COPY's binary format: the values the flush inserts
 * for the sample (same columns, same order). id and session are in the
 * client encoding (COPY converts text from it), with their lengths.
 */
void
smx_sample_copy_binary(StringInfo out, const SmxSample *s, const char *id, int id_len,
					   const char *session, int session_len, int ncols)
{
	const char *status = smx_status_names[s->status & 3];

	pq_sendint16(out, (int16) ncols);
	smx_copy_textf(out, id, id_len);
	smx_copy_hundredths(out, s->cpu);
	smx_copy_hundredths(out, s->memory);
	smx_copy_hundredths(out, s->disk);
	smx_copy_int8(out, s->network_io);
	smx_copy_textf(out, status, (int) strlen(status));
	smx_copy_int8(out, s->sim_time);
	smx_copy_textf(out, session, session_len);
	smx_copy_int8(out, s->tick);
	if (s->scenario_run != 0)
		smx_copy_int8(out, s->scenario_run);
	else
		pq_sendint32(out, (uint32) -1);
	if (ncols > SMX_HCOL_ANOMALY)
	{
		pq_sendint32(out, 4);
		pq_sendfloat4(out, SMX_SCORE_VALUE(s->anomaly));
	}
}

/* A one-dimensional array of n elements (nulls may be NULL: none). */
Datum
smx_history_array(Datum *elems, bool *nulls, int n, Oid type)
{
	int16		typlen;
	bool		typbyval;
	char		typalign;
	int			dims[1] = {n};
	int			lbs[1] = {1};

	get_typlenbyvalalign(type, &typlen, &typbyval, &typalign);
	return PointerGetDatum(construct_md_array(elems, nulls, 1, dims, lbs, type,
											  typlen, typbyval, typalign));
}

/*
 * Room for cap rows of the history table of schema nsp; prepares (or
 * finds) the kept plan, so SPI must be connected.
 */
void
smx_history_batch_init(SmxHistoryBatch *b, Oid nsp, int cap)
{
	memset(b, 0, sizeof(*b));
	b->plan = smx_history_insert_plan(nsp, &b->ncols);
	b->cap = Max(cap, 1);
	for (int c = 0; c < SMX_HISTORY_INSERT_COLS; c++)
		b->col[c] = palloc(sizeof(Datum) * b->cap);
	b->sess_null = palloc(sizeof(bool) * b->cap);
	b->run_null = palloc(sizeof(bool) * b->cap);
	b->anomaly_null = palloc(sizeof(bool) * b->cap);
	for (int i = 0; i < 4; i++)
		b->status_text[i] = CStringGetTextDatum(smx_status_names[i]);
}

/* Add one row (b->n < b->cap). */
void
smx_history_batch_add(SmxHistoryBatch *b, const SmxHistoryRow *r)
{
	int			k = b->n++;

	Assert(k < b->cap);
	b->col[0][k] = r->server_id;
	b->col[1][k] = smx_hundredths_numeric(r->pct[0]);
	b->col[2][k] = smx_hundredths_numeric(r->pct[1]);
	b->col[3][k] = smx_hundredths_numeric(r->pct[2]);
	b->col[4][k] = Int64GetDatum(r->network_io);
	b->col[5][k] = b->status_text[r->status & 3];
	b->col[6][k] = TimestampTzGetDatum(r->sim_time);
	b->sess_null[k] = r->session_id == (Datum) 0;
	b->col[SMX_HCOL_SESSION][k] = r->session_id;
	b->col[8][k] = Int64GetDatum(r->tick);
	b->run_null[k] = r->scenario_run == 0;
	b->col[SMX_HCOL_RUN][k] = Int64GetDatum(r->scenario_run);
	b->anomaly_null[k] = r->anomaly < 0;
	b->col[SMX_HCOL_ANOMALY][k] = Float4GetDatum(SMX_SCORE_VALUE(Max(r->anomaly, 0)));
}

/*
 * Insert the rows added since the last insert in one statement (as
 * whoever the caller runs as) and start the batch over, whatever happens.
 * Returns the rows inserted.
 */
int64
smx_history_batch_insert(SmxHistoryBatch *b)
{
	Datum		args[SMX_HISTORY_INSERT_COLS];
	int			k = b->n;
	int			ret;

	b->n = 0;
	if (k == 0)
		return 0;
	for (int c = 0; c < b->ncols; c++)
		args[c] = smx_history_array(b->col[c],
									c == SMX_HCOL_SESSION ? b->sess_null :
									c == SMX_HCOL_RUN ? b->run_null :
									c == SMX_HCOL_ANOMALY ? b->anomaly_null : NULL,
									k, smx_history_cols[c].type);
	ret = SPI_execute_plan(b->plan, args, NULL, false, 0);
	if (ret != SPI_OK_INSERT)
		elog(ERROR, "inserting into server_metrics_history failed: %s",
			 SPI_result_code_string(ret));
	for (int c = 0; c < b->ncols; c++)
		pfree(DatumGetPointer(args[c]));
	return (int64) SPI_processed;
}

/* ---------------------------------------------------------------------
 * Current rows: sim_current_metrics() and sim_server_metrics(), whether
 * the values come from shared memory or from the mirror's Redis hash.
 * --------------------------------------------------------------------- */

/* The status names as text datums, built once per backend. */
static Datum smx_status_datum[4];

static Datum
smx_status_text_datum(int status)
{
	if (smx_status_datum[0] == (Datum) 0)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		for (int i = 0; i < 4; i++)
			smx_status_datum[i] = CStringGetTextDatum(smx_status_names[i]);
		MemoryContextSwitchTo(old);
	}
	return smx_status_datum[status & 3];
}

/* The detector's signal names as text datums, built once per backend. */
static Datum smx_signal_datum[SMX_DETECT_SIGNALS + 1];

static Datum
smx_signal_text_datum(int signal)
{
	if (smx_signal_datum[0] == (Datum) 0)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		for (int i = 0; i <= SMX_DETECT_SIGNALS; i++)
			smx_signal_datum[i] = CStringGetTextDatum(smx_detect_signal_names[i]);
		MemoryContextSwitchTo(old);
	}
	return smx_signal_datum[signal];
}

/* The descriptive columns (id, name, hostname, role, location, environment). */
void
smx_current_desc_text(Datum *t, const SmxServerDesc *d, int role)
{
	t[0] = CStringGetTextDatum(d->id);
	t[1] = CStringGetTextDatum(d->name);
	t[2] = CStringGetTextDatum(d->hostname);
	t[3] = CStringGetTextDatum(smx_role_names[role]);
	t[4] = CStringGetTextDatum(d->location);
	t[5] = CStringGetTextDatum(d->environment);
}

/*
 * A live server's row: its state, the scenario of its run (runs names the
 * scenario of each run slot, smx_copy_run_names), its descriptive columns
 * as text (SMX_CURRENT_DESC_COLS) and the clock of the tick read.
 */
void
smx_current_from_state(SmxCurrentRow *r, const smx_state *s,
					   const char (*runs)[SMX_SCENARIO_LEN], const Datum *desc_text,
					   uint64 tick, TimestampTz sim_time, bool sim_time_valid,
					   TimestampTz updated_at)
{
	r->cpu = s->cpu;
	r->memory = s->memory;
	r->disk = s->disk;
	r->network_io = s->network_io;
	r->network = s->network;
	r->response_ms = s->response_ms;
	r->status = s->status;
	/* the run acting on it, by the scenario it runs */
	r->scenario = s->run == 0 || s->run > SMX_MAX_RUNS ? NULL : runs[s->run];
	r->desc_text = desc_text;
	r->id = NULL;
	r->tick = (int64) tick;
	r->sim_time = sim_time;
	r->sim_time_valid = sim_time_valid;
	r->updated_at = updated_at;
	r->updated_valid = updated_at != 0;
	r->anomaly = smx_score_shown(s->anomaly);
	r->anomaly_signal = r->anomaly > 0 ? Min(s->anomaly_signal, SMX_DETECT_SIGNALS) : -1;
}

/* One row of sim_current_metrics() into values/nulls (SMX_CURRENT_COLS). */
void
smx_current_row_values(const SmxCurrentRow *r, Datum *values, bool *nulls)
{
	memset(nulls, 0, sizeof(bool) * SMX_CURRENT_COLS);
	if (r->desc_text != NULL)
		memcpy(values, r->desc_text, SMX_CURRENT_DESC_COLS * sizeof(Datum));
	else
		values[0] = CStringGetTextDatum(r->id);
	values[6] = smx_pct_datum(r->cpu);
	values[7] = smx_pct_datum(r->memory);
	values[8] = smx_pct_datum(r->disk);
	values[9] = Int64GetDatum(r->network_io);
	values[10] = smx_pct_datum(r->network);
	values[11] = smx_pct_datum(r->response_ms);
	values[12] = smx_status_text_datum(r->status);
	nulls[13] = r->scenario == NULL;
	values[13] = nulls[13] ? (Datum) 0 : CStringGetTextDatum(r->scenario);
	values[14] = Int64GetDatum(r->tick);
	values[15] = TimestampTzGetDatum(r->sim_time);
	nulls[15] = !r->sim_time_valid;
	values[16] = TimestampTzGetDatum(r->updated_at);
	nulls[16] = !r->updated_valid;
	nulls[17] = r->anomaly < 0;
	values[17] = Float8GetDatum(r->anomaly);
	nulls[18] = r->anomaly_signal < 0;
	values[18] = nulls[18] ? (Datum) 0 : smx_signal_text_datum(r->anomaly_signal);
}

/* ---------------------------------------------------------------------
 * Sample text: how Redis keeps a sample (the journal's values, the
 * members of samples:{id}), "tick|sim_time|cpu|memory|disk|network_io|
 * status|session|anomaly" (1.7 wrote no anomaly field; it is still read).
 * The mirror encodes it, the recovery decodes it: the two sides of the
 * format sit here together.
 * --------------------------------------------------------------------- */

/*
 * Encode a sample into dst (size bytes, SMX_SAMPLE_TEXT_MAX will do); tick
 * and sim_time come as text, formatted once for many samples. Returns the
 * length.
 */
int
smx_sample_encode(char *dst, int size, const char *tick, const char *sim_time,
				  double cpu, double memory, double disk, int64 network_io,
				  int status, const char *session, int anomaly)
{
	int			m = snprintf(dst, size, "%s|%s|", tick, sim_time);

	m += smx_fmt_pct(dst + m, cpu);
	dst[m++] = '|';
	m += smx_fmt_pct(dst + m, memory);
	dst[m++] = '|';
	m += smx_fmt_pct(dst + m, disk);
	dst[m++] = '|';
	m += smx_fmt_int64(dst + m, network_io);
	m += snprintf(dst + m, size - m, "|%s|%s|", smx_status_names[status & 3], session);
	if (m < size - 8)
		m += smx_fmt_score(dst + m, anomaly);
	return Min(m, size - 1);
}

/* A percentage with at most two decimals in [0, 100] as hundredths. */
static bool
smx_text_pct(const char *s, int16 *out)
{
	char	   *end;
	double		v;

	errno = 0;
	v = strtod(s, &end);
	if (*s == '\0' || *end != '\0' || errno != 0 || !isfinite(v) || v < 0 || v > 100)
		return false;
	*out = (int16) rint(v * 100.0);
	return true;
}

/* A whole decimal int64, nothing else. */
bool
smx_text_int64(const char *s, int64 *out)
{
	char	   *end;

	errno = 0;
	*out = strtoll(s, &end, 10);
	return *s != '\0' && *end == '\0' && errno == 0;
}

/*
 * Decode a sample text of len bytes (not NUL-terminated), checking every
 * field; false when anything is off.
 */
bool
smx_sample_decode(const char *text, size_t len, SmxRedisSample *r)
{
	char		buf[SMX_SAMPLE_TEXT_MAX];
	char	   *f[9];
	int			nf = 0;
	double		epoch;
	double		usecs;

	if (len == 0 || len >= sizeof(buf) || memchr(text, '\0', len) != NULL)
		return false;
	memcpy(buf, text, len);
	buf[len] = '\0';
	f[nf++] = buf;
	for (char *c = buf; *c; c++)
		if (*c == '|')
		{
			if (nf == 9)
				return false;
			*c = '\0';
			f[nf++] = c + 1;
		}
	if (nf < 8 || !smx_text_int64(f[0], &r->tick) || r->tick <= 0 ||
		!smx_text_pct(f[2], &r->pct[0]) || !smx_text_pct(f[3], &r->pct[1]) ||
		!smx_text_pct(f[4], &r->pct[2]) ||
		!smx_text_int64(f[5], &r->network_io) || r->network_io < 0)
		return false;
	if (!smx_parse_iso8601(f[1], &epoch))
		return false;
	usecs = rint((epoch - (double) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY) *
				 USECS_PER_SEC);
	if (!(usecs >= (double) MIN_TIMESTAMP && usecs < (double) END_TIMESTAMP))
		return false;
	r->sim_time = (TimestampTz) usecs;
	r->status = 255;
	for (int i = 0; i < 4; i++)
		if (strcmp(f[6], smx_status_names[i]) == 0)
			r->status = (uint8) i;
	if (r->status == 255 || strlen(f[7]) >= SMX_SESSION_LEN)
		return false;
	for (const char *c = f[7]; *c; c++)
		if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'z') || *c == '-'))
			return false;
	strlcpy(r->session, f[7], SMX_SESSION_LEN);
	r->anomaly = -1;
	if (nf == 9)
	{
		char	   *end;
		double		v;

		errno = 0;
		v = strtod(f[8], &end);
		if (*f[8] == '\0' || *end != '\0' || errno != 0 || !(v >= 0.0 && v <= 1.0))
			return false;
		r->anomaly = (int16) rint(v * 10000.0);
	}
	return true;
}

/* ---------------------------------------------------------------------
 * Status events: a server's status changed. The same JSON goes out as
 * the NOTIFY sim_metrics_status payload and on Redis {prefix}events.
 * --------------------------------------------------------------------- */

/*
 * Append the event to buf: {"server_id", "from", "to", "tick", "sim_time"}
 * and "scenario_run_id" when a run acts on the server (scenario_run != 0).
 * Strings are JSON-escaped. Well under NOTIFY's 8000-byte limit.
 */
void
smx_status_event(StringInfo buf, const char *server_id, int from, int to, int64 tick,
				 const char *sim_time, int64 scenario_run)
{
	appendStringInfoString(buf, "{\"server_id\": ");
	escape_json(buf, server_id);
	appendStringInfo(buf, ", \"from\": \"%s\", \"to\": \"%s\", \"tick\": " INT64_FORMAT,
					 smx_status_names[from & 3], smx_status_names[to & 3], tick);
	appendStringInfoString(buf, ", \"sim_time\": ");
	escape_json(buf, sim_time);
	if (scenario_run != 0)
		appendStringInfo(buf, ", \"scenario_run_id\": " INT64_FORMAT, scenario_run);
	appendStringInfoChar(buf, '}');
}

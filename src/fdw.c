/*
 * fdw.c — sim_current: the live fleet as a foreign table whose scan hands
 * rows straight from a private copy of shared memory to the executor.
 *
 * A set-returning function in FROM is always materialised into a
 * tuplestore, which spills to a temporary file past work_mem; a foreign
 * scan is not. The scan copies one tick under publish_lock shared, as
 * sim_current_metrics() always has, and forms a row only when the executor
 * asks for it (no column at all for count(*)).
 *
 * Pushed down, and then not evaluated again: equality of server_id,
 * status, role or location with a constant or a parameter, and = ANY of an
 * array of them, under a deterministic collation (byte equality, which is
 * what the scan compares). A condition on server_id reads by binary search:
 * in shared memory, copying only the servers named, when the ids are known
 * for the whole scan and few; else in a copy of the fleet. Either way a
 * scan reads one copy, one tick, however often it is rescanned. EXPLAIN
 * shows what was pushed and how the fleet is read.
 *
 * Locking: publish_lock shared while copying, nothing held between rows.
 * The backend keeps one copy of the whole fleet between statements (no
 * fresh pages each read; the states copied only when state_version moved,
 * the descriptive columns' text rebuilt only when the fleet changed). A
 * scan pins that copy until its query's memory goes; a second scan while
 * it is pinned (a self-join, an open cursor) makes a copy of its own, so
 * the text a pinned copy hands out never changes under a scan.
 */
#include "postgres.h"

#include "access/reloptions.h"
#include "catalog/pg_operator_d.h"
#include "catalog/pg_type_d.h"
#include "commands/defrem.h"
#include "commands/explain.h"
#include "executor/executor.h"
#include "fmgr.h"
#include "foreign/fdwapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/cost.h"
#include "optimizer/optimizer.h"
#include "optimizer/pathnode.h"
#include "optimizer/planmain.h"
#include "optimizer/restrictinfo.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/tuplestore.h"

#include "compat.h"
#include "sim_metrics.h"

PG_FUNCTION_INFO_V1(sim_fdw_handler);
PG_FUNCTION_INFO_V1(sim_fdw_validator);

/* The columns a condition may be pushed on (0-based, as in sim_current). */
#define SMX_COL_ID			0
#define SMX_COL_ROLE		3
#define SMX_COL_LOCATION	4
#define SMX_COL_STATUS		12

/* sim_current's column types, checked before a scan reads a row into them */
static const Oid smx_fdw_col_types[SMX_CURRENT_COLS] = {
	TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID,
	FLOAT8OID, FLOAT8OID, FLOAT8OID, INT8OID, FLOAT8OID, FLOAT8OID,
	TEXTOID, TEXTOID, INT8OID, TIMESTAMPTZOID, TIMESTAMPTZOID,
	FLOAT8OID, TEXTOID
};

static const char *const smx_fdw_col_names[SMX_CURRENT_COLS] = {
	[SMX_COL_ID] = "server_id", [SMX_COL_ROLE] = "role",
	[SMX_COL_LOCATION] = "location", [SMX_COL_STATUS] = "status"
};

StaticAssertDecl(SMX_ROLE_COUNT <= 64, "role_mask holds a bit a role");

/* ---------------------------------------------------------------------
 * Planning
 * --------------------------------------------------------------------- */

/* What GetForeignRelSize found, for GetForeignPlan. */
typedef struct SmxFdwRel
{
	List	   *pushed;			/* RestrictInfos pushed down */
	double		servers;		/* the fleet's size when planned */
	double		copied;			/* servers a scan copies */
} SmxFdwRel;

/*
 * Is clause "col = value" or "col = ANY (value)" on a column we push, with
 * value a Const or a Param? Fills *col, *is_array and *value.
 */
static bool
smx_fdw_pushable(RelOptInfo *rel, Expr *clause, int *col, bool *is_array, Expr **value)
{
	Node	   *l;
	Node	   *r;
	Oid			opno;
	Oid			collid;
	bool		arr;
	Var		   *var;

	if (IsA(clause, OpExpr))
	{
		OpExpr	   *op = (OpExpr *) clause;

		if (list_length(op->args) != 2)
			return false;
		opno = op->opno;
		collid = op->inputcollid;
		l = linitial(op->args);
		r = lsecond(op->args);
		arr = false;
	}
	else if (IsA(clause, ScalarArrayOpExpr))
	{
		ScalarArrayOpExpr *sa = (ScalarArrayOpExpr *) clause;

		if (!sa->useOr)
			return false;
		opno = sa->opno;
		collid = sa->inputcollid;
		l = linitial(sa->args);
		r = lsecond(sa->args);
		arr = true;
	}
	else
		return false;
	if (opno != TextEqualOperator)
		return false;
	/* byte equality is what the scan compares */
	if (OidIsValid(collid) && !get_collation_isdeterministic(collid))
		return false;
	if (!arr && !IsA(l, Var))
	{
		Node	   *t = l;

		l = r;
		r = t;
	}
	if (IsA(r, RelabelType))
		r = (Node *) ((RelabelType *) r)->arg;
	if (!IsA(l, Var) || !(IsA(r, Const) || IsA(r, Param)))
		return false;
	var = (Var *) l;
	if ((Index) var->varno != rel->relid || var->varlevelsup != 0 || var->vartype != TEXTOID)
		return false;
	switch (var->varattno - 1)
	{
		case SMX_COL_ID:
		case SMX_COL_ROLE:
		case SMX_COL_LOCATION:
		case SMX_COL_STATUS:
			break;
		default:
			return false;
	}
	*col = var->varattno - 1;
	*is_array = arr;
	*value = (Expr *) r;
	return true;
}

/* How many elements a constant array has; -1 when not a non-null Const. */
static int
smx_fdw_const_array_len(Expr *value)
{
	Const	   *c = (Const *) value;

	if (!IsA(value, Const) || c->constisnull)
		return -1;
	{
		ArrayType  *a = DatumGetArrayTypeP(c->constvalue);

		return ArrayGetNItems(ARR_NDIM(a), ARR_DIMS(a));
	}
}

static void
smx_fdw_rel_size(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid)
{
	SmxFdwRel  *fr = palloc0(sizeof(SmxFdwRel));
	double		keys = -1;		/* servers a binary search finds at most */
	ListCell   *lc;

	/* an unlocked read: an estimate */
	fr->servers = smx_shared != NULL ? smx_shared->fleet.nservers : 0;
	foreach(lc, baserel->baserestrictinfo)
	{
		RestrictInfo *ri = lfirst_node(RestrictInfo, lc);
		int			col;
		bool		is_array;
		Expr	   *value;

		if (ri->pseudoconstant ||
			!smx_fdw_pushable(baserel, ri->clause, &col, &is_array, &value))
			continue;
		fr->pushed = lappend(fr->pushed, ri);
		if (col == SMX_COL_ID)
		{
			double		k = is_array ? smx_fdw_const_array_len(value) : 1;

			if (k < 0)
				k = 10;			/* an array parameter: a guess */
			keys = keys < 0 ? k : Min(keys, k);
		}
	}
	fr->copied = keys < 0 ? fr->servers : Min(keys, fr->servers);
	baserel->tuples = fr->servers;
	baserel->rows = clamp_row_est(Min(fr->copied,
									  fr->servers * clauselist_selectivity(root, baserel->baserestrictinfo,
																		   0, JOIN_INNER, NULL)));
	baserel->fdw_private = fr;
}

static void
smx_fdw_paths(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid)
{
	SmxFdwRel  *fr = baserel->fdw_private;

	/* a copy of each server read under the lock, then a row a match */
	Cost		startup = fr->copied * cpu_operator_cost;
	Cost		total = startup + fr->copied * cpu_operator_cost + baserel->rows * cpu_tuple_cost;

	add_path(baserel, (Path *)
			 SMX_CREATE_FOREIGNSCAN_PATH(root, baserel, NULL, baserel->rows, startup, total,
										 NIL, NULL, NULL, NIL));
}

/* The text of a pushed value for EXPLAIN. */
static void
smx_fdw_explain_value(StringInfo s, Expr *value)
{
	if (IsA(value, Param))
		appendStringInfo(s, "$%d", ((Param *) value)->paramid);
	else if (((Const *) value)->constisnull)
		appendStringInfoString(s, "NULL");
	else
	{
		Const	   *c = (Const *) value;
		Oid			out;
		bool		varlena;

		getTypeOutputInfo(c->consttype, &out, &varlena);
		appendStringInfoString(s, quote_literal_cstr(OidOutputFunctionCall(out, c->constvalue)));
	}
}

/*
 * fdw_private of the plan: [0] the pushed conditions as Integers
 * (column * 2 + is_array), [1] the text EXPLAIN shows, [2] whether the
 * scan forms columns at all (Integer 0/1). fdw_exprs: the pushed values,
 * in the order of [0].
 */
static ForeignScan *
smx_fdw_plan(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid,
			 ForeignPath *best_path, List *tlist, List *scan_clauses, Plan *outer_plan)
{
	SmxFdwRel  *fr = baserel->fdw_private;
	List	   *local = NIL;
	List	   *conds = NIL;
	List	   *values = NIL;
	StringInfoData text;
	Bitmapset  *attrs = NULL;
	ListCell   *lc;

	initStringInfo(&text);
	foreach(lc, scan_clauses)
	{
		RestrictInfo *ri = lfirst_node(RestrictInfo, lc);
		int			col;
		bool		is_array;
		Expr	   *value;

		if (ri->pseudoconstant)
			continue;			/* the planner gates the scan on these */
		if (!list_member_ptr(fr->pushed, ri) ||
			!smx_fdw_pushable(baserel, ri->clause, &col, &is_array, &value))
		{
			local = lappend(local, ri->clause);
			continue;
		}
		conds = lappend(conds, makeInteger(col * 2 + (is_array ? 1 : 0)));
		values = lappend(values, value);
		appendStringInfo(&text, "%s(%s = %s", text.len > 0 ? " AND " : "",
						 smx_fdw_col_names[col], is_array ? "ANY (" : "");
		smx_fdw_explain_value(&text, value);
		appendStringInfoString(&text, is_array ? "))" : ")");
	}
	/* columns anyone reads: none for count(*) */
	pull_varattnos((Node *) baserel->reltarget->exprs, baserel->relid, &attrs);
	pull_varattnos((Node *) local, baserel->relid, &attrs);

	return make_foreignscan(tlist, local, baserel->relid, values,
							list_make3(conds, makeString(text.data),
									   makeInteger(attrs != NULL ? 1 : 0)),
							NIL, NIL, outer_plan);
}

/* ---------------------------------------------------------------------
 * The copy a scan reads
 * --------------------------------------------------------------------- */

typedef struct SmxFdwSnap
{
	MemoryContext cxt;			/* owns the arrays */
	MemoryContext text_cxt;		/* owns the text datums */
	int			cap;
	int			n;
	smx_state  *state;
	SmxServerDesc *desc;
	uint8	   *role;
	Datum	   *text;			/* SMX_CURRENT_DESC_COLS a server */
	char		runs[SMX_MAX_RUNS + 1][SMX_SCENARIO_LEN];
	uint64		tick;
	TimestampTz sim_time;
	bool		sim_time_valid;
	TimestampTz updated_at;
	/* the backend's copy of the whole fleet only */
	bool		valid;			/* desc, role and text match fleet_version */
	uint64		fleet_version;
	uint64		state_version;
	bool		state_valid;
	uint64		pin;			/* the scan holding it (0 = none) */
	/* the formed values of every row, for fleets up to SMX_FDW_ROWS_MAX */
	MemoryContext rows_cxt;
	Datum	   *vals;			/* SMX_CURRENT_COLS a server */
	bool	   *nulls;
	bool		rows_valid;		/* they show the states and clock copied */
} SmxFdwSnap;

static SmxFdwSnap smx_fdw_fleet;	/* the backend's copy */
static uint64 smx_fdw_pins = 0;		/* pin numbers handed out */

/*
 * Make s hold at least n servers; the contents are not kept. In the
 * backend's copy an allocation failure leaves the old arrays in place.
 */
static void
smx_fdw_reserve(SmxFdwSnap *s, int n)
{
	smx_state  *state;
	SmxServerDesc *desc;
	uint8	   *role;

	if (n <= s->cap)
		return;
	n = Max(n, 64);
	smx_alloc_fleet_copy(s->cxt, n, &state, &desc, &role);
	if (s->state)
	{
		pfree(s->state);
		pfree(s->desc);
		pfree(s->role);
	}
	s->state = state;
	s->desc = desc;
	s->role = role;
	s->cap = n;
	s->valid = false;
	s->state_valid = false;
}

/* The descriptive columns' text of s's n servers, anew. */
static void
smx_fdw_build_text(SmxFdwSnap *s)
{
	MemoryContext old;

	if (s->text_cxt == NULL)
		s->text_cxt = AllocSetContextCreate(s->cxt, "sim_current text", ALLOCSET_DEFAULT_SIZES);
	else
		MemoryContextReset(s->text_cxt);
	s->text = MemoryContextAllocHuge(s->text_cxt,
									 sizeof(Datum) * SMX_CURRENT_DESC_COLS * Max(s->n, 1));
	old = MemoryContextSwitchTo(s->text_cxt);
	for (int i = 0; i < s->n; i++)
		smx_current_desc_text(&s->text[i * SMX_CURRENT_DESC_COLS], &s->desc[i], s->role[i]);
	MemoryContextSwitchTo(old);
}

/* The clock of the tick; caller holds publish_lock. */
static void
smx_fdw_copy_clock(SmxFdwSnap *s)
{
	smx_copy_run_names(s->runs);
	s->tick = smx_shared->fleet.tick;
	s->updated_at = smx_shared->fleet.last_tick_at;
	s->sim_time_valid = smx_epoch_to_timestamptz(smx_sim_epoch_at(s->tick), &s->sim_time);
}

/*
 * The whole fleet into s: the states when state_version moved, the
 * descriptions and their text when the fleet changed. The arrays are sized
 * from an unlocked read of nservers; if a reload grew the fleet in
 * between we release and try again, so nothing is allocated under the lock.
 */
static void
smx_fdw_copy_fleet(SmxFdwSnap *s)
{
	bool		fleet_changed;

	for (;;)
	{
		smx_fdw_reserve(s, smx_shared->fleet.nservers);
		LWLockAcquire(smx_shared->publish_lock, LW_SHARED);
		if (smx_shared->fleet.nservers <= s->cap)
			break;
		LWLockRelease(smx_shared->publish_lock);
	}
	fleet_changed = !s->valid || s->fleet_version != smx_shared->fleet.version;
	s->n = smx_shared->fleet.nservers;
	if (fleet_changed)
	{
		smx_params *params = smx_shared_params();

		s->valid = false;
		if (s->n > 0)
			memcpy(s->desc, smx_shared_desc(), s->n * sizeof(SmxServerDesc));
		for (int i = 0; i < s->n; i++)
			s->role[i] = params[i].role;
		s->fleet_version = smx_shared->fleet.version;
	}
	if (fleet_changed || !s->state_valid || s->state_version != smx_shared->fleet.state_version)
	{
		if (s->n > 0)
			memcpy(s->state, smx_shared_state(), s->n * sizeof(smx_state));
		s->state_version = smx_shared->fleet.state_version;
		s->state_valid = true;
		s->rows_valid = false;
	}
	smx_fdw_copy_clock(s);
	LWLockRelease(smx_shared->publish_lock);
	if (fleet_changed)
	{
		smx_fdw_build_text(s);
		s->valid = true;
	}
}

/*
 * The backend's copy keeps its rows' formed values while the state they
 * show does not change (a tick comes every tick_interval; dashboards read
 * far more often), so a read copies 19 values a row instead of forming
 * them. Up to SMX_FDW_ROWS_MAX servers (about 170 bytes a server).
 */
#define SMX_FDW_ROWS_MAX	10000

/* Form row i of s into values/nulls. */
static void
smx_fdw_form_row(const SmxFdwSnap *s, int i, Datum *values, bool *nulls)
{
	SmxCurrentRow r;

	smx_current_from_state(&r, &s->state[i], s->runs, &s->text[i * SMX_CURRENT_DESC_COLS],
						   s->tick, s->sim_time, s->sim_time_valid, s->updated_at);
	smx_current_row_values(&r, values, nulls);
}

static void
smx_fdw_build_rows(SmxFdwSnap *s)
{
	MemoryContext old;

	s->rows_valid = false;
	if (s->rows_cxt == NULL)
		s->rows_cxt = AllocSetContextCreate(s->cxt, "sim_current rows", ALLOCSET_DEFAULT_SIZES);
	else
		MemoryContextReset(s->rows_cxt);
	old = MemoryContextSwitchTo(s->rows_cxt);
	s->vals = palloc(sizeof(Datum) * SMX_CURRENT_COLS * Max(s->n, 1));
	s->nulls = palloc(sizeof(bool) * SMX_CURRENT_COLS * Max(s->n, 1));
	/* a scenario's text is made here, in rows_cxt */
	for (int i = 0; i < s->n; i++)
		smx_fdw_form_row(s, i, &s->vals[i * SMX_CURRENT_COLS], &s->nulls[i * SMX_CURRENT_COLS]);
	MemoryContextSwitchTo(old);
	s->rows_valid = true;
}

/* Before reading rows of s: the backend's copy forms them all, if it keeps them. */
static void
smx_fdw_prepare_rows(SmxFdwSnap *s)
{
	if (s == &smx_fdw_fleet && !s->rows_valid && s->n <= SMX_FDW_ROWS_MAX)
		smx_fdw_build_rows(s);
}

/* Row i of s into values/nulls: the kept values, or formed now. */
static void
smx_fdw_get_row(const SmxFdwSnap *s, int i, Datum *values, bool *nulls)
{
	if (s == &smx_fdw_fleet && s->rows_valid)
	{
		memcpy(values, &s->vals[i * SMX_CURRENT_COLS], sizeof(Datum) * SMX_CURRENT_COLS);
		memcpy(nulls, &s->nulls[i * SMX_CURRENT_COLS], sizeof(bool) * SMX_CURRENT_COLS);
	}
	else
		smx_fdw_form_row(s, i, values, nulls);
}

/*
 * The servers of nkeys ids (sorted, unique) into s, by binary search, in
 * id order; ids not in the fleet are left out.
 */
static void
smx_fdw_copy_ids(SmxFdwSnap *s, char **keys, int nkeys)
{
	const SmxServerDesc *desc;
	smx_params *params;
	smx_state  *state;
	int			m = 0;

	smx_fdw_reserve(s, nkeys);
	LWLockAcquire(smx_shared->publish_lock, LW_SHARED);
	desc = smx_shared_desc();
	params = smx_shared_params();
	state = smx_shared_state();
	for (int k = 0; k < nkeys; k++)
	{
		int			i = smx_desc_find(desc, smx_shared->fleet.nservers, keys[k]);

		if (i < 0)
			continue;
		s->desc[m] = desc[i];
		s->state[m] = state[i];
		s->role[m] = params[i].role;
		m++;
	}
	smx_fdw_copy_clock(s);
	LWLockRelease(smx_shared->publish_lock);
	s->n = m;
	smx_fdw_build_text(s);
}

/*
 * A copy of the whole fleet, one tick: the backend's copy, pinned under a
 * new pin number in *pin, when no one holds it; else one in cxt (*pin = 0).
 */
static SmxFdwSnap *
smx_fdw_take_fleet(MemoryContext cxt, uint64 *pin)
{
	SmxFdwSnap *s;

	if (smx_fdw_fleet.cxt == NULL)
		smx_fdw_fleet.cxt = AllocSetContextCreate(TopMemoryContext, "sim_current copy",
												  ALLOCSET_DEFAULT_SIZES);
	*pin = 0;
	if (smx_fdw_fleet.pin == 0)
	{
		*pin = smx_fdw_fleet.pin = ++smx_fdw_pins;
		s = &smx_fdw_fleet;
	}
	else
	{
		s = MemoryContextAllocZero(cxt, sizeof(SmxFdwSnap));
		s->cxt = cxt;
	}
	smx_fdw_copy_fleet(s);
	return s;
}

/* Let go of the backend's copy if pin holds it. */
static void
smx_fdw_unpin(uint64 pin)
{
	if (pin != 0 && smx_fdw_fleet.pin == pin)
		smx_fdw_fleet.pin = 0;
}

/* ---------------------------------------------------------------------
 * Execution
 * --------------------------------------------------------------------- */

/* A set of strings a column must be one of. */
typedef struct SmxFdwStrSet
{
	int			col;
	int			n;
	char	  **v;				/* sorted, unique */
} SmxFdwStrSet;

typedef struct SmxFdwScan
{
	/* from the plan */
	int			ncond;
	int		   *cond_col;
	bool	   *cond_array;
	ExprState **cond_value;
	bool		form_columns;
	const char *pushed_text;
	MemoryContext query_cxt;	/* lives as long as the scan */
	MemoryContext cond_cxt;		/* the evaluated conditions, reset each (re)scan */
	MemoryContextCallback unpin;

	bool		by_id;			/* a condition on server_id: read by search */
	bool		varying;		/* a value is a subplan's or a join's parameter:
								 * it may change at each rescan */

	/* the evaluated conditions (at the first row asked for: a parameter
	 * of a subplan has no value before) */
	bool		conds_ready;
	bool		none;			/* a condition no server can meet */
	uint32		status_mask;
	uint64		role_mask;
	int			nsets;
	SmxFdwStrSet *sets;
	int			key_set;		/* the server_id set searched, -1 = none */

	/* the rows */
	SmxFdwSnap *snap;			/* NULL until the first row is asked for */
	bool		lookup;			/* snap holds only the servers searched */
	int		   *rows;			/* the rows of snap to visit, or NULL: all */
	int			nrows;
	uint64		pin;			/* its pin of the backend's copy, 0 = none */
	int			pos;
	int64		copied;			/* servers copied, for EXPLAIN ANALYZE */
} SmxFdwScan;

static void
smx_fdw_release(SmxFdwScan *sc)
{
	smx_fdw_unpin(sc->pin);
	sc->pin = 0;
}

/* The query's memory is going (at the end, or on an error): let go. */
static void
smx_fdw_unpin_cb(void *arg)
{
	smx_fdw_release((SmxFdwScan *) arg);
}

/* The relation the scan reads must have sim_current's columns. */
static void
smx_fdw_check_relation(Relation rel)
{
	TupleDesc	td = RelationGetDescr(rel);
	bool		ok = td->natts == SMX_CURRENT_COLS;

	for (int i = 0; ok && i < td->natts; i++)
	{
		Form_pg_attribute a = TupleDescAttr(td, i);

		ok = !a->attisdropped && a->atttypid == smx_fdw_col_types[i];
	}
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_COLUMN_NUMBER),
				 errmsg("foreign table \"%s\" does not have the columns of sim_current_metrics()",
						RelationGetRelationName(rel)),
				 errhint("Read the extension's own table sim_current; a foreign table of sim_metrics_fdw must have exactly its columns.")));
}

static int
smx_fdw_strcmp(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

/* The bit of name among names[0..n-1], 0 when none. */
static uint64
smx_fdw_name_bit(const char *name, const char *const *names, int n)
{
	for (int i = 0; i < n; i++)
		if (strcmp(name, names[i]) == 0)
			return UINT64CONST(1) << i;
	return 0;
}

/* Evaluate the pushed values anew (at the start and at each rescan). */
static void
smx_fdw_eval_conds(ForeignScanState *node, SmxFdwScan *sc)
{
	ExprContext *econtext = node->ss.ps.ps_ExprContext;
	MemoryContext old;

	MemoryContextReset(sc->cond_cxt);
	old = MemoryContextSwitchTo(sc->cond_cxt);
	sc->none = false;
	sc->status_mask = ~(uint32) 0;
	sc->role_mask = ~UINT64CONST(0);
	sc->nsets = 0;
	sc->sets = palloc0(sizeof(SmxFdwStrSet) * Max(sc->ncond, 1));
	sc->key_set = -1;
	for (int c = 0; c < sc->ncond && !sc->none; c++)
	{
		bool		isnull;
		Datum		v = ExecEvalExpr(sc->cond_value[c], econtext, &isnull);
		Datum	   *elems = &v;
		bool	   *elem_nulls = NULL;
		int			n = 1;
		char	  **strs;
		int			m = 0;

		if (isnull)
		{
			sc->none = true;	/* = NULL, = ANY (NULL): never true */
			break;
		}
		if (sc->cond_array[c])
		{
			/* text[], or an array of a type binary-compatible with text */
			ArrayType  *a = DatumGetArrayTypeP(v);
			int16		typlen;
			bool		typbyval;
			char		typalign;

			get_typlenbyvalalign(ARR_ELEMTYPE(a), &typlen, &typbyval, &typalign);
			deconstruct_array(a, ARR_ELEMTYPE(a), typlen, typbyval, typalign,
							  &elems, &elem_nulls, &n);
		}
		strs = palloc(sizeof(char *) * Max(n, 1));
		for (int e = 0; e < n; e++)
			if (elem_nulls == NULL || !elem_nulls[e])
				strs[m++] = TextDatumGetCString(elems[e]);
		if (sc->cond_col[c] == SMX_COL_STATUS || sc->cond_col[c] == SMX_COL_ROLE)
		{
			uint64		mask = 0;

			for (int e = 0; e < m; e++)
				mask |= sc->cond_col[c] == SMX_COL_STATUS ?
					smx_fdw_name_bit(strs[e], smx_status_names, 4) :
					smx_fdw_name_bit(strs[e], smx_role_names, SMX_ROLE_COUNT);
			if (sc->cond_col[c] == SMX_COL_STATUS)
				sc->status_mask &= (uint32) mask;
			else
				sc->role_mask &= mask;
			sc->none = sc->status_mask == 0 || sc->role_mask == 0;
		}
		else
		{
			SmxFdwStrSet *set = &sc->sets[sc->nsets++];
			int			u = 0;

			qsort(strs, m, sizeof(char *), smx_fdw_strcmp);
			for (int e = 0; e < m; e++)
				if (u == 0 || strcmp(strs[u - 1], strs[e]) != 0)
					strs[u++] = strs[e];
			set->col = sc->cond_col[c];
			set->n = u;
			set->v = strs;
			sc->none = u == 0;
			/* the smallest set of ids is the one searched */
			if (set->col == SMX_COL_ID &&
				(sc->key_set < 0 || set->n < sc->sets[sc->key_set].n))
				sc->key_set = sc->nsets - 1;
		}
	}
	MemoryContextSwitchTo(old);
}

/* Does row i of the copy meet every pushed condition? */
static bool
smx_fdw_row_passes(const SmxFdwScan *sc, const SmxFdwSnap *s, int i)
{
	if (!((sc->status_mask >> (s->state[i].status & 3)) & 1) ||
		!((sc->role_mask >> s->role[i]) & 1))
		return false;
	for (int k = 0; k < sc->nsets; k++)
	{
		const SmxFdwStrSet *set = &sc->sets[k];
		const char *v = set->col == SMX_COL_ID ? s->desc[i].id : s->desc[i].location;

		if (k == sc->key_set)
			continue;			/* what the search found */
		if (bsearch(&v, set->v, set->n, sizeof(char *), smx_fdw_strcmp) == NULL)
			return false;
	}
	return true;
}

/*
 * Take the copy the scan reads, once a scan: one tick, however often a join
 * or a subplan rescans it. Ids known for the whole scan (constants, the
 * statement's parameters), at most SMX_FDW_LOOKUP_MAX of them, are searched
 * in shared memory and only their servers copied; otherwise (ids that
 * change at each rescan, or many of them) the whole fleet is copied, a
 * bounded memcpy under the lock, and the ids are searched in the copy.
 */
#define SMX_FDW_LOOKUP_MAX	1024

static void
smx_fdw_read(SmxFdwScan *sc)
{
	if (sc->key_set >= 0 && !sc->varying && sc->sets[sc->key_set].n <= SMX_FDW_LOOKUP_MAX)
	{
		sc->snap = MemoryContextAllocZero(sc->query_cxt, sizeof(SmxFdwSnap));
		sc->snap->cxt = sc->query_cxt;
		smx_fdw_copy_ids(sc->snap, sc->sets[sc->key_set].v, sc->sets[sc->key_set].n);
		sc->lookup = true;
	}
	else
		sc->snap = smx_fdw_take_fleet(sc->query_cxt, &sc->pin);
	sc->copied += sc->snap->n;
}

/*
 * The rows of a whole-fleet copy the searched ids name (the copy is sorted
 * by id, as shared memory is), in id order; every row when no id is
 * searched or the copy holds only the ids searched. Allocated with the
 * evaluated conditions.
 */
static void
smx_fdw_key_rows(SmxFdwScan *sc)
{
	const SmxFdwStrSet *set;

	sc->rows = NULL;
	sc->nrows = 0;
	if (sc->lookup || sc->key_set < 0)
		return;
	set = &sc->sets[sc->key_set];
	sc->rows = MemoryContextAlloc(sc->cond_cxt, sizeof(int) * Max(set->n, 1));
	for (int k = 0; k < set->n; k++)
	{
		int			i = smx_desc_find(sc->snap->desc, sc->snap->n, set->v[k]);

		if (i >= 0)
			sc->rows[sc->nrows++] = i;
	}
}

static void
smx_fdw_begin(ForeignScanState *node, int eflags)
{
	ForeignScan *plan = (ForeignScan *) node->ss.ps.plan;
	SmxFdwScan *sc = palloc0(sizeof(SmxFdwScan));
	List	   *conds = linitial(plan->fdw_private);
	ListCell   *lc;
	int			c = 0;

	smx_fdw_check_relation(node->ss.ss_currentRelation);
	node->fdw_state = sc;
	sc->ncond = list_length(conds);
	sc->cond_col = palloc(sizeof(int) * Max(sc->ncond, 1));
	sc->cond_array = palloc(sizeof(bool) * Max(sc->ncond, 1));
	sc->cond_value = palloc(sizeof(ExprState *) * Max(sc->ncond, 1));
	foreach(lc, conds)
	{
		int			k = intVal(lfirst(lc));

		sc->cond_col[c] = k / 2;
		sc->cond_array[c] = (k & 1) != 0;
		c++;
	}
	c = 0;
	foreach(lc, plan->fdw_exprs)
		sc->cond_value[c++] = ExecInitExpr((Expr *) lfirst(lc), (PlanState *) node);
	for (c = 0; c < sc->ncond; c++)
	{
		Expr	   *value = list_nth(plan->fdw_exprs, c);

		sc->by_id |= sc->cond_col[c] == SMX_COL_ID;
		sc->varying |= IsA(value, Param) && ((Param *) value)->paramkind == PARAM_EXEC;
	}
	sc->pushed_text = strVal(lsecond(plan->fdw_private));
	sc->form_columns = intVal(lthird(plan->fdw_private)) != 0;
	if (eflags & EXEC_FLAG_EXPLAIN_ONLY)
		return;

	smx_require_fleet_database();
	sc->query_cxt = CurrentMemoryContext;
	sc->cond_cxt = AllocSetContextCreate(CurrentMemoryContext, "sim_current conditions",
										 ALLOCSET_SMALL_SIZES);
	sc->unpin.func = smx_fdw_unpin_cb;
	sc->unpin.arg = sc;
	MemoryContextRegisterResetCallback(CurrentMemoryContext, &sc->unpin);
}

static TupleTableSlot *
smx_fdw_iterate(ForeignScanState *node)
{
	SmxFdwScan *sc = node->fdw_state;
	TupleTableSlot *slot = node->ss.ss_ScanTupleSlot;
	SmxFdwSnap *s;

	ExecClearTuple(slot);
	if (!sc->conds_ready)
	{
		smx_fdw_eval_conds(node, sc);
		if (!sc->none)
		{
			if (sc->snap == NULL)
				smx_fdw_read(sc);
			smx_fdw_key_rows(sc);
		}
		sc->conds_ready = true;
	}
	if (sc->none)
		return slot;
	s = sc->snap;
	if (sc->form_columns)
		smx_fdw_prepare_rows(s);
	for (;;)
	{
		int			i;

		if (sc->rows != NULL)
		{
			if (sc->pos >= sc->nrows)
				break;
			i = sc->rows[sc->pos++];
		}
		else
		{
			if (sc->pos >= s->n)
				break;
			i = sc->pos++;
		}
		if (!smx_fdw_row_passes(sc, s, i))
			continue;
		if (sc->form_columns)
			smx_fdw_get_row(s, i, slot->tts_values, slot->tts_isnull);
		else
			memset(slot->tts_isnull, true, sizeof(bool) * SMX_CURRENT_COLS);
		return ExecStoreVirtualTuple(slot);
	}
	return slot;
}

/*
 * A rescan reads the same copy from the start, with the values evaluated
 * anew: one statement's scan shows one tick.
 */
static void
smx_fdw_rescan(ForeignScanState *node)
{
	SmxFdwScan *sc = node->fdw_state;

	sc->conds_ready = false;
	sc->pos = 0;
}

static void
smx_fdw_end(ForeignScanState *node)
{
	SmxFdwScan *sc = node->fdw_state;

	if (sc != NULL)
		smx_fdw_release(sc);
}

static void
smx_fdw_explain(ForeignScanState *node, ExplainState *es)
{
	SmxFdwScan *sc = node->fdw_state;

	if (sc->pushed_text[0] != '\0')
		ExplainPropertyText("Pushed Down", sc->pushed_text, es);
	ExplainPropertyText("Read", !sc->by_id ? "whole fleet, one tick" :
						sc->varying ? "binary search by server_id in a copy of one tick" :
						"binary search by server_id", es);
	if (!sc->form_columns)
		ExplainPropertyText("Columns", "none formed", es);
	if (es->analyze)
		ExplainPropertyInteger("Servers Copied", NULL, sc->copied, es);
}

/*
 * The whole fleet, one tick, into ts: what the 1.9 C sim_current_metrics()
 * returns (kept for clusters not yet updated), read from the copy a scan
 * reads and with its formed values.
 */
void
smx_current_put_fleet(Tuplestorestate *ts, TupleDesc desc)
{
	uint64		pin;
	SmxFdwSnap *s;

	if (desc->natts != SMX_CURRENT_COLS)
		elog(ERROR, "sim_current_metrics() must return %d columns, not %d",
			 SMX_CURRENT_COLS, desc->natts);
	s = smx_fdw_take_fleet(CurrentMemoryContext, &pin);
	PG_TRY();
	{
		smx_fdw_prepare_rows(s);
		for (int i = 0; i < s->n; i++)
		{
			Datum		values[SMX_CURRENT_COLS];
			bool		nulls[SMX_CURRENT_COLS];

			smx_fdw_get_row(s, i, values, nulls);
			tuplestore_putvalues(ts, desc, values, nulls);
		}
	}
	PG_FINALLY();
	{
		smx_fdw_unpin(pin);
	}
	PG_END_TRY();
}

Datum
sim_fdw_handler(PG_FUNCTION_ARGS)
{
	FdwRoutine *r = makeNode(FdwRoutine);

	r->GetForeignRelSize = smx_fdw_rel_size;
	r->GetForeignPaths = smx_fdw_paths;
	r->GetForeignPlan = smx_fdw_plan;
	r->BeginForeignScan = smx_fdw_begin;
	r->IterateForeignScan = smx_fdw_iterate;
	r->ReScanForeignScan = smx_fdw_rescan;
	r->EndForeignScan = smx_fdw_end;
	r->ExplainForeignScan = smx_fdw_explain;
	PG_RETURN_POINTER(r);
}

/* The wrapper, its server and its table take no options. */
Datum
sim_fdw_validator(PG_FUNCTION_ARGS)
{
	List	   *options = untransformRelOptions(PG_GETARG_DATUM(0));

	if (options != NIL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
				 errmsg("sim_metrics_fdw takes no options, not \"%s\"",
						linitial_node(DefElem, options)->defname),
				 errhint("The live fleet needs no settings: it is read from this server's shared memory.")));
	PG_RETURN_VOID();
}

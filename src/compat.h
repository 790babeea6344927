/*
 * compat.h — every PG_VERSION_NUM branch of the extension, in one place.
 *
 * PostgreSQL 15 is the first supported version (shmem_request_hook,
 * InitMaterializedSRF). Later versions' differences are absorbed here so
 * the rest of the code has no version #if.
 */
#ifndef SMX_COMPAT_H
#define SMX_COMPAT_H

#include "postgres.h"

#if PG_VERSION_NUM < 150000
#error "sim_metrics requires PostgreSQL 15 or later"
#endif

#include "utils/wait_event.h"

/* Wait event reported while the worker sleeps between ticks. */
#if PG_VERSION_NUM >= 170000
#define SMX_WAIT_EVENT_MAIN		WAIT_EVENT_EXTENSION
#else
#define SMX_WAIT_EVENT_MAIN		PG_WAIT_EXTENSION
#endif

/* MemoryContextResetAndDeleteChildren went away in 17. */
#define SMX_RESET_CONTEXT(cxt)	MemoryContextReset(cxt)

/*
 * Memory a string setting's check hook hands back to the GUC machinery
 * (a replaced *newval, an extra). Up to 15 GUC strings and extras live in
 * malloc and guc.c releases them with free(). From 16 they are chunks of
 * GUCMemoryContext: guc.c allocates them with guc_malloc/guc_strdup and
 * releases them with guc_free (a pfree that asserts the chunk's context),
 * so a hook must free *newval with guc_free and allocate what it returns
 * with guc_malloc/guc_strdup; free() of such a chunk, or a malloc'ed value
 * reaching guc_free, corrupts memory. Each returns NULL when out of memory
 * (from 16 after a LOG line); free accepts NULL.
 */
#if PG_VERSION_NUM >= 160000
#include "utils/guc.h"
#define SMX_GUC_MALLOC(size)	guc_malloc(LOG, (size))
#define SMX_GUC_STRDUP(s)		guc_strdup(LOG, (s))
#define SMX_GUC_FREE(ptr)		guc_free(ptr)
#else
#include <stdlib.h>
#include <string.h>
#define SMX_GUC_MALLOC(size)	malloc(size)
#define SMX_GUC_STRDUP(s)		strdup(s)
#define SMX_GUC_FREE(ptr)		free(ptr)
#endif

/* EXPLAIN's property functions moved to their own header in 18. */
#if PG_VERSION_NUM >= 180000
#include "commands/explain_format.h"
#endif

/*
 * create_foreignscan_path() gained fdw_restrictinfo in 17 and
 * disabled_nodes in 18; sim_current's scan passes neither.
 */
#if PG_VERSION_NUM >= 180000
#define SMX_CREATE_FOREIGNSCAN_PATH(root, rel, target, rows, startup, total, pathkeys, outer, outerpath, priv) \
	create_foreignscan_path((root), (rel), (target), (rows), 0, (startup), (total), (pathkeys), \
							(outer), (outerpath), NIL, (priv))
#elif PG_VERSION_NUM >= 170000
#define SMX_CREATE_FOREIGNSCAN_PATH(root, rel, target, rows, startup, total, pathkeys, outer, outerpath, priv) \
	create_foreignscan_path((root), (rel), (target), (rows), (startup), (total), (pathkeys), \
							(outer), (outerpath), NIL, (priv))
#else
#define SMX_CREATE_FOREIGNSCAN_PATH(root, rel, target, rows, startup, total, pathkeys, outer, outerpath, priv) \
	create_foreignscan_path((root), (rel), (target), (rows), (startup), (total), (pathkeys), \
							(outer), (outerpath), (priv))
#endif

#endif							/* SMX_COMPAT_H */

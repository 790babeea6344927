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

#endif							/* SMX_COMPAT_H */

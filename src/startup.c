/*
 * startup.c — the first fleet load after shared memory was set up (server
 * start or crash restart): what the restart took must come back before
 * the fleet continues. In this order:
 *  1. the unflushed samples the mirror kept in Redis go into
 *     server_metrics_history (recover.c), so that the restore sees them;
 *  2. each server continues from its latest history row, the tick
 *     numbering after the newest tick stored (restore.c);
 *  3. each restored server whose anomaly detector the last clean shutdown
 *     saved, at the tick of the row it continues from, gets it back
 *     (detect_store.c); every other detector starts over;
 *  4. the scenario runs still open in scenario_execution_log are read back
 *     (scenario_db.c), to be resumed (scenario.c, smx_runs_resume).
 * The writer makes this load (its reload, engine.c, finds history not
 * restored yet); a backend waits for it, unless its own transaction
 * created the history table. Must run inside a transaction, not connected
 * to SPI.
 */
#include "postgres.h"

#include "sim_metrics.h"

/*
 * Read back what the restart took for the n servers of desc/params (the
 * fleet being loaded) into rs: its state, found, row_tick, max_tick and
 * max_tick_epoch from history, its detectors (saved or zeroed), its runs
 * and next_run_id from the log.
 */
void
smx_startup_read(Oid nsp, const char *nspname, const SmxServerDesc *desc,
				 const smx_params *params, int n, SmxRestored *rs)
{
	rs->state = palloc(sizeof(smx_state) * n);
	rs->found = palloc(sizeof(bool) * n);
	rs->row_tick = palloc(sizeof(int64) * n);
	/* what a crash took from the ring first, so the restore sees it */
	(void) smx_recover_from_redis(nsp, desc, n);
	rs->nfound = smx_restore_from_history(nsp, desc, params, n, rs->state, rs->found,
										  rs->row_tick, &rs->max_tick, &rs->max_tick_epoch);
	rs->detect = palloc0(sizeof(smx_server_detector) * n);
	rs->nkept = smx_detect_store_load(desc, n, rs->found, rs->row_tick, rs->detect);
	rs->runs = palloc0(sizeof(SmxRun) * SMX_MAX_RUNS);
	rs->nruns = smx_runs_read_open(nspname, rs->runs, SMX_MAX_RUNS, (int64) rs->max_tick,
								   &rs->next_run_id);
}

#!/usr/bin/env bash
# bench/alerts.sh — sim_predict_alerts() against what happened, and what a
# call costs at dashboard sizes.
#
# 1. Backfills ALERT_SPAN of the default 15-server fleet with automatic
#    incidents (ALERT_RATE a day, seed ALERT_SEED: one no test uses) in a
#    throwaway cluster and prints sim_alert_report() over it (the first
#    hour left out: the predictor looks at half an hour): the critical
#    crossings that memory_leak (memory) and disk_full (disk) runs caused,
#    how many began at least 5 minutes after their run (no predictor can
#    call the others 5 minutes ahead), how many were called at least 5
#    minutes ahead, the median lead, and the false predictions a
#    server-day. Goals printed beside: >= 70 % called, <= 0.1 false a
#    server-day.
# 2. Cost: the fleet grown to each of ALERT_SIZES servers, ticked past half
#    an hour and flushed but for the last ticks (as a live fleet is: the
#    last half hour in the table and the ring); the median of 9 calls of
#    sim_predict_alerts() and of sim_dashboard() beside sim_current_metrics()
#    in the same cluster.
#
#   sudo bench/alerts.sh          (repo root, after `make install`)
#
# Environment overrides (defaults in brackets):
#   ALERT_SPAN [30 days]  ALERT_RATE [2]  ALERT_SEED [20261204]
#   ALERT_SIZES [15 1000]  ALERT_START [2026-01-05 00:00:00+00] (sim_metrics.start_time:
#   the backfill's first day, so a run is reproducible)  BENCH_PORT [5498]  PG_CONFIG [pg_config]
set -euo pipefail
SPAN=${ALERT_SPAN:-30 days}
RATE=${ALERT_RATE:-2}
SEED=${ALERT_SEED:-20261204}
SIZES=${ALERT_SIZES:-15 1000}
START=${ALERT_START:-2026-01-05 00:00:00+00}
cd "$(dirname "$0")/.."
. scripts/throwaway.sh
tw_init alerts
tw_start "${BENCH_PORT:-5498}" <<CONF
sim_metrics.enabled = off
sim_metrics.redis_host = ''
sim_metrics.seed = $SEED
sim_metrics.incident_rate = $RATE
sim_metrics.start_time = '$START'
sim_metrics.max_servers = 2000
sim_metrics.flush_interval = 1h
fsync = off
synchronous_commit = off
shared_buffers = 256MB
CONF
q "CREATE EXTENSION sim_metrics" >/dev/null
tw_wait_fleet 15
echo "------------------------------------------------------------------------"
echo "predicted alerts vs what happened — $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "PostgreSQL : $(q 'SELECT version()')"
echo "CPU        : $(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo) x $(nproc)"
echo "fleet      : the default 15 servers, $SPAN backfilled from $START, 30 s ticks, seed $SEED, incident_rate $RATE a day"
echo "------------------------------------------------------------------------"
q "SELECT sim_backfill('$SPAN')" >/dev/null
SINCE=$(q "SELECT min(\"timestamp\") + interval '1 hour' FROM server_metrics_history")
UNTIL=$(q "SELECT max(\"timestamp\") FROM server_metrics_history")
start=$(date +%s.%N)
q "SELECT format('| %s | %s | %s | %s | %s | %s | %s | %s |', crossings, reachable, predicted,
              round(recall::numeric, 2), median_lead, predictions, false_predictions,
              round(false_per_server_day::numeric, 3))
     FROM sim_alert_report('$SINCE', '$UNTIL', '1 hour')" > "$TMP/report"
end=$(date +%s.%N)
echo "| crossings (leak, full disk) | reachable 5 min ahead | called 5 min ahead | recall | median lead | predictions | false | false a server-day |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|"
cat "$TMP/report"
echo
echo "goals: recall >= 0.7, <= 0.1 false predictions a server-day; sim_alert_report() took $(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }') s"
echo

# cost at dashboard sizes: the median of 9 calls, each the first of its
# session (cold: the prediction is made), and of 9 calls in one session
# within a tick (a pooled connection polling: the backend's last rows)
med() {
    local sql=$1 t=()
    for _ in $(seq 1 9); do
        t+=("$(as_pg "$BINDIR/psql" -X -q -At -h "$TMP" -p "$TW_PORT" -U postgres -d postgres \
               -c '\timing on' -c "$sql" | awk '/^Time:/ { print $2 }')")
    done
    printf '%s\n' "${t[@]}" | sort -n | sed -n 5p
}
med_session() {
    local sql=$1
    { echo '\timing on'; for _ in $(seq 1 10); do echo "$sql;"; done; } \
        | as_pg "$BINDIR/psql" -X -q -At -h "$TMP" -p "$TW_PORT" -U postgres -d postgres -f - \
        | awk '/^Time:/ { print $2 }' | tail -n 9 | sort -n | sed -n 5p
}
echo "| servers | sim_predict_alerts(), first of a session | again, same tick | sim_dashboard(), first | again | sim_current_metrics() (peer) |"
echo "|---:|---:|---:|---:|---:|---:|"
for n in $SIZES; do
    if (( n > 15 )); then
        q "INSERT INTO server_templates (id, name, hostname, role, location)
           SELECT format('bench-%s', lpad(g::text, 7, '0')), format('Bench server %s', g),
                  format('bench-%s.bench.example', lpad(g::text, 7, '0')),
                  (ARRAY['web','app','database','cache','storage','load-balancer'])[1 + g % 6],
                  (ARRAY['Seoul-ICN-AZ1','Seoul-ICN-AZ2','Busan-PUS-DR','Tokyo-NRT-AZ1'])[1 + g % 4]
             FROM generate_series((SELECT count(*) FROM server_templates) + 1, $n) AS g" >/dev/null
        q "SELECT sim_reload()" >/dev/null
    fi
    q "SELECT sim_tick(64)" >/dev/null
    q "SELECT sim_flush()" >/dev/null
    q "SELECT sim_tick(6)" >/dev/null
    P='SELECT count(*) FROM sim_predict_alerts()'
    D='SELECT length(sim_dashboard()::text)'
    echo "| $n | $(med "$P") ms | $(med_session "$P") ms | $(med "$D") ms | $(med_session "$D") ms | $(med 'SELECT count(*) FROM sim_current_metrics()') ms |"
done

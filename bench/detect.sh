#!/usr/bin/env bash
# bench/detect.sh — the built-in anomaly detector against the simulator's
# ground truth, and what it costs a tick.
#
# 1. Backfills DETECT_SPAN of the default 15-server fleet with automatic
#    incidents (DETECT_RATE a day, seed DETECT_SEED: one no test uses) in a
#    throwaway cluster and prints sim_detector_report() over it: NAB's three
#    profiles, event-wise recall and false alarms, median delay, per
#    scenario recall.
# 2. Cost: bench/model_tick.c built with the detector times the model step
#    and smx_detect_fleet() over the same servers and ticks; the live tick
#    (sim_tick() at COST_SERVERS servers, sim_status().tick_ms) is measured
#    in the same run. Goal: the detector <= 0.2x the tick a server.
#
#   sudo bench/detect.sh          (repo root, after `make install`; needs gcc)
#
# Environment overrides (defaults in brackets):
#   DETECT_SPAN [30 days]  DETECT_RATE [2]  DETECT_SEED [20261204]
#   COST_SERVERS [10000]   BENCH_PORT [5498]  PG_CONFIG [pg_config]
set -euo pipefail
SPAN=${DETECT_SPAN:-30 days}
RATE=${DETECT_RATE:-2}
SEED=${DETECT_SEED:-20261204}
COST_SERVERS=${COST_SERVERS:-10000}
cd "$(dirname "$0")/.."
. scripts/throwaway.sh
tw_init detect
tw_start "${BENCH_PORT:-5498}" <<CONF
sim_metrics.enabled = off
sim_metrics.redis_host = ''
sim_metrics.seed = $SEED
sim_metrics.incident_rate = $RATE
sim_metrics.max_servers = $((COST_SERVERS + 100))
fsync = off
synchronous_commit = off
shared_buffers = 256MB
CONF
q "CREATE EXTENSION sim_metrics" >/dev/null
tw_wait_fleet 15
echo "------------------------------------------------------------------------"
echo "detector vs ground truth — $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "PostgreSQL : $(q 'SELECT version()')"
echo "CPU        : $(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo) x $(nproc)"
echo "fleet      : the default 15 servers, $SPAN backfilled, 30 s ticks, seed $SEED, incident_rate $RATE a day"
echo "------------------------------------------------------------------------"
q "SELECT sim_backfill('$SPAN')" >/dev/null
SINCE=$(q "SELECT min(\"timestamp\") FROM server_metrics_history")
UNTIL=$(q "SELECT max(\"timestamp\") + interval '1 second' FROM server_metrics_history")
WEEKS=$(q "SELECT round((15 * extract(epoch FROM '$UNTIL'::timestamptz - '$SINCE') / 604800)::numeric, 1)")
echo "runs on servers (windows): $(q "SELECT count(DISTINCT (server_id, run_id)) FROM sim_incident_labels"), server-weeks: $WEEKS"
echo
echo "| profile | score | threshold | TP | FP | FN | precision | recall | FP / server-week | median delay |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
q "SELECT format('| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |', profile, round(score::numeric, 1),
              round(threshold::numeric, 4), true_positives, false_positives, false_negatives,
              round(\"precision\"::numeric, 3), round(recall::numeric, 3),
              round(false_positives / $WEEKS, 2), median_delay)
     FROM sim_detector_report('$SINCE', '$UNTIL')"
THR=$(q "SELECT threshold FROM sim_detector_report('$SINCE', '$UNTIL') WHERE profile = 'standard'")
echo
echo "recall by scenario at the standard profile's threshold ($THR):"
echo
echo "| scenario | runs on servers | detected | recall | median delay |"
echo "|---|---:|---:|---:|---:|"
q "WITH w AS (SELECT l.server_id, l.run_id, min(l.scenario_name) AS scenario, min(l.started_at) AS a,
                     max(COALESCE(l.ended_at, '$UNTIL')) AS b
                FROM sim_incident_labels l GROUP BY 1, 2),
        d AS (SELECT w.*, (SELECT min(h.\"timestamp\") FROM server_metrics_history h
                            WHERE h.server_id = w.server_id AND h.\"timestamp\" >= w.a AND h.\"timestamp\" < w.b
                              AND h.anomaly_score >= $THR) AS first_alarm FROM w)
   SELECT format('| %s | %s | %s | %s | %s |', scenario, count(*), count(first_alarm),
                 round(count(first_alarm)::numeric / count(*), 2),
                 percentile_disc(0.5) WITHIN GROUP (ORDER BY first_alarm - a))
     FROM d GROUP BY scenario ORDER BY scenario"

# cost: the detector beside the model step (one program), and the live tick
gcc -O2 -std=gnu11 -ffp-contract=off -DSMX_BENCH_DETECT -Isrc bench/model_tick.c src/model.c src/detect.c -lm -o "$TMP/model_tick"
STEP=(); DET=()
for _ in $(seq 1 9); do
    read -r s _ d < <("$TMP/model_tick" "$COST_SERVERS" 200)
    STEP+=("$s"); DET+=("$d")
done
median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
q "INSERT INTO server_templates (id, name, hostname, role, location)
   SELECT format('bench-%s', lpad(g::text, 7, '0')), format('Bench server %s', g),
          format('bench-%s.bench.example', lpad(g::text, 7, '0')),
          (ARRAY['web','app','database','cache','storage','load-balancer'])[1 + g % 6],
          (ARRAY['Seoul-ICN-AZ1','Seoul-ICN-AZ2','Busan-PUS-DR','Tokyo-NRT-AZ1'])[1 + g % 4]
     FROM generate_series(1, $COST_SERVERS - 15) g" >/dev/null
tw_wait_fleet "$COST_SERVERS"
TICK=()
for _ in $(seq 1 9); do
    q "SELECT sim_tick(20)" >/dev/null
    TICK+=("$(q "SELECT round((tick_ms * 1e6 / servers)::numeric, 1) FROM sim_status()")")
done
S=$(median "${STEP[@]}"); D=$(median "${DET[@]}"); T=$(median "${TICK[@]}")
echo
echo "cost, $COST_SERVERS servers, medians of 9 runs:"
echo
echo "| measured | ns/server | peer, same run | ns/server | ratio | goal |"
echo "|---|---:|---|---:|---:|---|"
echo "| detector (5 signals) | $D | live tick, sim_tick() (sim_status().tick_ms) | $T | $(awk -v a="$D" -v b="$T" 'BEGIN { printf "%.2f", a / b }') | <= 0.2 |"
echo "| detector (5 signals) | $D | model step alone (same program) | $S | $(awk -v a="$D" -v b="$S" 'BEGIN { printf "%.2f", a / b }') | - |"

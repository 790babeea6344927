#!/usr/bin/env bash
# bench/soak.sh — the ticker and the writer at scale, on a durable cluster.
#
# 100,000 servers, 1 s ticks, flush_interval 10 s, fsync on, for 10 minutes:
# does the ticker keep time while the writer moves 100,000 rows a second into
# server_metrics_history? Prints, beside each figure, its peer from the same
# run: ticks made vs wall-clock seconds, rows written vs rows produced.
#
#   sudo bench/soak.sh                       (repo root, after make install)
#   sudo env SOAK_SECONDS=120 bench/soak.sh  (shorter)
#
# Environment overrides (defaults in brackets):
#   SOAK_SECONDS [600]     measured time
#   SOAK_SERVERS [100000]  fleet size
#   SOAK_TICK_MS [1000]    sim_metrics.tick_interval
#   SOAK_FLUSH_S [10]      sim_metrics.flush_interval
#   SOAK_SAMPLE_S [5]      seconds between sim_status() samples
#   SOAK_PORT [5477]       first port tried (socket lives in the temp dir)
#   PG_CONFIG [pg_config]
set -euo pipefail

SOAK_SECONDS=${SOAK_SECONDS:-600}
SOAK_SERVERS=${SOAK_SERVERS:-100000}
SOAK_TICK_MS=${SOAK_TICK_MS:-1000}
SOAK_FLUSH_S=${SOAK_FLUSH_S:-10}
SOAK_SAMPLE_S=${SOAK_SAMPLE_S:-5}
SOAK_PORT=${SOAK_PORT:-5477}
for v in SOAK_SECONDS SOAK_SERVERS SOAK_TICK_MS SOAK_FLUSH_S SOAK_SAMPLE_S SOAK_PORT; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "soak.sh: $v must be a positive integer, not '${!v}'" >&2; exit 2; }
done
(( SOAK_SERVERS >= 15 )) || { echo "soak.sh: SOAK_SERVERS must be >= 15" >&2; exit 2; }

PG_CONFIG=${PG_CONFIG:-pg_config}
command -v "$PG_CONFIG" >/dev/null 2>&1 || { echo "soak.sh: $PG_CONFIG not found" >&2; exit 1; }
BINDIR=$("$PG_CONFIG" --bindir)
[[ -f $("$PG_CONFIG" --pkglibdir)/sim_metrics.so ]] || { echo "soak.sh: run 'make && sudo make install' first" >&2; exit 1; }
. "$(dirname "$0")/../scripts/throwaway.sh"
tw_init soak
PORT=$SOAK_PORT
while [[ -e /tmp/.s.PGSQL.$PORT || -e /var/run/postgresql/.s.PGSQL.$PORT ]]; do PORT=$((PORT + 1)); done
# durable: fsync, synchronous_commit and full_page_writes stay at their
# defaults; WAL sized for a write-heavy load, as one would in production
tw_start "$PORT" <<EOF
sim_metrics.max_servers = $SOAK_SERVERS
sim_metrics.history_buffer = 64
sim_metrics.tick_interval = '${SOAK_TICK_MS}ms'
sim_metrics.flush_interval = '${SOAK_FLUSH_S}s'
shared_buffers = 1GB
max_wal_size = 16GB
checkpoint_timeout = 15min
wal_compression = on
log_min_messages = warning
EOF

q "SHOW fsync" | grep -qx on || { echo "soak.sh: fsync must be on" >&2; exit 1; }
q "CREATE EXTENSION sim_metrics"
q "INSERT INTO server_templates (id, name, hostname, role, location)
   SELECT 'soak-' || lpad(i::text, 6, '0'), 'Soak ' || i, 'soak-' || i || '.bench',
          (ARRAY['web','app','database','cache','storage','load-balancer'])[1 + i % 6],
          'Lab-' || (i % 8)
     FROM generate_series(1, $SOAK_SERVERS - 15) i"
for _ in $(seq 1 60); do
    [[ $(q "SELECT servers FROM sim_status()") == "$SOAK_SERVERS" ]] && break
    sleep 1
done
[[ $(q "SELECT servers FROM sim_status()") == "$SOAK_SERVERS" ]] || { echo "soak.sh: the fleet did not load" >&2; exit 1; }

STATUS="SELECT extract(epoch FROM clock_timestamp()), tick, late_ticks, pending_samples,
               flushed_samples, dropped_samples, rejected_samples, flush_errors,
               extract(epoch FROM clock_timestamp() - sim_time) FROM sim_status()"
echo "sim_metrics soak: $SOAK_SERVERS servers, ${SOAK_TICK_MS} ms ticks, flush every ${SOAK_FLUSH_S} s, fsync on, ${SOAK_SECONDS} s"
sleep 5    # the first flush interval starts
IFS='|' read -r w0 t0 l0 p0 f0 d0 r0 e0 lag0 <<<"$(q "$STATUS")"
max_pending=$p0; max_lag=$lag0
printf '%8s %8s %6s %10s %12s %8s %9s\n' elapsed ticks late pending flushed dropped lag_s
end=$(( SECONDS + SOAK_SECONDS ))
while (( SECONDS < end )); do
    sleep "$SOAK_SAMPLE_S"
    IFS='|' read -r w t l p f d r e lag <<<"$(q "$STATUS")"
    (( p > max_pending )) && max_pending=$p
    max_lag=$(awk -v a="$max_lag" -v b="$lag" 'BEGIN { print (b > a ? b : a) }')
    printf '%8.0f %8d %6d %10d %12d %8d %9.2f\n' "$(awk -v a="$w" -v b="$w0" 'BEGIN{print a-b}')" \
        $((t - t0)) $((l - l0)) "$p" $((f - f0)) $((d - d0)) "$lag"
done
IFS='|' read -r w1 t1 l1 p1 f1 d1 r1 e1 lag1 <<<"$(q "$STATUS")"

elapsed=$(awk -v a="$w1" -v b="$w0" 'BEGIN { printf "%.1f", a - b }')
ticks=$((t1 - t0)); late=$((l1 - l0))
due=$(awk -v e="$elapsed" -v ms="$SOAK_TICK_MS" 'BEGIN { printf "%d", e * 1000 / ms }')
ontime=$(awk -v t="$ticks" -v l="$late" 'BEGIN { printf "%.2f", t ? 100 * (t - l) / t : 0 }')
produced=$(( ticks * SOAK_SERVERS ))
written=$((f1 - f0))
wrote_rate=$(awk -v n="$written" -v e="$elapsed" 'BEGIN { printf "%.0f", n / e }')
prod_rate=$(awk -v n="$produced" -v e="$elapsed" 'BEGIN { printf "%.0f", n / e }')
ratio=$(awk -v a="$wrote_rate" -v b="$prod_rate" 'BEGIN { printf "%.3f", b ? a / b : 0 }')
ring=$(q "SELECT buffer_capacity FROM sim_status()")
echo
echo "| measured | result | peer, same run | peer | ratio |"
echo "|---|---:|---|---:|---:|"
echo "| ticks made in ${elapsed} s | $ticks | ticks due by the wall clock | $due | $(awk -v a="$ticks" -v b="$due" 'BEGIN { printf "%.3f", a / b }') |"
echo "| ticks on time (late = run > half an interval after due) | ${ontime} % | late ticks | $late | – |"
echo "| history rows written by the writer | ${wrote_rate} rows/s | rows the ticker produced | ${prod_rate} rows/s | $ratio |"
echo "| largest backlog (pending samples) | $max_pending | ring capacity | $ring | $(awk -v a="$max_pending" -v b="$ring" 'BEGIN { printf "%.3f", a / b }') |"
echo "| samples dropped / rejected / flush errors | $((d1 - d0)) / $((r1 - r0)) / $((e1 - e0)) | – | – | – |"
echo "| simulated clock behind the wall clock, worst | ${max_lag} s | one tick | $(awk -v ms="$SOAK_TICK_MS" 'BEGIN { print ms / 1000 }') s | – |"

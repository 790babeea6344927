#!/usr/bin/env bash
# bench/realism.sh — how believable the baseline is: a throwaway cluster
# (fsync off, the worker paused), the default fleet, no scenarios, seven
# simulated days of 30 s ticks stepped with sim_tick() from a fixed seed and
# start, written to server_metrics_history, then bench/realism.sql on it:
# one row a property, measured beside its target.
#
#   sudo bench/realism.sh                    (repo root, after make install)
#
# Environment overrides (defaults in brackets):
#   RZ_DAYS [7]     simulated days
#   RZ_SEED [7]     sim_metrics.seed
#   RZ_START [2026-01-05 00:00:00+00]   sim_metrics.start_time (a Monday)
#   RZ_PLOT [docs/realism-week.png]     the week of three servers, drawn with
#                   gnuplot when it is installed (apt-get install gnuplot-nox);
#                   empty: no plot
#   PG_CONFIG [pg_config]
set -euo pipefail

RZ_DAYS=${RZ_DAYS:-7}
RZ_SEED=${RZ_SEED:-7}
RZ_START=${RZ_START:-2026-01-05 00:00:00+00}
RZ_PLOT=${RZ_PLOT-docs/realism-week.png}
[[ $RZ_DAYS =~ ^[1-9][0-9]*$ ]] || { echo "realism.sh: RZ_DAYS must be a positive integer" >&2; exit 2; }
[[ $RZ_SEED =~ ^[0-9]+$ ]] || { echo "realism.sh: RZ_SEED must be a non-negative integer" >&2; exit 2; }
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../scripts/throwaway.sh"
tw_init realism
tw_start 5479 <<EOF
sim_metrics.enabled = off
sim_metrics.seed = $RZ_SEED
sim_metrics.start_time = '$RZ_START'
sim_metrics.tick_interval = '30s'
sim_metrics.flush_interval = '1h'
fsync = off
synchronous_commit = off
log_min_messages = warning
EOF
q "CREATE EXTENSION sim_metrics"
tw_wait_fleet 15

# half a day a step, flushed each time: the ring never fills
TICKS=$(( RZ_DAYS * 2880 ))
for (( done = 0; done < TICKS; done += 1440 )); do
    q "SELECT sim_tick(least(1440, $TICKS - $done))" >/dev/null
    q "SELECT sim_flush()" >/dev/null
done
echo "sim_metrics realism: $(q "SELECT count(*) FROM server_metrics_history") samples, $RZ_DAYS simulated days of 30 s ticks, seed $RZ_SEED, from $RZ_START, the default fleet, no scenarios"
echo
as_pg "$BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -h "$TMP" -p "$TW_PORT" -U postgres -d postgres \
    -P format=aligned -f "$HERE/realism.sql" ${RZ_EXTRA_SQL:+-c "$RZ_EXTRA_SQL"}

# the week of three servers: 10-minute means of each metric
if [[ -n $RZ_PLOT ]] && command -v gnuplot >/dev/null; then
    for srv in lb-haproxy-icn-01 api-was-icn-01 db-mysql-icn-primary; do
        q "COPY (SELECT extract(epoch FROM date_bin('10 minutes', h.\"timestamp\", '2000-01-01'))::bigint,
                        round(avg(h.cpu_usage), 2), round(avg(h.memory_usage), 2), round(avg(h.disk_usage), 2),
                        round(avg(100.0 * h.network_io / t.network_capacity_bps), 2)
                   FROM server_metrics_history h JOIN server_templates t ON t.id = h.server_id
                  WHERE h.server_id = '$srv' GROUP BY 1 ORDER BY 1) TO STDOUT" > "$TMP/$srv.dat"
    done
    mkdir -p "$(dirname "$RZ_PLOT")"
    gnuplot <<GP
set terminal pngcairo size 1400,900 font ",10" noenhanced
set output "$RZ_PLOT"
set multiplot layout 3,1 title "sim_metrics model v2: one simulated week (seed $RZ_SEED, 30 s ticks, 10-minute means), no scenarios"
set xdata time
set timefmt "%s"
set format x "%a %H:%M"
set xtics 43200
set yrange [0:100]
set ylabel "%"
set grid
set key outside right
set arrow from graph 0, first 80 to graph 1, first 80 nohead dt 2 lc rgb "orange"
set arrow from graph 0, first 90 to graph 1, first 90 nohead dt 2 lc rgb "red"
do for [srv in "lb-haproxy-icn-01 api-was-icn-01 db-mysql-icn-primary"] {
    set title srv
    plot "$TMP/".srv.".dat" using 1:2 with lines lw 1 title "cpu", \\
         "" using 1:3 with lines lw 1 title "memory", \\
         "" using 1:4 with lines lw 1 title "disk", \\
         "" using 1:5 with lines lw 1 title "network"
}
unset multiplot
GP
    echo
    echo "plot: $RZ_PLOT"
elif [[ -n $RZ_PLOT ]]; then
    echo
    echo "no plot: gnuplot is not installed (apt-get install gnuplot-nox)"
fi

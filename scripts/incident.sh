#!/usr/bin/env bash
# scripts/incident.sh — a picture of two incidents: a throwaway cluster
# (the worker paused, seed 42), one memory_leak on cache-redis-icn-01 and
# one slow_database on db-mysql-icn-primary that cascades up its callers,
# stepped with sim_tick(), drawn with gnuplot: the affected servers and
# unaffected ones over time, each run's phases shaded, status changes
# marked.
#
#   sudo scripts/incident.sh                 (repo root, after make install)
#
# Environment overrides (defaults in brackets):
#   INC_PLOT [docs/incidents.png]   the image (needs gnuplot-nox)
#   INC_SEED [42]                   sim_metrics.seed
#   PG_CONFIG [pg_config]
set -euo pipefail

INC_PLOT=${INC_PLOT:-docs/incidents.png}
INC_SEED=${INC_SEED:-42}
[[ $INC_SEED =~ ^[0-9]+$ ]] || { echo "incident.sh: INC_SEED must be a non-negative integer" >&2; exit 2; }
command -v gnuplot >/dev/null || { echo "incident.sh: gnuplot is not installed (apt-get install gnuplot-nox)" >&2; exit 2; }
. "$(dirname "$0")/throwaway.sh"
tw_init incident
tw_start 5478 <<EOF
sim_metrics.enabled = off
sim_metrics.seed = $INC_SEED
sim_metrics.start_time = '2026-01-06 09:00:00+00'
sim_metrics.tick_interval = '30s'
sim_metrics.flush_interval = '1h'
fsync = off
log_min_messages = warning
EOF
q "CREATE EXTENSION sim_metrics"
tw_wait_fleet 15

q "SELECT sim_tick(20)" >/dev/null
leak=$(q "SELECT sim_scenario_start('memory_leak', '{cache-redis-icn-01}', 0.7, '25 min')")
q "SELECT sim_tick(30)" >/dev/null
slow=$(q "SELECT sim_scenario_start('slow_database', '{db-mysql-icn-primary}', 0.8, '30 min')")
q "SELECT sim_tick(100)" >/dev/null
q "SELECT sim_flush()" >/dev/null

echo "runs: memory_leak $leak, slow_database $slow and its cascades:"
as_pg "$BINDIR/psql" -X -q -h "$TMP" -p "$TW_PORT" -U postgres -d postgres -c \
  "SELECT run_id, parent_run_id, scenario_name, affected_servers->>0 AS server, intensity,
          min(started_at) AS started_at, max(ended_at) AS ended_at
     FROM scenario_execution_log GROUP BY 1, 2, 3, 4, 5 ORDER BY 1"

series() {  # server -> epoch, cpu, memory, status code
    q "COPY (SELECT extract(epoch FROM \"timestamp\")::bigint, cpu_usage, memory_usage,
                    array_position(ARRAY['online','warning','critical','offline'], status) - 1
               FROM server_metrics_history WHERE server_id = '$1' ORDER BY tick) TO STDOUT" > "$TMP/$1.dat"
}
changes() {  # server, column -> epoch, value, status at each status change
    q "COPY (SELECT e, v, s FROM (SELECT extract(epoch FROM \"timestamp\")::bigint e, $2 v,
                    array_position(ARRAY['online','warning','critical','offline'], status) - 1 s,
                    lag(status) OVER (ORDER BY tick) IS DISTINCT FROM status AND tick > 1 AS changed
               FROM server_metrics_history WHERE server_id = '$1') c WHERE changed) TO STDOUT" > "$TMP/$1.$2.chg"
}
for s in cache-redis-icn-01 cache-redis-icn-02 db-mysql-icn-primary api-was-icn-01 api-was-icn-02 \
         web-nginx-icn-01 storage-nfs-icn-01; do series "$s"; done
changes cache-redis-icn-01 memory_usage
for s in db-mysql-icn-primary api-was-icn-01 api-was-icn-02 web-nginx-icn-01; do changes "$s" cpu_usage; done

# the phases of each run as shaded rectangles (one panel per run)
phase_rects() {  # run id -> gnuplot "set object" lines
    q "SELECT format('set object %s rect from %s, graph 0 to %s, graph 1 fc rgb \"%s\" fs transparent solid 0.18 noborder behind',
                     row_number() OVER (ORDER BY id) + 10,
                     extract(epoch FROM started_at)::bigint, extract(epoch FROM ended_at)::bigint,
                     CASE phase WHEN 'warning' THEN '#f0c000' WHEN 'onset' THEN '#f08000'
                                WHEN 'peak' THEN '#e02020' ELSE '#20a040' END)
         FROM scenario_execution_log WHERE run_id = $1 AND phase <> 'interrupted' AND ended_at IS NOT NULL"
}
LEAK_RECTS=$(phase_rects "$leak")
SLOW_RECTS=$(phase_rects "$slow")

mkdir -p "$(dirname "$INC_PLOT")"
gnuplot 2>"$TMP/gnuplot.err" <<GP || { cat "$TMP/gnuplot.err" >&2; exit 1; }
set terminal pngcairo size 1400,900 font ",10" noenhanced
set output "$INC_PLOT"
set multiplot layout 2,1 title "sim_metrics incidents (seed $INC_SEED, 30 s ticks): phases shaded warning / onset / peak / recovery, status changes marked"
set xdata time
set timefmt "%s"
set format x "%H:%M"
set yrange [0:105]
set ylabel "%"
set grid
set key outside right
set style line 1 lc rgb "#1f77b4" lw 2
set style line 2 lc rgb "#9ecae1" lw 1
set palette defined (0 "#20a040", 1 "#f0a000", 2 "#e02020", 3 "#404040")
set cbrange [0:3]
unset colorbox
set arrow 1 from graph 0, first 92 to graph 1, first 92 nohead dt 2 lc rgb "orange"
set arrow 2 from graph 0, first 97 to graph 1, first 97 nohead dt 2 lc rgb "red"
$LEAK_RECTS
set title "memory_leak (run $leak) on cache-redis-icn-01; cache-redis-icn-02 untouched (cache thresholds 92 / 97)"
plot "$TMP/cache-redis-icn-01.dat" using 1:3 with lines ls 1 title "cache-redis-icn-01 memory", \\
     "$TMP/cache-redis-icn-02.dat" using 1:3 with lines ls 2 title "cache-redis-icn-02 memory", \\
     "$TMP/cache-redis-icn-01.dat" using 1:2 with lines lc rgb "#888888" title "cache-redis-icn-01 cpu", \\
     "$TMP/cache-redis-icn-01.memory_usage.chg" using 1:2:3 with points pt 7 ps 1.6 lc palette title "status change"
do for [i=11:40] { unset object i }
unset arrow 1
unset arrow 2
set arrow 1 from graph 0, first 80 to graph 1, first 80 nohead dt 2 lc rgb "orange"
set arrow 2 from graph 0, first 90 to graph 1, first 90 nohead dt 2 lc rgb "red"
$SLOW_RECTS
set title "slow_database (run $slow) on db-mysql-icn-primary, cascading to the servers that call it; storage-nfs-icn-01 untouched"
plot "$TMP/db-mysql-icn-primary.dat" using 1:2 with lines lw 2 lc rgb "#d62728" title "db-mysql-icn-primary cpu", \\
     "$TMP/api-was-icn-01.dat" using 1:2 with lines lw 1.5 lc rgb "#ff7f0e" title "api-was-icn-01 cpu", \\
     "$TMP/api-was-icn-02.dat" using 1:2 with lines lw 1.5 lc rgb "#bcbd22" title "api-was-icn-02 cpu", \\
     "$TMP/web-nginx-icn-01.dat" using 1:2 with lines lw 1.5 lc rgb "#9467bd" title "web-nginx-icn-01 cpu", \\
     "$TMP/storage-nfs-icn-01.dat" using 1:2 with lines lw 1 lc rgb "#aaaaaa" title "storage-nfs-icn-01 cpu", \\
     "$TMP/db-mysql-icn-primary.cpu_usage.chg" using 1:2:3 with points pt 7 ps 1.6 lc palette title "status change", \\
     "$TMP/api-was-icn-01.cpu_usage.chg" using 1:2:3 with points pt 7 ps 1.6 lc palette notitle, \\
     "$TMP/api-was-icn-02.cpu_usage.chg" using 1:2:3 with points pt 7 ps 1.6 lc palette notitle, \\
     "$TMP/web-nginx-icn-01.cpu_usage.chg" using 1:2:3 with points pt 7 ps 1.6 lc palette notitle
unset multiplot
GP
echo "plot: $INC_PLOT"

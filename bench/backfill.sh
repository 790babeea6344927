#!/usr/bin/env bash
# bench/backfill.sh — sim_backfill() against COPY of the same rows, in one run.
#
# Creates a throwaway cluster (unix socket only, fsync=off, workers running,
# the ticker paused), and for each case times sim_backfill(span) and a
# server-side COPY ... FROM a text file of exactly the rows it wrote, into
# the same table with the same indexes, each after TRUNCATE + CHECKPOINT,
# timed by psql \timing in autocommit (the commit included), the order
# alternating over the rounds. Prints each figure beside its peer and the
# ratio of the medians; removes the cluster on exit. See bench/README.md.
#
#   sudo bench/backfill.sh           (from the repo root, after `make install`)
#
# Environment overrides (defaults in brackets):
#   BACKFILL_ROUNDS [3]     rounds per case (alternating which path goes first)
#   BACKFILL_CASES [1000:1 day,15:90 days]  servers:span pairs, comma separated
#   BENCH_PORT [5498]       first port tried (the socket lives in the temp dir)
#   PG_CONFIG [pg_config]   selects the PostgreSQL installation
set -euo pipefail

ROUNDS=${BACKFILL_ROUNDS:-3}
CASES=${BACKFILL_CASES:-1000:1 day,15:90 days}
PORT=${BENCH_PORT:-5498}
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || { echo "backfill.sh: BACKFILL_ROUNDS must be a positive integer" >&2; exit 2; }
die() { echo "backfill.sh: $*" >&2; exit 1; }

PG_CONFIG=${PG_CONFIG:-pg_config}
command -v "$PG_CONFIG" >/dev/null 2>&1 || die "$PG_CONFIG not found; set PG_CONFIG=/path/to/pg_config"
BINDIR=$("$PG_CONFIG" --bindir)
PKGLIBDIR=$("$PG_CONFIG" --pkglibdir)
[[ -f $PKGLIBDIR/sim_metrics.so ]] || die "sim_metrics is not installed ($PKGLIBDIR); run 'make && sudo make install' first"

if (( EUID == 0 )); then
    id postgres >/dev/null 2>&1 || die "running as root needs a 'postgres' OS user to own the cluster"
    as_pg() { runuser -u postgres -- "$@"; }
    OWNER=postgres
else
    as_pg() { "$@"; }
    OWNER=$(id -un)
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/sim_metrics_backfill.XXXXXX")
chmod 700 "$TMP"; chown "$OWNER" "$TMP"
STARTED=0
cleanup() {
    local rc=$?
    trap - EXIT
    (( STARTED )) && as_pg "$BINDIR/pg_ctl" -D "$TMP/data" -m immediate -w stop >/dev/null 2>&1 || true
    (( rc != 0 )) && [[ -f $TMP/server.log ]] && tail -n 30 "$TMP/server.log" >&2
    rm -rf "$TMP"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
while [[ -e /tmp/.s.PGSQL.$PORT || -e /var/run/postgresql/.s.PGSQL.$PORT ]]; do PORT=$((PORT + 1)); done

as_pg "$BINDIR/initdb" -D "$TMP/data" -U postgres --auth=trust -E UTF8 --locale=C >"$TMP/initdb.log" 2>&1 \
    || { cat "$TMP/initdb.log" >&2; die "initdb failed"; }
as_pg tee -a "$TMP/data/postgresql.conf" >/dev/null <<CONF
listen_addresses = ''
port = $PORT
unix_socket_directories = '$TMP'
shared_preload_libraries = 'sim_metrics'
sim_metrics.database_name = 'postgres'
sim_metrics.max_servers = 2000
max_worker_processes = 16
sim_metrics.seed = 42
sim_metrics.tick_interval = '1s'
sim_metrics.time_scale = 30
sim_metrics.incident_rate = 2
sim_metrics.flush_interval = '1s'
shared_buffers = 512MB
fsync = off
synchronous_commit = off
full_page_writes = off
max_wal_size = 8GB
checkpoint_timeout = 30min
autovacuum = off
log_min_messages = warning
CONF
as_pg "$BINDIR/pg_ctl" -D "$TMP/data" -l "$TMP/server.log" -w -t 60 start >/dev/null || die "the cluster did not start"
STARTED=1
PSQL=("$BINDIR/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$TMP" -p "$PORT" -U postgres -d postgres)
q() { as_pg "${PSQL[@]}" -c "$1"; }
median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else printf "%.6g\n", (a[NR/2]+a[NR/2+1])/2}'; }
fmt() { awk "BEGIN { printf \"%.${2:-0}f\", $1 }"; }
# run psql on a script; print the ms of its \timing lines, one per line
timed() { as_pg "${PSQL[@]}" -f "$1" 2>&1 | tee "$1.out" | awk '/^Time: /{print $2}'; }

q "CREATE EXTENSION sim_metrics" >/dev/null
COLS='server_id, cpu_usage, memory_usage, disk_usage, network_io, status, "timestamp", session_id, tick, scenario_run_id'

echo "------------------------------------------------------------------------"
echo "sim_backfill() vs COPY — $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "PostgreSQL : $(q 'SELECT version()')"
echo "CPU        : $(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo) x $(nproc)"
echo "cluster    : fsync=off, synchronous_commit=off, shared_buffers=512MB; workers running, ticker paused"
echo "fleet      : 30 s ticks (tick_interval 1s x time_scale 30), seed 42, incident_rate 2 a day"
NWORK=$(( $(nproc) - 1 )); (( NWORK > 8 )) && NWORK=8; (( NWORK < 1 )) && NWORK=1
echo "workers    : the backfill alone (sim_metrics.backfill_workers = 0) and with $NWORK insert worker(s) (one a CPU but one)"
echo "------------------------------------------------------------------------"
SUMMARY=()
IFS=',' read -ra CASE_LIST <<<"$CASES"
for c in "${CASE_LIST[@]}"; do
    servers=${c%%:*}; span=${c#*:}
    q "SELECT sim_stop()" >/dev/null
    q "TRUNCATE server_metrics_history, scenario_execution_log;
       DELETE FROM server_templates WHERE id LIKE 'bench-%';
       INSERT INTO server_templates (id, name, hostname, role, location)
       SELECT format('bench-%s', lpad(g::text, 7, '0')), format('Bench server %s', g),
              format('bench-%s.bench.example', lpad(g::text, 7, '0')),
              (ARRAY['web','app','database','cache','storage','load-balancer'])[1 + g % 6],
              (ARRAY['Seoul-ICN-AZ1','Seoul-ICN-AZ2','Busan-PUS-DR','Tokyo-NRT-AZ1'])[1 + g % 4]
         FROM generate_series(1, GREATEST($servers - 15, 0)) g" >/dev/null
    for _ in $(seq 1 100); do [[ $(q "SELECT servers FROM sim_status()") == "$servers" ]] && break; sleep 0.2; done
    [[ $(q "SELECT servers FROM sim_status()") == "$servers" ]] || die "the fleet did not reach $servers servers"
    echo "case: $servers servers x $span"
    printf '   %-5s %13s %13s %13s %9s %9s\n' round "1 proc ms" "$((NWORK + 1)) procs ms" "COPY ms" "1/COPY" "N/COPY"
    B1=(); BN=(); CP=(); ROWS=0; SUM1=; MEM=
    for r in $(seq 1 "$ROUNDS"); do
        reset="SELECT sim_stop(); TRUNCATE server_metrics_history, scenario_execution_log; CHECKPOINT;"
        check="SELECT count(*) || ' ' || sum(tick) || ' ' || sum(cpu_usage) || ' ' || sum(network_io) FROM server_metrics_history;"
        for w in 0 "$NWORK"; do
            { printf '%s\n' "$reset" "SET sim_metrics.backfill_workers = $w;" "SET client_min_messages = debug1;" \
                  '\timing on' "SELECT sim_backfill('$span');" '\timing off' "RESET client_min_messages;"
              (( r == 1 && w == 0 )) && printf '%s\n' "COPY (SELECT $COLS FROM server_metrics_history ORDER BY id) TO '$TMP/rows.txt';"
              printf '%s\n' "$check"; } | as_pg tee "$TMP/bf$w.sql" >/dev/null
        done
        printf '%s\n' "$reset" '\timing on' "COPY server_metrics_history ($COLS) FROM '$TMP/rows.txt';" '\timing off' "$check" \
            | as_pg tee "$TMP/cp.sql" >/dev/null
        if (( r % 2 )); then
            t1=$(timed "$TMP/bf0.sql"); tn=$(timed "$TMP/bf$NWORK.sql"); tc=$(timed "$TMP/cp.sql")
        else
            tc=$(timed "$TMP/cp.sql"); tn=$(timed "$TMP/bf$NWORK.sql"); t1=$(timed "$TMP/bf0.sql")
        fi
        grep -q ERROR "$TMP/bf0.sql.out" "$TMP/bf$NWORK.sql.out" "$TMP/cp.sql.out" && {
            cat "$TMP/bf0.sql.out" "$TMP/bf$NWORK.sql.out" "$TMP/cp.sql.out" >&2; die "round $r failed"; }
        rows=$(awk '/^[0-9]+$/{print; exit}' "$TMP/bf0.sql.out")
        s1=$(tail -n 1 "$TMP/bf0.sql.out"); sn=$(tail -n 1 "$TMP/bf$NWORK.sql.out"); s2=$(tail -n 1 "$TMP/cp.sql.out")
        [[ $s1 == "$s2" && $sn == "$s2" ]] || die "the paths wrote different rows: '$s1' / '$sn' vs COPY '$s2'"
        [[ -z $SUM1 || $SUM1 == "$s1" ]] || die "round $r wrote other rows than round 1"
        grep -q "with $NWORK insert workers" "$TMP/bf$NWORK.sql.out" || (( NWORK == 0 )) || die "the backfill did not get its $NWORK workers"
        SUM1=$s1; ROWS=$rows
        MEM=$(sed -n 's/.*memory \([0-9]*\) kB.*/\1/p' "$TMP/bf0.sql.out" | tail -n 1)
        B1+=("$t1"); BN+=("$tn"); CP+=("$tc")
        printf '   %-5s %13.0f %13.0f %13.0f %8.2fx %8.2fx\n' "$r" "$t1" "$tn" "$tc" "$(fmt "$tc / $t1" 2)" "$(fmt "$tc / $tn" 2)"
    done
    m1=$(printf '%s\n' "${B1[@]}" | median); mn=$(printf '%s\n' "${BN[@]}" | median); mc=$(printf '%s\n' "${CP[@]}" | median)
    echo "   => $ROWS rows, the same in every path; medians: sim_backfill $(fmt "$ROWS * 1000 / $m1") rows/s alone,"
    echo "      $(fmt "$ROWS * 1000 / $mn") rows/s with $NWORK insert worker(s); COPY text $(fmt "$ROWS * 1000 / $mc") rows/s"
    echo "      = $(fmt "$mc / $m1" 2)x and $(fmt "$mc / $mn" 2)x COPY (goal >= 1.5x); backfill memory ${MEM:-?} kB"
    SUMMARY+=("| $servers servers x $span | $ROWS | $(fmt "$ROWS * 1000 / $m1") rows/s ($(fmt "$mc / $m1" 2)x) | $(fmt "$ROWS * 1000 / $mn") rows/s (**$(fmt "$mc / $mn" 2)x**) | $(fmt "$ROWS * 1000 / $mc") rows/s | ${MEM:-?} kB |")
done
echo
echo "| case | rows | sim_backfill(), backend alone | with $NWORK insert worker(s) | COPY text, same rows | backfill memory |"
echo "|---|---:|---:|---:|---:|---:|"
printf '%s\n' "${SUMMARY[@]}"

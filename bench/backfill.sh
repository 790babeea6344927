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
echo "workers    : 1 — the whole backfill is one COPY FROM in the calling backend, one transaction"
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
    printf '   %-5s %-9s %12s %14s %12s %14s %8s\n' round first "backfill ms" "backfill rows/s" "COPY ms" "COPY rows/s" ratio
    BF=(); CP=(); ROWS=0; SUM1=; MEM=
    for r in $(seq 1 "$ROUNDS"); do
        reset="SELECT sim_stop(); TRUNCATE server_metrics_history, scenario_execution_log; CHECKPOINT;"
        bf="$reset
SET client_min_messages = debug1;
\\timing on
SELECT sim_backfill('$span');
\\timing off
RESET client_min_messages;"
        if (( r == 1 )); then
            printf '%s\n' "$bf" "COPY (SELECT $COLS FROM server_metrics_history ORDER BY id) TO '$TMP/rows.txt';" \
                "SELECT count(*) || ' ' || sum(tick) || ' ' || sum(cpu_usage) || ' ' || sum(network_io) FROM server_metrics_history;" \
                | as_pg tee "$TMP/bf.sql" >/dev/null
        else
            printf '%s\n' "$bf" "SELECT count(*) || ' ' || sum(tick) || ' ' || sum(cpu_usage) || ' ' || sum(network_io) FROM server_metrics_history;" \
                | as_pg tee "$TMP/bf.sql" >/dev/null
        fi
        printf '%s\n' "$reset" '\timing on' "COPY server_metrics_history ($COLS) FROM '$TMP/rows.txt';" '\timing off' \
            "SELECT count(*) || ' ' || sum(tick) || ' ' || sum(cpu_usage) || ' ' || sum(network_io) FROM server_metrics_history;" \
            | as_pg tee "$TMP/cp.sql" >/dev/null
        if (( r % 2 )); then
            tb=$(timed "$TMP/bf.sql"); tc=$(timed "$TMP/cp.sql"); first=backfill
        else
            tc=$(timed "$TMP/cp.sql"); tb=$(timed "$TMP/bf.sql"); first=COPY
        fi
        grep -q ERROR "$TMP/bf.sql.out" "$TMP/cp.sql.out" && { cat "$TMP/bf.sql.out" "$TMP/cp.sql.out" >&2; die "round $r failed"; }
        rows=$(awk '/^[0-9]+$/{print; exit}' "$TMP/bf.sql.out")
        s1=$(tail -n 1 "$TMP/bf.sql.out"); s2=$(tail -n 1 "$TMP/cp.sql.out")
        [[ $s1 == "$s2" ]] || die "the two paths wrote different rows: '$s1' vs '$s2'"
        [[ -z $SUM1 || $SUM1 == "$s1" ]] || die "round $r wrote other rows than round 1"
        SUM1=$s1; ROWS=$rows
        MEM=$(sed -n 's/.*memory \([0-9]*\) kB.*/\1/p' "$TMP/bf.sql.out" | tail -n 1)
        BF+=("$tb"); CP+=("$tc")
        printf '   %-5s %-9s %12.0f %14.0f %12.0f %14.0f %7.2fx\n' "$r" "$first" "$tb" "$(fmt "$rows * 1000 / $tb")" \
            "$tc" "$(fmt "$rows * 1000 / $tc")" "$(fmt "$tc / $tb" 2)"
    done
    mb=$(printf '%s\n' "${BF[@]}" | median); mc=$(printf '%s\n' "${CP[@]}" | median)
    ratio=$(fmt "$mc / $mb" 2)
    echo "   => $ROWS rows; median sim_backfill $(fmt "$ROWS * 1000 / $mb") rows/s vs COPY text $(fmt "$ROWS * 1000 / $mc") rows/s = ${ratio}x COPY (goal >= 1.5x)"
    echo "      backfill memory (its context at the end, log plan included): ${MEM:-?} kB"
    SUMMARY+=("| $servers servers x $span | $ROWS | $(fmt "$ROWS * 1000 / $mb") rows/s | $(fmt "$ROWS * 1000 / $mc") rows/s | ${ratio}x | ${MEM:-?} kB |")
done
echo
echo "| case | rows | sim_backfill() | COPY text, same rows | ratio | backfill memory |"
echo "|---|---:|---:|---:|---:|---:|"
printf '%s\n' "${SUMMARY[@]}"

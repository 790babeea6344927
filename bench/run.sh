#!/usr/bin/env bash
# bench/run.sh — benchmark of sim_metrics against its peers, in one run.
#
# Creates a throwaway cluster in a temp dir (unix socket only, fsync=off),
# measures, prints each figure beside its peer, writes a Markdown summary to
# bench/out/results.md and removes the cluster on exit. See bench/README.md.
#
#   sudo bench/run.sh            (from the repo root, after `make install`)
#
# Environment overrides (defaults in brackets):
#   BENCH_SECONDS [5]          seconds per timed pgbench run
#   BENCH_ROUNDS [5]           rounds of measurement 1 (sim vs table, alternating)
#   BENCH_DISTINCT_ROUNDS [3]  rounds of measurement 2 (sim vs DISTINCT ON)
#   BENCH_DISTINCT_TX [5]      DISTINCT ON transactions per round
#   BENCH_PEER_ROUNDS [3]      rounds of the 100k-server read peers
#   BENCH_TICKS [20]           sim_tick(1) statements timed at 100k servers
#   BENCH_HISTORY_TICKS [2880] history depth per server (2880 x 30 s = 1 day)
#   BENCH_SERVERS [1000]       fleet size of measurements 1 and 2
#   BENCH_BIG_SERVERS [100000] fleet size of measurement 3 (<= max_servers)
#   BENCH_MAX_SERVERS [100000] sim_metrics.max_servers (raised to BENCH_BIG_SERVERS)
#   BENCH_FLUSH_ROUNDS [3]     rounds of measurement 4 (sim_flush vs COPY, alternating order)
#   BENCH_FLUSH_TICKS [10]     sim_tick(n) per round of measurement 4: n x BENCH_BIG_SERVERS rows
#   BENCH_HISTORY_BUFFER [auto] sim_metrics.history_buffer (ticks the ring holds); auto = the least
#                              that keeps every phase below the worker's 3/4-full flush, at least 16
#   BENCH_SKIP_FLUSH [0]       1 skips measurement 4
#   BENCH_ONLY [1,2,3,4,5]     comma-separated measurements to run (e.g. BENCH_ONLY=4)
#   BENCH_READ_ROUNDS [3]      runs of each pair of measurement 5 (streamed reads, paused and live;
#                              each run interleaves the pair's two reads in one pgbench run)
#   BENCH_READ_SIZES ["BENCH_SERVERS BENCH_BIG_SERVERS"]  fleet sizes of measurement 5 (each <= max_servers)
#   BENCH_PORT [5488]          first port tried (socket lives in the temp dir)
#   BENCH_PROTOCOL [simple]    pgbench -M: simple | extended | prepared
#   PG_CONFIG [pg_config]      selects the PostgreSQL installation
set -euo pipefail

BENCH_SECONDS=${BENCH_SECONDS:-5}
BENCH_ROUNDS=${BENCH_ROUNDS:-5}
BENCH_DISTINCT_ROUNDS=${BENCH_DISTINCT_ROUNDS:-3}
BENCH_DISTINCT_TX=${BENCH_DISTINCT_TX:-5}
BENCH_PEER_ROUNDS=${BENCH_PEER_ROUNDS:-3}
BENCH_TICKS=${BENCH_TICKS:-20}
BENCH_HISTORY_TICKS=${BENCH_HISTORY_TICKS:-2880}
BENCH_SERVERS=${BENCH_SERVERS:-1000}
BENCH_BIG_SERVERS=${BENCH_BIG_SERVERS:-100000}
BENCH_PORT=${BENCH_PORT:-5488}
BENCH_PROTOCOL=${BENCH_PROTOCOL:-simple}
BENCH_FLUSH_ROUNDS=${BENCH_FLUSH_ROUNDS:-3}
BENCH_FLUSH_TICKS=${BENCH_FLUSH_TICKS:-10}
BENCH_SKIP_FLUSH=${BENCH_SKIP_FLUSH:-0}
BENCH_ONLY=${BENCH_ONLY:-1,2,3,4,5}
BENCH_READ_ROUNDS=${BENCH_READ_ROUNDS:-3}
for v in BENCH_SECONDS BENCH_ROUNDS BENCH_DISTINCT_ROUNDS BENCH_DISTINCT_TX \
         BENCH_PEER_ROUNDS BENCH_TICKS BENCH_HISTORY_TICKS BENCH_SERVERS \
         BENCH_BIG_SERVERS BENCH_PORT BENCH_FLUSH_ROUNDS BENCH_FLUSH_TICKS BENCH_READ_ROUNDS; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: $v must be a positive integer, not '${!v}'" >&2; exit 2; }
done
(( BENCH_SERVERS >= 15 )) || { echo "run.sh: BENCH_SERVERS must be >= 15 (the default fleet)" >&2; exit 2; }
(( BENCH_BIG_SERVERS >= BENCH_SERVERS )) || { echo "run.sh: BENCH_BIG_SERVERS must be >= BENCH_SERVERS" >&2; exit 2; }
case $BENCH_PROTOCOL in simple|extended|prepared) ;; *)
    echo "run.sh: BENCH_PROTOCOL must be simple, extended or prepared" >&2; exit 2;; esac
BENCH_MAX_SERVERS=${BENCH_MAX_SERVERS:-100000}
[[ $BENCH_MAX_SERVERS =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: BENCH_MAX_SERVERS must be a positive integer" >&2; exit 2; }
MAX_SERVERS=$(( BENCH_BIG_SERVERS > BENCH_MAX_SERVERS ? BENCH_BIG_SERVERS : BENCH_MAX_SERVERS ))
[[ $BENCH_SKIP_FLUSH =~ ^[01]$ ]] || { echo "run.sh: BENCH_SKIP_FLUSH must be 0 or 1" >&2; exit 2; }
[[ $BENCH_ONLY =~ ^[1-5](,[1-5])*$ ]] || { echo "run.sh: BENCH_ONLY must list measurements 1-5, e.g. 4 or 1,3" >&2; exit 2; }
want() { [[ ,$BENCH_ONLY, == *,$1,* ]] && { [[ $1 != 4 ]] || (( ! BENCH_SKIP_FLUSH )); }; }

# The history ring (sim_metrics.history_buffer ticks x max_servers samples of
# 48 bytes). The worker flushes by itself when the ring is 3/4 full, and that
# must not happen while we measure: size the ring so that the samples pending
# at any time stay below 3/4 of it. Pending at most: the 10 setup ticks at
# BENCH_SERVERS plus the 1 + BENCH_TICKS ticks of measurement 3 (flushed, untimed,
# at the start of measurement 4), or one round of measurement 4.
PEND_MAX=$(( 10 * BENCH_SERVERS + (BENCH_TICKS + 1) * BENCH_BIG_SERVERS ))
(( BENCH_FLUSH_TICKS * BENCH_BIG_SERVERS > PEND_MAX )) && PEND_MAX=$(( BENCH_FLUSH_TICKS * BENCH_BIG_SERVERS ))
HB_NEED=$(( PEND_MAX * 4 / (3 * MAX_SERVERS) + 1 ))   # pending * 4 < capacity * 3
HB_AUTO=$(( HB_NEED > 16 ? HB_NEED : 16 ))
BENCH_HISTORY_BUFFER=${BENCH_HISTORY_BUFFER:-$HB_AUTO}
[[ $BENCH_HISTORY_BUFFER =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: BENCH_HISTORY_BUFFER must be a positive integer" >&2; exit 2; }
(( BENCH_HISTORY_BUFFER >= HB_NEED && BENCH_HISTORY_BUFFER >= 4 )) || {
    echo "run.sh: BENCH_HISTORY_BUFFER=$BENCH_HISTORY_BUFFER is too small: up to $PEND_MAX samples are pending, the worker would flush at 3/4 of the ring (need >= $HB_NEED)" >&2; exit 2; }
RING_BYTES=$(( 48 * MAX_SERVERS * BENCH_HISTORY_BUFFER ))

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT_DIR=$SCRIPT_DIR/out
T0=$SECONDS

die() { echo "run.sh: $*" >&2; exit 1; }

# ---------------------------------------------------------------- binaries
PG_CONFIG=${PG_CONFIG:-pg_config}
command -v "$PG_CONFIG" >/dev/null 2>&1 || die "$PG_CONFIG not found; set PG_CONFIG=/path/to/pg_config"
BINDIR=$("$PG_CONFIG" --bindir)
PKGLIBDIR=$("$PG_CONFIG" --pkglibdir)
SHAREDIR=$("$PG_CONFIG" --sharedir)
for b in initdb pg_ctl psql postgres; do
    [[ -x $BINDIR/$b ]] || die "$BINDIR/$b not found (is the PostgreSQL server installed? PG_CONFIG=$PG_CONFIG)"
done
[[ -x $BINDIR/pgbench ]] || die "pgbench not found in $BINDIR. It ships with the server package: on Debian 12 / Ubuntu it is in postgresql-15 (apt-get install postgresql-15); on RPM systems in postgresql15-contrib."
[[ -f $PKGLIBDIR/sim_metrics.so && -f $SHAREDIR/extension/sim_metrics.control ]] \
    || die "sim_metrics is not installed for $("$PG_CONFIG" --version) ($PKGLIBDIR); run 'make && sudo make install' first"

# ------------------------------------------------------------ who runs it
# initdb refuses root: as root, the cluster and every client run as postgres.
if (( EUID == 0 )); then
    id postgres >/dev/null 2>&1 || die "running as root needs a 'postgres' OS user to own the cluster"
    PGUSER_OS=postgres
    as_pg() { runuser -u postgres -- "$@"; }
else
    PGUSER_OS=$(id -un)
    as_pg() { "$@"; }
fi

# shared memory: 512MB of shared_buffers + the ring + the fleet, and room to spare
MEM_AVAIL_KB=$(awk '/^MemAvailable:/{print $2}' /proc/meminfo 2>/dev/null || echo 0)
if (( MEM_AVAIL_KB > 0 )); then
    NEED_KB=$(( (512 * 1024 * 1024 + RING_BYTES + 600 * MAX_SERVERS) / 1024 + 1024 * 1024 ))
    (( MEM_AVAIL_KB >= NEED_KB )) || die "the cluster needs about $((NEED_KB / 1024)) MB (512 MB shared_buffers + $((RING_BYTES / 1048576)) MB history ring + 1 GB to work in), only $((MEM_AVAIL_KB / 1024)) MB available; lower BENCH_MAX_SERVERS or BENCH_HISTORY_BUFFER"
fi

# ----------------------------------------------------------------- cluster
TMP=$(mktemp -d "${TMPDIR:-/tmp}/sim_metrics_bench.XXXXXX")
chmod 700 "$TMP"
[[ $PGUSER_OS == "$(id -un)" ]] || chown "$PGUSER_OS" "$TMP"
PGDATA_DIR=$TMP/data
STARTED=0

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if (( STARTED )); then
        as_pg "$BINDIR/pg_ctl" -D "$PGDATA_DIR" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    if (( rc != 0 )) && [[ -f $TMP/server.log ]]; then
        echo "---- last lines of the server log ----" >&2
        tail -n 30 "$TMP/server.log" >&2 || true
    fi
    rm -rf "$TMP"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# a port nobody listens on (TCP is off, but keep clear of other clusters)
port_busy() {
    local p=$1
    [[ -e /tmp/.s.PGSQL.$p || -e /var/run/postgresql/.s.PGSQL.$p ]] && return 0
    if command -v ss >/dev/null 2>&1; then
        [[ -n $(ss -Hltn "sport = :$p" 2>/dev/null) ]] && return 0
    fi
    return 1
}
PORT=$BENCH_PORT
while port_busy "$PORT"; do PORT=$((PORT + 1)); done

as_pg "$BINDIR/initdb" -D "$PGDATA_DIR" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$TMP/initdb.log" 2>&1 \
    || as_pg "$BINDIR/initdb" -D "$PGDATA_DIR" -U postgres --auth=trust -E UTF8 --locale=C >"$TMP/initdb.log" 2>&1 \
    || { cat "$TMP/initdb.log" >&2; die "initdb failed"; }

as_pg tee -a "$PGDATA_DIR/postgresql.conf" >/dev/null <<EOF

# ---- bench/run.sh ----
listen_addresses = ''
port = $PORT
unix_socket_directories = '$TMP'
shared_preload_libraries = 'sim_metrics'
sim_metrics.database_name = 'postgres'
sim_metrics.max_servers = $MAX_SERVERS
sim_metrics.enabled = off
sim_metrics.seed = 42
sim_metrics.start_time = '2026-01-05 00:00:00+00'
sim_metrics.history_buffer = $BENCH_HISTORY_BUFFER
sim_metrics.flush_interval = '1h'
shared_buffers = 512MB
fsync = off
synchronous_commit = off
full_page_writes = off
max_wal_size = 8GB
checkpoint_timeout = 30min
autovacuum = off
log_min_messages = warning
EOF

as_pg "$BINDIR/pg_ctl" -D "$PGDATA_DIR" -l "$TMP/server.log" -w -t 60 start >/dev/null \
    || die "the benchmark cluster did not start"
STARTED=1

PSQL=("$BINDIR/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$TMP" -p "$PORT" -U postgres -d postgres)
q() { as_pg "${PSQL[@]}" -c "$1"; }
qf() { as_pg "${PSQL[@]}" -f "$1"; }

# ------------------------------------------------------------ helpers
# median of the numbers on stdin
median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) {print "nan"; exit} if (NR%2) print a[(NR+1)/2]; else printf "%.6g\n", (a[NR/2]+a[NR/2+1])/2}'; }
calc() { awk "BEGIN { printf \"%s\", $1 }"; }
fmt() { awk -v x="$1" -v p="${2:-3}" 'BEGIN { printf "%.*f", p, x }'; }

# write a pgbench script file readable by the cluster owner
sqlfile() {  # name sql
    printf '%s\n' "$2" | as_pg tee "$TMP/$1.sql" >/dev/null
}

# pgbench, one client, on the bench cluster; its output (stdout and stderr)
pgbench_run() {  # pgbench options (-T / -t, -f ...)
    as_pg env PGOPTIONS="${PGB_OPTIONS:-}" "$BINDIR/pgbench" -n -c 1 -j 1 -M "$BENCH_PROTOCOL" "$@" \
        -h "$TMP" -p "$PORT" -U postgres postgres 2>&1
}

# pgbench one client; prints "tps latency_ms"
pgb() {  # name  -T secs | -t txs
    local name=$1; shift
    local out
    out=$(pgbench_run "$@" -f "$TMP/$name.sql") || { echo "$out" >&2; die "pgbench $name failed"; }
    local tps lat
    tps=$(awk -F'= ' '/^tps = /{split($2,a," "); print a[1]; exit}' <<<"$out")
    lat=$(awk -F'= ' '/^latency average = /{split($2,a," "); print a[1]; exit}' <<<"$out")
    [[ -n $tps && -n $lat ]] || { echo "$out" >&2; die "could not read pgbench output for $name"; }
    echo "$tps $lat"
}

log() { printf '%s\n' "$*"; }
hr() { log "------------------------------------------------------------------------"; }

# ------------------------------------------------------------ header
PG_VERSION=$(q "SELECT version()")
CPU_MODEL=$(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo 2>/dev/null || true)
[[ -n $CPU_MODEL ]] || CPU_MODEL=$(uname -m)
NPROC=$(nproc)
NOW=$(date -u '+%Y-%m-%d %H:%M:%S UTC')
JIT=$(q "SHOW jit")
SO_MTIME=$(date -u -r "$PKGLIBDIR/sim_metrics.so" '+%Y-%m-%d %H:%M:%S UTC')
SHM_SIZE=$(q "SHOW shared_memory_size")

hr
log "sim_metrics benchmark — $NOW"
log "PostgreSQL : $PG_VERSION"
log "CPU        : $CPU_MODEL"
log "nproc      : $NPROC"
log "extension  : $PKGLIBDIR/sim_metrics.so (built $SO_MTIME)"
log "cluster    : temp dir $TMP, port $PORT (unix socket only), shared_buffers=512MB, jit=$JIT"
log "             fsync=off, synchronous_commit=off, full_page_writes=off, autovacuum=off"
log "             (a throwaway benchmark cluster: durability is off on purpose)"
log "             sim_metrics: max_servers=$MAX_SERVERS, enabled=off (worker paused), seed=42,"
log "             start_time='2026-01-05 00:00:00+00', history_buffer=$BENCH_HISTORY_BUFFER (ring $((RING_BYTES / 1048576)) MB),"
log "             flush_interval=1h (the worker never flushes during the bench); shared_memory_size=$SHM_SIZE"
log "measured   : $BENCH_ONLY$( (( BENCH_SKIP_FLUSH )) && echo ' (BENCH_SKIP_FLUSH=1: not 4)')"
log "pgbench    : 1 client, 1 thread, -M $BENCH_PROTOCOL, ${BENCH_SECONDS}s per timed run; medians across rounds"
hr

q "CREATE EXTENSION sim_metrics" >/dev/null

# add templates until the table holds $1 rows (ids sort after the defaults)
grow_fleet() {
    local target=$1
    q "INSERT INTO server_templates (id, name, hostname, role, location)
       SELECT format('bench-%s', lpad(g::text, 7, '0')),
              format('Bench server %s', g),
              format('bench-%s.bench.example', lpad(g::text, 7, '0')),
              (ARRAY['web','app','database','cache','storage','load-balancer'])[1 + g % 6],
              (ARRAY['Seoul-ICN-AZ1','Seoul-ICN-AZ2','Busan-PUS-DR','Tokyo-NRT-AZ1'])[1 + g % 4]
       FROM generate_series((SELECT count(*) FROM server_templates) + 1, $target) AS g" >/dev/null
    local n
    n=$(q "SELECT count(*) FROM server_templates")
    [[ $n == "$target" ]] || die "server_templates holds $n rows, expected $target"
    reload_fleet "$target"
}

# the paused worker reloads on the templates' commit too; let it finish, then reload ourselves
reload_fleet() {
    local target=$1 n
    for _ in $(seq 1 100); do
        [[ $(q "SELECT servers FROM sim_status()") == "$target" ]] && break
        sleep 0.1
    done
    n=$(q "SELECT sim_reload()")
    [[ $n == "$target" ]] || die "sim_reload() loaded $n servers, expected $target"
}

# pgbench scripts
sqlfile sim      "SELECT * FROM sim_current_metrics();"
sqlfile table    "SELECT * FROM bench_current;"
sqlfile distinct "SELECT DISTINCT ON (server_id) * FROM server_metrics_history ORDER BY server_id, \"timestamp\" DESC;"
sqlfile lateral  "SELECT h.* FROM server_templates t CROSS JOIN LATERAL (SELECT * FROM server_metrics_history m WHERE m.server_id = t.id ORDER BY m.\"timestamp\" DESC LIMIT 1) h;"
sqlfile sim_count   "SELECT count(*) FROM sim_current_metrics();"
sqlfile table_count "SELECT count(*) FROM bench_current_big;"

# ============================================================ setup @ 1k (measurements 1, 2)
if want 1 || want 2; then
    log "setup: $BENCH_SERVERS servers (15 default + $((BENCH_SERVERS - 15)) added), sim_tick(10), UNLOGGED copy"
    grow_fleet "$BENCH_SERVERS"
    q "SELECT sim_tick(10)" >/dev/null
    q "CREATE UNLOGGED TABLE bench_current AS SELECT * FROM sim_current_metrics()" >/dev/null
    q "VACUUM ANALYZE bench_current" >/dev/null
    N_TABLE=$(q "SELECT count(*) FROM bench_current")
    [[ $N_TABLE == "$BENCH_SERVERS" ]] || die "bench_current holds $N_TABLE rows"
    TABLE_SIZE=$(q "SELECT pg_size_pretty(pg_table_size('bench_current'))")
    log "       bench_current: $N_TABLE rows, $TABLE_SIZE"

    # warm-up (connection, caches, first palloc of the reader)
    pgb sim -T 1 >/dev/null
    pgb table -T 1 >/dev/null
fi

# ============================================================ 1. sim vs table
if want 1; then
    hr
    log "1. SELECT * FROM sim_current_metrics() vs SELECT * FROM bench_current (UNLOGGED, all-visible)"
    log "   $BENCH_SERVERS rows each; $BENCH_ROUNDS rounds x ${BENCH_SECONDS}s, alternating"
    printf '   %-6s %14s %14s   %14s %14s\n' round "sim tps" "sim lat ms" "table tps" "table lat ms"
    S_TPS=() S_LAT=() T_TPS=() T_LAT=()
    for r in $(seq 1 "$BENCH_ROUNDS"); do
        if (( r % 2 )); then
            read -r a b < <(pgb sim -T "$BENCH_SECONDS"); read -r c d < <(pgb table -T "$BENCH_SECONDS")
        else
            read -r c d < <(pgb table -T "$BENCH_SECONDS"); read -r a b < <(pgb sim -T "$BENCH_SECONDS")
        fi
        S_TPS+=("$a"); S_LAT+=("$b"); T_TPS+=("$c"); T_LAT+=("$d")
        printf '   %-6s %14.1f %14.3f   %14.1f %14.3f\n' "$r" "$a" "$b" "$c" "$d"
    done
    M1_SIM_TPS=$(printf '%s\n' "${S_TPS[@]}" | median)
    M1_SIM_LAT=$(printf '%s\n' "${S_LAT[@]}" | median)
    M1_TAB_TPS=$(printf '%s\n' "${T_TPS[@]}" | median)
    M1_TAB_LAT=$(printf '%s\n' "${T_LAT[@]}" | median)
    M1_RATIO=$(calc "$M1_SIM_LAT / $M1_TAB_LAT")
    M1_OK=$(awk -v r="$M1_RATIO" 'BEGIN { print (r <= 1.1) ? "yes" : "no" }')
    printf '   %-6s %14.1f %14.3f   %14.1f %14.3f\n' median "$M1_SIM_TPS" "$M1_SIM_LAT" "$M1_TAB_TPS" "$M1_TAB_LAT"
    log "   => sim latency / table latency = $(fmt "$M1_RATIO" 2)x   (goal <= 1.1x: $M1_OK)"
fi

# ============================================================ 2. sim vs DISTINCT ON
if want 2; then
    hr
    HIST_ROWS=$((BENCH_HISTORY_TICKS * BENCH_SERVERS))
    log "2. history: $BENCH_HISTORY_TICKS ticks x $BENCH_SERVERS servers = $HIST_ROWS rows (30 s apart, one INSERT ... SELECT)"
    L0=$SECONDS
    q "INSERT INTO server_metrics_history
           (server_id, cpu_usage, memory_usage, disk_usage, network_io, status,
            \"timestamp\", session_id, tick, scenario_run_id)
       SELECT s.id,
              (random() * 100)::numeric(5,2),
              (random() * 100)::numeric(5,2),
              (random() * 100)::numeric(5,2),
              (random() * 125000000)::bigint,
              (ARRAY['online','online','online','online','online','online','warning','warning','critical','offline'])[1 + floor(random() * 10)::int],
              timestamptz '2026-01-05 00:00:00+00' - (t * interval '30 seconds'),
              'bench-session',
              $BENCH_HISTORY_TICKS - t,
              NULL
       FROM generate_series($BENCH_HISTORY_TICKS - 1, 0, -1) AS t,
            LATERAL (SELECT id FROM server_templates WHERE t >= 0 OFFSET 0) AS s" >/dev/null
    q "VACUUM ANALYZE server_metrics_history" >/dev/null
    q "CHECKPOINT" >/dev/null
    N_HIST=$(q "SELECT count(*) FROM server_metrics_history")
    [[ $N_HIST == "$HIST_ROWS" ]] || die "server_metrics_history holds $N_HIST rows, expected $HIST_ROWS"
    HIST_SIZE=$(q "SELECT pg_size_pretty(pg_table_size('server_metrics_history')) || ' heap + ' || pg_size_pretty(pg_indexes_size('server_metrics_history')) || ' index'")
    log "   loaded in $((SECONDS - L0))s: $N_HIST rows, $HIST_SIZE"
    log "   plan of the DISTINCT ON query:"
    q "EXPLAIN SELECT DISTINCT ON (server_id) * FROM server_metrics_history ORDER BY server_id, \"timestamp\" DESC" | sed 's/^/     | /'
    # sanity: both ways name the same servers
    N_DIST=$(q "SELECT count(*) FROM (SELECT DISTINCT ON (server_id) server_id FROM server_metrics_history ORDER BY server_id, \"timestamp\" DESC) d")
    [[ $N_DIST == "$BENCH_SERVERS" ]] || die "DISTINCT ON returned $N_DIST rows, expected $BENCH_SERVERS"

    pgb distinct -t 1 >/dev/null   # warm-up
    log "   $BENCH_DISTINCT_ROUNDS rounds, alternating: sim -T ${BENCH_SECONDS}s, DISTINCT ON -t $BENCH_DISTINCT_TX (jit=$JIT, then jit=off),"
    log "   LATERAL ... LIMIT 1 -T ${BENCH_SECONDS}s"
    printf '   %-6s %12s %14s %14s %16s %12s\n' round "sim lat ms" "distinct tps" "distinct ms" "ms with jit=off" "lateral ms"
    S2_LAT=() D_TPS=() D_LAT=() DJ_LAT=() LAT_LAT=()
    for r in $(seq 1 "$BENCH_DISTINCT_ROUNDS"); do
        read -r _ a < <(pgb sim -T "$BENCH_SECONDS")
        read -r c d < <(pgb distinct -t "$BENCH_DISTINCT_TX")
        read -r _ f < <(PGB_OPTIONS='-c jit=off' pgb distinct -t "$BENCH_DISTINCT_TX")
        read -r _ e < <(pgb lateral -T "$BENCH_SECONDS")
        S2_LAT+=("$a"); D_TPS+=("$c"); D_LAT+=("$d"); DJ_LAT+=("$f"); LAT_LAT+=("$e")
        printf '   %-6s %12.3f %14.3f %14.1f %16.1f %12.3f\n' "$r" "$a" "$c" "$d" "$f" "$e"
    done
    M2_SIM_LAT=$(printf '%s\n' "${S2_LAT[@]}" | median)
    M2_D_TPS=$(printf '%s\n' "${D_TPS[@]}" | median)
    M2_D_LAT=$(printf '%s\n' "${D_LAT[@]}" | median)
    M2_DJ_LAT=$(printf '%s\n' "${DJ_LAT[@]}" | median)
    M2_L_LAT=$(printf '%s\n' "${LAT_LAT[@]}" | median)
    M2_DJ_SPEEDUP=$(calc "$M2_DJ_LAT / $M2_SIM_LAT")
    M2_SPEEDUP=$(calc "$M2_D_LAT / $M2_SIM_LAT")
    M2_L_SPEEDUP=$(calc "$M2_L_LAT / $M2_SIM_LAT")
    M2_OK=$(awk -v r="$M2_SPEEDUP" 'BEGIN { print (r >= 100) ? "yes" : "no" }')
    printf '   %-6s %12.3f %14.3f %14.1f %16.1f %12.3f\n' median "$M2_SIM_LAT" "$M2_D_TPS" "$M2_D_LAT" "$M2_DJ_LAT" "$M2_L_LAT"
    log "   => DISTINCT ON latency / sim latency = $(fmt "$M2_SPEEDUP" 0)x faster   (goal >= 100x: $M2_OK)"
    log "      (with jit=off for the DISTINCT ON: $(fmt "$M2_DJ_SPEEDUP" 0)x)"
    log "      (for reference, not a goal: an indexed LATERAL ... LIMIT 1 per server is $(fmt "$M2_L_SPEEDUP" 1)x the sim's latency)"
fi

# ============================================================ 3. tick @ 100k
if want 3; then
    hr
    log "3. tick cost at $BENCH_BIG_SERVERS servers"
    L0=$SECONDS
    grow_fleet "$BENCH_BIG_SERVERS"
    log "   fleet grown to $BENCH_BIG_SERVERS templates and reloaded in $((SECONDS - L0))s"
    {
        echo '\timing on'
        echo "SELECT 'warmup', sim_tick(1);"
        for _ in $(seq 1 "$BENCH_TICKS"); do
            echo "SELECT 'tick', sim_tick(1);"
            echo "SELECT 'tick_ms', tick_ms, servers FROM sim_status();"
        done
    } | as_pg tee "$TMP/ticks.sql" >/dev/null
    qf "$TMP/ticks.sql" >"$TMP/ticks.out" 2>&1 || { cat "$TMP/ticks.out" >&2; die "sim_tick series failed"; }
    # tick_ms (model time, from sim_status) and the statement's wall time (psql \timing)
    TICK_MS=$(awk -F'|' '$1=="tick_ms"{print $2}' "$TMP/ticks.out")
    TICK_WALL=$(awk '/^tick\|/{want=1; next} want && /^Time: /{print $2; want=0}' "$TMP/ticks.out")
    TICK_SERVERS=$(awk -F'|' '$1=="tick_ms"{s=$3} END{print s}' "$TMP/ticks.out")
    [[ $TICK_SERVERS == "$BENCH_BIG_SERVERS" ]] || die "sim_status() reports $TICK_SERVERS servers, expected $BENCH_BIG_SERVERS"
    [[ $(wc -l <<<"$TICK_MS") == "$BENCH_TICKS" && $(wc -l <<<"$TICK_WALL") == "$BENCH_TICKS" ]] \
        || { cat "$TMP/ticks.out" >&2; die "could not read the tick timings"; }
    M3_TICK_MS=$(median <<<"$TICK_MS")
    M3_TICK_MIN=$(sort -g <<<"$TICK_MS" | head -n1)
    M3_TICK_MAX=$(sort -g <<<"$TICK_MS" | tail -n1)
    M3_WALL_MS=$(median <<<"$TICK_WALL")
    M3_NS=$(calc "$M3_TICK_MS * 1000000 / $BENCH_BIG_SERVERS")
    M3_WALL_NS=$(calc "$M3_WALL_MS * 1000000 / $BENCH_BIG_SERVERS")
    M3_OK=$(awk -v r="$M3_NS" 'BEGIN { print (r <= 100) ? "yes" : "no" }')
    log "   $BENCH_TICKS x sim_tick(1) (after one warm-up tick):"
    log "     tick_ms (model step, sim_status)   median $(fmt "$M3_TICK_MS" 3) ms  (min $(fmt "$M3_TICK_MIN" 3), max $(fmt "$M3_TICK_MAX" 3))"
    log "                                        = $(fmt "$M3_NS" 1) ns/server   (goal <= 100 ns/server: $M3_OK)"
    log "     sim_tick(1) statement, wall time   median $(fmt "$M3_WALL_MS" 3) ms = $(fmt "$M3_WALL_NS" 1) ns/server (incl. publish + round trip)"

    q "CREATE UNLOGGED TABLE bench_current_big AS SELECT * FROM sim_current_metrics()" >/dev/null
    q "VACUUM ANALYZE bench_current_big" >/dev/null
    N_BIG=$(q "SELECT count(*) FROM bench_current_big")
    [[ $N_BIG == "$BENCH_BIG_SERVERS" ]] || die "bench_current_big holds $N_BIG rows"
    pgb sim_count -T 1 >/dev/null; pgb table_count -T 1 >/dev/null
    log "   peers, reading what one tick produced: $BENCH_PEER_ROUNDS rounds x ${BENCH_SECONDS}s, alternating"
    printf '   %-6s %26s %30s\n' round "count(*) sim_current_metrics()" "count(*) UNLOGGED table (ms)"
    SC_LAT=() TC_LAT=()
    for r in $(seq 1 "$BENCH_PEER_ROUNDS"); do
        read -r _ a < <(pgb sim_count -T "$BENCH_SECONDS")
        read -r _ b < <(pgb table_count -T "$BENCH_SECONDS")
        SC_LAT+=("$a"); TC_LAT+=("$b")
        printf '   %-6s %26.3f %30.3f\n' "$r" "$a" "$b"
    done
    M3_SC=$(printf '%s\n' "${SC_LAT[@]}" | median)
    M3_TC=$(printf '%s\n' "${TC_LAT[@]}" | median)
    printf '   %-6s %26.3f %30.3f\n' median "$M3_SC" "$M3_TC"
    log "   => one tick (model) = $(fmt "$(calc "$M3_TICK_MS / $M3_SC")" 2)x one count(*) over sim_current_metrics(),"
    log "                         $(fmt "$(calc "$M3_TICK_MS / $M3_TC")" 2)x one count(*) over the UNLOGGED table (same $BENCH_BIG_SERVERS rows)"
fi

# ============================================================ 4. flush vs COPY @ 100k
if want 4; then
    hr
    FLUSH_ROWS=$((BENCH_FLUSH_TICKS * BENCH_BIG_SERVERS))
    HCOLS='server_id, cpu_usage, memory_usage, disk_usage, network_io, status, "timestamp", session_id, tick, scenario_run_id'
    # what a path wrote: row count and a checksum of the rows (id aside: both take it from the sequence)
    FP="(SELECT count(*) || ':' || coalesce(sum(hashtextextended(ROW($HCOLS)::text, 0)), 0) FROM server_metrics_history)"
    log "4. history flush at $BENCH_BIG_SERVERS servers: sim_flush() of sim_tick($BENCH_FLUSH_TICKS) = $FLUSH_ROWS buffered samples"
    log "   vs COPY server_metrics_history ($HCOLS)"
    log "   FROM a server-side file of exactly those rows (text; binary for reference)"
    L0=$SECONDS
    [[ $(q "SELECT servers FROM sim_status()") == "$BENCH_BIG_SERVERS" ]] || grow_fleet "$BENCH_BIG_SERVERS"

    # the table as installed: logged, its three indexes (btree (server_id, "timestamp" DESC),
    # brin ("timestamp"), brin (tick)), no triggers
    IDX=$(q "SELECT string_agg(indexdef, '; ' ORDER BY indexname) FROM pg_indexes
             WHERE schemaname = 'public' AND tablename = 'server_metrics_history'")
    [[ $IDX == 'CREATE INDEX server_metrics_history_server_time ON public.server_metrics_history USING btree (server_id, "timestamp" DESC); CREATE INDEX server_metrics_history_tick_brin ON public.server_metrics_history USING brin (tick); CREATE INDEX server_metrics_history_time_brin ON public.server_metrics_history USING brin ("timestamp")' ]] \
        || die "server_metrics_history is not as installed; its indexes: $IDX"
    [[ $(q "SELECT relpersistence FROM pg_class WHERE oid = 'server_metrics_history'::regclass") == p ]] \
        || die "server_metrics_history is not a logged table"
    [[ $(q "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'server_metrics_history'::regclass") == 0 ]] \
        || die "server_metrics_history has triggers"

    # warm-up, untimed: flush what measurements 1-3 left in the ring, plus one tick
    q "SELECT sim_tick(1)" >/dev/null
    W0=$(date +%s%N)
    WARM_ROWS=$(q "SELECT sim_flush()")
    W1=$(date +%s%N)
    [[ $(q "SELECT pending_samples FROM sim_status()") == 0 ]] || die "samples still pending after the warm-up flush"
    q "TRUNCATE server_metrics_history" >/dev/null
    log "   warm-up (untimed for the result): sim_flush() of the $WARM_ROWS samples pending, $(( (W1 - W0) / 1000000 )) ms"
    log "   per round: TRUNCATE; sim_tick($BENCH_FLUSH_TICKS); the rows exported in a rolled-back sim_flush() (they stay"
    log "   buffered); then each path after TRUNCATE + CHECKPOINT, timed by psql \\timing (autocommit: incl. commit)."
    log "   $BENCH_FLUSH_ROUNDS rounds, the order alternating; every path checked for the same $FLUSH_ROWS rows (count + checksum)"
    printf '   %-5s %-6s %10s %12s %12s %12s %12s %12s %9s\n' round first "flush ms" "flush rows/s" "COPY txt ms" "txt rows/s" "COPY bin ms" "bin rows/s" "flush/txt"

    # one timed step of a round script: empty table, checkpoint, the statement, what it wrote
    flush_step() {  # name sql
        echo "TRUNCATE server_metrics_history;"
        echo "CHECKPOINT;"
        echo "SELECT pg_current_wal_insert_lsn() AS lsn0 \\gset"
        echo "\\echo @@$1"
        echo '\timing on'
        echo "$2"
        echo '\timing off'
        echo "SELECT 'wal_$1', pg_wal_lsn_diff(pg_current_wal_insert_lsn(), :'lsn0')::bigint;"
        echo "SELECT 'fp_$1', $FP;"
    }
    F_RPS=() CT_RPS=() CB_RPS=() F_MS=() CT_MS=() CB_MS=()
    for r in $(seq 1 "$BENCH_FLUSH_ROUNDS"); do
        TXT=$TMP/history_r$r.txt BIN=$TMP/history_r$r.bin
        S_FLUSH="SELECT 'flushed', sim_flush();"
        S_TXT="COPY server_metrics_history ($HCOLS) FROM '$TXT';"
        S_BIN="COPY server_metrics_history ($HCOLS) FROM '$BIN' WITH (FORMAT binary);"
        {
            echo "TRUNCATE server_metrics_history;"
            echo "SELECT 'tick', sim_tick($BENCH_FLUSH_TICKS);"
            echo "SELECT 'pending', pending_samples FROM sim_status();"
            echo "BEGIN;"
            echo "SELECT 'exported', sim_flush();"
            echo "COPY (SELECT $HCOLS FROM server_metrics_history) TO '$TXT';"
            echo "COPY (SELECT $HCOLS FROM server_metrics_history) TO '$BIN' WITH (FORMAT binary);"
            echo "SELECT 'fp_export', $FP;"
            echo "ROLLBACK;"
            echo "SELECT 'pending_kept', pending_samples FROM sim_status();"
            if (( r % 2 )); then
                flush_step flush "$S_FLUSH"; flush_step copy_txt "$S_TXT"; flush_step copy_bin "$S_BIN"
            else
                flush_step copy_txt "$S_TXT"; flush_step copy_bin "$S_BIN"; flush_step flush "$S_FLUSH"
            fi
            echo "SELECT 'pending_after', pending_samples FROM sim_status();"
            echo "SELECT 'size', pg_size_pretty(pg_table_size('server_metrics_history')) || ' heap + ' || pg_size_pretty(pg_indexes_size('server_metrics_history')) || ' index';"
        } | as_pg tee "$TMP/flush_r$r.sql" >/dev/null
        qf "$TMP/flush_r$r.sql" >"$TMP/flush_r$r.out" 2>&1 || { cat "$TMP/flush_r$r.out" >&2; die "round $r of measurement 4 failed"; }
        as_pg rm -f "$TXT" "$BIN"
        out=$TMP/flush_r$r.out
        val() { awk -F'|' -v k="$1" '$1==k {print $2; exit}' "$out"; }
        ms() { awk -v k="@@$1" '$0==k {want=1; next} want && /^Time: / {print $2; exit}' "$out"; }
        [[ $(val pending) == "$FLUSH_ROWS" ]] || die "round $r: $(val pending) samples pending after sim_tick($BENCH_FLUSH_TICKS), expected $FLUSH_ROWS"
        [[ $(val exported) == "$FLUSH_ROWS" && $(val pending_kept) == "$FLUSH_ROWS" ]] \
            || die "round $r: the export flushed $(val exported) rows and left $(val pending_kept) pending, expected $FLUSH_ROWS"
        [[ $(val flushed) == "$FLUSH_ROWS" && $(val pending_after) == 0 ]] \
            || die "round $r: sim_flush() wrote $(val flushed) rows and left $(val pending_after) pending"
        FPX=$(val fp_export)
        [[ ${FPX%%:*} == "$FLUSH_ROWS" ]] || die "round $r: the export holds ${FPX%%:*} rows, expected $FLUSH_ROWS"
        for k in flush copy_txt copy_bin; do
            [[ $(val "fp_$k") == "$FPX" ]] || die "round $r: $k wrote rows $(val "fp_$k") (count:checksum), the export $FPX"
        done
        a=$(ms flush) b=$(ms copy_txt) c=$(ms copy_bin)
        [[ -n $a && -n $b && -n $c ]] || { cat "$out" >&2; die "round $r: could not read the timings"; }
        F_MS+=("$a"); CT_MS+=("$b"); CB_MS+=("$c")
        F_RPS+=("$(calc "$FLUSH_ROWS * 1000 / $a")"); CT_RPS+=("$(calc "$FLUSH_ROWS * 1000 / $b")"); CB_RPS+=("$(calc "$FLUSH_ROWS * 1000 / $c")")
        printf '   %-5s %-6s %10.1f %12.0f %12.1f %12.0f %12.1f %12.0f %8.2fx\n' "$r" "$( (( r % 2 )) && echo flush || echo COPY)" \
            "$a" "${F_RPS[-1]}" "$b" "${CT_RPS[-1]}" "$c" "${CB_RPS[-1]}" "$(calc "$b / $a")"
        WAL_F=$(val wal_flush) WAL_T=$(val wal_copy_txt) WAL_B=$(val wal_copy_bin) M4_SIZE=$(val size)
    done
    M4_F_RPS=$(printf '%s\n' "${F_RPS[@]}" | median)
    M4_CT_RPS=$(printf '%s\n' "${CT_RPS[@]}" | median)
    M4_CB_RPS=$(printf '%s\n' "${CB_RPS[@]}" | median)
    M4_F_MS=$(printf '%s\n' "${F_MS[@]}" | median)
    M4_CT_MS=$(printf '%s\n' "${CT_MS[@]}" | median)
    M4_CB_MS=$(printf '%s\n' "${CB_MS[@]}" | median)
    M4_RATIO=$(calc "$M4_F_RPS / $M4_CT_RPS")
    M4_RATIO_B=$(calc "$M4_F_RPS / $M4_CB_RPS")
    M4_OK=$(awk -v r="$M4_RATIO" 'BEGIN { print (r >= 0.9) ? "yes" : "no" }')
    printf '   %-5s %-6s %10.1f %12.0f %12.1f %12.0f %12.1f %12.0f %8.2fx\n' median "" \
        "$M4_F_MS" "$M4_F_RPS" "$M4_CT_MS" "$M4_CT_RPS" "$M4_CB_MS" "$M4_CB_RPS" "$M4_RATIO"
    log "   table after each path: $M4_SIZE; WAL written (last round): flush $(fmt "$(calc "$WAL_F / 1048576")" 1) MB,"
    log "   COPY text $(fmt "$(calc "$WAL_T / 1048576")" 1) MB, COPY binary $(fmt "$(calc "$WAL_B / 1048576")" 1) MB = $(fmt "$(calc "$WAL_F / $FLUSH_ROWS")" 0) / $(fmt "$(calc "$WAL_T / $FLUSH_ROWS")" 0) / $(fmt "$(calc "$WAL_B / $FLUSH_ROWS")" 0) bytes per row"
    log "   => flush / COPY (text) throughput = $(fmt "$M4_RATIO" 2)x   (goal >= 0.9x: $M4_OK)"
    log "      (flush / COPY binary, for reference: $(fmt "$M4_RATIO_B" 2)x); measurement 4 took $((SECONDS - L0))s"
fi

# ============================================================ 5. streaming reads, paused and live
if want 5; then
    hr
    log "5. sim_current (the streamed read) and sim_current_metrics() (inlined over it) against an UNLOGGED"
    log "   table of the same rows with a primary key; at ${BENCH_READ_SIZES:-$BENCH_SERVERS $BENCH_BIG_SERVERS} servers, paused and live"
    log "   (live: the worker ticking every 1 s, flushing as it does for users); each pair interleaved in one"
    log "   pgbench run, transaction by transaction, $BENCH_READ_ROUNDS runs of $((2 * BENCH_SECONDS))s; ms: the runs' median"
    log "   mean latency; ratio: the median of the runs' ratios, runs: their lowest and highest"
    L0=$SECONDS
    # the fleet at n servers: templates added, or the added ones dropped
    set_fleet() {
        local target=$1 n
        n=$(q "SELECT count(*) FROM server_templates")
        if (( n < target )); then grow_fleet "$target"; return; fi
        (( n == target )) && return
        q "DELETE FROM server_templates WHERE id IN (SELECT id FROM server_templates WHERE id LIKE 'bench-%'
           ORDER BY id DESC LIMIT $((n - target)))" >/dev/null
        reload_fleet "$target"
    }
    temp_files() { q "SELECT temp_files FROM pg_stat_database WHERE datname = current_database()"; }
    # one pair of reads, interleaved transaction by transaction in one pgbench run (two
    # scripts of equal weight), so both see the same machine at the same moments (a worker's
    # tick or flush, a neighbour's burst), BENCH_READ_ROUNDS runs of 2 x BENCH_SECONDS;
    # sets PAIR_A PAIR_B (median over the runs of each read's mean latency, ms) and PAIR_R
    # (median over the runs of A/B)
    pair() {  # a b
        local A=() B=() R=() r out a b
        for r in $(seq 1 "$BENCH_READ_ROUNDS"); do
            out=$(pgbench_run -T $((2 * BENCH_SECONDS)) -f "$TMP/$1.sql@1" -f "$TMP/$2.sql@1") \
                || { echo "$out" >&2; die "pgbench $1 / $2 failed"; }
            read -r a b < <(awk '/^ - latency average = /{printf "%s ", $5} END {print ""}' <<<"$out")
            [[ -n $a && -n $b ]] || { echo "$out" >&2; die "could not read pgbench's per-script latencies for $1 / $2"; }
            A+=("$a"); B+=("$b"); R+=("$(calc "$a / $b")")
        done
        PAIR_A=$(printf '%s\n' "${A[@]}" | median)
        PAIR_B=$(printf '%s\n' "${B[@]}" | median)
        PAIR_R=$(printf '%s\n' "${R[@]}" | median)
        PAIR_SPREAD=$(printf '%s\n' "${R[@]}" | sort -g | awk 'NR == 1 {lo = $1} {hi = $1} END {printf "%.2f-%.2f", lo, hi}')
    }
    M5_ROWS=()
    row5() {  # size mode what peer a b ratio goal
        local ok
        ok=$(awk -v r="$6" -v g="$7" 'BEGIN { print (g == "-" ? "-" : (r <= g) ? "yes" : "no") }')
        printf '   %-8s %-7s %-44s %10.3f %10.3f %7.2fx %11s  %s\n' "$1" "$2" "$3" "$4" "$5" "$6" "$PAIR_SPREAD" "$( [[ $7 == - ]] && echo - || echo "goal <= ${7}x: $ok")"
        M5_ROWS+=("$(printf '| 5 | %s, %s servers, %s | %.3f ms | %s | %.3f ms | %.2fx latency (runs %s) | %s | %s |' \
            "$3" "$1" "$2" "$4" "$8" "$5" "$6" "$PAIR_SPREAD" "$( [[ $7 == - ]] && echo - || echo "<= ${7}x")" "$ok")")
    }
    sqlfile cur_all "SELECT * FROM sim_current;"
    sqlfile fn_all  "SELECT * FROM sim_current_metrics();"
    sqlfile tab_all "SELECT * FROM bench_reads;"
    sqlfile cur_cnt "SELECT count(*) FROM sim_current;"
    sqlfile tab_cnt "SELECT count(*) FROM bench_reads;"
    as_pg "${PSQL[@]}" -c "ALTER SYSTEM SET sim_metrics.tick_interval = '1s'" -c "SELECT pg_reload_conf()" >/dev/null
    printf '   %-8s %-7s %-44s %10s %10s %8s %11s\n' servers mode read "ms" "table ms" ratio "runs"
    for size in ${BENCH_READ_SIZES:-$BENCH_SERVERS $BENCH_BIG_SERVERS}; do
        [[ $size =~ ^[1-9][0-9]*$ ]] && (( size >= 15 && size <= MAX_SERVERS )) \
            || die "BENCH_READ_SIZES: '$size' is not a fleet size from 15 to $MAX_SERVERS"
        set_fleet "$size"
        q "SELECT sim_tick(2)" >/dev/null
        q "SELECT sim_flush()" >/dev/null   # nothing pending: no flush of the worker's while paused
        q "DROP TABLE IF EXISTS bench_reads" >/dev/null
        q "CREATE UNLOGGED TABLE bench_reads AS SELECT * FROM sim_current" >/dev/null
        q "ALTER TABLE bench_reads ADD PRIMARY KEY (server_id)" >/dev/null
        q "VACUUM ANALYZE bench_reads" >/dev/null
        ONE=$(q "SELECT server_id FROM bench_reads ORDER BY server_id OFFSET $((size / 2)) LIMIT 1")
        sqlfile cur_one "SELECT * FROM sim_current WHERE server_id = '$ONE';"
        sqlfile tab_one "SELECT * FROM bench_reads WHERE server_id = '$ONE';"
        for f in cur_all tab_all cur_one tab_one; do pgb "$f" -T 1 >/dev/null; done
        for mode in paused live; do
            if [[ $mode == live ]]; then
                q "SELECT sim_start()" >/dev/null
                t1=$(q "SELECT tick FROM sim_status()")
                for _ in $(seq 1 100); do
                    (( $(q "SELECT tick FROM sim_status()") >= t1 + 2 )) && break
                    sleep 0.2
                done
                (( $(q "SELECT tick FROM sim_status()") >= t1 + 2 )) || die "the worker did not tick at 1 s"
                t1=$(q "SELECT tick FROM sim_status()")
            fi
            tf0=$(temp_files)
            pair cur_all tab_all
            goal=1.5; (( size <= BENCH_SERVERS )) && goal=1.0
            row5 "$size" "$mode" "SELECT * FROM sim_current" "$PAIR_A" "$PAIR_B" "$PAIR_R" "$goal" "\`SELECT *\` from the table"
            pair fn_all tab_all
            row5 "$size" "$mode" "SELECT * FROM sim_current_metrics()" "$PAIR_A" "$PAIR_B" "$PAIR_R" "-" "\`SELECT *\` from the table"
            if (( size > BENCH_SERVERS )); then
                pair cur_cnt tab_cnt
                row5 "$size" "$mode" "SELECT count(*) FROM sim_current" "$PAIR_A" "$PAIR_B" "$PAIR_R" 1.5 "\`count(*)\` of the table"
            fi
            pair cur_one tab_one
            row5 "$size" "$mode" "sim_current WHERE server_id = (one)" "$PAIR_A" "$PAIR_B" "$PAIR_R" 1.0 "the table by its primary key"
            sleep 1.2   # the stats of the last pgbench connection reach pg_stat_database
            tf=$(( $(temp_files) - tf0 ))
            log "   $size servers, $mode: temporary files written meanwhile (pg_stat_database.temp_files): $tf"
            M5_ROWS+=("$(printf '| 5 | temporary files written by the reads above, %s servers, %s | %s | - | - | - | 0 | %s |' "$size" "$mode" "$tf" "$( (( tf == 0 )) && echo yes || echo no)")")
            if [[ $mode == live ]]; then
                t2=$(q "SELECT tick FROM sim_status()")
                log "   $size servers, live: the worker ticked $((t2 - t1)) times while measured"
                q "SELECT sim_stop()" >/dev/null
            fi
        done
    done
    log "   measurement 5 took $((SECONDS - L0))s"
fi

# ============================================================ summary
hr
RUNTIME=$((SECONDS - T0))
mkdir -p "$OUT_DIR"
{
    echo "Benchmark of \`sim_metrics\` (bench/run.sh), $NOW; $PG_VERSION;"
    echo "CPU: $CPU_MODEL, nproc=$NPROC. Throwaway cluster with fsync=off, shared_buffers=512MB, worker paused;"
    echo "pgbench with 1 client (-M $BENCH_PROTOCOL), median of alternating rounds; latencies in ms."
    if want 4; then
        echo "Flush and COPY: psql \\timing wall time incl. commit, after TRUNCATE + CHECKPOINT, same rows checked; median of alternating rounds."
    fi
    echo
    echo "| # | Measured | Result | Peer (same run) | Peer result | Ratio | Goal | Met |"
    echo "|---|----------|-------:|-----------------|------------:|------:|------|:---:|"
    if want 1; then
        printf '| 1 | `SELECT * FROM sim_current_metrics()`, %s servers | %.3f ms (%.0f tps) | `SELECT *` from an UNLOGGED table of the same %s rows | %.3f ms (%.0f tps) | %.2fx latency | <= 1.1x | %s |\n' \
            "$BENCH_SERVERS" "$M1_SIM_LAT" "$M1_SIM_TPS" "$BENCH_SERVERS" "$M1_TAB_LAT" "$M1_TAB_TPS" "$M1_RATIO" "$M1_OK"
    fi
    if want 2; then
        printf '| 2 | same read, %s servers | %.3f ms | `DISTINCT ON (server_id)` latest row over %s history rows (%s ticks of 30 s), jit=%s | %.1f ms | %.0fx faster | >= 100x | %s |\n' \
            "$BENCH_SERVERS" "$M2_SIM_LAT" "$HIST_ROWS" "$BENCH_HISTORY_TICKS" "$JIT" "$M2_D_LAT" "$M2_SPEEDUP" "$M2_OK"
        printf '| 2a | same read, %s servers | %.3f ms | the same `DISTINCT ON`, jit=off | %.1f ms | %.0fx faster | >= 100x | %s |\n' \
            "$BENCH_SERVERS" "$M2_SIM_LAT" "$M2_DJ_LAT" "$M2_DJ_SPEEDUP" "$(awk -v r="$M2_DJ_SPEEDUP" 'BEGIN { print (r >= 100) ? "yes" : "no" }')"
        printf '| 2b | same read, %s servers | %.3f ms | `LATERAL (... ORDER BY "timestamp" DESC LIMIT 1)` per server, same history (reference) | %.3f ms | %.1fx faster | - | - |\n' \
            "$BENCH_SERVERS" "$M2_SIM_LAT" "$M2_L_LAT" "$M2_L_SPEEDUP"
    fi
    if want 3; then
        printf '| 3 | `sim_tick(1)` model step (`sim_status().tick_ms`), %s servers, median of %s | %.3f ms = %.1f ns/server | `SELECT count(*) FROM sim_current_metrics()`, %s rows | %.3f ms | tick = %.2fx read | <= 100 ns/server | %s |\n' \
            "$BENCH_BIG_SERVERS" "$BENCH_TICKS" "$M3_TICK_MS" "$M3_NS" "$BENCH_BIG_SERVERS" "$M3_SC" "$(calc "$M3_TICK_MS / $M3_SC")" "$M3_OK"
        printf '| 3b | `sim_tick(1)` statement wall time, %s servers | %.3f ms = %.1f ns/server | `SELECT count(*)` from an UNLOGGED table of the same %s rows | %.3f ms | tick = %.2fx read | - | - |\n' \
            "$BENCH_BIG_SERVERS" "$M3_WALL_MS" "$M3_WALL_NS" "$BENCH_BIG_SERVERS" "$M3_TC" "$(calc "$M3_WALL_MS / $M3_TC")"
    fi
    if want 4; then
        printf '| 4 | `sim_flush()` of %s buffered samples (%s ticks x %s servers), median of %s | %.0f rows/s (%.0f ms) | `COPY server_metrics_history FROM` a server-side text file of the same rows | %.0f rows/s (%.0f ms) | %.2fx throughput | >= 0.9x | %s |\n' \
            "$FLUSH_ROWS" "$BENCH_FLUSH_TICKS" "$BENCH_BIG_SERVERS" "$BENCH_FLUSH_ROUNDS" "$M4_F_RPS" "$M4_F_MS" "$M4_CT_RPS" "$M4_CT_MS" "$M4_RATIO" "$M4_OK"
        printf '| 4b | same flush | %.0f rows/s (%.0f ms) | the same COPY from a binary file (reference) | %.0f rows/s (%.0f ms) | %.2fx throughput | - | - |\n' \
            "$M4_F_RPS" "$M4_F_MS" "$M4_CB_RPS" "$M4_CB_MS" "$M4_RATIO_B"
    fi
    if want 5; then
        printf '%s\n' "${M5_ROWS[@]}"
    fi
} >"$OUT_DIR/results.md"
log "Summary (Markdown, also in bench/out/results.md) — total runtime ${RUNTIME}s"
echo
cat "$OUT_DIR/results.md"

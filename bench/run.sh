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
for v in BENCH_SECONDS BENCH_ROUNDS BENCH_DISTINCT_ROUNDS BENCH_DISTINCT_TX \
         BENCH_PEER_ROUNDS BENCH_TICKS BENCH_HISTORY_TICKS BENCH_SERVERS \
         BENCH_BIG_SERVERS BENCH_PORT; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: $v must be a positive integer, not '${!v}'" >&2; exit 2; }
done
(( BENCH_SERVERS >= 15 )) || { echo "run.sh: BENCH_SERVERS must be >= 15 (the default fleet)" >&2; exit 2; }
(( BENCH_BIG_SERVERS >= BENCH_SERVERS )) || { echo "run.sh: BENCH_BIG_SERVERS must be >= BENCH_SERVERS" >&2; exit 2; }
case $BENCH_PROTOCOL in simple|extended|prepared) ;; *)
    echo "run.sh: BENCH_PROTOCOL must be simple, extended or prepared" >&2; exit 2;; esac
BENCH_MAX_SERVERS=${BENCH_MAX_SERVERS:-100000}
[[ $BENCH_MAX_SERVERS =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: BENCH_MAX_SERVERS must be a positive integer" >&2; exit 2; }
MAX_SERVERS=$(( BENCH_BIG_SERVERS > BENCH_MAX_SERVERS ? BENCH_BIG_SERVERS : BENCH_MAX_SERVERS ))

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

# pgbench one client; prints "tps latency_ms"
pgb() {  # name  -T secs | -t txs
    local name=$1; shift
    local out
    out=$(as_pg env PGOPTIONS="${PGB_OPTIONS:-}" "$BINDIR/pgbench" -n -c 1 -j 1 -M "$BENCH_PROTOCOL" "$@" -f "$TMP/$name.sql" \
          -h "$TMP" -p "$PORT" -U postgres postgres 2>&1) \
        || { echo "$out" >&2; die "pgbench $name failed"; }
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
log "             start_time='2026-01-05 00:00:00+00'"
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
    # the paused worker reloads on the commit too; let it finish, then reload ourselves
    for _ in $(seq 1 100); do
        [[ $(q "SELECT servers FROM sim_status()") == "$target" ]] && break
        sleep 0.1
    done
    n=$(q "SELECT sim_reload()")
    [[ $n == "$target" ]] || die "sim_reload() loaded $n servers, expected $target"
}

# ============================================================ setup @ 1k
log "setup: $BENCH_SERVERS servers (15 default + $((BENCH_SERVERS - 15)) added), sim_tick(10), UNLOGGED copy"
grow_fleet "$BENCH_SERVERS"
q "SELECT sim_tick(10)" >/dev/null
q "CREATE UNLOGGED TABLE bench_current AS SELECT * FROM sim_current_metrics()" >/dev/null
q "VACUUM ANALYZE bench_current" >/dev/null
N_TABLE=$(q "SELECT count(*) FROM bench_current")
[[ $N_TABLE == "$BENCH_SERVERS" ]] || die "bench_current holds $N_TABLE rows"
TABLE_SIZE=$(q "SELECT pg_size_pretty(pg_table_size('bench_current'))")
log "       bench_current: $N_TABLE rows, $TABLE_SIZE"

sqlfile sim      "SELECT * FROM sim_current_metrics();"
sqlfile table    "SELECT * FROM bench_current;"
sqlfile distinct "SELECT DISTINCT ON (server_id) * FROM server_metrics_history ORDER BY server_id, \"timestamp\" DESC;"
sqlfile lateral  "SELECT h.* FROM server_templates t CROSS JOIN LATERAL (SELECT * FROM server_metrics_history m WHERE m.server_id = t.id ORDER BY m.\"timestamp\" DESC LIMIT 1) h;"
sqlfile sim_count   "SELECT count(*) FROM sim_current_metrics();"
sqlfile table_count "SELECT count(*) FROM bench_current_big;"

# warm-up (connection, caches, first palloc of the reader)
pgb sim -T 1 >/dev/null
pgb table -T 1 >/dev/null

# ============================================================ 1. sim vs table
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
M1_OK=$(awk -v r="$M1_RATIO" 'BEGIN { print (r <= 1.2) ? "yes" : "no" }')
printf '   %-6s %14.1f %14.3f   %14.1f %14.3f\n' median "$M1_SIM_TPS" "$M1_SIM_LAT" "$M1_TAB_TPS" "$M1_TAB_LAT"
log "   => sim latency / table latency = $(fmt "$M1_RATIO" 2)x   (goal <= 1.2x: $M1_OK)"

# ============================================================ 2. sim vs DISTINCT ON
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

# ============================================================ 3. tick @ 100k
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

# ============================================================ summary
hr
RUNTIME=$((SECONDS - T0))
mkdir -p "$OUT_DIR"
{
    echo "Benchmark of \`sim_metrics\` (bench/run.sh), $NOW; $PG_VERSION;"
    echo "CPU: $CPU_MODEL, nproc=$NPROC. Throwaway cluster with fsync=off, shared_buffers=512MB, worker paused;"
    echo "pgbench with 1 client (-M $BENCH_PROTOCOL), median of alternating rounds; latencies in ms."
    echo
    echo "| # | Measured | Result | Peer (same run) | Peer result | Ratio | Goal | Met |"
    echo "|---|----------|-------:|-----------------|------------:|------:|------|:---:|"
    printf '| 1 | `SELECT * FROM sim_current_metrics()`, %s servers | %.3f ms (%.0f tps) | `SELECT *` from an UNLOGGED table of the same %s rows | %.3f ms (%.0f tps) | %.2fx latency | <= 1.2x | %s |\n' \
        "$BENCH_SERVERS" "$M1_SIM_LAT" "$M1_SIM_TPS" "$BENCH_SERVERS" "$M1_TAB_LAT" "$M1_TAB_TPS" "$M1_RATIO" "$M1_OK"
    printf '| 2 | same read, %s servers | %.3f ms | `DISTINCT ON (server_id)` latest row over %s history rows (%s ticks of 30 s), jit=%s | %.1f ms | %.0fx faster | >= 100x | %s |\n' \
        "$BENCH_SERVERS" "$M2_SIM_LAT" "$HIST_ROWS" "$BENCH_HISTORY_TICKS" "$JIT" "$M2_D_LAT" "$M2_SPEEDUP" "$M2_OK"
    printf '| 2a | same read, %s servers | %.3f ms | the same `DISTINCT ON`, jit=off | %.1f ms | %.0fx faster | >= 100x | %s |\n' \
        "$BENCH_SERVERS" "$M2_SIM_LAT" "$M2_DJ_LAT" "$M2_DJ_SPEEDUP" "$(awk -v r="$M2_DJ_SPEEDUP" 'BEGIN { print (r >= 100) ? "yes" : "no" }')"
    printf '| 2b | same read, %s servers | %.3f ms | `LATERAL (... ORDER BY "timestamp" DESC LIMIT 1)` per server, same history (reference) | %.3f ms | %.1fx faster | - | - |\n' \
        "$BENCH_SERVERS" "$M2_SIM_LAT" "$M2_L_LAT" "$M2_L_SPEEDUP"
    printf '| 3 | `sim_tick(1)` model step (`sim_status().tick_ms`), %s servers, median of %s | %.3f ms = %.1f ns/server | `SELECT count(*) FROM sim_current_metrics()`, %s rows | %.3f ms | tick = %.2fx read | <= 100 ns/server | %s |\n' \
        "$BENCH_BIG_SERVERS" "$BENCH_TICKS" "$M3_TICK_MS" "$M3_NS" "$BENCH_BIG_SERVERS" "$M3_SC" "$(calc "$M3_TICK_MS / $M3_SC")" "$M3_OK"
    printf '| 3b | `sim_tick(1)` statement wall time, %s servers | %.3f ms = %.1f ns/server | `SELECT count(*)` from an UNLOGGED table of the same %s rows | %.3f ms | tick = %.2fx read | - | - |\n' \
        "$BENCH_BIG_SERVERS" "$M3_WALL_MS" "$M3_WALL_NS" "$BENCH_BIG_SERVERS" "$M3_TC" "$(calc "$M3_WALL_MS / $M3_TC")"
} >"$OUT_DIR/results.md"
log "Summary (Markdown, also in bench/out/results.md) — total runtime ${RUNTIME}s"
echo
cat "$OUT_DIR/results.md"

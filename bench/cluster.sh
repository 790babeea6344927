# bench/cluster.sh — a throwaway cluster for a benchmark, sourced by the
# bench scripts that need one (bench/nab.sh, bench/detect.sh):
#
#   NAME=nab; BENCH_CONF='sim_metrics.seed = 7'; source bench/cluster.sh
#
# Creates it in a temp dir (unix socket only, fsync off, sim_metrics preloaded,
# the ticker paused, Redis off, time zone UTC), starts it, creates the extension, and
# removes it on exit (its log's tail on failure). Defines as_pg (run as the
# cluster's owner), q (one SQL command, unaligned output), psql_f (a file),
# die and TMP. Needs PG_CONFIG (default pg_config) with sim_metrics installed.
die() { echo "$NAME.sh: $*" >&2; exit 1; }
PG_CONFIG=${PG_CONFIG:-pg_config}
command -v "$PG_CONFIG" >/dev/null 2>&1 || die "$PG_CONFIG not found; set PG_CONFIG=/path/to/pg_config"
BINDIR=$("$PG_CONFIG" --bindir)
[[ -f $("$PG_CONFIG" --pkglibdir)/sim_metrics.so ]] || die "sim_metrics is not installed; run 'make && sudo make install' first"
if (( EUID == 0 )); then
    id postgres >/dev/null 2>&1 || die "running as root needs a 'postgres' OS user to own the cluster"
    as_pg() { runuser -u postgres -- "$@"; }
    OWNER=postgres
else
    as_pg() { "$@"; }
    OWNER=$(id -un)
fi
TMP=$(mktemp -d "${TMPDIR:-/tmp}/sim_metrics_$NAME.XXXXXX")
chmod 755 "$TMP"; chown "$OWNER" "$TMP"
STARTED=0
bench_cleanup() {
    local rc=$?
    trap - EXIT
    (( STARTED )) && as_pg "$BINDIR/pg_ctl" -D "$TMP/data" -m immediate -w stop >/dev/null 2>&1 || true
    (( rc != 0 )) && [[ -f $TMP/server.log ]] && tail -n 30 "$TMP/server.log" >&2
    rm -rf "$TMP"
    exit "$rc"
}
trap bench_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
PORT=${BENCH_PORT:-5498}
while [[ -e /tmp/.s.PGSQL.$PORT || -e /var/run/postgresql/.s.PGSQL.$PORT || -e $TMP/.s.PGSQL.$PORT ]]; do PORT=$((PORT + 1)); done
as_pg "$BINDIR/initdb" -D "$TMP/data" -U postgres --auth=trust -E UTF8 --locale=C >"$TMP/initdb.log" 2>&1 \
    || { cat "$TMP/initdb.log" >&2; die "initdb failed"; }
as_pg tee -a "$TMP/data/postgresql.conf" >/dev/null <<CONF
listen_addresses = ''
port = $PORT
unix_socket_directories = '$TMP'
shared_preload_libraries = 'sim_metrics'
sim_metrics.database_name = 'postgres'
sim_metrics.enabled = off
sim_metrics.redis_host = ''
max_worker_processes = 16
shared_buffers = 256MB
fsync = off
synchronous_commit = off
full_page_writes = off
max_wal_size = 4GB
log_min_messages = warning
timezone = 'UTC'
${BENCH_CONF:-}
CONF
as_pg "$BINDIR/pg_ctl" -D "$TMP/data" -l "$TMP/server.log" -w -t 60 start >/dev/null || die "the cluster did not start"
STARTED=1
PSQL=("$BINDIR/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$TMP" -p "$PORT" -U postgres -d postgres)
q() { as_pg "${PSQL[@]}" -c "$1"; }
psql_f() { as_pg "${PSQL[@]}" "$@"; }
q "CREATE EXTENSION sim_metrics" >/dev/null

# scripts/throwaway.sh — sourced by the scripts and benchmarks that need a
# throwaway cluster with the extension preloaded (scripts/incident.sh,
# bench/realism.sh, bench/soak.sh, bench/redis.sh, bench/nab.sh, bench/detect.sh).
#
#   tw_init NAME        PG_CONFIG, BINDIR, as_pg, TMP (a fresh directory the
#                       cluster's user owns) and the exit trap, which stops
#                       the cluster, runs tw_on_exit when the caller defined
#                       it, shows the server log's tail on failure and
#                       removes TMP
#   tw_start PORT       initdb, postgresql.conf (loopback-free: a unix socket
#                       in TMP; the lines on stdin appended), start; defines
#                       q SQL (psql -At, stops on error)
#   tw_wait_fleet N     wait (bounded) until sim_status().servers = N
#
# initdb refuses root: as root, the cluster and every client run as postgres.

tw_init() {
    PG_CONFIG=${PG_CONFIG:-pg_config}
    BINDIR=$("$PG_CONFIG" --bindir)
    if (( EUID == 0 )); then as_pg() { runuser -u postgres -- "$@"; }; else as_pg() { "$@"; }; fi
    TMP=$(mktemp -d "${TMPDIR:-/tmp}/sim_metrics_$1.XXXXXX")
    chmod 755 "$TMP"
    if (( EUID == 0 )); then chown postgres "$TMP"; fi
    TW_STARTED=0
    trap tw_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

tw_cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if (( TW_STARTED )); then
        as_pg "$BINDIR/pg_ctl" -D "$TMP/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    if declare -F tw_on_exit >/dev/null; then tw_on_exit || true; fi
    if (( rc != 0 )) && [[ -f $TMP/server.log ]]; then tail -n 20 "$TMP/server.log" >&2; fi
    rm -rf "$TMP"
    exit "$rc"
}

tw_start() {
    TW_PORT=$1
    as_pg "$BINDIR/initdb" -D "$TMP/data" -U postgres --auth=trust -E UTF8 --locale=C >"$TMP/initdb.log" 2>&1 \
        || { cat "$TMP/initdb.log" >&2; exit 1; }
    {
        printf "listen_addresses = ''\nport = %s\nunix_socket_directories = '%s'\n" "$TW_PORT" "$TMP"
        printf "shared_preload_libraries = 'sim_metrics'\nsim_metrics.database_name = 'postgres'\n"
        cat
    } | as_pg tee -a "$TMP/data/postgresql.conf" >/dev/null
    as_pg "$BINDIR/pg_ctl" -D "$TMP/data" -l "$TMP/server.log" -w -t 60 start >/dev/null
    TW_STARTED=1
}

q() { as_pg "$BINDIR/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$TMP" -p "$TW_PORT" -U postgres -d postgres -c "$1"; }

tw_wait_fleet() {
    for _ in $(seq 1 100); do
        [[ $(q "SELECT servers FROM sim_status()") == "$1" ]] && return 0
        sleep 0.1
    done
    echo "$(basename "$0"): the fleet of $1 servers did not load" >&2
    exit 1
}

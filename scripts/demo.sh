#!/usr/bin/env bash
# The demo: build and install sim_metrics, start a throwaway cluster with the
# worker (1 s ticks, one simulated minute per tick), create the extension on
# its embedded 15-server fleet and show the fleet changing live.
#
#   scripts/demo.sh          start (or reuse) the demo cluster and watch it
#   scripts/demo.sh stop     stop it and remove its directory
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/lib/postgresql/15/bin:$PATH
DIR=${SIM_DEMO_DIR:-/tmp/sim_metrics_demo}
PORT=${SIM_DEMO_PORT:-5444}
ROUNDS=${SIM_DEMO_ROUNDS:-5}

as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
psql_demo() { as_pg psql -X -q -h "$DIR" -p "$PORT" -d postgres "$@"; }

if [ "${1:-}" = "stop" ]; then
    as_pg pg_ctl -D "$DIR/data" -m fast stop 2>/dev/null || true
    rm -rf "$DIR"
    echo "demo cluster stopped"
    exit 0
fi

./scripts/deps.sh
make -s PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
if [ "$(id -u)" -eq 0 ]; then make -s install >/dev/null; else sudo make -s install >/dev/null; fi

if [ ! -d "$DIR/data" ]; then
    mkdir -p "$DIR"
    [ "$(id -u)" -eq 0 ] && chown postgres "$DIR"
    as_pg initdb -D "$DIR/data" -A trust -U postgres >/dev/null
    cat >> "$DIR/data/postgresql.conf" <<CONF
port = $PORT
listen_addresses = ''
unix_socket_directories = '$DIR'
shared_preload_libraries = 'sim_metrics'
sim_metrics.tick_interval = 1s
sim_metrics.time_scale = 60        # one simulated minute per tick
sim_metrics.seed = 42
CONF
fi
# (re)start, so a rebuilt library is the one loaded
if as_pg pg_ctl -D "$DIR/data" status >/dev/null 2>&1; then
    as_pg pg_ctl -D "$DIR/data" -l "$DIR/server.log" -w -m fast restart >/dev/null
else
    as_pg pg_ctl -D "$DIR/data" -l "$DIR/server.log" -w start >/dev/null
fi
psql_demo -c "CREATE EXTENSION IF NOT EXISTS sim_metrics"

# wait (bounded) until the worker has loaded the fleet and ticked
for _ in $(seq 1 50); do
    t=$(psql_demo -At -c "SELECT tick FROM sim_status()")
    [ "${t:-0}" -gt 0 ] && break
    sleep 0.2
done

for i in $(seq 1 "$ROUNDS"); do
    psql_demo -c "SELECT tick, to_char(sim_time, 'Dy HH24:MI') AS sim_time, servers, round(tick_ms::numeric, 3) AS tick_ms FROM sim_status()" \
              -c "SELECT server_id, role, location, cpu_usage AS cpu, memory_usage AS mem, disk_usage AS disk,
                         pg_size_pretty(network_io) || '/s' AS network, response_time_ms AS rt_ms, status
                  FROM sim_current_metrics() ORDER BY server_id"
    [ "$i" -lt "$ROUNDS" ] && sleep 2
done

cat <<MSG
The demo cluster keeps running. Try:
  psql -h $DIR -p $PORT -U postgres -c 'SELECT * FROM sim_current_metrics()'
  psql -h $DIR -p $PORT -U postgres -c 'SELECT * FROM sim_status()'
Stop it with: scripts/demo.sh stop
MSG

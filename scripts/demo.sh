#!/usr/bin/env bash
# The demo: build and install sim_metrics, start a throwaway cluster with the
# workers (1 s ticks, one simulated minute per tick) and, when redis-server
# is installed, a private Redis on a unix socket for the warm layer; create
# the extension on its embedded 15-server fleet and show the fleet changing
# live, and one server in Redis beside sim_server_metrics().
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

REDIS_SOCK="$DIR/redis.sock"
if [ "${1:-}" = "stop" ]; then
    as_pg pg_ctl -D "$DIR/data" -m fast stop 2>/dev/null || true
    [ -S "$REDIS_SOCK" ] && as_pg redis-cli -s "$REDIS_SOCK" shutdown nosave 2>/dev/null || true
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
sim_metrics.incident_rate = 24     # automatic incidents a simulated day (a day is 24 minutes here)
CONF
fi
# the warm layer: a private redis-server on a unix socket, when installed
if command -v redis-server >/dev/null 2>&1; then
    if ! as_pg redis-cli -s "$REDIS_SOCK" ping >/dev/null 2>&1; then
        as_pg redis-server --port 0 --unixsocket "$REDIS_SOCK" --unixsocketperm 700 --save '' \
            --appendonly no --dir "$DIR" --daemonize yes --logfile "$DIR/redis.log" >/dev/null
    fi
    REDIS=on
    grep -q "^sim_metrics.redis_host" "$DIR/data/postgresql.conf" ||
        echo "sim_metrics.redis_host = '$REDIS_SOCK'" | as_pg tee -a "$DIR/data/postgresql.conf" >/dev/null
else
    REDIS=off
    echo "redis-server is not installed: the warm layer runs in mock mode (sim_metrics.redis_host empty)"
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

# the past: a week of history with its incidents, written at once, from the
# same model; live goes on from its end (a fresh demo cluster only)
if psql_demo -At -c "SELECT sim_backfill('7 days') AS backfilled_rows" >"$DIR/backfill.out" 2>&1; then
    echo "sim_backfill('7 days') wrote $(tail -n 1 "$DIR/backfill.out") rows of history; the incidents in it:"
    psql_demo -c "SELECT scenario, count(DISTINCT run_id) AS runs, count(*) AS samples,
                         min(\"timestamp\")::date AS first, max(\"timestamp\")::date AS last
                  FROM sim_history_labelled WHERE is_incident GROUP BY 1 ORDER BY 2 DESC"
    echo "how well the built-in anomaly detector found them (NAB's scoring, sim_detector_report):"
    psql_demo -c "SELECT profile, round(score::numeric, 1) AS score, round(threshold::numeric, 3) AS threshold,
                         true_positives, false_positives, false_negatives, round(recall::numeric, 3) AS recall,
                         median_delay
                  FROM sim_detector_report((SELECT min(\"timestamp\") FROM server_metrics_history),
                                           (SELECT max(\"timestamp\") FROM server_metrics_history))"
else
    echo "(no backfill: this demo cluster has history already; sim_backfill() writes the past of a fleet that has none)"
fi

# an incident of our own: memory climbs on a cache for 20 simulated minutes (20 s here)
psql_demo -c "SELECT sim_scenario_start('memory_leak', '{cache-redis-icn-01}', 0.8, '20 min') AS run_id" 2>/dev/null ||
    echo "(cache-redis-icn-01 is already in an incident)"

for i in $(seq 1 "$ROUNDS"); do
    psql_demo -c "SELECT tick, to_char(sim_time, 'Dy HH24:MI') AS sim_time, servers, round(tick_ms::numeric, 3) AS tick_ms FROM sim_status()" \
              -c "SELECT server_id, role, location, cpu_usage AS cpu, memory_usage AS mem, disk_usage AS disk,
                         pg_size_pretty(network_io) || '/s' AS network, response_time_ms AS rt_ms, status, scenario,
                         anomaly_score AS anomaly, anomaly_metric
                  FROM sim_current_metrics() ORDER BY server_id"
    [ "$i" -lt "$ROUNDS" ] && sleep 2
done

psql_demo -c "SELECT run_id, parent_run_id AS parent, scenario, state, phase, progress, servers, automatic
              FROM sim_scenario_runs() ORDER BY run_id DESC LIMIT 10"

if [ "$REDIS" = on ]; then
    for _ in $(seq 1 50); do
        [ "$(as_pg redis-cli -s "$REDIS_SOCK" exists sim:server:web-nginx-icn-01)" = 1 ] && break
        sleep 0.2
    done
    echo "Redis (warm layer): redis-cli HGETALL sim:server:web-nginx-icn-01"
    as_pg redis-cli -s "$REDIS_SOCK" hgetall sim:server:web-nginx-icn-01 | paste - -
    psql_demo -c "SELECT source, server_id, cpu_usage, memory_usage, status, tick FROM sim_server_metrics('web-nginx-icn-01')" \
              -c "SELECT redis_state, redis_writes, redis_skipped, redis_errors FROM sim_status()"
fi

cat <<MSG
The demo cluster keeps running. Try:
  psql -h $DIR -p $PORT -U postgres -c 'SELECT * FROM sim_current_metrics()'
  psql -h $DIR -p $PORT -U postgres -c 'SELECT * FROM sim_status()'
  psql -h $DIR -p $PORT -U postgres -c "SELECT sim_scenario_start('slow_database', '{db-mysql-icn-primary}')"
  psql -h $DIR -p $PORT -U postgres -c 'SELECT * FROM sim_incident_labels'
  psql -h $DIR -p $PORT -U postgres -c "\\copy (SELECT * FROM sim_history_labelled) TO 'fleet.csv' CSV HEADER"
Stop it with: scripts/demo.sh stop
MSG

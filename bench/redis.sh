#!/usr/bin/env bash
# bench/redis.sh — the warm layer at scale, beside its peers in one run.
#
# A throwaway cluster (fsync off) and a private redis-server on a unix
# socket; 100,000 servers; every server due every round
# (redis_min_interval 0, change_threshold 0). Measures:
#   1. servers mirrored per second by the mirror worker, ticking on its own
#      (each server a 13-field HSET and a ZADD when due, every sample of
#      every tick to the journal) while the writer flushes every sample
#      (RB_SERVERS x 1000 / RB_TICK_MS rows a second) into the history
#      table on the same machine; beside redis-benchmark sending one
#      11-field HSET a server over one pipelined connection under the same
#      load (the simulation running and flushing, only the mirror off).
#      Not a fair peer: it sends a third of what the mirror sends;
#   2. the mirror beside its fair peer, bench/redis_peer.c (built here with
#      the extension's flags): tick by tick (sim_tick(1)), each tick's
#      round timed from the tick to the mirror's mark in Redis, against
#      the peer sending the same commands for the same servers and ticks
#      (journal, HSET, ZADD, mark) over one pipelined hiredis connection;
#      RB_ROUNDS rounds of RB_FAIR_TICKS ticks each way, in turns, the
#      writer flushing between them (sim_flush()), never during;
#   3. the ticker's tick time (sim_status().tick_ms) with Redis on and off.
#
#   sudo bench/redis.sh                      (repo root, after make install)
#
# Environment overrides (defaults in brackets):
#   RB_SERVERS [100000]  fleet size
#   RB_SECONDS [60]      measured time of 1
#   RB_TICK_MS [500]     sim_metrics.tick_interval during 1
#   RB_ROUNDS [7]        rounds of 2, each the mirror's and the peer's turn
#   RB_FAIR_TICKS [3]    ticks a turn in 2
#   RB_TICKS [20]        ticks timed for 3, each way
#   PG_CONFIG [pg_config]
set -euo pipefail

RB_SERVERS=${RB_SERVERS:-100000}
RB_SECONDS=${RB_SECONDS:-60}
RB_TICK_MS=${RB_TICK_MS:-500}
RB_TICKS=${RB_TICKS:-20}
RB_ROUNDS=${RB_ROUNDS:-7}
RB_FAIR_TICKS=${RB_FAIR_TICKS:-3}
for v in RB_SERVERS RB_SECONDS RB_TICK_MS RB_TICKS RB_ROUNDS RB_FAIR_TICKS; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "redis.sh: $v must be a positive integer" >&2; exit 2; }
done
command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null ||
    { echo "redis.sh: needs redis-server and redis-benchmark (apt-get install redis-server redis-tools)" >&2; exit 1; }
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../scripts/throwaway.sh"
tw_init redisbench
chmod 700 "$TMP"
SOCK=$TMP/redis.sock
# the fair peer, with the extension's warnings as errors
# shellcheck disable=SC2046
gcc $("$PG_CONFIG" --cflags) -std=gnu11 -Wall -Wextra -Werror "$HERE/redis_peer.c" -lhiredis -o "$TMP/redis_peer" ||
    { echo "redis.sh: cannot build bench/redis_peer.c (needs gcc and libhiredis-dev)" >&2; exit 1; }
(( EUID == 0 )) && chown postgres "$TMP/redis_peer"
tw_on_exit() { [[ -S $SOCK ]] && as_pg redis-cli -s "$SOCK" shutdown nosave >/dev/null 2>&1; }

as_pg redis-server --port 0 --unixsocket "$SOCK" --unixsocketperm 700 --save '' --appendonly no \
    --dir "$TMP" --daemonize yes --logfile "$TMP/redis.log"
for _ in $(seq 1 50); do as_pg redis-cli -s "$SOCK" ping >/dev/null 2>&1 && break; sleep 0.1; done
tw_start 5478 <<EOF
sim_metrics.max_servers = $RB_SERVERS
sim_metrics.tick_interval = '${RB_TICK_MS}ms'
sim_metrics.flush_interval = '5s'
sim_metrics.redis_host = '$SOCK'
sim_metrics.redis_min_interval = 0
sim_metrics.change_threshold = 0
sim_metrics.redis_timeout = '5s'
sim_metrics.redis_ttl = 3600
fsync = off
synchronous_commit = off
shared_buffers = 512MB
log_min_messages = warning
EOF
q "CREATE EXTENSION sim_metrics"
q "INSERT INTO server_templates (id, name, hostname, role, location)
   SELECT 'rb-' || lpad(i::text, 6, '0'), 'RB ' || i, 'rb-' || i || '.bench',
          (ARRAY['web','app','database','cache','storage','load-balancer'])[1 + i % 6], 'Lab-' || (i % 8)
     FROM generate_series(1, $RB_SERVERS - 15) i"
for _ in $(seq 1 120); do
    [[ $(q "SELECT servers, redis_state FROM sim_status()") == "$RB_SERVERS|connected" ]] && break
    sleep 0.5
done
[[ $(q "SELECT servers FROM sim_status()") == "$RB_SERVERS" ]] || { echo "redis.sh: the fleet did not load" >&2; exit 1; }
echo "sim_metrics Redis bench: $RB_SERVERS servers, ${RB_TICK_MS} ms ticks, every server due every round"

# 1. the mirror, ticking on its own, vs redis-benchmark
rcmds() { as_pg redis-cli -s "$SOCK" info stats | tr -d '\r' | sed -n 's/^total_commands_processed://p'; }
sleep 5
as_pg redis-cli -s "$SOCK" config resetstat >/dev/null
c0=$(rcmds)
IFS='|' read -r w0 e0 t0 <<<"$(q "SELECT redis_writes, redis_errors, extract(epoch FROM clock_timestamp()) FROM sim_status()")"
sleep "$RB_SECONDS"
IFS='|' read -r w1 e1 t1 <<<"$(q "SELECT redis_writes, redis_errors, extract(epoch FROM clock_timestamp()) FROM sim_status()")"
c1=$(rcmds)
usec() { as_pg redis-cli -s "$SOCK" info commandstats | tr -d '\r' | sed -n "s/^cmdstat_$1:.*usec_per_call=\([0-9.]*\).*/\1/p"; }
HSET_US=$(usec hset); ZADD_US=$(usec zadd)
MIRROR=$(awk -v a="$w0" -v b="$w1" -v s="$t0" -v e="$t1" 'BEGIN { printf "%.0f", (b - a) / (e - s) }')
CMDS=$(awk -v a="$c0" -v b="$c1" -v s="$t0" -v e="$t1" 'BEGIN { printf "%.0f", (b - a) / (e - s) }')
# the peer under the same load: the simulation runs and the writer flushes
# as before, only the mirror sends nothing (redis_host empty)
set_conf() {
    as_pg sed -i "s|^$1 = .*|$1 = '$2'|" "$TMP/data/postgresql.conf"
    q "SELECT pg_reload_conf()" >/dev/null
}
set_redis_host() {
    set_conf sim_metrics.redis_host "$1"
    for _ in $(seq 1 100); do
        [[ $(q "SELECT redis_state FROM sim_status()") == "$2" ]] && return
        sleep 0.2
    done
    echo "redis.sh: the mirror did not become $2" >&2; exit 1
}
set_redis_host '' off
sleep 2
FIELDS="cpu_usage 12.34 memory_usage 45.67 disk_usage 25.00 network_io 487989044 network_usage 39.04 response_time_ms 31.17 status online scenario x tick 123456 sim_time 2026-12-02T01:11:40+00 updated_at 2026-12-02T01:11:40.003+00"
# shellcheck disable=SC2086
PEER=$(as_pg redis-benchmark -s "$SOCK" -c 1 -P 1000 -n 2000000 -r "$RB_SERVERS" -q \
       HSET sim:bench:__rand_int__ $FIELDS | tr '\r' '\n' |
       sed -n 's/.*: \([0-9.]*\) requests per second.*/\1/p' | tail -n 1)
PEER=${PEER:-0}
RATIO1=$(awk -v a="$MIRROR" -v b="$PEER" 'BEGIN { printf "%.2f", b ? a / b : 0 }')
RATIO3=$(awk -v a="$CMDS" -v b="$PEER" 'BEGIN { printf "%.2f", b ? a / b : 0 }')
set_redis_host "$SOCK" connected

# The mirror has sent every tick (its mark in Redis reached the simulation's
# tick), as it has between ticks when it keeps up; at once when Redis is off.
mirror_caught_up() {
    local t m
    [[ $(q "SELECT redis_state FROM sim_status()") == off ]] && return
    t=$(q "SELECT tick FROM sim_status()")
    for _ in $(seq 1 600); do
        m=$(as_pg redis-cli -s "$SOCK" hget sim:mirror tick)
        [[ -n $m ]] && (( m >= t )) && return
        sleep 0.1
    done
}

# 2. the mirror tick by tick vs the fair peer, in turns. No flush runs
# during a turn: the writer's interval is an hour, and sim_flush() between
# turns gives the journal ticks to the table (the next turn UNLINKs them,
# the mirror's as the peer's).
q "SELECT sim_stop()" >/dev/null
mirror_caught_up
# the reload reconnects the mirror, which then writes every server again:
# wait for that round, so no turn gets it
W0=$(q "SELECT redis_writes FROM sim_status()")
set_conf sim_metrics.flush_interval 1h
for _ in $(seq 1 300); do
    (( $(q "SELECT redis_writes FROM sim_status()") >= W0 + RB_SERVERS )) && break
    sleep 0.2
done
mirror_caught_up
# CPU time (clock ticks) of the mirror and of redis-server, from /proc:
# wall time on a shared machine is noisy, what each side costs less so
REDIS_PID=$(as_pg redis-cli -s "$SOCK" info server | tr -d '\r' | sed -n 's/^process_id://p')
MIRROR_PID=$(q "SELECT pid FROM pg_stat_activity WHERE backend_type = 'sim_metrics mirror'")
cpu_of() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)
# a tick's round: from the tick's end (last_tick_at) to the mark, seen by
# a waiter that polls from before the tick. Prints servers/s, then the
# CPU seconds of the mirror and of Redis over the turn.
mirror_turn() {
    local t w seen at total=0 m0 r0
    m0=$(cpu_of "$MIRROR_PID"); r0=$(cpu_of "$REDIS_PID")
    for _ in $(seq 1 "$1"); do
        t=$(( $(q "SELECT tick FROM sim_status()") + 1 ))
        as_pg "$TMP/redis_peer" wait "$SOCK" sim:mirror "$t" >"$TMP/seen" & w=$!
        q "SELECT sim_tick(1)" >/dev/null
        wait "$w" || { echo "redis.sh: the mirror did not send tick $t" >&2; exit 1; }
        seen=$(cat "$TMP/seen")
        at=$(q "SELECT extract(epoch FROM last_tick_at) FROM sim_status()")
        total=$(awk -v a="$total" -v s="$at" -v e="$seen" 'BEGIN { printf "%.6f", a + e - s }')
    done
    awk -v n="$RB_SERVERS" -v t="$1" -v s="$total" -v m="$(( $(cpu_of "$MIRROR_PID") - m0 ))" \
        -v r="$(( $(cpu_of "$REDIS_PID") - r0 ))" -v hz="$HZ" \
        'BEGIN { printf "%.0f %.3f %.3f", n * t / s, m / hz, r / hz }'
    q "SELECT sim_flush()" >/dev/null
}
# the peer's ticks go on from turn to turn; sets p, its servers/s, and
# pc, pr: the CPU seconds of the peer and of Redis over the turn
PEER_TICK=1
peer_turn() {
    local out r0
    r0=$(cpu_of "$REDIS_PID")
    out=$(as_pg "$TMP/redis_peer" run "$SOCK" "$RB_SERVERS" "$1" "$PEER_TICK") ||
        { echo "redis.sh: bench/redis_peer.c failed" >&2; exit 1; }
    pr=$(awk -v r="$(( $(cpu_of "$REDIS_PID") - r0 ))" -v hz="$HZ" 'BEGIN { printf "%.3f", r / hz }')
    PEER_TICK=$((PEER_TICK + $1))
    read -r p _ pc <<<"$out"
}
# a turn of each first, not counted: both sides' keys exist and hold samples
mirror_turn 1 >/dev/null
peer_turn 1
FM=(); FP=(); FR=(); CPU_M=0; CPU_MR=0; CPU_P=0; CPU_PR=0
for r in $(seq 1 "$RB_ROUNDS"); do
    if (( r % 2 )); then
        read -r m mc mr <<<"$(mirror_turn "$RB_FAIR_TICKS")"; peer_turn "$RB_FAIR_TICKS"
    else
        peer_turn "$RB_FAIR_TICKS"; read -r m mc mr <<<"$(mirror_turn "$RB_FAIR_TICKS")"
    fi
    FM+=("$m"); FP+=("$p"); FR+=("$(awk -v a="$m" -v b="$p" 'BEGIN { printf "%.3f", a / b }')")
    read -r CPU_M CPU_MR CPU_P CPU_PR <<<"$(awk -v a="$CPU_M $CPU_MR $CPU_P $CPU_PR" -v b="$mc $mr $pc $pr" \
        'BEGIN { split(a, x, " "); split(b, y, " "); for (i = 1; i <= 4; i++) printf "%.3f ", x[i] + y[i] }')"
    echo "  round $r: mirror $m servers/s (CPU: mirror ${mc} s, Redis ${mr} s), fair peer $p servers/s (CPU: peer ${pc} s, Redis ${pr} s)"
done
# CPU microseconds a server and tick, over every turn
per_st() { awk -v c="$1" -v n="$((RB_SERVERS * RB_FAIR_TICKS * RB_ROUNDS))" 'BEGIN { printf "%.2f", c * 1e6 / n }'; }
US_M=$(per_st "$CPU_M"); US_MR=$(per_st "$CPU_MR"); US_P=$(per_st "$CPU_P"); US_PR=$(per_st "$CPU_PR")
median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
FAIR_M=$(median "${FM[@]}"); FAIR_P=$(median "${FP[@]}"); FAIR_R=$(median "${FR[@]}")
FAIR_RANGE="$(printf '%s\n' "${FR[@]}" | sort -g | head -n 1)–$(printf '%s\n' "${FR[@]}" | sort -g | tail -n 1)"
set_conf sim_metrics.flush_interval 5s

# 3. tick time with Redis on and off (the ticker never talks to Redis)
tick_median() {
    q "SELECT sim_stop()" >/dev/null
    mirror_caught_up
    local v=()
    for _ in $(seq 1 "$RB_TICKS"); do
        q "SELECT sim_tick(1)" >/dev/null
        v+=("$(q "SELECT tick_ms FROM sim_status()")")
        mirror_caught_up
    done
    median "${v[@]}"
}
ON=$(tick_median)
set_redis_host '' off
OFF=$(tick_median)
RATIO2=$(awk -v a="$ON" -v b="$OFF" 'BEGIN { printf "%.2f", b ? a / b : 0 }')

echo
echo "| measured | result | peer, same run | peer | ratio | goal |"
echo "|---|---:|---|---:|---:|---|"
echo "| servers mirrored to Redis by the mirror, tick by tick ($RB_SERVERS servers x $RB_FAIR_TICKS ticks a turn; each server and tick: its journal field, a 13-field HSET, a ZADD; the mark a tick), median of $RB_ROUNDS turns | $FAIR_M servers/s | \`bench/redis_peer.c\`: the same commands for the same servers and ticks over one pipelined hiredis connection, in turns with the mirror | $FAIR_P servers/s | **$FAIR_R** (turns: $FAIR_RANGE) | >= 0.8 |"
echo "| CPU a server and tick over the turns of 2 (/proc; the client, then Redis during its turns) | mirror $US_M µs, Redis $US_MR µs | the peer's | peer $US_P µs, Redis $US_PR µs | $(awk -v a="$US_M" -v b="$US_P" 'BEGIN { printf "%.2f", b ? a / b : 0 }') (client) | – |"
echo "| servers mirrored by the mirror ticking on its own every $RB_TICK_MS ms ($RB_SERVERS servers, each a 13-field HSET + ZADD when due, every sample to the journal besides; the writer flushes every sample to the table meanwhile) | $MIRROR servers/s | \`redis-benchmark\`: one 11-field HSET a server (not the mirror's commands: a third of them), one connection, pipeline 1000, the simulation running and flushing as in the mirror's run | $PEER HSET/s | $RATIO1 | – |"
echo "| commands Redis ran for the mirror ticking on its own (HSET, ZADD, journal HSETs of 1000 fields, EXPIREs, UNLINKs) | $CMDS commands/s | the same \`redis-benchmark\` | $PEER HSET/s | $RATIO3 | – |"
echo "| tick at $RB_SERVERS servers (\`tick_ms\`, median of $RB_TICKS), Redis on | $ON ms | the same, Redis off | $OFF ms | $RATIO2 | ~ 1.0 |"
echo "| Redis's own time a call, the mirror ticking on its own (\`INFO commandstats\`) | HSET ${HSET_US:-?} µs (the servers' and the journal's), ZADD ${ZADD_US:-?} µs | – | – | – | – |"
echo "| Redis errors, the mirror ticking on its own | $((e1 - e0)) | – | – | – | 0 |"

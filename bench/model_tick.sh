#!/usr/bin/env bash
# bench/model_tick.sh — the model's cost per server and tick, beside the
# previous model's in the same run: bench/model_tick.c built against
# src/model.c as it is and as it was at MODEL_PEER (git), each with the
# same flags as the extension (-O2, no fused multiply-add), run in turns.
#
#   bench/model_tick.sh                    (repo root; needs gcc and git)
#
# Environment overrides (defaults in brackets):
#   MODEL_PEER [627f7f4]   the commit whose model is the peer (model v1)
#   MT_SERVERS [10000]     servers
#   MT_TICKS [300]         ticks per run
#   MT_RUNS [21]           runs of each, in turns; the median is shown
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL_PEER=${MODEL_PEER:-627f7f4}
MT_SERVERS=${MT_SERVERS:-10000}
MT_TICKS=${MT_TICKS:-300}
MT_RUNS=${MT_RUNS:-21}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/sim_metrics_model_tick.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$TMP/peer"
git show "$MODEL_PEER:src/model.c" > "$TMP/peer/model.c"
git show "$MODEL_PEER:src/model.h" > "$TMP/peer/model.h"
CFLAGS="-O2 -std=gnu11 -ffp-contract=off"
# shellcheck disable=SC2086
gcc $CFLAGS -Isrc bench/model_tick.c src/model.c -lm -o "$TMP/now"
# shellcheck disable=SC2086
gcc $CFLAGS -I"$TMP/peer" bench/model_tick.c "$TMP/peer/model.c" -lm -o "$TMP/peer/bin"
now=(); peer=()
for _ in $(seq 1 "$MT_RUNS"); do
    now+=("$("$TMP/now" "$MT_SERVERS" "$MT_TICKS" | cut -d' ' -f1)")
    peer+=("$("$TMP/peer/bin" "$MT_SERVERS" "$MT_TICKS" | cut -d' ' -f1)")
done
median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
N=$(median "${now[@]}"); P=$(median "${peer[@]}")
echo "model tick, $MT_SERVERS servers x $MT_TICKS ticks of 30 s, median of $MT_RUNS runs in turns"
echo
echo "| measured | result | peer, same run | peer | ratio | goal |"
echo "|---|---:|---|---:|---:|---|"
echo "| model step, this version | $N ns/server | the model at $MODEL_PEER$([[ $MODEL_PEER == 627f7f4 ]] && echo " (v1)") | $P ns/server | $(awk -v a="$N" -v b="$P" 'BEGIN { printf "%.2f", a / b }') | <= 1.2 |"

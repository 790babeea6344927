#!/usr/bin/env bash
# The test command: install dependencies, build with -Werror, install, then
#   1. the pure-C model tests under ASan/UBSan and under valgrind,
#   2. pg_regress in a temporary instance (worker paused, sim_tick, fixed seed),
#   3. the TAP suite (real clusters: worker lifecycle, faults, reproducibility).
# initdb refuses root, so 2 and 3 run as the unprivileged user "postgres" in a
# copy of the tree. Ends with "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
export PATH=/usr/lib/postgresql/15/bin:$PATH
PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config

./scripts/deps.sh || { echo "dependencies missing"; echo "0 passed, 1 failed"; exit 1; }

run_as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

make -s PG_CONFIG=$PG_CONFIG clean >/dev/null
make -s PG_CONFIG=$PG_CONFIG || { echo "0 passed, 1 failed"; exit 1; }
# scripts an earlier install left (a base script since replaced) would
# change which path CREATE EXTENSION ... VERSION takes
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
as_root find "$($PG_CONFIG --sharedir)/extension" -maxdepth 1 -name 'sim_metrics--*.sql' -delete
if [ "$(id -u)" -eq 0 ]; then make -s PG_CONFIG=$PG_CONFIG install >/dev/null
else sudo make -s PG_CONFIG=$PG_CONFIG install >/dev/null; fi

passed=0; failed=0
count() {  # count "ok N" / "not ok N" lines of a TAP-ish log
    local p f
    p=$(grep -cE '^[[:space:]]*ok [0-9]+' "$1" || true)
    f=$(grep -cE '^[[:space:]]*not ok [0-9]+' "$1" || true)
    passed=$((passed + p)); failed=$((failed + f))
}

LOGDIR=$(mktemp -d /tmp/sim_metrics_test.XXXXXX)
chmod 755 "$LOGDIR"

echo "== model tests (ASan/UBSan) =="
make -s model-check > "$LOGDIR/model.log" 2>&1; rc=$?
cat "$LOGDIR/model.log" | tail -n 3; count "$LOGDIR/model.log"
[ $rc -eq 0 ] || { grep -q 'not ok' "$LOGDIR/model.log" || failed=$((failed + 1)); }

echo "== model tests (valgrind) =="
if make -s model-valgrind > "$LOGDIR/model_vg.log" 2>&1; then
    passed=$((passed + 1)); echo "valgrind: clean"
else
    failed=$((failed + 1)); tail -n 30 "$LOGDIR/model_vg.log"
fi

echo "== static hiredis build (make HIREDIS_STATIC=1) =="
SDIR="$LOGDIR/static"
mkdir -p "$SDIR"
tar -C "$ROOT" --exclude=.git --exclude=tmp_check --exclude=tmp_check_regress -cf - . | tar -C "$SDIR" -xf -
if make -C "$SDIR" -s PG_CONFIG=$PG_CONFIG clean >/dev/null && \
   make -C "$SDIR" -s PG_CONFIG=$PG_CONFIG HIREDIS_STATIC=1 > "$LOGDIR/static.log" 2>&1; then
    needed=$(readelf -d "$SDIR/sim_metrics.so" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')
    exported=$(nm -D --defined-only "$SDIR/sim_metrics.so" | grep -c ' redis' || true)
    if [ "$needed" = "libc.so.6 " ] && [ "$exported" -eq 0 ]; then
        echo "ok - static: needs only libc, exports no hiredis symbol"; passed=$((passed + 1))
    else
        echo "not ok - static: needs '$needed', exports $exported redis symbols"; failed=$((failed + 1))
    fi
else
    tail -n 20 "$LOGDIR/static.log"; echo "not ok - static build failed"; failed=$((failed + 1))
fi

# a copy of the tree the unprivileged user can write to
WORK="$LOGDIR/tree"
mkdir -p "$WORK"
tar -C "$ROOT" --exclude=.git --exclude=tmp_check --exclude=tmp_check_regress -cf - . | tar -C "$WORK" -xf -
chown -R postgres "$LOGDIR" 2>/dev/null || true

echo "== pg_regress =="
run_as_pg make -C "$WORK" -s PG_CONFIG=$PG_CONFIG installcheck TAP_TESTS= > "$LOGDIR/regress.log" 2>&1
rc=$?
grep -E '^(test| ok|not ok)|tests passed|failed' "$LOGDIR/regress.log" || true
p=$(grep -cE '^(test |ok +[0-9]+ +- ).* ok ' "$LOGDIR/regress.log" || true)
f=$(grep -cE 'FAILED|failed \(ignored\)' "$LOGDIR/regress.log" || true)
# pg_regress that could not run at all counts as a failure
if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; tail -n 20 "$LOGDIR/regress.log"; fi
if [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then f=1; echo "pg_regress ran no test"; fi
passed=$((passed + p)); failed=$((failed + f))
if [ -f "$WORK/regression.diffs" ]; then cat "$WORK/regression.diffs"; fi

echo "== TAP =="
run_as_pg make -C "$WORK" -s PG_CONFIG=$PG_CONFIG installcheck REGRESS= PROVE_FLAGS=-v > "$LOGDIR/tap.log" 2>&1
rc=$?
grep -E '^t/|^(not )?ok [0-9]+|^Result|^Files=' "$LOGDIR/tap.log" || true
count "$LOGDIR/tap.log"
# a test file that died without a "not ok" line: prove's summary names it
# with "Failed: 0" or without a count (bad plan, non-zero exit)
died=$(grep -E '^t/[^ ]+\.pl +\(Wstat' "$LOGDIR/tap.log" | grep -cvE 'Failed: [1-9]' || true)
failed=$((failed + died))
if [ $rc -ne 0 ]; then
    [ "$died" -gt 0 ] || grep -q '^not ok' "$LOGDIR/tap.log" || failed=$((failed + 1))
    for f in "$WORK"/tmp_check/log/*.log; do [ -f "$f" ] && { echo "--- $f"; tail -n 40 "$f"; }; done
fi

echo "logs: $LOGDIR"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

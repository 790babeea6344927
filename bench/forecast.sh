#!/usr/bin/env bash
# bench/forecast.sh — sim_forecast()'s accuracy and cost, beside a seasonal
# naive forecast and statsmodels' Holt-Winters measured in the same run.
#
# 1. Fleet: the default 15 servers, FC_SPAN backfilled with automatic
#    incidents (FC_RATE a day, seed FC_SEED: one no test uses, a fixed
#    start_time) in a throwaway cluster. Origins every FC_EVERY over the
#    last 7 days that leave 24 h of actuals (now - 8 d .. now - 1 d: 29),
#    horizons 15 min, 1 h, 6 h, 24 h, all 15 servers x 4 metrics:
#    - ours: sim_forecast(server, metric, '24 hours', '14 days', origin),
#      its row at origin + h, and its 80 % and 95 % intervals;
#    - seasonal naive: the value at origin + h - 24 h;
#    - statsmodels (bench/forecast_peer.py): ExponentialSmoothing(trend
#      'add', seasonal 'add') on the 14 days before the origin, fed the
#      5-minute means (period 288: the 30 s data's 2880 takes minutes a
#      fit), its 5-minute cell holding origin + h against the same 30 s
#      actual; at 3-6 s a fit, only on every FC_PEER_EVERY-th origin
#      (3rd: 10 origins, every time of day), ours and the
#      naive scored on the same subset beside it.
#    The actual is the history's 30 s sample at origin + h (network_usage =
#    network_io / network_capacity_bps x 100); cases whose actual or naive
#    sample is offline are left out.
# 2. NAB (with NAB_DIR, a checkout of github.com/numenta/NAB): each
#    data/realAWSCloudwatch/*.csv (5-minute data, about 14 days), origins
#    every 2 h over its last 4 days that leave 24 h of actuals (about 46 a
#    file), training on every row up to the origin (skipped below 2 days):
#    ours through sim_forecast_series(ts[], value[], '24 hours') and the
#    seasonal naive on all of them, statsmodels (period 288) on every 6th
#    (every 12 h: 115 fits), ours scored on that subset beside it. The
#    pooled relative MAE over files of such different scales is the
#    geometric mean of the files' ratios. Coverage is also shown outside
#    and inside NAB's labelled anomaly windows (labels/combined_windows.json),
#    and on the cases whose span (origin to actual) meets no window.
# On the subset, a bootstrap over its origins (2,000 resamples of whole origins, since one
# origin's cases move together) gives each pooled relative MAE's 5-95 % range and the share of
# resamples in which ours is at most statsmodels'.
# Per horizon: MAE of each forecast / MAE of the seasonal naive on the same
# cases (relative MAE; below 1 beats it), per metric and pooled; ours'
# interval coverage; the median time of a forecast: ours the SQL call
# (clock_timestamp() around it in a PL/pgSQL loop: history read, fit and
# the 2880 rows), statsmodels the fit and forecast (wall clock, one process
# a fit, BLAS single-threaded). Goals printed beside: relative MAE <= 0.8 at
# 1 h, ours <= statsmodels', >= 20x faster, coverage 75-85 % and 92-97 %.
# History is VACUUM ANALYZEd after the backfill (as autovacuum would), so
# no call pays for setting the fresh rows' hint bits.
#
#   sudo bench/forecast.sh [NAB_DIR]   (repo root, after `make install`)
#
# Needs python3-statsmodels (Debian 12); as root it is installed when
# missing (apt-get update; apt-get install -y python3-statsmodels).
# About 20 minutes on 2 cores, most of it statsmodels (600 fleet fits of 3-6 s,
# 115 NAB fits of 2 s); FC_PEER_EVERY=9 (4 origins) takes about 10.
# Progress goes to stderr.
#
# Environment overrides (defaults in brackets):
#   FC_SPAN [28 days]  FC_RATE [2]  FC_SEED [20261205]
#   FC_START [2026-01-05 00:00:00+00]  sim_metrics.start_time: the backfill's first day
#   FC_EVERY [6 hours]  FC_PEER_EVERY [3]  FC_JOBS [nproc]: statsmodels processes
#   FC_PYTHON [/usr/bin/python3]  BENCH_PORT [5498]  PG_CONFIG [pg_config]
#   FC_PEER_CACHE [unset]: a directory keeping statsmodels' forecasts under a key of their
#     exact input (series, origins, statsmodels version): a rerun on the same seed and origins
#     (after a change to ours) reuses them instead of fitting again
#   FC_CASES_OUT [unset]: a directory to write every scored case to (fleet_cases.csv, nab_cases.csv)
#     and the inputs both forecasts had (fleet_history.csv, fleet_tasks.csv, nab_series.csv,
#     nab_tasks.csv: the peer's input files; fleet_samples.csv and fleet_utc_offset.txt: what
#     sim_forecast() reads, with offline and incident marks), to replay a change of method on
#     them offline
set -euo pipefail
NAB=${1:-}
SPAN=${FC_SPAN:-28 days}
RATE=${FC_RATE:-2}
SEED=${FC_SEED:-20261205}
START=${FC_START:-2026-01-05 00:00:00+00}
EVERY=${FC_EVERY:-6 hours}
PEER_EVERY=${FC_PEER_EVERY:-3}
PEER_CACHE=${FC_PEER_CACHE:-}
CASES_OUT=${FC_CASES_OUT:-}
JOBS=${FC_JOBS:-$(nproc)}
PY=${FC_PYTHON:-/usr/bin/python3}
die() { echo "forecast.sh: $*" >&2; exit 1; }
log() { echo "forecast.sh: $*" >&2; }
if [[ -n $NAB ]]; then
    [[ -d $NAB/data/realAWSCloudwatch ]] || die "$NAB/data/realAWSCloudwatch is missing (usage: bench/forecast.sh [NAB_DIR])"
    NAB=$(cd "$NAB" && pwd)
fi
cd "$(dirname "$0")/.."
RUN_START=$(date +%s)

# the peer
if ! "$PY" -c 'import statsmodels.tsa.holtwinters, pandas' 2>/dev/null; then
    if (( EUID == 0 )) && [[ $PY == /usr/bin/python3 ]] && command -v apt-get >/dev/null; then
        log "installing python3-statsmodels (apt-get)"
        apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-statsmodels >/dev/null \
            || die "apt-get install python3-statsmodels failed"
    fi
    "$PY" -c 'import statsmodels.tsa.holtwinters, pandas' 2>/dev/null \
        || die "$PY cannot import statsmodels: apt-get install python3-statsmodels (Debian), or set FC_PYTHON"
fi
SM_VERSION=$("$PY" -c 'import statsmodels; print(statsmodels.__version__)')

. scripts/throwaway.sh
tw_init forecast
tw_start "${BENCH_PORT:-5498}" <<CONF
sim_metrics.enabled = off
sim_metrics.redis_host = ''
sim_metrics.seed = $SEED
sim_metrics.incident_rate = $RATE
sim_metrics.start_time = '$START'
timezone = 'UTC'
fsync = off
synchronous_commit = off
shared_buffers = 256MB
CONF
PSQL=("$BINDIR/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$TMP" -p "$TW_PORT" -U postgres -d postgres)
q "CREATE EXTENSION sim_metrics" >/dev/null
tw_wait_fleet 15
log "backfilling $SPAN"
q "SELECT sim_backfill('$SPAN')" >/dev/null
q "VACUUM ANALYZE server_metrics_history"
NOW=$(q "SELECT sim_time FROM sim_status()")
[[ $(q "SELECT max(\"timestamp\") = '$NOW' FROM server_metrics_history") == t ]] || die "the history does not end at the simulated time $NOW"

q "CREATE TABLE fc_horizons (h interval PRIMARY KEY, label text);
   INSERT INTO fc_horizons VALUES ('15 minutes', '15 min'), ('1 hour', '1 h'), ('6 hours', '6 h'), ('24 hours', '24 h');
   CREATE TABLE fc_metrics (metric text PRIMARY KEY, ord int);
   INSERT INTO fc_metrics VALUES ('cpu_usage', 1), ('memory_usage', 2), ('disk_usage', 3), ('network_usage', 4);
   CREATE TABLE fc_origins AS
   SELECT (row_number() OVER (ORDER BY o) - 1)::int AS i, o AS origin,
          (row_number() OVER (ORDER BY o) - 1) % $PEER_EVERY = 0 AS peer
     FROM generate_series('$NOW'::timestamptz - interval '8 days', '$NOW'::timestamptz - interval '1 day', interval '$EVERY') o;
   CREATE TABLE fc_ours (server_id text, metric text, origin timestamptz, h interval, forecast float8,
                         lo_80 float8, hi_80 float8, lo_95 float8, hi_95 float8);
   CREATE TABLE fc_calls (server_id text, metric text, origin timestamptz, ms float8);
   CREATE TABLE fc_pure (server_id text, metric text, origin timestamptz, n int, ms float8)"
NORIG=$(q "SELECT count(*) FROM fc_origins")
NPEER=$(q "SELECT count(*) FROM fc_origins WHERE peer")
echo "------------------------------------------------------------------------"
echo "forecasts vs seasonal naive and statsmodels — $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "PostgreSQL  : $(q 'SELECT version()')"
echo "CPU         : $(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo) x $(nproc)"
echo "statsmodels : $SM_VERSION (Python $("$PY" -c 'import platform; print(platform.python_version())'), numpy $("$PY" -c 'import numpy; print(numpy.__version__)')), $JOBS processes"
echo "fleet       : the default 15 servers, $SPAN backfilled to $NOW, 30 s ticks, seed $SEED, incident_rate $RATE a day"
echo "origins     : $NORIG, every $EVERY from $(q "SELECT min(origin) FROM fc_origins") to $(q "SELECT max(origin) FROM fc_origins")"
echo "subset      : statsmodels on every origin of ${PEER_EVERY}, $NPEER: $(q "SELECT string_agg(to_char(origin, 'MM-DD HH24:MI'), ', ' ORDER BY origin) FROM fc_origins WHERE peer")"
echo "------------------------------------------------------------------------"

# ours, one call a server, metric and origin, each timed inside the loop
log "ours: $((NORIG * 60)) sim_forecast() calls"
q "DO \$\$
DECLARE
    s text; m text; o timestamptz; t0 timestamptz; k int := 0;
BEGIN
    FOR s IN SELECT id FROM server_templates ORDER BY id LOOP
        FOR m IN SELECT metric FROM fc_metrics ORDER BY ord LOOP
            FOR o IN SELECT origin FROM fc_origins ORDER BY origin LOOP
                t0 := clock_timestamp();
                INSERT INTO fc_ours
                SELECT s, m, o, f.sim_time - o, f.forecast, f.lo_80, f.hi_80, f.lo_95, f.hi_95
                  FROM sim_forecast(s, m, '24 hours', '14 days', o) f
                 WHERE f.sim_time - o IN (SELECT h FROM fc_horizons);
                INSERT INTO fc_calls VALUES (s, m, o, extract(epoch FROM clock_timestamp() - t0) * 1000);
            END LOOP;
        END LOOP;
        k := k + 1;
        RAISE NOTICE 'ours: % of 15 servers', k;
    END LOOP;
END
\$\$" 2>&1 | sed -u 's/^.*NOTICE: */forecast.sh: /' >&2
# the same fit from arrays, without the history read: sim_forecast_series
# on the same 14 days of 30 s samples (no incident labels), first origin
q "DO \$\$
DECLARE
    s text; m text; o timestamptz; a timestamptz[]; v float8[]; t0 timestamptz;
BEGIN
    SELECT min(origin) INTO o FROM fc_origins;
    FOR s IN SELECT id FROM server_templates ORDER BY id LOOP
        FOR m IN SELECT metric FROM fc_metrics ORDER BY ord LOOP
            SELECT array_agg(h.\"timestamp\" ORDER BY h.\"timestamp\"),
                   array_agg(CASE m WHEN 'cpu_usage' THEN h.cpu_usage::float8 WHEN 'memory_usage' THEN h.memory_usage::float8
                                    WHEN 'disk_usage' THEN h.disk_usage::float8
                                    ELSE h.network_io::float8 / t.network_capacity_bps * 100 END ORDER BY h.\"timestamp\")
              INTO a, v
              FROM server_metrics_history h JOIN server_templates t ON t.id = h.server_id
             WHERE h.server_id = s AND h.\"timestamp\" > o - interval '14 days' AND h.\"timestamp\" <= o
               AND h.status <> 'offline';
            t0 := clock_timestamp();
            PERFORM count(*) FROM sim_forecast_series(a, v, '24 hours');
            INSERT INTO fc_pure VALUES (s, m, o, cardinality(a), extract(epoch FROM clock_timestamp() - t0) * 1000);
        END LOOP;
    END LOOP;
END
\$\$"
q "CREATE TABLE fc_cases AS
   SELECT c.*, o.peer,
          (SELECT x.scenario_run_id IS NOT NULL FROM server_metrics_history x
            WHERE x.server_id = c.server_id AND x.\"timestamp\" = c.origin + c.h) AS labelled,
          (SELECT CASE c.metric WHEN 'cpu_usage' THEN x.cpu_usage::float8 WHEN 'memory_usage' THEN x.memory_usage::float8
                                WHEN 'disk_usage' THEN x.disk_usage::float8 ELSE x.network_io::float8 / t.network_capacity_bps * 100 END
             FROM server_metrics_history x JOIN server_templates t ON t.id = x.server_id
            WHERE x.server_id = c.server_id AND x.\"timestamp\" = c.origin + c.h AND x.status <> 'offline') AS actual,
          (SELECT CASE c.metric WHEN 'cpu_usage' THEN x.cpu_usage::float8 WHEN 'memory_usage' THEN x.memory_usage::float8
                                WHEN 'disk_usage' THEN x.disk_usage::float8 ELSE x.network_io::float8 / t.network_capacity_bps * 100 END
             FROM server_metrics_history x JOIN server_templates t ON t.id = x.server_id
            WHERE x.server_id = c.server_id AND x.\"timestamp\" = c.origin + c.h - interval '24 hours' AND x.status <> 'offline') AS naive,
          NULL::float8 AS sm
     FROM fc_ours c JOIN fc_origins o USING (origin)"
[[ $(q "SELECT count(*) FROM fc_cases") == $((NORIG * 60 * 4)) ]] || die "sim_forecast() did not give a row at every horizon"

# the peer's input: the 30 s samples and the subset's origins
as_pg "${PSQL[@]}" -c "\\copy (SELECT h.server_id, extract(epoch FROM h.\"timestamp\")::bigint AS epoch, h.cpu_usage, h.memory_usage, h.disk_usage,
                                     h.network_io::float8 / t.network_capacity_bps * 100 AS network_usage
                                FROM server_metrics_history h JOIN server_templates t ON t.id = h.server_id
                               WHERE h.status <> 'offline' ORDER BY 1, 2) TO '$TMP/fleet_history.csv' (FORMAT csv, HEADER)"
as_pg "${PSQL[@]}" -c "\\copy (SELECT t.id AS server_id, m.metric, extract(epoch FROM o.origin)::bigint AS origin_epoch
                                FROM server_templates t, fc_metrics m, fc_origins o WHERE o.peer ORDER BY 1, m.ord, 3)
                       TO '$TMP/fleet_tasks.csv' (FORMAT csv, HEADER)"
PEER_ARGS=(--fleet-history "$TMP/fleet_history.csv" --fleet-tasks "$TMP/fleet_tasks.csv")

# NAB: the series, the origins, ours
if [[ -n $NAB ]]; then
    q "CREATE TABLE nab_raw (file text, ts timestamptz, value float8);
       CREATE TABLE nab_fc (file text, origin timestamptz, ts timestamptz, forecast float8,
                            lo_80 float8, hi_80 float8, lo_95 float8, hi_95 float8);
       CREATE TABLE nab_calls (file text, origin timestamptz, n int, ms float8)"
    for f in "$NAB"/data/realAWSCloudwatch/*.csv; do
        tail -n +2 "$f" | sed "s|^|$(basename "$f" .csv),|" | as_pg "${PSQL[@]}" -c "\\copy nab_raw FROM STDIN (FORMAT csv)"
    done
    q "CREATE INDEX ON nab_raw (file, ts);
       CREATE TABLE nab_origins AS
       SELECT f.file, o.origin, k % 6 = 0 AS peer
         FROM (SELECT file, min(ts) AS t0, max(ts) AS t1 FROM nab_raw GROUP BY file) f
        CROSS JOIN generate_series(0, 47) k
        CROSS JOIN LATERAL (SELECT max(r.ts) AS origin FROM nab_raw r
                             WHERE r.file = f.file AND r.ts <= f.t1 - interval '1 day' - k * interval '2 hours') o
        WHERE o.origin - f.t0 >= interval '2 days'"
    log "NAB: $(q "SELECT count(*) FROM nab_origins") sim_forecast_series() calls on $(q "SELECT count(DISTINCT file) FROM nab_raw") files"
    q "DO \$\$
    DECLARE
        r record; a timestamptz[]; v float8[]; t0 timestamptz;
    BEGIN
        FOR r IN SELECT * FROM nab_origins ORDER BY file, origin LOOP
            SELECT array_agg(x.ts ORDER BY x.ts), array_agg(x.value ORDER BY x.ts) INTO a, v
              FROM nab_raw x WHERE x.file = r.file AND x.ts <= r.origin;
            t0 := clock_timestamp();
            INSERT INTO nab_fc SELECT r.file, r.origin, f.* FROM sim_forecast_series(a, v, '24 hours') f;
            INSERT INTO nab_calls VALUES (r.file, r.origin, cardinality(a), extract(epoch FROM clock_timestamp() - t0) * 1000);
        END LOOP;
    END
    \$\$"
    # a row within half a 5-minute step of the time asked for, the nearest
    q "CREATE TABLE nab_cases AS
       SELECT o.file, o.origin, hz.h, f.forecast, f.lo_80, f.hi_80, f.lo_95, f.hi_95,
              (SELECT x.value FROM nab_raw x WHERE x.file = o.file
                  AND x.ts BETWEEN o.origin + hz.h - interval '150 s' AND o.origin + hz.h + interval '150 s'
                ORDER BY abs(extract(epoch FROM x.ts - (o.origin + hz.h))), x.ts LIMIT 1) AS actual,
              (SELECT x.value FROM nab_raw x WHERE x.file = o.file
                  AND x.ts BETWEEN o.origin + hz.h - interval '1 day 150 s' AND o.origin + hz.h - interval '1 day' + interval '150 s'
                ORDER BY abs(extract(epoch FROM x.ts - (o.origin + hz.h - interval '1 day'))), x.ts LIMIT 1) AS naive,
              NULL::float8 AS sm
         FROM nab_origins o CROSS JOIN fc_horizons hz
         LEFT JOIN LATERAL (SELECT * FROM nab_fc f WHERE f.file = o.file AND f.origin = o.origin
                               AND f.ts BETWEEN o.origin + hz.h - interval '150 s' AND o.origin + hz.h + interval '150 s'
                             ORDER BY abs(extract(epoch FROM f.ts - (o.origin + hz.h))) LIMIT 1) f ON true"
    as_pg "${PSQL[@]}" -c "\\copy (SELECT file, extract(epoch FROM ts) AS epoch, value FROM nab_raw ORDER BY 1, 2) TO '$TMP/nab_series.csv' (FORMAT csv, HEADER)"
    as_pg "${PSQL[@]}" -c "\\copy (SELECT file, extract(epoch FROM origin)::bigint AS origin_epoch FROM nab_origins WHERE peer ORDER BY 1, 2) TO '$TMP/nab_tasks.csv' (FORMAT csv, HEADER)"
    PEER_ARGS+=(--nab-series "$TMP/nab_series.csv" --nab-tasks "$TMP/nab_tasks.csv")
    # NAB's labelled anomaly windows, to see what the intervals miss outside them
    q "CREATE TABLE nab_windows (file text, t0 timestamptz, t1 timestamptz)"
    if [[ -f $NAB/labels/combined_windows.json ]]; then
        "$PY" - "$NAB/labels/combined_windows.json" > "$TMP/nab_windows.csv" <<'PY'
import json, os, sys
for key, windows in json.load(open(sys.argv[1])).items():
    if key.startswith('realAWSCloudwatch/'):
        for t0, t1 in windows:
            print(f"{os.path.basename(key)[:-4]},{t0},{t1}")
PY
        chmod a+r "$TMP/nab_windows.csv"
        as_pg "${PSQL[@]}" -c "\\copy nab_windows FROM '$TMP/nab_windows.csv' (FORMAT csv)"
    fi
fi

# the peer, then its forecasts beside ours. With FC_PEER_CACHE its output is
# kept under a key of its exact input (series, tasks, statsmodels version), so
# a rerun on the same seed and origins (after a change to ours) reuses it.
PEER_FROM="this run"
PEER_KEY=$( { echo "$SM_VERSION"; for a in "${PEER_ARGS[@]}"; do [[ -f $a ]] && cat "$a"; done; } | sha256sum | cut -c1-16)
if [[ -n $PEER_CACHE && -f $PEER_CACHE/peer-$PEER_KEY.csv ]]; then
    log "statsmodels: reusing $PEER_CACHE/peer-$PEER_KEY.csv (same input)"
    cp "$PEER_CACHE/peer-$PEER_KEY.csv" "$TMP/peer.csv"
    PEER_FROM="FC_PEER_CACHE $PEER_CACHE/peer-$PEER_KEY.csv (an earlier run on the same input)"
else
    PEER_T0=$(date +%s)
    as_pg env OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 "$PY" bench/forecast_peer.py --jobs "$JOBS" \
        "${PEER_ARGS[@]}" --out "$TMP/peer.csv" 2> >(sed -u 's/^/forecast.sh: /' >&2)
    PEER_FROM="this run, $(( $(date +%s) - PEER_T0 )) s on $JOBS processes"
    if [[ -n $PEER_CACHE ]]; then mkdir -p "$PEER_CACHE" && cp "$TMP/peer.csv" "$PEER_CACHE/peer-$PEER_KEY.csv"; fi
fi
q "CREATE TABLE fc_peer (kind text, series text, metric text, origin_epoch bigint, h_seconds int,
                         forecast float8, fit_seconds float8, status text)"
as_pg "${PSQL[@]}" -c "\\copy fc_peer FROM '$TMP/peer.csv' (FORMAT csv, HEADER)"
q "UPDATE fc_cases c SET sm = p.forecast FROM fc_peer p
    WHERE p.kind = 'fleet' AND p.series = c.server_id AND p.metric = c.metric
      AND to_timestamp(p.origin_epoch) = c.origin AND p.h_seconds * interval '1 second' = c.h"
if [[ -n $NAB ]]; then
    q "UPDATE nab_cases c SET sm = p.forecast FROM fc_peer p
        WHERE p.kind = 'nab' AND p.series = c.file
          AND to_timestamp(p.origin_epoch) = c.origin AND p.h_seconds * interval '1 second' = c.h"
fi

# the tables
rel() { echo "COALESCE(to_char($1 / NULLIF($2, 0), 'FM9999990.000'), '-')"; }
pct() { echo "COALESCE(to_char(100 * $1, 'FM990.0') || ' %', '-')"; }
# per horizon: the columns of a table over cases view $1 grouped by $2
q "CREATE VIEW fc_scored AS
   SELECT c.*, abs(c.forecast - c.actual) AS e_ours, abs(c.naive - c.actual) AS e_naive,
          abs(c.sm - c.actual) AS e_sm, c.peer AND c.sm IS NOT NULL AS in_sub,
          (c.actual BETWEEN c.lo_80 AND c.hi_80)::int AS in80, (c.actual BETWEEN c.lo_95 AND c.hi_95)::int AS in95
     FROM fc_cases c WHERE c.actual IS NOT NULL AND c.naive IS NOT NULL;
   CREATE VIEW fc_by AS
   SELECT h, COALESCE(metric, 'all metrics') AS metric, GROUPING(metric) AS pooled,
          count(*) AS n, avg(e_naive) AS mae_naive, avg(e_ours) AS mae_ours,
          count(*) FILTER (WHERE in_sub) AS n_sub,
          avg(e_naive) FILTER (WHERE in_sub) AS mae_naive_sub, avg(e_ours) FILTER (WHERE in_sub) AS mae_ours_sub,
          avg(e_sm) FILTER (WHERE in_sub) AS mae_sm_sub, avg(in80) AS cov80, avg(in95) AS cov95
     FROM fc_scored GROUP BY h, ROLLUP (metric)"
echo
echo "## fleet: $(q "SELECT count(*) FROM fc_scored") cases (servers x metrics x origins x horizons), $(q "SELECT count(*) FROM fc_cases WHERE actual IS NULL OR naive IS NULL") left out (offline); $(q "SELECT round(100 * avg(labelled::int), 1) FROM fc_scored") % of the actuals inside a labelled incident"
echo
echo "relative MAE = MAE / MAE of the seasonal naive on the same cases. Subset: the origins statsmodels ran on."
echo "statsmodels: 5-minute means (period 288), its cell holding origin + h against the 30 s actual, clamped to 0..100."
echo "ours leaves labelled incident samples (the simulator's ground truth) out of its fit; statsmodels is fed every sample."
for h in '15 minutes' '1 hour' '6 hours' '24 hours'; do
    echo
    echo "### horizon $h"
    echo
    echo "| metric | n | MAE naive | MAE ours | **ours rel. MAE** | n subset | ours rel. MAE, subset | statsmodels rel. MAE, subset | ours 80 % coverage | ours 95 % coverage |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    q "SELECT format('| %s | %s | %s | %s | **%s** | %s | %s | %s | %s | %s |', b.metric, n, round(mae_naive::numeric, 3), round(mae_ours::numeric, 3),
                     $(rel mae_ours mae_naive), n_sub, $(rel mae_ours_sub mae_naive_sub), $(rel mae_sm_sub mae_naive_sub),
                     $(pct cov80), $(pct cov95))
         FROM fc_by b LEFT JOIN fc_metrics m USING (metric) WHERE h = interval '$h' ORDER BY pooled, m.ord"
done
SM_FAIL=$(q "SELECT count(DISTINCT (series, metric, origin_epoch)) FROM fc_peer WHERE kind = 'fleet' AND status <> 'ok'")
[[ $SM_FAIL == 0 ]] || echo "statsmodels failed on $SM_FAIL fleet fits ($(q "SELECT string_agg(DISTINCT status, ', ') FROM fc_peer WHERE kind = 'fleet' AND status <> 'ok'")): those cases are out of the subset"

# the subset's spread: a bootstrap over its origins (the cases of an origin
# move together: one day's weather is every server's), 2,000 resamples
echo
echo "### ours vs statsmodels on the subset: bootstrap over its $NPEER origins"
echo
echo "Resampling the subset's origins with replacement (2,000 times, setseed 0.19): the pooled relative MAE's 5-95 % range,"
echo "and the share of resamples in which ours' is at most statsmodels'."
echo
echo "| horizon | ours rel. MAE | 5-95 % | statsmodels rel. MAE | 5-95 % | ours - statsmodels, 5-95 % | ours <= statsmodels |"
echo "|---|---:|---:|---:|---:|---:|---:|"
q "SELECT setseed(0.19);
   CREATE TEMP TABLE fc_po AS
   SELECT h, dense_rank() OVER (ORDER BY origin) AS k, sum(e_ours) AS so, sum(e_naive) AS sn, sum(e_sm) AS ss
     FROM fc_scored WHERE in_sub GROUP BY h, origin;
   CREATE TEMP TABLE fc_draw AS
   SELECT b, 1 + floor(random() * (SELECT max(k) FROM fc_po))::int AS k
     FROM generate_series(1, 2000) b, generate_series(1, (SELECT max(k) FROM fc_po)::int) j;
   CREATE TEMP VIEW fc_boot AS
   SELECT p.h, d.b, sum(p.so) / sum(p.sn) AS r_ours, sum(p.ss) / sum(p.sn) AS r_sm
     FROM fc_draw d JOIN fc_po p USING (k) GROUP BY p.h, d.b;
   SELECT format('| %s | %s | %s-%s | %s | %s-%s | %s to %s | %s %% |', z.label,
                 to_char(a.so / a.sn, 'FM0.000'), to_char(x.o05, 'FM0.000'), to_char(x.o95, 'FM0.000'),
                 to_char(a.ss / a.sn, 'FM0.000'), to_char(x.s05, 'FM0.000'), to_char(x.s95, 'FM0.000'),
                 to_char(x.d05, 'FMS0.000'), to_char(x.d95, 'FMS0.000'), round(100 * x.win, 1))
     FROM fc_horizons z
     JOIN (SELECT h, sum(so) AS so, sum(sn) AS sn, sum(ss) AS ss FROM fc_po GROUP BY h) a USING (h)
     JOIN (SELECT h, percentile_cont(0.05) WITHIN GROUP (ORDER BY r_ours) AS o05, percentile_cont(0.95) WITHIN GROUP (ORDER BY r_ours) AS o95,
                  percentile_cont(0.05) WITHIN GROUP (ORDER BY r_sm) AS s05, percentile_cont(0.95) WITHIN GROUP (ORDER BY r_sm) AS s95,
                  percentile_cont(0.05) WITHIN GROUP (ORDER BY r_ours - r_sm) AS d05, percentile_cont(0.95) WITHIN GROUP (ORDER BY r_ours - r_sm) AS d95,
                  avg((r_ours <= r_sm)::int) AS win
             FROM fc_boot GROUP BY h) x USING (h)
    ORDER BY z.h" | tail -n +2
echo
echo "statsmodels' forecasts: $PEER_FROM."

# timing: a forecast's median, ours vs statsmodels
median_sql() { echo "percentile_cont(0.5) WITHIN GROUP (ORDER BY $1)"; }
T_OURS=$(q "SELECT $(median_sql ms) FROM fc_calls c JOIN fc_origins o USING (origin) WHERE o.peer")
T_OURS_ALL=$(q "SELECT $(median_sql ms) FROM fc_calls")
T_PURE=$(q "SELECT $(median_sql ms) FROM fc_pure")
N_PURE=$(q "SELECT round(avg(n)) FROM fc_pure")
T_SM=$(q "SELECT 1000 * $(median_sql fit_seconds) FROM fc_peer WHERE kind = 'fleet' AND status = 'ok' AND h_seconds = 900")
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0 && b != "") printf "%.1f", b / a; else printf "-" }'; }
ms() { awk -v a="$1" 'BEGIN { if (a == "") printf "-"; else printf "%.1f", a }'; }
echo
echo "### time of a forecast (median)"
echo
echo "| ours | ms | statsmodels, same subset | ms | ours faster by | goal |"
echo "|---|---:|---|---:|---:|---|"
echo "| sim_forecast() SQL call: history read (14 d of 30 s, $((14 * 2880)) samples) + fit + 2880 rows; subset ($(q "SELECT count(*) FROM fc_calls c JOIN fc_origins o USING (origin) WHERE o.peer") calls; all $(q "SELECT count(*) FROM fc_calls"): $(ms "$T_OURS_ALL") ms) | $(ms "$T_OURS") | fit + forecast, 4032 5-minute means | $(ms "$T_SM") | **$(ratio "$T_OURS" "$T_SM")x** | >= 20x |"
echo "| sim_forecast_series() on the same samples from arrays (~$N_PURE; no read: array decoding, fit, 2880 rows), first origin, 60 calls | $(ms "$T_PURE") | same | $(ms "$T_SM") | $(ratio "$T_PURE" "$T_SM")x | - |"
echo
echo "ours: clock_timestamp() before and after the statement in a PL/pgSQL loop (plan cached). The fit alone"
echo "(smx_fc_fit(), no SQL) takes about 9 ms on 14 days of 30 s samples (replayed off line); it is not measured here."

goal_lines() {  # $1 the per-horizon view, $2 the timing ratio, $3 what pooled means
    local v
    echo
    echo "### goals ($3)"
    echo
    echo "| goal | measured | met |"
    echo "|---|---|---|"
    v=$(q "SELECT $(rel mae_ours mae_naive) FROM $1 WHERE pooled = 1 AND h = interval '1 hour'")
    echo "| ours' relative MAE <= 0.8 at 1 h | $v | $(awk -v x="$v" 'BEGIN { print (x != "-" && x <= 0.8) ? "yes" : "**no**" }') |"
    q "SELECT format('| ours'' relative MAE <= statsmodels'' at %s (subset) | %s vs %s | %s |', label, $(rel mae_ours_sub mae_naive_sub), $(rel mae_sm_sub mae_naive_sub),
                     CASE WHEN mae_sm_sub IS NULL THEN '-' WHEN mae_ours_sub <= mae_sm_sub THEN 'yes' ELSE '**no**' END)
         FROM $1 JOIN fc_horizons USING (h) WHERE pooled = 1 ORDER BY h"
    echo "| >= 20x faster than statsmodels (median a forecast) | ${2}x | $(awk -v x="$2" 'BEGIN { print (x != "-" && x >= 20) ? "yes" : "**no**" }') |"
    q "SELECT format('| 80 %% interval covers 75-85 %%, 95 %% covers 92-97 %% at %s | %s, %s | %s |', label, $(pct cov80), $(pct cov95),
                     CASE WHEN cov80 BETWEEN 0.75 AND 0.85 AND cov95 BETWEEN 0.92 AND 0.97 THEN 'yes' ELSE '**no**' END)
         FROM $1 JOIN fc_horizons USING (h) WHERE pooled = 1 ORDER BY h"
}
goal_lines fc_by "$(ratio "$T_OURS" "$T_SM")" "fleet, all metrics pooled"

if [[ -n $NAB ]]; then
    # pooled over files: the geometric mean of the files' ratios
    q "CREATE VIEW nab_scored AS
       SELECT c.*, abs(c.forecast - c.actual) AS e_ours, abs(c.naive - c.actual) AS e_naive,
              abs(c.sm - c.actual) AS e_sm, c.sm IS NOT NULL AS in_sub,
              (c.actual BETWEEN c.lo_80 AND c.hi_80)::int AS in80, (c.actual BETWEEN c.lo_95 AND c.hi_95)::int AS in95
         FROM nab_cases c WHERE c.actual IS NOT NULL AND c.naive IS NOT NULL AND c.forecast IS NOT NULL;
       CREATE VIEW nab_files AS
       SELECT h, file AS metric, 0 AS pooled, count(*) AS n, avg(e_naive) AS mae_naive, avg(e_ours) AS mae_ours,
              count(*) FILTER (WHERE in_sub) AS n_sub,
              avg(e_naive) FILTER (WHERE in_sub) AS mae_naive_sub, avg(e_ours) FILTER (WHERE in_sub) AS mae_ours_sub,
              avg(e_sm) FILTER (WHERE in_sub) AS mae_sm_sub, avg(in80) AS cov80, avg(in95) AS cov95
         FROM nab_scored GROUP BY h, file;
       CREATE VIEW nab_by AS
       SELECT * FROM nab_files
       UNION ALL
       SELECT h, 'all files (geometric mean of ratios)', 1, sum(n), 1, exp(avg(ln(mae_ours / mae_naive)) FILTER (WHERE mae_ours > 0 AND mae_naive > 0)),
              sum(n_sub), 1, exp(avg(ln(mae_ours_sub / mae_naive_sub)) FILTER (WHERE mae_ours_sub > 0 AND mae_naive_sub > 0 AND mae_sm_sub > 0)),
              exp(avg(ln(mae_sm_sub / mae_naive_sub)) FILTER (WHERE mae_ours_sub > 0 AND mae_naive_sub > 0 AND mae_sm_sub > 0)),
              (SELECT avg(in80) FROM nab_scored s WHERE s.h = f.h), (SELECT avg(in95) FROM nab_scored s WHERE s.h = f.h)
         FROM nab_files f GROUP BY h"
    echo
    echo "## NAB realAWSCloudwatch ($(git -C "$NAB" rev-parse --short HEAD 2>/dev/null || echo 'not a git checkout')): $(q "SELECT count(DISTINCT file) FROM nab_origins") files, $(q "SELECT count(*) FROM nab_origins") origins, $(q "SELECT count(*) FROM nab_scored") cases ($(q "SELECT (SELECT count(*) FROM nab_cases) - count(*) FROM nab_scored") left out: no actual or naive row within 150 s)"
    echo
    echo "origins every 2 h over each file's last 4 days that leave 24 h of actuals (statsmodels on every 6th: every 12 h); training: every row up to the origin (>= 2 days)."
    echo "pooled relative MAE: the geometric mean of the files' ratios (files without a positive MAE left out); coverage over all cases."
    for h in '15 minutes' '1 hour' '6 hours' '24 hours'; do
        echo
        echo "### NAB, horizon $h"
        echo
        echo "| file | n | MAE naive | MAE ours | **ours rel. MAE** | n subset | ours rel. MAE, subset | statsmodels rel. MAE, subset | ours 80 % coverage | ours 95 % coverage |"
        echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        q "SELECT format('| %s | %s | %s | %s | **%s** | %s | %s | %s | %s | %s |', metric, n,
                         CASE WHEN pooled = 1 THEN '' ELSE to_char(mae_naive, 'FM999999990.000') END,
                         CASE WHEN pooled = 1 THEN '' ELSE to_char(mae_ours, 'FM999999990.000') END,
                         CASE WHEN pooled = 1 THEN COALESCE(to_char(mae_ours, 'FM990.000'), '-') ELSE $(rel mae_ours mae_naive) END,
                         n_sub,
                         CASE WHEN pooled = 1 THEN COALESCE(to_char(mae_ours_sub, 'FM990.000'), '-') ELSE $(rel mae_ours_sub mae_naive_sub) END,
                         CASE WHEN pooled = 1 THEN COALESCE(to_char(mae_sm_sub, 'FM990.000'), '-') ELSE $(rel mae_sm_sub mae_naive_sub) END,
                         $(pct cov80), $(pct cov95))
             FROM nab_by WHERE h = interval '$h' ORDER BY pooled, metric"
        q "SELECT format('files better than the seasonal naive (rel. MAE < 1): ours %s, statsmodels %s of %s; ours better than statsmodels on %s',
                         count(*) FILTER (WHERE mae_ours < mae_naive), count(*) FILTER (WHERE mae_sm_sub < mae_naive_sub),
                         count(*), count(*) FILTER (WHERE mae_ours_sub < mae_sm_sub))
             FROM nab_files WHERE h = interval '$h'"
    done
    SM_FAIL=$(q "SELECT count(DISTINCT (series, origin_epoch)) FROM fc_peer WHERE kind = 'nab' AND status <> 'ok'")
    [[ $SM_FAIL == 0 ]] || echo "statsmodels failed on $SM_FAIL NAB fits ($(q "SELECT string_agg(DISTINCT status, ', ') FROM fc_peer WHERE kind = 'nab' AND status <> 'ok'")): those cases are out of its column"
    N_OURS=$(q "SELECT $(median_sql ms) FROM nab_calls")
    N_SM=$(q "SELECT 1000 * $(median_sql fit_seconds) FROM fc_peer WHERE kind = 'nab' AND status = 'ok' AND h_seconds = 900")
    echo
    echo "### NAB: time of a forecast (median)"
    echo
    echo "| ours | ms | statsmodels | ms | ours faster by | goal |"
    echo "|---|---:|---|---:|---:|---|"
    echo "| sim_forecast_series() call, ~$(q "SELECT round(avg(n)) FROM nab_calls") rows from arrays + 288 rows out ($(q "SELECT count(*) FROM nab_calls") calls) | $(ms "$N_OURS") | fit + forecast, same rows on the 5-minute grid ($(q "SELECT count(DISTINCT (series, origin_epoch)) FROM fc_peer WHERE kind = 'nab' AND status = 'ok'") fits) | $(ms "$N_SM") | **$(ratio "$N_OURS" "$N_SM")x** | >= 20x |"
    # the goal table over the pooled rows (pooled: geometric means as above)
    q "CREATE VIEW nab_goal AS
       SELECT h, pooled, mae_ours, 1::float8 AS mae_naive, mae_ours_sub, 1::float8 AS mae_naive_sub, mae_sm_sub, cov80, cov95
         FROM nab_by WHERE pooled = 1"
    goal_lines nab_goal "$(ratio "$N_OURS" "$N_SM")" "NAB, geometric mean over files"
    echo
    echo "### NAB: coverage outside and inside its labelled anomaly windows ($(q "SELECT count(*) FROM nab_windows") windows, labels/combined_windows.json)"
    echo
    echo "outside / inside: the actual's time outside or inside a window. clean span: no window overlaps [origin, origin + h], so no"
    echo "anomaly NAB labels falls between what the forecast knew and what it is scored on (a level shift there is not foreseeable)."
    echo
    echo "| horizon | cases outside | 80 % | 95 % | cases inside | 80 % | 95 % | cases, clean span | 80 % | 95 % |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    q "SELECT format('| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |', label,
                     count(*) FILTER (WHERE NOT inw), $(pct 'avg(in80) FILTER (WHERE NOT inw)'), $(pct 'avg(in95) FILTER (WHERE NOT inw)'),
                     count(*) FILTER (WHERE inw), $(pct 'avg(in80) FILTER (WHERE inw)'), $(pct 'avg(in95) FILTER (WHERE inw)'),
                     count(*) FILTER (WHERE NOT spw), $(pct 'avg(in80) FILTER (WHERE NOT spw)'), $(pct 'avg(in95) FILTER (WHERE NOT spw)'))
         FROM (SELECT s.*, EXISTS (SELECT 1 FROM nab_windows w WHERE w.file = s.file AND s.origin + s.h BETWEEN w.t0 AND w.t1) AS inw,
                      EXISTS (SELECT 1 FROM nab_windows w WHERE w.file = s.file AND w.t1 >= s.origin AND w.t0 <= s.origin + s.h) AS spw
                 FROM nab_scored s) x
         JOIN fc_horizons USING (h) GROUP BY label, h ORDER BY h"
fi
if [[ -n $CASES_OUT ]]; then   # every scored case, for a closer look
    mkdir -p "$CASES_OUT" && chown postgres "$CASES_OUT" 2>/dev/null || true
    as_pg "${PSQL[@]}" -c "\\copy (SELECT * FROM fc_scored) TO '$CASES_OUT/fleet_cases.csv' (FORMAT csv, HEADER)"
    [[ -z $NAB ]] || as_pg "${PSQL[@]}" -c "\\copy (SELECT * FROM nab_scored) TO '$CASES_OUT/nab_cases.csv' (FORMAT csv, HEADER)"
    for a in "${PEER_ARGS[@]}"; do [[ -f $a ]] && cp "$a" "$CASES_OUT/"; done
    # what sim_forecast() itself reads, to replay smx_fc_fit() on it: every sample with its
    # offline and incident marks, and the local time's offset (minutes)
    as_pg "${PSQL[@]}" -c "\\copy (SELECT h.server_id, extract(epoch FROM h.\"timestamp\")::bigint AS epoch, h.cpu_usage, h.memory_usage,
                                         h.disk_usage, h.network_io::float8 / t.network_capacity_bps * 100 AS network_usage,
                                         (h.status = 'offline')::int AS offline, (h.scenario_run_id IS NOT NULL)::int AS labelled
                                    FROM server_metrics_history h JOIN server_templates t ON t.id = h.server_id ORDER BY 1, 2)
                           TO '$CASES_OUT/fleet_samples.csv' (FORMAT csv, HEADER)"
    q "SELECT current_setting('sim_metrics.utc_offset')" > "$CASES_OUT/fleet_utc_offset.txt"
fi
echo
echo "run time: $(( $(date +%s) - RUN_START )) s"

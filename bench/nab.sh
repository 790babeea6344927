#!/usr/bin/env bash
# bench/nab.sh — the built-in anomaly detector on the Numenta Anomaly
# Benchmark (NAB), scored by our own NAB scoring, beside NAB's scoreboard.
#
# Loads every series of NAB's corpus and its labelled windows into a
# throwaway cluster, scores each series with sim_anomaly_scores() (one set
# of parameters for the whole corpus, as NAB requires) and scores the
# result with sim_score_detector() (NAB's three profiles, one threshold for
# the corpus). Then, as a check of the scoring itself, scores the results
# files NAB ships for its own detectors and prints them beside NAB's
# published figures (results/final_results.json). See bench/README.md.
#
#   git clone https://github.com/numenta/NAB /path/to/NAB   (MIT; any machine)
#   sudo bench/nab.sh /path/to/NAB       (repo root, after `make install`)
#
# Environment overrides (defaults in brackets):
#   NAB_CHECK [windowedGaussian numenta]  NAB detectors whose shipped results are re-scored
#   BENCH_PORT [5498]  PG_CONFIG [pg_config]
set -euo pipefail
NAB=${1:-}
[[ -n $NAB && -f $NAB/labels/combined_windows.json && -d $NAB/data ]] \
    || { echo "usage: bench/nab.sh NAB_DIR   (a checkout of github.com/numenta/NAB)" >&2; exit 2; }
NAB=$(cd "$NAB" && pwd)
CHECK=${NAB_CHECK:-windowedGaussian numenta}
die() { echo "nab.sh: $*" >&2; exit 1; }
. "$(dirname "$0")/../scripts/throwaway.sh"
tw_init nab
tw_start "${BENCH_PORT:-5498}" <<CONF
sim_metrics.enabled = off
sim_metrics.redis_host = ''
timezone = 'UTC'
fsync = off
CONF
q "CREATE EXTENSION sim_metrics" >/dev/null
PSQL=("$BINDIR/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$TMP" -p "$TW_PORT" -U postgres -d postgres)

q "CREATE TABLE nab_raw (file text, ts timestamp, value float8);
   CREATE TABLE nab_windows (server_id text, window_start timestamptz, window_end timestamptz)"
# the files NAB scores are the keys of its windows file
as_pg "${PSQL[@]}" -v j="$(cat "$NAB/labels/combined_windows.json")" <<'SQL'
INSERT INTO nab_windows
SELECT e.key, (w->>0)::timestamp AT TIME ZONE 'UTC', (w->>1)::timestamp AT TIME ZONE 'UTC'
  FROM jsonb_each(:'j'::jsonb) e, jsonb_array_elements(e.value) w;
CREATE TABLE nab_files AS SELECT key AS file FROM jsonb_object_keys(:'j'::jsonb) key;
SQL
mapfile -t FILES < <(q "SELECT file FROM nab_files ORDER BY file")
for f in "${FILES[@]}"; do
    [[ -f $NAB/data/$f ]] || die "$NAB/data/$f is missing"
    tail -n +2 "$NAB/data/$f" | sed "s|^|$f,|" | as_pg "${PSQL[@]}" -c "\\copy nab_raw FROM STDIN (FORMAT csv)"
done
echo "------------------------------------------------------------------------"
echo "NAB — $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "corpus     : $NAB ($(git -C "$NAB" rev-parse --short HEAD 2>/dev/null || echo 'not a git checkout'))"
echo "series     : $(q "SELECT count(DISTINCT file) || ' files, ' || count(*) || ' rows' FROM nab_raw"), $(q 'SELECT count(*) FROM nab_windows') windows"
echo "PostgreSQL : $(q 'SELECT version()')"
echo "------------------------------------------------------------------------"

# the built-in detector, through the SQL function, one call a series
start=$(date +%s.%N)
q "CREATE TABLE nab_scores AS
   SELECT f.file AS server_id, s.ts AS \"timestamp\", s.onset AS score, s.score AS level
     FROM nab_files f
    CROSS JOIN LATERAL sim_anomaly_scores(
          (SELECT array_agg(r.ts AT TIME ZONE 'UTC' ORDER BY r.ts) FROM nab_raw r WHERE r.file = f.file),
          (SELECT array_agg(r.value ORDER BY r.ts) FROM nab_raw r WHERE r.file = f.file)) s"
end=$(date +%s.%N)
ROWS=$(q "SELECT count(*) FROM nab_scores")
echo "sim_anomaly_scores(): $ROWS rows in $(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }') s"
echo
echo "| detector | standard | reward_low_fp | reward_low_fn | threshold (standard) |"
echo "|---|---:|---:|---:|---:|"
report() {
    q "SELECT string_agg(COALESCE(round(score::numeric, 1)::text, '-'), ' | ' ORDER BY array_position(ARRAY['standard','reward_low_fp','reward_low_fn'], profile))
                || ' | ' || COALESCE((SELECT round(threshold::numeric, 4)::text FROM sim_score_detector('$1', 'nab_windows')
                                      WHERE profile = 'standard'), 'none: never alarming scores best')
         FROM sim_score_detector('$1', 'nab_windows')"
}
echo "| **sim_metrics (this build)**, onset | $(report nab_scores) |"
q "CREATE VIEW nab_level AS SELECT server_id, \"timestamp\", level AS score FROM nab_scores"
echo "| sim_metrics (this build), score (level) | $(report nab_level) |"

# the scoring checked: NAB's own detectors' shipped results, re-scored here
PUB=()
for det in $CHECK; do
    [[ -d $NAB/results/$det ]] || { echo "| $det | (no results/$det in the checkout) |"; continue; }
    q "SET client_min_messages = warning; CREATE TABLE IF NOT EXISTS nab_check (server_id text, \"timestamp\" timestamptz, score float8);
       TRUNCATE nab_check"
    for f in "${FILES[@]}"; do
        r="$NAB/results/$det/$(dirname "$f")/${det}_$(basename "$f")"
        [[ -f $r ]] || die "$r is missing"
        # the columns timestamp and anomaly_score, wherever they are
        awk -F, -v file="$f" 'NR == 1 { for (i = 1; i <= NF; i++) { if ($i == "timestamp") t = i; if ($i == "anomaly_score") s = i }; next }
                              { print file "," $t "," $s }' "$r" \
          | as_pg "${PSQL[@]}" -c "\\copy nab_check FROM STDIN (FORMAT csv)"
    done
    echo "| $det, NAB's results re-scored here | $(report nab_check) |"
    PUB+=("| $det, NAB's published | $(python3 -c "import json,sys; d=json.load(open('$NAB/results/final_results.json'))['$det']; print(' | '.join('%.1f' % d[k] for k in ('standard','reward_low_FP_rate','reward_low_FN_rate')))" 2>/dev/null || echo '?') | |")
done
printf '%s\n' "${PUB[@]}"
echo
echo "NAB's scoreboard (standard profile, NAB's README): ARTime 74.9, Numenta HTM 70.5, CAD OSE 69.9,"
echo "earthgecko Skyline 58.2, KNN CAD 58.0, Relative Entropy 54.6, Random Cut Forest 51.7,"
echo "Twitter ADVec 47.1, Windowed Gaussian 39.6, Etsy Skyline 35.7"

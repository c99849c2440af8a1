#!/usr/bin/env bash
# Run the stages of .github/workflows/benchmark_db_ci.yml on this machine:
#   1. setup_database       create the schema and the CI metadata
#   2. run_benchmarks       a small matrix, one process per (model, hardware), each into its own database
#   3. consolidate_results  merge the jobs' databases with scripts/ci_benchmark_integrator.py, check integrity
#   4. publish_results      the HTML performance report, the regression check against the previous local
#                           run (the guide's command), and a timestamped snapshot kept as the next reference
#
# Usage: scripts/run_local_benchmark_with_ci.sh [--output-dir DIR] [--models "m1 m2"] [--hardware "cpu"]
#                                                [--batch-sizes 1,2] [--reference-db PATH] [--threshold 10]
#                                                [--sample-data] [--no-gate]
# Environment: PYTHON (default: .venv/bin/python if present, else python3).
#
# Leaves in the output folder: benchmark_report.html, regression.md, regression_verdict.txt,
# merge_report.md, integrity.txt, logs/, the consolidated database and history/ (snapshots).
# Exit code: 0 when every stage passed and no regression was found; 1 on a regression (like the CI gate,
# unless --no-gate); 2 when a stage failed.
# --sample-data (or a missing runners/run_benchmark_with_db.py) makes each job database from the sample
# data of scripts/create_benchmark_schema.py instead of measuring; the report then says so.
set -uo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="./local_ci_output"
MODELS="bert-base-uncased t5-small"
HARDWARE="cpu"
BATCH_SIZES="1,2"
REFERENCE=""
THRESHOLD="10"
SAMPLE=0
GATE=1

while [ $# -gt 0 ]; do
  case "$1" in
    --output-dir) OUT="$2"; shift 2 ;;
    --models) MODELS="$2"; shift 2 ;;
    --hardware) HARDWARE="$2"; shift 2 ;;
    --batch-sizes) BATCH_SIZES="$2"; shift 2 ;;
    --reference-db) REFERENCE="$2"; shift 2 ;;
    --threshold) THRESHOLD="$2"; shift 2 ;;
    --sample-data) SAMPLE=1; shift ;;
    --no-gate) GATE=0; shift ;;
    -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "error DB000: unknown option $1; see --help" >&2; exit 2 ;;
  esac
done

if [ -z "${PYTHON:-}" ]; then
  if [ -x "$REPO/.venv/bin/python" ]; then PYTHON="$REPO/.venv/bin/python"; else PYTHON="python3"; fi
fi
export HF_HUB_OFFLINE="${HF_HUB_OFFLINE:-1}"
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"

log() { echo "$(date -u +%Y-%m-%dT%H:%M:%S) $*" >&2; }
fail() { log "FAILED: $*"; exit 2; }

mkdir -p "$OUT" || fail "cannot create $OUT"
OUT="$(cd "$OUT" && pwd)"
WORK="$OUT/work"
rm -rf "$WORK" "$OUT/logs"
mkdir -p "$WORK/ci_db" "$WORK/artifacts" "$OUT/logs" "$OUT/history"
started=$(date +%s)

# -- 1. setup_database ------------------------------------------------------------------------------------
log "stage 1/4 setup_database"
"$PYTHON" "$REPO/scripts/create_benchmark_schema.py" --output "$WORK/ci_db/benchmark.duckdb" --format json \
  > "$OUT/logs/setup_database.log" 2>&1 || fail "create_benchmark_schema.py (see $OUT/logs/setup_database.log)"
commit="$(git -C "$REPO" rev-parse HEAD 2>/dev/null || echo unknown)"
branch="$(git -C "$REPO" rev-parse --abbrev-ref HEAD 2>/dev/null || echo unknown)"
cat > "$WORK/ci_db/ci_metadata.json" <<EOF
{"commit": "$commit", "branch": "$branch", "workflow": "run_local_benchmark_with_ci.sh", "run_id": "local-$(date -u +%Y%m%dT%H%M%SZ)"}
EOF

# -- 2. run_benchmarks: one process per job, each into its own database ------------------------------------
RUNNER="$REPO/runners/run_benchmark_with_db.py"
if [ "$SAMPLE" = 0 ] && [ ! -f "$RUNNER" ]; then
  log "runners/run_benchmark_with_db.py is not here; making the job databases from sample data instead"
  SAMPLE=1
fi
log "stage 2/4 run_benchmarks: models [$MODELS] x hardware [$HARDWARE], batch sizes $BATCH_SIZES"
pids=(); jobs_=()
for model in $MODELS; do
  for hw in $HARDWARE; do
    job="job-$(printf '%s' "$model-$hw" | tr -c 'A-Za-z0-9._-' '_')"
    mkdir -p "$WORK/artifacts/$job"
    db="$WORK/artifacts/$job/benchmark.duckdb"
    cp "$WORK/ci_db/benchmark.duckdb" "$db"
    if [ "$SAMPLE" = 1 ]; then
      "$PYTHON" "$REPO/scripts/create_benchmark_schema.py" --output "$db" --sample-data --format json \
        > "$OUT/logs/$job.log" 2>&1 &
    else
      "$PYTHON" "$RUNNER" --db "$db" --model "$model" --hardware "$hw" --batch-sizes "$BATCH_SIZES" \
        > "$OUT/logs/$job.log" 2>&1 &
    fi
    pids+=($!); jobs_+=("$job")
  done
done
failed_jobs=0
for i in "${!pids[@]}"; do
  if wait "${pids[$i]}"; then
    log "  ${jobs_[$i]}: ok"
  else
    log "  ${jobs_[$i]}: FAILED (see $OUT/logs/${jobs_[$i]}.log)"
    rm -rf "$WORK/artifacts/${jobs_[$i]}"
    failed_jobs=$((failed_jobs + 1))
  fi
done
[ "$failed_jobs" -lt "${#pids[@]}" ] || fail "every benchmark job failed"

# -- 3. consolidate_results -------------------------------------------------------------------------------
log "stage 3/4 consolidate_results"
CONSOLIDATED="$OUT/consolidated_db/benchmark.duckdb"
rm -f "$CONSOLIDATED" "$CONSOLIDATED.wal"
mkdir -p "$OUT/consolidated_db"
"$PYTHON" "$REPO/scripts/ci_benchmark_integrator.py" --artifacts-dir "$WORK/artifacts" --db "$CONSOLIDATED" \
  --ci-metadata "$WORK/ci_db/ci_metadata.json" --format markdown --output "$OUT/merge_report.md" \
  2> "$OUT/logs/consolidate.log" || fail "ci_benchmark_integrator.py (see $OUT/logs/consolidate.log)"
"$PYTHON" "$REPO/benchmark_db_maintenance.py" --check-integrity --db "$CONSOLIDATED" \
  > "$OUT/integrity.txt" 2>> "$OUT/logs/consolidate.log" || fail "integrity check (see $OUT/integrity.txt)"

# -- 4. publish_results: report, regression check, snapshot -----------------------------------------------
log "stage 4/4 publish_results"
"$PYTHON" "$REPO/benchmark_db_query.py" --db "$CONSOLIDATED" --report performance --format html \
  --output "$OUT/benchmark_report.html" 2> "$OUT/logs/report.log" || fail "performance report (see $OUT/logs/report.log)"

[ -n "$REFERENCE" ] || REFERENCE="$OUT/history/benchmark_previous.duckdb"
if [ -f "$REFERENCE" ]; then
  "$PYTHON" "$REPO/benchmark_db_query.py" --db "$CONSOLIDATED" --regression-check --threshold "$THRESHOLD" \
    --reference-db "$REFERENCE" --format markdown > "$OUT/regression.md" 2> "$OUT/logs/regression.log"
  status=$?
  against="the previous run ($REFERENCE)"
else
  # the first run has no reference: the guide's form compares recent days with the time before
  "$PYTHON" "$REPO/benchmark_db_query.py" --db "$CONSOLIDATED" --regression-check --threshold "$THRESHOLD" \
    --format markdown > "$OUT/regression.md" 2> "$OUT/logs/regression.log"
  status=$?
  against="the database's own history (no previous run yet)"
fi
case "$status" in
  0) verdict="PASS: no regression over ${THRESHOLD}% against $against" ;;
  1) verdict="REGRESSION: the regression check found slower results (over ${THRESHOLD}%) against $against" ;;
  *) verdict="ERROR: the regression check exited $status (see $OUT/logs/regression.log)" ;;
esac
headline="$(grep -m1 -E '^#+ ' "$OUT/regression.md" 2>/dev/null | sed -E 's/^#+ *//')"
[ -n "$headline" ] && verdict="$verdict; the check says: $headline"
[ "$SAMPLE" = 1 ] && verdict="$verdict [job databases made from SAMPLE DATA, not measured]"
echo "$verdict" > "$OUT/regression_verdict.txt"
log "$verdict"

timestamp=$(date -u +%Y%m%dT%H%M%SZ)
cp "$CONSOLIDATED" "$OUT/history/ci_benchmark_${timestamp}.duckdb"
if [ "$status" = 0 ]; then
  cp "$CONSOLIDATED" "$OUT/history/benchmark_previous.duckdb"  # the reference of the next run
fi
rm -rf "$WORK"
log "done in $(( $(date +%s) - started )) s; report: $OUT/benchmark_report.html; verdict: $OUT/regression_verdict.txt"

if [ "$status" -ge 2 ] || [ "$failed_jobs" -gt 0 ]; then exit 2; fi
if [ "$status" = 1 ] && [ "$GATE" = 1 ]; then exit 1; fi
exit 0

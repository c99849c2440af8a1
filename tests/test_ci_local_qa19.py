"""scripts/run_local_benchmark_with_ci.sh and scripts/demo.py, QA round 19: jobs one after another, jobs that
measured nothing kept, a verdict that matches the exit code, usage errors (DB000) and a missing reference (DB001).

The pipeline tests run the real script with `bash` in a copy of the repository's layout whose runner is a
stand-in (fast and the same on every machine): it stores one result on cpu, and on any other platform only a
hardware_compatibility row saying why, exiting 1 as the real runner does when nothing was measured.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import duckdb
import pytest

from scripts import demo

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "run_local_benchmark_with_ci.sh"
PYTHON = str(Path(os.environ.get("VIRTUAL_ENV", REPO / ".venv")) / "bin" / "python")

FAKE_RUNNER = '''\
"""Stand-in for runners/run_benchmark_with_db.py: log when the job ran, store a result or a reason."""
import datetime as dt, os, sys, time
from benchmark_db_models import BenchmarkDB, HardwareCompatibility, PerformanceResults, TestRuns

args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
model, hw = args["--model"], args["--hardware"]
with open(os.environ["FAKE_RUNNER_LOG"], "a") as log:
    log.write(f"start {time.time()} {model} {hw}\\n")
time.sleep(0.4)
if model == "broken":
    sys.exit(2)
with BenchmarkDB(args["--db"]) as db:
    hw_id = db.get_or_add_hardware(hw, "stand-in")
    model_id = db.get_or_add_model(model)
    run_id = db.insert_test_runs(TestRuns(test_name=f"{model}-{hw}", test_type="performance", success=True,
                                          started_at=dt.datetime.now(dt.timezone.utc)))
    if hw == "cpu":
        db.insert_many([PerformanceResults(
            run_id=run_id, model_id=model_id, hardware_id=hw_id, model_name=model, hardware_type=hw,
            test_case="inference", batch_size=1, sequence_length=32, precision="fp32", average_latency_ms=2.0,
            throughput_items_per_second=500.0, latency_samples_ms=[2.0] * 5,
            created_at=dt.datetime.now(dt.timezone.utc))])
    else:
        db.insert_many([HardwareCompatibility(hardware_id=hw_id, model_id=model_id, run_id=run_id,
                                              is_compatible=False, error_type="platform_unavailable",
                                              error_message=f"stand-in: no {hw} on this machine")])
with open(os.environ["FAKE_RUNNER_LOG"], "a") as log:
    log.write(f"end {time.time()} {model} {hw}\\n")
sys.exit(0 if hw == "cpu" else 1)
'''


def run_script(*args: str, script: Path = SCRIPT, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(script), *args], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHON": PYTHON, **(env or {})})


@pytest.fixture
def fake_repo(tmp_path) -> Path:
    """The repository's layout with the script copied (it finds its tools beside it) and a stand-in runner."""
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    (repo / "runners").mkdir()
    shutil.copy(SCRIPT, repo / "scripts" / SCRIPT.name)
    for name in ("scripts/create_benchmark_schema.py", "scripts/ci_benchmark_integrator.py",
                 "benchmark_db_maintenance.py", "benchmark_db_query.py"):
        (repo / name).symlink_to(REPO / name)
    (repo / "runners" / "run_benchmark_with_db.py").write_text(FAKE_RUNNER)
    return repo


def run_fake(repo: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return run_script(*args, script=repo / "scripts" / SCRIPT.name, cwd=tmp_path,
                      env={"FAKE_RUNNER_LOG": str(tmp_path / "runner.log"), "PYTHONPATH": str(REPO)})


# -- usage errors ---------------------------------------------------------------------------------------------

@pytest.mark.slow  # a subprocess
@pytest.mark.parametrize("args", [["--output-dir"], ["--models", ""], ["--hardware", " , "], ["--threshold", "ten"]])
def test_a_usage_error_is_db000_exit_2_before_any_work(tmp_path, args):
    result = run_script(*args, "--sample-data", cwd=tmp_path) if args != ["--output-dir"] else run_script(
        *args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error DB000: "), result.stderr
    assert "unbound variable" not in result.stderr and "every benchmark job failed" not in result.stderr
    assert not (tmp_path / "local_ci_output").exists()


@pytest.mark.slow  # a subprocess
def test_a_named_reference_that_does_not_exist_is_db001_exit_3(tmp_path):
    result = run_script("--sample-data", "--reference-db", "./typo_missing.duckdb", "--output-dir", "out",
                        cwd=tmp_path)
    assert result.returncode == 3, result.stderr
    assert result.stderr.startswith("error DB001: ") and "typo_missing.duckdb" in result.stderr
    assert not (tmp_path / "out").exists()


# -- the pipeline ---------------------------------------------------------------------------------------------

@pytest.mark.slow  # a pipeline of subprocesses
def test_jobs_run_one_after_another(fake_repo, tmp_path):
    result = run_fake(fake_repo, tmp_path, "--output-dir", "out", "--models", "m1 m2 m3")
    assert result.returncode == 0, result.stderr
    spans: dict[tuple, list[float]] = {}
    for line in (tmp_path / "runner.log").read_text().splitlines():
        _event, when, model, hw = line.split()
        spans.setdefault((model, hw), []).append(float(when))
    assert len(spans) == 3
    ordered = sorted(spans.values())
    for (_s1, e1), (s2, _e2) in zip(ordered, ordered[1:]):
        assert e1 <= s2, "two benchmark jobs ran at the same time and disturbed each other's timings"


@pytest.mark.slow  # a pipeline of subprocesses
def test_a_job_that_measured_nothing_is_merged_with_its_reasons(fake_repo, tmp_path):
    result = run_fake(fake_repo, tmp_path, "--output-dir", "out", "--models", "m1 m2", "--hardware", "cpu,cuda")
    assert result.returncode == 0, result.stderr
    assert "nothing measured on cuda" in result.stderr
    verdict = (tmp_path / "out" / "regression_verdict.txt").read_text()
    assert verdict.startswith("PASS") and "nothing measured on cuda" in verdict
    with duckdb.connect(str(tmp_path / "out" / "consolidated_db" / "benchmark.duckdb"), read_only=True) as conn:
        reasons = conn.execute("SELECT error_message FROM hardware_compatibility WHERE NOT is_compatible").fetchall()
        measured = conn.execute("SELECT count(*) FROM performance_results").fetchone()[0]
    assert sorted(r[0] for r in reasons) == ["stand-in: no cuda on this machine"] * 2
    assert measured == 2


@pytest.mark.slow  # a pipeline of subprocesses
def test_a_failed_job_fails_the_verdict_and_does_not_become_the_reference(fake_repo, tmp_path):
    assert run_fake(fake_repo, tmp_path, "--output-dir", "out", "--models", "m1").returncode == 0
    reference = tmp_path / "out" / "history" / "benchmark_previous.duckdb"
    before = reference.read_bytes()
    result = run_fake(fake_repo, tmp_path, "--output-dir", "out", "--models", "m1 broken")
    assert result.returncode == 2, result.stderr
    verdict = (tmp_path / "out" / "regression_verdict.txt").read_text()
    assert verdict.startswith("FAILED") and "1 of 2 benchmark job(s) failed" in verdict, verdict
    assert reference.read_bytes() == before  # the failed run is not the next run's reference


@pytest.mark.slow  # a pipeline of subprocesses
def test_a_run_that_measured_nothing_at_all_keeps_the_reasons_and_fails(fake_repo, tmp_path):
    result = run_fake(fake_repo, tmp_path, "--output-dir", "out", "--models", "m1", "--hardware", "cuda")
    assert result.returncode == 2, result.stderr
    assert "every benchmark job failed" not in result.stderr
    verdict = (tmp_path / "out" / "regression_verdict.txt").read_text()
    assert verdict.startswith("FAILED") and "no job measured anything" in verdict
    assert not (tmp_path / "out" / "history" / "benchmark_previous.duckdb").exists()
    with duckdb.connect(str(tmp_path / "out" / "consolidated_db" / "benchmark.duckdb"), read_only=True) as conn:
        assert conn.execute("SELECT count(*) FROM hardware_compatibility").fetchone()[0] == 1


# -- scripts/demo.py ------------------------------------------------------------------------------------------

def test_demo_takes_hardware_separated_by_spaces_or_commas():
    assert demo.hardware_list("cpu openvino") == ["cpu", "openvino"]
    assert demo.hardware_list("cpu,openvino") == ["cpu", "openvino"]
    assert demo.hardware_list(" cpu , openvino ") == ["cpu", "openvino"]


def test_demo_refuses_an_unknown_platform_before_its_first_stage(tmp_path, capsys):
    code = demo.main(["--db", str(tmp_path / "d.duckdb"), "--report", str(tmp_path / "r.html"),
                      "--hardware", "cpu bogus"])
    err = capsys.readouterr().err
    assert code == 2 and "error DB000" in err and "bogus" in err
    assert "== 1/3" not in err
    assert not (tmp_path / "d.duckdb").exists()

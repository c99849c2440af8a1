"""benchmark_db_query.py in-process: read-only SQL, reports in every format, comparisons, exit codes,
and the regression gate (reference 10% slower on one model -> exit 1 naming it; same data -> exit 0)."""
from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys

import pytest

import benchmark_db_query as query
from tests.report_fixtures import build_history


@pytest.fixture(scope="module")
def sample_db(tmp_path_factory, _sample_db_template) -> str:
    """This module's copy of the sample database (made once per session in conftest): its tests only read it."""
    path = tmp_path_factory.mktemp("query") / "sample.duckdb"
    shutil.copyfile(_sample_db_template, path)
    return str(path)


def run(capsys, *argv):
    code = query.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_sql_in_every_format(sample_db, capsys):
    sql = "SELECT model, hardware, AVG(throughput) AS t FROM benchmark_performance GROUP BY model, hardware ORDER BY ALL"
    code, out, _ = run(capsys, "--db", sample_db, "--sql", sql, "--format", "json")
    assert code == 0
    rows = json.loads(out)
    assert len(rows) == 5 * 4 + 1  # the view keeps the simulated rocm row: --sql is plain SQL
    code, out, _ = run(capsys, "--db", sample_db, "--sql", sql, "--format", "csv")
    assert code == 0 and next(csv.reader(io.StringIO(out))) == ["model", "hardware", "t"]
    for fmt, marker in (("markdown", "| model | hardware | t |"), ("table", "(21 rows)"), ("html", "<table")):
        code, out, _ = run(capsys, "--db", sample_db, "--sql", sql, "--format", fmt)
        assert code == 0 and marker in out


def test_sql_is_read_only(sample_db, capsys):
    code, out, err = run(capsys, "--db", sample_db, "--sql", "DELETE FROM performance_results")
    assert code == 2 and out == ""
    assert err.startswith("error DB004") and "read-only" in err
    code, _, _ = run(capsys, "--db", sample_db, "--sql", "SELECT count(*) AS n FROM performance_results",
                     "--format", "json")
    assert code == 0


def test_bad_sql_and_missing_db(sample_db, tmp_path, capsys):
    code, _, err = run(capsys, "--db", sample_db, "--sql", "SELEC nonsense")
    assert code == 2 and "error DB004" in err and "Traceback" not in err
    code, _, err = run(capsys, "--db", str(tmp_path / "missing.duckdb"), "--report", "summary")
    assert code == 3 and "error DB001" in err and not (tmp_path / "missing.duckdb").exists()


def test_usage_errors(sample_db, capsys):
    code, _, err = run(capsys, "--db", sample_db)
    assert code == 2 and "choose one of" in err
    code, _, err = run(capsys, "--db", sample_db, "--report", "summary", "--compare-hardware")
    assert code == 2
    code, _, err = run(capsys, "--db", sample_db, "--report", "performance", "--batch-size", "big")
    assert code == 2 and "batch size" in err


@pytest.mark.parametrize("kind", ["performance", "hardware", "compatibility", "integration", "summary"])
def test_every_report_in_json_and_markdown(sample_db, kind, capsys):
    code, out, _ = run(capsys, "--db", sample_db, "--report", kind, "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert data["report"] == kind and data["sections"]
    first = next(iter(data["sections"].values()))
    assert first["rows"], f"{kind} report has no rows on the sample data"
    code, out, _ = run(capsys, "--db", sample_db, "--report", kind, "--format", "markdown")
    assert code == 0 and out.startswith("# ") and "|---|" in out


def test_report_csv_numbers_equal_sql(sample_db, capsys):
    from benchmark_db.connection import connect

    code, out, _ = run(capsys, "--db", sample_db, "--report", "performance", "--format", "csv", "--hardware", "mps",
                       "--batch-size", "16")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    with connect(sample_db, read_only=True) as c:
        plain = dict(c.execute("SELECT model_name, avg(throughput_items_per_second) FROM performance_results "
                               "WHERE hardware_type='mps' AND batch_size=16 AND NOT is_simulated GROUP BY 1").fetchall())
    assert {r["model"] for r in rows} == set(plain)
    for r in rows:  # csv keeps 6 significant digits
        assert float(r["throughput_items_per_s_mean"]) == pytest.approx(plain[r["model"]], rel=1e-5)


@pytest.mark.slow  # renders every chart of a report
def test_html_report_to_file(sample_db, tmp_path, capsys):
    target = tmp_path / "out" / "benchmark_report.html"
    code, out, _ = run(capsys, "--db", sample_db, "--report", "performance", "--format", "html", "--output", str(target))
    assert code == 0 and out == ""
    page = target.read_text()
    assert page.startswith("<!DOCTYPE html>") and "data:image/png;base64," in page
    assert "http://" not in page and "https://" not in page  # works offline


def test_compare_hardware_and_models(sample_db, capsys):
    code, out, _ = run(capsys, "--db", sample_db, "--model", "bert-base-uncased", "--metric", "throughput",
                       "--compare-hardware", "--format", "json")
    assert code == 0
    rows = json.loads(out)
    assert {r["hardware"] for r in rows} == {"cpu", "cuda", "mps", "openvino"}
    assert all(r["basis"] == "raw samples" and r["samples"] == 60 for r in rows)
    code, out, _ = run(capsys, "--db", sample_db, "--hardware", "cuda", "--compare-models", "--metric", "latency",
                       "--format", "json")
    assert code == 0 and len({r["model"] for r in json.loads(out)}) == 5
    code, out, err = run(capsys, "--db", sample_db, "--model", "bert-base-uncased", "--hardware", "rocm",
                         "--compare-hardware")
    assert code == 2 and "error DB004" in err and "--include-simulated" in err
    code, out, _ = run(capsys, "--db", sample_db, "--model", "bert-base-uncased", "--hardware", "rocm",
                       "--compare-hardware", "--include-simulated", "--format", "json")
    assert code == 0 and json.loads(out)[0]["is_simulated"] is True


def test_compatibility_matrix(sample_db, capsys):
    code, out, _ = run(capsys, "--db", sample_db, "--compatibility-matrix", "--format", "csv")
    assert code == 0
    rows = {r["model"]: r for r in csv.DictReader(io.StringIO(out))}
    assert rows["openai/whisper-tiny"]["webgpu"] == "no (OutOfMemory)"


@pytest.mark.slow  # about 0.8 s: outside make test-fast
def test_guide_command_as_subprocess(sample_db, repo_root, tmp_path):
    proc = subprocess.run([sys.executable, str(repo_root / "benchmark_db_query.py"), "--db", sample_db, "--sql",
                           "SELECT model, hardware, AVG(throughput) FROM benchmark_performance GROUP BY model, hardware"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == "model,hardware,avg(throughput)"


# ----------------------------------------------------------------------------------- regression gate
def _slow_copy(src: str, dst: str, model: str, hardware: str, batch: int, factor: float) -> str:
    """`dst` = `src` with one model/hardware/batch `factor` times slower (latency samples and aggregates)."""
    import shutil

    from benchmark_db.connection import connect

    shutil.copy(src, dst)
    with connect(dst) as c:
        c.execute("""UPDATE performance_results SET
                         latency_samples_ms = list_transform(latency_samples_ms, s -> s * ?),
                         average_latency_ms = average_latency_ms * ?,
                         throughput_items_per_second = throughput_items_per_second / ?
                     WHERE model_name = ? AND hardware_type = ? AND batch_size = ?""",
                  [factor, factor, factor, model, hardware, batch])
    return dst


@pytest.fixture(scope="module")
def reference_db(tmp_path_factory) -> str:
    return build_history(str(tmp_path_factory.mktemp("regression") / "reference.duckdb"), runs=12, step_at=None,
                         seed=11, simulated_run=False)


@pytest.mark.slow  # about 1 s or more: outside make test-fast
def test_regression_check_finds_the_slower_model(reference_db, tmp_path, capsys):
    current = build_history(str(tmp_path / "current.duckdb"), runs=12, step_at=None, seed=12, simulated_run=False)
    _slow_copy(current, str(tmp_path / "slower.duckdb"), "t5-small", "cpu", 1, 1.10)
    code, out, _ = run(capsys, "--db", str(tmp_path / "slower.duckdb"), "--regression-check", "--reference-db",
                       reference_db, "--threshold", "5", "--format", "json")
    assert code == 1
    data = json.loads(out)
    assert data["has_regression"] is True
    assert [(r["model"], r["hardware"], r["batch_size"]) for r in data["regressions"]] == [("t5-small", "cpu", 1)]
    assert data["regressions"][0]["change_pct"] == pytest.approx(10, abs=3)
    code, out, _ = run(capsys, "--db", str(tmp_path / "slower.duckdb"), "--regression-check", "--reference-db",
                       reference_db, "--threshold", "5", "--format", "markdown")
    assert code == 1 and "t5-small" in out
    # same distributions (another seed): no regression
    code, out, _ = run(capsys, "--db", current, "--regression-check", "--reference-db", reference_db,
                       "--threshold", "5", "--format", "json")
    assert code == 0, out


@pytest.mark.slow  # over a second
def test_regression_check_on_identical_copies_exits_0(reference_db, tmp_path, capsys):
    import shutil

    copy = str(tmp_path / "copy.duckdb")
    shutil.copy(reference_db, copy)
    code, out, _ = run(capsys, "--db", copy, "--regression-check", "--threshold", "10", "--reference-db",
                       reference_db)
    assert code == 0 and out.strip()


def test_regression_check_refuses_other_formats(sample_db, capsys):
    code, _, err = run(capsys, "--db", sample_db, "--regression-check", "--format", "csv")
    assert code == 2 and "markdown or json" in err


def _latency_only_db(path: str) -> str:
    """One model whose results carry a latency but no throughput or memory (as many legacy files do)."""
    import datetime as dt

    from benchmark_db_models import BenchmarkDB, PerformanceResults

    with BenchmarkDB(path) as db, db.transaction():
        model = db.get_or_add_model("canine")
        records = []
        for hw in ("cpu", "cuda"):
            hw_id = db.get_or_add_hardware(hw)
            records.append(PerformanceResults(model_id=model, hardware_id=hw_id, model_name="canine",
                                              hardware_type=hw, test_case="inference", average_latency_ms=1.5,
                                              created_at=dt.datetime(2025, 3, 1)))
        db.insert_many(records)
    return path


def test_comparison_without_the_metric_says_which_metrics_exist(tmp_path, capsys):
    db = _latency_only_db(str(tmp_path / "latency_only.duckdb"))
    code, out, err = run(capsys, "--db", db, "--model", "canine", "--compare-hardware")
    assert code == 2 and out == ""
    assert err.startswith("error DB004: no throughput values among the 2 performance results matching --model canine")
    assert "--metric latency" in err and "models matching" not in err
    code, out, _ = run(capsys, "--db", db, "--model", "canine", "--compare-hardware", "--metric", "latency",
                       "--format", "json")
    assert code == 0 and len(json.loads(out)) == 2


@pytest.mark.parametrize("argv, named", [
    (["--report", "hardware", "--hardware", "tpu"], "hardware matching the other filters: cpu, cuda, mps, openvino"),
    (["--report", "compatibility", "--model", "nonexistent"], "openai/whisper-tiny"),
    (["--report", "integration", "--model", "nonexistent"], "models matching the other filters: none"),
    (["--report", "summary", "--model", "nonexistent"], "bert-base-uncased"),
    (["--report", "performance", "--model", "nonexistent"], "bert-base-uncased"),
])
def test_filtered_report_matching_nothing_is_db004_like_performance(sample_db, capsys, argv, named):
    code, out, err = run(capsys, "--db", sample_db, *argv, "--format", "json")
    assert code == 2 and out == ""
    assert err.startswith("error DB004: no ") and named in err


def test_unfiltered_reports_on_an_empty_database_exit_0(db_path, capsys):
    for kind in ("performance", "hardware", "compatibility", "integration", "summary"):
        code, out, _ = run(capsys, "--db", db_path, "--report", kind, "--format", "json")
        assert code == 0 and json.loads(out)["report"] == kind

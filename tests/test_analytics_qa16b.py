"""QA round 16b of the analytics tool: the change-point floor in its text, --regression-threshold nan/inf,
the throughput median from the raw samples, and an --output-dir it cannot write."""
from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest

from benchmark_db import reports
from benchmark_db.connection import open_db
from tests.test_analytics import T0, _write, run_main


def _step_history(tmp_path, runs=12, step_at=6):
    """One series of `runs` daily results with a clean 50% latency step: below the detector's floor at 12."""
    rows = [dict(model="bert-base-uncased", family="bert", params=110, hw="cpu", batch=1, precision="fp32",
                 latency=(150.0 if i >= step_at else 100.0) * (1 + 0.001 * ((i * 5) % 13)), when=T0 + dt.timedelta(days=i))
            for i in range(runs)]
    return _write(tmp_path / "step.duckdb", rows)


@pytest.mark.slow  # ~1 s: two analyses with charts
def test_anomaly_and_trend_text_say_how_many_runs_change_points_need(tmp_path, capsys):
    db = _step_history(tmp_path)
    out_dir = tmp_path / "out"
    code, out, _ = run_main(["--db", db, "--analysis", "anomaly-detection", "--output-dir", str(out_dir)], capsys)
    assert code == 0
    # 12 runs with 6 a side: nothing found, and the text says why rather than implying 5 a side suffice
    assert ("0 change point(s) with a change of at least 10%. Outliers need 5 results in a series; change "
            "points need 13 (5 or more on each side of a step, 14 in all unless the step is in the middle), "
            "which 0 of the 1 series have.") in out
    extra = json.loads((out_dir / "anomaly-detection.json").read_text())
    assert extra["min_results_for_change_points"] == 13 and extra["series_long_enough_for_change_points"] == 0
    code, out, _ = run_main(["--db", db, "--analysis", "performance-trends", "--output-dir", str(out_dir)], capsys)
    assert code == 0 and "change points need at least 13 runs" in out and "at least 10" not in out


@pytest.mark.slow  # ~0.5 s
def test_thirteen_runs_find_the_step_the_text_promises(tmp_path, capsys):
    db = _step_history(tmp_path, runs=13, step_at=6)
    out_dir = tmp_path / "out"
    code, out, _ = run_main(["--db", db, "--analysis", "anomaly-detection", "--output-dir", str(out_dir)], capsys)
    assert code == 0 and "1 change point(s)" in out and "which 1 of the 1 series have" in out


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "-5"])
def test_non_finite_or_negative_threshold_is_one_db000_line(value, tmp_path, capsys):
    out_dir = tmp_path / "out"
    code, out, err = run_main(["--db", str(tmp_path / "never-opened.duckdb"), "--analysis", "anomaly-detection",
                               f"--regression-threshold={value}", "--output-dir", str(out_dir)], capsys)
    assert code == 2 and out == ""
    assert err == (f"error DB000: --regression-threshold must be a finite fraction or percentage >= 0, not "
                   f"{float(value):g}; pass e.g. --regression-threshold 0.1 (or 10, both 10%)\n")
    assert not out_dir.exists()


def _sampled_rows(batch=4, with_samples=True):
    rng = np.random.default_rng(5)
    rows = []
    for hw, base in (("cpu", 40.0), ("cuda", 5.0)):
        for i in range(3):
            samples = list(base * (1 + i * 0.05) * rng.lognormal(0, 0.2, 21))
            # the stored latency is the mean, so the stored throughput is not the median of the samples'
            rows.append(dict(model="bert-base-uncased", family="bert", params=110, hw=hw, batch=batch,
                             precision="fp32", latency=float(np.mean(samples)),
                             samples=samples if with_samples or i else None, when=T0 + dt.timedelta(days=i)))
    return rows


@pytest.mark.slow  # ~0.6 s: the analysis and its chart
def test_hardware_comparison_throughput_median_comes_from_the_samples_like_compare(tmp_path, capsys):
    rows = _sampled_rows()
    db = _write(tmp_path / "s.duckdb", rows)
    out_dir = tmp_path / "out"
    code, _, _ = run_main(["--db", db, "--analysis", "hardware-comparison", "--output-dir", str(out_dir)], capsys)
    assert code == 0
    table = pd.read_csv(out_dir / "hardware-comparison.csv").set_index("hardware")
    with open_db(db, read_only=True) as conn:
        compare = reports.compare_table(conn, reports.ReportFilters.make(), "throughput").set_index("hardware")
    for hw in ("cpu", "cuda"):
        samples = np.concatenate([r["samples"] for r in rows if r["hw"] == hw])
        latency = float(np.median(samples))
        assert table.loc[hw, "median_latency_ms"] == pytest.approx(latency)
        assert table.loc[hw, "median_throughput"] == pytest.approx(float(np.median(4 * 1000.0 / samples)))
        assert table.loc[hw, "median_throughput"] == pytest.approx(compare.loc[hw, "throughput_items_per_s_p50"])
        assert table.loc[hw, "throughput_basis"] == "raw samples" == compare.loc[hw, "basis"]
        stored = np.median([r["batch"] * 1000 / r["latency"] for r in rows if r["hw"] == hw])
        assert abs(table.loc[hw, "median_throughput"] / stored - 1) > 0.001  # the old column: a different number


@pytest.mark.slow  # ~0.6 s
def test_a_result_without_samples_makes_the_throughput_per_result_like_compare(tmp_path, capsys):
    rows = _sampled_rows(with_samples=False)
    db = _write(tmp_path / "s.duckdb", rows)
    out_dir = tmp_path / "out"
    code, _, _ = run_main(["--db", db, "--analysis", "model-comparison", "--analysis", "hardware-comparison",
                           "--output-dir", str(out_dir)], capsys)
    assert code == 0
    table = pd.read_csv(out_dir / "hardware-comparison.csv").set_index("hardware")
    with open_db(db, read_only=True) as conn:
        compare = reports.compare_table(conn, reports.ReportFilters.make(), "throughput").set_index("hardware")
    for hw in ("cpu", "cuda"):
        assert table.loc[hw, "throughput_basis"] == "per-result values" == compare.loc[hw, "basis"]
        assert table.loc[hw, "median_throughput"] == pytest.approx(compare.loc[hw, "throughput_items_per_s_p50"])


def test_output_dir_that_cannot_be_created_is_one_db000_line(sample_db_path, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    out_dir = blocker / "out"
    code, out, err = run_main(["--db", sample_db_path, "--analysis", "batch-scaling",
                               "--output-dir", str(out_dir)], capsys)
    assert code == 2 and out == ""
    assert err.startswith(f"error DB000: cannot create --output-dir {out_dir}: ") and err.count("\n") == 1
    assert err.endswith("; pass a folder you can write to\n") and "unexpected" not in err


@pytest.mark.slow  # ~1 s: the sample database and every analysis up to the failing write
@pytest.mark.parametrize("analysis", ["anomaly-detection", "all"])
def test_a_file_it_cannot_write_in_the_output_dir_is_one_db000_line(analysis, tmp_path, capsys):
    db = _step_history(tmp_path, runs=8)
    out_dir = tmp_path / "out"
    (out_dir / "anomaly-detection.csv").mkdir(parents=True)  # a folder where the CSV goes
    code, out, err = run_main(["--db", db, "--analysis", analysis, "--output-dir", str(out_dir)], capsys)
    assert code == 2 and out == ""
    assert err == (f"error DB000: cannot write {out_dir / 'anomaly-detection.csv'}: Is a directory; "
                   "pass --output-dir a folder you can write to\n")


@pytest.mark.slow  # ~0.6 s
def test_a_result_without_a_batch_size_makes_the_throughput_per_result(tmp_path, capsys):
    """A NULL batch size reached `not batch > 0` as pandas' NA: 'unexpected TypeError: boolean value of NA is
    ambiguous' for hardware-comparison, model-comparison and all on the guide's own database."""
    import duckdb

    db = _write(tmp_path / "s.duckdb", _sampled_rows())
    with duckdb.connect(db) as conn:
        # on both hardware types, so the group of the NULL batch compares two (web results have no batch)
        conn.execute("UPDATE performance_results SET batch_size = NULL WHERE result_id IN (SELECT min(result_id) "
                     "FROM performance_results GROUP BY hardware_type)")
    out_dir = tmp_path / "out"
    code, _, err = run_main(["--db", db, "--analysis", "hardware-comparison", "--output-dir", str(out_dir)], capsys)
    assert code == 0, err
    table = pd.read_csv(out_dir / "hardware-comparison.csv")
    assert set(table["throughput_basis"]) <= {"raw samples", "per-result values"} and len(table) >= 2

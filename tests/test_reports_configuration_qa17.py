"""Results of different work are never pooled: the performance report, its pivot, the fastest-hardware table,
the comparison and the trend keep test case and sequence length apart.

Found by a new user's walkthrough: an optimum-benchmark file's `load_model` (335 ms), `first_forward` (152 ms)
and `forward` (mean 39 ms) rows pooled into one report row with a mean of 175 ms that described none of them,
while the chart's p50 (from the forward samples) said 0.88 ms. Sequence lengths 32 and 512 pooled the same way.
"""
from __future__ import annotations

import datetime as dt

import pytest

from benchmark_db import reports
from benchmark_db.connection import connect
from benchmark_db.reports import ReportFilters

pytestmark = pytest.mark.slow  # each writes a database and runs reports: over a third of a second

START = dt.datetime(2025, 3, 1, 8, 0, 0)
# (test case, sequence length, latency ms): one model, one hardware, one batch size, one precision
WORK = (("load_model", None, 335.0), ("first_forward", None, 152.0), ("forward", 32, 2.0),
        ("forward", 512, 30.0))


@pytest.fixture
def db_path(tmp_path):
    from benchmark_db_models import BenchmarkDB, PerformanceResults, TestRuns

    path = str(tmp_path / "work.duckdb")
    with BenchmarkDB(path) as db, db.transaction():
        model = db.get_or_add_model("bert-base-uncased", model_family="bert")
        records = []
        for day in range(3):  # three runs, so the trend has three points per series
            run = db.insert_test_runs(TestRuns(test_name=f"run {day}", test_type="performance",
                                               started_at=START + dt.timedelta(days=day), success=True))
            for hardware, factor in (("cpu", 1.0), ("cuda", 0.25)):
                hardware_id = db.get_or_add_hardware(hardware)
                for test_case, length, latency in WORK:
                    ms = latency * factor
                    records.append(PerformanceResults(
                        run_id=run, model_id=model, hardware_id=hardware_id, model_name="bert-base-uncased",
                        hardware_type=hardware, test_case=test_case, batch_size=1, sequence_length=length,
                        precision="fp32", average_latency_ms=ms, throughput_items_per_second=1000.0 / ms,
                        latency_samples_ms=[ms * 0.9, ms, ms * 1.1],
                        created_at=START + dt.timedelta(days=day)))
        db.insert_many(records)
    return path


def _configs(frame) -> set:
    return {(None if reports.is_missing(t) else t, None if reports.is_missing(s) else int(s))
            for t, s in zip(frame["test_case"], frame["sequence_length"])}


@pytest.mark.parametrize("cached", [False, True])
def test_performance_report_has_one_row_per_test_case_and_sequence_length(db_path, cached):
    with connect(db_path, read_only=True) as conn:
        report = reports.build_report(conn, "performance", use_summary_cache=cached)
    table = report.main
    assert len(table) == 2 * len(WORK)  # cpu and cuda, four kinds of work each
    cpu = table[table["hardware"] == "cpu"]
    assert _configs(cpu) == {(t, s) for t, s, _ in WORK}
    means = {(t, None if reports.is_missing(s) else int(s)): v
             for t, s, v in zip(cpu["test_case"], cpu["sequence_length"], cpu["latency_ms_mean"])}
    assert means == {(t, s): pytest.approx(v) for t, s, v in WORK}  # not one pooled mean of 129.75 ms
    pivot = report.sections[1].frame
    assert len(pivot) == len(WORK) and {"test_case", "sequence_length"} <= set(pivot.columns)
    forward_512 = pivot[(pivot["test_case"] == "forward") & (pivot["sequence_length"] == 512)].iloc[0]
    assert forward_512["cpu"] == pytest.approx(1000.0 / 30.0) and forward_512["cuda"] == pytest.approx(4000.0 / 30)


def test_fastest_hardware_is_chosen_per_test_case_and_sequence_length(db_path):
    with connect(db_path, read_only=True) as conn:
        fastest = reports.best_hardware_table(conn, ReportFilters())
    assert len(fastest) == len(WORK) and set(fastest["fastest_hardware"]) == {"cuda"}
    assert _configs(fastest) == {(t, s) for t, s, _ in WORK}


def test_comparison_and_trend_keep_configurations_apart(db_path):
    with connect(db_path, read_only=True) as conn:
        compare = reports.compare_table(conn, ReportFilters(), "latency", by="hardware")
        trend = reports.trend_table(conn, ReportFilters(), "latency")
    assert len(compare) == 2 * len(WORK)
    # CPU's p50 is compared with CPU's p50 of the same work: cuda is 4x better in every configuration
    cuda = compare[compare["hardware"] == "cuda"]
    assert list(cuda["relative_to_cpu"]) == pytest.approx([4.0] * len(WORK))
    assert trend.groupby(reports.SERIES_KEYS, dropna=False).ngroups == 2 * len(WORK)
    assert trend.groupby(reports.SERIES_KEYS, dropna=False).size().eq(3).all()  # three runs in each series


def test_comparison_chart_draws_each_configuration_in_a_panel_of_its_own(db_path):
    from benchmark_db import charts

    with connect(db_path, read_only=True) as conn:
        compare = reports.compare_table(conn, ReportFilters(), "latency", by="hardware")
    figure = charts.comparison_figure(compare, "latency", "hardware")
    titles = sorted(ax.get_title() for ax in figure.axes if ax.get_visible() and ax.get_title())
    assert titles == sorted(["bert-base-uncased · load_model", "bert-base-uncased · first_forward",
                             "bert-base-uncased · forward · seq 32", "bert-base-uncased · forward · seq 512"])


# -- QA 17b: precision, whole numbers, the view and the legend --------------------------------------------------
@pytest.fixture
def precision_db(tmp_path):
    """bert forward batch 1 seq 128: cpu at fp32 (100 items/s) and fp16 (500), cuda at fp32 (250)."""
    from benchmark_db_models import BenchmarkDB, PerformanceResults

    path = str(tmp_path / "precision.duckdb")
    with BenchmarkDB(path) as db, db.transaction():
        model = db.get_or_add_model("bert-base-uncased")
        db.insert_many([PerformanceResults(
            model_id=model, hardware_id=db.get_or_add_hardware(hardware), model_name="bert-base-uncased",
            hardware_type=hardware, test_case="forward", batch_size=1, sequence_length=128, precision=precision,
            throughput_items_per_second=throughput, average_latency_ms=1000.0 / throughput, created_at=START)
            for hardware, precision, throughput in (("cpu", "fp32", 100.0), ("cpu", "fp16", 500.0),
                                                    ("cuda", "fp32", 250.0))])
    return path


def test_pivot_and_fastest_hardware_never_average_two_precisions(precision_db):
    with connect(precision_db, read_only=True) as conn:
        report = reports.build_report(conn, "performance")
        fastest = reports.best_hardware_table(conn, ReportFilters())
    pivot = report.sections[1].frame
    # cpu was measured at two precisions: a column each (their mean, 300, was measured at neither)
    assert pivot.columns.tolist() == ["model", "test_case", "batch_size", "sequence_length", "cpu fp16", "cpu fp32",
                                      "cuda"]
    assert pivot.iloc[0][["cpu fp16", "cpu fp32", "cuda"]].tolist() == [500.0, 100.0, 250.0]
    best = fastest.iloc[0]
    assert (best["fastest_hardware"], best["precision"], best["throughput_items_per_s_mean"],
            best["hardware_compared"]) == ("cpu", "fp16", 500.0, 2)


def test_pivot_keeps_batch_size_and_sequence_length_whole(db_path):
    import json

    with connect(db_path, read_only=True) as conn:
        report = reports.build_report(conn, "performance")
    rows = json.loads(reports.render_report(report, "json"))["sections"]["by_hardware"]["rows"]
    assert {row["sequence_length"] for row in rows} == {None, 32, 512}
    assert all(isinstance(row[k], int) for row in rows for k in ("batch_size", "sequence_length")
               if row[k] is not None)  # not 32.0


def test_cross_platform_view_keeps_configurations_apart(db_path):
    with connect(db_path, read_only=True) as conn:
        rows = conn.execute("SELECT test_case, sequence_length, precision, cpu_throughput, results "
                            "FROM cross_platform_performance ORDER BY ALL").fetchall()
    assert len(rows) == len(WORK)
    for test_case, length, latency in WORK:
        assert (test_case, length, "fp32", pytest.approx(1000.0 / latency), 6) in rows  # cpu and cuda, 3 runs


def test_a_cut_label_keeps_the_configuration_whole():
    from benchmark_db.charts import short_label

    first, plain = (short_label(f"bert-base-uncased · {case} · seq 128 fp32") for case in ("first_forward", "forward"))
    assert first.endswith("· first_forward · seq 128 fp32") and plain.endswith("· forward · seq 128 fp32")
    assert len(first) == len(plain) == 40 and first != plain


def test_a_trend_a_few_configurations_too_wide_draws_those_with_the_most_runs(tmp_path, capsys):
    """The guide's `--plot-trend --model bert-base-uncased --hardware cuda` matched 19 configurations once test
    case and sequence length became keys, and was refused (at most 12): now the 12 with the most runs are drawn
    and the chart and stderr say so; far too many (over twice that) is still refused."""
    import benchmark_db_visualizer as visualizer
    from benchmark_db_models import BenchmarkDB, PerformanceResults, TestRuns

    path = str(tmp_path / "wide.duckdb")
    with BenchmarkDB(path) as db, db.transaction():
        model, cpu = db.get_or_add_model("bert-base-uncased"), db.get_or_add_hardware("cpu")
        records = []
        for day in range(3):
            run = db.insert_test_runs(TestRuns(test_name=f"run {day}", test_type="performance",
                                               started_at=START + dt.timedelta(days=day), success=True))
            for length in range(1, 16 if day == 0 else 13):  # 15 configurations; 12 of them in three runs
                records.append(PerformanceResults(
                    run_id=run, model_id=model, hardware_id=cpu, model_name="bert-base-uncased", hardware_type="cpu",
                    test_case="forward", batch_size=1, sequence_length=length, precision="fp32",
                    throughput_items_per_second=100.0 + length, average_latency_ms=10.0,
                    created_at=START + dt.timedelta(days=day)))
        db.insert_many(records)
    chart = tmp_path / "trend.png"
    assert visualizer.main(["--db", path, "--plot-trend", "--output", str(chart)]) == 0
    assert chart.read_bytes()[:4] == b"\x89PNG"
    assert "12 of 15 configurations drawn (those with the most runs)" in capsys.readouterr().err

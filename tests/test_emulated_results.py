"""Emulated results (a software WebGPU adapter such as SwiftShader: `performance_results.is_emulated`, which the
ORM sets from the runner's `"is_emulated": true` in the metrics): real measurements of an emulated device, so they are included by default, but
every report, pivot, chart, the summary cache and the regression check keep them apart from the real device of
the same hardware type and label them `<hardware> (emulated)`."""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
import shutil
from pathlib import Path

import pytest

from benchmark_db import charts, reports, summary_cache
from benchmark_db.connection import connect
from benchmark_db.regression import regression_check
from benchmark_db.reports import ReportFilters

MODEL = "bert-base-uncased"
T0 = dt.datetime(2026, 2, 1, 9, 0)
# throughput (items/s) of each kind of row: the real GPU is fast, the software adapter slow
SPEED = {"cpu": 100.0, "gpu": 1000.0, "emu": 20.0}


def build_db(path, runs, *, same_device: bool = True) -> str:
    """`runs`: one list per run of the kinds measured in it ("cpu", "gpu" = real WebGPU, "emu" = WebGPU on
    SwiftShader), batch size 1 each, 20 raw samples per row. With `same_device` the emulated rows share the
    real WebGPU row's hardware platform (the harshest case: nothing but the flag tells them apart); else they
    are on `google swiftshader`, as the browser runner stores them."""
    from benchmark_db_models import BenchmarkDB, PerformanceResults, TestRuns

    with BenchmarkDB(str(path)) as db, db.transaction():
        bert = db.get_or_add_model(MODEL, model_family="bert")
        hw = {"cpu": db.get_or_add_hardware("cpu", "Test CPU"), "gpu": db.get_or_add_hardware("webgpu", "Test GPU")}
        hw["emu"] = hw["gpu"] if same_device else db.get_or_add_hardware("webgpu", "google swiftshader")
        records = []
        for r, kinds in enumerate(runs):
            started = T0 + dt.timedelta(hours=r)
            run_id = db.insert_test_runs(TestRuns(test_name=f"run-{r}", test_type="performance", started_at=started,
                                                  success=True))
            for kind in kinds:
                latency = 1000.0 / SPEED[kind]
                samples = [latency * (1 + 0.002 * ((i * 7) % 11 - 5)) for i in range(20)]
                metrics = {"is_emulated": True, "adapter": "SwiftShader"} if kind == "emu" else {"is_emulated": False}
                records.append(PerformanceResults(
                    run_id=run_id, model_id=bert, hardware_id=hw[kind], model_name=MODEL,
                    hardware_type="cpu" if kind == "cpu" else "webgpu", test_case="inference", batch_size=1,
                    sequence_length=128, precision="fp32", average_latency_ms=latency, latency_p50_ms=latency,
                    throughput_items_per_second=SPEED[kind], memory_peak_mb=100.0, iterations=20,
                    latency_samples_ms=samples, metrics=metrics, created_at=started))
        db.insert_many(records)
    return str(path)


@pytest.fixture(scope="session")
def _emulated_template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("emulated") / "emulated.duckdb"
    build_db(path, [["cpu", "gpu"], ["emu"]] * 3)
    assert not Path(str(path) + ".wal").exists()  # every byte is in the file: a copy is the same database
    return path


@pytest.fixture
def db(tmp_path, _emulated_template) -> str:
    """Six runs measuring bert batch 1: three on the CPU and a real WebGPU device, three on SwiftShader standing
    in for that device (one run cannot hold both: their natural keys, and so their result ids, are the same).
    This test's own copy of one made per session."""
    path = tmp_path / "emulated.duckdb"
    shutil.copyfile(_emulated_template, path)
    return str(path)


@pytest.fixture
def cache_right_after_a_write(monkeypatch):
    monkeypatch.setattr(summary_cache, "_RACY_SECONDS", -3600.0)  # save the summary at once (see summary_cache)


def _report(path, filters=None, *, cached=False, kind="performance"):
    with connect(path, read_only=True) as conn:
        return reports.build_report(conn, kind, filters or ReportFilters(), use_summary_cache=cached)


@pytest.mark.parametrize("cached", [False, True])
def test_performance_table_keeps_emulated_results_apart_and_labelled(db, cached, cache_right_after_a_write):
    for _ in range(2 if cached else 1):  # the second cached report reads the saved summary
        report = _report(db, cached=cached)
        rows = {r["hardware"]: r for r in report.main.to_dict(orient="records")}
        assert set(rows) == {"cpu", "webgpu", "webgpu (emulated)"}
        assert rows["webgpu"]["throughput_items_per_s_mean"] == pytest.approx(1000.0)  # not (1000 + 20) / 2
        assert rows["webgpu (emulated)"]["throughput_items_per_s_mean"] == pytest.approx(20.0)
        assert rows["webgpu (emulated)"]["results"] == rows["webgpu"]["results"] == 3
        assert bool(rows["webgpu (emulated)"]["is_emulated"]) and not bool(rows["webgpu"]["is_emulated"])
        assert any("3 emulated results" in note and "(emulated)" in note for note in report.notes)
    if cached:
        with connect(db, read_only=True) as conn:
            assert "is_emulated" in summary_cache.performance_summary(conn).column_names
        assert summary_cache._read(summary_cache.cache_path(db),
                                   summary_cache._file_state(db)[0]) is not None  # it was saved and matches


@pytest.mark.parametrize("fmt", ["table", "markdown", "csv", "json", "html"])
@pytest.mark.slow
def test_every_report_format_shows_the_label(db, fmt):
    report = _report(db)
    with connect(db, read_only=True) as conn:
        text = reports.render_report(report, fmt, conn if fmt == "html" else None)
    assert "webgpu (emulated)" in text
    if fmt == "json":
        rows = json.loads(text)["sections"]["performance"]["rows"]
        flags = {r["hardware"]: r["is_emulated"] for r in rows}
        assert flags == {"cpu": False, "webgpu": False, "webgpu (emulated)": True}
        pivot = json.loads(text)["sections"]["by_hardware"]["rows"][0]
        assert pivot["webgpu"] == pytest.approx(1000.0) and pivot["webgpu (emulated)"] == pytest.approx(20.0)
    elif fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(text)))
        flags = {r["hardware"]: r["is_emulated"].lower() for r in rows}
        assert flags == {"cpu": "false", "webgpu": "false", "webgpu (emulated)": "true"}
    elif fmt == "html":
        assert "<th scope='col' tabindex='0'>webgpu (emulated)</th>" in text  # the pivot's column
        assert "data:image/png;base64," in text


def test_pivot_and_fastest_hardware_never_average_emulated_with_real(db):
    with connect(db, read_only=True) as conn:
        full = reports.performance_table(conn, ReportFilters(), with_sums=True)
        best = reports.best_hardware_table(conn, ReportFilters()).iloc[0]
        wide = reports.throughput_by_hardware(conn, ReportFilters()).iloc[0]
    pivot = reports.pivot_by_hardware(full, "throughput")
    assert pivot.columns.tolist() == ["model", "test_case", "batch_size", "sequence_length", "cpu", "webgpu",
                                      "webgpu (emulated)"]
    row = pivot.iloc[0]
    assert row["webgpu"] == pytest.approx(1000.0) and row["webgpu (emulated)"] == pytest.approx(20.0)
    assert wide["webgpu"] == pytest.approx(1000.0) and wide["webgpu (emulated)"] == pytest.approx(20.0)
    assert best["fastest_hardware"] == "webgpu" and best["throughput_items_per_s_mean"] == pytest.approx(1000.0)
    assert best["hardware_compared"] == 3


def test_pivot_labels_a_table_that_carries_only_the_flag():
    import pandas as pd

    table = pd.DataFrame({"model": ["m", "m"], "batch_size": [1, 1], "hardware": ["webgpu", "webgpu"],
                          "is_emulated": [False, True], "_sum_throughput": [2000.0, 40.0],
                          "_n_throughput": [2, 2]})
    pivot = reports.pivot_by_hardware(table, "throughput")
    assert pivot.columns.tolist() == ["model", "batch_size", "webgpu", "webgpu (emulated)"]
    assert pivot.iloc[0]["webgpu"] == 1000.0 and pivot.iloc[0]["webgpu (emulated)"] == 20.0


@pytest.mark.slow  # over 0.35 s here: outside make test-fast
def test_hardware_filter_matches_emulated_results_shown_labelled(tmp_path):
    path = build_db(tmp_path / "swiftshader.duckdb", [["cpu", "gpu", "emu"]] * 2, same_device=False)
    report = _report(path, ReportFilters.make(hardware="webgpu"))
    rows = {(r["hardware"], r["device"]): r for r in report.main.to_dict(orient="records")}
    assert set(rows) == {("webgpu", "Test GPU"), ("webgpu (emulated)", "google swiftshader")}
    assert report.sections[1].frame.columns.tolist() == ["model", "test_case", "batch_size", "sequence_length",
                                                         "webgpu", "webgpu (emulated)"]
    with connect(path, read_only=True) as conn:
        hw = reports.hardware_table(conn, ReportFilters()).set_index("device")
    assert hw.loc["google swiftshader", "emulated_results"] == 2 and hw.loc["Test GPU", "emulated_results"] == 0


@pytest.mark.slow  # about 1.0 s: outside make test-fast
def test_compare_table_and_charts_name_emulated_series(db):
    import matplotlib.pyplot as plt

    with connect(db, read_only=True) as conn:
        compare = reports.compare_table(conn, ReportFilters(), "throughput", by="hardware")
        trend = reports.trend_table(conn, ReportFilters.make(hardware="webgpu"), "throughput")
    rows = {r["hardware"]: r for r in compare.to_dict(orient="records")}
    assert set(rows) == {"cpu", "webgpu", "webgpu (emulated)"}
    assert bool(rows["webgpu (emulated)"]["is_emulated"]) and not bool(rows["webgpu"]["is_emulated"])
    assert rows["webgpu"]["relative_to_cpu"] == pytest.approx(10.0, rel=0.02)
    assert rows["webgpu (emulated)"]["relative_to_cpu"] == pytest.approx(0.2, rel=0.02)

    fig = charts.comparison_figure(compare, "throughput", "hardware")
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    plt.close(fig)
    assert sorted(legend) == ["cpu", "webgpu", "webgpu (emulated)"]

    heat = charts.relative_speed_figure(compare)
    ticks = [t.get_text() for t in heat.axes[0].get_xticklabels()]
    plt.close(heat)
    assert ticks == ["cpu", "webgpu", "webgpu (emulated)"]

    assert trend.groupby(reports.SERIES_KEYS).ngroups == 2  # one series each, never one merged series
    fig = charts.trend_figure(trend, None, "throughput")
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    plt.close(fig)
    assert sorted(labels) == ["webgpu (emulated) batch 1 fp32", "webgpu batch 1 fp32"]


@pytest.mark.slow  # over 0.35 s here: outside make test-fast
def test_trend_of_emulated_results_alone_still_says_emulated(db):
    import matplotlib.pyplot as plt

    with connect(db, read_only=True) as conn:
        trend = reports.trend_table(conn, ReportFilters.make(hardware="webgpu"), "throughput")
    fig = charts.trend_figure(trend[trend["is_emulated"].astype(bool)], None, "throughput")
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    plt.close(fig)
    assert labels == ["batch 1 fp32 (emulated)"]


def test_regression_never_compares_an_emulated_run_with_a_real_one(tmp_path):
    """The latest run measured WebGPU on SwiftShader only (same platform row): 50x slower than the real GPU's
    earlier runs, but that is no regression of the real GPU, and nothing earlier was emulated."""
    path = build_db(tmp_path / "latest.duckdb", [["cpu", "gpu"]] * 5 + [["cpu", "emu"]])
    with connect(path, read_only=True) as conn:
        report = regression_check(conn, metric="latency")
    assert not report.has_regression, report.to_markdown()
    compared = {(g.key["hardware"], g.key["is_emulated"]) for g in report.unchanged}
    assert compared == {("cpu", False), ("webgpu", False)}
    skipped = [s for s in report.skipped if s["is_emulated"]]
    assert len(skipped) == 1 and skipped[0]["hardware"] == "webgpu (emulated)"
    assert skipped[0]["reason"].startswith("only one run")


@pytest.mark.slow  # about 0.7 s: outside make test-fast
def test_regression_against_a_reference_keeps_emulated_and_real_apart(tmp_path):
    ref = build_db(tmp_path / "ref.duckdb", [["cpu", "gpu"]] * 2)
    cur = build_db(tmp_path / "cur.duckdb", [["cpu", "emu"]] * 2)
    with connect(cur, read_only=True) as conn, connect(ref, read_only=True) as rconn:
        report = regression_check(conn, reference_conn=rconn, metric="throughput")
        filtered = regression_check(conn, reference_conn=rconn, metric="throughput", hardware="webgpu")
    assert not report.has_regression and report.compared == 1  # the CPU only
    reasons = {(s["hardware"], s["is_emulated"]): s["reason"] for s in report.skipped}
    assert reasons == {("webgpu", False): "only in the reference database",
                       ("webgpu (emulated)", True): "no reference results (new configuration)"}
    assert filtered.compared == 0 and len(filtered.skipped) == 2  # --hardware webgpu matches both
    data = report.to_dict()
    assert {s["hardware"] for s in data["skipped"]} == {"webgpu", "webgpu (emulated)"}


def test_regression_last_days_keeps_emulated_and_real_apart(tmp_path):
    path = build_db(tmp_path / "days.duckdb", [["gpu"]] * 5 + [["emu"]] * 5)
    with connect(path, read_only=True) as conn:
        report = regression_check(conn, last_days=0.15, now=T0 + dt.timedelta(hours=9, minutes=30),
                                  metric="latency")
    # the window holds the last emulated runs, before it real and emulated runs: only emulated vs emulated
    assert not report.has_regression
    assert [(g.key["hardware"], g.rows_before, g.rows_after) for g in report.unchanged] == [
        ("webgpu (emulated)", 1, 4)]
    assert [(s["hardware"], s["reason"]) for s in report.skipped] == [
        ("webgpu", "no results in the last 0.15 days")]


def test_html_flags_of_a_result_are_not_coloured_as_failures():
    """`is_emulated = no` is not a failure: before, every `no` cell of the HTML tables was styled 'bad'."""
    import pandas as pd

    html = reports.html_table(pd.DataFrame({"is_emulated": [False], "is_simulated": [False], "success": [False]}))
    cells = html.split("<tbody>")[-1] if "<tbody>" in html else html
    assert cells.count("class='bad'") == 1  # only success = no

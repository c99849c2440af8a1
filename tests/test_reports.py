"""benchmark_db.reports: every number a report shows equals plain SQL over the tables (or numpy over the raw
samples); filters, simulated rows and the DB004 'no data' message."""
from __future__ import annotations

import datetime as dt
import shutil

import numpy as np
import pytest

from benchmark_db import reports
from benchmark_db.connection import connect
from benchmark_db.errors import QueryError, UsageError
from benchmark_db.reports import ReportFilters
from tests.report_fixtures import build_history


@pytest.fixture(scope="module")
def sample_db(tmp_path_factory, _sample_db_template) -> str:
    """This module's copy of the sample database (made once per session in conftest): its tests only read it."""
    path = tmp_path_factory.mktemp("reports") / "sample.duckdb"
    shutil.copyfile(_sample_db_template, path)
    return str(path)


@pytest.fixture(scope="module")
def history_db(tmp_path_factory) -> str:
    return build_history(str(tmp_path_factory.mktemp("history") / "history.duckdb"))


@pytest.fixture
def conn(sample_db):
    c = connect(sample_db, read_only=True)
    yield c
    c.close()


PLAIN_PERFORMANCE = """
SELECT m.model_name AS model, h.hardware_type AS hardware, h.device_name AS device, p.batch_size, p.precision,
       count(*) AS results, count(DISTINCT p.run_id) AS runs,
       avg(p.throughput_items_per_second) AS tp_mean, max(p.throughput_items_per_second) AS tp_max,
       avg(p.average_latency_ms) AS lat_mean, min(p.average_latency_ms) AS lat_min,
       max(p.average_latency_ms) AS lat_max, max(p.memory_peak_mb) AS mem_max
FROM performance_results p JOIN models m USING (model_id) JOIN hardware_platforms h USING (hardware_id)
WHERE NOT p.is_simulated {extra}
GROUP BY ALL ORDER BY ALL"""


def _by_key(df, keys):
    return {tuple(row[k] for k in keys): row for row in df.to_dict(orient="records")}


def test_performance_table_equals_plain_sql(conn):
    table = reports.performance_table(conn, ReportFilters())
    plain = conn.execute(PLAIN_PERFORMANCE.format(extra="")).df()
    assert len(table) == len(plain) == 5 * 4 * 6
    keys = ["model", "hardware", "device", "batch_size", "precision"]
    ours = _by_key(table, keys)
    for row in plain.to_dict(orient="records"):
        mine = ours[tuple(row[k] for k in keys)]
        assert mine["results"] == row["results"]
        assert mine["throughput_items_per_s_mean"] == pytest.approx(row["tp_mean"], rel=1e-12)
        assert mine["throughput_items_per_s_max"] == row["tp_max"]
        assert mine["latency_ms_mean"] == pytest.approx(row["lat_mean"], rel=1e-12)
        assert mine["latency_ms_min"] == row["lat_min"] and mine["latency_ms_max"] == row["lat_max"]
        assert mine["memory_mb_max"] == row["mem_max"]
    assert "rocm" not in set(table["hardware"])  # the sample's only rocm row is simulated


def test_hardware_pivot_equals_plain_sql(conn):
    for metric, column in (("throughput", "throughput_items_per_second"), ("latency", "average_latency_ms")):
        full = reports.performance_table(conn, ReportFilters(), with_sums=True)
        keys = ["model", "test_case", "batch_size", "sequence_length"]
        pivot = reports.pivot_by_hardware(full, metric).set_index(keys)
        plain = conn.execute(f"""SELECT model_name, test_case, batch_size, sequence_length, hardware_type,
                                        avg({column})
                                 FROM performance_results WHERE NOT is_simulated GROUP BY ALL""").fetchall()
        assert pivot.shape == (30, 4)
        for *key, hardware, value in plain:
            assert pivot.loc[tuple(key), hardware] == pytest.approx(value, rel=1e-12)


def test_filters_match_plain_sql(conn):
    filters = ReportFilters.make(model="whisper-tiny", hardware="CUDA,cpu", batch_size="1,8", precision="FP32")
    table = reports.performance_table(conn, filters, metric="latency")
    plain = conn.execute(PLAIN_PERFORMANCE.format(
        extra="AND m.model_name = 'openai/whisper-tiny' AND h.hardware_type IN ('cuda', 'cpu') "
              "AND p.batch_size IN (1, 8) AND p.precision = 'fp32'")).df()
    assert len(table) == len(plain) == 2  # cuda rows are fp16 in the sample
    assert set(table["hardware"]) == {"cpu"}
    assert "throughput_items_per_s_mean" not in table.columns  # --metric latency keeps latency columns only
    assert sorted(table["latency_ms_mean"]) == pytest.approx(sorted(plain["lat_mean"]), rel=1e-12)


def test_time_filters(conn):
    day2 = ReportFilters.make(since="2025-03-02", until="2025-03-02")
    table = reports.performance_table(conn, day2)
    assert set(table["results"]) == {1}
    assert all(t.date() == dt.date(2025, 3, 2) for t in table["last_result_at"])
    with pytest.raises(UsageError):
        ReportFilters.make(since="2025-03-03", until="2025-03-01")
    with pytest.raises(UsageError):
        ReportFilters.make(since="last tuesday")


def test_simulated_rows_only_on_request_and_kept_apart(conn):
    assert reports.count_matching(conn, ReportFilters.make(hardware="rocm")) == 0
    table = reports.performance_table(conn, ReportFilters.make(hardware="rocm", include_simulated=True))
    assert len(table) == 1 and bool(table["is_simulated"].iloc[0])
    assert table["throughput_items_per_s_mean"].iloc[0] == conn.execute(
        "SELECT throughput_items_per_second FROM performance_results WHERE is_simulated").fetchone()[0]


def test_compare_percentiles_come_from_raw_samples(conn):
    filters = ReportFilters.make(model="bert-base-uncased", batch_size=4)
    latency = reports.compare_table(conn, filters, "latency")
    throughput = reports.compare_table(conn, filters, "throughput")
    rows = conn.execute("""
        SELECT h.hardware_type, list(s ORDER BY s)
        FROM performance_results p JOIN hardware_platforms h USING (hardware_id), unnest(p.latency_samples_ms) AS u(s)
        WHERE p.model_name = 'bert-base-uncased' AND p.batch_size = 4 AND NOT p.is_simulated
        GROUP BY 1""").fetchall()
    assert len(rows) == 4
    lat = latency.set_index("hardware")
    tp = throughput.set_index("hardware")
    for hardware, samples in rows:
        samples = np.array(samples)
        assert lat.loc[hardware, "samples"] == len(samples) == 60
        assert lat.loc[hardware, "basis"] == "raw samples"
        for q in (10, 50, 90):
            assert lat.loc[hardware, f"latency_ms_p{q}"] == pytest.approx(np.percentile(samples, q), rel=1e-9)
            assert tp.loc[hardware, f"throughput_items_per_s_p{q}"] == pytest.approx(
                np.percentile(4 * 1000.0 / samples, q), rel=1e-9)
    # relative_to_cpu: > 1 means better than CPU whichever way the metric points
    assert tp.loc["cpu", "relative_to_cpu"] == pytest.approx(1.0)
    assert tp.loc["cuda", "relative_to_cpu"] > 10 and lat.loc["cuda", "relative_to_cpu"] > 10


def test_compare_without_samples_uses_per_result_values(conn):
    df = reports.compare_table(conn, ReportFilters.make(model="t5-small", hardware="mps", batch_size=2), "memory")
    values = [r[0] for r in conn.execute(
        "SELECT memory_peak_mb FROM performance_results WHERE model_name='t5-small' AND hardware_type='mps' "
        "AND batch_size=2").fetchall()]
    assert df["basis"].iloc[0] == "per-result values" and df["samples"].iloc[0] == 0
    assert df["memory_mb_p50"].iloc[0] == pytest.approx(np.percentile(values, 50))
    assert df["memory_mb_mean"].iloc[0] == pytest.approx(np.mean(values))


def test_hardware_table_equals_plain_sql(conn):
    table = reports.hardware_table(conn, ReportFilters()).set_index("hardware")
    plain = dict(conn.execute("""
        SELECT h.hardware_type, count(*) FROM performance_results p JOIN hardware_platforms h USING (hardware_id)
        WHERE NOT p.is_simulated GROUP BY 1""").fetchall())
    for hardware, n in plain.items():
        assert table.loc[hardware, "results"] == n
    assert table.loc["rocm", "results"] == 0  # known platform, only simulated results
    assert set(table.index) == {r[0] for r in conn.execute("SELECT hardware_type FROM hardware_platforms").fetchall()}


def test_compatibility_table_and_matrix(conn):
    table = reports.compatibility_table(conn, ReportFilters())
    whisper_webgpu = table[(table["model"] == "openai/whisper-tiny") & (table["hardware"] == "webgpu")].iloc[0]
    assert not whisper_webgpu["is_compatible"] and whisper_webgpu["error_type"] == "OutOfMemory"
    bert_cpu = table[(table["model"] == "bert-base-uncased") & (table["hardware"] == "cpu")].iloc[0]
    assert bert_cpu["is_compatible"] and bert_cpu["performance_results"] == conn.execute(
        "SELECT count(*) FROM performance_results WHERE model_name='bert-base-uncased' AND hardware_type='cpu' "
        "AND NOT is_simulated").fetchone()[0]
    assert "rocm" not in set(table["hardware"])  # simulated results are no evidence of compatibility
    matrix = reports.compatibility_matrix(conn, ReportFilters()).set_index("model")
    assert matrix.loc["bert-base-uncased", "webnn"] == "no (NotSupported)"
    assert matrix.loc["bert-base-uncased", "cpu"] == "yes (18 results)"
    assert matrix.loc["t5-small", "webgpu"] == ""


def test_integration_and_summary_equal_plain_sql(conn):
    integ = reports.integration_table(conn, ReportFilters())
    assert len(integ) == conn.execute("SELECT count(DISTINCT test_name) FROM integration_test_results").fetchone()[0]
    assert integ.set_index("test_name").loc["test_whisper_webgpu", "latest_status"] == "fail"
    summary = dict(reports.summary_table(conn, ReportFilters()).itertuples(index=False))
    measured, simulated = conn.execute("SELECT count(*) FILTER (WHERE NOT is_simulated), "
                                       "count(*) FILTER (WHERE is_simulated) FROM performance_results").fetchone()
    assert summary["measured performance results"] == str(measured)
    assert summary["simulated performance results (excluded)"] == str(simulated) == "1"
    assert summary["integration tests failing (latest run)"] == "1"


def test_best_hardware_equals_plain_sql(conn):
    best = reports.best_hardware_table(conn, ReportFilters()).set_index(["model", "batch_size"])
    row = conn.execute("""
        SELECT hardware_type, avg(throughput_items_per_second) AS t FROM performance_results
        WHERE model_name = 't5-small' AND batch_size = 8 AND NOT is_simulated GROUP BY 1 ORDER BY t DESC LIMIT 1
        """).fetchone()
    assert best.loc[("t5-small", 8), "fastest_hardware"] == row[0]
    assert best.loc[("t5-small", 8), "throughput_items_per_s_mean"] == pytest.approx(row[1], rel=1e-12)


def test_build_report_json_numbers_equal_sql(conn):
    import json

    report = reports.build_report(conn, "performance", ReportFilters.make(model="bert-base-uncased"))
    data = json.loads(reports.render_report(report, "json"))
    rows = data["sections"]["performance"]["rows"]
    plain = conn.execute(PLAIN_PERFORMANCE.format(extra="AND m.model_name = 'bert-base-uncased'")).df()
    assert len(rows) == len(plain) == 24
    by_key = {(r["hardware"], r["batch_size"]): r for r in rows}
    for row in plain.to_dict(orient="records"):
        assert by_key[(row["hardware"], row["batch_size"])]["throughput_items_per_s_mean"] == pytest.approx(
            row["tp_mean"], rel=1e-12)
    assert any("simulated" in note for note in data["notes"])


def test_report_markdown_and_csv(conn):
    report = reports.build_report(conn, "summary", ReportFilters())
    md = reports.render_report(report, "markdown")
    assert md.startswith("# Benchmark summary") and "| measured performance results | 360 |" in md
    csv_text = reports.render_report(report, "csv")
    assert csv_text.splitlines()[0] == "item,value"


def test_no_data_error_names_filters_and_what_exists(conn):
    err = reports.no_data_error(conn, ReportFilters.make(model="bert-base-uncased", hardware="rocm"))
    text = str(err)
    assert isinstance(err, QueryError) and text.startswith("error DB004")
    assert "--model bert-base-uncased" in text and "--hardware rocm" in text
    assert "cpu" in text and "cuda" in text  # the hardware bert has results on
    assert "1 simulated result match" in text and "--include-simulated" in text
    with pytest.raises(QueryError):
        reports.build_report(conn, "performance", ReportFilters.make(model="no-such-model"))


@pytest.mark.slow  # over 0.35 s here: outside make test-fast
def test_trend_one_point_per_run_and_change_point(history_db):
    with connect(history_db, read_only=True) as c:
        trend = reports.trend_table(c, ReportFilters.make(model="bert-base-uncased", hardware="cuda"), "throughput")
        assert len(trend) == 24 and trend["at"].is_monotonic_increasing
        assert set(trend["results"]) == {1} and set(trend["samples"]) == {30}
        cps, note = reports.trend_change_points(trend, "throughput")
    assert note is None
    assert len(cps) == 1
    cp = cps.iloc[0]
    assert cp["index"] == 14 and cp["at"] == trend["at"].iloc[14]
    assert cp["change_pct"] == pytest.approx(-20, abs=3)


@pytest.mark.slow  # over 0.35 s here: outside make test-fast
def test_no_change_point_on_a_flat_history(tmp_path):
    path = build_history(str(tmp_path / "flat.duckdb"), step_at=None)
    with connect(path, read_only=True) as c:
        trend = reports.trend_table(c, ReportFilters.make(model="bert-base-uncased"), "latency")
        cps, _ = reports.trend_change_points(trend, "latency")
    assert trend.groupby(reports.SERIES_KEYS).ngroups == 3  # cpu batch 1 and 8, cuda batch 1
    assert cps.empty


def test_relative_to_cpu_compares_the_same_precision(tmp_path):
    """CPU measured at two precisions: each CPU row is 1x, and other hardware is compared with the CPU row of
    its own precision (or the CPU's only precision), never with whichever CPU row came first."""
    from benchmark_db_models import BenchmarkDB, PerformanceResults

    path = str(tmp_path / "precisions.duckdb")
    with BenchmarkDB(path) as db, db.transaction():
        bert = db.get_or_add_model("bert-base-uncased", model_family="bert")
        t5 = db.get_or_add_model("t5-small", model_family="t5")
        cpu = db.get_or_add_hardware("cpu", "Test CPU")
        cuda = db.get_or_add_hardware("cuda", "Test GPU")
        records = []
        for model_id, name, hw_id, hw, precision, throughput in (
                (bert, "bert-base-uncased", cpu, "cpu", "fp32", 100.0),
                (bert, "bert-base-uncased", cpu, "cpu", "int8", 300.0),
                (bert, "bert-base-uncased", cuda, "cuda", "fp32", 1000.0),
                (bert, "bert-base-uncased", cuda, "cuda", "int8", 600.0),
                (bert, "bert-base-uncased", cuda, "cuda", "fp16", 2000.0),  # no CPU fp16, two CPU precisions
                (t5, "t5-small", cpu, "cpu", "fp32", 50.0),
                (t5, "t5-small", cuda, "cuda", "fp16", 500.0)):  # the CPU's only precision is the reference
            records.append(PerformanceResults(
                model_id=model_id, hardware_id=hw_id, model_name=name, hardware_type=hw,
                test_case="inference", batch_size=1, precision=precision, average_latency_ms=1000.0 / throughput,
                throughput_items_per_second=throughput, created_at=dt.datetime(2025, 3, 1)))
        db.insert_many(records)
    c = connect(path, read_only=True)
    try:
        df = reports.compare_table(c, ReportFilters(), "throughput", by="hardware")
    finally:
        c.close()
    rel = {(r["model"], r["hardware"], r["precision"]): r["relative_to_cpu"] for r in df.to_dict(orient="records")}
    assert rel[("bert-base-uncased", "cpu", "fp32")] == pytest.approx(1.0)
    assert rel[("bert-base-uncased", "cpu", "int8")] == pytest.approx(1.0)
    assert rel[("bert-base-uncased", "cuda", "fp32")] == pytest.approx(10.0)
    assert rel[("bert-base-uncased", "cuda", "int8")] == pytest.approx(2.0)
    assert reports.is_missing(rel[("bert-base-uncased", "cuda", "fp16")])
    assert rel[("t5-small", "cuda", "fp16")] == pytest.approx(10.0)


def test_html_table_leaves_missing_timestamps_empty():
    """A platform nothing was measured on has no first/last result time: an empty cell, not 'NaT'."""
    import pandas as pd

    frame = pd.DataFrame({"hardware": ["cpu", "mps"], "results": [3, 0],
                          "last_result_at": pd.to_datetime(["2025-03-01 09:00", None])})
    html = reports.html_table(frame)
    assert "NaT" not in html and "2025-03-01" in html


@pytest.mark.parametrize("fmt", ["table", "csv", "markdown", "json"])
def test_every_format_leaves_missing_timestamps_empty(fmt):
    import pandas as pd

    from benchmark_db import output

    frame = pd.DataFrame({"hardware": ["cpu", "mps"], "results": pd.array([3, None], dtype="Int64"),
                          "last_result_at": pd.to_datetime(["2025-03-01 09:00", None])})
    text = output.render(frame, fmt)
    assert "NaT" not in text and "<NA>" not in text and "2025-03-01" in text


def test_hardware_pivot_keeps_simulated_results_in_their_own_column(conn):
    """--include-simulated: the sample's simulated rocm result is a `rocm (simulated)` column of the pivot,
    with the measured columns unchanged (the report's note promises they are shown separately)."""
    measured = reports.build_report(conn, "performance", ReportFilters())
    both = reports.build_report(conn, "performance", ReportFilters(include_simulated=True))
    pivot = both.sections[1].frame
    assert "rocm" not in pivot.columns and "rocm (simulated)" in pivot.columns
    row = pivot[(pivot["model"] == "bert-base-uncased") & (pivot["batch_size"] == 1)].iloc[0]
    assert row["rocm (simulated)"] == pytest.approx(conn.execute(
        "SELECT throughput_items_per_second FROM performance_results WHERE is_simulated").fetchone()[0])
    plain = measured.sections[1].frame
    assert plain.columns.tolist() == [c for c in pivot.columns if not c.endswith("(simulated)")]


def test_fastest_hardware_names_a_simulated_winner_as_simulated(tmp_path):
    from benchmark_db_models import BenchmarkDB, PerformanceResults

    path = str(tmp_path / "sim.duckdb")
    with BenchmarkDB(path) as db, db.transaction():
        bert = db.get_or_add_model("bert-base-uncased", model_family="bert")
        records = []
        for number, (hw, throughput, simulated) in enumerate(
                (("cpu", 100.0, False), ("cuda", 500.0, False), ("cuda", 5000.0, True)), start=1):
            records.append(PerformanceResults(result_id=number,  # one configuration: its natural ids would clash
                model_id=bert, hardware_id=db.get_or_add_hardware(hw), model_name="bert-base-uncased",
                hardware_type=hw, test_case="inference", batch_size=1, precision="fp32",
                throughput_items_per_second=throughput, is_simulated=simulated,
                created_at=dt.datetime(2025, 3, 1)))
        db.insert_many(records)
    c = connect(path, read_only=True)
    try:
        measured = reports.best_hardware_table(c, ReportFilters()).iloc[0]
        both = reports.best_hardware_table(c, ReportFilters(include_simulated=True)).iloc[0]
    finally:
        c.close()
    assert measured["fastest_hardware"] == "cuda" and measured["throughput_items_per_s_mean"] == 500.0
    assert both["fastest_hardware"] == "cuda (simulated)" and both["throughput_items_per_s_mean"] == 5000.0
    assert both["hardware_compared"] == 3  # not cuda at (500 + 5000) / 2


@pytest.mark.parametrize("kind, filters, named", [
    ("hardware", ReportFilters.make(hardware="tpu"), "hardware matching the other filters: cpu, cuda, mps, openvino"),
    ("hardware", ReportFilters.make(model="nonexistent"), "bert-base-uncased"),
    ("compatibility", ReportFilters.make(model="nonexistent"), "openai/whisper-tiny"),
    ("compatibility", ReportFilters.make(model_family="nonexistent"), "model families: bert, clip, t5"),
    ("integration", ReportFilters.make(model="nonexistent"), "models matching the other filters: none"),
    ("integration", ReportFilters.make(hardware="tpu"), "hardware matching the other filters: cpu, cuda, webgpu"),
    ("summary", ReportFilters.make(model="nonexistent"), "bert-base-uncased"),
    ("summary", ReportFilters.make(since="2030-01-01"), "span 2025-03-01 09:00:00 to 2025-03-03"),
    ("all", ReportFilters.make(model="nonexistent"), "bert-base-uncased"),
])
def test_every_filtered_report_that_matches_nothing_is_db004(conn, kind, filters, named):
    """Like the performance report: a filter that matches nothing is DB004 naming what exists, not an empty or
    all-zero report."""
    with pytest.raises(QueryError) as info:
        reports.build_report(conn, kind, filters)
    text = str(info.value)
    assert text.startswith("error DB004: no ") and filters.describe() in text and named in text


def test_integration_no_data_lists_what_the_tests_ran_on(conn):
    """What exists is read from the integration tests, not from the performance results (whose hardware
    includes mps and openvino, where the sample ran no integration test; its tests name no model)."""
    text = str(reports.no_data_error(conn, ReportFilters.make(hardware="tpu"), "integration test results",
                                     source="integration"))
    assert text.endswith("hardware matching the other filters: cpu, cuda, webgpu")
    text = str(reports.no_data_error(conn, ReportFilters.make(model="bert-base-uncased"), "integration test results",
                                     source="integration"))
    assert "models matching the other filters: none" in text


@pytest.mark.parametrize("kind", ["performance", "hardware", "compatibility", "integration", "summary", "all"])
def test_empty_database_reports_without_filters_stay_reports(db_path, kind):
    """Without filters an empty database gives an empty report (exit 0); with one it is DB004 saying the
    database holds nothing."""
    with connect(db_path, read_only=True) as c:
        report = reports.build_report(c, kind, ReportFilters())
        assert report.sections
        with pytest.raises(QueryError, match="the database holds no"):
            reports.build_report(c, kind, ReportFilters.make(model="bert-base-uncased"))


def test_filtered_reports_that_match_something_still_build(conn):
    for kind in ("hardware", "compatibility", "integration", "summary", "all"):
        report = reports.build_report(conn, kind, ReportFilters.make(hardware="cpu"))
        assert not report.main.empty

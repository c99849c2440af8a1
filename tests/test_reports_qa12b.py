"""QA pass 12b of the reports, query and analytics tools: each test failed before its fix.

1. the interactive analytics pages fit their log axes to the points drawn (no y axis from 0.001 to 1000 for
   speed-ups between 0.2 and 12 because of undrawable points or zero CI limits) and tick them readably;
2. --predict names only the features the user has to give (modality follows from the model family);
3. DB004 with several filters names what the database holds for the filters that match nothing;
4. --sql renders BLOB and INTERVAL readably in every text format;
5. "fastest hardware" says when only one hardware type was measured, and names every hardware of a tie.
"""
from __future__ import annotations

import csv
import io
import json
import math

import numpy as np
import pandas as pd
import pytest

import benchmark_db_analytics as analytics
import benchmark_db_query as query
from benchmark_db import reports
from benchmark_db.connection import connect
from benchmark_db.output import render
from benchmark_db.reports import ReportFilters


def _run(module, capsys, *argv):
    code = module.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# ------------------------------------------------------------------- 1. interactive log axes fit the data
def _comparison_frame() -> pd.DataFrame:
    """bert on cpu and cuda at batch 1, 4 and 8 (speed-ups 0.2 to 12, raw samples), plus results without a
    batch size whose speed-ups (0.0005 and 50,000) cannot be drawn on a log batch axis."""
    rng = np.random.default_rng(1)
    rows = []

    def add(model, hw, batch, latency, n=20):
        samples = latency * (1 + 0.02 * rng.standard_normal(n))
        rows.append({"model": model, "model_family": "bert", "test_case": None, "batch_size": batch,
                     "sequence_length": 128, "precision": "fp32",
                     "hardware": hw, "is_emulated": False, "is_simulated": False, "samples": samples, "latency_ms": float(latency),
                     "throughput": (batch or 1) * 1000.0 / latency})

    for batch, cuda_latency in ((1, 100 / 12), (4, 100 / 3), (8, 500.0)):  # 12x, 3x, 0.2x of the cpu's 100 ms
        add("bert-base-uncased", "cpu", batch, 100.0)
        add("bert-base-uncased", "cuda", batch, cuda_latency)
    add("hf_embed", "cpu", None, 1.0, n=3)
    add("hf_embed", "cuda", None, 2000.0, n=3)  # 0.0005x, with a bootstrap CI of few samples
    add("hf_other", "cpu", None, 1000.0)
    add("hf_other", "cuda", None, 0.02)  # 50,000x
    return pd.DataFrame(rows)


@pytest.fixture
def captured(monkeypatch):
    figures = {}
    original = analytics._write_interactive

    def keep(name, title, figs, opts, files, note=""):
        figures[name] = (figs, note)
        original(name, title, figs, opts, files, note)

    monkeypatch.setattr(analytics, "_write_interactive", keep)
    return figures


@pytest.mark.slow  # over 0.35 s here: outside make test-fast
def test_hardware_comparison_page_fits_its_log_axes_to_the_points_drawn(tmp_path, captured):
    """Before: autorange took in the y values of points without a batch size (not drawn on the log x axis)
    and CI limits near zero, so the y axis ran from about 0.001 to 100,000 for speed-ups of 0.2 to 12, and
    the x axis printed stray minor digits ("9 ... 2 3 ... 9") between the batch sizes."""
    opts = analytics.Options(output_dir=tmp_path, interactive=True)
    analytics.hardware_comparison(_comparison_frame(), opts)
    (fig,), note = captured["hardware-comparison"]
    y, x = fig.layout.yaxis, fig.layout.xaxis
    assert y.type == "log" and y.range is not None
    low, high = 10 ** y.range[0], 10 ** y.range[1]
    assert 0.1 < low < 0.2 and 12 < high < 25  # the data (with its CIs), not 0.0005 or 50,000
    assert list(x.tickvals) == [1, 4, 8] and list(x.ticktext) == ["1", "4", "8"]  # the batch sizes measured
    assert 0.5 < 10 ** x.range[0] < 1 and 8 < 10 ** x.range[1] < 12
    assert list(y.ticktext) == ["0.2", "0.5", "1", "2", "5", "10", "20"][:len(y.ticktext)]
    assert all(low <= v <= high for v in y.tickvals)
    assert "4 points without a batch size cannot be drawn" in note  # said, not silently dropped
    page = (tmp_path / "hardware-comparison.html").read_text()
    assert "cannot be drawn" in page


def test_log_ticks_read_cleanly():
    assert analytics._log_ticks(0.2, 12) == [0.2, 0.5, 1, 2, 5, 10]
    assert analytics._log_ticks(1.2, 2.5) == [1.5, 2]  # a narrow range gets in-between values
    many = analytics._log_ticks(1e-3, 1e9)
    assert len(many) <= 10 and all(math.log10(v).is_integer() for v in many)
    assert [analytics._tick_text(v) for v in (0.2, 1.0, 1500.0, 20000.0)] == ["0.2", "1", "1500", "20,000"]


@pytest.mark.parametrize("analysis", ["model-comparison", "batch-scaling", "correlation-analysis",
                                      "performance-prediction", "performance-trends"])
@pytest.mark.slow
def test_every_interactive_log_axis_gets_a_range_and_readable_ticks(sample_db_path, tmp_path, captured,
                                                                    analysis):
    code = analytics.main(["--db", sample_db_path, "--analysis", analysis, "--interactive", "--output-dir",
                           str(tmp_path), "-q"])
    assert code == 0
    figures, _ = captured[analysis]
    axes = [a for fig in figures for a in (fig.layout.xaxis, fig.layout.yaxis) if a.type == "log"]
    assert axes
    for axis in axes:
        assert axis.range is not None and axis.tickvals
        mantissas = {round(v / 10 ** math.floor(math.log10(v)), 6) for v in axis.tickvals}
        assert mantissas <= {1, 1.5, 2, 3, 4, 5, 7} or set(axis.tickvals) <= {1, 2, 4, 8, 16, 32}


# -------------------------------------------------------------------- 2. --predict names what is required
@pytest.mark.slow
def test_predict_missing_features_does_not_require_what_follows_from_the_family(sample_db_path, tmp_path,
                                                                                capsys):
    """Before: `--predict lacks precision; give every feature: model_family, hardware, batch_size, precision,
    parameters_million, modality`, though the README's example leaves modality and parameters out (they
    follow from the model family)."""
    code, _, err = _run(analytics, capsys, "--db", sample_db_path, "--analysis", "performance-prediction",
                        "--predict", "model_family=bert,hardware_type=cuda,batch_size=16",
                        "--output-dir", str(tmp_path))
    assert code == 2
    line = next(line for line in err.splitlines() if "--predict lacks" in line)
    assert "lacks precision;" in line
    given = line.split("; give ", 1)[1]
    assert given.startswith("model_family, hardware, batch_size, precision;")
    assert "parameters_million and modality follow from model_family" in given
    # the README's example itself works
    code, out, _ = _run(analytics, capsys, "--db", sample_db_path, "--analysis", "performance-prediction",
                        "--predict", "model_family=bert,hardware_type=cuda,batch_size=16,precision=fp16",
                        "--output-dir", str(tmp_path))
    assert code == 0 and "items/s (90% interval" in out


@pytest.mark.slow
def test_predict_still_names_an_attribute_the_family_cannot_fill(sample_db_path, tmp_path, capsys):
    code, _, err = _run(analytics, capsys, "--db", sample_db_path, "--analysis", "performance-prediction",
                        "--predict", "model_family=nope,hardware_type=cuda,batch_size=16,precision=fp16",
                        "--output-dir", str(tmp_path))
    assert code == 2 and "lacks parameters_million, modality" in err and "model family nope" in err


# -------------------------------------------------------------------- 3. DB004 with several filters
@pytest.fixture
def sample_conn(sample_db_path):
    conn = connect(sample_db_path, read_only=True)
    yield conn
    conn.close()


def test_db004_names_what_the_database_holds_for_each_filter_that_matches_nothing(sample_conn):
    """Before: `precisions: none; model families: none` (each listed under the other, which matched
    nothing either)."""
    text = str(reports.no_data_error(sample_conn, ReportFilters.make(precision="int4", model_family="foo")))
    assert ": none" not in text
    assert "precisions in the database: fp16, fp32" in text
    assert "model families in the database: bert, clip" in text
    # a filter that matches on its own is left out
    text = str(reports.no_data_error(sample_conn, ReportFilters.make(precision="int4", model_family="bert")))
    assert "precisions: fp16, fp32" in text and "model famil" not in text.split("; ", 1)[1]
    text = str(reports.no_data_error(sample_conn, ReportFilters.make(precision="int4", model_family="foo",
                                                                     hardware="cpu")))
    assert "hardware" not in text.split("; ", 1)[1] and ": none" not in text  # cpu matches: left out


def test_db004_of_filters_that_only_fail_together_says_so(sample_conn):
    text = str(reports.no_data_error(sample_conn, ReportFilters.make(precision="fp16", hardware="cpu")))
    assert "each filter matches on its own, but not all of them together" in text
    assert "hardware matching the other filters: cuda" in text and "precisions: fp32" in text


def test_db004_of_an_empty_database_says_it_holds_nothing(db_path):
    conn = connect(db_path, read_only=True)
    try:
        text = str(reports.no_data_error(conn, ReportFilters.make(precision="int4", model_family="foo")))
    finally:
        conn.close()
    assert "the database holds no measured performance results" in text and ": none" not in text


def test_db004_on_the_command_line(sample_db_path, capsys):
    code, _, err = _run(query, capsys, "--db", sample_db_path, "--report", "performance", "--precision", "int4",
                        "--model-family", "foo", "--format", "csv")
    assert code == 2 and "error DB004" in err and ": none" not in err and "precisions in the database" in err


# -------------------------------------------------------------------- 4. BLOB and INTERVAL in --sql output
SQL = (r"SELECT 'x'::BLOB AS b, '\xAA\x00'::BLOB AS b2, INTERVAL 1 DAY AS i, "
       r"INTERVAL '1 year 2 months 3 days 04:05:06.5' AS i2, NULL::BLOB AS bn, NULL::INTERVAL AS inn")


@pytest.mark.parametrize("fmt", ["html", "markdown", "table", "csv", "json"])
def test_sql_renders_blob_and_interval_readably(sample_db_path, capsys, fmt):
    """Before: `bytearray(b'x')` and `P1DT0H0M0S` (and the months of an interval were lost as 30 days)."""
    code, out, _ = _run(query, capsys, "--db", sample_db_path, "--sql", SQL, "--format", fmt)
    assert code == 0
    assert "bytearray" not in out and "P1DT" not in out and "P423D" not in out
    assert "0x78 (1 byte)" in out and "0xaa00 (2 bytes)" in out
    assert "1 day" in out and "1 year 2 months 3 days 04:05:06.5" in out
    if fmt == "csv":
        row = list(csv.reader(io.StringIO(out)))[1]
        assert row == ["0x78 (1 byte)", "0xaa00 (2 bytes)", "1 day", "1 year 2 months 3 days 04:05:06.5", "", ""]
    if fmt == "json":
        assert json.loads(out)[0]["bn"] is None and json.loads(out)[0]["inn"] is None


def test_blob_and_timedelta_text():
    import datetime as dt

    from benchmark_db.output import blob_text, interval_text

    assert blob_text(bytearray(b"x")) == "0x78 (1 byte)"
    assert blob_text(b"") == "<0 bytes>"
    assert blob_text(bytes(range(40))) == "0x000102030405060708090a0b0c0d0e0f... (40 bytes)"
    assert interval_text(dt.timedelta(days=1)) == "1 day"
    assert interval_text(dt.timedelta(days=3, hours=4, minutes=5, seconds=6.5)) == "3 days 04:05:06.5"
    assert interval_text(-dt.timedelta(hours=1)) == "-01:00:00"
    frame = pd.DataFrame({"d": pd.to_timedelta(["1 day", "90 min", None]), "b": [b"x", memoryview(b"yz"), None]})
    assert render(frame, "csv").splitlines()[1:] == ["1 day,0x78 (1 byte)", "01:30:00,0x797a (2 bytes)", ","]


# -------------------------------------------------------------------- 5. fastest hardware: one, or a tie
@pytest.mark.slow  # over 0.35 s here: outside make test-fast
def test_fastest_hardware_says_when_only_one_was_measured_and_lists_ties(tmp_path):
    """Before: a model measured only on the CPU had the CPU as its "fastest hardware", and of two equally fast
    platforms one was named, silently."""
    from benchmark_db_api import BenchmarkDBAPI

    path = str(tmp_path / "fastest.duckdb")
    api = BenchmarkDBAPI(db_path=path)
    for model, measured in (("only-cpu", {"cpu": 10.0}), ("tie", {"cpu": 10.0, "webgpu": 75.0, "rocm": 75.0}),
                            ("clear", {"cpu": 10.0, "cuda": 90.0})):
        for hardware, throughput in measured.items():
            api.store_performance_result(model_name=model, hardware_type=hardware, batch_size=1,
                                         throughput=throughput, latency_avg=1000.0 / throughput)
    api.close()
    conn = connect(path, read_only=True)
    try:
        table = reports.best_hardware_table(conn, ReportFilters()).set_index("model")
        report = reports.build_report(conn, "hardware", ReportFilters())
    finally:
        conn.close()
    assert table.loc["only-cpu", "fastest_hardware"] == "cpu"
    assert table.loc["only-cpu", "note"] == "only one hardware type measured"
    assert table.loc["tie", "fastest_hardware"] == "rocm"  # the first name, as before (deterministic)
    assert table.loc["tie", "note"] == "tie: rocm, webgpu"
    assert table.loc["clear", "fastest_hardware"] == "cuda" and pd.isna(table.loc["clear", "note"])
    fastest = next(s for s in report.sections if s.key == "fastest")
    assert "note" in fastest.frame.columns and "tie" in (fastest.note or "")

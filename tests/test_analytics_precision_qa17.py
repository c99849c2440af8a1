"""QA pass 17, after 7a3be6a: the analytics keep precisions apart as they keep test cases and sequence lengths
apart (hardware and model comparison), the anomaly summary names the configuration of a finding wherever the
examined series differ in it, the prediction's "already measured" names each configuration's figure rather
than a median over them, and a NULL test case stays NULL (no longer the string "unknown").
"""
from __future__ import annotations

import datetime as dt
import math

import pandas as pd
import pytest

import benchmark_db_analytics as analytics
from tests.test_analytics_configuration_qa17 import _frame, _options

START = dt.datetime(2025, 3, 1, 8, 0, 0)


def _build(path, rows) -> str:
    """One run per distinct `day`; each row a dict of model, hardware, precision, test_case, seq, batch, ms (and
    optionally day, samples)."""
    from benchmark_db_models import BenchmarkDB, PerformanceResults, TestRuns

    with BenchmarkDB(str(path)) as db, db.transaction():
        runs, records = {}, []
        for r in rows:
            day = r.get("day", 0)
            if day not in runs:
                runs[day] = db.insert_test_runs(TestRuns(test_name=f"run {day}", test_type="performance",
                                                         started_at=START + dt.timedelta(days=day), success=True))
            model = db.get_or_add_model(r["model"], model_family=r["model"].split("-")[0])
            hardware = db.get_or_add_hardware(r["hardware"])
            batch = r.get("batch", 1)
            records.append(PerformanceResults(
                run_id=runs[day], model_id=model, hardware_id=hardware, model_name=r["model"],
                hardware_type=r["hardware"], test_case=r.get("test_case", "forward"), batch_size=batch,
                sequence_length=r.get("seq", 128), precision=r.get("precision", "fp32"), average_latency_ms=r["ms"],
                throughput_items_per_second=batch * 1000.0 / r["ms"], latency_samples_ms=r.get("samples"),
                created_at=START + dt.timedelta(days=day)))
        db.insert_many(records)
    return str(path)


def _ticks(monkeypatch, legend: bool = False) -> list[list[str]]:
    """The x tick labels (without the spaces and line breaks of their wrapping), or with `legend` the line
    labels, of every figure saved."""
    seen: list[list[str]] = []

    def save(fig, opts, stem, files):
        seen.append([label for ax in fig.axes for label in ax.get_legend_handles_labels()[1]] if legend
                    else ["".join(t.get_text().split()) for ax in fig.axes for t in ax.get_xticklabels()])
        analytics._plt().close(fig)

    monkeypatch.setattr(analytics, "_save_fig", save)
    return seen


# the QA repro: cpu fp16 2 ms and fp32 10 ms, cuda fp32 4 ms (one result each)
PRECISIONS = [dict(model="bert-base-uncased", hardware="cpu", precision="fp16", ms=2.0),
              dict(model="bert-base-uncased", hardware="cpu", precision="fp32", ms=10.0),
              dict(model="bert-base-uncased", hardware="cuda", precision="fp32", ms=4.0)]


@pytest.mark.slow  # a database, bootstraps and a chart: over a third of a second
def test_hardware_comparison_compares_each_precision_apart(tmp_path, monkeypatch):
    ticks = _ticks(monkeypatch)
    df = _frame(_build(tmp_path / "p.duckdb", PRECISIONS + [
        dict(model="bert-base-uncased", hardware="cuda", precision="fp16", ms=1.0)]))
    result = analytics.hardware_comparison(df, _options(tmp_path))
    table = pd.read_csv(tmp_path / "out" / "hardware-comparison.csv")
    speedup = {(r.precision, r.hardware): r.speedup_vs_reference for r in table.itertuples()}
    # each device at each precision against the CPU at fp32 (10 ms): cuda fp32 4 ms is 2.5x, not 1.5x against a
    # pooled 6 ms; the CPU's own fp16 and CUDA's fp16 are compared too, each row saying its precision
    assert speedup == {("fp32", "cpu"): 1.0, ("fp32", "cuda"): 2.5, ("fp16", "cpu"): 5.0, ("fp16", "cuda"): 10.0}
    assert set(table["rows"]) == {1} and set(table["reference_hardware"]) == {"cpu fp32"}
    assert "| sequence_length | precision | hardware |" in result.summary
    assert ticks[0] == ["bert-base-uncased"]  # one bar group: the precisions are bars of their own within it


@pytest.mark.slow  # a database, bootstraps and a chart: over a third of a second
def test_hardware_comparison_of_one_precision_is_labelled_as_before(tmp_path, monkeypatch):
    ticks = _ticks(monkeypatch)
    df = _frame(_build(tmp_path / "p.duckdb", PRECISIONS[1:]))
    result = analytics.hardware_comparison(df, _options(tmp_path))
    assert not any("fp32" in t for t in ticks[0])
    assert "precision" not in result.summary
    table = pd.read_csv(tmp_path / "out" / "hardware-comparison.csv")
    assert list(table["precision"]) == ["fp32", "fp32"]


@pytest.mark.slow  # a database, bootstraps and a chart: over a third of a second
def test_model_comparison_ranks_models_within_a_precision(tmp_path, monkeypatch):
    ticks = _ticks(monkeypatch)
    df = _frame(_build(tmp_path / "m.duckdb", PRECISIONS + [
        dict(model="t5-small", hardware="cpu", precision="fp32", ms=5.0)]))
    result = analytics.model_comparison(df, _options(tmp_path))
    table = pd.read_csv(tmp_path / "out" / "model-comparison.csv")
    cpu = {(r.model, r.precision): r.relative_to_fastest for r in table[table.hardware == "cpu"].itertuples()}
    # bert fp32 10 ms is 2x t5 fp32 5 ms (pooled with its fp16 2 ms it read 6 ms, 1.2x)
    assert cpu == {("bert-base-uncased", "fp32"): 2.0, ("t5-small", "fp32"): 1.0, ("bert-base-uncased", "fp16"): 1.0}
    assert any("fp16" in t for t in ticks[0])
    assert "| hardware | precision | model |" in result.summary


@pytest.mark.slow  # 90 results, change point detection and a chart: over a third of a second
def test_anomaly_summary_and_legend_name_the_configuration_of_a_finding(tmp_path, monkeypatch):
    legends = _ticks(monkeypatch, legend=True)
    rows = []
    for day in range(30):
        for case, prec, ms in (("forward", "fp32", 10.0 if day < 15 else 15.0), ("forward", "fp16", 6.0),
                               ("load_model", "fp32", 1000.0)):
            rows.append(dict(model="bert-base-uncased", hardware="cpu", test_case=case, precision=prec, seq=32,
                             ms=ms * (1 + 0.01 * ((day * 7) % 5 - 2)), day=day))
    result = analytics.anomaly_detection(_frame(_build(tmp_path / "a.duckdb", rows)), _options(tmp_path))
    assert "3 series examined" in result.summary and "1 change point(s)" in result.summary
    header = next(line for line in result.summary.splitlines() if line.startswith("| kind"))
    # the one finding is in one of three series: its test case and precision are named, the sequence length
    # (32 in all three) is not
    assert "| test_case |" in header and "| precision |" in header and "sequence_length" not in header
    finding = next(line for line in result.summary.splitlines() if line.startswith("| change point"))
    assert "| forward |" in finding and "| fp32 |" in finding
    assert legends[0] == ["bert-base-uncased · forward | cpu | bs 1 | fp32"]


class _Fixed:
    def predict(self, frame):
        return [math.log(30.0)]


def _fit(configs) -> dict:
    conf = pd.DataFrame(configs)
    return {"model": _Fixed(), "columns": ["model_family", "hardware", "batch_size", "precision"], "configs": conf,
            "residuals": [0.1, -0.1]}


def _config(seq, throughput, case="forward", model="bert-base-uncased", batch=1):
    return dict(model=model, model_family="bert", hardware="cpu", is_emulated=False, batch_size=batch,
                precision="fp32", sequence_length=seq, test_case=case, throughput=throughput)


def test_prediction_already_measured_names_each_configuration():
    fit = _fit([_config(32, 100.0), _config(512, 10.0), _config(32, 1000.0, batch=8)])
    answer = analytics.predict_one(fit, {"model_family": "bert", "hardware_type": "cpu", "batch_size": 1,
                                         "precision": "fp32"})
    # 100 at seq 32 and 10 at seq 512: no "55 items/s", which was never measured
    assert answer["already_measured"] and answer["measured_throughput"] is None
    assert answer["measured"] == [{"sequence_length": 32, "throughput": 100.0},
                                  {"sequence_length": 512, "throughput": 10.0}]
    assert analytics._measured_text(answer["measured"]) == "100 items/s at seq 32, 10 items/s at seq 512"


def test_prediction_already_measured_is_one_figure_for_one_configuration():
    fit = _fit([_config(32, 100.0), _config(32, 1000.0, batch=8)])
    answer = analytics.predict_one(fit, {"model_family": "bert", "hardware_type": "cpu", "batch_size": 1,
                                         "precision": "fp32"})
    assert answer["measured_throughput"] == 100.0
    assert analytics._measured_text(answer["measured"]) == "100 items/s"


def test_prediction_already_measured_names_test_case_and_model_where_they_differ():
    fit = _fit([_config(32, 100.0), _config(32, 3.0, case="load_model"), _config(32, 70.0, model="bert-large")])
    answer = analytics.predict_one(fit, {"model_family": "bert", "hardware_type": "cpu", "batch_size": 1,
                                         "precision": "fp32"})
    assert analytics._measured_text(answer["measured"]) == (
        "100 items/s at bert-base-uncased · forward, 3 items/s at bert-base-uncased · load_model, "
        "70 items/s at bert-large · forward")


@pytest.mark.slow  # a database, bootstraps and a chart: over a third of a second
def test_a_null_test_case_stays_null_and_apart_from_one_named_unknown(tmp_path):
    rows = [dict(model="bert-base-uncased", hardware=hw, test_case=case, ms=ms * f)
            for hw, f in (("cpu", 1.0), ("cuda", 0.25)) for case, ms in ((None, 10.0), ("unknown", 100.0))]
    df = _frame(_build(tmp_path / "n.duckdb", rows))
    assert df["test_case"].isna().sum() == 2 and (df["test_case"] == "unknown").sum() == 2
    analytics.hardware_comparison(df, _options(tmp_path))
    table = pd.read_csv(tmp_path / "out" / "hardware-comparison.csv", keep_default_na=False)
    # two comparisons, each of its own work: 10 ms and 100 ms are not pooled into one
    assert sorted(zip(table["test_case"], table["hardware"], table["median_latency_ms"])) == [
        ("", "cpu", 10.0), ("", "cuda", 2.5), ("unknown", "cpu", 100.0), ("unknown", "cuda", 25.0)]

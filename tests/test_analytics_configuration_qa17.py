"""The analytics keep results of different work apart, as the reports do since 764d962: hardware comparison,
model comparison, batch scaling, the prediction's configurations and the charts' labels never pool an
optimum-benchmark file's `load_model`, `first_forward` and `forward` rows, or sequence lengths 32 and 512, into
one median, and model comparison ranks models only against models doing the same work.
"""
from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

import benchmark_db_analytics as analytics
from benchmark_db.connection import connect

START = dt.datetime(2025, 3, 1, 8, 0, 0)
# (test case, sequence length, latency ms at batch 1 on the cpu)
WORK = (("load_model", None, 335.0), ("first_forward", None, 152.0), ("forward", 32, 2.0),
        ("forward", 512, 30.0))
HARDWARE = (("cpu", 1.0), ("cuda", 0.25))


def _build(path, *, models=(("bert-base-uncased", 1.0),), batches=(1,), work=WORK, days=3) -> str:
    """`days` runs of every model x hardware x batch x work; latency = work's x model's x hardware's factor x
    (1 + (batch - 1) / 2), so throughput rises with the batch size and saturates."""
    from benchmark_db_models import BenchmarkDB, PerformanceResults, TestRuns

    with BenchmarkDB(str(path)) as db, db.transaction():
        records = []
        for day in range(days):
            run = db.insert_test_runs(TestRuns(test_name=f"run {day}", test_type="performance",
                                               started_at=START + dt.timedelta(days=day), success=True))
            for name, model_factor in models:
                model = db.get_or_add_model(name, model_family=name.split("-")[0])
                for hardware, factor in HARDWARE:
                    hardware_id = db.get_or_add_hardware(hardware)
                    for batch in batches:
                        for test_case, length, latency in work:
                            ms = latency * model_factor * factor * (1 + (batch - 1) / 2)
                            records.append(PerformanceResults(
                                run_id=run, model_id=model, hardware_id=hardware_id, model_name=name,
                                hardware_type=hardware, test_case=test_case, batch_size=batch,
                                sequence_length=length, precision="fp32", average_latency_ms=ms,
                                throughput_items_per_second=batch * 1000.0 / ms,
                                latency_samples_ms=[ms * 0.9, ms, ms * 1.1],
                                created_at=START + dt.timedelta(days=day)))
        db.insert_many(records)
    return str(path)


def _frame(path):
    with connect(path, read_only=True) as conn:
        return analytics.load_performance(conn)


def _options(tmp_path) -> analytics.Options:
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    return analytics.Options(output_dir=out)


def _legends(monkeypatch) -> list[dict[str, list[str]]]:
    """The line labels (`legend`) and the x tick labels (`ticks`, without the spaces and line breaks of their
    wrapping: `bert · forward · seq 512` is `bert` over `forward · seq 512`, so `bertforward·seq512`) of every
    figure the analyses save, figure by figure."""
    seen: list[dict[str, list[str]]] = []

    def save(fig, opts, stem, files):
        seen.append({"legend": [label for ax in fig.axes for label in ax.get_legend_handles_labels()[1]],
                     "ticks": ["".join(t.get_text().split()) for ax in fig.axes for t in ax.get_xticklabels()]})
        analytics._plt().close(fig)

    monkeypatch.setattr(analytics, "_save_fig", save)
    return seen


def _key(case, seq):
    return case, None if pd.isna(seq) else int(seq)


@pytest.mark.slow  # a database, bootstraps and a chart: over a third of a second
def test_hardware_comparison_compares_each_test_case_and_sequence_length_apart(tmp_path, monkeypatch):
    df = _frame(_build(tmp_path / "hw.duckdb"))
    figures = _legends(monkeypatch)
    opts = _options(tmp_path)
    analytics.hardware_comparison(df, opts)
    table = pd.read_csv(opts.output_dir / "hardware-comparison.csv")
    assert len(table) == len(WORK) * len(HARDWARE)  # one row per configuration x hardware
    cpu = {_key(c, s): ms for c, s, ms in
           table.loc[table["hardware"] == "cpu", ["test_case", "sequence_length", "median_latency_ms"]].itertuples(
               index=False)}
    # load_model (335 ms) and first_forward (152 ms), both without a sequence length, were one 243.5 ms median
    assert cpu == {(case, seq): pytest.approx(ms) for case, seq, ms in WORK}
    assert table["speedup_vs_reference"].round(6).isin([1.0, 4.0]).all()
    # the chart has a bar group per configuration, named with it
    (chart,) = figures
    assert {"bert-base-uncasedload_model", "bert-base-uncasedforward·seq512"} <= set(chart["ticks"])


@pytest.mark.slow  # two databases, bootstraps and charts: over a third of a second
def test_model_comparison_ranks_models_only_doing_the_same_work(tmp_path, monkeypatch):
    figures = _legends(monkeypatch)
    models = (("bert-base-uncased", 1.0), ("gpt2-small", 2.0))
    df = _frame(_build(tmp_path / "models.duckdb", models=models))
    opts = _options(tmp_path)
    analytics.model_comparison(df, opts)
    table = pd.read_csv(opts.output_dir / "model-comparison.csv")
    assert len(table) == len(models) * len(HARDWARE) * len(WORK)
    bert = table[(table["model"] == "bert-base-uncased") & (table["hardware"] == "cpu")]
    assert {_key(c, s): ms for c, s, ms in bert[["test_case", "sequence_length", "median_latency_ms"]].itertuples(
        index=False)} == {(case, seq): pytest.approx(ms) for case, seq, ms in WORK}
    # gpt2 does every piece of work at twice bert's latency: 2x the fastest, and bert is the fastest, in each
    assert table.groupby("model")["relative_to_fastest"].agg(["min", "max"]).round(6).to_dict("index") == {
        "bert-base-uncased": {"min": 1.0, "max": 1.0}, "gpt2-small": {"min": 2.0, "max": 2.0}}
    (chart,) = figures
    assert "gpt2-smallforward·seq32" in chart["ticks"]

    # one model measured at sequence length 32 only, another at 512 only: nothing to compare, not a ranking
    lone = _frame(_build(tmp_path / "apart.duckdb", models=models[:1], work=(("forward", 32, 2.0),))) \
        .pipe(lambda a: pd.concat([a, _frame(_build(tmp_path / "apart2.duckdb", models=models[1:],
                                                     work=(("forward", 512, 30.0),)))], ignore_index=True))
    with pytest.raises(analytics.AnalysisUnavailable, match="sequence length"):
        analytics.model_comparison(lone, _options(tmp_path))


@pytest.mark.slow  # a database and a two-panel chart: over a third of a second
def test_batch_scaling_draws_one_curve_per_test_case_and_sequence_length(tmp_path, monkeypatch):
    figures = _legends(monkeypatch)
    df = _frame(_build(tmp_path / "batches.duckdb", batches=(1, 2, 4, 8)))
    opts = _options(tmp_path)
    analytics.batch_scaling(df, opts)
    table = pd.read_csv(opts.output_dir / "batch-scaling.csv")
    assert len(table) == len(WORK) * len(HARDWARE)
    cpu = table[table["hardware"] == "cpu"]
    # throughput at batch 8 = 8 * 1000 / (latency * 4.5): the pooled medians mixed 335 ms with 2 ms
    peaks = {_key(c, s): p for c, s, p in cpu[["test_case", "sequence_length", "peak_throughput"]].itertuples(
        index=False)}
    assert peaks == {(case, seq): pytest.approx(8000.0 / (ms * 4.5)) for case, seq, ms in WORK}
    (chart,) = figures
    curves = set(chart["legend"])
    assert "bert-base-uncased · first_forward | cpu | fp32" in curves
    assert len(curves) == len(WORK) * len(HARDWARE)


@pytest.mark.slow  # a database and a trend fit per series: over a third of a second
def test_trend_legend_names_each_configuration(tmp_path, monkeypatch):
    figures = _legends(monkeypatch)
    df = _frame(_build(tmp_path / "trend.duckdb", days=3))
    analytics.performance_trends(df, _options(tmp_path))
    labels = figures[0]["legend"]
    # the series were already apart, but four of them read `bert-base-uncased | cpu | bs 1 | fp32`
    assert len(labels) == len(set(labels)) == len(WORK) * len(HARDWARE)
    assert "bert-base-uncased · forward · seq 32 | cuda | bs 1 | fp32" in labels


def test_prediction_configurations_keep_test_cases_apart(tmp_path):
    df = _frame(_build(tmp_path / "features.duckdb", days=1))
    conf, _, _ = analytics._feature_frame(df, ["hardware_type", "batch_size", "precision"])
    # load_model and first_forward have no sequence length: their throughputs were one median
    assert len(conf) == len(WORK) * len(HARDWARE)
    cpu = conf[conf["hardware"] == "cpu"].set_index("test_case")
    assert cpu.loc["load_model", "throughput"] == pytest.approx(1000.0 / 335.0)

"""QA 19: benchmark_db_analytics with --include-simulated keeps simulated results apart from the measured ones in
every analysis (their hardware reads `<hardware> (simulated)` and every table has `is_simulated`), as it keeps
emulated ones; and a missing precision, model family or modality stays missing (never the text "unknown", which
stays a value of its own)."""
from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest

import benchmark_db_analytics as analytics
from benchmark_db.connection import connect
from benchmark_db_models import BenchmarkDB, PerformanceResults, TestRuns

T0 = dt.datetime(2026, 2, 1, 8, 0)
SIM = "cpu (simulated)"


def _write(path, rows) -> str:
    """rows: dicts with model, hw, latency, day and optionally family, modality, batch, precision, simulated."""
    with BenchmarkDB(str(path)) as db, db.transaction():
        records, runs = [], {}
        for r in rows:
            when = T0 + dt.timedelta(days=r["day"])
            # simulated results in runs of their own: a result's id is its run and configuration, so one in the
            # same run would replace the measured one
            run = (when, r.get("simulated", False))
            if run not in runs:
                runs[run] = db.insert_test_runs(TestRuns(test_name=f"run {r['day']} {run[1]}", started_at=when))
            mid = db.get_or_add_model(r["model"], model_family=r.get("family", "bert"), modality=r.get("modality"),
                                      parameters_million=r.get("params", 100.0))
            batch = r.get("batch", 1)
            records.append(PerformanceResults(
                run_id=runs[run], model_id=mid, hardware_id=db.get_or_add_hardware(r["hw"]), model_name=r["model"],
                hardware_type=r["hw"], test_case="inference", batch_size=batch, sequence_length=128,
                precision=r.get("precision", "fp32"), average_latency_ms=r["latency"],
                throughput_items_per_second=batch * 1000.0 / r["latency"], memory_peak_mb=100.0 + batch,
                is_simulated=r.get("simulated", False), created_at=when))
        db.insert_many(records)
    return str(path)


def _stepped(model="bert-tiny", hw="cpu", days=20, **extra):
    """A real series of `days` runs with a +30% step in the middle (10 ms, then 13 ms), with a little jitter."""
    return [dict(model=model, hw=hw, day=d, latency=(10.0 if d < days // 2 else 13.0) * (1 + 0.002 * (d % 3)),
                 **extra) for d in range(days)]


def _simulated(model="bert-tiny", hw="cpu", days=20, latency=0.01, **extra):
    return [dict(model=model, hw=hw, day=d, latency=latency, simulated=True, **extra) for d in range(days)]


@pytest.fixture(scope="module")
def mixed_db(tmp_path_factory) -> str:
    """bert-tiny: a real CPU series with a step and a simulated CPU series of 0.01 ms on the same configuration;
    also measured (and simulated) on CUDA, so hardware comparison has something to compare."""
    rows = (_stepped() + _simulated() + _stepped(hw="cuda") + _simulated(hw="cuda", latency=0.001))
    return _write(tmp_path_factory.mktemp("qa19") / "mixed.duckdb", rows)


def _load(db, **kwargs):
    with connect(db, read_only=True) as conn:
        return analytics.load_performance(conn, **kwargs)


def _run(db, tmp_path, analysis, *extra):
    out_dir = tmp_path / analysis
    code = analytics.main(["--db", db, "--analysis", analysis, "--output-dir", str(out_dir), *extra])
    assert code == 0
    table = pd.read_csv(out_dir / f"{analysis}.csv")
    data = json.loads((out_dir / f"{analysis}.json").read_text())
    return table, data, (out_dir / f"{analysis}.md").read_text()


def test_loaded_simulated_rows_name_their_hardware_as_simulated(mixed_db):
    df = _load(mixed_db, include_simulated=True)
    assert df["is_simulated"].dtype == bool
    assert set(df.loc[df["is_simulated"], "hardware"]) == {SIM, "cuda (simulated)"}
    assert set(df.loc[~df["is_simulated"], "hardware"]) == {"cpu", "cuda"}
    # without the flag nothing changes
    assert set(_load(mixed_db)["hardware"]) == {"cpu", "cuda"}


@pytest.mark.slow  # a chart: over 0.35 s
def test_trends_keep_the_simulated_series_apart(mixed_db, tmp_path, capsys):
    table, data, md = _run(mixed_db, tmp_path, "performance-trends", "--include-simulated", "--hardware-type", "cpu")
    capsys.readouterr()
    assert len(table) == 2 and "is_simulated" in table
    real = table[~table["is_simulated"]].iloc[0]
    simulated = table[table["is_simulated"]].iloc[0]
    # the measured series is what it is without the flag: 20 runs around 11.5 ms, one +30% step
    assert (real["hardware"], real["runs"], real["change_points"]) == ("cpu", 20, 1)
    assert 11.0 < real["median_latency_ms"] < 13.0
    assert (simulated["hardware"], simulated["runs"], simulated["median_latency_ms"]) == (SIM, 20, 0.01)
    assert {r["is_simulated"] for r in data["rows"]} == {True, False}
    assert f"| {SIM} |" in md


@pytest.mark.slow  # a chart: over 0.35 s
def test_anomaly_detection_still_finds_the_real_step(mixed_db, tmp_path, capsys):
    table, _, _ = _run(mixed_db, tmp_path, "anomaly-detection", "--include-simulated", "--hardware-type", "cpu")
    capsys.readouterr()
    steps = table[table["kind"] == "change point"]
    assert len(steps) == 1
    step = steps.iloc[0]
    assert (step["hardware"], bool(step["is_simulated"])) == ("cpu", False) and 25 < step["change_pct"] < 35


@pytest.mark.slow  # a chart: over 0.35 s
def test_hardware_comparison_compares_simulated_only_with_simulated(mixed_db, tmp_path, capsys):
    table, data, md = _run(mixed_db, tmp_path, "hardware-comparison", "--include-simulated")
    capsys.readouterr()
    real = table[~table["is_simulated"]]
    simulated = table[table["is_simulated"]]
    assert set(real["hardware"]) == {"cpu", "cuda"} and set(real["reference_hardware"]) == {"cpu"}
    assert set(simulated["hardware"]) == {SIM, "cuda (simulated)"} and set(simulated["reference_hardware"]) == {SIM}
    # the best measured hardware is measured: its throughput is the real CUDA's (~90 items/s), not a median
    # pooled with 1,000,000 simulated items/s
    best = {b["is_simulated"]: b for b in data["best_hardware"]}
    assert best[False]["hardware"] == "cuda" and 70 < best[False]["median_throughput"] < 110
    assert best[True]["hardware"] == "cuda (simulated)" and best[True]["median_throughput"] == pytest.approx(1e6)
    assert "cuda (simulated)" in md


@pytest.mark.slow  # a chart: over 0.35 s
@pytest.mark.parametrize("analysis", ["model-comparison", "batch-scaling", "correlation-analysis"])
def test_every_table_says_which_rows_are_simulated(tmp_path, capsys, analysis):
    """Two models at three batch sizes, measured and simulated: no table row mixes the two."""
    rows = []
    for model, factor in (("bert-a", 1.0), ("bert-b", 2.0)):
        for batch in (1, 2, 4):
            for day in range(3):
                rows.append(dict(model=model, hw="cpu", day=day, batch=batch, latency=factor * batch * 10.0,
                                 params=100.0 * factor))
                rows.append(dict(model=model, hw="cpu", day=day, batch=batch, latency=0.01, simulated=True,
                                 params=100.0 * factor))
    db = _write(tmp_path / "models.duckdb", rows)
    table, _, _ = _run(db, tmp_path, analysis, "--include-simulated")
    capsys.readouterr()
    assert set(table["is_simulated"]) == {True, False}
    if "hardware" in table:
        assert (table["hardware"] == SIM).equals(table["is_simulated"])
    if analysis == "model-comparison":  # bert-b is twice as slow as bert-a among the measured results
        real = table[~table["is_simulated"] & (table["batch_size"] == 1)].set_index("model")
        assert real.loc["bert-b", "relative_to_fastest"] == pytest.approx(2.0)
    if analysis == "batch-scaling":
        assert len(table) == 4  # two models, measured and simulated


def test_prediction_configurations_keep_simulated_apart(mixed_db):
    conf, _, _ = analytics._feature_frame(_load(mixed_db, include_simulated=True), ["hardware_type", "batch_size"])
    assert len(conf) == 4 and set(conf["is_simulated"]) == {True, False}
    assert set(conf.loc[conf["is_simulated"], "hardware"]) == {SIM, "cuda (simulated)"}


# ---------------------------------------------------------------------------------------- NULL is not "unknown"


@pytest.fixture(scope="module")
def null_db(tmp_path_factory) -> str:
    """One model measured at precision NULL, at a stored precision "unknown" (slower) and at fp32; a second model
    of no family and no modality beside one of modality "text"."""
    rows = (_stepped(precision=None, days=6) + [dict(r, latency=r["latency"] * 3)
                                                for r in _stepped(precision="unknown", days=6)]
            + _stepped(precision="fp32", days=6) + _stepped(hw="cuda", precision=None, days=6)
            + [dict(r, model="orphan", family=None) for r in _stepped(days=6)]
            + [dict(r, hw="cuda", model="orphan", family=None) for r in _stepped(days=6)]
            + [dict(r, model="texty", modality="text") for r in _stepped(days=6)])
    return _write(tmp_path_factory.mktemp("qa19_null") / "null.duckdb", rows)


def test_missing_values_load_as_missing_not_unknown(null_db):
    df = _load(null_db)
    for column in ("model_family", "modality", "device"):
        assert df[column].isna().any() and not (df[column] == "unknown").any(), column
    # the stored "unknown" precision is still a value of its own
    assert (df["precision"] == "unknown").sum() == 6 and df["precision"].isna().sum() == 12


def test_a_missing_modality_is_no_modality_of_its_own(null_db):
    """One modality ("text") and models without one: modality says nothing, so it is not added as a feature (the
    NULLs read "unknown" counted as a second modality)."""
    _, columns, added = analytics._feature_frame(_load(null_db), analytics.DEFAULT_FEATURES.split(","))
    assert "modality" not in columns and "modality" not in added


@pytest.mark.slow  # a chart: over 0.35 s
def test_trends_write_a_missing_precision_empty_and_keep_unknown_apart(null_db, tmp_path, capsys):
    table, data, md = _run(null_db, tmp_path, "performance-trends", "--hardware-type", "cpu")
    capsys.readouterr()
    bert = [r for r in data["rows"] if r["model"] == "bert-tiny"]
    by_precision = {r["precision"]: r["median_latency_ms"] for r in bert}
    assert set(by_precision) == {None, "unknown", "fp32"}
    assert by_precision["unknown"] > 2 * by_precision[None]  # not merged
    csv_precision = table.loc[table["model"] == "bert-tiny", "precision"]
    assert csv_precision.isna().sum() == 1 and (csv_precision == "unknown").sum() == 1
    orphan = [r for r in data["rows"] if r["model"] == "orphan"]
    assert len(orphan) == 1 and orphan[0]["precision"] == "fp32"
    assert "unknown" not in md.replace("| unknown |", "")  # the stored value is shown, NULL is no "unknown"


@pytest.mark.slow  # a chart: over 0.35 s
def test_hardware_comparison_keeps_rows_of_missing_precision_and_family(null_db, tmp_path, capsys):
    table, data, _ = _run(null_db, tmp_path, "hardware-comparison")
    capsys.readouterr()
    # bert-tiny at precision NULL on cpu and cuda is compared, with NULL written as empty / null
    bert = [r for r in data["rows"] if r["model"] == "bert-tiny" and r["precision"] is None]
    assert {r["hardware"] for r in bert} == {"cpu", "cuda"}
    orphan = table[table["model"] == "orphan"]
    assert len(orphan) == 2 and orphan["model_family"].isna().all()
    assert not (table["model_family"] == "unknown").any()
    assert any(b["model_family"] is None for b in data["best_hardware"])

"""benchmark_db_analytics keeps emulated results (`performance_results.is_emulated`: a software WebGPU adapter
such as SwiftShader) apart from the real device of the same hardware type, as the reports do: the hardware
reads `webgpu (emulated)`, every table with a hardware column has `is_emulated`, and no analysis averages,
compares, fits or flags the two as one device. `--hardware-type webgpu` still matches both."""
from __future__ import annotations

import datetime as dt
import json

import pytest

import benchmark_db_analytics as analytics
from benchmark_db.connection import connect
from benchmark_db_models import BenchmarkDB, PerformanceResults, TestRuns

T0 = dt.datetime(2026, 3, 1, 9, 0)
EMU = "webgpu (emulated)"
# throughput at batch 1 (items/s): the real GPU is fast, the software adapter 50x slower than it
SPEED = {"cpu": 100.0, "gpu": 1000.0, "emu": 20.0}
MODELS = {"bert-base-uncased": ("bert", 110.0, 1.0), "t5-small": ("t5", 60.0, 1.6), "vit-tiny": ("vit", 6.0, 4.0)}
BATCHES = (1, 2, 4, 8)
REAL_RUNS, EMU_RUNS = 10, 5


def _latency(kind: str, model: str, batch: int, run: int) -> float:
    """Per-batch latency (ms) of a throughput law, with a small deterministic jitter (+-1%)."""
    throughput = SPEED[kind] * MODELS[model][2] * batch ** 0.8
    return batch * 1000.0 / throughput * (1 + 0.01 * (((run * 7 + batch * 3) % 5) - 2) / 2)


def _build(path) -> str:
    """Ten runs on the CPU and a real WebGPU device, then five on SwiftShader standing in for that same device
    (the harshest case: the same hardware platform row, nothing but the flag tells them apart). vit-tiny is
    measured on WebGPU only, real and emulated."""
    with BenchmarkDB(str(path)) as db, db.transaction():
        hw = {"cpu": db.get_or_add_hardware("cpu", "Test CPU"), "gpu": db.get_or_add_hardware("webgpu", "Test GPU")}
        hw["emu"] = hw["gpu"]
        ids = {m: db.get_or_add_model(m, model_family=fam, parameters_million=p) for m, (fam, p, _) in MODELS.items()}
        records = []
        for run in range(REAL_RUNS + EMU_RUNS):
            started = T0 + dt.timedelta(days=run)
            run_id = db.insert_test_runs(TestRuns(test_name=f"run-{run}", test_type="performance",
                                                  started_at=started, success=True))
            kinds = ("cpu", "gpu") if run < REAL_RUNS else ("emu",)
            for kind in kinds:
                for model in MODELS:
                    if model == "vit-tiny" and kind == "cpu":
                        continue
                    for batch in BATCHES:
                        latency = _latency(kind, model, batch, run)
                        records.append(PerformanceResults(
                            run_id=run_id, model_id=ids[model], hardware_id=hw[kind], model_name=model,
                            hardware_type="cpu" if kind == "cpu" else "webgpu", test_case="inference",
                            batch_size=batch, sequence_length=128, precision="fp32", average_latency_ms=latency,
                            throughput_items_per_second=batch * 1000.0 / latency, memory_peak_mb=100.0 + batch,
                            iterations=20, is_emulated=kind == "emu", created_at=started))
        db.insert_many(records)
    return str(path)


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> str:
    return _build(tmp_path_factory.mktemp("analytics_emulated") / "emulated.duckdb")


def _run(db, tmp_path, capsys, analysis, *extra):
    out_dir = tmp_path / analysis
    code = analytics.main(["--db", db, "--analysis", analysis, "--output-dir", str(out_dir), *extra])
    out = capsys.readouterr().out
    assert code == 0, out
    data = json.loads((out_dir / f"{analysis}.json").read_text())
    return data, out


def _close(a, b, rel=0.05) -> bool:
    return abs(a - b) <= rel * abs(b)


@pytest.mark.slow  # over 0.35 s here: outside make test-fast
def test_loaded_rows_carry_the_label_and_the_flag(db):
    with connect(db, read_only=True) as conn:
        df = analytics.load_performance(conn)
        only_webgpu = analytics.load_performance(conn, hardware_type="webgpu")
    emulated = df[df["hardware"] == EMU]
    assert len(emulated) == EMU_RUNS * len(MODELS) * len(BATCHES)
    assert emulated["is_emulated"].all() and not df.loc[df["hardware"] != EMU, "is_emulated"].any()
    # the filter reads the hardware type: webgpu matches the emulated rows too
    assert set(only_webgpu["hardware"]) == {"webgpu", EMU}


@pytest.mark.slow  # over 1.5 s with the module's database: outside make test-fast
def test_hardware_comparison_keeps_the_emulator_apart_and_never_its_reference(db, tmp_path, capsys):
    data, out = _run(db, tmp_path, capsys, "hardware-comparison")
    rows = data["rows"]
    bert = {r["hardware"]: r for r in rows if r["model"] == "bert-base-uncased" and r["batch_size"] == 1}
    assert set(bert) == {"cpu", "webgpu", EMU}
    assert bert[EMU]["is_emulated"] is True and bert["webgpu"]["is_emulated"] is False
    # the real device's speed-up over the CPU is the real one (10x), the emulator's its own (0.2x)
    assert _close(bert["webgpu"]["speedup_vs_reference"], 10.0) and _close(bert[EMU]["speedup_vs_reference"], 0.2)
    assert _close(bert["webgpu"]["median_latency_ms"], 1.0) and _close(bert[EMU]["median_latency_ms"], 50.0)
    # vit-tiny ran on WebGPU only: the real device is the reference, not the (slower) emulator
    vit = {r["hardware"]: r for r in rows if r["model"] == "vit-tiny" and r["batch_size"] == 1}
    assert set(vit) == {"webgpu", EMU} and {r["reference_hardware"] for r in vit.values()} == {"webgpu"}
    assert all(b["is_emulated"] == (b["hardware"] == EMU) for b in data["best_hardware"])
    assert "webgpu (emulated)" in out and "emulated device" in out


@pytest.mark.slow  # over 0.35 s here: outside make test-fast
def test_hardware_type_filter_still_matches_the_emulated_rows(db, tmp_path, capsys):
    data, _ = _run(db, tmp_path, capsys, "hardware-comparison", "--hardware-type", "webgpu")
    assert {r["hardware"] for r in data["rows"]} == {"webgpu", EMU}
    assert {r["model"] for r in data["rows"]} == set(MODELS)


@pytest.mark.slow  # over 0.35 s here: outside make test-fast
def test_model_comparison_never_averages_the_emulator_with_the_device(db, tmp_path, capsys):
    data, _ = _run(db, tmp_path, capsys, "model-comparison")
    at_1 = {(r["hardware"], r["model"]): r for r in data["rows"] if r["batch_size"] == 1}
    for model, (_, _, factor) in MODELS.items():
        real, emu = at_1[("webgpu", model)], at_1[(EMU, model)]
        assert real["is_emulated"] is False and emu["is_emulated"] is True
        assert real["rows"] == REAL_RUNS and emu["rows"] == EMU_RUNS
        assert _close(real["median_latency_ms"], 1.0 / factor) and _close(emu["median_latency_ms"], 50.0 / factor)
    # relative_to_fastest compares models within one device: vit-tiny is the fastest on each, never a
    # model on the real GPU the "fastest" on the emulator
    assert _close(at_1[(EMU, "bert-base-uncased")]["relative_to_fastest"], 4.0)


@pytest.mark.slow  # about 0.6 s: outside make test-fast
def test_batch_scaling_fits_one_curve_per_device(db, tmp_path, capsys):
    data, _ = _run(db, tmp_path, capsys, "batch-scaling")
    curves = {(r["model"], r["hardware"]): r for r in data["rows"]}
    real, emu = curves[("bert-base-uncased", "webgpu")], curves[("bert-base-uncased", EMU)]
    assert real["is_emulated"] is False and emu["is_emulated"] is True
    assert _close(real["peak_throughput"], 1000.0 * 8 ** 0.8) and _close(emu["peak_throughput"], 20.0 * 8 ** 0.8)
    points = [c for c in data["curves"] if c["model"] == "bert-base-uncased" and c["hardware"] == "webgpu"]
    assert len(points) == len(BATCHES) and all(p["rows"] == REAL_RUNS for p in points)


@pytest.mark.slow  # about 3 s: outside make test-fast
def test_trends_and_anomalies_do_not_read_the_emulator_as_a_regression(db, tmp_path, capsys):
    trends, _ = _run(db, tmp_path, capsys, "performance-trends")
    series = {(r["model"], r["hardware"], r["batch_size"]): r for r in trends["rows"]}
    real, emu = series[("bert-base-uncased", "webgpu", 1)], series[("bert-base-uncased", EMU, 1)]
    assert (real["runs"], real["is_emulated"]) == (REAL_RUNS, False)
    assert (emu["runs"], emu["is_emulated"]) == (EMU_RUNS, True)
    assert _close(real["median_latency_ms"], 1.0) and _close(emu["median_latency_ms"], 50.0)
    # mixed into one series, the switch to the emulator after run 10 is a 50x "regression"; apart, both are flat
    anomalies, out = _run(db, tmp_path, capsys, "anomaly-detection")
    assert anomalies["rows"] == [] and "0 robust outlier(s)" in out and "0 change point(s)" in out


@pytest.mark.slow  # about 1.5 s
def test_correlations_are_computed_apart(db, tmp_path, capsys):
    data, out = _run(db, tmp_path, capsys, "correlation-analysis")
    by_set = {flag: [r for r in data["rows"] if r["is_emulated"] is flag] for flag in (False, True)}
    real_rows = REAL_RUNS * (2 * 2 + 1) * len(BATCHES)  # bert, t5 on cpu and webgpu; vit on webgpu
    emulated_rows = EMU_RUNS * len(MODELS) * len(BATCHES)
    assert by_set[False] and by_set[True]
    assert {r["n"] for r in by_set[False]} == {real_rows} and {r["n"] for r in by_set[True]} == {emulated_rows}
    assert "correlated apart" in out


@pytest.mark.slow  # about 3 s: fits models
def test_prediction_never_fits_the_emulator_as_the_real_device(db, tmp_path, capsys):
    with connect(db, read_only=True) as conn:
        df = analytics.load_performance(conn)
    fit = analytics.fit_prediction(df, analytics.DEFAULT_FEATURES.split(","))
    conf = fit["configs"]
    assert "hardware" in fit["columns"] and EMU in set(conf["hardware"])
    # one configuration per device: the emulator's throughput is not a median taken with the real GPU's
    bert_1 = conf[(conf["model"] == "bert-base-uncased") & (conf["batch_size"] == 1)].set_index("hardware")
    assert _close(bert_1.loc["webgpu", "throughput"], 1000.0) and _close(bert_1.loc[EMU, "throughput"], 20.0)
    assert bool(bert_1.loc[EMU, "is_emulated"]) and not bool(bert_1.loc["webgpu", "is_emulated"])
    # the label is the category: a prediction for the emulator is the emulator's, for the device the device's
    real = analytics.predict_one(fit, {"model_family": "bert", "hardware_type": "webgpu", "batch_size": 4,
                                       "precision": "fp32"})
    emu = analytics.predict_one(fit, {"model_family": "bert", "hardware_type": EMU, "batch_size": 4,
                                      "precision": "fp32"})
    assert real["predicted_throughput"] > 10 * emu["predicted_throughput"]
    assert real["already_measured"] and _close(real["measured_throughput"], 1000.0 * 4 ** 0.8)
    assert emu["already_measured"] and _close(emu["measured_throughput"], 20.0 * 4 ** 0.8)
    data, out = _run(db, tmp_path, capsys, "performance-prediction",
                     "--predict", f"model_family=bert,hardware_type={EMU},batch_size=4,precision=fp32")
    assert {(r["hardware"], r["is_emulated"]) for r in data["rows"]} == {("cpu", False), ("webgpu", False),
                                                                         (EMU, True)}
    assert data["prediction"]["query"]["hardware"] == EMU and "on webgpu (emulated), batch 4" in out

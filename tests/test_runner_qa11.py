"""Runner QA sweep 11: options that passed the checks and then wasted or lost a run, labels that said more than ran.

Each test failed before the fix it guards; real DuckDB files in tmp_path, nothing of the runner mocked.
"""
from __future__ import annotations

import importlib.util
import json
import os

import pytest

if importlib.util.find_spec("torch") is None or importlib.util.find_spec("transformers") is None:
    pytest.skip("the runners need torch and transformers", allow_module_level=True)

FAST = ["--warmup", "1", "--min-iterations", "2", "--min-duration", "0", "--generate-tokens", "0", "--quiet"]


def _one_error_line(err: str, code: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines and lines[-1].startswith(f"error {code}:"), err
    assert "Traceback" not in err and "unexpected" not in err
    return lines[-1]


@pytest.mark.parametrize("flag, value, message", [
    # nan passed `< 0`, then every cell failed with "ValueError: cannot convert float NaN to integer" (stored)
    ("--min-duration", "nan", "--min-duration nan is not a number of seconds"),
    ("--min-duration", "inf", "--min-duration inf is not a number of seconds"),  # measured 100,000 calls a cell
    ("--memory-budget-gb", "nan", "--memory-budget-gb must be more than 0"),  # the budget was silently ignored
    ("--memory-budget-gb", "inf", "--memory-budget-gb must be more than 0"),
    # accepted, then each cell failed allocating and was stored as a failed compatibility row
    ("--batch-sizes", "99999999999999", "at most 1,048,576"),
    ("--sequence-lengths", "99999999999", "at most 16,777,216"),
])
def test_non_finite_and_oversized_options_are_one_usage_line(tmp_path, capsys, flag, value, message):
    from runners.run_model_benchmarks import main

    db = tmp_path / "x.duckdb"
    try:
        code = main(["--db", str(db), "--model", "bert", *FAST, flag, value])
    except SystemExit as exc:  # argparse's own exit for a --batch-sizes/--sequence-lengths type error
        code = exc.code
    line = _one_error_line(capsys.readouterr().err, "DB000")
    assert code == 2 and message in line
    assert not db.exists()


def test_unknown_model_creates_no_database(tmp_path, capsys):
    from runners.run_benchmark_with_db import main

    db = tmp_path / "x.duckdb"
    code = main(["--db", str(db), "--model", "nosuchmodel", *FAST])
    assert code == 2 and "unknown model 'nosuchmodel'" in _one_error_line(capsys.readouterr().err, "DB000")
    assert not db.exists()  # was created (empty schema) before the model name was checked


def test_output_dir_that_refuses_files_is_refused_before_measuring(tmp_path, capsys, monkeypatch):
    """A folder os.access calls writable (root on a read-only folder, a read-only mount, /proc) failed only when
    the finished run was written: 'error: unexpected FileNotFoundError ...; report it', the results lost."""
    import tempfile

    from runners import engine
    from runners.run_model_benchmarks import main

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    monkeypatch.setattr(engine, "benchmark_run", lambda *a, **k: pytest.fail("measured before checking"))
    code = main(["--no-db-store", "--output-dir", str(tmp_path / "out"), "--model", "bert", *FAST])
    line = _one_error_line(capsys.readouterr().err, "DB000")
    assert code == 2 and "cannot write into --output-dir" in line and "Permission denied" in line


def test_output_dir_under_proc_is_one_line(capsys):
    from runners.run_model_benchmarks import main

    if not os.path.isdir("/proc/self"):
        pytest.skip("needs /proc")
    code = main(["--no-db-store", "--output-dir", "/proc", "--model", "bert", "--batch-sizes", "1", *FAST])
    assert code == 2 and "--output-dir /proc" in _one_error_line(capsys.readouterr().err, "DB000")


def test_db_path_duckdb_reads_as_a_data_file_is_refused(tmp_path, capsys):
    """DuckDB opens an existing .json file as an in-memory database of views: the runner printed
    'stored in x.json: 1 performance_results' and kept nothing."""
    from runners.run_model_benchmarks import main

    target = tmp_path / "results.json"
    target.write_text(json.dumps([{"a": 1}]), encoding="utf-8")
    before = target.read_bytes()
    code = main(["--db", str(target), "--model", "bert", "--batch-sizes", "1", *FAST])
    line = _one_error_line(capsys.readouterr().err, "DB001")
    assert code == 3 and "is a data file (JSON, CSV or Parquet), not a DuckDB database" in line
    assert target.read_bytes() == before


@pytest.mark.slow
def test_sequence_length_beyond_the_model_limit_is_not_stored_as_measured(tmp_path):
    """clip-tiny's text tower takes 128 positions: --sequence-lengths 512 ran 128 tokens and was stored as 512,
    a second row identical in all but its label."""
    import duckdb

    from runners.run_model_benchmarks import main

    db = str(tmp_path / "x.duckdb")
    code = main(["--db", db, "--model", "clip", "--batch-sizes", "1", "--sequence-lengths", "128,512", *FAST])
    assert code == 0
    with duckdb.connect(db, read_only=True) as conn:
        stored = conn.execute("SELECT sequence_length FROM performance_results").fetchall()
        compat = conn.execute("SELECT metadata FROM hardware_compatibility").fetchall()
    assert stored == [(128,)]
    failed = json.loads(compat[0][0])["failed_configurations"]
    assert failed[0]["sequence_length"] == 512 and "at most 128 tokens" in failed[0]["error"]


def test_mps_memory_is_not_labelled_a_peak():
    """MPS has no peak counter: memory_peak_mb is the driver's allocation at the end of the measured phase, but
    metrics.memory_peak_measures said 'peak allocated by the framework in the measured phase'."""
    from runners import engine
    from runners.backends.base import Detection, Prepared
    from runners.backends.mps import MPSBackend
    from runners.measure import latency_stats
    from runners.models import select_models

    backend = MPSBackend()
    backend.synchronize = lambda: None  # no Apple GPU here: the timing loop runs a plain call
    backend.reset_peak_memory = lambda: None
    backend.peak_memory_mb = lambda: 123.0
    backend.measurement_context = lambda: __import__("contextlib").nullcontext()
    prepared = Prepared(call=lambda: None, precision_used="fp32", items=1)
    measurement = backend.measure(prepared, warmup=0, min_iterations=2, min_duration_s=0)
    out = engine._Collector()
    spec = select_models("small", ["bert"])[0]
    engine._add_result(spec, "mps", "Apple M1", 1, 8, "fp32", prepared, measurement, {}, 1, 1000,
                       Detection(True, device_name="Apple M1"), engine.RunSettings(), out, latency_stats)
    row = out.results[0]
    assert row["memory_peak_mb"] == 123.0
    assert "not a peak" in row["metrics"]["memory_peak_measures"]


@pytest.mark.slow
def test_whisper_runs_the_decoder_length_it_is_stored_under():
    """Whisper's sequence length is its decoder's: the input builder capped it at 16 tokens, so rows stored
    as sequence length 32 (the small set's default) ran 16."""
    from runners.models import INPUT_BUILDERS, select_models

    spec = select_models("small", ["whisper"])[0]
    config = spec.config()
    inputs = INPUT_BUILDERS["whisper"](config, 2, 32)
    assert tuple(inputs["decoder_input_ids"].shape) == (2, 32)
    # beyond the decoder's positions the builder stops at the limit, which the engine then refuses to store
    longest = INPUT_BUILDERS["whisper"](config, 1, 10_000)["decoder_input_ids"].shape[-1]
    assert longest == config.max_target_positions


@pytest.mark.parametrize("hardware", [",", ""])
def test_hardware_that_names_no_platform_is_a_usage_line(tmp_path, capsys, hardware):
    """`--hardware ,` (or an empty shell variable) silently measured cpu."""
    from runners.run_model_benchmarks import main

    db = tmp_path / "x.duckdb"
    code = main(["--db", str(db), "--model", "bert", "--hardware", hardware, *FAST])
    line = _one_error_line(capsys.readouterr().err, "DB000")
    # "" is refused by the shared rule for empty values (benchmark_db.cli), "," by the runner's own
    said = "--hardware is empty" if hardware == "" else "--hardware names no platform"
    assert code == 2 and said in line and not db.exists()

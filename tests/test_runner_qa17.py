"""Runner QA sweep 17: inputs that ended in an 'unexpected ... report it' error or ran something else than asked
(a file that is not ONNX, a malformed config.json, --threads without a bound, empty --model/--precision), a failed
generation stored as a plain ok, and Ctrl-C while storing that printed the updater's "committed work is kept".

Each test failed before the fix it guards.
"""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

if importlib.util.find_spec("torch") is None or importlib.util.find_spec("transformers") is None:
    pytest.skip("the runners need torch and transformers", allow_module_level=True)

FAST = ["--warmup", "1", "--min-iterations", "2", "--min-duration", "0", "--generate-tokens", "0",
        "--batch-sizes", "1"]


def _run(argv: list[str]) -> int:
    from runners.run_model_benchmarks import main

    return main(argv)


# -- 1. browser_harness.py run on a file that is not ONNX -----------------------------------------------------
@pytest.mark.slow
def test_harness_refuses_a_file_that_is_not_onnx(tmp_path, capsys):
    """Before: `error: unexpected DecodeError: Error parsing message ...; report it`."""
    pytest.importorskip("onnx")
    from runners.web import browser_harness

    bad = tmp_path / "bad.onnx"
    bad.write_text("notonnx\n")
    assert browser_harness.main(["run", str(bad), "--provider", "wasm", "--min-duration", "0.01"]) == 2
    err = capsys.readouterr().err
    assert f"error DB000: {bad} is not an ONNX model" in err and "unexpected" not in err


# -- 2. --model-path with a malformed config.json ---------------------------------------------------------------
@pytest.mark.parametrize("text, says", [
    ("{\n", "cannot read"),  # JSONDecodeError
    ("[]\n", "is a JSON list, not an object"),  # AttributeError: 'list' object has no attribute 'get'
    ('{"model_type": "bert", "architectures": "BertModel"}', "is not a list of class names"),  # class "B"
])
def test_checkpoint_with_a_malformed_config_is_a_usage_error(tmp_path, text, says):
    from benchmark_db.errors import UsageError
    from runners.models import checkpoint_spec

    (tmp_path / "config.json").write_text(text)
    with pytest.raises(UsageError) as caught:
        checkpoint_spec(str(tmp_path))
    assert str(tmp_path / "config.json") in caught.value.message and says in caught.value.message


# -- 3. --threads has an upper bound ----------------------------------------------------------------------------
def test_threads_beyond_the_bound_are_refused_before_the_database_is_created(tmp_path, capsys):
    """Before: cpu detection failed with an ImportError, then `unexpected ImportError`, after creating the DB."""
    from runners.engine import MAX_THREADS, build_runner_parser, settings_from_args

    db = tmp_path / "thr.duckdb"
    assert _run(["--model", "bert", "--db", str(db), "--threads", "100000", *FAST]) == 2
    assert "error DB000: --threads 100,000 is more than 1,024" in capsys.readouterr().err
    assert not db.exists()
    parser = build_runner_parser("r", "doc\n")
    assert settings_from_args(parser.parse_args(["--threads", str(MAX_THREADS)])).threads == MAX_THREADS


# -- 4. Ctrl-C while storing -------------------------------------------------------------------------------------
def _fake_doc() -> dict:
    return {"run": {"test_name": "qa17", "started_at": "2026-01-01 00:00:00"}, "results": []}


@pytest.mark.slow
@pytest.mark.parametrize("interrupt", [KeyboardInterrupt(), RuntimeError("Query interrupted")],
                         ids=["sigint", "duckdb"])
def test_interrupt_while_storing_says_nothing_was_stored_and_keeps_the_measurements(tmp_path, capsys,
                                                                                   monkeypatch, interrupt):
    """Before: the updater's `committed work is kept and a re-run continues from there`, and the measurements
    were gone (the lock-timeout path saves them to --output-dir)."""
    from runners import engine

    def interrupted(*_a, **_k):
        raise interrupt

    monkeypatch.setattr(engine, "benchmark_run", lambda *a, **k: (_fake_doc(), [{"status": "ok"}]))
    monkeypatch.setattr(engine, "store_document", interrupted)
    out = tmp_path / "out"
    assert _run(["--model", "bert", "--db", str(tmp_path / "db.duckdb"), "--output-dir", str(out), *FAST]) == 130
    err = capsys.readouterr().err
    assert "nothing of this run was stored" in err and "committed work is kept" not in err
    saved = list(out.glob("benchmark_qa17_*.json"))
    assert len(saved) == 1 and str(saved[0]) in err and "--input-file" in err
    assert json.loads(saved[0].read_text())["run"]["test_name"] == "qa17"


def test_interrupt_while_writing_no_db_store_says_nothing_was_stored(tmp_path, capsys, monkeypatch):
    from runners import engine

    def interrupted(*_a, **_k):
        raise KeyboardInterrupt

    monkeypatch.setattr(engine, "benchmark_run", lambda *a, **k: (_fake_doc(), [{"status": "ok"}]))
    monkeypatch.setattr(engine, "write_document", interrupted)
    assert _run(["--model", "bert", "--no-db-store", "--output-dir", str(tmp_path / "out"), *FAST]) == 130
    err = capsys.readouterr().err
    assert "nothing of this run was stored" in err and "committed work is kept" not in err


# -- 5. a failed generation is not a plain ok ---------------------------------------------------------------------
@pytest.mark.slow
def test_failed_generation_is_in_the_warning_and_the_status(tmp_path, capsys, monkeypatch):
    """Before: status `ok` and no metrics.warning; only metrics.generation_error said it (whisper at
    --generate-tokens 200 beyond max_target_positions 128)."""
    from runners.backends.base import TorchBackend

    monkeypatch.setattr(TorchBackend, "generation_metrics",
                        lambda self, spec, prepared, n, r: {"generation_error": "ValueError: too long"})
    out = tmp_path / "out"
    argv = ["--model", "llama", "--no-db-store", "--output-dir", str(out), *FAST, "--generate-tokens", "2"]
    assert _run(argv) == 0
    [row] = json.loads(next(Path(out).glob("benchmark_*.json")).read_text())["results"]
    assert row["metrics"]["generation_error"] == "ValueError: too long"
    assert "generation of 2 tokens failed" in row["metrics"]["warning"]
    assert "generation failed" in capsys.readouterr().out


# -- 6. empty --model / --model-path / --precision ----------------------------------------------------------------
@pytest.mark.parametrize("argv, says", [
    (["--model", ""], "--model is empty"),  # the shared rule for empty values (benchmark_db.cli)
    (["--model", ","], "--model names nothing"),
    (["--model-path", ""], "--model-path is empty"),
    (["--model", "bert", "--precision", ""], "--precision is empty"),
])
def test_empty_model_or_precision_is_refused(tmp_path, capsys, argv, says):
    """Before: the whole small set (14 models) ran, or --precision "" fell back to fp32."""
    db = tmp_path / "em.duckdb"
    assert _run([*argv, "--hardware", "cuda", "--db", str(db), *FAST]) == 2
    assert f"error DB000: {says}" in capsys.readouterr().err
    assert not db.exists()

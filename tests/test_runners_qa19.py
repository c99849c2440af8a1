"""Runner QA sweep 19: llava rows that ran past the language model's positions stored as ok, Ctrl-C after the
commit that advised storing the run a second time, git state read at the end of the run, repeated --hardware /
--batch-sizes / --sequence-lengths keeping only the last, --generate-tokens silently ignored on openvino and
webgpu, --visualize-from-db silencing the runner's log, an ingest hint with a --db that is no database,
"not run: not run", and torch's per-run thread count in the shared hardware_platforms row.

Each test failed before the fix it guards.
"""
from __future__ import annotations

import importlib.util
import json
import logging
from types import SimpleNamespace

import pytest

if importlib.util.find_spec("torch") is None or importlib.util.find_spec("transformers") is None:
    pytest.skip("the runners need torch and transformers", allow_module_level=True)

FAST = ["--warmup", "1", "--min-iterations", "2", "--min-duration", "0", "--generate-tokens", "0",
        "--batch-sizes", "1", "--threads", "1"]


@pytest.fixture(autouse=True)
def _restore_logging():
    """run_cli sets the benchmark_db logger up per call; leave it as found for the next test."""
    logger = logging.getLogger("benchmark_db")
    level, handlers, propagate = logger.level, list(logger.handlers), logger.propagate
    yield
    logger.setLevel(level)
    logger.handlers[:] = handlers
    logger.propagate = propagate


def _run(argv: list[str]) -> int:
    from runners.run_model_benchmarks import main

    return main(argv)


def _empty_document(command_line: str = "run_model_benchmarks.py") -> dict:
    """A runner document of a run that measured nothing: one test_runs row."""
    import datetime as dt

    from benchmark_db.runner_format import document_from_run

    now = dt.datetime(2026, 1, 1, 12, 0, 0)
    run = {"test_name": "model_benchmarks", "test_type": "performance", "started_at": now, "completed_at": now,
           "execution_time_seconds": 0.0, "success": True, "git_commit": None, "git_branch": None,
           "command_line": command_line, "environment": {}, "metadata": {}}
    return document_from_run(run, [], [], [], [], [])


def _query(db: str, sql: str) -> list:
    import duckdb

    conn = duckdb.connect(db, read_only=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


# -- 1. multimodal position limits count every token the language model processes ------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("family, image_tokens", [("llava", 16), ("llava_next", 36)])
def test_llava_text_leaves_room_for_the_image_tokens(family, image_tokens):
    """Before: seq 510 ran 510 + 16 input_ids against 512 positions and was stored as ok."""
    from runners.models import INPUT_BUILDERS, select_models, sequence_tokens

    config = select_models("small", [family])[0].config()
    inputs = INPUT_BUILDERS[family](config, 1, 510)
    limit = config.text_config.max_position_embeddings
    assert inputs["input_ids"].shape[-1] == limit
    assert sequence_tokens(family, config, inputs) == (limit - image_tokens, limit)
    small = INPUT_BUILDERS[family](config, 1, 32)
    assert sequence_tokens(family, config, small) == (32, 32 + image_tokens)


@pytest.mark.slow
def test_clap_text_limit_counts_the_padding_offset():
    """Before: clap's 130 positions let seq 129 through, which failed in the measured call with an IndexError."""
    from runners.models import INPUT_BUILDERS, select_models, sequence_tokens

    config = select_models("small", ["clap"])[0].config()
    inputs = INPUT_BUILDERS["clap"](config, 1, 130)
    assert sequence_tokens("clap", config, inputs) == (128, 128)


@pytest.mark.slow
def test_llava_beyond_its_positions_is_skipped_and_input_tokens_recorded(tmp_path, capsys):
    db = str(tmp_path / "llava.duckdb")
    assert _run(["--db", db, "--model", "llava", "--sequence-lengths", "32,510", *FAST]) == 0
    out = capsys.readouterr().out
    assert "takes at most 496 tokens: sequence length 510 cannot run" in out
    (message,) = _query(db, "SELECT error_message FROM hardware_compatibility")[0]
    assert message is None  # the model ran at 32: compatible, with the one failed configuration in metadata
    rows = _query(db, "SELECT sequence_length, metrics FROM performance_results")
    assert len(rows) == 1 and rows[0][0] == 32
    metrics = json.loads(rows[0][1])
    assert metrics["input_tokens"] == 48 and metrics["image_tokens"] == 16
    (meta,) = _query(db, "SELECT metadata FROM hardware_compatibility")[0]
    failed = json.loads(meta)["failed_configurations"]
    assert [f["sequence_length"] for f in failed] == [510]
    assert "16 image tokens come first in the language model's 512 positions" in failed[0]["error"]


# -- 2. Ctrl-C after the commit -------------------------------------------------------------------------------
@pytest.mark.slow
def test_interrupt_after_the_commit_says_stored_and_saves_no_copy(tmp_path, monkeypatch, capsys):
    """Before: "nothing of this run was stored" and a JSON copy whose updater command stored the run twice."""
    import benchmark_db_models
    from runners import engine

    original = benchmark_db_models.BenchmarkDB.__exit__

    def closing_then_interrupted(self, *exc):
        original(self, *exc)
        raise KeyboardInterrupt  # Ctrl-C during DuckDB's checkpoint on close

    monkeypatch.setattr(benchmark_db_models.BenchmarkDB, "__exit__", closing_then_interrupted)
    monkeypatch.setattr(engine, "benchmark_run", lambda *a, **k: (_empty_document(), []))
    db, saved = str(tmp_path / "r.duckdb"), tmp_path / "out"
    assert _run(["--db", db, "--output-dir", str(saved), "--model", "bert", *FAST]) == 130
    err = capsys.readouterr().err
    assert "interrupted after the run was stored" in err
    assert "nothing of this run was stored" not in err and "--input-file" not in err
    assert not saved.exists() or not list(saved.iterdir())
    monkeypatch.setattr(benchmark_db_models.BenchmarkDB, "__exit__", original)
    assert _query(db, "SELECT count(*) FROM test_runs") == [(1,)]


@pytest.mark.slow
def test_interrupt_before_the_commit_still_saves_the_measurements(tmp_path, monkeypatch, capsys):
    import benchmark_db_models
    from runners import engine

    def interrupted(self, records):
        raise KeyboardInterrupt

    monkeypatch.setattr(benchmark_db_models.BenchmarkDB, "insert_many", interrupted)
    monkeypatch.setattr(engine, "benchmark_run", lambda *a, **k: (_empty_document(), []))
    saved = tmp_path / "out"
    assert _run(["--db", str(tmp_path / "r.duckdb"), "--output-dir", str(saved), "--model", "bert", *FAST]) == 130
    err = capsys.readouterr().err
    assert "nothing of this run was stored" in err and "--input-file" in err
    assert len(list(saved.glob("*.json"))) == 1


# -- 3. git state read at start-up, with git_dirty -------------------------------------------------------------
def test_git_state_is_read_before_measuring(monkeypatch):
    """Before: read by capture_environment after the matrix: a commit during the run was recorded instead."""
    from runners import engine, measure

    state = {"git_commit": "before", "git_branch": "main", "git_dirty": False}
    monkeypatch.setattr(measure, "git_provenance", lambda cwd=None: dict(state))

    def matrix(specs, settings, quiet=False):
        state.update(git_commit="after", git_branch="other", git_dirty=True)  # a commit while measuring
        return engine._Collector(), {}

    monkeypatch.setattr(engine, "run_matrix", matrix)
    monkeypatch.setattr(measure, "capture_environment",
                        lambda accelerators=None, git=None: {**(git or measure.git_provenance())})
    doc, _ = engine.benchmark_run(engine.RunSettings(), test_name="t", command_line="c", specs=[])
    run = doc["run"]
    assert (run["git_commit"], run["git_branch"]) == ("before", "main")
    assert run["environment"]["git_dirty"] is False


@pytest.mark.slow
def test_git_provenance_says_whether_the_tree_had_uncommitted_changes(tmp_path):
    import subprocess

    from runners.measure import git_provenance

    assert git_provenance(str(tmp_path)) == {"git_commit": None, "git_branch": None, "git_dirty": None}
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q", "-b", "main"], cwd=tmp_path, check=True)
    (tmp_path / "a.py").write_text("x = 1\n")
    subprocess.run([*git, "add", "a.py"], cwd=tmp_path, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "one"], cwd=tmp_path, check=True)
    (tmp_path / "scratch.duckdb").write_text("")  # untracked: not the code that ran
    clean = git_provenance(str(tmp_path))
    assert clean["git_dirty"] is False and clean["git_branch"] == "main" and len(clean["git_commit"]) == 40
    (tmp_path / "a.py").write_text("x = 2\n")
    assert git_provenance(str(tmp_path))["git_dirty"] is True


# -- 4. repeated list options accumulate, in every runner script ----------------------------------------------
@pytest.mark.parametrize("script", ["run_model_benchmarks", "run_benchmark_with_db", "run_db_integrated_benchmarks"])
def test_repeated_list_options_accumulate(script):
    """Before: --hardware cpu --hardware openvino ran openvino alone; likewise the last --batch-sizes."""
    import importlib

    from runners.engine import settings_from_args

    parser = importlib.import_module(f"runners.{script}").build_parser()
    args = parser.parse_args(["--hardware", "cpu", "--hardware", "openvino", "webgpu", "--batch-sizes", "1,2",
                              "--batch-sizes", "4,1", "--sequence-lengths", "16", "--sequence-lengths", "32"])
    settings = settings_from_args(args)
    assert settings.hardware == ["cpu", "openvino", "webgpu"]
    assert settings.batch_sizes == [1, 2, 4] and settings.sequence_lengths == [16, 32]
    defaults = settings_from_args(parser.parse_args([]))
    assert defaults.hardware == ["cpu"] and defaults.batch_sizes == [1, 2, 4, 8]


# -- 5. generation on backends that cannot generate is recorded ------------------------------------------------
@pytest.mark.parametrize("module, cls", [("openvino", "OpenVINOBackend"), ("webgpu", "WebGPUBackend"),
                                         ("webnn", "WebNNBackend")])
def test_generation_on_a_backend_without_it_says_not_run(module, cls):
    """Before: {} - the row read as a plain ok, as if --generate-tokens had not been given."""
    import importlib

    backend = getattr(importlib.import_module(f"runners.backends.{module}"), cls)()
    generative = SimpleNamespace(generative=True)
    error = backend.generation_metrics(generative, None, 8, 1)["generation_error"]
    assert error.startswith("not run: ") and backend.name in error
    assert backend.generation_metrics(SimpleNamespace(generative=False), None, 8, 1) == {}
    assert backend.generation_metrics(generative, None, 0, 1) == {}


# -- 8. "generation not run: not run: ..." ---------------------------------------------------------------------
def test_generation_not_run_is_said_once(caplog):
    from runners import engine
    from runners.backends.base import Prepared
    from runners.measure import Measurement, latency_stats

    spec = SimpleNamespace(name="m", modality="text", generative=True)
    prepared = Prepared(call=lambda: None, precision_used="fp32", items=1, info={})
    measurement = Measurement(samples_ms=[1.0, 1.1], warmup_iterations=1, total_time_s=0.01)
    out = engine._Collector()
    with caplog.at_level(logging.WARNING, logger="benchmark_db.runners"):
        engine._add_result(spec, "openvino", "dev", 1, 32, "fp32", prepared, measurement,
                           {"generation_error": "not run: generation is not supported on openvino"}, 1, 1000,
                           SimpleNamespace(is_emulated=False), engine.RunSettings(), out, latency_stats)
    assert "generation not run: generation is not supported on openvino" in caplog.text
    assert "not run: not run" not in caplog.text
    assert out.summary[0]["status"].endswith("generation not run")
    assert out.results[0]["metrics"]["generation_error"].startswith("not run")


# -- 6. --visualize-from-db keeps the runner's log and says where the report is --------------------------------
@pytest.mark.slow
def test_visualize_from_db_prints_the_report_path(tmp_path, capsys):
    """Before: the visualizer's --quiet set the benchmark_db logger to WARNING: no 'report:' line."""
    from runners.run_db_integrated_benchmarks import main

    out_dir = tmp_path / "reports"
    assert main(["--db", str(tmp_path / "v.duckdb"), "--model", "bert", "--visualize-from-db", "--output-dir",
                 str(out_dir), *FAST]) == 0
    err = capsys.readouterr().err
    report = out_dir / "benchmark_report.html"
    assert report.is_file() and f"report: {report}" in err
    assert logging.getLogger("benchmark_db").level == logging.INFO


# -- 7. the ingest hint of --no-db-store never passes on a --db that is no database ---------------------------
@pytest.mark.slow
@pytest.mark.parametrize("db", ["x.json", "results.csv"])
def test_no_db_store_hint_leaves_out_a_db_that_is_no_database(tmp_path, monkeypatch, capsys, db):
    from runners import engine

    monkeypatch.setattr(engine, "benchmark_run", lambda *a, **k: (_empty_document(), []))
    path = str(tmp_path / db)
    assert _run(["--no-db-store", "--db", path, "--output-dir", str(tmp_path / "o"), "--model", "bert",
                 *FAST]) == 0
    err = capsys.readouterr().err
    hint = err[err.index("(ingest with"):]
    assert f"--db {path}" not in hint and "--db DATABASE" in hint and "not a DuckDB database" in hint


@pytest.mark.slow
def test_no_db_store_hint_keeps_a_database_path(tmp_path, monkeypatch, capsys):
    from runners import engine

    monkeypatch.setattr(engine, "benchmark_run", lambda *a, **k: (_empty_document(), []))
    path = str(tmp_path / "later.duckdb")
    assert _run(["--no-db-store", "--db", path, "--output-dir", str(tmp_path / "o"), "--model", "bert",
                 *FAST]) == 0
    assert f"--db {path})" in capsys.readouterr().err


# -- 9. torch's per-run thread count is not in the shared hardware_platforms row --------------------------------
@pytest.mark.slow
def test_torch_threads_is_in_the_run_not_the_platform_row():
    """Before: hardware_platforms.metadata.torch_threads: the last direct store (or first merge) won."""
    from runners.backends.cpu import CPUBackend
    from runners.measure import capture_environment

    assert "torch_threads" not in (CPUBackend().detect().metadata or {})
    assert isinstance(capture_environment()["torch_threads"], int)

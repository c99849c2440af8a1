"""Runners as a new user meets them: bad options, bad databases, interruption, precision fallbacks, honest figures.

Each test here failed before the fix it guards (see the QA report of the runner sweep); real tiny models, real
DuckDB files in tmp_path, nothing of the runner mocked.
"""
from __future__ import annotations

import importlib.util
import json
import signal
import subprocess
import sys
import time

import pytest

if importlib.util.find_spec("torch") is None or importlib.util.find_spec("transformers") is None:
    pytest.skip("the runners need torch and transformers", allow_module_level=True)

FAST = ["--warmup", "1", "--min-iterations", "2", "--min-duration", "0", "--sequence-lengths", "8",
        "--generate-tokens", "0", "--quiet"]


def _rows(db, sql):
    import duckdb

    with duckdb.connect(db, read_only=True) as conn:
        return conn.execute(sql).fetchall()


def _one_error_line(err: str, code: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines and lines[-1].startswith(f"error {code}:"), err
    assert "Traceback" not in err
    return lines[-1]


# -- options ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("flag, value, message", [
    ("--threads", "0", "--threads must be at least 1"),  # was silently ignored: the run used torch's default
    ("--threads", "-2", "--threads must be at least 1"),  # was "error: unexpected RuntimeError ... report it"
    ("--min-iterations", "-3", "--min-iterations must be at least 1"),  # said "pass 0 or more", then refused 0
    ("--memory-budget-gb", "0", "--memory-budget-gb must be more than 0"),  # skipped every model instead
    ("--memory-budget-gb", "-1", "--memory-budget-gb must be more than 0"),
])
def test_bad_measurement_options_are_one_usage_line(tmp_path, capsys, flag, value, message):
    from runners.run_benchmark_with_db import main

    db = str(tmp_path / "x.duckdb")
    code = main(["--db", db, "--model", "bert", "--batch-sizes", "1", *FAST, flag, value])
    line = _one_error_line(capsys.readouterr().err, "DB000")
    assert code == 2 and message in line
    assert not (tmp_path / "x.duckdb").exists()  # nothing measured, nothing stored


def test_repeated_sizes_are_measured_once():
    from runners import run_model_benchmarks
    from runners.engine import settings_from_args

    args = run_model_benchmarks.build_parser().parse_args(["--batch-sizes", "1,2,1,2", "--sequence-lengths", "8,8"])
    settings = settings_from_args(args)
    # before: measured 4x2 times, summary showed every cell "ok", the database kept one row per key
    assert settings.batch_sizes == [1, 2] and settings.sequence_lengths == [8]


@pytest.mark.slow  # measures the same cell twice before the fix
def test_repeated_batch_size_stores_every_reported_cell(tmp_path, capsys):
    from runners.run_benchmark_with_db import main

    db = str(tmp_path / "rep.duckdb")
    assert main(["--db", db, "--model", "bert", "--batch-sizes", "1,1", *FAST]) == 0
    reported = [line for line in capsys.readouterr().out.splitlines() if line.startswith("bert-tiny-random")]
    stored = _rows(db, "SELECT count(*) FROM performance_results")[0][0]
    assert len(reported) == stored == 1


# -- databases -------------------------------------------------------------------------------------------------
def test_corrupt_database_is_reported_before_measuring(tmp_path, capsys):
    from runners.run_benchmark_with_db import main

    db = tmp_path / "corrupt.duckdb"
    db.write_text("not a database\n")
    started = time.perf_counter()
    # --min-duration 20: before the fix the whole cell was measured, then storing failed with DB001
    code = main(["--db", str(db), "--model", "bert", "--batch-sizes", "1", "--min-duration", "20", "--quiet",
                 "--output-dir", str(tmp_path / "out")])
    elapsed = time.perf_counter() - started
    _one_error_line(capsys.readouterr().err, "DB001")
    assert code == 3 and elapsed < 15


@pytest.mark.slow  # about 1 s or more: outside make test-fast
def test_database_in_a_missing_folder_is_created(tmp_path):
    from runners.run_benchmark_with_db import main

    db = tmp_path / "new" / "folder" / "bench.duckdb"
    assert main(["--db", str(db), "--model", "bert", "--batch-sizes", "1", *FAST]) == 0
    assert _rows(str(db), "SELECT count(*) FROM performance_results")[0][0] == 1


def test_no_db_store_output_dir_in_the_way_is_reported_before_measuring(tmp_path, capsys):
    from runners.run_model_benchmarks import main

    blocker = tmp_path / "afile"
    blocker.write_text("")
    started = time.perf_counter()
    # before: the cell was measured, then "error: unexpected FileExistsError ... report it" and the run was lost
    code = main(["--no-db-store", "--output-dir", str(blocker / "sub"), "--model", "bert", "--batch-sizes", "1",
                 "--min-duration", "20", "--quiet"])
    line = _one_error_line(capsys.readouterr().err, "DB000")
    assert code == 2 and "--output-dir" in line and time.perf_counter() - started < 15


# -- interruption ----------------------------------------------------------------------------------------------
@pytest.mark.slow  # a subprocess that imports torch, then Ctrl-C
def test_ctrl_c_stores_nothing_and_says_so(tmp_path, repo_root):
    db = tmp_path / "int.duckdb"
    proc = subprocess.Popen(
        [sys.executable, str(repo_root / "runners" / "run_model_benchmarks.py"), "--db", str(db), "--model", "bert",
         "--batch-sizes", "1,2", "--min-duration", "60", "--generate-tokens", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        for line in proc.stderr:  # "cpu: available" comes after the database check, just before measuring
            if "cpu: available" in line:
                break
        time.sleep(1.5)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    last = [line for line in err.splitlines() if line.strip()][-1]
    # before: "committed work is kept and a re-run continues from there", which is not what a runner does
    assert "nothing of this run was stored" in last and "Traceback" not in err
    assert _rows(str(db), "SELECT count(*) FROM test_runs")[0][0] == 0
    assert _rows(str(db), "SELECT count(*) FROM performance_results")[0][0] == 0


@pytest.mark.slow  # two processes: the runner and one that takes the database's lock while it measures
def test_results_survive_a_database_locked_at_store_time(tmp_path, repo_root):
    db = tmp_path / "locked.duckdb"
    out_dir = tmp_path / "saved"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time, duckdb\n"
         "time.sleep(float(sys.argv[2])); conn = duckdb.connect(sys.argv[1]); print('locked', flush=True)\n"
         "time.sleep(60)", str(db), "3"], stdout=subprocess.PIPE, text=True)
    try:
        runner = subprocess.run(
            [sys.executable, str(repo_root / "runners" / "run_benchmark_with_db.py"), "--db", str(db), "--model",
             "bert", "--batch-sizes", "1", "--min-duration", "6", "--generate-tokens", "0", "--lock-timeout", "1",
             "--output-dir", str(out_dir), "--quiet"], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    finally:
        holder.kill()
        holder.wait()
    last = [line for line in runner.stderr.splitlines() if line.strip()][-1]
    # before: DB001 and the measurements were gone; now they wait in a file the updater ingests
    assert runner.returncode == 3 and last.startswith("error DB001:") and "measurements were saved to" in last
    saved = list(out_dir.glob("benchmark_*.json"))
    assert len(saved) == 1 and str(saved[0]) in last
    import benchmark_db_updater

    assert benchmark_db_updater.main(["--input-file", str(saved[0]), "--db", str(db), "--quiet"]) == 0
    assert _rows(str(db), "SELECT count(*) FROM performance_results")[0][0] == 1


# -- models ----------------------------------------------------------------------------------------------------
@pytest.mark.slow  # builds and runs T5: about 5 s
def test_t5_generates_tokens():
    from runners.backends.cpu import CPUBackend
    from runners.models import select_models

    spec = select_models("small", ["t5"])[0]
    backend = CPUBackend()
    model = spec.build()
    prepared = backend.prepare(spec, model, spec.inputs(model, 1, 8), "fp32")
    metrics = backend.generation_metrics(spec, prepared, 2, 1)
    # before: "ValueError: `decoder_start_token_id` or `bos_token_id` has to be defined" and no tokens/s
    assert "generation_error" not in metrics, metrics
    assert metrics["tokens_per_second"] > 0 and metrics["time_to_first_token_ms"] > 0
    assert select_models("key", ["t5-small"])[0].config().decoder_start_token_id == 0


@pytest.mark.slow  # over a second
def test_checkpoint_in_current_or_generic_folder_gets_a_real_name(tmp_path, monkeypatch):
    from transformers import BertConfig

    from runners.models import checkpoint_spec

    folder = tmp_path / "my-bert" / "model"
    folder.mkdir(parents=True)
    BertConfig(vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
               intermediate_size=32).save_pretrained(folder)
    assert checkpoint_spec(str(folder)).name == "my-bert/model"  # before: "model"
    monkeypatch.chdir(folder)
    assert checkpoint_spec(".").name == "my-bert/model"  # before: "" (then DB003 after the whole run)
    assert checkpoint_spec(str(tmp_path / "my-bert" / "model") + "/").name == "my-bert/model"


# -- honest figures --------------------------------------------------------------------------------------------
@pytest.mark.slow  # about 1 s or more: outside make test-fast
def test_stored_figures_are_consistent_and_labelled(tmp_path):
    from runners.run_benchmark_with_db import main

    db = str(tmp_path / "m.duckdb")
    assert main(["--db", db, "--model", "bert", "--hardware", "cpu", "cuda", "--batch-sizes", "2",
                 "--precision", "fp32,fp16", *FAST]) == 0
    rows = _rows(db, "SELECT precision, batch_size, average_latency_ms, throughput_items_per_second, iterations, "
                     "latency_samples_ms, warmup_iterations, memory_peak_mb, is_simulated, metrics "
                     "FROM performance_results ORDER BY precision")
    assert [r[0] for r in rows] == ["fp16", "fp32"]  # fp16 on the CPU is run in fp16 (checked in the backend)
    for precision, batch, mean_ms, throughput, iterations, samples, warmup, memory, simulated, metrics in rows:
        metrics = json.loads(metrics)
        assert metrics["requested_precision"] == precision and simulated is False
        # warm-up calls are not samples; --warmup 1 is a minimum (warm-up goes on until the calls stop speeding up)
        assert iterations == len(samples) == 2 and warmup >= 1 and metrics["warmup_requested"] == 1
        assert throughput == pytest.approx(batch / (mean_ms / 1000.0))
        assert mean_ms == pytest.approx(sum(samples) / len(samples))
        assert memory == metrics["host_peak_rss_mb"]
        # before: nothing said whether memory_peak_mb was device memory or the host process's RSS
        assert "resident set size" in metrics["memory_peak_measures"]
    compat = _rows(db, "SELECT h.hardware_type, c.is_compatible, c.error_type FROM hardware_compatibility c "
                       "JOIN hardware_platforms h USING (hardware_id) WHERE h.hardware_type = 'cuda'")
    assert compat == [("cuda", False, "platform_unavailable")]
    assert _rows(db, "SELECT count(*) FROM performance_results p JOIN hardware_platforms h USING (hardware_id) "
                     "WHERE h.hardware_type = 'cuda'")[0][0] == 0


@pytest.mark.slow  # over a second
def test_cpu_fp16_really_runs_in_fp16():
    import torch

    from runners.backends.cpu import CPUBackend
    from runners.models import select_models

    spec = select_models("small", ["vit"])[0]
    model = spec.build()
    prepared = CPUBackend().prepare(spec, model, spec.inputs(model, 1, 8), "fp16")
    assert prepared.precision_used == "fp16"
    assert {p.dtype for p in prepared.model.parameters()} == {torch.float16}
    assert prepared.call().last_hidden_state.dtype == torch.float16


@pytest.mark.slow  # converts the model to OpenVINO and compiles it three times
@pytest.mark.skipif(importlib.util.find_spec("openvino") is None, reason="openvino is not installed")
def test_openvino_precision_fallback_does_not_replace_another_row(tmp_path, capsys):
    import openvino as ov

    from runners.run_benchmark_with_db import main

    if "FP16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
        pytest.skip("this CPU runs f16 in OpenVINO: no fallback to observe")
    db = str(tmp_path / "ov.duckdb")
    assert main(["--db", db, "--model", "bert", "--hardware", "openvino", "--batch-sizes", "2",
                 "--precision", "fp32,fp16,bf16", *FAST]) == 0
    out = capsys.readouterr().out
    ok = [line for line in out.splitlines() if line.startswith("bert-tiny-random") and " ok" in line]
    stored = _rows(db, "SELECT precision, metrics->>'requested_precision' FROM performance_results ORDER BY 1")
    # before: fp16 ran as bf16 and was reported ok, then the real bf16 row replaced it in the database
    assert len(ok) == len(stored)
    assert all(used == requested for used, requested in stored)
    assert "fp16 requested: openvino runs it as" in out

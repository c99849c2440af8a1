"""Runners: statistics, the runner JSON format, options, absent platforms (fast tests, no model runs)."""
from __future__ import annotations

import hashlib
import json
import math
import subprocess
import sys
import time

import pytest

from benchmark_db import identity
from benchmark_db.errors import DataConversionError, UsageError
from benchmark_db.runner_format import FORMAT_VERSION, PRODUCER, document_from_run, records_from_document
from runners.measure import HIGH_CV, latency_stats, measure_calls, percentile


# -- statistics ------------------------------------------------------------------------------------------------
def test_latency_stats_on_known_samples():
    stats = latency_stats([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0])
    assert stats["mean_ms"] == pytest.approx(5.5)
    assert stats["p50_ms"] == pytest.approx(5.5)
    assert stats["p90_ms"] == pytest.approx(9.1)
    assert stats["p95_ms"] == pytest.approx(9.55)
    assert stats["p99_ms"] == pytest.approx(9.91)
    assert stats["stddev_ms"] == pytest.approx(math.sqrt(82.5 / 9))  # sample stddev
    assert stats["cv"] == pytest.approx(math.sqrt(82.5 / 9) / 5.5)
    assert stats["min_ms"] == 1.0 and stats["max_ms"] == 10.0 and stats["count"] == 10
    assert stats["high_cv"] is True  # 55 % spread


def test_latency_stats_match_numpy():
    np = pytest.importorskip("numpy")
    samples = [0.91, 1.2, 1.05, 0.99, 1.4, 1.01, 0.97, 1.13, 1.0, 1.02, 0.95]
    stats = latency_stats(samples)
    for q in (50, 90, 95, 99):
        assert stats[f"p{q}_ms"] == pytest.approx(float(np.percentile(samples, q)))
    assert stats["stddev_ms"] == pytest.approx(float(np.std(samples, ddof=1)))


def test_stable_samples_are_not_flagged_and_single_sample_works():
    stats = latency_stats([10.0, 10.1, 9.9, 10.05, 9.95])
    assert stats["cv"] < HIGH_CV and stats["high_cv"] is False
    one = latency_stats([4.2])
    assert one["p99_ms"] == 4.2 and one["stddev_ms"] == 0.0
    with pytest.raises(ValueError):
        latency_stats([])
    assert percentile([1.0, 3.0], 50) == 2.0


def test_measure_calls_meets_both_count_and_duration():
    calls = []
    m = measure_calls(lambda: calls.append(1), warmup=3, min_iterations=7, min_duration_s=0.0)
    assert m.iterations == 7 and len(calls) == 10 and m.warmup_iterations == 3
    # a call of about 0.2 ms: the 0.05 s minimum duration, not the count of 1, ends the measurement
    m = measure_calls(lambda: time.sleep(0.0002), warmup=0, min_iterations=1, min_duration_s=0.05)
    assert m.total_time_s >= 0.05 and m.iterations > 1
    assert m.peak_rss_mb and m.peak_rss_mb > 1
    assert all(s >= 0 for s in m.samples_ms)


def test_measure_calls_synchronizes_each_call_and_resets_before_measuring():
    events = []
    measure_calls(lambda: events.append("call"), lambda: events.append("sync"), warmup=1, min_iterations=2,
                  min_duration_s=0, before_measured=lambda: events.append("reset"), track_rss=False)
    assert events == ["call", "sync", "reset", "call", "sync", "call", "sync"]


# -- runner document -------------------------------------------------------------------------------------------
def _document():
    import datetime as dt

    run = {"test_name": "model_benchmarks", "test_type": "performance", "started_at": dt.datetime(2026, 1, 2, 3, 4, 5),
           "completed_at": dt.datetime(2026, 1, 2, 3, 5, 0), "execution_time_seconds": 55.0, "success": True,
           "git_commit": "abc", "git_branch": "main", "command_line": "run_model_benchmarks.py --models-set small",
           "environment": {"python": "3.11", "versions": {"torch": "2.13"}}, "metadata": {"k": 1}}
    models = [{"model_name": "bert-tiny-random", "model_family": "bert", "modality": "text",
               "parameters_million": 0.17, "source": "random weights from config"}]
    hardware = [{"hardware_type": "cpu", "device_name": "AMD EPYC", "platform": "pytorch", "compute_units": 2},
                {"hardware_type": "cuda", "device_name": None, "metadata": {"unavailable_reason": "no cuda"}}]
    results = [{"model_name": "bert-tiny-random", "hardware_type": "cpu", "device_name": "AMD EPYC",
                "test_case": "inference", "batch_size": 1, "sequence_length": 32, "precision": "fp32",
                "total_time_seconds": 0.1, "average_latency_ms": 1.5, "latency_p50_ms": 1.4, "latency_p90_ms": 1.9,
                "latency_p95_ms": 2.0, "latency_p99_ms": 2.1, "latency_stddev_ms": 0.2,
                "throughput_items_per_second": 666.7, "memory_peak_mb": 400.0, "iterations": 3,
                "warmup_iterations": 2, "latency_samples_ms": [1.4, 1.2, 1.9], "is_simulated": False,
                "metrics": {"cv": 0.13, "high_cv": True}}]
    compat = [{"model_name": "bert-tiny-random", "hardware_type": "cuda", "device_name": None, "is_compatible": False,
               "detection_success": False, "error_message": "no cuda", "error_type": "platform_unavailable"}]
    return document_from_run(run, models, hardware, results, compat, [])


def test_document_is_versioned_json():
    doc = _document()
    assert doc["format_version"] == FORMAT_VERSION and doc["producer"] == PRODUCER == "benchmark-db-runner"
    again = json.loads(json.dumps(doc))
    assert again == doc
    assert doc["run"]["started_at"] == "2026-01-02T03:04:05"


def test_records_from_document_file_identity():
    doc = json.loads(json.dumps(_document()))
    sha = hashlib.sha256(b"x").hexdigest()
    records = records_from_document(doc, "auto_store_results/a.json", sha)
    run = next(r for r in records if r.TABLE == "test_runs")
    assert run.run_id == identity.stable_id("source", sha)
    assert run.source_path == "auto_store_results/a.json" and run.source_sha256 == sha
    perf = next(r for r in records if r.TABLE == "performance_results")
    assert perf.run_id == run.run_id and perf.latency_samples_ms == [1.4, 1.2, 1.9]
    assert perf.model_id == identity.model_id_for("bert-tiny-random")
    assert perf.hardware_id == identity.hardware_id_for("cpu", "AMD EPYC")
    compat = next(r for r in records if r.TABLE == "hardware_compatibility")
    assert compat.is_compatible is False and compat.hardware_id == identity.hardware_id_for("cuda", None)
    direct = records_from_document(doc)
    direct_run = next(r for r in direct if r.TABLE == "test_runs")
    assert direct_run.run_id != run.run_id and direct_run.source_sha256 is None


def test_document_round_trip_through_the_database(tmp_path, fresh_db):
    from benchmark_db_models import BenchmarkDB

    doc = _document()
    path = tmp_path / "doc.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    text = path.read_bytes()
    fresh_db.insert_many(records_from_document(json.loads(text), str(path), hashlib.sha256(text).hexdigest()))
    other = str(tmp_path / "direct.duckdb")
    with BenchmarkDB(other) as db:
        db.insert_many(records_from_document(doc))
        direct = db.conn.execute("SELECT * EXCLUDE (result_id, run_id, created_at) FROM performance_results").fetchall()
    via_file = fresh_db.conn.execute(
        "SELECT * EXCLUDE (result_id, run_id, created_at) FROM performance_results").fetchall()
    assert via_file == direct and len(direct) == 1
    row = fresh_db.conn.execute("SELECT model, hardware, device, latency_ms, is_simulated FROM benchmark_performance"
                                ).fetchone()
    assert row == ("bert-tiny-random", "cpu", "AMD EPYC", 1.5, False)


@pytest.mark.parametrize("bad, message", [
    ({"producer": "someone-else", "format_version": 1}, "not a benchmark-db-runner document"),
    ({"producer": PRODUCER, "format_version": 99, "run": {"test_name": "x"}}, "newer"),
    ({"producer": PRODUCER, "format_version": 1, "run": {}}, "no test_name"),
    ({"producer": PRODUCER, "format_version": 1, "run": {"test_name": "x", "started_at": "yesterday"}}, "ISO"),
])
def test_bad_documents_raise_db003(bad, message):
    with pytest.raises(DataConversionError, match=message):
        records_from_document(bad, "f.json", "0" * 64)


# -- options -----------------------------------------------------------------------------------------------------
def test_parsers_accept_the_guides_flags():
    from runners import run_benchmark_with_db, run_db_integrated_benchmarks, run_model_benchmarks
    from runners.engine import settings_from_args

    for module in (run_model_benchmarks, run_benchmark_with_db, run_db_integrated_benchmarks):
        args = module.build_parser().parse_args(
            ["--db-path", "x.duckdb", "--models-set", "small", "--hardware", "cuda", "cpu", "--batch-sizes", "1,2,4,8",
             "--model", "bert", "--model", "t5,vit", "--precision", "fp32,bf16", "--no-db-store"])
        settings = settings_from_args(args)
        assert args.db == "x.duckdb" and settings.hardware == ["cuda", "cpu"]
        assert settings.batch_sizes == [1, 2, 4, 8] and settings.models == ["bert", "t5", "vit"]
        assert settings.precisions == ["fp32", "bf16"]
    key = settings_from_args(run_model_benchmarks.build_parser().parse_args(["--models-set", "key"]))
    assert key.batch_sizes == [1] and key.sequence_lengths == [128]


@pytest.mark.slow  # over 1.5 s: outside make test-fast
def test_bad_options_exit_2_with_one_line(capsys):
    from runners.run_model_benchmarks import main

    assert main(["--precision", "fp64", "--no-db-store"]) == 2
    err = capsys.readouterr().err
    assert "error DB000" in err or "error DB" in err
    assert "Traceback" not in err
    assert main(["--hardware", "tpu", "--no-db-store"]) == 2
    assert "unknown hardware" in capsys.readouterr().err
    assert main(["--model", "no-such-model", "--no-db-store"]) == 2
    assert "unknown model" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--batch-sizes", "one"])


def test_model_selection():
    from runners.models import FAMILIES, model_set, select_models

    small = model_set("small")
    assert {s.family for s in small} == set(FAMILIES)
    assert any(s.name == "all-MiniLM-L6-v2" and s.checkpoint for s in small)
    key_names = [s.name for s in model_set("key")]
    assert "bert-base-uncased" in key_names and "t5-small" in key_names and "TinyLlama-1.1B" in key_names
    assert [s.name for s in select_models("key", ["bert", "t5-small"])] == ["bert-base-uncased", "t5-small"]
    assert select_models("small", ["bert"])[0].name == "bert-tiny-random"
    with pytest.raises(UsageError):
        select_models("small", ["gpt-17"])


def test_help_is_fast_and_imports_no_torch(repo_root):
    code = ("import sys; sys.argv=['x','--help']\n"
            "import runners.run_model_benchmarks as m\n"
            "try:\n    m.main(['--help'])\nexcept SystemExit:\n    pass\n"
            "assert 'torch' not in sys.modules and 'transformers' not in sys.modules, 'heavy import'\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=repo_root, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "--models-set" in out.stdout


# -- absent platforms ------------------------------------------------------------------------------------------
@pytest.mark.slow  # about 1 s or more: outside make test-fast
def test_absent_platforms_say_why():
    torch = pytest.importorskip("torch")
    from runners.backends.cuda import CUDABackend
    from runners.backends.mps import MPSBackend
    from runners.backends.rocm import ROCmBackend

    for backend, present in ((CUDABackend(), torch.cuda.is_available() and not torch.version.hip),
                             (ROCmBackend(), bool(getattr(torch.version, "hip", None)) and torch.cuda.is_available()),
                             (MPSBackend(), torch.backends.mps.is_available())):
        det = backend.detect()
        assert det.available == bool(present)
        if not det.available:
            assert det.reason and len(det.reason) > 20


def test_web_backends_without_harness_or_browser_say_why(monkeypatch):
    import runners.backends.web as web

    monkeypatch.setattr(web, "_harness", lambda: None)
    from runners.backends.webgpu import WebGPUBackend
    from runners.backends.webnn import WebNNBackend

    for backend in (WebGPUBackend(), WebNNBackend()):
        det = backend.detect()
        assert not det.available and "browser harness not installed" in det.reason


def test_software_adapters_are_emulation():
    from runners.backends.web import is_software_adapter

    assert is_software_adapter("Google SwiftShader")
    assert is_software_adapter("llvmpipe (LLVM 15.0.6, 256 bits)")
    assert not is_software_adapter("NVIDIA GeForce RTX 4090")

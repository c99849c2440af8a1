"""Runners end to end: real tiny models through the engine into temporary databases."""
from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import os
import sys

import pytest

# find_spec rather than importorskip: importing torch and transformers here cost every test run, the fast
# core included, about 4 s of collection; the tests import what they use
if importlib.util.find_spec("torch") is None or importlib.util.find_spec("transformers") is None:
    pytest.skip("the runners need torch and transformers", allow_module_level=True)

FAST = ["--warmup", "1", "--min-iterations", "3", "--min-duration", "0", "--sequence-lengths", "8", "--quiet"]


def _rows(db, sql):
    import duckdb

    with duckdb.connect(db, read_only=True) as conn:
        return conn.execute(sql).fetchall()


@pytest.mark.slow
def test_tiny_bert_on_cpu_and_absent_cuda(tmp_path, capsys):
    from runners.run_model_benchmarks import main

    db = str(tmp_path / "runs.duckdb")
    assert main(["--db", db, "--model", "bert", "--hardware", "cuda", "cpu", "--batch-sizes", "1,2", *FAST]) == 0
    out = capsys.readouterr().out
    assert "bert-tiny-random" in out and "skipped" in out  # summary table on stdout
    perf = _rows(db, "SELECT model_name, hardware_type, batch_size, sequence_length, precision, iterations, "
                     "len(latency_samples_ms), average_latency_ms, latency_p50_ms, latency_p99_ms, "
                     "throughput_items_per_second, memory_peak_mb, is_simulated, metrics FROM performance_results "
                     "ORDER BY batch_size")
    assert [(r[0], r[1], r[2], r[3], r[4]) for r in perf] == [("bert-tiny-random", "cpu", 1, 8, "fp32"),
                                                              ("bert-tiny-random", "cpu", 2, 8, "fp32")]
    for row in perf:
        assert row[5] >= 3 and row[6] == row[5]
        assert 0 < row[8] <= row[9] and row[7] > 0
        assert row[10] == pytest.approx(row[2] / (row[7] / 1000))
        assert row[11] > 10 and row[12] is False
        metrics = json.loads(row[13])
        assert {"cv", "high_cv", "parameters_million", "host_peak_rss_mb"} <= set(metrics)
    compat = _rows(db, "SELECT h.hardware_type, c.is_compatible, c.error_message, c.error_type FROM "
                       "hardware_compatibility c JOIN hardware_platforms h USING (hardware_id) ORDER BY 1")
    assert compat[0][:2] == ("cpu", True)
    assert compat[1][0] == "cuda" and compat[1][1] is False and compat[1][3] == "platform_unavailable"
    assert "CUDA" in compat[1][2]
    run = _rows(db, "SELECT test_name, command_line, environment, git_commit FROM test_runs")
    assert len(run) == 1 and run[0][0] == "model_benchmarks" and "--hardware cuda cpu" in run[0][1]
    env = json.loads(run[0][2])
    assert env["versions"]["torch"] and env["cpu_logical_cores"] >= 1 and "accelerators" in env
    assert env["accelerators"]["cuda"]["available"] is False
    params = _rows(db, "SELECT parameters_million FROM models WHERE model_name = 'bert-tiny-random'")[0][0]
    assert params == pytest.approx(0.17, abs=0.01)


@pytest.mark.slow
def test_generative_model_reports_tokens_per_second(tmp_path):
    from runners.run_benchmark_with_db import main

    db = str(tmp_path / "gen.duckdb")
    assert main(["--db", db, "--model", "llama", "--hardware", "cpu", "--batch-sizes", "2", "--generate-tokens", "4",
                 *FAST]) == 0
    metrics = json.loads(_rows(db, "SELECT metrics FROM performance_results")[0][0])
    assert metrics["tokens_per_second"] > 0 and metrics["time_to_first_token_ms"] > 0
    assert metrics["generated_tokens"] == 4


@pytest.mark.slow
def test_no_db_store_file_ingests_to_the_same_rows(tmp_path):
    from benchmark_db.runner_format import records_from_document
    from benchmark_db_models import BenchmarkDB
    from runners.engine import store_document
    from runners.run_db_integrated_benchmarks import main

    out_dir = tmp_path / "auto_store_results"
    assert main(["--no-db-store", "--output-dir", str(out_dir), "--model", "vit", "--hardware", "cpu", "mps",
                 "--batch-sizes", "1", *FAST]) == 0
    files = list(out_dir.glob("*.json"))
    assert len(files) == 1
    raw = files[0].read_bytes()
    doc = json.loads(raw)
    assert doc["producer"] == "benchmark-db-runner" and doc["format_version"] == 1
    via_file = str(tmp_path / "file.duckdb")
    with BenchmarkDB(via_file) as db:
        db.insert_many(records_from_document(doc, str(files[0]), hashlib.sha256(raw).hexdigest()))
    direct = str(tmp_path / "direct.duckdb")
    store_document(doc, direct, 5.0)
    sql = "SELECT * EXCLUDE (result_id, run_id, created_at) FROM performance_results ORDER BY batch_size"
    assert _rows(via_file, sql) == _rows(direct, sql) and len(_rows(direct, sql)) == 1
    compat = "SELECT * EXCLUDE (compatibility_id, run_id, created_at) FROM hardware_compatibility ORDER BY hardware_id"
    assert _rows(via_file, compat) == _rows(direct, compat)
    assert _rows(via_file, "SELECT source_sha256 FROM test_runs")[0][0] == hashlib.sha256(raw).hexdigest()


@pytest.mark.slow
def test_model_too_big_is_skipped_with_a_reason(tmp_path):
    from runners.run_model_benchmarks import main

    db = str(tmp_path / "big.duckdb")
    assert main(["--db", db, "--models-set", "key", "--model", "llava", "--hardware", "cpu", *FAST]) == 1  # nothing measured
    assert _rows(db, "SELECT count(*) FROM performance_results")[0][0] == 0
    row = _rows(db, "SELECT error_type, error_message FROM hardware_compatibility")[0]
    assert row[0] == "insufficient_memory" and "parameters" in row[1] and "GB" in row[1]
    params = _rows(db, "SELECT parameters_million FROM models")[0][0]
    assert params > 6000  # counted on the meta device, never allocated


@pytest.mark.slow
def test_memory_budget_skips_and_precisions(tmp_path, capfd):
    from runners.run_model_benchmarks import main

    db = str(tmp_path / "prec.duckdb")
    assert main(["--db", db, "--model", "bert", "--hardware", "cpu", "--batch-sizes", "1", "--precision",
                 "bf16,int8", *FAST]) == 0
    rows = _rows(db, "SELECT precision, metrics->>'requested_precision' FROM performance_results ORDER BY 1")
    assert rows == [("bf16", "bf16"), ("int8", "int8")]
    db2 = str(tmp_path / "budget.duckdb")
    # every cell skipped: the rows saying why are stored, and the run exits 1 so a CI job cannot pass on nothing
    assert main(["--db", db2, "--model", "bert", "--hardware", "cpu", "--memory-budget-gb", "0.01", *FAST]) == 1
    assert _rows(db2, "SELECT error_type FROM hardware_compatibility")[0][0] == "insufficient_memory"
    assert "nothing was measured: all 1 cells were skipped" in capfd.readouterr().err


@pytest.mark.slow
def test_real_minilm_and_openvino_precision(tmp_path):
    ov = pytest.importorskip("openvino")
    from runners.run_model_benchmarks import main

    # CPUs without AVX512-BF16/AMX (the AMD EPYC of some CI hosts) run a bf16 request as fp32: the runner
    # then measures it once, as fp32, and says why it skipped bf16
    runs_bf16 = "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    db = str(tmp_path / "ov.duckdb")
    assert main(["--db", db, "--model", "all-MiniLM-L6-v2", "--hardware", "openvino", "--batch-sizes", "1",
                 "--precision", "fp32,bf16", *FAST]) == 0
    rows = _rows(db, "SELECT precision, metrics->>'$.backend.inference_precision_hint_used', average_latency_ms "
                     "FROM performance_results ORDER BY precision")
    # what the compiled model reports, read back
    assert [r[0] for r in rows] == (["bf16", "fp32"] if runs_bf16 else ["fp32"])
    assert rows[-1][1] == "f32" and all(r[2] > 0 for r in rows)
    model = _rows(db, "SELECT parameters_million, source FROM models")[0]
    assert model[0] == pytest.approx(22.7, abs=0.1) and model[1].startswith("pretrained checkpoint")


@pytest.mark.slow
def test_local_checkpoint(tmp_path):
    from runners.models import model_set
    from runners.run_model_benchmarks import main

    spec = next(s for s in model_set("small") if s.family == "vit")
    spec.build().save_pretrained(tmp_path / "my-vit")
    db = str(tmp_path / "ckpt.duckdb")
    assert main(["--db", db, "--model-path", str(tmp_path / "my-vit"), "--hardware", "cpu", "--batch-sizes", "1",
                 *FAST]) == 0
    assert _rows(db, "SELECT model_name, model_family FROM models") == [("my-vit", "vit")]
    assert _rows(db, "SELECT count(*) FROM performance_results")[0][0] == 1


@pytest.mark.slow
def test_cuda_backend_on_a_gpu():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available() or torch.version.hip:
        pytest.skip(f"no CUDA device here (torch {torch.__version__}, torch.version.cuda={torch.version.cuda})")
    from runners.backends.cuda import CUDABackend
    from runners.models import model_set

    backend = CUDABackend()
    spec = next(s for s in model_set("small") if s.family == "bert")
    model = spec.build()
    prepared = backend.prepare(spec, model, spec.inputs(model, 2, 8), "fp16")
    m = backend.measure(prepared, warmup=1, min_iterations=3, min_duration_s=0)
    assert m.iterations >= 3 and m.device_peak_mb > 0
    assert next(model.parameters()).device.type == "cpu"  # the shared host model was not moved


def test_rocm_backend_on_an_amd_gpu():
    # importing torch costs over a second; a CPU or CUDA build on a machine without AMD's GPU driver (/dev/kfd)
    # cannot see a ROCm device, so that case skips before the import
    try:
        build = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        build = ""
    if build and "rocm" not in build and not os.path.exists("/dev/kfd"):
        pytest.skip(f"no ROCm device here (torch {build}: not a ROCm build, and no /dev/kfd)")
    torch = pytest.importorskip("torch")
    if not getattr(torch.version, "hip", None) or not torch.cuda.is_available():
        pytest.skip(f"no ROCm device here (torch {torch.__version__}, torch.version.hip=None)")
    from runners.backends.rocm import ROCmBackend

    det = ROCmBackend().detect()
    assert det.available and det.platform == "rocm"


def test_mps_backend_on_apple_silicon():
    if sys.platform != "darwin":  # before importing torch (over a second): MPS is macOS only
        pytest.skip("no MPS device here (needs macOS on Apple silicon)")
    torch = pytest.importorskip("torch")
    if not torch.backends.mps.is_available():
        pytest.skip("no MPS device here (needs macOS on Apple silicon)")
    from runners.backends.mps import MPSBackend
    from runners.models import model_set

    backend = MPSBackend()
    spec = next(s for s in model_set("small") if s.family == "bert")
    model = spec.build()
    m = backend.measure(backend.prepare(spec, model, spec.inputs(model, 1, 8), "fp32"), warmup=1, min_iterations=2,
                        min_duration_s=0)
    assert m.iterations >= 2


@pytest.mark.slow
@pytest.mark.browser
def test_webgpu_rows_are_emulated_and_webnn_says_why(tmp_path):
    harness = pytest.importorskip("runners.web.browser_harness")
    missing = harness.missing_prerequisites()
    if missing:
        pytest.skip(missing)
    from runners.run_model_benchmarks import main

    db = str(tmp_path / "web.duckdb")
    assert main(["--db", db, "--model", "bert", "--hardware", "webgpu", "webnn", "--batch-sizes", "1",
                 "--warmup", "1", "--min-iterations", "3", "--min-duration", "0", "--quiet"]) == 0
    perf = _rows(db, "SELECT hardware_type, is_simulated, metrics->>'is_emulated', iterations FROM performance_results")
    assert perf and all(r[0] == "webgpu" and r[1] is False and r[3] >= 3 for r in perf)
    web = _rows(db, "SELECT platform, adapter, is_emulated, success FROM web_platform_results")
    assert web and web[0][0] == "webgpu" and web[0][3] is True
    # a software adapter is emulation, and it is said so
    assert all((r[2] == "true") == bool(w[2]) for r, w in zip(perf, web))
    compat = dict(_rows(db, "SELECT h.hardware_type, c.error_message FROM hardware_compatibility c "
                            "JOIN hardware_platforms h USING (hardware_id) WHERE NOT c.is_compatible"))
    if "webnn" in compat:
        assert compat["webnn"]  # the browser's own message, e.g. "WebNN is not supported on this platform"

"""Realistic sample data for a new database (`create_benchmark_schema.py --sample-data`).

Deterministic (fixed seed and timestamps), so running it twice writes the same ids and adds nothing. The
numbers are a plausible model of latency versus model size, hardware and batch size with lognormal noise;
they are sample data and say so: every run is named `sample_data` and carries `"sample": true` in its
metadata, so nobody mistakes them for measurements.
"""
from __future__ import annotations

import datetime as dt
import random

from benchmark_db_models import (
    BenchmarkDB,
    HardwareCompatibility,
    IntegrationTestResults,
    PerformanceResults,
    TestRuns,
    WebPlatformResults,
)

SAMPLE_MODELS = [  # name, family, modality, parameters (millions)
    ("bert-base-uncased", "bert", "text", 110.0),
    ("t5-small", "t5", "text", 60.5),
    ("google/vit-base-patch16-224", "vit", "vision", 86.6),
    ("openai/whisper-tiny", "whisper", "audio", 39.0),
    ("openai/clip-vit-base-patch32", "clip", "multimodal", 151.3),
]
SAMPLE_HARDWARE = [  # type, device, memory GB, relative speed
    ("cpu", "Intel Xeon Platinum 8375C", 64.0, 1.0),
    ("cuda", "NVIDIA A100-SXM4-40GB", 40.0, 18.0),
    ("openvino", "Intel Xeon Platinum 8375C", 64.0, 1.6),
    ("mps", "Apple M2 Pro", 32.0, 5.0),
]
BATCH_SIZES = (1, 2, 4, 8, 16, 32)
START = dt.datetime(2025, 3, 1, 9, 0, 0)


def add_sample_data(db: BenchmarkDB, days: int = 3) -> dict[str, int]:
    """Write the sample runs into `db` in one transaction; return rows written per table."""
    rng = random.Random(16)
    records: list = []
    counts = {"performance_results": 0, "hardware_compatibility": 0, "integration_test_results": 0,
              "web_platform_results": 0, "test_runs": 0}
    with db.transaction():
        model_ids = {name: db.get_or_add_model(name, model_family=family, modality=modality,
                                               parameters_million=params, source="sample")
                     for name, family, modality, params in SAMPLE_MODELS}
        hw_ids = {kind: db.get_or_add_hardware(kind, device, memory_gb=memory, platform="sample")
                  for kind, device, memory, _ in SAMPLE_HARDWARE}
        for day in range(days):
            started = START + dt.timedelta(days=day)
            run = TestRuns(test_name="sample_data", test_type="performance", started_at=started,
                           completed_at=started + dt.timedelta(minutes=42), execution_time_seconds=2520.0,
                           success=True, git_commit=f"{0xabc000 + day:x}", git_branch="main",
                           command_line="create_benchmark_schema.py --sample-data", metadata={"sample": True})
            run_id = db.insert_test_runs(run)
            counts["test_runs"] += 1
            for name, _family, _modality, params in SAMPLE_MODELS:
                for kind, _device, _memory, speed in SAMPLE_HARDWARE:
                    for batch in BATCH_SIZES:
                        base_ms = (0.9 + params * 0.05 * batch ** 0.85) / speed
                        samples = sorted(round(base_ms * rng.lognormvariate(0, 0.04), 4) for _ in range(20))
                        mean = sum(samples) / len(samples)
                        std = (sum((s - mean) ** 2 for s in samples) / (len(samples) - 1)) ** 0.5
                        records.append(PerformanceResults(
                            run_id=run_id, model_id=model_ids[name], hardware_id=hw_ids[kind], model_name=name,
                            hardware_type=kind, test_case="inference", batch_size=batch, sequence_length=128,
                            precision="fp16" if kind == "cuda" else "fp32", average_latency_ms=mean,
                            latency_p50_ms=samples[9], latency_p90_ms=samples[17], latency_p95_ms=samples[18],
                            latency_p99_ms=samples[19], latency_stddev_ms=std,
                            throughput_items_per_second=batch * 1000.0 / mean,
                            memory_peak_mb=round(params * 4.2 + batch * 12.0, 1), iterations=len(samples),
                            warmup_iterations=5, latency_samples_ms=samples, total_time_seconds=sum(samples) / 1000,
                            metrics={"sample": True}, created_at=started))
            counts["performance_results"] += len(SAMPLE_MODELS) * len(SAMPLE_HARDWARE) * len(BATCH_SIZES)
        last_run = run_id
        # one result produced by a simulator, kept and flagged as such
        records.append(PerformanceResults(
            run_id=last_run, model_id=model_ids["bert-base-uncased"], hardware_id=db.get_or_add_hardware("rocm"),
            model_name="bert-base-uncased", hardware_type="rocm", test_case="inference", batch_size=1,
            sequence_length=128, precision="fp16", average_latency_ms=3.1, throughput_items_per_second=322.6,
            is_simulated=True, metrics={"sample": True, "simulation": "no ROCm device; numbers simulated"},
            created_at=START))
        counts["performance_results"] += 1
        webgpu = db.get_or_add_hardware("webgpu", "SwiftShader (software adapter)")
        webnn = db.get_or_add_hardware("webnn")
        for name, ok, message in (("bert-base-uncased", True, None), ("openai/whisper-tiny", False,
                                  "out of memory while compiling shaders")):
            records.append(HardwareCompatibility(
                run_id=last_run, model_id=model_ids[name], hardware_id=webgpu, is_compatible=ok,
                detection_success=True, initialization_success=ok, error_message=message,
                error_type=None if ok else "OutOfMemory", created_at=START))
        records.append(HardwareCompatibility(
            run_id=last_run, model_id=model_ids["bert-base-uncased"], hardware_id=webnn, is_compatible=False,
            detection_success=False, initialization_success=False,
            error_message="WebNN is not supported on this platform", error_type="NotSupported", created_at=START))
        counts["hardware_compatibility"] += 3
        for test, status in (("test_bert_cpu", "pass"), ("test_vit_cuda", "pass"), ("test_whisper_webgpu", "fail")):
            records.append(IntegrationTestResults(
                run_id=last_run, test_module="test_hardware_backends", test_class="TestBackends", test_name=test,
                status=status, execution_time_seconds=round(rng.uniform(0.5, 4.0), 2),
                hardware_id=hw_ids["cpu"] if "cpu" in test else (hw_ids["cuda"] if "cuda" in test else webgpu),
                error_message=None if status == "pass" else "AssertionError: output mismatch", created_at=START))
        counts["integration_test_results"] += 3
        records.append(WebPlatformResults(
            run_id=last_run, model_id=model_ids["bert-base-uncased"], hardware_id=webgpu, platform="webgpu",
            browser="chromium", adapter="SwiftShader", is_emulated=True, success=True, load_time_ms=412.0,
            initialization_time_ms=95.0, inference_time_ms=38.5, total_time_ms=545.5, created_at=START))
        counts["web_platform_results"] += 1
        db.insert_many(records)
    return counts

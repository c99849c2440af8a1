"""Converter QA (session 17): other versions and set-ups of optimum-benchmark and pytest-benchmark. The documents
copy the layouts of those tools (optimum-benchmark's trackers and environment, pytest-benchmark's
`--benchmark-json` of 3.x and later); each test fails without its fix."""
from __future__ import annotations

import json

from tests.test_converter_qa7 import convert, convert_file, rows


def optimum(device="cuda", sections=None, environment=None, backend=None, scenario_key="scenario") -> dict:
    """A benchmark.json of optimum-benchmark 0.2 on (config + report)."""
    latency = {"unit": "s", "values": [0.02, 0.02], "count": 2, "total": 0.04, "mean": 0.02, "p50": 0.02,
               "p90": 0.02, "p95": 0.02, "p99": 0.02, "stdev": 0.0, "stdev_": 0.0}
    sections = sections or {
        "prefill": {"memory": None, "latency": latency, "throughput": {"unit": "tokens/s", "value": 51200.0},
                    "energy": None, "efficiency": None},
        "forward": {"memory": None, "latency": latency, "throughput": {"unit": "samples/s", "value": 200.0},
                    "energy": None, "efficiency": None}}
    env = {"cpu": " AMD EPYC 7R13 Processor", "cpu_count": 96, "cpu_ram_mb": 25276.502016, "platform": "Linux",
           "gpu": ["NVIDIA A100-SXM4-80GB"], **(environment or {})}
    return {"config": {"name": "gpt2_bench", "backend": {"name": "pytorch", "version": "2.3.1+cu121",
                                                        "model": "openai-community/gpt2", "device": device,
                                                        "torch_dtype": "float16", **(backend or {})},
                       scenario_key: {"name": "inference", "input_shapes": {"batch_size": 4, "sequence_length": 256}},
                       "launcher": {"name": "process"}, "environment": {k: v for k, v in env.items() if v is not None}},
            "report": sections}


def perf(conv) -> dict:
    return {r.test_case: r for r in rows(conv, "performance_results")}


def test_tokens_per_second_is_not_stored_as_items_per_second():
    """optimum-benchmark's prefill throughput counts batch x sequence tokens: 51,200 tokens/s at batch 4 and
    20 ms is 200 items/s; stored as items/s it failed the project's own --validate (ratio 256)."""
    conv = convert(optimum())
    rows_by_case = perf(conv)
    assert rows_by_case["prefill"].throughput_items_per_second is None
    assert rows_by_case["prefill"].metrics["throughput"] == {"unit": "tokens/s", "value": 51200.0}
    assert rows_by_case["forward"].throughput_items_per_second == 200.0
    assert "prefill.throughput in tokens/s kept in metrics, not as items/s" in conv.conversions


def test_a_gpu_run_never_gets_the_cpus_name():
    for environment in ({"gpu": "NVIDIA A100-SXM4-80GB"}, {"gpu": None, "gpus": ["NVIDIA A100-SXM4-80GB"]},
                        {"gpu": None}):
        (hardware,) = rows(convert(optimum(environment=environment)), "hardware_platforms")
        assert hardware.hardware_type == "cuda"
        assert hardware.device_name == ("NVIDIA A100-SXM4-80GB" if "gpus" in environment or environment["gpu"]
                                        else None), environment


def test_an_amd_gpu_run_is_rocm_not_cuda():
    for environment, backend in (({"gpu": ["AMD Instinct MI250X/MI250"]}, None),
                                 ({"gpu": None}, {"version": "2.3.1+rocm6.0"})):
        conv = convert(optimum(environment=environment, backend=backend))
        assert {r.hardware_type for r in rows(conv, "performance_results")} == {"rocm"}


def test_cpu_ram_in_megabytes_becomes_gib_as_the_runners_record_it():
    (hardware,) = rows(convert(optimum(device="cpu")), "hardware_platforms")
    assert hardware.device_name == "AMD EPYC 7R13 Processor"
    assert hardware.memory_gb == 23.54  # 25,276,502,016 bytes / 2**30 (it was 24.68: MB read as MiB)


def test_a_result_file_keyed_by_device_is_not_taken_for_an_optimum_report():
    doc = {"cuda": {"model": "bert-base-uncased", "batch_size": 8, "precision": "fp16",
                    "latency": {"unit": "ms", "mean": 5.2, "p50": 5.1}, "throughput": {"unit": "items/s", "value": 1538.0}},
           "cpu": {"model": "bert-base-uncased", "batch_size": 8, "precision": "fp32",
                   "latency": {"unit": "ms", "mean": 52.0, "p50": 51.0}, "throughput": {"unit": "items/s", "value": 153.8}}}
    conv = convert(doc)
    assert conv.kind != "optimum_benchmark" and conv.status == "ingested"
    assert sorted(r.average_latency_ms for r in rows(conv, "performance_results")) == [5.2, 52.0]


def test_the_experiment_layout_reads_its_input_shapes_and_the_flat_one_says_why_it_is_not_read():
    conv = convert(optimum(scenario_key="benchmark"))  # optimum-benchmark before 0.2: `benchmark`, not `scenario`
    assert {(r.batch_size, r.sequence_length) for r in rows(conv, "performance_results")} == {(4, 256)}
    flat = convert({"benchmark": "inference", "forward.latency(s)": 0.0123, "forward.throughput(samples/s)": 81.3})
    assert flat.status == "skipped" and "flat report" in flat.reason


def test_the_experiment_config_beside_a_report_gives_model_and_device(tmp_path):
    report = tmp_path / "benchmark_report.json"
    report.write_text(json.dumps(optimum()["report"]))
    config = optimum(scenario_key="benchmark")["config"]
    (tmp_path / "experiment_config.json").write_text(json.dumps(config))
    conv = convert_file(report)
    assert conv.status == "ingested" and "model and device from the sibling experiment_config.json" in conv.conversions


def pytest_benchmark(machine_info=True, fullnames=("tests/test_bench.py::test_matmul",)) -> dict:
    doc = {"version": "3.2.2", "datetime": "2019-05-01T08:00:04.123456",
           "benchmarks": [{"group": "linalg", "name": name.split("::")[-1], "fullname": name, "params": None,
                           "stats": {"min": 0.0004, "max": 0.0006, "mean": 0.0005, "stddev": 0.00005,
                                     "median": 0.0005, "rounds": 10, "iterations": 1, "ops": 2000.0}}
                          for name in fullnames]}
    if machine_info:  # py-cpuinfo before 7 named the CPU `brand`
        doc["machine_info"] = {"node": "ci", "system": "Linux", "cpu": {"brand": "Intel(R) Xeon(R) CPU E5-2686 v4",
                                                                         "count": 4}}
    return doc


def test_pytest_benchmark_3_keeps_the_cpus_name():
    (hardware,) = rows(convert(pytest_benchmark()), "hardware_platforms")
    assert hardware.device_name == "Intel(R) Xeon(R) CPU E5-2686 v4"


def test_pytest_benchmark_without_machine_info_is_still_read():
    conv = convert(pytest_benchmark(machine_info=False))
    assert conv.kind == "pytest_benchmark" and conv.status == "ingested"
    assert [r.average_latency_ms for r in rows(conv, "performance_results")] == [0.5]


def test_test_names_get_no_model_family_read_into_them():
    conv = convert(pytest_benchmark(fullnames=("tests/test_audio.py::test_clip_waveform",
                                               "tests/test_text.py::test_revitalize_tokens")))
    assert {m.model_family for m in rows(conv, "models")} == {None}

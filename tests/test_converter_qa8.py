"""Converter QA sweep 8: what the last sweep found but left unfixed. Each test fails without its fix.

The minimal documents copy the relevant part of the corpus file named in the test, so they always run; the
tests on the corpus files themselves read ../shared/data and are skipped where the corpus is absent."""
from __future__ import annotations

import hashlib
import json

import pytest

from benchmark_db.convert import Conversion, convert_document
from tests.test_converter_qa7 import CORPUS, convert, convert_file, model_names, needs_corpus, rows


def hardware_of(conv: Conversion) -> dict:
    return {r.hardware_id: r for r in rows(conv, "hardware_platforms")}


# ---------------------------------------------------------------------------------------------- 1. CUDA facts
# benchmark_results/20250302_202226/benchmark_results.json (system_info and one model entry)
SYSTEM_INFO = {
    "platform": "Linux-6.8.0-11-generic-x86_64-with-glibc2.39", "python_version": "3.12.3",
    "cuda_available": True, "cuda_version": "12.4", "cuda_device_count": 1,
    "cuda_devices": [{"name": "Quadro P4000", "total_memory_gb": 7.923583984375, "compute_capability": "6.1",
                      "multi_processor_count": 14}],
    "mps_available": False, "openvino_available": True,
    "openvino_version": "2025.0.0-17942-1f68be9f594-releases/2025/0",
}
BENCH_ENTRY = {
    "status": "completed", "model_name": "bert-base-uncased", "model_class": "BertModel", "family": "embedding",
    "hardware": "cpu",
    "benchmark_results": {"batch_1_seq_32": {"status": "completed", "latencies": [0.0612, 0.0646, 0.0548],
                                             "avg_latency": 0.0536571741104126, "throughput": 18.63567758260263,
                                             "total_time": 1.0732102394104004, "iterations": 20}},
    "timestamp": "2025-03-03T05:02:35.716142", "model_load_time": 2.835731029510498,
    "performance_summary": {"latency": {}, "throughput": {}, "memory": {}},
}


def test_cuda_version_and_device_details_reach_the_detected_platform():
    """system_info's cuda_version is the platform's version (as the runners store torch.version.cuda), and the
    device list entry that names the GPU gives its memory and multiprocessor count; openvino_version likewise.
    They used to stay in test_runs.environment only."""
    conv = convert({"timestamp": "20250302_202226", "system_info": SYSTEM_INFO,
                    "hardware_info": {"cpu": True, "cuda": True, "mps": False, "rocm": False, "openvino": True},
                    "benchmarks": {"embedding": {"bert-base-uncased": {"cpu": BENCH_ENTRY}}}})
    platforms = {(r.hardware_type, r.device_name): r for r in rows(conv, "hardware_platforms")}
    cuda = platforms[("cuda", "Quadro P4000")]
    assert cuda.platform_version == "12.4"
    assert cuda.memory_gb == pytest.approx(7.923583984375) and cuda.compute_units == 14
    assert cuda.driver_version is None  # the CUDA runtime version is not the driver's
    assert platforms[("openvino", None)].platform_version.startswith("2025.0.0")
    assert platforms[("cpu", None)].platform_version is None  # nothing states one: not invented


def test_cuda_version_in_a_skill_files_capabilities():
    """skills/collected_results/hf_bert_base_uncased_test_results.json: {'capabilities': {'cuda': true,
    'cuda_version': '12.4', 'cuda_devices': 1}}: the version, and no device name from a device count."""
    conv = convert({"hardware": {"capabilities": {"cpu": True, "cuda": True, "cuda_version": "12.4",
                                                  "cuda_devices": 1, "mps": False, "openvino": True},
                                 "preferred_device": "cuda"},
                    "metadata": {"model": "bert-base-uncased", "timestamp": "2025-03-01T16:47:22.223764"}})
    cuda = [r for r in rows(conv, "hardware_platforms") if r.hardware_type == "cuda"]
    assert [(r.device_name, r.platform_version) for r in cuda] == [(None, "12.4")]


# skills/collected_results/hf_gpt2_test_results.json (status block and metadata, examples left out)
HF_GPT2 = {
    "status": {
        "init": "Success", "cpu_init": "Success (REAL)", "cpu_handler": "Success (REAL)",
        "cuda_init": "Success (REAL)",
        "cuda_benchmark": {"average_inference_time": 0.650982141494751, "iterations": 1,
                           "cuda_device": "Quadro P4000", "cuda_memory_used_mb": 263.61328125},
        "cuda_handler": "Success (REAL)",
    },
    "examples": [],
    "metadata": {"model_name": "microsoft/DialoGPT-small", "test_timestamp": "2025-02-28T21:43:48.190335",
                 "python_version": "3.12.3 (main, Feb  4 2025, 14:48:35) [GCC 13.3.0]",
                 "torch_version": "2.6.0+cu124", "transformers_version": "4.46.0",
                 "platform_status": {"cuda": "Ready (REAL)"}},
}


def test_cuda_device_of_a_benchmark_block_names_the_rows_device():
    """'cuda_device': 'Quadro P4000' in a cuda_benchmark block is the row's device (hardware_platforms
    device_name), not a metric."""
    conv = convert(HF_GPT2, "skills/collected_results/hf_gpt2_test_results.json")
    (row,) = rows(conv, "performance_results")
    platform = hardware_of(conv)[row.hardware_id]
    assert (platform.hardware_type, platform.device_name) == ("cuda", "Quadro P4000")
    assert row.metrics == {"cuda_memory_used_mb": 263.61328125}
    assert row.average_latency_ms == pytest.approx(650.982141494751)


def test_a_cuda_device_index_is_not_a_device_name():
    """'cuda_device': 'cuda:0' (the hf_clap examples) is an index: it stays in metrics, the device stays
    unnamed."""
    conv = convert({"model_name": "laion/clap-htsat-unfused", "hardware_type": "cuda", "latency_ms": 6.2,
                    "cuda_device": "cuda:0"})
    (row,) = rows(conv, "performance_results")
    assert hardware_of(conv)[row.hardware_id].device_name is None
    assert row.metrics == {"cuda_device": "cuda:0"}


# ---------------------------------------------------------------------------------------------- 2. entry fields
def test_model_entry_fields_reach_each_measurement_row():
    """benchmarks.<family>.<model>.<hardware>: model_class, family and model_load_time of the entry go to the
    metrics of every row measured below it (they were only in the compatibility row and the original)."""
    conv = convert({"timestamp": "20250303_050233", "benchmarks": {"embedding": {"bert-base-uncased": {
        "cpu": BENCH_ENTRY}}}})
    (row,) = rows(conv, "performance_results")
    assert row.metrics == {"model_class": "BertModel", "family": "embedding",
                           "model_load_time": 2.835731029510498, "status": "completed"}
    assert (row.batch_size, row.sequence_length) == (1, 32)
    assert row.created_at.isoformat().startswith("2025-03-03T05:02:35")


def test_entry_logs_and_verdicts_stay_out_of_row_metrics():
    """benchmark_results/batch_benchmarks_cpu_20250306_174843.json: an entry's command is kept in its row's
    metrics, its stdout/stderr logs (in the stored original) and its own success flag are not copied."""
    conv = convert({"hardware": "cpu", "results": {"bert-base-uncased": {
        "model": "bert-base-uncased", "hardware": "cpu", "batch_sizes": "1",
        "command": "python run_direct_benchmark.py --model bert-base-uncased --hardware cpu --batch-sizes 1",
        "success": True, "stdout": "Benchmark Summary: ...", "stderr": "INFO - Loading model",
        "benchmark_data": {"model": "bert-base-uncased", "hardware": "cpu", "batch_results": {"1": {
            "batch_size": 1, "avg_latency_ms": 164.52527046203613,
            "throughput_items_per_second": 6.078093639911371}}}}}})
    (row,) = rows(conv, "performance_results")
    assert row.metrics == {"batch_sizes": "1", "command": "python run_direct_benchmark.py --model "
                           "bert-base-uncased --hardware cpu --batch-sizes 1"}


def test_a_measured_records_own_fields_win_over_its_entrys():
    conv = convert({"runs": {"bert-base-uncased": {"model": "bert-base-uncased", "hardware": "cpu",
                                                   "note": "entry", "model_load_time": 1.5,
                                                   "b1": {"latency_ms": 5.0, "note": "own"}}}})
    (row,) = rows(conv, "performance_results")
    assert row.metrics == {"note": "own", "model_load_time": 1.5}


# ---------------------------------------------------------------------------------------------- 3. run metadata
def test_run_metadata_of_a_skill_file_is_kept_with_the_run():
    """The versions stay the run's environment; platform_status (and any other field that no column takes)
    goes to test_runs.metadata instead of being dropped."""
    conv = convert(HF_GPT2, "skills/collected_results/hf_gpt2_test_results.json")
    (run,) = rows(conv, "test_runs")
    assert run.environment == {"python_version": "3.12.3 (main, Feb  4 2025, 14:48:35) [GCC 13.3.0]",
                               "torch_version": "2.6.0+cu124", "transformers_version": "4.46.0"}
    assert run.metadata["metadata"] == {"platform_status": {"cuda": "Ready (REAL)"}}


def test_run_metadata_environment_facts_and_the_rest():
    """skills/collected_results/hf_whisper_test_results.json and hf_bert_base_uncased_test_results.json:
    availability flags, device counts, has_* and dependencies are environment; the audio file, the task and
    the category are the run's metadata; time and model name, which columns hold, are not repeated."""
    conv = convert({"init": "Success", "cpu_init": "Success (Mock)", "cpu_handler": "Failed CPU handler",
                    "metadata": {"timestamp": 1740627195.2472873, "torch_version": "2.4.0+cu121",
                                 "cuda_available": False, "cuda_device_count": 0, "has_torch": True,
                                 "dependencies": {"sentencepiece": False}, "transformers_mocked": False,
                                 "test_audio": "/home/barberb/test.mp3", "test_model": "Xenova/whisper-tiny",
                                 "task": "fill-mask", "platform_status": {}}},
                   "skills/collected_results/hf_whisper_test_results.json")
    (run,) = rows(conv, "test_runs")
    assert run.environment == {"torch_version": "2.4.0+cu121", "cuda_available": False, "cuda_device_count": 0,
                               "has_torch": True, "dependencies": {"sentencepiece": False}}
    assert run.metadata["metadata"] == {"transformers_mocked": False, "test_audio": "/home/barberb/test.mp3",
                                        "task": "fill-mask"}


# ---------------------------------------------------------------------------------------------- 4. dependencies
# skills/collected_results/hf_bert_base_uncased_test_results.json
HF_BERT_BASE = {
    "results": {
        "pipeline": {"device": "cuda", "pipeline_missing_deps": ["tokenizers>=0.11.0", "sentencepiece"],
                     "pipeline_error_type": "missing_dependency",
                     "pipeline_test": "Missing dependencies: tokenizers>=0.11.0, sentencepiece"},
        "from_pretrained": {"device": "cuda",
                            "from_pretrained_missing_deps": ["tokenizers>=0.11.0", "sentencepiece"],
                            "from_pretrained_error_type": "missing_dependency",
                            "from_pretrained_test": "Missing dependencies: tokenizers>=0.11.0, sentencepiece"},
        "all_hardware": None,
    },
    "examples": [], "performance": {},
    "hardware": {"capabilities": {"cpu": True, "cuda": True, "cuda_version": "12.4", "cuda_devices": 1,
                                  "mps": False, "openvino": True}, "preferred_device": "cuda"},
    "metadata": {"model": "bert-base-uncased", "category": "language", "task": "fill-mask",
                 "timestamp": "2025-03-01T16:47:22.223764", "has_transformers": True, "has_torch": True,
                 "dependencies": {"tokenizers>=0.11.0": False, "sentencepiece": False}},
}


def test_tests_that_could_not_run_for_missing_dependencies_are_skipped_rows():
    """The file used to be stored as hardware detection only: its two tests are integration rows, skipped
    (the environment lacked packages: no verdict on the model), with the error and the missing packages."""
    conv = convert(HF_BERT_BASE, "skills/collected_results/hf_bert_base_uncased_test_results.json")
    assert (conv.kind, conv.status) == ("integration", "ingested")
    tests = {r.test_name: r for r in rows(conv, "integration_test_results")}
    assert sorted(tests) == ["from_pretrained on cuda", "pipeline on cuda"]
    pipeline = tests["pipeline on cuda"]
    assert pipeline.status == "skipped"
    assert pipeline.error_message == "Missing dependencies: tokenizers>=0.11.0, sentencepiece"
    assert pipeline.metadata == {"pipeline_missing_deps": ["tokenizers>=0.11.0", "sentencepiece"],
                                 "pipeline_error_type": "missing_dependency"}
    assert model_names(conv)[pipeline.model_id] == "bert-base-uncased"
    assert hardware_of(conv)[pipeline.hardware_id].hardware_type == "cuda"
    assert {r.hardware_type for r in rows(conv, "hardware_platforms")} == {"cpu", "cuda", "openvino"}


def test_prefixed_outcomes_passed_and_failed():
    """skills/collected_results/bert_test_bert-base-uncased_20250301_165412.json writes the same shape for
    tests that ran: `<name>_success: true`, `<name>_error_type: 'none'` is passed; another error type failed."""
    conv = convert({"results": {
        "pipeline_cuda": {"model": "bert-base-uncased", "device": "cuda", "task": "fill-mask",
                          "pipeline_success": True, "pipeline_avg_time": 0.010031302769978842,
                          "pipeline_error_type": "none"},
        "from_pretrained_cpu": {"model": "bert-base-uncased", "device": "cpu", "from_pretrained_success": False,
                                "from_pretrained_error_type": "runtime_error",
                                "from_pretrained_error": "CUDA out of memory"}},
        "metadata": {"model": "bert-base-uncased", "timestamp": "2025-03-01T16:54:12.692089"}})
    tests = {r.test_name: r for r in rows(conv, "integration_test_results")}
    assert tests["pipeline_cuda"].status == "passed" and tests["pipeline_cuda"].error_message is None
    assert tests["pipeline_cuda"].metadata["pipeline_avg_time"] == 0.010031302769978842
    assert tests["from_pretrained_cpu"].status == "failed"
    assert tests["from_pretrained_cpu"].error_message == "CUDA out of memory"


# ---------------------------------------------------------------------------------------------- 5. repeats
# critical_model_results/critical_model_tests_20250301_151022.json (one model, examples left out)
CRITICAL = {
    "test_timestamp": "2025-03-01T15:10:03.726229",
    "summary": {"total": 1, "tested": 1, "passed": 1, "failed": 0},
    "model_results": {"canine": {
        "status": "passed", "return_code": 0, "elapsed_time": 6.393615,
        "platform_status": {"cpu": "REAL", "cuda": "REAL", "openvino": "REAL"},
        "structured_data": {"status": {"cpu": "REAL", "cuda": "REAL", "openvino": "REAL"},
                            "model_name": "canine"}}},
}


def test_a_verdict_a_record_states_twice_is_one_row():
    """platform_status and structured_data.status say the same verdict for each platform: one row per
    model and platform, which names where the verdict was repeated."""
    conv = convert(CRITICAL, "critical_model_results/critical_model_tests_20250301_151022.json")
    compat = rows(conv, "hardware_compatibility")
    hardware = hardware_of(conv)
    assert sorted(hardware[r.hardware_id].hardware_type for r in compat) == ["cpu", "cuda", "openvino"]
    cpu = next(r for r in compat if hardware[r.hardware_id].hardware_type == "cpu")
    assert cpu.is_compatible is True
    assert cpu.metadata == {"statuses": {"cpu": "REAL"},
                            "restated_at": [{"pointer": "/model_results/canine/structured_data/status/cpu"}]}


def test_a_repeat_that_differs_keeps_what_differs():
    doc = json.loads(json.dumps(CRITICAL))
    doc["model_results"]["canine"]["structured_data"]["status"]["cpu"] = "REAL (optimized)"
    conv = convert(doc)
    compat = rows(conv, "hardware_compatibility")
    assert len(compat) == 3
    cpu = next(r for r in compat if r.metadata["statuses"].get("cpu") == "REAL")
    assert cpu.metadata["restated_at"] == [{"pointer": "/model_results/canine/structured_data/status/cpu",
                                            "metadata": {"statuses": {"cpu": "REAL (optimized)"}}}]


def test_different_verdicts_are_not_collapsed():
    doc = json.loads(json.dumps(CRITICAL))
    doc["model_results"]["canine"]["structured_data"]["status"]["cuda"] = "Error: CUDA out of memory"
    conv = convert(doc)
    assert len(rows(conv, "hardware_compatibility")) == 4


# benchmark_results/20250302_221825/benchmark_results.json: three functionality runs, each ran on cpu
def _runs_doc() -> dict:
    def run() -> dict:
        return {"stats": {"timestamp": "20250302_221840", "hardware_platforms": ["cpu"]},
                "model_results": {"vit": {"cpu": False}, "bert": {"cpu": False}},
                "detailed_results": [{"model": "vit", "hardware": "cpu", "success": False, "return_code": 1,
                                      "stdout": "", "stderr": "AttributeError: no attribute 'run_tests'"}]}
    return {"timestamp": "20250302_221825",
            "models": {"bert": {"name": "prajjwal1/bert-tiny", "family": "embedding", "modality": "text"},
                       "vit": {"name": "facebook/deit-tiny-patch16-224", "family": "vision",
                               "modality": "vision"}},
            "functionality_verification": {"cpu": run(), "cuda": run(), "openvino": run()},
            "performance_benchmarks": {"embedding": {"status": "error", "error": "NameError: name 'false' is "
                                                                                "not defined"}},
            "hardware_detected": {"cpu": True, "cuda": True, "mps": False, "openvino": True, "rocm": False}}


def test_separate_runs_with_the_same_verdict_stay_separate_rows():
    conv = convert(_runs_doc(), "benchmark_results/20250302_221825/benchmark_results.json")
    compat = rows(conv, "hardware_compatibility")
    assert len(compat) == 6  # 2 models x 3 runs
    assert not any("restated_at" in (r.metadata or {}) for r in compat)


def test_runs_in_a_list_are_not_repeats():
    conv = convert({"model_name": "bert-base-uncased", "runs": [{"cpu": "REAL"}, {"cpu": "REAL"}]})
    assert len(rows(conv, "hardware_compatibility")) == 2


def test_collapsing_does_not_depend_on_key_order():
    """The row kept is the same whichever of the two statements the document writes first."""
    doc = json.loads(json.dumps(CRITICAL))
    entry = doc["model_results"]["canine"]
    doc["model_results"]["canine"] = dict(reversed(list(entry.items())))
    ids = []
    for version in (CRITICAL, doc):
        conv = convert_document(json.dumps(version), "critical_model_tests.json", "same-sha")
        ids.append(sorted(r.compatibility_id for r in rows(conv, "hardware_compatibility")))
    assert ids[0] == ids[1] and len(ids[0]) == 3


# ---------------------------------------------------------------------------------------------- the corpus
@needs_corpus
def test_corpus_cuda_facts():
    conv = convert_file(CORPUS / "benchmark_results/20250302_202226/benchmark_results.json")
    cuda = [r for r in rows(conv, "hardware_platforms") if r.hardware_type == "cuda"]
    assert [(r.device_name, r.platform_version, r.compute_units) for r in cuda] == [("Quadro P4000", "12.4", 14)]
    conv = convert_file(CORPUS / "skills/collected_results/hf_gpt2_test_results.json")
    perf = rows(conv, "performance_results")
    devices = {hardware_of(conv)[r.hardware_id].device_name for r in perf if r.test_case == "benchmark"}
    assert devices == {"Quadro P4000"}


@needs_corpus
def test_corpus_entry_fields_and_run_metadata():
    path = CORPUS / ("benchmark_results/benchmarks_20250305_195033/20250305_195037/performance/embedding/"
                     "20250305_195052/20250305_195054/benchmark_results.json")
    perf = rows(convert_file(path), "performance_results")
    assert perf and all({"model_class", "family", "model_load_time"} <= set(r.metrics) for r in perf)
    (run,) = rows(convert_file(CORPUS / "skills/collected_results/hf_distilbert_test_results.json"), "test_runs")
    assert run.environment["torch_version"] == "2.6.0+cu124"
    assert run.metadata["metadata"]["platform_status"]["cuda"] == "Ready (REAL)"


@needs_corpus
def test_corpus_missing_dependency_file():
    conv = convert_file(CORPUS / "skills/collected_results/hf_bert_base_uncased_test_results.json")
    assert conv.kind == "integration"
    assert sorted(r.status for r in rows(conv, "integration_test_results")) == ["skipped", "skipped"]


@needs_corpus
def test_corpus_repeats_collapse_only_within_a_record():
    for name in ("critical_model_tests_20250301_151022.json", "critical_model_tests_20250301_151515.json"):
        conv = convert_file(CORPUS / "critical_model_results" / name)
        compat = rows(conv, "hardware_compatibility")
        pairs = [(r.model_id, r.hardware_id) for r in compat]
        assert len(pairs) == len(set(pairs)) == 9, name
    conv = convert_file(CORPUS / "benchmark_results/20250302_221825/benchmark_results.json")
    compat = rows(conv, "hardware_compatibility")
    assert len(compat) == 15  # 5 models x 3 separate cpu runs
    assert not any("restated_at" in (r.metadata or {}) for r in compat)


@needs_corpus
def test_corpus_still_clean():
    """Every file accounted for, no placeholder model and no zero standing for a missing value."""
    for path in sorted(CORPUS.rglob("*.json")):
        conv = convert_file(path)
        assert conv.status in ("ingested", "skipped") or conv.kind == "invalid", (path, conv.reason)
        for row in rows(conv, "performance_results"):
            assert row.model_name and row.model_name.lower() not in ("unknown", "test", "none"), path
            assert row.throughput_items_per_second != 0 and row.average_latency_ms != 0, path


@pytest.mark.slow  # over 0.35 s here: outside make test-fast
def test_a_list_of_more_than_ten_thousand_records_is_read_to_its_end():
    """A long list (a consolidated export) gives a row per record: no cap that silently drops the rest."""
    records = [{"model_name": f"bert-{i % 7}", "hardware_type": "cpu", "batch_size": 1 + i % 4,
                "average_latency_ms": 10.0 + i % 13, "throughput_items_per_second": 50.0 + i % 5}
               for i in range(12_345)]
    conv = convert({"results": records})
    assert len(rows(conv, "performance_results")) == 12_345


# ------------------------------------------------------------------------------- odd encodings and numbers

_ONE_RESULT = {"model_name": "bert-base-uncased", "hardware_type": "cpu", "batch_size": 1,
               "average_latency_ms": 5.0, "throughput_items_per_second": 200.0}


@pytest.mark.parametrize("encoding", ["utf-16", "utf-32"])
def test_utf16_and_utf32_with_a_byte_order_mark_are_read(encoding):
    """PowerShell's Out-File writes UTF-16 with a BOM; such a file is read, not failed as 'not UTF-8'."""
    data = json.dumps(_ONE_RESULT).encode(encoding)  # Python writes the BOM
    conv = convert_document(data, "results/bench.json", hashlib.sha256(data).hexdigest())
    assert conv.status == "ingested"
    (row,) = rows(conv, "performance_results")
    assert row.throughput_items_per_second == 200.0


@pytest.mark.parametrize("data, reason", [
    (b"", "empty file"), (b" \n\t", "empty file"),
    (b'\xe9{"a": 1}', "not UTF-8 text: byte 0 is 0xe9 (save the file as UTF-8)"),
])
def test_empty_and_non_utf8_files_fail_with_a_reason_that_says_so(data, reason):
    conv = convert_document(data, "results/bench.json", hashlib.sha256(data).hexdigest())
    assert conv.status == "failed" and reason in conv.reason


def test_non_finite_numbers_are_kept_in_metrics_as_json_spells_them():
    """NaN, -Infinity and a number too large for a double (1e400) are no measurement (NULL), but metrics say
    what the file held rather than null."""
    data = (b'{"model_name": "bert-base-uncased", "hardware_type": "cpu", "batch_size": 1, '
            b'"average_latency_ms": 5.0, "throughput_items_per_second": 1e400, "memory_peak_mb": -Infinity, '
            b'"warmup_loss": NaN}')
    conv = convert_document(data, "results/bench.json", hashlib.sha256(data).hexdigest())
    (row,) = rows(conv, "performance_results")
    assert row.average_latency_ms == 5.0
    assert row.throughput_items_per_second is None and row.memory_peak_mb is None
    assert row.metrics == {"throughput_items_per_second": "Infinity", "memory_peak_mb": "-Infinity",
                           "warmup_loss": "NaN"}

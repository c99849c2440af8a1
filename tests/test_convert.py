"""convert_document: detection by content, normalisation (units, names, timestamps, batch keys), the
no-invention rules, and the accounting of every file of the public corpus and the foreign tools' files."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections import Counter
from pathlib import Path

import pytest

from benchmark_db.convert import Conversion, convert_document
from benchmark_db.identity import stable_id
from benchmark_db.normalize import batch_seq_from_key, parse_timestamp, timestamp_from_path
from benchmark_db_models import BenchmarkDB

PLACEHOLDERS = {"", "unknown", "test", "none", "null", "n/a"}


def convert(doc, path="results/x.json") -> Conversion:
    text = doc if isinstance(doc, (str, bytes)) else json.dumps(doc)
    data = text.encode() if isinstance(text, str) else text
    return convert_document(text, path, hashlib.sha256(data).hexdigest())


def rows(conv: Conversion, table: str) -> list:
    return [r for r in conv.records if r.TABLE == table]


def convert_file(path: Path) -> Conversion:
    data = path.read_bytes()
    return convert_document(data, str(path), hashlib.sha256(data).hexdigest())


# ---------------------------------------------------------------------------------------------- normalisation
@pytest.mark.parametrize("value, expected", [
    ("2025-03-06T17:48:25.456598", dt.datetime(2025, 3, 6, 17, 48, 25, 456598)),
    ("2025-03-02T12:00:00Z", dt.datetime(2025, 3, 2, 12, 0)),
    ("2026-11-22T14:45:46+02:00", dt.datetime(2026, 11, 22, 12, 45, 46)),
    ("2025-02-28 20:25:42", dt.datetime(2025, 2, 28, 20, 25, 42)),
    ("20250302_221824", dt.datetime(2025, 3, 2, 22, 18, 24)),
    (1740731446.0927093, dt.datetime(2025, 2, 28, 8, 30, 46, 92709)),
    (1740731446092, dt.datetime(2025, 2, 28, 8, 30, 46, 92000)),
    ("not a time", None), (0, None), (True, None), ("", None),
])
def test_timestamps_become_naive_utc(value, expected):
    got = parse_timestamp(value)
    if expected is None:
        assert got is None
    else:
        assert got.tzinfo is None
        assert abs((got - expected).total_seconds()) < 0.001


def test_timestamp_from_path_takes_the_innermost_stamp():
    assert timestamp_from_path("a/benchmarks_20250305_195033/20250305_195037/x.json") == dt.datetime(
        2025, 3, 5, 19, 50, 37)
    assert timestamp_from_path("results/plain.json") is None


@pytest.mark.parametrize("key, expected", [
    ("batch_1_seq_128", (1, 128, None)), ("bs4", (4, None, None)), ("batch_8_img_224x224", (8, None, "img_224x224")),
    ("batch_size_32_seq_len_64", (32, 64, None)), ("bert", None), ("batch", None),
])
def test_batch_and_sequence_from_keys(key, expected):
    assert batch_seq_from_key(key) == expected


# ---------------------------------------------------------------------------------------------- record rules
def test_one_test_run_with_source_identity_and_time_from_the_path():
    conv = convert({"model": "bert-base-uncased", "hardware": "CUDA", "latency_ms": 12.5, "throughput": 80},
                   path="out/bench_20250306_174825.json")
    assert conv.status == "ingested" and conv.kind == "performance"
    (run,) = rows(conv, "test_runs")
    sha = hashlib.sha256(json.dumps({"model": "bert-base-uncased", "hardware": "CUDA", "latency_ms": 12.5,
                                     "throughput": 80}).encode()).hexdigest()
    assert run.run_id == stable_id("source", sha)
    assert run.source_sha256 == sha and run.source_path == "out/bench_20250306_174825.json"
    assert run.started_at == dt.datetime(2025, 3, 6, 17, 48, 25)
    (perf,) = rows(conv, "performance_results")
    assert perf.run_id == run.run_id
    assert perf.result_id == stable_id("performance_results", run.run_id, "")
    assert perf.hardware_type == "cuda" and perf.model_name == "bert-base-uncased"
    assert perf.average_latency_ms == 12.5 and perf.throughput_items_per_second == 80
    (model,) = rows(conv, "models")
    assert model.model_family == "bert" and perf.model_id == model.model_id
    assert "performance" in conv.categories


def test_two_records_never_share_an_id():
    doc = {"results": [{"model": "bert-base-uncased", "device": "cpu", "latency_ms": 10},
                       {"model": "bert-base-uncased", "device": "cpu", "latency_ms": 10}]}
    ids = [r.result_id for r in rows(convert(doc), "performance_results")]
    assert len(ids) == 2 and len(set(ids)) == 2


def test_seconds_are_converted_and_noted():
    doc = {"model": "t5-small", "hardware": "cpu", "benchmark_results": {
        "batch_4_seq_128": {"avg_latency": 0.5, "throughput": 8.0, "latencies": [0.4, 0.6]}}}
    conv = convert(doc)
    (perf,) = rows(conv, "performance_results")
    assert perf.batch_size == 4 and perf.sequence_length == 128
    assert perf.average_latency_ms == pytest.approx(500.0)
    assert perf.latency_samples_ms == pytest.approx([400.0, 600.0])
    assert any("s -> ms" in note for note in conv.conversions)


def test_unit_agreeing_with_throughput_is_chosen():
    # 4 items in 40 (ms) at 100 items/s: the unitless figure is milliseconds
    doc = {"model": "bert-base-uncased", "hardware": "cpu", "batch_size": 4, "avg_latency": 40, "throughput": 100}
    (perf,) = rows(convert(doc), "performance_results")
    assert perf.average_latency_ms == pytest.approx(40)


def test_memory_in_gb_is_converted():
    doc = {"model": "bert-base-uncased", "hardware": "cpu", "latency_ms": 5, "memory_gb": 1.5}
    (perf,) = rows(convert(doc), "performance_results")
    assert perf.memory_peak_mb == pytest.approx(1536)


def test_zero_throughput_is_missing_and_placeholder_models_make_no_row():
    doc = {"results": [{"model": "bert-base-uncased", "hardware": "cpu", "latency_ms": 7, "throughput": 0},
                       {"model": "unknown", "hardware": "cpu", "latency_ms": 7},
                       {"model": "", "hardware": "cpu", "latency_ms": 7},
                       {"model": "bert-base-uncased", "hardware": "cpu", "latency_ms": 0, "throughput": 0}]}
    conv = convert(doc)
    perf = rows(conv, "performance_results")
    assert len(perf) == 1
    assert perf[0].throughput_items_per_second is None and perf[0].average_latency_ms == 7
    (run,) = rows(conv, "test_runs")
    reasons = [d["reason"] for d in run.metadata["records_not_stored"]]
    assert any("placeholder" in r for r in reasons) and any("no latency" in r for r in reasons)


def test_unmapped_fields_are_kept_in_metrics():
    doc = {"model": "bert-base-uncased", "hardware": "cpu", "latency_ms": 5, "cache_hits": 3, "note": "warm"}
    (perf,) = rows(convert(doc), "performance_results")
    assert perf.metrics["cache_hits"] == 3 and perf.metrics["note"] == "warm"


@pytest.mark.parametrize("marker", [{"is_simulation": True}, {"simulated": True},
                                    {"implementation_type": "MOCK"}, {"implementation_type": "SIMULATED_WEBGPU"}])
def test_simulated_results_are_flagged(marker):
    doc = {"model": "bert-base-uncased", "hardware": "cpu", "latency_ms": 5, **marker}
    (perf,) = rows(convert(doc), "performance_results")
    assert perf.is_simulated is True


def test_detection_does_not_depend_on_key_order():
    doc = {"model": "bert-base-uncased", "hardware": "cpu", "latency_ms": 5, "timestamp": "2025-03-01T00:00:00"}
    forward = convert(json.dumps(doc))
    backward = convert(json.dumps(dict(reversed(list(doc.items())))))
    assert forward.kind == backward.kind == "performance"
    assert rows(forward, "performance_results")[0].average_latency_ms == rows(backward, "performance_results")[
        0].average_latency_ms


@pytest.mark.parametrize("doc, reason", [
    ({"batch_sizes": [1, 4], "hardware_types": ["cpu"], "warmup_iterations": 5, "timeout": 600},
     "run configuration"),
    ({"completed_benchmarks": [], "failed_benchmarks": [], "summary": {}, "timestamp": "x"}, "progress log"),
    ({"files_fixed": 3, "total_issues_fixed": 7, "files_details": {}}, "fix report"),
    ({"model": "llama3", "backoff_test": {}, "queue_test": {}}, "back-off"),
    ([], "empty"), (42, "not a result document"), ({}, "empty"),
])
def test_no_result_documents_are_skipped_with_a_named_reason(doc, reason):
    conv = convert(doc)
    assert conv.status == "skipped" and reason in conv.reason and conv.records == []


def test_invalid_json_fails_with_line_and_column():
    conv = convert('{\n  "a": 1,\n  "b": ,\n}')
    assert conv.status == "failed" and conv.kind == "invalid"
    assert "line 3 column 8" in conv.reason


def test_runner_documents_delegate_or_say_the_reader_is_missing():
    doc = {"format_version": 1, "producer": "benchmark-db-runner", "results": []}
    conv = convert(doc)
    assert conv.kind == "runner"
    try:
        import benchmark_db.runner_format  # noqa: F401
    except ModuleNotFoundError:
        assert conv.status == "failed" and conv.reason == "runner format reader missing"
    else:  # a document without a run is refused by the reader, with its reason
        assert conv.status == "failed" and "runner document rejected" in conv.reason


def test_web_platform_result():
    doc = {"model_key": "bert", "model_name": "prajjwal1/bert-tiny", "platform": "webgpu", "status": "success",
           "test_file": "web_platform_tests/bert/webgpu_test.html", "timestamp": "2025-03-06T18:41:31",
           "platform_support": {"simulated": True}, "implementation_type": "REAL_WEBGPU", "is_simulation": True,
           "metrics": {"inference_time_ms": 80, "load_time_ms": 480, "memory_mb": 150,
                       "throughput_items_per_second": 100.0}}
    conv = convert(doc)
    assert conv.kind == "web_platform" and conv.categories == {"web", "performance"}
    (web,) = rows(conv, "web_platform_results")
    assert web.inference_time_ms == 80 and web.load_time_ms == 480 and web.is_simulated
    # metrics keep what no column holds; the document's own fields are kept once, in the run's metadata
    assert web.metrics == {"throughput_items_per_second": 100.0}
    (run,) = rows(conv, "test_runs")
    assert run.metadata["platform_support"] == {"simulated": True}
    assert run.metadata["implementation_type"] == "REAL_WEBGPU"
    (perf,) = rows(conv, "performance_results")
    assert perf.hardware_type == "webgpu" and perf.is_simulated and perf.created_at == dt.datetime(
        2025, 3, 6, 18, 41, 31)
    assert perf.metrics == {"load_time_ms": 480}


def test_web_metrics_keep_values_their_columns_refuse():
    doc = {"model_name": "bert-base-uncased", "platform": "webnn", "test_file": "t.html",
           "metrics": {"inference_time_ms": 0, "load_time_ms": 12.5, "memory_mb": 40, "fps": 30}}
    (web,) = rows(convert(doc), "web_platform_results")
    assert web.inference_time_ms is None and web.load_time_ms == 12.5 and web.memory_usage_mb == 40
    assert web.metrics == {"inference_time_ms": 0, "fps": 30}  # a refused 0 stays, as does the unmapped fps


def test_web_comparison_metrics_hold_only_unmapped_fields():
    doc = {"timestamp": "2025-03-05T19:50:52", "results_by_modality": {"text": [
        {"model": "bert-base-uncased", "webgpu": {"success": True, "time_ms": 18.2, "memory_mb": 63.3,
                                                  "implementation": "REAL_WEBGPU_TRANSFORMERS_JS"},
         "webnn": {"success": "yes", "time_ms": 20.0, "error": "  slow  "}}]}}
    web = {w.platform: w for w in rows(convert(doc), "web_platform_results")}
    assert web["webgpu"].inference_time_ms == 18.2 and web["webgpu"].memory_usage_mb == 63.3
    assert web["webgpu"].metrics == {"implementation": "REAL_WEBGPU_TRANSFORMERS_JS", "modality": "text"}
    # spelled differently from its column ("yes" for true, an error with spaces): kept as written
    assert web["webnn"].metrics == {"success": "yes", "error": "  slow  ", "modality": "text"}


def test_skill_platform_statuses_become_compatibility_rows():
    doc = {"init": "Success", "cpu_init": "Success (REAL)", "cpu_handler": "Success (REAL)",
           "cuda_tests": "CUDA not available", "openvino_init": "Success (MOCK)", "openvino_handler": "Success (MOCK)",
           "qualcomm_tests": "Error: no SDK"}
    conv = convert(doc, path="skills/collected_results/hf_bert_test_results.json")
    assert conv.kind == "compatibility"
    by_hw = {}
    hardware = {h.hardware_id: h.hardware_type for h in rows(conv, "hardware_platforms")}
    for row in rows(conv, "hardware_compatibility"):
        by_hw[hardware[row.hardware_id]] = row
    assert by_hw["cpu"].is_compatible is True and by_hw["cpu"].initialization_success is True
    assert by_hw["cuda"].detection_success is False and by_hw["cuda"].is_compatible is None
    assert by_hw["openvino"].is_simulated is True
    assert by_hw["qualcomm"].is_compatible is False and "no SDK" in by_hw["qualcomm"].error_message


def test_records_store_in_a_real_database(db_path):
    doc = {"model": "bert-base-uncased", "hardware": "cuda:0", "benchmark_results": {
        "batch_1_seq_32": {"avg_latency": 0.02, "throughput": 50, "latencies": [0.02, 0.02]}}}
    conv = convert(doc)
    with BenchmarkDB(db_path) as db:
        db.insert_many(conv.records)
        row = db.conn.execute("SELECT model_name, hardware_type, batch_size, sequence_length, average_latency_ms, "
                              "latency_samples_ms FROM performance_results").fetchone()
    assert row[:4] == ("bert-base-uncased", "cuda", 1, 32)
    assert row[4] == pytest.approx(20.0) and row[5] == pytest.approx([20.0, 20.0])


# ---------------------------------------------------------------------------------------------- foreign tools
def test_optimum_benchmark_report(shared_dir):
    conv = convert_file(shared_dir / "data" / "foreign" / "optimum_benchmark" / "benchmark.json")
    assert conv.kind == "optimum_benchmark" and conv.status == "ingested"
    perf = {r.test_case: r for r in rows(conv, "performance_results")}
    forward = perf["forward"]
    assert forward.model_name == "models/tiny_bert" and forward.hardware_type == "cpu"
    assert forward.batch_size == 2 and forward.sequence_length == 16
    assert len(forward.latency_samples_ms) == forward.iterations == 77
    assert forward.average_latency_ms == pytest.approx(0.03913521542857508 * 1000)
    assert forward.throughput_items_per_second == pytest.approx(51.10486752398645)
    (hw,) = rows(conv, "hardware_platforms")
    assert hw.device_name == "AMD EPYC" and hw.compute_units == 2
    # the same run's report alone, beside benchmark.json that holds it too: taken once, from benchmark.json
    report_only = convert_file(shared_dir / "data" / "foreign" / "optimum_benchmark" / "benchmark_report.json")
    assert report_only.status == "skipped" and "benchmark.json beside it" in report_only.reason
    config = convert_file(shared_dir / "data" / "foreign" / "optimum_benchmark" / "benchmark_config.json")
    assert config.status == "skipped" and "configuration" in config.reason


def test_optimum_report_alone_takes_the_sibling_config(shared_dir, tmp_path):
    source = shared_dir / "data" / "foreign" / "optimum_benchmark"
    for name in ("benchmark_report.json", "benchmark_config.json"):
        (tmp_path / name).write_bytes((source / name).read_bytes())
    report_only = convert_file(tmp_path / "benchmark_report.json")
    assert report_only.status == "ingested" and len(rows(report_only, "performance_results")) == 3
    assert any("benchmark_config.json" in note for note in report_only.conversions)
    # a benchmark.json of another run beside it does not hide this report
    combined = json.loads((source / "benchmark.json").read_text())
    combined["report"]["forward"]["latency"]["values"][0] += 1.0
    (tmp_path / "benchmark.json").write_text(json.dumps(combined))
    assert convert_file(tmp_path / "benchmark_report.json").status == "ingested"


def test_pytest_benchmark_file(shared_dir):
    path = shared_dir / "data" / "foreign" / "pytest_benchmark" / "benchmark.json"
    conv = convert_file(path)
    raw = json.loads(path.read_text())
    assert conv.kind == "pytest_benchmark" and conv.status == "ingested"
    perf = {r.model_name: r for r in rows(conv, "performance_results")}
    for bench in raw["benchmarks"]:
        row = perf[bench["fullname"]]
        assert row.average_latency_ms == pytest.approx(bench["stats"]["mean"] * 1000)
        assert row.latency_samples_ms == pytest.approx([x * 1000 for x in bench["stats"]["data"]])
    (run,) = rows(conv, "test_runs")
    assert run.git_commit == raw["commit_info"]["id"] and run.environment["machine_info"]["node"] == "vm"


# ---------------------------------------------------------------------------------------------- the corpus
def test_every_corpus_file_is_accounted_for(corpus_dir):
    files = sorted(corpus_dir.rglob("*.json"))
    assert len(files) == 254
    statuses = Counter()
    for path in files:
        conv = convert_file(path)
        statuses[conv.status] += 1
        assert conv.status in ("ingested", "skipped", "failed"), path
        if conv.status != "ingested":
            assert conv.reason, path
            assert conv.records == []
        else:
            assert sum(1 for r in conv.records if r.TABLE == "test_runs") == 1, path
        if conv.status == "failed":
            assert conv.kind == "invalid" and "line 5 column 21" in conv.reason, path
        for perf in rows(conv, "performance_results"):
            assert perf.model_name and perf.model_name.strip().lower() not in PLACEHOLDERS, path
            assert perf.throughput_items_per_second is None or perf.throughput_items_per_second > 0, path
            assert perf.average_latency_ms is None or perf.average_latency_ms > 0, path
            assert perf.hardware_type
        ids = [getattr(r, r.ID) for r in conv.records if r.TABLE not in ("models", "hardware_platforms")]
        assert len(ids) == len(set(ids)), path
    assert statuses["failed"] == 1


def test_simulated_corpus_rows_are_flagged(corpus_dir):
    for path in sorted((corpus_dir / "web_platform_results").rglob("result.json")):
        raw = json.loads(path.read_text())
        conv = convert_file(path)
        for perf in rows(conv, "performance_results"):
            assert perf.is_simulated == bool(raw.get("is_simulation")), path


def _reversed(node):
    if isinstance(node, dict):
        return {k: _reversed(v) for k, v in reversed(list(node.items()))}
    if isinstance(node, list):
        return [_reversed(v) for v in node]
    return node


def test_corpus_detection_does_not_depend_on_key_order(corpus_dir):
    for path in sorted(corpus_dir.rglob("*.json")):
        original = convert_file(path)
        if original.status == "failed":
            continue
        text = json.dumps(_reversed(json.loads(path.read_text())))
        flipped = convert_document(text, str(path), hashlib.sha256(path.read_bytes()).hexdigest())
        assert (flipped.kind, flipped.status, flipped.reason) == (original.kind, original.status, original.reason), path
        assert sorted(getattr(r, r.ID) for r in flipped.records) == sorted(
            getattr(r, r.ID) for r in original.records), path


def test_corpus_report_script_accounts_for_every_file(corpus_dir, capsys):
    from scripts.convert_corpus_report import main

    assert main([str(corpus_dir), "--format", "json"]) == 0
    summary = json.loads(capsys.readouterr().out)[0]
    assert summary["files"] == 254 and summary["unaccounted"] == []
    assert summary["placeholder_model_rows"] == 0 and summary["zero_value_rows"] == 0
    assert summary["simulated_performance_rows"] > 0
    statuses = Counter()
    for entry in summary["by_kind"]:
        statuses[entry["status"]] += entry["files"]
    assert statuses["failed"] == 1 and sum(statuses.values()) == 254


def test_run_time_falls_back_to_the_records_times():
    doc = {"examples": [{"platform": "CPU", "elapsed_time": 0.01, "implementation_type": "REAL",
                         "timestamp": "2025-03-01T15:10:21"}], "metadata": {"model_name": "visual_bert"}}
    conv = convert(doc, path="skills/hf_visual_bert_test_results.json")
    (run,) = rows(conv, "test_runs")
    assert run.started_at == dt.datetime(2025, 3, 1, 15, 10, 21)
    (perf,) = rows(conv, "performance_results")
    assert perf.latency_samples_ms == [10.0] and perf.iterations == 1 and perf.hardware_type == "cpu"


def test_statistic_blocks_with_units():
    doc = {"model": "bert-base-uncased", "device": "cuda:0", "batch_size": 8,
           "latency": {"mean": 0.012, "p50": 0.011, "p99": 0.02, "values": [0.011, 0.013], "unit": "s"},
           "throughput": {"value": 660, "unit": "samples/s"}, "memory": {"peak": 1.5, "unit": "GB"}}
    conv = convert(doc)
    (perf,) = rows(conv, "performance_results")
    assert perf.average_latency_ms == pytest.approx(12) and perf.latency_p99_ms == pytest.approx(20)
    assert perf.latency_samples_ms == pytest.approx([11, 13])
    assert perf.throughput_items_per_second == 660 and perf.memory_peak_mb == pytest.approx(1536)
    assert perf.metrics["latency"]["unit"] == "s"  # the block itself is kept
    assert "latency s -> ms (latency block)" in conv.conversions


def test_hardware_detection_document():
    doc = {"cpu": {"available": True, "name": "Intel Xeon", "cores": 8},
           "cuda": {"available": True, "device_count": 1, "devices": [{"name": "NVIDIA A100"}], "version": "12.4"},
           "mps": {"available": False}, "timestamp": "2025-03-01T00:00:00"}
    conv = convert(doc)
    assert conv.kind == "hardware" and conv.status == "ingested" and "hardware" in conv.categories
    platforms = {(h.hardware_type, h.device_name) for h in rows(conv, "hardware_platforms")}
    assert platforms == {("cpu", "Intel Xeon"), ("cuda", "NVIDIA A100")}
    (run,) = rows(conv, "test_runs")
    assert run.metadata["hardware_detected"] == {"cpu": True, "cuda": True, "mps": False}

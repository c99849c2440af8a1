"""Converter QA sweep 15: mis-conversions found by comparing corpus files with the rows stored from them.
Each test fails without its fix; the documents copy the relevant part of the corpus file the test names."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from tests.test_converter_qa7 import convert, rows


# ---------------------------------------------------------------------------------------------- 1. modality
def test_web_comparison_keeps_the_modality_it_states_for_each_model():
    """web_platform_results/web_platform_comparison_20250302_120000.json lists models under
    results_by_modality.<modality>: 'resnet-18' (vision) and 'hubert-base' (audio) used to get no modality
    and 'text' (the guess from a name containing 'bert'): the web row made the model before its modality
    was read."""
    conv = convert({"timestamp": "2025-03-02T12:00:00Z", "results_by_modality": {
        "vision": [{"model": "resnet-18", "webnn": {"time_ms": 68.5, "memory_mb": 45, "success": True,
                                                   "implementation": "REAL_WEBNN"}}],
        "audio": [{"model": "hubert-base", "webnn": {"time_ms": 127.4, "memory_mb": 145, "success": True,
                                                    "implementation": "REAL_WEBNN"}}]}},
        "web_platform_results/web_platform_comparison_20250302_120000.json")
    modality = {m.model_name: m.modality for m in rows(conv, "models")}
    assert modality == {"resnet-18": "vision", "hubert-base": "audio"}


# ---------------------------------------------------------------------------------------------- 2. entry times
# benchmark_results/20250303_050233/20250303_050235/benchmark_results.json: each model entry states when it ran
def _entry(model: str, stamp: str) -> dict:
    return {"status": "completed", "model_name": model, "hardware": "cpu", "timestamp": stamp,
            "benchmark_results": {"batch_1_seq_32": {"status": "completed", "latencies": [0.05, 0.06],
                                                     "avg_latency": 0.055, "throughput": 18.2, "iterations": 2}}}


def test_compatibility_rows_take_the_time_their_entry_states():
    """The distilbert entry ran at 05:06:45, four minutes after the run started: its performance rows said so,
    its compatibility row had the run's start time."""
    conv = convert({"timestamp": "20250303_050235", "benchmarks": {"embedding": {
        "bert-base-uncased": {"cpu": _entry("bert-base-uncased", "2025-03-03T05:02:35.716142")},
        "distilbert-base-uncased": {"cpu": _entry("distilbert-base-uncased", "2025-03-03T05:06:45.788893")}}}})
    names = {m.model_id: m.model_name for m in rows(conv, "models")}
    compat = {names[r.model_id]: r.created_at for r in rows(conv, "hardware_compatibility")}
    assert compat == {"bert-base-uncased": dt.datetime(2025, 3, 3, 5, 2, 35, 716142),
                      "distilbert-base-uncased": dt.datetime(2025, 3, 3, 5, 6, 45, 788893)}


def test_integration_rows_take_the_time_their_entry_states():
    """benchmark_results/batch_benchmarks_cpu_20250306_174843.json: google/t5-small's run failed at
    17:48:26.597664; its integration row had the batch's start (17:48:16) and the entry's time was lost."""
    conv = convert({"models": ["google/t5-small"], "hardware": "cpu", "timestamp": "2025-03-06T17:48:16.802295",
                    "results": {"google/t5-small": {
                        "model": "google/t5-small", "hardware": "cpu", "timestamp": "2025-03-06T17:48:26.597664",
                        "success": False, "error": "Command failed with exit code 1"}}})
    (row,) = rows(conv, "integration_test_results")
    assert row.status == "failed"
    assert row.created_at == dt.datetime(2025, 3, 6, 17, 48, 26, 597664)


# ---------------------------------------------------------------------------------------------- 3. optimum stdev_
OPTIMUM = Path(__file__).resolve().parents[2] / "shared" / "data" / "foreign" / "optimum_benchmark" / "benchmark.json"


def test_optimum_latency_fields_without_a_column_stay_in_metrics():
    """foreign/optimum_benchmark/benchmark.json: each latency block also has `stdev_` (the standard deviation
    in percent of the mean, 192.67 for `forward`); no column holds it and the row's metrics did not either."""
    doc = {"config": {"name": "pytorch_tiny_bert_cpu", "backend": {"model": "models/tiny_bert", "device": "cpu"},
                      "scenario": {"input_shapes": {"batch_size": 2, "sequence_length": 16}}, "launcher": {}},
           "report": {"forward": {"memory": None, "throughput": {"unit": "samples/s", "value": 51.1},
                                  "latency": {"unit": "s", "values": [0.001, 0.09], "count": 2, "total": 0.091,
                                              "mean": 0.0455, "p50": 0.0455, "stdev": 0.0445,
                                              "stdev_": 97.8}}}}
    (row,) = rows(convert(doc, "optimum_benchmark/benchmark.json"), "performance_results")
    assert row.latency_stddev_ms == pytest.approx(44.5)
    assert row.metrics["latency"] == {"stdev_": 97.8}


@pytest.mark.skipif(not OPTIMUM.is_file(), reason="foreign corpus not present")
def test_optimum_corpus_forward_keeps_its_relative_stdev():
    data = json.loads(OPTIMUM.read_text())
    conv = convert(data, str(OPTIMUM))
    forward = next(r for r in rows(conv, "performance_results") if r.test_case == "forward")
    assert forward.metrics["latency"]["stdev_"] == pytest.approx(data["report"]["forward"]["latency"]["stdev_"])


def test_hubert_is_not_taken_for_a_bert():
    """skills/expected_results/hf_hubert_test_results.json: 'facebook/hubert-base-ls960', a speech model, got
    family 'bert' and modality 'text' because its name contains 'bert'."""
    from benchmark_db.names import family_of

    assert family_of("facebook/hubert-base-ls960") is None and family_of("hubert-base") is None
    assert family_of("distilbert-base-uncased") == "bert" and family_of("roberta-base") == "bert"


def test_a_commands_verdict_and_its_benchmarks_are_told_apart():
    """benchmark_results/batch_benchmarks_cpu_20250306_174843.json: deit-tiny's command succeeded and its
    benchmark_data says success too while its one batch failed; the two verdicts were two identical rows
    'facebook/deit-tiny-patch16-224 on cpu', passed."""
    model = "facebook/deit-tiny-patch16-224"
    conv = convert({"hardware": "cpu", "timestamp": "2025-03-06T17:48:16", "results": {model: {
        "model": model, "hardware": "cpu", "command": "python run_direct_benchmark.py", "success": True,
        "benchmark_data": {"model": model, "hardware": "cpu", "success": True, "batch_results": {
            "1": {"success": False, "error": "ViTModel.forward() got an unexpected keyword argument"}}}}}},
        "benchmark_results/batch_benchmarks_cpu_20250306_174843.json")
    verdicts = sorted((r.test_name, r.status) for r in rows(conv, "integration_test_results"))
    assert verdicts == [(f"{model} on cpu", "passed"), (f"{model} on cpu (batch 1)", "failed"),
                        (f"{model} on cpu (benchmark)", "passed")]

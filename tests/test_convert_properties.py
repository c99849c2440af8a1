"""Property-based tests: whatever the input (random JSON values, random bytes, mutated corpus files),
convert_document returns a Conversion that is ingested, skipped or failed, and never raises."""
from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmark_db.convert import Conversion, convert_document

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "data" / "legacy_corpus"
FOREIGN = Path(__file__).resolve().parents[2] / "shared" / "data" / "foreign"

# keys the readers look for, so random documents reach deep into the shape readers
KEYS = ["model", "model_name", "hardware", "device", "platform", "batch_size", "latency_ms", "avg_latency",
        "throughput", "latencies", "memory_mb", "timestamp", "status", "success", "results", "benchmarks",
        "metrics", "is_simulation", "implementation_type", "cpu", "cuda", "cpu_init", "cuda_tests", "tests",
        "batch_1_seq_128", "examples", "elapsed_time", "return_code", "model_families", "hardware_compatibility",
        "compatible", "stats", "data", "machine_info", "config", "report", "format_version", "producer",
        "test_file", "metadata", "webgpu", "unit", "values", "mean", "backend", "scenario", "launcher"]
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
                    st.floats(allow_nan=True, allow_infinity=True),
                    st.sampled_from(["cpu", "CUDA", "cuda:0", "webgpu", "bert-base-uncased", "unknown", "", "MOCK",
                                     "Success (REAL)", "Error: x", "CUDA not available", "2025-03-01T00:00:00Z",
                                     "20250302_221824", "s", "ms", "benchmark-db-runner", "test_hf_bert.py"]),
                    st.text(max_size=20))
JSON = st.recursive(SCALARS, lambda children: st.one_of(
    st.lists(children, max_size=5),
    st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=10)), children, max_size=6)),
    max_leaves=40)


def _check(conv) -> None:
    assert isinstance(conv, Conversion)
    assert conv.status in ("ingested", "skipped", "failed")
    assert "converter error" not in (conv.reason or ""), conv.reason  # a reader bug, caught by the safety net
    if conv.status == "ingested":
        assert sum(1 for r in conv.records if r.TABLE == "test_runs") == 1
        for record in conv.records:
            if record.TABLE == "performance_results":
                assert record.model_name and record.hardware_type
                for value in (record.average_latency_ms, record.throughput_items_per_second):
                    assert value is None or (value > 0 and math.isfinite(value))
    else:
        assert conv.reason and not conv.records


def _dumps(value) -> str:
    return json.dumps(value, allow_nan=True)


# a quick pass in every run; the thorough pass (-m slow) tries many more inputs
QUICK = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
THOROUGH = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _random_json(value):
    text = _dumps(value)
    _check(convert_document(text, "random/x_20250101_000000.json", hashlib.sha256(text.encode()).hexdigest()))


@pytest.mark.slow  # over 0.35 s here: outside make test-fast
@QUICK
@given(JSON)
def test_random_json_values_never_raise(value):
    _random_json(value)


@pytest.mark.slow
@THOROUGH
@given(JSON)
def test_random_json_values_never_raise_thorough(value):
    _random_json(value)


@QUICK
@given(st.binary(max_size=300))
def test_random_bytes_never_raise(data):
    _check(convert_document(data, "random.json", hashlib.sha256(data).hexdigest()))


def _corpus_files() -> list[Path]:
    files = sorted(CORPUS.rglob("*.json")) + sorted(FOREIGN.rglob("*.json"))
    return [f for f in files if f.stat().st_size < 40_000]


def _mutate(node, draw, depth=0):
    """Replace, drop or retype values somewhere in the document."""
    if isinstance(node, dict) and node:
        keys = list(node)
        key = keys[draw(st.integers(0, len(keys) - 1))]
        action = draw(st.integers(0, 4))
        node = dict(node)
        if action == 0:
            del node[key]
        elif action == 1:
            node[key] = draw(SCALARS)
        elif action == 2 and depth < 6:
            node[key] = _mutate(node[key], draw, depth + 1)
        elif action == 3:
            node[draw(st.sampled_from(KEYS))] = draw(JSON)
        else:
            node = {k: node[k] for k in reversed(keys)}  # key order must not matter
        return node
    if isinstance(node, list) and node:
        index = draw(st.integers(0, len(node) - 1))
        node = list(node)
        node[index] = _mutate(node[index], draw, depth + 1) if draw(st.booleans()) else draw(SCALARS)
        return node
    return draw(SCALARS)


def _mutated(data):
    files = _corpus_files()
    path = files[data.draw(st.integers(0, len(files) - 1))]
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        doc = json.loads(text)
    except ValueError:
        doc = None
    if doc is not None:
        for _ in range(data.draw(st.integers(1, 4))):
            doc = _mutate(doc, data.draw)
        text = _dumps(doc)
    else:
        cut = data.draw(st.integers(0, len(text)))
        text = text[:cut] + data.draw(st.text(max_size=5)) + text[cut:]
    _check(convert_document(text, str(path), hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()))


@pytest.mark.skipif(not CORPUS.is_dir(), reason="the shared corpus is not here")
@QUICK
@given(st.data())
def test_mutated_corpus_files_never_raise(data):
    _mutated(data)


@pytest.mark.slow
@pytest.mark.skipif(not CORPUS.is_dir(), reason="the shared corpus is not here")
@THOROUGH
@given(st.data())
def test_mutated_corpus_files_never_raise_thorough(data):
    _mutated(data)


@pytest.mark.skipif(not CORPUS.is_dir(), reason="the shared corpus is not here")
@QUICK
@given(st.data())
def test_truncated_corpus_files_fail_with_a_position(data):
    files = _corpus_files()
    path = files[data.draw(st.integers(0, len(files) - 1))]
    raw = path.read_bytes()
    cut = data.draw(st.integers(1, max(1, len(raw) - 2)))
    conv = convert_document(raw[:cut], str(path), hashlib.sha256(raw[:cut]).hexdigest())
    _check(conv)
    if conv.status == "failed" and conv.kind == "invalid":
        assert "line" in conv.reason and "column" in conv.reason

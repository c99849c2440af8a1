"""Times without a zone in a file that shows its own UTC offset.

The legacy system wrote `datetime.now()` (the machine's clock, no zone) beside `time.time()` (UTC epoch). In 18
corpus files every such pair lies 8 h apart, to within seconds: the machine ran on UTC-8. Taken as UTC, a run
started at 08:10 and its compatibility entries, which keep their epoch times, were stored eight hours after
it. Each test fails without the fix."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from benchmark_db.convert import local_time_offset
from tests.test_converter_qa7 import convert, convert_file, rows

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "data" / "legacy_corpus"
T5 = CORPUS / "performance_results" / "performance_test_skills_t5_20250228_081033.json"
EPOCH = dt.datetime(1970, 1, 1)


def _skill_doc(local_start: str, *epochs: float) -> dict:
    """The shape of the corpus's skill files: a run's local start time, examples stamped with time.time()."""
    return {"timestamp": local_start, "command": "run_performance_tests.py --skills",
            "skill_tests": {"test_hf_t5.py": {"test_file": "test_hf_t5.py", "elapsed_time": 11.6, "return_code": 0,
                                              "json_result": {"init": "Success", "cpu_init": "Success (REAL)",
                                                              **{f"cpu_example_{i}": {"timestamp": e}
                                                                 for i, e in enumerate(epochs)}}}}}


def _run(conv):
    [run] = rows(conv, "test_runs")
    return run


@pytest.mark.skipif(not T5.exists(), reason="the shared legacy corpus is not checked out beside the repository")
def test_the_corpus_file_of_a_machine_on_utc_minus_8_is_stored_in_utc():
    conv = convert_file(T5)
    run = _run(conv)
    assert run.started_at == dt.datetime(2025, 2, 28, 16, 10, 21, 446531)  # written "2025-02-28T08:10:21.446531"
    entries = [r.created_at for r in rows(conv, "hardware_compatibility")]
    assert entries and all(run.started_at <= t <= run.started_at + dt.timedelta(minutes=1) for t in entries)
    assert any("read as UTC-08:00" in note for note in conv.conversions), conv.conversions


def test_an_offset_east_of_utc_with_half_hours():
    start = dt.datetime(2025, 2, 28, 8, 10, 21)  # UTC; the machine's clock read 13:40:21 (UTC+05:30)
    epoch = (start - EPOCH).total_seconds()
    conv = convert(_skill_doc("2025-02-28T13:40:21", epoch + 5, epoch + 9))
    assert _run(conv).started_at == start
    assert any("read as UTC+05:30" in note for note in conv.conversions)


@pytest.mark.parametrize("local_start, why", [
    ("2025-02-28T16:10:21", "the clock was on UTC: the pairs agree on 0"),
    ("2025-02-28T16:10:21Z", "a zoned time is UTC already"),
])
def test_no_shift_without_a_non_zero_offset_written_in_the_file(local_start, why):
    epoch = (dt.datetime(2025, 2, 28, 16, 10, 25) - EPOCH).total_seconds()
    conv = convert(_skill_doc(local_start, epoch))
    assert _run(conv).started_at == dt.datetime(2025, 2, 28, 16, 10, 21), why
    assert not any("without a zone" in note for note in conv.conversions)


def test_pairs_that_disagree_shift_nothing():
    """One epoch stamp 8 h after the local time, another 3 h after: no single offset explains both."""
    start = dt.datetime(2025, 2, 28, 8, 10, 21)
    base = (start - EPOCH).total_seconds()
    conv = convert(_skill_doc("2025-02-28T08:10:21", base + 8 * 3600, base + 3 * 3600))
    assert _run(conv).started_at == start
    assert local_time_offset(b'{"timestamp": "2025-02-28T08:10:21", "a_time": 1740730221}') is None  # 0 h
    assert local_time_offset(b'{"timestamp": "2025-02-28T08:10:21", "a_time": 1740759021.0, '
                             b'"b_time": 1740730221.0}') is None  # one pair 8 h, the other 0 h


def test_offset_is_read_from_text_and_bytes_alike():
    text = '{"timestamp": "2025-02-28T08:10:21.446531", "cuda_timestamp": 1740759029.4810312}'
    assert local_time_offset(text) == local_time_offset(text.encode()) == dt.timedelta(hours=8)
    assert local_time_offset('{"timestamp": "2025-02-28T08:10:21"}') is None  # no epoch stamp: no evidence


# ------------------------------------------------------------------------------- a time taken from the path
def test_a_time_taken_from_a_path_stamp_is_said_in_the_ingest_log():
    """A document without a time of its own is dated by a YYYYMMDD_HHMMSS stamp in its path, which may be a
    folder above the results (a backup's): the log now says where the time came from."""
    doc = {"model_name": "bert-base-uncased", "hardware_type": "cpu", "batch_size": 1, "average_latency_ms": 5.0}
    conv = convert(doc, "/backups/backup_20190101_000000/apis/api_check.json")
    assert _run(conv).started_at == dt.datetime(2019, 1, 1)
    assert any("2019-01-01 00:00:00 taken from a YYYYMMDD_HHMMSS stamp" in n for n in conv.conversions), conv.conversions
    dated = convert({**doc, "timestamp": "2025-03-01T10:00:00Z"}, "/backups/backup_20190101_000000/apis/a.json")
    assert not any("YYYYMMDD_HHMMSS" in n for n in dated.conversions)  # a document's own time: nothing to say


# ------------------------------------------------------------------------------- skill tests' platform fields
LLAVA_NEXT = CORPUS / "performance_results" / "hf_llava_next_performance_20250228_000637.json"


@pytest.mark.skipif(not LLAVA_NEXT.exists(), reason="the shared legacy corpus is not checked out beside the repository")
def test_a_skill_tests_platform_figures_stay_with_its_row_and_a_simulation_it_admits_is_flagged():
    """The CUDA part of this file says "This is a simulation of a real CUDA implementation" beside its
    tokens_per_second (102.857), timings and memory: the row was not flagged simulated, and those figures were
    in no row at all (only the stored original)."""
    conv = convert_file(LLAVA_NEXT)
    hardware = {h.hardware_id: h.hardware_type for h in rows(conv, "hardware_platforms")}
    by_type = {hardware[r.hardware_id]: r for r in rows(conv, "hardware_compatibility")}
    cuda = by_type["cuda"]
    assert cuda.is_simulated is True
    assert cuda.metadata["cuda_metrics"]["tokens_per_second"] == pytest.approx(102.857, abs=1e-3)
    assert cuda.metadata["cuda_timing"]["generation_time"] == 0.35
    assert cuda.metadata["statuses"] == {"cuda_init": "Success (REAL)", "cuda_handler": "Success (REAL)"}
    assert by_type["cpu"].is_simulated is False and "cpu_text_output" in by_type["cpu"].metadata
    assert by_type["qualcomm"].is_simulated is True
    assert not rows(conv, "performance_results")  # made-up figures are not stored as measured performance


# ------------------------------------------------------------------------------- a lone surrogate escape
def test_a_lone_surrogate_escape_is_read_not_a_converter_error():
    """`"bert\\ud800x"` is valid JSON but no text: the file failed as "converter error: UnicodeEncodeError"."""
    conv = convert_document_bytes(b'{"model_name": "bert\\ud800x", "hardware_type": "cpu", "batch_size": 16, '
                                  b'"average_latency_ms": 5.0}')
    assert conv.status == "ingested", conv.reason
    assert [m.model_name for m in rows(conv, "models")] == ["bert\ufffdx"]
    assert any("surrogate" in n for n in conv.conversions)
    paired = convert_document_bytes(b'{"model_name": "bert\\ud83d\\ude00", "hardware_type": "cpu", '
                                    b'"average_latency_ms": NaN, "latency_ms": 5.0}')  # json, not orjson, reads NaN
    assert [m.model_name for m in rows(paired, "models")] == ["bert\U0001F600"]
    assert not any("surrogate" in n for n in paired.conversions)


def convert_document_bytes(data: bytes):
    import hashlib

    from benchmark_db.convert import convert_document

    return convert_document(data, "results/bench.json", hashlib.sha256(data).hexdigest())

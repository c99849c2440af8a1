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

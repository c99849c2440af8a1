"""Unit-mistake checks on skewed latency distributions (QA round 19).

`--fix-inconsistencies` multiplied the p50, stddev and samples of a correct pytest-benchmark row by 1000: its
samples were 26, 16, 16 ms and then about 0.02 ms each, so the median lay 300 times below the mean, which the
check took for figures in seconds. A skewed distribution is no unit mistake; the samples' mean is the
evidence. Each test but the last failed on the code before the fix ("before" says how).
"""
from __future__ import annotations

import pytest

from benchmark_db.connection import connect
from benchmark_db.validation import find_problems, fix_problems

# test_linear_forward of the pytest-benchmark file in the foreign corpus, as the converter stores it
SAMPLES = [26.51997099997061, 15.962251000019023, 15.935991999981525, 0.5334019999736483, 0.022764000050301547,
           0.01585400002568349, 0.020409999933690415, 0.014392000025509333, 0.013719999969907803]
SKEWED = {"total_time_seconds": 0.0590387559999499, "iterations": 9, "average_latency_ms": 6.559861777772212,
          "latency_p50_ms": 0.022764000050301547, "latency_stddev_ms": 10.155406073477728,
          "throughput_items_per_second": 152.44223641852545, "latency_samples_ms": SAMPLES}
FIGURES = ("average_latency_ms", "latency_p50_ms", "latency_stddev_ms", "latency_samples_ms")


def plant(db_path: str, **figures) -> None:
    conn = connect(db_path)
    try:
        names = ", ".join(figures)
        conn.execute(f"INSERT INTO performance_results (result_id, run_id, model_id, hardware_id, test_case, "
                     f"{names}) VALUES (7, 1, 2, 3, 'test_linear_forward', {', '.join('?' * len(figures))})",
                     list(figures.values()))
    finally:
        conn.close()


def unit_findings(db_path: str, fix: bool = False) -> list[dict]:
    conn = connect(db_path)
    try:
        found = fix_problems(conn) if fix else find_problems(conn)
        return [f for f in found if f.get("check", f.get("fix")) == "unit"]
    finally:
        conn.close()


def stored(db_path: str) -> dict:
    conn = connect(db_path, read_only=True)
    try:
        row = conn.execute(f"SELECT {', '.join(FIGURES)} FROM performance_results").fetchone()
    finally:
        conn.close()
    return dict(zip(FIGURES, row))


def test_a_skewed_row_in_ms_is_neither_flagged_nor_changed(db_path):
    plant(db_path, **SKEWED)
    # before: "latency_p50_ms 0.022764, latency_samples_ms (median 0.022764), latency_stddev_ms 10.1554 are in
    # seconds", and the fix made p50 22.76 ms and stddev 10155 ms
    assert unit_findings(db_path) == []
    assert unit_findings(db_path, fix=True) == []
    assert stored(db_path) == {c: SKEWED[c] for c in FIGURES}


def test_a_skewed_row_without_samples_is_allowed_by_its_stddev(db_path):
    plant(db_path, **{k: v for k, v in SKEWED.items() if k != "latency_samples_ms"})
    assert unit_findings(db_path) == []  # before: p50 and stddev "in seconds"


@pytest.mark.slow  # about 0.4 s: it validates, fixes and validates again
def test_the_same_row_in_seconds_is_still_found_and_fixed(db_path):
    """Samples, p50 and stddev in seconds while the total time over the iterations says the average is ms;
    before: listed for a person, not fixed."""
    plant(db_path, **{**SKEWED, "latency_p50_ms": SKEWED["latency_p50_ms"] / 1000,
                      "latency_stddev_ms": SKEWED["latency_stddev_ms"] / 1000,
                      "latency_samples_ms": [x / 1000 for x in SAMPLES]})
    [problem] = unit_findings(db_path)
    assert problem["fixable"] and problem["detail"].startswith("latency_p50_ms 2.2764e-05, latency_samples_ms")
    assert problem["detail"].endswith("are in seconds, judging by the row's total time over its iterations")
    [fix] = unit_findings(db_path, fix=True)
    assert fix["detail"].startswith("latency_p50_ms, latency_samples_ms, latency_stddev_ms were in seconds")
    after = stored(db_path)
    assert after["latency_p50_ms"] == pytest.approx(SKEWED["latency_p50_ms"])
    assert after["latency_stddev_ms"] == pytest.approx(SKEWED["latency_stddev_ms"])
    assert after["latency_samples_ms"] == pytest.approx(SAMPLES)
    assert unit_findings(db_path) == []


def test_samples_whose_mean_is_1000_times_the_average_are_in_microseconds(db_path):
    # before: not found, the samples' median (22.76 "ms") being within the average's band
    plant(db_path, **{**SKEWED, "latency_p50_ms": SKEWED["latency_p50_ms"] * 1000,
                      "latency_stddev_ms": SKEWED["latency_stddev_ms"] * 1000,
                      "latency_samples_ms": [x * 1000 for x in SAMPLES]})
    [problem] = unit_findings(db_path)
    assert problem["fixable"] and "are in microseconds" in problem["detail"]
    unit_findings(db_path, fix=True)
    assert stored(db_path)["latency_samples_ms"] == pytest.approx(SAMPLES)


def test_a_p50_in_seconds_beside_samples_in_ms_is_fixed_alone(db_path):
    """The samples' mean agrees with the average: they are ms, and the p50 is judged by their range."""
    samples = [10.0, 10.5, 9.5, 11.0, 10.0]
    plant(db_path, total_time_seconds=0.051, iterations=5, average_latency_ms=10.2, latency_p50_ms=0.01,
          latency_samples_ms=samples)
    [problem] = unit_findings(db_path)
    assert problem["detail"] == ("latency_p50_ms 0.01 is in seconds, judging by the row's total time over its "
                                 "iterations")
    unit_findings(db_path, fix=True)
    assert stored(db_path) == {"average_latency_ms": 10.2, "latency_p50_ms": pytest.approx(10.0),
                               "latency_stddev_ms": None, "latency_samples_ms": samples}

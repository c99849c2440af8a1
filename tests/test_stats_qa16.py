"""The change-point detector's true floor: how many runs a step needs before the rank test can confirm it."""
from __future__ import annotations

import numpy as np
import pytest

from benchmark_db import stats


def _step(before: int, after: int, seed: int = 0) -> list[float]:
    rng = np.random.default_rng(seed)
    return list(100 * (1 + rng.normal(0, 0.01, before))) + list(150 * (1 + rng.normal(0, 0.01, after)))


def test_the_floor_is_13_runs_and_says_what_the_detector_does():
    # 5 vs 5 of a clean 50% step: the best Mann-Whitney p is 2/252 = 0.0079 > alpha 0.005, so "5 runs per
    # side" (the old docs) or "10 runs" (the chart note) promised steps the detector cannot confirm
    assert stats.MIN_RUNS_FOR_CHANGE_POINTS == stats.min_runs_for_change_points() == 13
    for before, after in ((5, 5), (6, 6), (5, 8)):
        assert stats.detect_change_points(_step(before, after)) == []
    for before, after in ((6, 7), (7, 6), (5, 9), (9, 5), (7, 7)):
        assert [cp.index for cp in stats.detect_change_points(_step(before, after))] == [before]


def test_the_floor_follows_alpha_and_segment_length():
    assert stats.min_runs_for_change_points(0.01, 5) == 10  # 5 vs 5 at best p 0.0079 < 0.01
    assert [cp.index for cp in stats.detect_change_points(_step(5, 5), alpha=0.01)] == [5]
    assert stats.min_runs_for_change_points(1e-6, 5) > 13
    assert stats.min_runs_for_change_points(0.005, 3) == 16  # more positions searched, a stricter correction
    assert stats.detect_change_points(_step(7, 8), min_size=3) == []
    assert [cp.index for cp in stats.detect_change_points(_step(8, 8), min_size=3)] == [8]


@pytest.mark.parametrize("n", [11, 12])
def test_below_the_floor_no_values_make_a_change_point(n):
    ramp = [float(i * 1000) for i in range(n)]  # as extreme as ranks get, every split
    assert stats.detect_change_points(ramp) == []
    assert stats.detect_change_points(_step(n // 2, n - n // 2)) == []

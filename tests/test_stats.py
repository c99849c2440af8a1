"""benchmark_db.stats: the two-sample comparison and change-point detection, on synthetic data with known
truth, including conditions the published suite does not use (several steps, drift, heavy tails, short
series, a short excursion)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from benchmark_db.stats import compare_samples, detect_change_points, robust_outliers


def _noise(rng, n, cv=0.03, kind="gauss"):
    if kind == "gauss":
        return 1 + rng.normal(0, cv, n)
    if kind == "lognorm":
        return rng.lognormal(0, cv, n)
    if kind == "t3":
        return 1 + cv * rng.standard_t(3, n)
    raise ValueError(kind)


# ----------------------------------------------------------------------------------------------- compare


def test_a_a_comparisons_raise_no_alarm():
    rng = np.random.default_rng(1)
    verdicts = [compare_samples(100 * (1 + rng.normal(0, 0.05, 30)), 100 * (1 + rng.normal(0, 0.05, 30)),
                                threshold_pct=5).verdict for _ in range(200)]
    assert verdicts.count("unchanged") == 200


def test_ten_percent_slowdown_is_a_regression_with_evidence():
    rng = np.random.default_rng(2)
    hits = 0
    for _ in range(100):
        res = compare_samples(100 * (1 + rng.normal(0, 0.05, 30)), 110 * (1 + rng.normal(0, 0.05, 30)))
        hits += res.verdict == "regression"
    assert hits >= 95
    res = compare_samples([100, 101, 99, 100.5, 99.5, 100.2], [110, 111, 109, 110.5, 109.5, 110.3])
    assert res.verdict == "regression" and res.evidence == "samples"
    assert res.p_value < 0.01 and res.change_pct == pytest.approx(10.2, abs=0.5)
    assert res.median_before == pytest.approx(100.1) and res.median_after == pytest.approx(110.15)
    json.dumps(res.to_dict())


def test_direction_follows_the_metric():
    before, after = [100, 101, 99, 100.5, 99.5, 100.2] * 3, [90, 91, 89, 90.5, 89.5, 90.2] * 3
    assert compare_samples(before, after).verdict == "improvement"  # latency went down
    assert compare_samples(before, after, higher_is_worse=False).verdict == "regression"  # throughput went down


def test_significant_but_small_change_is_not_a_regression():
    rng = np.random.default_rng(3)
    res = compare_samples(100 * (1 + rng.normal(0, 0.005, 200)), 102 * (1 + rng.normal(0, 0.005, 200)),
                          threshold_pct=5)
    assert res.p_value < 1e-6 and res.verdict == "unchanged" and "threshold" in res.note


def test_large_but_noisy_change_is_not_a_regression():
    res = compare_samples([100, 60, 140, 80, 120, 95], [110, 70, 150, 90, 130, 100], threshold_pct=5)
    assert res.verdict == "unchanged" and res.p_value > 0.01


def test_aggregates_fall_back_to_the_threshold_and_say_so():
    res = compare_samples(100.0, 108.0, threshold_pct=5)
    assert res.verdict == "regression" and res.evidence == "aggregates" and res.p_value is None
    assert "weaker" in res.note
    assert compare_samples([100.0], [103.0], threshold_pct=5).verdict == "unchanged"
    empty = compare_samples([], [1.0, 2.0])
    assert empty.verdict == "unchanged" and "nothing to compare" in empty.note


def test_outliers_do_not_make_a_regression():
    rng = np.random.default_rng(4)
    ref = list(100 * (1 + rng.normal(0, 0.02, 30)))
    cur = list(100 * (1 + rng.normal(0, 0.02, 30)))
    cur[:3] = [300.0, 250.0, 400.0]  # three hiccups in the current run
    assert compare_samples(ref, cur).verdict == "unchanged"


# ----------------------------------------------------------------------------------------- change points


def _rate(make, truth, n_series=60, seed=0, tol=3):
    rng = np.random.default_rng(seed)
    found = alarms = 0
    for _ in range(n_series):
        points = [cp.index for cp in detect_change_points(make(rng))]
        found += all(any(abs(p - t) <= tol for p in points) for t in truth)
        alarms += any(all(abs(p - t) > tol for t in truth) for p in points)
    return found / n_series, alarms / n_series


def test_result_fields_and_dict_access():
    values = [100.0] * 20 + [120.0] * 20
    values = [v * (1 + 0.01 * ((i * 7919) % 11 - 5) / 5) for i, v in enumerate(values)]
    (cp,) = detect_change_points(values)
    assert cp.index == 20 and cp["index"] == 20
    assert cp.median_before == pytest.approx(100, rel=0.02) and cp.median_after == pytest.approx(120, rel=0.02)
    assert cp.change_pct == pytest.approx(20, abs=2) and cp.p_value < 0.005 and cp.direction == "up"
    assert json.loads(json.dumps(cp.to_dict()))["index"] == 20


@pytest.mark.slow  # over 1.5 s: outside make test-fast
@pytest.mark.parametrize("kind", ["gauss", "lognorm", "t3"])
def test_flat_series_raise_no_alarm(kind):
    for n in (8, 20, 60, 200):
        _, alarms = _rate(lambda rng, n=n: 100 * _noise(rng, n, 0.05, kind), [], n_series=40, seed=n)
        assert alarms <= 0.05, (kind, n, alarms)


def test_single_noisy_point_is_not_a_change():
    rng = np.random.default_rng(5)
    for spot in (0, 10, 30, 59):
        values = 100 * _noise(rng, 60)
        values[spot] *= 3
        assert detect_change_points(values) == []
    values = 100 * _noise(rng, 60)
    values[[12, 31, 47]] *= 2.5  # scattered hiccups are not a level change either
    assert detect_change_points(values) == []


@pytest.mark.slow  # 3 s: many long series through the detector
def test_several_steps_are_all_found():
    levels = np.r_[np.ones(30), 1.1 * np.ones(30), 0.95 * np.ones(30), 1.15 * np.ones(30)]
    found, alarms = _rate(lambda rng: 100 * levels * _noise(rng, 120), [30, 60, 90])
    assert found >= 0.95 and alarms <= 0.05
    cps = detect_change_points(100 * levels * _noise(np.random.default_rng(9), 120))
    assert [cp.direction for cp in cps] == ["up", "down", "up"]


@pytest.mark.slow  # over a second
def test_short_excursion_that_cancels_out_is_found():
    levels = np.r_[np.ones(25), 1.15 * np.ones(12), np.ones(23)]
    found, alarms = _rate(lambda rng: 100 * levels * _noise(rng, 60), [25, 37])
    assert found >= 0.85 and alarms <= 0.05


@pytest.mark.slow  # over 1.5 s: outside make test-fast
@pytest.mark.parametrize("kind", ["lognorm", "t3"])
def test_heavy_tailed_noise_with_outliers(kind):
    def make(rng):
        values = 100 * np.r_[np.ones(35), 1.12 * np.ones(25)] * _noise(rng, 60, 0.03, kind)
        spikes = rng.random(60) < 0.08
        values[spikes] *= rng.uniform(1.5, 3.0, spikes.sum())
        return values
    found, alarms = _rate(make, [35])
    assert found >= 0.9 and alarms <= 0.05


@pytest.mark.slow  # over a second
def test_improvement_steps_are_found_too():
    found, _ = _rate(lambda rng: 100 * np.r_[np.ones(40), 0.88 * np.ones(20)] * _noise(rng, 60), [40])
    assert found >= 0.98


def test_short_series():
    found, alarms = _rate(lambda rng: 100 * np.r_[np.ones(8), 1.15 * np.ones(8)] * _noise(rng, 16), [8])
    assert found >= 0.9 and alarms <= 0.05
    assert detect_change_points([100, 130, 100, 131, 99]) == []  # too short to tell anything
    assert detect_change_points([]) == [] and detect_change_points([5.0]) == []


@pytest.mark.slow  # over 0.35 s here: outside make test-fast
def test_slow_drift_is_not_a_flood_of_steps():
    rng = np.random.default_rng(6)
    small = [len(detect_change_points(100 * np.linspace(1, 1.02, 60) * _noise(rng, 60))) for _ in range(40)]
    assert sum(small) <= 2  # a 2% drift under 3% noise is not a step
    big = detect_change_points(100 * np.linspace(1, 1.3, 80) * _noise(rng, 80, 0.01))
    # a strong drift is described as a few up-steps, never as noise or as a step per run
    assert 1 <= len(big) <= 6 and all(cp.direction == "up" for cp in big)


def test_missing_values_keep_indices():
    values = [100.0 + (i % 3) * 0.5 for i in range(20)] + [130.0 + (i % 3) * 0.5 for i in range(20)]
    values[5] = None
    values[25] = float("nan")
    (cp,) = detect_change_points(values)
    assert cp.index == 20


def test_constant_series_and_ties():
    assert detect_change_points([5.0] * 50) == []
    (cp,) = detect_change_points([5.0] * 25 + [6.0] * 25)
    assert cp.index == 25


def test_robust_outliers():
    values = [10.0, 10.2, 9.9, 10.1, 10.0, 25.0, 9.8, 10.3]
    assert robust_outliers(values) == [5]
    assert robust_outliers([1.0, 2.0]) == []

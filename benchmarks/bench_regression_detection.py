#!/usr/bin/env python3
"""Measure the regression statistics against the issue's targets, with naive baselines from the same run.

1. Change points: runs `../shared/tools/changepoint_suite.py benchmark_db.stats:detect_change_points` from
   the repository root (target: >= 98% of steps detected and <= 1% of series falsely alarmed in every
   condition), and the same suite on a naive detector (a step whenever the mean of the next 5 runs differs
   from the mean of the previous 5 by more than 5%) as the baseline.
2. Two samples: 200 A/A comparisons (30 samples per side, 5% CV) and 200 A/B comparisons with a 10% shift,
   at threshold 5% and the default alpha (targets: 0 false alarms, >= 95% detected), beside the naive rule
   "the means differ by more than the threshold" that single-number tools apply.

    .venv/bin/python benchmarks/bench_regression_detection.py [--series 100] [--comparisons 200]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SUITE = REPO.parent / "shared" / "tools" / "changepoint_suite.py"
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def naive_detector(values, window=5, threshold=0.05):
    """The baseline: compare the mean of the next `window` runs with the previous `window` runs."""
    points, i = [], window
    while i <= len(values) - window:
        before = sum(values[i - window:i]) / window
        after = sum(values[i:i + window]) / window
        if before and abs(after / before - 1) > threshold:
            points.append(i)
            i += window
        else:
            i += 1
    return points


def run_suite(detector: str, series: int) -> tuple[str, float]:
    start = time.perf_counter()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), str(REPO / "benchmarks")]))
    proc = subprocess.run([sys.executable, str(SUITE), detector, "--series", str(series)], cwd=REPO, env=env,
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"changepoint suite failed for {detector}:\n{proc.stderr}")
    return proc.stdout, time.perf_counter() - start


def two_sample_study(n_comparisons: int, threshold: float, seed: int = 11) -> dict:
    import numpy as np

    from benchmark_db.stats import compare_samples

    rng = np.random.default_rng(seed)
    out = {"aa_alarms": 0, "ab_found": 0, "naive_aa_alarms": 0, "naive_ab_found": 0, "single_aa_alarms": 0,
           "single_ab_found": 0}
    for shift, found_key, naive_key in ((0.0, "aa_alarms", "naive_aa_alarms"), (0.10, "ab_found", "naive_ab_found")):
        single_key = naive_key.replace("naive", "single")
        for _ in range(n_comparisons):
            ref = 100 * (1 + rng.normal(0, 0.05, 30))
            cur = 100 * (1 + shift) * (1 + rng.normal(0, 0.05, 30))
            out[found_key] += compare_samples(ref, cur, threshold_pct=threshold).verdict == "regression"
            out[naive_key] += (cur.mean() / ref.mean() - 1) * 100 > threshold
            out[single_key] += (cur[0] / ref[0] - 1) * 100 > threshold  # one number per run, as asv-style tools
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=100, help="series per suite condition (default 100)")
    parser.add_argument("--comparisons", type=int, default=200, help="A/A and A/B comparisons (default 200)")
    parser.add_argument("--threshold", type=float, default=5.0)
    args = parser.parse_args(argv)
    if not SUITE.is_file():
        print(f"error: {SUITE} not found (the shared/ folder sits beside the repository)", file=sys.stderr)
        return 3

    print("== change points: benchmark_db.stats.detect_change_points")
    ours, seconds = run_suite("benchmark_db.stats:detect_change_points", args.series)
    print(ours.rstrip())
    print(f"   ({seconds:.1f} s for {3 * args.series} series)")
    print("== change points: naive baseline (5-run window means differ by > 5%)")
    base, _ = run_suite("bench_regression_detection:naive_detector", args.series)
    print(base.rstrip())

    from benchmark_db.stats import compare_samples

    n = args.comparisons
    study = two_sample_study(n, args.threshold)
    alpha = compare_samples.__defaults__[1]
    print(f"== two samples: 30 vs 30 samples, 5% CV, threshold {args.threshold:g}%, alpha {alpha:g}")
    print(f"compare_samples      A/A false alarms {study['aa_alarms']:4d}/{n} ({study['aa_alarms'] / n:6.1%})   "
          f"A/B +10% detected {study['ab_found']:4d}/{n} ({study['ab_found'] / n:6.1%})")
    print(f"naive mean > {args.threshold:g}%      A/A false alarms {study['naive_aa_alarms']:4d}/{n} "
          f"({study['naive_aa_alarms'] / n:6.1%})   A/B +10% detected {study['naive_ab_found']:4d}/{n} "
          f"({study['naive_ab_found'] / n:6.1%})")
    print(f"one value per run > {args.threshold:g}% A/A false alarms {study['single_aa_alarms']:4d}/{n} "
          f"({study['single_aa_alarms'] / n:6.1%})   A/B +10% detected {study['single_ab_found']:4d}/{n} "
          f"({study['single_ab_found'] / n:6.1%})")
    worst = [line for line in ours.splitlines() if line.startswith("worst:")]
    ok_cp = False
    if worst:
        parts = worst[0].replace("%", "").replace(",", "").split()
        ok_cp = float(parts[2]) >= 98.0 and float(parts[5]) <= 1.0
    ok_two = study["aa_alarms"] == 0 and study["ab_found"] >= 0.95 * n
    print(f"targets: change points {'met' if ok_cp else 'NOT met'}; two-sample {'met' if ok_two else 'NOT met'}")
    return 0 if ok_cp and ok_two else 1


if __name__ == "__main__":
    sys.exit(main())

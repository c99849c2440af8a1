"""performance-trends reports a latency change as a factor: a steep, noisy fall reads as -90%, never below
-100% (a straight-line fit on milliseconds claimed -230%), a halving as -50% and a doubling as +100%."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from benchmark_db_models import BenchmarkDB
from tests.test_analytics import T0, _write, run_main

RUNS = 12
# hardware -> latency at the last run over the first: the fitted change over the span should be (factor - 1)
FACTORS = {"cpu": 0.1, "cuda": 0.5, "openvino": 2.0}
NOISE = {"cpu": 0.15, "cuda": 0.1, "openvino": 0.1}


def _geometric_rows():
    """One bert series per hardware, RUNS daily runs, latency moving geometrically by FACTORS with
    multiplicative noise."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(RUNS):
        when = T0 + dt.timedelta(days=i)
        for hw, factor in FACTORS.items():
            latency = 100.0 * factor ** (i / (RUNS - 1)) * rng.lognormal(0, NOISE[hw])
            rows.append(dict(model="bert-base-uncased", family="bert", params=110, hw=hw, batch=1, precision="fp32",
                             latency=latency, when=when))
    return rows


@pytest.mark.slow  # a chart per analysis: over a second
def test_trend_change_is_a_factor_never_below_minus_100(tmp_path, capsys):
    db = _write(tmp_path / "fall.duckdb", _geometric_rows()
                + [dict(model="bert-base-uncased", family="bert", params=110, hw="cpu", batch=1, precision="fp32",
                        latency=1.0, when=T0 + dt.timedelta(days=RUNS + 1))])
    with BenchmarkDB(db) as bdb:  # a run after the others that stored 0 ms: no measurement, left out of the fit
        bdb.conn.execute("UPDATE performance_results SET average_latency_ms = 0 WHERE created_at = ?",
                         [T0 + dt.timedelta(days=RUNS + 1)])
    out_dir = tmp_path / "out"
    code, out, _ = run_main(["--db", db, "--analysis", "performance-trends", "--output-dir", str(out_dir)], capsys)
    assert code == 0
    trends = pd.read_csv(out_dir / "performance-trends.csv").set_index("hardware")
    assert set(trends.index) == set(FACTORS)
    for hw, factor in FACTORS.items():
        row = trends.loc[hw]
        change = row["change_pct_over_span"]
        assert change > -100, (hw, change)
        assert change == pytest.approx((factor - 1) * 100, abs=8 if factor < 1 else 20), hw
        assert row["change_pct_over_span_ci_low"] <= change <= row["change_pct_over_span_ci_high"]
        assert row["change_pct_over_span_ci_low"] > -100
        # the per-day rate compounds to the change over the span (the same log fit)
        daily = row["slope_pct_per_day"]
        assert ((1 + daily / 100) ** row["span_days"] - 1) * 100 == pytest.approx(change)
        # the ms slope is the absolute rate, and has the same sign
        assert np.sign(row["slope_ms_per_day"]) == np.sign(change) == np.sign(factor - 1)
        assert row["slope_ci_low"] <= row["slope_ms_per_day"] <= row["slope_ci_high"]
    assert trends.loc["cpu", "change_pct_over_span"] < trends.loc["cuda", "change_pct_over_span"] < 0
    assert (trends["runs"] == RUNS).all()  # the 0 ms run is not a point of the cpu series
    assert (trends["span_days"] == RUNS - 1).all()
    assert "(-50% = half the latency, +100% = double)" in out  # the summary says how to read the column

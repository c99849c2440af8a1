"""The trend chart's change-point labels name the series that changed, in its colour, one under another and
on a white ground (session 15): two series changing at one run drew two bare "-30%" labels on top of each other
and of the top line, and nothing said which line had changed."""
from __future__ import annotations

import datetime as dt
import random

import pytest

from benchmark_db import charts, reports
from benchmark_db.connection import connect
from benchmark_db.reports import ReportFilters
from benchmark_db_api import BenchmarkDBAPI


@pytest.mark.slow  # about 1.5 s: stores 28 results, detects, draws
def test_change_point_labels_name_their_series_and_do_not_overlap(db_path):
    rng = random.Random(1)
    rows = []
    for run in range(14):
        when = (dt.datetime(2026, 11, 1, tzinfo=dt.UTC) + dt.timedelta(days=run)).isoformat()
        for batch, base in ((1, 100.0), (8, 400.0)):
            level = base * (0.7 if run >= 7 else 1.0)
            rows.append({"model_name": "bert", "hardware_type": "cpu", "batch_size": batch, "precision": "fp32",
                         "throughput": level, "test_name": "nightly", "started_at": when, "created_at": when,
                         "latency_samples": [batch * 1000.0 / level * (1 + rng.uniform(-0.03, 0.03))
                                             for _ in range(20)]})
    api = BenchmarkDBAPI(db_path)
    api.store_many(rows)
    api.db.close()
    with connect(db_path, read_only=True) as conn:
        trend = reports.trend_table(conn, ReportFilters.make(model="bert"))
    points, _ = reports.trend_change_points(trend)
    assert len(points) == 2
    fig = charts.trend_figure(trend, points, "throughput")
    try:
        labels = {text.get_text().split("\n")[0]: text for text in fig.axes[0].texts}
        assert set(labels) == {"batch 1 fp32", "batch 8 fp32"}
        handles, names = fig.axes[0].get_legend_handles_labels()  # errorbar containers: [0] is the data line
        lines = {name: handle[0].get_color() for handle, name in zip(handles, names) if name in labels}
        offsets = set()
        for label, text in labels.items():
            assert "-30" in text.get_text() or "-29" in text.get_text()
            assert text.get_color() == lines[label]  # in the colour of the line that changed
            assert text.get_bbox_patch() is not None  # on a white ground
            offsets.add(text.xyann[1])
        assert len(offsets) == 2  # one under the other
    finally:
        charts._plt().close(fig)

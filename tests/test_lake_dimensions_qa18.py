"""A lake's duplicate dimension row (two writers adding the same new model at once both insert it: DuckLake has
no primary keys) counted each result of that model twice in the reports, the hardware comparison, the
regression check and the API's pages, which joined the tables themselves; the views read one row per id."""
from __future__ import annotations

import datetime as dt
import json

import pytest

import benchmark_db_query
from benchmark_db_api import BenchmarkDBAPI
from benchmark_db_models import BenchmarkDB, PerformanceResults, TestRuns


@pytest.fixture
def lake(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCHMARK_DB_STATE_DIR", str(tmp_path / "state"))
    target = f"ducklake:{tmp_path / 'dup.ducklake'}"
    with BenchmarkDB(db_path=target) as db:
        for day in (3, 1):
            when = dt.datetime.now(dt.UTC) - dt.timedelta(days=day)
            run_id = db.insert_test_runs(TestRuns(test_name=f"run{day}", test_type="performance", started_at=when))
            db.insert_performance_results(PerformanceResults(
                run_id=run_id, model_id=db.get_or_add_model("qa-model"), hardware_id=db.get_or_add_hardware("cpu"),
                test_case="embedding", batch_size=1, precision="fp32", throughput_items_per_second=100.0 * day,
                average_latency_ms=10.0 / day, created_at=when))
        db.conn.execute("INSERT INTO models SELECT * FROM models")  # what the race leaves
        db.conn.execute("INSERT INTO hardware_platforms SELECT * FROM hardware_platforms")
    return target


def _json(capsys, *argv) -> dict | list:
    assert benchmark_db_query.main([*argv, "--format", "json"]) in (0, 1)
    return json.loads(capsys.readouterr().out)


@pytest.mark.slow  # about 3 s: a file lake and several reports
def test_every_reader_counts_each_result_once(lake, capsys):
    rows = _json(capsys, "--db", lake, "--report", "performance")["sections"]["performance"]["rows"]
    assert [row["results"] for row in rows] == [2]
    [compared] = _json(capsys, "--db", lake, "--compare-hardware")
    assert compared["results"] == 2
    check = _json(capsys, "--db", lake, "--regression-check", "--last-days", "2")
    [finding] = check["regressions"] + check["improvements"] + check["unchanged"] + check["skipped"]
    assert (finding["rows_before"], finding["rows_after"]) == (1, 1)
    frame = BenchmarkDBAPI(db_path=lake).get_performance_metrics(model_name="qa-model")
    assert len(frame) == 2 and frame["result_id"].is_unique

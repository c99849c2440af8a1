"""Two checks --validate lacked (session 16 QA): percentiles out of order beyond p50 above p99 (p50 30 ms above
p90 25 ms passed), and the same measurement stored in several runs (a result file written out again,
reformatted so its sha256 differs; the legacy corpus's critical_model_tests_*.json repeat the skills' results)."""
from __future__ import annotations

import datetime as dt

import pytest

from benchmark_db.connection import connect
from benchmark_db.validation import find_problems

WHEN = dt.datetime(2025, 3, 1, 15, 10, 15)


def _problems(db_path, rows: list[tuple]) -> list[tuple]:
    conn = connect(db_path)
    try:
        # each pair of result ids (10 and 11, ...) one configuration, measured in runs 1 and 2
        conn.executemany("INSERT INTO performance_results (result_id, run_id, model_id, hardware_id, model_name, "
                         "created_at, average_latency_ms, latency_p50_ms, latency_p90_ms, latency_p95_ms, "
                         "latency_p99_ms, test_case) VALUES (?, ?, 2, 3, 'm', ?, ?, ?, ?, ?, ?, ?)",
                         [(*row, f"case{row[0] // 2}") for row in rows])
        return [(p["check"], p["id"], p["detail"]) for p in find_problems(conn)
                if p["check"] in ("impossible", "duplicate") and p["table"] == "performance_results"]
    finally:
        conn.close()


def test_each_percentile_above_the_next_is_impossible(db_path):
    assert _problems(db_path, [
        (1, 1, WHEN, 20.0, 30.0, 25.0, None, 40.0),      # p50 above p90
        (2, 1, WHEN, 20.0, 10.0, None, 35.0, 30.0),      # p95 above p99, p90 missing
        (5, 1, WHEN, 20.0, 10.0, 20.0, 20.0, 30.0),      # in order (equal is fine)
        (6, 2, WHEN, 20.0, 50.0, None, None, 40.0),      # p50 above p99, as before
    ]) == [("impossible", 1, "p50 30.0 ms is above p90 25.0 ms"), ("impossible", 2, "p95 35.0 ms is above p99 30.0 ms"),
           ("impossible", 6, "p50 50.0 ms is above p99 40.0 ms")]


def test_the_same_measurement_in_two_runs_is_a_duplicate_and_undated_or_other_ones_are_not(db_path):
    later = WHEN + dt.timedelta(seconds=1)
    found = _problems(db_path, [
        (10, 1, WHEN, 20.0, None, None, None, None), (11, 2, WHEN, 20.0, None, None, None, None),  # twice
        (12, 1, later, 20.0, None, None, None, None), (13, 2, later, 21.0, None, None, None, None),  # other figures
        (14, 1, None, 20.0, None, None, None, None), (15, 2, None, 20.0, None, None, None, None),  # no time
    ])
    assert found == [("duplicate", 10, "the same result (m, measured 2025-03-01 15:10:15, the same figures) is "
                                       "stored in 2 runs: [10, 11]")]


@pytest.mark.slow  # about 1.5 s: an archive and three validations
def test_validate_sees_the_rows_archive_data_moved_and_leaves_them_unfixed(tmp_path, capsys):
    """Before: once --archive-data had moved a row to Parquet, --validate (on a writer's connection) no longer
    listed its problem, while a copy merged from the database's Parquet export still did."""
    import json

    import benchmark_db_maintenance
    import benchmark_db_migration

    db = str(tmp_path / "db.duckdb")
    conn = connect(db)
    try:  # throughput 1000/s beside batch 1 and 100 ms (10/s); and a zero throughput, which is fixable
        conn.executemany("INSERT INTO performance_results (result_id, run_id, model_id, hardware_id, model_name, "
                         "created_at, batch_size, average_latency_ms, throughput_items_per_second, test_case) "
                         "VALUES (?, 1, 2, 3, 'm', ?, 1, 100.0, ?, ?)",
                         [(1, WHEN, 1000.0, "a"), (2, WHEN, 0.0, "b")])
    finally:
        conn.close()
    assert benchmark_db_maintenance.main(["--db", db, "--archive-data", "--older-than", "30", "--archive-dir",
                                          str(tmp_path / "archived"), "--quiet"]) == 0
    capsys.readouterr()
    for fix in ([], ["--fix-inconsistencies"]):
        assert benchmark_db_migration.main(["--db", db, "--validate", *fix, "--format", "json", "--quiet"]) == 1
        found = {(p["check"], p["id"], p["fixable"]) for p in json.loads(capsys.readouterr().out)["problems"]}
        assert {("throughput", 1, False), ("impossible", 2, False)} <= found

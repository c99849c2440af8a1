"""--validate and --fix-inconsistencies name the input file a problem row came from (QA round 17).

They listed each problem by table and row id only, so a person had to trace a result id back through its
run to find the file to open. Each test failed before the change.
"""
from __future__ import annotations

import datetime as dt
import json
import os

import pytest

import benchmark_db_migration
from benchmark_db.validation import find_problems, fix_problems

pytestmark = pytest.mark.slow  # each test builds a database and validates it: 0.4 to 0.6 s here

# 200 items/s at batch 4 is 20 ms a batch: 50 ms disagrees beyond the tolerance
DISAGREES = {"batch_size": 4, "average_latency_ms": 50.0, "throughput_items_per_second": 200.0}
# 0.04 "ms" with 200 items/s at batch 8 is 40 ms recorded in seconds: a safe fix
IN_SECONDS = {"batch_size": 8, "average_latency_ms": 0.04, "throughput_items_per_second": 200.0}


def planted(db_path: str, source: str) -> dict[str, int]:
    """One run read from `source` and one written by the API (no file), each with a performance row whose
    throughput disagrees with its latency, plus a unit mistake, an impossible compatibility score and an
    impossible run, all from `source`; {name: id}."""
    from benchmark_db_models import BenchmarkDB, PerformanceResults, TestRuns

    with BenchmarkDB(db_path) as db:
        start = dt.datetime(2025, 3, 5, 12, 0)
        from_file = db.insert_test_runs(TestRuns(test_name="from-file", source_path=source, source_sha256="ab" * 32,
                                                 started_at=start, completed_at=start - dt.timedelta(hours=1)))
        from_api = db.insert_test_runs(TestRuns(test_name="from-api"))
        model, cpu = db.get_or_add_model("bert-base-uncased"), db.get_or_add_hardware("cpu")
        db.insert_many([PerformanceResults(model_id=model, hardware_id=cpu, run_id=from_file, sequence_length=1,
                                           **DISAGREES),
                        PerformanceResults(model_id=model, hardware_id=cpu, run_id=from_api, sequence_length=2,
                                           **DISAGREES),
                        PerformanceResults(model_id=model, hardware_id=cpu, run_id=from_file, sequence_length=3,
                                           **IN_SECONDS)])
        ids = {name: db.conn.execute("SELECT result_id FROM performance_results WHERE sequence_length = ?",
                                     [n]).fetchone()[0] for n, name in ((1, "file"), (2, "api"), (3, "seconds"))}
        db.conn.execute("INSERT INTO hardware_compatibility (compatibility_id, run_id, model_id, hardware_id, "
                        "compatibility_score) VALUES (17, ?, ?, ?, -1.0)", [from_file, model, cpu])
    return {**ids, "run": from_file, "compatibility": 17}


def test_find_problems_names_the_source_file_of_each_row_and_nothing_for_api_rows(db_path, tmp_path):
    source = str(tmp_path / "legacy" / "bert_cpu.json")
    ids = planted(db_path, source)
    import duckdb

    with duckdb.connect(db_path) as conn:
        problems = {(p["check"], p["table"], p["id"]): p for p in find_problems(conn)}
    assert problems["throughput", "performance_results", ids["file"]]["source"] == source
    assert problems["throughput", "performance_results", ids["api"]]["source"] is None  # never invented
    assert problems["unit", "performance_results", ids["seconds"]]["source"] == source
    assert problems["impossible", "hardware_compatibility", ids["compatibility"]]["source"] == source
    assert problems["impossible", "test_runs", ids["run"]]["source"] == source


def test_fix_problems_names_the_source_file_of_each_fixed_row(db_path, tmp_path):
    source = str(tmp_path / "legacy" / "bert_cpu.json")
    ids = planted(db_path, source)
    import duckdb

    with duckdb.connect(db_path) as conn:
        fixes = fix_problems(conn)
    assert [(f["fix"], f["id"], f["source"]) for f in fixes] == [("unit", ids["seconds"], source)]


def test_the_listing_ends_each_detail_with_the_file_relative_to_the_current_directory(
        db_path, tmp_path, capsys, monkeypatch):
    source = str(tmp_path / "legacy" / "bert_cpu.json")
    ids = planted(db_path, source)
    monkeypatch.chdir(tmp_path)
    assert benchmark_db_migration.main(["--validate", "--db", db_path, "--format", "table"]) == 1
    lines = capsys.readouterr().out.splitlines()
    shown = os.path.join("legacy", "bert_cpu.json")
    row = {name: next(line for line in lines if str(ids[name]) in line) for name in ("file", "api", "seconds")}
    assert row["file"].rstrip().endswith(f"(ratio 2.50, tolerance 50%) (from {shown})  False")
    assert f"(from {shown})" in row["seconds"] and "(from" not in row["api"]
    assert source not in "\n".join(lines)  # the short form, not the stored absolute path

    assert benchmark_db_migration.main(["--fix-inconsistencies", "--db", db_path, "--format", "json"]) == 1
    result = json.loads(capsys.readouterr().out)
    assert [f["source"] for f in result["fixes"]] == [source]  # data keeps the path as stored
    assert {p["id"]: p["source"] for p in result["problems"] if p["check"] == "throughput"} == {
        ids["file"]: source, ids["api"]: None}

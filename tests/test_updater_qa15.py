"""QA round 15 of benchmark_db_updater.py and benchmark_db_converter.py: files that break after they were
ingested, a Parquet export of a database that is not there, what a dry run and a misplaced run say."""
from __future__ import annotations

import os

import pytest

import benchmark_db_converter
import benchmark_db_updater
from tests.test_updater import run_json, write
from tests.test_updater_qa import perf_doc, state


@pytest.mark.slow  # four updater runs
def test_a_file_that_turns_into_invalid_json_keeps_its_earlier_rows(tmp_path, capsys):
    db, folder = str(tmp_path / "u.duckdb"), tmp_path / "new"
    write(folder / "a.json", perf_doc())
    run_json(capsys, ["--scan-dir", str(folder), "--incremental", "--db", db])
    before, _ = state(db)
    (folder / "a.json").write_text('{"model": "half written')  # a tool writing it in place, a bad edit
    out = run_json(capsys, ["--scan-dir", str(folder), "--incremental", "--db", db])
    assert out["files"][0]["status"] == "failed"
    assert "earlier rows are kept" in out["files"][0]["reason"]
    assert state(db)[0] == before  # a broken file is no new content: its last good rows and original stay
    write(folder / "a.json", perf_doc(latency=50.0))  # fixed with other figures: they replace the earlier ones
    run_json(capsys, ["--scan-dir", str(folder), "--incremental", "--db", db])
    assert state(db)[0] == before
    assert state(db) == state_of_fresh_ingest(tmp_path, capsys, folder)


@pytest.mark.slow  # four updater runs
def test_a_file_that_cannot_be_read_for_a_while_does_not_double_its_rows(tmp_path, capsys):
    db, folder = str(tmp_path / "u.duckdb"), tmp_path / "new"
    write(folder / "a.json", perf_doc())
    run_json(capsys, ["--scan-dir", str(folder), "--incremental", "--db", db])
    (folder / "a.json").unlink()
    os.symlink(tmp_path / "missing.json", folder / "a.json")  # unreadable for a while (a link to a gone disk)
    out = run_json(capsys, ["--scan-dir", str(folder), "--incremental", "--db", db])
    assert out["files"][0]["status"] == "failed"
    (folder / "a.json").unlink()
    write(folder / "a.json", perf_doc(latency=50.0))
    run_json(capsys, ["--scan-dir", str(folder), "--incremental", "--db", db])
    assert state(db) == state_of_fresh_ingest(tmp_path, capsys, folder)  # the earlier 2 rows were doubled


def state_of_fresh_ingest(tmp_path, capsys, folder):
    db = str(tmp_path / "fresh.duckdb")
    run_json(capsys, ["--scan-dir", str(folder), "--db", db])
    return state(db)


def test_parquet_export_of_a_missing_database_is_an_error(tmp_path, capsys):
    db = tmp_path / "mistyped.duckdb"
    code = benchmark_db_converter.main(["--output-db", str(db), "--parquet-dir", str(tmp_path / "pq"), "-q"])
    assert code == 3
    assert capsys.readouterr().err.startswith(f"error DB001: database {db} does not exist")
    assert not db.exists() and not (tmp_path / "pq").exists()  # no empty database, no empty export


def test_an_output_that_is_a_folder_is_refused_before_any_work(tmp_path, capsys):
    db = tmp_path / "u.duckdb"
    write(tmp_path / "new" / "a.json", perf_doc())
    code = benchmark_db_updater.main(["--scan-dir", str(tmp_path / "new"), "--db", str(db), "--output", str(tmp_path)])
    assert code == 2
    assert capsys.readouterr().err.startswith(f"error DB000: --output {tmp_path} is a folder")
    assert not db.exists()  # the rows used to be stored, then the summary failed: exit 2 after a run that worked


@pytest.mark.slow  # three updater runs
def test_a_dry_run_says_the_rows_of_a_changed_file_would_be_replaced(tmp_path, capsys):
    db, folder = str(tmp_path / "u.duckdb"), tmp_path / "new"
    write(folder / "a.json", perf_doc())
    run_json(capsys, ["--input-file", str(folder / "a.json"), "--db", db])
    write(folder / "a.json", perf_doc(latency=50.0))
    out = run_json(capsys, ["--input-file", str(folder / "a.json"), "--db", db, "--dry-run"])
    # "its earlier rows were replaced" read as if the dry run had changed the database
    assert out["files"][0]["reason"] == "changed since the last ingest: its earlier rows would be replaced"


def test_consolidate_where_no_result_directory_exists_says_so(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # run from the wrong folder: it used to report "(no files found)", and with
    # --quiet nothing at all (each missing folder was an info line)
    assert benchmark_db_converter.main(["--consolidate", "--output-db", "c.duckdb", "-q", "--format", "csv"]) == 0
    err = capsys.readouterr().err
    assert "WARNING none of the 18 default result directories (listed in --help) exists in" in err and str(tmp_path) in err


@pytest.mark.slow  # a store and an updater run
def test_a_runner_document_left_on_disk_keeps_the_time_it_was_measured(tmp_path, capsys):
    """A runner's document stored directly got its rows' created_at from the column default (the store time);
    left by --no-db-store and taken by --auto-store, none at all: the oldest result in every report, and
    latest_performance_metrics showed an older run instead of it. Both now take the run's completion."""
    import json

    import duckdb

    from benchmark_db.runner_format import document_from_run
    from runners.engine import store_document

    def doc(latency: float, started: str, completed: str) -> dict:
        return document_from_run(
            {"test_name": "t5 cpu", "test_type": "performance", "started_at": started, "completed_at": completed},
            [{"model_name": "t5-tiny-random"}], [{"hardware_type": "cpu"}],
            [{"model_name": "t5-tiny-random", "hardware_type": "cpu", "batch_size": 1, "average_latency_ms": latency,
              "throughput_items_per_second": 1000 / latency}])

    db = str(tmp_path / "r.duckdb")
    store_document(doc(5.566, "2026-11-24T16:13:51", "2026-11-24T16:13:55"), db, 5)  # direct
    left = tmp_path / "auto_store_results" / "run.json"
    left.parent.mkdir()
    left.write_text(json.dumps(doc(5.366, "2026-11-24T16:14:14", "2026-11-24T16:14:18")))
    run_json(capsys, ["--auto-store", "--auto-store-dir", str(left.parent), "--db", db])
    conn = duckdb.connect(db, read_only=True)
    try:
        times = conn.execute("SELECT average_latency_ms, created_at::VARCHAR FROM performance_results "
                             "ORDER BY created_at").fetchall()
        latest = conn.execute("SELECT latency_ms FROM latest_performance_metrics").fetchall()
        runs = conn.execute("SELECT created_at::VARCHAR FROM test_runs ORDER BY created_at").fetchall()
    finally:
        conn.close()
    assert times == [(5.566, "2026-11-24 16:13:55"), (5.366, "2026-11-24 16:14:18")]
    assert latest == [(5.366,)] and runs == [("2026-11-24 16:13:55",), ("2026-11-24 16:14:18",)]

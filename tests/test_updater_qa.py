"""QA of benchmark_db_updater.py as a user runs it: summaries, copies, renames, the auto-store folder."""
from __future__ import annotations

import json
import shutil

import duckdb
import pytest

import benchmark_db_updater
from tests.test_updater import run_json, write

FACTS = ("performance_results", "hardware_compatibility", "test_runs")


def perf_doc(model="prajjwal1/bert-tiny", latency=21.8, throughput=45.8):
    return {"model": model, "hardware": "cpu", "timestamp": "2025-03-06T17:48:24",
            "batch_results": {"1": {"batch_size": 1, "avg_latency_ms": latency,
                                    "throughput_items_per_second": throughput},
                              "4": {"batch_size": 4, "avg_latency_ms": latency * 3,
                                    "throughput_items_per_second": throughput * 1.3}}}


def state(db) -> tuple[dict, list]:
    """Row counts of the fact tables and the ingest log (path, sha256, status, rows)."""
    conn = duckdb.connect(db, read_only=True)
    try:
        counts = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in FACTS}
        log = conn.execute("SELECT path, sha256, status, rows FROM ingested_files ORDER BY path").fetchall()
        return counts, log
    finally:
        conn.close()


def fresh_state(tmp_path, capsys, folder) -> tuple[dict, list]:
    db = str(tmp_path / f"fresh-{len(list(tmp_path.glob('fresh-*')))}.duckdb")
    run_json(capsys, ["--scan-dir", str(folder), "--db", db])
    return state(db)


def test_summary_counts_the_rows_the_run_added(tmp_path, capsys):
    db = str(tmp_path / "u.duckdb")
    for i in range(3):
        write(tmp_path / "new" / f"r{i}.json", perf_doc(latency=10.0 + i))
    out = run_json(capsys, ["--scan-dir", str(tmp_path / "new"), "--db", db])
    added, total = out["rows_added"], out["table_rows"]
    assert added["ingested_files"] == 3  # the log rows count too
    assert added["performance_results"] == total["performance_results"] == 6
    assert added["models"] == total["models"] == 1  # one model named by three files is one row
    assert all(added[t] <= total[t] for t in added)
    again = run_json(capsys, ["--scan-dir", str(tmp_path / "new"), "--incremental", "--db", db])
    assert again["rows_added"] == {}


@pytest.mark.slow  # about 0.7 s: outside make test-fast
def test_changing_a_copy_keeps_the_rows_of_the_original(tmp_path, capsys):
    db, folder = str(tmp_path / "u.duckdb"), tmp_path / "new"
    write(folder / "a.json", perf_doc())
    shutil.copy(folder / "a.json", folder / "b.json")
    run_json(capsys, ["--scan-dir", str(folder), "--incremental", "--db", db])
    write(folder / "b.json", perf_doc(latency=99.0))
    out = run_json(capsys, ["--scan-dir", str(folder), "--incremental", "--db", db])
    assert {f["path"].rsplit("/", 1)[1]: f["status"] for f in out["files"]} == {"a.json": "unchanged",
                                                                                 "b.json": "ingested"}
    counts, log = state(db)
    assert counts["performance_results"] == 4  # a's two rows and b's two new ones, as a fresh ingest has
    assert [row[2] for row in log] == ["ingested", "ingested"]


def test_a_copy_beside_its_original_is_a_duplicate(tmp_path, capsys):
    db, folder = str(tmp_path / "u.duckdb"), tmp_path / "new"
    write(folder / "a.json", perf_doc())
    shutil.copy(folder / "a.json", folder / "b.json")
    out = run_json(capsys, ["--scan-dir", str(folder), "--db", db])
    assert out["files"][1]["reason"] == f"duplicate of {folder / 'a.json'}"


@pytest.mark.slow  # five updater runs
def test_a_renamed_file_takes_its_rows_along(tmp_path, capsys):
    db, folder = str(tmp_path / "u.duckdb"), tmp_path / "new"
    write(folder / "a.json", perf_doc())
    write(folder / "other.json", perf_doc(model="bert-base-uncased"))
    run_json(capsys, ["--scan-dir", str(folder), "--incremental", "--db", db])
    before, _ = state(db)
    (folder / "sub").mkdir()
    (folder / "a.json").rename(folder / "sub" / "renamed.json")
    out = run_json(capsys, ["--scan-dir", str(folder), "--incremental", "--db", db])
    moved = next(f for f in out["files"] if f["path"].endswith("renamed.json"))
    assert not moved["reason"].startswith("duplicate of")
    assert str(folder / "a.json") in moved["reason"] and "no longer there" in moved["reason"]
    assert out["rows_added"].get("performance_results", 0) == 0
    counts, log = state(db)
    assert counts == before  # nothing lost, nothing doubled
    assert (counts, log) == fresh_state(tmp_path, capsys, folder)  # the log names the new path only
    # the moved file is the owner now: a change replaces its rows
    write(folder / "sub" / "renamed.json", perf_doc(latency=50.0))
    run_json(capsys, ["--scan-dir", str(folder), "--incremental", "--db", db])
    assert state(db) == fresh_state(tmp_path, capsys, folder)
    # and a re-run changes nothing
    out = run_json(capsys, ["--scan-dir", str(folder), "--incremental", "--db", db])
    assert out["totals"]["unchanged"] == 2 and out["rows_added"] == {}


@pytest.mark.slow  # three updater runs
def test_a_renamed_file_with_a_plain_rescan(tmp_path, capsys):
    db, folder = str(tmp_path / "u.duckdb"), tmp_path / "new"
    write(folder / "a.json", perf_doc())
    run_json(capsys, ["--scan-dir", str(folder), "--db", db])
    (folder / "a.json").rename(folder / "b.json")
    run_json(capsys, ["--scan-dir", str(folder), "--db", db])
    assert state(db) == fresh_state(tmp_path, capsys, folder)


def test_auto_store_with_a_missing_folder_says_so(tmp_path, capsys):
    db = str(tmp_path / "u.duckdb")
    code = benchmark_db_updater.main(["--auto-store", "--auto-store-dir", str(tmp_path / "nope"), "--db", db,
                                      "--format", "json"])
    assert code == 0
    err = capsys.readouterr().err
    assert "does not exist" in err and str(tmp_path / "nope") in err


def test_auto_store_keeps_failed_files_in_place_and_reports_them(tmp_path, capsys):
    db, auto = str(tmp_path / "u.duckdb"), tmp_path / "auto"
    write(auto / "nested" / "ok.json", perf_doc())
    (auto / "partial.json").write_text('{"model": "x",\n  "batch_results": {\n')
    (auto / "processed").mkdir()
    write(auto / "processed" / "old.json", perf_doc(latency=1.0))  # processed/ is never read again
    assert benchmark_db_updater.main(["--auto-store", "--auto-store-dir", str(auto), "--db", db, "--quiet",
                                      "--format", "json", "--strict"]) == 1
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert out["totals"] == {"files": 2, "ingested": 1, "skipped": 0, "failed": 1, "unchanged": 0, "filtered": 0}
    assert "partial.json" in captured.err and "line 3 column 1" in captured.err
    assert (auto / "partial.json").exists() and (auto / "processed" / "nested" / "ok.json").exists()
    assert (auto / "processed" / "old.json").exists()

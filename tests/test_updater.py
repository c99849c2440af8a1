"""benchmark_db_updater.py: single files, incremental scans, and the auto-store folder."""
from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

import benchmark_db_updater


def perf_doc(model="prajjwal1/bert-tiny", latency=21.8, throughput=45.8):
    return {"model": model, "hardware": "cpu", "timestamp": "2025-03-06T17:48:24",
            "batch_results": {"1": {"batch_size": 1, "avg_latency_ms": latency,
                                    "throughput_items_per_second": throughput}}}


def write(path: Path, doc) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))
    return path


def run_json(capsys, argv) -> dict:
    assert benchmark_db_updater.main([*argv, "--format", "json", "--quiet"]) == 0
    return json.loads(capsys.readouterr().out)


def count(db, table) -> int:
    conn = duckdb.connect(db, read_only=True)
    try:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    finally:
        conn.close()


def test_input_file_is_added_once(tmp_path, capsys):
    db = str(tmp_path / "u.duckdb")
    f = write(tmp_path / "new_results.json", perf_doc())
    assert run_json(capsys, ["--input-file", str(f), "--db", db])["totals"]["ingested"] == 1
    assert run_json(capsys, ["--input-file", str(f), "--db", db])["totals"]["unchanged"] == 1
    assert count(db, "performance_results") == 1


@pytest.mark.slow  # about 1.0 s: outside make test-fast
def test_incremental_scan_takes_only_new_or_changed_files(tmp_path, capsys):
    db = str(tmp_path / "u.duckdb")
    scan = tmp_path / "new_results"
    write(scan / "a.json", perf_doc())
    write(scan / "b.json", perf_doc(model="google/t5-efficient-tiny"))
    first = run_json(capsys, ["--scan-dir", str(scan), "--incremental", "--db", db])
    assert first["totals"]["ingested"] == 2
    write(scan / "c.json", perf_doc(model="openai/whisper-tiny"))
    write(scan / "a.json", perf_doc(latency=30.0, throughput=33.3))
    second = run_json(capsys, ["--scan-dir", str(scan), "--incremental", "--db", db])
    status = {Path(f["path"]).name: f["status"] for f in second["files"]}
    assert status == {"a.json": "ingested", "b.json": "unchanged", "c.json": "ingested"}
    assert count(db, "performance_results") == 3
    # without --incremental every file is converted again, and its rows replaced, not duplicated
    full = run_json(capsys, ["--scan-dir", str(scan), "--db", db])
    assert full["totals"]["ingested"] == 3
    assert count(db, "performance_results") == 3 and count(db, "test_runs") == 3


@pytest.mark.slow  # about 0.7 s: outside make test-fast
def test_auto_store_moves_processed_files_beside_them(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    db = str(tmp_path / "u.duckdb")
    auto = tmp_path / "auto_store_results"
    write(auto / "run1" / "bert.json", perf_doc())
    (auto / "broken.json").write_text("{not json")
    summary = run_json(capsys, ["--auto-store", "--db", db])
    assert summary["totals"]["ingested"] == 1 and summary["totals"]["failed"] == 1
    assert (auto / "processed" / "run1" / "bert.json").exists()
    assert not (auto / "run1" / "bert.json").exists()
    assert (auto / "broken.json").exists()  # failed files stay where the user can see them
    # processed/ is not scanned again
    again = run_json(capsys, ["--auto-store", "--auto-store-dir", str(auto), "--db", db])
    assert again["totals"]["files"] == 1 and again["totals"]["failed"] == 1
    conn = duckdb.connect(db, read_only=True)
    try:
        archived = conn.execute("SELECT archived_to FROM ingested_files WHERE status = 'ingested'").fetchone()[0]
    finally:
        conn.close()
    assert archived == str(auto / "processed" / "run1" / "bert.json")


def test_auto_store_keeps_an_earlier_result_that_had_the_same_file_name(tmp_path, capsys):
    db = str(tmp_path / "u.duckdb")
    auto = tmp_path / "auto_store_results"
    first = perf_doc(throughput=45.8)
    write(auto / "results.json", first)
    run_json(capsys, ["--auto-store", "--auto-store-dir", str(auto), "--db", db])
    second = dict(perf_doc(throughput=99.0), timestamp="2025-03-07T09:00:00")  # the next run, same file name
    write(auto / "results.json", second)
    again = run_json(capsys, ["--auto-store", "--auto-store-dir", str(auto), "--db", db])
    assert again["totals"]["ingested"] == 1
    assert count(db, "performance_results") == 2  # the first run's result was not "replaced"
    processed = sorted((auto / "processed").iterdir())
    assert sorted(json.loads(p.read_text())["batch_results"]["1"]["throughput_items_per_second"]
                  for p in processed) == [45.8, 99.0]  # and its file was not overwritten
    assert not (auto / "results.json").exists()


def test_nothing_to_do_is_a_usage_error(tmp_path, capsys):
    assert benchmark_db_updater.main(["--db", str(tmp_path / "x.duckdb")]) == 2
    assert "error DB000: nothing to update from" in capsys.readouterr().err

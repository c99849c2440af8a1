"""QA of the ingest pipeline's robustness (session 8): broken symbolic links and odd inputs, CI artifacts the
merge must refuse on one line (wrong column types, SQLite files, the target database itself) or must read
(a Parquet dataset folder), and the .md report of a run that ingested nothing."""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import benchmark_db_migration
import benchmark_db_updater
from benchmark_db.merge import table_for_parquet
from tests.test_updater import perf_doc, write

REPO = Path(__file__).resolve().parents[1]


def log_rows(db: str) -> dict[str, tuple]:
    conn = duckdb.connect(db, read_only=True)
    try:
        return {Path(p).name: (status, reason, kind) for p, status, reason, kind in
                conn.execute("SELECT path, status, reason, kind FROM ingested_files").fetchall()}
    finally:
        conn.close()


def count(db: str, table: str) -> int:
    conn = duckdb.connect(db, read_only=True)
    try:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    finally:
        conn.close()


# ---------------------------------------------------------------------------------------------------------
# Broken symbolic links and inputs that are neither files nor folders


def broken_links(folder: Path) -> None:
    write(folder / "good.json", perf_doc())
    os.symlink(folder / "nowhere.json", folder / "dangling.json")
    os.symlink(folder / "loop_b.json", folder / "loop_a.json")
    os.symlink(folder / "loop_a.json", folder / "loop_b.json")


@pytest.mark.slow
def test_broken_symlinks_in_a_folder_are_logged_as_failed_with_their_reason(tmp_path, capsys):
    folder, db = tmp_path / "in", str(tmp_path / "m.duckdb")
    broken_links(folder)
    assert benchmark_db_migration.main(["--input-dirs", str(folder), "--db", db, "--quiet"]) == 0
    rows = log_rows(db)
    assert rows["good.json"][0] == "ingested"
    # before: the three links were left out of the ingest log without a word
    for name in ("dangling.json", "loop_a.json", "loop_b.json"):
        status, reason, _ = rows[name]
        assert status == "failed"
        assert reason.startswith("cannot read the file: it is a symbolic link to ")
    assert "No such file or directory" in rows["dangling.json"][1]
    err = capsys.readouterr().err
    assert f"failed: {folder / 'dangling.json'}: cannot read the file" in err
    # a re-run leaves everything as it is (the failed ones are tried again and fail again)
    assert benchmark_db_migration.main(["--input-dirs", str(folder), "--db", db, "--quiet"]) == 0
    assert log_rows(db) == rows


def test_auto_store_logs_a_broken_link_and_leaves_it_in_place(tmp_path):
    auto, db = tmp_path / "auto", str(tmp_path / "u.duckdb")
    broken_links(auto)
    assert benchmark_db_updater.main(["--auto-store", "--auto-store-dir", str(auto), "--db", db, "--quiet"]) == 0
    rows = log_rows(db)
    assert rows["good.json"][0] == "ingested"
    assert rows["dangling.json"][0] == "failed"
    assert os.path.islink(auto / "dangling.json")  # failed files stay where they are
    assert (auto / "processed" / "good.json").is_file()


def test_a_named_input_that_is_a_pipe_or_a_broken_link_is_a_usage_error_naming_what_it_is(tmp_path, capsys):
    fifo, link, db = tmp_path / "pipe.json", tmp_path / "link.json", tmp_path / "m.duckdb"
    os.mkfifo(fifo)
    os.symlink(tmp_path / "gone.json", link)
    assert benchmark_db_migration.main(["--input-files", str(fifo), "--db", str(db), "--quiet"]) == 2
    assert "is neither a file nor a folder" in capsys.readouterr().err  # before: "does not exist"
    assert benchmark_db_updater.main(["--input-file", str(link), "--db", str(db), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error DB000: input ") and "is a symbolic link to" in err and len(err.splitlines()) == 1
    assert not db.exists()


# ---------------------------------------------------------------------------------------------------------
# CI artifacts


def test_parquet_artifact_with_a_wrongly_typed_column_fails_on_one_line_and_adds_nothing(tmp_path, capsys):
    artifacts, db = tmp_path / "artifacts", str(tmp_path / "ci.duckdb")
    artifacts.mkdir()
    pq.write_table(pa.table({"result_id": pa.array([1, 2], pa.int64()),
                             "throughput_items_per_second": pa.array(["fast", "slow"])}),
                   artifacts / "performance_results.parquet")
    pq.write_table(pa.table({"result_id": pa.array(["abc"])}), artifacts / "performance_results_job2.parquet")
    assert benchmark_db_migration.main(["--migrate-ci", "--artifacts-dir", str(artifacts), "--db", db,
                                        "--quiet", "--format", "json"]) == 0
    captured = capsys.readouterr()
    failed = [line for line in captured.err.splitlines() if line.startswith("failed: ")]
    assert len(failed) == 2
    # before: DuckDB's "LINE 1: ..." excerpt of the SQL and a caret line followed, in the log reason too
    assert captured.err.count("\n") == 2 and "LINE 1" not in captured.err
    assert any("Could not convert string 'fast' to DOUBLE" in line or "'slow' to DOUBLE" in line for line in failed)
    rows = log_rows(db)
    for name in ("performance_results.parquet", "performance_results_job2.parquet"):
        status, reason, kind = rows[name]
        assert (status, kind) == ("failed", "parquet_artifact")
        assert "\n" not in reason and "do not fit its columns" in reason
    assert count(db, "performance_results") == 0  # the failed merge rolled back whole


def test_a_sqlite_file_among_the_artifacts_is_refused_as_not_duckdb_without_fetching_an_extension(tmp_path):
    artifacts, db = tmp_path / "artifacts", str(tmp_path / "ci.duckdb")
    artifacts.mkdir()
    with sqlite3.connect(artifacts / "cache.db") as lite:  # CI caches are often *.db SQLite files
        lite.execute("CREATE TABLE t (x)")
    assert benchmark_db_migration.main(["--migrate-ci", "--artifacts-dir", str(artifacts), "--db", db,
                                        "--quiet", "--output", db + ".out"]) == 0
    status, reason, _ = log_rows(db)["cache.db"]
    # before: DuckDB went to the internet for its sqlite extension ("Failed to download extension")
    assert status == "failed" and "not a valid DuckDB database file" in reason
    assert "extension" not in reason


@pytest.mark.slow  # over 0.35 s here: outside make test-fast
def test_the_target_database_inside_the_artifacts_folder_is_not_merged_into_itself(tmp_path):
    artifacts = tmp_path / "artifacts"
    write(artifacts / "a.json", perf_doc())
    db = str(artifacts / "ci.duckdb")
    for _ in range(2):  # before: failed "Unique file handle conflict" on every run, exit 1 with --strict
        assert benchmark_db_migration.main(["--migrate-ci", "--artifacts-dir", str(artifacts), "--db", db,
                                            "--quiet", "--strict", "--output", str(tmp_path / "out.txt")]) == 0
    rows = log_rows(db)
    assert set(rows) == {"a.json"} and rows["a.json"][0] == "ingested"


def test_a_parquet_dataset_folder_named_after_its_table_is_merged(tmp_path):
    assert table_for_parquet("x/performance_results.parquet/part-0.parquet") == "performance_results"
    assert table_for_parquet("x/models.PARQUET/part-00001-abc.parquet") == "models"
    assert table_for_parquet("x/performance_results/part-0.parquet") == "performance_results"
    assert table_for_parquet("x/widgets.parquet/part-0.parquet") is None
    artifacts, db = tmp_path / "artifacts", str(tmp_path / "ci.duckdb")
    (artifacts / "models.parquet").mkdir(parents=True)
    pq.write_table(pa.table({"model_id": pa.array([7, 8], pa.int64()), "model_name": ["m-a", "m-b"]}),
                   artifacts / "models.parquet" / "part-0.parquet")
    assert benchmark_db_migration.main(["--migrate-ci", "--artifacts-dir", str(artifacts), "--db", db,
                                        "--quiet", "--strict", "--output", str(tmp_path / "out.txt")]) == 0
    assert log_rows(db)["part-0.parquet"][0] == "ingested"
    assert count(db, "models") == 2


# ---------------------------------------------------------------------------------------------------------
# The .md report of a run without an ingest part


@pytest.mark.slow  # about 0.6 s: outside make test-fast
def test_validate_only_markdown_report_says_nothing_about_files(tmp_path):
    folder, db = tmp_path / "in", str(tmp_path / "m.duckdb")
    write(folder / "a.json", perf_doc())
    assert benchmark_db_migration.main(["--input-dirs", str(folder), "--db", db, "--quiet",
                                        "--output", db + ".out"]) == 0
    report = tmp_path / "validate.md"
    benchmark_db_migration.main(["--validate", "--db", db, "--quiet", "--report", str(report),
                                 "--output", db + ".out"])
    text = report.read_text(encoding="utf-8")
    assert "no files found" not in text and "files" not in text.lower()  # before: "(no files found)" first
    assert text.startswith("## Validation problems")
    report = tmp_path / "fix.md"
    benchmark_db_migration.main(["--fix-inconsistencies", "--db", db, "--quiet", "--report", str(report),
                                 "--output", db + ".out"])
    assert "files" not in report.read_text(encoding="utf-8").lower()
    # an ingest run's report still shows its files
    report = tmp_path / "ingest.md"
    assert benchmark_db_migration.main(["--input-dirs", str(folder), "--db", db, "--quiet", "--report",
                                        str(report), "--output", db + ".out"]) == 0
    assert "## Files" in report.read_text(encoding="utf-8")


@pytest.mark.slow
def test_entry_point_failed_artifact_and_broken_link_lines_are_single_lines(tmp_path):
    """Through the real script: every stderr line is `failed: PATH: reason`, nothing else, no traceback."""
    artifacts = tmp_path / "artifacts"
    broken_links(artifacts)
    pq.write_table(pa.table({"result_id": pa.array([1], pa.int64()),
                             "created_at": pa.array(["not a time"])}), artifacts / "performance_results.parquet")
    with sqlite3.connect(artifacts / "cache.db") as lite:
        lite.execute("CREATE TABLE t (x)")
    db = artifacts / "ci.duckdb"
    proc = subprocess.run([sys.executable, str(REPO / "benchmark_db_migration.py"), "--migrate-ci",
                           "--artifacts-dir", str(artifacts), "--db", str(db), "--quiet", "--format", "json"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    assert all(line.startswith("failed: ") for line in lines), proc.stderr
    assert sorted(Path(line.split(": ", 2)[1]).name for line in lines) == \
        ["cache.db", "dangling.json", "loop_a.json", "loop_b.json", "performance_results.parquet"]
    out = json.loads(proc.stdout)
    assert {a["artifact"].rsplit("/", 1)[1] for a in out["artifacts"]} == {"cache.db", "performance_results.parquet"}


# ---------------------------------------------------------------------------------------------------------
# Numbers no measurement can have: NaN, Infinity (from a CI artifact), 2**70 (from a JSON file)


@pytest.mark.slow  # over 0.35 s here: outside make test-fast
def test_validate_reports_non_finite_and_absurd_latencies_as_impossible(tmp_path, capsys):
    folder, artifacts, db = tmp_path / "in", tmp_path / "artifacts", str(tmp_path / "m.duckdb")
    (folder).mkdir()
    (folder / "huge.json").write_text('{"model": "m-huge", "hardware": "cpu", "batch_size": 1, '
                                      f'"latency_ms": {2 ** 70}}}', encoding="utf-8")
    artifacts.mkdir()
    pq.write_table(pa.table({"result_id": pa.array([11, 12], pa.int64()),
                             "model_id": pa.array([1, 1], pa.int64()), "run_id": pa.array([2, 2], pa.int64()),
                             "hardware_id": pa.array([3, 3], pa.int64()),
                             "average_latency_ms": pa.array([float("nan"), 5.0]),
                             "throughput_items_per_second": pa.array([None, float("inf")], pa.float64())}),
                   artifacts / "performance_results.parquet")
    assert benchmark_db_migration.main(["--input-dirs", str(folder), "--migrate-ci", "--artifacts-dir",
                                        str(artifacts), "--db", db, "--quiet", "--output", db + ".out"]) == 0
    capsys.readouterr()
    assert benchmark_db_migration.main(["--validate", "--db", db, "--quiet", "--format", "json"]) == 1
    problems = json.loads(capsys.readouterr().out)["problems"]
    impossible = {(p["id"], p["detail"]) for p in problems if p["check"] == "impossible"}
    # before: a NaN latency with no throughput, and an infinite throughput, passed validation unseen
    assert (11, "average_latency_ms = nan (not a finite number)") in impossible
    assert (12, "throughput_items_per_second = inf (not a finite number)") in impossible
    assert any(detail.startswith("average_latency_ms = 1.18059e+21 ms (over a year)") for _, detail in impossible)
    # a non-finite row is reported once, as impossible, not again as a throughput disagreement
    assert not [p for p in problems if p["check"] == "throughput" and p["id"] in (11, 12)]

"""scripts/ci_benchmark_integrator.py, QA round 19: the archived .wal, the CI tags naming the job, Parquet rows
that point nowhere, and a failed artifact reported as a finding (`failed: ARTIFACT: reason`, exit 1)."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import duckdb

from benchmark_db_models import BenchmarkDB, PerformanceResults, TestRuns
from scripts import ci_benchmark_integrator as integrator

START = dt.datetime(2026, 5, 1, 8, 0, 0)


def make_job_db(path: Path, job: str, model: str, *, commit: str | None = None) -> None:
    """A database like one CI matrix job writes: its own run and two results of one model on cpu."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with BenchmarkDB(str(path)) as db:
        cpu = db.get_or_add_hardware("cpu", "ci runner")
        run_id = db.insert_test_runs(TestRuns(test_name=job, test_type="performance", started_at=START,
                                              success=True, git_commit=commit, metadata={"job": job}))
        model_id = db.get_or_add_model(model)
        db.insert_many([PerformanceResults(
            run_id=run_id, model_id=model_id, hardware_id=cpu, model_name=model, hardware_type="cpu",
            test_case="inference", batch_size=batch, sequence_length=128, precision="fp32",
            average_latency_ms=10.0 * batch, throughput_items_per_second=100.0, latency_samples_ms=[10.0 * batch] * 5,
            created_at=START) for batch in (1, 2)])


def rows(db: Path, sql: str) -> list[tuple]:
    conn = duckdb.connect(str(db), read_only=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_ci_tags_name_the_job_folder_and_never_pass_the_pipeline_commit_for_the_runs(tmp_path):
    art = tmp_path / "artifacts"
    make_job_db(art / "job-bert-cpu" / "benchmark.duckdb", "job-bert-cpu", "bert-base-uncased", commit="jobcommit")
    make_job_db(art / "job-t5-cpu" / "benchmark.duckdb", "job-t5-cpu", "t5-small")
    target = tmp_path / "consolidated.duckdb"
    assert integrator.main(["--artifacts-dir", str(art), "--db", str(target), "--commit", "pipeline123",
                            "--branch", "main", "--quiet"]) == 0
    got = {name: (commit, json.loads(meta)["ci"]) for name, commit, meta in rows(
        target, "SELECT test_name, git_commit, metadata FROM test_runs")}
    # the job folder, not "benchmark.duckdb" for every run
    assert got["job-bert-cpu"][1]["artifact"] == "job-bert-cpu/benchmark.duckdb"
    assert got["job-t5-cpu"][1]["artifact"] == "job-t5-cpu/benchmark.duckdb"
    # the run's own commit stays; the pipeline's is recorded under a name nobody reads as the run's commit
    assert got["job-bert-cpu"][0] == "jobcommit"
    assert "commit" not in got["job-bert-cpu"][1] and "branch" not in got["job-bert-cpu"][1]
    assert got["job-bert-cpu"][1]["pipeline_commit"] == "pipeline123"
    assert got["job-bert-cpu"][1]["pipeline_branch"] == "main"
    assert got["job-t5-cpu"][0] == "pipeline123"  # a run without a commit of its own still gets the pipeline's


def test_archive_moves_the_write_ahead_log_with_its_database(tmp_path):
    art = tmp_path / "artifacts"
    job_db = art / "job-a" / "benchmark.duckdb"
    make_job_db(job_db, "job-a", "bert-base-uncased")
    conn = duckdb.connect(str(job_db))  # rows left in the .wal, as a job killed before its checkpoint leaves them
    conn.execute("PRAGMA disable_checkpoint_on_shutdown")
    conn.execute("SET wal_autocheckpoint = '1GB'")
    conn.execute("CREATE TABLE late AS SELECT 1 AS x")
    conn.execute("INSERT INTO models (model_id, model_name) VALUES (4242, 'from-the-wal')")
    conn.close()
    assert (art / "job-a" / "benchmark.duckdb.wal").is_file()
    target, archive = tmp_path / "consolidated.duckdb", tmp_path / "archive"
    assert integrator.main(["--artifacts-dir", str(art), "--db", str(target), "--archive-artifacts",
                            "--archive-dir", str(archive), "--quiet"]) == 0
    assert rows(target, "SELECT count(*) FROM models WHERE model_name = 'from-the-wal'") == [(1,)]
    assert not list(art.rglob("*.wal")), "an orphan .wal stayed in the artifacts folder"
    archived = next(archive.rglob("benchmark.duckdb"))
    assert archived.with_name("benchmark.duckdb.wal").is_file()
    # the archived artifact holds what was merged from it
    assert rows(archived, "SELECT count(*) FROM models WHERE model_name = 'from-the-wal'") == [(1,)]


def test_parquet_rows_naming_ids_that_no_table_holds_are_warned_with_their_count(tmp_path, capsys):
    source = tmp_path / "job.duckdb"
    make_job_db(source, "job-a", "bert-base-uncased")
    art = tmp_path / "artifacts"
    art.mkdir()
    with duckdb.connect(str(source), read_only=True) as conn:  # only the results, not their runs/models/hardware
        conn.execute(f"COPY performance_results TO '{art / 'performance_results.parquet'}' (FORMAT PARQUET)")
    target = tmp_path / "consolidated.duckdb"
    assert integrator.main(["--artifacts-dir", str(art), "--db", str(target), "--format", "json"]) == 0
    captured = capsys.readouterr()
    report = {r["artifact"]: r for r in json.loads(captured.out)}
    row = report["performance_results.parquet"]
    assert row["status"] == "merged" and row["performance"] == 2
    assert "2 row(s)" in row["reason"] and "no table holds" in row["reason"]
    assert any("WARNING" in line and "2 row(s)" in line for line in captured.err.splitlines())  # the log says it too


def test_parquet_rows_whose_parents_come_in_a_later_artifact_are_not_warned(tmp_path, capsys):
    source = tmp_path / "job.duckdb"
    make_job_db(source, "job-a", "bert-base-uncased")
    art = tmp_path / "artifacts"
    art.mkdir()
    with duckdb.connect(str(source), read_only=True) as conn:  # test_runs.parquet sorts after performance_results
        for table in ("models", "hardware_platforms", "test_runs", "performance_results"):
            conn.execute(f"COPY {table} TO '{art / (table + '.parquet')}' (FORMAT PARQUET)")
    assert integrator.main(["--artifacts-dir", str(art), "--db", str(tmp_path / "t.duckdb"), "--format", "json"]) == 0
    assert all(r["reason"] == "" for r in json.loads(capsys.readouterr().out))


def test_a_failed_artifact_is_a_finding_reported_once_per_artifact_without_error_codes(tmp_path, capsys):
    art = tmp_path / "artifacts"
    make_job_db(art / "job-a" / "benchmark.duckdb", "job-a", "bert-base-uncased")
    (art / "job-broken").mkdir()
    (art / "job-broken" / "benchmark.duckdb").write_bytes(b"this is not a database" * 100)
    assert integrator.main(["--artifacts-dir", str(art), "--db", str(tmp_path / "t.duckdb"), "--format", "json",
                            "--quiet"]) == 1
    captured = capsys.readouterr()
    report = {r["artifact"]: r for r in json.loads(captured.out)}
    broken = report["job-broken/benchmark.duckdb"]
    assert broken["status"] == "failed" and "error DB" not in broken["reason"]
    assert "cannot open" in broken["reason"]
    # like benchmark_db_migration.py: one `failed: ARTIFACT: reason` line; exit 1 is a finding, not DB003 (exit 2)
    assert f"failed: job-broken/benchmark.duckdb: {broken['reason']}" in captured.err
    assert "error DB003" not in captured.err
    assert report["job-a/benchmark.duckdb"]["status"] == "merged"

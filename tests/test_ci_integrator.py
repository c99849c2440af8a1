"""scripts/ci_benchmark_integrator.py and benchmark_db.merge: merging parallel CI jobs' artifacts."""
from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import duckdb
import pytest

from benchmark_db.connection import connect
from benchmark_db.merge import MERGED_TABLES, merge_database, merge_parquet
from benchmark_db_models import BenchmarkDB, PerformanceResults, TestRuns
from scripts import ci_benchmark_integrator as integrator

JOBS = {  # job -> (models, batch sizes); bert-base-uncased and t5-small overlap between jobs
    "job_bert_t5": (["bert-base-uncased", "t5-small"], [1, 2]),
    "job_t5_vit": (["t5-small", "google/vit-base-patch16-224"], [1, 4]),
    "job_bert_vit": (["bert-base-uncased", "google/vit-base-patch16-224"], [2, 4]),
}
START = dt.datetime(2026, 5, 1, 8, 0, 0)


def make_job_db(path: Path, job: str, models: list[str], batches: list[int], *, commit: str | None = None) -> None:
    """A database like one CI matrix job writes: its own run, shared dimension rows, its own results."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with BenchmarkDB(str(path)) as db:
        cpu = db.get_or_add_hardware("cpu", "ci runner")
        run_id = db.insert_test_runs(TestRuns(test_name=job, test_type="performance", started_at=START,
                                              success=True, git_commit=commit, metadata={"job": job}))
        records = []
        for name in models:
            model_id = db.get_or_add_model(name)
            for batch in batches:
                latency = 10.0 * batch
                records.append(PerformanceResults(
                    run_id=run_id, model_id=model_id, hardware_id=cpu, model_name=name, hardware_type="cpu",
                    test_case="inference", batch_size=batch, sequence_length=128, precision="fp32",
                    average_latency_ms=latency, throughput_items_per_second=batch * 1000 / latency,
                    latency_samples_ms=[latency] * 5, created_at=START))
        db.insert_many(records)


def distinct_ids(paths: list[Path]) -> dict[str, int]:
    """Distinct row keys per table over all the job databases: what a correct merge must hold."""
    ids: dict[str, set] = {}
    for path in paths:
        conn = duckdb.connect(str(path), read_only=True)
        try:
            for table in MERGED_TABLES:
                from benchmark_db.merge import row_key

                key = ", ".join(row_key(table))
                ids.setdefault(table, set()).update(conn.execute(f"SELECT ({key}) FROM {table}").fetchall())
        finally:
            conn.close()
    return {t: len(v) for t, v in ids.items()}


def counts(db_path) -> dict[str, int]:
    conn = duckdb.connect(str(db_path), read_only=True)
    try:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in MERGED_TABLES}
    finally:
        conn.close()


@pytest.fixture(scope="session")
def _artifacts_template(tmp_path_factory) -> Path:
    """The three jobs' databases, made once per session (per xdist worker): making them takes 0.6 s."""
    root = tmp_path_factory.mktemp("artifacts_template") / "artifacts"
    for job, (models, batches) in JOBS.items():
        make_job_db(root / job / "benchmark.duckdb", job, models, batches,
                    commit="jobcommit" if job == "job_t5_vit" else None)
    assert not list(root.rglob("*.wal"))  # every byte is in the files: a copy is the same databases
    return root


@pytest.fixture
def artifacts(tmp_path, _artifacts_template) -> Path:
    """This test's own copy of the three jobs' databases (it may merge, move or add to them)."""
    root = tmp_path / "artifacts"
    shutil.copytree(_artifacts_template, root, copy_function=shutil.copyfile)  # fresh mtimes, as if just made
    return root


@pytest.mark.slow  # over 0.35 s here: outside make test-fast
def test_three_job_databases_merge_into_the_sum_of_their_distinct_rows(artifacts, tmp_path, capsys):
    target = tmp_path / "consolidated.duckdb"
    expected = distinct_ids(sorted(artifacts.rglob("*.duckdb")))
    assert expected["models"] == 3 and expected["test_runs"] == 3 and expected["performance_results"] == 12
    assert integrator.main(["--artifacts-dir", str(artifacts), "--db", str(target), "--commit", "123abc",
                            "--branch", "main", "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [r["status"] for r in report] == ["merged"] * 3
    assert sum(r["performance"] for r in report) == 12 and sum(r["models"] for r in report) == 3
    got = counts(target)
    for table in ("models", "hardware_platforms", "test_runs", "performance_results"):
        assert got[table] == expected[table], table

    # a second run adds nothing
    assert integrator.main(["--artifacts-dir", str(artifacts), "--db", str(target), "--commit", "123abc",
                            "--branch", "main", "--format", "json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert [r["status"] for r in again] == ["unchanged"] * 3
    assert counts(target) == got


@pytest.mark.slow  # over 0.35 s here: outside make test-fast
def test_merge_database_is_idempotent_even_without_the_artifact_log(artifacts, tmp_path):
    conn = connect(str(tmp_path / "merged.duckdb"))
    try:
        first = [merge_database(conn, p) for p in sorted(artifacts.rglob("*.duckdb"))]
        second = [merge_database(conn, p) for p in sorted(artifacts.rglob("*.duckdb"))]
    finally:
        conn.close()
    assert sum(f["performance_results"] for f in first) == 12
    assert all(v == 0 for added in second for v in added.values())


@pytest.mark.slow  # over 0.35 s here: outside make test-fast
def test_git_and_ci_metadata_are_added_to_new_runs_only(artifacts, tmp_path):
    meta = tmp_path / "ci_metadata.json"
    meta.write_text(json.dumps({"commit": "123abc", "branch": "main", "workflow": "benchmark_db_ci", "run_id": 42}))
    target = tmp_path / "consolidated.duckdb"
    assert integrator.main(["--artifacts-dir", str(artifacts), "--db", str(target), "--ci-metadata", str(meta)]) == 0
    conn = duckdb.connect(str(target), read_only=True)
    rows = {name: (commit, branch, json.loads(metadata)) for name, commit, branch, metadata in conn.execute(
        "SELECT test_name, git_commit, git_branch, metadata FROM test_runs").fetchall()}
    conn.close()
    assert rows["job_bert_t5"][:2] == ("123abc", "main")
    assert rows["job_t5_vit"][0] == "jobcommit"  # a commit the job recorded itself is kept
    ci = rows["job_bert_vit"][2]["ci"]
    assert ci["workflow"] == "benchmark_db_ci" and ci["run_id"] == "42" and ci["artifact"] == "job_bert_vit/benchmark.duckdb"
    assert rows["job_bert_vit"][2]["job"] == "job_bert_vit"  # the job's own metadata is kept

    # runs already in the database are not re-tagged by a later integration with other metadata
    assert integrator.main(["--artifacts-dir", str(artifacts), "--db", str(target), "--commit", "other"]) == 0
    conn = duckdb.connect(str(target), read_only=True)
    assert conn.execute("SELECT count(*) FROM test_runs WHERE git_commit = 'other'").fetchone()[0] == 0
    conn.close()


def test_parquet_artifacts_merge_and_unknown_ones_are_skipped(artifacts, tmp_path, capsys):
    source = next(artifacts.rglob("*.duckdb"))
    parquet_dir = tmp_path / "pq"
    parquet_dir.mkdir()
    conn = duckdb.connect(str(source), read_only=True)
    for table in ("models", "hardware_platforms", "test_runs", "performance_results"):
        conn.execute(f"COPY {table} TO '{parquet_dir / (table + '.parquet')}' (FORMAT PARQUET)")
    conn.execute(f"COPY (SELECT 1 AS x) TO '{parquet_dir / 'mystery.parquet'}' (FORMAT PARQUET)")
    conn.close()
    target = tmp_path / "t.duckdb"
    assert integrator.main(["--artifacts-dir", str(parquet_dir), "--db", str(target), "--format", "json"]) == 0
    report = {r["artifact"]: r for r in json.loads(capsys.readouterr().out)}
    assert report["performance_results.parquet"]["performance"] == 4
    assert report["mystery.parquet"]["status"] == "skipped"
    c = connect(str(target))
    try:
        assert merge_parquet(c, parquet_dir / "performance_results.parquet") == {"performance_results": 0}
        assert c.execute("SELECT count(*) FROM benchmark_performance WHERE model IS NOT NULL").fetchone()[0] == 4
    finally:
        c.close()


@pytest.mark.slow  # over 0.35 s here: outside make test-fast
def test_a_broken_artifact_fails_alone_and_the_exit_code_says_so(artifacts, tmp_path, capsys):
    (artifacts / "job_broken").mkdir()
    (artifacts / "job_broken" / "benchmark.duckdb").write_bytes(b"this is not a database" * 100)
    target = tmp_path / "consolidated.duckdb"
    assert integrator.main(["--artifacts-dir", str(artifacts), "--db", str(target), "--format", "json"]) == 1
    captured = capsys.readouterr()
    report = {r["artifact"]: r for r in json.loads(captured.out)}
    assert report["job_broken/benchmark.duckdb"]["status"] == "failed"
    assert sum(r["status"] == "merged" for r in report.values()) == 3
    assert "failed: job_broken/benchmark.duckdb: " in captured.err  # a finding (exit 1), said as the migration does


@pytest.mark.slow  # over 0.35 s here: outside make test-fast
def test_a_parquet_artifact_with_wrong_column_types_fails_alone(artifacts, tmp_path, capsys):
    (artifacts / "job_odd").mkdir()
    odd = artifacts / "job_odd" / "performance_results.parquet"
    with duckdb.connect() as c:  # named after a table, but its key is text: the merge itself fails
        c.execute(f"COPY (SELECT 'abc' AS result_id, 'x' AS batch_size) TO '{odd}' (FORMAT PARQUET)")
    target = tmp_path / "consolidated.duckdb"
    assert integrator.main(["--artifacts-dir", str(artifacts), "--db", str(target), "--format", "json"]) == 1
    captured = capsys.readouterr()
    report = {r["artifact"]: r for r in json.loads(captured.out)}
    assert report["job_odd/performance_results.parquet"]["status"] == "failed"
    assert "Conversion" in report["job_odd/performance_results.parquet"]["reason"]
    assert sum(r["status"] == "merged" for r in report.values()) == 3
    assert "failed: job_odd/performance_results.parquet: " in captured.err and "Traceback" not in captured.err


@pytest.mark.slow  # over 0.35 s here: outside make test-fast
def test_archive_artifacts_moves_what_was_merged(artifacts, tmp_path):
    archive = tmp_path / "archived_artifacts"
    target = tmp_path / "consolidated.duckdb"
    assert integrator.main(["--artifacts-dir", str(artifacts), "--db", str(target), "--archive-artifacts",
                            "--archive-dir", str(archive)]) == 0
    assert not list(artifacts.rglob("*.duckdb"))
    archived = sorted(archive.rglob("*.duckdb"))
    assert len(archived) == 3 and {p.parent.name for p in archived} == set(JOBS)
    conn = duckdb.connect(str(target), read_only=True)
    assert conn.execute("SELECT count(*) FROM ingested_files WHERE archived_to IS NOT NULL").fetchone()[0] == 3
    conn.close()


def test_json_artifacts_go_through_the_ingest_engine(corpus_dir, tmp_path, capsys):
    sources = sorted((corpus_dir / "benchmark_results").rglob("*.json"))[:2]
    if not sources:
        pytest.skip("no legacy benchmark files in the corpus")
    root = tmp_path / "artifacts"
    root.mkdir()
    for i, src in enumerate(sources):
        shutil.copy(src, root / f"artifact_{i}.json")
    target = tmp_path / "t.duckdb"
    args = ["--artifacts-dir", str(root), "--db", str(target), "--commit", "123abc", "--branch", "main",
            "--format", "json"]
    assert integrator.main(args) == 0
    first = json.loads(capsys.readouterr().out)
    assert {r["status"] for r in first} <= {"merged", "skipped"}
    conn = duckdb.connect(str(target), read_only=True)
    tagged = conn.execute("SELECT DISTINCT metadata->>'$.ci.artifact' FROM test_runs WHERE git_commit = '123abc'"
                          ).fetchall()
    conn.close()
    assert {t[0] for t in tagged} <= {f"artifact_{i}.json" for i in range(len(sources))}
    assert integrator.main(args) == 0
    second = json.loads(capsys.readouterr().out)
    assert all(sum(v for k, v in r.items() if isinstance(v, int)) == 0 for r in second)


def test_missing_artifacts_folder_is_a_usage_error(tmp_path, capsys):
    assert integrator.main(["--artifacts-dir", str(tmp_path / "nope"), "--db", str(tmp_path / "x.duckdb")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "x.duckdb").exists()


def test_ci_metadata_from_github_environment():
    env = {"GITHUB_ACTIONS": "true", "GITHUB_SHA": "deadbeef", "GITHUB_REF_NAME": "feature", "GITHUB_RUN_ID": "7"}
    assert integrator.load_ci_metadata(None, environ=env) == {"commit": "deadbeef", "branch": "feature", "run_id": "7"}
    assert integrator.load_ci_metadata(None, commit="abc", environ=env)["commit"] == "abc"
    assert integrator.load_ci_metadata(None, environ={}) == {}

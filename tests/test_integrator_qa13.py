"""The CI integrator killed (kill -9) between storing an artifact's rows and logging or tagging them (QA 13).

Before: a JSON artifact killed after the ingest committed and before its runs got the CI metadata stayed
untagged for good (the re-run saw the file as ingested and skipped it), and a DuckDB artifact killed after its
merge committed and before it was logged was logged by the re-run with rows=0 (its rows were all there
already). Now the rows, the log row and the tags commit together, so a re-run ends in the state, and writes
the report, of an uninterrupted run. The whole database is compared, not only counts.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pytest

from tests.test_ingest import perf_doc, write_doc
from tests.test_interrupt_qa12 import assert_intact, run_killed, run_plain

ENTRY = "scripts.ci_benchmark_integrator"
# the clock when the run logged, migrated or first saw a dimension row: nothing else may differ
VOLATILE = {"ingested_at", "applied_at", "models.created_at", "hardware_platforms.created_at",
            "compression_dictionaries.created_at"}


def _artifacts(root: Path, sample_db: str) -> Path:
    """A job's database and two JSON result documents (each one run) in one artifacts folder."""
    art = root / "art"
    art.mkdir(parents=True)
    shutil.copyfile(sample_db, art / "job1.duckdb")
    for i, model in enumerate(("prajjwal1/bert-tiny", "t5-small")):
        write_doc(art / f"artifact_{i}.json", perf_doc(model=model, latency=10.0 + i))
    return art


def _args(root: Path) -> list:
    return ["--artifacts-dir", root / "art", "--db", root / "db.duckdb", "--commit", "abc123", "--branch", "main",
            "--format", "json"]


def _state(db: Path, root: Path) -> dict[str, list]:
    """Every row of every base table (paths made relative to the run's folder, log times left out)."""
    conn = duckdb.connect(str(db), read_only=True)
    try:
        state = {}
        for (table,) in conn.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' "
                                     "AND table_type = 'BASE TABLE' ORDER BY table_name").fetchall():
            cols = [r[0] for r in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = 'main' AND table_name = ? "
                "ORDER BY ordinal_position", [table]).fetchall() if r[0] not in VOLATILE and f"{table}.{r[0]}" not in VOLATILE]
            names = ", ".join('"' + c + '"' for c in cols)
            rows = conn.execute(f"SELECT {names} FROM {table}").fetchall()
            state[table] = sorted(tuple(str(v).replace(str(root), "<root>") for v in row) for row in rows)
        return state
    finally:
        conn.close()


def _run(root: Path, killed_at: tuple | None) -> tuple[dict, list]:
    if killed_at:
        at, when, nth = killed_at
        killed = run_killed(ENTRY, _args(root), at, when=when, nth=nth)
        assert killed.returncode == -9, killed.stderr
        assert_intact(root / "db.duckdb")
    done = run_plain(ENTRY, _args(root))
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return _state(root / "db.duckdb", root), json.loads(done.stdout)


KILL_POINTS = {
    # a DuckDB artifact: its merge committed, then killed before it was logged (and its runs tagged)
    "duckdb-before-log": (f"{ENTRY}:_log_artifact", "before", 1),
    # JSON artifacts: the ingest engine's batch committed, then killed before the runs were tagged
    "json-after-ingest-commit": ("benchmark_db.ingest:Ingestor._flush", "after", 1),
    "json-before-tagging": (f"{ENTRY}:_tag_new_runs", "before", 2),  # the 1st call tags job1.duckdb's runs
}


@pytest.mark.slow
@pytest.mark.parametrize("point", sorted(KILL_POINTS))
def test_integrator_killed_between_storing_and_tagging_ends_as_an_uninterrupted_run(
        sample_db_path, tmp_path, point):
    plain, killed = tmp_path / "plain", tmp_path / "killed"
    for root in (plain, killed):
        _artifacts(root, sample_db_path)
    plain_state, plain_report = _run(plain, None)
    killed_state, killed_report = _run(killed, KILL_POINTS[point])
    for table in plain_state:
        assert killed_state[table] == plain_state[table], table
    assert killed_state.keys() == plain_state.keys()
    # every run the artifacts brought has the CI metadata (the sample database's own runs included)
    conn = duckdb.connect(str(killed / "db.duckdb"), read_only=True)
    try:
        untagged = conn.execute("SELECT count(*) FROM test_runs WHERE json_extract(metadata, '$.ci') IS NULL "
                                "OR git_commit IS NULL").fetchone()[0]
        tagged_json = conn.execute("SELECT count(*) FROM test_runs WHERE json_extract_string(metadata, "
                                   "'$.ci.artifact') LIKE 'artifact_%.json'").fetchone()[0]
    finally:
        conn.close()
    assert untagged == 0 and tagged_json == 2
    if point == "duckdb-before-log":
        # nothing of the killed run committed: the re-run reports (and logs) what an uninterrupted run does,
        # not rows=0 for an artifact whose rows the killed run had already merged
        assert killed_report == plain_report
        assert sum(v for k, v in killed_report[0].items() if isinstance(v, int) and k != "runs_tagged") > 0


@pytest.mark.slow
def test_more_json_artifacts_than_one_ingest_batch_are_ingested_and_tagged(tmp_path, capsys):
    """Ingested in the integrator's transaction, more files than the engine's batch made it CHECKPOINT at
    the end, which DuckDB refuses inside a transaction (an unexpected TransactionException, nothing stored)."""
    from benchmark_db.ingest import DEFAULT_BATCH_SIZE
    from scripts import ci_benchmark_integrator as integrator

    art = tmp_path / "art"
    for i in range(DEFAULT_BATCH_SIZE + 3):
        write_doc(art / f"a{i}.json", perf_doc(model=f"model-{i}", latency=1.0 + i))
    db = tmp_path / "db.duckdb"
    assert integrator.main(["--artifacts-dir", str(art), "--db", str(db), "--commit", "c1", "--quiet"]) == 0
    conn = duckdb.connect(str(db), read_only=True)
    try:
        assert conn.execute("SELECT count(*), count(git_commit) FROM test_runs").fetchone() == (
            DEFAULT_BATCH_SIZE + 3, DEFAULT_BATCH_SIZE + 3)
    finally:
        conn.close()


@pytest.mark.slow
def test_migrate_ci_killed_right_after_a_merge_logs_what_an_uninterrupted_run_logs(sample_db_path, tmp_path):
    """`benchmark_db_migration.py --migrate-ci` committed a merge and then its log row apart: killed in
    between, the re-run found every row present and logged the artifact with rows=0."""
    states = {}
    for name, killed_at in (("plain", None), ("killed", "benchmark_db.merge:merge_database")):
        root = tmp_path / name
        (root / "art").mkdir(parents=True)
        shutil.copyfile(sample_db_path, root / "art" / "job1.duckdb")
        args = ["--migrate-ci", "--artifacts-dir", root / "art", "--db", root / "db.duckdb", "--quiet"]
        if killed_at:
            killed = run_killed("benchmark_db_migration", args, killed_at, when="after")
            assert killed.returncode == -9, killed.stderr
            assert_intact(root / "db.duckdb")
        done = run_plain("benchmark_db_migration", args)
        assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
        states[name] = _state(root / "db.duckdb", root)
    assert states["killed"] == states["plain"]
    conn = duckdb.connect(str(tmp_path / "killed" / "db.duckdb"), read_only=True)
    try:
        assert conn.execute("SELECT status, rows > 0 FROM ingested_files WHERE path LIKE '%job1.duckdb'").fetchall() \
            == [("ingested", True)]
    finally:
        conn.close()


@pytest.mark.parametrize("tool", ["migration", "integrator"])
def test_ctrl_c_inside_an_artifact_merge_stops_the_run(sample_db_path, tmp_path, monkeypatch, capsys, tool):
    """DuckDB raises Ctrl-C inside a query as RuntimeError("Query interrupted"): it was logged as a failed
    artifact and the run went on to the next one."""
    import benchmark_db.merge as merge
    import benchmark_db_migration as migration
    from scripts import ci_benchmark_integrator as integrator

    def interrupted(*args, **kwargs):
        raise RuntimeError("Query interrupted")

    monkeypatch.setattr(merge, "merge_database", interrupted)
    (tmp_path / "art").mkdir()
    shutil.copyfile(sample_db_path, tmp_path / "art" / "job1.duckdb")
    db = tmp_path / "db.duckdb"
    if tool == "migration":
        code = migration.main(["--migrate-ci", "--artifacts-dir", str(tmp_path / "art"), "--db", str(db), "--quiet"])
    else:
        code = integrator.main(["--artifacts-dir", str(tmp_path / "art"), "--db", str(db), "--quiet"])
    assert code == 130 and capsys.readouterr().err.startswith("error: interrupted")
    conn = duckdb.connect(str(db), read_only=True)
    try:
        assert conn.execute("SELECT count(*) FROM ingested_files WHERE path LIKE '%job1.duckdb'").fetchone()[0] == 0
    finally:
        conn.close()

"""Archived rows through the SQL endpoints, and merged CI artifacts in the integrity check.

`POST /query` and `BenchmarkDBAPI.query()` must see what `benchmark_db_query.py --sql` sees after
`--archive-data` (archived rows included, none twice), while their connection still reads no file but the
archive's own Parquet files. Real database and Parquet files in tmp_path, no mocks.
"""
from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import duckdb
import pytest

import benchmark_db_maintenance as maintenance_cli
import benchmark_db_migration
from benchmark_db.connection import connect
from benchmark_db.maintenance import archive, integrity
from benchmark_db.readonly_sql import open_query_connection
from benchmark_db_api import BenchmarkDBAPI

# the sample data is created 2025-03-01 .. 2025-03-03: archiving "older than 0 days" on 2025-03-02 moves the
# first day's rows and leaves the rest live
CUT = dt.datetime(2025, 3, 2)
COUNTED = ("performance_results", "hardware_compatibility", "integration_test_results", "performance_results_all",
           "benchmark_performance", "latest_performance_metrics", "integration_test_status")


def counts_seen_by_sql_option(db_path: str) -> dict[str, int]:
    """What `benchmark_db_query.py --sql` sees: a plain read-only connection (external access on)."""
    conn = connect(db_path, read_only=True)
    try:
        return {name: conn.execute(f"SELECT count(*) FROM {name}").fetchone()[0] for name in COUNTED}
    finally:
        conn.close()


@pytest.fixture
def archived_db(sample_db_path, tmp_path) -> tuple[str, list[str]]:
    """The sample database with its first day archived into tmp_path/archived_data; the files it names."""
    conn = connect(sample_db_path)
    try:
        before = conn.execute("SELECT count(*) FROM performance_results").fetchone()[0]
        result = archive.archive_old_rows(conn, 0, tmp_path / "archived_data", now=CUT)
        live = conn.execute("SELECT count(*) FROM performance_results").fetchone()[0]
    finally:
        conn.close()
    assert 0 < live < before and result["rows"]["performance_results"] == before - live
    return sample_db_path, result["files"]


@pytest.fixture
def client_for():
    from fastapi.testclient import TestClient

    from benchmark_db_server import ServerSettings, create_app

    clients = []

    def make(db_path: str):
        client = TestClient(create_app(ServerSettings(db_path=db_path, idle_release=0.1)))
        clients.append(client.__enter__())
        return clients[-1]

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.mark.slow  # about 1 s or more: outside make test-fast
def test_query_and_post_query_see_archived_rows_as_the_sql_option_does(archived_db, client_for):
    db_path, _ = archived_db
    expected = counts_seen_by_sql_option(db_path)
    with connect(db_path, read_only=True, config={"enable_external_access": False}) as live_only:
        live = live_only.execute("SELECT count(*) FROM performance_results").fetchone()[0]
    assert expected["performance_results"] > live  # the archive is really there to be seen
    assert expected["performance_results"] == expected["performance_results_all"] == expected["benchmark_performance"]

    with BenchmarkDBAPI(db_path=db_path) as api:
        for name, count in expected.items():
            assert int(api.query(f"SELECT count(*) AS n FROM {name}")["n"][0]) == count, name
    client = client_for(db_path)
    for name, count in expected.items():
        response = client.post("/query", json={"sql": f"SELECT count(*) AS n FROM {name}"})
        assert response.status_code == 200, response.text
        assert response.json()["rows"] == [[count]], name
    # the same rows, not only the same number: archived ids are there, none twice
    ids = client.post("/query", json={"sql": "SELECT result_id FROM performance_results ORDER BY 1"}).json()["rows"]
    with connect(db_path, read_only=True) as reader:
        assert ids == [[r[0]] for r in reader.execute("SELECT result_id FROM performance_results ORDER BY 1")
                       .fetchall()]
    assert len({r[0] for r in ids}) == len(ids)


def test_the_query_connection_reads_the_archived_files_and_no_other_file(archived_db, tmp_path, client_for):
    db_path, files = archived_db
    archived = next(f for f in files if "performance_results" in Path(f).name)
    stray = Path(archived).with_name("not-in-the-database.parquet")  # same folder, a name the database lacks
    shutil.copyfile(archived, stray)
    elsewhere = tmp_path / "elsewhere.csv"
    elsewhere.write_text("a,b\n1,2\n")
    with open_query_connection(db_path) as conn:  # the connection itself, below the statement checks
        assert conn.execute(f"SELECT count(*) FROM read_parquet('{archived}')").fetchone()[0] > 0
        for sql in (f"SELECT * FROM read_parquet('{stray}')", f"SELECT * FROM read_parquet(['{archived}', '{stray}'])",
                    f"SELECT * FROM read_parquet('{Path(archived).parent}/*.parquet')",
                    f"SELECT * FROM read_csv('{elsewhere}')", "SELECT * FROM read_csv('/etc/passwd')",
                    f"SELECT * FROM glob('{tmp_path}/*')"):
            with pytest.raises(duckdb.PermissionException):
                conn.execute(sql).fetchall()
        for sql in (f"SET allowed_paths = ['{stray}']", f"SET allowed_directories = ['{tmp_path}']",
                    "SET enable_external_access = true"):
            with pytest.raises(duckdb.Error):
                conn.execute(sql)
    client = client_for(db_path)
    for sql in (f"SELECT * FROM read_parquet('{stray}')", "SELECT * FROM read_csv('/etc/passwd')"):
        response = client.post("/query", json={"sql": sql})
        assert response.status_code == 400 and response.json()["error"]["code"] == "query_refused"


def test_a_database_without_archive_queries_as_before(sample_db_path, tmp_path, client_for):
    with connect(sample_db_path, read_only=True) as reader:
        live = reader.execute("SELECT count(*) FROM performance_results").fetchone()[0]
    duckdb.execute(f"COPY (SELECT 1 AS a) TO '{tmp_path / 'x.parquet'}' (FORMAT PARQUET)")
    with BenchmarkDBAPI(db_path=sample_db_path) as api:
        assert int(api.query("SELECT count(*) AS n FROM performance_results")["n"][0]) == live
    assert client_for(sample_db_path).post(
        "/query", json={"sql": "SELECT count(*) FROM benchmark_performance"}).json()["rows"] == [[live]]
    with open_query_connection(sample_db_path) as conn:
        assert not any(p.endswith(".parquet") for p in conn.execute(
            "SELECT current_setting('allowed_paths')").fetchone()[0])
        with pytest.raises(duckdb.PermissionException):
            conn.execute(f"SELECT * FROM read_parquet('{tmp_path / 'x.parquet'}')").fetchall()


# -- integrity: merged CI artifacts are not documents ------------------------------------------------------

@pytest.mark.slow  # over a second
def test_check_integrity_leaves_out_merged_ci_artifacts_but_not_documents(tmp_path, capsys):
    from scripts.create_benchmark_schema import create_database

    artifacts = tmp_path / "art"
    artifacts.mkdir()
    create_database(str(artifacts / "j.duckdb"), sample_data=True)
    target = str(tmp_path / "main.duckdb")
    assert benchmark_db_migration.main(["--migrate-ci", "--artifacts-dir", str(artifacts), "--db", target,
                                        "--quiet", "--format", "json"]) == 0
    capsys.readouterr()
    with connect(target) as conn:
        assert conn.execute("SELECT kind, status FROM ingested_files").fetchall() == [
            ("database_artifact", "ingested")]
        # the CI integrator's own kinds, logged the same way
        conn.execute("INSERT INTO ingested_files (path, sha256, size_bytes, kind, status, rows) VALUES "
                     "('/ci/a.duckdb', 'aa', 1, 'ci-artifact-duckdb', 'ingested', 1), "
                     "('/ci/b.parquet', 'bb', 1, 'ci-artifact-parquet', 'ingested', 1), "
                     "('/ci/c.parquet', 'cc', 1, 'parquet_artifact', 'ingested', 1)")
        assert integrity.check_integrity(conn) == []
        # a document whose original is not kept is still a dangling reference
        conn.execute("INSERT INTO ingested_files (path, sha256, size_bytes, kind, status, rows) VALUES "
                     "('/results/r.json', 'dd', 1, 'json', 'ingested', 1)")
        problems = integrity.check_integrity(conn)
    assert [(p["check"], p["table"], p["examples"]) for p in problems] == [
        ("dangling reference", "ingested_files", "/results/r.json")]
    assert maintenance_cli.main(["--check-integrity", "--db", target]) == 1
    assert "/results/r.json" in capsys.readouterr().out

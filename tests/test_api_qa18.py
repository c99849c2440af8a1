"""Session 15 of the REST server and the Python API: results filtered by sequence length, and a result
stored without a batch size keeps NULL instead of an invented 1."""
from __future__ import annotations

import json

import pytest

from benchmark_db_api import BenchmarkDBAPI


@pytest.fixture
def client(db_path):
    from fastapi.testclient import TestClient

    from benchmark_db_server import ServerSettings, create_app

    with TestClient(create_app(ServerSettings(db_path=db_path, idle_release=0.1))) as test_client:
        yield test_client


@pytest.mark.slow  # about 0.45 s here: outside make test-fast
def test_get_performance_filters_on_sequence_length(client):
    """GET /performance filtered on test_case but not on sequence_length, which reports key on."""
    for length, throughput in ((32, 300.0), (512, 20.0)):
        stored = client.post("/performance", json={"model_name": "bert", "hardware_type": "cpu", "batch_size": 1,
                                                   "sequence_length": length, "throughput": throughput})
        assert stored.status_code == 201, stored.text
    items = client.get("/performance", params={"sequence_length": 512}).json()["items"]
    assert [(item["sequence_length"], item["throughput"]) for item in items] == [(512, 20.0)]
    assert client.get("/performance", params={"sequence_length": 64}).json()["count"] == 0
    refused = client.get("/performance", params={"sequence_length": -1})
    assert refused.status_code == 422 and refused.json()["error"]["details"][0]["field"] == "sequence_length"


def test_python_api_filters_on_sequence_length(db_path):
    api = BenchmarkDBAPI(db_path)
    for length in (32, 512):
        api.store_performance_result("bert", "cpu", batch_size=1, sequence_length=length, throughput=float(length))
    frame = api.get_performance_metrics(sequence_length=32)
    assert frame["sequence_length"].tolist() == [32] and frame["throughput"].tolist() == [32.0]


@pytest.mark.slow  # about 0.4 s here
def test_a_result_without_batch_size_stores_null_not_one(client, db_path):
    """POST /performance, its batch and store_performance_result stored batch_size 1 for a client that sent none:
    a made-up value that pooled with real batch-1 results in every report."""
    assert client.post("/performance", json={"model_name": "bert", "hardware_type": "cpu",
                                             "throughput": 5.0}).status_code == 201
    batch = client.post("/performance/batch", json={"results": [{"model_name": "t5", "hardware_type": "cpu"},
                                                                {"model_name": "t5", "hardware_type": "cpu",
                                                                 "batch_size": 8}]})
    assert batch.status_code == 201, batch.text
    BenchmarkDBAPI(db_path).store_performance_result("gpt2", "cpu", throughput=1.0)
    items = client.get("/performance", params={"limit": 10}).json()["items"]
    assert sorted((item["model_name"], item["batch_size"] or 0) for item in items) == [
        ("bert", 0), ("gpt2", 0), ("t5", 0), ("t5", 8)]
    assert all(item["batch_size"] is None for item in items if item["model_name"] != "t5" or item["batch_size"] != 8)


def test_a_json_field_over_64_kib_is_refused_on_every_path(client, db_path):
    """A 2 MB `metrics` was stored, after which `GET /performance?limit=1` took 60 s and 8 GB (DuckDB 1.5.5
    reads a long text once per NULL after it, duckdb/duckdb#24897)."""
    from benchmark_db.errors import DataConversionError
    from benchmark_db_models import BenchmarkDB, TestRuns

    big = {"pad": "A" * 70_000}
    refused = client.post("/performance", json={"model_name": "m", "hardware_type": "cpu", "metrics": big})
    assert refused.status_code == 422 and "70,010 bytes as JSON, more than the 65,536" in refused.text
    batch = client.post("/performance/batch", json={"results": [{"model_name": "m", "hardware_type": "cpu",
                                                                 "environment": big}]})
    assert batch.status_code == 422
    with pytest.raises(DataConversionError, match="metrics is 70,010 bytes"):
        BenchmarkDBAPI(db_path).store_performance_result("m", "cpu", metrics=big)
    with BenchmarkDB(db_path) as db, pytest.raises(DataConversionError, match="environment is 70,0"):
        db.insert(TestRuns(test_name="t", environment=big))
    assert client.get("/performance").json()["count"] == 0
    # up to the cap is stored
    assert client.post("/performance", json={"model_name": "m", "hardware_type": "cpu",
                                             "metrics": {"pad": "A" * 65_000}}).status_code == 201


def test_a_chunked_body_over_the_limit_is_413(client, monkeypatch):
    """The limit read Content-Length only: a chunked 70 MiB body was stored."""
    import benchmark_db_server

    monkeypatch.setattr(benchmark_db_server, "MAX_BODY_BYTES", 2_000)
    body = json.dumps({"model_name": "m", "hardware_type": "cpu", "metrics": {"pad": "A" * 3_000}}).encode()
    chunks = (body[i:i + 500] for i in range(0, len(body), 500))  # no Content-Length: Transfer-Encoding chunked
    refused = client.post("/performance", content=chunks, headers={"Content-Type": "application/json"})
    assert refused.status_code == 413 and refused.json()["error"]["code"] == "too_large"
    small = json.dumps({"model_name": "m", "hardware_type": "cpu", "throughput": 1.0}).encode()
    stored = client.post("/performance", content=(small[i:i + 10] for i in range(0, len(small), 10)),
                         headers={"Content-Type": "application/json"})
    assert stored.status_code == 201, stored.text
    assert client.get("/performance").json()["count"] == 1


def test_the_open_endpoints_name_a_lake_without_its_connection_details(client, db_path):
    """`/` and `/health` answered `Path(db).name` of a libpq string (no "/"): the whole string, password and all,
    to anyone who could reach the server; the startup line printed it too."""
    from pathlib import Path

    from benchmark_db_server import public_database_name

    lake = "ducklake:postgres:dbname=bench host=10.0.0.5 port=5432 user=bench password=s3cr3t"
    assert public_database_name(lake) == "ducklake:postgres:dbname=bench"
    assert public_database_name("ducklake:postgres:host=h password='a b'") == "ducklake:postgres"
    assert public_database_name("ducklake:/shared/team/bench.ducklake") == "ducklake:bench.ducklake"
    assert client.get("/").json()["database"] == Path(db_path).name
    assert client.get("/health").json()["database"] == Path(db_path).name


@pytest.mark.slow  # about 2 s: two interpreters
def test_the_guides_api_example_leaves_no_wal_behind(tmp_path):
    """The idle release's daemon thread died at exit with the connection open: the last writes stayed in the
    `.wal`, and a `cp` of the database file (CI's artifact) had none of them."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    import duckdb

    repo = Path(__file__).resolve().parents[1]
    script = ("import sys; sys.path.insert(0, sys.argv[1])\n"
              "from benchmark_db_api import BenchmarkDBAPI\n"
              "api = BenchmarkDBAPI(db_path='./benchmark_db.duckdb')\n"
              "api.store_performance_result(model_name='bert-base-uncased', hardware_type='cuda', batch_size=32,"
              " throughput=250.5)\n")
    for _ in range(2):
        subprocess.run([sys.executable, "-c", script, str(repo)], cwd=tmp_path, check=True, timeout=120)
    assert not (tmp_path / "benchmark_db.duckdb.wal").exists()
    (tmp_path / "copy").mkdir()
    shutil.copy(tmp_path / "benchmark_db.duckdb", tmp_path / "copy")
    conn = duckdb.connect(str(tmp_path / "copy" / "benchmark_db.duckdb"), read_only=True)
    assert conn.execute("SELECT count(*) FROM performance_results").fetchone()[0] == 2
    conn.close()


@pytest.mark.slow  # about 1.5 s: waits for the other objects
def test_query_waits_for_another_object_of_this_process_then_says_which(db_path):
    """api.query() failed at once with DB001 "Can't open a connection to same database file with a different
    configuration ... check that the path is a DuckDB database file you can read" while a second API object or
    an ORM of the same process had the file open."""
    from benchmark_db.errors import DatabaseLockedError
    from benchmark_db_models import BenchmarkDB

    first = BenchmarkDBAPI(db_path)
    first.store_performance_result("bert", "cpu", throughput=1.0)
    second = BenchmarkDBAPI(db_path)
    assert second.query("SELECT count(*) AS n FROM performance_results")["n"].tolist() == [1]  # after first lets go
    orm = BenchmarkDB(db_path)
    orm.get_or_add_model("x")  # holds the file until closed
    try:
        with pytest.raises(DatabaseLockedError, match="held open by another BenchmarkDBAPI or BenchmarkDB object"):
            BenchmarkDBAPI(db_path, lock_timeout=0.5).query("SELECT 1")
    finally:
        orm.close()
    assert BenchmarkDBAPI(db_path).query("SELECT 1 AS one")["one"].tolist() == [1]


def test_an_immutable_file_is_unwritable_not_unreadable(tmp_path, db_path):
    """EPERM (chattr +i) read "cannot open ...: Operation not permitted", so the server refused to start on a
    file it could serve for reading, as it does on a read-only mount (EROFS)."""
    import shutil
    import subprocess

    from benchmark_db.connection import connect
    from benchmark_db.errors import DatabaseUnwritableError

    writer = BenchmarkDBAPI(db_path)
    writer.store_performance_result("bert", "cpu", throughput=1.0)
    writer.db.close()  # let go of the file, so that the next open is a real one
    if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", db_path]).returncode != 0:
        pytest.skip("chattr +i is not available here (needs root and a file system that has it)")
    try:
        with pytest.raises(DatabaseUnwritableError, match="Operation not permitted"):
            connect(db_path).close()
        assert BenchmarkDBAPI(db_path).get_performance_metrics()["model_name"].tolist() == ["bert"]
    finally:
        subprocess.run(["chattr", "-i", db_path], check=True)


def test_the_session_run_keeps_no_password_of_the_calling_command(db_path, monkeypatch):
    """The API's session run stored `" ".join(sys.argv)`: a script given --db "ducklake:postgres:... password=x"
    left the password in test_runs.command_line."""
    import sys

    import duckdb

    monkeypatch.setattr(sys, "argv", ["nightly.py", "--db", "ducklake:postgres:dbname=b password=s3cr3t", "--x"])
    api = BenchmarkDBAPI(db_path)
    api.store_performance_result("bert", "cpu", throughput=1.0)
    api.db.close()
    conn = duckdb.connect(db_path, read_only=True)
    [(line,)] = conn.execute("SELECT command_line FROM test_runs WHERE test_type = 'api'").fetchall()
    conn.close()
    assert "s3cr3t" not in line and line == "nightly.py --db 'ducklake:postgres:dbname=b password=***' --x"


def test_results_of_one_call_describing_one_run_share_it_and_its_start_stays_unknown(client, db_path):
    """A batch of three results of test_name "ci-job" at commit abc123 (no started_at) made three runs, each with
    a started_at of the moment it was stored, which the client never sent."""
    results = [{"model_name": "ci-m", "hardware_type": "cpu", "batch_size": b, "test_name": "ci-job",
                "git_commit": "abc123"} for b in (1, 2, 4)]
    results.append(dict(results[0], batch_size=8, git_commit="def456"))  # another run
    assert client.post("/performance/batch", json={"results": results}).status_code == 201
    rows = client.post("/query", json={"sql": "SELECT git_commit, started_at, count(pr.result_id) FROM test_runs "
                                              "LEFT JOIN performance_results pr USING (run_id) WHERE test_name = "
                                              "'ci-job' GROUP BY ALL ORDER BY 1"}).json()["rows"]
    assert rows == [["abc123", None, 3], ["def456", None, 1]]
    # a later call is a run of its own: without a start time nothing says it is the same run
    assert client.post("/performance", json=results[0]).status_code == 201
    api = BenchmarkDBAPI(db_path)
    api.store_many(results[:2])
    count = api.query("SELECT count(*) AS n FROM test_runs WHERE test_name = 'ci-job'")["n"].tolist()
    assert count == [4]

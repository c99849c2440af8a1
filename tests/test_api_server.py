"""The REST server as users run it: `benchmark_db_api.py --serve` in a real uvicorn process on loopback."""
from __future__ import annotations

import hashlib
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A `--serve` process on a free loopback port; `request()` speaks plain HTTP/1.1 with keep-alive off."""

    def __init__(self, db: str, *extra: str, env: dict | None = None):
        self.db = db
        self.port = free_port()
        environment = {k: v for k, v in os.environ.items() if k != "BENCHMARK_DB_API_TOKEN"}
        environment.update(env or {})
        self.proc = subprocess.Popen(
            [sys.executable, str(REPO / "benchmark_db_api.py"), "--serve", "--host", "127.0.0.1", "--port",
             str(self.port), "--db", db, *extra], cwd=REPO, env=environment, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while True:
            try:
                if self.request("GET", "/health")[0] == 200:
                    break
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"server did not start: {self.proc.stderr.read()[-2000:]}")
            time.sleep(0.2)

    def request(self, method: str, path: str, body=None, headers=None, raw: bytes | None = None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            payload = raw if raw is not None else (json.dumps(body) if body is not None else None)
            conn.request(method, path, payload, {"Content-Type": "application/json", **(headers or {})})
            response = conn.getresponse()
            data = response.read()
            return response.status, (json.loads(data) if data else None)
        finally:
            conn.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def server(db_path):
    srv = Server(db_path, "--query-timeout", "1", "--query-max-rows", "1000", "--idle-release", "0.2")
    yield srv
    srv.stop()


def database_checksum(path: str) -> str:
    """A hash of every table's rows and of the catalogue (tables, views, macros, sequences)."""
    from benchmark_db.connection import open_db

    digest = hashlib.sha256()
    with open_db(path, read_only=True) as conn:
        catalogue = conn.execute(
            "SELECT 'table', table_name FROM duckdb_tables() UNION ALL SELECT 'view', view_name FROM duckdb_views() "
            "WHERE NOT internal UNION ALL SELECT 'function', function_name FROM duckdb_functions() WHERE NOT internal "
            "UNION ALL SELECT 'sequence', sequence_name FROM duckdb_sequences() UNION ALL "
            "SELECT 'database', database_name FROM duckdb_databases() ORDER BY ALL").fetchall()
        digest.update(repr(catalogue).encode())
        for (table,) in conn.execute("SELECT table_name FROM duckdb_tables() ORDER BY 1").fetchall():
            digest.update(repr(conn.execute(f'SELECT * FROM "{table}" ORDER BY ALL').fetchall()).encode())
    return digest.hexdigest()


@pytest.mark.slow  # over 1.5 s: outside make test-fast
def test_real_server_answers_the_guide_endpoints(server):
    assert server.request("GET", "/")[0] == 200
    status, body = server.request("POST", "/performance", {"model_name": "bert-base-uncased", "hardware_type": "cuda",
                                                           "throughput": 123.4, "latency_avg": 10.5})
    assert status == 201, body
    status, page = server.request("GET", "/performance?model_name=bert-base-uncased&hardware_type=cuda")
    assert status == 200 and page["items"][0]["throughput"] == 123.4
    assert server.request("GET", "/openapi.json")[0] == 200
    status, error = server.request("POST", "/performance", raw=b"{not json")
    assert status == 422 and error["error"]["code"] == "validation_error"


@pytest.mark.slow  # over 1.5 s: outside make test-fast
def test_serve_creates_a_missing_database_where_the_reader_command_refuses_it(tmp_path):
    """README: writers create a missing database, readers fail with DB001; --serve is a writer."""
    missing = tmp_path / "new" / "bench.duckdb"
    reader = subprocess.run([sys.executable, str(REPO / "benchmark_db_api.py"), "--db", str(missing)], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert reader.returncode == 3 and "error DB001: database" in reader.stderr and not missing.exists()
    srv = Server(str(missing))
    try:
        assert missing.exists()
        status, page = srv.request("GET", "/performance?limit=1")
        assert status == 200 and page["count"] == 0 and page["next_offset"] is None
        status, stored = srv.request("POST", "/performance/batch", {"results": [
            {"model_name": "bert", "hardware_type": "cpu", "throughput": 1.0} for _ in range(2)]})
        assert status == 201, stored
        status, page = srv.request("GET", "/performance?limit=2")
        assert page["count"] == 2 and page["next_offset"] is None  # a full last page ends the paging
        status, error = srv.request("POST", "/query", {"sql": "SELECT current_setting('temp_directory')"})
        assert status == 400 and str(missing) not in json.dumps(error)
        status, error = srv.request("POST", "/integration", {"test_name": "t", "status": "passed",
                                                             "execution_time_seconds": -1})
        assert status == 422 and error["error"]["details"][0]["field"] == "execution_time_seconds"
    finally:
        srv.stop()


@pytest.mark.slow
def test_sixteen_clients_writing_at_once_lose_nothing(server):
    errors: list = []
    # every client sends the same result: only the run/session rule keeps them apart
    body = json.dumps({"model_name": "bert-base-uncased", "hardware_type": "cpu", "batch_size": 1,
                       "throughput": 100.0, "latency_avg": 10.0})

    def client(n: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
        for _ in range(100):
            try:
                conn.request("POST", "/performance", body, {"Content-Type": "application/json"})
                response = conn.getresponse()
                data = response.read()
                if response.status != 201:
                    errors.append((response.status, data[:200]))
            except OSError as exc:
                errors.append(repr(exc))
        conn.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    status, result = server.request("POST", "/query", {"sql": "SELECT count(*), count(DISTINCT result_id) "
                                                              "FROM performance_results"})
    assert status == 200 and result["rows"] == [[1600, 1600]]
    server.stop()
    from benchmark_db.connection import open_db

    with open_db(server.db, read_only=True) as conn:
        assert conn.execute("SELECT count(*) FROM performance_results").fetchone()[0] == 1600


def hostile_bodies(tmp: Path, db: str) -> list[dict]:
    leak = tmp / "leak.csv"
    return [
        {"sql": "DROP TABLE performance_results"},
        {"sql": "DELETE FROM performance_results"},
        {"sql": "INSERT INTO models (model_id, model_name) VALUES (1, 'evil')"},
        {"sql": "UPDATE models SET model_name = 'evil'"},
        {"sql": "CREATE TABLE evil AS SELECT 1"},
        {"sql": "CREATE MACRO evil(x) AS x"},
        {"sql": "SELECT 1; DROP TABLE models"},
        {"sql": "SELECT * FROM models; SELECT 2"},
        {"sql": "WITH x AS (SELECT 1) DELETE FROM models"},
        {"sql": "SELECT * FROM read_csv('/etc/passwd')"},
        {"sql": "SELECT * FROM read_text('/etc/passwd')"},
        {"sql": "SELECT * FROM glob('/*')"},
        {"sql": f"SELECT * FROM read_blob('{db}')"},  # DuckDB allows its own file even without external access
        {"sql": f"SELECT * FROM read_text('{db}.wal')"},
        {"sql": f"SELECT * FROM '{db}'"},
        {"sql": "SELECT path FROM duckdb_databases"},
        {"sql": "SELECT * FROM read_parquet('http://127.0.0.1:9/x.parquet')"},
        {"sql": "SELECT * FROM '/etc/passwd'"},
        {"sql": f"ATTACH '{tmp / 'evil.duckdb'}' AS evil"},
        {"sql": f"COPY performance_results TO '{leak}'"},
        {"sql": f"COPY (SELECT 1) TO '{leak}'"},
        {"sql": f"EXPORT DATABASE '{tmp / 'export'}'"},
        {"sql": "INSTALL httpfs"},
        {"sql": "LOAD httpfs"},
        {"sql": "PRAGMA database_list"},
        {"sql": "SET enable_external_access = true"},
        {"sql": "SET threads = 1"},
        {"sql": "CALL pragma_version()"},
        {"sql": "CHECKPOINT"},
        {"sql": "BEGIN TRANSACTION"},
        {"sql": "SELECT * FROM query('DROP TABLE models')"},
        {"sql": "SELECT * FROM range(100000000)"},  # huge result
        {"sql": "SELECT repeat('x', 1000000) FROM range(100)"},  # huge values
        {"sql": "SELECT count(*) FROM range(10000000000000) a"},  # long-running
        {"sql": "SELECT count(*) FROM range(100000) a, range(100000) b WHERE a.range + b.range = -1"},
        {"sql": "SELECT ?", "params": [[1, 2]]},
        {"sql": "SELECT $1", "params": {"1": "x"}},
        {"sql": "SELECT 1", "params": "x"},
        {"sql": ""},
        {"sql": ["SELECT 1"]},
    ]


@pytest.mark.slow
def test_hostile_queries_are_refused_and_change_nothing(server, tmp_path):
    for i in range(5):
        assert server.request("POST", "/performance", {"model_name": f"m{i}", "hardware_type": "cpu"})[0] == 201
    server.stop()
    before = database_checksum(server.db)
    restarted = Server(server.db, "--query-timeout", "1", "--query-max-rows", "1000")
    try:
        bodies = hostile_bodies(tmp_path, server.db)
        assert len(bodies) >= 20
        for body in bodies:
            status, answer = restarted.request("POST", "/query", body)
            assert 400 <= status < 500, (body, status, answer)
            assert set(answer["error"]) == {"code", "message", "details"}, answer
        # parameters are bound, never formatted into the SQL
        status, answer = restarted.request("POST", "/query", {"sql": "SELECT count(*) FROM models WHERE model_name = ?",
                                                              "params": ["x'; DROP TABLE models; --"]})
        assert status == 200 and answer["rows"] == [[0]]
        assert restarted.request("GET", "/health")[0] == 200
    finally:
        restarted.stop()
    assert database_checksum(server.db) == before
    assert not (tmp_path / "leak.csv").exists() and not (tmp_path / "evil.duckdb").exists()
    assert not (tmp_path / "export").exists()


@pytest.mark.slow
def test_cli_tools_work_on_the_file_while_the_server_runs(db_path, repo_root):
    srv = Server(db_path, "--idle-release", "0.2", "--max-hold", "2")
    stop = threading.Event()
    stored: list[int] = []

    def steady_writer():  # keeps the server busy, so the CLI needs the handover, not just idle gaps
        while not stop.is_set():
            if srv.request("POST", "/performance", {"model_name": "bert-base-uncased", "hardware_type": "cpu"})[0] == 201:
                stored.append(1)

    writer = threading.Thread(target=steady_writer)
    writer.start()
    try:
        time.sleep(1.0)
        for command in (["scripts/create_benchmark_schema.py", "--output", db_path],
                        ["benchmark_db_models.py", "--db", db_path]):
            run = subprocess.run([sys.executable, *command], cwd=repo_root, capture_output=True, text=True,
                                 timeout=120)
            assert run.returncode == 0, run.stderr
        # a direct write through the core, as a runner would do it
        from benchmark_db_models import BenchmarkDB

        with BenchmarkDB(db_path, lock_timeout=60) as db:
            model_id = db.get_or_add_model("written-beside-the-server")
        assert model_id
    finally:
        stop.set()
        writer.join()
    status, models = srv.request("GET", "/models?model_name=written-beside-the-server")
    assert status == 200 and models["count"] == 1
    status, result = srv.request("POST", "/query", {"sql": "SELECT count(*) FROM performance_results"})
    srv.stop()
    assert result["rows"] == [[len(stored)]] and stored


def test_refuses_to_listen_beyond_loopback_without_token(db_path):
    env = {k: v for k, v in os.environ.items() if k != "BENCHMARK_DB_API_TOKEN"}
    run = subprocess.run([sys.executable, str(REPO / "benchmark_db_api.py"), "--serve", "--host", "0.0.0.0",
                          "--port", str(free_port()), "--db", db_path], capture_output=True, text=True, env=env,
                         timeout=60)
    assert run.returncode == 2
    assert run.stderr.startswith("error DB000") and "BENCHMARK_DB_API_TOKEN" in run.stderr


@pytest.mark.slow
def test_token_protects_writes_on_the_real_server(db_path):
    srv = Server(db_path, env={"BENCHMARK_DB_API_TOKEN": "tok-123"})
    try:
        body = {"model_name": "bert", "hardware_type": "cpu"}
        assert srv.request("POST", "/performance", body)[0] == 401
        assert srv.request("POST", "/performance", body, {"Authorization": "Bearer tok-123"})[0] == 201
        assert srv.request("GET", "/performance")[0] == 200
    finally:
        srv.stop()


@pytest.mark.slow
def test_schemathesis_finds_no_server_errors(server, tmp_path):
    """Property-based requests from the OpenAPI schema: no 5xx anywhere (bounded examples per operation)."""
    st = Path(sys.executable).with_name("st")
    if not st.exists():
        pytest.skip("schemathesis is not installed in this environment")
    run = subprocess.run(
        [str(st), "run", f"http://127.0.0.1:{server.port}/openapi.json", "--checks", "not_a_server_error",
         "--max-examples", "10", "--seed", "1", "--request-timeout", "30", "--no-color"],
        cwd=tmp_path, capture_output=True, text=True, timeout=500)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]

"""QA round 16 of the REST server and the Python API: a query parameter given twice, implausible times, and
reading a database this process cannot write."""
from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmark_db.errors import DatabaseLockedError, DataConversionError
from benchmark_db_api import BenchmarkDBAPI
from benchmark_db_models import BenchmarkDB, PerformanceResults, RecordColumns, TestRuns
from tests.test_maintenance_qa14 import read_only_mount

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def client(db_path):
    from fastapi.testclient import TestClient

    from benchmark_db_server import ServerSettings, create_app

    with TestClient(create_app(ServerSettings(db_path=db_path, idle_release=0.1))) as test_client:
        yield test_client


def _error(response, status: int = 422) -> dict:
    assert response.status_code == status, response.text
    return response.json()["error"]


# -- 1. a query parameter given twice ------------------------------------------------------------------------


def test_a_query_parameter_given_twice_is_422_naming_it_not_its_last_value(client):
    """`?model_name=x&model_name=bert` filtered on bert alone (FastAPI keeps the last value), and
    `?model_name=bert&model_name=nosuch` answered 200 with no rows."""
    assert client.post("/performance", json={"model_name": "bert", "hardware_type": "cpu"}).status_code == 201
    for params in ([("model_name", "x"), ("model_name", "bert")], [("model_name", "bert"), ("model_name", "nosuch")],
                   [("model_name", "bert"), ("model_name", "bert")], [("limit", "5"), ("limit", "10")]):
        error = _error(client.get("/performance", params=params))
        assert error["code"] == "validation_error"
        name = params[0][0]
        assert error["details"] == [{"field": name, "location": "query", "type": "repeated_value",
                                     "message": "given more than once; this parameter takes one value: give it once"}]
        assert name in error["message"]
    for path, name in (("/compatibility", "hardware_type"), ("/integration", "status"), ("/hardware", "device_name"),
                       ("/models", "modality")):
        assert _error(client.get(path, params=[(name, "a"), (name, "b")]))["details"][0]["field"] == name
    # given once, as before
    assert client.get("/performance", params={"model_name": "bert"}).json()["count"] == 1


def test_no_endpoint_takes_a_list_query_parameter():
    """The repeat check refuses every parameter given twice: right only while none of them takes a list."""
    from fastapi.routing import APIRoute
    from pydantic.fields import FieldInfo

    from benchmark_db_server import ServerSettings, create_app

    app = create_app(ServerSettings(db_path="unused.duckdb"))
    for route in app.routes:
        if isinstance(route, APIRoute):
            for param in route.dependant.query_params:
                info: FieldInfo = param.field_info
                assert "list" not in str(info.annotation).lower(), (route.path, param.alias)


# -- 2. times outside the plausible range ---------------------------------------------------------------------


def test_the_time_range_is_the_converters():
    from benchmark_db import normalize
    from benchmark_db_models import EARLIEST_TIME, LATEST_TIME

    epoch = dt.datetime(1970, 1, 1)
    assert EARLIEST_TIME == epoch + dt.timedelta(seconds=normalize._MIN_EPOCH_S) == dt.datetime(2000, 1, 1)
    assert LATEST_TIME == epoch + dt.timedelta(seconds=normalize._MAX_EPOCH_S) == dt.datetime(2100, 1, 1)


BAD_TIMES = ["0001-01-01T00:00:00", "9999-12-31T00:00:00", "1999-12-31T23:59:59Z", "2100-01-01T00:00:00",
             "2099-12-31T23:30:00-01:00"]


def test_rest_refuses_a_time_of_year_1_or_9999_naming_the_field_and_the_range(client):
    """created_at 0001-01-01 was stored (201) and crashed --plot-trend and the analytics later ("Date ordinal
    -719162.02"); 9999-12-31 made the summary's last result."""
    bodies = {"/performance": {"model_name": "bert", "hardware_type": "cpu"},
              "/compatibility": {"hardware_type": "cpu", "model_name": "bert", "is_compatible": True},
              "/integration": {"test_name": "t", "status": "passed"}}
    for path, body in bodies.items():
        for field in ("created_at", "started_at", "completed_at"):
            for stamp in BAD_TIMES:
                run = {} if field == "created_at" else {"run_id": 7} if path != "/integration" else {"run_name": "r"}
                error = _error(client.post(path, json={**body, **run, field: stamp}))
                assert error["code"] == "invalid_value" and error["details"] == {"db_code": "DB003"}
                assert error["message"].startswith(f"{field} ") and "2000-01-01" in error["message"] \
                    and "2100-01-01" in error["message"], error["message"]
    batch = {"results": [{"model_name": "bert", "hardware_type": "cpu", "created_at": "2025-01-01T00:00:00Z"},
                         {"model_name": "bert", "hardware_type": "cpu", "created_at": "0001-01-01T00:00:00"}]}
    error = _error(client.post("/performance/batch", json=batch))
    assert error["message"].startswith("result 1: created_at 0001-01-01") and "2000-01-01" in error["message"]
    assert client.get("/performance").json()["count"] == 0  # nothing stored
    assert client.get("/compatibility").json()["count"] == 0
    # the ends of the range, and a filter, which may be any time
    for stamp in ("2000-01-01T00:00:00Z", "2099-12-31T23:59:59Z"):
        assert client.post("/performance", json={**bodies["/performance"], "created_at": stamp}).status_code == 201
    assert client.get("/performance", params={"since": "1970-01-01T00:00:00"}).json()["count"] == 2


def test_python_api_refuses_implausible_times_with_db003(db_path):
    api = BenchmarkDBAPI(db_path, idle_release=0)
    for value in (dt.datetime(1, 1, 1), dt.datetime(9999, 12, 31), "1999-06-01", 0, 5_000_000_000):
        with pytest.raises(DataConversionError, match="created_at .* 2000-01-01 to before 2100-01-01") as caught:
            api.store_performance_result(model_name="m", hardware_type="cpu", throughput=1.0, created_at=value)
        assert caught.value.code == "DB003"
    with pytest.raises(DataConversionError, match="started_at"):
        api.store_performance_result(model_name="m", hardware_type="cpu", test_name="nightly",
                                     started_at=dt.datetime(1, 1, 1))
    with pytest.raises(DataConversionError, match="completed_at"):
        api.store_integration_result(test_name="t", status="passed", run_name="r", completed_at="9999-01-01")
    with pytest.raises(DataConversionError, match="result 1: created_at"):
        api.store_many([{"model_name": "m", "hardware_type": "cpu"},
                        {"model_name": "m", "hardware_type": "cpu", "created_at": dt.datetime(1, 1, 1)}])
    api.store_performance_result(model_name="m", hardware_type="cpu", created_at=dt.datetime(2025, 3, 1))
    assert len(api.get_performance_metrics(since=dt.datetime(1970, 1, 1))) == 1
    api.close()


def test_the_orm_refuses_implausible_times_with_db003(db_path):
    with BenchmarkDB(db_path) as db:
        model, hardware = db.get_or_add_model("m"), db.get_or_add_hardware("cpu")
        for value in (dt.datetime(1, 1, 1), dt.datetime(9999, 12, 31), "0001-01-01",
                      dt.datetime(2100, 1, 1, tzinfo=dt.UTC)):
            with pytest.raises(DataConversionError, match="created_at .*2000-01-01") as caught:
                db.insert_performance_results(PerformanceResults(model_id=model, hardware_id=hardware,
                                                                 created_at=value))
            assert caught.value.code == "DB003"
        with pytest.raises(DataConversionError, match="started_at 1999"):
            db.insert_test_runs(TestRuns(test_name="t", started_at=dt.datetime(1999, 12, 31)))
        columns = {"model_id": [model] * 3, "hardware_id": [hardware] * 3,
                   "created_at": [dt.datetime(2025, 1, 1), None, dt.datetime(1, 1, 1)]}
        with pytest.raises(DataConversionError, match="row 2: created_at 0001-01-01"):
            db.insert_many([RecordColumns(PerformanceResults, columns)])
        assert db.count(PerformanceResults) == 0
        db.insert_performance_results(PerformanceResults(model_id=model, hardware_id=hardware,
                                                         created_at=dt.datetime(2000, 1, 1)))
        assert db.count(PerformanceResults) == 1


# -- 3. reading a database this process cannot write ----------------------------------------------------------


@pytest.mark.slow  # about 0.8 s: a second process holds the file
def test_readers_of_the_api_read_beside_another_process_reading_the_file(sample_db_path):
    """The API's readers opened the file for writing: beside another process's reader (benchmark_db_query.py,
    a DuckDB read-only open) they waited for its lock and failed with DB001. A read-only open is what a read
    needs, and what a file without write permission allows (root ignores chmod, so this is the check that
    runs as root; see the tests below for the file modes themselves)."""
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys; c = duckdb.connect(sys.argv[1], read_only=True); "
                               "print('open', flush=True); sys.stdin.read()", sample_db_path],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        api = BenchmarkDBAPI(sample_db_path, lock_timeout=0.3, idle_release=0)
        assert api.health()["rows"]["performance_results"] > 0
        assert len(api.get_performance_metrics(limit=5)) == 5
        assert len(api.get_model_list()) > 0
        with pytest.raises(DatabaseLockedError):  # a writer still needs the file to itself
            api.store_performance_result(model_name="m", hardware_type="cpu")
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    # the other process gone, the same object writes and reads again
    api.store_performance_result(model_name="m", hardware_type="cpu", throughput=1.0)
    assert len(api.get_performance_metrics(model_name="m")) == 1
    api.close()


def test_a_read_then_a_write_then_a_read_on_one_object_and_beside_a_second_object(db_path):
    """A reader's read-only connection gives way to a writer's on the same object; a second object of the
    same process on the same file (DuckDB opens a file once per process, in one mode) reads and writes too."""
    api = BenchmarkDBAPI(db_path, idle_release=5)
    other = BenchmarkDBAPI(db_path, idle_release=0.05, lock_timeout=5)
    assert api.health()["rows"]["performance_results"] == 0  # opens read-only, and stays open
    api.store_performance_result(model_name="m", hardware_type="cpu")
    assert len(api.get_performance_metrics()) == 1
    assert other.health()["rows"]["performance_results"] == 1  # beside api's read-write connection
    other.store_performance_result(model_name="m", hardware_type="cpu")
    assert len(api.get_performance_metrics()) == 2
    api.close()
    assert len(other.get_performance_metrics()) == 2
    other.close()


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions: chmod 444 does not bite")
def test_the_api_reads_a_chmod_444_file(sample_db_path):
    os.chmod(sample_db_path, 0o444)
    api = BenchmarkDBAPI(sample_db_path, idle_release=0)
    assert api.health()["rows"]["performance_results"] > 0
    assert len(api.get_performance_metrics(limit=3)) == 3
    assert len(api.query("SELECT 1 AS one")) == 1
    with pytest.raises(Exception, match="DB001"):
        api.store_performance_result(model_name="m", hardware_type="cpu")


def _in_mount(src: Path, mnt: Path, argv: list[str], **kwargs):
    command = " ".join(["mount --bind -o ro", str(src), str(mnt), "&&", "exec", *(f"'{a}'" for a in argv)])
    return ["unshare", "-rm", "sh", "-c", command], kwargs


READER = """
import json, sys
from benchmark_db_api import BenchmarkDBAPI
api = BenchmarkDBAPI(sys.argv[1], idle_release=0)
out = {"health": api.health()["rows"], "metrics": len(api.get_performance_metrics(limit=4)),
       "models": len(api.get_model_list()), "query": len(api.query("SELECT 1 AS one"))}
try:
    api.store_performance_result(model_name="m", hardware_type="cpu")
except Exception as exc:
    out["store"] = str(exc)
print(json.dumps(out))
"""


@pytest.mark.slow  # about 1 s: a subprocess in a user namespace
def test_the_python_api_reads_a_file_on_aread_only_mount(sample_db_path, tmp_path):
    """api.health() and api.get_performance_metrics() failed with "DB001: cannot open ... for writing" on a
    file the process could not write, where api.query() and benchmark_db_query.py read it."""
    src, mnt = read_only_mount(tmp_path, sample_db_path)
    command, _ = _in_mount(src, mnt, [sys.executable, "-c", READER, str(mnt / "db.duckdb")])
    proc = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.splitlines()[-1])
    assert out["health"]["performance_results"] > 0 and out["metrics"] == 4 and out["models"] > 0
    assert out["query"] == 1
    assert "DB001" in out["store"] and "for writing" in out["store"]  # a writer still needs write access


@pytest.mark.slow  # about 3 s: a real server in a user namespace
def test_the_server_serves_a_read_only_file_for_reading(sample_db_path, tmp_path):
    """`--serve` on a file it cannot write: it created nothing and failed to start (DB001 for writing);
    now the GET endpoints answer and a write is 503 saying why."""
    from tests.test_api_server import free_port

    src, mnt = read_only_mount(tmp_path, sample_db_path)
    port = free_port()
    command, _ = _in_mount(src, mnt, [sys.executable, str(REPO / "benchmark_db_api.py"), "--serve", "--port",
                                      str(port), "--db", str(mnt / "db.duckdb"), "--idle-release", "0.1"])
    env = {k: v for k, v in os.environ.items() if k != "BENCHMARK_DB_API_TOKEN"}
    proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    import http.client

    def request(method: str, path: str, body=None):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            conn.request(method, path, json.dumps(body) if body is not None else None,
                         {"Content-Type": "application/json"})
            response = conn.getresponse()
            return response.status, json.loads(response.read() or b"null")
        finally:
            conn.close()

    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                status, health = request("GET", "/health")
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"server did not start: {proc.stderr.read()[-2000:]}") from None
                time.sleep(0.2)
        assert status == 200 and health["rows"]["performance_results"] > 0
        status, page = request("GET", "/performance?limit=3")
        assert status == 200 and page["count"] == 3
        status, body = request("POST", "/query", {"sql": "SELECT count(*) AS n FROM models"})
        assert status == 200 and body["rows"][0][0] > 0
        status, body = request("POST", "/performance", {"model_name": "m", "hardware_type": "cpu"})
        assert status == 503 and body["error"]["details"] == {"db_code": "DB001"}
        assert "for writing" in body["error"]["message"]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

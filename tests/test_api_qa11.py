"""QA round 11 of the REST server and the Python API: a result that names a run by its id alone, and the help."""
from __future__ import annotations

from benchmark_db.connection import connect
from benchmark_db.validation import find_problems
from benchmark_db_api import BenchmarkDBAPI, build_parser


def orphans(path: str) -> list[dict]:
    with connect(path, read_only=True) as conn:
        return [p for p in find_problems(conn) if p["check"] == "orphan"]


def test_a_bare_run_id_makes_the_run_so_no_result_is_an_orphan(db_path):
    with BenchmarkDBAPI(db_path, idle_release=0.1) as api:
        api.store_performance_result("t5-small", "cpu", throughput=1.0, run_id=42)
        api.store_many([{"model_name": "t5-small", "hardware_type": "cpu", "run_id": 43, "batch_size": b}
                        for b in (1, 2)])
        api.store_compatibility_result("cpu", model_name="t5-small", is_compatible=True, run_id=44)
        api.store_integration_result("test_x", "passed", run_id=45)
        api.store_performance_result("t5-small", "cpu", throughput=2.0, run_id=42)  # the run is kept, not doubled
    with connect(db_path, read_only=True) as conn:
        runs = conn.execute("SELECT run_id, test_name, test_type FROM test_runs WHERE run_id < 100 "
                            "ORDER BY run_id").fetchall()
    assert runs == [(42, "benchmark_db_api", "performance"), (43, "benchmark_db_api", "performance"),
                    (44, "benchmark_db_api", "compatibility"), (45, "benchmark_db_api", "integration")]
    assert orphans(db_path) == []


def test_a_bare_run_id_keeps_an_existing_run_as_it_is(db_path):
    import datetime as dt

    from benchmark_db_models import BenchmarkDB, TestRuns

    with BenchmarkDB(db_path=db_path) as db:
        run_id = db.insert_test_runs(TestRuns(test_name="nightly", test_type="custom",
                                              started_at=dt.datetime(2025, 1, 2), git_commit="abc"))
    with BenchmarkDBAPI(db_path, idle_release=0.1) as api:
        api.store_performance_result("t5-small", "cpu", throughput=1.0, run_id=run_id)
    with connect(db_path, read_only=True) as conn:
        assert conn.execute("SELECT test_name, test_type, git_commit FROM test_runs").fetchall() == [
            ("nightly", "custom", "abc")]
    assert orphans(db_path) == []


def test_rest_post_with_a_bare_run_id_stores_its_run(db_path):
    from fastapi.testclient import TestClient

    from benchmark_db_server import ServerSettings, create_app

    with TestClient(create_app(ServerSettings(db_path=db_path, idle_release=0.1))) as client:
        response = client.post("/performance", json={"model_name": "bert", "hardware_type": "cpu",
                                                      "throughput": 1.0, "run_id": 12345})
        assert response.status_code == 201, response.text
        item = client.get("/performance", params={"run_id": 12345}).json()["items"]
    assert [i["test_name"] for i in item] == ["benchmark_db_api"]
    assert orphans(db_path) == []


def test_help_names_the_token_variable_plainly():
    epilog = build_parser().epilog
    assert "Bearer $BENCHMARK_DB_API_TOKEN" in epilog
    assert "' + '" not in epilog



def test_an_unknown_query_parameter_is_422_not_an_unfiltered_list(db_path):
    """`GET /performance?model=bert` (the filter is model_name) returned every row, as if all had matched."""
    from fastapi.testclient import TestClient

    from benchmark_db_server import ServerSettings, create_app

    with TestClient(create_app(ServerSettings(db_path=db_path, idle_release=0.1))) as client:
        wrong = client.get("/performance", params={"model": "bert", "limit": 5})
        assert wrong.status_code == 422
        error = wrong.json()["error"]
        assert error["code"] == "validation_error" and error["message"].startswith(
            "invalid request: model: unknown query parameter; this endpoint takes ")
        assert "model_name" in error["message"]
        assert client.get("/performance", params={"model_name": "bert", "limit": 5}).status_code == 200
        assert client.get("/health").status_code == 200


def test_a_query_without_the_values_of_its_placeholders_says_how_to_pass_them(db_path):
    """{"sql": "SELECT ?", "params": []} was told to check its table and column names."""
    import pytest

    from benchmark_db.readonly_sql import QueryRefused

    api = BenchmarkDBAPI(db_path)
    try:
        with pytest.raises(QueryRefused) as err:
            api.query("SELECT ?", [])
        assert err.value.reason == "bad_params" and err.value.hint.startswith("pass one value in params per ?")
    finally:
        api.close()


def test_a_body_sent_as_another_media_type_is_415_on_every_post(db_path):
    """`curl -d` sends form encoding: POST /performance said "body: Input should be a valid dictionary" while
    /performance/batch stored the same body."""
    from fastapi.testclient import TestClient

    from benchmark_db_server import ServerSettings, create_app

    one = '{"model_name": "bert", "hardware_type": "cpu", "throughput": 10}'
    with TestClient(create_app(ServerSettings(db_path=db_path, idle_release=0.1))) as client:
        for path, body in (("/performance", one), ("/performance/batch", '{"results": [' + one + "]}"),
                           ("/query", '{"sql": "SELECT 1"}')):
            sent = client.post(path, content=body, headers={"Content-Type": "application/x-www-form-urlencoded"})
            assert sent.status_code == 415, (path, sent.text)
            assert sent.json()["error"]["message"].endswith("send JSON with the header Content-Type: application/json")
            assert client.post(path, content=body, headers={"Content-Type": "application/json"}).status_code in (200, 201)
            assert client.post(path, content=body).status_code == 415  # no header: FastAPI reads no JSON either

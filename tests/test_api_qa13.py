"""QA round 13 of the REST server, the Python API and the ORM."""
from __future__ import annotations

import pytest

from benchmark_db.errors import DataConversionError
from benchmark_db_models import (
    HardwareCompatibility,
    IntegrationTestResults,
    Models,
    PerformanceResults,
    RecordColumns,
    TestRuns,
    WebPlatformResults,
)


@pytest.fixture
def client(db_path):
    from fastapi.testclient import TestClient

    from benchmark_db_server import ServerSettings, create_app

    with TestClient(create_app(ServerSettings(db_path=db_path, idle_release=0.1))) as test_client:
        yield test_client


def test_batch_with_one_result_twice_says_one_was_stored_and_which_was_replaced(client):
    """A batch with two results of one named run and the same configuration (the same natural key, so the
    second replaces the first) answered {"stored": 2} while the database kept one row."""
    result = {"model_name": "bert", "hardware_type": "cpu", "test_name": "nightly",
              "started_at": "2026-01-01T00:00:00Z", "throughput": 1.0}
    response = client.post("/performance/batch", json={"results": [
        result, dict(result, throughput=2.0), dict(result, batch_size=4), dict(result, throughput=3.0)]})
    assert response.status_code == 201, response.text
    body = response.json()
    ids = body["result_ids"]
    assert len(ids) == 4 and ids[0] == ids[1] == ids[3] != ids[2]
    assert body["replaced"] == [0, 1]  # the last result of an id is the one kept, as resends would leave it
    items = client.get("/performance", params={"model_name": "bert"}).json()["items"]
    assert body["stored"] == len(items) == 2
    assert {(item["batch_size"], item["throughput"]) for item in items} == {(None, 3.0), (4, 1.0)}  # no batch size given: NULL, not 1
    # a batch without duplicates: every result stored, nothing replaced
    plain = client.post("/performance/batch", json={"results": [{"model_name": "t5", "hardware_type": "cpu"}] * 2})
    assert plain.status_code == 201 and plain.json()["stored"] == 2 and plain.json()["replaced"] == []


def _filters() -> list[tuple[str, str]]:
    """(path, query parameter) of every GET endpoint that takes query parameters."""
    from fastapi.routing import APIRoute

    from benchmark_db_server import ServerSettings, create_app

    app = create_app(ServerSettings(db_path="unused.duckdb"))
    return [(route.path, param.alias) for route in app.routes if isinstance(route, APIRoute)
            and "GET" in route.methods for param in route.dependant.query_params]


FILTERS = _filters()


def test_filters_were_found():
    assert ("/performance", "model_name") in FILTERS and ("/integration", "status") in FILTERS
    assert {path for path, _ in FILTERS} == {"/performance", "/compatibility", "/integration", "/hardware", "/models"}


@pytest.mark.slow  # over 0.35 s here: outside make test-fast
@pytest.mark.parametrize(("path", "name"), FILTERS)
def test_an_empty_query_parameter_is_422_not_every_row(client, path, name):
    """`GET /performance?model_name=` answered every row, as if no filter had been given."""
    client.post("/performance", json={"model_name": "bert", "hardware_type": "cpu"})
    for value in ("", " "):
        response = client.get(path, params={name: value})
        assert response.status_code == 422, (path, name, response.text)
        error = response.json()["error"]
        assert error["code"] == "validation_error"
        assert error["details"][0]["field"] == name and error["details"][0]["location"] == "query"
        assert "empty" in error["message"] and "leave the parameter out" in error["message"]


def test_a_filter_with_a_value_still_filters(client):
    client.post("/performance", json={"model_name": "bert", "hardware_type": "cpu"})
    assert client.get("/performance", params={"model_name": "bert"}).json()["count"] == 1
    assert client.get("/performance", params={"model_name": "t5"}).json()["count"] == 0


def _counts(db) -> dict[str, int]:
    tables = ("models", "hardware_platforms", "test_runs", "performance_results", "hardware_compatibility",
              "integration_test_results", "web_platform_results")
    return {t: db.conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}


@pytest.mark.parametrize("column", ["model_id", "hardware_id"])
@pytest.mark.parametrize("kind", [PerformanceResults, HardwareCompatibility, IntegrationTestResults,
                                  WebPlatformResults, RecordColumns])
def test_orm_refuses_a_reference_to_no_row_as_db003_and_writes_nothing(fresh_db, column, kind):
    """PerformanceResults(model_id=12345, ...) was stored although no model 12345 exists: a row that every
    view and report joining its model or hardware then left out. (A bare run_id stays allowed: tests/test_orm.py
    relies on it, and the Python API adds a minimal run for one.)"""
    db = fresh_db
    ids = {"model_id": db.get_or_add_model("bert"), "hardware_id": db.get_or_add_hardware("cpu"),
           "run_id": db.insert_test_runs(TestRuns(test_name="nightly"))}
    ids[column] = 424242
    if kind is RecordColumns:
        record = RecordColumns(PerformanceResults, {**{k: [v, v] for k, v in ids.items()}, "batch_size": [1, 2]})
    elif kind is IntegrationTestResults:
        record = kind(test_name="t", status="passed", **ids)
    else:
        record = kind(**ids)
    before = _counts(db)
    # a new model in the same call is rolled back with the rest
    with pytest.raises(DataConversionError, match=f"{column} 424242 names no row") as refused:
        db.insert_many([Models(model_name="t5"), record])
    assert refused.value.code == "DB003"
    assert _counts(db) == before


def test_orm_takes_references_to_rows_of_the_same_call(fresh_db):
    db = fresh_db
    run = TestRuns(test_name="nightly", run_id=7)
    model = Models(model_name="t5")
    model.model_id = model.natural_id()
    result = PerformanceResults(model_id=model.model_id, hardware_id=db.get_or_add_hardware("cpu"), run_id=7)
    db.insert_many([run, model, result])
    assert _counts(db)["performance_results"] == 1
    # the model and the run are stored now: a later call may point at them alone
    db.insert_performance_results(PerformanceResults(model_id=model.model_id, hardware_id=result.hardware_id,
                                                     run_id=7, batch_size=2))
    assert _counts(db)["performance_results"] == 2


def test_a_model_of_a_rolled_back_transaction_is_not_taken_as_stored(fresh_db):
    """The ids the check has seen stored are remembered; one seen only inside a transaction that rolled back
    must be looked up again."""
    db = fresh_db
    hardware = db.get_or_add_hardware("cpu")
    with pytest.raises(RuntimeError), db.transaction():
        model = db.get_or_add_model("t5")
        db.insert_performance_results(PerformanceResults(model_id=model, hardware_id=hardware))
        raise RuntimeError("abort")
    with pytest.raises(DataConversionError, match=f"model_id {model} names no row of models"):
        db.insert_performance_results(PerformanceResults(model_id=model, hardware_id=hardware))
    assert _counts(db)["performance_results"] == 0

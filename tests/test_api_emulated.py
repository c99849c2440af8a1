"""`is_emulated` (schema v5) as a field of the Python API and the REST server, handled as `is_simulated` is:
stored, refused when not a boolean, filtered on, and set by metrics {"is_emulated": true} on every path."""
from __future__ import annotations

import pytest

from benchmark_db.connection import connect
from benchmark_db.errors import DataConversionError
from benchmark_db_api import BenchmarkDBAPI
from benchmark_db_models import RecordColumns
from tests.test_api import assert_batch_matches_single_results


@pytest.fixture
def api(db_path):
    with BenchmarkDBAPI(db_path, idle_release=0.1) as handle:
        yield handle


@pytest.fixture
def client(db_path):
    from fastapi.testclient import TestClient

    from benchmark_db_server import ServerSettings, create_app

    with TestClient(create_app(ServerSettings(db_path=db_path, idle_release=0.1))) as test_client:
        yield test_client


def stored_flags(path: str) -> dict:
    with connect(path, read_only=True) as conn:
        return dict(conn.execute("SELECT model_name, is_emulated FROM performance_results").fetchall())


def field_errors(response) -> list[str]:
    assert response.status_code == 422, response.text
    return [d["field"] for d in response.json()["error"]["details"]]


# -- Python API -------------------------------------------------------------------------------------------

def test_store_performance_result_stores_and_reads_back_is_emulated(api, db_path):
    emulated = api.store_performance_result(model_name="vit", hardware_type="webgpu", device_name="SwiftShader",
                                            throughput=5.0, is_emulated=True)
    said = api.store_performance_result(model_name="bert", hardware_type="webgpu", throughput=6.0,
                                        metrics={"is_emulated": True, "adapter": "swiftshader"})
    real = api.store_performance_result(model_name="t5", hardware_type="webgpu", throughput=7.0, is_emulated=False)
    default = api.store_performance_result(model_name="gpt2", hardware_type="cpu", throughput=8.0)
    frame = api.get_performance_metrics()
    flags = {int(r.result_id): bool(r.is_emulated) for r in frame.itertuples()}
    assert flags == {emulated: True, said: True, real: False, default: False}
    assert set(api.get_performance_metrics(is_emulated=True).result_id) == {emulated, said}
    assert set(api.get_performance_metrics(is_emulated=False).result_id) == {real, default}
    assert set(api.get_performance_metrics(hardware_type="webgpu", is_emulated="false").result_id) == {real}
    api.close()
    assert stored_flags(db_path) == {"vit": True, "bert": True, "t5": False, "gpt2": False}


@pytest.mark.parametrize("bad", ["maybe", 2, 1.5, [True]])
def test_a_bad_is_emulated_is_refused_as_a_bad_is_simulated_is(api, bad):
    good = {"model_name": "vit", "hardware_type": "webgpu", "throughput": 1.0}
    with pytest.raises(DataConversionError) as simulated:
        api.store_performance_result(**good, is_simulated=bad)
    with pytest.raises(DataConversionError) as emulated:
        api.store_performance_result(**good, is_emulated=bad)
    assert emulated.value.message == simulated.value.message.replace("is_simulated", "is_emulated")
    assert emulated.value.hint == simulated.value.hint.replace("is_simulated", "is_emulated")
    for results in ([good, {**good, "is_emulated": bad}],  # the column path
                    [good, {**good, "is_emulated": bad}, {**good, "run_id": 9}]):  # beside the general path
        with pytest.raises(DataConversionError) as batch:
            api.build_records(results)
        assert batch.value.message == f"result 1: {emulated.value.message}"
    with pytest.raises(DataConversionError, match="is_emulated"):
        api.get_performance_metrics(is_emulated=bad)
    assert api.store_many([good]) and len(api.get_performance_metrics()) == 1  # nothing of the bad ones stored


EMULATED_VARIANTS = [  # column-path shapes (no run, no samples) unless noted
    {"model_name": "vit", "hardware_type": "webgpu", "throughput": 1.0, "is_emulated": True},
    {"model_name": "vit", "hardware_type": "webgpu", "throughput": 1.0, "is_emulated": False},
    {"model_name": "vit", "hardware_type": "webgpu", "throughput": 1.0, "is_emulated": None},
    {"model_name": "vit", "hardware_type": "webgpu", "is_emulated": 1, "is_simulated": 0},
    {"model_name": "vit", "hardware_type": "webgpu", "is_emulated": "yes", "is_simulated": True},
    {"model_name": "bert", "hardware_type": "webgpu", "metrics": {"is_emulated": True}},  # the metrics alone
    {"model_name": "bert", "hardware_type": "webgpu", "metrics": {"is_emulated": "true"}},  # not True: not said
    {"model_name": "bert", "hardware_type": "webgpu", "metrics": {"is_emulated": False}, "is_emulated": True},
    {"model_name": "bert", "hardware_type": "webgpu", "metrics": {"is_emulated": True}, "is_emulated": False},
    {"model_name": "bert", "hardware_type": "webgpu", "metrics": {"cv": 0.1}},
    {"model_name": "t5", "hardware_type": "cpu"},
]
GENERAL_VARIANTS = [  # the one-at-a-time path of a batch
    {"model_name": "vit", "hardware_type": "webgpu", "latency_samples": [1.0, 2.0], "is_emulated": True},
    {"model_name": "vit", "hardware_type": "webgpu", "run_id": 7, "metrics": {"is_emulated": True}},
]


@pytest.mark.parametrize("results", [EMULATED_VARIANTS, EMULATED_VARIANTS[5:6], EMULATED_VARIANTS[3:5],
                                     EMULATED_VARIANTS + GENERAL_VARIANTS])
def test_batch_columns_agree_with_single_results_on_is_emulated(api, results):
    records, _ = api.build_records(results)
    batch = records[-1]
    assert type(batch) is RecordColumns and len(batch) == len(results)
    assert_batch_matches_single_results(api, batch, results)
    expected = [True, False, False, True, True, True, False, True, True, False, False]
    if results is EMULATED_VARIANTS or len(results) > len(EMULATED_VARIANTS):
        assert batch.columns["is_emulated"][:len(expected)] == expected


def test_store_many_stores_is_emulated_on_both_paths(api, db_path):
    results = [{"model_name": "a", "hardware_type": "webgpu", "is_emulated": True},
               {"model_name": "b", "hardware_type": "webgpu", "metrics": {"is_emulated": True}},
               {"model_name": "c", "hardware_type": "webgpu", "is_emulated": False},
               {"model_name": "d", "hardware_type": "webgpu", "is_emulated": True, "run_id": 3},
               {"model_name": "e", "hardware_type": "webgpu", "latency_samples": [1.0]}]
    api.store_many(results[:3])  # all plain: the column path
    api.store_many(results[3:])  # the general path
    api.close()
    assert stored_flags(db_path) == {"a": True, "b": True, "c": False, "d": True, "e": False}


# -- REST server --------------------------------------------------------------------------------------------

def test_post_performance_with_is_emulated_and_filter(client):
    body = {"model_name": "vit", "hardware_type": "webgpu", "device_name": "SwiftShader", "throughput": 3.0}
    emulated = client.post("/performance", json={**body, "is_emulated": True})
    assert emulated.status_code == 201, emulated.text
    said = client.post("/performance", json={**body, "model_name": "bert", "metrics": {"is_emulated": True}})
    real = client.post("/performance", json={**body, "model_name": "t5", "is_emulated": False})
    plain = client.post("/performance", json={**body, "model_name": "gpt2"})
    assert {r.status_code for r in (said, real, plain)} == {201}
    items = client.get("/performance").json()["items"]
    assert {i["model_name"]: i["is_emulated"] for i in items} == {"vit": True, "bert": True, "t5": False,
                                                                  "gpt2": False}
    only = client.get("/performance", params={"is_emulated": "true"}).json()
    assert only["count"] == 2 and {i["result_id"] for i in only["items"]} == {emulated.json()["id"],
                                                                             said.json()["id"]}
    others = client.get("/performance", params={"is_emulated": False, "model_name": "t5"}).json()
    assert [i["result_id"] for i in others["items"]] == [real.json()["id"]]
    assert "is_emulated" in field_errors(client.get("/performance", params={"is_emulated": "maybe"}))[0]


@pytest.mark.slow  # over 0.35 s here: outside make test-fast
def test_post_performance_batch_with_is_emulated(client, db_path):
    results = [{"model_name": f"m{i}", "hardware_type": "webgpu", "throughput": float(i)} for i in range(4)]
    results[0]["is_emulated"] = True
    results[1]["metrics"] = {"is_emulated": True}
    results[2]["is_emulated"] = False
    response = client.post("/performance/batch", json={"results": results})
    assert response.status_code == 201, response.text
    assert response.json()["stored"] == 4
    mixed = [{"model_name": "n0", "hardware_type": "webgpu", "is_emulated": True, "latency_samples": [1.0]},
             {"model_name": "n1", "hardware_type": "webgpu", "is_emulated": True}]
    assert client.post("/performance/batch", json={"results": mixed}).status_code == 201
    page = client.get("/performance", params={"is_emulated": True, "limit": 100}).json()
    assert sorted(i["model_name"] for i in page["items"]) == ["m0", "m1", "n0", "n1"]
    assert client.get("/performance", params={"is_emulated": False}).json()["count"] == 2


@pytest.mark.parametrize("bad", ["maybe", 2, [True], {"x": 1}])
def test_a_bad_is_emulated_is_a_422_naming_the_field(client, bad):
    good = {"model_name": "vit", "hardware_type": "webgpu"}
    assert client.post("/performance", json={**good, "is_emulated": True}).status_code == 201  # a known field
    assert client.post("/performance/batch", json={"results": [{**good, "is_emulated": "true"}]}).status_code == 201
    single = client.post("/performance", json={**good, "is_emulated": bad})
    assert single.json()["error"]["code"] == "validation_error"
    assert "is_emulated" in field_errors(single)
    batch = client.post("/performance/batch", json={"results": [good, {**good, "is_emulated": bad}]})
    assert "results.1.is_emulated" in field_errors(batch)
    assert client.get("/performance", params={"is_emulated": True}).json()["count"] == 2  # nothing else stored


def test_openapi_documents_is_emulated(client):
    schema = client.get("/openapi.json").json()
    schemas = schema["components"]["schemas"]
    field = schemas["PerformanceIn"]["properties"]["is_emulated"]
    assert field["type"] == "boolean" and field["default"] is False and "emulated" in field["description"]
    assert "is_emulated" not in schemas["PerformanceIn"].get("required", [])
    assert "is_emulated" in schemas["PerformanceOut"]["properties"]
    params = {p["name"]: p for p in schema["paths"]["/performance"]["get"]["parameters"]}
    assert "is_emulated" in params and params["is_emulated"]["in"] == "query"
    assert params["is_emulated"]["schema"]["anyOf"] == params["is_simulated"]["schema"]["anyOf"]

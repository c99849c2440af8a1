"""Session 17's QA of the REST server in real use: whole numbers beyond 64 bits in JSON fields, what the OpenAPI
document says each endpoint answers, a UTF-8 token, HEAD /health, and the database's folders in error messages."""
from __future__ import annotations

import pytest


@pytest.fixture
def make_client(db_path):
    from fastapi.testclient import TestClient

    from benchmark_db_server import ServerSettings, create_app

    clients = []

    def make(**settings):
        client = TestClient(create_app(ServerSettings(db_path=db_path, idle_release=0.1, **settings)))
        clients.append(client.__enter__())
        return clients[-1]

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.mark.slow  # a server per test: over 0.35 s
@pytest.mark.parametrize("body", [
    {"model_name": "m", "hardware_type": "cpu", "metrics": {"n": 10**20}},
    {"model_name": "m", "hardware_type": "cpu", "environment": {"list": [1, -(2**63) - 1]}},
])
def test_a_whole_number_beyond_64_bits_in_a_json_field_is_422_not_500(make_client, body):
    client = make_client()
    answer = client.post("/performance", json=body)
    assert answer.status_code == 422, answer.text
    assert "64 bits" in answer.json()["error"]["message"]
    # the connection stays usable: the next write is stored
    assert client.post("/performance", json={"model_name": "m", "hardware_type": "cpu",
                                             "metrics": {"n": 2**64 - 1}}).status_code == 201


def test_openapi_lists_415_for_writes_and_no_401_for_reads_or_query(make_client):
    paths = make_client().get("/openapi.json").json()["paths"]
    for path in ("/performance", "/performance/batch", "/compatibility", "/integration", "/query"):
        assert "415" in paths[path]["post"]["responses"], path
    assert "401" in paths["/performance"]["post"]["responses"]
    assert "401" not in paths["/query"]["post"]["responses"]
    assert "401" not in paths["/performance"]["get"]["responses"]


@pytest.mark.slow  # a server per test
def test_a_utf8_token_is_accepted_as_curl_sends_it(make_client):
    client = make_client(token="sécret")
    body = {"model_name": "m", "hardware_type": "cpu"}
    # curl and httpx send the header's UTF-8 bytes
    sent = client.post("/performance", json=body, headers={"Authorization": "Bearer sécret".encode()})
    assert sent.status_code == 201, sent.text
    assert client.post("/performance", json=body, headers={"Authorization": "Bearer secret"}).status_code == 401


def test_head_health_answers_as_get_does(make_client):
    client = make_client()
    assert client.head("/health").status_code == 200


def test_an_unavailable_database_is_named_by_its_file_name_only(tmp_path):
    from fastapi.testclient import TestClient

    from benchmark_db_server import ServerSettings, create_app

    missing = tmp_path / "secret_folder" / "missing.duckdb"
    settings = ServerSettings(db_path=str(missing), idle_release=0.1)
    with TestClient(create_app(settings)) as client:
        answer = client.get("/performance")
    assert answer.status_code == 503
    message = answer.json()["error"]["message"]
    assert "missing.duckdb" in message and "secret_folder" not in message

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


@pytest.mark.slow  # a server per test
def test_query_gives_intervals_in_seconds_and_bignums_as_integers(make_client):
    answer = make_client().post("/query", json={"sql": "SELECT INTERVAL 90 MINUTES AS a, INTERVAL 1 MONTH AS b, "
                                                       "'-123456789012345678901234567890'::BIGNUM AS c"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["rows"] == [[5400.0, "P1M0DT0S", -123456789012345678901234567890]]


def test_the_python_api_refuses_what_the_server_refuses(db_path):
    from benchmark_db.errors import DataConversionError
    from benchmark_db_api import BenchmarkDBAPI

    api = BenchmarkDBAPI(db_path)
    with pytest.raises(DataConversionError, match="64"):
        api.store_performance_result("m", "cpu", metrics={"n": 10**20})
    with pytest.raises(DataConversionError, match="too large to summarise"):
        api.store_performance_result("m", "cpu", latency_samples=[1e308, 1e308])


@pytest.mark.slow  # a server per test
def test_samples_whose_mean_overflows_are_422_not_500(make_client):
    answer = make_client().post("/performance", json={"model_name": "m", "hardware_type": "cpu",
                                                      "latency_samples": [1e308, 1e308]})
    assert answer.status_code == 422, answer.text


def test_a_result_naming_an_existing_run_does_not_rewrite_what_the_run_records(db_path, caplog):
    import duckdb

    from benchmark_db_api import BenchmarkDBAPI

    api = BenchmarkDBAPI(db_path)
    api.store_performance_result("m", "cpu", run_id=42, test_name="nightly", git_commit="abc123",
                                 started_at="2026-11-01T00:00:00Z")
    with caplog.at_level("WARNING", logger="benchmark_db"):
        api.store_performance_result("m", "cpu", batch_size=2, run_id=42, git_commit="deadbeef",
                                     git_branch="feature-x", started_at="2030-01-01T00:00:00Z")
    api.close()
    assert "run 42 keeps its stored" in caplog.text and "git_commit" in caplog.text
    conn = duckdb.connect(db_path, read_only=True)
    try:
        row = conn.execute("SELECT test_name, git_commit, git_branch, started_at FROM test_runs "
                           "WHERE run_id = 42").fetchone()
    finally:
        conn.close()
    # the commit and start stay; the branch, which the run did not record, is filled in
    assert row[:3] == ("nightly", "abc123", "feature-x") and row[3].year == 2026

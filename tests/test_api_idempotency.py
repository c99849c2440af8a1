"""`Idempotency-Key` on the REST server's writes: a client that resends a write after a dropped connection (the
answer lost, the rows maybe stored) sends the same key and gets the first answer again, with nothing stored
twice, even across a restart of the server and while the first request is still being written."""
from __future__ import annotations

import threading

import pytest

from benchmark_db.connection import open_db

RESULT = {"model_name": "bert-base-uncased", "hardware_type": "cpu", "device_name": "x86", "throughput": 120.5,
          "latency_avg": 8.25}  # names no run: each store is a new row
KEY = {"Idempotency-Key": "7c1c6b0e-retry-1"}


def make_client(db_path, **settings):
    from fastapi.testclient import TestClient

    from benchmark_db_server import ServerSettings, create_app

    return TestClient(create_app(ServerSettings(db_path=db_path, idle_release=0, **settings)))


@pytest.fixture
def client(db_path):
    with make_client(db_path) as test_client:
        yield test_client


def count(db_path: str, table: str = "performance_results") -> int:
    with open_db(db_path, read_only=True) as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"code", "message", "details"} and error["code"] == code
    return error


def test_a_resend_with_the_same_key_gets_the_first_answer_and_stores_nothing(client, db_path):
    first = client.post("/performance", json=RESULT, headers=KEY)
    again = client.post("/performance", json=RESULT, headers=KEY)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert "idempotent-replayed" not in first.headers and again.headers["idempotent-replayed"] == "true"
    assert count(db_path) == 1


@pytest.mark.parametrize("path, body", [
    ("/performance/batch", {"results": [RESULT, {**RESULT, "batch_size": 4}]}),
    ("/compatibility", {"hardware_type": "cpu", "model_name": "bert-base-uncased", "is_compatible": True}),
    ("/integration", {"test_name": "test_bert", "status": "passed"}),
])
def test_every_write_endpoint_replays(client, db_path, path, body):
    table = {"/performance/batch": "performance_results", "/compatibility": "hardware_compatibility",
             "/integration": "integration_test_results"}[path]
    first = client.post(path, json=body, headers=KEY)
    again = client.post(path, json=body, headers=KEY)
    assert first.status_code == again.status_code == 201 and again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert count(db_path, table) == len(body.get("results", [body]))


def test_the_same_key_with_another_body_or_endpoint_is_refused(client, db_path):
    assert client.post("/performance", json=RESULT, headers=KEY).status_code == 201
    error = assert_error(client.post("/performance", json={**RESULT, "throughput": 1.0}, headers=KEY), 422,
                         "idempotency_key_reused")
    assert "Idempotency-Key" in error["message"] and error["details"]["endpoint"] == "POST /performance"
    assert_error(client.post("/performance/batch", json={"results": [RESULT]}, headers=KEY), 422,
                 "idempotency_key_reused")
    assert count(db_path) == 1


def test_without_a_key_every_post_stores_as_before(client, db_path):
    first, second = (client.post("/performance", json=RESULT) for _ in range(2))
    assert first.status_code == second.status_code == 201 and first.json()["id"] != second.json()["id"]
    assert "idempotent-replayed" not in second.headers
    assert count(db_path) == 2 and count(db_path, "api_idempotency_keys") == 0


@pytest.mark.parametrize("key", ["", "x" * 256, "caf\u00e9", "tab\there"])
def test_a_malformed_key_is_refused_naming_the_header(client, db_path, key):
    response = client.post("/performance", json=RESULT, headers={"Idempotency-Key": key.encode("latin-1")})
    assert_error(response, 422, "validation_error")
    assert response.json()["error"]["details"][0]["field"] == "Idempotency-Key"
    assert count(db_path) == 0


def test_the_longest_key_is_taken(client, db_path):
    headers = {"Idempotency-Key": "~" * 255}
    assert client.post("/performance", json=RESULT, headers=headers).status_code == 201
    assert client.post("/performance", json=RESULT, headers=headers).headers["idempotent-replayed"] == "true"
    assert count(db_path) == 1


@pytest.mark.slow  # over 0.35 s here: outside make test-fast
def test_keys_survive_a_restart_of_the_server(db_path):
    with make_client(db_path) as client:
        first = client.post("/performance", json=RESULT, headers=KEY)
    with make_client(db_path) as client:  # a new app, a new writer and a new session run on the same file
        again = client.post("/performance", json=RESULT, headers=KEY)
    assert again.status_code == 201 and again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true" and count(db_path) == 1


def test_an_expired_key_is_a_new_request_and_is_deleted(db_path):
    with make_client(db_path, idempotency_ttl_s=0) as client:  # every key has expired by the next request
        first = client.post("/performance", json=RESULT, headers=KEY)
        again = client.post("/performance", json=RESULT, headers=KEY)
    assert again.status_code == 201 and "idempotent-replayed" not in again.headers
    assert again.json()["id"] != first.json()["id"] and count(db_path) == 2
    assert count(db_path, "api_idempotency_keys") == 1  # the expired one was deleted by the second write


@pytest.mark.slow  # over 0.35 s here: outside make test-fast
def test_the_key_commits_with_the_rows_or_not_at_all(client, db_path):
    with open_db(db_path) as conn:  # the key cannot be written: the request must store nothing either
        conn.execute("ALTER TABLE api_idempotency_keys RENAME TO moved_away")
    client.app.state.api.close()
    response = client.post("/performance", json=RESULT, headers=KEY)
    assert response.status_code >= 500 and set(response.json()["error"]) == {"code", "message", "details"}
    assert count(db_path) == 0


def test_a_refused_write_keeps_no_key(client, db_path):
    """Only a stored answer is remembered: the client can correct its request and send it with the same key."""
    assert_error(client.post("/performance", json={**RESULT, "batch_size": 0}, headers=KEY), 422, "validation_error")
    corrected = {**RESULT, "batch_size": 2}
    assert client.post("/performance", json=corrected, headers=KEY).status_code == 201
    assert client.post("/performance", json=corrected, headers=KEY).headers["idempotent-replayed"] == "true"
    assert count(db_path) == 1


@pytest.mark.slow
def test_concurrent_resends_to_a_real_server_store_once(db_path):
    from tests.test_api_server import Server

    server = Server(db_path, "--idle-release", "0.2")
    try:
        answers = []
        start = threading.Barrier(12)

        def send():
            start.wait()  # all at once: most arrive while the first is queued or being written
            answers.append(server.request("POST", "/performance", RESULT, headers=KEY))

        threads = [threading.Thread(target=send) for _ in range(12)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        server.stop()
    assert len(answers) == 12 and all(answer == answers[0] for answer in answers) and answers[0][0] == 201
    assert count(db_path) == 1 and count(db_path, "api_idempotency_keys") == 1


@pytest.mark.postgres
def test_keys_work_on_a_team_lake(lake_target):
    with make_client(lake_target) as client:
        first = client.post("/performance", json=RESULT, headers=KEY)
        again = client.post("/performance", json=RESULT, headers=KEY)
        other = client.post("/performance", json={**RESULT, "throughput": 1.0}, headers=KEY)
    assert first.status_code == again.status_code == 201 and again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert_error(other, 422, "idempotency_key_reused")
    from benchmark_db.connection import connect

    lake = connect(lake_target, read_only=True)
    try:
        assert lake.execute("SELECT count(*) FROM performance_results").fetchone()[0] == 1
        assert lake.execute("SELECT count(*) FROM api_idempotency_keys").fetchone()[0] == 1
    finally:
        lake.close()

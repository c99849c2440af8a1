"""Session 15 QA of the read-only query checks: a PIVOT read as "2 statements", and a lone surrogate in a
parameter was a RuntimeError (a 500 from POST /query) instead of a refusal."""
from __future__ import annotations

import pytest

from benchmark_db import readonly_sql
from benchmark_db.errors import QueryError


def test_pivot_without_an_in_list_is_refused_as_pivot_not_as_two_statements():
    for sql in ("PIVOT performance_results ON precision USING count(*) GROUP BY hardware_type",
                "PIVOT t ON p IN ('a') USING count(*)", "unpivot t on a, b into name k value v"):
        with pytest.raises(QueryError, match="only read-only SELECT queries are allowed, not (UN)?PIVOT"):
            readonly_sql.check_readonly_sql(sql)
    with pytest.raises(QueryError, match="holds 2 statements"):
        readonly_sql.check_readonly_sql("SELECT 1; SELECT 2")


def test_a_parameter_that_is_not_unicode_text_is_refused():
    with pytest.raises(QueryError, match="not valid Unicode text"):
        readonly_sql.check_params(["\ud800"])
    assert readonly_sql.check_params(["ü", "日本", "ok"]) == ["ü", "日本", "ok"]


def test_the_rest_server_answers_a_surrogate_parameter_with_a_4xx(db_path):
    from fastapi.testclient import TestClient

    from benchmark_db_server import ServerSettings, create_app

    with TestClient(create_app(ServerSettings(db_path=db_path, idle_release=0.1))) as client:
        response = client.post("/query", content='{"sql": "SELECT ? AS a", "params": ["\\ud800"]}',
                               headers={"Content-Type": "application/json"})
        assert 400 <= response.status_code < 500, response.text
        assert "Unicode" in response.json()["error"]["message"]

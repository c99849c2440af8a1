"""QA round 12 of the REST server and the Python API."""
from __future__ import annotations

import pytest

from benchmark_db.errors import DataConversionError
from benchmark_db_api import BenchmarkDBAPI


@pytest.mark.parametrize("field", ["memory_peak", "throughput", "latency_avg"])
def test_an_integer_beyond_a_double_is_db003_not_overflow_error(db_path, field):
    """store_performance_result(memory_peak=10**400) raised a bare OverflowError."""
    with BenchmarkDBAPI(db_path, idle_release=0.1) as api:
        with pytest.raises(DataConversionError, match=f"{field} must be a finite number"):
            api.store_performance_result("bert", "cpu", **{field: 10**400})
        with pytest.raises(DataConversionError, match="must be a finite number"):
            api.store_compatibility_result("cpu", model_name="bert", compatibility_score=10**400)


@pytest.mark.parametrize("argv", [["--query-max-rows", "-5"], ["--query-max-rows", "0"], ["--query-timeout", "nan"],
                                  ["--query-timeout", "0"], ["--query-timeout", "-1"], ["--idle-release", "nan"],
                                  ["--max-hold", "-3"]])
def test_server_limits_out_of_range_are_db000_before_serving(tmp_path, capsys, monkeypatch, argv):
    """`--serve --query-max-rows -5` served, and every POST /query then failed with "LIMIT/OFFSET cannot be
    negative; check table and column names"; 0 meant 10,000 and a timeout of nan or -1 was taken silently."""
    import uvicorn

    from benchmark_db_api import main

    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: pytest.fail("the server started"))
    with pytest.raises(SystemExit) as stop:
        main(["--serve", "--port", "18599", "--db", str(tmp_path / "x.duckdb"), *argv])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert f"error DB000: argument {argv[0]}: " in err
    assert not (tmp_path / "x.duckdb").exists()


@pytest.mark.parametrize("value", [10**400, 2**53 + 1])
def test_orm_refuses_an_int_a_double_cannot_hold_as_db003(db_path, value):
    """PerformanceResults(memory_peak_mb=10**400) passed the ORM's check and failed in Arrow
    ("ArrowInvalid: PyLong is too large to fit int64"); insert_many of 2**53 + 1 likewise."""
    from benchmark_db_models import BenchmarkDB, PerformanceResults

    with BenchmarkDB(db_path=db_path) as db:
        model, hardware = db.get_or_add_model("bert"), db.get_or_add_hardware("cpu")
        with pytest.raises(DataConversionError, match="memory_peak_mb must be a finite number >= 0"):
            db.insert_performance_results(PerformanceResults(model_id=model, hardware_id=hardware,
                                                             memory_peak_mb=value))
        with pytest.raises(DataConversionError, match="memory_peak_mb must be a finite number >= 0"):
            db.insert_many([PerformanceResults(model_id=model, hardware_id=hardware, memory_peak_mb=value,
                                               batch_size=b) for b in (1, 2)])
        assert db.insert_many([PerformanceResults(model_id=model, hardware_id=hardware, memory_peak_mb=2**53,
                                                  batch_size=1)])


@pytest.mark.slow  # over 0.35 s here: outside make test-fast
def test_health_counts_archived_rows_as_every_read_does(sample_db_path, tmp_path):
    """After --archive-data, GET /performance listed every result while /health said "performance_results": 0."""
    import benchmark_db_maintenance

    with BenchmarkDBAPI(sample_db_path, idle_release=0.1) as api:
        before = api.health()["rows"]
    assert benchmark_db_maintenance.main(["--archive-data", "--older-than", "0", "--archive-dir",
                                          str(tmp_path / "archived"), "--db", sample_db_path, "--quiet"]) == 0
    with BenchmarkDBAPI(sample_db_path, idle_release=0.1) as api:
        assert int(api.query("SELECT count(*) FROM performance_results").iloc[0, 0]) == before["performance_results"]
        assert api.health()["rows"] == before


@pytest.mark.parametrize("body", [b'{"model_name":"caf\xe9","hardware_type":"cpu"}',
                                  b'{"model_name":"m","hardware_type":"cpu","metrics":' + b'{"a":' * 5000 + b'1'
                                  + b'}' * 5001])
def test_a_body_json_cannot_parse_says_why_not_there_was_an_error(db_path, body):
    """Latin-1 bytes or JSON nested 5,000 deep answered 400 "There was an error parsing the body"."""
    from fastapi.testclient import TestClient

    from benchmark_db_server import ServerSettings, create_app

    with TestClient(create_app(ServerSettings(db_path=db_path, idle_release=0.1))) as client:
        response = client.post("/performance", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith("the body could not be read as JSON: ")

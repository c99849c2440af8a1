"""BenchmarkDBAPI, the read-only SQL guard and the FastAPI app (through its test client) on tmp databases."""
from __future__ import annotations

import datetime as dt
import subprocess
import sys
import time

import pytest

from benchmark_db.connection import connect
from benchmark_db.errors import DataConversionError, DBConnectionError, UsageError
from benchmark_db.readonly_sql import QueryRefused, check_params, check_readonly_sql
from benchmark_db_api import BenchmarkDBAPI, check_listen, main


def count(path: str, table: str = "performance_results") -> int:
    with connect(path, read_only=True) as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


@pytest.fixture
def api(db_path):
    with BenchmarkDBAPI(db_path, idle_release=0.1) as handle:
        yield handle


# -- Python API ------------------------------------------------------------------------------------------

def test_guide_python_example_verbatim(db_path):
    api = BenchmarkDBAPI(db_path=db_path)
    api.store_performance_result(
        model_name="bert-base-uncased",
        hardware_type="cuda",
        device_name="NVIDIA A100",
        batch_size=32,
        precision="fp16",
        throughput=250.5,
        latency_avg=4.2,
        memory_peak=2048.0
    )
    df = api.get_performance_metrics(model_name="bert-base-uncased", hardware_type="cuda")
    assert len(df) == 1
    row = df.iloc[0]
    assert (row.device_name, row.batch_size, row.precision) == ("NVIDIA A100", 32, "fp16")
    assert (row.throughput, row.latency_avg, row.memory_peak) == (250.5, 4.2, 2048.0)
    assert row.model_family == "bert"
    df = api.query("SELECT model_name, hardware_type, AVG(throughput_items_per_second) FROM performance_results "
                   "GROUP BY model_name, hardware_type")
    assert df.values.tolist() == [["bert-base-uncased", "cuda", 250.5]]
    api.close()


def test_default_database_follows_env(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCHMARK_DB_PATH", str(tmp_path / "env.duckdb"))
    api = BenchmarkDBAPI()
    api.store_performance_result(model_name="bert-base-uncased", hardware_type="cuda", throughput=123.4,
                                 latency_avg=10.5)
    api.close()
    assert count(str(tmp_path / "env.duckdb")) == 1
    monkeypatch.delenv("BENCHMARK_DB_PATH")
    monkeypatch.chdir(tmp_path)
    assert BenchmarkDBAPI().db_path == "benchmark_db.duckdb"


@pytest.mark.slow  # over 0.35 s here: outside make test-fast
def test_stores_without_run_never_collide_and_named_runs_replace(api, db_path):
    for _ in range(3):
        api.store_performance_result("t5-small", "cpu", throughput=10.0)
    other = BenchmarkDBAPI(db_path, idle_release=0)
    other.store_performance_result("t5-small", "cpu", throughput=10.0)
    api.close()
    assert count(db_path) == 4
    # a named run keys results by run and configuration: a resend replaces
    first = other.store_performance_result("t5-small", "cpu", throughput=1.0, run_id=42)
    again = other.store_performance_result("t5-small", "cpu", throughput=2.0, run_id=42)
    assert first == again
    started = dt.datetime(2025, 3, 1, 9, 0, tzinfo=dt.UTC)
    a = other.store_performance_result("t5-small", "cpu", throughput=1.0, test_name="nightly", started_at=started,
                                       git_commit="abc")
    b = other.store_performance_result("t5-small", "cpu", throughput=3.0, test_name="nightly", started_at=started,
                                       git_commit="abc")
    assert a == b
    assert count(db_path) == 6
    df = other.get_performance_metrics(model_name="t5-small", run_id=42)
    assert df.throughput.tolist() == [2.0]
    runs = other.query("SELECT test_name, git_commit, started_at FROM test_runs WHERE test_name = 'nightly'")
    assert runs.values.tolist()[0][:2] == ["nightly", "abc"]
    assert runs.started_at[0].to_pydatetime() == dt.datetime(2025, 3, 1, 9, 0)  # stored in UTC, naive
    other.close()


@pytest.mark.slow  # over 0.35 s here: outside make test-fast
def test_attaching_to_an_existing_run_keeps_what_the_store_does_not_say(api, db_path):
    from benchmark_db_models import BenchmarkDB, TestRuns

    with BenchmarkDB(db_path=db_path) as db:
        run_id = db.insert_test_runs(TestRuns(
            test_name="pytorch_tiny_bert_cpu", test_type="optimum_benchmark", started_at=dt.datetime(2025, 1, 2),
            command_line="run.py --x", environment={"torch": "2.5"}, metadata={"source": "legacy"},
            source_path="/data/run.json"))
    api.store_performance_result("t5-small", "cpu", throughput=1.0, run_id=run_id, git_commit="abc123")
    row = api.query("SELECT test_name, test_type, started_at, command_line, environment, metadata, source_path, "
                    "git_commit FROM test_runs WHERE run_id = ?", [run_id]).iloc[0]
    assert (row.test_name, row.test_type, row.command_line, row.source_path, row.git_commit) == (
        "pytorch_tiny_bert_cpu", "optimum_benchmark", "run.py --x", "/data/run.json", "abc123")
    assert row.started_at.to_pydatetime() == dt.datetime(2025, 1, 2)
    assert "2.5" in row.environment and "legacy" in row.metadata
    # a run that does not exist yet is still made from what the store says
    api.store_performance_result("t5-small", "cpu", throughput=1.0, run_id=77, git_branch="dev")
    made = api.query("SELECT test_name, test_type, git_branch FROM test_runs WHERE run_id = 77")
    assert made.values.tolist() == [["benchmark_db_api", "performance", "dev"]]


def test_samples_fill_statistics_and_everything_is_kept(api):
    rid = api.store_performance_result(
        "bert-base-uncased", "CUDA", batch_size=8, sequence_length=128, latency_samples=[1.0, 2.0, 3.0, 4.0],
        iterations=4, warmup_iterations=2, test_case="embedding", metrics={"cv": 0.5}, is_simulated=True,
        latency_p99=9.0, environment={"torch": "2.13"}, git_branch="main")
    df = api.get_performance_metrics(model_name="bert-base-uncased", include_samples=True)
    row = df.iloc[0]
    assert row.result_id == rid
    assert row.hardware_type == "cuda"
    assert row.latency_avg == 2.5 and row.latency_p50 == 2.5 and row.latency_p99 == 9.0
    assert list(row.latency_samples) == [1.0, 2.0, 3.0, 4.0]
    assert (row.iterations, row.warmup_iterations, row.sequence_length) == (4, 2, 128)
    assert bool(row.is_simulated) and row.git_branch == "main"
    env = api.query("SELECT environment FROM test_runs WHERE git_branch = 'main'").environment[0]
    assert "2.13" in env


@pytest.mark.parametrize("kwargs, word", [
    ({"throughput": "fast"}, "throughput"),
    ({"throughput": float("nan")}, "throughput"),
    ({"batch_size": -1}, "batch_size"),
    ({"batch_size": 2.5}, "batch_size"),
    ({"metrics": [1, 2]}, "metrics"),
    ({"started_at": "yesterday"}, "started_at"),
    ({"colour": "red"}, "colour"),
    # durations and measured amounts cannot be negative (benchmark_db.validation reports them as impossible)
    ({"throughput": -1.0}, "throughput"),
    ({"latency_avg": -0.5}, "latency_avg"),
    ({"latency_p99": -2}, "latency_p99"),
    ({"latency_stddev": -0.1}, "latency_stddev"),
    ({"memory_peak": -1}, "memory_peak"),
    ({"total_time_seconds": -3.0}, "total_time_seconds"),
    ({"latency_samples": [1.0, -2.0]}, "latency_samples"),
    ({"test_name": "nightly", "started_at": "2025-03-01T10:00:00Z", "completed_at": "2025-03-01T09:00:00Z"},
     "completed_at"),
])
def test_bad_values_are_refused_with_the_field_named(api, db_path, kwargs, word):
    with pytest.raises(DataConversionError, match=word):
        api.store_performance_result("bert-base-uncased", "cpu", **kwargs)
    api.close()
    assert count(db_path) == 0


def test_negative_durations_and_measurements_are_refused_for_every_kind_of_result(api, db_path):
    with pytest.raises(DataConversionError, match="execution_time_seconds must not be negative"):
        api.store_integration_result("test_load", "passed", execution_time_seconds=-1.5)
    with pytest.raises(DataConversionError, match="compatibility_score must not be negative"):
        api.store_compatibility_result("cpu", "bert", True, compatibility_score=-0.1)
    with pytest.raises(DataConversionError, match="completed_at .* is before started_at"):
        api.store_integration_result("test_load", "passed", run_name="ci", started_at="2025-03-01T10:00:00Z",
                                     completed_at="2025-03-01T09:59:00Z")
    with pytest.raises(DataConversionError, match="result 1: latency_avg must not be negative"):
        api.store_many([{"model_name": "a", "hardware_type": "cpu", "latency_avg": 1.0},
                        {"model_name": "a", "hardware_type": "cpu", "latency_avg": -1.0}])
    # zero is a measurement (a tiny model's memory), not a missing one
    api.store_integration_result("test_load", "passed", execution_time_seconds=0.0)
    api.store_performance_result("a", "cpu", memory_peak=0.0, latency_samples=[0.0, 1.0])
    api.close()
    assert count(db_path) == 1 and count(db_path, "integration_test_results") == 1
    assert count(db_path, "hardware_compatibility") == 0


def test_store_many_is_one_transaction(api, db_path):
    ids = api.store_many([
        {"model_name": "bert-base-uncased", "hardware_type": "cpu", "throughput": 1.0},
        {"model_name": "bert-base-uncased", "hardware_type": "cpu", "throughput": 1.0},
        {"result_type": "compatibility", "hardware_type": "webgpu", "model_name": "vit", "is_compatible": False,
         "error_message": "no adapter"},
        {"result_type": "integration", "test_name": "test_load", "status": "passed", "test_module": "tests.x"},
    ])
    assert len(set(ids)) == 4
    with pytest.raises(DataConversionError, match="result 1"):
        api.store_many([{"model_name": "a", "hardware_type": "cpu"}, {"model_name": "b"}])
    api.close()
    assert count(db_path) == 2
    assert count(db_path, "hardware_compatibility") == 1
    assert count(db_path, "integration_test_results") == 1
    assert count(db_path, "test_runs") == 1  # the session run, once


ROW_VARIANTS = [
    {"model_name": " bert-base-uncased ", "hardware_type": "CUDA", "device_name": "A100", "batch_size": 8,
     "precision": " fp16", "test_case": "", "throughput": 3, "latency_avg": 1.5, "memory_peak": 2.0,
     "sequence_length": 128, "latency_p90": 2.0, "iterations": 10, "warmup_iterations": 2, "is_simulated": True,
     "metrics": {"cv": 0.1, "tags": ["a"]}, "created_at": "2025-03-01T09:00:00+02:00", "model_family": "BERT",
     "is_emulated": True},
    {"model_name": "t5-small", "hardware_type": "cpu", "batch_size": None},
    {"model_name": "t5-small", "hardware_type": "cpu", "result_type": "performance", "total_time_seconds": 4},
    {"model_name": "vit", "hardware_type": "gpu", "latency_samples": [1.0, 2.0, 3.0]},  # not the row path
    {"model_name": "vit", "hardware_type": "cpu", "run_id": 42, "throughput": 1.0},  # nor this: a named run
]


def test_batch_rows_are_built_as_single_stores_build_them(api):
    """build_records puts performance results in one RecordColumns; every value matches performance()."""
    from dataclasses import fields

    from benchmark_db_models import PerformanceResults, RecordColumns

    records, positions = api.build_records(ROW_VARIANTS)
    batch = records[-1]
    assert type(batch) is RecordColumns and len(batch) == len(ROW_VARIANTS)
    assert positions == [len(records) - 1 + i for i in range(len(ROW_VARIANTS))]
    assert batch.new == [True, True, True, True, False]
    for i, values in enumerate(ROW_VARIANTS):
        single = api.records.performance(values)[-1]
        for f in fields(PerformanceResults):
            if f.name != "result_id":  # a result that names no run gets a unique id each time
                assert batch.columns[f.name][i] == getattr(single, f.name), (i, f.name)
    assert batch.columns["result_id"][4] == single.result_id  # a named run's id is its natural key
    assert sum(r.TABLE == "test_runs" for r in records) == 1  # the session run, once
    models = sorted(r.model_name for r in records if r.TABLE == "models")
    assert models == ["bert-base-uncased", "t5-small", "vit"]


PLAIN_BATCH = [  # results of the common shape only: build_records builds them together, column by column
    {"model_name": "bert-base-uncased", "hardware_type": "cpu", "device_name": "x", "batch_size": 4,
     "precision": "fp32", "test_case": "bench", "throughput": 1.5, "latency_avg": 2.0, "memory_peak": 0.0,
     "is_simulated": False, "created_at": dt.datetime(2025, 3, 1, 9, tzinfo=dt.UTC)},  # as pydantic hands it
    {"model_name": "bert-base-uncased", "hardware_type": "cpu", "device_name": "x", "batch_size": 1,
     "precision": "fp32", "test_case": "bench", "throughput": 2.5, "iterations": 3,
     "metrics": {"is_emulated": True}},  # the metrics alone make it emulated, as PerformanceResults has it
    {"model_name": " t5-small", "hardware_type": "CUDA", "batch_size": 2.0, "throughput": 3, "precision": " fp16",
     "test_case": "", "is_simulated": 1, "metrics": {"cv": 0.1}, "created_at": "2025-03-01T09:00:00+02:00"},
    {"model_name": 5, "hardware_type": "gpu", "model_family": "BERT", "sequence_length": None, "batch_size": None},
    {"model_name": 5.0, "hardware_type": "cpu", "latency_p99": 7, "is_simulated": None},  # 5 == 5.0, yet "5.0"
]


@pytest.mark.parametrize("results", [PLAIN_BATCH, PLAIN_BATCH[:2], PLAIN_BATCH[3:]])
def test_plain_batches_are_built_as_single_stores_build_them(api, results):
    records, positions = api.build_records(results)
    batch = records[-1]
    assert positions == [len(records) - 1 + i for i in range(len(results))] and batch.new == [True] * len(results)
    assert_batch_matches_single_results(api, batch, results)
    assert sorted(r.model_name for r in records if r.TABLE == "models") == sorted(
        {api.records.performance(v)[0].model_name for v in results})
    ids = batch.columns["result_id"]
    assert len(set(ids)) == len(ids) and not set(ids) & set(api.build_records(results)[0][-1].columns["result_id"])
    assert all(0 < i < 2**63 for i in ids)


BAD_VALUES = [{"throughput": "fast"}, {"latency_p50": float("inf")}, {"batch_size": -1}, {"iterations": 2**31},
              {"precision": 3j}, {"test_case": "a\x00b"}, {"is_simulated": "maybe"}, {"is_emulated": 2}, {"metrics": [1]},
              {"created_at": "noon"}, {"model_name": " "}, {"hardware_type": None}, {"device_name": ["x"]},
              {"batch_size": -1, "throughput": "fast", "precision": 3j}, {"throughput": -1.0},
              {"memory_peak": -0.5, "latency_avg": 2.0}, {"latency_p90": -1}]


@pytest.mark.parametrize("bad", BAD_VALUES)
def test_a_bad_batch_names_the_result_and_the_error_a_single_store_would(api, bad):
    good = {"model_name": "bert", "hardware_type": "cpu", "throughput": 1.0}
    with pytest.raises(DataConversionError) as single:
        api.records.performance({**good, **bad})
    for results, index in (([good, {**good, **bad}, {**good, **bad}], 1),  # the first bad result
                           ([good, good, {**good, **bad}, {**good, "model_name": None}], 2),
                           ([good, {**good, **bad}, {**good, "run_id": "x"}], 1),  # beside the general path
                           ([{**good, "run_id": 9}, good, {**good, **bad}], 2)):
        with pytest.raises(DataConversionError) as batch:
            api.build_records(results)
        assert batch.value.message == f"result {index}: {single.value.message}", (results, bad)


def test_results_that_name_no_run_get_ids_of_their_own(api):
    first, second = api.records.new_ids(1000), api.records.new_ids(1000)
    assert len(set(first) | set(second)) == 2000 and all(0 < i < 2**63 for i in first + second)
    assert api.records.new_ids(0) == []


def test_store_many_keeps_positions_across_result_types(api, db_path):
    results = [{"model_name": "a", "hardware_type": "cpu", "throughput": 1.0},
               {"result_type": "integration", "test_name": "t", "status": "passed"},
               {"model_name": "b", "hardware_type": "cpu", "throughput": 2.0, "run_id": 9},
               {"result_type": "compatibility", "hardware_type": "webgpu", "is_compatible": True},
               {"model_name": "c", "hardware_type": "cpu", "throughput": 3.0}]
    ids = api.store_many(results)
    again = api.store_many(results[2:3])  # a named run: the resend replaces
    api.close()
    assert again == ids[2:3]
    with connect(db_path, read_only=True) as conn:
        throughput = dict(conn.execute("SELECT result_id, throughput_items_per_second FROM performance_results"
                                       ).fetchall())
        assert [throughput[ids[i]] for i in (0, 2, 4)] == [1.0, 2.0, 3.0] and len(throughput) == 3
        assert conn.execute("SELECT test_result_id FROM integration_test_results").fetchall() == [(ids[1],)]
        assert conn.execute("SELECT compatibility_id FROM hardware_compatibility").fetchall() == [(ids[3],)]


def test_other_getters(api):
    api.store_compatibility_result("webgpu", "vit-base", False, error_message="no adapter", error_type="Missing")
    api.store_compatibility_result(hardware_type="cpu", model_name="vit-base", is_compatible=True)
    api.store_integration_result("test_load", "failed", test_module="tests.a", hardware_type="cuda",
                                 error_message="boom", execution_time_seconds=1.5)
    api.store_integration_result(test_name="test_save", status="passed", run_name="ci")
    api.store_performance_result("vit-base", "cpu", throughput=3.0)
    compat = api.get_compatibility_results(hardware_type="WebGPU")
    assert compat.is_compatible.tolist() == [False] and compat.error_type[0] == "Missing"
    assert len(api.get_compatibility_results(model_name="vit-base")) == 2
    failed = api.get_integration_results(status="FAILED")
    assert failed.test_name.tolist() == ["test_load"] and failed.hardware_type[0] == "cuda"
    assert len(api.get_integration_results()) == 2
    hardware = api.get_hardware_list()
    assert sorted(hardware.hardware_type) == ["cpu", "cuda", "webgpu"]
    models = api.get_model_list(model_family="vit")
    assert models.model_name.tolist() == ["vit-base"] and models.performance_results[0] == 1
    assert len(api.get_performance_metrics(limit=0)) == 0
    page = api.get_performance_metrics(limit=1, offset=1)
    assert len(page) == 0


@pytest.mark.parametrize("method", ["get_performance_metrics", "get_compatibility_results",
                                    "get_integration_results", "get_hardware_list", "get_model_list"])
def test_unknown_filters_are_usage_errors_naming_the_valid_ones(api, method):
    api.store_performance_result("bert-base-uncased", "cpu", throughput=1.0)
    api.store_compatibility_result("cpu", "bert-base-uncased", True)
    api.store_integration_result("test_load", "passed")
    with pytest.raises(UsageError) as error:
        getattr(api, method)(bogus=1)
    message = str(error.value)
    assert message.startswith(f"error DB000: {method}() has no filter 'bogus'")
    assert "valid filters:" in message and "limit" in message and "offset" in message
    for internal in ("peek", "stored_names"):  # the REST server's arguments are not filters
        with pytest.raises(UsageError, match=internal):
            getattr(api, method)(**{internal: True})
    assert len(getattr(api, method)(limit=1)) == 1  # the known ones still work


@pytest.mark.slow  # over 0.35 s here: outside make test-fast
def test_query_is_read_only_and_binds_parameters(api, db_path):
    api.store_performance_result("bert-base-uncased", "cpu", throughput=1.0)
    hostile = "x'; DROP TABLE models; --"
    assert len(api.query("SELECT * FROM models WHERE model_name = ?", [hostile])) == 0
    assert api.query("SELECT $name AS n", {"name": "ok"}).n[0] == "ok"
    for sql in ("DROP TABLE models", "SELECT 1; DELETE FROM models", "COPY models TO 'x.csv'",
                "SELECT * FROM read_csv('/etc/passwd')", "ATTACH 'x.duckdb'", "PRAGMA database_list"):
        with pytest.raises(QueryRefused):
            api.query(sql)
    with pytest.raises(QueryRefused, match="rows"):
        api.query("SELECT * FROM range(100)", max_rows=10)
    with pytest.raises(QueryRefused, match="time limit"):
        api.query("SELECT count(*) FROM range(10000000000000) a", timeout_s=0.5)
    api.close()
    assert count(db_path, "models") == 1


def test_missing_database_is_db001_for_reads(tmp_path):
    api = BenchmarkDBAPI(str(tmp_path / "none.duckdb"))
    with pytest.raises(DBConnectionError):
        api.get_performance_metrics()
    with pytest.raises(DBConnectionError):
        api.query("SELECT 1")
    assert not (tmp_path / "none.duckdb").exists()


def test_file_is_released_when_idle(api, db_path):
    api.store_performance_result("bert-base-uncased", "cpu", throughput=1.0)
    assert api.db.is_open
    deadline = time.monotonic() + 5
    while api.db.is_open and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not api.db.is_open
    # another configuration of the same file can open now (it could not while the API held it)
    conn = connect(db_path, read_only=True, config={"enable_external_access": False})
    assert conn.execute("SELECT count(*) FROM performance_results").fetchone()[0] == 1
    conn.close()


@pytest.mark.slow  # over 1.5 s: outside make test-fast
def test_handover_under_sustained_use(db_path):
    api = BenchmarkDBAPI(db_path, max_hold=0.2)
    api.store_performance_result("a", "cpu")
    time.sleep(0.3)
    api.store_performance_result("a", "cpu")
    assert api.db.handovers == 1
    api.close()


# -- the guard on its own -------------------------------------------------------------------------------

@pytest.mark.parametrize("sql", [
    "SELECT 1", "  -- a comment\n select 1;", "WITH x AS (SELECT 1 AS a) SELECT a FROM x", "FROM models",
    "(SELECT 1)", "VALUES (1), (2)", "DESCRIBE models", "SELECT ';' AS semicolon",
])
def test_guard_allows_single_reads(sql):
    assert check_readonly_sql(sql)


@pytest.mark.parametrize("sql", [
    "", ";", "DROP TABLE models", "SELECT 1; SELECT 2", "INSERT INTO models VALUES (1)", "UPDATE models SET x=1",
    "DELETE FROM models", "CREATE TABLE x AS SELECT 1", "ATTACH 'x.db'", "DETACH x", "COPY models TO 'x.csv'",
    "INSTALL httpfs", "LOAD httpfs", "PRAGMA database_list", "PRAGMA threads=1", "SET threads = 1", "RESET threads",
    "EXPLAIN SELECT 1", "CALL pragma_version()", "CHECKPOINT", "VACUUM", "EXPORT DATABASE 'x'", "USE memory",
    "BEGIN TRANSACTION", "CREATE MACRO m(x) AS x", "WITH x AS (SELECT 1) DELETE FROM models", "SELECT 1 /*",
    "PIVOT models ON model_family", "SELECT * FROM pragma_database_list", "SELECT path FROM duckdb_databases",
    "SELECT * FROM read_blob('bench.duckdb')", "SELECT * FROM 'bench.duckdb'", "SELECT * FROM query('SELECT 1')",
    "SELECT (SELECT count(*) FROM glob('*'))", 42, "SELECT 1 FROM x" + " " * 100_001,
    # the configuration holds the database path (temp_directory is "<db>.tmp")
    "SELECT current_setting('temp_directory')", "SELECT upper(pg_catalog.CURRENT_SETTING('temp_directory'))",
    "SELECT * FROM range(3) WHERE current_setting('threads') > 1", "SELECT * FROM duckdb_settings()",
    "SELECT * FROM duckdb_settings", "SELECT setting FROM pg_catalog.pg_settings", "SELECT * FROM pg_settings",
    "SELECT getvariable('x')", "SELECT * FROM duckdb_temporary_files()",
])
def test_guard_refuses_everything_else(sql):
    with pytest.raises(QueryRefused):
        check_readonly_sql(sql)


@pytest.mark.parametrize("params", [5, "x", [[1]], [{"a": 1}], {"1bad": 1}, [float("inf")], [2**70]])
def test_guard_refuses_bad_params(params):
    with pytest.raises(QueryRefused):
        check_params(params)


# -- the FastAPI app through the test client --------------------------------------------------------------

@pytest.fixture
def client(db_path):
    from fastapi.testclient import TestClient

    from benchmark_db_server import ServerSettings, create_app

    app = create_app(ServerSettings(db_path=db_path, idle_release=0.1, query_timeout_s=1.0, query_max_rows=1000))
    with TestClient(app) as test_client:
        yield test_client


def assert_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"code", "message", "details"}
    if code:
        assert error["code"] == code
    return error


@pytest.mark.slow  # over 0.35 s here: outside make test-fast
def test_endpoints_of_the_guide(client):
    assert client.get("/").json()["endpoints"]
    assert client.get("/health").json()["status"] == "ok"
    body = {"model_name": "bert-base-uncased", "hardware_type": "cuda", "device_name": "NVIDIA A100",
            "batch_size": 32, "precision": "fp16", "test_case": "embedding", "throughput": 250.5,
            "latency_avg": 4.2, "latency_p90": 5.0, "memory_peak": 2048.0, "iterations": 10,
            "warmup_iterations": 2, "metrics": {"cv": 0.02}}
    stored = client.post("/performance", json=body)
    assert stored.status_code == 201, stored.text
    rid = stored.json()["id"]
    items = client.get("/performance", params={"model_name": "bert-base-uncased", "hardware_type": "CUDA"}).json()
    assert items["count"] == 1
    item = items["items"][0]
    assert item["result_id"] == rid and item["metrics"] == {"cv": 0.02} and item["latency_p90"] == 5.0
    assert client.post("/compatibility", json={"hardware_type": "webgpu", "model_name": "vit",
                                               "is_compatible": False, "error_message": "x"}).status_code == 201
    assert client.get("/compatibility", params={"is_compatible": False}).json()["count"] == 1
    assert client.post("/integration", json={"test_name": "t1", "status": "passed"}).status_code == 201
    assert client.get("/integration", params={"status": "passed"}).json()["items"][0]["test_name"] == "t1"
    assert {h["hardware_type"] for h in client.get("/hardware").json()["items"]} == {"cuda", "webgpu"}
    assert client.get("/models", params={"model_family": "bert"}).json()["count"] == 1
    result = client.post("/query", json={"sql": "SELECT model_name, count(*) AS n FROM performance_results "
                                                "WHERE hardware_type = ? GROUP BY ALL", "params": ["cuda"]})
    assert result.json()["rows"] == [["bert-base-uncased", 1]]
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/", "/health", "/performance", "/performance/batch", "/compatibility", "/integration", "/query",
                 "/hardware", "/models"):
        assert path in paths


def test_batch_and_paging(client):
    results = [{"model_name": f"m{i % 3}", "hardware_type": "cpu", "batch_size": i + 1, "throughput": float(i)}
               for i in range(25)]
    response = client.post("/performance/batch", json={"results": results})
    assert response.status_code == 201 and response.json()["stored"] == 25
    assert len(set(response.json()["result_ids"])) == 25
    seen = []
    offset = 0
    while offset is not None:
        page = client.get("/performance", params={"limit": 10, "offset": offset}).json()
        seen += [item["result_id"] for item in page["items"]]
        offset = page["next_offset"]
    assert sorted(seen) == sorted(response.json()["result_ids"])
    assert client.get("/performance", params={"model_name": "m1", "batch_size": 5}).json()["count"] == 1
    bad = results[:3] + [{"model_name": "x", "hardware_type": "cpu", "batch_size": "many"}]
    error = assert_error(client.post("/performance/batch", json={"results": bad}), 422, "validation_error")
    assert error["details"][0]["field"] == "results.3.batch_size"
    assert client.get("/performance", params={"limit": 0}).json()["count"] == 0


@pytest.mark.slow  # over 1.5 s: outside make test-fast
@pytest.mark.parametrize("path", ["/performance", "/compatibility", "/integration", "/hardware", "/models"])
def test_next_offset_is_null_on_a_last_page_that_is_exactly_full(client, path):
    hardware = ["cpu", "cuda", "rocm", "mps"]
    for i, kind in enumerate(hardware):  # four rows in every list
        for post, body in (("/performance", {"throughput": 1.0}), ("/compatibility", {"is_compatible": True}),
                           ("/integration", {"test_name": f"t{i}", "status": "passed"})):
            stored = client.post(post, json={"model_name": f"m{i}", "hardware_type": kind, **body})
            assert stored.status_code == 201, stored.text
    pages = {}
    for limit, offset in ((4, 0), (2, 0), (2, 2), (3, 0), (3, 3), (5, 0), (4, 4), (0, 0)):
        page = client.get(path, params={"limit": limit, "offset": offset}).json()
        pages[limit, offset] = (page["count"], page["next_offset"])
    assert pages == {(4, 0): (4, None), (2, 0): (2, 2), (2, 2): (2, None), (3, 0): (3, 3), (3, 3): (1, None),
                     (5, 0): (4, None), (4, 4): (0, None), (0, 0): (0, None)}


def test_python_api_pages_hold_at_most_limit_rows(api):
    api.store_many([{"model_name": f"m{i}", "hardware_type": kind, "throughput": 1.0}
                    for i, kind in enumerate(["cpu", "cuda", "rocm", "mps"])])
    assert len(api.get_performance_metrics(limit=3)) == 3 and len(api.get_performance_metrics(limit=4)) == 4
    assert len(api.get_hardware_list(limit=2)) == 2 and len(api.get_model_list(limit=2, offset=3)) == 1
    assert len(api.get_compatibility_results(limit=0)) == 0


def test_negative_measurements_are_refused_over_http_naming_the_field(client):
    performance = {"model_name": "bert", "hardware_type": "cpu"}
    for path, body, field in (
            ("/performance", {**performance, "latency_avg": -1.0}, "latency_avg"),
            ("/performance", {**performance, "throughput": -0.1}, "throughput"),
            ("/performance", {**performance, "memory_peak": -1}, "memory_peak"),
            ("/performance", {**performance, "total_time_seconds": -1}, "total_time_seconds"),
            ("/performance", {**performance, "latency_samples": [1.0, -1.0]}, "latency_samples.1"),
            ("/compatibility", {"hardware_type": "cpu", "compatibility_score": -1}, "compatibility_score"),
            ("/integration", {"test_name": "t", "status": "passed", "execution_time_seconds": -2.5},
             "execution_time_seconds"),
            ("/performance/batch", {"results": [performance, {**performance, "latency_p95": -3}]},
             "results.1.latency_p95")):
        error = assert_error(client.post(path, json=body), 422, "validation_error")
        assert field in [d["field"] for d in error["details"]], (path, error)
        assert field in error["message"]
    # a run that completes before it starts has a negative run time
    run = {"run_name": "ci", "started_at": "2025-03-01T10:00:00Z", "completed_at": "2025-03-01T09:00:00Z"}
    error = assert_error(client.post("/integration", json={"test_name": "t", "status": "passed", **run}), 422)
    assert "completed_at" in error["message"]
    for path in ("/performance", "/compatibility", "/integration"):
        assert client.get(path).json()["count"] == 0
    zero = client.post("/integration", json={"test_name": "t", "status": "passed", "execution_time_seconds": 0})
    assert zero.status_code == 201, zero.text


def test_writer_commits_waiting_requests_together_and_drops_cancelled_ones(db_path):
    import asyncio

    from benchmark_db_server import WriteQueue

    api = BenchmarkDBAPI(db_path)
    writer = WriteQueue(api)

    def store(i: int):
        return asyncio.ensure_future(writer.write(api.build_performance({"model_name": f"m{i}",
                                                                         "hardware_type": "cpu"})[0]))

    async def requests():
        with api.db.lock:  # holds the writer inside the first job while the others queue up
            first = store(0)
            await asyncio.sleep(0)
            while not writer._queue.empty():
                await asyncio.sleep(0.01)
            waiting = [store(i) for i in range(1, 6)]
            await asyncio.sleep(0)
            waiting[2].cancel()  # its client went away before the writer took it
        return await asyncio.gather(first, *waiting[:2], *waiting[3:])

    try:
        ids = asyncio.run(requests())
        assert len({i[-1] for i in ids}) == 5 and writer.commits == 2  # the first job, then the rest at once
        assert writer.submit(api.build_performance({"model_name": "m9", "hardware_type": "cpu"})[0])
    finally:
        writer.stop()
        api.close()
    assert count(db_path) == 6
    with connect(db_path, read_only=True) as conn:
        assert "m3" not in {r[0] for r in conn.execute("SELECT model_name FROM performance_results").fetchall()}


@pytest.mark.slow  # over 0.35 s here: outside make test-fast
def test_batch_body_is_checked_like_single_bodies(client):
    """The batch body is validated from its raw bytes; errors name the field as for PerformanceBatchIn."""
    good = {"model_name": "bert", "hardware_type": "cpu"}
    cases = [({"results": [good, {"model_name": "bert", "hardware_type": "cpu", "colour": 1}]}, "results.1.colour"),
             ({"results": [good, {"hardware_type": "cpu"}]}, "results.1.model_name"),
             ({"results": [{**good, "model_name": " "}]}, "results.0.model_name"),
             ({"results": [{**good, "iterations": -1}]}, "results.0.iterations"),
             ({"results": good}, "results"), ({"rows": [good]}, "results"), ({"results": [good], "x": 1}, "x")]
    for body, field in cases:
        error = assert_error(client.post("/performance/batch", json=body), 422, "validation_error")
        assert field in [d["field"] for d in error["details"]], (body, error)
    for content in (b"{bad json", b"", b"[]", b"null", b'{"results": [{"model_name": "a", "hardware_type": "cpu", '
                                                       b'"throughput": NaN}]}', b'{"results": [{"model_name": '
                                                       b'"\\ud800", "hardware_type": "cpu"}]}'):
        response = client.post("/performance/batch", content=content, headers={"Content-Type": "application/json"})
        assert_error(response, 422)
    nul = client.post("/performance/batch", json={"results": [{**good, "metrics": {"x": "a\x00"}}]})
    assert "result 0: metrics" in assert_error(nul, 422, "invalid_value")["message"]  # as for single stores
    assert client.get("/performance").json()["count"] == 0
    schema = client.get("/openapi.json").json()
    body = schema["paths"]["/performance/batch"]["post"]["requestBody"]
    assert body["required"] and body["content"]["application/json"]["schema"]["$ref"].endswith("/PerformanceBatchIn")
    batch = schema["components"]["schemas"]["PerformanceBatchIn"]
    assert batch["properties"]["results"]["items"]["$ref"].endswith("/PerformanceIn")
    assert batch["required"] == ["results"] and batch["additionalProperties"] is False


def test_batch_of_named_runs_replaces_on_resend(client):
    results = [{"model_name": "bert", "hardware_type": "cpu", "batch_size": b, "throughput": 1.0,
                "test_name": "nightly", "started_at": "2025-03-01T09:00:00Z"} for b in (1, 2)]
    first = client.post("/performance/batch", json={"results": results}).json()
    results[1]["throughput"] = 5.0
    second = client.post("/performance/batch", json={"results": results})
    assert second.status_code == 201 and second.json()["result_ids"] == first["result_ids"]
    items = client.get("/performance", params={"model_name": "bert"}).json()["items"]
    assert sorted((i["batch_size"], i["throughput"]) for i in items) == [(1, 1.0), (2, 5.0)]
    single = client.post("/performance", json={**results[0], "throughput": 7.0}).json()
    assert single["id"] == first["result_ids"][0] and single["run_id"] == items[0]["run_id"]
    assert client.get("/performance").json()["count"] == 2


@pytest.mark.parametrize("body, field", [
    ({"hardware_type": "cpu"}, "model_name"),
    ({"model_name": "bert"}, "hardware_type"),
    ({"model_name": "bert", "hardware_type": "cpu", "batch_size": "big"}, "batch_size"),
    ({"model_name": "bert", "hardware_type": "cpu", "throughput": "fast"}, "throughput"),
    ({"model_name": "bert", "hardware_type": "cpu", "batch_size": 2**40}, "batch_size"),
    ({"model_name": "bert", "hardware_type": "cpu", "metrics": [1]}, "metrics"),
    ({"model_name": "bert", "hardware_type": "cpu", "started_at": "noon"}, "started_at"),
    ({"model_name": "", "hardware_type": "cpu"}, "model_name"),
    ({"model_name": "bert", "hardware_type": "cpu", "colour": "red"}, "colour"),
    ({"model_name": "bert", "hardware_type": "cpu", "latency_samples": ["a"]}, "latency_samples.0"),
    # true/false are not numbers (pydantic's lax mode would store them as 1/0; the Python API refuses them)
    ({"model_name": "bert", "hardware_type": "cpu", "batch_size": True}, "batch_size"),
    ({"model_name": "bert", "hardware_type": "cpu", "throughput": True}, "throughput"),
    ({"model_name": "bert", "hardware_type": "cpu", "run_id": True}, "run_id"),
    ({"model_name": "bert", "hardware_type": "cpu", "latency_samples": [1.0, False]}, "latency_samples.1"),
])
def test_wrong_types_and_missing_fields_name_the_field(client, body, field):
    error = assert_error(client.post("/performance", json=body), 422, "validation_error")
    assert field in [d["field"] for d in error["details"]]
    assert field.split(".")[0] in error["message"]


def test_malformed_json_and_wrong_bodies(client):
    for content in (b"{bad json", b"", b"[1, 2]", b"null", b'{"model_name": "a", "hardware_type": "cpu", '
                                                             b'"throughput": NaN}'):
        response = client.post("/performance", content=content, headers={"Content-Type": "application/json"})
        assert_error(response, 422)
    for path in ("/performance", "/performance/batch", "/compatibility", "/integration", "/query"):
        error = assert_error(client.post(path, content=b"{bad json", headers={"Content-Type": "application/json"}),
                             422, "validation_error")
        assert [d["field"] for d in error["details"]] == ["body"]  # not the character position FastAPI gives
    batch = {"results": [{"model_name": "bert", "hardware_type": "cpu", "batch_size": 2},
                         {"model_name": "bert", "hardware_type": "cpu", "batch_size": True}]}
    error = assert_error(client.post("/performance/batch", json=batch), 422, "validation_error")
    assert [d["field"] for d in error["details"]] == ["results.1.batch_size"]
    assert_error(client.post("/query", json={"params": []}), 422)
    assert "sql" in client.post("/query", json={"params": []}).json()["error"]["message"]
    lone_surrogate = b'{"model_name": "a", "hardware_type": "cpu", "metrics": {"x": "\\ud800"}}'
    assert_error(client.post("/performance", content=lone_surrogate,
                             headers={"Content-Type": "application/json"}), 422)
    lone_surrogate = b'{"model_name": "\\ud800", "hardware_type": "cpu"}'
    assert_error(client.post("/performance", content=lone_surrogate,
                             headers={"Content-Type": "application/json"}), 422)


def test_http_errors_share_the_shape(client):
    assert_error(client.get("/nowhere"), 404, "not_found")
    assert_error(client.delete("/performance"), 405, "method_not_allowed")
    assert_error(client.put("/query", json={}), 405)
    assert_error(client.get("/performance", params={"limit": -1}), 422)
    assert_error(client.get("/performance", params={"limit": 10**9}), 422)
    assert_error(client.get("/performance", params={"since": "yesterday"}), 422)
    assert_error(client.get("/performance", params={"batch_size": "x"}), 422)


@pytest.mark.slow  # about 1 s or more: outside make test-fast
def test_query_refusals_over_http(client):
    assert_error(client.post("/query", json={"sql": "DROP TABLE models"}), 400, "query_refused")
    assert_error(client.post("/query", json={"sql": "SELECT * FROM read_text('/etc/passwd')"}), 400, "query_refused")
    assert_error(client.post("/query", json={"sql": "SELECT * FROM models WHERE nope = 1"}), 400, "query_error")
    assert_error(client.post("/query", json={"sql": "SELECT * FROM range(5000)"}), 413, "result_too_large")
    assert_error(client.post("/query", json={"sql": "SELECT count(*) FROM range(10000000000000) a"}), 408,
                 "query_timeout")
    assert_error(client.post("/query", json={"sql": "SELECT ?", "params": [[1]]}), 400)
    assert_error(client.post("/query", json={"sql": "SELECT ?, ?", "params": [1]}), 400)
    odd = client.post("/query", json={"sql": "SELECT 'nan'::DOUBLE AS f, now() AS t, [1, 2] AS l, {'a': 1} AS s, "
                                             "'ab'::BLOB AS b, 1.5::DECIMAL(4,2) AS m, INTERVAL 3 DAY AS i"})
    assert odd.status_code == 200, odd.text
    assert odd.json()["rows"][0][0] is None and odd.json()["rows"][0][2:6] == [[1, 2], {"a": 1}, "YWI=", 1.5]
    # a value Python cannot hold (a date after 9999) comes back as text rather than failing
    far = client.post("/query", json={"sql": "SELECT '9999-12-31'::DATE + 1 AS d"})
    assert far.status_code == 200 and far.json()["rows"] == [["10000-01-01"]]


def test_query_never_shows_the_server_configuration(client, db_path):
    for sql in ("SELECT current_setting('temp_directory') AS t", "SELECT * FROM pg_settings"):
        response = client.post("/query", json={"sql": sql})
        error = assert_error(response, 400, "query_refused")
        assert "configuration" in error["message"] and db_path not in response.text


def test_only_the_column_json_cannot_carry_changes_type(client):
    far = client.post("/query", json={"sql": "SELECT '9999-12-31'::DATE + 1 AS d, 1 AS n, 'x' AS t, "
                                             "DATE '2025-03-01' AS day, 2 AS n"})
    assert far.status_code == 200, far.text
    assert far.json()["columns"] == ["d", "n", "t", "day", "n_1"]
    assert far.json()["types"] == ["VARCHAR", "INTEGER", "VARCHAR", "DATE", "INTEGER"]
    assert far.json()["rows"] == [["10000-01-01", 1, "x", "2025-03-01", 2]]
    big = client.post("/query", json={"sql": "SELECT 170141183460469231731687303715884105727::HUGEINT AS big, "
                                             "'x' AS t, 3::UHUGEINT AS u"})
    assert big.status_code == 200, big.text
    assert big.json()["types"] == ["HUGEINT", "VARCHAR", "UHUGEINT"]
    assert big.json()["rows"] == [[2**127 - 1, "x", 3]]  # exact, not a float


def test_writes_need_the_token_when_set(db_path):
    from fastapi.testclient import TestClient

    from benchmark_db_server import ServerSettings, create_app

    app = create_app(ServerSettings(db_path=db_path, token="s3cret"))
    body = {"model_name": "bert", "hardware_type": "cpu"}
    with TestClient(app) as client:
        error = assert_error(client.post("/performance", json=body), 401, "unauthorized")
        assert "Bearer" in error["message"]
        assert_error(client.post("/performance", json=body, headers={"Authorization": "Bearer wrong"}), 401)
        assert_error(client.post("/performance/batch", json={"results": [body]}), 401)
        assert client.post("/performance", json=body, headers={"Authorization": "Bearer s3cret"}).status_code == 201
        assert client.get("/performance").json()["count"] == 1  # reads stay open
        assert client.get("/").json()["writes_need_token"] is True
    assert "access-control-allow-origin" not in client.get("/").headers


def test_cors_only_when_asked(db_path):
    from fastapi.testclient import TestClient

    from benchmark_db_server import ServerSettings, create_app

    with TestClient(create_app(ServerSettings(db_path=db_path))) as client:
        assert "access-control-allow-origin" not in client.get("/", headers={"Origin": "http://x.test"}).headers
    app = create_app(ServerSettings(db_path=db_path, cors_origins=["http://x.test"]))
    with TestClient(app) as client:
        headers = client.get("/", headers={"Origin": "http://x.test"}).headers
        assert headers["access-control-allow-origin"] == "http://x.test"


@pytest.mark.slow  # over 0.35 s here: outside make test-fast
def test_dependency_override_points_the_app_at_another_database(db_path, tmp_path):
    from fastapi.testclient import TestClient

    from benchmark_db_server import ServerSettings, create_app

    other = str(tmp_path / "other.duckdb")
    app = create_app(ServerSettings(db_path=str(tmp_path / "configured.duckdb")))
    replacement = BenchmarkDBAPI(other)
    app.dependency_overrides[app.state.get_api] = lambda: replacement
    with TestClient(app) as client:
        assert client.post("/performance", json={"model_name": "a", "hardware_type": "cpu"}).status_code == 201
        assert client.get("/performance").json()["count"] == 1
    replacement.close()
    assert count(other) == 1
    assert not (tmp_path / "configured.duckdb").exists()  # every request, writes included, used the override


# -- the command line -------------------------------------------------------------------------------------

def test_refuses_public_listen_without_token(capsys, monkeypatch):
    monkeypatch.delenv("BENCHMARK_DB_API_TOKEN", raising=False)
    assert main(["--serve", "--host", "0.0.0.0", "--port", "1"]) == 2
    assert "error DB000" in capsys.readouterr().err
    with pytest.raises(UsageError):
        check_listen("192.168.1.5", None)
    check_listen("192.168.1.5", "token")
    for host in ("127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.2"):
        check_listen(host, None)


def test_busy_port_is_a_usage_error_before_the_database_is_touched(tmp_path, capsys):
    import socket

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        db = tmp_path / "never.duckdb"
        assert main(["--serve", "--port", str(port), "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert f"error DB000: cannot listen on 127.0.0.1:{port}" in err and "Traceback" not in err
    assert not db.exists()


def test_cli_without_serve_prints_health(db_path, capsys):
    assert main(["--db", db_path]) == 0
    assert '"schema_version"' in capsys.readouterr().out


def test_cli_without_serve_is_a_reader_and_refuses_a_missing_database(tmp_path, capsys):
    missing = tmp_path / "missing.duckdb"
    assert main(["--db", str(missing)]) == 3
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"error DB001: database {missing} does not exist; create it with" in captured.err
    assert "Traceback" not in captured.err and not missing.exists()


@pytest.mark.slow  # over 0.35 s here: outside make test-fast
def test_core_and_python_api_do_not_import_fastapi(repo_root):
    code = ("import sys, benchmark_db_api, benchmark_db.readonly_sql, benchmark_db_models; "
            "sys.exit(1 if 'fastapi' in sys.modules or 'uvicorn' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code], cwd=repo_root).returncode == 0
    help_run = subprocess.run([sys.executable, "benchmark_db_api.py", "--help"], cwd=repo_root, capture_output=True,
                              text=True)
    assert help_run.returncode == 0 and "--serve" in help_run.stdout


def test_docs_pages_load_everything_from_the_server(client):
    """/docs and /redoc work without internet access: every script and stylesheet they load is served here."""
    import re

    for page in ("/docs", "/redoc"):
        response = client.get(page)
        assert response.status_code == 200
        assets = re.findall(r'(?:src|href)="([^"]+\.(?:js|css))"', response.text)
        assert assets, page
        for url in assets:
            assert url.startswith("/"), f"{page} loads {url} from elsewhere"
            assert client.get(url).status_code == 200, url


def assert_batch_matches_single_results(api, batch, results) -> None:
    """Each row of the column batch holds what the one-result path builds for it, value and type."""
    from dataclasses import fields

    from benchmark_db_models import PerformanceResults

    for i, values in enumerate(results):
        single = api.records.performance(values)[-1]
        for f in fields(PerformanceResults):
            if f.name != "result_id":
                assert batch.columns[f.name][i] == getattr(single, f.name), (i, f.name)
                assert type(batch.columns[f.name][i]) is type(getattr(single, f.name)), (i, f.name)

"""QA round 20 of the ORM and the Python API.

One BenchmarkDB shared by threads (its calls take turns), archived rows in the ORM's reads, the limits of
`BenchmarkDBAPI.query()`, and wrong types given to the ORM: each bad input is one error of the toolkit's
family, never a raw DuckDB or Python exception, and leaves the object usable. Real files, real threads.
"""
from __future__ import annotations

import datetime as dt
import shutil
import threading
import time

import duckdb
import pytest

from benchmark_db import readonly_sql
from benchmark_db.connection import connect
from benchmark_db.errors import ArchiveMissingError, DataConversionError, SchemaError, UsageError
from benchmark_db.maintenance import archive
from benchmark_db_api import BenchmarkDBAPI
from benchmark_db_models import (
    BenchmarkDB,
    HardwareCompatibility,
    IntegrationTestResults,
    Models,
    PerformanceResults,
    RecordColumns,
    TestRuns,
    table_counts,
)

# the sample data is created 2025-03-01 .. 2025-03-03: archiving "older than 0 days" on 2025-03-02 moves the
# first day's rows and leaves the rest live (as tests/test_archive_query.py does)
CUT = dt.datetime(2025, 3, 2)


# -- 1. one object, several threads -----------------------------------------------------------------------


@pytest.mark.slow  # 60 committed writes: about a second
def test_two_threads_adding_models_through_one_object_store_every_one(db_path):
    db = BenchmarkDB(db_path)
    errors: list[BaseException] = []
    ids: dict[str, int] = {}

    def add(k: int) -> None:
        for i in range(30):
            try:
                ids[f"thr-{k}-{i}"] = db.get_or_add_model(f"thr-{k}-{i}")
            except BaseException as exc:  # noqa: BLE001 - collected for the assertion below
                errors.append(exc)

    threads = [threading.Thread(target=add, args=(k,)) for k in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    try:
        assert not any(thread.is_alive() for thread in threads)
        assert errors == []  # was ~57 of 60: KeyError 'model_id', TransactionException, _orm_batch exists
        assert db.conn.execute("SELECT count(*) FROM models WHERE model_name LIKE 'thr-%'").fetchone()[0] == 60
        assert db.get(Models, ids["thr-1-29"]).model_name == "thr-1-29"
        assert db.get_or_add_model("after") == db.get_or_add_model("after")  # not poisoned
    finally:
        db.close()


def test_a_transaction_block_holds_the_other_threads_calls_until_it_ends(db_path):
    db = BenchmarkDB(db_path)
    inside = threading.Event()
    other_done: list[int] = []

    def other() -> None:
        inside.wait(5)
        other_done.append(db.get_or_add_model("other-thread"))

    thread = threading.Thread(target=other)
    thread.start()
    try:
        with pytest.raises(RuntimeError), db.transaction():
            db.get_or_add_model("rolled-back")
            inside.set()
            time.sleep(0.1)  # the other thread's call comes now: it must not join this transaction
            assert not other_done
            raise RuntimeError("abandon the block")
        thread.join(5)
        names = {r[0] for r in db.conn.execute("SELECT model_name FROM models").fetchall()}
        assert "rolled-back" not in names and "other-thread" in names  # its own commit, not rolled back
    finally:
        thread.join(5)
        db.close()


def test_a_missing_table_is_db002_and_not_remembered_as_having_no_columns():
    conn = duckdb.connect()
    try:
        db = BenchmarkDB(conn=conn)
        with pytest.raises(SchemaError, match="no table models"):
            db.fact_columns(Models)  # an empty column list was cached: KeyError 'model_id' on every insert
        conn.execute("CREATE TABLE models (model_id BIGINT, model_name VARCHAR)")
        assert db.fact_columns(Models) == [("model_id", "BIGINT"), ("model_name", "VARCHAR")]
    finally:
        conn.close()


# -- 2. archived rows in the ORM's reads -------------------------------------------------------------------


@pytest.fixture
def archived_db(sample_db_path, tmp_path) -> tuple[str, int, int]:
    """The sample database with its first day archived; (path, all performance rows, an archived id)."""
    conn = connect(sample_db_path)
    try:
        total = conn.execute("SELECT count(*) FROM performance_results").fetchone()[0]
        archive.archive_old_rows(conn, 0, tmp_path / "archived_data", now=CUT)
        archived_id = conn.execute("SELECT result_id FROM performance_results_all EXCEPT "
                                   "SELECT result_id FROM performance_results LIMIT 1").fetchone()[0]
        live = conn.execute("SELECT count(*) FROM performance_results").fetchone()[0]
    finally:
        conn.close()
    assert 0 < live < total
    return sample_db_path, total, archived_id


@pytest.mark.slow  # archiving takes about half a second
def test_orm_reads_include_archived_rows_as_every_reader_does(archived_db):
    db_path, total, archived_id = archived_db
    with BenchmarkDB(db_path) as db:
        assert db.count(PerformanceResults) == total  # was the live rows only
        assert db.get(PerformanceResults, archived_id).result_id == archived_id  # was None
        counts = {row["table"]: row["rows"] for row in table_counts(db.conn)}  # a writer's connection
        assert counts["performance_results"] == total
        m, h = db.get_or_add_model("after-archive"), db.get_or_add_hardware("cpu")
        db.insert_performance_results(PerformanceResults(model_id=m, hardware_id=h, batch_size=1))
        assert db.count(PerformanceResults) == total + 1


@pytest.mark.slow  # archiving takes about half a second
def test_an_orm_read_without_its_archived_file_is_db004_naming_it(archived_db, tmp_path):
    db_path, _, archived_id = archived_db
    shutil.move(tmp_path / "archived_data", tmp_path / "moved_away")
    with BenchmarkDB(db_path) as db:
        with pytest.raises(ArchiveMissingError, match="archived Parquet file"):
            db.count(PerformanceResults)
        with pytest.raises(ArchiveMissingError):
            db.get(PerformanceResults, archived_id)
        assert db.count(Models) > 0  # not archived: still read


# -- 3. the limits of BenchmarkDBAPI.query() -----------------------------------------------------------------

BAD_TIMEOUTS = [0, -1, float("nan"), float("inf"), 1e300, "abc", True]
BAD_MAX_ROWS = [0, -1, 2.5, float("nan"), float("inf"), "abc", True, 2**64]


def test_query_refuses_limits_that_are_no_positive_finite_number(sample_db_path):
    with BenchmarkDBAPI(sample_db_path) as api:
        for value in BAD_TIMEOUTS:
            with pytest.raises(DataConversionError, match="timeout_s must be"):
                api.query("SELECT 1 AS x", timeout_s=value)
        for value in BAD_MAX_ROWS:
            with pytest.raises(DataConversionError, match="max_rows must be"):
                api.query("SELECT 1 AS x", max_rows=value)
        assert len(api.query("SELECT * FROM range(3)", max_rows=3, timeout_s=5)) == 3  # good ones still work


def test_api_refuses_zero_limits_rather_than_taking_them_for_the_default(sample_db_path):
    with pytest.raises(DataConversionError, match="query_max_rows must be"):
        BenchmarkDBAPI(sample_db_path, query_max_rows=0)
    with pytest.raises(DataConversionError, match="query_timeout_s must be"):
        BenchmarkDBAPI(sample_db_path, query_timeout_s=0)
    with pytest.raises(DataConversionError, match="query_timeout_s must be"):
        BenchmarkDBAPI(sample_db_path, query_timeout_s=float("inf"))
    api = BenchmarkDBAPI(sample_db_path)
    assert (api.query_max_rows, api.query_timeout_s) == (readonly_sql.DEFAULT_MAX_ROWS, readonly_sql.DEFAULT_TIMEOUT_S)


def test_execute_readonly_refuses_an_infinite_timeout_before_starting_its_timer(monkeypatch):
    crashed: list = []
    monkeypatch.setattr(threading, "excepthook", crashed.append)  # "Exception in thread ... OverflowError"
    conn = duckdb.connect()
    try:
        for value in (float("inf"), "abc"):
            with pytest.raises(DataConversionError, match="timeout_s"):
                readonly_sql.execute_readonly(conn, "SELECT 1", timeout_s=value)
        with pytest.raises(DataConversionError, match="max_rows"):
            readonly_sql.execute_readonly(conn, "SELECT 1", max_rows=-1)
    finally:
        conn.close()
    assert crashed == []


# -- 4. wrong types given to the ORM ---------------------------------------------------------------------------


def test_get_and_count_refuse_what_is_no_id_or_record_type(fresh_db):
    db = fresh_db
    for value in ("abc", None, 1.5, True, 2**70):
        with pytest.raises(DataConversionError, match="result_id must be an integer"):
            db.get(PerformanceResults, value)  # 'abc' was a raw duckdb ConversionException
    with pytest.raises(UsageError, match="get\\(\\) takes a record type"):
        db.get("performance_results", 1)
    with pytest.raises(UsageError, match="count\\(\\) takes a record type"):
        db.count(None)
    assert db.get(PerformanceResults, 42) is None and db.count(PerformanceResults) == 0


def test_a_record_without_a_required_field_is_db003_naming_it(fresh_db):
    db = fresh_db
    m, h = db.get_or_add_model("bert"), db.get_or_add_hardware("cpu")
    refused = [
        (lambda: db.insert_performance_results(PerformanceResults(run_id=None, model_id=None, hardware_id=None)),
         "^error DB003: model_id is required"),
        (lambda: db.insert_performance_results(PerformanceResults(model_id=m, hardware_id=None)), "hardware_id"),
        (lambda: db.insert(PerformanceResults(model_id=m, hardware_id=h, is_simulated=None)), "is_simulated"),
        (lambda: db.insert_models(Models(model_name=None)), "model_name is required"),
        (lambda: db.insert_test_runs(TestRuns(test_name=None)), "test_name is required"),
        (lambda: db.insert(IntegrationTestResults(test_name="t", status=None)), "status is required"),
        (lambda: db.insert(HardwareCompatibility(hardware_id=None)), "hardware_id is required"),
        (lambda: db.insert_many([RecordColumns(PerformanceResults, {"model_id": [m, None], "hardware_id": [h, h]})]),
         "row 1: model_id is required"),
        (lambda: db.insert_many([RecordColumns(PerformanceResults, {"model_id": [m]})]), "hardware_id is required"),
    ]
    for call, message in refused:
        with pytest.raises(DataConversionError, match=message):  # were duckdb ConstraintException NOT NULL
            call()
    assert db.count(PerformanceResults) == 0 and db.count(TestRuns) == 0
    assert db.insert(PerformanceResults(model_id=m, hardware_id=h, batch_size=1)) is not None


def test_insert_many_of_what_is_no_list_is_db000(fresh_db):
    db = fresh_db
    for value in (None, 5, "abc", {"model_name": "x"}, Models(model_name="x")):
        with pytest.raises(UsageError, match="insert_many\\(\\) takes a list of records"):
            db.insert_many(value)  # None was TypeError: 'NoneType' object is not iterable
    with pytest.raises(UsageError, match="insert_table\\(\\) takes a pyarrow Table"):
        db.insert_table(PerformanceResults, None)
    assert db.insert_many(iter([Models(model_name="from-a-generator")])) == [db.get_or_add_model("from-a-generator")]


def test_a_reference_id_of_the_wrong_type_is_db003(fresh_db):
    db = fresh_db
    m, h = db.get_or_add_model("bert"), db.get_or_add_hardware("cpu")
    with pytest.raises(DataConversionError, match="model_id must be an integer id, not 'abc'"):
        db.insert_performance_results(PerformanceResults(model_id="abc", hardware_id=h))  # was ConversionException
    with pytest.raises(DataConversionError, match="hardware_id must be an integer id"):  # was a TypeError
        db.insert_many([RecordColumns(PerformanceResults, {"model_id": [m, m], "hardware_id": [h, "x"]})])
    assert db.count(PerformanceResults) == 0


def test_insert_many_stays_one_transaction_when_duckdb_refuses_a_value(fresh_db):
    """What test_orm's NOT NULL cases checked, now that a missing required field is refused before writing."""
    db = fresh_db
    m, h = db.get_or_add_model("bert"), db.get_or_add_hardware("cpu")
    good = PerformanceResults(model_id=m, hardware_id=h, batch_size=1)
    with pytest.raises(DataConversionError, match="cannot store the TestRuns"):
        db.insert_many([good, TestRuns(test_name="t", started_at="notatime")])  # refused by DuckDB, second
    assert db.count(PerformanceResults) == 0 and db.count(TestRuns) == 0

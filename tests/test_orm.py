"""ORM layer: round trips, the guide's example verbatim, deterministic ids, bulk inserts."""
from __future__ import annotations

import datetime as dt
import subprocess
import sys
from dataclasses import fields

import pytest

from benchmark_db import identity
from benchmark_db.errors import DataConversionError
from benchmark_db_models import (
    BenchmarkDB,
    HardwareCompatibility,
    HardwarePlatforms,
    IntegrationTestResults,
    Models,
    PerformanceResults,
    RecordColumns,
    TestRuns,
    WebPlatformResults,
)

GUIDE_EXAMPLE = '''
import datetime
from benchmark_db_models import BenchmarkDB, TestRuns, PerformanceResults

# Connect to the database
db = BenchmarkDB(db_path="./benchmark_db.duckdb")

# Create a test run
test_run = TestRuns(
    test_name="model_benchmarks",
    test_type="performance",
    started_at=datetime.datetime.now(),
    success=True
)
run_id = db.insert_test_runs(test_run)

# Add a performance result
perf_result = PerformanceResults(
    run_id=run_id,
    model_id=db.get_or_add_model("bert-base-uncased"),
    hardware_id=db.get_or_add_hardware("cuda"),
    test_case="embedding",
    batch_size=32,
    precision="fp16",
    throughput_items_per_second=250.5,
    average_latency_ms=4.2,
    memory_peak_mb=2048.0
)
db.insert_performance_results(perf_result)
'''


@pytest.mark.slow  # about 1.2 s: outside make test-fast
def test_guide_orm_example_runs_verbatim(tmp_path, repo_root):
    env = {"PYTHONPATH": str(repo_root), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", GUIDE_EXAMPLE], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    with BenchmarkDB(str(tmp_path / "benchmark_db.duckdb")) as db:
        row = db.conn.execute("SELECT model, hardware, batch_size, precision, throughput, latency_ms, memory_mb, "
                              "test_name, model_family FROM benchmark_performance").fetchall()
    assert row == [("bert-base-uncased", "cuda", 32, "fp16", 250.5, 4.2, 2048.0, "model_benchmarks", "bert")]


def test_round_trip_of_every_record_type(fresh_db):
    db = fresh_db
    started = dt.datetime(2025, 3, 2, 10, 0, 0)
    model_id = db.get_or_add_model("t5-small", parameters_million=60.5)
    hw_id = db.get_or_add_hardware("CUDA", "NVIDIA A100", memory_gb=40.0)
    run_id = db.insert_test_runs(TestRuns(test_name="t", test_type="performance", started_at=started,
                                          environment={"torch": "2.13.0"}, git_commit="abc"))
    result = PerformanceResults(run_id=run_id, model_id=model_id, hardware_id=hw_id, batch_size=4,
                                average_latency_ms=3.5, latency_samples_ms=[3.4, 3.5, 3.6],
                                metrics={"cv": 0.02}, created_at=started)
    result_id = db.insert_performance_results(result)
    back = db.get(PerformanceResults, result_id)
    assert back.latency_samples_ms == [3.4, 3.5, 3.6] and back.metrics == {"cv": 0.02}
    assert back.model_name == "t5-small" and back.hardware_type == "cuda"
    assert db.get(TestRuns, run_id).environment == {"torch": "2.13.0"}
    hardware = db.get(HardwarePlatforms, hw_id)
    assert (hardware.hardware_type, hardware.device_name, hardware.memory_gb) == ("cuda", "NVIDIA A100", 40.0)
    assert db.get(Models, model_id).model_family == "t5"
    ids = [db.insert_hardware_compatibility(HardwareCompatibility(hardware_id=hw_id, model_id=model_id,
                                                                   run_id=run_id, is_compatible=False,
                                                                   error_message="no device")),
           db.insert_integration_test_results(IntegrationTestResults(test_name="test_x", status="pass",
                                                                     run_id=run_id)),
           db.insert_web_platform_results(WebPlatformResults(run_id=run_id, model_id=model_id, platform="webgpu",
                                                             adapter="SwiftShader", is_emulated=True))]
    assert all(isinstance(i, int) and i > 0 for i in ids)
    assert db.get(HardwareCompatibility, ids[0]).error_message == "no device"


@pytest.mark.slow  # over 0.35 s here: outside make test-fast
def test_ids_come_from_natural_keys_across_databases(tmp_path):
    ids = []
    for name in ("a", "b"):
        with BenchmarkDB(str(tmp_path / f"{name}.duckdb")) as db:
            if name == "b":  # other rows first must not shift anything
                db.get_or_add_model("vit-base")
            ids.append((db.get_or_add_model("bert-base-uncased"), db.get_or_add_hardware("cpu", "Xeon")))
    assert ids[0] == ids[1] == (identity.model_id_for("bert-base-uncased"), identity.hardware_id_for("cpu", "Xeon"))


def test_same_natural_key_replaces_instead_of_duplicating(fresh_db):
    db = fresh_db
    m, h = db.get_or_add_model("bert"), db.get_or_add_hardware("cpu")
    run = db.insert_test_runs(TestRuns(test_name="r", started_at=dt.datetime(2025, 1, 1)))
    first = db.insert_performance_results(PerformanceResults(run_id=run, model_id=m, hardware_id=h, batch_size=1,
                                                             average_latency_ms=5.0))
    second = db.insert_performance_results(PerformanceResults(run_id=run, model_id=m, hardware_id=h,
                                                              batch_size=1, average_latency_ms=6.0))
    assert first == second
    assert db.conn.execute("SELECT average_latency_ms FROM performance_results").fetchall() == [(6.0,)]


def test_dimension_merge_fills_gaps_and_never_blanks(fresh_db):
    db = fresh_db
    db.get_or_add_model("bert-base-uncased", parameters_million=110.0)
    db.get_or_add_model("bert-base-uncased", source="hub")  # no parameter count this time
    model = db.get(Models, identity.model_id_for("bert-base-uncased"))
    assert model.parameters_million == 110.0 and model.source == "hub"
    assert db.count(Models) == 1


def test_insert_many_is_one_transaction(fresh_db):
    db = fresh_db
    m, h = db.get_or_add_model("bert"), db.get_or_add_hardware("cpu")
    good = PerformanceResults(model_id=m, hardware_id=h, batch_size=1, average_latency_ms=1.0)
    bad = PerformanceResults(model_id=None, hardware_id=h, batch_size=2)  # NOT NULL model_id
    with pytest.raises(DataConversionError, match="row 1: model_id is required"):
        db.insert_many([good, bad])
    assert db.count(PerformanceResults) == 0
    ids = db.insert_many([good, PerformanceResults(model_id=m, hardware_id=h, batch_size=2)])
    assert len(set(ids)) == 2 and db.count(PerformanceResults) == 2


def test_transaction_groups_several_inserts(fresh_db):
    db = fresh_db
    with pytest.raises(RuntimeError), db.transaction():
        db.get_or_add_model("will-vanish")
        raise RuntimeError("abort")
    assert db.count(Models) == 0


def test_bad_names_are_db003(fresh_db):
    with pytest.raises(DataConversionError):
        fresh_db.get_or_add_model("  ")
    with pytest.raises(DataConversionError):
        fresh_db.get_or_add_hardware("")


@pytest.mark.parametrize("alias", ["cuda", "CUDA", "cuda:0", "gpu", "GPU"])
def test_hardware_aliases_are_one_platform(fresh_db, alias):
    assert fresh_db.get_or_add_hardware(alias) == identity.hardware_id_for("cuda")


def _rows(db, cls=PerformanceResults):
    names = ", ".join(f.name for f in fields(cls))
    return db.conn.execute(f"SELECT {names} FROM {cls.TABLE} ORDER BY {cls.ID}").fetchall()


@pytest.mark.slow  # over 0.35 s here: outside make test-fast
@pytest.mark.parametrize("rows", [3, 200])  # bound parameters for a few rows, an Arrow table for many
def test_columns_store_what_the_same_records_store(tmp_path, rows):
    stamp = dt.datetime(2025, 5, 1, 12, 0)

    def records(db):
        m, h = db.get_or_add_model("bert"), db.get_or_add_hardware("cpu")
        return [PerformanceResults(model_id=m, hardware_id=h, run_id=7, model_name="bert", hardware_type="CPU",
                                   batch_size=i + 1, average_latency_ms=i / 3, latency_samples_ms=[1.0, float(i)],
                                   metrics={"i": i} if i % 2 else None, created_at=stamp if i % 3 else None)
                for i in range(rows)]

    with BenchmarkDB(str(tmp_path / "records.duckdb")) as db:
        expected_ids = db.insert_many(records(db))
        expected = _rows(db)
    with BenchmarkDB(str(tmp_path / "columns.duckdb")) as db:
        given = records(db)
        names = [f.name for f in fields(PerformanceResults) if f.name not in ("result_id", "is_simulated")]
        batch = RecordColumns(PerformanceResults, {n: [getattr(r, n) for r in given] for n in names})
        assert len(batch) == rows
        ids = db.insert_many([batch])
        stored = _rows(db)
    assert ids == expected_ids  # ids derived from the natural key when left out
    created = [f.name for f in fields(PerformanceResults)].index("created_at")
    assert [r[:created] + r[created + 1:] for r in stored] == [r[:created] + r[created + 1:] for r in expected]
    assert all(r[created] is not None for r in stored)  # filled with the time of the write
    assert {r[4] for r in stored} == {"cpu"}  # hardware types normalised, is_simulated defaulted to False


def test_one_time_in_every_row_stores_as_many_equal_times_do(fresh_db):
    """A TIMESTAMP column with one time object in every row is converted once; it stores as the same times
    given as separate objects do (an aware time in UTC, naive)."""
    db = fresh_db
    m, h = db.get_or_add_model("bert"), db.get_or_add_hardware("cpu")
    aware = dt.datetime(2025, 1, 1, 12, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    n = 100
    separate = [aware + dt.timedelta(0) for _ in range(n)]
    assert separate[0] is not separate[-1]
    for run, stamps in ((1, [aware] * n), (2, separate), (3, None)):
        columns = {"model_id": [m] * n, "hardware_id": [h] * n, "run_id": [run] * n, "batch_size": list(range(1, n + 1))}
        db.insert_many([RecordColumns(PerformanceResults, columns if stamps is None else
                                      {**columns, "created_at": stamps})])
    ten = dt.datetime(2025, 1, 1, 10)
    stored = db.conn.execute("SELECT run_id, count(*), count(DISTINCT created_at), min(created_at) "
                             "FROM performance_results GROUP BY run_id ORDER BY run_id").fetchall()
    assert stored[:2] == [(1, n, 1, ten), (2, n, 1, ten)]
    assert stored[2][:3] == (3, n, 1)  # filled with the time of the write


def test_columns_and_records_share_one_transaction_and_the_last_row_wins(fresh_db):
    db = fresh_db
    m, h = db.get_or_add_model("bert"), db.get_or_add_hardware("cpu")
    single = PerformanceResults(model_id=m, hardware_id=h, run_id=1, batch_size=1, average_latency_ms=1.0)
    batch = RecordColumns(PerformanceResults, {"model_id": [m, m], "hardware_id": [h, h], "run_id": [1, 1],
                                               "batch_size": [1, 2], "average_latency_ms": [2.0, 3.0]})
    ids = db.insert_many([single, batch])
    assert len(ids) == 3 and ids[0] == ids[1] != ids[2]  # same natural key: the batch's row replaced the first
    assert db.conn.execute("SELECT batch_size, average_latency_ms, model_name FROM performance_results "
                           "ORDER BY batch_size").fetchall() == [(1, 2.0, "bert"), (2, 3.0, "bert")]
    broken = RecordColumns(PerformanceResults, {"model_id": [m, None], "hardware_id": [h, h], "batch_size": [5, 6]})
    with pytest.raises(DataConversionError, match="row 1: model_id is required"):
        db.insert_many([PerformanceResults(model_id=m, hardware_id=h, batch_size=4), broken])
    assert db.count(PerformanceResults) == 2


def test_rows_marked_new_skip_the_lookup_and_the_others_replace(fresh_db):
    db = fresh_db
    m, h = db.get_or_add_model("bert"), db.get_or_add_hardware("cpu")
    first = db.insert_performance_results(PerformanceResults(model_id=m, hardware_id=h, run_id=3, batch_size=1,
                                                             average_latency_ms=1.0))
    columns = {"model_id": [m, m], "hardware_id": [h, h], "run_id": [3, 3], "batch_size": [1, 2],
               "average_latency_ms": [5.0, 6.0], "result_id": [first, identity.stable_id("fresh", 1)]}
    ids = db.insert_many([RecordColumns(PerformanceResults, columns, new=[False, True])])
    assert ids == [first, identity.stable_id("fresh", 1)]
    assert db.conn.execute("SELECT result_id, average_latency_ms FROM performance_results ORDER BY batch_size"
                           ).fetchall() == [(first, 5.0), (ids[1], 6.0)]


def test_bad_columns_are_db003(fresh_db):
    with pytest.raises(DataConversionError):
        RecordColumns(PerformanceResults, {"model_id": [1, 2], "hardware_id": [1]})
    with pytest.raises(DataConversionError):
        fresh_db.insert_many([RecordColumns(PerformanceResults, {"model_id": [1], "hardware_id": [1], "colour": [1]})])
    with pytest.raises(DataConversionError):
        fresh_db.insert_many([RecordColumns(dict, {"a": [1]})])


@pytest.mark.slow  # over 0.35 s here: outside make test-fast
def test_few_rows_of_any_python_or_numpy_values_store_as_many_do(tmp_path):
    """A few rows are bound as parameters, more go through Arrow; numpy values and aware times store alike."""
    import numpy as np

    def rows(db, n):
        m, h = db.get_or_add_model("bert"), db.get_or_add_hardware("cpu")
        return [PerformanceResults(model_id=m, hardware_id=h, run_id=1, batch_size=np.int64(i + 1) if i % 2 else i + 1,
                                   average_latency_ms=np.float32(1.5) if i % 3 else 1.5,
                                   latency_samples_ms=np.array([1.0, 2.0]) if i % 2 else [1.0, 2],
                                   iterations=7, is_simulated=np.bool_(i % 2 == 0),
                                   created_at=dt.datetime(2025, 1, 1, 12, tzinfo=dt.timezone(dt.timedelta(hours=2)))
                                   if i % 2 else dt.datetime(2025, 1, 1, 10)) for i in range(n)]

    stored = []
    for n in (4, 100):
        with BenchmarkDB(str(tmp_path / f"{n}.duckdb")) as db:
            db.insert_many(rows(db, n))
            stored.append([r for r in _rows(db) if r[6] <= 4])  # batch_size is the row's number + 1
    assert sorted(stored[0]) == sorted(stored[1])
    assert {(r[6], r[10], tuple(r[20]), r[23].hour) for r in stored[0]} == {(i, 1.5, (1.0, 2.0), 10) for i in range(1, 5)}


@pytest.mark.slow  # over 0.35 s here: outside make test-fast
def test_fact_table_stores_what_insert_many_stores_and_replaces_alike(tmp_path):
    from benchmark_db_models import fact_table

    stamp = dt.datetime(2025, 5, 1, 12, 0)

    def records(db, latency):
        m, h = db.get_or_add_model("bert"), db.get_or_add_hardware("cpu")
        return [PerformanceResults(model_id=m, hardware_id=h, run_id=7, model_name=None if i == 1 else "bert",
                                   hardware_type="CPU", batch_size=i % 3 + 1, average_latency_ms=latency + i,
                                   latency_samples_ms=[1.0, float(i)], metrics={"i": i} if i % 2 else None,
                                   created_at=stamp)
                for i in range(5)]  # batch sizes 1, 2, 3, 1, 2: rows 3 and 4 repeat the ids of rows 0 and 1

    with BenchmarkDB(str(tmp_path / "records.duckdb")) as db:
        db.insert_many(records(db, 10.0))
        db.insert_many(records(db, 20.0))  # the same ids again: replaced
        expected = _rows(db)
    with BenchmarkDB(str(tmp_path / "table.duckdb")) as db:
        columns = db.fact_columns(PerformanceResults)
        for latency in (10.0, 20.0):
            with db.transaction():
                assert db.insert_table(PerformanceResults, fact_table(PerformanceResults, records(db, latency),
                                                                      columns, stamp)) == 3
        assert _rows(db) == expected
    assert len(expected) == 3 and {r[3] for r in expected} == {"bert"}  # the missing name filled in
    with pytest.raises(DataConversionError):
        fact_table(Models, [Models(model_name="bert")], [], stamp)


@pytest.mark.parametrize("rows", [1, 100])  # bound parameters for a few rows, an Arrow table for many
def test_a_value_of_the_wrong_type_is_db003_and_stores_nothing(tmp_path, rows):
    with BenchmarkDB(str(tmp_path / "t.duckdb")) as db:
        with pytest.raises(DataConversionError, match="cannot store the TestRuns"):
            db.insert_many([TestRuns(test_name=f"run{i}", started_at="notatime") for i in range(rows)])
        assert db.count(TestRuns) == 0

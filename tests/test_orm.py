"""ORM layer: round trips, the guide's example verbatim, deterministic ids, bulk inserts."""
from __future__ import annotations

import datetime as dt
import subprocess
import sys

import duckdb
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
    with pytest.raises(duckdb.ConstraintException):
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

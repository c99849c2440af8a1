"""Team mode on DuckLake with a real PostgreSQL catalog: schema, concurrent writers, the tools on a lake."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import pytest

from benchmark_db.connection import connect

pytestmark = pytest.mark.postgres
REPO = __import__("pathlib").Path(__file__).resolve().parents[1]

WRITER = textwrap.dedent("""
    import sys, time, datetime as dt
    sys.path.insert(0, {repo!r})
    from benchmark_db_models import BenchmarkDB, PerformanceResults, TestRuns
    target, worker, start_at, count = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
    db = BenchmarkDB(target)
    model = db.get_or_add_model("bert-base-uncased")
    hardware = db.get_or_add_hardware("cpu")
    run = db.insert_test_runs(TestRuns(test_name=f"worker-{{worker}}", started_at=dt.datetime(2025, 1, 1)))
    while time.time() < start_at:
        time.sleep(0.005)
    # each worker stores its results in commits of 25, as a CI job storing its run would
    for first in range(0, count, 25):
        db.insert_many([PerformanceResults(run_id=run, model_id=model, hardware_id=hardware, batch_size=i,
                                           average_latency_ms=1.0 + i) for i in range(first, first + 25)])
    db.close()
    print("done", worker)
""")


def test_lake_has_the_schema_and_views(lake_target):
    conn = connect(lake_target, read_only=True)
    for view in ("benchmark_performance", "latest_performance_metrics", "cross_platform_performance"):
        conn.execute(f"SELECT * FROM {view} LIMIT 1").fetchall()
    assert conn.execute("SELECT max(version) FROM schema_migrations").fetchone()[0] >= 3


@pytest.mark.slow
def test_four_processes_write_250_results_each_at_the_same_moment(lake_target):
    script = WRITER.format(repo=str(REPO))
    start_at = time.time() + 4.0  # every process connected and warmed up before the gate opens
    env = dict(os.environ)
    procs = [subprocess.Popen([sys.executable, "-c", script, lake_target, str(w), str(start_at), "250"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for w in range(4)]
    outputs = [p.communicate(timeout=300) for p in procs]
    for proc, (_out, err) in zip(procs, outputs):
        assert proc.returncode == 0, err[-2000:]
    conn = connect(lake_target, read_only=True)
    assert conn.execute("SELECT count(*) FROM performance_results").fetchone()[0] == 1000
    assert conn.execute("SELECT count(DISTINCT result_id) FROM performance_results").fetchone()[0] == 1000
    # the shared dimension rows are one model and one platform as the views see them
    assert conn.execute("SELECT count(DISTINCT model), count(DISTINCT hardware), count(*) "
                        "FROM benchmark_performance").fetchone() == (1, 1, 1000)


APPENDER = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {repo!r})
    import pyarrow as pa
    from benchmark_db.connection import connect, transaction
    target, worker, start_at, count = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
    conn = connect(target)
    while time.time() < start_at:
        time.sleep(0.005)
    for i in range(count):
        with transaction(conn):
            conn.register("one", pa.table({{"result_id": [worker * 100000 + i], "model_id": [1],
                                            "hardware_id": [1], "batch_size": [i]}}))
            conn.execute("INSERT INTO performance_results (result_id, model_id, hardware_id, batch_size) "
                         "SELECT * FROM one")
            conn.unregister("one")
    print("done", worker)
""")


@pytest.mark.slow
def test_four_processes_appending_at_the_same_moment_lose_and_duplicate_nothing(lake_target):
    start_at = time.time() + 3.0
    procs = [subprocess.Popen([sys.executable, "-c", APPENDER.format(repo=str(REPO)), lake_target, str(w),
                               str(start_at), "10"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for w in range(4)]
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-2000:]
    conn = connect(lake_target, read_only=True)
    assert conn.execute("SELECT count(*), count(DISTINCT result_id) FROM performance_results").fetchone() == (40, 40)


def test_create_schema_script_with_sample_data_on_a_lake(lake_target, capsys):
    from scripts.create_benchmark_schema import main

    assert main(["--output", lake_target, "--sample-data", "--format", "json"]) == 0
    assert main(["--output", lake_target, "--sample-data", "--format", "json"]) == 0  # idempotent
    conn = connect(lake_target, read_only=True)
    assert conn.execute("SELECT count(*) FROM performance_results").fetchone()[0] == 361

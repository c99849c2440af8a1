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
        db.insert_many([PerformanceResults(run_id=run, model_id=model, hardware_id=hardware, batch_size=i + 1,
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


@pytest.mark.slow
def test_the_tools_work_on_a_lake_as_on_a_file(lake_target, corpus_dir, tmp_path, capsys):
    """Converter, runner, query report and the Python API, each given --db ducklake:postgres:..."""
    import shutil

    import benchmark_db_converter
    import benchmark_db_query
    from benchmark_db_api import BenchmarkDBAPI
    from runners import run_model_benchmarks

    inputs = tmp_path / "performance_results"
    shutil.copytree(corpus_dir / "performance_results", inputs)
    assert benchmark_db_converter.main(["--input-dir", str(inputs), "--output-db", lake_target, "--quiet"]) == 0
    assert benchmark_db_converter.main(["--input-dir", str(inputs), "--output-db", lake_target, "--quiet"]) == 0
    conn = connect(lake_target, read_only=True)
    files = conn.execute("SELECT count(*) FROM ingested_files WHERE status = 'ingested'").fetchone()[0]
    converted = conn.execute("SELECT count(*) FROM performance_results").fetchone()[0]
    conn.close()
    assert files > 0 and converted > 0

    assert run_model_benchmarks.main(["--db", lake_target, "--models-set", "small", "--model", "bert-tiny-random",
                                      "--hardware", "cpu", "--batch-sizes", "1", "--min-duration", "0.05",
                                      "--quiet"]) == 0
    api = BenchmarkDBAPI(db_path=lake_target)
    api.store_performance_result(model_name="bert-base-uncased", hardware_type="cuda", throughput=250.5,
                                 latency_avg=4.2, batch_size=32, precision="fp16")
    frame = api.get_performance_metrics(model_name="bert-base-uncased", hardware_type="cuda")
    assert len(frame) == 1
    capsys.readouterr()
    assert benchmark_db_query.main(["--db", lake_target, "--report", "performance", "--format", "json"]) == 0
    report = capsys.readouterr().out
    assert "bert-tiny-random" in report and "bert-base-uncased" in report
    conn = connect(lake_target, read_only=True)
    measured = conn.execute("SELECT count(*) FROM performance_results WHERE model_name = 'bert-tiny-random' "
                            "AND hardware_type = 'cpu' AND len(latency_samples_ms) > 0").fetchone()[0]
    assert measured == 1
    assert conn.execute("SELECT count(*) FROM performance_results").fetchone()[0] == converted + 2


def test_api_server_on_a_lake(lake_target):
    from fastapi.testclient import TestClient

    from benchmark_db_server import ServerSettings, create_app

    app = create_app(ServerSettings(db_path=lake_target, idle_release=0.1, query_timeout_s=5.0,
                                    query_max_rows=1000))
    with TestClient(app) as client:
        assert client.get("/health").status_code == 200
        body = {"model_name": "t5-small", "hardware_type": "cpu", "throughput": 80.0, "latency_avg": 12.5}
        assert client.post("/performance", json=body).status_code in (200, 201)
        rows = [dict(body, batch_size=b) for b in (2, 4, 8)]
        assert client.post("/performance/batch", json={"results": rows}).status_code in (200, 201)
        got = client.get("/performance", params={"model_name": "t5-small"}).json()
        items = got["items"] if isinstance(got, dict) and "items" in got else got
        assert len(items) == 4
        answer = client.post("/query", json={"sql": "SELECT count(*) AS n FROM performance_results"})
        assert answer.status_code == 200, answer.text
        assert client.post("/query", json={"sql": "DROP TABLE models"}).status_code == 400


def test_maintenance_on_a_lake_compacts_and_says_what_does_not_apply(lake_target, tmp_path, capsys):
    import benchmark_db_maintenance
    from scripts.create_benchmark_schema import main as create

    assert create(["--output", lake_target, "--sample-data"]) == 0
    capsys.readouterr()
    code = benchmark_db_maintenance.main(["--db", lake_target, "--optimize-db", "--vacuum", "--check-integrity",
                                          "--backup", "--backup-dir", str(tmp_path / "b"), "--format", "json"])
    out = capsys.readouterr().out
    assert code == 0, out
    steps = {row["step"]: row for row in __import__("json").loads(out)["steps"]}  # with the integrity problems
    assert steps["check-integrity"]["status"] == "ok"
    assert steps["vacuum"]["status"] == "ok" and "lake compacted" in steps["vacuum"]["result"]
    assert steps["backup"]["status"] == "n/a" and "pg_dump" in steps["backup"]["result"]
    assert not (tmp_path / "b").exists()
    conn = connect(lake_target, read_only=True)
    assert conn.execute("SELECT count(*) FROM performance_results").fetchone()[0] == 361

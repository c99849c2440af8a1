#!/usr/bin/env python3
"""Write throughput with 1, 2 and 4 concurrent writer processes: DuckLake (PostgreSQL catalog) vs one file.

    python benchmarks/bench_team.py [--results 200] [--commit-size 25]

Starts a throw-away PostgreSQL on 127.0.0.1 (Debian package `postgresql`), creates a lake with the schema,
and runs N writer processes at the same moment, each storing `--results` performance results through the ORM
in commits of `--commit-size`. The same is done against a single DuckDB file, where the writers take turns
on the file lock (DuckDB allows one writing process). Prints rows/s per setup and checks every row arrived.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmark_db.connection import connect  # noqa: E402

WRITER = textwrap.dedent("""
    import sys, time, datetime as dt
    sys.path.insert(0, {repo!r})
    from benchmark_db_models import BenchmarkDB, PerformanceResults, TestRuns
    target, worker, start_at, count, size = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    while time.time() < start_at:
        time.sleep(0.002)
    run = TestRuns(test_name=f"worker-{{worker}}", started_at=dt.datetime(2025, 1, 1))
    for first in range(0, count, size):
        with BenchmarkDB(target, lock_timeout=600) as db:  # short-lived writer: open, store, close
            model, hardware = db.get_or_add_model("bert-base-uncased"), db.get_or_add_hardware("cpu")
            if first == 0:  # the run is stored once, with its first results
                db.insert_test_runs(run)
            db.insert_many([PerformanceResults(run_id=run.run_id, model_id=model, hardware_id=hardware, batch_size=i + 1,
                                               average_latency_ms=1.0 + i)
                            for i in range(first, min(first + size, count))])
""")


def run_writers(target: str, writers: int, results: int, size: int) -> float:
    start_at = time.time() + 3.0
    procs = [subprocess.Popen([sys.executable, "-c", WRITER.format(repo=str(REPO)), target, str(w), str(start_at),
                               str(results), str(size)], stderr=subprocess.PIPE, text=True) for w in range(writers)]
    for proc in procs:
        _, err = proc.communicate(timeout=1800)
        if proc.returncode:
            raise SystemExit(f"writer failed: {err[-1000:]}")
    elapsed = time.time() - start_at
    rows = connect(target, read_only=True).execute("SELECT count(*) FROM performance_results").fetchone()[0]
    if rows != writers * results:
        raise SystemExit(f"{target}: expected {writers * results} rows, found {rows}")
    return elapsed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=int, default=200, help="results per writer")
    parser.add_argument("--commit-size", type=int, default=25)
    args = parser.parse_args(argv)
    from tests.postgres_server import PostgresServer

    server = PostgresServer()
    reason = server.available()
    if reason:
        print(f"skipped: {reason}")
        return 0
    server.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            print(f"{args.results} results per writer, commits of {args.commit_size}")
            print(f"{'writers':>7}  {'DuckLake+PostgreSQL rows/s':>27}  {'one DuckDB file rows/s':>23}")
            for writers in (1, 2, 4):
                dsn = server.create_database(f"bench_{uuid.uuid4().hex[:8]}")
                target = f"ducklake:postgres:{dsn}"
                os.environ["BENCHMARK_DB_DATA_PATH"] = f"{tmp}/lake_{writers}"
                connect(target).close()
                lake = run_writers(target, writers, args.results, args.commit_size)
                path = f"{tmp}/file_{writers}.duckdb"
                connect(path).close()
                single = run_writers(path, writers, args.results, args.commit_size)
                total = writers * args.results
                print(f"{writers:>7}  {total / lake:>27,.0f}  {total / single:>23,.0f}")
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

#!/usr/bin/env python3
"""Figures for maintenance and CI merging, measured here and printed (nothing is asserted).

    python benchmarks/bench_maintenance.py [--rows 200000] [--jobs 6]

1. vacuum: a database with --rows bulk results deleted again (and --rows/10 written after them, so the freed
   blocks sit inside the file): bytes before and after, seconds.
2. backup: plain and gzip-compressed backup of the sample database plus --rows results: bytes, seconds,
   and restore seconds (verification included), against a plain file copy of the same database (baseline).
3. merge: --jobs job databases (sample data, overlapping models) merged with the CI integrator, then the same
   again (must add nothing): seconds per job and rows.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _bulk(conn, rows: int, start: int = 10_000_000) -> None:
    conn.execute("INSERT INTO performance_results (result_id, model_id, hardware_id, model_name, test_case, "
                 "batch_size, average_latency_ms, latency_samples_ms, created_at) "
                 f"SELECT {start} + i, 1, 1, 'bulk', 'inference', 1, 1.0 + random(), "
                 "[random() for _ in range(20)], TIMESTAMP '2025-01-01' FROM range(?) t(i)", [rows])
    conn.execute("CHECKPOINT")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--jobs", type=int, default=6)
    args = parser.parse_args()

    from benchmark_db.connection import connect
    from benchmark_db.maintenance import backup, optimize
    from scripts.ci_benchmark_integrator import integrate_artifacts
    from scripts.create_benchmark_schema import create_database

    work = Path(tempfile.mkdtemp(prefix="bench_maintenance_"))
    try:
        db = str(work / "bench.duckdb")
        create_database(db, sample_data=True)

        conn = connect(db)
        _bulk(conn, args.rows)
        _bulk(conn, args.rows // 10, start=20_000_000)  # rows written later keep the freed blocks inside the file
        conn.execute("DELETE FROM performance_results WHERE result_id BETWEEN 10000000 AND 19999999")
        conn.execute("CHECKPOINT")
        started = time.perf_counter()
        result = optimize.vacuum_database(conn, db)
        seconds = time.perf_counter() - started
        print(f"vacuum: {args.rows} rows deleted: {result['bytes_before']} -> {result['bytes_after']} bytes "
              f"({result['bytes_after'] / result['bytes_before']:.1%} of before) in {seconds:.2f} s")

        conn = connect(db)
        _bulk(conn, args.rows, start=30_000_000)
        size = Path(db).stat().st_size
        started = time.perf_counter()
        shutil.copyfile(db, work / "plain_copy.duckdb")
        copy_s = time.perf_counter() - started
        print(f"baseline: plain file copy of {size} bytes in {copy_s:.2f} s")
        for compress in (False, True):
            started = time.perf_counter()
            made = backup.create_backup(conn, db, work / "bk", compress=compress)
            backup_s = time.perf_counter() - started
            started = time.perf_counter()
            backup.restore_backup(made["backup"], work / f"restored_{compress}.duckdb")
            restore_s = time.perf_counter() - started
            print(f"backup{' (gzip)' if compress else ''}: {made['rows']} rows, {size} -> {made['size_bytes']} bytes "
                  f"in {backup_s:.2f} s ({backup_s / copy_s:.1f}x the plain copy; checkpoint, checksums and "
                  f"verification included); verified restore in {restore_s:.2f} s")
        conn.close()

        artifacts = work / "artifacts"
        for i in range(args.jobs):
            job = artifacts / f"job{i}"
            job.mkdir(parents=True)
            create_database(str(job / "benchmark.duckdb"), sample_data=True)
        conn = connect(str(work / "consolidated.duckdb"))
        for attempt in ("first", "second"):
            started = time.perf_counter()
            report = integrate_artifacts(conn, artifacts)
            seconds = time.perf_counter() - started
            added = sum(r["performance"] for r in report)
            print(f"merge ({attempt} run): {args.jobs} job databases in {seconds:.2f} s "
                  f"({seconds / args.jobs:.2f} s per job), {added} performance rows added")
        conn.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

#!/usr/bin/env python3
"""Figures for `benchmark_db_migration.py --validate` on a large database, measured here and printed.

    python benchmarks/bench_validate.py [--rows 1000000] [--samples 100]

Builds a database of --rows performance results with --samples raw latency samples each (one row in a
thousand 1000x off in one figure, as a unit mistake would be), then times `validation.find_problems` against
a baseline run in the same process: one scan that computes every row's sample median, the least any check of
the samples must read. Prints seconds, the ratio and the problems found. Nothing is asserted.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def build_database(path: Path, rows: int, samples: int) -> float:
    """Create `path` with `rows` results of `samples` samples each; return the seconds it took."""
    from benchmark_db.connection import connect
    from benchmark_db.identity import hardware_id_for, model_id_for

    started = time.perf_counter()
    conn = connect(str(path))
    try:
        conn.execute("BEGIN TRANSACTION")
        model, hardware = model_id_for("bert-base-uncased"), hardware_id_for("cpu", "bench cpu")
        conn.execute("INSERT INTO models (model_id, model_name) VALUES (?, 'bert-base-uncased')", [model])
        conn.execute("INSERT INTO hardware_platforms (hardware_id, hardware_type, device_name) "
                     "VALUES (?, 'cpu', 'bench cpu')", [hardware])
        # latency around 10 ms per item; every 1000th row has its p50 in seconds (a unit mistake to find); each
        # row a configuration of its own (sequence length), so that none is a duplicate of another
        conn.execute(f"""
            INSERT INTO performance_results (result_id, model_id, hardware_id, model_name, hardware_type,
                test_case, batch_size, sequence_length, precision, average_latency_ms, latency_p50_ms,
                throughput_items_per_second, iterations, latency_samples_ms, is_simulated)
            SELECT i, {model}, {hardware}, 'bert-base-uncased', 'cpu', 'inference', 1, 1 + i, 'fp32', lat,
                   CASE WHEN i % 1000 = 0 THEN lat / 1000 ELSE lat END, 1000.0 / lat, {samples},
                   list_transform(range({samples}), k -> lat * (0.9 + 0.2 * ((i * 7919 + k * 104729) % 1000)
                                                               / 1000.0)),
                   false
            FROM (SELECT i, 10.0 + (i % 97) / 10.0 AS lat FROM range({rows}) t(i))""")
        conn.execute("COMMIT")
        conn.execute("CHECKPOINT")
    finally:
        conn.close()
    return time.perf_counter() - started


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=100)
    args = parser.parse_args(argv)

    from benchmark_db import validation
    from benchmark_db.connection import connect

    with tempfile.TemporaryDirectory(prefix="bench_validate_") as work:
        db = Path(work) / "validate.duckdb"
        built = build_database(db, args.rows, args.samples)
        print(f"database: {args.rows:,} results x {args.samples} samples, built in {built:.1f} s, "
              f"{db.stat().st_size / 1e6:,.0f} MB")
        conn = connect(str(db), read_only=True)
        try:
            started = time.perf_counter()
            conn.execute("SELECT sum(list_median(latency_samples_ms)) FROM performance_results").fetchone()
            baseline = time.perf_counter() - started
            started = time.perf_counter()
            problems = validation.find_problems(conn)
            validate = time.perf_counter() - started
        finally:
            conn.close()
    by_check: dict[str, int] = {}
    for problem in problems:
        by_check[problem["check"]] = by_check.get(problem["check"], 0) + 1
    print(f"baseline (every row's sample median, one scan): {baseline:.2f} s")
    print(f"find_problems: {validate:.2f} s, ratio {validate / baseline:.1f}x the baseline; "
          f"{len(problems):,} problems {by_check}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""How fast BenchmarkDB.insert_many writes performance rows, beside a plain DuckDB INSERT ... SELECT.

    python benchmarks/bench_orm.py [--rows 100000] [--repeat 3]

All write the same rows into fresh database files in this process: the ORM from 100,000 PerformanceResults
objects (ids derived, dimensions joined, one transaction), the ORM from the same rows as one RecordColumns
(one list per field, as the REST server's batch endpoint hands them over), and the baseline from a ready
Arrow table of the same rows with `INSERT INTO performance_results SELECT * FROM arrow_table`. Prints rows/s
of each and the ratios.
"""
from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmark_db.connection import connect  # noqa: E402
from benchmark_db_models import BenchmarkDB, PerformanceResults, RecordColumns  # noqa: E402


def make_records(n: int, db: BenchmarkDB) -> list[PerformanceResults]:
    rng = random.Random(1)
    models = [db.get_or_add_model(f"model-{i}") for i in range(50)]
    hardware = [db.get_or_add_hardware(h) for h in ("cpu", "cuda", "openvino", "rocm")]
    start = dt.datetime(2025, 1, 1)
    out = []
    for i in range(n):
        latency = rng.uniform(1, 100)
        batch = 2 ** (i % 6)
        out.append(PerformanceResults(
            # 300 = lcm(50 models, 4 platforms, 6 batch sizes): natural keys are unique within a run
            run_id=i // 300, model_id=models[i % 50], hardware_id=hardware[i % 4], test_case="inference",
            batch_size=batch, sequence_length=128, precision="fp32", average_latency_ms=latency,
            latency_p50_ms=latency, latency_p90_ms=latency * 1.1, throughput_items_per_second=batch * 1000 / latency,
            memory_peak_mb=512.0, iterations=100, is_simulated=False, metrics={"i": i},
            created_at=start + dt.timedelta(seconds=i)))
    return out


def bench_orm(rows: int, folder: Path, k: int) -> float:
    path = folder / f"orm{k}.duckdb"
    with BenchmarkDB(str(path)) as db:
        records = make_records(rows, db)
        t0 = time.perf_counter()
        db.insert_many(records)
        elapsed = time.perf_counter() - t0
        assert db.count(PerformanceResults) == rows
    return elapsed


def bench_columns(rows: int, folder: Path, k: int) -> float:
    from dataclasses import fields

    path = folder / f"columns{k}.duckdb"
    with BenchmarkDB(str(path)) as db:
        records = make_records(rows, db)
        names = [f.name for f in fields(PerformanceResults) if f.name != "result_id"]
        batch = RecordColumns(PerformanceResults, {n: [getattr(r, n) for r in records] for n in names})
        t0 = time.perf_counter()
        db.insert_many([batch])
        elapsed = time.perf_counter() - t0
        assert db.count(PerformanceResults) == rows
    return elapsed


def bench_plain(rows: int, folder: Path, k: int) -> float:
    path = folder / f"plain{k}.duckdb"
    with BenchmarkDB(str(path)) as db:
        records = make_records(rows, db)
        # the ORM's own work (ids, JSON text, names) is done before the clock starts: the baseline is the
        # cost of DuckDB ingesting a ready Arrow table
        db._prepare(PerformanceResults, records, dt.datetime(2025, 1, 1))
        from dataclasses import fields

        import pyarrow as pa

        from benchmark_db_models import _arrow_type, _json_text
        names = {f.name for f in fields(PerformanceResults)}
        cols = [(c, t) for c, t in db._columns("performance_results") if c in names]
        table = pa.table({c: pa.array([_json_text(getattr(r, c)) if c == "metrics" else getattr(r, c)
                                        for r in records], type=_arrow_type(t)) for c, t in cols})
        conn = db.conn
        conn.register("arrow_rows", table)
        t0 = time.perf_counter()
        conn.execute(f"INSERT INTO performance_results ({', '.join(c for c, _ in cols)}) "
                     f"SELECT {', '.join(c for c, _ in cols)} FROM arrow_rows")
        elapsed = time.perf_counter() - t0
    return elapsed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        connect(str(folder / "warm.duckdb")).close()
        orm = statistics.median(bench_orm(args.rows, folder, k) for k in range(args.repeat))
        columns = statistics.median(bench_columns(args.rows, folder, k) for k in range(args.repeat))
        plain = statistics.median(bench_plain(args.rows, folder, k) for k in range(args.repeat))
    print(f"rows: {args.rows:,}")
    print(f"BenchmarkDB.insert_many: {orm:.3f} s  -> {args.rows / orm:,.0f} rows/s (target >= 50,000)")
    print(f"BenchmarkDB.insert_many of one RecordColumns: {columns:.3f} s  -> {args.rows / columns:,.0f} rows/s")
    print(f"plain INSERT ... SELECT from Arrow: {plain:.3f} s  -> {args.rows / plain:,.0f} rows/s")
    print(f"ratio ORM time / plain time: {orm / plain:.2f}x objects, {columns / plain:.2f}x columns")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

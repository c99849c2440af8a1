#!/usr/bin/env python3
"""Ingest benchmark: files/s, peak memory, database and Parquet size on a generated legacy-shaped corpus.

    python benchmarks/bench_ingest.py [--files 20000] [--parallel N] [--corpus-dir DIR]

The corpus comes from ../shared/tools/gen_scale_corpus.py (copies of real legacy files with their numbers,
timestamps and model names changed) and is cached in the temp folder. The baseline, timed in the same run
over the same files, is a plain loop of `json.load` per file; the ratio ingest time / baseline time is the
figure to watch (target: 4 or less). Peak RSS is the largest resident set of this process and its workers together.
Targets: database (with every original document kept) at most 20% of the input JSON bytes; Parquet export
of the result tables at most 10% (the export also holds the originals, so that it can be merged elsewhere as a
CI artifact; that total is printed beside it).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
GENERATOR = REPO.parent / "shared" / "tools" / "gen_scale_corpus.py"


def corpus(files: int, seed: int, cache: Path | None) -> Path:
    out = cache or Path(tempfile.gettempdir()) / f"bench_ingest_corpus_{files}_{seed}"
    marker = out / ".complete"
    if not marker.exists():
        print(f"generating {files} files into {out} ...", file=sys.stderr)
        subprocess.run([sys.executable, str(GENERATOR), str(out), "--files", str(files), "--seed", str(seed)],
                       check=True, stdout=sys.stderr)
        marker.write_text("ok\n")
    return out


def json_load_baseline(paths: list[str]) -> float:
    start = time.perf_counter()
    for p in paths:
        with open(p, "rb") as fh:
            json.load(fh)
    return time.perf_counter() - start


class PeakRSS:
    """Peak resident memory of this process plus its worker processes.

    This process's own peak comes from the kernel (ru_maxrss), exact and free. The workers' memory adds to
    it only while they run, so with workers the total is also sampled every 100 ms; sampling every 20 ms
    cost the ingest about 7% of a core (psutil walks /proc under the GIL)."""

    def __init__(self, with_children: bool):
        import psutil

        self.proc = psutil.Process()
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True) if with_children else None

    def _sample(self) -> int:
        total = self.proc.memory_info().rss
        for child in self.proc.children(recursive=True):
            try:
                total += child.memory_info().rss
            except Exception:
                pass
        return total

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self._sample())
            self._stop.wait(0.1)

    def __enter__(self):
        if self._thread:
            self._thread.start()
        return self

    def __exit__(self, *exc):
        import resource

        self._stop.set()
        if self._thread:
            self._thread.join()
        own_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux
        self.peak = max(self.peak, own_peak, self._sample())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--parallel", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=2000)
    parser.add_argument("--corpus-dir", type=Path, default=None, help="use (or build) the corpus here")
    parser.add_argument("--keep", type=Path, default=None, help="keep the database in this folder")
    parser.add_argument("--checkpoint-threshold", default=None,
                        help="DuckDB checkpoint_threshold during the ingest (experiment)")
    args = parser.parse_args(argv)

    from benchmark_db.ingest import Ingestor, discover_files
    from benchmark_db.parquet_export import RESULT_TABLES, export_parquet
    from benchmark_db_models import BenchmarkDB

    root = corpus(args.files, args.seed, args.corpus_dir)
    files = discover_files([root])
    paths = [f.path for f in files]
    input_bytes = sum(os.path.getsize(p) for p in paths)
    # the first pass warms the page cache for both contenders alike (all 20,000 files, not a sample: a cold
    # cache once made the baseline 3x slower); the baseline is the faster of two warm passes
    json_load_baseline(paths)
    baseline = min(json_load_baseline(paths), json_load_baseline(paths))

    work = args.keep or Path(tempfile.mkdtemp(prefix="bench_ingest_"))
    work.mkdir(parents=True, exist_ok=True)
    db_path = work / "bench.duckdb"
    for stale in (db_path, Path(str(db_path) + ".wal")):
        if stale.exists():
            stale.unlink()
    with PeakRSS(with_children=args.parallel > 1) as rss:
        start = time.perf_counter()
        with BenchmarkDB(str(db_path)) as db:
            if args.checkpoint_threshold:
                db.conn.execute(f"SET checkpoint_threshold = '{args.checkpoint_threshold}'")
            summary = Ingestor(db, parallel=args.parallel, batch_size=args.batch_size).ingest(files)
            db.conn.execute("CHECKPOINT")
        elapsed = time.perf_counter() - start
    db_bytes = db_path.stat().st_size
    with BenchmarkDB(str(db_path)) as db:
        exported = export_parquet(db.conn, work / "parquet")
        table_rows = {t: db.conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                      for t in ("performance_results", "test_runs", "source_documents")}
    # the target is on the result tables; the export also carries the originals (for merging it elsewhere)
    parquet_bytes = sum(e["bytes"] for e in exported if e["table"] in RESULT_TABLES)
    parquet_all_bytes = sum(e["bytes"] for e in exported)
    totals = summary.totals()
    figures = {
        "files": len(paths), "input_bytes": input_bytes, "parallel": args.parallel, "batch_size": args.batch_size,
        "cpu_count": os.cpu_count(), "ingested": totals["ingested"], "skipped": totals["skipped"],
        "failed": totals["failed"], "rows": table_rows,
        "ingest_seconds": round(elapsed, 3), "files_per_second": round(len(paths) / elapsed, 1),
        "json_load_seconds": round(baseline, 3), "json_load_files_per_second": round(len(paths) / baseline, 1),
        "ratio_to_json_load": round(elapsed / baseline, 2),
        "peak_rss_mb": round(rss.peak / 2**20, 1),
        "db_bytes": db_bytes, "db_percent_of_input": round(100 * db_bytes / input_bytes, 2),
        "parquet_bytes": parquet_bytes, "parquet_percent_of_input": round(100 * parquet_bytes / input_bytes, 2),
        "parquet_with_originals_bytes": parquet_all_bytes,
        "parquet_with_originals_percent_of_input": round(100 * parquet_all_bytes / input_bytes, 2),
    }
    print(f"files: {figures['files']} ({input_bytes / 2**20:.1f} MiB of JSON), parallel {args.parallel}, "
          f"{os.cpu_count()} CPUs")
    print(f"ingest: {elapsed:.2f} s = {figures['files_per_second']:.0f} files/s "
          f"({totals['ingested']} ingested, {totals['skipped']} skipped, {totals['failed']} failed)")
    print(f"json.load loop: {baseline:.2f} s = {figures['json_load_files_per_second']:.0f} files/s; "
          f"ratio {figures['ratio_to_json_load']:.2f} (target <= 4)")
    print(f"peak RSS: {figures['peak_rss_mb']:.0f} MB (target < 500)")
    print(f"database: {db_bytes / 2**20:.2f} MiB = {figures['db_percent_of_input']:.1f}% of the input "
          "with every original kept (target <= 20%)")
    print(f"parquet export: {parquet_bytes / 2**20:.2f} MiB = {figures['parquet_percent_of_input']:.1f}% "
          "of the input for the result tables (target <= 10%); "
          f"{parquet_all_bytes / 2**20:.2f} MiB = {figures['parquet_with_originals_percent_of_input']:.1f}% "
          "with the original documents and their dictionary")
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

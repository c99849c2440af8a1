#!/usr/bin/env python3
"""How fast `benchmark_db_query.py --report performance` answers on 1,000,000 performance rows, beside the
old way: loading every legacy JSON file with json/pandas and computing the same kind of aggregate.

    python benchmarks/bench_query.py [--rows 1000000] [--files 20000] [--repeat 5] [--work DIR]

1. Builds a database with `--rows` performance results in one DuckDB `INSERT ... SELECT` over `range()`
   (13 models, 7 hardware types, 6 batch sizes, 2 precisions, 1,000 runs spread over a year, lognormal
   latencies; result ids are the row numbers because this synthetic table is never merged with another).
2. Times the performance report (mean/max throughput, mean/min/max latency, peak memory per model,
   hardware, device, batch size and precision, plus the hardware pivot) rendered as JSON, in this process:
   median of `--repeat` runs after one warm-up, with the summary cache warm (what the query tool costs while
   the database does not change), cold (the first report after a write) and bypassed. Also times the whole command (`python benchmark_db_query.py
   --report performance --format json`, Python start-up and imports included) as a subprocess.
3. Baseline: generates the `--files` corpus with ../shared/tools/gen_scale_corpus.py (seed 1; reused when the
   folder is already there), then loads every file with `json`, pulls out each record that carries a
   throughput or latency, builds a pandas DataFrame and groups it by model, hardware, batch size and
   precision (mean/max throughput, mean/min/max latency). Best of 2 runs (the second has a warm file cache).

Prints the figures and the ratio baseline / report (warm; cold and direct beside it). Targets: report
median < 1 s, ratio >= 100x.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = REPO.parent / "shared"

MODELS = ["bert-base-uncased", "t5-small", "google/vit-base-patch16-224", "openai/whisper-tiny",
          "openai/clip-vit-base-patch32", "facebook/wav2vec2-base", "Qwen/Qwen2-0.5B",
          "TinyLlama/TinyLlama-1.1B-Chat-v1.0", "facebook/detr-resnet-50", "laion/clap-htsat-unfused",
          "microsoft/xclip-base-patch32", "llava-hf/llava-1.5-7b-hf", "llava-hf/llava-v1.6-mistral-7b-hf"]
HARDWARE = ["cpu", "cuda", "rocm", "mps", "openvino", "webnn", "webgpu"]


def build_database(path: Path, rows: int) -> float:
    """Create `path` with `rows` synthetic performance results; return the seconds it took."""
    from benchmark_db.connection import connect
    from benchmark_db.identity import hardware_id_for, model_id_for

    started = time.perf_counter()
    conn = connect(str(path))
    try:
        conn.execute("BEGIN TRANSACTION")
        conn.executemany("INSERT INTO models (model_id, model_name, model_family) VALUES (?, ?, ?)",
                         [[model_id_for(m), m, m.split("/")[-1].split("-")[0].lower()] for m in MODELS])
        conn.executemany("INSERT INTO hardware_platforms (hardware_id, hardware_type, device_name) VALUES (?, ?, ?)",
                         [[hardware_id_for(h, f"{h} device"), h, f"{h} device"] for h in HARDWARE])
        conn.execute("""INSERT INTO test_runs (run_id, test_name, test_type, started_at, success)
                        SELECT r, 'bench_query', 'performance', TIMESTAMP '2025-01-01' + INTERVAL (r * 8) HOUR, true
                        FROM range(1000) t(r)""")
        model_ids = [model_id_for(m) for m in MODELS]
        hw_ids = [hardware_id_for(h, f"{h} device") for h in HARDWARE]
        conn.execute(f"""
            INSERT INTO performance_results (result_id, run_id, model_id, hardware_id, model_name, hardware_type,
                test_case, batch_size, sequence_length, precision, average_latency_ms, latency_p50_ms,
                throughput_items_per_second, memory_peak_mb, iterations, is_simulated, created_at)
            SELECT i, i % 1000, list_extract({model_ids}, mi + 1), list_extract({hw_ids}, hi + 1),
                   list_extract({MODELS}, mi + 1), list_extract({HARDWARE}, hi + 1), 'inference', bs, 128,
                   CASE WHEN i % 2 = 0 THEN 'fp32' ELSE 'fp16' END, lat, lat, bs * 1000.0 / lat,
                   200 + mi * 50 + bs * 8, 20, i % 997 = 0,
                   TIMESTAMP '2025-01-01' + INTERVAL ((i % 1000) * 8) HOUR
            FROM (SELECT i, i % {len(MODELS)} AS mi, (i // {len(MODELS)}) % {len(HARDWARE)} AS hi,
                         pow(2, (i // {len(MODELS) * len(HARDWARE)}) % 6)::INTEGER AS bs,
                         (1 + (i % {len(MODELS)})) * pow(2, (i // {len(MODELS) * len(HARDWARE)}) % 6) * 0.8
                           * exp(0.1 * sqrt(-2 * ln(random() + 1e-12)) * cos(2 * pi() * random())) AS lat
                  FROM range({rows}) t(i))""")
        conn.execute("COMMIT")
        conn.execute("CHECKPOINT")
    finally:
        conn.close()
    return time.perf_counter() - started


def time_report(db: Path, repeat: int, mode: str) -> tuple[float, list[float], int]:
    """Median seconds of the in-process performance report rendered as JSON, on a fresh read-only connection
    each time, in one of three modes:
    - `warm`: the summary cached beside the database matches it (every report after the first, until the
      next write), which is what `benchmark_db_query.py --report performance` does;
    - `cold`: the cache is removed before each run, as after a write: the report aggregates the table and
      saves the summary (the first report after every change pays this);
    - `direct`: no cache at all, the report's GROUP BY over the table every time."""
    from benchmark_db import reports, summary_cache
    from benchmark_db.connection import connect

    times = []
    groups = 0
    for i in range(repeat + 1):
        if mode == "cold":
            summary_cache.cache_path(str(db)).unlink(missing_ok=True)
        conn = connect(str(db), read_only=True)
        try:
            started = time.perf_counter()
            report = reports.build_report(conn, "performance", reports.ReportFilters(),
                                          use_summary_cache=mode != "direct")
            text = reports.render_report(report, "json")
            elapsed = time.perf_counter() - started
        finally:
            conn.close()
        groups = len(report.main)
        assert text
        if i:  # the first run warms DuckDB's and the OS's caches (and, in warm mode, writes the summary)
            times.append(elapsed)
    return statistics.median(times), times, groups


def time_command(db: Path, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run([sys.executable, str(REPO / "benchmark_db_query.py"), "--db", str(db), "--report",
                        "performance", "--format", "json", "--quiet"], check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


# ------------------------------------------------------------------------------------------------ baseline
_MODEL_KEYS = ("model", "model_name", "model_id")
_HW_KEYS = ("hardware", "hardware_type", "device", "platform")


def _number(value):
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def extract_records(node, context: dict, out: list) -> None:
    """Every dict that carries a throughput or latency number becomes a record, with the model, hardware,
    batch size and precision found on it or on its ancestors."""
    if isinstance(node, list):
        for item in node:
            extract_records(item, context, out)
        return
    if not isinstance(node, dict):
        return
    ctx = dict(context)
    for key in _MODEL_KEYS:
        if isinstance(node.get(key), str):
            ctx["model"] = node[key]
            break
    for key in _HW_KEYS:
        if isinstance(node.get(key), str):
            ctx["hardware"] = node[key].lower()
            break
    if _number(node.get("batch_size")) is not None:
        ctx["batch_size"] = int(node["batch_size"])
    if isinstance(node.get("precision"), str):
        ctx["precision"] = node["precision"]
    throughput = latency = None
    for key, value in node.items():
        number = _number(value)
        if number is None:
            continue
        lower = key.lower()
        if throughput is None and "throughput" in lower:
            throughput = number
        elif latency is None and ("latency" in lower or lower in ("inference_time_ms", "time_ms")):
            latency = number
    if throughput is not None or latency is not None:
        out.append({"model": ctx.get("model"), "hardware": ctx.get("hardware"), "batch_size": ctx.get("batch_size"),
                    "precision": ctx.get("precision"), "throughput": throughput, "latency_ms": latency})
    for value in node.values():
        if isinstance(value, (dict, list)):
            extract_records(value, ctx, out)


def baseline_aggregate(corpus: Path):
    import pandas as pd

    records: list = []
    files = 0
    for path in corpus.rglob("*.json"):
        files += 1
        try:
            doc = json.loads(path.read_text())
        except (ValueError, UnicodeDecodeError):
            continue
        extract_records(doc, {}, records)
    df = pd.DataFrame.from_records(records, columns=["model", "hardware", "batch_size", "precision", "throughput",
                                                     "latency_ms"])
    agg = df.groupby(["model", "hardware", "batch_size", "precision"], dropna=False).agg(
        results=("throughput", "size"), throughput_mean=("throughput", "mean"), throughput_max=("throughput", "max"),
        latency_mean=("latency_ms", "mean"), latency_min=("latency_ms", "min"), latency_max=("latency_ms", "max"))
    return files, len(df), len(agg)


def time_baseline(corpus: Path) -> tuple[float, int, int, int]:
    best = None
    for _ in range(2):
        started = time.perf_counter()
        files, records, groups = baseline_aggregate(corpus)
        elapsed = time.perf_counter() - started
        best = elapsed if best is None else min(best, elapsed)
    return best, files, records, groups


def ensure_corpus(corpus: Path, files: int) -> float:
    existing = sum(1 for _ in corpus.rglob("*.json")) if corpus.is_dir() else 0
    if existing == files:
        return 0.0
    tool = SHARED / "tools" / "gen_scale_corpus.py"
    if not tool.exists():
        sys.exit(f"{tool} is missing: the baseline needs the shared corpus generator")
    started = time.perf_counter()
    subprocess.run([sys.executable, str(tool), str(corpus), "--files", str(files), "--seed", "1"], check=True,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--work", type=Path, default=None,
                        help="folder for the database and the corpus (default: a temporary folder); a corpus "
                             "already there is reused")
    args = parser.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="bench_query_"))
    work.mkdir(parents=True, exist_ok=True)
    db = work / f"perf_{args.rows}.duckdb"
    for stale in (db, Path(str(db) + ".wal")):
        stale.unlink(missing_ok=True)

    print(f"cpu cores: {os.cpu_count()}; work folder: {work}")
    built = build_database(db, args.rows)
    print(f"database: {args.rows:,} performance rows built in {built:.1f} s ({db.stat().st_size / 1e6:.1f} MB)")
    medians = {}
    for mode, what in (("direct", "no summary cache, GROUP BY over the table"),
                       ("cold", "first report after a write: aggregates the table and caches the summary"),
                       ("warm", "summary cache matches the database: what repeated reports cost")):
        medians[mode], times, groups = time_report(db, args.repeat, mode)
        print(f"--report performance, {mode} ({what}; in process, json): median {medians[mode] * 1000:.1f} ms "
              f"over {args.repeat} runs [{', '.join(f'{t * 1000:.1f}' for t in times)}] ms; {groups:,} groups")
    median = medians["warm"]
    command = time_command(db, 3)
    print(f"python benchmark_db_query.py --report performance --format json (whole command, start-up included): "
          f"median {command * 1000:.0f} ms over 3 runs")

    corpus = work / f"corpus_{args.files}"
    generated = ensure_corpus(corpus, args.files)
    if generated:
        print(f"corpus: {args.files:,} files generated in {generated:.0f} s")
    baseline, files, records, base_groups = time_baseline(corpus)
    print(f"baseline (json + pandas over {files:,} files, {records:,} records, {base_groups:,} groups): "
          f"{baseline:.2f} s (best of 2)")
    print(f"ratio baseline / report: {baseline / median:.0f}x warm (target >= 100x), "
          f"{baseline / medians['cold']:.0f}x cold, {baseline / medians['direct']:.0f}x direct; "
          f"baseline / whole command: {baseline / command:.1f}x")
    print(f"report median target < 1 s (cold, the slower case): {'met' if medians['cold'] < 1.0 else 'NOT met'}; "
          f"ratio target (warm): {'met' if baseline / median >= 100 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

#!/usr/bin/env python3
"""REST server throughput and latency against a real uvicorn process on loopback, beside the ORM.

    python benchmarks/bench_api.py [--duration 5] [--clients 16] [--batch-rows 10000] [--rows 100000]

Prints, each with the same operation done directly through the ORM (benchmark_db_models.BenchmarkDB) in the
same run:
  1. single POST /performance, sustained requests/s (target >= 500) from --clients concurrent clients;
  2. POST /performance/batch rows/s (target >= 50,000) with --batch-rows rows per request, beside the ORM
     writing the same rows built the same way (one RecordColumns) and as one object per row;
  3. GET /performance?model_name=... p50/p95 latency on a table of --rows rows (target p95 < 50 ms).
Everything runs in a temporary folder; the server is started with `benchmark_db_api.py --serve`. The load
generator is plain http.client keep-alive connections in separate processes (threads within them), so it
does not compete with itself for one GIL; it still shares the machine's CPUs with the server, as the ORM
runs do, so compare each API figure with the ORM figure printed beside it.
"""
from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

MODELS = [f"bench-model-{i:03d}" for i in range(50)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(db: str, port: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, str(REPO / "benchmark_db_api.py"), "--serve", "--host", "127.0.0.1",
                             "--port", str(port), "--db", db], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={k: v for k, v in os.environ.items() if k != "BENCHMARK_DB_API_TOKEN"})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("server did not answer /health in 60 s")


def payload(i: int) -> dict:
    return {"model_name": MODELS[i % len(MODELS)], "hardware_type": "cpu", "device_name": "bench-cpu",
            "batch_size": 1 + i % 32, "precision": "fp32", "throughput": 100.0 + i % 97, "latency_avg": 5.0 + i % 13,
            "memory_peak": 512.0, "test_case": "bench"}


def _post_worker(port: int, seconds: float, threads: int, worker: int, out) -> None:
    counts = {"ok": 0, "error": 0}
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def loop(t: int):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        i = worker * 1_000_000 + t * 10_000
        ok = err = 0
        while time.monotonic() < stop_at:
            body = json.dumps(payload(i))
            conn.request("POST", "/performance", body, {"Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            if response.status == 201:
                ok += 1
            else:
                err += 1
            i += 1
        with lock:
            counts["ok"] += ok
            counts["error"] += err

    pool = [threading.Thread(target=loop, args=(t,)) for t in range(threads)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    out.put(counts)


def bench_single_posts(port: int, seconds: float, clients: int) -> tuple[float, int, int]:
    """Requests/s of POST /performance from `clients` concurrent keep-alive clients (in 4 processes)."""
    processes = min(4, clients)
    per = [clients // processes + (1 if i < clients % processes else 0) for i in range(processes)]
    queue = multiprocessing.Queue()
    workers = [multiprocessing.Process(target=_post_worker, args=(port, seconds, n, w, queue))
               for w, n in enumerate(per)]
    start = time.perf_counter()
    for w in workers:
        w.start()
    results = [queue.get() for _ in workers]
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - start
    ok = sum(r["ok"] for r in results)
    errors = sum(r["error"] for r in results)
    return ok / elapsed, ok, errors


def orm_single_inserts(db_path: str, seconds: float) -> float:
    """Inserts/s of one result at a time (model, hardware and result in one transaction) through the ORM."""
    from benchmark_db_api import RecordBuilder
    from benchmark_db_models import BenchmarkDB

    builder = RecordBuilder()
    n = 0
    with BenchmarkDB(db_path) as db:
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            db.insert_many(builder.performance(payload(n)))
            n += 1
        return n / (time.perf_counter() - start)


def bench_batches(port: int, rows: int, batches: int) -> float:
    """Rows/s of POST /performance/batch, one request at a time, after one untimed request (which reopens
    the file the server released while idle)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    total = 0
    elapsed = 0.0
    for b in range(-1, batches):
        body = json.dumps({"results": [payload(b * rows + i) for i in range(rows)]})
        start = time.perf_counter()
        conn.request("POST", "/performance/batch", body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        data = response.read()
        if response.status != 201:
            raise SystemExit(f"batch failed: {response.status} {data[:500]!r}")
        if b >= 0:
            elapsed += time.perf_counter() - start
            total += json.loads(data)["stored"]
    return total / elapsed


def orm_batches(db_path: str, rows: int, batches: int, columns: bool) -> float:
    """Rows/s of the same rows through BenchmarkDB.insert_many in one transaction per batch: built as the
    server builds them (one RecordColumns) or as one PerformanceResults object per row; after one untimed
    batch, as for the server."""
    from benchmark_db_api import RecordBuilder
    from benchmark_db_models import BenchmarkDB, PerformanceResults, RecordColumns

    builder = RecordBuilder()
    elapsed = 0.0
    with BenchmarkDB(db_path) as db:
        for b in range(-1, batches):
            start = time.perf_counter()
            records = []
            if columns:
                built, records = builder.performance_columns([payload(b * rows + i) for i in range(rows)])
                records.append(RecordColumns(PerformanceResults, built, new=[True] * rows))
            else:
                for i in range(rows):
                    records.extend(builder.performance(payload(b * rows + i)))
            db.insert_many(records)
            builder.mark_session_written()
            if b >= 0:
                elapsed += time.perf_counter() - start
    return rows * batches / elapsed


def fill(port: int, target_rows: int, batch_rows: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    conn.request("POST", "/query", json.dumps({"sql": "SELECT count(*) FROM performance_results"}),
                 {"Content-Type": "application/json"})
    have = json.loads(conn.getresponse().read())["rows"][0][0]
    i = 10_000_000
    while have < target_rows:
        n = min(batch_rows, target_rows - have)
        conn.request("POST", "/performance/batch", json.dumps({"results": [payload(i + k) for k in range(n)]}),
                     {"Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
        if response.status != 201:
            raise SystemExit(f"fill failed: {response.status}")
        have += n
        i += n


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def bench_gets(port: int, requests: int) -> list[float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    times = []
    for i in range(requests):
        start = time.perf_counter()
        conn.request("GET", f"/performance?model_name={MODELS[i % len(MODELS)]}&limit=100")
        response = conn.getresponse()
        response.read()
        times.append((time.perf_counter() - start) * 1000)
        if response.status != 200:
            raise SystemExit(f"GET failed: {response.status}")
    return times


def orm_gets(db_path: str, requests: int) -> list[float]:
    from benchmark_db_api import performance_query
    from benchmark_db_models import BenchmarkDB

    times = []
    with BenchmarkDB(db_path) as db:
        for i in range(requests):
            start = time.perf_counter()
            db.conn.execute(*performance_query(model_name=MODELS[i % len(MODELS)], limit=100)).fetchall()
            times.append((time.perf_counter() - start) * 1000)
    return times


def count_rows(db_path: str) -> int:
    from benchmark_db.connection import open_db

    with open_db(db_path, read_only=True) as conn:
        return conn.execute("SELECT count(*) FROM performance_results").fetchone()[0]


def machine_state() -> str:
    """Load average and a fixed CPU-bound loop, so that figures from a busy machine read as such."""
    start = time.perf_counter()
    total = 0
    for i in range(1_000_000):
        total += i
    loop_ms = (time.perf_counter() - start) * 1000
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"load average {load:.1f}; a 10^6-step Python loop took {loop_ms:.0f} ms"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds of sustained single POSTs")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients for single POSTs")
    parser.add_argument("--batch-rows", type=int, default=10_000, help="rows per POST /performance/batch")
    parser.add_argument("--batches", type=int, default=5, help="batch requests to time")
    parser.add_argument("--rows", type=int, default=100_000, help="table size for the GET latency test")
    parser.add_argument("--gets", type=int, default=300, help="GET requests to time")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench_api_") as tmp:
        server_db = str(Path(tmp) / "server.duckdb")
        orm_db = str(Path(tmp) / "orm.duckdb")
        port = free_port()
        print(f"server: benchmark_db_api.py --serve on 127.0.0.1:{port}; {args.clients} clients in "
              f"{min(4, args.clients)} processes; clients, server and the ORM runs share this machine's "
              f"{os.cpu_count()} CPUs; {machine_state()}", flush=True)
        proc = start_server(server_db, port)
        try:
            rps, ok, errors = bench_single_posts(port, args.duration, args.clients)
            orm_rps = orm_single_inserts(orm_db, args.duration)
            print(f"single POST /performance: {rps:,.0f} req/s ({ok} stored, {errors} errors, {args.clients} clients)"
                  f" | ORM insert_many one result at a time: {orm_rps:,.0f}/s | ratio {rps / orm_rps:.2f} "
                  f"| target >= 500 req/s: {'met' if rps >= 500 and not errors else 'NOT met'}", flush=True)

            rows_s = bench_batches(port, args.batch_rows, args.batches)
            orm_rows_s = orm_batches(orm_db, args.batch_rows, args.batches, columns=True)
            orm_objects_s = orm_batches(orm_db, args.batch_rows, args.batches, columns=False)
            print(f"POST /performance/batch ({args.batch_rows:,} rows/request, {args.batches} timed after 1 "
                  f"untimed): {rows_s:,.0f} rows/s "
                  f"| ORM insert_many same rows as RecordColumns: {orm_rows_s:,.0f} rows/s "
                  f"(as one object per row: {orm_objects_s:,.0f} rows/s) | ratio {rows_s / orm_rows_s:.2f} "
                  f"| target >= 50,000 rows/s: {'met' if rows_s >= 50_000 else 'NOT met'}", flush=True)

            fill(port, args.rows, args.batch_rows)
            times = bench_gets(port, args.gets)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        stored = count_rows(server_db)
        orm_times = orm_gets(server_db, args.gets)
        p50, p95 = statistics.median(times), percentile(times, 0.95)
        o50, o95 = statistics.median(orm_times), percentile(orm_times, 0.95)
        print(f"GET /performance?model_name=...&limit=100 on {stored:,} rows: p50 {p50:.1f} ms, p95 {p95:.1f} ms "
              f"| same query through the ORM connection: p50 {o50:.1f} ms, p95 {o95:.1f} ms | ratio p95 "
              f"{p95 / o95:.1f} | target p95 < 50 ms: {'met' if p95 < 50 else 'NOT met'}", flush=True)
        print(f"after: {machine_state()}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

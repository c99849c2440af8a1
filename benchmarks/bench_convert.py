#!/usr/bin/env python3
"""Converter speed: convert_document over generated legacy-shaped files, against a json.loads loop.

    python benchmarks/bench_convert.py --files 4000            # generates the corpus in a temp folder
    python benchmarks/bench_convert.py --corpus-dir /tmp/scale  # or reuses one from gen_scale_corpus.py

Both loops run over the same bytes already in memory (no disk in the timing), alternately, best of
--repeat; it prints files/s of each, the ratio, and records per file. The converter is the parse-and-map
step of the ingest pipeline only: hashing, compression and the database writes are bench_ingest.py's.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

GENERATOR = REPO.parent / "shared" / "tools" / "gen_scale_corpus.py"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bench_convert.py", description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=4000, help="files to generate or read (default 4000)")
    parser.add_argument("--corpus-dir", default=None, help="an existing corpus (default: generate one)")
    parser.add_argument("--repeat", type=int, default=3, help="timed rounds of each loop (best is kept)")
    parser.add_argument("--seed", type=int, default=1)
    return parser


def load(corpus: Path, limit: int) -> list[tuple[str, bytes, str]]:
    paths = sorted(p for p in corpus.rglob("*.json"))[:limit]
    out = []
    for path in paths:
        data = path.read_bytes()
        out.append((str(path), data, hashlib.sha256(data).hexdigest()))
    return out


def measure(files, repeat: int) -> dict:
    from benchmark_db.convert import convert_document

    convert_document(files[0][1], files[0][0], files[0][2])  # imports and caches warm
    best_json = best_convert = float("inf")
    records = 0
    for _ in range(repeat):
        start = time.perf_counter()
        for _, data, _ in files:
            json.loads(data)
        best_json = min(best_json, time.perf_counter() - start)
        start = time.perf_counter()
        records = 0
        for path, data, sha in files:
            records += len(convert_document(data, path, sha).records)
        best_convert = min(best_convert, time.perf_counter() - start)
    n = len(files)
    return {"files": n, "json_loads_files_per_s": round(n / best_json), "convert_files_per_s": round(n / best_convert),
            "ratio_convert_to_json_loads": round(best_convert / best_json, 2), "records_per_file": round(records / n, 1),
            "mb": round(sum(len(d) for _, d, _ in files) / 1e6, 1)}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(args.corpus_dir) if args.corpus_dir else Path(tmp) / "corpus"
        if not args.corpus_dir:
            subprocess.run([sys.executable, str(GENERATOR), str(corpus), "--files", str(args.files),
                            "--seed", str(args.seed)], check=True, stdout=subprocess.DEVNULL)
        result = measure(load(corpus, args.files), args.repeat)
    for key, value in result.items():
        print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

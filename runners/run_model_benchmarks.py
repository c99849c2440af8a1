#!/usr/bin/env python3
"""Benchmark the 13 model families on the chosen hardware and store the results in the benchmark database.

    python runners/run_model_benchmarks.py --db ./benchmark_db.duckdb --models-set small --hardware cuda cpu
    python runners/run_model_benchmarks.py --db ./benchmark_db.duckdb --model bert-base-uncased --hardware cpu --batch-sizes 1,2,4,8
    python runners/run_model_benchmarks.py --no-db-store --output-dir ./auto_store_results

Models are built from their configurations with random weights (nothing is downloaded; HF_HUB_OFFLINE=1),
measured after warm-up until a minimum count and duration are met, and stored with their raw samples in one
transaction. Absent platforms and models too big for the machine become hardware_compatibility rows.
The work is in runners.engine, shared by the three runner scripts.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runners.engine import build_runner_parser, runner_main

PROG = "run_model_benchmarks.py"
TEST_NAME = "model_benchmarks"


def build_parser() -> argparse.ArgumentParser:
    return build_runner_parser(PROG, __doc__)


def main(argv: list[str] | None = None) -> int:
    return runner_main(PROG, __doc__, TEST_NAME, argv)


if __name__ == "__main__":
    raise SystemExit(main())

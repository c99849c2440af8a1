#!/usr/bin/env python3
"""Does the runner measure what torch.utils.benchmark measures, and what does its loop cost?

    python benchmarks/bench_runner_fidelity.py [--rounds 7] [--min-run-time 0.3]

1. Fidelity: the same tiny BERT (runners.models, small set, batch 1, sequence 32) timed by the runner's loop
   (runners.measure.measure_calls through the cpu backend) and by torch.utils.benchmark.Timer, interleaved
   round by round in one process so that both see the same machine state. Target: medians within 5 %.
2. Overhead: the runner's loop around a call that does nothing; wall time of the measured phase divided by
   the number of calls is everything the runner adds per measured call (clock reads, synchronise, sample
   bookkeeping, the memory-sampling thread). Target: under 50 us.
Prints both figures and exits 1 when a target is missed.
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--min-run-time", type=float, default=0.3, help="seconds per side per round")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = parser.parse_args(argv)

    import torch
    import torch.utils.benchmark as tb

    from runners.backends.cpu import CPUBackend
    from runners.measure import measure_calls
    from runners.models import select_models

    if args.threads:
        torch.set_num_threads(args.threads)
    spec = select_models("small", ["bert"])[0]
    model = spec.build()
    backend = CPUBackend()
    prepared = backend.prepare(spec, model, spec.inputs(model, 1, 32), "fp32")
    call = prepared.call
    timer = tb.Timer(stmt="call()", globals={"call": call}, num_threads=torch.get_num_threads())

    runner_medians, timer_medians = [], []
    with torch.inference_mode():
        call()
        for _ in range(args.rounds):
            m = measure_calls(call, backend.synchronize, warmup=3, min_iterations=20, min_duration_s=args.min_run_time)
            runner_medians.append(statistics.median(m.samples_ms))
            t = timer.blocked_autorange(min_run_time=args.min_run_time)
            timer_medians.append(t.median * 1e3)
    runner_ms = statistics.median(runner_medians)
    timer_ms = statistics.median(timer_medians)
    diff = abs(runner_ms - timer_ms) / timer_ms

    noop = measure_calls(lambda: None, backend.synchronize, warmup=100, min_iterations=20000, min_duration_s=0.2)
    overhead_us = noop.total_time_s / noop.iterations * 1e6
    in_sample_us = statistics.median(noop.samples_ms) * 1e3

    print(f"model: {spec.name}, batch 1, sequence 32, torch threads {torch.get_num_threads()}, "
          f"{args.rounds} interleaved rounds of {args.min_run_time}s each side")
    print(f"runner median latency:                 {runner_ms:.4f} ms  (round medians "
          f"{', '.join(f'{v:.3f}' for v in runner_medians)})")
    print(f"torch.utils.benchmark.Timer median:    {timer_ms:.4f} ms  (round medians "
          f"{', '.join(f'{v:.3f}' for v in timer_medians)})")
    print(f"ratio runner/Timer: {runner_ms / timer_ms:.4f}  difference {diff:.2%}  (target < 5 %)")
    print(f"runner overhead per measured call: {overhead_us:.3f} us wall per call over {noop.iterations} no-op "
          f"calls; {in_sample_us:.3f} us of it inside each sample  (target < 50 us)")
    ok = diff < 0.05 and overhead_us < 50
    print("PASS" if ok else "MISS: see the figures above (a busy machine widens the latency difference)")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

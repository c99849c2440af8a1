"""Timing, statistics and environment capture for the runners (DESIGN §5).

`measure_calls` runs warm-up calls (for the runners at least the count asked for, then until the calls stop
getting faster, within caps: `warm_up`), then measured calls until both a minimum count and a minimum duration
are met (or MAX_ITERATIONS, which the measurement then records), timing each with `time.perf_counter_ns`
around the call and the backend's synchronise, and keeps every raw sample. `latency_stats` turns samples into
mean/p50/p90/p95/p99/stddev/CV; `HIGH_CV` is the coefficient of variation above which a result is flagged as
not trustworthy. `PeakRSS` samples the process's resident
memory on a thread during the measured phase. `capture_environment` records versions, CPU, OS, accelerator
and git state. Nothing here imports torch at module level.
"""
from __future__ import annotations

import math
import os
import platform
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from statistics import median

HIGH_CV = 0.10  # a CV above 10 % means the samples spread too much to trust the mean


@dataclass
class Measurement:
    samples_ms: list[float]
    warmup_iterations: int
    total_time_s: float  # wall time of the measured phase
    peak_rss_mb: float | None = None
    device_peak_mb: float | None = None
    extra: dict = field(default_factory=dict)

    @property
    def iterations(self) -> int:
        return len(self.samples_ms)


def percentile(sorted_values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), on an already sorted list."""
    if not sorted_values:
        raise ValueError("no samples")
    if len(sorted_values) == 1:
        return sorted_values[0]
    pos = (len(sorted_values) - 1) * q / 100.0
    low = math.floor(pos)
    high = min(low + 1, len(sorted_values) - 1)
    frac = pos - low
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * frac


def latency_stats(samples_ms: list[float]) -> dict:
    """mean, p50, p90, p95, p99, sample stddev, CV and the high-CV flag of latency samples in ms."""
    if not samples_ms:
        raise ValueError("no samples")
    values = sorted(float(v) for v in samples_ms)
    n = len(values)
    mean = math.fsum(values) / n
    stddev = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    cv = stddev / mean if mean > 0 else 0.0
    return {"mean_ms": mean, "p50_ms": percentile(values, 50), "p90_ms": percentile(values, 90),
            "p95_ms": percentile(values, 95), "p99_ms": percentile(values, 99), "stddev_ms": stddev,
            "cv": cv, "min_ms": values[0], "max_ms": values[-1], "count": n, "high_cv": cv > HIGH_CV}


class PeakRSS:
    """Peak resident set size of this process while the block runs, sampled on a thread."""

    def __init__(self, interval_s: float = 0.005):
        self.interval_s = interval_s
        self.peak_bytes = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self, proc) -> None:
        while not self._stop.is_set():
            self.peak_bytes = max(self.peak_bytes, proc.memory_info().rss)
            self._stop.wait(self.interval_s)

    def __enter__(self) -> PeakRSS:
        import psutil

        proc = psutil.Process()
        self.peak_bytes = proc.memory_info().rss
        self._thread = threading.Thread(target=self._sample, args=(proc,), daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        import psutil

        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.peak_bytes = max(self.peak_bytes, psutil.Process().memory_info().rss)

    @property
    def peak_mb(self) -> float:
        return self.peak_bytes / (1024 * 1024)


# Warm-up: the asked-for count is a minimum. A model's first calls are slower than its steady state (lazy
# allocations, oneDNN primitive creation, caches, clock ramp-up): after the small set's fixed two warm-up calls,
# all-MiniLM-L6-v2's first measured call here was up to 1.9x its steady state (1.4x with this warm-up, which
# took a median of 6 calls). Warm-up therefore goes on until it has run for
# WARMUP_MIN_S and the calls have stopped getting faster (the median of the last WARMUP_WINDOW calls is no more
# than WARMUP_TOLERANCE below the median of the window before, and the latest call no more than that below the
# last window's median: a call that has just dropped 10x must not end a warm-up whose windows are still cold),
# capped at WARMUP_MAX_S / WARMUP_MAX_CALLS.
WARMUP_MIN_S = 0.05
WARMUP_MAX_S = 2.0
WARMUP_MAX_CALLS = 200
WARMUP_WINDOW = 3
WARMUP_TOLERANCE = 0.10
# measured calls stop here even if --min-duration is not reached yet; a measurement the cap ended says so
MAX_ITERATIONS = 100_000


def warmup_is_stable(times_ns: list[int], window: int = WARMUP_WINDOW, tolerance: float = WARMUP_TOLERANCE) -> bool:
    """True when the last `window` calls are no longer getting faster than the `window` calls before them,
    and the latest call is not itself faster than the last window (the calls have not just dropped)."""
    if len(times_ns) < 2 * window:
        return False
    recent = median(times_ns[-window:])
    return recent >= (1.0 - tolerance) * median(times_ns[-2 * window:-window]) and \
        times_ns[-1] >= (1.0 - tolerance) * recent


def warm_up(call: Callable[[], object], sync: Callable[[], None], minimum: int, *, adaptive: bool = True,
            min_s: float = WARMUP_MIN_S, max_s: float = WARMUP_MAX_S, max_calls: int = WARMUP_MAX_CALLS) -> dict:
    """Run warm-up calls: at least `minimum`, then (adaptive) until stable and `min_s` passed, within the caps.

    Returns {"warmup_iterations", "warmup_seconds", "warmup_requested", "warmup_stopped"}; `warmup_stopped` is
    "as requested" (not adaptive), "stable", "time cap" or "call cap" (a warm-up that never settled)."""
    clock = time.perf_counter_ns
    minimum = max(0, int(minimum))
    times: list[int] = []
    start = clock()
    stopped = "as requested"
    while True:
        done = len(times)
        if done >= minimum:
            if not adaptive:
                break
            elapsed_s = (clock() - start) / 1e9
            if elapsed_s >= min_s and warmup_is_stable(times):
                stopped = "stable"
                break
            if elapsed_s >= max_s:
                stopped = "time cap"
                break
            if done >= max(max_calls, minimum):
                stopped = "call cap"
                break
        t0 = clock()
        call()
        if adaptive:  # timed, so each call must have finished (a fixed warm-up synchronises once, after)
            sync()
        times.append(clock() - t0)
    return {"warmup_iterations": len(times), "warmup_seconds": (clock() - start) / 1e9,
            "warmup_requested": minimum, "warmup_stopped": stopped}


def measure_calls(call: Callable[[], object], synchronize: Callable[[], None] | None = None, *, warmup: int = 3,
                  min_iterations: int = 10, min_duration_s: float = 0.2, max_iterations: int | None = None,
                  track_rss: bool = True, before_measured: Callable[[], None] | None = None,
                  adaptive_warmup: bool = False) -> Measurement:
    """Warm up (`warmup` calls; with `adaptive_warmup`, as `warm_up` decides, which the runners' backends use),
    then time calls until both `min_iterations` and `min_duration_s` are reached,
    or `max_iterations` (default MAX_ITERATIONS) calls, which `extra["iteration_cap_reached"]` then records."""
    sync = synchronize or (lambda: None)
    cap = MAX_ITERATIONS if max_iterations is None else max_iterations
    warm = warm_up(call, sync, warmup, adaptive=adaptive_warmup)
    sync()
    if before_measured is not None:
        before_measured()
    clock = time.perf_counter_ns
    min_duration_ns = int(min_duration_s * 1e9)
    samples: list[int] = []
    append = samples.append
    rss = PeakRSS() if track_rss else None
    if rss is not None:
        rss.__enter__()
    capped = False
    try:
        start = clock()
        while True:
            t0 = clock()
            call()
            sync()
            t1 = clock()
            append(t1 - t0)
            if len(samples) >= min_iterations and t1 - start >= min_duration_ns:
                break
            if len(samples) >= cap:
                capped = True
                break
        total_ns = clock() - start
    finally:
        if rss is not None:
            rss.__exit__(None, None, None)
    extra = {key: warm[key] for key in ("warmup_requested", "warmup_seconds", "warmup_stopped")}
    if capped:
        extra.update({"iteration_cap_reached": True, "iteration_cap": cap,
                      "iteration_cap_warning": (
                          f"stopped at the cap of {cap:,} measured calls after {total_ns / 1e9:.3g} s, before "
                          f"--min-duration {min_duration_s:g} s / --min-iterations {min_iterations} were reached")})
    return Measurement(samples_ms=[s / 1e6 for s in samples], warmup_iterations=warm["warmup_iterations"],
                       total_time_s=total_ns / 1e9, peak_rss_mb=rss.peak_mb if rss else None, extra=extra)


# -- environment -----------------------------------------------------------------------------------------
def _version(module: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(module)
    except Exception:
        return None


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    if platform.system() == "Darwin":
        try:
            return subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True,
                                  timeout=5).stdout.strip() or platform.processor()
        except (OSError, subprocess.SubprocessError):
            pass
    return platform.processor() or platform.machine()


def git_state(cwd: str | None = None) -> tuple[str | None, str | None]:
    """(commit, branch) of the repository the runner lives in, or (None, None) outside git."""
    state = git_provenance(cwd)
    return state["git_commit"], state["git_branch"]


def git_provenance(cwd: str | None = None) -> dict:
    """git_commit, git_branch and git_dirty (uncommitted changes to tracked files: True/False; None outside
    git) of the repository the runner lives in. The runners read it at start-up: read at the end, a commit
    or checkout made while the models ran was recorded as the code that measured them."""
    folder = cwd or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

    def ask(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=folder, capture_output=True, text=True, timeout=5)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() or None if out.returncode == 0 else None

    commit = ask("rev-parse", "HEAD")
    dirty = None
    if commit is not None:
        try:  # untracked files are not the code that ran (scratch databases, results): tracked changes are
            out = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=folder,
                                 capture_output=True, text=True, timeout=10)
            dirty = bool(out.stdout.strip()) if out.returncode == 0 else None
        except (OSError, subprocess.SubprocessError):
            dirty = None
    return {"git_commit": commit, "git_branch": ask("rev-parse", "--abbrev-ref", "HEAD"), "git_dirty": dirty}


def capture_environment(accelerators: dict | None = None, git: dict | None = None) -> dict:
    """Versions, CPU model, cores and threads, OS, accelerators and git state of this run (`git`: the
    git_provenance() read when the run started; read now without it)."""
    import psutil

    env: dict = {
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "os": platform.platform(),
        "machine": platform.machine(),
        "cpu_model": cpu_model(),
        "cpu_physical_cores": psutil.cpu_count(logical=False),
        "cpu_logical_cores": psutil.cpu_count(logical=True),
        "memory_total_gb": round(psutil.virtual_memory().total / 1024 ** 3, 2),
        "versions": {name: _version(name) for name in ("torch", "transformers", "openvino", "onnxruntime", "onnx",
                                                       "numpy", "duckdb", "playwright")},
        "hf_hub_offline": os.environ.get("HF_HUB_OFFLINE"),
    }
    if hasattr(os, "getloadavg"):
        # other work on the machine is the usual reason for a high CV: keep the evidence with the run
        env["load_average_1_5_15"] = [round(v, 2) for v in os.getloadavg()]
    try:
        import torch

        env["torch_threads"] = torch.get_num_threads()
        env["torch_interop_threads"] = torch.get_num_interop_threads()
        env["torch_cuda_version"] = torch.version.cuda
        env["torch_hip_version"] = getattr(torch.version, "hip", None)
    except ImportError:
        pass
    env.update(git if git is not None else git_provenance())
    env["accelerators"] = accelerators or {}
    return env

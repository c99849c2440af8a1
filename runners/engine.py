"""The one engine behind run_model_benchmarks.py, run_benchmark_with_db.py and run_db_integrated_benchmarks.py.

`add_runner_options` puts the guide's flags on a parser; `settings_from_args` turns them into `RunSettings`;
`run_matrix` measures every model x hardware x batch size x sequence length x precision cell and returns a
runner document (benchmark_db.runner_format) plus summary rows; `store_document` writes the document through
the ORM in one transaction, `write_document` writes it as versioned JSON for `--no-db-store`. The database
(or the output folder) is checked before anything is measured; a store that still fails leaves the document
in the output folder for the updater (as does Ctrl-C during the store), and Ctrl-C stores nothing (a run is
stored whole). A platform that is absent, a model too big for this machine, a precision a backend cannot run, a
conversion that fails: each becomes a `hardware_compatibility` row with the reason, never a crash and never a
made-up number.
"""
from __future__ import annotations

import argparse
import datetime as dt
import gc
import hashlib
import json
import logging
import os
import shlex
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from benchmark_db import schema
from benchmark_db.errors import EXIT_FINDING, UsageError
from benchmark_db.names import normalize_hardware_type

os.environ.setdefault("HF_HUB_OFFLINE", "1")
log = logging.getLogger("benchmark_db.runners")

PLATFORMS = ("cpu", "cuda", "rocm", "mps", "openvino", "webgpu", "webnn")
_BACKEND_CLASSES = {
    "cpu": ("runners.backends.cpu", "CPUBackend"), "cuda": ("runners.backends.cuda", "CUDABackend"),
    "rocm": ("runners.backends.rocm", "ROCmBackend"), "mps": ("runners.backends.mps", "MPSBackend"),
    "openvino": ("runners.backends.openvino", "OpenVINOBackend"),
    "webgpu": ("runners.backends.webgpu", "WebGPUBackend"), "webnn": ("runners.backends.webnn", "WebNNBackend"),
}
# defaults per set: the small set sweeps batch sizes in seconds, the key set measures documented sizes
SET_DEFAULTS = {
    "small": {"batch_sizes": [1, 2, 4, 8], "sequence_lengths": [32], "warmup": 2, "min_iterations": 5,
              "min_duration": 0.1, "generate_tokens": 8, "generate_repeats": 2},
    "key": {"batch_sizes": [1], "sequence_lengths": [128], "warmup": 1, "min_iterations": 3,
            "min_duration": 0.5, "generate_tokens": 8, "generate_repeats": 1},
}
DEFAULT_OUTPUT_DIR = "./auto_store_results"
BYTES_PER_PARAM = {"fp32": 4, "fp16": 2, "bf16": 2, "int8": 1}
MAX_THREADS = 1024  # beyond it a runtime fails creating the threads (torch: ImportError, not a reason)


@dataclass
class RunSettings:
    models_set: str = "small"
    models: list[str] = field(default_factory=list)
    model_path: str | None = None
    hardware: list[str] = field(default_factory=lambda: ["cpu"])
    batch_sizes: list[int] = field(default_factory=lambda: [1])
    sequence_lengths: list[int] = field(default_factory=lambda: [32])
    precisions: list[str] = field(default_factory=lambda: ["fp32"])
    warmup: int = 2
    min_iterations: int = 5
    min_duration: float = 0.1
    generate_tokens: int = 8
    generate_repeats: int = 3
    memory_budget_gb: float | None = None
    threads: int | None = None


# -- options -------------------------------------------------------------------------------------------------
def _int_list(text: str, largest: int | None = None) -> list[int]:
    try:
        values = [int(part) for part in str(text).replace(" ", "").split(",") if part]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma list of integers, e.g. 1,2,4,8") from exc
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: give positive integers, e.g. 1,2,4,8")
    if largest is not None and any(v > largest for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: at most {largest:,} is stored; give smaller values")
    # a repeated size would be measured again and then collapse onto one stored row (same natural key)
    return list(dict.fromkeys(values))


# beyond the largest stored values a cell would be measured (or fail allocating) only to be refused at the end
def _batch_sizes(text: str) -> list[int]:
    return _int_list(text, schema.MAX_BATCH_SIZE)


def _sequence_lengths(text: str) -> list[int]:
    return _int_list(text, schema.MAX_SEQUENCE_LENGTH)


def add_runner_options(parser: argparse.ArgumentParser) -> None:
    from benchmark_db.cli import add_common_options, add_db_option

    add_db_option(parser)
    group = parser.add_argument_group("what to run")
    group.add_argument("--models-set", choices=("small", "key"), default="small",
                       help="small: tiny configs of the 13 families plus the real all-MiniLM-L6-v2 (seconds); "
                            "key: the families at their documented sizes (default: %(default)s)")
    group.add_argument("--model", "--models", action="append", default=[], metavar="NAME",
                       help="a model or family (repeatable or a comma list): bert, bert-base-uncased, t5-small, ...")
    group.add_argument("--model-path", metavar="DIR", help="a local checkpoint directory to benchmark")
    # repeatable: each flag adds to the last one's values (argparse's default kept only the last)
    group.add_argument("--hardware", nargs="+", action="extend", default=None, metavar="HW",
                       help="platforms: cpu cuda rocm mps openvino webgpu webnn, 'all' (absent ones get a "
                            "compatibility row) or 'auto' (only what is present and not emulated: a software "
                            "adapter such as SwiftShader WebGPU is left out, and the run says so, unless also named, "
                            "e.g. 'auto webgpu') (default: cpu)")
    group.add_argument("--batch-sizes", type=_batch_sizes, action="extend", default=None, metavar="LIST",
                       help="comma list, repeatable (default: 1,2,4,8 for small, 1 for key)")
    group.add_argument("--sequence-lengths", type=_sequence_lengths, action="extend", default=None, metavar="LIST",
                       help="token sequence lengths for text inputs, comma list, repeatable (default: 32 for small, "
                            "128 for key)")
    group.add_argument("--precision", action="append", default=[], metavar="P",
                       help="fp32, fp16, bf16 or int8 (repeatable or comma list; default fp32); a backend that "
                            "cannot run one records why")
    measure = parser.add_argument_group("measurement")
    measure.add_argument("--warmup", type=int, default=None, metavar="N",
                         help="at least N warm-up calls (default: 2 small, 1 key); warm-up then goes on until the "
                              "calls stop getting faster (at least 0.05 s; at most 2 s or 200 calls, unless N takes more; "
                              "browser backends decide it in the page); the count done is stored in warmup_iterations")
    measure.add_argument("--min-iterations", type=int, default=None, metavar="N",
                         help="at least N measured calls (default: 5 small, 3 key)")
    measure.add_argument("--min-duration", type=float, default=None, metavar="SECONDS",
                         help="and at least this long measuring (default: 0.1 small, 0.5 key)")
    measure.add_argument("--generate-tokens", type=int, default=None, metavar="N",
                         help="tokens generated for time-to-first-token and tokens/s of generative models "
                              "(default 8; 0 turns it off)")
    measure.add_argument("--threads", type=int, default=None, metavar="N",
                         help="CPU threads of every backend's runtime: torch (cpu), OpenVINO (INFERENCE_NUM_THREADS), "
                              "onnxruntime-web wasm (webgpu/webnn) (default: each runtime's own); the count used "
                              "is stored in metrics.threads_used")
    measure.add_argument("--memory-budget-gb", type=float, default=None, metavar="GB",
                         help="host memory a model may use (default: what is available now); bigger models are "
                              "skipped with a compatibility row")
    store = parser.add_argument_group("storing")
    store.add_argument("--no-db-store", action="store_true",
                       help="write versioned JSON into --output-dir instead of the database "
                            "(ingest later with benchmark_db_updater.py --auto-store --auto-store-dir DIR --db DB)")
    store.add_argument("--output-dir", default=None, metavar="DIR",
                       help=f"folder for --no-db-store files and reports (default: {DEFAULT_OUTPUT_DIR})")
    store.add_argument("--visualize-from-db", action="store_true",
                       help="after storing, write the performance report from the database")
    add_common_options(parser)


def _split(values: list[str]) -> list[str]:
    out: list[str] = []
    for value in values or []:
        out.extend(part.strip() for part in str(value).split(",") if part.strip())
    return out


def settings_from_args(args: argparse.Namespace) -> RunSettings:
    defaults = SET_DEFAULTS[args.models_set]
    # `--model ""` or `,` (an empty variable) would run the whole set, `--precision ""` would fall back to fp32
    for name, values, hint in (("--model", args.model, "pass e.g. --model bert, or leave it out for the whole set"),
                               ("--precision", args.precision, "pass e.g. --precision fp32,fp16")):
        if values and not _split(values):
            raise UsageError(f"{name} names nothing", hint)
    if args.model_path is not None and not args.model_path.strip():
        raise UsageError("--model-path is empty", "pass --model-path a checkpoint folder, or leave it out")
    precisions = [p.lower() for p in _split(args.precision)] or ["fp32"]
    for precision in precisions:
        if precision not in BYTES_PER_PARAM:
            raise UsageError(f"unknown precision {precision!r}", "use fp32, fp16, bf16 or int8")
    for name, value in (("--warmup", args.warmup), ("--generate-tokens", args.generate_tokens)):
        if value is not None and value < 0:
            raise UsageError(f"{name} must not be negative", f"pass {name} 0 or more")
    for name, value in (("--min-iterations", args.min_iterations), ("--threads", args.threads)):
        if value is not None and value < 1:
            raise UsageError(f"{name} must be at least 1", f"pass {name} 1 or more")
    if args.threads is not None and args.threads > MAX_THREADS:
        raise UsageError(f"--threads {args.threads:,} is more than {MAX_THREADS:,}",
                         f"pass --threads 1 to {MAX_THREADS:,}, e.g. the machine's core count")
    # nan passes every comparison below (and then fails each cell, or disables the budget); inf never ends
    if args.min_duration is not None and not (0 <= args.min_duration < float("inf")):
        raise UsageError(f"--min-duration {args.min_duration} is not a number of seconds 0 or more",
                         "pass seconds, e.g. --min-duration 0.5")
    if args.memory_budget_gb is not None and not (0 < args.memory_budget_gb < float("inf")):
        raise UsageError(f"--memory-budget-gb must be more than 0 and finite, not {args.memory_budget_gb}",
                         "pass gigabytes, e.g. --memory-budget-gb 8")
    if args.hardware and not _split(args.hardware):  # `--hardware ,` or "" (an empty variable): not cpu
        raise UsageError("--hardware names no platform", "pass e.g. --hardware cpu openvino, all or auto")
    pick = lambda value, key: defaults[key] if value is None else value  # noqa: E731
    # repeated flags add up; a size given twice would collapse onto one stored row (same natural key)
    batch_sizes = None if args.batch_sizes is None else list(dict.fromkeys(args.batch_sizes))
    sequence_lengths = None if args.sequence_lengths is None else list(dict.fromkeys(args.sequence_lengths))
    return RunSettings(
        models_set=args.models_set, models=_split(args.model), model_path=args.model_path,
        hardware=_split(args.hardware) or ["cpu"], batch_sizes=pick(batch_sizes, "batch_sizes"),
        sequence_lengths=pick(sequence_lengths, "sequence_lengths"), precisions=list(dict.fromkeys(precisions)),
        warmup=pick(args.warmup, "warmup"), min_iterations=pick(args.min_iterations, "min_iterations"),
        min_duration=pick(args.min_duration, "min_duration"), generate_tokens=pick(args.generate_tokens,
                                                                                   "generate_tokens"),
        generate_repeats=defaults["generate_repeats"], memory_budget_gb=args.memory_budget_gb, threads=args.threads)


# -- hardware ------------------------------------------------------------------------------------------------
def make_backend(name: str):
    import importlib

    module, cls = _BACKEND_CLASSES[name]
    return getattr(importlib.import_module(module), cls)()


def resolve_hardware(requested: list[str]) -> tuple[list[str], bool]:
    """The platform names to try and whether absent (and emulated, unless named) ones are dropped ('auto')."""
    names, auto, _named = _resolve_hardware(requested)
    return names, auto


def _resolve_hardware(requested: list[str]) -> tuple[list[str], bool, set[str]]:
    names: list[str] = []
    named: set[str] = set()
    auto = False
    for raw in requested:
        key = raw.strip().lower()
        if key == "all":
            names.extend(PLATFORMS)
        elif key == "auto":
            names.extend(PLATFORMS)
            auto = True
        else:
            kind = normalize_hardware_type(key)
            if kind not in PLATFORMS and kind != "qualcomm":
                raise UsageError(f"unknown hardware {raw!r}", f"use {', '.join(PLATFORMS)}, all or auto")
            names.append(kind)
            named.add(kind)
    return list(dict.fromkeys(names)), auto, named


def _quiet_transformers() -> None:
    """transformers' weight-loading bars and generation notices would drown the runner's own output."""
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:
        pass


# -- the matrix ----------------------------------------------------------------------------------------------
def _host_available_gb(settings: RunSettings) -> float:
    import psutil

    if settings.memory_budget_gb is not None:
        return settings.memory_budget_gb
    return psutil.virtual_memory().available / 1024 ** 3


def estimate_model_gb(parameters: int, precision: str = "fp32") -> float:
    """Weights plus a 25 % margin for activations and allocator slack, plus a fixed 0.25 GB."""
    return parameters * BYTES_PER_PARAM.get(precision, 4) * 1.25 / 1024 ** 3 + 0.25


def count_parameters(model) -> int:
    return int(sum(p.numel() for p in model.parameters()))


class _Collector:
    """Rows of one run, in the shapes of benchmark_db.runner_format."""

    def __init__(self):
        self.models: dict[str, dict] = {}
        self.hardware: dict[tuple, dict] = {}
        self.results: list[dict] = []
        self.compatibility: dict[tuple, dict] = {}
        self.web_results: list[dict] = []
        self.summary: list[dict] = []
        self.notes: list[str] = []  # what the run left out or cut short, for the run's metadata and the log

    def hardware_row(self, name: str, detection) -> dict:
        key = (name, detection.device_name)
        if key not in self.hardware:
            meta = dict(detection.metadata or {})
            if not detection.available:
                meta["unavailable_reason"] = detection.reason
            if detection.is_emulated:
                meta["is_emulated"] = True
            self.hardware[key] = {"hardware_type": name, "device_name": detection.device_name,
                                  "platform": detection.platform, "platform_version": detection.platform_version,
                                  "driver_version": detection.driver_version, "memory_gb": detection.memory_gb,
                                  "compute_units": detection.compute_units, "metadata": meta or None}
        return self.hardware[key]

    def compat(self, spec, hw: str, device: str | None, *, ok: bool, message: str | None, error_type: str | None,
               detection_ok: bool = True, init_ok: bool | None = None, fix: str | None = None,
               metadata: dict | None = None) -> None:
        key = (spec.name if spec else None, hw, device)
        self.compatibility[key] = {
            "model_name": spec.name if spec else None, "hardware_type": hw, "device_name": device,
            "is_compatible": ok, "detection_success": detection_ok,
            "initialization_success": ok if init_ok is None else init_ok, "error_message": message,
            "error_type": error_type, "suggested_fix": fix, "compatibility_score": 1.0 if ok else 0.0,
            "metadata": metadata}

    def skip(self, spec, hw: str, reason: str, batch=None, seq=None, precision=None) -> None:
        self.summary.append({"model": spec.name if spec else "-", "hardware": hw, "batch": batch, "seq": seq,
                             "precision": precision, "p50_ms": None, "mean_ms": None, "items_per_s": None,
                             "memory_mb": None, "cv": None, "status": f"skipped: {reason}"[:120]})


def _model_row(spec, parameters: int | None, extra: dict | None = None) -> dict:
    meta = {"models_set": spec.size, "description": spec.description, "transformers_class": spec.model_class}
    meta.update(extra or {})
    return {"model_name": spec.name, "model_family": spec.family, "modality": spec.modality,
            "parameters_million": round(parameters / 1e6, 3) if parameters else None, "source": spec.source,
            "metadata": meta}


def run_matrix(specs, settings: RunSettings, *, quiet: bool = False) -> tuple[_Collector, dict]:
    """Measure every cell; return the collected rows and the detections by platform."""
    import torch

    from benchmark_db.cli import progress
    from runners.measure import latency_stats

    if settings.threads:
        torch.set_num_threads(settings.threads)
    _quiet_transformers()
    names, auto, named = _resolve_hardware(settings.hardware)
    out = _Collector()
    backends = {}
    detections = {}
    for name in names:
        if name not in _BACKEND_CLASSES:
            from runners.backends.base import Detection

            detections[name] = Detection(False, f"this toolkit has no {name} backend (supported: "
                                                f"{', '.join(PLATFORMS)})")
            continue
        backend = make_backend(name)
        backend.threads = settings.threads  # --threads for every runtime, not torch's alone
        detections[name] = backend.detect()
        if detections[name].available:
            backends[name] = backend
        log.info("%s: %s", name, "available, " + str(detections[name].device_name) if detections[name].available
                 else "not available: " + str(detections[name].reason))
    if auto:
        # 'auto' is what is present: an emulated platform (WebGPU on SwiftShader, a CPU emulation that takes
        # about 20 minutes for the small set) is left out unless it was also named, and the run says so
        emulated = [n for n in names if detections[n].available and detections[n].is_emulated and n not in named]
        for name in emulated:
            note = (f"--hardware auto left out {name}: its adapter ({detections[name].device_name}) is a software "
                    f"emulation; name it to measure it (--hardware auto {name})")
            out.notes.append(note)
            log.warning("%s", note)
            closing = backends.pop(name, None)
            if closing is not None:
                getattr(closing, "close", lambda: None)()
        names = [n for n in names if detections[n].available and n not in emulated] or ["cpu"]
    for name in names:
        out.hardware_row(name, detections[name])

    seq_for = {spec.name: (settings.sequence_lengths if spec.uses_sequence_length else [None]) for spec in specs}
    per_model = {s.name: len(settings.batch_sizes) * len(seq_for[s.name]) * len(settings.precisions) for s in specs}
    total = sum(per_model.values()) * len(names)
    bar = progress(None, total=total, desc="benchmarks", quiet=quiet, unit="cell")
    try:
        for spec in specs:
            started = time.perf_counter()
            before = len(out.results)
            _run_model(spec, names, backends, detections, settings, seq_for[spec.name], out, bar, latency_stats)
            log.info("%s: %d results in %.1f s", spec.name, len(out.results) - before, time.perf_counter() - started)
    finally:
        bar.close()
        for backend in backends.values():  # a backend holding a browser closes it here, Ctrl-C included
            getattr(backend, "close", lambda: None)()
    return out, detections


def _run_model(spec, names, backends, detections, settings, seq_lengths, out: _Collector, bar, latency_stats):
    cells = len(settings.batch_sizes) * len(seq_lengths) * len(settings.precisions)
    # parameters from the model itself, built on the meta device first (no memory) to decide whether it fits
    try:
        parameters = count_parameters(spec.build(meta=True))
    except Exception as exc:  # some models cannot build on meta: fall back to building for real
        log.debug("meta build of %s failed: %s", spec.name, exc)
        parameters = None
    need_gb = estimate_model_gb(parameters) if parameters else None
    have_gb = _host_available_gb(settings)
    if need_gb is not None and need_gb > have_gb:
        reason = (f"{spec.name} has {parameters / 1e6:,.1f}M parameters: about {need_gb:.2f} GB to build in fp32, "
                  f"{have_gb:.2f} GB available" + (" (--memory-budget-gb)" if settings.memory_budget_gb else ""))
        out.models[spec.name] = _model_row(spec, parameters, {"estimated_memory_gb": round(need_gb, 2)})
        for hw in names:
            device = detections[hw].device_name
            out.compat(spec, hw, device, ok=False, message=reason, error_type="insufficient_memory",
                       detection_ok=detections[hw].available, init_ok=False,
                       fix="run on a machine with more memory or pick a smaller model")
            out.skip(spec, hw, reason)
            bar.update(cells)
        log.warning("skipping %s: %s", spec.name, reason)
        return
    absent = [hw for hw in names if hw not in backends]
    for hw in absent:
        det = detections[hw]
        out.compat(spec, hw, det.device_name, ok=False, message=det.reason, error_type="platform_unavailable",
                   detection_ok=False, init_ok=False, fix=f"run on a machine with {hw}")
        out.skip(spec, hw, det.reason or "not available")
        bar.update(cells)
    present = [hw for hw in names if hw in backends]
    if not present:
        out.models[spec.name] = _model_row(spec, parameters)
        return
    started = time.perf_counter()
    try:
        model = spec.build()
    except Exception as exc:
        reason = f"building {spec.name} failed: {type(exc).__name__}: {str(exc)[:300]}"
        out.models[spec.name] = _model_row(spec, parameters)
        for hw in present:
            out.compat(spec, hw, detections[hw].device_name, ok=False, message=reason, error_type="build_failed",
                       init_ok=False)
            out.skip(spec, hw, reason)
            bar.update(cells)
        return
    build_s = time.perf_counter() - started
    parameters = count_parameters(model)
    out.models[spec.name] = _model_row(spec, parameters, {"build_seconds": round(build_s, 3),
                                                          "config": spec.model_class})
    try:
        for hw in present:
            _run_on_backend(spec, model, parameters, hw, backends[hw], detections[hw], settings, seq_lengths, out,
                            bar, latency_stats)
    finally:
        for backend in backends.values():
            if hasattr(backend, "forget"):
                backend.forget(model)
        del model
        gc.collect()


def _run_on_backend(spec, model, parameters, hw, backend, detection, settings, seq_lengths, out, bar,
                    latency_stats):
    from runners.backends.base import UnsupportedConfiguration
    from runners.models import items_in, sequence_tokens

    device = detection.device_name
    ok_cells = 0
    failures: list[dict] = []
    measured: set[tuple] = set()  # (batch, seq, precision run): the natural key of a stored row on this hw
    device_gb = backend.memory_available_gb()
    for precision in settings.precisions:
        reason = backend.precision_support(precision)
        if reason is None and device_gb is not None and estimate_model_gb(parameters, precision) > device_gb:
            reason = (f"about {estimate_model_gb(parameters, precision):.1f} GB needed in {precision}, "
                      f"{device_gb:.1f} GB free on {device}")
        for batch in settings.batch_sizes:
            for seq in seq_lengths:
                bar.set_postfix_str(f"{spec.name} {hw} b{batch} {precision}", refresh=False)
                if reason:
                    failures.append({"precision": precision, "batch_size": batch, "sequence_length": seq,
                                     "error_type": "unsupported_precision", "error": reason})
                    out.skip(spec, hw, reason, batch, seq, precision)
                    bar.update(1)
                    continue
                prepared = None
                try:
                    inputs = spec.inputs(model, batch, seq or 0)
                    text_tokens, input_tokens = sequence_tokens(spec.family, model.config, inputs)
                    if seq and text_tokens is not None and text_tokens < seq:
                        # the input builder cuts text at the model's position limit (llava: what its image
                        # tokens leave of it): stored under the requested length, the row would claim a length
                        # that never ran (and equal a shorter one's)
                        image = input_tokens - text_tokens
                        limit = getattr(getattr(model.config, "text_config", None), "max_position_embeddings", None)
                        raise UnsupportedConfiguration(
                            f"{spec.name} takes at most {text_tokens} tokens: sequence length {seq} cannot run"
                            + (f" ({image} image tokens come first in the language model's {limit} positions)"
                               if image and limit else ""))
                    prepared = backend.prepare(spec, model, inputs, precision)
                    used = prepared.precision_used
                    # a backend that runs another precision than asked (OpenVINO without f16 on this CPU runs
                    # bf16) would otherwise store a second row under that precision, and one of the two would
                    # silently replace the other in the database
                    if used != precision and (used in settings.precisions or (batch, seq, used) in measured):
                        raise UnsupportedConfiguration(
                            f"{precision} requested: {hw} runs it as {used} here, and this run measures {used} already")
                    measurement = backend.measure(prepared, warmup=settings.warmup,
                                                  min_iterations=settings.min_iterations,
                                                  min_duration_s=settings.min_duration)
                    generation = {}
                    if spec.generative and settings.generate_tokens > 0:
                        generation = backend.generation_metrics(spec, prepared, settings.generate_tokens,
                                                                settings.generate_repeats)
                except UnsupportedConfiguration as exc:
                    failures.append({"precision": precision, "batch_size": batch, "sequence_length": seq,
                                     "error_type": "unsupported", "error": str(exc)})
                    out.skip(spec, hw, str(exc), batch, seq, precision)
                    bar.update(1)
                    continue
                except Exception as exc:  # a failing cell is recorded and the matrix goes on
                    message = f"{type(exc).__name__}: {str(exc)[:400]}"
                    log.warning("%s on %s (batch %s, %s) failed: %s", spec.name, hw, batch, precision, message)
                    failures.append({"precision": precision, "batch_size": batch, "sequence_length": seq,
                                     "error_type": "runtime_error", "error": message})
                    out.skip(spec, hw, message, batch, seq, precision)
                    bar.update(1)
                    continue
                finally:
                    if prepared is not None:
                        backend.release(prepared)
                items = prepared.items or items_in(inputs)
                measured.add((batch, seq, prepared.precision_used))
                shapes = _shapes_that_ran(inputs)
                if seq and input_tokens is not None and input_tokens != text_tokens:
                    # llava: the language model ran the image tokens too; sequence_length is the text alone
                    shapes.update({"input_tokens": input_tokens, "image_tokens": input_tokens - text_tokens})
                _add_result(spec, hw, device, batch, seq, precision, prepared, measurement, generation, items,
                            parameters, detection, settings, out, latency_stats, shapes=shapes)
                ok_cells += 1
                bar.update(1)
    if ok_cells:
        out.compat(spec, hw, device, ok=True, message=None, error_type=None,
                   metadata={"measured_configurations": ok_cells, "failed_configurations": failures} if failures
                   else {"measured_configurations": ok_cells})
    elif failures:
        first = failures[0]
        out.compat(spec, hw, device, ok=False, message=first["error"], error_type=first["error_type"],
                   init_ok=False, metadata={"failed_configurations": failures})


def _shapes_that_ran(inputs: dict) -> dict:
    """Token lengths an encoder-decoder ran beyond the one stored as `sequence_length`.

    t5: `sequence_length` is the encoder's input length; the decoder runs its own (capped at 16 tokens by the
    input builder), which the row must say. whisper: the decoder length is the stored sequence length."""
    decoder = inputs.get("decoder_input_ids")
    if decoder is None or not hasattr(decoder, "shape"):
        return {}
    shapes = {"decoder_sequence_length": int(decoder.shape[-1])}
    encoder = inputs.get("input_ids")
    if encoder is not None and hasattr(encoder, "shape"):
        shapes["encoder_sequence_length"] = int(encoder.shape[-1])
        shapes["sequence_length_measures"] = "encoder input tokens; the decoder ran decoder_sequence_length tokens"
    else:
        shapes["sequence_length_measures"] = "decoder input tokens"
    return shapes


def _add_result(spec, hw, device, batch, seq, precision, prepared, measurement, generation, items, parameters,
                detection, settings, out: _Collector, latency_stats, shapes: dict | None = None):
    stats = latency_stats(measurement.samples_ms)
    single = stats["count"] < 2
    if single:  # one call has no spread: a stddev and CV of 0 would claim the steadiest result possible
        stats = {**stats, "stddev_ms": None, "cv": None, "high_cv": None}
    extra = dict(measurement.extra or {})
    web = extra.pop("web_result", None)
    emulated = bool(extra.get("is_emulated", detection.is_emulated))
    memory = measurement.device_peak_mb if measurement.device_peak_mb is not None else measurement.peak_rss_mb
    # memory_peak_mb holds one of two different things: say which, so no reader compares them unknowingly
    memory_measures = (f"{hw} device memory: peak allocated by the framework in the measured phase"
                       if measurement.device_peak_mb is not None else
                       "host: peak resident set size (RSS) of the whole runner process in the measured phase, "
                       "including the Python runtime and the model weights")
    metrics = {
        "cv": stats["cv"], "high_cv": stats["high_cv"], "latency_min_ms": stats["min_ms"],
        "latency_max_ms": stats["max_ms"], "requested_precision": precision,
        "host_peak_rss_mb": measurement.peak_rss_mb, "device_peak_memory_mb": measurement.device_peak_mb,
        "memory_peak_measures": memory_measures if memory is not None else None,
        "parameters_million": round(parameters / 1e6, 3), "items_per_call": items,
        "min_iterations": settings.min_iterations, "min_duration_s": settings.min_duration,
        "is_emulated": emulated, "backend": prepared.info, "modality": spec.modality,
        "threads_requested": settings.threads, "threads_used": (prepared.info or {}).get("threads_used"),
    }
    metrics.update(shapes or {})
    metrics.update(extra)
    metrics.update(generation)
    warnings_ = []
    if stats["high_cv"]:
        warnings_.append(f"CV {stats['cv']:.1%} is above 10 %: the machine was noisy; re-run before trusting")
    elif single:
        warnings_.append("one measured call: no spread, so no stddev or CV to judge it by; "
                         "re-run with --min-iterations 2 or more before trusting")
    if extra.get("iteration_cap_reached"):
        warnings_.append(extra["iteration_cap_warning"])
        log.warning("%s on %s (batch %s, %s): %s", spec.name, hw, batch, precision, extra["iteration_cap_warning"])
    if settings.threads and metrics["threads_used"] is not None and metrics["threads_used"] != settings.threads:
        warnings_.append(f"--threads {settings.threads} asked, {hw} ran {metrics['threads_used']} threads")
    # the forward numbers stand; the row must not read as a plain ok
    generation_outcome = None
    if "generation_error" in generation:  # "not run: ..." when it would pass the model's positions
        generation_outcome = "not run" if generation["generation_error"].startswith("not run") else "failed"
        warnings_.append(f"generation of {settings.generate_tokens} tokens {generation_outcome} "
                         "(metrics.generation_error)")
        # "not run: ..." says why itself: "generation not run: not run: ..." said it twice
        log.warning("%s on %s (batch %s, %s): generation %s: %s", spec.name, hw, batch, precision,
                    generation_outcome, generation["generation_error"].removeprefix("not run: "))
    if warnings_:
        metrics["warning"] = "; ".join(warnings_)
    out.results.append({
        "model_name": spec.name, "hardware_type": hw, "device_name": device, "test_case": "inference",
        "batch_size": batch, "sequence_length": seq, "precision": prepared.precision_used,
        "total_time_seconds": measurement.total_time_s, "average_latency_ms": stats["mean_ms"],
        "latency_p50_ms": stats["p50_ms"], "latency_p90_ms": stats["p90_ms"], "latency_p95_ms": stats["p95_ms"],
        "latency_p99_ms": stats["p99_ms"], "latency_stddev_ms": stats["stddev_ms"],
        "throughput_items_per_second": items / (stats["mean_ms"] / 1000.0) if stats["mean_ms"] > 0 else None,
        "memory_peak_mb": memory, "iterations": measurement.iterations,
        "warmup_iterations": measurement.warmup_iterations, "latency_samples_ms": measurement.samples_ms,
        "is_simulated": False, "metrics": metrics})
    if web is not None:
        web.update({"model_name": spec.name, "hardware_type": hw, "device_name": device})
        out.web_results.append(web)
    status = ("ok" + (", high CV" if stats["high_cv"] else "") + (", one sample" if single else "")
              + (", emulated" if emulated else "")
              + (f", stopped at {extra['iteration_cap']:,} calls" if extra.get("iteration_cap_reached") else ""))
    if shapes and "encoder_sequence_length" in shapes:
        status += f", decoder {shapes['decoder_sequence_length']} tokens"
    if shapes and "input_tokens" in shapes:
        status += f", {shapes['input_tokens']} tokens with the image"
    if prepared.precision_used != precision:
        status += f", ran {prepared.precision_used}"
    if generation_outcome:
        status += f", generation {generation_outcome}"
    if "tokens_per_second" in generation:
        status += f", {generation['tokens_per_second']:.3g} tok/s, TTFT {generation['time_to_first_token_ms']:.1f} ms"
    out.summary.append({"model": spec.name, "hardware": hw, "batch": batch, "seq": seq,
                        "precision": prepared.precision_used, "p50_ms": round(stats["p50_ms"], 3),
                        "mean_ms": round(stats["mean_ms"], 3),
                        "items_per_s": float(f"{items / (stats['mean_ms'] / 1000.0):.4g}") if stats["mean_ms"] else None,
                        "memory_mb": round(memory, 1) if memory is not None else None,
                        "cv": round(stats["cv"], 3) if stats["cv"] is not None else None, "status": status})


# -- documents, storing --------------------------------------------------------------------------------------
def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def select_specs(settings: RunSettings) -> list:
    """The models of this run; an unknown name or a folder without a checkpoint is a UsageError."""
    from runners.models import checkpoint_spec, select_models

    specs = []
    if settings.model_path:
        specs.append(checkpoint_spec(settings.model_path))
    if settings.models or not settings.model_path:
        specs.extend(select_models(settings.models_set, settings.models))
    return specs


def benchmark_run(settings: RunSettings, *, test_name: str, command_line: str, quiet: bool = False,
                  specs: list | None = None, git: dict | None = None):
    """Run the matrix; return (runner document, summary rows). `git`: runners.measure.git_provenance() as the
    run started (read here, before measuring, without it)."""
    from benchmark_db.runner_format import document_from_run
    from runners.measure import capture_environment, git_provenance

    specs = select_specs(settings) if specs is None else specs
    git = git_provenance() if git is None else git
    started = _utc_now()
    t0 = time.perf_counter()
    collected, detections = run_matrix(specs, settings, quiet=quiet)
    elapsed = time.perf_counter() - t0
    accelerators = {name: {"available": d.available, "reason": d.reason, "device": d.device_name,
                           "driver": d.driver_version, "platform_version": d.platform_version,
                           "is_emulated": d.is_emulated} for name, d in detections.items()}
    env = capture_environment(accelerators, git=git)
    # a run whose every cell was skipped exits 1 (run_from_args): its stored run must not say it succeeded
    succeeded = bool(collected.results) or not collected.summary
    run = {"test_name": test_name, "test_type": "performance", "started_at": started, "completed_at": _utc_now(),
           "execution_time_seconds": elapsed, "success": succeeded, "git_commit": env.get("git_commit"),
           "git_branch": env.get("git_branch"), "command_line": command_line, "environment": env,
           "metadata": {"settings": asdict(settings), "models": [s.name for s in specs],
                        "results": len(collected.results),
                        "skipped": sum(1 for r in collected.summary if r["status"].startswith("skipped")),
                        **({"notes": collected.notes} if collected.notes else {})}}
    doc = document_from_run(run, list(collected.models.values()), list(collected.hardware.values()),
                            collected.results, list(collected.compatibility.values()), collected.web_results)
    return doc, collected.summary


class InterruptedAfterCommit(KeyboardInterrupt):
    """Ctrl-C after the run's transaction committed (while the database closed, or counting rows): the run
    is stored; saving it again for the updater would store it twice."""

    def __init__(self, counts: dict):
        super().__init__()
        self.counts = counts


def store_document(doc: dict, db_path: str | None, lock_timeout: float) -> dict:
    """Write a runner document through the ORM in one transaction; return row counts by table. Ctrl-C after
    the commit raises InterruptedAfterCommit (a KeyboardInterrupt that says the run is stored)."""
    from benchmark_db.errors import is_interrupt
    from benchmark_db.runner_format import records_from_document
    from benchmark_db_models import BenchmarkDB

    records = records_from_document(doc)
    counts: dict[str, int] = {}
    for record in records:
        counts[record.TABLE] = counts.get(record.TABLE, 0) + 1
    committed = False
    try:
        with BenchmarkDB(db_path, lock_timeout=lock_timeout) as db:
            db.insert_many(records)
            committed = True  # insert_many returns once its one transaction committed
    except BaseException as exc:
        # closing (DuckDB's checkpoint) after the commit: Ctrl-C, or DuckDB's own interrupt error
        if committed and (isinstance(exc, KeyboardInterrupt) or is_interrupt(exc)):
            raise InterruptedAfterCommit(counts) from None
        raise
    return counts


def check_database(db_path: str | None, lock_timeout: float) -> None:
    """Open (creating or migrating) the database before measuring, so that a corrupt, unwritable or
    locked file is reported in seconds instead of after the whole matrix has run; then let it go."""
    from benchmark_db.connection import connect

    connect(db_path, lock_timeout=lock_timeout).close()  # a data file (x.json) given as --db is DB001 there


def check_output_dir(output_dir: str) -> None:
    """Create the folder and write a probe file into it: os.access says yes to root on a read-only folder
    and cannot see a read-only mount or a full disk, which would lose the whole run at its end."""
    import tempfile

    from benchmark_db.cli import make_writable_folder

    make_writable_folder(output_dir, "--output-dir")
    try:
        fd, probe = tempfile.mkstemp(prefix=".write-probe-", dir=output_dir)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise UsageError(f"cannot write into --output-dir {output_dir}: {exc.strerror or exc}",
                         "pass a folder you can write to") from None


def write_document(doc: dict, output_dir: str) -> Path:
    """Versioned JSON for --no-db-store, named after the run so repeated runs never overwrite each other."""
    folder = Path(output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    text = json.dumps(doc, indent=1, sort_keys=True, default=str)
    stamp = str(doc["run"].get("started_at", "")).replace(":", "").replace("-", "").replace(".", "_")
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:10]
    path = folder / f"benchmark_{doc['run']['test_name']}_{stamp}_{digest}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)  # readers (the updater) never see a half-written file
    return path


def command_line_for(prog: str, argv: list[str] | None) -> str:
    from benchmark_db.lake import redact  # a --db ducklake:postgres:... password must not land in test_runs

    words = sys.argv[1:] if argv is None else list(argv)
    # each word redacted before quoting: a quoted password (password='open sesame') stays whole for redact()
    # to find, and the line stays one a shell can parse
    return shlex.join([prog, *(redact(word) for word in words)])


def _could_be_database(db_path: str) -> bool:
    """False for a --db that names a data file (x.json, results.csv) or an existing file that is not DuckDB."""
    from benchmark_db.connection import NOT_DATABASE_SUFFIXES, is_lake

    if is_lake(db_path):
        return True
    file = Path(db_path)
    if file.suffix.lower() in NOT_DATABASE_SUFFIXES:
        return False
    try:
        with open(file, "rb") as fh:
            head = fh.read(12)
    except OSError:
        return True  # not there yet: the updater creates it
    return len(head) == 0 or head[8:12] == b"DUCK"


def visualize(db_path: str | None, output_dir: str, lock_timeout: float) -> str | None:
    """The performance report from the database, written by the visualizer's library function: its main()
    set up logging with --quiet, which silenced this runner's own log (the report's path included) for the
    rest of the run."""
    from benchmark_db.connection import connect
    from benchmark_db.errors import BenchmarkDBError
    from benchmark_db.reports import ReportFilters
    from benchmark_db_visualizer import html_report

    report = Path(output_dir) / "benchmark_report.html"
    try:
        report.parent.mkdir(parents=True, exist_ok=True)
        conn = connect(db_path, read_only=True, lock_timeout=lock_timeout)
        try:
            html_report(conn, report, "performance", ReportFilters())
        finally:
            conn.close()
    except (BenchmarkDBError, OSError) as exc:
        log.warning("the report was not written (%s); the summary table above stands", exc)
        return None
    return str(report)


def _interrupted(saved: Path | None = None, db_path: str | None = None) -> int:
    """Ctrl-C while measuring or storing: the run is stored whole or not at all; say so, rather than the
    updater's generic "committed work is kept and a re-run continues from there" (benchmark_db.cli)."""
    from benchmark_db.lake import redact

    message = ("error: interrupted; nothing of this run was stored (a run is stored whole, so no partial run "
               "can look complete); re-run the command to measure it")
    if saved is not None:
        message += (f", or store the measurements saved to {saved} with benchmark_db_updater.py --input-file "
                    f"{shlex.quote(str(saved))} --db {shlex.quote(redact(db_path or ''))}")
    print(message, file=sys.stderr)
    return 130


def run_from_args(args: argparse.Namespace, *, test_name: str, prog: str, argv: list[str] | None) -> int:
    """What each runner script does: run the matrix, store or write it, print the summary."""
    from benchmark_db.cli import write_text
    from benchmark_db.connection import resolve_db_path
    from benchmark_db.lake import redact  # a ducklake:postgres:... password must not reach stderr
    from benchmark_db.output import to_table
    from runners.measure import git_provenance

    git = git_provenance()  # the code that runs: a commit or checkout during the run must not relabel it
    settings = settings_from_args(args)
    db_path = resolve_db_path(args.db)
    if args.no_db_store and args.visualize_from_db:
        log.warning("--visualize-from-db needs the database; with --no-db-store only the summary is printed")
    output_dir = args.output_dir or DEFAULT_OUTPUT_DIR
    specs = select_specs(settings)  # an unknown model is refused before a database file is created
    _resolve_hardware(settings.hardware)  # and an unknown platform (--hardware tpu created the file first)
    if not args.no_db_store:
        if db_path == ":memory:":  # "stored in :memory:", then gone when the runner exits
            raise UsageError("--db :memory: keeps nothing: the measured results would be lost when the runner "
                             "exits (and --visualize-from-db would report an empty database)",
                             "pass a database file, or --no-db-store to write JSON for benchmark_db_updater.py")
    if args.no_db_store or args.visualize_from_db:
        check_output_dir(output_dir)  # before measuring, not after (the report goes there too)
    if not args.no_db_store:
        check_database(args.db, args.lock_timeout)
    try:
        doc, summary = benchmark_run(settings, test_name=test_name, command_line=command_line_for(prog, argv),
                                     quiet=args.quiet, specs=specs, git=git)
    except KeyboardInterrupt:
        return _interrupted()
    if args.no_db_store:
        try:
            path = write_document(doc, output_dir)
        except KeyboardInterrupt:  # written to a temporary name and renamed: nothing or the whole file
            return _interrupted()
        except OSError as exc:  # the folder was writable when checked: full disk, removed, remounted read-only
            raise UsageError(f"cannot write the results into --output-dir {output_dir}: {exc.strerror or exc}",
                             "free space or pass a folder you can write to, and re-run") from None
        # the command as it works when pasted: the database this run would have stored into (--db or the default)
        ingest = ["benchmark_db_updater.py", "--auto-store", "--auto-store-dir", output_dir]
        not_database = db_path != ":memory:" and not _could_be_database(db_path)
        if db_path != ":memory:" and not not_database:  # (a database that would be gone when the updater exits)
            ingest += ["--db", redact(db_path)]
        if getattr(args, "data_path", None):
            ingest += ["--data-path", args.data_path]
        if not_database:  # --db x.json: the updater would refuse it (DB001), so the hint must not pass it on
            log.info("wrote %s (ingest with %s --db DATABASE, passing a database path: %s is not a DuckDB "
                     "database)", path, shlex.join(ingest), redact(db_path))
        else:
            log.info("wrote %s (ingest with %s)", path, shlex.join(ingest))
    else:
        from benchmark_db.errors import DBConnectionError, SchemaError, is_interrupt

        try:
            try:
                counts = store_document(doc, args.db, args.lock_timeout)
            except Exception as exc:
                if is_interrupt(exc):  # Ctrl-C that DuckDB caught inside a query
                    raise KeyboardInterrupt from None
                raise
        except InterruptedAfterCommit as stored:  # the transaction committed: the run is stored, whole
            print(f"error: interrupted after the run was stored in {redact(db_path)} (stored whole: "
                  f"{', '.join(f'{v} {k}' for k, v in stored.counts.items())}); nothing to store again",
                  file=sys.stderr)
            return 130
        except KeyboardInterrupt:  # storing, or waiting for another process's lock: keep the measurements
            try:
                saved = write_document(doc, output_dir)
            except (OSError, KeyboardInterrupt) as write_exc:
                log.warning("could not save the results to %s either: %s", output_dir, write_exc)
                saved = None
            return _interrupted(saved, db_path)
        except (DBConnectionError, SchemaError) as exc:
            # the measurements took long: keep them as a file the updater can ingest once the database works
            try:
                path = write_document(doc, output_dir)
            except OSError as write_exc:
                log.warning("could not save the results to %s either: %s", output_dir, write_exc)
                raise exc from None
            exc.hint = (f"{exc.hint + '; ' if exc.hint else ''}the measurements were saved to {path}: once the "
                        f"database works, run benchmark_db_updater.py --input-file {shlex.quote(str(path))} "
                        f"--db {shlex.quote(redact(db_path))}")
            raise
        log.info("stored in %s: %s", redact(db_path), ", ".join(f"{v} {k}" for k, v in counts.items()))
    write_text(to_table(summary) if summary else "no benchmark cells", None)
    measured = sum(1 for row in summary if not row["status"].startswith("skipped"))
    capped = sum(1 for row in summary if ", stopped at " in row["status"])
    if capped:  # each such row says so in metrics.warning; the run's log says it once more, at the end
        from runners.measure import MAX_ITERATIONS

        log.warning("%d of %d measured cells stopped at the cap of %s measured calls before --min-duration was "
                    "reached (metrics.iteration_cap_reached)", capped, measured, f"{MAX_ITERATIONS:,}")
    log.info("%d measured, %d skipped in %.1f s", measured, len(summary) - measured,
             doc["run"].get("execution_time_seconds") or 0.0)
    if args.visualize_from_db and not args.no_db_store:
        report = visualize(args.db, output_dir, args.lock_timeout)
        if report:
            log.info("report: %s", report)
    if summary and not measured:
        # a CI job or cron run that measured nothing (no such hardware here, every model over the memory budget)
        # must not pass as a benchmark run; what was stored (the compatibility rows saying why) stays stored
        log.warning("nothing was measured: all %d cells were skipped (the status column says why); exit %d",
                    len(summary), EXIT_FINDING)
        return EXIT_FINDING
    return 0


def build_runner_parser(prog: str, doc: str) -> argparse.ArgumentParser:
    """The parser every runner script shares: its docstring's first line and examples, the runner options."""
    parser = argparse.ArgumentParser(prog=prog, description=doc.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(doc.splitlines()[2:5]))
    add_runner_options(parser)
    return parser


def runner_main(prog: str, doc: str, test_name: str, argv: list[str] | None = None) -> int:
    """`main()` of a runner script: parse, run the matrix, store; errors as one line."""
    from benchmark_db.cli import run_cli

    return run_cli(build_runner_parser(prog, doc),
                   lambda args: run_from_args(args, test_name=test_name, prog=prog, argv=argv), argv)

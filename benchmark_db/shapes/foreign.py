"""Readers for other benchmark tools' result files: optimum-benchmark and pytest-benchmark.

optimum-benchmark writes `benchmark_report.json` (report sections such as `forward`, `decode`, each with a
`latency` block in seconds holding every raw sample), `benchmark_config.json` (backend, scenario, launcher,
environment) and `benchmark.json` (both under `config` and `report`). pytest-benchmark's `--benchmark-json`
holds `benchmarks[*].stats` (seconds, raw samples in `stats.data`), `machine_info` and `commit_info`.
"""
from __future__ import annotations

import json
import os
import re

from benchmark_db.normalize import memory_to_mb, normalize_precision, positive, time_unit, to_float, to_int
from benchmark_db.shapes.base import Builder, ShapeSkip, pointer_join

_OPTIMUM_CONFIG_KEYS = {"backend", "scenario", "launcher"}


def _is_report_section(value) -> bool:
    return isinstance(value, dict) and isinstance(value.get("latency"), dict) and (
        "values" in value["latency"] or "mean" in value["latency"]) and "unit" in value["latency"]


# what an optimum-benchmark report section holds (trackers: latency, throughput, memory, energy, efficiency)
_SECTION_KEYS = frozenset(("latency", "throughput", "memory", "energy", "efficiency"))
# optimum-benchmark 0.0/0.1 reported flat keys: `forward.latency(s)`, `decode.throughput(tokens/s)`
_FLAT_REPORT_KEY = re.compile(r"^[a-z_]+\.(latency|throughput|peak_memory|energy)\(")
# config keys of the experiment layout (optimum-benchmark before 0.2: `benchmark` where `scenario` is now)
_EXPERIMENT_CONFIG_KEYS = {"backend", "benchmark", "launcher"}


def _is_config(value) -> bool:
    return isinstance(value, dict) and (_OPTIMUM_CONFIG_KEYS <= set(value) or _EXPERIMENT_CONFIG_KEYS <= set(value))


def is_optimum(doc) -> bool:
    if not isinstance(doc, dict):
        return False
    if _is_config(doc.get("config")):
        return True
    if _is_config(doc) and isinstance(doc.get("backend"), dict):
        return True
    report = doc.get("report") if isinstance(doc.get("report"), dict) else doc
    if any(type(k) is str and _FLAT_REPORT_KEY.match(k) for k in report):
        return True
    # the cheap test first: a report holds only sections (dicts of the trackers' blocks) and nulls; a result
    # file keyed by device whose entries also name a model or a batch size is not one
    return all(v is None or (isinstance(v, dict) and set(v) <= _SECTION_KEYS) for v in report.values()) and any(
        _is_report_section(v) for v in report.values())


# the latency block's fields a column holds (in ms): the others (`stdev_`, the stdev in percent of the mean)
# stay in the row's metrics
_LATENCY_COLUMNS = frozenset(("unit", "values", "count", "total", "mean", "p50", "p90", "p95", "p99", "stdev"))


def _sibling(path: str, name: str) -> dict | None:
    """The JSON object in file `name` beside `path`, or None (absent, unreadable, too big, not an object)."""
    try:
        candidate = os.path.join(os.path.dirname(path), name)
        if os.path.isfile(candidate) and os.path.getsize(candidate) < 20_000_000:
            with open(candidate, encoding="utf-8") as handle:
                value = json.load(handle)
            return value if isinstance(value, dict) else None
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return None


# the throughput units that count items (samples) per second; optimum-benchmark's tokens/s (prefill: batch x
# sequence tokens, decode: batch x new tokens) and images/s (x images per prompt) are other quantities
_ITEM_UNITS = ("samples/s", "items/s")


def _optimum_device(device, backend: dict, environment: dict, gpus: list[str]) -> str | None:
    """optimum-benchmark says `cuda` on AMD GPUs too (ROCm builds of torch take the CUDA device API): a torch
    version `+rocm...`, or AMD GPU names, make it `rocm`."""
    if device != "cuda":
        return device
    versions = " ".join(str(environment.get(k) or "") for k in ("torch_version", "rocm_version", "amdsmi_version"))
    versions += " " + str(backend.get("version") or "")
    if "rocm" in versions.lower() or any(g.upper().startswith(("AMD", "RADEON")) for g in gpus):
        return "rocm"
    return device


def _gpu_names(environment: dict) -> list[str]:
    """The GPU names optimum-benchmark records: a list under `gpu` (0.2 on), one name (the experiment layout
    wrote `available_gpus[0]`), or `gpus`."""
    for key in ("gpu", "gpus"):
        value = environment.get(key)
        if isinstance(value, str) and value.strip():
            return [value.strip()]
        if isinstance(value, list):
            return [str(v).strip() for v in value if isinstance(v, str) and v.strip()]
    return []


def read_optimum(b: Builder, doc: dict) -> str:
    if isinstance(doc.get("config"), dict):
        config, report = doc["config"], doc.get("report")
    elif _is_config(doc):
        raise ShapeSkip("optimum-benchmark configuration, no results")
    elif any(type(k) is str and _FLAT_REPORT_KEY.match(k) for k in doc):
        raise ShapeSkip("optimum-benchmark 0.1 flat report (keys such as forward.latency(s)): that layout keeps "
                        "no model or device (they are in its hydra config); not read")
    else:
        # optimum-benchmark saves one run three ways: benchmark.json holds this very report with its config.
        # Taking both would store every result of the run twice, so the combined file is the one taken.
        combined = _sibling(b.path, "benchmark.json") if os.path.basename(b.path) != "benchmark.json" else None
        if combined is not None and combined.get("report") == doc and isinstance(combined.get("config"), dict):
            raise ShapeSkip("optimum-benchmark report also held, with its config, by benchmark.json beside it: "
                            "its results are taken from that file")
        config, name = _sibling(b.path, "benchmark_config.json"), "benchmark_config.json"
        if config is None:  # the experiment layout's name (optimum-benchmark before 0.2)
            config, name = _sibling(b.path, "experiment_config.json"), "experiment_config.json"
        report = doc
        if config is None:
            raise ShapeSkip("optimum-benchmark report without its benchmark_config.json (or experiment_config.json) "
                            "beside it: no model or device")
        b.note(f"model and device from the sibling {name}")
    if not isinstance(report, dict):
        raise ShapeSkip("optimum-benchmark file without a report, no results")
    backend = config.get("backend") if isinstance(config.get("backend"), dict) else {}
    scenario = next((config[k] for k in ("scenario", "benchmark") if isinstance(config.get(k), dict)), {})
    environment = config.get("environment") if isinstance(config.get("environment"), dict) else {}
    shapes = scenario.get("input_shapes") if isinstance(scenario.get("input_shapes"), dict) else {}
    model = backend.get("model")
    device = backend.get("device")
    b.test_name = str(config.get("name") or "optimum-benchmark")
    b.environment = environment or None
    b.run_metadata = {"tool": "optimum-benchmark", "config": config}
    b.model_id(model, family=backend.get("model_type"), source="optimum-benchmark",
               metadata={"task": backend.get("task"), "library": backend.get("library")})
    cpu_name = (environment.get("cpu") or "").strip() or None if isinstance(environment.get("cpu"), str) else None
    gpus = _gpu_names(environment)
    hardware = _optimum_device(device, backend, environment, gpus)
    if hardware != device:
        b.note(f"device {device} on {gpus[0] if gpus else 'a ROCm build of torch'}: stored as {hardware}")
    device = hardware
    # the CPU's name only for a CPU run: a GPU run without GPU names has no device name (NULL), not the CPU's
    device_name = cpu_name if device == "cpu" else (gpus[0] if gpus else None)
    ram_mb = to_float(environment.get("cpu_ram_mb"))  # psutil's total / 1e6: megabytes, not MiB
    b.hardware_id(device, device_name, platform=environment.get("platform"),
                  compute_units=to_int(environment.get("cpu_count")) if device == "cpu" else None,
                  memory_gb=round(ram_mb * 1e6 / 2 ** 30, 2) if device == "cpu" and ram_mb else None)
    batch = to_int(shapes.get("batch_size"))
    seq = to_int(shapes.get("sequence_length"))
    precision = normalize_precision(backend.get("torch_dtype") or backend.get("dtype")) or None
    for section, block in report.items():
        if not isinstance(block, dict):
            continue
        pointer = pointer_join("/report" if "report" in doc else "", section)
        latency = block.get("latency") if isinstance(block.get("latency"), dict) else {}
        unit = time_unit(latency.get("unit")) or "s"
        factor = {"s": 1000.0, "ms": 1.0, "us": 0.001, "ns": 1e-6, "min": 60000.0}[unit]
        if unit != "ms" and latency:
            b.note(f"latency {unit} -> ms ({section}.latency)")

        def ms(value, factor=factor):
            f = to_float(value)
            return f * factor if f is not None else None

        values = latency.get("values") if isinstance(latency.get("values"), list) else None
        samples = [ms(v) for v in values] if values else None
        throughput = block.get("throughput") if isinstance(block.get("throughput"), dict) else {}
        memory = block.get("memory") if isinstance(block.get("memory"), dict) else {}
        peak = None
        for key in ("max_process_vram", "max_allocated", "max_ram"):
            if device != "cpu" or key == "max_ram":
                peak = peak or positive(memory_to_mb(memory.get(key), memory.get("unit") or "MB"))
        throughput_value = None
        throughput_unit = str(throughput.get("unit", "")).lower() if throughput else ""
        if throughput_unit in _ITEM_UNITS:
            throughput_value = positive(throughput.get("value"))
        elif throughput:
            b.note(f"{section}.throughput in {throughput.get('unit')} kept in metrics, not as items/s")
        b.add_performance(
            pointer, model=model, hardware=device, device_name=device_name, test_case=section,
            batch_size=batch, sequence_length=seq, precision=precision,
            average_latency_ms=ms(latency.get("mean")), latency_p50_ms=ms(latency.get("p50")),
            latency_p90_ms=ms(latency.get("p90")), latency_p95_ms=ms(latency.get("p95")),
            latency_p99_ms=ms(latency.get("p99")), latency_stddev_ms=ms(latency.get("stdev")),
            total_time_seconds=(ms(latency.get("total")) or 0) / 1000 or None,
            iterations=to_int(latency.get("count")), warmup_iterations=to_int(scenario.get("warmup_runs")),
            throughput_items_per_second=throughput_value, memory_peak_mb=peak, latency_samples_ms=samples,
            metrics={"throughput": throughput or None, "memory": memory or None,
                     "latency": {k: v for k, v in latency.items() if k not in _LATENCY_COLUMNS} or None,
                     "energy": block.get("energy"), "efficiency": block.get("efficiency"),
                     "throughput_unit": throughput.get("unit") if throughput else None})
    return "optimum_benchmark"


def is_pytest_benchmark(doc) -> bool:
    """`--benchmark-json` output: `benchmarks`, each with its `stats` (and `machine_info` beside them, which a
    hand-trimmed or very old file may lack: the benchmarks' own fields tell it apart then)."""
    if not (isinstance(doc, dict) and isinstance(doc.get("benchmarks"), list)
            and all(isinstance(x, dict) and "stats" in x for x in doc["benchmarks"])):
        return False
    return isinstance(doc.get("machine_info"), dict) or bool(doc["benchmarks"]) and all(
        isinstance(x["stats"], dict) and ("fullname" in x or "name" in x) and ("mean" in x["stats"] or "data" in x["stats"])
        for x in doc["benchmarks"])


def read_pytest_benchmark(b: Builder, doc: dict) -> str:
    machine = doc.get("machine_info") if isinstance(doc.get("machine_info"), dict) else {}
    commit = doc.get("commit_info") if isinstance(doc.get("commit_info"), dict) else {}
    cpu = machine.get("cpu") if isinstance(machine.get("cpu"), dict) else {}
    b.test_name = "pytest-benchmark"
    b.started_at = b.time_of(doc.get("datetime"))
    b.git_commit = commit.get("id") if isinstance(commit.get("id"), str) else None
    b.git_branch = commit.get("branch") if isinstance(commit.get("branch"), str) else None
    b.environment = {"machine_info": machine} if machine else None
    b.run_metadata = {"tool": "pytest-benchmark", "version": doc.get("version"), "commit_info": commit or None}
    # py-cpuinfo's `brand_raw`; before py-cpuinfo 7 (pytest-benchmark 3.x files) it was `brand`
    brand = next((cpu[k] for k in ("brand_raw", "brand") if isinstance(cpu.get(k), str) and cpu[k].strip()), None)
    device_name = brand.strip() if brand else None
    b.hardware_id("cpu", device_name, platform=machine.get("system"),
                  compute_units=to_int(cpu.get("count")), metadata={"node": machine.get("node"),
                                                                    "machine": machine.get("machine")})
    if not doc["benchmarks"]:
        raise ShapeSkip("pytest-benchmark file with no benchmarks")
    b.note("latency s -> ms (benchmarks[*].stats)")
    for index, bench in enumerate(doc["benchmarks"]):
        stats = bench.get("stats") if isinstance(bench.get("stats"), dict) else {}
        name = bench.get("fullname") or bench.get("name")

        def ms(key, stats=stats):
            f = to_float(stats.get(key))
            return f * 1000 if f is not None else None

        data = stats.get("data") if isinstance(stats.get("data"), list) else None
        samples = [to_float(x) * 1000 for x in data if to_float(x) is not None] if data else None
        # a test's name, not a model's: no family is read into it (`test_revitalize_tokens` is no ViT)
        b.model_id(name, source="pytest-benchmark", infer_family=False,
                   metadata={"group": bench.get("group"), "params": bench.get("params")})
        b.add_performance(
            pointer_join("/benchmarks", index), model=name, hardware="cpu", device_name=device_name,
            test_case=bench.get("group") or bench.get("name"), average_latency_ms=ms("mean"),
            latency_p50_ms=ms("median"), latency_stddev_ms=ms("stddev"),
            total_time_seconds=to_float(stats.get("total")), iterations=to_int(stats.get("rounds")),
            throughput_items_per_second=positive(stats.get("ops")), latency_samples_ms=samples,
            created_at=b.started_at,
            metrics={"stats": {k: v for k, v in stats.items() if k != "data"}, "options": bench.get("options"),
                     "params": bench.get("params"), "param": bench.get("param"),
                     "extra_info": bench.get("extra_info"), "throughput_unit": "calls/s (pytest-benchmark ops)"})
    return "pytest_benchmark"

"""Web-platform runs (WebNN / WebGPU in a browser): per-run `result.json` files and platform comparisons.

A run's `result.json` names the model, the platform, the test page and its metrics (load, inference,
memory, throughput); it becomes a `web_platform_results` row and, when it has a measurement, a performance
row for the same model on that platform. `is_simulation` / `platform_support.simulated` / an
implementation type naming SIMULATED flag both rows simulated.
"""
from __future__ import annotations

from benchmark_db.normalize import known_hardware, names_simulation, positive, text_or_none, to_bool
from benchmark_db.shapes.base import Builder, ShapeSkip, pointer_join, record_is_simulated, walk_measurements

_WEB = ("webgpu", "webnn")
_RUN_KEYS = frozenset(("test_file", "browser", "browser_name", "headless", "browser_opened", "platform_support",
                       "adapter"))


def is_web_result(doc) -> bool:
    return (isinstance(doc, dict) and known_hardware(doc.get("platform") or doc.get("hardware")) in _WEB
            and not _RUN_KEYS.isdisjoint(doc))


def read_web_result(b: Builder, doc: dict) -> str:
    platform = known_hardware(doc.get("platform") or doc.get("hardware"))
    support = doc.get("platform_support") if isinstance(doc.get("platform_support"), dict) else {}
    metrics = doc.get("metrics") if isinstance(doc.get("metrics"), dict) else {}
    simulated = (record_is_simulated(doc) or to_bool(support.get("simulated")) is True
                 or names_simulation(doc.get("implementation_type")))
    model = doc.get("model_name") or doc.get("model") or doc.get("model_key")
    b.test_name = text_or_none(doc.get("test_file"), 300) or f"{platform} web platform test"
    b.started_at = b.time_of(doc.get("timestamp"))
    b.success = to_bool(doc.get("status")) if doc.get("status") is not None else to_bool(doc.get("success"))
    mapped = {"model_key", "model_name", "model", "platform", "status", "test_file", "timestamp", "metrics",
              "is_simulation", "browser", "browser_version", "adapter"}
    b.run_metadata = {k: v for k, v in doc.items() if k not in mapped}
    b.model_id(model, family=doc.get("model_key") if isinstance(doc.get("model_key"), str) else None,
               modality=doc.get("modality") if isinstance(doc.get("modality"), str) else None)
    memory_key = "memory_mb" if metrics.get("memory_mb") else "memory_usage_mb"
    times = {key: positive(metrics.get(key)) for key in _TIME_COLUMNS}
    memory = positive(metrics.get(memory_key))
    # the row's metrics keep what its columns do not hold; implementation_type and platform_support are the
    # document's own fields, kept once in the run's metadata (and in the stored original)
    unmapped = _unmapped(metrics, {**times, memory_key: memory})
    b.add_web("", model=model, hardware=platform, platform=platform,
              browser=text_or_none(doc.get("browser") or doc.get("browser_name"), 100),
              browser_version=text_or_none(doc.get("browser_version"), 100),
              adapter=text_or_none(doc.get("adapter"), 300),
              is_emulated=True if simulated else None, test_file=text_or_none(doc.get("test_file"), 500),
              success=b.success, memory_usage_mb=memory, error_message=text_or_none(doc.get("error"), 2000),
              is_simulated=simulated, metrics=unmapped or None, created_at=b.started_at, **times)
    if b.success is not False:
        b.add_performance("/metrics", model=model, hardware=platform, test_case="web_platform",
                          average_latency_ms=times["inference_time_ms"],
                          throughput_items_per_second=positive(metrics.get("throughput_items_per_second")),
                          memory_peak_mb=memory, is_simulated=simulated, created_at=b.started_at,
                          metrics={"load_time_ms": metrics.get("load_time_ms")}
                          if metrics.get("load_time_ms") is not None else None)
    return "web_platform"


_TIME_COLUMNS = ("load_time_ms", "initialization_time_ms", "inference_time_ms", "total_time_ms",
                 "shader_compilation_time_ms")


def _unmapped(fields: dict, columns: dict) -> dict:
    """`fields` without those whose very value a column holds: a refused value (a latency of 0) or one the
    column spells differently ("yes" for true, a cut error text) stays in metrics."""
    def held(key, value) -> bool:
        column = columns.get(key)
        return column is not None and column == value and isinstance(column, bool) == isinstance(value, bool)

    return {k: v for k, v in fields.items() if not held(k, v)}


def is_web_comparison(doc) -> bool:
    return isinstance(doc, dict) and isinstance(doc.get("results_by_modality"), dict)


def read_web_comparison(b: Builder, doc: dict) -> str:
    b.test_name = "web platform comparison"
    b.started_at = b.time_of(doc.get("timestamp"))
    b.run_metadata = {k: v for k, v in doc.items() if k not in ("results_by_modality", "timestamp")}
    found = 0
    for modality, entries in doc["results_by_modality"].items():
        if not isinstance(entries, list):
            continue
        for index, entry in enumerate(entries):
            if not isinstance(entry, dict):
                continue
            model = entry.get("model")
            # the model's row first, with the modality the document files it under: the web row below would
            # make it without one (or with a guess from its name)
            b.model_id(model, modality=modality)
            for platform, result in entry.items():
                kind = known_hardware(platform)
                if kind not in _WEB or not isinstance(result, dict):
                    continue
                pointer = pointer_join(pointer_join(pointer_join("/results_by_modality", modality), index), platform)
                simulated = record_is_simulated(result)
                columns = {"success": to_bool(result.get("success")), "time_ms": positive(result.get("time_ms")),
                           "memory_mb": positive(result.get("memory_mb")),
                           "error": text_or_none(result.get("error"), 2000)}
                found += b.add_web(pointer, model=model, hardware=kind, platform=kind, success=columns["success"],
                                   inference_time_ms=columns["time_ms"], memory_usage_mb=columns["memory_mb"],
                                   error_message=text_or_none(result.get("error"), 2000), is_simulated=simulated,
                                   is_emulated=True if simulated else None,
                                   metrics={**_unmapped(result, columns), "modality": modality},
                                   created_at=b.started_at)
    if not found:
        raise ShapeSkip("web platform comparison without per-model results")
    walk_measurements(b, doc["results_by_modality"], "/results_by_modality", {"created_at": b.started_at})
    return "web_platform"

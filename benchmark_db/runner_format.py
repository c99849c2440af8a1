"""The versioned JSON document the runners write, and its conversion to ORM records.

One document holds one runner invocation: the run (command line, environment, git state), the models and
hardware it touched, every performance result with its raw samples, the compatibility rows (absent
platforms, skipped models) and the browser results. The runners build it with `document_from_run`; with
`--no-db-store` they write it into `--output-dir`, otherwise they store `records_from_document(doc)` directly.
The updater/converter hands documents with `"producer": "benchmark-db-runner"` to `records_from_document`
with the file's path and sha256, so a stored file and a direct run give the same rows (only the run id,
which for a file derives from its hash, differs). Version 1 is the first; later versions must keep
reading it.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from benchmark_db import identity
from benchmark_db.errors import DataConversionError

FORMAT_VERSION = 1
PRODUCER = "benchmark-db-runner"

_RUN_FIELDS = ("test_name", "test_type", "started_at", "completed_at", "execution_time_seconds", "success",
               "git_commit", "git_branch", "command_line", "environment", "metadata")
_MODEL_FIELDS = ("model_name", "model_family", "modality", "parameters_million", "source", "version", "metadata")
_HARDWARE_FIELDS = ("hardware_type", "device_name", "platform", "platform_version", "driver_version", "memory_gb",
                    "compute_units", "metadata")
_RESULT_FIELDS = ("model_name", "hardware_type", "device_name", "test_case", "batch_size", "sequence_length",
                  "precision", "total_time_seconds", "average_latency_ms", "latency_p50_ms", "latency_p90_ms",
                  "latency_p95_ms", "latency_p99_ms", "latency_stddev_ms", "throughput_items_per_second",
                  "memory_peak_mb", "iterations", "warmup_iterations", "latency_samples_ms", "is_simulated",
                  "metrics")
_COMPAT_FIELDS = ("model_name", "hardware_type", "device_name", "is_compatible", "detection_success",
                  "initialization_success", "error_message", "error_type", "suggested_fix", "workaround_available",
                  "compatibility_score", "is_simulated", "metadata")
_WEB_FIELDS = ("model_name", "hardware_type", "device_name", "platform", "browser", "browser_version", "adapter",
               "is_emulated", "test_file", "success", "load_time_ms", "initialization_time_ms", "inference_time_ms",
               "total_time_ms", "shader_compilation_time_ms", "memory_usage_mb", "error_message", "is_simulated",
               "metrics")


def _iso(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value.isoformat()
    return value


def _pick(row: dict, names: tuple[str, ...]) -> dict:
    return {name: _iso(row.get(name)) for name in names if row.get(name) is not None}


def document_from_run(run: dict, models: list[dict], hardware: list[dict], results: list[dict],
                      compatibility: list[dict] | None = None, web_results: list[dict] | None = None) -> dict:
    """The JSON-ready document of one runner invocation (plain dicts, UTC ISO timestamps)."""
    return {
        "format_version": FORMAT_VERSION,
        "producer": PRODUCER,
        "run": _pick(run, _RUN_FIELDS),
        "models": [_pick(m, _MODEL_FIELDS) for m in models],
        "hardware": [_pick(h, _HARDWARE_FIELDS) for h in hardware],
        "results": [_pick(r, _RESULT_FIELDS) for r in results],
        "compatibility": [_pick(c, _COMPAT_FIELDS) for c in compatibility or []],
        "web_results": [_pick(w, _WEB_FIELDS) for w in web_results or []],
    }


def is_runner_document(doc: Any) -> bool:
    return isinstance(doc, dict) and doc.get("producer") == PRODUCER and "format_version" in doc


def _time(value: Any, where: str) -> dt.datetime | None:
    if value is None or isinstance(value, dt.datetime):
        return value
    try:
        parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as exc:
        raise DataConversionError(f"{where}: {value!r} is not an ISO timestamp", "write UTC ISO 8601 times") from exc
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(dt.UTC).replace(tzinfo=None)
    return parsed


def records_from_document(doc: dict, path: str | None = None, sha256: str | None = None) -> list:
    """ORM records for a runner document. With `sha256` (a file), the run id is stable_id('source', sha256)
    and the run carries source_path/source_sha256; without it (a direct run) the run id is the run's
    natural id."""
    from benchmark_db_models import (
        HardwareCompatibility,
        HardwarePlatforms,
        Models,
        PerformanceResults,
        TestRuns,
        WebPlatformResults,
    )

    where = path or "runner document"
    if not is_runner_document(doc):
        raise DataConversionError(f"{where} is not a benchmark-db-runner document",
                                  f"expected \"producer\": \"{PRODUCER}\" and a format_version")
    version = doc.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise DataConversionError(f"{where}: format_version {version!r} is not a positive integer",
                                  "write the document with runners/ of this toolkit")
    if version > FORMAT_VERSION:
        raise DataConversionError(f"{where}: format_version {version} is newer than this code reads "
                                  f"({FORMAT_VERSION})", "upgrade the toolkit")
    run = dict(doc.get("run") or {})
    if not run.get("test_name"):
        raise DataConversionError(f"{where}: the run has no test_name", "write documents with the runners")
    test_run = TestRuns(
        test_name=run["test_name"], test_type=run.get("test_type"), started_at=_time(run.get("started_at"), where),
        completed_at=_time(run.get("completed_at"), where), execution_time_seconds=run.get("execution_time_seconds"),
        success=run.get("success"), git_commit=run.get("git_commit"), git_branch=run.get("git_branch"),
        command_line=run.get("command_line"), environment=run.get("environment"), metadata=run.get("metadata"),
        source_path=path if sha256 else None, source_sha256=sha256)
    test_run.run_id = identity.stable_id("source", sha256) if sha256 else test_run.natural_id()
    run_id = test_run.run_id
    # a row without its own time was measured during the run: stored directly it used to get the store time
    # (the column's default), read from a file left by --no-db-store none at all (the oldest in every report)
    measured_at = test_run.completed_at or test_run.started_at
    test_run.created_at = test_run.created_at or measured_at
    records: list = []
    for m in doc.get("models") or []:
        if not m.get("model_name"):
            raise DataConversionError(f"{where}: a model without model_name", "every model needs a name")
        records.append(Models(**{k: m.get(k) for k in _MODEL_FIELDS}, model_id=identity.model_id_for(m["model_name"])))
    for h in doc.get("hardware") or []:
        if not h.get("hardware_type"):
            raise DataConversionError(f"{where}: a hardware entry without hardware_type", "every platform needs a type")
        records.append(HardwarePlatforms(**{k: h.get(k) for k in _HARDWARE_FIELDS},
                                         hardware_id=identity.hardware_id_for(h["hardware_type"], h.get("device_name"))))
    records.append(test_run)

    def ids(row: dict, kind: str) -> tuple[int | None, int]:
        if not row.get("hardware_type"):
            raise DataConversionError(f"{where}: a {kind} row without hardware_type", "name the hardware")
        model_id = identity.model_id_for(row["model_name"]) if row.get("model_name") else None
        return model_id, identity.hardware_id_for(row["hardware_type"], row.get("device_name"))

    for r in doc.get("results") or []:
        model_id, hardware_id = ids(r, "result")
        if model_id is None:
            raise DataConversionError(f"{where}: a result without model_name", "name the model")
        values = {k: r.get(k) for k in _RESULT_FIELDS if k != "device_name"}
        values["is_simulated"] = bool(values.get("is_simulated") or False)
        record = PerformanceResults(model_id=model_id, hardware_id=hardware_id, run_id=run_id, **values)
        record.created_at = record.created_at or measured_at
        record.result_id = record.natural_id()
        records.append(record)
    for c in doc.get("compatibility") or []:
        model_id, hardware_id = ids(c, "compatibility")
        values = {k: c.get(k) for k in _COMPAT_FIELDS if k not in ("model_name", "hardware_type", "device_name")}
        values["is_simulated"] = bool(values.get("is_simulated") or False)
        record = HardwareCompatibility(hardware_id=hardware_id, model_id=model_id, run_id=run_id, **values)
        record.created_at = record.created_at or measured_at
        record.compatibility_id = record.natural_id()
        records.append(record)
    for w in doc.get("web_results") or []:
        model_id, hardware_id = ids(w, "web")
        values = {k: w.get(k) for k in _WEB_FIELDS if k not in ("model_name", "hardware_type", "device_name")}
        values["is_simulated"] = bool(values.get("is_simulated") or False)
        record = WebPlatformResults(run_id=run_id, model_id=model_id, hardware_id=hardware_id, **values)
        record.created_at = record.created_at or measured_at
        record.result_id = record.natural_id()
        records.append(record)
    return records

"""What every shape reader shares: the `Builder` that turns facts found in a document into ORM records,
and the generic reader of one measurement record (a dict of latency/throughput/memory fields).

A shape reader finds facts; the Builder decides whether they make a row (a performance row needs a model, a
hardware type and a positive measurement), gives every row its stable id from the source file and the JSON
pointer of the record, converts units (noting each conversion) and keeps whatever it did not map in the
row's `metrics`/`metadata`, so nothing in the document is lost.
"""
from __future__ import annotations

import datetime as dt
import functools
import math
import re

from benchmark_db.identity import hardware_id_for as _hardware_id_for
from benchmark_db.identity import id_of_text as _id_of_text
from benchmark_db.identity import model_id_for as _model_id_for
from benchmark_db.identity import stable_id
from benchmark_db.names import FAMILY_MODALITY, family_of
from benchmark_db.normalize import (
    batch_seq_from_key,
    clean_model_name,
    figure_from_text,
    known_hardware,
    memory_to_mb,
    names_simulation,
    normalize_precision,
    parse_timestamp,
    positive,
    text_or_none,
    time_unit,
    timestamp_from_path,
    to_bool,
    to_float,
    to_int,
    written_as_local_time,
)
from benchmark_db.schema import MAX_BATCH_SIZE, MAX_SEQUENCE_LENGTH
from benchmark_db_models import (
    HardwareCompatibility,
    HardwarePlatforms,
    IntegrationTestResults,
    Models,
    PerformanceResults,
    TestRuns,
    WebPlatformResults,
)

# the ids of dimension rows are pure functions of their names: computed once per name per process
model_id_for = functools.lru_cache(maxsize=16384)(_model_id_for)
hardware_id_for = functools.lru_cache(maxsize=4096)(_hardware_id_for)


class ShapeSkip(Exception):
    """Raised by a reader when the document holds no results; the message is the named reason."""


def pointer_join(base: str, key) -> str:
    """RFC 6901 JSON pointer of `key` below `base`."""
    if type(key) is str and "~" not in key and "/" not in key:
        return f"{base}/{key}"  # nothing to escape (most keys)
    text = str(key).replace("~", "~0").replace("/", "~1")
    return f"{base}/{text}"


def _json_safe(value, depth: int = 0):
    """The value with non-finite floats written as JSON's spelling of them ('NaN', 'Infinity', '-Infinity',
    as the file wrote them or as Python read a number like 1e400), so metrics stay valid JSON and still say
    what the file held."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")
    if depth > 60:
        return None
    if isinstance(value, dict):
        return {str(k): _json_safe(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v, depth + 1) for v in value]
    return value


# --------------------------------------------------------------------------------------------- field aliases
# key -> unit of the value ('ms', 's', 'us', None = not stated: decided from throughput, else seconds)
LATENCY_MEAN_KEYS = {
    "average_latency_ms": "ms", "avg_latency_ms": "ms", "latency_ms": "ms", "mean_latency_ms": "ms",
    "latency_mean_ms": "ms", "latency_avg_ms": "ms", "inference_time_ms": "ms", "avg_inference_time_ms": "ms",
    "mean_inference_time_ms": "ms", "average_inference_time_ms": "ms", "time_ms": "ms", "avg_time_ms": "ms",
    "mean_time_ms": "ms", "latency_average_ms": "ms",
    "avg_latency_s": "s", "latency_s": "s", "latency_seconds": "s", "avg_latency_seconds": "s",
    "mean_latency_s": "s", "mean_latency_seconds": "s", "inference_time_s": "s", "inference_time_seconds": "s",
    "avg_time_s": "s", "avg_latency_us": "us", "latency_us": "us",
    "avg_latency": None, "average_latency": None, "mean_latency": None, "latency": None, "latency_avg": None,
    "latency_mean": None, "avg_time": "s", "mean_time": "s", "average_time": "s", "inference_time": "s",
    "avg_inference_time": "s", "mean_inference_time": "s", "average_inference_time": "s",
}
LATENCY_STAT_KEYS = {  # key -> (field, unit)
    "latency_p50_ms": ("latency_p50_ms", "ms"), "p50_latency_ms": ("latency_p50_ms", "ms"),
    "p50_ms": ("latency_p50_ms", "ms"), "median_latency_ms": ("latency_p50_ms", "ms"),
    "latency_median_ms": ("latency_p50_ms", "ms"), "latency_p50": ("latency_p50_ms", None),
    "p50_latency": ("latency_p50_ms", None), "median_latency": ("latency_p50_ms", None),
    "latency_p90_ms": ("latency_p90_ms", "ms"), "p90_latency_ms": ("latency_p90_ms", "ms"),
    "p90_ms": ("latency_p90_ms", "ms"), "latency_p90": ("latency_p90_ms", None), "p90_latency": ("latency_p90_ms", None),
    "latency_p95_ms": ("latency_p95_ms", "ms"), "p95_latency_ms": ("latency_p95_ms", "ms"),
    "p95_ms": ("latency_p95_ms", "ms"), "latency_p95": ("latency_p95_ms", None), "p95_latency": ("latency_p95_ms", None),
    "latency_p99_ms": ("latency_p99_ms", "ms"), "p99_latency_ms": ("latency_p99_ms", "ms"),
    "p99_ms": ("latency_p99_ms", "ms"), "latency_p99": ("latency_p99_ms", None), "p99_latency": ("latency_p99_ms", None),
    "latency_stddev_ms": ("latency_stddev_ms", "ms"), "latency_std_ms": ("latency_stddev_ms", "ms"),
    "std_latency_ms": ("latency_stddev_ms", "ms"), "stddev_ms": ("latency_stddev_ms", "ms"),
    "std_ms": ("latency_stddev_ms", "ms"), "latency_std": ("latency_stddev_ms", None),
    "latency_stddev": ("latency_stddev_ms", None), "std_latency": ("latency_stddev_ms", None),
}
SAMPLE_KEYS = {"latencies_ms": "ms", "latency_samples_ms": "ms", "samples_ms": "ms", "times_ms": "ms",
               "raw_latencies_ms": "ms", "latencies_s": "s", "latency_samples_s": "s", "latencies": None,
               "latency_samples": None, "raw_latencies": None, "times": "s", "run_times": "s", "timings": None}
THROUGHPUT_KEYS = ("throughput_items_per_second", "throughput_items_per_sec", "items_per_second",
                   "samples_per_second", "throughput_samples_per_sec", "throughput_samples_per_second",
                   "throughput", "mean_throughput", "avg_throughput", "throughput_mean", "average_throughput",
                   "throughput_per_second", "throughput_ips", "images_per_second", "sequences_per_second")
MEMORY_KEYS = {"memory_peak_mb": "mb", "peak_memory_mb": "mb", "memory_mb": "mb", "memory_usage_mb": "mb",
               "max_memory_mb": "mb", "peak_memory_usage_mb": "mb", "memory_used_mb": "mb", "mem_mb": "mb",
               "memory_peak_gb": "gb", "peak_memory_gb": "gb", "memory_gb": "gb", "memory_usage_gb": "gb",
               "memory_bytes": "bytes", "peak_memory_bytes": "bytes", "memory_peak_bytes": "bytes",
               # no unit in the name: read only as text that states one ("512 MB"); a bare number stays in metrics
               "memory_usage": None, "peak_memory": None, "memory_peak": None, "max_memory": None,
               "memory_used": None, "peak_memory_usage": None}
TOTAL_TIME_KEYS = {"total_time_seconds": "s", "total_time": "s", "total_time_s": "s", "total_time_ms": "ms",
                   "duration_seconds": "s", "elapsed_seconds": "s"}
ITERATION_KEYS = ("iterations", "num_iterations", "benchmark_iterations", "num_runs", "runs", "n_iterations",
                  "iters", "measured_iterations", "repetitions", "rounds")
WARMUP_KEYS = ("warmup_iterations", "warmup_runs", "warmup", "num_warmup", "warmup_iters")
BATCH_KEYS = ("batch_size", "batch", "bs")
SEQ_KEYS = ("sequence_length", "seq_len", "seq_length", "sequence_len", "input_length", "max_seq_length")
PRECISION_KEYS = ("precision", "dtype", "torch_dtype", "data_type", "quantization")
MODEL_KEYS = ("model_name", "model_path", "model", "model_id", "hf_model", "checkpoint", "test_model", "model_key")
HARDWARE_KEYS = ("hardware_type", "hardware", "device_type", "device", "platform", "backend", "hardware_key",
                 "accelerator")
# `cuda_device` names the GPU in some legacy blocks ('Quadro P4000') and the device index in others ('cuda:0'):
# only the former is a device name (see read_measurement)
DEVICE_NAME_KEYS = ("device_name", "gpu_name", "cpu_name", "processor_name", "cuda_device")
TIME_KEYS = ("timestamp", "created_at", "datetime", "date", "time", "start_time", "started_at", "run_time",
             "test_timestamp")
SIM_FLAG_KEYS = ("is_simulated", "is_simulation", "simulated", "simulation", "is_mock", "mock", "mocked",
                 "is_mocked", "simulation_mode")
SIM_TEXT_KEYS = ("implementation_type", "implementation", "impl_type", "mode")
TEST_CASE_KEYS = ("test_case", "task", "scenario", "benchmark_type", "test_type")


_SIM_FLAGS = frozenset(SIM_FLAG_KEYS)
_SIM_TEXTS = frozenset(SIM_TEXT_KEYS)
_MEASURE_KEYS = frozenset(LATENCY_MEAN_KEYS) | frozenset(THROUGHPUT_KEYS)
# what a measurement key's value written as text ("12.5 ms") must measure: figure_from_text's dimension
_TEXT_DIMENSION_OF_KEY = {**dict.fromkeys(LATENCY_MEAN_KEYS, "time"), **dict.fromkeys(THROUGHPUT_KEYS, "throughput")}
_SAMPLE_KEYSET = frozenset(SAMPLE_KEYS)


_SIM_KEYS = _SIM_FLAGS | _SIM_TEXTS


def record_is_simulated(rec: dict) -> bool:
    if _SIM_KEYS.isdisjoint(rec):
        return False
    for key in _SIM_FLAGS.intersection(rec):
        value = rec[key]
        # `"is_simulated": 1` as much as true or "yes" (a flag written by a language without booleans)
        if value is True or (isinstance(value, str | int | float) and to_bool(value)):
            return True
    for key in _SIM_TEXTS.intersection(rec):
        value = rec[key]
        if isinstance(value, str) and names_simulation(value):
            return True
    return False


def has_measurement(rec: dict) -> bool:
    """True if the dict carries a latency or throughput figure of its own (not only in sub-dicts)."""
    for key in _MEASURE_KEYS.intersection(rec):
        value = rec[key]
        if to_float(value) is not None:
            return True
        if type(value) is str and figure_from_text(value, _TEXT_DIMENSION_OF_KEY[key]) is not None:
            return True
    for key in _SAMPLE_KEYSET.intersection(rec):
        value = rec[key]
        if isinstance(value, list) and value and to_float(value[0]) is not None:
            return True
    return False


# {'latency': {'mean': .., 'p50': .., 'values': [..], 'unit': 's'}}: statistics of one figure in a block
_BLOCK_UNITS = {"latency": None, "latency_ms": "ms", "latency_s": "s", "latency_seconds": "s",
                "inference_time": None, "inference_time_ms": "ms", "latency_stats": None, "timing": None,
                "throughput": "throughput", "memory": "memory", "memory_usage": "memory", "memory_mb": "memory"}
_BLOCK_KEYSET = frozenset(_BLOCK_UNITS)
_STAT_NAMES = {"p50": "p50", "median": "p50", "p90": "p90", "p95": "p95", "p99": "p99", "std": "stddev",
               "stdev": "stddev", "stddev": "stddev"}


def expand_stat_blocks(rec: dict) -> dict:
    """The record with latency/throughput/memory statistic blocks spelled as flat fields in ms, items/s and
    MB (the block itself stays, for metrics); the record itself when it has no such block."""
    if _BLOCK_KEYSET.isdisjoint(rec):
        return rec
    blocks = [k for k in _BLOCK_KEYSET.intersection(rec) if isinstance(rec[k], dict)]
    if not blocks:
        return rec
    out = dict(rec)
    for key in blocks:
        block = rec[key]
        role = _BLOCK_UNITS[key]
        if role == "throughput":
            value = block.get("value", block.get("mean"))
            unit = str(block.get("unit", "")).lower()
            if to_float(value) is not None and (not unit or unit in ("items/s", "samples/s", "images/s")):
                out.setdefault("throughput_items_per_second", value)
            continue
        if role == "memory":
            unit = str(block.get("unit") or ("mb" if key.endswith("_mb") else "")).lower()
            for name in ("peak", "max", "max_ram", "peak_mb", "value", "max_allocated"):
                mb = memory_to_mb(block.get(name), unit or None)
                if mb is not None:
                    out.setdefault("memory_peak_mb", mb)
                    break
            continue
        unit = time_unit(block.get("unit")) or role
        suffix = f"_{unit}" if unit else ""
        factor = _FACTOR.get(unit or "", None) if unit else None
        mean = next((block[n] for n in ("mean", "avg", "average") if to_float(block.get(n)) is not None), None)
        if mean is not None:
            out.setdefault("avg_latency_ms" if factor else "avg_latency",
                           to_float(mean) * factor if factor else mean)
        for name, stat in _STAT_NAMES.items():
            value = to_float(block.get(name))
            if value is not None:
                field = f"latency_{stat}_ms" if factor else f"latency_{stat}"
                out.setdefault(field, value * factor if factor else value)
        values = block.get("values") or block.get("samples")
        if isinstance(values, list) and values:
            numbers = _numbers(values)
            if numbers is not None:
                if factor:
                    out.setdefault("latencies_ms", [x * factor for x in numbers])
                else:
                    out.setdefault("latencies", numbers)
        if suffix and factor and unit != "ms":
            out.setdefault("_unit_note", f"latency {unit} -> ms ({key} block)")
    return out


def _has_figure_lists(node: dict) -> bool:
    """{'latency_ms': [..], 'throughput': [..]}: figures of several models side by side."""
    for key in ("latency_ms", "latency", "throughput", "avg_latency", "throughput_items_per_second"):
        value = node.get(key)
        if isinstance(value, list) and value and all(isinstance(x, (int, float)) for x in value[:50]):
            return True
    return False


def deep_has_measurement(node, depth: int = 0) -> bool:
    """True if a measurement (or a list of figures) sits anywhere below `node`."""
    if depth > 12:
        return False
    if isinstance(node, dict):
        if has_measurement(node) or _has_figure_lists(node):
            return True
        return any(deep_has_measurement(v, depth + 1) for v in node.values() if isinstance(v, (dict, list)))
    if isinstance(node, list):
        return any(deep_has_measurement(v, depth + 1) for v in node[:200] if isinstance(v, (dict, list)))
    return False


# test_name of a run whose document names no script or test file: what kind of run it was
_RUN_NAMES = {"performance": "legacy performance benchmark", "compatibility": "legacy hardware compatibility test",
              "integration": "legacy integration test", "hardware": "legacy hardware detection",
              "web_platform": "web platform test"}


class Builder:
    """Collects the records of one document; `records()` returns them with the TestRuns row."""

    def __init__(self, path: str, sha256: str, doc, *, finite: bool = False,
                 local_offset: dt.timedelta | None = None):
        # finite: the parser guaranteed no NaN/Infinity (orjson refuses them), so values need no cleaning
        self.finite = finite
        # local_offset: how far UTC is ahead of the clock that wrote the document's zone-less times, when the
        # document itself shows it (convert.local_time_offset); None takes those times as UTC
        self.local_offset = local_offset
        self.path = path
        self.sha256 = sha256
        self.doc = doc
        self.run_id = stable_id("source", sha256)
        self.models: dict[str, Models] = {}
        self.hardware: dict[tuple, HardwarePlatforms] = {}
        self.facts: list = []
        self.conversions: list[str] = []
        self.categories: set[str] = set()
        self.run_metadata: dict = {}
        self.dropped: list[dict] = []  # records seen but not stored as rows, with why
        self._path_time = timestamp_from_path(path)
        if local_offset and self._path_time is not None:
            self._path_time += local_offset
        self.test_name: str | None = None
        self.started_at: dt.datetime | None = None
        self.completed_at: dt.datetime | None = None
        self.execution_time_seconds: float | None = None
        self.success: bool | None = None
        self.git_commit: str | None = None
        self.git_branch: str | None = None
        self.command_line: str | None = None
        self.environment: dict | None = None
        self._notes_seen: set[str] = set()
        self._fact_ids: set[tuple[str, int]] = set()
        self.compat_pointers: dict[int, str] = {}  # compatibility row id -> the JSON pointer it was read at
        self._id_prefix: dict[str, str] = {}
        if local_offset:
            minutes = round(local_offset.total_seconds() / 60)
            zone = f"UTC{'-' if minutes > 0 else '+'}{abs(minutes) // 60:02}:{abs(minutes) % 60:02}"
            self.note(f"times without a zone read as {zone}: the file's epoch stamps (UTC) are "
                      f"{minutes / 60:g} h ahead of them")

    @property
    def path_time(self) -> dt.datetime | None:
        """The time a YYYYMMDD_HHMMSS stamp in the file's path states (the file name's, else the nearest
        folder's), for a document that states none; read only where it is used, and then said in the ingest
        log: a folder's stamp may be a run's (the legacy layout) or, higher up, a copy's or a backup's."""
        if self._path_time is not None:
            self.note(f"time {self._path_time:%Y-%m-%d %H:%M:%S} taken from a YYYYMMDD_HHMMSS stamp in the file's "
                      "path: the document states none")
        return self._path_time

    # -- bookkeeping ---------------------------------------------------------------------------------
    def safe(self, value):
        """`value` ready for a JSON column: NaN/Infinity (which json accepts) become None."""
        return value if self.finite else _json_safe(value)

    def note(self, text: str) -> None:
        if text not in self._notes_seen and len(self.conversions) < 200:
            self._notes_seen.add(text)
            self.conversions.append(text)

    def drop(self, pointer: str, reason: str) -> None:
        if len(self.dropped) < 500:  # a reason quotes the document: a pointer or value may be huge
            self.dropped.append({"pointer": pointer[:200], "reason": reason[:400]})

    def time_of(self, *values) -> dt.datetime | None:
        for value in values:
            stamp = self.stamp(value)
            if stamp is not None:
                return stamp
        return None

    def stamp(self, value) -> dt.datetime | None:
        """A time of the document in UTC: `parse_timestamp`, with a zone-less time moved by `local_offset`."""
        stamp = parse_timestamp(value)
        if stamp is not None and self.local_offset and written_as_local_time(value):
            stamp += self.local_offset
        return stamp

    # -- dimensions ----------------------------------------------------------------------------------
    def model_id(self, name, *, family: str | None = None, modality: str | None = None,
                 parameters_million: float | None = None, source: str | None = None,
                 metadata: dict | None = None, infer_family: bool = True) -> int | None:
        # a name already known is a clean name, which clean_model_name returns unchanged
        record = self.models.get(name) if type(name) is str else None
        if record is None:
            name = clean_model_name(name)
            if name is None:
                return None
            record = self.models.get(name)
        if record is None:
            fam = (family_of(name) if infer_family else None) or (family if family in FAMILY_MODALITY else None)
            record = Models(model_name=name, model_family=fam,
                            modality=modality or FAMILY_MODALITY.get(fam or ""),
                            model_id=model_id_for(name))
            self.models[name] = record
        if parameters_million is not None and record.parameters_million is None:
            record.parameters_million = parameters_million
        if source and not record.source:
            record.source = source
        if metadata:
            record.metadata = {**(record.metadata or {}), **self.safe(metadata)}
        return record.model_id

    def hardware_id(self, hardware, device_name=None, *, platform: str | None = None,
                    platform_version: str | None = None, driver_version: str | None = None,
                    memory_gb: float | None = None, compute_units: int | None = None,
                    metadata: dict | None = None) -> int | None:
        kind = known_hardware(hardware) if isinstance(hardware, str) else None
        if kind is None:
            return None
        device = text_or_none(device_name, 200)
        key = (kind, device or "")
        record = self.hardware.get(key)
        if record is None:
            record = HardwarePlatforms(hardware_type=kind, device_name=device,
                                       hardware_id=hardware_id_for(kind, device))
            self.hardware[key] = record
        if platform is not None or platform_version is not None or driver_version is not None \
                or memory_gb is not None or compute_units is not None:  # the usual call: only the id is wanted
            # the readers pass what the document says: a number or a list where text belongs must not reach
            # the database (one such value failed the whole batch's insert)
            for attr, value in (("platform", text_or_none(platform, 200)),
                                ("platform_version", text_or_none(platform_version, 200)),
                                ("driver_version", text_or_none(driver_version, 200)),
                                ("memory_gb", positive(memory_gb)), ("compute_units", to_int(compute_units))):
                if value is not None and getattr(record, attr) is None:
                    setattr(record, attr, value)
        if metadata:
            record.metadata = {**(record.metadata or {}), **self.safe(metadata)}
        return record.hardware_id

    # -- facts ---------------------------------------------------------------------------------------
    def _claim(self, table: str, pointer: str) -> int | None:
        """The id of the row of `table` for the record at `pointer`, or None if that record has its row."""
        if type(pointer) is str:  # stable_id(table, run_id, pointer), its text built from a per-table prefix
            prefix = self._id_prefix.get(table)
            if prefix is None:
                prefix = self._id_prefix[table] = f"{table}\x1f{self.run_id}\x1f"
            row_id = _id_of_text(prefix + pointer)
        else:
            row_id = stable_id(table, self.run_id, pointer)
        if (table, row_id) in self._fact_ids:
            return None
        self._fact_ids.add((table, row_id))
        return row_id

    def add_performance(self, pointer: str, *, model, hardware, device_name=None, **values) -> bool:
        """Add one performance row if it has a model, a hardware type and a positive measurement."""
        model_name = clean_model_name(model)
        if model_name is None:
            if isinstance(model, str) and len(model) > 300:
                why = f"model name of {len(model)} characters (at most 300): {model[:60]!r}..."
            else:
                why = "no model name" if not model else f"placeholder model name {str(model)[:100]!r}"
            self.drop(pointer, why)
            return False
        hardware_type = known_hardware(hardware) if isinstance(hardware, str) else None
        if hardware_type is None:
            self.drop(pointer, "no hardware type" if not hardware else f"unknown hardware {str(hardware)[:100]!r}")
            return False
        for key in ("average_latency_ms", "throughput_items_per_second", "latency_p50_ms", "latency_p90_ms",
                    "latency_p95_ms", "latency_p99_ms", "memory_peak_mb", "total_time_seconds"):
            if key in values:
                value = values[key]
                # positive(): a finite float above 0 is kept as it is, anything else goes through it
                values[key] = value if type(value) is float and 0.0 < value < _INF else positive(value)
        if values.get("latency_stddev_ms") is not None:
            std = to_float(values["latency_stddev_ms"])
            values["latency_stddev_ms"] = std if std is not None and std >= 0 else None
        samples = values.get("latency_samples_ms")
        if samples is not None:
            values["latency_samples_ms"] = [s for s in samples if s is not None] or None
        get = values.get
        if get("average_latency_ms") is None and get("throughput_items_per_second") is None \
                and get("latency_p50_ms") is None and get("latency_samples_ms") is None:
            self.drop(pointer, "no latency or throughput measurement")
            return False
        row_id = self._claim("performance_results", pointer)
        if row_id is None:
            return False
        model_id = self.model_id(model_name, family=values.pop("model_family", None))
        hardware_id = self.hardware_id(hardware_type, device_name)
        metrics = values.pop("metrics", None)
        row = PerformanceResults(model_id=model_id, hardware_id=hardware_id, run_id=self.run_id,
                                 model_name=model_name, hardware_type=hardware_type,
                                 metrics=self.safe(metrics) if metrics else None, result_id=row_id, **values)
        if row.created_at is None:
            row.created_at = self.started_at or self.path_time
        self.facts.append(row)
        self.categories.add("performance")
        return True

    def add_compatibility(self, pointer: str, *, hardware, model=None, device_name=None, **values) -> bool:
        hardware_type = known_hardware(hardware) if isinstance(hardware, str) else None
        if hardware_type is None:
            self.drop(pointer, f"compatibility entry without a known hardware type ({hardware!r})")
            return False
        row_id = self._claim("hardware_compatibility", pointer)
        if row_id is None:
            return False
        self.compat_pointers[row_id] = pointer
        metadata = values.pop("metadata", None)
        row = HardwareCompatibility(hardware_id=self.hardware_id(hardware_type, device_name),
                                    model_id=self.model_id(model) if model else None, run_id=self.run_id,
                                    metadata=self.safe(metadata) if metadata else None,
                                    compatibility_id=row_id,
                                    **values)
        if row.created_at is None:
            row.created_at = self.started_at or self.path_time
        self.facts.append(row)
        self.categories.add("compatibility")
        return True

    def add_integration(self, pointer: str, *, test_name, status, model=None, hardware=None, **values) -> bool:
        name = text_or_none(test_name, 500)
        if name is None or status is None:
            self.drop(pointer, "integration entry without a test name or status")
            return False
        row_id = self._claim("integration_test_results", pointer)
        if row_id is None:
            return False
        metadata = values.pop("metadata", None)
        row = IntegrationTestResults(test_name=name, status=str(status), run_id=self.run_id,
                                     model_id=self.model_id(model) if model else None,
                                     hardware_id=self.hardware_id(hardware) if hardware else None,
                                     metadata=self.safe(metadata) if metadata else None,
                                     test_result_id=row_id,
                                     **values)
        if row.created_at is None:
            row.created_at = self.started_at or self.path_time
        self.facts.append(row)
        self.categories.add("integration")
        return True

    def add_web(self, pointer: str, *, model=None, hardware=None, **values) -> bool:
        row_id = self._claim("web_platform_results", pointer)
        if row_id is None:
            return False
        metrics = values.pop("metrics", None)
        row = WebPlatformResults(run_id=self.run_id, model_id=self.model_id(model) if model else None,
                                 hardware_id=self.hardware_id(hardware) if hardware else None,
                                 metrics=self.safe(metrics) if metrics else None,
                                 result_id=row_id, **values)
        if row.created_at is None:
            row.created_at = self.started_at or self.path_time
        self.facts.append(row)
        self.categories.add("web")
        return True

    # -- the run -------------------------------------------------------------------------------------
    def test_run(self, test_type: str) -> TestRuns:
        metadata = dict(self.run_metadata)
        started = self.started_at or self.path_time
        if started is None:  # the earliest time a record of the document states
            times = [r.created_at for r in self.facts if r.created_at is not None]
            started = min(times) if times else None
        if self.dropped:
            metadata["records_not_stored"] = self.dropped
        return TestRuns(test_name=self.test_name or _RUN_NAMES.get(test_type, test_type), test_type=test_type,
                        started_at=started, completed_at=self.completed_at,
                        execution_time_seconds=self.execution_time_seconds, success=self.success,
                        git_commit=self.git_commit, git_branch=self.git_branch, command_line=self.command_line,
                        environment=self.safe(self.environment) if self.environment else None,
                        metadata=self.safe(metadata) if metadata else None, source_path=self.path,
                        source_sha256=self.sha256, run_id=self.run_id, created_at=started)

    def records(self, test_type: str) -> list:
        return [self.test_run(test_type), *self.models.values(), *self.hardware.values(), *self.facts]


# --------------------------------------------------------------------------------------------- measurements
def _decide_unit(b: Builder, pointer: str, key: str, stated: str | None, value: float,
                 throughput: float | None, batch: int | None) -> str:
    """The unit of a latency figure: the key's own, else the one that agrees with throughput, else seconds."""
    if stated:
        return stated
    if throughput and throughput > 0 and math.isfinite(throughput):  # a negative one is no evidence (log < 0)
        items = batch if batch and batch > 0 else 1
        err_s, err_ms = _log_error(items / value / throughput if value > 0 else 0.0), \
            _log_error(items * 1000 / value / throughput if value > 0 else 0.0)
        if min(err_s, err_ms) < math.log(3):
            return "s" if err_s <= err_ms else "ms"
    b.note(f"latency unit not stated, seconds assumed ({key})")
    return "s"


def _log_error(ratio: float) -> float:
    """How far a ratio is from 1, in log terms; infinite for one that under- or overflowed (a latency of 1e308)."""
    return abs(math.log(ratio)) if 0 < ratio < math.inf else math.inf


_INF = math.inf
_FACTOR = {"ms": 1.0, "s": 1000.0, "us": 0.001, "ns": 1e-6}


def _roles() -> dict[str, tuple[str, int, object]]:
    """key -> (role, priority, extra): one table so a record is read in a single pass over its keys."""
    roles: dict[str, tuple[str, int, object]] = {}

    def add(role, keys, extra=None):
        for rank, key in enumerate(keys):
            roles.setdefault(key, (role, rank, extra if not isinstance(keys, dict) else keys[key]))

    add("latency", LATENCY_MEAN_KEYS)
    add("samples", SAMPLE_KEYS)
    add("throughput", THROUGHPUT_KEYS)
    add("memory", MEMORY_KEYS)
    add("total_time", TOTAL_TIME_KEYS)
    add("iterations", ITERATION_KEYS)
    add("warmup", WARMUP_KEYS)
    add("batch", BATCH_KEYS)
    add("seq", SEQ_KEYS)
    add("precision", PRECISION_KEYS)
    add("model", MODEL_KEYS)
    add("hardware", HARDWARE_KEYS)
    add("device_name", DEVICE_NAME_KEYS)
    add("time", TIME_KEYS)
    add("test_case", TEST_CASE_KEYS)
    for key, (field, unit) in LATENCY_STAT_KEYS.items():
        roles.setdefault(key, ("stat", 0, (field, unit)))
    return roles


_ROLES = _roles()
_NUMERIC_ROLES = {"latency", "throughput", "memory", "total_time", "iterations", "warmup", "batch", "seq"}
# the roles whose value may be written as text with a unit ("12.5 ms"), and the dimension that unit must have
_TEXT_DIMENSION = {"latency": "time", "total_time": "time", "throughput": "throughput", "memory": "memory"}
_NO_HIT = (None, None, None, None)
_INT_LIMIT = 2**31 - 1


def _whole(f: float | None) -> int | None:
    """to_int of a value whose to_float is `f`."""
    if f is None or f != int(f) or abs(f) > _INT_LIMIT:
        return None
    return int(f)


def measurement_view(b: Builder, node: dict) -> dict:
    """The dict as the measurement reader sees it: statistic blocks spelled out (see expand_stat_blocks)."""
    view = expand_stat_blocks(node)
    if view is not node and "_unit_note" in view:
        b.note(view.pop("_unit_note"))
    return view


_PLAIN_NUMBERS = {int, float}


def _numbers(values: list) -> list[float] | None:
    """The list as floats, or None if any element is not a finite number."""
    if set(map(type, values)) <= _PLAIN_NUMBERS:
        try:
            out = list(map(float, values))
        except OverflowError:
            return None
        # a plain sum is finite for finite samples (overflow to inf falls through to the exact check)
        if math.isfinite(sum(out)) or all(math.isfinite(x) for x in out):
            return out
        return None
    out = [to_float(x) for x in values]
    return None if any(x is None for x in out) else out


def _text_note(figure: str, written: str, column_unit: str, key: str) -> str:
    """The ingest log's line for a figure read from text with its unit ('12.5 ms'), as for numeric conversions."""
    if written.lower() == column_unit.lower():
        return f"{figure} read from text ({key})"
    return f"{figure} read from text, {written} -> {column_unit} ({key})"


def read_measurement(b: Builder, rec: dict, pointer: str, ctx: dict) -> dict:
    """Map one measurement dict to PerformanceResults fields (units converted); unmapped keys -> metrics.

    `ctx` carries what the record's ancestors said (model, hardware, batch_size, ...); the record's own
    fields win. Returns the keyword values for `Builder.add_performance` (model, hardware, ...)."""
    # role -> (rank, key, value, value as a float for the numeric roles) of the best key present
    found: dict[str, tuple[int, str, object, float | None]] = {}
    stats: list[tuple[str, object]] = []
    metrics: dict = {}
    placeholder = None
    unknown_hardware = None
    sample_numbers: dict = {}  # samples key -> its values as floats, read once
    text_units: dict | None = None  # key -> unit, for values written as text with a unit (already converted)
    for key, value in rec.items():
        role = _ROLES.get(key)
        if role is None or value is None:
            metrics[key] = value
            continue
        name, rank, extra = role
        if name == "stat":
            if to_float(value) is not None:
                stats.append((key, value, None))
            elif type(value) is str and (figure := figure_from_text(value, "time")) is not None:
                stats.append((key, value, figure))
            else:
                metrics[key] = value
            continue
        if name == "model":
            if not isinstance(value, str) or not clean_model_name(value):
                if isinstance(value, str) and placeholder is None:
                    placeholder = value
                metrics[key] = value
                continue
        elif name == "hardware":
            if not known_hardware(value):
                metrics[key] = value
                if key != "device" and type(value) is str and unknown_hardware is None:
                    unknown_hardware = value  # named when the row is dropped for want of a hardware type
                continue
        elif name == "device_name":
            if key == "cuda_device" and known_hardware(value):  # 'cuda:0' is an index, not a device's name
                metrics[key] = value
                continue
        elif name == "samples":
            numbers = _numbers(value) if isinstance(value, list) and value else None
            if numbers is None:
                metrics[key] = value
                continue
            sample_numbers[key] = numbers
        number = None
        if name in _NUMERIC_ROLES:
            number = to_float(value)
            if number is None:
                # "12.5 ms": only a str is tried, so plain numbers pay nothing for it
                dimension = _TEXT_DIMENSION.get(name) if type(value) is str else None
                figure = figure_from_text(value, dimension) if dimension else None
                if figure is None:
                    metrics[key] = value
                    continue
                number = figure[0]
                if text_units is None:
                    text_units = {}
                text_units[key] = figure[1]
            elif extra is None and name == "memory":  # a bare number under a key that names no unit
                metrics[key] = value
                continue
        # the best-ranked key of a role wins; the others go to metrics
        best = found.get(name)
        if best is None or rank < best[0]:
            if best is not None:
                metrics[best[1]] = best[2]
            found[name] = (rank, key, value, number)
        else:
            metrics[key] = value

    # the numeric roles' values were read as floats above: to_int(v) is _whole(that float), positive(v)
    # is that float when > 0
    get = found.get  # _NO_HIT when absent
    batch_hit = get("batch", _NO_HIT)
    batch = _whole(batch_hit[3]) if batch_hit[2] is not None else ctx.get("batch_size")
    # beyond the schema's bounds a batch or sequence is a typo or an overflowed counter: kept as written in
    # metrics (below), as a value beyond 32 bits always was, rather than failing the file's every row
    if batch is not None and not 0 < batch <= MAX_BATCH_SIZE:
        batch = None
    seq_hit = get("seq", _NO_HIT)
    seq = _whole(seq_hit[3]) if seq_hit[2] is not None else ctx.get("sequence_length")
    if seq is not None and not 0 < seq <= MAX_SEQUENCE_LENGTH:
        seq = None
    thr_hit = get("throughput", _NO_HIT)
    thr_f = thr_hit[3]
    throughput = thr_f if thr_f is not None and thr_f > 0 else None
    if thr_hit[2] is not None and throughput is None and thr_f == 0:
        b.note(f"throughput 0 treated as missing ({pointer})")
    elif thr_f is not None and thr_f < 0:  # no measurement, but what the file says stays with the row
        metrics[thr_hit[1]] = thr_hit[2]
        b.note(f"negative throughput kept in metrics, not as a measurement ({pointer})")
    if throughput is not None and text_units and thr_hit[1] in text_units:
        b.note(_text_note("throughput", text_units[thr_hit[1]], "items/s", thr_hit[1]))

    out: dict = {}
    _, lat_key, lat_v, lat = get("latency", _NO_HIT)
    unit = None
    if lat_key is not None and lat is not None and lat > 0 and text_units and lat_key in text_units:
        written = text_units[lat_key]  # already in ms; its unit is the record's for statistics that state none
        unit = written if written in _FACTOR else None
        out["average_latency_ms"] = lat
        b.note(_text_note("latency", written, "ms", lat_key))
    elif lat_key is not None and lat is not None and lat > 0:
        unit = _decide_unit(b, pointer, lat_key, LATENCY_MEAN_KEYS[lat_key], lat, throughput, batch)
        out["average_latency_ms"] = lat * _FACTOR[unit]
        if unit != "ms":
            b.note(f"latency {unit} -> ms ({lat_key})")
    elif lat_key is not None and lat == 0:
        b.note(f"latency 0 treated as missing ({pointer})")
    elif lat_key is not None and lat is not None and lat < 0:
        metrics[lat_key] = lat_v
        b.note(f"negative latency kept in metrics, not as a measurement ({pointer})")

    for key, value, figure in stats:
        field, stated = _ROLES[key][2]
        if field in out:
            metrics[key] = value
            continue
        if figure is not None:
            out[field] = figure[0]
            b.note(_text_note("latency", figure[1], "ms", key))
            continue
        number = to_float(value)
        u = stated or unit or _decide_unit(b, pointer, key, None, number, throughput, batch)
        out[field] = number * _FACTOR[u]
        if u != "ms":
            b.note(f"latency {u} -> ms ({key})")

    samples_key = get("samples", _NO_HIT)[1]
    if samples_key is not None:
        numbers = sample_numbers[samples_key]
        u = SAMPLE_KEYS[samples_key] or unit
        if u is None:
            mean = sum(numbers) / len(numbers)
            u = _decide_unit(b, pointer, samples_key, None, mean, throughput, batch) if mean > 0 else "s"
        factor = _FACTOR[u]
        out["latency_samples_ms"] = numbers if factor == 1.0 else [x * factor for x in numbers]
        if u != "ms":
            b.note(f"latency samples {u} -> ms ({samples_key})")

    _, mem_key, mem_v, mem_f = get("memory", _NO_HIT)
    if mem_key is not None and text_units and mem_key in text_units:
        out["memory_peak_mb"] = positive(mem_f)
        b.note(_text_note("memory", text_units[mem_key], "MB", mem_key))
    elif mem_key is not None:
        mb = memory_to_mb(mem_v, MEMORY_KEYS[mem_key])
        out["memory_peak_mb"] = positive(mb)
        if mb is not None and mb < 0:
            metrics[mem_key] = mem_v
        if MEMORY_KEYS[mem_key] != "mb" and mb is not None:
            b.note(f"memory {MEMORY_KEYS[mem_key]} -> MB ({mem_key})")
    _, tt_key, _, seconds = get("total_time", _NO_HIT)
    if tt_key is not None:
        if text_units and tt_key in text_units:
            seconds /= 1000  # read from text in ms
            b.note(_text_note("total time", text_units[tt_key], "s", tt_key))
        elif seconds is not None and TOTAL_TIME_KEYS[tt_key] == "ms":
            seconds /= 1000
            b.note(f"total time ms -> s ({tt_key})")
        out["total_time_seconds"] = seconds
    it_hit = get("iterations", _NO_HIT)
    iterations = _whole(it_hit[3]) if it_hit[2] is not None else ctx.get("iterations")
    if iterations is not None and iterations <= 0:
        iterations = None
    wu_hit = get("warmup", _NO_HIT)
    warmup = _whole(wu_hit[3]) if wu_hit[2] is not None else ctx.get("warmup_iterations")
    if warmup is not None and warmup < 0:
        warmup = None
    prec_v = get("precision", _NO_HIT)[2]
    precision = normalize_precision(prec_v) if prec_v is not None else ctx.get("precision")

    model = get("model", _NO_HIT)[2]
    model = ctx.get("registry", {}).get(model, model) if model else ctx.get("model")
    if model is None and placeholder is not None:
        model = placeholder  # kept so that the row is refused with the placeholder named
    _, hw_key, hw_v, _ = get("hardware", _NO_HIT)
    hardware = known_hardware(hw_v) if hw_v is not None else None
    device_name = None
    if hw_key == "device" and hw_v.strip().lower() != hardware:
        device_name = hw_v.strip()
    if hardware is None and ctx.get("hardware_source"):
        b.note(f"hardware {ctx.get('hardware')} from {ctx['hardware_source']} ({pointer or '/'})")
    hardware = hardware or ctx.get("hardware") or unknown_hardware
    dn_v = get("device_name", _NO_HIT)[2]
    own_device = text_or_none(dn_v, 200)
    device_name = own_device or device_name or ctx.get("device_name")
    time_v = get("time", _NO_HIT)[2]
    own_time = b.stamp(time_v)
    created = own_time or ctx.get("created_at")
    case_v = get("test_case", _NO_HIT)[2]
    own_case = text_or_none(case_v, 200)
    test_case = own_case or ctx.get("test_case")
    # a value under a known key that could not be read (a fraction or 0 for a batch size, a time that is
    # no time, a number for a precision) is kept as written: nothing the record says is lost
    for hit, read in ((batch_hit, batch), (seq_hit, seq), (it_hit, iterations), (wu_hit, warmup)):
        if hit[2] is not None and read is None:
            metrics[hit[1]] = hit[2]
    for role, given, read in (("precision", prec_v, precision), ("device_name", dn_v, own_device),
                              ("time", time_v, own_time), ("test_case", case_v, own_case)):
        if given is not None and read is None:
            metrics[get(role)[1]] = given
    simulated = (not _SIM_KEYS.isdisjoint(rec) and record_is_simulated(rec)) or bool(ctx.get("is_simulated"))

    if ctx.get("extra_metrics"):
        metrics = {**ctx["extra_metrics"], **metrics}
    return {"model": model, "hardware": hardware, "device_name": device_name, "batch_size": batch,
            "sequence_length": seq, "precision": precision, "throughput_items_per_second": throughput,
            "iterations": iterations, "warmup_iterations": warmup, "created_at": created,
            "test_case": test_case, "is_simulated": simulated, "metrics": metrics or None, **out}


def record_failed(rec: dict) -> str | None:
    """The error of a record that says it failed (success false, status error/failed), else None."""
    success = rec.get("success")
    status = rec.get("status")
    failed = success is False or (isinstance(status, str) and status.strip().lower() in (
        "error", "failed", "failure", "fail", "crashed", "timeout", "skipped", "not_run"))
    if not failed:
        return None
    return str(rec.get("error") or rec.get("error_message") or rec.get("status") or "failed")[:500]


_SKILL_KEY_RE = re.compile(r"^test_((?:hf|default)_[a-z0-9_]+)$")
_SKILL_TEST_RE = re.compile(r"^(?:.*[/\\])?test_(hf_[a-z0-9_]+)\.py$")


def skill_of_test_file(test_file) -> str | None:
    """'skills/test_hf_bert.py' -> 'hf_bert': the legacy skill a test file exercises."""
    if not isinstance(test_file, str) or len(test_file) > 300:
        return None
    match = _SKILL_TEST_RE.match(test_file.strip().lower())
    return match.group(1) if match else None


_MODEL_KEYSET = frozenset(MODEL_KEYS)
_HARDWARE_KEYSET = frozenset(HARDWARE_KEYS)
_BATCH_KEYSET = frozenset(BATCH_KEYS)
_SEQ_KEYSET = frozenset(SEQ_KEYS)
_PRECISION_KEYSET = frozenset(PRECISION_KEYS)
_TIME_KEYSET = frozenset(TIME_KEYS)
_CTX_KEYS = frozenset(("test_file",) + MODEL_KEYS + HARDWARE_KEYS + BATCH_KEYS + SEQ_KEYS + PRECISION_KEYS
                      + TIME_KEYS + SIM_FLAG_KEYS + SIM_TEXT_KEYS)


def context_from_record(b: Builder, rec: dict, ctx: dict) -> dict:
    """What a dict says about the records below it (model, hardware, batch, time, simulation)."""
    hits = _CTX_KEYS.intersection(rec)
    if not hits:
        return ctx
    new = dict(ctx)
    skill = skill_of_test_file(rec.get("test_file")) if "test_file" in hits else None
    if skill:
        new["model"] = skill
    # each group's keys in priority order; a group none of whose keys is present is passed over
    if not _MODEL_KEYSET.isdisjoint(hits):
        for key in MODEL_KEYS:
            if key in hits:
                value = rec[key]
                if isinstance(value, str) and clean_model_name(value):
                    name = value.strip()
                    new["model"] = ctx.get("registry", {}).get(name, name)
                    break
    if not _HARDWARE_KEYSET.isdisjoint(hits):
        for key in HARDWARE_KEYS:
            if key in hits:
                kind = known_hardware(rec[key])
                if kind:
                    new["hardware"] = kind
                    new.pop("hardware_source", None)  # stated by the content
                    break
    for field, keys, keyset in (("batch_size", BATCH_KEYS, _BATCH_KEYSET),
                                ("sequence_length", SEQ_KEYS, _SEQ_KEYSET)):
        if not keyset.isdisjoint(hits):
            value = next((v for v in (to_int(rec[k]) for k in keys if k in hits) if v), None)
            if value:
                new[field] = value
    if not _PRECISION_KEYSET.isdisjoint(hits):
        for key in PRECISION_KEYS:
            if key in hits and isinstance(rec[key], str):
                new["precision"] = normalize_precision(rec[key])
                break
    if not _TIME_KEYSET.isdisjoint(hits):
        for key in TIME_KEYS:
            if key in hits:
                stamp = b.stamp(rec[key])
                if stamp is not None:
                    new["created_at"] = stamp
                    break
    if not _SIM_KEYS.isdisjoint(hits) and record_is_simulated(rec):
        new["is_simulated"] = True
    return new


def context_from_key(key: str, parent_key: str | None, ctx: dict) -> dict:
    """What a dict key says about the value below it: a hardware name, batch/sequence, a model name."""
    if not isinstance(key, str):
        return ctx
    registry = ctx.get("registry")
    if registry and key in registry:
        return {**ctx, "model": registry[key]}
    info = _key_info(key)
    if info is None:
        if parent_key and "batch" in parent_key.lower() and to_int(key):
            return {**ctx, "batch_size": to_int(key)}
        return ctx
    return {**ctx, **info}


@functools.lru_cache(maxsize=16384)
def _key_info(key: str) -> dict | None:
    """The context a key gives by itself (cached: the same keys recur in every file)."""
    hardware = known_hardware(key)
    if hardware:
        return {"hardware": hardware, "hardware_source": None}
    batch_seq = batch_seq_from_key(key)
    if batch_seq:
        batch, seq, variant = batch_seq
        info = {"batch_size": batch}
        if seq is not None:
            info["sequence_length"] = seq
        if variant:
            info["test_case"] = variant
        return info
    skill = _SKILL_KEY_RE.match(key)
    if skill:  # collected results keyed by the test that produced them: test_hf_bert, test_default_embed
        return {"model": skill.group(1)}
    if len(key) <= 200 and ("/" in key or family_of(key)) and clean_model_name(key) and " " not in key:
        return {"model": key}
    if "_" in key and len(key) < 60:
        tokens = key.lower().split("_")
        hits = [known_hardware(t) for t in tokens if known_hardware(t)]
        if len(hits) == 1:  # pipeline_cuda, cpu_handler
            rest = "_".join(t for t in tokens if not known_hardware(t))
            info = {"hardware": hits[0], "hardware_source": None}
            if rest:
                info["test_case"] = rest
            return info
    return None


# subtrees that describe the run or repeat aggregates rather than hold measurements
SKIP_SUBTREES = {"summary", "performance_summary", "system_info", "hardware_info", "config", "configuration",
                 "stdout", "stderr", "traceback", "environment", "machine_info", "args", "arguments",
                 "statistics", "stats_summary", "aggregate", "aggregates", "averages", "comparison",
                 "performance_comparison", "recommendations", "metadata",
                 # a compatibility matrix repeats per-model means over all configurations: not a measurement
                 "hardware_compatibility"}


def walk_measurements(b: Builder, node, pointer: str, ctx: dict, parent_key: str | None = None,
                      depth: int = 0) -> int:
    """Find measurement records anywhere below `node` and add them as performance rows; returns how many."""
    if depth > 40:
        return 0
    added = 0
    if isinstance(node, dict):
        ctx = context_from_record(b, node, ctx)
        if parent_key == "examples" and ("elapsed_time" in node or "execution_time" in node) \
                and not has_measurement(node):
            return example_timing(b, node, pointer, ctx)
        view = measurement_view(b, node)
        if has_measurement(view):
            error = record_failed(view)
            if error:
                b.drop(pointer, f"failed: {error}")
                return 0
            values = read_measurement(b, view, pointer, ctx)
            return 1 if b.add_performance(pointer, **values) else 0
        error = record_failed(node)
        if error and depth > 0:
            b.drop(pointer, f"failed: {error}")
        for key, value in node.items():
            if not isinstance(value, (dict, list)) or key.lower() in SKIP_SUBTREES:
                continue
            added += walk_measurements(b, value, pointer_join(pointer, key), context_from_key(key, parent_key, ctx),
                                       key, depth + 1)
    elif isinstance(node, list):
        if node and not isinstance(node[0], (dict, list)):
            return 0
        for index, value in enumerate(node):
            if isinstance(value, (dict, list)):
                added += walk_measurements(b, value, pointer_join(pointer, index), ctx, parent_key, depth + 1)
    return added


def _example_metrics(node: dict) -> dict | None:
    """The `performance_metrics` a skill test's example reports for its call (in `output` or beside it)."""
    for holder in (node.get("output"), node):
        if isinstance(holder, dict):
            found = holder.get("performance_metrics")
            if isinstance(found, dict) and has_measurement(found):
                return found
    return None


def example_timing(b: Builder, node: dict, pointer: str, ctx: dict) -> int:
    """A skill test's example call: one timed call on one platform, one row. Its latency is the
    handler's own figure (`performance_metrics.inference_time`, seconds) when the example reports one,
    else the test's wall time of the call (`elapsed_time`, seconds), which is then kept in metrics."""
    key = "elapsed_time" if "elapsed_time" in node else "execution_time"
    rec = {k: v for k, v in node.items() if k != key}
    reported = _example_metrics(node)
    if reported is not None:  # the same call measured twice: one row, the wall time kept beside it
        rec[f"{key}_s"] = node[key]
        rec.update({k: v for k, v in reported.items() if k not in rec})
    else:
        rec["inference_time_s"] = node[key]
    values = read_measurement(b, rec, pointer, ctx)
    if values.get("average_latency_ms") is not None:
        values["latency_samples_ms"] = [values["average_latency_ms"]]
        values["iterations"] = 1
    values["test_case"] = values.get("test_case") or "example"
    return 1 if b.add_performance(pointer, **values) else 0

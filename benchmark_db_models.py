"""ORM layer: one dataclass per table and `BenchmarkDB`, which inserts them.

    db = BenchmarkDB(db_path="./benchmark_db.duckdb")
    run_id = db.insert_test_runs(TestRuns(test_name="model_benchmarks", ...))
    db.insert_performance_results(PerformanceResults(run_id=run_id, model_id=db.get_or_add_model("bert"), ...))

Ids come from natural keys (`benchmark_db.identity`), so inserting the same thing twice replaces it rather
than duplicating it, and databases written apart merge cleanly. `insert_many` writes a list in one
transaction (a few rows as bound parameters, more through Arrow); for many rows of one table it also takes a
`RecordColumns` (one list per field instead of one object per row), which skips building and reading back
an object per row. Bulk writers that build rows elsewhere (the ingest workers) turn fact records into an
Arrow table with `fact_table`, which needs no connection, and write it with `insert_table`, with the same
replace semantics. The connection opens on first use and stays open until `close()` (or the end of a `with`
block), so short-lived writers do not hold the file longer than they live. One object may be shared by
threads: its calls take turns (a transaction block holds the others off until it ends). Reads (`get`,
`count`) include the rows `--archive-data` moved to Parquet, as every tool that reads does.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import functools
import itertools
import json
import logging
import math
import numbers
import operator
import threading
import time
import types
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, ClassVar

import orjson

from benchmark_db import identity, schema
from benchmark_db.connection import DEFAULT_LOCK_TIMEOUT, connect
from benchmark_db.errors import DatabaseLockedError, DataConversionError, SchemaError, UsageError, one_line
from benchmark_db.names import FAMILY_MODALITY, family_of, normalize_hardware_type
from benchmark_db.normalize import _MAX_EPOCH_S, _MIN_EPOCH_S


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


@dataclass
class Models:
    model_name: str
    model_family: str | None = None
    modality: str | None = None
    parameters_million: float | None = None
    source: str | None = None
    version: str | None = None
    metadata: dict | None = None
    created_at: dt.datetime | None = None
    model_id: int | None = None

    TABLE: ClassVar[str] = "models"
    ID: ClassVar[str] = "model_id"

    def natural_id(self) -> int:
        return identity.model_id_for(self.model_name)


@dataclass
class HardwarePlatforms:
    hardware_type: str
    device_name: str | None = None
    platform: str | None = None
    platform_version: str | None = None
    driver_version: str | None = None
    memory_gb: float | None = None
    compute_units: int | None = None
    metadata: dict | None = None
    created_at: dt.datetime | None = None
    hardware_id: int | None = None

    TABLE: ClassVar[str] = "hardware_platforms"
    ID: ClassVar[str] = "hardware_id"

    def natural_id(self) -> int:
        return identity.hardware_id_for(self.hardware_type, self.device_name)


@dataclass
class TestRuns:
    test_name: str
    test_type: str | None = None
    started_at: dt.datetime | None = None
    completed_at: dt.datetime | None = None
    execution_time_seconds: float | None = None
    success: bool | None = None
    git_commit: str | None = None
    git_branch: str | None = None
    command_line: str | None = None
    environment: dict | None = None
    metadata: dict | None = None
    source_path: str | None = None
    source_sha256: str | None = None
    created_at: dt.datetime | None = None
    run_id: int | None = None

    TABLE: ClassVar[str] = "test_runs"
    ID: ClassVar[str] = "run_id"
    __test__: ClassVar[bool] = False  # not a pytest test class despite the name

    def natural_id(self) -> int:
        return identity.stable_id("run", self.test_name, self.test_type, self.started_at, self.command_line,
                                  self.git_commit, self.source_path, self.source_sha256)


_INT32_MAX = 2**31 - 1
# What a performance result's whole numbers may be: a batch or a sequence has at least one item, and the upper
# bounds (benchmark_db.schema, shared with the Python API and the REST server) refuse values that are typos or
# overflowed counters rather than measurements.
PERFORMANCE_INT_MINIMUM = {"batch_size": 1, "sequence_length": 1, "iterations": 0, "warmup_iterations": 0}
PERFORMANCE_INT_MAXIMUM = {"batch_size": schema.MAX_BATCH_SIZE, "sequence_length": schema.MAX_SEQUENCE_LENGTH,
                           "iterations": _INT32_MAX, "warmup_iterations": _INT32_MAX}
PERFORMANCE_MEASUREMENTS = ("total_time_seconds", "average_latency_ms", "latency_p50_ms", "latency_p90_ms",
                            "latency_p95_ms", "latency_p99_ms", "latency_stddev_ms", "throughput_items_per_second",
                            "memory_peak_mb")


def _bad_performance_value(name: str, value) -> DataConversionError | None:
    if name in PERFORMANCE_INT_MINIMUM:
        low, high = PERFORMANCE_INT_MINIMUM[name], PERFORMANCE_INT_MAXIMUM[name]
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not low <= value <= high:
            return DataConversionError(f"{name} must be a whole number between {low} and {high}, not {value!r}",
                                       f"fix {name} of the PerformanceResults, or leave it None if unknown")
    elif (isinstance(value, bool) or not isinstance(value, numbers.Real)
          # an int a double cannot hold exactly: Arrow refuses it (ArrowInvalid), math.isfinite overflows on 10**400
          or (isinstance(value, numbers.Integral) and not 0 <= value <= _EXACT_INT_MAX)
          or not math.isfinite(value) or value < 0):
        return DataConversionError(f"{name} must be a finite number >= 0 (a whole one at most 2**53), not {value!r}",
                                   f"fix {name} of the PerformanceResults, or leave it None if not measured")
    return None


def _wrong_value(exc: Exception) -> bool:
    """Whether DuckDB or Arrow refused a value for its column type."""
    import duckdb
    import pyarrow as pa

    return isinstance(exc, (duckdb.ConversionException, pa.ArrowInvalid, pa.ArrowTypeError))


log = logging.getLogger("benchmark_db.models")
# how often a write of its own is tried when another lake writer committed to the same table first
WRITE_CONFLICT_ATTEMPTS = 3
_EXACT_INT_MAX = 2**53  # the largest int Arrow puts in a DOUBLE column exactly (beyond: ArrowInvalid)
_INF = math.inf


def _write_conflict(exc: Exception) -> DatabaseLockedError | None:
    """DB001 for DuckLake's transaction conflict (two writers changed the same rows or table at once), which
    otherwise reaches the user as a raw TransactionException; None for any other error."""
    import duckdb

    if isinstance(exc, DatabaseLockedError) and exc.__cause__ is not None and _write_conflict(exc.__cause__):
        return exc  # said already (by transaction()'s COMMIT)
    if not isinstance(exc, duckdb.TransactionException) or "conflict" not in str(exc).lower():
        return None
    return DatabaseLockedError(f"another writer changed the same rows at the same moment ({one_line(exc)})",
                               "re-run: nothing of this write was stored")


def _plausible(name: str, value) -> bool:
    """The common case without a call per check: a plain int in range, a plain finite float >= 0 (NaN fails
    every comparison). Anything else (numpy numbers, Decimals, bad values) goes to _bad_performance_value."""
    low = PERFORMANCE_INT_MINIMUM.get(name)
    if low is not None:
        return type(value) is int and low <= value <= PERFORMANCE_INT_MAXIMUM[name]
    kind = type(value)
    if kind is int:
        return 0 <= value <= _EXACT_INT_MAX
    return kind is float and 0 <= value < _INF


def check_performance_values(record) -> None:
    """DB003 for a PerformanceResults that no benchmark can produce: a batch of 0, a negative count, a
    negative, NaN or infinite latency/throughput/memory. The converter leaves such legacy values out and the
    API refuses them; the ORM refuses them too, so the same fact is never stored differently by each."""
    for name in _CHECKED_FIELDS:
        value = getattr(record, name)
        if value is not None and not _plausible(name, value) \
                and (error := _bad_performance_value(name, value)) is not None:
            raise error


def check_performance_columns(columns: dict[str, list]) -> None:
    """check_performance_values of every row of a PerformanceResults batch (the first bad value)."""
    for name in _CHECKED_FIELDS:
        values = columns.get(name)
        present = [v for v in values or () if v is not None]
        if not present:
            continue
        kinds = set(map(type, present))
        low = PERFORMANCE_INT_MINIMUM.get(name)
        # a column of plain numbers is checked by its extremes; a NaN or inf makes the sum NaN or inf
        if low is not None and kinds <= {int}:
            if low <= min(present) and max(present) <= PERFORMANCE_INT_MAXIMUM[name]:
                continue
        elif low is None and kinds <= {float, int}:
            total = sum(present)
            if total == total and total < _INF and min(present) >= 0 and (int not in kinds or total <= _EXACT_INT_MAX):
                continue
        for row, value in enumerate(values):
            if value is not None and (error := _bad_performance_value(name, value)) is not None:
                raise DataConversionError(f"row {row}: {error.message}", error.hint)


_CHECKED_FIELDS = (*PERFORMANCE_INT_MINIMUM, *PERFORMANCE_MEASUREMENTS)


def bad_text(name: str, value) -> DataConversionError | None:
    """DB003 for text the Python API refuses (its `_text`): a NUL character, which ends the text for C
    readers and DuckDB's string functions, or a lone surrogate, which is no UTF-8. None for good text and for a
    value that is no text (DuckDB refuses that one as the wrong type)."""
    if not isinstance(value, str):
        return None
    if "\x00" in value:
        return DataConversionError(f"{name} contains a NUL character", "remove it")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return DataConversionError(f"{name} is not valid Unicode text", "send UTF-8 text")
    return None


# The most a JSON field (metrics, metadata, environment) may hold, as compact UTF-8 JSON. A field is a record's
# details, not a place for data: DuckDB 1.5.5 reads a text of more than 4 KiB followed by NULLs once per NULL
# (duckdb/duckdb#24897, fixed after 1.5.5), so one 2 MB `metrics` among 22,000 rows without any made
# `GET /performance?limit=1` take 60 s and 8 GB. At this cap such a scan costs at most about 130 MB.
MAX_JSON_BYTES = 65_536


def json_too_big(name: str, size: int) -> DataConversionError | None:
    if size <= MAX_JSON_BYTES:
        return None
    return DataConversionError(f"{name} is {size:,} bytes as JSON, more than the {MAX_JSON_BYTES:,} a field holds",
                               "keep large data in a file (or an artifact) and store its path or URL in the field")


def bad_json(name: str, value) -> DataConversionError | None:
    """DB003 for a JSON field (metrics, metadata, environment) holding what the Python API refuses in one (its
    `_json_value`): a NaN or infinite number (stored as null by orjson, as invalid JSON by json) or text
    bad_text refuses, anywhere inside, keys included. None for None and for a value without either."""
    if value is None:
        return None
    if isinstance(value, str):  # stored as given: JSON text already, under the same cap and without NaN
        if (error := bad_text(name, value) or json_too_big(name, len(value.encode("utf-8")))) is not None:
            return error
        if "NaN" in value or "Infinity" in value:  # DuckDB's JSON reader takes them; orjson, strict, does not
            try:
                orjson.loads(value)
            except orjson.JSONDecodeError:
                return DataConversionError(f"{name} is not strict JSON (a NaN or Infinity?)",
                                           "replace NaN/Infinity with null")
        return None
    try:
        text = orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:  # numpy numbers, sets, bad UTF-8, deep nesting...: looked at value by value
        text = None
    if text is not None and (error := json_too_big(name, len(text))) is not None:
        return error
    # orjson writes NaN and Infinity as null and a NUL as \u0000: without either there is nothing to find
    if text is not None and b"null" not in text and b"\\u0000" not in text:
        return None
    return _bad_json_item(name, value)


def _bad_json_item(name: str, value) -> DataConversionError | None:
    """bad_json by walking the value (iteratively, each container once: a deep or cyclic one cannot recurse)."""
    todo, seen = [value], set()
    while todo:
        item = todo.pop()
        if isinstance(item, str):
            if (error := bad_text(name, item)) is not None:
                return error
        elif isinstance(item, float):
            if not math.isfinite(item):
                return DataConversionError(f"{name} holds a non-finite number", "replace NaN/Infinity with null")
        elif isinstance(item, dict | list | tuple):
            if id(item) in seen:
                continue
            seen.add(id(item))
            if isinstance(item, dict):
                todo.extend(key for key in item if isinstance(key, str))  # other keys are stored as str(key)
                todo.extend(item.values())
            else:
                todo.extend(item)
        elif not isinstance(item, int) and item is not None and hasattr(item, "item"):  # numpy scalars
            with contextlib.suppress(TypeError, ValueError):  # an array of many values has no single item
                todo.append(item.item())
    return None


# The measured amounts of the other records, which cannot be negative (benchmark_db.validation reports a stored
# negative one as impossible); every other number of a record must be finite.
_MEASURED_FIELDS = {"test_runs": ("execution_time_seconds",), "hardware_compatibility": ("compatibility_score",),
                    "integration_test_results": ("execution_time_seconds",),
                    "web_platform_results": ("load_time_ms", "inference_time_ms", "total_time_ms", "memory_usage_mb")}


@functools.cache
def _checked_fields(cls) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """(text, JSON, measured, other number) fields of a record type that check_record_values looks at; the
    numbers of a PerformanceResults are check_performance_values'."""
    texts = tuple(f.name for f in fields(cls) if f.type in ("str", "str | None"))
    jsons = tuple(f.name for f in fields(cls) if f.name in _JSON_COLUMNS)
    floats = () if cls is PerformanceResults else tuple(f.name for f in fields(cls) if f.type == "float | None")
    measured = tuple(name for name in floats if name in _MEASURED_FIELDS.get(cls.TABLE, ()))
    return texts, jsons, measured, tuple(name for name in floats if name not in measured)


def _bad_number(name: str, value, measured: bool) -> DataConversionError | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None  # no number at all: DuckDB or Arrow refuse it as the wrong type
    try:
        finite = math.isfinite(value)
    except OverflowError:  # an int beyond a double's range
        finite = False
    if not finite:
        return DataConversionError(f"{name} must be a finite number, not {value!r}", "leave it None if unknown")
    if measured and value < 0:
        return DataConversionError(f"{name} must not be negative, not {value!r}",
                                   f"{name} is a duration or measured amount; leave it None if unknown")
    return None


def _column_errors(name: str, values: list, check) -> None:
    """`check(name, value)` of every value of a column, raising the first error (as "row N: ..." when the
    column has more than one row)."""
    for row, value in enumerate(values):
        if value is not None and (error := check(name, value)) is not None:
            if len(values) > 1:
                raise DataConversionError(f"row {row}: {error.message}", error.hint)
            raise error


def check_record(cls, record) -> None:
    """check_record_values of one record (the usual single insert), without building its columns."""
    texts, jsons, measured, others = _checked_fields(cls)
    for name in texts:
        value = getattr(record, name)
        if type(value) is str and value.isascii() and "\x00" not in value:
            continue
        if (error := bad_text(name, value)) is not None:
            raise error
    for name in jsons:
        if (error := bad_json(name, getattr(record, name))) is not None:
            raise error
    for names, is_measured in ((measured, True), (others, False)):
        for name in names:
            if (error := _bad_number(name, getattr(record, name), is_measured)) is not None:
                raise error


def check_record_values(cls, columns: dict[str, list]) -> None:
    """DB003 for what the Python API refuses in a record, beyond the times and performance numbers checked
    elsewhere: text with a NUL character (or not UTF-8), a JSON field holding NaN, Infinity or such text, a
    number that is not finite or a negative measured amount. `columns` maps field names of `cls` to the values
    of its rows. A column of plain values is checked at once; one with a bad value row by row, for its row."""
    texts, jsons, measured, others = _checked_fields(cls)
    for name in texts:
        values = columns.get(name)
        if not values:
            continue
        present = [v for v in values if v is not None]
        if all(type(v) is str for v in present):
            joined = "".join(present)
            if "\x00" not in joined and (joined.isascii() or bad_text(name, joined) is None):
                continue
        _column_errors(name, values, bad_text)
    for name in jsons:
        values = columns.get(name)
        present = [v for v in values or () if v is not None]
        if not present or bad_json(name, present) is None:
            continue
        _column_errors(name, values, bad_json)
    for names, is_measured in ((measured, True), (others, False)):
        for name in names:
            values = columns.get(name)
            present = [v for v in values or () if v is not None]
            if present and set(map(type, present)) <= {float, int}:
                total = sum(present)  # NaN or inf anywhere makes it NaN or inf
                if total == total and abs(total) < _INF and (not is_measured or min(present) >= 0):
                    continue
            _column_errors(name, values or [], functools.partial(_bad_number, measured=is_measured))

# The times a stored record may carry (naive UTC, the end excluded): the converter's plausibility rule for
# timestamps (benchmark_db.normalize). A created_at of year 1 or 9999 was stored, then broke the trend plots
# and the analytics ("Date ordinal -719162") and made the summary's "last result at 9999-12-31".
EARLIEST_TIME = dt.datetime(1970, 1, 1) + dt.timedelta(seconds=_MIN_EPOCH_S)
LATEST_TIME = dt.datetime(1970, 1, 1) + dt.timedelta(seconds=_MAX_EPOCH_S)
TIME_RANGE = f"from {EARLIEST_TIME:%Y-%m-%d} to before {LATEST_TIME:%Y-%m-%d} (UTC)"
_TIME_FIELDS = ("created_at", "started_at", "completed_at")
_DATETIME = dt.datetime


def bad_time(name: str, value) -> DataConversionError | None:
    """DB003 for a time no benchmark result has (outside TIME_RANGE); None for a plausible one, for None,
    and for a value that is no time at all (DuckDB refuses that one as the wrong type)."""
    stamp = value
    if isinstance(stamp, str):
        try:
            stamp = dt.datetime.fromisoformat(stamp.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
    if isinstance(stamp, dt.datetime):
        if stamp.tzinfo is not None:
            try:
                stamp = stamp.astimezone(dt.UTC).replace(tzinfo=None)
            except (OverflowError, ValueError):
                stamp = None  # beyond year 1-9999 in UTC
    elif isinstance(stamp, dt.date):
        stamp = dt.datetime.combine(stamp, dt.time())
    else:
        return None
    if stamp is not None and EARLIEST_TIME <= stamp < LATEST_TIME:
        return None
    shown = value.isoformat() if isinstance(value, dt.date) else repr(value)
    return DataConversionError(f"{name} {shown} is not a plausible time: a benchmark time must be {TIME_RANGE}",
                               f"check {name} (a clock, a unit or a placeholder date), or leave it out")


def check_time_column(name: str, values: list) -> None:
    """bad_time of every value of a batch column (the first bad one, as "row N: ...")."""
    present = list(filter(None, values))  # leaves out None (a datetime is never false)
    if not present:
        return
    if set(map(type, present)) == {_DATETIME}:  # the common case, checked by its extremes
        try:
            low, high = min(present), max(present)
        except TypeError:  # naive and aware times together
            pass
        else:
            if low.tzinfo is None and EARLIEST_TIME <= low and high < LATEST_TIME:
                return
    for row, value in enumerate(values):
        if value is not None and (error := bad_time(name, value)) is not None:
            raise DataConversionError(f"row {row}: {error.message}", error.hint)


@functools.cache
def _time_fields(cls) -> tuple[str, ...]:
    names = {f.name for f in fields(cls)}
    return tuple(name for name in _TIME_FIELDS if name in names)


def metrics_say_emulated(metrics) -> bool:
    """Whether a result's metrics flag it as measured on an emulated device (the runners write
    `"is_emulated": true` there). Every write path sets `is_emulated` from it, as schema version 5 did for the
    rows stored before, so the column and the metrics never disagree."""
    return type(metrics) is dict and metrics.get("is_emulated") is True


@dataclass
class PerformanceResults:
    model_id: int
    hardware_id: int
    run_id: int | None = None
    model_name: str | None = None
    hardware_type: str | None = None
    test_case: str | None = None
    batch_size: int | None = None
    sequence_length: int | None = None
    precision: str | None = None
    total_time_seconds: float | None = None
    average_latency_ms: float | None = None
    latency_p50_ms: float | None = None
    latency_p90_ms: float | None = None
    latency_p95_ms: float | None = None
    latency_p99_ms: float | None = None
    latency_stddev_ms: float | None = None
    throughput_items_per_second: float | None = None
    memory_peak_mb: float | None = None
    iterations: int | None = None
    warmup_iterations: int | None = None
    latency_samples_ms: list[float] | None = None
    is_simulated: bool = False
    metrics: dict | None = None
    created_at: dt.datetime | None = None
    result_id: int | None = None
    # measured on an emulated device (a software WebGPU adapter): real timings, of the emulator (schema v5)
    is_emulated: bool = False

    TABLE: ClassVar[str] = "performance_results"
    ID: ClassVar[str] = "result_id"

    def __post_init__(self) -> None:
        if not self.is_emulated and metrics_say_emulated(self.metrics):
            self.is_emulated = True

    def natural_id(self) -> int:
        return identity.performance_result_id_for(self.run_id, self.model_id, self.hardware_id, self.test_case,
                                                  self.batch_size, self.sequence_length, self.precision)


@dataclass
class HardwareCompatibility:
    hardware_id: int
    model_id: int | None = None
    run_id: int | None = None
    is_compatible: bool | None = None
    detection_success: bool | None = None
    initialization_success: bool | None = None
    error_message: str | None = None
    error_type: str | None = None
    suggested_fix: str | None = None
    workaround_available: bool | None = None
    compatibility_score: float | None = None
    is_simulated: bool = False
    metadata: dict | None = None
    created_at: dt.datetime | None = None
    compatibility_id: int | None = None

    TABLE: ClassVar[str] = "hardware_compatibility"
    ID: ClassVar[str] = "compatibility_id"

    def natural_id(self) -> int:
        return identity.stable_id("compatibility", self.run_id, self.model_id, self.hardware_id)


@dataclass
class IntegrationTestResults:
    test_name: str
    status: str
    run_id: int | None = None
    test_module: str | None = None
    test_class: str | None = None
    execution_time_seconds: float | None = None
    hardware_id: int | None = None
    model_id: int | None = None
    error_message: str | None = None
    error_traceback: str | None = None
    metadata: dict | None = None
    created_at: dt.datetime | None = None
    test_result_id: int | None = None

    TABLE: ClassVar[str] = "integration_test_results"
    ID: ClassVar[str] = "test_result_id"
    __test__: ClassVar[bool] = False

    def natural_id(self) -> int:
        return identity.stable_id("integration", self.run_id, self.test_module, self.test_class, self.test_name,
                                  self.hardware_id, self.model_id)


@dataclass
class WebPlatformResults:
    run_id: int | None = None
    model_id: int | None = None
    hardware_id: int | None = None
    platform: str | None = None
    browser: str | None = None
    browser_version: str | None = None
    adapter: str | None = None
    is_emulated: bool | None = None
    test_file: str | None = None
    success: bool | None = None
    load_time_ms: float | None = None
    initialization_time_ms: float | None = None
    inference_time_ms: float | None = None
    total_time_ms: float | None = None
    shader_compilation_time_ms: float | None = None
    memory_usage_mb: float | None = None
    error_message: str | None = None
    is_simulated: bool = False
    metrics: dict | None = None
    created_at: dt.datetime | None = None
    result_id: int | None = None

    TABLE: ClassVar[str] = "web_platform_results"
    ID: ClassVar[str] = "result_id"

    def natural_id(self) -> int:
        return identity.stable_id("web", self.run_id, self.model_id, self.hardware_id, self.platform,
                                  self.browser, self.test_file)


@dataclass
class RecordColumns:
    """Many rows of one record type as columns: `columns` maps field names of `cls` to equal-length lists.

    A field left out takes the field's default (None for most). Ids left out or None are derived from the
    natural key as for single records. `insert_many` fills `created_at`, the ids and `hardware_type` in place.
    `new` marks the rows whose id is new by construction (it includes a part unique to this write, as the
    Python API's results that name no run): no stored row can have it, so there is nothing to look up and
    replace. Other rows replace a stored row with the same id, as single records do.
    """
    cls: type
    columns: dict[str, list]
    new: list[bool] | None = None
    # the values were checked already (the Python API checks every field it converts): skip
    # check_performance_columns and check_record_values, a Python call per value
    checked: bool = False

    def __post_init__(self) -> None:
        lengths = {len(values) for values in self.columns.values()}
        if self.new is not None:
            lengths.add(len(self.new))
        if len(lengths) > 1:
            raise DataConversionError(f"the columns of a {self.cls.__name__} batch differ in length",
                                      "pass one value per row in every column")
        self._rows = lengths.pop() if lengths else 0

    def __len__(self) -> int:
        return self._rows

    @property
    def TABLE(self) -> str:  # noqa: N802 - mirrors the record classes' class attribute
        return self.cls.TABLE

    @property
    def ID(self) -> str:  # noqa: N802
        return self.cls.ID

    @property
    def ids(self) -> list:
        return self.columns.get(self.cls.ID) or [None] * self._rows


def record_count(records) -> int:
    """How many ids `insert_many(records)` returns: one per record, one per row of a RecordColumns."""
    return sum(len(r) if type(r) is RecordColumns else 1 for r in records)


RECORD_TYPES = (Models, HardwarePlatforms, TestRuns, PerformanceResults, HardwareCompatibility,
                IntegrationTestResults, WebPlatformResults)
RECORD_TYPE_BY_TABLE = {cls.TABLE: cls for cls in RECORD_TYPES}
# Dimension rows are merged (a later, fuller description fills gaps and never blanks a known attribute);
# fact rows are replaced whole (a re-measured or re-ingested row supersedes the earlier one).
_DIMENSIONS = (Models, HardwarePlatforms)
_JSON_COLUMNS = {"metadata", "metrics", "environment"}
# The rows a fact row points at (checked by insert_many, see _check_references) and how to add each. Not
# run_id: a bare run number is stored as given (the Python API adds a minimal run for one, see
# benchmark_db_api._missing_runs), and callers and tests rely on that.
_REFERENCES = (("model_id", Models), ("hardware_id", HardwarePlatforms))
_REFERENCED = (Models, HardwarePlatforms, TestRuns)
_ADD_METHOD = {Models: "get_or_add_model", HardwarePlatforms: "get_or_add_hardware"}
# Fact rows up to this many per table and transaction are bound as parameters rather than scanned from Arrow.
_SMALL_BATCH = 64


def _arrow_type(duckdb_type: str):
    import pyarrow as pa

    t = duckdb_type.upper()
    if t.endswith("[]"):
        return pa.list_(_arrow_type(t[:-2]))
    return {"BIGINT": pa.int64(), "INTEGER": pa.int32(), "DOUBLE": pa.float64(), "FLOAT": pa.float32(),
            "REAL": pa.float32(), "BOOLEAN": pa.bool_(), "TIMESTAMP": pa.timestamp("us"),
            "BLOB": pa.binary()}.get(t, pa.string())


def _arrow_array(values: list, duckdb_type: str):
    """A column as an Arrow array of its DuckDB type. A TIMESTAMP column with one time in every row (the
    `created_at` insert_many fills in) is converted once: a datetime costs several times a number to convert."""
    import pyarrow as pa

    arrow_type = _arrow_type(duckdb_type)
    if (arrow_type == pa.timestamp("us") and len(values) > 1 and values[-1] is values[0]
            and values.count(values[0]) == len(values)):
        return pa.repeat(pa.scalar(values[0], type=arrow_type), len(values))
    return pa.array(values, type=arrow_type)


_PLAIN_TYPES = frozenset({type(None), bool, float, str})


def _plain(value: Any) -> bool:
    kind = type(value)
    if kind is int:
        return -2**63 <= value < 2**63
    return kind in _PLAIN_TYPES or (kind is dt.datetime and value.tzinfo is None)


def _bindable(values: dict[str, list]) -> bool:
    """Whether DuckDB binds every value as a parameter exactly as Arrow converts it: plain Python scalars,
    naive datetimes and lists of these (numpy values, aware datetimes, ... go through Arrow)."""
    return all(_plain(value) or (type(value) is list and all(map(_plain, value)))
               for column in values.values() for value in column)


def _json_text(value: Any) -> str | None:
    """A JSON column's value as compact text: orjson, several times faster than json (which takes only what
    orjson refuses, an integer beyond 64 bits)."""
    if value is None or isinstance(value, str):
        return value
    try:
        return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        return json.dumps(value, default=str, separators=(",", ":"))


def fact_table(cls, records: list, columns: list[tuple[str, str]], now: dt.datetime, extra: dict | None = None):
    """Fact records of one type as the Arrow table `BenchmarkDB.insert_table` writes: prepared as
    `insert_many` prepares them (hardware type normalised, `created_at` defaulting to `now`, ids from natural
    keys), one column per (name, DuckDB type) of `columns`, JSON columns as text, plus the `extra` columns
    (name -> Arrow array). Building it needs no connection, so ingest workers build it where they convert."""
    import pyarrow as pa

    if cls in _DIMENSIONS:
        raise DataConversionError("dimension rows are merged, not written as a table", "use insert_many")
    BenchmarkDB._prepare(cls, records, now, check_values=False)
    arrays = {}
    for name, duckdb_type in columns:
        values = [getattr(r, name) for r in records]
        if name in _JSON_COLUMNS:
            values = [_json_text(v) for v in values]
        arrays[name] = _arrow_array(values, duckdb_type)
    return pa.table({**arrays, **(extra or {})})


def _names_filled(columns: list[tuple[str, str]], source: str) -> tuple[str, str]:
    """The SELECT list and FROM clause that insert performance rows (`source` aliased `b`) with a missing
    model_name or hardware_type taken from their dimension rows."""
    select = ", ".join(
        "COALESCE(b.model_name, m.model_name)" if c == "model_name" else
        "COALESCE(b.hardware_type, h.hardware_type)" if c == "hardware_type" else f"b.{c}"
        for c, _ in columns)
    # one name per id: on DuckLake two writers may both have added the same new model
    source += (" LEFT JOIN (SELECT model_id, any_value(model_name) AS model_name FROM models "
               "GROUP BY model_id) m ON m.model_id = b.model_id "
               "LEFT JOIN (SELECT hardware_id, any_value(hardware_type) AS hardware_type "
               "FROM hardware_platforms GROUP BY hardware_id) h ON h.hardware_id = b.hardware_id")
    return select, source


def _typed(method: str, cls, record):
    """`record` if it is a `cls`: a typed insert given another record would store it in that record's table."""
    if type(record) is not cls:
        raise UsageError(f"{method}() takes a {cls.__name__}, not a {type(record).__name__}",
                         "pass that record to its own insert_* method, or to insert() or insert_many()")
    return record


def _serialised(method):
    """`method` run under the object's lock. One DuckDB connection has one transaction: two threads writing
    through it at once interleaved their BEGIN, the `_orm_batch` view and COMMIT, and stored nothing."""
    @functools.wraps(method)
    def locked(self, *args, **kwargs):
        with self._lock:
            return method(self, *args, **kwargs)
    return locked


def _record_type(method: str, cls):
    if cls not in RECORD_TYPES:
        shown = cls.__name__ if isinstance(cls, type) else repr(cls)
        raise UsageError(f"{method}() takes a record type, not {shown}",
                         f"pass one of {', '.join(c.__name__ for c in RECORD_TYPES)}")
    return cls


@functools.cache
def _required_fields(cls) -> tuple[str, ...]:
    """The fields whose columns are NOT NULL (the id aside, which is derived): those without a default, and
    is_simulated, whose default False a caller may have replaced by None."""
    return tuple(f.name for f in fields(cls)
                 if f.name != cls.ID and (f.default is MISSING or f.name == "is_simulated"))


def _missing_required(cls, name: str, row: int | None = None) -> DataConversionError:
    where = "" if row is None else f"row {row}: "
    return DataConversionError(f"{where}{name} is required", f"set {name} of the {cls.__name__}; nothing was stored")


def _whole_id(value) -> bool:
    """Whether `value` can be a stored id: an integer (numpy's too) of 64 bits, not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and -2**63 <= value < 2**63


class BenchmarkDB:
    """Typed writes (and a few reads) over one benchmark database. Its calls may come from several threads."""

    def __init__(self, db_path: str | None = None, *, conn=None, lock_timeout: float = DEFAULT_LOCK_TIMEOUT):
        self.db_path = db_path
        self.lock_timeout = lock_timeout
        self._conn = conn
        self._owns_conn = conn is None
        self._in_transaction = False
        self._transaction_locks: contextlib.ExitStack | None = None  # released when the transaction ends
        self._lake_lock = None  # a benchmark_db.lake.LakeWriteLock once known; see _replacing_lock
        self._column_types: dict[str, list[tuple[str, str]]] = {}
        self._known_ids: dict[str, set] = {column: set() for column, _ in _REFERENCES}  # see _check_references
        # re-entrant: a public call calls others (insert -> insert_many), a transaction block makes calls
        self._lock = threading.RLock()

    # -- connection --------------------------------------------------------------------------------------
    @property
    def conn(self):
        if self._conn is None:
            with self._lock:  # two threads' first calls must not open the file twice
                if self._conn is None:
                    self._conn = connect(self.db_path, lock_timeout=self.lock_timeout)
        return self._conn

    @_serialised
    def close(self) -> None:
        if self._conn is not None and self._owns_conn:
            self._conn.close()
        self._conn = None
        if self._lake_lock is not None:
            self._lake_lock.close()
            self._lake_lock = None
        self._forget_known_ids()  # another process may change the file before the next open

    def _forget_known_ids(self) -> None:
        for ids in self._known_ids.values():
            ids.clear()

    def __enter__(self) -> BenchmarkDB:
        _ = self.conn
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction(self):
        """Group several inserts so that they commit together or not at all. Other threads' calls on this object
        wait until the block ends, so that none of them lands in (or rolls back with) this transaction."""
        with self._lock:
            if self._in_transaction:
                yield self
                return
            yield from self._transaction()

    def _transaction(self):
        self.conn.execute("BEGIN TRANSACTION")
        self._in_transaction = True
        # a lake write lock taken inside (see insert_many) is held until the COMMIT or ROLLBACK
        self._transaction_locks = locks = contextlib.ExitStack()
        try:
            with locks:
                try:
                    yield self
                except BaseException:
                    self.conn.execute("ROLLBACK")
                    self._forget_known_ids()  # some may have been seen only inside the rolled-back transaction
                    raise
                try:
                    self.conn.execute("COMMIT")
                except Exception as exc:  # a failed COMMIT has ended the transaction already
                    self._forget_known_ids()
                    conflict = _write_conflict(exc)
                    if conflict is None:
                        raise
                    raise conflict from exc
        finally:
            self._in_transaction = False
            self._transaction_locks = None

    def _replacing_lock(self, by_type: dict):
        """The lake's writer lock for a write that may replace stored rows, or None.

        Replace is DELETE then INSERT, and DuckLake has no primary key: two writers storing the same new
        named row at once both delete nothing and both insert, and the lake holds it twice. On a
        PostgreSQL-catalogued lake such a write therefore waits for the other (`benchmark_db.lake.write_lock`)
        and then replaces its rows. Rows marked new by construction (`RecordColumns.new`) cannot meet a stored
        row and never take it; plain records are not marked, so they do. The lock costs two round trips to the
        catalog per write, and opening its connection (kept until `close()`) a few hundred milliseconds once."""
        if not any(self._stored_candidates(cls, parts) for cls, parts in by_type.items() if cls not in _DIMENSIONS):
            return None
        if self._lake_lock is None or self._lake_lock.conn is not self.conn:
            from benchmark_db.lake import LakeWriteLock

            if self._lake_lock is not None:
                self._lake_lock.close()
            self._lake_lock = LakeWriteLock(self.conn)
        return self._lake_lock.held() if self._lake_lock.dsn is not None else None

    # -- dimensions --------------------------------------------------------------------------------------
    def get_or_add_model(self, model_name: str, **attrs) -> int:
        """The id of `model_name`, adding the model (or filling its missing attributes) as needed."""
        if not model_name or not str(model_name).strip():
            raise DataConversionError("a model needs a non-empty name", "pass model_name")
        model_name = str(model_name).strip()
        attrs.setdefault("model_family", family_of(model_name))
        if attrs.get("model_family") and not attrs.get("modality"):
            attrs["modality"] = FAMILY_MODALITY.get(attrs["model_family"])
        return self.insert_models(Models(model_name=model_name, **attrs))

    def get_or_add_hardware(self, hardware_type: str, device_name: str | None = None, **attrs) -> int:
        """The id of this hardware type and device, adding it (or filling missing attributes) as needed."""
        kind = normalize_hardware_type(hardware_type)
        if not kind:
            raise DataConversionError("a hardware platform needs a type", "pass hardware_type, e.g. cpu or cuda")
        return self.insert_hardware_platforms(HardwarePlatforms(hardware_type=kind, device_name=device_name,
                                                                **attrs))

    # -- inserts -----------------------------------------------------------------------------------------
    def insert(self, record) -> int:
        return self.insert_many([record])[0]

    def insert_models(self, record: Models) -> int:
        return self.insert(_typed("insert_models", Models, record))

    def insert_hardware_platforms(self, record: HardwarePlatforms) -> int:
        return self.insert(_typed("insert_hardware_platforms", HardwarePlatforms, record))

    def insert_test_runs(self, record: TestRuns) -> int:
        return self.insert(_typed("insert_test_runs", TestRuns, record))

    def insert_performance_results(self, record: PerformanceResults) -> int:
        return self.insert(_typed("insert_performance_results", PerformanceResults, record))

    def insert_hardware_compatibility(self, record: HardwareCompatibility) -> int:
        return self.insert(_typed("insert_hardware_compatibility", HardwareCompatibility, record))

    def insert_integration_test_results(self, record: IntegrationTestResults) -> int:
        return self.insert(_typed("insert_integration_test_results", IntegrationTestResults, record))

    def insert_web_platform_results(self, record: WebPlatformResults) -> int:
        return self.insert(_typed("insert_web_platform_results", WebPlatformResults, record))

    @_serialised
    def insert_many(self, records) -> list[int]:
        """Write records of any of the table types (and `RecordColumns` batches) in one transaction; return
        their ids in order, a batch contributing one id per row."""
        if isinstance(records, str | bytes | dict) or not hasattr(records, "__iter__"):  # a record has none
            raise UsageError(f"insert_many() takes a list of records, not {type(records).__name__}",
                             "pass a list of Models, PerformanceResults, ... (or RecordColumns); one record goes "
                             "to insert()")
        records = list(records)
        by_type: dict[type, list] = {}  # type -> parts in order: lists of records and RecordColumns
        for record in records:
            if type(record) is RecordColumns:
                cls = record.cls
                if cls not in RECORD_TYPES:
                    raise DataConversionError(f"cannot store a {cls.__name__} batch",
                                              "pass Models, TestRuns, PerformanceResults, ... columns")
                by_type.setdefault(cls, []).append(record)
                continue
            cls = type(record)
            if cls not in RECORD_TYPES:
                raise DataConversionError(f"cannot store a {cls.__name__}",
                                          "pass Models, TestRuns, PerformanceResults, ... objects")
            parts = by_type.setdefault(cls, [])
            if parts and type(parts[-1]) is list:
                parts[-1].append(record)
            else:
                parts.append([record])
        now = utc_now()
        for cls, parts in by_type.items():
            for part in parts:
                if type(part) is RecordColumns:
                    self._prepare_columns(part, now)
                else:
                    self._prepare(cls, part, now)
        self._check_references(by_type)
        # Rows of one fact table that are all new make one INSERT, atomic on its own: BEGIN and COMMIT
        # around it would only add two statements to every group commit of the REST server.
        [(first_type, first_parts), *others] = by_type.items() or [(None, [])]
        single_insert = (not others and first_type not in _DIMENSIONS
                         and not self._stored_candidates(first_type, first_parts))
        if self._in_transaction and not single_insert:  # the caller's transaction: the lock until that ends
            lock = self._replacing_lock(by_type)
            if lock is not None:
                self._transaction_locks.enter_context(lock)
        # a write of its own is tried again when a lake writer that took no lock (an append) committed to the
        # same table first: DuckLake then refuses the whole commit, and nothing of it was stored. Inside a
        # caller's transaction only the caller can do that again: DB001 "re-run".
        attempts = 1 if self._in_transaction else WRITE_CONFLICT_ATTEMPTS
        for attempt in range(1, attempts + 1):
            try:
                lock = None if single_insert or self._in_transaction else self._replacing_lock(by_type)
                self._write_all(by_type, lock, single_insert)
                break
            except Exception as exc:
                conflict = _write_conflict(exc)
                if conflict is None:
                    raise
                if attempt == attempts:
                    if conflict is exc:
                        raise
                    raise conflict from exc
                log.info("write conflict with another lake writer; trying again (%d of %d)", attempt + 1, attempts)
                time.sleep(0.05 * attempt)
        ids: list = []
        for record in records:
            if type(record) is RecordColumns:
                ids.extend(record.ids)
            else:
                ids.append(getattr(record, record.ID))
        return ids

    def _write_all(self, by_type: dict, lock, single_insert: bool) -> None:
        # the lock before BEGIN: the transaction then sees what the writer it waited for committed
        with lock or contextlib.nullcontext(), contextlib.nullcontext() if single_insert else self.transaction():
            # dimensions first, so the denormalised names of fact rows can be filled from them
            for cls in sorted(by_type, key=lambda c: c not in _DIMENSIONS):
                try:
                    self._write(cls, by_type[cls])
                except Exception as exc:
                    # a value of the wrong kind for its column (started_at="notatime"): the checks above
                    # cover the measurements; DuckDB or Arrow find the rest, and their error is one line
                    if not _wrong_value(exc):
                        raise
                    raise DataConversionError(f"cannot store the {cls.__name__}: {one_line(exc)}",
                                              "check the types of its fields (times as datetime or ISO "
                                              "text, numbers as numbers)") from None

    def _check_references(self, by_type: dict) -> None:
        """DB003, before anything is written, for a fact row whose model_id or hardware_id names no row: the
        schema has no foreign keys (DuckDB cannot replace a referenced row, DuckLake has none), so
        such a row was stored and then left out of every view and report that joins its model or hardware."""
        for column, target in _REFERENCES:
            wanted: set = set()
            for cls, parts in by_type.items():
                if cls in _REFERENCED:
                    continue
                for part in parts:
                    if type(part) is RecordColumns:
                        wanted.update(part.columns.get(column) or ())
                    else:
                        wanted.update(getattr(record, column) for record in part)
            wanted.discard(None)
            for value in wanted:  # before DuckDB reads 'abc' as a BIGINT (a raw ConversionException)
                if not _whole_id(value):
                    raise DataConversionError(f"{column} must be an integer id, not {value!r}",
                                              f"use the id {_ADD_METHOD[target]} returns")
            for part in by_type.get(target, ()):  # written by this same call
                wanted.difference_update(part.ids if type(part) is RecordColumns
                                         else (getattr(record, target.ID) for record in part))
            wanted -= self._known_ids[column]
            if not wanted:
                continue
            found = {row[0] for row in self.conn.execute(
                f"SELECT DISTINCT {column} FROM {target.TABLE} WHERE {column} IN (SELECT unnest(?::BIGINT[]))",
                [sorted(wanted)]).fetchall()}
            # a guard against wrong ids, not a constraint: ids seen stored are not looked up again on this
            # connection (the ORM never deletes a model or hardware row), which keeps group commits cheap
            if len(self._known_ids[column]) > 100_000:
                self._known_ids[column].clear()
            self._known_ids[column].update(found)
            missing = sorted(wanted - found)
            if missing:
                more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
                raise DataConversionError(
                    f"{column} {missing[0]}{more} names no row of {target.TABLE}; nothing was stored",
                    f"store the {target.__name__} first (in the same insert_many call, or with "
                    f"{_ADD_METHOD[target]}) and use the id it returns")

    @staticmethod
    def _prepare(cls, group, now, check_values: bool = True) -> None:
        """Check and normalise records before they are written. `check_values` False (the ingest's fact tables):
        the converter has normalised them, and a stored odd value (a negative score) is --validate's to report,
        not a reason to fail its file."""
        for name in _required_fields(cls):  # DuckDB's NOT NULL error named the column but not the record
            for row, record in enumerate(group):
                if getattr(record, name) is None:
                    raise _missing_required(cls, name, row if len(group) > 1 else None)
        for name in _time_fields(cls):
            if len(group) == 1:
                if (error := bad_time(name, getattr(group[0], name))) is not None:
                    raise error
            else:
                check_time_column(name, list(map(operator.attrgetter(name), group)))
        if not check_values:
            pass
        elif len(group) == 1:
            check_record(cls, group[0])
        else:
            check_record_values(cls, {name: [getattr(record, name) for record in group]
                                      for name in itertools.chain.from_iterable(_checked_fields(cls))})
        for record in group:
            if cls is HardwarePlatforms:
                record.hardware_type = normalize_hardware_type(record.hardware_type)
            elif cls is PerformanceResults:
                check_performance_values(record)
                if record.hardware_type:
                    record.hardware_type = normalize_hardware_type(record.hardware_type)
            if record.created_at is None:
                record.created_at = now
            if getattr(record, cls.ID) is None:
                setattr(record, cls.ID, record.natural_id())

    def _prepare_columns(self, batch: RecordColumns, now) -> None:
        """`_prepare` for a batch: the same normalisation, per distinct value rather than per row."""
        cls, columns, rows = batch.cls, batch.columns, len(batch)
        known = {f.name for f in fields(cls)}
        unknown = set(columns) - known
        if unknown:
            raise DataConversionError(f"{cls.__name__} has no field(s) {', '.join(sorted(unknown))}",
                                      f"fields: {', '.join(sorted(known))}")
        defaults = {f.name: f.default for f in fields(cls)}
        for name in _required_fields(cls):
            values = columns.get(name)
            if (values is None and defaults[name] is MISSING) or (values is not None and None in values):
                raise _missing_required(cls, name, values.index(None) if values is not None else None)
        if not batch.checked:
            if cls is PerformanceResults:
                check_performance_columns(columns)
            check_record_values(cls, columns)
        if cls is PerformanceResults and "metrics" in columns:  # as PerformanceResults.__post_init__ does
            said = list(map(metrics_say_emulated, columns["metrics"]))
            if any(said):
                given = columns.get("is_emulated") or [False] * rows
                columns["is_emulated"] = [bool(a) or b for a, b in zip(given, said)]
        if cls in (HardwarePlatforms, PerformanceResults) and "hardware_type" in columns:
            always = cls is HardwarePlatforms
            kinds = {value: normalize_hardware_type(value) if always or value else value
                     for value in set(columns["hardware_type"])}
            if any(kind != value for value, kind in kinds.items()):
                columns["hardware_type"] = [kinds[v] for v in columns["hardware_type"]]
        for name in _time_fields(cls):
            if name in columns:
                check_time_column(name, columns[name])
        stamps = columns.get("created_at")
        if stamps is None:
            columns["created_at"] = [now] * rows
        elif None in stamps:
            columns["created_at"] = [now if v is None else v for v in stamps]
        ids = columns.get(cls.ID)
        if ids is None or None in ids:
            # natural_id reads only attributes: one namespace, refilled per row, stands in for the record
            names = [name for name in columns if name != cls.ID]
            row = types.SimpleNamespace(**{f.name: None if f.default is MISSING else f.default
                                           for f in fields(cls)})
            attributes = vars(row)
            natural_id = cls.natural_id
            ids = list(ids) if ids is not None else [None] * rows
            for i, values in enumerate(zip(*(columns[name] for name in names)) if names else [()] * rows):
                if ids[i] is None:
                    attributes.update(zip(names, values))
                    ids[i] = natural_id(row)
            columns[cls.ID] = ids

    def _columns(self, table: str) -> list[tuple[str, str]]:
        if table not in self._column_types:
            rows = self.conn.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_name = ? AND table_schema = current_schema() AND table_catalog = current_database() "
                "ORDER BY ordinal_position",
                [table]).fetchall()
            if not rows:  # not cached: a table made later (a migration, a restore) must be found then
                raise SchemaError(f"the database has no table {table}",
                                  "create or migrate it: scripts/create_benchmark_schema.py --db PATH")
            self._column_types[table] = rows
        return self._column_types[table]

    @staticmethod
    def _stored_candidates(cls, parts) -> list:
        """The ids of the rows that may replace a stored row (all but those RecordColumns marks new)."""
        ids: list = []
        for part in parts:
            if type(part) is not RecordColumns:
                ids += [getattr(r, cls.ID) for r in part]
            elif part.new is None:
                ids += part.ids
            elif not all(part.new):
                ids += [key for key, new in zip(part.ids, part.new) if not new]
        return ids

    @staticmethod
    def _column_values(cls, parts, columns: list[tuple[str, str]]) -> dict[str, list]:
        """The rows of all parts (records and RecordColumns) as one list per column, the last row of each key
        kept, JSON columns as text."""
        defaults = {f.name: f.default for f in fields(cls)}
        values: dict[str, list] = {}
        for column, _ in columns:
            merged: list = []
            for part in parts:
                if type(part) is RecordColumns:
                    given = part.columns.get(column)
                    if given is None:
                        default = defaults[column]
                        given = [None if default is MISSING else default] * len(part)
                    merged += given
                else:
                    merged += [getattr(r, column) for r in part]
            if column in _JSON_COLUMNS and not all(map(operator.is_, merged, itertools.repeat(None))):
                merged = [_json_text(v) for v in merged]
            values[column] = merged
        keys = values[cls.ID]
        if len(set(keys)) < len(keys):  # the last record of a key wins, as it would row by row
            last = {key: i for i, key in enumerate(keys)}
            keep = sorted(last.values())
            values = {column: [column_values[i] for i in keep] for column, column_values in values.items()}
        return values

    def _write(self, cls, parts) -> None:
        table = cls.TABLE
        names = {f.name for f in fields(cls)}
        columns = [(c, t) for c, t in self._columns(table) if c in names]
        values = self._column_values(cls, parts, columns)
        rows = len(values[cls.ID])
        names_sql = ", ".join(c for c, _ in columns)
        key = cls.ID
        small = rows <= _SMALL_BATCH and cls not in _DIMENSIONS and _bindable(values)
        candidates = None if cls in _DIMENSIONS else self._stored_candidates(cls, parts)
        if small:
            # A few rows (a group commit of single requests) go in as bound parameters: registering and
            # scanning an Arrow table costs DuckDB a few milliseconds whatever its size.
            row_sql = "(" + ", ".join(f"?::{t}" for _, t in columns) + ")"
            source_sql = f"(VALUES {', '.join([row_sql] * rows)}) b({names_sql})"
            params = [v for row in zip(*(values[c] for c, _ in columns)) for v in row]
        else:
            import pyarrow as pa

            batch = pa.table({c: _arrow_array(values[c], t) for c, t in columns})
            self.conn.register("_orm_batch", batch)
            source_sql, params = "_orm_batch b", None
        if candidates is not None and len(candidates) == rows and not small:
            keys_sql, key_params = f"SELECT {key} FROM _orm_batch", None
        else:
            keys_sql, key_params = f"SELECT unnest(?::BIGINT[]) AS {key}", [candidates]
        try:
            if cls in _DIMENSIONS:
                # MERGE rather than ON CONFLICT: it needs no primary key, so it works on DuckLake too, and
                # a row is only rewritten when the batch brings a value it lacks or changes one, which keeps
                # concurrent writers of the same model from conflicting over nothing.
                attrs = [c for c, _ in columns if c not in (key, "created_at")]
                changed = " OR ".join(f"(s.{c} IS NOT NULL AND s.{c} IS DISTINCT FROM t.{c})" for c in attrs)
                updates = ", ".join(f"{c} = COALESCE(s.{c}, t.{c})" for c in attrs)
                merge_values = ", ".join(f"s.{c}" for c, _ in columns)
                news = self.conn.execute(
                    f"SELECT count(*) FROM _orm_batch s LEFT JOIN {table} t ON t.{key} = s.{key} "
                    f"WHERE t.{key} IS NULL OR {changed}").fetchone()[0]
                if not news:  # the usual get_or_add of a known model: read, never write
                    return
                self.conn.execute(f"MERGE INTO {table} AS t USING _orm_batch AS s ON t.{key} = s.{key} "
                                  f"WHEN MATCHED AND ({changed}) THEN UPDATE SET {updates} "
                                  f"WHEN NOT MATCHED THEN INSERT ({names_sql}) VALUES ({merge_values})")
            else:
                # Replace semantics as DELETE + INSERT in the caller's transaction: much faster in DuckDB
                # than INSERT OR REPLACE when, as usual, few or none of the keys exist yet.
                # Only delete when something is there to replace: on DuckLake a DELETE that races other
                # writers' commits is a conflict, while plain appends from many writers are not.
                if candidates and self.conn.execute(f"SELECT count(*) FROM {table} WHERE {key} IN ({keys_sql})",
                                                    key_params).fetchone()[0]:
                    self.conn.execute(f"DELETE FROM {table} WHERE {key} IN ({keys_sql})", key_params)
                select = ", ".join(f"b.{c}" for c, _ in columns)
                source = source_sql
                fill_names = cls is PerformanceResults and (
                    (None in values["model_name"] or None in values["hardware_type"]) if small
                    else (batch.column("model_name").null_count or batch.column("hardware_type").null_count))
                if small and not fill_names:  # plain VALUES, typed by the target columns: the cheapest to bind
                    row_sql = "(" + ", ".join("?" * len(columns)) + ")"
                    self.conn.execute(f"INSERT INTO {table} ({names_sql}) VALUES {', '.join([row_sql] * rows)}",
                                      params)
                    return
                if fill_names:
                    select, source = _names_filled(columns, source)
                self.conn.execute(f"INSERT INTO {table} ({names_sql}) SELECT {select} FROM {source}", params)
        finally:
            if not small:
                self.conn.unregister("_orm_batch")

    # -- reads -------------------------------------------------------------------------------------------
    @_serialised
    def get(self, cls, record_id: int):
        """The record of type `cls` with this id, or None. Archived rows are found too."""
        _record_type("get", cls)
        if not _whole_id(record_id):
            raise DataConversionError(f"{cls.ID} must be an integer (a 64-bit id), not {record_id!r}",
                                      f"pass the id an insert returned, e.g. db.get({cls.__name__}, 42)")
        names = [f.name for f in fields(cls)]
        row = self._read(f"SELECT {', '.join(names)} FROM {cls.TABLE} WHERE {cls.ID} = ?",
                         [int(record_id)]).fetchone()
        if row is None:
            return None
        values = dict(zip(names, row))
        for column in _JSON_COLUMNS & set(values):
            if isinstance(values[column], str):
                values[column] = json.loads(values[column])
        return cls(**values)

    @_serialised
    def count(self, cls) -> int:
        """How many rows of type `cls` the database holds, archived ones included."""
        return self._read(f"SELECT count(*) FROM {_record_type('count', cls).TABLE}").fetchone()[0]

    def _read(self, sql: str, params: list | None = None):
        """Run a read of the fact tables with the rows `--archive-data` moved to Parquet (through the `_all`
        views, as BenchmarkDBAPI reads): this connection may be a writer's, whose tables hold only live rows.
        An archived file that is gone is DB004 naming it, not DuckDB's "No files found"."""
        import duckdb

        from benchmark_db.maintenance import archive

        try:
            return self.conn.execute(archive.read_with_archive(self.conn, sql), params)
        except duckdb.IOException as exc:
            error = archive.missing_archive_error(self.conn, self.db_path or "the database")
            if error is None:
                raise
            raise error from exc

    @_serialised
    def fact_columns(self, cls) -> list[tuple[str, str]]:
        """(column, DuckDB type) of the fields of `cls` that its table has, in table order: what
        `fact_table` needs to build a table for `insert_table`."""
        names = {f.name for f in fields(cls)}
        return [(c, t) for c, t in self._columns(cls.TABLE) if c in names]

    @_serialised
    def insert_table(self, cls, table) -> int:
        """Write an Arrow table built by `fact_table` (its columns `fact_columns(cls)`; others are ignored)
        with the replace semantics of `insert_many`: the last row of each id wins and replaces a stored row
        with that id. The caller holds the transaction. Returns the rows written."""
        import pyarrow as pa

        if not isinstance(table, pa.Table):
            raise UsageError(f"insert_table() takes a pyarrow Table, not {type(table).__name__}",
                             "build it with fact_table(), or pass records to insert_many()")
        columns = self.fact_columns(cls)
        key = cls.ID
        table = table.select([c for c, _ in columns])
        ids = table.column(key).to_pylist()
        last = {k: i for i, k in enumerate(ids)}
        if len(last) < len(ids):  # the last record of a key wins, as it would row by row
            table = table.take(pa.array(sorted(last.values()), pa.int64()))
        if not table.num_rows:
            return 0
        names_sql = ", ".join(c for c, _ in columns)
        self.conn.register("_orm_table", table)
        try:
            if self.conn.execute(f"SELECT count(*) FROM {cls.TABLE} WHERE {key} IN (SELECT {key} FROM _orm_table)"
                                 ).fetchone()[0]:
                self.conn.execute(f"DELETE FROM {cls.TABLE} WHERE {key} IN (SELECT {key} FROM _orm_table)")
            select, source = ", ".join(f"b.{c}" for c, _ in columns), "_orm_table b"
            if cls is PerformanceResults and (table.column("model_name").null_count
                                              or table.column("hardware_type").null_count):
                select, source = _names_filled(columns, source)
            self.conn.execute(f"INSERT INTO {cls.TABLE} ({names_sql}) SELECT {select} FROM {source}")
        finally:
            self.conn.unregister("_orm_table")
        return table.num_rows


# `field` is re-exported for users who build records dynamically.
__all__ = ["BenchmarkDB", "RecordColumns", "record_count", "fact_table", "Models", "HardwarePlatforms", "TestRuns",
           "PerformanceResults", "HardwareCompatibility", "IntegrationTestResults", "WebPlatformResults",
           "RECORD_TYPES", "field"]


def build_parser() -> argparse.ArgumentParser:
    from benchmark_db.cli import add_common_options, add_db_option, add_output_options

    parser = argparse.ArgumentParser(
        prog="benchmark_db_models.py",
        description="ORM layer of the benchmark database. Run it to print the row count of every table.")
    add_db_option(parser)
    add_output_options(parser)
    add_common_options(parser)
    return parser


def table_counts(conn) -> list[dict]:
    """The row count of every table, archived rows included (also on a writer's connection)."""
    from benchmark_db.maintenance import archive
    from benchmark_db.schema import TABLES

    return [{"table": t, "rows": conn.execute(archive.read_with_archive(conn, f"SELECT count(*) FROM {t}")
                                              ).fetchone()[0]} for t in TABLES]


def main(argv: list[str] | None = None) -> int:
    from benchmark_db.cli import resolve_format, run_cli, write_text
    from benchmark_db.output import render

    def run(args) -> int:
        fmt = resolve_format(args.format, args.output, args.output_formats)
        from benchmark_db.connection import connect

        # a reader: a mistyped --db is DB001, not a new empty database
        conn = connect(args.db, read_only=True, lock_timeout=args.lock_timeout)
        try:
            counts = table_counts(conn)
        finally:
            conn.close()
        write_text(render(counts, fmt), args.output)
        return 0

    return run_cli(build_parser(), run, argv)


if __name__ == "__main__":
    raise SystemExit(main())

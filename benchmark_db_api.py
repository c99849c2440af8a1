#!/usr/bin/env python3
"""Python API (`BenchmarkDBAPI`) and the command that serves it over REST (`--serve`).

    from benchmark_db_api import BenchmarkDBAPI
    api = BenchmarkDBAPI()                      # $BENCHMARK_DB_PATH, else ./benchmark_db.duckdb
    api.store_performance_result(model_name="bert-base-uncased", hardware_type="cuda", throughput=123.4,
                                 latency_avg=10.5)
    df = api.get_performance_metrics(model_name="bert-base-uncased")
    df = api.query("SELECT model_name, count(*) FROM performance_results GROUP BY ALL")

    python benchmark_db_api.py --serve [--host 127.0.0.1] [--port 8000] [--db PATH]

Writes go through `benchmark_db_models.BenchmarkDB` (ids from natural keys). The database file is held only
while busy: a `SharedConnection` opens it on demand and closes it after `idle_release` seconds without use,
so the CLI tools keep working on the same file while a script or the server runs (DESIGN §4). Reads open
it read-only when nothing is open, so they need no write access (a read-only file or mount) and share the
file with other processes' readers; only writes need it writable.

Runs: a store that names its run (`run_id`, or `test_name` with `started_at`) is keyed by that run and its
configuration, so sending it again replaces the row (idempotent retries). A store that names no run belongs
to this API instance's session run and always adds a new row, so concurrent writers never collide.

`query()` is read-only (see `benchmark_db.readonly_sql`). FastAPI is imported only by `--serve`
(`benchmark_db_server.py`).
"""
from __future__ import annotations

import atexit
import contextlib
import dataclasses
import datetime as dt
import functools
import ipaddress
import itertools
import logging
import math
import operator
import os
import sys
import threading
import time
import uuid
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

if __package__ in (None, "") and str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchmark_db import identity, schema  # noqa: E402
from benchmark_db.connection import DEFAULT_LOCK_TIMEOUT, MEMORY, connect, resolve_db_path  # noqa: E402
from benchmark_db.errors import (  # noqa: E402
    DatabaseLockedError,
    DatabaseUnwritableError,
    DataConversionError,
    DBConnectionError,
    UsageError,
)
from benchmark_db.names import FAMILY_MODALITY, family_of, normalize_hardware_type  # noqa: E402
from benchmark_db_models import (  # noqa: E402
    EARLIEST_TIME,
    LATEST_TIME,
    PERFORMANCE_INT_MINIMUM,
    TIME_RANGE,
    BenchmarkDB,
    HardwareCompatibility,
    HardwarePlatforms,
    IntegrationTestResults,
    Models,
    PerformanceResults,
    RecordColumns,
    TestRuns,
    bad_text,
    bad_time,
    json_too_big,
    metrics_say_emulated,
    record_count,
)

DEFAULT_IDLE_RELEASE_S = 0.5
# Under sustained load the file is handed over now and then, long enough for a waiting CLI tool, whose lock
# retry polls at least once a second (benchmark_db.connection), to get in.
DEFAULT_MAX_HOLD_S = 10.0
HANDOVER_S = 1.2
# An open that had to wait for another process's lock, or found the file written since this process let go,
# says that processes take turns on the file: the next hold is this short, so that CLI tools queued on the
# lock are not let in one per `max_hold` (3 of 5 started together timed out beside a busy server).
CONTENDED_HOLD_S = 1.0
CONTENDED_OPEN_S = 0.25
# A write of at least this many rows runs on one DuckDB thread: inserting an Arrow batch of 10,000 rows took
# about a quarter more CPU on two threads than on one (2 cores), and no less time; the two SET statements
# around it cost a small write more than it could gain.
ONE_THREAD_ROWS = 1_000
DEFAULT_PAGE = 1_000
MAX_PAGE = 10_000
SESSION_TEST_NAME = "benchmark_db_api"
log = logging.getLogger("benchmark_db")
TOKEN_ENV = "BENCHMARK_DB_API_TOKEN"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")

# -- the database file, held only while busy ------------------------------------------------------------


def locked_error(exc: DBConnectionError, started: float) -> DBConnectionError:
    """`exc` (DB001 from benchmark_db.connection) saying how long its caller really waited for the lock."""
    if not isinstance(exc, DatabaseLockedError):
        return exc
    return DatabaseLockedError(exc.message, f"waited {time.monotonic() - started:.1f} s; retry when that process "
                                          "ends, or raise --lock-timeout")


def _other_mode(exc: DBConnectionError) -> bool:
    """Whether DuckDB refused to open a file this process has open with another configuration."""
    return "different configuration" in str(exc.__cause__ or exc)


_OPEN_CONNECTIONS: weakref.WeakSet[SharedConnection] = weakref.WeakSet()


@atexit.register
def _close_at_exit() -> None:
    """Close what the idle release has not closed yet: its reaper is a daemon thread that dies at exit, and a
    connection left open at exit is never checkpointed, so the last writes stayed in the `.wal` beside the file
    (a `cp` of the database, as CI artifacts are made, had none of them)."""
    for shared in list(_OPEN_CONNECTIONS):
        if shared.lock.acquire(timeout=5):  # a thread stuck in a query must not hang the exit
            try:
                shared._close()
            except Exception:  # noqa: BLE001 - exiting: nothing left to report it to
                pass
            finally:
                shared.lock.release()


class SharedConnection:
    """One connection opened on demand, shared by the threads of this process, closed when idle: read-only
    while only reads have used it since it opened, read-write once a write needs it.

    Every use holds `lock`, so DuckDB sees one user at a time; after `idle_release` seconds without use a
    background thread closes the connection and the file is free for other processes again.
    `idle_release=0` closes it after every operation. Under sustained use, after `max_hold` seconds open it
    is closed for `HANDOVER_S` seconds so that another process waiting for the file gets its turn.
    """

    def __init__(self, db_path: str | None = None, *, lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
                 idle_release: float = DEFAULT_IDLE_RELEASE_S, max_hold: float = DEFAULT_MAX_HOLD_S):
        self.path = resolve_db_path(db_path)
        self.lock_timeout = lock_timeout
        self.idle_release = idle_release
        self.max_hold = max_hold
        self.lock = threading.RLock()
        self._conn = None
        self._read_only = False  # whether _conn was opened read-only (by a reader, see connection())
        self._opened_at = 0.0
        self.generation = 0  # counts opens: what a holder cached about the file is valid within one
        self.handovers = 0
        self._last_used = 0.0
        self._reaper: threading.Thread | None = None
        self._depth = 0
        self._contended = False  # the last open found another process using the file (see CONTENDED_HOLD_S)
        self._closed_state = None  # _file_state() when this process last let go of the file
        _OPEN_CONNECTIONS.add(self)

    @property
    def is_open(self) -> bool:
        return self._conn is not None

    def exists(self) -> bool:
        """Whether the database is there to read; DB001 for a folder (it read "does not exist; create it")."""
        if self.path == MEMORY or self.path.startswith("ducklake:") or self._conn is not None:
            return True
        if Path(self.path).is_dir():
            raise DBConnectionError(f"{self.path} is a directory, not a database file",
                                    "pass the path of a database file")
        return Path(self.path).is_file()

    @contextlib.contextmanager
    def connection(self, started: float | None = None, *, read_only: bool = False):
        """The connection, held (with the lock) for the block: read-write, or with `read_only` whichever is
        open, else a read-only one, so that a reader needs no write access to the file (a read-only file, a
        read-only mount) and does not keep other processes' readers out.

        A caller waits for another process's lock on the file at most `lock_timeout` seconds from its call, the
        time it queued behind this process's other callers included: requests that queued behind one that
        timed out do not each wait the whole timeout again."""
        started = time.monotonic() if started is None else started
        with self.lock:
            if self._conn is not None and self._read_only and not read_only:
                if self._depth:
                    raise UsageError("cannot write inside a read on the same API object", "write after the read")
                self._close()  # a read-only open cannot write: the writer opens the file again
            hold = min(self.max_hold, CONTENDED_HOLD_S) if self._contended else self.max_hold
            if (self._conn is not None and self._depth == 0 and self.max_hold > 0 and self.path != MEMORY
                    and time.monotonic() - self._opened_at > hold):
                self._close()
                self.handovers += 1
                time.sleep(HANDOVER_S)
                started += HANDOVER_S
            if self._conn is None:
                self._conn, self._read_only = self._open(started, read_only)
                self._opened_at = time.monotonic()
                self.generation += 1
            self._depth += 1
            try:
                yield self._conn
            finally:
                self._depth -= 1
                self._last_used = time.monotonic()
                if self._depth == 0:
                    self._release_later()

    def remaining_wait(self, started: float) -> float:
        """What is left of `lock_timeout` for a caller that came at `started` (time.monotonic())."""
        return max(self.lock_timeout - (time.monotonic() - started), 0.0)

    def _open(self, started: float, read_only: bool = False) -> tuple[Any, bool]:
        """A new connection and whether it is read-only."""
        opening = time.monotonic()
        try:
            conn, read_only = self._connect(started, read_only)
        except DBConnectionError as exc:
            raise locked_error(exc, started) from exc
        # another process had the file: it held it as we opened, or it wrote it since we let go
        self._contended = (time.monotonic() - opening > CONTENDED_OPEN_S
                           or (self._closed_state is not None and self._file_state() != self._closed_state))
        return conn, read_only

    def _connect(self, started: float, read_only: bool) -> tuple[Any, bool]:
        # DuckDB opens a file once per process, in one mode: while another object of this process (a second
        # BenchmarkDBAPI, an ORM) holds it in the other mode, a reader reads read-write, as before, and a
        # writer waits for that object to let go (it does when idle), as for another process's lock
        if read_only and self.path != MEMORY and not self.path.startswith("ducklake:"):
            try:
                return connect(self.path, read_only=True, lock_timeout=self.remaining_wait(started),
                               missing_archive="error"), True
            except DBConnectionError as exc:
                if not _other_mode(exc):
                    raise
        while True:
            try:
                return connect(self.path, lock_timeout=self.remaining_wait(started)), False
            except DBConnectionError as exc:
                if not _other_mode(exc) or not self.remaining_wait(started):
                    raise
                time.sleep(0.05)

    def _file_state(self) -> tuple | None:
        """What changes when another process writes the file (or replaces it); None for a non-file."""
        if self.path == MEMORY or self.path.startswith("ducklake:"):
            return None
        state = []
        for name in (self.path, self.path + ".wal"):
            try:
                st = os.stat(name)
                state.append((st.st_ino, st.st_size, st.st_mtime_ns))
            except OSError:
                state.append(None)
        return tuple(state)

    @contextlib.contextmanager
    def closed(self):
        """The lock, with this process's connection closed: for opening the file with another configuration."""
        with self.lock:
            if self._depth:
                raise UsageError("cannot run a read-only query inside a write on the same API object",
                                 "run the query after the write")
            self._close()
            yield

    def _release_later(self) -> None:
        if self.path == MEMORY:
            return  # closing would lose an in-memory database
        if self.idle_release <= 0:
            self._close()
            return
        if self._reaper is None:
            self._reaper = threading.Thread(target=self._reap, name="benchmark-db-idle-release", daemon=True)
            self._reaper.start()

    def _reap(self) -> None:
        while True:
            time.sleep(max(self.idle_release / 2, 0.01))
            with self.lock:
                if self._conn is None:
                    self._reaper = None
                    return
                if self._depth == 0 and time.monotonic() - self._last_used >= self.idle_release:
                    self._close()
                    self._reaper = None
                    return

    def _close(self) -> None:
        if self._conn is not None:
            # is_open turns false only once DuckDB has let go of the file (close checkpoints, which takes a
            # while): a caller that saw it false and opened the file with another configuration raced it
            try:
                self._conn.close()
            finally:
                self._conn = None
                self._closed_state = self._file_state()

    def close(self) -> None:
        with self.lock:
            self._close()

    def discard(self) -> None:
        """Drop the connection without using it again (after DuckDB invalidated it)."""
        with self.lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.close()


# -- turning call arguments into ORM records ------------------------------------------------------------

_PERF_FLOATS = {  # API name -> performance_results column
    "throughput": "throughput_items_per_second",
    "latency_avg": "average_latency_ms",
    "latency_p50": "latency_p50_ms",
    "latency_p90": "latency_p90_ms",
    "latency_p95": "latency_p95_ms",
    "latency_p99": "latency_p99_ms",
    "latency_stddev": "latency_stddev_ms",
    "memory_peak": "memory_peak_mb",
    "total_time_seconds": "total_time_seconds",
}
_PERF_INTS = ("batch_size", "sequence_length", "iterations", "warmup_iterations")
# The range each whole-number field of a performance result may take, shared with the REST server's request
# models. A batch or a sequence has at least one item (benchmark_db.validation reports a stored 0 as
# impossible, and the throughput check divides by batch_size); the upper bounds refuse values that are
# typos or overflowed counters rather than measurements (a million items in one batch, 16M tokens).
INT_FIELD_RANGES = {
    "batch_size": (PERFORMANCE_INT_MINIMUM["batch_size"], schema.MAX_BATCH_SIZE),
    "sequence_length": (PERFORMANCE_INT_MINIMUM["sequence_length"], schema.MAX_SEQUENCE_LENGTH),
    "iterations": (PERFORMANCE_INT_MINIMUM["iterations"], 2**31 - 1),
    "warmup_iterations": (PERFORMANCE_INT_MINIMUM["warmup_iterations"], 2**31 - 1),
}
RUN_FIELDS = ("run_id", "test_name", "run_name", "test_type", "started_at", "completed_at", "git_commit",
              "git_branch", "command_line", "environment", "run_metadata")
PERFORMANCE_FIELDS = ("model_name", "hardware_type", "device_name", "batch_size", "precision", "throughput",
                      "latency_avg", "memory_peak", "test_case", "sequence_length", "latency_p50",
                      "latency_p90", "latency_p95", "latency_p99", "latency_stddev", "total_time_seconds",
                      "iterations", "warmup_iterations", "latency_samples", "metrics", "is_simulated",
                      "is_emulated", "model_family", "created_at", *RUN_FIELDS)
COMPATIBILITY_FIELDS = ("hardware_type", "model_name", "device_name", "is_compatible", "detection_success",
                        "initialization_success", "error_message", "error_type", "suggested_fix",
                        "workaround_available", "compatibility_score", "is_simulated", "metadata",
                        "model_family", "created_at", *RUN_FIELDS)
INTEGRATION_FIELDS = ("test_name", "status", "test_module", "test_class", "execution_time_seconds",
                      "hardware_type", "device_name", "model_name", "error_message", "error_traceback",
                      "metadata", "model_family", "created_at", *(f for f in RUN_FIELDS if f != "test_name"))
RESULT_TYPES = ("performance", "compatibility", "integration")
# the run fields of each kind of result, by the name its run's name goes by
_RUN_KEYS = {"test_name": RUN_FIELDS, "run_name": tuple(f for f in RUN_FIELDS if f != "test_name")}
# Performance results with only these fields (no run, no raw samples, the usual case of a batch) are built
# together, column by column, by RecordBuilder.performance_columns; any other goes through performance().
_ROW_FIELDS = frozenset(PERFORMANCE_FIELDS) - frozenset(RUN_FIELDS) - {"latency_samples"} | {"result_type"}
PERFORMANCE_COLUMNS_ORDER = tuple(f.name for f in dataclasses.fields(PerformanceResults))
_performance_row_of = operator.attrgetter(*PERFORMANCE_COLUMNS_ORDER)
_DIMENSION_FIELDS = ("model_name", "model_family", "hardware_type", "device_name")


def _float(name: str, value) -> float | None:
    if value is None:
        return None
    if type(value) is float and math.isfinite(value):
        return value
    if isinstance(value, bool):
        raise DataConversionError(f"{name} must be a number, not {value!r}", f"pass {name} as a number")
    try:
        number = float(value)
    except OverflowError:  # an int beyond a double's range (10**400): as infinite as float('inf')
        number = math.inf
    except (TypeError, ValueError) as exc:
        raise DataConversionError(f"{name} must be a number, not {value!r}", f"pass {name} as a number") from exc
    if not math.isfinite(number):
        raise DataConversionError(f"{name} must be a finite number, not {value!r}", "leave it out if unknown")
    return number


def _measurement(name: str, value) -> float | None:
    """_float of a duration or measured amount (latency, throughput, memory, time, score), which cannot be
    negative: benchmark_db.validation and the integrity check report a stored negative one as impossible."""
    number = _float(name, value)
    if number is not None and number < 0:
        raise DataConversionError(f"{name} must not be negative, not {value!r}",
                                  f"{name} is a duration or measured amount; leave it out if unknown")
    return number


def _int(name: str, value, low: int = 0, high: int = 2**31 - 1) -> int | None:
    if value is None:
        return None
    if type(value) is int and low <= value <= high:
        return value
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise DataConversionError(f"{name} must be a whole number, not {value!r}", f"pass {name} as an integer")
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError) as exc:
        raise DataConversionError(f"{name} must be a whole number, not {value!r}",
                                  f"pass {name} as an integer") from exc
    if not low <= number <= high:
        raise DataConversionError(f"{name} must be between {low} and {high}, not {number}", f"check {name}")
    return number


def _text(name: str, value, required: bool = False) -> str | None:
    if type(value) is str and value.isprintable() and value.isascii() and value.strip() == value and value:
        return value  # the common case: plain, trimmed ASCII text
    if value is None or (isinstance(value, str) and not value.strip() and not required):
        if required:
            raise DataConversionError(f"{name} is required", f"pass {name}")
        return None
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise DataConversionError(f"{name} must be a string, not {type(value).__name__}", f"pass {name} as text")
    text = str(value).strip()
    if required and not text:
        raise DataConversionError(f"{name} must not be empty", f"pass {name}")
    if (error := bad_text(name, text)) is not None:  # the ORM's rule: NUL, or no UTF-8
        raise error
    return text


def _bool(name: str, value) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0", "yes", "no"):
        return value.strip().lower() in ("true", "1", "yes")
    raise DataConversionError(f"{name} must be true or false, not {value!r}", f"pass {name} as a boolean")


def _timestamp(name: str, value) -> dt.datetime | None:
    """A naive UTC datetime (the database stores UTC) from a datetime, an ISO string or epoch seconds."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        stamp = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        try:
            stamp = dt.datetime.fromtimestamp(float(value), dt.UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise DataConversionError(f"{name} {value!r} is not a valid time", "pass an ISO 8601 time") from exc
    elif isinstance(value, str):
        try:
            stamp = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError as exc:
            raise DataConversionError(f"{name} {value!r} is not an ISO 8601 time",
                                      "e.g. 2025-03-01T09:00:00Z") from exc
    else:
        raise DataConversionError(f"{name} must be a time, not {type(value).__name__}", "pass an ISO 8601 time")
    if stamp.tzinfo is not None:
        try:
            stamp = stamp.astimezone(dt.UTC).replace(tzinfo=None)
        except (OverflowError, ValueError) as exc:
            raise DataConversionError(f"{name} {value!r} is out of range in UTC",
                                      f"pass a time {TIME_RANGE}") from exc
    return stamp


def _stored_time(name: str, value) -> dt.datetime | None:
    """_timestamp of a time to store: DB003 outside the range the ORM stores (benchmark_db_models.TIME_RANGE,
    the converter's plausibility rule), checked here so that the error names the field before anything is
    written. A filter (`since`, `until`) may be any time."""
    stamp = _timestamp(name, value)
    if stamp is not None and not EARLIEST_TIME <= stamp < LATEST_TIME:
        raise bad_time(name, stamp)
    return stamp


def _json_value(name: str, value, depth: int = 0):
    """A JSON-compatible copy of `value` (dicts, lists, scalars); refuses NaN and objects JSON cannot hold."""
    if depth > 32:
        raise DataConversionError(f"{name} is nested too deeply", "flatten it")
    if value is None or isinstance(value, bool | int | str):
        if isinstance(value, str):
            _text(name, value)
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise DataConversionError(f"{name} holds a non-finite number", "replace NaN/Infinity with null")
        return value
    if isinstance(value, dict):
        return {str(_text(name, k) if isinstance(k, str) else k): _json_value(name, v, depth + 1)
                for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_value(name, v, depth + 1) for v in value]
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return _json_value(name, value.item(), depth + 1)
    raise DataConversionError(f"{name} holds a {type(value).__name__}, which JSON cannot store",
                              "pass numbers, strings, lists and dicts")


def _json_object(name: str, value) -> dict | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise DataConversionError(f"{name} must be an object (a dict), not {type(value).__name__}",
                                  f"pass {name} as a dict")
    value = _json_value(name, value)
    try:
        text = orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
    except orjson.JSONEncodeError as exc:  # a whole number beyond 64 bits: the database stores JSON through orjson
        raise DataConversionError(f"{name} holds a value that cannot be stored: {exc}",
                                  "write a whole number beyond 64 bits as a string") from None
    if (error := json_too_big(name, len(text))) is not None:
        raise error
    return value


def _samples(value) -> list[float] | None:
    if value is None:
        return None
    if isinstance(value, str | bytes | dict) or not hasattr(value, "__iter__"):
        raise DataConversionError("latency_samples must be a list of numbers (ms)", "pass a list of floats")
    samples = [_measurement("latency_samples", v) for v in value]
    if any(v is None for v in samples):
        raise DataConversionError("latency_samples must not contain nulls", "drop missing samples")
    return samples


def _sample_statistics(samples: list[float]) -> dict[str, float]:
    """Mean, percentiles and standard deviation of raw latency samples (ms), for fields left empty."""
    import statistics

    ordered = sorted(samples)

    def percentile(q: float) -> float:  # linear interpolation, as numpy's default
        position = (len(ordered) - 1) * q
        low = math.floor(position)
        high = min(low + 1, len(ordered) - 1)
        return ordered[low] + (ordered[high] - ordered[low]) * (position - low)

    try:
        stats = {"latency_avg": statistics.fmean(ordered), "latency_p50": percentile(0.50),
                 "latency_p90": percentile(0.90), "latency_p95": percentile(0.95), "latency_p99": percentile(0.99)}
        if len(ordered) > 1:
            stats["latency_stddev"] = statistics.stdev(ordered)
    except OverflowError:  # each sample finite, their sum not (samples near 1e308 ms)
        stats = {"latency_avg": math.inf}
    if not all(math.isfinite(v) for v in stats.values()):
        raise DataConversionError("latency_samples are too large to summarise (their mean or spread is beyond a "
                                  "float's range)", "send the samples in ms")
    return stats


_ALLOWED_SETS: dict[tuple, frozenset] = {}


def _check_fields(kind: str, values: dict, allowed: tuple[str, ...]) -> None:
    known = _ALLOWED_SETS.get(allowed)
    if known is None:
        known = _ALLOWED_SETS[allowed] = frozenset(allowed) | {"result_type"}
    if values.keys() <= known:
        return
    unknown = sorted(set(values) - known)
    if unknown:
        raise DataConversionError(f"unknown field(s) for a {kind} result: {', '.join(unknown)}",
                                  f"known fields: {', '.join(allowed)}")


@functools.lru_cache(maxsize=4096)
def _model_spec(name: str, family: str | None) -> tuple[str | None, str | None, int]:
    family = family or family_of(name)
    return family, FAMILY_MODALITY.get(family or ""), identity.model_id_for(name)


@functools.lru_cache(maxsize=4096)
def _hardware_kind(value: str | None) -> str | None:
    return normalize_hardware_type(value)


@functools.lru_cache(maxsize=4096)
def _hardware_id(kind: str, device: str | None) -> int:
    return identity.hardware_id_for(kind, device)


# -- converting a column of many results at once --------------------------------------------------------
# Each returns (values converted as the single-result path converts each one, None), or (None, (row,
# error)) for the first bad value. A column of values that are already what the database takes (what
# pydantic hands the REST server) is checked in a few passes at C speed and returned as it is.

_NONE = type(None)
_FLOAT_KINDS = frozenset({float, _NONE})
_INT_KINDS = frozenset({int, _NONE})
_TEXT_KINDS = frozenset({str, _NONE})
_FLAG_KINDS = frozenset({bool, _NONE})
# equal values of these types convert alike (unlike 1, 1.0 and True), so each distinct value is converted once
_TIME_KINDS = frozenset({str, dt.datetime, _NONE})


def _by_value(name: str, values: list, convert) -> tuple[list | None, tuple | None]:
    converted = []
    for row, value in enumerate(values):
        try:
            converted.append(convert(name, value))
        except DataConversionError as exc:
            return None, (row, exc)
    return converted, None


def _by_distinct(name: str, values: list, convert) -> tuple[list | None, tuple | None]:
    """_by_value for values of one of the kinds whose equal values convert alike: each distinct value once."""
    converted, bad = {}, []
    for value in set(values):
        try:
            converted[value] = convert(name, value)
        except DataConversionError as exc:
            bad.append((values.index(value), exc))
    if bad:
        return None, min(bad, key=operator.itemgetter(0))
    if all(kept is value for value, kept in converted.items()):
        return values, None
    return list(map(converted.__getitem__, values)), None


def _measurement_column(name: str, values: list):
    if set(map(type, values)) <= _FLOAT_KINDS:
        given = list(filter(None, values))  # leaves out None (and 0.0, which is allowed)
        if all(map(math.isfinite, given)) and (not given or min(given) >= 0):
            return values, None
    return _by_value(name, values, _measurement)


def _int_column(name: str, values: list):
    low, high = INT_FIELD_RANGES[name]
    if set(map(type, values)) <= _INT_KINDS:
        given = [value for value in values if value is not None]
        if not given or (min(given) >= low and max(given) <= high):
            return values, None
    return _by_value(name, values, functools.partial(_int, low=low, high=high))


def _flag(name: str, value) -> bool:
    return bool(_bool(name, value))


def _converted_per_distinct(kinds: set, convert):
    """A column converter: values all of `kinds` (hashable) are converted once per distinct value, others
    one by one."""
    def column(name: str, values: list):
        if set(map(type, values)) <= kinds:
            return _by_distinct(name, values, convert)
        return _by_value(name, values, convert)
    return column


_text_column = _converted_per_distinct(_TEXT_KINDS, _text)
_flag_column = _converted_per_distinct(_FLAG_KINDS, _flag)
_timestamp_column = _converted_per_distinct(_TIME_KINDS, _stored_time)


def _json_column(name: str, values: list):
    if all(value is None for value in values):
        return values, None
    return _by_value(name, values, _json_object)


def _values_of(results: list[dict], name: str, default=None) -> list:
    """The `name` value of each result, `default` where it has none."""
    try:
        return list(map(operator.itemgetter(name), results))  # at C speed when every result has it, as usual
    except KeyError:
        return [r.get(name, default) for r in results]


def _all_plain(results: list) -> bool:
    """Whether every result is a performance result with only _ROW_FIELDS (RecordBuilder.performance_columns)."""
    if not set(map(type, results)) <= {dict}:
        return False
    given = set().union(*results)
    return given <= _ROW_FIELDS and ("result_type" not in given or
                                     all(r.get("result_type") in (None, "performance") for r in results))


def _numbered(index: int, exc: DataConversionError) -> DataConversionError:
    """The error of the index-th result of a list, saying which one it was."""
    return DataConversionError(f"result {index}: {exc.message}", exc.hint)


class RecordBuilder:
    """Builds the ORM records of one store call; knows this API instance's session run."""

    def __init__(self):
        self.session_id = uuid.uuid4().hex
        self.session_started = _utc_now()
        self.session_run_id = identity.stable_id("api-session", self.session_id)
        self._session_written = False
        self._session_record = None
        self._sequence = itertools.count()
        self._call = threading.local()  # per thread: the runs without a start time of the call being built

    @property
    def batch_runs(self) -> dict:
        """The runs without a start time made in the call being built (see one_call): results of one call that
        describe the same run share it; outside a call, each store is a call of its own."""
        runs = getattr(self._call, "runs", None)
        return {} if runs is None else runs

    @contextlib.contextmanager
    def one_call(self):
        self._call.runs = {}
        try:
            yield
        finally:
            self._call.runs = None

    def unique(self) -> str:
        """A key part no other store shares: this session's uuid and a counter (next() is atomic in CPython)."""
        return f"{self.session_id}:{next(self._sequence)}"

    def new_ids(self, count: int) -> list[int]:
        """Result ids for `count` results that name no run: new by construction, never shared with another
        store (see identity.id_block; one hash for the whole block)."""
        return identity.id_block("api-results", self.unique(), count)

    def session_run(self):
        """This API object's run, for stores that name none (written once, with the first such store)."""
        if self._session_record is None:
            self._session_record = self._new_session_run()
        return self._session_record

    def _new_session_run(self):
        import shlex

        from benchmark_db.lake import redact

        # each word redacted (a --db ducklake:postgres:... password=... of the calling script) and quoted
        command = shlex.join(redact(word) for word in sys.argv)[:2000]
        return TestRuns(test_name=SESSION_TEST_NAME, test_type="api", started_at=self.session_started,
                        command_line=command or None,
                        metadata={"session": self.session_id, "pid": os.getpid()}, run_id=self.session_run_id)

    def mark_session_written(self) -> None:
        self._session_written = True

    def forget_session_written(self) -> None:
        """After a rollback: the session run is written again with the next store (a rewrite replaces it)."""
        self._session_written = False

    # -- runs ----------------------------------------------------------------------------------------
    def run_for(self, values: dict, kind: str, run_name_field: str) -> tuple[int, bool, list]:
        """(run_id, explicit, records to write) for one store call."""
        if not any(values.get(name) is not None for name in _RUN_KEYS[run_name_field]):
            records = [] if self._session_written else [self.session_run()]
            return self.session_run_id, False, records
        run_id = _int("run_id", values.get("run_id"), 1, 2**63 - 1)
        run_name = _text(run_name_field, values.get(run_name_field))
        started_at = _stored_time("started_at", values.get("started_at"))
        extra = {
            "test_type": _text("test_type", values.get("test_type")),
            "completed_at": _stored_time("completed_at", values.get("completed_at")),
            "git_commit": _text("git_commit", values.get("git_commit")),
            "git_branch": _text("git_branch", values.get("git_branch")),
            "command_line": _text("command_line", values.get("command_line")),
            "environment": _json_object("environment", values.get("environment")),
            "metadata": _json_object("run_metadata", values.get("run_metadata")),
        }
        if started_at is not None and extra["completed_at"] is not None and extra["completed_at"] < started_at:
            # a negative run time, which the integrity check reports as impossible
            raise DataConversionError(f"completed_at {extra['completed_at'].isoformat()} is before started_at "
                                      f"{started_at.isoformat()}", "check the run's times (UTC)")
        described = run_name is not None or started_at is not None or any(v is not None for v in extra.values())
        if run_id is not None:
            if not described:
                return run_id, True, []  # the caller's run; its row was written by whoever made it
            run = TestRuns(test_name=run_name or SESSION_TEST_NAME, started_at=started_at, run_id=run_id, **extra)
            run.test_type = run.test_type or kind
            # the run may exist (ingested, or made by an earlier store): write_records keeps what this store
            # does not say about it instead of replacing its row with these few fields
            run._given = frozenset(name for name, value in (("test_name", run_name), ("started_at", started_at),
                                                            *extra.items()) if value is not None)
            return run_id, True, [run]
        if not described:
            records = [] if self._session_written else [self.session_run()]
            return self.session_run_id, False, records
        if started_at is None:
            # no start time: not identifiable across calls, so a new run, but one per description within one
            # call (a batch of 3 results of "ci-job" at commit abc made 3 runs); its start stays unknown (NULL,
            # not the time it was stored)
            key = (run_name_field, run_name, orjson.dumps(extra, default=str, option=orjson.OPT_SORT_KEYS))
            if key in self.batch_runs:
                return self.batch_runs[key], False, []
        run = TestRuns(test_name=run_name or SESSION_TEST_NAME, started_at=started_at, **extra)
        run.test_type = run.test_type or kind
        run.run_id = run.natural_id() if started_at is not None else identity.stable_id("api-run", self.unique())
        if started_at is None:
            self.batch_runs[key] = run.run_id
        return run.run_id, started_at is not None and run_name is not None, [run]

    # -- dimensions ----------------------------------------------------------------------------------
    @staticmethod
    def model(values: dict, required: bool = True):
        name = _text("model_name", values.get("model_name"), required=required)
        if name is None:
            return None
        family = _text("model_family", values.get("model_family"))
        spec = _model_spec(name, family)
        return Models(model_name=name, model_family=spec[0], modality=spec[1], model_id=spec[2])

    @staticmethod
    def hardware(values: dict, required: bool = True):
        kind = _hardware_kind(_text("hardware_type", values.get("hardware_type"), required=required))
        if kind is None:
            return None
        device = _text("device_name", values.get("device_name"))
        return HardwarePlatforms(hardware_type=kind, device_name=device, hardware_id=_hardware_id(kind, device))

    # -- facts ---------------------------------------------------------------------------------------
    def performance(self, values: dict) -> list:
        return self.performance_records(values)[0]

    def performance_records(self, values: dict) -> tuple[list, bool]:
        """The records of one performance result, and whether its id is new by construction (a result that
        names no run gets a unique id, so no stored row can have it)."""
        _check_fields("performance", values, PERFORMANCE_FIELDS)
        model = self.model(values)
        hardware = self.hardware(values)
        run_id, explicit, records = self.run_for(values, "performance", "test_name")
        get = values.get
        columns = {column: _measurement(name, get(name)) for name, column in _PERF_FLOATS.items()}
        samples = _samples(get("latency_samples"))
        if samples:
            for name, value in _sample_statistics(samples).items():
                if columns[_PERF_FLOATS[name]] is None:
                    columns[_PERF_FLOATS[name]] = value
        for name in _PERF_INTS:
            columns[name] = _int(name, get(name), *INT_FIELD_RANGES[name])
        result = PerformanceResults(
            model_id=model.model_id, hardware_id=hardware.hardware_id, run_id=run_id,
            model_name=model.model_name, hardware_type=hardware.hardware_type,
            test_case=_text("test_case", get("test_case")), precision=_text("precision", get("precision")),
            latency_samples_ms=samples, is_simulated=bool(_bool("is_simulated", get("is_simulated"))),
            is_emulated=bool(_bool("is_emulated", get("is_emulated"))),
            metrics=_json_object("metrics", get("metrics")), created_at=_stored_time("created_at", get("created_at")),
            **columns)
        if explicit:
            result.result_id = identity.performance_result_id_for(
                run_id, result.model_id, result.hardware_id, result.test_case, result.batch_size,
                result.sequence_length, result.precision)
        else:
            result.result_id = self.new_ids(1)[0]
        return [model, hardware, *records, result], not explicit

    def performance_columns(self, results: list[dict], numbers: Sequence[int] | None = None) -> tuple[dict, list]:
        """performance() of many results whose fields are all in _ROW_FIELDS (no run named, no samples), as
        the columns of one PerformanceResults batch (PERFORMANCE_COLUMNS_ORDER) plus the other records they
        need: the models and hardware they name, and the session run until it is written.

        Same values and checks as performance() (tests/test_api.py compares them field by field), done a
        column at a time; a bad value raises the error performance() would raise for the first bad result,
        as "result N: ..." with N from `numbers` (the index of each result in the caller's list) when given.
        """
        count = len(results)
        given = set().union(*results)
        failures: list[tuple] = []  # (row, the order performance() checks the field in, error)
        order = itertools.count(1)  # 0: the model and hardware fields

        def column(name: str, convert, default=None) -> list:
            """The converted values of a field; `default` (what a result without it stores) converts to itself."""
            position = next(order)
            if name not in given:
                return [default] * count
            values, failure = convert(name, _values_of(results, name, default))
            if failure is not None:
                failures.append((failure[0], position, failure[1]))
            return values

        described = [_values_of(results, name) if name in given else [None] * count for name in _DIMENSION_FIELDS]
        model_ids, hardware_ids, model_names, hardware_types, records = self._dimension_columns(
            results, described, failures)
        # in the order performance() checks them, so that the same error comes first
        floats = {_PERF_FLOATS[name]: column(name, _measurement_column) for name in _PERF_FLOATS}
        ints = {name: column(name, _int_column) for name in _PERF_INTS}
        test_cases = column("test_case", _text_column)
        precisions = column("precision", _text_column)
        simulated = column("is_simulated", _flag_column, False)
        emulated = column("is_emulated", _flag_column, False)
        metrics = column("metrics", _json_column)
        created_at = column("created_at", _timestamp_column)
        if failures:
            row, _, exc = min(failures, key=operator.itemgetter(0, 1))
            if numbers is None:
                raise exc
            raise _numbered(numbers[row], exc) from exc
        if "metrics" in given:  # as PerformanceResults.__post_init__: the metrics may say it
            said = list(map(metrics_say_emulated, metrics))
            if any(said):
                emulated = list(map(operator.or_, emulated, said))
        if not self._session_written:
            records.append(self.session_run())
        columns = {"model_id": model_ids, "hardware_id": hardware_ids, "run_id": [self.session_run_id] * count,
                   "model_name": model_names, "hardware_type": hardware_types, "test_case": test_cases,
                   "precision": precisions, **floats, **ints, "latency_samples_ms": [None] * count,
                   "is_simulated": simulated, "is_emulated": emulated, "metrics": metrics,
                   "created_at": created_at,
                   "result_id": self.new_ids(count)}
        return {name: columns[name] for name in PERFORMANCE_COLUMNS_ORDER}, records

    def _dimension_columns(self, results: list[dict], parts: list[list], failures: list) -> tuple:
        """The model_id, hardware_id, model_name and hardware_type columns of performance_columns, and the
        model and hardware records, from the _DIMENSION_FIELDS columns (`parts`) of the results."""
        keys = list(zip(*parts))
        if all(set(map(type, part)) <= _TEXT_KINDS for part in parts):
            # each description once, in order of first use: the first bad one is that of the first bad result
            lookup = keys
            todo = [(key, dict(zip(_DIMENSION_FIELDS, key))) for key in dict.fromkeys(keys)]
        else:  # 1, 1.0 and True are equal keys, yet make different names (or an error): each result alone
            lookup = range(len(results))
            todo = list(enumerate(results))
        records: dict = {}  # by what they say: two spellings of a hardware type make one record
        built = {}  # (model_id, hardware_id, model_name, hardware_type) by key or row
        for where, values in todo:
            try:
                model, hardware = self.model(values), self.hardware(values)
            except DataConversionError as exc:
                failures.append((lookup.index(where), 0, exc))
                return [], [], [], [], []
            records.setdefault(_dimension_key(model), model)
            records.setdefault(_dimension_key(hardware), hardware)
            built[where] = (model.model_id, hardware.hardware_id, model.model_name, hardware.hardware_type)
        columns = [list(column) for column in zip(*map(built.__getitem__, lookup))] or [[], [], [], []]
        return (*columns, list(records.values()))

    def compatibility(self, values: dict) -> list:
        _check_fields("compatibility", values, COMPATIBILITY_FIELDS)
        hardware = self.hardware(values)
        model = self.model(values, required=False)
        run_id, explicit, records = self.run_for(values, "compatibility", "test_name")
        score = _measurement("compatibility_score", values.get("compatibility_score"))
        result = HardwareCompatibility(
            hardware_id=hardware.hardware_id, model_id=model.model_id if model else None, run_id=run_id,
            is_compatible=_bool("is_compatible", values.get("is_compatible")),
            detection_success=_bool("detection_success", values.get("detection_success")),
            initialization_success=_bool("initialization_success", values.get("initialization_success")),
            error_message=_text("error_message", values.get("error_message")),
            error_type=_text("error_type", values.get("error_type")),
            suggested_fix=_text("suggested_fix", values.get("suggested_fix")),
            workaround_available=_bool("workaround_available", values.get("workaround_available")),
            compatibility_score=score, is_simulated=bool(_bool("is_simulated", values.get("is_simulated"))),
            metadata=_json_object("metadata", values.get("metadata")),
            created_at=_stored_time("created_at", values.get("created_at")))
        result.compatibility_id = identity.stable_id("compatibility", run_id, result.model_id, result.hardware_id,
                                                     *(() if explicit else (self.unique(),)))
        return [m for m in (model, hardware) if m is not None] + records + [result]

    def integration(self, values: dict) -> list:
        _check_fields("integration", values, INTEGRATION_FIELDS)
        hardware = self.hardware(values, required=False)
        model = self.model(values, required=False)
        run_id, explicit, records = self.run_for(values, "integration", "run_name")
        result = IntegrationTestResults(
            test_name=_text("test_name", values.get("test_name"), required=True),
            status=_text("status", values.get("status"), required=True), run_id=run_id,
            test_module=_text("test_module", values.get("test_module")),
            test_class=_text("test_class", values.get("test_class")),
            execution_time_seconds=_measurement("execution_time_seconds", values.get("execution_time_seconds")),
            hardware_id=hardware.hardware_id if hardware else None, model_id=model.model_id if model else None,
            error_message=_text("error_message", values.get("error_message")),
            error_traceback=_text("error_traceback", values.get("error_traceback")),
            metadata=_json_object("metadata", values.get("metadata")),
            created_at=_stored_time("created_at", values.get("created_at")))
        result.test_result_id = identity.stable_id(
            "integration", run_id, result.test_module, result.test_class, result.test_name, result.hardware_id,
            result.model_id, *(() if explicit else (self.unique(),)))
        return [m for m in (model, hardware) if m is not None] + records + [result]

    def build(self, values: dict) -> list:
        if not isinstance(values, dict):
            raise DataConversionError(f"a result must be a dict, not {type(values).__name__}",
                                      "pass a list of dicts with the store_* field names")
        kind = values.get("result_type") or "performance"
        if kind not in RESULT_TYPES:
            raise DataConversionError(f"result_type {kind!r} is not one of {', '.join(RESULT_TYPES)}",
                                      "leave it out for performance results")
        return getattr(self, kind)(values)


def _dimension_key(record) -> tuple:
    """What a models/hardware_platforms record says (not when it was written): equal keys, equal writes."""
    metadata = repr(record.metadata) if record.metadata is not None else None
    if record.TABLE == "models":
        return ("models", record.model_id, record.model_name, record.model_family, record.modality,
                record.parameters_million, record.source, record.version, metadata)
    return ("hardware_platforms", record.hardware_id, record.hardware_type, record.device_name, record.platform,
            record.platform_version, record.driver_version, record.memory_gb, record.compute_units, metadata)


_RUN_COLUMNS = tuple(f.name for f in dataclasses.fields(TestRuns) if f.name != "run_id")


def _keep_stored_run(conn, run: TestRuns) -> None:
    """An existing run keeps what it records: a store that names it (`run_id`) fills only the fields its row
    lacks (`run._given` names those the store set). Overwriting them let any result rewrite the commit, branch
    and start time of every result already in that run (an ingested run, or the server's shared one)."""
    row = conn.execute(f"SELECT {', '.join(_RUN_COLUMNS)} FROM test_runs WHERE run_id = ?", [run.run_id]).fetchone()
    if row is None:
        return
    import json

    differing = []
    for name, value in zip(_RUN_COLUMNS, row):
        if value is None:
            continue  # the store's value, if it gave one, fills it
        if name in ("environment", "metadata") and isinstance(value, str):
            with contextlib.suppress(ValueError):
                value = json.loads(value)
        if name in run._given and getattr(run, name) != value:
            differing.append(name)
        setattr(run, name, value)
    if differing:
        log.warning("run %d keeps its stored %s; the values this store gave differ and were not written",
                    run.run_id, ", ".join(differing))


_RUN_TEST_TYPES = {"performance_results": "performance", "hardware_compatibility": "compatibility",
                   "integration_test_results": "integration"}


def _missing_runs(conn, records: list, known: set) -> tuple[list, set]:
    """Runs that the facts of a write name by a bare run_id but no row of test_runs holds: a minimal run each,
    as a store that says something about a new run makes one, so no stored result is an orphan the integrity
    check reports. Also the run ids that are stored once the write commits. `known` holds the run ids this
    open has seen stored."""
    named: dict[int, str] = {}
    written = set()
    for record in records:
        table = record.cls.TABLE if type(record) is RecordColumns else record.TABLE
        if table == "test_runs":
            written.add(record.run_id)
        elif table in _RUN_TEST_TYPES:
            run_ids = record.columns.get("run_id", ()) if type(record) is RecordColumns else (record.run_id,)
            for run_id in set(run_ids):
                if run_id is not None and run_id not in known and run_id not in written:
                    named.setdefault(run_id, _RUN_TEST_TYPES[table])
    if not named:
        return [], written
    stored = {row[0] for row in conn.execute("SELECT run_id FROM test_runs WHERE run_id IN (SELECT unnest(?))",
                                             [list(named)]).fetchall()}
    return [TestRuns(test_name=SESSION_TEST_NAME, test_type=kind, run_id=run_id)
            for run_id, kind in named.items() if run_id not in stored], written | set(named)


def _with_archive(conn, sql: str) -> str:
    """A read query of this module, made to include rows that --archive-data moved to Parquet."""
    from benchmark_db.maintenance import archive

    return archive.read_with_archive(conn, sql)


def _read(conn, sql: str, params: list, db: str):
    """Run one of this module's read queries with the archived rows; an archived file that is gone is DB004
    naming it (DuckDB said only "No files found that match the pattern")."""
    import duckdb

    try:
        return conn.execute(_with_archive(conn, sql), params)
    except duckdb.IOException as exc:
        from benchmark_db.maintenance import archive

        error = archive.missing_archive_error(conn, db)
        if error is None:
            raise
        raise error from exc


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


# -- reads ----------------------------------------------------------------------------------------------

PERFORMANCE_COLUMNS = (
    "pr.result_id", "pr.run_id", "pr.model_id", "pr.hardware_id", "COALESCE(pr.model_name, m.model_name) AS model_name",
    "m.model_family", "COALESCE(pr.hardware_type, hp.hardware_type) AS hardware_type", "hp.device_name",
    "pr.test_case", "pr.batch_size", "pr.sequence_length", "pr.precision",
    "pr.throughput_items_per_second AS throughput", "pr.average_latency_ms AS latency_avg",
    "pr.latency_p50_ms AS latency_p50", "pr.latency_p90_ms AS latency_p90", "pr.latency_p95_ms AS latency_p95",
    "pr.latency_p99_ms AS latency_p99", "pr.latency_stddev_ms AS latency_stddev",
    "pr.memory_peak_mb AS memory_peak", "pr.total_time_seconds", "pr.iterations", "pr.warmup_iterations",
    "pr.is_simulated", "pr.is_emulated", "pr.metrics", "pr.created_at", "tr.test_name", "tr.git_commit",
    "tr.git_branch",
    # the stored column names too, so the guide's and the schema's spellings both work on the frame
    "pr.throughput_items_per_second", "pr.average_latency_ms", "pr.memory_peak_mb")


def _page(limit, offset) -> tuple[int, int]:
    limit = DEFAULT_PAGE if limit is None else _int("limit", limit, 0, MAX_PAGE)
    offset = 0 if offset is None else _int("offset", offset, 0, 2**62)
    return limit, offset


def _limit_sql(limit: int, offset: int, peek: bool) -> str:
    """The LIMIT/OFFSET of a page. `peek` fetches one row more than `limit` (when it is not 0): the REST
    server tells from it whether another page follows, without a second (count) query."""
    return f"LIMIT {limit + 1 if peek and limit else limit} OFFSET {offset}"


class _Where:
    def __init__(self):
        self.clauses: list[str] = []
        self.params: list = []

    def add(self, clause: str, value) -> None:
        if value is not None:
            self.clauses.append(clause)
            self.params.append(value)

    def sql(self) -> str:
        return (" WHERE " + " AND ".join(self.clauses)) if self.clauses else ""


def performance_query(*, model_name=None, hardware_type=None, device_name=None, batch_size=None,
                      sequence_length=None, precision=None, test_case=None, run_id=None, model_family=None, is_simulated=None,
                      is_emulated=None, since=None, until=None, include_samples=False, limit=None, offset=None,
                      stored_names: bool = True, peek: bool = False):
    """(sql, params) of the performance results matching the filters, newest first. `stored_names` adds the
    schema's column names (throughput_items_per_second, ...) beside the API's (throughput, ...); `peek`: see
    _limit_sql."""
    limit, offset = _page(limit, offset)
    where = _Where()
    where.add("pr.model_name = ?", _text("model_name", model_name))
    where.add("pr.hardware_type = ?", _hardware_kind(_text("hardware_type", hardware_type)))
    where.add("hp.device_name = ?", _text("device_name", device_name))
    where.add("pr.batch_size = ?", _int("batch_size", batch_size))
    where.add("pr.sequence_length = ?", _int("sequence_length", sequence_length))
    where.add("pr.precision = ?", _text("precision", precision))
    where.add("pr.test_case = ?", _text("test_case", test_case))
    where.add("pr.run_id = ?", _int("run_id", run_id, 0, 2**63 - 1))
    where.add("m.model_family = ?", _text("model_family", model_family))
    where.add("pr.is_simulated = ?", _bool("is_simulated", is_simulated))
    where.add("pr.is_emulated = ?", _bool("is_emulated", is_emulated))
    where.add("pr.created_at >= ?", _timestamp("since", since))
    where.add("pr.created_at < ?", _timestamp("until", until))
    columns = list(PERFORMANCE_COLUMNS if stored_names else PERFORMANCE_COLUMNS[:-3])
    columns += ["pr.latency_samples_ms AS latency_samples"] if include_samples else []
    sql = (f"SELECT {', '.join(columns)} FROM performance_results pr "
           f"{schema.dimension_joins('pr')} "
           "LEFT JOIN test_runs tr ON tr.run_id = pr.run_id"
           f"{where.sql()} ORDER BY pr.created_at DESC NULLS LAST, pr.result_id {_limit_sql(limit, offset, peek)}")
    return sql, where.params


def compatibility_query(*, model_name=None, hardware_type=None, device_name=None, is_compatible=None,
                        run_id=None, is_simulated=None, since=None, until=None, limit=None, offset=None,
                        peek: bool = False):
    limit, offset = _page(limit, offset)
    where = _Where()
    where.add("m.model_name = ?", _text("model_name", model_name))
    where.add("hp.hardware_type = ?", normalize_hardware_type(_text("hardware_type", hardware_type)))
    where.add("hp.device_name = ?", _text("device_name", device_name))
    where.add("hc.is_compatible = ?", _bool("is_compatible", is_compatible))
    where.add("hc.run_id = ?", _int("run_id", run_id, 0, 2**63 - 1))
    where.add("hc.is_simulated = ?", _bool("is_simulated", is_simulated))
    where.add("hc.created_at >= ?", _timestamp("since", since))
    where.add("hc.created_at < ?", _timestamp("until", until))
    sql = ("SELECT hc.compatibility_id, hc.run_id, hc.model_id, hc.hardware_id, m.model_name, hp.hardware_type, "
           "hp.device_name, hc.is_compatible, hc.detection_success, hc.initialization_success, hc.error_message, "
           "hc.error_type, hc.suggested_fix, hc.workaround_available, hc.compatibility_score, hc.is_simulated, "
           "hc.metadata, hc.created_at FROM hardware_compatibility hc "
           f"{schema.dimension_joins('hc')}"
           f"{where.sql()} ORDER BY hc.created_at DESC NULLS LAST, hc.compatibility_id "
           f"{_limit_sql(limit, offset, peek)}")
    return sql, where.params


def integration_query(*, test_name=None, test_module=None, status=None, hardware_type=None, model_name=None,
                      run_id=None, since=None, until=None, limit=None, offset=None, peek: bool = False):
    limit, offset = _page(limit, offset)
    where = _Where()
    where.add("it.test_name = ?", _text("test_name", test_name))
    where.add("it.test_module = ?", _text("test_module", test_module))
    where.add("lower(it.status) = lower(?)", _text("status", status))
    where.add("hp.hardware_type = ?", normalize_hardware_type(_text("hardware_type", hardware_type)))
    where.add("m.model_name = ?", _text("model_name", model_name))
    where.add("it.run_id = ?", _int("run_id", run_id, 0, 2**63 - 1))
    where.add("it.created_at >= ?", _timestamp("since", since))
    where.add("it.created_at < ?", _timestamp("until", until))
    sql = ("SELECT it.test_result_id, it.run_id, it.test_module, it.test_class, it.test_name, it.status, "
           "it.execution_time_seconds, it.hardware_id, hp.hardware_type, hp.device_name, it.model_id, m.model_name, "
           "it.error_message, it.error_traceback, it.metadata, it.created_at FROM integration_test_results it "
           f"{schema.dimension_joins('it')}"
           f"{where.sql()} ORDER BY it.created_at DESC NULLS LAST, it.test_result_id "
           f"{_limit_sql(limit, offset, peek)}")
    return sql, where.params


def hardware_query(*, hardware_type=None, device_name=None, limit=None, offset=None, peek: bool = False):
    limit, offset = _page(limit, offset)
    where = _Where()
    where.add("hp.hardware_type = ?", normalize_hardware_type(_text("hardware_type", hardware_type)))
    where.add("hp.device_name = ?", _text("device_name", device_name))
    sql = ("SELECT hp.hardware_id, hp.hardware_type, hp.device_name, hp.platform, hp.platform_version, "
           "hp.driver_version, hp.memory_gb, hp.compute_units, hp.created_at, "
           "(SELECT count(*) FROM performance_results pr WHERE pr.hardware_id = hp.hardware_id) AS performance_results "
           f"FROM hardware_platforms hp{where.sql()} ORDER BY hp.hardware_type, hp.device_name NULLS FIRST, "
           f"hp.hardware_id {_limit_sql(limit, offset, peek)}")
    return sql, where.params


def model_query(*, model_name=None, model_family=None, modality=None, limit=None, offset=None,
                peek: bool = False):
    limit, offset = _page(limit, offset)
    where = _Where()
    where.add("m.model_name = ?", _text("model_name", model_name))
    where.add("m.model_family = ?", _text("model_family", model_family))
    where.add("m.modality = ?", _text("modality", modality))
    sql = ("SELECT m.model_id, m.model_name, m.model_family, m.modality, m.parameters_million, m.source, "
           "m.version, m.created_at, "
           "(SELECT count(*) FROM performance_results pr WHERE pr.model_id = m.model_id) AS performance_results "
           f"FROM models m{where.sql()} ORDER BY m.model_name, m.model_id "
           f"{_limit_sql(limit, offset, peek)}")
    return sql, where.params


# keyword arguments of the query functions that are not filters (the REST server's)
_NOT_FILTERS = frozenset({"stored_names", "peek"})


@functools.cache
def _filter_names(query) -> tuple[str, ...]:
    import inspect

    return tuple(name for name in inspect.signature(query).parameters if name not in _NOT_FILTERS)


def _filtered(method: str, query, filters: dict) -> tuple[str, list]:
    """query(**filters), or DB000 naming the filters `method` does not know and the ones it does."""
    known = _filter_names(query)
    unknown = [name for name in filters if name not in known]
    if unknown:
        raise UsageError(f"{method}() has no filter {', '.join(map(repr, unknown))}",
                         f"valid filters: {', '.join(known)}")
    return query(**filters)


# -- the API --------------------------------------------------------------------------------------------


class BenchmarkDBAPI:
    """Store and read benchmark results in one database file (see the module docstring)."""

    def __init__(self, db_path: str | None = None, *, lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
                 idle_release: float = DEFAULT_IDLE_RELEASE_S, max_hold: float = DEFAULT_MAX_HOLD_S,
                 query_max_rows: int | None = None, query_timeout_s: float | None = None):
        from benchmark_db import readonly_sql

        # None is the default; 0 is refused rather than read as "the default" (or as "no limit")
        self.query_max_rows = (readonly_sql.DEFAULT_MAX_ROWS if query_max_rows is None
                               else readonly_sql.check_max_rows(query_max_rows, "query_max_rows"))
        self.query_timeout_s = (readonly_sql.DEFAULT_TIMEOUT_S if query_timeout_s is None
                                else readonly_sql.check_timeout(query_timeout_s, "query_timeout_s"))
        self.db = SharedConnection(db_path, lock_timeout=lock_timeout, idle_release=idle_release, max_hold=max_hold)
        self.db_path = self.db.path
        self.lock_timeout = lock_timeout
        self.records = RecordBuilder()
        self._orm = None
        self._orm_generation = -1
        self._known_dimensions: set = set()
        self._known_runs: set = set()  # run ids seen stored on this open (see _missing_runs)
        self._threads = 1

    # -- lifecycle -----------------------------------------------------------------------------------
    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> BenchmarkDBAPI:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- writes --------------------------------------------------------------------------------------
    def write_records(self, records: list, *, started: float | None = None) -> list[int]:
        """Write ORM records (and RecordColumns batches) in one transaction through BenchmarkDB.insert_many;
        their ids in order, one per row of a batch. `started` (time.monotonic()) is when the caller began to
        wait, from which the lock timeout counts (default: now)."""
        with self.db.connection(started) as conn:
            self._orm_for(conn)
            for record in records:
                if type(record) is TestRuns and getattr(record, "_given", None) is not None:
                    _keep_stored_run(conn, record)
            # models and hardware rows this process wrote on this open need no second write
            todo, new = [], []
            for record in records:
                if record.TABLE in ("models", "hardware_platforms") and type(record) is not RecordColumns:
                    key = _dimension_key(record)
                    if key in self._known_dimensions:
                        continue
                    new.append(key)
                todo.append(record)
            runs, runs_stored = _missing_runs(conn, records, self._known_runs)
            todo.extend(runs)
            one_thread = self._threads > 1 and record_count(todo) >= ONE_THREAD_ROWS
            try:
                if one_thread:
                    conn.execute("SET threads = 1")
                try:
                    self._orm.insert_many(todo)
                finally:
                    if one_thread:
                        with contextlib.suppress(Exception):  # the write's own error, if any, is what matters
                            conn.execute(f"SET threads = {int(self._threads)}")
            except Exception as exc:
                import duckdb

                if isinstance(exc, duckdb.FatalException) or "invalidated" in str(exc):
                    self._orm = None
                    self.db.discard()  # a connection DuckDB gave up on is not reused: the next write reopens
                raise
            if len(self._known_dimensions) > 100_000:
                self._known_dimensions.clear()
            if len(self._known_runs) > 100_000:
                self._known_runs.clear()
            self._known_runs.update(runs_stored)
            self._known_dimensions.update(new)
        ids: list[int] = []
        for record in records:
            if type(record) is RecordColumns:
                ids.extend(record.ids)
            else:
                ids.append(getattr(record, record.ID))
                if record.TABLE == "test_runs" and record.run_id == self.records.session_run_id:
                    self.records.mark_session_written()
        return ids

    def _orm_for(self, conn) -> BenchmarkDB:
        if self._orm_generation != self.db.generation or self._orm is None:
            # a new open: the file may have changed meanwhile, so forget what was known about it
            self._orm = BenchmarkDB(conn=conn)
            self._orm_generation = self.db.generation
            self._known_dimensions.clear()
            self._known_runs.clear()
            self._threads = conn.execute("SELECT current_setting('threads')").fetchone()[0]
        return self._orm

    @contextlib.contextmanager
    def transaction(self, started: float | None = None):
        """The connection inside one transaction: the `write_records` calls and the caller's own statements in
        the block commit together or not at all (the REST server stores an idempotency key with its rows)."""
        with self.db.connection(started) as conn:
            try:
                with self._orm_for(conn).transaction():
                    yield conn
            except BaseException:
                # what the block's writes noted as stored was rolled back with them
                self._known_dimensions.clear()
                self._known_runs.clear()
                self.records.forget_session_written()
                raise

    def store_performance_result(self, model_name: str, hardware_type: str, device_name: str | None = None,
                                 batch_size: int | None = None, precision: str | None = None,
                                 throughput: float | None = None, latency_avg: float | None = None,
                                 memory_peak: float | None = None, **fields: Any) -> int:
        """Store one performance result; return its result_id.

        Units: throughput items/s, latencies ms, memory MB. Optional fields: test_case, sequence_length,
        latency_p50/p90/p95/p99, latency_stddev, total_time_seconds, iterations, warmup_iterations,
        latency_samples (raw ms; fills the statistics not given), metrics (dict), is_simulated, is_emulated
        (measured on an emulated device, e.g. a software WebGPU adapter; metrics {"is_emulated": True} also
        sets it), model_family, created_at, and the run fields run_id, test_name, test_type, started_at,
        completed_at, git_commit, git_branch, command_line, environment (dict), run_metadata (dict).
        """
        values = dict(fields, model_name=model_name, hardware_type=hardware_type, device_name=device_name,
                      batch_size=batch_size, precision=precision, throughput=throughput, latency_avg=latency_avg,
                      memory_peak=memory_peak)
        # as POST /performance builds it: a result that names no run is marked new by construction, so that on
        # a lake it appends without waiting for the writers' lock (see BenchmarkDB.insert_many)
        records, position = self.build_performance(values)
        return self.write_records(records)[position]

    def store_compatibility_result(self, hardware_type: str, model_name: str | None = None,
                                   is_compatible: bool | None = None, **fields: Any) -> int:
        """Store whether a model works on a hardware platform (with the reason if not); return its id."""
        values = dict(fields, hardware_type=hardware_type, model_name=model_name, is_compatible=is_compatible)
        return self.write_records(self.records.compatibility(values))[-1]

    def store_integration_result(self, test_name: str, status: str, **fields: Any) -> int:
        """Store one integration test outcome (test_module, test_class, execution_time_seconds, ...)."""
        values = dict(fields, test_name=test_name, status=status)
        return self.write_records(self.records.integration(values))[-1]

    def build_records(self, results) -> tuple[list, list[int]]:
        """ORM records of many results (dicts) and the position of each result's own id among the ids that
        `write_records` returns for them. Performance results go into one RecordColumns batch (at the end)."""
        if isinstance(results, dict) or not hasattr(results, "__iter__"):
            raise DataConversionError("store_many takes a list of dicts", "wrap a single result in a list")
        return self._build(results, number=True)

    def build_performance(self, values: dict) -> tuple[list, int]:
        """build_records of one performance result (errors not numbered): its records and its id's position."""
        records, positions = self._build([values], number=False)
        return records, positions[0]

    def _build(self, results, number: bool) -> tuple[list, list[int]]:
        with self.records.one_call():  # results of one call that describe the same run share it
            return self._build_call(results, number)

    def _build_call(self, results, number: bool) -> tuple[list, list[int]]:
        records: list = []
        positions: list[int] = []
        rows: list = []  # performance results in order: a row of PERFORMANCE_COLUMNS_ORDER, or None if plain
        new: list[bool] = []  # whether each row's id is new by construction
        plain: list[dict] = []  # the results with only _ROW_FIELDS, built together by performance_columns
        plain_numbers: list[int] = []
        session_included = False
        dimensions: set = set()
        builder = self.records

        def add(built) -> None:
            nonlocal session_included
            for record in built:
                if record.TABLE == "test_runs" and record.run_id == builder.session_run_id:
                    if session_included:
                        continue
                    session_included = True
                elif record.TABLE in ("models", "hardware_platforms"):
                    key = _dimension_key(record)
                    if key in dimensions:
                        continue
                    dimensions.add(key)
                records.append(record)

        results = list(results)
        if results and _all_plain(results):  # the usual batch: no result needs looking at on its own
            columns, built = builder.performance_columns(results, range(len(results)) if number else None)
            add(built)
            records.append(RecordColumns(PerformanceResults, columns, new=[True] * len(results), checked=True))
            return records, list(range(len(records) - 1, len(records) - 1 + len(results)))
        for index, values in enumerate(results):
            own = None
            built = ()
            try:
                if type(values) is dict and values.get("result_type") in (None, "performance"):
                    if values.keys() <= _ROW_FIELDS:
                        plain.append(values)
                        plain_numbers.append(index)
                        rows.append(None)
                        new.append(True)
                    else:
                        built, fresh = builder.performance_records(values)
                        rows.append(_performance_row_of(built.pop()))
                        new.append(fresh)
                else:
                    built = builder.build(values)
                    own = built.pop()
            except DataConversionError as exc:
                if plain:  # an error of an earlier result comes first
                    builder.performance_columns(plain, plain_numbers if number else None)
                if not number:
                    raise
                raise _numbered(index, exc) from exc
            add(built)
            if own is None:
                positions.append(-len(rows))  # the len(rows)-th row of the batch, placed below
            else:
                records.append(own)
                positions.append(len(records) - 1)
        if rows:
            columns = {}
            if plain:
                columns, built = builder.performance_columns(plain, plain_numbers if number else None)
                add(built)
            if len(plain) < len(rows):  # results of other shapes among them: their rows go in their places
                plain_rows = zip(*columns.values())
                merged = [next(plain_rows) if row is None else row for row in rows]
                columns = dict(zip(PERFORMANCE_COLUMNS_ORDER, map(list, zip(*merged))))
            base = len(records)
            records.append(RecordColumns(PerformanceResults, columns, new=new, checked=True))
            positions = [p if p >= 0 else base - p - 1 for p in positions]
        return records, positions

    def store_many(self, results) -> list[int]:
        """Store a list of results (dicts with the store_* field names; `result_type` picks compatibility or
        integration, default performance) in one transaction: all or nothing. Returns the result ids."""
        records, positions = self.build_records(results)
        if not records:
            return []
        ids = self.write_records(records)
        return [ids[p] for p in positions]

    # -- reads ---------------------------------------------------------------------------------------
    def _frame(self, sql: str, params: list):
        if not self.db.exists():
            raise DBConnectionError(f"database {self.db_path} does not exist",
                                    "store a result first, or pass db_path of an existing database")
        with self.db.connection(read_only=True) as conn:
            return _read(conn, sql, params, self.db_path).df()

    def rows(self, sql: str, params: list) -> tuple[list[str], list[tuple]]:
        """Column names and rows of one of this module's read queries (the REST server's path)."""
        if not self.db.exists():
            raise DBConnectionError(f"database {self.db_path} does not exist",
                                    "store a result first, or start the server with --db of an existing file")
        with self.db.connection(read_only=True) as conn:
            result = _read(conn, sql, params, self.db_path)
            return [d[0] for d in result.description], result.fetchall()

    def get_performance_metrics(self, model_name: str | None = None, hardware_type: str | None = None,
                                **filters: Any):
        """Performance results as a DataFrame, newest first. Filters: device_name, batch_size, sequence_length,
        precision, test_case, run_id, model_family, is_simulated, is_emulated, since, until, include_samples, limit
        (default 1000, at most 10000), offset."""
        return self._frame(*_filtered("get_performance_metrics", performance_query,
                                      dict(filters, model_name=model_name, hardware_type=hardware_type)))

    def get_compatibility_results(self, model_name: str | None = None, hardware_type: str | None = None,
                                  **filters: Any):
        return self._frame(*_filtered("get_compatibility_results", compatibility_query,
                                      dict(filters, model_name=model_name, hardware_type=hardware_type)))

    def get_integration_results(self, test_name: str | None = None, status: str | None = None, **filters: Any):
        return self._frame(*_filtered("get_integration_results", integration_query,
                                      dict(filters, test_name=test_name, status=status)))

    def get_hardware_list(self, hardware_type: str | None = None, **filters: Any):
        return self._frame(*_filtered("get_hardware_list", hardware_query,
                                      dict(filters, hardware_type=hardware_type)))

    def get_model_list(self, model_family: str | None = None, **filters: Any):
        return self._frame(*_filtered("get_model_list", model_query, dict(filters, model_family=model_family)))

    def query(self, sql: str, params=None, *, max_rows: int | None = None, timeout_s: float | None = None):
        """Run one read-only SELECT (parameters bound) and return a DataFrame. See benchmark_db.readonly_sql."""
        return self.run_query(sql, params, max_rows=max_rows, timeout_s=timeout_s, as_dataframe=True)

    def run_query(self, sql: str, params=None, *, max_rows: int | None = None, timeout_s: float | None = None,
                  as_dataframe: bool = False):
        from benchmark_db import readonly_sql

        max_rows = self.query_max_rows if max_rows is None else readonly_sql.check_max_rows(max_rows)
        timeout_s = self.query_timeout_s if timeout_s is None else readonly_sql.check_timeout(timeout_s)
        readonly_sql.check_readonly_sql(sql)
        readonly_sql.check_params(params)
        if self.db_path == MEMORY:  # a private in-memory database: statement checks and bounds only
            with self.db.connection() as conn:
                return readonly_sql.execute_readonly(conn, sql, params, max_rows=max_rows, timeout_s=timeout_s,
                                                     as_dataframe=as_dataframe)
        if not self.db.exists():
            raise DBConnectionError(f"database {self.db_path} does not exist",
                                    "store a result first, or pass db_path of an existing database")
        # the file is opened read-only with external access off; this process's writer steps aside meanwhile
        started = time.monotonic()
        with self.db.closed():
            while True:
                try:
                    return readonly_sql.run_readonly_query(self.db_path, sql, params, max_rows=max_rows,
                                                           timeout_s=timeout_s,
                                                           lock_timeout=self.db.remaining_wait(started),
                                                           as_dataframe=as_dataframe)
                except DBConnectionError as exc:
                    # another object of this process (a second BenchmarkDBAPI, an ORM) has the file open in
                    # another mode: wait for it to let go (an API object does when idle), as for a lock
                    if not _other_mode(exc):
                        raise locked_error(exc, started) from exc
                    if not self.db.remaining_wait(started):
                        raise DatabaseLockedError(
                            f"{self.db_path} is held open by another BenchmarkDBAPI or BenchmarkDB object of "
                            "this process", "close that object first (close() or a with block), or run the "
                            "query through it") from exc
                    time.sleep(0.05)

    def ensure_database(self) -> None:
        """Create a missing database file with the current schema (and migrate an older one), as the first
        write would: what starting the server does before it listens, so that it fails fast (DB001/DB002)."""
        with self.db.connection():
            pass

    def health(self) -> dict:
        """Whether the database answers, its schema version and row counts of the main tables.

        A check, never a write: a missing database is DB001 (DBConnectionError), not a new empty file that
        would then answer "ok" for a path the caller mistyped. `ensure_database()` creates one on purpose."""
        if not self.db.exists():
            raise DBConnectionError(f"database {self.db_path} does not exist",
                                    "check the path, or create it: store a result, run "
                                    f"scripts/create_benchmark_schema.py --output {self.db_path}, or call "
                                    "ensure_database()")
        with self.db.connection(read_only=True) as conn:
            version = schema.current_version(conn)
            # archived rows included, as every read of the API has them (an archived database said 0 rows)
            counts = {t: conn.execute(_with_archive(conn, f"SELECT count(*) FROM {t}")).fetchone()[0]
                      for t in ("performance_results", "hardware_compatibility", "integration_test_results")}
        return {"status": "ok", "database": self.db_path, "schema_version": version, "rows": counts}


# -- command line ---------------------------------------------------------------------------------------


def is_loopback(host: str) -> bool:
    if host.strip("[]").lower() in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_listen(host: str, token: str | None) -> None:
    """Refuse to listen beyond loopback unless writes are protected by a token."""
    if not is_loopback(host) and not token:
        raise UsageError(f"refusing to listen on {host} without ${TOKEN_ENV}: anyone who can reach it could write",
                         f"set {TOKEN_ENV} to a secret (clients send 'Authorization: Bearer <token>'), "
                         "or listen on 127.0.0.1")


def build_parser():
    import argparse

    from benchmark_db.cli import add_common_options, add_db_option, non_negative_float, positive_float, positive_int

    parser = argparse.ArgumentParser(
        prog="benchmark_db_api.py",
        description="Python API of the benchmark database; --serve runs it as a REST server (FastAPI, uvicorn).",
        epilog=f"Writes need 'Authorization: Bearer ${TOKEN_ENV}' when that variable is set; without it the "
               "server listens on loopback only. Docs at http://HOST:PORT/docs.")
    add_db_option(parser)
    parser.add_argument("--serve", action="store_true", help="run the REST server")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default: %(default)s)")
    parser.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN",
                        help="allow browser requests from ORIGIN (repeatable; CORS is off without it)")
    parser.add_argument("--query-max-rows", type=positive_int, default=None, metavar="N",
                        help="most rows POST /query returns (default: 10000)")
    parser.add_argument("--query-timeout", type=positive_float, default=None, metavar="SECONDS",
                        help="time limit of one POST /query (default: 10)")
    parser.add_argument("--idle-release", type=non_negative_float, default=DEFAULT_IDLE_RELEASE_S, metavar="SECONDS",
                        help="close the database file after this long without requests (default: %(default)s)")
    parser.add_argument("--max-hold", type=non_negative_float, default=DEFAULT_MAX_HOLD_S, metavar="SECONDS",
                        help="under sustained load, hand the file to waiting CLI tools for "
                             f"{HANDOVER_S:g} s after this long (0: never; default: %(default)s)")
    parser.add_argument("--log-level", default="warning", choices=("critical", "error", "warning", "info", "debug"),
                        help="uvicorn's log level (default: %(default)s)")
    add_common_options(parser)
    return parser


def _check_port_free(host: str, port: int) -> None:
    """DB000 for a port another program listens on, before the database is touched (uvicorn would log its
    own message and exit 3, the code of an unavailable database). Bound as uvicorn binds, SO_REUSEADDR set."""
    import socket

    address = host.strip("[]")
    with socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((address, port))
        except OSError as exc:
            raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}",
                             "pass another --port, or stop the program that holds it") from exc


def serve(db: str | None, host: str = "127.0.0.1", port: int = 8000, *, cors_origins=(), lock_timeout: float =
          DEFAULT_LOCK_TIMEOUT, idle_release: float = DEFAULT_IDLE_RELEASE_S, max_hold: float = DEFAULT_MAX_HOLD_S,
          query_max_rows: int | None = None,
          query_timeout_s: float | None = None, log_level: str = "warning") -> int:
    token = os.environ.get(TOKEN_ENV) or None
    check_listen(host, token)
    if not 0 < port < 65536:
        raise UsageError(f"port {port} is not between 1 and 65535", "pass --port N")
    _check_port_free(host, port)
    import uvicorn

    from benchmark_db.lake import redact
    from benchmark_db_server import ServerSettings, create_app

    settings = ServerSettings(db_path=resolve_db_path(db), token=token, cors_origins=list(cors_origins),
                              lock_timeout=lock_timeout, idle_release=idle_release, max_hold=max_hold,
                              query_max_rows=query_max_rows, query_timeout_s=query_timeout_s)
    app = create_app(settings)
    try:
        app.state.api.ensure_database()  # creates a missing database and fails fast (DB001/DB002) before listening
    except DatabaseUnwritableError:
        if not app.state.api.db.exists():
            raise
        # a read-only file (a mount, a published copy) is served for reading: the GET endpoints and /query
        # answer, a write answers 503 saying the file is read-only here
        print(f"{redact(str(settings.db_path))} is read-only here: serving it for reading only", file=sys.stderr)
    app.state.api.health()
    app.state.api.close()
    print(f"serving {redact(str(settings.db_path))} on http://{host}:{port} (docs at /docs)", file=sys.stderr)
    uvicorn.run(app, host=host.strip("[]"), port=port, log_level=log_level, access_log=False)
    return 0


def main(argv: list[str] | None = None) -> int:
    from benchmark_db.cli import run_cli

    def run(args) -> int:
        if not args.serve:  # a reader: a missing database is DB001, as for the other readers
            api = BenchmarkDBAPI(args.db, lock_timeout=args.lock_timeout)
            if not api.db.exists():
                raise DBConnectionError(f"database {api.db_path} does not exist",
                                        f"create it with: python scripts/create_benchmark_schema.py --output "
                                        f"{api.db_path} (or start the server with --serve, which creates it)")
            import json

            print(json.dumps(api.health(), indent=2))
            api.close()
            return 0
        return serve(args.db, args.host, args.port, cors_origins=args.cors_origin, lock_timeout=args.lock_timeout,
                     idle_release=args.idle_release, max_hold=args.max_hold, query_max_rows=args.query_max_rows,
                     query_timeout_s=args.query_timeout, log_level=args.log_level)

    return run_cli(build_parser(), run, argv)


if __name__ == "__main__":
    raise SystemExit(main())

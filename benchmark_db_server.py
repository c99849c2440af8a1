"""The REST server of the benchmark database: a FastAPI app over `BenchmarkDBAPI`.

    python benchmark_db_api.py --serve [--host 127.0.0.1] [--port 8000] [--db PATH]

Endpoints: GET / and /health; POST|GET /performance, /compatibility, /integration; POST /performance/batch;
POST /query (one read-only SELECT, see benchmark_db.readonly_sql); GET /hardware and /models. OpenAPI at
/docs and /openapi.json. Request bodies use the Python API's field names; request and response models are
separate; every failure (404, 405, 422 included) answers {"error": {"code", "message", "details"}}; bad input
is always a 4xx.

Writes need `Authorization: Bearer $BENCHMARK_DB_API_TOKEN` when that variable is set. All writes go through
one writer thread that commits whatever requests are waiting in one transaction (group commit), so many
clients writing at once lose nothing and share the cost of a commit; a request answers 201 only after its
commit. A write sent with an `Idempotency-Key` header is stored once: its key, body hash and answer are
written in the same transaction as its rows, and a resend within 24 h gets that answer again (see
WriteQueue._write_keyed). The write endpoints are async and await that commit on the event loop (no worker thread per
waiting request); POST /performance/batch validates its raw body in one pass of pydantic's JSON parser and
hands the rows to the ORM as columns (benchmark_db_models.RecordColumns). The database file is held only
while busy (benchmark_db_api.SharedConnection), so the CLI tools work on it while the server runs.

This module imports FastAPI at import time; nothing in the core package imports it.
"""
import asyncio
import base64
import collections
import concurrent.futures
import datetime as dt
import decimal
import hashlib
import json
import logging
import math
import queue
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any, NotRequired, Required

import duckdb
import orjson
from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi_offline import FastAPIOffline
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    StringConstraints,
    TypeAdapter,
    ValidationError,
)
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from typing_extensions import TypedDict  # pydantic needs this one on Python < 3.12

import benchmark_db_api as api_module
from benchmark_db.errors import (
    ArchiveMissingError,
    BenchmarkDBError,
    DatabaseLockedError,
    DataConversionError,
    DBConnectionError,
    SchemaError,
)
from benchmark_db.output import decimal_text
from benchmark_db.readonly_sql import MAX_SQL_CHARS, QueryRefused
from benchmark_db_api import BenchmarkDBAPI
from benchmark_db_models import json_too_big, record_count, utc_now

log = logging.getLogger("benchmark_db.server")
API_VERSION = "1.0.0"
MAX_BODY_BYTES = 64 * 1024 * 1024
MAX_BATCH = 100_000
INT32 = 2**31 - 1
INT63 = 2**63 - 1
IDEMPOTENCY_TTL_S = 24 * 3600  # how long a write's Idempotency-Key is remembered (Stripe keeps keys for 24 h)


@dataclass
class ServerSettings:
    db_path: str | None = None
    token: str | None = None
    cors_origins: list[str] = field(default_factory=list)
    lock_timeout: float = 30.0
    idle_release: float = api_module.DEFAULT_IDLE_RELEASE_S
    max_hold: float = api_module.DEFAULT_MAX_HOLD_S
    query_max_rows: int | None = None
    query_timeout_s: float | None = None
    idempotency_ttl_s: float = IDEMPOTENCY_TTL_S


# -- request models (the Python API's field names) ------------------------------------------------------

def _clean_text(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    if not value.isascii():  # ASCII is valid UTF-8: only other text needs the (copying) check
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError("must be valid Unicode text") from exc
    return value


def _clean_name(value: str) -> str:
    value = _clean_text(value)
    if not value.strip():
        raise ValueError("must not be empty")
    return value


def _json_object(value: dict | None) -> dict | None:
    if value is not None:
        try:  # one serialisation for all three checks: NaN, Unicode and size
            text = json.dumps(value, allow_nan=False, ensure_ascii=False, separators=(",", ":"))
        except ValueError as exc:
            raise ValueError("must not hold NaN or Infinity") from exc
        try:
            size = len(text.encode("utf-8"))
        except UnicodeEncodeError as exc:
            raise ValueError("must be valid Unicode text") from exc
        if (error := json_too_big("the object", size)) is not None:
            raise ValueError(f"{error.message}; {error.hint}")
        try:  # the database stores it through orjson, which holds whole numbers of 64 bits at most
            orjson.dumps(value)
        except orjson.JSONEncodeError as exc:
            raise ValueError(f"cannot be stored: {exc}; write a whole number beyond 64 bits as a string") from exc
    return value


def _not_bool(value: Any) -> Any:
    # pydantic's lax mode reads true/false as 1/0 for numbers; the Python API refuses them, and so does this
    if isinstance(value, bool):
        raise ValueError("must be a number, not true or false")
    return value


NotBool = BeforeValidator(_not_bool)
Text = Annotated[str, StringConstraints(max_length=10_000), AfterValidator(_clean_text)]
LongText = Annotated[str, StringConstraints(max_length=1_000_000), AfterValidator(_clean_text)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=500), AfterValidator(_clean_name)]
Count = Annotated[int, NotBool, Field(ge=0, le=INT32)]
RunId = Annotated[int, NotBool, Field(ge=1, le=INT63)]


def _whole(name: str) -> Any:
    """A performance result's whole-number field, in the range the Python API allows it (INT_FIELD_RANGES)."""
    low, high = api_module.INT_FIELD_RANGES[name]
    return Annotated[int, NotBool, Field(ge=low, le=high)]


JsonObject = Annotated[dict[str, Any], AfterValidator(_json_object)]
# a duration or measured amount (latency, throughput, memory, time, score): never negative, as the Python
# API (benchmark_db_api._measurement), benchmark_db.validation and the integrity check have it
Measure = Annotated[float, NotBool, Field(ge=0, allow_inf_nan=False)]
# strict: a sample must be a JSON number (true/false and "8" are refused) and is checked without a Python call
# per value, which NotBool would cost on batches of a million samples
Samples = Annotated[list[Annotated[float, Strict(), Field(ge=0, allow_inf_nan=False)]],
                    Field(max_length=1_000_000)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class RunFields(_Body):
    run_id: RunId | None = Field(None, description="an existing run to attach to; results of a named run are "
                                                   "keyed by run and configuration, so a resend replaces")
    test_type: Text | None = None
    started_at: dt.datetime | None = Field(None, description="with test_name, names a run stably (ISO 8601)")
    completed_at: dt.datetime | None = None
    git_commit: Text | None = None
    git_branch: Text | None = None
    command_line: Text | None = None
    environment: JsonObject | None = Field(None, description="versions, CPU, OS, accelerator of the run")
    run_metadata: JsonObject | None = None


class PerformanceIn(RunFields):
    model_name: Name
    hardware_type: Name = Field(..., description="cpu, cuda, rocm, mps, openvino, webnn, webgpu, ...")
    device_name: Text | None = None
    batch_size: _whole("batch_size") | None = None  # type: ignore[valid-type]
    precision: Text | None = None
    throughput: Measure | None = Field(None, description="items per second")
    latency_avg: Measure | None = Field(None, description="mean latency, ms")
    memory_peak: Measure | None = Field(None, description="peak memory, MB")
    test_case: Text | None = None
    sequence_length: _whole("sequence_length") | None = None  # type: ignore[valid-type]
    latency_p50: Measure | None = None
    latency_p90: Measure | None = None
    latency_p95: Measure | None = None
    latency_p99: Measure | None = None
    latency_stddev: Measure | None = None
    total_time_seconds: Measure | None = None
    iterations: _whole("iterations") | None = None  # type: ignore[valid-type]
    warmup_iterations: _whole("warmup_iterations") | None = None  # type: ignore[valid-type]
    latency_samples: Samples | None = Field(None, description="raw latency samples, ms")
    metrics: JsonObject | None = None
    is_simulated: bool = False
    is_emulated: bool = Field(False, description="measured on an emulated device (a software WebGPU adapter): "
                                                 "real timings, of the emulator; metrics.is_emulated true sets it")
    model_family: Text | None = None
    created_at: dt.datetime | None = None
    test_name: Text | None = Field(None, description="name of the run these results belong to")


class CompatibilityIn(RunFields):
    hardware_type: Name
    model_name: Name | None = None
    device_name: Text | None = None
    is_compatible: bool | None = None
    detection_success: bool | None = None
    initialization_success: bool | None = None
    error_message: LongText | None = None
    error_type: Text | None = None
    suggested_fix: LongText | None = None
    workaround_available: bool | None = None
    compatibility_score: Measure | None = None
    is_simulated: bool = False
    metadata: JsonObject | None = None
    model_family: Text | None = None
    created_at: dt.datetime | None = None
    test_name: Text | None = Field(None, description="name of the run these results belong to")


class IntegrationIn(RunFields):
    test_name: Name
    status: Name = Field(..., description="passed, failed, skipped, error, ...")
    test_module: Text | None = None
    test_class: Text | None = None
    execution_time_seconds: Measure | None = None
    hardware_type: Name | None = None
    device_name: Text | None = None
    model_name: Name | None = None
    error_message: LongText | None = None
    error_traceback: LongText | None = None
    metadata: JsonObject | None = None
    model_family: Text | None = None
    created_at: dt.datetime | None = None
    run_name: Text | None = Field(None, description="name of the run this test belongs to")


class PerformanceBatchIn(_Body):
    results: list[PerformanceIn] = Field(..., max_length=MAX_BATCH, description="stored in one transaction")


def _as_typed_dict(model: type[BaseModel]) -> type:
    """A TypedDict with the fields, constraints and config of `model`: pydantic validates JSON into plain
    dicts holding only the keys that were sent (model_fields_set, without building a model per row)."""
    items = {}
    for name, info in model.model_fields.items():
        kind = Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation
        items[name] = Required[kind] if info.is_required() else NotRequired[kind]
    typed = TypedDict(f"{model.__name__}Row", items)
    typed.__pydantic_config__ = model.model_config
    return typed


_PerformanceRow = _as_typed_dict(PerformanceIn)


class _PerformanceBatchRows(TypedDict):
    __pydantic_config__ = PerformanceBatchIn.model_config
    results: Annotated[list[_PerformanceRow], Field(max_length=MAX_BATCH)]


# POST /performance/batch validates the raw body in one call of pydantic's JSON parser (no json.loads, no
# model object per row): same rules and error locations as PerformanceBatchIn, which still documents it.
_BATCH_ROWS = TypeAdapter(_PerformanceBatchRows)


class QueryIn(_Body):
    sql: Annotated[str, StringConstraints(min_length=1, max_length=MAX_SQL_CHARS)] = Field(
        ..., description="one read-only SELECT or WITH ... SELECT statement")
    params: list[Any] | dict[str, Any] | None = Field(
        None, description="values for ? / $1 placeholders (a list) or $name placeholders (an object)")


# -- response models ------------------------------------------------------------------------------------

class ErrorBody(BaseModel):
    code: str
    message: str
    details: Any = None


class ErrorOut(BaseModel):
    error: ErrorBody


class StoredOut(BaseModel):
    id: int = Field(..., description="the stored row's id (result_id, compatibility_id or test_result_id)")
    run_id: int | None = None


class BatchOut(BaseModel):
    stored: int = Field(..., description="rows stored: the results less those in `replaced`")
    result_ids: list[int] = Field(..., description="the id of each result, in the order sent")
    replaced: list[int] = Field(..., description="indexes of results that a later result of this batch replaced "
                                                 "(same run and configuration, so the same result_id)")


class PerformanceOut(BaseModel):
    result_id: int
    run_id: int | None = None
    model_id: int | None = None
    hardware_id: int | None = None
    model_name: str | None = None
    model_family: str | None = None
    hardware_type: str | None = None
    device_name: str | None = None
    test_case: str | None = None
    batch_size: int | None = None
    sequence_length: int | None = None
    precision: str | None = None
    throughput: float | None = None
    latency_avg: float | None = None
    latency_p50: float | None = None
    latency_p90: float | None = None
    latency_p95: float | None = None
    latency_p99: float | None = None
    latency_stddev: float | None = None
    memory_peak: float | None = None
    total_time_seconds: float | None = None
    iterations: int | None = None
    warmup_iterations: int | None = None
    is_simulated: bool | None = None
    is_emulated: bool | None = None
    metrics: Any = None
    created_at: str | None = None
    test_name: str | None = None
    git_commit: str | None = None
    git_branch: str | None = None
    latency_samples: list[float | None] | None = None


class CompatibilityOut(BaseModel):
    compatibility_id: int
    run_id: int | None = None
    model_id: int | None = None
    hardware_id: int | None = None
    model_name: str | None = None
    hardware_type: str | None = None
    device_name: str | None = None
    is_compatible: bool | None = None
    detection_success: bool | None = None
    initialization_success: bool | None = None
    error_message: str | None = None
    error_type: str | None = None
    suggested_fix: str | None = None
    workaround_available: bool | None = None
    compatibility_score: float | None = None
    is_simulated: bool | None = None
    metadata: Any = None
    created_at: str | None = None


class IntegrationOut(BaseModel):
    test_result_id: int
    run_id: int | None = None
    test_module: str | None = None
    test_class: str | None = None
    test_name: str | None = None
    status: str | None = None
    execution_time_seconds: float | None = None
    hardware_id: int | None = None
    hardware_type: str | None = None
    device_name: str | None = None
    model_id: int | None = None
    model_name: str | None = None
    error_message: str | None = None
    error_traceback: str | None = None
    metadata: Any = None
    created_at: str | None = None


class HardwareOut(BaseModel):
    hardware_id: int
    hardware_type: str | None = None
    device_name: str | None = None
    platform: str | None = None
    platform_version: str | None = None
    driver_version: str | None = None
    memory_gb: float | None = None
    compute_units: int | None = None
    created_at: str | None = None
    performance_results: int | None = None


class ModelOut(BaseModel):
    model_id: int
    model_name: str | None = None
    model_family: str | None = None
    modality: str | None = None
    parameters_million: float | None = None
    source: str | None = None
    version: str | None = None
    created_at: str | None = None
    performance_results: int | None = None


class Page(BaseModel):
    limit: int
    offset: int
    count: int = Field(..., description="items on this page")
    next_offset: int | None = Field(None, description="offset of the next page, null on the last one")


class PerformancePage(Page):
    items: list[PerformanceOut]


class CompatibilityPage(Page):
    items: list[CompatibilityOut]


class IntegrationPage(Page):
    items: list[IntegrationOut]


class HardwarePage(Page):
    items: list[HardwareOut]


class ModelPage(Page):
    items: list[ModelOut]


class QueryOut(BaseModel):
    columns: list[str]
    types: list[str]
    rows: list[list[Any]] = Field(description=(
        "one list per row, in the order of `columns`. DECIMAL and HUGEINT values are JSON numbers with all "
        "their digits, as `benchmark_db_query.py --sql --format json` writes them: parse them with a decimal "
        "type to keep them exact (Python: `json.loads(text, parse_float=decimal.Decimal)`). NaN and infinity "
        "are null; times ISO 8601 text; BLOBs base64; INTERVALs seconds (ISO 8601 text when they hold months); "
        "BIGNUMs integers."))
    row_count: int


class HealthOut(BaseModel):
    status: str
    database: str
    schema_version: int
    rows: dict[str, int]


class InfoOut(BaseModel):
    name: str
    version: str
    database: str
    docs: str
    endpoints: list[str]
    writes_need_token: bool


def _given(body: BaseModel) -> dict:
    """The fields a client sent (defaults left to the Python API), as plain values.

    Same as model_dump(exclude_unset=True) for these flat models, at a fraction of the cost per batch row.
    """
    values = body.__dict__
    return {name: values[name] for name in body.model_fields_set}


# -- JSON of database values ----------------------------------------------------------------------------

def json_safe(value: Any) -> Any:
    """A value JSON can carry: NaN/Infinity become null, times ISO 8601, bytes base64, maps objects."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, decimal.Decimal):
        if value.is_finite() and value.as_tuple().exponent >= 0:  # HUGEINT, DECIMAL(p, 0): exact, any size
            return int(value)
        return json_safe(float(value))
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [json_safe(v) for v in value]
    return str(value)


def exact_json_safe(value: Any) -> Any:
    """json_safe, but a number stays exact: a finite Decimal (DECIMAL) and an integer beyond 64 bits (HUGEINT)
    become an orjson.Fragment of their digits, a JSON number written as is. json_safe rounded a DECIMAL with a
    fraction to a float (12345678901234567890.123456789 read 12345678901234567000.0), and orjson refuses an
    integer beyond 64 bits. POST /query writes its rows with this, as `benchmark_db_query.py --sql --format json`
    writes Decimals (benchmark_db.output.to_json, `0.000000000` rather than str()'s `0E-9`)."""
    kind = type(value)  # exact types first: the common cells cost one comparison, not several isinstance
    if value is None or kind is str or kind is bool:
        return value
    if kind is float:
        return value if math.isfinite(value) else None
    if isinstance(value, decimal.Decimal):
        return orjson.Fragment(decimal_text(value)) if value.is_finite() else None
    if isinstance(value, int) and not isinstance(value, bool):
        return value if -INT63 - 1 <= value <= INT63 else orjson.Fragment(str(value))
    if isinstance(value, dict):
        return {str(k): exact_json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [exact_json_safe(v) for v in value]
    return json_safe(value)


def _interval(value) -> float | str:
    """An INTERVAL (Arrow's months, days, nanoseconds) as seconds, as QueryOut says; one with months, whose length
    in seconds depends on the date it is added to, as ISO 8601 text (`P1M2DT0S`)."""
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    months, days, nanoseconds = value
    if not months:
        return days * 86400 + nanoseconds / 1e9
    return f"P{months}M{days}DT{nanoseconds / 1e9:g}S"


def _bignum(value: bytes) -> int:
    """DuckDB's BIGNUM (VARINT) bytes as the integer: a 3-byte header whose top bit is set for a number of 0 or
    more (all bytes inverted for a negative one), then the magnitude, big-endian."""
    positive = value[0] & 0x80
    if not positive:
        value = bytes(~b & 0xFF for b in value)
    magnitude = int.from_bytes(value[3:], "big")
    return magnitude if positive else -magnitude


_CELL_READERS = {"INTERVAL": _interval, "BIGNUM": _bignum, "VARINT": _bignum}
_JSON_TEXT_COLUMNS = {"metrics", "metadata", "environment"}


def _records(columns: list[str], rows: list[tuple]) -> list[dict]:
    out = []
    for row in rows:
        item = {}
        for name, value in zip(columns, row):
            if name in _JSON_TEXT_COLUMNS and isinstance(value, str):
                try:
                    value = json.loads(value)
                except ValueError:
                    pass
            item[name] = json_safe(value)
        out.append(item)
    return out


# -- errors ---------------------------------------------------------------------------------------------

_HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
               405: "method_not_allowed", 406: "not_acceptable", 408: "timeout", 413: "too_large",
               415: "unsupported_media_type", 422: "validation_error", 429: "too_many_requests",
               503: "database_unavailable"}
_QUERY_STATUS = {"not_read_only": (400, "query_refused"), "bad_params": (400, "query_params"),
                 "sql_error": (400, "query_error"), "timeout": (408, "query_timeout"),
                 "too_large": (413, "result_too_large")}


def _documented(*statuses: int) -> dict:
    return {status: {"model": ErrorOut, "description": _HTTP_CODES[status].replace("_", " ")} for status in statuses}


# what each kind of endpoint can answer besides its success (OpenAPI `responses`): writes need the token and a
# JSON body; reads need neither; /query takes a JSON body but no token
_ERRORS = _documented(400, 401, 413, 415, 422, 503)
_READ_ERRORS = _documented(400, 422, 503)
_QUERY_ERRORS = {**_documented(400, 413, 415, 422, 503),
                 408: {"model": ErrorOut, "description": "query ran past its time limit"}}


def error_response(status: int, code: str, message: str, details: Any = None, headers=None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, "details": json_safe(details)}},
                        status_code=status, headers=headers)


def _field_name(loc) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    return ".".join(parts) or "body"


def _validation_response(exc: RequestValidationError) -> JSONResponse:
    details = []
    for err in exc.errors():
        loc = err.get("loc", ())
        message = err.get("msg", "")
        if err.get("type") == "json_invalid":  # FastAPI puts the character position where the field goes
            loc = ("body",)
            problem = (err.get("ctx") or {}).get("error")
            message = f"{message}: {problem}" if problem and str(problem) not in message else message
        details.append({"field": _field_name(loc), "location": str(loc[0]) if loc else "body",
                        "message": message, "type": err.get("type", "")})
    message = "; ".join(f"{d['field']}: {d['message']}" for d in details[:10]) or "invalid request"
    return error_response(422, "validation_error", f"invalid request: {message}", details)


def _db_error_response(exc: BenchmarkDBError, db_path: str = "") -> JSONResponse:
    message = exc.message + (f"; {exc.hint}" if exc.hint else "")
    if db_path:  # the open endpoints name the database by its file name only (public_database_name): so do errors
        import os

        for path in (os.path.abspath(db_path), db_path):
            message = message.replace(path, public_database_name(db_path))
    if isinstance(exc, QueryRefused):
        status, code = _QUERY_STATUS.get(exc.reason, (400, "query_refused"))
        return error_response(status, code, message, {"db_code": exc.code})
    if isinstance(exc, DataConversionError):
        return error_response(422, "invalid_value", message, {"db_code": exc.code})
    if isinstance(exc, ArchiveMissingError):  # not the client's doing: the answer waits for the files
        return error_response(503, "archive_missing", message, {"db_code": exc.code})
    if isinstance(exc, DBConnectionError | SchemaError):
        # another process holding the file is a passing state: say when to try again
        headers = {"Retry-After": "1"} if isinstance(exc, DatabaseLockedError) else None
        return error_response(503, "database_unavailable", message, {"db_code": exc.code}, headers=headers)
    return error_response(400, "bad_request", message, {"db_code": exc.code})


def _duckdb_error_response(exc: duckdb.Error) -> JSONResponse:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, duckdb.ConstraintException | duckdb.ConversionException | duckdb.InvalidInputException |
                  duckdb.OutOfRangeException):
        return error_response(422, "invalid_value", f"the database refused the values: {text}")
    if isinstance(exc, duckdb.TransactionException) and "conflict" in str(exc).lower():  # a passing state
        return error_response(503, "database_unavailable", "another writer changed the same rows at the same "
                              f"moment; re-run ({text})", headers={"Retry-After": "1"})
    return error_response(503, "database_unavailable", f"the database failed: {text}",
                          {"hint": "retry; if it persists, check the server's disk and log"})


async def require_json_body(request: Request) -> None:
    """415 for a body not sent as JSON: `curl -d` sends form encoding, which POST /performance reported as
    "body: Input should be a valid dictionary" while /performance/batch took it; FastAPI reads a body without a
    Content-Type as no JSON either."""
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        sent = f"sent as {media_type}" if media_type else "sent without a Content-Type"
        raise StarletteHTTPException(415, f"the body is {sent}: send JSON with the header "
                                          "Content-Type: application/json")


def _query_parameter_names(dependant) -> set[str]:
    """The query parameters an endpoint takes, its dependencies' included."""
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_parameter_names(sub)
    return names


async def reject_unknown_query_parameters(request: Request) -> None:
    """422 for a query parameter the endpoint does not take, one given empty, or one given twice: `GET
    /performance?model=bert` (for model_name) returned every row unfiltered, as if the filter had matched them
    all, and so did `?model_name=`; `?model_name=a&model_name=b` filtered on b alone."""
    if not request.query_params:
        return
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    allowed = _query_parameter_names(dependant)
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        raise RequestValidationError([
            {"type": "extra_forbidden", "loc": ("query", name), "input": request.query_params.get(name),
             "msg": "unknown query parameter; this endpoint takes " + (", ".join(sorted(allowed)) or "none")}
            for name in unknown])
    # every parameter takes one value (none is a list): FastAPI kept the last of several and dropped the others
    given = collections.Counter(name for name, _ in request.query_params.multi_items())
    repeated = sorted(name for name, times in given.items() if times > 1)
    if repeated:
        raise RequestValidationError([
            {"type": "repeated_value", "loc": ("query", name), "input": request.query_params.getlist(name),
             "msg": "given more than once; this parameter takes one value: give it once"}
            for name in repeated])
    # `?model_name=` (a form field left blank, an unset shell variable) read as no filter and returned every
    # row; a client that meant no filter leaves the parameter out
    empty = sorted({name for name, value in request.query_params.multi_items() if not value.strip()})
    if empty:
        raise RequestValidationError([
            {"type": "empty_value", "loc": ("query", name), "input": request.query_params.get(name),
             "msg": "the value is empty; give the value to match, or leave the parameter out to not filter on it"}
            for name in empty])


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def validation(_request, exc: RequestValidationError):
        return _validation_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request, exc: StarletteHTTPException):
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        if exc.status_code == 400 and message == "There was an error parsing the body":  # FastAPI's words
            message = ("the body could not be read as JSON: it is not UTF-8 or is nested too deeply; send UTF-8 "
                       "JSON with objects and lists nested at most a few hundred levels")
        return error_response(exc.status_code, code, message, headers=getattr(exc, "headers", None))

    @app.exception_handler(BenchmarkDBError)
    async def db_error(request: Request, exc: BenchmarkDBError):
        return _db_error_response(exc, db_path=str(request.app.state.settings.db_path))

    @app.exception_handler(duckdb.Error)
    async def duck_error(_request, exc: duckdb.Error):
        return _duckdb_error_response(exc)

    @app.exception_handler(Exception)
    async def unexpected(_request, exc: Exception):
        log.exception("unexpected error")
        # the server drops the connection after an unhandled error: say so, so that a client does not send its
        # next request on it and lose it
        return error_response(500, "internal_error", f"unexpected {type(exc).__name__}; see the server log",
                              headers={"Connection": "close"})


# -- the single writer ----------------------------------------------------------------------------------

@dataclass
class Idempotent:
    """A write sent with an Idempotency-Key header: what identifies it, and how to answer it from its ids."""
    key: str
    endpoint: str  # "POST /performance"
    body_sha256: str
    respond: Callable[[list[int]], dict]  # the 201 answer's JSON from the ids written


@dataclass
class _WriteJob:
    records: list
    future: concurrent.futures.Future
    size: int  # ids the records yield (a RecordColumns batch yields one per row)
    queued: float = field(default_factory=time.monotonic)  # its lock timeout counts from here
    once: Idempotent | None = None  # its result is then (status, JSON, replayed) instead of the ids


class WriteQueue:
    """One thread writes for the whole server: it takes every job waiting and commits them together.

    A request waits for its job's commit, so a 201 means the row is in the database file. Async endpoints
    await the job (`write`) without holding a worker thread; `submit` blocks a thread instead.
    If a combined transaction fails, each job is retried alone so one bad request fails only itself.
    """

    def __init__(self, api: BenchmarkDBAPI, max_records: int = 200_000,
                 idempotency_ttl_s: float = IDEMPOTENCY_TTL_S):
        self.api = api
        self.max_records = max_records
        self.idempotency_ttl_s = idempotency_ttl_s
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self.commits = 0

    def _put(self, records: list, once: Idempotent | None = None) -> concurrent.futures.Future:
        self._ensure_started()
        job = _WriteJob(records, concurrent.futures.Future(), record_count(records), once=once)
        self._queue.put(job)
        return job.future

    def submit(self, records: list) -> list[int]:
        """Write `records` (through the writer thread) and return their ids; raises what the write raised."""
        return self._put(records).result()

    async def write(self, records: list) -> list[int]:
        """`submit` for the event loop: waits for the commit without blocking the loop or a thread."""
        return await asyncio.wrap_future(self._put(records))

    async def write_once(self, records: list, once: Idempotent) -> tuple[int, dict, bool]:
        """`write` of a request with an Idempotency-Key: (status, JSON, replayed). A key already stored answers
        its first answer again without writing; a key stored for another body answers 422."""
        return await asyncio.wrap_future(self._put(records, once))

    def _ensure_started(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            with self._start_lock:
                if self._thread is None or not self._thread.is_alive():
                    self._thread = threading.Thread(target=self._run, name="benchmark-db-writer", daemon=True)
                    self._thread.start()

    def stop(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            jobs = [first]
            size = first.size
            stop = False
            while size < self.max_records:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    stop = True
                    break
                jobs.append(job)
                size += job.size
            # a job whose request was cancelled meanwhile (its client went away) is dropped; the others can no
            # longer be cancelled, so their results always reach the waiting requests
            jobs = [job for job in jobs if job.future.set_running_or_notify_cancel()]
            if jobs:
                self._write(jobs)
            if stop:
                return

    def _write(self, jobs: list[_WriteJob]) -> None:
        started = min(job.queued for job in jobs)
        try:
            if any(job.once for job in jobs):
                results = self._write_keyed(jobs, started)
            else:
                results = self._write_plain(jobs, started)
            self.commits += 1
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting request
            # a database that cannot be opened (locked past the timeout, missing, newer) fails every job alike:
            # retrying each alone made the last of N requests wait N lock timeouts
            if len(jobs) > 1 and not isinstance(exc, DBConnectionError | SchemaError):
                for job in jobs:
                    self._write([job])
                return
            for job in jobs:
                job.future.set_exception(exc)
            return
        for job, result in zip(jobs, results, strict=True):
            job.future.set_result(result)

    def _write_plain(self, jobs: list[_WriteJob], started: float | None = None) -> list[list[int]]:
        """Write the jobs' records in one call; each job's ids, in order."""
        ids = self.api.write_records([r for job in jobs for r in job.records], started=started)
        per_job, start = [], 0
        for job in jobs:
            per_job.append(ids[start:start + job.size])
            start += job.size
        return per_job

    def _write_keyed(self, jobs: list[_WriteJob], started: float) -> list:
        """Write jobs some of which carry an Idempotency-Key, in one transaction: each key row commits with the
        rows it answers for, so a crash leaves both or neither. The key is looked up inside that transaction,
        and this thread is the server's only writer, so a resend that arrives while the first request is still
        queued or being written finds the first one's key (in this group or an earlier one) and writes nothing."""
        now = utc_now()
        cutoff = now - dt.timedelta(seconds=self.idempotency_ttl_s)
        results: dict[int, Any] = {}
        with self.api.transaction(started) as conn:
            # the table grows only by keyed writes, and each one drops the expired keys: it holds about a TTL's worth
            conn.execute("DELETE FROM api_idempotency_keys WHERE created_at <= ?", [cutoff])
            plain = [job for job in jobs if job.once is None]
            if plain:
                results.update(zip(map(id, plain), self._write_plain(plain), strict=True))
            for job in jobs:
                if job.once is not None:
                    results[id(job)] = self._write_once(conn, job, now, cutoff)
        return [results[id(job)] for job in jobs]

    def _write_once(self, conn, job: _WriteJob, now: dt.datetime, cutoff: dt.datetime) -> tuple[int, dict, bool]:
        once = job.once
        stored = conn.execute(
            "SELECT endpoint, body_sha256, status_code, response FROM api_idempotency_keys "
            "WHERE idempotency_key = ? AND created_at > ? ORDER BY created_at LIMIT 1", [once.key, cutoff]).fetchone()
        if stored is not None:
            endpoint, body_sha256, status, response = stored
            if (endpoint, body_sha256) == (once.endpoint, once.body_sha256):
                return status, orjson.loads(response), True
            return 422, {"error": {
                "code": "idempotency_key_reused",
                "message": f"the Idempotency-Key was already used for a different request (to {endpoint}); send "
                           "a new key with a new request, or resend the first request unchanged",
                "details": {"field": "Idempotency-Key", "endpoint": endpoint}}}, False
        content = once.respond(self.api.write_records(job.records) if job.records else [])
        conn.execute("INSERT INTO api_idempotency_keys (idempotency_key, endpoint, body_sha256, status_code, response, "
                     "created_at) VALUES (?, ?, ?, 201, ?, ?)",
                     [once.key, once.endpoint, once.body_sha256, orjson.dumps(content).decode(), now])
        return 201, content, False


def public_database_name(db_path: str) -> str:
    """The database as the open endpoints name it: a file's name, not its folders; a lake's catalog without
    its connection details. `Path(...).name` of a libpq string (no "/") was the whole string, password and all,
    answered to anyone who could reach `/` or `/health`."""
    import re
    from pathlib import Path

    from benchmark_db.connection import is_lake

    text = str(db_path)
    if not is_lake(text):
        return Path(text).name
    spec = text[len("ducklake:"):]
    if spec.startswith("postgres:"):
        dbname = re.search(r"(?:^|\s)dbname\s*=\s*'?([^'\s]+)", spec[len("postgres:"):])
        return "ducklake:postgres" + (f":dbname={dbname.group(1)}" if dbname else "")
    return "ducklake:" + Path(spec).name


def _too_large() -> Response:
    return error_response(413, "too_large", f"the body is larger than {MAX_BODY_BYTES // 2**20} MiB",
                          {"hint": "split it into several /performance/batch requests"})


class BodyLimit:
    """Refuses a body whose Content-Length is not a number or is over MAX_BODY_BYTES, and a chunked body (no
    Content-Length) once it grows past it: the header check alone let a 70 MiB chunked body through (plain
    ASGI: a BaseHTTPMiddleware would cost every request a task and a stream)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            chunked = False
            for name, value in scope["headers"]:
                if name == b"content-length":
                    response = None
                    if not value.isdigit():
                        response = error_response(400, "bad_request", "Content-Length is not a number")
                    elif int(value) > MAX_BODY_BYTES:
                        response = _too_large()
                    if response is not None:
                        await response(scope, receive, send)
                        return
                    break
                chunked = chunked or name == b"transfer-encoding"
            else:
                if chunked:
                    receive = await self._read_chunked(scope, receive, send)
                    if receive is None:
                        return
        await self.app(scope, receive, send)

    @staticmethod
    async def _read_chunked(scope, receive, send):
        """The body's messages, read up to MAX_BODY_BYTES and handed on as they came; None once a 413 was sent
        (or the client left)."""
        messages, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return None  # the client disconnected
            size += len(message.get("body", b""))
            if size > MAX_BODY_BYTES:
                await _too_large()(scope, receive, send)
                return None
            messages.append(message)
            if not message.get("more_body"):
                break
        replay = iter(messages)

        async def replayed():
            return next(replay, None) or await receive()

        return replayed


def _json_response(content: Any, status_code: int = 200) -> Response:
    """JSON of plain values (already json_safe, or exact_json_safe) through orjson, several times faster than
    json.dumps; what orjson cannot write (an integer beyond 64 bits) goes through the standard encoder."""
    try:
        body = orjson.dumps(content)
    except (TypeError, orjson.JSONEncodeError):
        return JSONResponse(content, status_code=status_code)
    return Response(body, status_code=status_code, media_type="application/json")


# -- the app --------------------------------------------------------------------------------------------

ENDPOINTS = ["GET /", "GET /health", "POST /performance", "GET /performance", "POST /performance/batch",
             "POST /compatibility", "GET /compatibility", "POST /integration", "GET /integration", "POST /query",
             "GET /hardware", "GET /models"]


def create_app(settings: ServerSettings | None = None, api: BenchmarkDBAPI | None = None) -> FastAPI:
    """The FastAPI app over one database. Tests pass their own settings (a tmp database) or override
    the `get_api` / `get_settings` dependencies."""
    settings = settings or ServerSettings()
    api = api or BenchmarkDBAPI(settings.db_path, lock_timeout=settings.lock_timeout,
                                idle_release=settings.idle_release, max_hold=settings.max_hold,
                                query_max_rows=settings.query_max_rows,
                                query_timeout_s=settings.query_timeout_s)
    writers: dict[int, WriteQueue] = {}  # one writer thread per API object (tests may override the API)
    writers_lock = threading.Lock()

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        yield
        for writer in list(writers.values()):
            writer.stop()
            writer.api.close()
        api.close()

    # FastAPIOffline serves the /docs and /redoc pages' JavaScript and CSS from the package itself: FastAPI's
    # own pages load them from a CDN, which left /docs blank on a machine without internet access
    app = FastAPIOffline(title="Benchmark DB API", version=API_VERSION, lifespan=lifespan,
                  dependencies=[Depends(reject_unknown_query_parameters)],
                  description="Store and query ML benchmark results (performance, hardware compatibility, "
                              "integration tests) in one DuckDB database. Errors: "
                              '{"error": {"code", "message", "details"}}.')
    app.state.settings = settings
    app.state.api = api
    install_error_handlers(app)
    default_openapi = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = default_openapi()
            # POST /performance/batch reads its body itself; its documented schema is still PerformanceBatchIn
            batch = PerformanceBatchIn.model_json_schema(ref_template="#/components/schemas/{model}")
            batch.pop("$defs", None)
            schema.setdefault("components", {}).setdefault("schemas", {})["PerformanceBatchIn"] = batch
        return app.openapi_schema

    app.openapi = openapi

    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
                           expose_headers=["Idempotent-Replayed"])

    app.add_middleware(BodyLimit)

    bearer = HTTPBearer(auto_error=False, description="needed for writes when the server has a token")

    # The dependencies and the write endpoints are async: they do no blocking work (a write waits for the
    # writer thread's commit without holding a thread), and each threadpool hop costs more than they do.
    async def get_settings() -> ServerSettings:
        return app.state.settings

    async def get_api() -> BenchmarkDBAPI:
        return app.state.api

    async def get_writer(api: BenchmarkDBAPI = Depends(get_api)) -> WriteQueue:
        with writers_lock:
            if id(api) not in writers:
                writers[id(api)] = WriteQueue(api, idempotency_ttl_s=app.state.settings.idempotency_ttl_s)
            return writers[id(api)]

    async def require_token(credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
                            current: ServerSettings = Depends(get_settings)) -> None:
        if not current.token:
            return
        given = credentials.credentials if credentials is not None else ""
        # HTTP header values arrive as bytes, which Starlette decodes as Latin-1: encoding back gives the bytes
        # the client sent (a UTF-8 token such as 'sécret' never matched its own UTF-8 encoding otherwise)
        if not secrets.compare_digest(given.encode("latin-1", "replace"), current.token.encode()):
            raise StarletteHTTPException(401, "writes need 'Authorization: Bearer <token>' with the server's "
                                              "BENCHMARK_DB_API_TOKEN", headers={"WWW-Authenticate": "Bearer"})

    app.state.get_api = get_api
    app.state.get_settings = get_settings
    app.state.get_writer = get_writer
    API = Annotated[BenchmarkDBAPI, Depends(get_api)]
    Writer = Annotated[WriteQueue, Depends(get_writer)]
    Limit = Annotated[int, Query(ge=0, le=api_module.MAX_PAGE, description="page size")]
    Offset = Annotated[int, Query(ge=0, le=2**62, description="rows to skip")]
    QText = Annotated[str | None, Query(max_length=500)]
    Since = Annotated[dt.datetime | None, Query(description="created at or after (ISO 8601)")]
    Until = Annotated[dt.datetime | None, Query(description="created before (ISO 8601)")]
    write_deps = [Depends(require_token), Depends(require_json_body)]
    # the IETF draft "The Idempotency-Key HTTP Header Field" and Stripe: a client that resends a write after a
    # dropped connection sends the same key, and gets the first answer instead of a second copy of its rows
    IdempotencyKey = Annotated[str | None, Header(
        alias="Idempotency-Key", min_length=1, max_length=255, pattern=r"^[\x20-\x7e]+$",
        description="1-255 printable ASCII characters, new for each write: a resend with the same key and body "
                    "within 24 h gets the first answer again (header Idempotent-Replayed: true), stored once")]

    def page(api: BenchmarkDBAPI, sql_params, limit: int, offset: int) -> Response:
        """One page of a list endpoint. Its query was built with peek=True: a row beyond `limit` says that
        another page follows, so a last page that is exactly full has next_offset null."""
        columns, rows = api.rows(*sql_params)
        more = len(rows) > limit
        items = _records(columns, rows[:limit] if more else rows)
        return _json_response({"items": items, "limit": limit, "offset": offset, "count": len(items),
                               "next_offset": offset + limit if more else None})

    async def answer(writer: WriteQueue, records: list, respond, request: Request, key: str | None) -> Response:
        """201 with `respond(ids)` once `records` are committed; with an Idempotency-Key, a resend's first answer."""
        if key is None:
            return _json_response(respond(await writer.write(records) if records else []), status_code=201)
        endpoint = f"POST {request.scope['route'].path}"
        once = Idempotent(key, endpoint, hashlib.sha256(await request.body()).hexdigest(), respond)
        status, content, replayed = await writer.write_once(records, once)
        response = _json_response(content, status_code=status)
        if replayed:
            response.headers["Idempotent-Replayed"] = "true"
        return response

    async def store(writer: WriteQueue, builder, body: BaseModel, request: Request, key: str | None) -> Response:
        records = builder(_given(body))  # plain Python of a few fields: cheaper here than a thread hop
        run_id = getattr(records[-1], "run_id", None)
        return await answer(writer, records, lambda ids: {"id": ids[-1], "run_id": run_id}, request, key)

    def batch_records(api: BenchmarkDBAPI, raw: bytes) -> tuple[list, list[int]]:
        try:
            results = _BATCH_ROWS.validate_json(raw)["results"]
        except ValidationError as exc:
            raise RequestValidationError(
                [{**err, "loc": ("body", *err["loc"])} for err in exc.errors(include_url=False)]) from None
        return api.build_records(results)

    @app.get("/", response_model=InfoOut, tags=["info"])
    def info(current: Annotated[ServerSettings, Depends(get_settings)], api: API):
        return {"name": "Benchmark DB API", "version": API_VERSION, "database": public_database_name(api.db_path),
                "docs": "/docs", "endpoints": ENDPOINTS, "writes_need_token": bool(current.token)}

    @app.get("/health", response_model=HealthOut, tags=["info"], responses={503: _ERRORS[503]})
    def health(api: API):
        status = api.health()
        status["database"] = public_database_name(status["database"])
        return status

    @app.head("/health", include_in_schema=False)  # what uptime checks send: GET's status, without the body
    def health_head(api: API):
        api.health()
        return Response(status_code=200)

    @app.post("/performance", status_code=201, response_model=StoredOut, tags=["performance"],
              dependencies=write_deps, responses=_ERRORS)
    async def post_performance(body: PerformanceIn, api: API, writer: Writer, request: Request,
                               key: IdempotencyKey = None):
        records, position = api.build_performance(_given(body))
        run_id = records[-1].columns["run_id"][0]
        return await answer(writer, records, lambda ids: {"id": ids[position], "run_id": run_id}, request, key)

    @app.post("/performance/batch", status_code=201, response_model=BatchOut, tags=["performance"],
              dependencies=write_deps, responses=_ERRORS, openapi_extra={"requestBody": {
                  "content": {"application/json": {"schema": {"$ref": "#/components/schemas/PerformanceBatchIn"}}},
                  "required": True}})
    async def post_performance_batch(request: Request, api: API, writer: Writer, key: IdempotencyKey = None):
        # the body is validated from its raw bytes (see _BATCH_ROWS), off the event loop: 10,000 rows
        # take tens of milliseconds
        records, positions = await run_in_threadpool(batch_records, api, await request.body())

        def respond(ids: list[int]) -> dict:
            result_ids = [ids[p] for p in positions]
            # two results of one named run with the same configuration share a result_id, and the later one
            # replaces the earlier as a resend would: say so rather than count rows that were not kept
            last = {result_id: index for index, result_id in enumerate(result_ids)}
            replaced = [index for index, result_id in enumerate(result_ids) if last[result_id] != index]
            return {"stored": len(last), "result_ids": result_ids, "replaced": replaced}

        return await answer(writer, records, respond, request, key)

    @app.get("/performance", response_model=PerformancePage, tags=["performance"], responses=_READ_ERRORS)
    def get_performance(api: API, model_name: QText = None, hardware_type: QText = None,
                        device_name: QText = None, batch_size: Annotated[int | None, Query(ge=0, le=INT32)] = None,
                        sequence_length: Annotated[int | None, Query(ge=0, le=INT32)] = None,
                        precision: QText = None, test_case: QText = None,
                        run_id: Annotated[int | None, Query(ge=0, le=INT63)] = None, model_family: QText = None,
                        is_simulated: bool | None = None, is_emulated: bool | None = None, since: Since = None,
                        until: Until = None, include_samples: bool = False, limit: Limit = 100,
                        offset: Offset = 0):
        sql = api_module.performance_query(
            model_name=model_name, hardware_type=hardware_type, device_name=device_name, batch_size=batch_size,
            sequence_length=sequence_length, precision=precision, test_case=test_case, run_id=run_id, model_family=model_family,
            is_simulated=is_simulated, is_emulated=is_emulated, since=since, until=until,
            include_samples=include_samples, limit=limit, offset=offset, stored_names=False, peek=True)
        return page(api, sql, limit, offset)

    @app.post("/compatibility", status_code=201, response_model=StoredOut, tags=["compatibility"],
              dependencies=write_deps, responses=_ERRORS)
    async def post_compatibility(body: CompatibilityIn, api: API, writer: Writer, request: Request,
                                 key: IdempotencyKey = None):
        return await store(writer, api.records.compatibility, body, request, key)

    @app.get("/compatibility", response_model=CompatibilityPage, tags=["compatibility"], responses=_READ_ERRORS)
    def get_compatibility(api: API, model_name: QText = None, hardware_type: QText = None,
                          device_name: QText = None, is_compatible: bool | None = None,
                          run_id: Annotated[int | None, Query(ge=0, le=INT63)] = None,
                          is_simulated: bool | None = None, since: Since = None, until: Until = None,
                          limit: Limit = 100, offset: Offset = 0):
        sql = api_module.compatibility_query(
            model_name=model_name, hardware_type=hardware_type, device_name=device_name,
            is_compatible=is_compatible, run_id=run_id, is_simulated=is_simulated, since=since, until=until,
            limit=limit, offset=offset, peek=True)
        return page(api, sql, limit, offset)

    @app.post("/integration", status_code=201, response_model=StoredOut, tags=["integration"],
              dependencies=write_deps, responses=_ERRORS)
    async def post_integration(body: IntegrationIn, api: API, writer: Writer, request: Request,
                               key: IdempotencyKey = None):
        return await store(writer, api.records.integration, body, request, key)

    @app.get("/integration", response_model=IntegrationPage, tags=["integration"], responses=_READ_ERRORS)
    def get_integration(api: API, test_name: QText = None, test_module: QText = None, status: QText = None,
                        hardware_type: QText = None, model_name: QText = None,
                        run_id: Annotated[int | None, Query(ge=0, le=INT63)] = None, since: Since = None,
                        until: Until = None, limit: Limit = 100, offset: Offset = 0):
        sql = api_module.integration_query(
            test_name=test_name, test_module=test_module, status=status, hardware_type=hardware_type,
            model_name=model_name, run_id=run_id, since=since, until=until, limit=limit, offset=offset,
            peek=True)
        return page(api, sql, limit, offset)

    @app.get("/hardware", response_model=HardwarePage, tags=["dimensions"], responses=_READ_ERRORS)
    def get_hardware(api: API, hardware_type: QText = None, device_name: QText = None, limit: Limit = 100,
                     offset: Offset = 0):
        sql = api_module.hardware_query(hardware_type=hardware_type, device_name=device_name, limit=limit,
                                        offset=offset, peek=True)
        return page(api, sql, limit, offset)

    @app.get("/models", response_model=ModelPage, tags=["dimensions"], responses=_READ_ERRORS)
    def get_models(api: API, model_name: QText = None, model_family: QText = None, modality: QText = None,
                   limit: Limit = 100, offset: Offset = 0):
        sql = api_module.model_query(model_name=model_name, model_family=model_family, modality=modality,
                                     limit=limit, offset=offset, peek=True)
        return page(api, sql, limit, offset)

    @app.post("/query", response_model=QueryOut, tags=["query"], responses=_QUERY_ERRORS,
              dependencies=[Depends(require_json_body)])
    def post_query(body: QueryIn, api: API):
        """Run one read-only SELECT. No writes, ATTACH, COPY, INSTALL/LOAD, PRAGMA/SET, file or network
        access; parameters are bound; results are bounded in rows and time."""
        result = api.run_query(body.sql, body.params)
        # DECIMAL and HUGEINT exact (JSON numbers with all their digits), through orjson; INTERVAL and BIGNUM
        # cells come as Arrow's (months, days, ns) and DuckDB's own bytes: made numbers first
        readers = [_CELL_READERS.get(kind) for kind in result.types]
        rows = [[exact_json_safe(v if read is None or v is None else read(v)) for v, read in zip(row, readers)]
                for row in result.rows]
        return _json_response({"columns": result.columns, "types": result.types, "rows": rows,
                               "row_count": len(rows)})

    return app

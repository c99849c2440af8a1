"""Any known result document -> canonical records (DESIGN §3): `convert_document(text, path, sha256)`.

This module owns parsing and detection: it parses the text (orjson when installed, else json), recognises
the document's family by its content (the project's runner output, optimum-benchmark, pytest-benchmark,
web-platform runs, files that hold no result, the legacy system's many shapes) and hands it to the reader
in `benchmark_db.shapes`. It never raises: an unreadable document is `failed` with the parse error's line
and column, a document without results is `skipped` with a named reason, and a bug in a reader is `failed`
with the exception named rather than taking the ingest down. It writes nothing; the ingest pipeline stores
the records, the log row and the original text.
"""
from __future__ import annotations

import codecs
import datetime as dt
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from benchmark_db.identity import stable_id

try:  # orjson parses the corpus several times faster; json is the fallback and gives the error positions
    import orjson as _orjson
except ImportError:  # pragma: no cover - orjson is in requirements
    _orjson = None

# The version of what the readers make of a document. Bump it with any change that alters the records, the
# kind, the status or the reason a document gives: the ingest log records it per file, and a later run converts
# again every file that an earlier version converted (its rows are rebuilt, as with --force), so a database
# never keeps rows the current code would not write. tests/test_converter_version.py holds a digest of what
# this version makes of the legacy and foreign corpora and fails until the number moves with the output.
CONVERTER_VERSION = 9  # 2: rows of undated documents keep created_at NULL (1 gave them the ingest time)
# 3: ambiguous dd/mm or mm/dd dates are NULL (2 read them day first), nanosecond epochs are read, UTF-16/32
# without a byte-order mark is read, hardware fields of the wrong type are dropped, long skip reasons are cut
# 4: text that is not UTF-8 is read as Windows-1252 (noted), figures written as text with a unit ("12.5 ms",
# "512 MB", "120 items/s") are read and converted (noted)
# 5: compatibility and integration rows take the time their own entry states (they had the run's start), a
# web platform comparison's models keep the modality it files them under, optimum-benchmark's `stdev_` is kept,
# HuBERT is no longer taken for a BERT (family and modality), a command's verdict and its benchmark_data's are
# two names (they were two identical rows), rows of runner documents without their own time take the run's completion
# 6: times without a zone are moved to UTC when the file's own epoch stamps show the offset of the clock that
# wrote them (18 corpus files of a machine on UTC-8); without such evidence they are still taken as UTC; a time
# taken from a path stamp is noted; a skill test's platform fields besides its statuses (figures, timings,
# outputs) stay in its compatibility row's metadata, and an output that admits a simulation flags the row; a
# lone surrogate escape is read as U+FFFD (it was a converter error)
# 7: a simulation flag written as 1 flags the row; dates without a time of day ('13/02/2024', '2024/02/13',
# '13.02.2024') are read; a single pair of stamps must agree to within a minute to move a file's times; a batch
# or sequence beyond the schema's bounds, and a negative figure, stay in metrics instead of failing the file or
# vanishing; tpu, xpu, hpu and npu are hardware types; an unknown hardware type is named when a row is dropped
# 8: the ingest log names the records a file held that were not stored (they were in the run's metadata only)
# 9: optimum-benchmark: tokens/s and images/s stay in metrics (not items/s), a GPU run never takes the CPU's
# name, AMD GPUs are rocm, cpu_ram_mb (megabytes) becomes GiB, the experiment layout is read, a device-keyed
# result file is no optimum report; pytest-benchmark: `brand` names the CPU, machine_info may be absent,
# test names get no model family

KINDS = ("performance", "hardware", "compatibility", "integration", "web_platform", "runner", "optimum_benchmark",
         "pytest_benchmark", "no_result", "unknown", "invalid")
# which --categories a kind's rows belong to, besides the categories the rows themselves report
_TABLE_CATEGORY = {"performance_results": "performance", "hardware_compatibility": "compatibility",
                   "integration_test_results": "integration", "web_platform_results": "web",
                   "hardware_platforms": "hardware"}


@dataclass
class Conversion:
    kind: str
    status: str                      # 'ingested' | 'skipped' | 'failed'
    reason: str | None = None
    records: list = field(default_factory=list)
    conversions: list[str] = field(default_factory=list)
    categories: set[str] = field(default_factory=set)

    def rows_by_table(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for record in self.records:
            counts[record.TABLE] = counts.get(record.TABLE, 0) + 1
        return counts


def parse_document(text: str | bytes):
    """The parsed JSON value; raises ValueError whose message names line and column (json's wording)."""
    return _parse(text)[0]


def _latin1_for_undefined(exc: UnicodeDecodeError):
    # the five bytes cp1252 leaves undefined (0x81, 0x8d, 0x8f, 0x90, 0x9d) read as Latin-1: decoding never fails
    return exc.object[exc.start:exc.end].decode("latin-1"), exc.end


codecs.register_error("benchmark_db.latin1", _latin1_for_undefined)


# UTF-32 marks first: the UTF-32 LE mark begins with the UTF-16 LE one
_UTF16_32_BOMS = (b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff", b"\xff\xfe", b"\xfe\xff")


_NUL_PATTERNS = {(True, True, True, False): "utf-32-be", (False, True, True, True): "utf-32-le",
                 (True, False, True, False): "utf-16-be", (False, True, False, True): "utf-16-le"}


def _parse(text: str | bytes):
    """(value, strict, note): strict when orjson read it, so it holds no NaN/Infinity; note says how the bytes
    were read when that is worth a line in the ingest log (None otherwise)."""
    if isinstance(text, (bytes, bytearray, memoryview)):
        data = bytes(text)
        if data.startswith(b"\xef\xbb\xbf"):
            data = data[3:]
        elif data.startswith(_UTF16_32_BOMS):  # Windows tools (PowerShell's Out-File) write UTF-16 with a BOM
            encoding = "utf-32" if data.startswith(_UTF16_32_BOMS[:2]) else "utf-16"
            try:
                return _parse(data.decode(encoding))
            except UnicodeDecodeError as exc:
                raise ValueError(f"not {encoding.upper()} text after its byte-order mark: byte {exc.start}") \
                    from None
        elif len(data) >= 4 and b"\x00" in data[:4] and data[:4].count(b"\x00") < 4:
            # UTF-16/32 without a byte-order mark: JSON text starts with an ASCII character, so the pattern of
            # zero bytes among the first four names the encoding (RFC 4627, section 3)
            encoding = _NUL_PATTERNS.get(tuple(b == 0 for b in data[:4]))
            if encoding is not None:
                try:
                    return _parse(data.decode(encoding))
                except UnicodeDecodeError as exc:
                    raise ValueError(f"not {encoding.upper()} text: byte {exc.start}") from None
        if _orjson is not None:
            try:
                return _orjson.loads(data), True, None
            except _orjson.JSONDecodeError:
                pass  # json accepts what orjson refuses (NaN, huge ints) and words the error as users know it
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            # old Windows tools wrote their code page ("°C", "µs" in a description): read it as Windows-1252,
            # and say so; text that is no JSON in any encoding still fails below with its line and column
            try:
                value, strict, _ = _parse(data.decode("cp1252", "benchmark_db.latin1"))
            except ValueError as parse_error:
                raise ValueError(f"not UTF-8 text: byte {exc.start} is 0x{data[exc.start]:02x} (save the file as "
                                 f"UTF-8); read as Windows-1252, it is no JSON either: {parse_error}") from None
            return value, strict, (f"read as Windows-1252: not valid UTF-8 (first bad byte "
                                   f"0x{data[exc.start]:02x} at offset {exc.start})")
    else:
        if text.startswith("\ufeff"):
            text = text[1:]
        if _orjson is not None:
            try:
                return _orjson.loads(text), True, None
            except (_orjson.JSONDecodeError, UnicodeEncodeError):
                pass
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        if not text.strip():
            raise ValueError("empty file: there is no JSON in it") from None
        raise ValueError(f"invalid JSON: {exc.msg}: line {exc.lineno} column {exc.colno} (char {exc.pos})") from None
    except RecursionError:
        raise ValueError("invalid JSON: nested too deeply to read") from None
    if _SURROGATE_ESCAPE.search(text):
        # "\ud800" alone is valid JSON but no character: such a string cannot be stored as UTF-8 text (the
        # file failed with an encoder error and lost its original). The stored original keeps the escape.
        repaired = _without_lone_surrogates(value)
        if repaired != value:
            return repaired, False, "lone UTF-16 surrogate escapes (\\udXXX) read as U+FFFD"
    return value, False, None


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _without_lone_surrogates(value):
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_without_lone_surrogates(v) for v in value]
    if isinstance(value, dict):
        return {_without_lone_surrogates(k): _without_lone_surrogates(v) for k, v in value.items()}
    return value


def convert_document(text: str | bytes, path: str, sha256: str) -> Conversion:
    """Detect the document's kind and build its records. Never raises, for any input."""
    try:
        try:
            doc, strict, read_note = _parse(text)
        except ValueError as exc:
            reason = str(exc)
            suffix = Path(path or "").suffix.lower()
            if suffix and suffix != ".json":  # an --input-file that is another kind of file, not broken JSON
                reason += f" (a {suffix} file: this tool reads JSON result files)"
            return Conversion(kind="invalid", status="failed", reason=reason)
        result = _convert(doc, path or "", sha256 or "", strict, local_time_offset(text))
        if read_note:
            result.conversions = [read_note, *result.conversions]
        return result
    except RecursionError:
        return Conversion(kind="unknown", status="failed", reason="document nested too deeply to convert")
    except Exception as exc:  # a reader's bug must not stop an ingest of thousands of files
        return Conversion(kind="unknown", status="failed",
                          reason=f"converter error: {type(exc).__name__}: {str(exc)[:300]}")


# Times written without a zone next to epoch stamps under a time key, in the raw text (bytes as read from disk,
# or text): searching it costs far less than walking every document, and only a file with both is looked at.
# The epoch pattern starts at the colon (a pattern that starts at the key's words cost 100 us a file); the key
# in front of a match is checked afterwards.
_LOCAL_ISO = rb'"(20\d\d-[01]\d-[0-3]\d[T ][0-2]\d:[0-5]\d:[0-5]\d(?:\.\d{1,6})?)"'
_EPOCH_VALUE = rb':\s*(1[5-9]\d{8}(?:\.\d{1,9})?)(?![\d.eE])'
_LOCAL_TIME_PATTERNS = {
    bytes: (re.compile(_LOCAL_ISO), re.compile(_EPOCH_VALUE), b'"', (b"time", b"stamp")),
    str: (re.compile(_LOCAL_ISO.decode()), re.compile(_EPOCH_VALUE.decode()), '"', ("time", "stamp")),
}
_ZONE_STEP_S = 15 * 60        # UTC offsets are whole quarter hours
_ZONE_TOLERANCE_S = 3 * 60    # how far apart two stamps of the same moment may be (a run writes them seconds apart)
_ONE_PAIR_TOLERANCE_S = 60
_MAX_ZONE_OFFSET_S = 14 * 3600
_MAX_STAMPS = 200


def local_time_offset(text) -> dt.timedelta | None:
    """How far UTC is ahead of the clock that wrote the document's times without a zone, when the document says
    so itself: it also holds epoch stamps (which are UTC) and every pair of a zone-less ISO time and an epoch
    stamp lies the same whole number of quarter hours apart, within minutes (the legacy corpus: 18 files of a
    machine on UTC-8, all 8 h apart to within 18 s). None when there is no such evidence, when the pairs disagree
    or when they agree on 0: those times are then taken as UTC, as before."""
    patterns = _LOCAL_TIME_PATTERNS.get(type(text))
    if patterns is None:
        return None
    local_re, epoch_re, quote, time_words = patterns
    local = local_re.findall(text, 0, 1 << 20)[:_MAX_STAMPS]
    if not local:
        return None
    epochs = []
    for match in epoch_re.finditer(text, 0, 1 << 20):
        key_end = text.rfind(quote, 0, match.start())
        key = text[text.rfind(quote, 0, key_end) + 1:key_end].lower()
        if time_words[0] in key or time_words[1] in key:
            epochs.append(match.group(1))
            if len(epochs) == _MAX_STAMPS:
                break
    if not epochs:
        return None
    epoch = dt.datetime(1970, 1, 1)
    try:
        local_times = [(dt.datetime.fromisoformat(v if type(v) is str else v.decode()) - epoch).total_seconds()
                       for v in local]
    except ValueError:
        return None
    epoch_times = [float(v) for v in epochs]
    # the offset the first pair suggests, then every pair must agree with it (most files: the clock was UTC,
    # the first pair says 0 and nothing more is compared)
    offset = round((epoch_times[0] - local_times[0]) / _ZONE_STEP_S) * _ZONE_STEP_S
    if offset == 0 or abs(offset) > _MAX_ZONE_OFFSET_S:
        return None
    # a single pair is weaker evidence: a run that took about three hours also puts its two stamps three hours
    # apart, so one pair must agree to within a minute (the corpus's single pairs: within 18 s)
    tolerance = _ZONE_TOLERANCE_S if len(local_times) * len(epoch_times) > 1 else _ONE_PAIR_TOLERANCE_S
    if any(abs(e - t - offset) > tolerance for t in local_times for e in epoch_times):
        return None
    return dt.timedelta(seconds=offset)


_readers: tuple | None = None


def _reader_modules() -> tuple:
    """The shape reader modules, imported on first use (they pull in the ORM) and then kept."""
    global _readers
    if _readers is None:
        from benchmark_db.shapes import base, foreign, legacy, no_result, runner, web

        _readers = (base, foreign, legacy, no_result, runner, web)
    return _readers


def _convert(doc, path: str, sha256: str, strict: bool = False,
             local_offset: dt.timedelta | None = None) -> Conversion:
    base, foreign, legacy, no_result, runner, web = _readers or _reader_modules()
    Builder, ShapeSkip = base.Builder, base.ShapeSkip  # noqa: N806 - the classes, looked up per call

    if not isinstance(doc, (dict, list)):
        return Conversion(kind="unknown", status="skipped",
                          reason=f"JSON {type(doc).__name__ if doc is not None else 'null'}, not a result document")
    if runner.is_runner_document(doc):
        return _convert_runner(doc, path, sha256, runner)

    b = Builder(path, sha256, doc, finite=strict, local_offset=local_offset)
    if foreign.is_optimum(doc):
        family, read = "optimum_benchmark", foreign.read_optimum
    elif foreign.is_pytest_benchmark(doc):
        family, read = "pytest_benchmark", foreign.read_pytest_benchmark
    elif web.is_web_result(doc):
        family, read = "web_platform", web.read_web_result
    elif web.is_web_comparison(doc):
        family, read = "web_platform", web.read_web_comparison
    else:
        reason = no_result.no_result_reason(doc)
        if reason:
            return Conversion(kind="no_result", status="skipped", reason=reason)
        family, read = None, legacy.read_legacy
    try:
        kind = read(b, doc)
    except ShapeSkip as skip:
        return Conversion(kind=family or "no_result", status="skipped", reason=str(skip))
    records = b.records(kind)
    categories = set(b.categories)
    if kind == "hardware":
        categories.add("hardware")
    conversions = b.conversions
    if b.dropped:  # kept in the run's metadata; said in the log too, where a reader of the ingest looks
        shown = "; ".join(f"{d['reason']} at {d['pointer'] or '/'}" for d in b.dropped[:3])
        more = f"; {len(b.dropped) - 3} more" if len(b.dropped) > 3 else ""
        conversions = [*conversions, f"{len(b.dropped)} record(s) not stored (test_runs.metadata."
                                     f"records_not_stored): {shown}{more}"]
    return Conversion(kind=kind, status="ingested", reason=None, records=records, conversions=conversions,
                      categories=categories)


def _convert_runner(doc: dict, path: str, sha256: str, runner) -> Conversion:
    read = runner.runner_reader()
    if read is None:
        return Conversion(kind="runner", status="failed", reason="runner format reader missing")
    from benchmark_db.errors import BenchmarkDBError

    try:
        records = list(read(doc, path, sha256) or [])
    except BenchmarkDBError as exc:  # the reader's verdict on a malformed runner document
        return Conversion(kind="runner", status="failed", reason=f"runner document rejected: {exc.message}")
    except Exception as exc:  # a reader bug: this file fails, the ingest goes on
        return Conversion(kind="runner", status="failed",
                          reason=f"runner format reader error: {type(exc).__name__}: {str(exc)[:300]}")
    if not records:
        return Conversion(kind="runner", status="skipped", reason="runner document without results")
    categories = {_TABLE_CATEGORY[r.TABLE] for r in records if r.TABLE in _TABLE_CATEGORY}
    return Conversion(kind="runner", status="ingested", records=records, categories=categories)


def source_run_id(sha256: str) -> int:
    """The run id every record of the document with this hash carries."""
    return stable_id("source", sha256)

"""Value normalisation for ingested documents: numbers, units, timestamps, names, simulation markers.

Pure functions over single values; they never raise on odd input and never invent a value: what cannot be
read is None. The converter (`benchmark_db.convert`) and the shape readers in `benchmark_db.shapes` use them;
this module knows nothing about documents or tables.
"""
from __future__ import annotations

import datetime as dt
import functools
import math
import re

from benchmark_db.names import HARDWARE_TYPES, normalize_hardware_type

_isfinite = math.isfinite
_EPOCH = dt.datetime(1970, 1, 1)
_MIN_EPOCH_S = 946684800      # 2000-01-01: a smaller number is not a timestamp of a benchmark
_MAX_EPOCH_S = 4102444800     # 2100-01-01
_STAMP_RE = re.compile(r"(?<!\d)(20\d\d)(\d\d)(\d\d)_(\d\d)(\d\d)(\d\d)(?!\d)")
_DATE_RE = re.compile(r"(?<!\d)(20\d\d)(\d\d)(\d\d)(?!\d)")

# names that stand for "no model" rather than naming one
_PLACEHOLDER_MODELS = {"", "unknown", "test", "none", "null", "n/a", "na", "model", "default", "undefined",
                       "test_model", "dummy", "placeholder", "?"}


def to_float(value) -> float | None:
    """A finite float from a number or a numeric string; None for bools, NaN, inf and anything else."""
    kind = type(value)
    if kind is float:  # the common cases first: plain floats and ints (bool is its own type)
        return value if _isfinite(value) else None
    if kind is int:
        try:
            return float(value)  # finite, or OverflowError
        except OverflowError:
            return None
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        try:
            f = float(value)
        except OverflowError:
            return None
        return f if math.isfinite(f) else None
    if isinstance(value, str):
        text = value.strip()
        if not text or len(text) > 40:
            return None
        try:
            f = float(text)
        except ValueError:
            return None
        return f if math.isfinite(f) else None
    return None


def positive(value) -> float | None:
    """A measurement: > 0, else None (0 in the legacy files stands for 'not measured')."""
    f = to_float(value)
    return f if f is not None and f > 0 else None


def to_int(value) -> int | None:
    """A whole number (1, 1.0, '8'); None for fractions, bools, out-of-range values and text."""
    f = to_float(value)
    if f is None or f != int(f) or abs(f) > 2**31 - 1:
        return None
    return int(f)


def to_bool(value) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("true", "yes", "y", "1", "success", "passed", "pass", "ok"):
            return True
        if text in ("false", "no", "n", "0", "failed", "fail", "error"):
            return False
    return None


def text_or_none(value, limit: int = 10_000) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        return text[:limit] if text else None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return None


# ---------------------------------------------------------------------------------------------- timestamps
def parse_timestamp(value) -> dt.datetime | None:
    """A naive UTC datetime from ISO text (with or without Z or an offset), '%Y-%m-%d %H:%M:%S',
    'YYYYMMDD_HHMMSS', or epoch seconds/milliseconds; None when the value is not a plausible time."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return _from_epoch(float(value))
    if not isinstance(value, str):
        return None
    if type(value) is str and len(value) <= 80:
        return _parse_timestamp_text(value)  # a pure function of the text, which recurs within a file
    return _parse_timestamp_text.__wrapped__(value)


@functools.lru_cache(maxsize=4096)
def _parse_timestamp_text(value: str) -> dt.datetime | None:
    text = value.strip()
    if not text or len(text) > 64:
        return None
    if text[0].isdigit() and len(text) >= 8:
        match = _STAMP_RE.fullmatch(text)
        if match:
            return _from_parts(match.groups())
        if text.replace(".", "", 1).isdigit():
            return _from_epoch(float(text))
    iso = text[:-1] + "+00:00" if text[-1] in "Zz" else text
    try:
        parsed = dt.datetime.fromisoformat(iso)
    except ValueError:
        parsed = None
        for fmt in ("%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y/%m/%d", "%a %b %d %H:%M:%S %Y"):
            try:
                parsed = dt.datetime.strptime(text, fmt)
                break
            except ValueError:
                continue
        if parsed is None:
            parsed = _slashed_date(text)
        if parsed is None:
            return None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(dt.UTC).replace(tzinfo=None)
    if not 2000 <= parsed.year < 2100:
        return None
    return parsed


# '13/02/2024', '13.02.2024', with or without a time of day
_SLASHED_RE = re.compile(r"(\d{1,2})([/.])(\d{1,2})\2(\d{4})(?:[ T](\d{1,2}):(\d\d)(?::(\d\d)(?:\.(\d{1,6}))?)?)?")


def _slashed_date(text: str) -> dt.datetime | None:
    """'13/02/2024 10:00' (day first) or '02/13/2024 10:00' (month first); None when both readings are
    possible ('01/02/2024': 1 February or 2 January), rather than guessing one."""
    match = _SLASHED_RE.fullmatch(text)
    if not match:
        return None
    first, _, second, year, hour, minute, sec, frac = match.groups()
    first, second = int(first), int(second)
    if first > 12 >= second:
        day, month = first, second
    elif second > 12 >= first or first == second:
        day, month = second, first
    else:
        return None
    try:
        return dt.datetime(int(year), month, day, int(hour or 0), int(minute or 0), int(sec or 0),
                           int((frac or "0").ljust(6, "0")))
    except ValueError:
        return None


# A time of day followed by a zone: 'Z', '+05:30', '-0800', 'UTC', 'GMT'.
_ZONED_RE = re.compile(r"\d:\d\d(?::\d\d(?:[.,]\d+)?)?\s*(?:[Zz]|[+-]\d\d(?::?\d\d)?|UTC|GMT)$")
_TIME_OF_DAY_RE = re.compile(r"\d:\d\d|(?<!\d)20\d{6}_\d{6}(?!\d)")


def written_as_local_time(value) -> bool:
    """True for a time written as text with a time of day and no zone ('2025-02-28T08:10:21',
    '20250228_081033'): the clock time of the machine that wrote it, in whatever zone that machine was set to.
    Epoch numbers, zoned text and bare dates are False."""
    if type(value) is not str:
        return False
    text = value.strip()
    return _TIME_OF_DAY_RE.search(text) is not None and _ZONED_RE.search(text) is None


def _from_epoch(seconds: float) -> dt.datetime | None:
    if not math.isfinite(seconds):
        return None
    if seconds > _MAX_EPOCH_S * 1_000_000:  # nanoseconds (time.time_ns(), perf counters' wall stamps)
        seconds /= 1_000_000_000
    elif seconds > _MAX_EPOCH_S * 1000:  # microseconds
        seconds /= 1_000_000
    elif seconds > _MAX_EPOCH_S:       # milliseconds
        seconds /= 1000
    if not _MIN_EPOCH_S <= seconds < _MAX_EPOCH_S:
        return None
    return _EPOCH + dt.timedelta(seconds=seconds)


def _from_parts(groups) -> dt.datetime | None:
    try:
        return dt.datetime(*(int(g) for g in groups))
    except ValueError:
        return None


def timestamp_from_path(path: str | None) -> dt.datetime | None:
    """The last YYYYMMDD_HHMMSS stamp in a path (file names first win over folder names)."""
    if not path:
        return None
    if type(path) is str:
        # a stamp never spans a '/', so the file name's last stamp wins, else the folder's (cached: the
        # files of one folder share it)
        cut = path.rfind("/")
        if cut >= 0:
            return _last_stamp(path[cut + 1:]) or _folder_stamp(path[:cut])
    return _last_stamp(path)


def _last_stamp(path: str) -> dt.datetime | None:
    found = _STAMP_RE.findall(path)
    for groups in reversed(found):
        stamp = _from_parts(groups)
        if stamp is not None:
            return stamp
    return None


_folder_stamp = functools.lru_cache(maxsize=4096)(_last_stamp)


# ---------------------------------------------------------------------------------------------- units
_TIME_FACTOR_MS = {"ms": 1.0, "s": 1000.0, "us": 0.001, "ns": 0.000001, "min": 60000.0}
_UNIT_ALIASES = {"ms": "ms", "msec": "ms", "millisecond": "ms", "milliseconds": "ms", "s": "s", "sec": "s",
                 "secs": "s", "second": "s", "seconds": "s", "us": "us", "\u00b5s": "us", "\u03bcs": "us",
                 "usec": "us", "usecs": "us", "microsecond": "us", "microseconds": "us", "ns": "ns", "nsec": "ns",
                 "nanosecond": "ns", "nanoseconds": "ns", "min": "min", "minute": "min", "minutes": "min",
                 "msecs": "ms"}  # µs: the micro sign and the Greek mu, which look alike


def time_unit(text) -> str | None:
    if not isinstance(text, str):
        return None
    return _UNIT_ALIASES.get(text.strip().lower())


def to_ms(value, unit: str | None) -> float | None:
    f = to_float(value)
    if f is None or unit not in _TIME_FACTOR_MS:
        return None
    return f * _TIME_FACTOR_MS[unit]


_MEMORY_FACTOR_MB = {"mb": 1.0, "mib": 1.0, "gb": 1024.0, "gib": 1024.0, "tb": 1048576.0, "tib": 1048576.0,
                     "kb": 1 / 1024, "kib": 1 / 1024, "b": 1 / 1048576, "byte": 1 / 1048576, "bytes": 1 / 1048576}


def memory_to_mb(value, unit: str | None) -> float | None:
    f = to_float(value)
    factor = _MEMORY_FACTOR_MB.get(unit.strip().lower()) if isinstance(unit, str) else None
    if f is None or factor is None:
        return None
    return f * factor


# a figure written as text with its unit ("12.5 ms", "850 µs", "1.5 GB", "120 samples/sec"): the number, then
# one unit of the dimension the key measures; anything else ("fast", "N/A", "12.5 furlongs") is not a figure
_TEXT_FIGURE_RE = re.compile(r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(\S.*?)")
_TEXT_RATE_RE = re.compile(r"(?:(?:items?|samples?|it|its|iters?|iterations?|images?|imgs?|sequences?|seqs?"
                           r"|inferences?|predictions?|queries|query)\s*)?(?:/|per\s+)\s*(s|sec|secs|second|ms)")
_RATE_FACTOR = {"s": 1.0, "sec": 1.0, "secs": 1.0, "second": 1.0, "ms": 1000.0}


def figure_from_text(value: str, dimension: str) -> tuple[float, str] | None:
    """A figure written as text with its unit, in the column's unit: `dimension` 'time' -> (ms, unit read:
    'ms', 's', 'us', 'ns' or 'min'), 'memory' -> (MB, unit read, lower case), 'throughput' -> (items/s, unit
    as written, lower case). None when the text is not a number followed by a unit of that dimension."""
    if len(value) > 60:
        return None
    match = _TEXT_FIGURE_RE.fullmatch(value.strip())
    if match is None:
        return None
    number, unit = match.groups()
    unit = unit.lower()
    if dimension == "time":
        unit = _UNIT_ALIASES.get(unit)
        factor = _TIME_FACTOR_MS.get(unit) if unit else None
    elif dimension == "memory":
        factor = _MEMORY_FACTOR_MB.get(unit)
    elif dimension == "throughput":
        rate = _TEXT_RATE_RE.fullmatch(unit)
        factor = _RATE_FACTOR[rate.group(1)] if rate else None
    else:
        factor = None
    if factor is None:
        return None
    f = float(number) * factor
    return (f, unit) if _isfinite(f) else None


# ---------------------------------------------------------------------------------------------- shapes of keys
_BATCH_KEY_RE = re.compile(r"^(?:batch|bs|b)[_-]?(?:size[_-]?)?(\d{1,6})(?:[_-]+(.*))?$")
_SEQ_PART_RE = re.compile(r"(?:^|[_-])(?:seq|sequence|seqlen|seq_len|sl|len|length)[_-]?(?:len(?:gth)?[_-]?)?"
                          r"(\d{1,7})(?=$|[_-])")


def batch_seq_from_key(key: str) -> tuple[int | None, int | None, str | None] | None:
    """`batch_1_seq_128` -> (1, 128, None); `bs4` -> (4, None, None); `batch_8_img_224x224` -> (8, None,
    'img_224x224'); None if the key does not start with a batch size."""
    if not isinstance(key, str) or len(key) > 60:
        return None
    match = _BATCH_KEY_RE.match(key.strip().lower())
    if not match:
        return None
    rest = match.group(2) or ""
    seq = None
    seq_match = _SEQ_PART_RE.search(rest)
    if seq_match:
        seq = int(seq_match.group(1))
        rest = (rest[:seq_match.start()] + rest[seq_match.end():]).strip("_-")
    return int(match.group(1)), seq, (rest or None)


def known_hardware(value) -> str | None:
    """The canonical hardware type of `value` if it names one we know (`CUDA`, `cuda:0`, `gpu`, `Apple`), else
    None: free text such as an OS platform string is not a hardware type."""
    if not isinstance(value, str) or not value or len(value) > 40:
        return None
    return _known_hardware(value)


@functools.lru_cache(maxsize=8192)
def _known_hardware(value: str) -> str | None:
    kind = normalize_hardware_type(value)
    if kind in HARDWARE_TYPES:
        return kind
    return _EXTRA_HARDWARE.get(kind)


# spellings seen in the legacy files beyond names.py's aliases
_EXTRA_HARDWARE = {"apple_mps": "mps", "apple_silicon_mps": "mps", "silicon": "mps", "web_gpu": "webgpu",
                   "web_nn": "webnn", "openvino_cpu": "openvino", "cuda_device": "cuda", "nvidia_gpu": "cuda",
                   "qualcomm_ai": "qualcomm", "snapdragon": "qualcomm", "rocm_gpu": "rocm",
                   # accelerators beyond the guide's eight, stored under their own names (a result on them was
                   # dropped as having "no hardware type")
                   "tpu": "tpu", "xpu": "xpu", "intel_gpu": "xpu", "hpu": "hpu", "gaudi": "hpu", "habana": "hpu",
                   "npu": "npu", "intel_npu": "npu"}


def clean_model_name(value) -> str | None:
    """A model name worth storing, or None for placeholders ('unknown', 'test', '', temp paths)."""
    if not isinstance(value, str) or len(value) > 300:
        return None
    return _clean_model_name(value)


@functools.lru_cache(maxsize=8192)
def _clean_model_name(value: str) -> str | None:
    name = value.strip()
    if len(name) > 300 or name.lower() in _PLACEHOLDER_MODELS:
        return None
    if name.startswith(("/tmp/", "/var/tmp/", "tmp/")) or name.lower().endswith(("_test_model", "-test-model")):
        return None
    if "\n" in name:
        return None
    if name[:2] == "::" or name[:1] == "<" and name[-1:] == ">":  # '::simple_model::', '<model>': stand-ins
        return None
    return name


_SIM_WORDS = ("MOCK", "SIMULAT", "EMULAT", "FAKE")


def names_simulation(value) -> bool:
    """True when a marker value says the result is simulated or mocked."""
    if value is True:
        return True
    if isinstance(value, str) and len(value) <= 200:
        return _names_simulation(value)
    if isinstance(value, str):
        upper = value.upper()
        return any(word in upper for word in _SIM_WORDS)
    return False


@functools.lru_cache(maxsize=4096)
def _names_simulation(value: str) -> bool:
    upper = value.upper()
    return any(word in upper for word in _SIM_WORDS)


def normalize_precision(value) -> str | None:
    if not isinstance(value, str):
        return None
    text = value.strip().lower().replace("torch.", "")
    aliases = {"float32": "fp32", "float": "fp32", "float16": "fp16", "half": "fp16", "bfloat16": "bf16",
               "int8": "int8", "qint8": "int8", "int4": "int4", "float64": "fp64", "double": "fp64"}
    text = aliases.get(text, text)
    return text or None

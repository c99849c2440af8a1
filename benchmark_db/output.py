"""Render tabular results in the formats every tool offers: table, json, csv, markdown, html.

Takes a pandas DataFrame or a list of dicts. pandas is imported only when a DataFrame has to be built, so
importing this module stays cheap.

Numbers stay exact: a Python int of any size (HUGEINT) and a decimal.Decimal (DECIMAL) are written with all
their digits, in JSON as numbers. Missing and non-finite values: JSON writes null for None, NaN and
+/-infinity (JSON has no NaN or Infinity), and CSV likewise leaves the cell empty for all of them (a DataFrame
holds a NULL of a float column as NaN, so CSV could not tell the two apart anyway); the table and markdown
formats, read by people, show `inf`.
"""
from __future__ import annotations

import datetime as _dt
import decimal
import html
import json
import math


def _records(data) -> tuple[list[str], list[dict]]:
    if hasattr(data, "to_dict") and hasattr(data, "columns"):
        columns = [str(c) for c in data.columns]
        return columns, data.to_dict(orient="records")
    rows = list(data)
    columns: list[str] = []
    for row in rows:
        for key in row:
            if key not in columns:
                columns.append(key)
    return columns, rows


def _plain(value):
    """A JSON-safe version of a cell: NaN -> None, timestamps -> ISO text, numpy scalars -> Python."""
    if value is None or type(value).__name__ in ("NaTType", "NAType"):  # pandas' missing timestamp / value
        return None  # (before the isoformat test below: NaT.isoformat() is the text "NaT")
    if isinstance(value, (bytes, bytearray, memoryview)):  # a BLOB: bytearray(b'...') read as nothing useful
        return blob_text(value)
    if type(value).__name__ == "timedelta64":  # numpy's item() of nanoseconds is a bare int
        import numpy as np

        if np.isnat(value):
            return None
        value = _dt.timedelta(microseconds=int(value.astype("timedelta64[ns]").astype("int64")) / 1000)
    # numpy scalars only: an array's item() would turn a one-element list into its element
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0 and not isinstance(value, (list, dict, str, bytes)):
        try:
            value = value.item()
        except (ValueError, AttributeError):
            pass
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        value = value.tolist()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, _dt.timedelta):  # also pandas' Timedelta (a subclass): its isoformat is "P1DT0H0M0S"
        return interval_text(value)
    if isinstance(value, (_dt.datetime, _dt.date)):
        return value.isoformat()
    if hasattr(value, "isoformat"):
        try:
            return value.isoformat()
        except (ValueError, TypeError):
            return str(value)
    return value


BLOB_HEX_BYTES = 16  # a BLOB shows its first bytes in hex, then its size


def blob_text(value) -> str:
    """A BLOB as readable text: `0x78 (1 byte)`, `0x0001...ff... (1,234 bytes)` (the first BLOB_HEX_BYTES)."""
    data = bytes(value)
    size = f"{len(data):,} byte{'s' if len(data) != 1 else ''}"
    if not data:
        return f"<{size}>"
    head = data[:BLOB_HEX_BYTES].hex()
    return f"0x{head}{'...' if len(data) > BLOB_HEX_BYTES else ''} ({size})"


def interval_text(value) -> str:
    """A time span as DuckDB prints an INTERVAL: `1 day`, `3 days 04:05:06.5`, `25:00:00`, `-01:00:00`
    (a timedelta has no months: `--sql` casts INTERVAL columns to DuckDB's own text before this)."""
    if type(value).__name__ == "Timedelta":  # pandas: nanoseconds a datetime.timedelta cannot hold
        value = value.to_pytimedelta()
    sign = "-" if value < _dt.timedelta(0) else ""
    value = abs(value)
    days, seconds, micros = value.days, value.seconds, value.microseconds
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    clock = f"{hours:02d}:{minutes:02d}:{secs:02d}" + (f".{micros:06d}".rstrip("0") if micros else "")
    if not days:
        return sign + clock
    text = f"{sign}{days} day{'s' if days != 1 else ''}"
    return text if not (seconds or micros) else f"{text} {clock}"


def plain_records(frame) -> list[dict]:
    """`frame`'s rows as JSON-safe dicts (what `_plain` makes of each cell), converted a column at a time:
    on report-sized frames that is several times faster than converting cell by cell."""
    names = [str(c) for c in frame.columns]
    columns = []
    for position in range(len(names)):
        series = frame.iloc[:, position]
        kind = series.dtype.kind
        values = series.tolist()
        if kind in "iufb":
            if series.hasnans:  # NaN, or pandas' NA in a nullable integer, float or boolean column
                values = [None if v is None or type(v).__name__ == "NAType" or v != v else v for v in values]
        elif kind == "M":
            values = [v.isoformat() if v == v else None for v in values]  # NaT is unequal to itself
        else:
            values = [v if type(v) is str else _plain(v) for v in values]
        columns.append(values)
    return [dict(zip(names, row)) for row in zip(*columns)]


def decimal_text(value: decimal.Decimal) -> str:
    """A finite Decimal's digits in plain notation, as DuckDB prints a DECIMAL: `0.000000000` and `0.000000100`
    where str() gave `0E-9` and `1.00E-7` (both valid JSON numbers, but not what a person or a spreadsheet
    expects). Always a valid JSON number, exact, with the trailing zeros of the column's scale."""
    return format(value, "f")


def dumps(value) -> str:
    """JSON text, indented by two spaces (orjson: the report renderers' hot path)."""
    import orjson

    return orjson.dumps(value, default=str, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode()


def _cell(value) -> str:
    value = _plain(value)
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}" if abs(value) < 1e15 else f"{value:.6e}"
    if isinstance(value, (list, dict)):
        text = exact_json_dumps(value)
        return text if len(text) <= 60 else text[:57] + "..."
    if isinstance(value, decimal.Decimal) and value.is_finite():
        return decimal_text(value)
    return str(value)


def _finite(value):
    """`value` with every infinite float as None, as NaN already is: json.dumps would write the bare word
    Infinity, which is not JSON (a parser such as jq's or JSON.parse refuses the whole document)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    return value


def exact_json_dumps(value, **options) -> str:
    """json.dumps, with every finite Decimal (also inside lists and dicts) written with all its digits as a
    JSON number: json writes a float's 17 digits at most and a Decimal not at all."""
    exact: dict[str, str] = {}  # placeholder -> the digits of a Decimal
    marker = None

    def number(value):  # a Decimal as a placeholder string, replaced by its digits below
        nonlocal marker
        if isinstance(value, decimal.Decimal):
            if not value.is_finite():
                return None
            if marker is None:
                import uuid

                marker = f"exact-{uuid.uuid4().hex}-"
            exact[key := f"{marker}{len(exact)}"] = decimal_text(value)
            return key
        if isinstance(value, list):
            return [number(v) for v in value]
        if isinstance(value, dict):
            return {k: number(v) for k, v in value.items()}
        return value

    text = json.dumps(number(_finite(value)), default=str, allow_nan=False, **options)
    if exact:
        import re

        text = re.sub(f'"({re.escape(marker)}[0-9]+)"', lambda m: exact[m.group(1)], text)
    return text


def to_json(data) -> str:
    columns, rows = _records(data)
    return exact_json_dumps([{c: _plain(r.get(c)) for c in columns} for r in rows], indent=2)


def to_csv(data) -> str:
    import csv
    import io

    columns, rows = _records(data)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_csv_cell(row.get(c)) for c in columns])
    return buffer.getvalue()


def _csv_cell(value):
    """One CSV cell: floats at full precision (repr: the shortest text that reads back the same: csv is for
    data), ints and Decimals with all their digits, nothing for None, NaN and +/-infinity (as JSON's null)."""
    value = _plain(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ""
    if isinstance(value, (list, dict)):
        return _cell(value)
    if isinstance(value, decimal.Decimal):
        return decimal_text(value) if value.is_finite() else ""
    return "" if value is None else value


def to_markdown(data) -> str:
    columns, rows = _records(data)
    if not columns:
        return "_no rows_\n"

    def md(text: str) -> str:  # one table cell: a | or a line break in the text would end it
        # and a "<" would start raw HTML: a model named "<b>x</b>" rendered bold, "<script>..." vanished
        # (GitHub drops the tag); "\\<" is CommonMark's escape and renders a plain "<"
        text = text.replace("<", "\\<")
        return text.replace("|", "\\|").replace("\r\n", "<br>").replace("\n", "<br>").replace("\r", "<br>")

    lines = ["| " + " | ".join(map(md, columns)) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(md(_cell(row.get(c))) for c in columns) + " |")
    if not rows:  # a bare header reads as a table that failed to print; the text format says "(0 rows)"
        lines += ["", "_no rows_"]  # (after a blank line: a line right under a table would be one of its rows)
    return "\n".join(lines) + "\n"


def _width(text: str) -> int:
    """Columns `text` takes on a terminal: wide (CJK) characters take two, combining marks none; len()
    counted one for each, which shifted every column after a name such as "モデル"."""
    if text.isascii():
        return len(text)
    import unicodedata

    return sum(0 if unicodedata.combining(ch) else 2 if unicodedata.east_asian_width(ch) in "WF" else 1
               for ch in text)


def to_table(data) -> str:
    columns, rows = _records(data)
    if not columns:
        return "(no rows)\n"
    cells = [[_cell(r.get(c)) for c in columns] for r in rows]
    widths = [max([_width(c)] + [_width(row[i]) for row in cells]) for i, c in enumerate(columns)]
    def line(values):
        return "  ".join(v + " " * (w - _width(v)) for v, w in zip(values, widths)).rstrip()
    out = [line(columns), line(["-" * w for w in widths])] + [line(row) for row in cells]
    out.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(out) + "\n"


def to_html_table(data, table_class: str = "results") -> str:
    columns, rows = _records(data)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = []
    for row in rows:
        tds = []
        for c in columns:
            value = _plain(row.get(c))
            numeric = isinstance(value, (int, float, decimal.Decimal)) and not isinstance(value, bool)
            attr = f' data-sort="{value}" class="num"' if numeric else ""
            tds.append(f"<td{attr}>{html.escape(_cell(value))}</td>")
        body.append("<tr>" + "".join(tds) + "</tr>")
    return (f'<table class="{table_class}"><thead><tr>{head}</tr></thead><tbody>' + "".join(body)
            + "</tbody></table>")


def to_html(data, title: str = "Benchmark results") -> str:
    return ("<!DOCTYPE html><html><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{html.escape(title)}</title></head><body><h1>{html.escape(title)}</h1>"
            + to_html_table(data) + "</body></html>\n")


RENDERERS = {"json": to_json, "csv": to_csv, "markdown": to_markdown, "table": to_table, "html": to_html}


def render(data, fmt: str) -> str:
    """`data` (DataFrame or list of dicts) as text in `fmt`."""
    return RENDERERS[fmt](data)


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """`1 problem`, `2 problems`, `1 file`, `0 fixes`: a count and its noun, for the summary lines of the tools."""
    return f"{count} {noun if count == 1 else plural or noun + 's'}"

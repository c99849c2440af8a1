"""Report builders: SQL over the benchmark tables -> pandas DataFrames, and the renderers of whole reports.

The query tool, the visualizer, the API and the demo all call these functions, so a number means the same
wherever it is shown, and every number is a plain SQL aggregate over `performance_results` and its dimension
tables (the tests recompute them with hand-written SQL). Simulated rows are left out unless a caller passes
`include_simulated=True`; when they are included they stay separate (`is_simulated` is a grouping key), so a
simulated number is never averaged into a measured one.

Emulated results (a software adapter such as Chromium's SwiftShader standing in for a GPU: real measurements of
an emulated device, flagged by `performance_results.is_emulated`) are included by default but
are a grouping key too: every table, pivot and chart shows them as `<hardware> (emulated)` (with an explicit
`is_emulated` column where the table has one), so they are never averaged with real devices of the same type.
A `--hardware webgpu` filter matches them: the filters see the plain hardware type.

This module imports pandas lazily (through DuckDB's `.df()`) and never matplotlib: charts live in
`benchmark_db.charts`, and only the HTML renderer imports them.
"""
from __future__ import annotations

import datetime as dt
import decimal
import html as _html
import re
from dataclasses import dataclass, field
from pathlib import Path

from benchmark_db.errors import QueryError, UsageError
from benchmark_db.names import normalize_hardware_type
from benchmark_db.schema import LATEST_INTEGRATION_ROW, dimension_joins

REPORT_KINDS = ("performance", "hardware", "compatibility", "integration", "summary")
REPORT_FORMATS = ("html", "markdown", "csv", "json", "table")


@dataclass(frozen=True)
class Metric:
    name: str
    column: str  # column of the filtered base query
    label: str
    unit: str
    higher_is_better: bool

    @property
    def prefix(self) -> str:
        return {"throughput": "throughput_items_per_s", "latency": "latency_ms", "memory": "memory_mb"}[self.name]

    @property
    def axis_label(self) -> str:
        return f"{self.label} ({self.unit})"


METRICS = {
    "throughput": Metric("throughput", "throughput", "Throughput", "items/s", True),
    "latency": Metric("latency", "latency_ms", "Latency", "ms", False),
    "memory": Metric("memory", "memory_mb", "Peak memory", "MB", False),
}


def is_missing(value) -> bool:
    """None, NaN, NaT or pandas' NA (which refuses to be compared)."""
    if value is None:
        return True
    try:
        import pandas as pd

        return bool(pd.isna(value)) if not isinstance(value, (list, tuple, dict)) else False
    except (TypeError, ValueError):
        return False


def get_metric(name: str | None) -> Metric:
    try:
        return METRICS[name or "throughput"]
    except KeyError:
        raise UsageError(f"unknown metric {name!r}", f"choose one of {', '.join(METRICS)}") from None


# ------------------------------------------------------------------------------------------------- filters
def _split(value) -> list[str]:
    if value is None:
        return []
    items = value if isinstance(value, (list, tuple)) else [value]
    out: list[str] = []
    for item in items:
        out.extend(part.strip() for part in str(item).split(",") if part.strip())
    return out


def parse_time(value, *, end: bool = False) -> dt.datetime | None:
    """An ISO date or date-time (UTC). A bare date as an end bound means the end of that day."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None) if value.tzinfo is None else \
            value.astimezone(dt.UTC).replace(tzinfo=None)
    if isinstance(value, dt.date):
        day = dt.datetime(value.year, value.month, value.day)
        return day + dt.timedelta(days=1) if end else day
    text = str(value).strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            day = dt.datetime.fromisoformat(text)
            return day + dt.timedelta(days=1) if end else day
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"cannot read {text!r} as a date", "use YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS (UTC)") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
    return moment


@dataclass
class ReportFilters:
    """What a report or chart is restricted to. Lists accept comma-separated text too (`cpu,cuda`)."""

    model: list[str] = field(default_factory=list)
    model_family: list[str] = field(default_factory=list)
    hardware: list[str] = field(default_factory=list)
    batch_size: list[int] = field(default_factory=list)
    precision: list[str] = field(default_factory=list)
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    include_simulated: bool = False

    @classmethod
    def make(cls, *, model=None, model_family=None, hardware=None, batch_size=None, precision=None,
             since=None, until=None, include_simulated: bool = False) -> ReportFilters:
        batches = []
        for item in _split(batch_size):
            try:
                batches.append(int(item))
            except ValueError:
                raise UsageError(f"batch size {item!r} is not a whole number", "pass e.g. --batch-size 1,8") from None
        since_t, until_t = parse_time(since), parse_time(until, end=True)
        if since_t and until_t and since_t >= until_t:
            # equal moments select nothing (--until is exclusive): swapping them would not help
            raise UsageError(f"--since {since} is not before --until {until}",
                             "swap the two dates" if since_t > until_t else
                             "--until is exclusive: pass a later --until (a bare date includes that day)")
        return cls(model=_split(model), model_family=[f.lower() for f in _split(model_family)],
                   hardware=[normalize_hardware_type(h) for h in _split(hardware)], batch_size=batches,
                   precision=[p.lower() for p in _split(precision)], since=since_t, until=until_t,
                   include_simulated=bool(include_simulated))

    @classmethod
    def from_args(cls, args) -> ReportFilters:
        return cls.make(model=getattr(args, "model", None), model_family=getattr(args, "model_family", None),
                        hardware=getattr(args, "hardware", None), batch_size=getattr(args, "batch_size", None),
                        precision=getattr(args, "precision", None), since=getattr(args, "since", None),
                        until=getattr(args, "until", None),
                        include_simulated=getattr(args, "include_simulated", False))

    def without(self, *names: str) -> ReportFilters:
        values = {k: getattr(self, k) for k in self.__dataclass_fields__}
        for name in names:
            values[name] = [] if isinstance(values[name], list) else (False if name == "include_simulated"
                                                                      else None)
        return ReportFilters(**values)

    def with_simulated(self) -> ReportFilters:
        return ReportFilters(**{**{k: getattr(self, k) for k in self.__dataclass_fields__},
                                "include_simulated": True})

    def has_any(self) -> bool:
        return bool(self.model or self.model_family or self.hardware or self.batch_size or self.precision
                    or self.since or self.until)

    def describe(self) -> str:
        """The filters as the options that set them, e.g. `--model bert-base-uncased --hardware cuda`."""
        parts = []
        for flag, values in (("--model", self.model), ("--model-family", self.model_family),
                             ("--hardware", self.hardware), ("--batch-size", [str(b) for b in self.batch_size]),
                             ("--precision", self.precision)):
            if values:
                parts.append(f"{flag} {','.join(values)}")
        if self.since:
            parts.append(f"--since {self.since.isoformat(sep=' ')}")
        if self.until:
            parts.append(f"--until {self.until.isoformat(sep=' ')} (exclusive)")
        parts.append("simulated results included" if self.include_simulated else "simulated results excluded")
        return " ".join(parts[:-1]) + ("; " if len(parts) > 1 else "") + parts[-1]

    def to_dict(self) -> dict:
        return {"model": self.model, "model_family": self.model_family, "hardware": self.hardware,
                "batch_size": self.batch_size, "precision": self.precision,
                "since": self.since.isoformat() if self.since else None,
                "until": self.until.isoformat() if self.until else None,
                "include_simulated": self.include_simulated}

    def where(self, *, model="model", family="model_family", hardware="hardware", batch="batch_size",
              precision="precision", created="created_at", simulated="is_simulated") -> tuple[str, list]:
        """A SQL condition (`TRUE` when nothing is filtered) and its parameters; pass None to skip a column."""
        clauses: list[str] = []
        params: list = []
        if self.model and model:
            ors = []
            for name in self.model:
                if "*" in name or "%" in name:
                    # * and % are the wildcards; a "_" is a plain character (model names are full of them),
                    # not LIKE's any-one-character
                    ors.append(f"{model} ILIKE ? ESCAPE '\\'")
                    params.append(name.replace("\\", "\\\\").replace("_", "\\_").replace("*", "%"))
                else:  # exact name, or the name without its organisation (whisper-tiny = openai/whisper-tiny)
                    # ends_with, not LIKE '%/' || name: the "_" of vit_base matched the "-" of google/vit-base
                    ors.append(f"(lower({model}) = lower(?) OR ends_with(lower({model}), '/' || lower(?)))")
                    params.extend([name, name])
            clauses.append("(" + " OR ".join(ors) + ")")
        if self.model_family and family:
            clauses.append(f"lower({family}) IN ({', '.join('?' for _ in self.model_family)})")
            params.extend(self.model_family)
        if self.hardware and hardware:
            clauses.append(f"{hardware} IN ({', '.join('?' for _ in self.hardware)})")
            params.extend(self.hardware)
        if self.batch_size and batch:
            clauses.append(f"{batch} IN ({', '.join('?' for _ in self.batch_size)})")
            params.extend(self.batch_size)
        if self.precision and precision:
            clauses.append(f"lower({precision}) IN ({', '.join('?' for _ in self.precision)})")
            params.extend(self.precision)
        if self.since and created:
            clauses.append(f"{created} >= ?")
            params.append(self.since)
        if self.until and created:
            clauses.append(f"{created} < ?")
            params.append(self.until)
        if not self.include_simulated and simulated:
            clauses.append(f"NOT COALESCE({simulated}, false)")
        return (" AND ".join(clauses) or "TRUE"), params


# ------------------------------------------------------------------------------------------- base queries
def emulated_sql(alias: str = "pr") -> str:
    """SQL: whether the performance result `alias` ran on an emulated device. A column of its own (schema
    version 5), not the flag in the metrics JSON: reading that whole column made the first report after
    each write about three times slower."""
    return f"COALESCE({alias}.is_emulated, false)"


EMULATED_SUFFIX = " (emulated)"


def hardware_label(hardware, emulated) -> str | None:
    """`webgpu (emulated)` for an emulated result's hardware type, else the type unchanged."""
    if is_missing(emulated) or not emulated:
        return hardware
    name = "unknown" if is_missing(hardware) else str(hardware)
    return name if name.endswith(EMULATED_SUFFIX) else name + EMULATED_SUFFIX


def hardware_label_sql(hardware: str, emulated: str) -> str:
    return f"CASE WHEN {emulated} THEN COALESCE({hardware}, 'unknown') || '{EMULATED_SUFFIX}' ELSE {hardware} END"


# One row per performance result with the names resolved from the dimension tables (the same resolution
# as the benchmark_performance view) plus the raw latency samples the view leaves out.
PERF_BASE = """
SELECT pr.result_id, pr.run_id,
       COALESCE(m.model_name, pr.model_name) AS model, m.model_family,
       COALESCE(hp.hardware_type, pr.hardware_type) AS hardware, hp.device_name AS device,
       pr.test_case, pr.batch_size, pr.sequence_length, pr.precision,
       pr.throughput_items_per_second AS throughput, pr.average_latency_ms AS latency_ms,
       pr.memory_peak_mb AS memory_mb, pr.latency_samples_ms AS samples,
       COALESCE(pr.is_simulated, false) AS is_simulated, {emulated} AS is_emulated, pr.created_at
FROM performance_results pr
""".replace("{emulated}", emulated_sql("pr")) + dimension_joins("pr") + "\n"


def _filtered_base(filters: ReportFilters) -> tuple[str, list]:
    condition, params = filters.where()
    return f"SELECT * FROM ({PERF_BASE}) base WHERE {condition}", params


def _df(conn, sql: str, params: list | None = None):
    import duckdb

    try:
        return conn.execute(sql, params or []).df()
    except duckdb.Error as exc:
        raise QueryError(f"report query failed: {exc}", "check the database with benchmark_db_maintenance.py "
                                                        "--check-integrity") from exc


def _sim_key(filters: ReportFilters) -> str:
    return ", is_simulated" if filters.include_simulated else ""


# ------------------------------------------------------------------------------------------------ reports
_METRIC_SOURCE = {"throughput": "pr.throughput_items_per_second", "latency": "pr.average_latency_ms",
                  "memory": "pr.memory_peak_mb"}


def performance_table(conn, filters: ReportFilters, metric: str | None = None, *, with_sums: bool = False,
                      summary=None):
    """One row per model, hardware, device, test case, batch size, sequence length and precision: counts and
    plain aggregates. Test case and sequence length are keys because results that differ in them measure
    different work (an optimum-benchmark file's `load_model`, `first_forward` and `forward`; 224 and 384 pixel
    images): pooled, their mean described none of them.

    Aggregates on the integer ids of `performance_results` first and names the (few) groups afterwards:
    on a million rows that is several times faster than grouping the joined names. Ids come from the
    natural keys, so one model id is one model name and one hardware id one (type, device) pair.
    `with_sums` adds `_sum_<metric>` and `_n_<metric>` columns from which coarser means are derived exactly.
    `summary` (from `report_summary`) holds those aggregates already and replaces the scan of the table.
    """
    outer = {
        "throughput": ["_sum_throughput / _n_throughput AS throughput_items_per_s_mean",
                       "throughput_items_per_s_max"],
        "latency": ["_sum_latency / _n_latency AS latency_ms_mean", "latency_ms_min", "latency_ms_max"],
        "memory": ["memory_mb_max"],
    }
    names = [get_metric(metric).name] if metric else list(outer)
    shown = [c for name in names for c in outer[name]]
    hidden = [f"_sum_{n}, _n_{n}" for n in METRICS] if with_sums else []
    sim = _sim_key(filters)
    order = (f"ORDER BY model, hardware, device NULLS FIRST, test_case NULLS FIRST, batch_size NULLS FIRST, "
             f"sequence_length NULLS FIRST, precision NULLS FIRST{sim}, is_emulated")
    if summary is not None:
        cond, params = filters.where(
            model="COALESCE(model_name, fallback_model)", family="model_family",
            hardware="COALESCE(hardware_type, fallback_hardware)", batch="batch_size", precision="precision",
            created=None, simulated="is_simulated")
        conn.register("_report_summary", summary)
        try:
            return _df(conn, f"""
                SELECT COALESCE(model_name, fallback_model) AS model, model_family,
                       {hardware_label_sql("COALESCE(hardware_type, fallback_hardware)", "is_emulated")} AS hardware,
                       device_name AS device, test_case, batch_size, sequence_length, precision{sim},
                       is_emulated, results,
                       {", ".join(shown + hidden)}, last_result_at
                FROM _report_summary WHERE {cond} {order}""", params)
        finally:
            conn.unregister("_report_summary")

    inner = {
        "throughput": ["max(pr.throughput_items_per_second) AS throughput_items_per_s_max"],
        "latency": ["min(pr.average_latency_ms) AS latency_ms_min", "max(pr.average_latency_ms) AS latency_ms_max"],
        "memory": ["max(pr.memory_peak_mb) AS memory_mb_max"],
    }
    # means are sum / count (what avg() computes), so the sums serve the coarser pivot too
    sums = list(METRICS) if with_sums else names
    chosen = [c for name in names for c in inner[name]] + [
        f"sum({_METRIC_SOURCE[n]}) AS _sum_{n}, count({_METRIC_SOURCE[n]}) AS _n_{n}" for n in sums if n != "memory"
        or with_sums]
    needs_names = bool(filters.model or filters.model_family or filters.hardware)
    joins = dimension_joins("pr") if needs_names else ""
    cond, params = filters.where(model="COALESCE(m.model_name, pr.model_name)", family="m.model_family",
                                 hardware="COALESCE(hp.hardware_type, pr.hardware_type)", batch="pr.batch_size",
                                 precision="pr.precision", created="pr.created_at", simulated="pr.is_simulated")
    sim_inner = ", COALESCE(pr.is_simulated, false) AS is_simulated" if filters.include_simulated else ""
    sim_inner += f", {emulated_sql('pr')} AS is_emulated"  # a key: never averaged with real devices
    sql = f"""
        WITH agg AS (
            SELECT pr.model_id, pr.hardware_id, pr.test_case, pr.batch_size, pr.sequence_length,
                   pr.precision{sim_inner},
                   any_value(pr.model_name) AS fallback_model, any_value(pr.hardware_type) AS fallback_hardware,
                   count(*) AS results, {', '.join(chosen)}, max(pr.created_at) AS last_result_at
            FROM performance_results pr {joins}
            WHERE {cond}
            GROUP BY ALL)
        SELECT COALESCE(m.model_name, agg.fallback_model) AS model, m.model_family,
               {hardware_label_sql("COALESCE(hp.hardware_type, agg.fallback_hardware)", "agg.is_emulated")} AS hardware,
               hp.device_name AS device, agg.test_case, agg.batch_size, agg.sequence_length,
               agg.precision{sim.replace(", ", ", agg.")},
               agg.is_emulated, agg.results,
               {", ".join(shown + hidden)}, agg.last_result_at
        FROM agg
        {dimension_joins("agg")}
        {order}"""
    return _df(conn, sql, params)


def report_summary(conn, filters: ReportFilters):
    """The cached per-configuration summary (benchmark_db.summary_cache) when it can answer `filters`, else None.

    It cannot when a time filter needs the individual rows, or when a group's model or hardware id has no
    dimension row: then a name filter must see each row's own name, as the direct query does.
    """
    import pyarrow.compute as pc

    from benchmark_db import summary_cache

    if filters.since or filters.until:
        return None
    summary = summary_cache.performance_summary(conn)
    return summary if summary.num_rows == 0 or pc.all(summary["named"]).as_py() else None


def pivot_by_hardware(table, metric: str | None = "throughput"):
    """Pivot of a `performance_table(..., with_sums=True)`: one row per model, test case, batch size and sequence
    length, one column per hardware type, cells = mean of the metric over all its results (sum / count, the SQL
    avg). A hardware type measured at more than one precision has a column per precision (`cpu fp16`,
    `cpu fp32`): its fp16 and fp32 results were averaged into a figure measured at neither. Simulated results (when the table has `is_simulated`) get columns of their own,
    `<hardware> (simulated)`, and so do emulated ones (`is_emulated`), `<hardware> (emulated)`.

    Plain Python over the few hundred configuration rows: pandas' groupby + unstack costs more than the
    whole cached report."""
    import numpy as np
    import pandas as pd

    m = get_metric(metric)
    if table.empty:
        return table.iloc[:, :0]

    def key(value):  # pandas gives NaN or NA for a missing key; None compares equal to itself
        return None if pd.isna(value) else value

    totals: dict = {}
    simulated = (table["is_simulated"].fillna(False).astype(bool).tolist() if "is_simulated" in table
                 else [False] * len(table))
    emulated = (table["is_emulated"].fillna(False).astype(bool).tolist() if "is_emulated" in table
                else [False] * len(table))
    # test case and sequence length are keys where the table has them (a table built elsewhere may not)
    row_keys = tuple(k for k in ("model", "test_case", "batch_size", "sequence_length")
                     if k in table or k in ("model", "batch_size"))
    precisions = table["precision"].tolist() if "precision" in table else [None] * len(table)
    measured_at: dict = {}
    for hardware, precision in zip(table["hardware"].tolist(), precisions):
        measured_at.setdefault(key(hardware), set()).add(key(precision))
    for *row, hardware, precision, total, count, sim, emu in zip(*(table[c].tolist() for c in (
            *row_keys, "hardware")), precisions, *(table[c].tolist() for c in (
            f"_sum_{m.name}", f"_n_{m.name}")), simulated, emulated):
        if pd.isna(count) or not count:
            continue
        if len(measured_at[key(hardware)]) > 1:  # `cpu fp16` and `cpu fp32`, `webgpu fp32 (emulated)`
            name = "unknown" if key(hardware) is None else str(hardware)
            if name.endswith(EMULATED_SUFFIX):
                name, emu = name[:-len(EMULATED_SUFFIX)], True
            hardware = name + ("" if key(precision) is None else f" {precision}")
        if emu:  # an emulated device is not the real one: a column of its own (labelled once)
            hardware = hardware_label(key(hardware), True)
        if sim:  # a column of its own: a simulated number is never averaged into a measured one
            hardware = f"{'unknown' if key(hardware) is None else hardware} (simulated)"
        cell = totals.setdefault(tuple(key(v) for v in row), {}).setdefault(key(hardware), [0.0, 0])
        cell[0] += total
        cell[1] += count
    if not totals:
        return table.iloc[:0, :0]

    def last_if_none(value):
        return (value is None, value if value is not None else 0)

    hardware_columns = sorted({h for cells in totals.values() for h in cells}, key=last_if_none)
    ordered = sorted(totals.items(), key=lambda item: tuple(last_if_none(v) for v in item[0]))
    columns = {name: [row[i] for row, _ in ordered] for i, name in enumerate(row_keys)}
    for name in ("batch_size", "sequence_length"):  # whole numbers (a None among them made them floats: 32.0)
        if name in columns:
            columns[name] = pd.array(columns[name], dtype="Int64")
    for h in hardware_columns:
        columns[h] = np.array([cells[h][0] / cells[h][1] if h in cells else np.nan for _, cells in ordered],
                              dtype="float64")
    return pd.DataFrame(columns)


def hardware_table(conn, filters: ReportFilters):
    """One row per hardware platform: what it is and how much was measured on it."""
    base, params = _filtered_base(filters.without("hardware"))
    hw_cond, hw_params = filters.where(model=None, family=None, batch=None, precision=None, created=None,
                                       simulated=None, hardware="hp.hardware_type")
    sql = f"""
        WITH r AS (
            SELECT hardware, device, count(*) AS results, count(DISTINCT model) AS models,
                   count(DISTINCT run_id) AS runs, count(*) FILTER (WHERE is_simulated) AS simulated_results,
                   count(*) FILTER (WHERE is_emulated) AS emulated_results,
                   min(created_at) AS first_result_at, max(created_at) AS last_result_at
            FROM ({base}) b GROUP BY hardware, device)
        SELECT hp.hardware_type AS hardware, hp.device_name AS device, hp.platform, hp.memory_gb,
               hp.driver_version, hp.compute_units, COALESCE(r.models, 0) AS models,
               COALESCE(r.results, 0) AS results, COALESCE(r.runs, 0) AS runs,
               {"COALESCE(r.simulated_results, 0) AS simulated_results, " if filters.include_simulated else ""}
               COALESCE(r.emulated_results, 0) AS emulated_results,
               r.first_result_at, r.last_result_at
        FROM hardware_platforms hp
        LEFT JOIN r ON r.hardware = hp.hardware_type AND r.device IS NOT DISTINCT FROM hp.device_name
        WHERE {hw_cond} {"AND r.results > 0" if filters.has_any() else ""}
        ORDER BY results DESC, hardware, device NULLS FIRST"""
    return _df(conn, sql, params + hw_params)


def throughput_by_hardware(conn, filters: ReportFilters, metric: str | None = "throughput"):
    """Pivot: one row per model and batch size, one column per hardware type, cells = mean of the metric."""
    m = get_metric(metric)
    base, params = _filtered_base(filters)
    long = _df(conn, f"""
        SELECT model, batch_size, {hardware_label_sql("hardware", "is_emulated")} AS hardware, avg({m.column}) AS value
        FROM ({base}) b WHERE {m.column} IS NOT NULL GROUP BY ALL""", params)
    if long.empty:
        return long
    wide = long.pivot_table(index=["model", "batch_size"], columns="hardware", values="value", aggfunc="first",
                            dropna=False)
    wide = wide.dropna(how="all").reset_index()
    wide.columns.name = None
    return wide.sort_values(["model", "batch_size"]).reset_index(drop=True)


def compatibility_table(conn, filters: ReportFilters):
    """One row per model and hardware pair: the latest compatibility check, else whether it was measured."""
    sim_hc = "" if filters.include_simulated else "AND NOT COALESCE(hc.is_simulated, false)"
    time_hc, time_params = filters.where(model=None, family=None, hardware=None, batch=None, precision=None,
                                         simulated=None, created="hc.created_at")
    measured_cond, measured_params = filters.where(model=None, family=None, hardware=None,
                                                   batch="pr.batch_size", precision="pr.precision",
                                                   created="pr.created_at", simulated="pr.is_simulated")
    outer, outer_params = filters.where(batch=None, precision=None, created=None, simulated=None)
    # whether the pair's verdict is simulated: its check's flag, else (no check) whether every result it
    # rests on is simulated; a measured-only pair read is_simulated NULL, and its cell an unlabelled "yes"
    simulated_columns = """,
                   COALESCE(measured.simulated_results, 0) AS simulated_results,
                   CASE WHEN compat.hardware_id IS NOT NULL THEN compat.is_simulated
                        ELSE measured.simulated_results = measured.results END AS is_simulated""" \
        if filters.include_simulated else ""
    sql = f"""
        WITH compat AS (
            SELECT hc.model_id, hc.hardware_id, hc.is_compatible, hc.detection_success,
                   hc.initialization_success, hc.error_type, hc.error_message,
                   COALESCE(hc.is_simulated, false) AS is_simulated, hc.created_at
            FROM hardware_compatibility hc
            WHERE {time_hc} {sim_hc}
            QUALIFY row_number() OVER (PARTITION BY hc.model_id, hc.hardware_id
                                       ORDER BY hc.created_at DESC NULLS LAST, hc.compatibility_id DESC) = 1),
        measured AS (
            -- emulated and simulated counted apart (a simulated result on an emulated device is simulated),
            -- so real = results - emulated - simulated
            SELECT pr.model_id, pr.hardware_id, count(*) AS results,
                   count(*) FILTER (WHERE pr.is_emulated AND NOT COALESCE(pr.is_simulated, false))
                       AS emulated_results,
                   count(*) FILTER (WHERE COALESCE(pr.is_simulated, false)) AS simulated_results
            FROM performance_results pr WHERE {measured_cond} GROUP BY pr.model_id, pr.hardware_id),
        pairs AS (SELECT model_id, hardware_id FROM compat UNION SELECT model_id, hardware_id FROM measured),
        named AS (
            SELECT m.model_name AS model, m.model_family, hp.hardware_type AS hardware,
                   hp.device_name AS device,
                   CASE WHEN compat.hardware_id IS NOT NULL THEN compat.is_compatible
                        ELSE measured.results > 0 END AS is_compatible,
                   CASE WHEN compat.hardware_id IS NOT NULL THEN 'compatibility check'
                        ELSE 'performance results' END AS evidence,
                   COALESCE(measured.results, 0) AS performance_results,
                   COALESCE(measured.emulated_results, 0) AS emulated_results,
                   compat.detection_success, compat.initialization_success,
                   compat.error_type, compat.error_message, compat.created_at AS checked_at
                   {simulated_columns}
            FROM pairs
            LEFT JOIN compat ON compat.model_id IS NOT DISTINCT FROM pairs.model_id
                             AND compat.hardware_id = pairs.hardware_id
            LEFT JOIN measured ON measured.model_id IS NOT DISTINCT FROM pairs.model_id
                               AND measured.hardware_id = pairs.hardware_id
            {dimension_joins("pairs")})
        SELECT * FROM named WHERE {outer}
        ORDER BY model NULLS LAST, hardware, device NULLS FIRST"""
    return _df(conn, sql, time_params + measured_params + outer_params)


def _count(row, column: str) -> int:
    value = row.get(column)
    return 0 if is_missing(value) else int(value)


def _flag(row, column: str) -> bool:
    value = row.get(column)
    return not is_missing(value) and bool(value)


def compatibility_matrix(conn, filters: ReportFilters):
    """Pivot of `compatibility_table`: one row per model, one column per hardware type.

    A cell reads `yes (N results)`, `yes`, `no (ErrorType)` or is empty when nothing is known; a `no` whose pair
    was measured all the same says how often (`no (N results)`, `no (ErrorType; N results)`). Results measured on
    an emulated device say so (`yes (4 results, emulated)`), and so do simulated ones with --include-simulated
    (`yes (24 results, simulated)`, `yes (30 results, 6 simulated)`); a verdict of a simulated compatibility
    check reads `simulated check` unless every result beside it is simulated too.
    """
    table = compatibility_table(conn, filters)
    if table.empty:  # the matrix's own (first) column, not the twelve of the table it pivots
        return table[["model"]]
    table = table.copy()
    table["model"] = table["model"].fillna("(any model)")

    def cell(row) -> str:
        if is_missing(row["is_compatible"]):
            return "unknown"
        n = 0 if is_missing(row["performance_results"]) else int(row["performance_results"])
        results = f"{n} result{'s' if n != 1 else ''}" if n else ""
        # measured on an emulated device (SwiftShader for webgpu), or simulated: labelled, as in every report
        for kind in ("emulated", "simulated"):
            k = _count(row, f"{kind}_results")
            if k:
                results += f", {kind}" if k == n else f", {k} {kind}"
        simulated_check = (_flag(row, "is_simulated") and row.get("evidence") == "compatibility check"
                           and (not n or _count(row, "simulated_results") != n))
        details = [x for x in (row["error_type"] if isinstance(row["error_type"], str) and
                               not bool(row["is_compatible"]) else "",
                               "simulated check" if simulated_check else "", results) if x]
        verdict = "yes" if bool(row["is_compatible"]) else "no"
        # a failed check beside measured results: say both, not a bare "no" that hides the results
        return f"{verdict} ({'; '.join(details)})" if details else verdict

    table["status"] = table.apply(cell, axis=1)
    # several devices of one hardware type: join their cells
    grouped = table.groupby(["model", "hardware"], sort=True)["status"].agg(lambda s: "; ".join(s)).reset_index()
    wide = grouped.pivot(index="model", columns="hardware", values="status").fillna("")
    wide.columns.name = None
    return wide.reset_index()


def integration_table(conn, filters: ReportFilters):
    """One row per integration test (module, class, name, hardware, model): latest status and counts. The
    latest row is picked as integration_test_status picks it (an undated row counts as the oldest)."""
    cond, params = filters.where(model="m.model_name", family="m.model_family", hardware="hp.hardware_type",
                                 batch=None, precision=None, created="it.created_at", simulated=None)
    sql = f"""
        SELECT it.test_module, it.test_class, it.test_name, hp.hardware_type AS hardware,
               m.model_name AS model, arg_max(it.status, {LATEST_INTEGRATION_ROW}) AS latest_status,
               count(*) AS runs,
               count(*) FILTER (WHERE lower(it.status) IN ('pass', 'passed', 'success', 'ok')) AS passed,
               count(*) FILTER (WHERE lower(it.status) IN ('fail', 'failed', 'failure', 'error')) AS failed,
               max(it.created_at) AS last_run_at,
               arg_max(it.error_message, {LATEST_INTEGRATION_ROW}) AS latest_error
        FROM integration_test_results it
        {dimension_joins("it")}
        WHERE {cond}
        GROUP BY it.test_module, it.test_class, it.test_name, hp.hardware_type, m.model_name
        ORDER BY it.test_module NULLS FIRST, it.test_class NULLS FIRST, it.test_name, hardware NULLS FIRST,
                 model NULLS FIRST"""
    return _df(conn, sql, params)


def summary_table(conn, filters: ReportFilters):
    """Key figures of the (filtered) database as `item`, `value` rows."""
    import pandas as pd

    base_all, params_all = _filtered_base(filters.with_simulated())
    row = conn.execute(f"""
        SELECT count(*) FILTER (WHERE NOT is_simulated), count(*) FILTER (WHERE is_simulated),
               count(DISTINCT model) FILTER (WHERE NOT is_simulated OR ?),
               count(DISTINCT hardware) FILTER (WHERE NOT is_simulated OR ?),
               count(DISTINCT run_id) FILTER (WHERE NOT is_simulated OR ?),
               min(created_at) FILTER (WHERE NOT is_simulated OR ?),
               max(created_at) FILTER (WHERE NOT is_simulated OR ?)
        FROM ({base_all}) b""", [filters.include_simulated] * 5 + params_all).fetchone()
    measured, simulated, models, hardware, runs, first, last = row
    models_all, runs_all = conn.execute("SELECT (SELECT count(*) FROM models), (SELECT count(*) FROM test_runs)"
                                        ).fetchone()
    compat = compatibility_table(conn, filters)
    integ = integration_table(conn, filters)
    latest = integ["latest_status"].str.lower() if not integ.empty else pd.Series(dtype=str)
    passing = latest.isin(["pass", "passed", "success", "ok"])
    failing = latest.isin(["fail", "failed", "failure", "error"])
    # what counts: the performance figures count models, hardware and runs with a (measured, unless
    # --include-simulated) result; the models and test_runs tables hold more (compatibility checks,
    # integration tests, runs without results), hence both figures, each labelled
    with_results = "with performance results" if filters.include_simulated else "with measured performance results"
    whole = " (no filter applied)" if filters.has_any() else ""
    items = [
        ("measured performance results", int(measured)),
        ("simulated performance results" + ("" if filters.include_simulated else " (excluded)"), int(simulated)),
        (f"models {with_results}", int(models)),
        (f"models in the database{whole}", int(models_all)),
        (f"hardware types {with_results}", int(hardware)),
        (f"test runs {with_results}", int(runs)),
        (f"test runs in the database{whole}", int(runs_all)),
        ("first result at", first.isoformat(sep=" ") if first is not None else None),
        ("last result at", last.isoformat(sep=" ") if last is not None else None),
        ("model/hardware pairs compatible", int((compat["is_compatible"] == True).sum()) if not compat.empty  # noqa: E712
         else 0),
        ("model/hardware pairs incompatible", int((compat["is_compatible"] == False).sum())  # noqa: E712
         if not compat.empty else 0),
        ("integration tests", len(integ)),
        ("integration tests passing (latest run)", int(passing.sum())),
        ("integration tests failing (latest run)", int(failing.sum())),
    ]
    # every other latest status (skipped, not_implemented, ...) gets a line, so the parts add up to the total
    for status, n in sorted(latest[~passing & ~failing].fillna("(none)").value_counts().items()):
        items.append((f"integration tests {status} (latest run)", int(n)))
    return pd.DataFrame({"item": [i for i, _ in items], "value": [str(v) if v is not None else "" for _, v in items]})


def best_hardware_table(conn, filters: ReportFilters):
    """Per model, test case, batch size and sequence length: the hardware with the highest mean throughput, the
    precision it ran at, and that throughput. Each hardware type competes at each precision it was measured at
    (fp16 and fp32 results of one device averaged gave a figure measured at neither). `note` lists every
    hardware of a tie, or says that only one hardware type was measured (no comparison)."""
    base, params = _filtered_base(filters)
    sql = f"""
        WITH per_hw AS (
            SELECT model, test_case, batch_size, sequence_length, precision,
                   -- simulated results compete under their own name, never averaged into measured ones
                   -- and so do emulated ones (a software adapter is not the device it stands in for)
                   {hardware_label_sql("hardware", "is_emulated")}
                       || CASE WHEN is_simulated THEN ' (simulated)' ELSE '' END AS hardware,
                   avg(throughput) AS throughput_items_per_s_mean, count(*) AS results
            FROM ({base}) b WHERE throughput IS NOT NULL GROUP BY ALL)
        -- a tie goes to the first name: arg_max would take whichever row it met first (file and lake differ);
        -- the note names every hardware of a tie (means equal to 1e-9), and says when only one was measured
        -- (fastest of one is no finding)
        , ranked AS (
            SELECT *, throughput_items_per_s_mean >= max(throughput_items_per_s_mean) OVER w
                          - abs(max(throughput_items_per_s_mean) OVER w) * 1e-9 AS is_best
            FROM per_hw WINDOW w AS (PARTITION BY model, test_case, batch_size, sequence_length))
        SELECT model, test_case, batch_size, sequence_length,
               first(hardware ORDER BY throughput_items_per_s_mean DESC, hardware, precision NULLS LAST)
                   AS fastest_hardware,
               first(precision ORDER BY throughput_items_per_s_mean DESC, hardware, precision NULLS LAST)
                   AS precision,
               max(throughput_items_per_s_mean) AS throughput_items_per_s_mean,
               count(DISTINCT hardware) AS hardware_compared,
               CASE WHEN count(DISTINCT hardware) = 1 THEN 'only one hardware type measured'
                    WHEN count(*) FILTER (WHERE is_best) > 1
                    THEN 'tie: ' || string_agg(hardware || COALESCE(' ' || precision, ''), ', '
                                               ORDER BY hardware, precision) FILTER (WHERE is_best)
               END AS note
        FROM ranked GROUP BY model, test_case, batch_size, sequence_length
        ORDER BY model, test_case NULLS FIRST, batch_size NULLS FIRST, sequence_length NULLS FIRST"""
    return _df(conn, sql, params)


# ------------------------------------------------------------------------------ distributions (charts)
def _distribution_sql(filters: ReportFilters, metric: Metric, keys: list[str], extra: str = "") -> tuple[str, list]:
    """Per group of `keys`: counts, mean and p10/p50/p90 of the metric.

    The percentiles come from the raw latency samples when every result of the group has them (a
    throughput sample is batch_size * 1000 / latency_ms), else from the per-result values; `basis` says
    which.
    """
    base, params = _filtered_base(filters)
    key_list = ", ".join(keys)
    join = " AND ".join(f"s.{k} IS NOT DISTINCT FROM r.{k}" for k in keys)
    if metric.name == "latency":
        sample_expr = "sv"
        usable = "len(samples) > 0"
    elif metric.name == "throughput":
        sample_expr = "batch_size * 1000.0 / sv"
        usable = "len(samples) > 0 AND batch_size IS NOT NULL AND list_min(samples) > 0"
    else:
        sample_expr, usable = None, "false"
    p = metric.prefix
    # an emulated result's hardware reads `<hardware> (emulated)` (it is a key of its own, never merged)
    shown_keys = [f"{hardware_label_sql('r.hardware', 'r.is_emulated')} AS hardware"
                  if k == "hardware" and "is_emulated" in keys else f"r.{k}" for k in keys]
    samples_cte = (f""",
        s AS (
            SELECT {key_list}, count(*) AS samples,
                   quantile_cont({sample_expr}, 0.1) AS sp10, quantile_cont({sample_expr}, 0.5) AS sp50,
                   quantile_cont({sample_expr}, 0.9) AS sp90
            FROM f, unnest(samples) AS u(sv) WHERE {usable} GROUP BY {key_list})"""
                   if sample_expr else ", s AS (SELECT NULL AS samples, NULL AS sp10, NULL AS sp50, NULL AS sp90,"
                   + ", ".join(f"NULL AS {k}" for k in keys) + " WHERE false)")
    sql = f"""
        WITH f AS (SELECT *, COALESCE(run_id, result_id) AS point FROM ({base}) b
                   WHERE {metric.column} IS NOT NULL),
        r AS (
            SELECT {key_list}, count(*) AS results, count(DISTINCT run_id) AS runs, min(created_at) AS first_at,
                   max(created_at) AS last_at, avg({metric.column}) AS mean,
                   quantile_cont({metric.column}, 0.1) AS rp10, quantile_cont({metric.column}, 0.5) AS rp50,
                   quantile_cont({metric.column}, 0.9) AS rp90,
                   bool_and(COALESCE({usable}, false)) AS all_sampled {extra}
            FROM f GROUP BY {key_list}){samples_cte}
        SELECT {", ".join(shown_keys)}, r.results, r.runs, r.first_at, r.last_at,
               CASE WHEN r.all_sampled THEN s.samples ELSE 0 END AS samples,
               r.mean AS {p}_mean,
               CASE WHEN r.all_sampled THEN s.sp10 ELSE r.rp10 END AS {p}_p10,
               CASE WHEN r.all_sampled THEN s.sp50 ELSE r.rp50 END AS {p}_p50,
               CASE WHEN r.all_sampled THEN s.sp90 ELSE r.rp90 END AS {p}_p90,
               CASE WHEN r.all_sampled THEN 'raw samples' ELSE 'per-result values' END AS basis
        FROM r LEFT JOIN s ON {join}
        ORDER BY {", ".join(f"r.{k} NULLS FIRST" for k in keys)}"""
    return sql, params


def compare_table(conn, filters: ReportFilters, metric: str | None = "throughput", by: str = "hardware"):
    """The metric per model, hardware, test case, batch size, sequence length and precision with p10/p50/p90
    (for comparisons).

    `by="hardware"` adds `relative_to_cpu` (the p50 as a multiple of the CPU's p50 for the same model, test
    case, batch size, sequence length and precision, else the CPU's only precision there, oriented so that > 1
    means better than CPU).
    """
    m = get_metric(metric)
    keys = ["model", "hardware", "test_case", "batch_size", "sequence_length", "precision", "is_simulated",
            "is_emulated"]
    sql, params = _distribution_sql(filters, m, keys)
    df = _df(conn, sql, params).drop(columns=["first_at"]).rename(columns={"last_at": "last_result_at"})
    if not filters.include_simulated:
        df = df.drop(columns=["is_simulated"])
    if by == "hardware" and not df.empty:
        p50 = f"{m.prefix}_p50"
        cpu = df[(df["hardware"] == "cpu") & ~df["is_emulated"].astype(bool)]
        if "is_simulated" in cpu:
            cpu = cpu[~cpu["is_simulated"].astype(bool)]
        # the CPU row of the same precision (so CPU itself is 1x at every precision); else, when the CPU
        # was measured at one precision only for that model, test case, batch size and sequence length, that one
        where = ("model", "test_case", "batch_size", "sequence_length")

        def config(frame):
            return [tuple(None if is_missing(v) else v for v in row)
                    for row in zip(*(frame[c] for c in where), frame["precision"])]

        exact: dict = {}
        by_config: dict = {}
        for (*place, pr), value in zip(config(cpu), cpu[p50]):
            exact.setdefault((*place, pr), value)
            by_config.setdefault(tuple(place), {}).setdefault(pr, value)
        if exact:
            ref = []
            for *place, pr in config(df):
                if (*place, pr) in exact:
                    ref.append(exact[(*place, pr)])
                else:
                    only = by_config.get(tuple(place), {})
                    ref.append(next(iter(only.values())) if len(only) == 1 else None)
            ratio = []
            for value, base in zip(df[p50], ref):
                if is_missing(base) or is_missing(value) or not base or not value:
                    ratio.append(None)
                else:
                    ratio.append(value / base if m.higher_is_better else base / value)
            df["relative_to_cpu"] = ratio
    return df


def configuration_labels(df, per_model: bool = True, precision: bool = False) -> list[str]:
    """Each row's model name followed by its test case and sequence length (`bert · forward · seq 128`; a
    missing part, or "unknown", is left out) where that model has several (`per_model`), or where the rows
    have several at all: results of different work never share a line, a bar or a legend entry unnamed.
    With `precision`, the precision follows by the same rule (`bert · fp16`)."""
    def present(value) -> bool:
        return not is_missing(value) and str(value) not in ("", "unknown")

    models = [str(m) if present(m) else "unknown model" for m in df["model"]]
    if not len(df):
        return models
    parts = [models]
    shown = [("test_case", str), ("sequence_length", lambda v: f"seq {int(v)}")] + ([("precision", str)]
                                                                                     if precision else [])
    for column, show in shown:
        if column not in df:
            continue
        if per_model:
            several = df.groupby("model", dropna=False)[column].transform(lambda s: s.nunique(dropna=False) > 1)
        else:
            several = [df[column].nunique(dropna=False) > 1] * len(df)
        parts.append([show(v) if keep and present(v) else "" for keep, v in zip(several, df[column])])
    return [" · ".join(bit for bit in bits if bit) for bits in zip(*parts)]


# one series of a trend (and of its change points): results of one configuration
SERIES_KEYS = ["model", "hardware", "test_case", "batch_size", "sequence_length", "precision", "is_simulated",
               "is_emulated"]


def trend_table(conn, filters: ReportFilters, metric: str | None = "throughput"):
    """One point per run (or per result without a run) and configuration, in time order."""
    m = get_metric(metric)
    keys = SERIES_KEYS + ["point"]
    sql, params = _distribution_sql(filters, m, keys)
    df = _df(conn, sql, params)
    df = df.rename(columns={"first_at": "at"}).drop(columns=["last_at"])
    # a result whose document gave no time (created_at NULL) has no place on a time axis: left out, and
    # counted in attrs["undated"] so that a chart can say so (matplotlib failed on NaT)
    undated = int(df["at"].isna().sum())
    df = df[df["at"].notna()]
    df = df.sort_values(SERIES_KEYS + ["at"]).reset_index(drop=True)
    df.attrs["undated"] = undated
    return df


def trend_change_points(trend, metric: str | None = "throughput"):
    """Change points of every series of a trend table, from `benchmark_db.stats.detect_change_points`.

    Returns (DataFrame of change points, note). The note is set when detection could not run.
    """
    import pandas as pd

    m = get_metric(metric)
    columns = SERIES_KEYS + ["at", "index", "before", "after", "change_pct", "p_value"]
    from benchmark_db.stats import detect_change_points
    rows = []
    if "is_emulated" not in trend:  # a trend built elsewhere: nothing in it is emulated
        trend = trend.assign(is_emulated=False)
    for key, series in trend.groupby(SERIES_KEYS, dropna=False, sort=False):
        values = [float(v) for v in series[f"{m.prefix}_p50"]]
        if len(values) < 2:
            continue
        for cp in detect_change_points(values) or []:
            get = (cp.get if isinstance(cp, dict) else lambda k, _c=cp: getattr(_c, k, None))
            index = int(get("index"))
            if not 0 <= index < len(series):
                continue
            before = get("median_before") if get("median_before") is not None else get("before")
            after = get("median_after") if get("median_after") is not None else get("after")
            rows.append(dict(zip(SERIES_KEYS, key)) | {
                "at": series["at"].iloc[index], "index": index, "before": before, "after": after,
                "change_pct": get("change_pct"), "p_value": get("p_value")})
    return pd.DataFrame(rows, columns=columns), None


# --------------------------------------------------------------------------------------- no data (DB004)
NO_DATA_SOURCES = ("performance", "compatibility", "integration", "any")

# what the database holds when a source has nothing at all, and how to add some
_EMPTY_SOURCE = {
    "performance": "performance results: add some with benchmark_db_converter.py, benchmark_db_updater.py "
                   "or the runners",
    "compatibility": "compatibility checks or performance results: add some with benchmark_db_updater.py "
                     "or the runners",
    "integration": "integration test results: add some with benchmark_db_updater.py or the API "
                   "(POST /integration)",
    "any": "performance, compatibility or integration results: add some with benchmark_db_converter.py, "
           "benchmark_db_updater.py or the runners",
}


def _source_frames(conn, source: str, flt: ReportFilters) -> list:
    """The rows of the non-performance tables a report of `source` shows (performance is read by SQL)."""
    frames = []
    if source in ("compatibility", "any"):
        frames.append(compatibility_table(conn, flt).rename(columns={"checked_at": "at"}))
    if source in ("integration", "any"):
        frames.append(integration_table(conn, flt).rename(columns={"last_run_at": "at"}))
    return frames


def _sort_key(text: str):
    try:
        return (0, float(text), text)
    except ValueError:
        return (1, 0.0, text)


def no_data_error(conn, filters: ReportFilters, what: str = "performance results",
                  metric: str | None = None, source: str = "performance") -> QueryError:
    """DB004 naming the filters that matched nothing and what the database does hold.

    `source` says which tables the report reads, so that "what exists" is listed from them: `performance`
    (performance results), `compatibility` (compatibility checks and measured pairs), `integration`
    (integration test results) or `any` (all three, for the summary). A filter a source has no column for
    (the batch size of a compatibility check) lists the values of the performance results.

    With `metric`, results that match the filters but have no value of that metric are named as such
    (with the metrics they do have), rather than reported as no results at all."""
    if source not in NO_DATA_SOURCES:
        raise ValueError(f"unknown source {source!r}")
    if metric is not None:
        m = get_metric(metric)
        base, params = _filtered_base(filters)
        row = conn.execute(f"SELECT count(*), count(throughput), count(latency_ms), count(memory_mb) "
                           f"FROM ({base}) b", params).fetchone()
        if row[0]:
            have = [name for name, n in zip(("throughput", "latency", "memory"), row[1:]) if n]
            hint = (f"try --metric {' or --metric '.join(have)}" if have
                    else "these results carry no throughput, latency or memory figure")
            return QueryError(f"no {m.label.lower()} values among the {row[0]} performance "
                              f"result{'s' if row[0] != 1 else ''} matching {filters.describe()}", hint)
    reads_performance = source in ("performance", "any")

    def performance_values(column: str, flt: ReportFilters) -> set[str]:
        base, params = _filtered_base(flt)
        rows = conn.execute(f"SELECT DISTINCT {column} FROM ({base}) b WHERE {column} IS NOT NULL", params).fetchall()
        return {str(r[0]) for r in rows}

    def values(column: str, flt: ReportFilters, limit: int = 12) -> list[str]:
        found = performance_values(column, flt) if reads_performance else set()
        for frame in _source_frames(conn, source, flt):
            if column in frame.columns:
                found |= {str(v) for v in frame[column].tolist() if not is_missing(v)}
            elif not reads_performance:
                found |= performance_values(column, flt)
        out = sorted(found, key=_sort_key)
        return out[:limit] + (["..."] if len(out) > limit else [])

    def count(flt: ReportFilters) -> int:
        n = 0
        if reads_performance:
            base, params = _filtered_base(flt)
            n += conn.execute(f"SELECT count(*) FROM ({base}) b", params).fetchone()[0]
        return n + sum(len(frame) for frame in _source_frames(conn, source, flt))

    def span(flt: ReportFilters) -> tuple:
        times = []
        if reads_performance or source == "compatibility":  # measured pairs have no check time
            base, params = _filtered_base(flt)
            times.extend(t for t in conn.execute(f"SELECT min(created_at), max(created_at) FROM ({base}) b",
                                                 params).fetchone() if t is not None)
        for frame in _source_frames(conn, source, flt):
            if "at" in frame.columns:
                times.extend(t for t in frame["at"].tolist() if not is_missing(t))
        return (min(times), max(times)) if times else (None, None)

    parts = []
    everything = ReportFilters(include_simulated=filters.include_simulated)
    if count(everything) == 0:
        measured = "" if filters.include_simulated or source == "integration" else "measured "
        parts.append(f"the database holds no {measured}{_EMPTY_SOURCE[source]}")
    else:
        labels = (("model", "models matching the other filters", "models in the database"),
                  ("hardware", "hardware matching the other filters", "hardware in the database"),
                  ("batch_size", "batch sizes", "batch sizes in the database"),
                  ("precision", "precisions", "precisions in the database"),
                  ("model_family", "model families", "model families in the database"))
        given = [name for name, _, _ in labels if getattr(filters, name)]
        timed = bool(filters.since or filters.until)
        if len(given) + timed > 1:
            # several filters: "precisions: none; model families: none" (each listed under the others, which
            # matched nothing either) helped nobody. For each filter that matches nothing on its own (leaving
            # out those that do): what the other filters find, else what the database holds; when each matches
            # on its own, what each would find under the others
            def alone(*names: str) -> ReportFilters:
                return ReportFilters(include_simulated=filters.include_simulated,
                                     **{n: getattr(filters, n) for n in names})

            for name, label, held in labels:
                if name in given and count(alone(name)) == 0:
                    found = values(name, filters.without(name))
                    parts.append(f"{label}: {', '.join(found)}" if found else
                                 f"{held}: {', '.join(values(name, everything)) or 'none'}")
            if timed and count(alone("since", "until")) == 0:
                first, last = span(everything)
                parts.append(f"results in the database span {first} to {last}" if first is not None else
                             "no result in the database has a time")
            if not parts:
                for name, label, _ in labels:
                    found = values(name, filters.without(name)) if name in given else []
                    if found:
                        parts.append(f"{label}: {', '.join(found)}")
                if timed:
                    first, last = span(filters.without("since", "until"))
                    if first is not None:
                        parts.append(f"results of the other filters span {first} to {last}")
                parts.insert(0, "each filter matches on its own, but not all of them together")
        else:
            for name, label, _ in labels:
                if getattr(filters, name):
                    parts.append(f"{label}: {', '.join(values(name, filters.without(name))) or 'none'}")
            if timed:
                first, last = span(filters.without("since", "until"))
                parts.append(f"results of the other filters span {first} to {last}" if first is not None else
                             "no results match the other filters at any time")
        if not parts:
            parts.append(f"models: {', '.join(values('model', everything))}")
    if not filters.include_simulated:
        if reads_performance:
            base, params = _filtered_base(filters.with_simulated())
            simulated = conn.execute(f"SELECT count(*) FROM ({base}) b WHERE is_simulated", params).fetchone()[0]
            if simulated:
                parts.append(f"{simulated} simulated result{'s' if simulated != 1 else ''} match: "
                             "pass --include-simulated to see them")
        else:
            simulated = count(filters.with_simulated()) - count(filters)
            if simulated > 0:
                parts.append(f"{simulated} row{'s' if simulated != 1 else ''} with simulated results match: "
                             "pass --include-simulated to see them")
    if filters.has_any():
        return QueryError(f"no {what} match {filters.describe()}", "; ".join(parts))
    return QueryError(f"no {what} to show ({filters.describe()})", "; ".join(parts))


def count_matching(conn, filters: ReportFilters) -> int:
    base, params = _filtered_base(filters)
    return conn.execute(f"SELECT count(*) FROM ({base}) b", params).fetchone()[0]


# ---------------------------------------------------------------------------------------- whole reports
@dataclass
class ReportSection:
    key: str
    title: str
    frame: object  # pandas DataFrame
    note: str | None = None
    charts: list = field(default_factory=list)  # filled by the HTML renderer: (title, data URI, alt text)
    file_key: str | None = None  # names its CSV file (csv_sections) where `key` alone would not say what it is


@dataclass
class Report:
    kind: str
    title: str
    filters: ReportFilters
    sections: list[ReportSection]
    notes: list[str] = field(default_factory=list)
    generated_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC).replace(tzinfo=None))
    metric: str | None = None
    warnings: list[str] = field(default_factory=list)  # also among the notes; the CLI repeats them on stderr

    @property
    def main(self):
        return self.sections[0].frame

    def to_dict(self) -> dict:
        from benchmark_db.output import plain_records

        return {"report": self.kind, "title": self.title, "generated_at": self.generated_at.isoformat(),
                "filters": self.filters.to_dict(), "notes": self.notes,
                "sections": {s.key: {"title": s.title, "note": s.note, "rows": plain_records(s.frame)}
                             for s in self.sections}}


def _count_simulated(conn, filters: ReportFilters) -> int:
    """Simulated results matching the other filters (joins the dimensions only when a filter needs them)."""
    needs_names = bool(filters.model or filters.model_family or filters.hardware)
    joins = dimension_joins("pr") if needs_names else ""
    cond, params = filters.with_simulated().where(
        model="COALESCE(m.model_name, pr.model_name)", family="m.model_family",
        hardware="COALESCE(hp.hardware_type, pr.hardware_type)", batch="pr.batch_size", precision="pr.precision",
        created="pr.created_at", simulated=None)
    return conn.execute(f"SELECT count(*) FROM performance_results pr {joins} WHERE pr.is_simulated AND {cond}",
                        params).fetchone()[0]


def _simulated_note(conn, filters: ReportFilters, count: int | None = None) -> str | None:
    n = _count_simulated(conn, filters) if count is None else count
    if filters.include_simulated:
        return f"{n} simulated result{'s' if n != 1 else ''} included and shown separately (is_simulated)" \
            if n else None
    return (f"{n} simulated result{'s' if n != 1 else ''} left out (pass --include-simulated to show them)"
            if n else None)


def build_report(conn, kind: str, filters: ReportFilters | None = None, metric: str | None = None, *,
                 use_summary_cache: bool = False) -> Report:
    """Every section of one report kind (`performance`, `hardware`, `compatibility`, `integration`,
    `summary`, or `all`), computed from the database.

    `use_summary_cache` lets the performance sections read the per-configuration summary cached beside the
    database file (benchmark_db.summary_cache); pass it only on a connection with no open transaction.
    """
    filters = filters or ReportFilters()
    if kind not in REPORT_KINDS + ("all",):
        raise UsageError(f"unknown report {kind!r}", f"choose one of {', '.join(REPORT_KINDS)}")
    if metric:
        get_metric(metric)
    sections: list[ReportSection] = []
    kinds = REPORT_KINDS if kind == "all" else (kind,)
    if "summary" in kinds and kind == "all":
        kinds = ("summary",) + tuple(k for k in kinds if k != "summary")
    summary = (report_summary(conn, filters) if use_summary_cache and kind in ("performance", "all")
               else None)
    simulated_count = None
    emulated_count = 0
    for k in kinds:
        if k == "performance":
            if summary is not None:
                # one pass over the summary answers both the table and the count of simulated results
                full = performance_table(conn, filters.with_simulated(), metric, with_sums=True, summary=summary)
                simulated = full["is_simulated"].to_numpy(dtype=bool)
                simulated_count = int(full["results"].to_numpy()[simulated].sum())
                if not filters.include_simulated:
                    full = full[~simulated].reset_index(drop=True)
                    del full["is_simulated"]
            else:
                full = performance_table(conn, filters, metric, with_sums=True)
            if full.empty and filters.has_any() and kind != "all":
                raise no_data_error(conn, filters)  # before the pivot: nothing to pivot
            table = full[[c for c in full.columns if not c.startswith("_")]]
            emulated_count = int(full["results"].to_numpy()[full["is_emulated"].to_numpy(dtype=bool)].sum()) \
                if len(full) else 0
            sections.append(ReportSection(
                "performance", "Performance by configuration", table,
                "one row per model, hardware, device, test case, batch size, sequence length and precision; means "
                "over all matching results (throughput in items/s, latency in ms, memory in MB)"))
            pivot_metric = metric or "throughput"
            m = get_metric(pivot_metric)
            sections.append(ReportSection(
                "by_hardware", f"{m.label} by hardware ({m.unit}, mean)",
                pivot_by_hardware(full, pivot_metric),
                f"mean {m.label.lower()} per model, test case, batch size and sequence length on each hardware "
                "type (a column per precision where a type has several)"))
        elif k == "hardware":
            sections.append(ReportSection("hardware", "Hardware platforms", hardware_table(conn, filters),
                                          "every known platform and how much was measured on it"))
            sections.append(ReportSection("fastest", "Fastest hardware per model and configuration",
                                          best_hardware_table(conn, filters),
                                          "highest mean throughput (items/s) among the hardware measured, each at "
                                          "each precision it ran at; the note names every hardware of a tie, or "
                                          "says when only one was measured"))
        elif k == "compatibility":
            sections.append(ReportSection("compatibility_matrix", "Compatibility matrix",
                                          compatibility_matrix(conn, filters),
                                          "latest compatibility check of each pair, else whether it was "
                                          "measured; empty: nothing known"))
            sections.append(ReportSection("compatibility", "Compatibility details", compatibility_table(conn, filters),
                                          file_key="compatibility_details"))
        elif k == "integration":
            sections.append(ReportSection("integration", "Integration tests", integration_table(conn, filters),
                                          "latest status of each test with its pass and fail counts"))
        elif k == "summary":
            sections.append(ReportSection("summary", "Summary", summary_table(conn, filters)))
            if kind == "summary":
                sections.append(ReportSection("fastest", "Fastest hardware per model and configuration",
                                              best_hardware_table(conn, filters),
                                              "highest mean throughput (items/s) among the hardware "
                                              "measured, each at each precision it ran at; the note names every hardware of a tie, or says when only one "
                                              "was measured"))
    warnings: list[str] = []
    if filters.has_any():
        _fail_if_nothing_matches(conn, kind, filters, sections)
        unmatched = _unmatched_performance_filters(conn, kind, filters)
        if unmatched:
            warnings.append(unmatched)
    notes = [f"filters: {filters.describe()}"] + warnings
    sim_note = _simulated_note(conn, filters, simulated_count) if kind in ("performance", "hardware", "summary", "all") else None
    if sim_note:
        notes.append(sim_note)
    if emulated_count:
        notes.append(f"{emulated_count} emulated result{'s' if emulated_count != 1 else ''} (software adapter) "
                     "included and shown separately, labelled '<hardware> (emulated)' (is_emulated)")
    title = {"performance": "Performance report", "hardware": "Hardware report",
             "compatibility": "Compatibility report", "integration": "Integration test report",
             "summary": "Benchmark summary", "all": "Benchmark report"}[kind]
    return Report(kind, title, filters, sections, notes, metric=metric, warnings=warnings)


def _unmatched_performance_filters(conn, kind: str, filters: ReportFilters) -> str | None:
    """A warning when --batch-size/--precision match no performance result in a report that still has rows.

    Compatibility checks and integration tests have no batch size or precision, so the summary, compatibility
    and integration reports list them whatever those filters say, and `--report summary --batch-size 999`
    printed zero results beside the compatible pairs with no hint. It stays a report (exit 0), as it does show
    rows, unlike one where nothing at all matches (DB004), but the report and stderr now say it."""
    if kind in ("performance", "hardware") or not (filters.batch_size or filters.precision):
        return None  # those two fail with DB004 when nothing matches; the other filters apply to every table
    if count_matching(conn, filters):
        return None
    err = no_data_error(conn, filters)
    return (f"{err.message}; {err.hint}; compatibility checks and integration tests have no batch size or "
            "precision and are shown whatever --batch-size and --precision say")


def _fail_if_nothing_matches(conn, kind: str, filters: ReportFilters, sections: list[ReportSection]) -> None:
    """DB004 when the filters match nothing the report of `kind` shows, as the performance report does.

    Only for filtered reports: a report without filters on an empty database stays an (empty) report.
    """
    frames = {s.key: s.frame for s in sections}

    def empty(key: str) -> bool:
        return key in frames and frames[key].empty

    if kind == "performance":
        if empty("performance"):
            raise no_data_error(conn, filters)
    elif kind == "hardware":
        if empty("hardware"):
            raise no_data_error(conn, filters, "hardware platforms with performance results")
    elif kind == "compatibility":
        if empty("compatibility"):
            raise no_data_error(conn, filters, "compatibility results", source="compatibility")
    elif kind == "integration":
        if empty("integration"):
            raise no_data_error(conn, filters, "integration test results", source="integration")
    else:  # summary and all: nothing of performance, compatibility or integration
        nothing = (empty("performance") and empty("compatibility") and empty("integration")) if kind == "all" \
            else (count_matching(conn, filters) == 0 and compatibility_table(conn, filters).empty
                  and integration_table(conn, filters).empty)
        if nothing:
            raise no_data_error(conn, filters, "performance, compatibility or integration results", source="any")


# ---------------------------------------------------------------------------------------------- renderers
def render_report(report: Report, fmt: str, conn=None) -> str:
    """The report as text in `fmt` (html needs `conn` for its charts)."""
    from benchmark_db import output

    if fmt == "json":
        return output.dumps(report.to_dict())
    if fmt == "csv":  # the main section only: a CSV is one table; see csv_sections for the others
        return output.to_csv(report.main)
    if fmt in ("markdown", "table"):
        lines = [f"# {report.title}", "", f"_generated {report.generated_at.isoformat(sep=' ', timespec='seconds')} "
                 "UTC_", ""] if fmt == "markdown" else [report.title, "=" * len(report.title)]
        lines += [f"- {n}" if fmt == "markdown" else n for n in report.notes] + [""]
        for section in report.sections:
            if fmt == "markdown":
                lines += [f"## {section.title}", ""] + ([f"_{section.note}_", ""] if section.note else [])
                lines.append(output.to_markdown(section.frame) if len(section.frame.columns) else "_no rows_\n")
            else:
                lines += ["", section.title, "-" * len(section.title)]
                lines.append(output.to_table(section.frame))
        return "\n".join(lines)
    if fmt == "html":
        return render_html(report, conn)
    raise UsageError(f"unknown report format {fmt!r}", f"choose one of {', '.join(REPORT_FORMATS)}")


def csv_sections(report: Report, output) -> list[tuple[Path, ReportSection, str]]:
    """(path, section, CSV text) of every section of `report` written as CSV to `output`.

    One CSV per section, the main one at `output` and each other beside it as `<stem>-<name><suffix>`, the
    name being the section's `file_key` without a leading `<stem>_` (`perf.csv`, `perf-by_hardware.csv`;
    `compatibility.csv`, `compatibility-details.csv`; `report.csv`, `report-compatibility_details.csv`): a dot
    read as a second extension, and `compatibility.compatibility.csv` said nothing. Not one file with the
    sections stacked under `# title` lines: the sections have different columns, so such a file is no table that csv.DictReader, pandas.read_csv or a
    spreadsheet's import reads correctly (they merge the sections into one), and the main file, which scripts
    and `| python -c ...` already read as one table, would change shape. Each file here is a plain CSV."""
    from benchmark_db import output as output_module

    path = Path(output)
    suffix = path.suffix or ".csv"
    out = []
    for i, section in enumerate(report.sections):
        name = section.file_key or section.key
        if name.startswith(path.stem + "_"):
            name = name[len(path.stem) + 1:]
        target = path if i == 0 else path.with_name(f"{path.stem}-{name}{suffix}")
        out.append((target, section, output_module.to_csv(section.frame)))
    return out


def _format_cell(value) -> tuple[str, str | None]:
    """(display text, sort key or None) of one table cell."""
    from benchmark_db.output import _plain

    if not isinstance(value, (str, list, tuple, dict)) and is_missing(value):  # NaT would read "NaT"
        return "", None
    value = _plain(value)
    if value is None:
        return "", None
    if isinstance(value, bool):
        return ("yes" if value else "no"), None
    if isinstance(value, int):
        return f"{value:,}", repr(value)
    if isinstance(value, float):
        if value != value:
            return "", None
        text = f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"
        return text, repr(value)
    if isinstance(value, decimal.Decimal) and value.is_finite():  # a DECIMAL of --sql: all its digits, as
        # DuckDB prints them, and a sort key like an int's or float's (as text, 10.500 sorted before 9.250)
        from benchmark_db.output import decimal_text

        return f"{value:,f}", decimal_text(value)
    if isinstance(value, (list, dict)):
        from benchmark_db.output import exact_json_dumps

        text = exact_json_dumps(value)
        return (text if len(text) <= 80 else text[:77] + "..."), None
    return str(value), None


_NEUTRAL_FLAGS = frozenset({"is_simulated", "is_emulated"})


def html_table(frame) -> str:
    """A sortable table (the inline script of the template sorts on `data-sort`)."""
    columns = [str(c) for c in frame.columns]
    if not columns:
        return "<p class='empty'>no rows</p>"
    # a header may wrap after each "_": throughput_items_per_s_mean made its column, and the table, as wide
    # as the name, pushing the figures past the right edge
    head = "".join(f"<th scope='col' tabindex='0'>{_html.escape(c).replace('_', '_<wbr>')}</th>"
                   for c in columns)
    body = []
    # yes/no of a flag that describes a result (simulated, emulated) is neither good nor bad: no colour
    neutral = [c in _NEUTRAL_FLAGS for c in columns]
    for record in frame.itertuples(index=False, name=None):
        cells = []
        for value, plain in zip(record, neutral):
            text, key = _format_cell(value)
            cls = ""
            if plain:
                pass
            elif text.startswith("yes"):
                cls = " class='ok'"
            elif text.startswith("no") and (text == "no" or text.startswith("no (")):
                cls = " class='bad'"
            elif text in ("fail", "failed", "error"):
                cls = " class='bad'"
            attr = f" data-sort='{_html.escape(key)}' class='num'" if key is not None else cls
            cells.append(f"<td{attr}>{_html.escape(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    if not body:
        return "<p class='empty'>no rows match</p>"
    return (f"<div class='scroll'><table class='sortable'><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table></div>")


def render_html(report: Report, conn=None) -> str:
    """One self-contained HTML page: inline CSS and script, charts as base64 PNG, no external resource."""
    import jinja2
    from markupsafe import Markup

    if conn is not None:
        from benchmark_db.charts import report_charts

        report_charts(conn, report)
    from pathlib import Path

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(Path(__file__).parent / "templates")),
                             autoescape=jinja2.select_autoescape(["html", "j2"]))
    env.filters["table"] = lambda frame: Markup(html_table(frame))
    template = env.get_template("report.html.j2")
    return template.render(report=report, generated=report.generated_at.isoformat(sep=" ", timespec="seconds"))


def write_html_report(conn, path, *, report: str = "all", model=None, model_family=None, hardware=None,
                      batch_size=None, precision=None, since=None, until=None, include_simulated: bool = False,
                      metric: str | None = None):
    """Write the HTML report of `conn` (every section by default) to `path` and return the path."""
    from pathlib import Path

    filters = ReportFilters.make(model=model, model_family=model_family, hardware=hardware,
                                 batch_size=batch_size, precision=precision, since=since, until=until,
                                 include_simulated=include_simulated)
    built = build_report(conn, report, filters, metric)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render_html(built, conn), encoding="utf-8")
    return target

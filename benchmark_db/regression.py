"""The regression check: did any benchmark get worse between a reference and the current results?

`regression_check(conn, ...)` compares, per (model, hardware, device, batch size, sequence length,
precision, test case), the current results with reference ones, in one of three ways:

* `reference_conn` given: the latest run of each group in the current database against the latest run of
  the same group in the reference database (a baseline from the main branch, say);
* `last_days=N`: rows created in the last N days against the rows before, in the same database;
* neither: the latest run of each group against every earlier row of that group.

Raw samples (`performance_results.latency_samples_ms`) are pooled per side and compared with
`benchmark_db.stats.compare_samples` (Mann-Whitney U plus the median change and the threshold). Where a side
has no raw samples, the per-row aggregates are compared instead: with five or more rows per side they are
still tested; with fewer only the threshold decides and the report says the evidence is weaker. Simulated
rows are left out unless asked for; asked for, `is_simulated` is part of the configuration (its model reads
`<model> (simulated)`), so they are never pooled with measured rows. Emulated rows (a software adapter such as SwiftShader:
`performance_results.is_emulated`) are kept, but `is_emulated` is part of the configuration and their hardware reads
`<hardware> (emulated)`, so an emulated run is never compared with a real device's run or vice versa. The
result is data (`to_dict`) and a PR comment (`to_markdown`); the exit code is the caller's business
(`has_regression`).
"""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field

from benchmark_db.schema import dimension_joins
from benchmark_db.stats import (
    EVIDENCE_AGGREGATES,
    IMPROVEMENT,
    REGRESSION,
    ComparisonResult,
    compare_samples,
)

# simulated results are a configuration of their own: with --include-simulated, 300 simulated results of 22 ms
# pooled with 300 measured ones of 10 ms read as a +57% regression of the measured configuration
GROUP_KEYS = ("model", "hardware", "device", "batch_size", "sequence_length", "precision", "test_case",
              "is_emulated", "is_simulated")
METRICS = {
    # metric: (aggregate column, higher is worse, unit)
    "latency": ("average_latency_ms", True, "ms"),
    "throughput": ("throughput_items_per_second", False, "items/s"),
    "memory": ("memory_peak_mb", True, "MB"),
}
EVIDENCE_TEXT = {
    "samples": "raw samples, Mann-Whitney U",
    "runs": "per-run values, Mann-Whitney U",
    "aggregates": "aggregates only, threshold only (weaker)",
}

_ROWS_SQL = """
SELECT pr.result_id, pr.run_id,
       COALESCE(m.model_name, pr.model_name) AS model, m.model_family,
       {hardware} AS hardware, hp.device_name AS device,
       pr.batch_size, pr.sequence_length, pr.precision, pr.test_case, {emulated} AS is_emulated,
       pr.average_latency_ms, pr.latency_p50_ms, pr.throughput_items_per_second, pr.memory_peak_mb,
       pr.latency_samples_ms, pr.is_simulated, pr.created_at
FROM performance_results pr
""" + dimension_joins("pr") + """
WHERE ({simulated}) {filters}
"""


@dataclass
class GroupComparison:
    """One benchmark configuration and the verdict on it."""

    key: dict
    result: ComparisonResult
    evidence: str
    rows_before: int
    rows_after: int
    metric: str
    unit: str

    @property
    def verdict(self) -> str:
        return self.result.verdict

    def to_dict(self) -> dict:
        data = dict(self.key)
        res = self.result.to_dict()
        data.update({
            "metric": self.metric, "unit": self.unit, "verdict": res["verdict"], "evidence": self.evidence,
            "median_before": res["median_before"], "median_after": res["median_after"],
            "change_pct": None if res["change_pct"] is None else round(res["change_pct"], 3),
            "p_value": res["p_value"], "samples_before": res["n_before"], "samples_after": res["n_after"],
            "rows_before": self.rows_before, "rows_after": self.rows_after, "note": res["note"],
        })
        return data


@dataclass
class RegressionReport:
    """What the check found. `has_regression` is what a CI gate exits on."""

    mode: str
    metric: str
    threshold_pct: float
    alpha: float
    include_simulated: bool
    regressions: list[GroupComparison] = field(default_factory=list)
    improvements: list[GroupComparison] = field(default_factory=list)
    unchanged: list[GroupComparison] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)
    description: str = ""

    @property
    def has_regression(self) -> bool:
        return bool(self.regressions)

    @property
    def compared(self) -> int:
        return len(self.regressions) + len(self.improvements) + len(self.unchanged)

    @property
    def verdict(self) -> str:
        if self.regressions:
            return "regression"
        if not self.compared:
            return "nothing to compare"
        return "improvement" if self.improvements else "no regression"

    def summary(self) -> str:
        if not self.compared:
            reason = f" ({len(self.skipped)} configuration(s) skipped)" if self.skipped else ""
            return f"nothing to compare: no configuration has both reference and current results{reason}"
        parts = [f"{len(self.regressions)} regression(s)", f"{len(self.improvements)} improvement(s)",
                 f"{len(self.unchanged)} unchanged"]
        if self.skipped:
            parts.append(f"{len(self.skipped)} skipped")
        return f"{self.verdict}: " + ", ".join(parts) + f" among {self.compared} compared configuration(s)"

    def to_dict(self) -> dict:
        return {
            "verdict": self.verdict,
            "has_regression": self.has_regression,
            "summary": self.summary(),
            "mode": self.mode,
            "description": self.description,
            "metric": self.metric,
            "unit": METRICS[self.metric][2],
            "higher_is_worse": METRICS[self.metric][1],
            "threshold_pct": self.threshold_pct,
            "alpha": self.alpha,
            "include_simulated": self.include_simulated,
            "counts": {"compared": self.compared, "regressions": len(self.regressions),
                       "improvements": len(self.improvements), "unchanged": len(self.unchanged),
                       "skipped": len(self.skipped)},
            "regressions": [g.to_dict() for g in self.regressions],
            "improvements": [g.to_dict() for g in self.improvements],
            "unchanged": [g.to_dict() for g in self.unchanged],
            "skipped": list(self.skipped),
        }

    def to_markdown(self) -> str:
        unit = METRICS[self.metric][2]
        icon = {"regression": "❌", "no regression": "✅", "improvement": "✅", "nothing to compare": "⚪"}
        lines = [f"### {icon[self.verdict]} Benchmark regression check: {self.verdict}", "",
                 f"{self.summary()}.", "",
                 f"Metric: {self.metric} ({unit}, {'lower' if METRICS[self.metric][1] else 'higher'} is better); "
                 f"a change counts when the median moves at least {self.threshold_pct:g}% and the Mann-Whitney "
                 f"U test gives p < {self.alpha:g}. {self.description}".rstrip(), ""]
        for title, items in (("Regressions", self.regressions), ("Improvements", self.improvements)):
            if not items:
                continue
            lines += [f"#### {title}", "",
                      f"| model | hardware | device | batch | seq len | precision | test case | median before ({unit}) "
                      f"| median after ({unit}) | change | p-value | evidence |",
                      "|---|---|---|---:|---:|---|---|---:|---:|---:|---:|---|"]
            for g in sorted(items, key=lambda g: -abs(g.result.change_pct or 0.0)):
                k, r = g.key, g.result
                lines.append(
                    f"| {_md(k['model'])}{' (simulated)' if k['is_simulated'] else ''} | {_md(k['hardware'])} | {_md(k['device'])} | {_md(k['batch_size'])} "
                    f"| {_md(k['sequence_length'])} | {_md(k['precision'])} | {_md(k['test_case'])} "
                    f"| {_num(r.median_before)} | {_num(r.median_after)} | {_pct(r.change_pct)} "
                    f"| {'n/a' if r.p_value is None else f'{r.p_value:.2g}'} "
                    f"| {EVIDENCE_TEXT[g.evidence]} ({r.n_before} vs {r.n_after}) |")
            lines.append("")
        weak = [g for g in self.regressions + self.improvements if g.evidence == EVIDENCE_AGGREGATES]
        if weak:
            lines += [f"{len(weak)} finding(s) rest on aggregates only (no raw samples on one side): the threshold "
                      "decided without a significance test, so noise cannot be ruled out.", ""]
        if self.skipped:
            reasons: dict[str, int] = {}
            for item in self.skipped:
                reasons[item["reason"]] = reasons.get(item["reason"], 0) + 1
            lines.append("Skipped: " + "; ".join(f"{n} x {reason}" for reason, n in sorted(reasons.items())) + ".")
            lines.append("")
        return "\n".join(lines).rstrip() + "\n"


def _md(value) -> str:
    if value is None:
        return "-"
    return str(value).replace("|", "\\|")


def _num(value) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:.4g}"


def _pct(value) -> str:
    return "n/a" if value is None else f"{value:+.1f}%"


def _fetch(conn, *, include_simulated: bool, model: str | None, hardware: str | None,
           model_family_too: bool = True) -> list[dict]:
    filters, params = [], []
    if model:  # as the reports' --model: a comma list; * matches anything; the name without its organisation
        from benchmark_db.reports import ReportFilters

        name_sql = "COALESCE(m.model_name, pr.model_name)"
        names, names_params = ReportFilters.make(model=model).where(
            model=name_sql, family=None, hardware=None, batch=None, precision=None, created=None, simulated=None)
        if model_family_too:  # the Python API's `model` also takes a family name (or pattern)
            families = [name.replace("\\", "\\\\").replace("_", "\\_").replace("*", "%") for name in _split(model)]
            names = f"({names} OR " + " OR ".join("m.model_family ILIKE ? ESCAPE '\\'" for _ in families) + ")"
            names_params += families
        filters.append(f"AND {names}")
        params += names_params
    if hardware:
        from benchmark_db.names import normalize_hardware_type

        kinds = [normalize_hardware_type(h) for h in _split(hardware)]
        filters.append(f"AND lower(COALESCE(hp.hardware_type, pr.hardware_type)) IN "
                       f"({', '.join('lower(?)' for _ in kinds)})")
        params += kinds
    from benchmark_db.reports import emulated_sql, hardware_label_sql

    emulated = emulated_sql("pr")
    sql = _ROWS_SQL.format(simulated="true" if include_simulated else "NOT pr.is_simulated",
                           filters=" ".join(filters), emulated=emulated,
                           hardware=hardware_label_sql("COALESCE(hp.hardware_type, pr.hardware_type)", emulated))
    cur = conn.execute(sql, params)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row)) for row in cur.fetchall()]


def _split(value) -> list[str]:
    items = value if isinstance(value, (list, tuple)) else [value]
    return [part.strip() for item in items for part in str(item).split(",") if part.strip()]


def _no_match_error(conn, *, include_simulated: bool, model, hardware):
    """DB004 for --model/--hardware that match nothing: a misspelt name must not pass a CI gate silently."""
    from benchmark_db.errors import QueryError

    rows = _fetch(conn, include_simulated=include_simulated, model=None, hardware=None)
    asked = " ".join(f"{flag} {','.join(_split(v))}" for flag, v in (("--model", model), ("--hardware", hardware)) if v)
    if not rows:
        return QueryError(f"no performance results match {asked}", "the database holds no "
                          + ("" if include_simulated else "measured ") + "performance results")
    models = sorted({str(r["model"]) for r in rows if r.get("model") is not None})
    kinds = sorted({str(r["hardware"]) for r in rows if r.get("hardware") is not None})
    shown = ", ".join(models[:12]) + (", ..." if len(models) > 12 else "")
    return QueryError(f"no performance results match {asked}",
                      f"models: {shown}; hardware: {', '.join(kinds)}")


def _group(rows: list[dict]) -> dict[tuple, list[dict]]:
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault(tuple(row[k] for k in GROUP_KEYS), []).append(row)
    return groups


def _when(row) -> dt.datetime:
    return row["created_at"] or dt.datetime.min


def _latest_run(rows: list[dict]) -> tuple[list[dict], list[dict]]:
    """Split a group's rows into those of its latest run and the earlier ones."""
    latest = max(rows, key=lambda r: (_when(r), r["result_id"] or 0))
    if latest["run_id"] is not None:
        current = [r for r in rows if r["run_id"] == latest["run_id"]]
    else:
        current = [r for r in rows if r["run_id"] is None and _when(r) == _when(latest)]
    ids = {id(r) for r in current}
    return current, [r for r in rows if id(r) not in ids]


def _samples(row: dict, metric: str) -> list[float] | None:
    samples = row.get("latency_samples_ms")
    if metric == "memory" or not samples:
        return None
    values = [float(s) for s in samples if s is not None and math.isfinite(float(s)) and float(s) > 0]
    if not values:
        return None
    if metric == "throughput":
        batch = row.get("batch_size") or 1
        return [batch * 1000.0 / s for s in values]
    return values


def _aggregate(row: dict, metric: str) -> float | None:
    value = row.get(METRICS[metric][0])
    if value is None and metric == "latency":
        value = row.get("latency_p50_ms")
    if value is None or not math.isfinite(float(value)):
        return None
    return float(value)


def compare_groups(before: list[dict], after: list[dict], metric: str, threshold_pct: float, alpha: float,
                   ) -> tuple[ComparisonResult | None, str, str | None]:
    """Compare two sides of one configuration: (result, evidence, reason it was skipped)."""
    higher_is_worse = METRICS[metric][1]
    ref_samples = [s for r in before for s in (_samples(r, metric) or [])]
    cur_samples = [s for r in after for s in (_samples(r, metric) or [])]
    if ref_samples and cur_samples:
        result = compare_samples(ref_samples, cur_samples, threshold_pct, alpha, higher_is_worse=higher_is_worse)
        return result, result.evidence, None
    ref = [v for v in (_aggregate(r, metric) for r in before) if v is not None]
    cur = [v for v in (_aggregate(r, metric) for r in after) if v is not None]
    if not ref or not cur:
        return None, EVIDENCE_AGGREGATES, f"no {metric} values on the {'reference' if not ref else 'current'} side"
    result = compare_samples(ref, cur, threshold_pct, alpha, higher_is_worse=higher_is_worse)
    return result, ("runs" if result.evidence == "samples" else EVIDENCE_AGGREGATES), None


def regression_check(conn, *, reference_conn=None, last_days: float | None = None, threshold_pct: float = 5.0,
                     alpha: float = 0.01, include_simulated: bool = False, model: str | None = None,
                     hardware: str | None = None, metric: str = "latency",
                     now: dt.datetime | None = None, model_family_too: bool = True) -> RegressionReport:
    """Compare current results with reference ones per configuration; see the module docstring.

    `model` matches a model name as the reports' --model does, and a model family unless `model_family_too`
    is False (the command line's --model: `bert` is the model named bert, not every bert-family model, as in
    every other report), `hardware` a hardware type. `now` (UTC) anchors `last_days`
    (default: the current time).
    """
    from benchmark_db.errors import UsageError

    if metric not in METRICS:
        raise UsageError(f"unknown metric {metric!r}", f"use one of {', '.join(METRICS)}")
    # `not x >= 0` rather than `x < 0`: NaN compares false both ways, and a NaN or infinite threshold would
    # switch the gate off (no change "moves at least nan%")
    if not (math.isfinite(threshold_pct) and threshold_pct >= 0) or not 0 < alpha < 1:
        raise UsageError(f"threshold {threshold_pct} / alpha {alpha} out of range",
                         "use a finite threshold >= 0 (percent) and 0 < alpha < 1")
    if reference_conn is not None and last_days is not None:
        raise UsageError("--reference-db and --last-days both given", "compare against one of them")
    opts = dict(include_simulated=include_simulated, model=model, hardware=hardware,
                model_family_too=model_family_too)
    current_rows = _fetch(conn, **opts)
    reference_rows = _fetch(reference_conn, **opts) if reference_conn is not None else None
    if (model or hardware) and not current_rows and not reference_rows:
        raise _no_match_error(conn, include_simulated=include_simulated, model=model, hardware=hardware)
    pairs: dict[tuple, tuple[list[dict], list[dict]]] = {}
    skipped: list[dict] = []
    if reference_conn is not None:
        mode = "reference-db"
        description = "Current database: latest run per configuration; reference database: its latest run."
        reference_groups = _group(reference_rows)
        current_groups = _group(current_rows)
        for key in sorted(set(reference_groups) | set(current_groups), key=_sort_key):
            if key not in current_groups:
                skipped.append(_skip(key, "only in the reference database"))
            elif key not in reference_groups:
                skipped.append(_skip(key, "no reference results (new configuration)"))
            else:
                pairs[key] = (_latest_run(reference_groups[key])[0], _latest_run(current_groups[key])[0])
    elif last_days is not None:
        if not (math.isfinite(last_days) and last_days > 0):  # NaN: compares false both ways
            raise UsageError(f"--last-days {last_days} is not positive", "give a finite number of days > 0")
        mode = "last-days"
        anchor = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
        cutoff = anchor - dt.timedelta(days=float(last_days))
        description = (f"Rows created since {cutoff:%Y-%m-%d %H:%M} UTC (last {last_days:g} days) against the "
                       "rows before.")
        for key, rows in sorted(_group(current_rows).items(), key=lambda kv: _sort_key(kv[0])):
            recent = [r for r in rows if r["created_at"] is not None and r["created_at"] >= cutoff]
            older = [r for r in rows if r["created_at"] is not None and r["created_at"] < cutoff]
            if not recent:
                skipped.append(_skip(key, f"no results in the last {last_days:g} days"))
            elif not older:
                skipped.append(_skip(key, "no results before the window (new configuration)"))
            else:
                pairs[key] = (older, recent)
    else:
        mode = "latest-run"
        description = "Latest run per configuration against every earlier row of that configuration."
        for key, rows in sorted(_group(current_rows).items(), key=lambda kv: _sort_key(kv[0])):
            latest, earlier = _latest_run(rows)
            if not earlier:
                skipped.append(_skip(key, "only one run (nothing earlier to compare with)"))
            else:
                pairs[key] = (earlier, latest)

    report = RegressionReport(mode=mode, metric=metric, threshold_pct=float(threshold_pct), alpha=float(alpha),
                              include_simulated=include_simulated, skipped=skipped, description=description)
    unit = METRICS[metric][2]
    for key, (before, after) in pairs.items():
        result, evidence, reason = compare_groups(before, after, metric, threshold_pct, alpha)
        if result is None:
            report.skipped.append(_skip(key, reason))
            continue
        item = GroupComparison(dict(zip(GROUP_KEYS, key)), result, evidence, len(before), len(after), metric, unit)
        {REGRESSION: report.regressions, IMPROVEMENT: report.improvements}.get(
            result.verdict, report.unchanged).append(item)
    return report


def _sort_key(key: tuple) -> tuple:
    return tuple((v is None, str(v) if not isinstance(v, int) else f"{v:012d}") for v in key)


def _skip(key: tuple, reason: str) -> dict:
    item = dict(zip(GROUP_KEYS, key))
    item["reason"] = reason
    return item

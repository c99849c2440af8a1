#!/usr/bin/env python3
"""Analytics over the benchmark database: trends, hardware and model comparisons, batch scaling, prediction
of untested configurations with honest error, anomalies, correlations and feature importance.

    python benchmark_db_analytics.py --db ./benchmark_db.duckdb --analysis hardware-comparison \
        --model-family bert --output-dir ./analytics_output [--interactive] [--format png|svg|pdf]

Each analysis writes its data (CSV and JSON), its charts and a markdown summary into --output-dir and prints
the summary. An analysis that has too little data says so and produces nothing it cannot back. Simulated
rows are left out unless --include-simulated. Emulated rows (a software WebGPU adapter such as SwiftShader:
`performance_results.is_emulated`) are real timings of the emulator, so they are kept apart as the reports keep
them: their hardware reads `<hardware> (emulated)` in every grouping, table, chart and prediction feature, and
every table with a hardware column has an `is_emulated` column; --hardware-type webgpu matches both.
Simulated rows (--include-simulated) are kept apart the same way: `<hardware> (simulated)` and an
`is_simulated` column. A missing value (precision, model family, ...) stays missing, never "unknown". The
statistics come from benchmark_db.stats.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

from benchmark_db.cli import (
    add_archive_option,
    add_common_options,
    add_db_option,
    make_writable_folder,
    missing_archive_mode,
    run_cli,
    write_text,
)
from benchmark_db.errors import BenchmarkDBError, UsageError
from benchmark_db.schema import dimension_joins

log = logging.getLogger("benchmark_db.analytics")

ANALYSES = ("performance-trends", "hardware-comparison", "model-comparison", "batch-scaling",
            "performance-prediction", "anomaly-detection", "correlation-analysis", "feature-importance")
DEFAULT_FEATURES = "model_family,hardware_type,batch_size,precision"
FEATURE_COLUMNS = {"model_family": "model_family", "hardware_type": "hardware", "hardware": "hardware",
                   "batch_size": "batch_size", "precision": "precision", "sequence_length": "sequence_length",
                   "model": "model", "model_name": "model", "device": "device", "modality": "modality",
                   "parameters_million": "parameters_million", "test_case": "test_case"}
NUMERIC_FEATURES = {"batch_size", "sequence_length", "parameters_million"}
MIN_PREDICTION_CONFIGS = 20
MAX_SERIES_PLOTTED = 12
# what detect_change_points can find at its defaults (alpha 0.005 after the search correction, 5 runs a side
# at least): the rank test cannot reach significance on fewer values, so 5 runs per side alone are not enough
_CHANGE_POINT_RULE = "5 or more on each side of a step, 14 in all unless the step is in the middle"
# grouped bar charts (model x hardware): a panel holds at most this many bars (and 12 models), the figure at
# most MAX_BAR_PANELS panels stacked, CHART_MAX_WIDTH_IN inches wide. The width used to grow by 1.4 in per
# model (40 models: 7,260 x 720 px, unreadable on any screen); beyond what fits, the models measured on the
# most hardware types are drawn and the chart and summary say how many are left out (the CSV has them all).
MAX_BARS_PER_PANEL = 48
MAX_MODELS_PER_PANEL = 12
MAX_BAR_PANELS = 4
CHART_MAX_WIDTH_IN = 16.0
SMALL_SAMPLE = 30
# simulated results read `<hardware> (simulated)` wherever a hardware type is shown or grouped, as in the
# reports' pivot: a simulated number is never averaged, fitted or ranked with a measured one
SIMULATED_SUFFIX = " (simulated)"


class AnalysisUnavailable(Exception):
    """The analysis cannot give an answer it can back (too little data, nothing matches the filters)."""


@dataclass
class AnalysisResult:
    name: str
    summary: str
    files: list[str] = field(default_factory=list)
    status: str = "ok"  # ok | unavailable | error
    reason: str = ""
    data: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"analysis": self.name, "status": self.status, "reason": self.reason, "files": self.files}


@dataclass
class Options:
    output_dir: Path
    fmt: str = "png"
    interactive: bool = False
    regression_threshold: float = 0.1
    prediction_features: tuple[str, ...] = tuple(DEFAULT_FEATURES.split(","))
    # add parameters_million and modality when the data has them (the default features); an explicit
    # --prediction-features is used exactly as given
    add_model_attributes: bool = True
    predict: dict | None = None
    seed: int = 0


# ------------------------------------------------------------------------------------------------- data

_SQL = """
SELECT pr.result_id, pr.run_id,
       COALESCE(m.model_name, pr.model_name) AS model, m.model_family, m.modality, m.parameters_million,
       CASE WHEN pr.is_simulated THEN ({hardware}) || '{simulated_suffix}' ELSE {hardware} END AS hardware,
       {emulated} AS is_emulated, hp.device_name AS device,
       pr.test_case, pr.batch_size, pr.sequence_length, pr.precision,
       pr.average_latency_ms AS latency_ms, pr.latency_p50_ms, pr.throughput_items_per_second AS throughput,
       pr.memory_peak_mb AS memory_mb, pr.latency_samples_ms AS samples, pr.is_simulated,
       COALESCE(pr.created_at, tr.started_at) AS created_at
FROM performance_results pr
""" + dimension_joins("pr") + """
LEFT JOIN test_runs tr ON tr.run_id = pr.run_id
WHERE ({simulated}) {filters}
ORDER BY created_at, pr.result_id
"""


def load_performance(conn, *, model_family: str | None = None, hardware_type: str | None = None,
                     include_simulated: bool = False):
    """Performance rows with their model and hardware attributes, as a DataFrame (one row per result).

    `hardware` is the reports' label: `webgpu (emulated)` for a result measured on an emulated device, so no
    analysis groups, averages or fits it with the real device of that type; `is_emulated` says the same as a
    column. A simulated result's hardware reads `cpu (simulated)` for the same reason (`is_simulated`). The
    --hardware-type filter reads the type itself, so `webgpu` matches the emulated rows too."""
    from benchmark_db.reports import emulated_sql, hardware_label_sql

    filters, params = [], []
    if model_family:
        filters.append("AND lower(m.model_family) = lower(?)")
        params.append(model_family)
    if hardware_type:
        from benchmark_db.names import normalize_hardware_type

        # the name as the reports read it (gpu -> cuda), so the DB004 of no match names the same filter
        filters.append("AND lower(COALESCE(hp.hardware_type, pr.hardware_type)) = lower(?)")
        params.append(normalize_hardware_type(hardware_type))
    sql = _SQL.format(simulated="true" if include_simulated else "NOT pr.is_simulated", filters=" ".join(filters),
                      hardware=hardware_label_sql("COALESCE(hp.hardware_type, pr.hardware_type)", emulated_sql("pr")),
                      emulated=emulated_sql("pr"), simulated_suffix=SIMULATED_SUFFIX)
    df = conn.execute(sql, params).df()
    df["is_emulated"] = df["is_emulated"].astype(bool)
    df["is_simulated"] = df["is_simulated"].astype(bool)
    # Fill what can be derived: latency from throughput and batch, and the other way round.
    lat_missing = df["latency_ms"].isna()
    df.loc[lat_missing, "latency_ms"] = df.loc[lat_missing, "latency_p50_ms"]
    lat_missing = df["latency_ms"].isna() & df["throughput"].gt(0) & df["batch_size"].gt(0)
    df.loc[lat_missing, "latency_ms"] = df.loc[lat_missing, "batch_size"] * 1000.0 / df.loc[lat_missing, "throughput"]
    thr_missing = df["throughput"].isna() & df["latency_ms"].gt(0) & df["batch_size"].gt(0)
    df.loc[thr_missing, "throughput"] = df.loc[thr_missing, "batch_size"] * 1000.0 / df.loc[thr_missing, "latency_ms"]
    # a missing value (test case, precision, model family, device, modality) stays missing: the analyses group
    # with dropna=False and leave it out of labels. Filled with "unknown" it merged with a stored "unknown",
    # the CSV and JSON wrote "unknown" for NULL, and a NULL modality counted as one more modality
    df["samples"] = df["samples"].apply(_as_samples)
    return df


def _as_samples(value):
    import numpy as np

    if value is None or not hasattr(value, "__len__") or isinstance(value, str) or len(value) == 0:
        return None
    arr = np.asarray([np.nan if v is None else v for v in value], dtype=float)
    arr = arr[np.isfinite(arr)]
    return arr if arr.size else None


def _config_keys():
    return ["model", "model_family", "hardware", "device", "batch_size", "sequence_length", "precision", "test_case"]


def _pooled(values_list) -> list[float]:
    out: list[float] = []
    for values in values_list:
        if values is not None:
            out.extend(float(v) for v in values if v is not None and math.isfinite(v))
    return out


# ------------------------------------------------------------------------------------------------ output


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from cycler import cycler

    # up to MAX_SERIES_PLOTTED lines share a chart: tab10's ten colours, then their light variants (tab20),
    # so no two series in one legend get the same colour
    tab20 = matplotlib.colormaps["tab20"].colors
    plt.rcParams["axes.prop_cycle"] = cycler(color=list(tab20[0::2]) + list(tab20[1::2]))
    return plt


def _log_if_wide(ax, values, axis="y") -> None:
    """A log axis when the values span orders of magnitude (the rule of benchmark_db.charts)."""
    from benchmark_db.charts import wants_log

    if wants_log(values):
        (ax.set_yscale if axis == "y" else ax.set_xscale)("log")


def _plotly_axis_type(values) -> str:
    """`log` or `linear` for a plotly axis, by the same rule as the PNG charts."""
    from benchmark_db.charts import wants_log

    return "log" if wants_log(values) else "linear"


def _log_ticks(low: float, high: float) -> list[float]:
    """Tick values for a log axis from `low` to `high`: 1-2-5 per decade (1-1.5-2-3-5-7 when that gives too
    few, decades only when too many), so it never shows plotly's stray minor digits ("9 ... 2 3 ... 9")."""
    first, last = math.floor(math.log10(low)), math.ceil(math.log10(high))

    def within(mantissas, step=1):
        return [m * 10.0 ** e for e in range(first, last + 1, step) for m in mantissas
                if low * (1 - 1e-9) <= m * 10.0 ** e <= high * (1 + 1e-9)]

    ticks = within((1, 2, 5))
    if len(ticks) < 3:
        ticks = within((1, 1.5, 2, 3, 5, 7))
    if len(ticks) < 2:  # a very narrow range: its two ends
        ticks = [low, high] if low != high else [low]
    elif len(ticks) > 10:
        ticks = within((1,))
        step = 1
        while len(ticks) > 10:
            step += 1
            ticks = within((1,), step)
    return ticks


def _tick_text(value: float) -> str:
    if value >= 10_000:
        return f"{value:,.0f}" if value < 1e7 else f"{value:.0e}"
    if value < 1e-3:
        return f"{value:.0e}"
    return f"{float(f'{value:.3g}'):g}"


def _fit_plotly_axes(fig, *, batch_axis: str | None = None) -> int:
    """Fit each log axis of `fig` to the points it draws, error bars included, and give it readable ticks.

    plotly's autorange took in the y values of points it cannot draw (no batch size on a log x axis) and the
    zero or missing ends of confidence intervals, so speed-ups between 0.2 and 12 sat on an axis from 0.001
    to 1000, and its log ticks printed stray minor digits. `batch_axis` ("x" or "y") marks the axis of batch
    sizes, which is ticked at the sizes measured. Returns how many points cannot be drawn (a missing or
    non-positive coordinate on a log axis), for the page to say."""
    import numpy as np

    log_axes = [a for a in ("x", "y") if getattr(fig.layout, f"{a}axis").type == "log"]
    if not log_axes:
        return 0
    found: dict[str, list[float]] = {a: [] for a in log_axes}
    undrawn = 0
    for trace in fig.data:
        if trace.type != "scatter" or trace.x is None or trace.y is None:
            continue
        coords = {a: np.array([_as_float(v) for v in getattr(trace, a)]) for a in log_axes}
        ok = np.ones(len(trace.x), dtype=bool)
        for a in log_axes:
            ok &= np.isfinite(coords[a]) & (coords[a] > 0)
        undrawn += int((~ok).sum())
        for a in log_axes:
            drawn = coords[a][ok]
            found[a].extend(drawn.tolist())
            bars = getattr(trace, f"error_{a}")
            if bars is not None and bars.array is not None:
                plus = np.asarray(bars.array, dtype=float)[ok]
                minus = np.asarray(bars.arrayminus if bars.arrayminus is not None else bars.array, dtype=float)[ok]
                for end in (drawn + plus, drawn - minus):
                    found[a].extend(end[np.isfinite(end) & (end > 0)].tolist())
    for a in log_axes:
        if not found[a]:
            continue
        low, high = min(found[a]), max(found[a])
        span = math.log10(high) - math.log10(low)
        pad = max(span * 0.06, 0.05)
        axis = {"range": [math.log10(low) - pad, math.log10(high) + pad]}
        if a == batch_axis:
            sizes = sorted({v for v in found[a] if float(v).is_integer()})
            ticks = sizes if 0 < len(sizes) <= 12 else [2.0 ** e for e in range(0, 21)
                                                        if low <= 2.0 ** e <= high]
        else:
            ticks = _log_ticks(10 ** axis["range"][0], 10 ** axis["range"][1])  # the padding may hold one more
        axis.update(tickmode="array", tickvals=ticks, ticktext=[_tick_text(t) for t in ticks])
        fig.update_layout({f"{a}axis": axis})
    return undrawn


def _as_float(value) -> float:
    """A coordinate as a float; NaN for None, pandas' NA and anything else that is no number."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _undrawn_note(count: int, what: str) -> str:
    return (f" {count} point{'s' if count != 1 else ''} without {what} cannot be drawn on these axes; the CSV and "
            "JSON hold them." if count else "")


def _present(value) -> bool:
    from benchmark_db.reports import is_missing

    # a stored "unknown" says no more than a missing value, so labels leave both out, as the reports'
    # configuration_labels do; the CSV and JSON keep them apart (NULL empty, "unknown" as stored)
    return not is_missing(value) and str(value) not in ("", "unknown")


def _series_label(model, hardware=None, batch=None, precision=None) -> str:
    """`model | hardware | bs 8 | fp16`, leaving out the parts that are missing (no `bs <NA>`, no `unknown`)."""
    parts = [str(model) if _present(model) else "unknown model"]
    if _present(hardware):
        parts.append(str(hardware))
    if _present(batch):
        parts.append(f"bs {int(batch)}" if float(batch).is_integer() else f"bs {batch}")
    if _present(precision):
        parts.append(str(precision))
    return " | ".join(parts)


CONFIGURATION_COLUMNS = ("test_case", "sequence_length")


def _configuration_labels(df, per_model: bool = True, precision: bool = False) -> list[str]:
    from benchmark_db.reports import configuration_labels  # one rule for the reports' charts and these

    return configuration_labels(df, per_model, precision)


def _varying(table, columns=CONFIGURATION_COLUMNS) -> list[str]:
    """Those of `columns` that take more than one value in `table`: the markdown tables show the test case and
    sequence length where they tell rows apart (the CSV and JSON always have them)."""
    return [c for c in columns if c in table and table[c].nunique(dropna=False) > 1]


def _series_labels(keys: list[str], series_keys) -> list[str]:
    """`_series_label` of each series (a tuple of `keys` values), its model named with its configuration where
    the model has several series of different test cases or sequence lengths."""
    import pandas as pd

    frame = pd.DataFrame([dict(zip(keys, key)) for key in series_keys], columns=keys)
    models = _configuration_labels(frame)
    return [_series_label(model, row.get("hardware"), row.get("batch_size"), row.get("precision"))
            for model, row in zip(models, frame.to_dict("records"))]


def _wrapped_label(text: str, width: int, lines: int = 3) -> str:
    """`text` on at most `lines` lines of at most `width` characters, broken after a space, /, -, _ or . where
    it can be, the rest cut with an ellipsis: long model names no longer run into each other under the bars."""
    import re

    pieces: list[str] = []
    for token in re.findall(r"[^ /_.-]*[ /_.-]?", str(text)):
        while len(token) > width:  # a piece longer than a line is cut where the line ends
            pieces.append(token[:width])
            token = token[width:]
        if token:
            pieces.append(token)
    out = [""]
    for piece in pieces:
        if out[-1] and len(out[-1]) + len(piece.rstrip()) > width:
            out.append("")
        out[-1] += piece
    if len(out) > lines:
        out = out[:lines]
        out[-1] = out[-1][:max(1, width - 1)].rstrip() + "\u2026"
    return "\n".join(line.strip() for line in out)


def _grouped_bar_figure(plt, table, hws, value: str, low: str, high: str, *, title: str, ylabel: str):
    """A bounded chart of one bar per model x hardware: panels of at most MAX_MODELS_PER_PANEL models
    (fewer with many hardware types), stacked, sharing one y axis. Returns (figure, models shown, models).

    When the models do not fit in MAX_BAR_PANELS panels, those measured on the most hardware types (then with
    the most results, then by name) are drawn, and the title says how many of how many."""
    models_all = sorted(table["model"].unique())
    per_panel = max(2, min(MAX_MODELS_PER_PANEL, MAX_BARS_PER_PANEL // max(1, len(hws))))
    panels = max(1, min(MAX_BAR_PANELS, math.ceil(len(models_all) / per_panel)))
    shown = models_all
    if len(models_all) > per_panel * panels:
        coverage = table.groupby("model").agg(hardware=("hardware", "nunique"), rows=("rows", "sum"))
        ranked = sorted(models_all, key=lambda m: (-coverage.at[m, "hardware"], -coverage.at[m, "rows"], str(m)))
        shown = sorted(ranked[:per_panel * panels])
        title += f"\n{len(shown)} of {len(models_all)} models shown (measured on the most hardware types)"
    per_panel = math.ceil(len(shown) / panels)  # balanced panels: 9 models in 2 panels are 5 + 4, not 8 + 1
    group_in = 1.1 if len(hws) <= 4 else 0.22 * len(hws) + 0.25
    width = min(CHART_MAX_WIDTH_IN, max(8.0, group_in * per_panel + 4.5))
    label_chars = max(10, min(28, int((width - 4.5) / per_panel / 0.075)))  # about 0.075 in per 8 pt character
    fig, axes = plt.subplots(panels, 1, figsize=(width, 1.3 + 4.0 * panels), sharey=True, squeeze=False)
    for i, ax in enumerate(axes[:, 0]):
        chunk = shown[i * per_panel:(i + 1) * per_panel]
        _grouped_bars(ax, table, chunk, hws, value, low, high,
                      labels=[_bar_label(m, label_chars) for m in chunk])
        if len(chunk) < per_panel:  # a short last panel keeps the others' bar widths
            ax.set_xlim(-0.5, per_panel - 0.5)
        _log_if_wide(ax, table[table["model"].isin(shown)][value])
        ax.set_ylabel(ylabel)
    axes[0, 0].set_title(title)
    axes[-1, 0].set_xlabel("model")
    _legend_beside(axes[0, 0], title="hardware")
    return fig, shown, models_all


def _bar_label(text: str, width: int) -> str:
    """A bar group's label wrapped under it; a model's configuration (`bert · forward · seq 512`, see
    `_configuration_labels`) on lines of its own, so cutting a long model name never cuts off which
    configuration the bars are (two bars read `bert · forward · seq…`)."""
    name, dot, configuration = str(text).partition(" · ")
    if not dot:
        return _wrapped_label(text, width)
    return _wrapped_label(name, width, lines=2) + "\n" + _wrapped_label(configuration, width, lines=2)


def _chart_note(shown, models, batch) -> str:
    """A line for the summary when the chart leaves models out, else nothing."""
    if len(shown) == len(models):
        return ""
    return (f"\nOnly {len(shown)} of {len(models)} models are shown in the chart (batch size {batch}; those "
            "measured on the most hardware types, to keep it readable); the CSV and JSON hold all of them.\n")


def _grouped_bars(ax, table, models, hws, value: str, low: str, high: str, labels=None) -> None:
    """One bar per model x hardware with its CI as error bars, the bars of each model centred on its tick.

    A model measured on fewer hardware types than the chart shows gets only its own bars, still centred:
    a lone bar sits on its tick, not at the left edge of an empty group."""
    import numpy as np

    width = 0.8 / max(1, len(hws))
    present = {model: [hw for hw in hws if ((table["model"] == model) & (table["hardware"] == hw)).any()]
               for model in models}
    for hw in hws:
        part = table[table["hardware"] == hw].set_index("model").reindex(models)
        y = part[value].to_numpy(dtype=float)
        err = np.vstack([np.nan_to_num(y - part[low].to_numpy(dtype=float), nan=0.0),
                         np.nan_to_num(part[high].to_numpy(dtype=float) - y, nan=0.0)])
        x = np.array([i + (present[m].index(hw) - (len(present[m]) - 1) / 2) * width if hw in present[m] else i
                      for i, m in enumerate(models)], dtype=float)
        ax.bar(x, y, width, label=hw, yerr=np.clip(err, 0, None), capsize=3)
    ax.set_xticks(np.arange(len(models)))
    ax.set_xticklabels(labels or models, fontsize=8)


def _legend_beside(ax, **kwargs) -> None:
    """The legend right of the axes, where it cannot cover bars or points."""
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, **kwargs)


def _save_fig(fig, opts: Options, stem: str, files: list[str]) -> None:
    path = opts.output_dir / f"{stem}.{opts.fmt}"
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    _plt().close(fig)
    files.append(str(path))


def _write_data(df, opts: Options, stem: str, files: list[str], extra: dict | None = None) -> None:
    csv_path = opts.output_dir / f"{stem}.csv"
    json_path = opts.output_dir / f"{stem}.json"
    df.to_csv(csv_path, index=False)
    records = json.loads(df.to_json(orient="records", date_format="iso"))
    payload = {"analysis": stem, "rows": records}
    if extra:
        payload.update(extra)
    json_path.write_text(json.dumps(payload, indent=2, default=str), encoding="utf-8")
    files += [str(csv_path), str(json_path)]


def _write_summary(name: str, text: str, opts: Options, files: list[str]) -> str:
    path = opts.output_dir / f"{name}.md"
    path.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
    files.append(str(path))
    return text


def _md_table(df, columns=None, max_rows=25, floatfmt="{:.4g}") -> str:
    import pandas as pd

    columns = columns or list(df.columns)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for _, row in df.head(max_rows).iterrows():
        cells = []
        for c in columns:
            v = row[c]
            if v is None or v is pd.NA or v is pd.NaT:  # a missing batch size read "<NA>"
                cells.append("")
            elif isinstance(v, float):
                cells.append("" if math.isnan(v) else floatfmt.format(v))
            else:
                # "<" escaped as in output.to_markdown: a model named "<b>x</b>" rendered as HTML
                cells.append(str(v).replace("|", "\\|").replace("<", "\\<").replace("\n", " "))
        lines.append("| " + " | ".join(cells) + " |")
    if len(df) > max_rows:
        lines.append(f"\n({len(df) - max_rows} more rows in the CSV)")
    return "\n".join(lines)


_INTERACTIVE_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;margin:1rem;}} label{{margin-right:1rem;}}
select{{max-width:20rem;}} .note{{color:#555;font-size:0.9rem;}}
.nothing{{font-size:1.2rem;padding:2rem;border:1px dashed #bbb;border-radius:6px;text-align:center;}}</style>
</head><body>
<h1>{title}</h1>
<p class="note">{note}</p>
{filters}
{figures}
<script>
(function() {{
  function apply() {{
    var m = value('filter-model'), h = value('filter-hardware');
    document.querySelectorAll('.plotly-graph-div').forEach(function(div) {{
      if (!div.data) return;
      var vis = div.data.map(function(tr) {{
        var meta = tr.meta || {{}};
        var okM = !m || !meta.model || meta.model === m;
        var okH = !h || !meta.hardware || meta.hardware === h;
        return okM && okH;
      }});
      Plotly.restyle(div, {{visible: vis}});
    }});
  }}
  function value(id) {{ var el = document.getElementById(id); return el ? el.value : ''; }}
  // a page shows only the menus that have a choice (none without charts)
  ['filter-model', 'filter-hardware'].forEach(function(id) {{
    var el = document.getElementById(id);
    if (el) el.addEventListener('change', apply);
  }});
}})();
</script>
</body></html>
"""


INTERACTIVE_HINT = "Zoom by dragging, hover for values, double-click to reset"  # + the filters the page has


def _write_interactive(name: str, title: str, figures: list, opts: Options, files: list[str], note: str = "") -> None:
    """One self-contained page (plotly.js inlined once) with model and hardware filters over its traces."""
    import html

    import plotly.io as pio

    models, hardware = set(), set()
    parts = []
    for i, fig in enumerate(figures):
        for trace in fig.data:
            meta = trace.meta or {}
            if isinstance(meta, dict):
                if meta.get("model"):
                    models.add(str(meta["model"]))
                if meta.get("hardware"):
                    hardware.add(str(meta["hardware"]))
        parts.append(pio.to_html(fig, include_plotlyjs=(i == 0), full_html=False, div_id=f"fig-{name}-{i}",
                                 config={"displaylogo": False, "responsive": True}))
    if figures:
        # a menu only where it has a choice: a chart of the whole data set (feature importance) or of one
        # model has no per-trace model to pick, and an empty "all" menu reads as broken
        menus = [(label, key, sorted(values)) for label, key, values in (("Model", "model", models),
                                                                        ("Hardware", "hardware", hardware))
                 if len(values) > 1]
        filters = "\n".join(
            f'<label>{label} <select id="filter-{key}"><option value="">all</option>'
            + "".join(f'<option value="{html.escape(v)}">{html.escape(v)}</option>' for v in values)
            + "</select></label>" for label, key, values in menus)
        filters = f"<div>{filters}</div>" if filters else ""
        body = "\n".join(parts)
        hint = INTERACTIVE_HINT + (f"; filter traces by {' and '.join(m[0].lower() for m in menus)}."
                                   if menus else ".")
    else:  # nothing to draw: say so instead of drawing empty axes
        filters, hint = "", ""
        body = f'<p class="nothing">{html.escape(note or "Nothing to plot.")}</p>'
    page = _INTERACTIVE_PAGE.format(
        title=html.escape(title),
        note=html.escape(hint + note if figures else ""),
        filters=filters, figures=body)
    path = opts.output_dir / f"{name}.html"
    path.write_text(page, encoding="utf-8")
    files.append(str(path))


# -------------------------------------------------------------------------------------------- analyses


def _bootstrap_ratio(ref, cur, rng, draws=1000):
    """Percentile bootstrap 95% CI of median(ref) / median(cur) (the speed-up of cur over ref in latency)."""
    import numpy as np

    ref = np.asarray(ref, dtype=float)
    cur = np.asarray(cur, dtype=float)
    if ref.size < 3 or cur.size < 3:
        return None, None
    rm = np.median(ref[rng.integers(0, ref.size, (draws, ref.size))], axis=1)
    cm = np.median(cur[rng.integers(0, cur.size, (draws, cur.size))], axis=1)
    ratios = rm / cm
    return float(np.percentile(ratios, 2.5)), float(np.percentile(ratios, 97.5))


def _bootstrap_median(values, rng, draws=1000):
    import numpy as np

    values = np.asarray(values, dtype=float)
    if values.size < 3:
        return None, None
    meds = np.median(values[rng.integers(0, values.size, (draws, values.size))], axis=1)
    return float(np.percentile(meds, 2.5)), float(np.percentile(meds, 97.5))


def _side_values(rows) -> tuple[list[float], str]:
    """Raw latency samples of a group's rows when present, else one aggregate per row."""
    samples = _pooled(rows["samples"])
    if samples:
        return samples, "samples"
    return [float(v) for v in rows["latency_ms"].dropna()], "aggregates"


def _throughput_values(rows) -> tuple[list[float], str]:
    """Throughput values of a group the way --compare-hardware of the query tool and the visualizer take them
    (benchmark_db.reports, `_distribution_sql`): one per raw latency sample, batch_size * 1000 / latency_ms,
    when every result of the group has samples (all above 0) and a batch size, else the stored per-result
    values. The second item is the basis in the compare output's words. Its median used to be that of the
    stored values beside a latency median from the samples, so the two columns of a row disagreed."""
    import pandas as pd

    per_sample: list[float] = []
    for samples, batch in zip(rows["samples"], rows["batch_size"]):
        # a missing batch size is pd.NA (a nullable column), whose truth value raises; missing samples None or NaN
        if (not hasattr(samples, "__len__") or len(samples) == 0 or pd.isna(batch) or not batch > 0
                or not min(samples) > 0):
            return [float(v) for v in rows["throughput"].dropna()], "per-result values"
        per_sample.extend(float(batch) * 1000.0 / float(v) for v in samples)
    return per_sample, "raw samples"


def _growth_pct(log_change: float) -> float | None:
    """A change in log latency as a percentage: -50 halved, +100 doubled, always above -100. None beyond the
    float range (the per-day rate of runs seconds apart: ~ e^6000 for a doubling within ten seconds)."""
    try:
        return math.expm1(log_change) * 100
    except OverflowError:
        return None


def performance_trends(df, opts: Options) -> AnalysisResult:
    """Latency trend of every model x hardware x batch series with 3+ runs at different times.

    One point per run (the median latency of its rows). Latency changes multiply (2x slower, half the time),
    so the trend is a Theil-Sen fit of log(latency) against days; a straight line on milliseconds extrapolated
    a steep, noisy fall past zero and reported changes below -100%. The columns:

    - ``change_pct_over_span``: the fitted change across the series' own span,
      ``(exp(log_slope * span_days) - 1) * 100``: -50 is halved, +100 doubled, never -100 or below.
      ``change_pct_over_span_ci_low/high``: the same for the ends of the 95% CI of the log slope.
    - ``slope_pct_per_day``: the fitted compound rate per day of the same log fit, ``(exp(log_slope) - 1) *
      100``, so ``(1 + slope_pct_per_day / 100) ** span_days`` is the change over the span. Runs minutes
      apart extrapolate far beyond what was seen here: read ``change_pct_over_span`` first.
    - ``slope_ms_per_day``, ``slope_ci_low``, ``slope_ci_high``: a Theil-Sen fit on milliseconds and its 95%
      CI, in ms per day: the absolute rate, for readers who think in ms. It is a separate fit, so it is not
      ``slope_pct_per_day`` times the median.
    - ``kendall_tau``, ``p_value``, ``significant``: rank-based, the same on latency and log latency.
    """
    import numpy as np
    import pandas as pd
    from scipy import stats as sps

    from benchmark_db.stats import MIN_RUNS_FOR_CHANGE_POINTS, detect_change_points

    files: list[str] = []
    df = df.dropna(subset=["latency_ms", "created_at"])
    # a latency of 0 ms or less is no measurement, and has no logarithm for the trend fit
    df = df[df["latency_ms"] > 0]
    keys = ["model", "hardware", "batch_size", "precision", "sequence_length", "test_case", "is_emulated",
            "is_simulated"]
    rows, series = [], []
    for key, group in df.groupby(keys, dropna=False):
        # one point per run: median latency of the run's rows
        per_run = group.groupby(["run_id", "created_at"], dropna=False)["latency_ms"].median().reset_index()
        per_run = per_run.sort_values("created_at")
        if len(per_run) < 3:
            continue
        t = (per_run["created_at"] - per_run["created_at"].iloc[0]).dt.total_seconds().to_numpy() / 86400.0
        y = per_run["latency_ms"].to_numpy(dtype=float)
        if np.ptp(t) == 0:
            continue
        slope, _, lo, hi = sps.theilslopes(y, t)
        # the relative columns come from log latency (see the docstring): a fall compounds toward 0, never past it
        log_slope, _, log_lo, log_hi = sps.theilslopes(np.log(y), t)
        span = float(t[-1])
        tau, p_value = sps.kendalltau(t, y)
        cps = detect_change_points(y)
        rows.append(dict(zip(keys, key)) | {
            "runs": len(y), "first": per_run["created_at"].iloc[0], "last": per_run["created_at"].iloc[-1],
            "median_latency_ms": float(np.median(y)), "slope_ms_per_day": slope,
            "slope_pct_per_day": _growth_pct(log_slope),
            # the fitted change across the runs' own time span: a per-day slope of runs minutes apart
            # extrapolates far beyond what was seen (+68,000 %/day for a 50% step within an hour)
            "span_days": span, "change_pct_over_span": _growth_pct(log_slope * span),
            "change_pct_over_span_ci_low": _growth_pct(log_lo * span),
            "change_pct_over_span_ci_high": _growth_pct(log_hi * span),
            "slope_ci_low": lo, "slope_ci_high": hi, "kendall_tau": tau, "p_value": p_value,
            "significant": bool(p_value < 0.05), "change_points": len(cps),
            "change_points_detail": "; ".join(f"run {cp.index} ({per_run['created_at'].iloc[cp.index]:%Y-%m-%d}): "
                                              f"{cp.change_pct:+.1f}%" for cp in cps)})
        series.append((key, per_run, cps))
    if not rows:
        raise AnalysisUnavailable("no model x hardware x batch series has 3 or more runs at different times; "
                                  "a trend needs a history")
    table = pd.DataFrame(rows).sort_values(["p_value", "model"])
    _write_data(table, opts, "performance-trends", files)
    # Chart: the series with most runs, change points marked.
    plt = _plt()
    # Series with change points first, then the longest, spread over models and hardware (round robin).
    ranked = sorted(range(len(series)), key=lambda i: (-len(series[i][2]), -len(series[i][1]), str(series[i][0])))
    pairs_total = len({(s[0][0], s[0][1]) for s in series})
    picked: list[int] = []
    seen: set = set()
    for i in ranked + ranked:
        pair = (series[i][0][0], series[i][0][1])
        if i in picked or (pair in seen and len(seen) < min(pairs_total, MAX_SERIES_PLOTTED)):
            continue
        picked.append(i)
        seen.add(pair)
        if len(picked) >= MAX_SERIES_PLOTTED:
            break
    # a model measured in several test cases or sequence lengths has one series each: the labels say which
    labels = dict(zip((s[0] for s in series), _series_labels(keys, [s[0] for s in series])))
    chosen = [series[i] for i in picked]
    fig, ax = plt.subplots(figsize=(13, 6))
    all_y = []
    for key, per_run, cps in chosen:
        label = labels[key]
        line, = ax.plot(per_run["created_at"], per_run["latency_ms"], marker="o", ms=3, label=label)
        all_y += list(per_run["latency_ms"])
        for cp in cps:
            ax.axvline(per_run["created_at"].iloc[cp.index], color=line.get_color(), ls="--", lw=1)
            ax.annotate(f"{cp.change_pct:+.0f}%", (per_run["created_at"].iloc[cp.index], cp.median_after),
                        color=line.get_color(), fontsize=8)
    _log_if_wide(ax, all_y)
    ax.set_title("Latency over time per model x hardware x batch (dashed: detected change points)")
    ax.set_xlabel("run time (UTC)")
    ax.set_ylabel("median latency per run (ms)")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.autofmt_xdate()
    _save_fig(fig, opts, "performance-trends", files)
    if opts.interactive:
        import plotly.graph_objects as go

        fig = go.Figure()
        for key, per_run, cps in series:
            fig.add_trace(go.Scatter(x=per_run["created_at"], y=per_run["latency_ms"], mode="lines+markers",
                                     name=labels[key],
                                     meta={"model": str(key[0]), "hardware": str(key[1])},
                                     hovertemplate="%{x}<br>%{y:.3f} ms<extra>%{fullData.name}</extra>"))
            if cps:
                fig.add_trace(go.Scatter(x=[per_run["created_at"].iloc[c.index] for c in cps],
                                         y=[c.median_after for c in cps], mode="markers",
                                         marker={"symbol": "x", "size": 12}, name=f"change points {labels[key]}",
                                         meta={"model": str(key[0]), "hardware": str(key[1])},
                                         text=[f"{c.change_pct:+.1f}% (p={c.p_value:.2g})" for c in cps]))
        axis = _plotly_axis_type([v for _, per_run, _ in series for v in per_run["latency_ms"]])
        fig.update_layout(title="Latency over time", xaxis_title="run time (UTC)",
                          yaxis_title="latency (ms" + (", log scale)" if axis == "log" else ")"), yaxis_type=axis)
        _fit_plotly_axes(fig)
        _write_interactive("performance-trends", "Performance trends", [fig], opts, files)
    sig = table[table["significant"]]
    text = ["## Performance trends\n", f"{len(table)} series with 3+ runs; {len(sig)} with a significant trend "
            f"(Kendall tau, p < 0.05); {int(table['change_points'].sum())} change point(s) detected. "
            "change_pct_over_span: the Theil-Sen trend of log latency across each series' own span "
            "(-50% = half the latency, +100% = double).\n"]
    if len(table) and table["runs"].max() < MIN_RUNS_FOR_CHANGE_POINTS:
        text.append(f"Caveat: the longest series has {table['runs'].max()} runs; change points need at least "
                    f"{MIN_RUNS_FOR_CHANGE_POINTS} runs ({_CHANGE_POINT_RULE}) and trends on a few runs are weak "
                    "evidence.\n")
    text.append(_md_table(table, ["model", "hardware", "batch_size", "precision"] + _varying(table)
                          + ["runs", "median_latency_ms", "span_days", "change_pct_over_span", "p_value",
                             "change_points"], max_rows=15))
    return AnalysisResult("performance-trends", _write_summary("performance-trends", "\n".join(text), opts, files),
                          files)


def hardware_comparison(df, opts: Options) -> AnalysisResult:
    import numpy as np
    import pandas as pd

    files: list[str] = []
    df = df.dropna(subset=["latency_ms"])
    rng = np.random.default_rng(opts.seed)
    rows, lone_simulated = [], 0
    # one comparison per configuration: a model's load_model and forward rows, or its sequence lengths 32 and
    # 512, are different work and were pooled into one median that described none of them. Within one, each
    # hardware type competes at each precision it ran at (a CPU's fp16 2 ms and fp32 10 ms made one median of
    # 6 ms, and CUDA fp32 read 1.5x faster, not 2.5x); CUDA at fp16 against the CPU at fp32 is still compared,
    # and each row says its precision. Simulated results are compared among themselves only (their own
    # reference): a simulated speed-up over a measured CPU, or a simulated "best hardware", is no finding
    for (model, family, case, batch, seq, simulated), group in df.groupby(
            ["model", "model_family", "test_case", "batch_size", "sequence_length", "is_simulated"], dropna=False):
        by_hw = {(hw, prec): g for (hw, prec), g in group.groupby(["hardware", "precision"], dropna=False)}
        if len({hw for hw, _ in by_hw}) < 2:
            lone_simulated += len(group) if simulated else 0  # said in the summary: --include-simulated was asked
            continue
        medians = {k: float(np.median(_side_values(g)[0])) for k, g in by_hw.items()}
        # the reference is a real device: the CPU (at fp32 where it ran at several precisions, else its slowest),
        # else the slowest real one (an emulator only when all are)
        real = {k: m for k, m in medians.items() if not by_hw[k]["is_emulated"].any()} or medians
        cpus = {k: m for k, m in real.items() if k[0].removesuffix(SIMULATED_SUFFIX) == "cpu"}
        ref = (next((k for k in cpus if k[1] == "fp32"), max(cpus, key=cpus.get)) if cpus
               else max(real, key=real.get))
        precisions = {hw: sum(1 for h, _ in by_hw if h == hw) for hw, _ in by_hw}
        ref_name = ref[0] + (f" {ref[1]}" if precisions[ref[0]] > 1 and _present(ref[1]) else "")
        ref_values, ref_ev = _side_values(by_hw[ref])
        for (hw, prec), g in by_hw.items():
            values, ev = _side_values(g)
            speedup = medians[ref] / medians[hw, prec] if medians[hw, prec] else None
            lo, hi = _bootstrap_ratio(ref_values, values, rng) if (hw, prec) != ref else (1.0, 1.0)
            throughput, throughput_basis = _throughput_values(g)
            rows.append({"model": model, "model_family": family, "test_case": case, "batch_size": batch,
                         "sequence_length": seq, "precision": prec, "hardware": hw,
                         "is_emulated": bool(g["is_emulated"].any()), "is_simulated": bool(simulated),
                         "reference_hardware": ref_name,
                         "median_latency_ms": medians[hw, prec],
                         "median_throughput": float(np.median(throughput)) if throughput else None,
                         "throughput_basis": throughput_basis, "speedup_vs_reference": speedup,
                         "ci95_low": lo, "ci95_high": hi,
                         "evidence": "raw samples (bootstrap)" if ev == ref_ev == "samples" and lo is not None
                         else ("per-row aggregates (bootstrap)" if lo is not None else "aggregates, no CI"),
                         "rows": len(g)})
    if not rows:
        raise AnalysisUnavailable("no model was measured on two or more hardware types (after filters)")
    table = pd.DataFrame(rows)
    # the best of the measured results and, apart, the best of the simulated ones (99999 simulated items/s
    # "won" over every device and its median pooled both)
    best_keys = ["model_family", "test_case", "sequence_length", "batch_size", "is_simulated"]
    best = (table.sort_values("median_throughput", ascending=False)
            .groupby(best_keys, dropna=False).head(1)
            [best_keys + ["hardware", "precision", "is_emulated", "median_throughput", "model"]]
            .sort_values(best_keys))
    _write_data(table, opts, "hardware-comparison", files,
                extra={"best_hardware": json.loads(best.to_json(orient="records"))})
    plt = _plt()
    # chart: speed-up vs reference per model at the most common batch size, with CI error bars
    batch = int(table["batch_size"].mode().iloc[0]) if table["batch_size"].notna().any() else None
    sub = table[table["batch_size"] == batch] if batch is not None else table
    # one bar per model configuration x hardware: a model with several test cases or sequence lengths is named
    # with each (`bert · forward · seq 128`), and a hardware type measured there at several precisions is a bar
    # per precision (`cpu fp16`, `cpu fp32`)
    sub = sub.assign(model=_configuration_labels(sub))
    several = sub.groupby(["model", "hardware"], dropna=False)["precision"].transform(
        lambda p: p.nunique(dropna=False) > 1)
    sub = sub.assign(hardware=[f"{hw} {prec}" if keep and _present(prec) else hw
                               for hw, prec, keep in zip(sub["hardware"], sub["precision"], several)])
    sub = sub.sort_values("rows", ascending=False).drop_duplicates(["model", "hardware"])
    hws = sorted(sub["hardware"].unique())
    ref_names = ", ".join(sorted(sub["reference_hardware"].unique()))
    fig, shown, models = _grouped_bar_figure(
        plt, sub, hws, "speedup_vs_reference", "ci95_low", "ci95_high",
        title=f"Speed-up over {ref_names} (median latency ratio, 95% bootstrap CI), batch size {batch}",
        ylabel=f"speed-up vs {ref_names} (x, higher is faster)")
    for ax in fig.axes:  # the panels
        ax.axhline(1.0, color="grey", lw=0.8)
    _save_fig(fig, opts, "hardware-comparison", files)
    if opts.interactive:
        import plotly.graph_objects as go

        fig = go.Figure()
        lines = table.assign(label=_configuration_labels(table))
        for (label, hw, _), g in lines.groupby(["label", "hardware", "precision"], dropna=False):
            several = lines[(lines["label"] == label) & (lines["hardware"] == hw)]["precision"].nunique(dropna=False)
            if several > 1 and _present(g["precision"].iloc[0]):  # no `cpu nan` for a missing precision
                hw = f"{hw} {g['precision'].iloc[0]}"
            g = g.sort_values("batch_size")
            fig.add_trace(go.Scatter(
                x=g["batch_size"], y=g["speedup_vs_reference"], mode="lines+markers", name=_series_label(label, hw),
                meta={"model": str(g["model"].iloc[0]), "hardware": str(hw)},
                error_y={"type": "data", "symmetric": False,
                         "array": (g["ci95_high"] - g["speedup_vs_reference"]).fillna(0),
                         "arrayminus": (g["speedup_vs_reference"] - g["ci95_low"]).fillna(0)},
                hovertemplate="batch %{x}<br>speed-up %{y:.2f}x<extra>%{fullData.name}</extra>"))
        fig.update_layout(title="Speed-up over the reference hardware by batch size", xaxis_title="batch size",
                          yaxis_title="speed-up (x, log scale)", xaxis_type="log", yaxis_type="log", height=560)
        undrawn = _fit_plotly_axes(fig, batch_axis="x")
        fig.add_hline(y=1.0, line={"color": "grey", "width": 1})
        _write_interactive("hardware-comparison", "Hardware comparison", [fig], opts, files,
                           note=_undrawn_note(undrawn, "a batch size"))
    text = ["## Hardware comparison\n",
            f"{table['model'].nunique()} model(s) on {table['hardware'].nunique()} hardware type(s). Speed-up = "
            "median latency of the reference hardware / median latency of this one, 95% bootstrap CI from raw "
            "samples where both sides have them.\n" + _chart_note(shown, models, batch)
            + (f"\n{lone_simulated} simulated result(s) are not compared: simulated results are compared only with "
               "simulated results of the same configuration on other hardware, and these have none.\n"
               if lone_simulated else ""),
            "### Best hardware per model family and batch size (throughput)\n",
            _md_table(best, ["model_family"] + _varying(best, ["test_case"]) + ["batch_size"]
                      + _varying(best, ["sequence_length"])
                      + ["hardware"] + _varying(best, ["precision"]) + ["is_emulated"]
                      + _varying(best, ["is_simulated"]) + ["median_throughput", "model"],
                      max_rows=40), "\n### Speed-ups\n",
            _md_table(table.sort_values(["model", "test_case", "batch_size", "sequence_length", "precision",
                                         "hardware"]),
                      ["model"] + _varying(table, ["test_case"]) + ["batch_size", "sequence_length"]
                      + _varying(table, ["precision"]) + ["hardware", "median_latency_ms", "speedup_vs_reference",
                                                          "ci95_low", "ci95_high", "evidence"],
                      max_rows=20)]
    return AnalysisResult("hardware-comparison", _write_summary("hardware-comparison", "\n".join(text), opts, files),
                          files)


def model_comparison(df, opts: Options) -> AnalysisResult:
    import numpy as np
    import pandas as pd

    files: list[str] = []
    df = df.dropna(subset=["latency_ms"])
    rng = np.random.default_rng(opts.seed)
    rows = []
    # models are compared only doing the same work: the same test case at the same sequence length (a model
    # at sequence length 32 was ranked "fastest" against another at 512, load_model against forward), in the
    # same precision (a model's fp16 and fp32 rows pooled into one median ranked it against another's fp32)
    same_work = ["hardware", "is_simulated", "batch_size", "test_case", "sequence_length", "precision"]
    for (hw, simulated, batch, case, seq, prec, model), g in df.groupby(same_work + ["model"], dropna=False):
        values, ev = _side_values(g)
        lo, hi = _bootstrap_median(values, rng)
        throughput, throughput_basis = _throughput_values(g)
        rows.append({"hardware": hw, "is_emulated": bool(g["is_emulated"].any()), "is_simulated": bool(simulated),
                     "batch_size": batch,
                     "test_case": case, "sequence_length": seq, "precision": prec, "model": model,
                     "model_family": g["model_family"].iloc[0],
                     "parameters_million": g["parameters_million"].iloc[0], "median_latency_ms": float(np.median(values)),
                     "latency_ci95_low": lo, "latency_ci95_high": hi,
                     "median_throughput": float(np.median(throughput)) if throughput else None,
                     "throughput_basis": throughput_basis, "evidence": ev, "rows": len(g)})
    table = pd.DataFrame(rows)
    if table.empty or table.groupby(same_work, dropna=False)["model"].nunique().max() < 2:
        raise AnalysisUnavailable("no hardware type has two or more models measured at the same batch size, test "
                                  "case, sequence length and precision")
    fastest = table.loc[table.groupby(same_work, dropna=False)["median_latency_ms"].idxmin()]
    table = table.merge(fastest[same_work + ["median_latency_ms"]].rename(
        columns={"median_latency_ms": "fastest_ms"}), on=same_work, how="left")
    table["relative_to_fastest"] = table["median_latency_ms"] / table["fastest_ms"]
    table = table.drop(columns="fastest_ms")
    _write_data(table, opts, "model-comparison", files)
    plt = _plt()
    batch = int(table["batch_size"].mode().iloc[0])
    sub = table[table["batch_size"] == batch]
    hws = sorted(sub["hardware"].unique())
    # bars of different work side by side are named with it, every one of them: a model alone at sequence
    # length 512 is not slower than one at 32
    fig, shown, models = _grouped_bar_figure(
        plt, sub.assign(model=_configuration_labels(sub, per_model=False, precision=True)), hws, "median_latency_ms",
        "latency_ci95_low", "latency_ci95_high",
        title=f"Median latency per model (95% bootstrap CI), batch size {batch}",
        ylabel="median latency (ms, lower is better)")
    _save_fig(fig, opts, "model-comparison", files)
    if opts.interactive:
        import plotly.graph_objects as go

        fig = go.Figure()
        lines = table.assign(label=_configuration_labels(table, per_model=False, precision=True))
        for (label, hw), g in lines.groupby(["label", "hardware"], dropna=False):
            g = g.sort_values("batch_size")
            fig.add_trace(go.Scatter(
                x=g["batch_size"], y=g["median_latency_ms"], mode="lines+markers", name=_series_label(label, hw),
                meta={"model": str(g["model"].iloc[0]), "hardware": str(hw)},
                error_y={"type": "data", "symmetric": False,
                         "array": (g["latency_ci95_high"] - g["median_latency_ms"]).fillna(0),
                         "arrayminus": (g["median_latency_ms"] - g["latency_ci95_low"]).fillna(0)},
                hovertemplate="batch %{x}<br>%{y:.3f} ms<extra>%{fullData.name}</extra>"))
        fig.update_layout(title="Median latency per model", xaxis_title="batch size",
                          yaxis_title="latency (ms, log scale)", xaxis_type="log", yaxis_type="log", height=560)
        undrawn = _fit_plotly_axes(fig, batch_axis="x")
        _write_interactive("model-comparison", "Model comparison", [fig], opts, files,
                           note=_undrawn_note(undrawn, "a batch size"))
    text = ["## Model comparison\n", f"{table['model'].nunique()} model(s) on {len(hws)} hardware type(s); "
            f"medians with 95% bootstrap CIs from raw samples where present. Batch size {batch} shown:\n"
            + _chart_note(shown, models, batch),
            _md_table(sub.sort_values(["hardware", "test_case", "sequence_length", "precision", "median_latency_ms"]),
                      ["hardware"] + _varying(sub, CONFIGURATION_COLUMNS + ("precision",)) + ["model", "median_latency_ms", "latency_ci95_low",
                                                      "latency_ci95_high", "median_throughput",
                                                      "relative_to_fastest"], max_rows=30)]
    return AnalysisResult("model-comparison", _write_summary("model-comparison", "\n".join(text), opts, files), files)


def batch_scaling(df, opts: Options) -> AnalysisResult:
    import numpy as np
    import pandas as pd

    files: list[str] = []
    df = df.dropna(subset=["throughput", "batch_size"])
    # one curve per configuration: load_model and forward, or sequence lengths 32 and 512, pooled into one
    # median per batch size drew a curve of none of them
    curve_keys = ["model", "hardware", "is_emulated", "is_simulated", "precision", "test_case", "sequence_length"]
    agg = (df.groupby(curve_keys + ["batch_size"], dropna=False)
           .agg(median_throughput=("throughput", "median"), median_latency_ms=("latency_ms", "median"),
                rows=("throughput", "size")).reset_index())
    rows, curves = [], []
    for (model, hw, emulated, simulated, prec, case, seq), g in agg.groupby(curve_keys, dropna=False):
        g = g.sort_values("batch_size")
        if g["batch_size"].nunique() < 3:
            continue
        tp = g["median_throughput"].to_numpy(dtype=float)
        bs = g["batch_size"].to_numpy(dtype=float)
        peak = float(tp.max())
        saturation = int(bs[np.argmax(tp >= 0.9 * peak)])
        saturated = bool(saturation < bs.max())
        efficiency = tp / (tp[0] * bs / bs[0])  # throughput relative to perfect linear scaling from the smallest batch
        rows.append({"model": model, "hardware": hw, "is_emulated": bool(emulated),
                     "is_simulated": bool(simulated), "precision": prec,
                     "test_case": case, "sequence_length": seq, "batch_sizes": len(bs),
                     "max_batch": int(bs.max()), "peak_throughput": peak, "peak_batch": int(bs[np.argmax(tp)]),
                     "saturation_batch": saturation, "saturates_within_range": saturated,
                     "scaling_efficiency_at_max_batch": float(efficiency[-1]),
                     "latency_growth_max_vs_min": float(g["median_latency_ms"].iloc[-1] / g["median_latency_ms"].iloc[0])
                     if g["median_latency_ms"].iloc[0] else None})
        curves.append((rows[-1], g))
    if not rows:
        raise AnalysisUnavailable("no model x hardware was measured at 3 or more batch sizes")
    table = pd.DataFrame(rows)
    labels = [_series_label(model, row["hardware"], precision=row["precision"])
              for model, row in zip(_configuration_labels(table), rows)]
    curves = [(label, row, g) for label, (row, g) in zip(labels, curves)]
    _write_data(table, opts, "batch-scaling", files, extra={"curves": json.loads(agg.to_json(orient="records"))})
    plt = _plt()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(16, 6))
    for label, sat, g in sorted(curves, key=lambda c: c[0])[:MAX_SERIES_PLOTTED]:
        line, = ax1.plot(g["batch_size"], g["median_throughput"], marker="o", label=label)
        y_sat = g.loc[g["batch_size"] == sat["saturation_batch"], "median_throughput"].iloc[0]
        ax1.plot([sat["saturation_batch"]], [y_sat], marker="*", ms=14, color=line.get_color())
        ax2.plot(g["batch_size"], g["median_latency_ms"], marker="o", label=label, color=line.get_color())
    for ax in (ax1, ax2):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("batch size (log2)")
    _log_if_wide(ax1, agg["median_throughput"])
    _log_if_wide(ax2, agg["median_latency_ms"])
    ax1.set_title("Throughput vs batch size (star: 90% of peak reached)")
    ax1.set_ylabel("median throughput (items/s)")
    ax2.set_title("Latency vs batch size")
    ax2.set_ylabel("median latency per batch (ms)")
    ax2.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    _save_fig(fig, opts, "batch-scaling", files)
    if opts.interactive:
        import plotly.graph_objects as go

        fig = go.Figure()
        for label, row, g in curves:
            fig.add_trace(go.Scatter(x=g["batch_size"], y=g["median_throughput"], mode="lines+markers",
                                     name=label, meta={"model": str(row["model"]), "hardware": str(row["hardware"])},
                                     hovertemplate="batch %{x}<br>%{y:.1f} items/s<extra>%{fullData.name}</extra>"))
        fig.update_layout(title="Throughput vs batch size", xaxis_title="batch size",
                          yaxis_title="items/s (log scale)", xaxis_type="log", yaxis_type="log", height=560)
        _fit_plotly_axes(fig, batch_axis="x")
        _write_interactive("batch-scaling", "Batch scaling", [fig], opts, files)
    text = ["## Batch scaling\n", "Saturation batch = smallest batch size reaching 90% of the peak throughput "
            "measured; `saturates_within_range` is False when throughput was still rising at the largest batch.\n",
            _md_table(table, ["model", "hardware", "precision"] + _varying(table)
                      + ["peak_throughput", "peak_batch", "saturation_batch", "saturates_within_range",
                         "scaling_efficiency_at_max_batch"], max_rows=30)]
    return AnalysisResult("batch-scaling", _write_summary("batch-scaling", "\n".join(text), opts, files), files)


# ------------------------------------------------------------------------------------------ prediction


MODEL_ATTRIBUTES = ("parameters_million", "modality")


def _feature_frame(df, features, add_model_attributes: bool = True):
    """One row per configuration (median over runs), so repeated runs cannot leak across CV folds.

    Returns (frame, columns, added): `added` maps each model attribute added to `features` (only with
    `add_model_attributes`) to why it was added."""
    import numpy as np

    columns = []
    for f in features:
        col = FEATURE_COLUMNS.get(f)
        if col is None:
            raise UsageError(f"unknown prediction feature {f!r}",
                             f"use some of {', '.join(sorted(FEATURE_COLUMNS))}")
        if col not in columns:
            columns.append(col)
    added = {}
    for extra in MODEL_ATTRIBUTES if add_model_attributes else ():  # used when the data has them
        if extra not in columns and df[extra].notna().any() and df[extra].nunique(dropna=True) > 1:
            columns.append(extra)
            added[extra] = f"{df[extra].nunique(dropna=True)} different values"
    data = df.dropna(subset=["throughput"])
    data = data[data["throughput"] > 0]
    # `hardware` is the label (`webgpu (emulated)`), so emulated and real rows are different configurations
    # and, with the hardware feature, different categories: the model never fits them as one device
    # test_case is part of the configuration whether or not it is a feature: the median of load_model and
    # forward throughput is the throughput of neither
    # (and so are simulated rows: `cpu (simulated)`, is_simulated)
    keys = list(dict.fromkeys(["model", "hardware", "is_emulated", "is_simulated", "batch_size", "precision",
                               "sequence_length", "test_case"] + columns))
    conf = data.groupby(keys, dropna=False).agg(throughput=("throughput", "median")).reset_index()
    numeric = [c for c in columns if c in NUMERIC_FEATURES]
    missing = {c: int(conf[c].isna().sum()) for c in numeric if conf[c].isna().any()}
    conf = conf.dropna(subset=numeric)
    conf["log_throughput"] = np.log(conf["throughput"])
    conf.attrs["dropped_for_missing"] = missing  # what fit_prediction's "too few" says was left out, and why
    return conf, columns, added


def _make_model(columns, seed):
    import numpy as np
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import GradientBoostingRegressor
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder

    numeric = [c for c in columns if c in NUMERIC_FEATURES]
    categorical = [c for c in columns if c not in NUMERIC_FEATURES]
    transformers = []
    if numeric:
        transformers.append(("num", FunctionTransformer(lambda x: np.log2(np.asarray(x, dtype=float) + 1.0),
                                                        feature_names_out="one-to-one"), numeric))
    if categorical:
        transformers.append(("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), categorical))
    return Pipeline([("features", ColumnTransformer(transformers)),
                     ("model", GradientBoostingRegressor(n_estimators=300, max_depth=3, learning_rate=0.05,
                                                         subsample=0.9, random_state=seed))])


def _baseline_predict(train, test):
    """Median throughput of the same hardware type and batch size in the training data, else of the same
    hardware type, else of everything: the rule of thumb the model has to beat."""
    import numpy as np

    by_hw_batch = train.groupby(["hardware", "batch_size"])["log_throughput"].median()
    by_hw = train.groupby("hardware")["log_throughput"].median()
    overall = float(train["log_throughput"].median())
    out = []
    for hw, bs in zip(test["hardware"], test["batch_size"]):
        if (hw, bs) in by_hw_batch.index:
            out.append(by_hw_batch[(hw, bs)])
        elif hw in by_hw.index:
            out.append(by_hw[hw])
        else:
            out.append(overall)
    return np.asarray(out, dtype=float)


def fit_prediction(df, features, seed=0, folds=5, add_model_attributes: bool = True):
    """Cross-validated MAPE of the model and the baseline, out-of-fold residuals, and the fitted model."""
    import numpy as np
    from sklearn.model_selection import KFold

    conf, columns, added = _feature_frame(df, features, add_model_attributes)
    if len(conf) < MIN_PREDICTION_CONFIGS:
        missing = conf.attrs.get("dropped_for_missing") or {}
        # a feature missing from the rows (a result stored without batch_size) left them out: say so, not "0"
        left_out = "".join(f"; {n} more left out: no {column}" for column, n in missing.items())
        raise AnalysisUnavailable(f"only {len(conf)} distinct configuration(s) with throughput{left_out}; "
                                  f"prediction needs at least {MIN_PREDICTION_CONFIGS} to cross-validate an error "
                                  "it can back")
    y = conf["log_throughput"].to_numpy()
    oof = np.zeros(len(conf))
    base = np.zeros(len(conf))
    kf = KFold(n_splits=min(folds, len(conf)), shuffle=True, random_state=seed)
    for train_idx, test_idx in kf.split(conf):
        model = _make_model(columns, seed)
        model.fit(conf.iloc[train_idx][columns], y[train_idx])
        oof[test_idx] = model.predict(conf.iloc[test_idx][columns])
        base[test_idx] = _baseline_predict(conf.iloc[train_idx], conf.iloc[test_idx])
    actual = conf["throughput"].to_numpy()
    mape = float(np.mean(np.abs(np.exp(oof) - actual) / actual) * 100)
    base_mape = float(np.mean(np.abs(np.exp(base) - actual) / actual) * 100)
    # the median APE beside the mean: one wild legacy value cannot dominate it
    mdape = float(np.median(np.abs(np.exp(oof) - actual) / actual) * 100)
    base_mdape = float(np.median(np.abs(np.exp(base) - actual) / actual) * 100)
    residuals = y - oof
    model = _make_model(columns, seed).fit(conf[columns], y)
    conf = conf.assign(cv_predicted_throughput=np.exp(oof), cv_baseline_throughput=np.exp(base),
                       cv_abs_pct_error=np.abs(np.exp(oof) - actual) / actual * 100)
    return {"model": model, "columns": columns, "added": added, "configs": conf, "mape": mape,
            "baseline_mape": base_mape,
            "median_ape": mdape, "baseline_median_ape": base_mdape,
            "residuals": residuals, "folds": kf.get_n_splits()}


def predict_one(fit, query: dict, level=0.9):
    """Prediction with an interval from the cross-validated residual quantiles (split-conformal style)."""
    import numpy as np
    import pandas as pd

    conf, columns = fit["configs"], fit["columns"]
    row = {}
    for f, value in query.items():
        col = FEATURE_COLUMNS.get(f)
        if col is None:
            raise UsageError(f"unknown feature {f!r} in --predict", f"use some of {', '.join(fit['columns'])}")
        row[col] = value
    missing = [c for c in columns if c not in row]
    for c in list(missing):  # model attributes follow from the model family when it is unambiguous
        if c in ("parameters_million", "modality") and "model_family" in row:
            known = conf.loc[conf["model_family"].astype(str) == str(row["model_family"]), c].dropna()
            if len(known):
                row[c] = known.median() if c == "parameters_million" else known.mode().iloc[0]
                missing.remove(c)
    if missing:
        # the model attributes follow from model_family (above): only name them when they cannot
        derived = [c for c in MODEL_ATTRIBUTES if c in columns and "model_family" in columns]
        unfilled = [c for c in derived if c in missing and "model_family" in row]
        required = [c for c in columns if c not in derived or c in unfilled]
        lacking = [c for c in missing if c not in derived or c in unfilled]
        hint = f"give {', '.join(required)}"
        if unfilled:
            hint += (f" (no {' or '.join(unfilled)} is recorded for model family {row['model_family']}, so it "
                     "cannot be filled in)")
        elif derived:
            hint += f"; {' and '.join(derived)} follow{'s' if len(derived) == 1 else ''} from model_family"
        raise UsageError(f"--predict lacks {', '.join(lacking)}", hint)
    for c in columns:
        if c in NUMERIC_FEATURES:
            try:
                row[c] = float(row[c])
            except (TypeError, ValueError):
                raise UsageError(f"--predict {c}={row[c]!r} is not a number", "give a number") from None
            if not math.isfinite(row[c]) or row[c] <= 0:  # log2(x + 1) of these is NaN: sklearn's ValueError
                raise UsageError(f"--predict {c}={row[c]:g} is not a positive number",
                                 f"give {c} as a number above 0, e.g. {c}=16")
        else:
            row[c] = str(row[c])
            seen = set(conf[c].dropna().astype(str))  # a missing value is no choice to offer
            if row[c] not in seen:
                raise AnalysisUnavailable(f"{c}={row[c]} never occurs in the data; the model cannot back a "
                                          f"prediction for it (known: {', '.join(sorted(seen))})")
    frame = pd.DataFrame([row])[columns]
    for c in columns:
        if c not in NUMERIC_FEATURES:
            frame[c] = frame[c].astype(conf[c].dtype) if conf[c].dtype == object else frame[c]
    centre = float(fit["model"].predict(frame)[0])
    q = float(np.quantile(np.abs(fit["residuals"]), level))
    tested = conf
    for c in columns:
        tested = tested[tested[c].astype(str) == str(row[c])] if c not in NUMERIC_FEATURES else \
            tested[np.isclose(tested[c].astype(float), float(row[c]))]
    measured = _measured_configurations(tested, columns)
    return {"query": {c: row[c] for c in columns}, "predicted_throughput": math.exp(centre),
            "interval_level": level, "interval_low": math.exp(centre - q), "interval_high": math.exp(centre + q),
            "already_measured": bool(len(tested)),
            # one figure only where the measured rows are one configuration: the median of 100 items/s at
            # sequence length 32 and 10 at 512 ("55 items/s") was never measured
            "measured_throughput": measured[0]["throughput"] if len(measured) == 1 else None,
            "measured": measured}


# what tells the configurations matching a query apart when it is no feature: a median over them describes none
_MEASURED_KEYS = ("model", "hardware", "batch_size", "test_case", "sequence_length", "precision")


def _measured_configurations(tested, columns) -> list[dict]:
    """The measured throughput of each configuration among `tested` (the configurations matching a query's
    features), told apart by those of `_MEASURED_KEYS` that are no feature and differ among them."""
    from benchmark_db.reports import is_missing

    if not len(tested):
        return []
    apart = [c for c in _MEASURED_KEYS if c not in columns and c in tested
             and tested[c].nunique(dropna=False) > 1]
    out = []
    groups = tested.groupby(apart, dropna=False, sort=True) if apart else [((), tested)]
    for key, g in groups:
        key = key if isinstance(key, tuple) else (key,)
        entry = {c: (None if is_missing(v) else v.item() if hasattr(v, "item") else v) for c, v in zip(apart, key)}
        entry["throughput"] = float(g["throughput"].median())
        out.append(entry)
    return out


def _measured_text(measured: list[dict], limit: int = 6) -> str:
    """`100 items/s at seq 32, 10 items/s at seq 512` (one figure alone when there is one configuration)."""
    def where(entry) -> str:
        bits = []
        for c, v in entry.items():
            if c == "throughput" or not _present(v):
                continue
            if c == "sequence_length":
                bits.append(f"seq {int(v)}" if float(v).is_integer() else f"seq {v}")
            elif c == "batch_size":
                bits.append(f"bs {int(v)}" if float(v).is_integer() else f"bs {v}")
            else:
                bits.append(str(v))
        missing = [c.replace("_", " ") for c, v in entry.items() if c != "throughput" and not _present(v)]
        bits += [f"no {c}" for c in missing]
        return " at " + " · ".join(bits) if bits else ""

    parts = [f"{e['throughput']:.4g} items/s{where(e)}" for e in measured[:limit]]
    if len(measured) > limit:
        parts.append(f"and {len(measured) - limit} more configuration(s) (the JSON has them all)")
    return ", ".join(parts)


def _features_note(added: dict) -> str:
    """Which features were added to those asked for, and why (empty when none were)."""
    if not added:
        return ""
    reasons = "; ".join(f"{name}: {why}" for name, why in added.items())
    return (f"Added to the default features: {', '.join(added)}, because the data records them ({reasons}) and "
            "they describe a model beyond its family. Pass --prediction-features to use exactly the features you "
            "name.\n")


def describe_configuration(query: dict) -> str:
    """A configuration as words, e.g. `bert-base-uncased on cuda, batch 16, fp16`, from --predict's keys or
    the model's columns (numbers without a spurious `.0`)."""
    values = {FEATURE_COLUMNS.get(k, k): v for k, v in query.items()}

    def plain(value) -> str:
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        if isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                return value
            return str(int(number)) if number.is_integer() and "." in value else value
        return str(value)

    head = (plain(values.pop("model")) if "model" in values else
            f"{plain(values.pop('model_family'))} family" if "model_family" in values else "any model")
    values.pop("model_family", None)
    if "hardware" in values:
        head += f" on {plain(values.pop('hardware'))}"
    if "device" in values:
        head += f" ({plain(values.pop('device'))})"
    parts = [head]
    if "batch_size" in values:
        parts.append(f"batch {plain(values.pop('batch_size'))}")
    if "sequence_length" in values:
        parts.append(f"sequence length {plain(values.pop('sequence_length'))}")
    if "precision" in values:
        parts.append(plain(values.pop("precision")))
    if "parameters_million" in values:
        parts.append(f"{plain(values.pop('parameters_million'))}M parameters")
    parts += [f"{k.replace('_', ' ')} {plain(v)}" for k, v in values.items()]
    return ", ".join(parts)


def performance_prediction(df, opts: Options) -> AnalysisResult:
    import numpy as np

    files: list[str] = []
    fit = fit_prediction(df, opts.prediction_features, seed=opts.seed, add_model_attributes=opts.add_model_attributes)
    conf, columns = fit["configs"], fit["columns"]
    better = fit["mape"] < fit["baseline_mape"]
    extra = {"features": columns, "features_requested": list(opts.prediction_features),
             "features_added": fit["added"], "cv_folds": fit["folds"], "configurations": len(conf),
             "cv_mape_pct": fit["mape"], "baseline_cv_mape_pct": fit["baseline_mape"],
             "cv_median_ape_pct": fit["median_ape"], "baseline_cv_median_ape_pct": fit["baseline_median_ape"],
             "baseline": "median throughput of the same hardware type and batch size (training folds)",
             "interval": "90% from the quantile of absolute out-of-fold log errors"}
    answer = None
    if opts.predict:
        try:
            answer = predict_one(fit, opts.predict)
        except AnalysisUnavailable as exc:
            answer = {"query": opts.predict, "declined": str(exc)}
        extra["prediction"] = answer
    _write_data(conf.drop(columns=["log_throughput"]), opts, "performance-prediction", files, extra=extra)
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 7))
    for hw, g in conf.groupby("hardware"):
        ax.scatter(g["throughput"], g["cv_predicted_throughput"], label=hw, s=18, alpha=0.8)
    lo = float(min(conf["throughput"].min(), conf["cv_predicted_throughput"].min()))
    hi = float(max(conf["throughput"].max(), conf["cv_predicted_throughput"].max()))
    ax.plot([lo, hi], [lo, hi], color="grey", lw=1, ls="--", label="perfect prediction")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_title(f"Cross-validated prediction of throughput\nMAPE {fit['mape']:.1f}% (baseline {fit['baseline_mape']:.1f}%)")
    ax.set_xlabel("measured throughput (items/s)")
    ax.set_ylabel("predicted throughput, out of fold (items/s)")
    ax.legend(title="hardware", fontsize=8)
    _save_fig(fig, opts, "performance-prediction", files)
    if opts.interactive:
        import plotly.graph_objects as go

        fig = go.Figure()
        for (model, hw), g in conf.groupby(["model", "hardware"], dropna=False):
            fig.add_trace(go.Scatter(x=g["throughput"], y=g["cv_predicted_throughput"], mode="markers",
                                     name=_series_label(model, hw), meta={"model": str(model), "hardware": str(hw)},
                                     text=[f"batch {b}" for b in g["batch_size"]],
                                     hovertemplate="measured %{x:.1f}<br>predicted %{y:.1f}<br>%{text}"
                                                   "<extra>%{fullData.name}</extra>"))
        fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", name="perfect prediction",
                                 line={"dash": "dash", "color": "grey"}))
        fig.update_layout(title="Out-of-fold predicted vs measured throughput (items/s)", xaxis_type="log",
                          yaxis_type="log", xaxis_title="measured (items/s, log scale)",
                          yaxis_title="predicted (items/s, log scale)", height=560)
        _fit_plotly_axes(fig)
        _write_interactive("performance-prediction", "Performance prediction", [fig], opts, files)
    text = ["## Performance prediction\n",
            f"Gradient boosting on {', '.join(columns)} (log throughput), {len(conf)} configurations, "
            f"{fit['folds']}-fold cross-validation.\n"]
    if fit["added"]:
        text.append(_features_note(fit["added"]))
    text += [f"- cross-validated MAPE: **{fit['mape']:.1f}%**",
             f"- baseline (median of the same hardware type and batch size): {fit['baseline_mape']:.1f}%",
             f"- median absolute percentage error: {fit['median_ape']:.1f}% "
             f"(baseline {fit['baseline_median_ape']:.1f}%)",
             f"- the model is {'better' if better else 'NOT better'} than the baseline"
             + ("" if better else "; do not trust its predictions over the rule of thumb"),
             f"- 90% prediction interval: x/÷ {math.exp(float(np.quantile(np.abs(fit['residuals']), 0.9))):.2f} "
             "around the prediction"]
    if len(conf) < 100:
        text.append(f"- caveat: {len(conf)} configurations is a small training set; the error above is the "
                    "honest estimate for configurations like those measured, not for new hardware or families")
    if answer is not None:
        if "declined" in answer:
            text.append(f"\n### Prediction for {describe_configuration(answer['query'])}\n\n"
                        f"Declined: {answer['declined']}")
        else:
            q = describe_configuration(answer["query"])
            text.append(f"\n### Prediction for {q}\n\n{answer['predicted_throughput']:.4g} items/s "
                        f"(90% interval {answer['interval_low']:.4g} to {answer['interval_high']:.4g})"
                        + (f"; already measured: {_measured_text(answer['measured'])}"
                           if answer["already_measured"] else "; not measured yet"))
    return AnalysisResult("performance-prediction",
                          _write_summary("performance-prediction", "\n".join(text), opts, files), files,
                          data={"mape": fit["mape"], "baseline_mape": fit["baseline_mape"], "prediction": answer})


# --------------------------------------------------------------------------------------------- anomalies


def _threshold_fraction(value: float) -> float:
    """--regression-threshold 0.1 and 10 both mean 10%."""
    return value / 100.0 if value > 1 else value


def anomaly_detection(df, opts: Options) -> AnalysisResult:
    import numpy as np
    import pandas as pd

    from benchmark_db.stats import MIN_RUNS_FOR_CHANGE_POINTS, detect_change_points, robust_outliers

    files: list[str] = []
    threshold = _threshold_fraction(opts.regression_threshold)
    df = df.dropna(subset=["latency_ms"])
    keys = ["model", "hardware", "batch_size", "precision", "sequence_length", "test_case", "is_emulated",
            "is_simulated"]
    found, plotted, series_count, long_enough, examined = [], [], 0, 0, []
    for key, g in df.groupby(keys, dropna=False):
        g = g.sort_values("created_at")
        y = g["latency_ms"].to_numpy(dtype=float)
        if len(y) < 5:
            continue
        series_count += 1
        examined.append(key)
        long_enough += len(y) >= MIN_RUNS_FOR_CHANGE_POINTS
        hits = []
        cps = detect_change_points(y)
        # Outliers are judged within each level segment, so the runs after a step are not all "outliers".
        bounds = [0] + [cp.index for cp in cps] + [len(y)]
        for lo, hi in zip(bounds[:-1], bounds[1:]):
            seg = y[lo:hi]
            if seg.size < 5:  # the MAD of fewer values says nothing about spread
                continue
            med = float(np.median(seg))
            for j in robust_outliers(seg):
                i = lo + j
                rel = (y[i] - med) / med if med else 0.0
                if abs(rel) >= threshold:
                    hits.append(i)
                    found.append(dict(zip(keys, key)) | {
                        "kind": "outlier", "created_at": g["created_at"].iloc[i], "run_id": g["run_id"].iloc[i],
                        "value_ms": y[i], "series_median_ms": med, "change_pct": rel * 100, "p_value": None,
                        "direction": "slower" if rel > 0 else "faster"})
        for cp in cps:
            if cp.change_pct is not None and abs(cp.change_pct) >= threshold * 100:
                hits.append(cp.index)
                found.append(dict(zip(keys, key)) | {
                    "kind": "change point", "created_at": g["created_at"].iloc[cp.index],
                    "run_id": g["run_id"].iloc[cp.index], "value_ms": cp.median_after,
                    "series_median_ms": cp.median_before, "change_pct": cp.change_pct, "p_value": cp.p_value,
                    "direction": "slower (regression)" if cp.change_pct > 0 else "faster"})
        if hits:
            plotted.append((key, g, hits))
    # the labels and the summary's columns name the test case, sequence length and precision wherever the
    # examined series differ in them, even when only one of those series has a finding: "bert | cpu | bs 1"
    # said nothing of which of its three configurations stepped
    labels = dict(zip(examined, _series_labels(keys, examined)))
    if series_count == 0:
        raise AnalysisUnavailable("no model x hardware x batch series has 5 or more results; outliers need 5 and "
                                  f"change points {MIN_RUNS_FOR_CHANGE_POINTS} ({_CHANGE_POINT_RULE})")
    table = pd.DataFrame(found, columns=keys + ["kind", "created_at", "run_id", "value_ms", "series_median_ms",
                                                "change_pct", "p_value", "direction"])
    _write_data(table, opts, "anomaly-detection", files, extra={
        "threshold_pct": threshold * 100, "series_examined": series_count,
        "series_long_enough_for_change_points": long_enough, "min_results_for_change_points": MIN_RUNS_FOR_CHANGE_POINTS})
    plt = _plt()
    fig, ax = plt.subplots(figsize=(11, 6))
    if plotted:
        all_y = []
        for key, g, hits in plotted[:MAX_SERIES_PLOTTED]:
            order = np.arange(len(g))  # by position in the series: runs months apart stay readable
            line, = ax.plot(order, g["latency_ms"], marker="o", ms=3, label=labels[key])
            ax.scatter(order[hits], g["latency_ms"].iloc[hits], s=80, facecolors="none",
                       edgecolors="red", linewidths=1.5)
            all_y += list(g["latency_ms"])
        _log_if_wide(ax, all_y)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        ax.set_title(f"Series with anomalies (red circles), threshold {threshold * 100:g}%")
    else:
        ax.text(0.5, 0.5, f"no anomaly of {threshold * 100:g}% or more in {series_count} series",
                ha="center", va="center", transform=ax.transAxes)
        ax.set_title("Anomaly detection: nothing found")
    ax.set_xlabel("result number in its series (oldest first; times are in the CSV)")
    ax.set_ylabel("latency (ms)")
    _save_fig(fig, opts, "anomaly-detection", files)
    if opts.interactive:
        import plotly.graph_objects as go

        fig = go.Figure()
        for key, g, hits in plotted:
            meta = {"model": str(key[0]), "hardware": str(key[1])}
            fig.add_trace(go.Scatter(x=g["created_at"], y=g["latency_ms"], mode="lines+markers", meta=meta,
                                     name=labels[key]))
            fig.add_trace(go.Scatter(x=g["created_at"].iloc[hits], y=g["latency_ms"].iloc[hits], mode="markers",
                                     marker={"size": 14, "color": "red", "symbol": "circle-open"}, meta=meta,
                                     name=f"anomalies {labels[key]}"))
        axis = _plotly_axis_type([v for _, g, _ in plotted for v in g["latency_ms"]])
        fig.update_layout(title="Anomalies", xaxis_title="time (UTC)",
                          yaxis_title="latency (ms" + (", log scale)" if axis == "log" else ")"), yaxis_type=axis)
        _fit_plotly_axes(fig)
        # with nothing found the page says so rather than drawing empty axes
        _write_interactive("anomaly-detection", "Anomaly detection", [fig] if plotted else [], opts, files,
                           note="" if plotted else f"No anomalies: no outlier or change of {threshold * 100:g}% "
                                                   f"or more in the {series_count} series examined.")
    n_out = int((table["kind"] == "outlier").sum())
    n_cp = int((table["kind"] == "change point").sum())
    text = ["## Anomaly detection\n", f"{series_count} series examined; {n_out} robust outlier(s) (modified z-score "
            f"> 3.5 on median/MAD) and {n_cp} change point(s) with a change of at least {threshold * 100:g}%. "
            f"Outliers need 5 results in a series; change points need {MIN_RUNS_FOR_CHANGE_POINTS} "
            f"({_CHANGE_POINT_RULE}), which {long_enough} of the {series_count} series have.\n"]
    if len(table):
        text.append(_md_table(table.sort_values("change_pct", key=abs, ascending=False),
                              ["kind", "model", "hardware", "batch_size"]
                              + _varying(pd.DataFrame(examined, columns=keys), CONFIGURATION_COLUMNS + ("precision",))
                              + ["created_at", "value_ms", "series_median_ms", "change_pct", "p_value"],
                              max_rows=25))
    return AnalysisResult("anomaly-detection", _write_summary("anomaly-detection", "\n".join(text), opts, files),
                          files)


# --------------------------------------------------------------------------------- correlation/importance


def correlation_analysis(df, opts: Options) -> AnalysisResult:
    import numpy as np
    import pandas as pd
    from scipy import stats as sps

    files: list[str] = []
    # Emulated results (an emulator's timings, 10-100x a real device's) and simulated ones (no timings at all)
    # are correlated on their own, never pooled with the real ones: the rows of each set say which
    # (`is_emulated`, `is_simulated`), the chart shows the first set that has enough data, the real one first.
    parts = [(emulated, simulated, part) for (simulated, emulated), part
             in df.groupby(["is_simulated", "is_emulated"], sort=True)]
    rows, shown = [], None
    for emulated, simulated, part in parts:
        cols = [c for c in ("parameters_million", "batch_size", "sequence_length", "latency_ms", "throughput",
                            "memory_mb") if part[c].notna().sum() >= 3 and part[c].nunique() > 1]
        if len(cols) < 2:
            continue
        if shown is None:
            shown = (_result_kind(emulated, simulated), part, cols)
        for i, a in enumerate(cols):
            for b in cols[i + 1:]:
                pair = part[[a, b]].dropna()
                if len(pair) < 3 or pair[a].nunique() < 2 or pair[b].nunique() < 2:
                    continue
                rho, p = sps.spearmanr(pair[a], pair[b])
                rows.append({"is_emulated": emulated, "is_simulated": simulated, "x": a, "y": b, "spearman_rho": float(rho), "p_value": float(p),
                             "n": len(pair), "caveat": f"small sample (n={len(pair)} < {SMALL_SAMPLE})"
                             if len(pair) < SMALL_SAMPLE else ""})
    if shown is None:
        raise AnalysisUnavailable("fewer than two varying numeric columns to correlate")
    shown_kind, corr_df, cols = shown
    table = (pd.DataFrame(rows).assign(_abs=lambda t: t["spearman_rho"].abs())
             .sort_values(["is_simulated", "is_emulated", "_abs"], ascending=[True, True, False])
             .drop(columns="_abs"))
    _write_data(table, opts, "correlation-analysis", files)
    matrix = corr_df[cols].corr(method="spearman")
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.5, 6.5))
    im = ax.imshow(matrix.to_numpy(), vmin=-1, vmax=1, cmap="RdBu_r")
    ax.set_xticks(range(len(cols)))
    ax.set_xticklabels(cols, rotation=30, ha="right")
    ax.set_yticks(range(len(cols)))
    ax.set_yticklabels(cols)
    for i in range(len(cols)):
        for j in range(len(cols)):
            v = matrix.iloc[i, j]
            ax.text(j, i, "" if np.isnan(v) else f"{v:.2f}", ha="center", va="center", fontsize=9)
    fig.colorbar(im, ax=ax, label="Spearman rank correlation (unitless)")
    ax.set_title(f"Rank correlations between parameters\nand performance (n={len(corr_df)} "
                 f"{shown_kind}results)")
    _save_fig(fig, opts, "correlation-analysis", files)
    if opts.interactive:
        import plotly.graph_objects as go

        heat = go.Figure(go.Heatmap(z=matrix.to_numpy(), x=cols, y=cols, zmin=-1, zmax=1, colorscale="RdBu",
                                    reversescale=True, hovertemplate="%{x} vs %{y}: rho %{z:.2f}<extra></extra>"))
        heat.update_layout(title="Spearman rank correlations")
        scatter = go.Figure()
        points = df.assign(label=_configuration_labels(df))
        for (label, hw), g in points.groupby(["label", "hardware"], dropna=False):
            scatter.add_trace(go.Scatter(x=g["batch_size"], y=g["throughput"], mode="markers",
                                         name=_series_label(label, hw),
                                         meta={"model": str(g["model"].iloc[0]), "hardware": str(hw)}))
        scatter.update_layout(title="Throughput vs batch size", xaxis_title="batch size",
                              yaxis_title="items/s (log scale)", xaxis_type="log", yaxis_type="log", height=560)
        undrawn = _fit_plotly_axes(scatter, batch_axis="x")
        _write_interactive("correlation-analysis", "Correlation analysis", [heat, scatter], opts, files,
                           note=_undrawn_note(undrawn, "a batch size or throughput"))
    text = ["## Correlation analysis\n", f"Spearman rank correlations over {len(corr_df)} "
            f"{shown_kind}results. Rank correlations "
            "show monotonic association, not cause; results of one model share its size, so they are not "
            "independent and p-values are optimistic."]
    apart = [c for c in ("is_simulated", "is_emulated") if table[c].nunique() > 1]
    if apart:
        text.append(f"\nResults on emulated devices and simulated results are correlated apart from the real ones "
                    f"({', '.join(f'`{c}` true' for c in apart)}); the chart shows the {shown_kind}results.")
    if len(corr_df) < SMALL_SAMPLE:
        text.append(f"\nCaveat: only {len(corr_df)} results; correlations this small a sample are unstable.")
    text.append("\n" + _md_table(table, apart + ["x", "y", "spearman_rho", "p_value", "n", "caveat"], max_rows=20))
    return AnalysisResult("correlation-analysis", _write_summary("correlation-analysis", "\n".join(text), opts, files),
                          files)


def _result_kind(emulated: bool, simulated: bool) -> str:
    """`simulated `, `emulated `, both or nothing: how a summary names a set of results."""
    return ("simulated " if simulated else "") + ("emulated " if emulated else "")


def feature_importance(df, opts: Options) -> AnalysisResult:
    import pandas as pd
    from sklearn.inspection import permutation_importance
    from sklearn.model_selection import train_test_split

    files: list[str] = []
    conf, columns, added = _feature_frame(df, opts.prediction_features, opts.add_model_attributes)
    if len(conf) < MIN_PREDICTION_CONFIGS:
        raise AnalysisUnavailable(f"only {len(conf)} configuration(s); feature importance needs at least "
                                  f"{MIN_PREDICTION_CONFIGS} to hold some out")
    train, test = train_test_split(conf, test_size=0.3, random_state=opts.seed)
    model = _make_model(columns, opts.seed).fit(train[columns], train["log_throughput"])
    result = permutation_importance(model, test[columns], test["log_throughput"], n_repeats=20,
                                    random_state=opts.seed, scoring="neg_mean_absolute_error")
    table = pd.DataFrame({"feature": columns, "importance_mean": result.importances_mean,
                          "importance_std": result.importances_std}).sort_values("importance_mean", ascending=False)
    table["held_out_configurations"] = len(test)
    _write_data(table, opts, "feature-importance", files)
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 5))
    ax.barh(table["feature"][::-1], table["importance_mean"][::-1], xerr=table["importance_std"][::-1], capsize=3)
    ax.set_title("Permutation importance for log throughput (held-out configurations)")
    ax.set_xlabel("increase in mean absolute error of log(items/s) when the feature is shuffled")
    ax.set_ylabel("feature")
    _save_fig(fig, opts, "feature-importance", files)
    if opts.interactive:
        import plotly.graph_objects as go

        fig = go.Figure(go.Bar(x=table["importance_mean"], y=table["feature"], orientation="h",
                               error_x={"type": "data", "array": table["importance_std"]}))
        fig.update_layout(title="Permutation importance", xaxis_title="MAE increase (log items/s)")
        _write_interactive("feature-importance", "Feature importance", [fig], opts, files)
    text = ["## Feature importance\n", f"Permutation importance on {len(test)} held-out configurations "
            f"(model trained on {len(train)}), 20 repeats.\n" + (f"\n{_features_note(added)}" if added else ""),
            _md_table(table, ["feature", "importance_mean", "importance_std"])]
    text.append("\nCaveat: correlated features share importance (model family, parameters and modality say much "
                "the same), so read the ranking, not the exact numbers.")
    if len(test) < SMALL_SAMPLE:
        text.append(f"Caveat: {len(test)} held-out configurations is a small sample; the ranking may change with "
                    "more data.")
    return AnalysisResult("feature-importance", _write_summary("feature-importance", "\n".join(text), opts, files),
                          files)


RUNNERS = {
    "performance-trends": performance_trends,
    "hardware-comparison": hardware_comparison,
    "model-comparison": model_comparison,
    "batch-scaling": batch_scaling,
    "performance-prediction": performance_prediction,
    "anomaly-detection": anomaly_detection,
    "correlation-analysis": correlation_analysis,
    "feature-importance": feature_importance,
}


def run_analyses(conn, analysis: str, opts: Options, *, model_family=None, hardware_type=None,
                 include_simulated=False) -> list[AnalysisResult]:
    """Run one analysis or all of them; each writes into opts.output_dir. Returns one result per analysis."""
    opts.output_dir.mkdir(parents=True, exist_ok=True)
    df = load_performance(conn, model_family=model_family, hardware_type=hardware_type,
                          include_simulated=include_simulated)
    if df.empty and (model_family or hardware_type):
        # a filter that matches nothing is a mistake to name (DB004, like the reports), not "could not run"
        from benchmark_db import reports

        filters = reports.ReportFilters.make(model_family=model_family, hardware=hardware_type,
                                             include_simulated=include_simulated)
        raise reports.no_data_error(conn, filters)
    names = ANALYSES if analysis == "all" else (analysis,)
    results = []
    # a database of simulated results only read "no performance results", as if it were empty
    left_out = 0 if (not df.empty or include_simulated) else conn.execute(
        "SELECT count(*) FROM performance_results WHERE is_simulated").fetchone()[0]
    for name in names:
        if df.empty:
            what = " matching the filters" if (model_family or hardware_type) else ""
            if left_out:
                what += (f" ({left_out} simulated result{'s' if left_out != 1 else ''} left out; "
                         "pass --include-simulated to analyse them)")
            results.append(AnalysisResult(name, f"## {name}\n\nCould not run: no performance results{what}.",
                                          status="unavailable", reason=f"no performance results{what}"))
            continue
        try:
            result = RUNNERS[name](df.copy(), opts)
            simulated = int(df["is_simulated"].sum())
            notes = ""
            if simulated:  # --include-simulated: say so where the numbers are read
                notes += (f"\n\n> Includes {simulated} simulated result(s) (--include-simulated); they are not "
                          "measurements, and are kept apart from the measured ones as `<hardware> (simulated)`.")
            emulated = int(df["is_emulated"].sum())
            if emulated:  # real timings of an emulator: kept apart, and said so where the numbers are read
                notes += (f"\n\n> Includes {emulated} result(s) measured on an emulated device (e.g. SwiftShader), "
                          "kept apart from the real devices as `<hardware> (emulated)`.")
            if notes:
                result.summary += notes
                Path(opts.output_dir / f"{name}.md").write_text(result.summary + "\n", encoding="utf-8")
            results.append(result)
        except AnalysisUnavailable as exc:
            text = f"## {name}\n\nCould not run: {exc}."
            results.append(AnalysisResult(name, text, status="unavailable", reason=str(exc)))
        except BenchmarkDBError:
            raise
        except Exception as exc:  # one analysis failing must not stop the others under `all`
            if analysis != "all" or _output_error(exc, opts):  # a file it cannot write fails them all alike
                raise
            log.debug("analysis %s failed", name, exc_info=True)
            results.append(AnalysisResult(name, f"## {name}\n\nFailed: {type(exc).__name__}: {exc}",
                                          status="error", reason=f"{type(exc).__name__}: {exc}"))
    index = {"analyses": [r.to_dict() for r in results]}
    (opts.output_dir / ("analytics_index.json")).write_text(json.dumps(index, indent=2), encoding="utf-8")
    return results


# ------------------------------------------------------------------------------------------------- CLI


def _output_error(exc: BaseException, opts: Options) -> UsageError | None:
    """The one-line DB000 of a file under --output-dir that could not be written (as write_text says it for
    --output), or None when `exc` is about something else."""
    if not isinstance(exc, OSError) or not exc.filename:
        return None
    path = Path(exc.filename)
    folder = opts.output_dir
    if path != folder and folder not in path.parents:
        return None
    from benchmark_db.cli import unwritable_output

    return unwritable_output(exc.filename, exc, "pass --output-dir a folder you can write to")


def parse_predict(text: str | None) -> dict | None:
    if not text:
        return None
    out = {}
    for part in text.split(","):
        if "=" not in part:
            raise UsageError(f"--predict item {part!r} is not key=value",
                             "write e.g. --predict model_family=bert,hardware_type=cuda,batch_size=16,precision=fp16")
        key, value = part.split("=", 1)
        out[key.strip()] = value.strip()
    return out


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="benchmark_db_analytics.py", description=__doc__.splitlines()[0])
    add_db_option(parser)
    parser.add_argument("--analysis", choices=ANALYSES + ("all",), default=None,
                        help="which analysis (default: all, or performance-prediction with --predict)")
    parser.add_argument("--output-dir", default="./analytics_output", metavar="DIR",
                        help="where data, charts and summaries go (default: %(default)s)")
    parser.add_argument("--model-family", default=None, help="only this model family")
    parser.add_argument("--hardware-type", default=None, help="only this hardware type")
    parser.add_argument("--prediction-features", default=None, metavar="F1,F2,...",
                        help=f"features of the prediction model, used exactly as given (default: {DEFAULT_FEATURES}, "
                             "plus parameters_million and modality when the data has them; the output says "
                             "which were added)")
    parser.add_argument("--predict", default=None, metavar="K=V,...",
                        help="predict one configuration, e.g. model_family=bert,hardware_type=cuda,batch_size=16,"
                             "precision=fp16 (implies --analysis performance-prediction unless given)")
    parser.add_argument("--regression-threshold", type=float, default=0.1, metavar="FRACTION",
                        help="smallest relative change anomaly detection reports (0.1 or 10 = 10%%; default 0.1)")
    parser.add_argument("--interactive", action="store_true",
                        help="also write one self-contained offline HTML page per analysis (plotly)")
    parser.add_argument("--format", choices=("png", "svg", "pdf"), default="png", help="chart format (default png)")
    parser.add_argument("--include-simulated", action="store_true", help="include results flagged as simulated")
    parser.add_argument("--seed", type=int, default=0, help="random seed for bootstrap and models (default 0)")
    add_archive_option(parser)
    add_common_options(parser)
    return parser


def run(args) -> int:
    from benchmark_db.connection import open_db

    # `not x >= 0`, not `x < 0`: NaN compares false both ways, and nan or inf reported "a change of at least nan%"
    if not (math.isfinite(args.regression_threshold) and args.regression_threshold >= 0):
        raise UsageError(f"--regression-threshold must be a finite fraction or percentage >= 0, not "
                         f"{args.regression_threshold:g}", "pass e.g. --regression-threshold 0.1 (or 10, both 10%)")
    predict = parse_predict(args.predict)
    analysis = args.analysis or ("performance-prediction" if predict else "all")
    if predict and analysis not in ("performance-prediction", "all"):  # it was dropped without a word
        raise UsageError(f"--predict applies to --analysis performance-prediction, not {analysis}",
                         "leave out --analysis (or pass performance-prediction or all) to predict")
    asked = args.prediction_features
    features = tuple(f.strip() for f in (DEFAULT_FEATURES if asked is None else asked).split(",") if f.strip())
    if not features:
        raise UsageError("--prediction-features is empty", f"e.g. {DEFAULT_FEATURES}")
    opts = Options(output_dir=Path(args.output_dir), fmt=args.format, interactive=args.interactive,
                   regression_threshold=args.regression_threshold, prediction_features=features,
                   add_model_attributes=asked is None, predict=predict,
                   seed=args.seed)
    with open_db(args.db, read_only=True, lock_timeout=args.lock_timeout,
                 missing_archive=missing_archive_mode(args)) as conn:
        # the folder fails before the work, in the one line every tool gives (it was `unexpected
        # FileNotFoundError`); made only once the database opened, so a DB001/DB004 leaves nothing behind
        made = not Path(args.output_dir).exists()
        make_writable_folder(args.output_dir, "--output-dir")
        try:
            results = run_analyses(conn, analysis, opts, model_family=args.model_family,
                                   hardware_type=args.hardware_type, include_simulated=args.include_simulated)
        except OSError as exc:
            error = _output_error(exc, opts)
            if error is None:
                raise
            raise error from exc
        except BenchmarkDBError:  # filters that match nothing, an unknown feature: no empty folder left behind
            if made and not any(Path(args.output_dir).iterdir()):
                Path(args.output_dir).rmdir()
            raise
    text = "\n\n".join(r.summary for r in results)
    if analysis == "all":
        status = "\n".join(f"- {r.name}: {r.status}" + (f" ({r.reason})" if r.reason else "") for r in results)
        text += "\n\n## Analyses run\n\n" + status
    write_text(text, None)
    log.info("wrote %s", opts.output_dir)
    return 2 if any(r.status == "error" for r in results) else 0


def main(argv: list[str] | None = None) -> int:
    return run_cli(build_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(main())

"""Charts of benchmark results (matplotlib with the Agg backend, seaborn's whitegrid look).

Every chart has a title, labelled axes with units, a log scale where the values span more than a factor
of 20, p10-p90 whiskers around the p50 (from raw samples where every result has them, else from the
per-result values; the subtitle says which), change points marked on trends, and simulated series drawn
dashed with hollow markers and labelled "(simulated)". Emulated results (a software adapter such as
SwiftShader) are series, columns and legend entries of their own named `<hardware> (emulated)`, never merged
with the real device. The functions take the DataFrames of `benchmark_db.reports` and return a matplotlib
Figure; `save_figure` writes PNG, SVG or PDF by extension.
Nothing here queries the database except `report_charts`, which fills the charts of an HTML report.
"""
from __future__ import annotations

import base64
import contextlib
import io
import math
from pathlib import Path

from benchmark_db.errors import UsageError
from benchmark_db.reports import SERIES_KEYS, Metric, get_metric, hardware_label, is_missing
from benchmark_db.stats import MIN_RUNS_FOR_CHANGE_POINTS  # the detector's own floor (13 runs)

IMAGE_FORMATS = ("png", "svg", "pdf")
LOG_SPAN = 20.0  # max/min ratio from which an axis is drawn on a log scale


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _figure(figsize, layout: str | None = "constrained"):
    """A Figure on an Agg canvas, made without pyplot: importing pyplot (its backend machinery) cost every
    report about half a second, and a figure nobody shows needs no window manager. Nothing keeps it alive
    but its caller, so it needs no closing."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout=layout)
    FigureCanvasAgg(fig)
    return fig


def _close(fig) -> None:
    """Let pyplot forget `fig` where pyplot made it (a figure a caller drew with pyplot); a figure of
    `_figure` is not pyplot's, and pyplot is not imported for it."""
    import sys

    plt = sys.modules.get("matplotlib.pyplot")
    if plt is not None:
        plt.close(fig)


def image_format(path) -> str:
    suffix = Path(str(path)).suffix.lower().lstrip(".")
    if suffix not in IMAGE_FORMATS:
        raise UsageError(f"cannot tell the image format of {path}",
                         f"end the output name with {', '.join('.' + f for f in IMAGE_FORMATS)}")
    return suffix


def _lay_out_once(fig, dpi: float) -> None:
    """Run `fig`'s layout engine now, at the dpi of the raster about to be saved, and take the engine off.

    With an engine on, `savefig` first draws the whole figure with rendering disabled (only so that the
    layout can run) and then draws it again for real: every tick and label laid out twice. The layout itself
    needs only the sizes of the texts, which it measures on its own; the one real draw that follows then
    puts everything where constrained layout would have. Raster output only: a PDF or SVG measures its
    texts with its own renderer, so there `savefig` keeps doing the layout itself."""
    engine = fig.get_layout_engine()
    if engine is None:
        return
    fig.set_dpi(dpi)
    engine.execute(fig)
    fig.set_layout_engine(None)


@contextlib.contextmanager
def _missing_glyphs_said_once():
    """matplotlib warns once per missing glyph and per drawing (a CJK model name gave 6-18 `Glyph 26085
    missing from font(s) DejaVu Sans` lines a chart, --quiet or not): one log line per chart says it instead,
    naming the characters drawn as boxes and what would draw them."""
    import logging
    import re
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    missing: list[str] = []
    for warning in caught:
        found = re.match(r"Glyph (\d+) .*missing from font", str(warning.message))
        if found is None:
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
        elif chr(int(found.group(1))) not in missing:
            missing.append(chr(int(found.group(1))))
    if missing:
        logging.getLogger("benchmark_db.charts").warning(
            "the installed fonts have no glyph for %s in the chart's labels: drawn as boxes (a font such as "
            "Noto Sans CJK, once installed, is used for them)", " ".join(missing[:12]) + (" ..." * (len(missing) > 12)))


def save_figure(fig, path) -> Path:
    """Write `fig` as PNG, SVG or PDF according to `path`'s extension and close it."""
    fmt = image_format(path)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with _missing_glyphs_said_once():
            if fmt == "png":
                _lay_out_once(fig, 130)
            fig.savefig(target, format=fmt, dpi=130,
                        metadata={"Software": "benchmark-db"} if fmt == "png" else None)
    finally:
        _close(fig)
    return target


def figure_data_uri(fig) -> str:
    """`fig` as a base64 PNG data URI (for a self-contained HTML page); closes the figure."""
    buffer = io.BytesIO()
    try:
        with _missing_glyphs_said_once():
            _lay_out_once(fig, 100)
            fig.savefig(buffer, format="png", dpi=100)
    finally:
        _close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


MAX_LABEL = 40  # characters of a model name shown in a panel title or a tick label
LEGEND_LABEL = 56  # a legend entry has the room beside the panels: a model with its configuration fits


def short_label(text, limit: int = MAX_LABEL) -> str:
    """`text` cut in the middle with an ellipsis when longer than `limit` (long names overlap neighbours). A
    model's configuration after its name (`bert · forward · seq 128 fp32`, reports.configuration_labels) is kept
    whole where it fits, and the name is cut: cut through the middle, two configurations read alike."""
    text = str(text)
    if len(text) <= limit:
        return text
    name, dot, configuration = text.partition(" · ")
    if dot and limit - len(dot) - len(configuration) >= 8:
        return short_label(name, limit - len(dot) - len(configuration)) + dot + configuration
    head = (limit - 1) // 2
    return text[:head] + "\u2026" + text[-(limit - 1 - head):]


def _footer(fig, text: str, fontsize: float) -> None:
    """The figure's footnote, wrapped to the figure's width so that no part of it is cut off."""
    import textwrap

    width = max(40, int(fig.get_figwidth() * 72 / (fontsize * 0.6)))
    fig.supxlabel(textwrap.fill(text, width=width, break_long_words=False), fontsize=fontsize, color="#444")


def _finite_positive(values) -> list[float]:
    out = []
    for v in values:
        try:
            f = float(v)
        except (TypeError, ValueError):
            continue
        if math.isfinite(f) and f > 0:
            out.append(f)
    return out


def wants_log(values) -> bool:
    vals = _finite_positive(values)
    return bool(vals) and max(vals) / min(vals) >= LOG_SPAN


# seaborn 0.13's axes_style("whitegrid"), written out: importing seaborn (which imports scipy.stats) took
# about a second of every HTML report only to read these values. Left out: its image.cmap "rocket", a
# colormap seaborn registers on import; every heat map here names its own colormap.
WHITEGRID = {
    "figure.facecolor": "white", "axes.labelcolor": ".15", "xtick.direction": "out", "ytick.direction": "out",
    "xtick.color": ".15", "ytick.color": ".15", "axes.axisbelow": True, "grid.linestyle": "-", "text.color": ".15",
    "font.family": ["sans-serif"],
    "font.sans-serif": ["Arial", "DejaVu Sans", "Liberation Sans", "Bitstream Vera Sans", "sans-serif"],
    "lines.solid_capstyle": "round", "patch.edgecolor": "w", "patch.force_edgecolor": True, "xtick.top": False,
    "ytick.right": False, "axes.grid": True, "axes.facecolor": "white", "axes.edgecolor": ".8", "grid.color": ".8",
    "axes.spines.left": True, "axes.spines.bottom": True, "axes.spines.right": True, "axes.spines.top": True,
    "xtick.bottom": False, "ytick.left": False,
}
# seaborn's color_palette("tab10") (matplotlib's tab10 colours), for up to 10 series
TAB10 = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
         "#17becf")


# after the Latin fonts, ones with CJK glyphs: matplotlib draws a character a font lacks with the next font in
# the list that has it (where one is installed; a model name may be 日本語)
CJK_FONTS = ["Noto Sans CJK JP", "Noto Sans CJK SC", "WenQuanYi Zen Hei", "Droid Sans Fallback"]


def _style():
    import matplotlib

    latin = WHITEGRID["font.sans-serif"]
    return matplotlib.rc_context({**WHITEGRID, "font.sans-serif": [*latin[:-1], *CJK_FONTS, latin[-1]]})


def _palette(n: int) -> list:
    """`n` distinct colours as RGB tuples: tab10 up to 10, else seaborn's husl palette (evenly spaced hues)."""
    if n <= 10:
        from matplotlib.colors import to_rgb

        return [to_rgb(c) for c in TAB10[:n]]
    import seaborn as sns  # only for more than 10 series: its husl colour space is not in matplotlib

    return list(sns.color_palette("husl", n))


# where a title sits on an axes whose tick labels are all below it: where matplotlib would put it, given
# outright, since placing it (looking for top tick labels in the way) measured every tick label of the
# axes once more and took about half of the drawing of a chart of six panels
TITLE_Y = 1.0

MAX_PANELS = 12
MARKERS = ("o", "s", "^", "D", "v", "P")


def _stable_colors(kind: str, values) -> dict:
    """The same colour for the same hardware type (or model) in every chart."""
    from benchmark_db.names import HARDWARE_TYPES

    names = sorted({str(v) for v in values})
    if kind == "hardware":
        unknown = [n for n in names if n not in HARDWARE_TYPES]
        palette = _palette(len(HARDWARE_TYPES) + len(unknown))
        order = list(HARDWARE_TYPES) + unknown
        return {n: palette[order.index(n)] for n in names}
    palette = _palette(len(names))
    return dict(zip(names, palette))


SHADES = (0.0, -0.45, 0.5, -0.7, 0.75)  # per variant of one hue: as is, darker, lighter, darker, lighter


def _shade(color, k: int):
    """`color` for the k-th variant of one hardware type (or model): the same hue, darker or lighter, so the
    series of cpu fp32 and cpu (no precision) are told apart while staying recognisably cpu."""
    from matplotlib.colors import to_rgb

    amount = SHADES[k % len(SHADES)]
    r, g, b = to_rgb(color)
    target = 0.0 if amount < 0 else 1.0
    return tuple(c + (target - c) * abs(amount) for c in (r, g, b))


def _basis_text(df) -> str:
    bases = sorted(set(df["basis"].dropna())) if "basis" in df else []
    if bases == ["raw samples"]:
        return "p50; whiskers p10-p90 of the raw latency samples"
    if bases == ["per-result values"]:
        return "p50; whiskers p10-p90 across results"
    return "p50; whiskers p10-p90 (raw samples where every result has them, else across results)"


def _is_sim(row) -> bool:
    value = row.get("is_simulated", False)
    return not is_missing(value) and bool(value)


def _label_emulated(df):
    """`df` (a copy) with `is_emulated` (False where absent) and emulated rows' hardware read
    `<hardware> (emulated)` (the report tables label it already; a frame built elsewhere may not)."""
    df = df.copy()
    if "is_emulated" not in df:
        df["is_emulated"] = False
    elif "hardware" in df and len(df):
        df["hardware"] = [hardware_label(h, e) for h, e in zip(df["hardware"], df["is_emulated"])]
    return df


def _errorbars(ax, xs, p10, p50, p90, *, color, label, simulated, marker="o", line=True):
    p50 = [float("nan") if is_missing(m) else float(m) for m in p50]
    lower = [0.0 if is_missing(lo) or m != m else max(m - float(lo), 0.0) for lo, m in zip(p10, p50)]
    upper = [0.0 if is_missing(hi) or m != m else max(float(hi) - m, 0.0) for hi, m in zip(p90, p50)]
    ax.errorbar(xs, p50, yerr=[lower, upper], color=color, label=label, marker=marker, markersize=6,
                linestyle=("--" if simulated else "-") if line else "none", linewidth=1.6, capsize=3,
                markerfacecolor="white" if simulated else color, markeredgecolor=color)


def _with_configuration(df):
    """`df` with each model's name followed by its test case and sequence length where that model has several
    (`reports.configuration_labels`): results of different work never share a line or a panel."""
    from benchmark_db.reports import configuration_labels

    return df.assign(model=configuration_labels(df))


def comparison_figure(df, metric: str | Metric = "throughput", by: str = "hardware", title: str | None = None):
    """p50 of the metric against batch size, one line per `by` value (hardware or model), one panel per
    value of the other dimension. `df` is `reports.compare_table(...)`; a model measured in several test cases
    or sequence lengths is one model per configuration here."""
    m = metric if isinstance(metric, Metric) else get_metric(metric)
    p = m.prefix
    facet = "model" if by == "hardware" else "hardware"
    df = _with_configuration(_label_emulated(df))
    if "is_simulated" not in df:
        df["is_simulated"] = False
    df[facet] = df[facet].fillna("(unknown)")
    df[by] = df[by].fillna("(unknown)")
    notes = []
    has_batch = df["batch_size"].notna().any()
    if has_batch and df["batch_size"].isna().any():
        dropped = int(df.loc[df["batch_size"].isna(), "results"].sum())
        df = df[df["batch_size"].notna()]
        notes.append(f"{dropped} result{'s' if dropped != 1 else ''} without a batch size not drawn")
    sizes = df.groupby(facet)["results"].sum().sort_values(ascending=False, kind="stable")
    if len(sizes) > MAX_PANELS:
        notes.append(f"{MAX_PANELS} of {len(sizes)} {facet}s with the most results shown; narrow with --{facet}")
        sizes = sizes.iloc[:MAX_PANELS]
        df = df[df[facet].isin(sizes.index)]
    facets = sorted(sizes.index, key=str)
    # a series: one compared entity at one precision, measured or simulated
    several_precisions = df.groupby([facet, by])["precision"].nunique(dropna=False).max() > 1
    df["series"] = df[by].astype(str)
    if several_precisions:
        df["series"] += df["precision"].map(lambda v: f" {v}" if isinstance(v, str) else " (no precision)")
    df.loc[df["is_simulated"].astype(bool), "series"] += " (simulated)"
    series_names = list(dict.fromkeys(df.sort_values([by, "precision"], na_position="last")["series"]))
    colors = _stable_colors(by, df[by])
    precisions = sorted({v for v in df["precision"] if isinstance(v, str)})
    markers = {v: MARKERS[i % len(MARKERS)] for i, v in enumerate(precisions)} if several_precisions else {}
    # one colour per series: the hue of its hardware (model), a shade per precision within it (the marker
    # alone, o against X, was too small a difference between two lines of one blue); simulated keeps the
    # shade of its precision and is told apart by its dashed line and hollow markers
    series_colors = {}
    for entity, part in df.groupby(by, sort=False):
        variants = list(dict.fromkeys(v if isinstance(v, str) else None
                                      for v in part.sort_values("precision", na_position="last")["precision"]))
        for series, precision in zip(part["series"], part["precision"]):
            k = variants.index(precision if isinstance(precision, str) else None)
            series_colors[series] = _shade(colors[entity], k)

    what = f"{m.label} by {by}" if by == "hardware" else f"{m.label} by model"
    fig_title = title or what
    cols = min(3, len(facets))
    rows = math.ceil(len(facets) / cols)
    with _style():
        fig = _figure((5.4 * cols if cols > 1 else 8.5, 3.9 * rows + 1.3))
        axes = fig.subplots(rows, cols, squeeze=False)
        values = list(df[f"{p}_p10"]) + list(df[f"{p}_p90"]) + list(df[f"{p}_p50"])
        log_y = wants_log(values)
        handles = {}
        for i, name in enumerate(facets):
            ax = axes[i // cols][i % cols]
            part = df[df[facet] == name]
            if has_batch:
                part = part[part["batch_size"].notna()]
                n = len(series_names)
                for j, series in enumerate(series_names):
                    s = part[part["series"] == series].sort_values("batch_size")
                    if s.empty:
                        continue
                    shift = 2 ** (0.05 * (j - (n - 1) / 2))  # keep whiskers of different series apart
                    xs = [float(b) * shift for b in s["batch_size"]]
                    _errorbars(ax, xs, list(s[f"{p}_p10"]), list(s[f"{p}_p50"]), list(s[f"{p}_p90"]),
                               color=series_colors[series], label=series, simulated=_is_sim(s.iloc[0]),
                               marker=markers.get(s["precision"].iloc[0], "X" if markers else "o"))
                batches = sorted({int(b) for b in part["batch_size"]})
                ax.set_xscale("log", base=2)
                if len(batches) == 1:
                    ax.set_xlim(batches[0] / 2, batches[0] * 2)
                ax.set_xticks(batches, [str(b) for b in batches])
                ax.minorticks_off()
                ax.set_xlabel("Batch size (items per call)")
            else:
                order = [s for s in series_names if s in set(part["series"])]
                for j, series in enumerate(order):
                    s = part[part["series"] == series]
                    _errorbars(ax, [j] * len(s), list(s[f"{p}_p10"]), list(s[f"{p}_p50"]), list(s[f"{p}_p90"]),
                               color=series_colors[series], label=series, simulated=_is_sim(s.iloc[0]), line=False,
                               marker=markers.get(s["precision"].iloc[0], "X" if markers else "o"))
                ax.set_xticks(range(len(order)), order, rotation=30, ha="right")
                ax.set_xlabel(by.capitalize())
            if log_y:
                ax.set_yscale("log")
            ax.set_ylabel(m.axis_label + (" (log scale)" if log_y else ""))
            if len(facets) > 1 or str(name) not in fig_title:
                ax.set_title(short_label(name, 60 if cols == 1 else MAX_LABEL), fontsize=11, y=TITLE_Y)
            for h, label in zip(*ax.get_legend_handles_labels()):
                handles.setdefault(label, h)
        for k in range(len(facets), rows * cols):
            axes[k // cols][k % cols].set_visible(False)
        fig.suptitle(fig_title, fontsize=14, fontweight="bold")
        better = "higher is better" if m.higher_is_better else "lower is better"
        _footer(fig, "; ".join([_basis_text(df), better] + notes), 9)
        if handles:
            fig.legend(list(handles.values()), [short_label(k, LEGEND_LABEL) for k in handles], loc="outside right center",
                       title=by.capitalize(), fontsize=9, title_fontsize=10)
    return fig


def _series_key(key) -> tuple:
    """A trend series' key with every missing value as None (NaN != NaN: a key with one never matched)."""
    return tuple(None if is_missing(value) else value for value in key)


def trend_figure(trend, change_points=None, metric: str | Metric = "throughput", title: str | None = None,
                 note: str | None = None):
    """p50 per run over time with p10-p90 whiskers, one line per configuration, change points marked."""
    import matplotlib.dates as mdates
    import pandas as pd

    m = metric if isinstance(metric, Metric) else get_metric(metric)
    p = m.prefix
    df = _label_emulated(trend)
    groups = list(df.groupby(SERIES_KEYS, dropna=False, sort=True))
    models = df["model"].nunique()
    hardware = df["hardware"].nunique()
    test_cases = df["test_case"].nunique(dropna=False) if "test_case" in df else 1
    lengths = df["sequence_length"].nunique(dropna=False) if "sequence_length" in df else 1
    colors = _palette(len(groups))
    with _style():
        fig = _figure((10, 5.6))
        ax = fig.subplots()
        log_y = wants_log(list(df[f"{p}_p10"]) + list(df[f"{p}_p90"]) + list(df[f"{p}_p50"]))
        named = {}  # series key -> (color, label): a change point says which series it is in
        for color, (key, s) in zip(colors, groups):
            info = dict(zip(SERIES_KEYS, key))
            bits = []
            if models > 1:
                bits.append(str(info["model"]))
            if hardware > 1:
                bits.append(str(info["hardware"]))
            if test_cases > 1 and not is_missing(info.get("test_case")):
                bits.append(str(info["test_case"]))
            bs = info["batch_size"]
            bits.append("batch ?" if is_missing(bs) else f"batch {int(bs)}")
            if lengths > 1 and not is_missing(info.get("sequence_length")):
                bits.append(f"seq {int(info['sequence_length'])}")
            if not is_missing(info["precision"]):
                bits.append(str(info["precision"]))
            simulated = not is_missing(info["is_simulated"]) and bool(info["is_simulated"])
            emulated = not is_missing(info["is_emulated"]) and bool(info["is_emulated"])
            if emulated and hardware <= 1:  # the one hardware is not named: say it is emulated all the same
                bits.append("(emulated)")
            label = " ".join(bits) + (" (simulated)" if simulated else "")
            named[_series_key(key)] = (color, label)
            s = s.sort_values("at")
            _errorbars(ax, list(s["at"]), list(s[f"{p}_p10"]), list(s[f"{p}_p50"]), list(s[f"{p}_p90"]),
                       color=color, label=label, simulated=simulated)
        marked = False
        if change_points is not None and len(change_points):
            stacked: dict = {}  # change points at one time: their labels one under another, not on top
            for _, cp in change_points.iterrows():
                ax.axvline(cp["at"], color="#c0392b", linestyle=":", linewidth=1.4,
                           label=None if marked else "change point")
                marked = True
                pct = cp["change_pct"]
                text = "change" if is_missing(pct) else f"{pct:+.1f}%"
                if not is_missing(cp.get("p_value")):
                    text += f" p={cp['p_value']:.2g}"
                color, label = named.get(_series_key(tuple(cp.get(k) for k in SERIES_KEYS)), ("#c0392b", ""))
                if len(groups) > 1 and label:  # which line changed: the label in that line's colour
                    text = f"{short_label(label, 30)}\n{text}"
                place = stacked[cp["at"]] = stacked.get(cp["at"], -1) + 1
                # on a white ground, so that a line drawn through the top of the plot does not hide it
                ax.annotate(text, xy=(cp["at"], 1.0), xycoords=("data", "axes fraction"),
                            xytext=(3, -3 - 26 * place), textcoords="offset points", va="top", fontsize=8,
                            color=color, bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": color,
                                               "lw": 0.6, "alpha": 0.9})
        if log_y:
            ax.set_yscale("log")
        ax.set_ylabel(m.axis_label + (" (log scale)" if log_y else ""))
        ax.set_xlabel("Run time (UTC)")
        locator = mdates.AutoDateLocator(minticks=3, maxticks=8)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
        times = pd.to_datetime(df["at"]).dropna()
        if len(times) and times.max() - times.min() < pd.Timedelta(days=1):
            # one run (or runs within a day): matplotlib pads a single date by two years each side, so the
            # axis read 2025...2029 around a run of today; show the hours around the runs instead
            pad = max((times.max() - times.min()) * 0.1, pd.Timedelta(minutes=30))
            ax.set_xlim(times.min() - pad, times.max() + pad)
        ax.set_title(title or f"{m.label} over time", fontsize=13, fontweight="bold", y=TITLE_Y)
        footer = [_basis_text(df), "one point per run"]
        longest = max((len(s) for _, s in groups), default=0)
        if change_points is not None and not len(change_points) and note is None:
            footer.append("no change points detected" if longest >= MIN_RUNS_FOR_CHANGE_POINTS else
                          f"too few runs ({longest}) to detect change points (needs {MIN_RUNS_FOR_CHANGE_POINTS})")
        if note:
            footer.append(note)
        _footer(fig, "; ".join(footer), 8.5)
        ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=9, title="Configuration")
    return fig


def _compatibility_cells(table):
    """`table` (of `reports.compatibility_table`) with one row per part of each pair's results, in the column
    it is drawn in: real results under `<hardware>`, emulated ones under `<hardware> (emulated)`, simulated ones
    (and a simulated check's verdict) under `<hardware> (simulated)`, each with the pair's verdict and its own
    count. One cell of all of them read `yes 72` for 24 real, 24 emulated and 24 simulated results, where the
    matrix table keeps them apart."""
    import pandas as pd

    rows = []
    for row in table.to_dict("records"):
        model = "(any model)" if is_missing(row.get("model")) else row["model"]
        hardware = "unknown" if is_missing(row.get("hardware")) else str(row["hardware"])
        count = {name: 0 if is_missing(row.get(name)) else int(row[name])
                 for name in ("performance_results", "emulated_results", "simulated_results")}
        real = count["performance_results"] - count["emulated_results"] - count["simulated_results"]
        parts = [(hardware, real), (hardware_label(hardware, True), count["emulated_results"]),
                 (f"{hardware} (simulated)", count["simulated_results"])]
        parts = [(column, n) for column, n in parts if n > 0]
        simulated = _is_sim(row)
        if not parts or (simulated and not count["simulated_results"]):  # the verdict of a check alone
            parts.append((f"{hardware} (simulated)" if simulated else hardware, 0))
        rows.extend({"model": model, "column": column, "is_compatible": row.get("is_compatible"), "results": n}
                    for column, n in parts)
    return pd.DataFrame(rows, columns=["model", "column", "is_compatible", "results"])


def compatibility_figure(table, title: str | None = None):
    """Heat map of model x hardware: compatible (green), incompatible (red), unknown (grey). Emulated and
    simulated results get columns of their own (`webgpu (emulated)`, `webgpu (simulated)`), as in the matrix."""
    import numpy as np
    import seaborn as sns
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    df = _compatibility_cells(table)
    df["code"] = [np.nan if is_missing(v) else (1.0 if v else 0.0) for v in df["is_compatible"]]
    # several devices of one hardware type: the cell is the worst of them and counts all their results
    # a red cell counts the results of its failed pairs alone (a pair whose check failed yet has results
    # measured: a bare "no" hid them), never those of another device that passed
    df["failed_results"] = df["results"].where(df["code"] == 0.0, 0)
    cells = df.groupby(["model", "column"]).agg(code=("code", "min"), results=("results", "sum"),
                                                failed_results=("failed_results", "sum")).reset_index()
    cells["label"] = [("yes" + (f"\n{n}" if n else "")) if c == 1.0 else (("no" + (f"\n{f}" if f else ""))
                                                                          if c == 0.0 else "?")
                      for c, n, f in zip(cells["code"], cells["results"], cells["failed_results"])]
    codes = cells.pivot(index="model", columns="column", values="code")
    labels = cells.pivot(index="model", columns="column", values="label").reindex_like(codes).fillna("")
    with _style():
        names = [short_label(n) for n in codes.index]
        codes.index = labels.index = names
        label_width = 0.09 * max((len(n) for n in names), default=0)
        # a column as wide as its name: `qualcomm (simulated)` next to `openvino (simulated)` just fits 1.25"
        column_width = max(1.25, 0.07 * max((len(str(c)) for c in codes.columns), default=0))
        fig = _figure((max(6.0, column_width * codes.shape[1] + 2.0 + label_width),
                       max(3.0, 0.55 * codes.shape[0] + 1.8)))
        ax = fig.subplots()
        sns.heatmap(codes, ax=ax, cmap=ListedColormap(["#e74c3c", "#2ecc71"]), vmin=0, vmax=1, cbar=False,
                    annot=labels.values, fmt="", linewidths=1, linecolor="white",
                    annot_kws={"fontsize": 8, "color": "black"})
        ax.set_facecolor("#dddddd")
        ax.grid(False)
        ax.set_title(title or "Model / hardware compatibility", fontsize=13, fontweight="bold")
        ax.set_xlabel("Hardware type")
        ax.set_ylabel("Model")
        if codes.shape[0] > 8:  # a tall matrix: name the columns at the top too, where the reader starts
            ax.tick_params(axis="x", top=True, labeltop=True)
        ax.legend(handles=[Patch(color="#2ecc71", label="compatible (number: results)"),
                           Patch(color="#e74c3c", label="not compatible (number: results)"), Patch(color="#dddddd", label="unknown")],
                  loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    return fig


def relative_speed_figure(compare, title: str | None = None):
    """Heat map of throughput relative to CPU (x, geometric mean over batch sizes) per model and hardware."""
    import numpy as np
    import seaborn as sns
    from matplotlib.colors import LogNorm

    df = _label_emulated(compare.dropna(subset=["relative_to_cpu"]))
    df = df[df["relative_to_cpu"] > 0]
    if "is_simulated" in df:  # simulated results get columns of their own, never averaged into measured ones
        simulated = df["is_simulated"].fillna(False).astype(bool)
        df["hardware"] = df["hardware"].astype(str).where(~simulated, df["hardware"].astype(str) + " (simulated)")
    df["log_rel"] = np.log(df["relative_to_cpu"].astype(float))
    grid = np.exp(df.pivot_table(index="model", columns="hardware", values="log_rel", aggfunc="mean"))
    with _style():
        grid.index = [short_label(n) for n in grid.index]
        label_width = 0.09 * max((len(n) for n in grid.index), default=0)
        fig = _figure((max(6.0, 1.3 * grid.shape[1] + 3 + label_width), max(3.0, 0.55 * grid.shape[0] + 1.8)))
        ax = fig.subplots()
        ax.grid(False)
        wide = wants_log(grid.values.ravel())
        sns.heatmap(grid, ax=ax, cmap="viridis", annot=grid.map(lambda v: f"{v:.3g}x" if v == v else ""), fmt="",
                    norm=LogNorm() if wide else None, linewidths=1, linecolor="white",
                    cbar_kws={"label": "Throughput relative to CPU (x" + (", log scale)" if wide else ")")})
        ax.set_title(title or "Throughput relative to CPU", fontsize=13, fontweight="bold")
        ax.set_xlabel("Hardware type")
        ax.set_ylabel("Model")
        _footer(fig, "geometric mean over batch sizes of p50 throughput / CPU p50 throughput", 8.5)
    return fig


def report_charts(conn, report) -> None:
    """Attach the charts of each section of an HTML report (as base64 PNG data URIs)."""
    from benchmark_db import reports

    for section in report.sections:
        charts = []
        if section.key == "performance" and not section.frame.empty:
            metrics = [report.metric] if report.metric else ["throughput", "latency"]
            for name in metrics:
                m = get_metric(name)
                df = reports.compare_table(conn, report.filters, name, by="hardware")
                if df.empty:
                    continue
                charts.append((f"{m.label} by hardware and batch size",
                               figure_data_uri(comparison_figure(df, m, "hardware",
                                                                 f"{m.label} by hardware and batch size")),
                               f"{m.label} ({m.unit}) per model against batch size, one line per hardware type"))
        elif section.key == "hardware" and not section.frame.empty:
            df = reports.compare_table(conn, report.filters, "throughput", by="hardware")
            if "relative_to_cpu" in df and df["relative_to_cpu"].notna().any():
                charts.append(("Throughput relative to CPU", figure_data_uri(relative_speed_figure(df)),
                               "heat map of throughput relative to CPU per model and hardware type"))
        elif section.key == "compatibility_matrix" and not section.frame.empty:
            table = reports.compatibility_table(conn, report.filters)
            charts.append(("Compatibility", figure_data_uri(compatibility_figure(table)),
                           "heat map of compatibility per model and hardware type"))
        section.charts = charts

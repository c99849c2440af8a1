#!/usr/bin/env python3
"""Charts and HTML reports of the benchmark database.

    python benchmark_db_visualizer.py --report performance --format html --output report.html
    python benchmark_db_visualizer.py --model bert-base-uncased --compare-hardware --output comparison.png
    python benchmark_db_visualizer.py --hardware cuda --compare-models --output models_cuda.png
    python benchmark_db_visualizer.py --model bert-base-uncased --hardware cuda --plot-trend --output trend.png
    python benchmark_db_visualizer.py --report compatibility --output compatibility.svg

Images are PNG, SVG or PDF by the output's extension; an HTML report is one self-contained file (charts
embedded, sortable tables, no network needed). Simulated results are left out unless --include-simulated,
and then drawn dashed and labelled. A chart whose filters match nothing is an error (DB004) that names the
filters and what the database holds; no empty image is written.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchmark_db.cli import (
    add_archive_option,
    add_common_options,
    add_db_option,
    log,
    missing_archive_mode,
    run_cli,
    write_text,
)
from benchmark_db.errors import EXIT_OK, QueryError, UsageError

REPORTS = ("performance", "hardware", "compatibility", "integration", "summary", "all")
FORMATS = ("html", "png", "svg", "pdf")


def build_parser() -> argparse.ArgumentParser:
    from benchmark_db_query import add_filter_options

    parser = argparse.ArgumentParser(prog="benchmark_db_visualizer.py", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[2:]))
    add_db_option(parser)
    action = parser.add_argument_group("what to draw (one of)")
    action.add_argument("--report", choices=REPORTS,
                        help="an HTML report (or, with an image --output, the report's main chart)")
    action.add_argument("--compare-hardware", action="store_true",
                        help="--metric against batch size, one line per hardware type (a panel per model)")
    action.add_argument("--compare-models", action="store_true",
                        help="--metric against batch size, one line per model (a panel per hardware type)")
    action.add_argument("--plot-trend", action="store_true",
                        help="--metric per run over time, change points marked")
    action.add_argument("--compatibility-matrix", action="store_true", help="model x hardware compatibility map")
    add_filter_options(parser)
    parser.add_argument("--format", choices=FORMATS, default=None,
                        help="html for reports; png, svg or pdf for charts (default: from --output's extension)")
    parser.add_argument("--output", "-o", metavar="FILE", default=None,
                        help="file to write (default: benchmark_report.html for --report, else chart.png)")
    parser.add_argument("--title", default=None, help="chart (or HTML report) title instead of the generated one")
    add_archive_option(parser)
    add_common_options(parser)
    return parser


# ------------------------------------------------------------------------------------------------ the work
def _filters_title(filters) -> str:
    bits = []
    if filters.model:
        bits.append(", ".join(filters.model))
    if filters.model_family:
        bits.append("family " + ", ".join(filters.model_family))
    if filters.hardware:
        bits.append("on " + ", ".join(filters.hardware))
    if filters.batch_size:
        bits.append("batch " + ", ".join(str(b) for b in filters.batch_size))
    if filters.precision:
        bits.append(", ".join(filters.precision))
    return " ".join(bits)


def comparison_chart(conn, path, filters, *, metric: str | None = "throughput", by: str = "hardware",
                     title: str | None = None) -> Path:
    """Write the hardware (or model) comparison chart to `path` (PNG/SVG/PDF); DB004 when nothing matches."""
    from benchmark_db import charts, reports

    charts.image_format(path)
    m = reports.get_metric(metric)
    df = reports.compare_table(conn, filters, m.name, by=by)
    if df.empty:
        raise reports.no_data_error(conn, filters, metric=m.name)
    scope = _filters_title(filters)
    default = f"{m.label} by {by}" + (f": {scope}" if scope else "")
    return save_chart(charts.comparison_figure(df, m, by, title or default), path)


def trend_chart(conn, path, filters, *, metric: str | None = "throughput", title: str | None = None,
                max_series: int = 12) -> Path:
    """Write the trend chart (one point per run, change points marked) to `path`; DB004 when nothing matches."""
    from benchmark_db import charts, reports

    charts.image_format(path)
    m = reports.get_metric(metric)
    trend = reports.trend_table(conn, filters, m.name)
    undated = trend.attrs.get("undated", 0)
    if trend.empty and undated:
        raise QueryError(f"the {undated} result(s) that match ({filters.describe()}) have no time (their files "
                         "gave none), so there is no trend to draw", "use --report performance to see them")
    if trend.empty:
        raise reports.no_data_error(conn, filters, metric=m.name)
    if undated:
        log.warning("%d matching result(s) without a time (their files gave none) are left out of the trend",
                    undated)
    group = trend.groupby(reports.SERIES_KEYS, dropna=False, sort=True).ngroup()
    series = int(group.max()) + 1
    left_out = None
    if series > 2 * max_series:
        # the filters in parentheses: describe() has a "; " of its own, which read as the end of the message
        # ("120 configurations match simulated results excluded; ...")
        raise UsageError(f"{series} configurations match ({filters.describe()}), and a trend chart shows at most "
                         f"{max_series}", "narrow it with --model, --hardware, --batch-size or --precision")
    if series > max_series:
        # a few too many (a model measured in several test cases or sequence lengths): the configurations with
        # the most runs are drawn, and the chart and stderr say how many were left out
        runs = group.value_counts()
        kept = sorted(runs.index, key=lambda g: (-runs[g], g))[:max_series]
        trend = trend[group.isin(kept).to_numpy()].reset_index(drop=True)
        left_out = (f"{max_series} of {series} configurations drawn (those with the most runs); narrow with "
                    "--model, --hardware, --batch-size or --precision to see the others")
        log.warning(left_out)
    change_points, note = reports.trend_change_points(trend, m.name)
    if note:
        log.warning(note)
    note = "; ".join(n for n in (note, left_out) if n) or None
    scope = _filters_title(filters)
    default = f"{m.label} over time" + (f": {scope}" if scope else "")
    return save_chart(charts.trend_figure(trend, change_points, m, title or default, note), path)


def compatibility_chart(conn, path, filters, *, title: str | None = None) -> Path:
    from benchmark_db import charts, reports

    charts.image_format(path)
    table = reports.compatibility_table(conn, filters)
    if table.empty:
        raise reports.no_data_error(conn, filters, "compatibility results", source="compatibility")
    return save_chart(charts.compatibility_figure(table, title), path)


def report_chart(conn, path, kind: str, filters, *, metric: str | None = None, title: str | None = None) -> Path:
    """The main chart of a report kind as an image."""
    from benchmark_db import charts, reports

    if kind == "compatibility":
        return compatibility_chart(conn, path, filters, title=title)
    if kind in ("performance", "summary", "all"):
        return comparison_chart(conn, path, filters, metric=metric or "throughput", by="hardware", title=title)
    if kind == "hardware":
        if metric not in (None, "throughput"):  # it was silently drawn as throughput
            raise UsageError(f"the hardware report's chart is throughput relative to CPU, not {metric}",
                             f"leave out --metric, or draw --compare-hardware --metric {metric}")
        charts.image_format(path)
        df = reports.compare_table(conn, filters, "throughput", by="hardware")
        if df.empty:
            raise reports.no_data_error(conn, filters, metric="throughput")
        if "relative_to_cpu" not in df or not df["relative_to_cpu"].notna().any():
            raise reports.no_data_error(conn, filters, "results with a CPU baseline")
        return save_chart(charts.relative_speed_figure(df, title), path)
    raise UsageError(f"the {kind} report has no chart", "write it as HTML: --output report.html")


def html_report(conn, path, kind: str, filters, *, metric: str | None = None, title: str | None = None) -> Path:
    """Write the self-contained HTML report of `kind` to `path` (`title` instead of the generated one)."""
    from benchmark_db import reports

    report = reports.build_report(conn, kind, filters, metric, use_summary_cache=True)
    if title:  # --title was silently dropped for an HTML report (the template escapes it)
        report.title = title
    # the query tool's writer: a path it cannot write is its one-line DB000, not an unexpected OSError
    write_text(reports.render_html(report, conn), str(path))
    return Path(path)


def save_chart(fig, path) -> Path:
    """Write the figure `fig` to `path` (PNG/SVG/PDF); a path it cannot write is the DB000 line of
    `benchmark_db.cli.write_text`, which the query tool and an HTML report here give (an image is bytes, which
    write_text does not take)."""
    from benchmark_db import charts
    from benchmark_db.cli import unwritable_output

    try:
        return charts.save_figure(fig, path)
    except OSError as exc:
        raise unwritable_output(path, exc) from exc


def _output_format(args) -> str:
    if args.format:
        fmt = args.format
    elif args.output:
        suffix = Path(args.output).suffix.lower().lstrip(".")
        fmt = "html" if suffix in ("html", "htm") else suffix
        if fmt not in FORMATS:
            raise UsageError(f"cannot tell the format of {args.output}",
                             "end it with .html, .png, .svg or .pdf, or pass --format")
    else:
        fmt = "html" if args.report else "png"
    return fmt


def run(args) -> int:
    from benchmark_db import reports
    from benchmark_db.connection import connect

    actions = [name for name, on in (("--report", args.report), ("--compare-hardware", args.compare_hardware),
                                     ("--compare-models", args.compare_models), ("--plot-trend", args.plot_trend),
                                     ("--compatibility-matrix", args.compatibility_matrix)) if on]
    if len(actions) != 1:
        raise UsageError("choose one of --report, --compare-hardware, --compare-models, --plot-trend, "
                         "--compatibility-matrix" + (f" (got {', '.join(actions)})" if actions else ""),
                         "see --help for examples")
    fmt = _output_format(args)
    output = args.output or ("benchmark_report.html" if fmt == "html" else f"chart.{fmt}")
    if args.output and Path(output).suffix.lower().lstrip(".") not in (fmt, "htm" if fmt == "html" else fmt):
        raise UsageError(f"--format {fmt} does not match the extension of {output}", "make them agree")
    if fmt == "html" and not args.report:
        raise UsageError(f"{actions[0]} draws an image", "give --output a .png, .svg or .pdf name, or use --report")
    filters = reports.ReportFilters.from_args(args)
    conn = connect(args.db, read_only=True, lock_timeout=args.lock_timeout,
                   missing_archive=missing_archive_mode(args))
    try:
        if fmt == "html":
            path = html_report(conn, output, args.report, filters, metric=args.metric, title=args.title)
        elif args.report:
            path = report_chart(conn, output, args.report, filters, metric=args.metric, title=args.title)
        elif args.compare_hardware or args.compare_models:
            path = comparison_chart(conn, output, filters, metric=args.metric,
                                    by="hardware" if args.compare_hardware else "model", title=args.title)
        elif args.plot_trend:
            path = trend_chart(conn, output, filters, metric=args.metric, title=args.title)
        else:
            path = compatibility_chart(conn, output, filters, title=args.title)
    finally:
        conn.close()
    write_text(str(path), None)
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    return run_cli(build_parser(), run, argv)


if __name__ == "__main__":
    raise SystemExit(main())

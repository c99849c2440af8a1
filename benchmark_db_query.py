#!/usr/bin/env python3
"""Query the benchmark database: read-only SQL, reports, comparisons and the regression gate.

    python benchmark_db_query.py --sql "SELECT model, hardware, AVG(throughput) FROM benchmark_performance GROUP BY ALL"
    python benchmark_db_query.py --report performance --format html --output benchmark_report.html
    python benchmark_db_query.py --model bert-base-uncased --metric throughput --compare-hardware
    python benchmark_db_query.py --regression-check --reference-db previous.duckdb --threshold 5

Simulated results are left out unless --include-simulated asks for them. --regression-check exits 1 when
it finds a regression (improvements are reported, never as regressions) and 0 otherwise. An option the chosen
action does not use (--threshold with --sql, --last-days with --compare-hardware) is refused with error DB000.
--sql prints HUGEINT and DECIMAL values with all their digits and a DATE as 2025-03-01.

Rows moved to Parquet by benchmark_db_maintenance.py --archive-data are read with the live ones. When an
archived file the database names is missing, every answer would leave its rows out: the tool stops with
error DB004 (exit 2) naming the files, unless --allow-missing-archive asks for the live rows alone (then
with a warning on stderr, exit 0).
"""
from __future__ import annotations

import argparse
import logging
import math
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchmark_db.cli import (
    add_archive_option,
    add_common_options,
    add_db_option,
    missing_archive_mode,
    run_cli,
    write_text,
)
from benchmark_db.errors import EXIT_FINDING, EXIT_OK, UsageError

log = logging.getLogger("benchmark_db.query")

REPORTS = ("performance", "hardware", "compatibility", "integration", "summary")
FORMATS = ("table", "json", "csv", "markdown", "html")


def add_filter_options(parser: argparse.ArgumentParser) -> None:
    """The filters the query tool and the visualizer share."""
    group = parser.add_argument_group("filters")
    group.add_argument("--model", metavar="NAME", help="model name (comma-separated list; * matches anything; "
                                                       "the name without its organisation also matches)")
    group.add_argument("--model-family", metavar="FAMILY", help="model family, e.g. bert (comma-separated list)")
    group.add_argument("--hardware", "--hardware-type", dest="hardware", metavar="TYPE",
                       help="hardware type, e.g. cpu, cuda (comma-separated list)")
    group.add_argument("--batch-size", metavar="N", help="batch size (comma-separated list)")
    group.add_argument("--precision", metavar="P", help="precision, e.g. fp32, fp16 (comma-separated list)")
    group.add_argument("--since", metavar="DATE", help="results created at or after DATE (UTC, YYYY-MM-DD[THH:MM])")
    group.add_argument("--until", metavar="DATE", help="results created up to DATE (a bare date includes that day)")
    group.add_argument("--include-simulated", action="store_true",
                       help="include simulated results (left out otherwise; always shown separately)")
    group.add_argument("--metric", choices=("throughput", "latency", "memory"), default=None,
                       help="metric of comparisons and trends (default: throughput)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="benchmark_db_query.py", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[2:]))
    add_db_option(parser)
    action = parser.add_argument_group("what to run (one of)")
    action.add_argument("--sql", metavar="QUERY", help="run a read-only SQL query")
    action.add_argument("--report", choices=REPORTS, help="build a report")
    action.add_argument("--compare-hardware", action="store_true",
                        help="compare hardware types (per model and batch size) on --metric")
    action.add_argument("--compare-models", action="store_true", help="compare models (per hardware) on --metric")
    action.add_argument("--compatibility-matrix", action="store_true", help="model x hardware compatibility")
    action.add_argument("--regression-check", action="store_true",
                        help="compare current results with --reference-db (or the last N days with the days "
                             "before); exit 1 on a regression")
    add_filter_options(parser)
    reg = parser.add_argument_group("regression check")
    reg.add_argument("--reference-db", metavar="PATH", help="database of the reference (e.g. previous) results")
    reg.add_argument("--last-days", type=int, metavar="N",
                     help="without --reference-db: compare the last N days against the time before")
    reg.add_argument("--threshold", type=float, metavar="PCT",
                     help="smallest change of the median that counts, in percent (default: the checker's)")
    reg.add_argument("--alpha", type=float, metavar="A", help="significance level of the rank test")
    out = parser.add_argument_group("output")
    out.add_argument("--format", choices=FORMATS, default=None,
                     help="output format (default: from --output's extension, else table on a terminal and csv "
                          "otherwise; markdown for --regression-check)")
    out.add_argument("--output", "-o", metavar="FILE", help="write to FILE instead of stdout")
    add_archive_option(out)
    add_common_options(parser)
    return parser


# ------------------------------------------------------------------------------------------------ the work
def run_sql(conn, sql: str):
    """Run one query on a (read-only) connection and return its rows as a DataFrame."""
    import duckdb

    from benchmark_db import readonly_sql
    from benchmark_db.errors import QueryError

    if not sql or not sql.strip():
        raise UsageError("--sql needs a query", 'pass e.g. --sql "SELECT * FROM benchmark_performance LIMIT 5"')
    # One SELECT-type statement only: the read-only connection refuses writes to the database, but not
    # COPY ... TO or EXPORT DATABASE (which write files), SET, INSTALL or a second statement.
    sql = readonly_sql.check_statement(sql, "--sql runs one read-only SELECT; write with benchmark_db_updater.py "
                                            "or the API, export with --format/--output")
    try:
        relation = conn.sql(sql)
    except duckdb.Error as exc:
        text = readonly_sql.one_line(exc)
        hint = ("--sql opens the database read-only; write with benchmark_db_updater.py or the API"
                if "read-only" in text.lower() or "read only" in text.lower()
                else "check the SQL; the views are benchmark_performance, latest_performance_metrics, "
                     "model_hardware_compatibility, integration_test_status, cross_platform_performance")
        raise QueryError(f"query failed: {text}", hint) from exc
    if relation is None:  # a statement without a result (SET, PRAGMA ...)
        import pandas as pd

        return pd.DataFrame()
    try:
        relation, exact = _exact_columns(relation)
        return _exact_values(_frame(relation), exact)
    except duckdb.Error as exc:
        raise QueryError(f"query failed: {readonly_sql.one_line(exc)}", "check the SQL") from exc


def _frame(relation):
    """`relation.df()` without the pandas deprecation warning that duckdb's own conversion of a TIMESTAMPTZ
    column raises (`DataFrame.drop(inplace=True)` inside duckdb, pandas >= 3.1): it reached stderr on every
    `--sql "SELECT now()"` and is nothing the user can act on. Only that warning is silenced."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"The inplace keyword in DataFrame\.drop is deprecated")
        return relation.df()


# DuckDB types that .df() renders wrongly, fetched as DuckDB's own text instead: INTERVAL (pandas' timedelta drops
# the months and prints `P1DT0H0M0S`), DATE (a datetime64: `2025-03-01T00:00:00`), HUGEINT and DECIMAL (float64:
# 1648877304854091789993 printed as 1.6488773048540917e+21) and UHUGEINT (no NumPy type: the query failed).
# HUGEINT, UHUGEINT and DECIMAL are made exact Python numbers again (int, decimal.Decimal) by _exact_values;
# INTERVAL and DATE stay DuckDB's text.
_AS_TEXT = ("INTERVAL", "DATE", "HUGEINT", "UHUGEINT")


def _exact_columns(relation):
    """`relation` with the columns of `_AS_TEXT` types and DECIMAL cast to VARCHAR (by position: a query may
    name two columns alike), a list, struct or map holding a DECIMAL or HUGEINT as its JSON text, and
    {position: int, Decimal or _exact_json} for the ones to make numbers (or nested values) again."""
    import decimal

    kinds = [str(t) for t in relation.types]
    exact = {i: int if kind in ("HUGEINT", "UHUGEINT") else decimal.Decimal for i, kind in enumerate(kinds)
             if kind in ("HUGEINT", "UHUGEINT") or kind.startswith("DECIMAL(") and kind.endswith(")")}  # not a list
    # nested: .df() made a list's DECIMALs floats (12345678901234567890.123456789 read 1.234567890123457e+19);
    # DuckDB's JSON of the value keeps every digit
    nested = {i for i, kind in enumerate(kinds) if i not in exact and ("DECIMAL(" in kind or "HUGEINT" in kind)}
    exact.update(dict.fromkeys(nested, _exact_json))
    if not exact and not any(kind in _AS_TEXT for kind in kinds):
        return relation, exact

    def quoted(name: str) -> str:
        return '"' + name.replace('"', '""') + '"'

    def column(i: int, kind: str) -> str:
        if i in nested:
            return f"CAST(to_json(#{i + 1}) AS VARCHAR)"
        return f"CAST(#{i + 1} AS VARCHAR)" if kind in _AS_TEXT or i in exact else f"#{i + 1}"

    return relation.project(", ".join(f"{column(i, kind)} AS {quoted(name)}"
                                      for i, (name, kind) in enumerate(zip(relation.columns, kinds)))), exact


def _exact_json(text: str):
    """A nested value from its JSON text, its numbers exact: a fraction as a Decimal, an integer of any size."""
    import decimal
    import json

    return json.loads(text, parse_float=decimal.Decimal)


def _exact_values(frame, exact: dict):
    """`frame` with the text of HUGEINT and DECIMAL columns as Python ints and Decimals (object columns)."""
    import pandas as pd

    for position, kind in exact.items():
        values = [None if value is None or value != value else kind(value) for value in frame.iloc[:, position]]
        frame.isetitem(position, pd.Series(values, index=frame.index, dtype=object))
    return frame


def comparison(conn, filters, metric: str | None, by: str):
    """`reports.compare_table` with DB004 when nothing matches."""
    from benchmark_db import reports

    df = reports.compare_table(conn, filters, metric or "throughput", by=by)
    if df.empty:
        raise reports.no_data_error(conn, filters, metric=metric or "throughput")
    return df


def regression_check(conn, *, reference_conn=None, last_days=None, threshold_pct=None, alpha=None,
                     include_simulated=False, model=None, hardware=None, metric="latency"):
    """Run `benchmark_db.regression.regression_check` (imported here: scipy is heavy) and return its report.
    `model` reads as every other report's --model: model names (comma list, * wildcard, the name without its
    organisation), never a family, so `--model bert` is not every bert-family model."""
    from benchmark_db import regression
    kwargs = {"reference_conn": reference_conn, "last_days": last_days, "include_simulated": include_simulated,
              "model": model, "hardware": hardware, "metric": metric, "model_family_too": False}
    if threshold_pct is not None:
        kwargs["threshold_pct"] = threshold_pct
    if alpha is not None:
        kwargs["alpha"] = alpha
    return regression.regression_check(conn, **kwargs)


def _sql_title(sql: str) -> str:
    """The page title of a --sql result: the query on one line, shortened."""
    text = " ".join(sql.split())
    return "Query: " + (text if len(text) <= 80 else text[:79] + "\u2026")


def _render_result(df, fmt: str, title: str, filters, notes: list[str] | None = None) -> str:
    """A query result, comparison or matrix: as HTML, the report page (styled, sortable, readable figures, the
    filters or the query noted) rather than a bare table, which wrapped names and printed `False` and 6 digits."""
    if fmt != "html":
        from benchmark_db.output import render

        return render(df, fmt)
    from benchmark_db import reports

    page = reports.Report(kind="query", title=title, filters=filters,
                          notes=notes if notes is not None else [f"filters: {filters.describe()}"],
                          sections=[reports.ReportSection("result", f"{len(df)} rows", df)])
    return reports.render_html(page)


def run(args) -> int:
    from benchmark_db.cli import resolve_format
    from benchmark_db.connection import connect

    actions = [name for name, on in (("--sql", args.sql is not None), ("--report", args.report),
                                     ("--compare-hardware", args.compare_hardware),
                                     ("--compare-models", args.compare_models),
                                     ("--compatibility-matrix", args.compatibility_matrix),
                                     ("--regression-check", args.regression_check)) if on]
    if len(actions) != 1:
        raise UsageError("choose one of --sql, --report, --compare-hardware, --compare-models, "
                         "--compatibility-matrix, --regression-check"
                         + (f" (got {', '.join(actions)})" if actions else ""),
                         "see --help for examples")
    # options the chosen action does not apply are refused, never silently ignored
    _refuse_options(args, actions[0])
    # `not x >= 0`, not `x < 0`: NaN compares false both ways, and --threshold nan (or inf) switched the
    # regression gate off ("no regression ... moves at least nan%", exit 0)
    if args.threshold is not None and not (math.isfinite(args.threshold) and args.threshold >= 0):
        raise UsageError(f"--threshold must be a finite percentage >= 0, not {args.threshold:g}",
                         "pass e.g. --threshold 5")
    if args.alpha is not None and not 0 < args.alpha < 1:  # (false for nan and inf too)
        raise UsageError("--alpha must lie between 0 and 1", "pass e.g. --alpha 0.01")
    if args.last_days is not None and args.last_days <= 0:
        raise UsageError("--last-days must be a positive number of days", "pass e.g. --last-days 30")
    if args.regression_check:
        _regression_format(args)  # DB000 for --format html or --output x.html/.csv, before any work
        return _run_regression(args)
    fmt = resolve_format(args.format, args.output)  # DB000 for an --output name of no format, before any work

    from benchmark_db import reports

    filters = reports.ReportFilters.from_args(args)
    conn = connect(args.db, read_only=True, lock_timeout=args.lock_timeout,
                   missing_archive=missing_archive_mode(args))
    try:
        if args.sql is not None:
            # as HTML, the report page the comparisons use (styled, sortable), titled by the query
            text = _render_result(run_sql(conn, args.sql), fmt, _sql_title(args.sql), filters,
                                  notes=[f"query: {' '.join(args.sql.split())}"])
        elif args.report:
            report = reports.build_report(conn, args.report, filters, args.metric, use_summary_cache=True)
            for warning in report.warnings:  # a CSV has no room for the report's notes
                log.warning("%s", warning)
            if fmt == "csv" and len(report.sections) > 1:
                return _write_csv_report(report, args.output)
            text = reports.render_report(report, fmt, conn)
        elif args.compare_hardware or args.compare_models:
            by = "hardware" if args.compare_hardware else "model"
            df = comparison(conn, filters, args.metric, by)
            metric = reports.get_metric(args.metric)
            text = _render_result(df, fmt, f"{metric.label} by {by}", filters)
        else:
            df = reports.compatibility_matrix(conn, filters)
            if df.empty and filters.has_any():
                raise reports.no_data_error(conn, filters, "compatibility results", source="compatibility")
            text = _render_result(df, fmt, "Model / hardware compatibility", filters)
    finally:
        conn.close()
    write_text(text, args.output)
    return EXIT_OK


_FILTERED = ("--report", "--compare-hardware", "--compare-models", "--compatibility-matrix")
# the option (its dest) -> the actions that use it; an option given to any other action is refused (DB000)
# rather than silently ignored. Options not named here (--db, --format, --output, ...) apply to every action.
OPTION_ACTIONS: dict[str, tuple[str, ...]] = {
    "model": _FILTERED + ("--regression-check",),
    "model_family": _FILTERED,
    "hardware": _FILTERED + ("--regression-check",),
    "batch_size": _FILTERED,
    "precision": _FILTERED,
    "since": _FILTERED,
    "until": _FILTERED,
    "include_simulated": _FILTERED + ("--regression-check",),
    "metric": ("--report", "--compare-hardware", "--compare-models", "--regression-check"),
    "reference_db": ("--regression-check",),
    "last_days": ("--regression-check",),
    "threshold": ("--regression-check",),
    "alpha": ("--regression-check",),
}
# why an action takes no such option, where there is more to say than which actions do
_WHY_NOT = {
    "--sql": "--sql runs the query as written: put the conditions in its WHERE clause",
    "--regression-check": "it compares every configuration (model x hardware x batch x sequence length x "
                          "precision) apart and takes --model (model names as in the reports; for a family, "
                          "list its models or use a * pattern) and --hardware",
}


def _refuse_options(args, action: str) -> None:
    """DB000 naming every given option that `action` does not use and the actions it applies to."""
    given = [(f"--{name.replace('_', '-')}", actions) for name, actions in OPTION_ACTIONS.items()
             if action not in actions and getattr(args, name, None) not in (None, False)]
    if not given:
        return
    applies: dict[tuple[str, ...], list[str]] = {}
    for option, actions in given:
        applies.setdefault(actions, []).append(option)
    where = "; ".join(f"{', '.join(options)} {'apply' if len(options) > 1 else 'applies'} to "
                      f"{', '.join(actions) if len(actions) > 1 else actions[0] + ' only'}"
                      for actions, options in applies.items())
    why = _WHY_NOT.get(action)
    raise UsageError(f"{action} does not take {', '.join(option for option, _ in given)}",
                     f"leave {'them' if len(given) > 1 else 'it'} out ({where})" + (f"; {why}" if why else ""))


REGRESSION_FORMATS = ("markdown", "json")


def _regression_format(args) -> str:
    """What --regression-check writes: --format, else what --output's extension names, else markdown; a
    format it does not write (--format html, --output reg.html or reg.csv) is DB000 before any work (an
    --output reg.html used to get markdown under a name that promised HTML)."""
    from benchmark_db.cli import resolve_format

    fmt = args.format or resolve_format(None, args.output, default="markdown")
    if fmt not in REGRESSION_FORMATS:
        given = f"--format {fmt}" if args.format else f"--output {args.output} ({fmt})"
        raise UsageError(f"--regression-check writes markdown or json, not {given}",
                         "pass --format markdown or json, or an --output ending in .md or .json")
    return fmt


def _write_csv_report(report, output: str | None) -> int:
    """A report of several sections as CSV: one file per section beside --output (listed on stdout), or on
    stdout the main section alone with a note naming the others, as a pipe reads one table
    (`reports.csv_sections` says why not one file)."""
    from benchmark_db import reports

    files = reports.csv_sections(report, output or "report.csv")
    if output:
        for path, _section, text in files:
            write_text(text, str(path))
        width = max(len(str(path)) for path, _, _ in files)
        print("\n".join(f"{str(path):<{width}}  {section.title}" for path, section, _ in files))
        return EXIT_OK
    write_text(files[0][2], None)
    rest = [section for _path, section, _text in files[1:]]
    log.warning("CSV is one table: this is the report's '%s' section; %d more section%s (%s) %s left out: pass "
                "--output FILE.csv to write each section to a CSV of its own beside it, or --format json, "
                "markdown or html for all in one", files[0][1].title, len(rest), "s" if len(rest) > 1 else "",
                ", ".join(f"'{section.title}'" for section in rest), "are" if len(rest) > 1 else "is")
    return EXIT_OK


def _run_regression(args) -> int:
    import json

    from benchmark_db.connection import connect

    fmt = _regression_format(args)
    if args.reference_db and args.last_days is not None:
        raise UsageError("--reference-db and --last-days are two different comparisons", "pass only one")
    conn = connect(args.db, read_only=True, lock_timeout=args.lock_timeout,
                   missing_archive=missing_archive_mode(args))
    reference = None
    try:
        if args.reference_db:
            reference = connect(args.reference_db, read_only=True, lock_timeout=args.lock_timeout,
                                missing_archive=missing_archive_mode(args))
        report = regression_check(conn, reference_conn=reference, last_days=args.last_days,
                                  threshold_pct=args.threshold, alpha=args.alpha,
                                  include_simulated=args.include_simulated, model=args.model,
                                  hardware=args.hardware, metric=args.metric or "latency")
    finally:
        if reference is not None:
            reference.close()
        conn.close()
    text = json.dumps(report.to_dict(), indent=2, default=str) if fmt == "json" else report.to_markdown()
    write_text(text, args.output)
    return EXIT_FINDING if report.has_regression else EXIT_OK


def main(argv: list[str] | None = None) -> int:
    return run_cli(build_parser(), run, argv)


if __name__ == "__main__":
    raise SystemExit(main())

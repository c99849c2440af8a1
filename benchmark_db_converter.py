#!/usr/bin/env python3
"""Convert benchmark JSON files into the benchmark database (and optionally to Parquet).

    python benchmark_db_converter.py --input-dir ./archived_test_results --output-db ./benchmark_db.duckdb
    python benchmark_db_converter.py --consolidate --categories performance hardware compatibility
    python benchmark_db_converter.py --input-dir ./archived_test_results --parquet-dir ./benchmark_parquet

Every file is detected by its content (performance, hardware detection, compatibility, integration tests,
web-platform runs, runner output, optimum-benchmark, pytest-benchmark), normalised and stored with its
original text; files that hold no result are skipped with a named reason. Re-running skips unchanged files.
"""
from __future__ import annotations

import argparse
import sys

from benchmark_db.cli import add_common_options, add_db_option, add_output_options, run_cli, write_text
from benchmark_db.ingest import DEFAULT_RESULT_DIRS, add_ingest_options

_EPILOG = ("--consolidate reads these result directories, relative to the current directory (missing ones "
           "are passed over): " + ", ".join(DEFAULT_RESULT_DIRS) + ".\n"
           "Categories: performance, hardware, compatibility, integration, web (a file is taken whole when it "
           "holds rows of any category asked for).")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="benchmark_db_converter.py", description=__doc__.splitlines()[0],
                                     epilog=_EPILOG)
    parser.add_argument("--input-dir", nargs="+", action="extend", default=[], metavar="DIR",
                        help="directory (or file) of JSON results to convert; may be given several times")
    parser.add_argument("--input-file", nargs="+", action="extend", default=[], metavar="FILE",
                        help="single JSON files to convert")
    parser.add_argument("--consolidate", action="store_true",
                        help="convert every default result directory (listed below) into one database")
    parser.add_argument("--categories", nargs="+", default=None, metavar="CATEGORY",
                        help="only store files of these categories (space or comma separated)")
    parser.add_argument("--parquet-dir", metavar="DIR", default=None,
                        help="afterwards export every table as DIR/<table>.parquet, the original documents "
                             "(source_documents, zstd) and their dictionary included: the folder is a CI "
                             "artifact that benchmark_db_migration.py --migrate-ci merges elsewhere")
    add_db_option(parser)
    add_ingest_options(parser, actions=False)
    add_output_options(parser, formats=("table", "json", "csv", "markdown"))
    add_common_options(parser)
    return parser


def convert(db_path, inputs, *, consolidate=False, categories=None, parquet_dir=None, dry_run=False,
            parallel=1, batch_size=None, force=False, lock_timeout=30.0, quiet=True):
    """Ingest `inputs` (and, with `consolidate`, the default result directories); export Parquet if asked.
    Returns (IngestSummary, parquet files written)."""
    import duckdb

    from benchmark_db.cli import make_writable_folder
    from benchmark_db.connection import resolve_db_path
    from benchmark_db.errors import MaintenanceError, UsageError, one_line
    from benchmark_db.ingest import (
        DEFAULT_BATCH_SIZE,
        Ingestor,
        discover_files,
        dry_run_database,
        parse_categories,
        warn_outdated,
    )
    from benchmark_db_models import BenchmarkDB

    if not inputs and not consolidate and not parquet_dir:
        raise UsageError("nothing to convert", "pass --input-dir DIR, --input-file FILE or --consolidate")
    categories = parse_categories(categories)  # a misspelt category fails before any folder is scanned
    files = discover_files(inputs)
    if consolidate:
        files = sorted({f.path: f for f in files + discover_files(DEFAULT_RESULT_DIRS, missing_ok=True)}.values(),
                       key=lambda f: f.path)
    options = dict(parallel=parallel, batch_size=batch_size or DEFAULT_BATCH_SIZE, force=force,
                   categories=categories, dry_run=dry_run, quiet=quiet,
                   progress_desc="convert")
    path = resolve_db_path(db_path)
    if not inputs and not consolidate:  # an export only
        _check_exported_db_exists(path)
    if parquet_dir and not dry_run:
        make_writable_folder(parquet_dir, "--parquet-dir")  # before the ingest, not after it
    if dry_run:
        with dry_run_database(path, lock_timeout) as db:
            return Ingestor(db, **options).ingest(files), []
    with BenchmarkDB(path, lock_timeout=lock_timeout) as db:
        summary = Ingestor(db, **options).ingest(files)
        warn_outdated(db.conn)  # files an earlier converter version made that this run did not see
        exported = []
        if parquet_dir:
            from benchmark_db.parquet_export import export_parquet

            try:
                exported = export_parquet(db.conn, parquet_dir)
            except (OSError, duckdb.Error) as exc:
                raise MaintenanceError(f"the rows are stored, but the Parquet export to {parquet_dir} failed: "
                                       f"{one_line(exc)}",
                                       "free space or fix the folder, then re-run the same command "
                                       "(unchanged files are skipped)") from None
    return summary, exported


def _check_exported_db_exists(path: str) -> None:
    """With no input, --parquet-dir only exports: a mistyped --output-db created an empty database and wrote
    an empty export of it, exit 0, as if the database held nothing."""
    from pathlib import Path

    from benchmark_db.connection import MEMORY, is_lake
    from benchmark_db.errors import DBConnectionError

    if path != MEMORY and not is_lake(path) and not Path(path).exists():
        raise DBConnectionError(f"database {path} does not exist",
                                "check --output-db, or pass --input-dir to convert files into a new one")


def run(args) -> int:
    from benchmark_db.cli import resolve_format
    from benchmark_db.ingest import DEFAULT_RESULT_DIRS, check_outputs, check_report, render_summary, write_report
    from benchmark_db.output import render

    check_report(args.report)
    read = args.input_dir + args.input_file + (list(DEFAULT_RESULT_DIRS) if args.consolidate else [])
    check_outputs({"--report": args.report, "--output": args.output}, read)
    summary, exported = convert(args.db, args.input_dir + args.input_file, consolidate=args.consolidate,
                                categories=args.categories, parquet_dir=args.parquet_dir, dry_run=args.dry_run,
                                parallel=args.parallel, batch_size=args.batch_size, force=args.force,
                                lock_timeout=args.lock_timeout, quiet=args.quiet)
    fmt = resolve_format(args.format, args.output, args.output_formats)
    if fmt == "json":
        import json

        text = json.dumps({**summary.as_dict(), "parquet": exported}, indent=2, default=str) + "\n"
    else:
        text = render_summary(summary, fmt)
        if exported:
            text += "\n" + render(exported, fmt)
    write_text(text, args.output)
    if args.report:
        write_report(summary, args.report, {"parquet": exported})
    for outcome in summary.failed:
        print(f"failed: {outcome.path}: {outcome.reason}", file=sys.stderr)
    return 1 if args.strict and summary.failed else 0


def main(argv: list[str] | None = None) -> int:
    from benchmark_db.ingest import deferred_interrupts

    with deferred_interrupts():  # Ctrl-C stops the ingest between chunks (a hang or a DuckDB error otherwise)
        return run_cli(build_parser(), run, argv)


if __name__ == "__main__":
    raise SystemExit(main())

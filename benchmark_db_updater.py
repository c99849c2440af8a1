#!/usr/bin/env python3
"""Update the benchmark database with new result files: one file, a scanned folder, or auto-store output.

    python benchmark_db_updater.py --input-file ./new_results.json
    python benchmark_db_updater.py --scan-dir ./new_results --incremental
    python benchmark_db_updater.py --auto-store [--auto-store-dir ./auto_store_results]

Same tracking and atomicity as the migration tool: every file is logged in `ingested_files`, a batch of
files commits its rows, log rows and original text together, and unchanged files are skipped. `--incremental`
takes only files that are new or changed since the last scan (without it, every file is converted again and
its rows replaced). `--auto-store` takes the files runners leave with `--no-db-store` and, once their rows are
committed, moves them into `processed/` in that folder, keeping their relative paths (failed files stay where
they are).
"""
from __future__ import annotations

import argparse
import sys

from benchmark_db.cli import (
    add_common_options,
    add_db_option,
    add_output_options,
    refuse_unused_options,
    run_cli,
    write_text,
)
from benchmark_db.ingest import add_ingest_options

DEFAULT_AUTO_STORE_DIR = "auto_store_results"
PROCESSED = "processed"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="benchmark_db_updater.py", description=__doc__.splitlines()[0])
    parser.add_argument("--input-file", nargs="+", action="extend", default=[], metavar="FILE",
                        help="result file(s) to add")
    parser.add_argument("--scan-dir", nargs="+", action="extend", default=[], metavar="DIR",
                        help="folder(s) to scan for result files; every file found is converted again "
                             "(its rows rebuilt) unless --incremental")
    parser.add_argument("--incremental", action="store_true",
                        help="with --scan-dir: only files that are new or changed since the last scan")
    parser.add_argument("--auto-store", action="store_true",
                        help="process the files runners left for later storage, then move them to processed/")
    parser.add_argument("--auto-store-dir", metavar="DIR", default=DEFAULT_AUTO_STORE_DIR,
                        help="where --auto-store looks (default: ./%(default)s)")
    add_db_option(parser)
    add_ingest_options(parser, actions=False)
    add_output_options(parser, formats=("table", "json", "csv", "markdown"))
    add_common_options(parser)
    return parser


def auto_store_files(auto_dir):
    """Result files waiting in `auto_dir`, leaving out its processed/ folder. Each keeps its path relative to
    `auto_dir`, which is where it goes under processed/."""
    from pathlib import Path

    from benchmark_db.ingest import DOCUMENT_SUFFIXES, input_file, is_broken_link, visible_entries, warn_unread_entries

    root = Path(auto_dir).resolve()
    if not root.is_dir():
        return root, []
    entries = sorted(visible_entries(root, skip=PROCESSED))
    warn_unread_entries(entries)  # as --scan-dir does: links to folders, pipes
    files = [input_file(str(path), path.relative_to(root).as_posix()) for path in entries
             if path.suffix.lower() in DOCUMENT_SUFFIXES
             and (path.is_file() or is_broken_link(path))]  # a broken link fails with its reason
    return root, files


def _new_results_under_processed_names(conn, root, files):
    """Runners may write each new result under a name used before (`results.json`); once the earlier file
    went to processed/, a file at that path again is a new result, not a changed one. So the earlier file's
    log entry follows it to processed/ (its rows stay instead of being replaced), and the new file gets a
    free name under processed/ (the earlier file is not overwritten)."""
    import dataclasses
    from pathlib import Path

    from benchmark_db.ingest import numbered_name
    from benchmark_db.schema import REMOVED_MARK

    out, taken = [], set()
    for file in files:
        row = conn.execute("SELECT archived_to FROM ingested_files WHERE path = ?", [file.path]).fetchone()
        earlier = row[0] if row and row[0] and row[0] != REMOVED_MARK else None
        # the earlier file may be gone from processed/ (cleaned up: its result and original are in the database)
        if earlier and earlier != file.path:
            conn.execute("UPDATE ingested_files SET path = ? WHERE path = ? AND NOT EXISTS "
                         "(SELECT 1 FROM ingested_files WHERE path = ?)", [earlier, file.path, earlier])
        rel, n = Path(file.rel), 0
        while (root / PROCESSED / rel).exists() or rel in taken:
            n += 1
            rel = numbered_name(Path(file.rel), n)
        taken.add(rel)
        out.append(file if n == 0 else dataclasses.replace(file, rel=rel.as_posix()))
    return out


def check_args(input_files, scan_dirs, auto_store, incremental=False, auto_store_dir=None) -> None:
    """The usage errors, raised before the database is opened: a mistyped path must not create or upgrade
    one. (A missing --auto-store-dir is only a warning: runners create it when they first leave a file.)"""
    from benchmark_db.errors import UsageError
    from benchmark_db.ingest import check_inputs

    if not (input_files or scan_dirs or auto_store):
        raise UsageError("nothing to update from", "pass --input-file FILE, --scan-dir DIR or --auto-store")
    if incremental and not scan_dirs:  # it was accepted and did nothing
        raise UsageError("--incremental applies to --scan-dir only",
                         "leave it out: --input-file and --auto-store always skip files that have not changed")
    check_inputs(list(input_files) + list(scan_dirs))
    if auto_store and auto_store_dir is not None:
        from pathlib import Path

        folder = Path(auto_store_dir)
        if folder.exists() and not folder.is_dir():
            raise UsageError(f"--auto-store-dir {auto_store_dir} is a file, not a folder",
                             "pass the folder runners write to (--output-dir of --no-db-store), or use --input-file")
        if folder.resolve().name == PROCESSED:
            # its files were ingested already: taking them again moves them one processed/ deeper each run
            raise UsageError(f"--auto-store-dir {auto_store_dir} is a {PROCESSED}/ folder, where ingested files go",
                             f"pass the folder above it ({folder.resolve().parent})")


def _add_part(summary, part) -> None:
    """Add one Ingestor's summary to the run's: its files, and for a dry run what its rows_added needs (the
    new models and platforms, counted once, not once per file; the rows it would replace; its log rows and
    originals)."""
    from collections import Counter

    summary.outcomes.extend(part.outcomes)
    for table, ids in part.new_dimension_ids.items():
        summary.new_dimension_ids.setdefault(table, set()).update(ids)
    summary.rows_replaced = dict(Counter(summary.rows_replaced) + Counter(part.rows_replaced))
    # and the ingest log rows and originals it would add (left out, the updater's dry run said none)
    summary.bookkeeping_added = dict(Counter(summary.bookkeeping_added) + Counter(part.bookkeeping_added))


def update(db, *, input_files=(), scan_dirs=(), incremental=False, auto_store=False,
           auto_store_dir=DEFAULT_AUTO_STORE_DIR, parallel=1, batch_size=None, force=False, dry_run=False,
           quiet=True):
    """Ingest what is asked into `db` (a BenchmarkDB; None for a dry run without a database)."""
    import logging

    from benchmark_db.ingest import DEFAULT_BATCH_SIZE, Ingestor, IngestSummary, discover_files

    check_args(input_files, scan_dirs, auto_store, incremental, auto_store_dir)
    options = dict(parallel=parallel, batch_size=batch_size or DEFAULT_BATCH_SIZE, dry_run=dry_run, quiet=quiet,
                   progress_desc="update")
    summary = IngestSummary(dry_run=dry_run)
    if input_files or scan_dirs:
        files = discover_files(list(input_files) + list(scan_dirs))
        # a single named file is always converted again unless unchanged; a scan re-converts everything
        # unless --incremental
        rescan = bool(scan_dirs) and not incremental
        part = Ingestor(db, force=force or rescan, **options).ingest(files)
        _add_part(summary, part)
        summary.rows_before, summary.table_rows = part.rows_before, part.table_rows
    if auto_store:
        root, files = auto_store_files(auto_store_dir)
        if not root.is_dir():  # a mistyped --auto-store-dir must not pass for "nothing waiting"
            logging.getLogger("benchmark_db").warning(
                "the auto-store folder %s does not exist: no files waiting (runners with --no-db-store "
                "create it; check --auto-store-dir)", root)
        if db is not None and not dry_run and files:
            files = _new_results_under_processed_names(db.conn, root, files)
        if not files and root.is_dir():
            logging.getLogger("benchmark_db").info("no files waiting in %s", root)
        part = Ingestor(db, force=force, action=None if dry_run else "archive", archive_dir=root / PROCESSED,
                        **options).ingest(files)
        _remove_emptied_folders(root, part)
        _add_part(summary, part)
        # rows before the first part and after the last: the summary counts the rows the whole run added
        summary.rows_before = summary.rows_before or part.rows_before
        summary.table_rows = part.table_rows or summary.table_rows
    return summary


def _remove_emptied_folders(root, part) -> None:
    """The folders under the auto-store folder that this run's moves to processed/ left empty (a runner's
    `run1/`): each later run would walk them again, and nothing in them waits any more."""
    from pathlib import Path

    from benchmark_db.schema import REMOVED_MARK

    for outcome in part.outcomes:
        if not outcome.archived_to or outcome.archived_to == REMOVED_MARK:
            continue
        folder = Path(outcome.path).parent
        while folder != root and root in folder.parents:
            try:
                folder.rmdir()  # only an empty folder goes
            except OSError:
                break
            folder = folder.parent


def run(args) -> int:
    from benchmark_db.cli import resolve_format
    from benchmark_db.connection import resolve_db_path
    from benchmark_db.ingest import (
        check_outputs,
        check_report,
        dry_run_database,
        render_summary,
        warn_outdated,
        write_report,
    )
    from benchmark_db_models import BenchmarkDB

    kwargs = dict(input_files=args.input_file, scan_dirs=args.scan_dir, incremental=args.incremental,
                  auto_store=args.auto_store, auto_store_dir=args.auto_store_dir, parallel=args.parallel,
                  batch_size=args.batch_size, force=args.force, dry_run=args.dry_run, quiet=args.quiet)
    check_args(args.input_file, args.scan_dir, args.auto_store, args.incremental, args.auto_store_dir)
    chosen = [step for step in ("input-file", "scan-dir", "auto-store") if getattr(args, step.replace("-", "_"))]
    refuse_unused_options(build_parser(), args, {"--auto-store-dir": ("auto-store",)}, chosen)
    check_report(args.report)
    read = list(args.input_file) + list(args.scan_dir) + ([args.auto_store_dir] if args.auto_store else [])
    check_outputs({"--report": args.report, "--output": args.output}, read)
    path = resolve_db_path(args.db)
    if args.dry_run:
        with dry_run_database(path, args.lock_timeout) as db:
            summary = update(db, **kwargs)
    else:
        with BenchmarkDB(path, lock_timeout=args.lock_timeout) as db:
            summary = update(db, **kwargs)
            warn_outdated(db.conn)
    write_text(render_summary(summary, resolve_format(args.format, args.output, args.output_formats)), args.output)
    if args.report:
        write_report(summary, args.report)
    for outcome in summary.failed:
        print(f"failed: {outcome.path}: {outcome.reason}", file=sys.stderr)
    return 1 if args.strict and summary.failed else 0


def main(argv: list[str] | None = None) -> int:
    from benchmark_db.ingest import deferred_interrupts

    with deferred_interrupts():  # Ctrl-C stops the ingest between chunks (a hang or a DuckDB error otherwise)
        return run_cli(build_parser(), run, argv)


if __name__ == "__main__":
    raise SystemExit(main())

#!/usr/bin/env python3
"""Migrate benchmark result files (and CI artifacts) into the database, with tracking and validation.

    python benchmark_db_migration.py --migrate-all --db ./benchmark_db.duckdb --validate
    python benchmark_db_migration.py --input-dirs performance_results,archived_test_results --categories performance,hardware
    python benchmark_db_migration.py --input-files ./results1.json,./results2.json
    python benchmark_db_migration.py --migrate-ci --artifacts-dir ./artifacts
    python benchmark_db_migration.py --validate --fix-inconsistencies
    python benchmark_db_migration.py --migrate-all --action archive --archive-dir ./archived_json
    python benchmark_db_migration.py --reconvert

Every file gets one row in the ingest log (`ingested_files`): ingested, skipped with a named reason, or failed
with the error. A re-run skips unchanged files; a changed file replaces its earlier rows. Each batch of files
commits its rows, log rows and original text together, so a killed run loses nothing and a re-run completes
it. Files are archived or removed only after their rows are committed. A file whose rows an earlier converter
version made is converted again when a run sees it; `--reconvert` does that for every such file from the
original stored in the database, archived and removed files included.
"""
from __future__ import annotations

import argparse
import sys

from benchmark_db.cli import (
    add_common_options,
    add_db_option,
    add_output_options,
    non_negative_float,
    refuse_unused_options,
    run_cli,
    write_text,
)
from benchmark_db.ingest import DEFAULT_RESULT_DIRS, add_ingest_options

ARTIFACT_DB_SUFFIXES = (".duckdb", ".db")
_INGESTS = ("migrate-all", "input-dirs", "input-files", "migrate-ci")
# the steps that read each value: one given to a run of none of them is a usage error
OPTION_READERS = {
    "--action": _INGESTS,
    "--archive-dir": _INGESTS,
    "--categories": _INGESTS,
    "--force": _INGESTS,
    "--artifacts-dir": ("migrate-ci",),
    "--parallel": (*_INGESTS, "reconvert"),
    "--batch-size": (*_INGESTS, "reconvert"),
    "--strict": (*_INGESTS, "reconvert"),
    "--tolerance": ("validate", "fix-inconsistencies"),
}
_EPILOG = ("--migrate-all reads these result directories, relative to the current directory (missing ones "
           "are passed over): " + ", ".join(DEFAULT_RESULT_DIRS) + ".\n"
           "--migrate-ci reads JSON result files, .duckdb databases (merged by id) and .parquet table exports "
           "(named after their table) under --artifacts-dir. Exit codes: 0 done, 1 --validate found problems "
           "(or, with --strict, a file failed), 2 usage, 3 database unavailable.")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="benchmark_db_migration.py", description=__doc__.splitlines()[0],
                                     epilog=_EPILOG)
    parser.add_argument("--migrate-all", action="store_true", help="migrate every known result directory")
    parser.add_argument("--input-dirs", nargs="+", action="extend", default=[], metavar="DIRS",
                        help="comma-separated directories to migrate")
    parser.add_argument("--input-files", nargs="+", action="extend", default=[], metavar="FILES",
                        help="comma-separated files to migrate")
    parser.add_argument("--categories", nargs="+", default=None, metavar="CATEGORY",
                        help="only store files of these categories (comma or space separated): performance, "
                             "hardware, compatibility, integration, web")
    parser.add_argument("--migrate-ci", action="store_true", help="migrate CI artifacts from --artifacts-dir")
    parser.add_argument("--artifacts-dir", metavar="DIR", default=None,
                        help="folder of CI artifacts: JSON results, .duckdb databases, .parquet exports")
    parser.add_argument("--reconvert", action="store_true",
                        help="convert again, from the originals stored in the database, every logged file whose "
                             "rows an earlier converter version made (archived and removed files included)")
    parser.add_argument("--validate", action="store_true",
                        help="check the database for orphans, duplicates, impossible values, throughput that "
                             "disagrees with batch size and latency, and unit mistakes; exit 1 if any")
    parser.add_argument("--fix-inconsistencies", action="store_true",
                        help="fix what can be fixed safely (listing each fix), then validate again")
    parser.add_argument("--tolerance", type=non_negative_float, default=None, metavar="FRACTION",
                        help="how far throughput may stray from batch_size*1000/latency (default: 0.5)")
    add_db_option(parser)
    add_ingest_options(parser)
    add_output_options(parser, formats=("table", "json", "csv", "markdown"))
    add_common_options(parser)
    return parser


def migrate_artifacts(db, artifacts_dir, *, ingest_options: dict) -> tuple[object, list[dict]]:
    """JSON artifacts through the ingest engine; .duckdb and .parquet artifacts merged by id (nothing clashes,
    a second merge adds nothing), each logged in `ingested_files`. Returns (IngestSummary, merged artifacts)."""
    import hashlib
    import json
    import logging
    import os
    from pathlib import Path

    from benchmark_db.connection import transaction
    from benchmark_db.errors import UsageError, is_interrupt, one_line
    from benchmark_db.ingest import Ingestor, discover_files
    from benchmark_db.merge import MergeResult, merge_database, merge_parquet

    log = logging.getLogger("benchmark_db.migration")

    root = Path(artifacts_dir)
    if not root.is_dir():
        raise UsageError(f"artifacts folder {artifacts_dir} does not exist", "pass --artifacts-dir DIR")
    summary = Ingestor(db, **ingest_options).ingest(discover_files([root]))
    merged: list[dict] = []
    if db is None:  # a dry run without a database: nothing to merge into
        return summary, merged
    conn = db.conn
    # the database being written may sit in the artifacts folder: it is the target, not an artifact of itself
    own_files = {os.path.realpath(r[0]) for r in conn.execute(
        "SELECT path FROM duckdb_databases() WHERE path IS NOT NULL").fetchall()}
    for path in sorted(p for p in root.rglob("*") if p.is_file()
                       and p.suffix.lower() in (*ARTIFACT_DB_SUFFIXES, ".parquet")):
        key = str(path.resolve())
        if os.path.realpath(path) in own_files:
            log.info("%s is the database being written; not merged into itself", path)
            continue
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
        sha = digest.hexdigest()
        known = conn.execute("SELECT sha256, status FROM ingested_files WHERE path = ?", [key]).fetchone()
        # a failed merge (a database still locked by its writer, say) is tried again, like a failed file
        if known and known[0] == sha and known[1] != "failed" and not ingest_options.get("force"):
            merged.append({"artifact": key, "status": "unchanged", "rows_added": 0})
            continue
        kind = "parquet_artifact" if path.suffix.lower() == ".parquet" else "database_artifact"
        if ingest_options.get("dry_run"):
            merged.append({"artifact": key, "status": "would merge", "rows_added": None})
            continue
        def log_artifact(added, status="ingested", reason=None, key=key, sha=sha, path=path, kind=kind):
            reason = reason or added.kept_note() or None
            conn.execute("DELETE FROM ingested_files WHERE path = ?", [key])
            conn.execute(
                "INSERT INTO ingested_files (path, sha256, size_bytes, kind, status, reason, rows, "
                "rows_by_table, ingested_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, now() AT TIME ZONE 'UTC')",
                [key, sha, path.stat().st_size, kind, status, reason, sum(added.values()),
                 json.dumps(added, sort_keys=True) if added else None])

        try:  # the log row commits with the merged rows: a re-run after a kill finds both or neither
            merge = merge_parquet if kind == "parquet_artifact" else merge_database
            added = merge(conn, path, then=log_artifact)
            status, reason = "ingested", None
        except Exception as exc:  # a broken artifact is reported, never stops the others
            if is_interrupt(exc):  # but Ctrl-C inside the merge stops the run
                raise
            hint = getattr(exc, "hint", None)
            added, status = MergeResult(), "failed"
            reason = f"cannot merge: {one_line(exc)}" + (f"; {hint}" if hint else "")
            with transaction(conn):
                log_artifact(added, status, reason)
        added_text = ", ".join(f"{t}={n}" for t, n in sorted(added.items()) if n)
        merged.append({"artifact": key, "status": status, "rows_added": sum(added.values()),
                       "reason": reason or "; ".join(filter(None, [added_text, added.kept_note()]))})
    return summary, merged


def check_args(args) -> None:
    """The usage errors `args` can hold, raised before any database is opened: a mistyped path or category
    must neither create an empty database nor upgrade an existing one."""
    from pathlib import Path

    from benchmark_db.errors import UsageError
    from benchmark_db.ingest import (
        DEFAULT_RESULT_DIRS,
        check_inputs,
        check_outputs,
        check_report,
        parse_categories,
        parse_list,
    )

    check_report(getattr(args, "report", None))
    inputs = parse_list(args.input_dirs) + parse_list(args.input_files)
    # what the run reads: the inputs, and under --migrate-all the default result folders that exist here
    read = inputs + ([d for d in DEFAULT_RESULT_DIRS if Path(d).is_dir()] if args.migrate_all else [])
    check_outputs({"--report": getattr(args, "report", None), "--output": getattr(args, "output", None)}, read)
    if args.migrate_ci and not args.artifacts_dir:
        raise UsageError("--migrate-ci needs --artifacts-dir", "name the folder that holds the CI artifacts")
    if not (inputs or args.migrate_all or args.migrate_ci or args.reconvert or args.validate
            or args.fix_inconsistencies):
        raise UsageError("nothing to do", "pass --migrate-all, --input-dirs, --input-files, --migrate-ci, "
                                          "--reconvert, --validate or --fix-inconsistencies")
    check_inputs(inputs)
    chosen = [step for step in (*_INGESTS, "reconvert", "validate", "fix-inconsistencies")
              if getattr(args, step.replace("-", "_"))]
    refuse_unused_options(build_parser(), args, OPTION_READERS, chosen)
    if args.action == "archive" and args.archive_dir:
        import os

        archive = os.path.realpath(args.archive_dir)
        for raw in read:
            real = os.path.realpath(raw)
            if real == archive or real.startswith(archive + os.sep):
                # the run leaves out what lies in the archive folder: this input would pass for "nothing new"
                raise UsageError(f"input {raw} is inside the archive folder {args.archive_dir}, whose files "
                                 "this run does not read", "pass an --archive-dir outside the input folders")
    if args.migrate_ci and not Path(args.artifacts_dir).is_dir():
        raise UsageError(f"artifacts folder {args.artifacts_dir} does not exist", "pass --artifacts-dir DIR")
    parse_categories(args.categories)


def migrate(db, args) -> dict:
    """Run what `args` asks for on `db` (a BenchmarkDB); return everything the summary shows."""
    from benchmark_db.ingest import Ingestor, discover_files, parse_categories, parse_list
    from benchmark_db.validation import DEFAULT_TOLERANCE, find_problems_with_archive, fix_problems

    check_args(args)
    inputs = parse_list(args.input_dirs) + parse_list(args.input_files)
    ingest_wanted = bool(inputs or args.migrate_all or args.migrate_ci)
    archive_dir = args.archive_dir or ("archived_json" if args.action == "archive" else None)
    options = dict(parallel=args.parallel, batch_size=args.batch_size, force=args.force,
                   categories=parse_categories(args.categories), action=args.action, archive_dir=archive_dir,
                   dry_run=args.dry_run, quiet=args.quiet, progress_desc="migrate")
    result: dict = {"summary": None, "artifacts": [], "fixes": [], "problems": None}
    if ingest_wanted:
        files = discover_files(inputs)
        if args.migrate_all:
            extra = discover_files(DEFAULT_RESULT_DIRS, missing_ok=True)
            files = sorted({f.path: f for f in files + extra}.values(), key=lambda f: f.path)
        summary = Ingestor(db, **options).ingest(files)
        if args.migrate_ci:
            ci_summary, result["artifacts"] = migrate_artifacts(db, args.artifacts_dir, ingest_options=options)
            summary.outcomes.extend(ci_summary.outcomes)
            summary.table_rows = ci_summary.table_rows or summary.table_rows
            if db is not None and result["artifacts"]:  # the totals after the merges, not before them
                summary.table_rows = {t: n for t, n in ((t, db.conn.execute(f"SELECT count(*) FROM {t}")
                                                         .fetchone()[0]) for t in summary.table_rows)}
        result["summary"] = summary
    if args.reconvert and db is not None:
        summary = reconvert(db, options)
        if result["summary"] is not None:
            result["summary"].outcomes.extend(summary.outcomes)
            result["summary"].table_rows = summary.table_rows
        else:
            result["summary"] = summary
    if args.action == "archive" and archive_dir and not args.dry_run:
        from pathlib import Path

        Path(archive_dir).mkdir(parents=True, exist_ok=True)  # exists even when nothing was moved
    tolerance = DEFAULT_TOLERANCE if args.tolerance is None else args.tolerance
    if args.fix_inconsistencies and db is not None and not args.dry_run:
        result["fixes"] = fix_problems(db.conn, tolerance)
    if (args.validate or args.fix_inconsistencies) and db is not None:
        result["problems"] = find_problems_with_archive(db.conn, tolerance)
    return result


def shown_source(path: str) -> str:
    """An input file's path as a person reads it: relative to the current directory when it lies under it."""
    import os

    here = os.getcwd()
    if os.path.isabs(path) and path.startswith(here.rstrip(os.sep) + os.sep):
        return os.path.relpath(path, here)
    return path


def listed(items: list[dict], fmt: str) -> str:
    """Fixes or problems rendered in `fmt`. The formats people read (table, markdown, html) end each detail with
    `(from FILE)`, the input file its row came from, rather than a column of long paths; csv and json keep the
    `source` field as stored. An ingest-log row names its file already (its id), and a row without a file
    (written by the REST API or a runner) says nothing."""
    from benchmark_db.output import render

    if fmt in ("table", "markdown", "html"):
        items = [{**{k: v for k, v in item.items() if k != "source"},
                  "detail": item["detail"] + (f" (from {shown_source(item['source'])})"
                                              if item.get("source") and item["source"] != item["id"] else "")}
                 for item in items]
    return render(items, fmt)


def reconvert(db, options: dict):
    """Convert again, from their stored originals, the logged files an earlier converter version made."""
    import tempfile
    from pathlib import Path

    from benchmark_db.convert import CONVERTER_VERSION
    from benchmark_db.ingest import Ingestor, outdated_originals

    # the files are where they were (or archived, or gone): nothing to move, no category to leave out
    options = {**options, "action": None, "archive_dir": None, "categories": None, "force": False,
               "progress_desc": "reconvert"}
    with tempfile.TemporaryDirectory(prefix="benchmark_db_reconvert_") as folder:
        summary = Ingestor(db, **options).ingest(outdated_originals(db.conn, Path(folder)))
    summary.nothing_note = (f"(nothing to reconvert: converter version {CONVERTER_VERSION} made the rows of every "
                            "logged file)")
    return summary


def run(args) -> int:
    import os

    from benchmark_db.cli import resolve_format
    from benchmark_db.connection import MEMORY, is_lake, resolve_db_path
    from benchmark_db.errors import DBConnectionError
    from benchmark_db.ingest import dry_run_database, render_summary, warn_outdated, write_report
    from benchmark_db.output import counted, render
    from benchmark_db_models import BenchmarkDB

    check_args(args)
    path = resolve_db_path(args.db)
    ingest_wanted = bool(args.input_dirs or args.input_files or args.migrate_all or args.migrate_ci
                         or args.reconvert)
    if (args.validate or args.fix_inconsistencies) and not ingest_wanted and not is_lake(path) \
            and path != MEMORY and not os.path.exists(path):
        raise DBConnectionError(f"database {path} does not exist: nothing to validate",
                                "pass --db PATH of an existing database, or migrate files into it first")
    if args.dry_run:
        with dry_run_database(path, args.lock_timeout) as db:
            result = migrate(db, args)
    else:
        with BenchmarkDB(path, lock_timeout=args.lock_timeout) as db:
            result = migrate(db, args)
            if result["summary"] is not None and not args.reconvert:
                warn_outdated(db.conn)
    fmt = resolve_format(args.format, args.output, args.output_formats)
    summary, problems, fixes = result["summary"], result["problems"], result["fixes"]
    # --migrate-ci that found only .duckdb/.parquet artifacts: no "(no files found)" above their table
    only_artifacts = summary is not None and not summary.totals()["files"] and bool(result["artifacts"])
    if fmt == "json":
        import json

        data = {"summary": summary.as_dict() if summary else None, "artifacts": result["artifacts"],
                "fixes": fixes, "problems": problems}
        text = json.dumps(data, indent=2, default=str) + "\n"
    else:
        parts = []
        if summary is not None and not only_artifacts:
            parts.append(render_summary(summary, fmt).rstrip("\n"))
        if result["artifacts"]:
            parts.append(render(result["artifacts"], fmt).rstrip("\n"))
        where = "below" if fmt == "table" else "listed"  # a table prints it above the problems; else stderr
        fixed = (f"{counted(len(fixes), 'fix', 'fixes')} made" if fixes else "0 fixes made: " + (
            f"none of the problems {where} can be fixed safely: they need a person" if problems else "nothing to fix"))
        if fixes:
            parts.append((f"{fixed}\n" if fmt == "table" else "") + listed(fixes, fmt).rstrip())
        elif args.fix_inconsistencies and not args.dry_run and fmt == "table":
            parts.append(fixed)
        if args.fix_inconsistencies and not args.dry_run and fmt != "table":  # data on stdout, the verdict here
            print(fixed, file=sys.stderr)
        if problems is not None:
            parts.append(f"validation: {counted(len(problems), 'problem')}" + (
                ":\n" + listed(problems, fmt).rstrip() if problems else ""))
        text = "\n\n".join(parts) + "\n"
    write_text(text, args.output)
    if args.report:  # a run that ingested nothing (summary None) reports no files
        write_report(None if only_artifacts else summary, args.report, {"artifacts": result["artifacts"], "fixes": fixes,
                                            "problems": problems})
    if summary is not None:
        for outcome in summary.failed:
            print(f"failed: {outcome.path}: {outcome.reason}", file=sys.stderr)
    failed_artifacts = [a for a in result["artifacts"] if a["status"] == "failed"]
    for artifact in failed_artifacts:
        print(f"failed: {artifact['artifact']}: {artifact['reason']}", file=sys.stderr)
    if problems:
        print(f"validation found {counted(len(problems), 'problem')}", file=sys.stderr)
        return 1
    return 1 if args.strict and ((summary is not None and summary.failed) or failed_artifacts) else 0


def main(argv: list[str] | None = None) -> int:
    from benchmark_db.ingest import deferred_interrupts

    with deferred_interrupts():  # Ctrl-C stops the ingest between chunks (a hang or a DuckDB error otherwise)
        return run_cli(build_parser(), run, argv)


if __name__ == "__main__":
    raise SystemExit(main())

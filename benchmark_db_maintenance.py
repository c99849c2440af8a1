#!/usr/bin/env python3
"""Maintain a benchmark database: optimize, vacuum, check integrity, back up, restore, purge, archive, clean up.

    python benchmark_db_maintenance.py --optimize-db --vacuum --check-integrity --db ./benchmark_db.duckdb
    python benchmark_db_maintenance.py --backup --backup-dir ./db_backups --backup-compress
    python benchmark_db_maintenance.py --restore db_backups/benchmark_db_backup-...duckdb.gz --db ./restored.duckdb
    python benchmark_db_maintenance.py --purge-backups --backup-retention 30 --backup-dir ./db_backups
    python benchmark_db_maintenance.py --migration-stats --output migration_report.json
    python benchmark_db_maintenance.py --clean-json --older-than 30 --action archive
    python benchmark_db_maintenance.py --archive-data --older-than 90 --archive-dir ./archived_data

Steps can be combined in one command (as a nightly cron job does); they run in a fixed, safe order (integrity
check, backup, archive-data, clean-json, vacuum, optimize, purge-backups, migration-stats) under one hold of
the database, waiting up to --lock-timeout for it. A failing step is logged and the others still run and
report; the exit code is 1 when any step failed or the integrity check found a problem, 3 when the database
cannot be opened. Nothing prompts. --dry-run shows what the destructive steps would do and changes nothing.
Steps that only read (--check-integrity, --backup, --migration-stats, and every step under --dry-run) open the
database read-only: they work on a read-only file and beside other readers (a file another process is writing
is DB001 after --lock-timeout, as for every tool). Without --dry-run, a database with an older schema, or with
changes still in its write-ahead log, is first opened for writing to upgrade it or fold the log in (a read-only
file is then DB001); --dry-run never writes.
"""
from __future__ import annotations

import argparse
import errno
import json
import logging
import math
import sys
from pathlib import Path

from benchmark_db.cli import add_common_options, add_db_option, refuse_unused_options, run_cli, write_text
from benchmark_db.errors import EXIT_FINDING, BenchmarkDBError, UsageError, is_interrupt, one_line

log = logging.getLogger("benchmark_db.maintenance")

DEFAULT_BACKUP_DIR = "./db_backups"
DEFAULT_RETENTION_DAYS = 30.0
DEFAULT_JSON_ARCHIVE_DIR = "./archived_json"
DEFAULT_DATA_ARCHIVE_DIR = "./archived_data"
MAX_DAYS = 365_000  # a thousand years; a cutoff much further back than today (year 1) overflows datetime
# the order steps run in, whatever the order of the flags
# (backup before anything changes; vacuum after the deletions of archive-data; statistics on the final file)
STEP_ORDER = ("check-integrity", "backup", "archive-data", "clean-json", "vacuum", "optimize-db", "purge-backups",
              "migration-stats")
# steps that never write to the database (a backup copies the file and its archive elsewhere): run alone, or
# together, or with --dry-run, they open it read-only, so a read-only file and other readers do not stop them
READ_ONLY_STEPS = frozenset({"check-integrity", "backup", "migration-stats"})
# the steps (and --restore) that read each value: one given to a run of none of them is a usage error
OPTION_READERS = {
    "--older-than": ("clean-json", "archive-data"),
    "--action": ("clean-json",),
    "--archive-dir": ("clean-json", "archive-data", "restore"),
    "--backup-dir": ("backup", "purge-backups"),
    "--backup-compress": ("backup",),
    "--backup-retention": ("purge-backups",),
    "--output": ("migration-stats",),
    "--force": ("restore",),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="benchmark_db_maintenance.py", description=__doc__.splitlines()[0],
        epilog="Example cron line (daily at 2 AM): 0 2 * * * cd /path/to/project && python "
               "benchmark_db_maintenance.py --optimize-db --vacuum --backup --purge-backups --backup-retention 30 "
               "--clean-json --older-than 30 --action archive --db ./benchmark_db.duckdb >> maintenance_log.txt 2>&1")
    add_db_option(parser, "database file (default: $BENCHMARK_DB_PATH, else ./benchmark_db.duckdb); with "
                          "--restore, the file to restore into")
    steps = parser.add_argument_group("steps (combine freely)")
    steps.add_argument("--optimize-db", action="store_true", help="checkpoint and refresh statistics (ANALYZE)")
    steps.add_argument("--vacuum", action="store_true",
                       help="reclaim free space by copying into a fresh, verified file that replaces the database; "
                            "prints bytes before and after")
    steps.add_argument("--check-integrity", action="store_true",
                       help="find orphans, dangling references, duplicates, impossible values and broken views; "
                            "exit 1 listing each problem")
    steps.add_argument("--backup", action="store_true",
                       help="verified backup with a manifest (row counts, table checksums, sha256); it carries "
                            "the Parquet files of --archive-data too")
    steps.add_argument("--restore", metavar="BACKUP",
                       help="verify BACKUP (a backup file, checked against the sha256 of its manifest, or a "
                            ".manifest.json) and restore exactly that file to --db (a new path, or --force), "
                            "with its archived Parquet files (into --archive-dir when given)")
    steps.add_argument("--purge-backups", action="store_true",
                       help="delete this tool's backups older than --backup-retention days (compressed too); a "
                            "--backup-dir that does not exist is said (a warning and the summary), not an error")
    steps.add_argument("--migration-stats", action="store_true",
                       help="report on the ingest log: files by kind/status, rows, rates, timeline, table sizes")
    steps.add_argument("--clean-json", action="store_true",
                       help="archive or remove JSON files the ingest log records as ingested more than --older-than "
                            "days ago and whose sha256 still matches; anything else is left and reported")
    steps.add_argument("--archive-data", action="store_true",
                       help="move fact rows older than --older-than days to Parquet under --archive-dir; they stay "
                            "visible through benchmark_performance and <table>_all views; rows without a "
                            "created_at stay in the database (the summary counts them)")
    values = parser.add_argument_group("values")
    values.add_argument("--backup-dir", default=DEFAULT_BACKUP_DIR, metavar="DIR",
                        help="where backups go and are purged from (default: %(default)s)")
    values.add_argument("--backup-compress", action="store_true", help="gzip the backup")
    values.add_argument("--backup-retention", type=float, default=DEFAULT_RETENTION_DAYS, metavar="DAYS",
                        help="age in days beyond which --purge-backups deletes a backup (default: %(default)g)")
    values.add_argument("--older-than", type=float, default=None, metavar="DAYS",
                        help="age in days for --clean-json (time since ingest) and --archive-data (created_at)")
    values.add_argument("--action", choices=("archive", "remove"), default=None,
                        help="what --clean-json does with a file (default: archive)")
    values.add_argument("--archive-dir", default=None, metavar="DIR",
                        help=f"archive folder (default: {DEFAULT_JSON_ARCHIVE_DIR} for --clean-json, "
                             f"{DEFAULT_DATA_ARCHIVE_DIR} for --archive-data); with --restore, where the backup's "
                             "archived Parquet files go (default: back where they were when restoring to the "
                             "backed-up path, else <db stem>_archived_data beside --db)")
    values.add_argument("--output", "-o", metavar="FILE", default=None,
                        help="write the --migration-stats report to FILE (format from its extension)")
    values.add_argument("--format", choices=("table", "json", "csv", "markdown", "html"), default=None,
                        help="format of the --migration-stats report (default: json) and of the step summary "
                             "(default: table)")
    values.add_argument("--force", action="store_true", help="with --restore: replace an existing --db")
    values.add_argument("--dry-run", action="store_true",
                        help="show what vacuum, backup, restore, purge, clean-json and archive-data would do; "
                             "change nothing")
    add_common_options(parser)
    return parser


def selected_steps(args) -> list[str]:
    flags = {"check-integrity": args.check_integrity, "backup": args.backup, "optimize-db": args.optimize_db,
             "vacuum": args.vacuum, "archive-data": args.archive_data, "clean-json": args.clean_json,
             "purge-backups": args.purge_backups, "migration-stats": args.migration_stats}
    return [step for step in STEP_ORDER if flags[step]]


def _describe(step: str, result) -> str:
    """One line saying what a step did."""
    if step == "check-integrity":
        return "no problems" if not result else f"{len(result)} problem(s)"
    r = result or {}
    prefix = "dry run: " if r.get("dry_run") else ""
    if step == "optimize-db":
        return prefix + ", ".join(r.get("actions", []))
    if step == "vacuum" and ("snapshots_expired" in r or "snapshots_to_expire" in r):
        if r.get("dry_run"):
            return f"dry run: {r['snapshots_to_expire']} lake snapshot(s) older than 7 days to expire"
        return (f"lake compacted: adjacent files merged, {r['snapshots_expired']} snapshot(s) expired, "
                f"{r['files_removed']} unreferenced file(s) removed")
    if step == "vacuum":
        if r.get("dry_run"):
            return f"dry run: {r['bytes_before']} bytes now"
        return f"{r['bytes_before']} -> {r['bytes_after']} bytes ({r['bytes_reclaimed']} reclaimed)"
    if step == "backup":
        files = r.get("archive_files") or []
        if r.get("dry_run"):
            extra = (f" and {len(files)} archived Parquet file(s), {r['archive_bytes']} bytes: {', '.join(files)}"
                     if files else "")
            return f"dry run: would back up {r['rows']} rows{extra} to {r['backup_dir']}"
        extra = f", {files} archived file(s) in {r['archive_dir']}" if files else ""
        return f"{r['backup']} ({r['size_bytes']} bytes, {r['tables']} tables, {r['rows']} rows verified{extra})"
    if step == "restore":
        where = f"verified, would restore to {r['target']}" if r.get("dry_run") else f"restored to {r['target']}"
        if r.get("replaced"):  # --force over a file: said alike by the dry run, whatever state that file was in
            where += ", replacing the file there"
        extra = ""
        if r.get("archive_files"):
            extra = f"; {r['archive_files']} archived file(s) verified, " + (
                f"{len(r['archive_to_copy'])} to copy to {r['archive_dir']}" if r.get("dry_run")
                else f"in {r['archive_dir']}")
        return f"{where} ({r['tables']} tables, {r['rows']} rows match the manifest{extra})"
    if step == "purge-backups":  # a dry run deletes nothing: it must not say "deleted"
        if r.get("folder_missing"):  # "0 file(s) deleted" hid a mistyped --backup-dir
            return f"backup folder {r['backup_dir']} does not exist: nothing to purge"
        verb = "would be deleted" if r.get("dry_run") else "deleted"
        unfinished = f", {len(r['unfinished_backups'])} unfinished (no manifest)" if r["unfinished_backups"] else ""
        made = (f" (including {', '.join(r['kept_this_run'])}, made by this run's --backup, although older than "
                f"--backup-retention {r['retention_days']:g} days)" if r.get("kept_this_run") else "")
        return (f"{prefix}{len(r['deleted_files'])} file(s) {verb}, {r['kept_backups']} backup(s) kept{made}"
                f"{unfinished}")
    if step == "archive-data":
        moved = sum(r["rows"].values())
        undated = sum((r.get("undated") or {}).values())
        # rows without a created_at have no age: never archived, said rather than silently left
        stay = (f"; {undated} row(s) have no date (created_at is empty) and stay in the database" if undated
                else "")
        if r.get("dry_run"):  # no file is written by a dry run: "-> 0 Parquet file(s)" read as "nothing to do"
            return (f"{prefix}{moved} row(s) older than {r['cutoff']} would move to Parquet in {r['archive_dir']}"
                    + stay)
        return f"{prefix}{moved} row(s) older than {r['cutoff']} -> {len(r['files'])} Parquet file(s)" + stay
    if step == "clean-json":
        verb = f"would be {r['action']}d" if r.get("dry_run") else f"{r['action']}d"
        return f"{prefix}{len(r['files'])} file(s) {verb}, {len(r['untouched'])} left untouched"
    if step == "migration-stats":
        from benchmark_db.maintenance.stats import describe_totals

        return describe_totals(r.get("totals", {}))
    return ""


def run_steps(args, steps: list[str]) -> tuple[list[dict], list[dict]]:
    """Run the selected steps on one connection; return (summary rows, integrity problems)."""
    from benchmark_db.connection import connect, is_lake, resolve_db_path
    from benchmark_db.maintenance import archive, backup, clean_json, integrity, optimize, stats
    from benchmark_db.maintenance import lake as lake_maintenance

    path = resolve_db_path(args.db)
    on_lake = is_lake(path)
    summary: list[dict] = []
    problems: list[dict] = []
    made: tuple[str, ...] = ()  # the backup this run made: its purge keeps it, whatever --backup-retention says
    if steps == ["purge-backups"]:  # works on the backup folder alone: the database is neither opened nor created
        result = backup.purge_backups(args.backup_dir, args.backup_retention, dry_run=args.dry_run)
        summary.append({"step": "purge-backups", "status": "ok", "result": _describe("purge-backups", result)})
        log.info("purge-backups: %s", summary[-1]["result"])
        return summary, problems
    # A missing database is created with the current schema (with a warning), as by the other writers: the
    # guide's maintenance lines, and its cron line on a new machine, run before anything was ingested. What a
    # typo'd --db would hide is said instead: --check-integrity reports the database it just created as a
    # problem (exit 1), not "no problems". A dry run neither creates (DB001) nor migrates.
    created = not on_lake and path != ":memory:" and not Path(path).exists() and not args.dry_run
    if created:
        log.warning("database %s does not exist; creating it with the current schema", path)
    conn = None
    if (not on_lake and path != ":memory:" and not created
            and (args.dry_run or all(step in READ_ONLY_STEPS for step in steps))):
        conn = _connect_read_only(path, args.lock_timeout, args.dry_run)
    read_only = conn is not None
    if conn is None:
        conn = _connect_writer(path, args, steps)  # DB001/DB002 end the run: nothing can be done
    try:
        if not args.dry_run and not on_lake and not read_only:
            try:
                archive.ensure_archive_views(conn)
            except Exception as exc:  # archive files moved or deleted: the integrity check names them
                log.error("cannot re-create the views over archived data: %s", str(exc).splitlines()[0])
        for step in steps:
            log.info("%s: starting", step)
            if on_lake and step in lake_maintenance.NOT_APPLICABLE:
                why = lake_maintenance.NOT_APPLICABLE[step]
                log.info("%s: does not apply to a DuckLake: %s", step, why)
                summary.append({"step": step, "status": "n/a", "result": f"does not apply to a DuckLake: {why}"})
                continue
            try:
                if step == "check-integrity":
                    result = problems = integrity.check_integrity(conn)
                    if created:
                        problems.insert(0, {"check": "missing_database", "table": "-", "rows": 0, "examples": [],
                                            "problem": f"{path} did not exist: this run created it empty (check "
                                                       "--db if you meant an existing database)"})
                    for p in problems:
                        log.error("integrity: %s in %s: %s (%d rows%s)", p["check"], p["table"], p["problem"],
                                  p["rows"], f"; e.g. {p['examples']}" if p["examples"] else "")
                elif step == "optimize-db":
                    result = optimize.optimize_database(conn, dry_run=args.dry_run)
                elif step == "vacuum" and on_lake:
                    result = lake_maintenance.compact_lake(conn, dry_run=args.dry_run)
                elif step == "vacuum":
                    result = optimize.vacuum_database(conn, path, dry_run=args.dry_run)
                    if not args.dry_run and not on_lake:
                        conn = connect(path, lock_timeout=args.lock_timeout)
                elif step == "backup":
                    result = backup.create_backup(conn, path, args.backup_dir, compress=args.backup_compress,
                                                  dry_run=args.dry_run)
                    made = (result["backup"],) if "backup" in result else ()
                elif step == "archive-data":
                    result = archive.archive_old_rows(conn, args.older_than, args.archive_dir or DEFAULT_DATA_ARCHIVE_DIR,
                                                      dry_run=args.dry_run)
                elif step == "clean-json":
                    result = clean_json.clean_json_files(conn, args.older_than, args.action or "archive",
                                                         archive_dir=args.archive_dir or DEFAULT_JSON_ARCHIVE_DIR,
                                                         dry_run=args.dry_run)
                elif step == "purge-backups":
                    result = backup.purge_backups(args.backup_dir, args.backup_retention, dry_run=args.dry_run,
                                                  keep=made)
                else:  # migration-stats
                    result = stats.migration_stats(conn)
                    write_text(stats.render_migration_stats(result, report_format(args.format, args.output)),
                               args.output)
                status = "problems" if step == "check-integrity" and problems else "ok"
                summary.append({"step": step, "status": status, "result": _describe(step, result)})
                log.info("%s: %s", step, summary[-1]["result"])
            except BenchmarkDBError as exc:
                log.error("%s failed: %s", step, exc)
                summary.append({"step": step, "status": "failed", "result": str(exc)})
            except Exception as exc:  # a failed step must not hide the others' reports
                if is_interrupt(exc):  # Ctrl-C inside a query: stop the run, not just this step
                    raise KeyboardInterrupt from exc
                if isinstance(exc, OSError) and exc.strerror:
                    # a folder that is missing, not a folder, read-only or full: a user's fix, said as one
                    # a full disk names no file (a write or flush fails, not an open): name the step's folder
                    place = exc.filename or _step_folder(step, args, path)
                    where = f" {place}" if place else ""
                    fix = ("free space there or use another disk" if exc.errno == errno.ENOSPC
                           else "check that the folder exists, is a folder and is writable")
                    message = f"error DB005: cannot write or read{where}: {exc.strerror}; {fix}"
                else:  # one line: DuckDB's messages go on with "LINE 1: <the SQL>" and a caret line
                    message = f"{type(exc).__name__}: {one_line(exc)}"
                if args.verbose:
                    log.exception("%s failed", step)
                else:
                    log.error("%s failed: %s", step, message)
                summary.append({"step": step, "status": "failed", "result": message})
                if step == "vacuum":
                    try:
                        conn.execute("SELECT 1")
                    except Exception:  # the old connection is gone; open a new one for the next steps
                        conn = connect(path, lock_timeout=args.lock_timeout)
    finally:
        try:
            conn.close()
        except Exception:  # already closed by a vacuum that failed after closing it
            pass
    return summary, problems


def _step_folder(step: str, args, path: str) -> str | None:
    """Where a step writes, to name in an error that names no file (ENOSPC)."""
    if step == "backup":
        return args.backup_dir
    if step == "archive-data":
        return args.archive_dir or DEFAULT_DATA_ARCHIVE_DIR
    if step == "clean-json" and args.action == "archive":
        return args.archive_dir or DEFAULT_JSON_ARCHIVE_DIR
    if step == "migration-stats":
        return args.output
    if step in ("vacuum", "optimize-db"):
        return path
    return None


def refuse_unwritable_output(output: str) -> None:
    """An --output that cannot be written is DB000 before any step runs: it used to fail the report's step
    after all the others had run (exit 1, as if a step had failed). The shared check refuses a folder, a file in
    the way and a read-only folder; making the report's folder here (as writing the report would) catches what
    only trying shows (/proc)."""
    from benchmark_db.cli import _check_output_file, unwritable_output

    _check_output_file(output)
    try:
        Path(output).parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise unwritable_output(output, exc) from exc


def _connect_read_only(path: str, lock_timeout: float, dry_run: bool):
    """A read-only connection for steps that only read, or None when the run is no dry run and the file's schema
    is older than this code's or its WAL holds changes: those steps then run, as before, on a writer that
    migrates the file or folds the WAL into it first."""
    import duckdb

    from benchmark_db import schema
    from benchmark_db.connection import connect
    from benchmark_db.errors import DBConnectionError

    wal = Path(path + ".wal")
    if not dry_run and wal.is_file() and wal.stat().st_size > 0:
        # changes a killed writer left in the WAL: only a writer folds them into the file, and a backup taken
        # read-only would copy a file without them
        return None
    # migrate=False: no upgrade, and no TEMP views over the archive (show_archive), which would make the
    # integrity check and the statistics count archived rows as rows of the tables
    conn = connect(path, read_only=True, create=False, migrate=False, lock_timeout=lock_timeout)
    try:
        version = schema.current_version(conn)
        schema.check_not_newer(version)
    except duckdb.Error as exc:
        conn.close()
        raise DBConnectionError(f"cannot read the schema of {path}: {one_line(exc)}",
                                "check that the file is a benchmark database") from exc
    except BaseException:
        conn.close()
        raise
    if version == 0:  # another program's database: steps that only read must not make it a benchmark one
        from benchmark_db.connection import check_no_foreign_tables

        check_no_foreign_tables(conn, path, read_only=True)
    if version < schema.SCHEMA_VERSION and not dry_run:
        conn.close()
        return None
    log.debug("%s opened read-only: every step asked for only reads", path)
    return conn


def _connect_writer(path: str, args, steps: list[str]):
    """The writable connection of a run with a step that writes; a file that cannot be written is one DB001
    line naming the steps that need it writable and those that work without."""
    from benchmark_db.connection import connect
    from benchmark_db.errors import DatabaseUnwritableError, DBConnectionError

    try:
        return connect(path, lock_timeout=args.lock_timeout, create=False if args.dry_run else None,
                       migrate=not args.dry_run)
    except DatabaseUnwritableError as exc:
        writers = [f"--{step}" for step in steps if step not in READ_ONLY_STEPS]
        what = (f"{', '.join(writers)} write{'s' if len(writers) == 1 else ''} to the database" if writers
                else "its schema must be upgraded first")
        raise DBConnectionError(
            f"cannot open {path} for writing: {what}, and it is read-only here ({one_line(exc.__cause__ or exc)})",
            "make it writable, or run only the steps that read (--check-integrity, --backup, --migration-stats) "
            "or --dry-run") from exc


def report_format(fmt: str | None, output: str | None) -> str:
    """The --migration-stats report's format: --format, else --output's extension (DB000 for one that names no
    format, as in the other tools), else JSON."""
    from benchmark_db.cli import resolve_format

    return resolve_format(fmt, output, default="json")


def run(args) -> int:
    from benchmark_db.connection import resolve_db_path
    from benchmark_db.output import render

    steps = selected_steps(args)
    summary_format = args.format or "table"
    refuse_unused_options(build_parser(), args, OPTION_READERS, steps + ["restore"] * bool(args.restore))
    if args.restore:
        if steps:
            raise UsageError("--restore cannot be combined with other steps", "run the restore on its own")
        from benchmark_db.maintenance.backup import restore_backup

        if not args.db:
            raise UsageError("--restore needs --db NEW, the file to restore into", "e.g. --db ./restored.duckdb")
        from benchmark_db.maintenance.lake import refuse_restore

        refuse_restore(resolve_db_path(args.db))
        result = restore_backup(args.restore, resolve_db_path(args.db), force=args.force, dry_run=args.dry_run,
                                lock_timeout=args.lock_timeout, archive_dir=args.archive_dir)
        rows = [{"step": "restore", "status": "ok", "result": _describe("restore", result)}]
        write_text(html_report([], rows) if summary_format == "html" else render(rows, summary_format), None)
        return 0
    if not steps:
        raise UsageError("nothing to do", "pass one or more steps, e.g. --optimize-db --vacuum --check-integrity")
    if "migration-stats" in steps:
        report_format(args.format, args.output)  # a bad --output name stops the run before any step
        if args.output:
            refuse_unwritable_output(args.output)
    needs_age = [s for s in ("clean-json", "archive-data") if s in steps]
    if needs_age and args.older_than is None:
        raise UsageError(f"--{needs_age[0]} needs --older-than DAYS", "e.g. --older-than 30")
    # checked before anything runs: a bad value used to fail its step only after the others had run (exit 1,
    # not 2), and nan/inf/huge values ended in "unexpected ValueError"
    for flag, value, used in (("--older-than", args.older_than, bool(needs_age)),
                              ("--backup-retention", args.backup_retention, "purge-backups" in steps)):
        if used and not (math.isfinite(value) and 0 <= value <= MAX_DAYS):
            raise UsageError(f"{flag} must be a number of days from 0 to {MAX_DAYS}, not {value:g}",
                             f"e.g. {flag} 30")
    summary, problems = run_steps(args, steps)
    # stdout holds one document: the migration report when it goes there (the step summary and any integrity
    # problems then go to stderr, where the log lines are), else the problems and the step summary
    report_on_stdout = "migration-stats" in steps and not args.output
    if report_on_stdout and summary_format == "html":
        summary_format = "table"  # the summary goes to stderr among the log lines then: text, not a web page
    one_json_document = summary_format == "json" and "check-integrity" in steps and not report_on_stdout
    if one_json_document:
        # two JSON arrays one after the other are no JSON document: json.load of the output failed
        write_text(json.dumps({"problems": json.loads(render(problems, "json")) if problems else [],
                               "steps": json.loads(render(summary, "json"))}, indent=2) + "\n", None)
    elif summary_format == "html":
        write_text(html_report(problems, summary), None)
        return _exit_code(summary, problems)
    elif problems:
        text = render(problems, summary_format)
        if summary_format in ("markdown", "csv"):
            # a blank line ends the problems' table: without it the summary's header row read as one more
            # row of the problems table in rendered markdown (and as a data row to a CSV reader)
            text = text.rstrip("\n") + "\n\n"
        elif not text.endswith("\n"):
            text += "\n"
        if report_on_stdout:
            print(text, file=sys.stderr, end="")
        else:
            write_text(text, None)
    if report_on_stdout:
        if steps != ["migration-stats"]:  # alone, its one summary line is the log's already
            print(render(summary, summary_format), file=sys.stderr)
    elif not one_json_document:
        write_text(render(summary, summary_format), None)
    return _exit_code(summary, problems)


def _exit_code(summary: list[dict], problems: list[dict]) -> int:
    failed = [row["step"] for row in summary if row["status"] == "failed"]
    if failed:
        print(f"error DB005: maintenance step(s) failed: {', '.join(failed)}; see the log lines above",
              file=sys.stderr)
    return EXIT_FINDING if failed or problems else 0


def html_report(problems: list[dict], summary: list[dict]) -> str:
    """The integrity problems and the step summary as one HTML page (`--format html` printed a text table; two
    pages one after the other would not be one document)."""
    from benchmark_db.output import to_html_table

    parts = ["<h2>Integrity problems</h2>\n" + to_html_table(problems)] if problems else []
    parts.append("<h2>Steps</h2>\n" + to_html_table(summary))
    return ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>Database maintenance</title></head>"
            "<body><h1>Database maintenance</h1>\n" + "\n".join(parts) + "\n</body></html>\n")


def main(argv: list[str] | None = None) -> int:
    return run_cli(build_parser(), run, argv)


if __name__ == "__main__":
    raise SystemExit(main())

#!/usr/bin/env python3
"""Create a benchmark database with the current schema, optionally with realistic sample data.

    python scripts/create_benchmark_schema.py --output ./benchmark_db.duckdb --sample-data

An existing database is migrated forward, never dropped, unless --force asks to start over. Running it
twice with --sample-data writes the same rows again (ids come from natural keys), so nothing is duplicated.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmark_db.cli import add_common_options, add_data_path_option, add_format_option, run_cli, write_text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="create_benchmark_schema.py", description=__doc__.splitlines()[0])
    parser.add_argument("--output", "--db", "--db-path", "--output-db", dest="db", metavar="PATH", default=None,
                        help="database file to create (default: $BENCHMARK_DB_PATH, else ./benchmark_db.duckdb)")
    add_data_path_option(parser)
    parser.add_argument("--sample-data", action="store_true", help="add realistic sample runs and results")
    parser.add_argument("--force", action="store_true", help="delete an existing database file first")
    parser.add_argument("--list-migrations", action="store_true", help="list the schema migrations and exit")
    add_format_option(parser, formats=("table", "json", "markdown", "csv"), from_output=False)
    add_common_options(parser)
    return parser


def create_database(db_path: str | None, *, sample_data: bool = False, force: bool = False,
                    lock_timeout: float = 30.0) -> list[dict]:
    """Create or migrate the database at `db_path`; return the row count of every table afterwards."""
    from benchmark_db.connection import MEMORY, resolve_db_path
    from benchmark_db.sample_data import add_sample_data
    from benchmark_db_models import BenchmarkDB, table_counts

    path = resolve_db_path(db_path)
    if force and path != MEMORY:
        for stale in (Path(path), Path(path + ".wal")):
            stale.unlink(missing_ok=True)
    with BenchmarkDB(path, lock_timeout=lock_timeout) as db:
        if sample_data:
            add_sample_data(db)
        return table_counts(db.conn)


def run(args) -> int:
    from benchmark_db.cli import resolve_format
    from benchmark_db.connection import resolve_db_path
    from benchmark_db.output import render
    from benchmark_db.schema import MIGRATIONS, SCHEMA_VERSION

    if args.list_migrations:
        rows = [{"version": m.version, "name": m.name, "statements": len(m.statements)} for m in MIGRATIONS]
        write_text(render(rows, resolve_format(args.format)), None)
        return 0
    counts = create_database(args.db, sample_data=args.sample_data, force=args.force,
                             lock_timeout=args.lock_timeout)
    from benchmark_db.lake import redact

    if not args.quiet:
        print(f"database {redact(resolve_db_path(args.db))} at schema version {SCHEMA_VERSION}", file=sys.stderr)
    write_text(render(counts, resolve_format(args.format)), None)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_cli(build_parser(), run, argv)


if __name__ == "__main__":
    raise SystemExit(main())

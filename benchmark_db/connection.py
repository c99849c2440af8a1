"""The one place that opens a database.

It knows where the database is (`--db`, `$BENCHMARK_DB_PATH`, `./benchmark_db.duckdb`, `:memory:`, or a
DuckLake lake `ducklake:postgres:dbname=... host=...` / `ducklake:PATH.ducklake` with its data files under
`--data-path` / `$BENCHMARK_DB_DATA_PATH`), what to do when another process holds the file (wait and retry
up to the lock timeout, then DB001 quoting DuckDB's message about the holder), when a missing file is
created (writers) or an error (readers), and that a writer migrates an older schema forward before it
writes. It imports only duckdb.
"""
from __future__ import annotations

import contextlib
import logging
import os
import time
from pathlib import Path

import duckdb

from benchmark_db import schema
from benchmark_db.errors import (
    ArchiveMissingError,
    DatabaseLockedError,
    DatabaseUnwritableError,
    DBConnectionError,
    SchemaError,
    UsageError,
    one_line,
)

DEFAULT_DB_FILE = "benchmark_db.duckdb"
DEFAULT_LOCK_TIMEOUT = 30.0
MEMORY = ":memory:"
# names of the files the tools read and write besides databases: a new database is never given one of them
NOT_DATABASE_SUFFIXES = frozenset({".json", ".jsonl", ".csv", ".md", ".markdown", ".html", ".htm", ".txt",
                                   ".log", ".parquet", ".yaml", ".yml", ".png", ".svg", ".gz"})


def resolve_db_path(db: str | os.PathLike | None = None) -> str:
    """The database the caller means: the argument, else $BENCHMARK_DB_PATH, else ./benchmark_db.duckdb."""
    if db is None or str(db) == "":
        db = os.environ.get("BENCHMARK_DB_PATH") or DEFAULT_DB_FILE
    return str(db)


DUCKLAKE_PREFIX = "ducklake:"
# Set by the shared --data-path option (benchmark_db.cli); the environment variable is the fallback.
_default_data_path: str | None = None


def set_default_data_path(path: str | None) -> None:
    global _default_data_path
    _default_data_path = path


def is_lake(db: str | os.PathLike | None) -> bool:
    return resolve_db_path(db).startswith(DUCKLAKE_PREFIX)


def _is_lock_error(exc: Exception) -> bool:
    text = str(exc).lower()
    return "lock" in text and ("conflicting" in text or "could not set lock" in text)


# How a new database file is laid out. Storage version v1.5.0 (the pinned DuckDB's own) brings the newer
# string compressions (DICT_FSST, ZSTD) that the default v1.0.0 format lacks; 64 KiB blocks instead of
# 256 KiB stop each small table (models, hardware, migrations, ...) from taking a whole mostly-empty block.
# Together about 12% smaller files on the 20,000-file ingest benchmark. The cost: DuckDB older than 1.5
# cannot open such a file (the toolkit pins 1.5.5). Existing files keep the layout they were created with.
NEW_FILE_OPTIONS = "STORAGE_VERSION 'v1.5.0', BLOCK_SIZE 65536"


def _create_file(path: str) -> None:
    """Create an empty database file at `path` with NEW_FILE_OPTIONS (ATTACH is where DuckDB takes them).

    The file is made under a temporary name and linked into place whole: a process killed while DuckDB wrote
    its first blocks left a file at `path` that no run could open ("not a valid DuckDB database file")."""
    temporary = f"{path}.{os.getpid()}.creating"
    try:
        with duckdb.connect() as scratch:
            scratch.execute(f"ATTACH '{temporary.replace(chr(39), chr(39) * 2)}' AS new_file ({NEW_FILE_OPTIONS})")
            scratch.execute("DETACH new_file")
        _link_new_file(temporary, path)
    except (duckdb.Error, OSError) as exc:
        if not Path(path).exists():  # another process creating the same file at the same moment is fine
            raise DBConnectionError(f"cannot create database {path}: {one_line(exc)}",
                                    "check that the folder is writable") from exc
    finally:
        for leftover in (temporary, f"{temporary}.wal"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(leftover)


def _link_new_file(temporary: str, path: str) -> None:
    """Put the finished file at `path` unless another process has put its own there meanwhile (a link never
    replaces a file; that process may already be writing to it)."""
    try:
        os.link(temporary, path)
    except FileExistsError:
        pass
    except OSError:  # a file system without hard links
        if not Path(path).exists():
            os.replace(temporary, path)


def _open_with_retry(path: str, read_only: bool, lock_timeout: float, config: dict | None):
    deadline = time.monotonic() + max(lock_timeout, 0.0)
    delay = 0.05
    while True:
        try:
            conn = duckdb.connect(path, read_only=read_only, config=config or {})
            if path != MEMORY and conn.execute(
                    "SELECT path IS NULL FROM duckdb_databases() WHERE database_name = current_database()"
            ).fetchone()[0]:
                # DuckDB 1.5.5 opens an existing .json/.csv/.parquet file as an empty in-memory database:
                # every write went nowhere while the tools reported rows stored
                conn.close()
                raise DBConnectionError(f"{path} is a data file (JSON, CSV or Parquet), not a DuckDB database",
                                        "pass the path of a .duckdb database file (a new name creates one)")
            # DuckDB's own progress bar would write into our stdout; the tools draw their own on stderr
            conn.execute("SET enable_progress_bar = false")
            return conn
        except duckdb.Error as exc:
            if _is_lock_error(exc):
                if time.monotonic() >= deadline:
                    raise DatabaseLockedError(
                        f"{path} is locked by another process ({exc})",
                        f"waited {lock_timeout:g} s; retry when that process ends, or raise --lock-timeout",
                    ) from exc
                time.sleep(min(delay, max(deadline - time.monotonic(), 0.01)))
                delay = min(delay * 2, 1.0)
                continue
            if not read_only and _is_unwritable_error(exc):
                raise DatabaseUnwritableError(f"cannot open {path} for writing: {exc}",
                                        "the file or its folder is read-only here; readers (benchmark_db_query.py, "
                                        "the visualizer) can still read it, writers need it writable") from exc
            raise DBConnectionError(f"cannot open {path}: {exc}",
                                    "check that the path is a DuckDB database file you can read") from exc


def _is_unwritable_error(exc: Exception) -> bool:
    text = str(exc).lower()
    # EPERM too: an immutable file (chattr +i) or a sealed mount refuses writes that way
    return "read-only file system" in text or "permission denied" in text or "operation not permitted" in text


def connect(db: str | os.PathLike | None = None, *, read_only: bool = False, create: bool | None = None,
            lock_timeout: float = DEFAULT_LOCK_TIMEOUT, migrate: bool = True, config: dict | None = None,
            missing_archive: str = "warn"):
    """Open the database and return a DuckDB connection whose schema is current.

    Writers (`read_only=False`) create a missing file with the current schema and migrate an older one.
    Readers get DB001 for a missing file; an older schema is migrated forward once (briefly opening the
    file for writing) so every view they query exists. `create=False` makes a missing file an error for a
    writer too. A reader also sees the rows `--archive-data` moved to Parquet; when some of those files are
    gone, `missing_archive="error"` raises DB004 (the tools that answer from results, unless
    --allow-missing-archive) and "warn" says so once and reads the rest.
    """
    path = resolve_db_path(db)
    if create is None:
        create = not read_only
    if path.startswith(DUCKLAKE_PREFIX):
        from benchmark_db.lake import connect_lake

        return connect_lake(path, read_only=read_only, create=create, migrate=migrate,
                            data_path=_default_data_path or os.environ.get("BENCHMARK_DB_DATA_PATH"),
                            lock_timeout=lock_timeout)
    if path != MEMORY:
        file = Path(path)
        if not file.exists():
            if not create:
                raise DBConnectionError(
                    f"database {path} does not exist",
                    f"create it with: python scripts/create_benchmark_schema.py --output {path}")
            if file.suffix.lower() in NOT_DATABASE_SUFFIXES:
                # `create_benchmark_schema.py --output schema.json` made a DuckDB file named schema.json
                raise UsageError(f"will not create database {path}: a {file.suffix} name is for another kind "
                                 "of file, not a DuckDB database", f"pass a database path such as "
                                 f"{file.with_suffix('.duckdb')}")
            try:
                file.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:  # a parent is a file, or the folder is not writable
                raise DBConnectionError(f"cannot create the folder of database {path}: {one_line(exc)}",
                                        "pass --db a path in a writable folder") from None
            _create_file(path)
        elif file.is_dir():
            raise DBConnectionError(f"{path} is a directory, not a database file", "pass a file path to --db")
    elif read_only:
        read_only = False  # an in-memory database cannot be read-only; it is private to this process anyway

    conn = _open_with_retry(path, read_only, lock_timeout, config)
    if not migrate:
        return conn
    try:
        version = schema.current_version(conn)
        schema.check_not_newer(version)
        if version == 0 and path != MEMORY:
            check_no_foreign_tables(conn, path, read_only)
        if version < schema.SCHEMA_VERSION:
            if read_only:
                conn.close()
                _upgrade_for_reader(path, version, lock_timeout)
                conn = _open_with_retry(path, True, lock_timeout, config)
            elif schema.migrate(conn):
                _keep_archive_visible(conn)
                # DuckDB 1.5.5 cannot replay `ALTER TABLE ... ADD COLUMN` from the WAL after a crash (kill -9
                # before the first checkpoint leaves an unopenable file): put the new schema in the file now
                conn.execute("CHECKPOINT")
    except SchemaError:
        conn.close()
        raise
    except duckdb.Error as exc:
        conn.close()
        raise DBConnectionError(f"cannot read the schema of {path}: {exc}",
                                "check that the file is a benchmark database") from exc
    if read_only and (config or {}).get("enable_external_access", True):  # the archive is files outside
        _show_archive(conn, path, missing_archive)
    return conn


def check_no_foreign_tables(conn, path: str, read_only: bool) -> None:
    """A DuckDB file without the benchmark schema that holds tables of its own is another program's database:
    a reader (a report, an integrity check) must not turn it into a benchmark database and answer "no rows"
    or "no problems" for a mistyped --db. A writer adds the schema beside them, saying so."""
    tables = [row[0] for row in conn.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_catalog = current_database() "
        "ORDER BY table_name").fetchall()]
    if not tables or {"schema_migrations", *schema.TABLES} & set(tables):
        # an empty file (DuckDB's, or one a writer has just created) gets the schema; so does one whose first
        # migration was cut short (a process killed while it created the schema): its tables are ours
        return
    named = ", ".join(tables[:5]) + (", ..." if len(tables) > 5 else "")
    if read_only:
        conn.close()
        raise DBConnectionError(f"{path} is a DuckDB database without the benchmark schema (it holds {named})",
                                "check --db; to add the benchmark tables to it, run "
                                f"python scripts/create_benchmark_schema.py --output {path}")
    logging.getLogger("benchmark_db").warning(
        "%s held no benchmark schema, only other tables (%s): adding the benchmark tables beside them", path, named)


def _upgrade_for_reader(path: str, version: int, lock_timeout: float) -> None:
    """Migrate an older file forward for a reader, or say why a reader cannot use it (DB002).

    A file the reader cannot write (a read-only mount, a file without write permission) cannot be upgraded.
    It is still read as it is when the pending steps change nothing a reader needs (`file_only`: keys and
    indexes; `optional_for_readers`: the ingest log's converter version, say); an older one lacks views and
    columns every report needs, which is DB002, not a traceback."""
    try:
        upgrade = _open_with_retry(path, False, lock_timeout, None)
    except DBConnectionError as exc:
        if not _is_unwritable_error(exc.__cause__ or exc):
            raise
        if all(m.file_only or m.optional_for_readers for m in schema.MIGRATIONS if m.version > version):
            logging.getLogger("benchmark_db").info(
                "%s has schema version %d and is read-only here: read as it is", path, version)
            return
        raise SchemaError(
            f"{path} has schema version {version}, older than this code's {schema.SCHEMA_VERSION}, and cannot be "
            f"upgraded because it is read-only here ({str(exc.__cause__ or exc).splitlines()[0]})",
            f"upgrade it once where it is writable (python scripts/create_benchmark_schema.py --output {path}), "
            "or query an upgraded copy") from exc
    try:
        if schema.migrate(upgrade):
            _keep_archive_visible(upgrade)
            upgrade.execute("CHECKPOINT")
    finally:
        upgrade.close()


def _keep_archive_visible(conn) -> None:
    """After a migration: a migration that redefines a schema view points it at the live table alone, so a
    database with archived rows gets its views over the archive back at once (not at the next maintenance)."""
    from benchmark_db.maintenance import archive

    archive.ensure_archive_views(conn)


def _show_archive(conn, path: str, missing_archive: str) -> None:
    """Let a reader see rows moved to Parquet by `--archive-data` under the tables' own names."""
    from benchmark_db.maintenance import archive

    try:
        archive.check_archive_files(conn, path, missing_archive)
        archive.show_archive(conn)
    except ArchiveMissingError:
        conn.close()
        raise
    except duckdb.Error as exc:  # an archived file no longer reads as Parquet: the integrity check names it
        logging.getLogger("benchmark_db").warning(
            "%s: archived rows are not shown (%s); run benchmark_db_maintenance.py --check-integrity",
            path, str(exc).splitlines()[0])


@contextlib.contextmanager
def open_db(db=None, **kwargs):
    """`connect()` as a context manager that always closes what it opened."""
    conn = connect(db, **kwargs)
    try:
        yield conn
    finally:
        conn.close()


@contextlib.contextmanager
def transaction(conn):
    """Commit everything inside the block, or nothing: rolls back on any exception."""
    conn.execute("BEGIN TRANSACTION")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")

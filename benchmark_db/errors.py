"""The one exception family of the toolkit and the exit codes it maps to.

Every tool raises these for problems a user can fix; `benchmark_db.cli.run_cli` turns them into one line
on stderr (`error DB00N: what happened; what to do`) and an exit code. Nothing here imports anything heavy.
"""
from __future__ import annotations

# Exit codes shared by every script (DESIGN §4).
EXIT_OK = 0
EXIT_FINDING = 1  # a finding the caller asked about: regression, integrity problem, failed files
EXIT_USAGE = 2
EXIT_DB_UNAVAILABLE = 3


class BenchmarkDBError(Exception):
    """A problem the user can act on. `hint` says what to do about it."""

    code = "DB000"
    exit_code = EXIT_USAGE

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        text = f"error {self.code}: {self.message}"
        if self.hint:
            text += f"; {self.hint}"
        return text


class DBConnectionError(BenchmarkDBError):
    """The database cannot be opened: missing file, locked by another process, unreadable."""

    code = "DB001"
    exit_code = EXIT_DB_UNAVAILABLE


class DatabaseLockedError(DBConnectionError):
    """Another process held the database's lock for longer than the caller would wait: a passing state (the
    REST server answers it with Retry-After)."""


class DatabaseUnwritableError(DBConnectionError):
    """A writer cannot open the file: it or its folder is read-only here (a mount, permissions)."""


class SchemaError(BenchmarkDBError):
    """The database schema is not one this code can use (newer than the code, damaged)."""

    code = "DB002"
    exit_code = EXIT_DB_UNAVAILABLE


class DataConversionError(BenchmarkDBError):
    """An input document or value cannot be converted to canonical records."""

    code = "DB003"
    exit_code = EXIT_USAGE


class WorkerDiedError(DataConversionError):
    """A worker process converting input files died (killed by the system); nothing of its files is stored."""


class QueryError(BenchmarkDBError):
    """A query failed or was refused."""

    code = "DB004"
    exit_code = EXIT_USAGE


class ArchiveMissingError(QueryError):
    """Archived Parquet files the database names are gone: an answer would silently leave their rows out."""


class MaintenanceError(BenchmarkDBError):
    """A maintenance step (backup, restore, vacuum, archive) failed."""

    code = "DB005"
    exit_code = EXIT_FINDING


class UsageError(BenchmarkDBError):
    """The command line asks for something that cannot be done as asked."""

    code = "DB000"
    exit_code = EXIT_USAGE


def one_line(exc: BaseException) -> str:
    """An exception's message on one line, for the one-line error, a `failed:` report or the ingest log's
    reason: our own errors' message (without their code and hint), or DuckDB's lines joined without the
    `LINE 1: ...` and caret lines that point into the statement (useless once joined), keeping hints such as
    `Did you mean "x"?`."""
    message = getattr(exc, "message", None)
    if isinstance(message, str):
        return " ".join(message.split())
    lines = [line.strip() for line in str(exc).splitlines()]
    kept = [line for line in lines if line and not line.startswith("LINE ") and set(line) != {"^"}]
    return " ".join(kept) or type(exc).__name__


def is_interrupt(exc: BaseException) -> bool:
    """Whether `exc` is DuckDB's answer to Ctrl-C (SIGINT) arriving while a query ran: DuckDB catches the
    signal itself and raises RuntimeError("Query interrupted") (InterruptException from conn.interrupt()), not
    KeyboardInterrupt, so a handler of failed steps or files would otherwise take it for one and go on."""
    import duckdb

    interrupt_type = getattr(duckdb, "InterruptException", None)
    if interrupt_type is not None and isinstance(exc, interrupt_type):
        return True
    return isinstance(exc, RuntimeError) and str(exc).startswith("Query interrupted")

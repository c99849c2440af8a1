"""Team mode: the benchmark schema on DuckLake (catalog in PostgreSQL or a local file, data as Parquet).

Only `benchmark_db.connection.connect` calls this. The DuckLake and PostgreSQL extensions come from the
PyPI wheels `duckdb-extension-ducklake` and `duckdb-extension-postgres` (the `team` extra), installed from
their package files into an extension directory of the project's own, never downloaded at run time.
DuckLake has no primary keys, indexes or sequences; the schema's ids are already natural-key hashes, so the
same tables work once those clauses are left out.
"""
from __future__ import annotations

import contextlib
import importlib
import os
import re
import shlex
import time
from pathlib import Path

import duckdb

from benchmark_db import schema
from benchmark_db.errors import DatabaseLockedError, DBConnectionError, SchemaError, UsageError

LAKE_ALIAS = "lake"
# libpq waits for an unresponsive host for as long as the TCP stack lets it (minutes, or for ever on a port
# that accepts and never answers); every catalog connection gets this bound unless the string sets its own
CONNECT_TIMEOUT_S = 10
# a libpq value is quoted ('open sesame') or runs to the first unescaped blank (pa\ ss is "pa ss")
_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|(?:\\.?|[^\s\\])+)", re.I)
_URI_PASSWORD = re.compile(r"(postgres(?:ql)?://[^:/@\s]*:)([^@\s]*)(@)", re.I)
_EXTENSIONS = {"ducklake": "duckdb_extension_ducklake", "postgres": "duckdb_extension_postgres"}


def extension_directory() -> Path:
    """Where installed extensions live: the project's own state folder, not the user's ~/.duckdb."""
    configured = os.environ.get("BENCHMARK_DB_STATE_DIR")
    base = Path(configured) if configured else Path(__file__).resolve().parents[1] / ".state"
    return base / "duckdb_extensions"


def extension_file(name: str) -> Path:
    package = _EXTENSIONS[name]
    try:
        module = importlib.import_module(package)
    except ImportError as exc:
        raise DBConnectionError(
            f"the DuckDB {name} extension is not installed",
            f"install it with: pip install 'benchmark-db[team]' (or pip install {package.replace('_', '-')}==1.5.5)",
        ) from exc
    files = sorted(Path(module.__file__).parent.glob(f"extensions/v{duckdb.__version__}/*.duckdb_extension"))
    if not files:
        raise DBConnectionError(
            f"{package} holds no {name} extension built for DuckDB {duckdb.__version__}",
            f"install the matching wheel: pip install {package.replace('_', '-')}=={duckdb.__version__}")
    return files[0]


def _load_extensions(conn, names) -> None:
    for name in names:
        conn.execute(f"INSTALL '{extension_file(name)}'")
        conn.execute(f"LOAD {name}")


def redact(text: str) -> str:
    """`text` with every PostgreSQL password (`password=...`, `postgresql://user:...@`) replaced by ***."""
    return _URI_PASSWORD.sub(r"\1***\3", _PASSWORD.sub(r"\1***", text))


def lake_lock_timeout() -> float:
    """$BENCHMARK_DB_LAKE_LOCK_TIMEOUT in seconds (default WRITE_LOCK_TIMEOUT_S); "abc" ended an ingest or merge
    into a lake in "unexpected ValueError", and nan or -1 never waited."""
    import argparse

    from benchmark_db.cli import non_negative_float

    text = os.environ.get("BENCHMARK_DB_LAKE_LOCK_TIMEOUT")
    if not text:
        return WRITE_LOCK_TIMEOUT_S
    try:
        return non_negative_float(text)
    except argparse.ArgumentTypeError:
        raise UsageError(f"$BENCHMARK_DB_LAKE_LOCK_TIMEOUT must be a number of seconds, 0 or more, not {text!r}",
                         "e.g. export BENCHMARK_DB_LAKE_LOCK_TIMEOUT=600, or unset it for the default") from None


def with_connect_timeout(spec: str) -> str:
    """The `postgres:...` catalog string with connect_timeout added when it names none."""
    dsn = spec[len("postgres:"):]
    if "connect_timeout" in dsn:
        return spec
    seconds = os.environ.get("BENCHMARK_DB_CONNECT_TIMEOUT") or str(CONNECT_TIMEOUT_S)
    if re.match(r"postgres(ql)?://", dsn):
        return f"{spec}{'&' if '?' in dsn else '?'}connect_timeout={seconds}"
    return f"{spec} connect_timeout={seconds}"


# libpq's reason -> what to do about it
_CONNECT_HINTS = (
    ("password authentication failed", "check the user and password (password=... in the string or ~/.pgpass)"),
    ("no password supplied", "give the password (password=... in the string, $PGPASSWORD or ~/.pgpass)"),
    ("does not exist", "check dbname= and user=, or create the database first (createdb NAME)"),
    ("timeout expired", "check host= and port=: the server did not answer within the connect_timeout"),
    ("could not translate host name", "check host=: the name does not resolve"),
    ("connection refused", "check host= and port= and that the PostgreSQL server is running"),
    ("missing \"=\"", "write the catalog as ducklake:postgres:dbname=NAME host=HOST user=USER"),
)


def _create_command(target: str) -> str:
    return (f"python scripts/create_benchmark_schema.py --output {shlex.quote(redact(target))}"
            + (" --data-path DIR_OR_URL" if target.startswith("ducklake:postgres:") else ""))


def _attach_error(target: str, exc: Exception) -> DBConnectionError:
    """One line naming what went wrong with the lake, without the password, and what to do."""
    text = " ".join(str(exc).split())
    if "creating a new DuckLake is explicitly disabled" in text:  # a reader on a catalog with no lake in it
        return DBConnectionError(f"the DuckLake catalog {redact(target)} holds no lake yet",
                                 f"create it with: {_create_command(target)}")
    moved = re.search(r'DATA_PATH parameter "(.*?)" does not match existing data path in the catalog "(.*?)"', text)
    if moved:  # DuckLake's own advice (OVERRIDE_DATA_PATH) is no option of these tools
        return DBConnectionError(
            f"the DuckLake {redact(target)} keeps its data in {moved.group(2)}, not in {moved.group(1)}",
            f"pass --data-path {shlex.quote(moved.group(2))}, or leave out --data-path and unset "
            "$BENCHMARK_DB_DATA_PATH: an existing lake knows where its data is")
    if _is_creation_race(exc):
        return DBConnectionError(f"cannot attach DuckLake {redact(target)}: another process was creating it at "
                                 "the same moment", "re-run: the lake exists now")
    if "DATA_PATH" in text:
        return DBConnectionError(f"cannot attach DuckLake {redact(target)}: {redact(text)}",
                                 "give the data location with --data-path or $BENCHMARK_DB_DATA_PATH")
    reason = re.search(r'Unable to connect to Postgres at ".*?": (.*)', text)
    if reason:
        why = re.sub(r"^connection to server at .*? failed: (FATAL: )?", "", reason.group(1)).strip()
        hint = next((h for key, h in _CONNECT_HINTS if key in why.lower()),
                    "check the catalog connection string and that the PostgreSQL server is reachable")
        return DBConnectionError(f"cannot connect to the DuckLake catalog {redact(target)}: {redact(why)}", hint)
    return DBConnectionError(f"cannot attach DuckLake {redact(target)}: {redact(text)}",
                             "check the catalog connection string and that the PostgreSQL server is reachable")


# Every writer of one PostgreSQL-catalogued lake takes this advisory lock around check-then-insert work
WRITE_LOCK_KEY = 0x62656E6368  # "bench"
WRITE_LOCK_TIMEOUT_S = 600.0
_held_write_locks: set[int] = set()  # ids of connections whose process holds the lock now


def _catalog_dsn(conn) -> str | None:
    """The PostgreSQL connection string of the lake `conn` has attached, or None (a file, a local catalog)."""
    try:
        row = conn.execute("SELECT path FROM duckdb_databases() WHERE database_name = ? AND type = 'ducklake'",
                           [LAKE_ALIAS]).fetchone()
    except duckdb.Error:
        return None
    if not row or not row[0] or not row[0].startswith("postgres:"):
        return None
    return row[0][len("postgres:"):]


@contextlib.contextmanager
def write_lock(conn, timeout: float | None = None):
    """Hold the lake's writer lock for the block; a no-op unless `conn` is on a PostgreSQL-catalogued lake.

    DuckLake has no primary keys: two processes that each check "is this file, run, row already stored?" and
    then insert it both see "no" and both insert, and a lake that took the same file twice at the same moment
    holds every row twice. Work that checks before it writes (an ingest run, a merge) therefore takes a
    PostgreSQL advisory lock first, on a connection of its own; the server drops it if the process dies.
    So does a write of rows that may replace stored ones (a named run's results: see
    BenchmarkDB.insert_many, through LakeWriteLock); appends of rows new by construction never take it and
    still commit concurrently.
    """
    lock = LakeWriteLock(conn)
    try:
        with lock.held(timeout):
            yield
    finally:
        lock.close()


class LakeWriteLock:
    """`write_lock` for a writer that takes it often (the ORM's replacing writes): the catalog connection that
    holds the lock is opened on first use and kept until `close()`, since opening one (load the extension,
    attach the catalog) costs a few hundred milliseconds and taking the lock on it a few."""

    def __init__(self, conn):
        self.conn = conn
        self.dsn = _catalog_dsn(conn)
        self._holder = None

    @contextlib.contextmanager
    def held(self, timeout: float | None = None):
        if self.dsn is None or id(self.conn) in _held_write_locks:  # a merge inside an ingest already holds it
            yield
            return
        seconds = lake_lock_timeout() if timeout is None else timeout
        fresh = self._holder is None
        try:
            try:
                self._acquire(seconds)
            except duckdb.Error:
                if fresh:
                    raise
                self.close()  # the kept session ended (the server restarted, an idle timeout): one new try
                self._acquire(seconds)
        except duckdb.Error as exc:
            self.close()
            raise _attach_error(f"ducklake:postgres:{self.dsn}", exc) from exc
        except BaseException:
            self.close()
            raise
        _held_write_locks.add(id(self.conn))
        try:
            yield
        finally:
            _held_write_locks.discard(id(self.conn))
            try:
                self._holder.execute(f"CALL postgres_execute('lake_lock', "
                                     f"'SELECT pg_advisory_unlock({WRITE_LOCK_KEY})')")
                self._holder.execute("COMMIT")
            except duckdb.Error:
                self.close()  # closing the connection ends the session, and the lock with it

    def _acquire(self, seconds: float) -> None:
        if self._holder is None:
            holder = duckdb.connect(":memory:", config={"extension_directory": str(extension_directory()),
                                                        "autoinstall_known_extensions": False,
                                                        "autoload_known_extensions": False})
            try:
                _load_extensions(holder, ["postgres"])
                holder.execute(f"ATTACH '{self.dsn.replace(chr(39), chr(39) * 2)}' AS lake_lock (TYPE postgres)")
            except BaseException:
                holder.close()
                raise
            self._holder = holder
        self._holder.execute("BEGIN")  # one PostgreSQL session for the lock and its release
        deadline = time.monotonic() + seconds
        while not self._holder.execute(f"SELECT * FROM postgres_query('lake_lock', "
                                       f"'SELECT pg_try_advisory_lock({WRITE_LOCK_KEY})')").fetchone()[0]:
            if time.monotonic() >= deadline:
                self._holder.execute("ROLLBACK")
                raise DatabaseLockedError(f"another writer has held the lake's write lock for over {seconds:g} s",
                                          "retry when that ingest or merge ends, or raise "
                                          "$BENCHMARK_DB_LAKE_LOCK_TIMEOUT")
            time.sleep(0.2)

    def close(self) -> None:
        if self._holder is not None:
            with contextlib.suppress(duckdb.Error):
                self._holder.close()
            self._holder = None


def lake_statement(statement: str) -> str | None:
    """A schema statement as DuckLake accepts it: no primary keys, no indexes, no column compression."""
    if re.match(r"\s*CREATE\s+INDEX", statement, re.I):
        return None
    return re.sub(r"\s+PRIMARY KEY", "", schema.without_zstd(statement))


def _is_lock_error(exc: Exception) -> bool:
    text = str(exc).lower()
    return "could not set lock" in text or ("lock" in text and "conflicting" in text)


def _is_creation_race(exc: Exception) -> bool:
    """Whether ATTACH failed because another process created the same new DuckLake catalog at the same moment
    (both found no catalog; PostgreSQL let the first CREATE TABLE through and refused the second)."""
    text = str(exc)
    return "Failed to initialize DuckLake" in text and ("duplicate key value" in text or "already exists" in text)


def _is_transaction_conflict(exc: Exception) -> bool:
    return "transaction conflict" in str(exc).lower()


def _attach(conn, sql: str, target: str, lock_timeout: float) -> None:
    """ATTACH the lake; a local catalog file another process holds is waited for up to `lock_timeout`."""
    deadline = time.monotonic() + max(lock_timeout, 0.0)
    delay = 0.05
    creation_retries = 5
    while True:
        try:
            conn.execute(sql)
            return
        except duckdb.Error as exc:
            if _is_creation_race(exc) and creation_retries > 0:
                # the other process's catalog is committed by now: this ATTACH finds and opens it
                creation_retries -= 1
                time.sleep(0.2)
                continue
            if not _is_lock_error(exc):
                raise
            if time.monotonic() >= deadline:
                text = " ".join(str(exc).split())
                holder = re.search(r"Conflicting lock is held in .*?\)", text)
                raise DatabaseLockedError(
                    f"the DuckLake catalog {target} is locked by another process"
                    + (f" ({holder.group(0)})" if holder else ""),
                    f"waited {lock_timeout:g} s; a local catalog file has one process at a time: retry when that "
                    "process ends, raise --lock-timeout, or keep the catalog in PostgreSQL for many writers",
                ) from exc
            time.sleep(min(delay, max(deadline - time.monotonic(), 0.01)))
            delay = min(delay * 2, 1.0)


def connect_lake(target: str, *, read_only: bool, create: bool, migrate: bool, data_path: str | None,
                 lock_timeout: float = 0.0):
    """Open the lake named by `target` (`ducklake:postgres:...` or `ducklake:PATH`) as the default catalog."""
    spec = target[len("ducklake:"):]
    uses_postgres = spec.startswith("postgres:")
    if not uses_postgres and not create and not Path(spec).exists():
        raise DBConnectionError(f"DuckLake catalog {spec} does not exist",
                                f"create it with: python scripts/create_benchmark_schema.py --output {target}")
    if not uses_postgres and create and not read_only:
        # a local catalog in a folder not made yet: created as a .duckdb file's folder is (DuckDB would say
        # only "No such file or directory", and the hint would send the user to PostgreSQL)
        try:
            Path(spec).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DBConnectionError(f"cannot create the folder of DuckLake catalog {spec}: {exc.strerror or exc}",
                                    "pass a catalog path in a writable folder") from None
    config = {"extension_directory": str(extension_directory()), "autoinstall_known_extensions": False,
              "autoload_known_extensions": False}
    extension_directory().mkdir(parents=True, exist_ok=True)
    conn = duckdb.connect(":memory:", config=config)
    conn.execute("SET enable_progress_bar = false")
    try:
        _load_extensions(conn, ["ducklake", "postgres"] if uses_postgres else ["ducklake"])
        options = []
        if data_path:
            if "://" not in data_path and not read_only:  # a local folder; object storage is DuckDB's to reach
                Path(data_path).mkdir(parents=True, exist_ok=True)
            options.append(f"DATA_PATH '{data_path.replace(chr(39), chr(39) * 2)}'")
        if read_only:
            options.append("READ_ONLY")
        clause = f" ({', '.join(options)})" if options else ""
        attach = f"ducklake:{with_connect_timeout(spec)}" if uses_postgres else target
        escaped = attach.replace("'", "''")
        _attach(conn, f"ATTACH '{escaped}' AS {LAKE_ALIAS}{clause}", target, lock_timeout)
        conn.execute(f"USE {LAKE_ALIAS}")
    except DBConnectionError:
        conn.close()
        raise
    except duckdb.Error as exc:
        conn.close()
        raise _attach_error(target, exc) from exc
    if migrate:
        try:
            version = schema.current_version(conn)
            schema.check_not_newer(version)
            if version < schema.SCHEMA_VERSION:
                if read_only:
                    raise SchemaError(f"the lake {redact(target)} is at schema version {version}",
                                      f"migrate it once with: python scripts/create_benchmark_schema.py "
                                      f"--output {redact(target)}")
                # under the writers' lock: two writers on a new lake both found version 0, and the second one's
                # CREATE TABLE failed with a transaction conflict. Now the second waits, then finds the schema
                # current (migrate reads the version again) and applies nothing.
                with write_lock(conn):
                    schema.migrate(conn, statement_filter=lake_statement)
        except (SchemaError, DBConnectionError):
            conn.close()
            raise
        except duckdb.Error as exc:
            conn.close()
            if _is_transaction_conflict(exc):  # an older toolkit, which migrates without the lock, at work
                raise DBConnectionError(f"cannot migrate the DuckLake {redact(target)}: another process changed "
                                        "its schema at the same moment", "re-run: the lake is current now") from exc
            raise _attach_error(target, exc) from exc
    return conn

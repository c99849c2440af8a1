"""The read-only SQL guard behind `BenchmarkDBAPI.query()` and `POST /query`.

It owns three layers, each enough on its own for most attacks and together for all we know of:

1. DuckDB's own parser (`duckdb.extract_statements`, `duckdb.tokenize`, `json_serialize_sql`): exactly one
   statement, of type SELECT, whose first keyword is SELECT/WITH/FROM/VALUES/TABLE/DESCRIBE/SHOW/SUMMARIZE
   or `(`, whose table functions are on an allow list, which calls no function that shows the server's
   configuration (`current_setting`, ...) and whose table names are not file paths. PRAGMA
   (which DuckDB rewrites into SELECTs), SET, ATTACH, COPY, INSTALL/LOAD, CALL, EXPLAIN and every write are
   refused before anything runs.
2. The connection: the file is opened read-only with `enable_external_access = false` (no file, network or
   extension access from SQL: `read_csv`, `read_text`, `glob`, `ATTACH`, `COPY` all fail), autoloading of
   extensions off and the configuration locked, so a query cannot turn any of it back on. The one exception
   is the archive (`--archive-data`): the Parquet files that `archived_partitions` names, and no others, are
   on DuckDB's `allowed_paths`, so that the fact tables and views include archived rows as they do for
   `benchmark_db_query.py --sql`.
3. Bounds: parameters are bound by DuckDB (never formatted into the text), the statement is wrapped as
   `SELECT * FROM (...) LIMIT max_rows + 1` so a huge result is refused without being built, a timer
   interrupts a query that runs past its time limit, and the instance has a memory limit.

It must not open the database any other way than through `benchmark_db.connection.connect`, and it imports
nothing heavier than duckdb (pandas only when a DataFrame is asked for).
"""
from __future__ import annotations

import contextlib
import math
import numbers
import threading
from dataclasses import dataclass
from typing import Any

import duckdb

from benchmark_db.connection import DEFAULT_LOCK_TIMEOUT, connect, is_lake
from benchmark_db.errors import DataConversionError, QueryError, one_line

DEFAULT_MAX_ROWS = 10_000
DEFAULT_TIMEOUT_S = 10.0
MAX_SQL_CHARS = 100_000
MAX_PARAMS = 1_000
MAX_RESULT_CHARS = 50_000_000  # a rough bound on the text a result may carry (about 50 MB of JSON)
ALLOWED_FIRST_WORDS = ("SELECT", "WITH", "FROM", "VALUES", "TABLE", "DESCRIBE", "SHOW", "SUMMARIZE", "(")

# The configuration of the connection a query runs on; `open_query_connection` then locks it, so that no
# query can undo it (for a file, external access is switched off after opening: see `_connect_for_queries`).
QUERY_CONFIG = {
    "enable_external_access": False,
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "memory_limit": "1GB",
}


class QueryRefused(QueryError):
    """A query that is not allowed or failed; `reason` says which kind (the REST server maps it to a status).

    reasons: `not_read_only` (refused before running), `bad_params`, `sql_error` (DuckDB rejected it, e.g. an
    unknown column or a file function), `timeout`, `too_large` (more rows or text than allowed).
    """

    def __init__(self, message: str, hint: str | None = None, reason: str = "not_read_only"):
        super().__init__(message, hint)
        self.reason = reason


@dataclass
class QueryResult:
    columns: list[str]
    types: list[str]
    rows: list[tuple]


def _first_word(sql: str, position: int) -> str:
    if sql[position] == "(":
        return "("
    end = position
    while end < len(sql) and (sql[end].isalnum() or sql[end] == "_"):
        end += 1
    return sql[position:end].upper()


def check_readonly_sql(sql: Any) -> str:
    """The one read-only statement in `sql`, without its trailing `;`; QueryRefused for anything else."""
    text = check_statement(sql)
    _check_sources(text)
    return text


def check_statement(sql: Any, write_hint: str = "use SELECT or WITH ... SELECT; writes go through the store_* "
                                                 "calls and POST endpoints") -> str:
    """The first layer without the source checks: `sql` is exactly one SELECT-type statement (no write,
    COPY, EXPORT, ATTACH, INSTALL/LOAD, SET, PRAGMA or CALL); returned without its trailing `;`. What
    `benchmark_db_query.py --sql` enforces: a local user may read files, but --sql never writes anything."""
    if not isinstance(sql, str):
        raise QueryRefused("the SQL must be a string", "send {\"sql\": \"SELECT ...\"}")
    if len(sql) > MAX_SQL_CHARS:
        raise QueryRefused(f"the SQL is {len(sql):,} characters long, more than {MAX_SQL_CHARS:,}",
                           "send a shorter query")
    if "\x00" in sql:
        raise QueryRefused("the SQL contains a NUL character", "remove it")
    try:
        statements = duckdb.extract_statements(sql)
        tokens = duckdb.tokenize(sql)
    except duckdb.Error as exc:
        raise QueryRefused(f"the SQL does not parse: {one_line(exc)}", "fix the syntax",
                           reason="sql_error") from exc
    if not statements or not tokens:
        raise QueryRefused("the SQL holds no statement", "send one SELECT statement")
    first = _first_word(sql, tokens[0][0])
    if first and first not in ALLOWED_FIRST_WORDS:  # before the count: DuckDB makes a PIVOT two statements
        raise QueryRefused(f"only read-only SELECT queries are allowed, not {first}", write_hint)
    if len(statements) != 1:
        raise QueryRefused(f"the SQL holds {len(statements)} statements; only one is allowed",
                           "send one SELECT statement without ';' between statements")
    statement = statements[0]
    if statement.type != duckdb.StatementType.SELECT or first not in ALLOWED_FIRST_WORDS:
        kind = first or statement.type.name
        raise QueryRefused(f"only read-only SELECT queries are allowed, not {kind}", write_hint)
    text = statement.query.strip()
    while text.endswith(";"):
        text = text[:-1].rstrip()
    return text


# Table functions a query may call. Everything else is refused before it runs: the functions that read
# files (read_*, glob, sniff_csv, parquet_*) and query()/query_table(), which would run SQL unchecked. The
# connection's enable_external_access=false stops them too, except on the database file and its WAL,
# which DuckDB always allows; this list closes that gap.
ALLOWED_TABLE_FUNCTIONS = frozenset({
    "range", "generate_series", "unnest", "repeat", "repeat_row", "json_each", "json_tree",
    "duckdb_tables", "duckdb_views", "duckdb_columns", "duckdb_schemas", "duckdb_types", "duckdb_constraints",
    "duckdb_indexes", "duckdb_functions", "duckdb_keywords", "duckdb_sequences", "pragma_table_info",
    "pragma_show", "pragma_version", "pragma_storage_info", "pragma_metadata_info", "pragma_platform",
})
# Scalar functions and system views a query may not use: they show the server's configuration, which holds
# file paths (current_setting('temp_directory') is the database path plus ".tmp"), as duckdb_databases and
# duckdb_settings() do.
REFUSED_FUNCTIONS = frozenset({"current_setting", "getvariable"})
REFUSED_VIEWS = frozenset({"pg_settings"})
_parser_lock = threading.Lock()
_parser_conn = None


def _table_sources(node, found: list) -> None:
    if isinstance(node, dict):
        kind = node.get("type")
        if kind == "TABLE_FUNCTION":
            found.append(("function", str((node.get("function") or {}).get("function_name", "")).lower()))
        elif node.get("class") == "FUNCTION":  # a scalar or aggregate call (a table function's own too)
            found.append(("scalar", str(node.get("function_name", "")).lower()))
        elif kind == "BASE_TABLE":
            found.append(("table", str(node.get("table_name", ""))))
        for value in node.values():
            _table_sources(value, found)
    elif isinstance(node, list):
        for value in node:
            _table_sources(value, found)


def _check_sources(statement: str) -> None:
    """Refuse table functions outside the allow list and table names that DuckDB would read as files."""
    global _parser_conn
    import json

    with _parser_lock:
        if _parser_conn is None:
            _parser_conn = duckdb.connect(":memory:", config={"enable_external_access": False})
        tree = json.loads(_parser_conn.execute("SELECT json_serialize_sql($1)", [statement]).fetchone()[0])
    if tree.get("error"):
        raise QueryRefused(f"the query cannot be checked: {tree.get('error_message', 'unsupported statement')}",
                           "write it as a plain SELECT (PIVOT and similar shorthands are not accepted)")
    found: list = []
    _table_sources(tree, found)
    for kind, name in found:
        if kind == "scalar" and name in REFUSED_FUNCTIONS:
            raise QueryRefused(f"the function {name}() is not allowed here: it shows the server's configuration",
                               "query the database's tables and views")
        if kind == "table" and name.lower() in REFUSED_VIEWS:
            raise QueryRefused(f"the system view {name} is not available here: it shows the server's "
                               "configuration", "query the database's tables and views")
        if kind == "function" and name not in ALLOWED_TABLE_FUNCTIONS:
            raise QueryRefused(f"the table function {name}() is not allowed here",
                               "query the database's tables and views; files cannot be read through /query")
        if kind == "table" and any(c in name for c in "/\\.:~"):
            raise QueryRefused(f"{name!r} is not a table of the database", "files cannot be read through /query")
        # system views such as duckdb_databases and pragma_database_list show the server's file paths
        if (kind == "table" and name.lower().startswith(("duckdb_", "pragma_"))
                and name.lower() not in ALLOWED_TABLE_FUNCTIONS):
            raise QueryRefused(f"the system view {name} is not available here",
                               "use information_schema or duckdb_tables()/duckdb_columns()")


def check_params(params: Any) -> list | dict | None:
    """Parameters for `?`/`$1` (a list) or `$name` (a dict) placeholders; only scalar values."""
    if params is None:
        return None
    if isinstance(params, tuple):
        params = list(params)
    if isinstance(params, dict):
        values = list(params.values())
        for key in params:
            if not isinstance(key, str) or not key.isidentifier():
                raise QueryRefused(f"parameter name {key!r} is not a plain identifier",
                                   "name parameters like $model and pass {\"model\": ...}", reason="bad_params")
    elif isinstance(params, list):
        values = params
    else:
        raise QueryRefused("params must be a list (for ? or $1 placeholders) or an object (for $name)",
                           "e.g. \"params\": [\"bert-base-uncased\"]", reason="bad_params")
    if len(values) > MAX_PARAMS:
        raise QueryRefused(f"{len(values)} parameters is more than {MAX_PARAMS}", "send fewer parameters",
                           reason="bad_params")
    for value in values:
        if value is not None and not isinstance(value, str | int | float | bool):
            raise QueryRefused(f"parameter {value!r} is not a string, number, boolean or null",
                               "bind scalar values only", reason="bad_params")
        if isinstance(value, float) and not math.isfinite(value):
            raise QueryRefused("parameters must be finite numbers", "replace NaN/Infinity", reason="bad_params")
        if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**63:
            raise QueryRefused(f"integer parameter {value} does not fit in 64 bits", "send a smaller number",
                               reason="bad_params")
        if isinstance(value, str) and "\x00" in value:
            raise QueryRefused("a parameter contains a NUL character", "remove it", reason="bad_params")
        if isinstance(value, str) and not value.isascii():
            try:  # a lone surrogate ("\ud800" in JSON) is no UTF-8: DuckDB's binding raised a RuntimeError (500)
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise QueryRefused("a parameter is not valid Unicode text (a lone surrogate)", "send UTF-8 text",
                                   reason="bad_params") from None
    return params


def check_max_rows(value: Any, name: str = "max_rows") -> int:
    """`value` as a row limit: a whole number >= 1 (it becomes `LIMIT value + 1`, a BIGINT); DB003 naming
    `name` otherwise. 0 or -1 meant no limit at all ("returns more than -1 rows")."""
    if (isinstance(value, bool) or not isinstance(value, numbers.Real)
            or not (isinstance(value, numbers.Integral) or (math.isfinite(value) and float(value).is_integer()))
            or not 1 <= value < 2**63 - 1):
        raise DataConversionError(f"{name} must be a whole number of rows >= 1, not {value!r}",
                                  f"leave {name} out (None) for the default of {DEFAULT_MAX_ROWS:,}")
    return int(value)


def check_timeout(value: Any, name: str = "timeout_s") -> float:
    """`value` as a time limit in seconds: a finite number > 0 that a timer can wait (threading.TIMEOUT_MAX);
    DB003 naming `name` otherwise. 0 or NaN meant no limit at all, inf a traceback from the timer's thread."""
    if (isinstance(value, bool) or not isinstance(value, numbers.Real)
            or not 0 < value <= threading.TIMEOUT_MAX):  # NaN fails every comparison
        raise DataConversionError(f"{name} must be a number of seconds > 0 (at most {threading.TIMEOUT_MAX:,.0f}), "
                                  f"not {value!r}",
                                  f"leave {name} out (None) for the default of {DEFAULT_TIMEOUT_S:g} s")
    return float(value)


def _text_size(value: Any) -> int:
    if isinstance(value, str | bytes):
        return len(value)
    if isinstance(value, list | tuple):
        return sum(_text_size(v) for v in value) + len(value)
    if isinstance(value, dict):
        return sum(_text_size(k) + _text_size(v) for k, v in value.items())
    return 8


def execute_readonly(conn, sql: str, params=None, *, max_rows: int = DEFAULT_MAX_ROWS,
                     timeout_s: float = DEFAULT_TIMEOUT_S, as_dataframe: bool = False):
    """Run a checked read-only query on `conn` within the bounds; a QueryResult, or a DataFrame if asked.

    `conn` should be a connection opened with QUERY_CONFIG (see `open_query_connection`); the statement
    checks here are the first layer, the connection's configuration the second.
    """
    max_rows = check_max_rows(max_rows)
    timeout_s = check_timeout(timeout_s)
    statement = check_readonly_sql(sql)
    params = check_params(params)
    wrapped = f"SELECT * FROM (\n{statement}\n) AS readonly_query LIMIT {max_rows + 1}"
    # the wrapper must not change what is allowed: re-check it as one SELECT
    wrapped_statements = duckdb.extract_statements(wrapped)
    if len(wrapped_statements) != 1 or wrapped_statements[0].type != duckdb.StatementType.SELECT:
        raise QueryRefused("the SQL does not stand alone as one SELECT", "remove unbalanced parentheses or comments")
    timer = threading.Timer(timeout_s, conn.interrupt)
    timer.daemon = True
    timer.start()
    try:
        try:
            fetched = _fetch(conn, wrapped, params, as_dataframe)
        except duckdb.Error:
            raise
        except Exception:  # noqa: BLE001 - a value Python cannot hold (a date past year 9999): as text instead
            fetched = _fetch_with_text_columns(conn, wrapped, params, as_dataframe)
        if as_dataframe:
            frame = fetched
            rows_count = len(frame)
        else:
            columns, types, rows = fetched
            rows_count = len(rows)
    except duckdb.InterruptException as exc:
        raise QueryRefused(f"the query ran longer than its time limit of {timeout_s:g} s",
                           "narrow it with WHERE or aggregate first", reason="timeout") from exc
    except duckdb.OutOfMemoryException as exc:
        raise QueryRefused(f"the query needs more memory than allowed ({one_line(exc)})",
                           "select fewer or smaller values", reason="too_large") from exc
    except duckdb.Error as exc:
        parameters = isinstance(exc, duckdb.InvalidInputException) and "parameter" in one_line(exc).lower()
        reason = "bad_params" if parameters else "sql_error"
        hint = ("pass one value in params per ? placeholder (or one per $name)" if parameters else
                "check table and column names (SQL cannot read files or the network here)")
        raise QueryRefused(f"the query failed: {one_line(exc)}", hint, reason=reason) from exc
    finally:
        timer.cancel()
    if rows_count > max_rows:
        raise QueryRefused(f"the query returns more than {max_rows:,} rows",
                           "add LIMIT/OFFSET and page, or aggregate", reason="too_large")
    if as_dataframe:
        return frame
    if sum(_text_size(row) for row in rows) > MAX_RESULT_CHARS:
        raise QueryRefused("the result is larger than the server returns", "select fewer or smaller columns",
                           reason="too_large")
    return QueryResult(columns, types, rows)


def _fetch(conn, sql: str, params, as_dataframe: bool):
    result = conn.execute(sql, params) if params is not None else conn.execute(sql)
    if as_dataframe:
        return result.df()
    columns = [d[0] for d in result.description]
    types = [str(d[1]) for d in result.description]
    table = result.to_arrow_table()  # Arrow converts every type (time zones included) without pytz
    data = [column.to_pylist() for column in table.columns]
    return columns, types, list(zip(*data)) if data else []


def _unconvertible_columns(conn, sql: str, params) -> tuple[list[str], set[int]]:
    """The column names of `sql` and the positions of the columns whose values Python cannot hold."""
    result = conn.execute(sql, params) if params is not None else conn.execute(sql)
    names = [d[0] for d in result.description]
    try:
        table = result.to_arrow_table()
    except duckdb.Error:
        raise
    except Exception:  # noqa: BLE001 - not even Arrow holds it: every column as text
        return names, set(range(len(names)))
    bad = set()
    for position, column in enumerate(table.columns):
        try:
            column.to_pylist()
        except Exception:  # noqa: BLE001 - this column's values go as text
            bad.add(position)
    return names, bad


def _fetch_with_text_columns(conn, sql: str, params, as_dataframe: bool):
    """_fetch of `sql` with only the columns Python cannot hold cast to VARCHAR (their type then reads
    VARCHAR); every column as text if that is still not enough."""
    names, bad = _unconvertible_columns(conn, sql, params)
    if bad and len(bad) < len(names):
        select = ", ".join(f"CAST(#{i + 1} AS VARCHAR) AS {_quoted(name)}" if i in bad else
                           f"#{i + 1} AS {_quoted(name)}" for i, name in enumerate(names))
        try:
            return _fetch(conn, f"SELECT {select} FROM (\n{sql}\n) AS readonly_text", params, as_dataframe)
        except duckdb.Error:
            raise
        except Exception:  # noqa: BLE001 - another conversion fails (a DataFrame's): every column as text
            pass
    return _fetch(conn, f"SELECT COLUMNS(*)::VARCHAR FROM (\n{sql}\n) AS readonly_text", params, as_dataframe)


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@contextlib.contextmanager
def open_query_connection(db, *, lock_timeout: float = DEFAULT_LOCK_TIMEOUT):
    """A read-only connection to `db` with file, network and extension access off (but for the database's
    archived Parquet files); closed afterwards."""
    conn = _connect_for_queries(db, lock_timeout)
    try:
        conn.execute("SET lock_configuration = true")
        yield conn
    finally:
        conn.close()


def _connect_for_queries(db, lock_timeout: float):
    """Open `db` read-only and switch external access off, leaving allowed only the archived files.

    DuckDB takes `allowed_paths` only while external access is on, and the paths are in the database, so the
    file is opened with it on: `connect` then makes the TEMP views that show the archive under the tables'
    own names (as for `--sql`), and no SQL of the caller's runs before it is switched off here.
    """
    if is_lake(db):  # a lake reads its own data files; it gets no archive views
        return connect(db, read_only=True, lock_timeout=lock_timeout, config=dict(QUERY_CONFIG))
    from benchmark_db.maintenance import archive

    config = {key: value for key, value in QUERY_CONFIG.items() if key != "enable_external_access"}
    conn = connect(db, read_only=True, lock_timeout=lock_timeout, config=config)
    try:
        paths = sorted({p["path"] for p in archive.archive_partitions(conn)})
        if paths:
            conn.execute(f"SET allowed_paths = [{', '.join(_string_literal(p) for p in paths)}]")
        conn.execute("SET enable_external_access = false")
        if conn.execute("SELECT current_setting('enable_external_access')").fetchone()[0] is not False:
            raise QueryRefused("external access could not be switched off for the query",
                               "report this; the query was not run", reason="sql_error")
    except BaseException:
        conn.close()
        raise
    return conn


def _string_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def run_readonly_query(db, sql: str, params=None, *, max_rows: int = DEFAULT_MAX_ROWS,
                       timeout_s: float = DEFAULT_TIMEOUT_S, lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
                       as_dataframe: bool = False):
    """Check, open read-only with external access off, run within bounds, close. See `execute_readonly`."""
    check_max_rows(max_rows)  # refuse before touching the file
    check_timeout(timeout_s)
    check_readonly_sql(sql)
    check_params(params)
    with open_query_connection(db, lock_timeout=lock_timeout) as conn:
        return execute_readonly(conn, sql, params, max_rows=max_rows, timeout_s=timeout_s,
                                as_dataframe=as_dataframe)

"""Merging one benchmark database (or a Parquet export of one table) into another, by row key.

Ids are hashes of natural keys (`benchmark_db.identity`), so the same model, run or result has the same id in
every database that holds it; databases written by parallel CI jobs therefore merge without id clashes.
Fact rows already present are kept as they are (only keys the target lacks are inserted, by an anti-join:
most tables have no primary key since schema version 4, see `schema.ROW_KEYS`), and dimension rows
(models, hardware platforms) only gain attributes the target lacks, so merging the same source twice adds
nothing. A source row whose id is stored with other values (an artifact edited, or written by a converter
that maps a file differently) is not merged either, but counted and named: a warning on the log, and
`MergeResult.differing` for the caller. Each merge runs in one transaction. This module never opens a database file for writing itself:
it works on the caller's connection (from `benchmark_db.connection`) and ATTACHes the source read-only.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

from benchmark_db import schema
from benchmark_db.connection import transaction
from benchmark_db.errors import DataConversionError, DBConnectionError, SchemaError, one_line
from benchmark_db.lake import write_lock

# Tables merged, dimensions first. schema_migrations is the target's own; archived_partitions names files
# that live beside the source database, not beside the target.
MERGED_TABLES = ("models", "hardware_platforms", "test_runs", "performance_results", "hardware_compatibility",
                 "integration_test_results", "web_platform_results", "compression_dictionaries",
                 "source_documents", "ingested_files")
DIMENSION_TABLES = ("models", "hardware_platforms")
_SOURCE_ALIAS = "merge_source"
# Tables whose rows, stored with the same id and other values, are counted as differing. Bookkeeping tables
# are left out: an ingest-log row of one path differs between jobs by nature (when, archived where), and a
# source document's key is its content's hash. Columns left out: when a row was written, and the path its
# file was read from (each CI job checks out to its own folder).
DIFFERING_TABLES = ("models", "hardware_platforms", "test_runs", "performance_results", "hardware_compatibility",
                    "integration_test_results", "web_platform_results")
_NOT_COMPARED = {"created_at", "source_path"}
_SHOWN_IDS = 5
log = logging.getLogger("benchmark_db.merge")


class MergeResult(dict):
    """`{table: rows added}`, as `merge_database` and `merge_parquet` always returned, plus `differing`:
    `{table: (rows, [a few of their ids])}` for the source rows whose id is stored with other values (the
    stored row wins, so that merging stays idempotent; the caller may say so)."""

    def __init__(self, added=(), differing: dict[str, tuple[int, list]] | None = None):
        super().__init__(added)
        self.differing = dict(differing or {})

    def differing_text(self) -> str:
        """`table=n` pairs of the differing rows, e.g. `performance_results=3`, or '' when none differ."""
        return ", ".join(f"{table}={n}" for table, (n, _) in sorted(self.differing.items()) if n)

    def kept_note(self) -> str:
        """What the merge kept of the database for the rows the source holds otherwise, or ''."""
        differing = self.differing_text()
        return f"stored values kept for rows the artifact holds otherwise: {differing}" if differing else ""


def row_key(table: str) -> list[str]:
    """The columns that identify a row of `table` (its primary key where it still has one)."""
    return list(schema.ROW_KEYS.get(table, ()))


def table_columns(conn, table: str, catalog: str | None = None) -> list[str]:
    catalog_sql = "table_catalog = ?" if catalog else "table_catalog = current_database()"
    params = [catalog, table] if catalog else [table]
    return [r[0] for r in conn.execute(
        f"SELECT column_name FROM information_schema.columns WHERE {catalog_sql} AND table_schema = 'main' "
        "AND table_name = ? ORDER BY ordinal_position", params).fetchall()]


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _all_columns(conn, catalog: str | None = None) -> dict[str, list[str]]:
    """Columns of every table of a catalog in one query (information_schema is slow to ask per table)."""
    catalog_sql = "table_catalog = ?" if catalog else "table_catalog = current_database()"
    columns: dict[str, list[str]] = {}
    for table, column in conn.execute(
            f"SELECT table_name, column_name FROM information_schema.columns WHERE {catalog_sql} "
            "AND table_schema = 'main' ORDER BY table_name, ordinal_position", [catalog] if catalog else []).fetchall():
        columns.setdefault(table, []).append(column)
    return columns


def merge_rows(conn, table: str, source_sql: str, source_columns: list[str],
               target_columns: list[str] | None = None,
               differing: dict[str, tuple[int, list]] | None = None) -> int:
    """Insert the rows of `source_sql` into `table` by primary key; return how many rows were added.
    `differing`, where given, gets `{table: (rows, a few ids)}` for the source rows stored with other values.

    Only columns both sides have are copied: an older source schema leaves the newer columns NULL (or their
    default), except those computed from what the older row holds (`schema.DERIVED_COLUMNS`, e.g. is_emulated
    from the metrics). Existing fact rows win; an existing dimension row gains the attributes it lacks
    (COALESCE), never loses one. The caller runs this inside a transaction.
    """
    target_columns = target_columns if target_columns is not None else table_columns(conn, table)
    derived = {c: sql for c in target_columns if c not in set(source_columns)
               and (sql := schema.derived_column_sql(table, c, source_columns)) is not None}
    if derived:
        source_sql = (f"SELECT *, {', '.join(f'{sql} AS {_quote(c)}' for c, sql in derived.items())} "
                      f"FROM ({source_sql})")
        source_columns = [*source_columns, *derived]
    columns = [c for c in target_columns if c in set(source_columns)]
    key = row_key(table)
    if not key or not set(key) <= set(columns):
        raise DataConversionError(f"cannot merge into {table}: the source lacks its key {key}",
                                  "merge databases written by this toolkit")
    names = ", ".join(_quote(c) for c in columns)
    before = conn.execute(f"SELECT count(*) FROM {_quote(table)}").fetchone()[0]
    # a source that holds the same key twice (a hand-made Parquet file) contributes its first row only
    dedup = (f"SELECT {names} FROM ({source_sql}) QUALIFY row_number() OVER "
             f"(PARTITION BY {', '.join(_quote(k) for k in key)}) = 1")
    on = " AND ".join(f"t.{_quote(k)} = s.{_quote(k)}" for k in key)
    target = _quote(table)
    if differing is not None and table in DIFFERING_TABLES:
        # before the insert, so that a key the source holds twice is not compared with its own first row
        differing[table] = _differing_rows(conn, table, dedup, on, [
            c for c in columns if c not in key and c not in _NOT_COMPARED and c not in derived], key)
    if table in DIMENSION_TABLES:
        updates = [c for c in columns if c not in key and c != "created_at"]
        # rewrite a known row only when the source fills an attribute it lacks
        gaps = " OR ".join(f"(t.{_quote(c)} IS NULL AND s.{_quote(c)} IS NOT NULL)" for c in updates)
        matched = (f"WHEN MATCHED AND ({gaps}) THEN UPDATE SET "
                   + ", ".join(f"{_quote(c)} = COALESCE(t.{_quote(c)}, s.{_quote(c)})" for c in updates)
                   + " ") if updates else ""
        conn.execute(f"MERGE INTO {target} AS t USING ({dedup}) AS s ON {on} {matched}"
                     f"WHEN NOT MATCHED THEN INSERT ({names}) VALUES ({', '.join(f's.{_quote(c)}' for c in columns)})")
    else:
        conn.execute(f"INSERT INTO {target} ({names}) SELECT {', '.join(f's.{_quote(c)}' for c in columns)} "
                     f"FROM ({dedup}) AS s WHERE NOT EXISTS (SELECT 1 FROM {target} AS t WHERE {on})")
    return conn.execute(f"SELECT count(*) FROM {_quote(table)}").fetchone()[0] - before


def _differing_rows(conn, table: str, dedup: str, on: str, compared: list[str], key: list[str]) -> tuple[int, list]:
    """How many rows of `dedup` are stored in `table` with other values in `compared`, and a few of their ids:
    one join, NULL-safe. A dimension row only counts where both sides hold a value (a gap is filled, not kept)."""
    if not compared:
        return 0, []
    if table in DIMENSION_TABLES:
        tests = [f"(t.{_quote(c)} IS NOT NULL AND s.{_quote(c)} IS NOT NULL AND t.{_quote(c)} <> s.{_quote(c)})"
                 for c in compared]
    else:
        tests = [f"t.{_quote(c)} IS DISTINCT FROM s.{_quote(c)}" for c in compared]
    ids = f"s.{_quote(key[0])}" if len(key) == 1 else f"({', '.join(f's.{_quote(k)}' for k in key)})"
    count, shown = conn.execute(
        f"SELECT count(*), list({ids} ORDER BY {ids})[1:{_SHOWN_IDS}] FROM ({dedup}) AS s "
        f"JOIN {_quote(table)} AS t ON {on} WHERE {' OR '.join(tests)}").fetchone()
    return count, list(shown or [])


def _warn_differing(result: MergeResult, source) -> None:
    for table, (count, ids) in sorted(result.differing.items()):
        if count:
            log.warning("%s: %d row(s) of %s are stored with other values; the stored values were kept "
                        "(ids %s%s)", Path(source).name, count, table, ", ".join(map(str, ids)),
                        ", ..." if count > len(ids) else "")


def _attached_version(conn, alias: str) -> int:
    exists = conn.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_catalog = ? AND table_schema = 'main' "
        "AND table_name = 'schema_migrations'", [alias]).fetchone()[0]
    if not exists:
        return 0
    return conn.execute(f"SELECT COALESCE(max(version), 0) FROM {alias}.main.schema_migrations").fetchone()[0]


def merge_database(conn, other_db_path: str | os.PathLike,
                   then: Callable[[dict[str, int]], None] | None = None) -> MergeResult:
    """Merge every result table of the database file `other_db_path` into `conn`'s database.

    Returns the number of rows added per table (0 everywhere when everything was already there), a
    `MergeResult` whose `differing` counts the source rows whose id is stored with other values (kept). The
    source is attached read-only and detached afterwards; the whole merge is one transaction. A source
    with a newer schema than this code knows is refused (DB002); one that is not a benchmark database
    is refused (DB003). `then(added)` runs inside that transaction, before the commit: the caller's bookkeeping
    (its log row, the CI tags of the runs) commits with the rows. Committed apart, a process killed in between
    left the rows merged and unlogged, and the re-run, finding every row present, logged rows=0.
    """
    path = Path(other_db_path)
    if not path.is_file():
        raise DataConversionError(f"{path} is not a database file", "pass the path of a .duckdb artifact")
    alias = _SOURCE_ALIAS
    literal = str(path.resolve()).replace("'", "''")
    try:
        # TYPE DUCKDB: a SQLite file (CI caches are often *.db) must not make DuckDB fetch its sqlite
        # extension from the internet in the middle of a merge; it is refused as not a DuckDB file
        conn.execute(f"ATTACH '{literal}' AS {alias} (TYPE DUCKDB, READ_ONLY)")
    except Exception as exc:  # duckdb.Error: not a DuckDB file, a newer storage version, or still being written
        text = one_line(exc)
        if "lock" in text.lower() and "conflicting" in text.lower():
            raise DBConnectionError(f"{path} is still open for writing by another process ({text})",
                                    "merge it once the job writing it has finished") from exc
        raise DataConversionError(f"cannot open {path} as a DuckDB database: {text}",
                                  "check that the artifact is a complete .duckdb file") from exc
    try:
        version = _attached_version(conn, alias)
        if version > schema.SCHEMA_VERSION:
            raise SchemaError(f"{path} has schema version {version}, newer than this code's "
                              f"{schema.SCHEMA_VERSION}", "upgrade the toolkit before merging it")
        present = {r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_catalog = ? AND table_schema = 'main' "
            "AND table_type = 'BASE TABLE'", [alias]).fetchall()}
        if not present & {"performance_results", "models", "test_runs"}:
            raise DataConversionError(f"{path} holds no benchmark tables",
                                      "merge a database created by this toolkit (create_benchmark_schema.py)")
        added = MergeResult()
        source_columns = _all_columns(conn, alias)
        target_columns = _all_columns(conn)
        # on a lake, two merges of the same artifact at once would both find its rows missing
        with write_lock(conn), transaction(conn):
            for table in MERGED_TABLES:
                if table not in present:
                    continue
                names = ", ".join(_quote(c) for c in source_columns[table])
                added[table] = _merge_rows_or_refuse(
                    conn, table, f"SELECT {names} FROM {alias}.main.{_quote(table)}", source_columns[table],
                    target_columns.get(table, []), path, added.differing)
            if added.get("ingested_files"):
                _log_merged_duplicates(conn, f"SELECT path FROM {alias}.main.ingested_files")
            if then is not None:  # the caller's log row and tags commit with the rows (see the docstring)
                then(added)
        _warn_differing(added, path)
        return added
    finally:
        conn.execute(f"DETACH {alias}")


def table_for_parquet(path: str | os.PathLike) -> str | None:
    """The table a Parquet artifact holds, from its name (`performance_results.parquet`,
    `performance_results_job3.parquet`) or its folder (`performance_results/part-0.parquet`, or a dataset
    folder as pyarrow and Spark write it, `performance_results.parquet/part-0.parquet`)."""
    p = Path(path)
    folder = p.parent.name
    if folder.lower().endswith(".parquet"):
        folder = folder[:-len(".parquet")]
    for candidate in (p.stem, folder):
        for table in sorted(MERGED_TABLES, key=len, reverse=True):
            if candidate == table or candidate.startswith(table + "_") or candidate.startswith(table + "-"):
                return table
    return None


def merge_parquet(conn, parquet_path: str | os.PathLike, table: str | None = None,
                  then: Callable[[dict[str, int]], None] | None = None) -> MergeResult:
    """Merge a Parquet export of one table into `conn`'s database; return `{table: rows added}` (a
    `MergeResult`, with the rows stored with other values in `differing`).
    `then(added)` runs inside the merge's transaction, before the commit (see `merge_database`)."""
    table = table or table_for_parquet(parquet_path)
    if table is None or table not in MERGED_TABLES:
        raise DataConversionError(f"cannot tell which table {parquet_path} holds",
                                  "name Parquet artifacts after their table, e.g. performance_results.parquet")
    literal = str(Path(parquet_path).resolve()).replace("'", "''")
    source_sql = f"SELECT * FROM read_parquet('{literal}')"
    try:
        source_columns = [d[0] for d in conn.execute(f"DESCRIBE {source_sql}").fetchall()]
    except Exception as exc:
        raise DataConversionError(f"cannot read {parquet_path} as Parquet: {one_line(exc)}",
                                  "check that the artifact is a complete Parquet file") from exc
    with write_lock(conn), transaction(conn):
        added = MergeResult()
        added[table] = _merge_rows_or_refuse(conn, table, source_sql, source_columns, None, parquet_path,
                                             added.differing)
        if table == "ingested_files" and added[table]:
            _log_merged_duplicates(conn, f"SELECT path FROM ({source_sql})")
        if then is not None:
            then(added)
    _warn_differing(added, parquet_path)
    return added


def _log_merged_duplicates(conn, source_paths_sql: str) -> None:
    """Log a merged file whose content is already ingested under another path as `duplicate of` that path,
    as an ingest of both files into one database logs it (two CI jobs that check out to different folders
    ingest the same files under two paths; merged as they were, `--validate` called each such content a
    duplicate). The target's own row keeps the content; among merged rows, the first path does."""
    conn.execute(f"""
        UPDATE ingested_files SET status = 'skipped', reason = 'duplicate of ' || o.owner, rows = 0,
               rows_by_table = NULL
        FROM (SELECT sha256, substr(min(CASE WHEN path IN ({source_paths_sql}) THEN '1' ELSE '0' END || path), 2)
                  AS owner
              FROM ingested_files WHERE status = 'ingested' AND sha256 IS NOT NULL
              GROUP BY sha256 HAVING count(*) > 1) AS o
        WHERE ingested_files.sha256 = o.sha256 AND ingested_files.status = 'ingested'
          AND ingested_files.path <> o.owner AND ingested_files.path IN ({source_paths_sql})""")


def _merge_rows_or_refuse(conn, table: str, source_sql: str, source_columns: list[str],
                          target_columns: list[str] | None, source,
                          differing: dict[str, tuple[int, list]] | None = None) -> int:
    """`merge_rows`, with a row the target cannot take (a value of the wrong type, a NULL key) refused as
    DB003 on one line instead of DuckDB's multi-line error; the caller's transaction rolls the merge back."""
    import duckdb

    try:
        return merge_rows(conn, table, source_sql, source_columns, target_columns, differing)
    except duckdb.Error as exc:
        raise DataConversionError(f"rows of {table} in {Path(source).name} do not fit its columns: {one_line(exc)}",
                                  "merge artifacts written by this toolkit (same or older schema)") from exc

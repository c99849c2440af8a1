"""Row counts and content checksums of every table, computed in SQL.

A table's checksum is the md5 of the md5s of its rows (each row cast to text as a whole) in sorted order, so
it depends on the content only, not on the physical order of the rows or on which file holds them. Backups
record these in their manifest, restore and vacuum compare against them. `method="hash"` uses DuckDB's
internal row hash instead: about twenty times faster, but only comparable within one DuckDB version, so it
serves to verify a copy in the same process and never goes into a manifest.
"""
from __future__ import annotations


def user_tables(conn) -> list[str]:
    """The base tables of the current database's main schema, in name order."""
    return [r[0] for r in conn.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_catalog = current_database() "
        "AND table_schema = 'main' AND table_type = 'BASE TABLE' ORDER BY table_name").fetchall()]


def table_checksum(conn, table: str, method: str = "md5") -> tuple[int, str]:
    """(row count, checksum) of one table."""
    quoted = '"' + table.replace('"', '""') + '"'
    if method == "hash":
        rows, total = conn.execute(f"SELECT count(*), COALESCE(sum(hash(t)::HUGEINT), 0) FROM {quoted} t").fetchone()
        return int(rows), f"hash:{total}"
    rows, digest = conn.execute(
        f"SELECT count(*), md5(COALESCE(string_agg(h, '' ORDER BY h), '')) "
        f"FROM (SELECT md5(t::VARCHAR) AS h FROM {quoted} t)").fetchone()
    return int(rows), str(digest)


def table_checksums(conn, tables: list[str] | None = None, method: str = "md5") -> dict[str, dict]:
    """`{table: {"rows": n, "checksum": md5}}` for every base table (or those named)."""
    result = {}
    for table in tables if tables is not None else user_tables(conn):
        rows, digest = table_checksum(conn, table, method)
        result[table] = {"rows": rows, "checksum": digest}
    return result


def compare_checksums(expected: dict[str, dict], actual: dict[str, dict]) -> list[str]:
    """What differs between two checksum maps, one line per table; empty when they agree."""
    problems = []
    for table, want in sorted(expected.items()):
        got = actual.get(table)
        if got is None:
            problems.append(f"table {table} is missing")
        elif got["rows"] != want["rows"]:
            problems.append(f"table {table} has {got['rows']} rows, expected {want['rows']}")
        elif got["checksum"] != want["checksum"]:
            problems.append(f"table {table} content differs (checksum {got['checksum']} != {want['checksum']})")
    for table in sorted(set(actual) - set(expected)):
        problems.append(f"table {table} is not in the reference")
    return problems

"""Export the database's tables as Parquet files that pandas, pyarrow and DuckDB read directly.

One file per table, `<dir>/<table>.parquet` (zstd-compressed), written to a temporary name and renamed, so
a reader never sees half a file. The names follow `benchmark_db.merge.table_for_parquet`, so an export can
be merged back into another database as a CI artifact. That is why the original documents
(`source_documents`, zstd blobs) and their compression dictionaries are exported too: without them a merged
export would log files and runs whose originals no database holds, and `--validate` and `--check-integrity`
would rightly call every one of them a dangling reference. `RESULT_TABLES` are the rest: the rows themselves.

Rows that `--archive-data` moved to Parquet are exported with the live ones, read through the table's
`<table>_all` view (same columns; see `benchmark_db.maintenance.archive`): the base table alone left them
out, and a CI merge of such an export lost them without a word. Each entry says how many of its rows came
from the archive (`archived_rows`).
"""
from __future__ import annotations

import os
from pathlib import Path

RESULT_TABLES = ("models", "hardware_platforms", "test_runs", "performance_results", "hardware_compatibility",
                 "integration_test_results", "web_platform_results", "ingested_files")
# dictionaries before the documents compressed with them, so a merge in this order never leaves a gap
EXPORTED_TABLES = RESULT_TABLES + ("compression_dictionaries", "source_documents")


def _relations(conn) -> set[str]:
    """Names of the tables and views this connection sees (a read-only connection's TEMP views included)."""
    return {r[0] for r in conn.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' "
        "OR table_catalog = 'temp'").fetchall()}


def export_parquet(conn, out_dir: str | os.PathLike, tables=EXPORTED_TABLES) -> list[dict]:
    """Write each table, archived rows included, to `out_dir/<table>.parquet`; return
    [{table, path, rows, archived_rows, bytes}]."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    relations = _relations(conn)
    # the file's own table, not a read-only connection's TEMP view of the same name (which shows the archive)
    catalog = conn.execute("SELECT current_database()").fetchone()[0].replace('"', '""')
    written = []
    for table in tables:
        # the `_all` view: the live rows and the archived ones, in the table's own columns
        source = f"{table}_all" if f"{table}_all" in relations else table
        target = out / f"{table}.parquet"
        partial = out / f".{table}.parquet.partial"
        literal = str(partial).replace("'", "''")
        try:
            conn.execute(f"COPY (SELECT * FROM {source}) TO '{literal}' "
                         "(FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 9)")
            os.replace(partial, target)
        except BaseException:
            partial.unlink(missing_ok=True)  # a failed export leaves no half-written file behind
            raise
        literal = str(target).replace("'", "''")
        rows = conn.execute(f"SELECT count(*) FROM read_parquet('{literal}')").fetchone()[0]
        archived = rows - conn.execute(f'SELECT count(*) FROM "{catalog}".main.{table}').fetchone()[0] if source != table else 0
        written.append({"table": table, "path": str(target), "rows": rows, "archived_rows": archived,
                        "bytes": target.stat().st_size})
    return written

"""Export the database's tables as Parquet files that pandas, pyarrow and DuckDB read directly.

One file per table, `<dir>/<table>.parquet` (zstd-compressed), written to a temporary name and renamed, so
a reader never sees half a file. The names follow `benchmark_db.merge.table_for_parquet`, so an export can
be merged back into another database as a CI artifact. That is why the original documents
(`source_documents`, zstd blobs) and their compression dictionaries are exported too: without them a merged
export would log files and runs whose originals no database holds, and `--validate` and `--check-integrity`
would rightly call every one of them a dangling reference. `RESULT_TABLES` are the rest: the rows themselves.
"""
from __future__ import annotations

import os
from pathlib import Path

RESULT_TABLES = ("models", "hardware_platforms", "test_runs", "performance_results", "hardware_compatibility",
                 "integration_test_results", "web_platform_results", "ingested_files")
# dictionaries before the documents compressed with them, so a merge in this order never leaves a gap
EXPORTED_TABLES = RESULT_TABLES + ("compression_dictionaries", "source_documents")


def export_parquet(conn, out_dir: str | os.PathLike, tables=EXPORTED_TABLES) -> list[dict]:
    """Write each table to `out_dir/<table>.parquet`; return [{table, path, rows, bytes}]."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for table in tables:
        target = out / f"{table}.parquet"
        partial = out / f".{table}.parquet.partial"
        literal = str(partial).replace("'", "''")
        try:
            conn.execute(f"COPY (SELECT * FROM {table}) TO '{literal}' "
                         "(FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 9)")
            os.replace(partial, target)
        except BaseException:
            partial.unlink(missing_ok=True)  # a failed export leaves no half-written file behind
            raise
        rows = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        written.append({"table": table, "path": str(target), "rows": rows, "bytes": target.stat().st_size})
    return written

"""Maintenance of a DuckLake (team mode): what applies to a lake, done the lake's own way.

A lake keeps its data as Parquet files and its history as snapshots, so "vacuum" is DuckLake's compaction
(merge small adjacent files), snapshot expiry and removal of the files no snapshot needs any more. A file
backup of the database does not apply: the catalog lives in PostgreSQL (back it up with pg_dump) and the data
files on shared storage (snapshot that storage); the Parquet files already are the archive format.
"""
from __future__ import annotations

from benchmark_db.errors import UsageError
from benchmark_db.lake import LAKE_ALIAS, redact

NOT_APPLICABLE = {
    "backup": "a lake is backed up as its PostgreSQL catalog (pg_dump) plus a snapshot of its data path",
    "restore": "a lake is restored from its PostgreSQL catalog dump and its data path",
    "archive-data": "a lake's rows already live in Parquet files on its data path",
}


def refuse_restore(target: str) -> None:
    """A file backup is not restored into a lake (it would land in a file named after the lake's string)."""
    if target.startswith("ducklake:"):
        raise UsageError(f"--restore does not apply to the DuckLake {redact(target)}: {NOT_APPLICABLE['restore']}",
                         "restore into a file (--db ./restored.duckdb), or add a backup's rows to the lake with "
                         "scripts/ci_benchmark_integrator.py --artifacts-dir DIR_WITH_THE_BACKUP --db LAKE")


def compact_lake(conn, *, keep_days: int = 7, dry_run: bool = False) -> dict:
    """Merge small adjacent data files, expire snapshots older than `keep_days`, delete unreferenced files."""
    if dry_run:
        snapshots = conn.execute(
            f"SELECT count(*) FROM ducklake_snapshots('{LAKE_ALIAS}') "
            f"WHERE snapshot_time < now() - INTERVAL {int(keep_days)} DAY").fetchone()[0]
        return {"dry_run": True, "snapshots_to_expire": snapshots}
    conn.execute(f"CALL ducklake_merge_adjacent_files('{LAKE_ALIAS}')")
    expired = conn.execute(
        f"SELECT count(*) FROM ducklake_expire_snapshots('{LAKE_ALIAS}', "
        f"older_than => now() - INTERVAL {int(keep_days)} DAY)").fetchone()[0]
    removed = conn.execute(
        f"SELECT count(*) FROM ducklake_cleanup_old_files('{LAKE_ALIAS}', cleanup_all => true)").fetchone()[0]
    return {"dry_run": False, "snapshots_expired": expired, "files_removed": removed}

"""Checkpoint and statistics (`optimize_database`), and reclaiming space (`vacuum_database`).

DuckDB does not shrink a file on VACUUM or DELETE: freed blocks are reused, never given back. The only way to
get the space back is to copy the database into a fresh file and swap it in. `vacuum_database` does that
while holding the database (so no writer can slip in between), checks that the copy has the same row counts
and table checksums, and replaces the file with one atomic rename; on any failure the original is untouched.
The fresh file takes the layout of every new database file (`NEW_FILE_OPTIONS`): attached without it, DuckDB
would write the old v1.0.0 storage format with 256 KiB blocks, and the "vacuumed" file came out 40% larger.
"""
from __future__ import annotations

import contextlib
import glob
import logging
import os
import time
from pathlib import Path

from benchmark_db.connection import NEW_FILE_OPTIONS
from benchmark_db.errors import MaintenanceError
from benchmark_db.maintenance.checksums import compare_checksums, table_checksums

log = logging.getLogger("benchmark_db.maintenance")


def file_bytes(path: str | os.PathLike) -> int:
    """Size of a database file plus its write-ahead log."""
    total = 0
    for candidate in (Path(path), Path(str(path) + ".wal")):
        if candidate.exists():
            total += candidate.stat().st_size
    return total


def optimize_database(conn, *, dry_run: bool = False) -> dict:
    """Write the WAL into the file (CHECKPOINT) and refresh the optimizer's statistics (ANALYZE)."""
    if dry_run:
        return {"step": "optimize", "dry_run": True, "actions": ["CHECKPOINT", "ANALYZE"]}
    started = time.perf_counter()
    conn.execute("FORCE CHECKPOINT")
    conn.execute("ANALYZE")
    conn.execute("CHECKPOINT")
    return {"step": "optimize", "actions": ["CHECKPOINT", "ANALYZE"],
            "seconds": round(time.perf_counter() - started, 3)}


def _current_catalog(conn) -> str:
    return conn.execute("SELECT current_database()").fetchone()[0]


def vacuum_database(conn, db_path: str | os.PathLike, *, dry_run: bool = False) -> dict:
    """Copy the database into a fresh file and atomically replace `db_path` with it.

    `conn` must be a writable connection to `db_path`; it holds the file lock during the whole copy. After a
    successful vacuum it is closed (its file is no longer the database) and the caller opens a new one; after
    a failure it is left open on the untouched database.
    Returns bytes before and after.
    """
    path = Path(db_path)
    if str(db_path) == ":memory:":
        raise MaintenanceError("cannot vacuum an in-memory database", "pass a database file with --db")
    conn.execute("FORCE CHECKPOINT")
    before = file_bytes(path)
    if dry_run:
        return {"step": "vacuum", "dry_run": True, "bytes_before": before,
                "note": "would copy into a fresh file and replace the database"}
    wal = Path(str(path) + ".wal")
    if wal.exists() and wal.stat().st_size > 0:
        raise MaintenanceError(f"{wal} still holds unwritten changes after CHECKPOINT",
                               "another connection may hold uncommitted work; retry when it is done")
    # Copies left by a vacuum that was killed (kill -9, power loss) carry another pid and would stay forever,
    # each as large as the database. We hold the database's write lock, so no other vacuum of it is running:
    # every such copy is stale.
    for stale in path.parent.glob(f".{glob.escape(path.name)}.vacuum-*.duckdb*"):
        log.info("vacuum: removing %s, left by an interrupted vacuum", stale)
        stale.unlink(missing_ok=True)
    fresh = path.with_name(f".{path.name}.vacuum-{os.getpid()}.duckdb")
    original = _current_catalog(conn)
    expected = table_checksums(conn, method="hash")  # compared within this process only
    literal = str(fresh.resolve()).replace("'", "''")
    started = time.perf_counter()
    try:
        conn.execute(f"ATTACH '{literal}' AS vacuum_target ({NEW_FILE_OPTIONS})")
        try:
            conn.execute(f'COPY FROM DATABASE "{original}" TO vacuum_target')
            conn.execute("USE vacuum_target")
            actual = table_checksums(conn, method="hash")
            conn.execute(f'USE "{original}"')
        except BaseException:
            # a statement cut short (Ctrl-C) leaves its transaction open on vacuum_target, and DETACH then
            # refuses ("outstanding work"): its error replaced the interrupt, and the run went on with the next
            # steps. Roll back first, and let no error of this clean-up hide why the vacuum stopped.
            for statement in ("ROLLBACK", f'USE "{original}"', "DETACH vacuum_target"):
                with contextlib.suppress(Exception):
                    conn.execute(statement)
            raise
        conn.execute("DETACH vacuum_target")
        problems = compare_checksums(expected, actual)
        if problems:
            raise MaintenanceError("the vacuumed copy differs from the database: " + "; ".join(problems),
                                   "the database was left untouched; report this as a bug")
        Path(str(fresh) + ".wal").unlink(missing_ok=True)
        # rename while our connection still holds the old file, so no writer opens it in between
        os.replace(fresh, path)
    except BaseException:
        fresh.unlink(missing_ok=True)
        Path(str(fresh) + ".wal").unlink(missing_ok=True)
        raise
    conn.close()
    after = file_bytes(path)
    log.info("vacuum: %s went from %d to %d bytes", path, before, after)
    return {"step": "vacuum", "bytes_before": before, "bytes_after": after, "bytes_reclaimed": before - after,
            "tables_verified": len(expected), "seconds": round(time.perf_counter() - started, 3)}

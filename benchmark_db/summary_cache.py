"""The per-configuration summary of `performance_results` that reports read, cached beside the database file.

A performance report groups every result by model, hardware, test case, batch size, sequence length and
precision. On a million rows
that GROUP BY costs tens of milliseconds however it is written (the hash aggregate itself, not reading the
columns, is most of it), and people ask for the same report again and again while the data does not change.
So the fine-grained aggregate (one row per model id, hardware id, test case, batch size, sequence length,
precision, simulated flag and emulated flag, with counts, sums, minima and maxima from which every coarser figure is exact, and the names of
its model and hardware) is saved as an Arrow IPC file next to the database (`<db>.summary.arrow`, memory-mapped
when read) together with a fingerprint of the database's committed state, and reused while the fingerprint
matches.

The fingerprint is taken from the files, not from our own bookkeeping, so a write by any program, including
plain SQL in the DuckDB shell, a copy of another database file over this one or a restored backup,
invalidates the cache:
- every write to a file sets its status-change time (ctime), which no tool can set back (unlike the mtime,
  which `cp -p`, `shutil.copy2` and `touch -d` restore); with the device and inode numbers, the size and the
  mtime it is taken from the database file and from `<db>.wal`. Within one clock tick of the file system
  (milliseconds here, whole seconds on some) two writes can leave the same ctime, so a summary is only saved
  when both files last changed comfortably before the report read their state (50 ms, or 2 s on a file
  system with whole-second timestamps: git's rule for "racily clean" files);
- DuckDB commits a checkpoint by writing a new database header (the two header blocks after the 4 KiB main
  header hold an iteration counter that grows with every checkpoint), and the main header holds the random
  identifier DuckDB gives each new database file, so all three are hashed;
- between checkpoints every commit appends to `<db>.wal`, so its size grows; the hash of its last 64 KiB
  also covers a WAL cut back and grown again to the same size.
Headers and WAL alone are not enough: two databases made by the same steps (a backup and the database it came
from, after one write each) have byte-identical checkpoint headers, sizes and (copied in place) inode.
When the archive is shown, the Parquet files it reads are stamped the same way.
While a connection is open, DuckDB's file lock keeps other processes from writing, so the state the
fingerprint names is the state the queries read. Use the cache only on a connection with no open
transaction of its own (the report tools open a fresh read-only connection); in-memory databases and
DuckLake catalogs get no fingerprint and are always aggregated directly.
"""
from __future__ import annotations

import hashlib
import os
import stat
import tempfile
import time
from pathlib import Path

from benchmark_db.schema import dimension_joins

# Bumped whenever the summary's columns or meaning change, so an old cache file is never read as a new one.
SUMMARY_FORMAT = "5"  # 4: is_emulated is a grouping key; 5: test_case and sequence_length too
_FINGERPRINT_KEY = b"benchmark_db.summary_fingerprint"
_HEADER_BYTES = 3 * 4096  # DuckDB's main header (with the file's random identifier) and its two database headers
# A summary is saved only when the database and its WAL last changed at least this long before the report read
# their state: a write after that read then always gets a later ctime. File systems with whole-second
# timestamps need 2 s; those with nanosecond fields (ext4, xfs, btrfs, tmpfs) stamp from a clock that advances
# every few milliseconds, so 50 ms is ample there.
_RACY_SECONDS = 2.0
_RACY_FINE_SECONDS = 0.05
_WAL_TAIL = 65536

# One row per (model id, hardware id, test case, batch size, sequence length, precision, simulated, emulated). Emulated results (a software
# adapter, `performance_results.is_emulated`) are groups of their own, never merged with real devices.
# Means are sum / count (what SQL's avg computes) so any coarser grouping of these rows gives exactly the
# figures of a direct aggregate. The names come from the dimension tables; the fingerprint covers them too.
# `named` is false for a group whose model or hardware row is missing (the report then falls back to the rows'
# own names, row by row).
SUMMARY_SQL = """
WITH agg AS (
    SELECT pr.model_id, pr.hardware_id, pr.test_case, pr.batch_size, pr.sequence_length, pr.precision,
           COALESCE(pr.is_simulated, false) AS is_simulated,
           COALESCE(pr.is_emulated, false) AS is_emulated,
           any_value(pr.model_name) AS fallback_model, any_value(pr.hardware_type) AS fallback_hardware,
           count(*) AS results,
           max(pr.throughput_items_per_second) AS throughput_items_per_s_max,
           min(pr.average_latency_ms) AS latency_ms_min, max(pr.average_latency_ms) AS latency_ms_max,
           max(pr.memory_peak_mb) AS memory_mb_max,
           sum(pr.throughput_items_per_second) AS _sum_throughput,
           count(pr.throughput_items_per_second) AS _n_throughput,
           sum(pr.average_latency_ms) AS _sum_latency, count(pr.average_latency_ms) AS _n_latency,
           sum(pr.memory_peak_mb) AS _sum_memory, count(pr.memory_peak_mb) AS _n_memory,
           max(pr.created_at) AS last_result_at
    FROM performance_results pr
    GROUP BY ALL)
SELECT agg.*, m.model_name, m.model_family, hp.hardware_type, hp.device_name,
       m.model_id IS NOT NULL AND hp.hardware_id IS NOT NULL AS named
FROM agg
""" + dimension_joins("agg") + "\n"


def database_file(conn) -> str | None:
    """The path of the DuckDB file `conn` works on, or None (in-memory database, DuckLake catalog)."""
    try:
        row = conn.execute("SELECT path, type FROM duckdb_databases() "
                           "WHERE database_name = current_database()").fetchone()
    except Exception:  # noqa: BLE001 - an older or unusual connection: no cache, never an error
        return None
    if not row or row[1] != "duckdb" or not row[0] or row[0] == ":memory:":
        return None
    return row[0] if os.path.isfile(row[0]) else None


def _stat_text(st: os.stat_result) -> str:
    return f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}"


def _file_state(path: str) -> tuple[str, int] | None:
    """(fingerprint, the later ctime in ns of the database file and its WAL), or None when unreadable."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(SUMMARY_FORMAT.encode())
    try:
        with open(path, "rb") as fh:  # stat the open file: on NFS, open revalidates its attributes
            st = os.fstat(fh.fileno())
            header = fh.read(_HEADER_BYTES)
    except OSError:
        return None
    if len(header) < _HEADER_BYTES:
        return None
    digest.update(_stat_text(st).encode())
    digest.update(header)
    changed = st.st_ctime_ns
    wal = path + ".wal"
    try:
        with open(wal, "rb") as fh:
            wst = os.fstat(fh.fileno())
            fh.seek(max(0, wst.st_size - _WAL_TAIL))
            digest.update(f"wal:{_stat_text(wst)}:".encode())
            digest.update(fh.read())
            changed = max(changed, wst.st_ctime_ns)
    except FileNotFoundError:
        digest.update(b"no wal")
    except OSError:
        return None
    return digest.hexdigest(), changed


def _archive_stamp(conn) -> str | None:
    """The state of the archived Parquet files the shown performance view reads, or None when unreadable."""
    try:
        paths = [r[0] for r in conn.execute(
            "SELECT path FROM archived_partitions WHERE table_name = 'performance_results' ORDER BY path").fetchall()]
    except Exception:  # noqa: BLE001 - no archive table: nothing archived to stamp
        return ""
    parts = []
    for archived in paths:
        try:
            parts.append(f"{archived}={_stat_text(os.stat(archived))}")
        except OSError:
            return None  # a missing file fails the query anyway; never cache around it
    return hashlib.blake2b("\n".join(parts).encode(), digest_size=16).hexdigest()


def cache_path(path: str) -> Path:
    return Path(path + ".summary.arrow")


def _read(cache: Path, expected: str):
    import pyarrow as pa

    try:
        with pa.memory_map(str(cache)) as source:
            table = pa.ipc.open_file(source).read_all()
    except Exception:  # noqa: BLE001 - missing, half-written by a crashed older version, or not ours
        return None
    meta = table.schema.metadata or {}
    return table if meta.get(_FINGERPRINT_KEY) == expected.encode() else None


def _racy(changed_ns: int, read_at_ns: int) -> bool:
    """Whether the database changed (`changed_ns`, its latest ctime) so shortly before its state was read
    (`read_at_ns`) that another write in the same clock tick could have left the same stamp."""
    coarse = changed_ns % 1_000_000_000 == 0  # a file system that keeps whole seconds
    window = _RACY_SECONDS if coarse else min(_RACY_SECONDS, _RACY_FINE_SECONDS)
    return changed_ns >= read_at_ns - int(window * 1e9)


def _write(cache: Path, table, stamp: str, mode: int) -> None:
    """Write atomically (temporary file + rename) so a concurrent reader sees the old file or the new one."""
    import pyarrow as pa

    table = table.replace_schema_metadata({**(table.schema.metadata or {}), _FINGERPRINT_KEY: stamp.encode()})
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=cache.name + ".", suffix=".tmp", dir=cache.parent)
        os.close(fd)
        with pa.OSFile(tmp, "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
        os.chmod(tmp, mode)  # mkstemp makes it private; the cache is as readable as the database
        os.replace(tmp, cache)
    except OSError:
        # a read-only folder or a full disk only costs the next report its speed
        if tmp:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def performance_summary(conn):
    """The summary as an Arrow table: from the cache when it matches the database, else computed (and cached
    when the database is a file whose folder we may write, and did not change just now)."""
    path = database_file(conn)
    read_at = time.time_ns()
    state = _file_state(path) if path else None
    stamp = state[0] if state else None
    if stamp:
        from benchmark_db.maintenance.archive import archive_shown

        if archive_shown(conn):  # a summary with archived rows is not one without them
            archived = _archive_stamp(conn)
            stamp = stamp + "+archive:" + archived if archived is not None else None
    if stamp:
        cached = _read(cache_path(path), stamp)
        if cached is not None:
            return cached
    table = conn.execute(SUMMARY_SQL).fetch_arrow_table()
    # saved when nothing was committed meanwhile (same process, other connection) and no write can share the stamp
    if stamp and _file_state(path) == state and not _racy(state[1], read_at):
        _write(cache_path(path), table, stamp, stat.S_IMODE(os.stat(path).st_mode))
    return table

"""Backups you can trust: consistent, verified, restorable, and purged by age without touching anything else.

A backup is the database file copied after a checkpoint while this process holds the database (so nothing
writes during the copy), checked by opening the copy and comparing the row count and checksum of every
table, optionally gzip-compressed, and described by a manifest written last (its presence marks a complete
backup): row counts and checksums per table, the stored file's sha256 and the database's own sha256.
Restore verifies all of it again (one flipped byte anywhere is refused) before it atomically puts the file
in place. Purge deletes only files this tool wrote, recognised by manifest or by name, compressed ones too.
A backup being written holds `<backup>.lock` (flock) until its manifest is written: two backups of one
database may run at once (both read-only), and neither they nor a purge take the other's files for leftovers.

A database with an archive (`--archive-data`) names Parquet files outside itself by absolute path. Its backup
carries them: every file `archived_partitions` names is copied into `<backup>.archive/<table>/`, its sha256
checked against the one recorded when it was archived, and listed in the manifest; a missing or changed file
fails the backup. Restore verifies them too, puts them back (where they were when restoring over the original
path, else into `<db stem>_archived_data` beside the restored file or `--archive-dir`) and points the restored
database's views at them, so it shows the rows the backed-up database showed, wherever it lands.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import glob
import gzip
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import zlib
from pathlib import Path

import duckdb

from benchmark_db import schema
from benchmark_db.connection import NOT_DATABASE_SUFFIXES, connect
from benchmark_db.errors import (
    BenchmarkDBError,
    DatabaseLockedError,
    DatabaseUnwritableError,
    DBConnectionError,
    MaintenanceError,
    UsageError,
)
from benchmark_db.maintenance import archive
from benchmark_db.maintenance.checksums import compare_checksums, table_checksums

log = logging.getLogger("benchmark_db.maintenance")

TOOL = "benchmark_db_maintenance"
MANIFEST_VERSION = 2  # 2: the archived Parquet files travel with the database ("archive")
DEFAULT_BACKUP_DIR = "./db_backups"
PREFIX = "benchmark_db_backup"
MANIFEST_SUFFIX = ".manifest.json"
ARCHIVE_SUFFIX = ".archive"  # the folder of a backup's archived Parquet files
LOCK_SUFFIX = ".lock"  # held (flock) by the run writing the backup of that name, removed when it is done
# benchmark_db_backup-<db stem>-<YYYYmmddTHHMMSSZ>[-N].duckdb[.gz][.manifest.json|.partial|.lock], and the
# folder benchmark_db_backup-<db stem>-<YYYYmmddTHHMMSSZ>[-N].archive[.partial]
NAME_RE = re.compile(rf"^{PREFIX}-(?P<stem>.+)-(?P<stamp>\d{{8}}T\d{{6}}Z)(?:-\d+)?"
                     r"(?:\.duckdb(?:\.gz)?(?:\.partial)?|\.manifest\.json|\.archive(?:\.partial)?|\.lock)$")
_BASE_SUFFIX_RE = re.compile(r"(?:(?:\.duckdb(?:\.gz)?|\.archive)(?:\.partial)?|\.lock)$")
_CHUNK = 1 << 20


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _copy_hashing(src, dst) -> str:
    digest = hashlib.sha256()
    while chunk := src.read(_CHUNK):
        digest.update(chunk)
        dst.write(chunk)
    return digest.hexdigest()


def _verify_copy(path: Path, expected: dict[str, dict], method: str = "md5",
                 hint: str = "the backup was not kept") -> None:
    try:
        conn = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        raise MaintenanceError(f"the copy {path} cannot be opened: {exc}", hint) from exc
    try:
        problems = compare_checksums(expected, table_checksums(conn, method=method))
    finally:
        conn.close()
    if problems:
        raise MaintenanceError(f"the copy {path} differs from its source: " + "; ".join(problems), hint)


def _reserve_name(backup_dir: Path, db_path: Path, now: dt.datetime) -> tuple[str, int]:
    """A backup name no other backup has, and the descriptor of its lock file, held (flock) until the backup is
    done. Two backups of one database could run at once (both read-only): started in the same second they took
    one name, and each removed the other's files as left by a killed backup. The lock file is created
    exclusively before any other file of the backup, and a lock a killed run held is released with it."""
    base = f"{PREFIX}-{_stem(db_path)}-{now:%Y%m%dT%H%M%SZ}"
    n = 0
    while True:
        candidate = base if n == 0 else f"{base}-{n}"
        n += 1
        if any(backup_dir.glob(glob.escape(candidate) + ".*")):
            continue
        lock = backup_dir / (candidate + LOCK_SUFFIX)
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            continue
        fcntl.flock(fd, fcntl.LOCK_EX)  # waits only while another backup's cleanup holds it, to delete it
        try:
            still_ours = os.stat(lock).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            still_ours = False
        if still_ours:
            return candidate, fd
        os.close(fd)  # that cleanup took our fresh lock file for a killed backup's: take another name


@contextlib.contextmanager
def _claimed_unless_written(folder: Path, base: str):
    """Yield whether no live run is writing backup `base`; if none is, hold its lock meanwhile (so that the
    caller may delete its files). No lock file: no run is writing it (a run makes its lock file first)."""
    try:
        fd = os.open(folder / (base + LOCK_SUFFIX), os.O_RDONLY)
    except OSError:
        fd = None
    being_written = False
    if fd is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            being_written = True
    try:
        yield not being_written
    finally:
        if fd is not None:
            os.close(fd)


def _stem(db_path: Path) -> str:
    return re.sub(r"[^A-Za-z0-9_.]+", "_", db_path.name.removesuffix(".duckdb")) or "db"


def _remove_unfinished(folder: Path, source: Path) -> None:
    """Delete what killed backups of this database left in `folder` (files without a manifest, each as large as
    the database, and `.partial` files): nothing can restore them, and they used to stay until purged. Another
    backup of it may be running (read-only connections do not exclude each other): a backup whose lock a live
    run holds is left alone, and the manifest is looked for only once its lock is ours (a run writes its
    manifest before it lets go of its lock)."""
    stem = _stem(source)
    bases: dict[str, list[Path]] = {}
    for path in sorted(folder.glob(glob.escape(f"{PREFIX}-{stem}-") + "*")):
        name = path.name.removesuffix(".partial") if path.name.endswith(MANIFEST_SUFFIX + ".partial") else path.name
        match = NAME_RE.match(name)
        if not match or match.group("stem") != stem or path.is_symlink():
            continue
        bases.setdefault(_BASE_SUFFIX_RE.sub("", name).removesuffix(MANIFEST_SUFFIX), []).append(path)
    for base, paths in bases.items():
        with _claimed_unless_written(folder, base) as claimed:
            if not claimed or (folder / (base + MANIFEST_SUFFIX)).is_file():
                continue
            for path in paths:
                log.warning("backup: removing %s, left by an interrupted backup (it has no manifest)", path)
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)


def create_backup(conn, db_path: str | os.PathLike, backup_dir: str | os.PathLike = DEFAULT_BACKUP_DIR, *,
                  compress: bool = False, dry_run: bool = False, now: dt.datetime | None = None) -> dict:
    """Back up the database `conn` has open (at `db_path`) into `backup_dir`; return the manifest.

    A writable `conn` checkpoints first; a read-only one (the maintenance tool opens one when every step only
    reads) cannot, so a WAL with changes not yet in the file is DB005 rather than a copy that lacks them. Either
    holds the file's lock during the copy, so no writer changes it meanwhile.
    """
    if str(db_path) == ":memory:":
        raise MaintenanceError("cannot back up an in-memory database", "pass a database file with --db")
    source = Path(db_path).resolve()
    folder = Path(backup_dir)
    now = now or utc_now()
    conn.execute("FORCE CHECKPOINT")  # does nothing on a read-only connection (a read-only file, say)
    tables = table_checksums(conn)
    partitions = _archive_sources(archive.archive_partitions(conn))
    archive_bytes = sum(p["size_bytes"] for p in partitions)
    if dry_run:
        return {"step": "backup", "dry_run": True, "backup_dir": str(folder), "compressed": compress,
                "database_size_bytes": source.stat().st_size,
                "rows": sum(t["rows"] for t in tables.values()),
                "archive_files": [p["path"] for p in partitions], "archive_bytes": archive_bytes}
    wal = Path(str(source) + ".wal")
    if _read_only(conn) and wal.exists() and wal.stat().st_size > 0:
        # the copy of the file alone would lack what the WAL holds (a dry run, which copies nothing, may go on)
        raise MaintenanceError(f"{wal} holds changes not yet written into {source}, which is open read-only",
                               "run a step that writes once (e.g. --optimize-db) where the file is writable, "
                               "then back it up")
    fast = table_checksums(conn, method="hash")  # to verify the copy in this process, quickly
    folder.mkdir(parents=True, exist_ok=True)
    _remove_unfinished(folder, source)
    base, lock_fd = _reserve_name(folder, source, now)
    try:
        return _write_backup(conn, source, folder, base, tables, partitions, fast, compress=compress, now=now)
    finally:
        (folder / (base + LOCK_SUFFIX)).unlink(missing_ok=True)  # while still held: no one takes it for stale
        os.close(lock_fd)


def _write_backup(conn, source: Path, folder: Path, base: str, tables: dict, partitions: list[dict], fast: dict,
                  *, compress: bool, now: dt.datetime) -> dict:
    """Copy, verify and describe the backup `base` (its name reserved by the caller); nothing is left of it on
    failure."""
    archive_bytes = sum(p["size_bytes"] for p in partitions)
    stored = folder / (base + (".duckdb.gz" if compress else ".duckdb"))
    raw_partial = folder / (base + ".duckdb.partial")
    gz_partial = folder / (base + ".duckdb.gz.partial")
    archive_folder = folder / (base + ARCHIVE_SUFFIX)
    archive_partial = folder / (base + ARCHIVE_SUFFIX + ".partial")
    try:
        with open(source, "rb") as src, open(raw_partial, "wb") as dst:
            database_sha = _copy_hashing(src, dst)
        database_size = raw_partial.stat().st_size
        _verify_copy(raw_partial, fast, method="hash")
        if compress:
            with open(raw_partial, "rb") as src, gzip.open(gz_partial, "wb", compresslevel=6) as dst:
                shutil.copyfileobj(src, dst, _CHUNK)
            raw_partial.unlink()
            os.replace(gz_partial, stored)
        else:
            os.replace(raw_partial, stored)
        archived = _copy_archive(partitions, archive_partial, archive_folder.name) if partitions else []
        if partitions:
            os.replace(archive_partial, archive_folder)
        manifest = {
            "tool": TOOL, "manifest_version": MANIFEST_VERSION, "created_at": now.isoformat() + "Z",
            "source_db": str(source), "backup_file": stored.name, "compression": "gzip" if compress else None,
            "sha256": sha256_file(stored), "size_bytes": stored.stat().st_size,
            "database_sha256": database_sha, "database_size_bytes": database_size,
            "schema_version": schema.current_version(conn), "duckdb_version": duckdb.__version__,
            "tables": tables,
        }
        if archived:
            manifest["archive_dir"] = archive_folder.name
            manifest["archive"] = archived
        manifest_path = folder / (base + MANIFEST_SUFFIX)
        partial = manifest_path.with_name(manifest_path.name + ".partial")
        partial.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(partial, manifest_path)
    except BaseException:
        for leftover in (raw_partial, gz_partial, stored, folder / (base + MANIFEST_SUFFIX + ".partial")):
            leftover.unlink(missing_ok=True)
        for leftover in (archive_partial, archive_folder):
            shutil.rmtree(leftover, ignore_errors=True)
        raise
    log.info("backup: %s -> %s (%d bytes, %d tables verified, %d archive file(s))", source, stored,
             manifest["size_bytes"], len(tables), len(archived))
    return {"step": "backup", "backup": str(stored), "manifest": str(manifest_path),
            "compressed": compress, "size_bytes": manifest["size_bytes"],
            "database_size_bytes": database_size, "tables": len(tables),
            "rows": sum(t["rows"] for t in tables.values()),
            "archive_dir": str(archive_folder) if archived else None, "archive_files": len(archived),
            "archive_bytes": archive_bytes}


def _archive_sources(partitions: list[dict]) -> list[dict]:
    """The archived partitions with their file sizes; a file that is not where the database says fails the
    backup, which would otherwise lose those rows without a word."""
    missing = [p for p in partitions if not Path(p["path"]).is_file()]
    if missing:
        names = ", ".join(p["path"] for p in missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise MaintenanceError(
            f"{len(missing)} archived Parquet file(s) the database names are missing: {names}",
            "put the archive folder back where the database expects it (--check-integrity lists every missing "
            "file); no backup was made")
    return [{**p, "size_bytes": Path(p["path"]).stat().st_size} for p in partitions]


def _copy_archive(partitions: list[dict], into: Path, final_name: str) -> list[dict]:
    """Copy the archived files into `into/<table>/`, each checked against the sha256 recorded when it was
    archived; return their manifest entries (paths relative to the backup folder, under `final_name`)."""
    shutil.rmtree(into, ignore_errors=True)
    entries, used = [], set()
    for p in partitions:
        source = Path(p["path"])
        name, n = source.name, 0
        while (p["table"], name) in used:  # two archive folders may hold files of one name
            n += 1
            name = f"{source.stem}-{n}{source.suffix}"
        used.add((p["table"], name))
        (into / p["table"]).mkdir(parents=True, exist_ok=True)
        with open(source, "rb") as src, open(into / p["table"] / name, "wb") as dst:
            digest = _copy_hashing(src, dst)
        if digest != p["sha256"]:
            raise MaintenanceError(
                f"archived file {source} changed after it was archived (sha256 {digest}, archived_partitions "
                f"says {p['sha256']})", "its rows can no longer be trusted; no backup was made")
        entries.append({"partition_id": p["partition_id"], "table": p["table"], "source_path": str(source),
                        "file": f"{final_name}/{p['table']}/{name}", "rows": p["rows"], "sha256": digest,
                        "size_bytes": p["size_bytes"]})
    return entries


def _base_of(path: Path) -> str:
    """A backup's name without its suffix: what its manifest and archive folder are named after."""
    name = path.name
    if name.endswith(MANIFEST_SUFFIX):
        return name.removesuffix(MANIFEST_SUFFIX)
    return name.removesuffix(".gz").removesuffix(".duckdb")


def find_manifest(backup: str | os.PathLike) -> Path:
    """The manifest of a backup, given the manifest itself or the backup file: the manifest of the same name
    beside it, else one in its folder that records the file's size and sha256 (a backup renamed without its
    manifest). Which file a manifest describes is decided by content, never by the name written inside it."""
    path = Path(backup)
    if path.name.endswith(MANIFEST_SUFFIX):
        if path.is_file():
            return path
        raise UsageError(f"backup manifest {path} does not exist", "pass a backup file or its .manifest.json")
    if not path.exists():
        raise UsageError(f"backup {path} does not exist", "pass a backup file or its .manifest.json")
    if not path.is_file():
        raise UsageError(f"backup {path} is not a file", "pass a backup file or its .manifest.json")
    beside = path.with_name(_base_of(path) + MANIFEST_SUFFIX)
    if beside.is_file():
        return beside
    matched = _manifest_by_content(path)
    if matched is not None:
        log.info("restore: %s has no manifest of its name; %s records its sha256", path, matched.name)
        return matched
    raise MaintenanceError(f"backup {path} has no manifest ({beside.name}), and no manifest in its folder records "
                           "its sha256", "only backups made by benchmark_db_maintenance.py --backup can be restored "
                           "and verified; keep a backup's .manifest.json beside it, renamed alike")


def _manifest_by_content(path: Path) -> Path | None:
    """A manifest in `path`'s folder whose recorded size and sha256 are `path`'s (the stored file's own)."""
    size, digest = path.stat().st_size, None
    for candidate in sorted(path.parent.glob("*" + MANIFEST_SUFFIX)):
        try:
            manifest = load_manifest(candidate)
        except MaintenanceError:
            continue
        if manifest.get("size_bytes") != size:
            continue
        digest = digest or sha256_file(path)
        if manifest["sha256"] == digest:
            return candidate
    return None


def _stored_file(manifest_path: Path, manifest: dict) -> Path:
    """The backup file a manifest given on the command line describes: the one of the manifest's own name
    beside it (`<name>.duckdb[.gz]`, a renamed pair), else the one it names (a pair as this tool wrote it).
    Either is verified against the manifest's sha256 before anything is read from it."""
    suffix = ".duckdb.gz" if manifest.get("compression") == "gzip" else ".duckdb"
    own = manifest_path.with_name(_base_of(manifest_path) + suffix)
    named = manifest_path.with_name(manifest["backup_file"])
    for candidate in (own, named):
        if candidate.is_file():
            return candidate
    raise MaintenanceError(f"the backup file of {manifest_path} is missing (neither {own.name} nor {named.name} "
                           "is beside it)", "restore another backup")


def _refuse_if_not_described(stored: Path, manifest: dict, manifest_path: Path) -> None:
    """Refuse a backup file that is not the one `manifest` describes: a truncated or damaged copy, or another
    backup's file. Size first (a truncated copy is said as such, without hashing it), then sha256."""
    size, expected = stored.stat().st_size, manifest.get("size_bytes")
    hint = "refusing to restore it; restore another backup"
    if isinstance(expected, int) and size != expected:
        what = "truncated" if size < expected else "not the file it describes"
        raise MaintenanceError(f"backup {stored} is damaged: it has {size} bytes, {manifest_path.name} says "
                               f"{expected} ({what})", hint)
    _refuse_if_damaged(stored, manifest["sha256"], str(stored), "its file")


def load_manifest(manifest_path: Path) -> dict:
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise MaintenanceError(f"cannot read manifest {manifest_path}: {exc}", "the backup cannot be verified") from exc
    if not isinstance(manifest, dict) or manifest.get("tool") != TOOL or "tables" not in manifest:
        raise MaintenanceError(f"{manifest_path} is not a manifest of {TOOL}", "pass one of this tool's backups")
    # An edited or hand-made manifest must not crash restore or purge (KeyError), and must never name a file
    # outside its own folder: purge deletes the file a manifest names, restore reads it.
    backup_file = manifest.get("backup_file")
    problems = [f"{key} is missing or not a text" for key in ("sha256", "database_sha256", "created_at")
                if not isinstance(manifest.get(key), str)]
    if (not isinstance(backup_file, str) or not NAME_RE.match(backup_file) or Path(backup_file).name != backup_file
            or not backup_file.endswith((".duckdb", ".duckdb.gz"))):
        problems.append(f"backup_file {backup_file!r} is not a backup file name of this tool in its folder")
    if not isinstance(manifest["tables"], dict) or not all(
            isinstance(t, dict) and isinstance(t.get("rows"), int) and "checksum" in t
            for t in manifest["tables"].values()):
        problems.append("tables is not a map of row counts and checksums")
    if isinstance(manifest.get("created_at"), str):
        try:
            created_at(manifest)
        except ValueError:
            problems.append(f"created_at {manifest['created_at']!r} is not a timestamp")
    if problems:
        raise MaintenanceError(f"manifest {manifest_path} is damaged: " + "; ".join(problems),
                               "the backup cannot be verified; restore another backup")
    return manifest


def created_at(manifest: dict) -> dt.datetime:
    """When the backup was made, as naive UTC (this tool writes "...Z"). A manifest edited to carry an offset
    ("+00:00") is converted: its aware time, compared with the naive cutoff, crashed the purge of the folder."""
    stamp = dt.datetime.fromisoformat(manifest["created_at"].rstrip("Z"))
    if stamp.tzinfo is not None:
        stamp = stamp.astimezone(dt.UTC).replace(tzinfo=None)
    return stamp


def restore_backup(backup: str | os.PathLike, target_db: str | os.PathLike, *, force: bool = False,
                   dry_run: bool = False, lock_timeout: float = 30.0,
                   archive_dir: str | os.PathLike | None = None) -> dict:
    """Verify a backup against its manifest and put it at `target_db`; nothing is written unless all agrees.

    Checks, in order: the stored file's sha256, every archived file's sha256, the decompressed database's
    sha256, then every table's row count and checksum. An existing `target_db` is replaced only with `force`,
    atomically and while holding its lock.

    Archived files go back where they were when `target_db` is the backed-up database's own path (and no
    `archive_dir` is given), else under `archive_dir` (default: `<target stem>_archived_data` beside it), and
    the restored database names them there. A file already in place with the same content is kept; one with
    other content is never overwritten.
    """
    manifest_path = find_manifest(backup)
    manifest = load_manifest(manifest_path)
    # the file given is the file restored; a manifest given stands for the backup file of its own name
    given = Path(backup)
    stored = _stored_file(manifest_path, manifest) if given.name.endswith(MANIFEST_SUFFIX) else given
    target = Path(target_db)
    if str(target_db) == ":memory:":
        raise UsageError("cannot restore into :memory:", "pass a file path with --db")
    if target.suffix.lower() in NOT_DATABASE_SUFFIXES:
        # as every writer refuses to create one: and --force replaces a file DuckDB cannot open, such as this
        raise UsageError(f"will not restore into {target}: a {target.suffix} name is for another kind of file, not "
                         "a DuckDB database", f"pass a database path such as {target.with_suffix('.duckdb')}")
    # a dry run refuses too: it must predict the real run, which would refuse (it said "would restore")
    if target.exists() and not force:
        raise UsageError(f"{target} already exists", "restore into a new path, or add --force to replace it")
    _refuse_if_not_described(stored, manifest, manifest_path)
    placed = _plan_archive(manifest_path, manifest, target, archive_dir, stored)
    rows = sum(t["rows"] for t in manifest["tables"].values())
    archive_summary = {"archive_files": len(placed),
                       "archive_dir": str(_common_folder([d for _, _, d, _ in placed])) if placed else None,
                       "replaced": target.exists()}
    if dry_run:
        # a dry run changes nothing: no folder made, no stale copy removed, no copy beside the target
        _refuse_unwritable_folder(target)
        if manifest.get("compression") == "gzip":
            with tempfile.TemporaryDirectory(prefix="benchmark_db_restore_dry_run-") as scratch:
                copy = Path(scratch) / target.name
                _verify_database(copy, manifest, stored, target, _decompress(stored, copy, Path(scratch), manifest))
        else:  # verified where it lies, opened read-only
            _verify_database(stored, manifest, stored, target, sha256_file(stored))
        return {"step": "restore", "dry_run": True, "backup": str(stored), "verified": True,
                "tables": len(manifest["tables"]), "rows": rows, "target": str(target), **archive_summary,
                "archive_to_copy": [str(d) for _, _, d, present in placed if not present]}
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a file where a folder should be, or a read-only place: the user's to fix
        raise UsageError(f"cannot make the folder of {target}: {exc.strerror or exc}",
                         "pass --db a path in a writable folder") from exc
    _remove_stale_restores(target)
    partial = target.with_name(f".{target.name}.restore-{os.getpid()}.partial")
    written: list[Path] = []
    try:
        database_sha = _decompress(stored, partial, target.parent, manifest)
        _verify_database(partial, manifest, stored, target, database_sha)
        if "archive" not in manifest:
            _warn_if_archive_left_behind(partial, stored)
        for entry, source, dest, present in placed:
            if not present:
                _place_archive_file(source, dest, entry["sha256"])
                written.append(dest)
        moved = {entry["partition_id"]: str(dest) for entry, _, dest, _ in placed
                 if str(dest) != entry["source_path"]}
        if moved:
            _point_archive_at(partial, moved)
        if target.exists():
            with _held(target, lock_timeout):
                os.replace(partial, target)
                Path(str(target) + ".wal").unlink(missing_ok=True)
        else:
            # a write-ahead log left beside a database that is gone (a crash, then the file deleted) would be
            # replayed into the restored file on its first open, silently undoing the verified restore
            stale_wal = Path(str(target) + ".wal")
            if stale_wal.exists():
                log.warning("restore: removing %s, a write-ahead log of an earlier database at this path",
                            stale_wal)
                stale_wal.unlink()
            os.replace(partial, target)
        written.clear()  # the restored database names them now
    finally:
        partial.unlink(missing_ok=True)
        Path(str(partial) + ".wal").unlink(missing_ok=True)
        for path in written:  # a restore that did not finish leaves no archive files of its own behind
            path.unlink(missing_ok=True)
    archived = f", {len(placed)} archive file(s) in {archive_summary['archive_dir']}" if placed else ""
    log.info("restore: %s -> %s (%d tables verified%s)", stored, target, len(manifest["tables"]), archived)
    return {"step": "restore", "backup": str(stored), "target": str(target), "verified": True,
            "tables": len(manifest["tables"]), "rows": rows, "created_at": manifest.get("created_at"),
            **archive_summary}


@contextlib.contextmanager
def _held(target: Path, lock_timeout: float):
    """Hold the database `target` while --force replaces it, waiting for its lock as every tool does, so that no
    process has it open. A file DuckDB cannot open (damaged, truncated, empty, not a database: the reason to
    restore) is replaced as it is: it used to stop the restore with DB001 while the dry run said it would go.
    That is safe because DuckDB takes its lock before it reads the file: a damaged file another process holds
    is reported as locked (DB001 after --lock-timeout), not as damaged."""
    try:
        holder = connect(str(target), lock_timeout=lock_timeout, migrate=False)
    except (DatabaseLockedError, DatabaseUnwritableError):
        raise
    except DBConnectionError as exc:
        if not target.is_file():  # a folder: nothing to replace
            raise
        log.warning("restore: %s cannot be opened as a DuckDB database (%s); replacing it", target, exc.message)
        holder = None
    try:
        yield
    finally:
        if holder is not None:
            holder.close()


def _decompress(stored: Path, copy: Path, folder: Path, manifest: dict) -> str:
    """Copy (gunzip) the stored backup to `copy` in `folder`; return the copy's sha256. A failure to read the
    backup blames the backup; a failure to write the copy (a full disk, a read-only folder) names `folder`:
    the backup is fine, and "restore another backup" sent the user the wrong way."""
    opener = gzip.open if manifest.get("compression") == "gzip" else open
    digest = hashlib.sha256()
    try:
        src = opener(stored, "rb")
    except OSError as exc:
        raise MaintenanceError(f"cannot read {stored}: {exc.strerror or exc}", "restore another backup") from exc
    with src:
        try:
            with open(copy, "wb") as dst:
                while True:
                    try:
                        chunk = src.read(_CHUNK)
                    except (OSError, EOFError, zlib.error) as exc:
                        raise MaintenanceError(f"cannot decompress {stored}: {exc}",
                                               "restore another backup") from exc
                    if not chunk:
                        break
                    digest.update(chunk)
                    dst.write(chunk)
        except OSError as exc:  # opening, writing or flushing the copy
            raise _unwritable_folder(folder, exc) from exc
    return digest.hexdigest()


def _unwritable_folder(folder: Path, exc: OSError) -> BenchmarkDBError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return MaintenanceError(f"cannot write the restored copy in {folder}: the folder is full "
                                f"({exc.strerror})", "free space there, or pass --db a path on another disk; "
                                "the backup itself is fine")
    return UsageError(f"cannot write the restored copy in {folder}: the folder is not writable "
                      f"({exc.strerror or exc})", "pass --db a path in a writable folder; the backup itself is fine")


def _refuse_unwritable_folder(target: Path) -> None:
    """What the real restore would refuse about `target`'s folder, found without making it: a file where a
    folder should be, or a folder this user cannot write to."""
    existing = target.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f"cannot make the folder of {target}: {existing} is not a folder",
                         "pass --db a path in a writable folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"cannot write the restored copy in {existing}: the folder is not writable",
                         "pass --db a path in a writable folder; the backup itself is fine")


def _verify_database(copy: Path, manifest: dict, stored: Path, target: Path, database_sha: str) -> None:
    """The decompressed database against the manifest: its sha256, then every table's rows and checksum."""
    if database_sha != manifest["database_sha256"]:
        raise MaintenanceError(f"the database in {stored} does not match its manifest (sha256 "
                               f"{database_sha} != {manifest['database_sha256']})",
                               "refusing to restore it; restore another backup")
    # a restore keeps nothing either: say so, not "the backup was not kept"
    _verify_copy(copy, manifest["tables"], hint="refusing to restore it; nothing was written to "
                                                f"{target}; restore another backup")


def _remove_stale_restores(target: Path) -> None:
    """A restore killed mid-copy leaves a hidden copy as large as the database beside `target`; the next
    restore there removes those whose process is gone."""
    for stale in target.parent.glob(f".{glob.escape(target.name)}.restore-*.partial*"):
        pid = stale.name.removeprefix(f".{target.name}.restore-").split(".", 1)[0]
        if pid.isdigit() and not archive._alive(int(pid)):
            log.info("restore: removing %s, left by an interrupted restore", stale)
            stale.unlink(missing_ok=True)


def _refuse_if_damaged(path: Path, expected: str, backup_name: str, what: str) -> None:
    actual = sha256_file(path)
    if actual != expected:
        raise MaintenanceError(f"backup {backup_name} is damaged: {what} has sha256 {actual}, the manifest says "
                               f"{expected}", "refusing to restore it; restore another backup")


def _common_folder(paths: list[Path]) -> Path:
    return Path(os.path.commonpath([str(p.parent) for p in paths]))


def _plan_archive(manifest_path: Path, manifest: dict, target: Path, archive_dir: str | os.PathLike | None,
                  stored: Path) -> list[tuple[dict, Path, Path, bool]]:
    """Verify the backup's archived files and decide where each goes: (entry, file in the backup, destination,
    already there).

    Writes nothing. Each file is looked for in the archive folder named like the backup file restored (a
    renamed backup's `<name>.archive/`), then like its manifest, then as the manifest records it, and is taken
    only if its sha256 is the recorded one. Back to their own paths when restoring over the backed-up
    database's path, else into one folder that belongs to the restored database."""
    entries = manifest.get("archive") or []
    if not entries:
        return []
    folder = manifest_path.parent.resolve()
    same_place = archive_dir is None and str(target.resolve()) == manifest.get("source_db")
    base = None if same_place else Path(archive_dir or target.parent / f"{target.stem}_archived_data").resolve()
    archive_folders = list(dict.fromkeys([stored.resolve().parent / (_base_of(stored) + ARCHIVE_SUFFIX),
                                          folder / (_base_of(manifest_path) + ARCHIVE_SUFFIX)]))
    plan = []
    for entry in entries:
        recorded = (folder / entry["file"]).resolve()
        if not recorded.is_relative_to(folder):
            raise MaintenanceError(f"{manifest_path.name} names an archive file outside the backup folder: "
                                   f"{entry['file']}", "refusing to restore it; restore another backup")
        inside = Path(*Path(entry["file"]).parts[1:])  # <table>/<file> within the backup's archive folder
        candidates = [(f / inside).resolve() for f in archive_folders if str(inside) != "."]
        candidates = [c for c in candidates if c.is_relative_to(folder)] + [recorded]
        source = next((c for c in dict.fromkeys(candidates) if c.is_file()), None)
        if source is None:
            raise MaintenanceError(f"the archived file {inside} of backup {stored} is missing (looked in "
                                   f"{', '.join(str(c.parent.parent) for c in dict.fromkeys(candidates))})",
                                   "its archived rows cannot be restored; restore another backup")
        _refuse_if_damaged(source, entry["sha256"], str(stored), f"archived file {source}")
        dest = Path(entry["source_path"]) if same_place else base / entry["table"] / recorded.name
        _refuse_inside_a_backup(dest, archive_folders, given=archive_dir is not None)
        present = dest.is_file()
        if present and sha256_file(dest) != entry["sha256"]:
            raise UsageError(f"{dest} already exists with other content than the backup's archived file",
                             "pass --archive-dir DIR to restore the archive elsewhere")
        plan.append((entry, source, dest, present))
    return plan


def _refuse_inside_a_backup(dest: Path, archive_folders: list[Path], *, given: bool) -> None:
    """Refuse to make the restored database name an archive file inside a backup's archive folder: with
    --archive-dir set to that folder every file was "already there", so nothing was copied, and purging the
    backup later deleted the restored database's archived rows. A backup's archive folder is one this backup
    is read from, or is named like one of this tool's (`<backup>.archive`, or beside its `<name>.manifest.json`),
    which is what purge deletes."""
    for folder in dest.resolve().parents:
        named_like_one = folder.name.endswith(ARCHIVE_SUFFIX) and (
            NAME_RE.match(folder.name) is not None
            or folder.with_name(folder.name.removesuffix(ARCHIVE_SUFFIX) + MANIFEST_SUFFIX).is_file())
        if folder in archive_folders or named_like_one:
            where = "--archive-dir" if given else "the archive files' original folder"
            raise UsageError(f"{where} {dest.parent.parent} is inside a backup ({folder} is a backup's archive "
                             "folder): purging that backup would delete the restored database's archived rows",
                             "pass --archive-dir a folder of its own, outside the backup folders")


def _place_archive_file(source: Path, dest: Path, sha: str) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(f".{dest.name}.restore-{os.getpid()}.partial")
    try:
        with open(source, "rb") as src, open(partial, "wb") as dst:
            digest = _copy_hashing(src, dst)
        if digest != sha:
            raise MaintenanceError(f"the copy of {source.name} at {dest} differs from the backup (sha256 {digest})",
                                   "nothing was restored; try again")
        os.replace(partial, dest)
    finally:
        partial.unlink(missing_ok=True)


def _point_archive_at(db_file: Path, moved: dict[str, str]) -> None:
    """Make the not yet placed restored database name its archive files where the restore put them."""
    try:
        conn = duckdb.connect(str(db_file))
        try:
            archive.relocate_archive(conn, moved)
            conn.execute("CHECKPOINT")
        finally:
            conn.close()
    except duckdb.Error as exc:
        raise MaintenanceError(f"cannot point the restored database at its archive files: {exc}",
                               "nothing was restored") from exc


def _warn_if_archive_left_behind(db_file: Path, stored: Path) -> None:
    """A backup made before backups carried the archive: its database may name files that are not in it."""
    conn = duckdb.connect(str(db_file), read_only=True)
    try:
        partitions = archive.archive_partitions(conn)
    finally:
        conn.close()
    missing = [p["path"] for p in partitions if not Path(p["path"]).is_file()]
    if missing:
        log.warning("restore: %s holds no archived files and %d the database names are not here (e.g. %s): "
                    "those rows will not show; --check-integrity lists them", stored.name, len(missing), missing[0])


def _manifest_age_key(path: Path) -> dt.datetime | None:
    match = NAME_RE.match(path.name)
    if not match:
        return None
    return dt.datetime.strptime(match.group("stamp"), "%Y%m%dT%H%M%SZ")


def _read_only(conn) -> bool:
    row = conn.execute("SELECT readonly FROM duckdb_databases() WHERE database_name = current_database()"
                       ).fetchone()
    return bool(row and row[0])


def list_backups(backup_dir: str | os.PathLike) -> list[dict]:
    """This tool's backups in `backup_dir`: one entry per backup with its files (its archive folder too) and
    creation time. The manifest comes first in `files`, so deleting them in order never leaves a manifest
    whose files are gone."""
    folder = Path(backup_dir)
    if not folder.is_dir():
        return []
    backups: dict[str, dict] = {}
    for path in sorted(folder.iterdir()):
        is_archive = (path.is_dir() and not path.is_symlink()
                      and path.name.endswith((ARCHIVE_SUFFIX, ARCHIVE_SUFFIX + ".partial")))
        if not path.is_file() and not is_archive:
            continue
        created = None
        if path.name.endswith(MANIFEST_SUFFIX):
            try:
                manifest = load_manifest(path)
            except MaintenanceError:
                manifest = None
            if manifest is None:
                continue  # a file that merely looks like ours is left alone
            created = created_at(manifest)
            base = path.name.removesuffix(MANIFEST_SUFFIX)
            entry = backups.setdefault(base, {"base": base, "files": [], "created_at": None})
            entry["created_at"] = created
            entry["files"].insert(0, path)
            stored = _own_backup_file(path, manifest)
            if stored is not None and stored not in entry["files"]:
                entry["files"].append(stored)
            archive_folder = folder / (base + ARCHIVE_SUFFIX)
            if archive_folder.is_dir() and not archive_folder.is_symlink() and archive_folder not in entry["files"]:
                entry["files"].append(archive_folder)
            continue
        stamp = _manifest_age_key(path)
        if stamp is None:
            continue
        base = _BASE_SUFFIX_RE.sub("", path.name)
        entry = backups.setdefault(base, {"base": base, "files": [], "created_at": None})
        if path not in entry["files"]:
            entry["files"].append(path)
        if entry["created_at"] is None:
            entry["created_at"] = stamp
    return sorted(backups.values(), key=lambda e: e["created_at"])


def _own_backup_file(manifest_path: Path, manifest: dict) -> Path | None:
    """The backup file a manifest in a backup folder belongs to: the one of its own name, when it is the name
    the manifest records (as this tool wrote it) or the file has the recorded size and sha256 (a renamed pair).
    Never the file another manifest belongs to: a copied manifest must not make purge delete that backup."""
    base = _base_of(manifest_path)
    for suffix in (".duckdb.gz", ".duckdb"):
        candidate = manifest_path.with_name(base + suffix)
        if not candidate.is_file() or candidate.is_symlink():
            continue
        if candidate.name == manifest["backup_file"]:
            return candidate
        if candidate.stat().st_size == manifest.get("size_bytes") and sha256_file(candidate) == manifest["sha256"]:
            return candidate
    return None


def purge_backups(backup_dir: str | os.PathLike, retention_days: float, *, dry_run: bool = False,
                  now: dt.datetime | None = None, keep: tuple[str | os.PathLike, ...] = ()) -> dict:
    """Delete this tool's backups older than `retention_days` (compressed or not, with their archive folders);
    keep everything else: the backups `keep` names (the one the same run just made: `--backup --purge-backups
    --backup-retention 0` deleted it and still named it in its summary), and those a live run is writing."""
    if retention_days is None or retention_days < 0:
        raise UsageError("--backup-retention must be a number of days >= 0", "e.g. --backup-retention 30")
    folder = Path(backup_dir)
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"--backup-dir {folder} is not a folder", "pass the folder the backups are in")
    if not folder.exists():
        # nothing to purge yet (no backup made so far); said, so that a mistyped --backup-dir shows in the log
        log.warning("purge-backups: backup folder %s does not exist; nothing to purge", folder)
    now = now or utc_now()
    cutoff = now - dt.timedelta(days=retention_days)
    keep_files = {Path(p).resolve() for p in keep}
    deleted, kept, unfinished, kept_made = [], [], [], []
    for entry in list_backups(backup_dir):
        with _claimed_unless_written(folder, entry["base"]) as claimed:
            if not claimed:
                # another run is writing it right now: its files are not leftovers, whatever their age
                unfinished.append(entry["base"])
            elif entry["created_at"] < cutoff and any(p.resolve() in keep_files for p in entry["files"]):
                kept.append(entry["base"])
                kept_made.append(entry["base"])
                log.info("purge-backups: keeping %s, made by this run's --backup (--backup-retention %g would "
                         "delete it)", entry["base"], retention_days)
            elif entry["created_at"] < cutoff:
                for path in entry["files"]:
                    if not dry_run:
                        if path.is_dir() and not path.is_symlink():  # the backup's archive folder
                            shutil.rmtree(path)
                        else:
                            path.unlink(missing_ok=True)
                    deleted.append(str(path))
            elif any(path.name.endswith(MANIFEST_SUFFIX) for path in entry["files"]):
                kept.append(entry["base"])
            else:
                # files without a manifest: a backup killed mid-copy: never restorable, so not a backup kept;
                # deleted like the others once past the retention
                unfinished.append(entry["base"])
    verb = "would delete" if dry_run else "deleted"
    for path in deleted:
        log.info("purge-backups: %s %s", verb, path)
    if unfinished:
        log.warning("purge-backups: %d unfinished backup(s) without a manifest (killed, or still being written): "
                    "%s; not counted as kept, and deleted once older than %g days", len(unfinished),
                    ", ".join(unfinished), retention_days)
    return {"step": "purge-backups", "dry_run": dry_run, "backup_dir": str(backup_dir),
            "retention_days": retention_days, "deleted_files": deleted, "kept_backups": len(kept),
            "kept_this_run": kept_made, "unfinished_backups": unfinished, "folder_missing": not folder.exists()}

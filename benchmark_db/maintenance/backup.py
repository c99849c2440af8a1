"""Backups you can trust: consistent, verified, restorable, and purged by age without touching anything else.

A backup is the database file copied after a checkpoint while this process holds the database (so nothing
writes during the copy), checked by opening the copy and comparing the row count and checksum of every
table, optionally gzip-compressed, and described by a manifest written last (its presence marks a complete
backup): row counts and checksums per table, the stored file's sha256 and the database's own sha256.
Restore verifies all of it again (one flipped byte anywhere is refused) before it atomically puts the file
in place. Purge deletes only files this tool wrote, recognised by manifest or by name, compressed ones too.
"""
from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import logging
import os
import re
import shutil
from pathlib import Path

import duckdb

from benchmark_db import schema
from benchmark_db.connection import connect
from benchmark_db.errors import MaintenanceError, UsageError
from benchmark_db.maintenance.checksums import compare_checksums, table_checksums

log = logging.getLogger("benchmark_db.maintenance")

TOOL = "benchmark_db_maintenance"
MANIFEST_VERSION = 1
DEFAULT_BACKUP_DIR = "./db_backups"
PREFIX = "benchmark_db_backup"
MANIFEST_SUFFIX = ".manifest.json"
# benchmark_db_backup-<db stem>-<YYYYmmddTHHMMSSZ>[-N].duckdb[.gz][.manifest.json|.partial]
NAME_RE = re.compile(rf"^{PREFIX}-(?P<stem>.+)-(?P<stamp>\d{{8}}T\d{{6}}Z)(?:-\d+)?"
                     r"(?:\.duckdb(?:\.gz)?(?:\.partial)?|\.manifest\.json)$")
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


def _verify_copy(path: Path, expected: dict[str, dict], method: str = "md5") -> None:
    try:
        conn = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        raise MaintenanceError(f"the copy {path} cannot be opened: {exc}", "the backup was not kept") from exc
    try:
        problems = compare_checksums(expected, table_checksums(conn, method=method))
    finally:
        conn.close()
    if problems:
        raise MaintenanceError(f"the copy {path} differs from its source: " + "; ".join(problems),
                               "the backup was not kept")


def _base_name(backup_dir: Path, db_path: Path, now: dt.datetime) -> str:
    stem = re.sub(r"[^A-Za-z0-9_.]+", "_", db_path.name.removesuffix(".duckdb")) or "db"
    base = f"{PREFIX}-{stem}-{now:%Y%m%dT%H%M%SZ}"
    candidate, n = base, 0
    while any(backup_dir.glob(candidate + ".*")):
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def create_backup(conn, db_path: str | os.PathLike, backup_dir: str | os.PathLike = DEFAULT_BACKUP_DIR, *,
                  compress: bool = False, dry_run: bool = False, now: dt.datetime | None = None) -> dict:
    """Back up the database `conn` has open (at `db_path`) into `backup_dir`; return the manifest.

    `conn` must be a writable connection: it checkpoints first and holds the file during the copy.
    """
    if str(db_path) == ":memory:":
        raise MaintenanceError("cannot back up an in-memory database", "pass a database file with --db")
    source = Path(db_path).resolve()
    folder = Path(backup_dir)
    now = now or utc_now()
    conn.execute("FORCE CHECKPOINT")
    tables = table_checksums(conn)
    if dry_run:
        return {"step": "backup", "dry_run": True, "backup_dir": str(folder), "compressed": compress,
                "database_size_bytes": source.stat().st_size,
                "rows": sum(t["rows"] for t in tables.values())}
    fast = table_checksums(conn, method="hash")  # to verify the copy in this process, quickly
    folder.mkdir(parents=True, exist_ok=True)
    base = _base_name(folder, source, now)
    stored = folder / (base + (".duckdb.gz" if compress else ".duckdb"))
    raw_partial = folder / (base + ".duckdb.partial")
    gz_partial = folder / (base + ".duckdb.gz.partial")
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
        manifest = {
            "tool": TOOL, "manifest_version": MANIFEST_VERSION, "created_at": now.isoformat() + "Z",
            "source_db": str(source), "backup_file": stored.name, "compression": "gzip" if compress else None,
            "sha256": sha256_file(stored), "size_bytes": stored.stat().st_size,
            "database_sha256": database_sha, "database_size_bytes": database_size,
            "schema_version": schema.current_version(conn), "duckdb_version": duckdb.__version__,
            "tables": tables,
        }
        manifest_path = folder / (base + MANIFEST_SUFFIX)
        partial = manifest_path.with_name(manifest_path.name + ".partial")
        partial.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(partial, manifest_path)
    except BaseException:
        for leftover in (raw_partial, gz_partial, stored, folder / (base + MANIFEST_SUFFIX + ".partial")):
            leftover.unlink(missing_ok=True)
        raise
    log.info("backup: %s -> %s (%d bytes, %d tables verified)", source, stored, manifest["size_bytes"],
             len(tables))
    return {"step": "backup", "backup": str(stored), "manifest": str(manifest_path),
            "compressed": compress, "size_bytes": manifest["size_bytes"],
            "database_size_bytes": database_size, "tables": len(tables),
            "rows": sum(t["rows"] for t in tables.values())}


def find_manifest(backup: str | os.PathLike) -> Path:
    """The manifest of a backup, given the manifest itself or the backup file next to it."""
    path = Path(backup)
    if path.name.endswith(MANIFEST_SUFFIX):
        candidates = [path]
    else:
        name = path.name
        for suffix in (".gz", ".duckdb"):
            name = name.removesuffix(suffix)
        candidates = [path.with_name(name + MANIFEST_SUFFIX)]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    if not path.exists():
        raise UsageError(f"backup {path} does not exist", "pass a backup file or its .manifest.json")
    raise MaintenanceError(f"backup {path} has no manifest ({candidates[0].name})",
                           "only backups made by benchmark_db_maintenance.py --backup can be restored and verified")


def load_manifest(manifest_path: Path) -> dict:
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise MaintenanceError(f"cannot read manifest {manifest_path}: {exc}", "the backup cannot be verified") from exc
    if not isinstance(manifest, dict) or manifest.get("tool") != TOOL or "tables" not in manifest:
        raise MaintenanceError(f"{manifest_path} is not a manifest of {TOOL}", "pass one of this tool's backups")
    return manifest


def restore_backup(backup: str | os.PathLike, target_db: str | os.PathLike, *, force: bool = False,
                   dry_run: bool = False, lock_timeout: float = 30.0) -> dict:
    """Verify a backup against its manifest and put it at `target_db`; nothing is written unless all agrees.

    Checks, in order: the stored file's sha256, the decompressed database's sha256, then every table's row
    count and checksum. An existing `target_db` is replaced only with `force`, atomically and while holding
    its lock.
    """
    manifest_path = find_manifest(backup)
    manifest = load_manifest(manifest_path)
    stored = manifest_path.with_name(manifest["backup_file"])
    target = Path(target_db)
    if str(target_db) == ":memory:":
        raise UsageError("cannot restore into :memory:", "pass a file path with --db")
    if target.exists() and not force and not dry_run:
        raise UsageError(f"{target} already exists", "restore into a new path, or add --force to replace it")
    if not stored.is_file():
        raise MaintenanceError(f"the backup file {stored} named by {manifest_path.name} is missing",
                               "restore another backup")
    actual_sha = sha256_file(stored)
    if actual_sha != manifest["sha256"]:
        raise MaintenanceError(f"backup {stored.name} is damaged: its sha256 is {actual_sha}, the manifest "
                               f"says {manifest['sha256']}", "refusing to restore it; restore another backup")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.restore-{os.getpid()}.partial")
    try:
        opener = gzip.open if manifest.get("compression") == "gzip" else open
        try:
            with opener(stored, "rb") as src, open(partial, "wb") as dst:
                database_sha = _copy_hashing(src, dst)
        except (OSError, EOFError) as exc:
            raise MaintenanceError(f"cannot decompress {stored.name}: {exc}", "restore another backup") from exc
        if database_sha != manifest["database_sha256"]:
            raise MaintenanceError(f"the database in {stored.name} does not match its manifest (sha256 "
                                   f"{database_sha} != {manifest['database_sha256']})",
                                   "refusing to restore it; restore another backup")
        _verify_copy(partial, manifest["tables"])
        rows = sum(t["rows"] for t in manifest["tables"].values())
        if dry_run:
            return {"step": "restore", "dry_run": True, "backup": str(stored), "verified": True,
                    "tables": len(manifest["tables"]), "rows": rows, "target": str(target)}
        if target.exists():
            holder = connect(str(target), lock_timeout=lock_timeout, migrate=False)  # wait for its lock
            try:
                os.replace(partial, target)
                Path(str(target) + ".wal").unlink(missing_ok=True)
            finally:
                holder.close()
        else:
            # a write-ahead log left beside a database that is gone (a crash, then the file deleted) would be
            # replayed into the restored file on its first open, silently undoing the verified restore
            stale_wal = Path(str(target) + ".wal")
            if stale_wal.exists():
                log.warning("restore: removing %s, a write-ahead log of an earlier database at this path",
                            stale_wal)
                stale_wal.unlink()
            os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    log.info("restore: %s -> %s (%d tables verified)", stored, target, len(manifest["tables"]))
    return {"step": "restore", "backup": str(stored), "target": str(target), "verified": True,
            "tables": len(manifest["tables"]), "rows": rows, "created_at": manifest.get("created_at")}


def _manifest_age_key(path: Path) -> dt.datetime | None:
    match = NAME_RE.match(path.name)
    if not match:
        return None
    return dt.datetime.strptime(match.group("stamp"), "%Y%m%dT%H%M%SZ")


def list_backups(backup_dir: str | os.PathLike) -> list[dict]:
    """This tool's backups in `backup_dir`: one entry per backup with its files and creation time."""
    folder = Path(backup_dir)
    if not folder.is_dir():
        return []
    backups: dict[str, dict] = {}
    for path in sorted(folder.iterdir()):
        if not path.is_file():
            continue
        created = None
        if path.name.endswith(MANIFEST_SUFFIX):
            try:
                manifest = load_manifest(path)
            except MaintenanceError:
                manifest = None
            if manifest is None:
                continue  # a file that merely looks like ours is left alone
            created = dt.datetime.fromisoformat(manifest["created_at"].rstrip("Z"))
            base = path.name.removesuffix(MANIFEST_SUFFIX)
            entry = backups.setdefault(base, {"base": base, "files": [], "created_at": None})
            entry["created_at"] = created
            entry["files"].append(path)
            stored = folder / manifest["backup_file"]
            if stored.is_file() and stored not in entry["files"]:
                entry["files"].append(stored)
            continue
        stamp = _manifest_age_key(path)
        if stamp is None:
            continue
        base = re.sub(r"\.duckdb(\.gz)?(\.partial)?$", "", path.name)
        entry = backups.setdefault(base, {"base": base, "files": [], "created_at": None})
        if path not in entry["files"]:
            entry["files"].append(path)
        if entry["created_at"] is None:
            entry["created_at"] = stamp
    return sorted(backups.values(), key=lambda e: e["created_at"])


def purge_backups(backup_dir: str | os.PathLike, retention_days: float, *, dry_run: bool = False,
                  now: dt.datetime | None = None) -> dict:
    """Delete this tool's backups older than `retention_days` (compressed or not); keep everything else."""
    if retention_days is None or retention_days < 0:
        raise UsageError("--backup-retention must be a number of days >= 0", "e.g. --backup-retention 30")
    now = now or utc_now()
    cutoff = now - dt.timedelta(days=retention_days)
    deleted, kept = [], []
    for entry in list_backups(backup_dir):
        if entry["created_at"] < cutoff:
            for path in entry["files"]:
                if not dry_run:
                    path.unlink(missing_ok=True)
                deleted.append(str(path))
        else:
            kept.append(entry["base"])
    verb = "would delete" if dry_run else "deleted"
    for path in deleted:
        log.info("purge-backups: %s %s", verb, path)
    return {"step": "purge-backups", "dry_run": dry_run, "backup_dir": str(backup_dir),
            "retention_days": retention_days, "deleted_files": deleted, "kept_backups": len(kept)}

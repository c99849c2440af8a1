"""Archiving or removing legacy JSON files that the database provably holds.

A file is touched only when the ingest log (`ingested_files`) records it as `ingested` more than
`older_than_days` ago, it is a .json file, and its sha256 today still equals the one recorded at ingest.
`remove` additionally requires the original document to be stored in `source_documents`, so removing a file
can never lose a field the converter did not map. Everything else (changed files, failed or skipped files,
files the log does not know, missing files) is left untouched and reported with the reason. An archived
or removed file is recorded in `ingested_files.archived_to` (the archive path, or `removed`).
"""
from __future__ import annotations

import datetime as dt
import glob
import hashlib
import logging
import os
import shutil
from pathlib import Path

from benchmark_db.errors import UsageError
from benchmark_db.maintenance.archive import PARTIAL_SUFFIX, partial_path, remove_dead_partials
from benchmark_db.schema import REMOVED_MARK

log = logging.getLogger("benchmark_db.maintenance")

DEFAULT_ARCHIVE_DIR = "./archived_json"
ACTIONS = ("archive", "remove")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _archive_target(path: Path, archive_dir: Path, base_dir: Path) -> Path:
    resolved = path.resolve()
    try:
        relative = resolved.relative_to(base_dir.resolve())
    except ValueError:
        relative = Path(*resolved.parts[1:])  # outside the working folder: keep its full path below the archive
    return archive_dir / relative


def clean_json_files(conn, older_than_days: float, action: str, *, archive_dir: str | os.PathLike | None = None,
                     dry_run: bool = False, now: dt.datetime | None = None,
                     base_dir: str | os.PathLike | None = None) -> dict:
    """Archive or remove the JSON files the ingest log proves are in the database; report every decision.

    Paths in the log that are relative are taken relative to `base_dir` (default: the working folder).
    """
    if action not in ACTIONS:
        raise UsageError(f"--action must be one of {', '.join(ACTIONS)}, not {action!r}", "e.g. --action archive")
    if older_than_days is None or older_than_days < 0:
        raise UsageError("--older-than must be a number of days >= 0", "e.g. --older-than 30")
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    cutoff = now - dt.timedelta(days=older_than_days)
    base = Path(base_dir) if base_dir else Path.cwd()
    archive_root = Path(archive_dir or DEFAULT_ARCHIVE_DIR)
    if not archive_root.is_absolute():
        archive_root = base / archive_root
    has_documents = conn.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_catalog = current_database() "
        "AND table_schema = 'main' AND table_name = 'source_documents'").fetchone()[0] > 0
    rows = conn.execute(
        "SELECT f.path, f.sha256, f.status, f.ingested_at, f.archived_to, "
        + ("d.sha256 IS NOT NULL" if has_documents else "false") +
        " FROM ingested_files f "
        + ("LEFT JOIN source_documents d ON d.sha256 = f.sha256 " if has_documents else "") +
        "WHERE lower(f.path) LIKE '%.json' ORDER BY f.path").fetchall()
    done, untouched = [], []
    for logged_path, sha, status, ingested_at, archived_to, stored in rows:
        path = Path(logged_path)
        if not path.is_absolute():
            path = base / path

        def leave(reason: str, _path=logged_path) -> None:
            untouched.append({"path": _path, "reason": reason})

        if archived_to:
            continue  # handled by an earlier run
        if status != "ingested":
            leave(f"ingest status is {status}")
            continue
        if ingested_at is None or ingested_at >= cutoff:
            leave(f"ingested less than {older_than_days:g} days ago")
            continue
        if not path.is_file():
            target = _archive_target(path, archive_root, base) if action == "archive" else None
            if target is not None and target.is_file() and sha and _sha256(target) == sha:
                # a run killed between deleting the original and logging it: its archived copy is intact, so
                # this run completes it (otherwise "file not found" every night and archived_to never set)
                if not dry_run:
                    conn.execute("UPDATE ingested_files SET archived_to = ? WHERE path = ?",
                                 [str(target), logged_path])
                done.append({"path": logged_path, "action": "archive", "to": str(target)})
                continue
            if action == "remove" and stored and sha:
                # the same for --action remove: the original document is stored, so the file's removal is done
                if not dry_run:
                    conn.execute("UPDATE ingested_files SET archived_to = ? WHERE path = ?",
                                 [REMOVED_MARK, logged_path])
                done.append({"path": logged_path, "action": "remove", "to": None})
                continue
            leave("file not found")
            continue
        if not sha or _sha256(path) != sha:
            leave("file changed since it was ingested (sha256 differs)")
            continue
        if action == "remove" and not stored:
            leave("the original document is not stored in the database, so removing it could lose data")
            continue
        if action == "archive":
            target = _archive_target(path, archive_root, base)
            if target.exists() and _sha256(target) != sha:
                leave(f"a different file already exists at {target}")
                continue
            if not dry_run:
                target.parent.mkdir(parents=True, exist_ok=True)
                # a copy of this target that a killed run left (its process gone)
                remove_dead_partials(target.parent, f".{glob.escape(target.name)}.*{PARTIAL_SUFFIX}", "clean-json")
                # copied under a partial name and renamed when whole: a copy killed half-way (kill -9, power
                # loss) at the target's own name was "a different file" to every later run, which then left
                # the original where it was for good
                partial = partial_path(target)
                try:
                    shutil.copy2(path, partial)
                    if _sha256(partial) != sha:
                        leave("the archived copy does not match; the file was kept")
                        continue
                    os.replace(partial, target)
                finally:
                    partial.unlink(missing_ok=True)
                path.unlink()
                conn.execute("UPDATE ingested_files SET archived_to = ? WHERE path = ?", [str(target), logged_path])
            done.append({"path": logged_path, "action": "archive", "to": str(target)})
        else:
            if not dry_run:
                path.unlink()
                conn.execute("UPDATE ingested_files SET archived_to = ? WHERE path = ?", [REMOVED_MARK, logged_path])
            done.append({"path": logged_path, "action": "remove", "to": None})
    verb = f"would {action}" if dry_run else f"{action}d"
    for item in done:
        log.info("clean-json: %s %s", verb, item["path"])
    for item in untouched:
        log.info("clean-json: left %s untouched: %s", item["path"], item["reason"])
    return {"step": "clean-json", "dry_run": dry_run, "action": action, "cutoff": cutoff.isoformat(),
            "archive_dir": str(archive_root) if action == "archive" else None,
            "files": done, "untouched": untouched}

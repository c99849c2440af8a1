"""Restore reads and verifies exactly the backup file it is given, never the one a manifest's text names.

A manifest is matched to its backup file by content (the size and sha256 it records), so a backup and its
manifest renamed alike restore, and a truncated or damaged copy beside a copied manifest is refused with one
DB005 line naming it, even while the file the manifest names is intact beside it. Real databases in tmp_path.
"""
from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

import benchmark_db_maintenance as maintenance_cli
from benchmark_db.maintenance import backup
from tests.test_backup_archive import (
    FIRST_CUT,
    archived,
    backed_up,
    partition_paths,
    problems_of,
    what_it_shows,
)
from tests.test_maintenance import checksums_of


@pytest.fixture(autouse=True)
def _no_stale_log_handler():
    """An earlier test's main() leaves the package logger writing to that test's closed stderr; the library
    calls here (before main) would log a "Logging error" traceback into this test's stderr."""
    logger = logging.getLogger("benchmark_db")
    saved = logger.handlers[:]
    logger.handlers[:] = []
    yield
    logger.handlers[:] = saved


def renamed(made: dict, folder: Path, name: str, *, manifest: bool = True, move: bool = False) -> Path:
    """Copy (or move) a backup, and its manifest unless told not to, to `folder/name.duckdb[.gz]`."""
    stored = Path(made["backup"])
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".duckdb.gz" if stored.name.endswith(".gz") else ".duckdb"
    copy = shutil.move if move else shutil.copyfile
    copy(stored, folder / (name + suffix))
    if manifest:
        copy(made["manifest"], folder / (name + backup.MANIFEST_SUFFIX))
    return folder / (name + suffix)


def restore_cli(backup_path, target, *extra) -> int:
    return maintenance_cli.main(["--restore", str(backup_path), "--db", str(target), *extra])


def one_db005_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("error ")]
    assert len(lines) == 1 and lines[0].startswith("error DB005: "), err
    assert "unexpected" not in err and "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("given", ["file", "manifest"])
@pytest.mark.slow  # backs up and restores: about 0.7 s
def test_a_backup_renamed_with_its_manifest_restores(sample_db_path, tmp_path, capsys, compress, given):
    made = backed_up(sample_db_path, tmp_path / "bk", compress=compress)
    # the pair renamed into another folder: the file the manifest's text names is not there
    stored = renamed(made, tmp_path / "kept", "pre-upgrade")
    chosen = stored if given == "file" else stored.with_name("pre-upgrade" + backup.MANIFEST_SUFFIX)
    target = tmp_path / "restored.duckdb"
    assert restore_cli(chosen, target) == 0, capsys.readouterr().err
    assert checksums_of(target) == checksums_of(sample_db_path)
    assert str(stored) in capsys.readouterr().err  # the log says which file it restored


@pytest.mark.parametrize("given", ["file", "manifest"])
def test_a_truncated_copy_beside_a_copied_manifest_is_refused(sample_db_path, tmp_path, capsys, given):
    made = backed_up(sample_db_path, tmp_path / "bk", compress=True)
    folder = Path(made["backup"]).parent  # the intact original stays beside the copy
    trunc = folder / "trunc.duckdb.gz"
    trunc.write_bytes(Path(made["backup"]).read_bytes()[:2000])
    shutil.copyfile(made["manifest"], folder / "trunc.manifest.json")
    chosen = trunc if given == "file" else folder / "trunc.manifest.json"
    target = tmp_path / "restored.duckdb"
    assert restore_cli(chosen, target) == 1
    line = one_db005_line(capsys.readouterr().err)
    assert str(trunc) in line and "truncated" in line and "2000 bytes" in line
    assert not target.exists() and not list(tmp_path.glob(".restored.duckdb*"))


def test_a_damaged_copy_of_the_same_size_is_refused_and_the_target_kept(sample_db_path, db_path, tmp_path, capsys):
    made = backed_up(sample_db_path, tmp_path / "bk")
    folder = Path(made["backup"]).parent
    data = bytearray(Path(made["backup"]).read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged = folder / "damaged.duckdb"
    damaged.write_bytes(bytes(data))
    shutil.copyfile(made["manifest"], folder / "damaged.manifest.json")
    before = Path(db_path).read_bytes()
    assert restore_cli(damaged, db_path, "--force") == 1
    line = one_db005_line(capsys.readouterr().err)
    assert str(damaged) in line and "sha256" in line
    assert Path(db_path).read_bytes() == before  # --force replaces only after everything was verified


@pytest.mark.slow  # backs up and restores: about 0.7 s
def test_a_backup_renamed_without_its_manifest_finds_it_by_sha256(sample_db_path, tmp_path, capsys):
    made = backed_up(sample_db_path, tmp_path / "bk", compress=True)
    stored = renamed(made, Path(made["backup"]).parent, "pre-upgrade", manifest=False, move=True)
    target = tmp_path / "restored.duckdb"
    assert restore_cli(stored, target) == 0, capsys.readouterr().err
    assert checksums_of(target) == checksums_of(sample_db_path)
    # a file no manifest describes is still refused, by name and by content
    other = stored.with_name("other.duckdb.gz")
    other.write_bytes(stored.read_bytes()[:-1] + b"x")
    assert restore_cli(other, tmp_path / "other.duckdb") == 1
    line = one_db005_line(capsys.readouterr().err)
    assert str(other) in line and "no manifest" in line


@pytest.mark.slow  # backs up and restores: about 0.6 s
def test_a_manifest_given_alone_still_restores_the_file_it_names(sample_db_path, tmp_path):
    made = backed_up(sample_db_path, tmp_path / "bk")
    manifest = Path(made["manifest"])
    copied = manifest.with_name("copy" + backup.MANIFEST_SUFFIX)  # no copy.duckdb beside it
    shutil.copyfile(manifest, copied)
    out = backup.restore_backup(copied, tmp_path / "restored.duckdb")
    assert out["backup"] == made["backup"]
    assert checksums_of(tmp_path / "restored.duckdb") == checksums_of(sample_db_path)


@pytest.mark.slow  # about 1 s: archives, backs up and restores with the archive
def test_a_renamed_backup_with_its_renamed_archive_restores_its_rows(sample_db_path, tmp_path):
    archived(sample_db_path, tmp_path / "archived_data", FIRST_CUT)
    before = what_it_shows(sample_db_path)
    made = backed_up(sample_db_path, tmp_path / "bk", compress=True)
    kept = tmp_path / "kept"
    stored = renamed(made, kept, "pre-upgrade")
    shutil.copytree(made["archive_dir"], kept / ("pre-upgrade" + backup.ARCHIVE_SUFFIX))
    # the original backup, database and archive folder are gone: only the renamed copies remain
    shutil.rmtree(tmp_path / "bk")
    shutil.rmtree(tmp_path / "archived_data")
    Path(sample_db_path).unlink()
    target = tmp_path / "machine2" / "restored.duckdb"
    out = backup.restore_backup(stored, target)
    assert out["archive_files"] == made["archive_files"] == 4
    assert what_it_shows(target) == before
    assert problems_of(target) == []
    assert all(Path(p).is_relative_to(tmp_path / "machine2") for p in partition_paths(target))


@pytest.mark.slow  # about 1 s: archives, backs up and restores with the archive
def test_a_damaged_file_in_a_renamed_archive_is_refused_with_the_file_named(sample_db_path, tmp_path, capsys):
    archived(sample_db_path, tmp_path / "archived_data", FIRST_CUT)
    made = backed_up(sample_db_path, tmp_path / "bk")
    folder = Path(made["backup"]).parent
    stored = renamed(made, folder, "pre-upgrade")  # the original backup and its archive stay intact beside it
    copy = shutil.copytree(made["archive_dir"], folder / ("pre-upgrade" + backup.ARCHIVE_SUFFIX))
    victim = next(Path(copy).glob("performance_results/*.parquet"))
    victim.write_bytes(b"not the archived rows")
    target = tmp_path / "restored.duckdb"
    assert restore_cli(stored, target) == 1
    line = one_db005_line(capsys.readouterr().err)
    assert str(victim) in line and "sha256" in line
    assert not target.exists()


@pytest.mark.slow  # a compressed backup: about 0.4 s
def test_purge_pairs_a_copied_manifest_with_its_own_file_not_the_one_it_names(sample_db_path, tmp_path):
    made = backed_up(sample_db_path, tmp_path / "bk", compress=True)
    folder = Path(made["backup"]).parent
    renamed(made, folder, "pre-upgrade")
    shutil.copyfile(made["manifest"], folder / "lonely.manifest.json")  # a manifest whose file is gone
    (folder / "lonely.duckdb").write_bytes(b"someone's database, not this backup")
    files = {entry["base"]: sorted(p.name for p in entry["files"]) for entry in backup.list_backups(folder)}
    original = Path(made["backup"]).name
    assert files["pre-upgrade"] == ["pre-upgrade.duckdb.gz", "pre-upgrade.manifest.json"]
    assert files["lonely"] == ["lonely.manifest.json"]
    assert sorted(files[Path(made["manifest"]).name.removesuffix(".manifest.json")]) == sorted(
        [original, Path(made["manifest"]).name])

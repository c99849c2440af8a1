"""Backups carry the archive: the Parquet files of --archive-data travel with the database file they belong to.

Real database files in tmp_path, no mocks: a restore into another folder, with the original archive folder
and database gone, must show exactly the rows the backed-up database showed.
"""
from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import duckdb
import pytest

import benchmark_db_maintenance as maintenance_cli
from benchmark_db.connection import connect
from benchmark_db.errors import MaintenanceError, UsageError
from benchmark_db.maintenance import archive, backup, integrity

# the sample data is created 2025-03-01 .. 2025-03-03: archiving "older than 0 days" at these moments
# moves the first day's rows, then the second day's, and leaves live rows behind each time
FIRST_CUT = dt.datetime(2025, 3, 2)
SECOND_CUT = dt.datetime(2025, 3, 3)
ALL_VIEWS = ("performance_results_all", "hardware_compatibility_all", "integration_test_results_all",
             "web_platform_results_all", "benchmark_performance", "latest_performance_metrics",
             "cross_platform_performance", "model_hardware_compatibility", "integration_test_status")


def archived(db_path, archive_dir: Path, now: dt.datetime) -> dict:
    conn = connect(db_path)
    try:
        return archive.archive_old_rows(conn, 0, archive_dir, now=now)
    finally:
        conn.close()


def backed_up(db_path, folder: Path, **options) -> dict:
    conn = connect(db_path)
    try:
        return backup.create_backup(conn, db_path, folder, **options)
    finally:
        conn.close()


def what_it_shows(db_path) -> dict:
    """Row counts of every view over the archive, the rows themselves, and what a reader sees under the
    tables' own names."""
    conn = connect(db_path, read_only=True)
    try:
        shown = {view: conn.execute(f"SELECT count(*) FROM {view}").fetchone()[0] for view in ALL_VIEWS}
        shown["rows"] = conn.execute(
            "SELECT * EXCLUDE (created_at), created_at FROM performance_results_all ORDER BY result_id").fetchall()
        shown["flat"] = conn.execute("SELECT * FROM benchmark_performance ORDER BY ALL").fetchall()
        shown["reader_sees"] = conn.execute("SELECT count(*) FROM performance_results").fetchone()[0]
        return shown
    finally:
        conn.close()


def partition_paths(db_path) -> list[str]:
    conn = connect(db_path, read_only=True)
    try:
        return [p["path"] for p in archive.archive_partitions(conn)]
    finally:
        conn.close()


def problems_of(db_path) -> list[dict]:
    conn = connect(db_path)
    try:
        return integrity.check_integrity(conn)
    finally:
        conn.close()


@pytest.fixture
def archived_db(sample_db_path, tmp_path) -> tuple[str, Path]:
    """The sample database with its first day archived into tmp_path/archived_data (live rows remain)."""
    result = archived(sample_db_path, tmp_path / "archived_data", FIRST_CUT)
    assert result["rows"]["performance_results"] > 0 and len(result["files"]) == 4
    return sample_db_path, tmp_path / "archived_data"


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.slow  # about 1 s or more: outside make test-fast
def test_a_restore_elsewhere_shows_the_same_rows_with_the_archive_folder_gone(archived_db, tmp_path, compress):
    db_path, archive_dir = archived_db
    before = what_it_shows(db_path)
    assert before["performance_results_all"] == 361 and before["reader_sees"] == 361
    result = backed_up(db_path, tmp_path / "bk", compress=compress)
    sources = {str(p): backup.sha256_file(p) for p in archive_dir.glob("*/*.parquet")}
    # another machine: only the backup folder travels, the database and its archive folder are gone
    shutil.move(tmp_path / "bk", tmp_path / "elsewhere" / "bk")
    shutil.rmtree(archive_dir)
    Path(db_path).unlink()
    moved = tmp_path / "elsewhere" / "bk" / Path(result["backup"]).name
    target = tmp_path / "machine2" / "restored.duckdb"
    out = backup.restore_backup(moved, target)
    assert problems_of(target) == []
    assert what_it_shows(target) == before
    assert all(Path(p).is_relative_to(tmp_path / "machine2") for p in partition_paths(target))
    assert out["archive_files"] == result["archive_files"] == 4
    manifest = json.loads(moved.with_name(Path(result["manifest"]).name).read_text())
    assert {e["source_path"]: e["sha256"] for e in manifest["archive"]} == sources  # each file, its checksum
    for entry in manifest["archive"]:
        assert backup.sha256_file(moved.parent / entry["file"]) == entry["sha256"]


@pytest.mark.slow  # over a second
def test_restoring_over_the_original_path_puts_the_archive_back_where_it_was(archived_db, tmp_path, capsys):
    db_path, archive_dir = archived_db
    before, paths = what_it_shows(db_path), partition_paths(db_path)
    result = backed_up(db_path, tmp_path / "bk")
    shutil.rmtree(archive_dir)
    assert any(p["check"] == "missing archive file" for p in problems_of(db_path))
    assert maintenance_cli.main(["--restore", result["manifest"], "--db", db_path, "--force"]) == 0
    assert "4 archived file(s) verified" in capsys.readouterr().out
    assert partition_paths(db_path) == paths and all(Path(p).is_file() for p in paths)
    assert what_it_shows(db_path) == before
    assert problems_of(db_path) == []


@pytest.mark.slow  # about 1 s or more: outside make test-fast
def test_restore_into_archive_dir_and_never_over_other_content(archived_db, tmp_path, capsys):
    db_path, _ = archived_db
    before = what_it_shows(db_path)
    result = backed_up(db_path, tmp_path / "bk")
    chosen = tmp_path / "chosen_archive"
    target = tmp_path / "new.duckdb"
    assert maintenance_cli.main(["--restore", result["backup"], "--db", str(target), "--archive-dir",
                                 str(chosen)]) == 0
    assert sorted(p.parent.name for p in chosen.glob("*/*.parquet")) == sorted(archive.ARCHIVED_TABLES)
    assert all(Path(p).is_relative_to(chosen) for p in partition_paths(target))
    assert what_it_shows(target) == before
    # a second restore into the same folder reuses identical files, but never overwrites a different one
    assert maintenance_cli.main(["--restore", result["backup"], "--db", str(tmp_path / "again.duckdb"),
                                 "--archive-dir", str(chosen)]) == 0
    victim = next(chosen.glob("performance_results/*.parquet"))
    victim.write_bytes(b"someone else's file")
    capsys.readouterr()
    code = maintenance_cli.main(["--restore", result["backup"], "--db", str(tmp_path / "third.duckdb"),
                                 "--archive-dir", str(chosen)])
    err = capsys.readouterr().err
    assert code == 2 and "error DB000" in err and "other content" in err and "Traceback" not in err
    assert victim.read_bytes() == b"someone else's file" and not (tmp_path / "third.duckdb").exists()


@pytest.mark.parametrize("damage", ["flip", "delete"])
def test_a_backup_whose_archive_file_is_damaged_or_missing_is_refused(archived_db, tmp_path, capsys, damage):
    db_path, _ = archived_db
    result = backed_up(db_path, tmp_path / "bk", compress=True)
    (copy,) = (tmp_path / "bk").glob("*.archive/performance_results/*.parquet")
    if damage == "flip":
        data = bytearray(copy.read_bytes())
        data[len(data) // 2] ^= 0x01
        copy.write_bytes(bytes(data))
    else:
        copy.unlink()
    target = tmp_path / "restored" / "r.duckdb"
    with pytest.raises(MaintenanceError, match="damaged" if damage == "flip" else "missing"):
        backup.restore_backup(result["manifest"], target)
    capsys.readouterr()  # only what the command itself writes
    code = maintenance_cli.main(["--restore", result["manifest"], "--db", str(target)])
    err = capsys.readouterr().err
    assert code == 1 and "error DB005" in err and "Traceback" not in err
    assert not target.exists() and not (tmp_path / "restored" / "r_archived_data").exists()
    assert not list((tmp_path / "restored").glob(".*partial"))


@pytest.mark.slow  # over 0.35 s here: outside make test-fast
def test_backup_refuses_when_the_archive_is_missing_or_changed(archived_db, tmp_path, capsys):
    db_path, archive_dir = archived_db
    (original,) = archive_dir.glob("web_platform_results/*.parquet")
    content = original.read_bytes()
    original.unlink()
    capsys.readouterr()  # only what the command itself writes
    code = maintenance_cli.main(["--backup", "--backup-dir", str(tmp_path / "bk"), "--db", db_path])
    err = capsys.readouterr().err
    assert code == 1 and "error DB005" in err and "missing" in err and str(original) in err
    assert "Traceback" not in err
    original.write_bytes(content[:-8] + b"\0" * 8)
    with pytest.raises(MaintenanceError, match="changed after it was archived"):
        backed_up(db_path, tmp_path / "bk")
    assert not list((tmp_path / "bk").iterdir())  # no half backup of either attempt was kept
    original.write_bytes(content)
    assert backed_up(db_path, tmp_path / "bk")["archive_files"] == 4


def test_an_interrupted_backup_leaves_nothing_that_looks_valid(archived_db, tmp_path, monkeypatch):
    db_path, _ = archived_db
    folder = tmp_path / "bk"
    real_copy, calls = backup._copy_hashing, []

    def copy_then_interrupt(src, dst):
        calls.append(1)
        if len(calls) == 3:  # the database and one archived file are copied: Ctrl-C
            raise KeyboardInterrupt
        return real_copy(src, dst)

    monkeypatch.setattr(backup, "_copy_hashing", copy_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        backed_up(db_path, folder)
    monkeypatch.undo()
    assert not list(folder.iterdir()) and backup.list_backups(folder) == []
    # kill -9 mid-copy leaves partial files and a partial archive folder without a manifest: never restorable,
    # purged by the age in their names
    good = backed_up(db_path, folder, now=dt.datetime(2026, 1, 1))
    stale = "benchmark_db_backup-sample-20250101T000000Z"
    shutil.copytree(Path(good["manifest"]).parent / (Path(good["manifest"]).name.removesuffix(".manifest.json")
                                                     + ".archive"), folder / f"{stale}.archive.partial")
    (folder / f"{stale}.duckdb.partial").write_bytes(b"half")
    with pytest.raises(MaintenanceError, match="no manifest"):
        backup.restore_backup(folder / f"{stale}.duckdb.partial", tmp_path / "r.duckdb")
    purged = backup.purge_backups(folder, 30, now=dt.datetime(2026, 1, 2))
    assert sorted(Path(p).name for p in purged["deleted_files"]) == [f"{stale}.archive.partial",
                                                                     f"{stale}.duckdb.partial"]
    assert purged["kept_backups"] == 1 and Path(good["manifest"]).exists()
    # one killed yesterday is not a backup kept (before: counted with the good one until past the retention)
    recent = "benchmark_db_backup-sample-20260101T120000Z"
    (folder / f"{recent}.duckdb.gz.partial").write_bytes(b"half")
    purged = backup.purge_backups(folder, 30, now=dt.datetime(2026, 1, 2))
    assert purged["kept_backups"] == 1 and purged["unfinished_backups"] == [recent] and not purged["deleted_files"]
    (folder / f"{recent}.duckdb.gz.partial").unlink()
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [Path(good["manifest"]).name, Path(good["backup"]).name, Path(good["archive_dir"]).name])


@pytest.mark.slow  # about 1 s or more: outside make test-fast
def test_archive_files_added_after_a_backup_are_not_restored(archived_db, tmp_path):
    db_path, archive_dir = archived_db
    at_backup, paths_at_backup = what_it_shows(db_path), partition_paths(db_path)
    result = backed_up(db_path, tmp_path / "bk")
    later = archived(db_path, archive_dir, SECOND_CUT)  # more rows leave the live table after the backup
    assert later["files"] and len(partition_paths(db_path)) > len(paths_at_backup)
    target = tmp_path / "restored.duckdb"
    backup.restore_backup(result["backup"], target)
    restored_files = sorted(p.name for p in (tmp_path / "restored_archived_data").glob("*/*.parquet"))
    assert restored_files == sorted(Path(p).name for p in paths_at_backup)
    shutil.rmtree(archive_dir)  # the restore depends on nothing of the original
    assert what_it_shows(target) == at_backup
    conn = duckdb.connect(str(target), read_only=True)  # the file's own table, no archive shown
    try:  # the rows archived after the backup are live again in the restored database, counted once
        live = conn.execute("SELECT count(*) FROM performance_results").fetchone()[0]
    finally:
        conn.close()
    assert 0 < live < at_backup["performance_results_all"]


@pytest.mark.slow  # about 1 s or more: outside make test-fast
def test_two_databases_share_a_backup_dir_and_purge_takes_each_backups_archive(sample_db_path, tmp_path):
    # two databases of the same name in different folders, one archived, one not, backed up at the same second
    first = tmp_path / "team_a" / "sample.duckdb"
    second = tmp_path / "team_b" / "sample.duckdb"
    for path in (first, second):
        path.parent.mkdir()
        shutil.copyfile(sample_db_path, path)
    archived(str(first), tmp_path / "team_a" / "archived_data", FIRST_CUT)
    shown_first = what_it_shows(str(first))
    folder = tmp_path / "bk"
    stamp = dt.datetime(2026, 1, 1)
    a = backed_up(str(first), folder, now=stamp)
    b = backed_up(str(second), folder, now=stamp)
    # each backup restores its own rows, the archive of one never leaks into the other
    backup.restore_backup(a["backup"], tmp_path / "ra.duckdb")
    backup.restore_backup(b["backup"], tmp_path / "rb.duckdb")
    shutil.rmtree(tmp_path / "team_a" / "archived_data")
    assert problems_of(tmp_path / "ra.duckdb") == []
    assert what_it_shows(tmp_path / "ra.duckdb") == shown_first
    assert partition_paths(tmp_path / "rb.duckdb") == []
    assert a["manifest"] != b["manifest"] and a["archive_files"] == 4 and b["archive_files"] == 0
    assert b["archive_dir"] is None and "archive" not in json.loads(Path(b["manifest"]).read_text())
    assert len(list(folder.glob("*.archive"))) == 1  # a database without archive backs up as before
    # purge deletes a backup with its archive folder; the other backup of the folder is untouched
    b_again = backed_up(str(second), folder, now=stamp + dt.timedelta(days=40))
    dry = backup.purge_backups(folder, 30, dry_run=True, now=stamp + dt.timedelta(days=41))
    assert a["archive_dir"] in dry["deleted_files"] and Path(a["archive_dir"]).is_dir()
    purged = backup.purge_backups(folder, 30, now=stamp + dt.timedelta(days=41))
    assert purged["kept_backups"] == 1 and a["archive_dir"] in purged["deleted_files"]
    assert sorted(p.name for p in folder.iterdir()) == sorted([Path(b_again["manifest"]).name,
                                                                Path(b_again["backup"]).name])


def test_dry_runs_list_the_archive_files_and_copy_nothing(archived_db, tmp_path, capsys, monkeypatch):
    db_path, archive_dir = archived_db
    monkeypatch.chdir(tmp_path)
    assert maintenance_cli.main(["--backup", "--backup-dir", "bk", "--dry-run", "--db", db_path,
                                 "--format", "json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    for path in archive_dir.glob("*/*.parquet"):
        assert str(path) in row["result"]
    assert "4 archived Parquet file(s)" in row["result"] and not (tmp_path / "bk").exists()
    result = backed_up(db_path, tmp_path / "bk")
    target = tmp_path / "new" / "r.duckdb"
    assert maintenance_cli.main(["--restore", result["manifest"], "--db", str(target), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "4 archived file(s) verified, 4 to copy to" in out and str(tmp_path / "new" / "r_archived_data") in out
    assert not target.exists() and not (tmp_path / "new" / "r_archived_data").exists()
    with pytest.raises(UsageError):
        backup.restore_backup(result["manifest"], ":memory:")


def test_check_integrity_names_a_changed_archive_file_and_how_to_get_it_back(archived_db, capsys):
    db_path, archive_dir = archived_db
    (original,) = archive_dir.glob("performance_results/*.parquet")
    data = bytearray(original.read_bytes())
    data[len(data) // 2] ^= 0x01
    original.write_bytes(bytes(data))
    (gone,) = archive_dir.glob("web_platform_results/*.parquet")
    gone.unlink()
    found = {(p["check"], p["table"]): p for p in problems_of(db_path)}
    assert str(original) in found[("changed archive file", "performance_results")]["examples"]
    assert "restore a backup" in found[("missing archive file", "web_platform_results")]["problem"]
    assert maintenance_cli.main(["--check-integrity", "--db", db_path]) == 1

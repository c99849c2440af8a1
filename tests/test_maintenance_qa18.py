"""QA round 18 on maintenance: the Parquet export after --archive-data, rows repeated under one id, restore
errors that blamed the backup for the target's folder, a restore dry run that wrote, an unwritable --output
of --migration-stats. Real databases in tmp_path; a full disk is /dev/full."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest

import benchmark_db_maintenance as maintenance_cli
from benchmark_db.connection import connect
from benchmark_db.errors import MaintenanceError, UsageError
from benchmark_db.maintenance import archive, backup, integrity
from benchmark_db.parquet_export import export_parquet

CUT = dt.datetime(2025, 3, 2)  # the sample data runs 2025-03-01 .. 03: this archives its first day
FACT_TABLES = ("performance_results", "hardware_compatibility", "integration_test_results")


@pytest.fixture
def archived_db(sample_db_path, tmp_path) -> str:
    conn = connect(sample_db_path)
    try:
        archive.archive_old_rows(conn, 0, tmp_path / "archived_data", now=CUT)
    finally:
        conn.close()
    return sample_db_path


def _all_counts(db: str) -> dict[str, int]:
    conn = duckdb.connect(db, read_only=True)
    try:
        return {t: conn.execute(f"SELECT count(*) FROM {t}_all").fetchone()[0] for t in FACT_TABLES}
    finally:
        conn.close()


# -- 1. the Parquet export includes archived rows -------------------------------------------------------------

@pytest.mark.slow
def test_parquet_export_includes_archived_rows_with_the_tables_columns(archived_db, tmp_path):
    expected = _all_counts(archived_db)
    conn = connect(archived_db)
    try:
        live = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in FACT_TABLES}
        columns = {t: [r[0] for r in conn.execute(f"DESCRIBE {t}").fetchall()] for t in FACT_TABLES}
        assert live["performance_results"] < expected["performance_results"]  # something was archived
        exported = {e["table"]: e for e in export_parquet(conn, tmp_path / "pq")}
    finally:
        conn.close()
    check = duckdb.connect()
    for table in FACT_TABLES:
        path = exported[table]["path"]
        assert check.execute(f"SELECT count(*) FROM read_parquet('{path}')").fetchone()[0] == expected[table]
        assert [r[0] for r in check.execute(f"DESCRIBE SELECT * FROM read_parquet('{path}')").fetchall()] \
            == columns[table]
        assert exported[table]["rows"] == expected[table]
        assert exported[table]["archived_rows"] == expected[table] - live[table]
    assert exported["models"]["archived_rows"] == 0


@pytest.mark.slow
def test_parquet_export_on_a_read_only_connection_counts_archived_rows_once(archived_db, tmp_path):
    expected = _all_counts(archived_db)
    conn = connect(archived_db, read_only=True)  # its TEMP views show the archive under the tables' names
    try:
        exported = {e["table"]: e for e in export_parquet(conn, tmp_path / "pq")}
    finally:
        conn.close()
    assert {t: exported[t]["rows"] for t in FACT_TABLES} == expected
    assert exported["performance_results"]["archived_rows"] > 0


# -- 2. rows repeated under one id ----------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("table, id_col", [("hardware_compatibility", "compatibility_id"),
                                           ("integration_test_results", "test_result_id"),
                                           ("web_platform_results", "result_id")])
def test_check_integrity_reports_rows_repeated_under_one_id(sample_db_path, table, id_col, capsys):
    conn = duckdb.connect(sample_db_path)
    try:
        if not conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]:
            conn.execute(f"INSERT INTO {table} ({id_col}) VALUES (424242)")
        conn.execute(f"INSERT INTO {table} SELECT * FROM {table}")
        total = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        first = conn.execute(f"SELECT min({id_col}) FROM {table}").fetchone()[0]
    finally:
        conn.close()
    assert maintenance_cli.main(["-q", "--check-integrity", "--db", sample_db_path]) == 1
    assert f"duplicate in {table}: several rows share one {id_col}" in capsys.readouterr().err
    conn = connect(sample_db_path, read_only=True, migrate=False)
    try:
        problem = next(p for p in integrity.check_integrity(conn) if p["table"] == table)
    finally:
        conn.close()
    assert problem["check"] == "duplicate" and problem["rows"] == total
    assert problem["examples"].split(", ")[0] == str(first)  # each id named once, smallest first


@pytest.mark.slow
def test_one_performance_row_stored_twice_is_one_problem_not_two(sample_db_path):
    conn = duckdb.connect(sample_db_path)
    try:
        conn.execute("INSERT INTO performance_results SELECT * FROM performance_results LIMIT 1")
        problems = integrity.check_integrity(conn)
    finally:
        conn.close()
    assert [(p["check"], p["table"], p["rows"]) for p in problems] == [("duplicate", "performance_results", 2)]
    assert "share one result_id" in problems[0]["problem"]


# -- 3 and 4. restore: errors writing the target, and a dry run that writes nothing ---------------------------

@pytest.fixture
def stored_backup(sample_db_path, tmp_path) -> Path:
    conn = connect(sample_db_path, read_only=True, migrate=False)
    try:
        result = backup.create_backup(conn, sample_db_path, tmp_path / "bk", compress=True)
    finally:
        conn.close()
    return Path(result["backup"])


def _writes_to_dev_full(monkeypatch):
    """open() in backup.py writing to /dev/full: every write fails with ENOSPC, like a full disk."""
    real_open = open

    def fake_open(file, mode="r", *args, **kwargs):
        if "w" in mode and str(file).endswith(".partial"):
            return real_open("/dev/full", mode, *args, **kwargs)
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(backup, "open", fake_open, raising=False)


@pytest.mark.slow
def test_restore_into_a_full_folder_names_the_folder_not_the_backup(stored_backup, tmp_path, monkeypatch, capsys):
    _writes_to_dev_full(monkeypatch)
    target = tmp_path / "out" / "r.duckdb"
    assert maintenance_cli.main(["-q", "--restore", str(stored_backup), "--db", str(target)]) == 1
    err = capsys.readouterr().err
    assert f"cannot write the restored copy in {target.parent}: the folder is full" in err
    assert "restore another backup" not in err and "cannot decompress" not in err
    assert not target.exists() and not list(target.parent.iterdir())  # no partial left


@pytest.mark.slow
def test_restore_into_a_folder_that_cannot_be_written_is_a_usage_error(stored_backup, capsys):
    assert maintenance_cli.main(["-q", "--restore", str(stored_backup), "--db", "/proc/x.duckdb"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error DB000: cannot write the restored copy in /proc: the folder is not writable")
    assert "restore another backup" not in err and "cannot decompress" not in err


def test_restore_still_blames_a_backup_that_cannot_be_decompressed(tmp_path):
    broken = tmp_path / "b.duckdb.gz"
    broken.write_bytes(b"\x1f\x8b\x08\x00" + b"\x00" * 64)
    with pytest.raises(MaintenanceError, match="cannot decompress") as info:
        backup._decompress(broken, tmp_path / "copy", tmp_path, {"compression": "gzip"})
    assert "restore another backup" in str(info.value)


@pytest.mark.slow
@pytest.mark.parametrize("compress", [True, False])
def test_restore_dry_run_changes_nothing(sample_db_path, tmp_path, compress, capsys):
    conn = connect(sample_db_path, read_only=True, migrate=False)
    try:
        stored = backup.create_backup(conn, sample_db_path, tmp_path / "bk", compress=compress)["backup"]
    finally:
        conn.close()
    before = sorted(p for p in tmp_path.rglob("*"))
    target = tmp_path / "nd" / "a" / "b" / "r.duckdb"
    assert maintenance_cli.main(["-q", "--restore", stored, "--db", str(target), "--dry-run"]) == 0
    assert "verified, would restore to" in capsys.readouterr().out
    assert sorted(p for p in tmp_path.rglob("*")) == before
    assert not (tmp_path / "nd").exists()


@pytest.mark.slow
def test_restore_dry_run_still_refuses_a_file_where_the_folder_should_be(stored_backup, tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(UsageError, match="afile is not a folder"):
        backup.restore_backup(stored_backup, tmp_path / "afile" / "a" / "r.duckdb", dry_run=True)


def test_a_full_disk_during_a_step_names_the_steps_folder(sample_db_path, tmp_path, monkeypatch, capsys):
    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")  # what a write or flush raises: no filename

    monkeypatch.setattr(backup, "create_backup", full)
    folder = tmp_path / "bk"
    assert maintenance_cli.main(["-q", "--backup", "--backup-dir", str(folder), "--db", sample_db_path]) == 1
    assert f"cannot write or read {folder}: No space left on device; free space there" in capsys.readouterr().err


# -- 6. an unwritable --output of --migration-stats -----------------------------------------------------------

@pytest.mark.parametrize("output", ["afile/x.json", "afile/deeper/x.json"])
def test_migration_stats_refuses_an_unwritable_output_before_any_step(sample_db_path, tmp_path, monkeypatch,
                                                                      capsys, output):
    (tmp_path / "afile").write_text("x")
    monkeypatch.chdir(tmp_path)
    ran = []
    monkeypatch.setattr(maintenance_cli, "run_steps", lambda *a: ran.append(a) or ([], []))
    assert maintenance_cli.main(["-q", "--migration-stats", "--check-integrity", "--output", output,
                                 "--db", sample_db_path]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error DB000: cannot write {output}: afile is a file, not a folder")
    assert ran == []


def test_migration_stats_output_in_a_new_folder_still_works(sample_db_path, tmp_path, capsys):
    output = tmp_path / "new" / "report.json"
    assert maintenance_cli.main(["-q", "--migration-stats", "--output", str(output), "--db", sample_db_path]) == 0
    assert output.read_text().startswith("{")


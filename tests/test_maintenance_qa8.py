"""QA sweep 8 of benchmark_db_maintenance.py: edited manifests, bad day values, missing folders, leftovers of
interrupted runs. Real database files in tmp_path, subprocesses for kill -9, no mocks."""
from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

import benchmark_db_maintenance as maintenance_cli
from benchmark_db.connection import connect
from benchmark_db.maintenance import backup, optimize
from tests.test_maintenance import backed_up

REPO = Path(__file__).resolve().parents[1]


def _dead_pid() -> int:
    """The pid of a process that has ended."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# -- manifests that were edited or made by hand --------------------------------------------------------------


def test_purge_never_deletes_a_file_a_manifest_names_outside_the_backup_folder(tmp_path):
    folder = tmp_path / "db_backups"
    folder.mkdir()
    victim = tmp_path / "benchmark_db.duckdb"
    victim.write_bytes(b"the only copy of the data")
    (folder / "benchmark_db_backup-x-20200101T000000Z.manifest.json").write_text(json.dumps(
        {"tool": "benchmark_db_maintenance", "tables": {}, "created_at": "2020-01-01T00:00:00Z",
         "backup_file": "../benchmark_db.duckdb"}))
    backup.purge_backups(folder, 30)
    assert victim.read_bytes() == b"the only copy of the data"


def test_purge_goes_on_past_a_manifest_without_its_fields(sample_db_path, tmp_path):
    folder = tmp_path / "db_backups"
    made = backed_up(sample_db_path, folder)
    stray = folder / "benchmark_db_backup-y-20200101T000000Z.manifest.json"
    stray.write_text(json.dumps({"tool": "benchmark_db_maintenance", "tables": {}}))  # no created_at: KeyError
    result = backup.purge_backups(folder, 0, now=backup.utc_now() + dt.timedelta(days=1))
    assert made["manifest"] in result["deleted_files"]
    assert stray.exists()  # not recognisably ours: left alone


@pytest.mark.parametrize("edit", [
    lambda m: m.pop("database_sha256"),
    lambda m: m.update(backup_file="../elsewhere.duckdb"),
    lambda m: m.update(created_at=None),
])
def test_restore_of_an_incomplete_manifest_is_one_db005_line(sample_db_path, tmp_path, capsys, edit):
    made = backed_up(sample_db_path, tmp_path / "db_backups")
    manifest_path = Path(made["manifest"])
    manifest = json.loads(manifest_path.read_text())
    edit(manifest)
    manifest_path.write_text(json.dumps(manifest))
    code = maintenance_cli.main(["--restore", str(manifest_path), "--db", str(tmp_path / "restored.duckdb")])
    err = capsys.readouterr().err
    assert code == 1
    assert "error DB005: manifest" in err and "unexpected" not in err
    assert not (tmp_path / "restored.duckdb").exists()


# -- bad input: one line, exit 2, before anything runs -------------------------------------------------------


@pytest.mark.parametrize("argv", [
    ["--archive-data", "--older-than", "-5"],
    ["--clean-json", "--older-than", "nan"],
    ["--archive-data", "--older-than", "1e12"],
    ["--purge-backups", "--backup-retention", "inf"],
    ["--backup", "--archive-data", "--older-than", "-1"],
])
def test_bad_day_values_are_refused_before_any_step_runs(sample_db_path, tmp_path, capsys, argv):
    before = Path(sample_db_path).read_bytes()
    code = maintenance_cli.main([*argv, "--db", sample_db_path, "--backup-dir", str(tmp_path / "bk"),
                                 "--archive-dir", str(tmp_path / "arch")])
    err = capsys.readouterr().err
    assert code == 2
    assert "error DB000:" in err and "unexpected" not in err
    assert Path(sample_db_path).read_bytes() == before
    assert not (tmp_path / "bk").exists() and not (tmp_path / "arch").exists()


def test_purge_of_a_non_folder_backup_dir_is_an_error_and_a_missing_one_is_named(tmp_path, capsys):
    assert maintenance_cli.main(["--purge-backups", "--backup-dir", str(tmp_path / "typo")]) == 0
    assert "typo does not exist" in capsys.readouterr().err  # a mistyped --backup-dir shows in the cron log
    (tmp_path / "a_file").write_text("x")
    assert maintenance_cli.main(["--purge-backups", "--backup-dir", str(tmp_path / "a_file")]) == 2
    assert "is not a folder" in capsys.readouterr().err
    assert not (tmp_path / "typo").exists()


def test_a_step_that_cannot_write_its_folder_says_so_as_db005(sample_db_path, tmp_path, capsys):
    (tmp_path / "a_file").write_text("x")
    code = maintenance_cli.main(["--backup", "--backup-dir", str(tmp_path / "a_file" / "sub"),
                                 "--db", sample_db_path, "--format", "csv"])
    out = capsys.readouterr().out
    assert code == 1
    assert "error DB005: cannot write or read" in out and "NotADirectoryError" not in out


def test_dry_run_summaries_do_not_say_files_were_deleted(sample_db_path, tmp_path, capsys):
    folder = tmp_path / "db_backups"
    backed_up(sample_db_path, folder)
    capsys.readouterr()
    code = maintenance_cli.main(["--purge-backups", "--backup-retention", "0", "--backup-dir", str(folder),
                                 "--dry-run", "--format", "csv"])
    out = capsys.readouterr().out
    assert code == 0 and "would be deleted" in out
    assert len(list(folder.iterdir())) == 2


# -- leftovers of interrupted runs --------------------------------------------------------------------------


def test_vacuum_removes_the_copy_an_interrupted_vacuum_left(sample_db_path):
    path = Path(sample_db_path)
    stale = path.with_name(f".{path.name}.vacuum-{_dead_pid()}.duckdb")
    stale.write_bytes(b"\0" * 4096)
    other = path.with_name(f".other_{path.name}.vacuum-1.duckdb")  # another database's: not ours to remove
    other.write_bytes(b"x")
    conn = connect(sample_db_path)
    optimize.vacuum_database(conn, sample_db_path)
    assert not stale.exists() and other.exists()


def test_restore_removes_the_copy_an_interrupted_restore_left(sample_db_path, tmp_path):
    made = backed_up(sample_db_path, tmp_path / "db_backups")
    target = tmp_path / "restored.duckdb"
    stale = target.with_name(f".{target.name}.restore-{_dead_pid()}.partial")
    stale.write_bytes(b"\0" * 4096)
    backup.restore_backup(made["backup"], target)
    assert not stale.exists() and target.exists()


@pytest.mark.slow
def test_archive_killed_mid_run_leaves_no_parquet_that_no_database_names(tmp_path):
    """kill -9 while the Parquet file is written: the next run removes the partial file and moves the rows once;
    the archive folder then holds exactly the files archived_partitions names."""
    db = tmp_path / "big.duckdb"
    subprocess.run([sys.executable, str(REPO / "scripts" / "create_benchmark_schema.py"), "--output", str(db),
                    "--sample-data", "--quiet"], check=True, capture_output=True)
    conn = duckdb.connect(str(db))
    columns = [r[0] for r in conn.execute("DESCRIBE performance_results").fetchall()]
    select = ", ".join("(result_id + i * 1000003)::BIGINT" if c == "result_id" else c for c in columns)
    conn.execute(f"INSERT INTO performance_results SELECT {select} FROM performance_results, range(1, 1200) r(i)")
    total = conn.execute("SELECT count(*) FROM performance_results").fetchone()[0]
    conn.close()
    folder = tmp_path / "archived_data"
    command = [sys.executable, str(REPO / "benchmark_db_maintenance.py"), "--archive-data", "--older-than", "1",
               "--archive-dir", str(folder), "--db", str(db), "--quiet"]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        if folder.is_dir() and any(p.is_file() for p in folder.rglob("*")):
            break  # the first Parquet file is being written
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    subprocess.run(command, check=True, capture_output=True)
    conn = duckdb.connect(str(db), read_only=True)
    named = {Path(r[0]) for r in conn.execute("SELECT path FROM archived_partitions").fetchall()}
    archived = conn.execute("SELECT sum(rows) FROM archived_partitions WHERE table_name = 'performance_results'"
                            ).fetchone()[0]
    conn.close()
    assert archived == total
    assert {p for p in folder.rglob("*") if p.is_file()} == named


def test_restore_dry_run_over_an_existing_database_says_it_would_be_refused(sample_db_path, tmp_path, capsys):
    made = backed_up(sample_db_path, tmp_path / "db_backups")
    before = Path(sample_db_path).read_bytes()
    assert maintenance_cli.main(["--restore", made["backup"], "--db", sample_db_path, "--dry-run"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert maintenance_cli.main(["--restore", made["backup"], "--db", sample_db_path, "--dry-run", "--force"]) == 0
    assert Path(sample_db_path).read_bytes() == before


def test_clean_json_completes_an_archive_run_killed_after_deleting_the_original(db_path, tmp_path):
    """kill -9 between deleting the original and logging it: the archived copy is intact; the next run
    records it instead of reporting "file not found" forever."""
    import hashlib

    from benchmark_db.maintenance import clean_json

    now = dt.datetime(2026, 6, 1)
    original = tmp_path / "results" / "ok.json"
    original.parent.mkdir()
    original.write_text('{"model": "ok", "latency_ms": 1.0}')
    sha = hashlib.sha256(original.read_bytes()).hexdigest()
    conn = connect(db_path)
    try:
        conn.execute("INSERT INTO ingested_files (path, sha256, size_bytes, kind, status, rows, ingested_at) "
                     "VALUES (?, ?, 10, 'performance', 'ingested', 1, ?)", [str(original), sha,
                                                                          now - dt.timedelta(days=40)])
        # the state the killed run left: the copy in the archive, the original gone, nothing logged
        copy = tmp_path / "arch" / "results" / "ok.json"
        copy.parent.mkdir(parents=True)
        copy.write_bytes(original.read_bytes())
        original.unlink()
        result = clean_json.clean_json_files(conn, 30, "archive", archive_dir=tmp_path / "arch", now=now,
                                             base_dir=tmp_path)
        logged = conn.execute("SELECT archived_to FROM ingested_files WHERE path = ?", [str(original)]).fetchone()[0]
    finally:
        conn.close()
    assert [f["path"] for f in result["files"]] == [str(original)] and result["untouched"] == []
    assert logged == str(copy)


# -- CI integrator ------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_ci_rerun_does_not_merge_again_what_it_archived_inside_the_artifacts_folder(tmp_path, capsys):
    from scripts import ci_benchmark_integrator as integrator
    from tests.test_ci_integrator import make_job_db

    artifacts = tmp_path / "artifacts"
    make_job_db(artifacts / "job_a" / "job_a.duckdb", "job_a", ["bert-base-uncased"], [1, 2])
    make_job_db(artifacts / "job_b" / "job_b.duckdb", "job_b", ["t5-small"], [1])
    db = tmp_path / "merged.duckdb"
    argv = ["--artifacts-dir", str(artifacts), "--db", str(db), "--archive-artifacts",
            "--archive-dir", str(artifacts / "archived"), "--format", "json"]
    assert integrator.main(argv) == 0
    first = json.loads(capsys.readouterr().out)
    assert {row["status"] for row in first} == {"merged"}
    conn = duckdb.connect(str(db), read_only=True)
    logged = conn.execute("SELECT count(*) FROM ingested_files").fetchone()[0]
    conn.close()
    time.sleep(1.1)  # the next run archives under another UTC second
    assert integrator.main(argv) == 0
    capsys.readouterr()
    conn = duckdb.connect(str(db), read_only=True)
    assert conn.execute("SELECT count(*) FROM ingested_files").fetchone()[0] == logged
    conn.close()
    archived = sorted(p.relative_to(artifacts / "archived") for p in (artifacts / "archived").rglob("*.duckdb"))
    assert len(archived) == 2 and all(len(p.parts) == 3 for p in archived)  # <stamp>/<job>/<file>, not nested


def test_restore_into_a_path_under_a_file_is_one_db000_line(sample_db_path, tmp_path, capsys):
    made = backed_up(sample_db_path, tmp_path / "db_backups")
    (tmp_path / "a_file").write_text("x")
    code = maintenance_cli.main(["--restore", made["backup"], "--db", str(tmp_path / "a_file" / "r.duckdb")])
    err = capsys.readouterr().err
    assert code == 2 and "error DB000: cannot make the folder" in err and "unexpected" not in err


def test_the_largest_accepted_day_value_still_runs(sample_db_path, tmp_path):
    days = str(maintenance_cli.MAX_DAYS)
    assert maintenance_cli.main(["--archive-data", "--clean-json", "--older-than", days, "--archive-dir",
                                 str(tmp_path / "arch"), "--db", sample_db_path]) == 0

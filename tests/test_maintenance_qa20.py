"""QA round 20 on maintenance: a restore whose archive lay inside the backup, --force over a damaged file, two
backups of one database at once, Ctrl-C during --vacuum, a manifest with "+00:00", the backup a run makes
and purges in one go, and --format html. Real databases in tmp_path; a second backup runs in another process."""
from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

import benchmark_db.connection
import benchmark_db_maintenance as maintenance_cli
from benchmark_db.maintenance import backup
from tests.test_backup_archive import FIRST_CUT, archived, backed_up, problems_of
from tests.test_backup_qa16 import _no_stale_log_handler  # noqa: F401 (an autouse fixture)
from tests.test_maintenance import checksums_of


def error_lines(err: str) -> list[str]:
    assert "Traceback" not in err and "unexpected" not in err, err
    return [line for line in err.splitlines() if line.startswith("error")]


# -- 1. a restored database never names files inside a backup --------------------------------------------------

@pytest.mark.slow  # archives, backs up and restores: about 0.6 s
@pytest.mark.parametrize("dry_run", [False, True])
@pytest.mark.parametrize("inside", ["", "sub"])
def test_restore_refuses_an_archive_dir_inside_the_backups_archive_folder(sample_db_path, tmp_path, capsys,
                                                                         dry_run, inside):
    archived(sample_db_path, tmp_path / "arch", FIRST_CUT)
    made = backed_up(sample_db_path, tmp_path / "bk")
    archive_folder = Path(made["archive_dir"])
    target = tmp_path / "restored.duckdb"
    code = maintenance_cli.main(["--restore", made["backup"], "--db", str(target),
                                 "--archive-dir", str(archive_folder / inside), *["--dry-run"] * dry_run])
    err = capsys.readouterr().err
    assert code == 2, err
    [line] = error_lines(err)
    assert line.startswith("error DB000: --archive-dir ") and "inside a backup" in line
    assert not target.exists()


@pytest.mark.slow  # about 0.7 s
def test_a_restore_beside_the_backup_survives_purging_the_backup(sample_db_path, tmp_path, capsys):
    archived(sample_db_path, tmp_path / "arch", FIRST_CUT)
    made = backed_up(sample_db_path, tmp_path / "bk")
    target = tmp_path / "restored.duckdb"
    assert maintenance_cli.main(["--restore", made["backup"], "--db", str(target),
                                 "--archive-dir", str(tmp_path / "bk" / "restored_archive")]) == 0
    backup.purge_backups(tmp_path / "bk", 0, now=backup.utc_now() + dt.timedelta(days=1))
    assert not Path(made["backup"]).exists()
    assert problems_of(target) == []


# -- 2. --force replaces a database that cannot be opened -----------------------------------------------------

DAMAGED = {"empty": b"", "junk": bytes(range(256)) * 80, "text": b"not a database\n"}


@pytest.mark.slow  # backs up and restores twice: about 0.4 s
@pytest.mark.parametrize("kind", sorted(DAMAGED))
def test_force_restore_replaces_a_damaged_database_and_the_dry_run_says_so(sample_db_path, tmp_path, capsys,
                                                                           kind):
    made = backed_up(sample_db_path, tmp_path / "bk")
    target = tmp_path / "broken.duckdb"
    target.write_bytes(DAMAGED[kind])
    assert maintenance_cli.main(["--restore", made["backup"], "--db", str(target), "--force", "--dry-run"]) == 0
    dry = capsys.readouterr().out
    assert "verified, would restore to" in dry
    assert target.read_bytes() == DAMAGED[kind]  # the dry run wrote nothing
    code = maintenance_cli.main(["--restore", made["backup"], "--db", str(target), "--force"])
    out, err = capsys.readouterr()
    assert code == 0, err  # was DB001 "cannot open", exit 3, after the dry run said it would restore
    assert checksums_of(target) == checksums_of(sample_db_path)
    assert "restored to" in out and not error_lines(err)
    assert "replacing the file there" in dry and "replacing the file there" in out


def test_force_restore_will_not_replace_a_data_file(sample_db_path, tmp_path, capsys):
    made = backed_up(sample_db_path, tmp_path / "bk")
    target = tmp_path / "results.json"
    target.write_text('{"model": "bert"}')
    for dry_run in ([], ["--dry-run"]):
        assert maintenance_cli.main(["--restore", made["backup"], "--db", str(target), "--force", *dry_run]) == 2
        [line] = error_lines(capsys.readouterr().err)
        assert line.startswith("error DB000: will not restore into ")
    assert target.read_text() == '{"model": "bert"}'


HOLD_LOCK = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.lockf(fd, fcntl.LOCK_EX)  # the lock DuckDB takes on a database it has open for writing
print("held", flush=True)
time.sleep(30)
"""


@pytest.mark.slow  # a second process: about 0.5 s
def test_force_restore_does_not_replace_a_damaged_file_another_process_holds(sample_db_path, tmp_path, capsys):
    made = backed_up(sample_db_path, tmp_path / "bk")
    target = tmp_path / "broken.duckdb"
    target.write_bytes(DAMAGED["junk"])
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(target)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        code = maintenance_cli.main(["--restore", made["backup"], "--db", str(target), "--force",
                                     "--lock-timeout", "0.3"])
    finally:
        holder.kill()
        holder.wait()
    err = capsys.readouterr().err
    assert code == 3, err
    [line] = error_lines(err)
    assert line.startswith("error DB001: ") and "locked by another process" in line
    assert target.read_bytes() == DAMAGED["junk"]
    assert not list(tmp_path.glob(".broken.duckdb.restore-*"))


# -- 3. two backups of one database at once -------------------------------------------------------------------

# a backup (the maintenance CLI in another process) that stops once its copy is written, before its manifest,
# until the file `go` exists: the moment the other backup used to delete its files as "left by a killed backup"
PAUSED_BACKUP = """
import sys, time
from pathlib import Path

import benchmark_db_maintenance as cli
from benchmark_db.maintenance import backup

db, folder, ready, go = sys.argv[1:5]
copy = backup._copy_hashing

def paused(src, dst):
    digest = copy(src, dst)
    dst.flush()
    Path(ready).touch()
    deadline = time.monotonic() + 30
    while not Path(go).exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    return digest

backup._copy_hashing = paused
sys.exit(cli.main(["--db", db, "--backup", "--backup-dir", folder]))
"""


@pytest.mark.slow  # two processes: about 2 s
def test_a_backup_and_a_purge_leave_a_running_backup_alone(sample_db_path, tmp_path, capsys, repo_root):
    folder, ready, go = tmp_path / "bk", tmp_path / "ready", tmp_path / "go"
    first = subprocess.Popen([sys.executable, "-c", PAUSED_BACKUP, sample_db_path, str(folder), str(ready), str(go)],
                             cwd=repo_root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not ready.exists() and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert ready.exists(), first.communicate()
        [partial] = folder.glob("*.duckdb.partial")
        # the second backup, in this process, started while the first one copies
        assert maintenance_cli.main(["--db", sample_db_path, "--backup", "--backup-dir", str(folder)]) == 0
        assert partial.exists(), capsys.readouterr().err
        purged = backup.purge_backups(folder, 0, now=backup.utc_now() + dt.timedelta(days=1))
        assert partial.exists() and str(partial) not in purged["deleted_files"]
        assert purged["unfinished_backups"] == [backup._BASE_SUFFIX_RE.sub("", partial.name)]
    finally:
        go.touch()
        out, err = first.communicate(timeout=60)
    assert first.returncode == 0, err
    manifests = sorted(folder.glob("*" + backup.MANIFEST_SUFFIX))
    assert len(manifests) == 1  # the second was purged above; the first finished after it
    assert backup.restore_backup(manifests[0], tmp_path / "r.duckdb")["verified"]
    assert not list(folder.glob("*.partial")) and not list(folder.glob("*" + backup.LOCK_SUFFIX))


@pytest.mark.slow  # two backups: about 0.4 s
def test_backups_in_the_same_second_get_their_own_names_and_a_killed_ones_files_go(sample_db_path, tmp_path):
    now = dt.datetime(2026, 1, 2, 3, 4, 5)
    folder = tmp_path / "bk"
    folder.mkdir()
    # a backup killed mid-copy: its lock file (no longer held) and its partial copy
    base = f"{backup.PREFIX}-{backup._stem(Path(sample_db_path))}-20260102T030405Z"
    (folder / (base + backup.LOCK_SUFFIX)).write_text("")
    (folder / (base + ".duckdb.partial")).write_bytes(b"half")
    names = {Path(backed_up(sample_db_path, folder, now=now)["backup"]).name for _ in range(2)}
    assert names == {base + ".duckdb", base + "-1.duckdb"}
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [base + ".duckdb", base + ".manifest.json", base + "-1.duckdb", base + "-1.manifest.json"])


# -- 4. Ctrl-C during --vacuum stops the run ------------------------------------------------------------------

class InterruptedCopy:
    """A connection whose COPY FROM DATABASE is cut short by Ctrl-C half-way: DuckDB leaves the copy's work open
    on the attached file and raises InterruptException, as a real SIGINT during a long copy does."""

    def __init__(self, conn):
        self._conn = conn

    def __getattr__(self, name):
        return getattr(self._conn, name)

    def execute(self, sql, *args):
        if sql.startswith("COPY FROM DATABASE"):
            self._conn.execute("BEGIN")
            self._conn.execute("CREATE TABLE vacuum_target.main.half_copied (i INTEGER)")
            raise duckdb.InterruptException("INTERRUPT Error: Interrupted!")
        return self._conn.execute(sql, *args)


@pytest.mark.slow  # about 0.4 s
def test_ctrl_c_during_vacuum_stops_the_run_with_130_and_the_database_intact(sample_db_path, tmp_path, capsys,
                                                                             monkeypatch):
    connect = benchmark_db.connection.connect
    monkeypatch.setattr(benchmark_db.connection, "connect", lambda *a, **k: InterruptedCopy(connect(*a, **k)))
    before = checksums_of(sample_db_path)
    code = maintenance_cli.main(["--db", sample_db_path, "--vacuum", "--optimize-db"])
    err = capsys.readouterr().err
    assert code == 130, err
    assert "error: interrupted" in err and "TransactionException" not in err
    assert "optimize-db: starting" not in err  # the run stopped: no later step ran
    monkeypatch.undo()
    assert checksums_of(sample_db_path) == before
    assert not list(Path(sample_db_path).parent.glob(".*.vacuum-*"))


# -- 5. a manifest whose created_at has an offset --------------------------------------------------------------

def test_created_at_with_an_offset_is_read_as_utc():
    assert backup.created_at({"created_at": "2025-03-01T02:00:00+02:00"}) == dt.datetime(2025, 3, 1)
    assert backup.created_at({"created_at": "2025-03-01T00:00:00Z"}) == dt.datetime(2025, 3, 1)


@pytest.mark.slow  # two backups: about 0.4 s
def test_purge_deletes_a_backup_whose_manifest_says_plus_00_00(sample_db_path, tmp_path, capsys):
    folder = tmp_path / "bk"
    edited = backed_up(sample_db_path, folder, now=dt.datetime(2020, 1, 1))
    manifest = json.loads(Path(edited["manifest"]).read_text())
    manifest["created_at"] = "2020-01-01T00:00:00+00:00"
    Path(edited["manifest"]).write_text(json.dumps(manifest))
    recent = backed_up(sample_db_path, folder)
    code = maintenance_cli.main(["--purge-backups", "--backup-retention", "30", "--backup-dir", str(folder)])
    out, err = capsys.readouterr()
    assert code == 0 and not error_lines(err), err
    assert not Path(edited["backup"]).exists() and not Path(edited["manifest"]).exists()
    assert Path(recent["backup"]).exists() and "1 backup(s) kept" in out


# -- 6. the backup a run makes is not purged by that run ------------------------------------------------------

@pytest.mark.slow  # two backups: about 0.4 s
def test_backup_and_purge_with_retention_0_keep_the_backup_just_made(sample_db_path, tmp_path, capsys,
                                                                     monkeypatch):
    folder = tmp_path / "bk"
    old = backed_up(sample_db_path, folder, now=dt.datetime(2020, 1, 1))
    # the backup is made at 12:00:00 and the purge runs a second later, so retention 0 covers the new backup
    clock = iter([dt.datetime(2026, 1, 2, 12), dt.datetime(2026, 1, 2, 12, 0, 1)])
    monkeypatch.setattr(backup, "utc_now", lambda: next(clock))
    code = maintenance_cli.main(["--db", sample_db_path, "--backup", "--purge-backups", "--backup-retention", "0",
                                 "--backup-dir", str(folder)])
    out, err = capsys.readouterr()
    assert code == 0, err
    [made] = folder.glob("*20260102T120000Z.duckdb")
    assert made.with_name(made.name.removesuffix(".duckdb") + backup.MANIFEST_SUFFIX).exists()
    assert not Path(old["backup"]).exists()  # older backups still go
    assert "made by this run's --backup" in out and made.name in out
    assert backup.restore_backup(made, tmp_path / "r.duckdb")["verified"]


# -- 7. --format html -----------------------------------------------------------------------------------------

def test_format_html_writes_the_step_summary_as_one_html_page(sample_db_path, capsys):
    assert maintenance_cli.main(["--db", sample_db_path, "--check-integrity", "--optimize-db",
                                 "--format", "html"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("<!DOCTYPE html>") and out.count("<html") == 1 and out.rstrip().endswith("</html>")
    assert "<td>check-integrity</td>" in out and "<td>optimize-db</td>" in out

"""QA sweep 14 of benchmark_db_maintenance.py and benchmark_db_query.py: read-only steps on a file that cannot
be written (or that another process reads), a query with archived files missing, undated rows left by
--archive-data, --purge-backups on a missing folder, --sql as an HTML report page. Real database files in
tmp_path."""
from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

import benchmark_db_maintenance as maintenance_cli
import benchmark_db_query as query_cli
from benchmark_db import connection
from benchmark_db.maintenance import archive

REPO = Path(__file__).resolve().parents[1]
CUT = dt.datetime(2025, 3, 2)  # the sample data is created 2025-03-01 .. 2025-03-03


def _last_line(err: str) -> str:
    return err.strip().splitlines()[-1]


# -- 1. steps that only read open the database read-only --------------------------------------------------


def test_read_only_steps_open_the_database_read_only(sample_db_path, tmp_path, monkeypatch, capsys):
    """As root chmod 444 does not stop writes, so the read-only open itself is what is checked here."""
    opened = []
    real_connect = connection.connect

    def spy(*args, **kwargs):
        opened.append(kwargs.get("read_only", False))
        return real_connect(*args, **kwargs)

    monkeypatch.setattr(connection, "connect", spy)
    code = maintenance_cli.main(["--check-integrity", "--backup", "--migration-stats", "--db", sample_db_path,
                                 "--backup-dir", str(tmp_path / "bk"), "--output", str(tmp_path / "stats.json")])
    capsys.readouterr()
    assert code == 0 and opened == [True]
    assert len(list((tmp_path / "bk").glob("*.manifest.json"))) == 1
    opened.clear()
    assert maintenance_cli.main(["--vacuum", "--archive-data", "--older-than", "0", "--dry-run",
                                 "--db", sample_db_path]) == 0
    assert opened == [True]
    opened.clear()
    assert maintenance_cli.main(["--check-integrity", "--optimize-db", "--db", sample_db_path]) == 0
    assert opened == [False]  # a step that writes: the writer, as before


def _hold_read_only(path: str) -> subprocess.Popen:
    """Another process reading the file (DuckDB's shared lock) until its stdin closes."""
    code = ("import sys, duckdb; c = duckdb.connect(sys.argv[1], read_only=True); print('open', flush=True); "
            "sys.stdin.read()")
    proc = subprocess.Popen([sys.executable, "-c", code, path], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "open"
    return proc


def test_read_only_steps_run_while_another_process_reads(sample_db_path, tmp_path, capsys):
    """They used to open the file for writing: beside a reader (a report, the visualizer) DB001 'locked'."""
    reader = _hold_read_only(sample_db_path)
    try:
        code = maintenance_cli.main(["--check-integrity", "--backup", "--db", sample_db_path, "--lock-timeout", "0",
                                     "--backup-dir", str(tmp_path / "bk"), "--format", "json"])
        captured = capsys.readouterr()
        assert code == 0, captured.err
        doc = json.loads(captured.out)
        assert doc["problems"] == [] and [s["status"] for s in doc["steps"]] == ["ok", "ok"]
        # a step that writes still needs the file to itself: one DB001 line, exit 3, no traceback
        code = maintenance_cli.main(["--optimize-db", "--db", sample_db_path, "--lock-timeout", "0"])
        err = capsys.readouterr().err
        assert code == 3 and _last_line(err).startswith("error DB001:") and "locked" in _last_line(err)
        assert "Traceback" not in err
    finally:
        reader.stdin.close()
        reader.wait(timeout=30)


def _killed_writer_db(sample_db_path: str, tmp_path: Path) -> str:
    """A copy of the sample database whose writer was killed before its checkpoint: its last change (3 rows
    deleted) is only in the WAL."""
    db = str(tmp_path / "killed.duckdb")
    shutil.copyfile(sample_db_path, db)
    code = ("import os, sys, duckdb; c = duckdb.connect(sys.argv[1]); c.execute(\"SET checkpoint_threshold='1TB'\"); "
            "c.execute('DELETE FROM performance_results WHERE result_id IN "
            "(SELECT result_id FROM performance_results LIMIT 3)'); os._exit(9)")
    subprocess.run([sys.executable, "-c", code, db], check=False, timeout=60)
    assert Path(db + ".wal").stat().st_size > 0
    return db


@pytest.mark.slow  # over 0.35 s here: outside make test-fast
def test_a_backup_after_a_killed_writer_folds_its_wal_in_first(sample_db_path, tmp_path, capsys):
    """A writer killed before its checkpoint leaves its changes in the WAL. A read-only open cannot fold them
    into the file, so a backup (a copy of the file) would lack them: the backup runs on a writer then."""
    db = _killed_writer_db(sample_db_path, tmp_path)
    with duckdb.connect(db, read_only=True) as conn:
        live = conn.execute("SELECT count(*) FROM performance_results").fetchone()[0]
    code = maintenance_cli.main(["--backup", "--db", db, "--backup-dir", str(tmp_path / "bk"), "--format", "json"])
    assert code == 0, capsys.readouterr().err
    backup = next((tmp_path / "bk").glob("*.duckdb"))
    with duckdb.connect(str(backup), read_only=True) as conn:
        assert conn.execute("SELECT count(*) FROM performance_results").fetchone()[0] == live


def read_only_mount(tmp_path: Path, db: str) -> tuple[Path, Path]:
    """(source folder, mount point) for a read-only bind mount that will hold a copy of `db` as db.duckdb
    (root ignores chmod 444; see test_schema_upgrade_qa.py); skipped where user namespaces are not allowed."""
    if not shutil.which("unshare") or subprocess.run(["unshare", "-rm", "true"], capture_output=True).returncode:
        pytest.skip("user namespaces (unshare -rm) are not available: cannot make a read-only mount")
    src, mnt = tmp_path / "ro_src", tmp_path / "ro"
    src.mkdir(exist_ok=True)
    mnt.mkdir(exist_ok=True)
    shutil.copyfile(db, src / "db.duckdb")
    return src, mnt


def _in_read_only_mount(tmp_path: Path, db: str, argv: list[str]) -> subprocess.CompletedProcess:
    """Run the maintenance tool on a copy of `db` on a read-only bind mount. `{db}` in argv is the copy."""
    src, mnt = read_only_mount(tmp_path, db)
    args = [a.replace("{db}", str(mnt / "db.duckdb")) for a in argv]
    command = " ".join(["mount --bind -o ro", str(src), str(mnt), "&&", "exec", sys.executable,
                        "benchmark_db_maintenance.py", *(f"'{a}'" for a in args)])
    return subprocess.run(["unshare", "-rm", "sh", "-c", command], cwd=REPO, capture_output=True, text=True,
                          timeout=120)


@pytest.mark.slow  # about 0.9 s: outside make test-fast
def test_read_only_steps_work_on_a_read_only_file_and_writers_say_why_not(sample_db_path, tmp_path):
    proc = _in_read_only_mount(tmp_path, sample_db_path,
                               ["--check-integrity", "--migration-stats", "--db", "{db}", "--format", "json",
                                "--output", str(tmp_path / "stats.json")])
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "stats.json").read_text())["totals"] is not None
    proc = _in_read_only_mount(tmp_path, sample_db_path, ["--check-integrity", "--optimize-db", "--db", "{db}"])
    line = _last_line(proc.stderr)
    assert proc.returncode == 3 and "Traceback" not in proc.stderr, proc.stderr
    assert line.startswith("error DB001:") and "--optimize-db writes to the database" in line
    assert "--check-integrity" in line  # what works without writing


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions: chmod 444 does not bite")
def test_read_only_steps_work_on_a_chmod_444_file(sample_db_path, tmp_path, capsys):
    os.chmod(sample_db_path, 0o444)
    assert maintenance_cli.main(["--check-integrity", "--db", sample_db_path]) == 0
    capsys.readouterr()
    code = maintenance_cli.main(["--vacuum", "--db", sample_db_path])
    err = capsys.readouterr().err
    assert code == 3 and _last_line(err).startswith("error DB001:") and "--vacuum writes" in _last_line(err)


# -- 2. a query whose archived files are missing -------------------------------------------------------------


@pytest.fixture
def archive_gone(sample_db_path, tmp_path):
    conn = connection.connect(sample_db_path)
    try:
        archive.archive_old_rows(conn, 0, tmp_path / "archived_data", now=CUT)
    finally:
        conn.close()
    gone = next((tmp_path / "archived_data").glob("performance_results/*.parquet"))
    gone.unlink()
    return sample_db_path, gone


@pytest.mark.slow  # over 0.35 s here: outside make test-fast
@pytest.mark.parametrize("action", [["--sql", "SELECT count(*) AS n FROM performance_results"],
                                    ["--report", "performance"], ["--compare-hardware"]])
def test_a_query_missing_archived_rows_is_db004_unless_allowed(archive_gone, action, capsys):
    """It warned and exited 0 with the live rows alone: a silently incomplete answer."""
    db, gone = archive_gone
    code = query_cli.main(["--db", db, *action, "--format", "csv"])
    captured = capsys.readouterr()
    line = _last_line(captured.err)
    assert code == 2 and line.startswith("error DB004:") and str(gone) in line
    assert "--allow-missing-archive" in line and captured.out == ""
    code = query_cli.main(["--db", db, *action, "--format", "csv", "--allow-missing-archive"])
    captured = capsys.readouterr()
    assert code == 0 and captured.out and "leaves out their rows" in captured.err


def test_a_missing_archive_is_said_once_and_the_files_still_there_are_read(sample_db_path, tmp_path, capsys):
    """connect() warned that archived rows were not shown, then the query's DB004 said it again (two lines);
    with --allow-missing-archive every archived row was left out, not only those of the missing file."""
    conn = connection.connect(sample_db_path)
    try:
        total = conn.execute("SELECT count(*) FROM performance_results").fetchone()[0]
        for cut in (CUT, CUT + dt.timedelta(days=1)):  # two archive runs: two files
            archive.archive_old_rows(conn, 0, tmp_path / "archived_data", now=cut)
    finally:
        conn.close()
    files = sorted((tmp_path / "archived_data").glob("performance_results/*.parquet"))
    assert len(files) == 2, files
    gone_rows = duckdb.sql(f"SELECT count(*) FROM read_parquet('{files[0]}')").fetchone()[0]
    files[0].unlink()
    capsys.readouterr()  # the setup's log lines
    argv = ["--db", sample_db_path, "--sql", "SELECT count(*) AS n FROM performance_results", "--format", "csv"]
    assert query_cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error DB004:"), err
    assert query_cli.main([*argv, "--allow-missing-archive"]) == 0
    captured = capsys.readouterr()
    assert captured.out.split() == ["n", str(total - gone_rows)]
    assert len(captured.err.strip().splitlines()) == 1 and "leaves out their rows" in captured.err


@pytest.mark.slow  # about 1.5-2.6 s: outside make test-fast
@pytest.mark.parametrize("tool", ["visualizer", "analytics"])
def test_charts_and_analyses_missing_archived_rows_are_db004_unless_allowed(archive_gone, tmp_path, tool, capsys):
    """The visualizer and the analytics drew their charts from the live rows alone, with a warning only."""
    import benchmark_db_analytics
    import benchmark_db_visualizer

    db, gone = archive_gone
    if tool == "visualizer":
        main, argv = benchmark_db_visualizer.main, ["--db", db, "--compare-hardware", "--output",
                                                    str(tmp_path / "chart.png")]
    else:
        main, argv = benchmark_db_analytics.main, ["--db", db, "--analysis", "hardware-comparison",
                                                   "--output-dir", str(tmp_path / "analytics")]
    code = main(argv)
    line = _last_line(capsys.readouterr().err)
    assert code == 2 and line.startswith("error DB004:") and str(gone) in line
    assert not (tmp_path / "chart.png").exists() and not (tmp_path / "analytics").exists()
    code = main([*argv, "--allow-missing-archive"])
    assert code == 0 and "leaves out their rows" in capsys.readouterr().err


def test_query_help_says_what_a_missing_archive_does(capsys):
    with pytest.raises(SystemExit):
        query_cli.main(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--allow-missing-archive" in out and "error DB004 (exit 2)" in out


# -- 3. --archive-data says which rows it cannot archive --------------------------------------------------


def test_archive_data_says_undated_rows_stay(sample_db_path, tmp_path, capsys):
    conn = duckdb.connect(sample_db_path)
    try:
        conn.execute("UPDATE performance_results SET created_at = NULL WHERE result_id IN "
                     "(SELECT result_id FROM performance_results ORDER BY result_id LIMIT 2)")
    finally:
        conn.close()
    argv = ["--archive-data", "--older-than", "0", "--archive-dir", str(tmp_path / "arch"), "--db", sample_db_path,
            "--format", "json"]
    assert maintenance_cli.main([*argv, "--dry-run"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert "2 row(s) have no date" in row["result"] and "stay in the database" in row["result"]
    assert maintenance_cli.main(argv) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert "2 row(s) have no date" in row["result"]
    conn = duckdb.connect(sample_db_path, read_only=True)
    try:
        assert conn.execute("SELECT count(*) FROM performance_results").fetchone()[0] == 2
    finally:
        conn.close()


# -- 4. --purge-backups on a folder that does not exist ------------------------------------------------------


def test_purge_backups_on_a_missing_folder_says_so(tmp_path, capsys):
    """It said '0 file(s) deleted, 0 backup(s) kept': a mistyped --backup-dir looked like a purge that ran."""
    missing = tmp_path / "no_such_backups"
    code = maintenance_cli.main(["--purge-backups", "--backup-dir", str(missing), "--format", "json"])
    captured = capsys.readouterr()
    (row,) = json.loads(captured.out)
    assert code == 0 and row["status"] == "ok"  # a nightly purge before the first backup is no failure
    assert row["result"] == f"backup folder {missing} does not exist: nothing to purge"
    assert "deleted" not in row["result"] and not missing.exists()


# -- 5. --sql --format html is the report page -----------------------------------------------------------


def test_sql_as_html_is_the_styled_sortable_report_page(sample_db_path, tmp_path, capsys):
    out = tmp_path / "q.html"
    sql = "SELECT model_name AS \"<b>name</b>\", count(*) AS n FROM models GROUP BY ALL ORDER BY 1"
    assert query_cli.main(["--db", sample_db_path, "--sql", sql, "--format", "html", "--output", str(out)]) == 0
    page = out.read_text()
    assert "<style" in page and "class='sortable'" in page and "Click a column header to sort" in page
    assert "<title>Query: SELECT model_name AS &#34;&lt;b&gt;name&lt;/b&gt;&#34;" in page
    assert "<b>name</b>" not in page and "&lt;b&gt;name&lt;/b&gt;" in page


def test_the_python_api_and_the_rest_server_name_missing_archived_files(archive_gone):
    """Their reads failed with DuckDB's bare "IO Error: No files found that match the pattern" (the server: a
    503 telling the client to retry, when only putting the files back helps)."""
    from fastapi.testclient import TestClient

    from benchmark_db.errors import ArchiveMissingError
    from benchmark_db_api import BenchmarkDBAPI
    from benchmark_db_server import ServerSettings, create_app

    db, gone = archive_gone
    api = BenchmarkDBAPI(db)
    try:
        with pytest.raises(ArchiveMissingError, match="archived Parquet file") as raised:
            api.get_performance_metrics()
        assert raised.value.code == "DB004" and str(gone) in raised.value.message
    finally:
        api.close()
    with TestClient(create_app(ServerSettings(db_path=db, idle_release=0.1))) as client:
        response = client.get("/performance")
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "archive_missing" and str(gone) in error["message"]
    assert error["details"] == {"db_code": "DB004"}


def test_a_dry_run_backup_after_a_killed_writer_says_what_it_would_copy(sample_db_path, tmp_path, capsys):
    """A dry run opens the file read-only and copies nothing: the WAL a killed writer left is no reason to fail
    it (it was DB005, "holds changes not yet written"); the real run folds the WAL in first."""
    db = _killed_writer_db(sample_db_path, tmp_path)
    code = maintenance_cli.main(["--backup", "--dry-run", "--db", db, "--backup-dir", str(tmp_path / "bk"),
                                 "--format", "json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert [row["status"] for row in json.loads(captured.out)] == ["ok"] and not (tmp_path / "bk").exists()

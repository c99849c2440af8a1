"""QA sweep 13 of benchmark_db_maintenance.py: Ctrl-C inside a step, multi-table markdown/CSV output, a missing
archive file met by --archive-data, one-line step errors. Real database files in tmp_path."""
from __future__ import annotations

import datetime as dt
import json
import threading

import duckdb
import pytest

import benchmark_db_maintenance as maintenance_cli
from benchmark_db.connection import connect
from benchmark_db.maintenance import archive, backup, optimize

# the sample data is created 2025-03-01 .. 2025-03-03 (see test_backup_archive.py)
CUT = dt.datetime(2025, 3, 2)


def _with_orphan(db_path: str) -> None:
    conn = duckdb.connect(db_path)
    try:
        conn.execute("DELETE FROM models WHERE model_id = (SELECT min(model_id) FROM performance_results)")
    finally:
        conn.close()


@pytest.mark.slow
def test_ctrl_c_inside_a_step_stops_the_whole_run(sample_db_path, tmp_path, monkeypatch, capsys):
    """DuckDB turns SIGINT during a query into RuntimeError("Query interrupted"): it was reported as a failed
    step and the run went on to the next steps (a Ctrl-C during --backup was followed by a whole --vacuum)."""
    later_steps = []

    def long_backup(conn, *args, **kwargs):
        # conn.interrupt() is what DuckDB's own SIGINT handler does (a real SIGINT reaches DuckDB only in the
        # main thread, and an xdist worker may run tests elsewhere): InterruptException
        timer = threading.Timer(0.3, conn.interrupt)
        timer.start()
        try:
            conn.execute("SELECT count(*) FROM range(10000000000000) t(i) WHERE i % 7 = 3").fetchall()
        finally:
            timer.cancel()
        raise AssertionError("the query was not interrupted")

    monkeypatch.setattr(backup, "create_backup", long_backup)
    monkeypatch.setattr(optimize, "optimize_database", lambda *a, **k: later_steps.append("optimize") or {})
    code = maintenance_cli.main(["--backup", "--optimize-db", "--db", sample_db_path,
                                 "--backup-dir", str(tmp_path / "bk")])
    err = capsys.readouterr().err
    assert code == 130
    assert later_steps == []
    assert "interrupted" in err and "Interrupted!" not in err


def test_sigint_during_a_query_stops_the_run(sample_db_path, tmp_path, monkeypatch, capsys):
    """A SIGINT while DuckDB runs a query in the main thread comes back as RuntimeError("Query interrupted")."""
    later_steps = []

    def interrupted_backup(*args, **kwargs):
        raise RuntimeError("Query interrupted")

    monkeypatch.setattr(backup, "create_backup", interrupted_backup)
    monkeypatch.setattr(optimize, "optimize_database", lambda *a, **k: later_steps.append("optimize") or {})
    code = maintenance_cli.main(["--backup", "--optimize-db", "--db", sample_db_path,
                                 "--backup-dir", str(tmp_path / "bk")])
    assert code == 130 and later_steps == []
    assert "Query interrupted" not in capsys.readouterr().err


def test_interrupt_of_a_restore_is_an_interrupt_not_an_unexpected_error(sample_db_path, tmp_path, monkeypatch,
                                                                      capsys):
    def interrupted(*args, **kwargs):
        raise RuntimeError("Query interrupted")

    monkeypatch.setattr(backup, "restore_backup", interrupted)
    code = maintenance_cli.main(["--restore", str(tmp_path / "x.manifest.json"), "--db", str(tmp_path / "r.duckdb")])
    err = capsys.readouterr().err
    assert code == 130
    assert "unexpected" not in err


@pytest.mark.parametrize("fmt", ["markdown", "csv"])
def test_problems_and_step_summary_are_separate_tables(sample_db_path, fmt, capsys):
    """In markdown the summary's header row followed the last problem row directly and rendered as one more
    row of the problems' table; a CSV reader read it as a data row."""
    _with_orphan(sample_db_path)
    code = maintenance_cli.main(["--check-integrity", "--optimize-db", "--db", sample_db_path, "--format", fmt])
    out = capsys.readouterr().out
    assert code == 1
    header = "| step | status | result |" if fmt == "markdown" else "step,status,result"
    assert f"\n\n{header}\n" in out
    problems, summary = out.split("\n\n", 1)
    assert "orphan" in problems and "optimize-db" in summary


def test_archive_data_with_a_missing_archive_file_fails_up_front_in_one_line(sample_db_path, tmp_path, capsys):
    """It used to move rows and then fail re-creating the views, its summary DuckDB's multi-line IO Error."""
    folder = tmp_path / "archived_data"
    conn = connect(sample_db_path)
    try:
        archive.archive_old_rows(conn, 0, folder, now=CUT)
        live_before = conn.execute("SELECT count(*) FROM performance_results").fetchone()[0]
    finally:
        conn.close()
    gone = next(folder.glob("performance_results/*.parquet"))
    gone.unlink()
    before = sorted(p.name for p in folder.rglob("*") if p.is_file())
    code = maintenance_cli.main(["--archive-data", "--older-than", "0", "--archive-dir", str(folder),
                                 "--db", sample_db_path, "--format", "json"])
    captured = capsys.readouterr()
    (row,) = json.loads(captured.out)
    assert code == 1 and row["status"] == "failed"
    assert row["result"].startswith("error DB005: 1 archived Parquet file(s)") and str(gone) in row["result"]
    assert "\n" not in row["result"] and "LINE 1" not in captured.err
    assert sorted(p.name for p in folder.rglob("*") if p.is_file()) == before  # nothing new written
    conn = duckdb.connect(sample_db_path, read_only=True)
    try:
        assert conn.execute("SELECT count(*) FROM performance_results").fetchone()[0] == live_before
    finally:
        conn.close()


def test_an_unexpected_step_error_is_one_line(sample_db_path, monkeypatch, capsys):
    def broken(*args, **kwargs):
        raise duckdb.BinderException('Binder Error: column "x" not found\n\nLINE 1: SELECT x FROM t\n       ^')

    monkeypatch.setattr(optimize, "optimize_database", broken)
    code = maintenance_cli.main(["--optimize-db", "--db", sample_db_path, "--format", "json"])
    captured = capsys.readouterr()
    (row,) = json.loads(captured.out)
    assert code == 1
    assert row["result"] == 'BinderException: Binder Error: column "x" not found'
    assert "LINE 1" not in captured.err


def test_is_interrupt_recognises_duckdb_interrupts_only():
    import duckdb

    from benchmark_db.errors import is_interrupt

    assert is_interrupt(RuntimeError("Query interrupted"))
    assert is_interrupt(duckdb.InterruptException("INTERRUPT Error: Interrupted!"))
    assert not is_interrupt(RuntimeError("something else"))
    assert not is_interrupt(OSError("Query interrupted"))


def test_every_tool_takes_duckdbs_interrupt_as_ctrl_c(capsys):
    """run_cli, shared by every tool, said "unexpected RuntimeError: Query interrupted ... report it" (exit 2)."""
    import argparse

    from benchmark_db.cli import run_cli

    def run(args):
        raise RuntimeError("Query interrupted")

    assert run_cli(argparse.ArgumentParser(prog="tool"), run, []) == 130
    err = capsys.readouterr().err
    assert err.startswith("error: interrupted") and "unexpected" not in err

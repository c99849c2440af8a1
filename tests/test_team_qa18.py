"""Team mode, QA round 18: two writers on a new lake, passwords in stored command lines and --verbose output,
odd --data-path values, and what a reader of an empty catalog is told.

Each test here failed before the fix it names.
"""
from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import duckdb
import pytest

from benchmark_db.connection import connect
from benchmark_db.errors import DBConnectionError, SchemaError

REPO = Path(__file__).resolve().parents[1]

# ---------------------------------------------------------------------------------- two writers, a new lake
GATED_CREATE = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {repo!r})
    sys.path.insert(0, {scripts!r})
    import create_benchmark_schema
    time.sleep(max(float(sys.argv[3]) - time.time(), 0))
    sys.exit(create_benchmark_schema.main(["--output", sys.argv[1], "--data-path", sys.argv[2]]))
""")


@pytest.mark.postgres
@pytest.mark.slow
def test_two_writers_creating_the_same_new_lake_at_once_both_succeed(postgres_server, tmp_path):
    """Before: the second crashed with "cannot rollback - no transaction is active", a transaction conflict on
    schema_migrations, or DB001 "duplicate key value ... pg_type_typname_nsp_index" (3 runs in 3)."""
    for attempt in range(2):
        target = f"ducklake:postgres:{postgres_server.create_database(f'race_{uuid.uuid4().hex[:10]}')}"
        data = str(tmp_path / f"data{attempt}")
        start_at = time.time() + 3.0  # both processes imported and ready before the gate opens
        script = GATED_CREATE.format(repo=str(REPO), scripts=str(REPO / "scripts"))
        procs = [subprocess.Popen([sys.executable, "-c", script, target, data, str(start_at)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
        for proc in procs:
            _out, err = proc.communicate(timeout=300)
            assert proc.returncode == 0, err[-2000:]
        conn = connect(target, read_only=True)
        versions = conn.execute("SELECT count(*), count(DISTINCT version) FROM schema_migrations").fetchone()
        conn.close()
        assert versions[0] == versions[1] > 0


class _CommitFailsLikeDuckLake:
    """A connection whose COMMIT fails and ends the transaction, as DuckLake's does on a conflict."""

    def __init__(self, conn):
        self.conn = conn

    def execute(self, sql, *args):
        if sql.strip().upper() == "COMMIT":
            self.conn.execute("ROLLBACK")
            raise duckdb.TransactionException("Transaction conflict - attempting to create table t")
        return self.conn.execute(sql, *args)


def test_a_failed_migration_commit_reports_the_failure_not_the_rollback():
    """Before: ROLLBACK after the failed COMMIT raised "cannot rollback - no transaction is active", which
    reached the user as an unexpected TransactionException instead of the conflict."""
    from benchmark_db import schema

    conn = duckdb.connect(":memory:")
    with pytest.raises(SchemaError) as caught:
        schema.migrate(_CommitFailsLikeDuckLake(conn), statement_filter=schema.without_zstd)
    assert "Transaction conflict" in str(caught.value)
    assert "re-run" in str(caught.value)
    assert schema.current_version(conn) == 0


# ---------------------------------------------------------------------------------- passwords
@pytest.mark.parametrize("password, secret", [("'open sesame'", "sesame"), (r"pa\ ss", " ss"),
                                              ("hunter2", "hunter2")])
def test_the_stored_command_line_hides_every_password_and_stays_a_shell_line(password, secret):
    """Before: redact() ran over the shell-quoted line: `password='open sesame'` was stored as
    password=***"'open sesame'"'"'' and a simple password lost the closing quote of its argument."""
    from runners.engine import command_line_for

    db = f"ducklake:postgres:dbname=b host=h user=u password={password}"
    stored = command_line_for("run_model_benchmarks.py", ["--db", db, "--quiet"])
    assert secret not in stored
    assert shlex.split(stored) == ["run_model_benchmarks.py", "--db",
                                   "ducklake:postgres:dbname=b host=h user=u password=***", "--quiet"]


def _raise(exc: Exception):
    def run(_args):
        try:
            duckdb.connect(":memory:").execute("SELECT error('ducklake:postgres:dbname=b password=hunter2')")
        except duckdb.Error as cause:
            raise exc from cause
    return run


@pytest.mark.parametrize("exc", [DBConnectionError("cannot attach DuckLake password=***", "check it"),
                                 RuntimeError("boom postgresql://u:hunter2@h/db")])
def test_verbose_tracebacks_do_not_print_the_catalog_password(exc, capsys):
    """Before: --verbose printed traceback.print_exc() as is, the connection string and its password with it."""
    from benchmark_db.cli import run_cli

    parser = argparse.ArgumentParser()
    parser.add_argument("--verbose", action="store_true")
    code = run_cli(parser, _raise(exc), ["--verbose"])
    err = capsys.readouterr().err
    assert code != 0
    assert "Traceback" in err and "hunter2" not in err


# ---------------------------------------------------------------------------------- --data-path
@pytest.mark.slow  # about 1 s: outside make test-fast
def test_a_data_path_with_an_apostrophe_works(tmp_path, monkeypatch):
    """Before: DATA_PATH '...' was not escaped: Parser Error: syntax error at or near "s"."""
    data = tmp_path / "it's data"
    monkeypatch.setenv("BENCHMARK_DB_DATA_PATH", str(data))
    target = f"ducklake:{tmp_path / 'lake.ducklake'}"
    conn = connect(target)
    conn.execute("INSERT INTO models (model_id, model_name) VALUES (1, 'm')")
    conn.close()
    assert data.is_dir()
    conn = connect(target, read_only=True)
    assert conn.execute("SELECT count(*) FROM models").fetchone()[0] == 1
    conn.close()


@pytest.mark.slow  # about 1 s: outside make test-fast
def test_another_data_path_for_an_existing_lake_says_what_to_pass_and_a_reader_creates_no_folder(
        tmp_path, monkeypatch):
    """Before: the hint named DuckLake's OVERRIDE_DATA_PATH, which no tool exposes, and a reader created the
    folder it was given."""
    monkeypatch.setenv("BENCHMARK_DB_DATA_PATH", str(tmp_path / "data"))
    target = f"ducklake:{tmp_path / 'lake.ducklake'}"
    connect(target).close()
    other = tmp_path / "elsewhere"
    monkeypatch.setenv("BENCHMARK_DB_DATA_PATH", str(other))
    with pytest.raises(DBConnectionError) as caught:
        connect(target, read_only=True)
    text = str(caught.value)
    assert "OVERRIDE_DATA_PATH" not in text
    assert f"--data-path {tmp_path / 'data'}" in text and "BENCHMARK_DB_DATA_PATH" in text
    assert not other.exists()


# ---------------------------------------------------------------------------------- an empty catalog
@pytest.mark.postgres
def test_a_reader_of_a_catalog_with_no_lake_is_told_how_to_create_it(postgres_server, tmp_path, monkeypatch):
    """Before: "creating a new DuckLake is explicitly disabled; check the catalog connection string"."""
    monkeypatch.setenv("BENCHMARK_DB_DATA_PATH", str(tmp_path / "data"))
    target = f"ducklake:postgres:{postgres_server.create_database(f'empty_{uuid.uuid4().hex[:10]}')}"
    with pytest.raises(DBConnectionError) as caught:
        connect(target, read_only=True)
    assert "scripts/create_benchmark_schema.py --output" in str(caught.value)
    assert "explicitly disabled" not in str(caught.value)

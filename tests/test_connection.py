"""The connection helper: where the database is, missing files, locks held by other processes."""
from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest

from benchmark_db.connection import DEFAULT_DB_FILE, connect, resolve_db_path, transaction
from benchmark_db.errors import DBConnectionError


def test_default_path_and_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("BENCHMARK_DB_PATH", raising=False)
    assert resolve_db_path(None) == DEFAULT_DB_FILE
    monkeypatch.setenv("BENCHMARK_DB_PATH", str(tmp_path / "env.duckdb"))
    assert resolve_db_path(None) == str(tmp_path / "env.duckdb")
    assert resolve_db_path("given.duckdb") == "given.duckdb"
    connect().close()
    assert (tmp_path / "env.duckdb").exists()


@pytest.mark.parametrize("name, content", [("results.json", '[{"a": 1}]'), ("results.csv", "a,b\n1,2\n")])
def test_a_data_file_given_as_the_database_is_db001_and_left_alone(tmp_path, name, content):
    """DuckDB 1.5.5 opens an existing JSON or CSV file as an empty in-memory database: a writer reported its
    rows stored (the runners, the updater) while nothing was kept anywhere."""
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(DBConnectionError) as err:
        connect(str(path)).close()
    assert str(err.value).startswith(f"error DB001: {path} is a data file (JSON, CSV or Parquet), not a DuckDB")
    assert path.read_text() == content


def test_missing_database_is_db001_for_readers(tmp_path):
    with pytest.raises(DBConnectionError) as err:
        connect(str(tmp_path / "nope.duckdb"), read_only=True)
    assert str(err.value).startswith("error DB001: database")
    assert "create_benchmark_schema.py" in str(err.value)
    assert not (tmp_path / "nope.duckdb").exists()


def test_writer_creates_missing_database_and_parents(tmp_path):
    path = tmp_path / "a" / "b" / "new.duckdb"
    connect(str(path)).close()
    assert path.exists()


def test_a_parent_that_is_a_file_is_db001_not_a_traceback(tmp_path):
    (tmp_path / "results.duckdb").write_text("")
    with pytest.raises(DBConnectionError, match="cannot create the folder") as err:
        connect(str(tmp_path / "results.duckdb" / "x.duckdb"))
    assert "writable folder" in err.value.hint


def test_memory_database_has_schema():
    conn = connect(":memory:")
    assert conn.execute("SELECT count(*) FROM benchmark_performance").fetchone()[0] == 0


def test_not_a_database_is_db001(tmp_path):
    bad = tmp_path / "bad.duckdb"
    bad.write_text("this is not a database")
    with pytest.raises(DBConnectionError) as err:
        connect(str(bad))
    assert "DB001" in str(err.value)


def test_transaction_rolls_back_on_error(db_path):
    conn = connect(db_path)
    with pytest.raises(RuntimeError), transaction(conn):
        conn.execute("INSERT INTO models (model_id, model_name) VALUES (1, 'x')")
        raise RuntimeError("boom")
    assert conn.execute("SELECT count(*) FROM models").fetchone()[0] == 0


def _hold(db_path, seconds):
    code = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(__import__('pathlib').Path(__file__).resolve().parents[1])!r})
        from benchmark_db.connection import connect
        conn = connect({db_path!r})
        print("holding", flush=True)
        time.sleep({seconds})
        conn.close()
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "holding"
    return proc


@pytest.mark.slow  # over 1.5 s: outside make test-fast
def test_second_process_waits_for_the_lock_then_writes(db_path):
    holder = _hold(db_path, 1.5)
    t0 = time.monotonic()
    conn = connect(db_path, lock_timeout=20)
    waited = time.monotonic() - t0
    conn.execute("INSERT INTO models (model_id, model_name) VALUES (7, 'after-wait')")
    conn.close()
    holder.wait(timeout=10)
    assert waited >= 0.5
    assert connect(db_path, read_only=True).execute("SELECT model_name FROM models").fetchall() == [("after-wait",)]


@pytest.mark.slow  # over 0.35 s here: outside make test-fast
def test_lock_timeout_gives_db001_naming_the_holder(db_path):
    holder = _hold(db_path, 5)
    try:
        with pytest.raises(DBConnectionError) as err:
            connect(db_path, lock_timeout=0.5)
        text = str(err.value)
        assert text.startswith("error DB001:") and "lock" in text.lower() and "--lock-timeout" in text
        assert str(holder.pid) in text or "PID" in text or "pid" in text
    finally:
        holder.kill()
        holder.wait()

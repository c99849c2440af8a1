"""Schema upgrades as users with databases from older releases meet them: every tool on an older file, a
migration killed half-way, a file from a newer release, a file the user cannot write. Real DuckDB files."""
from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from benchmark_db import schema
from benchmark_db.connection import connect
from benchmark_db.errors import DBConnectionError

REPO = Path(__file__).resolve().parents[1]


def _old_file(path: Path, version: int, rows: int = 50) -> str:
    """A database as release `version` left it, in DuckDB's default (v1.0.0) storage, with realistic rows."""
    conn = duckdb.connect(str(path))
    schema.migrate(conn, target=version)
    conn.execute("INSERT INTO models (model_id, model_name, model_family) VALUES (1, 'bert-base-uncased', 'bert')")
    conn.execute("INSERT INTO hardware_platforms (hardware_id, hardware_type, device_name) VALUES (2, 'cpu', 'Xeon')")
    conn.execute("INSERT INTO test_runs (run_id, test_name, metadata) VALUES (3, 'nightly', '{\"runner\": \"legacy\"}')")
    conn.execute(f"INSERT INTO performance_results (result_id, run_id, model_id, hardware_id, model_name, "
                 f"hardware_type, batch_size, throughput_items_per_second, average_latency_ms, latency_samples_ms, "
                 f"metrics) SELECT 100 + i, 3, 1, 2, 'bert-base-uncased', 'cpu', 1 + i % 8, i * 1.5, 10.0 + i, "
                 f"[1.0, 2.0 + i], '{{\"k\": ' || i || '}}' FROM range({rows}) t(i)")
    conn.execute("CHECKPOINT")
    conn.close()
    return str(path)


V1_COLUMNS = ("result_id, run_id, model_id, hardware_id, model_name, hardware_type, batch_size, "
              "throughput_items_per_second, average_latency_ms, latency_samples_ms, metrics, is_simulated, created_at")


def _rows(path: str, table: str, columns: str = "*") -> list:
    conn = duckdb.connect(path, read_only=True)
    try:
        return sorted(conn.execute(f"SELECT {columns} FROM {table}").fetchall(), key=repr)
    finally:
        conn.close()


def _digest(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.mark.slow  # about 1.2 s: outside make test-fast
def test_process_killed_after_the_add_column_step_leaves_an_openable_file(tmp_path):
    """Version 2 adds columns to test_runs; DuckDB 1.5.5 cannot replay that from the WAL. A writer killed
    right after the step committed (os._exit, like kill -9) left a file nothing could open again."""
    path = _old_file(tmp_path / "v1.duckdb", 1)
    before = _rows(path, "performance_results", V1_COLUMNS)
    code = (f"import os, sys; sys.path.insert(0, {str(REPO)!r}); import duckdb; from benchmark_db import schema; "
            f"conn = duckdb.connect({path!r}); schema.migrate(conn, target=2); os._exit(0)")  # no close: no checkpoint
    subprocess.run([sys.executable, "-c", code], check=True)
    conn = duckdb.connect(path)  # before the fix: INTERNAL Error: Failure while replaying WAL file
    assert schema.current_version(conn) == 2
    conn.close()
    connect(path).close()  # a re-run completes it
    assert _rows(path, "schema_migrations", "version") == [(v,) for v in range(1, schema.SCHEMA_VERSION + 1)]
    assert _rows(path, "performance_results", V1_COLUMNS) == before  # value by value


def test_migrate_puts_the_checkpoint_threshold_back(tmp_path):
    conn = duckdb.connect(str(tmp_path / "t.duckdb"))
    conn.execute("SET checkpoint_threshold = '32.0 MiB'")
    schema.migrate(conn)
    assert conn.execute("SELECT current_setting('checkpoint_threshold')").fetchone()[0] == "32.0 MiB"


@pytest.mark.slow
def test_sigkill_in_the_middle_of_a_migration_leaves_one_version_and_a_rerun_completes(tmp_path):
    template = _old_file(tmp_path / "big.duckdb", 1, rows=600_000)
    before = _rows(template, "performance_results", "result_id, throughput_items_per_second, metrics")
    code = f"import sys; sys.path.insert(0, {str(REPO)!r}); from benchmark_db.connection import connect; connect(sys.argv[1])"
    for delay in (0.3, 0.8):
        path = str(tmp_path / f"kill_{delay}.duckdb")
        shutil.copyfile(template, path)
        proc = subprocess.Popen([sys.executable, "-c", code, path])
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        conn = duckdb.connect(path)
        version = schema.current_version(conn)
        leftovers = conn.execute("SELECT table_name FROM information_schema.tables WHERE table_name LIKE '%__v4'"
                                 ).fetchall()
        conn.close()
        assert 1 <= version <= schema.SCHEMA_VERSION and not leftovers
        connect(path).close()
        assert _rows(path, "schema_migrations", "version") == [(v,) for v in range(1, schema.SCHEMA_VERSION + 1)]
        assert _rows(path, "performance_results", "result_id, throughput_items_per_second, metrics") == before


def _in_read_only_mount(tmp_path: Path, files: dict[str, str], argv: list[str]) -> subprocess.CompletedProcess:
    """Run `argv` (a tool and its options) where `files` lie on a read-only mount. Root ignores chmod 444,
    so a read-only bind mount in a user namespace is how this is tested; skipped where that is not allowed."""
    if not shutil.which("unshare") or subprocess.run(["unshare", "-rm", "true"], capture_output=True).returncode:
        pytest.skip("user namespaces (unshare -rm) are not available: cannot make a read-only mount")
    src, mnt = tmp_path / "ro_src", tmp_path / "ro"
    src.mkdir(exist_ok=True)
    mnt.mkdir(exist_ok=True)
    for name, origin in files.items():
        shutil.copyfile(origin, src / name)
    command = " ".join(["mount --bind -o ro", str(src), str(mnt), "&&", "exec", sys.executable,
                        *(f"'{a}'" for a in argv)])
    return subprocess.run(["unshare", "-rm", "sh", "-c", command], cwd=REPO, capture_output=True, text=True,
                          timeout=120)


@pytest.mark.slow  # about 1 s or more: outside make test-fast
def test_reader_of_an_older_file_on_a_read_only_mount_gets_db002_or_reads_it(tmp_path):
    v2 = _old_file(tmp_path / "v2.duckdb", 2)
    v3 = _old_file(tmp_path / "v3.duckdb", 3)
    mnt = tmp_path / "ro"
    sql = ["benchmark_db_query.py", "--sql", "SELECT count(*) FROM benchmark_performance", "--format", "csv", "--db"]
    old = _in_read_only_mount(tmp_path, {"v2.duckdb": v2, "v3.duckdb": v3}, sql + [str(mnt / "v2.duckdb")])
    # before: DB001 "cannot open ...: Read-only file system; check that the path is a DuckDB database file you can read"
    assert old.returncode == 3 and "Traceback" not in old.stderr, old.stderr
    line = old.stderr.strip().splitlines()[-1]
    assert line.startswith("error DB002:") and "schema version 2" in line and "read-only" in line
    assert _digest(str(tmp_path / "ro_src" / "v2.duckdb")) == _digest(v2)
    # version 4 changed only keys, which readers do not see, but version 5 adds the is_emulated column every
    # report reads: a version 3 file on a read-only mount is DB002 too (the message says how to upgrade it)
    v3_read = _in_read_only_mount(tmp_path, {}, sql + [str(mnt / "v3.duckdb")])
    assert v3_read.returncode == 3 and "Traceback" not in v3_read.stderr, v3_read.stderr
    assert "schema version 3" in v3_read.stderr.strip().splitlines()[-1]
    # version 6 adds only the ingest log's converter version, which no reader uses: a version 5 file is read
    v5 = _old_file(tmp_path / "v5.duckdb", 5)
    v5_read = _in_read_only_mount(tmp_path, {"v5.duckdb": v5}, sql + [str(mnt / "v5.duckdb")])
    assert v5_read.returncode == 0 and v5_read.stdout.split() == ["count_star()", "50"], v5_read.stderr


def test_writer_on_a_read_only_mount_says_the_file_is_read_only(tmp_path):
    current = str(tmp_path / "cur.duckdb")
    connect(current).close()
    mnt = tmp_path / "ro"
    proc = _in_read_only_mount(tmp_path, {"cur.duckdb": current},
                               ["benchmark_db_maintenance.py", "--optimize-db", "--db", str(mnt / "cur.duckdb")])
    line = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 3 and line.startswith("error DB001:") and "read-only here" in line, proc.stderr


def test_unwritable_error_is_recognised():
    from benchmark_db.connection import _is_unwritable_error

    assert _is_unwritable_error(duckdb.IOException('Cannot open file "x": Read-only file system'))
    assert _is_unwritable_error(duckdb.IOException('Cannot open file "x": Permission denied'))
    assert not _is_unwritable_error(duckdb.IOException("Could not set lock on file"))


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions: chmod 444 does not bite")
def test_reader_of_an_older_read_only_file_gets_db002(tmp_path):
    path = _old_file(tmp_path / "v1.duckdb", 1)
    os.chmod(path, 0o444)
    with pytest.raises(Exception) as err:
        connect(path, read_only=True)
    assert "DB002" in str(err.value) and not isinstance(err.value, DBConnectionError)


@pytest.mark.parametrize("tool", ["create", "converter", "query", "maintenance", "health"])
def test_newer_schema_is_refused_by_every_tool_and_nothing_is_written(tmp_path, tool, corpus_dir):
    path = str(tmp_path / "future.duckdb")
    connect(path).close()
    raw = duckdb.connect(path)
    raw.execute("INSERT INTO schema_migrations (version, name) VALUES (?, 'from the future')",
                [schema.SCHEMA_VERSION + 1])
    raw.close()
    digest = _digest(path)
    argv = {"create": ["scripts/create_benchmark_schema.py", "--output", path],
            "converter": ["benchmark_db_converter.py", "--db", path, "--input-file",
                          str(sorted((corpus_dir / "performance_results").glob("*.json"))[0])],
            "query": ["benchmark_db_query.py", "--db", path, "--sql", "SELECT 1"],
            "maintenance": ["benchmark_db_maintenance.py", "--db", path, "--optimize-db"],
            "health": ["benchmark_db_api.py", "--db", path]}[tool]
    proc = subprocess.run([sys.executable, *argv], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 3 and proc.stderr.strip().splitlines()[-1].startswith("error DB002:"), proc.stderr
    assert _digest(path) == digest and not Path(path + ".wal").exists()

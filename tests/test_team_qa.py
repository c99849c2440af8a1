"""Team mode as a team uses it: bad connection strings, concurrent ingests and merges, odd artifacts, a lake
held by another process, maintenance that does not apply, and reports that read a lake as they read a file.

Each test here failed before the fix it names (see the QA sweep of 2026-11-23).
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from benchmark_db.connection import connect
from benchmark_db.errors import DBConnectionError

REPO = Path(__file__).resolve().parents[1]


def _one_error_line(stderr: str, code: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith(f"error {code}: "), stderr
    assert "Traceback" not in stderr
    return lines[0]


def _query_cli(target: str, capsys, *extra: str) -> tuple[int, str]:
    import benchmark_db_query

    code = benchmark_db_query.main(["--db", target, "--report", "performance", "--format", "json", *extra])
    return code, capsys.readouterr().err


# ---------------------------------------------------------------------------------- connection strings
@pytest.mark.slow  # about 1 s or more: outside make test-fast
def test_a_catalog_host_that_never_answers_fails_within_the_connect_timeout(tmp_path):
    """Before: libpq waited for ever on a port that accepts and never answers (the command hung)."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        env = dict(os.environ, BENCHMARK_DB_CONNECT_TIMEOUT="2", BENCHMARK_DB_DATA_PATH=str(tmp_path / "d"))
        started = time.monotonic()
        done = subprocess.run([sys.executable, str(REPO / "benchmark_db_query.py"), "--db",
                               f"ducklake:postgres:dbname=bench host=127.0.0.1 port={port} user=bench",
                               "--report", "performance"], capture_output=True, text=True, timeout=60, env=env)
    assert time.monotonic() - started < 30
    assert done.returncode == 3
    line = _one_error_line(done.stderr, "DB001")
    assert "timeout expired" in line and "port=" in line


@pytest.mark.postgres
def test_wrong_password_is_one_line_that_does_not_print_the_password(postgres_server, tmp_path, capsys,
                                                                     monkeypatch):
    """Before: three lines of DuckDB's message, each quoting the connection string with the password."""
    postgres_server.add_password_user("qa_writer", "right-pw")
    postgres_server.create_database("qa_pw")
    monkeypatch.setenv("BENCHMARK_DB_DATA_PATH", str(tmp_path / "d"))
    base = f"dbname=qa_pw host=127.0.0.1 port={postgres_server.port} user=qa_writer"
    code, err = _query_cli(f"ducklake:postgres:{base} password=Wr0ngSecret", capsys)
    assert code == 3
    line = _one_error_line(err, "DB001")
    assert "password authentication failed" in line and "Wr0ngSecret" not in err and "password=***" in line
    code, err = _query_cli(f"ducklake:postgres:postgresql://qa_writer:Wr0ngSecret@127.0.0.1:"
                           f"{postgres_server.port}/qa_pw", capsys)
    assert code == 3 and "Wr0ngSecret" not in err
    _one_error_line(err, "DB001")
    code, err = _query_cli(f"ducklake:postgres:{base}", capsys)  # no password at all
    assert code == 3 and "no password supplied" in _one_error_line(err, "DB001")
    # the right password works, and the lake it creates is usable
    connect(f"ducklake:postgres:{base} password=right-pw").close()


@pytest.mark.postgres
def test_missing_database_refused_port_and_unknown_host_are_one_line_each(postgres_server, tmp_path, capsys,
                                                                        monkeypatch):
    from tests.postgres_server import free_port

    monkeypatch.setenv("BENCHMARK_DB_DATA_PATH", str(tmp_path / "d"))
    cases = {f"dbname=no_such_db host=127.0.0.1 port={postgres_server.port} user={postgres_server.user}":
             ('database "no_such_db" does not exist', "createdb"),
             f"dbname=x host=127.0.0.1 port={free_port()} user=x": ("Connection refused", "port="),
             "dbname=x host=no-such-host.invalid user=x": ("could not translate host name", "host="),
             "just-garbage": ('missing "="', "dbname=NAME")}
    for dsn, (why, hint) in cases.items():
        code, err = _query_cli(f"ducklake:postgres:{dsn}", capsys)
        assert code == 3, err
        line = _one_error_line(err, "DB001")
        assert why in line and hint in line.split("; ", 1)[1], line


def test_a_missing_extension_wheel_is_one_line_naming_the_install(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "duckdb_extension_postgres", None)  # import fails as if not installed
    monkeypatch.setenv("BENCHMARK_DB_DATA_PATH", str(tmp_path / "d"))
    code, err = _query_cli("ducklake:postgres:dbname=x host=127.0.0.1 port=1 user=x", capsys)
    assert code == 3
    assert "pip install" in _one_error_line(err, "DB001")


def test_the_runner_does_not_store_the_catalog_password_in_test_runs():
    from runners.engine import command_line_for

    stored = command_line_for("run_model_benchmarks.py",
                              ["--db", "ducklake:postgres:dbname=b host=h user=u password=hunter2", "--quiet"])
    assert "hunter2" not in stored and "password=***" in stored


# ---------------------------------------------------------------------------------- a local catalog file
HOLDER = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {repo!r})
    from benchmark_db.connection import connect
    conn = connect(sys.argv[1])
    print("holding", flush=True)
    time.sleep(float(sys.argv[2]))
""")


@pytest.mark.slow  # about 1 s or more: outside make test-fast
def test_a_local_catalog_held_by_another_process_is_waited_for_then_named(tmp_path, monkeypatch):
    """Before: the second process failed at once, with a hint about a PostgreSQL server."""
    monkeypatch.setenv("BENCHMARK_DB_DATA_PATH", str(tmp_path / "data"))
    target = f"ducklake:{tmp_path / 'team.ducklake'}"
    connect(target).close()
    holder = subprocess.Popen([sys.executable, "-c", HOLDER.format(repo=str(REPO)), target, "3"],
                              stdout=subprocess.PIPE, text=True, env=dict(os.environ))
    try:
        assert holder.stdout.readline().strip() == "holding"
        with pytest.raises(DBConnectionError) as refused:
            connect(target, read_only=True, lock_timeout=0.3)
        assert "locked by another process" in str(refused.value) and "PostgreSQL server" not in str(refused.value)
        assert "\n" not in str(refused.value)
        conn = connect(target, read_only=True, lock_timeout=30)  # waits for the holder to finish
        assert conn.execute("SELECT count(*) FROM models").fetchone()[0] == 0
        conn.close()
    finally:
        holder.kill()
        holder.wait()


# ---------------------------------------------------------------------------------- merging laptop databases
def test_merging_a_database_still_open_by_its_writer_says_so(tmp_path, sample_db_path):
    """Before: DB003 'check that the artifact is a complete .duckdb file' for a perfectly good file."""
    from benchmark_db.merge import merge_database

    script = "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('open', flush=True); time.sleep(30)"
    writer = subprocess.Popen([sys.executable, "-c", script, sample_db_path], stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "open"
        conn = connect(str(tmp_path / "team.duckdb"))
        with pytest.raises(DBConnectionError) as refused:
            merge_database(conn, sample_db_path)
        assert "still open for writing by another process" in str(refused.value)
        assert "complete .duckdb" not in str(refused.value)
        conn.close()
    finally:
        writer.kill()
        writer.wait()


def test_restore_into_a_lake_is_refused_and_writes_no_file(tmp_path, sample_db_path, capsys, monkeypatch):
    """Before: it 'restored' into a new DuckDB file named 'ducklake:postgres:dbname=...' in the current folder."""
    import benchmark_db_maintenance

    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    assert benchmark_db_maintenance.main(["--db", sample_db_path, "--backup", "--backup-dir", "bk"]) == 0
    backup = next(p for p in (work / "bk").iterdir() if p.suffix == ".duckdb")
    capsys.readouterr()
    target = "ducklake:postgres:dbname=bench host=127.0.0.1 port=1 user=bench password=pw"
    assert benchmark_db_maintenance.main(["--db", target, "--restore", str(backup)]) == 2
    line = _one_error_line(capsys.readouterr().err, "DB000")
    assert "does not apply to the DuckLake" in line and "pg_dump" not in line and "password=***" in line
    assert sorted(p.name for p in work.iterdir()) == ["bk"]


@pytest.mark.slow  # about 0.5 s: outside make test-fast
def test_the_fastest_hardware_of_a_tie_does_not_depend_on_row_order(tmp_path):
    """Before: arg_max picked whichever of two equally fast platforms it met first (rocm in a file, webgpu on
    the lake holding the same rows); now the first name in alphabetical order wins a tie."""
    from benchmark_db.reports import ReportFilters, best_hardware_table
    from benchmark_db_api import BenchmarkDBAPI

    path = str(tmp_path / "ties.duckdb")
    api = BenchmarkDBAPI(db_path=path)
    ties = [("rocm", "webgpu"), ("webgpu", "rocm"), ("cuda", "openvino"), ("openvino", "cuda"),
            ("webnn", "qualcomm"), ("qualcomm", "webnn"), ("mps", "openvino"), ("openvino", "mps")]
    for i, order in enumerate(ties):
        for hardware in (*order, "cpu"):
            api.store_performance_result(model_name=f"bert-tie-{i}", hardware_type=hardware, batch_size=1,
                                         throughput=10.0 if hardware == "cpu" else 75.0, latency_avg=13.3)
    api.close()
    conn = connect(path, read_only=True)
    table = best_hardware_table(conn, ReportFilters())
    conn.close()
    got = dict(zip(table["model"], table["fastest_hardware"]))
    assert got == {f"bert-tie-{i}": min(order) for i, order in enumerate(ties)}


# ---------------------------------------------------------------------------------- concurrent writers on a lake
GATED = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {repo!r})
    import benchmark_db_converter
    from benchmark_db.connection import connect
    from benchmark_db.merge import merge_database
    what, target, source, start_at = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    while time.time() < start_at:
        time.sleep(0.005)
    if what == "ingest":
        sys.exit(benchmark_db_converter.main(["--input-dir", source, "--output-db", target, "--quiet"]))
    if what == "integrate":
        from scripts.ci_benchmark_integrator import main as integrate
        sys.exit(integrate(["--artifacts-dir", source, "--db", target, "--quiet"]))
    conn = connect(target)
    print(merge_database(conn, source))
""")


def _at_once(what: str, target: str, sources: list[str]) -> None:
    start_at = time.time() + 4.0  # every process imported and ready before the gate opens
    procs = [subprocess.Popen([sys.executable, "-c", GATED.format(repo=str(REPO)), what, target, src,
                               str(start_at)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for src in sources]
    for proc in procs:
        _out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-2000:]


_COUNTS = {"performance_results": "result_id", "test_runs": "run_id", "ingested_files": "path",
           "source_documents": "sha256", "hardware_compatibility": None, "models": "model_id"}


def _counts(target: str) -> dict:
    conn = connect(target, read_only=True)
    out = {}
    for table, key in _COUNTS.items():
        total = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        distinct = conn.execute(f"SELECT count(DISTINCT {key}) FROM {table}").fetchone()[0] if key else total
        out[table] = (total, distinct)
    out["benchmark_performance"] = conn.execute("SELECT count(*) FROM benchmark_performance").fetchone()[0]
    conn.close()
    return out


def _twice_at_once_like_once_in_a_file(what: str, lake_target: str, source: str, tmp_path) -> None:
    """`what` run by two processes at once on the lake ends as one run on a file: same rows, no duplicates."""
    _at_once(what, lake_target, [source, source])
    local = str(tmp_path / "local.duckdb")
    _at_once(what, local, [source])
    lake, file = _counts(lake_target), _counts(local)
    assert lake == file
    assert all(total == distinct for total, distinct in (v for k, v in lake.items() if k != "benchmark_performance"))


@pytest.mark.postgres
@pytest.mark.slow
def test_two_processes_ingesting_the_same_files_at_once_store_them_once(lake_target, corpus_dir, tmp_path):
    """Before: both read the ingest log before either committed and every row was stored twice."""
    inputs = tmp_path / "performance_results"
    shutil.copytree(corpus_dir / "performance_results", inputs)
    _twice_at_once_like_once_in_a_file("ingest", lake_target, str(inputs), tmp_path)


@pytest.mark.postgres
@pytest.mark.slow
def test_two_processes_merging_the_same_laptop_database_at_once_add_it_once(lake_target, sample_db_path):
    _at_once("merge", lake_target, [sample_db_path, sample_db_path])
    counts = _counts(lake_target)
    assert counts["performance_results"] == (361, 361) and counts["test_runs"] == (3, 3)
    assert counts["benchmark_performance"] == 361


@pytest.mark.postgres
@pytest.mark.slow
def test_two_integrators_on_the_same_artifacts_at_once_log_and_store_them_once(lake_target, corpus_dir,
                                                                               sample_db_path, tmp_path):
    """Before: both found the artifacts unmerged and the lake's ingest log listed each one twice."""
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    shutil.copyfile(sample_db_path, artifacts / "job1.duckdb")
    shutil.copytree(corpus_dir / "performance_results", artifacts / "json")
    _twice_at_once_like_once_in_a_file("integrate", lake_target, str(artifacts), tmp_path)


@pytest.mark.postgres
@pytest.mark.slow
def test_reports_read_a_lake_as_they_read_a_file(lake_target, corpus_dir, tmp_path, sample_db_path, capsys):
    """Merged artifacts (a conflicting copy, an old schema, broken files) and ingested JSON: same reports."""
    import duckdb

    import benchmark_db_query
    from benchmark_db import schema
    from scripts.ci_benchmark_integrator import main as integrate

    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    shutil.copyfile(sample_db_path, artifacts / "job1.duckdb")
    shutil.copyfile(sample_db_path, artifacts / "job2_conflicting.duckdb")
    with duckdb.connect(str(artifacts / "job2_conflicting.duckdb")) as conflicting:
        conflicting.execute("UPDATE performance_results SET average_latency_ms = 9999")
    with duckdb.connect(str(artifacts / "job3_schema_v1.duckdb")) as old:
        schema.migrate(old, target=1)
        old.execute("INSERT INTO models (model_id, model_name, model_family) VALUES (7, 'old-model', 'bert')")
    (artifacts / "job4_not_a_database.duckdb").write_bytes(os.urandom(4096))
    (artifacts / "job5_empty.duckdb").write_bytes(b"")
    shutil.copytree(corpus_dir / "benchmark_results", artifacts / "json")
    local = str(tmp_path / "local.duckdb")
    for target in (lake_target, local):
        assert integrate(["--artifacts-dir", str(artifacts), "--db", target, "--format", "json", "--quiet"]) == 1
        report = json.loads(capsys.readouterr().out)
        failed = sorted(row["artifact"] for row in report if row["status"] == "failed")
        assert failed == ["job4_not_a_database.duckdb", "job5_empty.duckdb"]
        # the same artifacts again add nothing
        assert integrate(["--artifacts-dir", str(artifacts), "--db", target, "--format", "json", "--quiet"]) == 1
        again = json.loads(capsys.readouterr().out)
        assert all(row["status"] in ("unchanged", "failed") for row in again), again
    assert _counts(lake_target) == _counts(local)

    def numbers(value):  # float sums differ in the last bit with the order rows are read in
        if isinstance(value, float):
            return float(f"{value:.9g}")
        if isinstance(value, dict):
            return {k: numbers(v) for k, v in value.items() if k != "generated_at"}
        if isinstance(value, list):
            return [numbers(v) for v in value]
        return value

    for report in ("performance", "hardware", "compatibility", "summary"):
        outputs = []
        for target in (lake_target, local):
            assert benchmark_db_query.main(["--db", target, "--report", report, "--format", "json"]) == 0
            outputs.append(numbers(json.loads(capsys.readouterr().out)))
        assert outputs[0] == outputs[1], report

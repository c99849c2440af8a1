"""An option given an empty value is refused (session 15): read as "not given", `--output ""` of
create_benchmark_schema.py fell back to $BENCHMARK_DB_PATH, which `--force` recreated empty (361 rows lost);
`--input-dir ""` ingested the current folder; `--hardware ""` dropped the filter."""
from __future__ import annotations

import duckdb
import pytest

import benchmark_db_converter
import benchmark_db_query
from benchmark_db_api import BenchmarkDBAPI
from scripts import create_benchmark_schema


def _rows(path) -> int:
    conn = duckdb.connect(str(path), read_only=True)
    try:
        return conn.execute("SELECT count(*) FROM performance_results").fetchone()[0]
    finally:
        conn.close()


@pytest.mark.slow  # about 0.7 s
def test_an_empty_output_never_falls_back_to_the_default_database(tmp_path, monkeypatch, capsys):
    important = tmp_path / "important.duckdb"
    api = BenchmarkDBAPI(str(important))
    api.store_performance_result("bert", "cpu", throughput=1.0)
    api.db.close()
    monkeypatch.setenv("BENCHMARK_DB_PATH", str(important))
    assert create_benchmark_schema.main(["--output", "", "--force"]) == 2
    assert "error DB000: --output is empty" in capsys.readouterr().err
    assert _rows(important) == 1


@pytest.mark.parametrize("argv, says", [
    (["--input-dir", "", "--db", "DB"], "--input-dir is empty"),
    (["--input-dir", "IN", "--db="], "--db is empty"),
])
def test_the_converter_refuses_empty_paths_before_any_work(tmp_path, monkeypatch, capsys, argv, says):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "IN").mkdir()
    (tmp_path / "r.json").write_text('{"model": "bert", "hardware": "cpu", "throughput": 5.0}')
    argv = [str(tmp_path / "db.duckdb") if word == "DB" else word for word in argv]
    assert benchmark_db_converter.main(argv) == 2
    assert f"error DB000: {says}" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["IN", "r.json"]  # no database made, nothing read


def test_an_empty_report_filter_is_refused_not_dropped(db_path, capsys):
    api = BenchmarkDBAPI(db_path)
    api.store_performance_result("bert", "cpu", throughput=1.0)
    api.db.close()
    assert benchmark_db_query.main(["--db", db_path, "--report", "performance", "--hardware", ""]) == 2
    assert "error DB000: --hardware is empty" in capsys.readouterr().err


def test_an_output_under_a_file_is_refused_before_the_ingest(tmp_path, capsys):
    """The converter ingested and committed, then exited 2 with "cannot write ...: File exists": a CI job read
    a usage error for an ingest that had happened."""
    (tmp_path / "IN").mkdir()
    (tmp_path / "IN" / "r.json").write_text('{"model": "bert", "hardware": "cpu", "throughput": 5.0}')
    (tmp_path / "j.json").write_text("{}")
    db = tmp_path / "db.duckdb"
    assert benchmark_db_converter.main(["--input-dir", str(tmp_path / "IN"), "--db", str(db),
                                        "--output", str(tmp_path / "j.json" / "o.json")]) == 2
    assert "j.json is a file, not a folder" in capsys.readouterr().err
    assert not db.exists()


@pytest.mark.slow  # about 2 s: imports torch
def test_a_runner_refuses_unknown_hardware_before_creating_the_database(tmp_path, capsys):
    pytest.importorskip("torch")
    from runners.run_model_benchmarks import main

    db = tmp_path / "x.duckdb"
    assert main(["--db", str(db), "--model", "bert", "--hardware", "tpu"]) == 2
    assert "error DB000: unknown hardware 'tpu'" in capsys.readouterr().err
    assert not db.exists()


def test_create_schema_quiet_says_nothing_on_stderr(tmp_path, capsys):
    assert create_benchmark_schema.main(["--output", str(tmp_path / "q.duckdb"), "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out.startswith("table,rows")


def test_the_api_names_a_folder_given_as_database(tmp_path):
    """BenchmarkDBAPI on a folder said "does not exist; create it with ..."."""
    from benchmark_db.errors import DBConnectionError

    with pytest.raises(DBConnectionError, match="is a directory, not a database file"):
        BenchmarkDBAPI(str(tmp_path)).health()

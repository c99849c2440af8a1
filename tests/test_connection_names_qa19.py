"""A new database is never created under the name of another kind of file (session 16):
`create_benchmark_schema.py --output schema.json` made a DuckDB file named schema.json."""
from __future__ import annotations

import pytest

import benchmark_db_converter
from benchmark_db.connection import connect
from benchmark_db.errors import UsageError
from scripts import create_benchmark_schema


@pytest.mark.parametrize("name", ["schema.json", "results.CSV", "report.html", "table.parquet", "b.duckdb.gz"])
def test_a_writer_will_not_create_a_database_named_like_another_file(tmp_path, name):
    with pytest.raises(UsageError, match="not a DuckDB database"):
        connect(tmp_path / name)
    assert list(tmp_path.iterdir()) == []


def test_the_tools_say_so_in_one_line_and_make_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert create_benchmark_schema.main(["--output", "schema.json"]) == 2
    assert "error DB000: will not create database schema.json" in capsys.readouterr().err
    (tmp_path / "in").mkdir()
    assert benchmark_db_converter.main(["--input-dir", "in", "--output-db", "out.csv", "--quiet"]) == 2
    assert "pass a database path such as out.duckdb" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]


@pytest.mark.slow  # about 0.8 s: three schemas created
def test_database_names_are_taken(tmp_path):
    for name in ("a.duckdb", "b.db", "c"):  # any other name is the user's choice
        connect(tmp_path / name).close()
        assert (tmp_path / name).exists()

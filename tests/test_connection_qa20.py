"""QA of the connection helper (session 17): another program's DuckDB file given as --db, a local DuckLake
catalog in a folder not made yet, and the wording of a newer schema's error for a reader."""
from __future__ import annotations

import duckdb
import pytest

import benchmark_db_query
from benchmark_db import schema
from benchmark_db.connection import connect
from benchmark_db.errors import DBConnectionError, SchemaError


def foreign_database(path) -> str:
    conn = duckdb.connect(str(path))
    conn.execute("CREATE TABLE sales (x INTEGER)")
    conn.close()
    return str(path)


def tables(path: str) -> list[str]:
    conn = duckdb.connect(path, read_only=True)
    try:
        return [r[0] for r in conn.execute("SELECT table_name FROM information_schema.tables").fetchall()]
    finally:
        conn.close()


def test_a_reader_refuses_another_programs_database_and_leaves_it_as_it_was(tmp_path, capsys):
    path = foreign_database(tmp_path / "other.duckdb")
    assert benchmark_db_query.main(["--db", path, "--sql", "SELECT 1"]) == 3
    err = capsys.readouterr().err
    assert "error DB001" in err and "without the benchmark schema" in err and "sales" in err
    assert tables(path) == ["sales"]
    with pytest.raises(DBConnectionError, match="sales"):
        connect(path, read_only=True)


@pytest.mark.slow  # over 0.35 s here: outside make test-fast
def test_a_writer_adds_the_schema_beside_foreign_tables_and_says_so(tmp_path, caplog):
    path = foreign_database(tmp_path / "other.duckdb")
    with caplog.at_level("WARNING", logger="benchmark_db"):
        connect(path).close()
    assert "adding the benchmark tables beside them" in caplog.text
    assert {"sales", "performance_results"} <= set(tables(path))


def test_a_reader_still_takes_an_empty_duckdb_file(tmp_path):
    path = str(tmp_path / "empty.duckdb")
    duckdb.connect(path).close()
    conn = connect(path, read_only=True)
    try:
        assert conn.execute("SELECT count(*) FROM performance_results").fetchone()[0] == 0
    finally:
        conn.close()


@pytest.mark.slow  # loads the DuckLake extension
def test_a_local_lake_catalog_in_a_new_folder_is_created(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCHMARK_DB_STATE_DIR", str(tmp_path / "state"))
    target = f"ducklake:{tmp_path / 'new' / 'folder' / 'team.ducklake'}"
    conn = connect(target)
    try:
        assert schema.current_version(conn) == schema.SCHEMA_VERSION
    finally:
        conn.close()


def test_a_newer_schema_does_not_tell_a_reader_about_writing(tmp_path):
    path = str(tmp_path / "new.duckdb")
    connect(path).close()
    conn = duckdb.connect(path)
    conn.execute("INSERT INTO schema_migrations (version, name) VALUES (99, 'future')")
    conn.close()
    with pytest.raises(SchemaError) as caught:
        connect(path, read_only=True)
    assert "before writing" not in str(caught.value) and "upgrade the toolkit" in str(caught.value)


def test_steps_that_only_read_refuse_another_programs_database(tmp_path, capsys):
    import benchmark_db_maintenance

    path = foreign_database(tmp_path / "other.duckdb")
    assert benchmark_db_maintenance.main(["--db", path, "--check-integrity"]) == 3
    assert "without the benchmark schema" in capsys.readouterr().err and tables(path) == ["sales"]


def test_a_schema_whose_creation_was_cut_short_is_finished_not_called_foreign(tmp_path, caplog):
    """A process killed while it created the schema leaves only the migrations table: ours, not another program's."""
    path = str(tmp_path / "half.duckdb")
    conn = duckdb.connect(path)
    conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, "
                 "applied_at TIMESTAMP)")
    conn.close()
    with caplog.at_level("WARNING", logger="benchmark_db"):
        reader = connect(path, read_only=True)
    reader.close()
    assert "adding the benchmark tables" not in caplog.text
    assert "performance_results" in tables(path)

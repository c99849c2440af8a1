"""QA sweep of the query tool, the ORM and the Python API: one test per defect found, on real DuckDB files.

Each test here failed before its fix; the docstring says what the symptom was.
"""
from __future__ import annotations

import pytest

from benchmark_db.connection import connect
from benchmark_db.errors import DataConversionError, DBConnectionError
from benchmark_db_api import BenchmarkDBAPI


def _count(path: str, table: str = "performance_results") -> int:
    with connect(path, read_only=True) as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


# -- whole-number fields of a performance result ---------------------------------------------------------

BAD_INTS = [("batch_size", 0), ("batch_size", -1), ("batch_size", 2**31 - 1), ("batch_size", 10**12),
            ("sequence_length", 0), ("sequence_length", -3), ("sequence_length", 2**31),
            ("iterations", -1), ("iterations", 2**31), ("warmup_iterations", -1), ("warmup_iterations", 2**40)]


@pytest.mark.parametrize(("field", "value"), BAD_INTS)
def test_python_api_refuses_impossible_whole_numbers(db_path, field, value):
    """batch_size=0 (and sequence_length=0, a batch of 2**31-1) was stored: a result no report can use and
    that the integrity check then calls impossible."""
    with BenchmarkDBAPI(db_path, idle_release=0) as api:
        with pytest.raises(DataConversionError, match=field):
            api.store_performance_result(model_name="bert-base-uncased", hardware_type="cpu", throughput=1.0,
                                         **{field: value})
        with pytest.raises(DataConversionError, match=f"result 1: {field}"):  # the column-at-a-time path
            api.store_many([{"model_name": "bert-base-uncased", "hardware_type": "cpu", "throughput": 1.0},
                            {"model_name": "bert-base-uncased", "hardware_type": "cpu", field: value}])
    assert _count(db_path) == 0  # all or nothing: the good first result of the batch was not written


def test_python_api_keeps_sensible_whole_numbers(db_path):
    with BenchmarkDBAPI(db_path, idle_release=0) as api:
        api.store_performance_result(model_name="bert-base-uncased", hardware_type="cpu", batch_size=1,
                                     sequence_length=1, iterations=0, warmup_iterations=0)
        api.store_many([{"model_name": "bert-base-uncased", "hardware_type": "cpu", "batch_size": 1_048_576,
                         "sequence_length": 16_777_216, "iterations": 2**31 - 1}])
        assert sorted(api.get_performance_metrics().batch_size) == [1, 1_048_576]


@pytest.fixture
def client(db_path):
    from fastapi.testclient import TestClient

    from benchmark_db_server import ServerSettings, create_app

    with TestClient(create_app(ServerSettings(db_path=db_path, idle_release=0.1))) as test_client:
        yield test_client


@pytest.mark.parametrize(("field", "value"), BAD_INTS)
def test_rest_refuses_impossible_whole_numbers(client, db_path, field, value):
    """POST /performance and /performance/batch answered 201 for batch_size 0 and sequence_length 0."""
    body = {"model_name": "bert-base-uncased", "hardware_type": "cpu", field: value}
    single = client.post("/performance", json=body)
    batch = client.post("/performance/batch", json={"results": [body]})
    assert (single.status_code, batch.status_code) == (422, 422), (single.text, batch.text)
    assert field in single.text and field in batch.text
    assert single.json()["error"]["code"] and batch.json()["error"]["code"]
    client.app.state.api.close()
    assert _count(db_path) == 0


# -- health never creates ------------------------------------------------------------------------------

def test_health_of_a_missing_database_creates_nothing(tmp_path):
    """BenchmarkDBAPI(missing).health() created an empty database file and answered "ok" for it."""
    path = tmp_path / "typo" / "bench.duckdb"
    for target in (path, tmp_path / "missing.duckdb"):
        api = BenchmarkDBAPI(str(target))
        with pytest.raises(DBConnectionError, match="does not exist"):
            api.health()
        api.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_rest_health_of_a_missing_database_is_503_and_creates_nothing(tmp_path):
    from fastapi.testclient import TestClient

    from benchmark_db_server import ServerSettings, create_app

    path = tmp_path / "gone.duckdb"
    with TestClient(create_app(ServerSettings(db_path=str(path)))) as test_client:
        response = test_client.get("/health")
    assert response.status_code == 503 and response.json()["error"]["code"] == "database_unavailable"
    assert list(tmp_path.iterdir()) == []


def test_ensure_database_still_creates_for_the_server_start(tmp_path):
    path = tmp_path / "new.duckdb"
    with BenchmarkDBAPI(str(path), idle_release=0) as api:
        api.ensure_database()
        assert api.health()["rows"]["performance_results"] == 0
    assert path.is_file()


# -- the ORM stores what the converter and the API would store ------------------------------------------

@pytest.mark.parametrize(("field", "value"), [("batch_size", 0), ("sequence_length", 0), ("iterations", -1),
                                              ("throughput_items_per_second", -5.0),
                                              ("average_latency_ms", float("nan")),
                                              ("memory_peak_mb", float("inf"))])
def test_orm_refuses_values_no_benchmark_produces(db_path, field, value):
    """PerformanceResults(batch_size=0, throughput=-5.0, latency=NaN) was stored as given, while the converter
    leaves such values out and the API refuses them: the same fact stored three ways."""
    from benchmark_db_models import BenchmarkDB, PerformanceResults, RecordColumns

    with BenchmarkDB(db_path) as db:
        model, hardware = db.get_or_add_model("bert-base-uncased"), db.get_or_add_hardware("cpu")
        with pytest.raises(DataConversionError, match=field):
            db.insert_performance_results(PerformanceResults(model_id=model, hardware_id=hardware,
                                                             **{field: value}))
        columns = {"model_id": [model, model], "hardware_id": [hardware, hardware], field: [None, value]}
        with pytest.raises(DataConversionError, match=f"row 1: {field}"):
            db.insert_many([RecordColumns(PerformanceResults, columns)])
    assert _count(db_path) == 0


def test_orm_block_in_a_transaction_leaves_nothing_on_error(db_path):
    """An exception inside `with BenchmarkDB(...) as db, db.transaction():` rolls back every insert of the
    block, the dimension rows get_or_add_* made included (README: transaction() groups several calls)."""
    from benchmark_db_models import BenchmarkDB, PerformanceResults, TestRuns

    with pytest.raises(DataConversionError):
        with BenchmarkDB(db_path) as db, db.transaction():
            run_id = db.insert_test_runs(TestRuns(test_name="model_benchmarks", test_type="performance"))
            db.insert_performance_results(PerformanceResults(
                run_id=run_id, model_id=db.get_or_add_model("bert-base-uncased"),
                hardware_id=db.get_or_add_hardware("cuda"), batch_size=0))
    assert [_count(db_path, t) for t in ("test_runs", "models", "hardware_platforms", "performance_results")] == [
        0, 0, 0, 0]


# -- benchmark_db_query.py --sql ------------------------------------------------------------------------

def _query(capsys, *argv: str) -> tuple[int, str, str]:
    import benchmark_db_query

    code = benchmark_db_query.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("statement", [
    "COPY (SELECT 1 AS a) TO '{dir}/copied.csv'",
    "EXPORT DATABASE '{dir}/exported'",
    "SET threads = 1",
    "INSTALL httpfs",
    "CALL checkpoint()",
    "SELECT 1; SELECT 2",
])
def test_sql_refuses_statements_that_write_or_configure(db_path, tmp_path, capsys, statement):
    """--sql opened the file read-only, which stops writes to the database but not COPY ... TO or EXPORT
    DATABASE: both wrote files (exit 0), and SET/CALL ran."""
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    code, out, err = _query(capsys, "--db", db_path, "--sql", statement.format(dir=out_dir), "--format", "csv")
    assert code == 2 and out == ""
    assert err.startswith("error DB004: ") and err.count("\n") == 1 and "Traceback" not in err
    assert list(out_dir.iterdir()) == []


@pytest.mark.parametrize("statement", ["SELECT * FROM no_such_table", "SELEC 1", "SELECT 'a'::INTEGER"])
def test_sql_errors_are_one_line(db_path, capsys, statement):
    """DuckDB's messages span lines ('Did you mean ...', 'LINE 1: ...' and a caret): the error printed was
    three or four lines instead of one."""
    code, out, err = _query(capsys, "--db", db_path, "--sql", statement)
    assert code == 2 and out == ""
    assert err.startswith("error DB004: ") and err.count("\n") == 1, err


def test_sql_still_runs_reads(db_path, capsys):
    for statement in ("SHOW TABLES", "DESCRIBE models", "FROM models", "WITH a AS (SELECT 1 AS x) SELECT * FROM a;",
                      "SELECT * FROM range(3)"):
        code, _, err = _query(capsys, "--db", db_path, "--sql", statement, "--format", "json")
        assert code == 0, (statement, err)


# -- output formats ------------------------------------------------------------------------------------

TRICKY = ("SELECT 'x,\"y\"' AS quoted, 'line1\nline2' AS lines, 'a|b' AS \"pipe|name\", 'üñí漢' AS uni, "
          "1/3 AS third, [1.5] AS one, [1, 2] AS two, NULL::DOUBLE AS nothing")


def test_csv_keeps_full_precision_and_escapes(db_path, capsys):
    """csv printed floats with 6 significant digits (0.333333): an export that loses data."""
    import csv
    import io

    code, out, _ = _query(capsys, "--db", db_path, "--sql", TRICKY, "--format", "csv")
    assert code == 0
    header, row = list(csv.reader(io.StringIO(out)))
    assert header == ["quoted", "lines", "pipe|name", "uni", "third", "one", "two", "nothing"]
    assert row[:4] == ['x,"y"', "line1\nline2", "a|b", "üñí漢"]
    assert float(row[4]) == 1 / 3
    assert row[5:] == ["[1.5]", "[1, 2]", ""]  # a one-element list stayed a list (it printed 1.5)


def test_json_is_valid_and_keeps_values(db_path, capsys):
    import json

    code, out, _ = _query(capsys, "--db", db_path, "--sql", TRICKY, "--format", "json")
    assert code == 0
    [row] = json.loads(out)
    assert row == {"quoted": 'x,"y"', "lines": "line1\nline2", "pipe|name": "a|b", "uni": "üñí漢",
                   "third": 1 / 3, "one": [1.5], "two": [1, 2], "nothing": None}


def test_markdown_cells_keep_the_table_whole(db_path, capsys):
    """A line break in a value ended the markdown row mid-table, and a | in a column name split the header."""
    code, out, _ = _query(capsys, "--db", db_path, "--sql", TRICKY, "--format", "markdown")
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 3 and all(line.count(" | ") == 7 for line in (lines[0], lines[2]))
    assert "line1<br>line2" in lines[2] and "pipe\\|name" in lines[0] and "[1.5]" in lines[2]


@pytest.mark.parametrize("columns", [
    {"batch_size": [1, 0]}, {"batch_size": [1, None, 2**31]}, {"batch_size": [True]}, {"iterations": [-1]},
    {"average_latency_ms": [1.0, float("nan")]}, {"average_latency_ms": [1.0, -0.5]},
    {"average_latency_ms": [1.0, float("inf")]}, {"memory_peak_mb": [__import__("numpy").float64(-1.0)]},
])
def test_orm_column_batches_refuse_what_records_refuse(columns):
    """The column check looks at a column's extremes first: a NaN, an inf or a bool must still be caught."""
    from benchmark_db.errors import DataConversionError
    from benchmark_db_models import check_performance_columns

    with pytest.raises(DataConversionError):
        check_performance_columns(columns)
    check_performance_columns({"batch_size": [1, None, 4], "average_latency_ms": [0.0, 1.5, None], "iterations": [0]})

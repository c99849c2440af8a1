"""benchmark_db_models.py prints the row count of every table with the shared --format and --output, like
every other tool."""
from __future__ import annotations

import json

import pytest

import benchmark_db_models as models
from benchmark_db_models import BenchmarkDB

COUNTS = [
    {"table": "models", "rows": 2},
    {"table": "hardware_platforms", "rows": 1},
    {"table": "test_runs", "rows": 0},
    {"table": "performance_results", "rows": 0},
    {"table": "hardware_compatibility", "rows": 0},
    {"table": "integration_test_results", "rows": 0},
    {"table": "web_platform_results", "rows": 0},
    {"table": "ingested_files", "rows": 0},
    {"table": "source_documents", "rows": 0},
    {"table": "compression_dictionaries", "rows": 0},
]
CSV = """table,rows
models,2
hardware_platforms,1
test_runs,0
performance_results,0
hardware_compatibility,0
integration_test_results,0
web_platform_results,0
ingested_files,0
source_documents,0
compression_dictionaries,0
"""


@pytest.fixture
def counted_db(db_path) -> str:
    with BenchmarkDB(db_path) as db:
        db.get_or_add_model("bert-base-uncased")
        db.get_or_add_model("t5-small")
        db.get_or_add_hardware("cpu")
    return db_path


def run_main(argv, capsys):
    code = models.main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_json(counted_db, capsys):
    code, out, err = run_main(["--db", counted_db, "--format", "json"], capsys)
    assert (code, err) == (0, "")
    assert out == json.dumps(COUNTS, indent=2) + "\n"


def test_csv_and_csv_is_the_default_when_piped(counted_db, capsys):
    assert run_main(["--db", counted_db, "--format", "csv"], capsys) == (0, CSV, "")
    # the shared default: a text table on a terminal, CSV when stdout is not one (as here)
    assert run_main(["--db", counted_db], capsys) == (0, CSV, "")


def test_table_and_markdown(counted_db, capsys):
    code, out, _ = run_main(["--db", counted_db, "--format", "table"], capsys)
    assert code == 0
    assert out.splitlines()[0].split() == ["table", "rows"] and "hardware_platforms" in out
    code, out, _ = run_main(["--db", counted_db, "--format", "markdown"], capsys)
    assert code == 0 and out.splitlines()[0].replace(" ", "") == "|table|rows|" and "| models" in out


def test_output_writes_the_file_in_the_format_of_its_extension(counted_db, tmp_path, capsys):
    target = tmp_path / "sub" / "x.json"
    code, out, _ = run_main(["--db", counted_db, "--output", str(target)], capsys)
    assert (code, out) == (0, "")
    assert json.loads(target.read_text(encoding="utf-8")) == COUNTS
    code, out, _ = run_main(["--db", counted_db, "-o", str(tmp_path / "counts.txt"), "--format", "csv"], capsys)
    assert (code, out) == (0, "") and (tmp_path / "counts.txt").read_text(encoding="utf-8") == CSV


def test_output_of_a_format_it_does_not_write_is_a_usage_error(counted_db, tmp_path, capsys):
    code, out, err = run_main(["--db", counted_db, "--output", str(tmp_path / "x.yaml")], capsys)
    assert (code, out) == (2, "") and err.startswith("error DB000:") and "x.yaml" in err
    assert not (tmp_path / "x.yaml").exists()
    with pytest.raises(SystemExit) as exc:  # argparse's own error, in the one-line form
        models.main(["--db", counted_db, "--format", "xml"])
    assert exc.value.code == 2 and capsys.readouterr().err.startswith("error DB000: argument --format")


def test_a_missing_database_is_db001_and_is_not_created(tmp_path, capsys):
    """Before: the row counts opened the database as a writer and created the mistyped file."""
    missing = tmp_path / "typo.duckdb"
    assert models.main(["--db", str(missing), "--format", "json"]) == 3
    assert capsys.readouterr().err.startswith("error DB001")
    assert not missing.exists()

"""benchmark_db_converter.py: the guide's flags, Parquet export readable by pandas, pyarrow and DuckDB."""
from __future__ import annotations

import json
import shutil

import duckdb
import pytest

import benchmark_db_converter


@pytest.mark.slow  # over 0.35 s here: outside make test-fast
def test_input_dir_output_db_and_parquet_dir(tmp_path, corpus_dir, capsys):
    src = tmp_path / "archived_test_results"
    shutil.copytree(corpus_dir / "archived_test_results", src)
    db = str(tmp_path / "c.duckdb")
    parquet = tmp_path / "benchmark_parquet"
    assert benchmark_db_converter.main(["--input-dir", str(src), "--output-db", db, "--parquet-dir", str(parquet),
                                        "--format", "json", "--quiet"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["totals"]["files"] == len(list(src.rglob("*.json")))
    import pandas as pd
    import pyarrow.parquet as pq

    for table in ("performance_results", "test_runs", "models", "ingested_files"):
        path = parquet / f"{table}.parquet"
        with duckdb.connect(db, read_only=True) as conn:
            expected = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        assert len(pd.read_parquet(path)) == expected
        assert pq.read_table(path).num_rows == expected
        assert duckdb.sql(f"SELECT count(*) FROM read_parquet('{path}')").fetchone()[0] == expected


def test_dry_run_lists_each_file_and_creates_no_database(tmp_path, corpus_dir, capsys):
    db = tmp_path / "none.duckdb"
    assert benchmark_db_converter.main(["--input-dir", str(corpus_dir / "performance_results"), "--db", str(db),
                                        "--dry-run", "--format", "json", "--quiet"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["dry_run"] is True and len(summary["files"]) == 38
    assert any(f["rows_by_table"].get("performance_results") for f in summary["files"])
    assert not db.exists()


def test_consolidate_reads_the_default_directories_of_the_cwd(tmp_path, corpus_dir, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copytree(corpus_dir / "performance_results", tmp_path / "performance_results")
    shutil.copytree(corpus_dir / "hardware_fix_results", tmp_path / "hardware_fix_results")
    assert benchmark_db_converter.main(["--consolidate", "--categories", "performance", "hardware",
                                        "compatibility", "--format", "json", "--quiet"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (tmp_path / "benchmark_db.duckdb").exists()
    assert summary["totals"]["files"] == 45
    assert summary["totals"]["ingested"] > 0


def test_help_lists_the_default_result_directories(capsys):
    with pytest.raises(SystemExit):
        benchmark_db_converter.main(["--help"])
    out = capsys.readouterr().out
    assert "archived_test_results" in out and "performance_results" in out and "benchmark_results" in out


def test_no_input_is_a_usage_error(tmp_path, capsys):
    assert benchmark_db_converter.main(["--db", str(tmp_path / "x.duckdb")]) == 2
    assert "error DB000: nothing to convert" in capsys.readouterr().err

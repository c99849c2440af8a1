"""QA of the ingest tools from a new user's walk-through (session 12). Each test failed before its fix."""
from __future__ import annotations

import json

import pytest

import benchmark_db_converter
import benchmark_db_updater
from tests.test_updater import perf_doc, write


def run_json(capsys, main, *argv: str) -> dict:
    assert main([*argv, "--format", "json", "--quiet"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.slow  # over 0.35 s here: outside make test-fast
def test_dry_run_of_a_rescan_counts_no_rows_that_the_real_run_would_not_add(tmp_path, capsys):
    """`--scan-dir` (no --incremental) converts every file again and rebuilds its rows: nothing is added.
    Its dry run said every fact row was added, and one model and platform per file (models +2 of a database
    holding 2, none new)."""
    folder, db = tmp_path / "in", str(tmp_path / "db.duckdb")
    write(folder / "a.json", perf_doc())
    write(folder / "b.json", perf_doc(model="t5-small"))
    assert run_json(capsys, benchmark_db_updater.main, "--scan-dir", str(folder), "--db", db)["rows_added"]
    dry = run_json(capsys, benchmark_db_updater.main, "--scan-dir", str(folder), "--db", db, "--dry-run")
    real = run_json(capsys, benchmark_db_updater.main, "--scan-dir", str(folder), "--db", db)
    assert dry["totals"]["ingested"] == real["totals"]["ingested"] == 2
    assert dry["rows_added"] == real["rows_added"] == {}


@pytest.mark.slow  # over 0.35 s here: outside make test-fast
def test_dry_run_of_a_changed_file_counts_its_replaced_rows(tmp_path, capsys):
    """A changed file replaces its earlier rows: the real run adds none, its dry run said +1 result."""
    folder, db = tmp_path / "in", str(tmp_path / "db.duckdb")
    write(folder / "a.json", perf_doc())
    run_json(capsys, benchmark_db_converter.main, "--input-dir", str(folder), "--db", db)
    write(folder / "a.json", perf_doc(latency=30.0, throughput=33.3))
    dry = run_json(capsys, benchmark_db_converter.main, "--input-dir", str(folder), "--db", db, "--dry-run")
    real = run_json(capsys, benchmark_db_converter.main, "--input-dir", str(folder), "--db", db)
    assert dry["totals"]["ingested"] == real["totals"]["ingested"] == 1
    assert dry["rows_added"] == real["rows_added"] == {}


@pytest.mark.parametrize("main", [benchmark_db_converter.main, benchmark_db_updater.main])
@pytest.mark.parametrize("name", ["report.html", "report.csv"])
def test_report_of_a_format_it_cannot_write_is_refused_before_any_work(tmp_path, capsys, main, name):
    """--report writes JSON or Markdown; `--report report.html` wrote JSON into report.html after the run."""
    write(tmp_path / "in" / "a.json", perf_doc())
    db = tmp_path / "db.duckdb"
    flag = "--input-dir" if main is benchmark_db_converter.main else "--input-file"
    target = str(tmp_path / "in" / "a.json") if flag == "--input-file" else str(tmp_path / "in")
    try:
        code = main([flag, target, "--db", str(db), "--quiet", "--report", str(tmp_path / name)])
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2 and "error DB000: argument --report:" in err and "Traceback" not in err
    assert not (tmp_path / name).exists() and not db.exists()


def test_incremental_without_a_scan_dir_is_refused_before_any_work(tmp_path, capsys):
    """--incremental with --input-file was accepted and did nothing."""
    src = tmp_path / "r.json"
    src.write_text(json.dumps({"model": "bert", "hardware": "cpu", "throughput": 5.0, "latency_ms": 3.0}))
    db = tmp_path / "u.duckdb"
    assert benchmark_db_updater.main(["--input-file", str(src), "--incremental", "--db", str(db)]) == 2
    assert "--incremental applies to --scan-dir only" in capsys.readouterr().err
    assert not db.exists()


@pytest.mark.slow  # over 0.35 s here: outside make test-fast
def test_fix_rebuilds_a_deleted_model_with_its_family_and_modality(tmp_path, capsys):
    """--fix-inconsistencies re-added a deleted model with its name only: the family that reports group by was
    lost, and a later run could not bring it back (its source file was unchanged)."""
    import duckdb

    import benchmark_db_migration
    from tests.test_migration import _bad_row_db

    path = _bad_row_db(tmp_path)
    conn = duckdb.connect(path)
    before = conn.execute("SELECT model_id, model_name, model_family, modality FROM models").fetchall()
    conn.execute("DELETE FROM models")
    conn.close()
    assert benchmark_db_migration.main(["--validate", "--fix-inconsistencies", "--db", path]) in (0, 1)
    capsys.readouterr()
    conn = duckdb.connect(path, read_only=True)
    after = conn.execute("SELECT model_id, model_name, model_family, modality FROM models").fetchall()
    conn.close()
    assert after == before and before[0][2] == "bert" and before[0][3] == "text"

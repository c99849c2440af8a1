"""QA of the ingest tools from a new user's walk-through (session 9): no made-up times, option values checked
before any work, and summaries that say what happened (dry-run counts, archived files, unchanged files'
kinds, nothing to reconvert, no fixes made). Each test failed before its fix."""
from __future__ import annotations

import json

import duckdb
import pytest

import benchmark_db_converter
import benchmark_db_migration
import benchmark_db_updater
from tests.test_ingest_robustness_qa8 import count
from tests.test_updater import perf_doc, write

# the shape of apis/collected_results/*_test_results.json: outcomes by test, and no time anywhere
UNDATED_TESTS = {"endpoint_handler": "Success", "test_endpoint": "Error: GROQ_API_KEY not provided",
                 "post_request": "Success", "chat_method": "Not implemented"}


def rows(db: str, sql: str) -> list[tuple]:
    conn = duckdb.connect(db, read_only=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def migrate(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        code = benchmark_db_migration.main(list(argv))
    except SystemExit as exc:  # argparse's errors end the parse
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


def test_results_of_a_document_without_a_time_keep_created_at_null(tmp_path, capsys):
    dated, undated = perf_doc(), {k: v for k, v in perf_doc(model="t5-small").items() if k != "timestamp"}
    write(tmp_path / "in" / "dated.json", dated)
    write(tmp_path / "in" / "undated.json", undated)
    write(tmp_path / "in" / "groq_test_results.json", UNDATED_TESTS)
    db = str(tmp_path / "db.duckdb")
    assert migrate(capsys, "--input-dirs", str(tmp_path / "in"), "--db", db, "--quiet")[0] == 0
    # before: undated rows got the time of the ingest (and a later --force another one)
    assert sorted(rows(db, "SELECT model_name, CAST(created_at AS VARCHAR) FROM performance_results")) == [
        ("prajjwal1/bert-tiny", "2025-03-06 17:48:24"), ("t5-small", None)]
    assert rows(db, "SELECT count(*), count(created_at) FROM integration_test_results") == [(4, 0)]
    # the view still gives each undated test its status (arg_max over a NULL time gave none)
    assert sorted(rows(db, "SELECT test_name, latest_status FROM integration_test_status")) == [
        ("chat_method", "not_implemented"), ("endpoint_handler", "passed"), ("post_request", "passed"),
        ("test_endpoint", "failed")]
    # and undated results are not "recent": a time window leaves them out
    assert rows(db, "SELECT count(*) FROM performance_results WHERE created_at > now() - INTERVAL 30 DAY") == [(0,)]


@pytest.mark.parametrize("argv, message", [
    (["--validate", "--tolerance", "-1"], "argument --tolerance: must be a finite number, 0 or more, not -1"),
    (["--validate", "--tolerance", "nan"], "argument --tolerance: must be a finite number, 0 or more, not nan"),
    (["--validate", "--lock-timeout", "-5"], "argument --lock-timeout: must be a finite number, 0 or more"),
    (["--input-dirs", "IN", "--categories", ""], "--categories is empty"),
    (["--input-dirs", "IN", "--categories", ","], "--categories names no category"),
    (["--input-dirs", "IN", "--output", "summary.html"], "--output summary.html: this tool does not write html"),
])
def test_bad_option_values_fail_on_one_line_before_any_work(tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "IN" / "a.json", perf_doc())
    db = tmp_path / "db.duckdb"
    # before: --tolerance -1 ingested everything, then "unexpected ZeroDivisionError"; --categories "" stored
    # every file; --output summary.html wrote two HTML documents back to back
    code, out, err = migrate(capsys, *argv, "--db", str(db))
    assert code == 2 and err.strip().splitlines()[-1].startswith(f"error DB000: {message}"), err
    assert not db.exists() and not (tmp_path / "summary.html").exists()


def test_a_file_that_is_not_json_says_so(tmp_path, capsys):
    (tmp_path / "benchmark.csv").write_text("model,latency\nbert,1.0\n")
    db = str(tmp_path / "db.duckdb")
    assert benchmark_db_updater.main(["--input-file", str(tmp_path / "benchmark.csv"), "--db", db, "--quiet"]) == 0
    reason = rows(db, "SELECT reason FROM ingested_files")[0][0]
    assert reason.startswith("invalid JSON: ") and reason.endswith("(a .csv file: this tool reads JSON result files)")


@pytest.mark.slow  # over 0.35 s here: outside make test-fast
def test_dry_run_counts_models_and_platforms_once_and_only_new_ones(tmp_path, capsys):
    for i in range(4):  # four files of one model on one platform
        write(tmp_path / "in" / f"r{i}.json", perf_doc(latency=10.0 + i))
    db = str(tmp_path / "db.duckdb")

    def dry_run_rows() -> dict:
        assert benchmark_db_converter.main(["--input-dir", str(tmp_path / "in"), "--output-db", db, "--dry-run",
                                            "--format", "json", "--quiet"]) == 0
        return json.loads(capsys.readouterr().out)["rows_added"]

    before = dry_run_rows()
    assert before["models"] == 1 and before["hardware_platforms"] == 1  # before: 4 and 4
    assert before["performance_results"] == 4
    assert benchmark_db_converter.main(["--input-dir", str(tmp_path / "in"), "--output-db", db, "--quiet"]) == 0
    capsys.readouterr()
    assert count(db, "models") == 1 and count(db, "hardware_platforms") == 1
    write(tmp_path / "in" / "new.json", perf_doc(model="t5-small"))
    after = dry_run_rows()
    assert after.get("models") == 1 and "hardware_platforms" not in after  # cpu is stored already


@pytest.mark.slow  # about 0.5 s: outside make test-fast
def test_summary_says_where_archived_files_went_and_names_unchanged_files_kinds(tmp_path, capsys):
    write(tmp_path / "in" / "a.json", perf_doc())
    write(tmp_path / "in" / "b.json", {"models": ["bert"], "batch_sizes": [1, 2], "output_dir": "x"})
    db, archive = str(tmp_path / "db.duckdb"), tmp_path / "arch"
    code, out, err = migrate(capsys, "--input-dirs", str(tmp_path / "in"), "--db", db, "--action", "archive",
                             "--archive-dir", str(archive), "--format", "table")
    # before: nothing said the files had moved, nor where
    assert code == 0 and out.splitlines()[0].endswith(f"; 2 file(s) archived to {archive / 'in'}"), out
    assert f"2 file(s) archived to {archive / 'in'}" in err
    # unchanged files are counted under their kind, not under "-"
    write(tmp_path / "more" / "c.json", perf_doc(model="t5-small"))
    assert migrate(capsys, "--input-dirs", str(tmp_path / "more"), "--db", db, "--quiet")[0] == 0
    code, out, _ = migrate(capsys, "--input-dirs", str(tmp_path / "more"), "--db", db, "--format", "json")
    assert [(f["status"], f["kind"]) for f in json.loads(out)["summary"]["files"]] == [("unchanged", "performance")]


@pytest.mark.slow  # about 0.5 s: outside make test-fast
def test_reconvert_with_nothing_to_do_and_fix_with_nothing_fixed_say_so(tmp_path, capsys):
    write(tmp_path / "in" / "a.json", perf_doc(latency=10.0, throughput=500.0))  # batch 1 at 10 ms is 100/s
    db = str(tmp_path / "db.duckdb")
    assert migrate(capsys, "--input-dirs", str(tmp_path / "in"), "--db", db, "--quiet")[0] == 0
    code, out, _ = migrate(capsys, "--reconvert", "--db", db, "--format", "table")
    assert code == 0 and "(nothing to reconvert: converter version" in out and "no files found" not in out
    code, out, _ = migrate(capsys, "--fix-inconsistencies", "--db", db, "--format", "table")
    assert code == 1 and out.startswith("0 fixes made: none of the problems below can be fixed safely")
    assert "validation: 1 problem:" in out


@pytest.mark.slow  # about 1.1 s: outside make test-fast
def test_a_trend_leaves_undated_results_out_and_says_so(tmp_path, capsys):
    """matplotlib failed on the NaT time of an undated result ("unexpected ConversionError")."""
    import benchmark_db_visualizer

    undated = {k: v for k, v in perf_doc(model="t5-small").items() if k != "timestamp"}
    write(tmp_path / "in" / "undated.json", undated)
    db = str(tmp_path / "db.duckdb")
    assert migrate(capsys, "--input-dirs", str(tmp_path / "in"), "--db", db, "--quiet")[0] == 0
    argv = ["--db", db, "--model", "t5-small", "--plot-trend", "--output", str(tmp_path / "trend.png")]
    assert benchmark_db_visualizer.main(argv) == 2
    assert "error DB004: the 1 result(s) that match (--model t5-small; simulated results excluded) have no time" \
        in capsys.readouterr().err
    write(tmp_path / "in" / "dated.json", perf_doc(model="t5-small", latency=30.0, throughput=33.0))
    assert migrate(capsys, "--input-dirs", str(tmp_path / "in"), "--db", db, "--quiet")[0] == 0
    assert benchmark_db_visualizer.main(argv) == 0 and (tmp_path / "trend.png").stat().st_size > 0
    assert "1 matching result(s) without a time (their files gave none) are left out of the trend" \
        in capsys.readouterr().err

"""Defects found by a QA sweep of the migration pipeline and the updater, run as a user runs them.

Each test uses real files and a real DuckDB file in tmp_path, and failed before its fix.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

import benchmark_db_migration
import benchmark_db_updater
from benchmark_db.convert import CONVERTER_VERSION
from benchmark_db.ingest import Ingestor, default_converter, discover_files
from tests.test_updater import perf_doc, write  # the same small result document

REPO = Path(__file__).resolve().parents[1]




def query(db, sql, params=None):
    conn = duckdb.connect(str(db), read_only=True)
    try:
        return conn.execute(sql, params or []).fetchall()
    finally:
        conn.close()


def migrate(*argv) -> int:
    return benchmark_db_migration.main([*argv, "--quiet", "--format", "json"])


def one_error_line(err: str, code: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error {code}: ") and "; " in lines[0], err
    assert "Traceback" not in err
    return lines[0]


def test_unknown_category_is_a_usage_error(tmp_path, capsys):
    write(tmp_path / "in" / "a.json", perf_doc())
    db = tmp_path / "db.duckdb"
    # before: exit 0, every file "filtered", nothing stored, nothing said
    assert migrate("--db", str(db), "--input-dirs", str(tmp_path / "in"), "--categories", "performance,bogus") == 2
    line = one_error_line(capsys.readouterr().err, "DB000")
    assert "'bogus'" in line and "performance" in line
    # spellings of the known ones still work
    assert migrate("--db", str(db), "--input-dirs", str(tmp_path / "in"), "--categories", "Performance",
                   "web_platform") == 0


@pytest.mark.parametrize("flag", ["--report", "--output"])
def test_unwritable_report_or_output_is_one_error_line(tmp_path, capsys, flag):
    write(tmp_path / "in" / "a.json", perf_doc())
    (tmp_path / "afile").write_text("x")
    code = benchmark_db_migration.main(["--db", str(tmp_path / "db.duckdb"), "--input-dirs", str(tmp_path / "in"),
                                        "--quiet", flag, str(tmp_path / "afile" / "out.json")])
    assert code == 2  # before: "error: unexpected FileExistsError ..."
    one_error_line(capsys.readouterr().err, "DB000")


def test_report_in_a_missing_folder_is_created(tmp_path):
    write(tmp_path / "in" / "a.json", perf_doc())
    report = tmp_path / "no" / "such" / "report.json"
    assert migrate("--db", str(tmp_path / "db.duckdb"), "--input-dirs", str(tmp_path / "in"),
                   "--report", str(report)) == 0
    assert json.loads(report.read_text())["totals"]["ingested"] == 1


@pytest.mark.slow  # over 0.35 s here: outside make test-fast
def test_archive_folder_inside_the_input_folder_is_not_input_again(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "in" / "a.json", perf_doc())
    write(tmp_path / "in" / "sub" / "a.json", perf_doc(model="bert-base-uncased"))
    argv = ("--db", "db.duckdb", "--input-dirs", "in", "--action", "archive", "--archive-dir", "in/archive")
    assert migrate(*argv) == 0
    assert migrate(*argv) == 0  # before: the archived copies were logged as duplicates and moved deeper
    archived = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.json"))
    assert archived == ["in/archive/in/a.json", "in/archive/in/sub/a.json"]
    assert query("db.duckdb", "SELECT count(*) FROM ingested_files")[0][0] == 2


def test_two_inputs_with_the_same_relative_path_are_both_archived(tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    monkeypatch.chdir(run_dir)  # inputs outside the current directory: relative to their folder's parent
    first = write(tmp_path / "p1" / "x" / "a.json", perf_doc())
    second = write(tmp_path / "p2" / "x" / "a.json", perf_doc(model="bert-base-uncased"))
    texts = {first.read_text(), second.read_text()}
    assert migrate("--db", "db.duckdb", "--input-dirs", f"{first.parent},{second.parent}",
                   "--action", "archive", "--archive-dir", "arch") == 0
    archived = list((run_dir / "arch").rglob("*.json"))
    # before: both went to arch/x/a.json and the second move deleted the first file
    assert {p.read_text() for p in archived} == texts
    logged = query("db.duckdb", "SELECT archived_to FROM ingested_files ORDER BY path")
    assert sorted(r[0] for r in logged) == sorted(str(p) for p in archived)


def test_rearchiving_the_same_content_reuses_its_archived_copy(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    source = write(tmp_path / "in" / "a.json", perf_doc())
    text = source.read_text()
    argv = ("--db", "db.duckdb", "--input-dirs", "in", "--action", "archive", "--archive-dir", "arch")
    assert migrate(*argv) == 0
    source.write_text(text)  # the same file dropped in again
    assert migrate(*argv) == 0
    assert [p.name for p in (tmp_path / "arch").rglob("*.json")] == ["a.json"]


@pytest.mark.slow  # over 0.35 s here: outside make test-fast
def test_a_file_name_that_is_not_utf8_is_logged_not_a_crash(tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    name = os.fsdecode(b"caf\xe9.json")
    try:
        (folder / name).write_text(json.dumps(perf_doc()))
    except (OSError, UnicodeEncodeError):
        pytest.skip("this file system does not take non-UTF-8 names")
    db = str(tmp_path / "db.duckdb")
    # before: "error: unexpected UnicodeEncodeError ... surrogates not allowed"
    assert benchmark_db_updater.main(["--db", db, "--scan-dir", str(folder), "--quiet", "--format", "json"]) == 0
    assert query(db, "SELECT path, status FROM ingested_files") == [(str(folder / "caf\\xe9.json"), "ingested")]
    capsys.readouterr()
    # the real file is still the one acted on
    assert migrate("--db", db, "--input-dirs", str(folder), "--action", "remove", "--force") == 0
    assert list(folder.iterdir()) == []


def test_a_file_name_that_is_not_utf8_is_archived_under_its_own_name(tmp_path):
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    name = os.fsdecode(b"caf\xe9.json")
    try:
        (folder / "sub" / name).write_text(json.dumps(perf_doc()))
    except (OSError, UnicodeEncodeError):
        pytest.skip("this file system does not take non-UTF-8 names")
    db, archive = str(tmp_path / "db.duckdb"), tmp_path / "arch"
    assert migrate("--db", db, "--input-dirs", str(folder), "--action", "archive", "--archive-dir", str(archive)) == 0
    # before: moved to arch/in/sub/caf\\xe9.json, a name no one gave it (the log's escaped spelling)
    assert [p.name for p in (archive / "in" / "sub").iterdir()] == [name] and not any(folder.rglob("*.json"))
    assert query(db, "SELECT archived_to FROM ingested_files") == [(str(archive / "in" / "sub" / "caf\\xe9.json"),)]


def _hold_lock(path: Path) -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
                               "print('ready', flush=True); time.sleep(60)", str(path)],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "ready"
    return holder


@pytest.mark.slow  # about 1.1 s: outside make test-fast
def test_an_artifact_that_failed_to_merge_is_merged_on_the_next_run(tmp_path, capsys):
    job = tmp_path / "job"
    write(job / "a.json", perf_doc())
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    job_db = artifacts / "job.duckdb"
    assert migrate("--db", str(job_db), "--input-dirs", str(job)) == 0
    db = str(tmp_path / "db.duckdb")
    holder = _hold_lock(job_db)  # the CI job is still writing it
    try:
        code = benchmark_db_migration.main(["--db", db, "--migrate-ci", "--artifacts-dir", str(artifacts),
                                            "--quiet", "--format", "json", "--strict"])
    finally:
        holder.kill()
        holder.wait()
    assert code == 1  # before: 0, and no "failed:" line
    assert "failed: " in capsys.readouterr().err
    assert migrate("--db", db, "--migrate-ci", "--artifacts-dir", str(artifacts)) == 0
    out = json.loads(capsys.readouterr().out)
    # before: "unchanged" (the failed merge was never tried again) and no performance rows
    assert [a["status"] for a in out["artifacts"]] == ["ingested"]
    assert out["summary"]["table_rows"]["performance_results"] == 1  # the total after the merge
    assert query(db, "SELECT count(*) FROM performance_results")[0][0] == 1


@pytest.mark.slow  # about 1.1 s: outside make test-fast
def test_validate_after_migrate_ci_finds_no_problem_in_its_own_log(tmp_path, capsys):
    job = tmp_path / "job"
    write(job / "a.json", perf_doc())
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    assert migrate("--db", str(artifacts / "job.duckdb"), "--input-dirs", str(job)) == 0
    conn = duckdb.connect(str(artifacts / "job.duckdb"))
    conn.execute(f"COPY (SELECT * FROM models) TO '{artifacts / 'models.parquet'}' (FORMAT parquet)")
    conn.close()
    capsys.readouterr()
    db = str(tmp_path / "db.duckdb")
    # before: exit 1, "the original text is not stored" / "no run holds content" for the artifacts themselves
    assert migrate("--db", db, "--migrate-ci", "--artifacts-dir", str(artifacts), "--validate") == 0
    assert json.loads(capsys.readouterr().out)["problems"] == []
    assert migrate("--db", db, "--fix-inconsistencies") == 0
    assert json.loads(capsys.readouterr().out)["fixes"] == []
    assert query(db, "SELECT count(*) FROM ingested_files WHERE kind LIKE '%artifact'")[0][0] == 2


@pytest.mark.slow  # about 0.8 s: outside make test-fast
def test_fix_inconsistencies_scales_memory_once_and_leaves_impossible_values(tmp_path, capsys):
    write(tmp_path / "in" / "a.json", perf_doc())
    write(tmp_path / "in" / "b.json", perf_doc(model="bert-base-uncased"))
    db = str(tmp_path / "db.duckdb")
    assert migrate("--db", db, "--input-dirs", str(tmp_path / "in")) == 0
    conn = duckdb.connect(db)
    bytes_id, absurd_id = [r[0] for r in conn.execute(
        "SELECT result_id FROM performance_results ORDER BY model_name").fetchall()]
    conn.execute("UPDATE performance_results SET memory_peak_mb = 3 * 1048576.0 * 1000 WHERE result_id = ?",
                 [bytes_id])
    conn.execute("UPDATE performance_results SET memory_peak_mb = 5e15 WHERE result_id = ?", [absurd_id])
    conn.close()
    capsys.readouterr()
    assert migrate("--db", db, "--fix-inconsistencies") == 1  # the absurd value stays a problem
    first = json.loads(capsys.readouterr().out)
    assert [f["id"] for f in first["fixes"]] == [bytes_id]
    assert [(p["check"], p["id"], p["fixable"]) for p in first["problems"]] == [("impossible", absurd_id, False)]
    assert migrate("--db", db, "--fix-inconsistencies") == 1
    # before: the second run "fixed" the absurd value again (5e15 -> 4.8e9 -> 4547 MB)
    assert json.loads(capsys.readouterr().out)["fixes"] == []
    assert query(db, "SELECT result_id, memory_peak_mb FROM performance_results ORDER BY result_id") == sorted(
        [(bytes_id, 3000.0), (absurd_id, 5e15)])


@pytest.mark.slow  # about 0.8 s: outside make test-fast
def test_ctrl_c_stops_between_chunks_and_a_rerun_completes(tmp_path):
    from benchmark_db_models import BenchmarkDB

    for i in range(120):
        write(tmp_path / "in" / f"r{i:03}.json", perf_doc(model=f"model-{i}"))
    files = discover_files([tmp_path / "in"])
    convert = default_converter()
    calls = []

    def interrupting(data, path, sha):
        calls.append(path)
        if len(calls) == 60:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C in the middle of a chunk
        return convert(data, path, sha)

    interrupting.version = CONVERTER_VERSION  # the default converter's: the rerun need not convert these again
    db_path = str(tmp_path / "db.duckdb")
    with BenchmarkDB(db_path) as db, pytest.raises(KeyboardInterrupt):
        Ingestor(db, batch_size=20, converter=interrupting).ingest(files)
    # the chunk under way was converted whole; only whole batches were committed
    assert len(calls) == 96
    logged = query(db_path, "SELECT count(*) FROM ingested_files")[0][0]
    assert logged % 20 == 0 and 0 < logged < 120
    with BenchmarkDB(db_path) as db:
        summary = Ingestor(db, batch_size=20).ingest(files)
    assert summary.count("ingested") == 120 - logged
    assert query(db_path, "SELECT count(*) FROM performance_results")[0][0] == 120


@pytest.mark.slow
def test_sigint_at_any_moment_of_a_cli_run_exits_130_or_finishes(tmp_path):
    """Before: SIGINT while the main thread was importing could leave an import lock held and the run hung for
    ever; inside a DuckDB call it ended as "error: unexpected RuntimeError: Query interrupted"."""
    for i in range(1500):
        write(tmp_path / "in" / f"r{i:04}.json", perf_doc(model=f"model-{i % 40}", latency=20 + i % 7))
    cmd = [sys.executable, str(REPO / "benchmark_db_migration.py"), "--db", "db.duckdb", "--input-dirs", "in",
           "--batch-size", "200", "--quiet", "--format", "csv"]
    import time

    for delay in (0.0, 0.2, 0.4, 0.7, 1.2):
        for name in ("db.duckdb", "db.duckdb.wal"):
            (tmp_path / name).unlink(missing_ok=True)
        proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        # counted from the moment the tool has opened the database: a Ctrl-C while the interpreter is still
        # importing is Python's own (a traceback, nothing written), and a loaded host makes that last long
        deadline = time.monotonic() + 30
        while not (tmp_path / "db.duckdb").exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            pytest.fail(f"the run hung after SIGINT at {delay}s")
        if proc.returncode == -signal.SIGINT:
            # the signal came after the tool had finished, while the interpreter shut down (Python puts the
            # default handler back then): allowed only for a run that completed and said nothing
            assert not err and query(tmp_path / "db.duckdb", "SELECT count(*) FROM ingested_files")[0][0] == 1500
        else:
            assert proc.returncode in (0, 130), err
        assert "unexpected" not in err and "Traceback" not in err, err
        assert subprocess.run(cmd, cwd=tmp_path, capture_output=True).returncode == 0
        assert query(tmp_path / "db.duckdb", "SELECT count(*) FROM ingested_files")[0][0] == 1500


def _old_schema_db(path: Path) -> str:
    from benchmark_db import schema

    conn = duckdb.connect(str(path))
    schema.migrate(conn, target=1)
    conn.close()
    return str(path)


@pytest.mark.parametrize("tool", ["migration", "updater", "converter"])
def test_dry_run_leaves_an_older_schema_database_untouched(tmp_path, capsys, tool):
    import benchmark_db_converter

    write(tmp_path / "in" / "a.json", perf_doc())
    db = _old_schema_db(tmp_path / "old.duckdb")
    before = Path(db).read_bytes()
    inputs = str(tmp_path / "in")
    main, argv = {"migration": (benchmark_db_migration.main, ["--input-dirs", inputs]),
                  "updater": (benchmark_db_updater.main, ["--scan-dir", inputs]),
                  "converter": (benchmark_db_converter.main, ["--input-dir", inputs])}[tool]
    assert main(["--db", db, *argv, "--dry-run", "--quiet", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["summary" if tool == "migration" else "totals"]
    # before: the dry run upgraded the schema in place
    assert Path(db).read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "old.duckdb"]  # no WAL either


def test_validate_of_a_missing_database_is_db001_and_creates_nothing(tmp_path, capsys):
    db = tmp_path / "missing.duckdb"
    for extra in ([], ["--dry-run"], ["--fix-inconsistencies"]):
        # before: an empty database was created and "0 problems" reported (or, with --dry-run, a blank line)
        assert benchmark_db_migration.main(["--db", str(db), "--validate", "--quiet", *extra]) == 3
        one_error_line(capsys.readouterr().err, "DB001")
    assert not db.exists()


@pytest.mark.slow  # over 0.35 s here: outside make test-fast
def test_rows_added_counts_what_each_table_gained(tmp_path):
    """Before: the ingest log and originals always showed 0 added, and a platform named by 6 files counted 6."""
    inputs = [write(tmp_path / "in" / f"r{i}.json", perf_doc(latency=20.0 + i, throughput=50.0 - i))
              for i in range(6)]
    db = tmp_path / "b.duckdb"
    report = tmp_path / "r.json"
    assert benchmark_db_migration.main(["--input-files", ",".join(map(str, inputs)), "--db", str(db),
                                        "--report", str(report), "--quiet"]) == 0
    added = json.loads(report.read_text())["rows_added"]
    assert added["ingested_files"] == 6 and added["source_documents"] == 6 and added["test_runs"] == 6
    assert added["models"] == 1 and added["hardware_platforms"] == 1 and added["performance_results"] == 6
    # a second run over one new file adds exactly its rows
    more = write(tmp_path / "in" / "r6.json", perf_doc(model="t5-small"))
    assert benchmark_db_migration.main(["--input-files", str(more), "--db", str(db), "--report", str(report),
                                        "--quiet"]) == 0
    added = json.loads(report.read_text())["rows_added"]
    assert added == {"ingested_files": 1, "models": 1, "performance_results": 1, "source_documents": 1,
                     "test_runs": 1}


def test_markdown_report_lists_every_file(tmp_path):
    good = write(tmp_path / "in" / "good.json", perf_doc())
    bad = tmp_path / "in" / "bad.json"
    bad.write_text("{not json")
    report = tmp_path / "report.md"
    benchmark_db_migration.main(["--input-dirs", str(tmp_path / "in"), "--db", str(tmp_path / "b.duckdb"),
                                 "--report", str(report), "--quiet"])
    text = report.read_text()
    assert "## Files" in text
    files = text.split("## Files", 1)[1]
    assert str(good) in files and str(bad) in files and "invalid JSON" in files


def test_an_unknown_option_is_one_error_line(capsys):
    with pytest.raises(SystemExit) as stop:
        benchmark_db_migration.main(["--migrate-all", "--bogus"])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error DB000: unrecognized arguments: --bogus") and "\n" not in err
    assert "--help" in err


@pytest.mark.slow  # about 1.1 s: outside make test-fast
def test_validate_after_the_ci_integrator_finds_no_problem_in_its_log(tmp_path, capsys):
    """Before: the integrator's ci-artifact- log rows were 'original text not stored' / 'no run holds content',
    and --fix-inconsistencies deleted them (so the next integrator run merged the artifact again)."""
    from scripts.ci_benchmark_integrator import main as integrate

    write(tmp_path / "job" / "a.json", perf_doc())
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    assert migrate("--db", str(artifacts / "job.duckdb"), "--input-dirs", str(tmp_path / "job")) == 0
    db = str(tmp_path / "db.duckdb")
    assert integrate(["--artifacts-dir", str(artifacts), "--db", db, "--quiet"]) == 0
    capsys.readouterr()
    assert migrate("--db", db, "--validate") == 0
    assert json.loads(capsys.readouterr().out)["problems"] == []
    assert migrate("--db", db, "--fix-inconsistencies") == 0
    assert json.loads(capsys.readouterr().out)["fixes"] == []
    assert query(db, "SELECT count(*) FROM ingested_files WHERE kind LIKE 'ci-artifact-%'")[0][0] == 1

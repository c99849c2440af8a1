"""QA of the migration pipeline and updater (session 7): copies whose original went away or changed, usage
errors that must not touch a database, option checks, and what --validate calls fixable."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

import benchmark_db_migration
import benchmark_db_updater
from tests.test_ingest import snapshot as table_snapshot
from tests.test_updater import write
from tests.test_updater_qa import perf_doc

REPO = Path(__file__).resolve().parents[1]
# wall-clock columns differ between any two runs; `reason` is the log's note on how a file got there
NOT_COMPARED = {"created_at", "ingested_at", "started_at", "reason"}


def snapshot(db: str) -> dict[str, list[tuple]]:
    return table_snapshot(db, ignore=NOT_COMPARED)


def log(db: str) -> dict[str, tuple]:
    conn = duckdb.connect(db, read_only=True)
    try:
        return {Path(p).name: (status, reason) for p, status, reason in
                conn.execute("SELECT path, status, reason FROM ingested_files").fetchall()}
    finally:
        conn.close()


def migrate(folder: Path, db: str, *extra: str) -> int:
    return benchmark_db_migration.main(["--input-dirs", str(folder), "--db", db, "--quiet", "--output",
                                        db + ".out", *extra])


def fresh(tmp_path: Path, folder: Path) -> dict:
    db = str(tmp_path / f"fresh-{len(list(tmp_path.glob('fresh-*.duckdb')))}.duckdb")
    assert migrate(folder, db) == 0
    return snapshot(db)


@pytest.mark.slow  # over 0.8 s
def test_a_copy_takes_over_when_its_original_is_deleted(tmp_path):
    folder, db = tmp_path / "in", str(tmp_path / "m.duckdb")
    write(folder / "a.json", perf_doc())
    shutil.copy(folder / "a.json", folder / "b.json")
    write(folder / "other.json", perf_doc(model="bert-base-uncased"))
    assert migrate(folder, db) == 0
    assert log(db)["b.json"] == ("skipped", f"duplicate of {folder / 'a.json'}")
    (folder / "a.json").unlink()
    assert migrate(folder, db) == 0
    status, reason = log(db)["b.json"]
    assert status == "ingested" and "no longer there" in reason  # not "duplicate of" a file that is gone
    assert "a.json" not in log(db)
    assert snapshot(db) == fresh(tmp_path, folder)
    before = snapshot(db)
    assert migrate(folder, db) == 0  # and it stays so
    assert snapshot(db) == before


@pytest.mark.slow  # over 0.8 s
@pytest.mark.parametrize("owner,copy", [("a.json", "b.json"), ("b.json", "a.json")])
def test_a_copy_keeps_its_content_when_its_original_changes(tmp_path, owner, copy):
    """The original changes after a copy of it was logged as its duplicate: the copy's content must stay in
    the database (rows and original text) in that very run, even with --action remove, whichever of the two
    comes first in the run."""
    folder, db = tmp_path / "in", str(tmp_path / "m.duckdb")
    write(folder / owner, perf_doc())
    assert migrate(folder, db) == 0
    shutil.copy(folder / owner, folder / copy)
    assert migrate(folder, db) == 0
    assert log(db)[copy][0] == "skipped"
    kept = folder.parent / "kept"
    shutil.copytree(folder, kept)  # what a fresh ingest of the final files reads
    write(folder / owner, perf_doc(latency=50.0))
    write(kept / owner, perf_doc(latency=50.0))
    assert migrate(folder, db, "--action", "remove", "--batch-size", "1") == 0
    assert not list(folder.glob("*.json"))  # both removed: their content is committed
    assert {name: status for name, (status, _) in log(db).items()} == {"a.json": "ingested",
                                                                      "b.json": "ingested"}
    conn = duckdb.connect(db, read_only=True)
    try:
        assert conn.execute("SELECT count(*) FROM source_documents").fetchone()[0] == 2
        assert conn.execute("SELECT count(*) FROM performance_results").fetchone()[0] == 4
    finally:
        conn.close()
    shutil.rmtree(folder)
    shutil.copytree(kept, folder)  # same paths as the run above
    expected = fresh(tmp_path, folder)
    mine = snapshot(db)
    assert {t: v for t, v in mine.items() if t != "ingested_files"} == \
           {t: v for t, v in expected.items() if t != "ingested_files"}
    assert sorted(r[:3] for r in mine["ingested_files"]) == sorted(r[:3] for r in expected["ingested_files"])


@pytest.mark.slow  # over 0.8 s
def test_updater_copy_of_a_changed_original_in_one_incremental_scan(tmp_path):
    folder, db = tmp_path / "in", str(tmp_path / "u.duckdb")
    write(folder / "a.json", perf_doc())
    shutil.copy(folder / "a.json", folder / "b.json")
    args = ["--scan-dir", str(folder), "--incremental", "--db", db, "--quiet", "--output", db + ".out"]
    assert benchmark_db_updater.main(args) == 0
    write(folder / "a.json", perf_doc(latency=70.0))
    assert benchmark_db_updater.main(args + ["--format", "json"]) == 0
    files = {Path(f["path"]).name: f["status"] for f in json.loads(Path(db + ".out").read_text())["files"]}
    assert files == {"a.json": "ingested", "b.json": "ingested"}  # not "unchanged" while its rows went
    assert snapshot(db) == fresh(tmp_path, folder) | {"ingested_files": snapshot(db)["ingested_files"]}
    conn = duckdb.connect(db, read_only=True)
    try:
        assert conn.execute("SELECT count(*) FROM performance_results").fetchone()[0] == 4
    finally:
        conn.close()


def run_tool(script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / script), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize("script,args", [
    ("benchmark_db_migration.py", ["--input-dirs", "no_such_dir"]),
    ("benchmark_db_migration.py", ["--input-files", "a.json,missing.json"]),
    ("benchmark_db_migration.py", ["--input-dirs", "in", "--categories", "perf"]),
    ("benchmark_db_migration.py", ["--migrate-ci"]),
    ("benchmark_db_migration.py", ["--migrate-ci", "--artifacts-dir", "no_such_dir"]),
    ("benchmark_db_migration.py", ["--input-dirs", "in", "--parallel", "0"]),
    ("benchmark_db_updater.py", ["--scan-dir", "no_such_dir"]),
    ("benchmark_db_updater.py", ["--input-file", "missing.json"]),
    ("benchmark_db_updater.py", ["--scan-dir", "in", "--batch-size", "-1"]),
])
def test_usage_errors_create_no_database(tmp_path, script, args):
    write(tmp_path / "in" / "a.json", perf_doc())
    write(tmp_path / "a.json", perf_doc())
    result = run_tool(script, *args, "--db", "new.duckdb", cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error DB000: ") and "; " in lines[0], result.stderr
    assert not (tmp_path / "new.duckdb").exists()  # a typo must not leave an empty database behind


def _migrated_two_results(tmp_path):
    """A database migrated from one file of two results; (database path, open connection, their two ids)."""
    folder, db = tmp_path / "in", str(tmp_path / "m.duckdb")
    write(folder / "a.json", perf_doc())
    assert migrate(folder, db) == 0
    conn = duckdb.connect(db)
    first, second = [r[0] for r in conn.execute("SELECT result_id FROM performance_results ORDER BY result_id")
                     .fetchall()]
    return db, conn, first, second


@pytest.mark.slow  # about 0.7 s: outside make test-fast
def test_validate_calls_fixable_only_what_the_fix_repairs(tmp_path):
    db, conn, first, second = _migrated_two_results(tmp_path)
    try:
        conn.execute("UPDATE performance_results SET model_id = 12345 WHERE result_id = ?", [first])
        hardware = conn.execute("SELECT hardware_id FROM performance_results WHERE result_id = ?",
                                [second]).fetchone()[0]
        conn.execute("DELETE FROM hardware_platforms WHERE hardware_id = ?", [hardware])
    finally:
        conn.close()
    out = db + ".json"
    assert benchmark_db_migration.main(["--validate", "--db", db, "--format", "json", "--output", out]) == 1
    orphans = {p["detail"]: p["fixable"] for p in json.loads(Path(out).read_text())["problems"]
               if p["check"] == "orphan" and p["table"] == "performance_results"}
    assert orphans["model_id 12345 is not in models"] is False  # no name hashes to 12345: nothing to rebuild
    assert orphans[f"hardware_id {hardware} is not in hardware_platforms"] is True
    assert benchmark_db_migration.main(["--fix-inconsistencies", "--db", db, "--format", "json",
                                        "--output", out]) == 1
    result = json.loads(Path(out).read_text())
    assert [f["table"] for f in result["fixes"]] == ["hardware_platforms"]
    assert [p for p in result["problems"] if p["fixable"]] == []  # every "fixable" problem was fixed
    assert [p["detail"] for p in result["problems"]] == ["model_id 12345 is not in models"]


@pytest.mark.slow  # over 0.35 s here: outside make test-fast
@pytest.mark.parametrize("action", ["archive", "remove"])
def test_archive_or_remove_in_small_batches_keeps_every_copy_in_the_log(tmp_path, action):
    """Files archived or removed by the run itself are gone on purpose: a copy in a later batch is their
    duplicate, not their successor that takes the log entry over (which left only the last copy logged)."""
    folder, db = tmp_path / "in", str(tmp_path / "m.duckdb")
    write(folder / "a.json", perf_doc())
    for name in ("b.json", "c.json"):
        shutil.copy(folder / "a.json", folder / name)
    write(folder / "d.json", perf_doc(model="bert-base-uncased"))
    assert migrate(folder, db, "--action", action, "--archive-dir", str(tmp_path / "arc"), "--batch-size", "1") == 0
    assert not list(folder.glob("*.json"))
    entries = log(db)
    assert sorted(entries) == ["a.json", "b.json", "c.json", "d.json"]
    assert entries["b.json"] == entries["c.json"] == ("skipped", f"duplicate of {folder / 'a.json'}")
    conn = duckdb.connect(db, read_only=True)
    try:
        marks = {Path(p).name: a for p, a in conn.execute("SELECT path, archived_to FROM ingested_files").fetchall()}
    finally:
        conn.close()
    if action == "remove":  # the log says what became of each file, as benchmark_db_maintenance reads it
        assert set(marks.values()) == {"removed"}
    else:
        assert marks == {n: str(tmp_path / "arc" / "in" / n) for n in marks}


@pytest.mark.slow  # over 0.35 s here: outside make test-fast
def test_a_markdown_report_lists_the_fixes_and_the_problems(tmp_path):
    db, conn, first, second = _migrated_two_results(tmp_path)
    try:
        conn.execute("UPDATE performance_results SET average_latency_ms = -5 WHERE result_id = ?", [first])
        conn.execute("UPDATE performance_results SET memory_peak_mb = 2147483648 WHERE result_id = ?", [second])
    finally:
        conn.close()
    report = tmp_path / "report.md"
    assert benchmark_db_migration.main(["--fix-inconsistencies", "--db", db, "--quiet", "--output", db + ".out",
                                        "--report", str(report)]) == 1
    text = report.read_text()
    assert "## Fixes" in text and "was in bytes: converted to MB" in text
    assert "## Validation problems" in text and "average_latency_ms = -5.0" in text


@pytest.mark.slow  # about 0.7 s: outside make test-fast
def test_migrate_ci_with_only_artifacts_says_nothing_about_json_files(tmp_path, capsys):
    """A folder of .duckdb/.parquet artifacts: the output and the .md report list the artifacts, with no
    "(no files found)" above them (there were no JSON files to find)."""
    job = tmp_path / "job.duckdb"
    src = tmp_path / "in"
    src.mkdir()
    (src / "r.json").write_text(json.dumps({"model_name": "bert-base-uncased", "hardware_type": "cpu",
                                            "batch_size": 1, "average_latency_ms": 5.0}))
    assert benchmark_db_migration.main(["--input-dirs", str(src), "--db", str(job), "--quiet"]) == 0
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    shutil.copy(job, artifacts / "job.duckdb")
    capsys.readouterr()
    report = tmp_path / "r.md"
    assert benchmark_db_migration.main(["--migrate-ci", "--artifacts-dir", str(artifacts), "--db",
                                        str(tmp_path / "t.duckdb"), "--format", "table", "--report",
                                        str(report), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "job.duckdb" in out and "no files found" not in out
    text = report.read_text()
    assert text.startswith("## Artifacts") and "no files found" not in text

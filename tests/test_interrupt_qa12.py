"""Interrupted maintenance, integrator and runner work (QA session 12): kill -9 and Ctrl-C at chosen points.

Each test runs the real command in a subprocess that signals itself when a chosen function is called (before
or after the call), so the kill lands at the same point on every run, however loaded the machine. After the
kill: the database opens and passes the integrity check, nothing is lost, and running the same command again
ends in the state an uninterrupted run leaves, with no leftover partial files.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

REPO = Path(__file__).resolve().parents[1]

KILLER = """
import importlib, os, signal, sys
sys.path.insert(0, {repo!r})
entry = importlib.import_module({entry!r})
owner = importlib.import_module({module!r})
*path, name = {attr!r}.split(".")
for part in path:
    owner = getattr(owner, part)
orig = getattr(owner, name)
calls = [0]
def wrapper(*args, **kwargs):
    if {match!r} not in str(args[0] if args else ""):
        return orig(*args, **kwargs)
    calls[0] += 1
    if calls[0] == {nth} and {when!r} == "before":
        os.kill(os.getpid(), signal.{sig})
    if calls[0] == {nth} and {when!r} == "half":  # a copy killed half-way: half the bytes, then the signal
        data = open(args[0], "rb").read()
        with open(args[1], "wb") as handle:
            handle.write(data[: len(data) // 2])
        os.kill(os.getpid(), signal.{sig})
    result = orig(*args, **kwargs)
    if calls[0] == {nth} and {when!r} == "after":
        os.kill(os.getpid(), signal.{sig})
    return result
setattr(owner, name, wrapper)
raise SystemExit(entry.main({argv!r}))
"""


def run_killed(entry: str, argv: list[str], at: str, *, nth: int = 1, when: str = "before", sig: str = "SIGKILL",
               cwd: Path | None = None, match: str = "") -> subprocess.CompletedProcess:
    """Run `entry.main(argv)` in a subprocess that sends itself `sig` at the `nth` call of `at` ("module:attr",
    attr may be dotted) whose first argument contains `match`: before the call, after it, or "half" (for a
    copy: half the bytes written, then the signal)."""
    module, attr = at.split(":")
    code = KILLER.format(repo=str(REPO), entry=entry, module=module, attr=attr, nth=nth, when=when, sig=sig,
                         argv=[str(a) for a in argv], match=match)
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("BENCHMARK_DB_PATH", None)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd or REPO, env=env,
                          timeout=300)


def run_plain(entry: str, argv: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("BENCHMARK_DB_PATH", None)
    code = f"import sys; sys.path.insert(0, {str(REPO)!r}); import {entry} as m; raise SystemExit(m.main({[str(a) for a in argv]!r}))"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd or REPO, env=env,
                          timeout=300)


def assert_intact(db: Path) -> None:
    result = run_plain("benchmark_db_maintenance", ["--check-integrity", "--db", db])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no problems" in result.stdout


def assert_clean_ctrl_c(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 130, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: interrupted")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def counts(db: Path) -> dict[str, int]:
    conn = duckdb.connect(str(db), read_only=True)
    try:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                for t in ("test_runs", "performance_results", "models", "hardware_platforms")}
    finally:
        conn.close()


# -- maintenance --------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_vacuum_killed_before_the_swap_keeps_the_database_and_next_vacuum_cleans_up(sample_db_path, tmp_path):
    db = Path(sample_db_path)
    before = counts(db)
    killed = run_killed("benchmark_db_maintenance", ["--vacuum", "--db", db], "os:replace")
    assert killed.returncode == -9
    assert list(tmp_path.glob(".*vacuum*"))  # the copy it was making
    assert counts(db) == before
    assert_intact(db)
    interrupted = run_killed("benchmark_db_maintenance", ["--vacuum", "--db", db], "os:replace", sig="SIGINT")
    assert_clean_ctrl_c(interrupted)
    assert run_plain("benchmark_db_maintenance", ["--vacuum", "--db", db]).returncode == 0
    assert not list(tmp_path.glob(".*vacuum*"))
    assert counts(db) == before
    assert_intact(db)


@pytest.mark.slow
@pytest.mark.parametrize("compress", [False, True])
def test_backup_killed_mid_way_leaves_nothing_once_the_next_backup_ran(sample_db_path, tmp_path, compress):
    """A killed backup left a manifest-less copy as large as the database (and .partial files) that every later
    --backup kept beside its own; now the next backup of that database removes them."""
    db, folder = Path(sample_db_path), tmp_path / "bk"
    extra = ["--backup-compress"] if compress else []
    args = ["--backup", "--backup-dir", folder, "--db", db, *extra]
    # killed while writing the manifest (the database copy is in place), then while compressing
    assert run_killed("benchmark_db_maintenance", args, "os:replace", nth=2).returncode == -9
    assert run_killed("benchmark_db_maintenance", args, "shutil:copyfileobj" if compress
                      else "benchmark_db.maintenance.backup:_verify_copy").returncode == -9
    assert any(p.name.endswith(".partial") or not p.name.endswith(".json") for p in folder.iterdir())
    interrupted = run_killed("benchmark_db_maintenance", args, "os:replace", sig="SIGINT")
    assert_clean_ctrl_c(interrupted)
    done = run_plain("benchmark_db_maintenance", args)
    assert done.returncode == 0, done.stderr
    names = sorted(p.name for p in folder.iterdir())
    assert len(names) == 2 and names[1].endswith(".manifest.json"), names
    assert names[0].endswith(".duckdb.gz" if compress else ".duckdb")
    assert_intact(db)
    restored = tmp_path / "restored.duckdb"
    assert run_plain("benchmark_db_maintenance", ["--restore", folder / names[0], "--db", restored]).returncode == 0
    assert counts(restored) == counts(db)


@pytest.mark.slow
def test_restore_killed_mid_way_then_again_restores_and_leaves_no_partial(sample_db_path, tmp_path):
    db, folder = Path(sample_db_path), tmp_path / "bk"
    assert run_plain("benchmark_db_maintenance", ["--backup", "--backup-dir", folder, "--db", db]).returncode == 0
    backup = next(folder.glob("*.duckdb"))
    target = tmp_path / "out" / "restored.duckdb"
    args = ["--restore", backup, "--db", target]
    assert run_killed("benchmark_db_maintenance", args, "benchmark_db.maintenance.backup:_verify_copy"
                      ).returncode == -9
    assert not target.exists() and list(target.parent.glob(".*.partial"))
    assert_clean_ctrl_c(run_killed("benchmark_db_maintenance", args, "benchmark_db.maintenance.backup:_verify_copy",
                                   sig="SIGINT"))
    assert run_plain("benchmark_db_maintenance", args).returncode == 0
    assert sorted(p.name for p in target.parent.iterdir()) == ["restored.duckdb"]
    assert counts(target) == counts(db)
    assert_intact(target)


@pytest.mark.slow
def test_archive_data_killed_before_its_commit_loses_no_row(sample_db_path, tmp_path):
    db = Path(sample_db_path)
    before = counts(db)
    args = ["--archive-data", "--older-than", "0", "--archive-dir", tmp_path / "arch", "--db", db]
    # killed while the rows are written to Parquet, before anything is renamed or committed
    assert run_killed("benchmark_db_maintenance", args, "benchmark_db.maintenance.archive:_sha256").returncode == -9
    assert counts(db) == before
    assert_intact(db)
    assert_clean_ctrl_c(run_killed("benchmark_db_maintenance", args, "benchmark_db.maintenance.archive:_sha256",
                                   sig="SIGINT"))
    assert run_plain("benchmark_db_maintenance", args).returncode == 0
    assert not list((tmp_path / "arch").rglob("*.partial"))
    conn = duckdb.connect(str(db), read_only=True)
    try:
        assert conn.execute("SELECT count(*) FROM performance_results_all").fetchone()[0] == before[
            "performance_results"]
    finally:
        conn.close()
    assert_intact(db)


@pytest.mark.slow
def test_archive_data_killed_between_naming_its_files_and_the_commit_leaves_no_orphan_file(sample_db_path,
                                                                                            tmp_path):
    """The Parquet files get their real names just before the commit; killed in between, they stayed in the
    archive folder for good, looking archived, named by no database (their rows still in the tables)."""
    db, arch = Path(sample_db_path), tmp_path / "arch"
    before = counts(db)
    args = ["--archive-data", "--older-than", "0", "--archive-dir", arch, "--db", db]
    killed = run_killed("benchmark_db_maintenance", args, "benchmark_db.maintenance.archive:ensure_archive_views",
                        nth=2)
    assert killed.returncode == -9, killed.stderr
    assert list(arch.rglob("*.parquet"))
    assert counts(db) == before
    assert_intact(db)
    done = run_plain("benchmark_db_maintenance", args)
    assert done.returncode == 0, done.stderr
    conn = duckdb.connect(str(db), read_only=True)
    try:
        named = {r[0] for r in conn.execute("SELECT path FROM archived_partitions").fetchall()}
        shown = conn.execute("SELECT count(*) FROM performance_results_all").fetchone()[0]
    finally:
        conn.close()
    assert {str(p) for p in arch.rglob("*.parquet")} == named and len(named) == 4
    assert not [p for p in arch.rglob(".*") if p.is_file()]  # no partial file, no journal
    assert shown == before["performance_results"]
    assert_intact(db)


def _logged_json(db: Path, folder: Path, names: list[str]) -> dict[str, Path]:
    folder.mkdir()
    files = {}
    conn = duckdb.connect(str(db))
    try:
        for name in names:
            path = folder / f"{name}.json"
            path.write_text(json.dumps({"model": name, "latency_ms": 1.0, "pad": "x" * 5000}))
            conn.execute("INSERT INTO ingested_files (path, sha256, size_bytes, kind, status, rows, ingested_at) "
                         "VALUES (?, ?, ?, 'performance', 'ingested', 1, ?)",
                         [str(path), sha256(path), path.stat().st_size,
                          dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(days=40)])
            files[name] = path
    finally:
        conn.close()
    return files


@pytest.mark.slow
def test_clean_json_copy_killed_half_way_is_finished_by_the_next_run(db_path, tmp_path):
    """A copy killed half-way left a truncated file at the archive path; every later run then called it "a
    different file already exists" and never archived the original."""
    db = Path(db_path)
    files = _logged_json(db, tmp_path / "results", ["a", "b"])
    digests = {n: sha256(p) for n, p in files.items()}
    arch = tmp_path / "arch"
    args = ["--clean-json", "--older-than", "30", "--action", "archive", "--archive-dir", arch, "--db", db]
    assert run_killed("benchmark_db_maintenance", args, "shutil:copy2", when="half", cwd=tmp_path).returncode == -9
    assert all(p.exists() and sha256(p) == digests[n] for n, p in files.items())  # nothing lost
    assert_clean_ctrl_c(run_killed("benchmark_db_maintenance", args, "shutil:copy2", nth=2, sig="SIGINT",
                                   cwd=tmp_path))
    done = run_plain("benchmark_db_maintenance", args, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 left untouched" in done.stdout
    archived = sorted(p for p in arch.rglob("*") if p.is_file())
    assert [p.name for p in archived] == ["a.json", "b.json"]
    assert {p.stem: sha256(p) for p in archived} == digests
    assert not any(p.exists() for p in files.values())
    conn = duckdb.connect(str(db), read_only=True)
    try:
        assert conn.execute("SELECT count(*) FROM ingested_files WHERE archived_to IS NULL").fetchone()[0] == 0
    finally:
        conn.close()


@pytest.mark.slow
def test_clean_json_remove_killed_after_deleting_a_file_is_finished_by_the_next_run(db_path, tmp_path):
    """Killed between deleting a file and logging it, every later --action remove said "file not found" for
    it, and archived_to stayed empty though the file is gone and its document is stored."""
    db = Path(db_path)
    files = _logged_json(db, tmp_path / "results", ["a", "b"])
    conn = duckdb.connect(str(db))
    try:
        for path in files.values():
            conn.execute("INSERT INTO source_documents (sha256, size_bytes, codec, content) VALUES (?, ?, 'none', ?)",
                         [sha256(path), path.stat().st_size, path.read_bytes()])
    finally:
        conn.close()
    args = ["--clean-json", "--older-than", "30", "--action", "remove", "--db", db]
    killed = run_killed("benchmark_db_maintenance", args, "pathlib:Path.unlink", when="after", cwd=tmp_path,
                        match=".json")
    assert killed.returncode == -9, killed.stderr
    done = run_plain("benchmark_db_maintenance", args, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 file(s) removed, 0 left untouched" in done.stdout
    assert not any(p.exists() for p in files.values())
    conn = duckdb.connect(str(db), read_only=True)
    try:
        assert conn.execute("SELECT count(*) FROM ingested_files WHERE archived_to = 'removed'").fetchone()[0] == 2
    finally:
        conn.close()


@pytest.mark.slow
def test_optimize_killed_and_ctrl_c_leave_the_database_intact(sample_db_path):
    db = Path(sample_db_path)
    before = counts(db)
    assert run_killed("benchmark_db_maintenance", ["--optimize-db", "--db", db],
                      "benchmark_db.maintenance.optimize:optimize_database").returncode == -9
    assert_clean_ctrl_c(run_killed("benchmark_db_maintenance", ["--optimize-db", "--db", db],
                                   "benchmark_db.maintenance.optimize:optimize_database", sig="SIGINT"))
    assert run_plain("benchmark_db_maintenance", ["--optimize-db", "--db", db]).returncode == 0
    assert counts(db) == before
    assert_intact(db)


# -- CI integrator --------------------------------------------------------------------------------------------

def _ci_state(db: Path) -> tuple[list, list]:
    conn = duckdb.connect(str(db), read_only=True)
    try:
        runs = conn.execute("SELECT run_id, git_commit, json_extract(metadata, '$.ci') FROM test_runs "
                            "ORDER BY run_id").fetchall()
        log = conn.execute("SELECT path, status, archived_to IS NOT NULL FROM ingested_files ORDER BY path"
                           ).fetchall()
        return runs, log
    finally:
        conn.close()


def _integrate_args(root: Path, db: Path) -> list:
    return ["--artifacts-dir", root / "art", "--db", db, "--commit", "abc123", "--branch", "main",
            "--archive-artifacts", "--archive-dir", root / "arch"]


@pytest.mark.parametrize("at,when", [("scripts.ci_benchmark_integrator:_log_artifact", "before"),
                                     ("shutil:move", "after")])
@pytest.mark.slow
def test_integrator_killed_then_run_again_ends_as_an_uninterrupted_run(sample_db_path, tmp_path, at, when):
    """Killed after the merge committed and before the artifact was logged and its runs tagged, the re-run
    saw the runs as known and never gave them the CI metadata; killed after an artifact was moved into the
    archive and before that was logged, archived_to stayed empty for good."""
    states = []
    for name, killed in (("plain", False), ("killed", True)):
        root = tmp_path / name
        (root / "art").mkdir(parents=True)
        shutil.copyfile(sample_db_path, root / "art" / "job1.duckdb")
        db = root / "db.duckdb"
        if killed:
            assert run_killed("scripts.ci_benchmark_integrator", _integrate_args(root, db), at, when=when
                              ).returncode == -9
            assert_intact(db)
        done = run_plain("scripts.ci_benchmark_integrator", _integrate_args(root, db))
        assert done.returncode == 0, done.stderr
        runs, log = _ci_state(db)
        states.append((runs, [(Path(p).name, s, a) for p, s, a in log]))
        assert not list((root / "art").rglob("*.duckdb"))
        assert_intact(db)
    assert states[0] == states[1]
    assert all(ci is not None for _, _, ci in states[1][0])


@pytest.mark.slow
def test_integrator_ctrl_c_while_archiving_keeps_the_artifact_and_its_log_consistent(sample_db_path, tmp_path):
    (tmp_path / "art").mkdir()
    shutil.copyfile(sample_db_path, tmp_path / "art" / "job1.duckdb")
    db = tmp_path / "db.duckdb"
    interrupted = run_killed("scripts.ci_benchmark_integrator", _integrate_args(tmp_path, db), "shutil:move",
                             sig="SIGINT")
    assert_clean_ctrl_c(interrupted)
    assert (tmp_path / "art" / "job1.duckdb").exists()
    assert _ci_state(db)[1][0][2] is False  # not logged as archived: it is not
    assert run_plain("scripts.ci_benchmark_integrator", _integrate_args(tmp_path, db)).returncode == 0
    assert _ci_state(db)[1][0][2] is True
    assert not (tmp_path / "art" / "job1.duckdb").exists()


# -- runner -----------------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_runner_interrupted_mid_matrix_stores_nothing_and_a_re_run_stores_the_whole_run(tmp_path):
    db = tmp_path / "db.duckdb"
    argv = ["--model", "bert", "--hardware", "cpu", "--batch-sizes", "1,2,4,8", "--db", db]
    interrupted = run_killed("runners.run_model_benchmarks", argv, "runners.engine:_add_result", nth=3,
                             sig="SIGINT")
    assert_clean_ctrl_c(interrupted)
    assert "nothing of this run was stored" in interrupted.stderr
    killed = run_killed("runners.run_model_benchmarks", argv, "runners.engine:store_document")
    assert killed.returncode == -9
    assert counts(db)["performance_results"] == 0
    assert_intact(db)
    done = run_plain("runners.run_model_benchmarks", argv)
    assert done.returncode == 0, done.stderr
    assert counts(db)["test_runs"] == 1 and counts(db)["performance_results"] == 4
    assert_intact(db)

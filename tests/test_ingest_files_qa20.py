"""QA of the file-system side of ingest (session 17): a reused name after the archive was cleaned, outputs
that name an input, archive folders that hold default result folders or are reached through a link, names
too long to number, a worker process that dies, and hidden files."""
from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import duckdb
import pytest

import benchmark_db_migration
import benchmark_db_updater
from tests.test_updater import write
from tests.test_updater_qa import perf_doc


def migrate(db: str, *argv: str) -> int:
    return benchmark_db_migration.main([*argv, "--db", db, "--quiet", "--output", db + ".out"])


def latencies(db: str) -> list[float]:
    conn = duckdb.connect(db, read_only=True)
    try:
        return sorted(r[0] for r in conn.execute(
            "SELECT average_latency_ms FROM performance_results WHERE batch_size = 1").fetchall())
    finally:
        conn.close()


def logged_paths(db: str) -> set[str]:
    conn = duckdb.connect(db, read_only=True)
    try:
        return {r[0] for r in conn.execute("SELECT path FROM ingested_files").fetchall()}
    finally:
        conn.close()


def test_a_reused_name_is_a_new_result_even_after_the_archived_copy_was_deleted(tmp_path):
    """Cleaning the archive folder (the results are in the database) must not turn the next file of the same
    name into an edit that replaces the earlier result's rows and original."""
    folder, archive, db = tmp_path / "in", tmp_path / "arch", str(tmp_path / "m.duckdb")
    write(folder / "latest.json", perf_doc(latency=10.0))
    assert migrate(db, "--input-dirs", str(folder), "--action", "archive", "--archive-dir", str(archive)) == 0
    for copy in sorted(archive.rglob("*"), reverse=True):  # the user empties the archive
        copy.unlink() if copy.is_file() else copy.rmdir()
    write(folder / "latest.json", perf_doc(latency=12.0))
    assert migrate(db, "--input-dirs", str(folder), "--action", "archive", "--archive-dir", str(archive)) == 0
    assert latencies(db) == [10.0, 12.0]


def test_auto_store_keeps_the_earlier_result_after_processed_was_cleaned(tmp_path):
    auto, db = tmp_path / "auto", str(tmp_path / "u.duckdb")
    write(auto / "results.json", perf_doc(latency=10.0))
    argv = ["--auto-store", "--auto-store-dir", str(auto), "--db", db, "--quiet", "--output", db + ".out"]
    assert benchmark_db_updater.main(argv) == 0
    (auto / "processed" / "results.json").unlink()
    write(auto / "results.json", perf_doc(latency=12.0))
    assert benchmark_db_updater.main(argv) == 0
    assert latencies(db) == [10.0, 12.0]


@pytest.mark.parametrize("option", ["--report", "--output"])
def test_an_output_naming_an_input_file_is_refused_before_any_work(tmp_path, capsys, option):
    first, second = write(tmp_path / "r1.json", perf_doc()), write(tmp_path / "r2.json", perf_doc(latency=9.0))
    before = second.read_bytes()
    db = str(tmp_path / "m.duckdb")
    code = benchmark_db_migration.main(["--input-files", f"{first},{second}", "--db", db, option, str(second)])
    assert code == 2 and second.read_bytes() == before and not Path(db).exists()
    assert "error DB000" in capsys.readouterr().err
    code = benchmark_db_updater.main(["--input-file", str(second), "--db", db, option, str(second)])
    assert code == 2 and second.read_bytes() == before


def test_an_output_inside_an_input_folder_is_refused_when_the_next_scan_would_read_it(tmp_path, capsys):
    folder = tmp_path / "in"
    write(folder / "r1.json", perf_doc())
    db = str(tmp_path / "m.duckdb")
    code = benchmark_db_updater.main(["--scan-dir", str(folder), "--db", db, "--report", str(folder / "rep.json")])
    assert code == 2 and "error DB000" in capsys.readouterr().err
    # a report the scan does not read (not a result file's suffix) is fine there
    assert benchmark_db_updater.main(["--scan-dir", str(folder), "--db", db, "--quiet",
                                      "--report", str(folder / "rep.md"), "--output", db + ".out"]) == 0


@pytest.mark.parametrize("archive", ["performance_results", "."])
def test_migrate_all_refuses_an_archive_folder_that_holds_a_default_result_folder(tmp_path, monkeypatch, capsys,
                                                                                  archive):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "performance_results" / "a.json", perf_doc())
    db = str(tmp_path / "m.duckdb")
    assert migrate(db, "--migrate-all", "--action", "archive", "--archive-dir", archive) == 2
    assert "performance_results" in capsys.readouterr().err and not Path(db).exists()
    assert (tmp_path / "performance_results" / "a.json").is_file()


def test_a_long_name_taken_in_the_archive_gets_a_free_name_that_fits(tmp_path):
    folder, archive, db = tmp_path / "in", tmp_path / "arch", str(tmp_path / "m.duckdb")
    name = "x" * 250 + ".json"  # 255 bytes: the longest name most file systems take
    write(folder / name, perf_doc(latency=5.0))
    write(archive / "in" / name, perf_doc(latency=6.0))  # an earlier file of that name, archived
    write(folder / "ok.json", perf_doc(latency=7.0))
    assert migrate(db, "--input-dirs", str(folder), "--action", "archive", "--archive-dir", str(archive)) == 0
    assert latencies(db) == [5.0, 7.0]
    kept = sorted(p.name for p in (archive / "in").iterdir())
    assert len(kept) == 3 and name in kept and all(len(n.encode()) <= 255 for n in kept)
    assert json.loads((archive / "in" / name).read_text()) == perf_doc(latency=6.0)  # not overwritten


def test_auto_store_numbers_a_long_name_that_processed_already_holds(tmp_path):
    auto, db = tmp_path / "auto", str(tmp_path / "u.duckdb")
    name = "y" * 250 + ".json"
    write(auto / name, perf_doc(latency=5.0))
    write(auto / "processed" / name, perf_doc(latency=6.0))
    write(auto / "fine.json", perf_doc(latency=7.0))
    assert benchmark_db_updater.main(["--auto-store", "--auto-store-dir", str(auto), "--db", db, "--quiet",
                                      "--output", db + ".out"]) == 0
    assert latencies(db) == [5.0, 7.0]
    assert len(list((auto / "processed").iterdir())) == 3 and not (auto / name).exists()


def test_an_archive_folder_reached_through_a_link_is_not_read_again(tmp_path):
    folder, db = tmp_path / "in", str(tmp_path / "m.duckdb")
    (folder / "arch").mkdir(parents=True)
    os.symlink(folder / "arch", tmp_path / "archlink")
    write(folder / "a.json", perf_doc(latency=10.0))
    for n in range(3):
        write(folder / f"new{n}.json", perf_doc(latency=20.0 + n))
        assert migrate(db, "--input-dirs", str(folder), "--action", "archive",
                       "--archive-dir", str(tmp_path / "archlink")) == 0
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.json"))
    assert files == ["arch/in/a.json", "arch/in/new0.json", "arch/in/new1.json", "arch/in/new2.json"]
    assert not any("arch/in/arch" in p for p in logged_paths(db))


def test_hidden_files_are_named_not_passed_over_in_silence(tmp_path, capsys):
    folder, db = tmp_path / "in", str(tmp_path / "m.duckdb")
    write(folder / ".hidden.json", perf_doc())
    write(folder / ".cache" / "r.json", perf_doc())
    write(folder / "ok.json", perf_doc())
    assert migrate(db, "--input-dirs", str(folder)) == 0
    said = capsys.readouterr().err
    assert "2 hidden file(s)" in said and str(folder / ".cache" / "r.json") in said
    assert logged_paths(db) == {str(folder / "ok.json")}


def killing_converter(data: bytes, path: str, sha256: str):
    """The default converter, except that converting boom.json kills its process (as the OOM killer would)."""
    if path.endswith("boom.json"):
        os.kill(os.getpid(), signal.SIGKILL)
    from benchmark_db.ingest import default_converter

    return default_converter()(data, path, sha256)


@pytest.mark.slow  # spawns two worker processes
@pytest.mark.timeout(120)
def test_a_worker_process_that_dies_stops_the_run_with_an_error_not_a_hang(tmp_path):
    from benchmark_db.errors import BenchmarkDBError
    from benchmark_db.ingest import Ingestor, discover_files
    from benchmark_db_models import BenchmarkDB

    folder = tmp_path / "in"
    for n in range(150):  # several chunks, so that the pool is used
        write(folder / f"r{n:03d}.json", perf_doc(latency=1.0 + n))
    write(folder / "r100boom.json", perf_doc(latency=999.0))
    with BenchmarkDB(str(tmp_path / "m.duckdb")) as db:
        with pytest.raises(BenchmarkDBError, match="worker process"):
            Ingestor(db, parallel=2, converter=killing_converter, quiet=True).ingest(discover_files([folder]))

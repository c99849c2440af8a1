"""QA of the migration pipeline and updater (session 15): symbolic links under --action archive, symbolic
links to folders inside an input folder, and the summary's count of the compression dictionary."""
from __future__ import annotations

import json
import os
from pathlib import Path

import duckdb
import pytest

import benchmark_db_migration
from tests.test_ingest import snapshot as table_snapshot
from tests.test_updater import write
from tests.test_updater_qa import perf_doc


def migrate(folder: Path, db: str, *extra: str) -> int:
    return benchmark_db_migration.main(["--input-dirs", str(folder), "--db", db, "--quiet", "--output",
                                        db + ".out", *extra])


def logged(db: str) -> dict[str, tuple]:
    conn = duckdb.connect(db, read_only=True)
    try:
        return {p: (status, archived_to) for p, status, archived_to in
                conn.execute("SELECT path, status, archived_to FROM ingested_files").fetchall()}
    finally:
        conn.close()


def test_an_archived_symlink_leaves_a_readable_copy_not_a_dangling_link(tmp_path):
    """A link in the input folder to a result file that is archived in the same run: the link's archived copy
    must hold the content, not point at the place its target was moved away from."""
    folder, db, archive = tmp_path / "in", str(tmp_path / "m.duckdb"), tmp_path / "arch"
    target = write(folder / "sub" / "real.json", perf_doc())
    os.symlink(target, folder / "alias.json")  # sorts first: the link owns the content, the file is its copy
    assert migrate(folder, db, "--action", "archive", "--archive-dir", str(archive)) == 0
    archived = {Path(p).name: Path(a) for p, (_, a) in logged(db).items()}
    assert set(archived) == {"alias.json", "real.json"}
    for copy in archived.values():
        assert not copy.is_symlink() and json.loads(copy.read_text()) == perf_doc()
    assert not (folder / "alias.json").is_symlink() and not target.exists()


def test_a_linked_folder_inside_an_input_folder_is_not_passed_over_silently(tmp_path, capsys):
    folder, db = tmp_path / "in", str(tmp_path / "m.duckdb")
    write(tmp_path / "elsewhere" / "b.json", perf_doc(model="bert-base-uncased"))
    write(folder / "a.json", perf_doc())
    os.symlink(tmp_path / "elsewhere", folder / "linked")
    assert benchmark_db_migration.main(["--input-dirs", str(folder), "--db", db, "--output", db + ".out"]) == 0
    said = capsys.readouterr().err
    assert f"{folder / 'linked'} is a symbolic link to a folder" in said and str(tmp_path / "elsewhere") in said


@pytest.mark.slow  # over 0.35 s here: outside make test-fast
def test_summary_counts_the_compression_dictionary_a_first_run_adds(tmp_path, capsys):
    folder, db = tmp_path / "in", str(tmp_path / "m.duckdb")
    for n in range(40):  # enough documents for a dictionary (source_store.MIN_DICTIONARY_DOCUMENTS)
        write(folder / f"r{n}.json", perf_doc(latency=10.0 + n))
    assert benchmark_db_migration.main(["--input-dirs", str(folder), "--db", db, "--quiet", "--format",
                                        "json"]) == 0
    summary = json.loads(capsys.readouterr().out)["summary"]
    assert summary["table_rows"]["compression_dictionaries"] == 1
    assert summary["rows_added"]["compression_dictionaries"] == 1


def results(db: str) -> set[str]:
    conn = duckdb.connect(db, read_only=True)
    try:
        return {r[0] for r in conn.execute("SELECT DISTINCT model_name FROM performance_results").fetchall()}
    finally:
        conn.close()


@pytest.mark.slow  # over 0.35 s here: outside make test-fast
def test_a_new_file_under_the_name_of_an_archived_one_does_not_replace_its_rows(tmp_path):
    """Scripts write each result under one name (`latest.json`); once --action archive moved the earlier file
    away, a file at that path again is a new result: replacing the earlier rows dropped them and their
    original from the database (as the updater's --auto-store already knew)."""
    folder, db = tmp_path / "in", str(tmp_path / "m.duckdb")
    extra = ["--action", "archive", "--archive-dir", str(tmp_path / "arch")]
    write(folder / "latest.json", perf_doc(model="prajjwal1/bert-tiny"))
    assert migrate(folder, db, *extra) == 0
    write(folder / "latest.json", perf_doc(model="bert-base-uncased"))
    assert migrate(folder, db, *extra) == 0
    assert results(db) == {"prajjwal1/bert-tiny", "bert-base-uncased"}
    conn = duckdb.connect(db, read_only=True)
    try:  # both originals kept, each with its log row (the earlier one under its archived path)
        assert conn.execute("SELECT count(*) FROM source_documents").fetchone()[0] == 2
        assert conn.execute("SELECT count(*) FROM ingested_files WHERE status = 'ingested'").fetchone()[0] == 2
        assert conn.execute("SELECT path FROM ingested_files WHERE archived_to = path").fetchall() == [
            (str(tmp_path / "arch" / "in" / "latest.json"),)]
    finally:
        conn.close()
    before = table_snapshot(db, ignore={"created_at", "ingested_at", "started_at", "reason"})
    assert migrate(folder, db, *extra) == 0  # nothing left to take: the database stays as it is
    assert table_snapshot(db, ignore={"created_at", "ingested_at", "started_at", "reason"}) == before


@pytest.mark.slow  # over 0.35 s here: outside make test-fast
def test_a_new_file_under_the_name_of_a_removed_one_does_not_replace_its_rows(tmp_path):
    """With --action remove the database holds the only copy of a removed result: a new `latest.json` replaced
    its rows and original, and the earlier result was gone from disk and database alike."""
    folder, db = tmp_path / "in", str(tmp_path / "m.duckdb")
    write(folder / "latest.json", perf_doc(model="prajjwal1/bert-tiny"))
    assert migrate(folder, db, "--action", "remove") == 0
    write(folder / "latest.json", perf_doc(model="bert-base-uncased"))
    assert migrate(folder, db, "--action", "remove") == 0
    assert results(db) == {"prajjwal1/bert-tiny", "bert-base-uncased"}
    assert not (folder / "latest.json").exists()
    log = logged(db)
    assert log[str(folder / "latest.json")] == ("ingested", "removed")
    earlier = [p for p in log if p != str(folder / "latest.json")]
    assert len(earlier) == 1 and earlier[0].startswith(f"{folder / 'latest.json'} (removed; sha256 ")
    assert log[earlier[0]] == ("ingested", "removed")
    conn = duckdb.connect(db, read_only=True)
    try:
        assert conn.execute("SELECT count(*) FROM source_documents").fetchone()[0] == 2
    finally:
        conn.close()
    write(folder / "latest.json", perf_doc(model="prajjwal1/bert-tiny"))  # the first content once more
    assert migrate(folder, db, "--action", "remove") == 0
    assert results(db) == {"prajjwal1/bert-tiny", "bert-base-uncased"} and len(logged(db)) == 3


def test_a_file_left_in_place_is_not_logged_as_archived(tmp_path):
    """A file rewritten between its read and the commit stays where it is (its new content is in no row): its
    log row and the summary must not name an archive copy that was never made."""
    from benchmark_db.convert import convert_document as real
    from benchmark_db.ingest import Ingestor, discover_files
    from benchmark_db_models import BenchmarkDB

    folder, db, archive = tmp_path / "in", str(tmp_path / "m.duckdb"), tmp_path / "arch"
    target = write(folder / "a.json", perf_doc(latency=20.0))

    def rewriting_converter(data, path, sha256):
        target.write_text(json.dumps(perf_doc(latency=40.0)))  # a runner rewrites it while it is ingested
        return real(data, path, sha256)

    with BenchmarkDB(db) as conn:
        summary = Ingestor(conn, action="archive", archive_dir=archive, converter=rewriting_converter).ingest(
            discover_files([folder]))
    assert target.exists() and not (archive / "in" / "a.json").exists()
    assert [o.archived_to for o in summary.outcomes] == [None]
    assert logged(db) == {str(target): ("ingested", None)}


def test_categories_with_an_action_leave_files_of_no_category_in_place(tmp_path):
    """`--categories hardware --action remove` removed the run configs and progress logs beside the results:
    files of no category, which the user had not asked for (their originals were kept, but not on disk)."""
    folder, db = tmp_path / "in", str(tmp_path / "m.duckdb")
    config = write(folder / "run_config.json", {"models": ["bert-base-uncased"], "batch_sizes": [1, 2],
                                                "output_dir": "benchmark_results"})
    result = write(folder / "r.json", perf_doc())
    assert migrate(folder, db, "--categories", "performance", "--action", "remove") == 0
    assert config.exists() and not result.exists()
    assert logged(db)[str(config)][1] is None
    assert migrate(folder, db, "--action", "remove") == 0  # without --categories it goes
    assert not config.exists()


def test_fix_inconsistencies_says_how_many_fixes_when_its_output_is_data(tmp_path, capsys):
    """Piped (CSV) or as JSON, the problems were listed but nothing said that none of them had been fixed."""
    folder, db = tmp_path / "in", str(tmp_path / "m.duckdb")
    write(folder / "a.json", perf_doc(latency=10.0, throughput=500.0))  # batch 1 at 10 ms is 100 items/s, not 500
    assert migrate(folder, db) == 0
    capsys.readouterr()
    code = benchmark_db_migration.main(["--db", db, "--fix-inconsistencies", "--format", "csv", "--quiet"])
    captured = capsys.readouterr()
    assert code == 1 and "0 fixes made: none of the problems listed can be fixed safely" in captured.err
    assert "fixes made" not in captured.out  # stdout stays CSV

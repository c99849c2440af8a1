"""QA of the converter, migration and updater against real-world mess (session 13). Each test failed before
its fix."""
from __future__ import annotations

import concurrent.futures
import datetime as dt
import json

import duckdb
import pytest

import benchmark_db_converter
import benchmark_db_migration
import benchmark_db_updater
from benchmark_db.convert import convert_document
from benchmark_db.ingest import Ingestor, discover_files
from benchmark_db.normalize import parse_timestamp
from benchmark_db.validation import find_problems, fix_problems
from benchmark_db_models import BenchmarkDB
from tests.test_updater import perf_doc, write


def one_error_line(err: str, code: str = "DB000") -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err
    assert lines and lines[-1].startswith(f"error {code}: "), err
    return lines[-1]


# ---------------------------------------------------------------------------------------------- timestamps
@pytest.mark.parametrize("value", [1704164645123456789, "1704164645123456789"])
def test_epoch_in_nanoseconds_is_read(value):
    """time.time_ns() stamps were None (read as microseconds: year 55,970, out of range)."""
    assert parse_timestamp(value) == dt.datetime(2024, 1, 2, 3, 4, 5, 123457)


def test_slashed_dates_are_read_only_when_day_and_month_cannot_be_swapped():
    """'01/02/2024 10:00:00' was silently read day first (1 February); a US tool means 2 January. Both readings
    are possible, so it is no time rather than an invented one; '02/13/2024' (month first) was None."""
    assert parse_timestamp("01/02/2024 10:00:00") is None
    assert parse_timestamp("13/02/2024 10:00:00") == dt.datetime(2024, 2, 13, 10, 0, 0)
    assert parse_timestamp("02/13/2024 10:00") == dt.datetime(2024, 2, 13, 10, 0, 0)
    assert parse_timestamp("05/05/2024 10:00:00") == dt.datetime(2024, 5, 5, 10, 0, 0)
    assert parse_timestamp("31/02/2024 10:00:00") is None


# ---------------------------------------------------------------------------------------------- encodings
@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"])
def test_utf16_and_utf32_without_a_byte_order_mark_are_read(encoding):
    """Files written as UTF-16 without a BOM failed with 'Expecting property name ...: line 1 column 2', which
    says nothing about the real cause."""
    doc = dict(perf_doc(model="café-bert"))
    data = json.dumps(doc, ensure_ascii=False).encode(encoding)
    conversion = convert_document(data, "/x/a.json", "0" * 64)
    assert conversion.status == "ingested", conversion.reason
    names = {getattr(r, "model_name", None) for r in conversion.records}
    assert "café-bert" in names


def test_an_overlong_model_name_gives_a_short_reason():
    """A 100,000-character model name was quoted whole in the skip reason (the ingest log's reason was
    100,081 characters) and called a 'placeholder'."""
    doc = {"model": "x" * 100_000, "hardware": "cpu", "batch_size": 1, "average_latency_ms": 5.0,
           "throughput_items_per_second": 200.0}
    conversion = convert_document(json.dumps(doc).encode(), "/x/a.json", "0" * 64)
    assert conversion.status == "skipped"
    assert len(conversion.reason) < 1000 and "100000 characters" in conversion.reason


# ---------------------------------------------------------------------------------------------- --parallel
@pytest.mark.slow
def test_parallel_starts_no_more_workers_than_there_are_chunks(tmp_path, monkeypatch):
    """`--parallel 60` on 150 files (4 chunks) spawned 60 interpreters, each importing the converter: 18 s
    instead of 2 s, and `--parallel 1000` would have started a thousand."""
    sizes = []

    class InlineExecutor:  # the pool's interface, run in this process
        def __init__(self, max_workers, mp_context=None, initializer=None, initargs=()):
            sizes.append(max_workers)
            initializer(*initargs)

        def submit(self, func, *args):
            func(*args)

        def map(self, func, items):
            return map(func, items)

        def shutdown(self, wait=True, cancel_futures=False):
            pass

    monkeypatch.setattr(concurrent.futures, "ProcessPoolExecutor", InlineExecutor)
    for i in range(50):
        write(tmp_path / "in" / f"f{i}.json", perf_doc(model=f"bert-{i}"))
    with BenchmarkDB(str(tmp_path / "db.duckdb")) as db:
        summary = Ingestor(db, parallel=1000).ingest(discover_files([tmp_path / "in"]))
    assert summary.count("ingested") == 50
    assert sizes == [2]  # 50 files are 2 chunks of 48


# ---------------------------------------------------------------------------------------------- usage errors
def test_archive_folder_that_is_or_holds_the_input_is_a_usage_error(tmp_path, capsys):
    """--archive-dir equal to the input folder (or an input file inside the archive folder) left out every
    file and exited 0 with 'files: 0', as if there were nothing new."""
    folder = tmp_path / "in"
    write(folder / "a.json", perf_doc())
    db = tmp_path / "db.duckdb"
    for argv in (["--input-dirs", str(folder), "--archive-dir", str(folder)],
                 ["--input-files", str(folder / "a.json"), "--archive-dir", str(folder)],
                 ["--input-dirs", str(folder / "."), "--archive-dir", str(tmp_path)]):
        code = benchmark_db_migration.main([*argv, "--action", "archive", "--db", str(db), "--quiet"])
        assert code == 2
        assert "inside the archive folder" in one_error_line(capsys.readouterr().err)
    assert not db.exists() and (folder / "a.json").exists()


def test_auto_store_dir_that_is_processed_or_a_file_is_a_usage_error(tmp_path, capsys):
    """--auto-store-dir pointing at processed/ moved the processed files to processed/processed/ (and one level
    deeper on each run, leaving stale archive paths in the log); a file there was 'does not exist'."""
    auto = tmp_path / "auto"
    write(auto / "processed" / "a.json", perf_doc())
    db = tmp_path / "db.duckdb"
    code = benchmark_db_updater.main(["--auto-store", "--auto-store-dir", str(auto / "processed"),
                                      "--db", str(db), "--quiet"])
    assert code == 2 and "processed/ folder" in one_error_line(capsys.readouterr().err)
    assert (auto / "processed" / "a.json").exists() and not (auto / "processed" / "processed").exists()
    code = benchmark_db_updater.main(["--auto-store", "--auto-store-dir", str(auto / "processed" / "a.json"),
                                      "--db", str(db), "--quiet"])
    assert code == 2 and "is a file, not a folder" in one_error_line(capsys.readouterr().err)
    assert not db.exists()


@pytest.mark.parametrize("main, flag", [(benchmark_db_migration.main, "--input-dirs"),
                                        (benchmark_db_updater.main, "--scan-dir"),
                                        (benchmark_db_converter.main, "--input-dir")])
def test_report_that_cannot_be_written_is_refused_before_any_work(tmp_path, capsys, main, flag):
    """`--report somefile.json/r.md` or `--report FOLDER` was found out only after the whole ingest."""
    write(tmp_path / "in" / "a.json", perf_doc())
    (tmp_path / "afile.json").write_text("{}")
    db = tmp_path / "db.duckdb"
    for report in (tmp_path / "afile.json" / "sub" / "r.md", tmp_path / "in"):
        code = main([flag, str(tmp_path / "in"), "--db", str(db), "--quiet", "--report", str(report)])
        assert code == 2
        one_error_line(capsys.readouterr().err)
    assert not db.exists()


# ---------------------------------------------------------------------------------------------- files that change
@pytest.mark.slow
def test_a_file_changed_after_it_was_read_is_neither_removed_nor_archived(tmp_path):
    """--action remove deleted a file that was rewritten between its read and the commit: its new content was
    in no row and on no disk. Now it stays, and the next run ingests the new content."""
    from benchmark_db.convert import convert_document as real

    folder, db_path = tmp_path / "in", str(tmp_path / "db.duckdb")
    target = write(folder / "a.json", perf_doc(latency=20.0, throughput=50.0))
    newer = json.dumps(perf_doc(latency=40.0, throughput=25.0))

    def rewriting_converter(data, path, sha256):
        target.write_text(newer)  # a runner rewrites the file while the ingest holds its old bytes
        return real(data, path, sha256)

    expected = []  # a new content under the name of a removed file is a new result: the earlier one stays
    for action, archive in (("remove", None), ("archive", tmp_path / "arch")):
        expected.append(json.loads(newer)["batch_results"]["1"]["avg_latency_ms"])
        write(target, perf_doc(latency=20.0 + (action == "archive"), throughput=50.0))
        with BenchmarkDB(db_path) as db:
            Ingestor(db, action=action, archive_dir=archive, converter=rewriting_converter).ingest(
                discover_files([folder]))
        assert target.read_text() == newer, action
        assert not (tmp_path / "arch").exists() or not list((tmp_path / "arch").rglob("*.json"))
        with BenchmarkDB(db_path) as db:
            Ingestor(db, action=action, archive_dir=archive).ingest(discover_files([folder]))
        conn = duckdb.connect(db_path, read_only=True)
        try:
            latencies = [r[0] for r in conn.execute("SELECT average_latency_ms FROM performance_results").fetchall()]
        finally:
            conn.close()
        assert sorted(latencies) == expected, action
        assert not target.exists()
        newer = json.dumps(perf_doc(latency=41.0, throughput=24.4))


# ---------------------------------------------------------------------------------------------- --validate / --fix
def _one_row_db(tmp_path) -> str:
    db_path = str(tmp_path / "db.duckdb")
    write(tmp_path / "in" / "a.json", perf_doc(latency=4000.0, throughput=0.25))
    with BenchmarkDB(db_path) as db:
        Ingestor(db).ingest(discover_files([tmp_path / "in"]))
    return db_path


@pytest.mark.slow
def test_fix_does_not_rescale_a_latency_that_total_time_proves(tmp_path):
    """A throughput stored 1000 times too large made the row look like 'latency in microseconds' (fixable), and
    --fix-inconsistencies divided a correct latency by 1000, although total_time_seconds / iterations
    gave exactly that latency in ms. Now it is a throughput disagreement, listed and left alone."""
    db_path = _one_row_db(tmp_path)
    conn = duckdb.connect(db_path)
    try:
        conn.execute("UPDATE performance_results SET throughput_items_per_second = 250.0, "
                     "total_time_seconds = 80.0, iterations = 20")
        fixes = fix_problems(conn)
        assert not [f for f in fixes if f["fix"] == "unit"]
        assert conn.execute("SELECT average_latency_ms FROM performance_results").fetchone()[0] == 4000.0
        problems = find_problems(conn)
        assert [p["check"] for p in problems] == ["throughput"] and not problems[0]["fixable"]
    finally:
        conn.close()


@pytest.mark.slow
def test_negative_latency_percentiles_are_reported(tmp_path):
    """A negative p50/p90/p95/p99 (below p99, so the ordering check missed it) passed --validate."""
    db_path = _one_row_db(tmp_path)
    conn = duckdb.connect(db_path)
    try:
        conn.execute("UPDATE performance_results SET latency_p50_ms = -3, latency_p90_ms = -1, latency_p99_ms = 1, "
                     "warmup_iterations = -2")
        details = {p["detail"] for p in find_problems(conn) if p["check"] == "impossible"}
    finally:
        conn.close()
    assert {"latency_p50_ms = -3.0", "latency_p90_ms = -1.0", "warmup_iterations = -2"} <= details


# ---------------------------------------------------------------------------------------------- mutated corpus
def test_optimum_report_with_a_number_for_its_platform_or_memory_unit_is_ingested(shared_dir):
    """Found by mutating the foreign corpus: a numeric memory `unit` raised AttributeError (the whole report
    failed as 'converter error'), and a numeric `platform` went into the text column as a float."""
    doc = json.loads((shared_dir / "data" / "foreign" / "optimum_benchmark" / "benchmark.json").read_text())
    doc["config"]["environment"]["platform"] = 1e308
    for phase in ("load_model", "first_forward", "forward"):
        doc["report"][phase]["memory"]["unit"] = 5
    conversion = convert_document(json.dumps(doc).encode(), "/x/benchmark.json", "0" * 64)
    assert conversion.status == "ingested", conversion.reason
    platforms = [r.platform for r in conversion.records if r.TABLE == "hardware_platforms"]
    assert platforms and all(p is None or isinstance(p, str) for p in platforms)


def test_unit_of_samples_is_decided_without_a_math_error():
    """Samples without a unit are judged against the throughput with a log ratio: huge samples (the ratio
    underflows to 0) raised 'math domain error' and the whole file failed (found mutating the legacy corpus)."""
    doc = {"model": "bert-base-uncased", "hardware": "cpu", "batch_size": 1,
           "throughput_items_per_second": 100.0, "latencies": [1e308, 1e308]}
    conversion = convert_document(json.dumps(doc).encode(), "/x/a.json", "0" * 64)
    assert not (conversion.reason or "").startswith("converter error"), conversion.reason


@pytest.mark.slow
def test_a_file_whose_dimension_row_cannot_be_stored_fails_alone(tmp_path):
    """A reader that put a float into a text column of hardware_platforms (as the optimum reader did) failed
    the writer's insert of the whole batch: every run stopped with DB003 and no file of it was ever ingested.
    Now that file fails with the reason and the others go in."""
    from benchmark_db.convert import convert_document as real

    def converter(data, path, sha256):
        conversion = real(data, path, sha256)
        if path.endswith("bad.json"):
            for record in conversion.records:
                if record.TABLE == "hardware_platforms":
                    record.platform = 1e308
        return conversion

    folder, db_path = tmp_path / "in", str(tmp_path / "db.duckdb")
    write(folder / "bad.json", perf_doc(model="t5-small"))
    write(folder / "good.json", perf_doc())
    with BenchmarkDB(db_path) as db:
        summary = Ingestor(db, converter=converter).ingest(discover_files([folder]))
    by_name = {o.path.rsplit("/", 1)[-1]: o for o in summary.outcomes}
    assert by_name["good.json"].status == "ingested"
    assert by_name["bad.json"].status == "failed" and "platform is float" in by_name["bad.json"].reason
    with BenchmarkDB(db_path) as db:  # the fault fixed, the next run takes the file
        summary = Ingestor(db).ingest(discover_files([folder]))
    assert [o.status for o in summary.outcomes if o.path.endswith("bad.json")] == ["ingested"]


@pytest.mark.slow
def test_input_file_whose_name_holds_a_comma_is_taken_whole(tmp_path, capsys):
    """`--input-files 'run 3,4.json'` was split at the comma: 'input run 3 does not exist', and no spelling could
    pass such a file (the updater's --input-file took it)."""
    path = write(tmp_path / "run 3,4.json", perf_doc())
    db = tmp_path / "db.duckdb"
    assert benchmark_db_migration.main(["--input-files", str(path), "--db", str(db), "--quiet",
                                        "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["summary"]["totals"]["ingested"] == 1

"""The ingest engine: tracking, duplicates, changed files, atomic batches, originals kept, parallel workers."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pytest

from benchmark_db import source_store
from benchmark_db.ingest import Ingestor, discover_files, ingest_files, run_id_for_source
from benchmark_db.schema import TABLES
from benchmark_db_models import BenchmarkDB

# columns that hold the wall-clock time of the ingest itself (or "now" for a document that names no time);
# two ingests of the same files at different moments differ there and nowhere else
WALL_CLOCK = {"created_at", "ingested_at", "started_at"}


def perf_doc(model="prajjwal1/bert-tiny", hardware="cpu", latency=21.8, throughput=45.8, batch=1,
             stamp="2025-03-06T17:48:24"):
    """A document in the shape of the legacy `direct_benchmark_*.json` files."""
    return {"model": model, "hardware": hardware, "success": True, "timestamp": stamp,
            "batch_results": {str(batch): {"success": True, "batch_size": batch, "avg_latency_ms": latency,
                                           "throughput_items_per_second": throughput, "memory_mb": 507.1,
                                           "latencies_ms": [latency * 0.9, latency, latency * 1.1],
                                           "device": hardware, "timestamp": stamp}}}


def write_doc(path: Path, doc) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2))
    return path


def snapshot(db_path: str, ignore=WALL_CLOCK) -> dict[str, list[tuple]]:
    """Every table's rows, sorted, without the wall-clock columns (or the `ignore` ones)."""
    conn = duckdb.connect(db_path, read_only=True)
    try:
        out = {}
        for table in TABLES:
            columns = [r[0] for r in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = ? ORDER BY ordinal_position",
                [table]).fetchall() if r[0] not in ignore]
            out[table] = conn.execute(f"SELECT {', '.join(columns)} FROM {table} ORDER BY ALL").fetchall()
        return out
    finally:
        conn.close()


def ingest(db_path, inputs, **options):
    with BenchmarkDB(db_path) as db:
        return ingest_files(db, inputs, **options)


@pytest.mark.slow  # over 0.35 s here: outside make test-fast
def test_tracks_every_file_and_skips_unchanged_on_rerun(tmp_path, db_path):
    src = tmp_path / "results"
    write_doc(src / "a.json", perf_doc())
    write_doc(src / "b.json", perf_doc(model="google/t5-efficient-tiny", latency=10.0, throughput=100.0))
    (src / "broken.json").write_text('{"model": "x",\n  "latency": }\n')
    write_doc(src / "config.json", {"models": ["bert"], "batch_sizes": [1, 2], "output_dir": "x"})

    first = ingest(db_path, [src])
    status = {Path(o.path).name: o.status for o in first.outcomes}
    assert status == {"a.json": "ingested", "b.json": "ingested", "broken.json": "failed", "config.json": "skipped"}
    broken = next(o for o in first.outcomes if o.path.endswith("broken.json"))
    assert "line 2" in broken.reason and "column" in broken.reason

    before = snapshot(db_path)
    assert len(before["ingested_files"]) == 4
    assert len(before["performance_results"]) == 2
    second = ingest(db_path, [src])
    # unchanged files are skipped; a failed one is tried again, since the converter may have improved
    assert {Path(o.path).name: o.status for o in second.outcomes} == {
        "a.json": "unchanged", "b.json": "unchanged", "broken.json": "failed", "config.json": "unchanged"}
    assert second.rows_added() == {}
    assert snapshot(db_path) == before


def test_original_text_is_kept_and_decompresses_exactly(tmp_path, db_path):
    src = tmp_path / "results"
    paths = [write_doc(src / f"r{i:03d}.json", perf_doc(latency=10 + i, throughput=1000 / (10 + i)))
             for i in range(40)]
    ingest(db_path, [src])
    conn = duckdb.connect(db_path, read_only=True)
    try:
        codecs = {r[0] for r in conn.execute("SELECT codec FROM source_documents").fetchall()}
        assert codecs == {source_store.CODEC_DICT}  # 40 documents are enough to build the shared dictionary
        for path in paths:
            data = path.read_bytes()
            sha = __import__("hashlib").sha256(data).hexdigest()
            assert source_store.original_text(conn, sha) == data
    finally:
        conn.close()


def test_duplicate_content_is_skipped_and_named(tmp_path, db_path):
    src = tmp_path / "results"
    write_doc(src / "a" / "one.json", perf_doc())
    shutil.copy(src / "a" / "one.json", src / "b_copy.json")
    summary = ingest(db_path, [src])
    by_name = {Path(o.path).name: o for o in summary.outcomes}
    # files are taken in path order: a/one.json before b_copy.json
    assert by_name["one.json"].status == "ingested"
    assert by_name["b_copy.json"].status == "skipped"
    assert by_name["b_copy.json"].reason == f"duplicate of {by_name['one.json'].path}"
    assert snapshot(db_path)["performance_results"].__len__() == 1


def test_changed_file_replaces_its_earlier_rows(tmp_path, db_path):
    src = tmp_path / "results"
    path = write_doc(src / "a.json", perf_doc(latency=20.0, throughput=50.0))
    old_sha = __import__("hashlib").sha256(path.read_bytes()).hexdigest()
    ingest(db_path, [src])
    write_doc(path, perf_doc(latency=40.0, throughput=25.0))
    summary = ingest(db_path, [src])
    assert summary.outcomes[0].status == "ingested"
    assert "replaced" in summary.outcomes[0].reason
    conn = duckdb.connect(db_path, read_only=True)
    try:
        rows = conn.execute("SELECT run_id, average_latency_ms FROM performance_results").fetchall()
        assert [r[1] for r in rows] == [40.0]
        assert run_id_for_source(old_sha) not in {r[0] for r in rows}
        assert conn.execute("SELECT count(*) FROM test_runs").fetchone()[0] == 1
        assert conn.execute("SELECT count(*) FROM source_documents WHERE sha256 = ?", [old_sha]).fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM ingested_files").fetchone()[0] == 1
    finally:
        conn.close()


def test_dry_run_writes_nothing_and_says_what_would_be_stored(tmp_path, db_path):
    src = tmp_path / "results"
    write_doc(src / "a.json", perf_doc())
    before = snapshot(db_path)
    summary = ingest(db_path, [src], dry_run=True)
    assert summary.outcomes[0].status == "ingested"
    assert summary.outcomes[0].rows_by_table["performance_results"] == 1
    assert snapshot(db_path) == before


def test_categories_filter_leaves_other_files_for_a_later_run(tmp_path, db_path):
    src = tmp_path / "results"
    write_doc(src / "a.json", perf_doc())
    summary = ingest(db_path, [src], categories=["integration"])
    assert summary.outcomes[0].status == "filtered"
    assert snapshot(db_path)["ingested_files"] == []
    assert ingest(db_path, [src], categories=["performance"]).outcomes[0].status == "ingested"


@pytest.mark.slow
def test_batches_and_parallel_workers_give_the_same_database(tmp_path, corpus_dir):
    src = tmp_path / "results"
    shutil.copytree(corpus_dir / "performance_results", src / "performance_results")
    shutil.copytree(corpus_dir / "web_platform_results", src / "web_platform_results")
    files = discover_files([src])
    serial, parallel = str(tmp_path / "serial.duckdb"), str(tmp_path / "parallel.duckdb")
    with BenchmarkDB(serial) as db:
        Ingestor(db, batch_size=1000).ingest(files)
    with BenchmarkDB(parallel) as db:
        Ingestor(db, batch_size=7, parallel=2).ingest(files)
    assert snapshot(serial) == snapshot(parallel)


def test_archive_moves_files_with_their_relative_paths_after_commit(tmp_path, db_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_doc(tmp_path / "performance_results" / "sub" / "a.json", perf_doc())
    (tmp_path / "performance_results" / "bad.json").write_text("{")
    summary = ingest(db_path, ["performance_results"], action="archive", archive_dir="archived_json")
    moved = tmp_path / "archived_json" / "performance_results" / "sub" / "a.json"
    assert moved.exists() and not (tmp_path / "performance_results" / "sub" / "a.json").exists()
    assert (tmp_path / "performance_results" / "bad.json").exists()  # failed files stay for the user to fix
    conn = duckdb.connect(db_path, read_only=True)
    try:
        archived = dict(conn.execute("SELECT path, archived_to FROM ingested_files").fetchall())
    finally:
        conn.close()
    assert archived[str(tmp_path / "performance_results" / "sub" / "a.json")] == str(moved)
    assert archived[str(tmp_path / "performance_results" / "bad.json")] is None
    assert {o.status for o in summary.outcomes} == {"ingested", "failed"}


def test_remove_deletes_only_committed_files(tmp_path, db_path):
    src = tmp_path / "results"
    good = write_doc(src / "a.json", perf_doc())
    bad = src / "bad.json"
    bad.write_text("[1, 2")
    ingest(db_path, [src], action="remove")
    assert not good.exists() and bad.exists()
    with BenchmarkDB(db_path) as db:
        sha = db.conn.execute("SELECT sha256 FROM ingested_files WHERE path = ?", [str(good)]).fetchone()[0]
        assert json.loads(source_store.original_text(db.conn, sha))["model"] == "prajjwal1/bert-tiny"


@pytest.mark.slow  # over 0.35 s here: outside make test-fast
def test_foreign_tool_outputs_are_ingested_with_raw_samples(tmp_path, shared_dir):
    db_path = str(tmp_path / "f.duckdb")
    summary = ingest(db_path, [shared_dir / "data" / "foreign"])
    kinds = {o.kind for o in summary.outcomes if o.status == "ingested"}
    assert {"optimum_benchmark", "pytest_benchmark"} <= kinds
    conn = duckdb.connect(db_path, read_only=True)
    try:
        samples = conn.execute("SELECT count(*) FROM performance_results WHERE len(latency_samples_ms) > 0"
                               ).fetchone()[0]
        assert samples > 0
        # optimum-benchmark's benchmark.json and benchmark_report.json hold the same run: its results once
        assert conn.execute("SELECT test_case, count(*) FROM performance_results WHERE model_name = "
                            "'models/tiny_bert' GROUP BY ALL ORDER BY 1").fetchall() == [
            ("first_forward", 1), ("forward", 1), ("load_model", 1)]
    finally:
        conn.close()


@pytest.mark.slow
def test_any_bytes_end_ingested_skipped_or_failed_and_logged(tmp_path):
    """Property: whatever a file holds (random JSON values, mutated corpus text, bytes that are not text),
    the pipeline logs it as ingested, skipped or failed and never stops."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    json_values = st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
            st.sampled_from(["model", "hardware", "latency", "throughput", "batch_size", "results", "timestamp",
                             "benchmarks", "status", "x"]) | st.text(max_size=8), inner, max_size=5),
        max_leaves=20)
    contents = st.lists(json_values.map(lambda v: json.dumps(v).encode()) | st.binary(max_size=200),
                        min_size=1, max_size=6)
    db_path = str(tmp_path / "prop.duckdb")
    counter = iter(range(10**6))

    @settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(contents)
    def check(blobs):
        folder = tmp_path / f"case{next(counter)}"
        folder.mkdir()
        for i, blob in enumerate(blobs):
            (folder / f"f{i}.json").write_bytes(blob)
        summary = ingest(db_path, [folder])
        assert len(summary.outcomes) == len(blobs)
        assert {o.status for o in summary.outcomes} <= {"ingested", "skipped", "failed"}
        with duckdb.connect(db_path, read_only=True) as conn:
            logged = conn.execute("SELECT count(*) FROM ingested_files WHERE starts_with(path, ?)",
                                  [str(folder) + "/"]).fetchone()[0]
        assert logged == len(blobs)

    check()


@pytest.mark.slow  # over 0.35 s here: outside make test-fast
def test_force_rebuilds_rows_instead_of_merging_them(tmp_path, db_path):
    src = tmp_path / "results"
    path = write_doc(src / "a.json", perf_doc())
    ingest(db_path, [src])
    with BenchmarkDB(db_path) as db:  # a stale row of this file's run, e.g. from an older converter
        run_id = run_id_for_source(__import__("hashlib").sha256(path.read_bytes()).hexdigest())
        db.conn.execute("INSERT INTO performance_results (result_id, run_id, model_id, hardware_id) "
                        "VALUES (42, ?, 1, 1)", [run_id])
    summary = ingest(db_path, [src], force=True)
    assert summary.outcomes[0].status == "ingested"
    conn = duckdb.connect(db_path, read_only=True)
    try:
        assert conn.execute("SELECT count(*) FROM performance_results").fetchone()[0] == 1
        assert conn.execute("SELECT count(*) FROM performance_results WHERE result_id = 42").fetchone()[0] == 0
    finally:
        conn.close()


def test_dimension_rows_of_a_batch_fold_like_consecutive_inserts():
    from benchmark_db.ingest import _fold_dimensions
    from benchmark_db_models import Models

    first = Models(model_name="bert", model_family="bert", parameters_million=None, model_id=7)
    second = Models(model_name="bert", model_family=None, parameters_million=110.0, model_id=7)
    folded = _fold_dimensions([first, second])
    assert len(folded) == 1
    assert (folded[0].model_family, folded[0].parameters_million) == ("bert", 110.0)
    assert first.parameters_million is None  # the converter's objects are left as they were


def _converter_with_an_unstorable_row(data, path, sha256):
    from benchmark_db.convert import convert_document

    conversion = convert_document(data, path, sha256)
    if path.endswith("bad.json"):
        for record in conversion.records:
            if record.TABLE == "performance_results":
                record.batch_size = 2**40  # beyond the INTEGER column
    return conversion


def test_a_file_whose_rows_cannot_be_stored_fails_alone(tmp_path, db_path):
    src = tmp_path / "results"
    write_doc(src / "good.json", perf_doc(model="bert-base-uncased"))
    write_doc(src / "bad.json", perf_doc(model="t5-small"))
    with BenchmarkDB(db_path) as db:
        summary = Ingestor(db, converter=_converter_with_an_unstorable_row).ingest(discover_files([src]))
    outcomes = {Path(o.path).name: o for o in summary.outcomes}
    assert outcomes["good.json"].status == "ingested"
    assert outcomes["bad.json"].status == "failed"
    assert "performance_results cannot be stored" in outcomes["bad.json"].reason
    conn = duckdb.connect(db_path, read_only=True)
    try:
        assert conn.execute("SELECT model_name FROM performance_results").fetchall() == [("bert-base-uncased",)]
        assert conn.execute("SELECT count(*) FROM test_runs").fetchone()[0] == 1
        assert conn.execute("SELECT count(*) FROM models WHERE model_name = 't5-small'").fetchone()[0] == 0
        assert conn.execute("SELECT status, rows FROM ingested_files WHERE path LIKE '%bad.json'").fetchall() == [
            ("failed", 0)]
    finally:
        conn.close()


@pytest.mark.slow  # about 0.9 s: outside make test-fast
def test_an_error_in_the_writer_stops_the_run_and_a_rerun_completes_it(tmp_path, db_path):
    src = tmp_path / "results"
    for i in range(4):
        write_doc(src / f"r{i}.json", perf_doc(batch=i + 1))
    reference = str(tmp_path / "reference.duckdb")
    ingest(reference, [src])

    def stop_after_first_commit(batches: int) -> None:
        raise RuntimeError("stopped after the first commit")

    with BenchmarkDB(db_path) as db:
        with pytest.raises(RuntimeError, match="stopped after the first commit"):
            Ingestor(db, batch_size=1, on_batch_committed=stop_after_first_commit).ingest(discover_files([src]))
    conn = duckdb.connect(db_path, read_only=True)
    try:  # the first batch is committed whole; nothing of the later ones is
        assert conn.execute("SELECT count(*) FROM ingested_files").fetchone()[0] == 1
        assert conn.execute("SELECT count(*) FROM performance_results").fetchone()[0] == 1
    finally:
        conn.close()
    summary = ingest(db_path, [src])
    assert summary.totals()["unchanged"] == 1 and summary.totals()["ingested"] == 3
    assert snapshot(db_path) == snapshot(reference)

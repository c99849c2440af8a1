"""`performance_results.is_emulated` (schema version 5): set on every write path from the runner's flag in the
metrics, filled in for rows stored before, and derived for rows that come from older files (a CI artifact
merged, an archive Parquet file written before the column existed)."""
from __future__ import annotations

import duckdb
import pytest

from benchmark_db import merge, schema
from benchmark_db.connection import connect
from benchmark_db.maintenance import archive

EMULATED = '{"is_emulated": true, "adapter": "SwiftShader"}'
REAL = '{"is_emulated": false}'


def _version_4_file(path, rows) -> str:
    """A database as schema version 4 left it, holding `rows`: (result_id, hardware, throughput, metrics)."""
    conn = duckdb.connect(str(path))
    schema.migrate(conn, target=4)
    conn.execute("INSERT INTO models (model_id, model_name) VALUES (1, 'bert-base-uncased')")
    conn.execute("INSERT INTO hardware_platforms (hardware_id, hardware_type) VALUES (2, 'webgpu'), (3, 'cpu')")
    for result_id, hardware, throughput, metrics in rows:
        conn.execute("INSERT INTO performance_results (result_id, run_id, model_id, hardware_id, hardware_type, "
                     "batch_size, throughput_items_per_second, metrics, created_at) "
                     "VALUES (?, 7, 1, ?, ?, 1, ?, ?, TIMESTAMP '2026-01-01')",
                     [result_id, 2 if hardware == "webgpu" else 3, hardware, throughput, metrics])
    conn.close()
    return str(path)


ROWS = [(10, "webgpu", 20.0, EMULATED), (11, "webgpu", 1000.0, REAL), (12, "cpu", 100.0, None)]


def test_upgrade_fills_the_column_from_the_metrics_and_the_views_show_it(tmp_path):
    path = _version_4_file(tmp_path / "v4.duckdb", ROWS)
    with connect(path) as conn:  # a writer brings it to version 5 (and on)
        assert schema.current_version(conn) == schema.SCHEMA_VERSION >= 5
        assert conn.execute("SELECT result_id, is_emulated FROM performance_results ORDER BY 1").fetchall() == [
            (10, True), (11, False), (12, False)]
        assert conn.execute("SELECT result_id, is_emulated FROM benchmark_performance ORDER BY 1").fetchall() == [
            (10, True), (11, False), (12, False)]
        # the latest emulated result and the latest real one of the same configuration are both kept
        assert conn.execute("SELECT count(*) FROM latest_performance_metrics WHERE hardware = 'webgpu'"
                            ).fetchone()[0] == 2
        # the cross-platform comparison is of real devices: before, webgpu read (20 + 1000) / 2 = 510
        assert conn.execute("SELECT webgpu_throughput, cpu_throughput FROM cross_platform_performance"
                            ).fetchall() == [(1000.0, 100.0)]


@pytest.mark.slow  # over 0.35 s here: outside make test-fast
def test_every_write_path_sets_it_from_the_metrics(tmp_path):
    from benchmark_db_api import BenchmarkDBAPI
    from benchmark_db_models import BenchmarkDB, PerformanceResults, RecordColumns

    path = str(tmp_path / "new.duckdb")
    with BenchmarkDB(path) as db:
        model, hardware = db.get_or_add_model("bert-base-uncased"), db.get_or_add_hardware("webgpu")
        db.insert_many([PerformanceResults(model_id=model, hardware_id=hardware, run_id=1, batch_size=b,
                                           metrics={"is_emulated": b == 1}) for b in (1, 2)])
        db.insert_many([RecordColumns(PerformanceResults, {
            "model_id": [model] * 3, "hardware_id": [hardware] * 3, "run_id": [2] * 3, "batch_size": [1, 2, 3],
            "metrics": [{"is_emulated": True}, None, {"other": 1}]})])
        assert db.conn.execute("SELECT run_id, batch_size, is_emulated FROM performance_results ORDER BY 1, 2"
                               ).fetchall() == [(1, 1, True), (1, 2, False), (2, 1, True), (2, 2, False),
                                                (2, 3, False)]
    api = BenchmarkDBAPI(db_path=str(tmp_path / "api.duckdb"))
    api.store_performance_result(model_name="bert-base-uncased", hardware_type="webgpu", throughput=20.0,
                                 metrics={"is_emulated": True})
    api.store_performance_result(model_name="bert-base-uncased", hardware_type="webgpu", batch_size=2,
                                 throughput=1000.0)
    frame = api.get_performance_metrics(model_name="bert-base-uncased")
    assert sorted(zip(frame["throughput"], frame["is_emulated"])) == [(20.0, True), (1000.0, False)]


def test_a_version_4_artifact_merges_with_the_flag_derived(tmp_path):
    source = _version_4_file(tmp_path / "artifact.duckdb", ROWS)
    with connect(str(tmp_path / "target.duckdb")) as conn:
        assert merge.merge_database(conn, source)["performance_results"] == 3
        assert conn.execute("SELECT result_id, is_emulated FROM performance_results ORDER BY 1").fetchall() == [
            (10, True), (11, False), (12, False)]


def test_an_archive_file_written_before_the_column_reads_with_the_flag_derived(tmp_path):
    path = _version_4_file(tmp_path / "v4.duckdb", ROWS)
    parquet = tmp_path / "old_archive.parquet"
    with duckdb.connect(path) as old:  # an archive file as version 4 wrote it: no is_emulated column
        old.execute(f"COPY (SELECT * FROM performance_results) TO '{parquet}' (FORMAT parquet)")
        old.execute("DELETE FROM performance_results")
    with connect(path) as conn:
        union = archive._union_sql(conn, "performance_results", [str(parquet)])
        rows = conn.execute(f"SELECT result_id, is_emulated FROM ({union}) ORDER BY 1").fetchall()
    assert rows == [(10, True), (11, False), (12, False)]


def test_the_version_5_views_differ_from_those_they_replace():
    """The views of version 5 are edits of version 3's text: an edit that no longer matches would silently
    leave a view as it was."""
    replaced = [schema._V3_VIEWS[i] for i in (0, 1, 4)]
    assert all("is_emulated" in new and "is_emulated" not in old for new, old in zip(schema._V5_VIEWS, replaced))

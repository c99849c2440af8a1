"""Merging an artifact whose rows are stored with other values (QA round 19).

A `.duckdb` or `.parquet` artifact holding rows with the ids of stored rows but other values merged as
`ingested, 0 rows`: the stored row wins (ids come from natural keys, merging stays idempotent), but nothing
said so. Each test failed before the fix (merge returned a plain dict and logged nothing).
"""
from __future__ import annotations

import logging
import shutil

import duckdb
import pytest

from benchmark_db.connection import connect
from benchmark_db.merge import merge_database, merge_parquet

ROWS = [(11, 10.0, 100.0, None), (12, 20.0, 50.0, 4), (13, 30.0, None, 8), (14, 40.0, 25.0, None)]


def stored_db(path: str) -> None:
    conn = connect(path)
    try:
        conn.execute("INSERT INTO models (model_id, model_name) VALUES (2, 'bert'), (5, 'gpt2')")
        conn.execute("INSERT INTO test_runs (run_id, test_name) VALUES (1, 'qa19')")
        conn.executemany("INSERT INTO performance_results (result_id, run_id, model_id, hardware_id, "
                         "average_latency_ms, throughput_items_per_second, batch_size) VALUES (?, 1, 2, 3, ?, ?, ?)",
                         ROWS)
    finally:
        conn.close()


def artifact(db_path: str, tmp_path, *statements: str) -> str:
    """A copy of the database at `db_path`, changed by `statements`."""
    path = tmp_path / "art" / "job.duckdb"
    path.parent.mkdir(exist_ok=True)
    shutil.copyfile(db_path, path)
    conn = duckdb.connect(str(path))
    try:
        for statement in statements:
            conn.execute(statement)
    finally:
        conn.close()
    return str(path)


def latencies(db_path: str) -> list:
    conn = duckdb.connect(db_path, read_only=True)
    try:
        return conn.execute("SELECT result_id, average_latency_ms, throughput_items_per_second, batch_size "
                            "FROM performance_results ORDER BY result_id").fetchall()
    finally:
        conn.close()


@pytest.mark.slow  # about 0.5 s: two merges
def test_rows_stored_with_other_values_are_counted_named_and_kept(db_path, tmp_path, caplog):
    stored_db(db_path)
    source = artifact(db_path, tmp_path,
                      "UPDATE performance_results SET average_latency_ms = average_latency_ms * 2 "
                      "WHERE result_id IN (12, 14)",
                      # NULL-safe: a value where the stored row has none, and none where it has one
                      "UPDATE performance_results SET throughput_items_per_second = 1 WHERE result_id = 13",
                      "UPDATE performance_results SET batch_size = NULL WHERE result_id = 12")
    conn = connect(db_path)
    try:
        with caplog.at_level(logging.WARNING, logger="benchmark_db.merge"):
            result = merge_database(conn, source)
            again = merge_database(conn, source)
    finally:
        conn.close()
    assert result["performance_results"] == 0 and sum(result.values()) == 0  # the stored rows win
    assert result.differing["performance_results"] == (3, [12, 13, 14])
    assert result.differing["models"] == (0, []) and result.differing["test_runs"] == (0, [])
    assert result.differing_text() == "performance_results=3"
    assert again == result and again.differing == result.differing  # idempotent, and said again
    assert latencies(db_path) == [(i, *rest) for i, *rest in ROWS]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings[0] == ("job.duckdb: 3 row(s) of performance_results are stored with other values; the stored "
                           "values were kept (ids 12, 13, 14)")


def test_an_identical_artifact_differs_in_nothing_and_warns_nothing(db_path, tmp_path, caplog):
    stored_db(db_path)
    source = artifact(db_path, tmp_path, "UPDATE models SET created_at = created_at + INTERVAL 1 HOUR")
    conn = connect(db_path)
    try:
        with caplog.at_level(logging.WARNING, logger="benchmark_db.merge"):
            result = merge_database(conn, source)
    finally:
        conn.close()
    assert result.differing_text() == "" and not any(n for n, _ in result.differing.values())
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.slow  # about 0.35 s
def test_a_dimension_row_differs_only_where_both_sides_hold_a_value(db_path, tmp_path):
    stored_db(db_path)
    conn = connect(db_path)
    conn.execute("UPDATE models SET model_family = 'bert' WHERE model_id = 2")
    conn.close()
    source = artifact(db_path, tmp_path, "UPDATE models SET model_family = 'encoder' WHERE model_id = 2",
                      "UPDATE models SET model_family = 'gpt' WHERE model_id = 5")  # a gap it fills
    conn = connect(db_path)
    try:
        result = merge_database(conn, source)
        families = conn.execute("SELECT model_id, model_family FROM models ORDER BY model_id").fetchall()
    finally:
        conn.close()
    assert result.differing["models"] == (1, [2])
    assert families == [(2, "bert"), (5, "gpt")]


def test_a_parquet_artifact_with_other_values_is_counted(db_path, tmp_path, caplog):
    stored_db(db_path)
    parquet = tmp_path / "performance_results.parquet"
    conn = connect(db_path)
    try:
        conn.execute(f"COPY (SELECT * REPLACE (CASE WHEN result_id = 11 THEN 99.0 ELSE average_latency_ms END "
                     f"AS average_latency_ms) FROM performance_results) TO '{parquet}' (FORMAT parquet)")
        with caplog.at_level(logging.WARNING, logger="benchmark_db.merge"):
            result = merge_parquet(conn, parquet)
    finally:
        conn.close()
    assert result == {"performance_results": 0} and result.differing == {"performance_results": (1, [11])}
    assert "performance_results.parquet: 1 row(s) of performance_results" in caplog.text


@pytest.mark.slow  # about 1.5 s: two CLI merges
def test_the_migration_and_the_ci_integrator_say_what_they_kept(db_path, tmp_path, capsys):
    import json

    import benchmark_db_migration
    from scripts import ci_benchmark_integrator

    stored_db(db_path)
    artifact(db_path, tmp_path, "UPDATE performance_results SET average_latency_ms = 99 WHERE result_id = 12")
    said = "stored values kept for rows the artifact holds otherwise: performance_results=1"
    assert benchmark_db_migration.main(["--migrate-ci", "--artifacts-dir", str(tmp_path / "art"), "--db", db_path,
                                        "--quiet", "--format", "json"]) == 0
    [merged] = json.loads(capsys.readouterr().out)["artifacts"]
    assert merged["reason"] == said
    conn = duckdb.connect(db_path, read_only=True)
    try:
        assert conn.execute("SELECT reason FROM ingested_files WHERE kind = 'database_artifact'").fetchall() == [
            (said,)]
    finally:
        conn.close()
    other = str(tmp_path / "other.duckdb")
    stored_db(other)
    assert ci_benchmark_integrator.main(["--artifacts-dir", str(tmp_path / "art"), "--db", other, "--quiet",
                                         "--format", "json"]) == 0
    assert said in capsys.readouterr().out

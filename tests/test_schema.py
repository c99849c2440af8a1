"""Schema: every documented table, column and view; migrations; sample data."""
from __future__ import annotations

import duckdb
import pytest

from benchmark_db import schema
from benchmark_db.connection import connect
from benchmark_db.errors import SchemaError

# Columns the guide and DESIGN §3 name, table by table.
DOCUMENTED_COLUMNS = {
    "hardware_platforms": ["hardware_id", "hardware_type", "device_name", "platform", "memory_gb",
                           "driver_version", "compute_units"],
    "models": ["model_id", "model_name", "model_family", "modality", "parameters_million", "source"],
    "test_runs": ["run_id", "test_name", "test_type", "started_at", "completed_at", "execution_time_seconds",
                  "success", "git_commit", "git_branch", "command_line", "environment", "metadata"],
    "performance_results": ["result_id", "run_id", "model_id", "hardware_id", "test_case", "batch_size",
                            "sequence_length", "precision", "total_time_seconds", "average_latency_ms",
                            "latency_p50_ms", "latency_p90_ms", "latency_p95_ms", "latency_p99_ms",
                            "latency_stddev_ms", "throughput_items_per_second", "memory_peak_mb", "iterations",
                            "warmup_iterations", "latency_samples_ms", "is_simulated", "metrics", "created_at",
                            "model_name", "hardware_type"],
    "hardware_compatibility": ["compatibility_id", "run_id", "model_id", "hardware_id", "is_compatible",
                               "detection_success", "initialization_success", "error_message", "error_type"],
    "integration_test_results": ["test_result_id", "run_id", "test_module", "test_class", "test_name", "status",
                                 "hardware_id", "model_id", "error_message"],
    "web_platform_results": ["browser", "adapter", "load_time_ms", "inference_time_ms", "is_emulated"],
    "schema_migrations": ["version", "name", "applied_at"],
    "ingested_files": ["path", "sha256", "size_bytes", "kind", "status", "reason", "rows", "ingested_at",
                       "archived_to"],
    "benchmark_performance": ["model", "model_family", "hardware", "device", "batch_size", "sequence_length",
                              "precision", "throughput", "latency_ms", "memory_mb", "is_simulated", "created_at",
                              "git_commit"],
}


def columns_of(conn, name):
    return {r[0] for r in conn.execute(f"DESCRIBE {name}").fetchall()}


def test_every_documented_table_column_and_view_exists(db_path):
    conn = connect(db_path, read_only=True)
    for table, columns in DOCUMENTED_COLUMNS.items():
        missing = set(columns) - columns_of(conn, table)
        assert not missing, f"{table} lacks {missing}"
    for view in schema.VIEWS:
        conn.execute(f"SELECT * FROM {view} LIMIT 1").fetchall()
    assert schema.current_version(conn) == schema.SCHEMA_VERSION


def test_guide_queries_run(sample_db_path):
    conn = connect(sample_db_path, read_only=True)
    rows = conn.execute("SELECT model, hardware, AVG(throughput) FROM benchmark_performance "
                        "GROUP BY model, hardware").fetchall()
    assert len(rows) >= 20
    rows = conn.execute("SELECT model_name, hardware_type, AVG(throughput_items_per_second) "
                        "FROM performance_results GROUP BY model_name, hardware_type").fetchall()
    assert all(r[0] and r[1] for r in rows)


def test_older_database_is_migrated_forward_keeping_its_rows(tmp_path):
    path = str(tmp_path / "old.duckdb")
    old = duckdb.connect(path)
    schema.migrate(old, target=1)  # a database written by the first release
    old.execute("INSERT INTO models (model_id, model_name) VALUES (1, 'bert-base-uncased')")
    old.execute("INSERT INTO performance_results (result_id, model_id, hardware_id, throughput_items_per_second)"
                " VALUES (10, 1, 2, 99.5)")
    assert schema.current_version(old) == 1
    old.close()

    conn = connect(path)  # a writer brings it forward
    assert schema.current_version(conn) == schema.SCHEMA_VERSION
    versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY 1").fetchall()]
    assert versions == list(range(1, schema.SCHEMA_VERSION + 1))
    assert conn.execute("SELECT model, throughput FROM benchmark_performance").fetchall() == [
        ("bert-base-uncased", 99.5)]
    assert "source_path" in columns_of(conn, "test_runs")
    # version 4 dropped the primary keys of the big tables (their ART indexes were half the file)
    keyed = {r[0] for r in conn.execute("SELECT table_name FROM duckdb_constraints() "
                                        "WHERE constraint_type = 'PRIMARY KEY'").fetchall()}
    assert not keyed & set(schema.UNKEYED_TABLES) and {"models", "hardware_platforms"} <= keyed


def test_reader_of_older_database_sees_current_views(tmp_path):
    path = str(tmp_path / "old.duckdb")
    old = duckdb.connect(path)
    schema.migrate(old, target=2)
    old.close()
    conn = connect(path, read_only=True)
    conn.execute("SELECT * FROM cross_platform_performance").fetchall()


def test_newer_database_is_refused_with_db002(tmp_path):
    path = str(tmp_path / "future.duckdb")
    connect(path).close()
    raw = duckdb.connect(path)
    raw.execute("INSERT INTO schema_migrations (version, name) VALUES (99, 'from the future')")
    raw.close()
    with pytest.raises(SchemaError) as err:
        connect(path)
    assert "DB002" in str(err.value) and "99" in str(err.value)


def test_failed_migration_rolls_back_and_keeps_version(tmp_path, monkeypatch):
    path = str(tmp_path / "x.duckdb")
    conn = duckdb.connect(path)
    schema.migrate(conn, target=1)
    broken = schema.Migration(2, "broken", ("CREATE TABLE half_done (a INTEGER)", "THIS IS NOT SQL"))
    monkeypatch.setattr(schema, "MIGRATIONS", (schema.MIGRATIONS[0], broken))
    with pytest.raises(SchemaError):
        schema.migrate(conn, target=2)
    assert schema.current_version(conn) == 1
    assert not conn.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'half_done'"
                            ).fetchone()[0]


@pytest.mark.slow  # about 0.8 s: outside make test-fast
def test_sample_data_twice_adds_nothing(tmp_path):
    from scripts.create_benchmark_schema import create_database

    path = str(tmp_path / "s.duckdb")
    first = create_database(path, sample_data=True)
    second = create_database(path, sample_data=True)
    assert first == second
    counts = {r["table"]: r["rows"] for r in first}
    assert counts["performance_results"] > 300
    conn = connect(path, read_only=True)
    families = conn.execute("SELECT count(DISTINCT model_family) FROM models").fetchone()[0]
    hardware = conn.execute("SELECT count(DISTINCT hardware_type) FROM hardware_platforms").fetchone()[0]
    batches = sorted(r[0] for r in conn.execute("SELECT DISTINCT batch_size FROM performance_results").fetchall())
    simulated = conn.execute("SELECT count(*) FROM performance_results WHERE is_simulated").fetchone()[0]
    with_samples = conn.execute("SELECT count(*) FROM performance_results WHERE len(latency_samples_ms) > 0"
                                ).fetchone()[0]
    assert families >= 4 and hardware >= 4 and batches == [1, 2, 4, 8, 16, 32]
    assert simulated == 1 and with_samples > 300
    assert counts["hardware_compatibility"] >= 2 and counts["integration_test_results"] >= 2


@pytest.mark.slow  # about 1.0 s: outside make test-fast
def test_create_schema_force_starts_over(tmp_path):
    from scripts.create_benchmark_schema import create_database

    path = str(tmp_path / "f.duckdb")
    create_database(path, sample_data=True)
    counts = {r["table"]: r["rows"] for r in create_database(path, force=True)}
    assert counts["performance_results"] == 0


def _string_codecs(conn, table: str, column: str) -> set[str]:
    return {r[0] for r in conn.execute(
        f"SELECT compression FROM pragma_storage_info('{table}') WHERE column_name = ? "
        "AND segment_type <> 'VALIDITY' AND compression <> 'Constant'", [column]).fetchall()}


def test_bookkeeping_text_is_stored_with_zstd_in_new_files(tmp_path):
    """Paths and run metadata repeat across rows; zstd stores them in a third of DuckDB's default."""
    conn = connect(str(tmp_path / "new.duckdb"))
    conn.execute("INSERT INTO ingested_files (path, status, rows_by_table) SELECT 'results/cpu/run_' || i || "
                 "'.json', 'ingested', '{\"performance_results\": ' || i % 5 || '}' FROM range(20000) t(i)")
    conn.execute("INSERT INTO test_runs (run_id, test_name, source_path, metadata) SELECT i, 'bench', "
                 "'results/cpu/run_' || i || '.json', '{\"runner\": \"legacy\", \"n\": ' || i % 7 || '}' "
                 "FROM range(20000) t(i)")
    conn.execute("CHECKPOINT")
    for table, column in (("ingested_files", "path"), ("ingested_files", "rows_by_table"), ("test_runs", "source_path"),
                          ("test_runs", "metadata")):
        assert _string_codecs(conn, table, column) == {"ZSTD"}, (table, column)
    assert "ZSTD" not in _string_codecs(conn, "test_runs", "test_name")  # everything else keeps the default


def test_old_format_file_gets_no_zstd_clause(tmp_path):
    """A file in storage v1.0.0 has no zstd for strings: asked for it, DuckDB would store them uncompressed."""
    path = str(tmp_path / "plain.duckdb")
    duckdb.connect(path).close()  # made by plain DuckDB: the old default format
    conn = connect(path)
    conn.execute("INSERT INTO ingested_files (path, status) SELECT 'results/run_' || i || '.json', 'ingested' "
                 "FROM range(20000) t(i)")
    conn.execute("CHECKPOINT")
    assert _string_codecs(conn, "ingested_files", "path") - {"Uncompressed"}

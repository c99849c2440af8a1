"""The integrity check: every problem found, one entry each, as data.

Tables have primary keys but no foreign keys (see `benchmark_db.schema`), so this is where broken references
are found. Checks: orphaned fact rows (a model, hardware platform or run they name does not exist), dangling
provenance (an ingested file or run whose original document is not stored), duplicates by natural key and
rows sharing one id,
impossible values (negative times, NaN, percentiles out of order, runs ending before they start), views that
no longer compile (a view over archived Parquet whose files were moved), missing schema views, and archive
files that are missing or no longer hold what was archived (sha256; a backup refuses them too). A clean
database gives an empty list; `--check-integrity` exits 1 when it is not empty.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

from benchmark_db import schema
from benchmark_db.validation import NOT_AN_ARTIFACT

# (table, its id column, referencing column, referenced table, referenced column)
REFERENCES = (
    ("performance_results", "result_id", "model_id", "models", "model_id"),
    ("performance_results", "result_id", "hardware_id", "hardware_platforms", "hardware_id"),
    ("performance_results", "result_id", "run_id", "test_runs", "run_id"),
    ("hardware_compatibility", "compatibility_id", "model_id", "models", "model_id"),
    ("hardware_compatibility", "compatibility_id", "hardware_id", "hardware_platforms", "hardware_id"),
    ("hardware_compatibility", "compatibility_id", "run_id", "test_runs", "run_id"),
    ("integration_test_results", "test_result_id", "model_id", "models", "model_id"),
    ("integration_test_results", "test_result_id", "hardware_id", "hardware_platforms", "hardware_id"),
    ("integration_test_results", "test_result_id", "run_id", "test_runs", "run_id"),
    ("web_platform_results", "result_id", "model_id", "models", "model_id"),
    ("web_platform_results", "result_id", "hardware_id", "hardware_platforms", "hardware_id"),
    ("web_platform_results", "result_id", "run_id", "test_runs", "run_id"),
    ("source_documents", "sha256", "dictionary_id", "compression_dictionaries", "dictionary_id"),
)

# provenance: (table, id column, column, condition on the row, referenced table, referenced column)
PROVENANCE = (
    ("ingested_files", "path", "sha256", f"status = 'ingested' AND {NOT_AN_ARTIFACT}",
     "source_documents", "sha256"),
    ("test_runs", "run_id", "source_sha256", "TRUE", "source_documents", "sha256"),
)

# Duplicates by natural key. Dimensions: their id is the hash of exactly this key, so two ids for one key
# mean two writers disagreed on identity. Runs: one run per source document, so two runs from the same
# document mean it was ingested twice. Performance results: the key plus the measured values (two
# measurements of one configuration may legitimately be kept apart, the same measurement twice may not). One
# row stored twice under its own id is the ID_COLUMNS check's, not this one's ("under several ids").
# Compatibility and integration rows are not checked this way: a legacy document lists several entries
# with the same key (ids keep them apart by their place in the document), and keeping them all is lossless.
NATURAL_KEYS = {
    "models": ("model_id", ["model_name"], "TRUE"),
    "hardware_platforms": ("hardware_id", ["hardware_type", "COALESCE(device_name, '')"], "TRUE"),
    "test_runs": ("run_id", ["source_sha256"], "source_sha256 IS NOT NULL"),
    "performance_results": ("result_id", ["run_id", "model_id", "hardware_id", "test_case", "batch_size",
                                          "sequence_length", "precision", "average_latency_ms",
                                          "throughput_items_per_second", "memory_peak_mb"], "TRUE"),
}

# Rows sharing one id: the result tables lost their primary keys in schema v4, so nothing stops a row stored
# twice under its id (an `INSERT ... SELECT` run again, a merge repeated by hand); the natural-key check above
# leaves compatibility and integration rows out, and two copies of one row are one measurement counted twice.
ID_COLUMNS = {
    "models": "model_id",
    "hardware_platforms": "hardware_id",
    "test_runs": "run_id",
    "performance_results": "result_id",
    "hardware_compatibility": "compatibility_id",
    "integration_test_results": "test_result_id",
    "web_platform_results": "result_id",
}


def _bad_number(column: str, allow_zero: bool = True) -> str:
    op = "<" if allow_zero else "<="
    return f"({column} {op} 0 OR isnan({column}) OR isinf({column}))"


# (table, id column, description, condition that marks an impossible row)
IMPOSSIBLE = [
    *[("performance_results", "result_id", f"{c} is negative or not a number", _bad_number(c))
      for c in ("average_latency_ms", "latency_p50_ms", "latency_p90_ms", "latency_p95_ms", "latency_p99_ms",
                "latency_stddev_ms", "throughput_items_per_second", "memory_peak_mb", "total_time_seconds")],
    ("performance_results", "result_id", "batch_size is not positive", "batch_size <= 0"),
    ("performance_results", "result_id", "sequence_length is negative", "sequence_length < 0"),
    ("performance_results", "result_id", "iterations or warmup_iterations is negative",
     "iterations < 0 OR warmup_iterations < 0"),
    ("performance_results", "result_id", "latency percentiles out of order (p50 > p90 > p99)",
     "latency_p50_ms > latency_p90_ms * 1.000001 OR latency_p90_ms > latency_p95_ms * 1.000001 "
     "OR latency_p95_ms > latency_p99_ms * 1.000001 OR latency_p50_ms > latency_p99_ms * 1.000001"),
    ("performance_results", "result_id", "created_at lies in the future", "created_at > {future}"),
    ("test_runs", "run_id", "completed_at is before started_at", "completed_at < started_at"),
    ("test_runs", "run_id", "execution_time_seconds is negative or not a number",
     _bad_number("execution_time_seconds")),
    ("test_runs", "run_id", "started_at lies in the future", "started_at > {future}"),
    ("models", "model_id", "parameters_million is negative or not a number", _bad_number("parameters_million")),
    ("models", "model_id", "model_name is empty", "trim(model_name) = ''"),
    ("hardware_platforms", "hardware_id", "memory_gb or compute_units is negative",
     "memory_gb < 0 OR compute_units < 0"),
    ("integration_test_results", "test_result_id", "execution_time_seconds is negative",
     _bad_number("execution_time_seconds")),
    *[("web_platform_results", "result_id", f"{c} is negative or not a number", _bad_number(c))
      for c in ("load_time_ms", "initialization_time_ms", "inference_time_ms", "total_time_ms",
                "shader_compilation_time_ms", "memory_usage_mb")],
    ("hardware_compatibility", "compatibility_id", "compatibility_score is negative",
     "compatibility_score < 0"),
    ("ingested_files", "path", "status is not ingested, skipped or failed",
     "status NOT IN ('ingested', 'skipped', 'failed')"),
    ("ingested_files", "path", "rows or size_bytes is negative", "rows < 0 OR size_bytes < 0"),
]

# the denormalised names on performance_results must agree with the dimension rows they copy
DENORMALISED = (
    ("performance_results", "result_id", "model_name", "models", "model_id", "model_name"),
    ("performance_results", "result_id", "hardware_type", "hardware_platforms", "hardware_id", "hardware_type"),
)


def _tables(conn) -> dict[str, set[str]]:
    columns: dict[str, set[str]] = {}
    for table, column in conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_catalog = current_database() AND table_schema = 'main'").fetchall():
        columns.setdefault(table, set()).add(column)
    return columns


def _problem(check: str, table: str, detail: str, count: int, examples: list) -> dict:
    return {"check": check, "table": table, "problem": detail, "rows": int(count),
            "examples": ", ".join(str(e) for e in examples[:5])}


def _count_and_examples(conn, sql: str, params: list | None = None) -> tuple[int, list]:
    count, examples = conn.execute(
        f"SELECT count(*), list(example ORDER BY example)[1:5] FROM ({sql})", params or []).fetchone()
    return int(count or 0), list(examples or [])


def check_integrity(conn, *, now: dt.datetime | None = None) -> list[dict]:
    """Every integrity problem of the database, one dict each (check, table, problem, rows, examples)."""
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    future = f"TIMESTAMP '{(now + dt.timedelta(days=1)).isoformat(sep=' ')}'"
    tables = _tables(conn)
    problems: list[dict] = []

    version = schema.current_version(conn)
    if version != schema.SCHEMA_VERSION:
        problems.append(_problem("schema", "schema_migrations",
                                 f"schema version {version}, expected {schema.SCHEMA_VERSION}", 1, []))

    for table, id_col, col, ref_table, ref_col in REFERENCES:
        if col not in tables.get(table, ()) or ref_table not in tables:
            continue
        count, examples = _count_and_examples(conn, (
            f"SELECT t.{id_col} AS example FROM {table} t ANTI JOIN {ref_table} r ON r.{ref_col} = t.{col} "
            f"WHERE t.{col} IS NOT NULL"))
        if count:
            problems.append(_problem("orphan", table, f"{col} names no row of {ref_table}", count, examples))

    for table, id_col, col, condition, ref_table, ref_col in PROVENANCE:
        if col not in tables.get(table, ()) or ref_table not in tables:
            continue
        count, examples = _count_and_examples(conn, (
            f"SELECT t.{id_col} AS example FROM {table} t ANTI JOIN {ref_table} r ON r.{ref_col} = t.{col} "
            f"WHERE t.{col} IS NOT NULL AND ({condition})"))
        if count:
            problems.append(_problem("dangling reference", table,
                                     f"{col} names an original document that {ref_table} does not hold",
                                     count, examples))

    for table, id_col, col, ref_table, ref_id, ref_col in DENORMALISED:
        if col not in tables.get(table, ()) or ref_table not in tables:
            continue
        count, examples = _count_and_examples(conn, (
            f"SELECT t.{id_col} AS example FROM {table} t JOIN {ref_table} r ON r.{ref_id} = t.{ref_id} "
            f"WHERE t.{col} IS DISTINCT FROM r.{ref_col} AND t.{col} IS NOT NULL"))
        if count:
            problems.append(_problem("inconsistent value", table, f"{col} differs from {ref_table}.{ref_col}",
                                     count, examples))

    for table, (id_col, key, condition) in NATURAL_KEYS.items():
        if table not in tables or not {k for k in key if k.isidentifier()} <= tables[table]:
            continue
        keys = ", ".join(key)
        count, examples = _count_and_examples(conn, (
            f"SELECT unnest(ids) AS example FROM (SELECT list(DISTINCT {id_col} ORDER BY {id_col}) AS ids "
            f"FROM {table} WHERE {condition} GROUP BY {keys} HAVING count(DISTINCT {id_col}) > 1)"))
        if count:
            problems.append(_problem("duplicate", table, f"the same natural key ({', '.join(key)}) "
                                     f"is stored under several ids", count, examples))

    for table, id_col in ID_COLUMNS.items():
        if id_col not in tables.get(table, ()):
            continue
        count, examples = conn.execute(
            f"SELECT sum(n), list({id_col} ORDER BY {id_col})[1:5] FROM (SELECT {id_col}, count(*) AS n "
            f"FROM {table} WHERE {id_col} IS NOT NULL GROUP BY {id_col} HAVING count(*) > 1)").fetchone()
        if count:
            problems.append(_problem("duplicate", table, f"several rows share one {id_col}", int(count),
                                     list(examples)))

    for table, id_col, detail, condition in IMPOSSIBLE:
        if table not in tables:
            continue
        count, examples = _count_and_examples(
            conn, f"SELECT {id_col} AS example FROM {table} WHERE {condition.format(future=future)}")
        if count:
            problems.append(_problem("impossible value", table, detail, count, examples))

    views = [r[0] for r in conn.execute(
        "SELECT view_name FROM duckdb_views() WHERE NOT internal AND database_name = current_database() "
        "AND schema_name = 'main' ORDER BY view_name").fetchall()]
    for view in schema.VIEWS:
        if view not in views:
            problems.append(_problem("missing view", view, "a view of the schema does not exist", 1, []))
    for view in views:
        try:
            conn.execute(f'SELECT * FROM "{view}" LIMIT 0').fetchall()
        except Exception as exc:  # duckdb.Error: the view no longer binds
            message = str(exc).splitlines()[0][:300]
            problems.append(_problem("view does not compile", view, message, 1, []))

    from benchmark_db.maintenance.archive import views_missing_archive

    for view in views_missing_archive(conn):
        problems.append(_problem("view misses archive", view, "the view no longer includes archived rows; "
                                 "any maintenance run re-creates it", 1, []))
    if "archived_partitions" in tables:
        from benchmark_db.maintenance.backup import sha256_file

        for partition_id, table, path, sha in conn.execute(
                "SELECT partition_id, table_name, path, sha256 FROM archived_partitions "
                "ORDER BY partition_id").fetchall():
            if not Path(path).is_file():
                problems.append(_problem("missing archive file", table,
                                         f"archived partition {partition_id} is not at {path}; put it back, or "
                                         "restore a backup (backups carry the archive)", 1, [path]))
            elif sha256_file(path) != sha:
                problems.append(_problem("changed archive file", table,
                                         f"archived partition {partition_id} at {path} no longer has the sha256 "
                                         "recorded when it was archived; restore it from a backup", 1, [path]))
    return problems

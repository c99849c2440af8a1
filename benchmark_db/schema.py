"""The database schema: tables, views and the forward-only migrations that build them.

Each migration is a numbered list of statements applied in one transaction and recorded in
`schema_migrations`. A writer brings an older database forward with `migrate(conn)`; a database whose
version is newer than `SCHEMA_VERSION` is refused (DB002) rather than written with a schema we do not know.

Conventions (DESIGN §3): ids are BIGINTs derived from natural keys (`benchmark_db.identity`); latency in
ms, throughput in items/s, memory in MB; timestamps are TIMESTAMP holding UTC. No foreign keys: DuckDB
cannot replace a referenced row, DuckLake has no constraints at all, and orphans are found by the integrity
check instead. Since version 4 only the small tables keep primary keys (see `_V4_STATEMENTS`); `ROW_KEYS`
names the identifying columns of every table.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from benchmark_db.errors import SchemaError

# `ingested_files.archived_to` of a file deleted on purpose (--action remove, --clean-json --action remove);
# any other value is the path the file was archived to
REMOVED_MARK = "removed"

# Bookkeeping text that is written once and seldom read (paths, JSON of run metadata and of the ingest log)
# is stored with zstd instead of DuckDB's default dictionary/FSST: the paths of one folder and the metadata
# of one system repeat across rows, which zstd sees and FSST does not (a third of their size on the 20,000-file
# ingest benchmark, 7% of the file). Columns that are mostly NULL (reason, archived_to, command_line) keep the
# default: a zstd segment takes at least two 64 KiB blocks even when it holds nothing. Fact-table JSON such as `performance_results.metrics` keeps the default:
# it is scanned by queries, where zstd would cost 40-70% more time for little gain. The clause only applies
# to files in storage v1.5 or later (`NEW_FILE_OPTIONS`); elsewhere `migrate` leaves it out (an older format
# would store the column uncompressed), as does DuckLake. Only tables created from here on get it.
ZSTD = " USING COMPRESSION zstd"

# ---------------------------------------------------------------------------------------------------------
# Version 1: the dimension and fact tables the guide documents.
_V1_TABLES = [
    """
    CREATE TABLE IF NOT EXISTS models (
        model_id BIGINT PRIMARY KEY,
        model_name VARCHAR NOT NULL,
        model_family VARCHAR,
        modality VARCHAR,
        parameters_million DOUBLE,
        source VARCHAR,
        version VARCHAR,
        metadata JSON,
        created_at TIMESTAMP DEFAULT (now() AT TIME ZONE 'UTC')
    )""",
    """
    CREATE TABLE IF NOT EXISTS hardware_platforms (
        hardware_id BIGINT PRIMARY KEY,
        hardware_type VARCHAR NOT NULL,
        device_name VARCHAR,
        platform VARCHAR,
        platform_version VARCHAR,
        driver_version VARCHAR,
        memory_gb DOUBLE,
        compute_units INTEGER,
        metadata JSON,
        created_at TIMESTAMP DEFAULT (now() AT TIME ZONE 'UTC')
    )""",
    f"""
    CREATE TABLE IF NOT EXISTS test_runs (
        run_id BIGINT PRIMARY KEY,
        test_name VARCHAR NOT NULL,
        test_type VARCHAR,
        started_at TIMESTAMP,
        completed_at TIMESTAMP,
        execution_time_seconds DOUBLE,
        success BOOLEAN,
        git_commit VARCHAR,
        git_branch VARCHAR,
        command_line VARCHAR,
        environment JSON{ZSTD},
        metadata JSON{ZSTD},
        created_at TIMESTAMP DEFAULT (now() AT TIME ZONE 'UTC')
    )""",
    """
    CREATE TABLE IF NOT EXISTS performance_results (
        result_id BIGINT PRIMARY KEY,
        run_id BIGINT,
        model_id BIGINT NOT NULL,
        hardware_id BIGINT NOT NULL,
        model_name VARCHAR,
        hardware_type VARCHAR,
        test_case VARCHAR,
        batch_size INTEGER,
        sequence_length INTEGER,
        precision VARCHAR,
        total_time_seconds DOUBLE,
        average_latency_ms DOUBLE,
        latency_p50_ms DOUBLE,
        latency_p90_ms DOUBLE,
        latency_p95_ms DOUBLE,
        latency_p99_ms DOUBLE,
        latency_stddev_ms DOUBLE,
        throughput_items_per_second DOUBLE,
        memory_peak_mb DOUBLE,
        iterations INTEGER,
        warmup_iterations INTEGER,
        latency_samples_ms DOUBLE[],
        is_simulated BOOLEAN NOT NULL DEFAULT false,
        metrics JSON,
        created_at TIMESTAMP DEFAULT (now() AT TIME ZONE 'UTC')
    )""",
    """
    CREATE TABLE IF NOT EXISTS hardware_compatibility (
        compatibility_id BIGINT PRIMARY KEY,
        run_id BIGINT,
        model_id BIGINT,
        hardware_id BIGINT NOT NULL,
        is_compatible BOOLEAN,
        detection_success BOOLEAN,
        initialization_success BOOLEAN,
        error_message VARCHAR,
        error_type VARCHAR,
        suggested_fix VARCHAR,
        workaround_available BOOLEAN,
        compatibility_score DOUBLE,
        is_simulated BOOLEAN NOT NULL DEFAULT false,
        metadata JSON,
        created_at TIMESTAMP DEFAULT (now() AT TIME ZONE 'UTC')
    )""",
    """
    CREATE TABLE IF NOT EXISTS integration_test_results (
        test_result_id BIGINT PRIMARY KEY,
        run_id BIGINT,
        test_module VARCHAR,
        test_class VARCHAR,
        test_name VARCHAR NOT NULL,
        status VARCHAR NOT NULL,
        execution_time_seconds DOUBLE,
        hardware_id BIGINT,
        model_id BIGINT,
        error_message VARCHAR,
        error_traceback VARCHAR,
        metadata JSON,
        created_at TIMESTAMP DEFAULT (now() AT TIME ZONE 'UTC')
    )""",
]

# Version 2: web-platform runs, provenance of runs, and the ingest bookkeeping that makes imports
# repeatable and lossless (the original text of every ingested document is kept, compressed).
_V2_TABLES = [
    """
    CREATE TABLE IF NOT EXISTS web_platform_results (
        result_id BIGINT PRIMARY KEY,
        run_id BIGINT,
        model_id BIGINT,
        hardware_id BIGINT,
        platform VARCHAR,
        browser VARCHAR,
        browser_version VARCHAR,
        adapter VARCHAR,
        is_emulated BOOLEAN,
        test_file VARCHAR,
        success BOOLEAN,
        load_time_ms DOUBLE,
        initialization_time_ms DOUBLE,
        inference_time_ms DOUBLE,
        total_time_ms DOUBLE,
        shader_compilation_time_ms DOUBLE,
        memory_usage_mb DOUBLE,
        error_message VARCHAR,
        is_simulated BOOLEAN NOT NULL DEFAULT false,
        metrics JSON,
        created_at TIMESTAMP DEFAULT (now() AT TIME ZONE 'UTC')
    )""",
    "ALTER TABLE test_runs ADD COLUMN IF NOT EXISTS source_path VARCHAR",
    "ALTER TABLE test_runs ADD COLUMN IF NOT EXISTS source_sha256 VARCHAR",
    f"""
    CREATE TABLE IF NOT EXISTS ingested_files (
        path VARCHAR{ZSTD} PRIMARY KEY,
        sha256 VARCHAR,
        size_bytes BIGINT,
        kind VARCHAR,
        status VARCHAR NOT NULL,
        reason VARCHAR,
        rows INTEGER,
        rows_by_table JSON{ZSTD},
        conversions JSON{ZSTD},
        ingested_at TIMESTAMP DEFAULT (now() AT TIME ZONE 'UTC'),
        archived_to VARCHAR
    )""",
    """
    CREATE TABLE IF NOT EXISTS source_documents (
        sha256 VARCHAR PRIMARY KEY,
        size_bytes BIGINT,
        codec VARCHAR NOT NULL,
        dictionary_id BIGINT,
        content BLOB NOT NULL
    )""",
    """
    CREATE TABLE IF NOT EXISTS compression_dictionaries (
        dictionary_id BIGINT PRIMARY KEY,
        codec VARCHAR NOT NULL,
        content BLOB NOT NULL,
        created_at TIMESTAMP DEFAULT (now() AT TIME ZONE 'UTC')
    )""",
]

# Version 3: the views the guide queries. Dimension rows are read through `_one_per_id`, one row per id:
# on DuckLake (no primary keys) two writers adding the same new model at the same moment both insert it.
def _one_per_id(table: str, key: str) -> str:
    return (f"(SELECT * FROM {table} QUALIFY row_number() OVER (PARTITION BY {key} "
            f"ORDER BY created_at NULLS LAST) = 1)")


_MODELS = _one_per_id("models", "model_id")
_HARDWARE = _one_per_id("hardware_platforms", "hardware_id")


def dimension_joins(fact: str) -> str:
    """LEFT JOINs of `models m` and `hardware_platforms hp` to the facts aliased `fact`, one row per id as the
    views read them: a lake's duplicate model row (two writers adding it at once) counted each of its results
    twice in every report, comparison, regression check and API page that joined the tables themselves."""
    return (f"LEFT JOIN {_MODELS} m ON m.model_id = {fact}.model_id "
            f"LEFT JOIN {_HARDWARE} hp ON hp.hardware_id = {fact}.hardware_id")


_V3_VIEWS = [
    f"""
    CREATE OR REPLACE VIEW benchmark_performance AS
    SELECT
        pr.result_id,
        pr.run_id,
        pr.model_id,
        pr.hardware_id,
        COALESCE(m.model_name, pr.model_name) AS model,
        m.model_family,
        m.modality,
        m.parameters_million,
        COALESCE(hp.hardware_type, pr.hardware_type) AS hardware,
        hp.device_name AS device,
        pr.test_case,
        pr.batch_size,
        pr.sequence_length,
        pr.precision,
        pr.throughput_items_per_second AS throughput,
        pr.average_latency_ms AS latency_ms,
        pr.latency_p50_ms,
        pr.latency_p90_ms,
        pr.latency_p95_ms,
        pr.latency_p99_ms,
        pr.latency_stddev_ms,
        pr.memory_peak_mb AS memory_mb,
        pr.iterations,
        pr.is_simulated,
        pr.created_at,
        tr.test_name,
        tr.started_at AS run_started_at,
        tr.git_commit,
        tr.git_branch
    FROM performance_results pr
    LEFT JOIN {_MODELS} m ON m.model_id = pr.model_id
    LEFT JOIN {_HARDWARE} hp ON hp.hardware_id = pr.hardware_id
    LEFT JOIN test_runs tr ON tr.run_id = pr.run_id""",
    """
    CREATE OR REPLACE VIEW latest_performance_metrics AS
    SELECT * FROM benchmark_performance
    QUALIFY row_number() OVER (
        PARTITION BY model, hardware, device, test_case, batch_size, sequence_length, precision, is_simulated
        ORDER BY created_at DESC NULLS LAST, result_id DESC) = 1""",
    f"""
    CREATE OR REPLACE VIEW model_hardware_compatibility AS
    WITH compat AS (
        SELECT hc.model_id, hc.hardware_id, hc.is_compatible, hc.error_message, hc.error_type,
               hc.is_simulated, hc.created_at
        FROM hardware_compatibility hc
        QUALIFY row_number() OVER (PARTITION BY hc.model_id, hc.hardware_id
                                   ORDER BY hc.created_at DESC NULLS LAST, hc.compatibility_id DESC) = 1
    ),
    measured AS (
        SELECT model_id, hardware_id, count(*) AS performance_results
        FROM performance_results WHERE NOT is_simulated GROUP BY ALL
    ),
    pairs AS (
        SELECT model_id, hardware_id FROM compat
        UNION SELECT model_id, hardware_id FROM measured
    )
    SELECT
        m.model_name AS model,
        m.model_family,
        hp.hardware_type AS hardware,
        hp.device_name AS device,
        COALESCE(compat.is_compatible, measured.performance_results > 0) AS is_compatible,
        COALESCE(measured.performance_results, 0) AS performance_results,
        compat.error_message,
        compat.error_type,
        compat.is_simulated,
        compat.created_at AS checked_at
    FROM pairs
    LEFT JOIN compat USING (model_id, hardware_id)
    LEFT JOIN measured USING (model_id, hardware_id)
    LEFT JOIN {_MODELS} m ON m.model_id = pairs.model_id
    LEFT JOIN {_HARDWARE} hp ON hp.hardware_id = pairs.hardware_id""",
    f"""
    CREATE OR REPLACE VIEW integration_test_status AS
    SELECT
        it.test_module,
        it.test_class,
        it.test_name,
        hp.hardware_type AS hardware,
        m.model_name AS model,
        arg_max(it.status, it.created_at) AS latest_status,
        max(it.created_at) AS last_run_at,
        count(*) AS runs,
        count(*) FILTER (WHERE lower(it.status) IN ('pass', 'passed', 'success', 'ok')) AS passed,
        count(*) FILTER (WHERE lower(it.status) IN ('fail', 'failed', 'failure', 'error')) AS failed
    FROM integration_test_results it
    LEFT JOIN {_HARDWARE} hp ON hp.hardware_id = it.hardware_id
    LEFT JOIN {_MODELS} m ON m.model_id = it.model_id
    GROUP BY ALL""",
    """
    CREATE OR REPLACE VIEW cross_platform_performance AS
    SELECT
        model,
        model_family,
        batch_size,
        avg(throughput) FILTER (WHERE hardware = 'cpu') AS cpu_throughput,
        avg(throughput) FILTER (WHERE hardware = 'cuda') AS cuda_throughput,
        avg(throughput) FILTER (WHERE hardware = 'rocm') AS rocm_throughput,
        avg(throughput) FILTER (WHERE hardware = 'mps') AS mps_throughput,
        avg(throughput) FILTER (WHERE hardware = 'openvino') AS openvino_throughput,
        avg(throughput) FILTER (WHERE hardware = 'webnn') AS webnn_throughput,
        avg(throughput) FILTER (WHERE hardware = 'webgpu') AS webgpu_throughput,
        avg(latency_ms) FILTER (WHERE hardware = 'cpu') AS cpu_latency_ms,
        avg(latency_ms) FILTER (WHERE hardware = 'cuda') AS cuda_latency_ms,
        avg(latency_ms) FILTER (WHERE hardware = 'openvino') AS openvino_latency_ms,
        count(*) AS results
    FROM benchmark_performance
    WHERE NOT is_simulated
    GROUP BY ALL""",
]

# Indexes that make the common filters fast (ART indexes; ignored by DuckLake).
_V3_INDEXES = [
    "CREATE INDEX IF NOT EXISTS idx_perf_model_hw ON performance_results (model_name, hardware_type)",
    "CREATE INDEX IF NOT EXISTS idx_models_name ON models (model_name)",
    "CREATE INDEX IF NOT EXISTS idx_runs_source ON test_runs (source_path)",
]


# Version 4: no primary keys (nor the two secondary indexes) on the fact and bookkeeping tables. Their ART
# indexes were half of a database file (a random 64-bit id or a sha256 costs about 47 bytes a row in an
# ART, more than the row itself), while nothing relies on them: ids are hashes of natural keys, every writer
# replaces rows by DELETE + INSERT in one transaction (the ORM, the ingest engine) or inserts what is
# missing by an anti-join (`benchmark_db.merge`), and a DuckDB file has one writer at a time. Lookups by id
# scan one BIGINT column, which takes about a millisecond at a hundred thousand rows. The small dimension
# tables keep their keys. DuckDB cannot drop a constraint in place, so each table is rebuilt under a
# temporary name, its rows copied by column name, the original dropped and the copy renamed; the views
# that read the tables are dropped first and created again last. DuckLake tables never had keys or
# indexes: there the migration is recorded and skips its statements (`file_only`).
UNKEYED_TABLES = ("test_runs", "performance_results", "hardware_compatibility", "integration_test_results",
                  "web_platform_results", "ingested_files", "source_documents")
# the columns that identify a row of each table, now that most tables carry no primary key
ROW_KEYS = {"models": ("model_id",), "hardware_platforms": ("hardware_id",), "test_runs": ("run_id",),
            "performance_results": ("result_id",), "hardware_compatibility": ("compatibility_id",),
            "integration_test_results": ("test_result_id",), "web_platform_results": ("result_id",),
            "ingested_files": ("path",), "source_documents": ("sha256",),
            "compression_dictionaries": ("dictionary_id",), "schema_migrations": ("version",),
            "api_idempotency_keys": ("idempotency_key",)}
_ADDED_COLUMNS = {"test_runs": (f"source_path VARCHAR{ZSTD}", "source_sha256 VARCHAR")}  # by version 2's ALTERs


def _rebuild_without_key(table: str) -> list[str]:
    create = next(s for s in _V1_TABLES + _V2_TABLES if f"CREATE TABLE IF NOT EXISTS {table} (" in s)
    create = create.replace(f"CREATE TABLE IF NOT EXISTS {table} (", f"CREATE TABLE {table}__v4 (")
    create = create.replace(" PRIMARY KEY", " NOT NULL")  # what the key implied
    for column in _ADDED_COLUMNS.get(table, ()):
        create = create.rstrip()[:-1].rstrip() + f",\n        {column}\n    )"
    return [create, f"INSERT INTO {table}__v4 BY NAME SELECT * FROM {table}", f"DROP TABLE {table}",
            f"ALTER TABLE {table}__v4 RENAME TO {table}"]


_V4_STATEMENTS = (
    [f"DROP VIEW IF EXISTS {v}" for v in ("cross_platform_performance", "latest_performance_metrics",
                                          "integration_test_status", "model_hardware_compatibility",
                                          "benchmark_performance")]
    + [s for t in UNKEYED_TABLES for s in _rebuild_without_key(t)]
    + _V3_VIEWS
)


# Version 5: `performance_results.is_emulated`, a result measured on an emulated device (a browser's software
# WebGPU adapter such as SwiftShader: real timings, but of the emulator). Until now the flag lived only in the
# row's metrics JSON, and every report would have had to read that whole column to keep emulated and real
# results apart. The column is filled from the metrics of the rows already stored, and the views show it:
# `latest_performance_metrics` keeps an emulated and a real latest result apart, and
# `cross_platform_performance` compares real devices only (as it leaves out simulated results).
_IS_EMULATED_FROM_METRICS = "COALESCE(({row}metrics->>'is_emulated') = 'true', false)"
# Columns added after rows were written, and how to compute each from a row that predates it (a database being
# upgraded, an older CI artifact being merged, an archive Parquet file written before): (table, column) ->
# (the source columns it needs, SQL with `{row}` where the row's alias and a dot go).
DERIVED_COLUMNS = {("performance_results", "is_emulated"): (("metrics",), _IS_EMULATED_FROM_METRICS)}


def derived_column_sql(table: str, column: str, source_columns, row: str = "") -> str | None:
    """SQL computing `column` of `table` from a source row that lacks it, or None if it cannot be computed."""
    needed, template = DERIVED_COLUMNS.get((table, column), ((), None))
    if template is None or not set(needed) <= set(source_columns):
        return None
    return template.format(row=f"{row}." if row else "")


_V5_VIEWS = [
    _V3_VIEWS[0].replace("        pr.is_simulated,\n", "        pr.is_simulated,\n        pr.is_emulated,\n"),
    _V3_VIEWS[1].replace("precision, is_simulated\n", "precision, is_simulated, is_emulated\n"),
    _V3_VIEWS[4].replace("    WHERE NOT is_simulated\n", "    WHERE NOT is_simulated AND NOT is_emulated\n"),
]
_V5_STATEMENTS = [
    # DEFAULT 0, not false: DuckLake 1.5.5 takes only an integer literal as a BOOLEAN default ("We cannot add a
    # column with a non-literal default value" for false, FALSE and CAST(0 AS BOOLEAN))
    "ALTER TABLE performance_results ADD COLUMN IF NOT EXISTS is_emulated BOOLEAN DEFAULT 0",
    "UPDATE performance_results SET is_emulated = true WHERE " + _IS_EMULATED_FROM_METRICS.format(row=""),
    *_V5_VIEWS,
]

# Version 6: `ingested_files.converter_version`, the converter version (convert.CONVERTER_VERSION) that made a
# file's rows. A file logged by an earlier version, or before versions were recorded (NULL), is converted again
# by the next run that sees it, so an upgraded converter's fixes reach rows already stored.
_V6_STATEMENTS = ["ALTER TABLE ingested_files ADD COLUMN IF NOT EXISTS converter_version INTEGER"]

# Version 7: a result whose document gives no time keeps `created_at` NULL (it used to get the time of the
# ingest, which put years-old results into every "last 30 days" window). `integration_test_status` took its
# latest status with arg_max over created_at, which skips NULL keys: a test known only from undated files
# would show no status at all. Undated runs now count as the oldest, and the result id breaks ties, so the
# view gives one answer for the same rows.
# The key of a test's latest row, also used by the report's integration table
LATEST_INTEGRATION_ROW = "(COALESCE(it.created_at, '-infinity'::TIMESTAMP), it.test_result_id)"
_V7_VIEWS = [_V3_VIEWS[3].replace("arg_max(it.status, it.created_at) AS latest_status",
                                  f"arg_max(it.status, {LATEST_INTEGRATION_ROW}) AS latest_status")]

# Version 8: `api_idempotency_keys`, the REST server's record of the writes sent with an `Idempotency-Key`
# header: the key, the endpoint and the sha256 of the body it came with, and the answer given, so that a client
# that resends after a dropped connection gets that answer again instead of a second copy of its rows. The
# server writes a key in the same transaction as the rows it answers for and deletes keys older than a day.
# No primary key: DuckLake has none; the server's single writer thread checks for a key inside the transaction.
_V8_TABLES = ["""
    CREATE TABLE IF NOT EXISTS api_idempotency_keys (
        idempotency_key VARCHAR NOT NULL,
        endpoint VARCHAR NOT NULL,
        body_sha256 VARCHAR NOT NULL,
        status_code INTEGER NOT NULL,
        response JSON NOT NULL,
        created_at TIMESTAMP NOT NULL
    )"""]


# Version 9: `cross_platform_performance` keeps test case, sequence length and precision apart. It averaged
# every result of a model and batch size on a hardware type into one figure: an optimum-benchmark file's
# load_model (1 item/s) and forward (1,000 items/s) rows, or sequence lengths 32 and 512, gave a mean that
# described none of them (the reports stopped pooling them in the same change).
_V9_VIEWS = [_V5_VIEWS[2].replace("        model_family,\n        batch_size,\n",
                                  "        model_family,\n        test_case,\n        batch_size,\n"
                                  "        sequence_length,\n        precision,\n")]
assert _V9_VIEWS[0] != _V5_VIEWS[2]


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]
    file_only: bool = False  # only about keys and indexes, which a DuckLake catalog does not have
    # what it adds is not needed to read a file written before it (bookkeeping only writers use, a view that
    # differs only for rows older code never wrote): a reader may read such a file as it is
    optional_for_readers: bool = False


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "core tables of the guide", tuple(_V1_TABLES)),
    Migration(2, "web platform results, run provenance, ingest log and source documents", tuple(_V2_TABLES)),
    Migration(3, "analytical views and indexes", tuple(_V3_VIEWS + _V3_INDEXES)),
    Migration(4, "no primary keys on fact and bookkeeping tables (smaller files)", tuple(_V4_STATEMENTS),
              file_only=True),
    Migration(5, "is_emulated on performance results (emulated devices kept apart from real ones)",
              tuple(_V5_STATEMENTS)),
    Migration(6, "converter version in the ingest log (files converted by older code are converted again)",
              tuple(_V6_STATEMENTS), optional_for_readers=True),
    Migration(7, "integration_test_status takes undated results (created_at NULL) as the oldest",
              tuple(_V7_VIEWS), optional_for_readers=True),
    Migration(8, "the REST server's idempotency keys (a resent write is answered, not stored twice)",
              tuple(_V8_TABLES), optional_for_readers=True),
    Migration(9, "cross_platform_performance keeps test case, sequence length and precision apart",
              tuple(_V9_VIEWS), optional_for_readers=True),
)
SCHEMA_VERSION = MIGRATIONS[-1].version

TABLES = ("models", "hardware_platforms", "test_runs", "performance_results", "hardware_compatibility",
          "integration_test_results", "web_platform_results", "ingested_files", "source_documents",
          "compression_dictionaries")
RESULT_TABLES = ("test_runs", "performance_results", "hardware_compatibility", "integration_test_results",
                 "web_platform_results")
# The largest batch size and sequence length the REST API stores and the runners measure: beyond them a value is
# a typo or an overflowed counter, not a measurement (a million items in one batch, 16M tokens)
MAX_BATCH_SIZE = 1_048_576
MAX_SEQUENCE_LENGTH = 16_777_216
VIEWS = ("benchmark_performance", "latest_performance_metrics", "model_hardware_compatibility",
         "integration_test_status", "cross_platform_performance")

_MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    name VARCHAR NOT NULL,
    applied_at TIMESTAMP DEFAULT (now() AT TIME ZONE 'UTC')
)"""


def current_version(conn) -> int:
    """The schema version recorded in the database, 0 for an empty one."""
    exists = conn.execute(
        "SELECT count(*) FROM information_schema.tables "
        "WHERE table_name = 'schema_migrations' AND table_schema = current_schema() "
        "AND table_catalog = current_database()").fetchone()[0]
    if not exists:
        return 0
    return conn.execute("SELECT COALESCE(max(version), 0) FROM schema_migrations").fetchone()[0]


def pending_migrations(conn) -> list[Migration]:
    version = current_version(conn)
    check_not_newer(version)
    return [m for m in MIGRATIONS if m.version > version]


def check_not_newer(version: int) -> None:
    if version > SCHEMA_VERSION:
        raise SchemaError(
            f"the database has schema version {version}, newer than this code's {SCHEMA_VERSION}",
            "a newer version of the benchmark-db toolkit wrote it: upgrade the toolkit to read or write it")


def without_zstd(statement: str) -> str:
    return statement.replace(ZSTD, "")


def _has_zstd_strings(conn) -> bool:
    """Whether the current database file stores strings with zstd (storage v1.5 or later, not in memory)."""
    row = conn.execute("SELECT tags FROM duckdb_databases() WHERE database_name = current_database()").fetchone()
    version = re.match(r"v(\d+)\.(\d+)", ((row[0] or {}) if row else {}).get("storage_version", ""))
    return bool(version) and (int(version[1]), int(version[2])) >= (1, 5)


def migrate(conn, target: int = SCHEMA_VERSION, statement_filter=None) -> list[Migration]:
    """Apply every pending migration up to `target`, each in its own transaction; return those applied.

    `statement_filter` lets a backend without indexes or constraints (DuckLake) adapt each statement; the
    statements of a `file_only` migration are skipped there (the version is still recorded).
    """
    adapt = statement_filter or (None if _has_zstd_strings(conn) else without_zstd)
    if statement_filter is not None:  # DuckLake: its catalog commits each step; there is no local WAL
        conn.execute(adapt(_MIGRATIONS_TABLE))
        return _apply(conn, target, adapt, statement_filter)
    # DuckDB 1.5.5 cannot replay from the WAL an `ALTER TABLE` (ADD, DROP or RENAME COLUMN, SET DEFAULT, ALTER
    # TYPE) of a table with a non-constant default such as `now() AT TIME ZONE 'UTC'` (versions 2, 5 and 6 add
    # columns to such tables): replay fails with "GetDefaultDatabase with no default database set", and the
    # file opens for no one until its WAL is deleted by hand. So no migration step may ever reach the WAL. A zero
    # checkpoint threshold makes each step's COMMIT checkpoint at once, and a zero skip-WAL threshold makes that
    # COMMIT write its changes into the file by the checkpoint alone: by default DuckDB first writes and syncs
    # the WAL and then checkpoints, and a kill between the two left exactly such a WAL. Now a kill at any moment
    # leaves the previous version or the next one. The settings are the database's; they are put back after.
    settings = {name: conn.execute(f"SELECT current_setting('{name}')").fetchone()[0] for name in _NO_WAL_SETTINGS}
    for name, value in _NO_WAL_SETTINGS.items():
        conn.execute(f"SET {name} = '{value}'")
    try:
        conn.execute(_MIGRATIONS_TABLE if adapt is None else adapt(_MIGRATIONS_TABLE))
        return _apply(conn, target, adapt, statement_filter)
    finally:
        for name, value in settings.items():
            conn.execute(f"SET {name} = '{value}'")


# How `migrate` keeps its steps out of a file's WAL (see there)
_NO_WAL_SETTINGS = {"checkpoint_threshold": "0b", "auto_checkpoint_skip_wal_threshold": "0"}


def _apply(conn, target: int, adapt, statement_filter) -> list[Migration]:
    applied = []
    for migration in pending_migrations(conn):
        if migration.version > target:
            break
        conn.execute("BEGIN TRANSACTION")
        try:
            statements = () if migration.file_only and statement_filter is not None else migration.statements
            for statement in statements:
                sql = statement if adapt is None else adapt(statement)
                if sql:
                    conn.execute(sql)
            conn.execute("INSERT INTO schema_migrations (version, name) VALUES (?, ?)",
                         [migration.version, migration.name])
            conn.execute("COMMIT")
        except Exception as exc:
            try:
                conn.execute("ROLLBACK")
            except Exception:  # a failed COMMIT has ended the transaction already; `exc` is what went wrong
                pass
            if "transaction conflict" in str(exc).lower():  # another process migrated at the same moment
                raise SchemaError(f"migration {migration.version} ({migration.name}) conflicted with another "
                                  f"process changing the schema: {' '.join(str(exc).split())}",
                                  "the database was left at the previous version; re-run") from exc
            raise SchemaError(f"migration {migration.version} ({migration.name}) failed: {exc}",
                              "the database was left at the previous version; report this as a bug") from exc
        applied.append(migration)
    return applied

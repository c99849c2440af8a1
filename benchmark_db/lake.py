"""Team mode: the benchmark schema on DuckLake (catalog in PostgreSQL or a local file, data as Parquet).

Only `benchmark_db.connection.connect` calls this. The DuckLake and PostgreSQL extensions come from the
PyPI wheels `duckdb-extension-ducklake` and `duckdb-extension-postgres` (the `team` extra), installed from
their package files into an extension directory of the project's own, never downloaded at run time.
DuckLake has no primary keys, indexes or sequences; the schema's ids are already natural-key hashes, so the
same tables work once those clauses are left out.
"""
from __future__ import annotations

import importlib
import os
import re
from pathlib import Path

import duckdb

from benchmark_db import schema
from benchmark_db.errors import DBConnectionError, SchemaError

LAKE_ALIAS = "lake"
_EXTENSIONS = {"ducklake": "duckdb_extension_ducklake", "postgres": "duckdb_extension_postgres"}


def extension_directory() -> Path:
    """Where installed extensions live: the project's own state folder, not the user's ~/.duckdb."""
    configured = os.environ.get("BENCHMARK_DB_STATE_DIR")
    base = Path(configured) if configured else Path(__file__).resolve().parents[1] / ".state"
    return base / "duckdb_extensions"


def extension_file(name: str) -> Path:
    package = _EXTENSIONS[name]
    try:
        module = importlib.import_module(package)
    except ImportError as exc:
        raise DBConnectionError(
            f"the DuckDB {name} extension is not installed",
            f"install it with: pip install 'benchmark-db[team]' (or pip install {package.replace('_', '-')}==1.5.5)",
        ) from exc
    files = sorted(Path(module.__file__).parent.glob(f"extensions/v{duckdb.__version__}/*.duckdb_extension"))
    if not files:
        raise DBConnectionError(
            f"{package} holds no {name} extension built for DuckDB {duckdb.__version__}",
            f"install the matching wheel: pip install {package.replace('_', '-')}=={duckdb.__version__}")
    return files[0]


def _load_extensions(conn, names) -> None:
    for name in names:
        conn.execute(f"INSTALL '{extension_file(name)}'")
        conn.execute(f"LOAD {name}")


def lake_statement(statement: str) -> str | None:
    """A schema statement as DuckLake accepts it: no primary keys, no indexes, no column compression."""
    if re.match(r"\s*CREATE\s+INDEX", statement, re.I):
        return None
    return re.sub(r"\s+PRIMARY KEY", "", schema.without_zstd(statement))


def connect_lake(target: str, *, read_only: bool, create: bool, migrate: bool, data_path: str | None):
    """Open the lake named by `target` (`ducklake:postgres:...` or `ducklake:PATH`) as the default catalog."""
    spec = target[len("ducklake:"):]
    uses_postgres = spec.startswith("postgres:")
    if not uses_postgres and not create and not Path(spec).exists():
        raise DBConnectionError(f"DuckLake catalog {spec} does not exist",
                                f"create it with: python scripts/create_benchmark_schema.py --output {target}")
    config = {"extension_directory": str(extension_directory()), "autoinstall_known_extensions": False,
              "autoload_known_extensions": False}
    extension_directory().mkdir(parents=True, exist_ok=True)
    conn = duckdb.connect(":memory:", config=config)
    conn.execute("SET enable_progress_bar = false")
    try:
        _load_extensions(conn, ["ducklake", "postgres"] if uses_postgres else ["ducklake"])
        options = []
        if data_path:
            if "://" not in data_path:  # a local folder; object storage URLs are DuckDB's to reach
                Path(data_path).mkdir(parents=True, exist_ok=True)
            options.append(f"DATA_PATH '{data_path}'")
        if read_only:
            options.append("READ_ONLY")
        clause = f" ({', '.join(options)})" if options else ""
        escaped = target.replace("'", "''")
        conn.execute(f"ATTACH '{escaped}' AS {LAKE_ALIAS}{clause}")
        conn.execute(f"USE {LAKE_ALIAS}")
    except DBConnectionError:
        conn.close()
        raise
    except duckdb.Error as exc:
        conn.close()
        hint = ("give the data location with --data-path or $BENCHMARK_DB_DATA_PATH" if "DATA_PATH" in str(exc)
                else "check the catalog connection string and that the PostgreSQL server is reachable")
        raise DBConnectionError(f"cannot attach DuckLake {target}: {exc}", hint) from exc
    if migrate:
        try:
            version = schema.current_version(conn)
            schema.check_not_newer(version)
            if version < schema.SCHEMA_VERSION:
                if read_only:
                    raise SchemaError(f"the lake {target} is at schema version {version}",
                                      f"migrate it once with: python scripts/create_benchmark_schema.py "
                                      f"--output {target}")
                schema.migrate(conn, statement_filter=lake_statement)
        except (SchemaError, DBConnectionError):
            conn.close()
            raise
    return conn

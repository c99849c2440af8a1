"""A writer killed while it creates or upgrades the schema leaves a database that opens (QA session 16).

DuckDB 1.5.5 cannot replay from the WAL an `ALTER TABLE ... ADD COLUMN` of a table with a non-constant default
(`created_at ... DEFAULT (now() AT TIME ZONE 'UTC')`): opening fails with "Failure while replaying WAL file ...
GetDefaultDatabase with no default database set", for readers too. Versions 2, 5 and 6 add columns to such
tables. A migration step's COMMIT used to write the WAL and then checkpoint; a kill between the two (seen once
by QA: `benchmark_db_migration.py --migrate-all` killed 0.8 s in, the re-run exited 3) left that WAL behind.

The tests put the kill exactly there: the subprocess sets DuckDB's `debug_checkpoint_abort = 'before_header'`,
so the checkpoint of the chosen step's COMMIT stops before it writes the file header, as a kill -9 at that
moment would, and then the process exits at once. The database must then open read-only, and a writer must
bring it to the current version and ingest into it.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from benchmark_db.ingest import ingest_files
from benchmark_db.schema import MIGRATIONS, SCHEMA_VERSION
from benchmark_db_models import BenchmarkDB

REPO = Path(__file__).resolve().parents[1]

# Migrate a file to version `before` (as an older database would be), then apply the next step with the
# checkpoint of its COMMIT cut short before the file header, and exit as a kill -9 would: no cleanup, no
# closing checkpoint.
CUT_SHORT = """
import os, sys
sys.path.insert(0, {repo!r})
from benchmark_db import connection, schema
conn = connection.connect({db!r}, migrate=False)
schema.migrate(conn, target={before})
conn.execute("CHECKPOINT")
conn.execute("SET debug_checkpoint_abort = 'before_header'")
try:
    schema.migrate(conn, target={before} + 1)
except Exception as exc:  # the cut-short checkpoint invalidates the database; the kill comes next anyway
    print(type(exc).__name__, str(exc).splitlines()[0])
os._exit(0)
"""


def _cut_short(db: Path, before: int) -> None:
    code = CUT_SHORT.format(repo=str(REPO), db=str(db), before=before)
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=120)


def _version(db: Path) -> int:
    with duckdb.connect(str(db), read_only=True) as conn:  # plain DuckDB, as any reader opens it
        return conn.execute("SELECT COALESCE(max(version), 0) FROM schema_migrations").fetchone()[0]


def _perf_doc(tmp_path: Path) -> Path:
    doc = {"model": "prajjwal1/bert-tiny", "hardware": "cpu", "success": True, "timestamp": "2025-03-06T17:48:24",
           "batch_results": {"1": {"success": True, "batch_size": 1, "avg_latency_ms": 21.8,
                                   "throughput_items_per_second": 45.8, "memory_mb": 507.1,
                                   "latencies_ms": [19.6, 21.8, 24.0], "device": "cpu"}}}
    path = tmp_path / "results" / "direct_benchmark_bert.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))
    return path


# the steps that alter a table (2, 4, 5, 6 today): the DDL DuckDB 1.5.5 cannot replay from a WAL. The steps that
# only create tables, views or indexes replay fine (each took a second of the suite to show it).
ALTERING_STEPS = [m.version for m in MIGRATIONS if any("ALTER TABLE" in s.upper() for s in m.statements)]


@pytest.mark.slow  # a subprocess per schema step
@pytest.mark.parametrize("step", ALTERING_STEPS)
def test_a_step_cut_short_before_its_checkpoint_leaves_an_openable_database(tmp_path, step):
    db = tmp_path / "bench.duckdb"
    _cut_short(db, before=step - 1)

    assert _version(db) in (step - 1, step)  # the step is applied whole or not at all

    doc = _perf_doc(tmp_path)
    with BenchmarkDB(str(db)) as bench:  # the next writer completes the schema and ingests
        summary = ingest_files(bench, [doc.parent])
    assert [o.status for o in summary.outcomes] == ["ingested"]
    assert _version(db) == SCHEMA_VERSION
    with duckdb.connect(str(db), read_only=True) as conn:
        assert conn.execute("SELECT count(*) FROM performance_results").fetchone()[0] == 1
        assert conn.execute("SELECT count(*) FROM ingested_files WHERE status = 'ingested'").fetchone()[0] == 1


KILLED_AFTER_SCHEMA = """
import os, sys
sys.path.insert(0, {repo!r})
from benchmark_db import connection, schema
migrate = schema.migrate
def migrate_then_die(conn, *args, **kwargs):
    migrate(conn, *args, **kwargs)
    os._exit(9)  # killed before connect's closing CHECKPOINT and before any ingest
schema.migrate = migrate_then_die
connection.connect({db!r})
"""


@pytest.mark.slow  # a subprocess
def test_a_new_database_killed_right_after_its_schema_opens_and_takes_an_ingest(tmp_path):
    db = tmp_path / "new.duckdb"
    done = subprocess.run([sys.executable, "-c", KILLED_AFTER_SCHEMA.format(repo=str(REPO), db=str(db))],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 9, done.stderr
    assert _version(db) == SCHEMA_VERSION
    assert not list(tmp_path.glob("*.creating*"))  # the file was made under a temporary name, then linked

    doc = _perf_doc(tmp_path)
    with BenchmarkDB(str(db)) as bench:
        summary = ingest_files(bench, [doc.parent])
    assert [o.status for o in summary.outcomes] == ["ingested"]

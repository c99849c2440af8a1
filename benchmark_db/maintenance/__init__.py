"""Maintenance of a benchmark database: one module per step, each a plain function over a connection or path.

- `optimize`: checkpoint and statistics (`optimize_database`), and space reclamation by copying into a fresh
  file that atomically replaces the old one (`vacuum_database`).
- `integrity`: orphans, dangling references, duplicates, impossible values, views that no longer compile.
- `backup`: consistent backups with a manifest of row counts and table checksums, verified restore, and
  retention that only ever touches this tool's own backups.
- `archive`: old fact rows moved to Parquet and kept visible through `<table>_all` views and
  `benchmark_performance`.
- `clean_json`: archiving or removing legacy JSON files the ingest log proves are safely in the database.
- `stats`: the migration report built from the ingest log.

Nothing here parses command lines or prints; `benchmark_db_maintenance.py` does, and so can cron, the API
server or a test. Every destructive step takes `dry_run`.
"""
from __future__ import annotations

from benchmark_db.maintenance.checksums import table_checksums

__all__ = ["table_checksums"]

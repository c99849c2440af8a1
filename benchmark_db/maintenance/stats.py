"""The migration report: what the ingest log says about every file brought into the database.

Files by kind and status, rows imported, success and failure rates, the most common failure reasons, a
per-day timeline, unit conversions recorded at ingest, and the row count of every table. Read-only.
"""
from __future__ import annotations

import datetime as dt

from benchmark_db.maintenance.checksums import user_tables
from benchmark_db.schema import REMOVED_MARK


def _rows(conn, sql: str, params: list | None = None) -> list[dict]:
    cursor = conn.execute(sql, params)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def migration_stats(conn) -> dict:
    """The migration report as plain data (JSON-ready)."""
    totals = _rows(conn, """
        SELECT count(*) AS files,
               count(*) FILTER (WHERE status = 'ingested') AS ingested,
               count(*) FILTER (WHERE status = 'skipped') AS skipped,
               count(*) FILTER (WHERE status = 'failed') AS failed,
               COALESCE(sum(rows) FILTER (WHERE status = 'ingested'), 0) AS rows_imported,
               COALESCE(sum(size_bytes), 0) AS bytes_seen,
               count(*) FILTER (WHERE archived_to IS NOT NULL AND archived_to <> ?) AS archived,
               count(*) FILTER (WHERE archived_to = ?) AS removed,
               min(ingested_at) AS first_ingested_at,
               max(ingested_at) AS last_ingested_at
        FROM ingested_files""", [REMOVED_MARK, REMOVED_MARK])[0]
    attempted = totals["ingested"] + totals["failed"]
    totals["success_rate"] = round(totals["ingested"] / attempted, 4) if attempted else None
    totals["failure_rate"] = round(totals["failed"] / attempted, 4) if attempted else None
    by_kind = _rows(conn, """
        SELECT COALESCE(kind, 'unknown') AS kind, status, count(*) AS files, COALESCE(sum(rows), 0) AS rows,
               COALESCE(sum(size_bytes), 0) AS bytes
        FROM ingested_files GROUP BY ALL ORDER BY kind, status""")
    failures = _rows(conn, """
        SELECT COALESCE(reason, '(no reason recorded)') AS reason, count(*) AS files, min(path) AS example
        FROM ingested_files WHERE status = 'failed' GROUP BY ALL ORDER BY files DESC, reason LIMIT 20""")
    timeline = _rows(conn, """
        SELECT CAST(ingested_at AS DATE) AS day, count(*) AS files,
               count(*) FILTER (WHERE status = 'ingested') AS ingested,
               count(*) FILTER (WHERE status = 'failed') AS failed,
               COALESCE(sum(rows) FILTER (WHERE status = 'ingested'), 0) AS rows
        FROM ingested_files WHERE ingested_at IS NOT NULL GROUP BY ALL ORDER BY day""")
    conversions = _rows(conn, """
        SELECT count(*) AS files_with_conversions FROM ingested_files
        WHERE conversions IS NOT NULL AND CAST(conversions AS VARCHAR) NOT IN ('null', '[]', '{}', '')""")[0]
    tables = [{"table": t, "rows": conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]}
              for t in user_tables(conn)]
    return {
        "generated_at": dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0).isoformat() + "Z",
        "totals": totals, "by_kind": by_kind, "failure_reasons": failures, "timeline": timeline,
        "unit_conversions": conversions, "tables": tables,
    }


def render_migration_stats(stats: dict, fmt: str) -> str:
    """JSON as is; the other formats as one titled table per section."""
    import json

    from benchmark_db.output import _plain, render, to_html_table

    if fmt == "json":
        return json.dumps(stats, indent=2, default=_plain)
    sections = [("Totals", [stats["totals"]]), ("Files by kind and status", stats["by_kind"]),
                ("Failure reasons", stats["failure_reasons"]), ("Timeline", stats["timeline"]),
                ("Tables", stats["tables"])]
    parts = []
    for title, rows in sections:
        if not rows:
            body = "(none)"
        elif fmt == "html":
            body = to_html_table(rows)
        else:
            body = render(rows, fmt)
        if fmt == "markdown":
            parts.append(f"## {title}\n\n{body}")
        elif fmt == "html":
            parts.append(f"<h2>{title}</h2>\n{body}")
        else:
            parts.append(f"{title}\n{body}")
    text = "\n\n".join(parts)
    if fmt == "html":
        text = ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>Migration statistics</title></head>"
                f"<body><h1>Migration statistics</h1>\n{text}\n</body></html>")
    return text

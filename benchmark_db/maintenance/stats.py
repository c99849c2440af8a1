"""The migration report: what the ingest log says about every file brought into the database.

Files by kind and status (ingested + skipped + failed + any other status = files), success and failure rates,
the most common failure reasons, a per-day timeline, unit conversions recorded at ingest, rows per table as the
log records them and as stored now, and the row count of every table. Read-only.

`rows_logged` is the sum of the log's per-file row counts: a model or hardware platform that many files name
is counted once per file, so it is more than the tables hold (`rows_by_table` sets each table's logged figure
beside its stored one). `rows_imported`, its former name, stays in the JSON for scripts that read it.
"""
from __future__ import annotations

import datetime as dt
import json

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
               COALESCE(sum(rows) FILTER (WHERE status = 'ingested'), 0) AS rows_logged,
               COALESCE(sum(size_bytes), 0) AS bytes_seen,
               count(*) FILTER (WHERE archived_to IS NOT NULL AND archived_to <> ?) AS archived,
               count(*) FILTER (WHERE archived_to = ?) AS removed,
               min(ingested_at) AS first_ingested_at,
               max(ingested_at) AS last_ingested_at
        FROM ingested_files""", [REMOVED_MARK, REMOVED_MARK])[0]
    # statuses other than these three (none today) still count, so the parts always add up to `files`
    for row in _rows(conn, """SELECT status, count(*) AS files FROM ingested_files
                              WHERE status NOT IN ('ingested', 'skipped', 'failed') GROUP BY ALL ORDER BY status"""):
        totals[row["status"]] = row["files"]
    totals["rows_imported"] = totals["rows_logged"]  # the former name, kept for scripts (see the docstring)
    attempted = totals["ingested"] + totals["failed"]
    totals["success_rate"] = round(totals["ingested"] / attempted, 4) if attempted else None
    totals["failure_rate"] = round(totals["failed"] / attempted, 4) if attempted else None
    by_kind = _rows(conn, """
        SELECT COALESCE(kind, 'unknown') AS kind, status, count(*) AS files, COALESCE(sum(rows), 0) AS rows_logged,
               COALESCE(sum(size_bytes), 0) AS bytes
        FROM ingested_files GROUP BY ALL ORDER BY kind, status""")
    failures = _rows(conn, """
        SELECT COALESCE(reason, '(no reason recorded)') AS reason, count(*) AS files, min(path) AS example
        FROM ingested_files WHERE status = 'failed' GROUP BY ALL ORDER BY files DESC, reason LIMIT 20""")
    timeline = _rows(conn, """
        SELECT CAST(ingested_at AS DATE) AS day, count(*) AS files,
               count(*) FILTER (WHERE status = 'ingested') AS ingested,
               count(*) FILTER (WHERE status = 'failed') AS failed,
               COALESCE(sum(rows) FILTER (WHERE status = 'ingested'), 0) AS rows_logged
        FROM ingested_files WHERE ingested_at IS NOT NULL GROUP BY ALL ORDER BY day""")
    conversions = _rows(conn, """
        SELECT count(*) AS files_with_conversions FROM ingested_files
        WHERE conversions IS NOT NULL AND CAST(conversions AS VARCHAR) NOT IN ('null', '[]', '{}', '')""")[0]
    tables = [{"table": t, "rows": conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]}
              for t in user_tables(conn)]
    return {
        "generated_at": dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0).isoformat() + "Z",
        "totals": totals, "by_kind": by_kind, "rows_by_table": rows_by_table(conn, tables),
        "failure_reasons": failures, "timeline": timeline, "unit_conversions": conversions, "tables": tables,
    }


def rows_by_table(conn, tables: list[dict]) -> list[dict]:
    """Per table the ingest writes: rows the log records for it (summed over the ingested files, so a shared
    model counts once per file that names it) and rows the table holds now (after de-duplication, later
    replacements, deletions and --archive-data)."""
    logged: dict[str, int] = {}
    for (value,) in conn.execute("SELECT rows_by_table FROM ingested_files "
                                 "WHERE status = 'ingested' AND rows_by_table IS NOT NULL").fetchall():
        counts = json.loads(value) if isinstance(value, str) else value
        for table, n in (counts or {}).items():
            logged[table] = logged.get(table, 0) + int(n or 0)
    stored = {t["table"]: t["rows"] for t in tables}
    return [{"table": t, "rows_logged": n, "rows_stored": stored.get(t)} for t, n in sorted(logged.items())]


def describe_totals(totals: dict) -> str:
    """`N files (i ingested, s skipped, f failed)`: every status, so the parts add up to N."""
    fixed = ("files", "ingested", "skipped", "failed", "rows_logged", "rows_imported", "bytes_seen", "archived",
             "removed", "first_ingested_at", "last_ingested_at", "success_rate", "failure_rate")
    parts = [f"{totals.get(s, 0)} {s}" for s in ("ingested", "skipped", "failed")]
    parts += [f"{n} {s}" for s, n in totals.items() if s not in fixed]
    return f"{totals.get('files', 0)} files ({', '.join(parts)})"


def render_migration_stats(stats: dict, fmt: str) -> str:
    """JSON as is; the other formats as one titled table per section."""
    import json

    from benchmark_db.output import _plain, render, to_html_table

    if fmt == "json":
        return json.dumps(stats, indent=2, default=_plain)
    totals = {k: v for k, v in stats["totals"].items() if k != "rows_imported"}  # the JSON's former name only
    sections = [("Totals", [totals]), ("Files by kind and status", stats["by_kind"]),
                ("Rows by table (logged per file / stored now)", stats["rows_by_table"]),
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

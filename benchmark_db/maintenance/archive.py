"""Moving old fact rows out of the database into Parquet, without making them disappear from queries.

Rows of the fact tables whose `created_at` is older than the cutoff are written to one Parquet file per
table and run, the file is read back and counted, recorded in `archived_partitions`, and only then deleted
from the table, all in one transaction (a failure deletes the new file and leaves the table as it was).

They stay visible: `<table>_all` views (e.g. `performance_results_all`) are the live table UNION ALL the
archived files (read_parquet with absolute paths), and the schema's views (`benchmark_performance`,
`latest_performance_metrics`, `cross_platform_performance`, `model_hardware_compatibility`,
`integration_test_status`) are re-created over the `_all` views. The tools that read name the tables
themselves: every read-only connection (`benchmark_db.connection.connect`) gets temp views under the tables'
names that include the archive (`show_archive`), and the API, which reads through its writer, reads the
`_all` views (`read_with_archive`). No migration is needed: `archived_partitions` and the views are created here, and
`ensure_archive_views` re-creates them on every maintenance run (a later migration that redefines a view
would otherwise hide the archive; the integrity check reports that case too). Moving the archive folder
breaks the views, which the integrity check reports as views that no longer compile. Backups carry the files
`archived_partitions` names, and a restore elsewhere points the views at its copies (`relocate_archive`).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import re
from pathlib import Path

from benchmark_db import schema
from benchmark_db.connection import transaction
from benchmark_db.errors import MaintenanceError, UsageError

log = logging.getLogger("benchmark_db.maintenance")

ARCHIVED_TABLES = ("performance_results", "hardware_compatibility", "integration_test_results",
                   "web_platform_results")
ID_COLUMNS = {"performance_results": "result_id", "hardware_compatibility": "compatibility_id",
              "integration_test_results": "test_result_id", "web_platform_results": "result_id"}

CREATE_ARCHIVED_PARTITIONS = """
CREATE TABLE IF NOT EXISTS archived_partitions (
    partition_id VARCHAR PRIMARY KEY,
    table_name VARCHAR NOT NULL,
    path VARCHAR NOT NULL,
    rows BIGINT NOT NULL,
    min_created_at TIMESTAMP,
    max_created_at TIMESTAMP,
    cutoff TIMESTAMP NOT NULL,
    sha256 VARCHAR NOT NULL,
    archived_at TIMESTAMP DEFAULT (now() AT TIME ZONE 'UTC')
)"""

# Runs whose rows were replaced after some of them went to the archive (a changed file ingested again): their
# rows archived before that moment are left out of every `_all` view, as the live table's replaced rows are.
CREATE_SUPERSEDED_RUNS = """
CREATE TABLE IF NOT EXISTS archive_superseded_runs (
    run_id BIGINT NOT NULL,
    superseded_at TIMESTAMP DEFAULT (now() AT TIME ZONE 'UTC')
)"""

_FROM_FACT = re.compile(r"\bFROM\s+(" + "|".join(ARCHIVED_TABLES) + r")\b(?!_all)")


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def has_archive(conn) -> bool:
    exists = conn.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_catalog = current_database() "
        "AND table_schema = 'main' AND table_name = 'archived_partitions'").fetchone()[0]
    return bool(exists) and conn.execute("SELECT count(*) FROM archived_partitions").fetchone()[0] > 0


def _schema_view_definitions() -> dict[str, str]:
    """The latest CREATE VIEW statement of every schema view (a later migration's definition wins)."""
    views: dict[str, str] = {}
    for migration in schema.MIGRATIONS:
        for statement in migration.statements:
            match = re.search(r"CREATE\s+(?:OR\s+REPLACE\s+)?VIEW\s+(\w+)\s+AS", statement, re.I)
            if match:
                views[match.group(1)] = statement
    return views


def _table_types(conn, table: str) -> list[tuple[str, str]]:
    return conn.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_catalog = current_database() "
        "AND table_schema = 'main' AND table_name = ? ORDER BY ordinal_position", [table]).fetchall()


def _union_sql(conn, table: str, paths: list[str], live_table: str | None = None) -> str:
    """SELECT of the live rows of `table` (read from `live_table` if given) and of its archived files.

    The live row wins: an archived row whose id is back in the live table (a named run sent again) or whose
    run was replaced after its file was archived (`archive_superseded_runs`) is left out, so nothing is
    counted twice; rows the same run gets later, and archives of them, stay visible."""
    columns = _table_types(conn, table)
    live_table = live_table or table
    live = f"SELECT {', '.join(c for c, _ in columns)} FROM {live_table}"
    if not paths:
        return live
    files = f"[{', '.join(_literal(p) for p in paths)}]"
    archived_columns = {r[0] for r in conn.execute(
        f"DESCRIBE SELECT * FROM read_parquet({files}, union_by_name = true)").fetchall()}
    source = f"read_parquet({files}, union_by_name = true, filename = true)"
    def archived(column: str, kind: str) -> str:
        if column in archived_columns:
            return f"CAST(a.{column} AS {kind}) AS {column}"
        # a column added after the file was written: computed from the row where it can be (is_emulated)
        derived = schema.derived_column_sql(table, column, archived_columns, row="a")
        return f"CAST({derived or 'NULL'} AS {kind}) AS {column}"

    select = ", ".join(archived(c, t) for c, t in columns)
    id_col = ID_COLUMNS[table]
    replaced = f"EXISTS (SELECT 1 FROM {live_table} l WHERE l.{id_col} = a.{id_col})"
    if _has_table(conn, "archive_superseded_runs"):  # replaced after this file was archived, not before
        replaced += (" OR EXISTS (SELECT 1 FROM archive_superseded_runs s, archived_partitions p WHERE "
                     "p.path = a.filename AND s.run_id = a.run_id AND s.superseded_at >= p.archived_at)")
    return f"{live} UNION ALL SELECT {select} FROM {source} AS a WHERE NOT ({replaced})"


def _has_table(conn, table: str) -> bool:
    return bool(conn.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_catalog = current_database() "
        "AND table_schema = 'main' AND table_name = ?", [table]).fetchone()[0])


def supersede_runs(conn, run_ids) -> None:
    """Leave the archived rows of these runs out of the `_all` views: the ingest replaced the runs' rows.
    Call inside the writer's transaction; does nothing for a database without an archive."""
    run_ids = [r for r in run_ids if r is not None]
    if not run_ids or not has_archive(conn):
        return
    if not _has_table(conn, "archive_superseded_runs"):  # an archive made before this table existed
        ensure_archive_views(conn)  # makes it, and views that name it
    conn.executemany("INSERT INTO archive_superseded_runs (run_id) SELECT ? WHERE NOT EXISTS "
                     "(SELECT 1 FROM archive_superseded_runs WHERE run_id = ?)", [[r, r] for r in run_ids])


def _all_view_sql(conn, table: str, paths: list[str]) -> str:
    return f"CREATE OR REPLACE VIEW {table}_all AS {_union_sql(conn, table, paths)}"


def ensure_archive_views(conn) -> list[str]:
    """(Re-)create the `_all` views and the schema views over them when the database has an archive.

    Returns the views created; none when nothing was ever archived (the schema's own views stay as they are).
    """
    if not has_archive(conn):
        return []
    conn.execute(CREATE_SUPERSEDED_RUNS)  # before the views, which name it
    created = []
    for table in ARCHIVED_TABLES:
        paths = [r[0] for r in conn.execute(
            "SELECT path FROM archived_partitions WHERE table_name = ? ORDER BY partition_id", [table]).fetchall()]
        conn.execute(_all_view_sql(conn, table, paths))
        created.append(f"{table}_all")
    for view, statement in _schema_view_definitions().items():
        redirected = _FROM_FACT.sub(lambda m: f"FROM {m.group(1)}_all", statement)
        if redirected != statement:
            conn.execute(redirected)
            created.append(view)
    return created


def archive_partitions(conn) -> list[dict]:
    """Every archived Parquet file the database names: partition_id, table, path, rows, sha256 (empty when
    nothing was ever archived). Backups copy exactly these files."""
    if not _has_table(conn, "archived_partitions"):
        return []
    return [{"partition_id": pid, "table": table, "path": path, "rows": int(rows), "sha256": sha}
            for pid, table, path, rows, sha in conn.execute(
                "SELECT partition_id, table_name, path, rows, sha256 FROM archived_partitions "
                "ORDER BY partition_id").fetchall()]


def relocate_archive(conn, new_paths: dict[str, str]) -> list[str]:
    """Point archived partitions at new files (`{partition_id: absolute path}`, the same content moved, e.g. by a
    restore into another folder) and re-create the `_all` views over them, in one transaction.

    Only the `_all` views name files; the schema's views name the `_all` views, so they follow. Returns the
    views re-created."""
    created = []
    with transaction(conn):
        conn.executemany("UPDATE archived_partitions SET path = ? WHERE partition_id = ?",
                         [[str(path), pid] for pid, path in new_paths.items()])
        conn.execute(CREATE_SUPERSEDED_RUNS)
        for table in ARCHIVED_TABLES:
            if not _has_table(conn, table):
                continue
            paths = [r[0] for r in conn.execute(
                "SELECT path FROM archived_partitions WHERE table_name = ? ORDER BY partition_id",
                [table]).fetchall()]
            conn.execute(_all_view_sql(conn, table, paths))
            created.append(f"{table}_all")
    return created


def show_archive(conn) -> list[str]:
    """Make a read-only connection see archived rows under the fact tables' own names.

    Reports, analyses, the regression check and `--sql` name `performance_results` and its siblings, not the
    `_all` views. On a connection that only reads, a TEMP view named after each archived table (and one named
    after its `_all` view, so the schema's views, which read `_all`, do not count archived rows twice) reads
    the file's live rows (by their catalog-qualified name) together with the Parquet files. Temp objects
    shadow the file's tables for the connection that made them, and for nothing else. Never on a writer:
    its INSERTs must reach the tables. Archived files that are gone are left out (`check_archive_files` said
    so). Returns the tables shown with their archive.
    """
    if not has_archive(conn):
        return []
    catalog = conn.execute("SELECT current_database()").fetchone()[0].replace('"', '""')
    shown = []
    for table in ARCHIVED_TABLES:
        paths = [r[0] for r in conn.execute(
            "SELECT path FROM archived_partitions WHERE table_name = ? ORDER BY partition_id", [table]).fetchall()]
        if not paths:
            continue
        body = _union_sql(conn, table, [p for p in paths if Path(p).is_file()],
                          live_table=f'"{catalog}".main.{table}')
        conn.execute(f"CREATE OR REPLACE TEMP VIEW {table}_all AS {body}")
        conn.execute(f"CREATE OR REPLACE TEMP VIEW {table} AS {body}")
        shown.append(table)
    return shown


def read_with_archive(conn, sql: str) -> str:
    """`sql` reading the fact tables through their `_all` views when the database has an archive: for a
    writer's connection, where `show_archive` cannot be used (the API reads through its writer)."""
    return _FROM_FACT.sub(lambda m: f"FROM {m.group(1)}_all", sql) if has_archive(conn) else sql


def archive_shown(conn) -> bool:
    """Whether `show_archive` made this connection's fact tables include the archive."""
    return bool(conn.execute("SELECT count(*) FROM duckdb_views() WHERE temporary AND view_name = ?",
                             ["performance_results"]).fetchone()[0])


def views_missing_archive(conn) -> list[str]:
    """Schema views that should read the archive but do not (a later migration redefined them)."""
    if not has_archive(conn):
        return []
    missing = []
    for view, statement in _schema_view_definitions().items():
        if not _FROM_FACT.search(statement):
            continue
        row = conn.execute("SELECT sql FROM duckdb_views() WHERE database_name = current_database() "
                           "AND view_name = ?", [view]).fetchone()
        if row and not re.search(r"\b(" + "|".join(ARCHIVED_TABLES) + r")_all\b", row[0]):
            missing.append(view)
    return missing


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def archive_old_rows(conn, older_than_days: float, archive_dir: str | os.PathLike, *, dry_run: bool = False,
                     now: dt.datetime | None = None) -> dict:
    """Move fact rows created more than `older_than_days` ago into Parquet files under `archive_dir`."""
    if older_than_days is None or older_than_days < 0:
        raise UsageError("--older-than must be a number of days >= 0", "e.g. --older-than 90")
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    cutoff = now - dt.timedelta(days=older_than_days)
    folder = Path(archive_dir).resolve()
    present = {r[0] for r in conn.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_catalog = current_database() "
        "AND table_schema = 'main'").fetchall()}
    counts = {}
    for table in ARCHIVED_TABLES:
        if table in present:
            counts[table] = conn.execute(f"SELECT count(*) FROM {table} WHERE created_at < ?",
                                         [cutoff]).fetchone()[0]
    # rows without a created_at have no age and are never archived: counted, so the summary says they stay
    undated = {table: conn.execute(f"SELECT count(*) FROM {table} WHERE created_at IS NULL").fetchone()[0]
               for table in counts}
    result = {"step": "archive-data", "dry_run": dry_run, "cutoff": cutoff.isoformat(), "archive_dir": str(folder),
              "rows": counts, "files": [], "undated": {t: n for t, n in undated.items() if n}}
    _require_archive_files(conn)
    if dry_run:
        return result
    folder.mkdir(parents=True, exist_ok=True)  # exists after every real run, even one with nothing to move
    _remove_uncommitted(conn, folder)
    if not any(counts.values()):
        ensure_archive_views(conn)
        return result
    stamp = f"{now:%Y%m%dT%H%M%SZ}"
    remove_dead_partials(folder, f"*/.*.parquet.*{PARTIAL_SUFFIX}", "archive-data")
    written: list[Path] = []
    try:
        with transaction(conn):
            conn.execute(CREATE_ARCHIVED_PARTITIONS)
            renames: list[tuple[Path, Path]] = []
            for table, rows in counts.items():
                if not rows:
                    continue
                (folder / table).mkdir(exist_ok=True)
                path = folder / table / f"{table}-before-{cutoff:%Y%m%d}-{stamp}.parquet"
                n = 1
                while path.exists():
                    path = folder / table / f"{table}-before-{cutoff:%Y%m%d}-{stamp}-{n}.parquet"
                    n += 1
                # Written under a partial name and given its real name just before the commit: a run killed
                # before that leaves no .parquet that looks archived but that no database names (the next
                # run removes the partial); the rows stay in the table.
                partial = partial_path(path)
                written += [partial, path]
                conn.execute(f"COPY (SELECT * FROM {table} WHERE created_at < ? ORDER BY created_at) "
                             f"TO {_literal(str(partial))} (FORMAT PARQUET, COMPRESSION ZSTD)", [cutoff])
                back, low, high = conn.execute(
                    f"SELECT count(*), min(created_at), max(created_at) FROM read_parquet({_literal(str(partial))})"
                ).fetchone()
                if back != rows:
                    raise RuntimeError(f"{path} holds {back} rows, expected {rows}")
                conn.execute("INSERT INTO archived_partitions (partition_id, table_name, path, rows, min_created_at, "
                             "max_created_at, cutoff, sha256) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                             [path.stem, table, str(path), rows, low, high, cutoff, _sha256(partial)])
                id_col = ID_COLUMNS[table]
                conn.execute(f"DELETE FROM {table} WHERE created_at < ? AND {id_col} IN "
                             f"(SELECT {id_col} FROM read_parquet({_literal(str(partial))}))", [cutoff])
                renames.append((partial, path))
                result["files"].append(str(path))
                log.info("archive-data: moved %d rows of %s to %s", rows, table, path)
            # the files get their real names before the commit (the views need them), so a run killed from
            # here to the commit left .parquet files no database names; the journal lets the next run remove them
            journal = folder / f"{JOURNAL_PREFIX}{os.getpid()}{JOURNAL_SUFFIX}"
            written.append(journal)
            journal.write_text(json.dumps({"database": _database_file(conn),
                                           "files": [str(path) for _, path in renames]}), encoding="utf-8")
            for partial, path in renames:
                os.replace(partial, path)
            ensure_archive_views(conn)
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    journal.unlink(missing_ok=True)
    return result


def missing_archive_files(conn) -> list[str]:
    """The archived Parquet files the database names that are not there (moved, deleted): a read of the fact
    tables without them is incomplete."""
    return [p["path"] for p in archive_partitions(conn) if not Path(p["path"]).is_file()]


def _missing_text(missing: list[str]) -> str:
    """`N archived Parquet file(s) are missing (a, b, c and 2 more)`."""
    names = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
    return f"{len(missing)} archived Parquet file(s) are missing ({names})"


def missing_archive_error(conn, db: str):
    """The ArchiveMissingError (DB004) naming the archived Parquet files the database names that are gone, or
    None when every one is there."""
    from benchmark_db.errors import ArchiveMissingError

    missing = missing_archive_files(conn)
    if not missing:
        return None
    return ArchiveMissingError(f"{db}: {_missing_text(missing)}: the answer would leave out their rows",
                               "put the archive folder back where the database expects it "
                               "(benchmark_db_maintenance.py --check-integrity lists the files), or pass "
                               "--allow-missing-archive to use the rows still in the database")


def check_archive_files(conn, db: str, missing_archive: str = "warn") -> None:
    """For a reader (connect() calls it): when archived files the database names are gone, DB004 with
    `missing_archive="error"` (the tools that answer from results, as the answer would silently leave their
    rows out), else one warning; `show_archive` then reads the files still there."""
    if missing_archive not in ("warn", "error"):
        raise ValueError(f"missing_archive must be 'warn' or 'error', not {missing_archive!r}")
    if missing_archive == "error":
        error = missing_archive_error(conn, db)
        if error is not None:
            raise error
    elif missing := missing_archive_files(conn):
        log.warning("%s: %s: the answer leaves out their rows", db, _missing_text(missing))


def _require_archive_files(conn) -> None:
    """Fail before anything is written when an archived file the database names is gone: the views over the
    archive cannot be re-created, and the step used to move rows and then fail with DuckDB's multi-line
    "IO Error: No files found that match the pattern ... LINE 1: DESCRIBE ..." as its summary."""
    missing = missing_archive_files(conn)
    if missing:
        raise MaintenanceError(
            _missing_text(missing),
            "put the archive folder back where the database expects it (--check-integrity lists every missing "
            "file); nothing was archived")


JOURNAL_PREFIX = ".archive-"
JOURNAL_SUFFIX = ".pending.json"


def _database_file(conn) -> str:
    row = conn.execute("SELECT path FROM duckdb_databases() WHERE database_name = current_database()").fetchone()
    return str(Path(row[0]).resolve()) if row and row[0] else ""


def _remove_uncommitted(conn, folder: Path) -> None:
    """Remove the Parquet files of an archive run of this database that was killed after naming them and
    before its commit: no database names them, and their rows are still in the tables."""
    database = None
    for journal in folder.glob(f"{JOURNAL_PREFIX}*{JOURNAL_SUFFIX}"):
        pid = journal.name.removeprefix(JOURNAL_PREFIX).removesuffix(JOURNAL_SUFFIX)
        if not pid.isdigit() or _alive(int(pid)):
            continue
        try:
            entry = json.loads(journal.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        database = database if database is not None else _database_file(conn)
        if not isinstance(entry, dict) or entry.get("database") != database:
            continue  # another database's run (the folder may be shared): its next run cleans up
        named = {p["path"] for p in archive_partitions(conn)}
        for name in entry.get("files") or []:
            path = Path(str(name))
            if str(path) not in named and path.resolve().is_relative_to(folder):
                log.warning("archive-data: removing %s, written by an interrupted run that did not commit "
                            "(its rows are still in the table)", path)
                path.unlink(missing_ok=True)
        journal.unlink(missing_ok=True)


PARTIAL_SUFFIX = ".partial"


def partial_path(path: Path) -> Path:
    """Where `path` is written until it is whole: a hidden name carrying this process's id."""
    return path.with_name(f".{path.name}.{os.getpid()}{PARTIAL_SUFFIX}")


def remove_dead_partials(folder: Path, pattern: str, step: str) -> None:
    """Delete the partial files (`partial_path`) matching `pattern` in `folder` whose writing process is gone;
    the folder may be shared with other databases, so a file whose writer still runs is left alone."""
    for partial in folder.glob(pattern):
        pid = partial.name.removesuffix(PARTIAL_SUFFIX).rsplit(".", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            log.info("%s: removing %s, left by an interrupted run", step, partial)
            partial.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # this run has written nothing yet
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True

#!/usr/bin/env python3
"""Merge the artifacts of parallel CI benchmark jobs (DuckDB, Parquet, JSON) into one database.

    python scripts/ci_benchmark_integrator.py --artifacts-dir ./artifacts --db ./benchmark_db.duckdb --commit 123abc --branch main
    python scripts/ci_benchmark_integrator.py --artifacts-dir ./artifacts --db ./benchmark_db.duckdb --ci-metadata ./ci_metadata.json
    python scripts/ci_benchmark_integrator.py --artifacts-dir ./artifacts --db ./benchmark_db.duckdb --archive-artifacts --archive-dir ./archived_artifacts

Every .duckdb artifact is merged table by table by primary key (ids are hashes of natural keys, so the jobs'
rows never clash), every .parquet artifact named after its table likewise, and every .json artifact goes
through the ingest engine. Runs new to the database get the git commit and branch where they have none and
the CI information in test_runs.metadata.ci: workflow, run id, the artifact's path under --artifacts-dir (its
job folder is what names the job) and the pipeline's commit and branch as `pipeline_commit`/`pipeline_branch`
(a run's own git_commit is never replaced: the pipeline may have built another commit than the one a job
measured). Running it twice on the same artifacts adds nothing. It prints one line per artifact with the rows
it added; a failed artifact is a finding, not a usage error: `failed: ARTIFACT: reason` on stderr, the others
still merge, exit 1.
"""
from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import logging
import os
import re
import shutil
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmark_db.cli import add_common_options, add_db_option, add_output_options, run_cli, write_text
from benchmark_db.errors import EXIT_FINDING, BenchmarkDBError, UsageError, is_interrupt

log = logging.getLogger("benchmark_db.ci")

ARTIFACT_SUFFIXES = {".duckdb": "duckdb", ".parquet": "parquet", ".json": "json"}
ARTIFACT_KIND = {"duckdb": "ci-artifact-duckdb", "parquet": "ci-artifact-parquet"}
# report columns: table -> short name
REPORT_TABLES = {"models": "models", "hardware_platforms": "hardware", "test_runs": "runs",
                 "performance_results": "performance", "hardware_compatibility": "compatibility",
                 "integration_test_results": "integration", "web_platform_results": "web"}
# in metadata.ci these keys are renamed: read as "commit" next to a run's own git_commit, the pipeline's
# commit passed for the run's
CI_CONTEXT_KEYS = {"commit": "pipeline_commit", "branch": "pipeline_branch"}
# columns naming a row of another table, and that table's key: a Parquet artifact of one table whose rows
# point nowhere merges (its parents may come in another artifact) but leaves orphans unless they do
PARENT_KEYS = {"run_id": ("test_runs", "run_id"), "model_id": ("models", "model_id"),
               "hardware_id": ("hardware_platforms", "hardware_id")}
CI_ENV = {"commit": "GITHUB_SHA", "branch": "GITHUB_REF_NAME", "workflow": "GITHUB_WORKFLOW",
          "run_id": "GITHUB_RUN_ID", "run_attempt": "GITHUB_RUN_ATTEMPT", "repository": "GITHUB_REPOSITORY",
          "event": "GITHUB_EVENT_NAME"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ci_benchmark_integrator.py", description=__doc__.splitlines()[0])
    parser.add_argument("--artifacts-dir", required=True, metavar="DIR",
                        help="folder holding the jobs' artifacts (searched recursively for .duckdb, .parquet, .json)")
    add_db_option(parser, "database to merge into, created if missing (default: $BENCHMARK_DB_PATH, "
                          "else ./benchmark_db.duckdb)")
    parser.add_argument("--commit", default=None, help="git commit for runs that have none (default: from "
                                                       "--ci-metadata, else $GITHUB_SHA in GitHub Actions)")
    parser.add_argument("--branch", default=None, help="git branch for runs that have none (default: from "
                                                       "--ci-metadata, else $GITHUB_REF_NAME in GitHub Actions)")
    parser.add_argument("--ci-metadata", metavar="FILE", default=None,
                        help="JSON file with commit, branch, workflow, run_id (and anything else to record)")
    parser.add_argument("--archive-artifacts", action="store_true",
                        help="move processed artifacts into --archive-dir afterwards (failed ones stay)")
    parser.add_argument("--archive-dir", default="./archived_artifacts", metavar="DIR",
                        help="where --archive-artifacts moves them, under a UTC timestamp (default: %(default)s)")
    parser.add_argument("--dry-run", action="store_true", help="list the artifacts and their kinds; merge nothing")
    add_output_options(parser, formats=("table", "json", "csv", "markdown"),
                       output_help="write the merge report to FILE instead of stdout")
    add_common_options(parser)
    return parser


def load_ci_metadata(path: str | None, commit: str | None = None, branch: str | None = None,
                     environ: dict | None = None) -> dict:
    """CI information: the file's keys, then --commit/--branch over them, GitHub's variables filling gaps."""
    meta: dict = {}
    if path:
        try:
            loaded = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise UsageError(f"CI metadata file {path} does not exist", "pass an existing JSON file") from exc
        except (OSError, ValueError) as exc:
            raise UsageError(f"cannot read CI metadata {path}: {exc}", "pass a JSON object") from exc
        if not isinstance(loaded, dict):
            raise UsageError(f"CI metadata {path} is not a JSON object", 'e.g. {"commit": "abc", "branch": "main"}')
        meta.update({k: v for k, v in loaded.items() if v is not None})
        for alias, key in (("git_commit", "commit"), ("sha", "commit"), ("git_branch", "branch"), ("ref", "branch")):
            if alias in meta and key not in meta:
                meta[key] = meta[alias]
    if commit:
        meta["commit"] = commit
    if branch:
        meta["branch"] = branch
    env = os.environ if environ is None else environ
    if env.get("GITHUB_ACTIONS") == "true":
        for key, var in CI_ENV.items():
            if key not in meta and env.get(var):
                meta[key] = env[var]
    meta = {k: (str(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v) for k, v in meta.items()}
    for key in ("commit", "branch"):  # they fill test_runs.git_commit/git_branch: a list or object there crashed
        if key in meta and not isinstance(meta[key], str):
            raise UsageError(f"CI metadata {path}: {key} must be a string, not {json.dumps(meta[key])}",
                             'e.g. {"commit": "abc", "branch": "main"}')
    return meta


def discover_artifacts(artifacts_dir: str | os.PathLike, exclude: list[Path] | None = None,
                       exclude_dirs: list[Path] | None = None) -> list[tuple[Path, str]]:
    """(path, kind) of every artifact under the folder, in a stable order; the target database and anything
    under `exclude_dirs` (the --archive-dir, which may lie inside the artifacts folder) excluded."""
    root = Path(artifacts_dir)
    if not root.is_dir():
        raise UsageError(f"artifacts folder {root} does not exist", "pass the folder the CI jobs' artifacts were "
                                                                   "downloaded to")
    excluded = {p.resolve() for p in exclude or []}
    excluded_dirs = [Path(d).resolve() for d in exclude_dirs or []]
    found = []
    for path in sorted(root.rglob("*")):
        kind = ARTIFACT_SUFFIXES.get(path.suffix.lower())
        # artifacts archived by an earlier run are done: merged again they were logged twice, tagged again and
        # moved into a nested archive every run
        if kind and path.is_file() and path.resolve() not in excluded and not any(
                path.resolve().is_relative_to(d) for d in excluded_dirs):
            found.append((path, kind))
    return found


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _already_merged(conn, path: Path, sha: str) -> bool:
    row = conn.execute("SELECT sha256, status FROM ingested_files WHERE path = ?", [str(path.resolve())]).fetchone()
    return bool(row) and row[0] == sha and row[1] == "ingested"


def _log_artifact(conn, path: Path, sha: str, kind: str, status: str, reason: str | None,
                  added: dict[str, int]) -> None:
    # DELETE + INSERT in the caller's transaction, not INSERT OR REPLACE: the ingest log has no primary key
    conn.execute("DELETE FROM ingested_files WHERE path = ?", [str(path.resolve())])
    conn.execute(
        "INSERT INTO ingested_files (path, sha256, size_bytes, kind, status, reason, rows, rows_by_table, "
        "ingested_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, now() AT TIME ZONE 'UTC')",
        [str(path.resolve()), sha, path.stat().st_size, ARTIFACT_KIND[kind], status, reason,
         sum(added.values()), json.dumps(added, sort_keys=True)])


def _artifact_run_ids(path: Path) -> list[int]:
    """The run ids a DuckDB artifact holds (none when it has no test_runs)."""
    import duckdb

    from benchmark_db.connection import connect

    try:
        source = connect(str(path), read_only=True, migrate=False)
    except BenchmarkDBError:
        return []
    try:
        return [r[0] for r in source.execute("SELECT run_id FROM test_runs").fetchall()]
    except duckdb.Error:
        return []
    finally:
        source.close()


def _tag_new_runs(conn, meta: dict, artifact: str | None, source_sha256: str | None = None,
                  untagged: list[int] | None = None) -> int:
    """Give runs not seen before this artifact the git and CI information; return how many.

    With `source_sha256`, only the new runs converted from that document (one of several ingested together).
    `untagged`: run ids of the artifact that also get it when they carry no CI information yet (a run killed
    after the merge committed and before the tagging left them so; the re-run saw them as known).
    """
    only_source = " WHERE source_sha256 = ?" if source_sha256 else ""
    new = [r[0] for r in conn.execute(
        "SELECT run_id FROM test_runs ANTI JOIN _ci_known_runs USING (run_id)" + only_source,
        [source_sha256] if source_sha256 else []).fetchall()]
    if untagged:
        new += [r[0] for r in conn.execute(
            "SELECT run_id FROM test_runs WHERE run_id IN (SELECT unnest(?::BIGINT[])) "
            "AND json_extract(COALESCE(metadata, '{}'::JSON), '$.ci') IS NULL", [untagged]).fetchall()
                if r[0] not in new]
    if not new:
        return 0
    ci = {CI_CONTEXT_KEYS.get(k, k): v for k, v in meta.items()}
    if artifact:
        ci["artifact"] = artifact
    patch = json.dumps({"ci": ci}, sort_keys=True)
    conn.execute("CREATE OR REPLACE TEMP TABLE _ci_new_runs AS SELECT unnest(?::BIGINT[]) AS run_id", [new])
    conn.execute(
        "UPDATE test_runs SET git_commit = COALESCE(git_commit, ?), git_branch = COALESCE(git_branch, ?), "
        "metadata = json_merge_patch(COALESCE(metadata, '{}'::JSON), ?::JSON) "
        "WHERE run_id IN (SELECT run_id FROM _ci_new_runs)", [meta.get("commit"), meta.get("branch"), patch])
    conn.execute("INSERT INTO _ci_known_runs SELECT run_id FROM _ci_new_runs")
    return len(new)


def _artifact_name(path: Path, root: Path) -> str:
    """The artifact as the report and metadata.ci name it: its path under the artifacts folder, because the
    job folder (`job-bert-cpu/benchmark.duckdb`) is the only thing that tells the jobs' files apart."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _reason(exc: BaseException) -> str:
    """The reason column's text: the message and hint without the `error DB00N:` prefixes (the column read
    "error DB003: ... error DB003: ..." with the stderr summary)."""
    text = f"{exc.message}; {exc.hint}" if isinstance(exc, BenchmarkDBError) and exc.hint else (
        exc.message if isinstance(exc, BenchmarkDBError) else str(exc))
    return re.sub(r"\berror DB\d{3}: ", "", text)


def _report_row(path: Path, root: Path, kind: str, status: str, added: dict[str, int], tagged: int = 0,
                reason: str | None = None) -> dict:
    row = {"artifact": _artifact_name(path, root), "kind": kind, "status": status}
    for table, short in REPORT_TABLES.items():
        row[short] = added.get(table, 0)
    row["other"] = sum(v for t, v in added.items() if t not in REPORT_TABLES)
    row["runs_tagged"] = tagged
    row["reason"] = reason or ""
    return row


def _ingest_and_tag_json(conn, paths: list[Path], root: Path, meta: dict, quiet: bool) -> list[dict]:
    """Ingest the JSON artifacts and tag their new runs in one transaction; one report row per artifact.

    Committed apart, a process killed after the ingest left runs that no re-run tagged: it found the files
    ingested and skipped them. The ORM's transaction nests, so the engine's batch commits join this one."""
    from benchmark_db_models import BenchmarkDB

    db = BenchmarkDB(conn=conn)
    report = []
    try:
        with db.transaction():
            for path, (status, added, reason, sha) in _ingest_json(db, paths, quiet).items():
                tagged = _tag_new_runs(conn, meta, _artifact_name(path, root), sha) if status == "merged" and sha else 0
                report.append(_report_row(path, root, "json", status, added, tagged, reason))
            _tag_new_runs(conn, meta, None)  # runs a document produced without naming its source
    except BenchmarkDBError as exc:  # rolled back whole: every file fails and the next run takes them again
        return [_report_row(p, root, "json", "failed", {}, reason=_reason(exc)) for p in paths]
    return report


def _ingest_json(db, paths: list[Path], quiet: bool) -> dict[Path, tuple[str, dict, str | None, str | None]]:
    """Ingest JSON artifacts through the ingest engine: {path: (status, rows added per table, reason, sha256)}."""
    from benchmark_db.ingest import DEFAULT_BATCH_SIZE, ingest_files

    # one batch: inside the caller's transaction the engine's closing CHECKPOINT (after several batches)
    # would fail, as DuckDB refuses to checkpoint a transaction with changes
    summary = ingest_files(db, [str(p) for p in paths], quiet=quiet, batch_size=max(DEFAULT_BATCH_SIZE, len(paths)))
    by_path = {Path(o.path).resolve(): o for o in summary.outcomes}
    result = {}
    for p in paths:
        outcome = by_path.get(p.resolve())
        if outcome is None:
            result[p] = ("failed", {}, "the ingest engine did not report on this file", None)
            continue
        status = {"ingested": "merged", "unchanged": "unchanged"}.get(outcome.status, outcome.status)
        rows = dict(outcome.rows_by_table) if outcome.status == "ingested" else {}
        reason = re.sub(r"\berror DB\d{3}: ", "", outcome.reason) if outcome.reason else outcome.reason
        result[p] = (status, rows, reason, outcome.sha256)
    return result


def integrate_artifacts(conn, artifacts_dir: str | os.PathLike, *, meta: dict | None = None,
                        db_path: str | None = None, dry_run: bool = False, quiet: bool = True,
                        archive_dir: str | os.PathLike | None = None) -> list[dict]:
    """Merge every artifact under `artifacts_dir` into `conn`'s database; one report row per artifact.

    Status per artifact: merged (something was added or it was new), unchanged (already merged, same
    content), skipped (not a table this toolkit knows), failed (with the reason; the others still merge).
    """
    from benchmark_db.lake import write_lock
    from benchmark_db.merge import merge_database, merge_parquet, table_for_parquet

    meta = meta or {}
    root = Path(artifacts_dir)
    exclude = [Path(db_path)] if db_path and db_path != ":memory:" else []
    artifacts = discover_artifacts(root, exclude, [Path(archive_dir)] if archive_dir else None)
    if dry_run:
        return [_report_row(p, root, kind, "would merge", {}) for p, kind in artifacts]
    report = []
    # on a lake, two integrators on the same artifacts would both find them unmerged and log them twice
    with write_lock(conn):
        conn.execute("CREATE OR REPLACE TEMP TABLE _ci_known_runs AS SELECT run_id FROM test_runs")
        merged_parquet: list[tuple[Path, str, dict]] = []
        try:
            for path, kind in artifacts:
                if kind == "json":
                    continue
                sha = _sha256(path)
                if _already_merged(conn, path, sha):
                    report.append(_report_row(path, root, kind, "unchanged", {}))
                    continue
                # read before the merge attaches the file; runs an older version left untagged get tagged too
                run_ids = _artifact_run_ids(path) if kind == "duckdb" else None
                tagged = [0]

                def log_and_tag(added, path=path, sha=sha, kind=kind, run_ids=run_ids, tagged=tagged):
                    # in the merge's transaction: a re-run finds rows, log row and tags all done or none
                    _log_artifact(conn, path, sha, kind, "ingested", None, added)
                    tagged[0] = _tag_new_runs(conn, meta, _artifact_name(path, root), untagged=run_ids)
                try:
                    if kind == "duckdb":
                        added = merge_database(conn, path, then=log_and_tag)
                    elif table_for_parquet(path) is None:
                        report.append(_report_row(path, root, kind, "skipped", {},
                                                  reason="not named after a table (e.g. performance_results.parquet)"))
                        continue
                    else:
                        added = merge_parquet(conn, path, then=log_and_tag)
                except BenchmarkDBError as exc:
                    log.error("%s: %s", path, _reason(exc))
                    report.append(_report_row(path, root, kind, "failed", {}, reason=_reason(exc)))
                    continue
                except Exception as exc:  # duckdb.Error while reading rows (wrong column types, a damaged block):
                    # the merge's transaction was rolled back; this artifact fails alone, the others still merge
                    if is_interrupt(exc):  # Ctrl-C inside the merge stops the run
                        raise
                    reason = f"cannot merge it: {type(exc).__name__}: {str(exc).splitlines()[0]}"
                    log.error("%s: %s", path, reason)
                    report.append(_report_row(path, root, kind, "failed", {}, reason=reason))
                    continue
                report.append(_report_row(path, root, kind, "merged", added, tagged[0],
                                          reason=added.kept_note() or None))
                if kind == "parquet":
                    merged_parquet.append((path, table_for_parquet(path), report[-1]))
                log.info("%s: added %d rows", path, sum(added.values()))
            json_paths = [p for p, kind in artifacts if kind == "json"]
            if json_paths:
                report += _ingest_and_tag_json(conn, json_paths, root, meta, quiet)
            # after every artifact: a folder's test_runs.parquet sorts after its performance_results.parquet
            for path, table, row in merged_parquet:
                _warn_dangling_rows(conn, path, table, row)
        finally:
            conn.execute("DROP TABLE IF EXISTS _ci_known_runs")
            conn.execute("DROP TABLE IF EXISTS _ci_new_runs")
    return report


def _warn_dangling_rows(conn, path: Path, table: str, row: dict) -> None:
    """Warn (log and the report's reason) about rows of a merged Parquet artifact whose run, model or hardware
    id is in no table of the database: only performance_results.parquet merged, `--check-integrity` then
    found orphans that the merge had reported as a clean success."""
    literal = str(path.resolve()).replace("'", "''")
    columns = {d[0] for d in conn.execute(f"DESCRIBE SELECT * FROM read_parquet('{literal}')").fetchall()}
    checks = [(col, parent, key) for col, (parent, key) in PARENT_KEYS.items()
              if col in columns and parent != table]
    if not checks:
        return
    missing = " OR ".join(f'(s."{col}" IS NOT NULL AND s."{col}" NOT IN (SELECT "{key}" FROM "{parent}" '
                          f'WHERE "{key}" IS NOT NULL))' for col, parent, key in checks)
    dangling = conn.execute(f"SELECT count(*) FROM read_parquet('{literal}') AS s WHERE {missing}").fetchone()[0]
    if not dangling:
        return
    names = "/".join(col.removesuffix("_id") for col, _parent, _key in checks)
    text = (f"{dangling} row(s) name a {names} id that no table holds (merge its "
            f"{', '.join(sorted({p for _c, p, _k in checks}))} too, or --check-integrity reports them as orphans)")
    log.warning("%s: %s", path, text)
    row["reason"] = f"{row['reason']}; {text}" if row["reason"] else text


def archive_artifacts(report: list[dict], artifacts_dir: str | os.PathLike, archive_dir: str | os.PathLike,
                      conn=None, now: dt.datetime | None = None) -> list[str]:
    """Move the artifacts that were merged or already present into archive_dir/<UTC stamp>/; return targets."""
    now = now or dt.datetime.now(dt.UTC)
    root = Path(artifacts_dir)
    target_root = Path(archive_dir) / now.strftime("%Y%m%dT%H%M%SZ")
    moved = []
    for row in report:
        if row["status"] not in ("merged", "unchanged"):
            continue
        source = root / row["artifact"]
        if not source.is_file():
            continue
        target = target_root / row["artifact"]
        target.parent.mkdir(parents=True, exist_ok=True)
        # logged before the move: a run killed in between leaves the artifact in place (the next run archives
        # it); logged after, the artifact sat in the archive with archived_to never set
        if conn is not None:
            conn.execute("UPDATE ingested_files SET archived_to = ? WHERE path = ?",
                         [str(target.resolve()), str(source.resolve())])
        try:
            shutil.move(str(source), str(target))
            # the write-ahead log belongs to the file: left behind, the archived copy lacked the rows the merge
            # had read from it, and an orphan .wal stayed in the artifacts folder
            wal = source.with_name(source.name + ".wal")
            if wal.is_file():
                shutil.move(str(wal), str(target.with_name(target.name + ".wal")))
        except BaseException:
            if conn is not None and source.is_file():
                conn.execute("UPDATE ingested_files SET archived_to = NULL WHERE path = ?", [str(source.resolve())])
            raise
        moved.append(str(target))
    return moved


def run(args) -> int:
    from benchmark_db.cli import resolve_format
    from benchmark_db.connection import connect, resolve_db_path
    from benchmark_db.output import render

    meta = load_ci_metadata(args.ci_metadata, args.commit, args.branch)
    path = resolve_db_path(args.db)
    discover_artifacts(args.artifacts_dir)  # a missing folder is a usage error before the database is touched
    if args.archive_artifacts and not args.dry_run:
        try:  # before merging: a folder under a file ended the run in "unexpected NotADirectoryError" after it
            Path(args.archive_dir).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"cannot make --archive-dir {args.archive_dir}: {exc.strerror or exc}",
                             "pass a folder that can be created and written") from exc
    with_conn = connect(path, lock_timeout=args.lock_timeout) if not args.dry_run else None
    try:
        if args.dry_run:
            from benchmark_db.connection import MEMORY

            with_conn = connect(MEMORY)
        report = integrate_artifacts(with_conn, args.artifacts_dir, meta=meta, db_path=path, dry_run=args.dry_run,
                                     quiet=args.quiet, archive_dir=args.archive_dir)
        if args.archive_artifacts and not args.dry_run:
            moved = archive_artifacts(report, args.artifacts_dir, args.archive_dir, with_conn)
            log.info("archived %d artifact(s) under %s", len(moved), args.archive_dir)
    finally:
        with_conn.close()
    fmt = resolve_format(args.format, args.output, args.output_formats)
    write_text(render(report, fmt) if report else "(no artifacts found)\n", args.output)
    totals = {"merged": 0, "unchanged": 0, "skipped": 0, "failed": 0}
    for row in report:
        totals[row["status"]] = totals.get(row["status"], 0) + 1
    added = sum(sum(v for k, v in row.items() if k in REPORT_TABLES.values() or k == "other") for row in report)
    log.info("%d artifact(s): %s; %d rows added; CI metadata %s", len(report),
             ", ".join(f"{v} {k}" for k, v in totals.items() if v) or "none", added, json.dumps(meta, sort_keys=True))
    if totals["failed"]:
        # a finding (exit 1), as benchmark_db_migration.py reports failed files, not an error line: the run itself
        # worked and the other artifacts are merged
        for row in report:
            if row["status"] == "failed":
                print(f"failed: {row['artifact']}: {row['reason']}", file=sys.stderr)
        print(f"{totals['failed']} artifact(s) could not be merged", file=sys.stderr)
        return EXIT_FINDING
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_cli(build_parser(), run, argv)


if __name__ == "__main__":
    raise SystemExit(main())

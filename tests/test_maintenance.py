"""benchmark_db_maintenance.py and benchmark_db.maintenance: real database files in tmp_path, no mocks."""
from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

import benchmark_db_maintenance as maintenance_cli
from benchmark_db.connection import connect
from benchmark_db.errors import MaintenanceError, UsageError
from benchmark_db.maintenance import archive, backup, clean_json, integrity, optimize, stats
from benchmark_db.maintenance.checksums import table_checksums

NOW = dt.datetime(2026, 6, 1, 12, 0, 0)


def checksums_of(path) -> dict:
    conn = duckdb.connect(str(path), read_only=True)
    try:
        return table_checksums(conn)
    finally:
        conn.close()


def sha256(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# -- backup and restore ---------------------------------------------------------------------------------


def backed_up(db_path: str, folder: Path, **options) -> dict:
    """`backup.create_backup` of `db_path` into `folder` on a connection of its own."""
    conn = connect(db_path)
    try:
        return backup.create_backup(conn, db_path, folder, **options)
    finally:
        conn.close()

@pytest.mark.slow  # over 0.35 s here: outside make test-fast
@pytest.mark.parametrize("compress", [False, True])
def test_backup_then_restore_gives_identical_counts_and_checksums(sample_db_path, tmp_path, compress):
    before = checksums_of(sample_db_path)
    assert before["performance_results"]["rows"] > 300
    result = backed_up(sample_db_path, tmp_path / "bk", compress=compress)
    stored = Path(result["backup"])
    assert stored.name.endswith(".duckdb.gz" if compress else ".duckdb")
    manifest = json.loads(Path(result["manifest"]).read_text())
    assert manifest["tables"] == before
    assert manifest["sha256"] == sha256(stored)
    restored = tmp_path / "restored.duckdb"
    out = backup.restore_backup(stored, restored)
    assert out["verified"] and out["tables"] == len(before)
    assert checksums_of(restored) == before


@pytest.mark.parametrize("compress", [False, True])
def test_a_backup_with_one_flipped_byte_is_refused(sample_db_path, tmp_path, compress):
    result = backed_up(sample_db_path, tmp_path / "bk", compress=compress)
    stored = Path(result["backup"])
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0x01
    stored.write_bytes(bytes(data))
    target = tmp_path / "restored.duckdb"
    with pytest.raises(MaintenanceError, match="damaged"):
        backup.restore_backup(stored, target)
    assert not target.exists()
    assert not list(tmp_path.glob(".restored.duckdb.restore-*"))
    code = maintenance_cli.main(["--restore", str(stored), "--db", str(target)])
    assert code == 1 and not target.exists()


def test_restore_refuses_a_manifest_whose_tables_do_not_match(sample_db_path, tmp_path):
    result = backed_up(sample_db_path, tmp_path / "bk")
    manifest_path = Path(result["manifest"])
    manifest = json.loads(manifest_path.read_text())
    manifest["tables"]["performance_results"]["rows"] += 1
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(MaintenanceError, match="performance_results has") as caught:
        backup.restore_backup(result["backup"], tmp_path / "restored.duckdb")
    # a restore keeps nothing: it says so, not "the backup was not kept" (the backup's own wording)
    assert "refusing to restore" in str(caught.value) and "backup was not kept" not in str(caught.value)
    assert not (tmp_path / "restored.duckdb").exists()


def test_restore_never_overwrites_without_force(sample_db_path, tmp_path, capsys):
    conn = connect(sample_db_path)
    try:
        result = backup.create_backup(conn, sample_db_path, tmp_path / "bk", compress=True)
        conn.execute("DELETE FROM performance_results")
    finally:
        conn.close()
    code = maintenance_cli.main(["--restore", result["manifest"], "--db", sample_db_path])
    assert code == 2 and "already exists" in capsys.readouterr().err
    capsys.readouterr()
    assert maintenance_cli.main(["--restore", result["manifest"], "--db", sample_db_path, "--force"]) == 0
    assert checksums_of(sample_db_path)["performance_results"]["rows"] > 300
    said = capsys.readouterr().err
    assert "tables verified)" in said and "None" not in said  # no archive: not '0 archive file(s) in None'


@pytest.mark.slow  # over 0.35 s here: outside make test-fast
def test_restore_to_a_new_path_ignores_a_stale_wal_left_there(sample_db_path, tmp_path):
    result = backed_up(sample_db_path, tmp_path / "bk")
    before = checksums_of(sample_db_path)
    # a crashed writer left a WAL (deleting every result); the user deleted the broken file, kept the WAL
    crashed = tmp_path / "crashed.duckdb"
    crashed.write_bytes(Path(sample_db_path).read_bytes())
    code = ("import duckdb, os, sys; c = duckdb.connect(sys.argv[1]); "
            "c.execute(\"SET checkpoint_threshold = '1TB'\"); c.execute('DELETE FROM performance_results'); "
            "os._exit(0)")
    subprocess.run([sys.executable, "-c", code, str(crashed)], check=True)
    wal = Path(str(crashed) + ".wal")
    assert wal.stat().st_size > 0
    target = tmp_path / "restored.duckdb"
    wal.rename(str(target) + ".wal")
    backup.restore_backup(result["backup"], target)
    assert not Path(str(target) + ".wal").exists()
    assert checksums_of(target) == before


def test_cli_backup_then_restore(sample_db_path, tmp_path, capsys):
    assert maintenance_cli.main(["--backup", "--backup-dir", str(tmp_path / "bk"), "--backup-compress",
                                 "--db", sample_db_path]) == 0
    (stored,) = (tmp_path / "bk").glob("*.duckdb.gz")
    with gzip.open(stored) as handle:  # an operator can gunzip it by hand
        assert handle.read(16)
    assert maintenance_cli.main(["--restore", str(stored), "--db", str(tmp_path / "new.duckdb")]) == 0
    assert checksums_of(tmp_path / "new.duckdb") == checksums_of(sample_db_path)
    assert "restored to" in capsys.readouterr().out


# -- purge ----------------------------------------------------------------------------------------------

def test_purge_deletes_only_old_backups_of_this_tool_compressed_too(sample_db_path, tmp_path):
    folder = tmp_path / "bk"
    conn = connect(sample_db_path)
    try:
        old_plain = backup.create_backup(conn, sample_db_path, folder, now=NOW - dt.timedelta(days=45))
        old_gz = backup.create_backup(conn, sample_db_path, folder, compress=True, now=NOW - dt.timedelta(days=40))
        recent = backup.create_backup(conn, sample_db_path, folder, compress=True, now=NOW - dt.timedelta(days=2))
    finally:
        conn.close()
    foreign = [folder / "notes.duckdb.gz", folder / "someone_else.manifest.json", folder / "important.duckdb"]
    foreign[0].write_bytes(b"not ours")
    foreign[1].write_text(json.dumps({"tool": "other", "created_at": "2000-01-01T00:00:00Z", "tables": {}}))
    foreign[2].write_bytes(b"keep me")
    old = [Path(old_plain["backup"]), Path(old_plain["manifest"]), Path(old_gz["backup"]), Path(old_gz["manifest"])]
    for path in old:
        os.utime(path, (0, 0))

    dry = backup.purge_backups(folder, 30, dry_run=True, now=NOW)
    assert sorted(dry["deleted_files"]) == sorted(str(p) for p in old)
    assert all(p.exists() for p in old)

    result = backup.purge_backups(folder, 30, now=NOW)
    assert sorted(result["deleted_files"]) == sorted(str(p) for p in old)
    assert not any(p.exists() for p in old)
    assert Path(recent["backup"]).exists() and Path(recent["manifest"]).exists()
    assert all(p.exists() for p in foreign)


def test_purge_rejects_a_negative_retention(tmp_path):
    with pytest.raises(UsageError):
        backup.purge_backups(tmp_path, -1)


# -- integrity ------------------------------------------------------------------------------------------

def test_check_integrity_on_a_clean_database_exits_0(sample_db_path, capsys):
    assert maintenance_cli.main(["--check-integrity", "--db", sample_db_path]) == 0
    assert "no problems" in capsys.readouterr().out


def test_check_integrity_names_an_injected_orphan_and_exits_1(sample_db_path, capsys):
    conn = connect(sample_db_path)
    conn.execute("INSERT INTO performance_results (result_id, run_id, model_id, hardware_id, model_name, "
                 "hardware_type, batch_size, average_latency_ms) "
                 "SELECT 4242, run_id, 999999, hardware_id, model_name, hardware_type, 1, 5.0 "
                 "FROM performance_results LIMIT 1")
    conn.close()
    assert maintenance_cli.main(["--check-integrity", "--db", sample_db_path]) == 1
    captured = capsys.readouterr()
    assert "orphan" in captured.out and "model_id names no row of models" in captured.out
    assert "4242" in captured.out
    assert "orphan in performance_results" in captured.err


def test_check_integrity_finds_duplicates_impossible_values_and_broken_views(sample_db_path):
    conn = connect(sample_db_path)
    try:
        assert integrity.check_integrity(conn) == []
        conn.execute("INSERT INTO models (model_id, model_name) VALUES (7, 'bert-base-uncased')")
        conn.execute("UPDATE performance_results SET latency_p50_ms = latency_p99_ms * 2 "
                     "WHERE result_id = (SELECT min(result_id) FROM performance_results)")
        conn.execute("UPDATE test_runs SET completed_at = started_at - INTERVAL 1 HOUR "
                     "WHERE run_id = (SELECT min(run_id) FROM test_runs)")
        conn.execute("CREATE TABLE scratch (x INTEGER)")
        conn.execute("CREATE VIEW scratch_view AS SELECT x FROM scratch")
        conn.execute("DROP TABLE scratch")
        problems = integrity.check_integrity(conn)
    finally:
        conn.close()
    found = {(p["check"], p["table"]) for p in problems}
    assert ("duplicate", "models") in found
    assert ("impossible value", "performance_results") in found
    assert ("impossible value", "test_runs") in found
    assert ("view does not compile", "scratch_view") in found
    assert "7" in next(p for p in problems if p["check"] == "duplicate")["examples"].split(", ")


# -- optimize and vacuum --------------------------------------------------------------------------------

@pytest.mark.slow
def test_vacuum_gives_space_back_and_keeps_every_row(sample_db_path, capsys):
    conn = connect(sample_db_path)
    for start, rows in ((10_000_000, 25_000), (20_000_000, 2_000)):  # the later rows pin the freed blocks
        conn.execute("INSERT INTO performance_results (result_id, model_id, hardware_id, model_name, test_case, "
                     f"latency_samples_ms, created_at) SELECT {start} + i, 1, 1, 'bulk', repeat('x', 200), "
                     f"[random() for _ in range(20)], TIMESTAMP '2025-01-01' FROM range({rows}) t(i)")
        conn.execute("CHECKPOINT")
    conn.execute("DELETE FROM performance_results WHERE result_id BETWEEN 10000000 AND 19999999")
    conn.execute("CHECKPOINT")
    conn.close()
    before = checksums_of(sample_db_path)
    size_before = optimize.file_bytes(sample_db_path)
    assert maintenance_cli.main(["--optimize-db", "--vacuum", "--db", sample_db_path]) == 0
    size_after = optimize.file_bytes(sample_db_path)
    assert size_after < size_before * 0.8
    assert checksums_of(sample_db_path) == before
    out = capsys.readouterr().out
    assert f"{size_before} -> {size_after} bytes" in out
    assert not list(Path(sample_db_path).parent.glob(".*vacuum*"))


def test_vacuum_keeps_the_new_file_layout(sample_db_path):
    """The copy must be written like any new database file (v1.5.0 storage, 64 KiB blocks): attached without
    those options DuckDB wrote the v1.0.0 format with 256 KiB blocks, and a compact file grew by 40%."""
    def layout():
        with duckdb.connect(sample_db_path, read_only=True) as conn:
            block_size = conn.execute("SELECT block_size FROM pragma_database_size()").fetchone()[0]
            tags = conn.execute("SELECT tags FROM duckdb_databases() WHERE database_name = current_database()"
                                ).fetchone()[0]
            return block_size, tags["storage_version"]

    assert layout() == (65536, "v1.5.0+")
    size_before = optimize.file_bytes(sample_db_path)
    assert maintenance_cli.main(["--vacuum", "--db", sample_db_path]) == 0
    assert layout() == (65536, "v1.5.0+")
    assert optimize.file_bytes(sample_db_path) <= size_before


def test_vacuum_dry_run_changes_nothing(sample_db_path):
    digest = sha256(sample_db_path)
    conn = connect(sample_db_path)
    try:
        result = optimize.vacuum_database(conn, sample_db_path, dry_run=True)
    finally:
        conn.close()
    assert result["dry_run"] and result["bytes_before"] > 0
    assert sha256(sample_db_path) == digest


# -- archive-data ---------------------------------------------------------------------------------------

@pytest.mark.slow  # over 0.35 s here: outside make test-fast
def test_archived_rows_stay_visible_to_views_and_reports(sample_db_path, tmp_path):
    conn = connect(sample_db_path)
    try:
        views_before = {v: conn.execute(f"SELECT count(*) FROM {v}").fetchone()[0]
                        for v in ("benchmark_performance", "latest_performance_metrics", "cross_platform_performance",
                                  "model_hardware_compatibility", "integration_test_status")}
        live_before = conn.execute("SELECT count(*) FROM performance_results").fetchone()[0]
        result = archive.archive_old_rows(conn, 90, tmp_path / "archived_data", now=NOW)
        assert result["rows"]["performance_results"] == live_before
        assert conn.execute("SELECT count(*) FROM performance_results").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM performance_results_all").fetchone()[0] == live_before
        for view, count in views_before.items():
            assert conn.execute(f"SELECT count(*) FROM {view}").fetchone()[0] == count, view
        assert conn.execute("SELECT sum(rows) FROM archived_partitions").fetchone()[0] == sum(result["rows"].values())
        assert integrity.check_integrity(conn) == []
    finally:
        conn.close()
    # a later maintenance run keeps the views; moving the archive away is reported
    moved = tmp_path / "moved"
    (tmp_path / "archived_data").rename(moved)
    conn = connect(sample_db_path)
    try:
        checks = {(p["check"], p["table"]) for p in integrity.check_integrity(conn)}
    finally:
        conn.close()
    assert ("view does not compile", "benchmark_performance") in checks
    assert ("missing archive file", "performance_results") in checks


@pytest.mark.slow  # about 0.9 s: outside make test-fast
def test_reports_and_queries_keep_seeing_archived_rows(sample_db_path, tmp_path, capsys):
    """The readers (reports, --sql, regression, analytics) name the tables, not the `_all` views: a read-only
    connection shows the archive under the tables' own names, counted once, and writers still write."""
    import benchmark_db_query as query_cli

    def report_summary() -> dict:
        assert query_cli.main(["--db", sample_db_path, "--report", "summary", "--format", "json"]) == 0
        return {k: v for k, v in json.loads(capsys.readouterr().out).items() if k != "generated_at"}

    def sql(statement: str):
        assert query_cli.main(["--db", sample_db_path, "--sql", statement, "--format", "json"]) == 0
        return json.loads(capsys.readouterr().out)

    counts = ("SELECT (SELECT count(*) FROM performance_results) AS live, "
              "(SELECT count(*) FROM benchmark_performance) AS flat")
    summary_before, counts_before = report_summary(), sql(counts)
    conn = connect(sample_db_path)
    try:
        moved = archive.archive_old_rows(conn, 90, tmp_path / "archived_data", now=NOW)["rows"]
    finally:
        conn.close()
    assert moved["performance_results"] > 0
    assert report_summary() == summary_before
    assert sql(counts) == counts_before  # the flat view reads `_all`: no row counted twice
    reader = connect(sample_db_path, read_only=True)
    try:
        assert archive.archive_shown(reader)
        assert reader.execute("SELECT count(*) FROM performance_results_all").fetchone()[0] == counts_before[0]["live"]
    finally:
        reader.close()
    writer = connect(sample_db_path)  # a writer sees and writes the live table only
    try:
        assert not archive.archive_shown(writer)
        assert writer.execute("SELECT count(*) FROM performance_results").fetchone()[0] == 0
    finally:
        writer.close()
    from benchmark_db_api import BenchmarkDBAPI  # the API reads through its writer: the `_all` views

    api = BenchmarkDBAPI(db_path=sample_db_path)
    try:
        assert len(api.get_performance_metrics(limit=10_000)) == counts_before[0]["live"]
    finally:
        api.close()


@pytest.mark.slow  # over a second
def test_rows_that_replace_archived_ones_are_not_counted_twice(tmp_path):
    """A changed file ingested again (or converted again with --force) replaces its run's rows; the archived
    ones are replaced too (left out of the `_all` views), while rows archived later stay visible."""
    from benchmark_db.ingest import Ingestor, discover_files
    from benchmark_db_models import BenchmarkDB

    db_path, results = str(tmp_path / "r.duckdb"), tmp_path / "results"
    results.mkdir()

    def ingest(throughput, force=False):
        (results / "bert.json").write_text(json.dumps(
            {"model": "prajjwal1/bert-tiny", "hardware": "cpu", "timestamp": "2025-03-06T17:48:24",
             "batch_results": {"1": {"batch_size": 1, "throughput_items_per_second": throughput}}}))
        with BenchmarkDB(db_path) as db:
            Ingestor(db, force=force, quiet=True).ingest(discover_files([results]))

    def archive_all():
        conn = connect(db_path)
        try:
            archive.archive_old_rows(conn, 90, tmp_path / "archived_data", now=NOW)
            assert conn.execute("SELECT count(*) FROM performance_results").fetchone()[0] == 0
        finally:
            conn.close()

    def visible():
        reader = connect(db_path, read_only=True)
        try:
            flat = reader.execute("SELECT count(*) FROM benchmark_performance").fetchone()[0]
            values = sorted(r[0] for r in reader.execute(
                "SELECT throughput_items_per_second FROM performance_results").fetchall())
            assert flat == len(values)
            return values
        finally:
            reader.close()

    ingest(45.8)
    archive_all()
    assert visible() == [45.8]
    ingest(99.0)  # the file changed
    assert visible() == [99.0]
    ingest(99.0, force=True)  # converted again: same ids back in the live table
    assert visible() == [99.0]
    archive_all()  # the new rows, archived in their turn, stay visible
    assert visible() == [99.0]


def test_archive_data_dry_run_and_nothing_old(sample_db_path, tmp_path):
    conn = connect(sample_db_path)
    try:
        dry = archive.archive_old_rows(conn, 90, tmp_path / "a", dry_run=True, now=NOW)
        assert dry["rows"]["performance_results"] > 0 and not (tmp_path / "a").exists()
        none = archive.archive_old_rows(conn, 90, tmp_path / "a", now=dt.datetime(2025, 3, 2))
        assert none["files"] == [] and (tmp_path / "a").is_dir()
        assert conn.execute("SELECT count(*) FROM performance_results").fetchone()[0] > 0
    finally:
        conn.close()


# -- clean-json -----------------------------------------------------------------------------------------

def _log_file(conn, path: Path, *, status="ingested", ingested_at=NOW - dt.timedelta(days=40), stored=True,
              sha=None):
    sha = sha or sha256(path)
    conn.execute("INSERT INTO ingested_files (path, sha256, size_bytes, kind, status, rows, ingested_at) "
                 "VALUES (?, ?, ?, 'performance', ?, 3, ?)", [str(path), sha, path.stat().st_size, status, ingested_at])
    if stored:
        conn.execute("INSERT INTO source_documents (sha256, size_bytes, codec, content) SELECT ?, ?, 'none', ? "
                     "WHERE NOT EXISTS (SELECT 1 FROM source_documents WHERE sha256 = ?)",
                     [sha, path.stat().st_size, path.read_bytes(), sha])


@pytest.fixture
def json_files(db_path, tmp_path):
    folder = tmp_path / "results"
    folder.mkdir()
    files = {}
    for name in ("ok", "changed", "failed", "recent", "unstored", "unknown"):
        files[name] = folder / f"{name}.json"
        files[name].write_text(json.dumps({"model": name, "latency_ms": 1.0}))
    conn = connect(db_path)
    _log_file(conn, files["ok"])
    _log_file(conn, files["changed"])
    files["changed"].write_text('{"model": "changed", "latency_ms": 2.0}')
    _log_file(conn, files["failed"], status="failed")
    _log_file(conn, files["recent"], ingested_at=NOW - dt.timedelta(days=1))
    _log_file(conn, files["unstored"], stored=False)
    conn.close()
    return files


def test_clean_json_archives_only_ingested_unchanged_old_files(db_path, json_files, tmp_path):
    digests = {name: sha256(p) for name, p in json_files.items()}
    conn = connect(db_path)
    try:
        dry = clean_json.clean_json_files(conn, 30, "archive", archive_dir=tmp_path / "arch", dry_run=True,
                                          now=NOW, base_dir=tmp_path)
        assert all(p.exists() for p in json_files.values())
        result = clean_json.clean_json_files(conn, 30, "archive", archive_dir=tmp_path / "arch", now=NOW,
                                             base_dir=tmp_path)
        archived_to = dict(conn.execute("SELECT path, archived_to FROM ingested_files").fetchall())
    finally:
        conn.close()
    assert [f["path"] for f in dry["files"]] == [f["path"] for f in result["files"]]
    moved = {Path(f["path"]).name for f in result["files"]}
    assert moved == {"ok.json", "unstored.json"}
    reasons = {Path(u["path"]).name: u["reason"] for u in result["untouched"]}
    assert "sha256 differs" in reasons["changed.json"]
    assert "failed" in reasons["failed.json"]
    assert "less than 30 days" in reasons["recent.json"]
    for name in ("changed", "failed", "recent", "unknown"):
        assert json_files[name].exists() and sha256(json_files[name]) == digests[name]
    target = tmp_path / "arch" / "results" / "ok.json"
    assert sha256(target) == digests["ok"] and not json_files["ok"].exists()
    assert archived_to[str(json_files["ok"])] == str(target)


def test_clean_json_remove_needs_the_original_stored(db_path, json_files, tmp_path):
    conn = connect(db_path)
    try:
        result = clean_json.clean_json_files(conn, 30, "remove", now=NOW, base_dir=tmp_path)
    finally:
        conn.close()
    assert {Path(f["path"]).name for f in result["files"]} == {"ok.json"}
    assert not json_files["ok"].exists()
    assert json_files["unstored"].exists()
    assert any("not stored" in u["reason"] for u in result["untouched"])


def test_clean_json_after_a_real_ingest(db_path, corpus_dir, tmp_path):
    from benchmark_db.ingest import ingest_files
    from benchmark_db_models import BenchmarkDB

    sources = sorted((corpus_dir / "performance_results").glob("*.json"))[:3]
    if not sources:
        pytest.skip("no legacy performance files in the corpus")
    folder = tmp_path / "performance_results"
    folder.mkdir()
    for src in sources:
        (folder / src.name).write_bytes(src.read_bytes())
    with BenchmarkDB(db_path) as db:
        summary = ingest_files(db, [str(folder)])
        ingested = {Path(o.path).name for o in summary.outcomes if o.status == "ingested"}
        later = dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(days=31)
        nothing = clean_json.clean_json_files(db.conn, 30, "archive", archive_dir=tmp_path / "arch", base_dir=tmp_path)
        result = clean_json.clean_json_files(db.conn, 30, "archive", archive_dir=tmp_path / "arch", now=later,
                                             base_dir=tmp_path)
        assert integrity.check_integrity(db.conn) == []
    assert nothing["files"] == []
    assert {Path(f["path"]).name for f in result["files"]} == ingested
    for name in ingested:
        assert (tmp_path / "arch" / "performance_results" / name).exists()


# -- migration stats ------------------------------------------------------------------------------------

def test_migration_stats_summarise_the_ingest_log(db_path, json_files, tmp_path, capsys):
    conn = connect(db_path)
    try:
        report = stats.migration_stats(conn)
    finally:
        conn.close()
    totals = report["totals"]
    assert (totals["files"], totals["ingested"], totals["failed"]) == (5, 4, 1)
    assert totals["success_rate"] == 0.8 and totals["rows_imported"] == 12
    assert {(r["kind"], r["status"]) for r in report["by_kind"]} == {("performance", "ingested"),
                                                                     ("performance", "failed")}
    assert {t["table"] for t in report["tables"]} >= {"performance_results", "ingested_files"}
    out = tmp_path / "migration_report.json"
    assert maintenance_cli.main(["--migration-stats", "--output", str(out), "--db", db_path]) == 0
    assert json.loads(out.read_text())["totals"]["files"] == 5
    md = tmp_path / "report.md"
    assert maintenance_cli.main(["--migration-stats", "--output", str(md), "--db", db_path]) == 0
    assert "## Totals" in md.read_text()


# -- the command as cron runs it ------------------------------------------------------------------------

def test_the_cron_line_runs_every_step_in_one_command(sample_db_path, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code = maintenance_cli.main(["--optimize-db", "--vacuum", "--backup", "--purge-backups", "--backup-retention",
                                 "30", "--clean-json", "--older-than", "30", "--action", "archive",
                                 "--db", sample_db_path])
    assert code == 0
    out = capsys.readouterr().out
    for step in ("backup", "optimize-db", "vacuum", "clean-json", "purge-backups"):
        assert f"\n{step} " in out
    assert len(list((tmp_path / "db_backups").glob("*.manifest.json"))) == 1  # the documented default folder


def test_a_failing_step_does_not_skip_the_others(sample_db_path, tmp_path, capsys):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where the backup folder should be")
    code = maintenance_cli.main(["--backup", "--backup-dir", str(blocker), "--optimize-db", "--check-integrity",
                                 "--db", sample_db_path])
    assert code == 1
    captured = capsys.readouterr()
    rows = {line.split()[0]: line.split()[1] for line in captured.out.splitlines()[2:] if line and line[0] != "("}
    assert rows == {"check-integrity": "ok", "backup": "failed", "optimize-db": "ok"}
    assert "error DB005" in captured.err and "backup" in captured.err


def test_usage_errors(tmp_path, capsys):
    assert maintenance_cli.main(["--db", str(tmp_path / "x.duckdb")]) == 2
    assert maintenance_cli.main(["--clean-json", "--db", str(tmp_path / "x.duckdb")]) == 2
    assert "--older-than" in capsys.readouterr().err
    assert not (tmp_path / "x.duckdb").exists()


@pytest.mark.slow
def test_waits_for_the_lock_and_gives_up_with_db001(sample_db_path, repo_root):
    holder = subprocess.Popen([sys.executable, "-c", (
        "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True); time.sleep(2.5)"),
        sample_db_path], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        cmd = [sys.executable, str(repo_root / "benchmark_db_maintenance.py"), "--optimize-db", "--db", sample_db_path]
        quick = subprocess.run(cmd + ["--lock-timeout", "0.3"], capture_output=True, text=True)
        assert quick.returncode == 3 and "error DB001" in quick.stderr and "locked" in quick.stderr
        started = time.monotonic()
        patient = subprocess.run(cmd + ["--lock-timeout", "30"], capture_output=True, text=True)
        assert patient.returncode == 0, patient.stderr
        assert time.monotonic() - started > 0.5
        assert "T" in patient.stderr.splitlines()[0][:20]  # timestamped log lines for the cron log
    finally:
        holder.wait(timeout=30)


def test_dry_run_of_every_destructive_step_changes_nothing(sample_db_path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    digest = sha256(sample_db_path)
    code = maintenance_cli.main(["--vacuum", "--backup", "--purge-backups", "--clean-json", "--older-than", "0",
                                 "--archive-data", "--archive-dir", "arch", "--dry-run", "--db", sample_db_path])
    assert code == 0
    assert sha256(sample_db_path) == digest
    assert not (tmp_path / "db_backups").exists() and not (tmp_path / "arch").exists()


def test_dry_run_neither_creates_nor_migrates_and_purge_alone_opens_no_database(tmp_path, monkeypatch, capsys):
    from benchmark_db import schema
    from benchmark_db.connection import _create_file

    monkeypatch.chdir(tmp_path)
    # the documented purge line names no --db: it must not leave an empty ./benchmark_db.duckdb behind
    assert maintenance_cli.main(["--purge-backups", "--backup-retention", "30", "--backup-dir", "bk"]) == 0
    assert maintenance_cli.main(["--vacuum", "--backup", "--dry-run", "--db", "missing.duckdb"]) == 3
    assert "error DB001" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.duckdb"))
    old = tmp_path / "old.duckdb"
    _create_file(str(old))
    conn = duckdb.connect(str(old))
    schema.migrate(conn, target=2)
    conn.execute("CHECKPOINT")
    conn.close()
    digest = sha256(old)
    maintenance_cli.main(["--vacuum", "--backup", "--clean-json", "--older-than", "0", "--archive-data",
                          "--optimize-db", "--dry-run", "--db", str(old)])
    assert sha256(old) == digest  # still schema version 2: a dry run does not migrate


def test_restore_dry_run_verifies_without_writing(sample_db_path, tmp_path, capsys):
    result = backed_up(sample_db_path, tmp_path / "bk", compress=True)
    target = tmp_path / "new.duckdb"
    assert maintenance_cli.main(["--restore", result["backup"], "--db", str(target), "--dry-run"]) == 0
    assert "verified, would restore" in capsys.readouterr().out and not target.exists()


def test_help_names_the_default_backup_folder(capsys):
    with pytest.raises(SystemExit) as exit_info:
        maintenance_cli.main(["--help"])
    assert exit_info.value.code == 0
    assert "./db_backups" in capsys.readouterr().out

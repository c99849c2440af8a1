"""The summary cache never serves numbers of another database state: writes that keep the row count, the file
size, the checkpoint headers and even the mtime (a copy of a database over another, a restored backup) make
the next report recompute, and a summary is never saved when a later write could leave the same stamp.

Each test warms the cache, changes the file, and compares the cached report with one computed from the table.
"""
from __future__ import annotations

import json
import os
import shutil

import duckdb
import pytest

from benchmark_db import reports, summary_cache
from benchmark_db.connection import connect
from benchmark_db.reports import ReportFilters


@pytest.fixture
def db(sample_db_path) -> str:
    return sample_db_path  # this test's own copy of the sample database (conftest)


@pytest.fixture
def no_racy_wait(monkeypatch):
    # let the cache be saved right after a write, so that the test can then change the file under it
    monkeypatch.setattr(summary_cache, "_RACY_SECONDS", -3600.0, raising=False)


def _latencies(path: str, *, cached: bool) -> list:
    conn = connect(path, read_only=True)
    try:
        report = reports.build_report(conn, "performance", ReportFilters(), use_summary_cache=cached)
        doc = json.loads(reports.render_report(report, "json"))
    finally:
        conn.close()
    return sorted((r["model"], r["hardware"], r["batch_size"], r["precision"], r["latency_ms_mean"])
                  for r in doc["sections"]["performance"]["rows"])


def _set_latency(path: str, value: float) -> None:
    with duckdb.connect(path) as c:  # closing checkpoints: the change is in the file, the WAL is gone
        c.execute("UPDATE performance_results SET average_latency_ms = ?", [value])


def _twin(db: str, tmp_path) -> str:
    """A copy of `db` (same DuckDB file identifier) that then took one write of its own, as a backup restored
    elsewhere and used does: same size and byte-identical checkpoint headers as `db` after one write."""
    twin = str(tmp_path / "twin.duckdb")
    shutil.copyfile(db, twin)
    _set_latency(twin, 7.0)
    _set_latency(db, 5.0)
    with open(db, "rb") as a, open(twin, "rb") as b:  # what made the old fingerprint blind to the copy
        assert a.read(3 * 4096) == b.read(3 * 4096)
    assert os.path.getsize(db) == os.path.getsize(twin)
    return twin


@pytest.mark.parametrize("copy", [shutil.copyfile, shutil.copy2], ids=["cp", "cp -p (mtime kept)"])
def test_a_database_copied_over_the_file_is_not_read_from_the_cache(db, tmp_path, no_racy_wait, copy):
    twin = _twin(db, tmp_path)
    assert {r[-1] for r in _latencies(db, cached=True)} == {5.0}  # warms the cache
    assert summary_cache.cache_path(db).exists()
    inode = os.stat(db).st_ino
    copy(twin, db)  # in place: same inode, same size, same headers, (copy2) same mtime
    assert os.stat(db).st_ino == inode
    # before the fix the cached report still said 5.0 ms for every configuration
    assert {r[-1] for r in _latencies(db, cached=True)} == {7.0}
    assert _latencies(db, cached=True) == _latencies(db, cached=False)


@pytest.mark.slow  # over 0.35 s here: outside make test-fast
def test_a_restored_backup_is_not_read_from_the_cache(db, tmp_path, no_racy_wait):
    # a backup of the twin's state restored over the database with the maintenance tool
    from benchmark_db_maintenance import main as maintenance

    twin = _twin(db, tmp_path)
    backups = tmp_path / "backups"
    assert maintenance(["--db", twin, "--backup", "--backup-dir", str(backups), "--quiet"]) == 0
    _latencies(db, cached=True)
    manifest = next(backups.glob("*.manifest.json"))
    assert maintenance(["--db", db, "--restore", str(manifest), "--force", "--quiet"]) == 0
    assert {r[-1] for r in _latencies(db, cached=True)} == {7.0}
    assert _latencies(db, cached=True) == _latencies(db, cached=False)


def test_no_summary_is_saved_right_after_a_write(db, monkeypatch):
    # a second write within the same tick of the file system's clock can leave the same ctime: a summary
    # saved now could outlive it, so none is (a later report saves one); the window is widened here so
    # that a slow host cannot make the report start after it
    monkeypatch.setattr(summary_cache, "_RACY_FINE_SECONDS", 5.0)
    _set_latency(db, 5.0)
    assert {r[-1] for r in _latencies(db, cached=True)} == {5.0}
    assert not summary_cache.cache_path(db).exists()
    assert not [p for p in os.listdir(os.path.dirname(db)) if p.endswith(".tmp")]


@pytest.mark.slow  # over 0.35 s here: outside make test-fast
def test_a_summary_is_saved_once_the_database_has_settled(db, monkeypatch):
    import time

    monkeypatch.setattr(summary_cache, "_RACY_SECONDS", 0.2)
    monkeypatch.setattr(summary_cache, "_RACY_FINE_SECONDS", 0.2)
    _set_latency(db, 5.0)
    time.sleep(0.3)
    _latencies(db, cached=True)
    assert summary_cache.cache_path(db).exists()
    _set_latency(db, 6.0)  # and the next write, however soon, still invalidates it
    assert {r[-1] for r in _latencies(db, cached=True)} == {6.0}

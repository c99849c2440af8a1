"""benchmark_db.summary_cache: the cached per-configuration summary gives exactly the report the table gives,
and any committed write (by our tools or by plain SQL from another program) makes the next report
recompute it."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import duckdb
import pandas as pd
import pytest

from benchmark_db import reports, summary_cache
from benchmark_db.connection import connect
from benchmark_db.reports import ReportFilters


@pytest.fixture(autouse=True)
def cache_right_after_a_write(monkeypatch):
    # the cache is normally not saved within seconds of a write (summary_cache._RACY_SECONDS); these tests
    # write and report at once, and must see the cache saved and then invalidated
    monkeypatch.setattr(summary_cache, "_RACY_SECONDS", -3600.0)


@pytest.fixture
def db(sample_db_path) -> str:
    return sample_db_path  # this test's own copy of the sample database (conftest)


def _report(path: str, filters: ReportFilters | None = None, *, cached: bool = True, kind: str = "performance"):
    conn = connect(path, read_only=True)
    try:
        report = reports.build_report(conn, kind, filters or ReportFilters(), use_summary_cache=cached)
        return json.loads(reports.render_report(report, "json"))
    finally:
        conn.close()


def _same(cached: dict, direct: dict) -> None:
    for doc in (cached, direct):
        doc.pop("generated_at")
    assert cached["notes"] == direct["notes"]
    assert cached["sections"].keys() == direct["sections"].keys()
    for key, section in cached["sections"].items():
        mine = pd.DataFrame(section["rows"])
        theirs = pd.DataFrame(direct["sections"][key]["rows"])
        # sums of doubles may differ in the last bit with the order DuckDB's threads add them in
        pd.testing.assert_frame_equal(mine, theirs, check_exact=False, rtol=1e-12)


FILTERS = [
    ReportFilters(),
    ReportFilters.make(include_simulated=True),
    ReportFilters.make(model="bert-base-uncased"),
    ReportFilters.make(model="*whisper*,t5-small"),
    ReportFilters.make(hardware="cuda,cpu", batch_size="1,8"),
    ReportFilters.make(precision="FP16"),
    ReportFilters.make(model_family="bert", include_simulated=True),
]


@pytest.mark.slow  # over 1.5 s: outside make test-fast
@pytest.mark.parametrize("filters", FILTERS, ids=lambda f: f.describe())
def test_cached_report_equals_direct_report(db, filters):
    first = _report(db, filters)  # computes and writes the summary
    assert summary_cache.cache_path(db).exists()
    second = _report(db, filters)  # reads it
    direct = _report(db, filters, cached=False)
    _same(first, dict(direct))
    _same(second, _report(db, filters, cached=False))


def test_cache_is_read_when_the_database_is_unchanged(db):
    _report(db)
    cache = summary_cache.cache_path(db)
    stamp = cache.stat().st_mtime_ns
    _report(db)
    assert cache.stat().st_mtime_ns == stamp  # not rewritten: the fingerprint matched
    assert oct(cache.stat().st_mode & 0o777) == oct(os.stat(db).st_mode & 0o777)


def _first_bert_cpu_throughput(doc: dict) -> float:
    return next(r for r in doc["sections"]["performance"]["rows"]
                if r["model"] == "bert-base-uncased" and r["hardware"] == "cpu" and r["batch_size"] == 1
                and r["precision"] == "fp32")["throughput_items_per_s_mean"]


@pytest.mark.slow  # over 1.5 s: outside make test-fast
@pytest.mark.parametrize("checkpoint", [True, False], ids=["checkpointed", "left-in-wal"])
def test_a_write_by_another_program_invalidates_the_cache(db, checkpoint):
    before = _report(db)
    old = _first_bert_cpu_throughput(before)
    # another process changes values in place (an UPDATE keeps the row count, the hardest case to notice),
    # either checkpointed into the file or left in the write-ahead log
    lines = ["import duckdb, sys", "c = duckdb.connect(sys.argv[1])"]
    if not checkpoint:
        lines.append("c.execute('PRAGMA disable_checkpoint_on_shutdown')")
    lines.append("c.execute(\"UPDATE performance_results SET throughput_items_per_second = "
                 "throughput_items_per_second * 2 WHERE model_id = "
                 "(SELECT model_id FROM models WHERE model_name = 'bert-base-uncased')\")")
    if checkpoint:
        lines.append("c.execute('CHECKPOINT')")
    lines.append("c.close()")
    script = "\n".join(lines)
    subprocess.run([sys.executable, "-c", script, db], check=True)
    assert os.path.exists(db + ".wal") is (not checkpoint)
    after = _report(db)
    assert _first_bert_cpu_throughput(after) == pytest.approx(old * 2, rel=1e-12)
    _same(after, _report(db, cached=False))


def test_inserts_and_deletes_invalidate_the_cache(db):
    _report(db)
    with duckdb.connect(db) as c:
        c.execute("DELETE FROM performance_results WHERE batch_size = 8")
    after = _report(db)
    assert all(r["batch_size"] != 8 for r in after["sections"]["performance"]["rows"])
    _same(after, _report(db, cached=False))


def test_orphan_results_fall_back_to_the_table(db):
    # a model row removed under its results: each result's own model_name must drive name filters
    with duckdb.connect(db) as c:
        c.execute("DELETE FROM models WHERE model_name = 't5-small'")
    filters = ReportFilters.make(model="t5-small")
    conn = connect(db, read_only=True)
    try:
        assert reports.report_summary(conn, filters) is None
    finally:
        conn.close()
    _same(_report(db, filters), _report(db, filters, cached=False))


def test_time_filters_read_the_table(db):
    conn = connect(db, read_only=True)
    try:
        assert reports.report_summary(conn, ReportFilters.make(since="2000-01-01")) is None
    finally:
        conn.close()


def test_a_cache_that_cannot_be_written_still_reports(db):
    # a folder where the cache file would go makes every write of it fail, even for root (for whom a
    # read-only folder is writable)
    summary_cache.cache_path(db).mkdir()
    doc = _report(db)
    assert doc["sections"]["performance"]["rows"]
    assert summary_cache.cache_path(db).is_dir()
    assert not [p for p in os.listdir(os.path.dirname(db)) if p.endswith(".tmp")]  # no temporary left behind
    _same(doc, _report(db, cached=False))


def test_a_corrupt_cache_file_is_recomputed(db):
    _report(db)
    summary_cache.cache_path(db).write_bytes(b"not an arrow file")
    _same(_report(db), _report(db, cached=False))


def test_in_memory_and_transactions_are_not_cached(tmp_path):
    conn = duckdb.connect()
    assert summary_cache.database_file(conn) is None
    conn.close()


@pytest.mark.slow  # 4 s: renders the HTML report with its charts
def test_results_without_a_batch_size_are_reported(db):
    # converter rows may lack a batch size: the pivot must group them under an empty batch, not fail
    with duckdb.connect(db) as c:
        c.execute("UPDATE performance_results SET batch_size = NULL WHERE batch_size = 4")
    for cached in (True, False):
        doc = _report(db, cached=cached)
        assert any(r["batch_size"] is None for r in doc["sections"]["by_hardware"]["rows"])
        assert any(r["batch_size"] is None for r in doc["sections"]["performance"]["rows"])
    _same(_report(db), _report(db, cached=False))
    conn = connect(db, read_only=True)
    try:
        html = reports.render_report(reports.build_report(conn, "performance", use_summary_cache=True), "html", conn)
    finally:
        conn.close()
    assert "<table" in html

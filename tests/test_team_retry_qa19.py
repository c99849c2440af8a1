"""Team mode (session 16): a write of its own that loses a race with another lake writer is tried again.

Before, a write whose commit DuckLake refused (another writer, one that takes no lock, committed to the same
rows first) ended in DB001 "re-run", and the caller had to run it again. Nothing of the refused commit is
stored, so the ORM now does that itself, a few times; inside a caller's transaction only the caller can, and
it still gets DB001 (tests/test_team_replace_qa18.py)."""
from __future__ import annotations

import pytest

import benchmark_db_models
from benchmark_db.connection import connect
from benchmark_db.errors import DatabaseLockedError
from benchmark_db_models import BenchmarkDB, PerformanceResults

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def _racing_writer(monkeypatch, lake_target, result_id, times: int):
    """Make the next `times` writes of performance_results race another writer that changes the same row and
    commits between their DELETE and COMMIT."""
    other = connect(lake_target)
    original = BenchmarkDB._write
    raced = []

    def write(self, cls, parts):
        original(self, cls, parts)
        if cls is PerformanceResults and len(raced) < times:
            raced.append(1)
            other.execute("UPDATE performance_results SET throughput_items_per_second = 1.0 WHERE result_id = ?",
                          [result_id])

    monkeypatch.setattr(BenchmarkDB, "_write", write)
    return other, raced


@pytest.fixture
def stored(lake_target):
    """(the ORM on the lake, a stored result's fields, its id)."""
    db = BenchmarkDB(lake_target)
    try:
        row = dict(model_id=db.get_or_add_model("bert-tiny-random"), hardware_id=db.get_or_add_hardware("cpu"),
                   run_id=1, test_case="samekey", throughput_items_per_second=50.0)
        yield db, row, db.insert_performance_results(PerformanceResults(**row))
    finally:
        db.close()


def test_a_replacing_write_that_loses_a_race_is_tried_again_and_stored(lake_target, stored, monkeypatch):
    db, row, result_id = stored
    other, raced = _racing_writer(monkeypatch, lake_target, result_id, times=1)
    try:
        assert db.insert_performance_results(PerformanceResults(**dict(row, throughput_items_per_second=60.0))) \
            == result_id
    finally:
        other.close()
    assert raced == [1]  # the first try lost the race; the second stored it
    assert db.conn.execute("SELECT throughput_items_per_second FROM performance_results WHERE result_id = ?",
                           [result_id]).fetchall() == [(60.0,)]


def test_a_write_that_loses_every_try_is_db001_re_run(lake_target, stored, monkeypatch):
    db, row, result_id = stored
    other, raced = _racing_writer(monkeypatch, lake_target, result_id, times=benchmark_db_models.WRITE_CONFLICT_ATTEMPTS)
    try:
        with pytest.raises(DatabaseLockedError, match="re-run"):
            db.insert_performance_results(PerformanceResults(**dict(row, throughput_items_per_second=60.0)))
    finally:
        other.close()
    assert len(raced) == benchmark_db_models.WRITE_CONFLICT_ATTEMPTS

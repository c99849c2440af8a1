"""Team mode, QA round 18: two writers storing the same named result at once, and what a write conflict says.

DuckLake has no primary keys, so the ORM replaces a row as DELETE then INSERT. Two writers storing the same
new named result at the same moment both deleted nothing and both inserted: the lake held the result (and
its run) twice. Writes that may replace stored rows now take the lake's writer lock; rows new by
construction do not. A DuckLake transaction conflict is DB001 ("re-run"), not a raw TransactionException,
and the REST server does not answer it with "check the server's disk".
"""
from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pytest

from benchmark_db.connection import connect
from benchmark_db.errors import DatabaseLockedError

REPO = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.postgres, pytest.mark.slow]

NAMED = dict(model_name="bert-tiny-random", hardware_type="cpu", batch_size=16, throughput=50.0, latency_avg=20.0,
             test_case="samekey", test_name="named-run", started_at="2026-11-20T10:00:00Z")

GATED_STORE = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {repo!r})
    from benchmark_db_api import BenchmarkDBAPI
    api = BenchmarkDBAPI(db_path=sys.argv[1])
    api.get_performance_metrics(model_name="nothing")  # the lake attached before the gate opens
    time.sleep(max(float(sys.argv[2]) - time.time(), 0))
    print(api.store_performance_result(**{named!r}))
""")


def _copies(target: str) -> tuple[list, list]:
    conn = connect(target, read_only=True)
    try:
        results = conn.execute("SELECT result_id, count(*) FROM performance_results WHERE test_case = 'samekey' "
                               "GROUP BY 1").fetchall()
        runs = conn.execute("SELECT run_id, count(*) FROM test_runs WHERE test_name = 'named-run' "
                            "GROUP BY 1").fetchall()
    finally:
        conn.close()
    return results, runs


def test_two_writers_storing_the_same_new_named_result_at_once_store_it_once(lake_target):
    """Before: both printed the same id and the lake held the result and its run twice (3 runs in 3)."""
    script = GATED_STORE.format(repo=str(REPO), named=NAMED)
    start_at = time.time() + 4.0  # both processes imported and attached before the gate opens
    procs = [subprocess.Popen([sys.executable, "-c", script, lake_target, str(start_at)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-2000:]
        outputs.append(out.split())
    assert outputs[0] == outputs[1]
    results, runs = _copies(lake_target)
    assert results == [(int(outputs[0][-1]), 1)]
    assert [count for _run, count in runs] == [1]


def test_only_writes_that_may_replace_stored_rows_take_the_lock(lake_target, monkeypatch):
    """A named result takes the writer lock; results new by construction (a batch that names no run) do not:
    the lock costs round trips to the catalog. Storing the named result again replaces it."""
    from benchmark_db import lake
    from benchmark_db_api import BenchmarkDBAPI

    taken = []
    held = lake.LakeWriteLock.held

    def counting(self, timeout=None):
        taken.append(1)
        return held(self, timeout)

    monkeypatch.setattr(lake.LakeWriteLock, "held", counting)
    with BenchmarkDBAPI(db_path=lake_target) as api:
        plain = {key: NAMED[key] for key in ("model_name", "hardware_type", "batch_size", "throughput")}
        api.store_many([dict(plain, test_case="first")])  # also writes the API session's run (a plain record)
        taken.clear()
        api.store_many([dict(plain, test_case=f"plain{i}") for i in range(3)])
        assert taken == []
        first = api.store_performance_result(**NAMED)
        assert taken == [1]
        assert api.store_performance_result(**dict(NAMED, throughput=60.0)) == first
        assert len(taken) == 2
    assert _copies(lake_target)[0] == [(first, 1)]


def test_a_write_conflict_is_db001_re_run_not_a_raw_transaction_exception(lake_target):
    """Before: `_duckdb.TransactionException: ... Failed to commit DuckLake transaction. Transaction conflict`."""
    from benchmark_db_models import BenchmarkDB, PerformanceResults

    db = BenchmarkDB(lake_target)
    try:
        model_id = db.get_or_add_model("bert-tiny-random")
        hardware_id = db.get_or_add_hardware("cpu")
        row = dict(model_id=model_id, hardware_id=hardware_id, run_id=1, test_case="samekey", throughput_items_per_second=50.0)
        result_id = db.insert_performance_results(PerformanceResults(**row))
        other = connect(lake_target)
        try:
            with pytest.raises(DatabaseLockedError) as caught:
                with db.transaction():
                    db.insert_performance_results(PerformanceResults(**dict(row, throughput_items_per_second=60.0)))
                    # another writer (one that takes no lock) replaces the same row and commits first
                    other.execute("DELETE FROM performance_results WHERE result_id = ?", [result_id])
            assert caught.value.code == "DB001"
            assert "another writer changed the same rows at the same moment" in str(caught.value)
            assert "re-run" in str(caught.value)
        finally:
            other.close()
        # the connection is usable after the failed commit, and the lock was released with it
        db.insert_performance_results(PerformanceResults(**dict(row, throughput_items_per_second=70.0)))
        assert db.conn.execute("SELECT throughput_items_per_second FROM performance_results WHERE result_id = ?",
                               [result_id]).fetchall() == [(70.0,)]
    finally:
        db.close()


def test_the_rest_server_answers_a_write_conflict_as_retryable_not_a_disk_problem():
    """Before: a raw conflict was 503 database_unavailable "check the server's disk and log"."""
    import orjson

    from benchmark_db_server import _db_error_response, _duckdb_error_response

    conflict = DatabaseLockedError("another writer changed the same rows at the same moment (...)",
                                   "re-run: nothing of this write was stored")
    raw = duckdb.TransactionException("TransactionContext Error: Failed to commit: Failed to commit DuckLake "
                                      "transaction. Transaction conflict - attempting to insert into table")
    for response in (_db_error_response(conflict), _duckdb_error_response(raw)):
        body = orjson.loads(response.body)
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "1"
        assert "another writer changed the same rows at the same moment" in body["error"]["message"]
        assert "re-run" in body["error"]["message"]
        assert "disk" not in orjson.dumps(body).decode()

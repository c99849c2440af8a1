"""Ctrl-C at a terminal during `--parallel N`: the terminal signals the whole process group, parse workers
included, and a second Ctrl-C stops the parent at once. Neither may print a traceback from a worker or a
warning from multiprocessing's resource tracker, and a re-run completes the ingest."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import duckdb
import pytest

from tests.test_pipeline_qa import REPO
from tests.test_updater import perf_doc, write


@pytest.mark.slow  # two spawned pools and their re-runs: about 10 s
def test_ctrl_c_twice_to_the_process_group_during_parallel_prints_one_line(tmp_path):
    """Before: a worker still starting printed a KeyboardInterrupt traceback (its initializer, which ignores
    SIGINT, had not run yet), a worker reading a half-written task printed UnpicklingError, and the resource
    tracker warned about leaked semaphores after the hard stop."""
    for i in range(1500):
        write(tmp_path / "in" / f"r{i:04}.json", perf_doc(model=f"model-{i % 40}", latency=20 + i % 7))
    cmd = [sys.executable, str(REPO / "benchmark_db_migration.py"), "--db", "db.duckdb", "--input-dirs", "in",
           "--parallel", "2", "--batch-size", "200", "--quiet", "--format", "csv"]
    for delay in (0.0, 0.5):
        for name in ("db.duckdb", "db.duckdb.wal"):
            (tmp_path / name).unlink(missing_ok=True)
        proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)  # its own process group, as a terminal's job is
        deadline = time.monotonic() + 30
        while not (tmp_path / "db.duckdb").exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(delay)  # from the moment the database is open: the pool starts right after
        for _ in range(2):
            try:
                os.killpg(proc.pid, signal.SIGINT)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        try:
            _, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            pytest.fail(f"the run hung after Ctrl-C at {delay}s")
        time.sleep(0.5)  # the resource tracker outlives the parent by a moment and writes to the same stderr
        assert proc.returncode in (0, 130), err
        assert "Traceback" not in err and "Error" not in err and "resource_tracker" not in err, err
        assert len(err.splitlines()) <= 1, err
        rerun = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True)
        assert rerun.returncode == 0 and not rerun.stderr, rerun.stderr
        conn = duckdb.connect(str(tmp_path / "db.duckdb"), read_only=True)
        try:
            assert conn.execute("SELECT count(*) FROM ingested_files").fetchone()[0] == 1500
        finally:
            conn.close()

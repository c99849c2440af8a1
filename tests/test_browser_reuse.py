"""One browser per backend per run: the webgpu/webnn cells of a run share one Chromium, a lost browser is
replaced for the next cell, and nothing of the browser outlives the run (Ctrl-C in the middle included).

Real Chromium and onnxruntime-web; launches are counted through browser_harness.add_launch_hook.
"""
from __future__ import annotations

import contextlib
import os
import signal
import threading
import time

import psutil
import pytest

from runners.web import browser_harness
from tests.test_browser_harness import _tiny_model

MISSING = browser_harness.missing_prerequisites()
pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(MISSING is not None, reason=f"browser harness unavailable: {MISSING}")]


class _Launches:
    """Each browser started while inside: its pid and its profile folder (to find its processes later)."""

    def __init__(self):
        self.pids: list[int | None] = []
        self.profiles: list[str] = []

    def __call__(self, harness) -> None:
        self.pids.append(harness.browser_pid)
        if harness.browser_pid is not None:
            cmdline = psutil.Process(harness.browser_pid).cmdline()
            self.profiles += [a.split("=", 1)[1] for a in cmdline if a.startswith("--user-data-dir=")]

    def __enter__(self):
        self._remove = browser_harness.add_launch_hook(self)
        return self

    def __exit__(self, *exc):
        self._remove()

    def left_behind(self) -> list[str]:
        """Processes of these browsers still alive: the main processes, or anything using their profiles."""
        left = []
        for proc in psutil.process_iter(["pid", "cmdline", "status"]):
            try:
                if proc.info["status"] == psutil.STATUS_ZOMBIE:
                    continue
                cmdline = proc.info["cmdline"] or []
            except psutil.Error:
                continue
            if proc.info["pid"] in self.pids or any(p and any(p in arg for arg in cmdline) for p in self.profiles):
                left.append(f"{proc.info['pid']}: {' '.join(cmdline)[:120]}")
        return left


def _descendant_browsers() -> list[psutil.Process]:
    alive = []
    for child in psutil.Process().children(recursive=True):
        try:
            if child.status() != psutil.STATUS_ZOMBIE:
                alive.append(child)
        except psutil.NoSuchProcess:
            pass
    return alive


def _wait_gone(launches: _Launches, seconds: float = 10.0) -> list[str]:
    deadline = time.monotonic() + seconds
    while (left := launches.left_behind()) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


@pytest.mark.timeout(600)
def test_the_cells_and_the_probe_of_a_run_share_one_browser(tmp_path):
    from runners import run_model_benchmarks

    with _Launches() as launches:
        code = run_model_benchmarks.main(["--db", str(tmp_path / "r.duckdb"), "--models-set", "small",
                                          "--model", "bert-tiny-random", "--hardware", "webgpu",
                                          "--batch-sizes", "1,2,3", "--warmup", "1", "--min-iterations", "2",
                                          "--min-duration", "0", "--quiet"])
    assert code == 0
    import duckdb

    with duckdb.connect(str(tmp_path / "r.duckdb"), read_only=True) as con:
        batches = sorted(r[0] for r in con.execute("SELECT batch_size FROM performance_results "
                                                   "WHERE hardware_type = 'webgpu'").fetchall())
    assert batches == [1, 2, 3]  # three measured cells (and the probe) ...
    assert len(launches.pids) == 1, launches.pids  # ... in one browser
    assert _wait_gone(launches) == []
    assert _descendant_browsers() == []


@pytest.mark.timeout(300)
def test_a_killed_browser_is_replaced_and_the_next_cell_still_measures(tmp_path):
    model, feeds = _tiny_model(tmp_path / "m.onnx")
    with _Launches() as launches:
        session = browser_harness.BrowserSession("wasm")
        try:
            first = session.run_onnx(model, feeds, warmup=1, min_iterations=2, min_duration_s=0,
                                     node_placement=False)
            assert first["error"] is None and len(first["samples_ms"]) >= 2
            again = session.run_onnx(model, feeds, warmup=1, min_iterations=2, min_duration_s=0,
                                     node_placement=False)
            assert again["error"] is None and len(launches.pids) == 1  # reused while it is healthy
            pid = launches.pids[0]
            assert pid is not None
            os.killpg(pid, signal.SIGKILL)  # the browser dies between two cells
            with contextlib.suppress(psutil.NoSuchProcess):
                psutil.Process(pid).wait(timeout=10)
            after = session.run_onnx(model, feeds, warmup=1, min_iterations=2, min_duration_s=0,
                                     node_placement=False)
            assert after["error"] is None, after["error"]
            assert len(after["samples_ms"]) >= 2
            assert len(launches.pids) == 2 and launches.pids[1] != pid
        finally:
            session.close()
    assert _wait_gone(launches) == []
    assert _descendant_browsers() == []


@pytest.mark.timeout(300)
def test_a_page_call_past_its_time_limit_gets_the_next_cell_a_fresh_browser(tmp_path):
    model, feeds = _tiny_model(tmp_path / "m.onnx")
    with _Launches() as launches, browser_harness.BrowserSession("wasm") as session:
        harness = session.harness()
        started = time.monotonic()
        with pytest.raises(browser_harness.PageTimeout):  # a main thread that never comes back
            harness.evaluate("() => { const end = Date.now() + 1e9; while (Date.now() < end) {} }", timeout_s=2)
        result = session.run_onnx(model, feeds, warmup=1, min_iterations=2, min_duration_s=0, node_placement=False)
        assert result["error"] is None and len(result["samples_ms"]) >= 2
        assert len(launches.pids) == 2 and session.harness() is not harness
        assert time.monotonic() - started < 90
    assert _wait_gone(launches) == []
    assert _descendant_browsers() == []


@pytest.mark.timeout(300)
def test_ctrl_c_during_a_cell_leaves_no_browser_and_does_not_wait_for_the_cell(tmp_path, monkeypatch):
    from runners import run_model_benchmarks
    from runners.backends.web import WebBackend

    real_measure = WebBackend.measure
    interrupted_at = []

    def measure_then_ctrl_c(self, prepared, **kwargs):
        def ctrl_c():
            interrupted_at.append(time.monotonic())
            # SIGINT to the main thread, as Ctrl-C does: it wakes the main thread waiting on the page call
            signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)

        threading.Timer(8.0, ctrl_c).start()
        return real_measure(self, prepared, **kwargs)

    monkeypatch.setattr(WebBackend, "measure", measure_then_ctrl_c)
    with _Launches() as launches:
        # a cell that measures for 120 s: without a prompt close the run would sit there until it ends
        code = run_model_benchmarks.main(["--db", str(tmp_path / "r.duckdb"), "--models-set", "small",
                                          "--model", "bert-tiny-random", "--hardware", "webgpu",
                                          "--batch-sizes", "1", "--warmup", "1", "--min-iterations", "2",
                                          "--min-duration", "120", "--quiet"])
    returned_at = time.monotonic()
    assert code == 130
    assert interrupted_at and returned_at - interrupted_at[0] < 60, "the run waited for the cell to finish"
    assert len(launches.pids) == 1
    assert _wait_gone(launches) == []
    assert _descendant_browsers() == []

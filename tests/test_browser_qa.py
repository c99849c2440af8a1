"""QA of the browser backends as a user runs them: failures of the browser itself, calls that never return,
what the page says on its console, failed ONNX exports, what a run stores and what it leaves behind.

Real Chromium, real onnxruntime-web, real tiny models; no mocks. A broken browser is a real executable that
fails the way a broken install does (a shell script that cannot load its libraries); a stalled file is a
named pipe nobody writes to.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import threading
import time

import psutil
import pytest

from runners.web import browser_harness
from tests.test_browser_harness import _tiny_model

MISSING = browser_harness.missing_prerequisites()
browser = [pytest.mark.browser,
           pytest.mark.skipif(MISSING is not None, reason=f"browser harness unavailable: {MISSING}")]


def _browser_test(func):
    for marker in reversed(browser):
        func = marker(func)
    return func


def _browser_processes() -> list[psutil.Process]:
    """Chromium (and the Playwright driver) started from this test process and still alive."""
    alive = []
    for child in psutil.Process().children(recursive=True):
        try:
            if child.is_running() and child.status() != psutil.STATUS_ZOMBIE:
                alive.append(child)
        except psutil.NoSuchProcess:
            pass
    return alive


def _broken_chromium(tmp_path):
    script = tmp_path / "chromium"
    script.write_text("#!/bin/sh\necho 'chromium: error while loading shared libraries: libnss3.so' >&2\nexit 127\n")
    script.chmod(0o755)
    return script


@pytest.mark.browser
def test_a_chromium_that_cannot_start_says_what_it_said(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(browser_harness.CHROMIUM_ENV, str(_broken_chromium(tmp_path)))
    if browser_harness.missing_prerequisites():
        pytest.skip(browser_harness.missing_prerequisites())
    result = browser_harness.probe("webgpu")
    assert result["available"] is False
    # the browser's own words and its exit code, not Playwright's 'Target page ... has been closed'
    assert "libnss3.so" in result["reason"] and "exited with code 127" in result["reason"]
    assert "has been closed" not in result["reason"]
    # the CLI: one line `error DB00N: what happened; what to do`, no JSON of nothing, no traceback
    model, _ = _tiny_model(tmp_path / "m.onnx")
    assert browser_harness.main(["run", str(model)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error DB000: could not start Chromium"), captured.err
    assert "libnss3.so" in lines[0] and "apt-get install chromium" in lines[0]
    assert "Traceback" not in captured.err
    assert _browser_processes() == []


@_browser_test
def test_chromium_starts_under_a_deep_temporary_folder(tmp_path, monkeypatch):
    # Chromium's singleton socket lives in $TMPDIR and a Unix socket path has 107 bytes: under a CI job's or
    # pytest's deep temporary folder it died with 'Socket path too long'
    deep = tmp_path / ("d" * 60) / ("e" * 40)
    deep.mkdir(parents=True)
    monkeypatch.setenv("TMPDIR", str(deep))
    monkeypatch.setattr(tempfile, "tempdir", None)  # tempfile reads $TMPDIR again
    result = browser_harness.probe("wasm")
    assert result["available"] is True, result["reason"]
    assert _browser_processes() == []


@_browser_test
@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_model_load_that_never_resolves_stops_at_the_time_limit(tmp_path):
    # the model's external data is a named pipe nobody writes to: the server blocks opening it, the page's
    # fetch never resolves, and InferenceSession.create never settles (a stalled disk or network share)
    model, feeds = _tiny_model(tmp_path / "stall.onnx", external_data=True)
    data = tmp_path / "stall.onnx.data"
    data.unlink()
    os.mkfifo(data)
    outcome = {}
    try:
        with browser_harness.BrowserHarness("webgpu", timeout_s=300) as harness:
            def run():
                outcome["result"] = harness.run_onnx(model, feeds, warmup=1, min_iterations=2, min_duration_s=0,
                                                     timeout_s=3, node_placement=False)

            started = time.monotonic()
            worker = threading.Thread(target=run, daemon=True)
            worker.start()
            worker.join(timeout=60)
            assert not worker.is_alive(), "run_onnx did not come back from a model load that never resolves"
            result = outcome["result"]
            assert time.monotonic() - started < 30
            assert result["samples_ms"] == []
            assert "timed out after 3 s while loading the model" in result["error"], result["error"]
            # the harness goes on with a fresh page
            good, good_feeds = _tiny_model(tmp_path / "good.onnx")
            again = harness.run_onnx(good, good_feeds, warmup=1, min_iterations=2, min_duration_s=0,
                                     node_placement=False)
            assert again["error"] is None and len(again["samples_ms"]) >= 2
    finally:
        threading.Thread(target=lambda: open(data, "wb").close(), daemon=True).start()  # free the server thread
    assert _browser_processes() == []


@_browser_test
@pytest.mark.timeout(120)
def test_a_page_with_a_blocked_main_thread_is_abandoned_in_time(tmp_path):
    # a synchronous wasm call that never returns blocks the page's main thread: no timer in the page can fire,
    # so the limit has to hold on the Python side
    with browser_harness.BrowserHarness("wasm") as harness:
        started = time.monotonic()
        with pytest.raises(browser_harness.PageTimeout, match="did not answer within 2 s"):
            harness.evaluate("() => { const end = Date.now() + 1e9; while (Date.now() < end) {} }", timeout_s=2)
        assert time.monotonic() - started < 30
        assert harness.probe()["available"] is True  # a fresh page answers
        model, feeds = _tiny_model(tmp_path / "m.onnx")
        result = harness.run_onnx(model, feeds, warmup=0, min_iterations=2, min_duration_s=0, node_placement=False)
        assert result["error"] is None and len(result["samples_ms"]) >= 2
    assert _browser_processes() == []


@_browser_test
def test_console_errors_of_the_page_are_in_the_error_message(tmp_path):
    # the model names an external data file that is not there: onnxruntime-web only says it could not load
    # it; the page's console has the HTTP status
    model, feeds = _tiny_model(tmp_path / "ext.onnx", external_data=True)
    (tmp_path / "ext.onnx.data").unlink()
    result = browser_harness.run_onnx(str(model), feeds, "wasm", warmup=0, min_iterations=1, min_duration_s=0,
                                      node_placement=False)
    assert result["samples_ms"] == []
    assert "external data" in result["error"]
    assert "page console" in result["error"] and "404" in result["error"], result["error"]


@pytest.mark.slow
def test_a_family_that_cannot_export_gets_a_clear_reason_and_no_graph_dump(capfd):
    from runners.backends.base import UnsupportedConfiguration
    from runners.backends.webgpu import WebGPUBackend
    from runners.models import model_set

    spec = next(s for s in model_set("small") if s.family == "whisper")  # aten::diff has no opset-17 export
    model = spec.build()
    backend = WebGPUBackend()
    try:
        with pytest.raises(UnsupportedConfiguration) as raised:
            backend.prepare(spec, model, spec.inputs(model, 1, 0), "fp32")
    finally:
        backend.close()
    reason = str(raised.value)
    assert "ONNX export of whisper-tiny-random failed" in reason and "cannot run in the browser" in reason
    assert "aten::diff" in reason
    captured = capfd.readouterr()
    # torch dumps the whole TorchScript graph on fd 1 (where the runner's data goes) when an export fails
    for text in (captured.out, captured.err):
        assert "Torch IR graph at exception" not in text
        assert len(text.splitlines()) < 20, text[:2000]


@_browser_test
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_runner_stores_emulated_webgpu_and_a_webnn_reason_and_cleans_up(tmp_path, monkeypatch):
    import tempfile

    import duckdb

    from runners import run_model_benchmarks
    from runners.backends.web import is_software_adapter

    # every temp file of the run (ONNX exports, Playwright's browser profiles) lands in a folder of our own
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    db = tmp_path / "web.duckdb"
    code = run_model_benchmarks.main(["--db", str(db), "--models-set", "small", "--model", "bert-tiny-random",
                                      "--hardware", "webgpu", "webnn", "--batch-sizes", "2", "--quiet"])
    assert code == 0
    probe_webnn = browser_harness.probe("webnn")
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute("SELECT r.hardware_type, batch_size, iterations, latency_samples_ms, average_latency_ms, "
                           "throughput_items_per_second, warmup_iterations, is_simulated, r.metrics, h.device_name "
                           "FROM performance_results r JOIN hardware_platforms h USING (hardware_id) "
                           "ORDER BY r.hardware_type").fetchall()
        web = con.execute("SELECT platform, adapter, is_emulated, is_simulated, inference_time_ms, metrics "
                          "FROM web_platform_results").fetchall()
        compat = dict(con.execute("SELECT h.hardware_type, c.error_message FROM hardware_compatibility c "
                                  "JOIN hardware_platforms h USING (hardware_id) WHERE NOT c.is_compatible").fetchall())
    finally:
        con.close()
    webgpu = [r for r in rows if r[0] == "webgpu"]
    assert len(webgpu) == 1
    _, batch, iterations, samples, mean_ms, throughput, warmup, simulated, metrics, device = webgpu[0]
    metrics = json.loads(metrics)
    samples = json.loads(samples) if isinstance(samples, str) else samples
    # measured, not simulated; emulated exactly when the adapter is a software one
    assert simulated is False
    assert metrics["is_emulated"] == is_software_adapter(device)
    assert len(samples) == iterations >= 1 and warmup >= 1
    assert mean_ms == pytest.approx(sum(samples) / len(samples))
    assert throughput == pytest.approx(batch / (mean_ms / 1000.0))  # items per second of the per-call latency
    assert "performance.now()" in metrics["timing"] and metrics["cross_origin_isolated"] is True
    assert metrics["node_placement"] and sum(metrics["node_placement"].values()) > 0
    (w_platform, adapter, emulated, w_simulated, inference_ms, _), = web
    assert w_platform == "webgpu" and w_simulated is False and emulated == metrics["is_emulated"]
    assert adapter == device
    if probe_webnn["available"]:
        assert any(r[0] == "webnn" for r in rows)
    else:  # a compatibility row with the browser's reason, and no measured row
        assert not any(r[0] == "webnn" for r in rows)
        assert compat["webnn"] == probe_webnn["reason"]
    # nothing left behind: no browser, no exported models, no browser profiles, no listening server
    assert _browser_processes() == []
    # torch keeps its own compile cache in the temp folder (torchinductor_<user>) when something imports its
    # inductor; that is torch's, not a leftover of the run
    assert sorted(p.name for p in scratch.iterdir() if not p.name.startswith("torchinductor_")) == []
    listening = [c for c in psutil.Process().net_connections(kind="tcp") if c.status == psutil.CONN_LISTEN]
    assert listening == []


@_browser_test
@pytest.mark.slow
def test_two_browser_runs_at_once(tmp_path):
    model, feeds = _tiny_model(tmp_path / "m.onnx")
    results = {}

    def run(name):
        results[name] = browser_harness.run_onnx(str(model), feeds, "wasm", warmup=1, min_iterations=3,
                                                 min_duration_s=0, node_placement=False)

    threads = [threading.Thread(target=run, args=(n,)) for n in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert all(r["error"] is None and len(r["samples_ms"]) >= 3 for r in results.values()), results
    assert _browser_processes() == []


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))

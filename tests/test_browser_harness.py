"""The browser harness: onnxruntime-web in headless Chromium on the WebGPU / WebNN execution providers.

The tests marked `browser` need /usr/bin/chromium (Debian package) and runners/web/node_modules (make
web-deps); they skip with that reason otherwise. The others check, without a browser, that a missing
browser or missing node_modules is reported with what to install, and that feeds survive the trip.
"""
from __future__ import annotations

import numpy as np
import pytest

from runners.web import browser_harness

MISSING = browser_harness.missing_prerequisites()
needs_browser = [pytest.mark.browser,
                 pytest.mark.skipif(MISSING is not None, reason=f"browser harness unavailable: {MISSING}")]


def _tiny_model(path, *, external_data: bool = False):
    """ids (int64) -> embedding Gather, plus x (float32) @ W + B, Relu: both feed types, a real graph."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(7)
    emb = rng.standard_normal((50, 16)).astype(np.float32)
    weight = rng.standard_normal((16, 8)).astype(np.float32)
    bias = rng.standard_normal(8).astype(np.float32)
    nodes = [
        helper.make_node("Gather", ["emb", "ids"], ["e"]),
        helper.make_node("Add", ["e", "x"], ["h"]),
        helper.make_node("MatMul", ["h", "W"], ["m"]),
        helper.make_node("Add", ["m", "B"], ["a"]),
        helper.make_node("Relu", ["a"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes, "tiny",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, ["N", "S"]),
         helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", "S", 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", "S", 8])],
        [numpy_helper.from_array(emb, "emb"), numpy_helper.from_array(weight, "W"),
         numpy_helper.from_array(bias, "B")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    if external_data:
        onnx.save(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                  location=path.name + ".data", size_threshold=0)
    else:
        onnx.save(model, str(path))
    feeds = {"ids": rng.integers(0, 50, size=(2, 5), dtype=np.int64),
             "x": rng.standard_normal((2, 5, 16)).astype(np.float32)}
    return path, feeds


def _onnxruntime_cpu(path, feeds):
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)[0]


@pytest.fixture(scope="module")
def webgpu_harness():
    # one browser for the module: each run creates and releases its own session, nothing else is kept
    with browser_harness.BrowserHarness("webgpu", timeout_s=300) as harness:
        yield harness


# --- without a browser ---------------------------------------------------------------------------------

def test_missing_browser_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setenv(browser_harness.CHROMIUM_ENV, str(tmp_path / "no-chromium"))
    result = browser_harness.probe("webgpu")
    assert result["available"] is False
    assert "apt-get install chromium" in result["reason"]
    model, feeds = _tiny_model(tmp_path / "m.onnx")
    run = browser_harness.run_onnx(str(model), feeds, "webgpu")
    assert run["samples_ms"] == [] and "apt-get install chromium" in run["error"]


def test_missing_node_modules_says_make_web_deps(monkeypatch, tmp_path):
    monkeypatch.setattr(browser_harness, "ORT_DIST_DIR", tmp_path / "node_modules" / "onnxruntime-web" / "dist")
    if browser_harness.missing_prerequisites() and "Chromium" in browser_harness.missing_prerequisites():
        monkeypatch.setenv(browser_harness.CHROMIUM_ENV, "/bin/sh")  # an executable, so the ORT check is reached
    result = browser_harness.probe("webnn")
    assert result["available"] is False
    assert "make web-deps" in result["reason"]


def test_unknown_provider_and_missing_model_are_errors_not_crashes(tmp_path):
    assert browser_harness.probe("webgl")["available"] is False
    run = browser_harness.run_onnx(str(tmp_path / "absent.onnx"), {}, "webgpu")
    assert run["samples_ms"] == [] and "not found" in run["error"]
    run = browser_harness.run_onnx(str(tmp_path / "absent.onnx"), {}, "cuda")
    assert "unknown provider" in run["error"]


def test_feeds_round_trip_through_the_page_encoding():
    feeds = {"ids": np.arange(6, dtype=np.int64).reshape(2, 3) - 3,
             "x": np.linspace(-1, 1, 8, dtype=np.float32).reshape(2, 2, 2),
             "big_endian": np.arange(3, dtype=">f4")}
    encoded = browser_harness.encode_feeds(feeds)
    assert encoded["ids"]["dtype"] == "int64" and encoded["ids"]["dims"] == [2, 3]
    decoded = browser_harness.decode_outputs(encoded)
    for name, value in feeds.items():
        np.testing.assert_array_equal(decoded[name], value)
    with pytest.raises(ValueError, match="complex64"):
        browser_harness.encode_feeds({"z": np.zeros(2, dtype=np.complex64)})


def test_software_adapters_are_marked_emulated():
    swiftshader = {"vendor": "google", "architecture": "swiftshader", "device": "", "description": "",
                   "is_fallback_adapter": True}
    assert browser_harness.adapter_description(swiftshader) == "google swiftshader"
    assert browser_harness.adapter_is_emulated(swiftshader)
    assert browser_harness.adapter_is_emulated({"vendor": "mesa", "description": "llvmpipe (LLVM 15.0.6, 256 bits)"})
    nvidia = {"vendor": "nvidia", "architecture": "hopper", "device": "", "description": "",
              "is_fallback_adapter": False}
    assert not browser_harness.adapter_is_emulated(nvidia)
    assert browser_harness.adapter_description(nvidia) == "nvidia hopper"
    assert browser_harness.adapter_description(None) is None


# --- in the browser ------------------------------------------------------------------------------------

def browser_test(func):
    for marker in reversed(needs_browser):
        func = marker(func)
    return func


@browser_test
def test_probe_webgpu_reports_the_adapter(webgpu_harness):
    result = webgpu_harness.probe()
    assert result["available"], result["reason"]
    assert result["adapter"]
    assert result["browser_version"] and result["browser_version"][0].isdigit()
    assert result["cross_origin_isolated"] is True
    if "swiftshader" in result["adapter"].lower():  # what this machine has: Chromium's CPU fallback adapter
        assert result["is_emulated"] is True
        assert result["adapter_info"]["is_fallback_adapter"] is True


@browser_test
def test_probe_webnn_gives_the_browsers_own_reason():
    result = browser_harness.probe("webnn")
    assert result["browser_version"]
    if not result["available"]:
        # this Chromium on Linux: "NotSupportedError: Failed to execute 'createContext' on 'ML':
        # WebNN is not supported on this platform."
        assert result["api_present"] is True, result["reason"]
        assert "WebNN" in result["reason"] and "createContext" in result["reason"]


@browser_test
def test_run_onnx_webgpu_times_and_matches_onnxruntime_cpu(webgpu_harness, tmp_path):
    model, feeds = _tiny_model(tmp_path / "tiny.onnx")
    result = webgpu_harness.run_onnx(model, feeds, warmup=2, min_iterations=5, min_duration_s=0.2,
                                     return_outputs=True)
    assert result["error"] is None, (result["error"], result["console"])
    assert len(result["samples_ms"]) >= 5 and all(s > 0 for s in result["samples_ms"])
    assert sum(result["samples_ms"]) >= 200 * 0.99
    assert len(result["warmup_ms"]) == 2
    assert result["load_time_ms"] > 0
    assert result["adapter"] and result["is_emulated"] == browser_harness.adapter_is_emulated(result["adapter_info"])
    np.testing.assert_allclose(result["outputs"]["y"], _onnxruntime_cpu(model, feeds), rtol=1e-4, atol=1e-5)
    # where the nodes ran, from onnxruntime's own log (a throwaway page, after the measurement)
    assert result["node_placement"]["WebGpuExecutionProvider"] >= 1
    assert sum(result["node_placement"].values()) >= 5


@browser_test
def test_run_onnx_serves_external_data(webgpu_harness, tmp_path):
    model, feeds = _tiny_model(tmp_path / "ext.onnx", external_data=True)
    assert (tmp_path / "ext.onnx.data").is_file()
    result = webgpu_harness.run_onnx(model, feeds, warmup=1, min_iterations=2, min_duration_s=0,
                                     return_outputs=True, node_placement=False)
    assert result["error"] is None, result["error"]
    np.testing.assert_allclose(result["outputs"]["y"], _onnxruntime_cpu(model, feeds), rtol=1e-4, atol=1e-5)


@browser_test
def test_a_broken_model_is_an_error_with_no_samples(webgpu_harness, tmp_path):
    model = tmp_path / "broken.onnx"
    model.write_bytes(b"this is not an onnx file")
    result = webgpu_harness.run_onnx(model, {"x": np.zeros(2, dtype=np.float32)}, min_duration_s=0)
    assert result["error"] and result["samples_ms"] == []


@browser_test
def test_the_page_cannot_reach_the_network(webgpu_harness):
    outcome = webgpu_harness.evaluate(
        "() => fetch('https://example.com/').then(() => 'reached', e => 'blocked: ' + e)")
    assert outcome.startswith("blocked")
    assert any("blocked request to https://example.com/" in line for line in webgpu_harness.console)


@browser_test
def test_run_onnx_webnn_reports_the_refusal_without_samples(tmp_path):
    model, feeds = _tiny_model(tmp_path / "tiny.onnx")
    probe = browser_harness.probe("webnn")
    result = browser_harness.run_onnx(str(model), feeds, "webnn", warmup=1, min_iterations=2, min_duration_s=0)
    if probe["available"]:
        assert result["error"] is None and result["samples_ms"]
    else:
        assert result["samples_ms"] == []
        assert "WebNN" in result["error"]


@browser_test
def test_works_from_inside_a_running_asyncio_loop():
    # Playwright's sync API refuses a thread with a running loop; the harness keeps it on its own thread
    import asyncio

    async def caller():
        return browser_harness.probe("webgpu")

    result = asyncio.run(caller())
    assert result["available"], result["reason"]


def test_cli_missing_model_is_a_usage_error(tmp_path, capsys):
    assert browser_harness.main(["run", str(tmp_path / "absent.onnx")]) == 2
    assert "error DB000: ONNX file not found" in capsys.readouterr().err


@browser_test
def test_cli_probe_prints_json_and_exits_1_when_refused(capsys):
    import json

    code = browser_harness.main(["probe", "webnn"])
    result = json.loads(capsys.readouterr().out)
    assert code == (0 if result["available"] else 1)
    assert result["provider"] == "webnn" and result["browser_version"]


@browser_test
def test_cli_run_with_default_feeds(tmp_path, capsys):
    import json

    model, _ = _tiny_model(tmp_path / "tiny.onnx")
    code = browser_harness.main(["run", str(model), "--provider", "webgpu", "--warmup", "1", "--min-iterations", "3",
                                 "--min-duration", "0"])
    result = json.loads(capsys.readouterr().out)
    assert code == 0, result["error"]
    assert result["n"] == len(result["samples_ms"]) >= 3 and result["median_ms"] > 0


@browser_test
def test_a_run_past_its_time_limit_stops_with_an_error(webgpu_harness, tmp_path):
    model, feeds = _tiny_model(tmp_path / "tiny.onnx")
    result = webgpu_harness.run_onnx(model, feeds, warmup=2, min_duration_s=0, timeout_s=0.001,
                                     node_placement=False)
    assert result["samples_ms"] == [] and "timed out" in result["error"]
    # past the limit during measurement: the samples taken are real and kept, with a warning
    result = webgpu_harness.run_onnx(model, feeds, warmup=0, min_iterations=10**6, min_duration_s=0, timeout_s=15)
    assert result["error"] is None and result["timed_out"] is True
    assert 0 < len(result["samples_ms"]) < 10**6 and "time limit" in result["warning"]


@browser_test
def test_a_lost_page_is_replaced_for_the_next_run(tmp_path):
    model, feeds = _tiny_model(tmp_path / "tiny.onnx")
    with browser_harness.BrowserHarness("wasm") as harness:
        harness._call(harness._page.close)  # what a crashed renderer or a call past its time limit leaves behind
        # a closed page is replaced before the call (a crashed one, still open, fails once and is replaced after)
        lost = harness.run_onnx(model, feeds, warmup=0, min_iterations=1, min_duration_s=0, node_placement=False)
        assert lost["error"] is None and len(lost["samples_ms"]) >= 1
        again = harness.run_onnx(model, feeds, warmup=0, min_iterations=2, min_duration_s=0, return_outputs=True,
                                 node_placement=False)
        assert again["error"] is None, again["error"]
        np.testing.assert_allclose(again["outputs"]["y"], _onnxruntime_cpu(model, feeds), rtol=1e-4, atol=1e-5)
        harness._call(harness._page.close)
        assert harness.probe()["available"] is True

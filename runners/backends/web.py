"""WebGPU and WebNN: the model exported to ONNX and run by onnxruntime-web in headless Chromium.

The browser side (page, server, Playwright) lives in runners.web.browser_harness, written separately and
imported lazily: `probe(provider)` says whether the browser offers the execution provider (and which adapter),
`run_onnx(...)` times the ONNX model inside the page. This module exports the torch model (opset 17, into a
temporary folder), hands the harness the inputs, turns its samples into a Measurement, and adds a
web_platform_results row. A software adapter (SwiftShader) is emulation: results are real measurements of
the emulated device and say `is_emulated`; they are not simulated numbers.

One browser per backend per run: the backend keeps a `browser_harness.BrowserSession` (started by the probe
in detect(), reused by every cell, a fresh page per cell, a fresh browser after a crash or a timed-out call)
and closes it in close(), which the engine calls at the end of the run; a finalizer closes it otherwise.
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import statistics
import sys
import tempfile
import warnings
import weakref
from pathlib import Path

from runners.backends.base import Backend, Detection, Prepared, UnsupportedConfiguration
from runners.measure import Measurement

_SOFTWARE_ADAPTERS = ("swiftshader", "llvmpipe", "software", "basic render", "warp", "microsoft basic")


def is_software_adapter(adapter: str | None) -> bool:
    text = (adapter or "").lower()
    return any(marker in text for marker in _SOFTWARE_ADAPTERS)


def _harness():
    try:
        from runners.web import browser_harness
    except ImportError:
        return None
    return browser_harness


@contextlib.contextmanager
def _native_output_discarded():
    """Discard what C++ code writes on file descriptors 1 and 2 while inside.

    torch.onnx.export dumps the whole TorchScript graph ("Torch IR graph at exception: ...", thousands of lines)
    on stdout, where the runner's data goes, when an export fails: its ONNX log is always on (torch checks the function object
    `_jit_is_onnx_log_enabled`, not its result). warnings.catch_warnings cannot hold that back."""
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    try:
        with open(os.devnull, "wb") as sink:
            for fd in saved:
                os.dup2(sink.fileno(), fd)
            yield
    finally:
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        for fd, copy in saved.items():
            os.dup2(copy, fd)
            os.close(copy)


class WebBackend(Backend):
    provider = "webgpu"
    name = "webgpu"
    platform_name = "onnxruntime-web"

    def __init__(self):
        super().__init__()
        self._tmp = None
        self._exported: dict[tuple, Path] = {}
        self._probe: dict = {}
        self._session = None  # browser_harness.BrowserSession, started on first use

    def _browser(self, harness):
        if self._session is None:
            self._session = harness.BrowserSession(self.provider)
            self._close_session = weakref.finalize(self, self._session.close)
        return self._session

    def _close_browser(self) -> None:
        if self._session is not None:
            self._close_session()
            self._session = None

    def _detect(self) -> Detection:
        harness = _harness()
        if harness is None:
            return Detection(False, "browser harness not installed (runners/web/browser_harness.py is missing)")
        try:
            probe = self._browser(harness).probe() or {}
        except BaseException:
            self._close_browser()
            raise
        self._probe = probe
        adapter = probe.get("adapter")
        emulated = bool(probe.get("is_emulated")) or is_software_adapter(adapter)
        if not probe.get("available"):
            self._close_browser()  # no cell will run here
            return Detection(False, probe.get("reason") or f"{self.provider} is not available in the browser",
                             device_name=adapter, platform="onnxruntime-web",
                             platform_version=probe.get("browser_version"),
                             metadata={"browser_version": probe.get("browser_version")})
        return Detection(True, device_name=adapter or f"{self.provider} adapter", platform="onnxruntime-web",
                         platform_version=probe.get("browser_version"), is_emulated=emulated,
                         metadata={"browser": "chromium", "browser_version": probe.get("browser_version"),
                                   "provider": self.provider, "is_emulated": emulated})

    def precision_support(self, precision: str) -> str | None:
        return None if precision == "fp32" else f"the {self.name} runner exports fp32 ONNX models only"

    def _export(self, spec, model, inputs: dict) -> Path:
        import torch

        from runners.backends.openvino import _tensor_outputs

        key = (id(model), tuple((k, tuple(v.shape)) for k, v in inputs.items()))
        if key in self._exported:
            return self._exported[key]
        if self._tmp is None:
            self._tmp = tempfile.mkdtemp(prefix="bench_onnx_")
            # __del__ is not promised to run at interpreter exit; a finalizer is
            self._cleanup = weakref.finalize(self, shutil.rmtree, self._tmp, ignore_errors=True)
        # a checkpoint is named `parent/folder`: a slash in the file name would point into a missing folder
        safe_name = re.sub(r"[^A-Za-z0-9._-]+", "_", spec.name)
        path = Path(self._tmp) / f"{safe_name}_{len(self._exported)}.onnx"
        wrapper = _tensor_outputs(model, list(inputs))
        try:
            with torch.no_grad(), warnings.catch_warnings(), _native_output_discarded():
                warnings.simplefilter("ignore")
                torch.onnx.export(wrapper, tuple(inputs.values()), str(path), input_names=list(inputs),
                                  opset_version=17, dynamo=False)
        except Exception as exc:
            path.unlink(missing_ok=True)
            raise UnsupportedConfiguration(
                f"ONNX export of {spec.name} failed, so it cannot run in the browser ({self.name}): "
                f"torch.onnx.export (TorchScript, opset 17) raised {type(exc).__name__}: {str(exc)[:300]}") from exc
        self._exported[key] = path
        return path

    def prepare(self, spec, model, inputs: dict, precision: str) -> Prepared:
        reason = self.precision_support(precision)
        if reason:
            raise UnsupportedConfiguration(reason)
        path = self._export(spec, model, inputs)
        feeds = {k: v.numpy() for k, v in inputs.items()}
        items = int(next(iter(inputs.values())).shape[0])
        return Prepared(call=None, precision_used=precision, items=items,
                        info={"framework": "onnxruntime-web", "provider": self.provider, "onnx_path": path.name,
                              "opset": 17, "onnx_path_full": str(path)},
                        inputs=feeds)

    def measure(self, prepared: Prepared, *, warmup: int, min_iterations: int, min_duration_s: float) -> Measurement:
        harness = _harness()
        if harness is None:
            raise UnsupportedConfiguration("browser harness not installed")
        onnx_path = prepared.info.pop("onnx_path_full")
        # --threads: onnxruntime-web's wasm thread count (the CPU part of a run: wasm kernels, nodes the GPU
        # provider left to the CPU); the page reports the count it ran with
        # warm-up as the Python backends do (runners.measure.warm_up), decided inside the page
        result = self._browser(harness).run_onnx(onnx_path, prepared.inputs, warmup, min_iterations, min_duration_s,
                                                 num_threads=self.threads, adaptive_warmup=True)
        if result.get("error") or not result.get("samples_ms"):
            raise UnsupportedConfiguration(f"the browser could not run the model on {self.provider}: "
                                           f"{result.get('error') or 'no samples came back'}")
        samples = [float(s) for s in result["samples_ms"]]
        warmed = int(result["warmup_iterations"])  # the calls the page made, --warmup or more
        adapter = result.get("adapter") or self.detect().device_name
        emulated = bool(result.get("is_emulated")) or is_software_adapter(adapter) or self.detect().is_emulated
        total_ms = float(result.get("measured_duration_ms") or sum(samples))  # the page's wall time of the loop
        web_row = {"platform": self.provider, "browser": "chromium", "browser_version": result.get("browser_version"),
                   "adapter": adapter, "is_emulated": emulated, "test_file": prepared.info.get("onnx_path"),
                   "success": True, "load_time_ms": result.get("load_time_ms"),
                   "inference_time_ms": statistics.median(samples),
                   "total_time_ms": (result.get("load_time_ms") or 0.0) + total_ms, "is_simulated": False,
                   "metrics": {"samples": len(samples), "warmup": warmed, "is_emulated": emulated}}
        extra = {"is_emulated": emulated, "adapter": adapter, "browser_version": result.get("browser_version"),
                 "load_time_ms": result.get("load_time_ms"), "web_result": web_row,
                 "timing": "performance.now() in the page around each awaited session.run, outputs read back "
                           "to the CPU; warm-up calls not included",
                 "cross_origin_isolated": result.get("cross_origin_isolated"),
                 "threads_used": result.get("wasm_num_threads"),
                 "threads_measures": "onnxruntime-web wasm threads (ort.env.wasm.numThreads) in the page",
                 "warmup_requested": warmup, "warmup_seconds": result.get("warmup_seconds"),
                 "warmup_stopped": result.get("warmup_stopped"),
                 # nodes per execution provider: how much of a "webgpu" run ran on the CPU instead
                 "node_placement": result.get("node_placement")}
        if result.get("warning"):  # stopped at the time limit with fewer iterations than asked: say so
            extra["time_limit_warning"] = result["warning"]
            web_row["metrics"]["time_limit_warning"] = result["warning"]
        return Measurement(samples_ms=samples, warmup_iterations=warmed, total_time_s=total_ms / 1000.0,
                           extra=extra)

    def release(self, prepared) -> None:
        return None

    def forget(self, model) -> None:
        for key in [k for k in self._exported if k[0] == id(model)]:
            self._exported.pop(key).unlink(missing_ok=True)

    def close(self) -> None:
        """Close the browser and remove the exported models now (finalizers do it at exit otherwise)."""
        self._close_browser()
        if self._tmp:
            self._cleanup()
            self._tmp = None
            self._exported.clear()

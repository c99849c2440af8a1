"""WebGPU through onnxruntime-web in headless Chromium (see runners.backends.web)."""
from __future__ import annotations

from runners.backends.web import WebBackend


class WebGPUBackend(WebBackend):
    name = "webgpu"
    provider = "webgpu"

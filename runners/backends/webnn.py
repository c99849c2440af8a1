"""WebNN through onnxruntime-web in headless Chromium (see runners.backends.web)."""
from __future__ import annotations

from runners.backends.web import WebBackend


class WebNNBackend(WebBackend):
    name = "webnn"
    provider = "webnn"

"""The browser side of the runners: onnxruntime-web in headless Chromium (see browser_harness)."""

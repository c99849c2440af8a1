"""Readers of the document families the converter knows, one module per family:

- `runner`: the project's own runner output (delegates to `benchmark_db.runner_format`);
- `foreign`: optimum-benchmark and pytest-benchmark files;
- `web`: web-platform (WebNN/WebGPU) runs and comparisons;
- `no_result`: documents that hold no result (configs, progress logs, API tests, reports), with the reason;
- `legacy`: the legacy system's performance, compatibility, integration and hardware-detection shapes;
- `base`: the `Builder` that turns what a reader finds into records, and the generic measurement reader.

`benchmark_db.convert.convert_document` decides which reader a document goes to.
"""
